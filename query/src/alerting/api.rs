//! The Alertmanager API v2 subset that `amtool` and Grafana's Alertmanager data source
//! use (`/api/v2/alerts`, `/api/v2/alerts/groups`, `/api/v2/silences`,
//! `/api/v2/silence/{id}`, `/api/v2/status`, `/api/v2/receivers`), and the delivery
//! status of notifications (`/api/v1/notifications`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use signalbox_storage::Matcher;

use super::dispatch::{AmAlert, Dispatcher, LabelMap};
use super::matchers::parse_matchers;
use super::notify::{Notifier, PostableAlert};
use super::silence::{Silence, SilenceInput, SilenceMatcher};
use crate::rules::api::rfc3339;
use crate::rules::manager::now_ms;

fn bad_request(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(Value::String(msg.into())),
    )
        .into_response()
}

fn params(q: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn flag(ps: &[(String, String)], name: &str) -> Result<bool, String> {
    match ps.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()) {
        None | Some("") | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(format!("{name}: invalid boolean {v:?}")),
    }
}

fn filters(ps: &[(String, String)]) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (_, f) in ps.iter().filter(|(k, _)| k == "filter") {
        out.extend(parse_matchers(f).map_err(|e| format!("bad matcher format: {e}"))?);
    }
    Ok(out)
}

fn matches_all(ms: &[Matcher], labels: &LabelMap) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str)))
}

/// Parses an RFC 3339 time into milliseconds.
fn parse_time(s: &str) -> Result<i64, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("invalid time {s:?}: {e}"))
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .map_err(|_| format!("time {s:?} is before 1970"))
        })
}

fn alert_json(d: &Dispatcher, a: &AmAlert, receivers: &[String], now: i64) -> Value {
    let sup = d.suppression(a, now);
    let state = if sup.muted() { "suppressed" } else { "active" };
    json!({
        "annotations": a.annotations,
        "endsAt": rfc3339(Some(a.ends_at_ms)),
        "fingerprint": format!("{:016x}", a.fingerprint()),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": rfc3339(Some(a.starts_at_ms)),
        "status": {"inhibitedBy": sup.inhibited_by, "silencedBy": sup.silenced_by, "state": state},
        "updatedAt": rfc3339(Some(a.updated_at_ms)),
        "generatorURL": a.generator_url,
        "labels": a.labels,
    })
}

async fn get_alerts(State(n): State<Arc<Notifier>>, RawQuery(q): RawQuery) -> Response {
    let ps = params(q);
    let (active, silenced, inhibited) = match (
        flag(&ps, "active"),
        flag(&ps, "silenced"),
        flag(&ps, "inhibited"),
    ) {
        (Ok(a), Ok(s), Ok(i)) => (a, s, i),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return bad_request(e),
    };
    let fs = match filters(&ps) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let receiver = match ps.iter().find(|(k, _)| k == "receiver") {
        Some((_, r)) => match regex::Regex::new(&format!("^(?:{r})$")) {
            Ok(re) => Some(re),
            Err(e) => return bad_request(format!("failed to parse receiver param: {e}")),
        },
        None => None,
    };
    let now = now_ms();
    let d = n.dispatcher.lock();
    let out: Vec<Value> = d
        .alerts()
        .into_iter()
        .filter(|(a, rs)| {
            if a.resolved_at(now) || !matches_all(&fs, &a.labels) {
                return false;
            }
            if let Some(re) = &receiver
                && !rs.iter().any(|r| re.is_match(r))
            {
                return false;
            }
            let sup = d.suppression(a, now);
            let muted = sup.muted();
            (!sup.silenced_by.is_empty() && silenced)
                || (!sup.inhibited_by.is_empty() && inhibited)
                || (!muted && active)
        })
        .map(|(a, rs)| alert_json(&d, a, &rs, now))
        .collect();
    axum::Json(out).into_response()
}

async fn post_alerts(State(n): State<Arc<Notifier>>, body: Bytes) -> Response {
    let alerts: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return bad_request(format!("invalid alerts: {e}")),
    };
    let now = now_ms();
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        if a.labels.is_empty() {
            return bad_request("at least one label pair required");
        }
        let t = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(parse_time)
                .transpose()
        };
        let (starts, ends) = match (t(&a.starts_at), t(&a.ends_at)) {
            (Ok(s), Ok(e)) => (s.unwrap_or(0), e.unwrap_or(0)),
            (Err(e), _) | (_, Err(e)) => return bad_request(e),
        };
        if ends != 0 && starts != 0 && ends < starts {
            return bad_request("start time must be before end time");
        }
        out.push(AmAlert {
            labels: a.labels,
            annotations: a.annotations,
            starts_at_ms: starts,
            ends_at_ms: ends,
            updated_at_ms: now,
            generator_url: a.generator_url,
            timeout: false,
        });
    }
    // Alerts received here are not forwarded again.
    n.dispatcher.lock().put(out, now);
    StatusCode::OK.into_response()
}

async fn groups(State(n): State<Arc<Notifier>>, RawQuery(q): RawQuery) -> Response {
    let ps = params(q);
    let fs = match filters(&ps) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let now = now_ms();
    let d = n.dispatcher.lock();
    let out: Vec<Value> = d
        .groups()
        .into_iter()
        .filter_map(|(labels, receiver, fps)| {
            let alerts: Vec<Value> = fps
                .iter()
                .filter_map(|fp| d.alert(*fp))
                .filter(|a| !a.resolved_at(now) && matches_all(&fs, &a.labels))
                .map(|a| alert_json(&d, a, std::slice::from_ref(&receiver), now))
                .collect();
            (!alerts.is_empty()).then(
                || json!({"alerts": alerts, "labels": labels, "receiver": {"name": receiver}}),
            )
        })
        .collect();
    axum::Json(out).into_response()
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": rfc3339(Some(s.updated_at_ms)),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": rfc3339(Some(s.ends_at_ms)),
        "matchers": s.matchers,
        "startsAt": rfc3339(Some(s.starts_at_ms)),
    })
}

async fn get_silences(State(n): State<Arc<Notifier>>, RawQuery(q): RawQuery) -> Response {
    let ps = params(q);
    let fs = match filters(&ps) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let now = now_ms();
    let d = n.dispatcher.lock();
    let mut list: Vec<&Silence> = d
        .silences
        .all()
        .filter(|s| {
            // A filter selects silences having an equal matcher for each of its matchers.
            fs.iter().all(|f| {
                s.matchers
                    .iter()
                    .any(|m| m.name == f.name && f.matches(&m.value))
            })
        })
        .collect();
    // Active first, then pending, then expired, as Alertmanager sorts them.
    list.sort_by_key(|s| {
        let rank = match s.state(now) {
            super::silence::SilenceState::Active => 0,
            super::silence::SilenceState::Pending => 1,
            super::silence::SilenceState::Expired => 2,
        };
        (rank, s.ends_at_ms)
    });
    axum::Json(
        list.into_iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "createdBy", default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

async fn post_silence(State(n): State<Arc<Notifier>>, body: Bytes) -> Response {
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("invalid silence: {e}")),
    };
    let (starts, ends) = match (parse_time(&p.starts_at), parse_time(&p.ends_at)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let input = SilenceInput {
        id: p.id.filter(|i| !i.is_empty()),
        matchers: p.matchers,
        starts_at_ms: starts,
        ends_at_ms: ends,
        created_by: p.created_by,
        comment: p.comment,
    };
    let unknown = input
        .id
        .as_ref()
        .is_some_and(|id| n.dispatcher.lock().silences.get(id).is_none());
    if unknown {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(Value::String("silence not found".into())),
        )
            .into_response();
    }
    let res = n.dispatcher.lock().silences.set(input, now_ms());
    match res {
        Ok(id) => {
            n.touch();
            axum::Json(json!({"silenceID": id})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn get_silence(State(n): State<Arc<Notifier>>, Path(id): Path<String>) -> Response {
    let d = n.dispatcher.lock();
    match d.silences.get(&id) {
        Some(s) => axum::Json(silence_json(s, now_ms())).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(n): State<Arc<Notifier>>, Path(id): Path<String>) -> Response {
    let res = {
        let mut d = n.dispatcher.lock();
        if d.silences.get(&id).is_none() {
            return StatusCode::NOT_FOUND.into_response();
        }
        d.silences.expire(&id, now_ms())
    };
    match res {
        Ok(()) => {
            n.touch();
            StatusCode::OK.into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(Value::String(e)),
        )
            .into_response(),
    }
}

async fn status(State(n): State<Arc<Notifier>>) -> Response {
    let c = n.config();
    let uptime = rfc3339(Some(n.started_ms));
    axum::Json(json!({
        "cluster": {"name": "signalbox", "peers": [], "status": "disabled"},
        "config": {"original": c.masked},
        "uptime": uptime,
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": "",
            "version": env!("CARGO_PKG_VERSION"),
        },
    }))
    .into_response()
}

async fn receivers(State(n): State<Arc<Notifier>>) -> Response {
    let c = n.config();
    axum::Json(
        c.receivers
            .iter()
            .map(|r| json!({"name": r.name}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn deliveries(State(n): State<Arc<Notifier>>) -> Response {
    let list: Vec<Value> = n
        .deliveries()
        .into_iter()
        .map(|d| {
            json!({
                "receiver": d.receiver,
                "integration": d.integration,
                "index": d.index,
                "lastAttempt": d.last_attempt_ms.map(|t| rfc3339(Some(t))),
                "lastSuccess": d.last_success_ms.map(|t| rfc3339(Some(t))),
                "lastError": d.last_error,
                "sent": d.sent,
                "failed": d.failed,
            })
        })
        .collect();
    axum::Json(json!({"status": "success", "data": list})).into_response()
}

/// The Alertmanager API and delivery status.
pub fn router(n: Arc<Notifier>) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v1/notifications", get(deliveries))
        .with_state(n)
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
