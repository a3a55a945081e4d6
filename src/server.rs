//! Wiring: storage, the collector, the listeners, background maintenance, and the
//! shutdown sequence (stop accepting, finish requests, flush heads to parts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use signalbox_collector::{Collector, serve_otlp_grpc, serve_otlp_http};
use signalbox_query::AdminState;
use signalbox_query::alerting::{AmConfig, ForwardTarget, Notifier, NotifierOptions};
use signalbox_query::rules::api::ReloadHook;
use signalbox_query::rules::{External, ManagerOptions, Querier, RuleManager};
use signalbox_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a LogQL query may run.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Most log lines one LogQL metric query reads (about 1 GB of lines at 100 bytes each).
const LOGQL_MAX_LINES: u64 = 10_000_000;

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn terminate_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received, shutting down"),
    }
}

/// Loads the rule files and starts their groups; bad rule files stop the start.
async fn start_rules(
    settings: &Settings,
    storage: Arc<Storage>,
    engine: signalbox_query::promql::Engine,
) -> anyhow::Result<Arc<RuleManager>> {
    let r = &settings.rules;
    let querier = Querier::new(
        engine,
        storage.clone(),
        Some(signalbox_query::logql::LogqlEngine::new(
            storage.clone(),
            LOGQL_MAX_LINES,
        )),
    );
    let opts = ManagerOptions {
        files: r.files.clone(),
        evaluation_interval: r.evaluation_interval,
        external: External {
            labels: r.external_labels.clone(),
            url: r.external_url.clone(),
        },
        state_path: Some(settings.storage.data_dir.join("rules").join("alerts.state")),
        outage_tolerance: r.outage_tolerance,
    };
    let m = RuleManager::new(opts, Arc::new(querier), storage);
    if let Err(errs) = m.start(true).await {
        anyhow::bail!("rule files rejected:\n  {}", errs.join("\n  "));
    }
    Ok(m)
}

/// The notifier with its configuration: `--alertmanager-config`, `alerting.config_file`,
/// `alerting.config`, or none (alerts are grouped and shown, nothing is sent).
fn start_notifier(settings: &Settings, registry: &mut Registry) -> anyhow::Result<Arc<Notifier>> {
    let a = &settings.alerting;
    let config = match (&a.config_file, &a.embedded) {
        (Some(p), _) => signalbox_query::alerting::load_config(p).map_err(anyhow::Error::msg)?,
        (None, Some(text)) => {
            signalbox_query::alerting::parse_config(text, &|k| std::env::var(k).ok())
                .map_err(|e| anyhow::anyhow!("alerting.config: {e}"))?
        }
        (None, None) => AmConfig::empty(),
    };
    for w in &config.warnings {
        tracing::warn!(warning = %w, "notification configuration");
    }
    let opts = NotifierOptions {
        external_url: settings.rules.external_url.clone(),
        state_path: Some(
            settings
                .storage
                .data_dir
                .join("alerting")
                .join("notify.state"),
        ),
        forward: a
            .forward
            .iter()
            .map(|(url, timeout)| ForwardTarget {
                url: signalbox_query::alerting::config::Secret::new(url.clone()),
                timeout: *timeout,
            })
            .collect(),
        ..Default::default()
    };
    Ok(Notifier::new(Arc::new(config), opts, Some(registry)))
}

/// What `/-/reload` and SIGHUP do for notifications: re-read the file, if there is one.
fn notifier_reload_hook(settings: &Settings, n: &Arc<Notifier>) -> Option<ReloadHook> {
    let path = settings.alerting.config_file.clone()?;
    let n = n.clone();
    Some(Arc::new(move || {
        signalbox_query::alerting::reload_config(&n, &Some(path.clone()))
    }))
}

/// SIGHUP re-reads the rule files and the notification configuration (a bad file keeps
/// the previous settings).
async fn reload_on_sighup(m: Arc<RuleManager>, hook: Option<ReloadHook>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received, reloading rules and notification settings");
        let _ = signalbox_query::rules::api::reload_all(&m, hook.as_ref()).await;
    }
}

pub(crate) async fn run(settings: Settings, config_text: String) -> anyhow::Result<()> {
    let mut registry = Registry::with_prefix("signalbox");
    let info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    info.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    registry.register("build_info", "Version of the running server", info);

    let started = std::time::Instant::now();
    let (storage, report) = Storage::open(settings.storage.clone(), &mut registry)
        .await
        .with_context(|| {
            format!(
                "cannot open data directory {}",
                settings.storage.data_dir.display()
            )
        })?;
    for (signal, r) in [
        ("metrics", &report.metrics),
        ("logs", &report.logs),
        ("traces", &report.traces),
    ] {
        for (path, len) in &r.torn_tails {
            tracing::warn!(signal, path = %path.display(), kept_bytes = len, "wal had a torn tail; truncated");
        }
        if r.corrupt_records > 0 {
            tracing::error!(
                signal,
                records = r.corrupt_records,
                "wal had corrupt records; skipped"
            );
        }
    }
    tracing::info!(
        data_dir = %settings.storage.data_dir.display(),
        parts = report.parts,
        replayed_records = report.metrics.records + report.logs.records + report.traces.records,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "storage opened"
    );
    let storage = Arc::new(storage);
    let collector = Collector::new(storage.clone(), settings.collector.clone(), &mut registry);
    let notifier = start_notifier(&settings, &mut registry)?;
    // One engine answers the API and evaluates the rules; its metrics count both.
    let engine = signalbox_query::promql::Engine::new(settings.promql.clone());
    engine.register_metrics(&mut registry);
    let admin = AdminState::new(Arc::new(registry));

    let grpc_l = bind("OTLP/gRPC", settings.otlp_grpc_addr).await?;
    let otlp_http_l = bind("OTLP/HTTP", settings.otlp_http_addr).await?;
    let http_l = bind("HTTP", settings.http_addr).await?;
    tracing::info!(
        otlp_grpc = %grpc_l.local_addr()?,
        otlp_http = %otlp_http_l.local_addr()?,
        http = %http_l.local_addr()?,
        "listening"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let grpc = tokio::spawn(serve_otlp_grpc(
        grpc_l,
        collector.clone(),
        stopped(stop_rx.clone()),
    ));
    let otlp_http = tokio::spawn(serve_otlp_http(
        otlp_http_l,
        collector.clone(),
        stopped(stop_rx.clone()),
    ));
    let prom = signalbox_query::PromApi::new(
        storage.clone(),
        engine.clone(),
        settings.storage.metrics.retention,
    );
    let jaeger = signalbox_query::JaegerApi::new(storage.clone());
    let loki = signalbox_query::LokiApi::new(
        signalbox_query::logql::LogqlEngine::new(storage.clone(), LOGQL_MAX_LINES),
        QUERY_TIMEOUT,
    )
    .with_traces(storage.clone());
    let (dashboards, _) = signalbox_query::dashboards::DashboardStore::open(
        &settings.storage.data_dir,
        settings.dashboards_dir.clone(),
    )
    .context("opening the dashboards folder")?;
    let dashboards = Arc::new(dashboards);
    let rules = start_rules(&settings, storage.clone(), engine).await?;
    rules.set_alert_sink(Arc::new(notifier.clone()));
    let reload_notifier = notifier_reload_hook(&settings, &notifier);
    let api = signalbox_query::router(admin.clone())
        .merge(signalbox_query::rules::api::router(
            rules.clone(),
            reload_notifier.clone(),
        ))
        .merge(signalbox_query::alerting::api::router(notifier.clone()))
        .merge(signalbox_query::prometheus::router(prom))
        .merge(signalbox_query::jaeger::router(jaeger))
        .merge(signalbox_query::loki::router(loki))
        .merge(signalbox_collector::loki_push_router(collector.clone()))
        .merge(crate::status::router(config_text))
        .merge(signalbox_query::dashboards::router(dashboards));
    // The UI answers every GET the APIs do not, and renders pages by calling the APIs.
    let app = api.clone().merge(signalbox_ui::server::router(api));
    let http = tokio::spawn(async move {
        axum::serve(http_l, app)
            .with_graceful_shutdown(stopped(stop_rx))
            .await
    });
    let (maint_tx, maint_rx) = watch::channel(false);
    let maintenance = tokio::spawn(storage.clone().run_maintenance(maint_rx));
    {
        let s = storage.clone();
        tokio::spawn(async move {
            let bad = s.scrub().await;
            if bad > 0 {
                tracing::error!(parts = bad, "corrupt parts found at start-up and set aside");
            }
        });
    }
    admin.set_ready(true);
    let saver = rules.spawn_saver();
    let notify_loop = notifier.spawn_loop();
    let reloader = tokio::spawn(reload_on_sighup(rules.clone(), reload_notifier));

    terminate_signal().await;
    reloader.abort();
    saver.abort();
    rules.shutdown().await;
    notify_loop.abort();
    notifier.touch();
    notifier.save_if_dirty().await;
    admin.set_ready(false);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let (g, h, q) = tokio::join!(grpc, otlp_http, http);
        if let Ok(Err(e)) = g {
            tracing::error!(error = %e, "otlp/grpc server ended with an error");
        }
        if let Ok(Err(e)) = h {
            tracing::error!(error = %e, "otlp/http server ended with an error");
        }
        if let Ok(Err(e)) = q {
            tracing::error!(error = %e, "http server ended with an error");
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; flushing anyway");
    }
    let _ = maint_tx.send(true);
    let _ = maintenance.await;
    storage
        .flush_all()
        .await
        .context("flushing heads at shutdown")?;
    // Merged-away parts that a query held when their merge ended.
    storage.collect_garbage().await;
    tracing::info!("shutdown complete");
    Ok(())
}
