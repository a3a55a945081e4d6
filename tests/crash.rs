//! Crash safety: clients write concurrently, the server is killed with SIGKILL in the
//! middle, and every write a client saw acknowledged is readable afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use signalbox_storage::{LogQuery, LogsReader, Matcher, MetricsReader, TracesReader};

#[derive(Default)]
struct Acked {
    lines: BTreeSet<String>,
    series: BTreeSet<String>,
    traces: BTreeSet<[u8; 16]>,
}

async fn writer(
    url: String,
    worker: usize,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let Ok(mut logs) = LogsServiceClient::connect(url.clone()).await else {
        return;
    };
    let Ok(mut metrics) = MetricsServiceClient::connect(url.clone()).await else {
        return;
    };
    let Ok(mut traces) = TraceServiceClient::connect(url).await else {
        return;
    };
    let mut i = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = now_ns();
        let lines: Vec<String> = (0..20).map(|j| format!("w{worker}-b{i}-l{j}")).collect();
        if logs.export(logs_request("crash", &lines, t)).await.is_ok() {
            acked.lock().unwrap().lines.extend(lines);
        }
        let series: Vec<String> = (0..10).map(|j| format!("w{worker}-b{i}-s{j}")).collect();
        if metrics
            .export(gauge_request("crash", "crash.gauge", &series, t, i as f64))
            .await
            .is_ok()
        {
            acked.lock().unwrap().series.extend(series);
        }
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(worker as u64).to_be_bytes());
        id[8..].copy_from_slice(&(i + 1).to_be_bytes());
        if traces
            .export(trace_request("crash", id, 2, t))
            .await
            .is_ok()
        {
            acked.lock().unwrap().traces.insert(id);
        }
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Small heads so that flushes to parts happen while the clients write.
    let cfg = dir.path().join("small.yaml");
    let section = "    head_size: 8MiB\n    flush_size: 256KiB\n    flush_interval: 10m\n    part_window: 1h\n    retention: 1d\n    max_parts_per_window: 4\n    max_merge_size: 64MiB\n";
    std::fs::write(
        &cfg,
        format!("storage:\n  metrics:\n{section}  logs:\n{section}  traces:\n{section}"),
    )
    .unwrap();
    let srv = Server::start_with(&data, &["--config", cfg.to_str().unwrap()]);
    let url = format!("http://{}", srv.grpc);
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(writer(url.clone(), w, acked.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    srv.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.lines.len() > 200,
        "too little was written to test anything: {}",
        acked.lines.len()
    );

    // Readable through the storage read API…
    let s = open_storage(&data).await;
    let parts: usize = s.part_counts().iter().map(|(_, n)| n).sum();
    let got: BTreeSet<String> = s
        .query_logs(&LogQuery {
            matchers: vec![Matcher::eq("service_name", "crash")],
            start_ns: 0,
            end_ns: i64::MAX,
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.line().into_owned())
        .collect();
    let missing: Vec<_> = acked.lines.difference(&got).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged lines lost, e.g. {missing:?} (parts: {parts})",
        acked.lines.difference(&got).count()
    );
    let series: BTreeSet<String> = s
        .label_values(
            "series",
            &[Matcher::eq("__name__", "crash_gauge")],
            0,
            i64::MAX,
        )
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        acked.series.is_subset(&series),
        "{} acknowledged series lost",
        acked.series.difference(&series).count()
    );
    for id in &acked.traces {
        assert_eq!(s.trace(*id).await.unwrap().len(), 2, "trace {id:?} lost");
    }
    drop(s);

    // …and the server itself comes back with the same data.
    let srv = Server::start(&data);
    assert_eq!(srv.terminate(), 0);
    eprintln!(
        "acknowledged: {} lines, {} series, {} traces; parts before restart: {parts}",
        acked.lines.len(),
        acked.series.len(),
        acked.traces.len()
    );
}
