//! Property tests: no input panics the parser; whatever parses writes
//! back as text that parses to the same value; descriptions and typed
//! attribute values built in code read back as built.

use natter_sdp::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

// ---- Strategies for values built in code ---------------------------------------

/// An RFC 8866 §9 token (a subset of its characters, never `/`).
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._~+!#$%&'*^`{|}-]{0,11}"
}

/// Free text for `s=`, `i=` and the like: printable ASCII, spaces anywhere.
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

/// One word of printable ASCII, no space.
fn word() -> impl Strategy<Value = String> {
    "[!-~]{1,16}"
}

/// Words separated by single spaces, as a rest-of-line value.
fn words() -> impl Strategy<Value = String> {
    vec("[!-~]{1,8}", 1..4).prop_map(|w| w.join(" "))
}

fn payload_type() -> impl Strategy<Value = u8> {
    0u8..=127
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive)
    ]
}

fn address() -> impl Strategy<Value = Address> {
    (token(), token(), word()).prop_map(|(network_type, address_type, address)| Address {
        network_type,
        address_type,
        address,
    })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    let kind = prop_oneof![
        Just(BandwidthType::ConferenceTotal),
        Just(BandwidthType::ApplicationSpecific),
        Just(BandwidthType::Tias),
        Just(BandwidthType::RtcpSenders),
        Just(BandwidthType::RtcpReceivers),
        "X-[A-Z]{1,4}".prop_map(BandwidthType::Other),
    ];
    (kind, any::<u64>()).prop_map(|(kind, value)| Bandwidth { kind, value })
}

/// A `name[=value]` parameter; `name` is never `pt`.
fn parameter() -> impl Strategy<Value = Parameter> {
    ("[a-z][a-z0-9-]{0,3}-[a-z0-9]{1,4}", option::of("[!-:<-~]{0,10}"))
        .prop_map(|(name, value)| Parameter { name, value })
}

fn group() -> impl Strategy<Value = Group> {
    (token(), vec(token(), 0..4)).prop_map(|(semantics, mids)| Group { semantics, mids })
}

fn msid_semantic() -> impl Strategy<Value = MsidSemantic> {
    (token(), vec(token(), 0..3)).prop_map(|(semantic, stream_ids)| MsidSemantic { semantic, stream_ids })
}

fn msid() -> impl Strategy<Value = Msid> {
    (token(), option::of(token())).prop_map(|(stream_id, track_id)| Msid { stream_id, track_id })
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    let hash = prop_oneof![
        Just(HashFunction::Sha1),
        Just(HashFunction::Sha224),
        Just(HashFunction::Sha256),
        Just(HashFunction::Sha384),
        Just(HashFunction::Sha512),
        Just(HashFunction::Md5),
        Just(HashFunction::Md2),
        "x-[a-z0-9]{1,6}".prop_map(HashFunction::Other),
    ];
    (hash, vec(any::<u8>(), 1..64)).prop_map(|(hash, bytes)| Fingerprint { hash, bytes })
}

fn setup() -> impl Strategy<Value = Setup> {
    prop_oneof![
        Just(Setup::Active),
        Just(Setup::Passive),
        Just(Setup::ActPass),
        Just(Setup::HoldConn)
    ]
}

fn rtcp() -> impl Strategy<Value = Rtcp> {
    (any::<u16>(), option::of(address())).prop_map(|(port, address)| Rtcp { port, address })
}

fn rtcp_feedback() -> impl Strategy<Value = RtcpFeedback> {
    (option::of(payload_type()), token(), option::of(words())).prop_map(|(payload_type, kind, parameter)| {
        RtcpFeedback {
            payload_type,
            feedback: Feedback { kind, parameter },
        }
    })
}

fn extmap() -> impl Strategy<Value = Extmap> {
    (
        prop_oneof![1u16..=255, 4096u16..=4351],
        option::of(direction()),
        word(),
        option::of(words()),
    )
        .prop_map(|(id, direction, uri, attributes)| Extmap {
            id,
            direction,
            uri,
            attributes,
        })
}

fn rtpmap() -> impl Strategy<Value = RtpMap> {
    (payload_type(), token(), any::<u32>(), option::of(any::<u16>())).prop_map(
        |(payload_type, encoding_name, clock_rate, channels)| RtpMap {
            payload_type,
            encoding_name,
            clock_rate,
            channels,
        },
    )
}

fn fmtp() -> impl Strategy<Value = Fmtp> {
    (payload_type(), vec(parameter(), 0..4)).prop_map(|(payload_type, parameters)| Fmtp {
        payload_type,
        parameters,
    })
}

fn ssrc() -> impl Strategy<Value = Ssrc> {
    (any::<u32>(), token(), option::of("([ -~]{0,11}[!-~])?")).prop_map(|(ssrc, attribute, value)| Ssrc {
        ssrc,
        attribute,
        value,
    })
}

fn ssrc_group() -> impl Strategy<Value = SsrcGroup> {
    let semantics = prop_oneof![
        Just(SsrcGroupSemantics::Fid),
        Just(SsrcGroupSemantics::Sim),
        Just(SsrcGroupSemantics::FecFr),
        "X-[A-Z]{1,3}".prop_map(SsrcGroupSemantics::Other),
    ];
    (semantics, vec(any::<u32>(), 0..4)).prop_map(|(semantics, ssrcs)| SsrcGroup { semantics, ssrcs })
}

fn rid_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,8}"
}

fn rid() -> impl Strategy<Value = Rid> {
    let direction = prop_oneof![Just(RidDirection::Send), Just(RidDirection::Recv)];
    (rid_id(), direction, vec(payload_type(), 0..3), vec(parameter(), 0..3)).prop_map(
        |(id, direction, payload_types, restrictions)| Rid {
            id,
            direction,
            payload_types,
            restrictions,
        },
    )
}

fn simulcast() -> impl Strategy<Value = Simulcast> {
    let streams = || {
        vec(
            vec(
                (rid_id(), any::<bool>()).prop_map(|(rid, paused)| SimulcastRid { rid, paused }),
                1..3,
            ),
            0..3,
        )
    };
    (streams(), streams())
        .prop_filter("one direction at least", |(send, recv)| {
            !(send.is_empty() && recv.is_empty())
        })
        .prop_map(|(send, recv)| Simulcast { send, recv })
}

fn ice_chars(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9+/]{{1,{max}}}")).expect("valid regex")
}

/// Any attribute this crate knows, valid, or an unknown one.
fn attribute() -> impl Strategy<Value = Attribute> {
    fn typed<T: TypedAttribute>(value: T) -> Attribute {
        Attribute::new(T::NAME, value.to_string())
    }
    let flag = prop_oneof![
        Just(Flag::IceLite),
        Just(Flag::RtcpMux),
        Just(Flag::RtcpMuxOnly),
        Just(Flag::RtcpRsize),
        Just(Flag::EndOfCandidates),
        Just(Flag::ExtmapAllowMixed),
    ];
    prop_oneof![
        group().prop_map(typed),
        msid_semantic().prop_map(typed),
        msid().prop_map(typed),
        fingerprint().prop_map(typed),
        setup().prop_map(typed),
        rtcp().prop_map(typed),
        rtcp_feedback().prop_map(typed),
        extmap().prop_map(typed),
        rtpmap().prop_map(typed),
        fmtp().prop_map(typed),
        ssrc().prop_map(typed),
        ssrc_group().prop_map(typed),
        rid().prop_map(typed),
        simulcast().prop_map(typed),
        flag.prop_map(|f| Attribute::property(f.name())),
        direction().prop_map(|d| Attribute::property(d.name())),
        token().prop_map(|mid| Attribute::new("mid", mid)),
        ice_chars(8).prop_map(|ufrag| Attribute::new("ice-ufrag", ufrag)),
        ice_chars(32).prop_map(|pwd| Attribute::new("ice-pwd", pwd)),
        vec(token(), 1..3).prop_map(|options| Attribute::new("ice-options", options.join(" "))),
        words().prop_map(|candidate| Attribute::new("candidate", candidate)),
        any::<u16>().prop_map(|port| Attribute::new("sctp-port", port.to_string())),
        any::<u64>().prop_map(|size| Attribute::new("max-message-size", size.to_string())),
        ("x-[a-z0-9-]{1,10}", option::of("[ -~]{0,20}")).prop_map(|(name, value)| Attribute { name, value }),
    ]
}

fn attributes() -> impl Strategy<Value = Attributes> {
    vec(attribute(), 0..10).prop_map(|list| {
        let mut attributes = Attributes::new();
        for attribute in list {
            attributes
                .push(attribute.clone())
                .unwrap_or_else(|e| panic!("{attribute} refused: {e}"));
        }
        attributes
    })
}

fn unknown_line() -> impl Strategy<Value = UnknownLine> {
    (
        prop::sample::select("dfghjlnqwxyADKMVZ".chars().collect::<Vec<_>>()),
        text(),
    )
        .prop_map(|(letter, value)| UnknownLine { letter, value })
}

fn media_section() -> impl Strategy<Value = MediaSection> {
    let kind = prop_oneof![
        Just(MediaKind::Audio),
        Just(MediaKind::Video),
        Just(MediaKind::Text),
        Just(MediaKind::Application),
        Just(MediaKind::Message),
        "x-[a-z]{1,6}".prop_map(MediaKind::Other),
    ];
    let protocol = prop_oneof![
        Just(Protocol::RtpAvp),
        Just(Protocol::RtpSavpf),
        Just(Protocol::UdpTlsRtpSavpf),
        Just(Protocol::TcpDtlsRtpSavpf),
        Just(Protocol::DtlsSctp),
        Just(Protocol::UdpDtlsSctp),
        Just(Protocol::TcpDtlsSctp),
        "X[A-Z]{0,3}(/[A-Z]{1,4}){0,2}".prop_map(Protocol::Other),
    ];
    (
        (
            kind,
            any::<u16>(),
            option::of(any::<u16>()),
            protocol,
            vec(token(), 0..5),
        ),
        (
            option::of(text()),
            vec(address(), 0..2),
            vec(bandwidth(), 0..2),
            option::of(text()),
        ),
        (attributes(), vec(unknown_line(), 0..2)),
    )
        .prop_map(
            |(
                (kind, port, port_count, protocol, formats),
                (information, connections, bandwidths, encryption_key),
                (attributes, unknown_lines),
            )| MediaSection {
                kind,
                port,
                port_count,
                protocol,
                formats,
                information,
                connections,
                bandwidths,
                encryption_key,
                attributes,
                unknown_lines,
            },
        )
}

fn session_description() -> impl Strategy<Value = SessionDescription> {
    let origin =
        (word(), any::<u64>(), any::<u64>(), address()).prop_map(|(username, session_id, session_version, address)| {
            Origin {
                username,
                session_id,
                session_version,
                address,
            }
        });
    let timing = (any::<u64>(), any::<u64>(), vec(text(), 0..2)).prop_map(|(start, stop, repeats)| Timing {
        start,
        stop,
        repeats,
    });
    (
        (
            origin,
            text(),
            option::of(text()),
            option::of(text()),
            vec(text(), 0..2),
            vec(text(), 0..2),
        ),
        (
            option::of(address()),
            vec(bandwidth(), 0..2),
            vec(timing, 1..3),
            option::of(text()),
            option::of(text()),
        ),
        (attributes(), vec(unknown_line(), 0..2), vec(media_section(), 0..4)),
    )
        .prop_map(
            |(
                (origin, session_name, information, uri, emails, phones),
                (connection, bandwidths, timings, time_zones, encryption_key),
                (attributes, unknown_lines, media),
            )| SessionDescription {
                origin,
                session_name,
                information,
                uri,
                emails,
                phones,
                connection,
                bandwidths,
                timings,
                time_zones,
                encryption_key,
                attributes,
                unknown_lines,
                media,
            },
        )
}

// ---- Strategies for hostile text ------------------------------------------------

const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";

/// Lines that look like SDP: a known type letter or attribute name, then
/// anything, so the generated text reaches the attribute parsers.
fn sdp_like_line() -> impl Strategy<Value = String> {
    let prefixes = vec![
        "v=",
        "o=",
        "s=",
        "i=",
        "u=",
        "e=",
        "p=",
        "c=",
        "b=",
        "t=",
        "r=",
        "z=",
        "k=",
        "m=",
        "m=audio 9 RTP/AVP ",
        "x=",
        "a=",
        "a=group:",
        "a=msid-semantic:",
        "a=msid:",
        "a=fingerprint:",
        "a=fingerprint:sha-256 ",
        "a=setup:",
        "a=rtcp:",
        "a=rtcp-fb:",
        "a=extmap:",
        "a=rtpmap:",
        "a=rtpmap:96 ",
        "a=sctp-init:",
        "a=sctp-init:AQAAFA",
        "a=fmtp:",
        "a=fmtp:96 ",
        "a=ssrc:",
        "a=ssrc-group:",
        "a=rid:",
        "a=rid:a send ",
        "a=simulcast:",
        "a=simulcast:send ",
        "a=mid:",
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=ice-options:",
        "a=candidate:",
        "a=sctp-port:",
        "a=max-message-size:",
        "a=sendrecv",
        "a=rtcp-mux",
    ];
    (prop::sample::select(prefixes), "[ -~\t\r\u{e9}\u{1F600}]{0,30}")
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
}

/// What a parse gives must write text that parses to the same value, and
/// writing is a fixed point from there.
fn check_round_trip(text: &str) {
    if let Ok(sdp) = SessionDescription::parse(text) {
        let written = sdp.to_string();
        let again = SessionDescription::parse(&written).unwrap_or_else(|e| panic!("{written:?} does not parse: {e}"));
        assert_eq!(again, sdp, "{written:?}");
        assert_eq!(again.to_string(), written);
        for view in sdp.media_views() {
            // Every typed getter works on whatever parsed.
            let _ = (
                view.codecs(),
                view.fingerprints(),
                view.extmaps(),
                view.direction(),
                view.simulcast(),
            );
            let _ = (
                view.rids().count(),
                view.ssrcs().count(),
                view.ssrc_groups().count(),
                view.msids().count(),
            );
            let _ = (
                view.sctp_port(),
                view.max_message_size(),
                view.sctp_init(),
                view.rtcp(),
                view.ice_options(),
                view.setup(),
            );
        }
        let _ = (sdp.bundle_groups().count(), sdp.msid_semantics().count());
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_round_trip(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        check_round_trip(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn sdp_like_text_round_trips(lines in vec(sdp_like_line(), 0..24), crlf in any::<bool>()) {
        let separator = if crlf { "\r\n" } else { "\n" };
        check_round_trip(&lines.join(separator));
        check_round_trip(&format!("{HEAD}{}", lines.join(separator)));
        // One line at a time, so most of them parse and get written back.
        for line in &lines {
            check_round_trip(&format!("{HEAD}{line}"));
            check_round_trip(&format!("{HEAD}m=video 9 RTP/AVP 96{separator}{line}"));
        }
    }

    /// draft-hancke-tsvwg-snap-01: any INIT bytes go out as base64 in
    /// `a=sctp-init` and come back the same, through SDP text too.
    #[test]
    fn sctp_init_round_trips(init in vec(any::<u8>(), 1..1536)) {
        let mut section = MediaSection::new(MediaKind::Application, Protocol::UdpDtlsSctp);
        section.formats = vec!["webrtc-datachannel".into()];
        section.set_sctp_init(&init).unwrap();
        prop_assert_eq!(section.sctp_init(), Some(init.clone()));
        let text = format!("{HEAD}{section}");
        let sdp = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
        let got = sdp.media_views().next().and_then(|m| m.sctp_init());
        prop_assert_eq!(got, Some(init));
    }

    /// A value that is not padded base64 is refused where it is read,
    /// naming the attribute; it never reaches the getter.
    #[test]
    fn sctp_init_that_is_not_base64_is_refused(value in "[A-Za-z0-9+/=!. -]{1,40}") {
        use base64::Engine as _;
        let valid = base64::engine::general_purpose::STANDARD.decode(value.trim()).is_ok() && !value.trim().is_empty();
        let text = format!("{HEAD}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-init:{value}\r\n");
        match SessionDescription::parse(&text) {
            Ok(sdp) => {
                prop_assert!(valid, "{value:?} parsed");
                prop_assert!(sdp.media_views().next().and_then(|m| m.sctp_init()).is_some());
            }
            Err(e) => {
                prop_assert!(!valid, "{value:?} refused: {e}");
                prop_assert!(e.to_string().contains("sctp-init"), "{e}");
            }
        }
    }

    #[test]
    fn generated_descriptions_round_trip(sdp in session_description()) {
        let text = sdp.to_string();
        let parsed = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
        prop_assert_eq!(&parsed, &sdp);
        prop_assert_eq!(parsed.to_string(), text);
    }
}

/// For each typed attribute: written text parses back to the value, and
/// the value goes through an attribute list unchanged.
macro_rules! typed_round_trip {
    ($($test:ident: $strategy:expr, $ty:ty;)*) => {
        proptest! {
            $(
                #[test]
                fn $test(value in $strategy) {
                    prop_assert_eq!(value.to_string().parse::<$ty>(), Ok(value.clone()));
                    let mut attributes = Attributes::new();
                    attributes.push_typed(&value).unwrap();
                    attributes.set_typed(&value).unwrap();
                    prop_assert_eq!(attributes.len(), 1);
                    prop_assert_eq!(attributes.first::<$ty>(), Some(value));
                }
            )*
        }
    };
}

typed_round_trip! {
    group_round_trips: group(), Group;
    msid_semantic_round_trips: msid_semantic(), MsidSemantic;
    msid_round_trips: msid(), Msid;
    fingerprint_round_trips: fingerprint(), Fingerprint;
    setup_round_trips: setup(), Setup;
    rtcp_round_trips: rtcp(), Rtcp;
    rtcp_feedback_round_trips: rtcp_feedback(), RtcpFeedback;
    extmap_round_trips: extmap(), Extmap;
    rtpmap_round_trips: rtpmap(), RtpMap;
    fmtp_round_trips: fmtp(), Fmtp;
    ssrc_round_trips: ssrc(), Ssrc;
    ssrc_group_round_trips: ssrc_group(), SsrcGroup;
    rid_round_trips: rid(), Rid;
    simulcast_round_trips: simulcast(), Simulcast;
}

proptest! {
    /// Codecs pushed into a section read back from `codecs()`.
    #[test]
    fn codecs_round_trip(
        specs in vec((token(), any::<u32>(), option::of(any::<u16>()), vec(parameter(), 0..3),
            vec((token(), option::of(words())), 0..3)), 1..5),
    ) {
        let mut media = MediaSection::new(MediaKind::Video, Protocol::UdpTlsRtpSavpf);
        let mut expected = Vec::new();
        for (pt, (name, clock_rate, channels, parameters, feedback)) in (96u8..).zip(specs) {
            let feedback = feedback.into_iter().map(|(kind, parameter)| Feedback { kind, parameter }).collect();
            let codec = Codec { payload_type: pt, encoding_name: name, clock_rate, channels, parameters, feedback };
            media.push_codec(&codec).unwrap();
            expected.push(codec);
        }
        prop_assert_eq!(media.codecs(), expected);
    }
}
