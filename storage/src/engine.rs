//! The life cycle every signal shares: a WAL, an active head, frozen heads being
//! flushed, immutable parts; flush, merge (compaction), retention and scrubbing.
//!
//! Locking: writers hold the head write lock while they append to the WAL and insert,
//! so a cut (head lock, then view lock) splits the log exactly: every record in a
//! segment below the cut's boundary is in the frozen head. Readers take the head read
//! lock and then the view lock, so they see each item exactly once.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::config::SignalConfig;
use crate::error::{Result, StorageError};
use crate::part::{Group, PartData, PartMeta, PartStore, Publish, now_ms, window_start};
use crate::telemetry::{RefusalLabel, Signal, StorageMetrics};
use crate::wal::{Lsn, ReplayReport, Wal, WalOptions};

/// What one signal plugs into the shared life cycle.
pub(crate) trait Kind: Clone + Send + Sync + 'static {
    const SIGNAL: Signal;
    type Head: Default + Send + Sync + 'static;
    type Part: Send + Sync + 'static;

    fn head_bytes(h: &Self::Head) -> u64;
    fn head_items(h: &Self::Head) -> u64;
    fn head_is_empty(h: &Self::Head) -> bool;
    /// Encodes a frozen head as one part (blocking; runs off the async runtime).
    fn encode_head(&self, h: &Self::Head, staging: &Path) -> Result<PartData>;
    fn open_part(&self, meta: PartMeta, store: &PartStore) -> Result<Self::Part>;
    fn part_meta(p: &Self::Part) -> &PartMeta;
    /// Merges parts and encodes the result as one part per time window.
    fn merge(
        &self,
        inputs: Vec<Arc<Self::Part>>,
        store: Arc<PartStore>,
        window_ms: i64,
    ) -> impl Future<Output = Result<Vec<PartData>>> + Send;
    /// Writes into the segment a head cut has just started what must outlive the older
    /// segments (which are deleted once the cut heads are in parts).
    fn after_roll(&self, _wal: &crate::wal::Wal) -> Result<()> {
        Ok(())
    }
}

pub(crate) struct Frozen<K: Kind> {
    pub(crate) head: Arc<K::Head>,
    boundary: u64,
    bytes: u64,
}

/// Frozen heads and parts a query reads, captured together.
pub(crate) type Snapshot<K> = (Vec<Arc<<K as Kind>::Head>>, Vec<Arc<<K as Kind>::Part>>);

pub(crate) struct View<K: Kind> {
    pub(crate) frozen: Vec<Frozen<K>>,
    pub(crate) parts: Vec<Arc<K::Part>>,
}

pub(crate) struct Store<K: Kind> {
    pub(crate) kind: K,
    pub(crate) cfg: SignalConfig,
    pub(crate) wal: Wal,
    pub(crate) head: RwLock<K::Head>,
    pub(crate) view: RwLock<View<K>>,
    pub(crate) parts: Arc<PartStore>,
    frozen_bytes: AtomicU64,
    last_cut: Mutex<Instant>,
    /// One flush at a time (frozen heads are flushed in order).
    flush_lock: tokio::sync::Mutex<()>,
    /// One merge or retention pass at a time; flushes go on meanwhile.
    merge_lock: tokio::sync::Mutex<()>,
    garbage: Mutex<Vec<Arc<K::Part>>>,
    metrics: StorageMetrics,
}

impl<K: Kind> Store<K> {
    /// Opens the parts, then replays the WAL records that are not in parts yet.
    pub(crate) async fn open(
        kind: K,
        cfg: SignalConfig,
        wal_dir: &Path,
        wal_opts: WalOptions,
        parts: Arc<PartStore>,
        metrics: StorageMetrics,
        mut replay: impl FnMut(&mut K::Head, u64, u8, &[u8]) -> Result<()>,
    ) -> Result<(Store<K>, ReplayReport)> {
        let (metas, _set_aside) = parts.list(K::SIGNAL).await?;
        let mut opened = Vec::with_capacity(metas.len());
        for m in metas {
            let id = m.id.clone();
            match kind.open_part(m, &parts) {
                Ok(p) => opened.push(Arc::new(p)),
                Err(e) => {
                    tracing::error!(signal = %K::SIGNAL, part = %id, error = %e, "part set aside: cannot open");
                    metrics
                        .corrupt_parts
                        .get_or_create(&StorageMetrics::sig(K::SIGNAL))
                        .inc();
                    parts.set_aside(K::SIGNAL, &id).await;
                }
            }
        }
        // Only parts that opened vouch for the WAL segments below their boundary.
        let boundary = opened
            .iter()
            .map(|p| K::part_meta(p).wal_boundary)
            .max()
            .unwrap_or(0);
        let mut head = K::Head::default();
        let (wal, report) = Wal::open(
            wal_dir,
            K::SIGNAL,
            wal_opts,
            metrics.clone(),
            boundary,
            |seg, k, p| replay(&mut head, seg, k, p),
        )?;
        let store = Store {
            kind,
            cfg,
            wal,
            head: RwLock::new(head),
            view: RwLock::new(View {
                frozen: Vec::new(),
                parts: opened,
            }),
            parts,
            frozen_bytes: AtomicU64::new(0),
            last_cut: Mutex::new(Instant::now()),
            flush_lock: tokio::sync::Mutex::new(()),
            merge_lock: tokio::sync::Mutex::new(()),
            garbage: Mutex::new(Vec::new()),
            metrics,
        };
        store.update_gauges();
        Ok((store, report))
    }

    fn sig(&self) -> crate::telemetry::SignalLabel {
        StorageMetrics::sig(K::SIGNAL)
    }

    /// Refuses a write when the heads hold as many bytes as allowed.
    pub(crate) fn check_capacity(&self) -> Result<()> {
        let used = K::head_bytes(&self.head.read()) + self.frozen_bytes.load(Ordering::Relaxed);
        if used >= self.cfg.max_head_bytes {
            self.metrics
                .refusals
                .get_or_create(&RefusalLabel {
                    signal: K::SIGNAL,
                    reason: "head_full",
                })
                .inc();
            return Err(StorageError::HeadFull {
                signal: K::SIGNAL.as_str(),
                used,
                limit: self.cfg.max_head_bytes,
                retry_after: Duration::from_secs(2),
            });
        }
        Ok(())
    }

    /// Appends and inserts under the head lock (the closure does both), then waits until
    /// the appended records are durable.
    pub(crate) async fn write<R>(
        &self,
        f: impl FnOnce(&mut K::Head, &Wal) -> Result<(Lsn, R)>,
    ) -> Result<R> {
        self.check_capacity()?;
        let (lsn, r) = {
            let mut h = self.head.write();
            f(&mut h, &self.wal)?
        };
        self.wal.sync(lsn).await?;
        Ok(r)
    }

    /// True when the active head should be cut and flushed now.
    pub(crate) fn flush_due(&self) -> bool {
        let h = self.head.read();
        if K::head_is_empty(&h) {
            return false;
        }
        K::head_bytes(&h) >= self.cfg.flush_bytes
            || self.last_cut.lock().elapsed() >= self.cfg.flush_interval
    }

    /// Moves the active head to the frozen list and starts a new WAL segment.
    fn cut(&self) -> Result<()> {
        let mut h = self.head.write();
        *self.last_cut.lock() = Instant::now();
        if K::head_is_empty(&h) {
            return Ok(());
        }
        let boundary = self.wal.roll()?;
        self.kind.after_roll(&self.wal)?;
        let bytes = K::head_bytes(&h);
        let frozen = Arc::new(std::mem::take(&mut *h));
        self.frozen_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.view.write().frozen.push(Frozen {
            head: frozen,
            boundary,
            bytes,
        });
        Ok(())
    }

    /// Cuts the active head and writes every frozen head to a part, oldest first; the WAL
    /// segments a frozen head came from are deleted once its part is durable.
    pub(crate) async fn flush(&self) -> Result<()> {
        let _m = self.flush_lock.lock().await;
        self.cut()?;
        // What `after_roll` wrote into the new segment is durable before a part is
        // published: a published part's WAL boundary makes the older segments dead.
        self.wal.sync_now().await?;
        let res = self.flush_frozen().await;
        if res.is_err() {
            self.metrics.flush_failures.get_or_create(&self.sig()).inc();
        }
        self.update_gauges();
        res
    }

    async fn flush_frozen(&self) -> Result<()> {
        loop {
            let next = {
                let v = self.view.read();
                v.frozen
                    .first()
                    .map(|f| (f.head.clone(), f.boundary, f.bytes))
            };
            let Some((head, boundary, bytes)) = next else {
                return Ok(());
            };
            let kind = self.kind.clone();
            let staging = self.parts.staging_dir().to_path_buf();
            let data = tokio::task::spawn_blocking(move || kind.encode_head(&head, &staging))
                .await
                .map_err(|e| StorageError::part("flush", "encode head", e))??;
            let rows = data.rows;
            let meta = self
                .parts
                .publish(
                    K::SIGNAL,
                    data,
                    Publish {
                        wal_boundary: boundary,
                        ..Default::default()
                    },
                )
                .await?;
            let part = match self.kind.open_part(meta.clone(), &self.parts) {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    // Take the part back so that the retry does not write its data twice.
                    let _ = self.parts.delete(K::SIGNAL, &meta).await;
                    return Err(e);
                }
            };
            {
                let mut v = self.view.write();
                v.frozen.remove(0);
                v.parts.push(part);
                v.parts.sort_by_key(|p| K::part_meta(p).rank());
            }
            self.frozen_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.wal.remove_before(boundary)?;
            self.metrics.flushes.get_or_create(&self.sig()).inc();
            tracing::debug!(signal = %K::SIGNAL, rows, "head flushed");
        }
    }

    /// Merges the parts of one time window when it has several, or when a part spans
    /// several windows; closed windows first. Returns whether anything was merged.
    pub(crate) async fn compact(&self) -> Result<bool> {
        let _m = self.merge_lock.lock().await;
        let window = self.cfg.part_window.as_millis() as i64;
        let now = now_ms();
        let parts: Vec<Arc<K::Part>> = self.view.read().parts.clone();
        // window start → parts overlapping it
        let mut by_window: BTreeMap<i64, Vec<Arc<K::Part>>> = BTreeMap::new();
        for p in &parts {
            let m = K::part_meta(p);
            let mut w = window_start(m.min_time_ms, window);
            while w <= m.max_time_ms {
                by_window.entry(w).or_default().push(p.clone());
                w += window;
            }
        }
        let grace = self.cfg.flush_interval.as_millis() as i64;
        // A closed window is merged into one part. An open window that collected many
        // flushed (level 0) parts has just those merged, so that its growing merged part
        // is not rewritten again and again.
        let candidate = by_window.into_iter().find_map(|(w, ps)| {
            let closed = w + window + grace < now;
            // Parts of a quarter of the merge budget are big enough: merging them again
            // only rewrites data. They still move when they span windows.
            let full = |p: &Arc<K::Part>| {
                let m = K::part_meta(p);
                m.bytes() >= self.cfg.max_merge_bytes / 4
                    && window_start(m.min_time_ms, window) == window_start(m.max_time_ms, window)
            };
            let ps: Vec<Arc<K::Part>> = ps.into_iter().filter(|p| !full(p)).collect();
            if closed {
                let straddles = ps.iter().any(|p| {
                    let m = K::part_meta(p);
                    window_start(m.min_time_ms, window) != window_start(m.max_time_ms, window)
                });
                (ps.len() > 1 || straddles).then_some((w, ps))
            } else {
                let fresh: Vec<Arc<K::Part>> = ps
                    .into_iter()
                    .filter(|p| K::part_meta(p).level == 0)
                    .collect();
                (fresh.len() >= self.cfg.max_parts_per_window).then_some((w, fresh))
            }
        });
        drop(parts);
        let Some((w, mut inputs)) = candidate else {
            return Ok(false);
        };
        // Bound the work: merge the oldest parts up to the input budget (at least two).
        inputs.sort_by_key(|p| K::part_meta(p).rank());
        let mut budget = 0u64;
        let mut take = 0;
        for p in &inputs {
            budget += K::part_meta(p).bytes();
            take += 1;
            if take >= 2 && budget >= self.cfg.max_merge_bytes {
                break;
            }
        }
        inputs.truncate(take);
        let started = Instant::now();
        let res = self.merge(inputs, window).await;
        match &res {
            Ok(n) => {
                self.metrics.compactions.get_or_create(&self.sig()).inc();
                tracing::info!(signal = %K::SIGNAL, window = w, outputs = n, elapsed_ms = started.elapsed().as_millis() as u64, "parts merged");
            }
            Err(e) => {
                self.metrics
                    .compaction_failures
                    .get_or_create(&self.sig())
                    .inc();
                tracing::error!(signal = %K::SIGNAL, window = w, error = %e, "merge failed");
            }
        }
        self.update_gauges();
        res.map(|_| true)
    }

    async fn merge(&self, inputs: Vec<Arc<K::Part>>, window: i64) -> Result<usize> {
        let replaces: Vec<String> = inputs.iter().map(|p| K::part_meta(p).id.clone()).collect();
        let level = inputs
            .iter()
            .map(|p| K::part_meta(p).level)
            .max()
            .unwrap_or(0)
            + 1;
        let wal_boundary = inputs
            .iter()
            .map(|p| K::part_meta(p).wal_boundary)
            .max()
            .unwrap_or(0);
        let outputs = self
            .kind
            .merge(inputs.clone(), self.parts.clone(), window)
            .await?;
        let group = Group {
            id: self.parts.next_group_id(),
            size: outputs.len() as u32,
        };
        // The merged data ranks where its newest input ranked, not after newer parts.
        let order = inputs
            .iter()
            .map(|p| K::part_meta(p).rank().0)
            .max()
            .unwrap_or(0);
        let mut unopened: Option<PartMeta> = None;
        let mut published: Vec<Arc<K::Part>> = Vec::new();
        for data in outputs {
            let res = self
                .parts
                .publish(
                    K::SIGNAL,
                    data,
                    Publish {
                        level,
                        replaces: replaces.clone(),
                        group: Some(group.clone()),
                        wal_boundary,
                        order: Some(order),
                    },
                )
                .await
                .and_then(|meta| {
                    self.kind
                        .open_part(meta.clone(), &self.parts)
                        .inspect_err(|_| unopened = Some(meta))
                });
            match res {
                Ok(p) => published.push(Arc::new(p)),
                Err(e) => {
                    // Take back what this merge wrote; its inputs stay in place.
                    for p in &published {
                        let _ = self.parts.delete(K::SIGNAL, K::part_meta(p)).await;
                    }
                    if let Some(m) = unopened.take() {
                        let _ = self.parts.delete(K::SIGNAL, &m).await;
                    }
                    return Err(e);
                }
            }
        }
        let n = published.len();
        {
            let mut v = self.view.write();
            v.parts.retain(|p| !replaces.contains(&K::part_meta(p).id));
            v.parts.extend(published);
            v.parts.sort_by_key(|p| K::part_meta(p).rank());
        }
        self.garbage.lock().extend(inputs);
        self.collect_garbage().await;
        Ok(n)
    }

    /// Deletes whole parts past the retention time, then the oldest parts while the
    /// signal is over its size budget.
    pub(crate) async fn apply_retention(&self) -> Result<usize> {
        let _m = self.merge_lock.lock().await;
        let cutoff = now_ms() - self.cfg.retention.as_millis() as i64;
        let mut removed: Vec<Arc<K::Part>> = Vec::new();
        {
            let mut v = self.view.write();
            let (old, keep): (Vec<_>, Vec<_>) = v
                .parts
                .drain(..)
                .partition(|p| K::part_meta(p).max_time_ms < cutoff);
            removed.extend(old);
            v.parts = keep;
            if let Some(max) = self.cfg.max_bytes {
                let mut total: u64 = v.parts.iter().map(|p| K::part_meta(p).bytes()).sum();
                if total > max {
                    v.parts
                        .sort_by_key(|p| (K::part_meta(p).max_time_ms, K::part_meta(p).seq));
                    while total > max && !v.parts.is_empty() {
                        let p = v.parts.remove(0);
                        total -= K::part_meta(&p).bytes();
                        removed.push(p);
                    }
                    v.parts.sort_by_key(|p| K::part_meta(p).rank());
                }
            }
        }
        let n = removed.len();
        if n > 0 {
            for p in &removed {
                tracing::info!(signal = %K::SIGNAL, part = %K::part_meta(p).id, "part deleted by retention");
            }
            self.metrics
                .retention_deleted_parts
                .get_or_create(&self.sig())
                .inc_by(n as u64);
            self.garbage.lock().extend(removed);
        }
        self.collect_garbage().await;
        self.update_gauges();
        Ok(n)
    }

    /// Deletes replaced or expired parts that no query holds any more.
    pub(crate) async fn collect_garbage(&self) {
        let ready: Vec<Arc<K::Part>> = {
            let mut g = self.garbage.lock();
            let (ready, wait): (Vec<_>, Vec<_>) =
                g.drain(..).partition(|p| Arc::strong_count(p) == 1);
            *g = wait;
            ready
        };
        for p in ready {
            if let Err(e) = self.parts.delete(K::SIGNAL, K::part_meta(&p)).await {
                tracing::error!(signal = %K::SIGNAL, part = %K::part_meta(&p).id, error = %e, "deleting part failed; will retry");
                self.garbage.lock().push(p);
            }
        }
    }

    /// Checks every part against its checksums and sets corrupt ones aside.
    pub(crate) async fn scrub(&self) -> usize {
        let _m = self.merge_lock.lock().await;
        let parts: Vec<Arc<K::Part>> = self.view.read().parts.clone();
        let mut bad = 0;
        for p in parts {
            let meta = K::part_meta(&p);
            if let Err(e) = self.parts.verify(K::SIGNAL, meta).await {
                bad += 1;
                tracing::error!(signal = %K::SIGNAL, part = %meta.id, error = %e, "corrupt part set aside");
                self.metrics.corrupt_parts.get_or_create(&self.sig()).inc();
                self.view
                    .write()
                    .parts
                    .retain(|q| K::part_meta(q).id != meta.id);
                self.parts.set_aside(K::SIGNAL, &meta.id).await;
            }
        }
        self.update_gauges();
        bad
    }

    pub(crate) fn update_gauges(&self) {
        let sig = self.sig();
        let (hb, hi) = {
            let h = self.head.read();
            (K::head_bytes(&h), K::head_items(&h))
        };
        let v = self.view.read();
        let frozen_items: u64 = v.frozen.iter().map(|f| K::head_items(&f.head)).sum();
        self.metrics
            .head_bytes
            .get_or_create(&sig)
            .set((hb + self.frozen_bytes.load(Ordering::Relaxed)) as i64);
        self.metrics
            .head_items
            .get_or_create(&sig)
            .set((hi + frozen_items) as i64);
        self.metrics
            .parts
            .get_or_create(&sig)
            .set(v.parts.len() as i64);
        self.metrics
            .part_bytes
            .get_or_create(&sig)
            .set(v.parts.iter().map(|p| K::part_meta(p).bytes()).sum::<u64>() as i64);
    }

    /// Parts (and frozen heads) to read for a query, captured while the caller holds the head lock.
    pub(crate) fn parts_overlapping(&self, start_ms: i64, end_ms: i64) -> Snapshot<K> {
        let v = self.view.read();
        (
            v.frozen.iter().map(|f| f.head.clone()).collect(),
            v.parts
                .iter()
                .filter(|p| K::part_meta(p).overlaps(start_ms, end_ms))
                .cloned()
                .collect(),
        )
    }

    pub(crate) fn part_count(&self) -> usize {
        self.view.read().parts.len()
    }
}
