//! Tests of the test-script parser itself.

use super::*;

fn floats(values: &[Option<Point>]) -> Vec<Option<f64>> {
    values
        .iter()
        .map(|v| match v {
            Some(Point::Float(f)) => Some(*f),
            Some(Point::Histogram(_)) => panic!("unexpected histogram"),
            None => None,
        })
        .collect()
}

fn hist(v: &Option<Point>) -> &HistogramLit {
    match v {
        Some(Point::Histogram(h)) => h,
        other => panic!("expected a histogram, got {other:?}"),
    }
}

#[test]
fn script_durations() {
    assert_eq!(parse_duration_ms("0").unwrap(), 0);
    assert_eq!(parse_duration_ms("5m").unwrap(), 300_000);
    assert_eq!(parse_duration_ms("1m30s").unwrap(), 90_000);
    assert_eq!(parse_duration_ms("10s53ms").unwrap(), 10_053);
    assert_eq!(parse_duration_ms("25h").unwrap(), 90_000_000);
    assert_eq!(parse_duration_ms("0s").unwrap(), 0);
    assert_eq!(parse_duration_ms("1y").unwrap(), 365 * 86_400_000);
    assert_eq!(parse_duration_ms("2w1d").unwrap(), 15 * 86_400_000);
    assert_eq!(parse_duration_ms("100ms").unwrap(), 100);
    assert_eq!(parse_duration_ms("8000s").unwrap(), 8_000_000);
    for bad in ["", "5", "1s1m", "1m1m", "-1m", "1.5s", "5x", "m", "1ms5s"] {
        assert!(parse_duration_ms(bad).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn script_value_sequences() {
    let f = |s: &str| floats(&parse_values(s).unwrap());
    assert_eq!(
        f("0+10x5"),
        vec![
            Some(0.0),
            Some(10.0),
            Some(20.0),
            Some(30.0),
            Some(40.0),
            Some(50.0)
        ]
    );
    assert_eq!(f("1x3"), vec![Some(1.0); 4]);
    assert_eq!(
        f("-2+4x3"),
        vec![Some(-2.0), Some(2.0), Some(6.0), Some(10.0)]
    );
    assert_eq!(f("10-3x2"), vec![Some(10.0), Some(7.0), Some(4.0)]);
    assert_eq!(f("1e+2-5x1"), vec![Some(100.0), Some(95.0)]);
    assert_eq!(f("0x59"), vec![Some(0.0); 60]);
    assert_eq!(f("_x2 3 _"), vec![None, None, Some(3.0), None]);
    assert_eq!(f(".5 2. -1.5E-1"), vec![Some(0.5), Some(2.0), Some(-0.15)]);

    let v = parse_values("1 _x3 stale").unwrap();
    assert_eq!(v.len(), 5);
    assert_eq!(v[0], Some(Point::Float(1.0)));
    assert!(v[1].is_none() && v[2].is_none() && v[3].is_none());
    match &v[4] {
        Some(Point::Float(x)) => assert_eq!(x.to_bits(), STALE_NAN_BITS),
        other => panic!("expected stale, got {other:?}"),
    }

    let v = f("Inf -inf +Inf NaN nan");
    assert_eq!(v[0], Some(f64::INFINITY));
    assert_eq!(v[1], Some(f64::NEG_INFINITY));
    assert_eq!(v[2], Some(f64::INFINITY));
    assert!(v[3].is_some_and(|x| x.is_nan() && x.to_bits() != STALE_NAN_BITS));
    assert!(v[4].is_some_and(f64::is_nan));

    for bad in ["1+2", "1y", "0x", "stalex2", "1 2 abc", "{{schema:0"] {
        assert!(parse_values(bad).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn script_histogram_series() {
    let text = r#"load 1m
  incr_histogram {{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 count:1 buckets:[1] offset:1}}x2
  low_res {{schema:-1 sum:4 count:1 buckets:[1] offset:1}}+{{schema:0 sum:4 count:4 buckets:[2 2] offset:1}}x1
  mixed 1 _ stale {{}} {{schema:-53 custom_values:[5 10] buckets:[1 2 1 ] counter_reset_hint:gauge}}x1
  shifted {{buckets:[1] offset:2 n_buckets:[4 4]}}+{{buckets:[1 1] n_buckets:[1] n_offset:1}}x1
  minus {{count:5 buckets:[5 5]}}-{{count:1 buckets:[1] offset:1}}x2
"#;
    let cmds = parse(text).unwrap();
    assert_eq!(cmds.len(), 1);
    let Command::Load {
        line,
        interval_ms,
        with_nhcb,
        series,
        start_timestamp_lines,
    } = &cmds[0]
    else {
        panic!("expected a load");
    };
    assert_eq!(
        (*line, *interval_ms, *with_nhcb, *start_timestamp_lines),
        (1, 60_000, false, 0)
    );
    assert_eq!(series.len(), 5);

    let incr = &series[0];
    assert_eq!(
        incr.labels,
        vec![("__name__".to_string(), "incr_histogram".to_string())]
    );
    assert_eq!(incr.values.len(), 3);
    let h0 = hist(&incr.values[0]);
    assert_eq!((h0.schema, h0.sum, h0.count, h0.offset), (0, 4.0, 4.0, 0));
    assert_eq!(h0.positive, vec![1.0, 2.0, 1.0]);
    let h1 = hist(&incr.values[1]);
    assert_eq!((h1.sum, h1.count, h1.offset), (6.0, 5.0, 0));
    assert_eq!(h1.positive, vec![1.0, 3.0, 1.0]);
    let h2 = hist(&incr.values[2]);
    assert_eq!((h2.sum, h2.count), (8.0, 6.0));
    assert_eq!(h2.positive, vec![1.0, 4.0, 1.0]);
    assert_eq!(h2.counter_reset_hint, None);

    let low = hist(&series[1].values[1]);
    assert_eq!(
        (low.schema, low.sum, low.count, low.offset),
        (-1, 8.0, 5.0, 1)
    );
    assert_eq!(low.positive, vec![5.0]);

    let mixed = &series[2].values;
    assert_eq!(mixed.len(), 6);
    assert_eq!(mixed[0], Some(Point::Float(1.0)));
    assert_eq!(mixed[1], None);
    assert!(matches!(mixed[2], Some(Point::Float(x)) if x.to_bits() == STALE_NAN_BITS));
    assert_eq!(hist(&mixed[3]), &HistogramLit::default());
    let c = hist(&mixed[4]);
    assert_eq!(c.schema, -53);
    assert_eq!(c.custom_values, vec![5.0, 10.0]);
    assert_eq!(c.positive, vec![1.0, 2.0, 1.0]);
    assert_eq!(
        c.counter_reset_hint,
        Some(signalbox_storage::ResetHint::Gauge)
    );
    assert_eq!(mixed[4], mixed[5]);

    let sh = hist(&series[3].values[1]);
    assert_eq!(sh.offset, 0);
    assert_eq!(sh.positive, vec![1.0, 1.0, 1.0]);
    assert_eq!(sh.n_offset, 0);
    assert_eq!(sh.negative, vec![4.0, 5.0]);

    let m = &series[4].values;
    assert_eq!(hist(&m[1]).positive, vec![5.0, 4.0]);
    assert_eq!(hist(&m[2]).positive, vec![5.0, 3.0]);
    assert_eq!(hist(&m[2]).count, 3.0);
}

#[test]
fn script_eval_block() {
    let text = r#"
# a comment
load 5m
  http_requests{job="api", instance="0"} 0+10x10
  other@st _ -1m
  other 1 2

eval instant at 50m sum by (job) (http_requests)
  expect no_info
  expect warn msg: something odd
  expect warn regex: odd \(1:1\)
  expect ordered
  {job="api"} 100
  {job='x\n', "my.label"=`v`, z="\x41\u00e9"} stale
# comment ends the block

EVAL_FAIL instant at 1m foo
  expected_fail_message boom

eval instant at 0 0x10
  0x10

eval instant at 0 "a"
  expect string `a b`

eval instant at 1m {"my.metric", l="1"}
  expect fail
  expect info
"#;
    let cmds = parse(text).unwrap();
    assert_eq!(cmds.len(), 6);
    let Command::Load {
        line,
        interval_ms,
        series,
        start_timestamp_lines,
        ..
    } = &cmds[0]
    else {
        panic!("expected a load");
    };
    assert_eq!(
        (*line, *interval_ms, *start_timestamp_lines),
        (3, 300_000, 1)
    );
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0].labels,
        vec![
            ("__name__".to_string(), "http_requests".to_string()),
            ("job".to_string(), "api".to_string()),
            ("instance".to_string(), "0".to_string()),
        ]
    );
    assert_eq!(series[0].values.len(), 11);
    assert_eq!(series[0].values[10], Some(Point::Float(100.0)));

    let Command::Eval(ev) = &cmds[1] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.line, 8);
    assert_eq!(ev.expr, "sum by (job) (http_requests)");
    assert_eq!(ev.kind, EvalKind::Instant { at_ms: 3_000_000 });
    assert!(ev.no_info && !ev.no_warn && ev.ordered);
    assert_eq!(ev.fail, None);
    assert_eq!(
        ev.warn,
        vec![
            MsgMatch::Exact("something odd".to_string()),
            MsgMatch::Regex(r"odd \(1:1\)".to_string())
        ]
    );
    let Expected::Series(exp) = &ev.expected else {
        panic!("expected series")
    };
    assert_eq!(exp.len(), 2);
    assert_eq!(exp[0].labels, vec![("job".to_string(), "api".to_string())]);
    assert_eq!(exp[0].values, vec![Some(Point::Float(100.0))]);
    assert_eq!(
        exp[1].labels,
        vec![
            ("job".to_string(), "x\n".to_string()),
            ("my.label".to_string(), "v".to_string()),
            ("z".to_string(), "A\u{e9}".to_string()),
        ]
    );
    assert!(matches!(exp[1].values[0], Some(Point::Float(x)) if x.to_bits() == STALE_NAN_BITS));

    let Command::Eval(ev) = &cmds[2] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.line, 17);
    assert_eq!(ev.fail, Some(MsgMatch::Exact("boom".to_string())));
    assert_eq!(ev.expected, Expected::Empty);

    let Command::Eval(ev) = &cmds[3] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.expr, "0x10");
    assert_eq!(ev.expected, Expected::Scalar(16.0));

    let Command::Eval(ev) = &cmds[4] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.expected, Expected::String("a b".to_string()));

    let Command::Eval(ev) = &cmds[5] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.expr, r#"{"my.metric", l="1"}"#);
    assert_eq!(ev.fail, Some(MsgMatch::Any));
    assert_eq!(ev.info, vec![MsgMatch::Any]);

    // A comment inside a block ends it; what follows must be a command.
    let err = parse("eval instant at 0 foo\n# c\n  {} 1\n").unwrap_err();
    assert!(err.starts_with("line 3:"), "{err}");
    // Instant evals take exactly one value per series.
    assert!(parse("eval instant at 0 foo\n  foo 1 2\n").is_err());
    // warn + no_warn is an error in the file.
    assert!(parse("eval instant at 0 foo\n  expect warn\n  expect no_warn\n").is_err());
    // Unknown command.
    assert!(parse("bogus 1\n").unwrap_err().starts_with("line 1:"));
}

#[test]
fn script_range_eval() {
    let text = r#"load 30s
  foo{job="1"} 1+1x4

eval range from 0 to 2m step 1m foo > 2 or bar
  expect warn regex: sort .* ineffective
  foo{job="1"} _ 3 5
  {} 1x2

eval instant at 1m some_metric[1m]
  expect range vector from 10s to 1m step 10s
  some_metric{env="a"} 2 3 4 5 6
"#;
    let cmds = parse(text).unwrap();
    assert_eq!(cmds.len(), 3);
    let Command::Eval(ev) = &cmds[1] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.line, 4);
    assert_eq!(ev.expr, "foo > 2 or bar");
    assert_eq!(
        ev.kind,
        EvalKind::Range {
            start_ms: 0,
            end_ms: 120_000,
            step_ms: 60_000
        }
    );
    assert_eq!(
        ev.warn,
        vec![MsgMatch::Regex("sort .* ineffective".to_string())]
    );
    let Expected::Series(exp) = &ev.expected else {
        panic!("expected series")
    };
    assert_eq!(floats(&exp[0].values), vec![None, Some(3.0), Some(5.0)]);
    assert!(exp[1].labels.is_empty());
    assert_eq!(floats(&exp[1].values), vec![Some(1.0); 3]);

    let Command::Eval(ev) = &cmds[2] else {
        panic!("expected an eval")
    };
    assert_eq!(ev.kind, EvalKind::Instant { at_ms: 60_000 });
    assert_eq!(ev.range_vector, Some((10_000, 60_000, 10_000)));
    let Expected::Series(exp) = &ev.expected else {
        panic!("expected series")
    };
    assert_eq!(exp[0].values.len(), 5);

    // More values than steps.
    assert!(parse("eval range from 0 to 2m step 1m foo\n  foo 1x3\n").is_err());
    // End before start.
    assert!(parse("eval range from 2m to 1m step 1m foo\n").is_err());
}

#[test]
fn script_parses_all_upstream_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/promql");
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    paths.sort();
    let (mut evals, mut loads, mut nhcb, mut clears, mut st) = (0, 0, 0, 0, 0);
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        let cmds = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for c in &cmds {
            match c {
                Command::Clear => clears += 1,
                Command::Load {
                    with_nhcb,
                    start_timestamp_lines,
                    ..
                } => {
                    loads += 1;
                    if *with_nhcb {
                        nhcb += 1;
                    }
                    st += *start_timestamp_lines;
                }
                Command::Eval(_) => evals += 1,
            }
        }
    }
    assert_eq!(evals, 2214);
    assert_eq!(loads, 310);
    assert_eq!(nhcb, 33);
    assert_eq!(clears, 231);
    assert_eq!(st, 37);
}
