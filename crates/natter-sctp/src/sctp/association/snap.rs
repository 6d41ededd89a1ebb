//! SNAP, the SCTP Negotiation Acceleration Protocol
//! (draft-hancke-tsvwg-snap-01): each end makes its INIT chunk before
//! the association exists and hands it to the other out of band (in
//! WebRTC, SDP's `a=sctp-init`). With both INITs in hand, each end takes
//! its own tag and TSN from its INIT and the peer's from the other, and
//! is established without INIT, INIT ACK, COOKIE ECHO or COOKIE ACK on
//! the wire (RFC 9260 §5.1's two round trips).

use std::fmt;
use std::time::Duration;

use super::handshake::{our_init, our_params};
use super::{Association, Config, Event, State};
use crate::sctp::chunk::{Chunk, Init, INIT};
use crate::sctp::cookie::Cookie;
use crate::sctp::error::WireError;
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{padded, put_u16, u16_at};

/// The largest out-of-band INIT taken: ours is under 40 bytes, and an
/// INIT that lists every optional parameter still fits.
pub const MAX_SNAP_INIT: usize = 1024;

/// Whose INIT was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapSide {
    Local,
    Peer,
}

impl fmt::Display for SnapSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapSide::Local => "our",
            SnapSide::Peer => "the peer's",
        })
    }
}

/// Why an association cannot be set up from two out-of-band INITs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnapError {
    #[error("{side} SNAP INIT of {len} bytes is longer than {MAX_SNAP_INIT}")]
    TooLong { side: SnapSide, len: usize },
    #[error("{side} SNAP INIT of {len} bytes is not one whole chunk (RFC 9260 §3.2)")]
    NotOneChunk { side: SnapSide, len: usize },
    #[error("{side} SNAP INIT is chunk type {ty}, not INIT (1)")]
    NotInit { side: SnapSide, ty: u8 },
    #[error("{side} SNAP INIT: {error}")]
    Wire { side: SnapSide, error: WireError },
    #[error("{side} SNAP INIT has Initiate Tag 0 (RFC 9260 §3.3.2)")]
    ZeroTag { side: SnapSide },
    #[error("{side} SNAP INIT offers no streams (RFC 9260 §3.3.2)")]
    NoStreams { side: SnapSide },
    #[error("both SNAP INITs carry Initiate Tag 0x{0:08x}: they are the same INIT")]
    SameTag(u32),
    #[error("SNAP sets up a closed association; this one is {0:?}")]
    NotClosed(State),
}

/// Parses one out-of-band INIT chunk (header included) and checks what
/// RFC 9260 §3.3.2 asks of an INIT's fixed part.
pub fn parse_snap_init(bytes: &[u8], side: SnapSide) -> Result<Init<'_>, SnapError> {
    if bytes.len() > MAX_SNAP_INIT {
        return Err(SnapError::TooLong { side, len: bytes.len() });
    }
    let not_one = SnapError::NotOneChunk { side, len: bytes.len() };
    if bytes.len() < 4 {
        return Err(not_one);
    }
    let len = usize::from(u16_at(bytes, 2));
    // The chunk, with or without its padding, and nothing after it.
    if len < 4 || len > bytes.len() || padded(len) < bytes.len() {
        return Err(not_one);
    }
    if bytes[0] != INIT {
        return Err(SnapError::NotInit { side, ty: bytes[0] });
    }
    let init = match Chunk::parse(INIT, bytes[1], &bytes[4..len]) {
        Ok(Chunk::Init(init)) => init,
        Ok(other) => {
            return Err(SnapError::NotInit {
                side,
                ty: other.chunk_type(),
            })
        }
        Err(error) => return Err(SnapError::Wire { side, error }),
    };
    if init.initiate_tag == 0 {
        return Err(SnapError::ZeroTag { side });
    }
    if init.outbound_streams == 0 || init.inbound_streams == 0 {
        return Err(SnapError::NoStreams { side });
    }
    Ok(init)
}

/// Our INIT chunk for `config` (header included, padded), with
/// `initiate_tag` and `initial_tsn` drawn by the caller from a
/// cryptographic RNG (RFC 9260 §5.3.1); a tag of 0 is taken as 1.
pub fn snap_init(config: &Config, initiate_tag: u32, initial_tsn: Tsn) -> Vec<u8> {
    let mut params = Vec::with_capacity(3);
    our_params(config, &[], &mut params);
    let init = Chunk::Init(our_init(config, initiate_tag.max(1), initial_tsn, &params));
    let len = 4 + init.value_len();
    let mut out = vec![0; padded(len)];
    out[0] = INIT;
    out[1] = init.flags();
    // Our INIT is a few dozen bytes: its length fits 16 bits.
    put_u16(&mut out, 2, u16::try_from(len).unwrap_or(u16::MAX));
    init.write_value(&mut out[4..len]);
    out
}

impl Association {
    /// SNAP: sets the association up from our INIT (`local`, made by
    /// [`snap_init`]) and the peer's (`remote`), both chunks exchanged out
    /// of band. Established at once, with [`Event::Connected`]; the first
    /// DATA can go with the next [`Association::poll_transmit`]. Streams
    /// and extensions are negotiated as RFC 9260 §5.1.1 and RFC 5061 would
    /// from an INIT and its INIT ACK. Nothing changes on an error.
    pub fn connect_snap(&mut self, local: &[u8], remote: &[u8]) -> Result<(), SnapError> {
        if self.state != State::Closed {
            return Err(SnapError::NotClosed(self.state));
        }
        let ours = parse_snap_init(local, SnapSide::Local)?;
        let theirs = parse_snap_init(remote, SnapSide::Peer)?;
        if ours.initiate_tag == theirs.initiate_tag {
            return Err(SnapError::SameTag(ours.initiate_tag));
        }
        let cookie = Cookie {
            local_tag: ours.initiate_tag,
            peer_tag: theirs.initiate_tag,
            local_initial_tsn: ours.initial_tsn,
            peer_initial_tsn: theirs.initial_tsn,
            peer_a_rwnd: theirs.a_rwnd,
            outbound_streams: ours.outbound_streams.min(theirs.inbound_streams),
            inbound_streams: ours.inbound_streams.min(theirs.outbound_streams),
            peer: self.capabilities(&theirs),
            local_tie_tag: 0,
            peer_tie_tag: 0,
            created: Duration::ZERO,
            lifetime: Duration::ZERO,
        };
        self.establish(&cookie, Event::Connected);
        Ok(())
    }
}
