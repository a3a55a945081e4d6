#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden query tests: every `tests/cases/*.case` file is one request against the Loki,
//! Jaeger and correlation APIs over the fixed data set in `tests/cases/data/` (OTLP/JSON
//! logs and traces, ingested through the collector), and the response it must give.
//!
//! A case file starts with `key: value` lines: `get:` is the path, `status:` the expected
//! HTTP status (default 200), every other key a query parameter (URL-encoded here, so
//! queries stay readable). After a blank line comes the expected body: JSON compared
//! with the response's `data` (or the whole body when it has none), without `stats`,
//! or, for an error status, text the plain-text body must contain.
//!
//! `GOLDEN_UPDATE=1 cargo test -p signalbox-query --test golden` rewrites the expected
//! bodies from the responses; review the diff before committing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use signalbox_collector::{Collector, CollectorConfig};
use signalbox_query::logql::LogqlEngine;
use signalbox_query::{JaegerApi, LokiApi};
use signalbox_storage::MemStore;
use tower::ServiceExt;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

async fn app() -> Router {
    let store = Arc::new(MemStore::new());
    let c = Collector::new(
        store.clone(),
        CollectorConfig::default(),
        &mut Default::default(),
    );
    let data = cases_dir().join("data");
    let logs = std::fs::read(data.join("logs.json")).unwrap();
    let p = c
        .export_logs(serde_json::from_slice(&logs).unwrap())
        .await
        .unwrap();
    assert_eq!(
        p.rejected, 0,
        "every log record of the data set is stored: {}",
        p.message
    );
    let traces = std::fs::read(data.join("traces.json")).unwrap();
    let p = c
        .export_traces(serde_json::from_slice(&traces).unwrap())
        .await
        .unwrap();
    assert_eq!(
        p.rejected, 0,
        "every span of the data set is stored: {}",
        p.message
    );
    let loki = LokiApi::new(
        LogqlEngine::new(store.clone(), 1_000_000),
        Duration::from_secs(30),
    )
    .with_traces(store.clone());
    signalbox_query::loki::router(loki)
        .merge(signalbox_query::jaeger::router(JaegerApi::new(store)))
}

struct Case {
    path: PathBuf,
    header: Vec<(String, String)>,
    expected: String,
}

fn parse_case(path: PathBuf) -> Case {
    let text = std::fs::read_to_string(&path).unwrap();
    let (head, expected) = text
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("{}: no blank line before the expected body", path.display()));
    let header = head
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("{}: bad header line {l:?}", path.display()));
            (k.to_string(), v.to_string())
        })
        .collect();
    Case {
        path,
        header,
        expected: expected.to_string(),
    }
}

fn strip_stats(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("stats");
    }
}

#[tokio::test]
async fn golden_cases() {
    let app = app().await;
    let update = std::env::var_os("GOLDEN_UPDATE").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the golden cases are there");
    let mut failures = Vec::new();
    for path in files {
        let case = parse_case(path);
        let name = case
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut get = None;
        let mut status = 200u16;
        let mut params = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &case.header {
            match k.as_str() {
                "get" => get = Some(v.clone()),
                "status" => status = v.parse().unwrap(),
                _ => {
                    params.append_pair(k, v);
                }
            }
        }
        let get = get.unwrap_or_else(|| panic!("{name}: no get: line"));
        let query = params.finish();
        let uri = if query.is_empty() {
            get
        } else {
            format!("{get}?{query}")
        };
        let resp = app
            .clone()
            .oneshot(axum::http::Request::get(&uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let got_status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if got_status != status {
            failures.push(format!(
                "{name}: status {got_status}, want {status}: {text}"
            ));
            continue;
        }
        if status != 200 {
            if !text.contains(case.expected.trim()) {
                failures.push(format!(
                    "{name}: body {text:?} lacks {:?}",
                    case.expected.trim()
                ));
            }
            continue;
        }
        let mut got: Value = serde_json::from_str(&text).unwrap();
        let mut got = match got.get_mut("data") {
            Some(d) => d.take(),
            None => got,
        };
        strip_stats(&mut got);
        if update {
            let head: String = std::fs::read_to_string(&case.path)
                .unwrap()
                .split_once("\n\n")
                .unwrap()
                .0
                .to_string();
            let pretty = serde_json::to_string_pretty(&got).unwrap();
            std::fs::write(&case.path, format!("{head}\n\n{pretty}\n")).unwrap();
            continue;
        }
        let want: Value = serde_json::from_str(&case.expected)
            .unwrap_or_else(|e| panic!("{name}: expected body is not JSON: {e}"));
        if got != want {
            failures.push(format!(
                "{name}: got\n{}\nwant\n{}",
                serde_json::to_string_pretty(&got).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
