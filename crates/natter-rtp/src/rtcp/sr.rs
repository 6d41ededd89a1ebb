//! Sender report (RFC 3550 §6.4.1) and the report block it shares with
//! the receiver report.

use super::{check_count, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{put_u24, put_u32, put_u64, u24_at, u32_at, u64_at};

/// RFC 3550 §6.4.1: bytes of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// RFC 3550 §6.4.1: SSRC plus the 20-byte sender info.
const SR_FIXED_LEN: usize = 24;

/// RFC 3550 §6.4.1: reception statistics about one source.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ReportBlock {
    /// SSRC_n, the source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed (duplicates can make it
    /// negative); written clamped to -2^23..=2^23-1.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// LSR: middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// DLSR: delay since that SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    pub(crate) fn parse(b: &[u8]) -> Self {
        let lost = u24_at(b, 5);
        ReportBlock {
            ssrc: u32_at(b, 0),
            fraction_lost: b[4],
            // Sign-extend the 24-bit field.
            cumulative_lost: ((lost << 8) as i32) >> 8,
            extended_highest_seq: u32_at(b, 8),
            jitter: u32_at(b, 12),
            last_sr: u32_at(b, 16),
            delay_since_last_sr: u32_at(b, 20),
        }
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        put_u32(b, 0, self.ssrc);
        b[4] = self.fraction_lost;
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF);
        put_u24(b, 5, lost as u32 & 0xFF_FFFF);
        put_u32(b, 8, self.extended_highest_seq);
        put_u32(b, 12, self.jitter);
        put_u32(b, 16, self.last_sr);
        put_u32(b, 20, self.delay_since_last_sr);
    }
}

pub(crate) fn report_blocks(b: &[u8]) -> impl ExactSizeIterator<Item = ReportBlock> + Clone + '_ {
    b.chunks_exact(REPORT_BLOCK_LEN).map(ReportBlock::parse)
}

pub(crate) fn write_report_blocks(buf: &mut [u8], blocks: &[ReportBlock]) {
    for (i, rb) in blocks.iter().enumerate() {
        rb.write(&mut buf[i * REPORT_BLOCK_LEN..]);
    }
}

/// RFC 3550 §6.4.1: the sender information section.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (32.32) of this report.
    pub ntp_timestamp: u64,
    /// The same instant in the stream's RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent since the stream started.
    pub packet_count: u32,
    /// Payload octets sent since the stream started.
    pub octet_count: u32,
}

/// A received sender report (PT=200), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SenderReport<'a> {
    /// SSRC of the sender.
    pub ssrc: u32,
    pub sender_info: SenderInfo,
    blocks: &'a [u8],
    /// Profile-specific extension after the report blocks.
    pub profile_extension: &'a [u8],
}

impl<'a> SenderReport<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let b = raw.body;
        let needed = SR_FIXED_LEN + REPORT_BLOCK_LEN * usize::from(raw.count);
        if b.len() < needed {
            return Err(raw.truncated("sender report", needed));
        }
        Ok(SenderReport {
            ssrc: u32_at(b, 0),
            sender_info: SenderInfo {
                ntp_timestamp: u64_at(b, 4),
                rtp_timestamp: u32_at(b, 12),
                packet_count: u32_at(b, 16),
                octet_count: u32_at(b, 20),
            },
            blocks: &b[SR_FIXED_LEN..needed],
            profile_extension: &b[needed..],
        })
    }

    /// The report blocks, RC of them.
    pub fn report_blocks(&self) -> impl ExactSizeIterator<Item = ReportBlock> + Clone + 'a {
        report_blocks(self.blocks)
    }
}

/// Builds a sender report.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SenderReportBuilder<'a> {
    pub ssrc: u32,
    pub sender_info: SenderInfo,
    /// At most 31.
    pub report_blocks: &'a [ReportBlock],
    /// A multiple of 4 bytes; usually empty.
    pub profile_extension: &'a [u8],
}

impl RtcpEncode for SenderReportBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + SR_FIXED_LEN + REPORT_BLOCK_LEN * self.report_blocks.len() + self.profile_extension.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let count = check_count("report blocks", self.report_blocks.len())?;
        if self.profile_extension.len() % 4 != 0 {
            return Err(Error::InvalidInput {
                what: "sender report",
                reason: "profile extension is not a multiple of 4 bytes",
            });
        }
        let len = self.encoded_len();
        write_header(buf, count, packet_type::SR, len)?;
        let b = &mut buf[HEADER_LEN..len];
        put_u32(b, 0, self.ssrc);
        put_u64(b, 4, self.sender_info.ntp_timestamp);
        put_u32(b, 12, self.sender_info.rtp_timestamp);
        put_u32(b, 16, self.sender_info.packet_count);
        put_u32(b, 20, self.sender_info.octet_count);
        write_report_blocks(&mut b[SR_FIXED_LEN..], self.report_blocks);
        let ext_at = SR_FIXED_LEN + REPORT_BLOCK_LEN * self.report_blocks.len();
        b[ext_at..].copy_from_slice(self.profile_extension);
        Ok(len)
    }
}
