//! The Alertmanager API as amtool and Grafana use it.

use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::alerting::config::parse;
use crate::alerting::notify::NotifierOptions;

const CFG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  routes:
  - matchers: [severity="page"]
    receiver: pager
receivers:
- name: team
- name: pager
  webhook_configs:
  - url: http://127.0.0.1:9/very-secret-token
inhibit_rules:
- source_matchers: [severity="page"]
  target_matchers: [severity="info"]
  equal: [instance]
"#;

fn app() -> (Router, Arc<Notifier>) {
    let n = Notifier::new(
        Arc::new(parse(CFG, &|_| None).unwrap()),
        NotifierOptions::default(),
        None,
    );
    (router(n.clone()), n)
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn in_future(mins: i64) -> String {
    rfc3339(Some(now_ms() + mins * 60_000))
}

#[tokio::test]
async fn alerts_silences_and_status() {
    let (app, _n) = app();
    let (st, _) = call(
        &app,
        "POST",
        "/api/v2/alerts",
        Some(json!([
            {"labels": {"alertname": "Down", "severity": "page", "instance": "a"}, "annotations": {"summary": "down"},
             "generatorURL": "http://prom/graph"},
            {"labels": {"alertname": "Slow", "severity": "info", "instance": "a"}},
            {"labels": {"alertname": "Disk", "instance": "b"}, "endsAt": in_future(10)}
        ])),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = call(&app, "GET", "/api/v2/alerts", None).await;
    assert_eq!(st, StatusCode::OK);
    let alerts = v.as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    let by = |name: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .unwrap()
            .clone()
    };
    let down = by("Down");
    assert_eq!(down["receivers"], json!([{"name": "pager"}]));
    assert_eq!(down["status"]["state"], "active");
    assert_eq!(down["fingerprint"].as_str().unwrap().len(), 16);
    let slow = by("Slow");
    assert_eq!(slow["status"]["state"], "suppressed");
    assert_eq!(slow["status"]["inhibitedBy"], json!([down["fingerprint"]]));

    // amtool-style filters and flags.
    let (_, v) = call(
        &app,
        "GET",
        "/api/v2/alerts?filter=alertname%3D~%22D.*%22",
        None,
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = call(&app, "GET", "/api/v2/alerts?inhibited=false", None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = call(&app, "GET", "/api/v2/alerts?receiver=team", None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (st, _) = call(&app, "GET", "/api/v2/alerts?filter=bad", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A silence mutes Disk.
    let (st, v) = call(
        &app,
        "POST",
        "/api/v2/silences",
        Some(json!({"matchers": [{"name": "instance", "value": "b", "isRegex": false, "isEqual": true}],
                    "startsAt": rfc3339(Some(now_ms())), "endsAt": in_future(60),
                    "createdBy": "ops", "comment": "disk swap"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let id = v["silenceID"].as_str().unwrap().to_string();
    let (_, v) = call(&app, "GET", "/api/v2/alerts", None).await;
    let disk = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "Disk")
        .unwrap()
        .clone();
    assert_eq!(disk["status"]["silencedBy"], json!([id]));
    let (_, v) = call(&app, "GET", "/api/v2/silences", None).await;
    assert_eq!(v[0]["status"]["state"], "active");
    assert_eq!(v[0]["createdBy"], "ops");
    let (_, v) = call(&app, "GET", &format!("/api/v2/silence/{id}"), None).await;
    assert_eq!(v["comment"], "disk swap");
    let (st, _) = call(&app, "DELETE", &format!("/api/v2/silence/{id}"), None).await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = call(&app, "GET", &format!("/api/v2/silence/{id}"), None).await;
    assert_eq!(v["status"]["state"], "expired");
    let (st, _) = call(&app, "GET", "/api/v2/silence/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = call(
        &app,
        "POST",
        "/api/v2/silences",
        Some(json!({"matchers": [{"name": "a", "value": ".*", "isRegex": true}],
                    "startsAt": rfc3339(Some(now_ms())), "endsAt": in_future(60), "createdBy": "x", "comment": "y"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v.as_str()
            .unwrap()
            .contains("must not match the empty string")
    );

    let (_, v) = call(&app, "GET", "/api/v2/alerts/groups", None).await;
    let groups = v.as_array().unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g["labels"]["alertname"] == "Down" && g["receiver"]["name"] == "pager")
    );

    let (_, v) = call(&app, "GET", "/api/v2/status", None).await;
    assert_eq!(v["cluster"]["status"], "disabled");
    let original = v["config"]["original"].as_str().unwrap();
    assert!(
        original.contains("url: <secret>") && !original.contains("very-secret-token"),
        "{original}"
    );
    let (_, v) = call(&app, "GET", "/api/v2/receivers", None).await;
    assert_eq!(v, json!([{"name": "team"}, {"name": "pager"}]));

    let (st, v) = call(
        &app,
        "POST",
        "/api/v2/alerts",
        Some(json!([{"labels": {}}])),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
