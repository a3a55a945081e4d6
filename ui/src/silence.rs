//! Silences as the Alertmanager API v2 carries them, and matchers typed as text
//! (`alertname="HighLatency", job=~"api|web", env!="dev"`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// The matcher as typed: `name="value"`, `name!~"re"`, …
    pub fn text(&self) -> String {
        let op = match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        };
        format!("{}{op}{:?}", self.name, self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceStatus {
    pub state: String,
}

/// A silence as `GET /api/v2/silences` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "createdBy", default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    pub status: SilenceStatus,
}

/// Reads matchers separated by commas; values are double-quoted (Go escapes) or bare.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    let mut chars = input
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .chars()
        .peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_'))
                .collect();
        if name.is_empty() {
            return Err(format!(
                "expected a label name at {:?}",
                chars.collect::<String>()
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let op: String =
            std::iter::from_fn(|| chars.next_if(|c| matches!(c, '=' | '!' | '~'))).collect();
        let (is_equal, is_regex) = match op.as_str() {
            "=" => (true, false),
            "!=" => (false, false),
            "=~" => (true, true),
            "!~" => (false, true),
            _ => return Err(format!("{name}: expected =, !=, =~ or !~, found {op:?}")),
        };
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("{name}: the quoted value is not closed")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(c) => v.push(c),
                        None => return Err(format!("{name}: the quoted value is not closed")),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string()
        };
        out.push(Matcher {
            name,
            value,
            is_regex,
            is_equal,
        });
    }
    if out.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    if out
        .iter()
        .all(|m| m.is_equal && !m.is_regex && m.value.is_empty())
    {
        return Err("at least one matcher must not match the empty string".into());
    }
    Ok(out)
}

/// The matchers that silence exactly one alert: one `name="value"` per label.
pub fn matchers_for(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An RFC 3339 UTC timestamp for Unix seconds.
pub fn rfc3339(ts: f64) -> String {
    let (y, mo, d, h, mi, s) = crate::timerange::civil(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_parse_in_every_operator_and_print_back() {
        let m = parse_matchers(r#"alertname="High \"p99\"", job=~"api|web",env!="dev" , x!~bare"#)
            .expect("valid");
        let text: Vec<String> = m.iter().map(Matcher::text).collect();
        assert_eq!(
            text,
            [
                r#"alertname="High \"p99\"""#,
                r#"job=~"api|web""#,
                r#"env!="dev""#,
                r#"x!~"bare""#
            ]
        );
        assert_eq!(parse_matchers(r#"{a="1"}"#).expect("braces").len(), 1);
        assert!(parse_matchers("").is_err());
        assert!(parse_matchers(r#"a="1"#).is_err());
        assert!(parse_matchers(r#"a=="1""#).is_err());
        assert!(parse_matchers(r#"a="""#).is_err(), "matches everything");
        assert!(parse_matchers(r#"="1""#).is_err());
    }

    #[test]
    fn an_alert_gives_matchers_for_each_label() {
        let labels = [
            ("alertname".to_string(), "Down".to_string()),
            ("job".to_string(), "a\"b".to_string()),
        ]
        .into();
        let text = matchers_for(&labels);
        assert_eq!(text, r#"alertname="Down", job="a\"b""#);
        assert_eq!(parse_matchers(&text).expect("round trip")[1].value, "a\"b");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_795_341_600.0), "2026-11-22T10:00:00Z");
    }
}
