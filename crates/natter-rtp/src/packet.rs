//! The RTP fixed header (RFC 3550 §5.1, §5.3.1): a validated, borrowed
//! view of a received packet, and a writer into a caller's buffer.

use crate::error::Error;
use crate::extension::{ExtensionBlock, ExtensionForm, ExtensionValue, Extensions};
use crate::wire::{check_room, padded4, put_u16, put_u32, u16_at, u32_at};

/// RFC 3550 §5.1: the version this crate speaks.
pub const RTP_VERSION: u8 = 2;
/// RFC 3550 §5.1: bytes before the CSRC list.
pub const FIXED_HEADER_LEN: usize = 12;
/// RFC 3550 §5.1: the CSRC count is 4 bits.
pub const MAX_CSRCS: usize = 15;

/// A received RTP packet, validated and borrowed: nothing is copied.
///
/// [`RtpPacket::parse`] checks the version, the CSRC list, the header
/// extension (and, for RFC 8285 forms, every element's length) and the
/// padding, so the accessors cannot fail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RtpPacket<'a> {
    data: &'a [u8],
    header_len: usize,
    payload_end: usize,
    extension: Option<ExtensionBlock<'a>>,
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates a packet.
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < FIXED_HEADER_LEN {
            return Err(Error::RtpTooShort(data.len()));
        }
        let version = data[0] >> 6;
        if version != RTP_VERSION {
            return Err(Error::RtpVersion(version));
        }
        let count = data[0] & 0x0F;
        let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(count);
        if header_len > data.len() {
            return Err(Error::CsrcOverrun {
                count,
                needed: header_len,
                len: data.len(),
            });
        }
        let mut extension = None;
        if data[0] & 0x10 != 0 {
            let at = header_len;
            if at + 4 > data.len() {
                return Err(Error::ExtensionOverrun {
                    offset: at,
                    declared: 4,
                    available: data.len() - at,
                });
            }
            let words = usize::from(u16_at(data, at + 2));
            let end = at + 4 + 4 * words;
            if end > data.len() {
                return Err(Error::ExtensionOverrun {
                    offset: at,
                    declared: 4 + 4 * words,
                    available: data.len() - at,
                });
            }
            let block = ExtensionBlock {
                profile: u16_at(data, at),
                data: &data[at + 4..end],
            };
            block.validate()?;
            extension = Some(block);
            header_len = end;
        }
        let mut payload_end = data.len();
        if data[0] & 0x20 != 0 {
            let count = data[data.len() - 1];
            let available = data.len() - header_len;
            if count == 0 || usize::from(count) > available {
                return Err(Error::RtpPadding { count, available });
            }
            payload_end -= usize::from(count);
        }
        Ok(RtpPacket {
            data,
            header_len,
            payload_end,
            extension,
        })
    }

    /// The whole packet as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// P: the packet ends with padding.
    pub fn has_padding(&self) -> bool {
        self.data[0] & 0x20 != 0
    }

    /// X: a header extension follows the CSRC list.
    pub fn has_extension(&self) -> bool {
        self.extension.is_some()
    }

    /// M: profile-defined, e.g. the last packet of a video frame.
    pub fn marker(&self) -> bool {
        self.data[1] & 0x80 != 0
    }

    /// PT, 7 bits.
    pub fn payload_type(&self) -> u8 {
        self.data[1] & 0x7F
    }

    pub fn sequence_number(&self) -> u16 {
        u16_at(self.data, 2)
    }

    pub fn timestamp(&self) -> u32 {
        u32_at(self.data, 4)
    }

    pub fn ssrc(&self) -> u32 {
        u32_at(self.data, 8)
    }

    /// CC: the number of contributing sources.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.data[0] & 0x0F)
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + Clone + 'a {
        let list = &self.data[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * self.csrc_count()];
        list.chunks_exact(4).map(|c| u32_at(c, 0))
    }

    /// The header extension block, whatever its profile.
    pub fn extension_block(&self) -> Option<ExtensionBlock<'a>> {
        self.extension
    }

    /// The RFC 8285 form of the extension block, if it has one.
    pub fn extension_form(&self) -> Option<ExtensionForm> {
        self.extension.and_then(|b| b.form())
    }

    /// The RFC 8285 extension elements (none for other profiles).
    pub fn extensions(&self) -> Extensions<'a> {
        match self.extension {
            Some(b) => b.elements(),
            None => Extensions::empty(),
        }
    }

    /// The value of the first element with this local id.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions().find(|e| e.id == id).map(|e| e.value)
    }

    /// The element with this local id, parsed as `E`; `None` if absent.
    pub fn extension_value<E: ExtensionValue<'a>>(&self, id: u8) -> Option<Result<E, Error>> {
        self.extension(id).map(E::parse)
    }

    /// Bytes of fixed header, CSRC list and extension.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload, without padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.header_len..self.payload_end]
    }

    /// Padding bytes at the end, the count octet included.
    pub fn padding_len(&self) -> usize {
        self.data.len() - self.payload_end
    }
}

/// The fields of an RTP header to write (RFC 3550 §5.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    /// 0..=127.
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// At most 15.
    pub csrcs: &'a [u32],
}

#[derive(Clone, Copy, Debug)]
struct OpenExtension {
    start: usize,
    form: ExtensionForm,
}

/// Writes an RTP packet into a borrowed buffer: the header, then header
/// extension elements, then the payload; nothing is allocated.
///
/// ```
/// # use natter_rtp::*;
/// let mut buf = [0u8; 1200];
/// let header = RtpHeader { payload_type: 111, sequence_number: 7, ssrc: 0x1234, ..Default::default() };
/// let mut w = RtpWriter::new(&mut buf, &header)?;
/// w.start_extensions(ExtensionForm::OneByte)?;
/// w.add(1, &Mid("0"))?;
/// w.add(3, &TransportSequenceNumber(42))?;
/// let len = w.finish(b"opus frame", 0)?;
///
/// let pkt = RtpPacket::parse(&buf[..len])?;
/// assert_eq!(pkt.extension_value::<Mid>(1), Some(Ok(Mid("0"))));
/// assert_eq!(pkt.payload(), b"opus frame");
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct RtpWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    extension: Option<OpenExtension>,
    closed: bool,
}

impl<'b> RtpWriter<'b> {
    /// Writes the fixed header and the CSRC list.
    pub fn new(buf: &'b mut [u8], header: &RtpHeader<'_>) -> Result<Self, Error> {
        if header.csrcs.len() > MAX_CSRCS {
            return Err(Error::TooMany {
                what: "CSRCs",
                count: header.csrcs.len(),
                max: MAX_CSRCS,
            });
        }
        if header.payload_type > 0x7F {
            return Err(Error::InvalidInput {
                what: "RTP header",
                reason: "payload type is more than 7 bits",
            });
        }
        let len = FIXED_HEADER_LEN + 4 * header.csrcs.len();
        check_room(buf.len(), len)?;
        buf[0] = (RTP_VERSION << 6) | header.csrcs.len() as u8;
        buf[1] = (u8::from(header.marker) << 7) | header.payload_type;
        put_u16(buf, 2, header.sequence_number);
        put_u32(buf, 4, header.timestamp);
        put_u32(buf, 8, header.ssrc);
        for (i, c) in header.csrcs.iter().enumerate() {
            put_u32(buf, FIXED_HEADER_LEN + 4 * i, *c);
        }
        Ok(RtpWriter {
            buf,
            len,
            extension: None,
            closed: false,
        })
    }

    /// Opens the header extension block (sets X); elements follow.
    pub fn start_extensions(&mut self, form: ExtensionForm) -> Result<(), Error> {
        if self.extension.is_some() || self.closed {
            return Err(Error::InvalidInput {
                what: "RTP header extension",
                reason: "the block was already started",
            });
        }
        check_room(self.buf.len(), self.len + 4)?;
        put_u16(self.buf, self.len, form.profile());
        put_u16(self.buf, self.len + 2, 0);
        self.buf[0] |= 0x10;
        self.extension = Some(OpenExtension { start: self.len, form });
        self.len += 4;
        Ok(())
    }

    /// Appends an element from its raw value.
    pub fn add_extension(&mut self, id: u8, value: &[u8]) -> Result<(), Error> {
        self.reserve_element(id, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// Appends a typed element.
    pub fn add<'x, E: ExtensionValue<'x>>(&mut self, id: u8, value: &E) -> Result<(), Error> {
        value.encode(self.reserve_element(id, value.encoded_len())?);
        Ok(())
    }

    /// Ends the header (padding the extension block to 32 bits) and
    /// returns its length; the caller writes the payload right after.
    pub fn finish_header(mut self) -> Result<usize, Error> {
        self.close_extensions()?;
        Ok(self.len)
    }

    /// Ends the header, appends the payload and `padding` bytes of RTP
    /// padding (RFC 3550 §5.1, sets P; 0 for none), and returns the
    /// packet's length.
    pub fn finish(mut self, payload: &[u8], padding: u8) -> Result<usize, Error> {
        self.close_extensions()?;
        let end = self.len + payload.len() + usize::from(padding);
        check_room(self.buf.len(), end)?;
        self.buf[self.len..self.len + payload.len()].copy_from_slice(payload);
        if padding > 0 {
            self.buf[0] |= 0x20;
            self.buf[self.len + payload.len()..end - 1].fill(0);
            self.buf[end - 1] = padding;
        }
        Ok(end)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn reserve_element(&mut self, id: u8, len: usize) -> Result<&mut [u8], Error> {
        let Some(open) = self.extension else {
            return Err(Error::InvalidInput {
                what: "RTP header extension element",
                reason: "start_extensions was not called",
            });
        };
        if !open.form.fits(id, len) {
            return Err(Error::ExtensionElementInvalid {
                id,
                len,
                form: open.form.name(),
            });
        }
        let header = open.form.element_header_len();
        let at = self.len;
        check_room(self.buf.len(), at + header + len)?;
        // The block's length field counts 32-bit words in 16 bits.
        if padded4(at + header + len - open.start - 4) / 4 > usize::from(u16::MAX) {
            return Err(Error::InvalidInput {
                what: "RTP header extension",
                reason: "the block exceeds 65535 words",
            });
        }
        match open.form {
            ExtensionForm::OneByte => self.buf[at] = (id << 4) | (len - 1) as u8,
            ExtensionForm::TwoByte { .. } => {
                self.buf[at] = id;
                self.buf[at + 1] = len as u8;
            }
        }
        self.len = at + header + len;
        Ok(&mut self.buf[at + header..at + header + len])
    }

    fn close_extensions(&mut self) -> Result<(), Error> {
        self.closed = true;
        let Some(open) = self.extension.take() else {
            return Ok(());
        };
        let body = self.len - open.start - 4;
        let padded = padded4(body);
        check_room(self.buf.len(), open.start + 4 + padded)?;
        self.buf[self.len..open.start + 4 + padded].fill(0);
        self.len = open.start + 4 + padded;
        // reserve_element keeps the block within 65535 words.
        put_u16(self.buf, open.start + 2, (padded / 4) as u16);
        Ok(())
    }
}
