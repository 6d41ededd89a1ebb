//! The STUN message header and a zero-copy view of a whole message
//! (RFC 8489 §5, §6, §14).

use crate::attribute::{self, Attribute};
use crate::error::Error;
use crate::fingerprint;

/// RFC 8489 §5: the fixed value in bytes 4..8 of every message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// RFC 8489 §5: header length.
pub const HEADER_LEN: usize = 20;
/// RFC 8489 §14: type and length of an attribute.
pub const ATTRIBUTE_HEADER_LEN: usize = 4;

/// RFC 8489 §5: a 96-bit transaction id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TransactionId(pub [u8; 12]);

/// RFC 8489 §5: the message class.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

/// RFC 8489 §5: the 12-bit method.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Method(pub u16);

impl Method {
    /// RFC 8489 §18.2.
    pub const BINDING: Method = Method(0x001);
    /// RFC 8656 §17.
    pub const ALLOCATE: Method = Method(0x003);
    pub const REFRESH: Method = Method(0x004);
    pub const SEND: Method = Method(0x006);
    pub const DATA: Method = Method(0x007);
    pub const CREATE_PERMISSION: Method = Method(0x008);
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// RFC 6062 §6.1.
    pub const CONNECT: Method = Method(0x00A);
    pub const CONNECTION_BIND: Method = Method(0x00B);
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);
}

/// RFC 8489 §5: method and class, interleaved into the 14-bit type field.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageType {
    pub method: Method,
    pub class: Class,
}

impl MessageType {
    pub const fn new(method: Method, class: Class) -> Self {
        MessageType { method, class }
    }

    /// Decodes the type field; the two top bits must already be known zero.
    pub fn from_u16(v: u16) -> Self {
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        let class = match ((v >> 7) & 0b10) | ((v >> 4) & 0b01) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::SuccessResponse,
            _ => Class::ErrorResponse,
        };
        MessageType {
            method: Method(method),
            class,
        }
    }

    pub fn to_u16(self) -> u16 {
        let m = self.method.0 & 0x0FFF;
        let c: u16 = match self.class {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::SuccessResponse => 0b10,
            Class::ErrorResponse => 0b11,
        };
        ((m & 0xF80) << 2) | ((m & 0x070) << 1) | (m & 0x00F) | ((c & 0b10) << 7) | ((c & 0b01) << 4)
    }
}

/// Which integrity attribute protected a message (RFC 8489 §9.2.4: a
/// response uses the same one as its request).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IntegrityKind {
    Sha1,
    Sha256,
}

/// A decoded STUN message borrowing the received bytes.
///
/// Decoding checks the header, every attribute's length and padding, and
/// FINGERPRINT when present; typed attribute values are decoded on demand
/// with [`Message::get`]. Per RFC 8489 §14.5, attributes after
/// MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
/// are ignored, as are attributes other than FINGERPRINT after
/// MESSAGE-INTEGRITY-SHA256.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    bytes: &'a [u8],
    typ: MessageType,
    /// End of the attributes that count (start of the first integrity
    /// attribute or FINGERPRINT).
    covered_end: usize,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

/// One attribute as it appears on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawAttribute<'a> {
    pub typ: u16,
    pub value: &'a [u8],
}

/// Iterator over raw attributes of an already validated region.
#[derive(Clone, Debug)]
pub struct RawAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = RawAttribute<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let (attr, used) = split_attribute(self.rest, usize::MAX).ok()??;
        self.rest = &self.rest[used..];
        Some(attr)
    }
}

/// Splits the first attribute off `rest`; `Ok(None)` at the end.
fn split_attribute(rest: &[u8], message_len: usize) -> Result<Option<(RawAttribute<'_>, usize)>, Error> {
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < ATTRIBUTE_HEADER_LEN {
        return Err(Error::AttributeOverrun {
            typ: 0,
            len: rest.len(),
            message_len,
        });
    }
    let typ = u16::from_be_bytes([rest[0], rest[1]]);
    let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
    let padded = ATTRIBUTE_HEADER_LEN + padded_len(len);
    if padded > rest.len() {
        return Err(Error::AttributeOverrun { typ, len, message_len });
    }
    let value = &rest[ATTRIBUTE_HEADER_LEN..ATTRIBUTE_HEADER_LEN + len];
    Ok(Some((RawAttribute { typ, value }, padded)))
}

/// RFC 8489 §14: values are padded to a multiple of 4 bytes.
pub const fn padded_len(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads the header of what may be a STUN message: its type, the length
/// of its attributes and its transaction id.
pub fn decode_header(bytes: &[u8]) -> Result<(MessageType, usize, TransactionId), Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::TooShort(bytes.len()));
    }
    if bytes[0] & 0xC0 != 0 {
        return Err(Error::NotStun(bytes[0]));
    }
    let cookie = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(Error::BadMagicCookie(cookie));
    }
    let len = u16::from_be_bytes([bytes[2], bytes[3]]);
    if len % 4 != 0 {
        return Err(Error::UnalignedLength(len));
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&bytes[8..20]);
    Ok((
        MessageType::from_u16(u16::from_be_bytes([bytes[0], bytes[1]])),
        len as usize,
        TransactionId(tid),
    ))
}

impl<'a> Message<'a> {
    /// Decodes exactly one message occupying all of `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let (typ, len, _) = decode_header(bytes)?;
        if HEADER_LEN + len != bytes.len() {
            return Err(Error::LengthMismatch {
                declared: len,
                available: bytes.len() - HEADER_LEN,
            });
        }
        let mut msg = Message {
            bytes,
            typ,
            covered_end: bytes.len(),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut offset = HEADER_LEN;
        while let Some((attr, used)) = split_attribute(&bytes[offset..], bytes.len())? {
            if msg.fingerprint.is_some() {
                return Err(Error::AttributeAfterFingerprint(attr.typ));
            }
            let first_trailer = msg.integrity.is_none() && msg.integrity_sha256.is_none();
            match attr.typ {
                attribute::MESSAGE_INTEGRITY if first_trailer => {
                    expect_len(&attr, 20)?;
                    msg.integrity = Some(offset);
                }
                attribute::MESSAGE_INTEGRITY_SHA256 if msg.integrity_sha256.is_none() => {
                    if !(16..=32).contains(&attr.value.len()) || attr.value.len() % 4 != 0 {
                        return Err(Error::InvalidAttribute {
                            typ: attr.typ,
                            reason: "HMAC-SHA256 length must be 16 to 32 and a multiple of 4",
                        });
                    }
                    msg.integrity_sha256 = Some(offset);
                }
                attribute::FINGERPRINT => {
                    expect_len(&attr, 4)?;
                    msg.fingerprint = Some(offset);
                }
                _ => {}
            }
            if first_trailer && msg.fingerprint.or(msg.integrity).or(msg.integrity_sha256) == Some(offset) {
                msg.covered_end = offset;
            }
            offset += used;
        }
        if let Some(at) = msg.fingerprint {
            fingerprint::verify(bytes, at)?;
        }
        Ok(msg)
    }

    pub fn message_type(&self) -> MessageType {
        self.typ
    }

    pub fn method(&self) -> Method {
        self.typ.method
    }

    pub fn class(&self) -> Class {
        self.typ.class
    }

    pub fn transaction_id(&self) -> TransactionId {
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&self.bytes[8..20]);
        TransactionId(tid)
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The attributes that count: those before any integrity attribute
    /// or FINGERPRINT.
    pub fn attributes(&self) -> RawAttributes<'a> {
        RawAttributes {
            rest: &self.bytes[HEADER_LEN..self.covered_end],
        }
    }

    /// The first attribute of type `A`, decoded; `Ok(None)` if absent.
    pub fn get<A: Attribute<'a>>(&self) -> Result<Option<A>, Error> {
        let tid = self.transaction_id();
        self.attributes()
            .find(|a| a.typ == A::TYPE)
            .map(|a| A::decode(a.value, &tid))
            .transpose()
    }

    /// Like [`Message::get`], but absence is an error.
    pub fn require<A: Attribute<'a>>(&self) -> Result<A, Error> {
        self.get()?.ok_or(Error::MissingAttribute(A::TYPE))
    }

    /// Whether an attribute of type `typ` is present.
    pub fn has(&self, typ: u16) -> bool {
        self.attributes().any(|a| a.typ == typ)
    }

    /// RFC 8489 §14: comprehension-required attributes (types below
    /// 0x8000) this codec does not know.
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = u16> + 'a {
        self.attributes()
            .map(|a| a.typ)
            .filter(|&t| t < 0x8000 && !attribute::is_known(t))
    }

    /// Whether the message carries an integrity attribute.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }

    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// RFC 8489 §14.5, §14.6: checks MESSAGE-INTEGRITY-SHA256 when present,
    /// else MESSAGE-INTEGRITY, and says which one it checked.
    pub fn verify_integrity(&self, key: &crate::IntegrityKey) -> Result<IntegrityKind, Error> {
        if let Some(at) = self.integrity_sha256 {
            key.verify(self.bytes, at, IntegrityKind::Sha256)?;
            Ok(IntegrityKind::Sha256)
        } else if let Some(at) = self.integrity {
            key.verify(self.bytes, at, IntegrityKind::Sha1)?;
            Ok(IntegrityKind::Sha1)
        } else {
            Err(Error::MissingIntegrity)
        }
    }
}

fn expect_len(attr: &RawAttribute<'_>, len: usize) -> Result<(), Error> {
    if attr.value.len() == len {
        Ok(())
    } else {
        Err(Error::InvalidAttribute {
            typ: attr.typ,
            reason: "wrong length",
        })
    }
}
