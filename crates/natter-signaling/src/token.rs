//! Join tokens: JWTs (RFC 7519) signed with HMAC-SHA256 (RFC 7518 §3.2,
//! `HS256`) under the server's secret.

use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, Refusal};

/// The claims of a join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The room it admits to.
    pub room: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// When present, the display name is fixed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Signs and checks join tokens under one secret.
#[derive(Clone)]
pub struct TokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        TokenKey {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A token for `claims`.
    pub fn mint(&self, claims: &JoinClaims) -> String {
        // HS256 signing of serializable claims cannot fail.
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing")
    }

    /// The claims of `token` if it is signed by this key, unexpired at
    /// `now_unix` and for `room`.
    pub fn verify(&self, token: &str, room: &str, now_unix: u64) -> Result<JoinClaims, Refusal> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the caller's clock, without leeway.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        let claims = decode::<JoinClaims>(token, &self.decoding, &validation)
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm => "not HS256",
                    ErrorKind::MissingRequiredClaim(_) => "a claim is missing",
                    _ => "malformed",
                };
                Refusal::new(ErrorCode::TokenInvalid, format!("token: {why}"))
            })?
            .claims;
        if claims.exp <= now_unix {
            return Err(Refusal::new(ErrorCode::TokenExpired, "token has expired"));
        }
        if claims.room != room {
            return Err(Refusal::new(ErrorCode::TokenInvalid, "token is for another room"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> JoinClaims {
        JoinClaims {
            room: "r".into(),
            exp,
            name: Some("Ann".into()),
            iat: None,
        }
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let key = TokenKey::new(b"secret");
        let token = key.mint(&claims(1000));
        assert_eq!(key.verify(&token, "r", 999).unwrap(), claims(1000));
        let code = |r: Result<JoinClaims, Refusal>| r.unwrap_err().code;
        assert_eq!(code(key.verify(&token, "r", 1000)), ErrorCode::TokenExpired);
        assert_eq!(code(key.verify(&token, "other", 999)), ErrorCode::TokenInvalid);
        assert_eq!(
            code(TokenKey::new(b"other").verify(&token, "r", 999)),
            ErrorCode::TokenInvalid
        );
        assert_eq!(code(key.verify("garbage", "r", 999)), ErrorCode::TokenInvalid);
        // alg "none" with the same claims must not pass.
        let body = token.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.");
        assert_eq!(code(key.verify(&none, "r", 999)), ErrorCode::TokenInvalid);
    }
}
