//! Runs the rule groups: one task per group on aligned ticks, reloads that replace
//! groups only when every file checks out, and the alert state file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use signalbox_storage::IngestSink;
use tokio::task::JoinHandle;

use super::file::{GroupSpec, Lang, expand_paths, load_files};
use super::group::{External, GroupState, RuleQuerier};
use super::state::{self, AlertsByGroup, Loaded, SavedState};
use crate::alerting::dispatch::AmAlert;

/// How often a firing alert is re-sent to the notifier (Prometheus' default).
pub const RESEND_DELAY_MS: i64 = 60_000;

/// Takes the alerts rules send (the notifier).
pub trait AlertSink: Send + Sync {
    fn send(&self, alerts: Vec<AmAlert>, now_ms: i64);
}

/// What the rule manager is given.
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// Rule files and globs, each with its language.
    pub files: Vec<(String, Lang)>,
    pub evaluation_interval: Duration,
    pub external: External,
    /// Where the alert state lives; `None` keeps it in memory only.
    pub state_path: Option<PathBuf>,
    /// A state file saved longer ago than this is ignored.
    pub outage_tolerance: Duration,
}

/// The outcome of the last (re)load, for `/api/v1/status/config`-like reporting.
#[derive(Clone, Debug, Default)]
pub struct ReloadStatus {
    pub success: bool,
    pub at_ms: i64,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

struct Slot {
    state: Arc<RwLock<GroupState>>,
    task: Option<JoinHandle<()>>,
}

/// Runs the groups and answers for their state.
pub struct RuleManager {
    opts: ManagerOptions,
    querier: Arc<dyn RuleQuerier>,
    sink: Arc<dyn IngestSink>,
    slots: RwLock<Vec<Slot>>,
    reload_lock: tokio::sync::Mutex<()>,
    status: RwLock<ReloadStatus>,
    dirty: Arc<AtomicBool>,
    /// Where firing and resolved alerts go (the notifier).
    alert_sink: RwLock<Option<Arc<dyn AlertSink>>>,
    /// Alerts read from the state file at start, given to groups as they appear.
    restored: parking_lot::Mutex<AlertsByGroup>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Spreads groups over their interval: a stable hash of file and name.
fn offset_ms(spec: &GroupSpec, interval_ms: i64) -> i64 {
    let h = xxhash_rust::xxh3::xxh3_64(format!("{}\0{}", spec.file, spec.name).as_bytes());
    (h % interval_ms.max(1) as u64) as i64
}

/// The first tick at or after `now`: `k·interval + offset`.
pub fn next_tick(now: i64, interval: i64, offset: i64) -> i64 {
    let base = (now - offset).div_euclid(interval) * interval + offset;
    if base < now { base + interval } else { base }
}

impl RuleManager {
    /// A manager with no groups yet; `start` loads the files and runs them.
    pub fn new(
        opts: ManagerOptions,
        querier: Arc<dyn RuleQuerier>,
        sink: Arc<dyn IngestSink>,
    ) -> Arc<RuleManager> {
        Arc::new(RuleManager {
            opts,
            querier,
            sink,
            slots: RwLock::new(Vec::new()),
            reload_lock: tokio::sync::Mutex::new(()),
            status: RwLock::new(ReloadStatus::default()),
            dirty: Arc::new(AtomicBool::new(false)),
            restored: parking_lot::Mutex::new(BTreeMap::new()),
            alert_sink: RwLock::new(None),
        })
    }

    /// Reads the state file (recovery rule in ARCHITECTURE.md), loads the rule files
    /// and starts the group tasks (`run = false`: groups are only evaluated through
    /// `eval_all`, for tests). Bad rule files at start are an error.
    pub async fn start(self: &Arc<Self>, run: bool) -> Result<(), Vec<String>> {
        if let Some(p) = &self.opts.state_path {
            let tol = self.opts.outage_tolerance.as_millis() as i64;
            match state::load(p, now_ms(), tol) {
                Ok(Loaded::Ok(s)) => {
                    let n: usize = s
                        .groups
                        .iter()
                        .flat_map(|g| &g.rules)
                        .map(|r| r.alerts.len())
                        .sum();
                    tracing::info!(alerts = n, "alert state restored");
                    *self.restored.lock() = s.into_map();
                }
                Ok(Loaded::Missing) => {}
                Ok(Loaded::TooOld { saved_at_ms }) => tracing::warn!(
                    saved_at_ms,
                    "alert state is older than the outage tolerance; alerts start afresh"
                ),
                Ok(Loaded::Corrupt { reason, moved_to }) => tracing::error!(
                    %reason,
                    moved_to = %moved_to.display(),
                    "alert state file is corrupt; set aside, alerts start afresh"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the alert state file; alerts start afresh")
                }
            }
        }
        self.apply(run).await
    }

    /// Re-reads the rule files. On any error nothing changes and the errors are
    /// returned (file, line and reason).
    pub async fn reload(self: &Arc<Self>) -> Result<(), Vec<String>> {
        self.apply(true).await
    }

    fn read_files(&self) -> Result<super::file::Checked, Vec<String>> {
        let mut files = Vec::new();
        for (pattern, lang) in &self.opts.files {
            for p in expand_paths(std::slice::from_ref(pattern), None).map_err(|e| vec![e])? {
                files.push((p, *lang));
            }
        }
        load_files(&files)
    }

    async fn apply(self: &Arc<Self>, run: bool) -> Result<(), Vec<String>> {
        let _guard = self.reload_lock.lock().await;
        let checked = match self.read_files() {
            Ok(c) => c,
            Err(errors) => {
                *self.status.write() = ReloadStatus {
                    success: false,
                    at_ms: now_ms(),
                    errors: errors.clone(),
                    warnings: Vec::new(),
                };
                for e in &errors {
                    tracing::error!(error = %e, "rule files rejected; previous rules stay active");
                }
                return Err(errors);
            }
        };
        for w in &checked.warnings {
            tracing::warn!(warning = %w, "rule files");
        }
        let old = self.swap_groups(checked.groups, run);
        // Groups that are gone: stop them, and mark what they wrote stale.
        let now = now_ms();
        for s in old {
            if let Some(t) = s.task {
                t.abort();
            }
            let mut g = s.state.read().clone();
            g.mark_stale(now, self.sink.as_ref()).await;
        }
        *self.status.write() = ReloadStatus {
            success: true,
            at_ms: now,
            errors: Vec::new(),
            warnings: checked.warnings,
        };
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Installs the checked groups, keeping unchanged ones running; returns the slots
    /// of groups that are gone. The swap happens under the lock, so readers see the
    /// old or the new groups.
    fn swap_groups(self: &Arc<Self>, groups: Vec<GroupSpec>, run: bool) -> Vec<Slot> {
        let mut slots = self.slots.write();
        let mut old: Vec<Slot> = std::mem::take(&mut *slots);
        let mut new_slots = Vec::new();
        for spec in groups {
            let spec = Arc::new(spec);
            // Unchanged group: keep it running as it is.
            if let Some(i) = old.iter().position(|s| s.state.read().spec.same_as(&spec)) {
                new_slots.push(old.swap_remove(i));
                continue;
            }
            let mut g = GroupState::new(spec.clone(), self.opts.evaluation_interval);
            // Same group, changed rules: alerts of rules that kept their name carry over.
            if let Some(i) = old.iter().position(|s| {
                let o = s.state.read();
                o.spec.file == spec.file && o.spec.name == spec.name
            }) {
                let prev = old.swap_remove(i);
                if let Some(t) = prev.task {
                    t.abort();
                }
                let prev = prev.state.read().clone();
                g.adopt_alerts(
                    prev.rules
                        .into_iter()
                        .map(|r| (r.spec.name.clone(), r.alerts.into_values().collect())),
                );
            }
            if let Some(saved) = self
                .restored
                .lock()
                .remove(&(spec.file.clone(), spec.name.clone()))
            {
                g.adopt_alerts(saved);
            }
            let state = Arc::new(RwLock::new(g));
            let task = run.then(|| self.spawn_group(state.clone()));
            new_slots.push(Slot { state, task });
        }
        let n: usize = new_slots.iter().map(|s| s.state.read().rules.len()).sum();
        tracing::info!(groups = new_slots.len(), rules = n, "rules loaded");
        *slots = new_slots;
        old
    }

    fn spawn_group(self: &Arc<Self>, state: Arc<RwLock<GroupState>>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let (interval, offset) = {
                let g = state.read();
                let i = g.interval.as_millis().max(1) as i64;
                (i, offset_ms(&g.spec, i))
            };
            loop {
                let now = now_ms();
                let tick = next_tick(now, interval, offset);
                tokio::time::sleep(Duration::from_millis((tick - now) as u64)).await;
                me.eval_one(&state, tick).await;
            }
        })
    }

    async fn eval_one(&self, state: &Arc<RwLock<GroupState>>, ts: i64) {
        // Evaluate a copy, so readers of the state never wait for queries.
        let mut g = state.read().clone();
        g.eval(
            ts,
            self.querier.as_ref(),
            self.sink.as_ref(),
            &self.opts.external,
        )
        .await;
        let sink = self.alert_sink.read().clone();
        let out = match sink {
            Some(_) => g.to_send(ts, RESEND_DELAY_MS),
            None => Vec::new(),
        };
        *state.write() = g;
        self.dirty.store(true, Ordering::Relaxed);
        let sink = self.alert_sink.read().clone();
        if let (Some(sink), false) = (sink, out.is_empty()) {
            let alerts = out
                .into_iter()
                .map(|(a, spec, ends)| self.outgoing(a, &spec.expr, ends))
                .collect();
            sink.send(alerts, ts);
        }
    }

    /// An alert as the notifier gets it: external labels added, a link back to the
    /// expression.
    fn outgoing(&self, a: super::Alert, expr: &str, ends: i64) -> AmAlert {
        let mut labels = a.labels;
        for (k, v) in &self.opts.external.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        AmAlert {
            labels,
            annotations: a.annotations,
            starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
            ends_at_ms: ends,
            updated_at_ms: 0,
            generator_url: format!("{}/graph?g0.expr={q}&g0.tab=1", self.opts.external.url),
            timeout: false,
        }
    }

    /// Sends firing and resolved alerts to `sink` from now on.
    pub fn set_alert_sink(&self, sink: Arc<dyn AlertSink>) {
        *self.alert_sink.write() = Some(sink);
    }

    /// Evaluates every group once at `ts_ms`, in order (tests and tools).
    pub async fn eval_all(&self, ts_ms: i64) {
        let states: Vec<_> = self.slots.read().iter().map(|s| s.state.clone()).collect();
        for s in states {
            self.eval_one(&s, ts_ms).await;
        }
    }

    /// A copy of every group's state, in file order.
    pub fn groups(&self) -> Vec<GroupState> {
        self.slots
            .read()
            .iter()
            .map(|s| s.state.read().clone())
            .collect()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.read().clone()
    }

    /// Writes the state file if an evaluation changed something since the last save.
    pub async fn save_if_dirty(&self) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(path) = self.opts.state_path.clone() else {
            return;
        };
        let saved = SavedState::of(&self.groups(), now_ms());
        let res = tokio::task::spawn_blocking(move || state::save(&path, &saved)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.dirty.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot write the alert state file");
            }
            Err(e) => tracing::error!(error = %e, "alert state writer failed"),
        }
    }

    /// Saves the state about once a second until the task is dropped.
    pub fn spawn_saver(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                me.save_if_dirty().await;
            }
        })
    }

    /// Stops the groups and writes the state a last time.
    pub async fn shutdown(&self) {
        for s in self.slots.write().iter_mut() {
            if let Some(t) = s.task.take() {
                t.abort();
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        self.save_if_dirty().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_aligned() {
        assert_eq!(next_tick(0, 60_000, 0), 0);
        assert_eq!(next_tick(1, 60_000, 0), 60_000);
        assert_eq!(next_tick(61_000, 60_000, 5_000), 65_000);
        assert_eq!(next_tick(65_000, 60_000, 5_000), 65_000);
        assert_eq!(next_tick(66_000, 60_000, 5_000), 125_000);
    }
}
