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
}
