//! OTLP/HTTP: `POST /v1/{traces,metrics,logs}` with a protobuf or JSON body, optionally
//! gzip-compressed; the response (or error `Status`) uses the request's encoding.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;

use super::{Export, Logs, Metrics, Traces, decode_json, decode_protobuf};
use crate::Collector;
use crate::error::IngestError;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn content_type(headers: &HeaderMap) -> Result<Encoding, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        PROTOBUF => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        _ => Err(ct),
    }
}

fn error_response(e: &IngestError, enc: Option<Encoding>) -> Response {
    let st = RpcStatus {
        code: e.grpc_code() as i32,
        message: e.to_string(),
    };
    let (ct, body) = match enc {
        Some(Encoding::Protobuf) => (PROTOBUF, prost::Message::encode_to_vec(&st)),
        _ => (
            JSON,
            serde_json::to_vec(&serde_json::json!({"code": st.code, "message": st.message}))
                .unwrap_or_default(),
        ),
    };
    let mut resp = (e.http_status(), [(header::CONTENT_TYPE, ct)], body).into_response();
    if let Some(d) = e.retry_after() {
        let secs = d.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, IngestError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(IngestError::TooLarge {
            size: limit + 1,
            limit,
        }),
        Err(e) => Err(IngestError::Decode {
            what: "http",
            reason: format!("reading body: {e}"),
        }),
    }
}

pub(crate) fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    let mut dec = flate2::read::GzDecoder::new(data).take(limit as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| IngestError::Decode {
        what: "gzip",
        reason: e.to_string(),
    })?;
    if out.len() > limit {
        return Err(IngestError::TooLarge {
            size: out.len(),
            limit,
        });
    }
    Ok(out)
}

pub(crate) async fn handle<E: Export>(
    c: Arc<Collector>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let enc = content_type(&headers);
    let mut received = 0usize;
    let res = async {
        let enc = enc
            .as_ref()
            .map_err(|ct| IngestError::UnsupportedMediaType(ct.clone()))?;
        let limit = c.config().max_request_bytes;
        if let Some(len) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            && len > limit
        {
            return Err(IngestError::TooLarge { size: len, limit });
        }
        let raw = read_body(body, limit).await?;
        received = raw.len();
        let _permit = c.admit(raw.len())?;
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .trim()
            .to_ascii_lowercase();
        let plain: Bytes = match encoding.as_str() {
            "gzip" | "x-gzip" => Bytes::from(gunzip(&raw, limit)?),
            "" | "identity" => raw,
            other => return Err(IngestError::UnsupportedEncoding(other.to_string())),
        };
        let _more = c.admit(plain.len())?;
        let req = match enc {
            Encoding::Protobuf => decode_protobuf::<E>(&plain)?,
            Encoding::Json => decode_json::<E>(&plain)?,
        };
        let partial = E::export(&c, req).await?;
        Ok((*enc, partial))
    }
    .await;
    match res {
        Ok((enc, partial)) => {
            c.count_ok::<E>("http", received, &partial);
            let resp = E::response(partial);
            let (ct, body) = match enc {
                Encoding::Protobuf => (PROTOBUF, prost::Message::encode_to_vec(&resp)),
                Encoding::Json => (
                    JSON,
                    serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec()),
                ),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Err(e) => {
            c.count_refused::<E>("http", received, &e);
            error_response(&e, enc.ok())
        }
    }
}

/// The OTLP/HTTP routes.
pub fn router(c: Arc<Collector>) -> Router {
    Router::new()
        .route(
            "/v1/traces",
            post(|State(c): State<Arc<Collector>>, h: HeaderMap, b: Body| {
                handle::<Traces>(c, h, b)
            }),
        )
        .route(
            "/v1/metrics",
            post(|State(c): State<Arc<Collector>>, h: HeaderMap, b: Body| {
                handle::<Metrics>(c, h, b)
            }),
        )
        .route(
            "/v1/logs",
            post(|State(c): State<Arc<Collector>>, h: HeaderMap, b: Body| handle::<Logs>(c, h, b)),
        )
        .with_state(c)
}

/// Serves OTLP/HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    c: Arc<Collector>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(c))
        .with_graceful_shutdown(shutdown)
        .await
}
