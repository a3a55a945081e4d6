//! Byte escapes in string literals.
//!
//! Prometheus reads `"\xc3\xa9"` (and the octal `"\303\251"`) as the two bytes of `é`,
//! and `"\xff"` as one byte that is not UTF-8; `promql-parser` reads each byte escape
//! as the character of that number (`Ã©`, `ÿ`). Before parsing, each run of byte
//! escapes with a byte of 0x80 or more is rewritten as `\U` escapes of the characters
//! its bytes spell, and each byte that is not part of a UTF-8 sequence as a marker
//! character (`MARKER_BASE` plus the byte), from the last private-use plane. The label
//! names of `count_values`, `label_replace` and `label_join` refuse it
//! ([`valid_label_name`]; grouping labels and matcher names do not check it), error
//! messages show it as Prometheus does ([`go_quoted`]), and string results and label
//! values built from it get the replacement character, as Go's JSON encoder writes an
//! invalid byte ([`shown`]). A character typed in the query that falls among the
//! markers (U+10FF00 to U+10FFFF) is taken for one.

use super::position::{Kind, Rewritten, splice, tokens};

/// The marker of byte `b` is `MARKER_BASE + b`.
const MARKER_BASE: u32 = 0x10_FF00;

fn marked_byte(c: char) -> Option<u8> {
    u32::from(c)
        .checked_sub(MARKER_BASE)
        .and_then(|b| u8::try_from(b).ok())
}

/// The query with its byte escapes rewritten (the query itself when it has none of
/// 0x80 or more).
pub(crate) fn mark(query: &str) -> Rewritten<'_> {
    let mut edits = Vec::new();
    for t in tokens(query) {
        if t.kind == Kind::Str && !t.text.starts_with('`') && t.text.contains('\\') {
            literal_edits(t.text, t.start, &mut edits);
        }
    }
    splice(query, edits)
}

/// A byte escape at the start of `s` (which begins after a backslash): its byte and
/// length, or `None` for any other escape.
fn byte_escape(s: &[u8]) -> Option<(u8, usize)> {
    let (digits, radix) = match s.first()? {
        b'x' => (s.get(1..3)?, 16),
        b'0'..=b'7' => (s.get(..3)?, 8),
        _ => return None,
    };
    if !digits.iter().all(|&d| char::from(d).is_digit(radix)) {
        return None;
    }
    let v = u32::from_str_radix(std::str::from_utf8(digits).ok()?, radix).ok()?;
    // `x` and two hex digits, or three octal digits.
    Some((u8::try_from(v).ok()?, 3))
}

/// The edits for one quoted literal starting at `at` in the query.
fn literal_edits(lit: &str, at: usize, edits: &mut Vec<(usize, usize, String)>) {
    let b = lit.as_bytes();
    let mut i = 1;
    // The current run of byte escapes: where it starts and its bytes.
    let mut run: Option<(usize, Vec<u8>)> = None;
    let mut flush = |run: &mut Option<(usize, Vec<u8>)>, end: usize| {
        if let Some((start, bytes)) = run.take()
            && bytes.iter().any(|&x| x >= 0x80)
        {
            edits.push((at + start, at + end, spelled(&bytes)));
        }
    };
    while i < b.len() {
        if b[i] != b'\\' {
            flush(&mut run, i);
            i += 1;
            continue;
        }
        match byte_escape(&b[i + 1..]) {
            Some((byte, len)) => {
                run.get_or_insert_with(|| (i, Vec::new())).1.push(byte);
                i += 1 + len;
            }
            None => {
                flush(&mut run, i);
                // Any other escape: the backslash and the character after it.
                i += 2;
            }
        }
    }
    flush(&mut run, b.len());
}

/// `\U` escapes of the characters `bytes` spell, with a marker for each byte outside a
/// UTF-8 sequence.
fn spelled(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push_str(&format!("\\U{:08X}", u32::from(c)));
        }
        for &x in chunk.invalid() {
            out.push_str(&format!("\\U{:08X}", MARKER_BASE + u32::from(x)));
        }
    }
    out
}

/// `text` parsed with its byte escapes read as Prometheus reads them (for selectors
/// given apart from a query, such as `match[]`).
pub(crate) fn parse(text: &str) -> Result<promql_parser::parser::Expr, String> {
    promql_parser::parser::parse(&mark(text).text)
}

/// A label name Prometheus accepts: not empty, and valid UTF-8 (no marker; invalid
/// UTF-8 in a request's query arrives as replacement characters).
pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == '\u{fffd}' || marked_byte(c).is_some())
}

/// `s` as Go's `%q` writes it: in double quotes, with `\"`, `\\`, the short escapes of
/// control characters, and `\xNN` for other control characters and for marked bytes.
pub(crate) fn go_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => match marked_byte(c) {
                Some(b) => out.push_str(&format!("\\x{b:02x}")),
                None => out.push(c),
            },
        }
    }
    out.push('"');
    out
}

/// `s` as Prometheus shows it unquoted in a JSON answer: a marked byte becomes the
/// replacement character, as Go's JSON encoder writes invalid UTF-8.
pub(crate) fn shown(s: &str) -> String {
    s.chars()
        .map(|c| marked_byte(c).map_or(c, |_| '\u{fffd}'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed_string(q: &str) -> String {
        match parse(q).unwrap() {
            promql_parser::parser::Expr::StringLiteral(s) => s.val,
            e => panic!("not a string: {e:?}"),
        }
    }

    #[test]
    fn byte_escapes_spell_utf8_as_prometheus_reads_them() {
        assert_eq!(parsed_string(r#""\xc3\xa9""#), "é");
        assert_eq!(parsed_string(r#"'\303\251'"#), "é");
        assert_eq!(
            parsed_string(r#""a\xc3\xa9\x41\n\xe2\x82\xacz""#),
            "aéA\n€z"
        );
        // Escapes below 0x80 and other escapes are left to the parser.
        assert_eq!(mark(r#""\x41\u00e9\\x""#).text, r#""\x41\u00e9\\x""#);
        // Raw strings have no escapes.
        assert_eq!(mark(r#"`\xc3\xa9`"#).text, r#"`\xc3\xa9`"#);
    }

    #[test]
    fn selectors_given_apart_decode_byte_escapes() {
        let promql_parser::parser::Expr::VectorSelector(vs) =
            parse(r#"{job="caf\xc3\xa9"}"#).unwrap()
        else {
            panic!("not a selector");
        };
        assert_eq!(vs.matchers.matchers[0].value, "café");
    }

    #[test]
    fn bytes_outside_utf8_become_markers_no_label_name_accepts() {
        let s = parsed_string(r#""a\xc5z""#);
        assert!(!valid_label_name(&s));
        assert_eq!(go_quoted(&s), r#""a\xc5z""#);
        assert_eq!(shown(&s), "a\u{fffd}z");
        let s = parsed_string(r#""\xff\xc3\xa9\xc3""#);
        assert_eq!(go_quoted(&s), r#""\xffé\xc3""#);
        assert!(valid_label_name("é"));
        assert!(!valid_label_name(""));
        assert_eq!(go_quoted("a\"\\\t\u{1}"), r#""a\"\\\t\x01""#);
    }

    #[test]
    fn offsets_map_back_over_the_rewrite() {
        let q = r#"label_replace(m, "\xff", "", "src", "(.*)") + x"#;
        let m = mark(q);
        let plus = m.text.find('+').unwrap();
        assert_eq!(m.back(plus), q.find('+').unwrap());
    }
}
