//! The Jaeger query HTTP API, served under `/jaeger/api/` (what the Jaeger UI and
//! Grafana's Jaeger data source call): services, operations, trace search, trace by id,
//! dependencies, in Jaeger's UI JSON model.

mod model;
mod overview;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use signalbox_storage::{SpanQuery, SpanRecord, TracesReader};

pub use model::traces_json;

/// How far back a search without `start` looks.
const DEFAULT_LOOKBACK_US: i64 = 3_600_000_000;
/// Spans read at most to answer one search or dependencies request.
const MAX_SCANNED_SPANS: usize = 200_000;

#[derive(Clone)]
pub struct JaegerApi {
    reader: Arc<dyn TracesReader>,
}

impl JaegerApi {
    pub fn new(reader: Arc<dyn TracesReader>) -> JaegerApi {
        JaegerApi { reader }
    }
}

fn envelope(data: Value, total: usize) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null})),
    )
        .into_response()
}

struct ApiError {
    status: StatusCode,
    msg: String,
}

impl ApiError {
    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": self.status.as_u16(), "msg": self.msg}],
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

fn storage(e: signalbox_storage::StorageError) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        msg: e.to_string(),
    }
}

fn params(q: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter()
        .find(|(n, v)| n == k && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Lower-case hex digits of an id (trace, span), as Jaeger and LogQL labels show it.
pub(crate) fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 15)] as char);
    }
    s
}

/// An id of 1 to `2 * N` hex digits, left-padded with zeros to `N` bytes.
pub(crate) fn hex_id<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.is_empty() || s.len() > 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{s:0>width$}", width = 2 * N);
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(padded.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A trace id of 1–32 hex digits, left-padded.
fn parse_trace_id(s: &str) -> Result<[u8; 16], ApiError> {
    let s = s.trim();
    hex_id(s).ok_or_else(|| {
        ApiError::bad(format!(
            "cannot parse traceID param: {s:?} is not a hex trace id"
        ))
    })
}

/// A Go duration (`1.5s`, `100ms`, `500us`, `2m`, `1h`) in nanoseconds.
fn parse_go_duration(name: &str, s: &str) -> Result<i64, ApiError> {
    let err = || ApiError::bad(format!("cannot parse {name}: invalid duration {s:?}"));
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let n_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_len].parse().map_err(|_| err())?;
        rest = &rest[n_len..];
        let u_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total += n * mult;
        rest = &rest[u_len..];
    }
    Ok(total as i64)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn parse_us(name: &str, s: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match s {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::bad(format!("cannot parse {name}: {v:?} is not a number"))),
    }
}

async fn services(State(api): State<JaegerApi>) -> Result<Response, ApiError> {
    let s = api.reader.services().await.map_err(storage)?;
    let n = s.len();
    Ok(envelope(json!(s), n))
}

async fn service_operations(
    State(api): State<JaegerApi>,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    let ops: BTreeSet<String> = api
        .reader
        .operations(&service)
        .await
        .map_err(storage)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let n = ops.len();
    Ok(envelope(json!(ops.into_iter().collect::<Vec<_>>()), n))
}

pub(crate) fn kind_name(k: i32) -> &'static str {
    match k {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "",
    }
}

async fn operations(
    State(api): State<JaegerApi>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(q);
    let Some(service) = param(&p, "service") else {
        return Err(ApiError::bad("parameter 'service' is required"));
    };
    let kind = param(&p, "spanKind");
    let ops: Vec<Value> = api
        .reader
        .operations(service)
        .await
        .map_err(storage)?
        .into_iter()
        .filter(|(_, k)| kind.is_none_or(|want| want == kind_name(*k)))
        .map(|(n, k)| json!({"name": n, "spanKind": kind_name(k)}))
        .collect();
    let n = ops.len();
    Ok(envelope(Value::Array(ops), n))
}

/// Tag filters from `tags` (a JSON object) and repeated `tag=key:value`.
fn tag_filters(p: &[(String, String)]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    if let Some(t) = param(p, "tags") {
        let v: serde_json::Map<String, Value> = serde_json::from_str(t)
            .map_err(|e| ApiError::bad(format!("malformed 'tags' parameter: {e}")))?;
        for (k, v) in v {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.push((k, text));
        }
    }
    for (k, v) in p.iter().filter(|(k, _)| k == "tag") {
        let _ = k;
        let Some((key, value)) = v.split_once(':') else {
            return Err(ApiError::bad(format!(
                "malformed 'tag' parameter, expected key:value, got {v:?}"
            )));
        };
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

async fn search(State(api): State<JaegerApi>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = params(q);
    let ids: Vec<&str> = p
        .iter()
        .filter(|(k, v)| k == "traceID" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    let mut traces: Vec<Vec<SpanRecord>> = Vec::new();
    if !ids.is_empty() {
        for id in ids {
            let spans = api
                .reader
                .trace(parse_trace_id(id)?)
                .await
                .map_err(storage)?;
            if !spans.is_empty() {
                traces.push(spans);
            }
        }
        return Ok(envelope(traces_json(&traces), 0));
    }
    let Some(service) = param(&p, "service") else {
        return Err(ApiError::bad("parameter 'service' is required"));
    };
    let end_us = parse_us("end", param(&p, "end"), now_us())?;
    let start_us = parse_us("start", param(&p, "start"), end_us - DEFAULT_LOOKBACK_US)?;
    let limit = match param(&p, "limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad(format!("cannot parse limit: {l:?}")))?
            .max(1),
    };
    let q = SpanQuery {
        service: Some(service.to_string()),
        operation: param(&p, "operation").map(str::to_string),
        attributes: tag_filters(&p)?,
        min_duration_ns: param(&p, "minDuration")
            .map(|d| parse_go_duration("minDuration", d))
            .transpose()?,
        max_duration_ns: param(&p, "maxDuration")
            .map(|d| parse_go_duration("maxDuration", d))
            .transpose()?,
        start_ns: start_us.saturating_mul(1000),
        end_ns: end_us.saturating_mul(1000).saturating_add(1000),
        limit: MAX_SCANNED_SPANS,
        max_traces: limit,
    };
    // Matching spans come newest first; keep the first `limit` distinct traces.
    let mut order: Vec<[u8; 16]> = Vec::new();
    for s in api.reader.search_spans(&q).await.map_err(storage)? {
        if !order.contains(&s.span.trace_id) {
            order.push(s.span.trace_id);
            if order.len() >= limit {
                break;
            }
        }
    }
    for id in order {
        let spans = api.reader.trace(id).await.map_err(storage)?;
        if !spans.is_empty() {
            traces.push(spans);
        }
    }
    Ok(envelope(traces_json(&traces), 0))
}

async fn trace(State(api): State<JaegerApi>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let spans = api
        .reader
        .trace(parse_trace_id(&id)?)
        .await
        .map_err(storage)?;
    if spans.is_empty() {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            msg: "trace not found".into(),
        });
    }
    Ok(envelope(traces_json(&[spans]), 0))
}

async fn dependencies(
    State(api): State<JaegerApi>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(q);
    let end_ms = parse_us("endTs", param(&p, "endTs"), now_us() / 1000)?;
    let lookback_ms = parse_us("lookback", param(&p, "lookback"), 86_400_000)?;
    let q = SpanQuery {
        start_ns: (end_ms - lookback_ms).saturating_mul(1_000_000),
        end_ns: end_ms.saturating_mul(1_000_000),
        limit: MAX_SCANNED_SPANS,
        ..Default::default()
    };
    let spans = api.reader.search_spans(&q).await.map_err(storage)?;
    let mut service_of: HashMap<([u8; 16], [u8; 8]), &str> = HashMap::with_capacity(spans.len());
    for s in &spans {
        service_of.insert((s.span.trace_id, s.span.span_id), &s.service_name);
    }
    let mut edges: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for s in &spans {
        if s.span.parent_span_id == [0; 8] {
            continue;
        }
        if let Some(parent) = service_of.get(&(s.span.trace_id, s.span.parent_span_id))
            && *parent != s.service_name
        {
            *edges.entry((parent, &s.service_name)).or_default() += 1;
        }
    }
    let data: Vec<Value> = edges
        .into_iter()
        .map(|((p, c), n)| json!({"parent": p, "child": c, "callCount": n}))
        .collect();
    Ok(envelope(Value::Array(data), 0))
}

/// The `/jaeger/api` routes.
pub fn router(api: JaegerApi) -> Router {
    Router::new()
        .route("/jaeger/api/services", get(services))
        .route(
            "/jaeger/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/jaeger/api/operations", get(operations))
        .route("/jaeger/api/traces", get(search))
        .route("/jaeger/api/traces/{id}", get(trace))
        .route("/jaeger/api/dependencies", get(dependencies))
        .route(
            "/api/v1/overview/services",
            get(overview::services_overview),
        )
        .with_state(api)
}
