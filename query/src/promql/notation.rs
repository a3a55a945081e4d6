//! The Prometheus series notation shared by PromQL test scripts and rule unit tests:
//! series identifiers (`metric{label="value"}`), expanding value sequences (`1+2x3`,
//! `_x2`, `stale`), native histogram literals (`{{schema:1 sum:3 buckets:[1 2]}}`) and
//! Prometheus durations.

use std::fmt::Display;

pub use signalbox_storage::STALE_NAN_BITS;
use signalbox_storage::{HistogramSample, Labels, ResetHint, Sample, SeriesPoints};

pub use signalbox_storage::CUSTOM_BUCKETS_SCHEMA;

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
    /// Only if literally present (or produced by combining histograms whose hints
    /// differ).
    pub counter_reset_hint: Option<ResetHint>,
}

/// One sample value. `stale` is `Float(f64::from_bits(STALE_NAN_BITS))`.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    Float(f64),
    Histogram(HistogramLit),
}

/// Whitespace as the notation knows it.
pub fn is_ws(c: u8) -> bool {
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

/// Splits a line into the series identifier's labels, whether an `@st` marker follows
/// it, and the rest of the line (the values).
pub type SplitLine<'a> = (Vec<(String, String)>, bool, &'a str);

pub fn split_series_line(line: &str) -> Result<SplitLine<'_>, String> {
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

/// The offsets of an `@st` line: per slot, the sample's start time minus its time (ms),
/// or `None` (`_`). Items: `_`, `_xK`, `<dur>`, `<dur>xK`, `<dur>+<dur>xK` and
/// `<dur>-<dur>xK`, where durations may carry a sign.
pub fn parse_start_offsets(s: &str) -> Result<Vec<Option<i64>>, String> {
    fn duration(t: &str, signed: bool) -> Result<(i64, &str), String> {
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') if signed => (true, &t[1..]),
            Some(b'+') if signed => (false, &t[1..]),
            _ => (false, t),
        };
        let end = body
            .find(|c: char| !(c.is_ascii_digit() || "ywdhms".contains(c)))
            .unwrap_or(body.len());
        let d = parse_duration_ms(&body[..end])?;
        Ok((if neg { -d } else { d }, &body[end..]))
    }
    fn times(t: &str) -> Result<Option<usize>, String> {
        match t.strip_prefix('x') {
            None if t.is_empty() => Ok(None),
            None => Err(format!("unexpected {t:?}")),
            Some(k) => k
                .parse()
                .map(Some)
                .map_err(|_| format!("invalid repetition {t:?}")),
        }
    }
    let mut out = Vec::new();
    for tok in s.split_ascii_whitespace() {
        if let Some(rest) = tok.strip_prefix('_') {
            out.extend(std::iter::repeat_n(None, times(rest)?.unwrap_or(1)));
            continue;
        }
        let (first, rest) = duration(tok, true)?;
        match rest.as_bytes().first() {
            Some(&c @ (b'+' | b'-')) => {
                let (step, rest) = duration(&rest[1..], false)?;
                let step = if c == b'-' { -step } else { step };
                let k = times(rest)?.ok_or_else(|| format!("expected `x<count>` in {tok:?}"))?;
                out.extend((0..=k as i64).map(|i| Some(first + i * step)));
            }
            _ => match times(rest)? {
                Some(k) => out.extend(std::iter::repeat_n(Some(first), k + 1)),
                None => out.push(Some(first)),
            },
        }
    }
    Ok(out)
}

/// Parses a value sequence (everything after the series identifier).
pub fn parse_values(s: &str) -> Result<Vec<Option<Point>>, String> {
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
                match ResetHint::parse(v) {
                    Some(hint) => h.counter_reset_hint = Some(hint),
                    None => return Err(sc.err(format!("invalid counter_reset_hint {v:?}"))),
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
/// A whole string that is one PromQL string literal ("...", '...' or `...`).
pub fn parse_string_literal(s: &str) -> Result<String, String> {
    let mut sc = Scan::new(s);
    let v = parse_string_lit(&mut sc)?;
    if !sc.eof() {
        return Err(sc.err("unexpected text after the string literal"));
    }
    Ok(v)
}

/// A series identifier alone (`metric{label="value"}`), as label pairs.
pub fn parse_series(s: &str) -> Result<Vec<(String, String)>, String> {
    let (labels, st, rest) = split_series_line(s.trim())?;
    if st || !rest.trim().is_empty() {
        return Err(format!(
            "unexpected text after the series identifier in {s:?}"
        ));
    }
    Ok(labels)
}

mod histogram;
use histogram::combine_histograms;

/// A parsed value sequence as storage points: slot `k` at `start_ms + k·interval_ms`,
/// omitted slots skipped.
pub fn series_points(
    labels: &[(String, String)],
    values: &[Option<Point>],
    start_ms: i64,
    interval_ms: i64,
) -> SeriesPoints {
    let mut samples = Vec::new();
    let mut histograms = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let t = start_ms + i as i64 * interval_ms;
        match v {
            Some(Point::Float(f)) => samples.push(Sample { t, v: *f }),
            Some(Point::Histogram(h)) => histograms.push(HistogramSample {
                t,
                h: h.to_histogram(),
            }),
            _ => {}
        }
    }
    SeriesPoints {
        starts: Vec::new(),
        labels: Labels::from_pairs(labels.iter().cloned()),
        samples,
        histograms,
        exemplars: Vec::new(),
    }
}
