//! SignalBox query side: the PromQL engine and the HTTP APIs served on the query address.
//!
//! Today: PromQL evaluation over the storage's `MetricsReader` (`promql`), health and
//! readiness endpoints and the server's own metrics in the Prometheus text format. The
//! Prometheus HTTP API, LogQL with the Loki API and the Jaeger query API build on the
//! same storage read traits and join this router.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! let registry = Arc::new(prometheus_client::registry::Registry::default());
//! let state = signalbox_query::AdminState::new(registry);
//! state.set_ready(true);
//! let app = signalbox_query::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4320").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod admin;
pub mod jaeger;
pub mod prometheus;
pub mod promql;

pub use admin::{AdminState, router};
pub use jaeger::JaegerApi;
pub use prometheus::PromApi;
