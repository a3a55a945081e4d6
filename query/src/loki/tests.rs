//! The Loki API through `Router::oneshot`.

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use signalbox_storage::{
    AnyValue, Attributes, IngestSink, LogRecord, LogStream, LogsBatch, MemStore, ResourceSpans,
    Span as StoredSpan, TracesBatch,
};
use tower::ServiceExt;

use super::*;

const S: i64 = NS_PER_S;

/// Trace A spans 108–116 s over services api and db; trace B has no stored spans.
const TRACE_A: [u8; 16] = [0xaa; 16];
const TRACE_B: [u8; 16] = [0xbb; 16];

async fn app() -> Router {
    app_for(store().await)
}

fn app_for(store: Arc<MemStore>) -> Router {
    router(
        LokiApi::new(
            LogqlEngine::new(store.clone(), 1_000_000),
            Duration::from_secs(10),
        )
        .with_traces(store),
    )
}

async fn store() -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    let mut streams = Vec::new();
    // Lines with trace context live in env "staging", so the rest of the tests see
    // stream labels only.
    for (svc, env, t, line, trace, span) in [
        ("api", "prod", 100, "GET /a 200", [0; 16], 0),
        ("api", "prod", 110, "GET /b 500", [0; 16], 0),
        ("api", "prod", 120, "POST /c 500", [0; 16], 0),
        ("db", "prod", 115, "slow query", [0; 16], 0),
        ("api", "staging", 110, "charge card", TRACE_A, 1),
        ("api", "staging", 120, "other trace", TRACE_B, 1),
        ("db", "staging", 115, "insert order", TRACE_A, 2),
    ] {
        streams.push(LogStream {
            labels: Labels::from_pairs([("service_name", svc), ("env", env)]),
            resource: Arc::new(Attributes::default()),
            records: vec![LogRecord {
                time_ns: t * S,
                observed_time_ns: t * S,
                body: AnyValue::String(line.into()),
                trace_id: trace,
                span_id: [span; 8],
                ..Default::default()
            }],
        });
    }
    store.write_logs(LogsBatch { streams }).await.unwrap();
    let resources = [("api", 1u8, 108), ("db", 2, 112)]
        .into_iter()
        .map(|(svc, span, start)| ResourceSpans {
            service_name: svc.into(),
            resource: Arc::new(Attributes::default()),
            spans: vec![StoredSpan {
                trace_id: TRACE_A,
                span_id: [span; 8],
                name: "op".into(),
                start_ns: start * S,
                end_ns: (start + 4) * S,
                ..Default::default()
            }],
        })
        .collect();
    store.write_traces(TracesBatch { resources }).await.unwrap();
    store
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
    assert_eq!(
        v["data"],
        json!([
            {"env": "prod", "service_name": "api"},
            {"env": "staging", "service_name": "api"}
        ])
    );
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

fn lines_of(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            out.push((
                s["stream"]["service_name"].as_str().unwrap().to_string(),
                e[1].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn logs_of_a_trace_and_of_one_span() {
    let app = app().await;
    let a = "aa".repeat(16);
    // The trace's time range comes from its spans (108–116 s, a minute either side).
    let (st, _, v) = get(&app, &format!("/api/v1/traces/{a}/logs")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "streams");
    assert_eq!(
        lines_of(&v),
        [
            ("api".into(), "charge card".into()),
            ("db".into(), "insert order".into())
        ]
    );
    // Each line carries the ids, so a log line leads back to its trace.
    let first = &v["data"]["result"][0]["stream"];
    assert_eq!(first["trace_id"], a, "{v}");
    assert_eq!(first["span_id"], "01".repeat(8), "{v}");
    let (_, _, v) = get(
        &app,
        &format!("/api/v1/traces/{a}/logs?spanID=0202020202020202"),
    )
    .await;
    assert_eq!(lines_of(&v), [("db".into(), "insert order".into())]);
    // A trace with no stored spans is looked for in the range given.
    let b = "bb".repeat(16);
    let (_, _, v) = get(&app, &format!("/api/v1/traces/{b}/logs")).await;
    assert_eq!(
        lines_of(&v),
        Vec::<(String, String)>::new(),
        "outside the last day"
    );
    let (_, _, v) = get(&app, &format!("/api/v1/traces/{b}/logs?start=0&end=200")).await;
    assert_eq!(lines_of(&v), [("api".into(), "other trace".into())]);
    // LogQL sees the same ids as labels.
    let uri = format!(
        "/loki/api/v1/query_range?query={}&start=0&end=200",
        enc(&format!(r#"{{env="staging"}} | trace_id="{a}""#))
    );
    assert_eq!(
        lines_of(&get(&app, &uri).await.2),
        [
            ("api".into(), "charge card".into()),
            ("db".into(), "insert order".into())
        ]
    );
    for bad in ["xyz", "0", &"1".repeat(33)] {
        let (st, ct, v) = get(&app, &format!("/api/v1/traces/{bad}/logs")).await;
        assert_eq!(st, 400, "{bad}: {v}");
        assert!(ct.starts_with("text/plain"), "{ct}");
    }
    let (st, _, _) = get(&app, &format!("/api/v1/traces/{a}/logs?spanID=zz")).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn index_stats_count_streams_entries_and_bytes() {
    let store = store().await;
    // A second severity in one stream: still one stream.
    let streams = vec![LogStream {
        labels: Labels::from_pairs([("service_name", "api"), ("env", "prod")]),
        resource: Arc::new(Attributes::default()),
        records: vec![LogRecord {
            time_ns: 130 * S,
            observed_time_ns: 130 * S,
            severity_number: 17,
            body: AnyValue::String("GET /d 503".into()),
            ..Default::default()
        }],
    }];
    store.write_logs(LogsBatch { streams }).await.unwrap();
    let app = app_for(store);
    let uri = |q: &str, range: &str| format!("/loki/api/v1/index/stats?query={}&{range}", enc(q));
    let (st, _, v) = get(&app, &uri(r#"{env="prod"}"#, "start=0&end=200")).await;
    assert_eq!(st, 200, "{v}");
    let bytes = [
        "GET /a 200",
        "GET /b 500",
        "POST /c 500",
        "slow query",
        "GET /d 503",
    ]
    .iter()
    .map(|l| l.len())
    .sum::<usize>();
    assert_eq!(
        v,
        json!({"streams": 2, "chunks": 2, "entries": 5, "bytes": bytes})
    );
    // The pipeline is ignored; the range is [start, end).
    let (_, _, v) = get(
        &app,
        &uri(
            r#"{service_name="api", env="prod"} |= "500""#,
            "start=105&end=120",
        ),
    )
    .await;
    assert_eq!(
        v,
        json!({"streams": 1, "chunks": 1, "entries": 1, "bytes": 10})
    );
    let (_, _, v) = get(&app, &uri(r#"{service_name="none"}"#, "start=0&end=200")).await;
    assert_eq!(
        v,
        json!({"streams": 0, "chunks": 0, "entries": 0, "bytes": 0})
    );
    let (st, _, _) = get(
        &app,
        &uri(r#"count_over_time({env="prod"}[1m])"#, "start=0&end=200"),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = get(&app, "/loki/api/v1/index/stats").await;
    assert_eq!(st, 400);
}

async fn write_line(store: &MemStore, svc: &str, t_ns: i64, line: &str) {
    let streams = vec![LogStream {
        labels: Labels::from_pairs([("service_name", svc), ("env", "prod")]),
        resource: Arc::new(Attributes::default()),
        records: vec![LogRecord {
            time_ns: t_ns,
            observed_time_ns: t_ns,
            body: AnyValue::String(line.into()),
            ..Default::default()
        }],
    }];
    store.write_logs(LogsBatch { streams }).await.unwrap();
}

/// The next text frame's lines as (service, line), oldest first.
async fn next_lines<S>(ws: &mut S) -> Vec<(String, String)>
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message as M;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("socket open")
            .unwrap();
        if let M::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["dropped_entries"], Value::Null, "{v}");
            let mut out = Vec::new();
            for s in v["streams"].as_array().unwrap() {
                for e in s["values"].as_array().unwrap() {
                    let t: i64 = e[0].as_str().unwrap().parse().unwrap();
                    out.push((
                        t,
                        s["stream"]["service_name"].as_str().unwrap().to_string(),
                        e[1].as_str().unwrap().to_string(),
                    ));
                }
            }
            out.sort();
            return out.into_iter().map(|(_, s, l)| (s, l)).collect();
        }
    }
}

#[tokio::test]
async fn tail_sends_the_newest_lines_then_each_new_line_once() {
    let store = store().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, app_for(store.clone())).into_future());
    let url = format!(
        "ws://{addr}/loki/api/v1/tail?query={}&start=0&limit=2",
        enc(r#"{env="prod"} != "GET /a""#)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // The newest two lines since `start`, oldest first.
    assert_eq!(
        next_lines(&mut ws).await,
        [
            ("db".into(), "slow query".into()),
            ("api".into(), "POST /c 500".into())
        ]
    );
    let now = now_ns();
    write_line(&store, "api", now, "fresh").await;
    write_line(&store, "api", now, "GET /a filtered out").await;
    assert_eq!(next_lines(&mut ws).await, [("api".into(), "fresh".into())]);
    // A line stored late, stamped before the last one sent, still arrives once.
    write_line(&store, "db", now - 2 * S, "late").await;
    write_line(&store, "db", now_ns(), "after").await;
    let mut got = next_lines(&mut ws).await;
    if got.len() < 2 {
        got.extend(next_lines(&mut ws).await);
    }
    assert_eq!(
        got,
        [("db".into(), "late".into()), ("db".into(), "after".into())]
    );
    ws.close(None).await.unwrap();

    // Bad requests are refused before the upgrade, as plain text.
    for (params, want) in [
        (
            format!("query={}", enc(r#"count_over_time({env="prod"}[1m])"#)),
            "tail is only supported for log queries",
        ),
        (
            format!("query={}&delay_for=6", enc(r#"{env="prod"}"#)),
            "delay_for can't be greater than 5",
        ),
        ("query=".to_string(), "query parameter is required"),
    ] {
        let url = format!("ws://{addr}/loki/api/v1/tail?{params}");
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 400, "{params}");
                let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default())
                    .into_owned();
                assert!(body.contains(want), "{params}: {body}");
            }
            other => panic!("{params}: {other:?}"),
        }
    }
    // A plain GET is told to upgrade.
    let (st, _, v) = get(
        &app_for(store),
        "/loki/api/v1/tail?query=%7Benv%3D%22prod%22%7D",
    )
    .await;
    assert_eq!(st, 400, "{v}");
}
