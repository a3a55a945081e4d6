//! SignalBox query side: the PromQL engine and the HTTP APIs served on the query address.
//!
//! PromQL over the storage's `MetricsReader` (`promql`, served by `prometheus`), LogQL
//! over its `LogsReader` (`logql`, served by `loki`), trace search over its
//! `TracesReader` (`jaeger`), and health, readiness and the server's own metrics
//! (`router`). The server merges these routers on one address.
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
pub mod alerting;
pub mod dashboards;
pub mod jaeger;
pub mod logql;
pub mod loki;
pub mod prometheus;
pub mod promql;
pub mod rules;
pub(crate) mod statefile;

pub use admin::{AdminState, router};
pub use alerting::tls::install_provider as install_tls_provider;
pub use jaeger::JaegerApi;
pub use loki::LokiApi;
pub use prometheus::PromApi;
