//! Leniency where browsers are lenient, lines and attributes this crate
//! does not know, and building descriptions in code with the typed
//! setters.

use natter_sdp::*;

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// Checks that `sdp` writes text that parses back to it.
fn round_trips(sdp: &SessionDescription) -> String {
    let text = sdp.to_string();
    assert_eq!(parse(&text), *sdp, "{text}");
    text
}

// ---- Leniency ----------------------------------------------------------------

#[test]
fn mixed_line_ends_blank_lines_and_extra_spaces() {
    let text =
        "v=0\no=-  7 8 IN IP4 0.0.0.0\r\n\r\ns=-\nt=0   0 \r\nm=audio  9   RTP/AVP  0 8\r\n\na=rtpmap:0   PCMU/8000\n";
    let sdp = parse(text);
    assert_eq!((sdp.origin.session_id, sdp.origin.session_version), (7, 8));
    assert_eq!(sdp.media[0].formats, ["0", "8"]);
    assert_eq!(sdp.media[0].codecs()[0].encoding_name, "PCMU");
    // Written canonically, and a fixed point from there on.
    let written = round_trips(&sdp);
    assert_eq!(
        written,
        "v=0\r\no=- 7 8 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8\r\na=rtpmap:0   PCMU/8000\r\n"
    );
}

#[test]
fn session_lines_in_any_order_are_written_in_rfc_order() {
    let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nr=7d 1h 0 25h\r\nc=IN IP4 192.0.2.1\r\nb=AS:512\r\ni=info\r\nk=prompt\r\nz=2882844526 -1h\r\ne=a@example.com\r\nu=http://example.com/\r\np=+1 555\r\na=recvonly\r\n";
    let sdp = parse(text);
    assert_eq!(sdp.timings[0].repeats, ["7d 1h 0 25h"]);
    assert_eq!(
        sdp.bandwidths,
        [Bandwidth::new(BandwidthType::ApplicationSpecific, 512)]
    );
    assert_eq!(
        round_trips(&sdp),
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\ni=info\r\nu=http://example.com/\r\ne=a@example.com\r\np=+1 555\r\nc=IN IP4 192.0.2.1\r\nb=AS:512\r\nt=0 0\r\nr=7d 1h 0 25h\r\nz=2882844526 -1h\r\nk=prompt\r\na=recvonly\r\n"
    );
    // A session-level direction applies to sections without their own.
    let mut sdp = sdp;
    sdp.media.push(MediaSection::new(MediaKind::Audio, Protocol::RtpAvp));
    assert_eq!(sdp.media_view(0).unwrap().direction(), Direction::RecvOnly);
    assert_eq!(sdp.media_view(0).unwrap().connection().unwrap().address, "0.0.0.0");
    sdp.media[0].connections.clear();
    assert_eq!(sdp.media_view(0).unwrap().connection().unwrap().address, "192.0.2.1");
}

#[test]
fn unknown_lines_and_attributes_are_kept_in_order() {
    let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nx=session one\r\nt=0 0\r\na=x-first\r\ny=session two\r\na=x-second:2\r\nm=video 9 RTP/AVPF 96\r\nq=media\r\na=x-google-flag:conference\r\na=rtpmap:96 VP8/90000\r\na=x-empty:\r\nX=upper\r\n";
    let sdp = parse(text);
    let letters: Vec<(char, &str)> = sdp.unknown_lines.iter().map(|l| (l.letter, l.value.as_str())).collect();
    assert_eq!(letters, [('x', "session one"), ('y', "session two")]);
    let names: Vec<&str> = sdp.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["x-first", "x-second"]);
    let media = &sdp.media[0];
    assert_eq!(media.unknown_lines.len(), 2);
    let attributes: Vec<String> = media.attributes.iter().map(ToString::to_string).collect();
    assert_eq!(
        attributes,
        ["x-google-flag:conference", "rtpmap:96 VP8/90000", "x-empty:"]
    );
    assert_eq!(media.attributes.get("x-empty"), Some(&Attribute::new("x-empty", "")));
    assert_eq!(sdp.attributes.get("x-first"), Some(&Attribute::property("x-first")));
    // Unknown lines are written after the section's attributes.
    assert_eq!(
        round_trips(&sdp),
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=x-first\r\na=x-second:2\r\nx=session one\r\ny=session two\r\nm=video 9 RTP/AVPF 96\r\na=x-google-flag:conference\r\na=rtpmap:96 VP8/90000\r\na=x-empty:\r\nq=media\r\nX=upper\r\n"
    );
}

#[test]
fn static_payload_types_without_rtpmap() {
    let sdp = parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8 10 96 97\r\na=rtpmap:97 opus/48000/2\r\n");
    let codecs = sdp.media[0].codecs();
    let summary: Vec<(u8, &str, u32, Option<u16>)> = codecs
        .iter()
        .map(|c| (c.payload_type, c.encoding_name.as_str(), c.clock_rate, c.channels))
        .collect();
    // 96 has no a=rtpmap and no static meaning, so it names no codec.
    assert_eq!(
        summary,
        [
            (0, "PCMU", 8000, None),
            (8, "PCMA", 8000, None),
            (10, "L16", 44100, Some(2)),
            (97, "opus", 48000, Some(2))
        ]
    );
}

#[test]
fn wildcard_feedback_applies_to_every_codec() {
    let sdp = parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 RTP/AVPF 96 98\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=rtcp-fb:* nack\r\na=rtcp-fb:98 nack pli\r\n");
    let codecs = sdp.media[0].codecs();
    assert_eq!(codecs[0].feedback, [Feedback::new("nack", None)]);
    assert_eq!(
        codecs[1].feedback,
        [Feedback::new("nack", None), Feedback::new("nack", Some("pli"))]
    );
    let wildcard: Vec<RtcpFeedback> = sdp.media[0].attributes.typed().collect();
    assert_eq!(wildcard[0].payload_type, None);
    assert_eq!(wildcard[0].to_string(), "* nack");
}

#[test]
fn other_kinds_and_protocols() {
    let sdp = parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=image 9/2 udptl t38\r\nb=TIAS:64000\r\nb=X-YZ:1\r\nm=text 0 RTP/AVP 98\r\n");
    let image = &sdp.media[0];
    assert_eq!(image.kind, MediaKind::Other("image".into()));
    assert_eq!((image.port, image.port_count), (9, Some(2)));
    assert_eq!(image.protocol, Protocol::Other("udptl".into()));
    assert!(!image.protocol.is_rtp() && !image.protocol.is_sctp());
    assert_eq!(image.bandwidth(&BandwidthType::Tias), Some(64000));
    assert_eq!(image.bandwidth(&BandwidthType::Other("X-YZ".into())), Some(1));
    assert_eq!(image.bandwidth(&BandwidthType::ApplicationSpecific), None);
    assert_eq!(sdp.media[1].kind, MediaKind::Text);
    round_trips(&sdp);
}

#[test]
fn attribute_values_keep_their_spacing() {
    // Chromium writes `a=msid-semantic: WMS`; the raw value keeps the space.
    let sdp = parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=msid-semantic: WMS\r\na=ice-lite\r\n");
    assert_eq!(
        sdp.attributes.get("msid-semantic").unwrap().value.as_deref(),
        Some(" WMS")
    );
    assert_eq!(sdp.attributes.value("msid-semantic"), Some("WMS"));
    assert!(sdp.ice_lite());
    assert!(sdp.to_string().contains("a=msid-semantic: WMS\r\n"));
}

// ---- Building descriptions in code ------------------------------------------------

fn sha256(seed: u8) -> Fingerprint {
    Fingerprint::new(HashFunction::Sha256, (0..32).map(|i| seed.wrapping_mul(i)).collect())
}

/// An answer as the PeerConnection layer would write it.
#[test]
fn build_an_answer() {
    let mut answer = SessionDescription::new(Origin::new(0x1234_5678_9abc, 1));
    answer.attributes.push_typed(&Group::bundle(["0", "1"])).unwrap();
    answer.attributes.set_flag(Flag::ExtmapAllowMixed, true);
    answer
        .attributes
        .push_typed(&MsidSemantic {
            semantic: "WMS".into(),
            stream_ids: vec!["*".into()],
        })
        .unwrap();

    let mut video = MediaSection::new(MediaKind::Video, Protocol::UdpTlsRtpSavpf);
    video
        .attributes
        .set_ice_credentials("aB3d", "0123456789abcdefghijkl+/")
        .unwrap();
    video.attributes.set_ice_options(["trickle"]).unwrap();
    video.attributes.push_typed(&sha256(3)).unwrap();
    video.attributes.set_typed(&Setup::Passive).unwrap();
    video.set_mid("0").unwrap();
    video
        .attributes
        .push_typed(&Extmap::new(4, "urn:ietf:params:rtp-hdrext:sdes:mid"))
        .unwrap();
    video.set_direction(Direction::RecvOnly);
    video.attributes.set_flag(Flag::RtcpMux, true);
    video.attributes.set_flag(Flag::RtcpRsize, true);
    let mut vp8 = Codec::new(96, "VP8", 90000);
    vp8.feedback = vec![
        Feedback::new("nack", None),
        Feedback::new("nack", Some("pli")),
        Feedback::new("transport-cc", None),
    ];
    let mut rtx = Codec::new(97, "rtx", 90000);
    rtx.parameters.push(Parameter::new("apt", Some("96")));
    video.push_codec(&vp8).unwrap();
    video.push_codec(&rtx).unwrap();
    video.attributes.push_typed(&Rid::new("h", RidDirection::Recv)).unwrap();
    video
        .attributes
        .push_typed(&Rid {
            payload_types: vec![96],
            ..Rid::new("l", RidDirection::Recv)
        })
        .unwrap();
    let mut simulcast = Simulcast::recv(["h", "l"]);
    simulcast.recv[1][0].paused = true;
    video.attributes.push_typed(&simulcast).unwrap();
    answer.media.push(video);

    let mut data = MediaSection::new(MediaKind::Application, Protocol::UdpDtlsSctp);
    data.formats.push("webrtc-datachannel".into());
    data.set_mid("1").unwrap();
    data.set_sctp_port(5000);
    data.set_max_message_size(262144);
    data.set_max_message_size(65536);
    data.push_candidate("1 1 udp 2130706431 192.0.2.9 50000 typ host")
        .unwrap();
    data.attributes.set_flag(Flag::EndOfCandidates, true);
    data.bandwidths
        .push(Bandwidth::new(BandwidthType::ApplicationSpecific, 30));
    answer.media.push(data);

    let text = round_trips(&answer);
    let expected_video = "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:aB3d\r\na=ice-pwd:0123456789abcdefghijkl+/\r\na=ice-options:trickle\r\n";
    assert!(text.starts_with(&format!("v=0\r\no=- 20015998343868 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic:WMS *\r\n{expected_video}")), "{text}");
    for line in [
        "a=fingerprint:sha-256 00:03:06:09:0C",
        "a=setup:passive\r\na=mid:0\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n",
        "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 transport-cc\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n",
        "a=rid:h recv\r\na=rid:l recv pt=96\r\na=simulcast:recv h;~l\r\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\nb=AS:30\r\na=mid:1\r\na=sctp-port:5000\r\na=max-message-size:65536\r\na=candidate:1 1 udp 2130706431 192.0.2.9 50000 typ host\r\na=end-of-candidates\r\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    let parsed = parse(&text);
    let view = parsed.media_by_mid("0").unwrap();
    assert_eq!(view.codecs(), [vp8, rtx]);
    assert_eq!(view.fingerprints(), [sha256(3)]);
    assert_eq!(view.simulcast(), Some(simulcast));
    assert_eq!(parsed.media_by_mid("1").unwrap().max_message_size(), Some(65536));
}

#[test]
fn setters_replace_in_place() {
    let mut media = MediaSection::new(MediaKind::Audio, Protocol::UdpTlsRtpSavpf);
    media.attributes.push(Attribute::new("setup", "actpass")).unwrap();
    media.attributes.push(Attribute::property("sendrecv")).unwrap();
    media.attributes.push(Attribute::new("mid", "a")).unwrap();
    media.attributes.push(Attribute::new("setup", "active")).unwrap();
    media.attributes.push(Attribute::property("inactive")).unwrap();
    media.attributes.set_typed(&Setup::Passive).unwrap();
    media.set_direction(Direction::SendOnly);
    media.set_mid("b").unwrap();
    let written: Vec<String> = media.attributes.iter().map(ToString::to_string).collect();
    assert_eq!(written, ["setup:passive", "sendonly", "mid:b"]);
    assert_eq!(media.attributes.setup(), Some(Setup::Passive));

    media.attributes.set_flag(Flag::RtcpMux, true);
    media.attributes.set_flag(Flag::RtcpMux, true);
    assert_eq!(media.attributes.len(), 4);
    assert!(media.flag(Flag::RtcpMux));
    media.attributes.set_flag(Flag::RtcpMux, false);
    assert!(!media.flag(Flag::RtcpMux));
    assert_eq!(media.attributes.remove("mid"), 1);
    media.attributes.retain(|a| a.name != "sendonly");
    assert_eq!(media.attributes.len(), 1);
    assert!(!media.attributes.is_empty());
    assert_eq!(media.direction(), None);
}

#[test]
fn invalid_attributes_are_refused() {
    let mut attributes = Attributes::new();
    let refuse =
        |attributes: &mut Attributes, attribute: Attribute| attributes.push(attribute).unwrap_err().to_string();
    assert_eq!(
        refuse(&mut attributes, Attribute::new("a:b", "c")),
        "a=a:b: invalid attribute name: `a:b`"
    );
    assert_eq!(
        refuse(&mut attributes, Attribute::property("")),
        "a=: invalid attribute name: ``"
    );
    assert_eq!(
        refuse(&mut attributes, Attribute::new("x", "1\r\na=mid:0")),
        "a=x: invalid attribute value (line break): `1\r\na=mid:0`"
    );
    assert_eq!(
        refuse(&mut attributes, Attribute::new("mid", "two words")),
        "a=mid: invalid mid: `two words`"
    );
    assert_eq!(
        refuse(&mut attributes, Attribute::property("rtpmap")),
        "a=rtpmap: value is missing"
    );
    assert!(attributes.is_empty());

    let mut media = MediaSection::new(MediaKind::Audio, Protocol::RtpAvp);
    assert!(media.set_mid("").is_err());
    assert!(media.push_candidate("").is_err());
    assert!(media.attributes.set_ice_credentials("ok+/", "not ok").is_err());
    assert!(media.attributes.set_ice_options(["trickle", "bad,option"]).is_err());
}

/// A typed value that would be written as text reading back as another
/// value is refused.
#[test]
fn unfaithful_typed_values_are_refused() {
    let mut attributes = Attributes::new();
    let e = attributes.push_typed(&Group::bundle(["a b"])).unwrap_err();
    assert_eq!(
        e,
        AttributeError {
            name: "group".into(),
            error: ValueError::Unfaithful("BUNDLE a b".into())
        }
    );
    assert_eq!(
        e.to_string(),
        "a=group: `BUNDLE a b` would not read back as the value written"
    );
    assert!(attributes.push_typed(&Simulcast::default()).is_err());
    assert!(attributes.push_typed(&Simulcast::send(["a;b"])).is_err());
    let pt_restriction = Rid {
        restrictions: vec![Parameter::new("pt", Some("96"))],
        ..Rid::new("a", RidDirection::Send)
    };
    assert!(attributes.push_typed(&pt_restriction).is_err());
    assert!(attributes
        .push_typed(&Fingerprint::new(HashFunction::Sha256, vec![]))
        .is_err());
    assert!(attributes
        .push_typed(&Fingerprint::new(HashFunction::Other("SHA-256".into()), vec![1]))
        .is_err());
    assert!(attributes.push_typed(&Extmap::new(0, "urn:x")).is_err());
    assert!(attributes.push_typed(&Ssrc::new(1, "cname", Some("a\nb"))).is_err());
    assert!(attributes.is_empty());

    // push_codec is all or nothing.
    let mut media = MediaSection::new(MediaKind::Video, Protocol::UdpTlsRtpSavpf);
    let mut codec = Codec::new(96, "VP8", 90000);
    codec.feedback.push(Feedback::new("nack pli", None));
    assert!(media.push_codec(&codec).is_err());
    assert!(media.attributes.is_empty() && media.formats.is_empty());
    assert!(media.push_codec(&Codec::new(200, "VP8", 90000)).is_err());
}

#[test]
fn typed_values_display_as_browsers_write_them() {
    let cases: Vec<(String, &str)> = vec![
        (
            Fingerprint::new(HashFunction::Sha1, vec![0xab, 0x01]).to_string(),
            "sha-1 AB:01",
        ),
        (
            RtpMap {
                payload_type: 111,
                encoding_name: "opus".into(),
                clock_rate: 48000,
                channels: Some(2),
            }
            .to_string(),
            "111 opus/48000/2",
        ),
        (
            Rtcp {
                port: 9,
                address: Some(Address::new("::1".parse().unwrap())),
            }
            .to_string(),
            "9 IN IP6 ::1",
        ),
        (
            Extmap {
                direction: Some(Direction::SendOnly),
                attributes: Some("x y".into()),
                ..Extmap::new(3, "urn:a")
            }
            .to_string(),
            "3/sendonly urn:a x y",
        ),
        (
            SsrcGroup::new(SsrcGroupSemantics::FecFr, vec![1, 2]).to_string(),
            "FEC-FR 1 2",
        ),
        (Ssrc::new(5, "msid", Some("s t")).to_string(), "5 msid:s t"),
        (
            Rid {
                payload_types: vec![96, 97],
                restrictions: vec![
                    Parameter::new("max-width", Some("1280")),
                    Parameter::new("depend", None),
                ],
                ..Rid::new("f", RidDirection::Send)
            }
            .to_string(),
            "f send pt=96,97;max-width=1280;depend",
        ),
        (
            Rid {
                restrictions: vec![Parameter::new("max-fps", Some("30"))],
                ..Rid::new("f", RidDirection::Recv)
            }
            .to_string(),
            "f recv max-fps=30",
        ),
        (
            Simulcast {
                send: Simulcast::send(["a"]).send,
                recv: Simulcast::recv(["b", "c"]).recv,
            }
            .to_string(),
            "send a recv b;c",
        ),
        (Msid::new("-", None).to_string(), "-"),
        (
            Fmtp {
                payload_type: 100,
                parameters: vec![],
            }
            .to_string(),
            "100",
        ),
        (Bandwidth::new(BandwidthType::Tias, 1).to_string(), "TIAS:1"),
    ];
    for (written, expected) in cases {
        assert_eq!(written, expected);
    }
    // Alternatives, paused streams and recv-before-send read back.
    let simulcast: Simulcast = "recv 1,~2;3 send ~4".parse().unwrap();
    assert_eq!(simulcast.recv[0].len(), 2);
    assert!(simulcast.recv[0][1].paused && simulcast.send[0][0].paused);
    assert_eq!(simulcast.to_string(), "send ~4 recv 1,~2;3");
    // Fingerprints in lower case and hash names in upper case are accepted.
    let fingerprint: Fingerprint = "SHA-256 ab:cd".parse().unwrap();
    assert_eq!(fingerprint, Fingerprint::new(HashFunction::Sha256, vec![0xab, 0xcd]));
    assert_eq!(HashFunction::from_name("blake3").name(), "blake3");
    // fmtp lists skip empty entries and spaces, and keep base64 padding.
    assert_eq!(
        parse_parameters(" a=1; b ;;sprop-parameter-sets=Z0IAH5Wo,aM4=;"),
        [
            Parameter::new("a", Some("1")),
            Parameter::new("b", None),
            Parameter::new("sprop-parameter-sets", Some("Z0IAH5Wo,aM4="))
        ]
    );
    let fmtp: Fmtp = "102 packetization-mode=1; profile-level-id=42001f".parse().unwrap();
    assert_eq!(fmtp.get("profile-level-id"), Some("42001f"));
    assert_eq!(fmtp.to_string(), "102 packetization-mode=1;profile-level-id=42001f");
}

#[test]
fn address_helpers() {
    let multicast: Address = "IN IP4 224.2.1.1/127/3".parse().unwrap();
    assert_eq!(multicast.ip(), Some("224.2.1.1".parse().unwrap()));
    let name: Address = "IN IP4 host.example".parse().unwrap();
    assert_eq!(name.ip(), None);
    assert_eq!(
        Address::new("2001:db8::1".parse().unwrap()).to_string(),
        "IN IP6 2001:db8::1"
    );
}
