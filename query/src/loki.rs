//! The Loki HTTP API (`/loki/api/v1/...`): LogQL queries, labels, label values and
//! series, with Loki's parameter rules, response shapes and plain-text errors, so
//! Grafana's Loki data source and `logcli` work against it.

mod tail;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use signalbox_storage::{Direction, Labels, TracesReader};

use crate::jaeger::hex_id;
use crate::logql::{LogqlEngine, LogqlError, LogqlResult, ScanStats, Span, StreamResult};
use crate::prometheus::{Params, labels_json, promql_duration, ts_json, value_string};

/// Most log lines one query may ask for (Loki's `max_entries_limit_per_query`).
pub const MAX_LIMIT: usize = 5000;
const DEFAULT_LIMIT: usize = 100;
const NS_PER_S: i64 = 1_000_000_000;

/// What the Loki API needs: the LogQL engine, how long a query may run, and the traces
/// (to find the time range of a trace whose logs are asked for).
#[derive(Clone)]
pub struct LokiApi {
    engine: LogqlEngine,
    timeout: Duration,
    traces: Option<Arc<dyn TracesReader>>,
}

impl LokiApi {
    pub fn new(engine: LogqlEngine, timeout: Duration) -> LokiApi {
        LokiApi {
            engine,
            timeout,
            traces: None,
        }
    }

    /// Lets `/api/v1/traces/{id}/logs` look up the trace's time range.
    pub fn with_traces(mut self, traces: Arc<dyn TracesReader>) -> LokiApi {
        self.traces = Some(traces);
        self
    }
}

/// An error as Loki sends it: a status and a plain-text message.
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl From<LogqlError> for ApiError {
    fn from(e: LogqlError) -> Self {
        let status = if e.is_client_error() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.1),
        )
            .into_response()
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A Loki timestamp: float seconds when it has a `.`, integer seconds up to ten
/// digits, integer nanoseconds beyond, else RFC 3339.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.contains('.') && !s.contains(['T', 't']) {
        let f: f64 = s.parse().ok()?;
        let ns = f * 1e9;
        return (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64);
    }
    if let Ok(n) = s.parse::<i64>() {
        let digits = s.trim_start_matches('-').len();
        return if digits <= 10 {
            n.checked_mul(NS_PER_S)
        } else {
            Some(n)
        };
    }
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
}

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => parse_time(s).ok_or_else(|| {
            ApiError::bad(format!("invalid {name} parameter {s:?}: not a timestamp"))
        }),
    }
}

/// A duration in nanoseconds: float seconds or a duration like `5m`.
fn duration_param(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(s) = p.get(name).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Ok(Some((f * 1e9) as i64));
    }
    promql_duration(s)
        .and_then(|ms| ms.checked_mul(1_000_000))
        .map(Some)
        .ok_or_else(|| ApiError::bad(format!("invalid {name} parameter {s:?}: not a duration")))
}

/// `start`/`end` (or `since`), defaulting to the last `default_window`.
fn range(p: &Params, default_window: i64) -> Result<(i64, i64), ApiError> {
    let end = time_param(p, "end", now_ns())?;
    let window = duration_param(p, "since")?.unwrap_or(default_window);
    let start = time_param(p, "start", end.saturating_sub(window))?;
    if end < start {
        return Err(ApiError::bad(
            "the end timestamp must not be before the start time",
        ));
    }
    Ok((start, end))
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    let limit = match p.get("limit").filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::bad(format!(
                "invalid limit parameter {s:?}: not a non-negative integer"
            ))
        })?,
    };
    if limit > MAX_LIMIT {
        return Err(ApiError::bad(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {MAX_LIMIT})"
        )));
    }
    Ok(limit)
}

fn direction(p: &Params) -> Result<Direction, ApiError> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(ApiError::bad(format!(
            "invalid direction {other:?}: want forward or backward"
        ))),
    }
}

fn query_param(p: &Params) -> Result<&str, ApiError> {
    p.get("query")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad("query parameter is required"))
}

/// Streams as Loki writes them: labels and `[nanoseconds as text, line]` pairs.
fn streams_json(streams: &[StreamResult]) -> Value {
    json!(streams
        .iter()
        .map(|s| json!({
            "stream": labels_json(&s.labels),
            "values": s.entries.iter().map(|(t, l)| json!([t.to_string(), l])).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

fn result_json(r: &LogqlResult, stats: ScanStats, elapsed: Duration) -> Value {
    let (kind, result, returned) = match r {
        LogqlResult::Streams(streams) => (
            "streams",
            streams_json(streams),
            streams.iter().map(|s| s.entries.len()).sum::<usize>(),
        ),
        LogqlResult::Scalar(t, v) => ("scalar", json!([ts_json(*t), value_string(*v)]), 1),
        LogqlResult::Vector(v) => (
            "vector",
            json!(v
                .iter()
                .map(|(l, t, f)| json!({"metric": labels_json(l), "value": [ts_json(*t), value_string(*f)]}))
                .collect::<Vec<_>>()),
            v.len(),
        ),
        LogqlResult::Matrix(m) => (
            "matrix",
            json!(m
                .iter()
                .map(|(l, pts)| json!({
                    "metric": labels_json(l),
                    "values": pts.iter().map(|(t, f)| json!([ts_json(*t), value_string(*f)])).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()),
            m.len(),
        ),
    };
    json!({
        "status": "success",
        "data": {
            "resultType": kind,
            "result": result,
            "stats": {"summary": {
                "totalLinesProcessed": stats.lines,
                "totalBytesProcessed": stats.bytes,
                "totalEntriesReturned": returned,
                "execTime": elapsed.as_secs_f64(),
            }},
        },
    })
}

async fn run<T>(
    api: &LokiApi,
    fut: impl std::future::Future<Output = Result<T, LogqlError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(api.timeout, fut).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError(
            StatusCode::GATEWAY_TIMEOUT,
            "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed".into(),
        )),
    }
}

async fn query_range(
    State(api): State<LokiApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let query = query_param(&p)?;
    let (start, end) = range(&p, 3600 * NS_PER_S)?;
    let step = match duration_param(&p, "step")? {
        Some(s) => s,
        None => ((end - start) / 250 / NS_PER_S).max(1) * NS_PER_S,
    };
    if step <= 0 {
        return Err(ApiError::bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > 11_000 {
        return Err(ApiError::bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let (limit, direction) = (limit(&p)?, direction(&p)?);
    let began = std::time::Instant::now();
    let (r, stats) = run(
        &api,
        api.engine
            .query_range(query, start, end, step, direction, limit),
    )
    .await?;
    Ok(axum::Json(result_json(&r, stats, began.elapsed())).into_response())
}

async fn query(
    State(api): State<LokiApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let query = query_param(&p)?;
    let t = time_param(&p, "time", now_ns())?;
    limit(&p)?;
    direction(&p)?;
    let began = std::time::Instant::now();
    let (r, stats) = run(&api, api.engine.query_instant(query, t)).await?;
    Ok(axum::Json(result_json(&r, stats, began.elapsed())).into_response())
}

async fn streams(api: &LokiApi, p: &Params, selectors: &[&str]) -> Result<Vec<Labels>, ApiError> {
    let (start, end) = range(p, 6 * 3600 * NS_PER_S)?;
    let mut out = Vec::new();
    if selectors.is_empty() {
        out = run(api, api.engine.streams(None, start, end)).await?;
    }
    for s in selectors {
        out.extend(run(api, api.engine.streams(Some(s), start, end)).await?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// Label names of the streams matching `query` (or all streams), or the values of
/// one label among them.
async fn label_data(api: &LokiApi, p: &Params, name: Option<&str>) -> Result<Response, ApiError> {
    let selectors: Vec<&str> = p
        .get("query")
        .filter(|s| !s.trim().is_empty())
        .into_iter()
        .collect();
    let found = streams(api, p, &selectors).await?;
    let mut out: Vec<String> = match name {
        Some(n) => found
            .iter()
            .filter_map(|l| l.get(n).map(str::to_owned))
            .collect(),
        None => found
            .iter()
            .flat_map(|l| l.iter().map(|l| l.name.clone()))
            .collect(),
    };
    out.sort();
    out.dedup();
    Ok(success(json!(out)))
}

async fn labels(
    State(api): State<LokiApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    label_data(&api, &Params::new(q, &headers, &body), None).await
}

async fn label_values(
    State(api): State<LokiApi>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    label_data(&api, &Params::new(q, &headers, &body), Some(&name)).await
}

async fn series(
    State(api): State<LokiApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let mut selectors = p.all("match[]");
    selectors.extend(p.all("match"));
    let found = streams(&api, &p, &selectors).await?;
    Ok(success(json!(
        found.iter().map(labels_json).collect::<Vec<_>>()
    )))
}

/// `GET /loki/api/v1/index/stats`: streams, chunks, entries and bytes of the streams a
/// selector matches in the range (default the last hour).
async fn index_stats(
    State(api): State<LokiApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let query = query_param(&p)?;
    let (start_ns, end_ns) = range(&p, 3600 * NS_PER_S)?;
    let (s, _) = run(
        &api,
        api.engine.index_stats(query, Span { start_ns, end_ns }),
    )
    .await?;
    Ok(axum::Json(json!({
        "streams": s.streams,
        "chunks": s.chunks,
        "entries": s.entries,
        "bytes": s.bytes,
    }))
    .into_response())
}

/// Slack around a trace's spans when looking for its logs: loggers stamp lines a little
/// before or after the span that was active.
const TRACE_LOG_SLACK_NS: i64 = 60 * NS_PER_S;
/// How far back the logs of a trace are looked for when the trace itself is not stored.
const TRACE_LOG_WINDOW_NS: i64 = 24 * 3600 * NS_PER_S;

/// `GET /api/v1/traces/{trace_id}/logs`: the log lines of a trace (of one span with
/// `spanID`), oldest first, as a Loki `streams` result. The time range is the trace's
/// span times with a minute either side, else `start`/`end` (default the last day).
async fn trace_logs(
    State(api): State<LokiApi>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let trace_id = hex_id::<16>(id.trim())
        .filter(|t| *t != [0; 16])
        .ok_or_else(|| {
            ApiError::bad(format!("invalid trace id {id:?}: want 1 to 32 hex digits"))
        })?;
    let span_id = match p.get("spanID").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(hex_id::<8>(s.trim()).ok_or_else(|| {
            ApiError::bad(format!("invalid spanID {s:?}: want 1 to 16 hex digits"))
        })?),
    };
    let limit = match p.get("limit") {
        None | Some("") => MAX_LIMIT,
        Some(_) => limit(&p)?,
    };
    let asked = p.get("start").is_some() || p.get("end").is_some();
    let mut span = {
        let (start_ns, end_ns) = range(&p, TRACE_LOG_WINDOW_NS)?;
        Span { start_ns, end_ns }
    };
    if let (Some(traces), false) = (&api.traces, asked) {
        let spans = traces
            .trace(trace_id)
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let first = spans.iter().map(|s| s.span.start_ns).min();
        let last = spans
            .iter()
            .map(|s| s.span.end_ns.max(s.span.start_ns))
            .max();
        if let (Some(first), Some(last)) = (first, last) {
            span = Span {
                start_ns: first.saturating_sub(TRACE_LOG_SLACK_NS),
                end_ns: last.saturating_add(TRACE_LOG_SLACK_NS),
            };
        }
    }
    let began = std::time::Instant::now();
    let (streams, stats) = run(&api, api.engine.trace_logs(trace_id, span_id, span, limit)).await?;
    Ok(axum::Json(result_json(
        &LogqlResult::Streams(streams),
        stats,
        began.elapsed(),
    ))
    .into_response())
}

async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}

/// The `/loki/api/v1` query routes.
pub fn router(api: LokiApi) -> Router {
    Router::new()
        .route("/loki/api/v1/query", get(query).post(query))
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route("/loki/api/v1/tail", get(tail::tail))
        .route(
            "/loki/api/v1/index/stats",
            get(index_stats).post(index_stats),
        )
        .route("/api/v1/traces/{trace_id}/logs", get(trace_logs))
        .with_state(api)
}
