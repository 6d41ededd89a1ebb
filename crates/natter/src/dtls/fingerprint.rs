//! Certificate fingerprints as SDP carries them (RFC 8122 §5,
//! `a=fingerprint:sha-256 AB:CD:...`), and checking a peer certificate
//! against them. natter-sdp reads and writes the attribute
//! ([`natter_sdp::Fingerprint`], any hash function and length, as
//! written); a [`Fingerprint`] here is one natter can verify with: a
//! hash function it has and a digest of that function's length.

use core::fmt;
use core::str::FromStr;

use aws_lc_rs::digest;

use super::DtlsError;

/// A hash function of RFC 8122 §5 (`hash-func`), from the IANA "Hash
/// Function Textual Names" registry. md2 and md5 are not offered: RFC 8122
/// §5 forbids them for new fingerprints and they prove nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashFunction {
    /// `sha-1` (RFC 3174); still sent by some older gateways.
    Sha1,
    /// `sha-224` (RFC 6234).
    Sha224,
    /// `sha-256` (RFC 6234): what browsers send and what we generate.
    Sha256,
    /// `sha-384` (RFC 6234).
    Sha384,
    /// `sha-512` (RFC 6234).
    Sha512,
}

impl HashFunction {
    /// Every hash function, weakest first (the order is our preference,
    /// RFC 8122 §5: verify with the strongest one the peer offered).
    pub const ALL: [HashFunction; 5] = [
        HashFunction::Sha1,
        HashFunction::Sha224,
        HashFunction::Sha256,
        HashFunction::Sha384,
        HashFunction::Sha512,
    ];

    /// The textual name of RFC 8122 §5, e.g. `sha-256`.
    pub const fn name(self) -> &'static str {
        match self {
            HashFunction::Sha1 => "sha-1",
            HashFunction::Sha224 => "sha-224",
            HashFunction::Sha256 => "sha-256",
            HashFunction::Sha384 => "sha-384",
            HashFunction::Sha512 => "sha-512",
        }
    }

    /// Bytes of digest the function produces.
    pub const fn output_len(self) -> usize {
        match self {
            HashFunction::Sha1 => 20,
            HashFunction::Sha224 => 28,
            HashFunction::Sha256 => 32,
            HashFunction::Sha384 => 48,
            HashFunction::Sha512 => 64,
        }
    }

    /// The function with textual name `name`, compared ignoring ASCII
    /// case (some stacks send `SHA-256`).
    pub fn from_name(name: &str) -> Option<HashFunction> {
        HashFunction::from_sdp(&natter_sdp::HashFunction::from_name(name))
    }

    /// The function an SDP fingerprint names, if natter can verify with
    /// it (not md2, md5 or an unknown name).
    pub fn from_sdp(hash: &natter_sdp::HashFunction) -> Option<HashFunction> {
        match hash {
            natter_sdp::HashFunction::Sha1 => Some(HashFunction::Sha1),
            natter_sdp::HashFunction::Sha224 => Some(HashFunction::Sha224),
            natter_sdp::HashFunction::Sha256 => Some(HashFunction::Sha256),
            natter_sdp::HashFunction::Sha384 => Some(HashFunction::Sha384),
            natter_sdp::HashFunction::Sha512 => Some(HashFunction::Sha512),
            natter_sdp::HashFunction::Md5 | natter_sdp::HashFunction::Md2 | natter_sdp::HashFunction::Other(_) => None,
        }
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            HashFunction::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashFunction::Sha224 => &digest::SHA224,
            HashFunction::Sha256 => &digest::SHA256,
            HashFunction::Sha384 => &digest::SHA384,
            HashFunction::Sha512 => &digest::SHA512,
        }
    }
}

impl fmt::Display for HashFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A certificate fingerprint: a hash function and the digest of the
/// certificate's DER encoding under it (RFC 8122 §5).
///
/// `Display` gives the SDP attribute value, `sha-256 AB:CD:...` with
/// uppercase hex as RFC 8122's `UHEX` asks; [`Fingerprint::parse`] reads
/// one, accepting lowercase hex too.
///
/// ```
/// use natter::dtls::{Fingerprint, HashFunction};
/// let fp: Fingerprint = "sha-256 2a:01:FF:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:42"
///     .parse()?;
/// assert_eq!(fp.hash_function(), HashFunction::Sha256);
/// assert_eq!(fp.to_string(), "sha-256 2A:01:FF:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:42");
/// # Ok::<(), natter::dtls::DtlsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    hash_function: HashFunction,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate under `hash_function`.
    pub fn of_certificate(hash_function: HashFunction, certificate_der: &[u8]) -> Fingerprint {
        Fingerprint {
            hash_function,
            digest: digest::digest(hash_function.algorithm(), certificate_der)
                .as_ref()
                .to_vec(),
        }
    }

    /// A fingerprint from its parts; the digest must be as long as the
    /// hash function's output.
    pub fn new(hash_function: HashFunction, digest: Vec<u8>) -> Result<Fingerprint, DtlsError> {
        if digest.len() != hash_function.output_len() {
            return Err(DtlsError::length(
                &format!("{hash_function} ({} bytes)", digest.len()),
                hash_function,
                digest.len(),
            ));
        }
        Ok(Fingerprint { hash_function, digest })
    }

    /// Parses the value of an `a=fingerprint` attribute (RFC 8122 §5)
    /// with natter-sdp's grammar: `hash-func SP fingerprint`, e.g.
    /// `sha-256 AB:CD:...`. Leading and trailing whitespace is ignored;
    /// hex digits may be either case.
    pub fn parse(value: &str) -> Result<Fingerprint, DtlsError> {
        let written: natter_sdp::Fingerprint = value
            .trim()
            .parse()
            .map_err(|e: natter_sdp::ValueError| DtlsError::malformed(value, e.to_string()))?;
        Fingerprint::try_from(&written)
    }

    /// The hash function.
    pub fn hash_function(&self) -> HashFunction {
        self.hash_function
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// Whether `certificate_der` hashes to this fingerprint. The digests
    /// are compared in constant time.
    pub fn matches(&self, certificate_der: &[u8]) -> bool {
        let actual = digest::digest(self.hash_function.algorithm(), certificate_der);
        constant_time_eq(actual.as_ref(), &self.digest)
    }
}

/// One that natter can verify with, or why not.
impl TryFrom<&natter_sdp::Fingerprint> for Fingerprint {
    type Error = DtlsError;

    fn try_from(written: &natter_sdp::Fingerprint) -> Result<Fingerprint, DtlsError> {
        let hash_function = HashFunction::from_sdp(&written.hash)
            .ok_or_else(|| DtlsError::UnsupportedHashFunction(written.hash.name().to_owned()))?;
        Fingerprint::new(hash_function, written.bytes.clone())
    }
}

/// As SDP writes it (natter-sdp's `Display`).
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = natter_sdp::HashFunction::from_name(self.hash_function.name());
        natter_sdp::Fingerprint::new(hash, self.digest.clone()).fmt(f)
    }
}

impl FromStr for Fingerprint {
    type Err = DtlsError;

    fn from_str(s: &str) -> Result<Fingerprint, DtlsError> {
        Fingerprint::parse(s)
    }
}

/// RFC 8122 §5: checks `certificate_der` against the remote description's
/// fingerprints. Of the hash functions offered, the strongest is used;
/// the certificate must match one fingerprint with that function. Returns
/// the matching fingerprint.
pub fn verify_certificate(certificate_der: &[u8], expected: &[Fingerprint]) -> Result<Fingerprint, DtlsError> {
    let Some(strongest) = expected.iter().map(Fingerprint::hash_function).max() else {
        return Err(DtlsError::NoRemoteFingerprint);
    };
    let candidates: Vec<Fingerprint> = expected
        .iter()
        .filter(|f| f.hash_function == strongest)
        .cloned()
        .collect();
    let actual = Fingerprint::of_certificate(strongest, certificate_der);
    if candidates.iter().any(|f| constant_time_eq(&f.digest, &actual.digest)) {
        Ok(actual)
    } else {
        Err(DtlsError::FingerprintMismatch {
            expected: candidates,
            actual,
        })
    }
}

/// Compares without an early exit, so timing does not tell how many
/// leading bytes matched. The lengths are public (they follow from the
/// hash function).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_ABC: &str =
        "sha-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";

    #[test]
    fn formats_and_parses_sha256_of_abc() {
        // FIPS 180-2 appendix B.1: SHA-256("abc").
        let fp = Fingerprint::of_certificate(HashFunction::Sha256, b"abc");
        assert_eq!(fp.to_string(), SHA256_ABC);
        assert_eq!(Fingerprint::parse(SHA256_ABC).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&SHA256_ABC.to_lowercase()).unwrap(), fp);
        assert_eq!(
            Fingerprint::parse(&format!("  {}\r\n", SHA256_ABC.replace(' ', "  "))).unwrap(),
            fp
        );
        assert!(fp.matches(b"abc"));
        assert!(!fp.matches(b"abd"));
    }

    #[test]
    fn every_hash_function_round_trips() {
        for h in HashFunction::ALL {
            let fp = Fingerprint::of_certificate(h, b"certificate");
            assert_eq!(fp.digest().len(), h.output_len());
            let text = fp.to_string();
            assert!(text.starts_with(h.name()));
            assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
            let upper_name = text.replacen(h.name(), &h.name().to_uppercase(), 1);
            assert_eq!(upper_name.parse::<Fingerprint>().unwrap(), fp);
        }
    }

    #[test]
    fn sha1_of_abc() {
        // FIPS 180-1 appendix A.
        let fp = Fingerprint::of_certificate(HashFunction::Sha1, b"abc");
        assert_eq!(
            fp.to_string(),
            "sha-1 A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
        );
    }

    #[test]
    fn rejects_malformed_values_with_a_reason() {
        let cases = [
            ("", "hash function"),
            ("sha-256", "fingerprint"),
            ("sha-256 BA:78:16", "3 bytes, sha-256 produces 32"),
            ("sha-256 BA:7:16", "BA:7:16"),
            ("sha-256 BA:78::16", "BA:78::16"),
            ("sha-256 BA-78", "BA-78"),
            ("sha-256 ZZ", "ZZ"),
        ];
        for (value, reason) in cases {
            let err = Fingerprint::parse(value).unwrap_err();
            assert!(err.to_string().contains(reason), "{value:?}: {err}");
        }
        let sha1_digest_as_sha256 = SHA256_ABC.replacen("sha-256", "sha-1", 1);
        assert!(Fingerprint::parse(&sha1_digest_as_sha256)
            .unwrap_err()
            .to_string()
            .contains("32 bytes, sha-1 produces 20"));
        assert_eq!(
            Fingerprint::parse("md5 00:11").unwrap_err(),
            DtlsError::UnsupportedHashFunction("md5".into())
        );
    }

    #[test]
    fn verification_uses_the_strongest_offered_hash() {
        let cert = b"peer certificate";
        let good256 = Fingerprint::of_certificate(HashFunction::Sha256, cert);
        let good1 = Fingerprint::of_certificate(HashFunction::Sha1, cert);
        let other256 = Fingerprint::of_certificate(HashFunction::Sha256, b"other");
        assert_eq!(
            verify_certificate(cert, std::slice::from_ref(&good256)).unwrap(),
            good256
        );
        assert_eq!(
            verify_certificate(cert, &[other256.clone(), good256.clone()]).unwrap(),
            good256
        );
        assert_eq!(
            verify_certificate(cert, &[good1.clone(), good256.clone()]).unwrap(),
            good256
        );
        // A matching sha-1 does not rescue a mismatching sha-256.
        let err = verify_certificate(cert, &[good1, other256.clone()]).unwrap_err();
        assert_eq!(
            err,
            DtlsError::FingerprintMismatch {
                expected: vec![other256],
                actual: good256
            }
        );
        assert!(err.to_string().starts_with("peer certificate sha-256 "));
        assert_eq!(
            verify_certificate(cert, &[]).unwrap_err(),
            DtlsError::NoRemoteFingerprint
        );
    }

    #[test]
    fn new_checks_the_digest_length() {
        assert!(Fingerprint::new(HashFunction::Sha256, vec![0; 32]).is_ok());
        assert!(Fingerprint::new(HashFunction::Sha256, vec![0; 20]).is_err());
    }
}
