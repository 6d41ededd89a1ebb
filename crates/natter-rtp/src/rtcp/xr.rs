//! Extended reports (RFC 3611): the XR packet and the two blocks WebRTC
//! uses for receiver-side RTT, RRTR (§4.4) and DLRR (§4.5).

use super::{packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{put_u16, put_u32, put_u64, u16_at, u32_at, u64_at};

/// RFC 3611 §4.4: Receiver Reference Time block type.
pub const BT_RRTR: u8 = 4;
/// RFC 3611 §4.5: DLRR block type.
pub const BT_DLRR: u8 = 5;

/// RFC 3611 §4.5: one DLRR sub-block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct DlrrItem {
    /// The receiver whose RRTR this answers.
    pub ssrc: u32,
    /// LRR: middle 32 bits of that RRTR's NTP timestamp.
    pub last_rr: u32,
    /// DLRR: delay since it in 1/65536 s.
    pub delay_since_last_rr: u32,
}

/// One report block of a received XR.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XrBlock<'a> {
    /// RFC 3611 §4.4: the receiver's NTP timestamp.
    Rrtr { ntp_timestamp: u64 },
    /// RFC 3611 §4.5: sub-blocks answering RRTRs.
    Dlrr(Dlrr<'a>),
    /// Any other block type, raw.
    Other {
        block_type: u8,
        type_specific: u8,
        data: &'a [u8],
    },
}

/// A DLRR block's sub-blocks, borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Dlrr<'a> {
    data: &'a [u8],
}

impl<'a> Dlrr<'a> {
    pub fn items(&self) -> impl ExactSizeIterator<Item = DlrrItem> + Clone + 'a {
        self.data.chunks_exact(12).map(|c| DlrrItem {
            ssrc: u32_at(c, 0),
            last_rr: u32_at(c, 4),
            delay_since_last_rr: u32_at(c, 8),
        })
    }
}

/// A received XR (PT=207), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtendedReport<'a> {
    /// SSRC of the packet's originator.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ExtendedReport<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let b = raw.body;
        if b.len() < 4 {
            return Err(raw.truncated("XR", 4));
        }
        let mut it = XrBlocks { data: &b[4..] };
        while let Some(block) = it.next_block() {
            block.map_err(|reason| raw.invalid("XR", reason))?;
        }
        Ok(ExtendedReport {
            ssrc: u32_at(b, 0),
            blocks: &b[4..],
        })
    }

    pub fn blocks(&self) -> XrBlocks<'a> {
        XrBlocks { data: self.blocks }
    }
}

/// Iterator over an XR's report blocks (validated at parse).
#[derive(Clone, Debug)]
pub struct XrBlocks<'a> {
    data: &'a [u8],
}

impl<'a> XrBlocks<'a> {
    fn next_block(&mut self) -> Option<Result<XrBlock<'a>, &'static str>> {
        if self.data.is_empty() {
            return None;
        }
        let d = self.data;
        self.data = &[];
        if d.len() < 4 {
            return Some(Err("block header runs past the packet"));
        }
        let len = 4 * (usize::from(u16_at(d, 2)) + 1);
        if len > d.len() {
            return Some(Err("block length runs past the packet"));
        }
        let data = &d[4..len];
        self.data = &d[len..];
        Some(match d[0] {
            BT_RRTR if data.len() == 8 => Ok(XrBlock::Rrtr {
                ntp_timestamp: u64_at(data, 0),
            }),
            BT_RRTR => Err("RRTR block length is not 2"),
            BT_DLRR if data.len() % 12 == 0 => Ok(XrBlock::Dlrr(Dlrr { data })),
            BT_DLRR => Err("DLRR block length is not a multiple of 3"),
            block_type => Ok(XrBlock::Other {
                block_type,
                type_specific: d[1],
                data,
            }),
        })
    }
}

impl<'a> Iterator for XrBlocks<'a> {
    type Item = XrBlock<'a>;

    fn next(&mut self) -> Option<XrBlock<'a>> {
        self.next_block()?.ok()
    }
}

/// A report block to write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XrReport<'a> {
    Rrtr { ntp_timestamp: u64 },
    Dlrr(&'a [DlrrItem]),
}

impl XrReport<'_> {
    fn encoded_len(&self) -> usize {
        match self {
            XrReport::Rrtr { .. } => 12,
            XrReport::Dlrr(items) => 4 + 12 * items.len(),
        }
    }
}

/// Builds an XR from report blocks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ExtendedReportBuilder<'a> {
    pub ssrc: u32,
    pub reports: &'a [XrReport<'a>],
}

impl RtcpEncode for ExtendedReportBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 4 + self.reports.iter().map(XrReport::encoded_len).sum::<usize>()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.encoded_len();
        for r in self.reports {
            if let XrReport::Dlrr(items) = r {
                if 3 * items.len() > usize::from(u16::MAX) {
                    return Err(Error::TooMany {
                        what: "DLRR sub-blocks",
                        count: items.len(),
                        max: usize::from(u16::MAX) / 3,
                    });
                }
            }
        }
        write_header(buf, 0, packet_type::XR, len)?;
        put_u32(buf, 4, self.ssrc);
        let mut at = 8;
        for r in self.reports {
            match r {
                XrReport::Rrtr { ntp_timestamp } => {
                    buf[at] = BT_RRTR;
                    buf[at + 1] = 0;
                    put_u16(buf, at + 2, 2);
                    put_u64(buf, at + 4, *ntp_timestamp);
                }
                XrReport::Dlrr(items) => {
                    buf[at] = BT_DLRR;
                    buf[at + 1] = 0;
                    // Checked above to fit 16 bits.
                    put_u16(buf, at + 2, (3 * items.len()) as u16);
                    for (i, item) in items.iter().enumerate() {
                        let s = at + 4 + 12 * i;
                        put_u32(buf, s, item.ssrc);
                        put_u32(buf, s + 4, item.last_rr);
                        put_u32(buf, s + 8, item.delay_since_last_rr);
                    }
                }
            }
            at += r.encoded_len();
        }
        Ok(len)
    }
}
