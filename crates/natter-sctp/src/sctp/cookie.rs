//! The State Cookie (RFC 9260 §5.1.3): everything the INIT ACK's sender
//! needs to set up the association later, so that it keeps no state for
//! an INIT, authenticated by an HMAC (§5.1.3 asks for a MAC over it with
//! a secret key) so that only cookies it made come back valid.
//!
//! Its layout is ours alone (only its maker reads it): 48 bytes of fields,
//! then HMAC-SHA256 over them.

use std::time::Duration;

use aws_lc_rs::hmac;

use super::tsn::Tsn;
use super::wire::{put_u16, put_u32, u16_at, u32_at};

/// Fields, then the MAC.
const FIELDS: usize = 48;
const MAC: usize = 32;
pub const COOKIE_LEN: usize = FIELDS + MAC;

/// What the peer supports, from its INIT or INIT ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// RFC 3758 (FORWARD TSN).
    pub partial_reliability: bool,
    /// RFC 6525 (RE-CONFIG).
    pub stream_reset: bool,
    /// RFC 8260 (I-DATA, I-FORWARD-TSN).
    pub interleaving: bool,
    /// RFC 9653: the peer accepts zero checksums over DTLS.
    pub zero_checksum: bool,
}

impl Capabilities {
    fn bits(self) -> u8 {
        u8::from(self.partial_reliability)
            | u8::from(self.stream_reset) << 1
            | u8::from(self.interleaving) << 2
            | u8::from(self.zero_checksum) << 3
    }

    fn from_bits(b: u8) -> Self {
        Capabilities {
            partial_reliability: b & 1 != 0,
            stream_reset: b & 2 != 0,
            interleaving: b & 4 != 0,
            zero_checksum: b & 8 != 0,
        }
    }
}

/// The association parameters a cookie carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// The tag the INIT ACK's sender chose (its Initiate Tag).
    pub local_tag: u32,
    /// The INIT's Initiate Tag.
    pub peer_tag: u32,
    pub local_initial_tsn: Tsn,
    pub peer_initial_tsn: Tsn,
    pub peer_a_rwnd: u32,
    /// Streams negotiated each way (the lower of the two offers, §5.1.1).
    pub outbound_streams: u16,
    pub inbound_streams: u16,
    pub peer: Capabilities,
    /// The tags of the association that existed when the INIT came (0
    /// when none did), to tell a restart from a stale cookie (§5.2.4).
    pub local_tie_tag: u32,
    pub peer_tie_tag: u32,
    /// When the cookie was made, since the maker's epoch.
    pub created: Duration,
    pub lifetime: Duration,
}

/// Why a COOKIE ECHO was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not a cookie this endpoint made (wrong length or MAC): discarded
    /// silently (§5.1.5 step 2).
    Forged,
    /// Valid but older than its lifetime by this much (§5.1.5 step 3);
    /// the ERROR that says so goes to `peer_tag`.
    Stale { by: Duration, peer_tag: u32 },
}

/// The HMAC key, and further secrets (tags, TSNs) derived from the
/// caller's one secret: HMAC-SHA256(secret, label ‖ counter).
pub struct Secrets {
    root: hmac::Key,
    cookie: hmac::Key,
    counter: u64,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    pub fn new(secret: &[u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let cookie = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&root, b"state cookie").as_ref());
        Secrets {
            root,
            cookie,
            counter: 0,
        }
    }

    /// A fresh unpredictable 32-bit number (§5.3.1 wants verification tags
    /// and initial TSNs random); never 0, which no tag may be.
    pub fn next_u32(&mut self) -> u32 {
        loop {
            self.counter += 1;
            let mut input = [0u8; 12];
            input[..4].copy_from_slice(b"rand");
            input[4..].copy_from_slice(&self.counter.to_be_bytes());
            let tag = hmac::sign(&self.root, &input);
            let b = tag.as_ref();
            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if n != 0 {
                return n;
            }
        }
    }

    /// Writes `c` with its MAC.
    pub fn seal(&self, c: &Cookie) -> [u8; COOKIE_LEN] {
        let mut out = [0u8; COOKIE_LEN];
        put_u32(&mut out, 0, c.local_tag);
        put_u32(&mut out, 4, c.peer_tag);
        put_u32(&mut out, 8, c.local_initial_tsn.0);
        put_u32(&mut out, 12, c.peer_initial_tsn.0);
        put_u32(&mut out, 16, c.peer_a_rwnd);
        put_u16(&mut out, 20, c.outbound_streams);
        put_u16(&mut out, 22, c.inbound_streams);
        out[24] = c.peer.bits();
        put_u32(&mut out, 28, c.local_tie_tag);
        put_u32(&mut out, 32, c.peer_tie_tag);
        // Milliseconds since the epoch fit 64 bits for 500 million years.
        out[36..44].copy_from_slice(&(c.created.as_millis() as u64).to_be_bytes());
        put_u32(&mut out, 44, u32::try_from(c.lifetime.as_millis()).unwrap_or(u32::MAX));
        let mac = hmac::sign(&self.cookie, &out[..FIELDS]);
        out[FIELDS..].copy_from_slice(mac.as_ref());
        out
    }

    /// Checks a cookie that came back at `now` (since the epoch).
    pub fn open(&self, b: &[u8], now: Duration) -> Result<Cookie, CookieError> {
        if b.len() != COOKIE_LEN || hmac::verify(&self.cookie, &b[..FIELDS], &b[FIELDS..]).is_err() {
            return Err(CookieError::Forged);
        }
        let mut created = [0u8; 8];
        created.copy_from_slice(&b[36..44]);
        let c = Cookie {
            local_tag: u32_at(b, 0),
            peer_tag: u32_at(b, 4),
            local_initial_tsn: Tsn(u32_at(b, 8)),
            peer_initial_tsn: Tsn(u32_at(b, 12)),
            peer_a_rwnd: u32_at(b, 16),
            outbound_streams: u16_at(b, 20),
            inbound_streams: u16_at(b, 22),
            peer: Capabilities::from_bits(b[24]),
            local_tie_tag: u32_at(b, 28),
            peer_tie_tag: u32_at(b, 32),
            created: Duration::from_millis(u64::from_be_bytes(created)),
            lifetime: Duration::from_millis(u64::from(u32_at(b, 44))),
        };
        let age = now.saturating_sub(c.created);
        if age > c.lifetime {
            return Err(CookieError::Stale {
                by: age - c.lifetime,
                peer_tag: c.peer_tag,
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie() -> Cookie {
        Cookie {
            local_tag: 1,
            peer_tag: 2,
            local_initial_tsn: Tsn(3),
            peer_initial_tsn: Tsn(4),
            peer_a_rwnd: 5,
            outbound_streams: 6,
            inbound_streams: 7,
            peer: Capabilities {
                partial_reliability: true,
                stream_reset: false,
                interleaving: true,
                zero_checksum: true,
            },
            local_tie_tag: 8,
            peer_tie_tag: 9,
            created: Duration::from_millis(10_000),
            lifetime: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_sealed_cookie_opens_to_the_same_fields() {
        let s = Secrets::new(&[7; 32]);
        let sealed = s.seal(&cookie());
        assert_eq!(s.open(&sealed, Duration::from_secs(11)), Ok(cookie()));
    }

    #[test]
    fn a_changed_byte_or_another_secret_is_forged() {
        let s = Secrets::new(&[7; 32]);
        let mut sealed = s.seal(&cookie());
        assert_eq!(
            Secrets::new(&[8; 32]).open(&sealed, Duration::ZERO),
            Err(CookieError::Forged)
        );
        sealed[3] ^= 1;
        assert_eq!(s.open(&sealed, Duration::ZERO), Err(CookieError::Forged));
        assert_eq!(s.open(&sealed[1..], Duration::ZERO), Err(CookieError::Forged));
    }

    #[test]
    fn an_old_cookie_is_stale_by_its_age_past_the_lifetime() {
        let s = Secrets::new(&[7; 32]);
        let sealed = s.seal(&cookie());
        assert_eq!(
            s.open(&sealed, Duration::from_millis(70_250)),
            Err(CookieError::Stale {
                by: Duration::from_millis(250),
                peer_tag: 2
            })
        );
    }

    #[test]
    fn derived_numbers_differ_and_depend_on_the_secret() {
        let mut a = Secrets::new(&[1; 32]);
        let mut b = Secrets::new(&[2; 32]);
        let xs: Vec<u32> = (0..4).map(|_| a.next_u32()).collect();
        let ys: Vec<u32> = (0..4).map(|_| b.next_u32()).collect();
        assert_ne!(xs, ys);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(Secrets::new(&[1; 32]).next_u32(), xs[0]);
    }
}
