//! Datagram Packetization Layer PMTU Discovery (RFC 8899) for SCTP over
//! DTLS (RFC 8261 §5 asks for it; RFC 8899 §6.2 says how): packets start
//! at BASE_PLPMTU (the configured `max_packet_size`, 1200 by default, which
//! any path carries) and probes search upward to MAX_PLPMTU. A probe is
//! a HEARTBEAT padded with a PAD chunk (RFC 4820) to the size tried; its
//! HEARTBEAT ACK says that size crosses the path (§6.2.1.2). Probes carry
//! no user data, so a lost one costs nothing to repair.
//!
//! The search (§5.3.2 leaves the method open): MAX_PLPMTU first, so a
//! path that carries it settles in one round trip; then halving the
//! interval between the largest size acknowledged and the smallest that
//! failed (MAX_PROBES probes, each given PROBE_TIMER), down to
//! [`SEARCH_STEP`] bytes. SEARCH_COMPLETE searches again after
//! PMTU_RAISE_TIMER (§5.1.1).
//!
//! Black holes (§4.3, §5.2): SCTP acknowledges its data, so no
//! CONFIRMATION_TIMER runs (§6.2.3.3); a path that stops carrying the
//! PLPMTU shows as a T3-rtx expiry. Then the PLPMTU falls back to BASE at
//! once, and a new search starts with a probe of the old size (a loss
//! that was no black hole brings it back one round trip later).
//!
//! User messages are cut into DATA chunks that fit BASE_PLPMTU whatever
//! the PLPMTU: a chunk that has a TSN can never be cut again, and after a
//! fall back it must still fit a packet (RFC 9260 §7.3 leaves only IP
//! fragmentation, which DTLS does not allow, RFC 8261 §5). A larger
//! PLPMTU carries more chunks per packet.

use std::time::{Duration, Instant};

use super::{Association, State};
use crate::sctp::chunk::{Chunk, PAD};
use crate::sctp::packet::{CommonHeader, PacketWriter};
use crate::sctp::param::Param;
use crate::sctp::wire::TlvList;

/// A probe's Heartbeat Information (RFC 8899 §6.2.1.2 suggests carrying
/// the probe size): when it went (nanoseconds since the association's
/// epoch) and its size, 8 bytes each. A plain HEARTBEAT's has 8 bytes.
const PROBE_INFO: usize = 16;
/// A probe's bytes besides the PAD chunk's value: the common header
/// (12), the HEARTBEAT chunk (4) with its parameter (4 + 16), the PAD
/// chunk's header (4).
const PROBE_FIXED: usize = 12 + 4 + 4 + PROBE_INFO + 4;

/// RFC 8899 §5.1.2: MAX_PROBES.
const MAX_PROBES: u32 = 3;
/// RFC 8899 §5.1.1: PROBE_TIMER "SHOULD be larger than 15 seconds" is for
/// transports without acknowledgements; SCTP's HEARTBEAT ACK comes in a
/// round trip, so a probe is given up after the RTO, and never sooner
/// than 1 s (the RFC's lower bound).
const PROBE_TIMER_MIN: Duration = Duration::from_secs(1);
/// RFC 8899 §5.1.1: PMTU_RAISE_TIMER, 600 s.
const PMTU_RAISE_TIMER: Duration = Duration::from_secs(600);
/// The search stops once the largest size that crossed and the smallest
/// that did not are this close.
pub const SEARCH_STEP: usize = 16;

/// RFC 8899 §5.2's states, as this association takes part in them
/// (DISABLED is `max_plpmtu` unset; ERROR is not taken: BASE_PLPMTU is
/// the packet size the association would use without probing anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmtudState {
    /// Probing for a larger PLPMTU.
    Searching,
    /// No larger size to try until PMTU_RAISE_TIMER.
    SearchComplete,
}

#[derive(Debug)]
pub(super) struct Pmtud {
    base: usize,
    max: usize,
    plpmtu: usize,
    state: PmtudState,
    /// The smallest size known not to cross (`max + 1` while none).
    high: usize,
    /// The size being probed, and how many probes of it went.
    probe_size: usize,
    probe_count: u32,
    /// When the next probe goes (or the search starts again).
    due: Option<Instant>,
    /// A probe is out: its size and when it went.
    outstanding: Option<(usize, Instant)>,
    /// Black holes seen (each a fall back to BASE_PLPMTU).
    black_holes: u64,
}

impl Pmtud {
    /// Searches from `base` up to `max` (`max > base`), from `now`.
    pub(super) fn new(base: usize, max: usize, now: Instant) -> Self {
        Pmtud {
            base,
            max,
            plpmtu: base,
            state: PmtudState::Searching,
            high: max + 1,
            probe_size: max,
            probe_count: 0,
            due: Some(now),
            outstanding: None,
            black_holes: 0,
        }
    }

    /// The largest packet to send now.
    pub(super) fn plpmtu(&self) -> usize {
        self.plpmtu
    }

    pub(super) fn state(&self) -> PmtudState {
        self.state
    }

    pub(super) fn black_holes(&self) -> u64 {
        self.black_holes
    }

    pub(super) fn timeout(&self) -> Option<Instant> {
        self.due
    }

    /// The size of the probe to send at `now`, if one is due; it is then
    /// taken as sent, and given the RTO (at least PROBE_TIMER_MIN).
    pub(super) fn poll_probe(&mut self, now: Instant, rto: Duration) -> Option<usize> {
        if self.due.is_none_or(|at| at > now) {
            return None;
        }
        match self.outstanding.take() {
            // PROBE_TIMER expired MAX_PROBES times: the size does not cross.
            Some((size, _)) if self.probe_count >= MAX_PROBES => {
                self.high = size;
                self.next_size(now);
                if self.state == PmtudState::SearchComplete {
                    return None;
                }
            }
            // PROBE_TIMER expired: the same size again.
            Some(_) => {}
            // PMTU_RAISE_TIMER: search again, from the top.
            None if self.state == PmtudState::SearchComplete => {
                self.state = PmtudState::Searching;
                self.high = self.max + 1;
                self.probe_size = self.max;
                self.probe_count = 0;
            }
            None => {}
        }
        self.probe_count += 1;
        self.outstanding = Some((self.probe_size, now));
        self.due = Some(now + rto.max(PROBE_TIMER_MIN));
        Some(self.probe_size)
    }

    /// The HEARTBEAT ACK of a probe of `size` sent at `sent`: that size
    /// crosses the path (§6.2.1.2). Returns whether it was the probe out.
    pub(super) fn probe_acked(&mut self, now: Instant, size: usize, sent: Instant) -> bool {
        if self.outstanding != Some((size, sent)) {
            return false;
        }
        self.outstanding = None;
        self.plpmtu = self.plpmtu.max(size);
        self.next_size(now);
        true
    }

    /// RFC 8899 §4.3: T3-rtx expired. With packets above BASE_PLPMTU,
    /// that may be a black hole: back to BASE_PLPMTU, and search again
    /// from a probe of the size that was in use.
    pub(super) fn on_retransmission_timeout(&mut self, now: Instant) {
        if self.plpmtu <= self.base {
            return;
        }
        self.black_holes += 1;
        self.state = PmtudState::Searching;
        self.high = self.max + 1;
        self.probe_size = self.plpmtu;
        self.plpmtu = self.base;
        self.probe_count = 0;
        self.outstanding = None;
        self.due = Some(now);
    }

    /// The next size to probe, between the PLPMTU (crossed) and `high`
    /// (failed), or SEARCH_COMPLETE.
    fn next_size(&mut self, now: Instant) {
        self.probe_count = 0;
        let gap = self.high.saturating_sub(self.plpmtu);
        if gap <= SEARCH_STEP || self.plpmtu >= self.max {
            self.state = PmtudState::SearchComplete;
            // Below MAX_PLPMTU the path may grow later.
            self.due = (self.plpmtu < self.max).then(|| now + PMTU_RAISE_TIMER);
            return;
        }
        // Packets are a multiple of 4 bytes (RFC 9260 §3.2).
        let next = if self.high > self.max {
            self.max
        } else {
            (self.plpmtu + gap / 2) & !3
        };
        self.probe_size = next.max(self.plpmtu + 4);
        self.due = Some(now);
    }
}

impl Association {
    /// RFC 8899 §6.2.1.2: sends a probe if one is due: a HEARTBEAT and a
    /// PAD chunk, exactly the size probed, outside the congestion window.
    pub(super) fn probe_path(&mut self, now: Instant) {
        if self.state != State::Established {
            return;
        }
        let rto = self.rto.get();
        let Some(size) = self.pmtud.as_mut().and_then(|p| p.poll_probe(now, rto)) else {
            return;
        };
        let sent = u64::try_from(self.since_epoch(now).as_nanos()).unwrap_or(u64::MAX);
        let mut info = [0u8; PROBE_INFO];
        info[..8].copy_from_slice(&sent.to_be_bytes());
        info[8..].copy_from_slice(&(size as u64).to_be_bytes());
        let params = [Param::HeartbeatInfo(&info)];
        // Probes are rare (one per round trip while searching).
        let pad = vec![0; size.saturating_sub(PROBE_FIXED)];
        let chunks = [
            Chunk::Heartbeat(TlvList::Items(&params)),
            Chunk::Unknown {
                ty: PAD,
                flags: 0,
                value: &pad,
            },
        ];
        let header = CommonHeader {
            source_port: self.config.local_port,
            destination_port: self.config.remote_port,
            verification_tag: self.peer_tag(),
        };
        let checksum = self.send_checksum();
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(size, 0);
        let written = PacketWriter::new(&mut buf, header).ok().and_then(|mut w| {
            chunks.iter().try_for_each(|c| w.push(c)).ok()?;
            Some(w.finish(checksum))
        });
        match written {
            Some(n) => {
                buf.truncate(n);
                self.transmit.push_back(buf);
            }
            None => self.spare.push(buf),
        }
    }

    /// The HEARTBEAT ACK of a probe (its info is [`PROBE_INFO`] bytes):
    /// the size crossed. Returns whether it was one.
    pub(super) fn handle_probe_ack(&mut self, now: Instant, info: &TlvList<'_, Param<'_>>) -> bool {
        let echoed = info.iter().find_map(|p| match p {
            Param::HeartbeatInfo(b) => <[u8; PROBE_INFO]>::try_from(b).ok(),
            _ => None,
        });
        let (Some(e), Some(pmtud)) = (echoed, self.pmtud.as_mut()) else {
            return false;
        };
        let [s0, s1, s2, s3, s4, s5, s6, s7, z0, z1, z2, z3, z4, z5, z6, z7] = e;
        let sent = self.epoch + Duration::from_nanos(u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]));
        if let Ok(size) = usize::try_from(u64::from_be_bytes([z0, z1, z2, z3, z4, z5, z6, z7])) {
            pmtud.probe_acked(now, size, sent);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTO: Duration = Duration::from_millis(300);

    #[test]
    fn a_path_that_carries_the_maximum_settles_in_one_probe() {
        let t = Instant::now();
        let mut p = Pmtud::new(1200, 1400, t);
        assert_eq!(p.poll_probe(t, RTO), Some(1400));
        assert_eq!(p.poll_probe(t, RTO), None, "one probe at a time");
        assert!(p.probe_acked(t, 1400, t));
        assert_eq!(p.plpmtu(), 1400);
        assert_eq!(p.state(), PmtudState::SearchComplete);
        assert_eq!(p.timeout(), None, "nothing larger to look for");
    }

    #[test]
    fn lost_probes_narrow_the_search_down_to_the_path() {
        // The path carries 1300 bytes.
        let mut t = Instant::now();
        let mut p = Pmtud::new(1200, 1400, t);
        let mut probes = Vec::new();
        while p.state() == PmtudState::Searching {
            t = t.max(p.timeout().expect("a search has a timer"));
            if let Some(size) = p.poll_probe(t, RTO) {
                probes.push(size);
                if size <= 1300 {
                    assert!(p.probe_acked(t, size, t));
                }
            }
        }
        assert!(
            p.plpmtu() <= 1300 && p.plpmtu() > 1300 - SEARCH_STEP,
            "{probes:?} -> {}",
            p.plpmtu()
        );
        // Each size that failed was tried MAX_PROBES times.
        assert_eq!(probes.iter().filter(|s| **s == 1400).count(), 3, "{probes:?}");
        assert!(
            probes.iter().all(|s| s % 4 == 0 && *s > 1200 && *s <= 1400),
            "{probes:?}"
        );
        assert!(probes.len() < 30, "{probes:?}");
        // PMTU_RAISE_TIMER: the search starts again from the top.
        let raise = p.timeout().expect("the path may grow");
        assert_eq!(p.poll_probe(raise, RTO), Some(1400));
    }

    #[test]
    fn a_black_hole_falls_back_to_base_and_searches_again() {
        let t = Instant::now();
        let mut p = Pmtud::new(1200, 1400, t);
        p.poll_probe(t, RTO);
        p.probe_acked(t, 1400, t);
        p.on_retransmission_timeout(t);
        assert_eq!(p.plpmtu(), 1200);
        assert_eq!(p.black_holes(), 1);
        assert_eq!(p.state(), PmtudState::Searching);
        assert_eq!(p.poll_probe(t, RTO), Some(1400), "the old size is confirmed first");
        // At base, a T3-rtx expiry is loss, not a black hole.
        let mut q = Pmtud::new(1200, 1400, t);
        q.on_retransmission_timeout(t);
        assert_eq!(q.black_holes(), 0);
    }

    #[test]
    fn an_old_or_foreign_ack_changes_nothing() {
        let t = Instant::now();
        let mut p = Pmtud::new(1200, 1400, t);
        p.poll_probe(t, RTO);
        assert!(!p.probe_acked(t, 1300, t));
        assert!(!p.probe_acked(t, 1400, t + RTO));
        assert_eq!(p.plpmtu(), 1200);
    }
}
