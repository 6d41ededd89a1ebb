//! RtpTransceivers (RFC 8829 §3.4.1): a sender and a receiver that share
//! one media section, and the local track the sender carries.

use std::fmt;

use natter_sdp::{Codec, Direction};

/// Names a transceiver for as long as it lives; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransceiverId(pub(crate) u32);

impl fmt::Display for TransceiverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The media a transceiver carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The `m=` line's media type.
    pub fn sdp(self) -> natter_sdp::MediaKind {
        match self {
            MediaKind::Audio => natter_sdp::MediaKind::Audio,
            MediaKind::Video => natter_sdp::MediaKind::Video,
        }
    }

    /// The kind of an `m=audio` or `m=video` section.
    pub fn from_sdp(kind: &natter_sdp::MediaKind) -> Option<Self> {
        match kind {
            natter_sdp::MediaKind::Audio => Some(MediaKind::Audio),
            natter_sdp::MediaKind::Video => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// The track a transceiver sends: its RTP sources (RFC 5576) and its
/// `a=msid` (RFC 8830).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalTrack {
    /// The SSRC of the media stream.
    pub ssrc: u32,
    /// The SSRC of its retransmissions (RFC 4588), video only.
    pub rtx_ssrc: Option<u32>,
    /// The MediaStream id, or `None` for a track in no stream (written
    /// `-`, RFC 8829 §5.2.1).
    pub stream_id: Option<String>,
    /// The track id (the `msid-appdata`).
    pub track_id: String,
}

impl LocalTrack {
    /// The `a=msid` of the track.
    pub fn msid(&self) -> natter_sdp::Msid {
        let stream = self.stream_id.clone().unwrap_or_else(|| "-".into());
        natter_sdp::Msid::new(stream, Some(self.track_id.clone()))
    }
}

/// One transceiver: what the application asked for and what the last
/// exchange negotiated for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transceiver {
    pub(crate) id: TransceiverId,
    pub(crate) kind: MediaKind,
    pub(crate) mid: Option<String>,
    pub(crate) direction: Direction,
    pub(crate) current_direction: Option<Direction>,
    pub(crate) track: Option<LocalTrack>,
    pub(crate) codec_preferences: Vec<Codec>,
    /// The RIDs of the simulcast streams it sends (RFC 8853), lowest
    /// first; empty for one stream.
    pub(crate) send_rids: Vec<String>,
    pub(crate) stopping: bool,
    /// Made by a remote offer (RFC 8829 §5.10), not by the application.
    pub(crate) from_remote: bool,
    /// The application changed it since; a rollback keeps it then.
    pub(crate) touched: bool,
}

impl Transceiver {
    pub(crate) fn new(id: TransceiverId, kind: MediaKind, direction: Direction, from_remote: bool) -> Self {
        Transceiver {
            id,
            kind,
            mid: None,
            direction,
            current_direction: None,
            track: None,
            codec_preferences: Vec::new(),
            send_rids: Vec::new(),
            stopping: false,
            from_remote,
            touched: false,
        }
    }

    pub fn id(&self) -> TransceiverId {
        self.id
    }

    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    /// The mid of its media section, once an offer placed it (RFC 8829 §4.2).
    pub fn mid(&self) -> Option<&str> {
        self.mid.as_deref()
    }

    /// The direction the application wants (RFC 8829 §4.2.4).
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The direction the last answer negotiated (RFC 8829 §4.2.5).
    pub fn current_direction(&self) -> Option<Direction> {
        self.current_direction
    }

    pub fn track(&self) -> Option<&LocalTrack> {
        self.track.as_ref()
    }

    /// Codecs chosen with `setCodecPreferences` (RFC 8829 §4.2.6); empty
    /// for the configured ones.
    pub fn codec_preferences(&self) -> &[Codec] {
        &self.codec_preferences
    }

    /// The RIDs of the simulcast streams it offers to send (W3C
    /// `sendEncodings`); empty for one stream. What the peer accepted is
    /// [`NegotiatedMedia::send_rids`](super::NegotiatedMedia::send_rids).
    pub fn send_rids(&self) -> &[String] {
        &self.send_rids
    }

    /// Stopped by the application and waiting for the exchange that
    /// rejects its section (RFC 8829 §4.2.1).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }
}
