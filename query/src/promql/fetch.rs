//! Before evaluation: every selector's samples over the whole time range the query can
//! make it look at, fetched from storage once.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use promql_parser::label::{MatchOp as PMatchOp, Matchers};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use signalbox_storage::{
    Histogram, MatchOp, Matcher, MetricsReader, ResetHint, Series, is_stale_nan,
};

use super::error::PromqlError;
use super::extended::{self, Modifier};

/// Samples per selector, keyed by the selector's address in the (unmoved) AST.
pub(crate) type Fetched = HashMap<usize, Vec<Series>>;

pub(crate) fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// The fixed evaluation time an `@` modifier sets, if any.
pub(crate) fn at_ms(at: &Option<AtModifier>, query_start: i64, query_end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(t)) => Some(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }),
    }
}

pub(crate) fn storage_matchers(
    m: &Matchers,
    name: &Option<String>,
) -> Result<Vec<Matcher>, PromqlError> {
    let mut out = Vec::with_capacity(m.matchers.len() + 1);
    if let Some(n) = name
        && !m.matchers.iter().any(|x| x.name == "__name__")
    {
        out.push(Matcher::eq("__name__", n.clone()));
    }
    // The marker of an extended range modifier selects nothing.
    for x in m
        .matchers
        .iter()
        .filter(|x| x.name != super::extended::MARKER)
    {
        let (op, value) = match &x.op {
            PMatchOp::Equal => (MatchOp::Equal, x.value.clone()),
            PMatchOp::NotEqual => (MatchOp::NotEqual, x.value.clone()),
            PMatchOp::Re(_) => (MatchOp::RegexMatch, x.value.clone()),
            PMatchOp::NotRe(_) => (MatchOp::RegexNoMatch, x.value.clone()),
        };
        out.push(
            Matcher::new(op, x.name.clone(), value)
                .map_err(|e| PromqlError::Parse(e.to_string()))?,
        );
    }
    Ok(out)
}

/// The storage matchers of each `or` group of a selector (none without `or`).
pub(crate) fn or_groups(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, PromqlError> {
    vs.matchers
        .or_matchers
        .iter()
        .map(|group| storage_matchers(&Matchers::new(group.clone()), &vs.name))
        .collect()
}

/// One selector to fetch: matchers and the inclusive time range.
pub(crate) struct Need {
    pub(crate) key: usize,
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) or_matchers: Vec<Vec<Matcher>>,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

pub(crate) struct Ctx {
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    pub(crate) lookback: i64,
}

/// Walks the expression as evaluation will, with `[s, e]` the evaluation times of the
/// current level, and records what each selector needs.
pub(crate) fn collect(
    expr: &Expr,
    s: i64,
    e: i64,
    cx: &Ctx,
    out: &mut Vec<Need>,
) -> Result<(), PromqlError> {
    match expr {
        Expr::VectorSelector(vs) => {
            // `smoothed` interpolates towards the next sample, up to a lookback ahead.
            let ahead = match extended::of(vs) {
                Some(Modifier::Smoothed) => cx.lookback,
                _ => 0,
            };
            need(vs, (s, e), (cx.lookback, ahead), cx, out)?
        }
        Expr::MatrixSelector(ms) => {
            // Extended ranges also read a lookback before the window (the anchor, or
            // the sample to interpolate from) and, smoothed, a lookback after it.
            let range = ms.range.as_millis() as i64;
            let (before, ahead) = match extended::of(&ms.vs) {
                None => (range, 0),
                Some(Modifier::Anchored) => (range + cx.lookback, 0),
                Some(Modifier::Smoothed) => (range + cx.lookback, cx.lookback),
            };
            need(&ms.vs, (s, e), (before, ahead), cx, out)?
        }
        Expr::Subquery(sq) => {
            let off = offset_ms(&sq.offset);
            let (s2, e2) = match at_ms(&sq.at, cx.query_start, cx.query_end) {
                Some(t) => (t, t),
                None => (s, e),
            };
            let range = sq.range.as_millis() as i64;
            collect(&sq.expr, s2 - off - range, e2 - off, cx, out)?;
        }
        Expr::Aggregate(a) => {
            collect(&a.expr, s, e, cx, out)?;
            if let Some(p) = &a.param {
                collect(p, s, e, cx, out)?;
            }
        }
        Expr::Unary(u) => collect(&u.expr, s, e, cx, out)?,
        Expr::Binary(b) => {
            collect(&b.lhs, s, e, cx, out)?;
            collect(&b.rhs, s, e, cx, out)?;
        }
        Expr::Paren(p) => collect(&p.expr, s, e, cx, out)?,
        // The second argument of info() is a label selector for the info series, not
        // a selector of its own; the info series are fetched under the call's key.
        Expr::Call(c) if c.func.name == "info" => {
            if let Some(a) = c.args.args.first() {
                collect(a, s, e, cx, out)?;
            }
            out.push(super::info::need(c, s, e, cx)?);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                collect(a, s, e, cx, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

/// Records the samples selector `vs` needs when evaluated over `[s, e]`: from `before`
/// ahead of the first evaluation time to `ahead` past the last (after `offset`/`@`).
fn need(
    vs: &VectorSelector,
    (s, e): (i64, i64),
    (before, ahead): (i64, i64),
    cx: &Ctx,
    out: &mut Vec<Need>,
) -> Result<(), PromqlError> {
    let off = offset_ms(&vs.offset);
    let (s, e) = match at_ms(&vs.at, cx.query_start, cx.query_end) {
        Some(t) => (t, t),
        None => (s, e),
    };
    out.push(Need {
        key: key(vs),
        matchers: storage_matchers(&vs.matchers, &vs.name)?,
        or_matchers: or_groups(vs)?,
        start: s - off - before,
        end: e - off + ahead,
    });
    Ok(())
}

/// Where a selector stands for Prometheus' histogram-statistics decoder.
#[derive(Clone, Copy, PartialEq)]
enum Stats {
    No,
    /// Below `histogram_count`, `histogram_sum` or `histogram_avg`.
    Yes,
    /// Below a subquery, a function of the buckets, or a trim operator: never.
    Never,
}

/// The selectors Prometheus reads through its histogram-statistics decoder (below
/// `histogram_count`, `histogram_sum` or `histogram_avg`, with no subquery, bucket
/// function or trim on the way). That decoder finds counter resets as it reads: a
/// sample with an `Unknown` hint gets `Reset` or `NotReset` against the histogram read
/// before it. The hints then reach aggregations and their collision warnings.
pub(crate) fn detect_resets(expr: &Expr, data: &mut Fetched) {
    fn walk(e: &Expr, st: Stats, data: &mut Fetched) {
        match e {
            Expr::VectorSelector(vs) => mark(vs, st, data),
            Expr::MatrixSelector(ms) => mark(&ms.vs, st, data),
            Expr::Subquery(sq) => walk(&sq.expr, Stats::Never, data),
            Expr::Aggregate(a) => {
                walk(&a.expr, st, data);
                if let Some(p) = &a.param {
                    walk(p, st, data);
                }
            }
            Expr::Unary(u) => walk(&u.expr, st, data),
            Expr::Binary(b) => {
                let st = if super::binary::is_trim(&b.op.to_string()) {
                    Stats::Never
                } else {
                    st
                };
                walk(&b.lhs, st, data);
                walk(&b.rhs, st, data);
            }
            Expr::Paren(p) => walk(&p.expr, st, data),
            Expr::Call(c) => {
                let st = match (c.func.name, st) {
                    (_, Stats::Never) => Stats::Never,
                    ("histogram_count" | "histogram_sum" | "histogram_avg", _) => Stats::Yes,
                    ("histogram_quantile" | "histogram_quantiles" | "histogram_fraction", _) => {
                        Stats::Never
                    }
                    _ => st,
                };
                for a in &c.args.args {
                    walk(a, st, data);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    fn mark(vs: &VectorSelector, st: Stats, data: &mut Fetched) {
        if st != Stats::Yes {
            return;
        }
        for s in data.get_mut(&key(vs)).into_iter().flatten() {
            let mut prev: Option<usize> = None;
            for i in 0..s.histograms.len() {
                let (before, rest) = s.histograms.split_at_mut(i);
                let h: &mut Histogram = &mut rest[0].h;
                if is_stale_nan(h.sum) {
                    continue;
                }
                if let Some(p) = prev
                    && h.hint == ResetHint::Unknown
                {
                    h.hint = if super::histogram::is_reset(&before[p].h, h) {
                        ResetHint::Reset
                    } else {
                        ResetHint::NotReset
                    };
                }
                prev = Some(i);
            }
        }
    }
    walk(expr, Stats::No, data);
}

/// Fetches every need; a selector seen twice (same address) gets the union of its ranges.
pub(crate) async fn fetch(
    reader: &dyn MetricsReader,
    needs: Vec<Need>,
) -> Result<Fetched, PromqlError> {
    let mut merged: HashMap<usize, Need> = HashMap::new();
    for n in needs {
        match merged.get_mut(&n.key) {
            Some(m) => {
                m.start = m.start.min(n.start);
                m.end = m.end.max(n.end);
            }
            None => {
                merged.insert(n.key, n);
            }
        }
    }
    let mut out = Fetched::new();
    for (k, n) in merged {
        let mut series = Vec::new();
        if n.or_matchers.is_empty() {
            series = reader
                .select_series(&n.matchers, n.start, n.end)
                .await
                .map_err(|e| PromqlError::Storage(e.to_string()))?;
        } else {
            let mut seen = std::collections::BTreeMap::new();
            for group in &n.or_matchers {
                for s in reader
                    .select_series(group, n.start, n.end)
                    .await
                    .map_err(|e| PromqlError::Storage(e.to_string()))?
                {
                    seen.entry(s.labels.clone()).or_insert(s);
                }
            }
            series.extend(seen.into_values());
        }
        out.insert(k, series);
    }
    Ok(out)
}
