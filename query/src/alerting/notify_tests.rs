//! Deliveries to real local receivers (an HTTP server and an SMTP server started by the
//! test) on a controlled clock, and the webhook body against Alertmanager 0.25's.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::Value;

use super::*;
use crate::alerting::config::parse;
use crate::alerting::silence::{SilenceInput, SilenceMatcher};

const S: i64 = 1000;
const M: i64 = 60 * S;
const T0: i64 = 1_795_000_000_000;

/// A webhook receiver: records (path, headers, body); answers with the queued
/// statuses first, then 200.
#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
    fail_first: Arc<Mutex<Vec<u16>>>,
}

async fn start_hook() -> (Hook, String) {
    let hook = Hook::default();
    let h = hook.clone();
    let app = Router::new().route(
        "/{*path}",
        post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let h = h.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    h.got.lock().push((uri.path().to_string(), headers, v));
                    let code = {
                        let mut f = h.fail_first.lock();
                        if f.is_empty() { 200 } else { f.remove(0) }
                    };
                    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (hook, format!("http://{addr}"))
}

fn notifier(cfg: &str) -> Arc<Notifier> {
    Notifier::new(
        Arc::new(parse(cfg, &|_| None).unwrap()),
        NotifierOptions {
            external_url: "http://localhost:19093".into(),
            retry_base: Duration::from_millis(10),
            max_attempts: 3,
            ..Default::default()
        },
        None,
    )
}

fn alert(labels: &[(&str, &str)], start: i64, end: i64) -> AmAlert {
    AmAlert {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: [("summary".to_string(), "test alert".to_string())].into(),
        starts_at_ms: start,
        ends_at_ms: end,
        updated_at_ms: 0,
        generator_url: "http://localhost:19090/graph?g0.expr=vector%281%29+%3D%3D+2&g0.tab=1"
            .into(),
        timeout: false,
    }
}

fn sample(name: &str) -> Value {
    let p = format!(
        "{}/tests/data/alertmanager-0.25-webhook/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ms(s: &str) -> i64 {
    humantime::parse_rfc3339(s)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn webhook_body_is_alertmanagers_byte_for_byte() {
    for (file, firing) in [
        ("webhook-firing-with-instance-labels.json", true),
        ("webhook-resolved.json", false),
    ] {
        let want = sample(file);
        let b = &want["body"];
        let a0 = &b["alerts"][0];
        let labels: LabelMap = serde_json::from_value(a0["labels"].clone()).unwrap();
        let annotations: LabelMap = serde_json::from_value(a0["annotations"].clone()).unwrap();
        let a = AmAlert {
            labels,
            annotations,
            starts_at_ms: ms(a0["startsAt"].as_str().unwrap()),
            ends_at_ms: if firing {
                0
            } else {
                ms(a0["endsAt"].as_str().unwrap())
            },
            updated_at_ms: 0,
            generator_url: a0["generatorURL"].as_str().unwrap().into(),
            timeout: false,
        };
        let flush = Flush {
            group_id: String::new(),
            group_key: b["groupKey"].as_str().unwrap().into(),
            receiver: "hook".into(),
            group_labels: serde_json::from_value(b["groupLabels"].clone()).unwrap(),
            alerts: vec![a.clone()],
            jobs: Vec::new(),
            now_ms: 0,
        };
        let job = Job {
            receiver: "hook".into(),
            index: 0,
            integration: parse("route: {receiver: hook}\nreceivers:\n- name: hook\n  webhook_configs: [{url: 'http://x/hook'}]\n", &|_| None)
                .unwrap()
                .receivers[0]
                .integrations[0]
                .clone(),
            alerts: vec![a],
            firing: Default::default(),
            resolved: Default::default(),
        };
        let body = webhook_body(&flush, &job, 0, "http://localhost:19093");
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(&got, b, "{file}");
        // Byte for byte apart from host names (the captures had theirs replaced, so
        // their Content-Length does not apply): the fields in Alertmanager's order,
        // Go's escaping, a final newline.
        let text = String::from_utf8(body.clone()).unwrap();
        let in_order = |text: &str, keys: &[&str]| {
            let pos: Vec<usize> = keys
                .iter()
                .map(|k| text.find(&format!("\"{k}\"")).unwrap())
                .collect();
            pos.windows(2).all(|w| w[0] < w[1])
        };
        let groups_at = text.find("\"groupLabels\"").unwrap();
        assert!(in_order(&text, &["receiver", "status", "alerts"]), "{text}");
        assert!(
            in_order(
                &text[groups_at..],
                &[
                    "groupLabels",
                    "commonLabels",
                    "commonAnnotations",
                    "externalURL",
                    "version",
                    "groupKey",
                    "truncatedAlerts"
                ]
            ),
            "{text}"
        );
        let alert = &text[text.find("\"alerts\":[").unwrap()..groups_at];
        assert!(
            in_order(
                alert,
                &[
                    "status",
                    "labels",
                    "annotations",
                    "startsAt",
                    "endsAt",
                    "generatorURL",
                    "fingerprint"
                ]
            ),
            "{alert}"
        );
        assert!(
            text.contains("\\u0026g0.tab=1") && text.ends_with("}\n"),
            "{text}"
        );
    }
}

const CFG: &str = r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: URL/secret-token/hook
"#;

#[tokio::test]
async fn firing_then_resolved_reach_a_real_receiver() {
    let (hook, base) = start_hook().await;
    let n = notifier(&CFG.replace("URL", &base));
    n.put(
        vec![alert(
            &[("alertname", "AlwaysFiring"), ("severity", "none")],
            T0,
            T0 + 10 * M,
        )],
        T0,
    );
    n.flush_due(T0 + 500).await;
    assert!(hook.got.lock().is_empty(), "group_wait not over");
    n.flush_due(T0 + S).await;
    {
        let got = hook.got.lock();
        assert_eq!(got.len(), 1);
        let (path, headers, body) = &got[0];
        assert_eq!(path, "/secret-token/hook");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["groupKey"], "{}:{alertname=\"AlwaysFiring\"}");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(body["alerts"][0]["fingerprint"], "8807c8e9d85cba3d");
    }
    // Unchanged: nothing at the next group interval.
    n.put(
        vec![alert(
            &[("alertname", "AlwaysFiring"), ("severity", "none")],
            T0,
            T0 + 10 * M,
        )],
        T0 + 3 * S,
    );
    n.flush_due(T0 + 6 * S).await;
    assert_eq!(hook.got.lock().len(), 1);
    // Resolved: one resolved notification, then the group is gone.
    n.put(
        vec![alert(
            &[("alertname", "AlwaysFiring"), ("severity", "none")],
            T0,
            T0 + 8 * S,
        )],
        T0 + 8 * S,
    );
    n.flush_due(T0 + 11 * S).await;
    {
        let got = hook.got.lock();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].2["status"], "resolved");
        assert_eq!(got[1].2["alerts"][0]["endsAt"], rfc3339(Some(T0 + 8 * S)));
    }
    n.flush_due(T0 + 20 * S).await;
    assert_eq!(hook.got.lock().len(), 2);
    let d = n.deliveries();
    assert_eq!((d[0].sent, d[0].failed), (2, 0));
}

#[tokio::test]
async fn failures_are_retried_and_reported_without_the_url() {
    let (hook, base) = start_hook().await;
    hook.fail_first.lock().extend([500, 503]);
    let n = notifier(&CFG.replace("URL", &base));
    n.put(vec![alert(&[("alertname", "A")], T0, T0 + 10 * M)], T0);
    n.flush_due(T0 + S).await;
    assert_eq!(hook.got.lock().len(), 3, "two failures, then success");
    let d = &n.deliveries()[0];
    assert_eq!((d.sent, d.failed), (1, 2));
    assert!(d.last_error.is_none());

    // A receiver that is down: every attempt fails, the error names no URL or token.
    let n = notifier(&CFG.replace("URL", "http://127.0.0.1:1"));
    n.put(vec![alert(&[("alertname", "A")], T0, T0 + 10 * M)], T0);
    n.flush_due(T0 + S).await;
    let d = &n.deliveries()[0];
    assert_eq!((d.sent, d.failed), (0, 3));
    let err = d.last_error.clone().unwrap();
    assert!(
        !err.contains("secret-token") && !err.contains("127.0.0.1"),
        "{err}"
    );
    // Not logged as sent: the next flush tries again.
    n.flush_due(T0 + 6 * S).await;
    assert_eq!(n.deliveries()[0].failed, 6);
}

#[tokio::test]
async fn silenced_alerts_are_not_sent() {
    let (hook, base) = start_hook().await;
    let n = notifier(&CFG.replace("URL", &base));
    n.dispatcher
        .lock()
        .silences
        .set(
            SilenceInput {
                id: None,
                matchers: vec![SilenceMatcher {
                    name: "alertname".into(),
                    value: "Quiet".into(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at_ms: T0,
                ends_at_ms: T0 + M,
                created_by: "test".into(),
                comment: "silence".into(),
            },
            T0,
        )
        .unwrap();
    n.put(
        vec![
            alert(&[("alertname", "Quiet")], T0, T0 + 10 * M),
            alert(&[("alertname", "Loud")], T0, T0 + 10 * M),
        ],
        T0,
    );
    n.flush_due(T0 + S).await;
    let got = hook.got.lock();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2["groupLabels"]["alertname"], "Loud");
}

#[tokio::test]
async fn slack_messages_have_alertmanagers_layout() {
    let (hook, base) = start_hook().await;
    let cfg = format!(
        "route: {{receiver: chat, group_by: [alertname], group_wait: 0s}}\nreceivers:\n- name: chat\n  slack_configs:\n  - api_url: {base}/services/T0/B0/X\n    channel: '#ops'\n    send_resolved: true\n    text: '{{{{ range .Alerts }}}}{{{{ .Annotations.summary }}}} on {{{{ .Labels.instance }}}}{{{{ end }}}}'\n"
    );
    let n = notifier(&cfg);
    n.put(
        vec![alert(
            &[("alertname", "Down"), ("instance", "a:1"), ("job", "api")],
            T0,
            T0 + 10 * M,
        )],
        T0,
    );
    n.flush_due(T0).await;
    let got = hook.got.lock();
    let body = &got[0].2;
    assert_eq!(body["channel"], "#ops");
    assert_eq!(body["username"], "SignalBox");
    let at = &body["attachments"][0];
    assert_eq!(at["title"], "[FIRING:1] Down (a:1 api)");
    assert_eq!(
        at["title_link"],
        "http://localhost:19093/#/alerts?receiver=chat"
    );
    assert_eq!(at["text"], "test alert on a:1");
    assert_eq!(at["color"], "danger");
    assert_eq!(
        at["fallback"],
        "[FIRING:1] Down (a:1 api) | http://localhost:19093/#/alerts?receiver=chat"
    );
}

/// A minimal SMTP server: records the commands and the message. With an acceptor it
/// offers STARTTLS and, after it, AUTH.
async fn start_smtp_with(
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (Arc<Mutex<Vec<String>>>, String) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let lg0 = log.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let (lg, tls) = (lg0.clone(), tls.clone());
            tokio::spawn(async move {
                let Some(plain) = smtp_session(sock, &lg, true, tls.is_some()).await else {
                    return;
                };
                let Some(acc) = tls else { return };
                if let Ok(t) = acc.accept(plain).await {
                    lg.lock().push("<tls>".into());
                    smtp_session(t, &lg, false, false).await;
                }
            });
        }
    });
    (log, addr.to_string())
}

async fn start_smtp() -> (Arc<Mutex<Vec<String>>>, String) {
    start_smtp_with(None).await
}

/// One SMTP conversation; returns the stream when the client asks for STARTTLS.
async fn smtp_session<S>(
    sock: S,
    lg: &Arc<Mutex<Vec<String>>>,
    greet: bool,
    starttls: bool,
) -> Option<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut r = BufReader::new(sock);
    if greet {
        r.get_mut().write_all(b"220 test ESMTP\r\n").await.ok()?;
    }
    let mut in_data = false;
    let mut data = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                lg.lock().push(std::mem::take(&mut data));
                r.get_mut().write_all(b"250 queued\r\n").await.ok()?;
            } else {
                data.push_str(&line);
            }
            continue;
        }
        lg.lock().push(line.trim_end().to_string());
        let reply: &[u8] = match line.split_whitespace().next().unwrap_or("") {
            "EHLO" if starttls => b"250-test\r\n250 STARTTLS\r\n",
            "EHLO" => b"250-test\r\n250 AUTH PLAIN LOGIN\r\n",
            "STARTTLS" => {
                r.get_mut().write_all(b"220 ready\r\n").await.ok()?;
                return Some(r.into_inner());
            }
            "AUTH" => b"235 accepted\r\n",
            "DATA" => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                return None;
            }
            _ => b"250 ok\r\n",
        };
        r.get_mut().write_all(reply).await.ok()?;
    }
}

#[tokio::test]
async fn email_over_smtp() {
    let (log, addr) = start_smtp().await;
    let cfg = format!(
        "global: {{smtp_smarthost: '{addr}', smtp_from: 'SignalBox <alerts@example.com>', smtp_require_tls: false}}\nroute: {{receiver: mail, group_by: [alertname], group_wait: 0s}}\nreceivers:\n- name: mail\n  email_configs:\n  - to: 'ops@example.com, dev@example.com'\n"
    );
    let n = notifier(&cfg);
    n.put(
        vec![alert(
            &[("alertname", "Down"), ("instance", "a:1")],
            T0,
            T0 + 10 * M,
        )],
        T0,
    );
    n.flush_due(T0).await;
    let d = &n.deliveries()[0];
    assert_eq!((d.sent, d.failed), (1, 0), "{:?}", d.last_error);
    let log = log.lock().clone();
    assert!(
        log.contains(&"MAIL FROM:<alerts@example.com>".to_string()),
        "{log:?}"
    );
    assert!(log.contains(&"RCPT TO:<ops@example.com>".to_string()));
    assert!(log.contains(&"RCPT TO:<dev@example.com>".to_string()));
    let msg = log.iter().find(|l| l.contains("Subject:")).unwrap();
    assert!(
        msg.contains("Subject: [FIRING:1] Down (a:1 test alert)")
            || msg.contains("Subject: [FIRING:1] Down (a:1)"),
        "{msg}"
    );
    assert!(msg.contains("Content-Type: multipart/alternative"));
    // The text part lists the alert.
    let part = msg
        .split("Content-Transfer-Encoding: base64\r\n\r\n")
        .nth(1)
        .unwrap();
    let b64: String = part.split("\r\n--").next().unwrap().replace("\r\n", "");
    use base64::Engine as _;
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("instance = a:1") && text.contains("summary = test alert"),
        "{text}"
    );

    // STARTTLS is required by default: a server without it is refused before any mail.
    let (log2, addr2) = start_smtp().await;
    let n = notifier(
        &cfg.replace(&addr, &addr2)
            .replace(", smtp_require_tls: false", ""),
    );
    n.put(vec![alert(&[("alertname", "Down")], T0, T0 + 10 * M)], T0);
    n.flush_due(T0).await;
    let err = n.deliveries()[0].last_error.clone().unwrap();
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert!(!log2.lock().iter().any(|l| l.starts_with("MAIL")));
}

#[tokio::test]
async fn alerts_are_forwarded_like_prometheus_sends_them() {
    let (hook, base) = start_hook().await;
    let n = Notifier::new(
        Arc::new(AmConfig::empty()),
        NotifierOptions {
            forward: vec![ForwardTarget {
                url: Secret::new(format!("{base}/")),
                timeout: Duration::from_secs(5),
            }],
            ..Default::default()
        },
        None,
    );
    n.put(
        vec![alert(
            &[("alertname", "AlwaysFiring"), ("severity", "none")],
            T0,
            T0 + 60 * S,
        )],
        T0,
    );
    for _ in 0..500 {
        if !hook.got.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = hook.got.lock().clone();
    assert_eq!(got[0].0, "/api/v2/alerts");
    let p = format!(
        "{}/tests/data/prometheus-2.42-notifier/post-api-v2-alerts-resolved.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let want: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let (a, w) = (&got[0].2[0], &want["body"][0]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(a), keys(w));
    assert_eq!(a["labels"], w["labels"]);
    assert_eq!(a["generatorURL"], w["generatorURL"]);
    assert_eq!(a["endsAt"], rfc3339(Some(T0 + 60 * S)));
    assert_eq!(n.deliveries()[0].integration, "alertmanager");
}

#[tokio::test]
async fn email_with_starttls_and_auth() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = format!("{}/tests/data/tls", env!("CARGO_MANIFEST_DIR"));
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/server.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/server.key")).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let (log, addr) =
        start_smtp_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server)))).await;
    let port = addr.rsplit(':').next().unwrap();
    let cfg = format!(
        "route: {{receiver: mail, group_wait: 0s}}\nreceivers:\n- name: mail\n  email_configs:\n  - to: ops@example.com\n    from: alerts@example.com\n    smarthost: 'localhost:{port}'\n    auth_username: alerts\n    auth_password: hunter2\n    tls_config: {{ca_file: '{dir}/ca.pem'}}\n"
    );
    let n = notifier(&cfg);
    n.put(vec![alert(&[("alertname", "Down")], T0, T0 + 10 * M)], T0);
    n.flush_due(T0).await;
    let d = &n.deliveries()[0];
    assert_eq!((d.sent, d.failed), (1, 0), "{:?}", d.last_error);
    let log = log.lock().clone();
    let tls_at = log
        .iter()
        .position(|l| l == "<tls>")
        .expect("upgraded to TLS");
    let auth_at = log
        .iter()
        .position(|l| l.starts_with("AUTH PLAIN"))
        .expect("authenticated");
    assert!(tls_at < auth_at, "credentials only after STARTTLS: {log:?}");
    // No group_by: the group labels are empty, the alert name is a common label.
    assert!(
        log.iter()
            .any(|l| l.contains("Subject: [FIRING:1]  (Down)")),
        "{log:?}"
    );

    // Without the CA the server's certificate is not trusted: nothing is sent.
    let n = notifier(&cfg.replace(
        &format!("    tls_config: {{ca_file: '{dir}/ca.pem'}}\n"),
        "",
    ));
    n.put(vec![alert(&[("alertname", "Down")], T0, T0 + 10 * M)], T0);
    n.flush_due(T0).await;
    let err = n.deliveries()[0].last_error.clone().unwrap();
    assert!(err.contains("TLS handshake"), "{err}");
}

#[tokio::test]
async fn secret_files_are_read_when_sending() {
    let (hook, base) = start_hook().await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("url");
    std::fs::write(&f, format!("{base}/rotated-token/hook\n")).unwrap();
    let cfg = format!(
        "route: {{receiver: hook, group_wait: 0s, group_interval: 1s}}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url_file: {}\n",
        f.display()
    );
    let n = notifier(&cfg);
    n.put(vec![alert(&[("alertname", "A")], T0, T0 + 10 * M)], T0);
    n.flush_due(T0).await;
    assert_eq!(hook.got.lock()[0].0, "/rotated-token/hook");
    // The file is gone: the delivery fails and says which file, not what was in it.
    std::fs::remove_file(&f).unwrap();
    n.put(vec![alert(&[("alertname", "B")], T0, T0 + 10 * M)], T0 + S);
    n.flush_due(T0 + 2 * S).await;
    let err = n.deliveries()[0].last_error.clone().unwrap();
    assert!(
        err.contains("reading secret file") && !err.contains("rotated-token"),
        "{err}"
    );
}
