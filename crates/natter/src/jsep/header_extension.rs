//! RTP header extensions (RFC 8285): the ones we offer, the ids they
//! get, and what an answer keeps. Their URIs are natter-rtp's, which
//! reads and writes the extensions.

use natter_rtp::extension::{
    URI_ABS_SEND_TIME, URI_MID, URI_PLAYOUT_DELAY, URI_REPAIRED_RTP_STREAM_ID, URI_RTP_STREAM_ID, URI_SSRC_AUDIO_LEVEL,
    URI_TRANSPORT_WIDE_CC, URI_VIDEO_ORIENTATION,
};
use natter_sdp::{Direction, Extmap};

use super::direction::reversed;

/// Chromium's audio extensions and ids.
pub fn default_audio_extensions() -> Vec<Extmap> {
    vec![
        Extmap::new(1, URI_SSRC_AUDIO_LEVEL),
        Extmap::new(2, URI_ABS_SEND_TIME),
        Extmap::new(3, URI_TRANSPORT_WIDE_CC),
        Extmap::new(4, URI_MID),
    ]
}

/// Chromium's video extensions and ids; `rids` adds the two RtpStreamId
/// extensions that simulcast needs.
pub fn default_video_extensions(rids: bool) -> Vec<Extmap> {
    let mut extensions = vec![
        Extmap::new(2, URI_ABS_SEND_TIME),
        Extmap::new(13, URI_VIDEO_ORIENTATION),
        Extmap::new(3, URI_TRANSPORT_WIDE_CC),
        Extmap::new(5, URI_PLAYOUT_DELAY),
        Extmap::new(4, URI_MID),
    ];
    if rids {
        extensions.push(Extmap::new(10, URI_RTP_STREAM_ID));
        extensions.push(Extmap::new(11, URI_REPAIRED_RTP_STREAM_ID));
    }
    extensions
}

/// RFC 8285 §5: ids 4096-4351 in an offer ask the answerer to choose;
/// we keep only extensions with ids of their own.
const FIRST_PICK_ID: u16 = 4096;

/// The extensions of an answer (RFC 8285 §6, RFC 8829 §5.3.1): those
/// offered that we support, with the offer's ids, in its order, and the
/// direction of each reversed.
pub(crate) fn answer_extensions(offered: &[Extmap], supported: &[Extmap]) -> Vec<Extmap> {
    offered
        .iter()
        .filter(|e| e.id < FIRST_PICK_ID && supported.iter().any(|s| s.uri == e.uri))
        .map(|e| Extmap {
            id: e.id,
            direction: e.direction.map(reversed).filter(|d| *d != Direction::SendRecv),
            uri: e.uri.clone(),
            attributes: None,
        })
        .collect()
}

/// The extensions of an offered section with their ids (RFC 8285 §5):
/// an id this section had before (`previous`), else the one the session
/// already uses for the URI (`session`, so that bundled sections agree,
/// RFC 8843 §9.1), else the configured one if free, else the first free
/// one-byte id, then two-byte ids (we write `a=extmap-allow-mixed`).
pub(crate) fn offer_extensions(supported: &[Extmap], previous: &[Extmap], session: &[Extmap]) -> Vec<Extmap> {
    let mut chosen: Vec<Extmap> = Vec::new();
    for wanted in supported {
        let free = |id: u16, chosen: &[Extmap]| {
            !chosen.iter().any(|e| e.id == id) && !session.iter().any(|e| e.id == id && e.uri != wanted.uri)
        };
        let known = previous
            .iter()
            .chain(session)
            .find(|e| e.uri == wanted.uri)
            .map(|e| e.id)
            .filter(|id| !chosen.iter().any(|e| e.id == *id));
        let id = known
            .or(Some(wanted.id).filter(|id| free(*id, &chosen)))
            .or_else(|| (1..=14).chain(16..=255).find(|id| free(*id, &chosen)));
        if let Some(id) = id {
            chosen.push(Extmap { id, ..wanted.clone() });
        }
    }
    chosen
}

/// The id of `uri` among `extensions`.
pub(crate) fn id_of(extensions: &[Extmap], uri: &str) -> Option<u16> {
    extensions.iter().find(|e| e.uri == uri).map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_keeps_offered_ids_and_reverses_directions() {
        let mut playout = Extmap::new(6, URI_PLAYOUT_DELAY);
        playout.direction = Some(Direction::RecvOnly);
        let offered = vec![
            Extmap::new(14, "urn:ietf:params:rtp-hdrext:toffset"),
            Extmap::new(7, URI_TRANSPORT_WIDE_CC),
            playout,
            Extmap::new(4097, URI_MID),
        ];
        let answer = answer_extensions(&offered, &default_video_extensions(true));
        assert_eq!(answer.len(), 2);
        assert_eq!((answer[0].id, answer[0].uri.as_str()), (7, URI_TRANSPORT_WIDE_CC));
        assert_eq!(answer[1].direction, Some(Direction::SendOnly));
    }

    #[test]
    fn offer_ids_follow_the_session() {
        // The session maps id 2 to mid and abs-send-time to 9.
        let session = vec![Extmap::new(2, URI_MID), Extmap::new(9, URI_ABS_SEND_TIME)];
        let offered = offer_extensions(&default_audio_extensions(), &[], &session);
        assert_eq!(id_of(&offered, URI_MID), Some(2));
        assert_eq!(id_of(&offered, URI_ABS_SEND_TIME), Some(9));
        assert_eq!(id_of(&offered, URI_SSRC_AUDIO_LEVEL), Some(1));
        assert_eq!(id_of(&offered, URI_TRANSPORT_WIDE_CC), Some(3));
    }
}
