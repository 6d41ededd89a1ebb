//! Attribute types and typed, borrowed attribute values (RFC 8489 §14,
//! RFC 8656 §18, RFC 6062 §6.2, RFC 8445 §16.1, RFC 5780 §7).
//!
//! Each value type implements [`Attribute`]: it decodes from the bytes of
//! a received message without copying, and encodes into a caller's
//! buffer through [`crate::MessageWriter::add`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::Error;
use crate::message::{TransactionId, MAGIC_COOKIE};

// RFC 8489 §18.3.1: comprehension-required range.
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// RFC 5780 §7.2.
pub const CHANGE_REQUEST: u16 = 0x0003;
pub const USERNAME: u16 = 0x0006;
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
pub const ERROR_CODE: u16 = 0x0009;
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// RFC 8656 §18.
pub const CHANNEL_NUMBER: u16 = 0x000C;
pub const LIFETIME: u16 = 0x000D;
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
pub const DATA: u16 = 0x0013;
pub const REALM: u16 = 0x0014;
pub const NONCE: u16 = 0x0015;
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
pub const EVEN_PORT: u16 = 0x0018;
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
pub const DONT_FRAGMENT: u16 = 0x001A;
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
pub const PASSWORD_ALGORITHM: u16 = 0x001D;
pub const USERHASH: u16 = 0x001E;
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub const RESERVATION_TOKEN: u16 = 0x0022;
/// RFC 8445 §16.1.
pub const PRIORITY: u16 = 0x0024;
pub const USE_CANDIDATE: u16 = 0x0025;
/// RFC 5780 §7.
pub const PADDING: u16 = 0x0026;
pub const RESPONSE_PORT: u16 = 0x0027;
/// RFC 6062 §6.2.
pub const CONNECTION_ID: u16 = 0x002A;
// Comprehension-optional range.
pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
pub const ALTERNATE_DOMAIN: u16 = 0x8003;
pub const ICMP: u16 = 0x8004;
pub const SOFTWARE: u16 = 0x8022;
pub const ALTERNATE_SERVER: u16 = 0x8023;
pub const FINGERPRINT: u16 = 0x8028;
pub const ICE_CONTROLLED: u16 = 0x8029;
pub const ICE_CONTROLLING: u16 = 0x802A;
pub const RESPONSE_ORIGIN: u16 = 0x802B;
pub const OTHER_ADDRESS: u16 = 0x802C;

/// Whether this codec understands a comprehension-required attribute.
pub fn is_known(typ: u16) -> bool {
    matches!(
        typ,
        MAPPED_ADDRESS
            | CHANGE_REQUEST
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | CHANNEL_NUMBER
            | LIFETIME
            | XOR_PEER_ADDRESS
            | DATA
            | REALM
            | NONCE
            | XOR_RELAYED_ADDRESS
            | REQUESTED_ADDRESS_FAMILY
            | EVEN_PORT
            | REQUESTED_TRANSPORT
            | DONT_FRAGMENT
            | MESSAGE_INTEGRITY_SHA256
            | PASSWORD_ALGORITHM
            | USERHASH
            | XOR_MAPPED_ADDRESS
            | RESERVATION_TOKEN
            | PRIORITY
            | USE_CANDIDATE
            | PADDING
            | RESPONSE_PORT
            | CONNECTION_ID
    )
}

/// A typed attribute value.
pub trait Attribute<'a>: Sized {
    /// The attribute type on the wire.
    const TYPE: u16;
    /// Decodes the value; XOR-encoded addresses need the transaction id.
    fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, Error>;
    /// Length of the value before padding.
    fn value_len(&self) -> usize;
    /// Writes the value into `out`, which is exactly `value_len()` bytes.
    fn encode(&self, out: &mut [u8], tid: &TransactionId);
}

fn invalid(typ: u16, reason: &'static str) -> Error {
    Error::InvalidAttribute { typ, reason }
}

fn fixed<const N: usize>(typ: u16, value: &[u8]) -> Result<[u8; N], Error> {
    value.try_into().map_err(|_| invalid(typ, "wrong length"))
}

/// RFC 8489 §14.1, §14.2: address family codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AddressFamily {
    V4,
    V6,
}

impl AddressFamily {
    pub fn of(addr: &SocketAddr) -> Self {
        if addr.is_ipv4() {
            AddressFamily::V4
        } else {
            AddressFamily::V6
        }
    }
    fn code(self) -> u8 {
        match self {
            AddressFamily::V4 => 0x01,
            AddressFamily::V6 => 0x02,
        }
    }
    fn from_code(typ: u16, code: u8) -> Result<Self, Error> {
        match code {
            0x01 => Ok(AddressFamily::V4),
            0x02 => Ok(AddressFamily::V6),
            _ => Err(invalid(typ, "unknown address family")),
        }
    }
}

fn decode_address(typ: u16, value: &[u8], xor: Option<&TransactionId>) -> Result<SocketAddr, Error> {
    if value.len() < 4 {
        return Err(invalid(typ, "address shorter than 4 bytes"));
    }
    let family = AddressFamily::from_code(typ, value[1])?;
    let mut port = u16::from_be_bytes([value[2], value[3]]);
    let mask = xor_mask(xor);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        AddressFamily::V4 => {
            let mut b: [u8; 4] = fixed(typ, &value[4..])?;
            if xor.is_some() {
                b.iter_mut().zip(&mask).for_each(|(x, m)| *x ^= m);
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        AddressFamily::V6 => {
            let mut b: [u8; 16] = fixed(typ, &value[4..])?;
            if xor.is_some() {
                b.iter_mut().zip(&mask).for_each(|(x, m)| *x ^= m);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// RFC 8489 §14.2: the cookie followed by the transaction id.
fn xor_mask(tid: Option<&TransactionId>) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(tid) = tid {
        mask[4..].copy_from_slice(&tid.0);
    }
    mask
}

fn address_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() {
        8
    } else {
        20
    }
}

fn encode_address(addr: &SocketAddr, out: &mut [u8], xor: Option<&TransactionId>) {
    let mask = xor_mask(xor);
    out[0] = 0;
    out[1] = AddressFamily::of(addr).code();
    let port = if xor.is_some() {
        addr.port() ^ (MAGIC_COOKIE >> 16) as u16
    } else {
        addr.port()
    };
    out[2..4].copy_from_slice(&port.to_be_bytes());
    let ip = &mut out[4..];
    match addr.ip() {
        IpAddr::V4(v4) => ip.copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => ip.copy_from_slice(&v6.octets()),
    }
    if xor.is_some() {
        ip.iter_mut().zip(&mask).for_each(|(x, m)| *x ^= m);
    }
}

macro_rules! address_attribute {
    ($(#[$doc:meta])* $name:ident, $typ:expr, xor = $xor:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub SocketAddr);

        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $typ;
            fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, Error> {
                decode_address($typ, value, $xor.then_some(tid)).map($name)
            }
            fn value_len(&self) -> usize {
                address_len(&self.0)
            }
            fn encode(&self, out: &mut [u8], tid: &TransactionId) {
                encode_address(&self.0, out, $xor.then_some(tid))
            }
        }
    };
}

address_attribute!(
    /// RFC 8489 §14.1.
    MappedAddress, MAPPED_ADDRESS, xor = false);
address_attribute!(
    /// RFC 8489 §14.2.
    XorMappedAddress, XOR_MAPPED_ADDRESS, xor = true);
address_attribute!(
    /// RFC 8656 §18.3.
    XorPeerAddress, XOR_PEER_ADDRESS, xor = true);
address_attribute!(
    /// RFC 8656 §18.5.
    XorRelayedAddress, XOR_RELAYED_ADDRESS, xor = true);
address_attribute!(
    /// RFC 8489 §14.15.
    AlternateServer, ALTERNATE_SERVER, xor = false);
address_attribute!(
    /// RFC 5780 §7.3.
    ResponseOrigin, RESPONSE_ORIGIN, xor = false);
address_attribute!(
    /// RFC 5780 §7.4.
    OtherAddress, OTHER_ADDRESS, xor = false);

/// Text attributes, with the RFC's limit in bytes.
macro_rules! text_attribute {
    ($(#[$doc:meta])* $name:ident, $typ:expr, max_bytes = $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name<'a>(pub &'a str);

        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: u16 = $typ;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
                if value.len() > $max {
                    return Err(invalid($typ, "too long"));
                }
                std::str::from_utf8(value)
                    .map($name)
                    .map_err(|_| invalid($typ, "not UTF-8"))
            }
            fn value_len(&self) -> usize {
                self.0.len()
            }
            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(self.0.as_bytes())
            }
        }
    };
}

text_attribute!(
    /// RFC 8489 §14.3: fewer than 509 bytes; up to 512 are accepted, as
    /// RFC 5389 allowed.
    Username, USERNAME, max_bytes = 512);
text_attribute!(
    /// RFC 8489 §14.9: fewer than 128 characters (at most 763 bytes).
    Realm, REALM, max_bytes = 763);
text_attribute!(
    /// RFC 8489 §14.10: fewer than 128 characters (at most 763 bytes).
    Nonce, NONCE, max_bytes = 763);
text_attribute!(
    /// RFC 8489 §14.14: fewer than 128 characters (at most 763 bytes).
    Software, SOFTWARE, max_bytes = 763);
text_attribute!(
    /// RFC 8489 §14.16: a domain name, at most 255 bytes.
    AlternateDomain, ALTERNATE_DOMAIN, max_bytes = 255);

/// Attributes carrying opaque bytes.
macro_rules! bytes_attribute {
    ($(#[$doc:meta])* $name:ident, $typ:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name<'a>(pub &'a [u8]);

        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: u16 = $typ;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
                Ok($name(value))
            }
            fn value_len(&self) -> usize {
                self.0.len()
            }
            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(self.0)
            }
        }
    };
}

bytes_attribute!(
    /// RFC 8656 §18.4: the application data of Send and Data indications.
    Data, DATA);
bytes_attribute!(
    /// RFC 5780 §7.6.
    Padding, PADDING);

/// Attributes whose value is a fixed-size integer.
macro_rules! int_attribute {
    ($(#[$doc:meta])* $name:ident($int:ty), $typ:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub $int);

        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $typ;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
                Ok($name(<$int>::from_be_bytes(fixed($typ, value)?)))
            }
            fn value_len(&self) -> usize {
                std::mem::size_of::<$int>()
            }
            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(&self.0.to_be_bytes())
            }
        }
    };
}

int_attribute!(
    /// RFC 8656 §18.2: seconds.
    Lifetime(u32), LIFETIME);
int_attribute!(
    /// RFC 6062 §6.2.1.
    ConnectionId(u32), CONNECTION_ID);
int_attribute!(
    /// RFC 8445 §16.1.
    Priority(u32), PRIORITY);
int_attribute!(
    /// RFC 8445 §16.1: the tie-breaker.
    IceControlled(u64), ICE_CONTROLLED);
int_attribute!(
    /// RFC 8445 §16.1: the tie-breaker.
    IceControlling(u64), ICE_CONTROLLING);
int_attribute!(
    /// RFC 8489 §14.7: CRC-32 of the message XOR 0x5354554e. Written by
    /// [`crate::MessageWriter::add_fingerprint`].
    Fingerprint(u32), FINGERPRINT);

/// Attributes with no value.
macro_rules! flag_attribute {
    ($(#[$doc:meta])* $name:ident, $typ:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name;

        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $typ;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
                if value.is_empty() {
                    Ok($name)
                } else {
                    Err(invalid($typ, "must be empty"))
                }
            }
            fn value_len(&self) -> usize {
                0
            }
            fn encode(&self, _: &mut [u8], _: &TransactionId) {}
        }
    };
}

flag_attribute!(
    /// RFC 8656 §18.8.
    DontFragment, DONT_FRAGMENT);
flag_attribute!(
    /// RFC 8445 §16.1.
    UseCandidate, USE_CANDIDATE);

/// RFC 8656 §18.1: a channel number in the first two bytes, then RFFU.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ChannelNumber(pub u16);

impl<'a> Attribute<'a> for ChannelNumber {
    const TYPE: u16 = CHANNEL_NUMBER;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let b: [u8; 4] = fixed(CHANNEL_NUMBER, value)?;
        Ok(ChannelNumber(u16::from_be_bytes([b[0], b[1]])))
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].copy_from_slice(&self.0.to_be_bytes());
        out[2..].fill(0);
    }
}

/// RFC 8656 §18.6 (REQUESTED-ADDRESS-FAMILY) and §18.11
/// (ADDITIONAL-ADDRESS-FAMILY): a family code, then RFFU.
macro_rules! family_attribute {
    ($(#[$doc:meta])* $name:ident, $typ:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub AddressFamily);

        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $typ;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
                let b: [u8; 4] = fixed($typ, value)?;
                AddressFamily::from_code($typ, b[0]).map($name)
            }
            fn value_len(&self) -> usize {
                4
            }
            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(&[self.0.code(), 0, 0, 0]);
            }
        }
    };
}

family_attribute!(
    /// RFC 8656 §18.6.
    RequestedAddressFamily, REQUESTED_ADDRESS_FAMILY);
family_attribute!(
    /// RFC 8656 §18.11.
    AdditionalAddressFamily, ADDITIONAL_ADDRESS_FAMILY);

/// RFC 8656 §18.7: the R bit asks to reserve the next port as well.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EvenPort {
    pub reserve: bool,
}

impl<'a> Attribute<'a> for EvenPort {
    const TYPE: u16 = EVEN_PORT;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let [b]: [u8; 1] = fixed(EVEN_PORT, value)?;
        Ok(EvenPort { reserve: b & 0x80 != 0 })
    }
    fn value_len(&self) -> usize {
        1
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = if self.reserve { 0x80 } else { 0 };
    }
}

/// RFC 8656 §18.9: an IANA protocol number, then RFFU.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    pub const UDP: RequestedTransport = RequestedTransport(17);
    /// RFC 6062 §6.1.
    pub const TCP: RequestedTransport = RequestedTransport(6);
}

impl<'a> Attribute<'a> for RequestedTransport {
    const TYPE: u16 = REQUESTED_TRANSPORT;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let b: [u8; 4] = fixed(REQUESTED_TRANSPORT, value)?;
        Ok(RequestedTransport(b[0]))
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&[self.0, 0, 0, 0]);
    }
}

/// RFC 8656 §18.10.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ReservationToken(pub [u8; 8]);

impl<'a> Attribute<'a> for ReservationToken {
    const TYPE: u16 = RESERVATION_TOKEN;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        fixed(RESERVATION_TOKEN, value).map(ReservationToken)
    }
    fn value_len(&self) -> usize {
        8
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&self.0);
    }
}

/// RFC 8489 §14.4: HMAC-SHA1 over the message. Written by
/// [`crate::MessageWriter::add_message_integrity`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageIntegrity(pub [u8; 20]);

impl<'a> Attribute<'a> for MessageIntegrity {
    const TYPE: u16 = MESSAGE_INTEGRITY;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        fixed(MESSAGE_INTEGRITY, value).map(MessageIntegrity)
    }
    fn value_len(&self) -> usize {
        20
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&self.0);
    }
}

/// RFC 8489 §14.4: SHA-256 of `username ":" realm`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UserHash(pub [u8; 32]);

impl<'a> Attribute<'a> for UserHash {
    const TYPE: u16 = USERHASH;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        fixed(USERHASH, value).map(UserHash)
    }
    fn value_len(&self) -> usize {
        32
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&self.0);
    }
}

/// RFC 8489 §14.8: a class (3 to 6) and number (0 to 99), and a reason.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorCode<'a> {
    pub code: u16,
    pub reason: &'a str,
}

impl ErrorCode<'static> {
    pub const TRY_ALTERNATE: ErrorCode<'static> = ErrorCode::new(300, "Try Alternate");
    pub const BAD_REQUEST: ErrorCode<'static> = ErrorCode::new(400, "Bad Request");
    pub const UNAUTHORIZED: ErrorCode<'static> = ErrorCode::new(401, "Unauthorized");
    pub const FORBIDDEN: ErrorCode<'static> = ErrorCode::new(403, "Forbidden");
    pub const UNKNOWN_ATTRIBUTE: ErrorCode<'static> = ErrorCode::new(420, "Unknown Attribute");
    pub const ALLOCATION_MISMATCH: ErrorCode<'static> = ErrorCode::new(437, "Allocation Mismatch");
    pub const STALE_NONCE: ErrorCode<'static> = ErrorCode::new(438, "Stale Nonce");
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: ErrorCode<'static> = ErrorCode::new(440, "Address Family not Supported");
    pub const WRONG_CREDENTIALS: ErrorCode<'static> = ErrorCode::new(441, "Wrong Credentials");
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: ErrorCode<'static> =
        ErrorCode::new(442, "Unsupported Transport Protocol");
    pub const PEER_ADDRESS_FAMILY_MISMATCH: ErrorCode<'static> = ErrorCode::new(443, "Peer Address Family Mismatch");
    /// RFC 6062 §6.3.
    pub const CONNECTION_ALREADY_EXISTS: ErrorCode<'static> = ErrorCode::new(446, "Connection Already Exists");
    pub const CONNECTION_TIMEOUT_OR_FAILURE: ErrorCode<'static> = ErrorCode::new(447, "Connection Timeout or Failure");
    pub const ALLOCATION_QUOTA_REACHED: ErrorCode<'static> = ErrorCode::new(486, "Allocation Quota Reached");
    /// RFC 8445 §7.3.1.1.
    pub const ROLE_CONFLICT: ErrorCode<'static> = ErrorCode::new(487, "Role Conflict");
    pub const SERVER_ERROR: ErrorCode<'static> = ErrorCode::new(500, "Server Error");
    pub const INSUFFICIENT_CAPACITY: ErrorCode<'static> = ErrorCode::new(508, "Insufficient Capacity");
}

impl<'a> ErrorCode<'a> {
    pub const fn new(code: u16, reason: &'a str) -> Self {
        ErrorCode { code, reason }
    }
}

impl<'a> Attribute<'a> for ErrorCode<'a> {
    const TYPE: u16 = ERROR_CODE;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        if value.len() < 4 {
            return Err(invalid(ERROR_CODE, "shorter than 4 bytes"));
        }
        if value.len() > 4 + 763 {
            return Err(invalid(ERROR_CODE, "reason phrase too long"));
        }
        let class = (value[2] & 0x07) as u16;
        let number = value[3] as u16;
        if !(3..=6).contains(&class) || number > 99 {
            return Err(invalid(ERROR_CODE, "code outside 300..699"));
        }
        let reason = std::str::from_utf8(&value[4..]).map_err(|_| invalid(ERROR_CODE, "reason not UTF-8"))?;
        Ok(ErrorCode {
            code: class * 100 + number,
            reason,
        })
    }
    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].fill(0);
        out[2] = (self.code / 100) as u8;
        out[3] = (self.code % 100) as u8;
        out[4..].copy_from_slice(self.reason.as_bytes());
    }
}

/// RFC 8656 §18.12: like ERROR-CODE, for one address family of a
/// dual-stack allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AddressErrorCode<'a> {
    pub family: AddressFamily,
    pub error: ErrorCode<'a>,
}

impl<'a> Attribute<'a> for AddressErrorCode<'a> {
    const TYPE: u16 = ADDRESS_ERROR_CODE;
    fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, Error> {
        let family = AddressFamily::from_code(
            ADDRESS_ERROR_CODE,
            *value.first().ok_or(invalid(ADDRESS_ERROR_CODE, "empty"))?,
        )?;
        let error = ErrorCode::decode(value, tid).map_err(|_| invalid(ADDRESS_ERROR_CODE, "bad error code"))?;
        Ok(AddressErrorCode { family, error })
    }
    fn value_len(&self) -> usize {
        self.error.value_len()
    }
    fn encode(&self, out: &mut [u8], tid: &TransactionId) {
        self.error.encode(out, tid);
        out[0] = self.family.code();
    }
}

/// RFC 8656 §18.13: an ICMP packet's type, code and data, reported in a
/// Data indication.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Icmp {
    pub icmp_type: u8,
    pub code: u8,
    pub data: u32,
}

impl<'a> Attribute<'a> for Icmp {
    const TYPE: u16 = ICMP;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let b: [u8; 8] = fixed(ICMP, value)?;
        Ok(Icmp {
            icmp_type: b[2],
            code: b[3],
            data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
    fn value_len(&self) -> usize {
        8
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].fill(0);
        out[2] = self.icmp_type;
        out[3] = self.code;
        out[4..].copy_from_slice(&self.data.to_be_bytes());
    }
}

/// RFC 5780 §7.2.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ChangeRequest {
    pub change_ip: bool,
    pub change_port: bool,
}

impl<'a> Attribute<'a> for ChangeRequest {
    const TYPE: u16 = CHANGE_REQUEST;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let b: [u8; 4] = fixed(CHANGE_REQUEST, value)?;
        Ok(ChangeRequest {
            change_ip: b[3] & 0x04 != 0,
            change_port: b[3] & 0x02 != 0,
        })
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&[0, 0, 0, (self.change_ip as u8) << 2 | (self.change_port as u8) << 1]);
    }
}

/// RFC 5780 §7.5: a port, then two bytes of padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ResponsePort(pub u16);

impl<'a> Attribute<'a> for ResponsePort {
    const TYPE: u16 = RESPONSE_PORT;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let b: [u8; 4] = fixed(RESPONSE_PORT, value)?;
        Ok(ResponsePort(u16::from_be_bytes([b[0], b[1]])))
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].copy_from_slice(&self.0.to_be_bytes());
        out[2..].fill(0);
    }
}

/// RFC 8489 §18.5: password algorithm numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PasswordAlgorithm {
    Md5,
    Sha256,
}

impl PasswordAlgorithm {
    fn code(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }
    fn from_code(code: u16) -> Option<Self> {
        match code {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// RFC 8489 §14.12: the algorithm the client chose, with no parameters.
impl<'a> Attribute<'a> for PasswordAlgorithm {
    const TYPE: u16 = PASSWORD_ALGORITHM;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        if value.len() < 4 {
            return Err(invalid(PASSWORD_ALGORITHM, "shorter than 4 bytes"));
        }
        let code = u16::from_be_bytes([value[0], value[1]]);
        let params = u16::from_be_bytes([value[2], value[3]]) as usize;
        if 4 + crate::message::padded_len(params) != value.len() && 4 + params != value.len() {
            return Err(invalid(PASSWORD_ALGORITHM, "parameter length disagrees"));
        }
        PasswordAlgorithm::from_code(code).ok_or(invalid(PASSWORD_ALGORITHM, "unknown algorithm"))
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].copy_from_slice(&self.code().to_be_bytes());
        out[2..].fill(0);
    }
}

/// RFC 8489 §14.11: the algorithms a server offers, in its order of
/// preference. Unknown algorithms in a received list are skipped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct PasswordAlgorithms {
    list: [Option<PasswordAlgorithm>; 2],
}

impl PasswordAlgorithms {
    pub fn new(algorithms: &[PasswordAlgorithm]) -> Self {
        let mut list = [None; 2];
        for (slot, a) in list.iter_mut().zip(algorithms) {
            *slot = Some(*a);
        }
        PasswordAlgorithms { list }
    }
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm> + '_ {
        self.list.iter().flatten().copied()
    }
    pub fn contains(&self, a: PasswordAlgorithm) -> bool {
        self.iter().any(|x| x == a)
    }
}

impl<'a> Attribute<'a> for PasswordAlgorithms {
    const TYPE: u16 = PASSWORD_ALGORITHMS;
    fn decode(mut value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        let mut out = PasswordAlgorithms::default();
        let mut n = 0;
        while !value.is_empty() {
            if value.len() < 4 {
                return Err(invalid(PASSWORD_ALGORITHMS, "truncated entry"));
            }
            let code = u16::from_be_bytes([value[0], value[1]]);
            let params = crate::message::padded_len(u16::from_be_bytes([value[2], value[3]]) as usize);
            if 4 + params > value.len() {
                return Err(invalid(PASSWORD_ALGORITHMS, "parameters overrun"));
            }
            if let Some(a) = PasswordAlgorithm::from_code(code) {
                if n < out.list.len() && !out.contains(a) {
                    out.list[n] = Some(a);
                    n += 1;
                }
            }
            value = &value[4 + params..];
        }
        Ok(out)
    }
    fn value_len(&self) -> usize {
        4 * self.iter().count()
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        for (chunk, a) in out.chunks_exact_mut(4).zip(self.iter()) {
            chunk[..2].copy_from_slice(&a.code().to_be_bytes());
            chunk[2..].fill(0);
        }
    }
}

/// RFC 8489 §14.13: the comprehension-required attributes a request
/// carried that the receiver does not understand.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct UnknownAttributes {
    types: [u16; UnknownAttributes::CAPACITY],
    len: usize,
}

impl UnknownAttributes {
    /// More than this many are not reported; the client learns of the
    /// rest after it drops these.
    pub const CAPACITY: usize = 16;

    /// Collects up to [`Self::CAPACITY`] types.
    pub fn collect(types: impl IntoIterator<Item = u16>) -> Self {
        let mut out = UnknownAttributes::default();
        for t in types.into_iter().take(Self::CAPACITY) {
            out.types[out.len] = t;
            out.len += 1;
        }
        out
    }
    pub fn types(&self) -> &[u16] {
        &self.types[..self.len]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> Attribute<'a> for UnknownAttributes {
    const TYPE: u16 = UNKNOWN_ATTRIBUTES;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        if value.len() % 2 != 0 {
            return Err(invalid(UNKNOWN_ATTRIBUTES, "odd length"));
        }
        Ok(UnknownAttributes::collect(
            value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])),
        ))
    }
    fn value_len(&self) -> usize {
        2 * self.len
    }
    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        for (chunk, t) in out.chunks_exact_mut(2).zip(self.types()) {
            chunk.copy_from_slice(&t.to_be_bytes());
        }
    }
}
