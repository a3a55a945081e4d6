//! Trace search: service, operation, tags, duration bounds and a time range (all in the
//! URL), and the matching traces with their duration, span and error counts; or one
//! trace looked up by its id (`traceID`).

use super::{Running, count_param, param_or, quick_ranges};
use crate::api::{Api, JaegerEnvelope, Trace, encode, use_api};
use crate::chart::color;
use crate::timerange::{format_time, now, resolve};
use crate::trace_tree::{Summary, format_us, summarize, tags_json};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1500;
const QUICK_RANGES: [&str; 5] = ["15m", "1h", "6h", "24h", "7d"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Params {
    /// A trace id to look up; the search fields are then not used.
    trace_id: String,
    service: String,
    operation: String,
    tags: String,
    min: String,
    max: String,
    from: String,
    to: String,
    limit: usize,
}

impl Params {
    fn href(&self, from: &str, to: &str) -> String {
        format!(
            "/traces?service={}&operation={}&tags={}&minDuration={}&maxDuration={}&from={}&to={}&limit={}",
            encode(&self.service),
            encode(&self.operation),
            encode(&self.tags),
            encode(&self.min),
            encode(&self.max),
            encode(from),
            encode(to),
            self.limit
        )
    }
}

async fn search(api: Api, p: Params) -> Result<Option<Vec<Summary>>, String> {
    if !p.trace_id.is_empty() {
        let id = p.trace_id.to_ascii_lowercase();
        if id.len() > 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{:?} is not a trace id (up to 32 hexadecimal digits)",
                p.trace_id
            ));
        }
        let trace = super::trace::load(api, id).await?;
        return Ok(Some(vec![summarize(&trace)]));
    }
    if p.service.is_empty() {
        return Ok(None);
    }
    let range = resolve(&p.from, &p.to, "", now())?;
    let tags = tags_json(&p.tags)?;
    let mut url = format!(
        "/jaeger/api/traces?service={}&start={}&end={}&limit={}",
        encode(&p.service),
        (range.start * 1e6) as i64,
        (range.end * 1e6) as i64,
        p.limit
    );
    for (key, value) in [
        ("operation", &p.operation),
        ("tags", &tags),
        ("minDuration", &p.min),
        ("maxDuration", &p.max),
    ] {
        if !value.is_empty() {
            url.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    let traces = api
        .get_json::<JaegerEnvelope<Vec<Trace>>>(&url)
        .await
        .and_then(JaegerEnvelope::into_result)?;
    let mut found: Vec<Summary> = traces.iter().map(summarize).collect();
    found.sort_by(|a, b| {
        b.start_us
            .cmp(&a.start_us)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
    });
    Ok(Some(found))
}

async fn names(api: &Api, url: &str) -> Result<Vec<String>, String> {
    let mut v = api
        .get_json::<JaegerEnvelope<Vec<String>>>(url)
        .await
        .and_then(JaegerEnvelope::into_result)?;
    v.sort();
    Ok(v)
}

/// `<option>`s for `names` (none if they could not be loaded), `current` selected.
fn options(names: Result<Vec<String>, String>, current: &str) -> impl IntoView + use<> {
    names
        .unwrap_or_default()
        .into_iter()
        .map(|n| {
            let selected = n == current;
            view! { <option value=n.clone() selected=selected>{n.clone()}</option> }
        })
        .collect_view()
}

/// The search page.
#[component]
pub(crate) fn TraceSearch() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        query.with(|m| Params {
            trace_id: param_or(m, "traceID", "").trim().to_string(),
            service: param_or(m, "service", ""),
            operation: param_or(m, "operation", ""),
            tags: param_or(m, "tags", ""),
            min: param_or(m, "minDuration", ""),
            max: param_or(m, "maxDuration", ""),
            from: param_or(m, "from", "now-1h"),
            to: param_or(m, "to", "now"),
            limit: count_param(m, "limit", DEFAULT_LIMIT, MAX_LIMIT),
        })
    });
    let api = use_api();
    let (services_api, ops_api) = (api.clone(), api.clone());
    let results = Resource::new(
        move || params.get(),
        move |p| {
            let api = api.clone();
            async move { search(api, p).await }
        },
    );
    let services = Resource::new(
        || (),
        move |_| {
            let api = services_api.clone();
            async move { names(&api, "/jaeger/api/services").await }
        },
    );
    // The service chosen in the form (before it is submitted) picks the operations.
    let chosen = RwSignal::new(params.get_untracked().service);
    Effect::new(move |_| chosen.set(params.get().service));
    let operations = Resource::new(
        move || chosen.get(),
        move |service| {
            let api = ops_api.clone();
            async move {
                if service.is_empty() {
                    return Ok(Vec::new());
                }
                names(
                    &api,
                    &format!("/jaeger/api/services/{}/operations", encode(&service)),
                )
                .await
            }
        },
    );

    let form = move || {
        let p = params.get();
        let ranges = quick_ranges(&QUICK_RANGES, &p.from, &p.to, &|f: &str| p.href(f, "now"));
        let (v_tags, v_min, v_max, v_from, v_to, v_limit) = (
            p.tags.clone(),
            p.min.clone(),
            p.max.clone(),
            p.from.clone(),
            p.to.clone(),
            p.limit.to_string(),
        );
        let service_now = p.service.clone();
        let operation_now = p.operation.clone();
        view! {
            <Form method="GET" action="/traces" attr:class="query-form search-form">
                <div class="range-row">
                    <label>
                        "Service"
                        <select name="service" on:change=move |ev| chosen.set(event_target_value(&ev))>
                            <option value="">"Choose a service"</option>
                            <Suspense fallback=|| ()>
                                {move || {
                                    let current = service_now.clone();
                                    Suspend::new(async move { options(services.await, &current) })
                                }}
                            </Suspense>
                        </select>
                    </label>
                    <label>
                        "Operation"
                        <select name="operation">
                            <option value="">"All"</option>
                            <Suspense fallback=|| ()>
                                {move || {
                                    let current = operation_now.clone();
                                    Suspend::new(async move { options(operations.await, &current) })
                                }}
                            </Suspense>
                        </select>
                    </label>
                    <label class="grow">
                        "Tags"
                        <input name="tags" value=v_tags placeholder="http.response.status_code=500 error=true"/>
                    </label>
                    <label>"Min duration" <input name="minDuration" value=v_min size="7" placeholder="100ms"/></label>
                    <label>"Max duration" <input name="maxDuration" value=v_max size="7" placeholder="2s"/></label>
                </div>
                <div class="range-row">
                    <label>"From" <input name="from" value=v_from size="22"/></label>
                    <label>"To" <input name="to" value=v_to size="22"/></label>
                    <label>"Limit" <input name="limit" value=v_limit size="5"/></label>
                    <button type="submit" class="primary">"Find traces"</button>
                </div>
            </Form>
            {ranges}
            <Form method="GET" action="/traces" attr:class="query-form trace-id-form">
                <div class="range-row">
                    <label class="grow">
                        "Trace ID"
                        <input name="traceID" value=p.trace_id.clone() placeholder="4bf92f3577b34da6a3ce929d0e0e4736" spellcheck="false"/>
                    </label>
                    <button type="submit">"Look up"</button>
                </div>
            </Form>
        }
    };

    let list = move || {
        Suspend::new(async move {
            match results.await {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(None) => {
                    view! { <p class="hint">"Choose a service and find its traces, or look one up by its id."</p> }.into_any()
                }
                Ok(Some(found)) if found.is_empty() => {
                    view! { <p class="hint">"No traces match in this range."</p> }.into_any()
                }
                Ok(Some(found)) => view! { <TraceList found/> }.into_any(),
            }
        })
    };

    view! {
        <Title text="Traces · SignalBox"/>
        <h1>"Traces"</h1>
        {form}
        <section class="results" aria-live="polite">
            <Suspense fallback=|| view! { <Running what="Searching…"/> }>{list}</Suspense>
        </section>
    }
}

/// The traces found, newest first, each with a bar for its duration.
#[component]
pub(crate) fn TraceList(found: Vec<Summary>) -> impl IntoView {
    let longest = found
        .iter()
        .map(|s| s.duration_us)
        .max()
        .unwrap_or(1)
        .max(1);
    let count = found.len();
    // One colour per service, the same on every row.
    let mut all: Vec<String> = found
        .iter()
        .flat_map(|s| s.services.iter().map(|(n, _)| n.clone()))
        .collect();
    all.sort();
    all.dedup();
    view! {
        <p class="range-info">{format!("{count} traces")}</p>
        <ol class="trace-list">
            {found
                .into_iter()
                .map(|s| {
                    let width = format!("{:.1}%", s.duration_us as f64 / longest as f64 * 100.0);
                    let href = format!("/traces/{}", s.trace_id);
                    let errors = s.errors;
                    let services = s
                        .services
                        .iter()
                        .map(|(name, n)| {
                            let c = color(all.binary_search(name).unwrap_or(0));
                            view! {
                                <span class="service-chip">
                                    <span class="swatch" style:background=c></span>
                                    {format!("{name} ({n})")}
                                </span>
                            }
                        })
                        .collect_view();
                    view! {
                        <li class="trace-item">
                            <div class="trace-head">
                                <a href=href class="trace-name">{s.root.clone()}</a>
                                <span class="trace-id">{s.trace_id.chars().take(7).collect::<String>()}</span>
                                <span class="trace-duration">{format_us(s.duration_us)}</span>
                            </div>
                            <div class="trace-bar"><span style:width=width></span></div>
                            <div class="trace-meta">
                                <span>{format!("{} spans", s.spans)}</span>
                                {(errors > 0).then(|| view! { <span class="error-count">{format!("{errors} errors")}</span> })}
                                {services}
                                <time>{format!("{} UTC", format_time(s.start_us as f64 / 1e6))}</time>
                            </div>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}
