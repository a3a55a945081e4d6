//! Dashboard variables in queries: `$name`, `${name}`, `[[name]]`, and the built-ins
//! `$__interval`, `$__rate_interval` and `$__range`, as Grafana expands them.

/// The chosen values of one variable. `all` means every value was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub name: String,
    pub values: Vec<String>,
    pub all: bool,
}

impl Selection {
    /// The text that stands for the variable: the value itself when there is one,
    /// else `(a|b|c)` with regex characters escaped, as Grafana formats several
    /// values for Prometheus and Loki (used with `=~`). The escape is written for a
    /// double-quoted string: `\\.` there is the regex `\.`.
    fn text(&self) -> String {
        match self.values.as_slice() {
            [one] if !self.all => one.clone(),
            [] => String::new(),
            many => format!(
                "({})",
                many.iter()
                    .map(|v| regex_escape(v))
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        }
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Whole seconds as a duration PromQL and LogQL accept.
fn secs(s: f64) -> String {
    format!("{}s", s.round().max(1.0) as u64)
}

/// Expands the variables in `expr`. `step_s` is the panel's step (`$__interval`),
/// `range_s` its time span (`$__range`); `$__rate_interval` is
/// max(4 × 15 s, step + 15 s), Grafana's rule with the default scrape interval.
pub fn interpolate(expr: &str, vars: &[Selection], step_s: f64, range_s: f64) -> String {
    let builtins = [
        ("__rate_interval", secs((step_s + 15.0).max(60.0))),
        (
            "__interval_ms",
            format!("{}", (step_s * 1000.0).round() as u64),
        ),
        ("__interval", secs(step_s)),
        ("__range", secs(range_s)),
    ];
    let value_of = |name: &str| -> Option<String> {
        builtins
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| vars.iter().find(|v| v.name == name).map(Selection::text))
    };
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // `${name}` / `${name:format}`
        if let Some(body) = rest.strip_prefix("${")
            && let Some(end) = body.find('}')
        {
            let name = body[..end].split(':').next().unwrap_or("");
            if let Some(v) = value_of(name) {
                out.push_str(&v);
                rest = &body[end + 1..];
                continue;
            }
        }
        // `[[name]]`
        if let Some(body) = rest.strip_prefix("[[")
            && let Some(end) = body.find("]]")
            && body[..end].chars().all(word)
            && let Some(v) = value_of(&body[..end])
        {
            out.push_str(&v);
            rest = &body[end + 2..];
            continue;
        }
        // `$name`: the longest run of word characters that names a variable.
        if let Some(body) = rest.strip_prefix('$') {
            let run = body.find(|c: char| !word(c)).unwrap_or(body.len());
            if let Some(v) = value_of(&body[..run]) {
                out.push_str(&v);
                rest = &body[run..];
                continue;
            }
        }
        let c = rest.chars().next().map(char::len_utf8).unwrap_or(1);
        out.push_str(&rest[..c]);
        rest = &rest[c..];
    }
    out.push_str(rest);
    out
}

/// A series' name from a legend template: `{{label}}` becomes the label's value
/// (empty when absent); an empty template gives `fallback`.
pub fn legend(
    template: &str,
    labels: &std::collections::BTreeMap<String, String>,
    fallback: &str,
) -> String {
    if template.trim().is_empty() {
        return fallback.to_string();
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(end) = rest[i + 2..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = rest[i + 2..i + 2 + end].trim();
        out.push_str(labels.get(name).map(String::as_str).unwrap_or(""));
        rest = &rest[i + 2 + end + 2..];
    }
    out.push_str(rest);
    out
}

/// `label_values(label)` or `label_values(selector, label)`: the selector (if any) and
/// the label.
pub fn parse_label_values(q: &str) -> Result<(Option<String>, String), String> {
    let q = q.trim();
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!(
                "{q:?}: only label_values(label) and label_values(selector, label) are supported"
            )
        })?;
    // The label follows the last comma outside braces and quotes.
    let (mut depth, mut quoted, mut split) = (0i32, false, None);
    let mut prev = ' ';
    for (i, c) in inner.char_indices() {
        match c {
            '"' if prev != '\\' => quoted = !quoted,
            '{' | '(' if !quoted => depth += 1,
            '}' | ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => split = Some(i),
            _ => {}
        }
        prev = c;
    }
    let (selector, label) = match split {
        Some(i) => (Some(inner[..i].trim().to_string()), inner[i + 1..].trim()),
        None => (None, inner.trim()),
    };
    let label_ok = !label.is_empty()
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !label.starts_with(|c: char| c.is_ascii_digit());
    if !label_ok {
        return Err(format!("{q:?}: {label:?} is not a label name"));
    }
    if selector.as_deref().is_some_and(str::is_empty) {
        return Err(format!("{q:?}: the selector is empty"));
    }
    Ok((selector, label.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(name: &str, values: &[&str], all: bool) -> Selection {
        Selection {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
            all,
        }
    }

    #[test]
    fn variables_expand_in_every_syntax() {
        let vars = [
            sel("job", &["api"], false),
            sel("job_name", &["x"], false),
            sel("inst", &["a:1", "b.2"], false),
        ];
        assert_eq!(
            interpolate(
                r#"rate(x{job="$job",n="$job_name",i=~"${inst}"}[$__rate_interval]) + [[job]]"#,
                &vars,
                30.0,
                3600.0
            ),
            r#"rate(x{job="api",n="x",i=~"(a:1|b\\.2)"}[60s]) + api"#
        );
        assert_eq!(
            interpolate(
                "sum_over_time(x[$__interval]) / $__range",
                &[],
                75.0,
                3600.0
            ),
            "sum_over_time(x[75s]) / 3600s"
        );
        assert_eq!(
            interpolate("x[$__rate_interval]", &[], 120.0, 1.0),
            "x[135s]"
        );
        assert_eq!(
            interpolate("$unknown and $ alone, [[nope]] ${nope}", &vars, 1.0, 1.0),
            "$unknown and $ alone, [[nope]] ${nope}"
        );
        assert_eq!(
            interpolate("{a=~\"$job\"}", &[sel("job", &["a", "b"], true)], 1.0, 1.0),
            "{a=~\"(a|b)\"}"
        );
        assert_eq!(interpolate("é$job€", &vars, 1.0, 1.0), "éapi€");
    }

    #[test]
    fn legends_fill_in_labels() {
        let labels = [
            ("code".to_string(), "500".to_string()),
            ("job".to_string(), "api".to_string()),
        ]
        .into();
        assert_eq!(
            legend("{{job}} {{ code }} {{missing}}!", &labels, "x"),
            "api 500 !"
        );
        assert_eq!(legend("", &labels, "up{job=\"api\"}"), "up{job=\"api\"}");
        assert_eq!(legend("open {{job", &labels, "x"), "open {{job");
    }

    #[test]
    fn label_values_queries_parse() {
        assert_eq!(
            parse_label_values("label_values(job)"),
            Ok((None, "job".into()))
        );
        assert_eq!(
            parse_label_values(r#"label_values(up{job="a,b", x=~"(c|d)"}, instance)"#),
            Ok((
                Some(r#"up{job="a,b", x=~"(c|d)"}"#.into()),
                "instance".into()
            ))
        );
        assert!(parse_label_values("query_result(up)").is_err());
        assert!(parse_label_values("label_values(up, )").is_err());
        assert!(parse_label_values("label_values(, job)").is_err());
    }
}
