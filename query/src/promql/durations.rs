//! Duration expressions: arithmetic in range and subquery brackets (`[2m*15]`,
//! `[29s+1s:5s+5s]`) and after `offset` (`offset (1h / 2)`, `offset step()`), with
//! `step()`, `range()`, `min_of(a, b)` and `max_of(a, b)`, as Prometheus evaluates them.
//! `promql-parser` reads only literal durations there, so before parsing, each such
//! expression is computed for the query's step and range and written back as a literal
//! in milliseconds. Text without duration expressions is left exactly as it is, and so
//! is anything that does not read as one (the parser then says what is wrong with it).

use super::error::PromqlError;
use super::position::{Kind, Rewritten, Token, ends_expression, splice, tokens};

/// The query with every duration expression replaced by its value; `step_ms` and
/// `range_ms` are the query's step and `end − start` (both 0 for an instant query).
pub(crate) fn resolve(
    query: &str,
    step_ms: i64,
    range_ms: i64,
) -> Result<Rewritten<'_>, PromqlError> {
    let cx = Cx {
        step: step_ms as f64 / 1000.0,
        range: range_ms as f64 / 1000.0,
    };
    let toks = tokens(query);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.kind == Kind::Punct && t.text == "[" {
            let Some(close) = (i + 1..toks.len()).find(|&j| toks[j].text == "]") else {
                break;
            };
            // The range, and the step of a subquery, split at the colon outside
            // parentheses (the tokenizer reads a colon as part of an identifier).
            let (open, inner_end) = (t.start + 1, toks[close].start);
            let inner = &query[open..inner_end];
            let mut depth = 0i32;
            let mut parts = vec![(0, inner.len())];
            for (k, c) in inner.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ':' if depth == 0 => {
                        parts.last_mut().expect("one part").1 = k;
                        parts.push((k + 1, inner.len()));
                    }
                    _ => {}
                }
            }
            if parts.len() <= 2 {
                for (from, to) in parts {
                    let part = tokens(&inner[from..to]);
                    if part.len() > 1 {
                        cx.replace(&part, 0, part.len(), open + from, false, &mut edits)?;
                    }
                }
            }
            i = close + 1;
            continue;
        }
        // `offset` after an expression; elsewhere it is a name.
        if t.kind == Kind::Ident
            && t.text.eq_ignore_ascii_case("offset")
            && i.checked_sub(1).is_some_and(|j| ends_expression(&toks, j))
            && let Some(end) = cx.offset_operand(&toks, i + 1)
        {
            // The parser refuses a zero offset, which is no offset.
            if cx.replace(&toks, i + 1, end, 0, true, &mut edits)? == Some(0)
                && let Some(last) = edits.last_mut()
            {
                *last = (t.start, last.1, String::new());
            }
            i = end;
            continue;
        }
        i += 1;
    }
    Ok(splice(query, edits))
}

/// What `step()` and `range()` stand for, in seconds.
struct Cx {
    step: f64,
    range: f64,
}

/// The functions of duration expressions and their number of arguments.
fn function(name: &str) -> Option<(&'static str, usize)> {
    ["step", "range", "min_of", "max_of"]
        .into_iter()
        .find(|f| f.eq_ignore_ascii_case(name))
        .map(|f| (f, if f.ends_with("_of") { 2 } else { 0 }))
}

impl Cx {
    /// After `offset`: where an operand that is a duration expression ends (an optional
    /// sign, then a parenthesised expression or a function call); `None` for a literal
    /// or anything else, which the parser reads itself.
    fn offset_operand(&self, toks: &[Token<'_>], mut i: usize) -> Option<usize> {
        let text = |i: usize| toks.get(i).map(|t| t.text);
        if matches!(text(i), Some("+" | "-")) {
            i += 1;
        }
        let t = toks.get(i)?;
        let computed = t.text == "("
            || (t.kind == Kind::Ident && function(t.text).is_some() && text(i + 1) == Some("("));
        if !computed {
            return None;
        }
        let mut p = Parser {
            cx: self,
            toks,
            at: i,
            end: toks.len(),
            depth: 0,
        };
        // Only where it ends matters here; its value is computed when it is replaced.
        let _value = p.primary().ok()?;
        Some(p.at)
    }

    /// Computes the expression in tokens `from..to` (their offsets `base` bytes into the
    /// query) and records its literal in `edits`. One that does not parse is left to
    /// the PromQL parser.
    fn replace(
        &self,
        toks: &[Token<'_>],
        from: usize,
        to: usize,
        base: usize,
        negative_allowed: bool,
        edits: &mut Vec<(usize, usize, String)>,
    ) -> Result<Option<i64>, PromqlError> {
        let mut p = Parser {
            cx: self,
            toks,
            at: from,
            end: to,
            depth: 0,
        };
        let v = match p.expr() {
            Ok(v) if p.at == to => {
                v.map_err(|(start, end, msg)| at(base + start, base + end, msg))?
            }
            _ => return Ok(None),
        };
        let start = base + toks[from].start;
        let end = base + toks[to - 1].start + toks[to - 1].text.len();
        if v.is_nan() || v.is_infinite() {
            return Err(at(start, end, "duration is NaN or infinite"));
        }
        if v <= 0.0 && !negative_allowed {
            return Err(at(start, end, "duration must be greater than 0"));
        }
        if v.abs() > i64::MAX as f64 / 1e9 {
            return Err(at(start, end, "duration is out of range"));
        }
        let ms = (v * 1000.0).trunc() as i64;
        edits.push((start, end, format!("{ms}ms")));
        Ok(Some(ms))
    }
}

/// An error as Prometheus gives it: byte offsets of the expression, then the message.
fn at(start: usize, end: usize, msg: &str) -> PromqlError {
    PromqlError::Parse(format!("{start}:{end}: {msg}"))
}

/// A value, or where evaluating it failed and why (division or modulo by zero), kept
/// apart from "does not parse" so that only a real duration expression reports errors.
type Computed = Result<f64, (usize, usize, &'static str)>;

struct Parser<'c, 't, 'q> {
    cx: &'c Cx,
    toks: &'t [Token<'q>],
    at: usize,
    end: usize,
    /// Nesting so far: deeper expressions are left to the PromQL parser.
    depth: usize,
}

/// How deeply a duration expression may nest.
const MAX_DEPTH: usize = 64;

/// The tokens do not form a duration expression.
struct NotOne;

impl Parser<'_, '_, '_> {
    fn peek(&self) -> Option<&str> {
        (self.at < self.end).then(|| self.toks[self.at].text)
    }

    fn eat(&mut self, s: &str) -> Result<(), NotOne> {
        if self.peek() == Some(s) {
            self.at += 1;
            Ok(())
        } else {
            Err(NotOne)
        }
    }

    fn expr(&mut self) -> Result<Computed, NotOne> {
        let mut v = self.term()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            let add = op == "+";
            self.at += 1;
            let r = self.term()?;
            v = v.and_then(|a| r.map(|b| if add { a + b } else { a - b }));
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<Computed, NotOne> {
        let start = self.toks.get(self.at).map_or(0, |t| t.start);
        let mut v = self.unary()?;
        while let Some(op @ ("*" | "/" | "%")) = self.peek() {
            let op = op.to_string();
            self.at += 1;
            let r = self.unary()?;
            let last = &self.toks[self.at - 1];
            let end = last.start + last.text.len();
            v = v.and_then(|a| {
                let b = r?;
                match op.as_str() {
                    "*" => Ok(a * b),
                    "/" if b == 0.0 => Err((start, end, "division by zero")),
                    "/" => Ok(a / b),
                    _ if b == 0.0 => Err((start, end, "modulo by zero")),
                    _ => Ok(a % b),
                }
            });
        }
        Ok(v)
    }

    /// A sign binds looser than `^`, as in PromQL: `-2^2` is −4.
    fn unary(&mut self) -> Result<Computed, NotOne> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(NotOne);
        }
        let v = self.unary_inner();
        self.depth -= 1;
        v
    }

    fn unary_inner(&mut self) -> Result<Computed, NotOne> {
        match self.peek() {
            Some("-") => {
                self.at += 1;
                Ok(self.unary()?.map(|v| -v))
            }
            Some("+") => {
                self.at += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Computed, NotOne> {
        let base = self.primary()?;
        if self.peek() == Some("^") {
            self.at += 1;
            let exp = self.unary()?;
            return Ok(base.and_then(|b| exp.map(|e| b.powf(e))));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Computed, NotOne> {
        let t = self
            .toks
            .get(self.at)
            .filter(|_| self.at < self.end)
            .ok_or(NotOne)?;
        match t.kind {
            Kind::Number => {
                self.at += 1;
                seconds(t.text).map(Ok).ok_or(NotOne)
            }
            Kind::Punct if t.text == "(" => {
                self.at += 1;
                let v = self.expr()?;
                self.eat(")")?;
                Ok(v)
            }
            Kind::Ident => {
                let (name, args) = function(t.text).ok_or(NotOne)?;
                self.at += 1;
                self.eat("(")?;
                let mut vals = Vec::new();
                for k in 0..args {
                    if k > 0 {
                        self.eat(",")?;
                    }
                    vals.push(self.expr()?);
                }
                self.eat(")")?;
                Ok(match (name, vals.as_slice()) {
                    ("step", _) => Ok(self.cx.step),
                    ("range", _) => Ok(self.cx.range),
                    (_, &[a, b]) => a.and_then(|a| {
                        b.map(|b| if name == "min_of" { a.min(b) } else { a.max(b) })
                    }),
                    _ => return Err(NotOne),
                })
            }
            _ => Err(NotOne),
        }
    }
}

/// A number (seconds) or a duration literal such as `1h30m` or `500ms`, in seconds.
fn seconds(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if let Ok(v) = text.parse::<f64>() {
        return Some(v);
    }
    let mut total = 0f64;
    let mut rest = text;
    let mut last_rank = None;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // Each unit at most once, from the largest down (its rank); "ms" is tried
        // before "m".
        const UNITS: [(&str, f64, u8); 7] = [
            ("y", 365.0 * 86_400.0, 0),
            ("w", 7.0 * 86_400.0, 1),
            ("d", 86_400.0, 2),
            ("h", 3_600.0, 3),
            ("ms", 0.001, 6),
            ("m", 60.0, 4),
            ("s", 1.0, 5),
        ];
        let &(unit, scale, rank) = UNITS.iter().find(|(u, _, _)| rest.starts_with(u))?;
        if last_rank.is_some_and(|last| rank <= last) {
            return None;
        }
        last_rank = Some(rank);
        total += n * scale;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn r(q: &str, step_ms: i64, range_ms: i64) -> String {
        resolve(q, step_ms, range_ms).unwrap().text.into_owned()
    }

    #[test]
    fn literal_durations_and_queries_without_expressions_are_left_alone() {
        for q in [
            "rate(x[5m])",
            "max_over_time(rate(x[5m])[1h:1m] offset 5m)",
            "x offset -5m",
            "x offset 100 + 2",
            "x{a=\"[1+2]\"}",
            "sum by (offset) (x)",
            "x[1800]",
            "x[5m:]",
        ] {
            assert!(
                matches!(resolve(q, 0, 0).unwrap().text, Cow::Borrowed(_)),
                "{q}"
            );
        }
    }

    #[test]
    fn arithmetic_in_brackets_becomes_milliseconds() {
        assert_eq!(r("changes(x[26m+4m])", 0, 0), "changes(x[1800000ms])");
        assert_eq!(r("changes(x[2m*(10+5)])", 0, 0), "changes(x[1800000ms])");
        assert_eq!(
            r("changes(x[30m1s-30m1s % 1m])", 0, 0),
            "changes(x[1800000ms])"
        );
        assert_eq!(
            r("changes(x[24m+((1.5*2m)+2m)])", 0, 0),
            "changes(x[1740000ms])"
        );
        assert_eq!(r("s(x[29s+1s:5s+5s])", 0, 0), "s(x[30000ms:10000ms])");
        assert_eq!(r("s(x[29s+1s:5m])", 0, 0), "s(x[30000ms:5m])");
        assert_eq!(r("c(x[1+(STep()-5)*2])", 10_000, 0), "c(x[11000ms])");
        assert_eq!(r("c(x[range()])", 5_000, 10_000), "c(x[10000ms])");
        assert_eq!(
            r("c(x[((max_of(min_of((step()+1),((1h))),1ms)))])", 5_000, 0),
            "c(x[6000ms])"
        );
    }

    #[test]
    fn offset_takes_a_signed_group_or_call_and_the_rest_stays_an_operation() {
        assert_eq!(r("x offset (100 + 2)", 0, 0), "x offset 102000ms");
        assert_eq!(r("x offset (-2 ^ 2)", 0, 0), "x offset -4000ms");
        assert_eq!(r("x offset -step()*2", 5_000, 0), "x offset -5000ms*2");
        assert_eq!(
            r("x offset min_of(step(), 1s)^0", 5_000, 0),
            "x offset 1000ms^0"
        );
        assert_eq!(
            r("x offset -(min_of(step(), 2s)-5)+8000", 5_000, 0),
            "x offset 3000ms+8000"
        );
        assert_eq!(r("x OFFSET range()", 0, 0), "x ");
        assert_eq!(r("x offset step() + 1", 0, 0), "x  + 1");
    }

    #[test]
    fn bad_values_are_errors_with_their_place() {
        let e = |q: &str| resolve(q, 0, 0).unwrap_err().to_string();
        assert_eq!(e("x[1m-1m]"), "2:7: duration must be greater than 0");
        assert_eq!(e("x[range()]"), "2:9: duration must be greater than 0");
        assert_eq!(e("x offset (1m/0)"), "10:14: division by zero");
        assert_eq!(e("x offset (1m%0)"), "10:14: modulo by zero");
    }

    #[test]
    fn what_is_not_a_duration_expression_is_left_to_the_parser() {
        for q in [
            "x[foo+1]",
            "x[5m+]",
            "x offset (y)",
            "x[1m",
            "x offset min_of(1s)",
        ] {
            assert!(
                matches!(resolve(q, 0, 0).unwrap().text, Cow::Borrowed(_)),
                "{q}"
            );
        }
    }

    #[test]
    fn offset_as_a_name_and_deep_nesting_are_left_alone() {
        assert_eq!(r("offset + (2)", 0, 0), "offset + (2)");
        let deep = format!("x offset {}1s{}", "-(".repeat(200), ")".repeat(200));
        assert_eq!(r(&deep, 0, 0), deep);
    }

    #[test]
    fn duration_literals() {
        assert_eq!(seconds("1h30m"), Some(5400.0));
        assert_eq!(seconds("500ms"), Some(0.5));
        assert_eq!(seconds("1m1s"), Some(61.0));
        assert_eq!(seconds("1.5"), Some(1.5));
        assert_eq!(seconds("0x10"), Some(16.0));
        assert_eq!(seconds("1s1m"), None);
        assert_eq!(seconds("5x"), None);
    }
}
