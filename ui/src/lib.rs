//! SignalBox web UI: a Leptos application rendered on the server by the `signalbox`
//! binary (feature `ssr`) and hydrated in the browser by the wasm bundle built from
//! `ui/hydrate` (feature `hydrate`).
//!
//! Pages read only SignalBox's public HTTP APIs (Prometheus, Loki, Jaeger shapes): in
//! the browser through `fetch`, on the server by calling the same API router in
//! process, so a page rendered on the server shows exactly what the browser would load.

// Deeply nested views (the trace waterfall) have deep types.
#![recursion_limit = "256"]

pub mod api;
pub mod chart;
pub mod complete;
pub mod json_num;
// `#[component]` re-declares a crate-private component as `pub`.
pub mod live;
pub mod metrics_text;
#[allow(unreachable_pub)]
mod pages;
pub mod service_map;
pub mod silence;
pub mod timerange;
pub mod trace_tree;
pub mod units;

#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

/// The application: navigation and the routed pages. Rendered inside `<body>`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="SignalBox"/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">"SignalBox"</A>
                <nav aria-label="main">
                    <A href="/explore/metrics">"Metrics"</A>
                    <A href="/explore/logs">"Logs"</A>
                    <A href="/traces">"Traces"</A>
                    <A href="/dashboards">"Dashboards"</A>
                    <A href="/alerts">"Alerts"</A>
                    <A href="/status">"Status"</A>
                </nav>
                <ThemeToggle/>
            </header>
            <main>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::overview::Overview/>
                    <Route path=path!("/explore/metrics") view=pages::metrics::MetricsExplorer/>
                    <Route path=path!("/explore/logs") view=pages::logs::LogsExplorer/>
                    <Route path=path!("/traces") view=pages::traces::TraceSearch/>
                    <Route path=path!("/traces/:id") view=pages::trace::TraceView/>
                    <Route path=path!("/alerts") view=pages::alerts::Alerts/>
                    <Route path=path!("/dashboards") view=pages::dashboards::Dashboards/>
                    <Route path=path!("/dashboards/:uid") view=pages::dashboard::DashboardView/>
                    <Route path=path!("/dashboards/:uid/edit") view=pages::dashboard_edit::DashboardEdit/>
                    <Route path=path!("/status") view=pages::status::StatusPage/>
                </Routes>
            </main>
        </Router>
    }
}

/// Switches between the light and dark theme; the choice is kept in `localStorage`
/// and applied before the page paints by the inline script in the document head.
#[component]
fn ThemeToggle() -> impl IntoView {
    let toggle = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
                return;
            };
            let Some(root) = doc.document_element() else {
                return;
            };
            let dark = match root.get_attribute("data-theme").as_deref() {
                Some("dark") => true,
                Some(_) => false,
                None => web_sys::window()
                    .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
                    .is_some_and(|m| m.matches()),
            };
            let next = if dark { "light" } else { "dark" };
            let _ = root.set_attribute("data-theme", next);
            if let Some(store) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
                let _ = store.set_item("signalbox-theme", next);
            }
        }
    };
    view! {
        <button class="theme-toggle" type="button" title="Switch light/dark theme" on:click=toggle>
            "◐"
        </button>
    }
}

/// Hydrates the server-rendered page (called by the wasm bundle's entry point).
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // Lets tests (and curious users) see that the page is live.
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
