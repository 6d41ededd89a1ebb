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
//! Notes go to stderr (`RUST_LOG` for natter's logs), among them one
//! line per run that starts `natter-dtls ` followed by a JSON object:
//! the milliseconds from `start` to ICE connected, to the connection
//! connected (DTLS done: `dtls_ms` is the difference, the handshake as
//! natter sees it) and to the channel open, and what `PeerStats.dtls`
//! says (role, version, SRTP profile, early datagrams dropped).
//!
//! `--address A` gathers on A instead of 127.0.0.1 (Firefox and libnice
//! need an interface other than `lo`). `--no-snap` leaves SNAP
//! (`a=sctp-init`, draft-hancke-tsvwg-snap-01) out of the offer;
//! `--sped` offers SPED (draft-hancke-webrtc-sped: the DTLS handshake in
//! the ICE checks, `a=ice-options:sped`).
//!
//! `--rtt MS` puts a delay proxy (crates/natter-impair, in this process,
//! half the round trip each way) in front of the peer's first candidate,
//! which natter is given rewritten to the proxy; the peer gets none of
//! natter's and learns natter's address from its checks (RFC 8445
//! §7.2.5.3.1), so every packet crosses the proxy.
//!
//! `--pair RUNS` times natter <-> natter instead, with no stdin: two
//! connections in this process on `--address`, the offer and answer
//! handed over in memory and candidates trickled, `--rtt` in front of
//! the answerer as above. Each run prints on stdout the milliseconds from
//! createOffer to the channel open on both sides, and on stderr
//! `natter-pair {"run":N,"ms":..,"ice_connected_ms":..,"connected_ms":..}`.
//!
//! ```text
//! node bench/lib/chromium_pair.mjs answer --runs 5 -- target/release/examples/connect_bench
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use natter_io::{
    Config, DataChannelInit, Description, IceCandidate, IceConnectionState, LocalAddresses, PeerConnection,
    PeerConnectionState, PeerEvent, SdpType,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[path = "common/proxy.rs"]
mod proxy;
use proxy::behind_proxy;

/// natter's half of bench/connect: the offerer of its JSON-lines protocol.
#[derive(Parser, Debug)]
struct Args {
    /// The host address to gather on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Offer without SNAP's a=sctp-init.
    #[arg(long)]
    no_snap: bool,
    /// Offer SPED (the DTLS handshake in ICE's checks).
    #[arg(long)]
    sped: bool,
    /// Time this many natter <-> natter connections instead.
    #[arg(long)]
    pair: Option<u32>,
    /// A round trip added by a delay proxy in front of the peer, in ms.
    #[arg(long, default_value_t = 0)]
    rtt: u64,
}

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
    let args = Args::parse();
    if let Some(runs) = args.pair {
        for run in 1..=runs {
            pair_once(&args, run).await.with_context(|| format!("pair run {run}"))?;
        }
        return Ok(());
    }
    let mut lines = read_lines();
    let mut run = 1;
    while offer_once(&mut lines, &args, run)
        .await
        .with_context(|| format!("run {run}"))?
    {
        run += 1;
    }
    Ok(())
}

/// When a run's milestones came, from its `start`.
#[derive(Default)]
struct Milestones {
    ice_connected: Option<Duration>,
    connected: Option<Duration>,
    open: Option<Duration>,
}

fn ms(at: Option<Duration>) -> Option<f64> {
    at.map(|d| d.as_secs_f64() * 1000.0)
}

/// One run of the protocol; `false` when stdin ended instead.
async fn offer_once(
    lines: &mut mpsc::UnboundedReceiver<anyhow::Result<Line>>,
    args: &Args,
    run: u32,
) -> anyhow::Result<bool> {
    let config = config(args);
    let one_way = Duration::from_millis(args.rtt) / 2;
    let mut proxy = None;
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
    let start = Instant::now();
    let mut milestones = Milestones::default();
    let offer = pc.create_offer().await?;
    pc.set_local_description(offer.clone()).await?;
    write(&Line::Offer { sdp: offer.sdp })?;
    loop {
        tokio::select! {
            event = events.recv() => match event.context("the connection's events ended")? {
                PeerEvent::IceCandidate(_) if !one_way.is_zero() => {}
                PeerEvent::IceCandidate(candidate) => write(&Line::Candidate {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_m_line_index: candidate.sdp_m_line_index,
                })?,
                PeerEvent::IceGatheringComplete => write(&Line::EndOfCandidates)?,
                PeerEvent::DataChannelOpen(id) if id == channel.id() => {
                    milestones.open.get_or_insert(start.elapsed());
                    write(&Line::Open)?;
                }
                PeerEvent::IceConnectionStateChange(IceConnectionState::Connected) => {
                    milestones.ice_connected.get_or_insert(start.elapsed());
                }
                PeerEvent::ConnectionStateChange(PeerConnectionState::Connected) => {
                    milestones.connected.get_or_insert(start.elapsed());
                }
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
                    if one_way.is_zero() {
                        pc.add_ice_candidate(Some(candidate)).await?;
                    } else if proxy.is_none() {
                        let (candidate, started) = behind_proxy(candidate, one_way)?;
                        proxy = Some(started);
                        pc.add_ice_candidate(Some(candidate)).await?;
                    }
                }
                Line::EndOfCandidates => pc.add_ice_candidate(None).await?,
                Line::Close => break,
                other => bail!("unexpected {other:?} from the page"),
            },
        }
    }
    let stats = pc.stats().await?;
    let dtls = stats.dtls.as_ref();
    let (ice_connected, connected) = (ms(milestones.ice_connected), ms(milestones.connected));
    let report = serde_json::json!({
        "run": run,
        "ice_connected_ms": ice_connected,
        "connected_ms": connected,
        "dtls_ms": ice_connected.zip(connected).map(|(ice, all)| all - ice),
        "open_ms": ms(milestones.open),
        "role": dtls.map(|d| format!("{:?}", d.role)),
        "version": dtls.and_then(|d| d.version).map(|v| format!("{v:?}")),
        "srtp_profile": dtls.and_then(|d| d.srtp_profile).map(|p| format!("{p:?}")),
        "early_dtls_dropped": stats.transport.dtls_dropped,
    });
    eprintln!("natter-dtls {report}");
    pc.close().await;
    drop(proxy);
    Ok(true)
}

/// A connection gathering on `--address`, with SNAP unless `--no-snap`
/// and SPED if `--sped`.
fn config(args: &Args) -> Config {
    let mut config = Config {
        local_addresses: LocalAddresses::Addresses(vec![(args.address, 0).into()]),
        ..Config::default()
    };
    config.peer.sctp.snap = !args.no_snap;
    config.peer.dtls.sped = args.sped;
    config
}

/// One natter <-> natter connection, timed from createOffer to the
/// channel open on both sides.
async fn pair_once(args: &Args, run: u32) -> anyhow::Result<()> {
    let (a, mut a_events) = PeerConnection::spawn(config(args))?;
    let (b, mut b_events) = PeerConnection::spawn(config(args))?;
    let channel = a.create_data_channel("bench", DataChannelInit::default()).await?;
    let one_way = Duration::from_millis(args.rtt) / 2;
    let start = Instant::now();
    let offer = a.create_offer().await?;
    a.set_local_description(offer.clone()).await?;
    b.set_remote_description(offer).await?;
    let answer = b.create_answer().await?;
    b.set_local_description(answer.clone()).await?;
    a.set_remote_description(answer).await?;
    let mut milestones = Milestones::default();
    let mut proxy = None;
    let (mut a_open, mut b_open) = (false, false);
    while !(a_open && b_open) {
        tokio::select! {
            event = a_events.recv() => match event.context("the offerer's events ended")? {
                PeerEvent::IceCandidate(c) if one_way.is_zero() => b.add_ice_candidate(Some(c)).await?,
                PeerEvent::DataChannelOpen(id) if id == channel.id() => a_open = true,
                PeerEvent::IceConnectionStateChange(IceConnectionState::Connected) => {
                    milestones.ice_connected.get_or_insert(start.elapsed());
                }
                PeerEvent::ConnectionStateChange(PeerConnectionState::Connected) => {
                    milestones.connected.get_or_insert(start.elapsed());
                }
                PeerEvent::ConnectionStateChange(PeerConnectionState::Failed) => bail!("the offerer failed"),
                _ => {}
            },
            event = b_events.recv() => match event.context("the answerer's events ended")? {
                PeerEvent::IceCandidate(c) if one_way.is_zero() => a.add_ice_candidate(Some(c)).await?,
                PeerEvent::IceCandidate(c) if proxy.is_none() => {
                    let (c, started) = behind_proxy(c, one_way)?;
                    proxy = Some(started);
                    a.add_ice_candidate(Some(c)).await?;
                }
                PeerEvent::DataChannelOpen(_) => b_open = true,
                PeerEvent::ConnectionStateChange(PeerConnectionState::Failed) => bail!("the answerer failed"),
                _ => {}
            },
            () = tokio::time::sleep(Duration::from_secs(20)) => bail!("nothing for 20 s before both channels opened"),
        }
    }
    let took = start.elapsed().as_secs_f64() * 1000.0;
    println!("{took:.3}");
    let report = serde_json::json!({
        "run": run,
        "ms": took,
        "ice_connected_ms": ms(milestones.ice_connected),
        "connected_ms": ms(milestones.connected),
    });
    eprintln!("natter-pair {report}");
    a.close().await;
    b.close().await;
    drop(proxy);
    Ok(())
}
