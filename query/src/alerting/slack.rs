//! Slack incoming webhooks, with Alertmanager's message layout: one attachment with
//! title, title link, text, colour (`danger` while firing, `good` once resolved).

use serde::Serialize;

use super::config::Slack;
use super::dispatch::{Flush, Job};
use super::message::{alerts_link, data, render, status, subject};

#[derive(Serialize)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    mrkdwn_in: [&'static str; 3],
}

#[derive(Serialize)]
struct Request {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    attachments: Vec<Attachment>,
}

/// The JSON a Slack incoming webhook receives.
pub(crate) fn body(
    s: &Slack,
    flush: &Flush,
    job: &Job,
    external_url: &str,
) -> Result<Vec<u8>, String> {
    let d = data(flush, job, external_url);
    let title = render("slack title", &s.title, &d, || subject(flush, job))?;
    let title_link = render("slack title_link", &s.title_link, &d, || {
        alerts_link(job, external_url)
    })?;
    let text = render("slack text", &s.text, &d, String::new)?;
    let fallback = render("slack fallback", &s.fallback, &d, || {
        format!("{title} | {title_link}")
    })?;
    let color = render("slack color", &s.color, &d, || {
        if status(job) == "firing" {
            "danger"
        } else {
            "good"
        }
        .to_string()
    })?;
    let req = Request {
        channel: s.channel.clone(),
        username: if s.username.is_empty() {
            "SignalBox".into()
        } else {
            s.username.clone()
        },
        icon_emoji: s.icon_emoji.clone(),
        icon_url: s.icon_url.clone(),
        attachments: vec![Attachment {
            title,
            title_link,
            pretext: s.pretext.clone(),
            text,
            fallback,
            callback_id: String::new(),
            footer: s.footer.clone(),
            color,
            mrkdwn_in: ["fallback", "pretext", "text"],
        }],
    };
    serde_json::to_vec(&req).map_err(|e| e.to_string())
}

pub(crate) async fn send(
    http: &reqwest::Client,
    s: &Slack,
    flush: &Flush,
    job: &Job,
    external_url: &str,
) -> Result<(), String> {
    let b = body(s, flush, job, external_url)?;
    let r = http
        .post(s.api_url.value()?)
        .timeout(std::time::Duration::from_secs(10))
        .header("Content-Type", "application/json")
        .body(b)
        .send()
        .await
        .map_err(super::notify::describe)?;
    if r.status().is_success() {
        return Ok(());
    }
    let code = r.status().as_u16();
    let text: String = r
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(format!("unexpected status code {code}: {text}"))
}
