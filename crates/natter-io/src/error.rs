//! Why a call on the handle failed.

use std::io;
use std::net::SocketAddr;

use natter::peer::{DataChannelId, PeerError};

/// A failed call of [`PeerConnection`](crate::PeerConnection) or
/// [`DataChannel`](crate::DataChannel).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection refused the call (W3C's exceptions); it is left as
    /// it was.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The connection was closed (by [`PeerConnection::close`](crate::PeerConnection::close)
    /// or because every handle was dropped), so its task ended.
    #[error("the peer connection is closed")]
    Closed,
    /// The channel closed (either side, or with the association) and was
    /// forgotten.
    #[error("data channel {0} is closed")]
    UnknownDataChannel(DataChannelId),
    #[error("binding a UDP socket to {address}: {source}")]
    Bind { address: SocketAddr, source: io::Error },
    #[error("listing the host's interface addresses: {0}")]
    Interfaces(io::Error),
    #[error("no local address to bind a socket to (the host has no usable interface address)")]
    NoLocalAddress,
    #[error("PeerConnection::spawn must run inside a tokio runtime")]
    NoRuntime,
    /// A connection in RTP mode hands its packets over a channel of its
    /// own: make it with [`Endpoint::connect_rtp`](crate::Endpoint::connect_rtp).
    #[error("a connection in RTP mode is made with Endpoint::connect_rtp, which returns its packets' channel")]
    RtpMode,
}
