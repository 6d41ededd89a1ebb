//! Client mode: natter offers, an echo server answers, and natter checks
//! what comes back.
//!
//! 1. Two channels, `echo` (reliable, ordered) and `lossy` (unordered,
//!    maxRetransmits 0); a complete offer (gathering waited for, no
//!    trickle) POSTed to the server; its answer applied.
//! 2. `echo`: a seeded mix of text and binary messages ([`super::mix`]),
//!    sent as fast as natter's buffered amount allows, each echo
//!    checked byte-exact, type included, and in order.
//! 3. `lossy`: messages one at a time, each echo awaited before the
//!    next (no loss to expect on a quiet link), checked the same way.
//! 4. natter closes `lossy` and waits for its `close`; then `close-me` on
//!    `echo`, and the server closes it.
//!
//! 5. With `--video FILE.ivf` (and `--audio FILE.ogg`), before the
//!    closes: natter's offer also sends media; the files' VP8 frames and
//!    Opus packets go out at their pace, and the server must reflect
//!    them: at least half of each come back, the video with a keyframe
//!    of the file's picture size (a server may re-encode, so the bytes
//!    are not compared).

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use natter_io::{
    Config, DataChannel, DataChannelId, DataChannelInit, Description, Format, LocalAddresses, MediaKind, Message,
    PeerConnection, PeerConnectionState, PeerEvent, SdpType, Track,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use natter_io::echoes::SessionDescription;
use natter_io::media_file as files;

use super::mix::{self, Rng};

/// What client mode sends; the defaults are issue 5's acceptance.
#[derive(clap::Args, Clone, Debug)]
pub struct Check {
    /// Client mode: how many messages go through the reliable channel.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Client mode: the largest message, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    max_size: usize,
    /// Client mode: how many messages go one at a time through the
    /// unordered maxRetransmits-0 channel.
    #[arg(long, default_value_t = 50)]
    unordered_messages: usize,
    /// Client mode: the seed of the message mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Client mode: also send this VP8 IVF file and check that the server
    /// reflects the video.
    #[arg(long, value_name = "FILE.ivf")]
    video: Option<std::path::PathBuf>,
    /// Client mode: with `--video`, also send this Opus Ogg file and
    /// check that the server reflects the audio.
    #[arg(long, value_name = "FILE.ogg", requires = "video")]
    audio: Option<std::path::PathBuf>,
    /// Client mode: how long the connection and each check may take.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
}

/// Above this many bytes queued in natter, the reliable channel waits
/// for [`PeerEvent::BufferedAmountLow`] at [`LOW_WATER`].
const HIGH_WATER: usize = 4 << 20;
const LOW_WATER: usize = 1 << 20;
/// How long one message on the unordered channel may take to come back.
const UNORDERED_ECHO: Duration = Duration::from_secs(2);
/// How long a channel may take to close.
const CLOSE: Duration = Duration::from_secs(10);

/// Where client mode offers, and how each of its connections is made.
#[derive(Clone, Debug)]
pub struct Client {
    /// The echo server's `POST /offer`.
    pub url: String,
    pub addresses: LocalAddresses,
    /// Resolve the server's `.local` candidates.
    pub mdns: bool,
    /// How long to wait for gathering before offering anyway.
    pub gather_timeout: Duration,
    /// Offer SPED ([`natter::dtls::DtlsConfig::sped`]).
    pub sped: bool,
}

/// Runs the whole check against the server at `client.url`; the JSON
/// summary line, or what went wrong first.
pub async fn run(client: &Client, check: &Check) -> anyhow::Result<String> {
    let started = Instant::now();
    let timeout = Duration::from_millis(check.timeout_ms);
    let url = client.url.as_str();
    let mut config = Config {
        local_addresses: client.addresses.clone(),
        mdns: client.mdns,
        ..Config::default()
    };
    config.peer.dtls.sped = client.sped;
    let (pc, events) = PeerConnection::spawn(config).context("starting the peer connection")?;
    let mut events = Events {
        receiver: events,
        pending: VecDeque::new(),
    };
    let result = async {
        let mut media = Vec::new();
        if let Some(path) = &check.video {
            let video = files::read_ivf(path)?;
            // natter sends with the first codec the server accepts: VP8.
            anyhow::ensure!(video.format == Format::Vp8, "{} is not VP8", path.display());
            media.push((video, pc.add_track(MediaKind::Video).await?));
        }
        if let Some(path) = &check.audio {
            media.push((files::read_ogg_opus(path)?, pc.add_track(MediaKind::Audio).await?));
        }
        let (echo, lossy) = connect(url, &pc, &mut events, client.gather_timeout, timeout).await?;
        let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
        let burst = burst(&echo, &mut events, check, timeout).await?;
        let unordered = one_at_a_time(&lossy, &mut events, check).await?;
        let media = match media.is_empty() {
            true => None,
            false => Some(reflected(&media, &mut events, timeout).await?),
        };
        // Before the channels close: the transport is still up.
        let stats = pc.stats().await.context("stats")?;
        close(&lossy, &mut events, Closer::Natter).await?;
        close(&echo, &mut events, Closer::Server).await?;
        let dtls = stats.dtls.context("no DTLS transport in the stats")?;
        let pair = stats.selected_pair.context("no selected candidate pair in the stats")?;
        Ok::<_, anyhow::Error>(
            json!({
                "ok": true,
                "url": url,
                "messages": burst.messages + unordered.messages,
                "bytes": burst.bytes + unordered.bytes,
                "reliable": burst.to_json(),
                "unordered": unordered.to_json(),
                "closed": { "by_natter": "lossy", "by_server": "echo" },
                "media": media,
                "dtls_role": format!("{:?}", dtls.role).to_lowercase(),
                "dtls_state": format!("{:?}", dtls.state).to_lowercase(),
                "dtls_version": dtls.version.map(|v| format!("{v:?}")),
                "selected_pair": { "local": pair.local.to_string(), "remote": pair.remote.to_string() },
                "sped": stats.sped.map(|sped| json!({
                    "state": format!("{:?}", sped.state),
                    "embedded_sent": sped.counters.embedded_sent,
                    "embedded_received": sped.counters.embedded_received,
                    "duplicates": sped.counters.duplicates,
                    "acknowledged": sped.counters.acknowledged,
                    "peer_messages": sped.counters.peer_messages,
                })),
                "connect_ms": connect_ms.round(),
                "ms": (started.elapsed().as_secs_f64() * 1000.0).round(),
            })
            .to_string(),
        )
    }
    .await;
    pc.close().await;
    result
}

/// Runs `connections` checks at once, each on sockets of its own: one
/// summary line (the connections that passed, the time the slowest
/// took), or the first failure.
pub async fn run_many(client: &Client, connections: usize, check: &Check) -> anyhow::Result<String> {
    let started = Instant::now();
    let check = std::sync::Arc::new(check.clone());
    let mut checks = tokio::task::JoinSet::new();
    for index in 0..connections {
        let (client, check) = (client.clone(), check.clone());
        checks.spawn(async move {
            run(&client, &check)
                .await
                .with_context(|| format!("connection {index} of {connections}"))
        });
    }
    let mut messages = 0;
    let mut passed = 0;
    while let Some(done) = checks.join_next().await {
        let summary: serde_json::Value = serde_json::from_str(&done??)?;
        messages += summary["messages"].as_u64().unwrap_or(0);
        passed += 1;
    }
    Ok(json!({
        "ok": true,
        "url": client.url,
        "connections": passed,
        "messages": messages,
        "ms": (started.elapsed().as_secs_f64() * 1000.0).round(),
    })
    .to_string())
}

/// The connection's events, and those read ahead of their time.
struct Events {
    receiver: mpsc::Receiver<PeerEvent>,
    pending: VecDeque<PeerEvent>,
}

impl Events {
    /// The next event before `deadline`; fails, naming `what` it waited
    /// for, on the deadline or when the connection fails or closes.
    async fn next(&mut self, deadline: Instant, what: &str) -> anyhow::Result<PeerEvent> {
        let event = match self.pending.pop_front() {
            Some(event) => event,
            None => tokio::time::timeout_at(deadline, self.receiver.recv())
                .await
                .map_err(|_| anyhow!("timed out waiting for {what}"))?
                .ok_or_else(|| anyhow!("the connection ended while waiting for {what}"))?,
        };
        match event {
            PeerEvent::ConnectionStateChange(state @ (PeerConnectionState::Failed | PeerConnectionState::Closed)) => {
                bail!("the connection went {state} while waiting for {what}")
            }
            PeerEvent::ConnectionStateChange(state) => tracing::info!(%state, "connection state"),
            PeerEvent::IceConnectionStateChange(state) => tracing::info!(?state, "ICE connection state"),
            _ => {}
        }
        Ok(event)
    }
}

/// An event no step expects: a message or a close on a channel that
/// should have none is a failure, the rest is logged.
fn unexpected(event: PeerEvent, what: &str) -> anyhow::Result<()> {
    match event {
        PeerEvent::DataChannelMessage { id, data, is_text } => {
            bail!(
                "while waiting for {what}: a message on channel {id} ({} bytes, text {is_text})",
                data.len()
            )
        }
        PeerEvent::DataChannelClose(id) => bail!("while waiting for {what}: channel {id} closed"),
        PeerEvent::DataChannel(id) => bail!("while waiting for {what}: the server opened channel {id}"),
        other => tracing::debug!(?other, "event"),
    }
    Ok(())
}

/// Offers `echo` and `lossy`, POSTs the complete offer, applies the
/// answer and waits for both channels to open.
async fn connect(
    url: &str,
    pc: &PeerConnection,
    events: &mut Events,
    gather_timeout: Duration,
    timeout: Duration,
) -> anyhow::Result<(DataChannel, DataChannel)> {
    let echo = pc.create_data_channel("echo", DataChannelInit::default()).await?;
    let lossy_init = DataChannelInit {
        ordered: false,
        max_retransmits: Some(0),
        ..DataChannelInit::default()
    };
    let lossy = pc.create_data_channel("lossy", lossy_init).await?;
    let offer = pc.create_offer().await.context("createOffer")?;
    pc.set_local_description(offer)
        .await
        .context("setLocalDescription(offer)")?;

    // Non-trickle: the offer carries every candidate.
    let gathered = Instant::now() + gather_timeout;
    let mut early = VecDeque::new();
    loop {
        match events.next(gathered, "ICE gathering to complete").await {
            Ok(PeerEvent::IceGatheringComplete) => break,
            Ok(event) => early.push_back(event),
            Err(error) => {
                tracing::warn!("{error:#}; offering the candidates gathered so far");
                break;
            }
        }
    }
    events.pending.append(&mut early);
    let sdp = pc
        .local_description()
        .await?
        .context("no local description after setLocalDescription")?;
    tracing::info!("offer:\n{sdp}");
    let offer = SessionDescription {
        kind: "offer".into(),
        sdp,
    };
    let answer = post_offer(url, &offer, timeout).await?;
    tracing::info!("answer:\n{}", answer.sdp);
    let remote = Description {
        kind: SdpType::Answer,
        sdp: answer.sdp,
    };
    pc.set_remote_description(remote)
        .await
        .context("setRemoteDescription(answer)")?;

    let deadline = Instant::now() + timeout;
    let (mut echo_open, mut lossy_open) = (false, false);
    while !(echo_open && lossy_open) {
        match events.next(deadline, "the channels 'echo' and 'lossy' to open").await? {
            PeerEvent::DataChannelOpen(id) if id == echo.id() => echo_open = true,
            PeerEvent::DataChannelOpen(id) if id == lossy.id() => lossy_open = true,
            other => unexpected(other, "the channels to open")?,
        }
    }
    Ok((echo, lossy))
}

/// Sends the files' frames on their tracks at their pace and counts the
/// frames the server sends back on each; fails unless at least half of
/// each come back, the video with a keyframe of the file's size.
async fn reflected(
    files: &[(files::Media, Track)],
    events: &mut Events,
    timeout: Duration,
) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut sent = vec![0usize; files.len()];
    let mut received = vec![0usize; files.len()];
    let mut keyframe_size = None;
    let mut schedule = files::Schedule::new(files.iter().map(|(media, _)| media), false).peekable();
    // After the last frame, a second for the reflections still on the way.
    let length = files.iter().map(|(media, _)| media.length).max().unwrap_or_default();
    let last = start + length + Duration::from_secs(1);
    while Instant::now() < last {
        let next = schedule.peek().map_or(last, |(_, at, _)| start + *at);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {
                if let Some((index, at, frame)) = schedule.next() {
                    files[index].1.send_frame(at, frame.to_vec()).await.context("sending a frame")?;
                    sent[index] += 1;
                }
            }
            event = events.next(deadline, "the reflected media") => match event? {
                PeerEvent::MediaFrame(frame) => {
                    let Some(index) = files.iter().position(|(_, track)| track.id() == frame.transceiver) else {
                        bail!("a frame on transceiver {} that natter did not send on", frame.transceiver);
                    };
                    received[index] += 1;
                    if frame.keyframe && frame.format != Format::Opus {
                        keyframe_size = keyframe_size.or(frame.size);
                    }
                }
                other => unexpected(other, "the reflected media")?,
            },
        }
    }
    for (index, (media, track)) in files.iter().enumerate() {
        ensure!(
            received[index] * 2 >= sent[index] && sent[index] == media.frames.len(),
            "the server reflected {} of the {} frames sent on transceiver {}",
            received[index],
            sent[index],
            track.id()
        );
    }
    let size = files[0].0.size.map(|(w, h)| (u32::from(w), u32::from(h)));
    ensure!(
        keyframe_size.is_some() && keyframe_size == size,
        "the reflected keyframes are {keyframe_size:?}, the file's frames {size:?}"
    );
    Ok(json!({ "sent": sent, "received": received, "size": keyframe_size }))
}

/// `POST url` with the offer as JSON; the answer.
async fn post_offer(url: &str, offer: &SessionDescription, timeout: Duration) -> anyhow::Result<SessionDescription> {
    let uri: hyper::Uri = url.parse().with_context(|| format!("--client {url:?} is not a URL"))?;
    ensure!(uri.scheme_str() == Some("http"), "--client {url:?}: only http:// URLs");
    let authority = uri.authority().context("no host in the URL")?.clone();
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(offer)?)))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        ensure!(
            status.is_success(),
            "the server answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let answer: SessionDescription = serde_json::from_slice(&body).with_context(|| {
            format!(
                "the answer is not {{\"type\",\"sdp\"}} JSON: {}",
                String::from_utf8_lossy(&body)
            )
        })?;
        ensure!(
            answer.kind == "answer",
            "expected {{\"type\":\"answer\"}}, got {:?}",
            answer.kind
        );
        Ok(answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("no answer in {timeout:?}"))?
        .with_context(|| format!("POST {url}"))
}

/// What one channel's check saw.
#[derive(Default)]
struct Echoed {
    messages: usize,
    bytes: usize,
    text: usize,
    largest: usize,
    ms: f64,
}

impl Echoed {
    fn count(&mut self, message: &Message) {
        let (is_text, bytes) = mix::parts(message);
        self.messages += 1;
        self.bytes += bytes.len();
        self.text += usize::from(is_text);
        self.largest = self.largest.max(bytes.len());
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "messages": self.messages,
            "bytes": self.bytes,
            "text": self.text,
            "binary": self.messages - self.text,
            "largest": self.largest,
            "ms": self.ms.round(),
        })
    }
}

/// The reliable ordered channel: every message of the mix out as fast
/// as the buffered amount allows, every echo checked in order.
async fn burst(echo: &DataChannel, events: &mut Events, check: &Check, timeout: Duration) -> anyhow::Result<Echoed> {
    let mut rng = Rng::new(check.seed);
    let sizes = mix::sizes(check.messages, check.max_size, &mut rng);
    echo.set_buffered_amount_low_threshold(LOW_WATER).await?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut in_flight: VecDeque<Message> = VecDeque::new();
    let mut sent = 0;
    let mut echoed = Echoed::default();
    let mut blocked = false;
    while echoed.messages < sizes.len() {
        while !blocked && sent < sizes.len() {
            if echo.buffered_amount().await? > HIGH_WATER {
                blocked = true;
                break;
            }
            let message = mix::message(sizes[sent], &mut rng);
            echo.send(message.clone())
                .await
                .with_context(|| format!("sending message {sent} ({} bytes) on 'echo'", sizes[sent]))?;
            in_flight.push_back(message);
            sent += 1;
        }
        let what = format!("echo {} of {} on 'echo' ({sent} sent)", echoed.messages, sizes.len());
        match events.next(deadline, &what).await? {
            PeerEvent::DataChannelMessage { id, data, is_text } if id == echo.id() => {
                let expected = in_flight
                    .pop_front()
                    .with_context(|| format!("an echo on 'echo' with nothing in flight ({} bytes)", data.len()))?;
                if let Some(why) = mix::mismatch(&expected, is_text, &data) {
                    bail!("echo {} on 'echo' is not the message sent: {why}", echoed.messages);
                }
                echoed.count(&expected);
            }
            PeerEvent::BufferedAmountLow(id) if id == echo.id() => blocked = false,
            PeerEvent::BufferedAmountLow(_) => {}
            other => unexpected(other, &what)?,
        }
    }
    echoed.ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(echoed)
}

/// The unordered channel: small messages, each echo awaited before the
/// next goes.
async fn one_at_a_time(lossy: &DataChannel, events: &mut Events, check: &Check) -> anyhow::Result<Echoed> {
    let mut rng = Rng::new(check.seed.wrapping_add(1));
    let started = Instant::now();
    let mut echoed = Echoed::default();
    for i in 0..check.unordered_messages {
        let message = mix::message(1 + rng.below(check.max_size.min(1000)), &mut rng);
        lossy.send(message.clone()).await.context("sending on 'lossy'")?;
        let what =
            format!("the echo of message {i} on 'lossy' (unordered, maxRetransmits 0) within {UNORDERED_ECHO:?}");
        let deadline = Instant::now() + UNORDERED_ECHO;
        loop {
            match events.next(deadline, &what).await? {
                PeerEvent::DataChannelMessage { id, data, is_text } if id == lossy.id() => {
                    if let Some(why) = mix::mismatch(&message, is_text, &data) {
                        bail!("echo {i} on 'lossy' is not the message sent: {why}");
                    }
                    echoed.count(&message);
                    break;
                }
                PeerEvent::BufferedAmountLow(_) => {}
                other => unexpected(other, &what)?,
            }
        }
    }
    echoed.ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(echoed)
}

/// Who closes a channel in [`close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closer {
    Natter,
    /// Asked to with `close-me`.
    Server,
}

/// Closes `channel` (natter itself or by `close-me`) and waits for its
/// `close`.
async fn close(channel: &DataChannel, events: &mut Events, closer: Closer) -> anyhow::Result<()> {
    let id: DataChannelId = channel.id();
    let label = channel.info().await?.label;
    match closer {
        Closer::Natter => channel.close().await?,
        Closer::Server => channel.send("close-me").await?,
    }
    let what = format!("'{label}' to close ({closer:?} closing it)");
    let deadline = Instant::now() + CLOSE;
    loop {
        match events.next(deadline, &what).await? {
            PeerEvent::DataChannelClose(closed) if closed == id => return Ok(()),
            PeerEvent::BufferedAmountLow(_) => {}
            other => unexpected(other, &what)?,
        }
    }
}
