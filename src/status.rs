//! `GET /api/v1/status/config`: the effective configuration as TOML (what
//! `signalbox check-config` prints), with every secret replaced by `<secret>`.

use axum::Router;
use axum::routing::get;
use serde_json::json;

/// Keys whose values are secrets wherever they appear (also inside an embedded
/// Alertmanager configuration).
const SECRET_KEYS: [&str; 12] = [
    "password",
    "secret",
    "token",
    "api_url",
    "api_key",
    "credentials",
    "authorization",
    "auth_identity",
    "routing_key",
    "webhook_url",
    "service_key",
    "user_key",
];

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| k.contains(s)) && !k.ends_with("_file")
}

/// `scheme://user:pass@host/…` loses its user information.
fn without_userinfo(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let host_end = rest.find('/').unwrap_or(rest.len());
    let at = rest[..host_end].rfind('@')?;
    Some(format!("{scheme}://<secret>@{}", &rest[at + 1..]))
}

/// Redacts secrets below `v`. `receiver` is set inside a receiver's integration
/// (`webhook_configs`, `slack_configs`, …), where a `url` carries its token in the path,
/// as Alertmanager treats it.
fn redact(v: &mut toml::Value, secret: bool, receiver: bool) {
    match v {
        toml::Value::String(s) => {
            if secret && !s.is_empty() {
                *s = "<secret>".into();
            } else if let Some(r) = without_userinfo(s) {
                *s = r;
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(|x| redact(x, secret, receiver)),
        toml::Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                let url = receiver && k.as_str() == "url";
                redact(
                    x,
                    secret || url || is_secret_key(k),
                    receiver || k.ends_with("_configs"),
                );
            }
        }
        _ => {}
    }
}

/// The configuration as TOML with secrets redacted.
pub(crate) fn shown<T: serde::Serialize>(cfg: &T) -> String {
    match toml::Value::try_from(cfg) {
        Ok(mut v) => {
            redact(&mut v, false, false);
            toml::to_string_pretty(&v)
                .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
        }
        Err(e) => format!("# cannot print the configuration: {e}\n"),
    }
}

/// `data` of the answer: the redacted TOML as text (`toml`) and the same settings as a
/// JSON object (`settings`, null if the text is not TOML), for pages that show some.
fn answer(config_text: &str) -> serde_json::Value {
    let settings = toml::from_str::<toml::Value>(config_text)
        .ok()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(serde_json::Value::Null);
    json!({"status": "success", "data": {"toml": config_text, "settings": settings}})
}

pub(crate) fn router(config_text: String) -> Router {
    // Serialized once: the configuration does not change while the server runs.
    let body = axum::body::Bytes::from(answer(&config_text).to_string());
    Router::new().route(
        "/api/v1/status/config",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_credentials_are_redacted() {
        let v: toml::Value = toml::from_str(
            r#"
            data_dir = "data"
            [alerting.config.global]
            smtp_auth_password = "hunter2"
            smtp_auth_password_file = "/run/secrets/smtp"
            slack_api_url = "https://hooks.slack.com/services/T0/B0/XX"
            [[alerting.config.receivers]]
            name = "ops"
            webhook_configs = [{ url = "https://bob:pw@hooks.example.com/x" }]
            [[alerting.alertmanagers]]
            url = "http://am:9093"
            [[alerting.alertmanagers]]
            url = "http://carol:pw2@am2:9093"
            "#,
        )
        .expect("toml");
        let out = shown(&v);
        assert!(
            !out.contains("hunter2") && !out.contains("XX") && !out.contains("bob:pw"),
            "{out}"
        );
        assert!(out.contains("smtp_auth_password = \"<secret>\""), "{out}");
        assert!(
            out.contains("/run/secrets/smtp"),
            "a file name is not a secret: {out}"
        );
        assert!(
            !out.contains("hooks.example.com") && out.contains("url = \"<secret>\""),
            "{out}"
        );
        assert!(
            out.contains("http://<secret>@am2:9093") && !out.contains("carol"),
            "credentials in a URL: {out}"
        );
        assert!(
            out.contains("http://am:9093") && out.contains("data_dir = \"data\""),
            "{out}"
        );
    }

    #[test]
    fn the_settings_come_as_json_too() {
        let text = shown(&toml::from_str::<toml::Value>(
            "[storage.logs]\nretention = \"7days\"\n[alerting.config.global]\nslack_api_url = \"https://x/T0\"\n",
        )
        .expect("toml"));
        let v = answer(&text);
        assert_eq!(
            v["data"]["settings"]["storage"]["logs"]["retention"],
            "7days"
        );
        assert_eq!(
            v["data"]["settings"]["alerting"]["config"]["global"]["slack_api_url"],
            "<secret>"
        );
        assert_eq!(v["data"]["toml"], text.as_str());
        assert_eq!(
            answer("not = = toml")["data"]["settings"],
            serde_json::Value::Null
        );
    }
}
