//! natter's half of `bench/connect`: the offerer of the JSON-lines
//! protocol described at the top of `bench/lib/chromium_pair.mjs`, on
//! stdin and stdout, one JSON object per line. Per run:
//!
//! - it makes a natter-io connection with a data channel "bench" on
//!   127.0.0.1 and says `{"type":"ready"}`;
//! - on `{"type":"start"}` it creates the offer, sets it locally and
//!   sends it, then trickles its candidates and `end-of-candidates`;
//! - it applies the `answer` and the page's `candidate`s and
//!   `end-of-candidates`, and says `{"type":"open"}` once its channel is
//!   open;
//! - on `{"type":"close"}` it closes the connection and starts the next
//!   run. The end of stdin between runs ends the program.
//!
//! Notes go to stderr (`RUST_LOG` for natter's logs).
//!
//! ```text
//! node bench/lib/chromium_pair.mjs answer --runs 5 -- target/release/examples/connect_bench
//! ```

use anyhow::{bail, Context};
use natter_io::{
    Config, DataChannelInit, Description, IceCandidate, LocalAddresses, PeerConnection, PeerConnectionState, PeerEvent,
    SdpType,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One line of the protocol, either way.
#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Line {
    Ready,
    Start,
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    Candidate {
        candidate: String,
        #[serde(rename = "sdpMid")]
        sdp_mid: Option<String>,
        #[serde(rename = "sdpMLineIndex")]
        sdp_m_line_index: Option<u16>,
    },
    EndOfCandidates,
    Open,
    Close,
}

fn write(line: &Line) -> anyhow::Result<()> {
    // Stdout is line-buffered: each line goes out whole, at once.
    println!("{}", serde_json::to_string(line)?);
    Ok(())
}

/// The lines of stdin, parsed, read on a thread of their own (reading
/// stdin blocks); the channel ends with stdin.
fn read_lines() -> mpsc::UnboundedReceiver<anyhow::Result<Line>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let parsed = line.context("reading stdin").and_then(|line| {
                serde_json::from_str(&line).with_context(|| format!("not a line of the protocol: {line}"))
            });
            if sender.send(parsed).is_err() {
                return;
            }
        }
    });
    receiver
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG's logs (errors without it) go to stderr: stdout is for the protocol.
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    logs.with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut lines = read_lines();
    let mut run = 1;
    while offer_once(&mut lines).await.with_context(|| format!("run {run}"))? {
        run += 1;
    }
    Ok(())
}

/// One run of the protocol; `false` when stdin ended instead.
async fn offer_once(lines: &mut mpsc::UnboundedReceiver<anyhow::Result<Line>>) -> anyhow::Result<bool> {
    let config = Config {
        local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse()?]),
        ..Config::default()
    };
    let (pc, mut events) = PeerConnection::spawn(config)?;
    let channel = pc.create_data_channel("bench", DataChannelInit::default()).await?;
    write(&Line::Ready)?;
    match lines.recv().await.transpose()? {
        None => {
            pc.close().await;
            return Ok(false);
        }
        Some(Line::Start) => {}
        Some(other) => bail!("expected start, got {other:?}"),
    }
    let offer = pc.create_offer().await?;
    pc.set_local_description(offer.clone()).await?;
    write(&Line::Offer { sdp: offer.sdp })?;
    loop {
        tokio::select! {
            event = events.recv() => match event.context("the connection's events ended")? {
                PeerEvent::IceCandidate(candidate) => write(&Line::Candidate {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_m_line_index: candidate.sdp_m_line_index,
                })?,
                PeerEvent::IceGatheringComplete => write(&Line::EndOfCandidates)?,
                PeerEvent::DataChannelOpen(id) if id == channel.id() => write(&Line::Open)?,
                PeerEvent::ConnectionStateChange(PeerConnectionState::Failed) => {
                    let stats = pc.stats().await?;
                    bail!("the connection failed; ICE {:?}, DTLS {:?}", stats.ice, stats.dtls);
                }
                _ => {}
            },
            line = lines.recv() => match line.context("stdin ended in the middle of a run")?? {
                Line::Answer { sdp } => {
                    pc.set_remote_description(Description { kind: SdpType::Answer, sdp }).await?;
                }
                Line::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                    let candidate = IceCandidate { candidate, sdp_mid, sdp_m_line_index, username_fragment: None };
                    pc.add_ice_candidate(Some(candidate)).await?;
                }
                Line::EndOfCandidates => pc.add_ice_candidate(None).await?,
                Line::Close => break,
                other => bail!("unexpected {other:?} from the page"),
            },
        }
    }
    let stats = pc.stats().await?;
    eprintln!(
        "DTLS {:?}; early DTLS datagrams dropped: {}",
        stats.dtls.map(|dtls| dtls.role),
        stats.transport.dtls_dropped
    );
    pc.close().await;
    Ok(true)
}
