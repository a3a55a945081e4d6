//! `histogram_quantile`, `histogram_quantiles` and `histogram_fraction`: over native
//! histogram samples and over classic histograms (float series told apart by `le`).

use std::sync::Arc;

use promql_parser::parser::{Call, Expr};
use signalbox_storage::{Histogram, Labels};

use super::error::PromqlError;
use super::eval::Ev;
use super::functions::{arg, scalars, strings, vectors};
use super::histogram;
use super::position::node_key;
use super::types::{Instant, METRIC_NAME, Sample, format_g, remove, with_label};

/// A classic histogram: its labels without `le`, and `(upper bound, cumulative count)`
/// per bucket.
type Classic = (Labels, Vec<(f64, f64)>);

/// The histograms of one step of a vector: native histogram samples, and classic
/// histograms (float series that differ only in `le`) as `(labels without le, [(upper
/// bound, cumulative count)])`. A float sample without a valid `le` is left out with a
/// warning; a native histogram and classic buckets of the same series are both left out,
/// with a warning.
fn split_histograms(ev: &Ev<'_>, v: Vec<Sample>) -> (Vec<Sample>, Vec<Classic>) {
    let mut groups: std::collections::BTreeMap<Labels, Vec<(f64, f64)>> =
        std::collections::BTreeMap::new();
    let mut native = Vec::new();
    for s in v {
        if s.h.is_some() {
            native.push(s);
            continue;
        }
        let le = s.labels.get("le").unwrap_or("");
        let Ok(ub) = parse_le(le) else {
            ev.warn(histogram::with_metric_name(
                format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?}"
                ),
                s.labels.get(METRIC_NAME).unwrap_or(""),
            ));
            continue;
        };
        groups
            .entry(remove(&s.labels, &["le".to_string()]))
            .or_default()
            .push((ub, s.f));
    }
    native.retain(|s| {
        if groups.remove(&*s.labels).is_none() {
            return true;
        }
        ev.warn(histogram::with_metric_name(
            "PromQL warning: vector contains a mix of classic and native histograms".into(),
            s.labels.get(METRIC_NAME).unwrap_or(""),
        ));
        false
    });
    (native, groups.into_iter().collect())
}

/// A function of histograms (the vector argument `e`): `native` for each native
/// histogram sample, `classic` for each classic histogram, giving one or more
/// `(extra label, value)` results per histogram. The metric name is dropped.
fn histogram_fn(
    ev: &Ev<'_>,
    e: &Expr,
    native: impl Fn(&Labels, &Histogram, usize) -> Vec<(Option<(String, String)>, f64)>,
    classic: impl Fn(&Labels, &mut [(f64, f64)], usize) -> Vec<(Option<(String, String)>, f64)>,
) -> Result<Vec<Instant>, PromqlError> {
    let vs = vectors(ev, e)?;
    let mut out = Vec::with_capacity(vs.len());
    for (step, v) in vs.into_iter().enumerate() {
        let (natives, classics) = split_histograms(ev, v);
        let mut res = Vec::new();
        let mut push = |labels: &Arc<Labels>, results: Vec<(Option<(String, String)>, f64)>| {
            for (extra, f) in results {
                let labels = match extra {
                    Some((n, v)) => Arc::new(with_label(labels, &n, &v)),
                    None => labels.clone(),
                };
                res.push(Sample {
                    labels,
                    f,
                    h: None,
                    drop_name: true,
                });
            }
        };
        for s in &natives {
            if let Some(h) = &s.h {
                push(&s.labels, native(&s.labels, h, step));
            }
        }
        for (labels, mut buckets) in classics {
            let results = classic(&labels, &mut buckets, step);
            push(&Arc::new(labels), results);
        }
        out.push(Instant::Vector(res));
    }
    Ok(out)
}

/// `quantile` warns when outside [0, 1] (the result is then -Inf or +Inf).
pub(crate) fn check_quantile(q: f64) -> Option<String> {
    (!(0.0..=1.0).contains(&q)).then(|| {
        format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            format_g(q)
        )
    })
}

/// Warns (once) of every quantile outside [0, 1].
pub(crate) fn check_quantiles(ev: &Ev<'_>, qs: &[f64]) {
    qs.iter()
        .filter_map(|q| check_quantile(*q))
        .for_each(|w| ev.warn(w));
}

/// A native histogram's quantile, with the info when NaN observations affect it.
fn native_quantile(ev: &Ev<'_>, labels: &Labels, q: f64, h: &Histogram) -> f64 {
    let (v, nan) = histogram::quantile(q, h);
    if let Some(effect) = nan {
        ev.info(effect.info(labels.get(METRIC_NAME).unwrap_or("")));
    }
    v
}

/// A classic histogram's quantile, with the info when its buckets had to be made
/// monotonic.
fn classic_quantile(ev: &Ev<'_>, labels: &Labels, q: f64, b: &mut [(f64, f64)]) -> f64 {
    let (v, forced) = bucket_quantile(q, b);
    if forced {
        ev.info(histogram::with_metric_name(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".into(),
            labels.get(METRIC_NAME).unwrap_or(""),
        ));
    }
    v
}

pub(crate) fn histogram_quantile(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let q_arg = arg(c, 0)?;
    let qs = scalars(ev, q_arg)?;
    ev.noting_at(node_key(q_arg), || check_quantiles(ev, &qs));
    histogram_fn(
        ev,
        arg(c, 1)?,
        |l, h, i| vec![(None, native_quantile(ev, l, qs[i], h))],
        |l, b, i| vec![(None, classic_quantile(ev, l, qs[i], b))],
    )
}

/// `histogram_quantiles(v, "label", q1, q2, …)`: one result per quantile, told apart by
/// the label.
pub(crate) fn histogram_quantiles(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let label = strings(ev, arg(c, 1)?)?;
    let mut qs = Vec::new();
    for i in 2..c.args.args.len() {
        let q_arg = arg(c, i)?;
        let q = scalars(ev, q_arg)?;
        ev.noting_at(node_key(q_arg), || check_quantiles(ev, &q));
        qs.push(q);
    }
    let with = |i: usize, f: &mut dyn FnMut(f64) -> f64| {
        qs.iter()
            .map(|q| (Some((label.clone(), format_openmetrics(q[i]))), f(q[i])))
            .collect()
    };
    histogram_fn(
        ev,
        arg(c, 0)?,
        |l, h, i| with(i, &mut |q| native_quantile(ev, l, q, h)),
        |l, b, i| with(i, &mut |q| classic_quantile(ev, l, q, b)),
    )
}

/// A float as an OpenMetrics label value: like `%g`, with `.0` on whole numbers.
fn format_openmetrics(v: f64) -> String {
    let s = format_g(v);
    if v.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

pub(crate) fn histogram_fraction(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let lo = scalars(ev, arg(c, 0)?)?;
    let hi = scalars(ev, arg(c, 1)?)?;
    histogram_fn(
        ev,
        arg(c, 2)?,
        |l, h, i| {
            let (v, nan_left_out) = histogram::fraction(lo[i], hi[i], h);
            if nan_left_out {
                ev.info(histogram::with_metric_name(
                    "PromQL info: input to histogram_fraction has NaN observations, which are excluded from all fractions".into(),
                    l.get(METRIC_NAME).unwrap_or(""),
                ));
            }
            vec![(None, v)]
        },
        |_, b, i| vec![(None, bucket_fraction(lo[i], hi[i], b))],
    )
}

/// Sorts classic buckets by bound and merges equal bounds. `None` without a `+Inf`
/// bucket.
fn sorted_buckets(buckets: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return None;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    Some(merged)
}

/// The share of observations between `lower` and `upper` from classic cumulative
/// buckets, interpolated linearly inside the buckets the bounds fall in.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(b) = sorted_buckets(buckets) else {
        return f64::NAN;
    };
    let count = b[b.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None, None);
    // Positive buckets only: the first bucket starts at 0.
    let mut lb = if b[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, &(ub, c)) in b.iter().enumerate() {
        if i > 0 {
            lb = b[i - 1].0;
        }
        let at = |v: f64| {
            if lb == f64::NEG_INFINITY {
                c
            } else {
                rank + (c - rank) * (v - lb) / (ub - lb)
            }
        };
        if lower_rank.is_none() && lb >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && lb >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_none() && lb < lower && ub > lower {
            lower_rank = Some(at(lower));
        }
        if upper_rank.is_none() && lb < upper && ub > upper {
            upper_rank = Some(at(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank = c;
    }
    let l = lower_rank.map_or(count, |r: f64| r.min(count));
    let u = upper_rank.map_or(count, |r: f64| r.min(count));
    (u - l) / count
}

fn parse_le(s: &str) -> Result<f64, ()> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        t => t.parse::<f64>().map_err(|_| ()),
    }
}

/// Quantile from classic cumulative buckets `(upper bound, count)`.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(mut merged) = sorted_buckets(buckets) else {
        return (f64::NAN, false);
    };
    let forced = ensure_monotonic(&mut merged);
    (quantile_of_monotonic(q, &merged), forced)
}

/// Makes cumulative counts non-decreasing. A difference within a relative 1e-12 is
/// float noise and is evened out silently; a real decrease is removed and reported
/// (`true`).
fn ensure_monotonic(b: &mut [(f64, f64)]) -> bool {
    let Some(&(_, mut prev)) = b.first() else {
        return false;
    };
    let mut forced = false;
    for x in &mut b[1..] {
        let curr = x.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            x.1 = prev;
            continue;
        }
        if curr < prev {
            x.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Relative float equality within `eps`, as Prometheus compares.
fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || a.abs() + b.abs() < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()).min(f64::MAX) < eps
}

/// The quantile of sorted, monotonic classic buckets.
fn quantile_of_monotonic(q: f64, merged: &[(f64, f64)]) -> f64 {
    if merged.len() < 2 {
        return f64::NAN;
    }
    let total = merged[merged.len() - 1].1;
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * total;
    let b = merged.partition_point(|x| x.1 < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (start, end) = (if b == 0 { 0.0 } else { merged[b - 1].0 }, merged[b].0);
    let mut count = merged[b].1;
    if b > 0 {
        rank -= merged[b - 1].1;
        count -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}
