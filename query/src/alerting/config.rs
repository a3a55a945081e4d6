//! Notification settings in Alertmanager's own configuration format (`alertmanager.yml`):
//! `global`, the `route` tree, `receivers` (webhook, Slack and email integrations) and
//! `inhibit_rules`. Settings SignalBox does not act on (other integrations, notification
//! templates, time intervals) are accepted and reported as warnings, so an existing
//! file loads unchanged.
//!
//! Secrets (webhook and Slack URLs, SMTP passwords) can be given inline, from a file
//! (`url_file`, `api_url_file`, `auth_password_file`) or from the environment (`${NAME}`
//! inside the value); they are never printed: `Secret`'s `Debug` and the masked
//! configuration show `<secret>`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use signalbox_storage::Matcher;

use super::matchers::parse_matchers;
use crate::promql::notation::parse_duration_ms;

/// A secret value, or the file that holds it (read each time it is used, so a rotated
/// secret needs no reload, as in Alertmanager); never shown.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Value(String),
    File(String),
}

impl Default for Secret {
    fn default() -> Self {
        Secret::Value(String::new())
    }
}

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret::Value(s)
    }

    /// The secret; errors name the file, never the content.
    pub fn value(&self) -> Result<String, String> {
        match self {
            Secret::Value(v) => Ok(v.clone()),
            Secret::File(f) => std::fs::read_to_string(f)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("reading secret file {f}: {e}")),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Secret::Value(v) if v.is_empty())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    route: Option<RawRoute>,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibit>,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    time_intervals: Vec<serde_yaml::Value>,
    #[serde(default)]
    mute_time_intervals: Vec<serde_yaml::Value>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Default)]
struct RawGlobal {
    resolve_timeout: Option<String>,
    smtp_from: Option<String>,
    smtp_hello: Option<String>,
    smtp_smarthost: Option<String>,
    smtp_auth_username: Option<String>,
    smtp_auth_password: Option<String>,
    smtp_auth_password_file: Option<String>,
    smtp_auth_identity: Option<String>,
    smtp_require_tls: Option<bool>,
    slack_api_url: Option<String>,
    slack_api_url_file: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Default, Clone)]
struct RawRoute {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    #[serde(rename = "continue", default)]
    continue_: bool,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(default)]
    r#match: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    mute_time_intervals: Vec<String>,
    #[serde(default)]
    active_time_intervals: Vec<String>,
}

#[derive(Deserialize)]
struct RawReceiver {
    name: String,
    #[serde(default)]
    webhook_configs: Vec<RawWebhook>,
    #[serde(default)]
    slack_configs: Vec<RawSlack>,
    #[serde(default)]
    email_configs: Vec<RawEmail>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
struct RawWebhook {
    url: Option<String>,
    url_file: Option<String>,
    send_resolved: Option<bool>,
    #[serde(default)]
    max_alerts: usize,
    timeout: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
struct RawSlack {
    api_url: Option<String>,
    api_url_file: Option<String>,
    send_resolved: Option<bool>,
    channel: Option<String>,
    username: Option<String>,
    title: Option<String>,
    title_link: Option<String>,
    text: Option<String>,
    pretext: Option<String>,
    color: Option<String>,
    icon_emoji: Option<String>,
    icon_url: Option<String>,
    footer: Option<String>,
    fallback: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
struct RawEmail {
    to: Option<String>,
    from: Option<String>,
    smarthost: Option<String>,
    hello: Option<String>,
    auth_username: Option<String>,
    auth_password: Option<String>,
    auth_password_file: Option<String>,
    auth_identity: Option<String>,
    require_tls: Option<bool>,
    send_resolved: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    html: Option<String>,
    text: Option<String>,
    tls_config: Option<RawTls>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Default)]
struct RawTls {
    ca_file: Option<String>,
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
    cert_file: Option<String>,
    key_file: Option<String>,
}

#[derive(Deserialize)]
struct RawInhibit {
    #[serde(default)]
    source_matchers: Vec<String>,
    #[serde(default)]
    target_matchers: Vec<String>,
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    equal: Vec<String>,
}

/// How alerts are grouped: by these labels, or by all of them (`group_by: ['...']`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Labels(Vec<String>),
    All,
}

/// A node of the routing tree, with its options inherited and defaults applied.
#[derive(Clone, Debug)]
pub struct Route {
    pub receiver: String,
    pub group_by: GroupBy,
    pub matchers: Vec<Matcher>,
    pub continue_: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub routes: Vec<Route>,
    /// Alertmanager's route key (`{}/{severity="page"}`), the prefix of group keys.
    pub key: String,
    /// The route's position in the tree (`0/2/1`): sibling routes with equal matchers
    /// share a key but not their groups.
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: Secret,
    pub send_resolved: bool,
    pub max_alerts: usize,
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct Slack {
    pub api_url: Secret,
    pub send_resolved: bool,
    pub channel: String,
    pub username: String,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub text: Option<String>,
    pub pretext: String,
    pub color: Option<String>,
    pub icon_emoji: String,
    pub icon_url: String,
    pub footer: String,
    pub fallback: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Email {
    pub to: String,
    pub from: String,
    pub smarthost: String,
    pub hello: String,
    pub auth_username: String,
    pub auth_password: Secret,
    pub auth_identity: String,
    pub require_tls: bool,
    pub send_resolved: bool,
    pub headers: BTreeMap<String, String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Extra CA certificates (PEM) to trust for this server, besides the built-in roots.
    pub ca_file: Option<String>,
    /// The name to check the server's certificate against (default: the smarthost's host).
    pub server_name: Option<String>,
}

/// One way of notifying a receiver.
#[derive(Clone, Debug)]
pub enum Integration {
    Webhook(Webhook),
    Slack(Slack),
    Email(Email),
}

impl Integration {
    pub fn kind(&self) -> &'static str {
        match self {
            Integration::Webhook(_) => "webhook",
            Integration::Slack(_) => "slack",
            Integration::Email(_) => "email",
        }
    }

    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::Webhook(w) => w.send_resolved,
            Integration::Slack(s) => s.send_resolved,
            Integration::Email(e) => e.send_resolved,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
}

#[derive(Clone, Debug)]
pub struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

/// A checked notification configuration.
#[derive(Clone, Debug)]
pub struct AmConfig {
    pub route: Route,
    pub receivers: Vec<Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub resolve_timeout: Duration,
    /// The configuration text with every secret replaced by `<secret>`.
    pub masked: String,
    pub warnings: Vec<String>,
}

impl AmConfig {
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// A configuration that routes everything to one receiver without integrations:
    /// alerts are grouped and visible through the API, nothing is sent.
    pub fn empty() -> AmConfig {
        parse(
            "route:\n  receiver: default\nreceivers:\n- name: default\n",
            &|_| None,
        )
        .unwrap_or_else(|_| unreachable_config())
    }
}

#[allow(clippy::panic)]
fn unreachable_config() -> AmConfig {
    panic!("the built-in empty notification configuration must parse")
}

fn dur(s: &Option<String>, what: &str, default: Duration) -> Result<Duration, String> {
    match s {
        None => Ok(default),
        Some(s) => parse_duration_ms(s.trim())
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
            .map_err(|e| format!("{what}: {e}")),
    }
}

/// Expands `${NAME}` from the environment (`env` is the lookup, for tests).
fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${ in a secret".to_string())?;
        let name = &after[..end];
        let v = env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A secret from its inline value or its file; `what` names it in errors (never the value).
fn secret(
    inline: &Option<String>,
    file: &Option<String>,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("at most one of {what} and {what}_file must be set")),
        (Some(v), None) => Ok(Some(Secret::Value(
            expand_env(v, env).map_err(|e| format!("{what}: {e}"))?,
        ))),
        (None, Some(f)) => Ok(Some(Secret::File(f.clone()))),
        (None, None) => Ok(None),
    }
}

fn legacy_matchers(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (k, v) in eq {
        out.push(Matcher::eq(k.clone(), v.clone()));
    }
    for (k, v) in re {
        out.push(
            Matcher::new(signalbox_storage::MatchOp::RegexMatch, k.clone(), v.clone())
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

fn route_matchers(r: &RawRoute) -> Result<Vec<Matcher>, String> {
    let mut ms = legacy_matchers(&r.r#match, &r.match_re)?;
    for m in &r.matchers {
        ms.extend(parse_matchers(m)?);
    }
    Ok(ms)
}

struct RouteCtx<'a> {
    receivers: &'a [String],
    warnings: &'a mut Vec<String>,
}

fn build_route(
    raw: &RawRoute,
    parent: Option<&Route>,
    index: usize,
    cx: &mut RouteCtx<'_>,
) -> Result<Route, String> {
    let matchers = route_matchers(raw)?;
    if parent.is_none() && !matchers.is_empty() {
        return Err("root route must not have any matchers".into());
    }
    let receiver = match (&raw.receiver, parent) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) => p.receiver.clone(),
        (None, None) => return Err("root route must specify a default receiver".into()),
    };
    if !cx.receivers.contains(&receiver) {
        return Err(format!("undefined receiver {receiver:?} used in route"));
    }
    let group_by = match &raw.group_by {
        Some(g) if g.iter().any(|l| l == "...") => {
            if g.len() > 1 {
                return Err(
                    "cannot have wildcard group_by (`...`) and other labels at the same time"
                        .into(),
                );
            }
            GroupBy::All
        }
        Some(g) => {
            let mut v = g.clone();
            v.sort();
            v.dedup();
            GroupBy::Labels(v)
        }
        None => parent.map_or(GroupBy::Labels(Vec::new()), |p| p.group_by.clone()),
    };
    let group_wait = dur(
        &raw.group_wait,
        "group_wait",
        parent.map_or(Duration::from_secs(30), |p| p.group_wait),
    )?;
    let group_interval = dur(
        &raw.group_interval,
        "group_interval",
        parent.map_or(Duration::from_secs(300), |p| p.group_interval),
    )?;
    let repeat_interval = dur(
        &raw.repeat_interval,
        "repeat_interval",
        parent.map_or(Duration::from_secs(4 * 3600), |p| p.repeat_interval),
    )?;
    if group_interval.is_zero() {
        return Err("group_interval cannot be zero".into());
    }
    if repeat_interval.is_zero() {
        return Err("repeat_interval cannot be zero".into());
    }
    if !raw.mute_time_intervals.is_empty() || !raw.active_time_intervals.is_empty() {
        cx.warnings.push(format!(
            "route to {receiver:?}: mute_time_intervals/active_time_intervals are not supported; the route is always active"
        ));
    }
    let mut sorted = matchers.clone();
    sorted.sort_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
    let own = super::matchers::matchers_text(&sorted);
    let key = match parent {
        Some(p) => format!("{}/{own}", p.key),
        None => own,
    };
    let id = match parent {
        Some(p) => format!("{}/{index}", p.id),
        None => "0".to_string(),
    };
    let mut route = Route {
        id,
        receiver,
        group_by,
        matchers,
        continue_: raw.continue_,
        group_wait,
        group_interval,
        repeat_interval,
        routes: Vec::new(),
        key,
    };
    let mut children = Vec::new();
    for (i, child) in raw.routes.iter().enumerate() {
        children.push(build_route(child, Some(&route), i, cx)?);
    }
    route.routes = children;
    Ok(route)
}

/// Replaces the values of secret keys in the YAML text by `<secret>`.
fn mask(text: &str) -> String {
    const KEYS: [&str; 5] = [
        "url",
        "api_url",
        "slack_api_url",
        "auth_password",
        "smtp_auth_password",
    ];
    text.lines()
        .map(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            match t.split_once(':') {
                Some((k, v)) if KEYS.contains(&k.trim()) && !v.trim().is_empty() => {
                    let indent = &l[..l.len() - l.trim_start().len()];
                    let dash = if l.trim_start().starts_with("- ") {
                        "- "
                    } else {
                        ""
                    };
                    format!("{indent}{dash}{}: <secret>", k.trim())
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses and checks an Alertmanager configuration. `env` looks up environment
/// variables for `${NAME}` in secrets.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<AmConfig, String> {
    let raw: RawConfig = serde_yaml::from_str::<Option<RawConfig>>(text)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let mut warnings = Vec::new();
    for k in raw.other.keys() {
        warnings.push(format!("unknown top-level key {k:?} ignored"));
    }
    for k in raw.global.other.keys() {
        warnings.push(format!("global.{k} is not used by SignalBox"));
    }
    if !raw.templates.is_empty() {
        warnings.push("notification template files (templates:) are not supported; the built-in texts are used".into());
    }
    if !raw.time_intervals.is_empty() || !raw.mute_time_intervals.is_empty() {
        warnings.push("time intervals are not supported; routes are always active".into());
    }
    let g = &raw.global;
    let resolve_timeout = dur(
        &g.resolve_timeout,
        "global.resolve_timeout",
        Duration::from_secs(300),
    )?;
    let slack_global = secret(
        &g.slack_api_url,
        &g.slack_api_url_file,
        "global.slack_api_url",
        env,
    )?;
    let smtp_password = secret(
        &g.smtp_auth_password,
        &g.smtp_auth_password_file,
        "global.smtp_auth_password",
        env,
    )?;

    let mut names = Vec::new();
    let mut receivers = Vec::new();
    for r in &raw.receivers {
        if r.name.is_empty() {
            return Err("missing name in receiver".into());
        }
        if names.contains(&r.name) {
            return Err(format!(
                "notification config name {:?} is not unique",
                r.name
            ));
        }
        names.push(r.name.clone());
        for k in r.other.keys() {
            warnings.push(format!("receiver {:?}: {k} is not supported by SignalBox; it will not be notified that way", r.name));
        }
        let mut integrations = Vec::new();
        for w in &r.webhook_configs {
            let url = secret(&w.url, &w.url_file, "url", env)?.ok_or_else(|| {
                format!(
                    "receiver {:?}: one of url or url_file must be configured",
                    r.name
                )
            })?;
            let inline_ok = match &url {
                Secret::Value(u) => u.starts_with("http://") || u.starts_with("https://"),
                Secret::File(_) => true,
            };
            if !inline_ok {
                return Err(format!(
                    "receiver {:?}: webhook url must be an http or https URL",
                    r.name
                ));
            }
            for k in w.other.keys() {
                warnings.push(format!(
                    "receiver {:?}: webhook {k} is not supported",
                    r.name
                ));
            }
            integrations.push(Integration::Webhook(Webhook {
                url,
                send_resolved: w.send_resolved.unwrap_or(true),
                max_alerts: w.max_alerts,
                timeout: dur(&w.timeout, "timeout", Duration::from_secs(10))?,
            }));
        }
        for s in &r.slack_configs {
            let api_url = match secret(&s.api_url, &s.api_url_file, "api_url", env)? {
                Some(u) => u,
                None => slack_global
                    .clone()
                    .ok_or_else(|| format!("receiver {:?}: no global Slack API URL set", r.name))?,
            };
            for k in s.other.keys() {
                warnings.push(format!("receiver {:?}: slack {k} is not supported", r.name));
            }
            integrations.push(Integration::Slack(Slack {
                api_url,
                send_resolved: s.send_resolved.unwrap_or(false),
                channel: s.channel.clone().unwrap_or_default(),
                username: s.username.clone().unwrap_or_default(),
                title: s.title.clone(),
                title_link: s.title_link.clone(),
                text: s.text.clone(),
                pretext: s.pretext.clone().unwrap_or_default(),
                color: s.color.clone(),
                icon_emoji: s.icon_emoji.clone().unwrap_or_default(),
                icon_url: s.icon_url.clone().unwrap_or_default(),
                footer: s.footer.clone().unwrap_or_default(),
                fallback: s.fallback.clone(),
            }));
        }
        for e in &r.email_configs {
            let to = e.to.clone().ok_or_else(|| {
                format!("receiver {:?}: missing to address in email config", r.name)
            })?;
            let from = e
                .from
                .clone()
                .or_else(|| g.smtp_from.clone())
                .ok_or_else(|| format!("receiver {:?}: no global SMTP from set", r.name))?;
            let smarthost = e
                .smarthost
                .clone()
                .or_else(|| g.smtp_smarthost.clone())
                .ok_or_else(|| format!("receiver {:?}: no global SMTP smarthost set", r.name))?;
            let password = match secret(
                &e.auth_password,
                &e.auth_password_file,
                "auth_password",
                env,
            )? {
                Some(p) => p,
                None => smtp_password.clone().unwrap_or_default(),
            };
            for k in e.other.keys() {
                warnings.push(format!("receiver {:?}: email {k} is not supported", r.name));
            }
            let tls = e.tls_config.as_ref();
            if tls.is_some_and(|t| t.insecure_skip_verify) {
                return Err(format!(
                    "receiver {:?}: tls_config.insecure_skip_verify is not supported; give the server's CA in tls_config.ca_file",
                    r.name
                ));
            }
            if tls.is_some_and(|t| t.cert_file.is_some() || t.key_file.is_some()) {
                warnings.push(format!(
                    "receiver {:?}: client certificates for SMTP are not supported",
                    r.name
                ));
            }
            integrations.push(Integration::Email(Email {
                to,
                from,
                smarthost,
                hello: e
                    .hello
                    .clone()
                    .or_else(|| g.smtp_hello.clone())
                    .unwrap_or_else(|| "localhost".into()),
                auth_username: e
                    .auth_username
                    .clone()
                    .or_else(|| g.smtp_auth_username.clone())
                    .unwrap_or_default(),
                auth_password: password,
                auth_identity: e
                    .auth_identity
                    .clone()
                    .or_else(|| g.smtp_auth_identity.clone())
                    .unwrap_or_default(),
                require_tls: e.require_tls.or(g.smtp_require_tls).unwrap_or(true),
                send_resolved: e.send_resolved.unwrap_or(false),
                headers: e.headers.clone(),
                text: e.text.clone(),
                html: e.html.clone(),
                ca_file: tls.and_then(|t| t.ca_file.clone()),
                server_name: tls.and_then(|t| t.server_name.clone()),
            }));
        }
        receivers.push(Receiver {
            name: r.name.clone(),
            integrations,
        });
    }
    let raw_route = raw.route.clone().ok_or("no route provided in config")?;
    let route = build_route(
        &raw_route,
        None,
        0,
        &mut RouteCtx {
            receivers: &names,
            warnings: &mut warnings,
        },
    )?;
    let mut inhibit_rules = Vec::new();
    for (i, r) in raw.inhibit_rules.iter().enumerate() {
        let mut source = legacy_matchers(&r.source_match, &r.source_match_re)?;
        let mut target = legacy_matchers(&r.target_match, &r.target_match_re)?;
        for m in &r.source_matchers {
            source.extend(parse_matchers(m).map_err(|e| format!("inhibit_rules[{i}]: {e}"))?);
        }
        for m in &r.target_matchers {
            target.extend(parse_matchers(m).map_err(|e| format!("inhibit_rules[{i}]: {e}"))?);
        }
        inhibit_rules.push(InhibitRule {
            source,
            target,
            equal: r.equal.clone(),
        });
    }
    Ok(AmConfig {
        route,
        receivers,
        inhibit_rules,
        resolve_timeout,
        masked: mask(text),
        warnings,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
