//! The DTLS layer's one error type.

use super::fingerprint::{Fingerprint, HashFunction};

/// Why a certificate, a fingerprint or a DTLS association could not be
/// used. Variants from a running [`DtlsTransport`](super::DtlsTransport)
/// arrive in [`DtlsEvent::Failed`](super::DtlsEvent::Failed) and are final:
/// the association is dead and a new one needs a new handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// rcgen could not make the self-signed certificate.
    #[error("generating the self-signed ECDSA P-256 certificate failed: {0}")]
    CertificateGeneration(String),
    /// The private key given with a certificate is not a PKCS#8 ECDSA
    /// P-256 or P-384 key (the only kinds dimpl signs with).
    #[error("the private key is not a PKCS#8 ECDSA P-256 or P-384 key")]
    InvalidPrivateKey,
    /// RFC 8122 §5: the hash function of an `a=fingerprint` is not one we
    /// verify with (md2 and md5 are refused on purpose).
    #[error("fingerprint hash function {0:?} is not supported (sha-1, sha-224, sha-256, sha-384 or sha-512)")]
    UnsupportedHashFunction(String),
    /// RFC 8122 §5: an `a=fingerprint` value is not `hash-func SP
    /// 2HEX *(":" 2HEX)` with as many bytes as the hash function produces.
    #[error("malformed fingerprint {value:?}: {reason}")]
    MalformedFingerprint { value: String, reason: String },
    /// An empty set of remote fingerprints was given.
    #[error("no remote fingerprint given: the remote description must carry at least one a=fingerprint")]
    NoRemoteFingerprint,
    /// RFC 8122 §5, RFC 8842 §5: the certificate the peer presented in the
    /// handshake does not hash to any fingerprint of the remote description.
    #[error(
        "peer certificate {actual} does not match the remote description's fingerprint ({})",
        list(expected)
    )]
    FingerprintMismatch {
        /// The remote description's fingerprints with the hash function
        /// that was compared.
        expected: Vec<Fingerprint>,
        /// The peer certificate's fingerprint with that hash function.
        actual: Fingerprint,
    },
    /// RFC 5764 §4.1.1: the handshake finished without a `use_srtp`
    /// profile, so there are no SRTP keys (the peer did not answer the
    /// extension or shares no profile with us).
    #[error("DTLS handshake completed without negotiating a DTLS-SRTP protection profile (RFC 5764 use_srtp)")]
    NoSrtpProfile,
    /// The negotiated SRTP profile is not one natter-srtp implements.
    #[error("negotiated SRTP protection profile {0} is not supported")]
    UnsupportedSrtpProfile(String),
    /// The exported keying material could not key SRTP.
    #[error("SRTP keying failed: {0}")]
    Srtp(#[from] natter_srtp::Error),
    /// The handshake did not complete within the configured time or
    /// number of retransmissions: the peer is silent, stopped answering
    /// (e.g. it rejected our fingerprint), or the handshake stalled.
    #[error("DTLS handshake timed out ({0})")]
    HandshakeTimeout(String),
    /// The peer sent a fatal alert (RFC 5246 §7.2): in epoch 0 during the
    /// handshake (plaintext, as every alert before ChangeCipherSpec is),
    /// or authenticated afterwards. Its name is [`alert_name`].
    #[error("peer sent fatal DTLS alert {description} ({}){}", alert_name(*description), alert_hint(*description))]
    PeerAlert { description: u8 },
    /// The peer's certificate or signatures are of a kind we cannot
    /// verify: we verify ECDSA P-256/P-384 and RSA (2048 to 8192 bits,
    /// PKCS#1 v1.5 or PSS with an rsaEncryption key) in DTLS 1.2, ECDSA
    /// only in DTLS 1.3 (see the module documentation).
    #[error("peer certificate not supported ({0}); natter verifies ECDSA P-256/P-384 and, in DTLS 1.2, RSA-2048 to RSA-8192")]
    UnsupportedPeerCertificate(String),
    /// Any other DTLS protocol failure reported by dimpl.
    #[error("DTLS protocol error: {0}")]
    Protocol(String),
    /// A [`DtlsConfig`](super::DtlsConfig) value dimpl refuses.
    #[error("invalid DTLS configuration: {0}")]
    Config(String),
    /// Application data was offered before the association was connected
    /// (handshake done and peer fingerprint verified) or after it closed.
    #[error("cannot send application data: the DTLS association is {0}")]
    NotConnected(&'static str),
    /// Application data larger than one DTLS record can carry.
    #[error("application data of {len} bytes exceeds the {max}-byte DTLS record limit")]
    MessageTooLarge { len: usize, max: usize },
}

fn list(fingerprints: &[Fingerprint]) -> String {
    let names: Vec<String> = fingerprints.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// The name RFC 5246 §7.2 (and RFC 8446 §6 for the TLS 1.3 additions)
/// gives an alert description, for the alerts a WebRTC peer is likely to
/// send; `"unknown alert"` for the rest.
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        109 => "missing_extension",
        110 => "unsupported_extension",
        116 => "certificate_required",
        _ => "unknown alert",
    }
}

/// What an alert usually means between WebRTC peers, where that is not
/// obvious from its name.
fn alert_hint(description: u8) -> &'static str {
    match description {
        40 => ": no common cipher suite, signature algorithm, group or SRTP profile",
        42 | 46 => {
            ": a WebRTC peer sends this when our certificate does not match the fingerprint of its remote description"
        }
        _ => "",
    }
}

impl DtlsError {
    pub(crate) fn malformed(value: &str, reason: impl Into<String>) -> DtlsError {
        DtlsError::MalformedFingerprint {
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn length(value: &str, hash: HashFunction, len: usize) -> DtlsError {
        DtlsError::malformed(
            value,
            format!("{len} bytes, {} produces {}", hash.name(), hash.output_len()),
        )
    }
}
