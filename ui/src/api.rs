//! Calls to SignalBox's own HTTP APIs, the same from the server and the browser.
//!
//! In the browser a call is a `fetch` to the page's origin. On the server the page's
//! render context carries an [`Api`] holding the API router, and a call is a request
//! handled by that router in process: no socket, same answer.

mod traces;

pub use traces::{JaegerEnvelope, Process, Reference, Span, SpanEvent, Tag, Trace};

use crate::chart::ChartExemplar;
use crate::timerange::Range;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How pages reach the APIs. Obtain with [`use_api`] while rendering (before any
/// `.await`), then move it into the resource's future.
#[derive(Clone)]
pub struct Api {
    #[cfg(feature = "ssr")]
    router: axum::Router,
}

/// Most bytes an API answer may have before a page gives up on it.
#[cfg(feature = "ssr")]
const MAX_ANSWER_BYTES: usize = 64 << 20;

impl Api {
    /// The server-side client: requests go to `router` (the API routes, without the UI).
    #[cfg(feature = "ssr")]
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }

    /// GETs `path_and_query` and decodes the JSON answer, whatever its status code
    /// (the APIs answer errors in JSON too).
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, String> {
        let (status, body) = self.get(path_and_query).await?;
        serde_json::from_slice(&body).map_err(|e| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() || !(200..300).contains(&status) {
                format!("HTTP {status}: {}", truncate(text, 300))
            } else {
                format!("unexpected answer from {path_and_query}: {e}")
            }
        })
    }

    /// GETs `path_and_query` as text (for answers that are not JSON, like `/metrics`).
    pub async fn get_text(&self, path_and_query: &str) -> Result<String, String> {
        let (status, body) = self.get(path_and_query).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(format!("HTTP {status}: {}", truncate(text.trim(), 300)))
        }
    }

    /// Sends `body` as JSON with `method` (`POST`, `PUT`, `DELETE`) and returns the JSON
    /// answer (`null` when it is empty). An answer outside 2xx is an error, worded by
    /// its `error` field when it has one. Used by forms that change state.
    pub async fn send_json(
        &self,
        method: &'static str,
        path: &str,
        body: Option<String>,
    ) -> Result<serde_json::Value, String> {
        let (status, answer) = self.request(method, path, body).await?;
        let text = String::from_utf8_lossy(&answer);
        let text = text.trim();
        let v: Option<serde_json::Value> = if text.is_empty() {
            Some(serde_json::Value::Null)
        } else {
            serde_json::from_str(text).ok()
        };
        if (200..300).contains(&status) {
            v.ok_or_else(|| format!("unexpected answer from {path}: {}", truncate(text, 300)))
        } else {
            Err(v
                .as_ref()
                .and_then(|v| v["error"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}: {}", truncate(text, 300))))
        }
    }

    async fn get(&self, path_and_query: &str) -> Result<(u16, Vec<u8>), String> {
        self.request("GET", path_and_query, None).await
    }

    #[cfg(feature = "ssr")]
    async fn request(
        &self,
        method: &'static str,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<(u16, Vec<u8>), String> {
        use tower::ServiceExt;
        let mut req = http::Request::builder().method(method).uri(path_and_query);
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(
                body.map(axum::body::Body::from)
                    .unwrap_or_else(axum::body::Body::empty),
            )
            .map_err(|e| format!("bad request {path_and_query}: {e}"))?;
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("reading the answer of {path_and_query}: {e}"))?;
        Ok((status, body.to_vec()))
    }

    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    async fn request(
        &self,
        method: &'static str,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<(u16, Vec<u8>), String> {
        use gloo_net::http::{Method, RequestBuilder};
        let path = path_and_query.to_string();
        send_wrapper::SendWrapper::new(async move {
            let m = match method {
                "POST" => Method::POST,
                "DELETE" => Method::DELETE,
                "PUT" => Method::PUT,
                _ => Method::GET,
            };
            let signal = in_flight_signal();
            let builder = RequestBuilder::new(&path)
                .method(m)
                .abort_signal(signal.as_ref());
            let req = match body {
                Some(b) => builder
                    .header("content-type", "application/json")
                    .body(b)
                    .map_err(|e| format!("request to {path} failed: {e}"))?,
                None => builder
                    .build()
                    .map_err(|e| format!("request to {path} failed: {e}"))?,
            };
            // A request the user cancelled fails with that, not with the browser's words.
            let failed = |e: String| {
                if signal.as_ref().is_some_and(web_sys::AbortSignal::aborted) {
                    CANCELLED.to_string()
                } else {
                    e
                }
            };
            let resp = req
                .send()
                .await
                .map_err(|e| failed(format!("request to {path} failed: {e}")))?;
            let status = resp.status();
            let body = resp
                .binary()
                .await
                .map_err(|e| failed(format!("reading the answer of {path}: {e}")))?;
            Ok((status, body))
        })
        .await
    }

    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    async fn request(
        &self,
        _method: &'static str,
        path_and_query: &str,
        _body: Option<String>,
    ) -> Result<(u16, Vec<u8>), String> {
        Err(format!("no way to reach {path_and_query} in this build"))
    }
}

/// The error of a request stopped by [`cancel_requests`].
pub const CANCELLED: &str = "Cancelled.";

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
thread_local! {
    /// Aborts the requests in flight; replaced after each cancel.
    static IN_FLIGHT: std::cell::RefCell<Option<web_sys::AbortController>> =
        const { std::cell::RefCell::new(None) };
}

/// The signal that aborts a new request when the user cancels.
#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn in_flight_signal() -> Option<web_sys::AbortSignal> {
    IN_FLIGHT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = web_sys::AbortController::new().ok();
        }
        c.as_ref().map(web_sys::AbortController::signal)
    })
}

/// Stops every API request the page is waiting for (the Cancel button of a running
/// query); each fails with [`CANCELLED`]. Requests made afterwards are not affected.
pub fn cancel_requests() {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    if let Some(c) = IN_FLIGHT.with(|c| c.borrow_mut().take()) {
        c.abort();
    }
}

/// The [`Api`] of the current render: on the server, the one the request handler
/// provided as context; in the browser, `fetch`.
pub fn use_api() -> Api {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::expect_context::<Api>()
    }
    #[cfg(not(feature = "ssr"))]
    {
        Api {}
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The envelope of every Prometheus API answer.
#[derive(Debug, Clone, Deserialize)]
pub struct PromEnvelope<T> {
    pub status: String,
    pub data: Option<T>,
    #[serde(rename = "errorType")]
    pub error_type: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl<T> PromEnvelope<T> {
    /// The data with its warnings, or the error as Prometheus words it.
    pub fn into_result(self) -> Result<(T, Vec<String>), String> {
        match (self.status.as_str(), self.data) {
            ("success", Some(d)) => Ok((d, self.warnings)),
            _ => Err(match (self.error_type, self.error) {
                (Some(t), Some(e)) => format!("{t}: {e}"),
                (None, Some(e)) => e,
                _ => format!("query failed (status {})", self.status),
            }),
        }
    }
}

/// A labelled series as the query APIs return it.
pub type Labels = BTreeMap<String, String>;

/// `data` of `/api/v1/query` and `/api/v1/query_range`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryData {
    Matrix(Vec<RangeSeries>),
    Vector(Vec<InstantSample>),
    Scalar(Sample),
    String(Sample),
}

/// One `[time, "value"]` pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample(pub f64, pub String);

impl Sample {
    /// The value as a number; Prometheus writes `NaN`, `+Inf` and `-Inf` as strings.
    pub fn value(&self) -> f64 {
        match self.1.as_str() {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeSeries {
    pub metric: Labels,
    #[serde(default)]
    pub values: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstantSample {
    pub metric: Labels,
    pub value: Option<Sample>,
}

/// One series' entry in `data` of `/api/v1/query_exemplars`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExemplarSeries {
    #[serde(rename = "seriesLabels")]
    pub series_labels: Labels,
    #[serde(default)]
    pub exemplars: Vec<ExemplarPoint>,
}

/// An exemplar: its labels, value (a string, as sample values are) and time in seconds.
#[derive(Debug, Clone, Deserialize)]
pub struct ExemplarPoint {
    #[serde(default)]
    pub labels: Labels,
    pub value: String,
    pub timestamp: f64,
}

/// The exemplars of the series the PromQL query `q` selects over `r`, as a chart draws
/// them. They only decorate a chart: a failure (which would repeat the query's own
/// error) gives none.
pub async fn exemplars_of(api: &Api, q: &str, r: Range) -> Vec<ChartExemplar> {
    let url = format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        encode(q),
        r.start,
        r.end
    );
    match api
        .get_json::<PromEnvelope<Vec<ExemplarSeries>>>(&url)
        .await
        .and_then(PromEnvelope::into_result)
    {
        Ok((found, _)) => chart_exemplars(found).collect(),
        Err(_) => Vec::new(),
    }
}

/// The exemplars of an answer of `/api/v1/query_exemplars`, as the chart draws them.
fn chart_exemplars(found: Vec<ExemplarSeries>) -> impl Iterator<Item = ChartExemplar> {
    found.into_iter().flat_map(|s| {
        let series = series_name(&s.series_labels);
        // A value that is not a finite number cannot be drawn (nor carried to the
        // browser in JSON).
        s.exemplars.into_iter().filter_map(move |e| {
            let value = Sample(e.timestamp, e.value).value();
            value.is_finite().then(|| ChartExemplar {
                t: e.timestamp,
                value,
                series: series.clone(),
                labels: e.labels.into_iter().collect(),
            })
        })
    })
}

/// `data` of Loki's `/loki/api/v1/query_range`: log lines or, for a metric query,
/// series like Prometheus'.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum LokiData {
    Streams(Vec<LokiStream>),
    Matrix(Vec<RangeSeries>),
    Vector(Vec<InstantSample>),
}

/// One stream: its labels and `[nanoseconds, line]` (or `[.., .., metadata]`) entries.
#[derive(Debug, Clone, Deserialize)]
pub struct LokiStream {
    pub stream: Labels,
    pub values: Vec<Vec<serde_json::Value>>,
}

/// A log line with the labels of its stream (and its structured metadata, if any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts_ns: i64,
    pub line: String,
    pub labels: Labels,
}

impl LokiStream {
    /// The stream's entries as lines; structured metadata joins the labels.
    pub fn into_lines(self) -> impl Iterator<Item = LogLine> {
        let stream = self.stream;
        self.values.into_iter().filter_map(move |v| {
            let ts_ns = v.first()?.as_str()?.parse().ok()?;
            let line = v.get(1)?.as_str()?.to_string();
            let mut labels = stream.clone();
            if let Some(meta) = v.get(2).and_then(|m| m.as_object()) {
                for (k, val) in meta {
                    if let Some(val) = val.as_str() {
                        labels.insert(k.clone(), val.to_string());
                    }
                }
            }
            Some(LogLine {
                ts_ns,
                line,
                labels,
            })
        })
    }
}

/// `name{a="b", c="d"}` as Prometheus prints a series.
pub fn series_name(labels: &Labels) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_answers_decode_in_every_result_type() {
        let m: PromEnvelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1700000000,"1"],[1700000015.5,"NaN"]]}]}}"#,
        )
        .expect("matrix");
        let (QueryData::Matrix(series), _) = m.into_result().expect("success") else {
            panic!("not a matrix")
        };
        assert_eq!(series[0].values[1].0, 1_700_000_015.5);
        assert!(series[0].values[1].value().is_nan());
        let v: PromEnvelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}"#,
        )
        .expect("vector");
        let (QueryData::Vector(v), _) = v.into_result().expect("success") else {
            panic!("not a vector")
        };
        assert_eq!(v[0].value.as_ref().map(Sample::value), Some(f64::INFINITY));
        let s: PromEnvelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
        )
        .expect("scalar");
        assert_eq!(
            s.into_result().expect("ok").0,
            QueryData::Scalar(Sample(1.0, "2".into()))
        );
        let e: PromEnvelope<QueryData> = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#,
        )
        .expect("error");
        assert_eq!(
            e.into_result().expect_err("error"),
            "bad_data: invalid parameter \"query\": 1:5: parse error"
        );
    }

    #[test]
    fn loki_streams_become_lines_with_their_labels() {
        let e: PromEnvelope<LokiData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"streams","result":[{"stream":{"level":"error"},"values":[["1700000000000000001","boom",{"trace_id":"ab"}],["1700000000000000000","<b>"],["bad","x"]]}]}}"#,
        )
        .expect("streams");
        let (LokiData::Streams(s), _) = e.into_result().expect("success") else {
            panic!("not streams")
        };
        let lines: Vec<LogLine> = s.into_iter().flat_map(LokiStream::into_lines).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].ts_ns, 1_700_000_000_000_000_001);
        assert_eq!(
            lines[0].labels.get("trace_id").map(String::as_str),
            Some("ab")
        );
        assert_eq!(lines[1].line, "<b>");
        assert!(!lines[1].labels.contains_key("trace_id"));
    }

    #[test]
    fn series_are_named_like_prometheus_prints_them() {
        let mut l = Labels::new();
        l.insert("__name__".into(), "up".into());
        assert_eq!(series_name(&l), "up");
        l.insert("job".into(), "a\"b".into());
        assert_eq!(series_name(&l), r#"up{job="a\"b"}"#);
        l.remove("__name__");
        assert_eq!(series_name(&l), r#"{job="a\"b"}"#);
        assert_eq!(series_name(&Labels::new()), "{}");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("rate(x[5m]) + 1"), "rate%28x%5B5m%5D%29%20%2B%201");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
