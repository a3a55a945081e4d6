//! Extended range selectors: the `anchored` and `smoothed` modifiers
//! (`increase(m[5m] anchored)`, `rate(m[5m] smoothed)`, `m smoothed`).
//!
//! - `anchored`: a window also takes the newest sample at or before its start (within
//!   the lookback delta) as its first value; `rate`, `increase` and `delta` are the
//!   difference between that anchor and the last sample (with counter resets for the
//!   first two), without extrapolation; `changes` and `resets` count from the anchor.
//! - `smoothed`: the values at the window's start and end are interpolated linearly
//!   between the samples around them (looking up to the lookback delta past the end);
//!   an instant selector is interpolated at the step's time.
//!
//! `promql-parser` does not know the modifiers. Before parsing, each is taken out of the
//! query text and written into its selector as a label matcher that every series
//! passes, `__signalbox_modifier__!="anchored"`; storage never sees that matcher, and
//! evaluation reads the modifier from it. Native histograms are interpolated and
//! subtracted as whole histograms.

use std::sync::Arc;

use promql_parser::parser::{Expr, VectorSelector};
use signalbox_storage::{Histogram, ResetHint};

use super::error::{PromqlError, exec};
use super::eval::Ev;
use super::hist_functions::{Outcome, combine, range_outcome};
use super::histogram;
use super::position::{Kind, Rewritten, Token, ends_expression, splice, tokens};
use super::types::{Instant, METRIC_NAME, RangeInput, RangeSeries, Sample};

/// The label name of the matcher that carries a modifier through the parser.
pub(crate) const MARKER: &str = "__signalbox_modifier__";

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Modifier {
    Anchored,
    Smoothed,
}

impl Modifier {
    fn word(self) -> &'static str {
        match self {
            Modifier::Anchored => "anchored",
            Modifier::Smoothed => "smoothed",
        }
    }

    fn from_word(w: &str) -> Option<Modifier> {
        if w.eq_ignore_ascii_case("anchored") {
            Some(Modifier::Anchored)
        } else if w.eq_ignore_ascii_case("smoothed") {
            Some(Modifier::Smoothed)
        } else {
            None
        }
    }

    /// The functions a range with this modifier may be given to.
    fn functions(self) -> &'static [&'static str] {
        match self {
            Modifier::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            Modifier::Smoothed => &["delta", "increase", "rate"],
        }
    }
}

/// The modifier of a selector, if it has one.
pub(crate) fn of(vs: &VectorSelector) -> Option<Modifier> {
    vs.matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten())
        .find(|m| m.name == MARKER)
        .and_then(|m| Modifier::from_word(&m.value))
}

/// The modifier of a range argument (a range selector, possibly in parentheses).
pub(crate) fn of_range(e: &Expr) -> Option<Modifier> {
    match e {
        Expr::Paren(p) => of_range(&p.expr),
        Expr::MatrixSelector(ms) => of(&ms.vs),
        _ => None,
    }
}

/// Refuses a function that does not take ranges with the modifier of `arg`.
pub(crate) fn check_function(name: &str, arg: &Expr) -> Result<(), PromqlError> {
    match of_range(arg) {
        Some(m) if !m.functions().contains(&name) => Err(exec(format!(
            "{} modifier can only be used with: {} - not with {name}",
            m.word(),
            m.functions().join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The query with each modifier moved into its selector as a marker matcher.
pub(crate) fn mark(query: &str) -> Result<Rewritten<'_>, PromqlError> {
    let toks = tokens(query);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut marked: Vec<(usize, Modifier)> = Vec::new();
    // Tokens read as modifiers (a word of the same spelling may be a name).
    let mut modifiers: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Some(m) = (t.kind == Kind::Ident)
            .then(|| Modifier::from_word(t.text))
            .flatten()
        else {
            continue;
        };
        // Only after an expression is the word a modifier; elsewhere it is a name.
        if i == 0 || !ends_expression(&toks, i - 1) {
            continue;
        }
        modifiers.push(i);
        let (at, text) = insertion(query, &toks, &modifiers, i - 1, m)?;
        match marked.iter().find(|(p, _)| *p == at) {
            Some((_, other)) if *other != m => {
                return Err(PromqlError::Parse(
                    "anchored and smoothed modifiers cannot be used together".into(),
                ));
            }
            Some(_) => {}
            None => {
                marked.push((at, m));
                edits.push((at, at, text));
            }
        }
        edits.push((t.start, t.start + t.text.len(), String::new()));
    }
    edits.sort_by_key(|e| (e.0, e.1));
    Ok(splice(query, edits))
}

/// Where the marker of the modifier after token `k` goes, and its text: into the
/// selector that `offset`, `@` and a range follow.
fn insertion(
    query: &str,
    toks: &[Token<'_>],
    modifiers: &[usize],
    mut k: usize,
    m: Modifier,
) -> Result<(usize, String), PromqlError> {
    let not_implemented = || PromqlError::Parse(format!("{} modifier not implemented", m.word()));
    let is = |j: Option<usize>, s: &str| j.is_some_and(|j| toks[j].text.eq_ignore_ascii_case(s));
    loop {
        let back = |n: usize| k.checked_sub(n);
        let sign = |j: Option<usize>| j.is_some_and(|j| matches!(toks[j].text, "+" | "-"));
        match toks[k].kind {
            Kind::Number => {
                let before = if sign(back(1)) { back(2) } else { back(1) };
                if is(before, "offset") || is(before, "@") {
                    k = before
                        .and_then(|j| j.checked_sub(1))
                        .ok_or_else(not_implemented)?;
                    continue;
                }
            }
            Kind::Punct
                if toks[k].text == ")"
                    && is(back(1), "(")
                    && (is(back(2), "start") || is(back(2), "end"))
                    && is(back(3), "@") =>
            {
                k = back(4).ok_or_else(not_implemented)?;
                continue;
            }
            Kind::Ident if modifiers.contains(&k) => {
                k = back(1).ok_or_else(not_implemented)?;
                continue;
            }
            _ => {}
        }
        break;
    }
    if toks[k].text == "]" {
        let open = (0..k)
            .rev()
            .find(|&j| toks[j].text == "[")
            .ok_or_else(not_implemented)?;
        if query[toks[open].start..toks[k].start].contains(':') {
            return Err(PromqlError::Parse(format!(
                "{} modifier is not supported for subqueries",
                m.word()
            )));
        }
        k = open.checked_sub(1).ok_or_else(not_implemented)?;
    }
    let matcher = format!("{MARKER}!=\"{}\"", m.word());
    let t = &toks[k];
    match t.kind {
        Kind::Punct if t.text == "}" => {
            let empty = k > 0 && matches!(toks[k - 1].text, "{" | ",");
            let text = if empty {
                matcher
            } else {
                format!(",{matcher}")
            };
            Ok((t.start, text))
        }
        Kind::Ident if ends_expression(toks, k) => {
            Ok((t.start + t.text.len(), format!("{{{matcher}}}")))
        }
        _ => Err(not_implemented()),
    }
}

/// Points in `(start, end]`.
fn within<T>(points: &[(i64, T)], start: i64, end: i64) -> &[(i64, T)] {
    let lo = points.partition_point(|p| p.0 <= start);
    let hi = points.partition_point(|p| p.0 <= end);
    if lo >= hi { &[] } else { &points[lo..hi] }
}

/// The value at `t` on the line between two samples; a counter that dropped between
/// them is taken to have restarted from zero.
fn interpolate(p1: (i64, f64), p2: (i64, f64), t: i64, counter: bool) -> f64 {
    let y1 = if counter && p2.1 < p1.1 { 0.0 } else { p1.1 };
    y1 + (p2.1 - y1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// The points a window `(start, end]` reads with the modifier: from a lookback delta
/// before its start, and for `smoothed` to a lookback delta after its end.
fn extended_window<T>(
    points: &[(i64, T)],
    (start, end): (i64, i64),
    m: Modifier,
    lookback: i64,
) -> &[(i64, T)] {
    let end = if m == Modifier::Smoothed {
        end + lookback
    } else {
        end
    };
    within(points, start - lookback, end)
}

/// Indexes of the sample whose value stands for the window's start (the newest at or
/// before it, else the first) and for its end (for `smoothed`, the first at or after
/// it, else the last). `None` when the window has no sample of its own.
fn bounds<T>(f: &[(i64, T)], (start, end): (i64, i64), m: Modifier) -> Option<(usize, usize)> {
    let last = f.len().checked_sub(1)?;
    let a = f[..last].iter().rposition(|p| p.0 <= start).unwrap_or(0);
    let b = match m {
        Modifier::Anchored => last,
        Modifier::Smoothed => f[..last].iter().position(|p| p.0 >= end).unwrap_or(last),
    };
    (f[b].0 > start && f[a].0 <= end).then_some((a, b))
}

/// The values at the window's start and end.
fn edges(
    f: &[(i64, f64)],
    w: (i64, i64),
    m: Modifier,
    a: usize,
    b: usize,
    counter: bool,
) -> (f64, f64) {
    match m {
        Modifier::Anchored => (f[a].1, f[b].1),
        Modifier::Smoothed => {
            let left = if f[a].0 < w.0 {
                interpolate(f[a], f[a + 1], w.0, counter)
            } else {
                f[a].1
            };
            let right = if b > 0 && f[b].0 > w.1 {
                interpolate(f[b - 1], f[b], w.1, counter)
            } else {
                f[b].1
            };
            (left, right)
        }
    }
}

/// `rate`, `increase` and `delta` of one window.
fn rate(f: &[(i64, f64)], w: (i64, i64), m: Modifier, name: &str) -> Option<f64> {
    let counter = name != "delta";
    let (a, b) = bounds(f, w, m)?;
    let (left, right) = edges(f, w, m, a, b, counter);
    let mut result = right - left;
    if counter {
        // Counter resets between the edges: the samples strictly inside the window.
        let from = if f[a].0 <= w.0 { a + 1 } else { a };
        let to = if f[b].0 >= w.1 { b } else { b + 1 };
        let mut prev = left;
        for p in f.get(from..to).unwrap_or(&[]) {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
        if right < prev {
            result += prev;
        }
    }
    if name == "rate" {
        result /= (w.1 - w.0) as f64 / 1000.0;
    }
    Some(result)
}

/// `changes` and `resets` of one anchored window: counted from the anchor on.
fn changes(f: &[(i64, f64)], w: (i64, i64), resets: bool) -> Option<f64> {
    if f.last()?.0 <= w.0 {
        return None;
    }
    let a = f.iter().rposition(|p| p.0 <= w.0).unwrap_or(0);
    let pairs = f[a..].windows(2);
    Some(if resets {
        pairs.filter(|x| x[1].1 < x[0].1).count() as f64
    } else {
        pairs
            .filter(|x| !(x[1].1 == x[0].1 || (x[1].1.is_nan() && x[0].1.is_nan())))
            .count() as f64
    })
}

/// A range function over a range with a modifier.
pub(crate) fn range_fn(
    ev: &Ev<'_>,
    name: &str,
    m: Modifier,
    input: &RangeInput,
) -> Result<Vec<Instant>, PromqlError> {
    let lookback = ev.opts.lookback.as_millis() as i64;
    let mut out = Vec::with_capacity(input.windows.len());
    for (step, &w) in input.windows.iter().enumerate() {
        if step % 64 == 0 {
            ev.check_time()?;
        }
        let mut v = Vec::new();
        for (i, s) in input.series.iter().enumerate() {
            if i % 1024 == 1023 {
                ev.check_time()?;
            }
            let f = extended_window(&s.points, w, m, lookback);
            let h = extended_window(&s.hists, w, m, lookback);
            let r = match name {
                "changes" | "resets" if h.is_empty() => {
                    changes(f, w, name == "resets").map(|x| (x, None))
                }
                "changes" | "resets" => mixed_changes(ev, name, s, f, h, w),
                _ if h.is_empty() => rate(f, w, m, name).map(|x| (x, None)),
                _ if !f.is_empty() => {
                    ev.warn(histogram::mixed_floats_warning(metric_name(s)));
                    None
                }
                _ => histogram_rate(ev, s, h, w, m, name).map(|h| (0.0, Some(Arc::new(h)))),
            };
            if let Some((f, h)) = r {
                v.push(Sample {
                    labels: s.labels.clone(),
                    f,
                    h,
                    drop_name: true,
                });
            }
        }
        out.push(Instant::Vector(v));
    }
    Ok(out)
}

fn metric_name(s: &RangeSeries) -> &str {
    s.labels.get(METRIC_NAME).unwrap_or("")
}

/// `changes`/`resets` of an anchored window holding histograms (and maybe floats): from
/// the newest sample of either kind at or before the window's start (a float wins a
/// tie), older samples of both kinds left out.
fn mixed_changes(
    ev: &Ev<'_>,
    name: &str,
    s: &RangeSeries,
    f: &[(i64, f64)],
    h: &[(i64, Arc<Histogram>)],
    w: (i64, i64),
) -> Option<(f64, Option<Arc<Histogram>>)> {
    let after = |t: i64| t > w.0;
    if !f.last().is_some_and(|p| after(p.0)) && !h.last().is_some_and(|p| after(p.0)) {
        return None;
    }
    let fi = f.iter().rposition(|p| p.0 <= w.0);
    let hi = h.iter().rposition(|p| p.0 <= w.0);
    let f_after = f.partition_point(|p| p.0 <= w.0);
    let h_after = h.partition_point(|p| p.0 <= w.0);
    let (fs, hs) = match (fi, hi) {
        (None, None) => (0, 0),
        (Some(i), Some(j)) if f[i].0 < h[j].0 => (f_after, j),
        (Some(i), _) => (i, h_after),
        (None, Some(j)) => (f_after, j),
    };
    // Extended ranges do not read start times (as in Prometheus).
    match range_outcome(ev, name, s, &f[fs..], &h[hs..], (&[], &[]), w) {
        Outcome::Value(x, _) => Some((x, None)),
        _ => None,
    }
}

/// The histogram at `t` on the line between two samples; a counter that was reset
/// between them is taken to have restarted from zero.
fn interpolate_histograms(
    ev: &Ev<'_>,
    s: &RangeSeries,
    p1: &(i64, Arc<Histogram>),
    p2: &(i64, Arc<Histogram>),
    t: i64,
    counter: bool,
) -> Option<Histogram> {
    if t == p1.0 {
        return Some((*p1.1).clone());
    }
    if t == p2.0 {
        return Some((*p2.1).clone());
    }
    if p1.1.uses_custom_buckets() != p2.1.uses_custom_buckets() {
        ev.warn(histogram::mixed_schemas_warning(metric_name(s)));
        return None;
    }
    let frac = (t - p1.0) as f64 / (p2.0 - p1.0) as f64;
    if counter && histogram::is_reset(&p1.1, &p2.1) {
        return Some(histogram::scale(&p2.1, frac));
    }
    let diff = combine(ev, s, &p2.1, &p1.1, true)?;
    combine(ev, s, &p1.1, &histogram::scale(&diff, frac), false)
}

/// `rate`, `increase` and `delta` of one window of histograms.
fn histogram_rate(
    ev: &Ev<'_>,
    s: &RangeSeries,
    h: &[(i64, Arc<Histogram>)],
    w: (i64, i64),
    m: Modifier,
    name: &str,
) -> Option<Histogram> {
    let counter = name != "delta";
    let (a, b) = bounds(h, w, m)?;
    let (left, right) = match m {
        Modifier::Anchored => ((*h[a].1).clone(), (*h[b].1).clone()),
        Modifier::Smoothed => {
            let left = if h[a].0 < w.0 {
                interpolate_histograms(ev, s, &h[a], &h[a + 1], w.0, counter)?
            } else {
                (*h[a].1).clone()
            };
            let right = if b > 0 && h[b].0 > w.1 {
                interpolate_histograms(ev, s, &h[b - 1], &h[b], w.1, counter)?
            } else {
                (*h[b].1).clone()
            };
            (left, right)
        }
    };
    let gauge = |h: &Histogram| h.hint == ResetHint::Gauge;
    if counter && h.iter().any(|(_, h)| gauge(h)) {
        ev.warn(histogram::not_counter_warning(metric_name(s)));
    }
    let gauge_edges = gauge(&left) && gauge(&right);
    if !counter && !gauge_edges {
        ev.warn(histogram::not_gauge_warning(metric_name(s)));
    }
    let mut d = combine(ev, s, &right, &left, true)?;
    if counter {
        let mut from = if h[a].0 <= w.0 { a + 1 } else { a };
        let to = if h[b].0 >= w.1 { b } else { b + 1 };
        let mut prev: &Histogram = &left;
        // A reset right after an interpolated start is already in the start's value;
        // when the end is interpolated on the same segment, there is nothing to add.
        let mut corrected = true;
        if m == Modifier::Smoothed && h[a].0 < w.0 && histogram::is_reset(&h[a].1, &h[a + 1].1) {
            prev = &h[a + 1].1;
            from = a + 2;
            corrected = a + 1 != b;
        }
        if corrected {
            for p in h.get(from..to).unwrap_or(&[]) {
                if histogram::is_reset(prev, &p.1) {
                    d = combine(ev, s, &d, prev, false)?;
                }
                prev = &p.1;
            }
            if histogram::is_reset(prev, &right) {
                d = combine(ev, s, &d, prev, false)?;
            }
        }
    }
    if name == "rate" {
        d = histogram::divide(&d, (w.1 - w.0) as f64 / 1000.0);
    }
    d.hint = ResetHint::Gauge;
    Some(d)
}

/// The points of a range selector with a modifier, as a query for the range itself
/// returns them: the values at the window's edges as points at its start and end, and
/// the samples between.
pub(crate) fn range_points(
    s: &RangeSeries,
    w: (i64, i64),
    m: Modifier,
    lookback: i64,
) -> Result<Vec<(i64, f64)>, PromqlError> {
    if !extended_window(&s.hists, w, m, lookback).is_empty() {
        return Err(PromqlError::Execution(format!(
            "{} modifier is not supported with histograms",
            m.word()
        )));
    }
    let f = extended_window(&s.points, w, m, lookback);
    let Some(last) = f.len().checked_sub(1) else {
        return Ok(Vec::new());
    };
    let a = f[..last].iter().rposition(|p| p.0 <= w.0).unwrap_or(0);
    let b = match m {
        Modifier::Anchored => last,
        Modifier::Smoothed => f[..last].iter().position(|p| p.0 >= w.1).unwrap_or(last),
    };
    if f[b].0 <= w.0 {
        return Ok(Vec::new());
    }
    let (left, right) = edges(f, w, m, a, b, false);
    let from = if f[a].0 <= w.0 { a + 1 } else { a };
    let to = if f[b].0 >= w.1 { b } else { b + 1 };
    let mut out = vec![(w.0, left)];
    out.extend_from_slice(f.get(from..to).unwrap_or(&[]));
    out.push((w.1, right));
    Ok(out)
}

/// An instant selector with `smoothed` at every step: the value at the step's time,
/// interpolated between the samples around it, or the newest one when none follows.
pub(crate) fn smoothed_select(
    ev: &Ev<'_>,
    vs: &VectorSelector,
) -> Result<Vec<Vec<Sample>>, PromqlError> {
    let lookback = ev.opts.lookback.as_millis() as i64;
    let off = super::fetch::offset_ms(&vs.offset);
    let at = super::fetch::at_ms(&vs.at, ev.query_start, ev.query_end);
    let series = ev.range_series_of(vs);
    let mut out = Vec::with_capacity(ev.times.len());
    for (step, &ts) in ev.times.iter().enumerate() {
        if step % 64 == 0 {
            ev.check_time()?;
        }
        let t = at.unwrap_or(ts) - off;
        let mut v = Vec::new();
        for s in &series {
            let f = within(&s.points, t - lookback, t + lookback);
            let h = within(&s.hists, t - lookback, t + lookback);
            let value = match (f.is_empty(), h.is_empty()) {
                (false, true) => {
                    value_at(f, t, |a, b| Some(interpolate(*a, *b, t, false))).map(|x| (x, None))
                }
                (true, false) => value_at(h, t, |a, b| {
                    interpolate_histograms(ev, s, a, b, t, true).map(Arc::new)
                })
                .map(|h| (0.0, Some(h))),
                (false, false) => {
                    ev.warn(histogram::mixed_floats_warning(metric_name(s)));
                    None
                }
                (true, true) => None,
            };
            if let Some((f, h)) = value {
                v.push(Sample {
                    labels: s.labels.clone(),
                    f,
                    h,
                    drop_name: false,
                });
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// The value at `t` from points around it: the sample at `t`, `between` the samples
/// before and after it, or the newest before it when none follows; `None` when none
/// precedes it (or `between` gives none).
fn value_at<T: Clone>(
    f: &[(i64, T)],
    t: i64,
    between: impl FnOnce(&(i64, T), &(i64, T)) -> Option<T>,
) -> Option<T> {
    let i = f.partition_point(|p| p.0 < t);
    match (i.checked_sub(1).map(|j| &f[j]), f.get(i)) {
        (_, Some(next)) if next.0 == t => Some(next.1.clone()),
        (Some(prev), Some(next)) => between(prev, next),
        (Some(prev), None) => Some(prev.1.clone()),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn marked(q: &str) -> String {
        mark(q).unwrap().text.into_owned()
    }

    #[test]
    fn a_modifier_moves_into_its_selector() {
        assert_eq!(
            marked("increase(m[5m] anchored)"),
            "increase(m{__signalbox_modifier__!=\"anchored\"}[5m] )"
        );
        assert_eq!(
            marked("rate(m{a=\"b\"}[5m] offset 1m smoothed)"),
            "rate(m{a=\"b\",__signalbox_modifier__!=\"smoothed\"}[5m] offset 1m )"
        );
        assert_eq!(
            marked("m @ start() SMOOTHED + 1"),
            "m{__signalbox_modifier__!=\"smoothed\"} @ start()  + 1"
        );
        assert_eq!(
            marked("m offset -100 smoothed"),
            "m{__signalbox_modifier__!=\"smoothed\"} offset -100 "
        );
        assert_eq!(
            marked("job:x{a=\"b\",}[1m] anchored"),
            "job:x{a=\"b\",__signalbox_modifier__!=\"anchored\"}[1m] "
        );
    }

    #[test]
    fn the_words_stay_names_where_no_expression_ends_before_them() {
        for q in [
            "anchored",
            "anchored{job=\"x\"}",
            "sum by (smoothed) (x)",
            "x and anchored",
            "x / smoothed",
            "x{anchored=\"1\"}",
            "x / on(job) anchored",
            "x * ignoring(a) group_left(b) smoothed",
            "x + fill(0) anchored",
        ] {
            assert!(matches!(mark(q).unwrap().text, Cow::Borrowed(_)), "{q}");
        }
    }

    #[test]
    fn a_name_spelled_like_a_modifier_can_take_one() {
        assert_eq!(
            marked("anchored smoothed"),
            "anchored{__signalbox_modifier__!=\"smoothed\"} "
        );
        assert_eq!(
            marked("anchored anchored"),
            "anchored{__signalbox_modifier__!=\"anchored\"} "
        );
    }

    #[test]
    fn modifiers_where_prometheus_refuses_them() {
        let e = |q: &str| mark(q).unwrap_err().to_string();
        assert_eq!(
            e("m[5m] anchored smoothed"),
            "anchored and smoothed modifiers cannot be used together"
        );
        assert_eq!(
            e("rate(m[5m])[1h:1m] anchored"),
            "anchored modifier is not supported for subqueries"
        );
        assert_eq!(
            e("rate(m[5m]) smoothed"),
            "smoothed modifier not implemented"
        );
    }

    #[test]
    fn anchored_increase_counts_resets_from_the_anchor() {
        // 5, 8, 11, 3, 6, 9 at one-minute steps; the range (0, 5m].
        let f: Vec<(i64, f64)> = [5.0, 8.0, 11.0, 3.0, 6.0, 9.0]
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 60_000, *v))
            .collect();
        let w = (0, 300_000);
        let win = extended_window(&f, w, Modifier::Anchored, 300_000);
        assert_eq!(rate(win, w, Modifier::Anchored, "increase"), Some(15.0));
        let w = (120_000, 180_000);
        let win = extended_window(&f, w, Modifier::Anchored, 300_000);
        assert_eq!(rate(win, w, Modifier::Anchored, "delta"), Some(-8.0));
    }

    #[test]
    fn smoothed_increase_interpolates_across_resets() {
        // 9, 8, 5, 4 at one-minute steps; the range (15s, 135s].
        let f = [(0, 9.0), (60_000, 8.0), (120_000, 5.0), (180_000, 4.0)];
        let w = (15_000, 135_000);
        let win = extended_window(&f, w, Modifier::Smoothed, 300_000);
        assert_eq!(rate(win, w, Modifier::Smoothed, "increase"), Some(12.0));
    }

    #[test]
    fn a_range_with_a_modifier_gets_points_at_its_edges() {
        let s = RangeSeries {
            labels: Arc::default(),
            points: (0..10).map(|i| (i * 10_000, (i + 1) as f64)).collect(),
            hists: Vec::new(),
            starts: Default::default(),
            drop_name: false,
        };
        let pts = |w, m| range_points(&s, w, m, 300_000).unwrap();
        assert_eq!(
            pts((-5_000, 5_000), Modifier::Anchored),
            vec![(-5_000, 1.0), (0, 1.0), (5_000, 1.0)]
        );
        assert_eq!(
            pts((0, 10_000), Modifier::Anchored),
            vec![(0, 1.0), (10_000, 2.0)]
        );
        assert_eq!(
            pts((5_000, 15_000), Modifier::Smoothed),
            vec![(5_000, 1.5), (10_000, 2.0), (15_000, 2.5)]
        );
    }
}
