//! Offers and answers in the shapes Chromium, Firefox, aiortc and Pion
//! write them (fixtures/*.sdp, LF line ends): each parses from LF and from
//! CRLF text to the same value, writes back exactly the CRLF text, and
//! its typed getters read what the text says.

use natter_sdp::*;

/// Parses `lf` and its CRLF form, checks they agree, that writing gives
/// the CRLF text back byte for byte, and that it parses to itself again.
fn canonical(lf: &str) -> SessionDescription {
    let crlf = lf.replace('\n', "\r\n");
    let from_lf = SessionDescription::parse(lf).unwrap_or_else(|e| panic!("LF text should parse: {e}"));
    let from_crlf: SessionDescription = crlf.parse().unwrap_or_else(|e| panic!("CRLF text should parse: {e}"));
    assert_eq!(from_lf, from_crlf);
    let written = from_lf.to_string();
    assert_eq!(written, crlf);
    assert_eq!(SessionDescription::parse(&written).unwrap(), from_lf);
    from_lf
}

fn names(codecs: &[Codec]) -> Vec<(u8, &str)> {
    codecs
        .iter()
        .map(|c| (c.payload_type, c.encoding_name.as_str()))
        .collect()
}

fn feedback(items: &[(&str, Option<&str>)]) -> Vec<Feedback> {
    items
        .iter()
        .map(|(kind, parameter)| Feedback::new(*kind, *parameter))
        .collect()
}

fn mids(groups: impl Iterator<Item = Group>) -> Vec<Vec<String>> {
    groups.map(|g| g.mids).collect()
}

const CHROMIUM_OFFER: &str = include_str!("fixtures/chromium_offer.sdp");
const CHROMIUM_ANSWER: &str = include_str!("fixtures/chromium_answer.sdp");
const FIREFOX_OFFER: &str = include_str!("fixtures/firefox_offer.sdp");
const AIORTC_OFFER: &str = include_str!("fixtures/aiortc_offer.sdp");
const PION_OFFER: &str = include_str!("fixtures/pion_offer.sdp");
const DATACHANNEL_OFFER: &str = include_str!("fixtures/datachannel_offer.sdp");

// ---- Chromium ---------------------------------------------------------------

#[test]
fn chromium_offer_session() {
    let sdp = canonical(CHROMIUM_OFFER);
    let address = Address::new("127.0.0.1".parse().unwrap());
    assert_eq!(
        sdp.origin,
        Origin {
            address,
            ..Origin::new(5183719372661892103, 2)
        }
    );
    assert_eq!(sdp.session_name, "-");
    assert_eq!(sdp.timings, [Timing::default()]);
    assert_eq!(mids(sdp.bundle_groups()), [["0", "1", "2"]]);
    assert!(sdp.attributes.flag(Flag::ExtmapAllowMixed));
    let semantics: Vec<MsidSemantic> = sdp.msid_semantics().collect();
    assert_eq!(semantics.len(), 1);
    assert_eq!(semantics[0].semantic, "WMS");
    assert_eq!(semantics[0].stream_ids.len(), 1);
    assert!(!sdp.ice_lite());
    let kinds: Vec<&MediaKind> = sdp.media.iter().map(|m| &m.kind).collect();
    assert_eq!(kinds, [&MediaKind::Audio, &MediaKind::Video, &MediaKind::Application]);
    for view in sdp.media_views() {
        assert_eq!(view.ice_ufrag(), Some("Qm9v"));
        assert_eq!(view.ice_pwd(), Some("T3xQk1ZbR8yWq2pLm5nVc0dA"));
        assert_eq!(view.ice_options(), ["trickle"]);
        assert_eq!(view.setup(), Some(Setup::ActPass));
        let fingerprints = view.fingerprints();
        assert_eq!(fingerprints.len(), 1);
        assert_eq!(fingerprints[0].hash, HashFunction::Sha256);
        assert_eq!(fingerprints[0].bytes.len(), 32);
        assert_eq!(
            view.connection().and_then(Address::ip),
            Some("0.0.0.0".parse().unwrap())
        );
        assert!(view.flag(Flag::ExtmapAllowMixed));
    }
}

#[test]
fn chromium_offer_audio() {
    let sdp = canonical(CHROMIUM_OFFER);
    let audio = sdp.media_by_mid("0").unwrap();
    assert_eq!((audio.port, &audio.protocol), (9, &Protocol::UdpTlsRtpSavpf));
    assert!(audio.protocol.is_rtp());
    assert_eq!(audio.direction(), Direction::SendRecv);
    let msid: Vec<Msid> = audio.msids().collect();
    assert_eq!(msid.len(), 1);
    assert_eq!(msid[0].stream_id, sdp.msid_semantics().next().unwrap().stream_ids[0]);
    assert_eq!(
        audio.rtcp(),
        Some(Rtcp {
            port: 9,
            address: Some("IN IP4 0.0.0.0".parse().unwrap())
        })
    );
    assert!(audio.flag(Flag::RtcpMux) && audio.flag(Flag::RtcpRsize));
    let extmaps = audio.extmaps();
    assert_eq!(extmaps.len(), 4);
    assert_eq!(extmaps[3], Extmap::new(4, "urn:ietf:params:rtp-hdrext:sdes:mid"));

    let codecs = audio.codecs();
    assert_eq!(
        names(&codecs),
        [
            (111, "opus"),
            (63, "red"),
            (9, "G722"),
            (0, "PCMU"),
            (8, "PCMA"),
            (13, "CN"),
            (110, "telephone-event"),
            (126, "telephone-event")
        ]
    );
    let opus = &codecs[0];
    assert_eq!((opus.clock_rate, opus.channels), (48000, Some(2)));
    assert_eq!(
        opus.parameters,
        [
            Parameter::new("minptime", Some("10")),
            Parameter::new("useinbandfec", Some("1"))
        ]
    );
    assert_eq!(opus.parameter("useinbandfec"), Some("1"));
    assert_eq!(opus.feedback, feedback(&[("transport-cc", None)]));
    assert_eq!(codecs[1].parameters, [Parameter::new("111/111", None)]);
    assert_eq!((codecs[7].clock_rate, codecs[7].channels), (8000, None));

    let ssrcs: Vec<Ssrc> = audio.ssrcs().collect();
    assert_eq!(ssrcs.len(), 2);
    assert_eq!((ssrcs[0].ssrc, ssrcs[0].attribute.as_str()), (2743801145, "cname"));
    assert_eq!(ssrcs[1].attribute, "msid");
    assert_eq!(
        ssrcs[1].value.as_deref(),
        Some(format!("{} {}", msid[0].stream_id, msid[0].track_id.as_ref().unwrap()).as_str())
    );
}

#[test]
fn chromium_offer_simulcast_video() {
    let sdp = canonical(CHROMIUM_OFFER);
    let video = sdp.media_view(1).unwrap();
    assert_eq!(video.mid(), Some("1"));
    assert_eq!(video.direction(), Direction::SendOnly);
    let rids: Vec<Rid> = video.rids().collect();
    assert_eq!(rids, ["q", "h", "f"].map(|id| Rid::new(id, RidDirection::Send)));
    assert_eq!(video.simulcast(), Some(Simulcast::send(["q", "h", "f"])));
    assert_eq!(video.ssrcs().count(), 0);

    let extmaps = video.extmaps();
    assert_eq!(extmaps.len(), 11);
    assert_eq!(
        (extmaps[0].id, extmaps[0].uri.as_str()),
        (14, "urn:ietf:params:rtp-hdrext:toffset")
    );
    assert_eq!(extmaps[9].uri, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id");

    let codecs = video.codecs();
    assert_eq!(
        names(&codecs),
        [
            (96, "VP8"),
            (97, "rtx"),
            (45, "AV1"),
            (46, "rtx"),
            (98, "VP9"),
            (99, "rtx"),
            (100, "H264"),
            (101, "rtx")
        ]
    );
    let full = feedback(&[
        ("goog-remb", None),
        ("transport-cc", None),
        ("ccm", Some("fir")),
        ("nack", None),
        ("nack", Some("pli")),
    ]);
    assert_eq!(codecs[0].feedback, full);
    assert!(codecs[1].feedback.is_empty());
    assert_eq!(codecs[1].parameter("apt"), Some("96"));
    assert_eq!(codecs[2].parameter("level-idx"), Some("5"));
    assert_eq!(codecs[6].parameter("profile-level-id"), Some("42e01f"));
    assert_eq!(codecs[7].parameter("APT"), Some("100"));
}

#[test]
fn chromium_offer_data_channel() {
    let sdp = canonical(CHROMIUM_OFFER);
    let data = &sdp.media[2];
    assert_eq!(data.kind, MediaKind::Application);
    assert_eq!(data.protocol, Protocol::UdpDtlsSctp);
    assert!(data.protocol.is_sctp() && !data.protocol.is_rtp());
    assert_eq!(data.formats, ["webrtc-datachannel"]);
    assert_eq!(data.mid(), Some("2"));
    assert_eq!(data.sctp_port(), Some(5000));
    assert_eq!(data.max_message_size(), Some(262144));
    assert!(data.codecs().is_empty());
    assert_eq!(data.direction(), None);
    assert_eq!(sdp.media_view(2).unwrap().direction(), Direction::SendRecv);
}

#[test]
fn chromium_answer() {
    let sdp = canonical(CHROMIUM_ANSWER);
    assert_eq!(mids(sdp.bundle_groups()), [["0", "1"]]);
    let semantics: Vec<MsidSemantic> = sdp.msid_semantics().collect();
    assert_eq!(
        semantics,
        [MsidSemantic {
            semantic: "WMS".into(),
            stream_ids: vec![]
        }]
    );

    let audio = sdp.media_view(0).unwrap();
    assert_eq!(audio.port, 53412);
    assert_eq!(
        audio.connection().and_then(Address::ip),
        Some("192.0.2.24".parse().unwrap())
    );
    assert_eq!(audio.setup(), Some(Setup::Active));
    assert_eq!(audio.direction(), Direction::RecvOnly);
    let candidates: Vec<&str> = audio.candidates().collect();
    assert_eq!(candidates.len(), 2);
    assert!(candidates[0].starts_with("1467250027 1 udp 2122260223 192.0.2.24 53412 typ host"));
    assert!(candidates[1].contains("tcptype passive"));
    assert!(!audio.flag(Flag::EndOfCandidates));
    assert_eq!(names(&audio.codecs()), [(111, "opus"), (0, "PCMU")]);

    let video = sdp.media_view(1).unwrap();
    assert_eq!(video.direction(), Direction::SendRecv);
    let msid = video.msids().next().unwrap();
    assert_eq!(msid.stream_id, "-");
    assert_eq!(
        video.ssrc_groups().collect::<Vec<_>>(),
        [SsrcGroup::new(SsrcGroupSemantics::Fid, vec![1201918312, 3893049211])]
    );
    let ssrcs: Vec<Ssrc> = video.ssrcs().collect();
    assert_eq!(ssrcs.len(), 4);
    assert!(ssrcs.iter().all(|s| [1201918312, 3893049211].contains(&s.ssrc)));
    assert_eq!(
        ssrcs[3].value.as_deref(),
        Some(format!("- {}", msid.track_id.unwrap()).as_str())
    );
}

// ---- Firefox ----------------------------------------------------------------

#[test]
fn firefox_offer_session_level_defaults() {
    let sdp = canonical(FIREFOX_OFFER);
    assert_eq!(sdp.origin.username, "mozilla...THIS_IS_SDPARTA-128.0");
    assert_eq!(sdp.origin.session_version, 0);
    assert_eq!(mids(sdp.bundle_groups()), [["0", "1", "2"]]);
    assert_eq!(sdp.msid_semantics().next().unwrap().stream_ids, ["*"]);
    let session_fingerprints: Vec<Fingerprint> = sdp.attributes.fingerprints().collect();
    assert_eq!(session_fingerprints.len(), 1);
    assert_eq!(sdp.attributes.ice_options().collect::<Vec<_>>(), ["trickle"]);
    for view in sdp.media_views() {
        // RFC 8122 §5: the session-level fingerprint applies to every section.
        assert_eq!(view.attributes.fingerprints().count(), 0);
        assert_eq!(view.fingerprints(), session_fingerprints);
        assert_eq!(view.ice_options(), ["trickle"]);
        assert_eq!(view.setup(), Some(Setup::ActPass));
        assert_eq!(view.ice_ufrag().map(str::len), Some(8));
        assert_eq!(view.ice_pwd().map(str::len), Some(32));
    }
}

#[test]
fn firefox_offer_audio() {
    let sdp = canonical(FIREFOX_OFFER);
    let audio = sdp.media_view(0).unwrap();
    assert_eq!(audio.direction(), Direction::SendRecv);
    assert!(audio.flag(Flag::EndOfCandidates));
    assert_eq!(audio.candidates().count(), 2);
    let extmaps = audio.extmaps();
    assert_eq!(extmaps[1].direction, Some(Direction::RecvOnly));
    assert_eq!(extmaps[1].uri, "urn:ietf:params:rtp-hdrext:csrc-audio-level");
    let codecs = audio.codecs();
    assert_eq!(
        names(&codecs),
        [
            (109, "opus"),
            (9, "G722"),
            (0, "PCMU"),
            (8, "PCMA"),
            (101, "telephone-event")
        ]
    );
    assert_eq!(codecs[0].parameter("stereo"), Some("1"));
    assert_eq!(codecs[1].channels, Some(1));
    assert_eq!(codecs[4].parameters, [Parameter::new("0-15", None)]);
    assert_eq!(codecs[4].channels, Some(1));
}

#[test]
fn firefox_offer_simulcast_video() {
    let sdp = canonical(FIREFOX_OFFER);
    let video = sdp.media_view(1).unwrap();
    assert_eq!(video.direction(), Direction::SendOnly);
    assert_eq!(video.simulcast(), Some(Simulcast::send(["a", "b", "c"])));
    assert_eq!(video.rids().map(|r| r.id).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(video.extmaps()[3].direction, Some(Direction::RecvOnly));
    let codecs = video.codecs();
    assert_eq!(
        names(&codecs),
        [
            (120, "VP8"),
            (124, "rtx"),
            (121, "VP9"),
            (125, "rtx"),
            (126, "H264"),
            (127, "rtx"),
            (97, "H264"),
            (98, "rtx")
        ]
    );
    assert_eq!(codecs[0].parameter("max-fs"), Some("12288"));
    assert_eq!(codecs[0].feedback.len(), 5);
    assert_eq!(codecs[1].parameter("apt"), Some("120"));
    assert_eq!(codecs[6].parameter("packetization-mode"), None);
    let groups: Vec<SsrcGroup> = video.ssrc_groups().collect();
    assert_eq!(groups.len(), 3);
    assert!(groups
        .iter()
        .all(|g| g.semantics == SsrcGroupSemantics::Fid && g.ssrcs.len() == 2));
}

#[test]
fn firefox_offer_data_channel() {
    let sdp = canonical(FIREFOX_OFFER);
    let data = sdp.media_view(2).unwrap();
    assert_eq!(data.protocol, Protocol::UdpDtlsSctp);
    assert_eq!(data.direction(), Direction::SendRecv);
    assert_eq!(data.sctp_port(), Some(5000));
    assert_eq!(data.max_message_size(), Some(1073741823));
}

// ---- aiortc -----------------------------------------------------------------

#[test]
fn aiortc_offer() {
    let sdp = canonical(AIORTC_OFFER);
    assert_eq!(mids(sdp.bundle_groups()), [["0", "1"]]);
    assert_eq!(sdp.origin.session_id, 3926151432);
    let audio = sdp.media_view(0).unwrap();
    // aiortc writes no a=ice-options.
    assert!(audio.ice_options().is_empty());
    let fingerprints = audio.fingerprints();
    let hashes: Vec<(&HashFunction, usize)> = fingerprints.iter().map(|f| (&f.hash, f.bytes.len())).collect();
    assert_eq!(hashes, [(&HashFunction::Sha256, 32), (&HashFunction::Sha384, 48)]);
    assert_eq!(names(&audio.codecs()), [(96, "opus"), (0, "PCMU"), (8, "PCMA")]);
    assert_eq!(audio.candidates().count(), 2);
    assert!(audio.flag(Flag::EndOfCandidates));
    assert_eq!(audio.rtcp().map(|r| r.port), Some(9));

    let data = sdp.media_view(1).unwrap();
    assert_eq!((data.port, &data.protocol), (47612, &Protocol::DtlsSctp));
    assert_eq!(data.formats, ["5000"]);
    assert_eq!(data.sctp_port(), None);
    assert_eq!(data.max_message_size(), Some(65536));
    // The legacy a=sctpmap is not typed, but kept.
    assert_eq!(data.attributes.value("sctpmap"), Some("5000 webrtc-datachannel 65535"));
}

// ---- Pion -------------------------------------------------------------------

#[test]
fn pion_offer() {
    let sdp = canonical(PION_OFFER);
    assert_eq!(sdp.origin.session_version, 1700000000);
    let session_fingerprints: Vec<Fingerprint> = sdp.attributes.fingerprints().collect();
    assert_eq!(session_fingerprints.len(), 1);
    assert_eq!(mids(sdp.bundle_groups()), [["0", "1"]]);

    let video = sdp.media_view(0).unwrap();
    assert_eq!(video.fingerprints(), session_fingerprints);
    assert_eq!(video.direction(), Direction::SendOnly);
    assert!(video.flag(Flag::ExtmapAllowMixed));
    let codecs = video.codecs();
    assert_eq!(names(&codecs), [(96, "VP8"), (97, "rtx"), (102, "H264"), (103, "rtx")]);
    // Pion ends parameterless rtcp-fb lines with a space; kept verbatim,
    // read without it.
    assert!(video
        .attributes
        .iter()
        .any(|a| a.value.as_deref() == Some("96 goog-remb ")));
    assert_eq!(codecs[0].feedback[0], Feedback::new("goog-remb", None));
    assert_eq!(codecs[2].feedback, feedback(&[("goog-remb", None), ("nack", None)]));
    let labels: Vec<String> = video
        .ssrcs()
        .filter(|s| s.ssrc == 3421526411)
        .map(|s| s.attribute)
        .collect();
    assert_eq!(labels, ["cname", "msid", "mslabel", "label"]);
    assert_eq!(video.msids().next(), Some(Msid::new("pion", Some("video".into()))));

    let data = sdp.media_view(1).unwrap();
    assert_eq!(data.direction(), Direction::SendRecv);
    assert_eq!(data.max_message_size(), None);
    assert_eq!(data.sctp_port(), Some(5000));
}

// ---- Data channel only --------------------------------------------------------

#[test]
fn data_channel_only_offer() {
    let sdp = canonical(DATACHANNEL_OFFER);
    assert_eq!(sdp.media.len(), 1);
    let data = sdp.media_by_mid("0").unwrap();
    assert_eq!(data.kind, MediaKind::Application);
    assert_eq!(data.protocol, Protocol::UdpDtlsSctp);
    assert_eq!(data.formats, ["webrtc-datachannel"]);
    assert_eq!(data.sctp_port(), Some(5000));
    assert_eq!(data.max_message_size(), Some(262144));
    assert_eq!(data.fingerprints().len(), 1);
    assert_eq!(data.ice_options(), ["trickle"]);
    assert!(sdp.media_by_mid("1").is_none());
}
