//! Delivery: the payloads of each integration, retries with backoff and timeouts,
//! delivery status (API and metrics), forwarding to external Alertmanagers, and the
//! loop that flushes due groups. Secrets (URLs, passwords) never reach logs or the API:
//! errors are reported without the URL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use super::config::{AmConfig, Integration, Secret};
use super::dispatch::{AmAlert, Dispatcher, Flush, Job, LabelMap, NflogEntry};
use super::silence::Silences;
use crate::rules::api::rfc3339;

const MAGIC: &str = "signalbox-notify-state 1";

/// An external Alertmanager that gets every alert, as Prometheus sends them.
#[derive(Clone, Debug)]
pub struct ForwardTarget {
    /// Base URL; alerts go to `<url>/api/v2/alerts`.
    pub url: Secret,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// Shown to receivers as `externalURL`.
    pub external_url: String,
    /// Where silences and the notification log are kept; `None`: memory only.
    pub state_path: Option<PathBuf>,
    /// First retry delay; doubled after each failure, at most 30 s.
    pub retry_base: Duration,
    /// Attempts per notification before it waits for the group's next flush.
    pub max_attempts: u32,
    pub forward: Vec<ForwardTarget>,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            external_url: String::new(),
            state_path: None,
            retry_base: Duration::from_secs(1),
            max_attempts: 4,
            forward: Vec::new(),
        }
    }
}

/// How deliveries to one integration went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    pub receiver: String,
    pub integration: String,
    pub index: usize,
    #[serde(rename = "lastAttempt")]
    pub last_attempt_ms: Option<i64>,
    #[serde(rename = "lastSuccess")]
    pub last_success_ms: Option<i64>,
    #[serde(rename = "lastError")]
    pub last_error: Option<String>,
    pub sent: u64,
    pub failed: u64,
}

#[derive(Clone, Default)]
struct Metrics {
    total: Family<Vec<(String, String)>, Counter>,
    failed: Family<Vec<(String, String)>, Counter>,
}

#[derive(Serialize, Deserialize, Default)]
struct SavedState {
    silences: Silences,
    nflog: Vec<((String, String, usize), NflogEntry)>,
}

/// The notifier: dispatcher, deliveries and their status.
pub struct Notifier {
    pub(crate) dispatcher: Mutex<Dispatcher>,
    http: reqwest::Client,
    opts: NotifierOptions,
    status: Mutex<BTreeMap<(String, usize), Delivery>>,
    metrics: Metrics,
    dirty: AtomicBool,
    pub(crate) started_ms: i64,
}

fn now_ms() -> i64 {
    crate::rules::manager::now_ms()
}

/// `reqwest` errors name the URL, which may hold a token; this drops it.
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

#[derive(Serialize)]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: &'a LabelMap,
    annotations: &'a LabelMap,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

/// Alertmanager's webhook message, version 4, fields in its order.
#[derive(Serialize)]
struct WebhookMessage<'a> {
    receiver: &'a str,
    status: &'static str,
    alerts: Vec<WebhookAlert<'a>>,
    #[serde(rename = "groupLabels")]
    group_labels: &'a LabelMap,
    #[serde(rename = "commonLabels")]
    common_labels: LabelMap,
    #[serde(rename = "commonAnnotations")]
    common_annotations: LabelMap,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'a str,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: usize,
}

fn status_of(a: &AmAlert) -> &'static str {
    if a.ends_at_ms == 0 {
        "firing"
    } else {
        "resolved"
    }
}

/// The JSON body a webhook receives (Go's encoder ends it with a newline).
pub fn webhook_body(flush: &Flush, job: &Job, max_alerts: usize, external_url: &str) -> Vec<u8> {
    let all = &job.alerts;
    let shown = if max_alerts > 0 && all.len() > max_alerts {
        &all[..max_alerts]
    } else {
        &all[..]
    };
    let msg = WebhookMessage {
        receiver: &job.receiver,
        status: if all.iter().any(|a| a.ends_at_ms == 0) {
            "firing"
        } else {
            "resolved"
        },
        alerts: shown
            .iter()
            .map(|a| WebhookAlert {
                status: status_of(a),
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: rfc3339(Some(a.starts_at_ms)),
                ends_at: rfc3339((a.ends_at_ms != 0).then_some(a.ends_at_ms)),
                generator_url: &a.generator_url,
                fingerprint: format!("{:016x}", a.fingerprint()),
            })
            .collect(),
        group_labels: &flush.group_labels,
        common_labels: super::message::common_labels(job),
        common_annotations: super::message::common_annotations(job),
        external_url,
        version: "4",
        group_key: &flush.group_key,
        truncated_alerts: all.len() - shown.len(),
    };
    go_json(serde_json::to_string(&msg).unwrap_or_default())
}

/// JSON as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped, and a
/// newline at the end. (These characters only occur inside strings here.)
fn go_json(s: String) -> Vec<u8> {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out.into_bytes()
}

/// An alert as Prometheus posts it to an Alertmanager (`POST /api/v2/alerts`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PostableAlert {
    #[serde(default)]
    pub annotations: LabelMap,
    #[serde(rename = "endsAt", default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(rename = "startsAt", default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    pub labels: LabelMap,
}

impl PostableAlert {
    pub fn of(a: &AmAlert) -> PostableAlert {
        PostableAlert {
            annotations: a.annotations.clone(),
            ends_at: (a.ends_at_ms != 0).then(|| rfc3339(Some(a.ends_at_ms))),
            starts_at: Some(rfc3339(Some(a.starts_at_ms))),
            generator_url: a.generator_url.clone(),
            labels: a.labels.clone(),
        }
    }
}

impl Notifier {
    pub fn new(
        config: Arc<AmConfig>,
        opts: NotifierOptions,
        registry: Option<&mut Registry>,
    ) -> Arc<Notifier> {
        let metrics = Metrics::default();
        if let Some(r) = registry {
            r.register(
                "notifications",
                "Notifications attempted, by integration",
                metrics.total.clone(),
            );
            r.register(
                "notifications_failed",
                "Notification attempts that failed, by integration",
                metrics.failed.clone(),
            );
        }
        let mut d = Dispatcher::new(config);
        if let Some(p) = &opts.state_path {
            match crate::statefile::read(p, MAGIC, |b| {
                serde_json::from_slice::<SavedState>(b).map_err(|e| format!("bad JSON: {e}"))
            }) {
                Ok(Ok(Some(s))) => {
                    tracing::info!(
                        silences = s.silences.all().count(),
                        "notification state restored"
                    );
                    d.silences = s.silences;
                    d.nflog = s.nflog.into_iter().collect();
                }
                Ok(Ok(None)) => {}
                Ok(Err((reason, moved_to))) => tracing::error!(
                    %reason,
                    moved_to = %moved_to.display(),
                    "notification state file is corrupt; set aside, silences start empty"
                ),
                Err(e) => tracing::error!(error = %e, "cannot read the notification state file"),
            }
        }
        Arc::new(Notifier {
            dispatcher: Mutex::new(d),
            http: super::tls::http_client(),
            opts,
            status: Mutex::new(BTreeMap::new()),
            metrics,
            dirty: AtomicBool::new(false),
            started_ms: now_ms(),
        })
    }

    pub fn external_url(&self) -> &str {
        &self.opts.external_url
    }

    pub fn config(&self) -> Arc<AmConfig> {
        self.dispatcher.lock().config().clone()
    }

    pub fn set_config(&self, c: Arc<AmConfig>) {
        self.dispatcher.lock().set_config(c, now_ms());
    }

    /// Takes alerts in (and forwards them to external Alertmanagers, if any).
    pub fn put(self: &Arc<Self>, alerts: Vec<AmAlert>, now: i64) {
        if alerts.is_empty() {
            return;
        }
        if !self.opts.forward.is_empty() {
            let me = self.clone();
            let body: Vec<PostableAlert> = alerts.iter().map(PostableAlert::of).collect();
            tokio::spawn(async move { me.forward(body).await });
        }
        self.dispatcher.lock().put(alerts, now);
    }

    async fn forward(&self, body: Vec<PostableAlert>) {
        for (i, t) in self.opts.forward.iter().enumerate() {
            let base = match t.url.value() {
                Ok(u) => u,
                Err(e) => {
                    self.record("alertmanager", "alertmanager", i, &Err(e));
                    continue;
                }
            };
            let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
            let res = self
                .http
                .post(url)
                .timeout(t.timeout)
                .json(&body)
                .send()
                .await
                .map_err(describe)
                .and_then(|r| {
                    if r.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("unexpected status {}", r.status()))
                    }
                });
            self.record("alertmanager", "alertmanager", i, &res);
        }
    }

    fn record(&self, receiver: &str, integration: &str, index: usize, res: &Result<(), String>) {
        let labels = vec![("integration".to_string(), integration.to_string())];
        self.metrics.total.get_or_create(&labels).inc();
        let now = now_ms();
        let mut st = self.status.lock();
        let d = st
            .entry((receiver.to_string(), index))
            .or_insert_with(|| Delivery {
                receiver: receiver.to_string(),
                integration: integration.to_string(),
                index,
                ..Default::default()
            });
        d.last_attempt_ms = Some(now);
        match res {
            Ok(()) => {
                d.sent += 1;
                d.last_success_ms = Some(now);
                d.last_error = None;
            }
            Err(e) => {
                self.metrics.failed.get_or_create(&labels).inc();
                d.failed += 1;
                d.last_error = Some(e.clone());
                tracing::warn!(receiver, integration, index, error = %e, "notification failed");
            }
        }
    }

    /// Delivery status of every integration that was tried.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.status.lock().values().cloned().collect()
    }

    async fn send_once(&self, flush: &Flush, job: &Job) -> Result<(), String> {
        match &job.integration {
            Integration::Webhook(w) => {
                let body = webhook_body(flush, job, w.max_alerts, &self.opts.external_url);
                let r = self
                    .http
                    .post(w.url.value()?)
                    .timeout(w.timeout)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(describe)?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("unexpected status code {}", r.status().as_u16()))
                }
            }
            Integration::Slack(s) => {
                super::slack::send(&self.http, s, flush, job, &self.opts.external_url).await
            }
            Integration::Email(e) => {
                super::email::send(e, flush, job, &self.opts.external_url).await
            }
        }
    }

    /// Delivers one job, retrying with backoff. Nothing to send counts as delivered.
    async fn deliver_job(&self, flush: &Flush, job: &Job) -> bool {
        if job.alerts.is_empty() {
            return true;
        }
        let mut delay = self.opts.retry_base;
        for attempt in 1..=self.opts.max_attempts.max(1) {
            let res = self.send_once(flush, job).await;
            self.record(&job.receiver, job.integration.kind(), job.index, &res);
            if res.is_ok() {
                return true;
            }
            if attempt < self.opts.max_attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
        false
    }

    /// Delivers a flush (its jobs at once) and records the outcome.
    pub async fn deliver(&self, flush: Flush) {
        let results =
            futures::future::join_all(flush.jobs.iter().map(|j| self.deliver_job(&flush, j))).await;
        self.dispatcher.lock().complete(&flush, &results, now_ms());
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Delivers everything due at `now` and waits for it (tests drive time this way).
    pub async fn flush_due(&self, now: i64) {
        let due = self.dispatcher.lock().due(now);
        for f in due {
            self.deliver(f).await;
        }
    }

    /// Marks the persisted state (silences) as changed.
    pub fn touch(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes silences and the notification log if they changed.
    pub async fn save_if_dirty(&self) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(path) = self.opts.state_path.clone() else {
            return;
        };
        let body = {
            let d = self.dispatcher.lock();
            serde_json::to_vec(&SavedState {
                silences: d.silences.clone(),
                nflog: d
                    .nflog
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
        };
        let Ok(body) = body else { return };
        match tokio::task::spawn_blocking(move || crate::statefile::write(&path, MAGIC, &body))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.dirty.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot write the notification state file");
            }
            Err(e) => tracing::error!(error = %e, "notification state writer failed"),
        }
    }

    /// Flushes due groups (each delivery on its own task) and saves state, until dropped.
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut n = 0u64;
            loop {
                tick.tick().await;
                let due = me.dispatcher.lock().due(now_ms());
                for f in due {
                    let m = me.clone();
                    tokio::spawn(async move { m.deliver(f).await });
                }
                n += 1;
                if n.is_multiple_of(4) {
                    me.dispatcher.lock().gc(now_ms());
                    me.save_if_dirty().await;
                }
            }
        })
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
