//! Session key derivation from a master key and salt (RFC 3711 §4.3) with
//! a key derivation rate of zero, the only rate DTLS-SRTP uses (RFC 5764
//! §4.1.2 leaves it at its default).

use crate::aes_cm::AesCm;
use crate::{Error, ProtectionProfile};

/// RFC 3711 §4.3.1/§4.3.2: the label that selects which session key the
/// PRF produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// 0x00: the SRTP encryption key.
    RtpEncryption = 0x00,
    /// 0x01: the SRTP authentication key.
    RtpAuthentication = 0x01,
    /// 0x02: the SRTP salt.
    RtpSalt = 0x02,
    /// 0x03: the SRTCP encryption key.
    RtcpEncryption = 0x03,
    /// 0x04: the SRTCP authentication key.
    RtcpAuthentication = 0x04,
    /// 0x05: the SRTCP salt.
    RtcpSalt = 0x05,
}

/// Fills `out` with the AES-CM PRF output for `label` (RFC 3711 §4.3.1,
/// §4.3.3), kdr = 0 so `r` = 0:
///
/// x = (label || 0^48) XOR master_salt, and the key stream of AES-CM under
/// the master key starting at x * 2^16.
///
/// `master_key` is 16 bytes, or 32 for AES-256 profiles (RFC 6188 §7.1
/// and RFC 7714 §11 keep the PRF's cipher the profile's cipher). A salt
/// shorter than 112 bits (RFC 7714's 96-bit salt) is padded on the right
/// with zero octets, so the label stays in octet 7 as libsrtp places it.
pub fn derive_session_key(master_key: &[u8], master_salt: &[u8], label: Label, out: &mut [u8]) -> Result<(), Error> {
    if master_salt.len() > 14 {
        return Err(Error::InvalidKeyLength {
            what: "master salt",
            len: master_salt.len(),
            expected: 14,
        });
    }
    let prf = AesCm::new(master_key)?;
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label as u8;
    out.fill(0);
    prf.apply_keystream(&iv, out)
}

/// The session keys of one of SRTP or SRTCP in one direction.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// The session encryption key `k_e`.
    pub encryption_key: Vec<u8>,
    /// The session authentication key `k_a` (empty for AEAD profiles).
    pub authentication_key: Vec<u8>,
    /// The session salt `k_s`.
    pub salt: Vec<u8>,
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionKeys").finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// The SRTP session keys (labels 0x00, 0x01, 0x02).
    pub fn derive_rtp(profile: ProtectionProfile, master_key: &[u8], master_salt: &[u8]) -> Result<SessionKeys, Error> {
        Self::derive(
            profile,
            master_key,
            master_salt,
            [Label::RtpEncryption, Label::RtpAuthentication, Label::RtpSalt],
        )
    }

    /// The SRTCP session keys (labels 0x03, 0x04, 0x05).
    pub fn derive_rtcp(
        profile: ProtectionProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<SessionKeys, Error> {
        Self::derive(
            profile,
            master_key,
            master_salt,
            [Label::RtcpEncryption, Label::RtcpAuthentication, Label::RtcpSalt],
        )
    }

    fn derive(
        profile: ProtectionProfile,
        master_key: &[u8],
        master_salt: &[u8],
        [enc, auth, salt]: [Label; 3],
    ) -> Result<SessionKeys, Error> {
        check_len("master key", master_key, profile.master_key_len())?;
        check_len("master salt", master_salt, profile.master_salt_len())?;
        let mut keys = SessionKeys {
            encryption_key: vec![0; profile.master_key_len()],
            authentication_key: vec![0; profile.auth_key_len()],
            salt: vec![0; profile.master_salt_len()],
        };
        derive_session_key(master_key, master_salt, enc, &mut keys.encryption_key)?;
        derive_session_key(master_key, master_salt, auth, &mut keys.authentication_key)?;
        derive_session_key(master_key, master_salt, salt, &mut keys.salt)?;
        Ok(keys)
    }

    /// Checks the lengths against `profile`.
    pub(crate) fn check(&self, profile: ProtectionProfile) -> Result<(), Error> {
        check_len("session encryption key", &self.encryption_key, profile.master_key_len())?;
        check_len(
            "session authentication key",
            &self.authentication_key,
            profile.auth_key_len(),
        )?;
        check_len("session salt", &self.salt, profile.master_salt_len())
    }
}

pub(crate) fn check_len(what: &'static str, bytes: &[u8], expected: usize) -> Result<(), Error> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(Error::InvalidKeyLength {
            what,
            len: bytes.len(),
            expected,
        })
    }
}
