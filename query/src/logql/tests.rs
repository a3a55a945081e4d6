//! LogQL evaluated against an in-memory store.

use std::sync::Arc;

use signalbox_storage::{
    AnyValue, Attributes, Direction, FoundTimes, IngestSink, Labels, LogEntry, LogQuery, LogRecord,
    LogStream, LogsBatch, LogsReader, Matcher, MemStore, Storage, StorageConfig, TimesQuery,
};

use super::pipeline::{Entry, Pipeline};
use super::{LogqlEngine, LogqlError, LogqlResult};

const S: i64 = 1_000_000_000;

struct Line<'a> {
    stream: &'a [(&'a str, &'a str)],
    t_s: i64,
    line: &'a str,
    severity: i32,
    attrs: &'a [(&'a str, &'a str)],
}

fn line<'a>(stream: &'a [(&'a str, &'a str)], t_s: i64, text: &'a str) -> Line<'a> {
    Line {
        stream,
        t_s,
        line: text,
        severity: 0,
        attrs: &[],
    }
}

fn batch<'a>(lines: impl IntoIterator<Item = &'a Line<'a>>) -> LogsBatch {
    let streams = lines
        .into_iter()
        .map(|l| LogStream {
            labels: Labels::from_pairs(l.stream.iter().copied()),
            resource: Arc::new(Attributes::default()),
            records: vec![LogRecord {
                time_ns: l.t_s * S,
                observed_time_ns: l.t_s * S,
                severity_number: l.severity,
                body: AnyValue::String(l.line.to_string()),
                attributes: Attributes(
                    l.attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), AnyValue::String(v.to_string())))
                        .collect(),
                ),
                ..Default::default()
            }],
        })
        .collect();
    LogsBatch { streams }
}

async fn engine(lines: &[Line<'_>]) -> LogqlEngine {
    let store = Arc::new(MemStore::new());
    store.write_logs(batch(lines)).await.unwrap();
    LogqlEngine::new(store, 1_000_000)
}

/// The lines in real storage, `base_s` seconds later (storage keeps only recent data):
/// those before `split_s` in a part, the rest in the head.
async fn stored_engine(
    lines: &[Line<'_>],
    base_s: i64,
    split_s: i64,
    dir: &std::path::Path,
) -> LogqlEngine {
    let mut reg = prometheus_client::registry::Registry::default();
    let (store, _) = Storage::open(StorageConfig::new(dir), &mut reg)
        .await
        .unwrap();
    let mut old = batch(lines.iter().filter(|l| l.t_s < split_s));
    let mut new = batch(lines.iter().filter(|l| l.t_s >= split_s));
    for r in old
        .streams
        .iter_mut()
        .chain(new.streams.iter_mut())
        .flat_map(|s| s.records.iter_mut())
    {
        r.time_ns += base_s * S;
        r.observed_time_ns += base_s * S;
    }
    store.write_logs(old).await.unwrap();
    store.flush_all().await.unwrap();
    store.write_logs(new).await.unwrap();
    LogqlEngine::new(Arc::new(store), 1_000_000)
}

async fn logs(
    e: &LogqlEngine,
    q: &str,
    limit: usize,
    dir: Direction,
) -> Vec<(String, Vec<(i64, String)>)> {
    match e
        .query_range(q, 0, 1000 * S, S, dir, limit)
        .await
        .unwrap()
        .0
    {
        LogqlResult::Streams(s) => s
            .into_iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.entries.into_iter().map(|(t, l)| (t / S, l)).collect(),
                )
            })
            .collect(),
        other => panic!("not streams: {other:?}"),
    }
}

/// Metric query over steps `start..=end` seconds; series as (labels, [(t s, v)]).
async fn matrix(
    e: &LogqlEngine,
    q: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Vec<(String, Vec<(i64, f64)>)> {
    match e
        .query_range(q, start * S, end * S, step * S, Direction::Backward, 100)
        .await
        .unwrap()
        .0
    {
        LogqlResult::Matrix(m) => m
            .into_iter()
            .map(|(l, pts)| {
                (
                    l.to_string(),
                    pts.into_iter().map(|(t, v)| (t / 1000, v)).collect(),
                )
            })
            .collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

async fn error(e: &LogqlEngine, q: &str) -> LogqlError {
    e.query_range(q, 0, 100 * S, S, Direction::Backward, 100)
        .await
        .unwrap_err()
}

const API: &[(&str, &str)] = &[("service_name", "api")];
const DB: &[(&str, &str)] = &[("service_name", "db")];

#[tokio::test]
async fn log_queries_filter_parse_and_limit() {
    let e = engine(&[
        line(API, 1, r#"{"status":200,"path":"/a","took":"15ms"}"#),
        line(API, 2, r#"{"status":500,"path":"/b","took":"1.5s"}"#),
        line(API, 3, r#"{"status":503,"path":"/c","took":"20ms"}"#),
        line(DB, 4, "level=error msg=\"disk full\""),
    ])
    .await;
    let got = logs(
        &e,
        r#"{service_name="api"} | json | status >= 500"#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(
        got,
        vec![
            (
                r#"{path="/b", service_name="api", status="500", took="1.5s"}"#.to_string(),
                vec![(2, r#"{"status":500,"path":"/b","took":"1.5s"}"#.to_string())]
            ),
            (
                r#"{path="/c", service_name="api", status="503", took="20ms"}"#.to_string(),
                vec![(3, r#"{"status":503,"path":"/c","took":"20ms"}"#.to_string())]
            ),
        ]
    );
    // Backward with a limit keeps the newest lines.
    let got = logs(
        &e,
        r#"{service_name=~"api|db"} |= "s""#,
        2,
        Direction::Backward,
    )
    .await;
    let times: Vec<i64> = got
        .iter()
        .flat_map(|(_, v)| v.iter().map(|x| x.0))
        .collect();
    assert_eq!(times.len(), 2);
    assert!(times.contains(&4) && times.contains(&3), "{got:?}");
    // Duration comparisons and line_format.
    let got = logs(
        &e,
        r#"{service_name="api"} | json | took > 100ms | line_format "{{.path}} took {{.took}}""#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![(2, "/b took 1.5s".to_string())]);
    let got = logs(
        &e,
        r#"{service_name="db"} | logfmt | level="error" | keep msg"#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(
        got,
        vec![(
            r#"{msg="disk full"}"#.to_string(),
            vec![(4, "level=error msg=\"disk full\"".to_string())]
        )]
    );
}

#[tokio::test]
async fn record_metadata_is_visible_to_filters() {
    let e = engine(&[
        Line {
            stream: API,
            t_s: 1,
            line: "GET /",
            severity: 17,
            attrs: &[("http.method", "GET")],
        },
        Line {
            stream: API,
            t_s: 2,
            line: "POST /",
            severity: 9,
            attrs: &[("http.method", "POST")],
        },
    ])
    .await;
    let got = logs(
        &e,
        r#"{service_name="api"} | level="error""#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(
        got,
        vec![(
            r#"{http_method="GET", level="error", service_name="api"}"#.to_string(),
            vec![(1, "GET /".to_string())]
        )]
    );
    let got = logs(
        &e,
        r#"{service_name="api"} | http_method="POST""#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1[0].1, "POST /");
}

#[tokio::test]
async fn selectors_must_not_match_everything() {
    let e = engine(&[line(API, 1, "x")]).await;
    assert!(matches!(
        error(&e, r#"{service_name=~".*"}"#).await,
        LogqlError::Invalid(_)
    ));
    assert!(matches!(
        error(&e, r#"{service_name="api""#).await,
        LogqlError::Parse(_)
    ));
    let err = e
        .query_instant(r#"{service_name="api"}"#, 10 * S)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("range query"), "{err}");
}

#[tokio::test]
async fn reads_past_batches_of_equal_timestamps() {
    // More lines at one timestamp than one storage batch holds, then one more.
    let mut lines: Vec<Line> = (0..4500).map(|_| line(API, 5, "same")).collect();
    lines.push(line(API, 6, "later"));
    lines.push(line(API, 4, "earlier"));
    let e = engine(&lines).await;
    for dir in [Direction::Forward, Direction::Backward] {
        let got = logs(&e, r#"{service_name="api"}"#, 10_000, dir).await;
        let all: Vec<&(i64, String)> = got.iter().flat_map(|(_, v)| v).collect();
        assert_eq!(all.len(), 4502, "{dir:?}");
        assert_eq!(all.iter().filter(|x| x.1 == "same").count(), 4500);
    }
    let got = logs(
        &e,
        r#"{service_name="api"} != "same""#,
        10_000,
        Direction::Forward,
    )
    .await;
    assert_eq!(
        got[0].1,
        vec![(4, "earlier".to_string()), (6, "later".to_string())]
    );
}

#[tokio::test]
async fn count_rate_and_bytes_per_step() {
    let e = engine(&[
        line(API, 1, "aa"),
        line(API, 2, "bbbb"),
        line(API, 11, "c"),
        line(DB, 2, "dd"),
    ])
    .await;
    let got = matrix(
        &e,
        r#"count_over_time({service_name="api"}[10s])"#,
        0,
        20,
        5,
    )
    .await;
    // Windows are (t-10s, t]: the lines at 1 and 2 count at 5 and 10, the one at 11 at 15 and 20.
    assert_eq!(
        got,
        vec![(
            r#"{service_name="api"}"#.into(),
            vec![(5, 2.0), (10, 2.0), (15, 1.0), (20, 1.0)]
        )]
    );
    let got = matrix(&e, r#"sum(rate({service_name=~".+"}[4s]))"#, 4, 4, 1).await;
    assert_eq!(got, vec![("{}".into(), vec![(4, 0.75)])]);
    let got = matrix(
        &e,
        r#"bytes_over_time({service_name="api"}[5s])"#,
        5,
        15,
        10,
    )
    .await;
    assert_eq!(
        got,
        vec![(r#"{service_name="api"}"#.into(), vec![(5, 6.0), (15, 1.0)])]
    );
    let got = matrix(
        &e,
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) > 1"#,
        60,
        60,
        1,
    )
    .await;
    assert_eq!(
        got,
        vec![(r#"{service_name="api"}"#.into(), vec![(60, 3.0)])]
    );
    let got = matrix(&e, r#"absent_over_time({service_name="api"}[3s])"#, 3, 9, 3).await;
    assert_eq!(
        got,
        vec![(r#"{service_name="api"}"#.into(), vec![(6, 1.0), (9, 1.0)])]
    );
    let got = matrix(
        &e,
        r#"topk(1, count_over_time({service_name=~".+"}[1m]))"#,
        60,
        60,
        1,
    )
    .await;
    assert_eq!(
        got,
        vec![(r#"{service_name="api"}"#.into(), vec![(60, 3.0)])]
    );
}

#[tokio::test]
async fn metadata_stays_out_of_series_unless_grouped_on() {
    let e = engine(&[
        Line {
            stream: API,
            t_s: 1,
            line: "a",
            severity: 17,
            attrs: &[("user", "u1")],
        },
        Line {
            stream: API,
            t_s: 2,
            line: "b",
            severity: 17,
            attrs: &[("user", "u2")],
        },
    ])
    .await;
    let got = matrix(
        &e,
        r#"count_over_time({service_name="api"}[1m])"#,
        10,
        10,
        1,
    )
    .await;
    assert_eq!(
        got,
        vec![(
            r#"{level="error", service_name="api"}"#.into(),
            vec![(10, 2.0)]
        )]
    );
    let got = matrix(
        &e,
        r#"sum by (user) (count_over_time({service_name="api"}[1m]))"#,
        10,
        10,
        1,
    )
    .await;
    assert_eq!(
        got,
        vec![
            (r#"{user="u1"}"#.into(), vec![(10, 1.0)]),
            (r#"{user="u2"}"#.into(), vec![(10, 1.0)])
        ]
    );
}

#[tokio::test]
async fn unwrap_converts_and_reports_errors() {
    let e = engine(&[
        line(API, 1, "took=1.5s path=/a"),
        line(API, 2, "took=500ms path=/a"),
        line(API, 3, "took=oops path=/b"),
    ])
    .await;
    let err = error(
        &e,
        r#"sum_over_time({service_name="api"} | logfmt | unwrap duration(took) [1m])"#,
    )
    .await;
    assert!(err.to_string().contains("SampleExtractionErr"), "{err}");
    let got = matrix(
        &e,
        r#"sum_over_time({service_name="api"} | logfmt | unwrap duration(took) | __error__="" [1m]) by (path)"#,
        10,
        10,
        1,
    )
    .await;
    assert_eq!(got, vec![(r#"{path="/a"}"#.into(), vec![(10, 2.0)])]);
    let got = matrix(
        &e,
        r#"max_over_time({service_name="api"} | logfmt | path="/a" | unwrap duration(took) [1m])"#,
        10,
        10,
        1,
    )
    .await;
    assert_eq!(
        got,
        vec![(r#"{path="/a", service_name="api"}"#.into(), vec![(10, 1.5)])]
    );
    assert!(matches!(
        error(&e, r#"sum_over_time({service_name="api"}[1m])"#).await,
        LogqlError::Invalid(_)
    ));
    // A parser error in a metric query names the series, like Loki.
    let err = error(&e, r#"count_over_time({service_name="api"} | json [1m])"#).await;
    assert!(err.to_string().contains("JSONParserErr"), "{err}");
}

#[tokio::test]
async fn instant_queries_and_arithmetic() {
    let e = engine(&[line(API, 1, "x"), line(API, 2, "y"), line(DB, 2, "z")]).await;
    let (v, stats) = e
        .query_instant(
            r#"sum(count_over_time({service_name=~".+"}[1m])) * 2 + 1"#,
            30 * S,
        )
        .await
        .unwrap();
    assert_eq!(
        v,
        LogqlResult::Vector(vec![(Labels::default(), 30_000, 7.0)])
    );
    assert_eq!(stats.lines, 3);
    let (v, _) = e.query_instant("1 + 2", 30 * S).await.unwrap();
    assert_eq!(v, LogqlResult::Scalar(30_000, 3.0));
    let (v, _) = e
        .query_instant(
            r#"label_replace(count_over_time({service_name="db"}[1m]), "svc", "$1", "service_name", "(.*)")"#,
            30 * S,
        )
        .await
        .unwrap();
    assert_eq!(
        v,
        LogqlResult::Vector(vec![(
            Labels::from_pairs([("service_name", "db"), ("svc", "db")]),
            30_000,
            1.0
        )])
    );
}

#[tokio::test]
async fn metric_scans_in_slices_see_every_line_once() {
    // Bursts at single timestamps larger than a slice, and sparse lines far apart. A
    // stage that is not a line test keeps the queries on the record scan.
    let mut lines: Vec<Line> = Vec::new();
    for t in [1, 2, 3, 500, 501, 2000] {
        let n = if t == 2 || t == 500 { 30 } else { 3 };
        lines.extend((0..n).map(|_| line(API, t, "x")));
    }
    let mut e = engine(&lines).await;
    let want = matrix(
        &e,
        r#"count_over_time({service_name="api"} | drop nothing_here [1h])"#,
        3600,
        3600,
        1,
    )
    .await;
    assert_eq!(
        want,
        vec![(r#"{service_name="api"}"#.into(), vec![(3600, 72.0)])]
    );
    for slice in [1, 2, 7, 29, 31, 1000] {
        e.slice_records = slice;
        let got = matrix(
            &e,
            r#"count_over_time({service_name="api"} | drop nothing_here [10m])"#,
            600,
            2400,
            600,
        )
        .await;
        assert_eq!(
            got,
            vec![(
                r#"{service_name="api"}"#.into(),
                vec![(600, 69.0), (2400, 3.0)]
            )],
            "slice of {slice}"
        );
    }
}

#[tokio::test]
async fn metric_queries_stop_at_the_line_limit() {
    let e = engine(&(0..20).map(|i| line(API, i, "x")).collect::<Vec<_>>()).await;
    let e = LogqlEngine::new(e.reader.clone(), 10);
    let err = e
        .query_instant(r#"count_over_time({service_name="api"}[1m])"#, 30 * S)
        .await
        .unwrap_err();
    assert!(matches!(err, LogqlError::Limit(_)), "{err}");
}

/// A store that counts the record scans made through it.
struct Watched {
    inner: MemStore,
    scans: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl LogsReader for Watched {
    async fn query_logs(&self, q: &LogQuery) -> signalbox_storage::Result<Vec<LogEntry>> {
        self.scans
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.query_logs(q).await
    }

    async fn log_times(&self, q: &TimesQuery) -> signalbox_storage::Result<Option<FoundTimes>> {
        self.inner.log_times(q).await
    }

    async fn log_streams(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> signalbox_storage::Result<Vec<Labels>> {
        self.inner.log_streams(matchers, start_ns, end_ns).await
    }
}

#[tokio::test]
async fn counting_lines_by_stream_labels_and_level_reads_no_records() {
    let lines: Vec<Line> = (0..30)
        .map(|i| Line {
            stream: if i % 3 == 0 { DB } else { API },
            t_s: i * 5,
            line: if i % 2 == 0 { "GET /a" } else { "POST /b" },
            severity: [9, 17, 5][(i % 3) as usize],
            attrs: &[("user.id", "u1")],
        })
        .collect();
    let store = Arc::new(Watched {
        inner: MemStore::new(),
        scans: Default::default(),
    });
    store.inner.write_logs(batch(&lines)).await.unwrap();
    let e = LogqlEngine::new(store.clone(), 1_000_000);
    for (q, scans) in [
        (
            r#"sum by (level) (count_over_time({service_name=~".+"}[1m]))"#,
            false,
        ),
        (r#"count_over_time({service_name="api"}[30s])"#, false),
        (
            r#"sum by (service_name) (rate({service_name=~".+"}[1m]))"#,
            false,
        ),
        (
            r#"sum(count_over_time({service_name=~".+"} |= "GET" [1m]))"#,
            false,
        ),
        (
            r#"sum by (level) (rate({service_name=~".+"} != "GET" |~ "P.ST" [1m]))"#,
            false,
        ),
        (
            r#"sum by (user_id) (count_over_time({service_name=~".+"}[1m]))"#,
            true,
        ),
        (
            r#"sum(count_over_time({service_name=~".+"} | logfmt [1m]))"#,
            true,
        ),
        (r#"sum(bytes_over_time({service_name=~".+"}[1m]))"#, false),
        (
            r#"sum by (user_id) (bytes_rate({service_name=~".+"}[1m]))"#,
            true,
        ),
    ] {
        store.scans.store(0, std::sync::atomic::Ordering::Relaxed);
        let got = matrix(&e, q, 0, 200, 20).await;
        assert!(!got.is_empty(), "{q}");
        let scanned = store.scans.load(std::sync::atomic::Ordering::Relaxed) > 0;
        assert_eq!(scanned, scans, "{q}");
    }
    // Past the line limit, without reading records either.
    store.scans.store(0, std::sync::atomic::Ordering::Relaxed);
    let small = LogqlEngine::new(store.clone(), 29);
    let err = small
        .query_instant(r#"count_over_time({service_name=~".+"}[10m])"#, 200 * S)
        .await
        .unwrap_err();
    assert!(matches!(err, LogqlError::Limit(_)), "{err}");
    assert_eq!(store.scans.load(std::sync::atomic::Ordering::Relaxed), 0);
    let full = LogqlEngine::new(store.clone(), 30);
    full.query_instant(r#"count_over_time({service_name=~".+"}[10m])"#, 200 * S)
        .await
        .unwrap();
}

fn run(stages: &str, line: &str) -> Option<Entry> {
    let q = match logql::parse(&format!("{{a=\"b\"}} {stages}")).unwrap() {
        logql::Expr::Log(q) => q,
        other => panic!("{other:?}"),
    };
    let p = Pipeline::compile(&q.pipeline).unwrap();
    p.run(Entry {
        t_ns: 0,
        line: line.into(),
        labels: [("a".to_string(), "b".to_string())].into(),
    })
}

fn compiled(stages: &str) -> Pipeline {
    match logql::parse(&format!("{{a=\"b\"}} {stages}")).unwrap() {
        logql::Expr::Log(q) => Pipeline::compile(&q.pipeline).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trace_id_filters_go_to_storage_only_while_labels_are_the_records_own() {
    let id = "0123456789abcdef0123456789abcdef";
    let want = Some([
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ]);
    assert_eq!(compiled(&format!(r#"| trace_id="{id}""#)).trace_id, want);
    assert_eq!(
        compiled(&format!(r#"|= "x" | level="info" | trace_id="{id}""#)).trace_id,
        want
    );
    // After a parser or formatter the label may no longer be the record's.
    for stages in [
        format!(r#"| json | trace_id="{id}""#),
        format!(r#"| label_format trace_id=a | trace_id="{id}""#),
        format!(r#"| drop a | trace_id="{id}""#),
        // Not a plain equality, or not a trace id.
        format!(r#"| trace_id=~"{id}""#),
        format!(r#"| trace_id!="{id}""#),
        format!(r#"| trace_id="{id}" or a="b""#),
        r#"| trace_id="abc""#.to_string(),
    ] {
        assert_eq!(compiled(&stages).trace_id, None, "{stages}");
    }
}

fn label(e: &Option<Entry>, k: &str) -> Option<String> {
    e.as_ref().and_then(|e| e.labels.get(k).cloned())
}

#[test]
fn parsers_extract_labels() {
    let e = run(
        r#"| pattern "<ip> - <_> \"<method> <path>\"""#,
        r#"1.2.3.4 - x "GET /p""#,
    );
    assert_eq!(label(&e, "ip").as_deref(), Some("1.2.3.4"));
    assert_eq!(label(&e, "method").as_deref(), Some("GET"));
    assert_eq!(label(&e, "path").as_deref(), Some("/p"));
    let e = run(r#"| regexp "(?P<code>\\d{3})""#, "status 404 here");
    assert_eq!(label(&e, "code").as_deref(), Some("404"));
    let e = run(r#"| json first="a.b[1]""#, r#"{"a":{"b":["x","y"]}}"#);
    assert_eq!(label(&e, "first").as_deref(), Some("y"));
    let e = run("| json", r#"{"a":{"b":1},"c":"d","a_b":2}"#);
    assert_eq!(label(&e, "c").as_deref(), Some("d"));
    assert!(label(&e, "a_b").is_some());
    let e = run("| json", "not json");
    assert_eq!(label(&e, "__error__").as_deref(), Some("JSONParserErr"));
    let e = run("| json | __error__ != \"\"", "not json");
    assert!(e.is_some());
    let e = run("| json | __error__ = \"\"", "not json");
    assert!(e.is_none());
    // A clashing key keeps the stream label and adds `_extracted`.
    let e = run("| logfmt", "a=c d=\"e f\"");
    assert_eq!(label(&e, "a").as_deref(), Some("b"));
    assert_eq!(label(&e, "a_extracted").as_deref(), Some("c"));
    assert_eq!(label(&e, "d").as_deref(), Some("e f"));
    let e = run("| unpack", r#"{"_entry":"inner line","k":"v"}"#);
    assert_eq!(e.as_ref().map(|e| e.line.as_str()), Some("inner line"));
    assert_eq!(label(&e, "k").as_deref(), Some("v"));
}

#[test]
fn formatters_and_filters() {
    let e = run(
        r#"| logfmt | label_format who=user, lvl="{{ .level | ToUpper }}" | drop level"#,
        "user=x level=warn",
    );
    assert_eq!(label(&e, "who").as_deref(), Some("x"));
    assert_eq!(label(&e, "user"), None);
    assert_eq!(label(&e, "lvl").as_deref(), Some("WARN"));
    assert_eq!(label(&e, "level"), None);
    assert!(run(r#"|~ "(?i)ERROR""#, "an error").is_some());
    assert!(run(r#"!~ "err""#, "an error").is_none());
    assert!(run(r#"| logfmt | size > 1KB or code="x""#, "size=2KiB").is_some());
    assert!(run(r#"| logfmt | size > 1KB and code="x""#, "size=2KiB").is_none());
    let e = run("| decolorize", "\x1b[31mred\x1b[0m");
    assert_eq!(e.map(|e| e.line), Some("red".to_string()));
}

#[tokio::test]
async fn metric_fast_path_gives_what_the_full_pipeline_gives() {
    // Severities with and without a level: counting by level reads only times and
    // severities when every record has one.
    for unset in [0, 5] {
        fast_path_matches(unset).await;
    }
}

async fn fast_path_matches(unset: i32) {
    // Lines in two streams with severities and attributes, one attribute named like a
    // stream label and one like `level`.
    let mut lines = Vec::new();
    let attrs: [&[(&str, &str)]; 4] = [
        &[("user.id", "u1")],
        &[("user.id", "u2"), ("service_name", "shadowed")],
        &[("level", "from-attribute")],
        &[],
    ];
    for i in 0..40 {
        lines.push(Line {
            stream: if i % 3 == 0 { DB } else { API },
            t_s: i * 7,
            line: ["GET /a", "POST /b", "GET /c 500", "x"][(i % 4) as usize],
            severity: [unset, 9, 13, 17][(i % 4) as usize],
            attrs: attrs[(i / 4 % 4) as usize],
        });
    }
    let e = engine(&lines).await;
    // The same lines in storage, a part holding the older half: parts hand out a
    // stream's labels shared and, for counting without a pipeline, skip the lines.
    let dir = tempfile::tempdir().unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let base = now_s / 3600 * 3600 - 7200;
    let stored = stored_engine(&lines, base, 140, dir.path()).await;
    let shifted = |m: Vec<(String, Vec<(i64, f64)>)>| -> Vec<(String, Vec<(i64, f64)>)> {
        m.into_iter()
            .map(|(l, pts)| (l, pts.into_iter().map(|(t, v)| (t - base, v)).collect()))
            .collect()
    };
    for q in [
        r#"count_over_time({service_name=~".+"}[1m])"#,
        r#"sum by (level) (count_over_time({service_name=~".+"}[1m]))"#,
        r#"sum by (level) (count_over_time({service_name=~".+"} |= "GET" [1m]))"#,
        r#"sum by (user_id, service_name) (rate({service_name=~".+"} != "POST" [2m]))"#,
        r#"sum by (level, user_id) (bytes_over_time({service_name=~".+"} |~ "GET|x" [90s]))"#,
        r#"sum by (level) (bytes_rate({service_name=~".+"}[1m]))"#,
        r#"sum by (level, service_name) (count_over_time({service_name=~".+"}[45s]))"#,
        r#"rate({service_name="api"}[1m])"#,
        r#"sum by (user_id) (count_over_time({service_name=~".+"}[1m]))"#,
        r#"count_over_time({service_name=~".+"} != "POST" [1m])"#,
        r#"sum by (level) (count_over_time({service_name=~".+"} |= "GET" |~ "/[ac]" [90s]))"#,
        r#"sum by (level) (bytes_over_time({service_name=~".+"} |~ "GET|x" [90s]))"#,
    ] {
        // `| drop nothing_here` changes no label but takes the full pipeline path.
        let slow = q.replace("[", "| drop nothing_here [");
        let fast = matrix(&e, q, 0, 300, 30).await;
        assert!(!fast.is_empty(), "{q}, severity {unset}");
        assert_eq!(fast, matrix(&e, &slow, 0, 300, 30).await, "{q}");
        let (from, to) = (base, base + 300);
        assert_eq!(
            fast,
            shifted(matrix(&stored, q, from, to, 30).await),
            "{q}, a part"
        );
        assert_eq!(
            fast,
            shifted(matrix(&stored, &slow, from, to, 30).await),
            "{q}, a part"
        );
    }
}
