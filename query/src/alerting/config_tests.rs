use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const AM: &str = r#"
global:
  resolve_timeout: 2m
  slack_api_url: https://hooks.slack.example/T000/B000/XXXX
  smtp_smarthost: mail.example.com:587
  smtp_from: alerts@example.com
  smtp_auth_username: alerts
  smtp_auth_password: hunter2
  pagerduty_url: https://events.pagerduty.com/v2/enqueue
route:
  receiver: team
  group_by: [alertname, cluster]
  group_wait: 10s
  routes:
  - matchers: ['severity="page"']
    receiver: pager
    repeat_interval: 1h
    continue: true
    routes:
    - match: {team: db}
      receiver: db
  - match_re: {service: "api|web"}
    group_by: ['...']
receivers:
- name: team
  webhook_configs:
  - url: http://127.0.0.1:9/hook
    max_alerts: 10
- name: pager
  slack_configs:
  - channel: '#pager'
    send_resolved: true
  email_configs:
  - to: oncall@example.com
- name: db
  pagerduty_configs:
  - service_key: abc
inhibit_rules:
- source_matchers: [severity="critical"]
  target_matchers: [severity="warning"]
  equal: [alertname, instance]
"#;

#[test]
fn alertmanager_file_with_inheritance_and_defaults() {
    let c = parse(AM, &no_env).unwrap();
    assert_eq!(c.resolve_timeout, Duration::from_secs(120));
    let root = &c.route;
    assert_eq!(root.key, "{}");
    assert_eq!(
        root.group_by,
        GroupBy::Labels(vec!["alertname".into(), "cluster".into()])
    );
    assert_eq!(root.group_interval, Duration::from_secs(300));
    let pager = &root.routes[0];
    assert_eq!(pager.receiver, "pager");
    assert_eq!(pager.group_wait, Duration::from_secs(10), "inherited");
    assert_eq!(pager.repeat_interval, Duration::from_secs(3600));
    assert!(pager.continue_);
    assert_eq!(pager.key, "{}/{severity=\"page\"}");
    let db = &pager.routes[0];
    assert_eq!(
        db.repeat_interval,
        Duration::from_secs(3600),
        "inherited from its parent"
    );
    assert_eq!(db.key, "{}/{severity=\"page\"}/{team=\"db\"}");
    assert_eq!(root.routes[1].group_by, GroupBy::All);
    assert_eq!(root.routes[1].receiver, "team", "receiver inherited");

    let Integration::Slack(s) = &c.receiver("pager").unwrap().integrations[0] else {
        panic!("slack expected")
    };
    assert_eq!(
        s.api_url.value().unwrap(),
        "https://hooks.slack.example/T000/B000/XXXX"
    );
    let Integration::Email(e) = &c.receiver("pager").unwrap().integrations[1] else {
        panic!("email expected")
    };
    assert_eq!(e.smarthost, "mail.example.com:587");
    assert_eq!(e.auth_password.value().unwrap(), "hunter2");
    assert!(e.require_tls);
    assert!(
        c.receiver("team").unwrap().integrations[0].send_resolved(),
        "webhooks send resolved by default"
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("pagerduty_configs")),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("pagerduty_url")),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.inhibit_rules[0].equal, ["alertname", "instance"]);

    // Secrets never show.
    assert!(
        !c.masked.contains("hunter2")
            && !c.masked.contains("XXXX")
            && !c.masked.contains("127.0.0.1:9")
    );
    assert!(c.masked.contains("smtp_auth_password: <secret>"));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn secrets_from_files_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("url");
    std::fs::write(&f, "https://hooks.example/secret\n").unwrap();
    let text = format!(
        "route: {{receiver: a}}\nreceivers:\n- name: a\n  webhook_configs:\n  - url_file: {}\n  - url: 'http://h/${{TOKEN}}/x'\n",
        f.display()
    );
    let env = |k: &str| (k == "TOKEN").then(|| "t0k3n".to_string());
    let c = parse(&text, &env).unwrap();
    let urls: Vec<String> = c.receivers[0]
        .integrations
        .iter()
        .map(|i| match i {
            Integration::Webhook(w) => w.url.value().unwrap(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(urls, ["https://hooks.example/secret", "http://h/t0k3n/x"]);
    let e = parse(&text, &no_env).unwrap_err();
    assert!(e.contains("TOKEN is not set"), "{e}");
}

#[test]
fn errors_are_named() {
    let e = |t: &str| parse(t, &no_env).unwrap_err();
    assert!(e("receivers: [{name: a}]\n").contains("no route"));
    assert!(
        e("route: {receiver: b}\nreceivers: [{name: a}]\n").contains("undefined receiver \"b\"")
    );
    assert!(
        e("route: {receiver: a, matchers: [x=y]}\nreceivers: [{name: a}]\n")
            .contains("root route must not have any matchers")
    );
    assert!(e("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n").contains("not unique"));
    assert!(
        e("route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]\n")
            .contains("group_interval cannot be zero")
    );
    assert!(
        e("route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs: [{url: 'ftp://x'}]\n")
            .contains("http or https")
    );
    assert!(
        e("route: {receiver: a, routes: [{matchers: ['a=~(']}]}\nreceivers: [{name: a}]\n")
            .contains("a")
    );
    let c = AmConfig::empty();
    assert_eq!(c.route.receiver, "default");
}

#[test]
fn booleans_and_numbers_in_global_and_integrations() {
    let c = parse(
        "global: {smtp_smarthost: 'h:25', smtp_from: 'a@b', smtp_require_tls: false}\nroute: {receiver: m}\nreceivers:\n- name: m\n  email_configs: [{to: x@y}]\n  webhook_configs: [{url: 'http://h/x', send_resolved: false, max_alerts: 3}]\n",
        &no_env,
    )
    .unwrap();
    let Integration::Email(e) = &c.receivers[0].integrations[1] else {
        panic!("email")
    };
    assert!(!e.require_tls);
    let Integration::Webhook(w) = &c.receivers[0].integrations[0] else {
        panic!("webhook")
    };
    assert!(!w.send_resolved);
    assert_eq!(w.max_alerts, 3);
}
