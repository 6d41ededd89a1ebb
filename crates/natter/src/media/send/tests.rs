//! SendStream: frames, RTP written by the application, RTX, reports.

use super::*;
use natter_rtp::Mid;

fn vp8_stream(rtx: bool) -> SendStream {
    let params = SendParams {
        ssrc: 0x1111,
        format: Format::Vp8,
        payload_type: 96,
        clock_rate: 90_000,
        rtx: rtx.then_some((0x2222, 97)),
        mid: Some((4, "0".into())),
        audio_level: None,
        dependency_descriptor: Some(12),
        rid: None,
        repaired_rid: None,
        transport_cc: None,
    };
    SendStream::new(params, 0x0000_1000_0000_FFFE)
}

/// An inter frame (P bit set) of `len` bytes.
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0xAB; len];
    f[..3].copy_from_slice(&[0x51, 0x00, 0x00]);
    f
}

#[test]
fn a_frame_becomes_numbered_packets_with_one_timestamp_and_the_marker_last() {
    let t0 = Instant::now();
    let mut s = vp8_stream(false);
    let (first, count) = s
        .write_frame(t0, Duration::from_millis(100), &frame(3000), 1200)
        .unwrap();
    assert_eq!((first, count), (0xFFFE, 3));
    let packets: Vec<_> = (0..count)
        .map(|i| RtpPacket::parse(s.packet(first.wrapping_add(i)).unwrap()).unwrap())
        .collect();
    for (i, p) in packets.iter().enumerate() {
        assert!(p.as_bytes().len() <= 1200);
        assert_eq!(p.timestamp(), 0x1000 + 9000);
        assert_eq!(p.ssrc(), 0x1111);
        assert_eq!(p.marker(), i == 2);
        assert_eq!(p.extension_value::<Mid>(4), Some(Ok(Mid("0"))));
    }
    assert_eq!(packets[2].sequence_number(), 0);
    assert_eq!(s.counters.packets_sent, 3);
}

#[test]
fn rtx_carries_the_original_sequence_number_and_payload() {
    let t0 = Instant::now();
    let mut s = vp8_stream(true);
    let (first, _) = s.write_frame(t0, Duration::ZERO, &frame(500), 1200).unwrap();
    let original = s.packet(first).unwrap().to_vec();
    let mut out = Vec::new();
    assert!(s.retransmit(first, &mut out));
    let rtx = RtpPacket::parse(&out).unwrap();
    let original = RtpPacket::parse(&original).unwrap();
    assert_eq!((rtx.ssrc(), rtx.payload_type()), (0x2222, 97));
    assert_eq!(rtx.timestamp(), original.timestamp());
    assert_eq!(&rtx.payload()[..2], &first.to_be_bytes());
    assert_eq!(&rtx.payload()[2..], original.payload());
    assert!(!s.retransmit(first.wrapping_add(1), &mut out), "never sent");
    assert!(!vp8_stream(false).retransmit(first, &mut out), "no RTX negotiated");
}

#[test]
fn written_rtp_keeps_the_callers_numbers_and_gets_the_streams_ssrc_and_extensions() {
    let t0 = Instant::now();
    let mut s = vp8_stream(true);
    let descriptor = [0x80 | 0x40 | 1, 0, 7];
    let packet = OutgoingRtp {
        payload_type: 96,
        sequence_number: 65_535,
        timestamp: 0xDEAD_BEEF,
        marker: true,
        payload: &[0x10, 1, 2, 3],
        audio_level: Some(AudioLevel {
            voice_activity: true,
            level: 30,
        }),
        dependency_descriptor: Some(&descriptor),
    };
    assert_eq!(s.write_rtp(t0, &packet).unwrap(), 65_535);
    let written = RtpPacket::parse(s.packet(65_535).unwrap()).unwrap();
    assert_eq!((written.ssrc(), written.sequence_number()), (0x1111, 65_535));
    assert_eq!((written.timestamp(), written.marker()), (0xDEAD_BEEF, true));
    assert_eq!(written.payload(), packet.payload);
    assert_eq!(written.extension_value::<Mid>(4), Some(Ok(Mid("0"))));
    assert_eq!(written.extension(12), Some(&descriptor[..]));
    assert_eq!(written.extension_form(), Some(ExtensionForm::OneByte));
    // No audio level id was negotiated: not written.
    assert_eq!(written.extensions().count(), 2);
    assert_eq!((s.counters.packets_sent, s.counters.frames_sent), (1, 1));

    // The RTX copy carries the same extensions.
    let mut out = Vec::new();
    assert!(s.retransmit(65_535, &mut out));
    let rtx = RtpPacket::parse(&out).unwrap();
    assert_eq!(rtx.extension(12), Some(&descriptor[..]));
    assert_eq!(&rtx.payload()[2..], packet.payload);
}

#[test]
fn a_long_dependency_descriptor_takes_the_two_byte_form() {
    let mut s = vp8_stream(false);
    let descriptor: Vec<u8> = (0..40).collect();
    let packet = OutgoingRtp {
        payload_type: 96,
        payload: &[0x10, 0],
        dependency_descriptor: Some(&descriptor),
        ..OutgoingRtp::default()
    };
    s.write_rtp(Instant::now(), &packet).unwrap();
    let written = RtpPacket::parse(s.packet(0).unwrap()).unwrap();
    assert_eq!(written.extension_form(), Some(ExtensionForm::TwoByte { appbits: 0 }));
    assert_eq!(written.extension(12), Some(&descriptor[..]));
    assert_eq!(written.extension_value::<Mid>(4), Some(Ok(Mid("0"))));
}

#[test]
fn the_transport_wide_sequence_number_is_written_as_the_packet_leaves_in_either_form_and_on_rtx() {
    use natter_rtp::TransportSequenceNumber;
    let mut s = vp8_stream(true);
    s.set_params(SendParams {
        transport_cc: Some(3),
        ..s.params().clone()
    });
    let number = |packet: &[u8]| {
        RtpPacket::parse(packet)
            .unwrap()
            .extension_value::<TransportSequenceNumber>(3)
    };
    // One-byte form: a frame's packet, then its RTX with another number.
    let (first, _) = s
        .write_frame(Instant::now(), Duration::ZERO, &frame(500), 1200)
        .unwrap();
    let mut packet = s.packet(first).unwrap().to_vec();
    assert_eq!(number(&packet), Some(Ok(TransportSequenceNumber(0))));
    assert!(set_transport_seq(&mut packet, 3, 0xBEEF));
    assert_eq!(number(&packet), Some(Ok(TransportSequenceNumber(0xBEEF))));
    assert_eq!(
        RtpPacket::parse(&packet).unwrap().extension_value::<Mid>(4),
        Some(Ok(Mid("0")))
    );
    let mut rtx = Vec::new();
    assert!(s.retransmit(first, &mut rtx));
    assert!(set_transport_seq(&mut rtx, 3, 0xBEF0));
    assert_eq!(number(&rtx), Some(Ok(TransportSequenceNumber(0xBEF0))));
    // Two-byte form, as a long dependency descriptor makes it.
    let descriptor: Vec<u8> = (0..40).collect();
    let written = OutgoingRtp {
        payload_type: 96,
        sequence_number: 7,
        payload: &[0x10, 0],
        dependency_descriptor: Some(&descriptor),
        ..OutgoingRtp::default()
    };
    s.write_rtp(Instant::now(), &written).unwrap();
    let mut packet = s.packet(7).unwrap().to_vec();
    assert!(set_transport_seq(&mut packet, 3, 1));
    let parsed = RtpPacket::parse(&packet).unwrap();
    assert_eq!(parsed.extension_form(), Some(ExtensionForm::TwoByte { appbits: 0 }));
    assert_eq!(number(&packet), Some(Ok(TransportSequenceNumber(1))));
    assert_eq!(parsed.extension(12), Some(&descriptor[..]));
    // Another id, or a stream without the extension: nothing written.
    assert!(!set_transport_seq(&mut packet, 5, 2));
    let mut plain = vp8_stream(false);
    let (first, _) = plain
        .write_frame(Instant::now(), Duration::ZERO, &frame(500), 1200)
        .unwrap();
    let mut packet = plain.packet(first).unwrap().to_vec();
    let before = packet.clone();
    assert!(!set_transport_seq(&mut packet, 3, 2));
    assert_eq!(packet, before);
}

proptest::proptest! {
    /// Whatever the application writes comes back as written, with
    /// the stream's SSRC; and its RTX, unwrapped, is the same packet.
    #[test]
    fn written_rtp_and_its_rtx_parse_back(
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload in proptest::collection::vec(proptest::num::u8::ANY, 1..1100),
        level in proptest::option::of(0u8..128),
        descriptor in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 3..255)),
    ) {
        let mut s = vp8_stream(true);
        s.params.audio_level = Some(13);
        let packet = OutgoingRtp {
            payload_type: 96,
            sequence_number: seq,
            timestamp,
            marker,
            payload: &payload,
            audio_level: level.map(|level| AudioLevel { voice_activity: level % 2 == 0, level }),
            dependency_descriptor: descriptor.as_deref(),
        };
        s.write_rtp(Instant::now(), &packet).unwrap();
        let written = s.packet(seq).unwrap().to_vec();
        let written = RtpPacket::parse(&written).unwrap();
        proptest::prop_assert_eq!(
            (written.ssrc(), written.sequence_number(), written.timestamp(), written.marker()),
            (0x1111, seq, timestamp, marker)
        );
        proptest::prop_assert_eq!(written.payload(), &payload[..]);
        proptest::prop_assert_eq!(written.extension_value::<AudioLevel>(13).and_then(Result::ok), packet.audio_level);
        proptest::prop_assert_eq!(written.extension(12), descriptor.as_deref());
        let mut rtx = Vec::new();
        proptest::prop_assert!(s.retransmit(seq, &mut rtx));
        let rtx = RtpPacket::parse(&rtx).unwrap();
        let extensions: Vec<_> = rtx.extensions().collect();
        proptest::prop_assert_eq!(extensions, written.extensions().collect::<Vec<_>>());
        proptest::prop_assert_eq!(&rtx.payload()[2..], &payload[..]);
    }
}

/// A packet is repaired once per NACK only while no repair of it waits
/// and its last sending is a round trip old: NACKs that crossed a
/// repair, or came again while it waited in the pacer, are not answered
/// twice.
#[test]
fn a_packet_is_repaired_at_most_once_per_round_trip() {
    let t0 = Instant::now();
    let rtt = Duration::from_millis(60);
    let mut s = vp8_stream(true);
    let (first, _) = s.write_frame(t0, Duration::ZERO, &frame(500), 1200).unwrap();
    assert!(s.repair_due(first, t0, rtt), "never sent: due at once");
    s.on_sent(first, t0);
    let at = |ms| t0 + Duration::from_millis(ms);
    assert!(!s.repair_due(first, at(20), rtt), "sent less than a round trip ago");
    assert!(s.repair_due(first, at(60), rtt));
    s.on_repair_queued(first);
    assert!(!s.repair_due(first, at(200), rtt), "a repair waits");
    s.on_sent(first, at(200));
    assert!(!s.repair_due(first, at(230), rtt));
    assert!(s.repair_due(first, at(260), rtt));
    assert!(!s.repair_due(first.wrapping_add(1), at(260), rtt), "never written");
}

/// The history keeps every packet of the last second (`HISTORY_AGE`)
/// and grows only as far as that needs: 50 packets a second (an SFU's
/// leg of a small layer) stay in 64 slots, not `HISTORY`, across the
/// 16-bit wrap (the stream starts at 65,534); 1,000 a second grow it to
/// `HISTORY` and no further (issue 13).
#[test]
fn the_history_holds_a_second_in_as_few_slots_as_that_takes() {
    let t0 = Instant::now();
    let mut s = vp8_stream(true);
    assert_eq!(s.history.len(), HISTORY_START);
    let mut written = Vec::new();
    for i in 0..150u64 {
        let now = t0 + Duration::from_millis(20 * i);
        let (first, count) = s
            .write_frame(now, Duration::from_millis(20 * i), &frame(100), 1200)
            .unwrap();
        assert_eq!(count, 1);
        written.push((first, now));
    }
    assert_eq!(s.history.len(), 64);
    let (_, last) = written[written.len() - 1];
    for (sequence, at) in &written {
        if last.duration_since(*at) < HISTORY_AGE {
            assert!(s.packet(*sequence).is_some(), "{sequence} from the last second is kept");
        }
    }
    assert!(s.packet(written[0].0).is_none(), "3 s old");
    for i in 1..=2_000u64 {
        let now = last + Duration::from_millis(i);
        s.write_frame(now, Duration::from_millis(3_000 + i), &frame(100), 1200)
            .unwrap();
    }
    assert_eq!(s.history.len(), HISTORY);
}

#[test]
fn the_history_forgets_old_packets() {
    let t0 = Instant::now();
    let mut s = vp8_stream(true);
    let (first, _) = s.write_frame(t0, Duration::ZERO, &frame(100), 1200).unwrap();
    for i in 1..=HISTORY as u64 {
        s.write_frame(t0, Duration::from_millis(i), &frame(100), 1200).unwrap();
    }
    assert!(s.packet(first).is_none());
    assert!(!s.retransmit(first, &mut Vec::new()));
}

#[test]
fn a_sender_report_maps_now_to_the_rtp_clock() {
    let t0 = Instant::now();
    let clock = NtpClock::new(t0, None);
    let mut s = vp8_stream(false);
    assert!(s.sender_info(t0, &clock).is_none());
    s.write_frame(t0, Duration::from_secs(1), &frame(100), 1200).unwrap();
    let info = s.sender_info(t0 + Duration::from_millis(500), &clock).unwrap();
    assert_eq!(info.rtp_timestamp, 0x1000 + 90_000 + 45_000);
    assert_eq!(info.ntp_timestamp, 1 << 31);
    let payload = RtpPacket::parse(s.packet(s.sequence_number.wrapping_sub(1)).unwrap())
        .unwrap()
        .payload()
        .len();
    assert_eq!((info.packet_count, info.octet_count), (1, payload as u32));
}

#[test]
fn a_late_written_packet_leaves_the_sender_report_mapping_alone() {
    let t0 = Instant::now();
    let clock = NtpClock::new(t0, None);
    let mut s = vp8_stream(false);
    let packet = |sequence_number, timestamp| OutgoingRtp {
        payload_type: 96,
        sequence_number,
        timestamp,
        payload: &[0x10, 0],
        ..OutgoingRtp::default()
    };
    s.write_rtp(t0, &packet(1, u32::MAX - 100)).unwrap();
    s.write_rtp(t0, &packet(3, 800)).unwrap();
    let later = t0 + Duration::from_millis(10);
    s.write_rtp(later, &packet(2, u32::MAX - 50)).unwrap();
    let info = s.sender_info(later, &clock).unwrap();
    assert_eq!(
        info.rtp_timestamp,
        800 + 900,
        "from the newest timestamp, across the wrap"
    );
    assert_eq!(info.packet_count, 3);
}
