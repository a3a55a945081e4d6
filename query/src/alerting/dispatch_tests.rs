//! Grouping, waits, repeats, resolves, silences and inhibition on a fake clock.

use super::*;
use crate::alerting::config::parse;
use crate::alerting::silence::{SilenceInput, SilenceMatcher};

const S: i64 = 1000;
const M: i64 = 60 * S;
const T0: i64 = 1_700_000_000_000;

fn config(text: &str) -> Arc<AmConfig> {
    Arc::new(parse(text, &|_| None).unwrap())
}

const CFG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
  - matchers: [severity="page"]
    receiver: pager
    continue: true
  - matchers: [severity="page"]
    receiver: team
receivers:
- name: team
  webhook_configs: [{url: 'http://127.0.0.1:9/team'}]
- name: pager
  webhook_configs: [{url: 'http://127.0.0.1:9/pager', send_resolved: false}]
inhibit_rules:
- source_matchers: [severity="critical"]
  target_matchers: [severity="warning"]
  equal: [instance]
"#;

fn alert(name: &str, extra: &[(&str, &str)], start: i64, end: i64) -> AmAlert {
    let mut labels: LabelMap = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.insert("alertname".into(), name.into());
    AmAlert {
        labels,
        annotations: LabelMap::new(),
        starts_at_ms: start,
        ends_at_ms: end,
        updated_at_ms: 0,
        generator_url: String::new(),
        timeout: false,
    }
}

/// Runs what is due and marks every job delivered; returns (receiver, firing count,
/// resolved count) per job sent.
fn step(d: &mut Dispatcher, now: i64) -> Vec<(String, usize, usize)> {
    let mut sent = Vec::new();
    for f in d.due(now) {
        for j in &f.jobs {
            let resolved = j.alerts.iter().filter(|a| a.ends_at_ms != 0).count();
            sent.push((j.receiver.clone(), j.alerts.len() - resolved, resolved));
        }
        let ok = vec![true; f.jobs.len()];
        d.complete(&f, &ok, now);
    }
    sent.sort();
    sent
}

#[test]
fn fingerprints_match_alertmanager() {
    let l = |pairs: &[(&str, &str)]| -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        format!(
            "{:016x}",
            fingerprint(&l(&[("alertname", "AlwaysFiring"), ("severity", "none")]))
        ),
        "8807c8e9d85cba3d"
    );
    assert_eq!(
        format!(
            "{:016x}",
            fingerprint(&l(&[
                ("alertname", "FiresNow"),
                ("instance", "127.0.0.1:19090"),
                ("job", "self"),
                ("severity", "critical")
            ]))
        ),
        "bdb76fba0ce8ec9f"
    );
}

#[test]
fn group_wait_group_interval_and_repeat() {
    let mut d = Dispatcher::new(config(CFG));
    d.put(
        vec![alert("Down", &[("instance", "a")], T0, T0 + 60 * M)],
        T0,
    );
    d.put(
        vec![alert("Down", &[("instance", "b")], T0, T0 + 60 * M)],
        T0 + 10 * S,
    );
    assert!(step(&mut d, T0 + 29 * S).is_empty(), "group_wait not over");
    assert_eq!(
        step(&mut d, T0 + 30 * S),
        vec![("team".into(), 2, 0)],
        "one notification for the group"
    );
    // A third alert joins: it waits for the group interval, not its own group_wait.
    d.put(
        vec![alert("Down", &[("instance", "c")], T0 + M, T0 + 60 * M)],
        T0 + M,
    );
    assert!(step(&mut d, T0 + 5 * M).is_empty());
    assert_eq!(
        step(&mut d, T0 + 30 * S + 5 * M),
        vec![("team".into(), 3, 0)]
    );
    // Nothing new: the following flushes send nothing until the repeat interval.
    for i in 2..49 {
        let t = T0 + 30 * S + i * 5 * M;
        for a in ["a", "b", "c"] {
            d.put(
                vec![alert("Down", &[("instance", a)], T0, t + 60 * M)],
                t - S,
            );
        }
        let sent = step(&mut d, t);
        assert!(sent.is_empty(), "flush {i} sent {sent:?}");
    }
    let t = T0 + 30 * S + 5 * M + 4 * 60 * M;
    for a in ["a", "b", "c"] {
        d.put(
            vec![alert("Down", &[("instance", a)], T0, t + 60 * M)],
            t - S,
        );
    }
    assert_eq!(
        step(&mut d, t),
        vec![("team".into(), 3, 0)],
        "repeat_interval passed"
    );
}

#[test]
fn resolved_alerts_are_sent_once_then_the_group_ends() {
    let mut d = Dispatcher::new(config(CFG));
    d.put(
        vec![alert(
            "Down",
            &[("instance", "a"), ("severity", "page")],
            T0,
            T0 + 60 * M,
        )],
        T0,
    );
    assert_eq!(
        step(&mut d, T0 + 30 * S),
        vec![("pager".into(), 1, 0), ("team".into(), 1, 0)],
        "continue: both routes"
    );
    // Resolved at T0+2m.
    d.put(
        vec![alert(
            "Down",
            &[("instance", "a"), ("severity", "page")],
            T0,
            T0 + 2 * M,
        )],
        T0 + 2 * M,
    );
    // The pager webhook does not send resolved alerts: its job has nothing in it, but
    // the log is updated so it is not told again.
    assert_eq!(
        step(&mut d, T0 + 30 * S + 5 * M),
        vec![("pager".into(), 0, 0), ("team".into(), 0, 1)]
    );
    assert!(
        d.groups().is_empty(),
        "groups end once their resolved alerts are sent"
    );
    assert!(step(&mut d, T0 + 30 * S + 10 * M).is_empty());
}

#[test]
fn failed_deliveries_are_retried_at_the_next_flush() {
    let mut d = Dispatcher::new(config(CFG));
    d.put(
        vec![alert("Down", &[("instance", "a")], T0, T0 + 60 * M)],
        T0,
    );
    let f = d.due(T0 + 30 * S);
    assert_eq!(f[0].jobs.len(), 1);
    d.complete(&f[0], &[false], T0 + 31 * S);
    assert_eq!(
        step(&mut d, T0 + 30 * S + 5 * M),
        vec![("team".into(), 1, 0)]
    );
}

#[test]
fn silences_and_inhibition_mute() {
    let mut d = Dispatcher::new(config(CFG));
    let id = d
        .silences
        .set(
            SilenceInput {
                id: None,
                matchers: vec![SilenceMatcher {
                    name: "instance".into(),
                    value: "a".into(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at_ms: T0,
                ends_at_ms: T0 + 10 * M,
                created_by: "me".into(),
                comment: "deploy".into(),
            },
            T0,
        )
        .unwrap();
    d.put(
        vec![
            alert("Down", &[("instance", "a")], T0, T0 + 60 * M),
            alert(
                "Disk",
                &[("instance", "b"), ("severity", "critical")],
                T0,
                T0 + 60 * M,
            ),
            alert(
                "Slow",
                &[("instance", "b"), ("severity", "warning")],
                T0,
                T0 + 60 * M,
            ),
            alert(
                "Slow",
                &[("instance", "c"), ("severity", "warning")],
                T0,
                T0 + 60 * M,
            ),
        ],
        T0,
    );
    let down = d
        .alerts()
        .iter()
        .find(|(a, _)| a.labels["alertname"] == "Down")
        .unwrap()
        .0
        .clone();
    assert_eq!(d.suppression(&down, T0 + S).silenced_by, vec![id]);
    let slow_b = alert(
        "Slow",
        &[("instance", "b"), ("severity", "warning")],
        T0,
        T0 + 60 * M,
    );
    let disk = format!(
        "{:016x}",
        alert("Disk", &[("instance", "b"), ("severity", "critical")], 0, 0).fingerprint()
    );
    assert_eq!(d.suppression(&slow_b, T0 + S).inhibited_by, vec![disk]);
    // Down is silenced, Slow{b} inhibited: Disk and Slow{c} are sent.
    assert_eq!(
        step(&mut d, T0 + 30 * S),
        vec![("team".into(), 1, 0), ("team".into(), 1, 0)]
    );
    // Once the silence ends, Down is notified.
    assert_eq!(
        step(&mut d, T0 + 30 * S + 10 * M),
        vec![("team".into(), 1, 0)]
    );
}

#[test]
fn merging_keeps_the_earliest_start() {
    let mut d = Dispatcher::new(config(CFG));
    d.put(vec![alert("Down", &[], T0, T0 + 10 * M)], T0);
    d.put(vec![alert("Down", &[], T0 + M, T0 + 20 * M)], T0 + M);
    let (a, rs) = &d.alerts()[0];
    assert_eq!(a.starts_at_ms, T0);
    assert_eq!(a.ends_at_ms, T0 + 20 * M);
    assert_eq!(rs, &vec!["team".to_string()]);
    // No end given: resolve_timeout (5m) from now.
    d.put(vec![alert("Other", &[], T0, 0)], T0 + 2 * M);
    let other = d
        .alerts()
        .into_iter()
        .find(|(a, _)| a.labels["alertname"] == "Other")
        .unwrap()
        .0
        .clone();
    assert_eq!(other.ends_at_ms, T0 + 7 * M);
    assert!(other.timeout);
}
