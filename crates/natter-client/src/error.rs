//! What can go wrong joining a room.

/// An error of [`Client`](crate::Client).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server URL cannot be used.
    #[error("bad server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: &'static str },
    /// Room, name or token break the protocol's rules.
    #[error("{0}")]
    BadOptions(String),
    /// The WebSocket could not be opened.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server refused the session for good (docs/signaling.md, Errors).
    #[error("the server refused to admit us: {}{} (close code {close_code})", code.as_deref().unwrap_or("refused"), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Refused {
        close_code: u16,
        /// The protocol's error code, e.g. `token-invalid`.
        code: Option<String>,
        message: Option<String>,
    },
    /// The server went away and did not come back in time.
    #[error("the server at {url} is gone: no connection for {seconds} s (last: {reason})")]
    ServerGone { url: String, seconds: u64, reason: String },
    /// The client has stopped.
    #[error("the client has left the room")]
    Closed,
    /// The peer connection stack failed.
    #[error("peer connection: {0}")]
    Peer(#[from] natter_io::Error),
}
