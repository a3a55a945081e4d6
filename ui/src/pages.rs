//! The routed pages.

pub(crate) mod alerts;
pub(crate) mod dashboard;
pub(crate) mod dashboard_edit;
pub(crate) mod dashboards;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod overview;
pub(crate) mod status;
pub(crate) mod trace;
pub(crate) mod traces;

use crate::api::{PromEnvelope, cancel_requests, encode, use_api};
use leptos::prelude::*;
use leptos_meta::Title;

/// The metric names SignalBox holds, each a way into the metrics explorer.
#[component]
pub(crate) fn MetricNames() -> impl IntoView {
    let api = use_api();
    let names = Resource::new(
        || (),
        move |_| {
            let api = api.clone();
            async move {
                api.get_json::<PromEnvelope<Vec<String>>>("/api/v1/label/__name__/values")
                    .await
                    .and_then(|e| e.into_result())
                    .map(|(names, _)| names)
            }
        },
    );
    view! {
        <section class="card">
            <h2>"Metrics"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match names.await {
                        Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                        Ok(names) if names.is_empty() => view! {
                            <p>"No metrics yet. Point an OpenTelemetry SDK or Collector at the OTLP ports (4317 gRPC, 4318 HTTP)."</p>
                        }.into_any(),
                        Ok(names) => {
                            let total = names.len();
                            view! {
                                <p>{format!("{total} metric names. Open one in the explorer:")}</p>
                                <ul class="names">
                                    {names.into_iter().take(100).map(|n| {
                                        let href = format!("/explore/metrics?q={}", encode(&n));
                                        view! { <li><a href=href>{n}</a></li> }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

/// What a page shows while its queries run: `what` is happening, for how long, and a
/// button that cancels it.
#[component]
pub(crate) fn Running(what: &'static str) -> impl IntoView {
    // Tenths of a second since the queries started, counted in the browser.
    let tenths = RwSignal::new(0u32);
    #[cfg(feature = "hydrate")]
    if let Ok(h) = leptos::leptos_dom::helpers::set_interval_with_handle(
        move || tenths.update(|t| *t += 1),
        std::time::Duration::from_millis(100),
    ) {
        on_cleanup(move || h.clear());
    }
    view! {
        <p class="loading running">
            {what}
            <span class="elapsed">{move || format!(" {:.1} s ", f64::from(tenths.get()) / 10.0)}</span>
            <button type="button" class="cancel" on:click=|_| cancel_requests()>"Cancel"</button>
        </p>
    }
}

/// Any path no page answers: a 404 with the way back.
#[component]
pub(crate) fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · SignalBox"/>
        <h1>"Not found"</h1>
        <p>"There is no page at this address. " <a href="/">"Go to the start page"</a>"."</p>
    }
}

/// A query parameter of the page's URL, trimmed, or `default` when absent or blank.
pub(crate) fn param_or(m: &leptos_router::params::ParamsMap, key: &str, default: &str) -> String {
    m.get(key)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A count from the page's URL (`limit`), `default` when absent or not a number, kept
/// within `1..=max`.
pub(crate) fn count_param(
    m: &leptos_router::params::ParamsMap,
    key: &str,
    default: usize,
    max: usize,
) -> usize {
    m.get(key)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// One-click relative ranges ("Last 1h"), the current one marked; `href` gives the
/// page's URL for a `from` (the range ends now).
pub(crate) fn quick_ranges(
    ranges: &[&str],
    from: &str,
    to: &str,
    href: &dyn Fn(&str) -> String,
) -> impl IntoView + use<> {
    let links = ranges
        .iter()
        .map(|r| {
            let f = format!("now-{r}");
            let current = from == f && to == "now";
            view! { <a href=href(&f) class:current=current>{format!("Last {r}")}</a> }
        })
        .collect_view();
    view! { <nav class="quick-ranges" aria-label="time range">{links}</nav> }
}
