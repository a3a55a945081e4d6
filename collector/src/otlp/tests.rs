//! The receivers on real sockets with an in-memory store: both protocols, both
//! encodings, gzip, and every kind of bad input.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use signalbox_storage::{
    IngestSink, LogQuery, LogsBatch, LogsReader, Matcher, MemStore, MetricsBatch, MetricsReader,
    StorageError, TracesBatch, TracesReader, WriteOutcome,
};

use super::{Logs, Metrics, Traces, decode_json};
use crate::{Collector, CollectorConfig};

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/otlp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct Server {
    http: SocketAddr,
    grpc: SocketAddr,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start(sink: Arc<dyn IngestSink>, cfg: CollectorConfig) -> Server {
    let c = Collector::new(
        sink,
        cfg,
        &mut prometheus_client::registry::Registry::default(),
    );
    let hl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http, grpc) = (hl.local_addr().unwrap(), gl.local_addr().unwrap());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut rx2 = rx.clone();
    let mut rx1 = rx;
    tokio::spawn(super::http::serve(hl, c.clone(), async move {
        let _ = rx1.changed().await;
    }));
    tokio::spawn(super::grpc::serve(gl, c, async move {
        let _ = rx2.changed().await;
    }));
    Server {
        http,
        grpc,
        _stop: tx,
    }
}

async fn post(
    addr: SocketAddr,
    path: &str,
    ct: &str,
    body: Vec<u8>,
    gzip: bool,
) -> reqwest::Response {
    let mut req = client()
        .post(format!("http://{addr}{path}"))
        .header("content-type", ct);
    let body = if gzip {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&body).unwrap();
        req = req.header("content-encoding", "gzip");
        e.finish().unwrap()
    } else {
        body
    };
    req.body(body).send().await.unwrap()
}

async fn all_logs(s: &MemStore) -> Vec<String> {
    s.query_logs(&LogQuery {
        start_ns: i64::MIN,
        end_ns: i64::MAX,
        limit: 10_000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_iter()
    .map(|e| e.record.line().into_owned())
    .collect()
}

#[tokio::test]
async fn upstream_json_examples_are_accepted_over_http() {
    let store = Arc::new(MemStore::new());
    let srv = start(store.clone(), CollectorConfig::default()).await;
    for (path, file) in [
        ("/v1/traces", "trace.json"),
        ("/v1/metrics", "metrics.json"),
        ("/v1/logs", "logs.json"),
        ("/v1/logs", "events.json"),
    ] {
        let r = post(srv.http, path, "application/json", data(file), false).await;
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body.get("partialSuccess").is_none_or(|p| p.is_null()),
            "{file}: {body}"
        );
    }
    let spans = store
        .trace(hex_id("5b8efff798038103d269b633813fc60c"))
        .await
        .unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].span.name, "I'm a server span");
    assert_eq!(spans[0].service_name, "my.service");
    let names = store
        .label_values("__name__", &[], i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        names,
        vec![
            "my_counter_total",
            "my_exponential_histogram",
            "my_gauge_ratio",
            "my_histogram_bucket",
            "my_histogram_count",
            "my_histogram_sum"
        ]
    );
    let logs = all_logs(&store).await;
    assert!(logs.iter().any(|l| l == "Example log record"), "{logs:?}");
}

fn hex_id(s: &str) -> [u8; 16] {
    let v = hex::decode(s).unwrap();
    v.try_into().unwrap()
}

#[tokio::test]
async fn protobuf_and_gzip_over_http_answer_in_kind() {
    let store = Arc::new(MemStore::new());
    let srv = start(store.clone(), CollectorConfig::default()).await;
    for file in ["logs.json", "captured-python-sdk/logs.json"] {
        let req = decode_json::<Logs>(&data(file)).unwrap();
        let r = post(
            srv.http,
            "/v1/logs",
            "application/x-protobuf",
            req.encode_to_vec(),
            true,
        )
        .await;
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
        let resp = ExportLogsServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
        assert_eq!(resp.partial_success, None);
    }
    let logs = all_logs(&store).await;
    assert!(
        logs.contains(&"hello from otel-smoke".to_string()),
        "{logs:?}"
    );
    let got = store
        .query_logs(&LogQuery {
            matchers: vec![Matcher::eq("service_name", "otel-smoke")],
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_ne!(got[0].record.trace_id, [0; 16]);
}

#[tokio::test]
async fn grpc_accepts_all_signals_with_and_without_gzip() {
    let store = Arc::new(MemStore::new());
    let srv = start(store.clone(), CollectorConfig::default()).await;
    let url = format!("http://{}", srv.grpc);
    let gzip = tonic::codec::CompressionEncoding::Gzip;
    let traces = decode_json::<Traces>(&data("captured-python-sdk/traces.json")).unwrap();
    let r = TraceServiceClient::connect(url.clone())
        .await
        .unwrap()
        .send_compressed(gzip)
        .export(traces)
        .await
        .unwrap();
    assert_eq!(r.into_inner(), ExportTraceServiceResponse::default());
    let metrics = decode_json::<Metrics>(&data("captured-python-sdk/metrics.json")).unwrap();
    let r = MetricsServiceClient::connect(url.clone())
        .await
        .unwrap()
        .export(metrics)
        .await
        .unwrap();
    assert_eq!(r.into_inner(), ExportMetricsServiceResponse::default());
    let logs = decode_json::<Logs>(&data("captured-python-sdk/logs.json")).unwrap();
    LogsServiceClient::connect(url)
        .await
        .unwrap()
        .send_compressed(gzip)
        .export(logs)
        .await
        .unwrap();

    assert_eq!(
        store.services().await.unwrap(),
        vec!["otel-smoke".to_string()]
    );
    let s = store
        .select_series(
            &[Matcher::eq("__name__", "smoke_requests_total")],
            i64::MIN,
            i64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels.get("job"), Some("otel-smoke"));
    assert_eq!(s[0].labels.get("route"), Some("/x"));
    assert_eq!(s[0].samples[0].v, 3.0);
    assert_eq!(
        all_logs(&store).await,
        vec!["hello from otel-smoke".to_string()]
    );
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_keeps_earlier_data() {
    let store = Arc::new(MemStore::new());
    let cfg = CollectorConfig {
        max_request_bytes: 64 * 1024,
        ..Default::default()
    };
    let srv = start(store.clone(), cfg).await;
    let good = decode_json::<Logs>(&data("logs.json")).unwrap();
    assert_eq!(
        post(
            srv.http,
            "/v1/logs",
            "application/x-protobuf",
            good.encode_to_vec(),
            false
        )
        .await
        .status(),
        200
    );

    // Garbage protobuf and garbage JSON.
    let r = post(
        srv.http,
        "/v1/logs",
        "application/x-protobuf",
        vec![0xff, 0xff, 0xff, 0x01, 0x02],
        false,
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        srv.http,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": [".to_vec(),
        false,
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 3);
    // Wrong content type and unknown compression.
    assert_eq!(
        post(srv.http, "/v1/logs", "text/plain", b"hi".to_vec(), false)
            .await
            .status(),
        415
    );
    let r = client()
        .post(format!("http://{}/v1/logs", srv.http))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "br")
        .body(good.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Corrupt gzip.
    let r = client()
        .post(format!("http://{}/v1/logs", srv.http))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 0, 1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Oversize, plain and as a gzip bomb.
    let big = vec![b'a'; 100 * 1024];
    assert_eq!(
        post(srv.http, "/v1/logs", "application/json", big.clone(), false)
            .await
            .status(),
        413
    );
    let zeros = vec![0u8; 1 << 20];
    assert_eq!(
        post(srv.http, "/v1/logs", "application/x-protobuf", zeros, true)
            .await
            .status(),
        413
    );
    // Invalid UTF-8 inside a protobuf string field (LogRecord.severity_text, field 3 of
    // ResourceLogs → ScopeLogs → LogRecord).
    let record = [&[0x1a, 0x02][..], &[0xc3, 0x28]].concat();
    let scope_logs = [&[0x12, record.len() as u8][..], &record].concat();
    let resource_logs = [&[0x12, scope_logs.len() as u8][..], &scope_logs].concat();
    let req = [&[0x0a, resource_logs.len() as u8][..], &resource_logs].concat();
    assert_eq!(
        post(srv.http, "/v1/logs", "application/x-protobuf", req, false)
            .await
            .status(),
        400
    );
    // Ids of the wrong length: a partial success that names the problem.
    let mut bad = decode_json::<Logs>(&data("logs.json")).unwrap();
    bad.resource_logs[0].scope_logs[0].log_records[0].trace_id = vec![1, 2, 3];
    let r = post(
        srv.http,
        "/v1/logs",
        "application/x-protobuf",
        bad.encode_to_vec(),
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let resp = ExportLogsServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    let ps = resp.partial_success.unwrap();
    assert_eq!(ps.rejected_log_records, 1);
    assert!(
        ps.error_message.contains("trace id must be 16 bytes"),
        "{}",
        ps.error_message
    );
    let mut bad = decode_json::<Traces>(&data("trace.json")).unwrap();
    bad.resource_spans[0].scope_spans[0].spans[0].span_id = vec![9; 4];
    let r = post(
        srv.http,
        "/v1/traces",
        "application/json",
        serde_json::to_vec(&bad).unwrap(),
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["partialSuccess"]["rejectedSpans"]
            .to_string()
            .trim_matches('"'),
        "1"
    );

    // gRPC: garbage, oversize.
    let url = format!("http://{}", srv.grpc);
    let mut client = LogsServiceClient::connect(url.clone()).await.unwrap();
    let mut huge = good.clone();
    huge.resource_logs[0].scope_logs[0].log_records[0].body =
        Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "x".repeat(100 * 1024),
                ),
            ),
        });
    let err = client.export(huge).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    let err = raw_grpc(
        srv.grpc,
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        &[0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(err, "3");

    // Everything accepted earlier is still there.
    let logs = all_logs(&store).await;
    assert_eq!(
        logs.iter().filter(|l| *l == "Example log record").count(),
        1,
        "{logs:?}"
    );
}

/// Sends one gRPC message of raw bytes and returns the `grpc-status` it got.
async fn raw_grpc(addr: SocketAddr, path: &str, msg: &[u8]) -> String {
    let mut ch = tonic::client::Grpc::new(
        tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    ch.ready().await.unwrap();
    let req = tonic::Request::new(bytes::Bytes::copy_from_slice(msg));
    let res: Result<tonic::Response<bytes::Bytes>, tonic::Status> = ch
        .unary(
            req,
            http::uri::PathAndQuery::try_from(path).unwrap(),
            super::grpc::test_codec(),
        )
        .await;
    match res {
        Ok(_) => "0".into(),
        Err(s) => (s.code() as i32).to_string(),
    }
}

struct Refusing;

#[async_trait]
impl IngestSink for Refusing {
    async fn write_metrics(&self, _: MetricsBatch) -> signalbox_storage::Result<WriteOutcome> {
        Err(StorageError::HeadFull {
            signal: "metrics",
            used: 10,
            limit: 10,
            retry_after: Duration::from_secs(3),
        })
    }
    async fn write_logs(&self, _: LogsBatch) -> signalbox_storage::Result<WriteOutcome> {
        Err(StorageError::SeriesLimit {
            limit: 1,
            retry_after: Duration::from_secs(3),
        })
    }
    async fn write_traces(&self, _: TracesBatch) -> signalbox_storage::Result<WriteOutcome> {
        Err(StorageError::WalClosed)
    }
}

#[tokio::test]
async fn overload_is_answered_retryably() {
    let srv = start(Arc::new(Refusing), CollectorConfig::default()).await;
    let m = decode_json::<Metrics>(&data("metrics.json")).unwrap();
    let r = post(
        srv.http,
        "/v1/metrics",
        "application/x-protobuf",
        m.encode_to_vec(),
        false,
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let t = decode_json::<Traces>(&data("trace.json")).unwrap();
    let r = post(
        srv.http,
        "/v1/traces",
        "application/json",
        serde_json::to_vec(&t).unwrap(),
        false,
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let err = MetricsServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap()
        .export(m)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);

    // Too many bytes in flight at once is refused before decoding.
    let store = Arc::new(MemStore::new());
    let srv = start(
        store,
        CollectorConfig {
            max_request_bytes: 1 << 20,
            max_inflight_bytes: 1024,
            ..Default::default()
        },
    )
    .await;
    let r = post(
        srv.http,
        "/v1/logs",
        "application/json",
        data("logs.json"),
        false,
    )
    .await;
    assert_eq!(r.status(), 429);
}

#[test]
fn json_enums_are_accepted_by_name() {
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"x","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":"1","endTimeUnixNano":2,"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#;
    let req = decode_json::<Traces>(body).unwrap();
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.kind, 3);
    assert_eq!(span.status.as_ref().unwrap().code, 2);
    assert_eq!(span.end_time_unix_nano, 2);
    assert!(
        decode_json::<Traces>(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_NOPE"}]}]}]}"#
        )
        .is_err()
    );
}

/// An HTTP client (the workspace's `reqwest` has TLS with an explicitly chosen provider).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
