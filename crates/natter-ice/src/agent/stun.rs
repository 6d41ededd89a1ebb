//! The STUN messages of ICE: connectivity checks (RFC 8445 §7.2.2),
//! their responses (§7.3.1), Binding indications (§11) and plain
//! Binding requests to STUN servers (§5.1.1.2). Each is written into a
//! stack buffer and returned as the bytes of one datagram. Also the
//! short-term key they are signed with.

use std::net::SocketAddr;

use natter_stun::{
    Class, Error, ErrorCode, IceControlled, IceControlling, IntegrityKey, IntegrityKind, MessageType, MessageWriter,
    Method, Priority, TransactionId, UnknownAttributes, UseCandidate, Username, XorMappedAddress,
};

use super::Role;
use crate::sped::{DtlsInStun, DtlsInStunAck};

/// RFC 8489 §9.1.1 short-term key; a password that fails OpaqueString
/// preparation is used as raw bytes rather than refused, so that the
/// agent can still answer such a peer with a 401 instead of panicking.
pub fn short_term_key(pwd: &str) -> IntegrityKey {
    IntegrityKey::short_term(pwd).unwrap_or_else(|_| IntegrityKey::from_bytes(pwd.as_bytes()))
}

/// Room for the largest message we write: RFC 8839 allows 256-character
/// ufrags, so USERNAME can reach 513 bytes, and SPED embeds a DTLS
/// datagram (natter's DTLS MTU is 1150 by default).
const BUF_LEN: usize = 2048;

/// draft-hancke-webrtc-sped §3.3: what SPED adds to a check or a
/// response: the acknowledgements, then a DTLS packet if one is pending.
pub type Embedded<'a> = Option<(Option<&'a [u8]>, DtlsInStunAck)>;

/// Writes the SPED attributes, acknowledgements first as the draft
/// recommends (§5.3).
fn add_embedded(w: &mut MessageWriter<'_>, embedded: Embedded<'_>) -> Result<(), Error> {
    if let Some((data, ack)) = embedded {
        w.add(&ack)?;
        if let Some(data) = data {
            w.add(&DtlsInStun(data))?;
        }
    }
    Ok(())
}

/// The attributes of a connectivity check.
pub struct CheckRequest<'a> {
    /// RFC 8445 §7.2.2: `remote ufrag ":" local ufrag`.
    pub username: &'a str,
    /// The remote password (short-term credential, RFC 8489 §9.1).
    pub key: &'a IntegrityKey,
    /// RFC 8445 §7.1.1: the priority a peer-reflexive candidate learnt
    /// from this check would have.
    pub priority: u32,
    pub role: Role,
    pub tie_breaker: u64,
    pub use_candidate: bool,
    pub embedded: Embedded<'a>,
}

/// RFC 8445 §7.1: a Binding request with USERNAME, PRIORITY,
/// ICE-CONTROLLING or ICE-CONTROLLED, USE-CANDIDATE, MESSAGE-INTEGRITY
/// and FINGERPRINT.
pub fn check_request(tid: TransactionId, req: &CheckRequest<'_>) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; BUF_LEN];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid)?;
    w.add(&Username(req.username))?;
    w.add(&Priority(req.priority))?;
    match req.role {
        Role::Controlling => w.add(&IceControlling(req.tie_breaker))?,
        Role::Controlled => w.add(&IceControlled(req.tie_breaker))?,
    }
    if req.use_candidate {
        w.add(&UseCandidate)?;
    }
    add_embedded(&mut w, req.embedded)?;
    w.add_message_integrity(req.key)?;
    w.add_fingerprint()?;
    let len = w.finish();
    Ok(buf[..len].to_vec())
}

/// RFC 8445 §7.3.1: the success response, with XOR-MAPPED-ADDRESS of
/// the request's source (and SPED's attributes, if on), protected with the local password by the same
/// integrity attribute as the request (RFC 8489 §9.1.3).
pub fn success_response(
    tid: TransactionId,
    mapped: SocketAddr,
    key: &IntegrityKey,
    kind: IntegrityKind,
    embedded: Embedded<'_>,
) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; BUF_LEN];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::SuccessResponse), tid)?;
    w.add(&XorMappedAddress(mapped))?;
    add_embedded(&mut w, embedded)?;
    w.add_integrity(key, kind)?;
    w.add_fingerprint()?;
    let len = w.finish();
    Ok(buf[..len].to_vec())
}

/// An error response; authenticated ones (487, 420 after a valid
/// integrity check) carry integrity, 400 and 401 do not (RFC 8489
/// §9.1.3).
pub fn error_response(
    tid: TransactionId,
    code: ErrorCode<'_>,
    unknown: Option<&UnknownAttributes>,
    key: Option<(&IntegrityKey, IntegrityKind)>,
) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; BUF_LEN];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::ErrorResponse), tid)?;
    w.add(&code)?;
    if let Some(unknown) = unknown {
        w.add(unknown)?;
    }
    if let Some((key, kind)) = key {
        w.add_integrity(key, kind)?;
    }
    w.add_fingerprint()?;
    let len = w.finish();
    Ok(buf[..len].to_vec())
}

/// RFC 8445 §11: a keepalive is a Binding indication with FINGERPRINT
/// and no authentication.
pub fn binding_indication(tid: TransactionId) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Indication), tid)?;
    w.add_fingerprint()?;
    let len = w.finish();
    Ok(buf[..len].to_vec())
}

/// RFC 8489 §6.1: an unauthenticated Binding request to a STUN server.
pub fn binding_request(tid: TransactionId) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid)?;
    w.add_fingerprint()?;
    let len = w.finish();
    Ok(buf[..len].to_vec())
}
