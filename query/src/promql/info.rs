//! `info(v, {selector})`: adds to the series of `v` the data labels of info series
//! (`target_info` unless the selector names others), joined on the identifying labels
//! `instance` and `job`. This is how OpenTelemetry resource attributes, which arrive as
//! `target_info`, are attached to a metric at query time.
//!
//! At each step, an info series contributes its newest sample within the lookback
//! window, at the time the first argument's `@` and `offset` select. Of several info
//! series of one metric name with the same identifying labels, the one with the newest
//! sample wins. Labels the series already has are kept; with a selector, only the labels
//! it names are added, and a series no info series matches is kept only if every data
//! matcher accepts the empty value.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use promql_parser::parser::{Call, Expr};
use rustc_hash::FxHashMap;
use signalbox_storage::{Labels, MatchOp, Matcher};

use super::error::{PromqlError, exec};
use super::eval::Ev;
use super::fetch::{self, Ctx, Need, at_ms, offset_ms};
use super::functions::arg;
use super::position::{Kind, Rewritten, splice, tokens};
use super::types::{Instant, METRIC_NAME, Sample};

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The second argument: its `__name__` matchers and its data-label matchers.
struct Selector {
    names: Vec<Matcher>,
    data: Vec<Matcher>,
}

fn selector(c: &Call) -> Result<Selector, PromqlError> {
    let Some(e) = c.args.args.get(1) else {
        return Ok(Selector {
            names: Vec::new(),
            data: Vec::new(),
        });
    };
    let Expr::VectorSelector(vs) = e.as_ref() else {
        return Err(exec(
            "the second argument of info must be a label selector such as {__name__=\"build_info\"}",
        ));
    };
    if !vs.matchers.or_matchers.is_empty() {
        return Err(exec(
            "the label selector of info cannot combine matchers with \"or\"",
        ));
    }
    let (names, data) = fetch::storage_matchers(&vs.matchers, &vs.name)?
        .into_iter()
        .partition(|m| m.name == METRIC_NAME);
    Ok(Selector { names, data })
}

/// `promql-parser` refuses a selector whose matchers all accept the empty value, which
/// Prometheus allows as `info`'s second argument (`info(m, {data=~".*"})`). Such a
/// selector gets the matcher `__signalbox_modifier__=~".+"`, which satisfies the parser
/// and is never used (`fetch::storage_matchers` leaves that name out).
pub(crate) fn mark(query: &str) -> Rewritten<'_> {
    let toks = tokens(query);
    let mut edits = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Ident
            || !t.text.eq_ignore_ascii_case("info")
            || toks.get(i + 1).is_none_or(|n| n.text != "(")
        {
            continue;
        }
        // The first comma at the call's own depth, then a selector without a name.
        let mut depth = 0i32;
        let mut comma = None;
        for (j, u) in toks.iter().enumerate().skip(i + 1) {
            match u.text {
                "(" | "[" => depth += 1,
                ")" | "]" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                "," if depth == 1 => {
                    comma = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = comma
            .map(|c| c + 1)
            .filter(|&o| toks.get(o).is_some_and(|t| t.text == "{"))
        else {
            continue;
        };
        let Some(close) = (open + 1..toks.len()).find(|&j| toks[j].text == "}") else {
            continue;
        };
        let matcher = format!("{}=~\".+\"", super::extended::MARKER);
        let text = if matches!(toks[close - 1].text, "{" | ",") {
            matcher
        } else {
            format!(",{matcher}")
        };
        edits.push((toks[close].start, toks[close].start, text));
    }
    splice(query, edits)
}

/// The `__name__` matchers info series are selected with: the given ones when one of
/// them is positive; only negative ones narrow `.+_info`; none means `target_info`.
fn effective_names(names: &[Matcher]) -> Result<Vec<Matcher>, PromqlError> {
    if names
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
    {
        return Ok(names.to_vec());
    }
    if names.is_empty() {
        return Ok(vec![Matcher::eq(METRIC_NAME, TARGET_INFO)]);
    }
    let mut out = vec![
        Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+_info")
            .map_err(|e| exec(e.to_string()))?,
    ];
    out.extend(names.iter().cloned());
    Ok(out)
}

/// The fixed time (`@`) and the offset at which info series are looked up, from the
/// first selector of the first argument: its own `@` and offset, then, while no `@` is
/// set, the offsets (and `@`) of the subqueries around it.
fn anchor(e: &Expr, query_start: i64, query_end: i64) -> (Option<i64>, i64) {
    fn walk(e: &Expr, qs: i64, qe: i64) -> Option<(Option<i64>, i64)> {
        match e {
            Expr::VectorSelector(vs) => Some((at_ms(&vs.at, qs, qe), offset_ms(&vs.offset))),
            Expr::MatrixSelector(ms) => Some((at_ms(&ms.vs.at, qs, qe), offset_ms(&ms.vs.offset))),
            Expr::Subquery(sq) => walk(&sq.expr, qs, qe).map(|(at, off)| match at {
                Some(_) => (at, off),
                None => (at_ms(&sq.at, qs, qe), off + offset_ms(&sq.offset)),
            }),
            Expr::Paren(p) => walk(&p.expr, qs, qe),
            Expr::Unary(u) => walk(&u.expr, qs, qe),
            Expr::Binary(b) => walk(&b.lhs, qs, qe).or_else(|| walk(&b.rhs, qs, qe)),
            Expr::Aggregate(a) => {
                walk(&a.expr, qs, qe).or_else(|| a.param.as_ref().and_then(|p| walk(p, qs, qe)))
            }
            Expr::Call(c) => c.args.args.iter().find_map(|a| walk(a, qs, qe)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
        }
    }
    walk(e, query_start, query_end).unwrap_or((None, 0))
}

/// The key the info series of a call are fetched under.
pub(crate) fn key(c: &Call) -> usize {
    c as *const Call as usize
}

/// What the info series of a call evaluated at `[s, e]` need from storage: every series
/// the selector admits (the identifying labels are matched during evaluation).
pub(crate) fn need(c: &Call, s: i64, e: i64, cx: &Ctx) -> Result<Need, PromqlError> {
    let sel = selector(c)?;
    let (at, off) = anchor(arg(c, 0)?, cx.query_start, cx.query_end);
    let (s, e) = at.map_or((s, e), |t| (t, t));
    let mut matchers = sel.data;
    matchers.extend(effective_names(&sel.names)?);
    Ok(Need {
        key: key(c),
        matchers,
        or_matchers: Vec::new(),
        start: s - off - cx.lookback,
        end: e - off,
    })
}

/// A label set shared across steps (held, so that its address stands for it) and what
/// it became with the labels of the chosen info series.
type Enriched = (Arc<Labels>, Arc<Labels>);

/// The label values a series is joined on, for one info metric name.
type Signature<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

fn signature<'a>(name: &'a str, l: &'a Labels) -> Signature<'a> {
    (name, l.get(IDENTIFYING[0]), l.get(IDENTIFYING[1]))
}

pub(crate) fn eval(ev: &Ev<'_>, c: &Call) -> Result<Vec<Instant>, PromqlError> {
    let sel = selector(c)?;
    let first = arg(c, 0)?;
    let (at, off) = anchor(first, ev.query_start, ev.query_end);
    let base = ev.eval(first)?;
    let names = effective_names(&sel.names)?;
    // Info series themselves are passed through as they are (matched once per name).
    let mut by_name: HashMap<String, bool> = HashMap::new();
    let mut is_info = |l: &Labels| {
        let name = l.get(METRIC_NAME).unwrap_or("");
        if let Some(known) = by_name.get(name) {
            return *known;
        }
        let yes = names.iter().all(|m| m.matches(name));
        by_name.insert(name.to_string(), yes);
        yes
    };
    // Info series are joined only if their identifying labels are among the values
    // the other series have.
    let mut wanted: HashMap<&str, HashSet<&str>> = HashMap::new();
    for step in &base {
        let Instant::Vector(samples) = step else {
            return Err(exec("info expects an instant vector as its first argument"));
        };
        for s in samples.iter().filter(|s| !is_info(&s.labels)) {
            for id in IDENTIFYING {
                if let Some(v) = s.labels.get(id) {
                    wanted.entry(id).or_default().insert(v);
                }
            }
        }
    }
    let candidates: Vec<&signalbox_storage::Series> = if wanted.is_empty() {
        Vec::new()
    } else {
        ev.data
            .get(&key(c))
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter(|s| {
                wanted
                    .iter()
                    .all(|(id, vals)| s.labels.get(id).is_some_and(|v| vals.contains(v)))
            })
            .collect()
    };
    let info = ev.newest_samples(&candidates, at, off)?;
    let info_names: Vec<&str> = {
        let set: std::collections::BTreeSet<&str> = candidates
            .iter()
            .map(|s| s.labels.get(METRIC_NAME).unwrap_or(""))
            .collect();
        set.into_iter().collect()
    };
    let data_names: HashSet<&str> = sel.data.iter().map(|m| m.name.as_str()).collect();
    let keep_unmatched = sel.data.iter().all(Matcher::matches_empty);
    // Enriched label sets by base label set and chosen info series, shared across steps.
    let mut made: FxHashMap<(usize, Vec<usize>), Enriched> = FxHashMap::default();
    let mut out = Vec::with_capacity(base.len());
    for (step, infos) in base.iter().zip(&info) {
        let Instant::Vector(samples) = step else {
            continue;
        };
        if samples.is_empty() {
            out.push(Instant::Vector(Vec::new()));
            continue;
        }
        // The newest info sample per signature.
        let mut by_sig: HashMap<Signature<'_>, (&Sample, i64)> = HashMap::new();
        for (s, t) in infos {
            if s.h.is_some() {
                return Err(exec(format!(
                    "this should be an info metric, with float samples: {}",
                    s.labels
                )));
            }
            let name = s.labels.get(METRIC_NAME).unwrap_or("");
            match by_sig.get(&signature(name, &s.labels)) {
                Some((old, ot)) if *ot == *t => {
                    return Err(exec(format!(
                        "found duplicate series for info metric: existing {} @ {ot}, new {} @ {t}",
                        old.labels, s.labels
                    )));
                }
                Some((_, ot)) if *ot > *t => {}
                _ => {
                    by_sig.insert(signature(name, &s.labels), (s, *t));
                }
            }
        }
        let mut v = Vec::with_capacity(samples.len());
        for s in samples {
            if is_info(&s.labels) {
                v.push(s.clone());
                continue;
            }
            let mut added: BTreeMap<&str, &str> = BTreeMap::new();
            let mut chosen = Vec::new();
            for name in &info_names {
                let Some((is, _)) = by_sig.get(&signature(name, &s.labels)) else {
                    continue;
                };
                for l in is.labels.iter() {
                    if l.name == METRIC_NAME
                        || (!data_names.is_empty() && !data_names.contains(l.name.as_str()))
                    {
                        continue;
                    }
                    if added.get(l.name.as_str()).is_some_and(|v| *v != l.value) {
                        return Err(exec(format!("conflicting label: {}", l.name)));
                    }
                    if s.labels.get(&l.name).is_none() {
                        added.insert(&l.name, &l.value);
                    }
                }
                chosen.push(Arc::as_ptr(&is.labels) as usize);
            }
            if chosen.is_empty() && !keep_unmatched {
                continue;
            }
            if added.is_empty() {
                v.push(s.clone());
                continue;
            }
            let enrich = || {
                Arc::new(Labels::from_pairs(
                    s.labels
                        .iter()
                        .map(|l| (l.name.as_str(), l.value.as_str()))
                        .chain(added.iter().map(|(n, v)| (*n, *v))),
                ))
            };
            // A label set shared across steps is enriched once; the entry holds it so
            // that its address stands for it while the map lives.
            let labels = if Arc::strong_count(&s.labels) > 1 {
                made.entry((Arc::as_ptr(&s.labels) as usize, chosen))
                    .or_insert_with(|| (s.labels.clone(), enrich()))
                    .1
                    .clone()
            } else {
                enrich()
            };
            v.push(Sample {
                labels,
                ..s.clone()
            });
        }
        out.push(Instant::Vector(v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_arg(q: &str) -> Expr {
        match promql_parser::parser::parse(q).unwrap() {
            Expr::Call(c) => *c.args.args[0].clone(),
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn info_series_are_looked_up_where_the_first_selector_points() {
        let at = |q: &str| anchor(&first_arg(q), 1_000_000, 2_000_000);
        assert_eq!(at("info(metric)"), (None, 0));
        assert_eq!(at("info(metric offset 1m)"), (None, 60_000));
        assert_eq!(at("info(metric @ 60 offset 1m)"), (Some(60_000), 60_000));
        assert_eq!(at("info(metric @ end())"), (Some(2_000_000), 0));
        // Subquery offsets add up until an @ anchors the time.
        assert_eq!(
            at("info(last_over_time(metric[5m:1m] offset 6m))"),
            (None, 360_000)
        );
        assert_eq!(
            at("info(last_over_time((metric offset 1m)[10m:1m] @ 180))"),
            (Some(180_000), 60_000)
        );
        assert_eq!(
            at("info(last_over_time((metric @ 30)[10m:1m] @ 180 offset 2m))"),
            (Some(30_000), 0)
        );
        // The first selector in evaluation order: left before right, the aggregated
        // expression before the parameter.
        assert_eq!(at("info(a offset 1m + b offset 2m)"), (None, 60_000));
        assert_eq!(
            at("info(topk(scalar(k offset 4m), x offset 3m))"),
            (None, 180_000)
        );
        assert_eq!(at("info(vector(1))"), (None, 0));
    }

    #[test]
    fn a_selector_of_empty_matching_matchers_gets_a_marker_only_as_second_argument() {
        let m = |q: &str| mark(q).text.into_owned();
        assert_eq!(
            m("info(m, {data=~\".*\"})"),
            "info(m, {data=~\".*\",__signalbox_modifier__=~\".+\"})"
        );
        assert_eq!(
            m("sum(INFO(rate(m[5m]), {}))"),
            "sum(INFO(rate(m[5m]), {__signalbox_modifier__=~\".+\"}))"
        );
        for q in [
            "info(m)",
            "info(m, build_info{a=\"b\"})",
            "x{a=~\".*\"}",
            "info",
        ] {
            assert_eq!(m(q), q);
        }
    }

    #[test]
    fn name_matchers_default_to_target_info_and_narrow_info_metrics() {
        let ops = |ms: &[Matcher]| {
            ms.iter()
                .map(|m| format!("{}{:?}{}", m.name, m.op, m.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ops(&effective_names(&[]).unwrap()),
            ["__name__Equaltarget_info"]
        );
        let neg = Matcher::new(MatchOp::RegexNoMatch, METRIC_NAME, "build.*").unwrap();
        assert_eq!(
            ops(&effective_names(std::slice::from_ref(&neg)).unwrap()),
            ["__name__RegexMatch.+_info", "__name__RegexNoMatchbuild.*"]
        );
        let pos = Matcher::eq(METRIC_NAME, "build_info");
        assert_eq!(
            ops(&effective_names(&[pos, neg]).unwrap()),
            ["__name__Equalbuild_info", "__name__RegexNoMatchbuild.*"]
        );
    }
}
