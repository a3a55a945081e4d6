//! `/api/v1/rules`, `/api/v1/alerts` and `POST /-/reload`, in Prometheus' shapes.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::RuleKind;
use super::group::{Alert, AlertState, GroupState, Health, RuleState};
use super::manager::RuleManager;
use super::template::gofmt::fmt_e_shortest;
use crate::prometheus::Params;

/// Go's RFC 3339 with nanoseconds, trailing zeros trimmed (`…:50.37Z`); the zero
/// time for "never".
pub(crate) fn rfc3339(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".into();
    };
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    let s = humantime::format_rfc3339_millis(t).to_string();
    // "2026-11-22T01:28:50.370Z" → "2026-11-22T01:28:50.37Z"
    match s.rsplit_once('.') {
        Some((head, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{head}Z")
            } else {
                format!("{head}.{digits}Z")
            }
        }
        None => s,
    }
}

fn alert_json(a: &Alert) -> Value {
    let mut v = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(Some(a.active_at_ms)),
        "value": fmt_e_shortest(a.value),
    });
    if let Some(k) = a.keep_firing_since_ms {
        v["keepFiringSince"] = json!(rfc3339(Some(k)));
    }
    v
}

fn health(r: &RuleState) -> (&'static str, Option<&str>) {
    match &r.health {
        Health::Unknown => ("unknown", None),
        Health::Ok => ("ok", None),
        Health::Err(e) => ("err", Some(e.as_str())),
    }
}

fn rule_json(r: &RuleState, with_alerts: bool) -> Value {
    let (h, err) = health(r);
    let labels: serde_json::Map<String, Value> = r
        .spec
        .labels
        .iter()
        .map(|(k, v, _)| (k.clone(), json!(v)))
        .collect();
    let mut v = match &r.spec.kind {
        RuleKind::Alert {
            hold,
            keep_firing_for,
            annotations,
        } => {
            let state = r
                .active()
                .map(|a| a.state)
                .max_by_key(|s| match s {
                    AlertState::Firing => 2,
                    AlertState::Pending => 1,
                    AlertState::Inactive => 0,
                })
                .unwrap_or(AlertState::Inactive);
            let ann: serde_json::Map<String, Value> = annotations
                .iter()
                .map(|(k, v, _)| (k.clone(), json!(v)))
                .collect();
            let mut v = json!({
                "state": state.as_str(),
                "name": r.spec.name,
                "query": r.spec.expr,
                "duration": hold.as_secs_f64(),
                "keepFiringFor": keep_firing_for.as_secs_f64(),
                "labels": labels,
                "annotations": ann,
            });
            if with_alerts {
                v["alerts"] = Value::Array(r.active().map(alert_json).collect());
            }
            v
        }
        RuleKind::Record => {
            let mut v = json!({"name": r.spec.name, "query": r.spec.expr});
            if !labels.is_empty() {
                v["labels"] = Value::Object(labels);
            }
            v
        }
    };
    v["health"] = json!(h);
    if let Some(e) = err {
        v["lastError"] = json!(e);
    }
    v["evaluationTime"] = json!(r.eval_duration.as_secs_f64());
    v["lastEvaluation"] = json!(rfc3339(r.last_eval_ms));
    v["type"] = json!(if r.spec.is_alert() {
        "alerting"
    } else {
        "recording"
    });
    v
}

fn bad_data(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "error", "errorType": "bad_data", "error": msg})),
    )
        .into_response()
}

async fn rules(
    State(m): State<Arc<RuleManager>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::new(q, &headers, &body);
    let want_alert = match p.get("type") {
        None | Some("") => None,
        Some("alert") => Some(true),
        Some("record") => Some(false),
        Some(other) => return bad_data(format!("unsupported type {other:?}: use alert or record")),
    };
    let with_alerts = match p.get("exclude_alerts") {
        None | Some("") | Some("false") => true,
        Some("true") => false,
        Some(other) => {
            return bad_data(format!(
                "invalid exclude_alerts {other:?}: use true or false"
            ));
        }
    };
    let names = p.all("rule_name[]");
    let groups_f = p.all("rule_group[]");
    let files = p.all("file[]");
    let groups: Vec<Value> = m
        .groups()
        .iter()
        .filter(|g| groups_f.is_empty() || groups_f.contains(&g.spec.name.as_str()))
        .filter(|g| files.is_empty() || files.contains(&g.spec.file.as_str()))
        .filter_map(|g: &GroupState| {
            let rules: Vec<Value> = g
                .rules
                .iter()
                .filter(|r| want_alert.is_none_or(|a| a == r.spec.is_alert()))
                .filter(|r| names.is_empty() || names.contains(&r.spec.name.as_str()))
                .map(|r| rule_json(r, with_alerts))
                .collect();
            // Filters that leave a group empty drop it, as Prometheus does.
            if rules.is_empty() && (want_alert.is_some() || !names.is_empty()) {
                return None;
            }
            Some(json!({
                "name": g.spec.name,
                "file": g.spec.file,
                "rules": rules,
                "interval": g.interval.as_secs_f64(),
                "limit": g.spec.limit,
                "evaluationTime": g.eval_duration.as_secs_f64(),
                "lastEvaluation": rfc3339(g.last_eval_ms),
            }))
        })
        .collect();
    axum::Json(json!({"status": "success", "data": {"groups": groups}})).into_response()
}

async fn alerts(State(m): State<Arc<RuleManager>>) -> Response {
    let alerts: Vec<Value> = m
        .groups()
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(|r| r.active().map(alert_json).collect::<Vec<_>>())
        .collect();
    axum::Json(json!({"status": "success", "data": {"alerts": alerts}})).into_response()
}

/// Something else `/-/reload` re-reads (the notification configuration).
pub type ReloadHook = Arc<dyn Fn() -> Result<(), Vec<String>> + Send + Sync>;

/// Re-reads the rule files and runs `hook`; all errors together.
pub async fn reload_all(
    m: &Arc<RuleManager>,
    hook: Option<&ReloadHook>,
) -> Result<(), Vec<String>> {
    let mut errs = m.reload().await.err().unwrap_or_default();
    if let Some(h) = hook
        && let Err(e) = h()
    {
        errs.extend(e);
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

async fn reload(State((m, hook)): State<(Arc<RuleManager>, Option<ReloadHook>)>) -> Response {
    match reload_all(&m, hook.as_ref()).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(errs) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {}\n", errs.join("\n")),
        )
            .into_response(),
    }
}

/// The rules API and `/-/reload` (rules, then `hook`).
pub fn router(m: Arc<RuleManager>, hook: Option<ReloadHook>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules).post(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(m.clone())
        .merge(
            Router::new()
                .route("/-/reload", post(reload).put(reload))
                .with_state((m, hook)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_go() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(1_500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339(Some(1_377)), "1970-01-01T00:00:01.377Z");
    }

    #[test]
    fn values_like_go() {
        assert_eq!(fmt_e_shortest(1.0), "1e+00");
        assert_eq!(fmt_e_shortest(0.25), "2.5e-01");
        assert_eq!(fmt_e_shortest(123456.0), "1.23456e+05");
        assert_eq!(fmt_e_shortest(f64::NAN), "NaN");
    }
}

#[cfg(test)]
#[path = "api/tests.rs"]
mod api_tests;
