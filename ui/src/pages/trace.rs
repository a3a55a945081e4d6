//! One trace: a waterfall of its spans (collapsible, with the critical path marked),
//! the details of a span (attributes, events, links), and the logs of the trace or of
//! one span. The chosen span is in the URL (`?span=`).

use super::logs::LogLines;
use crate::api::{Api, JaegerEnvelope, LokiData, LokiStream, PromEnvelope, Trace, encode, use_api};
use crate::chart::color;
use crate::timerange::format_time;
use crate::trace_tree::{Row, bounds, critical_path, format_us, rows, summarize, visible};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::HashSet;
use std::sync::Arc;

const MAX_LOG_LINES: usize = 500;

/// The trace `id`, or an error that says it was not found.
pub(super) async fn load(api: Api, id: String) -> Result<Trace, String> {
    let mut traces = api
        .get_json::<JaegerEnvelope<Vec<Trace>>>(&format!("/jaeger/api/traces/{}", encode(&id)))
        .await
        .and_then(JaegerEnvelope::into_result)?;
    if traces.is_empty() {
        return Err(format!("trace {id} not found"));
    }
    Ok(traces.swap_remove(0))
}

async fn logs(api: Api, id: String, span: String) -> Result<Vec<crate::api::LogLine>, String> {
    let mut url = format!("/api/v1/traces/{}/logs?limit={MAX_LOG_LINES}", encode(&id));
    if !span.is_empty() {
        url.push_str(&format!("&spanID={}", encode(&span)));
    }
    match api
        .get_json::<PromEnvelope<LokiData>>(&url)
        .await
        .and_then(PromEnvelope::into_result)?
    {
        (LokiData::Streams(s), _) => {
            let mut lines: Vec<_> = s.into_iter().flat_map(LokiStream::into_lines).collect();
            lines.sort_by_key(|l| l.ts_ns);
            Ok(lines)
        }
        _ => Ok(Vec::new()),
    }
}

/// The trace page.
#[component]
pub(crate) fn TraceView() -> impl IntoView {
    let path = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| path.with(|p| p.get("id").unwrap_or_default()));
    let span = Memo::new(move |_| query.with(|q| q.get("span").unwrap_or_default()));
    let api = use_api();
    let logs_api = api.clone();
    let trace = Resource::new(
        move || id.get(),
        move |id| {
            let api = api.clone();
            async move { load(api, id).await }
        },
    );
    let lines = Resource::new(
        move || (id.get(), span.get()),
        move |(id, span)| {
            let api = logs_api.clone();
            async move { logs(api, id, span).await }
        },
    );
    let body = move || {
        Suspend::new(async move {
            match trace.await {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(t) => view! { <Waterfall trace=t selected=span.get_untracked()/> }.into_any(),
            }
        })
    };
    let logs_view = move || {
        Suspend::new(async move {
            let span = span.get_untracked();
            let heading = if span.is_empty() {
                view! { <h2>"Logs of this trace"</h2> }.into_any()
            } else {
                let all = format!("/traces/{}#logs", id.get_untracked());
                view! { <h2>"Logs of span " <code>{span}</code> " " <a href=all class="small">"(all logs of the trace)"</a></h2> }
                    .into_any()
            };
            let body = match lines.await {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(l) if l.is_empty() => {
                    view! { <p class="hint">"No log lines carry this trace id."</p> }.into_any()
                }
                Ok(l) => view! { <LogLines lines=l/> }.into_any(),
            };
            view! { {heading} {body} }
        })
    };
    view! {
        <Title text=move || format!("Trace {} · SignalBox", id.get())/>
        <Suspense fallback=|| view! { <p class="loading">"Loading the trace…"</p> }>{body}</Suspense>
        <section class="results trace-logs" id="logs">
            <Suspense fallback=|| view! { <p class="loading">"Loading logs…"</p> }>{logs_view}</Suspense>
        </section>
    }
}

/// The header, time ruler and one row per span.
#[component]
fn Waterfall(trace: Trace, selected: String) -> impl IntoView {
    let trace = Arc::new(trace);
    let rows = rows(&trace);
    let critical = critical_path(&trace, &rows);
    let summary = summarize(&trace);
    let (start, end) = bounds(&trace);
    let total = (end - start).max(1) as f64;
    let mut services: Vec<String> = summary.services.iter().map(|(s, _)| s.clone()).collect();
    services.sort();
    let depth = rows.iter().map(|r| r.depth + 1).max().unwrap_or(0);
    let collapsed = RwSignal::new(HashSet::<usize>::new());
    let shown = {
        let rows = rows.clone();
        Memo::new(move |_| collapsed.with(|c| visible(&rows, c)))
    };
    let open = RwSignal::new(
        rows.iter()
            .position(|r| trace.spans[r.span].span_id == selected),
    );
    let ruler = (0..=4)
        .map(|i| {
            let left = format!("{}%", i * 25);
            view! { <span class="ruler-tick" style:left=left>{format_us((total * i as f64 / 4.0) as i64)}</span> }
        })
        .collect_view();
    let trace_id = trace.trace_id.clone();
    let items = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let s = &trace.spans[row.span];
            let service = trace.service_of(s).to_string();
            let c = color(services.binary_search(&service).unwrap_or(0));
            let left = format!("{:.3}%", (s.start_us - start) as f64 / total * 100.0);
            let width = format!("{:.3}%", (s.duration_us.max(0) as f64 / total * 100.0).max(0.2));
            let indent = format!("{}rem", row.depth as f64 * 0.9);
            let has_children = row.children > 0;
            let error = s.is_error();
            let on_path = critical[row.span];
            let label = format!("{service} {}", s.operation);
            let (for_details, row_details) = (trace.clone(), row.clone());
            let toggle = move |_| {
                collapsed.update(|c| {
                    if !c.remove(&i) {
                        c.insert(i);
                    }
                })
            };
            view! {
                <li
                    class="span-row"
                    class:critical=on_path
                    class:failed=error
                    class:folded=move || shown.with(|v| !v.get(i).copied().unwrap_or(true))
                    data-span=s.span_id.clone()
                >
                    <div class="span-line">
                        <div class="span-name" style:padding-left=indent>
                            {if has_children {
                                view! {
                                    <button
                                        type="button"
                                        class="fold"
                                        aria-label=format!("Fold or unfold the children of {label}")
                                        aria-expanded=move || collapsed.with(|c| (!c.contains(&i)).to_string())
                                        on:click=toggle
                                    >
                                        {move || if collapsed.with(|c| c.contains(&i)) { "▸" } else { "▾" }}
                                    </button>
                                }
                                    .into_any()
                            } else {
                                view! { <span class="fold-space"></span> }.into_any()
                            }}
                            <button
                                type="button"
                                class="span-open"
                                aria-expanded=move || (open.get() == Some(i)).to_string()
                                on:click=move |_| open.update(|o| *o = if *o == Some(i) { None } else { Some(i) })
                            >
                                <span class="swatch" style:background=c></span>
                                <span class="span-service">{service.clone()}</span>
                                " "
                                <span class="span-op">{s.operation.clone()}</span>
                            </button>
                        </div>
                        <div class="span-track">
                            <span class="span-bar" style:left=left style:width=width style:background=c></span>
                            <span class="span-duration">{format_us(s.duration_us)}</span>
                        </div>
                    </div>
                    {move || {
                        (open.get() == Some(i)).then(|| {
                            view! { <div class="span-details">{SpanDetails(&for_details, &row_details, start)}</div> }
                        })
                    }}
                </li>
            }
        })
        .collect_view();
    view! {
        <h1 class="trace-title">{summary.root.clone()}</h1>
        <p class="trace-facts">
            <span>"Trace " <code>{trace_id}</code></span>
            <span>{format!("started {} UTC", format_time(start as f64 / 1e6))}</span>
            <span>{format!("duration {}", format_us(end - start))}</span>
            <span>{format!("{} spans", summary.spans)}</span>
            <span>{format!("{} services", summary.services.len())}</span>
            <span>{format!("depth {depth}")}</span>
            {(summary.errors > 0).then(|| view! { <span class="error-count">{format!("{} errors", summary.errors)}</span> })}
            <span class="critical-key">"critical path"</span>
        </p>
        <div class="waterfall">
            <div class="ruler"><div class="ruler-track">{ruler}</div></div>
            <ol class="span-rows">{items}</ol>
        </div>
    }
}

/// The attributes, events and links of one span, and the way to its logs.
#[allow(non_snake_case)]
fn SpanDetails(trace: &Trace, row: &Row, trace_start: i64) -> impl IntoView + use<> {
    let s = &trace.spans[row.span];
    let process = trace.processes.get(&s.process_id);
    let pairs = |tags: &[crate::api::Tag]| {
        tags.iter()
            .map(|t| view! { <dt>{t.key.clone()}</dt> <dd>{t.text()}</dd> })
            .collect_view()
    };
    let attrs = pairs(&s.tags);
    let resource = process
        .filter(|p| !p.tags.is_empty())
        .map(|p| pairs(&p.tags));
    let events = s
        .logs
        .iter()
        .map(|e| {
            let at = format_us(e.timestamp - trace_start);
            let fields = pairs(&e.fields);
            view! { <li><span class="event-at">{at}</span> <dl class="labels">{fields}</dl></li> }
        })
        .collect_view();
    let has_events = !s.logs.is_empty();
    let links = s
        .references
        .iter()
        .filter(|r| r.ref_type != "CHILD_OF" || r.trace_id != trace.trace_id)
        .map(|r| {
            let href = format!("/traces/{}?span={}", r.trace_id, r.span_id);
            view! { <li>{r.ref_type.clone()} " " <a href=href>{format!("{} / {}", r.trace_id, r.span_id)}</a></li> }
        })
        .collect_view();
    let has_links = s
        .references
        .iter()
        .any(|r| r.ref_type != "CHILD_OF" || r.trace_id != trace.trace_id);
    let logs_href = format!("/traces/{}?span={}#logs", trace.trace_id, s.span_id);
    view! {
        <p class="span-facts">
            <span>"Span " <code>{s.span_id.clone()}</code></span>
            <span>{format!("starts at +{}", format_us(s.start_us - trace_start))}</span>
            <span>{format!("duration {}", format_us(s.duration_us))}</span>
            <a href=logs_href>"Logs of this span"</a>
        </p>
        <h3>"Attributes"</h3>
        <dl class="labels">{attrs}</dl>
        {resource.map(|r| view! { <h3>"Resource"</h3> <dl class="labels">{r}</dl> })}
        {has_events.then(|| view! { <h3>"Events"</h3> <ul class="events">{events}</ul> })}
        {has_links.then(|| view! { <h3>"Links"</h3> <ul class="links">{links}</ul> })}
    }
}
