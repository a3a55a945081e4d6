//! The log query benchmark: after a logs load, times LogQL queries over the Loki API
//! against `grep -F` over a file holding the same lines.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::generate::RARE_TERM;

const RUNS: usize = 5;

struct Timed {
    best: Duration,
    median: Duration,
}

fn summary(mut d: Vec<Duration>) -> Timed {
    d.sort();
    Timed {
        best: d[0],
        median: d[d.len() / 2],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn query(
    client: &reqwest::Client,
    http: SocketAddr,
    q: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<(Timed, serde_json::Value)> {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = serde_json::Value::Null;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let params =
            std::iter::once(("query", q)).chain(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let url = reqwest::Url::parse_with_params(
            &format!("http://{http}/loki/api/v1/query_range"),
            params,
        )?;
        let resp = client.get(url).send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        times.push(t0.elapsed());
        anyhow::ensure!(status.is_success(), "{q}: {status}: {body}");
        last = serde_json::from_str(&body).context("query response")?;
    }
    Ok((summary(times), last))
}

fn lines_returned(v: &serde_json::Value) -> usize {
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

/// `grep` over the raw files, warm cache: the best of `RUNS` runs, and its output.
fn grep(args: &[&str], files: &[PathBuf]) -> anyhow::Result<(Timed, String)> {
    let mut times = Vec::with_capacity(RUNS);
    let mut out = String::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let o = Command::new("grep").args(args).args(files).output()?;
        times.push(t0.elapsed());
        out = String::from_utf8_lossy(&o.stdout).into_owned();
    }
    Ok((summary(times), out))
}

fn grep_count(out: &str) -> u64 {
    out.lines()
        .filter_map(|l| l.rsplit(':').next())
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// Runs the queries over `[start_ns, end_ns]` and prints the results next to grep's.
pub(crate) async fn run(
    http: SocketAddr,
    raw: &[PathBuf],
    start_ns: i64,
    end_ns: i64,
    stored_lines: u64,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let raw_bytes: u64 = raw
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let range = [
        ("start", start_ns.to_string()),
        ("end", end_ns.to_string()),
        ("limit", "1000".to_string()),
    ];
    println!(
        "raw file               {raw_bytes} bytes in {} files",
        raw.len()
    );

    let (g, out) = grep(&["-F", "-c", RARE_TERM], raw)?;
    let rare_in_raw = grep_count(&out);
    let (t, v) = query(
        &client,
        http,
        &format!("{{service_name=~\".+\"}} |= \"{RARE_TERM}\""),
        &range,
    )
    .await?;
    println!(
        "rare term              signalbox {} (median {}), {} lines | grep -F -c {} (median {}), {} lines",
        ms(t.best),
        ms(t.median),
        lines_returned(&v),
        ms(g.best),
        ms(g.median),
        rare_in_raw
    );

    let (g, _) = grep(&["-F", "-m", "1000", "GET"], raw)?;
    let (t, v) = query(&client, http, "{service_name=~\".+\"} |= \"GET\"", &range).await?;
    println!(
        "common term, 1000     signalbox {} (median {}), {} lines | grep -F -m 1000 {} (median {})",
        ms(t.best),
        ms(t.median),
        lines_returned(&v),
        ms(g.best),
        ms(g.median)
    );

    let (g, out) = grep(&["-F", "-c", "ERROR"], raw)?;
    // The first half of the load: a metric query reads at most 10 million lines.
    let half = start_ns + (end_ns - start_ns) / 2;
    let metric = [
        ("start", start_ns.to_string()),
        ("end", half.to_string()),
        ("step", "10".to_string()),
    ];
    let (t, v) = query(
        &client,
        http,
        "sum by (level) (count_over_time({service_name=~\".+\"}[10s]))",
        &metric,
    )
    .await?;
    let counted: f64 = v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p[1].as_str().and_then(|x| x.parse::<f64>().ok()))
                .sum()
        })
        .unwrap_or(0.0);
    println!(
        "sum by (level) count   signalbox {} (median {}), counted {counted} lines (first half of the load; {stored_lines} stored in all) | full scan of all files, grep -F -c ERROR {} (median {}), {} lines",
        ms(t.best),
        ms(t.median),
        ms(g.best),
        ms(g.median),
        grep_count(&out)
    );
    Ok(())
}
