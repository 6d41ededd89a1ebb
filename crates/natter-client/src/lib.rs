//! natter-client: a Rust participant of `natter serve`'s rooms, which
//! browsers on the web client see like any other.
//!
//! It speaks signaling protocol v1 (`docs/signaling.md`): join with an
//! optional token, heartbeat, resume after a dropped socket, presence.
//! It follows the web client's mesh rules (`web/peer.js`): one natter-io
//! peer connection per other participant, perfect negotiation with the
//! smaller id polite, the newcomer offering first; chat on the
//! pre-negotiated data channel 0; files on `file:<id>` channels with a
//! JSON header, 16 KiB chunks and a SHA-256 check answered by the
//! recipient (`web/transfer.js`). A transfer can also start at an
//! offset the recipient asked for ([`Client::send_file_part`],
//! [`Client::expect_file`] with [`IncomingFile::resume`]), its bytes
//! handed out as they come and its SHA-256 still over the whole file:
//! `natter send` and `natter receive` resume that way.
//!
//! The protocol logic is sans-IO ([`Session`], [`IncomingFile`], [`chat`]);
//! [`Client`] runs it on tokio with a WebSocket and natter-io.
//!
//! ```no_run
//! # async fn example() -> Result<(), natter_client::Error> {
//! use natter_client::{Client, ClientConfig, Event};
//!
//! let mut config = ClientConfig::new("http://127.0.0.1:8080", "bot");
//! config.room = Some("demo".to_owned());
//! let (client, mut events) = Client::join(config).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Chat { name, text, .. } => client.chat(&format!("{name} said {text}"))?,
//!         Event::Closed { .. } => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! SFU rooms (`natter serve --sfu`, docs/signaling.md "SFU rooms"):
//! with [`ClientConfig::through_sfu`], [`Client`] sees `welcome.sfu`
//! and makes one connection, to the peer id `sfu` ([`Client::is_sfu`]): our tracks go up once, the others'
//! come on a fixed pool of receive slots that the server's `track`
//! messages name, chat goes over signaling and files over the server's
//! `relay` data channel ([`sfu::RelayMessage`]), with the same
//! [`Event`]s as in a mesh. [`sfu::SfuClient`] is the signaling alone,
//! for callers that own their connection (`natter load`).
//!
//! Media: a video and an Opus audio file can be published, looped
//! ([`ClientConfig::video`], [`ClientConfig::audio`]); the frames others
//! send are handed out as [`Event::Media`] with
//! [`ClientConfig::receive_media`] (`natter join --record` writes them
//! to WebM files).
//!
//! Not yet: `wss://` (TLS) servers; ICE servers given by
//! host name or over TCP/TLS (natter-io resolves no names and sends no
//! TCP), which are left out of each connection's configuration.

pub mod chat;
mod client;
mod error;
pub mod message;
mod peer;
pub mod session;
pub mod sfu;
mod sfu_call;
pub mod transfer;
mod url;

pub use client::{Client, ClientConfig};
pub use error::Error;
pub use session::{CloseVerdict, JoinOptions, Output, Session, SessionEvent, Signal};
pub use transfer::{FileHeader, IncomingFile, Sha256, TransferError};
pub use url::ServerUrl;

/// A video to publish to every participant, looped (or once,
/// [`ClientConfig::play_once`]): frames as the format's depacketizer
/// gives them (VP8, VP9 as encoded, H.264 as Annex B access units, AV1
/// temporal units as IVF holds them), the first a keyframe, with their
/// presentation times, and the length of one loop. Connections offer
/// and accept only `format` for video, so a peer decodes what we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub format: natter_io::Format,
    pub frames: Vec<(std::time::Duration, Vec<u8>)>,
    pub length: std::time::Duration,
}

/// Opus audio to publish to every participant, looped (or once): packets (RFC
/// 6716 §3) with their times from the start, and the length of one loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    pub packets: Vec<(std::time::Duration, Vec<u8>)>,
    pub length: std::time::Duration,
}

/// What happened in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Joined (or `resumed` after a reconnect) as `id`.
    Joined {
        id: String,
        name: String,
        room: String,
        resumed: bool,
    },
    PeerJoined {
        id: String,
        name: String,
    },
    /// `reason`: `left`, `timeout`, or `rejoined` (our own session expired).
    PeerLeft {
        id: String,
        name: String,
        reason: String,
    },
    /// The peer connection's W3C `connectionState`.
    Connection {
        id: String,
        name: String,
        state: String,
    },
    Chat {
        from: String,
        name: String,
        text: String,
    },
    FileReceived {
        from: String,
        name: String,
        file: ReceivedFile,
    },
    /// Bytes of a file that [`Client::expect_file`] announced, in order,
    /// for the application to store.
    FileData {
        from: String,
        /// The transfer.
        id: String,
        data: Vec<u8>,
    },
    /// A file we send: `bytes` of `size` are queued on the channel.
    FileProgress {
        peer: String,
        /// The transfer.
        id: String,
        bytes: u64,
        size: u64,
    },
    /// A recipient answered; `verified` when its SHA-256 matched.
    FileSent {
        peer: String,
        name: String,
        file_name: String,
        verified: bool,
        sha256: String,
    },
    FileFailed {
        peer: String,
        name: String,
        file_name: String,
        reason: String,
    },
    /// A frame participant `from` sent (with
    /// [`ClientConfig::receive_media`]), and when it came.
    Media {
        from: String,
        name: String,
        received: std::time::Instant,
        frame: natter_io::MediaFrame,
    },
    /// Our published `kind` (`video` or `audio`) played to its end on
    /// the connection to `peer` (the SFU's is `sfu`), with
    /// [`ClientConfig::play_once`]; nothing more is sent on it.
    MediaEnded {
        peer: String,
        name: String,
        kind: String,
    },
    /// Our `kind` is not sent to `peer`: it took no codec of the file's.
    MediaFailed {
        peer: String,
        name: String,
        kind: String,
        reason: String,
    },
    /// SFU rooms: the room's active speaker is now `id` (or nobody).
    Speaker {
        id: Option<String>,
        name: Option<String>,
    },
    /// The signaling socket dropped; reconnecting to resume.
    Reconnecting {
        reason: String,
    },
    /// The server refused one message.
    Refused {
        code: String,
        message: String,
        reference: Option<String>,
    },
    /// The session ended, with the error when it was not us leaving.
    Closed {
        error: Option<String>,
    },
}

/// A file received whole.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    pub id: String,
    /// The sender's name for it, without directories.
    pub file_name: String,
    pub mime: String,
    /// What we computed.
    pub sha256: String,
    /// What the sender announced.
    pub expected_sha256: String,
    pub verified: bool,
    /// The bytes; empty when the application stored them
    /// ([`Event::FileData`]).
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ReceivedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedFile")
            .field("file_name", &self.file_name)
            .field("size", &self.data.len())
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}
