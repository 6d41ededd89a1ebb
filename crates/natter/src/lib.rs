//! natter: a sans-IO WebRTC peer connection (RTCPeerConnection
//! semantics) built from natter-ice, natter-sdp, natter-srtp, natter-rtp
//! and natter-sctp, and an [`endpoint`] that runs many of them on shared
//! sockets.

pub mod congestion;
pub mod dtls;
pub mod endpoint;
pub mod jsep;
pub mod media;
pub mod peer;

pub use peer::{DataChannelInit, PeerConfig, PeerConnection, PeerError, PeerEvent};
