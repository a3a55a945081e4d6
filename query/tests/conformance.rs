//! Runs the upstream PromQL test scripts (`tests/data/promql/*.test`) against the engine
//! over an in-memory store. Prints passed/total per file and overall, writes every
//! failing eval with its reason to a report, and fails if any file passes fewer evals
//! than `tests/conformance-baseline.txt` records (so the numbers only go up).
#![allow(clippy::unwrap_used)]

#[path = "conformance/script.rs"]
mod script;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use script::{
    Command, Eval, EvalKind, Expected, HistogramLit, MsgMatch, Point, STALE_NAN_BITS, SeriesLine,
};
use signalbox_query::promql::notation::{CUSTOM_BUCKETS_SCHEMA, series_points};
use signalbox_query::promql::{Engine, EngineOptions, QueryResult, QueryValue, Value};
use signalbox_storage::{Histogram, IngestSink, Labels, MemStore, MetricsBatch, StartTime};

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/promql")
}

fn labels_of(l: &[(String, String)]) -> Labels {
    Labels::from_pairs(l.iter().cloned())
}

async fn load(store: &MemStore, interval_ms: i64, series: &[SeriesLine]) -> Result<(), String> {
    let batch = MetricsBatch {
        series: series
            .iter()
            .map(|s| {
                let mut p = series_points(&s.labels, &s.values, 0, interval_ms);
                // A start time for each slot that has both a sample and an offset.
                p.starts = s
                    .starts
                    .iter()
                    .zip(&s.values)
                    .enumerate()
                    .filter_map(|(k, (off, v))| {
                        let t = k as i64 * interval_ms;
                        Some(StartTime { t, st: t + (*off)? }).filter(|_| v.is_some())
                    })
                    .collect();
                p
            })
            .collect(),
        ..Default::default()
    };
    let out = store
        .write_metrics(batch)
        .await
        .map_err(|e| e.to_string())?;
    if out.rejected > 0 {
        return Err(format!("load rejected: {:?}", out.reasons));
    }
    Ok(())
}

/// What `load_with_nhcb` adds: each classic histogram (`<name>_bucket{le}` series, with
/// `<name>_sum` and `<name>_count` if present) also as a custom-bucket native histogram
/// series `<name>`, at every slot where all its buckets have a value.
/// The count is `_count`'s value, else the highest bucket's.
fn nhcb_from_classic(series: &[SeriesLine]) -> Vec<SeriesLine> {
    type Family = (Vec<(f64, usize)>, Option<usize>, Option<usize>);
    let name_of = |s: &SeriesLine| {
        s.labels
            .iter()
            .find(|l| l.0 == "__name__")
            .map(|l| l.1.clone())
            .unwrap_or_default()
    };
    let rest = |s: &SeriesLine| -> Vec<(String, String)> {
        let mut l: Vec<_> = s
            .labels
            .iter()
            .filter(|l| l.0 != "__name__" && l.0 != "le")
            .cloned()
            .collect();
        l.sort();
        l
    };
    let mut families: BTreeMap<(String, Vec<(String, String)>), Family> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        let name = name_of(s);
        let key = |base: &str| (base.to_string(), rest(s));
        if let Some(base) = name.strip_suffix("_bucket") {
            let le = s.labels.iter().find(|l| l.0 == "le").map(|l| l.1.trim());
            let bound = match le {
                Some("+Inf" | "Inf" | "+inf") => Some(f64::INFINITY),
                Some(v) => v.parse::<f64>().ok(),
                None => None,
            };
            if let Some(b) = bound {
                families.entry(key(base)).or_default().0.push((b, i));
            }
        } else if let Some(base) = name.strip_suffix("_sum") {
            families.entry(key(base)).or_default().1 = Some(i);
        } else if let Some(base) = name.strip_suffix("_count") {
            families.entry(key(base)).or_default().2 = Some(i);
        }
    }
    let float_at = |i: usize, k: usize| match series[i].values.get(k) {
        Some(Some(Point::Float(f))) if f.to_bits() != STALE_NAN_BITS => Some(*f),
        _ => None,
    };
    let mut out = Vec::new();
    for ((base, labels), (mut buckets, sum, count)) in families {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Without a +Inf bucket every bound is a custom bound.
        let finite = buckets.iter().take_while(|b| b.0.is_finite()).count();
        let slots = buckets
            .iter()
            .map(|b| series[b.1].values.len())
            .max()
            .unwrap_or(0);
        let values = (0..slots)
            .map(|k| {
                let cum: Vec<f64> = buckets
                    .iter()
                    .map(|b| float_at(b.1, k))
                    .collect::<Option<_>>()?;
                let counts: Vec<f64> = cum
                    .iter()
                    .enumerate()
                    .map(|(j, c)| if j == 0 { *c } else { c - cum[j - 1] })
                    .collect();
                Some(Point::Histogram(HistogramLit {
                    schema: CUSTOM_BUCKETS_SCHEMA,
                    count: count
                        .and_then(|c| float_at(c, k))
                        .unwrap_or(cum[cum.len() - 1]),
                    sum: sum.and_then(|c| float_at(c, k)).unwrap_or(0.0),
                    positive: counts,
                    custom_values: buckets[..finite].iter().map(|b| b.0).collect(),
                    ..HistogramLit::default()
                }))
            })
            .collect();
        let mut l = vec![("__name__".to_string(), base)];
        l.extend(labels);
        out.push(SeriesLine {
            labels: l,
            values,
            starts: Vec::new(),
        });
    }
    out
}

fn has_histograms(series: &[SeriesLine]) -> bool {
    series.iter().any(|s| {
        s.values
            .iter()
            .any(|v| matches!(v, Some(Point::Histogram(_))))
    })
}

/// Float equality as the upstream harness defines it.
fn almost_equal(a: f64, b: f64) -> bool {
    let stale = |x: f64| x.to_bits() == STALE_NAN_BITS;
    if stale(a) || stale(b) {
        return stale(a) && stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || a.abs() + b.abs() < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()).min(f64::MAX) < 1e-6
}

fn msg_matches(m: &MsgMatch, text: &str) -> bool {
    match m {
        MsgMatch::Any => true,
        MsgMatch::Exact(s) => text.trim() == s.trim(),
        MsgMatch::Regex(r) => regex::Regex::new(r)
            .map(|re| re.is_match(text))
            .unwrap_or(false),
    }
}

fn check_annotations(
    kind: &str,
    expected: &[MsgMatch],
    forbid: bool,
    got: &[String],
) -> Result<(), String> {
    if forbid && !got.is_empty() {
        return Err(format!("unexpected {kind} annotations: {got:?}"));
    }
    if expected.is_empty() {
        return Ok(());
    }
    for m in expected {
        if !got.iter().any(|g| msg_matches(m, g)) {
            return Err(format!(
                "expected a {kind} annotation matching {m:?}, got {got:?}"
            ));
        }
    }
    for g in got {
        if !expected.iter().any(|m| msg_matches(m, g)) {
            return Err(format!("{kind} annotation {g:?} not expected"));
        }
    }
    Ok(())
}

/// Bucket counts by absolute index, without empty buckets.
fn bucket_map(offset: i32, counts: &[f64]) -> BTreeMap<i64, f64> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0.0)
        .map(|(k, c)| (i64::from(offset) + k as i64, *c))
        .collect()
}

fn same_buckets(a: &BTreeMap<i64, f64>, b: &BTreeMap<i64, f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && almost_equal(*x.1, *y.1))
}

/// Histogram equality as the upstream harness checks it: after dropping empty buckets
/// (its compaction), the same schema, custom bounds, zero threshold and bucket indices,
/// and count, sum, zero count and bucket counts equal within the float tolerance.
fn histogram_matches(want: &HistogramLit, got: &Histogram) -> Result<(), String> {
    // The hint is compared only where the script states one, as upstream.
    if let Some(h) = want.counter_reset_hint
        && h != got.hint
    {
        return Err(format!(
            "expected counter_reset_hint {}, got {}",
            h.as_str(),
            got.hint.as_str()
        ));
    }
    let ok = want.schema == got.schema
        && (want.schema != CUSTOM_BUCKETS_SCHEMA || want.custom_values == got.custom_values)
        && almost_equal(want.count, got.count)
        && almost_equal(want.sum, got.sum)
        && almost_equal(want.zero_count, got.zero_count)
        && want.zero_threshold == got.zero_threshold
        && same_buckets(
            &bucket_map(want.offset, &want.positive),
            &bucket_map(got.positive.offset, &got.positive.counts),
        )
        && same_buckets(
            &bucket_map(want.n_offset, &want.negative),
            &bucket_map(got.negative.offset, &got.negative.counts),
        );
    if ok {
        Ok(())
    } else {
        Err(format!("expected histogram {want:?}, got {got:?}"))
    }
}

fn value_matches(want: &Point, got: &Value) -> bool {
    match (want, got) {
        (Point::Float(w), Value::Float(g)) => almost_equal(*w, *g),
        (Point::Histogram(w), Value::Histogram(g)) => histogram_matches(w, g).is_ok(),
        _ => false,
    }
}

fn describe(want: &Point, got: &Value) -> String {
    match (want, got) {
        (Point::Histogram(w), Value::Histogram(g)) => histogram_matches(w, g).unwrap_err(),
        _ => format!("expected {want:?}, got {got:?}"),
    }
}

fn compare(e: &Eval, res: &QueryResult) -> Result<(), String> {
    match (&e.expected, &res.value) {
        (Expected::Scalar(want), QueryValue::Scalar { v, .. }) => {
            let (w, g): (f64, f64) = (*want, *v);
            if almost_equal(w, g) {
                Ok(())
            } else {
                Err(format!("expected scalar {w}, got {g}"))
            }
        }
        (Expected::Scalar(_), other) => Err(format!("expected a scalar, got {other:?}")),
        (Expected::String(want), QueryValue::String { v, .. }) => {
            if want == v {
                Ok(())
            } else {
                Err(format!("expected string {want:?}, got {v:?}"))
            }
        }
        (Expected::String(_), other) => Err(format!("expected a string, got {other:?}")),
        (Expected::Empty, QueryValue::Vector(v)) if v.is_empty() => Ok(()),
        (Expected::Empty, QueryValue::Matrix(m)) if m.is_empty() => Ok(()),
        (Expected::Empty, other) => Err(format!("expected an empty result, got {other:?}")),
        (Expected::Series(want), QueryValue::Vector(got)) => {
            if e.range_vector.is_some() {
                return Err("expected a range vector, got an instant vector".into());
            }
            if want.len() != got.len() {
                return Err(format!(
                    "expected {} series, got {}: {got:?}",
                    want.len(),
                    got.len()
                ));
            }
            for (i, w) in want.iter().enumerate() {
                let wl = labels_of(&w.labels);
                let [Some(wv)] = w.values.as_slice() else {
                    return Err("expected series line must have one value".into());
                };
                let pos = got.iter().position(|(l, _, _)| *l == wl);
                let Some(pos) = pos else {
                    return Err(format!("missing series {wl}; got {got:?}"));
                };
                if e.ordered && pos != i {
                    return Err(format!("series {wl} at position {pos}, expected {i}"));
                }
                if !value_matches(wv, &got[pos].2) {
                    return Err(format!("{wl}: {}", describe(wv, &got[pos].2)));
                }
            }
            Ok(())
        }
        (Expected::Series(want), QueryValue::Matrix(got)) => {
            let (start, step) = match (&e.kind, e.range_vector) {
                (_, Some((s, _, st))) => (s, st),
                (
                    EvalKind::Range {
                        start_ms, step_ms, ..
                    },
                    None,
                ) => (*start_ms, *step_ms),
                (EvalKind::Instant { .. }, None) => {
                    return Err(format!("expected an instant vector, got a matrix {got:?}"));
                }
            };
            if got.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("matrix is not sorted by labels".into());
            }
            if want.len() != got.len() {
                return Err(format!(
                    "expected {} series, got {}: {got:?}",
                    want.len(),
                    got.len()
                ));
            }
            for w in want {
                let wl = labels_of(&w.labels);
                let Some((_, pts)) = got.iter().find(|(l, _)| *l == wl) else {
                    return Err(format!("missing series {wl}; got {got:?}"));
                };
                let exp: Vec<(i64, &Point)> = w
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (start + k as i64 * step, v)))
                    .collect();
                if exp.len() != pts.len()
                    || exp
                        .iter()
                        .zip(pts)
                        .any(|(a, b)| a.0 != b.0 || !value_matches(a.1, &b.1))
                {
                    return Err(format!("{wl}: expected {exp:?}, got {pts:?}"));
                }
            }
            Ok(())
        }
        (Expected::Series(_), other) => Err(format!("expected series, got {other:?}")),
    }
}

async fn run_eval(engine: &Engine, store: &MemStore, e: &Eval) -> Result<(), String> {
    let res = match (&e.kind, e.range_vector) {
        (EvalKind::Instant { .. }, Some((_, end, _))) => engine.instant(store, &e.expr, end).await,
        (EvalKind::Instant { at_ms }, None) => engine.instant(store, &e.expr, *at_ms).await,
        (
            EvalKind::Range {
                start_ms,
                end_ms,
                step_ms,
            },
            _,
        ) => {
            engine
                .range(store, &e.expr, *start_ms, *end_ms, *step_ms)
                .await
        }
    };
    match (&e.fail, res) {
        (Some(m), Err(err)) => {
            if msg_matches(m, &err.to_string()) {
                Ok(())
            } else {
                Err(format!("failed with {err:?}, expected {m:?}"))
            }
        }
        (Some(_), Ok(r)) => Err(format!("expected a failure, got {:?}", r.value)),
        (None, Err(err)) => Err(format!("error: {err}")),
        (None, Ok(r)) => {
            check_annotations("warn", &e.warn, e.no_warn, &r.warnings)?;
            check_annotations("info", &e.info, e.no_info, &r.infos)?;
            compare(e, &r)
        }
    }
}

#[tokio::test]
async fn promql_test_scripts() {
    // As upstream's test engine: start times on.
    let engine = Engine::new(EngineOptions {
        start_times: true,
        ..Default::default()
    });
    let mut files: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut results: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut report = String::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let commands = script::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut store = MemStore::new();
        let mut histograms_loaded = false;
        let (mut passed, mut total) = (0, 0);
        for c in &commands {
            match c {
                Command::Clear => {
                    store = MemStore::new();
                    histograms_loaded = false;
                }
                Command::Load {
                    interval_ms,
                    series,
                    with_nhcb,
                    ..
                } => {
                    histograms_loaded |= has_histograms(series) || *with_nhcb;
                    let mut series = series.clone();
                    if *with_nhcb {
                        let converted = nhcb_from_classic(&series);
                        series.extend(converted);
                    }
                    if let Err(e) = load(&store, *interval_ms, &series).await {
                        let _ = writeln!(report, "{name}: load failed: {e}");
                    }
                }
                Command::Eval(e) => {
                    total += 1;
                    match run_eval(&engine, &store, e).await {
                        Ok(()) => passed += 1,
                        Err(why) => {
                            let note = if histograms_loaded {
                                " [native histograms loaded; not supported yet]"
                            } else {
                                ""
                            };
                            let _ =
                                writeln!(report, "{name}:{} {}{note}\n    {why}", e.line, e.expr);
                        }
                    }
                }
            }
        }
        results.insert(name, (passed, total));
    }
    let (p, t) = results.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let report_path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("promql-conformance-report.txt");
    std::fs::write(&report_path, &report).unwrap();
    let mut summary = String::new();
    for (f, (p, t)) in &results {
        let _ = writeln!(summary, "{f:<28} {p:>4}/{t:<4}");
    }
    let _ = writeln!(
        summary,
        "{:<28} {p:>4}/{t:<4} ({:.1}%)",
        "overall",
        100.0 * p as f64 / t as f64
    );
    eprintln!(
        "PromQL test scripts (failures with reasons in {}):\n{summary}",
        report_path.display()
    );

    let baseline_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-baseline.txt");
    let baseline = std::fs::read_to_string(&baseline_path).unwrap_or_default();
    let mut regressions = Vec::new();
    for line in baseline
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut it = line.split_whitespace();
        let (Some(f), Some(n)) = (it.next(), it.next()) else {
            continue;
        };
        let want: usize = n.parse().unwrap();
        let got = results.get(f).map(|r| r.0).unwrap_or(0);
        if got < want {
            regressions.push(format!("{f}: {got} passing, baseline {want}"));
        }
    }
    if std::env::var_os("PROMQL_WRITE_BASELINE").is_some() {
        let mut b = String::from(
            "# PromQL test scripts: evals passing per file. The conformance test fails below these.\n",
        );
        for (f, (p, _)) in &results {
            let _ = writeln!(b, "{f} {p}");
        }
        std::fs::write(&baseline_path, b).unwrap();
    }
    assert!(
        regressions.is_empty(),
        "PromQL conformance regressed:\n{}",
        regressions.join("\n")
    );
}
