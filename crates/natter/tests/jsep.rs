//! JSEP (RFC 8829) against itself and against the offers Chromium,
//! Firefox, aiortc and Pion write (the fixtures of natter-sdp).

use natter::jsep::{
    DtlsRole, IceCredentials, Jsep, JsepConfig, JsepError, LocalTrack, MediaKind, Negotiated, Operation, SdpType,
    SignalingState,
};
use natter_rtp::extension as ext;
use natter_sdp::{Direction, Flag, Group, MediaView, Protocol, SessionDescription, Setup};

fn fingerprint(byte: u8) -> String {
    format!("sha-256 {}", vec![format!("{byte:02X}"); 32].join(":"))
}

fn peer(session_id: u64, ufrag: &str) -> Jsep {
    let pwd = format!("{ufrag}pwd0123456789abcdefgh");
    let config = JsepConfig::new(
        session_id,
        IceCredentials::new(ufrag, pwd),
        fingerprint(session_id as u8),
        "natter",
    );
    Jsep::new(config).expect("valid configuration")
}

fn track(ssrc: u32, rtx: Option<u32>, id: &str) -> LocalTrack {
    LocalTrack {
        ssrc,
        rtx_ssrc: rtx,
        stream_id: Some("stream".into()),
        track_id: id.into(),
    }
}

fn fixture(name: &str) -> String {
    let path = format!("{}/../natter-sdp/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(text: &str) -> SessionDescription {
    text.parse().expect("our own SDP parses")
}

fn pts(view: &MediaView<'_>) -> Vec<u8> {
    view.codecs().iter().map(|c| c.payload_type).collect()
}

/// The header extension URIs of a section.
fn uris(view: &MediaView<'_>) -> Vec<String> {
    view.extmaps().into_iter().map(|e| e.uri).collect()
}

fn mids(description: &SessionDescription) -> Vec<&str> {
    description.media.iter().map(|m| m.mid().expect("mid")).collect()
}

fn bundle(description: &SessionDescription) -> Vec<String> {
    description.bundle_groups().next().map(|g| g.mids).unwrap_or_default()
}

/// One full exchange; returns (offerer's, answerer's) summaries.
fn exchange(offerer: &mut Jsep, answerer: &mut Jsep) -> (Negotiated, Negotiated) {
    let offer = offerer.create_offer().expect("offer");
    offerer
        .set_local_description(SdpType::Offer, &offer)
        .expect("local offer");
    answerer
        .set_remote_description(SdpType::Offer, &offer)
        .expect("remote offer");
    let answer = answerer.create_answer().expect("answer");
    let answered = answerer
        .set_local_description(SdpType::Answer, &answer)
        .expect("local answer")
        .expect("an answer negotiates");
    let offered = offerer
        .set_remote_description(SdpType::Answer, &answer)
        .expect("remote answer")
        .expect("an answer negotiates");
    assert_eq!(offerer.signaling_state(), SignalingState::Stable);
    assert_eq!(answerer.signaling_state(), SignalingState::Stable);
    (offered, answered)
}

/// Audio and video with tracks, and a data channel.
fn full_peer(session_id: u64, ufrag: &str) -> Jsep {
    let mut jsep = peer(session_id, ufrag);
    let audio = jsep.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    jsep.set_track(audio, Some(track(1111, None, "mic"))).unwrap();
    let video = jsep.add_transceiver(MediaKind::Video, Direction::SendRecv).unwrap();
    jsep.set_track(video, Some(track(2222, Some(3333), "cam"))).unwrap();
    jsep.add_data_channel().unwrap();
    jsep
}

#[test]
fn offer_is_shaped_like_chromium() {
    let mut alice = full_peer(7, "alic");
    let text = alice.create_offer().unwrap();
    let offer = parse(&text);

    assert_eq!(bundle(&offer), ["0", "1", "2"]);
    assert!(offer.attributes.flag(Flag::ExtmapAllowMixed));
    assert_eq!(offer.msid_semantics().next().map(|m| m.semantic), Some("WMS".into()));
    assert_eq!(offer.origin.session_id, 7);
    assert_eq!(mids(&offer), ["0", "1", "2"]);
    for view in offer.media_views() {
        assert_eq!(view.ice_ufrag(), Some("alic"));
        assert_eq!(view.ice_options(), ["trickle"]);
        assert_eq!(view.setup(), Some(Setup::ActPass));
        assert_eq!(view.fingerprints()[0].to_string(), fingerprint(7));
        assert_eq!(view.port, 9);
    }

    let audio = offer.media_view(0).unwrap();
    assert_eq!(
        (audio.kind.name(), &audio.protocol),
        ("audio", &Protocol::UdpTlsRtpSavpf)
    );
    assert_eq!(audio.direction(), Direction::SendRecv);
    assert!(audio.flag(Flag::RtcpMux) && audio.flag(Flag::RtcpRsize));
    let extmaps: Vec<(u16, String)> = audio.extmaps().into_iter().map(|e| (e.id, e.uri)).collect();
    assert_eq!(
        extmaps,
        [
            (1, ext::URI_SSRC_AUDIO_LEVEL),
            (2, ext::URI_ABS_SEND_TIME),
            (3, ext::URI_TRANSPORT_WIDE_CC),
            (4, ext::URI_MID)
        ]
        .map(|(id, uri)| (id, uri.to_string()))
    );
    assert_eq!(pts(&audio), [111]);
    assert!(text.contains(
        "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    ));
    assert_eq!(audio.msids().next().unwrap().to_string(), "stream mic");
    assert!(text.contains("a=ssrc:1111 cname:natter\r\na=ssrc:1111 msid:stream mic\r\n"));

    let video = offer.media_view(1).unwrap();
    // Chromium 156's order and numbers: VP8, VP9 profile 0, H.264, AV1.
    assert_eq!(pts(&video), [96, 97, 98, 99, 102, 103, 45, 46]);
    let codecs = video.codecs();
    assert_eq!(codecs[1].parameter("apt"), Some("96"));
    assert_eq!(codecs[2].parameter("profile-id"), Some("0"));
    assert_eq!(codecs[5].parameter("apt"), Some("102"));
    assert_eq!(codecs[4].parameter("profile-level-id"), Some("42e01f"));
    assert_eq!(codecs[4].parameter("packetization-mode"), Some("1"));
    assert_eq!(codecs[6].encoding_name, "AV1");
    assert_eq!(codecs[6].parameter("profile"), Some("0"));
    let feedback: Vec<String> = codecs[0].feedback.iter().map(ToString::to_string).collect();
    assert_eq!(feedback, ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]);
    let uris: Vec<String> = video.extmaps().into_iter().map(|e| e.uri).collect();
    for uri in [
        ext::URI_VIDEO_ORIENTATION,
        ext::URI_PLAYOUT_DELAY,
        ext::URI_RTP_STREAM_ID,
        ext::URI_MID,
    ] {
        assert!(uris.iter().any(|u| u == uri), "{uri}");
    }
    assert!(text.contains("a=ssrc-group:FID 2222 3333\r\n"));
    assert_eq!(video.ssrcs().filter(|s| s.attribute == "cname").count(), 2);

    let data = offer.media_view(2).unwrap();
    assert_eq!(data.protocol, Protocol::UdpDtlsSctp);
    assert_eq!(data.formats, ["webrtc-datachannel"]);
    assert_eq!((data.sctp_port(), data.max_message_size()), (Some(5000), Some(262_144)));

    // Creating again without changes keeps the version (RFC 3264 §8).
    let again = parse(&alice.create_offer().unwrap());
    assert_eq!(again.origin.session_version, offer.origin.session_version);
}

#[test]
fn answers_a_chromium_offer() {
    let offer = fixture("chromium_offer.sdp");
    let mut bob = peer(2, "bobb");
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(bob.signaling_state(), SignalingState::HaveRemoteOffer);
    assert_eq!(bob.transceivers().len(), 2);
    assert_eq!(bob.data_channel_mid(), Some("2"));
    let audio_id = bob.transceiver_by_mid("0").unwrap().id();
    bob.set_direction(audio_id, Direction::SendRecv).unwrap();
    bob.set_track(audio_id, Some(track(4444, None, "mic"))).unwrap();

    let text = bob.create_answer().unwrap();
    let answer = parse(&text);
    assert_eq!(mids(&answer), ["0", "1", "2"]);
    assert_eq!(bundle(&answer), ["0", "1", "2"]);
    for view in answer.media_views() {
        assert_eq!(view.setup(), Some(Setup::Active));
        assert_eq!(view.ice_ufrag(), Some("bobb"));
        assert_eq!(view.fingerprints()[0].to_string(), fingerprint(2));
    }
    let audio = answer.media_view(0).unwrap();
    assert_eq!(pts(&audio), [111]);
    assert_eq!(audio.direction(), Direction::SendRecv);
    assert!(audio.flag(Flag::RtcpRsize));
    assert_eq!(audio.codecs()[0].parameter("useinbandfec"), Some("1"));
    assert!(text.contains("a=ssrc:4444 cname:natter\r\n"));

    let video = answer.media_view(1).unwrap();
    // VP8, AV1, VP9 and H.264 in the offer's order, with its numbers and RTX by apt.
    assert_eq!(pts(&video), [96, 97, 45, 46, 98, 99, 100, 101]);
    assert_eq!(video.codecs()[7].parameter("apt"), Some("100"));
    assert_eq!(video.direction(), Direction::RecvOnly);
    assert!(video.ssrcs().next().is_none());
    let extmaps: Vec<u16> = video.extmaps().iter().map(|e| e.id).collect();
    assert_eq!(extmaps, [2, 13, 3, 5, 4, 10, 11]);
    assert!(text.contains("a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n"));

    let data = answer.media_view(2).unwrap();
    assert_eq!(
        (data.protocol.clone(), data.sctp_port()),
        (Protocol::UdpDtlsSctp, Some(5000))
    );

    let negotiated = bob.set_local_description(SdpType::Answer, &text).unwrap().unwrap();
    let transport = negotiated.transport.as_ref().unwrap();
    assert_eq!(transport.mids, ["0", "1", "2"]);
    assert_eq!(transport.dtls_role, DtlsRole::Client);
    assert!(!transport.ice_controlling);
    assert_eq!(
        transport.remote_ice,
        IceCredentials::new("Qm9v", "T3xQk1ZbR8yWq2pLm5nVc0dA")
    );
    assert_eq!(transport.remote_fingerprints[0].bytes[..2], [0x11, 0x8F]);
    let audio = negotiated.media("0").unwrap();
    assert_eq!(audio.direction, Direction::SendRecv);
    assert_eq!(audio.remote_ssrcs, [2743801145]);
    assert_eq!(audio.remote_cname.as_deref(), Some("yFuI1t1vJObmbvYh"));
    assert_eq!(audio.send_codecs[0].name, "opus");
    assert_eq!(audio.extension_id(ext::URI_MID), Some(4));
    let video = negotiated.media("1").unwrap();
    assert_eq!(video.direction, Direction::RecvOnly);
    let recv: Vec<(u8, Option<u8>)> = video
        .recv_codecs
        .iter()
        .map(|c| (c.payload_type, c.rtx_payload_type))
        .collect();
    assert_eq!(recv, [(96, Some(97)), (45, Some(46)), (98, Some(99)), (100, Some(101))]);
    let rids: Vec<&str> = video.remote_rids.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rids, ["q", "h", "f"]);
    assert_eq!(video.remote_simulcast.as_ref().map(|s| s.send.len()), Some(3));
    assert_eq!(
        video.remote_msid.as_ref().unwrap().stream_id,
        "80802e87-752a-3b03-0bba-6fd31681230a"
    );
    let data = negotiated.data_channel.as_ref().unwrap();
    assert_eq!((data.remote_sctp_port, data.remote_max_message_size), (5000, 262_144));
    assert_eq!(
        bob.transceiver_by_mid("1").unwrap().current_direction(),
        Some(Direction::RecvOnly)
    );
}

#[test]
fn answers_an_aiortc_offer() {
    let mut bob = peer(3, "bobb");
    bob.set_remote_description(SdpType::Offer, &fixture("aiortc_offer.sdp"))
        .unwrap();
    let text = bob.create_answer().unwrap();
    let answer = parse(&text);
    assert_eq!(mids(&answer), ["0", "1"]);
    let audio = answer.media_view(0).unwrap();
    assert_eq!(pts(&audio), [96]);
    assert_eq!(audio.codecs()[0].encoding_name, "opus");
    assert!(!audio.flag(Flag::RtcpRsize), "not offered, not answered");
    assert_eq!(audio.direction(), Direction::RecvOnly);
    // aiortc's older data channel syntax is answered in kind.
    let data = answer.media_view(1).unwrap();
    assert_eq!(
        (data.protocol.clone(), data.formats.clone()),
        (Protocol::DtlsSctp, vec!["5000".to_string()])
    );
    assert!(text.contains("a=sctpmap:5000 webrtc-datachannel 65535\r\n"));

    let negotiated = bob.set_local_description(SdpType::Answer, &text).unwrap().unwrap();
    let transport = negotiated.transport.unwrap();
    assert_eq!(transport.remote_candidates.len(), 2);
    assert!(transport.remote_end_of_candidates);
    assert_eq!(transport.remote_fingerprints.len(), 2);
    let data = negotiated.data_channel.unwrap();
    assert_eq!((data.remote_sctp_port, data.remote_max_message_size), (5000, 65_536));
    assert_eq!(negotiated.media[0].remote_ssrcs, [1793551830]);
}

#[test]
fn answers_a_firefox_offer() {
    let mut bob = peer(4, "bobb");
    bob.set_remote_description(SdpType::Offer, &fixture("firefox_offer.sdp"))
        .unwrap();
    let text = bob.create_answer().unwrap();
    let answer = parse(&text);
    assert_eq!(mids(&answer), ["0", "1", "2"]);
    assert_eq!(pts(&answer.media_view(0).unwrap()), [109]);
    let audio_uris = uris(&answer.media_view(0).unwrap());
    assert!(!audio_uris.iter().any(|u| u.contains("csrc-audio-level")));
    let video = answer.media_view(1).unwrap();
    // H.264 without packetization-mode (97) is not ours; VP9 without
    // profile-id is profile 0 (RFC 9628 §6).
    assert_eq!(pts(&video), [120, 124, 121, 125, 126, 127]);
    let playout = video
        .extmaps()
        .into_iter()
        .find(|e| e.uri == ext::URI_PLAYOUT_DELAY)
        .unwrap();
    assert_eq!((playout.id, playout.direction), (6, Some(Direction::SendOnly)));
    assert!(text.contains("a=simulcast:recv a;b;c\r\n"));

    let negotiated = bob.set_local_description(SdpType::Answer, &text).unwrap().unwrap();
    let transport = negotiated.transport.as_ref().unwrap();
    // The fingerprint is at session level, the credentials in each section.
    assert_eq!(transport.remote_fingerprints[0].bytes[0], 0xAF);
    assert_eq!(transport.remote_ice.ufrag, "28706258");
    assert_eq!(negotiated.media("1").unwrap().remote_ssrc_groups.len(), 3);
    assert_eq!(negotiated.data_channel.unwrap().remote_max_message_size, 1_073_741_823);
}

#[test]
fn answers_a_pion_offer() {
    let mut bob = peer(5, "bobb");
    bob.set_remote_description(SdpType::Offer, &fixture("pion_offer.sdp"))
        .unwrap();
    let text = bob.create_answer().unwrap();
    let answer = parse(&text);
    // Pion's H.264 is Baseline (42001f), ours constrained Baseline: not the same profile.
    assert_eq!(pts(&answer.media_view(0).unwrap()), [96, 97]);
    let negotiated = bob.set_local_description(SdpType::Answer, &text).unwrap().unwrap();
    assert_eq!(negotiated.media[0].remote_msid.as_ref().unwrap().stream_id, "pion");
    assert_eq!(negotiated.transport.unwrap().remote_candidates.len(), 1);
}

#[test]
fn a_chromium_answer_to_our_offer() {
    let mut alice = peer(6, "alic");
    let audio = alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    alice.set_track(audio, Some(track(1, None, "mic"))).unwrap();
    alice.add_transceiver(MediaKind::Video, Direction::SendRecv).unwrap();
    let offer = alice.create_offer().unwrap();
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(alice.signaling_state(), SignalingState::HaveLocalOffer);

    let negotiated = alice
        .set_remote_description(SdpType::Answer, &fixture("chromium_answer.sdp"))
        .unwrap()
        .unwrap();
    let transport = negotiated.transport.as_ref().unwrap();
    assert_eq!(transport.dtls_role, DtlsRole::Server, "Chromium is setup:active");
    assert!(transport.ice_controlling);
    assert_eq!(transport.remote_candidates.len(), 2);
    let audio = negotiated.media("0").unwrap();
    assert_eq!(audio.direction, Direction::SendOnly);
    // PCMU is in the answer but was never offered.
    assert_eq!(audio.send_codecs.len(), 1);
    let video = negotiated.media("1").unwrap();
    assert_eq!(video.direction, Direction::SendRecv);
    assert_eq!(video.send_codecs[0].rtx_payload_type, Some(97));
    assert_eq!(video.remote_ssrcs, [1201918312, 3893049211]);
    assert_eq!(video.extension_id(ext::URI_TRANSPORT_WIDE_CC), Some(3));
}

#[test]
fn two_natters_agree() {
    let mut alice = full_peer(1, "alic");
    let mut bob = peer(2, "bobb");
    // A track added before the offer arrives takes the offered audio section.
    let bob_audio = bob.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    bob.set_track(bob_audio, Some(track(9999, None, "bob-mic"))).unwrap();
    let (a, b) = exchange(&mut alice, &mut bob);

    assert!(a.we_offered && !b.we_offered);
    let (at, bt) = (a.transport.as_ref().unwrap(), b.transport.as_ref().unwrap());
    assert_eq!((at.dtls_role, bt.dtls_role), (DtlsRole::Server, DtlsRole::Client));
    assert!(at.ice_controlling && !bt.ice_controlling);
    assert_eq!((&at.local_ice, &at.remote_ice), (&bt.remote_ice, &bt.local_ice));
    assert_eq!(at.remote_fingerprints[0].to_string(), fingerprint(2));
    assert_eq!(bt.remote_fingerprints[0].to_string(), fingerprint(1));
    assert_eq!(at.mids, bt.mids);

    assert_eq!(bob.transceiver(bob_audio).unwrap().mid(), Some("0"));
    assert_eq!(a.media.len(), 2);
    for (ours, theirs) in a.media.iter().zip(&b.media) {
        assert_eq!(ours.mid, theirs.mid);
        assert_eq!(ours.send_codecs, theirs.recv_codecs);
        assert_eq!(ours.recv_codecs, theirs.send_codecs);
        assert_eq!(ours.extensions, theirs.extensions);
        assert!(ours.rtcp_rsize && theirs.rtcp_rsize);
    }
    assert_eq!(
        (a.media[0].direction, b.media[0].direction),
        (Direction::SendRecv, Direction::SendRecv)
    );
    assert_eq!(
        (a.media[1].direction, b.media[1].direction),
        (Direction::SendOnly, Direction::RecvOnly)
    );
    assert_eq!(b.media[1].remote_ssrcs, [2222, 3333]);
    assert_eq!(a.media[0].remote_ssrcs, [9999]);
    let names: Vec<&str> = a.media[1].send_codecs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["VP8", "VP9", "H264", "AV1"]);
    let (ad, bd) = (a.data_channel.unwrap(), b.data_channel.unwrap());
    assert_eq!((ad.remote_sctp_port, bd.remote_max_message_size), (5000, 262_144));
    assert!(!alice.negotiation_needed() && !bob.negotiation_needed());
}

#[test]
fn renegotiation_adds_video_and_data_later() {
    let mut alice = peer(1, "alic");
    let mut bob = peer(2, "bobb");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let (first, _) = exchange(&mut alice, &mut bob);
    assert!(first.data_channel.is_none());
    let version = alice.local_description().unwrap().origin.session_version;

    let video = alice.add_transceiver(MediaKind::Video, Direction::SendOnly).unwrap();
    alice.set_track(video, Some(track(5, Some(6), "cam"))).unwrap();
    alice.add_data_channel().unwrap();
    assert!(alice.negotiation_needed());
    let offer = parse(&alice.create_offer().unwrap());
    assert_eq!(mids(&offer), ["0", "1", "2"]);
    assert_eq!(bundle(&offer), ["0", "1", "2"]);
    assert_eq!(offer.origin.session_version, version + 1);
    let (a, b) = exchange(&mut alice, &mut bob);
    assert_eq!(a.media.len(), 2);
    assert_eq!(b.media("1").unwrap().direction, Direction::RecvOnly);
    assert_eq!(b.data_channel.as_ref().map(|d| d.mid.as_str()), Some("2"));
    assert!(!a.transport.as_ref().unwrap().ice_restart);

    // Now Bob offers: the sections stay, and his new video section
    // numbers its codecs as the session does.
    let bob_video = bob.add_transceiver(MediaKind::Video, Direction::SendRecv).unwrap();
    bob.set_track(bob_video, Some(track(7, Some(8), "bob-cam"))).unwrap();
    let offer = parse(&bob.create_offer().unwrap());
    assert_eq!(mids(&offer), ["0", "1", "2", "3"]);
    assert_eq!(pts(&offer.media_view(3).unwrap()), [96, 97, 98, 99, 102, 103, 45, 46]);
    assert_eq!(offer.media_view(1).unwrap().direction(), Direction::RecvOnly);
    let (b, a) = exchange(&mut bob, &mut alice);
    assert_eq!(b.media("3").unwrap().direction, Direction::SendOnly);
    assert_eq!(a.media("3").unwrap().direction, Direction::RecvOnly);
    assert_eq!(a.media("3").unwrap().remote_ssrcs, [7, 8]);
    assert_eq!(alice.transceivers().len(), 3);
}

#[test]
fn stopping_a_transceiver_rejects_its_section_and_frees_it() {
    let mut alice = peer(1, "alic");
    let mut bob = peer(2, "bobb");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let video = alice.add_transceiver(MediaKind::Video, Direction::SendRecv).unwrap();
    exchange(&mut alice, &mut bob);
    assert_eq!(bob.transceivers().len(), 2);

    alice.stop_transceiver(video).unwrap();
    assert!(alice.negotiation_needed());
    assert!(matches!(
        alice.set_direction(video, Direction::SendRecv),
        Err(JsepError::TransceiverStopped(_))
    ));
    let offer = parse(&alice.create_offer().unwrap());
    let section = offer.media_view(1).unwrap();
    assert_eq!((section.port, section.mid()), (0, Some("1")));
    assert_eq!(bundle(&offer), ["0"]);
    let (a, b) = exchange(&mut alice, &mut bob);
    assert!(a.media("1").unwrap().rejected && b.media("1").unwrap().rejected);
    assert_eq!(b.media("1").unwrap().direction, Direction::Inactive);
    assert!(alice.transceiver(video).is_none());
    assert_eq!((alice.transceivers().len(), bob.transceivers().len()), (1, 1));
    assert_eq!(parse(&bob.local_description().unwrap().to_string()).media[1].port, 0);

    // A new transceiver recycles the rejected section, with a new mid.
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let offer = parse(&alice.create_offer().unwrap());
    assert_eq!(offer.media.len(), 2);
    assert_eq!((offer.media[1].kind.name(), offer.media[1].port), ("audio", 9));
    assert_eq!(mids(&offer), ["0", "2"]);
    let (a, _) = exchange(&mut alice, &mut bob);
    assert_eq!(a.media("2").unwrap().direction, Direction::SendOnly);
    assert_eq!(bob.transceiver_by_mid("2").unwrap().kind(), MediaKind::Audio);
}

#[test]
fn rollback_from_have_local_offer() {
    let mut alice = peer(1, "alic");
    let audio = alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    alice.add_data_channel().unwrap();
    let offer = alice.create_offer().unwrap();
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(alice.transceiver(audio).unwrap().mid(), Some("0"));
    assert_eq!(alice.data_channel_mid(), Some("1"));

    assert_eq!(alice.set_local_description(SdpType::Rollback, "").unwrap(), None);
    assert_eq!(alice.signaling_state(), SignalingState::Stable);
    assert_eq!(alice.transceiver(audio).unwrap().mid(), None);
    assert_eq!(alice.data_channel_mid(), None);
    assert!(alice.local_description().is_none());
    assert!(alice.negotiation_needed());
    // What was asked for comes back in the next offer, with the same mids.
    let again = parse(&alice.create_offer().unwrap());
    assert_eq!(mids(&again), ["0", "1"]);
}

#[test]
fn rollback_from_have_remote_offer() {
    let mut alice = full_peer(1, "alic");
    let mut bob = peer(2, "bobb");
    let bob_audio = bob.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    bob.set_track(bob_audio, Some(track(9, None, "mic"))).unwrap();
    let offer = alice.create_offer().unwrap();
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(bob.transceivers().len(), 2);
    assert_eq!(bob.transceiver(bob_audio).unwrap().mid(), Some("0"));
    // The application adds one meanwhile: a rollback keeps it.
    let later = bob.add_transceiver(MediaKind::Video, Direction::SendOnly).unwrap();

    bob.set_remote_description(SdpType::Rollback, "").unwrap();
    assert_eq!(bob.signaling_state(), SignalingState::Stable);
    let ids: Vec<_> = bob.transceivers().iter().map(|t| t.id()).collect();
    assert_eq!(ids, [bob_audio, later], "the transceiver the offer made is gone");
    assert!(bob.transceivers().iter().all(|t| t.mid().is_none()));
    assert!(bob.remote_description().is_none());
    assert_eq!(bob.data_channel_mid(), None);

    // The same offer applies again from scratch.
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    let answer = bob.create_answer().unwrap();
    bob.set_local_description(SdpType::Answer, &answer).unwrap();
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    alice.set_remote_description(SdpType::Answer, &answer).unwrap();
    assert_eq!(alice.signaling_state(), SignalingState::Stable);
}

#[test]
fn calls_in_the_wrong_state_are_invalid_state_errors() {
    let mut alice = peer(1, "alic");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let invalid = |result: Result<Option<Negotiated>, JsepError>| matches!(result, Err(JsepError::InvalidState { .. }));
    assert!(matches!(
        alice.create_answer(),
        Err(JsepError::InvalidState {
            operation: Operation::CreateAnswer,
            state: SignalingState::Stable
        })
    ));
    let offer = alice.create_offer().unwrap();
    assert!(invalid(alice.set_local_description(SdpType::Answer, &offer)));
    assert!(invalid(alice.set_remote_description(SdpType::Answer, &offer)));
    assert!(invalid(alice.set_local_description(SdpType::Rollback, "")));
    assert!(invalid(alice.set_remote_description(SdpType::Pranswer, &offer)));
    assert_eq!(alice.signaling_state(), SignalingState::Stable);

    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    assert!(invalid(alice.set_local_description(SdpType::Pranswer, &offer)));
    assert!(alice.create_answer().is_err());
    assert_eq!(alice.signaling_state(), SignalingState::HaveLocalOffer);

    let error = alice.set_local_description(SdpType::Answer, &offer).unwrap_err();
    assert_eq!(
        error.to_string(),
        "setLocalDescription(answer) is not allowed in signaling state have-local-offer (W3C webrtc-pc InvalidStateError)"
    );

    alice.close();
    assert_eq!(alice.signaling_state(), SignalingState::Closed);
    assert!(alice.create_offer().is_err());
    assert!(invalid(alice.set_local_description(SdpType::Rollback, "")));
    assert!(alice.add_transceiver(MediaKind::Video, Direction::SendRecv).is_err());
    assert!(alice.add_data_channel().is_err());
}

#[test]
fn remote_descriptions_that_break_the_rules_are_refused() {
    let offer = fixture("chromium_offer.sdp");
    let without = |prefix: &str| {
        offer
            .lines()
            .filter(|l| !l.starts_with(prefix))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
    };
    let mut bob = peer(2, "bobb");
    let error = bob
        .set_remote_description(SdpType::Offer, &without("a=fingerprint"))
        .unwrap_err();
    assert_eq!(error, JsepError::MissingFingerprint { mid: "0".into() });
    assert!(error.to_string().contains("no a=fingerprint"), "{error}");
    let error = bob
        .set_remote_description(SdpType::Offer, &without("a=ice-ufrag"))
        .unwrap_err();
    assert_eq!(error, JsepError::MissingIceCredentials { mid: "0".into() });
    assert!(matches!(
        bob.set_remote_description(SdpType::Offer, &offer.replace("BUNDLE 0 1 2", "BUNDLE 0 1 2 7")),
        Err(JsepError::UnknownBundleMid { mid }) if mid == "7"
    ));
    assert!(matches!(
        bob.set_remote_description(SdpType::Offer, &without("a=group")),
        Err(JsepError::NotBundled { .. })
    ));
    assert!(matches!(
        bob.set_remote_description(SdpType::Offer, &without("a=mid:1")),
        Err(JsepError::MissingMid { index: 1 })
    ));
    assert!(matches!(
        bob.set_remote_description(SdpType::Offer, &offer.replace("a=mid:1", "a=mid:0")),
        Err(JsepError::DuplicateMid { .. })
    ));
    assert!(matches!(
        bob.set_remote_description(SdpType::Offer, &without("a=rtcp-mux")),
        Err(JsepError::RtcpMuxRequired { .. })
    ));
    assert!(matches!(
        bob.set_remote_description(SdpType::Offer, "v=0\r\nnonsense"),
        Err(JsepError::Sdp(_))
    ));
    assert_eq!(bob.signaling_state(), SignalingState::Stable);
    assert!(bob.transceivers().is_empty());

    // An answer must pick a DTLS role and keep the offer's sections.
    let mut alice = peer(1, "alic");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let offer = alice.create_offer().unwrap();
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    let answer = bob.create_answer().unwrap();
    assert!(matches!(
        alice.set_remote_description(SdpType::Answer, &answer.replace("setup:active", "setup:actpass")),
        Err(JsepError::InvalidSetup { setup: "actpass", .. })
    ));
    assert!(matches!(
        alice.set_remote_description(
            SdpType::Answer,
            &answer.replace("a=mid:0", "a=mid:5").replace("BUNDLE 0", "BUNDLE 5")
        ),
        Err(JsepError::AnswerMismatch { .. })
    ));
    assert_eq!(alice.signaling_state(), SignalingState::HaveLocalOffer);
    alice.set_remote_description(SdpType::Answer, &answer).unwrap();
}

#[test]
fn glare_the_polite_peer_rolls_back_and_answers() {
    let mut polite = peer(1, "poli");
    let mut impolite = peer(2, "impo");
    let polite_audio = polite.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    polite.set_track(polite_audio, Some(track(10, None, "p"))).unwrap();
    impolite.add_transceiver(MediaKind::Video, Direction::SendRecv).unwrap();

    // Both offer at once.
    let polite_offer = polite.create_offer().unwrap();
    polite.set_local_description(SdpType::Offer, &polite_offer).unwrap();
    let impolite_offer = impolite.create_offer().unwrap();
    impolite.set_local_description(SdpType::Offer, &impolite_offer).unwrap();

    // The impolite peer ignores the colliding offer; the polite one
    // rolls back and answers (W3C perfect negotiation).
    polite.set_local_description(SdpType::Rollback, "").unwrap();
    polite.set_remote_description(SdpType::Offer, &impolite_offer).unwrap();
    let answer = polite.create_answer().unwrap();
    polite.set_local_description(SdpType::Answer, &answer).unwrap();
    let negotiated = impolite
        .set_remote_description(SdpType::Answer, &answer)
        .unwrap()
        .unwrap();
    assert_eq!(negotiated.media.len(), 1);
    assert_eq!(polite.transceiver(polite_audio).unwrap().mid(), None, "audio != video");

    // The polite peer's audio is still to be negotiated; it offers now.
    assert!(polite.negotiation_needed());
    let (p, i) = exchange(&mut polite, &mut impolite);
    assert_eq!(p.media.len(), 2);
    assert_eq!(i.media("1").unwrap().direction, Direction::RecvOnly);
    assert_eq!(polite.transceiver(polite_audio).unwrap().mid(), Some("1"));
}

#[test]
fn glare_with_implicit_rollback() {
    let mut polite = peer(1, "poli");
    let mut impolite = peer(2, "impo");
    let audio = polite.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    polite.set_track(audio, Some(track(10, None, "p"))).unwrap();
    let mine = impolite.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    impolite.set_track(mine, Some(track(20, None, "i"))).unwrap();
    let polite_offer = polite.create_offer().unwrap();
    polite.set_local_description(SdpType::Offer, &polite_offer).unwrap();
    let impolite_offer = impolite.create_offer().unwrap();
    impolite.set_local_description(SdpType::Offer, &impolite_offer).unwrap();

    // setRemoteDescription(offer) in have-local-offer rolls back first.
    polite.set_remote_description(SdpType::Offer, &impolite_offer).unwrap();
    assert_eq!(polite.signaling_state(), SignalingState::HaveRemoteOffer);
    // The polite peer's track takes the offered audio section.
    assert_eq!(polite.transceiver(audio).unwrap().mid(), Some("0"));
    let answer = polite.create_answer().unwrap();
    let p = polite.set_local_description(SdpType::Answer, &answer).unwrap().unwrap();
    let i = impolite
        .set_remote_description(SdpType::Answer, &answer)
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.media[0].direction, i.media[0].direction),
        (Direction::SendRecv, Direction::SendRecv)
    );
    assert!(!polite.negotiation_needed());
}

#[test]
fn provisional_answers_negotiate_before_the_final_one() {
    let mut alice = peer(1, "alic");
    let mut bob = peer(2, "bobb");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let offer = alice.create_offer().unwrap();
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    let pranswer = bob.create_answer().unwrap();
    assert!(bob
        .set_local_description(SdpType::Pranswer, &pranswer)
        .unwrap()
        .is_some());
    assert_eq!(bob.signaling_state(), SignalingState::HaveLocalPranswer);
    assert!(alice
        .set_remote_description(SdpType::Pranswer, &pranswer)
        .unwrap()
        .is_some());
    assert_eq!(alice.signaling_state(), SignalingState::HaveRemotePranswer);
    assert!(alice.current_remote_description().is_none());

    let answer = bob.create_answer().unwrap();
    bob.set_local_description(SdpType::Answer, &answer).unwrap();
    alice.set_remote_description(SdpType::Answer, &answer).unwrap();
    assert_eq!(alice.signaling_state(), SignalingState::Stable);
    assert!(alice.current_remote_description().is_some());
}

#[test]
fn ice_restart_changes_credentials_on_both_sides() {
    let mut alice = peer(1, "alic");
    let mut bob = peer(2, "bobb");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    alice
        .add_local_candidate("candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host")
        .unwrap();
    alice.end_of_local_candidates().unwrap();
    let (first, _) = exchange(&mut alice, &mut bob);
    assert!(!first.transport.unwrap().ice_restart);
    let offer = parse(&alice.local_description().unwrap().to_string());
    assert_eq!((offer.media[0].port, offer.media[0].candidates().count()), (50000, 1));

    alice
        .restart_ice(IceCredentials::new("new1", "0123456789012345678901"))
        .unwrap();
    assert!(alice.negotiation_needed());
    let offer = alice.create_offer().unwrap();
    assert!(offer.contains("a=ice-ufrag:new1\r\n"));
    assert!(
        !offer.contains("a=candidate"),
        "old candidates belong to the old credentials"
    );
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    assert!(bob.needs_ice_credentials());
    assert_eq!(bob.create_answer(), Err(JsepError::IceCredentialsNeeded));
    bob.restart_ice(IceCredentials::new("new2", "0123456789012345678902"))
        .unwrap();
    let answer = bob.create_answer().unwrap();
    let b = bob.set_local_description(SdpType::Answer, &answer).unwrap().unwrap();
    let a = alice.set_remote_description(SdpType::Answer, &answer).unwrap().unwrap();
    let (at, bt) = (a.transport.unwrap(), b.transport.unwrap());
    assert!(at.ice_restart && bt.ice_restart);
    assert_eq!(
        (at.local_ice.ufrag.as_str(), at.remote_ice.ufrag.as_str()),
        ("new1", "new2")
    );
    assert!(!alice.negotiation_needed());
}

#[test]
fn the_role_of_an_answerer_can_be_passive_and_stays() {
    let mut alice = peer(1, "alic");
    let mut config = JsepConfig::new(
        2,
        IceCredentials::new("bobb", "0123456789012345678901"),
        fingerprint(2),
        "b",
    );
    config.answer_dtls_role = DtlsRole::Server;
    let mut bob = Jsep::new(config).unwrap();
    alice.add_data_channel().unwrap();
    let (a, b) = exchange(&mut alice, &mut bob);
    assert_eq!(b.transport.unwrap().dtls_role, DtlsRole::Server);
    assert_eq!(a.transport.unwrap().dtls_role, DtlsRole::Client);
    // Alice offers again (actpass); Bob keeps his role.
    alice.add_transceiver(MediaKind::Audio, Direction::RecvOnly).unwrap();
    let (_, b) = exchange(&mut alice, &mut bob);
    assert_eq!(b.transport.unwrap().dtls_role, DtlsRole::Server);
}

#[test]
fn configuration_and_input_are_checked() {
    let bad = |fingerprint: &str, ufrag: &str| {
        let config = JsepConfig::new(
            1,
            IceCredentials::new(ufrag, "0123456789012345678901"),
            fingerprint,
            "c",
        );
        Jsep::new(config).is_err()
    };
    assert!(bad("sha-256 nothex", "abcd"));
    assert!(bad(&fingerprint(1), "ab"));
    assert!(bad(&fingerprint(1), "ab:cd"));
    let mut jsep = peer(1, "alic");
    let audio = jsep.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let mut bad_track = track(1, None, "a b");
    assert!(jsep.set_track(audio, Some(bad_track.clone())).is_err());
    bad_track.track_id = "ok".into();
    jsep.set_track(audio, Some(bad_track)).unwrap();
    assert!(matches!(
        jsep.set_codec_preferences(audio, vec![natter_sdp::Codec::new(0, "PCMU", 8000)]),
        Err(JsepError::UnsupportedCodec { .. })
    ));
    assert!(jsep.add_local_candidate("").is_err());
    let group: Vec<String> = Group::bundle(["x"]).mids;
    assert_eq!(group, ["x"]);
}

#[test]
fn a_new_remote_offer_replaces_the_pending_one() {
    let mut alice = peer(1, "alic");
    let mut bob = peer(2, "bobb");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    alice.add_transceiver(MediaKind::Video, Direction::SendRecv).unwrap();
    let first = alice.create_offer().unwrap();
    bob.set_remote_description(SdpType::Offer, &first).unwrap();
    assert_eq!(bob.transceivers().len(), 2);

    // Alice rolls back and offers audio alone; Bob takes the new offer.
    let mut alice = peer(1, "alic");
    alice.add_transceiver(MediaKind::Audio, Direction::SendRecv).unwrap();
    let second = alice.create_offer().unwrap();
    alice.set_local_description(SdpType::Offer, &second).unwrap();
    assert!(bob.set_remote_description(SdpType::Offer, "v=0\r\nbroken").is_err());
    assert_eq!(bob.transceivers().len(), 2, "a refused offer keeps the pending one");
    bob.set_remote_description(SdpType::Offer, &second).unwrap();
    assert_eq!(bob.transceivers().len(), 1);
    let answer = bob.create_answer().unwrap();
    assert_eq!(mids(&parse(&answer)), ["0"]);
    bob.set_local_description(SdpType::Answer, &answer).unwrap();
    alice.set_remote_description(SdpType::Answer, &answer).unwrap();
}

#[test]
fn sections_without_common_codecs_or_of_unknown_kinds_are_rejected() {
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
         a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:{}\r\na=setup:actpass\r\na=sendrecv\r\n\
         a=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\n\
         a=rtpmap:96 VP8/90000\r\n\
         m=text 9 RTP/AVP 98\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=rtpmap:98 t140/1000\r\n",
        fingerprint(9)
    );
    let mut bob = peer(2, "bobb");
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    let text = bob.create_answer().unwrap();
    let answer = parse(&text);
    let ports: Vec<u16> = answer.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 9, 0]);
    assert_eq!(answer.media[2].kind.name(), "text");
    assert_eq!(bundle(&answer), ["1"]);
    assert_eq!(answer.media_view(1).unwrap().direction(), Direction::RecvOnly);

    let negotiated = bob.set_local_description(SdpType::Answer, &text).unwrap().unwrap();
    assert!(negotiated.media("0").unwrap().rejected);
    assert_eq!(negotiated.media("1").unwrap().direction, Direction::RecvOnly);
    // The offer's transport lives in its first section, which we rejected.
    let transport = negotiated.transport.unwrap();
    assert_eq!(
        (transport.mids.clone(), transport.remote_ice.ufrag.as_str()),
        (vec!["1".to_string()], "abcd")
    );
    let kinds: Vec<MediaKind> = bob.transceivers().iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, [MediaKind::Video]);
}

/// A peer whose video transceiver sends `rids` as simulcast.
fn simulcast_peer(session_id: u64, ufrag: &str, direction: Direction, rids: &[&str]) -> Jsep {
    let mut jsep = peer(session_id, ufrag);
    let video = jsep.add_transceiver(MediaKind::Video, direction).unwrap();
    jsep.set_track(video, Some(track(2222, Some(3333), "cam"))).unwrap();
    jsep.set_send_rids(video, rids.iter().map(|r| r.to_string()).collect())
        .unwrap();
    jsep
}

#[test]
fn simulcast_is_offered_sent_and_received_by_rid() {
    let mut alice = simulcast_peer(20, "alic", Direction::SendOnly, &["q", "h", "f"]);
    let offer = alice.create_offer().unwrap();
    // RFC 8851 §4, RFC 8853 §5.1, in Chromium's order; RIDs tell the
    // streams apart, so no SSRC is signaled, but the track's msid is.
    assert!(
        offer.contains("a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n"),
        "{offer}"
    );
    assert!(!offer.contains("a=ssrc"), "{offer}");
    assert!(offer.contains("a=msid:stream cam\r\n"), "{offer}");
    let video = parse(&offer);
    let uris = uris(&video.media_view(0).unwrap());
    assert!(
        uris.iter().any(|u| u == ext::URI_RTP_STREAM_ID) && uris.iter().any(|u| u == ext::URI_REPAIRED_RTP_STREAM_ID)
    );

    let mut bob = peer(21, "bobb");
    let (sent, received) = exchange(&mut alice, &mut bob);
    let answer = bob.current_local_description().unwrap().to_string();
    assert!(answer.contains("a=simulcast:recv q;h;f\r\n"), "{answer}");
    assert_eq!(sent.media[0].send_rids, ["q", "h", "f"]);
    assert!(sent.media[0].recv_rids.is_empty());
    assert_eq!(received.media[0].recv_rids, ["q", "h", "f"]);
    assert!(received.media[0].send_rids.is_empty());
    assert_eq!(received.media[0].direction, Direction::RecvOnly);
}

#[test]
fn an_answer_without_simulcast_leaves_one_stream() {
    let mut alice = simulcast_peer(22, "alic", Direction::SendOnly, &["q", "h", "f"]);
    let offer = alice.create_offer().unwrap();
    alice.set_local_description(SdpType::Offer, &offer).unwrap();
    let mut bob = peer(23, "bobb");
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    // A peer that does not do simulcast (RFC 8853 §5.3) answers without it.
    let answer: String = bob
        .create_answer()
        .unwrap()
        .split_inclusive("\r\n")
        .filter(|line| !line.starts_with("a=rid:") && !line.starts_with("a=simulcast:"))
        .collect();
    let negotiated = alice.set_remote_description(SdpType::Answer, &answer).unwrap().unwrap();
    assert!(negotiated.media[0].send_rids.is_empty());
    assert_eq!(negotiated.media[0].direction, Direction::SendOnly);
}

#[test]
fn a_simulcast_receive_offer_is_answered_with_the_rids_we_send() {
    // The offerer receives q, h (paused) and f or x (RFC 8853 §5.1); we send q, h, f.
    let mut alice = peer(24, "alic");
    alice.add_transceiver(MediaKind::Video, Direction::RecvOnly).unwrap();
    let offer = alice.create_offer().unwrap().replace(
        "a=rtcp-mux\r\n",
        "a=rtcp-mux\r\na=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=rid:x recv\r\na=simulcast:recv q;~h;f,x\r\n",
    );
    let mut bob = simulcast_peer(25, "bobb", Direction::SendOnly, &["q", "h", "f"]);
    bob.set_remote_description(SdpType::Offer, &offer).unwrap();
    let answer = bob.create_answer().unwrap();
    assert!(
        answer.contains("a=rid:q send\r\na=rid:f send\r\na=simulcast:send q;f\r\n"),
        "{answer}"
    );
    assert!(!answer.contains("a=ssrc"), "{answer}");
    let negotiated = bob.set_local_description(SdpType::Answer, &answer).unwrap().unwrap();
    assert_eq!(negotiated.media[0].send_rids, ["q", "f"]);
    assert_eq!(negotiated.media[0].direction, Direction::SendOnly);

    // Without RIDs of its own, a transceiver answers with one stream.
    let mut carol = peer(26, "caro");
    let video = carol.add_transceiver(MediaKind::Video, Direction::SendOnly).unwrap();
    carol.set_track(video, Some(track(4444, Some(5555), "cam"))).unwrap();
    carol.set_remote_description(SdpType::Offer, &offer).unwrap();
    let answer = carol.create_answer().unwrap();
    assert!(
        !answer.contains("a=simulcast") && !answer.contains("a=rid:"),
        "{answer}"
    );
    assert!(answer.contains("a=ssrc:4444 cname:natter\r\n"), "{answer}");
    let negotiated = carol.set_local_description(SdpType::Answer, &answer).unwrap().unwrap();
    assert!(negotiated.media[0].send_rids.is_empty());
}

#[test]
fn send_rids_are_checked() {
    let mut alice = peer(27, "alic");
    let video = alice.add_transceiver(MediaKind::Video, Direction::SendOnly).unwrap();
    let rids = |list: &[&str]| list.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    for bad in [&["q", "h q"][..], &["q", "q"], &[""], &["f;h"]] {
        let error = alice.set_send_rids(video, rids(bad)).unwrap_err();
        assert!(
            matches!(
                error,
                JsepError::InvalidInput {
                    what: "simulcast rids",
                    ..
                }
            ),
            "{bad:?}: {error}"
        );
    }
    alice.set_send_rids(video, rids(&["lo-1", "hi_2"])).unwrap();
    assert_eq!(alice.transceiver(video).unwrap().send_rids(), ["lo-1", "hi_2"]);
    let mut bob = peer(28, "bobb");
    exchange(&mut alice, &mut bob);
    // W3C: the encodings are set before the transceiver has a section.
    assert!(alice.set_send_rids(video, rids(&["q"])).is_err());
}
