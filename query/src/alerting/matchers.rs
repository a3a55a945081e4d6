//! Alertmanager label matchers: `name="value"`, `name=~"regex"`, `name!="v"`,
//! `name!~"re"`, with or without quotes, optionally inside `{…}` and comma-separated
//! (the form of `matchers:` in routes and inhibit rules, amtool and the API's
//! `filter`).

use signalbox_storage::{MatchOp, Matcher};

/// One matcher as text: `name="value"` (regexes with `=~`/`!~`).
pub fn matcher_text(m: &Matcher) -> String {
    let op = match m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::RegexMatch => "=~",
        MatchOp::RegexNoMatch => "!~",
    };
    format!("{}{op}{:?}", m.name, m.value)
}

/// `{a="b", c=~"d"}`, as Alertmanager prints matcher sets in group keys.
pub fn matchers_text(ms: &[Matcher]) -> String {
    let v: Vec<String> = ms.iter().map(matcher_text).collect();
    format!("{{{}}}", v.join(","))
}

fn unquote(v: &str) -> Result<String, String> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or_else(|| format!("unterminated quoted value {v}"))?;
        let mut out = String::new();
        let mut it = inner.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => return Err(format!("bad escape in {v}")),
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    } else {
        Ok(v.to_string())
    }
}

/// Splits on commas that are not inside double quotes.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut esc) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// One matcher.
pub fn parse_matcher(s: &str) -> Result<Matcher, String> {
    let t = s.trim();
    let pos = t
        .find(['=', '!'])
        .ok_or_else(|| format!("bad matcher format: {t}"))?;
    let name = t[..pos].trim();
    let rest = &t[pos..];
    let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
        (MatchOp::RegexMatch, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (MatchOp::RegexNoMatch, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (MatchOp::Equal, v)
    } else {
        return Err(format!("bad matcher format: {t}"));
    };
    let name = name.trim_matches('"');
    if name.is_empty() {
        return Err(format!("bad matcher format: {t}: empty label name"));
    }
    Matcher::new(op, name, unquote(value)?).map_err(|e| e.to_string())
}

/// A list of matchers, optionally in braces (`{a="b",c!="d"}` or `a=b, c!=d`).
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let t = s.trim();
    let t = match t.strip_prefix('{') {
        Some(inner) => inner
            .strip_suffix('}')
            .ok_or_else(|| format!("missing closing brace in {s}"))?,
        None => t,
    };
    split_top(t)
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(parse_matcher)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let ms = parse_matchers(r#"{alertname="Down", severity=~"page|crit", team!=ops,x!~"a,b"}"#)
            .unwrap();
        assert_eq!(ms.len(), 4);
        assert_eq!(ms[0].name, "alertname");
        assert_eq!(ms[1].op, MatchOp::RegexMatch);
        assert!(ms[1].matches("crit") && !ms[1].matches("critical"));
        assert_eq!(ms[2].value, "ops");
        assert_eq!(ms[3].value, "a,b");
        assert_eq!(
            matchers_text(&ms[..2]),
            r#"{alertname="Down",severity=~"page|crit"}"#
        );
        assert!(parse_matcher("nope").is_err());
        assert!(parse_matcher("a=~\"(\"").is_err());
    }
}
