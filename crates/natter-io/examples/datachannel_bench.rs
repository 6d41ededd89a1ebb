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
//! Meanwhile a second channel, "chat", carries a `--chat-size` message
//! every `--chat-interval-ms`, which the receiver echoes: each run's
//! figure line is `MB/s chat-p50-ms chat-p95-ms`, the round trips of
//! the chat messages sent during the transfer (each waited for), which
//! shows whether small messages queue behind the bulk ones.
//!
//! With `--rtt MS` the pair talks through a userspace delay proxy
//! (crates/natter-impair, in this process, half the round trip each
//! way): the offerer learns only the proxy's address as the answerer's
//! candidate, and the answerer learns the offerer only as the proxy's
//! upstream socket (a peer-reflexive candidate, RFC 8445 §7.3.1.3), so
//! every datagram crosses the proxy.
//!
//! With `--stdio` the receiver is not in this process but a browser
//! page that bench/lib/natter_chromium.mjs drives, one run per process.
//! JSON lines on stdout: `{"type":"offer","sdp":S}`, then natter's
//! candidates (`{"type":"candidate","candidate":C,"sdpMid":M,
//! "sdpMLineIndex":I}`), and at the end `{"type":"result","mbps":X,
//! "chat_p50_ms":Y,"chat_p95_ms":Z}`. On stdin: `{"type":"answer","sdp":S}`
//! (its candidates in it), then `{"type":"done","epoch_ms":T}`, the
//! page's wall clock (`performance.timeOrigin + performance.now()`) at
//! the last byte; the transfer's time is from natter's wall clock at
//! the first send to that one (the same system clock).
//!
//! ```text
//! cargo run --release -p natter-io --example datachannel_bench -- --runs 3 --bytes 50000000 --message-size 16384
//! ```

use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use natter_impair::Proxy;
use natter_io::{
    Config, DataChannel, DataChannelId, DataChannelInit, Description, IceCandidate, LocalAddresses, PeerConnection,
    PeerConnectionState, PeerEvent, SdpType,
};
use serde_json::{json, Value};
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
    /// A chat message every this many milliseconds during the transfer.
    #[arg(long, default_value_t = 50)]
    chat_interval_ms: u64,
    /// Bytes per chat message (at least 8: its sequence number).
    #[arg(long, default_value_t = 100)]
    chat_size: usize,
    /// The receiver is a page driven over stdin and stdout (see above).
    #[arg(long)]
    stdio: bool,
    /// Print to stderr the MB/s received in each slice of this many
    /// milliseconds (the shape of the congestion window's growth).
    #[arg(long)]
    timeline_ms: Option<u64>,
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
    if args.chat_size < 8 || args.chat_interval_ms < 1 {
        bail!("--chat-size must be at least 8 and --chat-interval-ms at least 1");
    }
    if args.stdio && (args.runs != 1 || args.rtt > 0.0) {
        bail!("--stdio makes one run, and the driver puts the proxy in the path (no --rtt)");
    }
    for run in 1..=args.runs {
        let figures = run_once(&args).await.with_context(|| format!("run {run}"))?;
        let (p50, p95) = (percentile_ms(&figures.chat, 0.5), percentile_ms(&figures.chat, 0.95));
        if args.stdio {
            let result = json!({"type": "result", "mbps": figures.mbps, "chat_p50_ms": p50, "chat_p95_ms": p95});
            println!("{result}");
        } else {
            println!("{:.3} {p50:.3} {p95:.3}", figures.mbps);
        }
    }
    Ok(())
}

/// What one run measured.
struct Figures {
    mbps: f64,
    /// The round trips of the chat messages sent during the transfer.
    chat: Vec<Duration>,
}

/// The `p`-quantile (nearest rank) of `values`, in ms; NaN without any.
fn percentile_ms(values: &[Duration], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// The receiving side: a connection in this process (its handle, and
/// what its own task reports), or a page behind stdin and stdout.
enum Receiver {
    Local(PeerConnection, mpsc::UnboundedReceiver<anyhow::Result<Arrived>>),
    Page(mpsc::Receiver<Value>),
}

/// The receiver's ends of the bulk and the chat channel.
struct Remote {
    bulk: DataChannelId,
    chat: DataChannel,
}

/// What the receiving side did.
enum Arrived {
    /// A bulk message of this many bytes, read then.
    Bytes(u64, Instant),
    /// The page's wall clock at the last byte, in ms since the epoch.
    Done(f64),
}

/// The receiving connection's own task, as a receiving application's:
/// it reads each event as it comes and echoes a chat message at once,
/// reporting the bulk messages (and a failure) on the channel returned.
/// Before, the loop that refills the sender also read the receiver's
/// events, falling behind at 16 KiB on loopback (thousands of messages a
/// second): a chat message waited in natter-io's event queue behind the
/// bulk messages queued ahead of it (up to `Config::event_capacity` plus
/// the driver's pending ones), about 100 ms of the transfer.
fn receive_locally(
    mut events: mpsc::Receiver<PeerEvent>,
    remote: Remote,
) -> mpsc::UnboundedReceiver<anyhow::Result<Arrived>> {
    let (report, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let arrived = match events.recv().await {
                None => Err(anyhow::anyhow!("the receiver's events ended")),
                Some(PeerEvent::DataChannelMessage { id, data, .. }) if id == remote.bulk => {
                    Ok(Arrived::Bytes(data.len() as u64, Instant::now()))
                }
                Some(PeerEvent::DataChannelMessage { id, data, .. }) if id == remote.chat.id() => {
                    match remote.chat.send(data).await {
                        Ok(()) => continue,
                        Err(e) => Err(anyhow::Error::from(e).context("chat echo")),
                    }
                }
                Some(event) => match check(&event) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
            };
            let failed = arrived.is_err();
            if report.send(arrived).is_err() || failed {
                break;
            }
        }
    });
    reports
}

/// The receiving side's next doing. Cancel-safe: its one await is a
/// channel's `recv`.
async fn receive(receiver: &mut Receiver) -> anyhow::Result<Arrived> {
    match receiver {
        Receiver::Local(_, reports) => reports.recv().await.context("the receiver's task ended")?,
        Receiver::Page(lines) => {
            let line = lines.recv().await.context("stdin ended before the page's \"done\"")?;
            match (line["type"].as_str(), line["epoch_ms"].as_f64()) {
                (Some("done"), Some(epoch_ms)) => Ok(Arrived::Done(epoch_ms)),
                _ => bail!("expected {{\"type\":\"done\",\"epoch_ms\":T}} on stdin, got {line}"),
            }
        }
    }
}

/// The sender's chat channel: when each message went, and the round
/// trips of those echoed.
struct Chat {
    channel: DataChannel,
    sent: Vec<Instant>,
    round_trips: Vec<Duration>,
}

impl Chat {
    async fn send(&mut self, size: usize) -> anyhow::Result<()> {
        let mut message = vec![0; size];
        message[..8].copy_from_slice(&(self.sent.len() as u64).to_le_bytes());
        self.sent.push(Instant::now());
        self.channel.send(message).await.context("chat send")
    }

    fn echoed(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let seq = data.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let Some(sent) = seq.and_then(|seq| self.sent.get(seq as usize)) else {
            bail!("an echo that is no chat message of ours ({} bytes)", data.len());
        };
        self.round_trips.push(sent.elapsed());
        Ok(())
    }

    fn waiting(&self) -> bool {
        self.round_trips.len() < self.sent.len()
    }
}

/// One transfer on a fresh pair.
async fn run_once(args: &Args) -> anyhow::Result<Figures> {
    let mut a = Peer::spawn()?;
    let connecting = Instant::now();
    let one_way = Duration::from_secs_f64(args.rtt / 2000.0);
    let (channel, chat, mut receiver, _proxy) = if args.stdio {
        let (channel, chat, page) = connect_page(&mut a).await?;
        (channel, chat, Receiver::Page(page), None)
    } else {
        let mut b = Peer::spawn()?;
        let (channel, chat, remote, proxy) = connect(&mut a, &mut b, one_way).await?;
        let reports = receive_locally(b.events, remote);
        (channel, chat, Receiver::Local(b.pc, reports), proxy)
    };
    let connected = connecting.elapsed();
    let mut chat = Chat {
        channel: chat,
        sent: Vec::new(),
        round_trips: Vec::new(),
    };

    channel.set_buffered_amount_low_threshold(args.buffer_low).await?;
    let payload = vec![0x5a; args.message_size];
    let mut sent = 0;
    let mut received = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(args.chat_interval_ms));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (start, start_wall) = (Instant::now(), SystemTime::now());
    pump(&channel, &payload, &mut sent, args).await?;
    let stall = tokio::time::sleep(STALL);
    tokio::pin!(stall);
    let mut end = None;
    let mut timeline: Vec<u64> = Vec::new();
    while end.is_none() || chat.waiting() {
        tokio::select! {
            () = &mut stall => {
                let queued = channel.buffered_amount().await?;
                let sender = a.pc.stats().await?;
                bail!(
                    "nothing received for {STALL:?}: sent {sent}, received {received}, {queued} bytes queued, \
                     {} of {} chat messages echoed; sender {:?} {:?}",
                    chat.round_trips.len(), chat.sent.len(), sender.transport, sender.sctp
                );
            }
            _ = ticks.tick(), if end.is_none() => chat.send(args.chat_size).await?,
            event = a.events.recv() => match event.context("the sender's events ended")? {
                PeerEvent::BufferedAmountLow(id) if id == channel.id() => {
                    pump(&channel, &payload, &mut sent, args).await?;
                }
                PeerEvent::DataChannelMessage { id, data, .. } if id == chat.channel.id() => {
                    chat.echoed(&data)?;
                    stall.as_mut().reset(tokio::time::Instant::now() + STALL);
                }
                event => check(&event)?,
            },
            arrived = receive(&mut receiver) => {
                stall.as_mut().reset(tokio::time::Instant::now() + STALL);
                match arrived? {
                    Arrived::Bytes(n, read_at) => {
                        received += n;
                        if let Some(slice) = args.timeline_ms.filter(|ms| *ms > 0) {
                            let at = (read_at.duration_since(start).as_millis() / u128::from(slice)) as usize;
                            timeline.resize(timeline.len().max(at + 1), 0);
                            timeline[at] += n;
                        }
                        if received >= args.bytes {
                            end = Some(read_at.duration_since(start));
                        }
                    }
                    Arrived::Done(epoch_ms) => {
                        received = args.bytes;
                        let start_ms = start_wall.duration_since(UNIX_EPOCH)?.as_secs_f64() * 1000.0;
                        if epoch_ms <= start_ms {
                            bail!("the page's last byte at {epoch_ms} ms, before the first send at {start_ms} ms");
                        }
                        end = Some(Duration::from_secs_f64((epoch_ms - start_ms) / 1000.0));
                    }
                }
            }
        }
    }
    if received != args.bytes {
        bail!("received {received} bytes, sent {}", args.bytes);
    }
    // The loop ends once `end` is set.
    let seconds = end.unwrap().as_secs_f64();
    let stats = a.pc.stats().await?;
    eprintln!(
        "connected in {:.1} ms; {} bytes in {seconds:.3} s, {} chat messages; the sender sent {} datagrams; its SCTP {:?}",
        connected.as_secs_f64() * 1000.0,
        args.bytes,
        chat.round_trips.len(),
        stats.transport.packets_sent,
        stats.sctp
    );
    if let Some(slice) = args.timeline_ms {
        let rates: Vec<String> = timeline
            .iter()
            .map(|bytes| format!("{:.1}", *bytes as f64 / (slice as f64 / 1000.0) / 1e6))
            .collect();
        eprintln!("MB/s received per {slice} ms: {}", rates.join(" "));
    }
    a.pc.close().await;
    if let Receiver::Local(b, _) = &receiver {
        b.close().await;
    }
    Ok(Figures {
        mbps: args.bytes as f64 / seconds / 1e6,
        chat: chat.round_trips,
    })
}
/// The sender's two channels, "bench" and "chat".
async fn channels(a: &Peer) -> anyhow::Result<(DataChannel, DataChannel)> {
    let bulk = a.pc.create_data_channel("bench", DataChannelInit::default()).await?;
    let chat = a.pc.create_data_channel("chat", DataChannelInit::default()).await?;
    Ok((bulk, chat))
}

/// Offer from `a` with the two channels, answer from `b`, trickle
/// candidates until both channels are open on both sides: the sender's
/// handles and the receiver's ends. With a `one_way` delay, `a` gets
/// `b`'s candidate behind a proxy (returned, to keep it running) and `b`
/// gets none of `a`'s.
async fn connect(
    a: &mut Peer,
    b: &mut Peer,
    one_way: Duration,
) -> anyhow::Result<(DataChannel, DataChannel, Remote, Option<Proxy>)> {
    let (bulk, chat) = channels(a).await?;
    let offer = a.pc.create_offer().await?;
    a.pc.set_local_description(offer.clone()).await?;
    b.pc.set_remote_description(offer).await?;
    let answer = b.pc.create_answer().await?;
    b.pc.set_local_description(answer.clone()).await?;
    a.pc.set_remote_description(answer).await?;
    let mut open = 0;
    let (mut remote_bulk, mut remote_chat) = (None, None);
    let mut proxy = None;
    while open < 2 || remote_bulk.is_none() || remote_chat.is_none() {
        tokio::select! {
            event = a.events.recv() => match event.context("the offerer's events ended")? {
                PeerEvent::IceCandidate(candidate) if one_way.is_zero() => b.pc.add_ice_candidate(Some(candidate)).await?,
                PeerEvent::IceCandidate(_) => {}
                PeerEvent::DataChannelOpen(id) if id == bulk.id() || id == chat.id() => open += 1,
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
                PeerEvent::DataChannelOpen(id) => {
                    let channel = b.pc.data_channel(id);
                    match channel.info().await?.label.as_str() {
                        "bench" => remote_bulk = Some(id),
                        "chat" => remote_chat = Some(channel),
                        label => bail!("the answerer opened an unknown channel {label:?}"),
                    }
                }
                event => check(&event)?,
            },
        }
    }
    let (Some(bulk_end), Some(chat_end)) = (remote_bulk, remote_chat) else {
        unreachable!("the loop ends once both are set");
    };
    let remote = Remote {
        bulk: bulk_end,
        chat: chat_end,
    };
    Ok((bulk, chat, remote, proxy))
}

/// Offers to the page over stdout (the offer, then each candidate),
/// applies its answer from stdin, and waits until both channels are
/// open: the two channels and the rest of stdin's lines.
async fn connect_page(a: &mut Peer) -> anyhow::Result<(DataChannel, DataChannel, mpsc::Receiver<Value>)> {
    let (bulk, chat) = channels(a).await?;
    let mut lines = stdin_lines();
    let offer = a.pc.create_offer().await?;
    a.pc.set_local_description(offer.clone()).await?;
    println!("{}", json!({"type": "offer", "sdp": offer.sdp}));
    let mut open = 0;
    let mut answered = false;
    while open < 2 {
        tokio::select! {
            event = a.events.recv() => match event.context("the offerer's events ended")? {
                PeerEvent::IceCandidate(IceCandidate { candidate, sdp_mid, sdp_m_line_index, .. }) => {
                    let line = json!({"type": "candidate", "candidate": candidate, "sdpMid": sdp_mid, "sdpMLineIndex": sdp_m_line_index});
                    println!("{line}");
                }
                PeerEvent::DataChannelOpen(id) if id == bulk.id() || id == chat.id() => open += 1,
                event => check(&event)?,
            },
            line = lines.recv(), if !answered => {
                let line = line.context("stdin ended before the answer")?;
                let (Some("answer"), Some(sdp)) = (line["type"].as_str(), line["sdp"].as_str()) else {
                    bail!("expected {{\"type\":\"answer\",\"sdp\":S}} on stdin, got {line}");
                };
                let answer = Description { kind: SdpType::Answer, sdp: sdp.to_owned() };
                a.pc.set_remote_description(answer).await?;
                answered = true;
            }
        }
    }
    Ok((bulk, chat, lines))
}

/// stdin's JSON lines, read on a thread of their own (a line that is not
/// JSON arrives as a string, which no step accepts).
fn stdin_lines() -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
            if tx.blocking_send(value).is_err() {
                break;
            }
        }
    });
    rx
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
