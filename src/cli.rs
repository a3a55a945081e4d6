//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// SignalBox: OpenTelemetry metrics, logs and traces in one server.
#[derive(Parser, Debug)]
#[command(name = "signalbox", version, about)]
pub(crate) struct Cli {
    /// Configuration file (YAML or TOML); environment variables `SIGNALBOX_*` and these
    /// flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where the WAL and parts live [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long, value_name = "ADDR")]
    pub(crate) otlp_grpc_addr: Option<String>,
    /// OTLP/HTTP listen address [default: 127.0.0.1:4318].
    #[arg(long, value_name = "ADDR")]
    pub(crate) otlp_http_addr: Option<String>,
    /// UI, query APIs, health and metrics listen address [default: 127.0.0.1:4320].
    #[arg(long, value_name = "ADDR")]
    pub(crate) http_addr: Option<String>,
    /// A Prometheus rule file or glob to load, in addition to `rules.files` in the
    /// configuration (repeatable).
    #[arg(long, value_name = "PATH")]
    pub(crate) rule_file: Vec<PathBuf>,
    /// An Alertmanager configuration file (`alertmanager.yml`) for notifications,
    /// instead of `alerting.config_file` / `alerting.config` in the configuration.
    #[arg(long, value_name = "PATH")]
    pub(crate) alertmanager_config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the server (the default).
    Serve,
    /// Exit 0 if the server at the configured HTTP address is ready, 1 otherwise.
    Healthcheck {
        /// Address to check instead of the configured one.
        #[arg(long, value_name = "ADDR")]
        addr: Option<String>,
    },
    /// Check a configuration: print the effective settings or what is wrong.
    CheckConfig,
    /// Notification settings (an `alertmanager.yml`): check them (like `amtool
    /// check-config`).
    Alertmanager {
        #[command(subcommand)]
        action: AlertmanagerCommand,
    },
    /// Dashboard files (for the provisioning folder): check them.
    Dashboards {
        #[command(subcommand)]
        action: DashboardsCommand,
    },
    /// Rule files: check them, or run their unit tests (like `promtool`).
    Rules {
        #[command(subcommand)]
        action: RulesCommand,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCommand {
    /// Check rule files (YAML, expressions, templates, names); exit 1 on any error.
    Check {
        /// The expressions are LogQL (Loki ruler files) instead of PromQL.
        #[arg(long)]
        logql: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run rule unit tests (`promtool test rules` format); exit 1 if any fails.
    Test {
        /// Run only the test groups whose name matches this regular expression
        /// (repeatable).
        #[arg(long, value_name = "REGEX")]
        run: Vec<String>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AlertmanagerCommand {
    /// Check Alertmanager configuration files; exit 1 on any error.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum DashboardsCommand {
    /// Check dashboard files (SignalBox or Grafana JSON, or YAML) as the provisioning
    /// folder reads them; exit 1 on any error.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}
