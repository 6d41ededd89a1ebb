//! The receiving half of data transfer (RFC 9260 §6.2): DATA and I-DATA
//! into the TSN record and reassembly, SACKs at once or delayed (§6.2:
//! at least every second packet with DATA, within 200 ms), FORWARD TSN
//! (RFC 3758 §3.6) and I-FORWARD-TSN (RFC 8260 §2.3).

use std::time::{Duration, Instant};

use crate::sctp::chunk::{ForwardTsn, Sack, SkippedMessage, SkippedStream};
use crate::sctp::reassembly::{Fragment, Message, Numbering, Reassembly, CHUNK_OVERHEAD};
use crate::sctp::received::{Arrival, ReceivedTsns};
use crate::sctp::tsn::Tsn;

/// RFC 9260 §16: SACK.Delay 200 ms.
const SACK_DELAY: Duration = Duration::from_millis(200);
/// RFC 8831 §8: the DCEP PPID; its messages are answered at once so a
/// channel opens in one round trip.
const PPID_DCEP: u32 = 50;

#[derive(Debug)]
pub(super) struct Receiver {
    tsns: ReceivedTsns,
    reassembly: Reassembly,
    window: u32,
    /// A SACK is to go in the next packet.
    sack_now: bool,
    /// The delayed SACK's deadline.
    sack_at: Option<Instant>,
    /// Packets with DATA since the last SACK.
    data_packets: u32,
    /// The a_rwnd of the last SACK sent.
    advertised: u32,
}

impl Receiver {
    pub(super) fn new(peer_initial_tsn: Tsn, window: u32, max_packet_size: usize, numbering: Numbering) -> Self {
        // Room for the window in the smallest chunks worth tracking.
        let mut tsns = ReceivedTsns::new(peer_initial_tsn, window / 64);
        tsns.fit_packet(max_packet_size);
        Receiver {
            tsns,
            reassembly: Reassembly::new(numbering),
            window,
            sack_now: false,
            sack_at: None,
            data_packets: 0,
            advertised: window,
        }
    }

    /// One DATA or I-DATA chunk.
    pub(super) fn data(&mut self, f: Fragment<'_>, immediate: bool) {
        // §6.2: with no room, drop the chunk unacknowledged (one chunk
        // always fits an empty buffer, so a large message can progress).
        // The chunk that fills the first hole is still taken up to an
        // eighth past the window: peers count the window in payload bytes,
        // without our per-chunk charge (about 5% on full chunks), so after
        // a loss the chunks held past the hole can fill it, and without
        // this one the cumulative TSN would never move again (§6.2 lets a
        // full receiver drop only what it has not yet accounted for).
        let len = f.payload.len() + CHUNK_OVERHEAD;
        let fills_first_hole = f.tsn == self.tsns.cumulative().next()
            && self.tsns.has_gaps()
            && self.reassembly.buffered() + len <= self.window as usize + self.window as usize / 8;
        let room = self.a_rwnd() as usize >= len || self.reassembly.buffered() == 0 || fills_first_hole;
        if !room {
            self.sack_now = true;
            return;
        }
        let had_gaps = self.tsns.has_gaps();
        match self.tsns.receive(f.tsn) {
            Arrival::New => {
                // §6.2: SACK at once for an I bit (RFC 7053), and, as
                // §6.2 allows, for a DCEP message (the channel opens in
                // one round trip), for a chunk that may fill a gap (§6.7:
                // the sender learns at once that its retransmission
                // arrived), and for a message's last fragment: a sender
                // that has nothing more to send waits for this SACK to
                // free its window, and would otherwise wait SACK.Delay.
                self.sack_now |= immediate || f.ppid == PPID_DCEP || had_gaps || f.end;
                self.reassembly.insert(f);
            }
            // §6.2: duplicates are reported at once.
            Arrival::Duplicate => self.sack_now = true,
            Arrival::BeyondWindow => {}
        }
    }

    /// Called once per packet that carried DATA.
    pub(super) fn end_of_packet(&mut self, now: Instant) {
        self.data_packets += 1;
        // §6.7: gaps are reported at once; §6.2: every second packet.
        if self.data_packets >= 2 || self.tsns.has_gaps() {
            self.sack_now = true;
        }
        if !self.sack_now && self.sack_at.is_none() {
            self.sack_at = Some(now + SACK_DELAY);
        }
    }

    /// RFC 3758 §3.6 (FORWARD TSN with SSNs).
    pub(super) fn forward_tsn(&mut self, f: &ForwardTsn<'_, SkippedStream>) {
        self.tsns.forward_to(f.new_cumulative_tsn);
        self.reassembly.forget_through(f.new_cumulative_tsn);
        for s in f.skipped.iter() {
            self.reassembly.skip_ordered(s.stream, u32::from(s.ssn));
        }
        self.sack_now = true;
    }

    /// RFC 8260 §2.3.2 (I-FORWARD-TSN with MIDs): ordered messages up to
    /// the MID are skipped; an unordered message's fragments held are
    /// dropped. Not by TSN, as for DATA: fragments of messages still
    /// being sent interleave with the abandoned ones, below the new
    /// cumulative TSN too. Fragments that come later are below it, so
    /// taken as duplicates.
    pub(super) fn i_forward_tsn(&mut self, f: &ForwardTsn<'_, SkippedMessage>) {
        self.tsns.forward_to(f.new_cumulative_tsn);
        for s in f.skipped.iter() {
            if s.unordered {
                self.reassembly.forget_unordered(s.stream, s.mid);
            } else {
                self.reassembly.skip_ordered(s.stream, s.mid);
            }
        }
        self.sack_now = true;
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.sack_at.is_some_and(|at| at <= now) {
            self.sack_now = true;
        }
    }

    pub(super) fn timeout(&self) -> Option<Instant> {
        self.sack_at
    }

    /// The last TSN received with all before it (a SHUTDOWN's ack, §9.2).
    pub(super) fn cumulative(&self) -> Tsn {
        self.tsns.cumulative()
    }

    /// RFC 6525 §5.2.2 E3: the peer's outgoing `streams` start over.
    pub(super) fn reset_streams(&mut self, streams: &[u16], reset: impl FnMut(u16)) {
        self.reassembly.reset_streams(streams, reset);
    }

    /// Bytes the receive window has given away (payload and per-chunk
    /// overhead, held or ready).
    pub(super) fn buffered(&self) -> usize {
        self.reassembly.buffered()
    }

    pub(super) fn wants_sack(&self) -> bool {
        self.sack_now
    }

    fn a_rwnd(&self) -> u32 {
        self.window
            .saturating_sub(u32::try_from(self.reassembly.buffered()).unwrap_or(u32::MAX))
    }

    /// The SACK to send; [`Receiver::sack_sent`] once it went out.
    pub(super) fn sack(&mut self) -> Sack<'_> {
        let a_rwnd = self.a_rwnd();
        self.advertised = a_rwnd;
        self.tsns.sack(a_rwnd)
    }

    pub(super) fn sack_sent(&mut self) {
        self.tsns.sack_sent();
        self.sack_now = false;
        self.sack_at = None;
        self.data_packets = 0;
    }

    /// The next message. Once reading has opened a window the peer last
    /// saw (nearly) closed, a SACK tells it so (a window update, §6.2),
    /// rather than leaving it to probe on T3-rtx.
    pub(super) fn poll_message(&mut self) -> Option<Message> {
        let m = self.reassembly.poll_message()?;
        if self.advertised < self.window / 4 && self.a_rwnd() >= self.window / 2 {
            self.sack_now = true;
        }
        Some(m)
    }

    pub(super) fn recycle(&mut self, data: Vec<u8>) {
        self.reassembly.recycle(data);
    }
}
