//! `Storage`: the three signal stores on one data directory, their background
//! maintenance, and the sink and reader contracts over heads and parts together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::registry::Registry;

use crate::api::{
    FoundTimes, IngestSink, LogEntry, LogQuery, LogsReader, MetricsReader, ReadBudget, SpanQuery,
    SpanRecord, TimesQuery, TracesReader, WriteOutcome, join_stream_times, order_and_limit,
};
use crate::config::StorageConfig;
use crate::engine::{Kind, Store};
use crate::error::{Result, StorageError};
use crate::logs::head::LogsHead;
use crate::logs::merge::{LogsSource, merge_sorted as merge_logs};
use crate::logs::part::{
    LogsPart, RECORDS_FILE, STREAMS_FILE, StreamRef, encode_part as encode_logs, merge_streams,
    split_by_window as split_logs,
};
use crate::metrics::exemplars::{ExemplarBuffer, SeriesExemplars};
use crate::metrics::head::MetricsHead;
use crate::metrics::part::{
    MetricsPart, SeriesSlice, encode_part as encode_metrics, split_by_window as split_metrics,
};
use crate::metrics::wal::{Replayer, Resolved, encode_write};
use crate::metrics::{Series, merge_series};
use crate::model::{Labels, LogsBatch, Matcher, MetricMetadata, MetricsBatch, TracesBatch};
use crate::part::{PartData, PartMeta, PartStore, now_ms};
use crate::telemetry::{RefusalLabel, Signal, StorageMetrics};
use crate::traces::head::TracesHead;
use crate::traces::part::{
    SPANS_FILE, SpanRef, TracesPart, encode_part as encode_traces, merge_sorted,
    split_by_window as split_traces,
};
use crate::validate::{self, TimeBounds};
use crate::wal::{FsyncPolicy, ReplayReport};

/// Metrics, with the exemplar buffer whose content is written again into each segment
/// a head cut starts (see ARCHITECTURE.md "Exemplars").
#[derive(Clone, Default)]
pub(crate) struct MetricsKind {
    exemplars: Arc<parking_lot::Mutex<ExemplarBuffer>>,
}

impl Kind for MetricsKind {
    const SIGNAL: Signal = Signal::Metrics;
    type Head = MetricsHead;
    type Part = MetricsPart;

    fn head_bytes(h: &MetricsHead) -> u64 {
        h.bytes()
    }
    fn head_items(h: &MetricsHead) -> u64 {
        h.points()
    }
    fn head_is_empty(h: &MetricsHead) -> bool {
        h.is_empty()
    }
    fn encode_head(&self, h: &MetricsHead, _staging: &Path) -> Result<PartData> {
        let metadata: Vec<MetricMetadata> = h.metadata.values().cloned().collect();
        encode_metrics(&h.slices(), &metadata)
    }
    fn open_part(&self, meta: PartMeta, _store: &PartStore) -> Result<MetricsPart> {
        MetricsPart::open(meta, _store)
    }
    fn part_meta(p: &MetricsPart) -> &PartMeta {
        &p.meta
    }
    fn after_roll(&self, wal: &crate::wal::Wal) -> Result<()> {
        let payload = crate::metrics::wal::encode_exemplar_snapshot(&self.exemplars.lock());
        if let Some(payload) = payload {
            wal.append_with(|_, buf| buf.push(crate::metrics::wal::EXEMPLAR_SNAPSHOT, &payload))?;
        }
        Ok(())
    }
    async fn merge(
        &self,
        inputs: Vec<Arc<MetricsPart>>,
        store: Arc<PartStore>,
        window_ms: i64,
    ) -> Result<Vec<PartData>> {
        let mut sources = Vec::with_capacity(inputs.len());
        let mut metadata: BTreeMap<String, MetricMetadata> = BTreeMap::new();
        for p in &inputs {
            sources.push(p.read_all(&store).await?);
            for m in p.metadata() {
                metadata.insert(m.metric.clone(), m);
            }
        }
        merge_thread("metrics", move || {
            let merged = merge_series(sources);
            let metadata: Vec<MetricMetadata> = metadata.into_values().collect();
            let windows = split_metrics(merged, window_ms);
            if windows.is_empty() {
                return Ok(vec![encode_metrics(&[], &metadata)?]);
            }
            windows
                .values()
                .map(|series| {
                    let slices: Vec<SeriesSlice<'_>> = series.iter().map(SeriesSlice::of).collect();
                    encode_metrics(&slices, &metadata)
                })
                .collect()
        })
        .await
    }
}

#[derive(Clone)]
pub(crate) struct LogsKind;

impl Kind for LogsKind {
    const SIGNAL: Signal = Signal::Logs;
    type Head = LogsHead;
    type Part = LogsPart;

    fn head_bytes(h: &LogsHead) -> u64 {
        h.bytes()
    }
    fn head_items(h: &LogsHead) -> u64 {
        h.records()
    }
    fn head_is_empty(h: &LogsHead) -> bool {
        h.is_empty()
    }
    fn encode_head(&self, h: &LogsHead, staging: &Path) -> Result<PartData> {
        let mut streams: Vec<StreamRef<'_>> = h
            .streams
            .iter()
            .map(|s| StreamRef {
                labels: &s.labels,
                resource: &s.resource,
                records: &s.records,
            })
            .collect();
        streams.sort_by(|a, b| a.labels.cmp(b.labels));
        encode_logs(&streams, staging)
    }
    fn open_part(&self, meta: PartMeta, store: &PartStore) -> Result<LogsPart> {
        LogsPart::open(meta, store)
    }
    fn part_meta(p: &LogsPart) -> &PartMeta {
        &p.meta
    }
    async fn merge(
        &self,
        inputs: Vec<Arc<LogsPart>>,
        store: Arc<PartStore>,
        window_ms: i64,
    ) -> Result<Vec<PartData>> {
        let staging = store.staging_dir().to_path_buf();
        // Merged as sorted files (a batch or two of each in memory), or record by record when a
        // file has an older layout.
        let mut files = Vec::with_capacity(inputs.len());
        for p in inputs.iter().filter(|p| p.meta.rows > 0) {
            let records = store
                .merge_source(Signal::Logs, &p.meta, RECORDS_FILE)
                .await?;
            files.push(LogsSource {
                part: p.meta.id.clone(),
                streams: store.get(Signal::Logs, &p.meta, STREAMS_FILE).await?,
                records,
            });
        }
        let dir = staging.clone();
        let merged = merge_thread("logs", move || merge_logs(files, window_ms, &dir)).await?;
        if let Some(parts) = merged {
            return rows_kept("logs", inputs.iter().map(|p| p.meta.rows).sum(), parts);
        }
        let mut sources = Vec::with_capacity(inputs.len());
        for p in &inputs {
            sources.push(p.read_all(&store).await?);
        }
        merge_thread("logs", move || {
            let windows = split_logs(merge_streams(sources), window_ms);
            windows
                .into_values()
                .map(|mut streams| {
                    streams.sort_by(|a, b| a.labels.cmp(&b.labels));
                    let refs: Vec<StreamRef<'_>> = streams.iter().map(StreamRef::of).collect();
                    encode_logs(&refs, &staging)
                })
                .collect()
        })
        .await
    }
}

/// How much lower than the server's the scheduling priority of merge threads is.
const MERGE_NICE: i32 = 10;

/// Runs a merge's CPU work on a thread of its own at a lower scheduling priority (nice
/// +10 on Linux), so that queries and ingest arriving meanwhile get the cores first: a
/// merge only has to keep up over minutes. An error or a panic in `work` fails the
/// merge, whose inputs then stay.
async fn merge_thread<T: Send + 'static>(
    signal: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("merge-{signal}"))
        .spawn(move || {
            lower_priority();
            let _ = tx.send(work());
        })
        .map_err(|e| StorageError::part("merge", signal, e))?;
    rx.await
        .map_err(|_| StorageError::part("merge", signal, "the merge thread panicked"))?
}

/// Lowers the calling thread's priority by `MERGE_NICE`. Linux keeps a nice value per
/// thread, and threads started from it (the full-text index writer's) inherit it.
/// Where that fails the merge runs at the usual priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let tid = Some(rustix::thread::gettid());
        let lowered = getpriority_process(tid)
            .and_then(|nice| setpriority_process(tid, (nice + MERGE_NICE).min(19)));
        if let Err(e) = lowered {
            tracing::debug!(error = %e, "merge thread keeps the usual priority");
        }
    }
}

/// `parts`, when they hold the `want` rows of the merge's inputs: a merge that would lose or
/// duplicate rows fails instead (its inputs stay).
fn rows_kept(signal: &'static str, want: u64, parts: Vec<PartData>) -> Result<Vec<PartData>> {
    let have = parts.iter().map(|p| p.rows).sum::<u64>();
    if have != want {
        return Err(StorageError::part(
            "merge",
            signal,
            format!("{have} rows merged from {want}"),
        ));
    }
    Ok(parts)
}

#[derive(Clone)]
pub(crate) struct TracesKind;

impl Kind for TracesKind {
    const SIGNAL: Signal = Signal::Traces;
    type Head = TracesHead;
    type Part = TracesPart;

    fn head_bytes(h: &TracesHead) -> u64 {
        h.bytes()
    }
    fn head_items(h: &TracesHead) -> u64 {
        h.len() as u64
    }
    fn head_is_empty(h: &TracesHead) -> bool {
        h.len() == 0
    }
    fn encode_head(&self, h: &TracesHead, _staging: &Path) -> Result<PartData> {
        encode_traces(&h.sorted_refs())
    }
    fn open_part(&self, meta: PartMeta, store: &PartStore) -> Result<TracesPart> {
        TracesPart::open(meta, store)
    }
    fn part_meta(p: &TracesPart) -> &PartMeta {
        &p.meta
    }
    async fn merge(
        &self,
        inputs: Vec<Arc<TracesPart>>,
        store: Arc<PartStore>,
        window_ms: i64,
    ) -> Result<Vec<PartData>> {
        // Merged as sorted files (a batch or two of each in memory), or record by record when a
        // file has an older layout.
        let mut files = Vec::with_capacity(inputs.len());
        for p in inputs.iter().filter(|p| p.meta.rows > 0) {
            let source = store
                .merge_source(Signal::Traces, &p.meta, SPANS_FILE)
                .await?;
            files.push((p.meta.id.clone(), source));
        }
        let merged = merge_thread("traces", move || merge_sorted(files, window_ms)).await?;
        if let Some(parts) = merged {
            return rows_kept("traces", inputs.iter().map(|p| p.meta.rows).sum(), parts);
        }
        let mut all = Vec::new();
        for p in &inputs {
            all.extend(p.read_all(&store).await?);
        }
        merge_thread("traces", move || {
            split_traces(all, window_ms)
                .into_values()
                .map(|spans| {
                    let mut refs: Vec<SpanRef<'_>> = spans.iter().map(SpanRef::of).collect();
                    refs.sort_by_key(|r| (r.span.trace_id, r.span.start_ns));
                    encode_traces(&refs)
                })
                .collect()
        })
        .await
    }
}

/// Runs `read` on every part at the same time, each on a task of its own (decoding pages
/// is CPU work: a read of several parts uses every core), and gives the answers in the
/// parts' order. Dropping the returned future (a cancelled query) aborts the tasks.
async fn each_part<P, T, F, Fut>(parts: &[Arc<P>], read: F) -> Result<Vec<T>>
where
    P: Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(Arc<P>) -> Fut,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    struct AbortOnDrop<T>(Vec<tokio::task::JoinHandle<Result<T>>>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            for h in &self.0 {
                h.abort();
            }
        }
    }
    if let [only] = parts {
        return Ok(vec![read(only.clone()).await?]);
    }
    let mut tasks = AbortOnDrop(
        parts
            .iter()
            .map(|p| tokio::spawn(read(p.clone())))
            .collect(),
    );
    let mut out = Vec::with_capacity(parts.len());
    for h in &mut tasks.0 {
        out.push(
            h.await
                .map_err(|e| StorageError::part("parts", "read", e))??,
        );
    }
    Ok(out)
}

/// What opening the data directory found.
#[derive(Debug, Default, Clone)]
pub struct OpenReport {
    pub metrics: ReplayReport,
    pub logs: ReplayReport,
    pub traces: ReplayReport,
    pub parts: usize,
}

/// Durable storage for all three signals in one data directory.
pub struct Storage {
    cfg: StorageConfig,
    /// Also holds the most recent exemplars (`metrics.kind.exemplars`, durable through
    /// the metrics WAL).
    metrics: Store<MetricsKind>,
    logs: Store<LogsKind>,
    traces: Store<TracesKind>,
    telemetry: StorageMetrics,
}

impl Storage {
    /// Opens (or creates) the data directory, replays the WALs, and registers the
    /// storage's own metrics in `registry`.
    pub async fn open(
        cfg: StorageConfig,
        registry: &mut Registry,
    ) -> Result<(Storage, OpenReport)> {
        let telemetry = StorageMetrics::new(registry);
        Self::open_with(cfg, telemetry).await
    }

    async fn open_with(
        cfg: StorageConfig,
        telemetry: StorageMetrics,
    ) -> Result<(Storage, OpenReport)> {
        let dir = cfg.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::DataDir {
            path: dir.clone(),
            op: "create",
            source: e,
        })?;
        let parts = Arc::new(PartStore::local(&dir)?);
        let wal = |s: Signal| dir.join("wal").join(s.as_str());
        let mut replayer = Replayer::new(cfg.limits.max_exemplars);
        let exemplars = Arc::new(parking_lot::Mutex::new(ExemplarBuffer::new(
            cfg.limits.max_exemplars,
        )));
        let (metrics, mr) = Store::open(
            MetricsKind {
                exemplars: exemplars.clone(),
            },
            cfg.metrics.clone(),
            &wal(Signal::Metrics),
            cfg.wal.clone(),
            parts.clone(),
            telemetry.clone(),
            |head, seg, kind, payload| replayer.apply(head, seg, kind, payload),
        )
        .await?;
        let (logs, lr) = Store::open(
            LogsKind,
            cfg.logs.clone(),
            &wal(Signal::Logs),
            cfg.wal.clone(),
            parts.clone(),
            telemetry.clone(),
            |head: &mut LogsHead, _, _, payload| {
                for s in crate::logs::wal::decode(payload)?.streams {
                    head.insert_stream(s);
                }
                Ok(())
            },
        )
        .await?;
        let (traces, tr) = Store::open(
            TracesKind,
            cfg.traces.clone(),
            &wal(Signal::Traces),
            cfg.wal.clone(),
            parts.clone(),
            telemetry.clone(),
            |head: &mut TracesHead, _, _, payload| {
                for r in crate::traces::wal::decode(payload)?.resources {
                    head.insert(r);
                }
                Ok(())
            },
        )
        .await?;
        let report = OpenReport {
            parts: metrics.part_count() + logs.part_count() + traces.part_count(),
            metrics: mr,
            logs: lr,
            traces: tr,
        };
        {
            let mut buf = exemplars.lock();
            for (series, e) in std::mem::take(&mut replayer.exemplars) {
                buf.push(&series, e);
            }
        }
        let s = Storage {
            cfg,
            metrics,
            logs,
            traces,
            telemetry,
        };
        s.update_series_gauge();
        Ok((s, report))
    }

    pub fn config(&self) -> &StorageConfig {
        &self.cfg
    }

    fn bounds(&self, signal: Signal) -> TimeBounds {
        TimeBounds::new(
            now_ms(),
            self.cfg.signal(signal).retention,
            self.cfg.limits.max_future,
        )
    }

    fn update_series_gauge(&self) {
        self.telemetry
            .active_series
            .set(self.metrics.head.read().series_count() as i64);
    }

    /// Flushes every head that is due every `maintenance_interval`, and on a task of its
    /// own merges parts and applies retention, until `shutdown` turns true (the round of
    /// merges under way is finished first). Merges run apart from flushes: a long merge
    /// must not hold up the flush that makes room in a full head.
    pub async fn run_maintenance(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let merges = tokio::spawn(self.clone().run_merges(shutdown.clone()));
        let mut tick = tokio::time::interval(self.cfg.maintenance_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interval_fsync = match self.cfg.wal.fsync {
            FsyncPolicy::Interval(d) => Some(d),
            FsyncPolicy::Batch => None,
        };
        let mut last_fsync = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            if let Some(d) = interval_fsync
                && last_fsync.elapsed() >= d
            {
                last_fsync = Instant::now();
                for r in [
                    self.metrics.wal.sync_now().await,
                    self.logs.wal.sync_now().await,
                    self.traces.wal.sync_now().await,
                ] {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "periodic wal fsync failed");
                    }
                }
            }
            self.flush_due().await;
        }
        if let Err(e) = merges.await {
            tracing::error!(error = %e, "the merge task stopped");
        }
    }

    /// Applies retention at once and then every minute, and merges parts every 10 s,
    /// until `shutdown`.
    async fn run_merges(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // An interval's first tick is at once; the first merge comes 10 s after start.
        tick.tick().await;
        let mut last_retention: Option<Instant> = None;
        loop {
            if last_retention.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_retention = Some(Instant::now());
                self.retention().await;
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            self.collect_garbage().await;
            self.merge_some().await;
        }
    }

    async fn flush_due(&self) {
        if self.metrics.flush_due()
            && let Err(e) = self.metrics.flush().await
        {
            tracing::error!(signal = "metrics", error = %e, "flush failed; data stays in the wal and will be retried");
        }
        if self.logs.flush_due()
            && let Err(e) = self.logs.flush().await
        {
            tracing::error!(signal = "logs", error = %e, "flush failed; data stays in the wal and will be retried");
        }
        if self.traces.flush_due()
            && let Err(e) = self.traces.flush().await
        {
            tracing::error!(signal = "traces", error = %e, "flush failed; data stays in the wal and will be retried");
        }
        self.update_series_gauge();
    }

    /// Runs merges until nothing is left to merge (at most a few per call).
    pub async fn merge_some(&self) -> usize {
        let mut n = 0;
        for _ in 0..4 {
            let mut any = false;
            any |= self.metrics.compact().await.unwrap_or(false);
            any |= self.logs.compact().await.unwrap_or(false);
            any |= self.traces.compact().await.unwrap_or(false);
            if !any {
                break;
            }
            n += 1;
        }
        n
    }

    /// Applies retention to every signal; returns the number of parts deleted.
    pub async fn retention(&self) -> usize {
        let mut n = 0;
        for r in [
            self.metrics.apply_retention().await,
            self.logs.apply_retention().await,
            self.traces.apply_retention().await,
        ] {
            match r {
                Ok(k) => n += k,
                Err(e) => tracing::error!(error = %e, "retention failed"),
            }
        }
        n
    }

    /// Verifies every part's checksums; corrupt parts are set aside. Returns how many.
    pub async fn scrub(&self) -> usize {
        self.metrics.scrub().await + self.logs.scrub().await + self.traces.scrub().await
    }

    /// Deletes the replaced and expired parts that no query holds any more. A merge
    /// or retention run deletes its own at once, unless a query still reads them;
    /// those go on a later call (every merge tick, and at shutdown).
    pub async fn collect_garbage(&self) {
        self.metrics.collect_garbage().await;
        self.logs.collect_garbage().await;
        self.traces.collect_garbage().await;
    }

    /// Writes every head to parts (used at shutdown and by tests).
    pub async fn flush_all(&self) -> Result<()> {
        self.metrics.flush().await?;
        self.logs.flush().await?;
        self.traces.flush().await?;
        self.update_series_gauge();
        Ok(())
    }

    /// Number of parts per signal.
    pub fn part_counts(&self) -> [(Signal, usize); 3] {
        [
            (Signal::Metrics, self.metrics.part_count()),
            (Signal::Logs, self.logs.part_count()),
            (Signal::Traces, self.traces.part_count()),
        ]
    }

    /// Bytes on disk per signal: parts plus WAL.
    pub fn disk_bytes(&self) -> [(Signal, u64, u64); 3] {
        fn part_bytes<K: Kind>(s: &Store<K>) -> u64 {
            s.view
                .read()
                .parts
                .iter()
                .map(|p| K::part_meta(p).bytes())
                .sum()
        }
        [
            (
                Signal::Metrics,
                part_bytes(&self.metrics),
                self.metrics.wal.disk_bytes(),
            ),
            (
                Signal::Logs,
                part_bytes(&self.logs),
                self.logs.wal.disk_bytes(),
            ),
            (
                Signal::Traces,
                part_bytes(&self.traces),
                self.traces.wal.disk_bytes(),
            ),
        ]
    }
}

/// Resolves, logs and inserts a validated metrics batch under the head lock.
pub(crate) fn insert_metrics(
    head: &mut MetricsHead,
    batch: &MetricsBatch,
    max_series: usize,
    append: Option<&crate::wal::Wal>,
) -> Result<crate::wal::Lsn> {
    let mut idx: Vec<Option<u32>> = Vec::with_capacity(batch.series.len());
    let mut hashes = Vec::with_capacity(batch.series.len());
    // Series new to the head, counted once even when the batch repeats a label set.
    let mut new: std::collections::HashSet<&Labels> = std::collections::HashSet::new();
    for s in &batch.series {
        let h = s.labels.hash64();
        let found = head.lookup(&s.labels, h);
        if found.is_none() {
            new.insert(&s.labels);
        }
        idx.push(found);
        hashes.push(h);
    }
    let new = new.len();
    if new > 0 && head.series_count() + new > max_series {
        return Err(StorageError::SeriesLimit {
            limit: max_series,
            retry_after: Duration::from_secs(30),
        });
    }
    let resolved: Vec<u32> = batch
        .series
        .iter()
        .zip(idx)
        .zip(hashes)
        .map(|((s, i), h)| {
            i.or_else(|| head.lookup(&s.labels, h))
                .unwrap_or_else(|| head.create(&s.labels, h))
        })
        .collect();
    let items: Vec<Resolved<'_>> = batch
        .series
        .iter()
        .zip(&resolved)
        .map(|(s, &i)| Resolved {
            idx: i,
            labels: &s.labels,
            samples: &s.samples,
            histograms: &s.histograms,
            exemplars: &s.exemplars,
            starts: &s.starts,
        })
        .collect();
    let lsn = match append {
        Some(wal) => {
            let res =
                wal.append_with(|seg, buf| encode_write(head, seg, &items, &batch.metadata, buf));
            if res.is_err() {
                // Definitions written by the failed append are not in the log: write them again next time.
                for &i in &resolved {
                    head.series[i as usize].wal_seg = 0;
                }
            }
            res?
        }
        None => crate::wal::Lsn::default(),
    };
    for (s, &i) in batch.series.iter().zip(&resolved) {
        for x in &s.samples {
            head.insert_sample(i, *x);
        }
        for h in &s.histograms {
            head.insert_histogram(i, h.clone());
        }
        for st in &s.starts {
            head.insert_start(i, *st);
        }
    }
    for m in &batch.metadata {
        head.set_metadata(m);
    }
    Ok(lsn)
}

#[async_trait]
impl IngestSink for Storage {
    async fn write_metrics(&self, batch: MetricsBatch) -> Result<WriteOutcome> {
        let (batch, outcome) =
            validate::metrics(batch, &self.cfg.limits, self.bounds(Signal::Metrics));
        if batch.series.is_empty() && batch.metadata.is_empty() {
            return Ok(outcome);
        }
        let max = self.cfg.limits.max_active_series;
        // Exemplars join the buffer under the head lock, as their WAL record is written:
        // a head cut (which writes the buffer into the new segment) sees both or neither.
        let res = self
            .metrics
            .write(|head, wal| {
                let lsn = insert_metrics(head, &batch, max, Some(wal))?;
                self.metrics.kind.exemplars.lock().keep(&batch);
                Ok((lsn, ()))
            })
            .await;
        if let Err(StorageError::SeriesLimit { .. }) = &res {
            self.telemetry
                .refusals
                .get_or_create(&RefusalLabel {
                    signal: Signal::Metrics,
                    reason: "series_limit",
                })
                .inc();
        }
        res?;
        self.telemetry
            .stored_items
            .get_or_create(&StorageMetrics::sig(Signal::Metrics))
            .inc_by(outcome.accepted);
        Ok(outcome)
    }

    async fn write_logs(&self, batch: LogsBatch) -> Result<WriteOutcome> {
        let (batch, outcome) = validate::logs(batch, self.bounds(Signal::Logs));
        if batch.streams.is_empty() {
            return Ok(outcome);
        }
        let payload = crate::logs::wal::encode(&batch);
        self.logs
            .write(|head, wal| {
                let lsn = wal.append_with(|_, buf| buf.push(crate::logs::wal::BATCH, &payload))?;
                for s in batch.streams {
                    head.insert_stream(s);
                }
                Ok((lsn, ()))
            })
            .await?;
        self.telemetry
            .stored_items
            .get_or_create(&StorageMetrics::sig(Signal::Logs))
            .inc_by(outcome.accepted);
        Ok(outcome)
    }

    async fn write_traces(&self, batch: TracesBatch) -> Result<WriteOutcome> {
        let (batch, outcome) = validate::traces(batch, self.bounds(Signal::Traces));
        if batch.resources.is_empty() {
            return Ok(outcome);
        }
        let payload = crate::traces::wal::encode(&batch);
        self.traces
            .write(|head, wal| {
                let lsn =
                    wal.append_with(|_, buf| buf.push(crate::traces::wal::BATCH, &payload))?;
                for r in batch.resources {
                    head.insert(r);
                }
                Ok((lsn, ()))
            })
            .await?;
        self.telemetry
            .stored_items
            .get_or_create(&StorageMetrics::sig(Signal::Traces))
            .inc_by(outcome.accepted);
        Ok(outcome)
    }
}

#[async_trait]
impl MetricsReader for Storage {
    async fn select_series(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>> {
        let (head, frozen, parts) = {
            let h = self.metrics.head.read();
            let sel = h.select(matchers, start_ms, end_ms);
            let (frozen, parts) = self.metrics.parts_overlapping(start_ms, end_ms);
            (sel, frozen, parts)
        };
        let mut sources = Vec::with_capacity(parts.len() + frozen.len() + 1);
        let ms = matchers.to_vec();
        sources.extend(
            each_part(&parts, |p| {
                let ms = ms.clone();
                async move { p.select(&ms, start_ms, end_ms).await }
            })
            .await?,
        );
        for f in &frozen {
            sources.push(f.select(matchers, start_ms, end_ms));
        }
        sources.push(head);
        Ok(merge_series(sources))
    }

    async fn series_labels(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>> {
        let (mut all, frozen, parts) = {
            let h = self.metrics.head.read();
            let sel = h.series_labels(matchers, start_ms, end_ms);
            let (frozen, parts) = self.metrics.parts_overlapping(start_ms, end_ms);
            (sel, frozen, parts)
        };
        for f in &frozen {
            all.extend(f.series_labels(matchers, start_ms, end_ms));
        }
        for p in &parts {
            all.extend(p.series_labels(matchers, start_ms, end_ms).await?);
        }
        let set: BTreeSet<Labels> = all.into_iter().collect();
        Ok(set.into_iter().collect())
    }

    async fn select_exemplars(
        &self,
        sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>> {
        Ok(self
            .metrics
            .kind
            .exemplars
            .lock()
            .select(sets, start_ms, end_ms))
    }

    async fn metadata(&self) -> Result<Vec<MetricMetadata>> {
        let mut out: BTreeMap<String, MetricMetadata> = BTreeMap::new();
        let (frozen, parts) = self.metrics.parts_overlapping(i64::MIN, i64::MAX);
        for p in &parts {
            for m in p.metadata() {
                out.insert(m.metric.clone(), m);
            }
        }
        for f in &frozen {
            out.extend(f.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out.extend(
            self.metrics
                .head
                .read()
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        Ok(out.into_values().collect())
    }
}

impl Storage {
    /// What `head` finds in the logs head and every frozen head, and `part` in every
    /// logs part overlapping `[start_ns, end_ns)`, in one list.
    async fn gather_logs<T, F, Fut>(
        &self,
        start_ns: i64,
        end_ns: i64,
        head: impl Fn(&LogsHead) -> Vec<T>,
        part: F,
    ) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(Arc<LogsPart>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>> + Send + 'static,
    {
        let (mut all, frozen, parts) = {
            let h = self.logs.head.read();
            let sel = head(&h);
            let (frozen, parts) = self
                .logs
                .parts_overlapping(start_ns.div_euclid(1_000_000), end_ns.div_euclid(1_000_000));
            (sel, frozen, parts)
        };
        for f in &frozen {
            all.extend(head(f));
        }
        for found in each_part(&parts, part).await? {
            all.extend(found);
        }
        Ok(all)
    }
}

#[async_trait]
impl LogsReader for Storage {
    async fn query_logs(&self, q: &LogQuery) -> Result<Vec<LogEntry>> {
        let mut all = self
            .gather_logs(
                q.start_ns,
                q.end_ns,
                |h| h.query(q),
                |p| {
                    let q = q.clone();
                    async move { p.query(&q).await }
                },
            )
            .await?;
        order_and_limit(&mut all, q);
        Ok(all)
    }

    async fn log_times(&self, q: &TimesQuery) -> Result<Option<FoundTimes>> {
        let budget = Arc::new(ReadBudget::new(q.max));
        let all = self
            .gather_logs(
                q.start_ns,
                q.end_ns,
                |h| {
                    let found = h.times(q);
                    budget.take(found.lines);
                    vec![found]
                },
                |p| {
                    let (q, budget) = (q.clone(), budget.clone());
                    async move { Ok(vec![p.times(&q, &budget).await?]) }
                },
            )
            .await?;
        if budget.exceeded() {
            return Ok(None);
        }
        Ok(Some(join_stream_times(all)))
    }

    async fn log_streams(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>> {
        let m = matchers.to_vec();
        let all = self
            .gather_logs(
                start_ns,
                end_ns,
                |h| h.stream_labels(matchers, start_ns, end_ns),
                |p| {
                    let m = m.clone();
                    async move { p.stream_labels(&m, start_ns, end_ns).await }
                },
            )
            .await?;
        let set: BTreeSet<Labels> = all.into_iter().collect();
        Ok(set.into_iter().collect())
    }
}

#[async_trait]
impl TracesReader for Storage {
    async fn trace(&self, trace_id: [u8; 16]) -> Result<Vec<SpanRecord>> {
        let (mut all, frozen, parts) = {
            let h = self.traces.head.read();
            let sel = h.trace(&trace_id);
            let (frozen, parts) = self.traces.parts_overlapping(i64::MIN, i64::MAX);
            (sel, frozen, parts)
        };
        for f in &frozen {
            all.extend(f.trace(&trace_id));
        }
        for found in each_part(&parts, |p| async move { p.trace(&trace_id).await }).await? {
            all.extend(found);
        }
        all.sort_by(|a, b| {
            (a.span.start_ns, a.span.span_id).cmp(&(b.span.start_ns, b.span.span_id))
        });
        all.dedup_by(|a, b| a.span.span_id == b.span.span_id && a.span.start_ns == b.span.start_ns);
        Ok(all)
    }

    async fn search_spans(&self, q: &SpanQuery) -> Result<Vec<SpanRecord>> {
        let (mut all, frozen, parts) = {
            let h = self.traces.head.read();
            let sel = h.search(q);
            let (frozen, parts) = self.traces.parts_overlapping(
                q.start_ns.div_euclid(1_000_000),
                q.end_ns.div_euclid(1_000_000),
            );
            (sel, frozen, parts)
        };
        for f in &frozen {
            all.extend(f.search(q));
        }
        for found in each_part(&parts, |p| {
            let q = q.clone();
            async move { p.search(&q).await }
        })
        .await?
        {
            all.extend(found);
        }
        all.sort_by_key(|r| std::cmp::Reverse(r.span.start_ns));
        if q.limit > 0 {
            all.truncate(q.limit);
        }
        Ok(all)
    }

    async fn services(&self) -> Result<Vec<String>> {
        Ok(self.operation_map().into_keys().collect())
    }

    async fn operations(&self, service: &str) -> Result<Vec<(String, i32)>> {
        Ok(self
            .operation_map()
            .remove(service)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default())
    }
}

impl Storage {
    fn operation_map(&self) -> BTreeMap<String, BTreeSet<(String, i32)>> {
        let mut out: BTreeMap<String, BTreeSet<(String, i32)>> = BTreeMap::new();
        let (frozen, parts) = {
            let h = self.traces.head.read();
            for (svc, ops) in &h.operations {
                out.entry(svc.clone())
                    .or_default()
                    .extend(ops.iter().cloned());
            }
            self.traces.parts_overlapping(i64::MIN, i64::MAX)
        };
        for f in &frozen {
            for (svc, ops) in &f.operations {
                out.entry(svc.clone())
                    .or_default()
                    .extend(ops.iter().cloned());
            }
        }
        for p in &parts {
            for (svc, ops) in p.operations() {
                out.entry(svc).or_default().extend(ops);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::model::{Sample, SeriesPoints};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parts_are_read_at_once_answer_in_order_and_stop_when_dropped() {
        // The first part answers last: the answers still come in the parts' order.
        let parts: Vec<Arc<u64>> = [30, 1, 10].into_iter().map(Arc::new).collect();
        let got = each_part(&parts, |p| async move {
            tokio::time::sleep(Duration::from_millis(*p)).await;
            Ok(*p)
        })
        .await
        .unwrap();
        assert_eq!(got, vec![30, 1, 10]);

        // A query given up on (its future dropped) stops the reads it started.
        let finished = Arc::new(AtomicBool::new(false));
        let two: Vec<Arc<AtomicBool>> = vec![finished.clone(), finished.clone()];
        let read = each_part(&two, |f| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            f.store(true, Ordering::SeqCst);
            Ok(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(20), read)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn replaced_parts_a_query_still_holds_are_deleted_once_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StorageConfig::new(dir.path());
        cfg.metrics.part_window = Duration::from_secs(3600);
        cfg.metrics.max_parts_per_window = 2;
        let mut reg = prometheus_client::registry::Registry::default();
        let (s, _) = Storage::open(cfg, &mut reg).await.unwrap();
        let t = now_ms() - 4 * 3_600_000;
        for i in 0..3 {
            let batch = MetricsBatch {
                series: vec![SeriesPoints {
                    labels: Labels::from_pairs([("__name__", "up"), ("job", "api")]),
                    samples: vec![Sample {
                        t: t + i * 1000,
                        v: 1.0,
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            s.write_metrics(batch).await.unwrap();
            s.flush_all().await.unwrap();
        }
        let on_disk = || {
            std::fs::read_dir(dir.path().join("parts/metrics"))
                .unwrap()
                .count()
        };
        assert_eq!(on_disk(), 3);
        // The parts as a query running during the merge holds them.
        let held = s.metrics.view.read().parts.clone();
        assert!(s.merge_some().await > 0);
        assert_eq!(s.part_counts()[0].1, 1);
        assert_eq!(on_disk(), 4, "the inputs stay while a query reads them");
        s.collect_garbage().await;
        assert_eq!(on_disk(), 4);
        drop(held);
        s.collect_garbage().await;
        assert_eq!(on_disk(), 1, "then they go");
    }

    #[tokio::test]
    async fn merge_work_runs_at_a_lower_priority_and_its_failures_fail_the_merge() {
        assert_eq!(merge_thread("test", || Ok(7)).await.unwrap(), 7);
        let err = merge_thread::<()>("test", || Err(StorageError::part("p", "merge", "bad")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
        let err = merge_thread::<()>("test", || panic!("merge bug"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        #[cfg(target_os = "linux")]
        {
            use rustix::process::getpriority_process;
            let here = getpriority_process(Some(rustix::thread::gettid())).unwrap();
            let there = merge_thread("test", || {
                Ok(getpriority_process(Some(rustix::thread::gettid())).unwrap())
            })
            .await
            .unwrap();
            assert_eq!(there, (here + MERGE_NICE).min(19));
        }
    }
}
