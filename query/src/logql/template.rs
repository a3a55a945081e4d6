//! The subset of Go templates `line_format` and `label_format` accept: text with
//! `{{ .label }}` actions, optionally piped through `ToUpper`/`upper`, `ToLower`/`lower`,
//! `TrimSpace`/`trim`, and the special fields `__line__` and `__timestamp__`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field { name: String, funcs: Vec<String> },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template(Vec<Part>);

const FUNCS: [&str; 6] = ["ToUpper", "upper", "ToLower", "lower", "TrimSpace", "trim"];

impl Template {
    pub(crate) fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed action in template {s:?}"))?;
            let action = after[..close]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            let mut pipes = action.split('|').map(str::trim);
            let field = pipes.next().unwrap_or("");
            let Some(name) = field.strip_prefix('.') else {
                return Err(format!(
                    "unsupported template action {{{{ {action} }}}}: only {{{{ .label }}}} with {} is supported",
                    FUNCS.join(", ")
                ));
            };
            let funcs: Vec<String> = pipes.map(str::to_string).collect();
            if let Some(f) = funcs.iter().find(|f| !FUNCS.contains(&f.as_str())) {
                return Err(format!("unsupported template function {f:?}"));
            }
            parts.push(Part::Field {
                name: name.to_string(),
                funcs,
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    pub(crate) fn render(
        &self,
        labels: &BTreeMap<String, String>,
        line: &str,
        t_ns: i64,
    ) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { name, funcs } => {
                    let mut v = match name.as_str() {
                        "__line__" => line.to_string(),
                        "__timestamp__" => t_ns.to_string(),
                        n => labels.get(n).cloned().unwrap_or_default(),
                    };
                    for f in funcs {
                        v = match f.as_str() {
                            "ToUpper" | "upper" => v.to_uppercase(),
                            "ToLower" | "lower" => v.to_lowercase(),
                            _ => v.trim().to_string(),
                        };
                    }
                    out.push_str(&v);
                }
            }
        }
        out
    }
}
