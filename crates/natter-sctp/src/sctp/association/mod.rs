//! One SCTP association, sans-IO (RFC 9260 §5 for its setup), the one
//! [`SctpTransport`](crate::SctpTransport) runs data channels on.
//! It sets up (§5.1) with a State Cookie authenticated by
//! HMAC-SHA256, handles INIT collisions (§5.2) and stale cookies
//! (§5.2.6), retransmits INIT and COOKIE ECHO on T1-init and T1-cookie
//! with the RTO (§6.3), answers HEARTBEATs and sends its own on idle to
//! measure the RTT (§8.3), answers unknown chunks by their type
//! (§3.2) and out-of-the-blue packets (§8.4), and checks verification
//! tags (§8.5). Data transfer with DATA: SACKs with gap blocks and
//! duplicates, delayed or at once (§6.2), T3-rtx (§6.3.3), fast
//! retransmit and recovery (§7.2.4), with a tail loss probe (RFC 8985
//! §7) so a lost tail of the flight is found by a SACK rather than
//! T3-rtx, slow start and congestion avoidance (§7.2.1, §7.2.2), slow
//! start left by HyStart++ (RFC 9406, `hystart.rs`), FORWARD TSN on
//! receipt (RFC 3758 §3.6). Ending:
//! the orderly SHUTDOWN of §9.2 from either side or both (queued data
//! delivered first, T2-shutdown), ABORT on demand (§9.1), on max
//! retransmissions (§8.1, §8.2) and on protocol violations (§6.2,
//! §12.4). Partial reliability (RFC 3758) both ways: messages sent
//! with [`Reliability`] limits are abandoned whole and skipped with
//! FORWARD TSN. Stream reset (RFC 6525, `reconfig.rs`): outgoing
//! streams reset once their data is acknowledged, the peer's resets
//! performed (deferred until its data is in). Messages leave by the
//! stream scheduler (RFC 8260 §3, `scheduler.rs`): streams take turns by
//! message, weighted by priority. Packets grow past the configured size
//! as RFC 8899's DPLPMTUD finds the path carries them (`pmtud.rs`), and
//! fall back on a black hole. Message interleaving (RFC 8260) when both
//! ends offer it (`Config::interleaving`): I-DATA instead of DATA,
//! fragments of different streams interleaved by the scheduler, and
//! I-FORWARD-TSN instead of FORWARD TSN; the other kind of either on
//! the association is a protocol violation (RFC 8260 §2.1, §2.3).
//!
//! Methods, in quinn-proto's taxonomy:
//! - getters (`&self`): [`Association::state`], [`Association::peer`],
//!   [`Association::stats`], [`Association::srtt`], [`Association::pmtu`];
//! - input: [`Association::handle_packet`] (one SCTP packet, the
//!   plaintext of a DTLS record) and [`Association::handle_timeout`];
//! - application commands: [`Association::connect`],
//!   [`Association::connect_snap`] (set up from two INITs exchanged out
//!   of band, draft-hancke-tsvwg-snap, `snap.rs`),
//!   [`Association::send`], [`Association::send_with`],
//!   [`Association::set_priority`], [`Association::reset_streams`],
//!   [`Association::shutdown`],
//!   [`Association::abort`], [`Association::poll_message`] and
//!   [`Association::recycle`];
//! - output, drained in this order after any input or command:
//!   [`Association::poll_transmit`] (packets into the caller's buffer),
//!   [`Association::poll_timeout`], [`Association::poll_event`].

mod config;
mod handshake;
mod hystart;
mod pmtud;
mod receive;
mod reconfig;
mod scheduler;
mod send;
mod snap;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use config::{Config, DEFAULT_RECEIVE_WINDOW};
pub use pmtud::PmtudState;
pub use reconfig::ResetError;
pub use scheduler::DEFAULT_PRIORITY;
pub use send::{Reliability, SendError};
pub use snap::{parse_snap_init, snap_init, SnapError, SnapSide, MAX_SNAP_INIT};

use pmtud::Pmtud;
use receive::Receiver;
use reconfig::Reconfig;
use send::{Acked, Limit, Sender};

use super::cause::ErrorCause;
use super::chunk::{Chunk, Data, IData, ABORT, COOKIE_ACK, COOKIE_ECHO, ERROR, INIT, SHUTDOWN_ACK, SHUTDOWN_COMPLETE};
use super::cookie::{Capabilities, Secrets};
use super::error::{BufferTooSmall, WireError};
use super::packet::{ChecksumMode, CommonHeader, Packet, PacketWriter};
use super::param::Param;
use super::reassembly::{Message, Numbering};
use super::rto::Rto;
use super::tsn::Tsn;
use super::wire::{TlvList, UnknownAction};

/// RFC 9260 §4, the states of an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No association: INITs are answered without keeping state.
    Closed,
    /// INIT sent, waiting for INIT ACK.
    CookieWait,
    /// COOKIE ECHO sent, waiting for COOKIE ACK.
    CookieEchoed,
    Established,
    /// We are shutting down (§9.2): no new data taken; what is queued
    /// and in flight goes first, then SHUTDOWN.
    ShutdownPending,
    /// SHUTDOWN sent, waiting for SHUTDOWN ACK; the peer's data is still
    /// received.
    ShutdownSent,
    /// The peer sent SHUTDOWN: our queued data goes, then SHUTDOWN ACK.
    ShutdownReceived,
    /// SHUTDOWN ACK sent, waiting for SHUTDOWN COMPLETE.
    ShutdownAckSent,
}

impl State {
    /// Whether data transfer runs (established, or shutting down).
    pub fn is_up(self) -> bool {
        !matches!(self, State::Closed | State::CookieWait | State::CookieEchoed)
    }
}

/// What the application learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The association is up (either side's COOKIE ECHO/ACK, §5.1).
    Connected,
    /// The peer restarted the association (§5.2.4 case A): new tags, and
    /// whatever was in flight is gone.
    Restarted,
    Closed(CloseReason),
    /// RFC 6525 §5.2.2: the peer reset its outgoing stream (for a data
    /// channel, the peer closed it, RFC 8831 §6.7). Every message it
    /// sent on the stream before is already readable with
    /// [`Association::poll_message`]; later ones number from 0.
    IncomingStreamReset(u16),
    /// RFC 6525 §5.1.2: our reset of the stream
    /// ([`Association::reset_streams`]) is done: the peer has everything
    /// sent on it before, and it takes messages again, numbered from 0.
    OutgoingStreamReset(u16),
    /// The peer refused to reset the stream (RFC 6525 §4.4: denied, or
    /// an error); it takes messages again, numbered on.
    StreamResetFailed(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent ABORT.
    PeerAborted,
    /// INIT or COOKIE ECHO went unanswered `max_init_retransmits` times.
    SetupTimedOut,
    /// The peer's INIT ACK was malformed; we sent ABORT (§5.1).
    InvalidInitAck,
    /// SHUTDOWN, SHUTDOWN ACK, SHUTDOWN COMPLETE (§9.2): everything sent
    /// either way was acknowledged first.
    Shutdown,
    /// Retransmissions went unacknowledged past the limit (§8.1, §8.2);
    /// we sent ABORT.
    PeerUnreachable,
    /// The peer broke the protocol (an empty DATA chunk, §6.2; a SACK of
    /// a TSN never sent, §12.4); we sent ABORT.
    ProtocolViolation,
    /// [`Association::abort`]: the application aborted; we sent ABORT.
    LocalAbort,
}

/// Why a received packet was dropped (each also counted in
/// [`Stats::packets_dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("SCTP ports {source_port}->{destination_port} are not this association's")]
    WrongPorts { source_port: u16, destination_port: u16 },
    #[error("verification tag 0x{found:08x} does not match (RFC 9260 §8.5)")]
    VerificationTag { found: u32 },
    #[error("chunk type {0} bundled where it must be alone (RFC 9260 §6.10)")]
    Bundled(u8),
    #[error("a State Cookie this endpoint did not make")]
    ForgedCookie,
    #[error("chunk type {0} is not expected in this state")]
    Unexpected(u8),
    #[error("a packet without chunks")]
    Empty,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets_received: u64,
    pub packets_dropped: u64,
    pub packets_sent: u64,
    /// DATA chunks sent again, by fast retransmit or T3-rtx.
    pub chunks_retransmitted: u64,
    /// Chunks marked lost by miss indications (RFC 9260 §7.2.4).
    pub fast_retransmits: u64,
    /// T3-rtx expiries (RFC 9260 §6.3.3) taken as loss.
    pub t3_expiries: u64,
    /// T3-rtx expiries on a window the peer kept shut (RFC 9260 §6.1 A):
    /// each sent a zero window probe, and none is loss or an error.
    pub zero_window_probes: u64,
    /// RFC 8899 §4.3: falls back to the base packet size on a T3-rtx
    /// expiry with larger packets in use.
    pub pmtu_black_holes: u64,
}

/// The peer as setup learned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The tag we put in every packet to the peer.
    pub verification_tag: u32,
    pub initial_tsn: Tsn,
    pub receive_window: u32,
    /// Streams negotiated (§5.1.1): ours out, ours in.
    pub outbound_streams: u16,
    pub inbound_streams: u16,
    pub capabilities: Capabilities,
}

/// The control timers: setup (§5.1 A, C) and shutdown (§9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    T1Init,
    T1Cookie,
    T2Shutdown,
}

#[derive(Debug)]
pub struct Association {
    config: Config,
    secrets: Secrets,
    /// Times in cookies count from here.
    epoch: Instant,
    state: State,
    /// The tag the peer puts in packets to us; 0 while Closed.
    local_tag: u32,
    local_initial_tsn: Tsn,
    peer: Option<Peer>,
    /// The cookie of the INIT ACK, kept to retransmit COOKIE ECHO.
    cookie_echo: Vec<u8>,
    /// Asked for by a Stale Cookie error (§5.2.6), in the next INIT.
    cookie_preservative_ms: Option<u32>,
    timer: Option<(Timer, Instant)>,
    retransmits: u32,
    /// When the INIT or COOKIE ECHO in flight went out, if only once
    /// (Karn's rule, §6.3.1 C5).
    sent_once_at: Option<Instant>,
    rto: Rto,
    /// §8.1: consecutive retransmission timeouts (T3-rtx, T2-shutdown)
    /// and unanswered HEARTBEATs since the peer last acknowledged
    /// something.
    errors: u32,
    /// §8.3: when the next HEARTBEAT is due, and the one outstanding
    /// (its send time in nanoseconds since `epoch`, echoed in the ACK).
    heartbeat_at: Option<Instant>,
    heartbeat_sent: Option<u64>,
    transmit: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Data transfer, once established.
    receiver: Option<Receiver>,
    sender: Option<Sender>,
    /// Stream reset (RFC 6525), once established.
    reconfig: Option<Reconfig>,
    /// RFC 8899, once established, if `max_plpmtu` asks for it.
    pmtud: Option<Pmtud>,
}

impl Association {
    /// An association that answers INITs; [`Association::connect`] sends
    /// one. `secret` keys the cookie's HMAC and seeds tags and TSNs: draw
    /// it from a cryptographic RNG. `now` is the epoch of cookie times.
    pub fn new(config: Config, secret: &[u8; 32], now: Instant) -> Self {
        let rto = Rto::new(config.rto_initial, config.rto_min, config.rto_max);
        Association {
            config,
            secrets: Secrets::new(secret),
            epoch: now,
            state: State::Closed,
            local_tag: 0,
            local_initial_tsn: Tsn(0),
            peer: None,
            cookie_echo: Vec::new(),
            cookie_preservative_ms: None,
            timer: None,
            retransmits: 0,
            sent_once_at: None,
            rto,
            errors: 0,
            heartbeat_at: None,
            heartbeat_sent: None,
            transmit: VecDeque::new(),
            spare: Vec::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            receiver: None,
            sender: None,
            reconfig: None,
            pmtud: None,
        }
    }

    // ----- getters -----

    pub fn state(&self) -> State {
        self.state
    }

    /// What setup learned of the peer, once it did.
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    /// The verification tag the peer must use (0 while Closed).
    pub fn local_tag(&self) -> u32 {
        self.local_tag
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.pmtu_black_holes += self.pmtud.as_ref().map_or(0, Pmtud::black_holes);
        if let Some(s) = self.sender.as_ref() {
            s.counters().add_to(&mut stats);
        }
        stats
    }

    /// The smoothed round-trip time (RFC 9260 §6.3.1), once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.rto.srtt()
    }

    /// The largest packet sent now (RFC 8899's PLPMTU): the configured
    /// `max_packet_size`, or what probing found the path carries.
    pub fn pmtu(&self) -> usize {
        self.pmtud.as_ref().map_or(self.config.max_packet_size, Pmtud::plpmtu)
    }

    /// Where RFC 8899's search stands, if probing.
    pub fn pmtud_state(&self) -> Option<PmtudState> {
        self.pmtud.as_ref().map(Pmtud::state)
    }

    // ----- application commands -----

    /// RFC 9260 §5.1 A: sends INIT and starts T1-init. In WebRTC both
    /// ends call this, and §5.2.1 sorts the collision out.
    pub fn connect(&mut self, now: Instant) {
        if self.state != State::Closed {
            return;
        }
        self.local_tag = self.secrets.next_u32();
        self.local_initial_tsn = Tsn(self.secrets.next_u32());
        self.state = State::CookieWait;
        self.send_init();
        self.start_timer(Timer::T1Init, now);
    }

    /// Queues a user message on `stream` (RFC 9260 §6.1).
    pub fn send(&mut self, stream: u16, ppid: u32, unordered: bool, data: &[u8]) -> Result<(), SendError> {
        self.send_with(self.epoch, stream, ppid, unordered, data, Reliability::Reliable)
    }

    /// Queues a user message that may be abandoned (RFC 3758 §3.5) as
    /// `reliability` says, its lifetime counted from `now`. Needs the
    /// peer's support (its INIT's Forward-TSN-Supported or supported
    /// extensions, §3.1) unless `Reliable`.
    pub fn send_with(
        &mut self,
        now: Instant,
        stream: u16,
        ppid: u32,
        unordered: bool,
        data: &[u8],
        reliability: Reliability,
    ) -> Result<(), SendError> {
        let partial = self.peer.is_some_and(|p| p.capabilities.partial_reliability);
        if reliability != Reliability::Reliable && !partial && self.state == State::Established {
            return Err(SendError::PartialReliabilityNotSupported);
        }
        match (&mut self.sender, self.state) {
            (Some(sender), State::Established) => {
                sender.send(stream, ppid, unordered, data, Limit::new(reliability, now))
            }
            (_, s) if s.is_up() => Err(SendError::ShuttingDown),
            _ => Err(SendError::NotEstablished),
        }
    }

    /// RFC 9260 §9.2: an orderly close. Everything queued is sent and
    /// acknowledged, then SHUTDOWN; the association closes with
    /// [`CloseReason::Shutdown`] once the peer's data is all in too.
    /// Messages received stay readable with [`Association::poll_message`].
    pub fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Established => {
                self.state = State::ShutdownPending;
                self.progress_shutdown(now);
            }
            // §9.1: before the association is up, there is nothing to keep.
            State::CookieWait | State::CookieEchoed => self.close(CloseReason::Shutdown),
            _ => {}
        }
    }

    /// RFC 9260 §9.1: sends ABORT and closes at once; whatever is queued
    /// or in flight is dropped.
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.abort_with(CloseReason::LocalAbort, &[ErrorCause::UserInitiatedAbort(&[])]);
        }
    }

    /// RFC 8831 §6.4, RFC 8260 §3: `stream`'s weight in the scheduler,
    /// in DCEP's priority values (RFC 8832 §5.1: 128, 256 the default,
    /// 512, 1024): a stream gets messages sent in proportion to it. Set
    /// once the association is up (before, there is no stream to weigh).
    pub fn set_priority(&mut self, stream: u16, priority: u16) {
        if let Some(s) = self.sender.as_mut() {
            s.set_priority(stream, priority);
        }
    }

    /// Bytes queued to send or sent and not yet acknowledged.
    pub fn buffered_amount(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::buffered)
    }

    /// Bytes queued or in flight on `stream` (W3C's `bufferedAmount`):
    /// they count until the peer's cumulative TSN ack passes them or
    /// they are abandoned (RFC 3758).
    pub fn buffered_amount_on(&self, stream: u16) -> usize {
        self.sender.as_ref().map_or(0, |s| s.buffered_on(stream))
    }

    /// Bytes received and not yet read, with a per-chunk overhead: what
    /// the receive window has given away (at most about `receive_window`).
    pub fn received_amount(&self) -> usize {
        self.receiver.as_ref().map_or(0, Receiver::buffered)
    }

    /// The next whole message received, in delivery order.
    pub fn poll_message(&mut self) -> Option<Message> {
        self.receiver.as_mut()?.poll_message()
    }

    /// Gives a received message's buffer back, so that later ones do not
    /// allocate.
    pub fn recycle(&mut self, data: Vec<u8>) {
        if let Some(r) = self.receiver.as_mut() {
            r.recycle(data);
        }
    }

    // ----- input -----

    /// One received SCTP packet.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), DropReason> {
        self.stats.packets_received += 1;
        let result = self.process(now, bytes);
        if result.is_err() {
            self.stats.packets_dropped += 1;
        }
        result
    }

    /// Fires the timer if it is due: INIT or COOKIE ECHO again, with the
    /// RTO doubled (§6.3.3), or giving up after `max_init_retransmits`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.state.is_up() && self.timer.is_none() {
            return;
        }
        if let Some(r) = self.receiver.as_mut() {
            r.handle_timeout(now);
        }
        let t3 = self
            .sender
            .as_mut()
            .is_some_and(|s| s.handle_timeout(now, &mut self.rto));
        if t3 {
            if let Some(p) = self.pmtud.as_mut() {
                p.on_retransmission_timeout(now);
            }
            if self.count_error() {
                return;
            }
        }
        self.probe_path(now);
        if self.reset_timeout(now) {
            return;
        }
        if self.heartbeat(now) {
            return;
        }
        let Some((timer, at)) = self.timer else { return };
        if now < at {
            return;
        }
        if timer == Timer::T2Shutdown {
            // §9.2: SHUTDOWN or SHUTDOWN ACK again, counted by §8.1.
            if self.count_error() {
                return;
            }
            self.rto.back_off();
            if self.state == State::ShutdownSent {
                self.send_shutdown();
            } else {
                let tag = self.peer_tag();
                self.queue(tag, &[Chunk::ShutdownAck]);
            }
            self.timer = Some((timer, now + self.rto.get()));
            return;
        }
        self.retransmits += 1;
        if self
            .config
            .max_init_retransmits
            .is_some_and(|max| self.retransmits > max)
        {
            self.close(CloseReason::SetupTimedOut);
            return;
        }
        self.rto.back_off();
        match timer {
            Timer::T1Init => self.send_init(),
            Timer::T1Cookie => self.send_cookie_echo(),
            // Handled above.
            Timer::T2Shutdown => {}
        }
        self.sent_once_at = None;
        self.timer = Some((timer, now + self.rto.get()));
    }

    // ----- output -----

    /// Writes the next packet to send into `buf` (at least the configured
    /// `max_packet_size`); `Ok(None)` when there is none. Control
    /// packets go first, then a SACK bundled with DATA as the windows
    /// allow. A control packet larger than `buf` stays queued.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        if self.transmit.is_empty() {
            return self.poll_data(now, buf);
        }
        let Some(p) = self.transmit.front() else {
            return Ok(None);
        };
        let n = p.len();
        let available = buf.len();
        let out = buf.get_mut(..n).ok_or(BufferTooSmall { needed: n, available })?;
        out.copy_from_slice(p);
        if let Some(p) = self.transmit.pop_front() {
            self.spare.push(p);
        }
        self.stats.packets_sent += 1;
        Ok(Some(n))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let setup = self.timer.map(|(_, at)| at);
        if !self.state.is_up() {
            return setup;
        }
        let sack = self.receiver.as_ref().and_then(Receiver::timeout);
        let t3 = self.sender.as_ref().and_then(Sender::timeout);
        let heartbeat = self.heartbeat_at.filter(|_| self.state == State::Established);
        let reconfig = self.reconfig.as_ref().and_then(Reconfig::timeout);
        let pmtud = self
            .pmtud
            .as_ref()
            .and_then(Pmtud::timeout)
            .filter(|_| self.state == State::Established);
        [setup, sack, t3, heartbeat, reconfig, pmtud]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- inside -----

    /// A packet of SACK and DATA, written straight into the caller's buffer.
    fn poll_data(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        if !self.state.is_up() {
            return Ok(None);
        }
        let header = CommonHeader {
            source_port: self.config.local_port,
            destination_port: self.config.remote_port,
            verification_tag: self.peer_tag(),
        };
        let checksum = self.send_checksum();
        let size = buf.len().min(self.pmtu());
        let mut w = PacketWriter::new(&mut buf[..size], header)?;
        if let Some(r) = self.receiver.as_mut().filter(|r| r.wants_sack()) {
            w.push(&Chunk::Sack(r.sack()))?;
            r.sack_sent();
        }
        let sent_data = self.sender.as_mut().is_some_and(|s| s.fill(now, &mut w, &self.rto));
        if sent_data && self.heartbeat_at.is_some() {
            // §8.3: a destination DATA went to within the heartbeat
            // period is not idle.
            let interval = self.config.heartbeat_interval.unwrap_or_default();
            self.heartbeat_at = Some(now + self.rto.get() + interval);
        }
        if w.is_empty() {
            return Ok(None);
        }
        self.stats.packets_sent += 1;
        Ok(Some(w.finish(checksum)))
    }

    /// Sets up data transfer once the association is up.
    fn start_transfer(&mut self) {
        let Some(peer) = self.peer else { return };
        let numbering = if peer.capabilities.interleaving {
            Numbering::Mid
        } else {
            Numbering::Ssn
        };
        self.receiver = Some(Receiver::new(
            peer.initial_tsn,
            self.config.receive_window,
            self.config.max_packet_size,
            numbering,
        ));
        if let Some(s) = self.sender.as_ref() {
            s.counters().add_to(&mut self.stats);
        }
        self.sender = Some(Sender::new(
            self.local_initial_tsn,
            peer.receive_window,
            self.config.max_packet_size,
            peer.capabilities.interleaving,
        ));
        self.reconfig = Some(Reconfig::new(self.local_initial_tsn, peer.initial_tsn));
        self.pmtud = self
            .config
            .max_plpmtu
            .filter(|max| *max > self.config.max_packet_size)
            .map(|max| Pmtud::new(self.config.max_packet_size, max & !3, self.epoch));
    }

    fn start_timer(&mut self, timer: Timer, now: Instant) {
        self.retransmits = 0;
        self.sent_once_at = Some(now);
        self.timer = Some((timer, now + self.rto.get()));
    }

    /// An RTT sample from the setup exchange, if it was sent only once.
    fn measure_setup_rtt(&mut self, now: Instant) {
        if let Some(sent) = self.sent_once_at.take() {
            self.rto.measure(now - sent);
        }
    }

    /// Closes. The receiver stays, so that messages received before are
    /// still read (§9.2: a shutdown delivers everything); it takes no
    /// more and sets no timer.
    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.timer = None;
        self.errors = 0;
        self.heartbeat_at = None;
        self.heartbeat_sent = None;
        self.peer = None;
        self.local_tag = 0;
        if let Some(s) = self.sender.take() {
            s.counters().add_to(&mut self.stats);
        }
        self.reconfig = None;
        self.events.push_back(Event::Closed(reason));
    }

    /// RFC 9260 §8.3: on an idle association, a HEARTBEAT every RTO +
    /// HB.interval; one still unanswered counts as an error (§8.1).
    /// While data is outstanding, SACKs tell the same, so it waits.
    /// Returns whether the association closed.
    fn heartbeat(&mut self, now: Instant) -> bool {
        // Established only: while shutting down, T2 watches the peer.
        let Some(interval) = self
            .config
            .heartbeat_interval
            .filter(|_| self.state == State::Established)
        else {
            return false;
        };
        let next = now + self.rto.get() + interval;
        let Some(at) = self.heartbeat_at else {
            self.heartbeat_at = Some(next);
            return false;
        };
        if now < at {
            return false;
        }
        self.heartbeat_at = Some(next);
        if !self.sender.as_ref().is_none_or(Sender::is_idle) {
            return false;
        }
        if self.heartbeat_sent.is_some() && self.count_error() {
            return true;
        }
        let sent = u64::try_from(self.since_epoch(now).as_nanos()).unwrap_or(u64::MAX);
        self.heartbeat_sent = Some(sent);
        let bytes = sent.to_be_bytes();
        let info = [Param::HeartbeatInfo(&bytes)];
        let tag = self.peer_tag();
        self.queue(tag, &[Chunk::Heartbeat(TlvList::Items(&info))]);
        false
    }

    /// RFC 9260 §8.3: the ACK of our HEARTBEAT: an RTT sample (§6.3.1),
    /// and the peer is reachable.
    fn handle_heartbeat_ack(&mut self, now: Instant, info: TlvList<'_, Param<'_>>) {
        if self.handle_probe_ack(now, &info) {
            return;
        }
        let echoed = info.iter().find_map(|p| match p {
            Param::HeartbeatInfo(b) => <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes),
            _ => None,
        });
        let Some(sent) = echoed.filter(|e| Some(*e) == self.heartbeat_sent) else {
            return;
        };
        self.heartbeat_sent = None;
        self.errors = 0;
        let sent = self.epoch + Duration::from_nanos(sent);
        self.rto.measure(now.saturating_duration_since(sent));
    }

    /// Sends ABORT with `causes` (§9.1) and closes.
    fn abort_with(&mut self, reason: CloseReason, causes: &[ErrorCause<'_>]) {
        let tag = self.peer_tag();
        self.queue(
            tag,
            &[Chunk::Abort {
                reflected: false,
                causes: TlvList::Items(causes),
            }],
        );
        self.close(reason);
    }

    /// RFC 9260 §8.1: one more retransmission timeout. Past
    /// Association.Max.Retrans the peer is unreachable: ABORT, close.
    /// One path (RFC 8261), so §8.2's Path.Max.Retrans caps it too (§8.2
    /// advises the association's limit not exceed the paths' sum).
    /// Returns whether it closed.
    fn count_error(&mut self) -> bool {
        self.errors += 1;
        let limit = [self.config.max_retransmits, self.config.path_max_retransmits]
            .into_iter()
            .flatten()
            .min();
        if limit.is_some_and(|max| self.errors > max) {
            let cause = [ErrorCause::ProtocolViolation(b"peer unreachable")];
            self.abort_with(CloseReason::PeerUnreachable, &cause);
            true
        } else {
            false
        }
    }

    /// What a SACK or SHUTDOWN acknowledged: §8.3 clears the error count,
    /// §12.4 aborts on a TSN never sent. Returns whether it aborted.
    fn acked(&mut self, acked: Acked) -> bool {
        match acked {
            Acked::New => {
                self.errors = 0;
                false
            }
            Acked::Nothing => false,
            Acked::NeverSent => {
                let cause = [ErrorCause::ProtocolViolation(b"SACK of a TSN never sent")];
                self.abort_with(CloseReason::ProtocolViolation, &cause);
                true
            }
        }
    }

    /// RFC 9260 §9.2: SHUTDOWN with our cumulative TSN ack.
    fn send_shutdown(&mut self) {
        let Some(cum) = self.receiver.as_ref().map(Receiver::cumulative) else {
            return;
        };
        let tag = self.peer_tag();
        self.queue(
            tag,
            &[Chunk::Shutdown {
                cumulative_tsn_ack: cum,
            }],
        );
    }

    /// RFC 9260 §9.2: once nothing of ours is queued or unacknowledged,
    /// SHUTDOWN (we began) or SHUTDOWN ACK (the peer did), on T2.
    fn progress_shutdown(&mut self, now: Instant) {
        let idle = self.sender.as_ref().is_none_or(Sender::is_idle);
        if !idle {
            return;
        }
        match self.state {
            State::ShutdownPending => {
                self.send_shutdown();
                self.state = State::ShutdownSent;
                self.start_timer(Timer::T2Shutdown, now);
            }
            State::ShutdownReceived => {
                let tag = self.peer_tag();
                self.queue(tag, &[Chunk::ShutdownAck]);
                self.state = State::ShutdownAckSent;
                self.start_timer(Timer::T2Shutdown, now);
            }
            _ => {}
        }
    }

    /// RFC 9260 §9.2: the peer's SHUTDOWN.
    fn handle_shutdown(&mut self, now: Instant, cum: Tsn) {
        let acked = match self.sender.as_mut() {
            Some(s) => s.handle_cumulative_ack(now, cum, &mut self.rto),
            None => Acked::Nothing,
        };
        // sctp-proto 0.10.8 puts its own TSN in a SHUTDOWN's Cumulative
        // TSN Ack, so one "of a TSN never sent" acks nothing here rather
        // than aborting (§12.4 names SACKs).
        if acked == Acked::New {
            self.errors = 0;
        }
        match self.state {
            State::Established | State::ShutdownPending => self.state = State::ShutdownReceived,
            // §9.2: both ends shut down at once: SHUTDOWN ACK at once.
            State::ShutdownSent => {
                let tag = self.peer_tag();
                self.queue(tag, &[Chunk::ShutdownAck]);
                self.state = State::ShutdownAckSent;
                self.start_timer(Timer::T2Shutdown, now);
            }
            // Our SHUTDOWN ACK was lost: again at once, T2 restarted.
            State::ShutdownAckSent => {
                let tag = self.peer_tag();
                self.queue(tag, &[Chunk::ShutdownAck]);
                self.timer = Some((Timer::T2Shutdown, now + self.rto.get()));
            }
            _ => {}
        }
    }

    /// RFC 9653: zero checksums once the peer announced them and we
    /// speak the same method; CRC32c otherwise.
    fn send_checksum(&self) -> ChecksumMode {
        match self.peer {
            Some(p) if p.capabilities.zero_checksum && self.state == State::Established => ChecksumMode::ZeroAcceptable,
            _ => ChecksumMode::Crc32c,
        }
    }

    /// Queues one packet of `chunks` to `verification_tag`. A chunk that
    /// does not fit the packet size is left out (setup's chunks fit).
    fn queue(&mut self, verification_tag: u32, chunks: &[Chunk<'_>]) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(self.config.max_packet_size, 0);
        let header = CommonHeader {
            source_port: self.config.local_port,
            destination_port: self.config.remote_port,
            verification_tag,
        };
        let checksum = self.send_checksum();
        // max_packet_size below 12 bytes sends nothing.
        let Ok(mut w) = PacketWriter::new(&mut buf, header) else {
            return;
        };
        for c in chunks {
            let _ = w.push(c);
        }
        if w.is_empty() {
            self.spare.push(buf);
            return;
        }
        let n = w.finish(checksum);
        buf.truncate(n);
        self.transmit.push_back(buf);
    }

    fn process(&mut self, now: Instant, bytes: &[u8]) -> Result<(), DropReason> {
        let mode = if self.config.zero_checksum {
            ChecksumMode::ZeroAcceptable
        } else {
            ChecksumMode::Crc32c
        };
        let packet = Packet::parse(bytes, mode)?;
        let h = packet.header;
        if h.destination_port != self.config.local_port || h.source_port != self.config.remote_port {
            return Err(DropReason::WrongPorts {
                source_port: h.source_port,
                destination_port: h.destination_port,
            });
        }
        let mut chunks = packet.chunks().peekable();
        let first = (*chunks.peek().ok_or(DropReason::Empty)?)?;
        let up = self.state.is_up();
        // RFC 9260 §6.10: INIT, INIT ACK and SHUTDOWN COMPLETE come alone.
        if matches!(first.ty, INIT | super::chunk::INIT_ACK | SHUTDOWN_COMPLETE) && packet.chunks().nth(1).is_some() {
            return Err(DropReason::Bundled(first.ty));
        }
        if self.state == State::Closed && !matches!(first.ty, INIT | COOKIE_ECHO) {
            return self.out_of_the_blue(first.ty, h.verification_tag);
        }
        let mut had_data = false;
        let interleaving = self.peer.is_some_and(|p| p.capabilities.interleaving);
        for raw in chunks {
            let raw = raw?;
            self.check_tag(raw.ty, raw.flags, h.verification_tag)?;
            match raw.parse()? {
                Chunk::Init(init) => self.handle_init(now, &init)?,
                Chunk::InitAck(init) => self.handle_init_ack(now, &init)?,
                Chunk::CookieEcho(cookie) => self.handle_cookie_echo(now, cookie, h.verification_tag)?,
                Chunk::CookieAck => self.handle_cookie_ack(now)?,
                Chunk::Abort { .. } => {
                    self.close(CloseReason::PeerAborted);
                    return Ok(());
                }
                Chunk::Error(causes) => self.handle_error(now, causes),
                Chunk::Data(_) | Chunk::ForwardTsn(_) if up && interleaving => {
                    // RFC 8260 §2.1, §2.3: with I-DATA in use, DATA and
                    // FORWARD TSN are protocol violations.
                    let cause = [ErrorCause::ProtocolViolation(b"DATA or FORWARD TSN with I-DATA in use")];
                    self.abort_with(CloseReason::ProtocolViolation, &cause);
                    return Ok(());
                }
                Chunk::IData(_) | Chunk::IForwardTsn(_) if up && !interleaving => {
                    // RFC 8260 §2.1, §2.3: I-DATA only where both offered it.
                    let cause = [ErrorCause::ProtocolViolation(b"I-DATA or I-FORWARD-TSN not negotiated")];
                    self.abort_with(CloseReason::ProtocolViolation, &cause);
                    return Ok(());
                }
                Chunk::Data(Data { tsn, payload: &[], .. }) | Chunk::IData(IData { tsn, payload: &[], .. }) if up => {
                    // §6.2, RFC 8260 §2.1: a chunk without user data is
                    // aborted on.
                    let cause = [ErrorCause::NoUserData(tsn)];
                    self.abort_with(CloseReason::ProtocolViolation, &cause);
                    return Ok(());
                }
                Chunk::Data(d) if up => {
                    if let Some(r) = self.receiver.as_mut() {
                        r.data(d.into(), d.flags.immediate);
                        had_data = true;
                    }
                }
                Chunk::IData(d) if up => {
                    if let Some(r) = self.receiver.as_mut() {
                        r.data(d.into(), d.flags.immediate);
                        had_data = true;
                    }
                }
                Chunk::Sack(sack) if up => {
                    let acked = match self.sender.as_mut() {
                        Some(s) => s.handle_sack(now, &sack, &mut self.rto),
                        None => Acked::Nothing,
                    };
                    if self.acked(acked) {
                        return Ok(());
                    }
                }
                Chunk::Shutdown { cumulative_tsn_ack } if up => self.handle_shutdown(now, cumulative_tsn_ack),
                Chunk::ShutdownAck if matches!(self.state, State::ShutdownSent | State::ShutdownAckSent) => {
                    // §9.2: the last word.
                    let tag = self.peer_tag();
                    self.queue(tag, &[Chunk::ShutdownComplete { reflected: false }]);
                    self.close(CloseReason::Shutdown);
                    return Ok(());
                }
                Chunk::ShutdownAck if matches!(self.state, State::CookieWait | State::CookieEchoed) => {
                    // §8.5.1 E: as out of the blue (§8.4 5).
                    self.queue(h.verification_tag, &[Chunk::ShutdownComplete { reflected: true }]);
                }
                Chunk::ShutdownComplete { .. } if self.state == State::ShutdownAckSent => {
                    self.close(CloseReason::Shutdown);
                    return Ok(());
                }
                Chunk::ShutdownAck | Chunk::ShutdownComplete { .. } => {}
                Chunk::ForwardTsn(f) if up => {
                    if let Some(r) = self.receiver.as_mut() {
                        r.forward_tsn(&f);
                    }
                }
                Chunk::IForwardTsn(f) if up => {
                    if let Some(r) = self.receiver.as_mut() {
                        r.i_forward_tsn(&f);
                    }
                }
                Chunk::HeartbeatAck(info) if up => self.handle_heartbeat_ack(now, info),
                Chunk::ReConfig(params) if up => self.handle_reconfig(now, params),
                Chunk::Heartbeat(info) if up => {
                    let tag = self.peer_tag();
                    self.queue(tag, &[Chunk::HeartbeatAck(info)]);
                }
                Chunk::Unknown { ty, .. } => {
                    let action = UnknownAction::for_chunk(ty);
                    if action.report && self.state == State::Established {
                        let cause = [ErrorCause::UnrecognizedChunkType(raw.bytes)];
                        let tag = self.peer_tag();
                        self.queue(tag, &[Chunk::Error(TlvList::Items(&cause))]);
                    }
                    if !action.skip {
                        break;
                    }
                }
                // Data transfer's chunks before the association is up.
                other => return Err(DropReason::Unexpected(other.chunk_type())),
            }
        }
        if had_data {
            if let Some(r) = self.receiver.as_mut() {
                r.end_of_packet(now);
            }
            if self.state == State::ShutdownSent {
                // §9.2: each packet of DATA is answered with SHUTDOWN too,
                // and T2 restarts.
                self.send_shutdown();
                self.timer = Some((Timer::T2Shutdown, now + self.rto.get()));
            }
        }
        self.progress_deferred_reset();
        self.progress_reset(now);
        self.progress_shutdown(now);
        if self.heartbeat_at.is_none() {
            self.heartbeat(now);
        }
        Ok(())
    }

    fn peer_tag(&self) -> u32 {
        self.peer.map_or(0, |p| p.verification_tag)
    }

    /// RFC 9260 §8.5, §8.5.1.
    fn check_tag(&self, ty: u8, flags: u8, tag: u32) -> Result<(), DropReason> {
        let ok = match ty {
            INIT => tag == 0,
            // Checked against the cookie's tag.
            COOKIE_ECHO => true,
            // §8.5.1 B, C: T set means the sender reflected our peer's tag.
            ABORT | SHUTDOWN_COMPLETE if flags & 1 != 0 => self.peer.is_some() && tag == self.peer_tag(),
            _ => self.local_tag != 0 && tag == self.local_tag,
        };
        if ok {
            Ok(())
        } else {
            Err(DropReason::VerificationTag { found: tag })
        }
    }

    /// RFC 9260 §8.4: a packet for no association. Replies carry the
    /// packet's own tag with the T bit.
    fn out_of_the_blue(&mut self, ty: u8, tag: u32) -> Result<(), DropReason> {
        match ty {
            ABORT | SHUTDOWN_COMPLETE | COOKIE_ACK | ERROR => {}
            SHUTDOWN_ACK => {
                self.queue(tag, &[Chunk::ShutdownComplete { reflected: true }]);
            }
            _ => self.queue(
                tag,
                &[Chunk::Abort {
                    reflected: true,
                    causes: TlvList::Items(&[]),
                }],
            ),
        }
        Err(DropReason::Unexpected(ty))
    }
}
