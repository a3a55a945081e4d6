//! Typed storage settings (the binary turns its config file into these).

use std::path::PathBuf;
use std::time::Duration;

use crate::wal::WalOptions;

/// Settings of one signal's head, parts and retention.
#[derive(Clone, Debug)]
pub struct SignalConfig {
    /// Heads (active plus being flushed) may hold this many bytes; past it writes are refused.
    pub max_head_bytes: u64,
    /// The active head is flushed when it holds this many bytes…
    pub flush_bytes: u64,
    /// …or when it is this old.
    pub flush_interval: Duration,
    /// Parts are merged into one part per window of this length.
    pub part_window: Duration,
    /// Parts whose newest item is older than this are deleted.
    pub retention: Duration,
    /// When set, the oldest parts are deleted while the signal's parts exceed this size.
    pub max_bytes: Option<u64>,
    /// An open window is merged early once it has this many parts.
    pub max_parts_per_window: usize,
    /// One merge reads at most about this many bytes of parts.
    pub max_merge_bytes: u64,
}

impl SignalConfig {
    pub fn with_retention(retention: Duration, part_window: Duration) -> SignalConfig {
        SignalConfig {
            max_head_bytes: 512 << 20,
            flush_bytes: 128 << 20,
            flush_interval: Duration::from_secs(600),
            part_window,
            retention,
            max_bytes: None,
            max_parts_per_window: 8,
            max_merge_bytes: 256 << 20,
        }
    }
}

/// Bounds on what one series may look like and how many the metrics head holds.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_active_series: usize,
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Items timestamped further than this in the future are rejected.
    pub max_future: Duration,
    /// Exemplars kept (the most recent, over all series).
    pub max_exemplars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_active_series: 1_000_000,
            max_labels_per_series: 64,
            max_label_name_length: 256,
            max_label_value_length: 4096,
            max_future: Duration::from_secs(3600),
            max_exemplars: 100_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub wal: WalOptions,
    pub metrics: SignalConfig,
    pub logs: SignalConfig,
    pub traces: SignalConfig,
    pub limits: Limits,
    /// How often the background task checks flush, merge and retention.
    pub maintenance_interval: Duration,
}

impl StorageConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> StorageConfig {
        let day = Duration::from_secs(86400);
        let hour = Duration::from_secs(3600);
        StorageConfig {
            data_dir: data_dir.into(),
            wal: WalOptions::default(),
            metrics: SignalConfig::with_retention(15 * day, 2 * hour),
            logs: SignalConfig::with_retention(7 * day, hour),
            traces: SignalConfig::with_retention(7 * day, hour),
            limits: Limits::default(),
            maintenance_interval: Duration::from_secs(1),
        }
    }

    pub fn signal(&self, s: crate::Signal) -> &SignalConfig {
        match s {
            crate::Signal::Metrics => &self.metrics,
            crate::Signal::Logs => &self.logs,
            crate::Signal::Traces => &self.traces,
        }
    }
}
