//! SignalBox web UI: the Leptos application served by the `signalbox` binary.
//!
//! Nothing is rendered yet: the pages (overview, metrics, logs, traces, dashboards,
//! alerts) arrive with the query APIs they read from. The crate exists so that the
//! workspace has its final shape and the UI builds with everything else.
