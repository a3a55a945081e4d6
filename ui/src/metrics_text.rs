//! Reading the server's own `/metrics` (Prometheus text or OpenMetrics) for the status
//! page: samples with their labels; comments and malformed lines are skipped.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn parse(text: &str) -> Vec<TextSample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<TextSample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let end = loop {
            while chars
                .next_if(|(_, c)| c.is_whitespace() || *c == ',')
                .is_some()
            {}
            match chars.peek() {
                None => return None,
                Some((i, '}')) => break *i,
                _ => {}
            }
            let key: String =
                std::iter::from_fn(|| chars.next_if(|(_, c)| *c != '=').map(|(_, c)| c)).collect();
            chars.next(); // '='
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            }
            labels.insert(key.trim().to_string(), value);
        };
        rest = &body[end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(TextSample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_labels_and_odd_lines_skipped() {
        let s = parse(
            "# HELP x y\n# TYPE signalbox_ingest_requests counter\n\
             signalbox_ingest_requests_total{signal=\"logs\",transport=\"grpc\"} 12\n\
             signalbox_parts 3\n\
             weird{a=\"x\\\"y\",b=\"\"} +Inf 1700000000\n\
             broken{a=\"x} 1\n\
             # EOF\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "signalbox_ingest_requests_total");
        assert_eq!(s[0].labels["transport"], "grpc");
        assert_eq!(s[0].value, 12.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("signalbox_parts", 3.0));
        assert_eq!(s[2].labels["a"], "x\"y");
        assert!(s[2].value.is_infinite());
    }
}
