//! natter-srtp: sans-IO SRTP and SRTCP.
//!
//! Implements:
//! - RFC 3711 (SRTP): AES-CM encryption (§4.1.1), HMAC-SHA1 authentication
//!   (§4.2.1), session key derivation with the AES-CM PRF (§4.3, key
//!   derivation rate 0 only), SRTP (§3.3) and SRTCP (§3.4, with the E flag
//!   on receive and send), rollover counter estimation (§3.3.1, Appendix
//!   A), replay protection (§3.3.2) with a configurable bitmap window.
//! - RFC 7714 (AES-GCM for SRTP): AEAD_AES_128_GCM and AEAD_AES_256_GCM
//!   for SRTP (§7, §8) and SRTCP, encrypted and authenticated-only (§9).
//! - RFC 5764 (DTLS-SRTP): the four profiles' parameters (§4.1.2) and the
//!   split of the exported keying material into send and receive keys
//!   (§4.2).
//!
//! Not implemented: MKI (no MKI is ever sent; DTLS-SRTP does not use it),
//! key derivation rates other than zero, the NULL cipher, header
//! extension encryption (RFC 6904) and `AES_256_CM` profiles (RFC 6188).
//!
//! Packets are transformed in place in the caller's buffer: protecting
//! needs [`ProtectionProfile::rtp_overhead`] (or `rtcp_overhead`) bytes of
//! tailroom, unprotecting returns the plaintext length. A context expands
//! its ciphers with its first packet (one that never carries any costs
//! only its master key); nothing allocates per packet, reads a clock or
//! does I/O.
//!
//! ```
//! use natter_srtp::*;
//! let profile = ProtectionProfile::AeadAes128Gcm;
//! // Keying material exported from DTLS ("EXTRACTOR-dtls_srtp").
//! let material = vec![7u8; profile.keying_material_len()];
//! let (mut client_tx, _client_rx) = SrtpContext::from_dtls(profile, &material, Role::Client, Config::default())?;
//! let (_server_tx, mut server_rx) = SrtpContext::from_dtls(profile, &material, Role::Server, Config::default())?;
//!
//! let rtp = [0x80, 96, 0, 1, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, b'h', b'i'];
//! let mut buf = [0u8; 1500];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let srtp_len = client_tx.protect_rtp(&mut buf, rtp.len())?;
//! assert_eq!(srtp_len, rtp.len() + profile.rtp_overhead());
//!
//! let rtp_len = server_rx.unprotect_rtp(&mut buf[..srtp_len])?;
//! assert_eq!(&buf[..rtp_len], &rtp);
//! // The same packet again is a replay.
//! assert!(matches!(client_tx.protect_rtp(&mut buf, rtp.len()), Err(Error::Replayed { .. })));
//! # Ok::<(), Error>(())
//! ```

mod aes_cm;
mod aes_gcm;
mod context;
mod error;
mod header;
mod hmac_sha1;
pub mod key_derivation;
mod profile;
pub mod replay;
pub mod rollover;
mod transform;

pub use context::{Config, Role, SrtpContext, MAX_SRTCP_INDEX};
pub use error::Error;
pub use key_derivation::{derive_session_key, Label, SessionKeys};
pub use profile::ProtectionProfile;
pub use replay::{ReplayWindow, Verdict};
pub use rollover::{estimate_index, rollover_counter, MAX_INDEX};
