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
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::json;
use std::path::PathBuf;
use webdriver::{ARROW_DOWN, Driver, ENTER, Session, TAB, find_browser};

const CHECKOUT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// The bytes of [`CHECKOUT_TRACE`].
fn trace_id_bytes() -> Vec<u8> {
    (0..16)
        .map(|i| u8::from_str_radix(&CHECKOUT_TRACE[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A checkout across two services: frontend `GET /checkout` (0–120 ms) calls payments
/// `charge card` (10–100 ms, failed, with an event), which runs `SELECT cards`
/// (20–40 ms); and a log line written inside `charge card`.
fn checkout_trace(t: u64) -> (ExportTraceServiceRequest, ExportLogsServiceRequest) {
    let id = trace_id_bytes();
    let ms = |n: u64| t + n * 1_000_000;
    let span = |n: u8, parent: u8, name: &str, start: u64, end: u64| Span {
        trace_id: id.clone(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, n],
        parent_span_id: if parent == 0 {
            vec![]
        } else {
            vec![0, 0, 0, 0, 0, 0, 0, parent]
        },
        name: name.into(),
        kind: 2,
        start_time_unix_nano: ms(start),
        end_time_unix_nano: ms(end),
        ..Default::default()
    };
    let mut charge = span(2, 1, "charge card", 10, 100);
    charge.attributes = vec![kv("payment.method", "card")];
    charge.status = Some(Status {
        code: 2,
        message: "declined".into(),
    });
    charge.events = vec![span::Event {
        time_unix_nano: ms(50),
        name: "retrying".into(),
        ..Default::default()
    }];
    // A client span: payments is measured by its one server span, `charge card`.
    let mut select = span(3, 2, "SELECT cards", 20, 40);
    select.kind = 3;
    let service = |name: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", name)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    };
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![
            service("frontend", vec![span(1, 0, "GET /checkout", 0, 120)]),
            service("payments", vec![charge, select]),
        ],
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "payments")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: ms(60),
                    severity_text: "ERROR".into(),
                    severity_number: 17,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("card declined".into())),
                    }),
                    trace_id: id.clone(),
                    span_id: vec![0, 0, 0, 0, 0, 0, 0, 2],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (spans, logs)
}

/// Sends one line of the `shop` service, timestamped now.
async fn send_shop_line(grpc: &str, text: &str) {
    LogsServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap()
        .export(logs_request("shop", &[text.to_string()], now_ns()))
        .await
        .unwrap();
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots")
}

/// Runs the script `before`, then `query` through the explorer's form (as a click on its
/// button does).
async fn submit_query(s: &Session, before: &str, query: &str) {
    s.js(
        &format!(
            "{before}
             document.querySelector('textarea[name=q]').value = arguments[0];
             document.querySelector('.query-form button[type=submit]').click();"
        ),
        json!([query]),
    )
    .await;
}

/// Types `typed` into the query box `css`, waits until `offered` is the suggestion
/// picked, takes it with Tab, and checks that the box then holds `then`.
async fn take_with_tab(s: &Session, css: &str, typed: &str, offered: &str, then: &str) {
    s.type_into(css, typed).await;
    s.wait_for(
        &format!("{offered} offered"),
        20,
        &format!(
            "return document.querySelector('.suggestions li.active')?.textContent === {}",
            json!(offered)
        ),
    )
    .await;
    s.type_into(css, TAB).await;
    assert_eq!(
        s.js(
            &format!("return document.querySelector('{css}').value"),
            json!([])
        )
        .await,
        then
    );
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
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: queues\n  interval: 1s\n  rules:\n  - alert: QueueDeep\n    expr: queue_depth > 5\n    labels: {severity: page}\n    annotations: {summary: 'queue {{ $labels.series }} is deep'}\n",
    )
    .unwrap();
    let srv = Server::start_with(
        &dir.path().join("data"),
        &["--rule-file", rules.to_str().unwrap()],
    );
    let series: Vec<String> = ["api", "worker", "<b>x</b>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let t = now_ns();
    for (ago, v) in [(240, 5.0), (120, 6.0), (0, 7.0)] {
        let at = t - ago * 1_000_000_000;
        let mut req = gauge_request("shop", "queue.depth", &series, at, v);
        if ago == 120 {
            // The api series' point was measured in the checkout trace's first span.
            req = with_exemplar(req, at, v, trace_id_bytes(), vec![0, 0, 0, 0, 0, 0, 0, 1]);
        }
        srv.export_metrics(req).await;
    }
    let lines: Vec<String> = (0..20)
        .map(|i| match i {
            7 => "payment declined: rare-needle-42".to_string(),
            9 => "<script>window.__injected = true</script>".to_string(),
            _ => format!("request {i} served"),
        })
        .collect();
    let (spans, span_logs) = checkout_trace(t - 30_000_000_000);
    TraceServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap()
        .export(spans)
        .await
        .unwrap();
    LogsServiceClient::connect(format!("http://{}", srv.grpc))
        .await
        .unwrap()
        .export(span_logs)
        .await
        .unwrap();
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
    // A trace looked up by its id (in any case), and an id that is not one.
    let (code, html) = http_get(
        srv.http,
        &format!("/traces?traceID={}", CHECKOUT_TRACE.to_uppercase()),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(
        html.contains(&format!("href=\"/traces/{CHECKOUT_TRACE}\"")) && html.contains("3 spans"),
        "{html}"
    );
    let (_, html) = http_get(srv.http, "/traces?traceID=xyz").unwrap();
    assert!(html.contains("is not a trace id"), "{html}");
    let (code, wasm) = http_get(srv.http, "/pkg/signalbox_bg.wasm").unwrap();
    assert_eq!(code, 200);
    assert!(!wasm.is_empty());

    let driver = Driver::start(&chromedriver).await;
    let s = driver.session(&chromium, &dir.path().join("profile")).await;
    let shots = screenshots();

    // The start page: the services with their RED figures, the map of their calls,
    // and the metric names.
    s.goto(&format!("{base}/")).await;
    let services = s
        .js(
            "return [...document.querySelectorAll('.red-table tbody tr')].map(r =>
               [...r.querySelectorAll('td')].slice(0, 3).map(td => td.textContent))",
            json!([]),
        )
        .await;
    assert_eq!(services[0][0], "frontend", "{services}");
    assert_eq!(services[1][0], "payments", "{services}");
    assert_eq!(services[1][2], "100.0%", "charge card failed: {services}");
    assert_eq!(
        s.js(
            "return [document.querySelectorAll('.service-node').length, document.querySelectorAll('.service-map .call').length]",
            json!([])
        )
        .await,
        json!([2, 1])
    );
    let name = s
        .wait_for(
            "the metric list",
            10,
            "return [...document.querySelectorAll('.names a')].map(a => a.textContent).find(n => n === 'queue_depth')",
        )
        .await;
    assert_eq!(name, "queue_depth");
    s.screenshot(&shots.join("overview.png")).await;
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
    // The keyboard shows the same values: focus the chart, Escape hides them, End shows
    // the last time's, the left arrow steps back.
    s.js("document.querySelector('.chart').focus()", json!([]))
        .await;
    s.press("\u{E00C}").await;
    assert_eq!(
        s.js(
            "return document.querySelector('.tooltip') === null",
            json!([])
        )
        .await,
        true
    );
    let tip_time = "return document.querySelector('.tooltip .tooltip-time')?.textContent";
    s.press("\u{E010}").await;
    let last = s.wait_for("values by keyboard", 10, tip_time).await;
    s.press("\u{E012}").await;
    let before = s.js(tip_time, json!([])).await;
    assert!(
        last.is_string() && before.is_string() && before != last,
        "the left arrow steps back: {last} {before}"
    );
    let tip = s
        .js(
            "return document.querySelector('.tooltip')?.textContent",
            json!([]),
        )
        .await;
    assert!(tip.as_str().unwrap().contains("worker"), "{tip}");
    // The exemplar is a marker that names its series and opens its trace.
    let marker = s
        .js(
            "const a = document.querySelector('.chart .exemplar a');
             return [a?.getAttribute('href'), a?.querySelector('title')?.textContent]",
            json!([]),
        )
        .await;
    assert_eq!(marker[0], format!("/traces/{CHECKOUT_TRACE}"), "{marker}");
    let title = marker[1].as_str().unwrap_or_default();
    assert!(
        title.contains("Exemplar 6")
            && title.contains("series=\"api\"")
            && title.contains("span_id: 0000000000000001"),
        "{title}"
    );
    // The markers are no Tab stops; the keyboard finds the exemplar by stepping back to
    // its time, and Enter opens its trace.
    assert_eq!(
        s.js(
            "return document.querySelector('.chart .exemplar a').tabIndex",
            json!([])
        )
        .await,
        -1
    );
    s.press_until(
        "\u{E012}",
        "return (document.querySelector('.tooltip')?.textContent || '').includes('Enter opens it')",
        200,
        "no exemplar found by keyboard",
    )
    .await;
    s.screenshot(&shots.join("metrics.png")).await;
    s.press(ENTER).await;
    s.wait_for(
        "the exemplar's trace",
        20,
        "return document.querySelectorAll('.span-row').length === 3",
    )
    .await;
    assert!(s.current_url().await.contains(CHECKOUT_TRACE));

    // Completion in the PromQL box: a metric name, then a label of that metric.
    s.goto(&format!("{base}/explore/metrics?from=now-15m&to=now"))
        .await;
    s.wait_hydrated().await;
    let promql_box = "textarea[name=q]";
    s.type_into(promql_box, "queue_d").await;
    s.wait_for(
        "metric names offered",
        20,
        "return document.querySelector('.suggestions li.active')?.textContent === 'queue_depth'",
    )
    .await;
    take_with_tab(
        &s,
        promql_box,
        &format!("{ENTER}{{ser"),
        "series",
        "queue_depth{series",
    )
    .await;
    s.goto(&explore).await;
    s.wait_hydrated().await;

    // A new query through the form navigates on the client (no reload) and redraws.
    submit_query(&s, "window.__stayed = true;", "queue_depth * 2").await;
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

    // A running query shows for how long it has run, and Cancel stops it: the browser's
    // fetch is made to answer only when aborted, so the query is still running when
    // Cancel is pressed, and the query row then says it was cancelled.
    submit_query(
        &s,
        "window.__fetch = window.fetch;
         window.fetch = (input, init) => new Promise((_, reject) => {
           const signal = (init && init.signal) || (input && input.signal);
           signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
         });",
        "queue_depth * 3",
    )
    .await;
    s.wait_for(
        "the running query's elapsed time",
        20,
        "const e = document.querySelector('.results .running .elapsed');
         return e !== null && parseFloat(e.textContent) >= 0.3",
    )
    .await;
    s.js(
        "document.querySelector('.results .running .cancel').click()",
        json!([]),
    )
    .await;
    s.wait_for(
        "the query marked cancelled",
        10,
        "return document.querySelector('.query-row .error')?.textContent === 'Cancelled.'",
    )
    .await;
    assert_eq!(
        s.js(
            "window.fetch = window.__fetch; return document.querySelectorAll('.running').length",
            json!([])
        )
        .await,
        0,
        "nothing is left running"
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

    // Completion in the LogQL box: a label name, then its values, chosen by keyboard;
    // Enter with the list closed runs the query.
    s.goto(&format!("{base}/explore/logs?from=now-15m&to=now"))
        .await;
    s.wait_hydrated().await;
    let logs_box = "textarea[name=q]";
    s.type_into(logs_box, "{service_na").await;
    let offered = s
        .wait_for(
            "label names offered",
            20,
            "return [...document.querySelectorAll('.suggestions li')].map(li => li.textContent).join(',')",
        )
        .await;
    assert!(
        offered.as_str().unwrap().starts_with("service_name"),
        "{offered}"
    );
    s.type_into(logs_box, ENTER).await;
    s.type_into(logs_box, "=\"").await;
    let offered = s
        .wait_for(
            "label values offered",
            20,
            "return [...document.querySelectorAll('.suggestions li')].map(li => li.textContent).join(',')",
        )
        .await;
    assert_eq!(offered, "payments,shop", "{offered}");
    s.screenshot(&shots.join("logs-completion.png")).await;
    s.type_into(logs_box, ARROW_DOWN).await;
    assert_eq!(
        s.js(
            "return document.querySelector('.suggestions li.active')?.textContent",
            json!([])
        )
        .await,
        "shop"
    );
    s.type_into(logs_box, TAB).await;
    assert_eq!(
        s.js(
            &format!("return document.querySelector('{logs_box}').value"),
            json!([])
        )
        .await,
        "{service_name=\"shop\""
    );
    assert_eq!(
        s.js(
            "return document.querySelector('.suggestions').hidden",
            json!([])
        )
        .await,
        true
    );
    // After a pipe, the pipeline's stages.
    take_with_tab(
        &s,
        logs_box,
        "} | deco",
        "decolorize",
        "{service_name=\"shop\"} | decolorize",
    )
    .await;
    // After a parser, the labels it extracts from the query's recent lines.
    let parsed = "{service_name=\"shop\"} | decolorize | regexp \"request (?P<num>[0-9]+)\"";
    take_with_tab(
        &s,
        logs_box,
        " | regexp \"request (?P<num>[0-9]+)\" | nu",
        "num",
        &format!("{parsed} | num"),
    )
    .await;
    take_with_tab(
        &s,
        logs_box,
        " > 3 | keep serv",
        "service_name",
        &format!("{parsed} | num > 3 | keep service_name"),
    )
    .await;
    s.js(
        &format!("document.querySelector('{logs_box}').value = arguments[0]"),
        json!(["{service_name=\"shop\"} | decolorize"]),
    )
    .await;
    s.type_into(logs_box, ENTER).await;
    s.wait_for(
        "the query run by Enter",
        20,
        "return document.querySelectorAll('.log-line').length === 20",
    )
    .await;
    assert!(s.current_url().await.contains("service_name"));

    // Live tail: the newest lines at once, then a line sent afterwards appears.
    s.js("document.querySelector('.live-toggle').click()", json!([]))
        .await;
    s.wait_for(
        "the live tail's first lines",
        20,
        "return document.querySelectorAll('.live-tail .log-line').length === 20",
    )
    .await;
    send_shop_line(&srv.grpc.to_string(), "live-line-77").await;
    let newest = s
        .wait_for(
            "the new line in the live tail",
            20,
            "const m = document.querySelector('.live-tail .log-line .msg')?.textContent;
             return m === 'live-line-77' && m",
        )
        .await;
    assert_eq!(newest, "live-line-77");
    s.screenshot(&shots.join("logs-live.png")).await;
    s.js("document.querySelector('.live-toggle').click()", json!([]))
        .await;
    assert_eq!(
        s.js(
            "return document.querySelector('.live-status').textContent",
            json!([])
        )
        .await,
        "Stopped."
    );
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

    // Back to the light theme for the trace pages' screenshots.
    s.js("document.querySelector('.theme-toggle').click()", json!([]))
        .await;

    // Traces: the search lists the trace; changing the service reloads the operations
    // in place; the trace opens on the client with its waterfall, critical path, span
    // details, folding and the logs of the trace.
    s.goto(&format!(
        "{base}/traces?service=frontend&from=now-15m&to=now"
    ))
    .await;
    let item = s
        .wait_for(
            "the trace in the results",
            10,
            "return document.querySelector('.trace-item')?.textContent",
        )
        .await;
    let item = item.as_str().unwrap();
    assert!(
        item.contains("frontend: GET /checkout")
            && item.contains("3 spans")
            && item.contains("1 errors"),
        "{item}"
    );
    assert_eq!(
        s.js(
            "return document.querySelectorAll('.trace-item').length",
            json!([])
        )
        .await,
        1
    );
    s.screenshot(&shots.join("traces.png")).await;
    s.wait_for(
        "operations of the chosen service",
        30,
        "const sel = document.querySelector('select[name=service]');
         if (sel.value !== 'payments') { sel.value = 'payments'; sel.dispatchEvent(new Event('change', {bubbles: true})); }
         return [...document.querySelectorAll('select[name=operation] option')].some(o => o.value === 'charge card')",
    )
    .await;
    s.js(
        "window.__stayed = true; document.querySelector('.trace-name').click()",
        json!([]),
    )
    .await;
    s.wait_for(
        "the waterfall",
        20,
        "return document.querySelectorAll('.span-row').length === 3",
    )
    .await;
    assert_eq!(
        s.js("return window.__stayed === true", json!([])).await,
        true,
        "the page reloaded"
    );
    assert!(s.current_url().await.contains(CHECKOUT_TRACE));
    let rows = s
        .js(
            "return [...document.querySelectorAll('.span-row')].map(r =>
               [r.querySelector('.span-op').textContent, r.classList.contains('critical'), r.classList.contains('failed')])",
            json!([]),
        )
        .await;
    assert_eq!(
        rows,
        json!([
            ["GET /checkout", true, false],
            ["charge card", true, true],
            ["SELECT cards", true, false]
        ])
    );
    s.js(
        "document.querySelectorAll('.span-open')[1].click()",
        json!([]),
    )
    .await;
    let details = s
        .wait_for(
            "span details",
            10,
            "return document.querySelector('.span-details')?.textContent",
        )
        .await;
    let details = details.as_str().unwrap();
    assert!(
        details.contains("payment.method")
            && details.contains("card")
            && details.contains("retrying"),
        "{details}"
    );
    // By keyboard alone: Tab from the top of the page reaches the root span's fold
    // button, Enter folds its children, Space unfolds them.
    s.js(
        "document.activeElement?.blur(); window.scrollTo(0, 0)",
        json!([]),
    )
    .await;
    s.press_until(
        TAB,
        "return document.activeElement?.classList.contains('fold') === true",
        100,
        "Tab never reached the fold button",
    )
    .await;
    // The focus shows where it is.
    assert_eq!(
        s.js(
            "const e = document.activeElement;
             return e.matches(':focus-visible') && getComputedStyle(e).outlineStyle !== 'none'",
            json!([])
        )
        .await,
        true,
        "the focused fold button shows its focus"
    );
    s.press(ENTER).await;
    s.wait_for(
        "folding the root",
        10,
        "return document.querySelectorAll('.span-row.folded').length === 2",
    )
    .await;
    s.press(" ").await;
    s.wait_for(
        "unfolding the root",
        10,
        "return document.querySelectorAll('.span-row.folded').length === 0",
    )
    .await;
    let logs_text = s
        .wait_for(
            "the logs of the trace",
            10,
            "return document.querySelector('.trace-logs .log-lines')?.textContent",
        )
        .await;
    assert!(
        logs_text.as_str().unwrap().contains("card declined"),
        "{logs_text}"
    );
    s.screenshot(&shots.join("trace.png")).await;
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // Alerts: the rule fires for the three deep queues; an alert's "Silence…" link fills
    // the form with its labels; the silence is created, listed, then expired.
    s.goto(&format!("{base}/alerts")).await;
    s.wait_for(
        "three firing alerts",
        30,
        "if (document.querySelectorAll('.alert-item .state-firing').length === 3) return true;
         if (!window.__reloading) { window.__reloading = true; setTimeout(() => location.reload(), 1000); }
         return false",
    )
    .await;
    let rule = s
        .js(
            "return document.querySelector('.rules-table tbody tr')?.textContent",
            json!([]),
        )
        .await;
    assert!(
        rule.as_str().unwrap().contains("QueueDeep") && rule.as_str().unwrap().contains("firing"),
        "{rule}"
    );
    s.js("document.querySelector('.silence-link').click()", json!([]))
        .await;
    let filled = s
        .wait_for(
            "the silence form filled from the alert",
            10,
            "const v = document.querySelector('input[name=matchers]').value; return v.includes('alertname') ? v : null",
        )
        .await;
    assert!(
        filled
            .as_str()
            .unwrap()
            .contains(r#"alertname="QueueDeep""#),
        "{filled}"
    );
    s.wait_hydrated().await;
    s.js(
        "const set = (n, v) => { const i = document.querySelector(`input[name=${n}]`); i.value = v; i.dispatchEvent(new Event('input', {bubbles: true})); };
         set('createdBy', 'ops'); set('comment', 'deploy in progress');
         document.querySelector('.silence-form button[type=submit]').click();",
        json!([]),
    )
    .await;
    s.wait_for(
        "the new silence",
        20,
        "return document.querySelector('.silence-item .state-active') !== null && document.querySelector('p.ok') !== null",
    )
    .await;
    // The silenced alert (only that one: the silence has all its labels) says so.
    let silenced = s
        .wait_for(
            "the alert marked silenced",
            20,
            "const s = [...document.querySelectorAll('.alert-item .state-silenced')];
             return s.length === 1 && s[0].closest('.alert-item').textContent",
        )
        .await;
    assert!(
        silenced.as_str().unwrap().contains("since 20"),
        "times are written out: {silenced}"
    );
    // As the UI writes times (UTC, no RFC 3339 `T`), not as the API gives them.
    let since = silenced
        .as_str()
        .unwrap()
        .split("since ")
        .nth(1)
        .unwrap_or("");
    assert!(
        since.contains(" UTC") && !since[..since.len().min(19)].contains('T'),
        "times are written as the UI writes them: {silenced}"
    );
    s.screenshot(&shots.join("alerts.png")).await;
    s.js(
        "document.querySelector('.silence-item .expire').click()",
        json!([]),
    )
    .await;
    s.wait_for(
        "the silence expired",
        20,
        "return document.querySelector('.silence-item.expired') !== null",
    )
    .await;
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // Dashboards: create one, add panels through the form and a variable in the
    // document, save; it draws, survives a reload, and follows the variable; a Grafana
    // export imports with a placeholder for what cannot be drawn.
    s.goto(&format!("{base}/dashboards")).await;
    s.wait_hydrated().await;
    s.js(
        "const i = document.querySelector('input[name=title]');
         i.value = 'Shop'; i.dispatchEvent(new Event('input', {bubbles: true}));
         document.querySelector('.silence-form button[type=submit]').click();",
        json!([]),
    )
    .await;
    s.wait_for(
        "the editor of the new dashboard",
        20,
        "return location.pathname.endsWith('/edit')",
    )
    .await;
    s.wait_for(
        "the editor",
        20,
        "return (document.querySelector('textarea.document')?.value || '').includes('\"title\": \"Shop\"')",
    )
    .await;
    for (title, kind, lang, expr, width) in [
        (
            "Queues",
            "timeseries",
            "promql",
            "queue_depth{series=~\"$series\"}",
            "12",
        ),
        ("Total", "stat", "promql", "sum(queue_depth)", "12"),
        (
            "Shop logs",
            "logs",
            "logql",
            "{service_name=\"shop\"}",
            "24",
        ),
    ] {
        s.js(
            "const [title, kind, lang, expr, width] = arguments;
             const set = (sel, v, ev) => { const e = document.querySelector(sel); e.value = v; e.dispatchEvent(new Event(ev, {bubbles: true})); };
             set('input[name=panel-title]', title, 'input'); set('select[name=panel-type]', kind, 'change');
             set('select[name=panel-lang]', lang, 'change'); set('textarea[name=panel-query]', expr, 'input');
             set('input[name=panel-width]', width, 'input');
             document.querySelector('.add-panel').click();",
            json!([title, kind, lang, expr, width]),
        )
        .await;
    }
    s.js(
        "const t = document.querySelector('textarea.document'); const d = JSON.parse(t.value);
         d.variables = [{name: 'series', query: 'label_values(queue_depth, series)', multi: true, include_all: true}];
         t.value = JSON.stringify(d, null, 2); t.dispatchEvent(new Event('input', {bubbles: true}));
         document.querySelector('button.save').click();",
        json!([]),
    )
    .await;
    s.wait_for(
        "the saved dashboard",
        30,
        "return !location.pathname.endsWith('/edit') && document.querySelectorAll('.panel').length === 3
           && document.querySelectorAll('.panel-timeseries path.line').length === 3",
    )
    .await;
    let dash_url = s.current_url().await;
    let stat = s
        .wait_for(
            "the stat",
            10,
            "return document.querySelector('.panel-stat .stat-value')?.textContent",
        )
        .await;
    assert_eq!(stat, "21");
    assert_eq!(
        s.js(
            "return document.querySelectorAll('.panel-logs .log-line').length",
            json!([])
        )
        .await,
        21,
        "the shop's 20 lines and the one sent during the live tail"
    );
    s.screenshot(&shots.join("dashboard.png")).await;
    s.goto(&dash_url).await;
    assert_eq!(
        s.js(
            "return document.querySelectorAll('.panel').length",
            json!([])
        )
        .await,
        3,
        "the dashboard was saved on the server"
    );
    let options = s
        .js("return [...document.querySelectorAll('select[name=var-series] option')].map(o => o.value)", json!([]))
        .await;
    assert_eq!(options, json!(["$__all", "<b>x</b>", "api", "worker"]));
    // Auto-refresh: with a one-second refresh a line sent now shows up in the logs panel
    // without reloading the page.
    let sep = if dash_url.contains('?') { '&' } else { '?' };
    s.goto(&format!("{dash_url}{sep}refresh=1s")).await;
    s.wait_hydrated().await;
    assert_eq!(
        s.js(
            "return document.querySelector('select[name=refresh]').value",
            json!([])
        )
        .await,
        "1s",
        "the form shows the period in effect"
    );
    send_shop_line(&srv.grpc.to_string(), "refreshed-line-5").await;
    s.wait_for(
        "the new line in the refreshed logs panel",
        20,
        "return [...document.querySelectorAll('.panel-logs .log-line .msg')].some(m => m.textContent === 'refreshed-line-5')",
    )
    .await;
    s.goto(&format!("{dash_url}?var-series=api")).await;
    assert_eq!(
        s.js(
            "return document.querySelectorAll('.panel-timeseries path.line').length",
            json!([])
        )
        .await,
        1
    );
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // The panel editor: retitle the first panel and move the logs panel up; the fields
    // change the document, and the saved dashboard shows the panels in the new order.
    s.goto(&format!("{dash_url}/edit")).await;
    s.wait_hydrated().await;
    s.wait_for(
        "the panel editor",
        20,
        "return document.querySelector('input[name=panel-0-title]')?.value === 'Queues'
           && document.querySelectorAll('.panel-editor').length === 3",
    )
    .await;
    assert_eq!(
        s.js(
            "return [...document.querySelectorAll('.panel-editor')[0].querySelectorAll(':scope > .range-row button')]
               .map(b => b.textContent + (b.disabled ? ' (disabled)' : ''))",
            json!([])
        )
        .await,
        json!(["Add query", "Move up (disabled)", "Move down", "Remove panel"])
    );
    s.js(
        "const i = document.querySelector('input[name=panel-0-title]');
         i.value = 'Queue depth'; i.dispatchEvent(new Event('change', {bubbles: true}));
         document.querySelector('input[name=panel-0-exemplars-0]').click();
         document.querySelectorAll('.panel-editor .move-up')[2].click();",
        json!([]),
    )
    .await;
    s.wait_for(
        "the edits in the document",
        10,
        "const d = JSON.parse(document.querySelector('textarea.document').value);
         return d.panels.map(p => p.title).join(',') === 'Queue depth,Shop logs,Total'
           && d.panels[0].queries[0].exemplars === true
           && document.querySelector('input[name=panel-1-title]').value === 'Shop logs'",
    )
    .await;
    s.screenshot(&shots.join("dashboard-edit.png")).await;
    s.js("document.querySelector('button.save').click()", json!([]))
        .await;
    let titles = s
        .wait_for(
            "the saved order",
            30,
            "return !location.pathname.endsWith('/edit')
               && [...document.querySelectorAll('.panel-title')].map(h => h.textContent.trim()).join(',')",
        )
        .await;
    assert!(
        titles
            .as_str()
            .unwrap()
            .starts_with("Queue depth,Shop logs,Total"),
        "{titles}"
    );
    // The time-series panel now draws the exemplar, which links to its trace.
    let href = s
        .wait_for(
            "the panel's exemplar",
            20,
            "return document.querySelector('.panel-timeseries .exemplar a')?.getAttribute('href')",
        )
        .await;
    assert_eq!(href, format!("/traces/{CHECKOUT_TRACE}"));
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    s.goto(&format!("{base}/dashboards")).await;
    s.wait_hydrated().await;
    let export = json!({"title": "From Grafana", "schemaVersion": 39, "panels": [
        {"type": "stat", "title": "Depth", "gridPos": {"x": 0, "y": 0, "w": 8, "h": 4},
         "targets": [{"expr": "max(queue_depth)", "datasource": {"type": "prometheus"}}]},
        {"type": "piechart", "title": "Pie", "gridPos": {"x": 8, "y": 0, "w": 8, "h": 4}}]});
    s.js(
        "const t = document.querySelector('textarea[name=grafana]'); t.value = arguments[0];
         t.dispatchEvent(new Event('input', {bubbles: true}));
         t.closest('form').querySelector('button[type=submit]').click();",
        json!([export.to_string()]),
    )
    .await;
    s.wait_for(
        "the imported dashboard in the list",
        20,
        "return [...document.querySelectorAll('.dashboard-link')].some(a => a.textContent === 'From Grafana')",
    )
    .await;
    s.js(
        "[...document.querySelectorAll('.dashboard-link')].find(a => a.textContent === 'From Grafana').click()",
        json!([]),
    )
    .await;
    let placeholder = s
        .wait_for(
            "the imported panels",
            20,
            "return document.querySelector('.panel-unsupported .placeholder')?.textContent",
        )
        .await;
    assert!(
        placeholder.as_str().unwrap().contains("piechart"),
        "{placeholder}"
    );
    s.wait_for(
        "the imported stat",
        10,
        "return document.querySelector('.panel-stat .stat-value')?.textContent === '7'",
    )
    .await;
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // Status: what was ingested, what is stored, the configuration.
    s.goto(&format!("{base}/status")).await;
    let status = s
        .js(
            "return document.querySelector('main').textContent",
            json!([]),
        )
        .await;
    let status = status.as_str().unwrap();
    assert!(
        status.contains("export requests received")
            && status.contains("items stored")
            && status.contains("Metrics retention"),
        "{status}"
    );
    let settings = s
        .js(
            "return [...document.querySelectorAll('main dl.labels dt')].map(dt => dt.textContent + ': ' + dt.nextElementSibling.textContent)",
            json!([]),
        )
        .await;
    for row in [
        "Logs retention: 7days",
        "Traces retention: 7days",
        "Exemplars kept: 100\u{2009}000",
        "OTLP request size at most: 16MiB",
    ] {
        assert!(
            settings.as_array().unwrap().iter().any(|r| r == row),
            "{row} in {settings}"
        );
    }
    let config = s
        .js(
            "return document.querySelector('pre.config')?.textContent",
            json!([]),
        )
        .await;
    assert!(
        config.as_str().unwrap_or_default().contains("data_dir"),
        "{config}"
    );
    s.screenshot(&shots.join("status.png")).await;
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // A log line logged in a span links to its trace.
    s.goto(&format!(
        "{base}/explore/logs?q={}&from=now-15m&to=now",
        "%7Bservice_name%3D%22payments%22%7D"
    ))
    .await;
    let href = s
        .js(
            "return document.querySelector('.log-line .trace-link')?.getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(
        href,
        format!("/traces/{CHECKOUT_TRACE}?span=0000000000000002")
    );
    assert_eq!(s.console_errors().await, Vec::<String>::new());

    // Keyboard alone reaches every visible link, button and field of every page: Tab
    // from the top of the page focuses each of them in turn.
    for page in [
        format!("{base}/"),
        explore.clone(),
        format!("{explore}&tab=table"),
        logs.clone(),
        format!("{base}/traces?service=payments"),
        format!("{base}/traces/{CHECKOUT_TRACE}"),
        format!("{base}/dashboards"),
        dash_url.clone(),
        format!("{base}/alerts"),
        format!("{base}/status"),
    ] {
        s.goto(&page).await;
        s.wait_hydrated().await;
        let count = s
            .js(
                "document.activeElement?.blur(); window.scrollTo(0, 0);
                 window.__focused = new Set();
                 document.addEventListener('focusin', e => window.__focused.add(e.target));
                 window.__reachable = [...document.querySelectorAll(
                     'a[href], button, input:not([type=hidden]), textarea, select, summary, [tabindex]')]
                   .filter(e => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0
                     && getComputedStyle(e).visibility !== 'hidden');
                 return window.__reachable.length",
                json!([]),
            )
            .await
            .as_u64()
            .unwrap();
        assert!(count > 5, "{page}: {count} focusable elements");
        s.press(&TAB.repeat(count as usize + 2)).await;
        let missed = s
            .js(
                "return window.__reachable.filter(e => !window.__focused.has(e))
                   .map(e => e.outerHTML.slice(0, 160))",
                json!([]),
            )
            .await;
        assert_eq!(missed, json!([]), "{page}: not reached by Tab");
    }

    // At a phone's width no page is wider than the screen.
    s.resize(390, 844).await;
    for page in [
        format!("{base}/"),
        explore.clone(),
        format!("{explore}&tab=table"),
        logs.clone(),
        format!("{base}/traces/{CHECKOUT_TRACE}"),
        dash_url.clone(),
        format!("{base}/alerts"),
        format!("{base}/status"),
    ] {
        s.goto(&page).await;
        let widths = s
            .js(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
                json!([]),
            )
            .await;
        assert!(
            widths[0].as_u64() <= widths[1].as_u64(),
            "{page} is wider than a phone's screen: {widths}"
        );
    }
    s.goto(&explore).await;
    s.screenshot(&shots.join("metrics-phone.png")).await;

    s.close().await;
}
