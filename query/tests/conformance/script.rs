//! Parser for the Prometheus PromQL test-script format (the `.test` files of
//! `promql/promqltest/testdata`), following `FORMAT.md` sections 1–3: commands
//! (`clear`, `load`, `load_with_nhcb`, `eval` and its legacy variants), `expect`
//! lines, series identifiers, value sequences and native histogram literals.
#![allow(unreachable_pub, dead_code)]

use std::fmt::Display;

pub use signalbox_query::promql::notation::{
    HistogramLit, Point, STALE_NAN_BITS, is_ws, parse_duration_ms, parse_start_offsets,
    parse_string_literal, parse_values, split_series_line,
};

/// `<series> <values>` as found in `load` bodies and expected results.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// Label pairs in the order written; a metric name before the braces (or a
    /// quoted name inside) becomes ("__name__", name).
    pub labels: Vec<(String, String)>,
    /// One entry per slot; None = omitted slot (`_`).
    pub values: Vec<Option<Point>>,
    /// From the `@st` line before it: per slot, start time minus sample time (ms).
    pub starts: Vec<Option<i64>>,
}

/// How an error / annotation message must look.
#[derive(Debug, Clone, PartialEq)]
pub enum MsgMatch {
    Any,
    Exact(String),
    Regex(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvalKind {
    Instant {
        at_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Empty,
    Scalar(f64),
    String(String),
    Series(Vec<SeriesLine>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eval {
    /// 1-based line number of the eval header in the file.
    pub line: usize,
    /// The PromQL text, original substring after the header tokens.
    pub expr: String,
    pub kind: EvalKind,
    /// `expect fail` / `eval_fail` (+ `expected_fail_message` / `expected_fail_regexp`).
    pub fail: Option<MsgMatch>,
    /// Each `expect warn ...` line; `eval_warn` adds `MsgMatch::Any`.
    pub warn: Vec<MsgMatch>,
    pub no_warn: bool,
    /// Each `expect info ...` line; `eval_info` adds `MsgMatch::Any`.
    pub info: Vec<MsgMatch>,
    pub no_info: bool,
    /// `expect ordered` / `eval_ordered`.
    pub ordered: bool,
    /// `expect range vector from A to B step C`, in ms.
    pub range_vector: Option<(i64, i64, i64)>,
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Clear,
    Load {
        line: usize,
        interval_ms: i64,
        with_nhcb: bool,
        series: Vec<SeriesLine>,
        start_timestamp_lines: usize,
    },
    Eval(Eval),
}

fn err_at(line: usize, msg: impl Display) -> String {
    format!("line {line}: {msg}")
}

/// Whitespace-separated tokens of `s` with their byte offsets.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !is_ws(b[i]) {
            i += 1;
        }
        out.push((start, &s[start..i]));
    }
    out
}

/// Splits off the first whitespace-separated word: (word, rest).
fn split_first_word(s: &str) -> (&str, &str) {
    match s.bytes().position(is_ws) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses a whole file. Errors name the 1-based line number.
pub fn parse(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') { "" } else { t }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = split_first_word(l).0.to_ascii_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (cmd, next) = parse_load(&lines, i)?;
            cmds.push(cmd);
            i = next;
        } else if word.starts_with("eval") {
            let (ev, next) = parse_eval(&lines, i)?;
            cmds.push(Command::Eval(ev));
            i = next;
        } else {
            return Err(err_at(i + 1, format!("invalid command {l:?}")));
        }
    }
    Ok(cmds)
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

fn parse_load(lines: &[&str], i: usize) -> Result<(Command, usize), String> {
    let header = lines[i];
    let ln = i + 1;
    let toks: Vec<&str> = header.split_ascii_whitespace().collect();
    let Some(first) = toks.first() else {
        return Err(err_at(ln, "empty load command"));
    };
    let with_nhcb = match first.to_ascii_lowercase().as_str() {
        "load" => false,
        "load_with_nhcb" => true,
        other => return Err(err_at(ln, format!("invalid load command {other:?}"))),
    };
    if toks.len() != 2 {
        return Err(err_at(
            ln,
            format!("expected `{first} <interval>`, got {header:?}"),
        ));
    }
    let interval_ms = parse_duration_ms(toks[1])
        .map_err(|e| err_at(ln, format!("invalid load interval: {e}")))?;
    let mut series = Vec::new();
    let mut start_timestamp_lines = 0;
    let mut pending_starts = None;
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let l = lines[j];
        let (labels, is_st, rest) = split_series_line(l).map_err(|e| err_at(j + 1, e))?;
        if is_st {
            start_timestamp_lines += 1;
            let offsets = parse_start_offsets(rest).map_err(|e| err_at(j + 1, e))?;
            pending_starts = Some((labels, offsets));
        } else {
            let values = parse_values(rest).map_err(|e| err_at(j + 1, e))?;
            // An `@st` line belongs to the sample line right after it, of the same series.
            let starts = match pending_starts.take() {
                Some((l, offsets)) if l == labels => offsets,
                Some(_) => return Err(err_at(j + 1, "`@st` line for another series")),
                None => Vec::new(),
            };
            series.push(SeriesLine {
                labels,
                values,
                starts,
            });
        }
        j += 1;
    }
    Ok((
        Command::Load {
            line: ln,
            interval_ms,
            with_nhcb,
            series,
            start_timestamp_lines,
        },
        j,
    ))
}

fn parse_eval(lines: &[&str], i: usize) -> Result<(Eval, usize), String> {
    let header = lines[i];
    let ln = i + 1;
    let toks = tokens(header);
    let word = toks
        .first()
        .map(|t| t.1.to_ascii_lowercase())
        .unwrap_or_default();
    let (hdr_fail, hdr_warn, hdr_info, hdr_ordered) = match word.as_str() {
        "eval" => (false, false, false, false),
        "eval_fail" => (true, false, false, false),
        "eval_warn" => (false, true, false, false),
        "eval_info" => (false, false, true, false),
        "eval_ordered" => (false, false, false, true),
        _ => return Err(err_at(ln, format!("invalid eval command {word:?}"))),
    };
    let tok = |k: usize| toks.get(k).map(|t| t.1).unwrap_or("");
    let kw = |k: usize, want: &str| tok(k).eq_ignore_ascii_case(want);
    let dur = |k: usize, what: &str| -> Result<i64, String> {
        parse_duration_ms(tok(k)).map_err(|e| err_at(ln, format!("invalid {what}: {e}")))
    };

    let (kind, expr_tok) = if kw(1, "instant") {
        if !kw(2, "at") {
            return Err(err_at(ln, "expected `eval instant at <time> <expr>`"));
        }
        let at_ms = dur(3, "evaluation time")?;
        (EvalKind::Instant { at_ms }, 4)
    } else if kw(1, "range") {
        if hdr_ordered {
            return Err(err_at(
                ln,
                "eval_ordered is not supported for range queries",
            ));
        }
        if !kw(2, "from") || !kw(4, "to") || !kw(6, "step") {
            return Err(err_at(
                ln,
                "expected `eval range from <start> to <end> step <step> <expr>`",
            ));
        }
        let start_ms = dur(3, "range start")?;
        let end_ms = dur(5, "range end")?;
        let step_ms = dur(7, "range step")?;
        if end_ms < start_ms {
            return Err(err_at(ln, "range end is before range start"));
        }
        if step_ms <= 0 {
            return Err(err_at(ln, "range step must be positive"));
        }
        (
            EvalKind::Range {
                start_ms,
                end_ms,
                step_ms,
            },
            8,
        )
    } else {
        return Err(err_at(
            ln,
            format!("expected `instant` or `range` after {word:?}"),
        ));
    };
    let Some(&(expr_start, _)) = toks.get(expr_tok) else {
        return Err(err_at(ln, "missing expression"));
    };
    let expr = header[expr_start..].to_string();

    let mut ev = Eval {
        line: ln,
        expr,
        kind,
        fail: if hdr_fail { Some(MsgMatch::Any) } else { None },
        warn: if hdr_warn {
            vec![MsgMatch::Any]
        } else {
            Vec::new()
        },
        no_warn: false,
        info: if hdr_info {
            vec![MsgMatch::Any]
        } else {
            Vec::new()
        },
        no_info: false,
        ordered: hdr_ordered,
        range_vector: None,
        expected: Expected::Empty,
    };
    let mut fail_from_line = false;
    let mut scalar: Option<f64> = None;
    let mut string: Option<String> = None;
    let mut series: Vec<SeriesLine> = Vec::new();
    let mut series_lines: Vec<usize> = Vec::new();

    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let l = lines[j];
        let bl = j + 1;
        j += 1;
        let (first, tail) = split_first_word(l);

        if first == "expect" {
            let (what, tail) = split_first_word(tail.trim_start());
            match what {
                "range" => {
                    let t: Vec<&str> = tail.split_ascii_whitespace().collect();
                    if t.len() != 7
                        || t[0] != "vector"
                        || t[1] != "from"
                        || t[3] != "to"
                        || t[5] != "step"
                    {
                        return Err(err_at(
                            bl,
                            "expected `expect range vector from <start> to <end> step <step>`",
                        ));
                    }
                    if matches!(ev.kind, EvalKind::Range { .. }) {
                        return Err(err_at(
                            bl,
                            "`expect range vector` is only valid for instant evals",
                        ));
                    }
                    if ev.range_vector.is_some() {
                        return Err(err_at(bl, "duplicate `expect range vector`"));
                    }
                    let d = |s: &str| parse_duration_ms(s).map_err(|e| err_at(bl, e));
                    let (s, e, st) = (d(t[2])?, d(t[4])?, d(t[6])?);
                    if e < s {
                        return Err(err_at(bl, "range vector end is before its start"));
                    }
                    if st <= 0 {
                        return Err(err_at(bl, "range vector step must be positive"));
                    }
                    ev.range_vector = Some((s, e, st));
                }
                "string" => {
                    if string.is_some() || !series.is_empty() {
                        return Err(err_at(
                            bl,
                            "`expect string` mixed with other expected results",
                        ));
                    }
                    let lit = tail.trim();
                    string = Some(parse_string_literal(lit).map_err(|e| err_at(bl, e))?);
                }
                "fail" | "warn" | "info" | "no_warn" | "no_info" | "ordered" => {
                    let m = parse_msg_match(tail).map_err(|e| err_at(bl, e))?;
                    let only_plain = |m: &MsgMatch| -> Result<(), String> {
                        if *m == MsgMatch::Any {
                            Ok(())
                        } else {
                            Err(err_at(bl, format!("`expect {what}` takes no message")))
                        }
                    };
                    match what {
                        "fail" => {
                            if fail_from_line {
                                return Err(err_at(bl, "more than one `expect fail` line"));
                            }
                            fail_from_line = true;
                            ev.fail = Some(m);
                        }
                        "warn" => {
                            if ev.no_warn {
                                return Err(err_at(
                                    bl,
                                    "`expect warn` together with `expect no_warn`",
                                ));
                            }
                            ev.warn.push(m);
                        }
                        "info" => {
                            if ev.no_info {
                                return Err(err_at(
                                    bl,
                                    "`expect info` together with `expect no_info`",
                                ));
                            }
                            ev.info.push(m);
                        }
                        "no_warn" => {
                            only_plain(&m)?;
                            if !ev.warn.is_empty() {
                                return Err(err_at(
                                    bl,
                                    "`expect no_warn` together with `expect warn`",
                                ));
                            }
                            ev.no_warn = true;
                        }
                        "no_info" => {
                            only_plain(&m)?;
                            if !ev.info.is_empty() {
                                return Err(err_at(
                                    bl,
                                    "`expect no_info` together with `expect info`",
                                ));
                            }
                            ev.no_info = true;
                        }
                        _ => {
                            // "ordered"
                            only_plain(&m)?;
                            ev.ordered = true;
                        }
                    }
                }
                other => {
                    return Err(err_at(bl, format!("unknown expect type {other:?}")));
                }
            }
            continue;
        }

        if first == "expected_fail_message" || first == "expected_fail_regexp" {
            if ev.fail.is_none() {
                return Err(err_at(
                    bl,
                    format!("`{first}` is only valid after eval_fail"),
                ));
            }
            let text = tail.trim().to_string();
            ev.fail = Some(if first == "expected_fail_message" {
                MsgMatch::Exact(text)
            } else {
                check_regex(&text).map_err(|e| err_at(bl, e))?;
                MsgMatch::Regex(text)
            });
            continue;
        }

        if let Some(v) = parse_scalar_literal(l) {
            if !series.is_empty() || string.is_some() {
                return Err(err_at(
                    bl,
                    "expected scalar mixed with other expected results",
                ));
            }
            scalar = Some(v);
            break;
        }

        if string.is_some() {
            return Err(err_at(bl, "expected series mixed with `expect string`"));
        }
        let (labels, is_st, rest) = split_series_line(l).map_err(|e| err_at(bl, e))?;
        if is_st {
            return Err(err_at(bl, "`@st` lines are not allowed in eval bodies"));
        }
        let values = parse_values(rest).map_err(|e| err_at(bl, e))?;
        series.push(SeriesLine {
            labels,
            values,
            starts: Vec::new(),
        });
        series_lines.push(bl);
    }

    // Check the number of values per expected series.
    let steps: Option<i64> = match (&ev.kind, ev.range_vector) {
        (
            EvalKind::Range {
                start_ms,
                end_ms,
                step_ms,
            },
            _,
        ) => Some((*end_ms - *start_ms) / *step_ms + 1),
        (EvalKind::Instant { .. }, Some((s, e, st))) => Some((e - s) / st + 1),
        (EvalKind::Instant { .. }, None) => None,
    };
    for (s, &sl) in series.iter().zip(series_lines.iter()) {
        match steps {
            None => {
                if s.values.len() != 1 {
                    return Err(err_at(
                        sl,
                        format!(
                            "an instant eval expects exactly one value per series, got {}",
                            s.values.len()
                        ),
                    ));
                }
            }
            Some(n) => {
                if s.values.len() as i64 > n {
                    return Err(err_at(
                        sl,
                        format!("{} expected values but only {n} steps", s.values.len()),
                    ));
                }
            }
        }
    }

    ev.expected = if let Some(v) = scalar {
        Expected::Scalar(v)
    } else if let Some(s) = string {
        Expected::String(s)
    } else if !series.is_empty() {
        Expected::Series(series)
    } else {
        Expected::Empty
    };
    Ok((ev, j))
}

fn check_regex(re: &str) -> Result<(), String> {
    regex::Regex::new(re)
        .map(|_| ())
        .map_err(|e| format!("invalid regex {re:?}: {e}"))
}

/// The optional `msg: text` / `regex: text` part of an expect line.
fn parse_msg_match(tail: &str) -> Result<MsgMatch, String> {
    let t = tail.trim();
    if t.is_empty() {
        Ok(MsgMatch::Any)
    } else if let Some(r) = t.strip_prefix("msg:") {
        Ok(MsgMatch::Exact(r.trim().to_string()))
    } else if let Some(r) = t.strip_prefix("regex:") {
        let r = r.trim();
        check_regex(r)?;
        Ok(MsgMatch::Regex(r.to_string()))
    } else {
        Err(format!(
            "expected `msg: <text>` or `regex: <re>`, got {t:?}"
        ))
    }
}

/// An expected scalar: Go `ParseInt(s, 0, 64)` (with 0x/0o/0b/0 prefixes),
/// else a float (`1.5`, `-2e3`, `NaN`, `Inf`, `+Inf`, ...).
fn parse_scalar_literal(s: &str) -> Option<f64> {
    if let Some(i) = parse_go_int(s) {
        return Some(i as f64);
    }
    if s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first().copied() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let prefix = body.get(..2).map(|p| p.to_ascii_lowercase());
    let (radix, digits, prefixed) = match prefix.as_deref() {
        Some("0x") => (16, &body[2..], true),
        Some("0o") => (8, &body[2..], true),
        Some("0b") => (2, &body[2..], true),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..], true),
        _ => (10, body, false),
    };
    if digits.is_empty()
        || digits.ends_with('_')
        || digits.contains("__")
        || (!prefixed && digits.starts_with('_'))
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let v = i128::from(u64::from_str_radix(&clean, radix).ok()?);
    i64::try_from(if neg { -v } else { v }).ok()
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
