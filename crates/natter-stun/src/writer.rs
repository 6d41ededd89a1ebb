//! Encoding a STUN message into a caller's buffer (RFC 8489 §5, §14).

use crate::attribute::{self, Attribute};
use crate::error::Error;
use crate::message::{padded_len, MessageType, TransactionId, ATTRIBUTE_HEADER_LEN, HEADER_LEN, MAGIC_COOKIE};
use crate::{fingerprint, IntegrityKey, IntegrityKind};

/// Writes a message attribute by attribute into a borrowed buffer,
/// keeping the header's length current; nothing is allocated.
///
/// ```
/// # use natter_stun::*;
/// let mut buf = [0u8; 128];
/// let tid = TransactionId([7; 12]);
/// let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid)?;
/// w.add(&Software("natter"))?;
/// w.add_fingerprint()?;
/// let len = w.finish();
/// let msg = Message::decode(&buf[..len])?;
/// assert_eq!(msg.get::<Software>()?, Some(Software("natter")));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
}

impl<'b> MessageWriter<'b> {
    /// Writes the header.
    pub fn new(buf: &'b mut [u8], typ: MessageType, tid: TransactionId) -> Result<Self, Error> {
        check_room(buf.len(), HEADER_LEN)?;
        buf[..2].copy_from_slice(&typ.to_u16().to_be_bytes());
        buf[2..4].fill(0);
        buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf[8..20].copy_from_slice(&tid.0);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
            tid,
        })
    }

    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Appends a typed attribute.
    pub fn add<'x, A: Attribute<'x>>(&mut self, attr: &A) -> Result<(), Error> {
        let tid = self.tid;
        let value = self.reserve(A::TYPE, attr.value_len())?;
        attr.encode(value, &tid);
        Ok(())
    }

    /// Appends an attribute from its raw value.
    pub fn add_raw(&mut self, typ: u16, value: &[u8]) -> Result<(), Error> {
        self.reserve(typ, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// RFC 8489 §14.5: appends MESSAGE-INTEGRITY (HMAC-SHA1).
    pub fn add_message_integrity(&mut self, key: &IntegrityKey) -> Result<(), Error> {
        self.add_integrity(key, IntegrityKind::Sha1)
    }

    /// RFC 8489 §14.6: appends MESSAGE-INTEGRITY-SHA256 (32 bytes).
    pub fn add_message_integrity_sha256(&mut self, key: &IntegrityKey) -> Result<(), Error> {
        self.add_integrity(key, IntegrityKind::Sha256)
    }

    /// Appends the integrity attribute of the given kind.
    pub fn add_integrity(&mut self, key: &IntegrityKey, kind: IntegrityKind) -> Result<(), Error> {
        let (typ, len) = match kind {
            IntegrityKind::Sha1 => (attribute::MESSAGE_INTEGRITY, 20),
            IntegrityKind::Sha256 => (attribute::MESSAGE_INTEGRITY_SHA256, 32),
        };
        let start = self.len;
        self.reserve(typ, len)?;
        let (covered, value) = self.buf.split_at_mut(start + ATTRIBUTE_HEADER_LEN);
        key.sign(&covered[..start], kind, &mut value[..len]);
        Ok(())
    }

    /// RFC 8489 §14.7: appends FINGERPRINT; it must be the last attribute.
    pub fn add_fingerprint(&mut self) -> Result<(), Error> {
        let start = self.len;
        self.reserve(attribute::FINGERPRINT, 4)?;
        let crc = fingerprint::compute(&self.buf[..start]);
        self.buf[start + ATTRIBUTE_HEADER_LEN..start + 8].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Appends the header of a last attribute whose `value_len` bytes the
    /// caller already holds right after this message in its own buffer,
    /// so that data received in place is framed without a copy. Returns
    /// how many zero bytes of padding the caller must add after the value.
    pub fn add_header_of_following_value(&mut self, typ: u16, value_len: usize) -> Result<usize, Error> {
        check_room(self.buf.len(), self.len + ATTRIBUTE_HEADER_LEN)?;
        let padded = padded_len(value_len);
        let body =
            u16::try_from(self.len + ATTRIBUTE_HEADER_LEN + padded - HEADER_LEN).map_err(|_| Error::MessageTooLong)?;
        let value_len16 = u16::try_from(value_len).map_err(|_| Error::MessageTooLong)?;
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&typ.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&value_len16.to_be_bytes());
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        self.len += ATTRIBUTE_HEADER_LEN;
        Ok(padded - value_len)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Ends the message and returns its length.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Appends an attribute header and padding, updates the message
    /// length, and returns the value's bytes to fill.
    fn reserve(&mut self, typ: u16, value_len: usize) -> Result<&mut [u8], Error> {
        let total = ATTRIBUTE_HEADER_LEN + padded_len(value_len);
        check_room(self.buf.len(), self.len + total)?;
        let body = self.len + total - HEADER_LEN;
        let body = u16::try_from(body).map_err(|_| Error::MessageTooLong)?;
        let value_len16 = u16::try_from(value_len).map_err(|_| Error::MessageTooLong)?;
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&typ.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&value_len16.to_be_bytes());
        self.buf[at + ATTRIBUTE_HEADER_LEN + value_len..at + total].fill(0);
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        self.len += total;
        Ok(&mut self.buf[at + ATTRIBUTE_HEADER_LEN..at + ATTRIBUTE_HEADER_LEN + value_len])
    }
}

fn check_room(available: usize, needed: usize) -> Result<(), Error> {
    if needed > available {
        Err(Error::BufferTooSmall { needed, available })
    } else {
        Ok(())
    }
}
