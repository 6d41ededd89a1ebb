//! Errors of the SCTP wire format: what was wrong and where.

/// A received SCTP packet, chunk, parameter or error cause that does not
/// follow RFC 9260 §3. The packet it came in is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("SCTP packet of {len} bytes is shorter than the 12-byte common header")]
    PacketTooShort { len: usize },
    #[error("SCTP checksum 0x{found:08x} is not the packet's CRC32c 0x{computed:08x}")]
    BadChecksum { found: u32, computed: u32 },
    #[error("chunk type {ty} at offset {offset}: length {length} is below 4 or overruns the {available} bytes left")]
    ChunkLength {
        ty: u8,
        offset: usize,
        length: u16,
        available: usize,
    },
    #[error("chunk type {ty}: {what}")]
    Chunk { ty: u8, what: &'static str },
    #[error("TLV type 0x{ty:04x}: length {length} is below 4 or overruns the {available} bytes left")]
    TlvLength { ty: u16, length: u16, available: usize },
    #[error("parameter 0x{ty:04x}: {what}")]
    Param { ty: u16, what: &'static str },
}

/// The caller's buffer cannot hold what was to be written into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffer too small: {needed} bytes needed, {available} available")]
pub struct BufferTooSmall {
    pub needed: usize,
    pub available: usize,
}
