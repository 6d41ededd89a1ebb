//! natter-sctp: WebRTC data channels (RFC 8831) over SCTP over DTLS
//! (RFC 8261), with the Data Channel Establishment Protocol (RFC 8832).
//!
//! Implements:
//! - RFC 8832 (DCEP): DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK (§5), the
//!   procedures of §6 (even stream ids for the DTLS client, odd for the
//!   server; OPEN/ACK; user messages sent ordered until acknowledged;
//!   a bad OPEN closes the stream unanswered).
//! - RFC 8831: channels as stream pairs (§6.5), reliable, unordered
//!   and partially reliable channels (§6.1, via RFC 3758), the PPIDs
//!   of §8 with empty messages as one byte (§6.6), closing by stream
//!   reset (§6.7, RFC 6525).
//! - RFC 8841 §6: the peer's `a=max-message-size` bounds what we send.
//! - RFC 8831 §6.4: a channel's priority weighs its stream in the
//!   association's scheduler, so bulk does not starve a chat channel.
//!
//! The SCTP association is natter's own, in [`sctp`]: the wire format of
//! every chunk WebRTC uses (RFC 9260 §3, RFC 3758, RFC 6525, RFC 8260,
//! RFC 9653 zero checksums, used when the peer offers them), the
//! receiver's TSN bookkeeping and reassembly, association setup (RFC 9260
//! §5, with INIT collision handling: both sides send INIT, as browsers
//! do), DATA/SACK transfer with retransmission and congestion control
//! (§6, §7; SACKs at once for DCEP, a gap, or a message's end, §6.2),
//! heartbeats (§8.3), shutdown and abort (§9), partial reliability
//! (RFC 3758), stream reset (RFC 6525) and a stream scheduler weighted by
//! priority (RFC 8260 §3); sans-IO, time as an argument. sctp-proto is
//! only a dev-dependency, the independent stack of the interop tests.
//! SNAP (draft-hancke-tsvwg-snap-01): with both ends' INIT chunks
//! exchanged in SDP (`a=sctp-init`, [`SctpConfig::snap`]) the association
//! is up without the four-way handshake.
//! PMTU probing (RFC 8899 DPLPMTUD, [`SctpConfig::max_mtu`], off by
//! default): packets grow past `mtu` as HEARTBEAT and PAD probes find the
//! path carries them, and fall back on a black hole.
//! Message interleaving (RFC 8260 I-DATA and I-FORWARD-TSN,
//! [`SctpConfig::interleaving`], off by default as in Chromium): used
//! when both ends offer it, so fragments of different channels' messages
//! interleave and a chat message is not stuck behind a 256 KiB one.
//! Left out: the deprecated partial PPIDs 52 and 54 (dropped and
//! counted).
//!
//! ```
//! use std::time::Instant;
//! use natter_sctp::*;
//!
//! let now = Instant::now();
//! let mut client = SctpTransport::new(SctpConfig::new(DtlsRole::Client))?;
//! let mut server = SctpTransport::new(SctpConfig::new(DtlsRole::Server))?;
//! let chat = client.open_channel("chat", "", ChannelOptions::reliable())?;
//! // Carry packets both ways until both sides are quiet.
//! for _ in 0..10 {
//!     while let Some(p) = client.poll_transmit(now) {
//!         server.handle_receive(now, &p);
//!     }
//!     while let Some(p) = server.poll_transmit(now) {
//!         client.handle_receive(now, &p);
//!     }
//! }
//! client.send(chat, Message::Text("hello"))?;
//! while let Some(p) = client.poll_transmit(now) {
//!     server.handle_receive(now, &p);
//! }
//! let mut got = Vec::new();
//! while let Some(event) = server.poll_event() {
//!     got.push(event);
//! }
//! assert!(got.contains(&Event::Message { channel: chat, data: b"hello".to_vec(), is_text: true }));
//! # Ok::<(), Error>(())
//! ```

mod channel;
mod config;
pub mod dcep;
mod error;
mod event;
mod ppid;
pub mod sctp;
mod transport;

pub use channel::{ChannelId, ChannelInfo, ChannelOptions, ChannelOrigin, ChannelState, Message};
pub use config::{
    DtlsRole, SctpConfig, SnapInits, DEFAULT_SCTP_PORT, MAX_SCTP_PACKET, MIN_MAX_MESSAGE_SIZE, SCTP_DATA_OVERHEAD,
};
pub use dcep::{ChannelType, DataChannelOpen, DcepMessage, Priority, ReliabilityKind};
pub use error::{DcepError, Error};
pub use event::{CloseReason, Datagram, Event, Stats, TransportState};
pub use ppid::Ppid;
pub use sctp::association::{SnapError, SnapSide};
pub use transport::SctpTransport;
