//! natter-rtp: a sans-IO codec for RTP and RTCP packets.
//!
//! Implements:
//! - RFC 3550 (RTP): the RTP header with CSRCs, header extension and
//!   padding (§5.1, §5.3.1); compound RTCP framing (§6.1, Appendix A.2);
//!   SR, RR, SDES, BYE and APP (§6.4 to §6.7); the report interval
//!   (§6.2, §6.3.1, Appendix A.7) and sequence number extension
//!   (Appendix A.1). Not here: the participant table, timer
//!   reconsideration on BYE (§6.3.7) and statistics, which belong to the
//!   session layer above.
//! - RFC 8285: one-byte and two-byte header extension elements, with
//!   typed values for mid (RFC 8843), rid and repaired-rid (RFC 8852),
//!   abs-send-time, transport-wide-cc, ssrc-audio-level (RFC 6464),
//!   video-orientation (3GPP TS 26.114) and playout-delay.
//! - RFC 4585: generic NACK (§6.2.1) and PLI (§6.3.1); RFC 5104: FIR
//!   (§4.3.1); draft-alvestrand-rmcat-remb-03: REMB;
//!   draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1:
//!   transport-wide CC feedback; RFC 3611: XR with RRTR (§4.4) and DLRR
//!   (§4.5) blocks; RFC 5506: reduced-size RTCP.
//! - RTP payload formats ([`payload`]): VP8 (RFC 7741), VP9 (RFC 9628;
//!   the packetizer writes non-flexible mode with one spatial layer),
//!   H.264 in packetization-mode 1 (RFC 6184; not the interleaved mode
//!   2), AV1 (AV1 RTP Specification v1.0.0) and Opus (RFC 7587), each
//!   with a packetizer and a frame reassembler; the AV1 Dependency
//!   Descriptor extension (its Appendix A; custom per-frame fields are
//!   not read); and, for forwarding, each video packet's keyframe start
//!   and layer without reassembly.
//!
//! Parsing borrows the received bytes ([`RtpPacket`], [`rtcp::Compound`])
//! and walks lists with iterators, allocating nothing; encoding writes
//! into a caller's buffer ([`RtpWriter`], [`rtcp::RtcpEncode`],
//! [`rtcp::CompoundWriter`]) and reports [`Error::BufferTooSmall`]
//! rather than growing it. Nothing here does I/O, reads a clock or draws
//! random numbers, and no input makes it panic. SRTP protection is the
//! business of natter-srtp.
//!
//! ```
//! use natter_rtp::rtcp::{Compound, NackBuilder, RtcpEncode, RtcpPacket};
//! use natter_rtp::*;
//!
//! // An RTP packet with a one-byte header extension...
//! let mut buf = [0u8; 1500];
//! let header = RtpHeader { payload_type: 96, sequence_number: 1000, timestamp: 90_000, ssrc: 7, ..Default::default() };
//! let mut w = RtpWriter::new(&mut buf, &header)?;
//! w.start_extensions(ExtensionForm::OneByte)?;
//! w.add(5, &TransportSequenceNumber(17))?;
//! let len = w.finish(b"frame", 0)?;
//! let pkt = RtpPacket::parse(&buf[..len])?;
//! assert_eq!(pkt.extension_value::<TransportSequenceNumber>(5), Some(Ok(TransportSequenceNumber(17))));
//!
//! // ...and a NACK for packets 1000, 1001 and 1005, sent alone (RFC 5506).
//! let lost = [1000, 1001, 1005];
//! let len = NackBuilder::from_lost(1, 7, &lost).encode(&mut buf)?;
//! for packet in Compound::parse(&buf[..len])?.packets() {
//!     let RtcpPacket::Nack(nack) = packet? else { unreachable!() };
//!     assert!(nack.lost().eq(lost));
//! }
//! # Ok::<(), Error>(())
//! ```

mod error;
pub mod extension;
mod interval;
mod packet;
pub mod payload;
pub mod rtcp;
mod seq;
mod wire;

pub use error::Error;
pub use extension::{
    AbsSendTime, AudioLevel, Extension, ExtensionBlock, ExtensionForm, ExtensionValue, Extensions, Mid, PlayoutDelay,
    RepairedRtpStreamId, Rotation, RtpStreamId, TransportSequenceNumber, VideoOrientation,
};
pub use interval::{update_avg_rtcp_size, MinimumInterval, RtcpInterval, COMPENSATION, RTCP_MIN_TIME};
pub use packet::{RtpHeader, RtpPacket, RtpWriter, FIXED_HEADER_LEN, MAX_CSRCS, RTP_VERSION};
pub use seq::{SeqUnwrapper, TimestampUnwrapper, Unwrapper, WrappingCounter};
