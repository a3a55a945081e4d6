use super::part::{MetricsPart, encode_part, split_by_window};
use super::*;
use crate::model::{
    Buckets, CUSTOM_BUCKETS_SCHEMA, Histogram, Matcher, MetricKind, MetricMetadata, ResetHint,
    StartTime,
};
use crate::part::{PartStore, Publish};
use crate::telemetry::Signal;

fn series(name: &str, job: &str, pts: &[(i64, f64)]) -> Series {
    Series {
        starts: Vec::new(),
        labels: Labels::from_pairs([("__name__", name), ("job", job)]),
        samples: pts.iter().map(|&(t, v)| Sample { t, v }).collect(),
        histograms: vec![],
    }
}

#[test]
fn merge_prefers_later_sources_on_equal_timestamps() {
    let a = vec![series("m", "a", &[(1, 1.0), (2, 2.0)])];
    let b = vec![
        series("m", "a", &[(2, 20.0), (3, 3.0)]),
        series("m", "b", &[(1, 9.0)]),
    ];
    let out = merge_series(vec![a, b]);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].samples,
        vec![
            Sample { t: 1, v: 1.0 },
            Sample { t: 2, v: 20.0 },
            Sample { t: 3, v: 3.0 }
        ]
    );
    assert_eq!(out[1].labels.get("job"), Some("b"));
}

#[test]
fn a_merged_histogram_after_one_from_another_source_has_no_reset_hint() {
    let h = |t, count, hint| HistogramSample {
        t,
        h: Histogram {
            count,
            hint,
            ..Histogram::default()
        },
    };
    let mut part = series("h", "a", &[]);
    part.histograms = vec![
        h(0, 1.0, ResetHint::Unknown),
        h(120, 3.0, ResetHint::NotReset),
        h(180, 4.0, ResetHint::NotReset),
    ];
    let mut head = series("h", "a", &[]);
    head.histograms = vec![h(60, 10.0, ResetHint::Unknown)];
    let out = merge_series(vec![vec![part], vec![head]]);
    let hints: Vec<ResetHint> = out[0].histograms.iter().map(|x| x.h.hint).collect();
    use ResetHint::{NotReset, Unknown};
    assert_eq!(hints, [Unknown, Unknown, Unknown, NotReset]);
}

#[test]
fn a_sample_written_again_takes_the_start_time_of_the_new_write() {
    let mut head = head::MetricsHead::default();
    let idx = head.get_or_create(&Labels::from_pairs([("__name__", "c")]));
    head.insert_sample(idx, Sample { t: 10, v: 1.0 });
    head.insert_start(idx, StartTime { t: 10, st: 1 });
    let bytes = head.bytes();
    head.insert_sample(idx, Sample { t: 10, v: 2.0 });
    assert!(head.series[idx as usize].starts.is_empty());
    assert!(head.bytes() < bytes);
}

#[test]
fn merged_samples_keep_the_start_time_of_the_source_that_wins() {
    let st = |t, st| StartTime { t, st };
    let mut a = series("m", "a", &[(1, 1.0), (2, 2.0), (4, 4.0)]);
    a.starts = vec![st(1, -5), st(2, -5), st(4, -5)];
    let mut b = series("m", "a", &[(2, 20.0), (3, 3.0), (4, 40.0)]);
    b.starts = vec![st(3, 2)];
    let out = merge_series(vec![vec![a], vec![b]]);
    // At 2 and 4 the later source's sample (without a start time) wins.
    assert_eq!(out[0].starts, vec![st(1, -5), st(3, 2)]);
}

#[test]
fn merge_puts_sources_of_successive_times_in_time_order() {
    let late = vec![series("m", "a", &[(10, 10.0), (11, 11.0)])];
    let early = vec![series("m", "a", &[(1, 1.0), (2, 2.0)])];
    let middle = vec![series("m", "a", &[(5, 5.0)])];
    let out = merge_series(vec![late, early, middle]);
    let ts: Vec<(i64, f64)> = out[0].samples.iter().map(|s| (s.t, s.v)).collect();
    assert_eq!(
        ts,
        vec![(1, 1.0), (2, 2.0), (5, 5.0), (10, 10.0), (11, 11.0)]
    );
    // Touching at one time: merged, the later source's value kept.
    let a = vec![series("m", "a", &[(1, 1.0), (5, 5.0)])];
    let b = vec![series("m", "a", &[(5, 50.0), (6, 6.0)])];
    let ts: Vec<(i64, f64)> = merge_series(vec![b.clone(), a.clone()])[0]
        .samples
        .iter()
        .map(|s| (s.t, s.v))
        .collect();
    assert_eq!(ts, vec![(1, 1.0), (5, 5.0), (6, 6.0)]);
    let ts: Vec<(i64, f64)> = merge_series(vec![a, b])[0]
        .samples
        .iter()
        .map(|s| (s.t, s.v))
        .collect();
    assert_eq!(ts, vec![(1, 1.0), (5, 50.0), (6, 6.0)]);
}

#[test]
fn insert_sorted_handles_out_of_order_and_duplicates() {
    let mut v: Vec<Sample> = Vec::new();
    for (t, x) in [(5, 1.0), (3, 2.0), (5, 3.0), (9, 4.0), (1, 5.0)] {
        let i = insert_sorted(&mut v, Sample { t, v: x }, |s| s.t);
        assert_eq!((v[i].t, v[i].v), (t, x));
    }
    let ts: Vec<(i64, f64)> = v.iter().map(|s| (s.t, s.v)).collect();
    assert_eq!(ts, vec![(1, 5.0), (3, 2.0), (5, 3.0), (9, 4.0)]);
}

#[test]
fn head_keeps_the_hints_a_chunk_reader_sees() {
    let mut head = head::MetricsHead::default();
    let idx = head.get_or_create(&Labels::from_pairs([("__name__", "h")]));
    let h = |count: f64| Histogram {
        count,
        ..Histogram::default()
    };
    for (t, c) in [(0, 1.0), (60, 2.0), (120, 1.0), (180, 3.0), (300, 4.0)] {
        head.insert_histogram(idx, HistogramSample { t, h: h(c) });
    }
    // A float sample between two histograms ends the chunk.
    head.insert_sample(idx, Sample { t: 240, v: 1.0 });
    let hints = |head: &head::MetricsHead| {
        head.series[idx as usize]
            .histograms
            .iter()
            .map(|s| s.h.hint)
            .collect::<Vec<_>>()
    };
    use ResetHint::{NotReset, Unknown};
    assert_eq!(
        hints(&head),
        [Unknown, NotReset, Unknown, NotReset, Unknown]
    );
    // An out-of-order sample that breaks the run ends the chunk of the one after it.
    head.insert_histogram(idx, HistogramSample { t: 30, h: h(5.0) });
    assert_eq!(
        hints(&head),
        [Unknown, NotReset, Unknown, Unknown, NotReset, Unknown]
    );
}

#[test]
fn split_by_window_keeps_every_sample_once() {
    let s = series(
        "m",
        "a",
        &[
            (0, 1.0),
            (3_599_999, 2.0),
            (3_600_000, 3.0),
            (7_300_000, 4.0),
        ],
    );
    let w = split_by_window(vec![s], 3_600_000);
    assert_eq!(
        w.keys().copied().collect::<Vec<_>>(),
        vec![0, 3_600_000, 7_200_000]
    );
    assert_eq!(w.values().map(|v| v[0].samples.len()).sum::<usize>(), 4);
}

#[tokio::test]
async fn part_roundtrip_selects_by_matchers_and_time() {
    let staging = tempfile::tempdir().unwrap();
    let store = PartStore::in_memory(staging.path().to_path_buf());
    let mut all = vec![
        series("up", "api", &[(1000, 1.0), (2000, 1.0), (3000, 0.0)]),
        series("up", "web", &[(1000, 1.0)]),
        series(
            "requests_total",
            "api",
            &[(1000, 10.0), (2000, f64::NAN), (2500, -0.0), (2600, 1e300)],
        ),
    ];
    all.push(Series {
        starts: Vec::new(),
        labels: Labels::from_pairs([("__name__", "latency"), ("job", "api")]),
        samples: vec![],
        histograms: vec![HistogramSample {
            t: 1500,
            h: Histogram {
                schema: 3,
                zero_threshold: 1e-128,
                zero_count: 1.0,
                count: 6.0,
                sum: 12.5,
                positive: Buckets {
                    offset: -2,
                    counts: vec![1.0, 2.0, 2.0],
                },
                negative: Buckets::default(),
                custom_values: Vec::new(),
                hint: ResetHint::Gauge,
            },
        }],
    });
    all.push(Series {
        starts: Vec::new(),
        labels: Labels::from_pairs([("__name__", "latency_custom")]),
        samples: vec![],
        histograms: vec![HistogramSample {
            t: 1500,
            h: Histogram {
                schema: CUSTOM_BUCKETS_SCHEMA,
                count: 7.0,
                sum: 30.0,
                positive: Buckets {
                    offset: 0,
                    counts: vec![1.0, 4.0, 2.0],
                },
                custom_values: vec![0.5, 5.0],
                ..Histogram::default()
            },
        }],
    });
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    let md = vec![MetricMetadata {
        metric: "up".into(),
        kind: MetricKind::Gauge,
        unit: String::new(),
        help: "is up".into(),
    }];
    let slices: Vec<_> = all.iter().map(super::part::SeriesSlice::of).collect();
    let data = encode_part(&slices, &md).unwrap();
    assert_eq!(data.rows, 10);
    let meta = store
        .publish(Signal::Metrics, data, Publish::default())
        .await
        .unwrap();
    store.verify(Signal::Metrics, &meta).await.unwrap();
    let part = MetricsPart::open(meta, &store).unwrap();
    assert_eq!(part.metadata(), md);
    // Floats keep zstd; the other columns, LZ4 (no codec set-up per column chunk read).
    let codecs: Vec<_> = part
        .samples_codecs()
        .await
        .unwrap()
        .into_iter()
        .map(|(name, codec, _)| (name, codec))
        .collect();
    let zstd = parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default());
    let lz4 = parquet::basic::Compression::LZ4_RAW;
    assert_eq!(
        codecs,
        [
            ("series", lz4),
            ("t", lz4),
            ("v", zstd),
            ("vi", lz4),
            ("h", lz4)
        ]
        .map(|(n, c)| (n.to_string(), c))
    );

    let got = part
        .select(&[Matcher::eq("__name__", "up")], 0, 10_000)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        all.iter()
            .find(|s| s.labels.get("job") == Some("api") && s.labels.get("__name__") == Some("up"))
            .unwrap()
            .clone()
    );
    let got = part
        .select(&[Matcher::eq("job", "api")], 1500, 2000)
        .await
        .unwrap();
    let names: Vec<_> = got
        .iter()
        .map(|s| s.labels.get("__name__").unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["latency", "requests_total", "up"]);
    assert!(got[1].samples[0].v.is_nan());
    let all_req = part
        .select(&[Matcher::eq("__name__", "requests_total")], 0, 10_000)
        .await
        .unwrap();
    let vs: Vec<u64> = all_req[0].samples.iter().map(|s| s.v.to_bits()).collect();
    assert_eq!(
        vs,
        vec![
            10f64.to_bits(),
            f64::NAN.to_bits(),
            (-0.0f64).to_bits(),
            1e300f64.to_bits()
        ],
        "whole and other floats come back bit for bit"
    );
    assert_eq!(got[0].histograms[0].h.positive.counts, vec![1.0, 2.0, 2.0]);
    let custom = part
        .select(&[Matcher::eq("__name__", "latency_custom")], 0, 10_000)
        .await
        .unwrap();
    assert_eq!(
        custom[0],
        all.iter()
            .find(|s| s.labels.get("__name__") == Some("latency_custom"))
            .unwrap()
            .clone(),
        "a custom-bucket histogram comes back with its bounds"
    );
    assert!(
        part.select(&[Matcher::eq("job", "nope")], 0, 10_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(part.read_all(&store).await.unwrap().len(), 5);
}

#[tokio::test]
async fn reads_leave_out_value_columns_that_only_hold_nulls_there() {
    let staging = tempfile::tempdir().unwrap();
    let store = PartStore::in_memory(staging.path().to_path_buf());
    // Sorted by labels: whole numbers on rows 0..20000, then fractions, then a series
    // with both. Pages hold 8,192 rows.
    let n = 20_000i64;
    let all = vec![
        series(
            "a_whole",
            "x",
            &(0..n).map(|t| (t, (t % 100) as f64)).collect::<Vec<_>>(),
        ),
        series(
            "b_frac",
            "x",
            &(0..n).map(|t| (t, t as f64 + 0.5)).collect::<Vec<_>>(),
        ),
        series("c_mixed", "x", &[(1, 1.0), (2, 2.5), (3, 3.0)]),
    ];
    let slices: Vec<_> = all.iter().map(super::part::SeriesSlice::of).collect();
    let data = encode_part(&slices, &[]).unwrap();
    let meta = store
        .publish(Signal::Metrics, data, Publish::default())
        .await
        .unwrap();
    let part = MetricsPart::open(meta, &store).unwrap();
    let n = n as usize;
    assert_eq!(
        part.columns_for(&[0..4096, 4096..8192]).await.unwrap(),
        ["t", "vi"]
    );
    assert_eq!(
        part.columns_for(&[100..200, 500..8192]).await.unwrap(),
        ["t", "vi"]
    );
    assert_eq!(
        part.columns_for(&[25_000..25_050, 25_050..25_100])
            .await
            .unwrap(),
        ["t", "v"]
    );
    assert_eq!(
        part.columns_for(&[0..10, 2 * n..2 * n + 3]).await.unwrap(),
        ["t", "v", "vi"]
    );
    assert_eq!(part.columns_for(&[]).await.unwrap(), ["t"]);
    // Rows 16384.. share a page with the fractions; the page before holds none.
    assert_eq!(
        part.columns_for(&[0..8192, 8192..16384]).await.unwrap(),
        ["t", "vi"]
    );
    assert_eq!(
        part.columns_for(&[16383..16384, 16384..16385])
            .await
            .unwrap(),
        ["t", "v", "vi"]
    );
    for s in &all {
        let name = s.labels.get("__name__").unwrap();
        let got = part
            .select(&[Matcher::eq("__name__", name)], 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(got, vec![s.clone()], "{name} in full");
        let got = part
            .select(&[Matcher::eq("__name__", name)], 2, 5)
            .await
            .unwrap();
        let want: Vec<_> = s
            .samples
            .iter()
            .filter(|x| (2..=5).contains(&x.t))
            .cloned()
            .collect();
        assert_eq!(got[0].samples, want, "{name} over a short range");
    }
    // Fractions only, read without `vi`: rows 26000 ± the read's margin.
    let got = part
        .select(&[Matcher::eq("__name__", "b_frac")], 6000, 6100)
        .await
        .unwrap();
    let want: Vec<_> = all[1].samples[6000..=6100].to_vec();
    assert_eq!(got[0].samples, want, "fractions over a short range");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1000i64..1000).prop_map(|i| i as f64),
            Just(-0.0),
            Just(f64::from_bits(crate::model::STALE_NAN_BITS)),
        ]
    }

    proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]
            /// Whatever series go into a part come out of it bit for bit.
            #[test]
            fn part_roundtrip(input in proptest::collection::btree_map(
                ("[a-c]{1,2}", "[x-z]{0,2}"),
                proptest::collection::btree_map(-10_000i64..10_000, value(), 1..20),
                1..12,
            )) {
                let series: Vec<Series> = input
                    .into_iter()
                    .map(|((name, job), pts)| Series { starts: Vec::new(),
                        labels: Labels::from_pairs([("__name__", name), ("job", job)]),
                        samples: pts.into_iter().map(|(t, v)| Sample { t, v }).collect(),
                        histograms: vec![],
                    })
                    .collect();
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let got = rt.block_on(async {
                    let staging = tempfile::tempdir().unwrap();
                    let store = PartStore::in_memory(staging.path().to_path_buf());
                    let slices: Vec<_> = series.iter().map(super::super::part::SeriesSlice::of).collect();
                    let meta = store.publish(Signal::Metrics, encode_part(&slices, &[]).unwrap(), Publish::default()).await.unwrap();
                    let part = MetricsPart::open(meta, &store).unwrap();
                    part.read_all(&store).await.unwrap()
                });
                let key = |s: &Series| (s.labels.clone(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>());
                let mut want: Vec<_> = series.iter().map(key).collect();
                let mut have: Vec<_> = got.iter().map(key).collect();
                want.sort();
                have.sort();
                prop_assert_eq!(have, want);
            }

            /// A part gives exactly the samples of each window of time asked for, however
            /// unevenly a series' samples are spaced (where a time's rows are is guessed as
            /// if they were even).
            #[test]
            fn select_by_time(
                input in proptest::collection::vec(
                    (
                        proptest::collection::btree_set(0i64..1_000, 0..300),
                        proptest::collection::btree_set(0i64..100_000, 1..150),
                    ),
                    1..6,
                ),
                windows in proptest::collection::vec((-1_000i64..101_000, 0i64..60_000), 1..8),
            ) {
                let series: Vec<Series> = input
                    .into_iter()
                    .enumerate()
                    .map(|(i, (burst, spread))| Series { starts: Vec::new(),
                        labels: Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("{i:02}"))]),
                        samples: burst
                            .union(&spread)
                            .map(|&t| Sample { t, v: t as f64 })
                            .collect(),
                        histograms: vec![],
                    })
                    .collect();
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let staging = tempfile::tempdir().unwrap();
                    let store = PartStore::in_memory(staging.path().to_path_buf());
                    let slices: Vec<_> = series.iter().map(super::super::part::SeriesSlice::of).collect();
                    let meta = store.publish(Signal::Metrics, encode_part(&slices, &[]).unwrap(), Publish::default()).await.unwrap();
                    let part = MetricsPart::open(meta, &store).unwrap();
                    for (start, len) in windows {
                        let end = start + len;
                        let mut got = part.select(&[Matcher::eq("__name__", "m")], start, end).await.unwrap();
                        got.sort_by(|a, b| a.labels.cmp(&b.labels));
                        let want: Vec<Series> = series
                            .iter()
                            .map(|s| Series { starts: Vec::new(),
                                labels: s.labels.clone(),
                                samples: s.samples.iter().copied().filter(|x| x.t >= start && x.t <= end).collect(),
                                histograms: vec![],
                            })
                            .filter(|s| !s.samples.is_empty())
                            .collect();
                        assert_eq!(got, want, "window [{start}, {end}]");
                    }
                });
            }
    }
}
