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

    srv.export_metrics(gauge_request(
        "shop",
        "queue.depth",
        &["s0".into()],
        now_ns(),
        7.0,
    ))
    .await;

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
    let resp = client()
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
    let am = dir.path().join("am.yml");
    std::fs::write(
        &am,
        "route: {receiver: a}\nreceivers:\n- name: a\n  pagerduty_configs: [{service_key: x}]\n",
    )
    .unwrap();
    let out = run(&["alertmanager", "check", am.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success()
            && text.contains("SUCCESS: 1 receivers")
            && text.contains("pagerduty_configs"),
        "{text}"
    );
    std::fs::write(&am, "route: {receiver: nobody}\nreceivers: [{name: a}]\n").unwrap();
    let out = run(&["alertmanager", "check", am.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("undefined receiver \"nobody\""));
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

/// A webhook receiver on a free port: the JSON bodies it got.
async fn webhook_receiver() -> (std::sync::Arc<std::sync::Mutex<Vec<Value>>>, String) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (got, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_reaches_a_webhook_then_resolves_and_silences_mute() {
    let (got, url) = webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: QueueDeep\n    expr: queue_depth > 5\n    labels: {severity: page}\n    annotations: {summary: '{{ $labels.series }} is {{ $value }} deep'}\n",
    )
    .unwrap();
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am,
        format!("route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {url}\n"),
    )
    .unwrap();
    let srv = Server::start_with(
        &data,
        &[
            "--rule-file",
            rules.to_str().unwrap(),
            "--alertmanager-config",
            am.to_str().unwrap(),
        ],
    );
    let mut metrics = MetricsServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap();
    depth(&mut metrics, 7.0).await;

    let first = eventually(&srv, "firing webhook", || {
        got.lock().unwrap().first().cloned()
    });
    assert_eq!(first["status"], "firing");
    assert_eq!(first["receiver"], "hook");
    assert_eq!(first["version"], "4");
    assert_eq!(first["groupKey"], "{}:{alertname=\"QueueDeep\"}");
    let a = &first["alerts"][0];
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["annotations"]["summary"], "s0 is 7 deep");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr=queue_depth+%3E+5"),
        "{a}"
    );

    // The Alertmanager API shows it; delivery status says it was sent.
    let v = get_json(&srv, "/api/v2/alerts");
    assert_eq!(v[0]["labels"]["alertname"], "QueueDeep");
    assert_eq!(v[0]["status"]["state"], "active");
    let v = get_json(&srv, "/api/v1/notifications");
    assert!(v["data"][0]["sent"].as_u64().unwrap() >= 1, "{v}");
    let (_, metrics_text) = http_get(srv.http, "/metrics").unwrap();
    assert!(
        metrics_text.contains("signalbox_notifications_total{integration=\"webhook\"}"),
        "{metrics_text}"
    );

    // The queue drains: a resolved notification follows.
    depth(&mut metrics, 1.0).await;
    let resolved = eventually(&srv, "resolved webhook", || {
        got.lock()
            .unwrap()
            .iter()
            .find(|b| b["status"] == "resolved")
            .cloned()
    });
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // A silence on the series: when it fires again nothing is sent, but the API shows
    // it as suppressed.
    let start = get_json(&srv, "/api/v2/status")["uptime"].clone();
    let resp = client()
        .post(format!("http://{}/api/v2/silences", srv.http))
        .json(&serde_json::json!({
            "matchers": [{"name": "series", "value": "s0", "isRegex": false, "isEqual": true}],
            "startsAt": start, "endsAt": "2099-01-01T00:00:00Z", "createdBy": "test", "comment": "maintenance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent_before = got.lock().unwrap().len();
    depth(&mut metrics, 9.0).await;
    let muted = eventually(&srv, "silenced alert", || {
        let v = get_json(&srv, "/api/v2/alerts?silenced=true&active=false");
        v.as_array().and_then(|a| a.first().cloned())
    });
    assert_eq!(muted["status"]["state"], "suppressed");
    // Two more group intervals: still nothing new sent.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(got.lock().unwrap().len(), sent_before);
    assert_eq!(srv.terminate(), 0);
}

/// An HTTP client (the workspace's `reqwest` has TLS with an explicitly chosen provider).
fn client() -> reqwest::Client {
    signalbox_query::install_tls_provider();
    reqwest::Client::new()
}

/// Sends `queue_depth{series="s0"}` of service `shop`.
async fn depth(metrics: &mut MetricsServiceClient<tonic::transport::Channel>, v: f64) {
    metrics
        .export(gauge_request(
            "shop",
            "queue.depth",
            &["s0".into()],
            now_ns(),
            v,
        ))
        .await
        .unwrap();
}

/// `amtool` (Alertmanager's command-line client) against SignalBox. Skipped with a
/// message when `amtool` is not installed, unless `REQUIRE_AMTOOL` is set (CI
/// installs it and sets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_queries_alerts_and_manages_silences() {
    let have = std::process::Command::new("amtool")
        .arg("--version")
        .output()
        .is_ok();
    if !have {
        assert!(
            std::env::var_os("REQUIRE_AMTOOL").is_none(),
            "amtool is required but not installed"
        );
        eprintln!("amtool not installed (apt-get install prometheus-alertmanager); skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"));
    let url = format!("--alertmanager.url=http://{}", srv.http);
    let amtool = |args: &[&str]| {
        let out = std::process::Command::new("amtool")
            .arg(&url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let resp = client()
        .post(format!("http://{}/api/v2/alerts", srv.http))
        .json(&serde_json::json!([{"labels": {"alertname": "DiskFull", "instance": "db1", "severity": "page"},
                                   "annotations": {"summary": "disk full"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let v: Value = serde_json::from_str(&amtool(&["alert", "query", "-o", "json"])).unwrap();
    assert_eq!(v[0]["labels"]["alertname"], "DiskFull", "{v}");
    let id = amtool(&[
        "silence",
        "add",
        "instance=db1",
        "--comment=replacing disk",
        "--author=ops",
        "--duration=1h",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "a silence id: {id}");
    let v: Value = serde_json::from_str(&amtool(&["silence", "query", "-o", "json"])).unwrap();
    assert_eq!(v[0]["id"], id.as_str(), "{v}");
    assert_eq!(v[0]["createdBy"], "ops");
    let v: Value = serde_json::from_str(&amtool(&["alert", "query", "-s", "-o", "json"])).unwrap();
    assert_eq!(v[0]["status"]["state"], "suppressed", "{v}");
    amtool(&["silence", "expire", &id]);
    let v: Value =
        serde_json::from_str(&amtool(&["silence", "query", "--expired", "-o", "json"])).unwrap();
    assert_eq!(v[0]["status"]["state"], "expired", "{v}");
    let status = amtool(&["config", "show"]);
    assert!(status.contains("receiver"), "{status}");
}
