//! Alertmanager's dispatching, as a state machine driven by the caller's clock: the
//! alert store, the routing tree, aggregation groups with `group_wait`,
//! `group_interval` and `repeat_interval`, silences and inhibition, and the
//! notification log that decides whether a flush needs sending. No timers live here:
//! `due(now)` returns the flushes whose time has come, `complete` records their
//! outcome. That makes grouping and repeat behaviour testable with a fake clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::{AmConfig, GroupBy, Integration, Route};
use super::silence::Silences;

/// Labels and annotations.
pub type LabelMap = BTreeMap<String, String>;

/// An alert as Alertmanager keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmAlert {
    pub labels: LabelMap,
    pub annotations: LabelMap,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub generator_url: String,
    /// `ends_at` was filled in from `resolve_timeout`, not given by the sender.
    pub timeout: bool,
}

impl AmAlert {
    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at_ms <= now
    }

    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Alertmanager's `Alert.Merge`: the younger alert wins, with the earliest start and
    /// the latest explicit end.
    fn merge(&self, o: &AmAlert, now: i64) -> AmAlert {
        if o.updated_at_ms < self.updated_at_ms {
            return o.merge(self, now);
        }
        let mut res = o.clone();
        res.starts_at_ms = self.starts_at_ms.min(o.starts_at_ms);
        if o.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at_ms > o.ends_at_ms {
                res.ends_at_ms = self.ends_at_ms;
            }
        } else if self.ends_at_ms > o.ends_at_ms && !self.timeout {
            res.ends_at_ms = self.ends_at_ms;
        }
        res
    }
}

/// Alertmanager's label-set fingerprint (FNV-1a 64 over sorted names and values, each
/// followed by 0xff), printed as 16 hex digits in its APIs and webhooks.
pub fn fingerprint(labels: &LabelMap) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(&[0xff]);
        add(v.as_bytes());
        add(&[0xff]);
    }
    h
}

/// `{a="b", c="d"}` as Alertmanager prints label sets in group keys.
pub fn labels_text(l: &LabelMap) -> String {
    let v: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", v.join(", "))
}

/// The routes an alert goes to: the deepest matching ones, siblings tried in order
/// until one matches without `continue`.
pub fn match_routes<'a>(route: &'a Route, labels: &LabelMap) -> Vec<&'a Route> {
    let get = |n: &str| labels.get(n).map_or("", String::as_str);
    if !route.matchers.iter().all(|m| m.matches(get(&m.name))) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for child in &route.routes {
        let m = match_routes(child, labels);
        if !m.is_empty() {
            out.extend(m);
            if !child.continue_ {
                break;
            }
        }
    }
    if out.is_empty() {
        out.push(route);
    }
    out
}

/// What was last sent for a group to one integration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub at_ms: i64,
}

/// Notification log key: group key, receiver, integration index.
pub type NflogKey = (String, String, usize);

struct AggrGroup {
    /// Alertmanager's group key (`{}/{…}:{alertname="x"}`).
    key: String,
    route: Route,
    group_labels: LabelMap,
    alerts: BTreeMap<u64, AmAlert>,
    next_flush_ms: i64,
    has_flushed: bool,
    in_flight: bool,
}

/// One integration's share of a flush: what to send, if anything.
#[derive(Clone, Debug)]
pub struct Job {
    pub receiver: String,
    pub index: usize,
    pub integration: Integration,
    /// Alerts to send (resolved ones only if the integration sends them).
    pub alerts: Vec<AmAlert>,
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
}

/// A group whose time has come: the jobs that need sending.
#[derive(Clone, Debug)]
pub struct Flush {
    /// Which group (its place in the tree and its labels).
    pub group_id: String,
    pub group_key: String,
    pub receiver: String,
    pub group_labels: LabelMap,
    /// Every alert of the group at flush time (endsAt cleared for firing ones).
    pub alerts: Vec<AmAlert>,
    pub jobs: Vec<Job>,
    pub now_ms: i64,
}

/// Why an alert is not notified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suppression {
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

impl Suppression {
    pub fn muted(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

/// The dispatcher: alerts, groups, silences, notification log.
pub struct Dispatcher {
    config: Arc<AmConfig>,
    alerts: BTreeMap<u64, AmAlert>,
    groups: BTreeMap<String, AggrGroup>,
    pub(crate) nflog: BTreeMap<NflogKey, NflogEntry>,
    pub(crate) silences: Silences,
}

/// How long a resolved alert stays in the store (and in `/api/v2/alerts`).
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

impl Dispatcher {
    pub fn new(config: Arc<AmConfig>) -> Dispatcher {
        Dispatcher {
            config,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            nflog: BTreeMap::new(),
            silences: Silences::default(),
        }
    }

    pub fn config(&self) -> &Arc<AmConfig> {
        &self.config
    }

    /// A new configuration: groups are rebuilt from the stored alerts (like
    /// Alertmanager's reload); the notification log and silences stay.
    pub fn set_config(&mut self, config: Arc<AmConfig>, now: i64) {
        self.config = config;
        self.groups.clear();
        let alerts: Vec<AmAlert> = self.alerts.values().cloned().collect();
        for a in alerts {
            self.route(a, now);
        }
    }

    /// Receives alerts (from the rules or `POST /api/v2/alerts`). An alert without an
    /// end gets `now + resolve_timeout`.
    pub fn put(&mut self, alerts: Vec<AmAlert>, now: i64) {
        for mut a in alerts {
            if a.starts_at_ms == 0 {
                a.starts_at_ms = now;
            }
            if a.ends_at_ms == 0 {
                a.ends_at_ms = now + self.config.resolve_timeout.as_millis() as i64;
                a.timeout = true;
            }
            a.updated_at_ms = now;
            let fp = a.fingerprint();
            if let Some(old) = self.alerts.get(&fp) {
                let overlaps = (a.ends_at_ms > old.starts_at_ms && a.ends_at_ms < old.ends_at_ms)
                    || (a.starts_at_ms > old.starts_at_ms && a.starts_at_ms < old.ends_at_ms);
                if overlaps {
                    a = old.merge(&a, now);
                }
            }
            self.alerts.insert(fp, a.clone());
            self.route(a, now);
        }
    }

    fn route(&mut self, a: AmAlert, now: i64) {
        let fp = a.fingerprint();
        let routes: Vec<Route> = match_routes(&self.config.route, &a.labels)
            .into_iter()
            .cloned()
            .collect();
        for r in routes {
            let group_labels: LabelMap = match &r.group_by {
                GroupBy::All => a.labels.clone(),
                GroupBy::Labels(ls) => ls
                    .iter()
                    .filter_map(|l| a.labels.get(l).map(|v| (l.clone(), v.clone())))
                    .collect(),
            };
            let key = format!("{}:{}", r.key, labels_text(&group_labels));
            let id = format!("{}:{}", r.id, labels_text(&group_labels));
            let g = self.groups.entry(id).or_insert_with(|| AggrGroup {
                key,
                next_flush_ms: now + r.group_wait.as_millis() as i64,
                route: r.clone(),
                group_labels,
                alerts: BTreeMap::new(),
                has_flushed: false,
                in_flight: false,
            });
            // An alert that started longer than group_wait ago need not wait.
            if !g.has_flushed && a.starts_at_ms + (g.route.group_wait.as_millis() as i64) < now {
                g.next_flush_ms = g.next_flush_ms.min(now);
            }
            g.alerts.insert(fp, a.clone());
        }
    }

    /// Whether (and why) an alert is muted now.
    pub fn suppression(&self, a: &AmAlert, now: i64) -> Suppression {
        let silenced_by = self.silences.silencing(&a.labels, now);
        let mut inhibited_by = Vec::new();
        let get = |l: &LabelMap, n: &str| l.get(n).cloned().unwrap_or_default();
        for rule in &self.config.inhibit_rules {
            if !rule
                .target
                .iter()
                .all(|m| m.matches(&get(&a.labels, &m.name)))
            {
                continue;
            }
            for (sfp, s) in &self.alerts {
                if s.resolved_at(now) || s.labels == a.labels {
                    continue;
                }
                if rule
                    .source
                    .iter()
                    .all(|m| m.matches(&get(&s.labels, &m.name)))
                    && rule
                        .equal
                        .iter()
                        .all(|l| get(&s.labels, l) == get(&a.labels, l))
                {
                    let id = format!("{sfp:016x}");
                    if !inhibited_by.contains(&id) {
                        inhibited_by.push(id);
                    }
                }
            }
        }
        Suppression {
            silenced_by,
            inhibited_by,
        }
    }

    /// The flushes due at `now`. Each group is flushed again `group_interval` later;
    /// a group with a flush still being delivered waits for it.
    pub fn due(&mut self, now: i64) -> Vec<Flush> {
        let keys: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush_ms <= now && !g.in_flight)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for id in keys {
            let Some(g) = self.groups.get(&id) else {
                continue;
            };
            let mut alerts: Vec<AmAlert> = g
                .alerts
                .values()
                .map(|a| {
                    let mut a = a.clone();
                    if !a.resolved_at(now) {
                        a.ends_at_ms = 0;
                    }
                    a
                })
                .collect();
            alerts.sort_by(|a, b| {
                (a.labels.get("alertname"), &a.labels).cmp(&(b.labels.get("alertname"), &b.labels))
            });
            let visible: Vec<AmAlert> = alerts
                .iter()
                .filter(|a| !self.suppression(a, now).muted())
                .cloned()
                .collect();
            let (receiver, repeat) = (
                g.route.receiver.clone(),
                g.route.repeat_interval.as_millis() as i64,
            );
            // Firing alerts had their end cleared above.
            let firing: BTreeSet<u64> = visible
                .iter()
                .filter(|a| a.ends_at_ms == 0)
                .map(AmAlert::fingerprint)
                .collect();
            let resolved: BTreeSet<u64> = visible
                .iter()
                .filter(|a| a.ends_at_ms != 0)
                .map(AmAlert::fingerprint)
                .collect();
            let mut jobs = Vec::new();
            if let Some(r) = self.config.receiver(&receiver) {
                for (i, integ) in r.integrations.iter().enumerate() {
                    let entry = self.nflog.get(&(g.key.clone(), receiver.clone(), i));
                    if !needs_update(
                        entry,
                        &firing,
                        &resolved,
                        integ.send_resolved(),
                        repeat,
                        now,
                    ) {
                        continue;
                    }
                    let send: Vec<AmAlert> = visible
                        .iter()
                        .filter(|a| integ.send_resolved() || a.ends_at_ms == 0)
                        .cloned()
                        .collect();
                    jobs.push(Job {
                        receiver: receiver.clone(),
                        index: i,
                        integration: integ.clone(),
                        alerts: send,
                        firing: firing.clone(),
                        resolved: resolved.clone(),
                    });
                }
            }
            if let Some(g) = self.groups.get_mut(&id) {
                g.next_flush_ms = now + g.route.group_interval.as_millis() as i64;
                g.has_flushed = true;
                g.in_flight = true;
                out.push(Flush {
                    group_id: id.clone(),
                    group_key: g.key.clone(),
                    receiver,
                    group_labels: g.group_labels.clone(),
                    alerts,
                    jobs,
                    now_ms: now,
                });
            }
        }
        out
    }

    /// Records the outcome of a flush: the notification log of every job that was
    /// delivered (or had nothing to send), and — when all were — resolved alerts leave
    /// the group. Empty groups go away.
    pub fn complete(&mut self, flush: &Flush, delivered: &[bool], now: i64) {
        let mut all_ok = true;
        for (job, ok) in flush.jobs.iter().zip(delivered) {
            if *ok {
                self.nflog.insert(
                    (flush.group_key.clone(), job.receiver.clone(), job.index),
                    NflogEntry {
                        firing: job.firing.clone(),
                        resolved: job.resolved.clone(),
                        at_ms: flush.now_ms,
                    },
                );
            } else {
                all_ok = false;
            }
        }
        if let Some(g) = self.groups.get_mut(&flush.group_id) {
            g.in_flight = false;
            if all_ok {
                for a in &flush.alerts {
                    let fp = a.fingerprint();
                    let unchanged = g
                        .alerts
                        .get(&fp)
                        .is_some_and(|cur| cur.updated_at_ms == a.updated_at_ms);
                    if a.ends_at_ms != 0 && unchanged {
                        g.alerts.remove(&fp);
                    }
                }
            }
            if g.alerts.is_empty() {
                self.groups.remove(&flush.group_id);
            }
        }
        self.gc(now);
    }

    /// Drops resolved alerts from the store after a while, expired silences after
    /// theirs, and log entries of groups that no longer exist after a repeat interval.
    pub fn gc(&mut self, now: i64) {
        self.alerts
            .retain(|_, a| !(a.resolved_at(now) && now - a.ends_at_ms > RESOLVED_RETENTION_MS));
        self.silences.gc(now);
        let groups = &self.groups;
        let keep_ms = 5 * 24 * 3600 * 1000;
        self.nflog
            .retain(|k, e| groups.values().any(|g| g.key == k.0) || now - e.at_ms < keep_ms);
    }

    /// Every alert in the store with the receivers its routes lead to.
    pub fn alerts(&self) -> Vec<(&AmAlert, Vec<String>)> {
        self.alerts
            .values()
            .map(|a| {
                let mut rs: Vec<String> = match_routes(&self.config.route, &a.labels)
                    .into_iter()
                    .map(|r| r.receiver.clone())
                    .collect();
                rs.dedup();
                (a, rs)
            })
            .collect()
    }

    /// Groups as `/api/v2/alerts/groups` shows them: labels, receiver, alert fingerprints.
    pub fn groups(&self) -> Vec<(LabelMap, String, Vec<u64>)> {
        self.groups
            .values()
            .map(|g| {
                (
                    g.group_labels.clone(),
                    g.route.receiver.clone(),
                    g.alerts.keys().copied().collect(),
                )
            })
            .collect()
    }

    pub fn alert(&self, fp: u64) -> Option<&AmAlert> {
        self.alerts.get(&fp)
    }
}

/// Alertmanager's dedup stage: is there something new to tell this integration?
fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver once if it had been told of firing alerts.
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    e.at_ms + repeat_ms <= now
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
