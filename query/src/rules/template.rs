//! Alert label and annotation templates: the part of Go's `text/template` that
//! Prometheus rules use, with Prometheus' template functions.
//!
//! Supported: text and `{{ … }}` actions with `{{-`/`-}}` trimming and comments;
//! pipelines with `|`; variables (`$labels`, `$value`, `$externalLabels`,
//! `$externalURL`, and `$x := …` declarations); fields (`.Labels.job`,
//! `$labels.instance`); string, number and boolean literals; `if`/`else if`/`else`,
//! `with`, `range` over maps and lists (`range $k, $v := $labels`); the Go builtins
//! `printf print println len index eq ne lt le gt ge and or not urlquery html js` and
//! the Prometheus functions `humanize humanize1024 humanizeDuration humanizePercentage
//! humanizeTimestamp title toUpper toLower match reReplaceAll stripPort stripDomain
//! parseDuration externalURL pathPrefix safeHtml args`. Anything else (`query`,
//! `define`, `template`, `block`, …) is rejected when the rule is loaded, with the
//! reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

pub(crate) mod gofmt;
mod humanize;

pub(crate) use humanize::civil_from_days;

/// What the template sees: the alert's labels and value and the server's external
/// labels and URL.
#[derive(Clone, Debug, Default)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

/// A template error, worded as Go's (`template: <name>:<line>: <reason>`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("template: {name}:{line}: {msg}")]
pub struct TemplateError {
    pub name: String,
    pub line: usize,
    pub msg: String,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Str(String),
    Float(f64),
    Int(i64),
    Bool(bool),
    Map(Arc<BTreeMap<String, String>>),
    List(Arc<Vec<Value>>),
    /// The template's dot: `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`.
    Data(Arc<TemplateData>),
    /// A structure with named fields (notification data: `.Status`, `.Alerts`, …).
    Obj(Arc<BTreeMap<String, Value>>),
    Nil,
}

impl Value {
    fn truth(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Float(f) => *f != 0.0,
            Value::Int(i) => *i != 0,
            Value::Bool(b) => *b,
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Data(_) | Value::Obj(_) => true,
            Value::Nil => false,
        }
    }
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Action(Pipe, usize),
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>, usize),
    With(Pipe, Vec<Node>, Vec<Node>, usize),
    Range(Pipe, Vec<Node>, Vec<Node>, usize),
}

#[derive(Clone, Debug)]
struct Pipe {
    decl: Vec<String>,
    /// `=` (assign an existing variable) rather than `:=`.
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Clone, Debug)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Sub(Box<Pipe>, Vec<String>),
}

const FUNCS: &[&str] = &[
    "printf",
    "print",
    "println",
    "len",
    "index",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "urlquery",
    "html",
    "js",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "title",
    "toUpper",
    "toLower",
    "match",
    "reReplaceAll",
    "stripPort",
    "stripDomain",
    "parseDuration",
    "externalURL",
    "pathPrefix",
    "safeHtml",
    "args",
    "join",
    "trimSpace",
];

const PREDECLARED: &[&str] = &["$", "$labels", "$externalLabels", "$externalURL", "$value"];

// ---------------------------------------------------------------------------
// Lexing
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Var(String),
    /// `.a.b` (empty = `.` alone); also fields after a variable or `)`.
    Field(Vec<String>),
    Str(String),
    Num(String),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

/// Splits the text into literal text and action bodies (with their line).
/// A piece of template source: is it an action, its text, its line.
type Item = (bool, String, usize);
/// A parse error: line and reason.
type ParseError = (usize, String);

fn split_actions(src: &str) -> Result<Vec<Item>, ParseError> {
    let mut out: Vec<(bool, String, usize)> = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let text = if trim_next { rest.trim_start() } else { rest };
            out.push((false, text.to_string(), line));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let left_trim = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after.starts_with("-\r");
        if left_trim {
            text = text.trim_end();
        }
        out.push((false, text.to_string(), line));
        line += rest[..open].matches('\n').count();
        let body_start = if left_trim { &after[1..] } else { after };
        let close = find_close(body_start).ok_or((line, "unclosed action".to_string()))?;
        let mut body = &body_start[..close];
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next = true;
        }
        out.push((true, body.to_string(), line));
        line += body_start[..close].matches('\n').count();
        rest = &body_start[close + 2..];
    }
    Ok(out)
}

/// Position of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(body: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let fields = |i: &mut usize| -> Vec<String> {
        let mut f = Vec::new();
        while *i < cs.len() && cs[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < cs.len() && is_ident(cs[j]) {
                j += 1;
            }
            if j == start {
                break;
            }
            f.push(cs[start..j].iter().collect());
            *i = j;
        }
        f
    };
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
                let f = fields(&mut i);
                if !f.is_empty() {
                    out.push(Tok::Field(f));
                }
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if cs.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '$' => {
                let start = i;
                i += 1;
                while i < cs.len() && is_ident(cs[i]) {
                    i += 1;
                }
                out.push(Tok::Var(cs[start..i].iter().collect()));
                let f = fields(&mut i);
                if !f.is_empty() {
                    out.push(Tok::Field(f));
                }
            }
            '.' if cs.get(i + 1).is_none_or(|c| !c.is_ascii_digit()) => {
                let f = fields(&mut i);
                if f.is_empty() {
                    i += 1;
                }
                out.push(Tok::Field(f));
            }
            '"' => {
                let start = i;
                i += 1;
                while i < cs.len() && cs[i] != '"' {
                    i += if cs[i] == '\\' { 2 } else { 1 };
                }
                if i >= cs.len() {
                    return Err("unterminated quoted string".into());
                }
                i += 1;
                let lit: String = cs[start..i].iter().collect();
                out.push(Tok::Str(unquote(&lit)?));
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while i < cs.len() && cs[i] != '`' {
                    i += 1;
                }
                if i >= cs.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(cs[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                i += 1;
                while i < cs.len() && (cs[i].is_ascii_alphanumeric() || matches!(cs[i], '.' | '_'))
                    || (i < cs.len()
                        && matches!(cs[i], '+' | '-')
                        && matches!(cs[i - 1], 'e' | 'E'))
                {
                    i += 1;
                }
                out.push(Tok::Num(cs[start..i].iter().collect()));
            }
            c if is_ident(c) => {
                let start = i;
                while i < cs.len() && is_ident(cs[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(cs[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(out)
}

/// A Go double-quoted string literal.
fn unquote(lit: &str) -> Result<String, String> {
    let inner = &lit[1..lit.len() - 1];
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some(o) => return Err(format!("invalid syntax in string: unknown escape \\{o}")),
            None => return Err("invalid syntax in string".into()),
        }
    }
    Ok(out)
}

fn parse_number(s: &str) -> Result<Value, String> {
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Ok(Value::Int(if neg { -i } else { i }));
    }
    clean
        .parse::<f64>()
        .map(Value::Float)
        .map_err(|_| format!("bad number syntax: {s:?}"))
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

enum Block {
    If,
    With,
    Range,
}

struct Parser {
    items: Vec<(bool, String, usize)>,
    pos: usize,
    scopes: Vec<Vec<String>>,
}

enum Stop {
    End,
    Else(Option<Pipe>),
    Eof,
}

impl Parser {
    fn declared(&self, v: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|d| d == v))
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), (usize, String)> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let (is_action, body, line) = self.items[self.pos].clone();
            self.pos += 1;
            if !is_action {
                if !body.is_empty() {
                    nodes.push(Node::Text(body));
                }
                continue;
            }
            let trimmed = body.trim();
            if trimmed.starts_with("/*") {
                if !trimmed.ends_with("*/") {
                    return Err((line, "unclosed comment".into()));
                }
                continue;
            }
            let toks = lex(&body).map_err(|e| (line, e))?;
            match toks.first() {
                None => return Err((line, "missing value for command".into())),
                Some(Tok::Ident(k)) if k == "end" => {
                    if toks.len() > 1 {
                        return Err((line, "unexpected token in end".into()));
                    }
                    return Ok((nodes, Stop::End, line));
                }
                Some(Tok::Ident(k)) if k == "else" => {
                    let cond = match toks.get(1) {
                        None => None,
                        Some(Tok::Ident(k)) if k == "if" => {
                            Some(self.pipe(&toks[2..], line, false)?)
                        }
                        Some(_) => return Err((line, "unexpected token in else".into())),
                    };
                    return Ok((nodes, Stop::Else(cond), line));
                }
                Some(Tok::Ident(k)) if k == "if" || k == "with" || k == "range" => {
                    let kind = match k.as_str() {
                        "if" => Block::If,
                        "with" => Block::With,
                        _ => Block::Range,
                    };
                    nodes.push(self.block(kind, &toks[1..], line)?);
                }
                Some(Tok::Ident(k))
                    if matches!(
                        k.as_str(),
                        "define" | "template" | "block" | "break" | "continue"
                    ) =>
                {
                    return Err((
                        line,
                        format!("{{{{{k}}}}} is not supported in alert templates"),
                    ));
                }
                Some(_) => {
                    let p = self.pipe(&toks, line, true)?;
                    nodes.push(Node::Action(p, line));
                }
            }
        }
        Ok((nodes, Stop::Eof, 0))
    }

    fn block(&mut self, kind: Block, toks: &[Tok], line: usize) -> Result<Node, (usize, String)> {
        self.scopes.push(Vec::new());
        let pipe = self.pipe(toks, line, true)?;
        let (body, stop, l) = self.list()?;
        let mut branches = vec![(pipe, body)];
        let mut else_ = Vec::new();
        let mut stop = stop;
        loop {
            match stop {
                Stop::End => break,
                Stop::Eof => {
                    return Err((line, "unexpected EOF: missing {{end}}".into()));
                }
                Stop::Else(Some(cond)) if matches!(kind, Block::If) => {
                    let (b, s, _) = self.list()?;
                    branches.push((cond, b));
                    stop = s;
                }
                Stop::Else(Some(_)) => {
                    return Err((l, "else if is only allowed after if".into()));
                }
                Stop::Else(None) => {
                    let (b, s, l2) = self.list()?;
                    else_ = b;
                    if !matches!(s, Stop::End) {
                        return Err((l2.max(l), "expected end after else".into()));
                    }
                    break;
                }
            }
        }
        self.scopes.pop();
        Ok(match kind {
            Block::If => Node::If(branches, else_, line),
            Block::With => {
                let (p, b) = branches.remove(0);
                Node::With(p, b, else_, line)
            }
            Block::Range => {
                let (p, b) = branches.remove(0);
                Node::Range(p, b, else_, line)
            }
        })
    }

    fn pipe(
        &mut self,
        toks: &[Tok],
        line: usize,
        allow_decl: bool,
    ) -> Result<Pipe, (usize, String)> {
        let mut toks = toks;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$k, $v :=`
        let decl_end = toks
            .iter()
            .position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(end) = decl_end
            && allow_decl
            && toks[..end]
                .iter()
                .all(|t| matches!(t, Tok::Var(_) | Tok::Comma))
        {
            assign = matches!(toks[end], Tok::Assign);
            for t in &toks[..end] {
                if let Tok::Var(v) = t {
                    decl.push(v.clone());
                }
            }
            if assign {
                for v in &decl {
                    if !self.declared(v) {
                        return Err((line, format!("undefined variable {v:?}")));
                    }
                }
            }
            toks = &toks[end + 1..];
        }
        let (cmds, used) = self.commands(toks, line)?;
        if used != toks.len() {
            return Err((line, "unexpected \")\" in command".into()));
        }
        if !assign && let Some(scope) = self.scopes.last_mut() {
            scope.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// Commands separated by `|`, up to a closing `)` or the end. Returns the number
    /// of tokens consumed (not counting the `)`).
    fn commands(
        &mut self,
        toks: &[Tok],
        line: usize,
    ) -> Result<(Vec<Vec<Arg>>, usize), ParseError> {
        let mut cmds = Vec::new();
        let mut cur: Vec<Arg> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Close => break,
                Tok::Pipe => {
                    if cur.is_empty() {
                        return Err((line, "missing command".into()));
                    }
                    cmds.push(std::mem::take(&mut cur));
                    i += 1;
                    continue;
                }
                Tok::Open => {
                    let (sub, used) = self.commands(&toks[i + 1..], line)?;
                    i += 1 + used;
                    if toks.get(i) != Some(&Tok::Close) {
                        return Err((line, "unclosed left paren".into()));
                    }
                    i += 1;
                    let fields = match toks.get(i) {
                        Some(Tok::Field(f)) => {
                            i += 1;
                            f.clone()
                        }
                        _ => Vec::new(),
                    };
                    cur.push(Arg::Sub(
                        Box::new(Pipe {
                            decl: Vec::new(),
                            assign: false,
                            cmds: sub,
                        }),
                        fields,
                    ));
                    continue;
                }
                Tok::Var(v) => {
                    if !self.declared(v) {
                        return Err((line, format!("undefined variable {v:?}")));
                    }
                    let fields = match toks.get(i + 1) {
                        Some(Tok::Field(f)) => {
                            i += 1;
                            f.clone()
                        }
                        _ => Vec::new(),
                    };
                    cur.push(Arg::Var(v.clone(), fields));
                }
                Tok::Field(f) => cur.push(Arg::Dot(f.clone())),
                Tok::Str(s) => cur.push(Arg::Lit(Value::Str(s.clone()))),
                Tok::Num(n) => cur.push(Arg::Lit(parse_number(n).map_err(|e| (line, e))?)),
                Tok::Ident(id) => match id.as_str() {
                    "true" => cur.push(Arg::Lit(Value::Bool(true))),
                    "false" => cur.push(Arg::Lit(Value::Bool(false))),
                    "nil" => cur.push(Arg::Lit(Value::Nil)),
                    "query" | "first" | "label" | "value" | "strvalue" | "sortByLabel"
                    | "toTime" | "tableLink" | "graphLink" => {
                        return Err((
                            line,
                            format!(
                                "function {id:?} is not supported in SignalBox alert templates"
                            ),
                        ));
                    }
                    f if FUNCS.contains(&f) => cur.push(Arg::Func(f.to_string())),
                    other => return Err((line, format!("function {other:?} not defined"))),
                },
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err((line, "unexpected declaration in command".into()));
                }
            }
            i += 1;
        }
        if cur.is_empty() {
            return Err((line, "missing value for command".into()));
        }
        cmds.push(cur);
        Ok((cmds, i))
    }
}

impl Template {
    /// Parses `text`; `name` is used in errors (Prometheus uses `__alert_<name>`).
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let err = |(line, msg): (usize, String)| TemplateError {
            name: name.to_string(),
            line,
            msg,
        };
        let items = split_actions(text).map_err(err)?;
        let mut p = Parser {
            items,
            pos: 0,
            scopes: vec![PREDECLARED.iter().map(|s| s.to_string()).collect()],
        };
        let (nodes, stop, line) = p.list().map_err(err)?;
        match stop {
            Stop::Eof => Ok(Template {
                name: name.to_string(),
                nodes,
            }),
            Stop::End => Err(err((line, "unexpected {{end}}".into()))),
            Stop::Else(_) => Err(err((line, "unexpected {{else}}".into()))),
        }
    }

    /// Runs the template over `data`.
    pub fn render(&self, data: &TemplateData) -> Result<String, TemplateError> {
        let data = Arc::new(data.clone());
        let mut ex = Exec {
            vars: vec![
                ("$".into(), Value::Data(data.clone())),
                ("$labels".into(), Value::Map(Arc::new(data.labels.clone()))),
                (
                    "$externalLabels".into(),
                    Value::Map(Arc::new(data.external_labels.clone())),
                ),
                ("$externalURL".into(), Value::Str(data.external_url.clone())),
                ("$value".into(), Value::Float(data.value)),
            ],
            data: data.clone(),
            out: String::new(),
        };
        ex.walk(&self.nodes, &Value::Data(data))
            .map_err(|(line, msg)| TemplateError {
                name: self.name.clone(),
                line,
                msg,
            })?;
        Ok(ex.out)
    }
}

impl Template {
    /// Runs the template with `dot` as `.` and `$` (notification templates).
    pub(crate) fn render_with(&self, dot: Value) -> Result<String, TemplateError> {
        let mut ex = Exec {
            vars: vec![("$".into(), dot.clone())],
            data: Arc::new(TemplateData::default()),
            out: String::new(),
        };
        ex.walk(&self.nodes, &dot)
            .map_err(|(line, msg)| TemplateError {
                name: self.name.clone(),
                line,
                msg,
            })?;
        Ok(ex.out)
    }
}

/// Parses and renders in one go.
pub fn expand(name: &str, text: &str, data: &TemplateData) -> Result<String, TemplateError> {
    Template::parse(name, text)?.render(data)
}

// ---------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------

struct Exec {
    vars: Vec<(String, Value)>,
    data: Arc<TemplateData>,
    out: String,
}

type ExecResult<T> = Result<T, (usize, String)>;

impl Exec {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> ExecResult<()> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p, line) => {
                    let v = self.pipe(p, dot, *line)?;
                    if p.decl.is_empty() {
                        let _ = write!(self.out, "{}", gofmt::display(&v));
                    }
                }
                Node::If(branches, else_, line) => {
                    let mark = self.vars.len();
                    let mut done = false;
                    for (cond, body) in branches {
                        if self.pipe(cond, dot, *line)?.truth() {
                            self.walk(body, dot)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.walk(else_, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With(p, body, else_, line) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot, *line)?;
                    if v.truth() {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(else_, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, else_, line) => {
                    let mark = self.vars.len();
                    let mut p2 = p.clone();
                    let decl = std::mem::take(&mut p2.decl);
                    let v = self.pipe(&p2, dot, *line)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::Map(m) => m
                            .iter()
                            .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                            .collect(),
                        Value::List(l) => l
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                            .collect(),
                        Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil => Vec::new(),
                        other => {
                            return Err((
                                *line,
                                format!("range can't iterate over {}", gofmt::display(other)),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.walk(else_, dot)?;
                    }
                    for (k, v) in items {
                        let inner = self.vars.len();
                        match decl.as_slice() {
                            [] => {}
                            [one] => self.vars.push((one.clone(), v.clone())),
                            [a, b, ..] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), v.clone()));
                            }
                        }
                        self.walk(body, &v)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn var(&self, name: &str, line: usize) -> ExecResult<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| (line, format!("undefined variable {name:?}")))
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value, line: usize) -> ExecResult<Value> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev, line)?);
        }
        let v = prev.unwrap_or(Value::Nil);
        for d in &p.decl {
            if p.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == d) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &Value,
        prev: Option<Value>,
        line: usize,
    ) -> ExecResult<Value> {
        if let Some(Arg::Func(f)) = cmd.first() {
            let mut args = Vec::with_capacity(cmd.len());
            // `and`/`or` look at their arguments lazily in Go; evaluating all of them
            // is the same here, as no supported function has side effects.
            for a in &cmd[1..] {
                args.push(self.arg(a, dot, line)?);
            }
            if let Some(p) = prev {
                args.push(p);
            }
            return self.call(f, args, line);
        }
        if cmd.len() > 1 || prev.is_some() {
            return Err((line, "can't give argument to non-function".into()));
        }
        self.arg(&cmd[0], dot, line)
    }

    fn arg(&mut self, a: &Arg, dot: &Value, line: usize) -> ExecResult<Value> {
        match a {
            Arg::Dot(fields) => field_chain(dot.clone(), fields, line),
            Arg::Var(v, fields) => field_chain(self.var(v, line)?, fields, line),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(p, fields) => {
                let v = self.pipe(p, dot, line)?;
                field_chain(v, fields, line)
            }
            Arg::Func(f) => self.call(f, Vec::new(), line),
        }
    }

    fn call(&self, f: &str, args: Vec<Value>, line: usize) -> ExecResult<Value> {
        let e = |m: String| (line, format!("error calling {f}: {m}"));
        let want = |n: usize| -> ExecResult<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err((
                    line,
                    format!("wrong number of args for {f}: want {n} got {}", args.len()),
                ))
            }
        };
        let s = |v: &Value| match v {
            Value::Str(s) => s.clone(),
            other => gofmt::display(other),
        };
        Ok(match f {
            "printf" => {
                let Some((fmt, rest)) = args.split_first() else {
                    return Err((
                        line,
                        "wrong number of args for printf: want at least 1 got 0".into(),
                    ));
                };
                Value::Str(gofmt::sprintf(&s(fmt), rest))
            }
            "print" | "println" => {
                let mut out = String::new();
                for (i, a) in args.iter().enumerate() {
                    let both_non_str = i > 0
                        && !matches!(a, Value::Str(_))
                        && !matches!(args[i - 1], Value::Str(_));
                    if i > 0 && (f == "println" || both_non_str) {
                        out.push(' ');
                    }
                    out.push_str(&gofmt::display(a));
                }
                if f == "println" {
                    out.push('\n');
                }
                Value::Str(out)
            }
            "len" => {
                want(1)?;
                Value::Int(match &args[0] {
                    Value::Str(s) => s.len() as i64,
                    Value::Map(m) => m.len() as i64,
                    Value::List(l) => l.len() as i64,
                    other => return Err(e(format!("len of type {}", gofmt::display(other)))),
                })
            }
            "index" => {
                if args.is_empty() {
                    return Err(e("index of untyped nil".into()));
                }
                let mut cur = args[0].clone();
                for k in &args[1..] {
                    cur = match (&cur, k) {
                        (Value::Map(m), key) => {
                            Value::Str(m.get(&s(key)).cloned().unwrap_or_default())
                        }
                        (Value::List(l), Value::Int(i)) => l
                            .get(usize::try_from(*i).unwrap_or(usize::MAX))
                            .cloned()
                            .ok_or_else(|| e(format!("index out of range: {i}")))?,
                        _ => return Err(e("can't index item".into())),
                    };
                }
                cur
            }
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                if args.len() < 2 {
                    return Err(e("missing argument for comparison".into()));
                }
                let ord = |a: &Value, b: &Value| -> ExecResult<std::cmp::Ordering> {
                    match (num(a), num(b)) {
                        (Some(x), Some(y)) if !matches!((a, b), (Value::Str(_), Value::Str(_))) => {
                            x.partial_cmp(&y)
                                .ok_or_else(|| e("NaN in comparison".into()))
                        }
                        _ => match (a, b) {
                            (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
                            (Value::Bool(x), Value::Bool(y)) if matches!(f, "eq" | "ne") => {
                                Ok(x.cmp(y))
                            }
                            _ => Err(e("incompatible types for comparison".into())),
                        },
                    }
                };
                use std::cmp::Ordering::*;
                let r = match f {
                    "eq" => {
                        let mut any = false;
                        for b in &args[1..] {
                            if ord(&args[0], b)? == Equal {
                                any = true;
                            }
                        }
                        any
                    }
                    "ne" => ord(&args[0], &args[1])? != Equal,
                    "lt" => ord(&args[0], &args[1])? == Less,
                    "le" => ord(&args[0], &args[1])? != Greater,
                    "gt" => ord(&args[0], &args[1])? == Greater,
                    _ => ord(&args[0], &args[1])? != Less,
                };
                Value::Bool(r)
            }
            "and" => {
                let mut last = Value::Nil;
                for a in args {
                    let t = a.truth();
                    last = a;
                    if !t {
                        break;
                    }
                }
                last
            }
            "or" => {
                let mut last = Value::Nil;
                for a in args {
                    let t = a.truth();
                    last = a;
                    if t {
                        break;
                    }
                }
                last
            }
            "not" => {
                want(1)?;
                Value::Bool(!args[0].truth())
            }
            "urlquery" => Value::Str(
                form_urlencoded::byte_serialize(args.iter().map(s).collect::<String>().as_bytes())
                    .collect(),
            ),
            "html" => Value::Str(html_escape(&args.iter().map(s).collect::<String>())),
            "js" => Value::Str(js_escape(&args.iter().map(s).collect::<String>())),
            "safeHtml" => {
                want(1)?;
                Value::Str(s(&args[0]))
            }
            "args" => Value::List(Arc::new(args)),
            "join" => {
                want(2)?;
                let items: Vec<String> = match &args[1] {
                    Value::List(l) => l.iter().map(s).collect(),
                    Value::Map(m) => m.values().cloned().collect(),
                    other => vec![s(other)],
                };
                Value::Str(items.join(&s(&args[0])))
            }
            "trimSpace" => {
                want(1)?;
                Value::Str(s(&args[0]).trim().to_string())
            }
            "externalURL" => Value::Str(self.data.external_url.clone()),
            "pathPrefix" => Value::Str(url_path(&self.data.external_url)),
            "title" | "toUpper" | "toLower" | "stripPort" | "stripDomain" | "parseDuration" => {
                want(1)?;
                let t = s(&args[0]);
                match f {
                    "title" => Value::Str(humanize::title(&t)),
                    "toUpper" => Value::Str(t.to_uppercase()),
                    "toLower" => Value::Str(t.to_lowercase()),
                    "stripPort" => Value::Str(humanize::strip_port(&t)),
                    "stripDomain" => Value::Str(humanize::strip_domain(&t)),
                    _ => Value::Float(
                        crate::promql::notation::parse_duration_ms(&t).map_err(e)? as f64 / 1000.0,
                    ),
                }
            }
            "match" => {
                want(2)?;
                let re = regex::Regex::new(&s(&args[0])).map_err(|x| e(x.to_string()))?;
                Value::Bool(re.is_match(&s(&args[1])))
            }
            "reReplaceAll" => {
                want(3)?;
                let re = regex::Regex::new(&s(&args[0])).map_err(|x| e(x.to_string()))?;
                Value::Str(
                    re.replace_all(&s(&args[2]), s(&args[1]).as_str())
                        .into_owned(),
                )
            }
            _ => {
                // humanize*: one number (or a string holding one).
                want(1)?;
                let v = num(&args[0])
                    .ok_or_else(|| e(format!("can't convert {:?} to float", s(&args[0]))))?;
                Value::Str(match f {
                    "humanize" => humanize::humanize(v),
                    "humanize1024" => humanize::humanize1024(v),
                    "humanizeDuration" => humanize::duration(v),
                    "humanizePercentage" => humanize::percentage(v),
                    "humanizeTimestamp" => humanize::timestamp(v),
                    other => return Err((line, format!("function {other:?} not defined"))),
                })
            }
        })
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Int(i) => Some(*i as f64),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field_chain(mut v: Value, fields: &[String], line: usize) -> ExecResult<Value> {
    for f in fields {
        v = match &v {
            Value::Map(m) => Value::Str(m.get(f).cloned().unwrap_or_default()),
            Value::Data(d) => match f.as_str() {
                "Labels" => Value::Map(Arc::new(d.labels.clone())),
                "ExternalLabels" => Value::Map(Arc::new(d.external_labels.clone())),
                "ExternalURL" => Value::Str(d.external_url.clone()),
                "Value" => Value::Float(d.value),
                other => {
                    return Err((
                        line,
                        format!("can't evaluate field {other} in type *template.tmplData"),
                    ));
                }
            },
            Value::Obj(o) => o
                .get(f)
                .cloned()
                .ok_or_else(|| (line, format!("can't evaluate field {f} in this structure")))?,
            // `.Alerts.Firing` / `.Alerts.Resolved`: the alerts in that state.
            Value::List(l) if f == "Firing" || f == "Resolved" => {
                let want = if f == "Firing" { "firing" } else { "resolved" };
                Value::List(Arc::new(
                    l.iter()
                        .filter(|a| matches!(a, Value::Obj(o) if matches!(o.get("Status"), Some(Value::Str(s)) if s == want)))
                        .cloned()
                        .collect(),
                ))
            }
            Value::Nil => Value::Nil,
            other => {
                return Err((
                    line,
                    format!("can't evaluate field {f} in type {}", gofmt::display(other)),
                ));
            }
        };
    }
    Ok(v)
}

fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].to_string(),
        None => String::new(),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\u000A"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "template/tests.rs"]
mod tests;
