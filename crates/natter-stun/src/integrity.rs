//! Message integrity: HMAC-SHA1 (RFC 8489 §14.5) and HMAC-SHA256
//! (RFC 8489 §14.6), and the keys of short-term and long-term
//! credentials (RFC 8489 §9.1.1, §9.2.2), with usernames, realms and
//! passwords prepared by the OpaqueString profile (RFC 8265).

use std::borrow::Cow;
use std::sync::Arc;

use aws_lc_rs::{constant_time, digest, hmac};
use md5::{Digest, Md5};
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::OpaqueString;

use crate::attribute::PasswordAlgorithm;
use crate::error::Error;
use crate::message::{IntegrityKind, ATTRIBUTE_HEADER_LEN, HEADER_LEN};

/// RFC 8265 §4.2: prepares and enforces a string by the OpaqueString
/// profile.
pub fn opaque_string(s: &str) -> Result<Cow<'_, str>, Error> {
    if !s.is_empty() && s.bytes().all(|b| (0x21..0x7F).contains(&b)) {
        // Printable ASCII without spaces is unchanged by the profile.
        return Ok(Cow::Borrowed(s));
    }
    OpaqueString::enforce(s).map_err(|_| Error::InvalidOpaqueString)
}

/// RFC 8489 §14.4: USERHASH = SHA-256(OpaqueString(username) ":" OpaqueString(realm)).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], Error> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(opaque_string(username)?.as_bytes());
    ctx.update(b":");
    ctx.update(opaque_string(realm)?.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// The key of a STUN credential, to sign and verify with HMAC-SHA1 or
/// HMAC-SHA256. Only the key's bytes are kept, shared: an expanded HMAC
/// state takes 1.2 KiB, which every idle connection would carry for
/// its local and remote keys, against two hash blocks per message to
/// expand it on the stack when a message is signed or checked (issue
/// 18). A clone (a transaction's, a selected path's) costs a reference
/// count.
#[derive(Clone)]
pub struct IntegrityKey(Arc<[u8]>);

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

impl IntegrityKey {
    /// A key from its bytes.
    pub fn from_bytes(key: &[u8]) -> Self {
        IntegrityKey(key.into())
    }

    /// RFC 8489 §9.1.1: key = OpaqueString(password).
    pub fn short_term(password: &str) -> Result<Self, Error> {
        Ok(Self::from_bytes(opaque_string(password)?.as_bytes()))
    }

    /// RFC 8489 §9.2.2: key = H(username ":" OpaqueString(realm) ":"
    /// OpaqueString(password)), H being MD5 or SHA-256.
    pub fn long_term(username: &str, realm: &str, password: &str, algorithm: PasswordAlgorithm) -> Result<Self, Error> {
        let key = long_term_key(username, realm, password, algorithm)?;
        Ok(Self::from_bytes(&key))
    }

    /// Writes the HMAC of `covered` (a message up to the integrity
    /// attribute, its length field already counting that attribute) into
    /// `out` (20 or 32 bytes).
    pub(crate) fn sign(&self, covered: &[u8], kind: IntegrityKind, out: &mut [u8]) {
        let tag = hmac::sign(&self.key(kind), covered);
        out.copy_from_slice(&tag.as_ref()[..out.len()]);
    }

    /// Checks the integrity attribute starting at `at` in `message`.
    pub(crate) fn verify(&self, message: &[u8], at: usize, kind: IntegrityKind) -> Result<(), Error> {
        let value_len = u16::from_be_bytes([message[at + 2], message[at + 3]]) as usize;
        let mut ctx = hmac::Context::with_key(&self.key(kind));
        ctx.update(&message[..2]);
        let len = (at + ATTRIBUTE_HEADER_LEN + value_len - HEADER_LEN) as u16;
        ctx.update(&len.to_be_bytes());
        ctx.update(&message[4..at]);
        let tag = ctx.sign();
        let value = &message[at + ATTRIBUTE_HEADER_LEN..at + ATTRIBUTE_HEADER_LEN + value_len];
        constant_time::verify_slices_are_equal(&tag.as_ref()[..value_len], value).map_err(|_| Error::IntegrityMismatch)
    }

    fn key(&self, kind: IntegrityKind) -> hmac::Key {
        let algorithm = match kind {
            IntegrityKind::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            IntegrityKind::Sha256 => hmac::HMAC_SHA256,
        };
        hmac::Key::new(algorithm, &self.0)
    }
}

/// RFC 8489 §9.2.2: the bytes of a long-term key.
pub fn long_term_key(
    username: &str,
    realm: &str,
    password: &str,
    algorithm: PasswordAlgorithm,
) -> Result<Vec<u8>, Error> {
    let realm = opaque_string(realm)?;
    let password = opaque_string(password)?;
    let parts = [username.as_bytes(), b":", realm.as_bytes(), b":", password.as_bytes()];
    Ok(match algorithm {
        PasswordAlgorithm::Md5 => {
            let mut h = Md5::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
        PasswordAlgorithm::Sha256 => {
            let mut h = digest::Context::new(&digest::SHA256);
            parts.iter().for_each(|p| h.update(p));
            h.finish().as_ref().to_vec()
        }
    })
}
