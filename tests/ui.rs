//! The web UI in a real browser: headless Chromium driven through ChromeDriver against
//! the real binary with data sent over OTLP. Pages must render on the server (the HTML
//! alone has the chart), hydrate (the legend and hover work), navigate on the client,
//! show query errors, escape telemetry, and log no console errors. Screenshots of each
//! page are written to `target/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test says so and
//! passes, unless `REQUIRE_BROWSER` is set (as CI does), when it fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "ui/webdriver.rs"]
mod webdriver;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use serde_json::json;
use std::path::PathBuf;
use webdriver::{Driver, find_browser};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_hydrate_and_answer_in_a_real_browser() {
    let Some((chromium, chromedriver)) = find_browser() else {
        assert!(
            std::env::var_os("REQUIRE_BROWSER").is_none(),
            "REQUIRE_BROWSER is set but chromium and chromedriver are not installed"
        );
        eprintln!("skipped: install chromium and chromium-driver to run the browser test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"));
    let series: Vec<String> = ["api", "worker", "<b>x</b>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let t = now_ns();
    let mut otlp = MetricsServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap();
    for (ago, v) in [(240, 5.0), (120, 6.0), (0, 7.0)] {
        otlp.export(gauge_request(
            "shop",
            "queue.depth",
            &series,
            t - ago * 1_000_000_000,
            v,
        ))
        .await
        .unwrap();
    }
    let lines: Vec<String> = (0..20)
        .map(|i| match i {
            7 => "payment declined: rare-needle-42".to_string(),
            9 => "<script>window.__injected = true</script>".to_string(),
            _ => format!("request {i} served"),
        })
        .collect();
    LogsServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap()
        .export(logs_request("shop", &lines, t - 60_000_000_000))
        .await
        .unwrap();
    let base = format!("http://{}", srv.http);
    let explore = format!("{base}/explore/metrics?q=queue_depth&from=now-15m&to=now");

    // Rendered on the server: the HTML alone has the chart, the legend, escaped labels.
    let (code, html) = http_get(
        srv.http,
        "/explore/metrics?q=queue_depth&from=now-15m&to=now",
    )
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(html.matches("class=\"line").count(), 3, "{html}");
    assert!(
        html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"),
        "labels are escaped"
    );
    assert!(html.contains("/pkg/signalbox_bg.wasm"), "hydration scripts");
    let (code, _) = http_get(srv.http, "/no/such/page").unwrap();
    assert_eq!(code, 404);
    let (code, wasm) = http_get(srv.http, "/pkg/signalbox_bg.wasm").unwrap();
    assert_eq!(code, 200);
    assert!(!wasm.is_empty());

    let driver = Driver::start(&chromedriver).await;
    let s = driver.session(&chromium, &dir.path().join("profile")).await;
    let shots = screenshots();

    // The start page lists the metric.
    s.goto(&format!("{base}/")).await;
    let name = s
        .wait_for(
            "the metric list",
            10,
            "return document.querySelector('.names a')?.textContent",
        )
        .await;
    assert_eq!(name, "queue_depth");
    s.screenshot(&shots.join("home.png")).await;
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // The explorer: a chart with one line per series, then hydration makes the legend
    // toggle lines and the hover show values.
    s.goto(&explore).await;
    let lines = s
        .js(
            "return document.querySelectorAll('.chart path.line').length",
            json!([]),
        )
        .await;
    assert_eq!(lines, 3);
    let legend = s
        .js(
            "return document.querySelector('.legend').textContent",
            json!([]),
        )
        .await;
    assert!(legend.as_str().unwrap().contains("<b>x</b>"), "{legend}");
    assert_eq!(
        s.js(
            "return document.querySelectorAll('.legend b').length",
            json!([])
        )
        .await,
        0
    );
    s.wait_for(
        "hydration (a legend click hides its line)",
        60,
        "document.querySelector('.legend-item').click();
         return document.querySelector('.chart path.line').classList.contains('hidden')",
    )
    .await;
    s.js("document.querySelector('.legend-item').click()", json!([]))
        .await;
    let tip = s
        .wait_for(
            "hover values",
            10,
            "const r = document.querySelector('.hover-area'); const b = r.getBoundingClientRect();
             r.dispatchEvent(new MouseEvent('mousemove', {clientX: b.right - 2, clientY: b.top + 20, bubbles: true}));
             return document.querySelector('.tooltip')?.textContent",
        )
        .await;
    let tip = tip.as_str().unwrap();
    assert!(
        tip.contains("UTC") && tip.contains('7') && tip.contains("worker"),
        "{tip}"
    );
    s.screenshot(&shots.join("metrics.png")).await;

    // A new query through the form navigates on the client (no reload) and redraws.
    s.js(
        "window.__stayed = true;
         document.querySelector('textarea[name=q]').value = 'queue_depth * 2';
         document.querySelector('.query-form button[type=submit]').click();",
        json!([]),
    )
    .await;
    s.wait_for(
        "the second query's chart",
        20,
        "return [...document.querySelectorAll('.chart .tick')].some(e => e.textContent === '14')",
    )
    .await;
    assert!(s.current_url().await.contains("queue_depth"));
    assert_eq!(
        s.js("return window.__stayed === true", json!([])).await,
        true,
        "the page reloaded"
    );

    // The table view of an instant query.
    s.goto(&format!("{explore}&tab=table")).await;
    let rows = s
        .js(
            "return document.querySelectorAll('.result-table tbody tr').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, 3);
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // A bad query shows Prometheus' error where the query is.
    s.goto(&format!("{base}/explore/metrics?q=sum(")).await;
    let err = s
        .js(
            "return document.querySelector('.query-row .error')?.textContent",
            json!([]),
        )
        .await;
    assert!(
        err.as_str().unwrap_or_default().contains("bad_data"),
        "{err}"
    );

    // Logs: every line of the service with its volume, then a search for a rare term;
    // a line expands to its labels; markup in a line stays text.
    let logs = format!(
        "{base}/explore/logs?q={}&from=now-15m&to=now",
        "%7Bservice_name%3D%22shop%22%7D"
    );
    s.goto(&logs).await;
    assert_eq!(
        s.js(
            "return document.querySelectorAll('.log-line').length",
            json!([])
        )
        .await,
        20
    );
    let bars = s
        .js(
            "return document.querySelectorAll('.chart.volume rect.bar').length",
            json!([]),
        )
        .await;
    assert!(bars.as_u64().unwrap() >= 1, "volume bars: {bars}");
    assert_eq!(
        s.js("return window.__injected === undefined", json!([]))
            .await,
        true
    );
    let text = s
        .js(
            "return document.querySelector('.log-lines').textContent",
            json!([]),
        )
        .await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("<script>window.__injected = true</script>")
    );
    s.js(
        "document.querySelector('.log-line summary').click()",
        json!([]),
    )
    .await;
    let labels = s
        .js(
            "return document.querySelector('.log-line details[open] .labels')?.textContent",
            json!([]),
        )
        .await;
    assert!(
        labels.as_str().unwrap_or_default().contains("service_name"),
        "{labels}"
    );
    s.screenshot(&shots.join("logs.png")).await;
    s.goto(&format!(
        "{base}/explore/logs?q={}&from=now-15m&to=now",
        "%7Bservice_name%3D%22shop%22%7D%20%7C%3D%20%22rare-needle%22"
    ))
    .await;
    let found = s
        .js(
            "return [...document.querySelectorAll('.log-line .msg')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(found, json!(["payment declined: rare-needle-42"]));
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // The theme switch is kept across pages.
    s.wait_for(
        "the dark theme",
        10,
        "document.querySelector('.theme-toggle').click();
         return document.documentElement.getAttribute('data-theme') === 'dark'",
    )
    .await;
    s.goto(&explore).await;
    assert_eq!(
        s.js(
            "return document.documentElement.getAttribute('data-theme')",
            json!([])
        )
        .await,
        "dark"
    );
    s.screenshot(&shots.join("metrics-dark.png")).await;
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    s.close().await;
}
