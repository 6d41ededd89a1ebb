//! Codec negotiation (RFC 8829 §5.3.1): which payload formats the two
//! sides share, with the format-specific rules of H.264 (RFC 6184 §8.1),
//! Opus (RFC 7587 §7), VP9 (RFC 9628 §6), AV1 (AV1 RTP Specification
//! §7) and RTX (RFC 4588 §8).

use natter_sdp::{Codec, Feedback, Parameter};

/// Opus at its Chromium payload type (RFC 7587 §7: always `/48000/2`),
/// with FEC and 10 ms minimum packets.
pub fn default_audio_codecs() -> Vec<Codec> {
    let mut opus = Codec::new(111, "opus", 48_000);
    opus.channels = Some(2);
    opus.parameters = vec![
        Parameter::new("minptime", Some("10")),
        Parameter::new("useinbandfec", Some("1")),
    ];
    opus.feedback = vec![Feedback::new("transport-cc", None)];
    vec![opus]
}

/// Chromium's video codecs in Chromium's order and at its payload
/// types, each with RTX: VP8 (96, 97), VP9 profile 0 (98, 99, RFC 9628
/// §6), H.264 constrained baseline in packetization mode 1 (102, 103),
/// AV1 Main profile (45, 46, AV1 RTP Specification §7.2, with the
/// `level-idx` and `tier` Chromium writes). The feedback is Chromium's.
pub fn default_video_codecs() -> Vec<Codec> {
    let feedback = vec![
        Feedback::new("goog-remb", None),
        Feedback::new("transport-cc", None),
        Feedback::new("ccm", Some("fir")),
        Feedback::new("nack", None),
        Feedback::new("nack", Some("pli")),
    ];
    let video = |payload_type, name, parameters: &[(&str, &str)]| {
        let mut codec = Codec::new(payload_type, name, 90_000);
        codec.parameters = parameters.iter().map(|&(n, v)| Parameter::new(n, Some(v))).collect();
        codec.feedback = feedback.clone();
        codec
    };
    vec![
        video(96, "VP8", &[]),
        rtx(97, 96),
        video(98, "VP9", &[("profile-id", "0")]),
        rtx(99, 98),
        video(
            102,
            "H264",
            &[
                ("level-asymmetry-allowed", "1"),
                ("packetization-mode", "1"),
                ("profile-level-id", "42e01f"),
            ],
        ),
        rtx(103, 102),
        video(45, "AV1", &[("level-idx", "5"), ("profile", "0"), ("tier", "0")]),
        rtx(46, 45),
    ]
}

/// `rtx/90000` retransmitting payload type `apt` (RFC 4588 §8.1).
fn rtx(payload_type: u8, apt: u8) -> Codec {
    let mut codec = Codec::new(payload_type, "rtx", 90_000);
    codec.parameters = vec![Parameter::new("apt", Some(&apt.to_string()))];
    codec
}

/// Whether `codec` is RTX (RFC 4588 §8.1).
pub(crate) fn is_rtx(codec: &Codec) -> bool {
    codec.encoding_name.eq_ignore_ascii_case("rtx")
}

/// The payload type an RTX codec retransmits (`apt`, RFC 4588 §8.1).
pub(crate) fn apt(codec: &Codec) -> Option<u8> {
    codec.parameter("apt")?.parse().ok()
}

/// The H.264 profiles that decide whether two offers are compatible
/// (RFC 6184 §8.1, table 5); the level does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    ConstrainedHigh,
    High,
    Other(u8),
}

/// RFC 6184 §8.1: `profile-level-id` is `profile_idc`, `profile-iop` and
/// `level_idc` in hex; absent, it means 420010 (Baseline).
fn h264_profile(codec: &Codec) -> Option<H264Profile> {
    let id = codec.parameter("profile-level-id").unwrap_or("420010");
    if id.len() != 6 || !id.is_ascii() {
        return None;
    }
    let profile_idc = u8::from_str_radix(&id[0..2], 16).ok()?;
    let iop = u8::from_str_radix(&id[2..4], 16).ok()?;
    u8::from_str_radix(&id[4..6], 16).ok()?;
    let constraint = |bit: u8| iop & (0x80 >> bit) != 0;
    Some(match profile_idc {
        0x42 if constraint(1) => H264Profile::ConstrainedBaseline,
        0x42 => H264Profile::Baseline,
        0x4d if constraint(1) => H264Profile::ConstrainedBaseline,
        0x4d => H264Profile::Main,
        0x58 if constraint(0) && constraint(1) => H264Profile::ConstrainedBaseline,
        0x64 if constraint(4) && constraint(5) => H264Profile::ConstrainedHigh,
        0x64 => H264Profile::High,
        other => H264Profile::Other(other),
    })
}

/// Whether two non-RTX codecs are the same format, so that one side's
/// payload type can stand for the other's.
pub(crate) fn same_format(a: &Codec, b: &Codec) -> bool {
    if !a.encoding_name.eq_ignore_ascii_case(&b.encoding_name)
        || a.clock_rate != b.clock_rate
        || a.channels.unwrap_or(1) != b.channels.unwrap_or(1)
    {
        return false;
    }
    let parameter = |codec: &Codec, name, default| codec.parameter(name).unwrap_or(default).to_string();
    if a.encoding_name.eq_ignore_ascii_case("H264") {
        // RFC 6184 §8.1: the packetization mode must match, and the
        // profile; levels may differ.
        let mode = |codec| parameter(codec, "packetization-mode", "0");
        mode(a) == mode(b) && h264_profile(a).is_some() && h264_profile(a) == h264_profile(b)
    } else if a.encoding_name.eq_ignore_ascii_case("VP9") {
        // RFC 9628 §6.1: profile-id, 0 when absent.
        parameter(a, "profile-id", "0") == parameter(b, "profile-id", "0")
    } else if a.encoding_name.eq_ignore_ascii_case("AV1") {
        // AV1 RTP Specification §7.2: profile, 0 (Main) when absent;
        // §7.2.3: level-idx and tier may differ.
        parameter(a, "profile", "0") == parameter(b, "profile", "0")
    } else {
        true
    }
}

/// The feedback of `ours` that `theirs` also has, in our order.
fn common_feedback(ours: &[Feedback], theirs: &[Feedback]) -> Vec<Feedback> {
    ours.iter().filter(|f| theirs.contains(f)).cloned().collect()
}

/// The codecs of an answer (RFC 8829 §5.3.1): those of the offer that we
/// support, in the offer's order and with its payload types. Parameters
/// are ours, as they describe what we receive (RFC 7587 §7), except the
/// H.264 `profile-level-id`, taken from the offer (RFC 6184 §8.2.2);
/// feedback is what both list. RTX stays when the codec it repairs stays
/// and we do RTX for it (RFC 4588 §8.1).
pub(crate) fn answer_codecs(offered: &[Codec], supported: &[Codec]) -> Vec<Codec> {
    let matched = |offer: &Codec| {
        supported
            .iter()
            .filter(|s| !is_rtx(s))
            .find(|s| !is_rtx(offer) && same_format(s, offer))
    };
    let mut answer = Vec::new();
    for offer in offered {
        if let Some(ours) = matched(offer) {
            let mut codec = offer.clone();
            codec.parameters = ours.parameters.clone();
            if let Some(profile) = offer.parameter("profile-level-id").filter(|_| is_h264(offer)) {
                set_parameter(&mut codec.parameters, "profile-level-id", profile);
            }
            codec.feedback = common_feedback(&offer.feedback, &ours.feedback);
            answer.push(codec);
        } else if is_rtx(offer) {
            let repaired = offered
                .iter()
                .find(|c| Some(c.payload_type) == apt(offer) && !is_rtx(c));
            let ours = repaired.and_then(matched);
            let we_repair =
                ours.is_some_and(|ours| supported.iter().any(|s| is_rtx(s) && apt(s) == Some(ours.payload_type)));
            if we_repair {
                let mut codec = offer.clone();
                codec.feedback.clear();
                answer.push(codec);
            }
        }
    }
    answer
}

fn is_h264(codec: &Codec) -> bool {
    codec.encoding_name.eq_ignore_ascii_case("H264")
}

fn set_parameter(parameters: &mut Vec<Parameter>, name: &str, value: &str) {
    match parameters.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) {
        Some(parameter) => parameter.value = Some(value.to_string()),
        None => parameters.push(Parameter::new(name, Some(value))),
    }
}

/// Whether `codec` is one of `supported` (RTX by the format it repairs
/// being there).
pub(crate) fn is_supported(codec: &Codec, supported: &[Codec]) -> bool {
    if is_rtx(codec) {
        supported.iter().any(is_rtx)
    } else {
        supported.iter().any(|s| !is_rtx(s) && same_format(s, codec))
    }
}

/// A codec both sides agreed on, with its RTX folded in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NegotiatedCodec {
    pub payload_type: u8,
    /// As written, such as `opus`, `VP8`, `H264`.
    pub name: String,
    /// In Hz.
    pub clock_rate: u32,
    /// For audio: 2 for Opus.
    pub channels: Option<u16>,
    /// The `a=fmtp` parameters of the side that receives.
    pub parameters: Vec<Parameter>,
    /// The `a=rtcp-fb` both sides listed (RFC 4585 §4.2).
    pub feedback: Vec<Feedback>,
    /// The payload type of its retransmissions (RFC 4588), if both do RTX.
    pub rtx_payload_type: Option<u8>,
}

impl NegotiatedCodec {
    /// The value of the format parameter `name` (case-insensitive).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))?
            .value
            .as_deref()
    }
}

/// The codecs of `described` (a section of one side) that `other` (the
/// same section from the other side) also has, in `described`'s order
/// and with its payload types and parameters.
///
/// With `described` the receiving side's section, these are the codecs
/// that flow toward that side.
pub(crate) fn negotiated_codecs(described: &[Codec], other: &[Codec]) -> Vec<NegotiatedCodec> {
    let rtx_for = |codecs: &[Codec], pt: u8| {
        codecs
            .iter()
            .find(|c| is_rtx(c) && apt(c) == Some(pt))
            .map(|c| c.payload_type)
    };
    described
        .iter()
        .filter(|c| !is_rtx(c))
        .filter_map(|codec| {
            let theirs = other.iter().find(|o| !is_rtx(o) && same_format(codec, o))?;
            let rtx_payload_type =
                rtx_for(described, codec.payload_type).filter(|_| rtx_for(other, theirs.payload_type).is_some());
            Some(NegotiatedCodec {
                payload_type: codec.payload_type,
                name: codec.encoding_name.clone(),
                clock_rate: codec.clock_rate,
                channels: codec.channels,
                parameters: codec.parameters.clone(),
                feedback: common_feedback(&codec.feedback, &theirs.feedback),
                rtx_payload_type,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(pt: u8, fmtp: &str) -> Codec {
        let mut codec = Codec::new(pt, "H264", 90_000);
        codec.parameters = natter_sdp::parse_parameters(fmtp);
        codec
    }

    #[test]
    fn h264_matches_on_profile_and_packetization_mode() {
        let ours = h264(102, "packetization-mode=1;profile-level-id=42e01f");
        assert!(same_format(
            &ours,
            &h264(126, "profile-level-id=42e034;packetization-mode=1")
        ));
        // 42c0 is constrained baseline too (constraint_set1 set).
        assert!(same_format(
            &ours,
            &h264(100, "packetization-mode=1;profile-level-id=42c01f")
        ));
        assert!(!same_format(&ours, &h264(97, "profile-level-id=42e01f")));
        assert!(!same_format(
            &ours,
            &h264(98, "packetization-mode=1;profile-level-id=42001f")
        ));
        assert!(!same_format(
            &ours,
            &h264(99, "packetization-mode=1;profile-level-id=64001f")
        ));
        assert!(!same_format(
            &ours,
            &h264(99, "packetization-mode=1;profile-level-id=zz")
        ));
    }

    fn with(pt: u8, name: &str, fmtp: &str) -> Codec {
        let mut codec = Codec::new(pt, name, 90_000);
        codec.parameters = natter_sdp::parse_parameters(fmtp);
        codec
    }

    #[test]
    fn vp9_matches_on_profile_id_and_av1_on_profile() {
        let ours = default_video_codecs();
        let vp9 = &ours[2];
        let av1 = &ours[6];
        assert!(same_format(vp9, &with(98, "VP9", "profile-id=0")));
        assert!(same_format(vp9, &with(98, "vp9", "")), "profile-id is 0 when absent");
        assert!(!same_format(vp9, &with(100, "VP9", "profile-id=2")));
        assert!(same_format(av1, &with(45, "AV1", "level-idx=5;profile=0;tier=0")));
        assert!(same_format(av1, &with(35, "AV1", "")), "profile is 0 when absent");
        assert!(
            same_format(av1, &with(35, "AV1", "level-idx=8;tier=1")),
            "levels and tiers may differ"
        );
        assert!(!same_format(av1, &with(47, "AV1", "level-idx=5;profile=1;tier=0")));
    }

    #[test]
    fn answer_keeps_offer_order_and_payload_types_and_rtx_by_apt() {
        let offered = vec![
            h264(100, "packetization-mode=1;profile-level-id=42e01f"),
            rtx(101, 100),
            with(35, "VP9", "profile-id=2"),
            rtx(36, 35),
            with(47, "AV1", "profile=1"),
            rtx(48, 47),
            Codec::new(45, "AV1", 90_000),
            rtx(46, 45),
            Codec::new(120, "vp8", 90_000),
            rtx(124, 120),
            with(121, "VP9", "profile-id=0"),
        ];
        let answer = answer_codecs(&offered, &default_video_codecs());
        let pts: Vec<u8> = answer.iter().map(|c| c.payload_type).collect();
        // VP9 profile 2 and AV1 profile 1 are not ours; VP9 profile 0
        // comes without RTX, as offered.
        assert_eq!(pts, [100, 101, 45, 46, 120, 124, 121]);
        assert_eq!(answer[1].parameter("apt"), Some("100"));
        assert_eq!(answer[0].parameter("profile-level-id"), Some("42e01f"));
        assert_eq!(answer[0].parameter("level-asymmetry-allowed"), Some("1"));
        assert_eq!(
            answer[2].parameter("level-idx"),
            Some("5"),
            "our parameters: what we receive"
        );
        assert_eq!(answer[6].parameter("profile-id"), Some("0"));
    }

    #[test]
    fn negotiated_folds_rtx() {
        let ours = default_video_codecs();
        let codecs = negotiated_codecs(&ours, &ours);
        let pts: Vec<(&str, u8, Option<u8>)> = codecs
            .iter()
            .map(|c| (c.name.as_str(), c.payload_type, c.rtx_payload_type))
            .collect();
        assert_eq!(
            pts,
            [
                ("VP8", 96, Some(97)),
                ("VP9", 98, Some(99)),
                ("H264", 102, Some(103)),
                ("AV1", 45, Some(46))
            ]
        );
        assert!(codecs.iter().all(|c| c.feedback.len() == 5));
    }
}
