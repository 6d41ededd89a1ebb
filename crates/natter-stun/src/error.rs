//! The codec's one error type.

/// What was wrong with a STUN message, a ChannelData message or an
/// attribute value, or why one could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// RFC 8489 §5: a message starts with a 20-byte header.
    #[error("message of {0} bytes is shorter than the 20-byte STUN header")]
    TooShort(usize),
    /// RFC 8489 §5: the two most significant bits of a STUN message are zero.
    #[error("first byte {0:#04x} does not start a STUN message")]
    NotStun(u8),
    /// RFC 8489 §5: the magic cookie is fixed.
    #[error("magic cookie {0:#010x} is not 0x2112a442")]
    BadMagicCookie(u32),
    /// RFC 8489 §5: the length counts padded attributes, so it is a multiple of 4.
    #[error("STUN length {0} is not a multiple of 4")]
    UnalignedLength(u16),
    /// The header's length disagrees with the bytes received.
    #[error("STUN header declares {declared} bytes of attributes but {available} bytes follow")]
    LengthMismatch { declared: usize, available: usize },
    /// RFC 8489 §14: an attribute's length runs past the message's end.
    #[error("STUN attribute {typ:#06x} length {len} overruns message of {message_len} bytes")]
    AttributeOverrun { typ: u16, len: usize, message_len: usize },
    /// RFC 8489 §14.7: FINGERPRINT is the last attribute.
    #[error("attribute {0:#06x} follows FINGERPRINT")]
    AttributeAfterFingerprint(u16),
    /// An attribute's value does not follow its RFC's format.
    #[error("attribute {typ:#06x} is malformed: {reason}")]
    InvalidAttribute { typ: u16, reason: &'static str },
    /// A required attribute is absent.
    #[error("attribute {0:#06x} is missing")]
    MissingAttribute(u16),
    /// RFC 8489 §14.7: the CRC-32 in FINGERPRINT does not match.
    #[error("FINGERPRINT does not match the message")]
    FingerprintMismatch,
    /// RFC 8489 §14.5/§14.6: no MESSAGE-INTEGRITY(-SHA256) to check.
    #[error("message carries no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256")]
    MissingIntegrity,
    /// RFC 8489 §14.5/§14.6: the HMAC does not match.
    #[error("message integrity check failed")]
    IntegrityMismatch,
    /// RFC 8656 §12: a ChannelData message is malformed.
    #[error("ChannelData: {0}")]
    InvalidChannelData(&'static str),
    /// A string failed RFC 8265 OpaqueString preparation.
    #[error("string is not a valid OpaqueString (RFC 8265)")]
    InvalidOpaqueString,
    /// The caller's buffer cannot hold what is being written.
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall { needed: usize, available: usize },
    /// A message would exceed the 16-bit length field.
    #[error("message longer than 65535 bytes of attributes")]
    MessageTooLong,
}
