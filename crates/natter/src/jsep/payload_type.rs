//! Payload type numbers for the codecs we offer (RFC 3264 §8.3.2, RFC
//! 8843 §9.1.2): a format keeps the number it was given for the whole
//! session, and one number means one format across bundled sections.

use natter_sdp::{Codec, Parameter};

use super::codec::{apt, is_rtx, same_format};

/// RFC 3551 §6: the dynamic payload types; Chromium continues in 35-63
/// when they run out, and so do we.
fn dynamic_payload_types() -> impl Iterator<Item = u8> {
    (96..=127).chain(35..=63)
}

/// The codecs of an offered section, `supported` in its order, numbered:
/// a format keeps the number this section (`previous`) or another
/// section of the session (`session`) gave it; otherwise it gets its
/// configured number if no other format uses that, else a free dynamic
/// one. RTX follows the number of the format it repairs.
pub(crate) fn offer_codecs(supported: &[Codec], previous: &[Codec], session: &[Codec]) -> Vec<Codec> {
    let earlier = || previous.iter().chain(session);
    let mut taken: Vec<u8> = Vec::new();
    let mut numbered: Vec<(usize, Codec)> = Vec::new();

    for (index, wanted) in supported.iter().enumerate().filter(|(_, c)| !is_rtx(c)) {
        let clashes = |pt: u8| {
            session
                .iter()
                .any(|c| c.payload_type == pt && (is_rtx(c) || !same_format(c, wanted)))
        };
        let known = earlier()
            .find(|c| !is_rtx(c) && same_format(c, wanted))
            .map(|c| c.payload_type);
        let Some(pt) = pick(known, wanted.payload_type, &taken, clashes) else {
            continue;
        };
        taken.push(pt);
        numbered.push((
            index,
            Codec {
                payload_type: pt,
                ..wanted.clone()
            },
        ));
    }

    for (index, wanted) in supported.iter().enumerate().filter(|(_, c)| is_rtx(c)) {
        // The configured apt names a configured payload type; find what it became.
        let repaired = supported
            .iter()
            .position(|c| !is_rtx(c) && Some(c.payload_type) == apt(wanted))
            .and_then(|i| numbered.iter().find(|(n, _)| *n == i))
            .map(|(_, c)| c.payload_type);
        let Some(repaired) = repaired else { continue };
        let repairs = |c: &Codec| is_rtx(c) && apt(c) == Some(repaired);
        let clashes = |pt: u8| session.iter().any(|c| c.payload_type == pt && !repairs(c));
        let known = earlier().find(|c| repairs(c)).map(|c| c.payload_type);
        let Some(pt) = pick(known, wanted.payload_type, &taken, clashes) else {
            continue;
        };
        taken.push(pt);
        let mut codec = Codec {
            payload_type: pt,
            ..wanted.clone()
        };
        codec.parameters.retain(|p| !p.name.eq_ignore_ascii_case("apt"));
        codec
            .parameters
            .insert(0, Parameter::new("apt", Some(&repaired.to_string())));
        numbered.push((index, codec));
    }

    numbered.sort_by_key(|(index, _)| *index);
    numbered.into_iter().map(|(_, codec)| codec).collect()
}

/// The known number if still free in this section, else the configured
/// one if nobody else uses it, else the first free dynamic one.
fn pick(known: Option<u8>, configured: u8, taken: &[u8], clashes: impl Fn(u8) -> bool) -> Option<u8> {
    let free = |pt: u8| !taken.contains(&pt) && !clashes(pt);
    known
        .filter(|pt| !taken.contains(pt))
        .or(Some(configured).filter(|pt| free(*pt)))
        .or_else(|| dynamic_payload_types().find(|pt| free(*pt)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsep::codec::default_video_codecs;

    #[test]
    fn configured_numbers_when_the_session_is_new() {
        let codecs = offer_codecs(&default_video_codecs(), &[], &[]);
        let pts: Vec<u8> = codecs.iter().map(|c| c.payload_type).collect();
        assert_eq!(pts, [96, 97, 98, 99, 102, 103, 45, 46]);
    }

    #[test]
    fn numbers_the_session_gave_are_kept_and_clashes_avoided() {
        // A peer's offer numbered VP8 120 and put H.265 on 96.
        let mut session = vec![Codec::new(120, "VP8", 90_000), Codec::new(96, "H265", 90_000)];
        session.push(Codec {
            parameters: vec![Parameter::new("apt", Some("120"))],
            ..Codec::new(124, "rtx", 90_000)
        });
        let codecs = offer_codecs(&default_video_codecs(), &[], &session);
        let pts: Vec<(u8, Option<u8>)> = codecs.iter().map(|c| (c.payload_type, apt(c))).collect();
        assert_eq!(
            pts,
            [
                (120, None),
                (124, Some(120)),
                (98, None),
                (99, Some(98)),
                (102, None),
                (103, Some(102)),
                (45, None),
                (46, Some(45))
            ]
        );
    }
}
