//! What a WHIP (RFC 9725) or WHEP (draft-ietf-wish-whep) request carries,
//! checked before anything is created: the media type, the size, an SDP
//! offer whose sections go the way the protocol says, and the SDP
//! fragments of PATCH (RFC 8840 §9, as RFC 9725 §4.3.1 uses them).
//!
//! Pure and I/O-free, so the fuzz target `whip_request` runs it as it is.

use std::fmt;

use natter_sdp::{Direction, MediaKind, SessionDescription};

/// Largest offer or fragment body read: a browser's offer with simulcast
/// is 5 to 10 KB; signaling's `max_message_bytes` default is the same.
pub const MAX_BODY: usize = 64 * 1024;

/// RFC 9725 §4.2: the offer's media type.
pub const SDP: &str = "application/sdp";
/// RFC 8840 §9.1, RFC 9725 §4.3.1: the PATCH body's media type.
pub const SDP_FRAG: &str = "application/trickle-ice-sdpfrag";

/// Which protocol the request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// WHIP: the client sends media (RFC 9725 §4.2, `sendonly` sections).
    Publisher,
    /// WHEP: the client receives media (`recvonly` sections).
    Player,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Publisher => "WHIP",
            Role::Player => "WHEP",
        }
    }

    /// The direction of every offered section.
    fn direction(self) -> Direction {
        match self {
            Role::Publisher => Direction::SendOnly,
            Role::Player => Direction::RecvOnly,
        }
    }
}

/// Why a request was refused, with the HTTP status it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// RFC 9110 §15.5.16: 415.
    MediaType { expected: &'static str, got: String },
    /// RFC 9110 §15.5.14: 413.
    TooLarge { limit: usize },
    /// The body is not UTF-8 text.
    NotText,
    /// The offer does not parse (RFC 8866).
    Sdp(String),
    /// An offer without an audio or video section.
    NoMedia,
    /// A section that is not audio or video.
    Kind { index: usize, kind: String },
    /// A section that does not go the way the role needs.
    Direction {
        role: Role,
        index: usize,
        direction: Direction,
    },
    /// A malformed line of an SDP fragment (RFC 8840 §9).
    Fragment { line: usize, why: &'static str },
}

impl RequestError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::MediaType { .. } => 415,
            RequestError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MediaType { expected, got } => write!(f, "Content-Type must be {expected}, not {got:?}"),
            RequestError::TooLarge { limit } => write!(f, "the body is larger than {limit} bytes"),
            RequestError::NotText => write!(f, "the body is not UTF-8 text"),
            RequestError::Sdp(why) => write!(f, "the SDP offer does not parse: {why}"),
            RequestError::NoMedia => write!(f, "the SDP offer has no audio or video section"),
            RequestError::Kind { index, kind } => {
                write!(f, "section {index} is {kind}: only audio and video are carried")
            }
            RequestError::Direction { role, index, direction } => write!(
                f,
                "section {index} is {}: a {} offer's sections are {}",
                direction.name(),
                role.name(),
                role.direction().name()
            ),
            RequestError::Fragment { line, why } => write!(f, "SDP fragment line {line}: {why}"),
        }
    }
}

/// Whether a `Content-Type` value is `expected`, parameters aside (RFC
/// 9110 §8.3.1: the type is case-insensitive).
pub fn media_type_is(value: &str, expected: &'static str) -> Result<(), RequestError> {
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(RequestError::MediaType {
            expected,
            got: value.chars().take(64).collect(),
        })
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (RFC 6750 §2.1;
/// the scheme is case-insensitive, RFC 9110 §11.1); `None` for another
/// scheme or an empty token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether an `If-Match` value lets a PATCH through to the session whose
/// entity-tag is `etag` (RFC 9110 §13.1.1; RFC 9725 §4.3.1): `*`, or the
/// tag itself.
pub fn if_match_allows(value: &str, etag: &str) -> bool {
    let value = value.trim();
    value == "*" || value == etag
}

/// A checked offer: its text and its ICE username fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sdp: String,
    pub ufrag: Option<String>,
}

/// Checks a POST body: an SDP offer (RFC 8866) of audio and video
/// sections that all go the way `role` needs (RFC 9725 §4.2: a WHIP
/// client only sends; a WHEP client only receives).
pub fn check_offer(role: Role, body: &[u8]) -> Result<Offer, RequestError> {
    if body.len() > MAX_BODY {
        return Err(RequestError::TooLarge { limit: MAX_BODY });
    }
    let text = std::str::from_utf8(body).map_err(|_| RequestError::NotText)?;
    let sdp = SessionDescription::parse(text).map_err(|e| RequestError::Sdp(e.to_string()))?;
    if sdp.media.is_empty() {
        return Err(RequestError::NoMedia);
    }
    for (index, media) in sdp.media_views().enumerate() {
        if !matches!(media.kind, MediaKind::Audio | MediaKind::Video) {
            let kind = media.kind.name().chars().take(32).collect();
            return Err(RequestError::Kind { index, kind });
        }
        // A rejected section (port 0, RFC 3264 §6) carries nothing.
        let direction = media.direction();
        if media.port != 0 && direction != role.direction() && direction != Direction::Inactive {
            return Err(RequestError::Direction { role, index, direction });
        }
    }
    let ufrag = sdp.media_views().find_map(|m| m.ice_ufrag()).map(str::to_owned);
    Ok(Offer {
        sdp: text.to_owned(),
        ufrag,
    })
}

/// What a PATCH's SDP fragment says (RFC 8840 §9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFrag {
    /// `a=ice-ufrag`: a new one asks for an ICE restart (RFC 9725 §4.3.2).
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// `a=candidate` lines.
    pub candidates: usize,
    pub end_of_candidates: bool,
}

impl SdpFrag {
    /// Parses a fragment: `a=` and `m=` lines only (RFC 8840 §9's
    /// grammar), ICE credentials of the lengths RFC 8839 §5.4 allows.
    pub fn parse(body: &[u8]) -> Result<SdpFrag, RequestError> {
        if body.len() > MAX_BODY {
            return Err(RequestError::TooLarge { limit: MAX_BODY });
        }
        let text = std::str::from_utf8(body).map_err(|_| RequestError::NotText)?;
        let mut frag = SdpFrag::default();
        for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r'))) {
            let fail = |why| RequestError::Fragment { line: number, why };
            if line.is_empty() {
                continue;
            }
            if line.chars().any(char::is_control) {
                return Err(fail("a control character"));
            }
            if let Some(ufrag) = line.strip_prefix("a=ice-ufrag:") {
                if !(4..=256).contains(&ufrag.len()) || !ufrag.chars().all(is_ice_char) {
                    return Err(fail("ice-ufrag is 4 to 256 ice-chars (RFC 8839 §5.4)"));
                }
                frag.ufrag = Some(ufrag.to_owned());
            } else if let Some(pwd) = line.strip_prefix("a=ice-pwd:") {
                if !(22..=256).contains(&pwd.len()) || !pwd.chars().all(is_ice_char) {
                    return Err(fail("ice-pwd is 22 to 256 ice-chars (RFC 8839 §5.4)"));
                }
                frag.pwd = Some(pwd.to_owned());
            } else if line.starts_with("a=candidate:") {
                frag.candidates += 1;
            } else if line == "a=end-of-candidates" {
                frag.end_of_candidates = true;
            } else if !(line.starts_with("a=") || line.starts_with("m=")) {
                return Err(fail("only a= and m= lines belong in a fragment (RFC 8840 §9)"));
            }
        }
        if frag.ufrag.is_some() != frag.pwd.is_some() {
            return Err(RequestError::Fragment {
                line: 0,
                why: "ice-ufrag and ice-pwd come together (RFC 8840 §9)",
            });
        }
        Ok(frag)
    }
}

/// RFC 8839 §5.4: `ice-char = ALPHA / DIGIT / "+" / "/"`.
fn is_ice_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDONLY: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\n";

    #[test]
    fn a_publishers_offer_sends_and_a_players_receives() {
        let offer = check_offer(Role::Publisher, SENDONLY.as_bytes()).unwrap();
        assert_eq!(offer.ufrag.as_deref(), Some("abcd"));
        let refused = check_offer(Role::Player, SENDONLY.as_bytes()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "section 0 is sendonly: a WHEP offer's sections are recvonly"
        );
        let player = SENDONLY.replace("sendonly", "recvonly");
        assert!(check_offer(Role::Player, player.as_bytes()).is_ok());
    }

    #[test]
    fn bad_offers_are_refused_with_their_reason() {
        assert_eq!(check_offer(Role::Publisher, b"hello").unwrap_err().status(), 400);
        assert_eq!(check_offer(Role::Publisher, &[0xff, 0xfe]), Err(RequestError::NotText));
        let no_media = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
        assert_eq!(
            check_offer(Role::Publisher, no_media.as_bytes()),
            Err(RequestError::NoMedia)
        );
        let data = format!("{no_media}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
        assert!(matches!(
            check_offer(Role::Publisher, data.as_bytes()),
            Err(RequestError::Kind { index: 0, .. })
        ));
        let huge = vec![b'a'; MAX_BODY + 1];
        assert_eq!(check_offer(Role::Publisher, &huge).unwrap_err().status(), 413);
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert!(media_type_is("Application/SDP; charset=utf-8", SDP).is_ok());
        assert_eq!(media_type_is("text/plain", SDP).unwrap_err().status(), 415);
    }

    #[test]
    fn bearer_tokens_and_if_match() {
        assert_eq!(bearer_token("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer_token("bEaReR  abc "), Some("abc"));
        for refused in ["Basic dXNlcg==", "Bearer", "Bearer   ", "abc", ""] {
            assert_eq!(bearer_token(refused), None, "{refused:?}");
        }
        assert!(if_match_allows(" * ", "\"x\""));
        assert!(if_match_allows("\"x\"", "\"x\""));
        assert!(!if_match_allows("\"y\"", "\"x\""));
        assert!(!if_match_allows("x", "\"x\""), "entity-tags are quoted");
    }

    #[test]
    fn fragments_give_candidates_and_credentials() {
        let trickle = "a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                       a=candidate:1 1 udp 2113937151 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n";
        let frag = SdpFrag::parse(trickle.as_bytes()).unwrap();
        assert_eq!((frag.candidates, frag.end_of_candidates, frag.ufrag), (1, true, None));
        let restart = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n";
        let frag = SdpFrag::parse(restart.as_bytes()).unwrap();
        assert_eq!(frag.ufrag.as_deref(), Some("EsAw"));
        for bad in [
            "hello",
            "a=ice-ufrag:ab",
            "a=ice-ufrag:EsAw",
            "c=IN IP4 1.2.3.4",
            "a=x\u{7}",
        ] {
            assert_eq!(SdpFrag::parse(bad.as_bytes()).unwrap_err().status(), 400, "{bad:?}");
        }
    }
}
