//! One SCTP association, sans-IO (RFC 9260 §5 for its setup).
//!
//! Not yet used by the data channels (they run on sctp-proto, see
//! `crate::association`); this is the association issue 15 builds.
//! Today it sets up (§5.1) with a State Cookie authenticated by
//! HMAC-SHA256, handles INIT collisions (§5.2) and stale cookies
//! (§5.2.6), retransmits INIT and COOKIE ECHO on T1-init and T1-cookie
//! with the RTO (§6.3), answers HEARTBEATs, unknown chunks by their type
//! (§3.2) and out-of-the-blue packets (§8.4), and checks verification
//! tags (§8.5). Data transfer with DATA: SACKs with gap blocks and
//! duplicates, delayed or at once (§6.2), T3-rtx (§6.3.3), fast
//! retransmit and recovery (§7.2.4), slow start and congestion avoidance
//! (§7.2.1, §7.2.2), FORWARD TSN on receipt (RFC 3758 §3.6). Still to
//! come: I-DATA, a stream scheduler, partial reliability on the sending
//! side, stream reset, shutdown, PMTU probing.
//!
//! Methods, in quinn-proto's taxonomy:
//! - getters (`&self`): [`Association::state`], [`Association::peer`],
//!   [`Association::stats`];
//! - input: [`Association::handle_packet`] (one SCTP packet, the
//!   plaintext of a DTLS record) and [`Association::handle_timeout`];
//! - application commands: [`Association::connect`],
//!   [`Association::send`], [`Association::poll_message`] and
//!   [`Association::recycle`];
//! - output, drained in this order after any input or command:
//!   [`Association::poll_transmit`] (packets into the caller's buffer),
//!   [`Association::poll_timeout`], [`Association::poll_event`].

mod config;
mod handshake;
mod receive;
mod send;

use std::collections::VecDeque;
use std::time::Instant;

pub use config::Config;
pub use send::SendError;

use receive::Receiver;
use send::Sender;

use super::cause::ErrorCause;
use super::chunk::{Chunk, ABORT, COOKIE_ACK, COOKIE_ECHO, ERROR, INIT, SHUTDOWN_ACK, SHUTDOWN_COMPLETE};
use super::cookie::{Capabilities, Secrets};
use super::error::{BufferTooSmall, WireError};
use super::packet::{ChecksumMode, CommonHeader, Packet, PacketWriter};
use super::reassembly::{Message, Numbering};
use super::rto::Rto;
use super::tsn::Tsn;
use super::wire::{TlvList, UnknownAction};

/// RFC 9260 §4, the states setup passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No association: INITs are answered without keeping state.
    Closed,
    /// INIT sent, waiting for INIT ACK.
    CookieWait,
    /// COOKIE ECHO sent, waiting for COOKIE ACK.
    CookieEchoed,
    Established,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent ABORT.
    PeerAborted,
    /// INIT or COOKIE ECHO went unanswered `max_init_retransmits` times.
    SetupTimedOut,
    /// The peer's INIT ACK was malformed; we sent ABORT (§5.1).
    InvalidInitAck,
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

/// The setup timers (§5.1 A, C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    T1Init,
    T1Cookie,
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
    transmit: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Data transfer, once established.
    receiver: Option<Receiver>,
    sender: Option<Sender>,
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
            transmit: VecDeque::new(),
            spare: Vec::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            receiver: None,
            sender: None,
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
        self.stats
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

    /// Queues a user message on `stream` (RFC 9260 §6.1). Not yet used
    /// by the data channels.
    pub fn send(&mut self, stream: u16, ppid: u32, unordered: bool, data: &[u8]) -> Result<(), SendError> {
        match (&mut self.sender, self.state) {
            (Some(sender), State::Established) => sender.send(stream, ppid, unordered, data),
            _ => Err(SendError::NotEstablished),
        }
    }

    /// Bytes queued to send or sent and not yet acknowledged.
    pub fn buffered_amount(&self) -> usize {
        self.sender.as_ref().map_or(0, Sender::buffered)
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
        if let Some(r) = self.receiver.as_mut() {
            r.handle_timeout(now);
        }
        if let Some(s) = self.sender.as_mut() {
            s.handle_timeout(now, &mut self.rto);
        }
        let Some((timer, at)) = self.timer else { return };
        if now < at {
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
        let sack = self.receiver.as_ref().and_then(Receiver::timeout);
        let t3 = self.sender.as_ref().and_then(Sender::timeout);
        [setup, sack, t3].into_iter().flatten().min()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- inside -----

    /// A packet of SACK and DATA, written straight into the caller's buffer.
    fn poll_data(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        if self.state != State::Established {
            return Ok(None);
        }
        let header = CommonHeader {
            source_port: self.config.local_port,
            destination_port: self.config.remote_port,
            verification_tag: self.peer_tag(),
        };
        let checksum = self.send_checksum();
        let size = buf.len().min(self.config.max_packet_size);
        let mut w = PacketWriter::new(&mut buf[..size], header)?;
        if let Some(r) = self.receiver.as_mut().filter(|r| r.wants_sack()) {
            w.push(&Chunk::Sack(r.sack()))?;
            r.sack_sent();
        }
        if let Some(s) = self.sender.as_mut() {
            s.fill(now, &mut w, &self.rto);
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
        self.receiver = Some(Receiver::new(peer.initial_tsn, self.config.receive_window, numbering));
        self.sender = Some(Sender::new(
            self.local_initial_tsn,
            peer.receive_window,
            self.config.max_packet_size,
        ));
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

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.timer = None;
        self.peer = None;
        self.local_tag = 0;
        self.receiver = None;
        self.sender = None;
        self.events.push_back(Event::Closed(reason));
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
        // RFC 9260 §6.10: INIT, INIT ACK and SHUTDOWN COMPLETE come alone.
        if matches!(first.ty, INIT | super::chunk::INIT_ACK | SHUTDOWN_COMPLETE) && packet.chunks().nth(1).is_some() {
            return Err(DropReason::Bundled(first.ty));
        }
        if self.state == State::Closed && !matches!(first.ty, INIT | COOKIE_ECHO) {
            return self.out_of_the_blue(first.ty, h.verification_tag);
        }
        let mut had_data = false;
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
                Chunk::Data(d) if self.state == State::Established => {
                    if let Some(r) = self.receiver.as_mut() {
                        r.data(d.into(), d.flags.immediate);
                        had_data = true;
                    }
                }
                Chunk::Sack(sack) if self.state == State::Established => {
                    if let Some(s) = self.sender.as_mut() {
                        s.handle_sack(now, &sack, &mut self.rto);
                    }
                }
                Chunk::ForwardTsn(f) if self.state == State::Established => {
                    if let Some(r) = self.receiver.as_mut() {
                        r.forward_tsn(&f);
                    }
                }
                Chunk::Heartbeat(info) if self.state == State::Established => {
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
                // I-DATA, stream reset and shutdown are not there yet.
                other => return Err(DropReason::Unexpected(other.chunk_type())),
            }
        }
        if had_data {
            if let Some(r) = self.receiver.as_mut() {
                r.end_of_packet(now);
            }
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
