//! The sending half of data transfer: user messages cut into DATA chunks
//! (RFC 9260 §6.9), TSNs, the in-flight queue acknowledged by SACKs'
//! cumulative TSN and gap blocks (§6.2.1), T3-rtx (§6.3.3), fast
//! retransmit and recovery (§7.2.4), and the congestion window (§7.2.1,
//! §7.2.2). In-flight chunks sit in TSN order, so a TSN is found by its
//! offset from the first: no lookup per chunk.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::sctp::chunk::{Chunk, Data, DataFlags, Sack};
use crate::sctp::packet::PacketWriter;
use crate::sctp::rto::Rto;
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::FixedList;

/// RFC 9260 §7.2.4: the third miss indication retransmits.
const FAST_RETRANSMIT_MISSES: u32 = 3;
/// DATA chunk header (§3.3.1).
const DATA_HEADER: usize = 16;

#[derive(Debug)]
struct Chunklet {
    stream: u16,
    ssn: u16,
    ppid: u32,
    flags: DataFlags,
    data: Vec<u8>,
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
    /// Marked for retransmission (not counted in the flight size).
    retransmit: bool,
}

#[derive(Debug)]
pub(super) struct Sender {
    mtu: usize,
    next_tsn: Tsn,
    ssn: HashMap<u16, u16>,
    queue: VecDeque<Chunklet>,
    in_flight: VecDeque<InFlight>,
    /// The peer's cumulative TSN ack.
    cumulative: Tsn,
    cwnd: usize,
    ssthresh: usize,
    partial_bytes_acked: usize,
    /// Bytes sent and neither acknowledged nor marked for retransmission.
    flight_size: usize,
    peer_rwnd: usize,
    /// Fast recovery lasts until this TSN is acknowledged (§7.2.4).
    recovery_exit: Option<Tsn>,
    /// One packet of fast retransmissions may ignore the cwnd (§7.2.4 3).
    fast_retransmit: bool,
    t3_at: Option<Instant>,
    /// The a_rwnd of the last SACK, for a SHUTDOWN's cumulative ack,
    /// which carries none (§9.2).
    last_a_rwnd: u32,
    spare: Vec<Vec<u8>>,
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
}

impl Sender {
    pub(super) fn new(initial_tsn: Tsn, peer_rwnd: u32, mtu: usize) -> Self {
        // §7.2.1: cwnd = min(4 MTU, max(2 MTU, 4380)), ssthresh = a_rwnd.
        let cwnd = (4 * mtu).min((2 * mtu).max(4380));
        Sender {
            mtu,
            next_tsn: initial_tsn,
            ssn: HashMap::new(),
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            cumulative: initial_tsn.prev(),
            cwnd,
            ssthresh: peer_rwnd as usize,
            partial_bytes_acked: 0,
            flight_size: 0,
            peer_rwnd: peer_rwnd as usize,
            recovery_exit: None,
            fast_retransmit: false,
            t3_at: None,
            last_a_rwnd: peer_rwnd,
            spare: Vec::new(),
        }
    }

    /// Queues a user message, cut into chunks that fit a packet (§6.9).
    pub(super) fn send(&mut self, stream: u16, ppid: u32, unordered: bool, data: &[u8]) -> Result<(), SendError> {
        if data.is_empty() {
            return Err(SendError::Empty);
        }
        let ssn = if unordered {
            0
        } else {
            let next = self.ssn.entry(stream).or_insert(0);
            let ssn = *next;
            *next = next.wrapping_add(1);
            ssn
        };
        // Common header, DATA header; a multiple of 4 so no padding (and
        // at least 4 bytes, whatever packet size was configured).
        let max = (self.mtu.saturating_sub(12 + DATA_HEADER) & !3).max(4);
        let count = data.len().div_ceil(max);
        for (i, piece) in data.chunks(max).enumerate() {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.extend_from_slice(piece);
            let flags = DataFlags {
                immediate: false,
                unordered,
                beginning: i == 0,
                end: i + 1 == count,
            };
            self.queue.push_back(Chunklet {
                stream,
                ssn,
                ppid,
                flags,
                data: buf,
            });
        }
        Ok(())
    }

    /// Bytes queued or in flight.
    pub(super) fn buffered(&self) -> usize {
        self.queue.iter().map(|c| c.data.len()).sum::<usize>()
            + self.in_flight.iter().map(|c| c.chunk.data.len()).sum::<usize>()
    }

    pub(super) fn timeout(&self) -> Option<Instant> {
        self.t3_at
    }

    /// Nothing queued and nothing unacknowledged: a shutdown may go on
    /// (§9.2).
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
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
        let fast = std::mem::take(&mut self.fast_retransmit);
        for c in self.in_flight.iter_mut().filter(|c| c.retransmit) {
            if !fast && self.flight_size >= self.cwnd {
                break;
            }
            if w.push(&data_chunk(c.tsn, &c.chunk)).is_err() {
                break;
            }
            c.retransmit = false;
            c.transmissions += 1;
            c.sent_at = now;
            c.misses = 0;
            self.flight_size += c.chunk.data.len();
            added = true;
        }
        while let Some(next) = self.queue.front() {
            let len = next.data.len();
            // §6.1 A: nothing beyond the peer's window, except one chunk
            // when nothing is in flight (zero window probe); B: nor
            // beyond the cwnd.
            let window_ok = len <= self.peer_rwnd.saturating_sub(self.flight_size) || self.flight_size == 0;
            if !window_ok || self.flight_size >= self.cwnd {
                break;
            }
            let tsn = self.next_tsn;
            if w.push(&data_chunk(tsn, next)).is_err() {
                break;
            }
            let Some(chunk) = self.queue.pop_front() else { break };
            self.next_tsn = tsn.next();
            self.flight_size += len;
            self.in_flight.push_back(InFlight {
                tsn,
                chunk,
                sent_at: now,
                transmissions: 1,
                acked: false,
                misses: 0,
                retransmit: false,
            });
            added = true;
        }
        if added && self.t3_at.is_none() {
            self.t3_at = Some(now + rto.get());
        }
        added
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
        let mut newly_acked = false;
        let flight_before = self.flight_size;
        let advanced = cum.is_after(self.cumulative);
        let mut bytes_acked = 0;
        let mut rtt = None;
        while self.in_flight.front().is_some_and(|c| !c.tsn.is_after(cum)) {
            let Some(c) = self.in_flight.pop_front() else { break };
            if !c.acked {
                newly_acked = true;
                bytes_acked += c.chunk.data.len();
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
        // Gap blocks: mark, and count misses below the highest acked.
        let mut highest_acked = cum;
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
                        c.acked = true;
                        if !c.retransmit {
                            self.flight_size -= c.chunk.data.len();
                        }
                        c.retransmit = false;
                    }
                }
                if t.is_after(highest_acked) {
                    highest_acked = t;
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
        // §7.2.4: miss indications for chunks below the highest acked.
        let mut lost = false;
        for c in self.in_flight.iter_mut() {
            if !c.tsn.is_before(highest_acked) {
                break;
            }
            if !c.acked && !c.retransmit {
                c.misses += 1;
                if c.misses == FAST_RETRANSMIT_MISSES {
                    c.retransmit = true;
                    self.flight_size -= c.chunk.data.len();
                    lost = true;
                }
            }
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
                // §7.2.1: slow start.
                self.cwnd += bytes_acked.min(self.mtu);
            } else {
                // §7.2.2: congestion avoidance.
                self.partial_bytes_acked += bytes_acked;
                if self.partial_bytes_acked >= self.cwnd {
                    self.partial_bytes_acked -= self.cwnd;
                    self.cwnd += self.mtu;
                }
            }
        }
        let outstanding: usize = self
            .in_flight
            .iter()
            .filter(|c| !c.acked)
            .map(|c| c.chunk.data.len())
            .sum();
        self.peer_rwnd = (sack.a_rwnd as usize).saturating_sub(outstanding);
        // §6.3.2 R2, R3.
        if self.in_flight.iter().all(|c| c.acked) {
            self.t3_at = None;
        } else if advanced {
            self.t3_at = Some(now + rto.get());
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
            return false;
        }
        self.ssthresh = (self.cwnd / 2).max(4 * self.mtu);
        self.cwnd = self.mtu;
        self.partial_bytes_acked = 0;
        self.recovery_exit = None;
        rto.back_off();
        for c in self.in_flight.iter_mut().filter(|c| !c.acked && !c.retransmit) {
            c.retransmit = true;
            self.flight_size -= c.chunk.data.len();
        }
        self.t3_at = Some(now + rto.get());
        true
    }
}

fn data_chunk(tsn: Tsn, c: &Chunklet) -> Chunk<'_> {
    Chunk::Data(Data {
        flags: c.flags,
        tsn,
        stream: c.stream,
        ssn: c.ssn,
        ppid: c.ppid,
        payload: &c.data,
    })
}
