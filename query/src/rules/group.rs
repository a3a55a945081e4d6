//! Evaluation of one rule group at one time, with Prometheus' semantics: recording
//! rules write series (and staleness markers for series that went away), alerting
//! rules move alerts through pending → firing → inactive and write `ALERTS` and
//! `ALERTS_FOR_STATE`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use signalbox_storage::{IngestSink, Labels, MetricsBatch, STALE_NAN_BITS, Sample, SeriesPoints};

use super::file::{GroupSpec, Lang, RuleKind, RuleSpec};
use super::template::TemplateData;

/// How long a resolved alert is kept (for resolved notifications).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Runs rule expressions: an instant query at `t_ms`, returning a vector (a scalar is
/// one sample without labels).
#[async_trait]
pub trait RuleQuerier: Send + Sync {
    async fn query(&self, lang: Lang, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
}

/// The server's external labels and URL, seen by templates.
#[derive(Clone, Debug, Default)]
pub struct External {
    pub labels: BTreeMap<String, String>,
    pub url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule: a label set and its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The full label set, `alertname` included.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub active_at_ms: i64,
    #[serde(default)]
    pub fired_at_ms: Option<i64>,
    #[serde(default)]
    pub resolved_at_ms: Option<i64>,
    #[serde(default)]
    pub keep_firing_since_ms: Option<i64>,
    #[serde(default)]
    pub last_sent_ms: Option<i64>,
    #[serde(with = "float_text")]
    pub value: f64,
}

/// Floats as text in the state file, so NaN and infinities survive JSON.
mod float_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err(String),
}

/// A rule with what its evaluations left behind.
#[derive(Clone, Debug)]
pub struct RuleState {
    pub spec: Arc<RuleSpec>,
    /// Alerts by label set (alerting rules).
    pub alerts: BTreeMap<BTreeMap<String, String>, Alert>,
    pub health: Health,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
    /// Series written by the last successful evaluation (for staleness markers).
    written: HashSet<Labels>,
}

/// A group with the state of its rules.
#[derive(Clone, Debug)]
pub struct GroupState {
    pub spec: Arc<GroupSpec>,
    pub interval: Duration,
    pub rules: Vec<RuleState>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

impl GroupState {
    pub fn new(spec: Arc<GroupSpec>, default_interval: Duration) -> GroupState {
        let rules = spec
            .rules
            .iter()
            .map(|r| RuleState {
                spec: r.clone(),
                alerts: BTreeMap::new(),
                health: Health::Unknown,
                last_eval_ms: None,
                eval_duration: Duration::ZERO,
                written: HashSet::new(),
            })
            .collect();
        GroupState {
            interval: spec.interval.unwrap_or(default_interval),
            spec,
            rules,
            last_eval_ms: None,
            eval_duration: Duration::ZERO,
        }
    }

    /// Evaluates every rule in order at `ts_ms`; what rules write is visible to the
    /// rules after them.
    pub async fn eval(
        &mut self,
        ts_ms: i64,
        q: &dyn RuleQuerier,
        sink: &dyn IngestSink,
        ext: &External,
    ) {
        let started = Instant::now();
        let qt = ts_ms - self.spec.query_offset.as_millis() as i64;
        let (lang, limit) = (self.spec.lang, self.spec.limit);
        for r in &mut self.rules {
            let t0 = Instant::now();
            let out = match q.query(lang, &r.spec.expr, qt).await {
                Err(e) => Err(e),
                Ok(v) => match &r.spec.kind {
                    RuleKind::Record => record(&r.spec, v, limit),
                    RuleKind::Alert { .. } => r.alert(v, ts_ms, limit, ext),
                },
            };
            r.last_eval_ms = Some(ts_ms);
            match out {
                Err(e) => r.health = Health::Err(e),
                Ok(series) => {
                    let now: HashSet<Labels> = series.iter().map(|(l, _)| l.clone()).collect();
                    let mut batch: Vec<(Labels, f64)> = series;
                    for gone in r.written.difference(&now) {
                        batch.push((gone.clone(), stale()));
                    }
                    r.health = match write(sink, batch, qt).await {
                        Ok(()) => Health::Ok,
                        Err(e) => Health::Err(format!("writing rule results: {e}")),
                    };
                    r.written = now;
                }
            }
            r.eval_duration = t0.elapsed();
        }
        self.last_eval_ms = Some(ts_ms);
        self.eval_duration = started.elapsed();
    }

    /// Staleness markers for everything the group wrote last (when it is removed).
    pub async fn mark_stale(&mut self, ts_ms: i64, sink: &dyn IngestSink) {
        let mut batch = Vec::new();
        for r in &mut self.rules {
            batch.extend(r.written.drain().map(|l| (l, stale())));
        }
        if let Err(e) = write(sink, batch, ts_ms).await {
            tracing::warn!(group = %self.spec.name, error = %e, "could not write staleness markers");
        }
    }

    /// The alerts to hand to the notifier now, as Prometheus sends them: firing ones
    /// every `resend_ms` at most, with an end `4 × max(interval, resend)` ahead (so
    /// they resolve by themselves if evaluation stops); resolved ones at once and then
    /// as often while they are kept, with their resolve time as end. Pending alerts are
    /// not sent.
    pub fn to_send(&mut self, ts: i64, resend_ms: i64) -> Vec<(Alert, Arc<RuleSpec>, i64)> {
        let delta = (self.interval.as_millis() as i64).max(resend_ms);
        let mut out = Vec::new();
        for r in &mut self.rules {
            for a in r.alerts.values_mut() {
                if a.state == AlertState::Pending {
                    continue;
                }
                let resolved_since = matches!((a.resolved_at_ms, a.last_sent_ms), (Some(r), Some(s)) if r > s)
                    || (a.resolved_at_ms.is_some() && a.last_sent_ms.is_none());
                let due = a.last_sent_ms.is_none_or(|s| s + resend_ms <= ts);
                if !(resolved_since || due) {
                    continue;
                }
                a.last_sent_ms = Some(ts);
                let ends = a.resolved_at_ms.unwrap_or(ts + 4 * delta);
                out.push((a.clone(), r.spec.clone(), ends));
            }
        }
        out
    }

    /// Takes over the alerts of `old` for rules with the same name (a reload that
    /// changed nothing in a rule, or state read back after a restart).
    pub fn adopt_alerts(&mut self, old: impl IntoIterator<Item = (String, Vec<Alert>)>) {
        for (name, alerts) in old {
            if let Some(r) = self
                .rules
                .iter_mut()
                .find(|r| r.spec.is_alert() && r.spec.name == name)
            {
                for a in alerts {
                    r.alerts.insert(a.labels.clone(), a);
                }
            }
        }
    }
}

async fn write(sink: &dyn IngestSink, series: Vec<(Labels, f64)>, t: i64) -> Result<(), String> {
    if series.is_empty() {
        return Ok(());
    }
    let batch = MetricsBatch {
        series: series
            .into_iter()
            .map(|(labels, v)| SeriesPoints {
                starts: Vec::new(),
                labels,
                samples: vec![Sample { t, v }],
                histograms: Vec::new(),
                exemplars: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    let out = sink.write_metrics(batch).await.map_err(|e| e.to_string())?;
    if out.rejected > 0 {
        return Err(out.reasons.join("; "));
    }
    Ok(())
}

/// A recording rule's output series.
fn record(
    spec: &RuleSpec,
    v: Vec<(Labels, f64)>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::with_capacity(v.len());
    let mut seen = HashSet::new();
    for (l, f) in v {
        let mut m = labels_map(&l);
        m.insert("__name__".into(), spec.name.clone());
        for (k, val, _) in &spec.labels {
            m.insert(k.clone(), val.clone());
        }
        let labels = Labels::from_pairs(m);
        if !seen.insert(labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((labels, f));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

impl RuleState {
    /// Updates the alerts from a query result; returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples.
    fn alert(
        &mut self,
        v: Vec<(Labels, f64)>,
        ts: i64,
        limit: usize,
        ext: &External,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let RuleKind::Alert {
            hold,
            keep_firing_for,
            annotations,
        } = &self.spec.kind
        else {
            return Ok(Vec::new());
        };
        let hold = hold.as_millis() as i64;
        let keep = keep_firing_for.as_millis() as i64;
        let mut fresh: BTreeMap<BTreeMap<String, String>, Alert> = BTreeMap::new();
        for (l, f) in v {
            let mut series = labels_map(&l);
            series.remove("__name__");
            let data = TemplateData {
                labels: series.clone(),
                external_labels: ext.labels.clone(),
                external_url: ext.url.clone(),
                value: f,
            };
            let mut labels = series;
            for (k, _, t) in &self.spec.labels {
                let val = match t {
                    Some(t) => t
                        .render(&data)
                        .unwrap_or_else(|e| format!("<error expanding template: {e}>")),
                    None => String::new(),
                };
                if val.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.clone(), val);
                }
            }
            labels.insert("alertname".into(), self.spec.name.clone());
            let mut ann = BTreeMap::new();
            for (k, _, t) in annotations {
                let val = t
                    .render(&data)
                    .unwrap_or_else(|e| format!("<error expanding template: {e}>"));
                ann.insert(k.clone(), val);
            }
            if fresh.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            fresh.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations: ann,
                    state: AlertState::Pending,
                    active_at_ms: ts,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    keep_firing_since_ms: None,
                    last_sent_ms: None,
                    value: f,
                },
            );
        }
        let present: HashSet<BTreeMap<String, String>> = fresh.keys().cloned().collect();
        for (k, a) in fresh {
            match self.alerts.get_mut(&k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.alerts.insert(k, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active = 0usize;
        let mut drop = Vec::new();
        for (k, a) in &mut self.alerts {
            if !present.contains(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts);
                    keep_firing = ts - since < keep;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at_ms
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    drop.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since_ms = None;
            }
            active += 1;
            if a.state == AlertState::Pending && ts - a.active_at_ms >= hold {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts);
            }
            let mut l = a.labels.clone();
            l.insert("__name__".into(), "ALERTS".into());
            l.insert("alertstate".into(), a.state.as_str().into());
            out.push((Labels::from_pairs(l), 1.0));
            let mut l = a.labels.clone();
            l.insert("__name__".into(), "ALERTS_FOR_STATE".into());
            out.push((Labels::from_pairs(l), (a.active_at_ms / 1000) as f64));
        }
        for k in drop {
            self.alerts.remove(&k);
        }
        if limit > 0 && active > limit {
            self.alerts.clear();
            return Err(format!("exceeded limit of {limit} with {active} alerts"));
        }
        Ok(out)
    }

    /// Alerts that are pending or firing.
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .filter(|a| a.state != AlertState::Inactive)
    }
}

#[cfg(test)]
mod tests;
