//! The Loki API through `Router::oneshot`.

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use signalbox_storage::{
    AnyValue, Attributes, IngestSink, LogRecord, LogStream, LogsBatch, MemStore,
};
use tower::ServiceExt;

use super::*;

const S: i64 = NS_PER_S;

async fn app() -> Router {
    let store = Arc::new(MemStore::new());
    let mut streams = Vec::new();
    for (svc, t, line) in [
        ("api", 100, "GET /a 200"),
        ("api", 110, "GET /b 500"),
        ("api", 120, "POST /c 500"),
        ("db", 115, "slow query"),
    ] {
        streams.push(LogStream {
            labels: Labels::from_pairs([("service_name", svc), ("env", "prod")]),
            resource: Arc::new(Attributes::default()),
            records: vec![LogRecord {
                time_ns: t * S,
                observed_time_ns: t * S,
                body: AnyValue::String(line.into()),
                ..Default::default()
            }],
        });
    }
    store.write_logs(LogsBatch { streams }).await.unwrap();
    router(LokiApi::new(
        LogqlEngine::new(store, 1_000_000),
        Duration::from_secs(10),
    ))
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, Value) {
    let resp = app
        .clone()
        .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let st = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into_owned()));
    (st, ct, v)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn log_query_returns_streams_with_string_nanoseconds() {
    let app = app().await;
    let uri = format!(
        "/loki/api/v1/query_range?query={}&start=0&end=200&direction=forward&limit=10",
        enc(r#"{service_name="api"} |= "500""#)
    );
    let (st, _, v) = get(&app, &uri).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    assert_eq!(
        v["data"]["result"],
        json!([{
            "stream": {"env": "prod", "service_name": "api"},
            "values": [["110000000000", "GET /b 500"], ["120000000000", "POST /c 500"]],
        }])
    );
    assert_eq!(v["data"]["stats"]["summary"]["totalEntriesReturned"], 2);
    // Backward with limit 1: only the newest.
    let uri = format!(
        "/loki/api/v1/query_range?query={}&start=0&end=200&limit=1",
        enc(r#"{env="prod"}"#)
    );
    let (_, _, v) = get(&app, &uri).await;
    assert_eq!(
        v["data"]["result"][0]["values"],
        json!([["120000000000", "POST /c 500"]])
    );
}

#[tokio::test]
async fn metric_queries_return_prometheus_shapes() {
    let app = app().await;
    let q = enc(r#"sum by (service_name) (count_over_time({env="prod"}[1m]))"#);
    let (st, _, v) = get(
        &app,
        &format!("/loki/api/v1/query_range?query={q}&start=100&end=160&step=60"),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(
        v["data"]["result"],
        json!([
            {"metric": {"service_name": "api"}, "values": [[100, "1"], [160, "2"]]},
            {"metric": {"service_name": "db"}, "values": [[160, "1"]]},
        ])
    );
    let (st, _, v) = get(&app, &format!("/loki/api/v1/query?query={q}&time=130")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"][0],
        json!({"metric": {"service_name": "api"}, "value": [130, "3"]})
    );
}

#[tokio::test]
async fn errors_are_plain_text() {
    let app = app().await;
    let (st, ct, v) = get(
        &app,
        &format!("/loki/api/v1/query_range?query={}", enc("{service_name=")),
    )
    .await;
    assert_eq!(st, 400);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(v.as_str().unwrap().starts_with("parse error"), "{v}");
    let (st, _, v) = get(
        &app,
        &format!(
            "/loki/api/v1/query?query={}&time=130",
            enc(r#"{env="prod"}"#)
        ),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, _, _) = get(
        &app,
        &format!(
            "/loki/api/v1/query_range?query={}&limit=6000",
            enc(r#"{env="prod"}"#)
        ),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = get(
        &app,
        &format!(
            "/loki/api/v1/query_range?query={}&start=yesterday",
            enc(r#"{env="prod"}"#)
        ),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = get(&app, "/loki/api/v1/query_range").await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn labels_values_and_series() {
    let app = app().await;
    let (st, _, v) = get(&app, "/loki/api/v1/labels?start=0&end=200").await;
    assert_eq!(st, 200);
    assert_eq!(v["data"], json!(["env", "service_name"]));
    let (_, _, v) = get(
        &app,
        "/loki/api/v1/label/service_name/values?start=0&end=200",
    )
    .await;
    assert_eq!(v["data"], json!(["api", "db"]));
    let (_, _, v) = get(
        &app,
        &format!(
            "/loki/api/v1/label/service_name/values?start=0&end=200&query={}",
            enc(r#"{service_name=~"d.*"}"#)
        ),
    )
    .await;
    assert_eq!(v["data"], json!(["db"]));
    let (_, _, v) = get(
        &app,
        &format!(
            "/loki/api/v1/series?start=0&end=200&match[]={}",
            enc(r#"{service_name="api"}"#)
        ),
    )
    .await;
    assert_eq!(v["data"], json!([{"env": "prod", "service_name": "api"}]));
    // Outside the time range there is nothing.
    let (_, _, v) = get(&app, "/loki/api/v1/labels?start=300&end=400").await;
    assert_eq!(v["data"], json!([]));
}

#[test]
fn timestamps_follow_loki_rules() {
    assert_eq!(parse_time("1700000000"), Some(1_700_000_000 * S));
    assert_eq!(
        parse_time("1700000000.5"),
        Some(1_700_000_000 * S + 500_000_000)
    );
    assert_eq!(
        parse_time("1700000000123456789"),
        Some(1_700_000_000_123_456_789)
    );
    assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000 * S));
    assert_eq!(
        parse_time("2023-11-14T22:13:20.25Z"),
        Some(1_700_000_000 * S + 250_000_000)
    );
    assert_eq!(parse_time("soon"), None);
}
