//! PromQL functions: over instant vectors, over range vectors (range selectors and
//! subqueries), and the scalar/time helpers.

use std::sync::Arc;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Call, Expr};
use signalbox_storage::Labels;

use super::aggregate::{kahan_sum, mean, quantile, variance};
use super::error::{PromqlError, exec};
use super::escapes::{shown, valid_label_name};
use super::eval::Ev;
use super::fetch::{at_ms, offset_ms};
use super::hist_functions::{Outcome, map_histograms, range_outcome};
use super::position::node_key;
use super::starts;
use super::types::{Cursor, Instant, METRIC_NAME, Sample, remove, with_label};
use super::{histogram, quantiles};

pub(crate) fn arg(c: &Call, i: usize) -> Result<&Expr, PromqlError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| PromqlError::Parse(format!("missing argument {} of {}", i + 1, c.func.name)))
}

pub(crate) fn scalars(ev: &Ev<'_>, e: &Expr) -> Result<Vec<f64>, PromqlError> {
    ev.eval(e)?
        .into_iter()
        .map(|v| match v {
            Instant::Scalar(f) => Ok(f),
            _ => Err(exec("expected a scalar argument")),
        })
        .collect()
}

pub(crate) fn strings(ev: &Ev<'_>, e: &Expr) -> Result<String, PromqlError> {
    match ev.eval(e)?.into_iter().next() {
        Some(Instant::String(s)) => Ok(s),
        _ => Err(exec("expected a string argument")),
    }
}

pub(crate) fn vectors(ev: &Ev<'_>, e: &Expr) -> Result<Vec<Vec<Sample>>, PromqlError> {
    ev.eval(e)?
        .into_iter()
        .map(|v| match v {
            Instant::Vector(s) => Ok(s),
            _ => Err(exec("expected an instant vector argument")),
        })
        .collect()
}

/// Applies `f` to every sample of the first argument, dropping the metric name.
fn map_vector(
    ev: &Ev<'_>,
    c: &Call,
    f: impl Fn(f64, usize) -> f64,
) -> Result<Vec<Instant>, PromqlError> {
    Ok(vectors(ev, arg(c, 0)?)?
        .into_iter()
        .enumerate()
        .map(|(step, v)| {
            Instant::Vector(
                v.into_iter()
                    .filter(|s| s.h.is_none())
                    .map(|s| Sample {
                        f: f(s.f, step),
                        drop_name: true,
                        ..s
                    })
                    .collect(),
            )
        })
        .collect())
}

fn optional_scalars(
    ev: &Ev<'_>,
    c: &Call,
    i: usize,
    default: f64,
) -> Result<Vec<f64>, PromqlError> {
    match c.args.args.get(i) {
        Some(e) => scalars(ev, e),
        None => Ok(vec![default; ev.steps()]),
    }
}

/// The node a function's annotations point at, as in Prometheus: its first vector or
/// range argument; the quantile for `quantile_over_time`; the call itself for the sort
/// functions (whose warning is about the call) and for one without such an argument.
/// (`histogram_quantile(s)` point their quantile warnings at the quantiles.)
pub(crate) fn annotated_node(call: &Expr, c: &Call) -> usize {
    let series_arg = c
        .args
        .args
        .iter()
        .find(|a| matches!(a.value_type(), ValueType::Vector | ValueType::Matrix));
    match (c.func.name, series_arg, c.args.args.first()) {
        ("quantile_over_time", _, Some(q)) => node_key(q),
        (name, Some(a), _) if !name.starts_with("sort") => node_key(a),
        _ => node_key(call),
    }
}

pub(crate) fn call(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let name = c.func.name;
    for a in &c.args.args {
        super::extended::check_function(name, a)?;
    }
    if name.starts_with("sort") && ev.times.first() != ev.times.last() {
        ev.warn(
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
                .to_string(),
        );
    }
    match name {
        "time" => Ok(ev
            .times
            .iter()
            .map(|t| Instant::Scalar(*t as f64 / 1000.0))
            .collect()),
        "pi" => Ok(vec![Instant::Scalar(std::f64::consts::PI); ev.steps()]),
        "start" => Ok(vec![
            Instant::Scalar(ev.query_start as f64 / 1000.0);
            ev.steps()
        ]),
        "end" => Ok(vec![
            Instant::Scalar(ev.query_end as f64 / 1000.0);
            ev.steps()
        ]),
        "min_of" | "max_of" => {
            let mut acc = scalars(ev, arg(c, 0)?)?;
            for i in 1..c.args.args.len() {
                let next = scalars(ev, arg(c, i)?)?;
                for (a, b) in acc.iter_mut().zip(next) {
                    *a = if name == "min_of" {
                        go_min(*a, b)
                    } else {
                        go_max(*a, b)
                    };
                }
            }
            Ok(acc.into_iter().map(Instant::Scalar).collect())
        }
        "step" => Ok(vec![
            Instant::Scalar(ev.query_step as f64 / 1000.0);
            ev.steps()
        ]),
        "range" => Ok(vec![
            Instant::Scalar(
                (ev.query_end - ev.query_start) as f64 / 1000.0
            );
            ev.steps()
        ]),
        "vector" => Ok(scalars(ev, arg(c, 0)?)?
            .into_iter()
            .map(|f| {
                Instant::Vector(vec![Sample {
                    h: None,
                    labels: Arc::new(Labels::default()),
                    f,
                    drop_name: false,
                }])
            })
            .collect()),
        "scalar" => Ok(vectors(ev, arg(c, 0)?)?
            .into_iter()
            .map(|v| {
                // The one float sample; histograms do not count.
                let mut floats = v.iter().filter(|s| s.h.is_none());
                Instant::Scalar(match (floats.next(), floats.next()) {
                    (Some(s), None) => s.f,
                    _ => f64::NAN,
                })
            })
            .collect()),
        "abs" => map_vector(ev, c, |x, _| x.abs()),
        "ceil" => map_vector(ev, c, |x, _| x.ceil()),
        "floor" => map_vector(ev, c, |x, _| x.floor()),
        "exp" => map_vector(ev, c, |x, _| x.exp()),
        "ln" => map_vector(ev, c, |x, _| x.ln()),
        "log2" => map_vector(ev, c, |x, _| x.log2()),
        "log10" => map_vector(ev, c, |x, _| x.log10()),
        "sqrt" => map_vector(ev, c, |x, _| x.sqrt()),
        "sgn" => map_vector(ev, c, |x, _| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }),
        "acos" => map_vector(ev, c, |x, _| x.acos()),
        "acosh" => map_vector(ev, c, |x, _| x.acosh()),
        "asin" => map_vector(ev, c, |x, _| x.asin()),
        "asinh" => map_vector(ev, c, |x, _| x.asinh()),
        "atan" => map_vector(ev, c, |x, _| x.atan()),
        "atanh" => map_vector(ev, c, |x, _| x.atanh()),
        "cos" => map_vector(ev, c, |x, _| x.cos()),
        "cosh" => map_vector(ev, c, |x, _| x.cosh()),
        "sin" => map_vector(ev, c, |x, _| x.sin()),
        "sinh" => map_vector(ev, c, |x, _| x.sinh()),
        "tan" => map_vector(ev, c, |x, _| x.tan()),
        "tanh" => map_vector(ev, c, |x, _| x.tanh()),
        "deg" => map_vector(ev, c, |x, _| x.to_degrees()),
        "rad" => map_vector(ev, c, |x, _| x.to_radians()),
        "round" => {
            let to = optional_scalars(ev, c, 1, 1.0)?;
            map_vector(ev, c, |x, i| {
                let inv = 1.0 / to[i];
                // Go's math.Floor(x*inv+0.5)/inv: halves round up.
                (x * inv + 0.5).floor() / inv
            })
        }
        "clamp" => {
            let lo = scalars(ev, arg(c, 1)?)?;
            let hi = scalars(ev, arg(c, 2)?)?;
            let vs = vectors(ev, arg(c, 0)?)?;
            Ok(vs
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if lo[i] > hi[i] {
                        return Instant::Vector(Vec::new());
                    }
                    Instant::Vector(
                        v.into_iter()
                            .filter(|s| s.h.is_none())
                            .map(|s| Sample {
                                f: go_min(go_max(s.f, lo[i]), hi[i]),
                                drop_name: true,
                                ..s
                            })
                            .collect(),
                    )
                })
                .collect())
        }
        "clamp_min" => {
            let lo = scalars(ev, arg(c, 1)?)?;
            map_vector(ev, c, |x, i| go_max(x, lo[i]))
        }
        "clamp_max" => {
            let hi = scalars(ev, arg(c, 1)?)?;
            map_vector(ev, c, |x, i| go_min(x, hi[i]))
        }
        "timestamp" => timestamp(ev, c),
        "start_timestamp" => start_timestamp(ev, c),
        "absent" => absent(ev, c),
        "absent_over_time" => absent_over_time(ev, c),
        "sort" | "sort_desc" => {
            let desc = name == "sort_desc";
            Ok(vectors(ev, arg(c, 0)?)?
                .into_iter()
                .map(|mut v| {
                    // Histograms have no order: they are left out.
                    v.retain(|s| s.h.is_none());
                    v.sort_by(|a, b| match (a.f.is_nan(), b.f.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ => {
                            if desc {
                                b.f.total_cmp(&a.f)
                            } else {
                                a.f.total_cmp(&b.f)
                            }
                        }
                    });
                    Instant::Vector(v)
                })
                .collect())
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let desc = name == "sort_by_label_desc";
            let mut keys = Vec::new();
            for i in 1..c.args.args.len() {
                keys.push(strings(ev, arg(c, i)?)?);
            }
            Ok(vectors(ev, arg(c, 0)?)?
                .into_iter()
                .map(|mut v| {
                    v.sort_by(|a, b| {
                        let mut o = std::cmp::Ordering::Equal;
                        for k in &keys {
                            o = natural_cmp(
                                a.labels.get(k).unwrap_or(""),
                                b.labels.get(k).unwrap_or(""),
                            );
                            if o != std::cmp::Ordering::Equal {
                                break;
                            }
                        }
                        let o = o.then_with(|| a.labels.cmp(&b.labels));
                        if desc { o.reverse() } else { o }
                    });
                    Instant::Vector(v)
                })
                .collect())
        }
        "label_replace" => label_replace(ev, c),
        "label_join" => label_join(ev, c),
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => date_fn(ev, c, name),
        "histogram_quantile" => quantiles::histogram_quantile(ev, c),
        "histogram_quantiles" => quantiles::histogram_quantiles(ev, c),
        "histogram_count" => map_histograms(ev, arg(c, 0)?, |h, _| h.count),
        "histogram_sum" => map_histograms(ev, arg(c, 0)?, |h, _| h.sum),
        "histogram_avg" => map_histograms(ev, arg(c, 0)?, |h, _| h.sum / h.count),
        "histogram_stdvar" => map_histograms(ev, arg(c, 0)?, |h, _| histogram::variance(h)),
        "histogram_stddev" => map_histograms(ev, arg(c, 0)?, |h, _| histogram::variance(h).sqrt()),
        "histogram_fraction" => quantiles::histogram_fraction(ev, c),
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "resets"
        | "changes"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "mad_over_time"
        | "ts_of_last_over_time"
        | "ts_of_first_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time" => range_fn(ev, c, name, arg(c, 0)?, &[]),
        "quantile_over_time" => {
            let q = scalars(ev, arg(c, 0)?)?;
            quantiles::check_quantiles(ev, &q);
            range_fn(ev, c, name, arg(c, 1)?, &[q])
        }
        "predict_linear" => {
            let d = scalars(ev, arg(c, 1)?)?;
            range_fn(ev, c, name, arg(c, 0)?, &[d])
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let sf = scalars(ev, arg(c, 1)?)?;
            let tf = scalars(ev, arg(c, 2)?)?;
            for (a, b) in sf.iter().zip(&tf) {
                if !(*a > 0.0 && *a < 1.0) {
                    return Err(exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {a}"
                    )));
                }
                if !(*b > 0.0 && *b < 1.0) {
                    return Err(exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {b}"
                    )));
                }
            }
            range_fn(ev, c, name, arg(c, 0)?, &[sf, tf])
        }
        "info" => super::info::eval(ev, c),
        other => Err(exec(format!("function {other:?} is not supported yet"))),
    }
}

/// `max` that propagates NaN, like Go's `math.Max`.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// `min` that propagates NaN, like Go's `math.Min`.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Compares strings with runs of digits compared by number ("2" < "10").
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (&x[..dx], &y[..dy]);
                let tx = nx.iter().skip_while(|c| **c == b'0').count();
                let ty = ny.iter().skip_while(|c| **c == b'0').count();
                let o = tx
                    .cmp(&ty)
                    .then_with(|| nx[dx - tx..].cmp(&ny[dy - ty..]))
                    .then_with(|| dx.cmp(&dy));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                x = &x[dx..];
                y = &y[dy..];
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return p.cmp(q);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// Functions that keep the metric name of their input.
fn keeps_name(name: &str) -> bool {
    matches!(name, "last_over_time" | "first_over_time")
}

fn range_fn(
    ev: &Ev<'_>,
    c: &Call,
    name: &str,
    range_arg: &Expr,
    params: &[Vec<f64>],
) -> Result<Vec<Instant>, PromqlError> {
    let _ = c;
    let input = ev.eval_range(range_arg)?;
    if matches!(name, "rate" | "increase") {
        // Said of float series; histograms are counters by their type.
        for s in input
            .series
            .iter()
            .filter(|s| input.windows.iter().any(|w| !s.window(*w).is_empty()))
        {
            if let Some(n) = s.labels.get(METRIC_NAME)
                && !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|x| n.ends_with(x))
            {
                ev.info(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                ));
            }
        }
    }
    if let Some(m) = super::extended::of_range(range_arg) {
        return super::extended::range_fn(ev, name, m, &input);
    }
    let mut out = Vec::with_capacity(ev.steps());
    let mut cursors = vec![(Cursor::default(), Cursor::default()); input.series.len()];
    for (step, w) in input.windows.iter().enumerate() {
        if step % 64 == 0 {
            ev.check_time()?;
        }
        let mut v = Vec::new();
        for (i, (s, (cf, ch))) in input.series.iter().zip(&mut cursors).enumerate() {
            // One step over many series (an instant query) can be long as well.
            if i % 1024 == 1023 {
                ev.check_time()?;
            }
            let (fspan, hspan) = (cf.span(&s.points, *w), ch.span(&s.hists, *w));
            let pts = &s.points[fspan.0..fspan.1];
            let hpts = &s.hists[hspan.0..hspan.1];
            let starts = (s.starts.of_points(fspan), s.starts.of_hists(hspan));
            if !hpts.is_empty() {
                match range_outcome(ev, name, s, pts, hpts, starts, *w) {
                    Outcome::Value(f, h) => {
                        v.push(Sample {
                            labels: s.labels.clone(),
                            f,
                            h,
                            drop_name: if keeps_name(name) { s.drop_name } else { true },
                        });
                        continue;
                    }
                    Outcome::Nothing => continue,
                    Outcome::Floats => {}
                }
            }
            if pts.is_empty() {
                continue;
            }
            // Start times matter to the counter functions only.
            let sts: &[i64] = match name {
                "rate" | "increase" | "irate" | "resets" => starts.0,
                _ => &[],
            };
            if matches!(name, "rate" | "increase") && starts::overlap(sts, pts.iter().map(|p| p.0))
            {
                ev.warn(starts::overlap_warning(
                    s.labels.get(METRIC_NAME).unwrap_or(""),
                ));
            }
            let p = |i: usize| params.get(i).map(|x| x[step]).unwrap_or(f64::NAN);
            let r = match name {
                "rate" => extrapolated(pts, sts, *w, true, true),
                "increase" => extrapolated(pts, sts, *w, true, false),
                "delta" => extrapolated(pts, &[], *w, false, false),
                "irate" => instant_rate(pts, sts, true),
                "idelta" => instant_rate(pts, &[], false),
                "deriv" => (pts.len() >= 2).then(|| linear_regression(pts, pts[0].0).0),
                "predict_linear" => (pts.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(pts, ev.times[step]);
                    slope * p(0) + intercept
                }),
                "resets" => Some(
                    pts.windows(2)
                        .enumerate()
                        .filter(|(i, x)| {
                            x[1].1 < x[0].1 || starts::reset_between(sts, *i, x[0].0, x[1].0)
                        })
                        .count() as f64,
                ),
                "changes" => Some(
                    pts.windows(2)
                        .filter(|x| !(x[1].1 == x[0].1 || (x[1].1.is_nan() && x[0].1.is_nan())))
                        .count() as f64,
                ),
                "avg_over_time" => Some(mean(&values(pts))),
                "sum_over_time" => Some(kahan_sum(&values(pts))),
                "count_over_time" => Some(pts.len() as f64),
                "min_over_time" => Some(
                    pts.iter()
                        .map(|x| x.1)
                        .fold(f64::NAN, |a, x| if a.is_nan() || x < a { x } else { a }),
                ),
                "max_over_time" => Some(
                    pts.iter()
                        .map(|x| x.1)
                        .fold(f64::NAN, |a, x| if a.is_nan() || x > a { x } else { a }),
                ),
                "last_over_time" => pts.last().map(|x| x.1),
                "first_over_time" => pts.first().map(|x| x.1),
                "ts_of_last_over_time" => pts.last().map(|x| x.0 as f64 / 1000.0),
                "ts_of_first_over_time" => pts.first().map(|x| x.0 as f64 / 1000.0),
                "ts_of_max_over_time" => extreme_ts(pts, true),
                "ts_of_min_over_time" => extreme_ts(pts, false),
                "present_over_time" => Some(1.0),
                "stddev_over_time" => Some(variance(&values(pts)).sqrt()),
                "stdvar_over_time" => Some(variance(&values(pts))),
                "mad_over_time" if pts.iter().any(|x| x.1.is_nan()) => Some(f64::NAN),
                "mad_over_time" => {
                    let mut v = values(pts);
                    let med = quantile(0.5, &mut v);
                    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
                    Some(quantile(0.5, &mut dev))
                }
                "quantile_over_time" => {
                    let mut v = values(pts);
                    Some(quantile(p(0), &mut v))
                }
                "double_exponential_smoothing" | "holt_winters" => smoothing(pts, p(0), p(1)),
                _ => None,
            };
            if let Some(f) = r {
                v.push(Sample {
                    h: None,
                    labels: s.labels.clone(),
                    f,
                    drop_name: if keeps_name(name) { s.drop_name } else { true },
                });
            }
        }
        out.push(Instant::Vector(v));
    }
    Ok(out)
}

fn values(pts: &[(i64, f64)]) -> Vec<f64> {
    pts.iter().map(|x| x.1).collect()
}

fn extreme_ts(pts: &[(i64, f64)], max: bool) -> Option<f64> {
    let mut best: Option<(i64, f64)> = None;
    for &(t, v) in pts {
        best = match best {
            None => Some((t, v)),
            Some((bt, bv)) => {
                let better = if max {
                    v >= bv || bv.is_nan()
                } else {
                    v <= bv || bv.is_nan()
                };
                if better && !v.is_nan() {
                    Some((t, v))
                } else {
                    Some((bt, bv))
                }
            }
        };
    }
    best.map(|(t, _)| t as f64 / 1000.0)
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated to its edges.
/// `sts` holds the start time of each point (0: unknown), or nothing: a counter resets
/// where a start time says so, and a first point whose start lies inside the window
/// counts from a zero there instead of being extrapolated (then one point is enough).
pub(crate) fn extrapolated(
    pts: &[(i64, f64)],
    sts: &[i64],
    w: (i64, i64),
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    let (&first, &last) = (pts.first()?, pts.last()?);
    let mut result = last.1 - first.1;
    if counter {
        for (i, x) in pts.windows(2).enumerate() {
            if x[1].1 < x[0].1 || starts::reset_between(sts, i, x[0].0, x[1].0) {
                result += x[0].1;
            }
        }
    }
    let zero_at = if counter {
        starts::zero_point(sts, w.0, first.0)
    } else {
        None
    };
    if zero_at.is_none() && pts.len() < 2 {
        return None;
    }
    let factor = extrapolation_factor(
        (first.0, last.0),
        pts.len(),
        w,
        counter.then_some((first.1, result)),
        per_second,
        zero_at,
    );
    if zero_at.is_some() {
        result += first.1;
    }
    Some(result * factor)
}

/// The factor that extrapolates a change seen between the first and last of `n` samples
/// (at `first_t`, `last_t`) to the window's edges, per second with `per_second`. For
/// counters, `zero_limit` holds the first value and the change: extrapolation to the
/// left stops where the counter would reach zero. With `zero_at`, the change is taken
/// from a zero at that time instead, without extrapolating to the left.
pub(crate) fn extrapolation_factor(
    (first_t, last_t): (i64, i64),
    n: usize,
    (start, end): (i64, i64),
    zero_limit: Option<(f64, f64)>,
    per_second: bool,
    zero_at: Option<i64>,
) -> f64 {
    let secs = |ms: i64| ms as f64 / 1000.0;
    let range_secs = secs(end - start);
    let sampled = secs(last_t - first_t);
    let avg = if n > 1 { sampled / (n - 1) as f64 } else { 0.0 };
    let threshold = avg * 1.1;
    let (to_start, covered) = match zero_at {
        Some(st) => (0.0, secs(last_t - st)),
        None => {
            let mut to_start = secs(first_t - start);
            if to_start >= threshold {
                to_start = avg / 2.0;
            }
            // Counters cannot go below zero: stop extrapolating where the slope
            // reaches zero.
            if let Some((first, result)) = zero_limit
                && result > 0.0
                && first >= 0.0
            {
                let to_zero = sampled * (first / result);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            (to_start, sampled)
        }
    };
    let to_end = match secs(end - last_t) {
        e if e >= threshold => avg / 2.0,
        e => e,
    };
    let mut factor = if covered != 0.0 {
        (covered + to_start + to_end) / covered
    } else {
        1.0
    };
    if per_second {
        factor /= range_secs;
    }
    factor
}

/// `irate` (`rate`) or `idelta` from the last two points; `sts` as for `extrapolated`.
fn instant_rate(pts: &[(i64, f64)], sts: &[i64], rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len();
    let (prev, last) = (pts[n - 2], pts[n - 1]);
    let mut d = last.1 - prev.1;
    if rate && (last.1 < prev.1 || starts::reset_between(sts, n - 2, prev.0, last.0)) {
        d = last.1;
    }
    if !rate {
        return Some(d);
    }
    let secs = (last.0 - prev.0) as f64 / 1000.0;
    if secs == 0.0 {
        return None;
    }
    Some(d / secs)
}

/// Least-squares slope (per second) and intercept at `intercept_t`.
fn linear_regression(pts: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let init = pts[0].1;
    let const_y = pts.iter().all(|p| p.1 == init);
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let n = pts.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    for &(t, v) in pts {
        let x = (t - intercept_t) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn smoothing(pts: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, pts[0].1);
    let mut b = pts[1].1 - pts[0].1;
    for (i, p) in pts.iter().enumerate().skip(1) {
        let x = sf * p.1;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

fn timestamp(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    if let Expr::VectorSelector(vs) = unwrap_parens(arg(c, 0)?) {
        return Ok(ev
            .select_with_times(vs)?
            .into_iter()
            .map(|v| {
                Instant::Vector(
                    v.into_iter()
                        .map(|(s, t)| Sample {
                            f: t as f64 / 1000.0,
                            h: None,
                            drop_name: true,
                            ..s
                        })
                        .collect(),
                )
            })
            .collect());
    }
    let times = ev.times.clone();
    map_vector(ev, c, move |_, i| times[i] as f64 / 1000.0)
}

/// `start_timestamp(v)`: the start time (seconds; 0 when unknown) of each sample a
/// selector picks. Only a selector's samples have start times: any other expression
/// gives nothing, and so does every expression while start times are off.
fn start_timestamp(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let (true, Expr::VectorSelector(vs)) = (ev.opts.start_times, unwrap_parens(arg(c, 0)?)) else {
        vectors(ev, arg(c, 0)?)?;
        return Ok(vec![Instant::Vector(Vec::new()); ev.steps()]);
    };
    // Each series with every sample (float or histogram) replaced by its start time,
    // staleness markers kept: the selector then picks as it would.
    let series: Vec<signalbox_storage::Series> =
        ev.series_of(vs)
            .iter()
            .map(|s| {
                let floats = s.samples.iter().map(|x| {
                    let v = if signalbox_storage::is_stale_nan(x.v) {
                        x.v
                    } else {
                        s.start_at(x.t) as f64 / 1000.0
                    };
                    signalbox_storage::Sample { t: x.t, v }
                });
                let hists = s.histograms.iter().filter(|h| h.h.is_valid()).map(|h| {
                    signalbox_storage::Sample {
                        t: h.t,
                        v: s.start_at(h.t) as f64 / 1000.0,
                    }
                });
                let mut samples: Vec<_> = floats.chain(hists).collect();
                samples.sort_by_key(|x| x.t);
                signalbox_storage::Series {
                    labels: s.labels.clone(),
                    samples,
                    ..Default::default()
                }
            })
            .collect();
    let off = offset_ms(&vs.offset);
    let at = at_ms(&vs.at, ev.query_start, ev.query_end);
    Ok(ev
        .newest_samples(&series, at, off)?
        .into_iter()
        .map(|v| {
            Instant::Vector(
                v.into_iter()
                    .map(|(s, _)| Sample {
                        drop_name: true,
                        ..s
                    })
                    .collect(),
            )
        })
        .collect())
}

/// The labels `absent` reports: the equality matchers of a plain selector.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen_twice: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if seen.contains(&m.name.as_str()) {
            seen_twice.push(m.name.clone());
        }
        seen.push(&m.name);
        if matches!(m.op, PMatchOp::Equal) && m.name != METRIC_NAME {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    pairs.retain(|(n, _)| !seen_twice.contains(n));
    Labels::from_pairs(pairs)
}

fn absent(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let labels = Arc::new(absent_labels(arg(c, 0)?));
    Ok(vectors(ev, arg(c, 0)?)?
        .into_iter()
        .map(|v| {
            Instant::Vector(if v.is_empty() {
                vec![Sample {
                    h: None,
                    labels: labels.clone(),
                    f: 1.0,
                    drop_name: false,
                }]
            } else {
                Vec::new()
            })
        })
        .collect())
}

fn absent_over_time(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let labels = Arc::new(absent_labels(arg(c, 0)?));
    let input = ev.eval_range(arg(c, 0)?)?;
    Ok(input
        .windows
        .iter()
        .map(|w| {
            let any = input
                .series
                .iter()
                .any(|s| !s.window(*w).is_empty() || !s.hist_window(*w).is_empty());
            Instant::Vector(if any {
                Vec::new()
            } else {
                vec![Sample {
                    h: None,
                    labels: labels.clone(),
                    f: 1.0,
                    drop_name: false,
                }]
            })
        })
        .collect())
}

pub(crate) fn anchored(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?s:{re})$"))
}

fn label_replace(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let dst = strings(ev, arg(c, 1)?)?;
    // Label values hold no marked bytes (as Go's JSON encoder shows them).
    let repl = shown(&strings(ev, arg(c, 2)?)?);
    let src = strings(ev, arg(c, 3)?)?;
    let re_s = strings(ev, arg(c, 4)?)?;
    let re = anchored(&re_s).map_err(|_| {
        exec(format!(
            "invalid regular expression in label_replace(): {re_s}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return Err(exec(format!(
            "invalid destination label name in label_replace(): {}",
            shown(&dst)
        )));
    }
    let out: Vec<Instant> = vectors(ev, arg(c, 0)?)?
        .into_iter()
        .map(|v| {
            Instant::Vector(
                v.into_iter()
                    .map(|s| replace_label(s, &re, &repl, &src, &dst))
                    .collect(),
            )
        })
        .collect();
    Ok(out)
}

/// `label_replace` on one sample: `dst` becomes `repl` expanded with the captures of
/// `re` on the value of `src`; the sample is unchanged when `re` does not match.
pub(crate) fn replace_label(
    s: Sample,
    re: &regex::Regex,
    repl: &str,
    src: &str,
    dst: &str,
) -> Sample {
    let value = s.labels.get(src).unwrap_or("");
    let Some(caps) = re.captures(value) else {
        return s;
    };
    let mut res = String::new();
    caps.expand(repl, &mut res);
    let labels = if res.is_empty() {
        remove(&s.labels, &[dst.to_string()])
    } else {
        with_label(&s.labels, dst, &res)
    };
    Sample {
        labels: Arc::new(labels),
        f: s.f,
        h: s.h,
        drop_name: if dst == METRIC_NAME {
            false
        } else {
            s.drop_name
        },
    }
}

fn label_join(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let dst = strings(ev, arg(c, 1)?)?;
    let sep = shown(&strings(ev, arg(c, 2)?)?);
    let mut srcs = Vec::new();
    for i in 3..c.args.args.len() {
        srcs.push(strings(ev, arg(c, i)?)?);
    }
    if !valid_label_name(&dst) {
        return Err(exec(format!(
            "invalid destination label name in label_join(): {}",
            shown(&dst)
        )));
    }
    Ok(vectors(ev, arg(c, 0)?)?
        .into_iter()
        .map(|v| {
            Instant::Vector(
                v.into_iter()
                    .map(|s| {
                        let joined = srcs
                            .iter()
                            .map(|n| s.labels.get(n).unwrap_or(""))
                            .collect::<Vec<_>>()
                            .join(&sep);
                        let labels = if joined.is_empty() {
                            remove(&s.labels, std::slice::from_ref(&dst))
                        } else {
                            with_label(&s.labels, &dst, &joined)
                        };
                        Sample {
                            labels: Arc::new(labels),
                            f: s.f,
                            h: s.h,
                            drop_name: if dst == METRIC_NAME {
                                false
                            } else {
                                s.drop_name
                            },
                        }
                    })
                    .collect(),
            )
        })
        .collect())
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(secs: f64, what: &str) -> f64 {
    if !secs.is_finite() {
        return f64::NAN;
    }
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let month_days = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    match what {
        "day_of_month" => d as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_year" => (month_days[..(m - 1) as usize].iter().sum::<i64>() + d as i64) as f64,
        "days_in_month" => month_days[(m - 1) as usize] as f64,
        "hour" => (sod / 3600) as f64,
        "minute" => ((sod % 3600) / 60) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

fn date_fn(ev: &Ev<'_>, c: &Call, name: &str) -> Result<Vec<Instant>, PromqlError> {
    if c.args.args.is_empty() {
        return Ok(ev
            .times
            .iter()
            .map(|t| {
                Instant::Vector(vec![Sample {
                    h: None,
                    labels: Arc::new(Labels::default()),
                    f: date_part(*t as f64 / 1000.0, name),
                    drop_name: false,
                }])
            })
            .collect());
    }
    let n = name.to_string();
    map_vector(ev, c, move |x, _| date_part(x, &n))
}
