//! `GET /api/v1/overview/services?start=&end=` (Unix seconds; default the last hour):
//! every service that sent spans in the window with its request rate, error ratio and
//! latency percentiles (RED) from its entry spans, and the calls between services
//! (from parent/child spans), in the Prometheus API envelope. Entry spans are a
//! service's server and consumer spans; a service with neither (a batch job, a client
//! only) is measured by its local root spans, those without a parent in the service.

use super::{JaegerApi, MAX_SCANNED_SPANS};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use signalbox_storage::{SpanQuery, SpanRecord};
use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

const SPAN_KIND_SERVER: i32 = 2;
const SPAN_KIND_CONSUMER: i32 = 5;
const STATUS_ERROR: i32 = 2;
const DEFAULT_WINDOW_S: f64 = 3600.0;

fn bad(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "error", "errorType": "bad_data", "error": msg})),
    )
        .into_response()
}

fn seconds(p: &[(String, String)], name: &str, default: f64) -> Result<f64, String> {
    match p.iter().find(|(k, v)| k == name && !v.is_empty()) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<f64>() {
            Ok(s) if s.is_finite() => Ok(s),
            _ => Err(format!(
                "invalid parameter \"{name}\": cannot parse {v:?} to a timestamp"
            )),
        },
    }
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn quantile(v: &[i64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64 / 1e9
}

/// Per-service RED figures and service-to-service call counts for `spans` seen in a
/// window of `window_s` seconds.
pub(crate) fn summarize(spans: &[SpanRecord], window_s: f64) -> (Vec<Value>, Vec<Value>) {
    let service_of: HashMap<([u8; 16], [u8; 8]), &str> = spans
        .iter()
        .map(|s| ((s.span.trace_id, s.span.span_id), s.service_name.as_str()))
        .collect();
    // Per service: durations and errors of entry spans, and of local roots.
    #[derive(Default)]
    struct Acc {
        entry: Vec<i64>,
        entry_errors: u64,
        roots: Vec<i64>,
        root_errors: u64,
    }
    let mut by_service: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut edges: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for s in spans {
        let svc = s.service_name.as_str();
        let acc = by_service.entry(svc).or_default();
        let error = s.span.status_code == STATUS_ERROR;
        let parent = (s.span.parent_span_id != [0; 8])
            .then(|| {
                service_of
                    .get(&(s.span.trace_id, s.span.parent_span_id))
                    .copied()
            })
            .flatten();
        if matches!(s.span.kind, SPAN_KIND_SERVER | SPAN_KIND_CONSUMER) {
            acc.entry.push(s.span.duration_ns());
            acc.entry_errors += u64::from(error);
        }
        if parent != Some(svc) {
            acc.roots.push(s.span.duration_ns());
            acc.root_errors += u64::from(error);
        }
        if let Some(p) = parent
            && p != svc
        {
            *edges.entry((p, svc)).or_default() += 1;
        }
    }
    let window = window_s.max(1e-9);
    let services = by_service
        .into_iter()
        .map(|(name, acc)| {
            let (mut d, errors, measured) = if acc.entry.is_empty() {
                (acc.roots, acc.root_errors, "local roots")
            } else {
                (acc.entry, acc.entry_errors, "server spans")
            };
            d.sort_unstable();
            let n = d.len();
            let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
            json!({
                "service": name,
                "requests": n,
                "errors": errors,
                "rate": n as f64 / window,
                "errorRatio": if n == 0 { Value::Null } else { json!(errors as f64 / n as f64) },
                "p50": num(quantile(&d, 0.5)),
                "p95": num(quantile(&d, 0.95)),
                "p99": num(quantile(&d, 0.99)),
                "measuredBy": measured,
            })
        })
        .collect();
    let edges = edges
        .into_iter()
        .map(|((p, c), n)| json!({"parent": p, "child": c, "calls": n}))
        .collect();
    (services, edges)
}

pub(super) async fn services_overview(
    State(api): State<JaegerApi>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = super::params(q);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let end = match seconds(&p, "end", now) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let start = match seconds(&p, "start", end - DEFAULT_WINDOW_S) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    if end <= start {
        return bad("end timestamp must not be before start time".into());
    }
    let q = SpanQuery {
        start_ns: (start * 1e9) as i64,
        end_ns: (end * 1e9) as i64,
        limit: MAX_SCANNED_SPANS,
        ..Default::default()
    };
    let spans = match api.reader.search_spans(&q).await {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(
                    json!({"status": "error", "errorType": "internal", "error": e.to_string()}),
                ),
            )
                .into_response();
        }
    };
    let truncated = spans.len() >= MAX_SCANNED_SPANS;
    let (services, edges) = summarize(&spans, end - start);
    let mut body = json!({
        "status": "success",
        "data": {"start": start, "end": end, "spans": spans.len(), "services": services, "edges": edges},
    });
    if truncated {
        body["warnings"] = json!([format!(
            "only the newest {MAX_SCANNED_SPANS} spans of the range were read; narrow the range for exact figures"
        )]);
    }
    axum::Json(body).into_response()
}
