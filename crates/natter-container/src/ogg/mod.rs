//! Ogg (RFC 3533): a physical stream of pages, each carrying pieces of
//! the packets of one logical stream.
//!
//! [`Page`] is one page parsed from bytes (CRC checked) and
//! [`PageReader`] reads them from an `impl Read`; [`PacketReader`] puts
//! the packets of one logical stream back together across pages, and
//! [`PacketWriter`] cuts packets into pages. The codec inside is the
//! business of the layer above (Opus: [`crate::opus`]). Not here:
//! resynchronising after a damaged page (RFC 3533 §6 allows a decoder
//! to seek the next capture pattern), and chained streams, which the
//! packet reader sees as pages of other streams and skips.

mod crc;
mod packet;
mod page;

pub use packet::{Packet, PacketReader, PacketWriter, DEFAULT_PAGE_SIZE};
pub use page::{
    Page, PagePackets, PageReader, CAPTURE_PATTERN, FLAG_BOS, FLAG_CONTINUED, FLAG_EOS, MAX_SEGMENTS, NO_GRANULE,
    PAGE_HEADER_LEN,
};
