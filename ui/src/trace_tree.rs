//! Laying out a trace for display: spans in tree order with their depth, a one-line
//! summary for result lists, the critical path, and which rows a collapsed span hides.

use crate::api::Trace;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One row of the waterfall: a span (index into `trace.spans`) at its depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub span: usize,
    pub depth: usize,
    /// The row of the parent span, `None` for a root.
    pub parent: Option<usize>,
    /// How many direct children the span has.
    pub children: usize,
}

/// The spans in depth-first order, children by start time. A span whose parent is not
/// in the trace is a root; spans caught in a reference cycle are shown as roots too, so
/// every span appears exactly once.
pub fn rows(trace: &Trace) -> Vec<Row> {
    let spans = &trace.spans;
    let by_id: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_id().and_then(|p| by_id.get(p)) {
            Some(&p) if p != i => kids[p].push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |a: &usize, b: &usize| (spans[*a].start_us, *a).cmp(&(spans[*b].start_us, *b));
    for k in &mut kids {
        k.sort_by(by_start);
    }
    roots.sort_by(by_start);
    let mut out: Vec<Row> = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    // Roots first; then any span still unseen, which sits in a cycle.
    let mut all: Vec<usize> = (0..spans.len()).collect();
    all.sort_by(by_start);
    for root in roots.into_iter().chain(all) {
        if seen[root] {
            continue;
        }
        let mut stack = vec![(root, 0usize, None)];
        while let Some((i, depth, parent)) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            let row = out.len();
            let children: Vec<usize> = kids[i].iter().copied().filter(|c| !seen[*c]).collect();
            out.push(Row {
                span: i,
                depth,
                parent,
                children: children.len(),
            });
            for c in children.into_iter().rev() {
                stack.push((c, depth + 1, Some(row)));
            }
        }
    }
    out
}

/// Start and end of the whole trace, in microseconds.
pub fn bounds(trace: &Trace) -> (i64, i64) {
    let start = trace.spans.iter().map(|s| s.start_us).min().unwrap_or(0);
    let end = trace
        .spans
        .iter()
        .map(|s| s.end_us())
        .max()
        .unwrap_or(start);
    (start, end.max(start))
}

/// What a result list shows of a trace.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub trace_id: String,
    /// `service: operation` of the root span.
    pub root: String,
    pub start_us: i64,
    pub duration_us: i64,
    pub spans: usize,
    pub errors: usize,
    /// Spans per service, by name.
    pub services: Vec<(String, usize)>,
}

pub fn summarize(trace: &Trace) -> Summary {
    let (start, end) = bounds(trace);
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let root = trace
        .spans
        .iter()
        .filter(|s| s.parent_id().is_none_or(|p| !ids.contains(p)))
        .min_by_key(|s| s.start_us)
        .or_else(|| trace.spans.iter().min_by_key(|s| s.start_us));
    let mut services: BTreeMap<String, usize> = BTreeMap::new();
    for s in &trace.spans {
        *services.entry(trace.service_of(s).to_string()).or_default() += 1;
    }
    Summary {
        trace_id: trace.trace_id.clone(),
        root: root
            .map(|s| format!("{}: {}", trace.service_of(s), s.operation))
            .unwrap_or_else(|| "(no spans)".into()),
        start_us: start,
        duration_us: end - start,
        spans: trace.spans.len(),
        errors: trace.spans.iter().filter(|s| s.is_error()).count(),
        services: services.into_iter().collect(),
    }
}

/// Which spans (by index into `trace.spans`) lie on the critical path: from the root
/// that ends last, repeatedly the child that finished last before the point where the
/// parent was still waiting, then the time before that child started, and so on.
pub fn critical_path(trace: &Trace, rows: &[Row]) -> Vec<bool> {
    let spans = &trace.spans;
    let mut on = vec![false; spans.len()];
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); rows.len()];
    for (r, row) in rows.iter().enumerate() {
        if let Some(p) = row.parent {
            kids[p].push(r);
        }
    }
    let Some(root) = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.parent.is_none())
        .max_by_key(|(_, r)| {
            (
                spans[r.span].end_us(),
                std::cmp::Reverse(spans[r.span].start_us),
            )
        })
        .map(|(i, _)| i)
    else {
        return on;
    };
    // (row, the time up to which it is on the path); the cursor only moves back in time.
    let mut work = vec![(root, spans[rows[root].span].end_us())];
    while let Some((r, cursor)) = work.pop() {
        on[rows[r].span] = true;
        let next = kids[r]
            .iter()
            .copied()
            .filter(|c| spans[rows[*c].span].start_us < cursor)
            .max_by_key(|c| {
                let s = &spans[rows[*c].span];
                (s.end_us().min(cursor), s.start_us)
            });
        if let Some(c) = next {
            let s = &spans[rows[c].span];
            work.push((r, s.start_us));
            work.push((c, s.end_us().min(cursor)));
        }
    }
    on
}

/// For each row, whether it is shown when the spans of `collapsed` rows fold away
/// their descendants.
pub fn visible(rows: &[Row], collapsed: &HashSet<usize>) -> Vec<bool> {
    let mut out = Vec::with_capacity(rows.len());
    let mut hide_below: Option<usize> = None;
    for (i, r) in rows.iter().enumerate() {
        if let Some(d) = hide_below {
            if r.depth > d {
                out.push(false);
                continue;
            }
            hide_below = None;
        }
        out.push(true);
        if collapsed.contains(&i) {
            hide_below = Some(r.depth);
        }
    }
    out
}

/// A duration given in microseconds, in the largest fitting unit: `1.25s`, `35.2ms`, `870µs`.
pub fn format_us(us: i64) -> String {
    let us = us.max(0) as f64;
    if us >= 60_000_000.0 {
        let m = (us / 60_000_000.0).floor();
        format!("{m}m{:.0}s", (us - m * 60_000_000.0) / 1e6)
    } else if us >= 1_000_000.0 {
        format!("{}s", trim(us / 1e6))
    } else if us >= 1000.0 {
        format!("{}ms", trim(us / 1e3))
    } else {
        format!("{us}µs")
    }
}

/// Three significant digits, without trailing zeros.
fn trim(v: f64) -> String {
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Turns tags typed as logfmt (`http.status_code=500 error=true name="a b"`) into the
/// JSON object the Jaeger API takes; JSON is passed through after a check.
pub fn tags_json(input: &str) -> Result<String, String> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(String::new());
    }
    if input.starts_with('{') {
        return match serde_json::from_str::<BTreeMap<String, serde_json::Value>>(input) {
            Ok(_) => Ok(input.to_string()),
            Err(e) => Err(format!("tags: not a JSON object: {e}")),
        };
    }
    let mut map = BTreeMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!("tags: expected key=value, found {key:?}"));
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("tags: unterminated quote in the value of {key}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => v.push(c),
                        None => {
                            return Err(format!("tags: unterminated quote in the value of {key}"));
                        }
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect()
        };
        map.insert(key, value);
    }
    serde_json::to_string(&map).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Process, Reference, Span, Tag};

    fn span(id: &str, parent: Option<&str>, start: i64, dur: i64, process: &str) -> Span {
        Span {
            span_id: id.into(),
            operation: format!("op-{id}"),
            references: parent
                .map(|p| Reference {
                    ref_type: "CHILD_OF".into(),
                    trace_id: "t".into(),
                    span_id: p.into(),
                })
                .into_iter()
                .collect(),
            start_us: start,
            duration_us: dur,
            tags: Vec::new(),
            logs: Vec::new(),
            process_id: process.into(),
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        let proc = |s: &str| Process {
            service: s.into(),
            tags: Vec::new(),
        };
        Trace {
            trace_id: "t".into(),
            spans,
            processes: [
                ("p1".to_string(), proc("frontend")),
                ("p2".to_string(), proc("db")),
            ]
            .into(),
        }
    }

    fn order(t: &Trace, rows: &[Row]) -> Vec<(String, usize)> {
        rows.iter()
            .map(|r| (t.spans[r.span].span_id.clone(), r.depth))
            .collect()
    }

    #[test]
    fn spans_are_laid_out_depth_first_with_children_by_start_time() {
        // Given out of order; "x" has a parent that is not in the trace.
        let t = trace(vec![
            span("c2", Some("root"), 50, 10, "p2"),
            span("g", Some("c1"), 15, 5, "p2"),
            span("root", None, 0, 100, "p1"),
            span("c1", Some("root"), 10, 30, "p1"),
            span("x", Some("missing"), 5, 1, "p1"),
        ]);
        let rows = rows(&t);
        let want: Vec<(String, usize)> = [("root", 0), ("c1", 1), ("g", 2), ("c2", 1), ("x", 0)]
            .iter()
            .map(|(s, d)| (s.to_string(), *d))
            .collect();
        assert_eq!(order(&t, &rows), want);
        assert_eq!(rows[0].children, 2);
        assert_eq!(rows[2].parent, Some(1));
        assert_eq!(rows[4].parent, None);
        assert_eq!(bounds(&t), (0, 100));
    }

    #[test]
    fn a_reference_cycle_still_shows_every_span_once() {
        let t = trace(vec![
            span("a", Some("b"), 0, 10, "p1"),
            span("b", Some("a"), 1, 5, "p1"),
            span("self", Some("self"), 2, 1, "p1"),
        ]);
        let rows = rows(&t);
        let mut ids: Vec<String> = order(&t, &rows).into_iter().map(|(s, _)| s).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "self"]);
    }

    #[test]
    fn the_critical_path_follows_the_last_finishing_children() {
        // root 0..100 waits on c1 (10..40) then c2 (50..95); c3 (20..30) runs beside c1.
        let t = trace(vec![
            span("root", None, 0, 100, "p1"),
            span("c1", Some("root"), 10, 30, "p1"),
            span("c3", Some("root"), 20, 10, "p2"),
            span("c2", Some("root"), 50, 45, "p2"),
            span("g", Some("c2"), 60, 20, "p2"),
        ]);
        let rows = rows(&t);
        let on = critical_path(&t, &rows);
        let on: Vec<&str> = t
            .spans
            .iter()
            .zip(&on)
            .filter(|(_, on)| **on)
            .map(|(s, _)| s.span_id.as_str())
            .collect();
        assert_eq!(on, ["root", "c1", "c2", "g"]);
    }

    #[test]
    fn collapsing_a_span_hides_its_descendants_only() {
        let t = trace(vec![
            span("root", None, 0, 100, "p1"),
            span("c1", Some("root"), 10, 30, "p1"),
            span("g", Some("c1"), 15, 5, "p2"),
            span("c2", Some("root"), 50, 10, "p2"),
        ]);
        let rows = rows(&t);
        assert_eq!(
            visible(&rows, &HashSet::from([1])),
            [true, true, false, true]
        );
        assert_eq!(
            visible(&rows, &HashSet::from([0])),
            [true, false, false, false]
        );
        assert_eq!(visible(&rows, &HashSet::new()), [true; 4]);
    }

    #[test]
    fn summaries_name_the_root_and_count_errors_per_trace() {
        let mut failed = span("c", Some("r"), 5, 10, "p2");
        failed.tags.push(Tag {
            key: "otel.status_code".into(),
            value: "ERROR".into(),
        });
        let t = trace(vec![span("r", None, 1, 50, "p1"), failed]);
        let s = summarize(&t);
        assert_eq!(s.root, "frontend: op-r");
        assert_eq!(
            (s.start_us, s.duration_us, s.spans, s.errors),
            (1, 50, 2, 1)
        );
        assert_eq!(
            s.services,
            [("db".to_string(), 1), ("frontend".to_string(), 1)]
        );
    }

    #[test]
    fn durations_use_the_largest_fitting_unit() {
        assert_eq!(format_us(870), "870µs");
        assert_eq!(format_us(35_200), "35.2ms");
        assert_eq!(format_us(1_250_000), "1.25s");
        assert_eq!(format_us(125_000), "125ms");
        assert_eq!(format_us(2_000), "2ms");
        assert_eq!(format_us(90_000_000), "1m30s");
    }

    #[test]
    fn logfmt_tags_become_the_json_the_api_takes() {
        assert_eq!(
            tags_json(r#"http.status_code=500 name="a \"b\"" error=true"#).as_deref(),
            Ok(r#"{"error":"true","http.status_code":"500","name":"a \"b\""}"#)
        );
        assert_eq!(tags_json("  ").as_deref(), Ok(""));
        assert_eq!(tags_json(r#"{"a":"1"}"#).as_deref(), Ok(r#"{"a":"1"}"#));
        assert!(tags_json("{nope").is_err());
        assert!(tags_json("novalue").is_err());
        assert!(tags_json("a=\"open").is_err());
    }
}
