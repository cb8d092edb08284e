//! The `hubbub` binary: parse flags, environment and configuration file,
//! set up logging, then either apply the storage schema (`hubbub migrate`),
//! run an operator command (`hubbub admin|config|keys ...`), or serve until
//! SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::process::ExitCode;

use hubbub::config::{AdminCommand, Cli, Command, ConfigCommand, LogFormat};
use hubbub::config_file::{self, ConfigError};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match config_file::load(args.clone()) {
        Ok(cli) => cli,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("hubbub: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(log_format(&cli));
    match &cli.command {
        Some(Command::Admin(cmd)) => return Box::pin(admin(cmd)).await,
        Some(Command::Config(ConfigCommand::Example)) => {
            return print_out(&config_file::example());
        }
        Some(Command::Config(ConfigCommand::Check { .. })) => return config_check(args),
        Some(Command::Keys(cmd)) => return print_lines("keys", hubbub::auth::keys_cmd::run(cmd)),
        _ => {}
    }
    let migrate = cli.is_migrate();
    let config = cli.into_config();
    if migrate {
        return match hubbub::store::migrate(&config).await {
            Ok(()) => {
                tracing::info!("schema up to date");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "migrate failed");
                ExitCode::FAILURE
            }
        };
    }
    let listener = match hubbub::server::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match hubbub::server::run(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, as `text` (colours only when stderr is a terminal)
/// or `json`; `HUBBUB_LOG` filters them (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HUBBUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// The log format of whichever command runs.
fn log_format(cli: &Cli) -> LogFormat {
    match &cli.command {
        Some(Command::Serve(c) | Command::Migrate(c)) => c.log_format,
        Some(Command::Admin(a)) => a.config().log_format,
        Some(Command::Keys(k)) => k.config().log_format,
        Some(Command::Config(ConfigCommand::Check { config, .. })) => config.log_format,
        Some(Command::Config(ConfigCommand::Example)) | None => cli.config.log_format,
    }
}

/// `hubbub config check`: the effective settings on stdout, or why the
/// file is bad on stderr (exit code 2).
fn config_check(args: Vec<std::ffi::OsString>) -> ExitCode {
    match config_file::effective(args) {
        Ok(text) => print_out(&format!("{text}# configuration OK\n")),
        Err(e) => {
            eprintln!("hubbub config check: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to stdout (a closed pipe, as with `| head`, is not an error).
fn print_out(text: &str) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// Prints an operator command's lines (stdout) or its error (stderr, exit code 1).
fn print_lines<E: std::fmt::Display>(what: &str, result: Result<Vec<String>, E>) -> ExitCode {
    match result {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hubbub {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `hubbub admin ...`: prints what was done (stdout) or why not (stderr,
/// exit code 1).
async fn admin(cmd: &AdminCommand) -> ExitCode {
    print_lines("admin", hubbub::admin::run(cmd).await)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
