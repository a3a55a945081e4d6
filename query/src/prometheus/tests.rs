//! The API through `Router::oneshot`, checked against the shapes of responses captured
//! from Prometheus 2.42 (`tests/data/prometheus-2.42-api/`).

use super::*;
use axum::body::Body;
use http_body_util::BodyExt;
use signalbox_storage::{
    IngestSink, MemStore, MetricKind, MetricMetadata, MetricsBatch, Sample, SeriesPoints,
};
use tower::ServiceExt;

async fn app() -> Router {
    let store = Arc::new(MemStore::new());
    let mut batch = MetricsBatch::default();
    for (job, inst, v) in [("api", "a", 1.0), ("api", "b", 2.0), ("web", "c", 5.0)] {
        batch.series.push(SeriesPoints {
            starts: Vec::new(),
            labels: Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", inst)]),
            samples: (0..10)
                .map(|i| Sample {
                    t: 1_000_000 + i * 15_000,
                    v,
                })
                .collect(),
            histograms: vec![],
            // One exemplar on the first series, pointing at a trace.
            exemplars: if inst == "a" {
                vec![signalbox_storage::Exemplar {
                    t: 1_000_015,
                    value: v,
                    labels: Labels::from_pairs([("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]),
                }]
            } else {
                Vec::new()
            },
        });
    }
    batch.metadata.push(MetricMetadata {
        metric: "up".into(),
        kind: MetricKind::Gauge,
        unit: String::new(),
        help: "Target is up".into(),
    });
    store.write_metrics(batch).await.unwrap();
    router(PromApi::new(
        store,
        Engine::default(),
        Duration::from_secs(86400),
    ))
}

pub(crate) async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    form: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub(crate) fn sample(name: &str) -> Value {
    let p = format!(
        "{}/tests/data/prometheus-2.42-api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["body"].clone()
}

/// The same keys and JSON types all the way down (arrays compared by their first element).
pub(crate) fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys().collect::<Vec<_>>() == y.keys().collect::<Vec<_>>()
                && x.iter().all(|(k, v)| same_shape(v, &y[k]))
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(p), Some(q)) => same_shape(p, q),
            _ => true,
        },
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => true,
        _ => false,
    }
}

#[tokio::test]
async fn query_results_have_prometheus_shapes() {
    let app = app().await;
    let (st, v) = call(
        &app,
        "GET",
        "/api/v1/query?query=up%7Bjob%3D%22web%22%7D&time=1100",
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(same_shape(&v, &sample("query_vector.json")), "{v}");
    assert_eq!(v["data"]["result"][0]["value"], json!([1100, "5"]));

    let (_, v) = call(&app, "GET", "/api/v1/query?query=1%2B1&time=1100.5", None).await;
    assert!(same_shape(&v, &sample("query_scalar.json")), "{v}");
    assert_eq!(v["data"]["result"], json!([1100.5, "2"]));

    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query?query=%22hello%22&time=1100",
        None,
    )
    .await;
    assert!(same_shape(&v, &sample("query_string.json")), "{v}");

    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query?query=up%5B1m%5D&time=1100",
        None,
    )
    .await;
    assert!(same_shape(&v, &sample("query_matrix_instant.json")), "{v}");

    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query?query=vector(0%2F0)&time=1100",
        None,
    )
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "NaN");

    let (st, v) = call(
        &app,
        "POST",
        "/api/v1/query_range",
        Some("query=sum+by+(job)+(up)&start=1000&end=1120&step=30s"),
    )
    .await;
    assert_eq!(st, 200);
    assert!(same_shape(&v, &sample("query_range.json")), "{v}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"]["result"][0]["values"][0], json!([1000, "3"]));
}

#[tokio::test]
async fn errors_have_prometheus_shapes_and_statuses() {
    let app = app().await;
    let (st, v) = call(&app, "GET", "/api/v1/query?query=sum(up", None).await;
    assert_eq!(st, 400);
    assert!(same_shape(&v, &sample("error_bad_data_parse.json")), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": ")
    );

    let (st, v) = call(&app, "GET", "/api/v1/query_range?query=up", None).await;
    assert_eq!(st, 400);
    assert_eq!(v, sample("error_bad_data_missing_param.json"));

    let (st, v) = call(
        &app,
        "GET",
        "/api/v1/query_range?query=up&start=0&end=1795310968&step=1",
        None,
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v, sample("error_too_many_points.json"));

    let (st, v) = call(&app, "GET", "/api/v1/query?query=label_replace(up%2C%22instance%22%2C%22z%22%2C%22%22%2C%22%22)*1&time=1100", None).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v, sample("error_execution.json"));
}

#[tokio::test]
async fn metadata_endpoints() {
    let app = app().await;
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/series?match%5B%5D=up%7Bjob%3D%22api%22%7D",
        None,
    )
    .await;
    assert_eq!(v["status"], sample("series.json")["status"]);
    assert_eq!(
        v["data"],
        json!([{"__name__": "up", "instance": "a", "job": "api"}, {"__name__": "up", "instance": "b", "job": "api"}])
    );
    let (st, v) = call(&app, "GET", "/api/v1/series", None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("no match[] parameter provided")
        )
    );
    let (_, v) = call(&app, "GET", "/api/v1/labels", None).await;
    assert_eq!(v["data"], json!(["__name__", "instance", "job"]));
    let (_, v) = call(&app, "GET", "/api/v1/label/job/values", None).await;
    assert_eq!(v["data"], json!(["api", "web"]));
    let (_, v) = call(&app, "GET", "/api/v1/label/instance/values?limit=1", None).await;
    assert_eq!(v["data"], json!(["a"]));
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    let (_, v) = call(&app, "GET", "/api/v1/metadata?metric=up", None).await;
    assert!(
        same_shape(
            &v["data"]["up"],
            &sample("metadata_one.json")["data"]["prometheus_http_requests_total"]
        ),
        "{v}"
    );
    assert_eq!(v["data"]["up"][0]["type"], "gauge");
    let (_, v) = call(&app, "GET", "/api/v1/status/buildinfo", None).await;
    assert_eq!(v["status"], "success");
    let (st, _) = call(&app, "GET", "/api/v1/nonexistent", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn byte_escapes_read_as_prometheus_reads_them() {
    let app = app().await;
    // label_replace(up{instance="a"}, "x", "caf\xc3\xa9", "", "")
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query?time=1000&query=label_replace(up%7Binstance%3D%22a%22%7D%2C%22x%22%2C%22caf%5Cxc3%5Cxa9%22%2C%22%22%2C%22%22)",
        None,
    )
    .await;
    assert_eq!(v["data"]["result"][0]["metric"]["x"], "café", "{v}");
    // A byte outside UTF-8 is answered as Go's JSON encoder writes it: "a\xffb".
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query?time=1000&query=%22a%5Cxffb%22",
        None,
    )
    .await;
    assert_eq!(v["data"]["result"][1], "a\u{fffd}b", "{v}");
    // count_values("a\xc5z", up): not UTF-8, so not a label name.
    let (st, v) = call(
        &app,
        "GET",
        "/api/v1/query?time=1000&query=count_values(%22a%5Cxc5z%22%2Cup)",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], "invalid label name \"a\\xc5z\"", "{v}");
    // match[] selectors with escapes are accepted (`up{job="\x61pi"}` selects api's two
    // series; `{job="caf\xc3\xa9"}` none). That they decode as Prometheus does is
    // checked on `escapes::parse`, which match[] calls.
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/series?match%5B%5D=up%7Bjob%3D%22%5Cx61pi%22%7D&match%5B%5D=%7Bjob%3D%22caf%5Cxc3%5Cxa9%22%7D",
        None,
    )
    .await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn values_are_written_as_prometheus_writes_them() {
    for (v, s) in [
        (0.5, "0.5"),
        (140.0, "140"),
        (1e-7, "1e-07"),
        (-2.5e-9, "-2.5e-09"),
        (1.5e21, "1.5e+21"),
        (123456789.0, "123456789"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(value_string(v), s);
    }
    // A histogram with nothing in its buckets has no bucket list.
    let h = Histogram {
        count: 0.0,
        sum: 0.0,
        ..Histogram::default()
    };
    assert_eq!(
        histogram_json(&h),
        serde_json::json!({"count": "0", "sum": "0"})
    );
}

#[tokio::test]
async fn exemplars_of_the_selected_series_in_the_range() {
    let app = app().await;
    let (st, v) = call(
        &app,
        "GET",
        "/api/v1/query_exemplars?query=sum(up%7Bjob%3D%22api%22%7D)&start=999&end=1100",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"status": "success", "data": [{
            "seriesLabels": {"__name__": "up", "instance": "a", "job": "api"},
            "exemplars": [{
                "labels": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
                "value": "1",
                "timestamp": 1000.015
            }]
        }]})
    );
    // Outside the range, or another job: none.
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query_exemplars?query=up&start=1001&end=1100",
        None,
    )
    .await;
    assert_eq!(v["data"], serde_json::json!([]));
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/query_exemplars?query=up%7Bjob%3D%22web%22%7D",
        None,
    )
    .await;
    assert_eq!(v["data"], serde_json::json!([]));
    let (st, v) = call(&app, "GET", "/api/v1/query_exemplars?query=up%7B", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
