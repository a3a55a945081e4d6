//! `loadgen --signal dashboard`: how long the web UI takes to render a dashboard of ten
//! panels over six hours of data. The server is loaded with six hours of backfilled
//! metrics (request counters, a latency histogram and gauges from every service, one
//! sample every 15 s) and logs with its default configuration, restarted (so the data
//! is in parts, as on a server that has run for a while), a dashboard of ten panels is
//! saved through the API, and
//! the page `/dashboards/<uid>?from=now-6h&to=now` is fetched repeatedly. The server
//! renders every panel (all its queries run in process) before it answers, so the time
//! to the last byte of the page is the time to a complete dashboard.

use std::time::{Duration, Instant};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use serde_json::json;

use crate::generate::{self, Clients, Rng, kv, resource, service_name};
use crate::server::Server;

pub(crate) const HOURS: u64 = 6;
pub(crate) const STEP_S: u64 = 15;
const ROUTES: [&str; 10] = [
    "/",
    "/cart",
    "/checkout",
    "/login",
    "/search",
    "/product",
    "/api/items",
    "/api/users",
    "/health",
    "/static",
];
const BOUNDS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Page fetches timed (after one warm-up).
const RUNS: usize = 20;

/// The dashboard: ten panels of every kind the UI draws.
fn dashboard() -> serde_json::Value {
    let p = |title: &str, kind: &str, lang: &str, expr: &str, x: u32, y: u32, w: u32| {
        json!({"title": title, "type": kind, "grid": {"x": x, "y": y, "w": w, "h": 8},
               "queries": [{"lang": lang, "expr": expr}]})
    };
    json!({
        "title": "Service health (benchmark)",
        "from": "now-6h",
        "panels": [
            p("Requests by service", "timeseries", "promql", "sum by (job) (rate(http_server_requests_total[5m]))", 0, 0, 12),
            p("Errors by route", "timeseries", "promql", "sum by (route) (rate(http_server_requests_total{status=\"500\"}[5m]))", 12, 0, 12),
            p("p99 latency", "timeseries", "promql", "histogram_quantile(0.99, sum by (le, job) (rate(http_server_duration_seconds_bucket[5m])))", 0, 8, 12),
            p("Queue depth", "timeseries", "promql", "max by (job) (queue_depth)", 12, 8, 12),
            p("Total request rate", "stat", "promql", "sum(rate(http_server_requests_total[5m]))", 0, 16, 6),
            p("Error ratio", "gauge", "promql", "sum(rate(http_server_requests_total{status=\"500\"}[5m])) / sum(rate(http_server_requests_total[5m]))", 6, 16, 6),
            p("Requests per service", "bar", "promql", "sort_desc(sum by (job) (increase(http_server_requests_total[1h])))", 12, 16, 12),
            p("Busiest routes", "table", "promql", "topk(10, sum by (route) (rate(http_server_requests_total[5m])))", 0, 24, 12),
            p("Log lines by level", "timeseries", "logql", "sum by (level) (count_over_time({service_name=~\".+\"} [5m]))", 12, 24, 12),
            p("Errors in the logs", "logs", "logql", "{service_name=~\".+\"} |= \"error\"", 0, 32, 24),
        ]
    })
}

/// One 15-second step of every series: cumulative request counters per service, route
/// and status, a cumulative latency histogram per service, and a queue-depth gauge.
pub(crate) fn metrics_at(
    services: usize,
    step: u64,
    t_ns: u64,
    rng: &mut Rng,
) -> ExportMetricsServiceRequest {
    let resource_metrics = (0..services)
        .map(|s| {
            let point = |attributes, v: f64| NumberDataPoint {
                attributes,
                time_unix_nano: t_ns,
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            };
            let mut requests = Vec::new();
            for (r, route) in ROUTES.iter().enumerate() {
                let per_step = (10 + 7 * r + s) as f64;
                for (status, share) in [("200", 0.98), ("500", 0.02)] {
                    requests.push(point(
                        vec![kv("route", *route), kv("status", status)],
                        (per_step * share * (step + 1) as f64).round(),
                    ));
                }
            }
            // Latency: counts so far per bucket, growing with the steps.
            let mut counts = vec![0u64; BOUNDS.len() + 1];
            for (i, c) in counts.iter_mut().enumerate() {
                *c = (step + 1) * (20 - i as u64).max(1);
            }
            let count = counts.iter().sum();
            let metrics = vec![
                Metric {
                    name: "http.server.requests".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: requests,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "http.server.duration".into(),
                    unit: "s".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            time_unix_nano: t_ns,
                            count,
                            sum: Some(count as f64 * 0.08),
                            bucket_counts: counts,
                            explicit_bounds: BOUNDS.to_vec(),
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "queue.depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![point(vec![], rng.below(100) as f64)],
                    })),
                    ..Default::default()
                },
            ];
            let name = service_name(s);
            ResourceMetrics {
                resource: resource(&name, &format!("{name}-0")),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}

/// The log lines of one step: each service logs one line per second, one in 50 an error.
fn logs_at(services: usize, t_ns: u64, rng: &mut Rng) -> ExportLogsServiceRequest {
    let resource_logs = (0..services)
        .map(|s| {
            let name = service_name(s);
            let log_records = (0..STEP_S)
                .map(|i| {
                    let error = rng.below(50) == 0;
                    let route = ROUTES[rng.below(ROUTES.len() as u64) as usize];
                    let line = if error {
                        format!("error handling {route}: upstream timed out after 2s")
                    } else {
                        format!("GET {route} 200 {} ms", rng.below(300))
                    };
                    LogRecord {
                        time_unix_nano: t_ns + i * 1_000_000_000,
                        severity_text: if error { "ERROR" } else { "INFO" }.into(),
                        severity_number: if error { 17 } else { 9 },
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(line)),
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            ResourceLogs {
                resource: resource(&name, &format!("{name}-0")),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub(crate) async fn run(server_bin: &str, services: usize, keep: bool) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("signalbox-dashbench")
        .tempdir()?;
    // The default configuration: the data ends up in parts as a long-running server's
    // would (the server is restarted after the load, which flushes its heads).
    let srv = Server::start_with_config(server_bin, dir.path(), "")
        .await
        .context("starting the server")?;
    let mut clients = Clients::connect(&format!("http://{}", srv.grpc)).await?;
    let steps = HOURS * 3600 / STEP_S;
    let first = generate::now_ns() - HOURS * 3600 * 1_000_000_000;
    let mut rng = Rng::new(7);
    let loading = Instant::now();
    let mut samples = 0u64;
    for step in 0..steps {
        let t = first + step * STEP_S * 1_000_000_000;
        let m = metrics_at(services, step, t, &mut rng);
        samples += generate::metric_samples(&m);
        clients.metrics.export(m).await.context("sending metrics")?;
        clients
            .logs
            .export(logs_at(services, t, &mut rng))
            .await
            .context("sending logs")?;
    }
    println!(
        "loaded {HOURS} h: {samples} samples, {} log lines from {services} services in {:.1} s",
        steps * STEP_S * services as u64,
        loading.elapsed().as_secs_f64()
    );

    srv.stop()
        .await
        .context("stopping the server after the load")?;
    let srv = Server::start_with_config(server_bin, dir.path(), "")
        .await
        .context("restarting the server")?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.http);
    let saved: serde_json::Value = http
        .post(format!("{base}/api/v1/dashboards"))
        .json(&dashboard())
        .send()
        .await?
        .error_for_status()
        .context("saving the dashboard")?
        .json()
        .await?;
    let uid = saved["data"]["uid"]
        .as_str()
        .context("the saved dashboard has no uid")?
        .to_string();
    let page = format!("{base}/dashboards/{uid}?from=now-6h&to=now");
    let mut times = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for run in 0..=RUNS {
        let t0 = Instant::now();
        let body = http
            .get(&page)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let took = t0.elapsed();
        anyhow::ensure!(
            body.matches("data-panel=").count() == 10
                && !body.contains("class=\"error\"")
                && !body.contains("No data"),
            "the dashboard did not render its ten panels with data: {body}"
        );
        bytes = body.len();
        if run > 0 {
            times.push(took);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "dashboard of 10 panels over 6 h, server-rendered page ({bytes} bytes), {RUNS} runs: \
         min {:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(times[times.len() - 1]),
    );
    // Each panel's query alone, as the page sends it (step 120 s: 6 h over ~250 points).
    let (end_s, step) = (generate::now_ns() / 1_000_000_000, 120);
    let start_s = end_s - HOURS * 3600;
    for panel in dashboard()["panels"].as_array().into_iter().flatten() {
        let (kind, q) = (&panel["type"], &panel["queries"][0]);
        let expr = q["expr"].as_str().unwrap_or_default();
        let (start_ns, end_ns) = (format!("{start_s}000000000"), format!("{end_s}000000000"));
        let (start, end, step) = (start_s.to_string(), end_s.to_string(), step.to_string());
        let (path, params): (&str, Vec<(&str, &str)>) = match (q["lang"].as_str(), kind.as_str()) {
            (Some("logql"), Some("logs")) => (
                "/loki/api/v1/query_range",
                vec![
                    ("start", &start_ns),
                    ("end", &end_ns),
                    ("limit", "100"),
                    ("direction", "backward"),
                ],
            ),
            (Some("logql"), _) => (
                "/loki/api/v1/query_range",
                vec![("start", &start_ns), ("end", &end_ns), ("step", &step)],
            ),
            (_, Some("timeseries")) => (
                "/api/v1/query_range",
                vec![("start", &start), ("end", &end), ("step", &step)],
            ),
            _ => ("/api/v1/query", vec![("time", &end)]),
        };
        let url = reqwest::Url::parse_with_params(
            &format!("{base}{path}"),
            [("query", expr)].into_iter().chain(params),
        )?;
        let mut t = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            http.get(url.clone())
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            t.push(t0.elapsed());
        }
        t.sort();
        println!(
            "  {:<24} {:>8.1} ms (median of 5)",
            panel["title"].as_str().unwrap_or_default(),
            ms(t[2])
        );
    }
    if keep {
        println!("data kept in {}", dir.keep().display());
    }
    srv.stop().await
}
