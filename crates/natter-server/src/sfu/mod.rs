//! The SFU of `natter serve` (issue 13; DESIGN.md, "Server
//! runtime"): one media worker, a thread that owns one UDP socket, a
//! natter [`Endpoint`](natter::endpoint::Endpoint) of ICE-lite
//! connections in RTP mode (one per participant) and the
//! [`natter_sfu::room::Room`] of every room it carries. Nothing on the
//! media path is shared or locked: signaling (tokio) sends the worker
//! [`SfuInput`]s over a channel and wakes it, and the worker answers
//! with [`Reply`]s on another.
//!
//! The protocol (one connection per participant, a fixed pool of
//! receive sections that `track` messages fill) is docs/signaling.md's
//! "SFU rooms".
//!
//! The socket is read with `recvmmsg` (natter-io's [`RecvBatch`], 32
//! datagrams a call), each datagram handed to the worker at the time the
//! kernel stamped it (`SO_TIMESTAMPNS`, natter-io's [`ReceiveClock`]):
//! a batch read late holds datagrams that arrived over that time, and
//! one read time for all of them would reach the TWCC feedback the
//! connections send (draft-holmer-rmcat-transport-wide-cc-extensions-01
//! §3.1) as queuing no link caused. What the worker sends is queued
//! while it drains and leaves with `sendmmsg` (natter-io's
//! [`SendBatch`], 32 datagrams a call) after each receive batch,
//! command and timeout, or as soon as 32 wait; a datagram the kernel
//! refuses is dropped and counted, as the network would drop it.
//! The worker publishes its counters in relaxed atomics
//! ([`SfuMetrics`]) for `/metrics`, which also reads the socket's drops
//! (receive buffer full) from `/proc/net/udp`; each second, and when a
//! room opens or closes, it swaps in every room's counters (natter-sfu's
//! `RoomMetrics`, participants, estimates) under a lock it only tries,
//! so the media path never waits on a scrape.

mod offer;
mod worker;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use natter_io::batch::{enable_receive_timestamps, RecvBatch, SendBatch, BATCH};
use natter_io::ReceiveClock;
use natter_signaling::SfuInput;
use tokio::sync::mpsc::UnboundedSender;

use worker::{NackTotals, RoomSample, Worker};
pub use worker::{Reply, Signal};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// SO_RCVBUF and SO_SNDBUF asked for the worker's socket: room for
/// about 3,000 datagrams, 0.3 s of 50 participants' media, while the
/// worker is busy or descheduled (the kernel caps it at rmem_max and
/// wmem_max; the sizes granted are logged).
const SOCKET_BUFFER: usize = 4 << 20;
/// How often the worker adds up its connections' NACK counters (they
/// take a walk over every connection's stats).
const NACK_TOTALS_EVERY: Duration = Duration::from_secs(1);

/// A room's recording starts (with the writer's end) or stops.
type RecordingCommand = (String, Option<crate::recording::Sink>);

/// The media worker, seen from signaling.
pub struct Sfu {
    inputs: Option<mpsc::Sender<SfuInput>>,
    recordings: mpsc::Sender<RecordingCommand>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<SfuMetrics>,
}

/// The worker's counters as it last published them (after each pass
/// of its loop), and its socket as the kernel sized it.
#[derive(Debug, Default)]
pub struct SfuMetrics {
    datagrams: AtomicU64,
    receive_calls: AtomicU64,
    datagrams_sent: AtomicU64,
    send_calls: AtomicU64,
    send_drops_full: AtomicU64,
    send_errors: AtomicU64,
    nacks_received: AtomicU64,
    nack_retransmissions: AtomicU64,
    nack_repairs_held: AtomicU64,
    nack_missed: AtomicU64,
    nacks_sent: AtomicU64,
    relay_received: AtomicU64,
    relay_relayed: AtomicU64,
    relay_relayed_bytes: AtomicU64,
    relay_dropped: AtomicU64,
    relay_dropped_bytes: AtomicU64,
    relay_malformed: AtomicU64,
    relay_paused: AtomicU64,
    relay_stalled: AtomicU64,
    relay_senders_paused: AtomicU64,
    no_slot: AtomicU64,
    write_failures: AtomicU64,
    connections: AtomicU64,
    /// Each room's counters, published each second and when a room
    /// opens or closes. The worker only `try_lock`s it (a render in
    /// progress delays its samples to the next pass), so it never
    /// waits on `/metrics`. One entry per room: the server's
    /// `max_rooms` (10,000 by default) bounds what is rendered.
    rooms: Mutex<Vec<RoomSample>>,
    /// The socket's inode, its line's key in /proc/net/udp.
    socket_inode: Option<u64>,
    receive_buffer: usize,
    send_buffer: usize,
}

impl Sfu {
    /// Binds the worker's socket, before the embedded TURN server starts so
    /// that TURN knows the address its relayed clients must reach.
    pub fn bind(bind: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
        std::net::UdpSocket::bind(bind).with_context(|| format!("SFU socket {bind}"))
    }

    /// Starts the worker on `socket` (see [`Sfu::bind`]); its connections
    /// offer `advertised` (with the socket's port) as their one host
    /// candidate.
    /// `relay_stall`: how long a recipient of the data channel relay may
    /// read nothing before it stops holding senders back;
    /// `consent_timeout`: how long a connection lives without the
    /// client's ICE checks.
    pub fn start(
        socket: std::net::UdpSocket,
        advertised: IpAddr,
        relay_stall: Duration,
        consent_timeout: Duration,
        replies: UnboundedSender<Reply>,
    ) -> anyhow::Result<Sfu> {
        socket.set_nonblocking(true)?;
        let mut socket = UdpSocket::from_std(socket);
        let address = SocketAddr::new(advertised, socket.local_addr()?.port());
        let buffers = socket2::SockRef::from(&socket);
        if let Err(e) = buffers.set_recv_buffer_size(SOCKET_BUFFER) {
            tracing::warn!(error = %e, "SFU socket: SO_RCVBUF refused");
        }
        if let Err(e) = buffers.set_send_buffer_size(SOCKET_BUFFER) {
            tracing::warn!(error = %e, "SFU socket: SO_SNDBUF refused");
        }
        // Linux reports twice what it grants, the rest for its bookkeeping.
        let receive_buffer = buffers.recv_buffer_size().unwrap_or(0);
        let send_buffer = buffers.send_buffer_size().unwrap_or(0);
        tracing::info!(
            asked = SOCKET_BUFFER,
            receive_buffer,
            send_buffer,
            "SFU socket buffers (as the kernel reports them)"
        );
        let metrics = Arc::new(SfuMetrics {
            socket_inode: socket_inode(&socket),
            receive_buffer,
            send_buffer,
            ..SfuMetrics::default()
        });
        let published = metrics.clone();
        let poll = Poll::new()?;
        poll.registry().register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (inputs, commands) = mpsc::channel();
        let (recordings, recording_commands) = mpsc::channel();
        let mut worker = Worker::new(address, relay_stall, replies);
        worker.set_consent_timeout(consent_timeout);
        if let Err(e) = enable_receive_timestamps(socket.as_raw_fd()) {
            tracing::warn!(error = %e, "SFU socket: SO_TIMESTAMPNS refused; datagrams are timed when read");
        }
        let thread = std::thread::Builder::new()
            .name("sfu".into())
            .spawn(move || run(socket, poll, (commands, recording_commands), worker, &published))?;
        tracing::info!(%address, "SFU media worker ready");
        Ok(Sfu {
            inputs: Some(inputs),
            recordings,
            waker,
            thread: Some(thread),
            metrics,
        })
    }

    /// The worker's metrics in Prometheus' text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let m = &*self.metrics;
        let (drops, queued) = m.socket_inode.and_then(udp_drops).unwrap_or((0, 0));
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, kind, help, value) in [
            (
                "datagrams_received",
                "counter",
                "Datagrams read from the worker's socket",
                load(&m.datagrams),
            ),
            (
                "receive_calls",
                "counter",
                "recvmmsg calls that read datagrams",
                load(&m.receive_calls),
            ),
            (
                "datagrams_sent",
                "counter",
                "Datagrams the kernel took from the worker's socket",
                load(&m.datagrams_sent),
            ),
            (
                "send_calls",
                "counter",
                "sendmmsg calls on the worker's socket (up to 32 datagrams each)",
                load(&m.send_calls),
            ),
            (
                "send_drops_full",
                "counter",
                "Datagrams dropped because the kernel would not take them now (EAGAIN: send buffer full; ENOBUFS)",
                load(&m.send_drops_full),
            ),
            (
                "send_errors",
                "counter",
                "Datagrams dropped because the kernel refused them otherwise (an unreachable destination)",
                load(&m.send_errors),
            ),
            (
                "nacks_received",
                "counter",
                "NACK packets subscribers sent the worker's connections (RFC 4585 §6.2.1), updated each second",
                load(&m.nacks_received),
            ),
            (
                "nack_retransmissions",
                "counter",
                "Packets resent as RTX (RFC 4588) from the connections' send history on a NACK, updated each second",
                load(&m.nack_retransmissions),
            ),
            (
                "nack_repairs_held",
                "counter",
                "NACKed packets not resent: repaired less than a round trip ago, or repairs over their share of the target bitrate, updated each second",
                load(&m.nack_repairs_held),
            ),
            (
                "nack_missed",
                "counter",
                "NACKed packets not resent because the send history no longer held them (or never did), updated each second",
                load(&m.nack_missed),
            ),
            (
                "nacks_sent",
                "counter",
                "NACK packets the worker's connections sent publishers, updated each second",
                load(&m.nacks_sent),
            ),
            (
                "socket_drops",
                "counter",
                "Datagrams the kernel dropped on the worker's socket, its receive buffer full (/proc/net/udp)",
                drops,
            ),
            (
                "socket_receive_queue_bytes",
                "gauge",
                "Bytes waiting in the worker's socket",
                queued,
            ),
            (
                "socket_receive_buffer_bytes",
                "gauge",
                "SO_RCVBUF as the kernel reports it (twice what it grants)",
                m.receive_buffer as u64,
            ),
            (
                "socket_send_buffer_bytes",
                "gauge",
                "SO_SNDBUF as the kernel reports it",
                m.send_buffer as u64,
            ),
            (
                "relay_received",
                "counter",
                "Data channel relay: messages from senders",
                load(&m.relay_received),
            ),
            (
                "relay_relayed",
                "counter",
                "Data channel relay: copies queued for recipients",
                load(&m.relay_relayed),
            ),
            (
                "relay_relayed_bytes",
                "counter",
                "Data channel relay: bytes of the copies queued",
                load(&m.relay_relayed_bytes),
            ),
            (
                "relay_dropped",
                "counter",
                "Data channel relay: copies dropped for stalled recipients",
                load(&m.relay_dropped),
            ),
            (
                "relay_dropped_bytes",
                "counter",
                "Data channel relay: bytes of the copies dropped",
                load(&m.relay_dropped_bytes),
            ),
            (
                "relay_malformed",
                "counter",
                "Data channel relay: messages with a bad envelope",
                load(&m.relay_malformed),
            ),
            (
                "relay_paused",
                "counter",
                "Data channel relay: times a sender was paused by a full queue",
                load(&m.relay_paused),
            ),
            (
                "relay_stalled",
                "counter",
                "Data channel relay: times a recipient was found stalled",
                load(&m.relay_stalled),
            ),
            (
                "relay_senders_paused",
                "gauge",
                "Data channel relay: senders paused now",
                load(&m.relay_senders_paused),
            ),
            (
                "no_slot",
                "counter",
                "Subscriptions that found no free receive section of their kind (the room chooses what fits, so 0 unless slots and choices disagree)",
                load(&m.no_slot),
            ),
            (
                "write_failures",
                "counter",
                "Forwarded packets a subscriber's connection refused",
                load(&m.write_failures),
            ),
            (
                "connections",
                "gauge",
                "Participants' connections the worker holds",
                load(&m.connections),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP natter_sfu_{name} {help}\n# TYPE natter_sfu_{name} {kind}\nnatter_sfu_{name} {value}"
            );
        }
        render_rooms(&m.rooms.lock().unwrap_or_else(PoisonError::into_inner), out);
    }

    /// Hands the worker a participant's offer, candidate or departure.
    pub fn send(&self, input: SfuInput) {
        if let Some(inputs) = &self.inputs {
            if inputs.send(input).is_ok() {
                let _ = self.waker.wake();
            }
        }
    }
}

impl Sfu {
    /// Starts recording `room` into `sink` (docs/recording.md), or stops
    /// with `None`: the worker drops the sink, and the writer finishes.
    pub fn record(&self, room: &str, sink: Option<crate::recording::Sink>) {
        if self.recordings.send((room.to_owned(), sink)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

impl Drop for Sfu {
    /// Stops the worker: its input channel closes, and it ends.
    fn drop(&mut self) {
        self.inputs = None;
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The worker's loop: commands, datagrams, timers; after each, what the
/// worker wants sent, in `sendmmsg` batches.
fn run(
    socket: UdpSocket,
    mut poll: Poll,
    (commands, recordings): (mpsc::Receiver<SfuInput>, mpsc::Receiver<RecordingCommand>),
    mut worker: Worker,
    metrics: &SfuMetrics,
) {
    let mut events = Events::with_capacity(64);
    let mut batch = RecvBatch::default();
    let mut out = Outbox::new(socket.as_raw_fd());
    let mut clock = ReceiveClock::default();
    let (mut datagrams, mut receive_calls) = (0u64, 0u64);
    let mut nack_totals = (NackTotals::default(), None::<Instant>);
    // The room samples being filled, and how many rooms were published.
    let (mut rooms, mut rooms_published) = (Vec::new(), 0);
    loop {
        let timeout = worker
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %e, "SFU poll failed; the worker stops");
            return;
        }
        loop {
            let input = match commands.try_recv() {
                Ok(input) => input,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            };
            let now = clock_now(&mut clock);
            worker.handle_input(now, input);
            worker.drain(now, |to, data| out.push(to, data));
            out.flush();
        }
        while let Ok((room, sink)) = recordings.try_recv() {
            let now = clock_now(&mut clock);
            worker.handle_recording(now, &room, sink);
            worker.drain(now, |to, data| out.push(to, data));
            out.flush();
        }
        loop {
            let n = match batch.recv(socket.as_raw_fd(), 0) {
                Ok(0) => break,
                Ok(n) => n,
                // An ICMP error of an earlier send, reported here.
                Err(e) => {
                    tracing::debug!(error = %e, "SFU receive");
                    continue;
                }
            };
            receive_calls += 1;
            datagrams += n as u64;
            let (now, wall) = (Instant::now(), SystemTime::now());
            for i in 0..n {
                let stamp = batch.received_at(i);
                // A cut datagram (over the slot) is no packet of ours.
                let (Some(source), slot, len, false) = batch.get(i) else {
                    continue;
                };
                let at = clock.arrival_at(stamp, now, wall);
                worker.handle_datagram(at, source, &slot[..len]);
                worker.drain(at, |to, data| out.push(to, data));
            }
            out.flush();
        }
        let now = clock_now(&mut clock);
        worker.handle_timeout(now);
        worker.drain(now, |to, data| out.push(to, data));
        out.flush();
        let due = nack_totals.1.is_none_or(|at| now >= at);
        if due {
            nack_totals = (worker.nack_totals(), Some(now + NACK_TOTALS_EVERY));
        }
        // A room that closed leaves /metrics now, not at the next second
        // (an idle worker may not wake for one).
        if due || worker.rooms() != rooms_published {
            worker.room_samples(&mut rooms);
            if let Ok(mut published) = metrics.rooms.try_lock() {
                std::mem::swap(&mut *published, &mut rooms);
                rooms_published = published.len();
            }
        }
        publish(metrics, &worker, (datagrams, receive_calls), &out, &nack_totals.0);
    }
}

/// The time now, given to the worker: later datagrams are not stamped
/// before it.
fn clock_now(clock: &mut ReceiveClock) -> Instant {
    let now = Instant::now();
    clock.advance(now);
    now
}

/// What the worker sends, queued for `sendmmsg`: a full batch leaves at
/// once, the rest at [`Outbox::flush`]. Its buffers grow to the largest
/// batch and are reused, so a warm worker allocates nothing to send.
struct Outbox {
    fd: std::os::fd::RawFd,
    batch: SendBatch,
    /// Datagrams pushed so far.
    pushed: u64,
}

impl Outbox {
    fn new(fd: std::os::fd::RawFd) -> Self {
        Outbox {
            fd,
            batch: SendBatch::default(),
            pushed: 0,
        }
    }

    fn push(&mut self, to: SocketAddr, data: &[u8]) {
        self.batch.push(to, data);
        self.pushed += 1;
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends what waits; what the kernel will not take is dropped (and
    /// counted in the batch's drops), as UDP allows.
    fn flush(&mut self) {
        self.batch.flush(self.fd);
    }

    /// Datagrams the kernel took.
    fn sent(&self) -> u64 {
        let drops = self.batch.drops();
        self.pushed - drops.full - drops.refused - self.batch.len() as u64
    }
}

fn publish(metrics: &SfuMetrics, worker: &Worker, received: (u64, u64), out: &Outbox, nacks: &NackTotals) {
    let (relay, held) = worker.relay_totals();
    let store = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
    store(&metrics.datagrams, received.0);
    store(&metrics.receive_calls, received.1);
    store(&metrics.datagrams_sent, out.sent());
    store(&metrics.send_calls, out.batch.system_calls());
    let drops = out.batch.drops();
    store(&metrics.send_drops_full, drops.full);
    store(&metrics.send_errors, drops.refused);
    store(&metrics.nacks_received, nacks.received);
    store(&metrics.nack_retransmissions, nacks.retransmissions);
    store(&metrics.nack_repairs_held, nacks.repairs_held);
    store(&metrics.nack_missed, nacks.missed);
    store(&metrics.nacks_sent, nacks.sent);
    store(&metrics.relay_received, relay.received);
    store(&metrics.relay_relayed, relay.relayed);
    store(&metrics.relay_relayed_bytes, relay.relayed_bytes);
    store(&metrics.relay_dropped, relay.dropped);
    store(&metrics.relay_dropped_bytes, relay.dropped_bytes);
    store(&metrics.relay_malformed, relay.malformed);
    store(&metrics.relay_paused, relay.paused);
    store(&metrics.relay_stalled, relay.stalled);
    store(&metrics.relay_senders_paused, held as u64);
    let counters = worker.counters();
    store(&metrics.no_slot, counters.no_slot);
    store(&metrics.write_failures, counters.write_failures);
    store(&metrics.connections, worker.connections() as u64);
}

/// A per-room family: the name after `natter_sfu_room_`, its type,
/// its help, and its value in a sample.
type RoomFamily = (&'static str, &'static str, &'static str, fn(&RoomSample) -> u64);

/// natter-sfu's `RoomMetrics`, one sample per room, labelled `room`.
const ROOM_FAMILIES: [RoomFamily; 17] = [
    ("participants", "gauge", "Participants in the room", |r| r.participants),
    (
        "received_packets",
        "counter",
        "RTP packets the room received from its publishers",
        |r| r.metrics.received_packets,
    ),
    (
        "forwarded_packets",
        "counter",
        "RTP packets the room forwarded to subscribers",
        |r| r.metrics.forwarded_packets,
    ),
    (
        "forwarded_bytes",
        "counter",
        "RTP payload bytes the room forwarded to subscribers",
        |r| r.metrics.forwarded_bytes,
    ),
    (
        "layer_switches",
        "counter",
        "Simulcast or temporal layer switches of the room's subscriptions",
        |r| r.metrics.layer_switches,
    ),
    (
        "keyframe_requests",
        "counter",
        "Keyframe requests sent to the room's publishers, after aggregation (RFC 4585 §6.3.1, RFC 5104 §4.3.1)",
        |r| r.metrics.keyframe_requests,
    ),
    (
        "keyframe_requests_limited",
        "counter",
        "Subscribers' PLIs and FIRs over their rate, ignored",
        |r| r.metrics.keyframe_requests_limited,
    ),
    (
        "nacks",
        "counter",
        "Sequence numbers the room's subscribers NACKed to the room (RFC 4585 §6.2.1)",
        |r| r.metrics.nacks,
    ),
    (
        "nacks_limited",
        "counter",
        "NACKed sequence numbers over the subscriber's rate, ignored",
        |r| r.metrics.nacks_limited,
    ),
    (
        "nacks_from_cache",
        "counter",
        "NACKed sequence numbers the room resent from its cache",
        |r| r.metrics.nacks_from_cache,
    ),
    (
        "nacks_upstream",
        "counter",
        "NACKed sequence numbers the room asked of publishers",
        |r| r.metrics.nacks_upstream,
    ),
    (
        "nacks_upstream_limited",
        "counter",
        "Upstream NACKs not sent: over the publisher's rate",
        |r| r.metrics.nacks_upstream_limited,
    ),
    (
        "nacks_unanswered",
        "counter",
        "NACKs for numbers no source maps to, or older than the subscription's history",
        |r| r.metrics.nacks_unanswered,
    ),
    (
        "resent_packets",
        "counter",
        "Packets the room resent from its cache",
        |r| r.metrics.resent_packets,
    ),
    (
        "resent_bytes",
        "counter",
        "Payload bytes the room resent from its cache",
        |r| r.metrics.resent_bytes,
    ),
    (
        "unknown_ssrc",
        "counter",
        "Packets on an SSRC no publication of their sender has",
        |r| r.metrics.unknown_ssrc,
    ),
    (
        "forward_errors",
        "counter",
        "Packets a subscription could not forward (a jump in sequence numbers, a malformed VP8 descriptor)",
        |r| r.metrics.forward_errors,
    ),
];

/// Each room's families, labelled `room`, then each participant's
/// estimate, labelled `room` and `participant` (its peer id).
fn render_rooms(rooms: &[RoomSample], out: &mut String) {
    use std::fmt::Write;
    for (name, kind, help, value) in ROOM_FAMILIES {
        let _ = writeln!(
            out,
            "# HELP natter_sfu_room_{name} {help}\n# TYPE natter_sfu_room_{name} {kind}"
        );
        for sample in rooms {
            let _ = write!(out, "natter_sfu_room_{name}{{room=\"");
            escape_label(&sample.room, out);
            let _ = writeln!(out, "\"}} {}", value(sample));
        }
    }
    let name = "natter_sfu_room_subscriber_estimate_bps";
    let _ = writeln!(
        out,
        "# HELP {name} A participant's estimate: the target bitrate its connection reported, which the room shares among its subscriptions to choose their layers\n# TYPE {name} gauge"
    );
    for sample in rooms {
        for (peer, bps) in &sample.estimates {
            let _ = write!(out, "{name}{{room=\"");
            escape_label(&sample.room, out);
            out.push_str("\",participant=\"");
            escape_label(peer, out);
            let _ = writeln!(out, "\"}} {bps}");
        }
    }
}

/// A label value as Prometheus' text exposition format writes it:
/// backslash, double quote and line feed escaped.
fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The socket's inode, from /proc/self/fd (`socket:[N]`).
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The drops and receive queue of the socket `inode`, from its line in
/// /proc/net/udp or udp6 (`... rx_queue ... inode ref pointer drops`).
fn udp_drops(inode: u64) -> Option<(u64, u64)> {
    let inode = inode.to_string();
    ["/proc/net/udp", "/proc/net/udp6"].into_iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        text.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(9) != Some(&inode.as_str()) {
                return None;
            }
            let queued = fields.get(4)?.split(':').nth(1)?;
            Some((fields.get(12)?.parse().ok()?, u64::from_str_radix(queued, 16).ok()?))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signaling accepts only `[A-Za-z0-9_-]` room names, but the
    /// rendering does not rely on it: a room named with a backslash, a
    /// quote and a line feed stays one sample line per family.
    #[test]
    fn a_hostile_room_name_is_escaped_in_every_room_family() {
        let mut room = RoomSample {
            room: "a\\b\"c\nnatter_sfu_connections 99".into(),
            participants: 2,
            estimates: vec![("p\"1".into(), 300_000)],
            ..RoomSample::default()
        };
        room.metrics.forwarded_packets = 7;
        let mut out = String::new();
        render_rooms(&[room], &mut out);
        let label = r#"room="a\\b\"c\nnatter_sfu_connections 99""#;
        assert!(
            out.contains(&format!("natter_sfu_room_forwarded_packets{{{label}}} 7\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("natter_sfu_room_participants{{{label}}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "natter_sfu_room_subscriber_estimate_bps{{{label},participant=\"p\\\"1\"}} 300000\n"
            )),
            "{out}"
        );
        assert!(!out.lines().any(|l| l.starts_with("natter_sfu_connections")), "{out}");
        let samples = out.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, ROOM_FAMILIES.len() + 1, "{out}");
    }
}
