//! The `natter` command.

mod join;
mod load;
mod recording;
mod send;
mod serve;
mod sfu;
mod turn;
mod whip;

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
    /// Run rooms: the web client, signaling and an embedded TURN server.
    Serve(serve::ServeOptions),
    /// Run a STUN/TURN server (RFC 8489, RFC 8656, RFC 6062).
    Turn(turn::TurnOptions),
    /// Print a join token for a room of `natter serve`.
    Token(TokenOptions),
    /// Join a room of `natter serve` from the terminal: chat, files, publish
    /// IVF and Ogg files, record the others to WebM.
    Join(join::JoinOptions),
    /// Send a file to whoever types the code this prints (`natter receive CODE`).
    Send(send::SendOptions),
    /// Receive a file from `natter send`.
    Receive(send::ReceiveOptions),
    /// Synthetic participants of an SFU room (natter serve --sfu), for tests and benchmarks.
    #[command(after_help = load::EXAMPLE)]
    Load(load::LoadOptions),
}

#[derive(clap::Args)]
struct TokenOptions {
    /// The server's secret (also read from NATTER_SECRET).
    #[arg(long, env = "NATTER_SECRET", hide_env_values = true)]
    secret: String,
    /// The room it admits to.
    #[arg(long)]
    room: String,
    /// Fix the participant's display name.
    #[arg(long)]
    name: Option<String>,
    /// Lifetime in seconds; 0 mints a token that has already expired.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(options) => {
            let config = options.resolve()?;
            init_logs(config.json_logs);
            if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
                tracing::warn!(error = %e, "cannot raise the open-file limit");
            }
            serve::run(config)
        }
        Command::Join(options) => {
            init_join_logs();
            exit_on_error("natter join", join::run(options))
        }
        Command::Send(options) => {
            init_join_logs();
            exit_on_error("natter send", send::send(options))
        }
        Command::Receive(options) => {
            init_join_logs();
            exit_on_error("natter receive", send::receive(options))
        }
        Command::Load(options) => {
            init_join_logs();
            exit_on_error("natter load", load::run(options))
        }
        Command::Token(t) => {
            if !natter_signaling::message::is_room_name(&t.room) {
                anyhow::bail!("room names are 1 to 64 characters from A-Z a-z 0-9 _ -");
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let claims = natter_signaling::JoinClaims {
                room: t.room,
                exp: now + t.ttl,
                name: t.name,
                iat: Some(now),
            };
            println!("{}", natter_signaling::TokenKey::new(t.secret.as_bytes()).mint(&claims));
            Ok(())
        }
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

/// One line a person can act on, no backtrace, and exit status 1.
fn exit_on_error(command: &str, result: anyhow::Result<()>) -> ! {
    if let Err(e) = result {
        eprintln!("{command}: {e:#}");
        std::process::exit(1);
    }
    std::process::exit(0)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
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

/// `natter join` prints its events on stdout; logs go to stderr and,
/// unless RUST_LOG says otherwise, only warnings.
fn init_join_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
