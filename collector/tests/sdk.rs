//! The real OpenTelemetry SDK (Rust, `opentelemetry-otlp`) exporting spans, metrics and
//! logs to the receivers over gRPC (gzip), HTTP protobuf and HTTP JSON.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use signalbox_collector::{Collector, CollectorConfig, serve_otlp_grpc, serve_otlp_http};
use signalbox_storage::{LogQuery, LogsReader, Matcher, MemStore, MetricsReader, TracesReader};

#[derive(Clone, Copy, Debug)]
enum Via {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

async fn run(via: Via) {
    // The SDK's HTTP exporter uses the workspace's `reqwest`, whose TLS needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(MemStore::new());
    let c = Collector::new(
        store.clone(),
        CollectorConfig::default(),
        &mut Default::default(),
    );
    let gl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc, http) = (gl.local_addr().unwrap(), hl.local_addr().unwrap());
    tokio::spawn(serve_otlp_grpc(gl, c.clone(), std::future::pending()));
    tokio::spawn(serve_otlp_http(hl, c, std::future::pending()));

    let service = format!("sdk-{via:?}").to_lowercase();
    let svc = service.clone();
    let trace_id = tokio::task::spawn_blocking(move || {
        let resource = Resource::builder().with_service_name(svc).build();
        let (spans, metrics, logs) = match via {
            Via::Grpc => {
                let url = format!("http://{grpc}");
                let gz = opentelemetry_otlp::Compression::Gzip;
                (
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(&url)
                        .with_compression(gz)
                        .build()
                        .unwrap(),
                    opentelemetry_otlp::MetricExporter::builder()
                        .with_tonic()
                        .with_endpoint(&url)
                        .build()
                        .unwrap(),
                    opentelemetry_otlp::LogExporter::builder()
                        .with_tonic()
                        .with_endpoint(&url)
                        .with_compression(gz)
                        .build()
                        .unwrap(),
                )
            }
            Via::HttpProtobuf | Via::HttpJson => {
                let p = if matches!(via, Via::HttpJson) {
                    Protocol::HttpJson
                } else {
                    Protocol::HttpBinary
                };
                let u = |s: &str| format!("http://{http}/v1/{s}");
                (
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(p)
                        .with_endpoint(u("traces"))
                        .build()
                        .unwrap(),
                    opentelemetry_otlp::MetricExporter::builder()
                        .with_http()
                        .with_protocol(p)
                        .with_compression(opentelemetry_otlp::Compression::Gzip)
                        .with_endpoint(u("metrics"))
                        .build()
                        .unwrap(),
                    opentelemetry_otlp::LogExporter::builder()
                        .with_http()
                        .with_protocol(p)
                        .with_endpoint(u("logs"))
                        .build()
                        .unwrap(),
                )
            }
        };
        let tp = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_simple_exporter(spans)
            .build();
        let mp = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(PeriodicReader::builder(metrics).build())
            .build();
        let lp = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_simple_exporter(logs)
            .build();

        let tracer = tp.tracer("sdk-test");
        let logger = lp.logger("sdk-test");
        let trace_id = tracer.in_span("checkout", |cx| {
            let sc = cx.span().span_context().clone();
            tracer.in_span("charge-card", |_| {});
            let mut rec = logger.create_log_record();
            rec.set_body(AnyValue::from("payment accepted"));
            rec.set_severity_number(Severity::Info);
            rec.set_severity_text("INFO");
            rec.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
            logger.emit(rec);
            sc.trace_id()
        });
        let counter = mp
            .meter("sdk-test")
            .u64_counter("orders")
            .with_unit("{order}")
            .build();
        counter.add(5, &[KeyValue::new("region", "eu")]);
        let hist = mp
            .meter("sdk-test")
            .f64_histogram("checkout.duration")
            .with_unit("s")
            .build();
        hist.record(0.2, &[]);
        mp.force_flush().unwrap();
        tp.shutdown().unwrap();
        lp.shutdown().unwrap();
        mp.shutdown().unwrap();
        trace_id.to_bytes()
    })
    .await
    .unwrap();

    let spans = store.trace(trace_id).await.unwrap();
    let names: Vec<_> = spans.iter().map(|s| s.span.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{via:?}: {names:?}");
    assert!(names.contains(&"checkout") && names.contains(&"charge-card"));
    assert!(spans.iter().all(|s| s.service_name == service));

    let orders = store
        .select_series(
            &[
                Matcher::eq("__name__", "orders_total"),
                Matcher::eq("job", &service),
            ],
            i64::MIN,
            i64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(orders.len(), 1, "{via:?}");
    assert_eq!(orders[0].labels.get("region"), Some("eu"));
    assert_eq!(orders[0].samples.last().unwrap().v, 5.0);
    let buckets = store
        .series_labels(
            &[Matcher::eq("__name__", "checkout_duration_seconds_bucket")],
            i64::MIN,
            i64::MAX,
        )
        .await
        .unwrap();
    assert!(buckets.len() > 2, "{via:?}: {buckets:?}");

    let logs = store
        .query_logs(&LogQuery {
            matchers: vec![Matcher::eq("service_name", &service)],
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logs.len(), 1, "{via:?}");
    assert_eq!(logs[0].record.line(), "payment accepted");
    assert_eq!(logs[0].record.trace_id, trace_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_grpc() {
    run(Via::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_http_protobuf() {
    run(Via::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_http_json() {
    run(Via::HttpJson).await;
}
