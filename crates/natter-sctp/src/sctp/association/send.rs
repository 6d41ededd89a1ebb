//! The sending half of data transfer: user messages cut into DATA chunks
//! (RFC 9260 §6.9), or I-DATA chunks numbered by MID and FSN when both
//! ends offered them (RFC 8260 §2.1), TSNs, the in-flight queue acknowledged by SACKs'
//! cumulative TSN and gap blocks (§6.2.1), T3-rtx (§6.3.3), fast
//! retransmit and recovery (§7.2.4), and the congestion window (§7.2.1,
//! §7.2.2), and partial reliability (RFC 3758 §3.5: messages abandoned
//! by their retransmission or lifetime limit, FORWARD TSN, or
//! I-FORWARD-TSN with I-DATA, RFC 8260 §2.3). In-flight
//! chunks sit in TSN order, so a TSN is found by its offset from the
//! first: no lookup per chunk. A message takes its SSN or MID when its
//! first fragment is sent, so one abandoned before that leaves no hole in
//! its stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sctp::chunk::{Chunk, Data, DataFlags, ForwardTsn, IData, Sack, SkippedMessage, SkippedStream};
use crate::sctp::packet::PacketWriter;
use crate::sctp::reassembly::CHUNK_OVERHEAD;
use crate::sctp::rto::Rto;
use crate::sctp::tsn::{serial_lt16, serial_lt32, Tsn};
use crate::sctp::wire::FixedList;

use super::hystart::{Growth, HyStart, CSS_GROWTH_DIVISOR};
use super::scheduler::Scheduler;
use super::Stats;

/// RFC 9260 §7.2.4: the third miss indication retransmits.
const FAST_RETRANSMIT_MISSES: u32 = 3;
/// RFC 8985 §7.2: the probe timeout is 2 SRTT; a floor keeps it above a
/// fast path's scheduling noise.
const PTO_MIN: Duration = Duration::from_millis(10);
/// Probes sent without an answer before leaving it to T3-rtx; after a
/// T3-rtx expiry none go until a SACK acknowledges something new.
const MAX_PROBES: u32 = 8;
/// DATA chunk header (§3.3.1).
const DATA_HEADER: usize = 16;
/// I-DATA chunk header (RFC 8260 §2.1).
const I_DATA_HEADER: usize = 20;
/// Entries in one I-FORWARD-TSN at most (8 bytes each, RFC 8260 §2.3),
/// fewer if the packet size holds fewer.
const MAX_SKIPPED: usize = 64;

/// RFC 3758 §3.5 (with the W3C data channel's maxRetransmits and
/// maxPacketLifeTime): when a message may be given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reliability {
    /// Retransmitted until acknowledged.
    #[default]
    Reliable,
    /// Retransmitted at most this many times, then abandoned.
    MaxRetransmits(u16),
    /// Abandoned once this long has passed since it was queued, sent or
    /// not.
    MaxLifetime(Duration),
}

/// [`Reliability`] made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    None,
    Retransmits(u16),
    Until(Instant),
}

impl Limit {
    /// The limit of a message queued at `now`.
    pub(super) fn new(reliability: Reliability, now: Instant) -> Self {
        match reliability {
            Reliability::Reliable => Limit::None,
            Reliability::MaxRetransmits(n) => Limit::Retransmits(n),
            Reliability::MaxLifetime(d) => Limit::Until(now + d),
        }
    }
}

/// One fragment of a user message, queued or in flight.
#[derive(Debug)]
pub(super) struct Chunklet {
    pub(super) stream: u16,
    /// The SSN (its low 16 bits, DATA) or MID (I-DATA), given when the
    /// first fragment is sent.
    pub(super) mid: u32,
    /// RFC 8260 §2.1: the fragment's place in its message (I-DATA).
    pub(super) fsn: u32,
    /// The message it belongs to, to abandon all of it at once.
    pub(super) message: u32,
    pub(super) limit: Limit,
    pub(super) ppid: u32,
    pub(super) flags: DataFlags,
    pub(super) data: Vec<u8>,
}

#[derive(Debug)]
struct InFlight {
    tsn: Tsn,
    chunk: Chunklet,
    sent_at: Instant,
    transmissions: u32,
    /// Acknowledged by a gap block.
    acked: bool,
    misses: u32,
    /// The highest TSN sent when this chunk last went out. §7.2.4's HTNA
    /// rule applied to each transmission: only a SACK that newly
    /// acknowledges a TSN sent after it says this one was missed, so a
    /// retransmission is counted afresh (and is resent only if it was
    /// lost too), never on SACKs for what preceded it.
    sent_with: Tsn,
    /// Marked for retransmission (not counted in the flight size).
    retransmit: bool,
    /// RFC 3758 §3.5: given up; not counted in the flight size, waiting
    /// for the peer to move past it on a FORWARD TSN.
    abandoned: bool,
}

/// What the sender counts, folded into [`Stats`] (which outlives it).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    chunks_retransmitted: u64,
    fast_retransmits: u64,
    t3_expiries: u64,
    window_probes: u64,
}

impl Counters {
    pub(super) fn add_to(self, stats: &mut Stats) {
        stats.chunks_retransmitted += self.chunks_retransmitted;
        stats.fast_retransmits += self.fast_retransmits;
        stats.t3_expiries += self.t3_expiries;
        stats.zero_window_probes += self.window_probes;
    }
}

#[derive(Debug)]
pub(super) struct Sender {
    mtu: usize,
    /// RFC 8260: I-DATA and I-FORWARD-TSN instead of DATA and FORWARD TSN.
    interleaving: bool,
    next_tsn: Tsn,
    next_message: u32,
    /// A message with a [`Reliability`] limit was queued: only then is
    /// there anything to abandon (and to look for).
    limited: bool,
    /// What waits to be sent, per stream, and whose turn it is.
    queue: Scheduler,
    in_flight: VecDeque<InFlight>,
    /// The peer's cumulative TSN ack.
    cumulative: Tsn,
    cwnd: usize,
    ssthresh: usize,
    partial_bytes_acked: usize,
    /// Bytes sent and neither acknowledged nor marked for retransmission.
    flight_size: usize,
    /// Bytes sent and not acknowledged (marked for retransmission or
    /// not), not abandoned: what the peer's window still holds for us.
    outstanding: usize,
    /// §6.2.1: the peer's rwnd, the last a_rwnd less what was outstanding
    /// then, less what was sent since (§6.1 A).
    peer_rwnd: usize,
    /// Fast recovery lasts until this TSN is acknowledged (§7.2.4).
    recovery_exit: Option<Tsn>,
    /// One packet of fast retransmissions may ignore the cwnd (§7.2.4 3).
    fast_retransmit: bool,
    t3_at: Option<Instant>,
    /// RFC 8985 §7: the tail loss probe's timer, how many probes went
    /// unanswered (each doubles it), whether one is to go in the next
    /// packet, and the TSN and send time of the last one sent.
    probe_at: Option<Instant>,
    probes: u32,
    probe_due: bool,
    probe: Option<(Tsn, Instant)>,
    hystart: HyStart,
    /// The a_rwnd of the last SACK, for a SHUTDOWN's cumulative ack,
    /// which carries none (§9.2).
    last_a_rwnd: u32,
    /// A SACK came since T3-rtx last expired: the peer is there.
    answered: bool,
    /// RFC 9260 §6.1 A: the peer's window is shut (T3-rtx expired while
    /// its SACKs said it had no room for what was outstanding): one
    /// chunk at a time goes, with nothing else in flight, on the RTO,
    /// until a SACK opens the window.
    window_shut: bool,
    /// RFC 3758 §3.5: the Advanced.Peer.Ack.Point.
    advanced: Tsn,
    /// A FORWARD TSN is to go in the next packet.
    forward_tsn: bool,
    /// Its stream entries, kept to reuse the allocation (FORWARD TSN,
    /// I-FORWARD-TSN).
    skipped: Vec<SkippedStream>,
    skipped_messages: Vec<SkippedMessage>,
    spare: Vec<Vec<u8>>,
    counters: Counters,
}

/// What a SACK (or a SHUTDOWN's cumulative TSN ack) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Acked {
    /// It acknowledged data not acknowledged before: the peer is
    /// reachable (§8.3 clears the error counter).
    New,
    /// Nothing new (old, or a repeat).
    Nothing,
    /// RFC 9260 §12.4: it acknowledged a TSN never sent; the association
    /// is to be aborted.
    NeverSent,
}

/// Why [`Association::send`](super::Association::send) refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the association is not established")]
    NotEstablished,
    #[error("an empty message (RFC 9260 §3.3.1 requires user data)")]
    Empty,
    /// RFC 9260 §9.2: after a shutdown began, no new data is accepted.
    #[error("the association is shutting down (RFC 9260 §9.2)")]
    ShuttingDown,
    /// RFC 3758 §3.1: the peer did not announce partial reliability.
    #[error("the peer does not support partial reliability (RFC 3758)")]
    PartialReliabilityNotSupported,
    /// RFC 6525 §5.1.2: the stream's outgoing reset is under way.
    #[error("stream {0} is being reset (RFC 6525)")]
    StreamResetting(u16),
}

/// The congestion window before any data was sent: TCP's initial window
/// of RFC 6928 §2, min(10 MTU, max(2 MTU, 14600)), where RFC 9260
/// §7.2.1 says min(4 MTU, max(2 MTU, 4380)). A deliberate deviation, as
/// Chromium's dcsctp makes it (an initial cwnd of 10 MTUs): a data
/// channel's first messages are usually a burst (a file's first
/// fragments, a page's state), and 4 packets per round trip made the
/// first 12 KB take 2 round trips more. Slow start after it is RFC 9260's
/// (at most one PMTU per SACK), and a T3-rtx expiry still drops cwnd to
/// one MTU (§7.2.3).
fn initial_cwnd(mtu: usize) -> usize {
    (10 * mtu).min((2 * mtu).max(14600))
}

impl Sender {
    /// A sender of DATA, or of I-DATA with `interleaving` (RFC 8260).
    pub(super) fn new(initial_tsn: Tsn, peer_rwnd: u32, mtu: usize, interleaving: bool) -> Self {
        let cwnd = initial_cwnd(mtu);
        Sender {
            mtu,
            interleaving,
            next_tsn: initial_tsn,
            next_message: 0,
            limited: false,
            queue: Scheduler::new(interleaving),
            in_flight: VecDeque::new(),
            cumulative: initial_tsn.prev(),
            cwnd,
            ssthresh: peer_rwnd as usize,
            partial_bytes_acked: 0,
            flight_size: 0,
            outstanding: 0,
            peer_rwnd: peer_rwnd as usize,
            recovery_exit: None,
            fast_retransmit: false,
            t3_at: None,
            probe_at: None,
            probes: 0,
            probe_due: false,
            probe: None,
            hystart: HyStart::new(),
            last_a_rwnd: peer_rwnd,
            answered: false,
            window_shut: false,
            advanced: initial_tsn.prev(),
            forward_tsn: false,
            skipped: Vec::new(),
            skipped_messages: Vec::new(),
            spare: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// Queues a user message, cut into chunks that fit a packet (§6.9).
    pub(super) fn send(
        &mut self,
        stream: u16,
        ppid: u32,
        unordered: bool,
        data: &[u8],
        limit: Limit,
    ) -> Result<(), SendError> {
        if data.is_empty() {
            return Err(SendError::Empty);
        }
        if self.queue.is_paused(stream) {
            return Err(SendError::StreamResetting(stream));
        }
        self.limited |= limit != Limit::None;
        let message = self.next_message;
        self.next_message = message.wrapping_add(1);
        // Common header, DATA or I-DATA header; a multiple of 4 so no
        // padding (and at least 4 bytes, whatever packet size was
        // configured).
        let header = if self.interleaving { I_DATA_HEADER } else { DATA_HEADER };
        let max = (self.mtu.saturating_sub(12 + header) & !3).max(4);
        let count = data.len().div_ceil(max);
        let spare = &mut self.spare;
        let fragments = data.chunks(max).enumerate().map(|(i, piece)| {
            let mut buf = spare.pop().unwrap_or_default();
            buf.extend_from_slice(piece);
            Chunklet {
                stream,
                mid: 0,
                // Fragments past 2^32 would need a message of 4 TiB.
                fsn: i as u32,
                message,
                limit,
                ppid,
                flags: DataFlags {
                    immediate: false,
                    unordered,
                    beginning: i == 0,
                    end: i + 1 == count,
                },
                data: buf,
            }
        });
        self.queue.push(stream, fragments);
        Ok(())
    }

    /// Bytes queued or in flight.
    pub(super) fn buffered(&self) -> usize {
        self.queue.queued_bytes()
            + self
                .in_flight
                .iter()
                .filter(|c| !c.abandoned)
                .map(|c| c.chunk.data.len())
                .sum::<usize>()
    }

    /// Bytes of `stream` queued or in flight, until the peer's
    /// cumulative TSN ack passes them or they are abandoned.
    pub(super) fn buffered_on(&self, stream: u16) -> usize {
        self.queue.buffered(stream)
    }

    pub(super) fn timeout(&self) -> Option<Instant> {
        [self.t3_at, self.probe_at].into_iter().flatten().min()
    }

    pub(super) fn counters(&self) -> Counters {
        self.counters
    }

    /// Nothing queued and nothing unacknowledged: a shutdown may go on
    /// (§9.2).
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// RFC 8831 §6.4: the weight of `stream` in the scheduler.
    pub(super) fn set_priority(&mut self, stream: u16, priority: u16) {
        self.queue.set_priority(stream, priority);
    }

    /// RFC 6525 §5.1.2: `stream` takes no new messages until its reset.
    pub(super) fn pause(&mut self, stream: u16) {
        self.queue.pause(stream);
    }

    /// Whether everything sent on `streams` before their reset was asked
    /// for is acknowledged: nothing queued, nothing in flight (in-flight
    /// chunks are those past the peer's cumulative TSN ack). Then the
    /// peer has it all and can reset them at once (RFC 6525 §5.2.2 E3).
    pub(super) fn reset_ready(&self, streams: &[u16]) -> bool {
        streams.iter().all(|s| !self.queue.has_queued(*s))
            && !self.in_flight.iter().any(|c| streams.contains(&c.chunk.stream))
    }

    /// The peer's cumulative TSN ack: every TSN up to it has arrived.
    pub(super) fn cumulative(&self) -> Tsn {
        self.cumulative
    }

    /// RFC 6525 §5.1.2: the peer reset `streams` (all when empty): SSNs
    /// from 0, and they take messages again.
    pub(super) fn reset(&mut self, streams: &[u16]) {
        self.queue.reset(streams);
    }

    /// The peer refused the reset: `streams` take messages again.
    pub(super) fn resume(&mut self, streams: &[u16]) {
        self.queue.resume(streams);
    }

    /// RFC 9260 §9.2: a SHUTDOWN's Cumulative TSN Ack, taken as a SACK
    /// without gap blocks and with the last window.
    pub(super) fn handle_cumulative_ack(&mut self, now: Instant, cum: Tsn, rto: &mut Rto) -> Acked {
        let sack = Sack {
            cumulative_tsn_ack: cum,
            a_rwnd: self.last_a_rwnd,
            gap_blocks: FixedList::Items(&[]),
            duplicates: FixedList::Items(&[]),
        };
        self.handle_sack(now, &sack, rto)
    }

    /// Adds what fits to the packet: retransmissions, then new DATA, as
    /// the congestion and receive windows allow. Returns whether it
    /// added any.
    pub(super) fn fill(&mut self, now: Instant, w: &mut PacketWriter<'_>, rto: &Rto) -> bool {
        let mut added = false;
        self.abandon_expired(now);
        if self.forward_tsn && self.advanced.is_after(self.cumulative) {
            // RFC 3758 §3.5 C: FORWARD TSN goes first, with the largest
            // SSN abandoned per ordered stream up to the new point; RFC
            // 8260 §2.3: I-FORWARD-TSN with the largest MID per stream,
            // ordered and unordered apart.
            let chunk = if self.interleaving {
                let through = self.collect_skipped_messages();
                Chunk::IForwardTsn(ForwardTsn {
                    new_cumulative_tsn: through,
                    skipped: FixedList::Items(&self.skipped_messages),
                })
            } else {
                self.collect_skipped_streams();
                Chunk::ForwardTsn(ForwardTsn {
                    new_cumulative_tsn: self.advanced,
                    skipped: FixedList::Items(&self.skipped),
                })
            };
            if w.push(&chunk).is_ok() {
                self.forward_tsn = false;
                added = true;
            }
        }
        let fast = std::mem::take(&mut self.fast_retransmit);
        let probe = std::mem::take(&mut self.probe_due);
        for c in self.in_flight.iter_mut().filter(|c| c.retransmit) {
            if !fast && self.flight_size >= self.cwnd {
                break;
            }
            // §6.1 A: into a shut window, one chunk probes it.
            if self.window_shut && self.flight_size > 0 {
                break;
            }
            if w.push(&data_chunk(c.tsn, &c.chunk, self.interleaving)).is_err() {
                break;
            }
            c.retransmit = false;
            c.transmissions += 1;
            self.counters.chunks_retransmitted += 1;
            c.sent_at = now;
            c.misses = 0;
            c.sent_with = self.next_tsn.prev();
            self.flight_size += c.chunk.data.len();
            added = true;
        }
        let mut probe_sent = false;
        while let Some(next) = self.queue.peek() {
            let len = next.data.len();
            // §6.1 A: nothing beyond the peer's window, except one chunk
            // when nothing is in flight (zero window probe); B: nor
            // beyond the cwnd, except one chunk as a tail loss probe
            // (RFC 8985 §7.3).
            let window_ok = len <= self.peer_rwnd || self.flight_size == 0;
            let cwnd_ok = self.flight_size < self.cwnd || (probe && !added);
            if !window_ok || !cwnd_ok {
                break;
            }
            let tsn = self.next_tsn;
            if w.push(&data_chunk(tsn, next, self.interleaving)).is_err() {
                break;
            }
            let Some(chunk) = self.queue.pop() else { break };
            probe_sent |= probe;
            self.next_tsn = tsn.next();
            self.flight_size += len;
            self.outstanding += len;
            self.peer_rwnd = self.peer_rwnd.saturating_sub(len);
            self.in_flight.push_back(InFlight {
                tsn,
                chunk,
                sent_at: now,
                transmissions: 1,
                acked: false,
                misses: 0,
                sent_with: tsn,
                retransmit: false,
                abandoned: false,
            });
            added = true;
        }
        if probe && !added {
            // RFC 8985 §7.3: no new data may go, so the probe is the
            // highest chunk outstanding, sent again; a reliable one, as
            // a message with a retransmission or lifetime limit is sent
            // again only when found lost (RFC 3758 §3.5).
            if let Some(c) = self
                .in_flight
                .iter_mut()
                .rev()
                .find(|c| !c.acked && !c.retransmit && !c.abandoned && c.chunk.limit == Limit::None)
            {
                if w.push(&data_chunk(c.tsn, &c.chunk, self.interleaving)).is_ok() {
                    c.transmissions += 1;
                    c.sent_at = now;
                    self.counters.chunks_retransmitted += 1;
                    self.probe = Some((c.tsn, now));
                    added = true;
                }
            }
        } else if probe_sent {
            self.probe = Some((self.next_tsn.prev(), now));
        }
        if added && self.t3_at.is_none() {
            self.t3_at = Some(now + rto.get());
        }
        if added {
            self.arm_probe(now, rto);
        }
        added
    }

    /// RFC 3758 §3.5 C: per ordered stream, the largest SSN abandoned up
    /// to the Advanced.Peer.Ack.Point.
    fn collect_skipped_streams(&mut self) {
        self.skipped.clear();
        for c in self.in_flight.iter().take_while(|c| !c.tsn.is_after(self.advanced)) {
            if c.chunk.flags.unordered {
                continue;
            }
            // DATA's SSN is the low half of the stream's message count.
            let ssn = c.chunk.mid as u16;
            match self.skipped.iter_mut().find(|s| s.stream == c.chunk.stream) {
                Some(s) if serial_lt16(s.ssn, ssn) => s.ssn = ssn,
                Some(_) => {}
                None => self.skipped.push(SkippedStream {
                    stream: c.chunk.stream,
                    ssn,
                }),
            }
        }
    }

    /// RFC 8260 §2.3: per ordered stream the largest MID abandoned up to
    /// the Advanced.Peer.Ack.Point, and each unordered message abandoned
    /// (the receiver drops fragments by these entries, not by TSN, and an
    /// older unordered message may still be under way). Returns the new
    /// cumulative TSN: the Advanced.Peer.Ack.Point, or short of it when
    /// [`MAX_SKIPPED`] entries do not cover every message up to it (the
    /// next I-FORWARD-TSN goes on from there).
    fn collect_skipped_messages(&mut self) -> Tsn {
        self.skipped_messages.clear();
        // Chunk header, new cumulative TSN, then the entries.
        let max = (self.mtu.saturating_sub(12 + 8) / 8).clamp(1, MAX_SKIPPED);
        for c in self.in_flight.iter().take_while(|c| !c.tsn.is_after(self.advanced)) {
            let (stream, unordered, mid) = (c.chunk.stream, c.chunk.flags.unordered, c.chunk.mid);
            let full = self.skipped_messages.len() == max;
            let entry = self
                .skipped_messages
                .iter_mut()
                .find(|s| s.stream == stream && s.unordered == unordered && (!unordered || s.mid == mid));
            match entry {
                Some(s) if serial_lt32(s.mid, mid) => s.mid = mid,
                Some(_) => {}
                None if full => return c.tsn.prev(),
                None => self.skipped_messages.push(SkippedMessage { stream, unordered, mid }),
            }
        }
        self.advanced
    }

    /// RFC 8985 §7.2: a probe 2 SRTT after the last transmission,
    /// doubled for each one unanswered up to a quarter of the RTO (so a
    /// receiver back from a pause hears one well before T3-rtx), unless
    /// T3-rtx comes first.
    fn arm_probe(&mut self, now: Instant, rto: &Rto) {
        // A shut window is probed on the RTO (§6.1 A), not by RFC 8985.
        let outstanding =
            self.probes < MAX_PROBES && !self.window_shut && self.in_flight.iter().any(|c| !c.acked && !c.abandoned);
        let pto = rto.srtt().filter(|_| outstanding).map(|srtt| {
            let base = (2 * srtt).max(PTO_MIN);
            (base * (1 << self.probes.min(16))).min((rto.get() / 4).max(base))
        });
        self.probe_at = pto.map(|p| now + p).filter(|at| self.t3_at.is_none_or(|t3| *at < t3));
    }

    /// RFC 9260 §6.2.1, §7.2.
    pub(super) fn handle_sack(&mut self, now: Instant, sack: &Sack<'_>, rto: &mut Rto) -> Acked {
        let cum = sack.cumulative_tsn_ack;
        if !self.next_tsn.is_after(cum) {
            return Acked::NeverSent;
        }
        if cum.is_before(self.cumulative) {
            // Older than what we know (§6.2.1 D i).
            return Acked::Nothing;
        }
        self.last_a_rwnd = sack.a_rwnd;
        let mut newly_acked = cum.is_after(self.cumulative);
        let flight_before = self.flight_size;
        let advanced = cum.is_after(self.cumulative);
        let mut bytes_acked = 0;
        let mut rtt = None;
        // §7.2.4: the Highest TSN Newly Acknowledged by this SACK.
        let mut htna = None;
        while self.in_flight.front().is_some_and(|c| !c.tsn.is_after(cum)) {
            let Some(c) = self.in_flight.pop_front() else { break };
            if !c.abandoned {
                self.queue.release(c.chunk.stream, c.chunk.data.len());
            }
            if !c.acked && !c.abandoned {
                newly_acked = true;
                htna = Some(c.tsn);
                bytes_acked += c.chunk.data.len();
                self.outstanding -= c.chunk.data.len();
                if !c.retransmit {
                    self.flight_size -= c.chunk.data.len();
                }
                // §6.3.1 C5 (Karn): only chunks sent once measure RTT.
                if c.transmissions == 1 {
                    rtt = Some(now - c.sent_at);
                }
            }
            let mut data = c.chunk.data;
            data.clear();
            self.spare.push(data);
        }
        self.cumulative = cum;
        // Gap blocks: mark what they newly acknowledge.
        let ends = self
            .in_flight
            .front()
            .zip(self.in_flight.back())
            .map(|(f, l)| (f.tsn, l.tsn));
        for (start, end) in sack.gap_ranges() {
            let Some((first, last)) = ends else { break };
            // A block past what is in flight acks nothing there: walk
            // only what we sent, whatever a hostile SACK claims.
            let end = if end.is_after(last) { last } else { end };
            let mut t = if start.is_before(first) { first } else { start };
            while !t.is_after(end) {
                if let Some(c) = self.in_flight.get_mut(t.offset_from(first) as usize) {
                    if !c.acked {
                        newly_acked = true;
                        htna = Some(c.tsn);
                        c.acked = true;
                        if !c.abandoned {
                            self.outstanding -= c.chunk.data.len();
                            if !c.retransmit {
                                self.flight_size -= c.chunk.data.len();
                            }
                        }
                        c.retransmit = false;
                    }
                }
                t = t.next();
            }
        }
        if let Some(r) = rtt {
            rto.measure(r);
        }
        if self.recovery_exit.is_some_and(|exit| !cum.is_before(exit)) {
            self.recovery_exit = None;
        }
        // RFC 8985 §7.4: the probe arrived, so what was sent before it
        // and is still unacknowledged was lost (it is more than 2 SRTT
        // older than the probe).
        let mut lost = false;
        if let Some((probe_tsn, probe_sent)) = self.probe {
            let first = self.in_flight.front().map(|c| c.tsn);
            let probe_acked = match first {
                Some(first) if !probe_tsn.is_before(first) => self
                    .in_flight
                    .get(probe_tsn.offset_from(first) as usize)
                    .is_none_or(|c| c.acked),
                _ => true,
            };
            if probe_acked {
                self.probe = None;
                for c in self.in_flight.iter_mut() {
                    if !c.tsn.is_before(probe_tsn) {
                        break;
                    }
                    if !c.acked && !c.retransmit && !c.abandoned && c.sent_at < probe_sent {
                        c.retransmit = true;
                        self.counters.fast_retransmits += 1;
                        self.flight_size -= c.chunk.data.len();
                        lost = true;
                    }
                }
            }
        }
        // §7.2.4: miss indications only for chunks sent before the
        // highest TSN newly acknowledged (HTNA), so that a SACK repeating
        // old gap blocks counts no miss.
        for c in self.in_flight.iter_mut() {
            let Some(htna) = htna.filter(|h| c.tsn.is_before(*h)) else {
                break;
            };
            if !c.acked && !c.retransmit && !c.abandoned && htna.is_after(c.sent_with) {
                c.misses += 1;
                if c.misses == FAST_RETRANSMIT_MISSES {
                    c.retransmit = true;
                    self.counters.fast_retransmits += 1;
                    self.flight_size -= c.chunk.data.len();
                    lost = true;
                }
            }
        }
        if lost {
            self.hystart.stop();
        }
        if lost && self.recovery_exit.is_none() {
            // §7.2.3 and §7.2.4 2: halve, and stay there until the
            // highest TSN outstanding now is acknowledged.
            self.ssthresh = (self.cwnd / 2).max(4 * self.mtu);
            self.cwnd = self.ssthresh;
            self.partial_bytes_acked = 0;
            self.recovery_exit = Some(self.next_tsn.prev());
            self.fast_retransmit = true;
        }
        if advanced && self.recovery_exit.is_none() && flight_before >= self.cwnd {
            if self.cwnd <= self.ssthresh {
                // §7.2.1: slow start, as HyStart++ paces it (RFC 9406).
                let growth = bytes_acked.min(self.mtu);
                match self.hystart.on_ack(cum, rtt, self.next_tsn.prev()) {
                    Growth::Full => self.cwnd += growth,
                    Growth::Css => self.cwnd += growth / CSS_GROWTH_DIVISOR,
                    Growth::Exit => self.ssthresh = self.cwnd,
                }
            } else {
                // §7.2.2: congestion avoidance.
                self.partial_bytes_acked += bytes_acked;
                if self.partial_bytes_acked >= self.cwnd {
                    self.partial_bytes_acked -= self.cwnd;
                    self.cwnd += self.mtu;
                }
            }
        }
        self.peer_rwnd = (sack.a_rwnd as usize).saturating_sub(self.outstanding);
        self.answered = true;
        if self.window_shut && !self.window_lacks_room() {
            // The window opened (a window update, or the probe taken):
            // what waits for retransmission goes as the cwnd allows.
            self.window_shut = false;
        }
        // RFC 3758 §3.5 C: abandon what the marks made due, and if the
        // peer is still behind the Advanced.Peer.Ack.Point, FORWARD TSN.
        if self.advanced.is_before(cum) {
            self.advanced = cum;
        }
        self.abandon_expired(now);
        if self.advanced.is_after(cum) {
            self.forward_tsn = true;
        }
        // §6.3.2 R2, R3 (an abandoned chunk waits for the FORWARD TSN's
        // ack, so it keeps T3 running).
        if self.in_flight.iter().all(|c| c.acked) {
            self.t3_at = None;
        } else if advanced {
            self.t3_at = Some(now + rto.get());
        }
        if newly_acked {
            self.probes = 0;
            self.arm_probe(now, rto);
        }
        if newly_acked {
            Acked::New
        } else {
            Acked::Nothing
        }
    }

    /// RFC 9260 §6.3.3: T3-rtx expired. Everything unacknowledged goes
    /// again, one packet's worth of cwnd at a time. Returns whether it
    /// expired (one more error for §8.1's counter).
    pub(super) fn handle_timeout(&mut self, now: Instant, rto: &mut Rto) -> bool {
        if self.t3_at.is_none_or(|at| at > now) {
            if self.probe_at.is_some_and(|at| at <= now) {
                // RFC 8985 §7.3: one packet goes whatever the cwnd.
                self.probe_at = None;
                self.probe_due = true;
                self.probes += 1;
            }
            return false;
        }
        let answered = std::mem::take(&mut self.answered);
        if answered && self.window_lacks_room() {
            // RFC 9260 §6.1 A: a shut window, not loss. What is
            // outstanding goes again one chunk at a time (a zero window
            // probe) on the RTO, which still backs off so probes space
            // out; the cwnd stays, and the expiry is no error: the
            // receiver may keep its window shut as long as it likes.
            self.counters.window_probes += 1;
            self.window_shut = true;
            self.resend_all(now, rto);
            return false;
        }
        self.counters.t3_expiries += 1;
        self.hystart.stop();
        self.probes = MAX_PROBES;
        self.ssthresh = (self.cwnd / 2).max(4 * self.mtu);
        self.cwnd = self.mtu;
        self.partial_bytes_acked = 0;
        self.recovery_exit = None;
        self.resend_all(now, rto);
        true
    }

    /// RFC 9260 §6.3.3 E2, E3: T3-rtx backs off, and everything
    /// unacknowledged is marked to go again.
    fn resend_all(&mut self, now: Instant, rto: &mut Rto) {
        self.probe_at = None;
        self.probe = None;
        rto.back_off();
        for c in self
            .in_flight
            .iter_mut()
            .filter(|c| !c.acked && !c.retransmit && !c.abandoned)
        {
            c.retransmit = true;
            self.flight_size -= c.chunk.data.len();
        }
        self.abandon_expired(now);
        // RFC 3758 §3.5 F: a lost FORWARD TSN goes again.
        if self.advanced.is_after(self.cumulative) {
            self.forward_tsn = true;
        }
        self.t3_at = Some(now + rto.get());
    }

    /// Whether the peer's last SACK left no room for the first chunk it
    /// has not acknowledged (its a_rwnd counts what it holds, not what we
    /// sent after: a full receiver drops DATA and SACKs at once, §6.2).
    /// Receivers may charge each chunk more than its payload (ours
    /// [`CHUNK_OVERHEAD`]), so a window that short of it counts as shut.
    fn window_lacks_room(&self) -> bool {
        let first = self.in_flight.iter().find(|c| !c.acked && !c.abandoned);
        first.is_some_and(|c| (self.last_a_rwnd as usize) < c.chunk.data.len() + CHUNK_OVERHEAD)
    }

    /// RFC 3758 §3.5 A, B: gives up the messages that their limit says
    /// to: in flight, when marked for retransmission past their
    /// retransmissions or lifetime; queued, past their lifetime. A message
    /// goes whole; the Advanced.Peer.Ack.Point then moves over what is
    /// abandoned in sequence.
    fn abandon_expired(&mut self, now: Instant) {
        if !self.limited {
            return;
        }
        let due = |limit: Limit, transmissions: u32| match limit {
            Limit::None => false,
            Limit::Retransmits(n) => transmissions > u32::from(n),
            Limit::Until(at) => now >= at,
        };
        let mut i = 0;
        while i < self.in_flight.len() {
            let c = &self.in_flight[i];
            if c.retransmit && !c.abandoned && due(c.chunk.limit, c.transmissions) {
                let (stream, message) = (c.chunk.stream, c.chunk.message);
                self.abandon(now, stream, message);
            }
            i += 1;
        }
        // Queued messages past their lifetime: never sent (no TSN or SSN
        // taken) or partly sent (the rest in flight goes too).
        let expired = |c: &Chunklet| matches!(c.limit, Limit::Until(at) if now >= at);
        while let Some((stream, message)) = self.queue.find_front(expired) {
            self.abandon(now, stream, message);
        }
        // The in-flight queue starts right after the cumulative TSN, which
        // the Advanced.Peer.Ack.Point never falls behind.
        if let Some(first) = self.in_flight.front().map(|c| c.tsn) {
            let before = self.advanced;
            while let Some(c) = self.in_flight.get(self.advanced.next().offset_from(first) as usize) {
                if !c.abandoned {
                    break;
                }
                self.advanced = c.tsn;
            }
            if self.advanced != before {
                self.forward_tsn = true;
            }
        }
    }

    /// Abandons every fragment of `message` (on `stream`), in flight or
    /// still queued.
    fn abandon(&mut self, now: Instant, stream: u16, message: u32) {
        for c in self.in_flight.iter_mut().filter(|c| c.chunk.message == message) {
            if !c.acked && !c.retransmit && !c.abandoned {
                self.flight_size -= c.chunk.data.len();
            }
            if !c.acked && !c.abandoned {
                self.outstanding -= c.chunk.data.len();
            }
            if !c.abandoned {
                self.queue.release(stream, c.chunk.data.len());
            }
            c.abandoned = true;
            c.retransmit = false;
        }
        // Part of it sent, the rest still queued: the rest goes, and an
        // abandoned end fragment that is never sent takes the next TSN,
        // so that the FORWARD TSN reaches past the whole message even if
        // every fragment sent arrives (the receiver then drops them;
        // dcsctp does the same).
        let spare = &mut self.spare;
        let removed = self.queue.remove_front_message(stream, message, |mut data| {
            data.clear();
            spare.push(data);
        });
        let Some((mut end, partly_sent)) = removed else { return };
        if !partly_sent {
            self.recycle(end.data);
            return;
        }
        end.data.clear();
        end.flags.end = true;
        let tsn = self.next_tsn;
        self.next_tsn = tsn.next();
        self.in_flight.push_back(InFlight {
            tsn,
            chunk: end,
            sent_at: now,
            transmissions: 0,
            acked: false,
            misses: 0,
            sent_with: tsn,
            retransmit: false,
            abandoned: true,
        });
    }

    fn recycle(&mut self, mut data: Vec<u8>) {
        data.clear();
        self.spare.push(data);
    }
}

/// The DATA chunk (RFC 9260 §3.3.1) or, with `interleaving`, I-DATA
/// chunk (RFC 8260 §2.1: the PPID in the first fragment, the FSN in the
/// others) carrying `c` at `tsn`.
fn data_chunk(tsn: Tsn, c: &Chunklet, interleaving: bool) -> Chunk<'_> {
    if interleaving {
        return Chunk::IData(IData {
            flags: c.flags,
            tsn,
            stream: c.stream,
            mid: c.mid,
            ppid_or_fsn: if c.flags.beginning { c.ppid } else { c.fsn },
            payload: &c.data,
        });
    }
    Chunk::Data(Data {
        flags: c.flags,
        tsn,
        stream: c.stream,
        // DATA's SSN is the low half of the stream's message count.
        ssn: c.mid as u16,
        ppid: c.ppid,
        payload: &c.data,
    })
}
