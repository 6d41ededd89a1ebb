//! RTP header and header extensions: round trips through the writer and
//! the parser, byte layouts from RFC 3550 and RFC 8285, typed errors for
//! malformed packets, and property tests that hostile bytes never panic.

use std::time::Duration;

use natter_rtp::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn write(header: &RtpHeader, form: Option<ExtensionForm>, ext: &[(u8, &[u8])], payload: &[u8], pad: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = RtpWriter::new(&mut buf, header).unwrap();
    if let Some(form) = form {
        w.start_extensions(form).unwrap();
        for (id, v) in ext {
            w.add_extension(*id, v).unwrap();
        }
    }
    let n = w.finish(payload, pad).unwrap();
    buf.truncate(n);
    buf
}

/// RFC 3550 §5.1 and RFC 8285 §4.2: a header with one CSRC and a
/// one-byte extension block holding a 1-byte and a 3-byte element,
/// padded with zeros to 32 bits; then 2 payload bytes and 2 of padding.
#[test]
fn known_layout_one_byte_form() {
    let header = RtpHeader {
        marker: true,
        payload_type: 111,
        sequence_number: 0x1234,
        timestamp: 0xDEAD_BEEF,
        ssrc: 0x0102_0304,
        csrcs: &[0x0A0B_0C0D],
    };
    let bytes = write(
        &header,
        Some(ExtensionForm::OneByte),
        &[(1, &[0x30]), (3, &[0x12, 0x34, 0x56])],
        &[0xAA, 0xBB],
        2,
    );
    let expected = hex("b1 ef 12 34 de ad be ef 01 02 03 04 0a 0b 0c 0d
                        be de 00 02 10 30 32 12 34 56 00 00
                        aa bb 00 02");
    assert_eq!(bytes, expected);
    let p = RtpPacket::parse(&expected).unwrap();
    assert!(p.marker() && p.has_padding() && p.has_extension());
    assert_eq!(p.payload_type(), 111);
    assert_eq!(p.sequence_number(), 0x1234);
    assert_eq!(p.timestamp(), 0xDEAD_BEEF);
    assert_eq!(p.ssrc(), 0x0102_0304);
    assert_eq!(p.csrcs().collect::<Vec<_>>(), [0x0A0B_0C0D]);
    assert_eq!(p.header_len(), 28);
    assert_eq!(p.payload(), [0xAA, 0xBB]);
    assert_eq!(p.padding_len(), 2);
    assert_eq!(p.extension_form(), Some(ExtensionForm::OneByte));
    let ext: Vec<_> = p.extensions().map(|e| (e.id, e.value.to_vec())).collect();
    assert_eq!(ext, [(1, vec![0x30]), (3, vec![0x12, 0x34, 0x56])]);
}

/// RFC 8285 §4.3: profile 0x100 with appbits, 8-bit id and length; a
/// zero-length element is legal in this form.
#[test]
fn known_layout_two_byte_form() {
    let header = RtpHeader {
        payload_type: 96,
        ..Default::default()
    };
    let bytes = write(
        &header,
        Some(ExtensionForm::TwoByte { appbits: 0xA }),
        &[(1, &[]), (200, &[1, 2, 3])],
        &[],
        0,
    );
    let expected = hex("90 60 00 00 00 00 00 00 00 00 00 00
                        10 0a 00 02 01 00 c8 03 01 02 03 00");
    assert_eq!(bytes, expected);
    let p = RtpPacket::parse(&bytes).unwrap();
    assert_eq!(p.extension_form(), Some(ExtensionForm::TwoByte { appbits: 0xA }));
    let ext: Vec<_> = p.extensions().map(|e| (e.id, e.value.to_vec())).collect();
    assert_eq!(ext, [(1, vec![]), (200, vec![1, 2, 3])]);
    assert!(p.payload().is_empty());
}

/// RFC 8285 §4.2: padding bytes may sit between elements; id 15 ends
/// processing, whatever follows.
#[test]
fn one_byte_padding_between_elements_and_id_15_stop() {
    let pkt = hex("90 00 00 01 00 00 00 02 00 00 00 03
                   be de 00 03 00 00 10 41 00 21 42 43 f0 31 ff ff");
    let p = RtpPacket::parse(&pkt).unwrap();
    let ext: Vec<_> = p.extensions().map(|e| (e.id, e.value.to_vec())).collect();
    assert_eq!(ext, [(1, vec![0x41]), (2, vec![0x42, 0x43])]);
    assert_eq!(p.extension(2), Some(&[0x42, 0x43][..]));
    assert_eq!(p.extension(3), None);
}

/// RFC 3550 §5.3.1: an extension of another profile is kept raw and
/// yields no RFC 8285 elements.
#[test]
fn other_profile_extension_is_raw() {
    let pkt = hex("90 00 00 01 00 00 00 02 00 00 00 03 ab cd 00 01 01 02 03 04 ff");
    let p = RtpPacket::parse(&pkt).unwrap();
    let block = p.extension_block().unwrap();
    assert_eq!(block.profile, 0xABCD);
    assert_eq!(block.data, [1, 2, 3, 4]);
    assert_eq!(p.extension_form(), None);
    assert_eq!(p.extensions().count(), 0);
    assert_eq!(p.payload(), [0xFF]);
}

#[test]
fn malformed_packets_give_typed_errors() {
    let base = hex("80 00 00 01 00 00 00 02 00 00 00 03");
    assert_eq!(RtpPacket::parse(&base[..11]), Err(Error::RtpTooShort(11)));
    let mut v1 = base.clone();
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(Error::RtpVersion(1)));
    let mut cc = base.clone();
    cc[0] = 0x82;
    assert_eq!(
        RtpPacket::parse(&cc),
        Err(Error::CsrcOverrun {
            count: 2,
            needed: 20,
            len: 12
        })
    );
    let mut x = base.clone();
    x[0] = 0x90;
    x.extend_from_slice(&hex("be de 00 02 10 41 00 00"));
    assert_eq!(
        RtpPacket::parse(&x),
        Err(Error::ExtensionOverrun {
            offset: 12,
            declared: 12,
            available: 8
        })
    );
    let mut el = base.clone();
    el[0] = 0x90;
    el.extend_from_slice(&hex("be de 00 01 00 13 41 42"));
    assert_eq!(
        RtpPacket::parse(&el),
        Err(Error::ExtensionElementOverrun {
            id: 1,
            offset: 1,
            len: 4,
            block_len: 4
        })
    );
    let mut two = base.clone();
    two[0] = 0x90;
    two.extend_from_slice(&hex("10 00 00 01 00 00 00 07"));
    assert!(matches!(
        RtpPacket::parse(&two),
        Err(Error::ExtensionElementOverrun { id: 7, .. })
    ));
    let mut pad = base.clone();
    pad[0] = 0xA0;
    pad.extend_from_slice(&[0xAA, 0x03]);
    assert_eq!(
        RtpPacket::parse(&pad),
        Err(Error::RtpPadding { count: 3, available: 2 })
    );
    let mut zero_pad = base;
    zero_pad[0] = 0xA0;
    zero_pad.push(0);
    assert_eq!(
        RtpPacket::parse(&zero_pad),
        Err(Error::RtpPadding { count: 0, available: 1 })
    );
    let msg = Error::ExtensionElementOverrun {
        id: 1,
        offset: 1,
        len: 4,
        block_len: 4,
    }
    .to_string();
    assert!(msg.contains("id 1") && msg.contains("byte 1"), "{msg}");
}

#[test]
fn writer_rejects_what_the_form_cannot_hold() {
    let mut buf = [0u8; 256];
    let mut w = RtpWriter::new(&mut buf, &RtpHeader::default()).unwrap();
    assert!(matches!(w.add_extension(1, &[1]), Err(Error::InvalidInput { .. })));
    w.start_extensions(ExtensionForm::OneByte).unwrap();
    for (id, len) in [(0u8, 1usize), (15, 1), (1, 0), (1, 17)] {
        assert_eq!(
            w.add_extension(id, &vec![0; len]),
            Err(Error::ExtensionElementInvalid {
                id,
                len,
                form: "one-byte"
            })
        );
    }
    assert!(w.start_extensions(ExtensionForm::OneByte).is_err());
    let mut w = RtpWriter::new(&mut buf, &RtpHeader::default()).unwrap();
    w.start_extensions(ExtensionForm::TwoByte { appbits: 0 }).unwrap();
    assert!(w.add_extension(0, &[]).is_err());
    assert!(w.add_extension(255, &[0; 255]).is_err(), "256-byte buffer is full");
    let too_many = [0u32; 16];
    let h = RtpHeader {
        csrcs: &too_many,
        ..Default::default()
    };
    assert!(matches!(RtpWriter::new(&mut buf, &h), Err(Error::TooMany { .. })));
    let h = RtpHeader {
        payload_type: 128,
        ..Default::default()
    };
    assert!(RtpWriter::new(&mut buf, &h).is_err());
}

#[test]
fn writer_reports_buffer_too_small_without_allocating() {
    let mut small = [0u8; 11];
    assert_eq!(
        RtpWriter::new(&mut small, &RtpHeader::default()).err(),
        Some(Error::BufferTooSmall {
            needed: 12,
            available: 11
        })
    );
    let mut buf = [0u8; 20];
    let w = RtpWriter::new(&mut buf, &RtpHeader::default()).unwrap();
    assert_eq!(
        w.finish(&[0; 9], 0),
        Err(Error::BufferTooSmall {
            needed: 21,
            available: 20
        })
    );
    let mut buf = [0u8; 18];
    let mut w = RtpWriter::new(&mut buf, &RtpHeader::default()).unwrap();
    w.start_extensions(ExtensionForm::OneByte).unwrap();
    w.add_extension(1, &[7]).unwrap();
    // The element fits, the block's padding to 32 bits does not.
    assert_eq!(
        w.finish_header(),
        Err(Error::BufferTooSmall {
            needed: 20,
            available: 18
        })
    );
}

#[test]
fn finish_header_leaves_room_for_the_payload_in_place() {
    let mut buf = [0u8; 64];
    let mut w = RtpWriter::new(&mut buf, &RtpHeader::default()).unwrap();
    w.start_extensions(ExtensionForm::OneByte).unwrap();
    w.add(
        2,
        &AudioLevel {
            voice_activity: false,
            level: 127,
        },
    )
    .unwrap();
    let h = w.finish_header().unwrap();
    assert_eq!(h, 20);
    buf[h..h + 3].copy_from_slice(b"abc");
    let p = RtpPacket::parse(&buf[..h + 3]).unwrap();
    assert_eq!(p.payload(), b"abc");
    assert_eq!(
        p.extension_value::<AudioLevel>(2),
        Some(Ok(AudioLevel {
            voice_activity: false,
            level: 127
        }))
    );
}

/// Known byte layouts of each typed value, from its specification's figure.
#[test]
fn typed_extension_layouts() {
    fn bytes<'a, E: ExtensionValue<'a>>(v: &E) -> Vec<u8> {
        let mut out = vec![0; v.encoded_len()];
        v.encode(&mut out);
        out
    }
    // RFC 6464 §3: V in the top bit, level in the low 7.
    assert_eq!(
        bytes(&AudioLevel {
            voice_activity: true,
            level: 42
        }),
        [0xAA]
    );
    assert_eq!(
        AudioLevel::parse(&[0x7F]).unwrap(),
        AudioLevel {
            voice_activity: false,
            level: 127
        }
    );
    // RFC 6464 §3: the two-byte form may pad the value.
    assert_eq!(AudioLevel::parse(&[0x85, 0, 0]).unwrap().level, 5);
    // 3GPP TS 26.114 §7.4.5: 0 0 0 0 C F R1 R0.
    let cvo = VideoOrientation {
        back_camera: true,
        flip: false,
        rotation: Rotation::Deg270,
    };
    assert_eq!(bytes(&cvo), [0x0B]);
    assert_eq!(
        VideoOrientation::parse(&[0x06]).unwrap(),
        VideoOrientation {
            back_camera: false,
            flip: true,
            rotation: Rotation::Deg180
        }
    );
    assert_eq!(Rotation::Deg90.degrees(), 90);
    // playout-delay: MIN and MAX, 12 bits each.
    let pd = PlayoutDelay { min: 0x123, max: 0x456 };
    assert_eq!(bytes(&pd), [0x12, 0x34, 0x56]);
    assert_eq!(pd.max_delay(), Duration::from_millis(11_100));
    // abs-send-time: 6.18 fixed point.
    assert_eq!(bytes(&AbsSendTime::from_raw(0x04_0000)), [0x04, 0x00, 0x00]);
    assert_eq!(AbsSendTime::from_raw(0x04_0000).to_duration(), Duration::from_secs(1));
    assert_eq!(AbsSendTime::from_duration(Duration::from_millis(1500)).raw(), 0x06_0000);
    assert_eq!(AbsSendTime::from_duration(Duration::from_secs(65)).raw(), 0x04_0000);
    assert_eq!(AbsSendTime::from_ntp(0x0000_0001_8000_0000).raw(), 0x06_0000);
    // transport-wide-cc: 16-bit big-endian.
    assert_eq!(bytes(&TransportSequenceNumber(0xABCD)), [0xAB, 0xCD]);
    assert_eq!(bytes(&Mid("audio")), b"audio");
    assert_eq!(RepairedRtpStreamId::parse(b"hi").unwrap(), RepairedRtpStreamId("hi"));

    assert!(AbsSendTime::parse(&[1, 2]).is_err());
    assert!(PlayoutDelay::parse(&[1, 2, 3, 4]).is_err());
    assert!(TransportSequenceNumber::parse(&[1]).is_err());
    assert!(AudioLevel::parse(&[]).is_err());
    assert!(VideoOrientation::parse(&[]).is_err());
    assert!(Mid::parse(&[]).is_err());
    let err = RtpStreamId::parse(&[0xFF]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sdes:rtp-stream-id header extension value is malformed: identifier is not UTF-8"
    );
}

#[test]
fn uris_are_the_registered_ones() {
    assert_eq!(<Mid as ExtensionValue>::URI, "urn:ietf:params:rtp-hdrext:sdes:mid");
    assert_eq!(
        <RtpStreamId as ExtensionValue>::URI,
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
    );
    assert_eq!(
        <RepairedRtpStreamId as ExtensionValue>::URI,
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
    );
    assert_eq!(
        AbsSendTime::URI,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    );
    assert_eq!(
        TransportSequenceNumber::URI,
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
    );
    assert_eq!(AudioLevel::URI, "urn:ietf:params:rtp-hdrext:ssrc-audio-level");
    assert_eq!(VideoOrientation::URI, "urn:3gpp:video-orientation");
    assert_eq!(
        PlayoutDelay::URI,
        "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
    );
}

fn any_form() -> impl Strategy<Value = ExtensionForm> {
    prop_oneof![
        Just(ExtensionForm::OneByte),
        (0u8..16).prop_map(|appbits| ExtensionForm::TwoByte { appbits })
    ]
}

/// Elements valid for a form: (id, value).
fn elements(form: ExtensionForm) -> BoxedStrategy<Vec<(u8, Vec<u8>)>> {
    match form {
        ExtensionForm::OneByte => {
            proptest::collection::vec((1u8..=14, proptest::collection::vec(any::<u8>(), 1..=16)), 0..8).boxed()
        }
        ExtensionForm::TwoByte { .. } => {
            proptest::collection::vec((1u8..=255, proptest::collection::vec(any::<u8>(), 0..=40)), 0..8).boxed()
        }
    }
}

proptest! {
    #[test]
    fn rtp_round_trips_with_both_extension_forms(
        (form, ext) in any_form().prop_flat_map(|f| (Just(f), elements(f))),
        marker in any::<bool>(),
        payload_type in 0u8..128,
        sequence_number in any::<u16>(),
        timestamp in any::<u32>(),
        ssrc in any::<u32>(),
        csrcs in proptest::collection::vec(any::<u32>(), 0..=15),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        pad in any::<u8>(),
        with_ext in any::<bool>(),
    ) {
        let header = RtpHeader { marker, payload_type, sequence_number, timestamp, ssrc, csrcs: &csrcs };
        let refs: Vec<(u8, &[u8])> = ext.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        let bytes = write(&header, with_ext.then_some(form), &refs, &payload, pad);
        let p = RtpPacket::parse(&bytes).unwrap();
        prop_assert_eq!(p.marker(), marker);
        prop_assert_eq!(p.payload_type(), payload_type);
        prop_assert_eq!(p.sequence_number(), sequence_number);
        prop_assert_eq!(p.timestamp(), timestamp);
        prop_assert_eq!(p.ssrc(), ssrc);
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.padding_len(), usize::from(pad));
        prop_assert_eq!(p.header_len() % 4, 0);
        prop_assert_eq!(p.has_extension(), with_ext);
        if with_ext {
            prop_assert_eq!(p.extension_form(), Some(form));
            let got: Vec<(u8, Vec<u8>)> = p.extensions().map(|e| (e.id, e.value.to_vec())).collect();
            prop_assert_eq!(got, ext);
        }
    }

    #[test]
    fn typed_extensions_round_trip(
        level in 0u8..128, v in any::<bool>(), c in any::<bool>(), f in any::<bool>(), r in 0u16..4,
        min in 0u16..4096, max in 0u16..4096, abs in 0u32..(1 << 24), seq in any::<u16>(),
        mid in "[a-zA-Z0-9]{1,16}",
    ) {
        let rotation = [Rotation::Deg0, Rotation::Deg90, Rotation::Deg180, Rotation::Deg270][r as usize];
        let mut buf = [0u8; 256];
        let mut w = RtpWriter::new(&mut buf, &RtpHeader::default()).unwrap();
        w.start_extensions(ExtensionForm::OneByte).unwrap();
        let audio = AudioLevel { voice_activity: v, level };
        let cvo = VideoOrientation { back_camera: c, flip: f, rotation };
        let delay = PlayoutDelay { min, max };
        w.add(1, &audio).unwrap();
        w.add(2, &cvo).unwrap();
        w.add(3, &delay).unwrap();
        w.add(4, &AbsSendTime::from_raw(abs)).unwrap();
        w.add(5, &TransportSequenceNumber(seq)).unwrap();
        w.add(6, &Mid(&mid)).unwrap();
        w.add(7, &RtpStreamId(&mid)).unwrap();
        let n = w.finish(&[], 0).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        prop_assert_eq!(p.extension_value::<AudioLevel>(1), Some(Ok(audio)));
        prop_assert_eq!(p.extension_value::<VideoOrientation>(2), Some(Ok(cvo)));
        prop_assert_eq!(p.extension_value::<PlayoutDelay>(3), Some(Ok(delay)));
        prop_assert_eq!(p.extension_value::<AbsSendTime>(4), Some(Ok(AbsSendTime::from_raw(abs))));
        prop_assert_eq!(p.extension_value::<TransportSequenceNumber>(5), Some(Ok(TransportSequenceNumber(seq))));
        prop_assert_eq!(p.extension_value::<Mid>(6), Some(Ok(Mid(&mid))));
        prop_assert_eq!(p.extension_value::<RtpStreamId>(7), Some(Ok(RtpStreamId(&mid))));
        prop_assert_eq!(p.extension_value::<Mid>(9), None);
    }

    #[test]
    fn abs_send_time_duration_round_trip(nanos in 0u64..64_000_000_000) {
        let t = AbsSendTime::from_duration(Duration::from_nanos(nanos));
        let back = t.to_duration().as_nanos() as i128;
        // One step is 2^-18 s ≈ 3815 ns; rounding is to the nearest step,
        // modulo 64 s.
        let diff = (back - i128::from(nanos)).rem_euclid(64_000_000_000);
        prop_assert!(diff <= 1908 || diff >= 64_000_000_000 - 1908, "{} -> {}", nanos, back);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&data) {
            let _ = (p.marker(), p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc());
            let _ = p.csrcs().count();
            for e in p.extensions() {
                let _ = e.parse::<AudioLevel>();
                let _ = e.parse::<Mid>();
                let _ = e.parse::<PlayoutDelay>();
            }
            prop_assert!(p.header_len() + p.payload().len() + p.padding_len() == data.len());
        }
    }

    #[test]
    fn rtp_like_bytes_never_panic(
        first in 0x80u8..0xC0,
        rest in proptest::collection::vec(any::<u8>(), 11..120),
        ext in proptest::collection::vec(any::<u8>(), 0..40),
        profile in prop_oneof![Just(0xBEDEu16), Just(0x1000u16), any::<u16>()],
        words in 0u16..12,
    ) {
        // Valid version and an extension header, so parsing gets past the
        // fixed header and into the elements.
        let mut data = vec![first | 0x10];
        data.extend_from_slice(&rest[..11]);
        data.truncate(12 + 4 * usize::from(first & 0x0F));
        data.resize(12 + 4 * usize::from(first & 0x0F), 0);
        data.extend_from_slice(&profile.to_be_bytes());
        data.extend_from_slice(&words.to_be_bytes());
        data.extend_from_slice(&ext);
        data.extend_from_slice(&rest[11..]);
        if let Ok(p) = RtpPacket::parse(&data) {
            let _ = p.extensions().count();
            let _ = p.payload();
        }
    }
}
