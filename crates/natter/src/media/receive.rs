//! The reception statistics of one source (RFC 3550 §6.4.1, Appendix
//! A.1, A.3 and A.8): highest sequence number, loss, interarrival
//! jitter, and the last sender report, which make a report block.

use std::time::{Duration, Instant};

use natter_rtp::rtcp::ReportBlock;
use natter_rtp::SeqUnwrapper;

use super::ntp::{middle_32, to_short};

/// RFC 3550 §6.4.1: cumulative loss is a signed 24-bit field.
const MAX_CUMULATIVE_LOST: i64 = 0x7F_FFFF;
const MIN_CUMULATIVE_LOST: i64 = -0x80_0000;

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
    received: u64,
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
            received: 0,
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

    /// Counts a packet and returns its extended sequence number; `None`
    /// for one from before the first. A retransmission counts but does
    /// not feed the jitter, whose arrival time it would distort.
    pub fn on_packet(
        &mut self,
        now: Instant,
        sequence_number: u16,
        timestamp: u32,
        retransmission: bool,
    ) -> Option<u64> {
        let seq = self.seq.unwrap(sequence_number)?;
        let base = *self.base.get_or_insert(seq);
        if seq < base {
            return None;
        }
        self.max = self.max.max(seq);
        self.received += 1;
        if !retransmission {
            let epoch = *self.epoch.get_or_insert(now);
            let arrival = now.saturating_duration_since(epoch).as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
            // Appendix A.8: differences of transit times, modulo 2^32.
            let transit = (arrival as u32).wrapping_sub(timestamp);
            if let Some(last) = self.last_transit {
                let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
                // J += (|D| - J) / 16, kept scaled by 16.
                self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
            }
            self.last_transit = Some(transit);
        }
        Some(seq)
    }

    /// Notes a sender report of this source (for LSR and DLSR).
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64, rtp: u32) {
        self.last_sr = Some(ReceivedSenderReport { ntp, rtp, arrival: now });
    }

    pub fn last_sender_report(&self) -> Option<ReceivedSenderReport> {
        self.last_sr
    }

    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// Expected minus received, since the first packet.
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
            s.on_packet(t0, seq, 0, false);
        }
        let block = s.report_block(t0).unwrap();
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.extended_highest_seq, 65_536 + 3);
        assert_eq!(block.fraction_lost, (2 * 256 / 10) as u8);
        s.on_packet(t0, 4, 0, false);
        let block = s.report_block(t0).unwrap();
        assert_eq!(block.fraction_lost, 0);
        // A late packet makes up for one counted lost.
        s.on_packet(t0, 1, 0, true);
        assert_eq!(s.packets_lost(), 1);
    }

    #[test]
    fn jitter_follows_appendix_a8() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 1000);
        // Packets 20 ms apart in RTP time arrive 20 and 30 ms apart.
        s.on_packet(t0, 0, 0, false);
        s.on_packet(t0 + Duration::from_millis(20), 1, 20, false);
        s.on_packet(t0 + Duration::from_millis(50), 2, 40, false);
        // D = 10 ticks: J = 10/16.
        assert_eq!(s.jitter_q4, 10);
        assert_eq!(s.report_block(t0).unwrap().jitter, 0);
    }

    #[test]
    fn a_block_echoes_the_last_sender_report() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 48_000);
        s.on_packet(t0, 0, 0, false);
        s.on_sender_report(t0, 0x0001_0002_0003_0004, 0);
        let block = s.report_block(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sr, 0x0002_0003);
        assert_eq!(block.delay_since_last_sr, 32_768);
    }
}
