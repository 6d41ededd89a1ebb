//! Receiver report (RFC 3550 §6.4.2).

use super::sr::{report_blocks, write_report_blocks, REPORT_BLOCK_LEN};
use super::{check_count, packet_type, write_header, RawRtcp, ReportBlock, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{put_u32, u32_at};

/// A received receiver report (PT=201), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReceiverReport<'a> {
    /// SSRC of the packet sender.
    pub ssrc: u32,
    blocks: &'a [u8],
    /// Profile-specific extension after the report blocks.
    pub profile_extension: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let b = raw.body;
        let needed = 4 + REPORT_BLOCK_LEN * usize::from(raw.count);
        if b.len() < needed {
            return Err(raw.truncated("receiver report", needed));
        }
        Ok(ReceiverReport {
            ssrc: u32_at(b, 0),
            blocks: &b[4..needed],
            profile_extension: &b[needed..],
        })
    }

    /// The report blocks, RC of them.
    pub fn report_blocks(&self) -> impl ExactSizeIterator<Item = ReportBlock> + Clone + 'a {
        report_blocks(self.blocks)
    }
}

/// Builds a receiver report; with no blocks it is the empty RR that
/// starts a compound packet from a participant that receives nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReceiverReportBuilder<'a> {
    pub ssrc: u32,
    /// At most 31.
    pub report_blocks: &'a [ReportBlock],
    /// A multiple of 4 bytes; usually empty.
    pub profile_extension: &'a [u8],
}

impl RtcpEncode for ReceiverReportBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 4 + REPORT_BLOCK_LEN * self.report_blocks.len() + self.profile_extension.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let count = check_count("report blocks", self.report_blocks.len())?;
        if self.profile_extension.len() % 4 != 0 {
            return Err(Error::InvalidInput {
                what: "receiver report",
                reason: "profile extension is not a multiple of 4 bytes",
            });
        }
        let len = self.encoded_len();
        write_header(buf, count, packet_type::RR, len)?;
        let b = &mut buf[HEADER_LEN..len];
        put_u32(b, 0, self.ssrc);
        write_report_blocks(&mut b[4..], self.report_blocks);
        let ext_at = 4 + REPORT_BLOCK_LEN * self.report_blocks.len();
        b[ext_at..].copy_from_slice(self.profile_extension);
        Ok(len)
    }
}
