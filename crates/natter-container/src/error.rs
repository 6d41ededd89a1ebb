//! The crate's one error type.

use std::io;

/// What was wrong with a file, or why one could not be written.
///
/// Readers return these for any malformed or truncated input and never
/// panic; after an error the reader's place in the input is unspecified,
/// so stop reading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reader or writer underneath failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The input ends inside a header or body.
    #[error("{what} at byte {offset} is truncated: {needed} bytes needed, {available} there")]
    Truncated {
        what: &'static str,
        /// From the start of what the reader was given.
        offset: u64,
        needed: usize,
        available: usize,
    },
    /// libvpx `ivfdec.c`: a file starts with "DKIF".
    #[error("IVF signature {0:02x?} is not \"DKIF\"")]
    IvfSignature([u8; 4]),
    /// libvpx `ivfdec.c`: version 0 is the only one.
    #[error("IVF version {0} is not 0")]
    IvfVersion(u16),
    /// libvpx `ivfenc.c`: the version 0 header is 32 bytes.
    #[error("IVF header length {0} is not 32")]
    IvfHeaderLen(u16),
    /// The frame size field is 4 bytes.
    #[error("IVF frame of {0} bytes does not fit the 4-byte size field")]
    IvfFrameTooLarge(usize),
    /// RFC 3533 §6: every page starts with "OggS".
    #[error("Ogg capture pattern {0:02x?} is not \"OggS\"")]
    OggCapturePattern([u8; 4]),
    /// RFC 3533 §6: stream_structure_version is 0.
    #[error("Ogg stream structure version {0} is not 0")]
    OggVersion(u8),
    /// RFC 3533 §6: the CRC over the page with its CRC field zeroed.
    #[error("Ogg page {sequence} of stream {serial:#010x}: CRC field {stored:#010x}, page sums to {computed:#010x}")]
    OggCrc {
        serial: u32,
        sequence: u32,
        stored: u32,
        computed: u32,
    },
    /// RFC 3533 §4, §6: pages and the packets across them do not follow
    /// on from each other.
    #[error("Ogg page {sequence} of stream {serial:#010x}: {reason}")]
    OggStream {
        serial: u32,
        sequence: u32,
        reason: &'static str,
    },
    /// RFC 6716 §3: the packet breaks one of the rules R1 to R7.
    #[error("Opus packet: {0}")]
    OpusPacket(&'static str),
    /// RFC 7845 §5: an OpusHead or OpusTags packet is malformed or missing.
    #[error("{header}: {reason}")]
    OpusHeader { header: &'static str, reason: &'static str },
    /// ITU-T H.264 Annex B: the byte stream does not start with a start code.
    #[error("H.264 byte stream does not start with a start code")]
    AnnexBStartCode,
    /// ITU-T H.264 §7.4.1: a NAL unit cannot be written as it is.
    #[error("H.264 NAL unit {index} of the access unit: {reason}")]
    NalUnit { index: usize, reason: &'static str },
    /// ISO/IEC 14496-15 §5.3.3.1: no AVCDecoderConfigurationRecord can
    /// be made from the access unit.
    #[error("H.264 decoder configuration: {0}")]
    AvcConfig(&'static str),
    /// AV1 §5.5: no AV1CodecConfigurationRecord can be made from the
    /// temporal unit, or it is malformed.
    #[error("AV1 temporal unit: {0}")]
    Av1(&'static str),
    /// A WebM file has 1 to 126 tracks (one-byte track numbers).
    #[error("a WebM file needs 1 to 126 tracks, not {0}")]
    WebmTracks(usize),
    /// A block for a track the file does not have.
    #[error("WebM track {track} does not exist: the file has {tracks}")]
    WebmTrack { track: usize, tracks: usize },
    /// A block's time is past `webm::MAX_TIMESTAMP_MS`.
    #[error("WebM block at {0:?} is later than the 2^40 ms a file may span")]
    WebmTimestamp(std::time::Duration),
}

#[cfg(test)]
impl Error {
    /// Offset, bytes needed and bytes there of a [`Error::Truncated`].
    pub(crate) fn truncation(&self) -> Option<(u64, usize, usize)> {
        match *self {
            Error::Truncated {
                offset,
                needed,
                available,
                ..
            } => Some((offset, needed, available)),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
