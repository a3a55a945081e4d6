//! The storage engine's own metrics, registered once and shared by its parts.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The three signals SignalBox stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Metrics,
    Logs,
    Traces,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Metrics, Signal::Logs, Signal::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for Signal {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SignalLabel {
    pub(crate) signal: Signal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RefusalLabel {
    pub(crate) signal: Signal,
    pub(crate) reason: &'static str,
}

pub(crate) type PerSignal<M> = Family<SignalLabel, M>;

#[derive(Clone)]
pub(crate) struct StorageMetrics {
    pub(crate) wal_bytes: PerSignal<Counter>,
    pub(crate) wal_records: PerSignal<Counter>,
    pub(crate) wal_fsync_seconds: Family<SignalLabel, Histogram>,
    pub(crate) wal_segments: PerSignal<Gauge>,
    pub(crate) wal_torn_tails: PerSignal<Counter>,
    pub(crate) wal_corrupt_records: PerSignal<Counter>,
    pub(crate) wal_replayed_records: PerSignal<Counter>,
    pub(crate) head_bytes: PerSignal<Gauge>,
    pub(crate) head_items: PerSignal<Gauge>,
    pub(crate) active_series: Gauge,
    pub(crate) parts: PerSignal<Gauge>,
    pub(crate) part_bytes: PerSignal<Gauge>,
    pub(crate) flushes: PerSignal<Counter>,
    pub(crate) flush_failures: PerSignal<Counter>,
    pub(crate) compactions: PerSignal<Counter>,
    pub(crate) compaction_failures: PerSignal<Counter>,
    pub(crate) retention_deleted_parts: PerSignal<Counter>,
    pub(crate) corrupt_parts: PerSignal<Counter>,
    pub(crate) refusals: Family<RefusalLabel, Counter>,
    pub(crate) stored_items: PerSignal<Counter>,
}

impl StorageMetrics {
    pub(crate) fn new(registry: &mut Registry) -> StorageMetrics {
        let m = StorageMetrics {
            wal_bytes: Default::default(),
            wal_records: Default::default(),
            wal_fsync_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            wal_segments: Default::default(),
            wal_torn_tails: Default::default(),
            wal_corrupt_records: Default::default(),
            wal_replayed_records: Default::default(),
            head_bytes: Default::default(),
            head_items: Default::default(),
            active_series: Default::default(),
            parts: Default::default(),
            part_bytes: Default::default(),
            flushes: Default::default(),
            flush_failures: Default::default(),
            compactions: Default::default(),
            compaction_failures: Default::default(),
            retention_deleted_parts: Default::default(),
            corrupt_parts: Default::default(),
            refusals: Default::default(),
            stored_items: Default::default(),
        };
        let r = registry;
        r.register(
            "wal_bytes",
            "Bytes appended to the write-ahead log",
            m.wal_bytes.clone(),
        );
        r.register(
            "wal_records",
            "Records appended to the write-ahead log",
            m.wal_records.clone(),
        );
        r.register(
            "wal_fsync_seconds",
            "Latency of write-ahead log fsyncs",
            m.wal_fsync_seconds.clone(),
        );
        r.register(
            "wal_segments",
            "Write-ahead log segment files on disk",
            m.wal_segments.clone(),
        );
        r.register(
            "wal_torn_tails",
            "Torn write-ahead log tails truncated during replay",
            m.wal_torn_tails.clone(),
        );
        r.register(
            "wal_corrupt_records",
            "Write-ahead log records skipped during replay because they failed their checksum or decoding",
            m.wal_corrupt_records.clone(),
        );
        r.register(
            "wal_replayed_records",
            "Write-ahead log records replayed at start-up",
            m.wal_replayed_records.clone(),
        );
        r.register(
            "head_bytes",
            "Estimated bytes held by the in-memory heads",
            m.head_bytes.clone(),
        );
        r.register(
            "head_items",
            "Samples, log records or spans held by the in-memory heads",
            m.head_items.clone(),
        );
        r.register(
            "active_series",
            "Series held by the metrics head",
            m.active_series.clone(),
        );
        r.register("parts", "Immutable parts on disk", m.parts.clone());
        r.register(
            "part_bytes",
            "Bytes of immutable parts on disk",
            m.part_bytes.clone(),
        );
        r.register("head_flushes", "Heads flushed to parts", m.flushes.clone());
        r.register(
            "head_flush_failures",
            "Head flushes that failed and will be retried",
            m.flush_failures.clone(),
        );
        r.register(
            "compactions",
            "Compactions that merged parts",
            m.compactions.clone(),
        );
        r.register(
            "compaction_failures",
            "Compactions that failed",
            m.compaction_failures.clone(),
        );
        r.register(
            "retention_deleted_parts",
            "Parts deleted by time or size retention",
            m.retention_deleted_parts.clone(),
        );
        r.register(
            "corrupt_parts",
            "Parts found corrupt (checksum or format) and set aside",
            m.corrupt_parts.clone(),
        );
        r.register(
            "storage_refusals",
            "Writes refused by storage bounds, by reason",
            m.refusals.clone(),
        );
        r.register(
            "stored_items",
            "Samples, log records and spans stored",
            m.stored_items.clone(),
        );
        m
    }

    /// Metrics registered nowhere, for tests and in-memory stores.
    #[cfg(test)]
    pub(crate) fn unregistered() -> StorageMetrics {
        StorageMetrics::new(&mut Registry::default())
    }

    pub(crate) fn sig(signal: Signal) -> SignalLabel {
        SignalLabel { signal }
    }
}
