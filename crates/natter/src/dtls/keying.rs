//! DTLS-SRTP keying material (RFC 5764 §4.2) and the SRTP contexts keyed
//! from it.

use core::fmt;

use natter_srtp::{ProtectionProfile, SrtpContext};

use super::{DtlsError, DtlsRole};

/// RFC 5764 §4.2: the exporter label for DTLS-SRTP keys.
pub const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// The keying material exported from a finished handshake with the label
/// [`SRTP_EXPORTER_LABEL`] and no context, laid out (RFC 5764 §4.2) as
/// `client_write_SRTP_master_key | server_write_SRTP_master_key |
/// client_write_SRTP_master_salt | server_write_SRTP_master_salt`.
///
/// Secret: `Debug` shows only the profile.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyingMaterial {
    profile: ProtectionProfile,
    material: Vec<u8>,
}

impl fmt::Debug for SrtpKeyingMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeyingMaterial")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SrtpKeyingMaterial {
    /// Wraps exported material; it must be
    /// [`ProtectionProfile::keying_material_len`] bytes long.
    pub fn new(profile: ProtectionProfile, material: Vec<u8>) -> Result<SrtpKeyingMaterial, DtlsError> {
        let expected = profile.keying_material_len();
        if material.len() != expected {
            return Err(DtlsError::Srtp(natter_srtp::Error::InvalidKeyingMaterial {
                len: material.len(),
                expected,
            }));
        }
        Ok(SrtpKeyingMaterial { profile, material })
    }

    /// The negotiated protection profile.
    pub fn profile(&self) -> ProtectionProfile {
        self.profile
    }

    /// All of the material, as exported.
    pub fn as_bytes(&self) -> &[u8] {
        &self.material
    }

    /// The master key the DTLS client sends with.
    pub fn client_write_key(&self) -> &[u8] {
        let k = self.profile.master_key_len();
        &self.material[..k]
    }

    /// The master key the DTLS server sends with.
    pub fn server_write_key(&self) -> &[u8] {
        let k = self.profile.master_key_len();
        &self.material[k..2 * k]
    }

    /// The master salt the DTLS client sends with.
    pub fn client_write_salt(&self) -> &[u8] {
        let (k, s) = (self.profile.master_key_len(), self.profile.master_salt_len());
        &self.material[2 * k..2 * k + s]
    }

    /// The master salt the DTLS server sends with.
    pub fn server_write_salt(&self) -> &[u8] {
        let (k, s) = (self.profile.master_key_len(), self.profile.master_salt_len());
        &self.material[2 * k + s..]
    }

    /// The SRTP contexts for the side that was `role` in the handshake:
    /// `(local, remote)`, the first to protect what we send, the second to
    /// unprotect what we receive.
    pub fn contexts(
        &self,
        role: DtlsRole,
        config: natter_srtp::Config,
    ) -> Result<(SrtpContext, SrtpContext), DtlsError> {
        let role = match role {
            DtlsRole::Client => natter_srtp::Role::Client,
            DtlsRole::Server => natter_srtp::Role::Server,
        };
        Ok(SrtpContext::from_dtls(self.profile, &self.material, role, config)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_per_rfc5764() {
        for profile in ProtectionProfile::ALL {
            let len = profile.keying_material_len();
            let material: Vec<u8> = (0..len as u8).collect();
            let km = SrtpKeyingMaterial::new(profile, material.clone()).unwrap();
            let (k, s) = (profile.master_key_len(), profile.master_salt_len());
            assert_eq!(km.client_write_key(), &material[..k]);
            assert_eq!(km.server_write_key(), &material[k..2 * k]);
            assert_eq!(km.client_write_salt(), &material[2 * k..2 * k + s]);
            assert_eq!(km.server_write_salt(), &material[2 * k + s..]);
            assert!(SrtpKeyingMaterial::new(profile, vec![0; len - 1]).is_err());
            assert!(!format!("{km:?}").contains('['));
        }
    }
}
