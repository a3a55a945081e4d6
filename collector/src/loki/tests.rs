//! The Loki push endpoint through `Router::oneshot`, read back from a `MemStore`.

use std::io::Write;

use axum::body::Body;
use http_body_util::BodyExt;
use prost::Message;
use signalbox_storage::{LogQuery, LogsReader, Matcher, MemStore};
use tower::ServiceExt;

use super::proto::{EntryAdapter, LabelPairAdapter, StreamAdapter, Timestamp};
use super::*;
use crate::CollectorConfig;

fn app() -> (Router, Arc<MemStore>) {
    let store = Arc::new(MemStore::new());
    let c = Collector::new(
        store.clone(),
        CollectorConfig::default(),
        &mut Default::default(),
    );
    (router(c), store)
}

async fn post(app: &Router, ct: &str, ce: Option<&str>, body: Vec<u8>) -> (StatusCode, String) {
    let mut req = axum::http::Request::post("/loki/api/v1/push").header(header::CONTENT_TYPE, ct);
    if let Some(ce) = ce {
        req = req.header(header::CONTENT_ENCODING, ce);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let st = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (st, String::from_utf8_lossy(&b).into_owned())
}

async fn stored(store: &MemStore, job: &str) -> Vec<(i64, String, Vec<(String, String)>)> {
    store
        .query_logs(&LogQuery {
            matchers: vec![Matcher::eq("job", job)],
            start_ns: 0,
            end_ns: i64::MAX,
            limit: 100,
            direction: signalbox_storage::Direction::Forward,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.record.time_ns,
                e.record.line().into_owned(),
                e.record
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_text()))
                    .collect(),
            )
        })
        .collect()
}

const JSON_BODY: &str = r#"{"streams":[{"stream":{"job":"app","level":"info"},
  "values":[["1700000000000000001","first"],["1700000000000000002","second",{"trace_id":"abc"}]]}]}"#;

#[tokio::test]
async fn json_push_is_stored() {
    let (app, store) = app();
    let (st, body) = post(
        &app,
        "application/json",
        None,
        JSON_BODY.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        stored(&store, "app").await,
        vec![
            (1_700_000_000_000_000_001, "first".to_string(), vec![]),
            (
                1_700_000_000_000_000_002,
                "second".to_string(),
                vec![("trace_id".to_string(), "abc".to_string())]
            ),
        ]
    );
    // gzip-compressed JSON.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(JSON_BODY.replace("\"app\"", "\"gz\"").as_bytes())
        .unwrap();
    let (st, _) = post(
        &app,
        "application/json; charset=utf-8",
        Some("gzip"),
        gz.finish().unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(stored(&store, "gz").await.len(), 2);
}

#[tokio::test]
async fn snappy_protobuf_push_is_stored() {
    let (app, store) = app();
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{job="proto", path="C:\\logs", msg="say \"hi\""}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 5,
                }),
                line: "hello".into(),
                structured_metadata: vec![LabelPairAdapter {
                    name: "user".into(),
                    value: "u1".into(),
                }],
            }],
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let (st, msg) = post(&app, "application/x-protobuf", None, body).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{msg}");
    assert_eq!(
        stored(&store, "proto").await,
        vec![(
            1_700_000_000_000_000_005,
            "hello".to_string(),
            vec![("user".to_string(), "u1".to_string())]
        )]
    );
    let labels = store
        .log_streams(&[Matcher::eq("job", "proto")], 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(labels[0].get("path"), Some("C:\\logs"));
    assert_eq!(labels[0].get("msg"), Some("say \"hi\""));
}

#[tokio::test]
async fn bad_pushes_are_refused_and_store_nothing() {
    let (app, store) = app();
    for (ct, body) in [
        (
            "application/json",
            r#"{"streams":[{"stream":{"job":"bad"},"values":[[1700000000000000000,"x"]]}]}"#,
        ),
        (
            "application/json",
            r#"{"streams":[{"stream":{},"values":[["1","x"]]}]}"#,
        ),
        (
            "application/json",
            r#"{"streams":[{"stream":{"0job":"bad"},"values":[["1","x"]]}]}"#,
        ),
        (
            "application/json",
            r#"{"streams":[{"stream":{"job":"bad"},"values":[["1","x"]]}"#,
        ),
        (
            "application/json",
            r#"{"streams":[{"stream":{"job":"bad"},"values":[["1","x",{"k":1}]]}]}"#,
        ),
        ("application/x-protobuf", "not snappy at all"),
    ] {
        let (st, msg) = post(&app, ct, None, body.as_bytes().to_vec()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {msg}");
        assert!(!msg.is_empty());
    }
    let (st, _) = post(
        &app,
        "application/json",
        Some("br"),
        JSON_BODY.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(stored(&store, "bad").await.is_empty());
}

#[test]
fn label_sets_parse_like_selectors() {
    let l = parse_labels(r#"{a="1", b = "x,y}" ,c=`raw\n`}"#).unwrap();
    assert_eq!(l.get("a"), Some("1"));
    assert_eq!(l.get("b"), Some("x,y}"));
    assert_eq!(l.get("c"), Some("raw\\n"));
    for bad in [
        "",
        "{}",
        "a=\"1\"",
        "{a=1}",
        "{a=\"1\" b=\"2\"}",
        "{a=\"1}",
        "{1a=\"x\"}",
        "{a=\"\\q\"}",
    ] {
        assert!(parse_labels(bad).is_err(), "{bad}");
    }
}
