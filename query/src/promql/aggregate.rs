//! Aggregation operators over an instant vector, grouped `by` or `without` labels.

use std::collections::HashSet;
use std::sync::Arc;

use promql_parser::parser::LabelModifier;
use promql_parser::parser::token::TokenType;
use rustc_hash::FxHashMap;
use signalbox_storage::{Histogram, Labels};

use super::error::{PromqlError, exec};
use super::escapes::{go_quoted, valid_label_name};
use super::histogram;
use super::types::{Instant, NAME_LABELS, Sample, format_value, keep_only, remove, with_label};

/// `quantile` over values, Prometheus' linear interpolation between closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as the smallest value (Go's sort order).
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0) as usize;
    let upper = (lower + 1).min(values.len() - 1);
    let weight = rank - rank.floor();
    values[lower] * (1.0 - weight) + values[upper] * weight
}

struct Group {
    labels: Arc<Labels>,
    samples: Vec<Sample>,
}

/// The group label sets of one aggregation, kept across its steps. A series' samples
/// share one label set (`Arc`) over all steps, so its group is found by that address and
/// the labels are cut once per series, not once per sample; equal group label sets are
/// one `Arc`, so groups are told apart by address and the aggregation's output shares
/// its label sets across steps as well.
#[derive(Default)]
pub(crate) struct GroupKeys {
    /// By the address of an input label set: that label set (held, so the address is
    /// not reused) and its group's.
    by_input: FxHashMap<usize, (Arc<Labels>, Arc<Labels>)>,
    /// Label values come from outside: hashed with the standard (keyed) hasher.
    interned: HashSet<Arc<Labels>>,
}

impl GroupKeys {
    fn intern(&mut self, l: Labels) -> Arc<Labels> {
        if let Some(a) = self.interned.get(&l) {
            return a.clone();
        }
        let a = Arc::new(l);
        self.interned.insert(a.clone());
        a
    }

    fn group_of(&mut self, s: &Sample, m: Option<&LabelModifier>) -> Arc<Labels> {
        let addr = Arc::as_ptr(&s.labels) as usize;
        if let Some((_, g)) = self.by_input.get(&addr) {
            return g.clone();
        }
        let g = match m {
            // The name is grouped on even when it is due to be dropped (delayed name removal).
            Some(LabelModifier::Include(l)) => keep_only(&s.labels, &l.labels),
            Some(LabelModifier::Exclude(l)) => {
                let mut n = l.labels.clone();
                n.extend(NAME_LABELS.iter().map(|x| x.to_string()));
                remove(&s.labels, &n)
            }
            None => Labels::default(),
        };
        let g = self.intern(g);
        // A label set held by this sample alone (a binary operation's result, say) is
        // not shared with other steps: remembering it would only keep it alive.
        if Arc::strong_count(&s.labels) > 1 {
            self.by_input.insert(addr, (s.labels.clone(), g.clone()));
        }
        g
    }
}

fn scalar_param(op: &str, p: Option<&Instant>) -> Result<f64, PromqlError> {
    match p {
        Some(Instant::Scalar(f)) => Ok(*f),
        _ => Err(exec(format!("{op} requires a scalar parameter"))),
    }
}

/// Aggregates one step's vector. Annotations (full messages) are added to `notes`.
pub(crate) fn eval(
    op: &TokenType,
    m: Option<&LabelModifier>,
    param: Option<&Instant>,
    mut input: Vec<Sample>,
    keys: &mut GroupKeys,
    notes: &mut Vec<String>,
) -> Result<Vec<Sample>, PromqlError> {
    let op_s = op.to_string();
    let op = op_s.as_str();
    // These take float values only: native histograms are left out.
    if matches!(
        op,
        "min" | "max" | "stddev" | "stdvar" | "quantile" | "topk" | "bottomk"
    ) && input.iter().any(|s| s.h.is_some())
    {
        input.retain(|s| s.h.is_none());
        notes.push(format!(
            "PromQL info: ignored histogram in {op} aggregation"
        ));
    }
    // Groups in order of first appearance.
    let mut index: FxHashMap<usize, usize> = FxHashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let count_values_label = match (op, param) {
        ("count_values", Some(Instant::String(s))) => {
            if !valid_label_name(s.as_str()) {
                return Err(exec(format!("invalid label name {}", go_quoted(s))));
            }
            Some(s.clone())
        }
        ("count_values", _) => return Err(exec("count_values requires a string parameter")),
        _ => None,
    };
    for s in input {
        let mut key = keys.group_of(&s, m);
        if let Some(l) = &count_values_label {
            let value = match &s.h {
                Some(h) => histogram::to_text(h),
                None => format_value(s.f),
            };
            key = keys.intern(with_label(&key, l, &value));
        }
        match index.get(&(Arc::as_ptr(&key) as usize)) {
            Some(&i) => groups[i].samples.push(s),
            None => {
                index.insert(Arc::as_ptr(&key) as usize, groups.len());
                groups.push(Group {
                    labels: key,
                    samples: vec![s],
                });
            }
        }
    }
    let one = |labels: Arc<Labels>, f: f64, drop_name: bool| Sample {
        h: None,
        labels,
        f,
        drop_name,
    };
    let mut out = Vec::with_capacity(groups.len());
    match op {
        "topk" | "bottomk" | "limitk" => {
            let k = scalar_param(op, param)?;
            if k.is_nan() {
                return Err(exec("Parameter value is NaN"));
            }
            let k = if k >= 1.0 {
                k.min(i64::MAX as f64) as usize
            } else {
                0
            };
            for g in groups {
                let mut v = g.samples;
                match op {
                    "topk" => v.sort_by(|a, b| desc_nan_last(a.f, b.f)),
                    "bottomk" => v.sort_by(|a, b| asc_nan_last(a.f, b.f)),
                    _ => {}
                }
                v.truncate(k);
                out.extend(v);
            }
        }
        "limit_ratio" => {
            let r = scalar_param(op, param)?;
            if r.is_nan() {
                return Err(exec("Ratio value is NaN"));
            }
            let r = r.clamp(-1.0, 1.0);
            for g in groups {
                for s in g.samples {
                    let h = ratio_of(&s.labels);
                    let keep = if r >= 0.0 { h < r } else { h >= 1.0 + r };
                    if keep {
                        out.push(s);
                    }
                }
            }
        }
        _ => {
            for g in groups {
                if matches!(op, "sum" | "avg") && g.samples.iter().any(|s| s.h.is_some()) {
                    if g.samples.iter().any(|s| s.h.is_none()) {
                        notes.push(
                            "PromQL warning: encountered a mix of histograms and floats for aggregation"
                                .to_string(),
                        );
                        continue;
                    }
                    let drop = g.samples.iter().any(|s| s.drop_name)
                        && g.labels.get(super::types::METRIC_NAME).is_some();
                    if let Some(h) = sum_histograms(&g.samples, op == "avg", notes) {
                        out.push(Sample {
                            h: Some(Arc::new(h)),
                            ..one(g.labels, 0.0, drop)
                        });
                    }
                    continue;
                }
                let vals: Vec<f64> = g.samples.iter().map(|s| s.f).collect();
                let f = match op {
                    "sum" => kahan_sum(&vals),
                    "avg" => mean(&vals),
                    "count" | "count_values" => vals.len() as f64,
                    "group" => 1.0,
                    "min" => vals
                        .iter()
                        .copied()
                        .fold(f64::NAN, |a, x| if a.is_nan() || x < a { x } else { a }),
                    "max" => vals
                        .iter()
                        .copied()
                        .fold(f64::NAN, |a, x| if a.is_nan() || x > a { x } else { a }),
                    "stddev" => variance(&vals).sqrt(),
                    "stdvar" => variance(&vals),
                    "quantile" => {
                        let q = scalar_param(op, param)?;
                        let mut v = vals;
                        quantile(q, &mut v)
                    }
                    other => return Err(exec(format!("aggregation {other:?} is not supported"))),
                };
                // A group keeps a name that some of its samples were due to lose: drop it then.
                let drop = g.samples.iter().any(|s| s.drop_name)
                    && g.labels.get(super::types::METRIC_NAME).is_some();
                out.push(one(g.labels, f, drop));
            }
        }
    }
    Ok(out)
}

/// The sum (or mean) of a group of histogram samples (see `histogram::sum_or_mean`).
fn sum_histograms(samples: &[Sample], mean: bool, notes: &mut Vec<String>) -> Option<Histogram> {
    let hs: Vec<&Histogram> = samples.iter().filter_map(|s| s.h.as_deref()).collect();
    let name = samples
        .first()
        .and_then(|s| s.labels.get(super::types::METRIC_NAME))
        .unwrap_or("");
    histogram::sum_or_mean(&hs, mean, name, notes)
}

fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.total_cmp(&a),
    }
}

fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.total_cmp(&b),
    }
}

/// Warnings about an aggregation's parameter over all steps, once per query as
/// Prometheus gives them: a quantile that is NaN, above 1 (the largest) or below 0 (the
/// smallest); a ratio above 1 or below -1, which is capped.
pub(crate) fn param_warnings(op: &str, params: &[f64]) -> Vec<String> {
    let max = params.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = params.iter().copied().fold(f64::INFINITY, f64::min);
    let mut out = Vec::new();
    match op {
        "quantile" => {
            if params.iter().any(|q| q.is_nan()) {
                out.extend(super::quantiles::check_quantile(f64::NAN));
            }
            for (outside, q) in [(max > 1.0, max), (min < 0.0, min)] {
                if outside {
                    out.extend(super::quantiles::check_quantile(q));
                }
            }
        }
        "limit_ratio" => {
            for (outside, r, to) in [(max > 1.0, max, 1), (min < -1.0, min, -1)] {
                if outside {
                    out.push(format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {to}",
                        super::types::format_g(r)
                    ));
                }
            }
        }
        _ => {}
    }
    out.dedup();
    out
}

/// A stable number in [0, 1) per label set, for `limit_ratio`.
fn ratio_of(l: &Labels) -> f64 {
    (l.hash64() as f64) / (u64::MAX as f64 + 1.0)
}

pub(crate) fn kahan_sum(v: &[f64]) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for &x in v {
        if x.is_infinite() {
            sum += x;
            continue;
        }
        let t = sum + x;
        if sum.abs() >= x.abs() {
            c += (sum - t) + x;
        } else {
            c += (x - t) + sum;
        }
        sum = t;
    }
    if sum.is_infinite() || sum.is_nan() {
        sum
    } else {
        sum + c
    }
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let s = kahan_sum(v);
    if s.is_finite() {
        return s / v.len() as f64;
    }
    if s.is_nan() || v.iter().any(|x| x.is_infinite()) {
        return s;
    }
    // The sum overflowed: fall back to an incremental mean.
    let mut m = 0.0;
    for (i, &x) in v.iter().enumerate() {
        m += x / (i as f64 + 1.0) - m / (i as f64 + 1.0);
    }
    m
}

/// Population variance (Welford).
pub(crate) fn variance(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let (mut mean, mut m2) = (0.0, 0.0);
    for (i, &x) in v.iter().enumerate() {
        let n = i as f64 + 1.0;
        let d = x - mean;
        mean += d / n;
        m2 += d * (x - mean);
    }
    m2 / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::label::Labels as NameList;
    use promql_parser::parser::token;

    fn sample(labels: &Arc<Labels>, f: f64) -> Sample {
        Sample {
            labels: labels.clone(),
            f,
            h: None,
            drop_name: false,
        }
    }

    /// Series shared across steps are grouped once and their group label sets are shared
    /// by the output of every step; label sets made anew at each step (a binary
    /// operation's result) are not remembered.
    #[test]
    fn group_keys_are_kept_only_for_label_sets_shared_across_steps() {
        let by = LabelModifier::Include(NameList::new(vec!["job"]));
        let sum = TokenType::new(token::T_SUM);
        let a = Arc::new(Labels::from_pairs([
            ("__name__", "x"),
            ("job", "a"),
            ("i", "1"),
        ]));
        let b = Arc::new(Labels::from_pairs([
            ("__name__", "x"),
            ("job", "a"),
            ("i", "2"),
        ]));
        let mut keys = GroupKeys::default();
        let mut outs = Vec::new();
        for step in 0..3 {
            let input = vec![sample(&a, 1.0), sample(&b, step as f64)];
            let out = eval(&sum, Some(&by), None, input, &mut keys, &mut Vec::new()).unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].f, 1.0 + step as f64);
            assert_eq!(*out[0].labels, Labels::from_pairs([("job", "a")]));
            outs.push(out[0].labels.clone());
        }
        assert_eq!(keys.by_input.len(), 2);
        assert!(outs.iter().all(|l| Arc::ptr_eq(l, &outs[0])));

        let mut keys = GroupKeys::default();
        for step in 0..3 {
            let fresh = Arc::new(Labels::from_pairs([("job", "b"), ("step", "s")]));
            let input = vec![sample(&fresh, step as f64)];
            drop(fresh);
            let out = eval(&sum, Some(&by), None, input, &mut keys, &mut Vec::new()).unwrap();
            assert_eq!(out[0].f, step as f64);
        }
        assert!(keys.by_input.is_empty());
        assert_eq!(keys.interned.len(), 1);
    }

    /// A parameter that changes over the steps of a range query is reported once: its
    /// largest value above the range and its smallest below it, as Prometheus does.
    #[test]
    fn parameter_warnings_name_the_extremes_once() {
        let w = |op, ps: &[f64]| param_warnings(op, ps);
        assert_eq!(
            w("limit_ratio", &[1.1, 1.5, 0.5, -2.0]),
            [
                "PromQL warning: ratio value should be between -1 and 1, got 1.5, capping to 1",
                "PromQL warning: ratio value should be between -1 and 1, got -2, capping to -1",
            ]
        );
        assert_eq!(
            w("limit_ratio", &[-1.5]),
            ["PromQL warning: ratio value should be between -1 and 1, got -1.5, capping to -1"]
        );
        assert!(w("limit_ratio", &[1.0, -1.0, 0.0]).is_empty());
        assert_eq!(
            w("quantile", &[-0.5, f64::NAN, -0.1]),
            [
                "PromQL warning: quantile value should be between 0 and 1, got NaN",
                "PromQL warning: quantile value should be between 0 and 1, got -0.5",
            ]
        );
        assert!(w("quantile", &[0.0, 1.0]).is_empty());
        assert!(w("topk", &[5.0]).is_empty());
    }
}
