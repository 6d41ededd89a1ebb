//! AES-GCM for SRTP and SRTCP (RFC 7714).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

use crate::Error;

/// RFC 7714 §12: both GCM profiles use a 16-octet tag.
pub(crate) const GCM_TAG_LEN: usize = 16;

/// An expanded AES-GCM key.
pub(crate) struct AesGcm {
    key: LessSafeKey,
}

impl AesGcm {
    /// A key of 16 (AEAD_AES_128_GCM) or 32 (AEAD_AES_256_GCM) bytes.
    pub(crate) fn new(key: &[u8]) -> Result<AesGcm, Error> {
        let algorithm = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            len => {
                return Err(Error::InvalidKeyLength {
                    what: "AES-GCM key",
                    len,
                    expected: 16,
                })
            }
        };
        let unbound = UnboundKey::new(algorithm, key).map_err(|_| Error::Crypto("AES-GCM key setup"))?;
        Ok(AesGcm {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `in_out` in place and returns the tag over `aad` and the
    /// ciphertext.
    pub(crate) fn seal(&self, iv: [u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; GCM_TAG_LEN], Error> {
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), in_out)
            .map_err(|_| Error::Crypto("AES-GCM seal"))?;
        let mut out = [0u8; GCM_TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Checks `tag` and decrypts `in_out` in place; `false` if the tag does
    /// not verify (and `in_out` is then unspecified).
    pub(crate) fn open(&self, iv: [u8; 12], aad: &[u8], tag: &[u8], in_out: &mut [u8]) -> bool {
        self.key
            .open_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), tag, in_out)
            .is_ok()
    }
}

/// RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt.
pub(crate) fn rtp_iv(salt: &[u8; 12], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = *salt;
    for (b, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    // ROC || SEQ is the 48-bit packet index.
    for (b, s) in iv[6..12].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// RFC 7714 §9.1: IV = (00 00 || SSRC || 00 00 || 0 || SRTCP index) XOR
/// salt, the index taking the low 31 bits.
pub(crate) fn rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = *salt;
    for (b, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..12].iter_mut().zip((index & 0x7fff_ffff).to_be_bytes()) {
        *b ^= s;
    }
    iv
}
