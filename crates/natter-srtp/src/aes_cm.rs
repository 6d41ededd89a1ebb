//! AES in counter mode (RFC 3711 §4.1.1), the SRTP cipher and the key
//! derivation PRF (§4.3.3).

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_256};
use aws_lc_rs::iv::FixedLength;

use crate::Error;

/// An expanded AES key that XORs AES-CM keystream into buffers.
pub(crate) struct AesCm {
    key: EncryptingKey,
}

impl AesCm {
    /// A key of 16 (AES-128) or 32 (AES-256) bytes.
    pub(crate) fn new(key: &[u8]) -> Result<AesCm, Error> {
        let algorithm = match key.len() {
            16 => &AES_128,
            32 => &AES_256,
            len => {
                return Err(Error::InvalidKeyLength {
                    what: "AES-CM key",
                    len,
                    expected: 16,
                })
            }
        };
        let unbound = UnboundCipherKey::new(algorithm, key).map_err(|_| Error::Crypto("AES key setup"))?;
        let key = EncryptingKey::ctr(unbound).map_err(|_| Error::Crypto("AES-CTR key setup"))?;
        Ok(AesCm { key })
    }

    /// XORs the keystream that starts at counter block `iv` into `data`.
    /// The counter's low 16 bits start at zero and a packet is far shorter
    /// than 2^16 blocks, so the counter never carries into the IV's upper
    /// bits (RFC 3711 §4.1.1).
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        self.key
            .less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
            .map(|_| ())
            .map_err(|_| Error::Crypto("AES-CTR"))
    }
}

/// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16),
/// with the 112-bit session salt `k_s` and the 48-bit packet index `i`
/// (for SRTCP, the 31-bit SRTCP index, §3.4).
pub(crate) fn counter_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    // The index occupies octets 8..14: the low 48 bits of a u64.
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}
