//! RFC 8489 §14.7: FINGERPRINT, the CRC-32 of the message up to the
//! attribute, XOR 0x5354554e, computed with the header's length already
//! counting the attribute.

use crate::error::Error;
use crate::message::ATTRIBUTE_HEADER_LEN;

/// RFC 8489 §14.7: the XOR constant ("STUN").
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// The fingerprint of `covered`, a message whose length field already
/// includes the FINGERPRINT attribute that will follow it.
pub(crate) fn compute(covered: &[u8]) -> u32 {
    crc32fast::hash(covered) ^ FINGERPRINT_XOR
}

/// Checks the FINGERPRINT attribute starting at `at` in `message`.
pub(crate) fn verify(message: &[u8], at: usize) -> Result<(), Error> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&message[..2]);
    let len = (at + ATTRIBUTE_HEADER_LEN + 4 - crate::message::HEADER_LEN) as u16;
    hasher.update(&len.to_be_bytes());
    hasher.update(&message[4..at]);
    let value = &message[at + ATTRIBUTE_HEADER_LEN..at + ATTRIBUTE_HEADER_LEN + 4];
    let expected = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
    if hasher.finalize() ^ FINGERPRINT_XOR == expected {
        Ok(())
    } else {
        Err(Error::FingerprintMismatch)
    }
}
