//! DTLS-SRTP for the peer connection: the local certificate, fingerprints
//! and a sans-IO DTLS transport that hands out SRTP contexts.
//!
//! Implements:
//! - RFC 8122 §5: `a=fingerprint` values (sha-1, sha-224, sha-256, sha-384,
//!   sha-512; md2/md5 refused), checking the peer certificate against the
//!   strongest hash function offered.
//! - RFC 5763 §5 / RFC 8842 §5: `a=setup:active` is the DTLS client; the
//!   peer is authenticated by its certificate's fingerprint alone (RFC 8827
//!   §6.5), so certificates are self-signed ECDSA P-256 ([`Certificate`]).
//! - RFC 5764: the `use_srtp` extension and the export of SRTP keys with
//!   the label `EXTRACTOR-dtls_srtp` (§4.2), split into client and server
//!   master keys and salts ([`SrtpKeyingMaterial`]) and turned into
//!   natter-srtp contexts for both directions.
//! - RFC 8261 §5: application data records carry SCTP packets, one per
//!   record ([`DtlsTransport::send_application_data`]).
//! - RFC 7983: only datagrams whose first byte is 20..=63 are DTLS.
//!
//! The handshake itself (DTLS 1.2, RFC 6347; DTLS 1.3, RFC 9147) is
//! dimpl's: 0.9.0 with natter's patch for RSA peers, vendored in
//! `vendor/dimpl` as a `[patch.crates-io]` (its `NATTER-PATCH.md` lists
//! the changes), and named only in `transport.rs`.
//!
//! # Why this implementation (issue 17)
//!
//! dimpl 0.9.0 had no RSA, so peers with RSA certificates (GStreamer
//! webrtcbin, SIP gateways) could not connect. Three ways to reach them
//! were measured side by side on this machine (2 shared cores, so the
//! times are noisy; `crates/natter/tests/dtls_openssl.rs` prints natter's
//! own): DTLS 1.2 ECDSA handshakes between two instances in memory, and
//! a client against `openssl s_server -dtls1_2` over UDP (which demands
//! a cookie round trip).
//!
//! | | dimpl + RSA patch (chosen) | `openssl` crate, OpenSSL 3.0 | `rtc-dtls` 0.21 |
//! |---|---|---|---|
//! | in memory: round trips, bytes | 2, 1.49 kB | 2, 2.16 kB | 3 (always a cookie), 1.80 kB |
//! | in memory: CPU, both sides | 0.35-0.45 ms (+1.2 ms per side for dimpl's provider self-test in `Config::build`) | 1.4-1.5 ms | 0.55 ms |
//! | vs s_server, ECDSA / RSA-2048 / RSA-4096 | 3.1 / 5.8 / 9.8 ms, 3 RT | 3.0 / 3.2 / 11.9 ms, 3 RT | 2.4 / 3.1 / 9.5 ms, 3 RT |
//! | crates added to natter | 0 (a patch of 350 added and 130 removed lines on dimpl's 36,000) | 6, and the system libssl3 (libssl-dev to build) | 89 (rustls, rkyv, x509-parser 0.16, ...) |
//! | time as an argument | yes | no: OpenSSL's DTLS timers read its own clock (`DTLSv1_handle_timeout` fires what *it* finds due; `DTLS_set_timer_cb` only sets durations), so the virtual-clock tests could not run | yes |
//! | DTLS 1.3 | yes (natter to natter; off by default, see below) | no (OpenSSL 3.0) | no |
//! | fuzzing | `fuzz_targets/dtls_receive.rs` through this module: 48,000 inputs, no crash (260 per second: each builds a dimpl `Config`) | not run | not run |
//!
//! All three completed RSA-2048 and RSA-4096 handshakes with
//! `s_server` and exported OpenSSL's SRTP keys. The patch keeps
//! everything this module had (sans-IO, seeded determinism, DTLS 1.3,
//! the loss and reordering tests) and adds nothing to build; its cost is
//! a fork to carry until dimpl takes RSA upstream.
//!
//! # What dimpl 0.9.0 with natter's patch does, and does not
//!
//! Read from its source (the version is pinned, so this stays true):
//!
//! - **Cipher suites.** DTLS 1.2: `ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`,
//!   `ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`,
//!   `ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`, and (patch) the same
//!   three with `ECDHE_RSA` (RFC 5289 §3, RFC 7905 §2), offered after the
//!   ECDSA ones and chosen by a server whose certificate is RSA;
//!   extended master secret (RFC 7627) is required. DTLS 1.3: `TLS_AES_128_GCM_SHA256`,
//!   `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`. Groups
//!   X25519, P-256, P-384.
//! - **SRTP profiles.** `SRTP_AEAD_AES_256_GCM`, `SRTP_AEAD_AES_128_GCM`,
//!   `SRTP_AES128_CM_HMAC_SHA1_80`, always offered in that order (the list
//!   is hard-coded, not configurable); as server dimpl picks the first of
//!   those three that the client offered, whatever the client's order.
//!   natter therefore cannot offer them in Chromium's order, which puts
//!   the smaller tag first (libwebrtc
//!   `CryptoOptions::GetSupportedDtlsSrtpCryptoSuites`: AES128_CM_SHA1_80,
//!   then, when GCM is enabled, AEAD_AES_256_GCM, AEAD_AES_128_GCM; "GCM
//!   cipher suites are not the top choice since they increase the packet
//!   size"). OpenSSL and BoringSSL as server pick by their own order, so
//!   with Chromium as DTLS server expect AES128_CM_SHA1_80, and with natter
//!   as server AEAD_AES_256_GCM (both checked against OpenSSL offering
//!   libwebrtc's order, not yet against a browser). Both are
//!   secure; GCM costs 6 more bytes of tag per SRTP packet.
//!   `SRTP_AES128_CM_HMAC_SHA1_32` is never negotiated.
//! - **DTLS 1.3.** dimpl implements it (RFC 9147, with ACKs and
//!   KeyUpdate) and an auto-sensing mode, [`VersionPolicy::Auto`]: a client
//!   sends one ClientHello that a DTLS 1.2 server (OpenSSL, aiortc) answers
//!   as 1.2 and a 1.3 server as 1.3; a server follows the ClientHello's
//!   `supported_versions`, reassembling a fragmented one (Chromium's, with
//!   a post-quantum key share; dimpl has no ML-KEM, so it takes X25519 or
//!   P-256 from the same offer or asks again with a HelloRetryRequest).
//!   So a Chromium that offers DTLS 1.3 would get 1.3 from natter with
//!   `Auto`. Our tests found two faults in dimpl 0.9.0 that keep
//!   [`VersionPolicy::Dtls12`] the default: the auto-sensing client fails
//!   for good if the first datagram it gets back is not the ServerHello (a
//!   server flight split over datagrams and reordered, or any stray
//!   DTLS-looking packet), and a DTLS 1.3 client receiving the fragments
//!   of a server flight out of order can stall, re-arming its ACK timer at
//!   the same instant (a busy loop of ACKs that [`DtlsTransport`] bounds
//!   with a 10 ms timer floor; the handshake then times out). Neither
//!   shows with ECDSA certificates at the default MTU without reordering,
//!   and DTLS 1.2 passes every loss, reordering and fragmentation test.
//! - **RSA peers (patch), in both roles; our certificate stays ECDSA.**
//!   The ClientHello's and the CertificateRequest's
//!   signature_algorithms list `ecdsa_secp256r1_sha256`,
//!   `ecdsa_secp384r1_sha384`, `rsa_pss_rsae_sha256/384/512` (RFC 8446
//!   §4.2.3, which §1.3 allows in TLS 1.2; OpenSSL 3 picks them first)
//!   and `rsa_pkcs1_sha256/384/512` (RFC 5246 §7.4.1.4.1); the
//!   CertificateRequest asks for `ecdsa_sign` and `rsa_sign` (§7.4.4).
//!   A server's RSA ServerKeyExchange and a client's RSA
//!   CertificateVerify are verified with aws-lc-rs (keys of 2048 to
//!   8192 bits; PKCS#1 v1.5 and PSS). A client offers the ECDHE_RSA
//!   suites whatever its own key: the suite names the server's. Tested
//!   against `openssl s_server`/`s_client` with RSA-2048 and RSA-4096
//!   certificates, each signature scheme forced in turn
//!   (tests/dtls_openssl.rs). Not covered: RSA in DTLS 1.3 (dimpl's 1.3
//!   offers ECDSA only; OpenSSL 3.0 has no DTLS 1.3 to test against),
//!   RSA keys under 2048 bits, and keys with the RSASSA-PSS OID
//!   (`rsa_pss_pss_*`).
//! - **Errors.** Every dimpl error is fatal; malformed, replayed and
//!   unauthenticated records are dropped inside dimpl without one. A
//!   fatal alert from the peer fails the association with
//!   [`DtlsError::PeerAlert`] (dimpl takes plaintext epoch-0 alerts only
//!   until the peer's ChangeCipherSpec, then only authenticated ones).
//!   When dimpl gives up it sometimes queues an alert of its own (a DTLS
//!   1.2 client without a certificate gets `handshake_failure`); we send
//!   that alert and nothing else it queued.
//! - **Alerts for a fingerprint mismatch.** dimpl has no certificate
//!   verifier callback and no way to send an alert on the application's
//!   behalf: it hands out the peer certificate (`Output::PeerCert`
//!   in 0.9: the client's at ServerHelloDone, the server's at the
//!   client's Certificate) and leaves the check to us. In DTLS 1.2 both
//!   points come before our ChangeCipherSpec, so the alert RFC 5246 §7.2
//!   asks for is a plaintext epoch-0 record, which we write ourselves
//!   (`bad_certificate`, 42, with dimpl's next epoch-0 sequence number)
//!   after discarding the flight dimpl had queued; the peer fails at
//!   once instead of retransmitting until its handshake times out.
//!   [`DtlsTransport::sent_alert`] reports it. In DTLS 1.3 the alert
//!   would have to be encrypted under handshake keys that dimpl does not
//!   expose, so none is sent and the peer times out. If the remote
//!   fingerprint only arrives after the handshake completed (possible
//!   with [`DtlsTransport::set_remote_fingerprints`] called late; the
//!   peer connection always sets it first), the peer already reads
//!   epoch 1 and would drop a plaintext alert, so none is sent either.
//!   What dimpl lacks for the full answer: a verifier hook that can
//!   refuse the certificate inside the handshake (so dimpl itself sends
//!   the alert under the current epoch, in both versions), or a
//!   `Dtls::abort(alert_description)` that sends a fatal alert under
//!   the current write epoch.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use natter::dtls::*;
//!
//! let now = Instant::now();
//! let (a_cert, b_cert) = (Certificate::generate()?, Certificate::generate()?);
//! let mut a = DtlsTransport::new(DtlsRole::Client, &a_cert, DtlsConfig::default(), now)?;
//! let mut b = DtlsTransport::new(DtlsRole::Server, &b_cert, DtlsConfig::default(), now)?;
//! // From the SDP: each side learns the other's a=fingerprint.
//! a.set_remote_fingerprints(vec![b_cert.fingerprint().to_string().parse()?])?;
//! b.set_remote_fingerprints(vec![a_cert.fingerprint().clone()])?;
//!
//! let mut buf = Vec::new();
//! for _ in 0..10 {
//!     while a.poll_transmit(&mut buf).is_some() {
//!         b.handle_receive(now, &buf);
//!     }
//!     while b.poll_transmit(&mut buf).is_some() {
//!         a.handle_receive(now, &buf);
//!     }
//! }
//! let Some(DtlsEvent::Connected(mut connected)) = a.poll_event() else { panic!() };
//! assert_eq!(b.state(), DtlsState::Connected);
//!
//! // SRTP keyed by the handshake.
//! let rtp = [0x80, 96, 0, 1, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, b'h', b'i'];
//! let mut packet = [0u8; 64];
//! packet[..rtp.len()].copy_from_slice(&rtp);
//! let len = connected.local_srtp.protect_rtp(&mut packet, rtp.len())?;
//! # let _ = len;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cert;
mod error;
mod fingerprint;
mod keying;
mod transport;

pub use cert::{Certificate, BACKDATE, LIFETIME};
pub use error::{alert_name, DtlsError};
pub use fingerprint::{verify_certificate, Fingerprint, HashFunction};
pub use keying::{SrtpKeyingMaterial, SRTP_EXPORTER_LABEL};
pub use transport::{
    DtlsConfig, DtlsConnected, DtlsEvent, DtlsRole, DtlsState, DtlsTransport, DtlsVersion, VersionPolicy,
    ALERT_BAD_CERTIFICATE, MAX_APPLICATION_DATA,
};

/// RFC 7983 §7: a datagram whose first byte is in 20..=63 is DTLS (as
/// opposed to STUN 0..=3, ZRTP 16..=19, TURN channel 64..=79, RTP/RTCP
/// 128..=191).
pub fn is_dtls(first_byte: u8) -> bool {
    (20..=63).contains(&first_byte)
}
