//! The Loki push API, for clients that ship logs to Loki (Promtail, Grafana Alloy's
//! `loki.write`, the Docker driver, `logcli`-era tooling): `POST /loki/api/v1/push` with
//! a JSON body (optionally gzip/deflate) or a Snappy-compressed protobuf `PushRequest`,
//! and OTLP logs at `/otlp/v1/logs` as Loki serves them. Success is 204; errors are
//! plain text.
//!
//! A pushed stream keeps its label set as the stream labels; structured metadata
//! becomes record attributes.

#[cfg(test)]
mod tests;

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use signalbox_storage::{AnyValue, Attributes, Labels, LogRecord, LogStream, LogsBatch};

use crate::Collector;
use crate::error::IngestError;
use crate::otlp::convert::now_ns;
use crate::otlp::http::{gunzip, read_body};
use crate::otlp::{Logs, Partial};

/// The wire messages of Loki's `push.proto` (`logproto` package).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub(crate) streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub(crate) labels: String,
        #[prost(message, repeated, tag = "2")]
        pub(crate) entries: Vec<EntryAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub(crate) timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub(crate) line: String,
        #[prost(message, repeated, tag = "3")]
        pub(crate) structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub(crate) name: String,
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Timestamp {
        #[prost(int64, tag = "1")]
        pub(crate) seconds: i64,
        #[prost(int32, tag = "2")]
        pub(crate) nanos: i32,
    }
}

pub(crate) use proto::PushRequest;

fn bad(reason: impl Into<String>) -> IngestError {
    IngestError::Decode {
        what: "loki push",
        reason: reason.into(),
    }
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A label set in selector syntax: `{name="value", ...}` with Go string escapes.
pub(crate) fn parse_labels(s: &str) -> Result<Labels, String> {
    let err = |why: &str| format!("invalid stream labels {s:?}: {why}");
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| err("expected {name=\"value\", ...}"))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| err("expected ="))?;
        let name = rest[..eq].trim();
        if !valid_name(name) {
            return Err(err(&format!("invalid label name {name:?}")));
        }
        rest = rest[eq + 1..].trim_start();
        let quote = rest
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '`')
            .ok_or_else(|| err("expected a quoted value"))?;
        let mut value = String::new();
        let mut chars = rest[1..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    end = Some(i + 2);
                    break;
                }
                '\\' if quote == '"' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(e @ ('\\' | '"' | '\'')) => value.push(e),
                    other => {
                        return Err(err(&format!(
                            "unsupported escape \\{}",
                            other.unwrap_or(' ')
                        )));
                    }
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| err("unterminated value"))?;
        pairs.push((name.to_string(), value));
        rest = rest[end..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(err("expected , between labels"));
        }
    }
    let labels = Labels::from_pairs(pairs);
    if labels.is_empty() {
        return Err(err("at least one label pair is required per stream"));
    }
    Ok(labels)
}

fn record(t_ns: i64, line: String, meta: Vec<(String, String)>, now: i64) -> LogRecord {
    LogRecord {
        time_ns: t_ns,
        observed_time_ns: now,
        body: AnyValue::String(line),
        attributes: Attributes(
            meta.into_iter()
                .map(|(k, v)| (k, AnyValue::String(v)))
                .collect(),
        ),
        ..Default::default()
    }
}

fn stream(labels: Labels, records: Vec<LogRecord>) -> LogStream {
    let resource = Attributes(
        labels
            .iter()
            .map(|l| (l.name.clone(), AnyValue::String(l.value.clone())))
            .collect(),
    );
    LogStream {
        labels,
        resource: Arc::new(resource),
        records,
    }
}

/// A protobuf `PushRequest` as log streams.
pub(crate) fn from_protobuf(req: PushRequest) -> Result<LogsBatch, IngestError> {
    let now = now_ns();
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        let labels = parse_labels(&s.labels).map_err(bad)?;
        let records = s
            .entries
            .into_iter()
            .map(|e| {
                let ts = e.timestamp.unwrap_or_default();
                let t = ts
                    .seconds
                    .checked_mul(1_000_000_000)
                    .and_then(|s| s.checked_add(i64::from(ts.nanos)));
                let t = t.ok_or_else(|| bad(format!("timestamp {}s out of range", ts.seconds)))?;
                let meta = e
                    .structured_metadata
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect();
                Ok(record(t, e.line, meta, now))
            })
            .collect::<Result<_, IngestError>>()?;
        streams.push(stream(labels, records));
    }
    Ok(LogsBatch { streams })
}

#[derive(serde::Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(serde::Deserialize)]
struct JsonStream {
    stream: std::collections::BTreeMap<String, String>,
    values: Vec<Vec<serde_json::Value>>,
}

/// A JSON push body as log streams.
pub(crate) fn from_json(body: &[u8]) -> Result<LogsBatch, IngestError> {
    let req: JsonPush = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let now = now_ns();
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        if let Some(n) = s.stream.keys().find(|n| !valid_name(n)) {
            return Err(bad(format!("invalid label name {n:?}")));
        }
        let labels = Labels::from_pairs(s.stream);
        if labels.is_empty() {
            return Err(bad("at least one label pair is required per stream"));
        }
        let mut records = Vec::with_capacity(s.values.len());
        for v in s.values {
            let (t, line) = match (v.first(), v.get(1)) {
                (Some(serde_json::Value::String(t)), Some(serde_json::Value::String(l))) => (t, l),
                _ => {
                    return Err(bad(
                        "each value must be [\"<nanosecond timestamp as a string>\", \"<line>\"] with optional metadata",
                    ));
                }
            };
            let t: i64 = t.parse().map_err(|_| {
                bad(format!(
                    "invalid timestamp {t:?}: want nanoseconds as a string"
                ))
            })?;
            let meta = match v.get(2) {
                None => Vec::new(),
                Some(serde_json::Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(bad(format!("structured metadata {k:?} must be a string"))),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("structured metadata must be an object of strings")),
            };
            records.push(record(t, line.clone(), meta, now));
        }
        streams.push(stream(labels, records));
    }
    Ok(LogsBatch { streams })
}

fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("deflate: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge {
            size: out.len(),
            limit,
        });
    }
    Ok(out)
}

fn unsnappy(data: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let len = snap::raw::decompress_len(data).map_err(|e| bad(format!("snappy: {e}")))?;
    if len > limit {
        return Err(IngestError::TooLarge { size: len, limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| bad(format!("snappy: {e}")))
}

async fn push(c: Arc<Collector>, headers: HeaderMap, body: Body) -> Response {
    let mut received = 0usize;
    let res = async {
        let limit = c.config().max_request_bytes;
        let raw = read_body(body, limit).await?;
        received = raw.len();
        let _permit = c.admit(raw.len())?;
        let header_str = |h: header::HeaderName| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        };
        let encoding = header_str(header::CONTENT_ENCODING);
        let batch = if header_str(header::CONTENT_TYPE) == "application/json" {
            let plain: Bytes = match encoding.as_str() {
                "gzip" | "x-gzip" => Bytes::from(gunzip(&raw, limit)?),
                "deflate" => Bytes::from(inflate(&raw, limit)?),
                "" | "identity" => raw,
                other => return Err(IngestError::UnsupportedEncoding(other.to_string())),
            };
            let _more = c.admit(plain.len())?;
            from_json(&plain)?
        } else {
            // Protobuf is always Snappy block format; `Content-Encoding: snappy` says so again.
            if !matches!(encoding.as_str(), "" | "identity" | "snappy") {
                return Err(IngestError::UnsupportedEncoding(encoding));
            }
            let plain = unsnappy(&raw, limit)?;
            let _more = c.admit(plain.len())?;
            from_protobuf(
                prost::Message::decode(plain.as_slice()).map_err(|e| bad(e.to_string()))?,
            )?
        };
        let out = c.sink.write_logs(batch).await?;
        Ok(Partial::new(out.rejected, Vec::new(), out.reasons))
    }
    .await;
    match res {
        Ok(p) => {
            c.count_ok::<Logs>("loki", received, &p);
            if p.rejected > 0 {
                // Loki answers a push with rejected entries 400 and names them.
                let msg = format!("{} entries rejected: {}\n", p.rejected, p.message);
                return (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    msg,
                )
                    .into_response();
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            c.count_refused::<Logs>("loki", received, &e);
            let mut resp = (
                e.http_status(),
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{e}\n"),
            )
                .into_response();
            if let Some(d) = e.retry_after()
                && let Ok(v) = HeaderValue::from_str(&d.as_secs().max(1).to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// `POST /loki/api/v1/push` (and `/api/prom/push`, its old name), plus OTLP logs at
/// `/otlp/v1/logs`, where Loki takes them.
pub fn router(c: Arc<Collector>) -> Router {
    Router::new()
        .route(
            "/loki/api/v1/push",
            post(|State(c): State<Arc<Collector>>, h: HeaderMap, b: Body| push(c, h, b)),
        )
        .route(
            "/api/prom/push",
            post(|State(c): State<Arc<Collector>>, h: HeaderMap, b: Body| push(c, h, b)),
        )
        .route(
            "/otlp/v1/logs",
            post(|State(c): State<Arc<Collector>>, h: HeaderMap, b: Body| {
                crate::otlp::http::handle::<Logs>(c, h, b)
            }),
        )
        .with_state(c)
}
