//! The trace query benchmark: after a traces load, looks up acknowledged traces by id and
//! runs searches over the Jaeger API, and reports latency percentiles.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Traces looked up by id (spread over the whole load).
const LOOKUPS: usize = 2000;
const SEARCH_RUNS: usize = 20;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut times: Vec<Duration>, extra: &str) {
    if times.is_empty() {
        println!("{what:<22} no requests");
        return;
    }
    times.sort();
    println!(
        "{what:<22} {} requests: p50 {} p90 {} p99 {} max {}{extra}",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
    );
}

/// Runs the lookups and searches and prints their latencies.
pub(crate) async fn run(
    http: SocketAddr,
    trace_ids: &[String],
    services: usize,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let step = (trace_ids.len() / LOOKUPS).max(1);
    let mut times = Vec::new();
    let mut spans = 0usize;
    for id in trace_ids.iter().step_by(step).take(LOOKUPS) {
        let t0 = Instant::now();
        let resp = client
            .get(format!("http://{http}/jaeger/api/traces/{id}"))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        times.push(t0.elapsed());
        anyhow::ensure!(status.is_success(), "trace {id}: {status}");
        let v: serde_json::Value = serde_json::from_slice(&body).context("trace response")?;
        let n = v["data"][0]["spans"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(n > 0, "trace {id} came back without spans");
        spans += n;
    }
    report("trace by id", times, &format!(" ({spans} spans returned)"));

    let mut times = Vec::new();
    let mut found = 0usize;
    for i in 0..SEARCH_RUNS {
        let service = crate::generate::service_name(i % services.max(1));
        let url = reqwest::Url::parse_with_params(
            &format!("http://{http}/jaeger/api/traces"),
            [
                ("service", service.as_str()),
                ("start", &(start_ns / 1000).to_string()),
                ("end", &(end_ns / 1000).to_string()),
                ("limit", "20"),
            ],
        )?;
        let t0 = Instant::now();
        let resp = client.get(url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        times.push(t0.elapsed());
        anyhow::ensure!(status.is_success(), "search {service}: {status}");
        let v: serde_json::Value = serde_json::from_slice(&body).context("search response")?;
        found += v["data"].as_array().map_or(0, Vec::len);
    }
    report(
        "search, limit 20",
        times,
        &format!(" ({found} traces returned)"),
    );
    Ok(())
}
