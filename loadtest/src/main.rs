//! `hubbub-loadtest`: the load generator for hubbub.
//!
//! This first version only defines and validates the command line; the
//! scenarios themselves are tracked by the "Load tester" issue and refuse to
//! run until they exist, rather than printing made-up figures.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "hubbub-loadtest", version, about = "Load generator for hubbub")]
struct Cli {
    /// The server to load (host:port).
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Allow a target outside the loopback range.
    #[arg(long, global = true)]
    allow_remote: bool,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Open N sockets and hold them.
    Connect {
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// P sender/receiver pairs sending R messages/s each.
    Dm {
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
}

/// Refuses non-loopback targets unless explicitly allowed.
fn check_target(target: SocketAddr, allow_remote: bool) -> Result<(), String> {
    if target.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(format!("{target} is not a loopback address; pass --allow-remote to load it anyway"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = check_target(cli.target, cli.allow_remote) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    eprintln!("error: scenario {:?} is not implemented yet (see the load tester issue)", cli.scenario);
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_allow_remote() {
        assert!(check_target("127.0.0.1:8080".parse().unwrap(), false).is_ok());
        assert!(check_target("10.0.0.1:8080".parse().unwrap(), false).is_err());
        assert!(check_target("10.0.0.1:8080".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["hubbub-loadtest", "dm", "--pairs", "5"]).unwrap();
        assert!(matches!(cli.scenario, Scenario::Dm { pairs: 5, .. }));
    }
}
