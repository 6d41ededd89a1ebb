//! `natter send FILE` and `natter receive CODE`: one file between two
//! terminals through a `natter serve`, peer to peer over natter-client
//! (its mesh connection and `file:<id>` transfer, SHA-256 checked end to
//! end). The sender prints a code ([`code`]); the receiver types it,
//! both prove they know it ([`protocol`]), and the file goes from the
//! byte the receiver already has ([`partial`]) on.

mod code;
mod partial;
mod progress;
mod protocol;
mod receiver;
mod sender;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use natter_client::ClientConfig;
use natter_io::LocalAddresses;

pub use partial::new_file;

/// The name the sender joins under; the receiver says hello to it.
const SENDER_NAME: &str = "natter send";
const RECEIVER_NAME: &str = "natter receive";

/// Where both commands find the server unless told.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What both commands take.
#[derive(clap::Args)]
pub struct Common {
    /// The natter serve to meet through: http://HOST:PORT.
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
    /// The server's secret, to mint a join token for the code's room
    /// (not needed with `serve --dev`).
    #[arg(long, env = "NATTER_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Print JSON lines on stdout (code, start, progress, done).
    #[arg(long)]
    json: bool,
    /// Local addresses for the peer connection's sockets (default: every
    /// interface address, loopback included).
    #[arg(long = "address", value_name = "IP")]
    addresses: Vec<IpAddr>,
}

/// Send a file to whoever types the code this prints.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  natter send report.pdf
  natter send --server http://meet.example.org:8080 video.mkv
  natter send big.iso --json

Prints a code such as 7-crimson-otter-maple and waits; on the other side
run `natter receive 7-crimson-otter-maple`. The code's words never reach
the server. A receiver cut off resumes when it runs again with the code.")]
pub struct SendOptions {
    /// The file to send (read as it goes, at most 1 GiB).
    file: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// Receive a file from `natter send`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  natter receive 7-crimson-otter-maple
  natter receive 7-crimson-otter-maple --out ~/Downloads --json

Bytes arrive in NAME.natter-part beside a NAME.natter-part.json saying what
is there; run the same command again after a cut to resume. The file gets
its name once its SHA-256 matches the sender's.")]
pub struct ReceiveOptions {
    /// The code `natter send` printed.
    code: String,
    /// Where to save the file.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Give up when no sender is in the code's room after this many seconds.
    #[arg(long, default_value_t = 5)]
    wait: u64,
    #[command(flatten)]
    common: Common,
}

pub fn send(options: SendOptions) -> anyhow::Result<()> {
    run(sender::run(options))
}

pub fn receive(options: ReceiveOptions) -> anyhow::Result<()> {
    run(receiver::run(options))
}

/// Runs `command` to its end, then stops the runtime without waiting
/// for stragglers for more than [`SHUTDOWN_WAIT`]: dropping a runtime
/// waits for its blocking tasks without limit, and the command's result
/// is known by then (a CI run saw a finished transfer's process never
/// exit).
fn run(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let result = runtime.block_on(command);
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    result
}

/// How long a finished command waits for its runtime's last tasks.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

impl Common {
    /// How to join `room` as `name`.
    fn config(&self, room: String, name: &str) -> ClientConfig {
        let mut config = ClientConfig::new(self.server.clone(), name);
        if let Some(secret) = &self.secret {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let claims = natter_signaling::JoinClaims {
                room: room.clone(),
                exp: now + 24 * 3600,
                name: None,
                iat: Some(now),
            };
            config.token = Some(natter_signaling::TokenKey::new(secret.as_bytes()).mint(&claims));
        }
        config.room = Some(room);
        config.reconnect_timeout = Duration::from_secs(30);
        if !self.addresses.is_empty() {
            config.local_addresses =
                LocalAddresses::Addresses(self.addresses.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        }
        config
    }
}

/// How a transfer's bytes go, from natter's stats of the selected
/// candidate pair (W3C `candidateType`s, local then remote).
pub struct Route {
    /// `relay` when either candidate is a TURN relay (RFC 8656), else
    /// `direct`; `None` before ICE selected a pair.
    path: Option<&'static str>,
    pair: Option<(String, String)>,
}

impl Route {
    async fn to(client: &natter_client::Client, peer: &str) -> Route {
        let pair = client.selected_pair(peer).await.ok().flatten();
        let path = pair.as_ref().map(|(local, remote)| {
            if local == "relay" || remote == "relay" {
                "relay"
            } else {
                "direct"
            }
        });
        Route { path, pair }
    }
}

/// Joining failed: say what to do about it.
fn join_error(server: &str, e: natter_client::Error) -> anyhow::Error {
    match e {
        natter_client::Error::Connect { .. } => {
            anyhow::anyhow!("{e} (is `natter serve` running there? give its address with --server)",)
        }
        natter_client::Error::Refused {
            code: Some(ref code), ..
        } if code.starts_with("token") => {
            anyhow::anyhow!("{e} ({server} wants tokens: run it with --dev, or give its --secret)")
        }
        e => e.into(),
    }
}
