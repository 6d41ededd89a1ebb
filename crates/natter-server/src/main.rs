//! The `natter` command.

mod echo;
mod join;
mod load;
mod recording;
mod send;
mod serve;
mod sfu;
mod turn;
mod whip;

use clap::{CommandFactory, Parser, Subcommand};

/// Natter: WebRTC for Rust.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run rooms: the web client, signaling, the SFU and an embedded TURN server.
    #[command(after_help = "Examples:
  # Open rooms on http://127.0.0.1:8080 for trying it out: no token needed,
  # every room through the server's SFU
  natter serve --dev

  # In production: HTTPS and TURN over TLS, rooms for token holders (natter token)
  NATTER_SECRET=... natter serve --listen 0.0.0.0:443 --public-host meet.example.org --cert cert.pem --pkey key.pem

  # Recordings in recordings/ (the SFU records rooms)
  natter serve --dev --record-dir recordings/

  # Rooms of 2 to 16 as browser meshes (each page connects to each), no SFU
  natter serve --dev --mesh

  # Every option from a TOML file (same names, kebab-case)
  natter serve --config natter.toml")]
    Serve(serve::ServeOptions),
    /// Run a STUN/TURN server (RFC 8489, RFC 8656, RFC 6062).
    #[command(after_help = "Examples:
  # STUN and TURN on 3478 (UDP and TCP) with one static user
  natter turn --realm example.org --user alice:secret

  # TURN REST credentials (a shared secret), TLS on 5349, behind a 1:1 NAT
  natter turn --static-auth-secret s3cret --cert cert.pem --pkey key.pem --external-ip 203.0.113.7/10.0.0.7

  # Every option from a TOML file with coturn's names
  natter turn --config turn.toml")]
    Turn(turn::TurnOptions),
    /// Print a join token for a room of `natter serve`.
    #[command(after_help = "Examples:
  # A token for room standup, valid for an hour
  natter token --secret s3cret --room standup

  # For a bot whose name is fixed, valid for a day
  NATTER_SECRET=... natter token --room standup --name recorder --ttl 86400")]
    Token(TokenOptions),
    /// Join a room of `natter serve` from the terminal: chat, files, publish
    /// IVF and Ogg files, record the others to WebM.
    Join(join::JoinOptions),
    /// Send a file to whoever types the code this prints (`natter receive CODE`).
    Send(send::SendOptions),
    /// Receive a file from `natter send`.
    Receive(send::ReceiveOptions),
    /// Synthetic participants of an SFU room (natter serve without --mesh), for tests and benchmarks.
    #[command(after_help = load::EXAMPLE)]
    Load(load::LoadOptions),
    /// A data channel and media echo server of the webrtc-echoes
    /// convention, or its checking client (`--client URL`).
    #[command(after_help = echo::EXAMPLES)]
    Echo(echo::EchoOptions),
    /// Print a completion script for a shell.
    #[command(after_help = "Examples:
  # bash: for this shell, then for every new one
  source <(natter completions bash)
  natter completions bash > ~/.local/share/bash-completion/completions/natter

  # zsh and fish
  natter completions zsh > ~/.zfunc/_natter
  natter completions fish > ~/.config/fish/completions/natter.fish")]
    Completions {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
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
        Command::Echo(options) => {
            init_logs(false);
            exit_on_error("natter echo", echo::run(options))
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "natter", &mut std::io::stdout());
            Ok(())
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
