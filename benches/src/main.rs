//! `loadgen`: starts a `signalbox` server, sends it realistic OTLP over gRPC at a target
//! rate, and reports sustained throughput, server CPU-seconds per million items, peak
//! RSS, and bytes on disk per item after the parts are merged.
//!
//! ```text
//! cargo build --release -p signalbox -p signalbox-benches
//! target/release/loadgen --signal metrics --series 100000 --rate 1000000 --duration 60
//! ```

mod dashbench;
mod generate;
mod logquery;
mod procfs;
mod promcompare;
mod server;
mod tracequery;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};

use generate::{LogGen, LogValues, MetricGen, TraceGen};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Signal {
    Metrics,
    Logs,
    Traces,
    /// No load: six hours of backfilled data, then the time to render a dashboard.
    Dashboard,
    /// No load: six hours of backfilled metrics in SignalBox and in Prometheus, then the
    /// same PromQL queries timed against both.
    Promql,
}

#[derive(Parser, Debug)]
#[command(about = "OTLP load generator and benchmark for signalbox")]
struct Args {
    /// Which signal to send.
    #[arg(long, value_enum)]
    signal: Signal,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/signalbox")]
    server_bin: String,
    /// Prometheus, for `--signal promql`.
    #[arg(long, default_value = "prometheus")]
    prometheus_bin: String,
    /// promtool, for `--signal promql`.
    #[arg(long, default_value = "promtool")]
    promtool_bin: String,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Target items per second (samples, log records or spans); 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Concurrent gRPC connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Items per export request.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Active series (metrics).
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Services sending.
    #[arg(long, default_value_t = 20)]
    services: usize,
    /// Seconds to wait after the load for merges before stopping the server.
    #[arg(long, default_value_t = 75)]
    settle: u64,
    /// Keep the data directory (printed) instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Logs: also write the lines to files, and after the load time LogQL queries over
    /// the Loki API against `grep -F` over those files. Traces: after the load time
    /// lookups of acknowledged traces by id and searches over the Jaeger API.
    #[arg(long)]
    query_bench: bool,
    /// Logs: how the values in the lines are drawn.
    #[arg(long, value_enum, default_value_t = LogValues::Realistic)]
    log_values: LogValues,
}

enum Gen {
    M(MetricGen),
    L(LogGen),
    T(TraceGen),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.signal == Signal::Dashboard {
        return dashbench::run(&args.server_bin, args.services, args.keep).await;
    }
    if args.signal == Signal::Promql {
        return promcompare::run(
            &args.server_bin,
            &args.prometheus_bin,
            &args.promtool_bin,
            args.services,
            args.keep,
        )
        .await;
    }
    let dir = tempfile::Builder::new()
        .prefix("signalbox-bench")
        .tempdir()?;
    let srv = server::Server::start(&args.server_bin, dir.path())
        .await
        .context("starting the server")?;
    let idle_rss = procfs::rss_kib(srv.pid).unwrap_or(0);
    let cpu0 = procfs::cpu_seconds(srv.pid)?;
    let url = format!("http://{}", srv.grpc);

    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let log_bytes = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let per_worker_rate = if args.rate == 0 {
        0.0
    } else {
        args.rate as f64 / args.concurrency as f64
    };
    let started = Instant::now();
    let load_start_ns = generate::now_ns() as i64;
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let generator = match args.signal {
            Signal::Metrics => Gen::M(MetricGen::new(
                w,
                args.concurrency,
                args.series,
                args.services,
            )),
            Signal::Logs => {
                let mut g = LogGen::new(w, args.services, args.log_values);
                if args.query_bench {
                    g.raw = Some(String::new());
                }
                Gen::L(g)
            }
            Signal::Traces => Gen::T(TraceGen::new(w, args.services)),
            Signal::Dashboard | Signal::Promql => {
                anyhow::bail!("this benchmark sends no load")
            }
        };
        let (url, sent, acked, refused, log_bytes) = (
            url.clone(),
            sent.clone(),
            acked.clone(),
            refused.clone(),
            log_bytes.clone(),
        );
        let batch = args.batch;
        let raw_path = dir.path().join(format!("raw-{w}.log"));
        tasks.push(tokio::spawn(async move {
            let mut raw_file = None;
            // One acknowledged trace id per traces request, for the lookup benchmark.
            let mut trace_ids: Vec<String> = Vec::new();
            let mut client = generate::Clients::connect(&url).await?;
            let mut generator = generator;
            let t0 = Instant::now();
            let mut done = 0u64;
            while Instant::now() < deadline {
                if per_worker_rate > 0.0 {
                    let due = Duration::from_secs_f64(done as f64 / per_worker_rate);
                    let el = t0.elapsed();
                    if due > el {
                        tokio::time::sleep(due - el).await;
                    }
                }
                let (n, ok, bytes) = match &mut generator {
                    Gen::M(g) => {
                        let req = g.next(batch);
                        let n = g.points(&req);
                        (n, client.metrics.export(req).await.is_ok(), 0)
                    }
                    Gen::L(g) => {
                        let (req, bytes) = g.next(batch);
                        let ok = client.logs.export(req).await.is_ok();
                        if let Some(raw) = g.raw.as_mut() {
                            if ok {
                                use std::io::Write;
                                if raw_file.is_none() {
                                    raw_file = Some(std::fs::File::create(&raw_path)?);
                                }
                                if let Some(f) = raw_file.as_mut() {
                                    f.write_all(raw.as_bytes())?;
                                }
                            }
                            raw.clear();
                        }
                        (batch as u64, ok, bytes)
                    }
                    Gen::T(g) => {
                        let req = g.next(batch);
                        let n = g.spans(&req);
                        let id = g.first_trace_id(&req);
                        let ok = client.traces.export(req).await.is_ok();
                        if let (true, Some(id)) = (ok, id) {
                            trace_ids.push(id);
                        }
                        (n, ok, 0)
                    }
                };
                done += n;
                sent.fetch_add(n, Ordering::Relaxed);
                if ok {
                    acked.fetch_add(n, Ordering::Relaxed);
                    log_bytes.fetch_add(bytes, Ordering::Relaxed);
                } else {
                    refused.fetch_add(n, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            anyhow::Ok(trace_ids)
        }));
    }
    let mut peak_rss = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    let mut last = (Instant::now(), 0u64);
    while Instant::now() < deadline {
        ticker.tick().await;
        peak_rss = peak_rss.max(procfs::rss_kib(srv.pid).unwrap_or(0));
        let a = acked.load(Ordering::Relaxed);
        let rate = (a - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), a);
        eprintln!(
            "  {:>5.1}s  acked {a:>12}  {:>10.0}/s  rss {} MiB",
            started.elapsed().as_secs_f64(),
            rate,
            procfs::rss_kib(srv.pid).unwrap_or(0) / 1024
        );
    }
    let mut trace_ids = Vec::new();
    for t in tasks {
        trace_ids.extend(t.await??);
    }
    let end_rss = procfs::rss_kib(srv.pid).unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_load = procfs::cpu_seconds(srv.pid)? - cpu0;
    peak_rss = peak_rss.max(procfs::peak_rss_kib(srv.pid).unwrap_or(0));
    let acked = acked.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    // Every generated line is stamped before this.
    let load_end_ns = generate::now_ns() as i64 + 1_000_000_000;
    eprintln!("  load done; waiting {}s for merges", args.settle);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let cpu_total = procfs::cpu_seconds(srv.pid)? - cpu0;
    // VmHWM again: the merges after the load can hold more than the load did.
    let settled_peak_rss = procfs::peak_rss_kib(srv.pid).unwrap_or(0).max(peak_rss);
    let metrics_text = srv.metrics_text().await.unwrap_or_default();
    let cpu_queries0 = procfs::cpu_seconds(srv.pid)?;
    if args.query_bench && args.signal == Signal::Logs {
        let raw: Vec<std::path::PathBuf> = (0..args.concurrency)
            .map(|w| dir.path().join(format!("raw-{w}.log")))
            .filter(|p| p.exists())
            .collect();
        logquery::run(srv.http, &raw, load_start_ns, load_end_ns, acked).await?;
    }
    if args.query_bench && args.signal == Signal::Traces {
        tracequery::run(
            srv.http,
            &trace_ids,
            args.services,
            load_start_ns,
            load_end_ns,
        )
        .await?;
    }
    if args.query_bench {
        // A merge still running while the queries run shows up here as more CPU than
        // the queries themselves need.
        println!(
            "server CPU during the queries {:.1} s",
            procfs::cpu_seconds(srv.pid)? - cpu_queries0
        );
    }
    srv.stop().await?;
    let sig = match args.signal {
        Signal::Metrics => "metrics",
        Signal::Logs => "logs",
        Signal::Traces => "traces",
        Signal::Dashboard => "dashboard",
        Signal::Promql => "promql",
    };
    let part_bytes = procfs::dir_bytes(&dir.path().join("parts").join(sig));
    let parts = std::fs::read_dir(dir.path().join("parts").join(sig))
        .map(|d| d.count())
        .unwrap_or(0);
    let wal_bytes = procfs::dir_bytes(&dir.path().join("wal").join(sig));

    println!("signal                 {sig}");
    println!(
        "duration               {elapsed:.1} s  (concurrency {}, batch {}, target rate {})",
        args.concurrency,
        args.batch,
        if args.rate == 0 {
            "max".to_string()
        } else {
            args.rate.to_string()
        }
    );
    println!(
        "acknowledged           {acked} items  ({:.0} items/s sustained)",
        acked as f64 / elapsed
    );
    println!("refused (retryable)    {refused} items");
    if args.signal == Signal::Logs {
        let lb = log_bytes.load(Ordering::Relaxed);
        println!("log values             {:?}", args.log_values);
        println!(
            "log line bytes         {lb}  ({:.1} MB/s)",
            lb as f64 / elapsed / 1e6
        );
        println!(
            "on disk per log byte   {:.3} bytes",
            part_bytes as f64 / lb.max(1) as f64
        );
    }
    println!(
        "server CPU during load {cpu_load:.1} s  ({:.2} CPU-s per million items; {:.2} cores)",
        cpu_load / (acked.max(1) as f64 / 1e6),
        cpu_load / elapsed
    );
    println!("server CPU incl. merge {cpu_total:.1} s");
    println!(
        "server RSS             idle {} MiB, end of load {} MiB, peak during the load {} MiB, peak incl. the {} s after it {} MiB",
        idle_rss / 1024,
        end_rss / 1024,
        peak_rss / 1024,
        args.settle,
        settled_peak_rss / 1024
    );
    if args.signal == Signal::Metrics {
        let per = |kib: u64| kib.saturating_sub(idle_rss) as f64 * 1024.0 / args.series as f64;
        println!(
            "RSS per active series  {:.0} bytes at end of load, {:.0} bytes at peak (minus idle, over {} series)",
            per(end_rss),
            per(peak_rss),
            args.series
        );
    }
    println!(
        "parts after merge      {parts} parts, {part_bytes} bytes  (WAL left: {wal_bytes} bytes)"
    );
    println!(
        "on disk per item       {:.3} bytes",
        part_bytes as f64 / acked.max(1) as f64
    );
    for line in metrics_text.lines().filter(|l| {
        l.starts_with("signalbox_compactions_total")
            || l.starts_with("signalbox_head_flushes_total")
            || l.starts_with("signalbox_storage_refusals_total")
    }) {
        println!("server metric          {line}");
    }
    if args.keep {
        println!("data kept in {}", dir.keep().display());
    }
    Ok(())
}
