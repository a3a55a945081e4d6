//! Rule unit tests in `promtool test rules` format: input series, rule files, and the
//! alerts and query results expected at given times.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use signalbox_storage::{IngestSink, Labels, MemStore, MetricsBatch};

use super::file::{GroupSpec, Lang, Text, expand_paths, load_files};
use super::group::{AlertState, External, GroupState, Health};
use super::{Querier, RuleQuerier};
use crate::promql::notation::{parse_duration_ms, parse_series, parse_values, series_points};
use crate::promql::{Engine, EngineOptions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    fuzzy_compare: bool,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertCase>,
    #[serde(default)]
    promql_expr_test: Vec<ExprCase>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
    start_timestamp: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertCase {
    eval_time: Option<Text>,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, Text>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprCase {
    expr: String,
    eval_time: Option<Text>,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: Option<Text>,
    histogram: Option<String>,
}

/// Options of a test run.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// Run only test groups whose name matches one of these.
    pub run: Vec<regex::Regex>,
}

/// Go's `time.Duration` text (`0s`, `1m0s`, `2h0m10s`, `1.5s`).
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (h, m, s, frac) = (
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{sign}{m}m{secs}")
    } else if s == 0 && frac > 0 {
        format!("{sign}{frac}ms")
    } else {
        format!("{sign}{secs}")
    }
}

/// An optional duration field (absent = 0, as in promtool).
fn dur(t: &Option<Text>, what: &str) -> Result<i64, String> {
    match t {
        None => Ok(0),
        Some(t) => parse_duration_ms(t.0.trim()).map_err(|e| format!("{what}: {e}")),
    }
}

/// `start_timestamp`: unix seconds or RFC 3339.
fn start_ms(t: &Option<Text>) -> Result<i64, String> {
    let Some(t) = t else { return Ok(0) };
    let s = t.0.trim();
    if let Ok(v) = s.parse::<f64>() {
        return Ok((v * 1000.0).round() as i64);
    }
    let st = humantime::parse_rfc3339_weak(s).map_err(|e| format!("start_timestamp {s:?}: {e}"))?;
    st.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("start_timestamp {s:?} is before 1970"))
}

fn fmt_labels(m: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", v.join(", "))
}

fn fmt_series(l: &Labels) -> String {
    let v: Vec<String> = l
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", v.join(", "))
}

fn same_float(a: f64, b: f64, fuzzy: bool) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    fuzzy && (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs())
}

/// Runs one test file; the report is what `promtool test rules` prints for it.
pub async fn test_file(path: &Path, opts: &TestOptions) -> (bool, String) {
    let mut out = format!("Unit Testing:  {}\n", path.display());
    match run_file(path, opts).await {
        Ok(errs) if errs.is_empty() => {
            out.push_str("  SUCCESS\n");
            (true, out)
        }
        Ok(errs) => {
            out.push_str("  FAILED:\n");
            for e in errs {
                let _ = writeln!(out, "{e}");
            }
            (false, out)
        }
        Err(e) => {
            let _ = writeln!(out, "  FAILED:\n    {e}");
            (false, out)
        }
    }
}

async fn run_file(path: &Path, opts: &TestOptions) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tf: TestFile =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    let files = expand_paths(&tf.rule_files, base)?;
    let files: Vec<_> = files.into_iter().map(|f| (f, Lang::PromQL)).collect();
    let checked = load_files(&files).map_err(|e| e.join("\n    "))?;
    let mut groups: Vec<GroupSpec> = checked.groups;
    if !tf.group_eval_order.is_empty() {
        let mut ordered = Vec::new();
        for name in &tf.group_eval_order {
            let i = groups
                .iter()
                .position(|g| &g.name == name)
                .ok_or_else(|| format!("group name {name} given in group_eval_order not found"))?;
            ordered.push(groups.remove(i));
        }
        ordered.append(&mut groups);
        groups = ordered;
    }
    let eval_interval = match &tf.evaluation_interval {
        Some(s) => parse_duration_ms(s).map_err(|e| format!("evaluation_interval: {e}"))?,
        None => 60_000,
    };
    if eval_interval <= 0 {
        return Err("evaluation_interval must be positive".into());
    }
    let groups: Vec<Arc<GroupSpec>> = groups.into_iter().map(Arc::new).collect();
    let mut errs = Vec::new();
    for tg in &tf.tests {
        if !opts.run.is_empty() && !opts.run.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        let ge = run_group(tg, &groups, eval_interval, tf.fuzzy_compare).await;
        if !ge.is_empty() {
            let mut head = String::new();
            if !tg.name.is_empty() {
                head = format!("    name: {},\n", tg.name);
            }
            for e in ge {
                errs.push(format!("{head}{e}"));
            }
        }
    }
    Ok(errs)
}

async fn run_group(
    tg: &TestGroup,
    groups: &[Arc<GroupSpec>],
    eval_ms: i64,
    fuzzy: bool,
) -> Vec<String> {
    match run_group_inner(tg, groups, eval_ms, fuzzy).await {
        Ok(e) => e,
        Err(e) => vec![format!("    {e}")],
    }
}

async fn run_group_inner(
    tg: &TestGroup,
    groups: &[Arc<GroupSpec>],
    eval_ms: i64,
    fuzzy: bool,
) -> Result<Vec<String>, String> {
    let mint = start_ms(&tg.start_timestamp)?;
    let interval = match &tg.interval {
        Some(s) => parse_duration_ms(s).map_err(|e| format!("interval: {e}"))?,
        None => eval_ms,
    };
    let store = Arc::new(MemStore::new());
    let mut batch = MetricsBatch::default();
    for s in &tg.input_series {
        let labels = parse_series(&s.series).map_err(|e| format!("series {:?}: {e}", s.series))?;
        let values =
            parse_values(&s.values.0).map_err(|e| format!("series {:?}: {e}", s.series))?;
        batch
            .series
            .push(series_points(&labels, &values, mint, interval));
    }
    let written = store
        .write_metrics(batch)
        .await
        .map_err(|e| e.to_string())?;
    if written.rejected > 0 {
        return Err(format!(
            "input series rejected: {}",
            written.reasons.join("; ")
        ));
    }
    let q = Querier::new(Engine::new(EngineOptions::default()), store.clone(), None);
    let ext = External {
        labels: tg.external_labels.clone(),
        url: tg.external_url.clone(),
    };
    let mut states: Vec<GroupState> = groups
        .iter()
        .map(|g| GroupState::new(g.clone(), Duration::from_millis(eval_ms as u64)))
        .collect();

    let mut alert_cases: Vec<(i64, &AlertCase)> = Vec::new();
    for c in &tg.alert_rule_test {
        alert_cases.push((dur(&c.eval_time, "eval_time")?, c));
    }
    alert_cases.sort_by_key(|c| c.0);
    let mut expr_cases = Vec::new();
    for c in &tg.promql_expr_test {
        expr_cases.push((dur(&c.eval_time, "eval_time")?, c));
    }
    let maxt = alert_cases
        .iter()
        .map(|c| c.0)
        .chain(expr_cases.iter().map(|c| c.0))
        .max()
        .unwrap_or(0);

    let mut errs = Vec::new();
    let mut next_case = 0;
    let mut ts = mint;
    while ts - mint <= maxt {
        for g in &mut states {
            let gi = g.interval.as_millis().max(1) as i64;
            if (ts - mint) % gi != 0 {
                continue;
            }
            g.eval(ts, &q, store.as_ref(), &ext).await;
            for r in &g.rules {
                if let Health::Err(e) = &r.health {
                    errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.spec.name,
                        go_duration(ts - mint)
                    ));
                }
            }
        }
        while next_case < alert_cases.len()
            && alert_cases[next_case].0 >= ts - mint
            && alert_cases[next_case].0 < ts - mint + eval_ms
        {
            let (t, c) = alert_cases[next_case];
            if let Some(e) = check_alerts(c, t, &states) {
                errs.push(e);
            }
            next_case += 1;
        }
        ts = match ts.checked_add(eval_ms) {
            Some(t) => t,
            None => break,
        };
    }
    for (t, c) in expr_cases {
        if let Some(e) = check_expr(c, mint, t, &q, fuzzy).await {
            errs.push(e);
        }
    }
    Ok(errs)
}

type AlertView = (BTreeMap<String, String>, BTreeMap<String, String>);

fn fmt_alerts(v: &[AlertView]) -> String {
    if v.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[\n");
    for (i, (l, a)) in v.iter().enumerate() {
        let _ = write!(
            s,
            "            {i}:\n              Labels:{}\n              Annotations:{}\n",
            fmt_labels(l),
            fmt_labels(a)
        );
    }
    s.push_str("            ]");
    s
}

fn check_alerts(c: &AlertCase, t: i64, states: &[GroupState]) -> Option<String> {
    let mut got: Vec<AlertView> = states
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.spec.is_alert() && r.spec.name == c.alertname)
        .flat_map(|r| r.alerts.values())
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| (a.labels.clone(), a.annotations.clone()))
        .collect();
    let mut exp: Vec<AlertView> = c
        .exp_alerts
        .iter()
        .map(|e| {
            let mut l: BTreeMap<String, String> = e
                .exp_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            l.insert("alertname".into(), c.alertname.clone());
            let a = e
                .exp_annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            (l, a)
        })
        .collect();
    got.sort();
    exp.sort();
    if got == exp {
        return None;
    }
    Some(format!(
        "    alertname: {}, time: {}, \n        exp:{},\n        got:{}",
        c.alertname,
        go_duration(t),
        fmt_alerts(&exp),
        fmt_alerts(&got)
    ))
}

async fn check_expr(c: &ExprCase, mint: i64, t: i64, q: &Querier, fuzzy: bool) -> Option<String> {
    let head = format!("    expr: {:?}, time: {},\n", c.expr, go_duration(t));
    let got = match q.query(Lang::PromQL, &c.expr, mint + t).await {
        Ok(v) => v,
        Err(e) => return Some(format!("{head}        err: {e}")),
    };
    let mut exp: Vec<(Labels, Result<f64, String>)> = Vec::new();
    for s in &c.exp_samples {
        let labels = if s.labels.trim().is_empty() {
            Vec::new()
        } else {
            match parse_series(&s.labels) {
                Ok(l) => l,
                Err(e) => {
                    return Some(format!("{head}        expected labels {:?}: {e}", s.labels));
                }
            }
        };
        let v = match (&s.histogram, &s.value) {
            (Some(h), _) => Err(h.clone()),
            (None, Some(v)) => match v.0.trim().parse::<f64>() {
                Ok(f) => Ok(f),
                Err(_) => {
                    return Some(format!(
                        "{head}        expected value {:?} is not a number",
                        v.0
                    ));
                }
            },
            (None, None) => Ok(0.0),
        };
        exp.push((Labels::from_pairs(labels), v));
    }
    let mut got = got;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let matches = got.len() == exp.len()
        && got.iter().zip(&exp).all(|((gl, gv), (el, ev))| {
            gl == el && matches!(ev, Ok(e) if same_float(*gv, *e, fuzzy))
        });
    if matches {
        return None;
    }
    let fmt_exp: Vec<String> = exp
        .iter()
        .map(|(l, v)| match v {
            Ok(f) => format!("{} {f}", fmt_series(l)),
            Err(h) => format!("{} histogram {h}", fmt_series(l)),
        })
        .collect();
    let fmt_got: Vec<String> = got
        .iter()
        .map(|(l, v)| format!("{} {v}", fmt_series(l)))
        .collect();
    Some(format!(
        "{head}        exp: {}\n        got: {}",
        if fmt_exp.is_empty() {
            "nothing".into()
        } else {
            fmt_exp.join(", ")
        },
        if fmt_got.is_empty() {
            "nothing".into()
        } else {
            fmt_got.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(86_400_000), "24h0m0s");
        assert_eq!(go_duration(179_999), "2m59.999s");
        assert_eq!(go_duration(59_000), "59s");
        assert_eq!(go_duration(5), "5ms");
    }

    #[test]
    fn fuzzy_tolerates_one_ulp_only() {
        assert!(same_float(2.9999999999999996, 3.0, true));
        assert!(!same_float(2.9999999999999996, 3.0, false));
        assert!(!same_float(2.9999999999999987, 3.0, true));
        assert!(same_float(f64::NAN, f64::NAN, false));
    }
}
