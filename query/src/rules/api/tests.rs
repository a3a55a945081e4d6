//! The rules API against the shapes Prometheus 2.42 answered with, reloads that keep
//! the previous rules on error, and alert state across a restart.

use std::path::Path;

use axum::http::StatusCode;
use serde_json::Value;
use signalbox_storage::{IngestSink, Labels, MemStore, MetricsBatch, Sample, SeriesPoints};

use super::*;
use crate::prometheus::tests::{call, same_shape, sample};
use crate::promql::Engine;
use crate::rules::{External, Lang, ManagerOptions, Querier};

const RULES: &str = r#"groups:
- name: demo
  interval: 5s
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: AlwaysFiring
    expr: vector(1)
    labels: {severity: none}
    annotations: {summary: test alert}
  - alert: SlowPending
    expr: up == 1
    for: 1h
    labels: {severity: warning}
    annotations:
      summary: '{{ $labels.instance }} of {{ $labels.job }} is up (value {{ $value }})'
"#;

async fn store(now: i64) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    store
        .write_metrics(MetricsBatch {
            series: vec![SeriesPoints {
                starts: Vec::new(),
                labels: Labels::from_pairs([
                    ("__name__", "up"),
                    ("job", "self"),
                    ("instance", "127.0.0.1:19090"),
                ]),
                samples: (0..40)
                    .map(|i| Sample {
                        t: now - 60_000 + i * 5_000,
                        v: 1.0,
                    })
                    .collect(),
                histograms: vec![],
                exemplars: Vec::new(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    store
}

async fn manager(dir: &Path, store: Arc<MemStore>) -> Arc<RuleManager> {
    let q = Querier::new(Engine::default(), store.clone(), None);
    let m = RuleManager::new(
        ManagerOptions {
            files: vec![(
                dir.join("*.yml").to_string_lossy().into_owned(),
                Lang::PromQL,
            )],
            evaluation_interval: Duration::from_secs(60),
            external: External::default(),
            state_path: Some(dir.join("state/alerts.state")),
            outage_tolerance: Duration::from_secs(3600),
        },
        Arc::new(q),
        store,
    );
    m.start(false).await.unwrap();
    m
}

fn rule<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {v}"))
}

#[tokio::test]
async fn rules_and_alerts_have_prometheus_shapes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let now = crate::rules::manager::now_ms();
    let m = manager(dir.path(), store(now).await).await;
    let app = router(m.clone(), None);

    // Before the first evaluation: health unknown, zero times.
    let (st, v) = call(&app, "GET", "/api/v1/rules", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(rule(&v, "job:up:sum")["health"], "unknown");
    assert_eq!(
        rule(&v, "job:up:sum")["lastEvaluation"],
        "0001-01-01T00:00:00Z"
    );

    m.eval_all(now).await;
    let (_, v) = call(&app, "GET", "/api/v1/rules", None).await;
    let want = sample("rules.json");
    let want_pending = sample("rules_pending_inactive.json");
    let g = &v["data"]["groups"][0];
    let wg = &want["data"]["groups"][0];
    for k in [
        "name",
        "file",
        "interval",
        "limit",
        "evaluationTime",
        "lastEvaluation",
    ] {
        assert!(same_shape(&g[k], &wg[k]), "{k}: {} vs {}", g[k], wg[k]);
    }
    assert_eq!(g["interval"], 5.0);
    assert!(same_shape(rule(&v, "job:up:sum"), &wg["rules"][0]), "{v}");
    assert!(same_shape(rule(&v, "AlwaysFiring"), &wg["rules"][1]), "{v}");
    assert!(
        same_shape(
            rule(&v, "SlowPending"),
            &want_pending["data"]["groups"][0]["rules"][2]
        ),
        "{v}"
    );
    let firing = rule(&v, "AlwaysFiring");
    assert_eq!(firing["state"], "firing");
    assert_eq!(firing["alerts"][0]["value"], "1e+00");
    assert_eq!(firing["health"], "ok");
    let pending = rule(&v, "SlowPending");
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["duration"], 3600.0);
    assert_eq!(
        pending["alerts"][0]["annotations"]["summary"],
        "127.0.0.1:19090 of self is up (value 1)"
    );
    assert_eq!(
        pending["annotations"]["summary"],
        "{{ $labels.instance }} of {{ $labels.job }} is up (value {{ $value }})"
    );

    let (_, v) = call(&app, "GET", "/api/v1/rules?type=alert", None).await;
    let names: Vec<&str> = v["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["AlwaysFiring", "SlowPending"]);
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/rules?exclude_alerts=true&rule_name[]=SlowPending",
        None,
    )
    .await;
    assert!(rule(&v, "SlowPending").get("alerts").is_none());
    assert_eq!(v["data"]["groups"][0]["rules"].as_array().unwrap().len(), 1);
    let (st, v) = call(&app, "GET", "/api/v1/rules?type=bogus", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["errorType"], "bad_data");

    let (_, v) = call(&app, "GET", "/api/v1/alerts", None).await;
    let alerts = v["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let want = sample("alerts.json");
    // Label and annotation names differ per alert; the rest must match.
    let strip = |a: &Value| {
        let mut a = a.clone();
        a["labels"] = serde_json::json!({});
        a["annotations"] = serde_json::json!({});
        a
    };
    for a in alerts {
        assert!(
            same_shape(&strip(a), &strip(&want["data"]["alerts"][0])),
            "{a}"
        );
    }
}

#[tokio::test]
async fn bad_reload_keeps_rules_and_state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let now = crate::rules::manager::now_ms();
    let data = store(now).await;
    let m = manager(dir.path(), data.clone()).await;
    m.eval_all(now).await;
    let active_at = |m: &RuleManager, name: &str| {
        m.groups()
            .iter()
            .flat_map(|g| g.rules.iter())
            .find(|r| r.spec.name == name)
            .and_then(|r| r.active().next().map(|a| (a.active_at_ms, a.state)))
    };
    let before = active_at(&m, "SlowPending").unwrap();
    assert_eq!(before.0, now);

    // A broken file: the reload fails with file and line, the rules stay.
    std::fs::write(
        dir.path().join("more.yml"),
        "groups:\n- name: extra\n  rules:\n  - record: x\n    expr: 'sum(('\n",
    )
    .unwrap();
    let errs = m.reload().await.unwrap_err();
    assert!(
        errs[0].contains("more.yml:5: group \"extra\", rule 1, \"x\": could not parse expression"),
        "{errs:?}"
    );
    let app = router(m.clone(), None);
    let (st, _) = call(&app, "POST", "/-/reload", None).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(m.groups().len(), 1);
    assert!(!m.status().success);

    // Fixed: the new group appears, the changed group keeps its alerts' activeAt.
    std::fs::write(
        dir.path().join("more.yml"),
        "groups:\n- name: extra\n  rules:\n  - record: x\n    expr: up\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        RULES.replace("for: 1h", "for: 2h"),
    )
    .unwrap();
    let (st, _) = call(&app, "POST", "/-/reload", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(m.groups().len(), 2);
    assert_eq!(active_at(&m, "SlowPending"), Some(before));

    // Restart: a new manager over the same state file gets the alerts back.
    m.shutdown().await;
    let m2 = manager(dir.path(), data).await;
    assert_eq!(active_at(&m2, "SlowPending"), Some(before));
    m2.eval_all(now + 5_000).await;
    assert_eq!(active_at(&m2, "SlowPending"), Some(before));
    assert_eq!(
        active_at(&m2, "AlwaysFiring").unwrap().1,
        AlertState::Firing
    );
}
