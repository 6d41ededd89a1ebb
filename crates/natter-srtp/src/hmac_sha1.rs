//! HMAC-SHA1 message authentication (RFC 3711 §4.2.1).

use aws_lc_rs::hmac;

/// A session authentication key with its inner and outer pads hashed
/// once; each packet starts from a copy of that state.
pub(crate) struct HmacSha1 {
    key: hmac::Key,
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> HmacSha1 {
        HmacSha1 {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        }
    }

    /// The full 160-bit HMAC of `data` followed by `suffix` (the ROC for
    /// SRTP, §4.2; nothing for SRTCP, whose index is inside `data`).
    pub(crate) fn sign(&self, data: &[u8], suffix: &[u8]) -> [u8; 20] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(data);
        ctx.update(suffix);
        let tag = ctx.sign();
        let mut out = [0u8; 20];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Compares two tags in time independent of where they differ.
pub(crate) fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}
