//! The `hubbub` binary: parse flags, set up logging, then either apply the
//! storage schema (`hubbub migrate`), run an operator command (`hubbub
//! admin ...`), or serve until SIGINT/SIGTERM.

use clap::Parser;
use hubbub::config::{AdminCommand, Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUBBUB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if let Some(Command::Admin(cmd)) = &cli.command {
        return Box::pin(admin(cmd)).await;
    }
    let migrate = cli.is_migrate();
    let config = cli.into_config();
    if migrate {
        return match hubbub::store::migrate(&config).await {
            Ok(()) => {
                tracing::info!("schema up to date");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "migrate failed");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let listener = match hubbub::server::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, error = %e, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    match hubbub::server::run(listener, config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `hubbub admin ...`: prints what was done (stdout) or why not (stderr,
/// exit code 1).
async fn admin(cmd: &AdminCommand) -> std::process::ExitCode {
    match hubbub::admin::run(cmd).await {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hubbub admin: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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
