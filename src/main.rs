//! `signalbox`: parses the command line, loads the configuration and runs the server
//! (or one of the small subcommands).

mod cli;
mod config;
mod healthcheck;
mod server;
mod status;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{AlertmanagerCommand, Cli, Command, DashboardsCommand, RulesCommand};

/// mimalloc instead of the system allocator: ingest allocates many small strings from
/// many threads, where glibc's malloc spent over half of the CPU time (measured with
/// `perf record` under `loadgen`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(cfg: &config::LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if cfg.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Checks each file with `load` (the server's own loader): its warnings, then a
/// one-line summary or the error. Exit status 1 if any file fails.
fn check_files<T>(
    files: &[std::path::PathBuf],
    load: impl Fn(&std::path::Path) -> Result<(T, Vec<String>), String>,
    summary: impl Fn(&T) -> String,
) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match load(f) {
            Ok((x, warnings)) => {
                for w in &warnings {
                    println!("  WARNING: {w}");
                }
                println!("  SUCCESS: {}", summary(&x));
            }
            Err(e) => {
                ok = false;
                println!("  FAILED: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `signalbox dashboards check`: reads each file as the provisioning folder would.
fn check_dashboards(files: &[std::path::PathBuf]) -> ExitCode {
    check_files(files, signalbox_query::dashboards::load_file, |d| {
        format!(
            "{:?} ({}), {} panels, {} variables",
            d.title,
            d.uid,
            d.panels.len(),
            d.variables.len()
        )
    })
}

/// `signalbox alertmanager check`: parses each file as the server would.
fn check_alertmanager(files: &[std::path::PathBuf]) -> ExitCode {
    check_files(
        files,
        |f| {
            signalbox_query::alerting::load_config(f)
                .map(|c| {
                    let w = c.warnings.clone();
                    (c, w)
                })
                .map_err(|e| e.to_string())
        },
        |c| {
            format!(
                "{} receivers, {} inhibit rules",
                c.receivers.len(),
                c.inhibit_rules.len()
            )
        },
    )
}

/// `signalbox rules check|test`: needs no configuration.
fn rules_command(action: RulesCommand) -> ExitCode {
    use signalbox_query::rules::{Lang, file::check_files, unittest};
    let ok = match action {
        RulesCommand::Check { logql, files } => {
            let (ok, out) = check_files(&files, if logql { Lang::LogQL } else { Lang::PromQL });
            print!("{out}");
            ok
        }
        RulesCommand::Test { run, files } => {
            let mut opts = unittest::TestOptions::default();
            for r in run {
                match regex::Regex::new(&r) {
                    Ok(re) => opts.run.push(re),
                    Err(e) => {
                        eprintln!("signalbox: --run {r:?}: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let rt = match tokio::runtime::Builder::new_current_thread().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("signalbox: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut ok = true;
            for f in files {
                let (passed, out) = rt.block_on(unittest::test_file(&f, &opts));
                println!("{out}");
                ok &= passed;
            }
            ok
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    signalbox_query::install_tls_provider();
    let mut cli = Cli::parse();
    if matches!(cli.command, Some(Command::Rules { .. }))
        && let Some(Command::Rules { action }) = cli.command.take()
    {
        return rules_command(action);
    }
    if let Some(Command::Alertmanager {
        action: AlertmanagerCommand::Check { files },
    }) = &cli.command
    {
        return check_alertmanager(files);
    }
    if let Some(Command::Dashboards {
        action: DashboardsCommand::Check { files },
    }) = &cli.command
    {
        return check_dashboards(files);
    }
    let (cfg, settings) = match config::settings(&cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("signalbox: {e:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            match toml::to_string_pretty(&cfg) {
                Ok(s) => print!("{s}"),
                Err(e) => {
                    eprintln!("signalbox: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Healthcheck { addr } => {
            let addr = match addr.map(|a| a.parse()).transpose() {
                Ok(a) => a.unwrap_or(settings.http_addr),
                Err(e) => {
                    eprintln!("signalbox: --addr: {e}");
                    return ExitCode::from(2);
                }
            };
            match healthcheck::ready(addr) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => {
                    eprintln!("signalbox: {addr} is not ready");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("signalbox: {addr}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Rules { .. } | Command::Alertmanager { .. } | Command::Dashboards { .. } => {
            ExitCode::SUCCESS
        }
        Command::Serve => {
            init_logging(&settings.log);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("signalbox: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(server::run(settings, status::shown(&cfg))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("signalbox: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
