//! The Jaeger API through `Router::oneshot`, and the OTLP → Jaeger mapping against
//! Jaeger's own golden pair.

use super::*;
use axum::body::Body;
use http_body_util::BodyExt;
use signalbox_collector::{Collector, CollectorConfig};
use signalbox_storage::MemStore;
use tower::ServiceExt;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/jaeger/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn store_with(json_requests: &[&[u8]]) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    let c = Collector::new(
        store.clone(),
        CollectorConfig::default(),
        &mut Default::default(),
    );
    for body in json_requests {
        let req: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            serde_json::from_slice(body).unwrap();
        c.export_traces(req).await.unwrap();
    }
    store
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let resp = app
        .clone()
        .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let st = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

#[tokio::test]
async fn otlp_to_jaeger_matches_the_golden_pair() {
    let store = store_with(&[&fixture("otlp2jaeger-in.json")]).await;
    let app = router(JaegerApi::new(store));
    let (st, got) = get(&app, "/jaeger/api/traces/83a9efd15c1c98a977e0711cc93ee28b").await;
    assert_eq!(st, 200);
    let want: Value = serde_json::from_slice(&fixture("otlp2jaeger-out.json")).unwrap();
    assert_eq!(got, want);
}

/// (service, trace id, span id, parent, start s, duration ms, operation)
type TestSpan<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    i64,
    i64,
    &'a str,
);

fn trace_request(traces: &[TestSpan<'_>]) -> Vec<u8> {
    let rs: Vec<Value> = traces
        .iter()
        .map(|(svc, tid, sid, parent, start, dur, op)| {
            let start_ns = (*start as u128) * 1_000_000_000;
            json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}},
                                            {"key": "host.name", "value": {"stringValue": "h1"}}]},
                "scopeSpans": [{"scope": {"name": "lib", "version": "1.0"}, "spans": [{
                    "traceId": tid, "spanId": sid, "parentSpanId": parent.unwrap_or(""),
                    "name": op, "kind": 2,
                    "startTimeUnixNano": start_ns.to_string(),
                    "endTimeUnixNano": (start_ns + (*dur as u128) * 1_000_000).to_string(),
                    "attributes": [{"key": "http.status_code", "value": {"intValue": "500"}}],
                    "status": {"code": 2, "message": "boom"},
                    "events": [{"timeUnixNano": start_ns.to_string(), "name": "retry", "attributes": [{"key": "n", "value": {"intValue": "1"}}]}]
                }]}]
            })
        })
        .collect();
    serde_json::to_vec(&json!({"resourceSpans": rs})).unwrap()
}

#[tokio::test]
async fn services_operations_search_trace_and_dependencies() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body = trace_request(&[
        (
            "frontend",
            "0000000000000000000000000000000a",
            "00000000000000a1",
            None,
            now - 10,
            120,
            "GET /cart",
        ),
        (
            "cart",
            "0000000000000000000000000000000a",
            "00000000000000a2",
            Some("00000000000000a1"),
            now - 10,
            50,
            "GetCart",
        ),
        (
            "frontend",
            "0000000000000000000000000000000b",
            "00000000000000b1",
            None,
            now - 5,
            5,
            "GET /",
        ),
    ]);
    let store = store_with(&[&body]).await;
    let app = router(JaegerApi::new(store));

    let (_, v) = get(&app, "/jaeger/api/services").await;
    assert_eq!(v["data"], json!(["cart", "frontend"]));
    assert_eq!(v["total"], 2);
    let (_, v) = get(&app, "/jaeger/api/services/frontend/operations").await;
    assert_eq!(v["data"], json!(["GET /", "GET /cart"]));
    let (_, v) = get(&app, "/jaeger/api/operations?service=cart&spanKind=server").await;
    assert_eq!(
        v["data"],
        json!([{"name": "GetCart", "spanKind": "server"}])
    );

    let (st, v) = get(
        &app,
        "/jaeger/api/traces?service=frontend&minDuration=100ms",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let traces = v["data"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["traceID"], "000000000000000a");
    assert_eq!(
        traces[0]["spans"].as_array().unwrap().len(),
        2,
        "the whole trace, not just the matching span"
    );
    let span = &traces[0]["spans"][0];
    assert_eq!(span["duration"], 120_000);
    assert!(
        span["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "error", "type": "bool", "value": true}))
    );
    assert_eq!(
        span["logs"][0]["fields"][0],
        json!({"key": "event", "type": "string", "value": "retry"})
    );
    assert_eq!(
        traces[0]["processes"]["p1"]["tags"],
        json!([{"key": "host.name", "type": "string", "value": "h1"}])
    );

    let (_, v) = get(
        &app,
        "/jaeger/api/traces?service=frontend&tags=%7B%22http.status_code%22%3A%22500%22%7D&limit=1",
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["traceID"], "000000000000000b", "newest first");
    let (_, v) = get(
        &app,
        "/jaeger/api/traces?service=frontend&operation=GET%20%2F",
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);

    let (st, v) = get(&app, "/jaeger/api/traces/ffff").await;
    assert_eq!(st, 404);
    assert_eq!(v["errors"][0]["msg"], "trace not found");
    let (st, _) = get(&app, "/jaeger/api/traces/not-hex").await;
    assert_eq!(st, 400);
    let (st, v) = get(&app, "/jaeger/api/traces?operation=x").await;
    assert_eq!(st, 400);
    assert_eq!(v["data"], Value::Null);
    let (st, _) = get(&app, "/jaeger/api/traces?service=frontend&minDuration=fast").await;
    assert_eq!(st, 400);

    let (_, v) = get(&app, "/jaeger/api/dependencies?lookback=3600000").await;
    assert_eq!(
        v["data"],
        json!([{"parent": "frontend", "child": "cart", "callCount": 1}])
    );

    // RED per service from its server spans, and the calls between services.
    let (st, v) = get(
        &app,
        &format!(
            "/api/v1/overview/services?start={}&end={}",
            now - 100,
            now + 100
        ),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let f = &v["data"]["services"][1];
    assert_eq!(f["service"], "frontend");
    assert_eq!(
        (f["requests"].clone(), f["errors"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(f["errorRatio"], 1.0);
    assert_eq!(
        (f["p50"].clone(), f["p99"].clone()),
        (json!(0.005), json!(0.12))
    );
    assert_eq!(f["rate"], 0.01);
    assert_eq!(f["measuredBy"], "server spans");
    assert_eq!(v["data"]["services"][0]["service"], "cart");
    assert_eq!(
        v["data"]["edges"],
        json!([{"parent": "frontend", "child": "cart", "calls": 1}])
    );
    let (st, v) = get(&app, "/api/v1/overview/services?start=10&end=5").await;
    assert_eq!(
        (st.as_u16(), v["errorType"].clone()),
        (400, json!("bad_data"))
    );
    let (st, _) = get(&app, "/api/v1/overview/services?start=yesterday").await;
    assert_eq!(st, 400);
}

#[test]
fn ids_and_durations_parse() {
    assert_eq!(parse_trace_id("a").ok().unwrap()[15], 10);
    assert!(parse_trace_id(&"f".repeat(33)).is_err());
    assert_eq!(parse_go_duration("d", "1.5s").ok(), Some(1_500_000_000));
    assert_eq!(parse_go_duration("d", "1m30s").ok(), Some(90_000_000_000));
    assert_eq!(parse_go_duration("d", "500us").ok(), Some(500_000));
}
