//! `natter echo`: the webrtc-echoes convention, both sides of it.
//!
//! The convention: `POST /offer` with `{"type":"offer","sdp":...}` (a
//! complete offer: the offerer waited for gathering), and the answer
//! comes back as `{"type":"answer","sdp":...}` once the answerer's own
//! gathering completed, its candidates in the SDP
//! ([`natter_io::echoes`]). Every data channel message goes back on its
//! channel with its type (text or binary); the text `close-me` makes the
//! server close that channel instead.
//!
//! - Server mode (the default, [`server`]): natter answers, echoes the
//!   data channels and sends every audio and video frame back. `--port P`
//!   puts every connection on one UDP port of a natter-io endpoint, and
//!   `--ice-lite` makes natter a lite agent.
//! - Client mode (`--client URL`, [`client`]): natter offers a reliable
//!   ordered channel and an unordered one with maxRetransmits 0, POSTs
//!   the offer to URL, checks that a seeded mix of messages echoes back
//!   byte-exact, closes one channel itself and has the server close the
//!   other, then prints one JSON summary line and exits 0; any failure
//!   exits non-zero with what went wrong. `--connections N` runs N such
//!   clients at once.

mod client;
mod mix;
mod server;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use natter_io::echoes;

/// What `natter echo --help` shows after the options.
pub const EXAMPLES: &str = "Examples:
  # An echo server for browsers and other peers on 127.0.0.1:8090 (GET / has a page to try it)
  natter echo --listen 127.0.0.1:8090 --address 127.0.0.1

  # Every connection on one UDP port, natter an ICE-lite agent and the DTLS server
  natter echo --address 127.0.0.1 --port 50000 --ice-lite --dtls-server

  # natter offers to an echo server and checks what comes back (one JSON line; exit 0 when all echoed)
  natter echo --client http://127.0.0.1:8090/offer --address 127.0.0.1

  # The same, also sending a VP8 and an Opus file that the server must reflect
  natter echo --client http://127.0.0.1:8090/offer --video video.ivf --audio audio.ogg";

/// A data channel echo server, or its client, over natter-io (the
/// webrtc-echoes convention).
#[derive(clap::Args, Debug)]
pub struct EchoOptions {
    /// Where the HTTP server listens (server mode).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// An ICE host address (repeatable); without one, every address of
    /// the host's interfaces, loopback included.
    #[arg(long = "address")]
    addresses: Vec<IpAddr>,
    /// Resolve the peer's `.local` candidates with mDNS.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mdns: bool,
    /// How long to wait for our ICE gathering before sending our
    /// description anyway.
    #[arg(long, default_value_t = 5000)]
    gather_timeout_ms: u64,
    /// Server mode: answer as the DTLS server (`a=setup:passive`)
    /// rather than the client, as browsers do.
    #[arg(long)]
    dtls_server: bool,
    /// Server mode: every connection on this one UDP port of each
    /// `--address` (a natter-io endpoint, as a server with many calls
    /// runs), rather than on sockets of its own.
    #[arg(long, requires = "addresses")]
    port: Option<u16>,
    /// Server mode: answer as an ICE-lite agent (RFC 8445 §2.5), as
    /// servers with public addresses do.
    #[arg(long)]
    ice_lite: bool,
    /// Server mode: do not offer SCTP message interleaving (RFC 8260
    /// I-DATA), which natter offers by default and uses when the peer
    /// offers it too (Chromium under its
    /// `WebRTC-DataChannelMessageInterleaving` field trial); `/status`
    /// shows `sctp_interleaving` once the association is up.
    #[arg(long)]
    no_sctp_interleaving: bool,
    /// Offer SPED (draft-hancke-webrtc-sped): the DTLS handshake rides
    /// ICE's checks and responses when the peer offers it too (Chromium
    /// under its `WebRTC-IceHandshakeDtls` field trial). Server mode:
    /// `/status` shows `sped`; client mode: the summary does.
    #[arg(long)]
    sped: bool,
    /// Client mode: how many connections run the check at once, each on
    /// sockets of its own; one summary line for all of them.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Client mode: offer to the echo server whose `POST /offer` is at
    /// this URL (http only) and check its echoes.
    #[arg(long, value_name = "URL")]
    client: Option<String>,
    #[command(flatten)]
    check: client::Check,
}

/// Runs the server until SIGINT or SIGTERM, or the client's check to its
/// end (its summary on stdout).
pub fn run(options: EchoOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(echo(options))
}

async fn echo(args: EchoOptions) -> anyhow::Result<()> {
    let addresses = echoes::local_addresses(&args.addresses);
    let gather_timeout = Duration::from_millis(args.gather_timeout_ms);
    match args.client {
        Some(url) => {
            let client = client::Client {
                url,
                addresses,
                mdns: args.mdns,
                gather_timeout,
                sped: args.sped,
            };
            let summary = match args.connections {
                n if n > 1 => client::run_many(&client, n, &args.check).await?,
                _ => client::run(&client, &args.check).await?,
            };
            println!("{summary}");
            Ok(())
        }
        None => {
            let options = server::Options {
                addresses,
                mdns: args.mdns,
                gather_timeout,
                dtls_server: args.dtls_server,
                port: args.port,
                ice_lite: args.ice_lite,
                sctp_interleaving: !args.no_sctp_interleaving,
                sped: args.sped,
            };
            server::serve(args.listen, options).await
        }
    }
}
