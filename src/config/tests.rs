use super::*;
use clap::Parser;

fn cli(args: &[&str]) -> Cli {
    Cli::parse_from(std::iter::once("signalbox").chain(args.iter().copied()))
}

fn write(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn defaults_need_no_file() {
    let cfg = Config::load(&cli(&[]), &[]).unwrap();
    let s = cfg.validate().unwrap();
    assert_eq!(s.otlp_grpc_addr.to_string(), "127.0.0.1:4317");
    assert_eq!(s.otlp_http_addr.to_string(), "127.0.0.1:4318");
    assert_eq!(s.http_addr.to_string(), "127.0.0.1:4320");
    assert_eq!(s.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(s.storage.metrics.retention, Duration::from_secs(15 * 86400));
}

#[test]
fn layers_apply_in_order_file_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        "data_dir: /from/file\nhttp:\n  addr: 0.0.0.0:9000\nstorage:\n  metrics:\n    retention: 30d\n    head_size: 64MiB\n    flush_size: 16MiB\n    flush_interval: 5m\n    part_window: 2h\n    max_parts_per_window: 4\n    max_merge_size: 1GiB\n",
    );
    let env = vec![
        (
            "SIGNALBOX_HTTP__ADDR".to_string(),
            "0.0.0.0:9100".to_string(),
        ),
        (
            "SIGNALBOX_STORAGE__LIMITS__MAX_ACTIVE_SERIES".to_string(),
            "5000".to_string(),
        ),
        ("HOME".to_string(), "/root".to_string()),
    ];
    let cfg = Config::load(&cli(&["--config", &f, "--data-dir", "/from/flag"]), &env).unwrap();
    let s = cfg.validate().unwrap();
    assert_eq!(s.storage.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(s.http_addr.to_string(), "0.0.0.0:9100");
    assert_eq!(s.storage.limits.max_active_series, 5000);
    assert_eq!(s.storage.metrics.retention, Duration::from_secs(30 * 86400));
    assert_eq!(s.storage.metrics.max_head_bytes, 64 << 20);
    assert_eq!(
        s.storage.logs.retention,
        Duration::from_secs(7 * 86400),
        "untouched sections keep defaults"
    );
}

#[test]
fn toml_works_too() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "c.toml",
        "[otlp]\ngrpc_addr = \"0.0.0.0:14317\"\nmax_request_size = \"4MiB\"\n[storage.wal]\nfsync = \"interval\"\nfsync_interval = \"50ms\"\n",
    );
    let s = Config::load(&cli(&["--config", &f]), &[])
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(s.otlp_grpc_addr.port(), 14317);
    assert_eq!(s.collector.max_request_bytes, 4 << 20);
    assert_eq!(
        s.storage.wal.fsync,
        FsyncPolicy::Interval(Duration::from_millis(50))
    );
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.yaml", "otlp:\n  grcp_addr: 1.2.3.4:1\n");
    let err = Config::load(&cli(&["--config", &f]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("grcp_addr"), "{err}");
    let err = Config::load(&cli(&[]), &[("SIGNALBOX_STORAGE__NOPE".into(), "1".into())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    let f = write(
        dir.path(),
        "d.yaml",
        "storage:\n  wal:\n    segment_size: 12XB\n",
    );
    let err = Config::load(&cli(&["--config", &f]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("12XB"), "{err}");
    let err = Config::load(&cli(&["--http-addr", "localhost"]), &[])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("http.addr"), "{err}");
    let err = Config::load(&cli(&["--config", "/no/such/file.yaml"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
    assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert!(parse_size("12 parsecs").is_err());
}

/// Every example configuration shipped in `deploy/` loads and validates.
#[test]
fn shipped_example_configs_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut found = 0;
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("signalbox") && (n.ends_with(".yaml") || n.ends_with(".toml"))
            }) {
                let c = Config::load(&cli(&["--config", p.to_str().unwrap()]), &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                c.validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                found += 1;
            }
        }
    }
    assert!(found >= 2, "expected example configs in deploy/");
}

#[test]
fn start_times_reach_the_collector_and_the_engine() {
    let off = Config::load(&cli(&[]), &[]).unwrap().validate().unwrap();
    assert!(!off.collector.start_times && !off.promql.start_times);
    let env = [(
        "SIGNALBOX_PROMQL__START_TIMES".to_string(),
        "true".to_string(),
    )];
    let on = Config::load(&cli(&[]), &env).unwrap().validate().unwrap();
    assert!(on.collector.start_times && on.promql.start_times);
}

#[test]
fn rules_and_alerting_settings() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        "rules:\n  files: [rules/*.yml]\n  evaluation_interval: 30s\n  external_labels: {cluster: eu}\nalerting:\n  config:\n    route: {receiver: ops}\n    receivers:\n    - name: ops\n      webhook_configs: [{url: 'http://hooks/x'}]\n  alertmanagers: [{url: 'http://am:9093'}]\n",
    );
    let (_, s) = settings(&cli(&["--config", &f, "--rule-file", "extra.yml"])).unwrap();
    let files: Vec<&str> = s.rules.files.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files.len(), 2);
    assert!(
        files[0].ends_with("rules/*.yml")
            && files[0].starts_with(&dir.path().display().to_string())
    );
    assert_eq!(files[1], "extra.yml");
    assert_eq!(s.rules.evaluation_interval, Duration::from_secs(30));
    assert_eq!(s.rules.external_url, "http://127.0.0.1:4320");
    let am =
        signalbox_query::alerting::parse_config(s.alerting.embedded.as_deref().unwrap(), &|_| None)
            .unwrap();
    assert_eq!(am.receivers[0].name, "ops");
    assert_eq!(s.alerting.forward[0].0, "http://am:9093");
    // --alertmanager-config replaces the embedded settings.
    let (_, s) = settings(&cli(&["--config", &f, "--alertmanager-config", "am.yml"])).unwrap();
    assert_eq!(s.alerting.config_file, Some(PathBuf::from("am.yml")));
    assert!(s.alerting.embedded.is_none());
    let bad = write(
        dir.path(),
        "b.yaml",
        "alerting:\n  alertmanagers: [{url: 'am:9093'}]\n",
    );
    assert!(settings(&cli(&["--config", &bad])).is_err());
}
