//! Open Bitstream Units (AV1 Bitstream Specification §5.3): the OBU
//! header and its extension, leb128 sizes (§4.10.5), and the OBUs of a
//! temporal unit in the low overhead bitstream format (§5.2), the form
//! IVF and the RTP reassembler hand out.

use crate::payload::PayloadError;

/// AV1 §4.10.5: a leb128 value takes at most 8 bytes.
const LEB128_MAX_BYTES: usize = 8;
/// AV1 §5.3.1: obu_has_size_field in the OBU header byte.
pub(super) const HAS_SIZE_FIELD: u8 = 0x02;
/// AV1 §5.3.1: obu_extension_flag in the OBU header byte.
const EXTENSION_FLAG: u8 = 0x04;

/// AV1 §4.10.5: reads a leb128 value at the start of `data`; returns it
/// and its length, or `None` if it is cut off, longer than 8 bytes or
/// above 2^32 - 1 (which the specification forbids).
pub fn read_leb128(data: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().take(LEB128_MAX_BYTES).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

/// Bytes [`write_leb128`] takes for `value`.
pub fn leb128_len(value: u32) -> usize {
    let bits = (u32::BITS - value.leading_zeros()).max(1);
    bits.div_ceil(7) as usize
}

/// Writes `value` as leb128 in the fewest bytes (at most 5) at the
/// start of `out`, which holds at least [`leb128_len`] bytes; returns
/// the length.
pub fn write_leb128(value: u32, out: &mut [u8]) -> usize {
    let len = leb128_len(value);
    for (i, byte) in out[..len].iter_mut().enumerate() {
        let more = if i + 1 < len { 0x80 } else { 0 };
        *byte = (value >> (7 * i)) as u8 & 0x7F | more;
    }
    len
}

/// AV1 §6.2.2, Table obu_type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObuType {
    SequenceHeader,
    TemporalDelimiter,
    FrameHeader,
    TileGroup,
    Metadata,
    Frame,
    RedundantFrameHeader,
    TileList,
    Padding,
    /// 0 and 9 to 14.
    Reserved(u8),
}

impl ObuType {
    pub fn from_bits(v: u8) -> Self {
        match v & 0x0F {
            1 => ObuType::SequenceHeader,
            2 => ObuType::TemporalDelimiter,
            3 => ObuType::FrameHeader,
            4 => ObuType::TileGroup,
            5 => ObuType::Metadata,
            6 => ObuType::Frame,
            7 => ObuType::RedundantFrameHeader,
            8 => ObuType::TileList,
            15 => ObuType::Padding,
            other => ObuType::Reserved(other),
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            ObuType::SequenceHeader => 1,
            ObuType::TemporalDelimiter => 2,
            ObuType::FrameHeader => 3,
            ObuType::TileGroup => 4,
            ObuType::Metadata => 5,
            ObuType::Frame => 6,
            ObuType::RedundantFrameHeader => 7,
            ObuType::TileList => 8,
            ObuType::Padding => 15,
            ObuType::Reserved(v) => v & 0x0F,
        }
    }

    /// AV1 RTP §5: temporal delimiters and tile lists are not sent, and
    /// receivers ignore them.
    pub(super) fn travels_over_rtp(self) -> bool {
        !matches!(self, ObuType::TemporalDelimiter | ObuType::TileList)
    }

    /// A frame header OBU or a frame OBU, which opens with one.
    pub(super) fn has_frame_header(self) -> bool {
        matches!(self, ObuType::FrameHeader | ObuType::Frame)
    }
}

/// AV1 §5.3.3: the OBU extension header, naming the OBU's layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObuExtension {
    /// 0..=7.
    pub temporal_id: u8,
    /// 0..=3.
    pub spatial_id: u8,
}

/// AV1 §5.3.2: the OBU header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObuHeader {
    pub obu_type: ObuType,
    pub extension: Option<ObuExtension>,
    /// obu_has_size_field: obu_size follows the header.
    pub has_size_field: bool,
}

impl ObuHeader {
    /// Reads the header at the start of `data`; returns it and its
    /// length (1, or 2 with the extension). `offset` places `data` in
    /// what the caller reads, for the error.
    pub fn parse(data: &[u8], offset: usize) -> Result<(Self, usize), PayloadError> {
        let bad = |reason| PayloadError::Av1Obu { offset, reason };
        let &first = data.first().ok_or(bad("no OBU header"))?;
        if first & 0x80 != 0 {
            return Err(bad("obu_forbidden_bit is set"));
        }
        let mut header = ObuHeader {
            obu_type: ObuType::from_bits(first >> 3),
            extension: None,
            has_size_field: first & HAS_SIZE_FIELD != 0,
        };
        if first & EXTENSION_FLAG == 0 {
            return Ok((header, 1));
        }
        let &ext = data.get(1).ok_or(bad("the OBU extension header is missing"))?;
        header.extension = Some(ObuExtension {
            temporal_id: ext >> 5,
            spatial_id: ext >> 3 & 3,
        });
        Ok((header, 2))
    }

    /// The header's bytes with obu_has_size_field set as `has_size_field`
    /// says, and their length.
    pub fn encode(&self) -> ([u8; 2], usize) {
        let mut out = [0u8; 2];
        out[0] = self.obu_type.bits() << 3 | u8::from(self.has_size_field) << 1;
        match self.extension {
            Some(e) => {
                out[0] |= EXTENSION_FLAG;
                out[1] = (e.temporal_id & 7) << 5 | (e.spatial_id & 3) << 3;
                (out, 2)
            }
            None => (out, 1),
        }
    }
}

/// One OBU, borrowed from its temporal unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    pub header: ObuHeader,
    /// The OBU's data after its header and size field.
    pub payload: &'a [u8],
}

/// The OBUs of a temporal unit in the low overhead bitstream format
/// (AV1 §5.2): each with its size field, except that the last may go
/// without one and take the rest. An OBU whose size overruns the data
/// is an error, and ends the iteration.
#[derive(Clone, Debug)]
pub struct Obus<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Obus<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Obus { data, pos: 0 }
    }

    fn read(&mut self) -> Result<Obu<'a>, PayloadError> {
        let at = self.pos;
        let rest = &self.data[at..];
        let (header, header_len) = ObuHeader::parse(rest, at)?;
        let (size, size_len) = if header.has_size_field {
            let (size, n) = read_leb128(&rest[header_len..]).ok_or(PayloadError::Av1Obu {
                offset: at,
                reason: "obu_size is cut off or too large",
            })?;
            (size as usize, n)
        } else {
            (rest.len() - header_len, 0)
        };
        let start = header_len + size_len;
        let payload = rest.get(start..start + size).ok_or(PayloadError::Av1Obu {
            offset: at,
            reason: "obu_size overruns the temporal unit",
        })?;
        self.pos = at + start + size;
        Ok(Obu { header, payload })
    }
}

impl<'a> Iterator for Obus<'a> {
    type Item = Result<Obu<'a>, PayloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let obu = self.read();
        if obu.is_err() {
            self.pos = self.data.len();
        }
        Some(obu)
    }
}
