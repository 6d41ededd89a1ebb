//! Media over RTP (RFC 3550) for the [`PeerConnection`](crate::peer):
//! the sans-IO parts of one sent and one received stream, which the
//! peer connection wires to SRTP, RTCP and its transceivers.
//!
//! - [`send`]: a [`SendStream`] packetizes frames, keeps a history from
//!   which it answers NACKs with RTX (RFC 4588), and reports its RTP
//!   clock against NTP (sender reports, RFC 3550 §6.4.1).
//! - [`receive`]: a [`ReceiveStream`] keeps the reception statistics of
//!   RFC 3550 Appendix A that make a report block.
//! - [`nack`]: a [`NackGenerator`] decides which packets to ask for
//!   again (RFC 4585 §6.2.1).
//! - [`reorder`]: a [`ReorderBuffer`] puts packets back in order for
//!   the depacketizers, waiting a while for retransmissions.
//! - [`codec`]: the formats (VP8, VP9, H.264, AV1, Opus) and one depacketizer over
//!   natter-rtp's.
//! - [`twcc`]: a [`TwccRecorder`] of arrivals for transport-wide
//!   congestion control feedback.
//! - [`ntp`]: NTP time for RTCP.

pub mod codec;
pub mod nack;
pub mod ntp;
pub mod receive;
pub mod reorder;
pub mod send;
pub mod twcc;

pub use codec::{Assembled, AssembledFrame, Depacketizer, Format};
pub use nack::NackGenerator;
pub use ntp::NtpClock;
pub use receive::{Arrival, ReceiveStream, ReceivedSenderReport};
pub use reorder::ReorderBuffer;
pub use send::{OutgoingRtp, SendCounters, SendParams, SendStream};
pub use twcc::{TwccFeedback, TwccRecorder};

/// Why a frame could not be sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The frame does not fit its format (empty, malformed, too large).
    #[error(transparent)]
    Payload(#[from] natter_rtp::payload::PayloadError),
    /// The RTP header could not be written.
    #[error(transparent)]
    Rtp(#[from] natter_rtp::Error),
}
