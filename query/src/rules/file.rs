//! Rule files in the Prometheus format: reading, checking, and the errors users see
//! (`file:line: group "g", rule 2, "Name": reason`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::template::Template;
use crate::promql::notation::parse_duration_ms;

/// Which query language a group's expressions are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    PromQL,
    LogQL,
}

/// A checked rule group.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub file: String,
    pub name: String,
    /// `None`: the global evaluation interval.
    pub interval: Option<Duration>,
    pub query_offset: Duration,
    pub limit: usize,
    pub lang: Lang,
    pub rules: Vec<Arc<RuleSpec>>,
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    Record,
    Alert {
        hold: Duration,
        keep_firing_for: Duration,
        annotations: Vec<(String, String, Template)>,
    },
}

/// A checked rule: the expression parses, names are valid, templates parse.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// The record or alert name.
    pub name: String,
    pub expr: String,
    pub kind: RuleKind,
    /// Label name, the raw text, and (for alerts) its parsed template.
    pub labels: Vec<(String, String, Option<Template>)>,
}

impl RuleSpec {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alert { .. })
    }
}

impl GroupSpec {
    /// Whether `other` is the same group with the same rules (alert state carries over).
    pub fn same_as(&self, other: &GroupSpec) -> bool {
        self.file == other.file
            && self.name == other.name
            && self.interval == other.interval
            && self.query_offset == other.query_offset
            && self.limit == other.limit
            && self.rules.len() == other.rules.len()
            && self.rules.iter().zip(&other.rules).all(|(a, b)| {
                a.name == b.name
                    && a.expr == b.expr
                    && a.labels
                        .iter()
                        .map(|l| (&l.0, &l.1))
                        .eq(b.labels.iter().map(|l| (&l.0, &l.1)))
                    && match (&a.kind, &b.kind) {
                        (RuleKind::Record, RuleKind::Record) => true,
                        (
                            RuleKind::Alert {
                                hold: h1,
                                keep_firing_for: k1,
                                annotations: a1,
                            },
                            RuleKind::Alert {
                                hold: h2,
                                keep_firing_for: k2,
                                annotations: a2,
                            },
                        ) => {
                            h1 == h2
                                && k1 == k2
                                && a1
                                    .iter()
                                    .map(|l| (&l.0, &l.1))
                                    .eq(a2.iter().map(|l| (&l.0, &l.1)))
                        }
                        _ => false,
                    }
            })
    }
}

/// Any YAML scalar read as text (`expr: 1`, `severity: 2`).
#[derive(Debug)]
pub(super) struct Text(pub(super) String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(Text(s)),
            serde_yaml::Value::Number(n) => Ok(Text(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(Text(b.to_string())),
            serde_yaml::Value::Null => Ok(Text(String::new())),
            _ => Err(D::Error::custom("expected a string")),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    query_offset: Option<String>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<Text>,
    alert: Option<Text>,
    expr: Option<Text>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default)]
    annotations: BTreeMap<String, Text>,
}

/// What a rule file check finds: errors (the file is rejected) and warnings.
#[derive(Debug, Default)]
pub struct Checked {
    pub groups: Vec<GroupSpec>,
    pub warnings: Vec<String>,
}

/// Lines of group starts, rule starts and `expr:` keys, in file order (block-style
/// YAML, which rule files are). Used only to point errors at a line.
struct Lines {
    groups: Vec<usize>,
    rules: Vec<(usize, Option<usize>)>,
}

fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").map_or(t, str::trim_start);
    let (k, _) = t.split_once(':')?;
    let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
    k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(k)
}

fn scan_lines(text: &str) -> Lines {
    let mut l = Lines {
        groups: Vec::new(),
        rules: Vec::new(),
    };
    let mut in_rules = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim_start().starts_with('#') {
            continue;
        }
        match key_of(line) {
            Some("name") if line.trim_start().starts_with("- ") => {
                l.groups.push(n);
                in_rules = false;
            }
            Some("rules") => in_rules = true,
            Some("record" | "alert") if in_rules => {
                // A rule item starts at its first key; `record`/`alert` may come after
                // `expr`, so only start a new rule if the current one has its name.
                l.rules.push((n, None));
            }
            Some("expr") if in_rules => {
                if let Some(last) = l.rules.last_mut()
                    && last.1.is_none()
                    && !line.trim_start().starts_with("- ")
                {
                    last.1 = Some(n);
                } else {
                    l.rules.push((n, Some(n)));
                }
            }
            _ => {}
        }
    }
    l
}

/// A valid Prometheus metric name.
pub fn valid_metric_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A valid label name (UTF-8 names are accepted by Prometheus 3; we accept the
/// classic ones and any non-empty name without control characters).
pub fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

fn parse_dur(s: &Option<String>) -> Result<Option<Duration>, String> {
    match s {
        None => Ok(None),
        Some(s) => parse_duration_ms(s.trim())
            .map(|ms| Some(Duration::from_millis(ms.max(0) as u64)))
            .map_err(|e| format!("not a valid duration string: {e}")),
    }
}

/// Checks an expression in the group's language.
fn check_expr(lang: Lang, expr: &str) -> Result<(), String> {
    match lang {
        Lang::PromQL => crate::promql::check(expr).map_err(|e| e.to_string()),
        Lang::LogQL => crate::logql::check(expr),
    }
}

/// Reads and checks one rule file's text. `Err` lists every problem found.
pub fn parse_rules(file: &str, text: &str, lang: Lang) -> Result<Checked, Vec<String>> {
    let raw: RawFile = match serde_yaml::from_str::<Option<RawFile>>(text) {
        Ok(Some(r)) => r,
        Ok(None) => RawFile { groups: Vec::new() },
        Err(e) => return Err(vec![format!("{file}: {e}")]),
    };
    let lines = scan_lines(text);
    let mut errs = Vec::new();
    let mut out = Checked::default();
    let mut seen_groups = std::collections::HashSet::new();
    let mut rule_no = 0usize;
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let gline = lines.groups.get(gi).copied().unwrap_or(0);
        let at = |line: usize| {
            if line > 0 {
                format!("{file}:{line}")
            } else {
                file.to_string()
            }
        };
        if g.name.is_empty() {
            errs.push(format!("{}: Groupname must not be empty", at(gline)));
        } else if !seen_groups.insert(g.name.clone()) {
            errs.push(format!(
                "{}: groupname: \"{}\" is repeated in the same file",
                at(gline),
                g.name
            ));
        }
        let interval = parse_dur(&g.interval).unwrap_or_else(|e| {
            errs.push(format!("{}: group {:?}: interval {e}", at(gline), g.name));
            None
        });
        if interval == Some(Duration::ZERO) {
            errs.push(format!(
                "{}: group {:?}: interval must be positive",
                at(gline),
                g.name
            ));
        }
        let query_offset = parse_dur(&g.query_offset).unwrap_or_else(|e| {
            errs.push(format!(
                "{}: group {:?}: query_offset {e}",
                at(gline),
                g.name
            ));
            None
        });
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let (rline, eline) = lines.rules.get(rule_no).copied().unwrap_or((0, None));
            rule_no += 1;
            let name = r
                .alert
                .as_ref()
                .or(r.record.as_ref())
                .map(|t| t.0.clone())
                .unwrap_or_default();
            let mut fail = |line: usize, msg: String| {
                errs.push(format!(
                    "{}: group {:?}, rule {}, {:?}: {msg}",
                    at(line),
                    g.name,
                    ri + 1,
                    name
                ));
            };
            match rule(&name, r, lang) {
                Ok(spec) => rules.push(Arc::new(spec)),
                Err((on_expr, msg)) => fail(
                    if on_expr {
                        eline.unwrap_or(rline)
                    } else {
                        rline
                    },
                    msg,
                ),
            }
        }
        out.groups.push(GroupSpec {
            file: file.to_string(),
            name: g.name,
            interval,
            query_offset: query_offset.unwrap_or_default(),
            limit: g.limit,
            lang,
            rules,
        });
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    out.warnings = duplicates(&out.groups);
    Ok(out)
}

/// Checks one rule; errors say whether they concern the expression.
fn rule(name: &str, r: RawRule, lang: Lang) -> Result<RuleSpec, (bool, String)> {
    let e = |m: &str| (false, m.to_string());
    let kind = match (&r.record, &r.alert) {
        (Some(_), Some(_)) => return Err(e("only one of 'record' and 'alert' must be set")),
        (None, None) => return Err(e("one of 'record' or 'alert' must be set")),
        (Some(_), None) => {
            if !valid_metric_name(name) {
                return Err((false, format!("invalid recording rule name: {name}")));
            }
            if !r.annotations.is_empty() {
                return Err(e("invalid field 'annotations' in recording rule"));
            }
            if r.for_.is_some() {
                return Err(e("invalid field 'for' in recording rule"));
            }
            if r.keep_firing_for.is_some() {
                return Err(e("invalid field 'keep_firing_for' in recording rule"));
            }
            RuleKind::Record
        }
        (None, Some(_)) => {
            if name.is_empty() {
                return Err(e("alert name must not be empty"));
            }
            let tname = format!("__alert_{name}");
            let mut annotations = Vec::new();
            for (k, v) in &r.annotations {
                if !valid_label_name(k) {
                    return Err((false, format!("invalid annotation name: {k}")));
                }
                let t = Template::parse(&tname, &v.0)
                    .map_err(|err| (false, format!("annotation {k:?}: {err}")))?;
                annotations.push((k.clone(), v.0.clone(), t));
            }
            RuleKind::Alert {
                hold: parse_dur(&r.for_)
                    .map_err(|m| (false, format!("for {m}")))?
                    .unwrap_or_default(),
                keep_firing_for: parse_dur(&r.keep_firing_for)
                    .map_err(|m| (false, format!("keep_firing_for {m}")))?
                    .unwrap_or_default(),
                annotations,
            }
        }
    };
    let expr = r.expr.map(|t| t.0).unwrap_or_default();
    if expr.trim().is_empty() {
        return Err(e("field 'expr' must be set in rule"));
    }
    check_expr(lang, &expr).map_err(|m| (true, format!("could not parse expression: {m}")))?;
    let mut labels = Vec::new();
    for (k, v) in r.labels {
        if k == "__name__" || !valid_label_name(&k) {
            return Err((false, format!("invalid label name: {k}")));
        }
        let t = match kind {
            RuleKind::Alert { .. } => Some(
                Template::parse(&format!("__alert_{name}"), &v.0)
                    .map_err(|err| (false, format!("label {k:?}: {err}")))?,
            ),
            RuleKind::Record => None,
        };
        labels.push((k, v.0, t));
    }
    Ok(RuleSpec {
        name: name.to_string(),
        expr,
        kind,
        labels,
    })
}

/// Recording rules with the same name and labels, as `promtool check rules` reports
/// them (a warning: both write the same series).
fn duplicates(groups: &[GroupSpec]) -> Vec<String> {
    let mut seen: BTreeMap<(String, Vec<(String, String)>), usize> = BTreeMap::new();
    for g in groups {
        for r in &g.rules {
            if r.is_alert() {
                continue;
            }
            let labels = r
                .labels
                .iter()
                .map(|l| (l.0.clone(), l.1.clone()))
                .collect();
            *seen.entry((r.name.clone(), labels)).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((name, labels), n)| {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!(
                "{n} recording rules named {name} with labels {{{}}}: they write the same series",
                l.join(", ")
            )
        })
        .collect()
}

/// Expands the paths and globs of rule files (sorted, de-duplicated). A glob that
/// matches nothing is not an error, as in Prometheus; a plain path that does not
/// exist is.
pub fn expand_paths(patterns: &[String], base: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let full = match base {
            Some(b) if Path::new(p).is_relative() => b.join(p),
            _ => PathBuf::from(p),
        };
        let s = full.to_string_lossy().into_owned();
        if s.contains(['*', '?', '[']) {
            let paths = glob::glob(&s).map_err(|e| format!("{p}: bad pattern: {e}"))?;
            for f in paths {
                out.push(f.map_err(|e| format!("{p}: {e}"))?);
            }
        } else {
            out.push(full);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Reads and checks files. `Err` holds every problem of every file.
pub fn load_files(files: &[(PathBuf, Lang)]) -> Result<Checked, Vec<String>> {
    let mut all = Checked::default();
    let mut errs = Vec::new();
    for (path, lang) in files {
        let name = path.to_string_lossy().into_owned();
        match std::fs::read_to_string(path) {
            Err(e) => errs.push(format!("{name}: {e}")),
            Ok(text) => match parse_rules(&name, &text, *lang) {
                Ok(c) => {
                    all.groups.extend(c.groups);
                    all.warnings
                        .extend(c.warnings.into_iter().map(|w| format!("{name}: {w}")));
                }
                Err(e) => errs.extend(e),
            },
        }
    }
    if errs.is_empty() { Ok(all) } else { Err(errs) }
}

/// `promtool check rules`: checks each file and reports as promtool does. The
/// result is false if any file has an error; duplicate rules are warnings.
pub fn check_files(paths: &[PathBuf], lang: Lang) -> (bool, String) {
    let mut ok = true;
    let mut out = String::new();
    for p in paths {
        out.push_str(&format!("Checking {}\n", p.display()));
        match load_files(&[(p.clone(), lang)]) {
            Ok(c) => {
                for w in &c.warnings {
                    out.push_str(&format!("  WARNING: {w}\n"));
                }
                let n: usize = c.groups.iter().map(|g| g.rules.len()).sum();
                out.push_str(&format!("  SUCCESS: {n} rules found\n"));
            }
            Err(errs) => {
                ok = false;
                out.push_str("  FAILED:\n");
                for e in errs {
                    out.push_str(&format!("{e}\n"));
                }
            }
        }
        out.push('\n');
    }
    (ok, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        parse_rules("r.yml", text, Lang::PromQL).unwrap_err()
    }

    #[test]
    fn good_file() {
        let c = parse_rules(
            "r.yml",
            "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: a:b\n    expr: sum(up)\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.instance }} down'\n",
            Lang::PromQL,
        )
        .unwrap();
        assert_eq!(c.groups.len(), 1);
        let g = &c.groups[0];
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.rules.len(), 2);
        assert!(
            matches!(g.rules[1].kind, RuleKind::Alert { hold, .. } if hold == Duration::from_secs(300))
        );
    }

    #[test]
    fn rules_may_use_duration_expressions_and_extended_ranges() {
        let c = parse_rules(
            "r.yml",
            "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: increase(x_total[5m] anchored)\n  - record: a:c\n    expr: rate(x_total[2m*5] smoothed)\n",
            Lang::PromQL,
        )
        .unwrap();
        assert_eq!(c.groups[0].rules.len(), 2);
        assert!(
            errs("groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: x[1m-1m]\n")[0]
                .contains("duration must be greater than 0")
        );
    }

    #[test]
    fn errors_name_file_line_group_rule() {
        let e = errs("groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'up +'\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("r.yml:5: group \"g\", rule 1, \"x\": could not parse expression:"),
            "{e:?}"
        );
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - record: ok\n    expr: up\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $label.x }}'\n",
        );
        assert_eq!(
            e,
            vec!["r.yml:6: group \"g\", rule 2, \"A\": annotation \"s\": template: __alert_A:1: undefined variable \"$label\"".to_string()]
        );
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    expr: up\n- name: g\n  rules: []\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("invalid recording rule name"));
        assert!(
            e[1].starts_with("r.yml:6: groupname: \"g\" is repeated"),
            "{e:?}"
        );
        let e = errs("groups:\n- name: g\n  rules:\n  - record: x\n    alert: y\n    expr: up\n");
        assert!(e[0].contains("only one of 'record' and 'alert'"));
        let e = errs("groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    for: 5m\n");
        assert!(e[0].contains("invalid field 'for' in recording rule"));
        let e = errs("groups:\n- name: g\n  rulez: []\n");
        assert!(e[0].contains("unknown field `rulez`"), "{e:?}");
        assert!(e[0].contains("line 3"), "{e:?}");
    }

    #[test]
    fn duplicates_are_warnings() {
        let c = parse_rules(
            "r.yml",
            "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n- name: b\n  rules:\n  - record: x\n    expr: up\n",
            Lang::PromQL,
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1);
    }
}
