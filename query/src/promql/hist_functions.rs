//! The functions' handling of native histogram samples: the `histogram_*` functions,
//! and what the range functions do with a window that holds histograms.

use std::sync::Arc;

use signalbox_storage::{Histogram, ResetHint};

use super::functions::{extrapolation_factor, vectors};
use super::histogram;
use super::starts;
use super::types::{Instant, METRIC_NAME, RangeSeries, Sample};
use super::{error::PromqlError, eval::Ev};
use promql_parser::parser::Expr;

/// Applies `f` to every native histogram sample of the vector `e` (float samples are
/// left out), dropping the metric name.
pub(crate) fn map_histograms(
    ev: &Ev<'_>,
    e: &Expr,
    f: impl Fn(&Histogram, usize) -> f64,
) -> Result<Vec<Instant>, PromqlError> {
    Ok(vectors(ev, e)?
        .into_iter()
        .enumerate()
        .map(|(step, v)| {
            Instant::Vector(
                v.into_iter()
                    .filter_map(|s| {
                        let h = s.h.as_ref()?;
                        Some(Sample {
                            f: f(h, step),
                            h: None,
                            drop_name: true,
                            ..s
                        })
                    })
                    .collect(),
            )
        })
        .collect())
}

fn metric_name(s: &RangeSeries) -> &str {
    s.labels.get(METRIC_NAME).unwrap_or("")
}

/// What a range function gives for one series and window.
pub(crate) enum Outcome {
    /// A float or histogram result.
    Value(f64, Option<Arc<Histogram>>),
    /// No result for this series.
    Nothing,
    /// Computed from the float points alone, as without histograms.
    Floats,
}

/// A range function over a window holding native histograms (`hists` non-empty) and
/// maybe floats too; `(fsts, hsts)` are the start times of `floats` and `hists` (each
/// empty when none is known).
pub(crate) fn range_outcome(
    ev: &Ev<'_>,
    name: &str,
    s: &RangeSeries,
    floats: &[(i64, f64)],
    hists: &[(i64, Arc<Histogram>)],
    (fsts, hsts): (&[i64], &[i64]),
    w: (i64, i64),
) -> Outcome {
    let mixed = !floats.is_empty();
    let warn_mixed = || ev.warn(histogram::mixed_floats_warning(metric_name(s)));
    let warn_not_gauge = || ev.warn(histogram::not_gauge_warning(metric_name(s)));
    let warn_not_counter = || ev.warn(histogram::not_counter_warning(metric_name(s)));
    let gauge = |h: &Histogram| h.hint == ResetHint::Gauge;
    let hist = |h: Histogram| Outcome::Value(0.0, Some(Arc::new(h)));
    // A rate or a difference is a gauge.
    let change = |h: Histogram| {
        hist(Histogram {
            hint: ResetHint::Gauge,
            ..h
        })
    };
    match name {
        "rate" | "increase" | "delta" => {
            if mixed {
                warn_mixed();
                return Outcome::Nothing;
            }
            let counter = name != "delta";
            if counter && hists.iter().any(|(_, h)| gauge(h)) {
                warn_not_counter();
            }
            let sts = if counter { hsts } else { &[] };
            if starts::overlap(sts, hists.iter().map(|p| p.0)) {
                ev.warn(starts::overlap_warning(metric_name(s)));
            }
            match rate(ev, s, hists, sts, w, counter, name == "rate") {
                Some(h) => {
                    let gauge_edges = gauge(&hists[0].1) && gauge(&hists[hists.len() - 1].1);
                    if !counter && !gauge_edges {
                        warn_not_gauge();
                    }
                    hist(h)
                }
                None => Outcome::Nothing,
            }
        }
        "irate" | "idelta" => {
            // The last two samples, whichever kind they are.
            let mut tail: Vec<(i64, Option<&Arc<Histogram>>)> = floats
                .iter()
                .rev()
                .take(2)
                .map(|p| (p.0, None))
                .chain(hists.iter().rev().take(2).map(|p| (p.0, Some(&p.1))))
                .collect();
            tail.sort_by_key(|p| p.0);
            let n = tail.len();
            if n < 2 {
                return Outcome::Nothing;
            }
            match (tail[n - 2], tail[n - 1]) {
                ((_, None), (_, None)) => Outcome::Floats,
                ((pt, Some(prev)), (lt, Some(last))) => {
                    let rate = name == "irate";
                    // The last two histograms' start times.
                    let sts = hsts.get(hists.len().saturating_sub(2)..).unwrap_or(&[]);
                    if rate && (gauge(prev) || gauge(last)) {
                        warn_not_counter();
                    }
                    let both_gauges = gauge(prev) && gauge(last);
                    if !rate && !both_gauges {
                        warn_not_gauge();
                    }
                    let restarted = starts::reset_between(sts, 0, pt, lt);
                    let d = if rate && (restarted || histogram::is_reset(prev, last)) {
                        (**last).clone()
                    } else {
                        let Some(d) = combine(ev, s, last, prev, true) else {
                            return Outcome::Nothing;
                        };
                        d
                    };
                    if rate {
                        change(histogram::scale(&d, 1000.0 / (lt - pt) as f64))
                    } else {
                        change(d)
                    }
                }
                _ => {
                    warn_mixed();
                    Outcome::Nothing
                }
            }
        }
        "count_over_time" => Outcome::Value((floats.len() + hists.len()) as f64, None),
        "present_over_time" => Outcome::Value(1.0, None),
        "last_over_time" | "ts_of_last_over_time" => {
            let (ht, h) = &hists[hists.len() - 1];
            match floats.last() {
                Some(f) if f.0 > *ht => Outcome::Floats,
                _ if name == "last_over_time" => Outcome::Value(0.0, Some(h.clone())),
                _ => Outcome::Value(*ht as f64 / 1000.0, None),
            }
        }
        "first_over_time" | "ts_of_first_over_time" => {
            let (ht, h) = &hists[0];
            match floats.first() {
                Some(f) if f.0 < *ht => Outcome::Floats,
                _ if name == "first_over_time" => Outcome::Value(0.0, Some(h.clone())),
                _ => Outcome::Value(*ht as f64 / 1000.0, None),
            }
        }
        "sum_over_time" | "avg_over_time" => {
            if mixed {
                warn_mixed();
                return Outcome::Nothing;
            }
            let hs: Vec<&Histogram> = hists.iter().map(|(_, h)| h.as_ref()).collect();
            let mut notes = Vec::new();
            let sum =
                histogram::sum_or_mean(&hs, name == "avg_over_time", metric_name(s), &mut notes);
            ev.annotate(notes);
            match sum {
                Some(acc) => hist(acc),
                None => Outcome::Nothing,
            }
        }
        "changes" | "resets" => {
            let st = |sts: &[i64], i: usize| sts.get(i).copied().unwrap_or(0);
            let mut all: Vec<(i64, Option<f64>, Option<&Histogram>, i64)> = floats
                .iter()
                .enumerate()
                .map(|(i, (t, f))| (*t, Some(*f), None, st(fsts, i)))
                .chain(
                    hists
                        .iter()
                        .enumerate()
                        .map(|(i, (t, h))| (*t, None, Some(h.as_ref()), st(hsts, i))),
                )
                .collect();
            all.sort_by_key(|p| p.0);
            let sts: Vec<i64> = if name == "resets" && !(fsts.is_empty() && hsts.is_empty()) {
                all.iter().map(|p| p.3).collect()
            } else {
                Vec::new()
            };
            let n = all
                .windows(2)
                .enumerate()
                .filter(|(i, p)| match ((p[0].1, p[0].2), (p[1].1, p[1].2)) {
                    _ if starts::reset_between(&sts, *i, p[0].0, p[1].0) => true,
                    ((Some(a), _), (Some(b), _)) => {
                        if name == "resets" {
                            b < a
                        } else {
                            !(a == b || a.is_nan() && b.is_nan())
                        }
                    }
                    ((_, Some(a)), (_, Some(b))) => {
                        if name == "resets" {
                            histogram::is_reset(a, b)
                        } else {
                            !histogram::equals(a, b)
                        }
                    }
                    // A switch between a float and a histogram.
                    _ => true,
                })
                .count();
            Outcome::Value(n as f64, None)
        }
        _ => {
            // Functions of float values only: histograms are ignored.
            if mixed {
                ev.info(format!(
                    "PromQL info: ignored histograms in a range containing both floats and histograms for metric name {:?}",
                    metric_name(s)
                ));
                Outcome::Floats
            } else {
                Outcome::Nothing
            }
        }
    }
}

/// `a + b` (or `a - b`) of two histograms of series `s`, with the annotations of
/// reconciled custom bounds; `None` (with a warning) for exponential against custom.
pub(crate) fn combine(
    ev: &Ev<'_>,
    s: &RangeSeries,
    a: &Histogram,
    b: &Histogram,
    sub: bool,
) -> Option<Histogram> {
    let Some((h, reconciled)) = histogram::combine(a, b, sub) else {
        ev.warn(histogram::mixed_schemas_warning(metric_name(s)));
        return None;
    };
    if reconciled {
        ev.info(histogram::reconciled_info(if sub {
            "subtraction"
        } else {
            "addition"
        }));
    }
    Some(h)
}

/// `rate`, `increase` (`counter`) and `delta` over histogram points, extrapolated like
/// floats, with start times `sts` as `functions::extrapolated` reads them. `None` with
/// fewer than two points (unless a start time gives the first a zero to count from).
fn rate(
    ev: &Ev<'_>,
    s: &RangeSeries,
    points: &[(i64, Arc<Histogram>)],
    sts: &[i64],
    w: (i64, i64),
    counter: bool,
    per_second: bool,
) -> Option<Histogram> {
    let zero_at = if counter {
        starts::zero_point(sts, w.0, points.first()?.0)
    } else {
        None
    };
    if points.len() < 2 {
        // The sample itself, scaled (its hint kept, as Prometheus does).
        let (t, first) = points.first()?;
        let at = zero_at?;
        let factor = extrapolation_factor((*t, *t), 1, w, None, per_second, Some(at));
        return Some(histogram::scale(first, factor));
    }
    let first = &points[0].1;
    let last = &points[points.len() - 1].1;
    let empty;
    let mut prev: &Histogram = first;
    let reset_at = |i: usize, prev: &Histogram, cur: &Histogram| {
        starts::reset_between(sts, i, points[i].0, points[i + 1].0)
            || histogram::is_reset(prev, cur)
    };
    // A reset right after the first sample: the first sample does not count.
    if counter && reset_at(0, first, &points[1].1) {
        empty = Histogram {
            schema: points[1].1.schema,
            custom_values: points[1].1.custom_values.clone(),
            ..Histogram::default()
        };
        prev = &empty;
    }
    // Exponential and custom buckets cannot be subtracted from one another.
    let custom = prev.uses_custom_buckets();
    let middle = if counter {
        &points[1..points.len() - 1]
    } else {
        &[]
    };
    if last.uses_custom_buckets() != custom
        || middle
            .iter()
            .any(|(_, h)| h.uses_custom_buckets() != custom)
    {
        ev.warn(histogram::mixed_schemas_warning(metric_name(s)));
        return None;
    }
    let schema = middle
        .iter()
        .map(|(_, h)| h.schema)
        .fold(last.schema.min(prev.schema), i32::min);
    let mut d = combine(ev, s, &histogram::to_schema(last, schema), prev, true)?;
    if counter {
        for (i, (_, curr)) in points[1..].iter().enumerate() {
            if reset_at(i, prev, curr) {
                d = combine(ev, s, &d, prev, false)?;
            }
            prev = curr;
        }
    }
    let factor = extrapolation_factor(
        (points[0].0, points[points.len() - 1].0),
        points.len(),
        w,
        counter.then_some((first.count, d.count)),
        per_second,
        zero_at,
    );
    if zero_at.is_some() {
        d = combine(ev, s, &d, first, false)?;
    }
    // A rate or a difference is a gauge.
    d.hint = ResetHint::Gauge;
    Some(histogram::scale(&d, factor))
}
