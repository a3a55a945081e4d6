//! SignalBox storage: what happens to metrics, logs and traces between the collector
//! accepting them and the query side reading them.
//!
//! Each signal has a write-ahead log (acknowledged writes are durable), an in-memory
//! head, and immutable parts (Parquet columns; a tantivy index for logs; trace-id
//! statistics and bloom filters for spans) that are merged per time window and deleted
//! whole by retention. `ARCHITECTURE.md` at the repository root describes the formats
//! and the recovery rules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), signalbox_storage::StorageError> {
//! use signalbox_storage::{IngestSink, MetricsReader, Matcher, Storage, StorageConfig};
//! let mut registry = prometheus_client::registry::Registry::default();
//! let (storage, _report) = Storage::open(StorageConfig::new("./data"), &mut registry).await?;
//! let series = storage
//!     .select_series(&[Matcher::eq("__name__", "http_requests_total")], 0, i64::MAX)
//!     .await?;
//! # let _ = series; Ok(()) }
//! ```

mod api;
mod codec;
mod config;
mod db;
mod engine;
mod error;
mod index;
mod logs;
mod mem;
mod metrics;
mod model;
mod part;
mod telemetry;
mod traces;
mod validate;
mod wal;

pub use api::{
    Direction, FoundTimes, IngestSink, LineTest, LogEntry, LogFields, LogQuery, LogsReader,
    MetricsReader, SpanQuery, SpanRecord, StreamTimes, TimesQuery, TracesReader, WriteOutcome,
};
pub use config::{Limits, SignalConfig, StorageConfig};
pub use db::{OpenReport, Storage};
pub use error::{ErrorKind, Result, StorageError};
pub use mem::MemStore;
pub use metrics::Series;
pub use metrics::exemplars::SeriesExemplars;
pub use model::*;
pub use telemetry::Signal;
pub use wal::{FsyncPolicy, ReplayReport, WalOptions};
