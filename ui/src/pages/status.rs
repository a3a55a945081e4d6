//! Status: build and runtime, what was ingested and refused, what is stored per
//! signal, and the effective configuration with secrets redacted.

use crate::api::{Api, Labels, PromEnvelope, use_api};
use crate::metrics_text::{TextSample, parse};
use crate::timerange::{format_duration, now, parse_time};
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

/// The families shown, by section: (name without the `signalbox_` prefix, what it is).
const INGEST: [(&str, &str); 4] = [
    ("ingest_requests_total", "export requests received"),
    ("ingest_request_bytes_total", "request bytes received"),
    (
        "ingest_refused_requests_total",
        "requests refused (retryable)",
    ),
    ("ingest_rejected_items_total", "items rejected as invalid"),
];
const STORAGE: [(&str, &str); 9] = [
    ("stored_items_total", "items stored"),
    ("part_bytes", "bytes in parts on disk"),
    ("parts", "parts on disk"),
    ("head_bytes", "bytes in memory (heads)"),
    ("head_items", "items in memory (heads)"),
    ("active_series", "active series"),
    ("wal_bytes_total", "bytes written to the WAL"),
    ("wal_segments", "WAL segment files"),
    ("storage_refusals_total", "writes refused by storage"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Status {
    version: String,
    start_time: String,
    uptime: Option<f64>,
    retention: String,
    samples: Result<Vec<TextSample>, String>,
    config: Result<String, String>,
    /// Settings shown in their own rows: (what, value), from the configuration.
    settings: Vec<(String, String)>,
}

/// The settings the server section lists, by their path in the configuration.
const SETTINGS: [(&str, &str); 12] = [
    ("storage.metrics.retention", "Metrics retention"),
    ("storage.logs.retention", "Logs retention"),
    ("storage.traces.retention", "Traces retention"),
    ("storage.limits.max_active_series", "Active series at most"),
    (
        "storage.limits.max_labels_per_series",
        "Labels per series at most",
    ),
    (
        "storage.limits.max_label_name_length",
        "Label name length at most",
    ),
    (
        "storage.limits.max_label_value_length",
        "Label value length at most",
    ),
    ("storage.limits.max_future", "Accepted into the future"),
    ("storage.limits.max_exemplars", "Exemplars kept"),
    ("otlp.max_request_size", "OTLP request size at most"),
    ("otlp.max_inflight", "OTLP bytes in flight at most"),
    ("storage.wal.fsync", "WAL fsync"),
];

/// The listed settings found in `settings` (the configuration as JSON), as text.
fn listed(settings: &serde_json::Value) -> Vec<(String, String)> {
    SETTINGS
        .iter()
        .filter_map(|(path, what)| {
            let v = path.split('.').try_fold(settings, |v, k| v.get(k))?;
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => number(n.as_f64()?),
                other => other.to_string(),
            };
            Some((what.to_string(), text))
        })
        .collect()
}

async fn load(api: Api) -> Result<Status, String> {
    let (build, _) = api
        .get_json::<PromEnvelope<Labels>>("/api/v1/status/buildinfo")
        .await
        .and_then(PromEnvelope::into_result)?;
    let (runtime, _) = api
        .get_json::<PromEnvelope<serde_json::Value>>("/api/v1/status/runtimeinfo")
        .await
        .and_then(PromEnvelope::into_result)?;
    let start_time = runtime["startTime"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let t = now();
    let uptime = parse_time(&start_time, t).ok().map(|s| t - s);
    let samples = api.get_text("/metrics").await.map(|text| parse(&text));
    let config = api
        .get_json::<PromEnvelope<serde_json::Value>>("/api/v1/status/config")
        .await
        .and_then(PromEnvelope::into_result)
        .map(|(v, _)| v);
    let settings = config
        .as_ref()
        .map(|v| listed(&v["settings"]))
        .unwrap_or_default();
    let config = config.map(|v| v["toml"].as_str().unwrap_or_default().to_string());
    Ok(Status {
        version: build.get("version").cloned().unwrap_or_default(),
        start_time,
        uptime,
        retention: match &runtime["storageRetention"] {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        },
        samples,
        config,
        settings,
    })
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let s = format!("{}", v as i64);
        // Thousands separated by thin spaces.
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('\u{2009}');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else {
        format!("{v:.3}")
    }
}

/// One table per section: a row per family and label set.
fn table(samples: &[TextSample], families: &[(&str, &str)], uptime: Option<f64>) -> AnyView {
    let rows: Vec<(String, String, String, f64)> = families
        .iter()
        .flat_map(|(name, what)| {
            let full = format!("signalbox_{name}");
            samples
                .iter()
                .filter(move |s| s.name == full)
                .map(move |s| {
                    let labels = s
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    (name.to_string(), what.to_string(), labels, s.value)
                })
        })
        .collect();
    if rows.is_empty() {
        return view! { <p class="hint">"Nothing yet."</p> }.into_any();
    }
    view! {
        <div class="table-scroll">
            <table class="result-table status-table">
                <thead><tr><th>"What"</th><th>"Labels"</th><th class="num">"Value"</th><th class="num">"Per second since start"</th></tr></thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|(name, what, labels, v)| {
                            let per_s = (name.ends_with("_total"))
                                .then_some(uptime)
                                .flatten()
                                .filter(|u| *u > 0.0)
                                .map(|u| format!("{:.2}", v / u))
                                .unwrap_or_default();
                            view! {
                                <tr>
                                    <td title=format!("signalbox_{name}")>{what}</td>
                                    <td class="muted">{labels}</td>
                                    <td class="num">{number(v)}</td>
                                    <td class="num">{per_s}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// The status page.
#[component]
pub(crate) fn StatusPage() -> impl IntoView {
    let api = use_api();
    let status = Resource::new(
        || (),
        move |_| {
            let api = api.clone();
            async move { load(api).await }
        },
    );
    let body = move || {
        Suspend::new(async move {
            let s = match status.await {
                Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(s) => s,
            };
            let samples = s.samples.clone();
            view! {
                <section class="results">
                    <h2>"Server"</h2>
                    <dl class="labels">
                        <dt>"Version"</dt><dd>{s.version.clone()}</dd>
                        <dt>"Started"</dt><dd>{s.start_time.clone()}</dd>
                        <dt>"Up for"</dt><dd>{s.uptime.map(|u| format_duration(u.floor().max(0.0))).unwrap_or_default()}</dd>
                        {if s.settings.is_empty() {
                            view! { <dt>"Metrics retention"</dt><dd>{s.retention.clone()}</dd> }.into_any()
                        } else {
                            s.settings
                                .iter()
                                .map(|(what, v)| view! { <dt>{what.clone()}</dt><dd>{v.clone()}</dd> })
                                .collect_view()
                                .into_any()
                        }}
                    </dl>
                </section>
                {match samples {
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Ok(samples) => view! {
                        <section class="results">
                            <h2>"Ingest"</h2>
                            {table(&samples, &INGEST, s.uptime)}
                        </section>
                        <section class="results">
                            <h2>"Storage"</h2>
                            {table(&samples, &STORAGE, s.uptime)}
                        </section>
                    }
                    .into_any(),
                }}
                <section class="results">
                    <h2>"Configuration"</h2>
                    <p class="hint">"The effective settings (defaults, file, environment and flags), secrets shown as <secret>."</p>
                    {match s.config {
                        Ok(c) => view! { <pre class="config">{c}</pre> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    }}
                </section>
            }
            .into_any()
        })
    };
    view! {
        <Title text="Status · SignalBox"/>
        <h1>"Status"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Suspense>
    }
}
