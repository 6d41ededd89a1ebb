//! natter-io: runs a [`natter::PeerConnection`] on UDP sockets with tokio.
