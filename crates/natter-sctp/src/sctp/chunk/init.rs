//! INIT (RFC 9260 §3.3.2) and INIT ACK (§3.3.3), which share one layout.

use crate::sctp::error::WireError;
use crate::sctp::param::Param;
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{put_u16, put_u32, u16_at, u32_at, TlvList};

/// The body of an INIT or INIT ACK chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Init<'a> {
    /// The tag the receiver puts in every packet it sends to the sender.
    pub initiate_tag: u32,
    /// Advertised receiver window credit, in bytes.
    pub a_rwnd: u32,
    pub outbound_streams: u16,
    pub inbound_streams: u16,
    pub initial_tsn: Tsn,
    /// Optional and variable-length parameters (State Cookie in an INIT
    /// ACK, Supported Extensions, Forward-TSN-Supported, Zero Checksum
    /// Acceptable, ...).
    pub params: TlvList<'a, Param<'a>>,
}

impl<'a> Init<'a> {
    pub(crate) fn parse(ty: u8, v: &'a [u8]) -> Result<Self, WireError> {
        if v.len() < 16 {
            return Err(WireError::Chunk {
                ty,
                what: "shorter than its 20-byte fixed part",
            });
        }
        Ok(Init {
            initiate_tag: u32_at(v, 0),
            a_rwnd: u32_at(v, 4),
            outbound_streams: u16_at(v, 8),
            inbound_streams: u16_at(v, 10),
            initial_tsn: Tsn(u32_at(v, 12)),
            params: TlvList::parse(&v[16..])?,
        })
    }

    /// The State Cookie parameter of an INIT ACK.
    pub fn state_cookie(&self) -> Option<&'a [u8]> {
        self.params.iter().find_map(|p| match p {
            Param::StateCookie(c) => Some(c),
            _ => None,
        })
    }

    /// Whether the Supported Extensions parameter lists `chunk_type`
    /// (RFC 5061 §4.2.7).
    pub fn supports_chunk(&self, chunk_type: u8) -> bool {
        self.params
            .iter()
            .any(|p| matches!(p, Param::SupportedExtensions(types) if types.contains(&chunk_type)))
    }

    /// RFC 3758 §3.1: the sender understands FORWARD TSN.
    pub fn forward_tsn_supported(&self) -> bool {
        self.params.iter().any(|p| matches!(p, Param::ForwardTsnSupported))
    }

    /// RFC 9653 §4: the sender accepts zero checksums with this method.
    pub fn zero_checksum_edmid(&self) -> Option<u32> {
        self.params.iter().find_map(|p| match p {
            Param::ZeroChecksumAcceptable { edmid } => Some(edmid),
            _ => None,
        })
    }

    pub(crate) fn value_len(&self) -> usize {
        16 + self.params.wire_len()
    }

    pub(crate) fn write_value(&self, out: &mut [u8]) {
        put_u32(out, 0, self.initiate_tag);
        put_u32(out, 4, self.a_rwnd);
        put_u16(out, 8, self.outbound_streams);
        put_u16(out, 10, self.inbound_streams);
        put_u32(out, 12, self.initial_tsn.0);
        self.params.write(&mut out[16..]);
    }
}
