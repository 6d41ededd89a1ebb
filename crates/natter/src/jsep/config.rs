//! What a [`Jsep`](super::Jsep) is set up with: our ICE credentials, DTLS
//! fingerprint and role preference, and the codecs and header extensions
//! we offer.

use std::sync::{Arc, LazyLock};

use natter_sdp::{Codec, Extmap, Setup};

use super::codec::{default_audio_codecs, default_video_codecs};
use super::header_extension::{default_audio_extensions, default_video_extensions};

/// RFC 8841 §5: the SCTP port JSEP offers.
pub const DEFAULT_SCTP_PORT: u16 = 5000;

/// The largest message Chromium accepts, which it offers as
/// `a=max-message-size` (RFC 8841 §6).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 262_144;

/// An ICE username fragment and password (RFC 8839 §5.4). natter-ice
/// makes them; JSEP only writes and compares them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IceCredentials {
    /// At least 4 `ice-char`s.
    pub ufrag: String,
    /// At least 22 `ice-char`s.
    pub pwd: String,
}

impl IceCredentials {
    pub fn new(ufrag: impl Into<String>, pwd: impl Into<String>) -> Self {
        IceCredentials {
            ufrag: ufrag.into(),
            pwd: pwd.into(),
        }
    }
}

/// Our side of the DTLS handshake (RFC 5763 §5, RFC 8842 §5): the
/// `setup:active` side is the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    Client,
    Server,
}

impl DtlsRole {
    /// The `a=setup` an answer writes for this role.
    pub fn setup(self) -> Setup {
        match self {
            DtlsRole::Client => Setup::Active,
            DtlsRole::Server => Setup::Passive,
        }
    }
}

/// Chromium's codecs and header extensions, made once per process: an
/// idle connection kept its own copies, about 4 KiB of its heap (issue 18).
struct Defaults {
    audio_codecs: Arc<[Codec]>,
    video_codecs: Arc<[Codec]>,
    audio_extensions: Arc<[Extmap]>,
    video_extensions: Arc<[Extmap]>,
}

static DEFAULTS: LazyLock<Defaults> = LazyLock::new(|| Defaults {
    audio_codecs: default_audio_codecs().into(),
    video_codecs: default_video_codecs().into(),
    audio_extensions: default_audio_extensions().into(),
    video_extensions: default_video_extensions(true).into(),
});

/// The settings of a [`Jsep`](super::Jsep).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsepConfig {
    /// The `o=` session id: random and below 2^63 (RFC 8829 §5.2.1).
    /// Callers pick it, since a sans-IO core has no randomness.
    pub session_id: u64,
    /// Our ICE credentials until [`Jsep::restart_ice`](super::Jsep::restart_ice) replaces them.
    pub ice: IceCredentials,
    /// Our certificate's fingerprint as `a=fingerprint` writes it, such as
    /// `sha-256 AB:CD:...` (RFC 8122 §5).
    pub fingerprint: String,
    /// The role we take when we answer an `actpass` offer. Chromium takes
    /// the client role ([`DtlsRole::Client`]), and so do we by default.
    pub answer_dtls_role: DtlsRole,
    /// The RTCP CNAME of our sources (RFC 7022), written in `a=ssrc`.
    pub cname: String,
    /// The audio codecs we offer and accept, in order of preference.
    /// Shared: every connection made with the defaults holds the same list.
    pub audio_codecs: Arc<[Codec]>,
    /// The video codecs, RTX included.
    pub video_codecs: Arc<[Codec]>,
    /// The RTP header extensions of audio sections (RFC 8285).
    pub audio_extensions: Arc<[Extmap]>,
    /// The RTP header extensions of video sections.
    pub video_extensions: Arc<[Extmap]>,
    /// Our `a=sctp-port` (RFC 8841 §5).
    pub sctp_port: u16,
    /// Our `a=max-message-size` (RFC 8841 §6).
    pub max_message_size: u64,
    /// Our SCTP INIT chunk for `a=sctp-init` (SNAP,
    /// draft-hancke-tsvwg-snap-01): offered when set, and answered when
    /// set and the offer carried one too. `None`: no SNAP.
    pub sctp_init: Option<Vec<u8>>,
    /// We are an ICE-lite agent (RFC 8445 §2.5), which our descriptions
    /// say with a session-level `a=ice-lite` (RFC 8839 §5.3).
    pub ice_lite: bool,
    /// Offer the `sped` ICE option (draft-hancke-webrtc-sped §6), and
    /// answer with it when the offer carried it.
    pub sped: bool,
}

impl JsepConfig {
    /// Chromium's defaults: Opus, VP8, VP9, H.264 and AV1 with RTX, the header
    /// extensions Chromium offers, the client role when answering.
    pub fn new(session_id: u64, ice: IceCredentials, fingerprint: impl Into<String>, cname: impl Into<String>) -> Self {
        JsepConfig {
            session_id,
            ice,
            fingerprint: fingerprint.into(),
            answer_dtls_role: DtlsRole::Client,
            cname: cname.into(),
            audio_codecs: Arc::clone(&DEFAULTS.audio_codecs),
            video_codecs: Arc::clone(&DEFAULTS.video_codecs),
            audio_extensions: Arc::clone(&DEFAULTS.audio_extensions),
            video_extensions: Arc::clone(&DEFAULTS.video_extensions),
            sctp_port: DEFAULT_SCTP_PORT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            sctp_init: None,
            ice_lite: false,
            sped: false,
        }
    }
}
