//! End to end through the real binary: OTLP metrics make an alert fire, the rules and
//! alerts APIs and PromQL see it, a bad rule file is refused on reload, and the alert
//! keeps its `activeAt` across a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, gauge_request, http_get, now_ns};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use serde_json::Value;

const RULES: &str = r#"groups:
- name: queue
  interval: 1s
  rules:
  - record: job:queue_depth:max
    expr: max by (job) (queue_depth)
  - alert: QueueDeep
    expr: queue_depth > 5
    for: 2s
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.series }} of {{ $labels.job }} is {{ $value }} deep"
"#;

fn get_json(srv: &Server, path: &str) -> Value {
    let (code, body) = http_get(srv.http, path).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn firing(srv: &Server) -> Option<Value> {
    let v = get_json(srv, "/api/v1/alerts");
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "firing")
        .cloned()
}

/// Polls until `f` returns something; evaluation runs every second, so this is quick,
/// but the bound is generous for loaded machines.
fn eventually<T>(srv: &Server, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {}",
            srv.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_fire_an_alert_that_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let cfg = dir.path().join("signalbox.yaml");
    std::fs::write(
        &cfg,
        "rules:\n  files: [rules.yml]\n  evaluation_interval: 1s\n",
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let srv = Server::start_with(&data, &["--config", &cfg]);

    MetricsServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap()
        .export(gauge_request(
            "shop",
            "queue.depth",
            &["s0".into()],
            now_ns(),
            7.0,
        ))
        .await
        .unwrap();

    let alert = eventually(&srv, "QueueDeep firing", || firing(&srv));
    assert_eq!(alert["labels"]["alertname"], "QueueDeep");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "s0 of shop is 7 deep");
    assert_eq!(alert["value"], "7e+00");

    let v = get_json(&srv, "/api/v1/rules");
    let rules = &v["data"]["groups"][0]["rules"];
    assert_eq!(rules[0]["health"], "ok", "{v}");
    assert_eq!(rules[1]["state"], "firing", "{v}");
    assert!(
        v["data"]["groups"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("rules.yml")
    );

    // The recording rule's series and ALERTS are queryable with PromQL.
    let v = get_json(&srv, "/api/v1/query?query=job:queue_depth:max");
    assert_eq!(v["data"]["result"][0]["value"][1], "7", "{v}");
    let v = get_json(
        &srv,
        "/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D",
    );
    assert_eq!(
        v["data"]["result"][0]["metric"]["alertname"], "QueueDeep",
        "{v}"
    );

    // A broken rule file: reload refuses it, names file and line, the rules stay.
    std::fs::write(
        dir.path().join("rules.yml"),
        RULES.replace("queue_depth > 5", "queue_depth >"),
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/-/reload", srv.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("rules.yml:8: group \"queue\", rule 2, \"QueueDeep\""),
        "{text}"
    );
    assert!(firing(&srv).is_some());
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();

    // Restart: the alert comes back with the same activeAt.
    assert_eq!(srv.terminate(), 0);
    let srv = Server::start_with(&data, &["--config", &cfg]);
    let again = firing(&srv).expect("alert restored before the first evaluation");
    assert_eq!(again["activeAt"], alert["activeAt"]);
    assert!(data.join("rules/alerts.state").exists());
}

#[test]
fn bad_rule_file_at_start_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.yml");
    std::fs::write(&rules, "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $label.x }}'\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .arg("--rule-file")
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yml:4: group \"g\", rule 1, \"A\"")
            && err.contains("undefined variable \"$label\""),
        "{err}"
    );
}

#[test]
fn rules_subcommands_work_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let test = dir.path().join("test.yml");
    std::fs::write(
        &test,
        "rule_files: [rules.yml]\nevaluation_interval: 1s\ntests:\n- interval: 1s\n  input_series:\n  - series: 'queue_depth{job=\"shop\",series=\"s0\"}'\n    values: '7x10'\n  alert_rule_test:\n  - eval_time: 3s\n    alertname: QueueDeep\n    exp_alerts:\n    - exp_labels: {job: shop, series: s0, severity: page}\n      exp_annotations: {summary: s0 of shop is 7 deep}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_signalbox"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["rules", "check", rules.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 2 rules found"));
    let out = run(&["rules", "test", test.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(
        &test,
        std::fs::read_to_string(&test)
            .unwrap()
            .replace("7 deep", "8 deep"),
    )
    .unwrap();
    let out = run(&["rules", "test", test.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
}
