use std::sync::Arc;
use std::time::Duration;

use signalbox_storage::{
    IngestSink, Labels, MemStore, MetricsBatch, MetricsReader, Sample, SeriesPoints, is_stale_nan,
};

use super::*;
use crate::promql::{Engine, EngineOptions};
use crate::rules::file::parse_rules;
use crate::rules::{Lang, Querier};

const MIN: i64 = 60_000;

async fn setup(
    rules: &str,
    series: &[(&str, &[Option<f64>])],
) -> (Arc<MemStore>, Querier, GroupState) {
    let store = Arc::new(MemStore::new());
    let mut batch = MetricsBatch::default();
    for (job, values) in series {
        batch.series.push(SeriesPoints {
            starts: Vec::new(),
            labels: Labels::from_pairs([("__name__", "up"), ("job", *job)]),
            samples: values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|v| Sample {
                        t: i as i64 * MIN,
                        v,
                    })
                })
                .collect(),
            histograms: Vec::new(),
            exemplars: Vec::new(),
        });
    }
    store.write_metrics(batch).await.unwrap();
    let checked = parse_rules("r.yml", rules, Lang::PromQL).unwrap();
    let g = GroupState::new(Arc::new(checked.groups[0].clone()), Duration::from_secs(60));
    let q = Querier::new(Engine::new(EngineOptions::default()), store.clone(), None);
    (store, q, g)
}

fn states(g: &GroupState) -> Vec<(String, AlertState)> {
    g.rules[0]
        .alerts
        .values()
        .map(|a| (a.labels["job"].clone(), a.state))
        .collect()
}

#[tokio::test]
async fn pending_firing_keep_firing_resolved() {
    // up{job="a"} is 0 from 0m to 4m, then 1 (the alert condition ends at 5m).
    let zeros: Vec<Option<f64>> = (0..12)
        .map(|i| Some(if i < 5 { 0.0 } else { 1.0 }))
        .collect();
    let (store, q, mut g) = setup(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 2m\n    keep_firing_for: 2m\n    labels: {severity: '{{ if eq $value 0.0 }}page{{ end }}'}\n    annotations: {summary: '{{ $labels.job }} down ({{ $value }})'}\n",
        &[("a", &zeros)],
    )
    .await;
    let ext = External::default();
    let mut seen = Vec::new();
    for m in 0..10 {
        g.eval(m * MIN, &q, store.as_ref(), &ext).await;
        assert_eq!(g.rules[0].health, Health::Ok);
        seen.push(states(&g).first().map(|s| s.1));
    }
    use AlertState::*;
    // pending at 0m,1m; firing from 2m; condition gone at 5m, kept firing until
    // keep_firing_for (2m) has passed, i.e. resolved at 7m.
    assert_eq!(
        seen,
        vec![
            Some(Pending),
            Some(Pending),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Inactive),
            Some(Inactive),
            Some(Inactive)
        ]
    );
    let a = g.rules[0].alerts.values().next().unwrap();
    assert_eq!(a.active_at_ms, 0);
    assert_eq!(a.fired_at_ms, Some(2 * MIN));
    assert_eq!(a.resolved_at_ms, Some(7 * MIN));
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.annotations["summary"], "a down (0)");

    // ALERTS: pending at 1m, firing at 3m, stale once resolved.
    let alerts = store
        .select_series(
            &[signalbox_storage::Matcher::eq("__name__", "ALERTS")],
            0,
            10 * MIN,
        )
        .await
        .unwrap();
    let by_state = |s: &str| {
        alerts
            .iter()
            .find(|x| x.labels.get("alertstate") == Some(s))
            .unwrap()
            .samples
            .clone()
    };
    let pending = by_state("pending");
    assert_eq!(pending[0].t, 0);
    assert_eq!(pending[1].t, MIN);
    assert!(
        is_stale_nan(pending[2].v),
        "pending series goes stale when firing starts"
    );
    let firing = by_state("firing");
    assert_eq!(firing.first().unwrap().t, 2 * MIN);
    assert!(is_stale_nan(firing.last().unwrap().v));
    assert_eq!(firing.last().unwrap().t, 7 * MIN);
    let for_state = store
        .select_series(
            &[signalbox_storage::Matcher::eq(
                "__name__",
                "ALERTS_FOR_STATE",
            )],
            0,
            10 * MIN,
        )
        .await
        .unwrap();
    assert_eq!(for_state[0].samples[0].v, 0.0);
}

#[tokio::test]
async fn recording_rules_write_and_go_stale() {
    let (store, q, mut g) = setup(
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {team: x}\n  - record: job:up:twice\n    expr: job:up:sum * 2\n",
        &[("a", &[Some(1.0), Some(1.0)]), ("b", &[Some(3.0)])],
    )
    .await;
    for m in 0..8 {
        g.eval(m * MIN, &q, store.as_ref(), &External::default())
            .await;
    }
    let got = store
        .select_series(
            &[signalbox_storage::Matcher::eq("__name__", "job:up:twice")],
            0,
            10 * MIN,
        )
        .await
        .unwrap();
    let b = got
        .iter()
        .find(|s| s.labels.get("job") == Some("b"))
        .unwrap();
    assert_eq!(b.labels.get("team"), Some("x"));
    // The second rule sees the first one's output of the same evaluation.
    assert_eq!(b.samples[0].v, 6.0);
    // b's only sample is at 0m: the lookback window (t-5m, t] no longer holds it at
    // 5m, so the rule's output gets a staleness marker there.
    assert!(is_stale_nan(b.samples.last().unwrap().v));
    assert_eq!(b.samples.last().unwrap().t, 5 * MIN);
    let a = got
        .iter()
        .find(|s| s.labels.get("job") == Some("a"))
        .unwrap();
    assert_eq!(a.samples.len(), 7, "0m … 5m, then stale at 6m");
    assert!(is_stale_nan(a.samples[6].v));
    assert_eq!(a.samples[6].t, 6 * MIN);
}

#[tokio::test]
async fn errors_and_limits_show_in_health() {
    let (store, q, mut g) = setup(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: Any\n    expr: up\n",
        &[("a", &[Some(1.0)]), ("b", &[Some(1.0)])],
    )
    .await;
    g.eval(0, &q, store.as_ref(), &External::default()).await;
    assert_eq!(
        g.rules[0].health,
        Health::Err("exceeded limit of 1 with 2 alerts".into())
    );
    assert!(g.rules[0].alerts.is_empty());

    let (store, q, mut g) = setup(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    labels: {job: same}\n",
        &[("a", &[Some(1.0)]), ("b", &[Some(1.0)])],
    )
    .await;
    g.eval(0, &q, store.as_ref(), &External::default()).await;
    assert!(
        matches!(&g.rules[0].health, Health::Err(e) if e.contains("same labelset after applying rule labels"))
    );
}

#[tokio::test]
async fn logql_rules_alert_on_log_lines() {
    use signalbox_storage::{AnyValue, LogRecord, LogStream, LogsBatch};
    let store = Arc::new(MemStore::new());
    let lines = ["ok", "error: disk full", "ok", "error: disk full"];
    store
        .write_logs(LogsBatch {
            streams: vec![LogStream {
                labels: Labels::from_pairs([("service_name", "api")]),
                records: lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| LogRecord {
                        time_ns: (i as i64 + 1) * 10_000_000_000,
                        body: AnyValue::String(l.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let rules = "groups:\n- name: logs\n  rules:\n  - alert: ApiErrors\n    expr: sum by (service_name) (count_over_time({service_name=\"api\"} |= \"error\" [5m])) > 1\n    annotations: {summary: '{{ $value }} errors in {{ $labels.service_name }}'}\n  - record: api:errors:count5m\n    expr: sum(count_over_time({service_name=\"api\"} |= \"error\" [5m]))\n";
    let checked = parse_rules("r.yml", rules, Lang::LogQL).unwrap();
    // A log query is not a rule expression.
    assert!(
        parse_rules(
            "r.yml",
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: '{service_name=\"api\"}'\n",
            Lang::LogQL
        )
        .is_err()
    );
    let mut g = GroupState::new(Arc::new(checked.groups[0].clone()), Duration::from_secs(60));
    let q = Querier::new(
        Engine::new(EngineOptions::default()),
        store.clone(),
        Some(crate::logql::LogqlEngine::new(store.clone(), 1_000_000)),
    );
    g.eval(60_000, &q, store.as_ref(), &External::default())
        .await;
    assert_eq!(g.rules[0].health, Health::Ok);
    assert_eq!(g.rules[1].health, Health::Ok);
    let a = g.rules[0].alerts.values().next().expect("alert");
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.labels["service_name"], "api");
    assert_eq!(a.annotations["summary"], "2 errors in api");
    // The recording rule's output is a metric series.
    let s = store
        .select_series(
            &[signalbox_storage::Matcher::eq(
                "__name__",
                "api:errors:count5m",
            )],
            0,
            120_000,
        )
        .await
        .unwrap();
    assert_eq!(s[0].samples[0].v, 2.0);
}

#[tokio::test]
async fn alerts_are_sent_like_prometheus_sends_them() {
    // Down from 0m to 2m, then up.
    let vals: Vec<Option<f64>> = (0..10)
        .map(|i| Some(if i < 3 { 0.0 } else { 1.0 }))
        .collect();
    let (store, q, mut g) = setup(
        "groups:\n- name: g\n  interval: 30s\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 30s\n",
        &[("a", &vals)],
    )
    .await;
    let mut sent = Vec::new();
    for step in 0..10 {
        let t = step * 30_000;
        g.eval(t, &q, store.as_ref(), &External::default()).await;
        for (a, _, ends) in g.to_send(t, 60_000) {
            sent.push((t, a.state, a.fired_at_ms, ends));
        }
    }
    use AlertState::*;
    assert_eq!(
        sent,
        vec![
            // pending at 0s: not sent; firing at 30s; resent a minute later.
            (30_000, Firing, Some(30_000), 30_000 + 4 * 60_000),
            (90_000, Firing, Some(30_000), 90_000 + 4 * 60_000),
            (150_000, Firing, Some(30_000), 150_000 + 4 * 60_000),
            // resolved at 3m: sent at once with the resolve time as end, then every minute.
            (180_000, Inactive, Some(30_000), 180_000),
            (240_000, Inactive, Some(30_000), 180_000),
        ]
    );
}
