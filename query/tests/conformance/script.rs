//! Parser for the Prometheus PromQL test-script format (the `.test` files of
//! `promql/promqltest/testdata`), following `FORMAT.md` sections 1–3: commands
//! (`clear`, `load`, `load_with_nhcb`, `eval` and its legacy variants), `expect`
//! lines, series identifiers, value sequences and native histogram literals.
#![allow(unreachable_pub, dead_code)]

use std::fmt::Display;

/// Bit pattern of the Prometheus staleness marker (a specific NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Schema number of native histograms with custom buckets (NHCB).
const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// Upper limit for one `xK` repetition count (protects against absurd input).
const MAX_REPEAT: u64 = 1_000_000;

/// A `{{...}}` native histogram literal (float histogram).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramLit {
    pub schema: i32,
    pub sum: f64,
    pub count: f64,
    /// `z_bucket`
    pub zero_count: f64,
    /// `z_bucket_w`
    pub zero_threshold: f64,
    /// `buckets`
    pub positive: Vec<f64>,
    /// `offset`: index of the first positive bucket.
    pub offset: i32,
    /// `n_buckets`
    pub negative: Vec<f64>,
    /// `n_offset`: index of the first negative bucket.
    pub n_offset: i32,
    pub custom_values: Vec<f64>,
    /// `Some("reset")` etc. only if literally present (or produced by combining
    /// histograms whose hints differ).
    pub counter_reset_hint: Option<String>,
}

/// One sample value. `stale` is `Float(f64::from_bits(STALE_NAN_BITS))`.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    Float(f64),
    Histogram(HistogramLit),
}

/// `<series> <values>` as found in `load` bodies and expected results.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// Label pairs in the order written; a metric name before the braces (or a
    /// quoted name inside) becomes ("__name__", name).
    pub labels: Vec<(String, String)>,
    /// One entry per slot; None = omitted slot (`_`).
    pub values: Vec<Option<Point>>,
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

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

fn is_quote(c: u8) -> bool {
    matches!(c, b'"' | b'\'' | b'`')
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

/// Prometheus duration (`5m`, `1m30s`, `10s53ms`, `25h`, `0`, units y w d h m s
/// ms) in milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    const DAY: i64 = 24 * 3600 * 1000;
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last_rank: Option<usize> = None;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: i64 = s[start..i]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        let rest = &s[i..];
        let (rank, unit_len, mult): (usize, usize, i64) = if rest.starts_with("ms") {
            (6, 2, 1)
        } else if rest.starts_with('y') {
            (0, 1, 365 * DAY)
        } else if rest.starts_with('w') {
            (1, 1, 7 * DAY)
        } else if rest.starts_with('d') {
            (2, 1, DAY)
        } else if rest.starts_with('h') {
            (3, 1, 3600 * 1000)
        } else if rest.starts_with('m') {
            (4, 1, 60 * 1000)
        } else if rest.starts_with('s') {
            (5, 1, 1000)
        } else {
            return Err(format!("invalid duration {s:?}: missing or unknown unit"));
        };
        if let Some(r) = last_rank
            && rank <= r
        {
            return Err(format!("invalid duration {s:?}: units out of order"));
        }
        last_rank = Some(rank);
        i += unit_len;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} is too large"))?;
    }
    Ok(total)
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
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let l = lines[j];
        let (labels, is_st, rest) = split_series_line(l).map_err(|e| err_at(j + 1, e))?;
        if is_st {
            start_timestamp_lines += 1;
        } else {
            let values = parse_values(rest).map_err(|e| err_at(j + 1, e))?;
            series.push(SeriesLine { labels, values });
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
                    let mut sc = Scan::new(lit);
                    let s = parse_string_lit(&mut sc).map_err(|e| err_at(bl, e))?;
                    if !sc.eof() {
                        return Err(err_at(bl, "unexpected text after the expected string"));
                    }
                    string = Some(s);
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
        series.push(SeriesLine { labels, values });
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

// ---------------------------------------------------------------------------
// Scanner
// ---------------------------------------------------------------------------

struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    p: usize,
}

impl<'a> Scan<'a> {
    fn new(s: &'a str) -> Self {
        Scan {
            s,
            b: s.as_bytes(),
            p: 0,
        }
    }

    fn eof(&self) -> bool {
        self.p >= self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.p + k).copied()
    }

    fn starts_with(&self, pat: &str) -> bool {
        self.b
            .get(self.p..)
            .is_some_and(|r| r.starts_with(pat.as_bytes()))
    }

    fn starts_with_ci(&self, pat: &str) -> bool {
        self.b
            .get(self.p..self.p + pat.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(pat.as_bytes()))
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.p += 1;
        }
    }

    /// True at end of input or before whitespace.
    fn at_item_end(&self) -> bool {
        self.peek().is_none_or(is_ws)
    }

    fn err(&self, msg: impl Display) -> String {
        format!("{msg} at column {} in {:?}", self.p + 1, self.s)
    }

    /// A number: optional sign (if allowed), decimal digits with optional
    /// fraction and exponent, or `Inf` / `NaN` in any case. No hexadecimal.
    fn number(&mut self, allow_sign: bool) -> Result<f64, String> {
        let start = self.p;
        if allow_sign && matches!(self.peek(), Some(b'+' | b'-')) {
            self.p += 1;
        }
        if self.starts_with_ci("inf") || self.starts_with_ci("nan") {
            self.p += 3;
        } else {
            let mut digits = 0usize;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.p += 1;
                digits += 1;
            }
            if self.peek() == Some(b'.') {
                self.p += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.p += 1;
                    digits += 1;
                }
            }
            if digits == 0 {
                self.p = start;
                return Err(self.err("expected a number"));
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                let mut q = self.p + 1;
                if matches!(self.b.get(q).copied(), Some(b'+' | b'-')) {
                    q += 1;
                }
                let exp_start = q;
                while self.b.get(q).copied().is_some_and(|c| c.is_ascii_digit()) {
                    q += 1;
                }
                if q > exp_start {
                    self.p = q;
                }
            }
        }
        let text = &self.s[start..self.p];
        text.parse::<f64>()
            .map_err(|e| format!("invalid number {text:?}: {e}"))
    }

    /// An optional `x<count>` suffix.
    fn times(&mut self) -> Result<Option<u64>, String> {
        if self.peek() != Some(b'x') {
            return Ok(None);
        }
        self.p += 1;
        let start = self.p;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.p += 1;
        }
        if start == self.p {
            return Err(self.err("expected a repetition count after `x`"));
        }
        let src = self.s;
        let k: u64 = src[start..self.p]
            .parse()
            .map_err(|_| self.err("repetition count too large"))?;
        if k > MAX_REPEAT {
            return Err(self.err(format!("repetition count {k} too large")));
        }
        Ok(Some(k))
    }

    fn hex_digits(&mut self, n: usize) -> Result<u32, String> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let Some(d) = self.peek().and_then(|c| char::from(c).to_digit(16)) else {
                return Err(self.err("invalid hexadecimal escape"));
            };
            v = v * 16 + d;
            self.p += 1;
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------
// Series identifiers and string literals
// ---------------------------------------------------------------------------

/// Splits a body line into (labels, is `@st` line, rest of the line = values).
/// Labels, whether the line is an `@st` line, and the rest of the line.
type SplitLine<'a> = (Vec<(String, String)>, bool, &'a str);

fn split_series_line(line: &str) -> Result<SplitLine<'_>, String> {
    let mut sc = Scan::new(line);
    let labels = parse_series_id(&mut sc)?;
    let rest = &line[sc.p..];
    if let Some(after) = rest.strip_prefix("@st") {
        if after.bytes().next().is_some_and(|c| !is_ws(c)) {
            return Err(format!("unexpected text after `@st` in {line:?}"));
        }
        return Ok((labels, true, after));
    }
    if rest.bytes().next().is_some_and(|c| !is_ws(c)) {
        return Err(sc.err("unexpected character after series identifier"));
    }
    Ok((labels, false, rest))
}

/// `metric{label="value", ...}`, `metric`, `{...}`, with quoted UTF-8 names.
fn parse_series_id(sc: &mut Scan<'_>) -> Result<Vec<(String, String)>, String> {
    let src = sc.s;
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut has_name = false;
    if sc.peek().is_some_and(is_ident_start) {
        let start = sc.p;
        while sc.peek().is_some_and(is_ident_char) {
            sc.p += 1;
        }
        labels.push(("__name__".to_string(), src[start..sc.p].to_string()));
        has_name = true;
    }
    if sc.peek() == Some(b'{') {
        sc.p += 1;
        loop {
            sc.skip_ws();
            match sc.peek() {
                None => return Err(sc.err("unterminated label set")),
                Some(b'}') => {
                    sc.p += 1;
                    break;
                }
                Some(_) => {}
            }
            let (name, quoted) = if sc.peek().is_some_and(is_quote) {
                (parse_string_lit(sc)?, true)
            } else if sc.peek().is_some_and(is_ident_start) {
                let start = sc.p;
                while sc.peek().is_some_and(is_ident_char) {
                    sc.p += 1;
                }
                (src[start..sc.p].to_string(), false)
            } else {
                return Err(sc.err("expected a label name"));
            };
            sc.skip_ws();
            if sc.peek() == Some(b'=') {
                sc.p += 1;
                if sc.peek() == Some(b'~') {
                    return Err(sc.err("only `=` is allowed in series identifiers"));
                }
                sc.skip_ws();
                if !sc.peek().is_some_and(is_quote) {
                    return Err(sc.err("expected a quoted label value"));
                }
                let value = parse_string_lit(sc)?;
                labels.push((name, value));
            } else if quoted {
                if has_name {
                    return Err(sc.err("metric name given twice"));
                }
                has_name = true;
                labels.push(("__name__".to_string(), name));
            } else {
                return Err(sc.err(format!("expected '=' after label name {name:?}")));
            }
            sc.skip_ws();
            match sc.peek() {
                Some(b',') => sc.p += 1,
                Some(b'}') => {
                    sc.p += 1;
                    break;
                }
                _ => return Err(sc.err("expected ',' or '}' in label set")),
            }
        }
    } else if !has_name {
        return Err(sc.err("expected a series identifier"));
    }
    Ok(labels)
}

fn bytes_to_string(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A PromQL string literal ("...", '...' or `...`) with Go escape rules.
/// Invalid UTF-8 produced by `\x` / octal escapes is replaced lossily.
fn parse_string_lit(sc: &mut Scan<'_>) -> Result<String, String> {
    let b = sc.b;
    let Some(q) = sc.peek() else {
        return Err(sc.err("expected a string literal"));
    };
    if !is_quote(q) {
        return Err(sc.err("expected a string literal"));
    }
    let start = sc.p;
    sc.p += 1;
    if q == b'`' {
        let content_start = sc.p;
        while let Some(c) = sc.peek() {
            if c == b'`' {
                let s = bytes_to_string(b[content_start..sc.p].to_vec());
                sc.p += 1;
                return Ok(s);
            }
            sc.p += 1;
        }
        sc.p = start;
        return Err(sc.err("unterminated raw string"));
    }
    let mut out: Vec<u8> = Vec::new();
    while let Some(c) = sc.peek() {
        sc.p += 1;
        if c == q {
            return Ok(bytes_to_string(out));
        }
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(e) = sc.peek() else {
            break;
        };
        sc.p += 1;
        match e {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let v = sc.hex_digits(2)?;
                out.push((v & 0xff) as u8);
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = sc.hex_digits(n)?;
                let Some(ch) = char::from_u32(v) else {
                    return Err(sc.err(format!("invalid Unicode escape U+{v:X}")));
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match sc.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            sc.p += 1;
                        }
                        _ => return Err(sc.err("invalid octal escape")),
                    }
                }
                if v > 255 {
                    return Err(sc.err("octal escape value > 255"));
                }
                out.push(v as u8);
            }
            other => {
                return Err(sc.err(format!("unknown escape sequence \\{}", char::from(other))));
            }
        }
    }
    sc.p = start;
    Err(sc.err("unterminated string literal"))
}

// ---------------------------------------------------------------------------
// Value sequences
// ---------------------------------------------------------------------------

fn stale_point() -> Point {
    Point::Float(f64::from_bits(STALE_NAN_BITS))
}

/// Parses a value sequence (everything after the series identifier).
fn parse_values(s: &str) -> Result<Vec<Option<Point>>, String> {
    let mut sc = Scan::new(s);
    let mut out: Vec<Option<Point>> = Vec::new();
    loop {
        sc.skip_ws();
        if sc.eof() {
            break;
        }
        if sc.starts_with("{{") {
            let base = parse_histogram(&mut sc)?;
            if sc.starts_with("+{{") || sc.starts_with("-{{") {
                let sub = sc.peek() == Some(b'-');
                sc.p += 1;
                let inc = parse_histogram(&mut sc)?;
                let Some(k) = sc.times()? else {
                    return Err(sc.err("expected `x<count>` after histogram increment"));
                };
                if base.schema != CUSTOM_BUCKETS_SCHEMA
                    && inc.schema != CUSTOM_BUCKETS_SCHEMA
                    && base.schema > inc.schema
                {
                    return Err(sc.err(format!(
                        "cannot combine histograms: cannot merge from schema {} to {}",
                        inc.schema, base.schema
                    )));
                }
                let mut cur = base;
                out.push(Some(Point::Histogram(cur.clone())));
                for _ in 0..k {
                    cur = combine_histograms(&cur, &inc, sub).map_err(|e| sc.err(e))?;
                    out.push(Some(Point::Histogram(cur.clone())));
                }
            } else if let Some(k) = sc.times()? {
                for _ in 0..=k {
                    out.push(Some(Point::Histogram(base.clone())));
                }
            } else {
                out.push(Some(Point::Histogram(base)));
            }
        } else if sc.peek() == Some(b'_') {
            sc.p += 1;
            let n = sc.times()?.unwrap_or(1);
            for _ in 0..n {
                out.push(None);
            }
        } else if sc.starts_with("stale") && sc.peek_at(5).is_none_or(is_ws) {
            sc.p += 5;
            out.push(Some(stale_point()));
        } else {
            let n = sc.number(true)?;
            if matches!(sc.peek(), Some(b'+' | b'-')) {
                let neg = sc.peek() == Some(b'-');
                sc.p += 1;
                let d = sc.number(false)?;
                let d = if neg { -d } else { d };
                let Some(k) = sc.times()? else {
                    return Err(sc.err("expected `x<count>` after increment"));
                };
                let mut v = n;
                for _ in 0..=k {
                    out.push(Some(Point::Float(v)));
                    v += d;
                }
            } else if let Some(k) = sc.times()? {
                for _ in 0..=k {
                    out.push(Some(Point::Float(n)));
                }
            } else {
                out.push(Some(Point::Float(n)));
            }
        }
        if !sc.at_item_end() {
            return Err(sc.err("unexpected character in value sequence"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Histogram literals
// ---------------------------------------------------------------------------

/// Parses `{{key:value ...}}`; the scanner is at the opening `{{`.
fn parse_histogram(sc: &mut Scan<'_>) -> Result<HistogramLit, String> {
    let src = sc.s;
    if !sc.starts_with("{{") {
        return Err(sc.err("expected `{{`"));
    }
    sc.p += 2;
    let mut h = HistogramLit::default();
    loop {
        sc.skip_ws();
        if sc.eof() {
            return Err(sc.err("unterminated histogram literal"));
        }
        if sc.starts_with("}}") {
            sc.p += 2;
            return Ok(h);
        }
        let start = sc.p;
        while sc
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            sc.p += 1;
        }
        let key = &src[start..sc.p];
        if key.is_empty() {
            return Err(sc.err("expected a histogram field name"));
        }
        sc.skip_ws();
        if sc.peek() != Some(b':') {
            return Err(sc.err(format!("expected ':' after {key:?}")));
        }
        sc.p += 1;
        sc.skip_ws();
        match key {
            "schema" => h.schema = int_field(sc, key)?,
            "offset" => h.offset = int_field(sc, key)?,
            "n_offset" => h.n_offset = int_field(sc, key)?,
            "sum" => h.sum = sc.number(true)?,
            "count" => h.count = sc.number(true)?,
            "z_bucket" => h.zero_count = sc.number(true)?,
            "z_bucket_w" => h.zero_threshold = sc.number(true)?,
            "buckets" => h.positive = float_list(sc)?,
            "n_buckets" => h.negative = float_list(sc)?,
            "custom_values" => h.custom_values = float_list(sc)?,
            "counter_reset_hint" => {
                let vstart = sc.p;
                while sc
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
                {
                    sc.p += 1;
                }
                let v = &src[vstart..sc.p];
                match v {
                    "unknown" | "reset" | "not_reset" | "gauge" => {
                        h.counter_reset_hint = Some(v.to_string());
                    }
                    _ => return Err(sc.err(format!("invalid counter_reset_hint {v:?}"))),
                }
            }
            other => return Err(sc.err(format!("unknown histogram field {other:?}"))),
        }
        if !(sc.at_item_end() || sc.starts_with("}}")) {
            return Err(sc.err("unexpected character in histogram literal"));
        }
    }
}

fn int_field(sc: &mut Scan<'_>, key: &str) -> Result<i32, String> {
    let v = sc.number(true)?;
    if !v.is_finite() || v.fract() != 0.0 || v < f64::from(i32::MIN) || v > f64::from(i32::MAX) {
        return Err(sc.err(format!("{key} must be an integer, got {v}")));
    }
    Ok(v as i32)
}

fn float_list(sc: &mut Scan<'_>) -> Result<Vec<f64>, String> {
    if sc.peek() != Some(b'[') {
        return Err(sc.err("expected '['"));
    }
    sc.p += 1;
    let mut v = Vec::new();
    loop {
        sc.skip_ws();
        match sc.peek() {
            None => return Err(sc.err("unterminated list")),
            Some(b']') => {
                sc.p += 1;
                return Ok(v);
            }
            Some(_) => {
                v.push(sc.number(true)?);
                match sc.peek() {
                    Some(b',') => sc.p += 1,
                    Some(b']') => {}
                    Some(c) if is_ws(c) => {}
                    _ => return Err(sc.err("unexpected character in list")),
                }
            }
        }
    }
}

#[path = "script_histogram.rs"]
mod histogram;
use histogram::combine_histograms;

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
