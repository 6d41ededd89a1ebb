//! The DTLS parameters of a description: the certificate fingerprint
//! (`a=fingerprint`, RFC 8122 §5) and the connection role (`a=setup`,
//! RFC 4145 §4, used for DTLS by RFC 8842 §5).

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{token, Fields};

/// The hash function of a fingerprint (RFC 8122 §5, IANA "Hash Function
/// Textual Names"). Names compare case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashFunction {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Md5,
    Md2,
    /// Any other name, as written; never one of the names above.
    Other(String),
}

impl HashFunction {
    /// The hash function named `name`.
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "sha-1" => HashFunction::Sha1,
            "sha-224" => HashFunction::Sha224,
            "sha-256" => HashFunction::Sha256,
            "sha-384" => HashFunction::Sha384,
            "sha-512" => HashFunction::Sha512,
            "md5" => HashFunction::Md5,
            "md2" => HashFunction::Md2,
            _ => HashFunction::Other(name.to_string()),
        }
    }

    /// The name as written in SDP.
    pub fn name(&self) -> &str {
        match self {
            HashFunction::Sha1 => "sha-1",
            HashFunction::Sha224 => "sha-224",
            HashFunction::Sha256 => "sha-256",
            HashFunction::Sha384 => "sha-384",
            HashFunction::Sha512 => "sha-512",
            HashFunction::Md5 => "md5",
            HashFunction::Md2 => "md2",
            HashFunction::Other(name) => name,
        }
    }
}

/// `a=fingerprint:<hash function> <hex bytes separated by colons>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub hash: HashFunction,
    /// The digest of the certificate; never empty.
    pub bytes: Vec<u8>,
}

impl Fingerprint {
    pub fn new(hash: HashFunction, bytes: Vec<u8>) -> Self {
        Fingerprint { hash, bytes }
    }
}

impl TypedAttribute for Fingerprint {
    const NAME: &'static str = "fingerprint";
}

impl FromStr for Fingerprint {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let hash = HashFunction::from_name(token("hash function", fields.next("hash function")?)?);
        let hex = fields.next("fingerprint")?;
        fields.end()?;
        // RFC 8122 §5: `2UHEX *(":" 2UHEX)`; lower case is accepted too.
        let bytes = hex
            .split(':')
            .map(
                |pair| match pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                    true => u8::from_str_radix(pair, 16).map_err(|_| ValueError::invalid("fingerprint", hex)),
                    false => Err(ValueError::invalid("fingerprint", hex)),
                },
            )
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Fingerprint { hash, bytes })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash.name())?;
        for (i, byte) in self.bytes.iter().enumerate() {
            let separator = if i == 0 { ' ' } else { ':' };
            write!(f, "{separator}{byte:02X}")?;
        }
        Ok(())
    }
}

/// `a=setup` (RFC 4145 §4): which side opens the connection; for DTLS,
/// `active` is the client (RFC 8842 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    Active,
    Passive,
    /// Either; what an offer says (RFC 8842 §5).
    ActPass,
    HoldConn,
}

impl Setup {
    pub fn name(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

impl TypedAttribute for Setup {
    const NAME: &'static str = "setup";
}

impl FromStr for Setup {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "active" => Ok(Setup::Active),
            "passive" => Ok(Setup::Passive),
            "actpass" => Ok(Setup::ActPass),
            "holdconn" => Ok(Setup::HoldConn),
            other => Err(ValueError::invalid("setup role", other)),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
