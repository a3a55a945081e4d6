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

use cli::{AlertmanagerCommand, Cli, Command, RulesCommand};

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

/// `signalbox alertmanager check`: parses each file as the server would.
fn check_alertmanager(files: &[std::path::PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match signalbox_query::alerting::load_config(f) {
            Ok(c) => {
                for w in &c.warnings {
                    println!("  WARNING: {w}");
                }
                println!(
                    "  SUCCESS: {} receivers, {} inhibit rules",
                    c.receivers.len(),
                    c.inhibit_rules.len()
                );
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
        Command::Rules { .. } | Command::Alertmanager { .. } => ExitCode::SUCCESS,
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
