//! natter-stun: a sans-IO codec for STUN and TURN messages.
//!
//! Implements:
//! - RFC 8489 (STUN): the header and classes (§5), every attribute of
//!   §14, MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 (§14.5, §14.6),
//!   FINGERPRINT (§14.7), short-term and long-term credentials with MD5
//!   and SHA-256 keys (§9), PASSWORD-ALGORITHMS, USERHASH and the nonce
//!   cookie with security features (§9.2), OpaqueString preparation
//!   (RFC 8265) of usernames, realms and passwords.
//! - RFC 8656 (TURN): its methods and attributes (§17, §18) and
//!   ChannelData (§12), with stream framing for TCP and TLS (§12.5).
//! - RFC 6062 (TURN TCP relay): Connect, ConnectionBind,
//!   ConnectionAttempt and CONNECTION-ID.
//! - RFC 8445 (ICE): PRIORITY, USE-CANDIDATE, ICE-CONTROLLED,
//!   ICE-CONTROLLING; RFC 5780: CHANGE-REQUEST, RESPONSE-PORT, PADDING,
//!   RESPONSE-ORIGIN, OTHER-ADDRESS.
//!
//! Decoding borrows the received bytes ([`Message`], [`ChannelData`]);
//! encoding writes into a caller's buffer ([`MessageWriter`]). Nothing
//! here does I/O or reads a clock; the hot paths do not allocate.
//!
//! ```
//! use natter_stun::*;
//! let key = IntegrityKey::long_term("user", "realm", "pass", PasswordAlgorithm::Md5)?;
//! let mut buf = [0u8; 256];
//! let typ = MessageType::new(Method::ALLOCATE, Class::Request);
//! let mut w = MessageWriter::new(&mut buf, typ, TransactionId([1; 12]))?;
//! w.add(&RequestedTransport::UDP)?;
//! w.add(&Username("user"))?;
//! w.add_message_integrity(&key)?;
//! w.add_fingerprint()?;
//! let len = w.finish();
//!
//! let msg = Message::decode(&buf[..len])?;
//! assert_eq!(msg.method(), Method::ALLOCATE);
//! assert_eq!(msg.verify_integrity(&key)?, IntegrityKind::Sha1);
//! assert_eq!(msg.require::<Username>()?.0, "user");
//! # Ok::<(), Error>(())
//! ```

pub mod attribute;
mod channel_data;
mod error;
mod fingerprint;
mod framing;
mod integrity;
mod message;
mod nonce;
mod writer;

pub use attribute::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AlternateDomain, AlternateServer, Attribute,
    ChangeRequest, ChannelNumber, ConnectionId, Data, DontFragment, ErrorCode, EvenPort, Fingerprint, IceControlled,
    IceControlling, Icmp, Lifetime, MappedAddress, MessageIntegrity, Nonce, OtherAddress, Padding, PasswordAlgorithm,
    PasswordAlgorithms, Priority, Realm, RequestedAddressFamily, RequestedTransport, ReservationToken, ResponseOrigin,
    ResponsePort, Software, UnknownAttributes, UseCandidate, UserHash, Username, XorMappedAddress, XorPeerAddress,
    XorRelayedAddress,
};
pub use channel_data::{ChannelData, CHANNEL_DATA_HEADER_LEN, CHANNEL_NUMBERS, LEGACY_CHANNEL_NUMBERS};
pub use error::Error;
pub use framing::{stream_frame_len, PacketKind};
pub use integrity::{long_term_key, opaque_string, userhash, IntegrityKey};
pub use message::{
    decode_header, padded_len, Class, IntegrityKind, Message, MessageType, Method, RawAttribute, RawAttributes,
    TransactionId, ATTRIBUTE_HEADER_LEN, HEADER_LEN, MAGIC_COOKIE,
};
pub use nonce::{SecurityFeatures, NONCE_COOKIE};
pub use writer::MessageWriter;
