#![allow(clippy::unwrap_used)]
//! Storage end to end: heads, flushes, parts, reopen and replay, merges, retention, faults.

mod common;

use std::time::Duration;

use common::*;
use signalbox_storage::*;

const NS: i64 = 1_000_000;

async fn snapshot(s: &Storage, t: i64) -> (usize, Vec<String>, usize, Vec<String>) {
    let series = s
        .select_series(
            &[Matcher::eq("__name__", "http_requests_total")],
            t - 3_600_000,
            t + 3_600_000,
        )
        .await
        .unwrap();
    let points: usize = series.iter().map(|s| s.samples.len()).sum();
    let lines: Vec<String> = s
        .query_logs(&q_logs((t - 3_600_000) * NS, (t + 3_600_000) * NS))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.line().into_owned())
        .collect();
    let spans = s.trace([3; 16]).await.unwrap().len();
    let services = s.services().await.unwrap();
    (points, lines, spans, services)
}

#[tokio::test]
async fn data_reads_back_from_head_parts_and_after_replay() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, report) = open(config(dir.path())).await;
    assert_eq!(report.parts, 0);
    s.write_metrics(metrics(50, t, 1.0)).await.unwrap();
    s.write_logs(logs("api", &["GET /a 200", "GET /b 500 error"], t * NS))
        .await
        .unwrap();
    s.write_traces(trace("checkout", 3, 4, t * NS))
        .await
        .unwrap();
    let from_head = snapshot(&s, t).await;
    assert_eq!(
        from_head,
        (
            50,
            vec!["GET /a 200".into(), "GET /b 500 error".into()],
            4,
            vec!["checkout".into()]
        )
    );

    s.flush_all().await.unwrap();
    assert!(
        s.part_counts().iter().all(|(_, n)| *n == 1),
        "{:?}",
        s.part_counts()
    );
    assert_eq!(snapshot(&s, t).await, from_head);

    // More data that stays in the WAL only, then a restart without flushing.
    s.write_metrics(metrics(50, t + 1000, 2.0)).await.unwrap();
    s.write_logs(logs("api", &["GET /c 200"], (t + 1000) * NS))
        .await
        .unwrap();
    // A client retry: the same spans again.
    s.write_traces(trace("checkout", 3, 2, t * NS))
        .await
        .unwrap();
    drop(s);
    let (s, report) = open(config(dir.path())).await;
    assert_eq!(report.parts, 3);
    assert!(report.metrics.records >= 2, "{report:?}");
    let (points, lines, spans, _) = snapshot(&s, t).await;
    assert_eq!(points, 100);
    assert_eq!(lines.len(), 3);
    assert_eq!(spans, 4, "a retried span is stored once");
    let md = s.metadata().await.unwrap();
    assert_eq!(md[0].metric, "http_requests_total");
    assert_eq!(
        s.label_values("instance", &[], t - 1000, t + 2000)
            .await
            .unwrap()
            .len(),
        50
    );
}

#[tokio::test]
async fn full_text_and_stream_filters_on_parts() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    s.write_logs(logs(
        "api",
        &[
            "connection refused to db-7",
            "user login ok",
            "Connection reset",
        ],
        t * NS,
    ))
    .await
    .unwrap();
    s.write_logs(logs("web", &["connection refused to cache"], t * NS))
        .await
        .unwrap();
    for round in 0..2 {
        let mut q = q_logs((t - 1) * NS, (t + 1) * NS);
        q.contains = vec!["refused".into()];
        let got = s.query_logs(&q).await.unwrap();
        assert_eq!(got.len(), 1, "round {round}");
        assert_eq!(got[0].record.line(), "connection refused to db-7");
        // Partial words at the edges of the needle still match.
        q.contains = vec!["nection ref".into()];
        assert_eq!(s.query_logs(&q).await.unwrap().len(), 1, "round {round}");
        // Case-sensitive, like LogQL's |=.
        q.contains = vec!["Connection".into()];
        assert_eq!(s.query_logs(&q).await.unwrap().len(), 1, "round {round}");
        q.matchers = vec![Matcher::new(MatchOp::RegexMatch, "service_name", "api|web").unwrap()];
        q.contains = vec!["refused".into()];
        assert_eq!(s.query_logs(&q).await.unwrap().len(), 2, "round {round}");
        q.direction = Direction::Backward;
        q.limit = 1;
        assert_eq!(s.query_logs(&q).await.unwrap().len(), 1, "round {round}");
        s.flush_all().await.unwrap();
    }
    let streams = s
        .log_streams(&[], (t - 1) * NS, (t + 1) * NS)
        .await
        .unwrap();
    assert_eq!(streams.len(), 2);
}

#[tokio::test]
async fn logs_are_filtered_by_trace_id_in_head_and_parts() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    let mut batch = logs("api", &["a", "b", "c", "d"], t * NS);
    for (i, r) in batch.streams[0].records.iter_mut().enumerate() {
        r.trace_id = if i % 2 == 0 { [1; 16] } else { [2; 16] };
    }
    let mut untraced = logs("web", &["e"], t * NS);
    untraced.streams[0].records[0].trace_id = [0; 16];
    s.write_logs(batch).await.unwrap();
    s.write_logs(untraced).await.unwrap();
    for round in ["head", "part"] {
        let mut q = q_logs((t - 1) * NS, (t + 1) * NS);
        q.matchers.clear();
        q.trace_id = Some([2; 16]);
        let got = s.query_logs(&q).await.unwrap();
        let lines: Vec<String> = got.iter().map(|e| e.record.line().into_owned()).collect();
        assert_eq!(lines, ["b", "d"], "{round}");
        // Combined with a substring and a limit, newest first.
        q.direction = Direction::Backward;
        q.limit = 1;
        let got = s.query_logs(&q).await.unwrap();
        assert_eq!(got[0].record.line(), "d", "{round}");
        q.contains = vec!["b".into()];
        let got = s.query_logs(&q).await.unwrap();
        assert_eq!(got[0].record.line(), "b", "{round}");
        q.trace_id = Some([3; 16]);
        assert!(s.query_logs(&q).await.unwrap().is_empty(), "{round}");
        s.flush_all().await.unwrap();
    }
}

#[tokio::test]
async fn traces_are_found_by_id_and_searched_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    for b in 0..50u8 {
        s.write_traces(trace(
            if b % 2 == 0 { "cart" } else { "pay" },
            b + 1,
            3,
            (t - b as i64) * NS,
        ))
        .await
        .unwrap();
    }
    s.flush_all().await.unwrap();
    let spans = s.trace([17; 16]).await.unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[0].span.name, "op-0");
    assert!(s.trace([200; 16]).await.unwrap().is_empty());
    let q = SpanQuery {
        service: Some("pay".into()),
        operation: Some("op-1".into()),
        attributes: vec![("http.route".into(), "/x".into())],
        start_ns: (t - 100) * NS,
        end_ns: (t + 100) * NS,
        limit: 10,
        ..Default::default()
    };
    let found = s.search_spans(&q).await.unwrap();
    assert_eq!(found.len(), 10);
    assert!(
        found
            .iter()
            .all(|r| r.service_name == "pay" && r.span.name == "op-1")
    );
    assert_eq!(s.operations("cart").await.unwrap().len(), 3);
    assert_eq!(
        s.services().await.unwrap(),
        vec!["cart".to_string(), "pay".to_string()]
    );
}

#[tokio::test]
async fn a_trace_is_found_whole_across_pages_and_row_groups_of_a_part() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    let id = |k: usize| {
        let mut id = [7u8; 16];
        id[0] = (k >> 8) as u8;
        id[1] = k as u8;
        id
    };
    // 700 traces of 20 spans, sorted by id in the part; trace 300 has 2,500 spans, which
    // start at row 6,000 and so cross pages and the first row group's end (row 8,192).
    let size = |k: usize| if k == 300 { 2500 } else { 20 };
    for k in 0..700 {
        let mut b = trace("cart", 0, size(k), (t - 1000) * NS);
        for sp in &mut b.resources[0].spans {
            sp.trace_id = id(k);
        }
        s.write_traces(b).await.unwrap();
    }
    s.flush_all().await.unwrap();
    for k in [0, 1, 299, 300, 301, 409, 699] {
        let spans = s.trace(id(k)).await.unwrap();
        assert_eq!(spans.len(), size(k), "trace {k}");
        assert!(spans.iter().all(|r| r.span.trace_id == id(k)));
        assert!(
            spans
                .windows(2)
                .all(|w| w[0].span.start_ns < w[1].span.start_ns)
        );
    }
    // Ids inside the part's range that were never written.
    let mut absent = id(300);
    absent[2] = 8;
    assert!(s.trace(absent).await.unwrap().is_empty());
    assert!(s.trace([9; 16]).await.unwrap().is_empty());
}

#[tokio::test]
async fn span_search_keeps_the_spans_of_the_newest_traces_in_heads_and_parts() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    for b in 0..40u8 {
        let service = if b % 2 == 0 { "cart" } else { "pay" };
        s.write_traces(trace(service, b + 1, 3, (t - b as i64) * NS))
            .await
            .unwrap();
    }
    for round in ["head", "part"] {
        let mut q = SpanQuery {
            service: Some("pay".into()),
            start_ns: (t - 100) * NS,
            end_ns: (t + 100) * NS,
            limit: 1000,
            max_traces: 3,
            ..Default::default()
        };
        let found = s.search_spans(&q).await.unwrap();
        let traces: Vec<u8> = found.iter().map(|r| r.span.trace_id[0]).collect();
        assert_eq!(traces, [2, 2, 2, 4, 4, 4, 6, 6, 6], "{round}");
        // The hint only leaves out what comes after those traces.
        q.max_traces = 0;
        let all = s.search_spans(&q).await.unwrap();
        assert_eq!(all.len(), 60, "{round}");
        assert_eq!(all[..9], found[..], "{round}");
        q.limit = 4;
        assert_eq!(s.search_spans(&q).await.unwrap()[..], all[..4], "{round}");
        // With an operation and a duration filter from the narrow columns.
        q.operation = Some("op-2".into());
        q.min_duration_ns = Some(500);
        q.max_traces = 2;
        let names: Vec<(u8, String)> = s
            .search_spans(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.span.trace_id[0], r.span.name))
            .collect();
        assert_eq!(names, [(2, "op-2".into()), (4, "op-2".into())], "{round}");
        q.min_duration_ns = Some(501);
        assert!(s.search_spans(&q).await.unwrap().is_empty(), "{round}");
        s.flush_all().await.unwrap();
    }
}

#[tokio::test]
async fn merges_combine_parts_without_losing_or_duplicating() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms() - 4 * 3_600_000;
    let mut cfg = config(dir.path());
    for c in [&mut cfg.metrics, &mut cfg.logs, &mut cfg.traces] {
        c.part_window = Duration::from_secs(3600);
        c.max_parts_per_window = 2;
    }
    let (s, _) = open(cfg.clone()).await;
    for i in 0..3 {
        s.write_metrics(metrics(10, t + i * 1000, i as f64))
            .await
            .unwrap();
        s.write_logs(logs("api", &["a", "b"], (t + i * 1000) * NS))
            .await
            .unwrap();
        s.write_traces(trace("svc", 3, 2, (t + i * 1000) * NS))
            .await
            .unwrap();
        s.flush_all().await.unwrap();
    }
    assert!(s.part_counts().iter().all(|(_, n)| *n == 3));
    let before = snapshot(&s, t).await;
    assert!(s.merge_some().await > 0);
    assert!(
        s.part_counts().iter().all(|(_, n)| *n == 1),
        "{:?}",
        s.part_counts()
    );
    assert_eq!(snapshot(&s, t).await, before);
    drop(s);
    let (s, report) = open(cfg).await;
    assert_eq!(report.parts, 3);
    assert_eq!(snapshot(&s, t).await, before);
    let on_disk = std::fs::read_dir(dir.path().join("parts/logs"))
        .unwrap()
        .count();
    assert_eq!(on_disk, 1, "replaced parts are deleted");
}

#[tokio::test]
async fn retention_deletes_whole_parts_past_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms() - 30 * 60_000;
    let (s, _) = open(config(dir.path())).await;
    s.write_metrics(metrics(5, t, 1.0)).await.unwrap();
    s.flush_all().await.unwrap();
    assert_eq!(s.retention().await, 0);
    drop(s);
    let mut cfg = config(dir.path());
    cfg.metrics.retention = Duration::from_secs(600);
    let (s, _) = open(cfg).await;
    assert_eq!(s.retention().await, 1);
    assert_eq!(s.part_counts()[0].1, 0);
    // Too old for the retention window: rejected, counted, not stored.
    let out = s.write_metrics(metrics(5, t, 1.0)).await.unwrap();
    assert_eq!((out.accepted, out.rejected), (0, 5));
    assert!(out.reasons[0].contains("older than the retention"));
}

#[tokio::test]
async fn torn_wal_tail_is_truncated_and_earlier_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    s.write_logs(logs("api", &["one"], t * NS)).await.unwrap();
    s.write_logs(logs("api", &["two"], (t + 1) * NS))
        .await
        .unwrap();
    drop(s);
    let wal_dir = dir.path().join("wal/logs");
    let mut segs: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let last = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 8)
        .unwrap()
        .clone();
    // A write that was cut off half-way: a frame header promising more bytes than exist.
    let mut data = std::fs::read(&last).unwrap();
    data.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 1, b'x', b'y']);
    std::fs::write(&last, &data).unwrap();
    // The torn segment must be the newest one for the tail rule: remove any newer empty ones.
    for p in segs.iter().filter(|p| **p > last) {
        std::fs::remove_file(p).unwrap();
    }
    let (s, report) = open(config(dir.path())).await;
    assert_eq!(report.logs.torn_tails.len(), 1);
    let lines: Vec<_> = s
        .query_logs(&q_logs((t - 1) * NS, (t + 2) * NS))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.line().into_owned())
        .collect();
    assert_eq!(lines, vec!["one", "two"]);
    s.write_logs(logs("api", &["three"], (t + 2) * NS))
        .await
        .unwrap();
    drop(s);
    let (s, report) = open(config(dir.path())).await;
    assert!(report.logs.torn_tails.is_empty());
    assert_eq!(
        s.query_logs(&q_logs((t - 1) * NS, (t + 3) * NS))
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn wal_segments_already_in_parts_are_not_replayed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    s.write_logs(logs("api", &["only once"], t * NS))
        .await
        .unwrap();
    // Keep a copy of the WAL as it was before the flush truncated it: a crash between
    // publishing the part and deleting the segments leaves exactly this on disk.
    let wal_dir = dir.path().join("wal/logs");
    let saved: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.clone(), std::fs::read(&p).unwrap())
        })
        .collect();
    s.flush_all().await.unwrap();
    drop(s);
    for (p, d) in saved {
        std::fs::write(p, d).unwrap();
    }
    let (s, report) = open(config(dir.path())).await;
    assert_eq!(report.logs.records, 0, "{report:?}");
    assert_eq!(
        s.query_logs(&q_logs((t - 1) * NS, (t + 1) * NS))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn corrupt_part_is_set_aside_and_the_rest_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (s, _) = open(config(dir.path())).await;
    s.write_metrics(metrics(3, t, 1.0)).await.unwrap();
    s.flush_all().await.unwrap();
    s.write_metrics(metrics(3, t + 1, 2.0)).await.unwrap();
    drop(s);
    let part_dir = std::fs::read_dir(dir.path().join("parts/metrics"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let f = part_dir.join("samples.parquet");
    let mut data = std::fs::read(&f).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    std::fs::write(&f, data).unwrap();
    let (s, _) = open(config(dir.path())).await;
    assert_eq!(s.scrub().await, 1);
    let series = s
        .select_series(&[Matcher::eq("job", "api")], t - 10, t + 10)
        .await
        .unwrap();
    assert_eq!(
        series.iter().map(|s| s.samples.len()).sum::<usize>(),
        3,
        "the head's samples remain"
    );
    assert!(part_dir.join("meta.json.corrupt").exists());
    drop(s);
    let (_s, report) = open(config(dir.path())).await;
    assert_eq!(report.parts, 0);
}

#[tokio::test]
async fn bounds_refuse_with_a_retryable_error_and_keep_what_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let mut cfg = config(dir.path());
    cfg.limits.max_active_series = 10;
    cfg.limits.max_label_value_length = 24;
    cfg.logs.max_head_bytes = 4096;
    let (s, _) = open(cfg).await;
    s.write_metrics(metrics(8, t, 1.0)).await.unwrap();
    let err = s.write_metrics(metrics(12, t + 1, 1.0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.retry_after().is_some());
    assert_eq!(
        s.select_series(&[Matcher::eq("job", "api")], t, t)
            .await
            .unwrap()
            .len(),
        8
    );

    let mut long = metrics(1, t, 1.0);
    long.series[0].labels = Labels::from_pairs([
        ("__name__", "m"),
        ("path", "/a/very/long/path/indeed/and/longer"),
    ]);
    let out = s.write_metrics(long).await.unwrap();
    assert_eq!(out.rejected, 1);
    assert!(
        out.reasons[0].contains("longer than 24"),
        "{:?}",
        out.reasons
    );

    let line = "x".repeat(1000);
    let mut refused = false;
    for i in 0..20 {
        match s.write_logs(logs("api", &[&line], (t + i) * NS)).await {
            Ok(_) => {}
            Err(e) => {
                assert!(matches!(e, StorageError::HeadFull { .. }));
                refused = true;
                break;
            }
        }
    }
    assert!(refused);
    assert!(
        !s.query_logs(&q_logs((t - 1) * NS, (t + 30) * NS))
            .await
            .unwrap()
            .is_empty()
    );
    // A flush frees the head and writes are accepted again.
    s.flush_all().await.unwrap();
    s.write_logs(logs("api", &["after flush"], (t + 40) * NS))
        .await
        .unwrap();
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Time, line, severity text, attributes, trace and span id of a record.
type Seen = (i64, String, String, String, [u8; 16], [u8; 8]);

#[tokio::test]
async fn log_parts_answer_like_the_head_for_any_range_limit_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path())).await;
    let mem = MemStore::new();
    let t0 = now_ms() * NS;
    let words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "GET",
        "POST",
        "xylophone",
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Three streams of 12,000 records each: several pages of every column per stream.
    let per_stream = 12_000i64;
    for stream in 0..3i64 {
        let mut batch = logs(&format!("svc-{stream}"), &[], 0);
        for i in 0..per_stream {
            let mut r = logs("x", &["x"], 0).streams[0].records[0].clone();
            r.time_ns = t0 + i * 1_000 + stream;
            r.observed_time_ns = r.time_ns;
            let (a, b) = (rng.below(6) as usize, rng.below(100) as usize);
            // The rare word appears in one line in a thousand.
            let w2 = if b == 0 && rng.below(10) == 0 {
                6
            } else {
                b % 6
            };
            r.body = AnyValue::String(format!("{} {} req={i}", words[a], words[w2]));
            (r.severity_number, r.severity_text) = match a % 3 {
                0 => (9, "INFO".to_string()),
                1 => (17, "ERROR".to_string()),
                _ => (9, "info".to_string()),
            };
            r.trace_id = if i % 3 == 0 {
                [(i % 5) as u8 + 1; 16]
            } else {
                [0; 16]
            };
            batch.streams[0].records.push(r);
        }
        s.write_logs(batch.clone()).await.unwrap();
        mem.write_logs(batch).await.unwrap();
    }
    s.flush_all().await.unwrap();
    // Records of one stream left in the head, between those of its part: answers join both.
    let mut late = logs("svc-1", &[], 0);
    for i in 0..500i64 {
        let mut r = logs("x", &["x"], 0).streams[0].records[0].clone();
        r.time_ns = t0 + i * 20_000 + 500;
        r.observed_time_ns = r.time_ns;
        r.body = AnyValue::String(format!("{} late req={i}", words[i as usize % 6]));
        late.streams[0].records.push(r);
    }
    s.write_logs(late.clone()).await.unwrap();
    mem.write_logs(late).await.unwrap();
    let span = per_stream * 1_000;
    let needles: [&[&str]; 7] = [
        &[],
        &["GET"],
        &["xylophone"],
        &["amm"],
        &["lpha GE"],
        &["POST", "req=1"],
        &["nowhere"],
    ];
    for case in 0..300 {
        let start = t0 - 5_000 + rng.below(span as u64 + 10_000) as i64;
        let end = start + [1, 2_000, 50_000, span][rng.below(4) as usize];
        let mut q = LogQuery {
            matchers: if rng.below(2) == 0 {
                vec![Matcher::new(MatchOp::RegexMatch, "service_name", "svc-.*").unwrap()]
            } else {
                vec![Matcher::new(MatchOp::RegexMatch, "service_name", "svc-[02]").unwrap()]
            },
            start_ns: start,
            end_ns: end,
            contains: needles[rng.below(needles.len() as u64) as usize]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            trace_id: None,
            fields: [LogFields::All, LogFields::Lines, LogFields::NoLines][rng.below(3) as usize],
            direction: if rng.below(2) == 0 {
                Direction::Forward
            } else {
                Direction::Backward
            },
            limit: [0, 1, 7, 100, 5_000][rng.below(5) as usize],
        };
        if rng.below(4) == 0 {
            q.trace_id = Some([rng.below(6) as u8; 16]);
        }
        // What a query for lines must still carry (all but the line without them).
        let no_lines = q.fields == LogFields::NoLines;
        let lines = |v: Vec<LogEntry>| -> Vec<Seen> {
            v.into_iter()
                .map(|e| {
                    (
                        e.record.time_ns,
                        if no_lines {
                            String::new()
                        } else {
                            e.record.line().into_owned()
                        },
                        e.record.severity_text.clone(),
                        format!("{:?}", e.record.attributes),
                        e.record.trace_id,
                        e.record.span_id,
                    )
                })
                .collect()
        };
        // The times of the records, as counting reads them, with the same substrings and
        // sometimes a further line test.
        let mut tq = TimesQuery {
            matchers: q.matchers.clone(),
            start_ns: start,
            end_ns: end,
            contains: q.contains.clone(),
            line_test: None,
            bytes: rng.below(2) == 0,
            sizes: rng.below(2) == 0,
            max: u64::MAX,
        };
        if rng.below(3) == 0 {
            tq.line_test = Some(std::sync::Arc::new(|l: &str| !l.contains("beta")));
        }
        let want = mem.log_times(&tq).await.unwrap().unwrap();
        let got = s.log_times(&tq).await.unwrap();
        assert_eq!(got.as_ref(), Some(&want), "case {case}: times of {q:?}");
        let everything = LogQuery {
            trace_id: None,
            limit: 0,
            fields: LogFields::Lines,
            ..q.clone()
        };
        let records = mem.query_logs(&everything).await.unwrap();
        assert_eq!(want.lines, records.len() as u64, "case {case}");
        if tq.bytes || !tq.contains.is_empty() || tq.line_test.is_some() {
            let bytes: usize = records.iter().map(|e| e.record.line().len()).sum();
            assert_eq!(want.bytes, bytes as u64, "case {case}");
        }
        let passing = records
            .iter()
            .filter(|e| tq.line_test.as_ref().is_none_or(|t| t(&e.record.line())))
            .count();
        let counted = want.streams.iter().map(|s| s.times.len()).sum::<usize>();
        assert_eq!(counted, passing, "case {case}");
        // Sizes come with their times when asked for.
        for st in &want.streams {
            let n = if tq.sizes { st.times.len() } else { 0 };
            assert_eq!(st.sizes.len(), n, "case {case}");
        }
        if tq.sizes && tq.contains.is_empty() && tq.line_test.is_none() {
            let sizes: u64 = want.streams.iter().flat_map(|s| &s.sizes).sum();
            assert_eq!(sizes, want.bytes, "case {case}");
        }
        // Reading stops past a maximum of records read, and no sooner.
        let read = want.lines;
        tq.max = read;
        assert_eq!(s.log_times(&tq).await.unwrap().as_ref(), Some(&want));
        if read > 0 {
            tq.max = read - 1;
            assert_eq!(s.log_times(&tq).await.unwrap(), None, "case {case}");
            assert_eq!(mem.log_times(&tq).await.unwrap(), None, "case {case}");
        }
        let want = lines(mem.query_logs(&q).await.unwrap());
        let got = lines(s.query_logs(&q).await.unwrap());
        assert_eq!(got.len(), want.len(), "case {case}: {q:?}");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "case {case}: {q:?}\nrow {i}: {:?}\nwant {:?}",
                got[i], want[i]
            );
        }
    }
}

/// Exemplars are kept in memory and come back after a restart from the WAL, also those
/// written before a head flush; a full buffer drops the oldest.
#[tokio::test]
async fn exemplars_survive_a_restart_through_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let mut cfg = config(dir.path());
    cfg.limits.max_exemplars = 3;
    let with_exemplars = |n: i64| {
        let mut b = metrics(1, t + n, n as f64);
        b.series[0].exemplars.push(Exemplar {
            t: t + n,
            value: n as f64,
            labels: Labels::from_pairs([("trace_id", format!("{n:032x}"))]),
        });
        b
    };
    {
        let (s, _) = open(cfg.clone()).await;
        // Two before a head flush (their WAL segment is deleted then; the buffer is
        // written into the next one), two after.
        for n in 0..2 {
            s.write_metrics(with_exemplars(n)).await.unwrap();
        }
        s.flush_all().await.unwrap();
        for n in 2..4 {
            s.write_metrics(with_exemplars(n)).await.unwrap();
        }
        let got = s
            .select_exemplars(&[vec![Matcher::eq("job", "api")]], t, t + 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        let values: Vec<f64> = got[0].exemplars.iter().map(|e| e.value).collect();
        assert_eq!(values, vec![1.0, 2.0, 3.0]);
    }
    let (s, _) = open(cfg).await;
    let got = s
        .select_exemplars(
            &[vec![Matcher::eq("__name__", "http_requests_total")]],
            t,
            t + 10,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let values: Vec<f64> = got[0].exemplars.iter().map(|e| e.value).collect();
    assert_eq!(values, vec![1.0, 2.0, 3.0]);
    assert_eq!(
        got[0].exemplars[2].labels.get("trace_id"),
        Some(format!("{:032x}", 3).as_str())
    );
    assert!(
        s.select_exemplars(&[vec![Matcher::eq("job", "web")]], t, t + 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn start_times_come_back_with_their_samples_from_head_parts_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let write = |n: i64, st: Option<i64>| {
        let mut b = metrics(1, t + n * 1000, n as f64);
        if let Some(st) = st {
            b.series[0].starts.push(StartTime {
                t: t + n * 1000,
                st,
            });
        }
        // A start time without a sample at its time is not kept.
        b.series[0].starts.push(StartTime { t: t - 7, st: 1 });
        b
    };
    let read = |s: Storage| async move {
        let got = s
            .select_series(&[Matcher::eq("job", "api")], t - 10, t + 10_000)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples.len(), 4);
        got[0].starts.clone()
    };
    let want = vec![
        StartTime { t, st: t - 500 },
        StartTime {
            t: t + 1000,
            st: t - 500,
        },
        StartTime {
            t: t + 3000,
            st: t + 2000,
        },
    ];
    let cfg = config(dir.path());
    {
        let (s, _) = open(cfg.clone()).await;
        s.write_metrics(write(0, Some(t - 500))).await.unwrap();
        s.write_metrics(write(1, Some(t - 500))).await.unwrap();
        s.flush_all().await.unwrap();
        s.write_metrics(write(2, None)).await.unwrap();
        s.write_metrics(write(3, Some(t + 2000))).await.unwrap();
        assert_eq!(read(s).await, want);
    }
    let (s, _) = open(cfg).await;
    assert_eq!(read(s).await, want);
}
