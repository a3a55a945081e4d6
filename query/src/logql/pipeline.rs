//! The LogQL pipeline: line filters, parsers (`json`, `logfmt`, `regexp`, `pattern`,
//! `unpack`), label filters, formatters, `drop`/`keep`, `decolorize`. A stage either
//! drops the entry or changes its line and labels; parse failures set `__error__`.

use std::collections::BTreeMap;

use logql::{
    FilterOp, FilterValue, LabelFilterExpr, LabelFormatValue, LineFilterOp, MatchOp, PipelineStage,
};
use regex::Regex;

use super::template::Template;

pub(crate) type LabelMap = BTreeMap<String, String>;

/// A `drop`/`keep` argument: a label name, optionally with a matcher on its value.
type LabelPred = (String, Option<(MatchOp, Regex)>);

/// One log line going through the pipeline.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) t_ns: i64,
    pub(crate) line: String,
    pub(crate) labels: LabelMap,
}

enum LineTest {
    Contains(String),
    NotContains(String),
    Regex(Regex),
    NotRegex(Regex),
}

enum Cmp {
    Str(MatchOp, String, Option<Regex>),
    Num(FilterOp, f64),
    Duration(FilterOp, f64),
    Bytes(FilterOp, f64),
}

enum Filter {
    Pred(String, Cmp),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

enum Stage {
    Line(LineTest),
    Json(Vec<(String, Vec<PathPart>)>),
    Logfmt(Vec<(String, String)>),
    Regexp(Regex),
    Pattern(Vec<PatternPart>),
    Unpack,
    Decolorize(Regex),
    Labels(Filter),
    LineFormat(Template),
    LabelFormat(Vec<(String, LabelFormatKind)>),
    Drop(Vec<LabelPred>),
    Keep(Vec<LabelPred>),
}

enum LabelFormatKind {
    Rename(String),
    Template(Template),
}

#[derive(Clone, Debug, PartialEq)]
enum PathPart {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug, PartialEq)]
enum PatternPart {
    Literal(String),
    Capture(Option<String>),
}

/// A compiled pipeline.
pub(crate) struct Pipeline {
    stages: Vec<Stage>,
    /// Substrings every line must contain, usable by storage before the pipeline runs.
    pub(crate) required: Vec<String>,
    /// The trace every record must belong to (a `| trace_id="…"` filter before any stage
    /// that can change labels), usable by storage before the pipeline runs.
    pub(crate) trace_id: Option<[u8; 16]>,
}

/// A 32-digit hex trace id, as records show it in their `trace_id` label.
pub(crate) fn parse_trace_id(s: &str) -> Option<[u8; 16]> {
    (s.len() == 32)
        .then(|| crate::jaeger::hex_id(s))
        .flatten()
        .filter(|t| *t != [0; 16])
}

fn line_test(t: &LineTest, line: &str) -> bool {
    match t {
        LineTest::Contains(v) => line.contains(v.as_str()),
        LineTest::NotContains(v) => !line.contains(v.as_str()),
        LineTest::Regex(r) => r.is_match(line),
        LineTest::NotRegex(r) => !r.is_match(line),
    }
}

fn anchored(re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?s:{re})$"))
        .map_err(|e| format!("invalid regular expression {re:?}: {e}"))
}

fn unanchored(re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("invalid regular expression {re:?}: {e}"))
}

fn compile_filter(f: &LabelFilterExpr) -> Result<Filter, String> {
    Ok(match f {
        LabelFilterExpr::Pred(p) => {
            let cmp = match (&p.op, &p.value) {
                (
                    FilterOp::Eq | FilterOp::Neq | FilterOp::Re | FilterOp::Nre,
                    FilterValue::String(s),
                ) => {
                    let op = match p.op {
                        FilterOp::Eq => MatchOp::Eq,
                        FilterOp::Neq => MatchOp::Neq,
                        FilterOp::Re => MatchOp::Re,
                        _ => MatchOp::Nre,
                    };
                    let re = matches!(op, MatchOp::Re | MatchOp::Nre)
                        .then(|| anchored(s))
                        .transpose()?;
                    Cmp::Str(op, s.clone(), re)
                }
                (op, FilterValue::Number(n)) => Cmp::Num(*op, *n),
                (op, FilterValue::Duration(d)) => Cmp::Duration(*op, d.as_secs_f64()),
                (op, FilterValue::Bytes(b)) => Cmp::Bytes(*op, *b as f64),
                (op, FilterValue::String(s)) => {
                    // `status > "500"` compares as numbers when both sides are.
                    let n: f64 = s.parse().map_err(|_| {
                        format!("cannot compare label {} with {s:?} using {op:?}", p.name)
                    })?;
                    Cmp::Num(*op, n)
                }
                (_, FilterValue::Ip(_)) => {
                    return Err("ip() label filters are not supported".into());
                }
                (_, other) => return Err(format!("unsupported label filter value {other:?}")),
            };
            Filter::Pred(p.name.clone(), cmp)
        }
        LabelFilterExpr::And(a, b) => {
            Filter::And(Box::new(compile_filter(a)?), Box::new(compile_filter(b)?))
        }
        LabelFilterExpr::Or(a, b) => {
            Filter::Or(Box::new(compile_filter(a)?), Box::new(compile_filter(b)?))
        }
        other => return Err(format!("unsupported label filter {other:?}")),
    })
}

fn json_path(expr: &str) -> Result<Vec<PathPart>, String> {
    let mut out = Vec::new();
    let mut rest = expr.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("invalid json expression {expr:?}"))?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                out.push(PathPart::Key(q.to_string()));
            } else {
                out.push(PathPart::Index(
                    inner
                        .parse()
                        .map_err(|_| format!("invalid json expression {expr:?}"))?,
                ));
            }
            rest = &r[end + 1..];
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        out.push(PathPart::Key(rest[..end].to_string()));
        rest = &rest[end..];
    }
    Ok(out)
}

fn compile_pattern(p: &str) -> Result<Vec<PatternPart>, String> {
    let mut parts = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(i) => {
                if let Some(close) = rest[i..].find('>') {
                    let name = &rest[i + 1..i + close];
                    if name == "_"
                        || (!name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    {
                        if i > 0 {
                            parts.push(PatternPart::Literal(rest[..i].to_string()));
                        }
                        parts.push(PatternPart::Capture(
                            (name != "_").then(|| name.to_string()),
                        ));
                        rest = &rest[i + close + 1..];
                        continue;
                    }
                }
                parts.push(PatternPart::Literal(rest[..=i].to_string()));
                rest = &rest[i + 1..];
            }
            None => {
                parts.push(PatternPart::Literal(rest.to_string()));
                rest = "";
            }
        }
    }
    // Merge neighbouring literals.
    let mut merged: Vec<PatternPart> = Vec::new();
    for part in parts {
        match (merged.last_mut(), &part) {
            (Some(PatternPart::Literal(a)), PatternPart::Literal(b)) => a.push_str(b),
            _ => merged.push(part),
        }
    }
    if merged
        .windows(2)
        .any(|w| matches!(w, [PatternPart::Capture(_), PatternPart::Capture(_)]))
    {
        return Err(format!(
            "invalid pattern {p:?}: two captures must be separated by literal text"
        ));
    }
    Ok(merged)
}

fn label_preds(v: &[logql::LabelPredicate]) -> Result<Vec<LabelPred>, String> {
    v.iter()
        .map(|p| {
            Ok((
                p.name.clone(),
                match &p.matcher {
                    None => None,
                    Some((op, val)) => Some((
                        *op,
                        match op {
                            MatchOp::Re | MatchOp::Nre => anchored(val)?,
                            _ => anchored(&regex::escape(val))?,
                        },
                    )),
                },
            ))
        })
        .collect()
}

impl Pipeline {
    pub(crate) fn compile(stages: &[PipelineStage]) -> Result<Pipeline, String> {
        let mut out = Vec::with_capacity(stages.len());
        let mut required = Vec::new();
        let mut trace_id = None;
        let mut before_parsers = true;
        // Labels are still the record's own until a parser or formatter runs.
        let mut labels_untouched = true;
        for s in stages {
            if !matches!(
                s,
                PipelineStage::LineFilter(_)
                    | PipelineStage::LabelFilter(_)
                    | PipelineStage::Decolorize
            ) {
                labels_untouched = false;
            }
            out.push(match s {
                PipelineStage::LineFilter(f) => {
                    if f.is_ip {
                        return Err("ip() line filters are not supported".into());
                    }
                    match f.op {
                        LineFilterOp::Contains => {
                            if before_parsers && !f.value.is_empty() {
                                required.push(f.value.clone());
                            }
                            Stage::Line(LineTest::Contains(f.value.clone()))
                        }
                        LineFilterOp::NotContains => {
                            Stage::Line(LineTest::NotContains(f.value.clone()))
                        }
                        LineFilterOp::Regex => Stage::Line(LineTest::Regex(unanchored(&f.value)?)),
                        LineFilterOp::NotRegex => {
                            Stage::Line(LineTest::NotRegex(unanchored(&f.value)?))
                        }
                        other => return Err(format!("unsupported line filter {other:?}")),
                    }
                }
                PipelineStage::Json(ex) => {
                    before_parsers = false;
                    Stage::Json(
                        ex.iter()
                            .map(|e| {
                                Ok((
                                    e.name.clone(),
                                    json_path(e.expr.as_deref().unwrap_or(&e.name))?,
                                ))
                            })
                            .collect::<Result<_, String>>()?,
                    )
                }
                PipelineStage::Logfmt(l) => {
                    before_parsers = false;
                    Stage::Logfmt(
                        l.extractions
                            .iter()
                            .map(|e| {
                                (
                                    e.name.clone(),
                                    e.expr.clone().unwrap_or_else(|| e.name.clone()),
                                )
                            })
                            .collect(),
                    )
                }
                PipelineStage::Regexp(r) => {
                    before_parsers = false;
                    Stage::Regexp(unanchored(r)?)
                }
                PipelineStage::Pattern(p) => {
                    before_parsers = false;
                    Stage::Pattern(compile_pattern(p)?)
                }
                PipelineStage::Unpack => {
                    before_parsers = false;
                    Stage::Unpack
                }
                PipelineStage::Decolorize => {
                    Stage::Decolorize(unanchored("\x1b\\[[0-9;]*[A-Za-z]")?)
                }
                PipelineStage::LabelFilter(f) => {
                    if let LabelFilterExpr::Pred(p) = f
                        && labels_untouched
                        && trace_id.is_none()
                        && p.name == "trace_id"
                        && p.op == FilterOp::Eq
                        && let FilterValue::String(v) = &p.value
                    {
                        trace_id = parse_trace_id(v);
                    }
                    Stage::Labels(compile_filter(f)?)
                }
                PipelineStage::LineFormat(t) => {
                    before_parsers = false;
                    Stage::LineFormat(Template::parse(t)?)
                }
                PipelineStage::LabelFormat(v) => Stage::LabelFormat(
                    v.iter()
                        .map(|f| {
                            Ok((
                                f.dst.clone(),
                                match &f.value {
                                    LabelFormatValue::Rename(src) => {
                                        LabelFormatKind::Rename(src.clone())
                                    }
                                    LabelFormatValue::Template(t) => {
                                        LabelFormatKind::Template(Template::parse(t)?)
                                    }
                                    other => {
                                        return Err(format!("unsupported label_format {other:?}"));
                                    }
                                },
                            ))
                        })
                        .collect::<Result<_, String>>()?,
                ),
                PipelineStage::Drop(v) => Stage::Drop(label_preds(v)?),
                PipelineStage::Keep(v) => Stage::Keep(label_preds(v)?),
                PipelineStage::Distinct(_) => return Err("distinct is not supported".into()),
                PipelineStage::Unwrap(_) => continue,
                other => return Err(format!("unsupported pipeline stage {other:?}")),
            });
        }
        Ok(Pipeline {
            stages: out,
            required,
            trace_id,
        })
    }

    /// Whether there are no stages at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Whether every stage only tests the line (labels and line pass through unchanged).
    pub(crate) fn only_line_tests(&self) -> bool {
        self.stages.iter().all(|s| matches!(s, Stage::Line(_)))
    }

    /// Whether a line passes the line tests (the only stages, see `only_line_tests`).
    pub(crate) fn line_passes(&self, line: &str) -> bool {
        self.stages.iter().all(|s| match s {
            Stage::Line(t) => line_test(t, line),
            _ => true,
        })
    }

    /// Runs the entry through every stage; `None` when a stage drops it.
    pub(crate) fn run(&self, mut e: Entry) -> Option<Entry> {
        for s in &self.stages {
            match s {
                Stage::Line(t) => {
                    if !line_test(t, &e.line) {
                        return None;
                    }
                }
                Stage::Json(ex) => json(&mut e, ex),
                Stage::Logfmt(ex) => logfmt(&mut e, ex),
                Stage::Regexp(r) => {
                    if let Some(c) = r.captures(&e.line) {
                        let found: Vec<(String, String)> = r
                            .capture_names()
                            .flatten()
                            .filter_map(|n| {
                                c.name(n).map(|m| (n.to_string(), m.as_str().to_string()))
                            })
                            .collect();
                        for (k, v) in found {
                            add_label(&mut e.labels, &k, v);
                        }
                    }
                }
                Stage::Pattern(p) => pattern(&mut e, p),
                Stage::Unpack => unpack(&mut e),
                Stage::Decolorize(r) => e.line = r.replace_all(&e.line, "").into_owned(),
                Stage::Labels(f) => {
                    if !eval_filter(f, &mut e.labels) {
                        return None;
                    }
                }
                Stage::LineFormat(t) => e.line = t.render(&e.labels, &e.line, e.t_ns),
                Stage::LabelFormat(v) => {
                    for (dst, kind) in v {
                        let value = match kind {
                            LabelFormatKind::Rename(src) => {
                                e.labels.remove(src).unwrap_or_default()
                            }
                            LabelFormatKind::Template(t) => t.render(&e.labels, &e.line, e.t_ns),
                        };
                        if value.is_empty() {
                            e.labels.remove(dst);
                        } else {
                            e.labels.insert(dst.clone(), value);
                        }
                    }
                }
                Stage::Drop(preds) => e
                    .labels
                    .retain(|k, v| !preds.iter().any(|p| pred_matches(p, k, v))),
                Stage::Keep(preds) => e
                    .labels
                    .retain(|k, v| preds.iter().any(|p| pred_matches(p, k, v))),
            }
        }
        Some(e)
    }
}

fn pred_matches((name, m): &(String, Option<(MatchOp, Regex)>), k: &str, v: &str) -> bool {
    if name != k {
        return false;
    }
    match m {
        None => true,
        Some((MatchOp::Eq | MatchOp::Re, r)) => r.is_match(v),
        Some((_, r)) => !r.is_match(v),
    }
}

/// A label name as Loki sanitises extracted keys: anything outside `[a-zA-Z0-9_]` → `_`.
pub(crate) fn sanitize(k: &str) -> String {
    let mut s = k.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Adds an extracted label; one that clashes with an existing label gets `_extracted`.
fn add_label(labels: &mut LabelMap, k: &str, v: String) {
    let k = sanitize(k);
    if k.is_empty() {
        return;
    }
    if labels.contains_key(&k) {
        labels.insert(format!("{k}_extracted"), v);
    } else {
        labels.insert(k, v);
    }
}

fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null => Some(String::new()),
        _ => None,
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                flatten(&key, x, out);
            }
        }
        serde_json::Value::Array(_) => {}
        other => {
            if let Some(t) = json_text(other) {
                out.push((prefix.to_string(), t));
            }
        }
    }
}

fn json(e: &mut Entry, ex: &[(String, Vec<PathPart>)]) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.line) else {
        e.labels.insert("__error__".into(), "JSONParserErr".into());
        return;
    };
    if ex.is_empty() {
        if !v.is_object() {
            e.labels.insert("__error__".into(), "JSONParserErr".into());
            return;
        }
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        for (k, x) in out {
            add_label(&mut e.labels, &k, x);
        }
        return;
    }
    for (name, path) in ex {
        let mut cur = Some(&v);
        for p in path {
            cur = match (cur, p) {
                (Some(serde_json::Value::Object(m)), PathPart::Key(k)) => m.get(k),
                (Some(serde_json::Value::Array(a)), PathPart::Index(i)) => a.get(*i),
                _ => None,
            };
        }
        if let Some(t) = cur.and_then(|c| match c {
            serde_json::Value::Object(_) | serde_json::Value::Array(_) => Some(c.to_string()),
            other => json_text(other),
        }) {
            add_label(&mut e.labels, name, t);
        }
    }
}

/// `key=value key2="quoted value"` pairs.
pub(crate) fn logfmt_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        let key = &line[ks..i];
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = line[i..].chars().next().map_or(1, char::len_utf8);
                    value.push_str(&line[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
                value.push_str(&line[vs..i]);
            }
        }
        if !key.is_empty() {
            out.push((key.to_string(), value));
        }
    }
    out
}

fn logfmt(e: &mut Entry, ex: &[(String, String)]) {
    let pairs = logfmt_pairs(&e.line);
    if ex.is_empty() {
        for (k, v) in pairs {
            add_label(&mut e.labels, &k, v);
        }
    } else {
        for (name, key) in ex {
            if let Some((_, v)) = pairs.iter().find(|(k, _)| k == key) {
                add_label(&mut e.labels, name, v.clone());
            }
        }
    }
}

fn pattern(e: &mut Entry, parts: &[PatternPart]) {
    let line = e.line.clone();
    let mut rest = line.as_str();
    let mut caps: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        match &parts[i] {
            PatternPart::Literal(l) => {
                let Some(r) = rest.strip_prefix(l.as_str()) else {
                    return;
                };
                rest = r;
            }
            PatternPart::Capture(name) => {
                let value = match parts.get(i + 1) {
                    Some(PatternPart::Literal(next)) => match rest.find(next.as_str()) {
                        Some(pos) => {
                            let v = &rest[..pos];
                            rest = &rest[pos..];
                            v
                        }
                        None => return,
                    },
                    _ => {
                        let v = rest;
                        rest = "";
                        v
                    }
                };
                if let Some(n) = name {
                    caps.push((n.clone(), value.to_string()));
                }
            }
        }
        i += 1;
    }
    for (k, v) in caps {
        add_label(&mut e.labels, &k, v);
    }
}

fn unpack(e: &mut Entry) {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&e.line)
    else {
        e.labels.insert("__error__".into(), "JSONParserErr".into());
        return;
    };
    let mut line = None;
    for (k, v) in m {
        if let serde_json::Value::String(s) = v {
            if k == "_entry" {
                line = Some(s);
            } else {
                add_label(&mut e.labels, &k, s);
            }
        }
    }
    if let Some(l) = line {
        e.line = l;
    }
}

/// A Go-style duration (`1.5s`, `250ms`, `1h2m`) in seconds.
pub(crate) fn parse_duration_secs(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_len].parse().ok()?;
        rest = &rest[n_len..];
        let u_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        total += n * match &rest[..u_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        rest = &rest[u_len..];
    }
    Some(total)
}

/// A humanised byte size (`5MB`, `1.5KiB`, `42`) in bytes.
pub(crate) fn parse_bytes(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mult = match s[split..].trim() {
        "" | "B" | "b" => 1.0,
        "kB" | "KB" | "kb" => 1e3,
        "MB" | "mb" => 1e6,
        "GB" | "gb" => 1e9,
        "TB" | "tb" => 1e12,
        "KiB" | "kib" => 1024.0,
        "MiB" | "mib" => 1024f64.powi(2),
        "GiB" | "gib" => 1024f64.powi(3),
        "TiB" | "tib" => 1024f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

fn num_cmp(op: FilterOp, a: f64, b: f64) -> bool {
    match op {
        FilterOp::Eq | FilterOp::CmpEq => a == b,
        FilterOp::Neq => a != b,
        FilterOp::Gt => a > b,
        FilterOp::Gte => a >= b,
        FilterOp::Lt => a < b,
        FilterOp::Lte => a <= b,
        _ => false,
    }
}

fn eval_filter(f: &Filter, labels: &mut LabelMap) -> bool {
    match f {
        Filter::And(a, b) => eval_filter(a, labels) && eval_filter(b, labels),
        Filter::Or(a, b) => eval_filter(a, labels) || eval_filter(b, labels),
        Filter::Pred(name, cmp) => {
            let v = labels.get(name).cloned().unwrap_or_default();
            let parsed = match cmp {
                Cmp::Str(op, want, re) => {
                    return match (op, re) {
                        (MatchOp::Eq, _) => v == *want,
                        (MatchOp::Neq, _) => v != *want,
                        (MatchOp::Re, Some(r)) => r.is_match(&v),
                        (MatchOp::Nre, Some(r)) => !r.is_match(&v),
                        _ => false,
                    };
                }
                // A comparison with a label the entry lacks drops it, as in Loki.
                _ if !labels.contains_key(name) => return false,
                Cmp::Num(op, n) => v.parse::<f64>().ok().map(|x| num_cmp(*op, x, *n)),
                Cmp::Duration(op, n) => parse_duration_secs(&v).map(|x| num_cmp(*op, x, *n)),
                Cmp::Bytes(op, n) => parse_bytes(&v).map(|x| num_cmp(*op, x, *n)),
            };
            match parsed {
                Some(b) => b,
                None => {
                    // Not a number: the entry stays, marked, as Loki does.
                    labels.insert("__error__".into(), "LabelFilterErr".into());
                    true
                }
            }
        }
    }
}
