//! natter-sfu: the sans-IO core of natter's selective forwarding unit
//! (DESIGN.md, "The peer stack as an SFU needs it").
//!
//! What exists, one small type per job, each testable alone:
//!
//! - [`rewrite::StreamRewriter`]: one subscriber's outgoing sequence
//!   numbers and timestamps kept continuous across layer switches
//!   (RFC 3550 §5.1), with wrap-around, reordering, retransmissions,
//!   restarted streams and skipped packets closed up.
//! - [`layer::LayerSelector`]: the layer a subscription forwards, from
//!   the bandwidth estimate, the layers' bitrates and the tile size, with
//!   hysteresis; switches only at a keyframe of the target.
//! - [`bitrate::BitrateMeter`]: each layer's measured bitrate over a
//!   sliding window, the selector's input.
//! - [`keyframe::KeyframeAggregator`]: many subscribers' PLIs (RFC 4585
//!   §6.3.1) and switches become at most one request per layer per
//!   interval toward the publisher.
//! - [`vp8::Vp8Rewriter`]: VP8 PictureID and TL0PICIDX (RFC 7741 §4.2)
//!   continuous across the same switches, rewritten in place.
//! - [`forwarder::Forwarder`]: the three together for one subscriber of
//!   one video publication, driven with the fields of natter's
//!   `ReceivedRtp` as plain values; keyframe requests go through the
//!   publication's aggregator, which the caller owns.
//! - [`speaker::SpeakerDetector`]: a room's active speaker from RFC 6464
//!   audio levels, smoothed per tick, with a margin against flicker.
//! - [`cache::PacketCache`]: a publication layer's recent packets, to
//!   answer NACKs (RFC 4585 §6.2.1) from the SFU;
//!   [`sent::SentHistory`]: a subscription's outgoing sequence numbers
//!   mapped back to their source packets.
//! - [`limit::TokenBucket`]: the rate a participant's feedback is held to.
//! - [`allocation::allocate`]: a subscriber's estimate planned over its
//!   video subscriptions, screen shares first, then larger tiles.
//! - [`last_n::LastN`]: which publications a subscriber with a fixed
//!   pool of receive slots gets in a larger room: the latest active
//!   speakers first, then join order.
//! - [`relay::Relay`]: data channel messages between participants
//!   (RFC 8831), in a small envelope naming sender or recipient, with
//!   each recipient's send queue capped.
//!
//! The room model over them: [`room::Room`] holds
//! [`participant::Participant`]s, their [`publication::Publication`]s
//! (microphone, camera, screen share; simulcast layers by RFC 8851 rid
//! with SSRC and RTX SSRC) and everyone's
//! [`subscription::Subscription`]s (automatic, up to a cap).
//! [`room::Room::on_rtp`] fans a published packet out to its subscribers
//! without allocating; subscribers' feedback (PLI/FIR, estimate, NACK) is
//! translated per leg; events name keyframe requests, layer switches,
//! dynacast pauses, upstream NACKs and the active speaker. RTCP reports
//! (SR/RR) stay with natter's RTP mode, which sends them per leg.
//!
//! What is to come (issue 13): VP9/AV1 descriptor rewriting, the
//! temporal layer chosen from the estimate (the forwarder applies a given
//! maximum), audio RED.
//!
//! Like every natter core it has no sockets, threads, locks or clock:
//! time comes in as an [`std::time::Instant`] argument, and nothing
//! allocates per packet.
//!
//! ```
//! use natter_sfu::rewrite::{Incoming, StreamRewriter};
//! use std::time::{Duration, Instant};
//!
//! let mut rewriter = StreamRewriter::new(90_000);
//! let start = Instant::now();
//! rewriter.switch(Incoming::new(10, 0), start);
//! // Another layer, 10 ms later: the stream goes on at 11, 900 ticks on.
//! let out = rewriter.switch(
//!     Incoming::new(5_000, 77),
//!     start + Duration::from_millis(10),
//! );
//! assert_eq!((out.sequence, out.timestamp), (11, 900));
//! ```

pub mod allocation;
pub mod bitrate;
pub mod cache;
pub mod forwarder;
pub mod keyframe;
pub mod last_n;
pub mod layer;
pub mod limit;
pub mod participant;
pub mod publication;
pub mod relay;
pub mod rewrite;
pub mod room;
pub mod sent;
pub mod speaker;
pub mod subscription;
pub mod vp8;
