//! `loadgen --signal promql`: the same data in SignalBox and in Prometheus, and the same
//! PromQL queries timed against both.
//!
//! SignalBox is loaded over OTLP with the dashboard benchmark's six hours of metrics
//! (request counters per service, route and status, a classic latency histogram and a
//! gauge per service, one sample every 15 s) and restarted, so the data is in parts.
//! Every sample is then read back through its own API (`{__name__=~".+"}[7h]`) and
//! written as OpenMetrics text, which `promtool tsdb create-blocks-from openmetrics`
//! turns into Prometheus blocks: both hold exactly the same series and samples.
//! Prometheus (2.42, from the distribution) is started on those blocks. Each query runs
//! once to warm up and then `RUNS` times against each server over HTTP, one after the
//! other; the medians are compared, and the answers of the two servers are checked to be
//! the same (labels, timestamps, values within a relative 1e-6).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::dashbench;
use crate::generate::{self, Clients, Rng};
use crate::server::Server;

/// Timed runs per query and server (after one warm-up).
const RUNS: usize = 7;
/// Step of the range queries: six hours in 361 points.
const STEP_S: u64 = 60;

/// The queries: range queries over the six hours, then instant queries at the end.
const RANGE: [&str; 9] = [
    "sum by (job) (rate(http_server_requests_total[5m]))",
    "sum(rate(http_server_requests_total{status=\"500\"}[5m])) / sum(rate(http_server_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le, job) (rate(http_server_duration_seconds_bucket[5m])))",
    "rate(http_server_requests_total[1m])",
    "max by (job) (queue_depth)",
    "topk(3, sum by (route) (rate(http_server_requests_total[5m])))",
    "avg_over_time(queue_depth[10m])",
    "quantile_over_time(0.9, queue_depth[30m])",
    "max_over_time(sum by (job) (rate(http_server_requests_total[5m]))[30m:1m])",
];
const INSTANT: [&str; 5] = [
    "sum by (job, status) (increase(http_server_requests_total[1h]))",
    "http_server_requests_total",
    "count(queue_depth > 50)",
    "histogram_quantile(0.5, rate(http_server_duration_seconds_bucket[10m]))",
    "sort_desc(sum by (route) (http_server_requests_total))",
];

struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes `data`'s series as OpenMetrics text: one family per metric name (of unknown
/// type), each series' samples in time order, `# EOF` at the end.
fn openmetrics(result: &[Value]) -> anyhow::Result<String> {
    let mut families: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for s in result {
        let name = s["metric"]["__name__"]
            .as_str()
            .context("a series without a name")?;
        families.entry(name.to_string()).or_default().push(s);
    }
    let mut out = String::new();
    for (name, series) in families {
        for s in series {
            let mut labels = String::new();
            for (k, v) in s["metric"].as_object().into_iter().flatten() {
                if k == "__name__" {
                    continue;
                }
                let v = v.as_str().unwrap_or_default();
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let sep = if labels.is_empty() { "" } else { "," };
                let _ = write!(labels, "{sep}{k}=\"{v}\"");
            }
            for p in s["values"].as_array().into_iter().flatten() {
                let t = p[0].as_f64().context("a sample without a time")?;
                let v = p[1].as_str().context("a sample without a value")?;
                let _ = writeln!(out, "{name}{{{labels}}} {v} {t:.3}");
            }
        }
    }
    out.push_str("# EOF\n");
    Ok(out)
}

async fn start_prometheus(bin: &str, data: &Path, dir: &Path) -> anyhow::Result<Prometheus> {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n")?;
    let port = free_port()?;
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=30d")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {bin} (apt-get install prometheus)"))?;
    let p = Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{}/-/ready", p.base)).send().await
            && r.status() == 200
        {
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("prometheus did not become ready")
}

/// A series of an answer: its labels (as JSON text) and `(time, value)` points.
type Points = (String, Vec<(f64, f64)>);

/// One query's answer reduced to what must agree: series (sorted by labels) with their
/// points.
fn points(body: &Value) -> anyhow::Result<Vec<Points>> {
    anyhow::ensure!(body["status"] == "success", "query failed: {body}");
    let parse = |p: &Value| -> (f64, f64) {
        let t = p[0].as_f64().unwrap_or(f64::NAN);
        let v = p[1]
            .as_str()
            .map(|s| match s {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                s => s.parse().unwrap_or(f64::NAN),
            })
            .unwrap_or(f64::NAN);
        (t, v)
    };
    let data = &body["data"];
    let mut out: Vec<Points> = match data["resultType"].as_str() {
        Some("scalar") => vec![(String::new(), vec![parse(&data["result"])])],
        _ => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let pts = match s.get("values") {
                    Some(v) => v.as_array().into_iter().flatten().map(parse).collect(),
                    None => vec![parse(&s["value"])],
                };
                (s["metric"].to_string(), pts)
            })
            .collect(),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

/// Where two answers differ, if they do.
fn difference(a: &Value, b: &Value) -> anyhow::Result<Option<String>> {
    let (a, b) = (points(a)?, points(b)?);
    if a.len() != b.len() {
        return Ok(Some(format!("{} series vs {}", a.len(), b.len())));
    }
    let (mut differing, mut total, mut first, mut last) = (0, 0, f64::INFINITY, f64::NEG_INFINITY);
    let mut example = String::new();
    for ((la, pa), (lb, pb)) in a.iter().zip(&b) {
        if la != lb {
            return Ok(Some(format!("series {la} vs {lb}")));
        }
        if pa.len() != pb.len() {
            return Ok(Some(format!("{la}: {} points vs {}", pa.len(), pb.len())));
        }
        for (x, y) in pa.iter().zip(pb) {
            total += 1;
            if x.0 != y.0 || !same_value(x.1, y.1) {
                differing += 1;
                first = first.min(x.0);
                last = last.max(x.0);
                if example.is_empty() {
                    example = format!("{la} at {}: {} vs {}", x.0, x.1, y.1);
                }
            }
        }
    }
    Ok((differing > 0).then(|| {
        format!("{differing} of {total} points, at times {first}..{last} (e.g. {example})")
    }))
}

/// The median time of `RUNS` runs of a GET (after one warm-up), and the last answer.
async fn time_query(
    http: &reqwest::Client,
    url: &reqwest::Url,
) -> anyhow::Result<(Duration, Value)> {
    let mut times = Vec::with_capacity(RUNS);
    let mut body = Value::Null;
    for run in 0..=RUNS {
        let t0 = Instant::now();
        let bytes = http
            .get(url.clone())
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        if run > 0 {
            times.push(t0.elapsed());
        }
        body = serde_json::from_slice(&bytes)?;
    }
    times.sort();
    Ok((times[RUNS / 2], body))
}

pub(crate) async fn run(
    server_bin: &str,
    prometheus_bin: &str,
    promtool_bin: &str,
    services: usize,
    keep: bool,
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("signalbox-promcompare")
        .tempdir()?;
    let sb_dir = dir.path().join("signalbox");
    std::fs::create_dir_all(&sb_dir)?;
    let srv = Server::start_with_config(server_bin, &sb_dir, "")
        .await
        .context("starting the server")?;
    let mut clients = Clients::connect(&format!("http://{}", srv.grpc)).await?;
    let steps = dashbench::HOURS * 3600 / dashbench::STEP_S;
    let first = generate::now_ns() - dashbench::HOURS * 3600 * 1_000_000_000;
    let mut rng = Rng::new(7);
    let mut samples = 0u64;
    for step in 0..steps {
        let t = first + step * dashbench::STEP_S * 1_000_000_000;
        let m = dashbench::metrics_at(services, step, t, &mut rng);
        samples += generate::metric_samples(&m);
        clients.metrics.export(m).await.context("sending metrics")?;
    }
    srv.stop().await.context("stopping after the load")?;
    let srv = Server::start_with_config(server_bin, &sb_dir, "")
        .await
        .context("restarting the server")?;
    let sb = format!("http://{}", srv.http);
    let end_s = generate::now_ns() / 1_000_000_000;
    let start_s = end_s - dashbench::HOURS * 3600;
    let http = reqwest::Client::new();

    // Every sample, as SignalBox holds it, into Prometheus.
    let all: Value = http
        .get(reqwest::Url::parse_with_params(
            &format!("{sb}/api/v1/query"),
            [
                ("query", "{__name__=~\".+\"}[7h]"),
                ("time", &end_s.to_string()),
            ],
        )?)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let series = all["data"]["result"]
        .as_array()
        .context("no series read back")?;
    let exported: usize = series
        .iter()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    let om = dir.path().join("data.om");
    std::fs::write(&om, openmetrics(series)?)?;
    let prom_data = dir.path().join("prometheus");
    let t0 = Instant::now();
    let st = Command::new(promtool_bin)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&prom_data)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {promtool_bin}"))?;
    anyhow::ensure!(st.success(), "promtool failed: {st}");
    println!(
        "data: {samples} samples sent over OTLP from {services} services, {} series and {exported} samples read back and written to Prometheus blocks in {:.1} s",
        series.len(),
        t0.elapsed().as_secs_f64()
    );
    let prom = start_prometheus(prometheus_bin, &prom_data, dir.path()).await?;

    println!(
        "{:<100} {:>11} {:>11} {:>7}  answers",
        "query", "SignalBox", "Prometheus", "ratio"
    );
    let mut ratios = Vec::new();
    let (mut total_sb, mut total_prom) = (Duration::ZERO, Duration::ZERO);
    let queries = RANGE
        .iter()
        .map(|q| (q, true))
        .chain(INSTANT.iter().map(|q| (q, false)));
    for (q, range) in queries {
        let params: Vec<(&str, String)> = if range {
            vec![
                ("query", q.to_string()),
                ("start", start_s.to_string()),
                ("end", end_s.to_string()),
                ("step", STEP_S.to_string()),
            ]
        } else {
            vec![("query", q.to_string()), ("time", end_s.to_string())]
        };
        let path = if range {
            "/api/v1/query_range"
        } else {
            "/api/v1/query"
        };
        let url = |base: &str| reqwest::Url::parse_with_params(&format!("{base}{path}"), &params);
        let (t_sb, a_sb) = time_query(&http, &url(&sb)?).await?;
        let (t_prom, a_prom) = time_query(&http, &url(&prom.base)?).await?;
        let ratio = t_sb.as_secs_f64() / t_prom.as_secs_f64();
        ratios.push(ratio);
        total_sb += t_sb;
        total_prom += t_prom;
        let agree = match difference(&a_sb, &a_prom)? {
            None => "same".to_string(),
            Some(d) => format!("DIFFER: {d}"),
        };
        println!(
            "{:<100} {:>8.2} ms {:>8.2} ms {:>7.2}  {agree}",
            format!("{} {q}", if range { "range" } else { "instant" }),
            t_sb.as_secs_f64() * 1000.0,
            t_prom.as_secs_f64() * 1000.0,
            ratio
        );
    }
    let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    println!(
        "overall: geometric mean of the ratios {geo:.2}, sum of medians {:.1} ms vs {:.1} ms ({:.2}); slowest ratio {:.2}",
        total_sb.as_secs_f64() * 1000.0,
        total_prom.as_secs_f64() * 1000.0,
        total_sb.as_secs_f64() / total_prom.as_secs_f64(),
        ratios.iter().copied().fold(0.0, f64::max)
    );
    drop(prom);
    if keep {
        println!("data kept in {}", dir.keep().display());
    }
    srv.stop().await
}
