//! The real binary end to end: OTLP in over gRPC and HTTP, graceful shutdown on
//! SIGTERM, everything readable afterwards through the storage read API.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use signalbox_storage::{LogQuery, LogsReader, Matcher, MetricsReader, TracesReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_in_graceful_stop_and_data_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = Server::start(&data);
    let t = now_ns();
    let url = format!("http://{}", srv.grpc);

    let lines: Vec<String> = (0..10).map(|i| format!("grpc line {i}")).collect();
    LogsServiceClient::connect(url.clone())
        .await
        .unwrap()
        .export(logs_request("e2e", &lines, t))
        .await
        .unwrap();
    let http_lines: Vec<String> = (0..5).map(|i| format!("http line {i}")).collect();
    let resp = client()
        .post(format!("http://{}/v1/logs", srv.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(logs_request("e2e", &http_lines, t + 100).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let series: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    MetricsServiceClient::connect(url.clone())
        .await
        .unwrap()
        .export(gauge_request("e2e", "queue.depth", &series, t, 7.0))
        .await
        .unwrap();
    TraceServiceClient::connect(url.clone())
        .await
        .unwrap()
        .export(trace_request("e2e", [9; 16], 3, t))
        .await
        .unwrap();

    // PromQL over the Prometheus HTTP API sees what OTLP sent.
    let (code, body) = http_get(
        srv.http,
        "/api/v1/query?query=sum%20by%20(job)%20(queue_depth)",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "e2e");
    assert_eq!(v["data"]["result"][0]["value"][1], "140");
    let (code, body) = http_get(srv.http, "/api/v1/label/series/values").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("\"s19\""), "{body}");

    // Resource attributes other than the service's are on `target_info`; info() adds
    // them to the resource's series.
    let mut req = gauge_request("e2e-host", "cpu.temp", &["die0".to_string()], t, 51.0);
    let res = req.resource_metrics[0].resource.as_mut().unwrap();
    res.attributes.push(kv("service.instance.id", "web-1"));
    res.attributes.push(kv("host.name", "rack7"));
    MetricsServiceClient::connect(url.clone())
        .await
        .unwrap()
        .export(req)
        .await
        .unwrap();
    let v = get_json(srv.http, "/api/v1/query?query=info(cpu_temp)");
    assert_eq!(
        v["data"]["result"][0]["metric"],
        serde_json::json!({
            "__name__": "cpu_temp", "job": "e2e-host", "instance": "web-1",
            "series": "die0", "host_name": "rack7"
        }),
        "{v}"
    );
    let v = get_json(
        srv.http,
        "/api/v1/query?query=info(cpu_temp,%7Bhost_name%3D%22rack8%22%7D)",
    );
    assert_eq!(v["data"]["result"], serde_json::json!([]), "{v}");

    // An OTLP exponential histogram is a native histogram to PromQL.
    MetricsServiceClient::connect(url.clone())
        .await
        .unwrap()
        .export(exp_histogram_request(
            "e2e",
            "rpc.latency",
            t,
            &[2, 5],
            21.5,
        ))
        .await
        .unwrap();
    let v = get_json(srv.http, "/api/v1/query?query=rpc_latency");
    let h = &v["data"]["result"][0]["histogram"][1];
    assert_eq!(h["count"], "8", "{v}");
    assert_eq!(h["sum"], "21.5", "{v}");
    assert_eq!(
        h["buckets"],
        serde_json::json!([
            [3, "-0.001", "0.001", "1"],
            [0, "1", "2", "2"],
            [0, "2", "4", "5"]
        ]),
        "{v}"
    );
    let v = get_json(
        srv.http,
        "/api/v1/query?query=histogram_quantile(0.5,%20rpc_latency)",
    );
    // Rank 4 of 8 is the first of the 5 observations in (2, 4]: 2 * 2^(1/5).
    let q: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((q - 2.0 * 2f64.powf(0.2)).abs() < 1e-9, "{v}");

    // The Jaeger API finds the trace.
    let (code, body) = http_get(
        srv.http,
        "/jaeger/api/traces/09090909090909090909090909090909",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"][0]["spans"].as_array().unwrap().len(), 3);
    assert_eq!(v["data"][0]["processes"]["p1"]["serviceName"], "e2e");

    // A Loki client's push lands on the query address, like Loki's.
    let resp = client()
        .post(format!("http://{}/loki/api/v1/push", srv.http))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"streams":[{{"stream":{{"job":"pushed"}},"values":[["{t}","pushed line"]]}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let window = format!("start={}&end={}", t - 1_000_000_000, t + 1_000_000_000);
    let (code, body) = http_get(
        srv.http,
        &format!("/loki/api/v1/query_range?query=%7Bjob%3D%22pushed%22%7D&{window}"),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("pushed line"), "{body}");

    // LogQL over the Loki API: a log query and a metric query.
    let (code, body) = http_get(
        srv.http,
        &format!("/loki/api/v1/query_range?query=%7Bservice_name%3D%22e2e%22%7D%20%7C%3D%20%22http%22&{window}&direction=forward"),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "streams");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 5);
    assert_eq!(values[0][1], "http line 0");
    assert_eq!(v["data"]["result"][0]["stream"]["level"], "info");
    let (code, body) = http_get(
        srv.http,
        &format!("/loki/api/v1/query?query=sum(count_over_time(%7Bservice_name%3D%22e2e%22%7D%5B1m%5D))&time={}", t + 1_000_000_000),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "15");

    let (code, metrics) = http_get(srv.http, "/metrics").unwrap();
    assert_eq!(code, 200);
    for needle in [
        "signalbox_ingest_requests_total{signal=\"logs\",protocol=\"grpc\"} 1",
        "signalbox_ingest_requests_total{signal=\"logs\",protocol=\"http\"} 1",
        "signalbox_stored_items_total{signal=\"logs\"} 16",
        "signalbox_stored_items_total{signal=\"metrics\"} 23",
        "signalbox_stored_items_total{signal=\"traces\"} 3",
        "signalbox_wal_fsync_seconds_count{signal=\"logs\"}",
        "signalbox_head_bytes{signal=\"metrics\"}",
        "signalbox_active_series",
        "signalbox_build_info{version=",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }

    assert_eq!(srv.terminate(), 0);
    let parts: Vec<_> = std::fs::read_dir(data.join("parts/logs"))
        .unwrap()
        .collect();
    assert_eq!(parts.len(), 1, "shutdown flushes the head to a part");

    let s = open_storage(&data).await;
    let got = s
        .query_logs(&LogQuery {
            matchers: vec![Matcher::eq("service_name", "e2e")],
            start_ns: 0,
            end_ns: i64::MAX,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 15);
    let m = s
        .select_series(&[Matcher::eq("__name__", "queue_depth")], 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(m.len(), 20);
    assert_eq!(m[0].labels.get("job"), Some("e2e"));
    assert_eq!(s.trace([9; 16]).await.unwrap().len(), 3);
}

#[test]
fn bad_config_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "storage:\n  metrics:\n    retension: 3d\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retension"), "{err}");
}

#[test]
fn port_in_use_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--http-addr",
            &addr,
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&addr) && err.contains("cannot listen"),
        "{err}"
    );
}

/// An HTTP client (the workspace's `reqwest` has TLS with an explicitly chosen provider).
/// A GET that must answer 200 with JSON.
fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (code, body) = http_get(addr, path).unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn client() -> reqwest::Client {
    signalbox_query::install_tls_provider();
    reqwest::Client::new()
}

/// A PromQL query whose client disconnects stops being evaluated on the server.
#[test]
fn a_query_whose_client_disconnects_stops() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"));
    let metric = |name: &str| -> Option<f64> {
        let (_, text) = http_get(srv.http, "/metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ok() {
            assert!(Instant::now() < deadline, "{what}: {}", srv.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Nested subqueries over a week at one-second steps: far longer than the test waits
    // (and the request's own timeout, an hour, does not end it first).
    let q = "max_over_time(max_over_time(vector(1)%5B1d%3A1s%5D)%5B7d%3A1s%5D)";
    let mut conn = std::net::TcpStream::connect(srv.http).unwrap();
    write!(
        conn,
        "GET /api/v1/query?query={q}&time=2600000&timeout=1h HTTP/1.1\r\nHost: {}\r\n\r\n",
        srv.http
    )
    .unwrap();
    wait_for("the evaluation started", &|| {
        metric("signalbox_promql_queries") == Some(1.0)
    });
    drop(conn);
    wait_for("the evaluation stopped", &|| {
        metric("signalbox_promql_queries_canceled_total") == Some(1.0)
            && metric("signalbox_promql_queries") == Some(0.0)
    });
}

/// An OTLP exemplar comes back from `/api/v1/query_exemplars` with its trace id, also
/// after a restart (from the WAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_exemplars_point_at_traces() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = Server::start(&data);
    let t = now_ns();
    let req = with_exemplar(
        gauge_request("shop", "queue_depth", &["a".to_string()], t, 5.0),
        t,
        5.0,
        vec![0x4b; 16],
        vec![0x21; 8],
    );
    srv.export_metrics(req).await;
    let check = |srv: &Server| {
        let v = get_json(srv.http, "/api/v1/query_exemplars?query=queue_depth");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{v}");
        assert_eq!(data[0]["seriesLabels"]["series"], "a");
        let e = &data[0]["exemplars"][0];
        assert_eq!(e["labels"]["trace_id"], "4b".repeat(16));
        assert_eq!(e["labels"]["span_id"], "21".repeat(8));
        assert_eq!(e["value"], "5");
    };
    check(&srv);
    assert_eq!(srv.terminate(), 0);
    let srv = Server::start(&data);
    check(&srv);
}

/// A counter that restarted and climbed past its old value between two points: only
/// the start time OTLP sends with each point shows the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_start_times_reveal_counter_resets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("signalbox.yaml");
    std::fs::write(&cfg, "promql:\n  start_times: true\n").unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let srv = Server::start_with(&data, &["--config", &cfg]);
    let s = 1_000_000_000u64;
    let now = now_ns() / s * s;
    let req = counter_request(
        "shop",
        "orders",
        &[
            (now - 600 * s, now - 120 * s, 100.0),
            (now - 90 * s, now - 60 * s, 120.0),
        ],
    );
    srv.export_metrics(req).await;
    let check = |srv: &Server| {
        let at = (now / s).to_string();
        let q = |query: &str| {
            let v = get_json(srv.http, &format!("/api/v1/query?query={query}&time={at}"));
            assert_eq!(v["status"], "success", "{v}");
            v["data"]["result"][0]["value"][1].clone()
        };
        assert_eq!(q("resets(orders_total[10m])"), "1");
        let started = (now - 90 * s) / s;
        assert_eq!(q("start_timestamp(orders_total)"), started.to_string());
    };
    check(&srv);
    // Start times are kept on disk and come back after a restart.
    assert_eq!(srv.terminate(), 0);
    let srv = Server::start_with(&data, &["--config", &cfg]);
    check(&srv);
}
