//! The configuration file tree: built-in defaults ← file (YAML or TOML) ← environment
//! (`SIGNALBOX_*`, `__` between levels) ← command-line flags; unknown keys are errors.
//! `validate` turns it into the typed settings the crates take.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml, Yaml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use signalbox_collector::CollectorConfig;
use signalbox_query::rules::Lang;
use signalbox_storage::{FsyncPolicy, Limits, SignalConfig, StorageConfig, WalOptions};

use crate::cli::Cli;

/// A size in bytes, written `512MiB`, `1GB`, `4096` or `64KiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

/// A duration, written `15d`, `10m`, `100ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dur(pub(crate) Duration);

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    Ok((n * mult as f64) as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        let text = if b > 0 && b.is_multiple_of(1 << 30) {
            format!("{}GiB", b >> 30)
        } else if b > 0 && b.is_multiple_of(1 << 20) {
            format!("{}MiB", b >> 20)
        } else {
            format!("{b}B")
        };
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) data_dir: PathBuf,
    pub(crate) otlp: OtlpConfig,
    pub(crate) http: HttpConfig,
    pub(crate) storage: StorageSection,
    pub(crate) rules: RulesSection,
    pub(crate) alerting: AlertingSection,
    pub(crate) dashboards: DashboardsSection,
    pub(crate) promql: PromqlSection,
    pub(crate) log: LogConfig,
}

/// PromQL evaluation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PromqlSection {
    /// Keep the start times of cumulative OTLP points and let `rate`, `increase`,
    /// `irate`, `resets` and `start_timestamp` use them (off by default, as in
    /// Prometheus; answers then match a Prometheus that ignores them).
    pub(crate) start_times: bool,
}

/// Dashboards provisioned from files (read-only in the UI), besides those saved in
/// the UI under `data_dir/dashboards`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DashboardsSection {
    /// A folder of dashboard files (`*.json`, `*.yaml`; SignalBox or Grafana JSON),
    /// relative to this file's folder.
    pub(crate) dir: Option<PathBuf>,
}

/// Notifications: Alertmanager's configuration, from a file or embedded here, and
/// external Alertmanagers to forward alerts to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AlertingSection {
    /// An `alertmanager.yml` (relative to this file's folder); `--alertmanager-config`
    /// overrides it.
    pub(crate) config_file: Option<PathBuf>,
    /// The same content embedded here instead of a file.
    pub(crate) config: Option<serde_yaml::Value>,
    /// External Alertmanagers that also get every alert (`POST <url>/api/v2/alerts`).
    pub(crate) alertmanagers: Vec<ForwardSection>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardSection {
    pub(crate) url: String,
    #[serde(default = "ten_seconds")]
    pub(crate) timeout: Dur,
}

fn ten_seconds() -> Dur {
    Dur(Duration::from_secs(10))
}

/// Typed notification settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertingSettings {
    pub(crate) config_file: Option<PathBuf>,
    /// Embedded configuration as YAML text.
    pub(crate) embedded: Option<String>,
    pub(crate) forward: Vec<(String, Duration)>,
}

/// Alerting and recording rules.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RulesSection {
    /// Prometheus rule files and globs (relative to the config file's folder).
    pub(crate) files: Vec<String>,
    /// Rule files whose expressions are LogQL (Loki ruler format).
    pub(crate) logql_files: Vec<String>,
    /// How often groups without their own `interval` are evaluated.
    pub(crate) evaluation_interval: Dur,
    /// Alert state saved longer ago than this is not restored.
    pub(crate) outage_tolerance: Dur,
    /// The URL this server is reached at, for `$externalURL` in templates.
    pub(crate) external_url: String,
    /// Labels for `$externalLabels` in templates.
    pub(crate) external_labels: std::collections::BTreeMap<String, String>,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection {
            files: Vec::new(),
            logql_files: Vec::new(),
            evaluation_interval: Dur(Duration::from_secs(60)),
            outage_tolerance: Dur(Duration::from_secs(3600)),
            external_url: String::new(),
            external_labels: Default::default(),
        }
    }
}

/// Typed rule settings.
#[derive(Debug, Clone)]
pub(crate) struct RulesSettings {
    pub(crate) files: Vec<(String, Lang)>,
    pub(crate) evaluation_interval: Duration,
    pub(crate) outage_tolerance: Duration,
    pub(crate) external_url: String,
    pub(crate) external_labels: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct OtlpConfig {
    pub(crate) grpc_addr: String,
    pub(crate) http_addr: String,
    /// Largest accepted request body, before and after decompression.
    pub(crate) max_request_size: ByteSize,
    /// Request bytes being decoded at once before new requests are refused (retryably).
    pub(crate) max_inflight: ByteSize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpConfig {
    pub(crate) addr: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageSection {
    pub(crate) wal: WalSection,
    pub(crate) limits: LimitsSection,
    pub(crate) metrics: SignalSection,
    pub(crate) logs: SignalSection,
    pub(crate) traces: SignalSection,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fsync {
    /// Acknowledge after an fsync; concurrent writes share fsyncs.
    Batch,
    /// Acknowledge once written; fsync every `fsync_interval`.
    Interval,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WalSection {
    pub(crate) fsync: Fsync,
    pub(crate) fsync_interval: Dur,
    pub(crate) segment_size: ByteSize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsSection {
    pub(crate) max_active_series: usize,
    pub(crate) max_labels_per_series: usize,
    pub(crate) max_label_name_length: usize,
    pub(crate) max_label_value_length: usize,
    pub(crate) max_future: Dur,
    pub(crate) max_exemplars: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalSection {
    pub(crate) retention: Dur,
    #[serde(default)]
    pub(crate) max_size: Option<ByteSize>,
    pub(crate) head_size: ByteSize,
    pub(crate) flush_size: ByteSize,
    pub(crate) flush_interval: Dur,
    pub(crate) part_window: Dur,
    pub(crate) max_parts_per_window: usize,
    pub(crate) max_merge_size: ByteSize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a filter like `info,signalbox_storage=debug`.
    pub(crate) level: String,
    /// `text` or `json`.
    pub(crate) format: String,
}

impl SignalSection {
    fn from(c: &SignalConfig) -> SignalSection {
        SignalSection {
            retention: Dur(c.retention),
            max_size: c.max_bytes.map(ByteSize),
            head_size: ByteSize(c.max_head_bytes),
            flush_size: ByteSize(c.flush_bytes),
            flush_interval: Dur(c.flush_interval),
            part_window: Dur(c.part_window),
            max_parts_per_window: c.max_parts_per_window,
            max_merge_size: ByteSize(c.max_merge_bytes),
        }
    }

    fn validate(&self, name: &str) -> anyhow::Result<SignalConfig> {
        if self.head_size.0 < 1 << 20 {
            bail!("storage.{name}.head_size must be at least 1MiB");
        }
        if self.flush_size.0 == 0 || self.flush_size.0 > self.head_size.0 {
            bail!("storage.{name}.flush_size must be between 1 byte and head_size");
        }
        if self.part_window.0 < Duration::from_secs(60) {
            bail!("storage.{name}.part_window must be at least 1m");
        }
        if self.retention.0 < self.flush_interval.0 {
            bail!("storage.{name}.retention must be at least flush_interval");
        }
        if self.max_parts_per_window < 2 {
            bail!("storage.{name}.max_parts_per_window must be at least 2");
        }
        Ok(SignalConfig {
            max_head_bytes: self.head_size.0,
            flush_bytes: self.flush_size.0,
            flush_interval: self.flush_interval.0,
            part_window: self.part_window.0,
            retention: self.retention.0,
            max_bytes: self.max_size.map(|b| b.0),
            max_parts_per_window: self.max_parts_per_window,
            max_merge_bytes: self.max_merge_size.0,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        let s = StorageConfig::new("./data");
        let c = CollectorConfig::default();
        Config {
            data_dir: PathBuf::from("./data"),
            otlp: OtlpConfig {
                grpc_addr: "127.0.0.1:4317".into(),
                http_addr: "127.0.0.1:4318".into(),
                max_request_size: ByteSize(c.max_request_bytes as u64),
                max_inflight: ByteSize(c.max_inflight_bytes as u64),
            },
            http: HttpConfig {
                addr: "127.0.0.1:4320".into(),
            },
            storage: StorageSection {
                wal: WalSection::default(),
                limits: LimitsSection::default(),
                metrics: SignalSection::from(&s.metrics),
                logs: SignalSection::from(&s.logs),
                traces: SignalSection::from(&s.traces),
            },
            rules: RulesSection::default(),
            alerting: AlertingSection::default(),
            dashboards: DashboardsSection::default(),
            promql: PromqlSection::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Config::default().otlp
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Config::default().http
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        Config::default().storage
    }
}

impl Default for WalSection {
    fn default() -> Self {
        let w = WalOptions::default();
        WalSection {
            fsync: Fsync::Batch,
            fsync_interval: Dur(Duration::from_millis(100)),
            segment_size: ByteSize(w.segment_bytes),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        let l = Limits::default();
        LimitsSection {
            max_active_series: l.max_active_series,
            max_labels_per_series: l.max_labels_per_series,
            max_label_name_length: l.max_label_name_length,
            max_label_value_length: l.max_label_value_length,
            max_future: Dur(l.max_future),
            max_exemplars: l.max_exemplars,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// The typed settings the server is built from.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) storage: StorageConfig,
    pub(crate) collector: CollectorConfig,
    pub(crate) otlp_grpc_addr: SocketAddr,
    pub(crate) otlp_http_addr: SocketAddr,
    pub(crate) http_addr: SocketAddr,
    pub(crate) rules: RulesSettings,
    pub(crate) alerting: AlertingSettings,
    pub(crate) dashboards_dir: Option<PathBuf>,
    pub(crate) promql: signalbox_query::promql::EngineOptions,
    pub(crate) log: LogConfig,
}

fn addr(key: &str, s: &str) -> anyhow::Result<SocketAddr> {
    s.parse()
        .with_context(|| format!("{key}: {s:?} is not an address like 127.0.0.1:4317 or [::]:4317"))
}

impl Config {
    /// Layers defaults, the file, the environment and the flags, and rejects unknown keys.
    pub(crate) fn load(cli: &Cli, env: &[(String, String)]) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &cli.config {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            fig = match path.extension().and_then(|e| e.to_str()) {
                Some("yaml" | "yml") => fig.merge(Yaml::file_exact(path)),
                Some("toml") => fig.merge(Toml::file_exact(path)),
                _ => bail!(
                    "config file {} must end in .yaml, .yml or .toml",
                    path.display()
                ),
            };
        }
        fig = fig.merge(env_provider(env));
        #[derive(Serialize)]
        struct Flags {
            #[serde(skip_serializing_if = "Option::is_none")]
            data_dir: Option<PathBuf>,
            otlp: FlagsOtlp,
            http: FlagsHttp,
        }
        #[derive(Serialize)]
        struct FlagsOtlp {
            #[serde(skip_serializing_if = "Option::is_none")]
            grpc_addr: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            http_addr: Option<String>,
        }
        #[derive(Serialize)]
        struct FlagsHttp {
            #[serde(skip_serializing_if = "Option::is_none")]
            addr: Option<String>,
        }
        fig = fig.merge(Serialized::defaults(Flags {
            data_dir: cli.data_dir.clone(),
            otlp: FlagsOtlp {
                grpc_addr: cli.otlp_grpc_addr.clone(),
                http_addr: cli.otlp_http_addr.clone(),
            },
            http: FlagsHttp {
                addr: cli.http_addr.clone(),
            },
        }));
        fig.extract::<Config>().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", msgs.join("; "))
        })
    }

    pub(crate) fn validate(&self) -> anyhow::Result<Settings> {
        let mut storage = StorageConfig::new(&self.data_dir);
        storage.wal = WalOptions {
            fsync: match self.storage.wal.fsync {
                Fsync::Batch => FsyncPolicy::Batch,
                Fsync::Interval => FsyncPolicy::Interval(self.storage.wal.fsync_interval.0),
            },
            segment_bytes: self.storage.wal.segment_size.0.max(1 << 20),
        };
        let l = &self.storage.limits;
        if l.max_active_series == 0 || l.max_labels_per_series == 0 {
            bail!("storage.limits: max_active_series and max_labels_per_series must be positive");
        }
        // The whole buffer is written into the WAL at every head cut, as one record.
        if l.max_exemplars > 1_000_000 {
            bail!("storage.limits.max_exemplars must be at most 1000000");
        }
        storage.limits = Limits {
            max_active_series: l.max_active_series,
            max_labels_per_series: l.max_labels_per_series,
            max_label_name_length: l.max_label_name_length.max(1),
            max_label_value_length: l.max_label_value_length.max(1),
            max_future: l.max_future.0,
            max_exemplars: l.max_exemplars,
        };
        storage.metrics = self.storage.metrics.validate("metrics")?;
        storage.logs = self.storage.logs.validate("logs")?;
        storage.traces = self.storage.traces.validate("traces")?;
        if self.otlp.max_request_size.0 < 1024 {
            bail!("otlp.max_request_size must be at least 1KiB");
        }
        if self.otlp.max_inflight.0 < self.otlp.max_request_size.0 {
            bail!("otlp.max_inflight must be at least otlp.max_request_size");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log.format must be text or json, not {:?}", self.log.format);
        }
        if self.rules.evaluation_interval.0.is_zero() {
            bail!("rules.evaluation_interval must be positive");
        }
        let http_addr = addr("http.addr", &self.http.addr)?;
        let external_url = if self.rules.external_url.is_empty() {
            let host = if http_addr.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                http_addr.ip().to_string()
            };
            format!("http://{host}:{}", http_addr.port())
        } else {
            self.rules.external_url.trim_end_matches('/').to_string()
        };
        let rules = RulesSettings {
            files: self
                .rules
                .files
                .iter()
                .map(|f| (f.clone(), Lang::PromQL))
                .chain(
                    self.rules
                        .logql_files
                        .iter()
                        .map(|f| (f.clone(), Lang::LogQL)),
                )
                .collect(),
            evaluation_interval: self.rules.evaluation_interval.0,
            outage_tolerance: self.rules.outage_tolerance.0,
            external_url,
            external_labels: self.rules.external_labels.clone(),
        };
        if self.alerting.config_file.is_some() && self.alerting.config.is_some() {
            bail!("alerting: set config_file or config, not both");
        }
        let embedded = match &self.alerting.config {
            Some(v) => Some(serde_yaml::to_string(v).context("alerting.config")?),
            None => None,
        };
        for f in &self.alerting.alertmanagers {
            if !(f.url.starts_with("http://") || f.url.starts_with("https://")) {
                bail!("alerting.alertmanagers: url must start with http:// or https://");
            }
        }
        let alerting = AlertingSettings {
            config_file: self.alerting.config_file.clone(),
            embedded,
            forward: self
                .alerting
                .alertmanagers
                .iter()
                .map(|f| (f.url.clone(), f.timeout.0))
                .collect(),
        };
        Ok(Settings {
            alerting,
            rules,
            storage,
            collector: CollectorConfig {
                max_request_bytes: self.otlp.max_request_size.0 as usize,
                max_inflight_bytes: self.otlp.max_inflight.0 as usize,
                start_times: self.promql.start_times,
            },
            promql: signalbox_query::promql::EngineOptions {
                start_times: self.promql.start_times,
                ..Default::default()
            },
            otlp_grpc_addr: addr("otlp.grpc_addr", &self.otlp.grpc_addr)?,
            otlp_http_addr: addr("otlp.http_addr", &self.otlp.http_addr)?,
            http_addr,
            dashboards_dir: self.dashboards.dir.clone(),
            log: self.log.clone(),
        })
    }
}

/// `SIGNALBOX_STORAGE__METRICS__RETENTION=30d` → `storage.metrics.retention`.
fn env_provider(env: &[(String, String)]) -> figment::providers::Serialized<figment::value::Dict> {
    let mut dict = figment::value::Dict::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("SIGNALBOX_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        insert(&mut dict, &path, v);
    }
    Serialized::defaults(dict)
}

fn insert(dict: &mut figment::value::Dict, path: &[String], v: &str) {
    use figment::value::{Dict, Value};
    match path {
        [] => {}
        [last] => {
            // Numbers and booleans stay what they are, so that integer and on/off
            // settings can come from the environment.
            let value = match (v.parse::<u64>(), v.parse::<bool>()) {
                (Ok(n), _) => Value::from(n),
                (_, Ok(b)) => Value::from(b),
                _ => Value::from(v.to_string()),
            };
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, v);
            }
        }
    }
}

/// Loads and validates; the error names what is wrong.
pub(crate) fn settings(cli: &Cli) -> anyhow::Result<(Config, Settings)> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cfg = Config::load(cli, &env)?;
    let mut s = cfg.validate()?;
    // Rule files in the config file are relative to its folder; `--rule-file` ones to
    // the working directory, and add to the configured ones.
    if let Some(dir) = cli.config.as_deref().and_then(std::path::Path::parent) {
        for (f, _) in &mut s.rules.files {
            if std::path::Path::new(f.as_str()).is_relative() && !dir.as_os_str().is_empty() {
                *f = dir.join(f.as_str()).to_string_lossy().into_owned();
            }
        }
    }
    if let (Some(dir), Some(f)) = (
        cli.config.as_deref().and_then(std::path::Path::parent),
        s.alerting.config_file.as_mut(),
    ) && f.is_relative()
        && !dir.as_os_str().is_empty()
    {
        *f = dir.join(&*f);
    }
    if let (Some(dir), Some(d)) = (
        cli.config.as_deref().and_then(std::path::Path::parent),
        s.dashboards_dir.as_mut(),
    ) && d.is_relative()
        && !dir.as_os_str().is_empty()
    {
        *d = dir.join(&*d);
    }
    if let Some(f) = &cli.alertmanager_config {
        s.alerting.config_file = Some(f.clone());
        s.alerting.embedded = None;
    }
    for f in &cli.rule_file {
        s.rules
            .files
            .push((f.to_string_lossy().into_owned(), Lang::PromQL));
    }
    Ok((cfg, s))
}

#[cfg(test)]
mod tests;
