//! Transport-wide CC feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): the
//! draft's chunk examples, a hand-computed packet, and round trips of
//! random arrival patterns with losses, large and negative deltas.

use natter_rtp::rtcp::*;
use natter_rtp::Error;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// An RTPFB FMT=15 packet around the given FCI after the fixed fields.
fn feedback(base: u16, count: u16, reference: u32, rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&2u32.to_be_bytes());
    body.extend_from_slice(&base.to_be_bytes());
    body.extend_from_slice(&count.to_be_bytes());
    body.extend_from_slice(&(reference << 8).to_be_bytes());
    body.extend_from_slice(rest);
    body.resize(body.len().div_ceil(4) * 4, 0);
    let mut p = vec![0x8F, 205];
    p.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

fn parse(bytes: &[u8]) -> Result<TransportFeedback<'_>, Error> {
    let c = Compound::parse(bytes)?;
    match c.packets().next().unwrap()? {
        RtcpPacket::TransportFeedback(t) => Ok(t),
        other => panic!("{other:?}"),
    }
}

fn statuses(t: &TransportFeedback) -> Vec<StatusSymbol> {
    t.packets().map(|p| p.status).collect()
}

/// §3.1.3 Example 1: `0|00|0000011011101`, 221 packets not received.
#[test]
fn draft_run_length_example_1() {
    let chunk = PacketStatusChunk(0x00DD);
    assert!(chunk.is_run_length());
    assert_eq!(chunk.symbol_count(), 221);
    assert_eq!(chunk.symbol(0), Some(StatusSymbol::NotReceived));
    assert_eq!(PacketStatusChunk::run_length(StatusSymbol::NotReceived, 221), chunk);
    let bytes = feedback(100, 221, 0, &[0x00, 0xDD]);
    let t = parse(&bytes).unwrap();
    assert_eq!(t.packets().count(), 221);
    assert!(t
        .packets()
        .all(|p| p.status == StatusSymbol::NotReceived && p.arrival_us.is_none()));
    assert_eq!(t.packets().last().unwrap().seq, 320);
}

/// §3.1.3 Example 2 uses the symbol `11`, which §3.1.1 reserves; it is
/// refused, as libwebrtc refuses it.
#[test]
fn draft_run_length_example_2_uses_the_reserved_symbol() {
    let chunk = PacketStatusChunk(0x6018);
    assert_eq!(chunk.symbol_count(), 24);
    assert_eq!(chunk.raw_symbol(0), 3);
    assert_eq!(chunk.symbol(0), None);
    let bytes = feedback(0, 24, 0, &[0x60, 0x18]);
    assert_eq!(
        parse(&bytes).unwrap_err(),
        Error::InvalidRtcp {
            packet: "transport-wide CC feedback",
            offset: 0,
            reason: "run length chunk repeats the reserved symbol 11"
        }
    );
}

/// §3.1.4 Example 1: `1|0|01111100011100`: 1 not received, 5 received,
/// 3 not, 3 received, 2 not (1 is "received", as in the example).
#[test]
fn draft_status_vector_example_1() {
    let chunk = PacketStatusChunk(0x9F1C);
    assert!(!chunk.is_run_length() && !chunk.is_two_bit_vector());
    assert_eq!(chunk.symbol_count(), 14);
    let (n, s) = (StatusSymbol::NotReceived, StatusSymbol::SmallDelta);
    let expected = [n, s, s, s, s, s, n, n, n, s, s, s, n, n];
    let bytes = feedback(7, 14, 0, &[0x9F, 0x1C, 1, 2, 3, 4, 5, 6, 7, 8]);
    let t = parse(&bytes).unwrap();
    assert_eq!(statuses(&t), expected);
    let arrivals: Vec<Option<i64>> = t.packets().map(|p| p.arrival_us).collect();
    assert_eq!(
        arrivals,
        [
            None,
            Some(250),
            Some(750),
            Some(1500),
            Some(2500),
            Some(3750),
            None,
            None,
            None,
            Some(5250),
            Some(7000),
            Some(9000),
            None,
            None
        ]
    );
}

/// §3.1.4 Example 2 (`1|1|00 11 01 01 01 00 00`) holds the reserved
/// symbol too.
#[test]
fn draft_status_vector_example_2_uses_the_reserved_symbol() {
    let chunk = PacketStatusChunk(0xCD50);
    assert!(chunk.is_two_bit_vector());
    assert_eq!(chunk.symbol(0), Some(StatusSymbol::NotReceived));
    assert_eq!(chunk.symbol(1), None);
    assert_eq!(chunk.symbol(2), Some(StatusSymbol::SmallDelta));
    let bytes = feedback(0, 7, 0, &[0xCD, 0x50, 1, 2, 3]);
    assert!(matches!(parse(&bytes), Err(Error::InvalidRtcp { .. })));
    // Reserved symbols past the status count are not looked at.
    let bytes = feedback(0, 1, 0, &[0xCD, 0x50]);
    assert_eq!(statuses(&parse(&bytes).unwrap()), [StatusSymbol::NotReceived]);
}

/// Worked by hand: packets 10 and 12 arrive at 65 ms and 66 ms; 11 is
/// missing. Reference time 1 (64 ms), deltas 4 and 4 ticks of 250 µs,
/// one 1-bit vector `1|0|10100000000000`.
#[test]
fn hand_computed_feedback() {
    let received = [(10u16, 65_000i64), (12, 66_000)];
    let b = TransportFeedbackBuilder {
        sender_ssrc: 1,
        media_ssrc: 2,
        fb_pkt_count: 3,
        base_seq: None,
        received: &received,
    };
    let mut buf = [0u8; 64];
    let n = b.encode(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        hex("8f cd 00 05 00 00 00 01 00 00 00 02 00 0a 00 03 00 00 01 03 a8 00 04 04")
    );
    let t = parse(&buf[..n]).unwrap();
    assert_eq!(
        (t.base_seq, t.status_count, t.reference_time, t.fb_pkt_count),
        (10, 3, 1, 3)
    );
    assert_eq!(t.reference_time_us(), 64_000);
    let packets: Vec<TwccPacket> = t.packets().collect();
    assert_eq!(
        packets,
        [
            TwccPacket {
                seq: 10,
                status: StatusSymbol::SmallDelta,
                recv_delta: Some(4),
                arrival_us: Some(65_000)
            },
            TwccPacket {
                seq: 11,
                status: StatusSymbol::NotReceived,
                recv_delta: None,
                arrival_us: None
            },
            TwccPacket {
                seq: 12,
                status: StatusSymbol::SmallDelta,
                recv_delta: Some(4),
                arrival_us: Some(66_000)
            },
        ]
    );
}

#[test]
fn padding_uses_the_p_bit_and_parses_either_way() {
    let received = [(5u16, 0i64)];
    let b = TransportFeedbackBuilder {
        received: &received,
        ..Default::default()
    };
    let mut buf = [0u8; 64];
    let n = b.encode(&mut buf).unwrap();
    // 20 + 2 (chunk) + 1 (delta) = 23, padded by 1.
    assert_eq!(n, 24);
    assert_eq!(buf[0], 0xAF);
    assert_eq!(buf[23], 1);
    assert_eq!(parse(&buf[..n]).unwrap().packets().count(), 1);
    // The draft's figure pads with zeros instead, no P bit.
    buf[0] = 0x8F;
    buf[23] = 0;
    assert_eq!(parse(&buf[..n]).unwrap().packets().count(), 1);
}

#[test]
fn leading_losses_long_runs_and_run_splitting() {
    // base_seq before the first received packet reports the gap as lost;
    // 9000 lost packets need two run length chunks (13-bit runs).
    let received = [(65000u16, 1_000_000i64), (65000u16.wrapping_add(9001), 1_050_000)];
    let b = TransportFeedbackBuilder {
        base_seq: Some(64990),
        received: &received,
        ..Default::default()
    };
    let mut buf = [0u8; 128];
    let n = b.encode(&mut buf).unwrap();
    let t = parse(&buf[..n]).unwrap();
    assert_eq!(t.base_seq, 64990);
    assert_eq!(usize::from(t.status_count), 10 + 9002);
    let chunks: Vec<PacketStatusChunk> = t.chunks().collect();
    assert_eq!(chunks.iter().map(|c| c.symbol_count()).sum::<usize>(), 10 + 9002);
    assert!(chunks.len() <= 5, "{chunks:?}");
    let got: Vec<(u16, i64)> = t.packets().filter_map(|p| Some((p.seq, p.arrival_us?))).collect();
    assert_eq!(got, received);
}

#[test]
fn builder_errors() {
    let mut buf = [0u8; 256];
    let empty = TransportFeedbackBuilder::default();
    assert!(matches!(empty.encode(&mut buf), Err(Error::InvalidInput { .. })));
    assert_eq!(empty.encoded_len(), 0);
    let unsorted = [(5u16, 0i64), (4, 0)];
    let b = TransportFeedbackBuilder {
        received: &unsorted,
        ..Default::default()
    };
    assert!(matches!(b.encode(&mut buf), Err(Error::InvalidInput { .. })));
    let dup = [(5u16, 0i64), (5, 0)];
    let b = TransportFeedbackBuilder {
        received: &dup,
        ..Default::default()
    };
    assert!(matches!(b.encode(&mut buf), Err(Error::InvalidInput { .. })));
    // 8191.75 ms is the largest delta; 8192 ms is not.
    let ok = [(1u16, 0i64), (2, 8_191_750), (3, 0)];
    let b = TransportFeedbackBuilder {
        received: &ok,
        ..Default::default()
    };
    let n = b.encode(&mut buf).unwrap();
    let t = parse(&buf[..n]).unwrap();
    let deltas: Vec<i16> = t.packets().filter_map(|p| p.recv_delta).collect();
    assert_eq!(deltas, [0, 32767, -32767]);
    let far = [(1u16, 0i64), (2, 8_192_000)];
    let b = TransportFeedbackBuilder {
        received: &far,
        ..Default::default()
    };
    assert_eq!(
        b.encode(&mut buf),
        Err(Error::TwccDeltaOutOfRange {
            seq: 2,
            delta_us: 8_192_000
        })
    );
    let back = [(1u16, 10_000_000i64), (2, 1_000_000)];
    let b = TransportFeedbackBuilder {
        received: &back,
        ..Default::default()
    };
    assert!(matches!(
        b.encode(&mut buf),
        Err(Error::TwccDeltaOutOfRange { seq: 2, .. })
    ));
    // A span of 65536 numbers does not fit the 16-bit status count.
    let span = [(1u16, 0i64), (30_000, 0), (60_000, 0), (0, 0)];
    let b = TransportFeedbackBuilder {
        base_seq: Some(1),
        received: &span,
        ..Default::default()
    };
    assert!(matches!(b.encode(&mut buf), Err(Error::TooMany { .. })));
    let ok = [(1u16, 0i64)];
    let b = TransportFeedbackBuilder {
        received: &ok,
        ..Default::default()
    };
    assert_eq!(
        b.encode(&mut [0u8; 23]),
        Err(Error::BufferTooSmall {
            needed: 24,
            available: 23
        })
    );
}

#[test]
fn malformed_feedback_is_an_error() {
    // Status count 20 but one chunk of 14.
    let bytes = feedback(0, 20, 0, &[0x80, 0x00]);
    assert!(matches!(parse(&bytes), Err(Error::InvalidRtcp { .. })));
    // Three large deltas (6 bytes) called for, 4 present.
    let bytes = feedback(0, 3, 0, &[0x40, 0x03, 1, 2]);
    assert!(matches!(parse(&bytes), Err(Error::RtcpTruncated { .. })));
    // A feedback reporting nothing is well-formed.
    let bytes = feedback(9, 0, 0, &[]);
    let t = parse(&bytes).unwrap();
    assert_eq!(t.packets().count(), 0);
    // Negative reference time, sign-extended from 24 bits.
    let bytes = feedback(0, 1, 0xFF_FFFF, &[0x20, 0x01, 0x04]);
    let t = parse(&bytes).unwrap();
    assert_eq!(t.reference_time, -1);
    assert_eq!(t.packets().next().unwrap().arrival_us, Some(-64_000 + 1_000));
}

#[test]
fn reference_time_wraps_at_24_bits() {
    const WRAP_US: i64 = (1 << 24) * 64_000;
    let received = [(1u16, WRAP_US + 128_000), (2, WRAP_US + 130_000)];
    let b = TransportFeedbackBuilder {
        received: &received,
        ..Default::default()
    };
    let mut buf = [0u8; 64];
    let n = b.encode(&mut buf).unwrap();
    let t = parse(&buf[..n]).unwrap();
    assert_eq!(t.reference_time, 2);
    let got: Vec<i64> = t.packets().filter_map(|p| p.arrival_us).collect();
    assert_eq!(got, [128_000, 130_000]);
}

/// (seq gap, arrival step in µs) pairs: mostly in-order small steps, with
/// losses, reordering (negative steps) and steps needing large deltas.
fn pattern() -> impl Strategy<Value = (u16, i64, Vec<(u16, i64)>)> {
    let step = prop_oneof![
        6 => 0i64..20_000,
        2 => 20_000i64..8_000_000,
        2 => -8_000_000i64..0,
    ];
    let gap = prop_oneof![8 => Just(1u16), 2 => 2u16..20, 1 => 20u16..3000];
    (
        any::<u16>(),
        -(1i64 << 40)..(1i64 << 40),
        proptest::collection::vec((gap, step), 0..300),
    )
}

proptest! {
    #[test]
    fn random_arrival_patterns_round_trip((start, t0, steps) in pattern(), fb in any::<u8>(), lead in 0u16..50) {
        let mut received = vec![(start, t0)];
        let mut offset = 0u32;
        for (gap, step) in steps {
            // The status count is 16 bits: stop before it would overflow.
            if offset + u32::from(gap) + u32::from(lead) >= 65_535 {
                break;
            }
            offset += u32::from(gap);
            let (_, prev) = *received.last().unwrap();
            received.push((start.wrapping_add(offset as u16), prev + step));
        }
        let base = start.wrapping_sub(lead);
        let b = TransportFeedbackBuilder {
            sender_ssrc: 7, media_ssrc: 8, fb_pkt_count: fb, base_seq: Some(base), received: &received,
        };
        let mut buf = vec![0u8; b.encoded_len()];
        let n = b.encode(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let t = parse(&buf).unwrap();
        prop_assert_eq!(t.base_seq, base);
        prop_assert_eq!(t.fb_pkt_count, fb);
        prop_assert_eq!(usize::from(t.status_count), usize::from(lead) + offset as usize + 1);
        // Every reported packet: received ones with their arrival time
        // rounded to 250 µs (modulo the 24-bit reference), others not.
        const WRAP_US: i64 = (1 << 24) * 64_000;
        let mut expect = received.iter().peekable();
        for p in t.packets() {
            match expect.peek() {
                Some(&&(seq, us)) if seq == p.seq => {
                    expect.next();
                    let rounded = (us + 125).div_euclid(250) * 250;
                    let got = p.arrival_us.unwrap();
                    prop_assert_eq!((got - rounded).rem_euclid(WRAP_US), 0, "seq {}", seq);
                    prop_assert_ne!(p.status, StatusSymbol::NotReceived);
                }
                _ => {
                    prop_assert_eq!(p.status, StatusSymbol::NotReceived);
                    prop_assert_eq!(p.arrival_us, None);
                }
            }
        }
        prop_assert!(expect.next().is_none());
        // The chunks are no longer than the statuses need.
        let symbols: usize = t.chunks().map(|c| c.symbol_count()).sum();
        prop_assert!(symbols >= usize::from(t.status_count));
        prop_assert!(symbols < usize::from(t.status_count) + 14);
    }

    #[test]
    fn arbitrary_fci_never_panics(base in any::<u16>(), count in any::<u16>(), reference in 0u32..(1 << 24),
                                  rest in proptest::collection::vec(any::<u8>(), 0..200)) {
        let bytes = feedback(base, count, reference, &rest);
        if let Ok(t) = parse(&bytes) {
            prop_assert_eq!(t.packets().count(), usize::from(count));
            let _ = t.chunks().count();
        }
    }
}
