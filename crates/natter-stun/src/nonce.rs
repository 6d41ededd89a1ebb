//! RFC 8489 §9.2: the nonce cookie that announces the security features
//! a server supports ("obMatJos2" followed by 24 feature bits in base64).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// RFC 8489 §9.2: the prefix of a nonce that carries security features.
pub const NONCE_COOKIE: &str = "obMatJos2";

/// RFC 8489 §18.1: the security feature bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SecurityFeatures {
    /// Bit 0: the server supports PASSWORD-ALGORITHMS.
    pub password_algorithms: bool,
    /// Bit 1: the server supports USERHASH.
    pub username_anonymity: bool,
}

impl SecurityFeatures {
    /// The 13 characters that start a nonce announcing these features.
    pub fn cookie(&self) -> String {
        let bits = [
            (self.password_algorithms as u8) << 7 | (self.username_anonymity as u8) << 6,
            0,
            0,
        ];
        format!("{NONCE_COOKIE}{}", STANDARD.encode(bits))
    }

    /// The features a nonce announces; `None` if it has no cookie.
    pub fn from_nonce(nonce: &str) -> Option<Self> {
        let rest = nonce.strip_prefix(NONCE_COOKIE)?;
        let bits = STANDARD.decode(rest.get(..4)?).ok()?;
        Some(SecurityFeatures {
            password_algorithms: bits[0] & 0x80 != 0,
            username_anonymity: bits[0] & 0x40 != 0,
        })
    }
}
