//! The crate's one error type.

/// What was wrong with an RTP packet, an RTCP packet or a header
/// extension value, or why one could not be written.
///
/// Offsets count bytes from the start of the datagram (RTP, compound
/// RTCP) or of the extension block, so a dropped packet can be logged
/// with the place it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// RFC 3550 §5.1: the fixed header is 12 bytes.
    #[error("RTP packet of {0} bytes is shorter than the 12-byte fixed header")]
    RtpTooShort(usize),
    /// RFC 3550 §5.1: the version field is 2.
    #[error("RTP version {0} is not 2")]
    RtpVersion(u8),
    /// RFC 3550 §5.1: the CSRC list follows the fixed header.
    #[error("RTP CSRC count {count} needs {needed} header bytes but the packet has {len}")]
    CsrcOverrun { count: u8, needed: usize, len: usize },
    /// RFC 3550 §5.3.1: the extension header and its data must fit.
    #[error("RTP header extension at byte {offset} declares {declared} bytes but {available} bytes follow")]
    ExtensionOverrun {
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// RFC 8285 §4.2, §4.3: an element's length runs past its block.
    #[error("RTP header extension element id {id} at byte {offset} of the block has length {len}, past the block's {block_len} bytes")]
    ExtensionElementOverrun {
        id: u8,
        offset: usize,
        len: usize,
        block_len: usize,
    },
    /// RFC 3550 §5.1: the last padding octet counts the padding, itself included.
    #[error("RTP padding count {count} is invalid with {available} bytes after the header")]
    RtpPadding { count: u8, available: usize },
    /// A typed header extension value does not follow its specification.
    #[error("{extension} header extension value is malformed: {reason}")]
    InvalidExtensionValue {
        extension: &'static str,
        reason: &'static str,
    },
    /// RFC 8285 §4.2, §4.3: the element cannot be written in this form.
    #[error("header extension element id {id} with {len} bytes cannot be written in the {form} form")]
    ExtensionElementInvalid { id: u8, len: usize, form: &'static str },
    /// An RTCP packet header does not fit in what is left of the datagram.
    #[error("RTCP packet at byte {offset}: {available} bytes left, shorter than the 4-byte header")]
    RtcpTooShort { offset: usize, available: usize },
    /// RFC 3550 §6.4.1: the version field is 2.
    #[error("RTCP packet at byte {offset} has version {version}, not 2")]
    RtcpVersion { offset: usize, version: u8 },
    /// RFC 3550 §6.4.1: the length field runs past the datagram.
    #[error("RTCP packet at byte {offset} declares {declared} bytes but {available} bytes are left")]
    RtcpLengthOverrun {
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// RFC 3550 §6.4.1: the last padding octet counts the padding.
    #[error("RTCP packet at byte {offset} has padding count {count} but is {len} bytes long")]
    RtcpPadding { offset: usize, count: u8, len: usize },
    /// An RTCP packet body is shorter than its type requires.
    #[error("RTCP {packet} at byte {offset} needs {needed} bytes but has {len}")]
    RtcpTruncated {
        packet: &'static str,
        offset: usize,
        needed: usize,
        len: usize,
    },
    /// An RTCP packet body does not follow its RFC's format.
    #[error("RTCP {packet} at byte {offset} is malformed: {reason}")]
    InvalidRtcp {
        packet: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// The caller's buffer cannot hold what is being written.
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall { needed: usize, available: usize },
    /// A list is longer than its field can count.
    #[error("{count} {what} exceed the maximum of {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// A value cannot be written as given.
    #[error("cannot write {what}: {reason}")]
    InvalidInput { what: &'static str, reason: &'static str },
    /// draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1.5: a
    /// receive delta is limited to ±8191.75 ms; a new feedback must start.
    #[error("transport-wide seq {seq} arrived {delta_us} µs from the previous packet, beyond the ±8191.75 ms one feedback can carry")]
    TwccDeltaOutOfRange { seq: u16, delta_us: i64 },
}
