//! natter's half of `bench/datachannel`: throughput of one reliable
//! ordered data channel between two natter-io connections in this
//! process, on 127.0.0.1 (host candidates only).
//!
//! Each run connects a fresh pair (candidates trickle), then sends
//! `--bytes` in `--message-size` messages from the offerer to the
//! answerer, keeping between `--buffer-low` and `--buffer-high` bytes
//! queued in natter: refilled on [`PeerEvent::BufferedAmountLow`], as the
//! Chromium and aiortc halves do. It prints one figure per run on stdout,
//! MB/s (10^6 bytes/s) from the first send to the last byte received,
//! both read from one clock; notes go to stderr. A transfer in which
//! nothing arrives for 10 s fails with both sides' counters.
//!
//! With `--rtt MS` the pair talks through a userspace delay proxy
//! (crates/natter-impair, in this process, half the round trip each
//! way): the offerer learns only the proxy's address as the answerer's
//! candidate, and the answerer learns the offerer only as the proxy's
//! upstream socket (a peer-reflexive candidate, RFC 8445 §7.3.1.3), so
//! every datagram crosses the proxy.
//!
//! ```text
//! cargo run --release -p natter-io --example datachannel_bench -- --runs 3 --bytes 50000000 --message-size 16384
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use natter_impair::Proxy;
use natter_io::{
    Config, DataChannel, DataChannelId, DataChannelInit, LocalAddresses, PeerConnection, PeerConnectionState, PeerEvent,
};
use tokio::sync::mpsc;

#[path = "common/proxy.rs"]
mod proxy;
use proxy::behind_proxy;

/// A transfer that receives nothing for this long has stalled.
const STALL: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "Data channel throughput between two natter-io connections on 127.0.0.1 (bench/datachannel)")]
struct Args {
    /// Transfers, each on a fresh pair of connections.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Bytes per transfer.
    #[arg(long, default_value_t = 50_000_000)]
    bytes: u64,
    /// Round trip through a delay proxy, in milliseconds (0: direct).
    #[arg(long, default_value_t = 0.0)]
    rtt: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 16384)]
    message_size: usize,
    /// Refill the queue when natter's buffered amount falls to this.
    #[arg(long, default_value_t = 1 << 20)]
    buffer_low: usize,
    /// Queue messages while natter's buffered amount is at most this.
    #[arg(long, default_value_t = 4 << 20)]
    buffer_high: usize,
}

/// One connection: its handle and its events.
struct Peer {
    pc: PeerConnection,
    events: mpsc::Receiver<PeerEvent>,
}

impl Peer {
    fn spawn() -> anyhow::Result<Peer> {
        let config = Config {
            local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse()?]),
            mdns: false,
            ..Config::default()
        };
        let (pc, events) = PeerConnection::spawn(config)?;
        Ok(Peer { pc, events })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG's logs (errors without it) go to stderr: stdout is for the figures.
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    logs.with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    if args.runs < 1 || args.bytes < 1 || args.message_size < 1 {
        bail!("--runs, --bytes and --message-size must be at least 1");
    }
    if !(args.rtt >= 0.0 && args.rtt < 10_000.0) {
        bail!("--rtt must be between 0 and 10000 ms");
    }
    for run in 1..=args.runs {
        let mbps = run_once(&args).await.with_context(|| format!("run {run}"))?;
        println!("{mbps:.3}");
    }
    Ok(())
}

/// One transfer on a fresh pair: MB/s.
async fn run_once(args: &Args) -> anyhow::Result<f64> {
    let (mut a, mut b) = (Peer::spawn()?, Peer::spawn()?);
    let connecting = Instant::now();
    let one_way = Duration::from_secs_f64(args.rtt / 2000.0);
    let (channel, remote, _proxy) = connect(&mut a, &mut b, one_way).await?;
    let connected = connecting.elapsed();

    channel.set_buffered_amount_low_threshold(args.buffer_low).await?;
    let payload = vec![0x5a; args.message_size];
    let mut sent = 0;
    let mut received = 0;
    let start = Instant::now();
    pump(&channel, &payload, &mut sent, args).await?;
    let stall = tokio::time::sleep(STALL);
    tokio::pin!(stall);
    let end = loop {
        tokio::select! {
            () = &mut stall => {
                let queued = channel.buffered_amount().await?;
                let (sender, receiver) = (a.pc.stats().await?, b.pc.stats().await?);
                bail!(
                    "nothing received for {STALL:?}: sent {sent}, received {received}, {queued} bytes queued; \
                     sender {:?} {:?}; receiver {:?} {:?}",
                    sender.transport, sender.sctp, receiver.transport, receiver.sctp
                );
            }
            event = a.events.recv() => match event.context("the sender's events ended")? {
                PeerEvent::BufferedAmountLow(id) if id == channel.id() => {
                    pump(&channel, &payload, &mut sent, args).await?;
                }
                event => check(&event)?,
            },
            event = b.events.recv() => match event.context("the receiver's events ended")? {
                PeerEvent::DataChannelMessage { id, data, .. } if id == remote => {
                    received += data.len() as u64;
                    stall.as_mut().reset(tokio::time::Instant::now() + STALL);
                    if received >= args.bytes {
                        break Instant::now();
                    }
                }
                event => check(&event)?,
            },
        }
    };
    if received != args.bytes {
        bail!("received {received} bytes, sent {}", args.bytes);
    }
    let seconds = (end - start).as_secs_f64();
    let stats = a.pc.stats().await?;
    eprintln!(
        "connected in {:.1} ms; {} bytes in {seconds:.3} s; the sender sent {} datagrams; its SCTP dropped {:?}",
        connected.as_secs_f64() * 1000.0,
        args.bytes,
        stats.transport.packets_sent,
        stats.sctp
    );
    a.pc.close().await;
    b.pc.close().await;
    Ok(args.bytes as f64 / seconds / 1e6)
}

/// Offer from `a` with one channel, answer from `b`, trickle candidates
/// until the channel is open on both sides: the sender's handle and the
/// receiver's id of the channel. With a `one_way` delay, `a` gets `b`'s
/// candidate behind a proxy (returned, to keep it running) and `b` gets
/// none of `a`'s.
async fn connect(
    a: &mut Peer,
    b: &mut Peer,
    one_way: Duration,
) -> anyhow::Result<(DataChannel, DataChannelId, Option<Proxy>)> {
    let channel = a.pc.create_data_channel("bench", DataChannelInit::default()).await?;
    let offer = a.pc.create_offer().await?;
    a.pc.set_local_description(offer.clone()).await?;
    b.pc.set_remote_description(offer).await?;
    let answer = b.pc.create_answer().await?;
    b.pc.set_local_description(answer.clone()).await?;
    a.pc.set_remote_description(answer).await?;
    let mut open = false;
    let mut remote = None;
    let mut proxy = None;
    while !open || remote.is_none() {
        tokio::select! {
            event = a.events.recv() => match event.context("the offerer's events ended")? {
                PeerEvent::IceCandidate(candidate) if one_way.is_zero() => b.pc.add_ice_candidate(Some(candidate)).await?,
                PeerEvent::IceCandidate(_) => {}
                PeerEvent::DataChannelOpen(id) if id == channel.id() => open = true,
                event => check(&event)?,
            },
            event = b.events.recv() => match event.context("the answerer's events ended")? {
                PeerEvent::IceCandidate(candidate) if one_way.is_zero() => a.pc.add_ice_candidate(Some(candidate)).await?,
                PeerEvent::IceCandidate(candidate) if proxy.is_none() => {
                    let (candidate, started) = behind_proxy(candidate, one_way)?;
                    proxy = Some(started);
                    a.pc.add_ice_candidate(Some(candidate)).await?;
                }
                PeerEvent::IceCandidate(_) => {}
                PeerEvent::DataChannelOpen(id) => remote = Some(id),
                event => check(&event)?,
            },
        }
    }
    // The loop ends once `remote` is set.
    Ok((channel, remote.unwrap(), proxy))
}

/// Queues messages while natter's buffered amount is at most
/// `--buffer-high`. It counts what each send adds, as the W3C
/// `bufferedAmount` does, but natter's own amount also falls meanwhile
/// (SACKs arrive while the sends await); so it stops only once natter's
/// amount is above `--buffer-high`: then the amount must still fall past
/// `--buffer-low`, and [`PeerEvent::BufferedAmountLow`] follows.
async fn pump(channel: &DataChannel, payload: &[u8], sent: &mut u64, args: &Args) -> anyhow::Result<()> {
    let mut queued = channel.buffered_amount().await?;
    while *sent < args.bytes {
        if queued > args.buffer_high {
            queued = channel.buffered_amount().await?;
            if queued > args.buffer_high {
                break;
            }
        }
        let n = payload.len().min((args.bytes - *sent) as usize);
        channel.send(&payload[..n]).await.context("send")?;
        *sent += n as u64;
        queued += n;
    }
    Ok(())
}

/// Fails on an event that ends the transfer early.
fn check(event: &PeerEvent) -> anyhow::Result<()> {
    match event {
        PeerEvent::ConnectionStateChange(state @ (PeerConnectionState::Failed | PeerConnectionState::Closed)) => {
            bail!("the connection is {state}")
        }
        PeerEvent::DataChannelClose(id) => bail!("channel {id} closed"),
        _ => Ok(()),
    }
}
