//! The upstream rule unit tests (`tests/data/rules`, from `promtool`'s test data) run
//! through the rule-test runner and the rule-file checker, with the outcomes upstream
//! expects. One known gap is spelled out: native histogram results (the engine stores
//! native histograms but does not evaluate them yet).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use signalbox_query::rules::Lang;
use signalbox_query::rules::file::check_files;
use signalbox_query::rules::unittest::{TestOptions, test_file};

fn data(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rules")
        .join(f)
}

async fn outcome(f: &str, run: &[&str]) -> (bool, String) {
    let opts = TestOptions {
        run: run.iter().map(|r| regex::Regex::new(r).unwrap()).collect(),
    };
    test_file(&data(f), &opts).await
}

#[tokio::test]
async fn upstream_files_pass_and_fail_as_upstream_expects() {
    for f in [
        "long-period.yml",
        "no-test-group-interval.yml",
        "start-time-test.yml",
        "at-modifier-test.yml",
        "negative-offset-test.yml",
        "docs-example/test.yml",
    ] {
        let (ok, out) = outcome(f, &[]).await;
        assert!(ok, "{f} should pass:\n{out}");
        assert!(out.contains("SUCCESS"), "{out}");
    }
    for (f, must_say) in [
        (
            "rules_run_no_fuzzy.yml",
            "got: {__name__=\"test_low\"} 2.9999999999999996",
        ),
        ("failing.yml", "alertname: AlwaysFiring, time: 5m0s"),
        ("bad-promql.yml", "many-to-many matching not allowed"),
        (
            "bad-rules-error-test.yml",
            "rule: joined, time: 0s, err: found duplicate series",
        ),
        (
            "bad-rules-syntax-test.yml",
            "bad-rules-syntax.yml:7: group \"bad-syntax\", rule 1, \"x\": could not parse expression",
        ),
        ("bad-input-series.yml", "expected ',' or '}' in label set"),
    ] {
        let (ok, out) = outcome(f, &[]).await;
        assert!(!ok, "{f} should fail:\n{out}");
        assert!(out.contains("FAILED"), "{out}");
        assert!(
            out.contains(must_say),
            "{f}: expected {must_say:?} in\n{out}"
        );
    }
    // failing.yml: both of its groups fail, each for its own reason.
    let (_, out) = outcome("failing.yml", &[]).await;
    assert!(out.contains("name: Failing test,"), "{out}");
    assert!(
        out.contains("exp: {__name__=\"test\"} 1\n        got: {__name__=\"test\"} 0"),
        "{out}"
    );
}

#[tokio::test]
async fn run_filter_and_fuzzy_compare() {
    let (ok, out) = outcome("rules_run.yml", &[]).await;
    assert!(!ok && out.contains("name: wrong test,"), "{out}");
    assert!(!out.contains("name: correct test,"), "{out}");
    let (ok, out) = outcome("rules_run.yml", &["correct"]).await;
    assert!(ok, "{out}");
    let (ok, out) = outcome("rules_run_fuzzy.yml", &[]).await;
    assert!(!ok && out.contains("name: wrong fuzzy match,"), "{out}");
    assert!(!out.contains("name: correct fuzzy match,"), "{out}");
    let (ok, out) = outcome("rules_run_fuzzy.yml", &["^correct"]).await;
    assert!(ok, "{out}");
}

/// `unittest.yml` passes upstream. Here every check passes except the three whose
/// expected result is a native histogram: the engine does not evaluate native
/// histograms yet, so those selectors return nothing.
#[tokio::test]
async fn unittest_passes_but_for_native_histogram_results() {
    let (ok, out) = outcome("unittest.yml", &[]).await;
    assert!(!ok);
    let failures: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("expr:")
                || l.trim_start().starts_with("alertname:")
                || l.trim_start().starts_with("rule:")
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            "    expr: \"test_histogram\", time: 1m0s,",
            "    expr: \"test_histogram_repeat\", time: 2m0s,",
            "    expr: \"test_histogram_increase\", time: 2m0s,",
        ],
        "{out}"
    );
}

#[test]
fn check_rules_like_promtool() {
    let (ok, out) = check_files(
        &[data("rules.yml"), data("docs-example/alerts.yml")],
        Lang::PromQL,
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
    assert!(out.contains("SUCCESS: 2 rules found"), "{out}");

    let (ok, out) = check_files(&[data("rules-bad.yml")], Lang::PromQL);
    assert!(!ok);
    assert!(
        out.contains("rules-bad.yml:6: group \"alerts\", rule 1, \"InstanceDown\": annotation \"summary\": template: __alert_InstanceDown:1: undefined variable \"$label\""),
        "{out}"
    );

    let (ok, out) = check_files(&[data("rules_duplicates.yml")], Lang::PromQL);
    assert!(ok, "{out}");
    assert!(
        out.contains("WARNING") && out.contains("job:test:count_over_time1m"),
        "{out}"
    );

    let (ok, out) = check_files(&[data("bad-rules-syntax.yml")], Lang::PromQL);
    assert!(!ok, "{out}");
    let (ok, out) = check_files(&[data("no-such-file.yml")], Lang::PromQL);
    assert!(!ok && out.contains("no-such-file.yml"), "{out}");
}
