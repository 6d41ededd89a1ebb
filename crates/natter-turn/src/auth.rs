//! Long-term credentials (RFC 8489 §9.2): static users, the TURN REST
//! shared-secret scheme, and stateless nonces that expire (438).
//!
//! The REST scheme (draft-uberti-behave-turn-rest, as coturn implements
//! it): the username is `<expiry unix time>` or `<expiry>:<user>`, and the
//! password is `base64(HMAC-SHA1(secret, username))`. Several secrets may
//! be configured so one can be rotated out while the other still works.

use std::collections::HashMap;
use std::net::IpAddr;

use aws_lc_rs::{constant_time, hmac};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use natter_stun::{IntegrityKey, PasswordAlgorithm, SecurityFeatures};

/// A user's keys for both password algorithms, computed once.
#[derive(Clone, Debug)]
pub struct UserKeys {
    md5: IntegrityKey,
    sha256: IntegrityKey,
}

impl UserKeys {
    pub fn new(username: &str, realm: &str, password: &str) -> Result<Self, natter_stun::Error> {
        Ok(UserKeys {
            md5: IntegrityKey::long_term(username, realm, password, PasswordAlgorithm::Md5)?,
            sha256: IntegrityKey::long_term(username, realm, password, PasswordAlgorithm::Sha256)?,
        })
    }

    pub fn key(&self, algorithm: PasswordAlgorithm) -> &IntegrityKey {
        match algorithm {
            PasswordAlgorithm::Md5 => &self.md5,
            PasswordAlgorithm::Sha256 => &self.sha256,
        }
    }
}

/// Why a username has no usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// No such static user, and not a REST username.
    NoSuchUser,
    /// A REST username whose expiry has passed.
    Expired,
}

/// The server's users and secrets.
#[derive(Clone, Default)]
pub struct Credentials {
    realm: String,
    users: HashMap<String, UserKeys>,
    /// USERHASH (RFC 8489 §14.4) of each static user.
    userhashes: HashMap<[u8; 32], String>,
    secrets: Vec<hmac::Key>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Credentials {
    pub fn new(realm: &str) -> Self {
        Credentials {
            realm: realm.to_owned(),
            ..Default::default()
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Adds a static user.
    pub fn add_user(&mut self, username: &str, password: &str) -> Result<(), natter_stun::Error> {
        let keys = UserKeys::new(username, &self.realm, password)?;
        self.userhashes
            .insert(natter_stun::userhash(username, &self.realm)?, username.to_owned());
        self.users.insert(username.to_owned(), keys);
        Ok(())
    }

    /// Adds a REST shared secret.
    pub fn add_secret(&mut self, secret: &str) {
        self.secrets
            .push(hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes()));
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.secrets.is_empty()
    }

    /// Whether USERHASH can be resolved: only for static users, so it is
    /// announced only when there are no REST secrets.
    pub fn supports_userhash(&self) -> bool {
        self.secrets.is_empty() && !self.users.is_empty()
    }

    pub fn username_for_hash(&self, hash: &[u8; 32]) -> Option<&str> {
        self.userhashes.get(hash).map(String::as_str)
    }

    /// Whether `username` is a REST username whose expiry has passed.
    pub fn is_expired(&self, username: &str, unix_now: u64) -> bool {
        !self.users.contains_key(username) && rest_expiry(username).is_some_and(|t| t <= unix_now)
    }

    /// The candidate keys for `username` at `unix_now`: one for a static
    /// user, one per secret for a REST username (the caller tries each).
    pub fn keys(&self, username: &str, unix_now: u64) -> Result<Vec<UserKeys>, Unknown> {
        if let Some(keys) = self.users.get(username) {
            return Ok(vec![keys.clone()]);
        }
        if self.secrets.is_empty() {
            return Err(Unknown::NoSuchUser);
        }
        match rest_expiry(username) {
            None => Err(Unknown::NoSuchUser),
            Some(t) if t <= unix_now => Err(Unknown::Expired),
            Some(_) => self
                .secrets
                .iter()
                .map(|s| {
                    let password = rest_password(s, username);
                    UserKeys::new(username, &self.realm, &password).map_err(|_| Unknown::NoSuchUser)
                })
                .collect(),
        }
    }
}

/// The expiry time a REST username starts with.
fn rest_expiry(username: &str) -> Option<u64> {
    username.split(':').next().and_then(|t| t.parse::<u64>().ok())
}

/// The REST password for `username` under `secret`.
fn rest_password(secret: &hmac::Key, username: &str) -> String {
    STANDARD.encode(hmac::sign(secret, username.as_bytes()))
}

/// Mints a REST username and password valid until `expiry` (for tests
/// and for a signaling server handing out credentials).
pub fn rest_credentials(secret: &str, user: &str, expiry_unix: u64) -> (String, String) {
    let username = if user.is_empty() {
        expiry_unix.to_string()
    } else {
        format!("{expiry_unix}:{user}")
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let password = rest_password(&key, &username);
    (username, password)
}

/// Stateless nonces: the security-feature cookie (RFC 8489 §9.2), then
/// base64 of the expiry time and a MAC over it and the client's address,
/// so a nonce cannot be forged, reused from another address, or used
/// after it expires.
#[derive(Clone)]
pub struct NonceMinter {
    key: hmac::Key,
    lifetime_secs: u64,
    cookie: String,
}

/// What a received nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Expired or minted for another client or by another key: 438.
    Stale,
}

impl NonceMinter {
    pub fn new(secret: &[u8; 32], lifetime_secs: u64, features: SecurityFeatures) -> Self {
        NonceMinter {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime_secs,
            cookie: features.cookie(),
        }
    }

    pub fn features(&self) -> SecurityFeatures {
        // The cookie was built from features, so it always parses.
        SecurityFeatures::from_nonce(&self.cookie).unwrap_or_default()
    }

    pub fn mint(&self, client: IpAddr, unix_now: u64) -> String {
        let expiry = (unix_now + self.lifetime_secs) as u32;
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&expiry.to_be_bytes());
        raw[4..].copy_from_slice(&self.mac(expiry, client)[..8]);
        format!("{}{}", self.cookie, STANDARD_NO_PAD.encode(raw))
    }

    pub fn check(&self, nonce: &str, client: IpAddr, unix_now: u64) -> NonceCheck {
        let Some(body) = nonce.strip_prefix(self.cookie.as_str()) else {
            return NonceCheck::Stale;
        };
        let mut raw = [0u8; 12];
        match STANDARD_NO_PAD.decode_slice(body, &mut raw) {
            Ok(12) => {}
            _ => return NonceCheck::Stale,
        }
        let expiry = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let authentic = constant_time::verify_slices_are_equal(&self.mac(expiry, client)[..8], &raw[4..]).is_ok();
        if authentic && u64::from(expiry) > unix_now {
            NonceCheck::Valid
        } else {
            NonceCheck::Stale
        }
    }

    fn mac(&self, expiry: u32, client: IpAddr) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&expiry.to_be_bytes());
        match client {
            IpAddr::V4(v4) => ctx.update(&v4.octets()),
            IpAddr::V6(v6) => ctx.update(&v6.octets()),
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_usernames_expire_and_use_every_secret() {
        let mut c = Credentials::new("natter");
        c.add_secret("old");
        c.add_secret("new");
        let (user, pass) = rest_credentials("new", "alice", 2000);
        let keys = c.keys(&user, 1000).unwrap();
        assert_eq!(keys.len(), 2);
        let expected = UserKeys::new(&user, "natter", &pass).unwrap();
        let mut buf = [0u8; 64];
        let mut w = natter_stun::MessageWriter::new(
            &mut buf,
            natter_stun::MessageType::new(natter_stun::Method::BINDING, natter_stun::Class::Request),
            natter_stun::TransactionId([1; 12]),
        )
        .unwrap();
        w.add_message_integrity(expected.key(PasswordAlgorithm::Md5)).unwrap();
        let n = w.finish();
        let msg = natter_stun::Message::decode(&buf[..n]).unwrap();
        let matching = keys
            .iter()
            .filter(|k| msg.verify_integrity(k.key(PasswordAlgorithm::Md5)).is_ok())
            .count();
        assert_eq!(matching, 1);
        assert_eq!(c.keys(&user, 2000).unwrap_err(), Unknown::Expired);
        assert_eq!(c.keys("alice", 1000).unwrap_err(), Unknown::NoSuchUser);
    }

    #[test]
    fn nonces_expire_and_are_bound_to_the_client() {
        let m = NonceMinter::new(&[3; 32], 600, SecurityFeatures::default());
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let n = m.mint(a, 1000);
        assert_eq!(m.check(&n, a, 1599), NonceCheck::Valid);
        assert_eq!(m.check(&n, a, 1600), NonceCheck::Stale);
        assert_eq!(m.check(&n, b, 1000), NonceCheck::Stale);
        let other = NonceMinter::new(&[4; 32], 600, SecurityFeatures::default());
        assert_eq!(other.check(&n, a, 1000), NonceCheck::Stale);
        assert_eq!(m.check("obMatJos2AAAAgarbage", a, 1000), NonceCheck::Stale);
        assert!(n.len() < 128);
    }
}
