//! The `natter` command.

mod batch;
mod turn;

use clap::{Parser, Subcommand};

/// Natter: WebRTC for Rust.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a STUN/TURN server (RFC 8489, RFC 8656, RFC 6062).
    Turn(turn::TurnOptions),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Turn(options) => {
            let config = options.resolve()?;
            init_logs(config.json_logs);
            // Every allocation holds a socket; allow as many as the system does.
            match rlimit::increase_nofile_limit(u64::MAX) {
                Ok(n) => tracing::debug!(limit = n, "open files"),
                Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
            }
            turn::run(config)
        }
    }
}

/// Structured logs on stderr; `RUST_LOG` filters them (default `info`).
fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
