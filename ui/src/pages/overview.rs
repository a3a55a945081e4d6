//! The overview: every service that sent spans in the chosen window (the last hour by
//! default) with its request rate, error ratio and latency percentiles, the service
//! map, and the ways into the explorers.

use super::{param_or, quick_ranges};
use crate::api::{Api, PromEnvelope, encode, use_api};
use crate::service_map::{Edge, ServiceMap};
use crate::timerange::{format_time, now, resolve};
use crate::trace_tree::format_us;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

const QUICK_RANGES: [&str; 4] = ["15m", "1h", "6h", "24h"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceRed {
    pub service: String,
    pub requests: u64,
    pub errors: u64,
    pub rate: f64,
    #[serde(rename = "errorRatio")]
    pub error_ratio: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    #[serde(rename = "measuredBy")]
    pub measured_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Call {
    parent: String,
    child: String,
    calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Overview {
    start: f64,
    end: f64,
    services: Vec<ServiceRed>,
    edges: Vec<Call>,
}

async fn load(api: Api, from: String, to: String) -> Result<(Overview, Vec<String>), String> {
    let r = resolve(&from, &to, "", now())?;
    api.get_json::<PromEnvelope<Overview>>(&format!(
        "/api/v1/overview/services?start={}&end={}",
        r.start, r.end
    ))
    .await
    .and_then(PromEnvelope::into_result)
}

fn seconds(v: Option<f64>) -> String {
    v.map(|s| format_us((s * 1e6).round() as i64))
        .unwrap_or_else(|| "–".into())
}

/// The start page.
#[component]
pub(crate) fn Overview() -> impl IntoView {
    let query = use_query_map();
    let range = Memo::new(move |_| {
        query.with(|m| (param_or(m, "from", "now-1h"), param_or(m, "to", "now")))
    });
    let api = use_api();
    let data = Resource::new(
        move || range.get(),
        move |(from, to)| {
            let api = api.clone();
            async move { load(api, from, to).await }
        },
    );
    let ranges = move || {
        let (from, to) = range.get();
        quick_ranges(&QUICK_RANGES, &from, &to, &|f: &str| {
            format!("/?from={}&to=now", encode(f))
        })
    };
    let body = move || {
        Suspend::new(async move {
            let (o, warnings) = match data.await {
                Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(x) => x,
            };
            if o.services.is_empty() {
                return view! {
                    <p class="hint">
                        "No spans in this range. Point an OpenTelemetry SDK or Collector at the OTLP ports (4317 gRPC, 4318 HTTP) to see your services here."
                    </p>
                }
                .into_any();
            }
            let (from, to) = range.get_untracked();
            let window = format!("{} to {} UTC", format_time(o.start), format_time(o.end));
            let names: Vec<String> = o.services.iter().map(|s| s.service.clone()).collect();
            let edges: Vec<Edge> = o
                .edges
                .iter()
                .map(|e| (e.parent.clone(), e.child.clone(), e.calls))
                .collect();
            let has_edges = !edges.is_empty();
            let traces_href = {
                let (from, to) = (from.clone(), to.clone());
                move |s: String| {
                    format!(
                        "/traces?service={}&from={}&to={}",
                        encode(&s),
                        encode(&from),
                        encode(&to)
                    )
                }
            };
            let rows = o
                .services
                .into_iter()
                .map(|s| {
                    let href = traces_href(s.service.clone());
                    let logs = format!(
                        "/explore/logs?q={}&from={}&to={}",
                        encode(&format!("{{service_name={:?}}}", s.service)),
                        encode(&from),
                        encode(&to)
                    );
                    let failing = s.error_ratio.is_some_and(|r| r > 0.0);
                    view! {
                        <tr>
                            <td><a href=href class="service-link">{s.service.clone()}</a></td>
                            <td class="num">{format!("{:.3}/s", s.rate)}</td>
                            <td class="num" class:bad=failing>
                                {s.error_ratio.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "–".into())}
                            </td>
                            <td class="num">{seconds(s.p50)}</td>
                            <td class="num">{seconds(s.p95)}</td>
                            <td class="num">{seconds(s.p99)}</td>
                            <td class="num">{s.requests.to_string()}</td>
                            <td class="muted">{s.measured_by.clone()}</td>
                            <td><a href=logs>"logs"</a></td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <p class="range-info">{window}</p>
                {(!warnings.is_empty()).then(|| view! { <p class="warning">{warnings.join("; ")}</p> })}
                <div class="table-scroll">
                    <table class="result-table red-table">
                        <thead>
                            <tr>
                                <th>"Service"</th>
                                <th class="num">"Requests"</th>
                                <th class="num">"Errors"</th>
                                <th class="num">"p50"</th>
                                <th class="num">"p95"</th>
                                <th class="num">"p99"</th>
                                <th class="num">"Count"</th>
                                <th>"Measured by"</th>
                                <th></th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                <h2 class="section">"Service map"</h2>
                {if has_edges {
                    view! { <ServiceMap services=names edges href=Callback::new(traces_href)/> }.into_any()
                } else {
                    view! { <p class="hint">"No calls between services in this range."</p> }.into_any()
                }}
            }
            .into_any()
        })
    };
    view! {
        <Title text="SignalBox"/>
        <h1>"Services"</h1>
        {ranges}
        <section class="results overview" aria-live="polite">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Suspense>
        </section>
        <super::MetricNames/>
    }
}
