//! The reception statistics of one source (RFC 3550 §6.4.1, Appendix
//! A.1, A.3 and A.8): highest sequence number, loss, interarrival
//! jitter, and the last sender report, which make a report block.
//!
//! One deliberate difference from the RFC: §6.4.1 counts late and
//! duplicated packets as received, so that loss "may be negative if
//! there are duplicates". Browsers send many duplicates on purpose:
//! Firefox probes bandwidth with RTX copies of packets that were not
//! lost, Chromium pads with them. Counted as the RFC says, they hide
//! real loss and drive it below zero, which our reports would then tell
//! the sender. So a sequence number counts once, whichever way it came
//! (media, RTX, padding); further copies are counted as duplicates. The
//! loss is then exactly the sequence numbers that never arrived.

use std::time::{Duration, Instant};

use natter_rtp::rtcp::ReportBlock;
use natter_rtp::SeqUnwrapper;

use super::ntp::{middle_32, to_short};

/// RFC 3550 §6.4.1: cumulative loss is a signed 24-bit field.
const MAX_CUMULATIVE_LOST: i64 = 0x7F_FFFF;
const MIN_CUMULATIVE_LOST: i64 = -0x80_0000;

/// Sequence numbers behind the highest whose arrival is remembered, to
/// tell a duplicate from a late packet: well beyond the reorder buffer
/// and the NACK window, so anything older is of no use to the decoder.
const ARRIVAL_WINDOW: u64 = 1024;
const ARRIVAL_WORDS: usize = (ARRIVAL_WINDOW / 64) as usize;

/// How a packet of the stream came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// On the stream's own SSRC, with a payload.
    Media,
    /// Unwrapped from RTX (RFC 4588 §4).
    Retransmission,
    /// On the stream's own SSRC with no payload, only RTP padding
    /// (RFC 3550 §5.1): a bandwidth probe, which takes a sequence
    /// number of the stream but carries no media.
    Padding,
}

/// A sender report as it arrived (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedSenderReport {
    /// Its NTP timestamp and the RTP timestamp of the same instant.
    pub ntp: u64,
    pub rtp: u32,
    pub arrival: Instant,
}

/// What one source sent us, counted as RFC 3550 Appendix A asks.
#[derive(Clone, Debug)]
pub struct ReceiveStream {
    ssrc: u32,
    clock_rate: u32,
    seq: SeqUnwrapper,
    base: Option<u64>,
    max: u64,
    /// Which of the last [`ARRIVAL_WINDOW`] sequence numbers arrived, by
    /// extended sequence number modulo the window.
    arrivals: [u64; ARRIVAL_WORDS],
    /// Sequence numbers that arrived, each once, padding included.
    received: u64,
    padding: u64,
    duplicates: u64,
    expected_prior: u64,
    received_prior: u64,
    epoch: Option<Instant>,
    last_transit: Option<u32>,
    /// In timestamp units, scaled by 16 as in Appendix A.8.
    jitter_q4: u64,
    last_sr: Option<ReceivedSenderReport>,
}

impl ReceiveStream {
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        ReceiveStream {
            ssrc,
            clock_rate: clock_rate.max(1),
            seq: SeqUnwrapper::new(),
            base: None,
            max: 0,
            arrivals: [0; ARRIVAL_WORDS],
            received: 0,
            padding: 0,
            duplicates: 0,
            expected_prior: 0,
            received_prior: 0,
            epoch: None,
            last_transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Counts a packet and returns its extended sequence number, if it
    /// is the first to arrive with it; `None` for a duplicate, for one
    /// [`ARRIVAL_WINDOW`] or more behind the highest (counted as
    /// duplicates), and for one from before the first packet. Only media that came the first time feeds the
    /// jitter: a retransmission's or a probe's arrival time says nothing
    /// about the path's variation.
    pub fn on_packet(&mut self, now: Instant, sequence_number: u16, timestamp: u32, arrival: Arrival) -> Option<u64> {
        let seq = self.seq.unwrap(sequence_number)?;
        let base = *self.base.get_or_insert(seq);
        if seq < base {
            return None;
        }
        if !self.mark_arrived(base, seq) {
            self.duplicates += 1;
            return None;
        }
        self.received += 1;
        match arrival {
            Arrival::Padding => self.padding += 1,
            Arrival::Retransmission => {}
            Arrival::Media => self.update_jitter(now, timestamp),
        }
        Some(seq)
    }

    /// Notes that `seq` arrived; false if it had already, or if it is
    /// too old to tell.
    fn mark_arrived(&mut self, base: u64, seq: u64) -> bool {
        if seq == base && self.received == 0 {
            self.max = seq;
        } else if seq > self.max {
            if seq - self.max >= ARRIVAL_WINDOW {
                self.arrivals = [0; ARRIVAL_WORDS];
            } else {
                for skipped in self.max + 1..seq {
                    self.set_arrival(skipped, false);
                }
            }
            self.max = seq;
        } else if self.max - seq >= ARRIVAL_WINDOW || self.arrived(seq) {
            return false;
        }
        self.set_arrival(seq, true);
        true
    }

    fn arrived(&self, seq: u64) -> bool {
        let bit = seq % ARRIVAL_WINDOW;
        self.arrivals[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    fn set_arrival(&mut self, seq: u64, arrived: bool) {
        let bit = seq % ARRIVAL_WINDOW;
        let word = &mut self.arrivals[(bit / 64) as usize];
        if arrived {
            *word |= 1 << (bit % 64);
        } else {
            *word &= !(1 << (bit % 64));
        }
    }

    /// RFC 3550 Appendix A.8.
    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.saturating_duration_since(epoch).as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        // Differences of transit times, modulo 2^32.
        let transit = (arrival as u32).wrapping_sub(timestamp);
        if let Some(last) = self.last_transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Notes a sender report of this source (for LSR and DLSR).
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64, rtp: u32) {
        self.last_sr = Some(ReceivedSenderReport { ntp, rtp, arrival: now });
    }

    pub fn last_sender_report(&self) -> Option<ReceivedSenderReport> {
        self.last_sr
    }

    /// Packets that carried media, each sequence number once, repairs
    /// included; not padding, not duplicates.
    pub fn packets_received(&self) -> u64 {
        self.received - self.padding
    }

    /// Padding-only packets (bandwidth probes on the media SSRC).
    pub fn padding_received(&self) -> u64 {
        self.padding
    }

    /// Copies of a packet that had already arrived, such as RTX probes,
    /// and packets too late to tell ([`ARRIVAL_WINDOW`] behind).
    pub fn duplicates_received(&self) -> u64 {
        self.duplicates
    }

    /// Expected minus arrived, since the first packet: the sequence
    /// numbers that never came, by any path.
    pub fn packets_lost(&self) -> i64 {
        let Some(base) = self.base else { return 0 };
        (self.max - base + 1) as i64 - self.received as i64
    }

    /// The interarrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64((self.jitter_q4 >> 4) as f64 / f64::from(self.clock_rate))
    }

    /// The report block for this source at `now` (RFC 3550 §6.4.1);
    /// starts the next interval of the fraction lost.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let base = self.base?;
        let expected = self.max - base + 1;
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some(sr) => (middle_32(sr.ntp), to_short(now.saturating_duration_since(sr.arrival))),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.packets_lost().clamp(MIN_CUMULATIVE_LOST, MAX_CUMULATIVE_LOST) as i32,
            extended_highest_seq: self.max as u32,
            jitter: (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32,
            last_sr,
            delay_since_last_sr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_and_the_fraction_of_each_interval() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(7, 90_000);
        for seq in (65_530..=65_535).chain(0..4).filter(|&s| s != 65_533 && s != 1) {
            s.on_packet(t0, seq, 0, Arrival::Media);
        }
        let block = s.report_block(t0).unwrap();
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.extended_highest_seq, 65_536 + 3);
        assert_eq!(block.fraction_lost, (2 * 256 / 10) as u8);
        s.on_packet(t0, 4, 0, Arrival::Media);
        let block = s.report_block(t0).unwrap();
        assert_eq!(block.fraction_lost, 0);
        // A late packet makes up for one counted lost.
        s.on_packet(t0, 1, 0, Arrival::Retransmission);
        assert_eq!(s.packets_lost(), 1);
    }

    #[test]
    fn jitter_follows_appendix_a8() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 1000);
        // Packets 20 ms apart in RTP time arrive 20 and 30 ms apart.
        s.on_packet(t0, 0, 0, Arrival::Media);
        s.on_packet(t0 + Duration::from_millis(20), 1, 20, Arrival::Media);
        s.on_packet(t0 + Duration::from_millis(50), 2, 40, Arrival::Media);
        // D = 10 ticks: J = 10/16.
        assert_eq!(s.jitter_q4, 10);
        assert_eq!(s.report_block(t0).unwrap().jitter, 0);
    }

    #[test]
    fn a_block_echoes_the_last_sender_report() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 48_000);
        s.on_packet(t0, 0, 0, Arrival::Media);
        s.on_sender_report(t0, 0x0001_0002_0003_0004, 0);
        let block = s.report_block(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sr, 0x0002_0003);
        assert_eq!(block.delay_since_last_sr, 32_768);
    }

    /// Media packets `seqs` at `t0`.
    fn media(s: &mut ReceiveStream, t0: Instant, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            s.on_packet(t0, seq, 0, Arrival::Media);
        }
    }

    #[test]
    fn rtx_copies_of_packets_that_arrived_are_duplicates_not_received() {
        // Firefox's RTX bandwidth probes: retransmissions of packets
        // that were not lost.
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(7, 90_000);
        media(&mut s, t0, 0..10);
        for seq in [3, 4, 5, 5, 9] {
            assert_eq!(s.on_packet(t0, seq, 0, Arrival::Retransmission), None);
        }
        assert_eq!(s.on_packet(t0, 9, 0, Arrival::Media), None, "a plain duplicate too");
        assert_eq!(s.packets_received(), 10);
        assert_eq!(s.duplicates_received(), 6);
        assert_eq!(s.packets_lost(), 0);
        let block = s.report_block(t0).unwrap();
        assert_eq!((block.cumulative_lost, block.fraction_lost), (0, 0));
    }

    #[test]
    fn padding_only_packets_take_their_sequence_numbers_but_are_not_media() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(7, 90_000);
        media(&mut s, t0, 0..5);
        for seq in 5..10 {
            assert_eq!(s.on_packet(t0, seq, 0, Arrival::Padding), Some(u64::from(seq)));
        }
        assert_eq!(s.on_packet(t0, 7, 0, Arrival::Padding), None, "a probe sent twice");
        media(&mut s, t0, 10..12);
        assert_eq!(s.packets_received(), 7);
        assert_eq!(s.padding_received(), 5);
        assert_eq!(s.duplicates_received(), 1);
        assert_eq!(s.packets_lost(), 0, "padding is not lost either");
        assert_eq!(s.report_block(t0).unwrap().cumulative_lost, 0);
    }

    #[test]
    fn a_loss_repaired_by_rtx_fills_its_hole_once_and_the_loss_stays_true() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(7, 90_000);
        media(&mut s, t0, (0..20).filter(|seq| !(5..8).contains(seq) && *seq != 15));
        assert_eq!(s.packets_lost(), 4);
        assert_eq!(s.on_packet(t0, 5, 0, Arrival::Retransmission), Some(5));
        assert_eq!(s.packets_lost(), 3);
        // The same repair again, and an RTX probe of a packet that came.
        assert_eq!(s.on_packet(t0, 5, 0, Arrival::Retransmission), None);
        assert_eq!(s.on_packet(t0, 8, 0, Arrival::Retransmission), None);
        assert_eq!(s.packets_lost(), 3);
        s.on_packet(t0, 6, 0, Arrival::Retransmission);
        s.on_packet(t0, 7, 0, Arrival::Retransmission);
        // 15 was never repaired.
        assert_eq!(s.packets_lost(), 1);
        assert_eq!(s.packets_received(), 19);
        let block = s.report_block(t0).unwrap();
        assert_eq!(block.cumulative_lost, 1);
        assert_eq!(block.fraction_lost, (256 / 20) as u8);
    }

    #[test]
    fn arrivals_are_remembered_across_the_wrap_and_forgotten_past_the_window() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(7, 90_000);
        media(&mut s, t0, 65_000..=65_535);
        media(&mut s, t0, 0..100);
        assert_eq!(s.on_packet(t0, 65_500, 0, Arrival::Retransmission), None);
        assert_eq!(s.on_packet(t0, 50, 0, Arrival::Retransmission), None);
        // A jump past the window: what came before it cannot be told
        // apart any more, and counts no longer.
        media(&mut s, t0, [2000]);
        assert_eq!(s.on_packet(t0, 99, 0, Arrival::Retransmission), None);
        assert_eq!(s.packets_lost(), 1900);
        // Inside the new window, holes are still holes.
        assert_eq!(s.on_packet(t0, 1500, 0, Arrival::Retransmission), Some(65_536 + 1500));
        assert_eq!(s.packets_lost(), 1899);
        assert_eq!(s.duplicates_received(), 3);
    }
}
