//! Where each expression of a query starts in its text, for the ` (line:col)` Prometheus
//! appends to warnings and infos. The parser gives no positions, so the query is split
//! into tokens here and the syntax tree is walked in source order, each node taking the
//! tokens its kind is written with. Where the walk and the tree disagree (a form this
//! walk does not know), no positions are given and annotations go without them.

use promql_parser::parser::{Expr, VectorSelector};
use rustc_hash::FxHashMap;

/// The start offset (bytes) of each expression node, keyed by the node's address in
/// the (unmoved) syntax tree.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    query: String,
    starts: FxHashMap<usize, usize>,
    /// The offset of each binary operation's operator.
    ops: FxHashMap<usize, usize>,
    /// The binary operations that are trims (`</`, `>/`), by node.
    trims: FxHashMap<usize, &'static str>,
}

pub(crate) fn node_key(e: &Expr) -> usize {
    e as *const Expr as usize
}

impl Positions {
    pub(crate) fn of(query: &str, expr: &Expr) -> Positions {
        let mut starts = FxHashMap::default();
        let mut ops = FxHashMap::default();
        let toks = tokens(query);
        let mut w = Walk {
            toks: &toks,
            at: 0,
            starts: &mut starts,
            ops: &mut ops,
        };
        let complete = w.expr(expr).is_some() && w.at == toks.len();
        if !complete {
            starts.clear();
            ops.clear();
        }
        Positions {
            query: query.to_string(),
            starts,
            ops,
            trims: FxHashMap::default(),
        }
    }

    /// Marks the binary operations whose operators stand at the given offsets (of the
    /// text the positions refer to) as trims; `false` if one of them is not found.
    pub(crate) fn mark_trims(&mut self, trims: &[(usize, &'static str)]) -> bool {
        if trims.is_empty() {
            return true;
        }
        let by_offset: FxHashMap<usize, usize> = self.ops.iter().map(|(&k, &p)| (p, k)).collect();
        for &(at, op) in trims {
            match by_offset.get(&at) {
                Some(&key) => {
                    self.trims.insert(key, op);
                }
                None => return false,
            }
        }
        true
    }

    /// The trim operator of a binary operation, if it is one.
    pub(crate) fn trim(&self, key: usize) -> Option<&'static str> {
        self.trims.get(&key).copied()
    }

    /// The same positions in `original`, the text the query was rewritten from.
    pub(crate) fn relocated(self, original: &str, back: impl Fn(usize) -> usize) -> Positions {
        Positions {
            query: original.to_string(),
            starts: self.starts.into_iter().map(|(k, p)| (k, back(p))).collect(),
            ops: self.ops.into_iter().map(|(k, p)| (k, back(p))).collect(),
            trims: self.trims,
        }
    }

    /// ` (line:col)` for the node at `key`, as Prometheus writes it (line and column
    /// from 1, the column in bytes); empty when unknown.
    pub(crate) fn suffix(&self, key: usize) -> String {
        let Some(&pos) = self.starts.get(&key) else {
            return String::new();
        };
        let before = &self.query.as_bytes()[..pos.min(self.query.len())];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let col = match before.iter().rposition(|b| *b == b'\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        format!(" ({line}:{col})")
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Ident,
    Number,
    Str,
    Punct,
}

#[derive(Debug)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Kind,
    pub(crate) text: &'a str,
    pub(crate) start: usize,
}

const TWO_CHAR_OPS: [&str; 6] = ["==", "!=", ">=", "<=", "=~", "!~"];

/// A query after parts of its text were replaced, with where each replacement was, so
/// that an offset in the new text can be traced back to the original.
#[derive(Debug)]
pub(crate) struct Rewritten<'a> {
    pub(crate) text: std::borrow::Cow<'a, str>,
    /// Per replacement: its start and end in the original, and the new text's length.
    moves: Vec<(usize, usize, usize)>,
}

impl Rewritten<'_> {
    /// The offset in the original text of offset `p` of the new one (inside a
    /// replacement, the replacement's start).
    pub(crate) fn back(&self, p: usize) -> usize {
        let mut shift = 0isize;
        for &(start, end, len) in &self.moves {
            let new_start = start.saturating_add_signed(shift);
            if p < new_start {
                break;
            }
            if p < new_start + len {
                return start;
            }
            shift += len as isize - (end - start) as isize;
        }
        p.saturating_add_signed(-shift)
    }
}

/// The query with the byte ranges of `edits` (sorted, not overlapping) replaced by
/// their texts; the query itself when there are none.
pub(crate) fn splice(q: &str, edits: Vec<(usize, usize, String)>) -> Rewritten<'_> {
    if edits.is_empty() {
        return Rewritten {
            text: std::borrow::Cow::Borrowed(q),
            moves: Vec::new(),
        };
    }
    let mut out = String::with_capacity(q.len() + edits.iter().map(|e| e.2.len()).sum::<usize>());
    let mut moves = Vec::with_capacity(edits.len());
    let mut at = 0;
    for (start, end, text) in edits {
        out.push_str(&q[at..start]);
        out.push_str(&text);
        moves.push((start, end, text.len()));
        at = end;
    }
    out.push_str(&q[at..]);
    Rewritten {
        text: std::borrow::Cow::Owned(out),
        moves,
    }
}

/// Keywords whose parentheses hold label names, not an expression (as do those of the
/// fill modifiers, which hold values).
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Other words that cannot end an expression.
const OPERATOR_WORDS: [&str; 6] = ["and", "or", "unless", "bool", "offset", "atan2"];

/// Whether token `i` can be the last of an expression (so that a word after it is a
/// modifier rather than a name): a number, a closing bracket or brace, a closing
/// parenthesis that does not close a label list, or a name that is not a keyword.
pub(crate) fn ends_expression(toks: &[Token<'_>], i: usize) -> bool {
    let t = &toks[i];
    let is_keyword = |t: &Token<'_>, words: &[&str]| {
        t.kind == Kind::Ident && words.iter().any(|w| t.text.eq_ignore_ascii_case(w))
    };
    match t.kind {
        Kind::Number => true,
        Kind::Str => false,
        Kind::Ident => !is_keyword(t, &GROUPING) && !is_keyword(t, &OPERATOR_WORDS),
        Kind::Punct => match t.text {
            "]" | "}" => true,
            ")" => {
                let mut depth = 0;
                let open = (0..i).rev().find(|&j| {
                    match toks[j].text {
                        ")" => depth += 1,
                        "(" if depth == 0 => return true,
                        "(" => depth -= 1,
                        _ => {}
                    }
                    false
                });
                !open.and_then(|j| j.checked_sub(1)).is_some_and(|j| {
                    is_keyword(&toks[j], &GROUPING)
                        || is_keyword(&toks[j], &["fill", "fill_left", "fill_right"])
                })
            }
            _ => false,
        },
    }
}

pub(crate) fn tokens(q: &str) -> Vec<Token<'_>> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            Kind::Ident
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let hex = c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X'));
            i += 1;
            while i < b.len() {
                let d = b[i];
                let exponent_sign =
                    (d == b'+' || d == b'-') && !hex && matches!(b[i - 1], b'e' | b'E');
                if !(d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exponent_sign) {
                    break;
                }
                i += 1;
            }
            Kind::Number
        } else if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            Kind::Str
        } else {
            let two = q.get(i..i + 2).filter(|t| TWO_CHAR_OPS.contains(t));
            i += two.map_or(1, str::len);
            // Keep to character boundaries for anything else outside ASCII.
            while !q.is_char_boundary(i) {
                i += 1;
            }
            Kind::Punct
        };
        out.push(Token {
            kind,
            text: &q[start..i],
            start,
        });
    }
    out
}

const BINARY_OPS: [&str; 16] = [
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "atan2",
];

struct Walk<'t, 'q> {
    toks: &'t [Token<'q>],
    at: usize,
    starts: &'t mut FxHashMap<usize, usize>,
    ops: &'t mut FxHashMap<usize, usize>,
}

impl Walk<'_, '_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(|t| t.text)
    }

    fn peek_is(&self, text: &str) -> bool {
        self.peek().is_some_and(|t| t.eq_ignore_ascii_case(text))
    }

    fn take(&mut self, text: &str) -> Option<()> {
        self.peek_is(text).then(|| self.at += 1)
    }

    fn take_kind(&mut self, kind: Kind) -> Option<()> {
        (self.toks.get(self.at)?.kind == kind).then(|| self.at += 1)
    }

    /// An opening bracket and everything up to its closing one.
    fn skip_group(&mut self, open: &str, close: &str) -> Option<()> {
        self.take(open)?;
        let mut depth = 1;
        while depth > 0 {
            let t = self.peek()?;
            if t == open {
                depth += 1;
            } else if t == close {
                depth -= 1;
            }
            self.at += 1;
        }
        Some(())
    }

    fn signed_number(&mut self) -> Option<()> {
        if self.peek_is("-") || self.peek_is("+") {
            self.at += 1;
        }
        self.take_kind(Kind::Number)
            .or_else(|| self.take_kind(Kind::Ident))
    }

    /// `offset` and `@` after a selector or subquery, in either order.
    fn modifiers(&mut self) -> Option<()> {
        loop {
            if self.take("offset").is_some() {
                self.signed_number()?;
            } else if self.take("@").is_some() {
                if self.peek_is("start") || self.peek_is("end") {
                    self.at += 1;
                    self.take("(")?;
                    self.take(")")?;
                } else {
                    self.signed_number()?;
                }
            } else {
                return Some(());
            }
        }
    }

    fn selector(&mut self, vs: &VectorSelector) -> Option<()> {
        if vs.name.is_some() && !self.peek_is("{") {
            self.take_kind(Kind::Ident)?;
        }
        if self.peek_is("{") {
            self.skip_group("{", "}")?;
        }
        Some(())
    }

    fn label_list(&mut self) -> Option<()> {
        if self.peek_is("(") {
            self.skip_group("(", ")")?;
        }
        Some(())
    }

    fn expr(&mut self, e: &Expr) -> Option<()> {
        self.starts
            .insert(node_key(e), self.toks.get(self.at)?.start);
        match e {
            Expr::Paren(p) => {
                self.take("(")?;
                self.expr(&p.expr)?;
                self.take(")")
            }
            Expr::Unary(u) => {
                self.take("-").or_else(|| self.take("+"))?;
                self.expr(&u.expr)
            }
            Expr::NumberLiteral(_) => self.signed_number(),
            Expr::StringLiteral(_) => self.take_kind(Kind::Str),
            Expr::VectorSelector(vs) => {
                self.selector(vs)?;
                self.modifiers()
            }
            Expr::MatrixSelector(ms) => {
                self.selector(&ms.vs)?;
                self.skip_group("[", "]")?;
                self.modifiers()
            }
            Expr::Subquery(sq) => {
                self.expr(&sq.expr)?;
                self.skip_group("[", "]")?;
                self.modifiers()
            }
            Expr::Call(c) => {
                self.take_kind(Kind::Ident)?;
                self.take("(")?;
                for (i, a) in c.args.args.iter().enumerate() {
                    if i > 0 {
                        self.take(",")?;
                    }
                    self.expr(a)?;
                }
                self.take(")")
            }
            Expr::Aggregate(a) => {
                self.take_kind(Kind::Ident)?;
                let grouping = |w: &mut Self| {
                    if w.take("by").is_some() || w.take("without").is_some() {
                        w.label_list()?;
                    }
                    Some(())
                };
                grouping(self)?;
                self.take("(")?;
                if let Some(p) = &a.param {
                    self.expr(p)?;
                    self.take(",")?;
                }
                self.expr(&a.expr)?;
                self.take(")")?;
                grouping(self)
            }
            Expr::Binary(b) => {
                self.expr(&b.lhs)?;
                let op = self.peek()?;
                if !BINARY_OPS.iter().any(|o| o.eq_ignore_ascii_case(op)) {
                    return None;
                }
                self.ops.insert(node_key(e), self.toks[self.at].start);
                self.at += 1;
                loop {
                    if self.take("bool").is_some() {
                        continue;
                    }
                    // `on`, `ignoring` and the fill modifiers are modifiers only when
                    // a parenthesis follows (`fill{…}` is a metric named fill).
                    let t = self.peek()?.to_ascii_lowercase();
                    let paren_next = self.toks.get(self.at + 1).is_some_and(|n| n.text == "(");
                    match t.as_str() {
                        "group_left" | "group_right" => {}
                        "on" | "ignoring" | "fill" | "fill_left" | "fill_right" if paren_next => {}
                        _ => break,
                    }
                    self.at += 1;
                    self.label_list()?;
                }
                self.expr(&b.rhs)
            }
            Expr::Extension(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text from each node's start, for every node of `q` in a fixed order.
    fn starts(q: &str) -> Vec<String> {
        let e = promql_parser::parser::parse(q).unwrap();
        let p = Positions::of(q, &e);
        let mut out = Vec::new();
        fn visit(e: &Expr, p: &Positions, out: &mut Vec<String>) {
            out.push(p.suffix(node_key(e)));
            match e {
                Expr::Paren(x) => visit(&x.expr, p, out),
                Expr::Unary(x) => visit(&x.expr, p, out),
                Expr::Subquery(x) => visit(&x.expr, p, out),
                Expr::Call(c) => c.args.args.iter().for_each(|a| visit(a, p, out)),
                Expr::Aggregate(a) => {
                    if let Some(x) = &a.param {
                        visit(x, p, out);
                    }
                    visit(&a.expr, p, out);
                }
                Expr::Binary(b) => {
                    visit(&b.lhs, p, out);
                    visit(&b.rhs, p, out);
                }
                _ => {}
            }
        }
        visit(&e, &p, &mut out);
        out
    }

    #[test]
    fn each_node_starts_where_it_is_written() {
        assert_eq!(
            starts("histogram_quantile(0.8, series)"),
            [" (1:1)", " (1:20)", " (1:25)"]
        );
        assert_eq!(
            starts("count(limit_ratio(-1.1, http_requests) and http_requests)"),
            [
                " (1:1)", " (1:7)", " (1:7)", " (1:19)", " (1:25)", " (1:44)"
            ]
        );
        assert_eq!(
            starts(
                "sum by (job) (\n  rate(x{a=~\"[(]\"}[5m] offset -1m @ start())\n) / on(job) group_left (b) fill(0) sum(y)"
            ),
            [" (1:1)", " (1:1)", " (2:3)", " (2:8)", " (3:36)", " (3:40)"]
        );
        assert_eq!(
            starts("max_over_time((a - 1e+3)[1h:5m] @ 100) # comment"),
            [
                " (1:1)", " (1:15)", " (1:15)", " (1:16)", " (1:16)", " (1:20)"
            ]
        );
        // A metric named like a modifier is not one.
        assert_eq!(
            starts("a + fill{x=\"1\"} * on(j) b"),
            [" (1:1)", " (1:1)", " (1:5)", " (1:5)", " (1:25)"]
        );
        assert_eq!(
            starts("topk(3, -foo) or vector(time())"),
            [
                " (1:1)", " (1:1)", " (1:6)", " (1:9)", " (1:10)", " (1:18)", " (1:25)"
            ]
        );
    }

    proptest::proptest! {
        /// Any text, parsed or not, is split without a panic, and every token lies on
        /// character boundaries (positions are taken from them).
        #[test]
        fn any_text_splits_into_tokens(q in "\\PC{0,40}|[a-z(){}\\[\\]\"'`#+\\-*/<>=!~:.,@0-9e\\\\ \n]{0,40}") {
            for t in tokens(&q) {
                proptest::prop_assert!(q.is_char_boundary(t.start));
                proptest::prop_assert_eq!(&q[t.start..t.start + t.text.len()], t.text);
            }
            if let Ok(e) = promql_parser::parser::parse(&q) {
                let p = Positions::of(&q, &e);
                let _ = p.suffix(node_key(&e));
            }
        }
    }

    #[test]
    fn a_query_the_walk_does_not_follow_gives_no_positions() {
        let q = "foo";
        let e = promql_parser::parser::parse(q).unwrap();
        let p = Positions::of("foo bar", &e);
        assert_eq!(p.suffix(node_key(&e)), "");
        let p = Positions::of(q, &e);
        assert_eq!(p.suffix(node_key(&e)), " (1:1)");
    }
}
