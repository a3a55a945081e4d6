//! Notification texts: the data notification templates see (Alertmanager's `.Status`,
//! `.Receiver`, `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`, `.ExternalURL`,
//! `.Alerts` with `.Firing`/`.Resolved`), user templates over it, and the default
//! subject line (`[FIRING:2] Down (api web)`) that Alertmanager's default Slack and
//! email templates use.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::dispatch::{AmAlert, Flush, Job, LabelMap};
use crate::rules::api::rfc3339;
use crate::rules::template::{Template, Value};

/// A template field: `None` (or a reference to one of Alertmanager's built-in
/// templates, `{{ template "slack.default.title" . }}`) means the default text.
pub(crate) fn template_of(name: &str, field: &Option<String>) -> Result<Option<Template>, String> {
    let Some(text) = field else { return Ok(None) };
    let t = text.trim();
    let builtin = t
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(|r| {
            r.trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim()
        })
        .is_some_and(|r| r.starts_with("template ") && r.ends_with('.'));
    if builtin {
        return Ok(None);
    }
    Template::parse(name, text)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn map(m: &LabelMap) -> Value {
    Value::Map(Arc::new(m.clone()))
}

fn firing(a: &AmAlert) -> bool {
    a.ends_at_ms == 0
}

fn common(maps: Vec<&LabelMap>) -> LabelMap {
    let Some((first, rest)) = maps.split_first() else {
        return LabelMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `firing` if any alert of the notification fires.
pub(crate) fn status(job: &Job) -> &'static str {
    if job.alerts.iter().any(firing) {
        "firing"
    } else {
        "resolved"
    }
}

pub(crate) fn common_labels(job: &Job) -> LabelMap {
    common(job.alerts.iter().map(|a| &a.labels).collect())
}

pub(crate) fn common_annotations(job: &Job) -> LabelMap {
    common(job.alerts.iter().map(|a| &a.annotations).collect())
}

/// The `.` of notification templates.
pub(crate) fn data(flush: &Flush, job: &Job, external_url: &str) -> Value {
    let alerts: Vec<Value> = job
        .alerts
        .iter()
        .map(|a| {
            let mut o = BTreeMap::new();
            o.insert(
                "Status".into(),
                Value::Str(if firing(a) { "firing" } else { "resolved" }.into()),
            );
            o.insert("Labels".into(), map(&a.labels));
            o.insert("Annotations".into(), map(&a.annotations));
            o.insert("StartsAt".into(), Value::Str(rfc3339(Some(a.starts_at_ms))));
            o.insert(
                "EndsAt".into(),
                Value::Str(rfc3339((a.ends_at_ms != 0).then_some(a.ends_at_ms))),
            );
            o.insert("GeneratorURL".into(), Value::Str(a.generator_url.clone()));
            o.insert(
                "Fingerprint".into(),
                Value::Str(format!("{:016x}", a.fingerprint())),
            );
            Value::Obj(Arc::new(o))
        })
        .collect();
    let mut o = BTreeMap::new();
    o.insert("Receiver".into(), Value::Str(job.receiver.clone()));
    o.insert("Status".into(), Value::Str(status(job).into()));
    o.insert("Alerts".into(), Value::List(Arc::new(alerts)));
    o.insert("GroupLabels".into(), map(&flush.group_labels));
    o.insert("CommonLabels".into(), map(&common_labels(job)));
    o.insert("CommonAnnotations".into(), map(&common_annotations(job)));
    o.insert("ExternalURL".into(), Value::Str(external_url.to_string()));
    o.insert("GroupKey".into(), Value::Str(flush.group_key.clone()));
    Value::Obj(Arc::new(o))
}

/// Alertmanager's `__subject`: `[FIRING:2] <group label values> (<other common label values>)`.
pub(crate) fn subject(flush: &Flush, job: &Job) -> String {
    let st = status(job);
    let mut s = format!("[{}", st.to_uppercase());
    if st == "firing" {
        s.push_str(&format!(
            ":{}",
            job.alerts.iter().filter(|a| firing(a)).count()
        ));
    }
    s.push_str("] ");
    let group: Vec<&str> = flush.group_labels.values().map(String::as_str).collect();
    s.push_str(&group.join(" "));
    s.push(' ');
    let common = common_labels(job);
    if common.len() > flush.group_labels.len() {
        let rest: Vec<&str> = common
            .iter()
            .filter(|(k, _)| !flush.group_labels.contains_key(*k))
            .map(|(_, v)| v.as_str())
            .collect();
        s.push_str(&format!("({})", rest.join(" ")));
    }
    s
}

/// The link Alertmanager's defaults point at: the alerts of this receiver.
pub(crate) fn alerts_link(job: &Job, external_url: &str) -> String {
    let r: String = form_urlencoded::byte_serialize(job.receiver.as_bytes()).collect();
    format!("{external_url}/#/alerts?receiver={r}")
}

/// A user template over the notification data, or the default.
pub(crate) fn render(
    name: &str,
    field: &Option<String>,
    data: &Value,
    default: impl FnOnce() -> String,
) -> Result<String, String> {
    match template_of(name, field)? {
        None => Ok(default()),
        Some(t) => t.render_with(data.clone()).map_err(|e| e.to_string()),
    }
}

/// A plain-text list of the alerts, for email bodies.
pub(crate) fn text_body(flush: &Flush, job: &Job, external_url: &str) -> String {
    let mut out = format!("{}\n\n", subject(flush, job));
    for (title, want_firing) in [("Firing", true), ("Resolved", false)] {
        let list: Vec<&AmAlert> = job
            .alerts
            .iter()
            .filter(|a| firing(a) == want_firing)
            .collect();
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("{title}:\n"));
        for a in list {
            out.push_str("- Labels:\n");
            for (k, v) in &a.labels {
                out.push_str(&format!("    {k} = {v}\n"));
            }
            if !a.annotations.is_empty() {
                out.push_str("  Annotations:\n");
                for (k, v) in &a.annotations {
                    out.push_str(&format!("    {k} = {v}\n"));
                }
            }
            out.push_str(&format!("  Since: {}\n", rfc3339(Some(a.starts_at_ms))));
            if !a.generator_url.is_empty() {
                out.push_str(&format!("  Source: {}\n", a.generator_url));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Sent by SignalBox: {}\n",
        alerts_link(job, external_url)
    ));
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A simple HTML rendering of the same list.
pub(crate) fn html_body(flush: &Flush, job: &Job, external_url: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html><body><h2>{}</h2>",
        escape_html(&subject(flush, job))
    );
    for a in &job.alerts {
        let state = if firing(a) { "firing" } else { "resolved" };
        out.push_str(&format!("<h3>{state}</h3><table>"));
        for (k, v) in a.labels.iter().chain(a.annotations.iter()) {
            out.push_str(&format!(
                "<tr><td><b>{}</b></td><td>{}</td></tr>",
                escape_html(k),
                escape_html(v)
            ));
        }
        out.push_str("</table>");
        if !a.generator_url.is_empty() {
            out.push_str(&format!(
                "<p><a href=\"{0}\">Source</a></p>",
                escape_html(&a.generator_url)
            ));
        }
    }
    out.push_str(&format!(
        "<p><a href=\"{0}\">View in SignalBox</a></p></body></html>",
        escape_html(&alerts_link(job, external_url))
    ));
    out
}
