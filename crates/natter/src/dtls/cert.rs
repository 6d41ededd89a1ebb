//! The local DTLS certificate: self-signed ECDSA P-256, as browsers make
//! them (RFC 8827 §6.5: certificates are self-signed and authenticated
//! by their fingerprint in the SDP, not by a CA).

use core::fmt;
use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING};
use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SerialNumber, PKCS_ECDSA_P256_SHA256};

use super::fingerprint::{Fingerprint, HashFunction};
use super::DtlsError;

/// How far back a generated certificate's validity starts, so that a peer
/// whose clock runs behind ours still accepts it (libwebrtc backdates by a
/// day; a month costs nothing).
pub const BACKDATE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a generated certificate stays valid.
pub const LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A certificate and its private key, with its SHA-256 fingerprint for
/// the local description's `a=fingerprint`.
///
/// Cloning is cheap enough to share one certificate between all the DTLS
/// transports of a peer connection, as RTCCertificate is shared.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    private_key: Vec<u8>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint.to_string())
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// A new self-signed ECDSA P-256 certificate with a random common name
    /// and serial number, valid from [`BACKDATE`] ago for [`LIFETIME`]
    /// after that. Reads the wall clock once, for the validity period
    /// only; use [`Certificate::generate_valid`] to choose it.
    pub fn generate() -> Result<Certificate, DtlsError> {
        let now = SystemTime::now();
        Certificate::generate_valid(now - BACKDATE, now + LIFETIME)
    }

    /// A new self-signed ECDSA P-256 certificate valid from `not_before`
    /// to `not_after`.
    pub fn generate_valid(not_before: SystemTime, not_after: SystemTime) -> Result<Certificate, DtlsError> {
        let generation = |e: rcgen::Error| DtlsError::CertificateGeneration(e.to_string());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generation)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, hex(&random::<8>()?));
        params.distinguished_name = name;
        params.is_ca = IsCa::NoCa;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        // Unique serials matter: Firefox refuses a second certificate with
        // the same issuer and serial. A positive 128-bit integer.
        let mut serial = random::<16>()?;
        serial[0] = (serial[0] & 0x7f) | 0x01;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.self_signed(&key).map_err(generation)?;
        Certificate::from_der(cert.der().to_vec(), key.serialize_der())
    }

    /// A certificate loaded from DER with its PKCS#8 DER private key (e.g.
    /// one persisted across restarts so the fingerprint stays the same).
    /// The key must be ECDSA P-256 or P-384, the curves dimpl signs with.
    pub fn from_der(certificate_der: Vec<u8>, private_key_pkcs8_der: Vec<u8>) -> Result<Certificate, DtlsError> {
        let p256 = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &private_key_pkcs8_der);
        if p256.is_err() && EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &private_key_pkcs8_der).is_err() {
            return Err(DtlsError::InvalidPrivateKey);
        }
        Ok(Certificate {
            fingerprint: Fingerprint::of_certificate(HashFunction::Sha256, &certificate_der),
            der: certificate_der,
            private_key: private_key_pkcs8_der,
        })
    }

    /// The certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The private key, PKCS#8 DER. Secret.
    pub fn private_key_der(&self) -> &[u8] {
        &self.private_key
    }

    /// The SHA-256 fingerprint; its `Display` is the value of the local
    /// description's `a=fingerprint` (RFC 8122 §5).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

fn random<const N: usize>() -> Result<[u8; N], DtlsError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| DtlsError::CertificateGeneration("the system random generator failed".into()))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_are_distinct_p256_and_fingerprinted() {
        let a = Certificate::generate().unwrap();
        let b = Certificate::generate().unwrap();
        assert_ne!(a.der(), b.der());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().hash_function(), HashFunction::Sha256);
        assert!(a.fingerprint().matches(a.der()));
        assert!(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, a.private_key_der()).is_ok());
        // The key never shows up in Debug output.
        assert!(!format!("{a:?}").contains("private_key"));
        // ecdsa-with-SHA256 (1.2.840.10045.4.3.2) signs it.
        let ecdsa_sha256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        assert!(a.der().windows(ecdsa_sha256.len()).any(|w| w == ecdsa_sha256));
    }

    #[test]
    fn from_der_rejects_a_key_that_is_not_ecdsa_pkcs8() {
        let a = Certificate::generate().unwrap();
        assert_eq!(
            Certificate::from_der(a.der().to_vec(), vec![1, 2, 3]).unwrap_err(),
            DtlsError::InvalidPrivateKey
        );
        let again = Certificate::from_der(a.der().to_vec(), a.private_key_der().to_vec()).unwrap();
        assert_eq!(again.fingerprint(), a.fingerprint());
    }
}
