//! The crate's one error type.

/// Why a packet could not be protected or unprotected, or why keys were
/// refused. Every variant is a reason to drop one packet; none leaves a
/// context in a bad state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The packet cannot hold its own headers (RTP: 12 bytes, CSRCs and
    /// extension, RFC 3550 §5.1; RTCP: 8 bytes, RFC 3550 §6.4) plus the
    /// SRTP/SRTCP trailer.
    #[error("packet of {len} bytes is shorter than the {needed} bytes its headers and trailer need")]
    TooShort { len: usize, needed: usize },
    /// RFC 3550 §5.1/§6.4: RTP and RTCP carry version 2.
    #[error("RTP/RTCP version {0} is not 2")]
    UnsupportedVersion(u8),
    /// `len` passed to a protect call is larger than the buffer itself.
    #[error("packet length {len} exceeds the {capacity}-byte buffer")]
    LengthOutOfBounds { len: usize, capacity: usize },
    /// The caller's buffer has no tailroom for the authentication tag (and,
    /// for SRTCP, the 4-byte E flag and index).
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall { needed: usize, available: usize },
    /// RFC 3711 §3.3/§3.4, RFC 7714 §7.2: the authentication tag does not
    /// match, so the packet was forged, corrupted, or keyed differently
    /// (wrong keys, or a rollover counter the receiver guessed wrong).
    #[error("authentication failed for SSRC {ssrc:#010x} at packet index {index}")]
    AuthenticationFailed { ssrc: u32, index: u64 },
    /// RFC 3711 §3.3.2: this packet index was already accepted (received,
    /// or, on a sending context, already protected: reusing an index reuses
    /// keystream).
    #[error("packet index {index} of SSRC {ssrc:#010x} was already seen (replay)")]
    Replayed { ssrc: u32, index: u64 },
    /// RFC 3711 §3.3.2: the index lies behind the replay window, so it
    /// cannot be told from a replay.
    #[error(
        "packet index {index} of SSRC {ssrc:#010x} is behind the replay window (highest {highest}, window {window})"
    )]
    TooOld {
        ssrc: u32,
        index: u64,
        highest: u64,
        window: u64,
    },
    /// RFC 3711 §9.2: 2^48 SRTP packets or 2^31 SRTCP packets have been
    /// protected under these keys; rekey (a new DTLS handshake).
    #[error("the {what} index space of SSRC {ssrc:#010x} is exhausted; rekey")]
    IndexExhausted { ssrc: u32, what: &'static str },
    /// A master key, master salt or session key of the wrong length for the
    /// profile.
    #[error("{what} is {len} bytes, the profile needs {expected}")]
    InvalidKeyLength {
        what: &'static str,
        len: usize,
        expected: usize,
    },
    /// RFC 5764 §4.2: the exported keying material holds two keys and two
    /// salts of the profile's lengths.
    #[error("DTLS-SRTP keying material is {len} bytes, the profile needs {expected}")]
    InvalidKeyingMaterial { len: usize, expected: usize },
    /// The context already tracks its configured maximum number of SSRCs.
    #[error("context already tracks {max} SSRCs; SSRC {ssrc:#010x} refused")]
    TooManyStreams { ssrc: u32, max: usize },
    /// The configured replay window is not a power of two of at least 64.
    #[error("replay window of {0} packets is not a power of two of at least 64")]
    InvalidReplayWindow(usize),
    /// The cryptographic library refused an operation on valid input.
    #[error("cryptographic library error in {0}")]
    Crypto(&'static str),
}
