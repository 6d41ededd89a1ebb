//! RTCP: byte layouts from RFC 3550, RFC 4585, RFC 5104, RFC 3611 and
//! the REMB draft; build → parse round trips for every packet type;
//! compound and reduced-size framing; NACK packing; typed errors; and
//! property tests that hostile bytes never panic.

use natter_rtp::rtcp::*;
use natter_rtp::Error;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn build(p: &dyn RtcpEncode) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = p.encode(&mut buf).unwrap();
    assert_eq!(n, p.encoded_len());
    assert_eq!(n % 4, 0);
    buf.truncate(n);
    buf
}

/// Parses a datagram holding exactly one packet.
fn single(bytes: &[u8]) -> RtcpPacket<'_> {
    let c = Compound::parse(bytes).unwrap();
    let mut it = c.packets();
    let p = it.next().unwrap().unwrap();
    assert!(it.next().is_none());
    p
}

const BLOCK: ReportBlock = ReportBlock {
    ssrc: 0x0203_0405,
    fraction_lost: 0x10,
    cumulative_lost: -2,
    extended_highest_seq: 0x0001_0203,
    jitter: 0x11,
    last_sr: 0x1234_5678,
    delay_since_last_sr: 0x0001_8000,
};

/// RFC 3550 §6.4.1: header, sender info, one report block.
#[test]
fn sender_report_layout() {
    let sr = SenderReportBuilder {
        ssrc: 0xAABB_CCDD,
        sender_info: SenderInfo {
            ntp_timestamp: 0x0102_0304_0506_0708,
            rtp_timestamp: 0x0909_0909,
            packet_count: 3,
            octet_count: 300,
        },
        report_blocks: &[BLOCK],
        profile_extension: &[],
    };
    let bytes = build(&sr);
    let expected = hex("81 c8 00 0c aa bb cc dd 01 02 03 04 05 06 07 08 09 09 09 09
                        00 00 00 03 00 00 01 2c
                        02 03 04 05 10 ff ff fe 00 01 02 03 00 00 00 11 12 34 56 78 00 01 80 00");
    assert_eq!(bytes, expected);
    let RtcpPacket::SenderReport(p) = single(&bytes) else {
        panic!()
    };
    assert_eq!(p.ssrc, 0xAABB_CCDD);
    assert_eq!(p.sender_info, sr.sender_info);
    assert_eq!(p.report_blocks().collect::<Vec<_>>(), [BLOCK]);
    assert!(p.profile_extension.is_empty());
}

/// RFC 3550 §6.4.2: an empty RR is 8 bytes.
#[test]
fn empty_receiver_report_layout() {
    let bytes = build(&ReceiverReportBuilder {
        ssrc: 1,
        ..Default::default()
    });
    assert_eq!(bytes, hex("80 c9 00 01 00 00 00 01"));
}

/// RFC 3550 §6.5.1: SSRC, CNAME item, a null octet ending the list, and
/// nulls to the 32-bit boundary.
#[test]
fn sdes_cname_layout() {
    let bytes = build(&Cname {
        ssrc: 0x1234_5678,
        cname: "ab",
    });
    assert_eq!(bytes, hex("81 ca 00 03 12 34 56 78 01 02 61 62 00 00 00 00"));
    // An item list ending on a boundary still needs a null word.
    let bytes = build(&Cname {
        ssrc: 1,
        cname: "abcdef",
    });
    assert_eq!(
        bytes,
        hex("81 ca 00 04 00 00 00 01 01 06 61 62 63 64 65 66 00 00 00 00")
    );
    let RtcpPacket::Sdes(s) = single(&bytes) else { panic!() };
    let chunk = s.chunks().next().unwrap();
    assert_eq!(chunk.ssrc, 1);
    assert_eq!(chunk.cname(), Some(&b"abcdef"[..]));
}

/// RFC 3550 §6.6: SSRCs, then length and reason, padded.
#[test]
fn bye_layout() {
    let bytes = build(&ByeBuilder {
        ssrcs: &[5, 6],
        reason: Some(b"bye"),
    });
    assert_eq!(bytes, hex("82 cb 00 03 00 00 00 05 00 00 00 06 03 62 79 65"));
    let RtcpPacket::Bye(b) = single(&bytes) else { panic!() };
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), [5, 6]);
    assert_eq!(b.reason, Some(&b"bye"[..]));
    let bytes = build(&ByeBuilder {
        ssrcs: &[5],
        reason: None,
    });
    assert_eq!(bytes, hex("81 cb 00 01 00 00 00 05"));
}

/// RFC 3550 §6.7.
#[test]
fn app_layout() {
    let app = App {
        subtype: 1,
        ssrc: 2,
        name: *b"TEST",
        data: &[9, 9, 9, 9],
    };
    let bytes = build(&app);
    assert_eq!(bytes, hex("81 cc 00 03 00 00 00 02 54 45 53 54 09 09 09 09"));
    assert_eq!(single(&bytes), RtcpPacket::App(app));
}

/// RFC 4585 §6.2.1: PID 100 and BLP 0x8011 mean 100, 101, 105 and 116.
#[test]
fn nack_layout() {
    let lost = [100, 101, 105, 116, 200];
    let bytes = build(&NackBuilder::from_lost(1, 2, &lost));
    assert_eq!(
        bytes,
        hex("81 cd 00 04 00 00 00 01 00 00 00 02 00 64 80 11 00 c8 00 00")
    );
    let RtcpPacket::Nack(n) = single(&bytes) else { panic!() };
    assert_eq!((n.sender_ssrc, n.media_ssrc), (1, 2));
    assert_eq!(
        n.items().collect::<Vec<_>>(),
        [NackItem { pid: 100, blp: 0x8011 }, NackItem { pid: 200, blp: 0 }]
    );
    assert_eq!(n.lost().collect::<Vec<_>>(), lost);
    let items = [NackItem { pid: 100, blp: 0x8011 }, NackItem { pid: 200, blp: 0 }];
    assert_eq!(build(&NackBuilder::from_items(1, 2, &items)), bytes);
}

/// RFC 4585 §6.3.1: PLI has no FCI.
#[test]
fn pli_layout() {
    let pli = Pli {
        sender_ssrc: 1,
        media_ssrc: 2,
    };
    let bytes = build(&pli);
    assert_eq!(bytes, hex("81 ce 00 02 00 00 00 01 00 00 00 02"));
    assert_eq!(single(&bytes), RtcpPacket::Pli(pli));
}

/// RFC 5104 §4.3.1: media source 0, then SSRC, Seq nr and 24 reserved bits.
#[test]
fn fir_layout() {
    let entries = [FirEntry {
        ssrc: 0x0A0B_0C0D,
        seq_nr: 7,
    }];
    let bytes = build(&FirBuilder {
        sender_ssrc: 1,
        entries: &entries,
    });
    assert_eq!(
        bytes,
        hex("84 ce 00 04 00 00 00 01 00 00 00 00 0a 0b 0c 0d 07 00 00 00")
    );
    let RtcpPacket::Fir(f) = single(&bytes) else { panic!() };
    assert_eq!(f.entries().collect::<Vec<_>>(), entries);
}

/// draft-alvestrand-rmcat-remb-03 §2.2: "REMB", Num SSRC, BR Exp (6
/// bits) and BR Mantissa (18 bits), SSRC list.
#[test]
fn remb_layout() {
    let bytes = build(&RembBuilder {
        sender_ssrc: 1,
        bitrate_bps: 2_500_000,
        ssrcs: &[0x0A0B_0C0D],
    });
    // 2 500 000 = 156 250 × 2^4.
    assert_eq!(
        bytes,
        hex("8f ce 00 05 00 00 00 01 00 00 00 00 52 45 4d 42 01 12 62 5a 0a 0b 0c 0d")
    );
    let RtcpPacket::Remb(r) = single(&bytes) else { panic!() };
    assert_eq!((r.exponent, r.mantissa), (4, 156_250));
    assert_eq!(r.bitrate_bps(), 2_500_000);
    assert_eq!(r.ssrcs().collect::<Vec<_>>(), [0x0A0B_0C0D]);
    // A PSFB FMT=15 packet of another application is left untyped.
    let mut other = bytes.clone();
    other[12..16].copy_from_slice(b"XXXX");
    assert!(matches!(single(&other), RtcpPacket::Other(raw) if raw.packet_type == 206 && raw.count == 15));
}

#[test]
fn remb_exponent_and_mantissa() {
    assert_eq!(RembBuilder::exponent_mantissa(0), (0, 0));
    assert_eq!(RembBuilder::exponent_mantissa(262_143), (0, 262_143));
    assert_eq!(RembBuilder::exponent_mantissa(262_144), (1, 131_072));
    assert_eq!(RembBuilder::exponent_mantissa(u64::MAX), (46, 262_143));
}

/// RFC 3611 §4.4 and §4.5: RRTR (BT=4, length 2) and DLRR (BT=5,
/// length 3 per sub-block).
#[test]
fn xr_layout() {
    let dlrr = [DlrrItem {
        ssrc: 2,
        last_rr: 3,
        delay_since_last_rr: 4,
    }];
    let reports = [
        XrReport::Rrtr {
            ntp_timestamp: 0x0102_0304_0506_0708,
        },
        XrReport::Dlrr(&dlrr),
    ];
    let bytes = build(&ExtendedReportBuilder {
        ssrc: 1,
        reports: &reports,
    });
    assert_eq!(
        bytes,
        hex("80 cf 00 08 00 00 00 01
             04 00 00 02 01 02 03 04 05 06 07 08
             05 00 00 03 00 00 00 02 00 00 00 03 00 00 00 04")
    );
    let RtcpPacket::ExtendedReport(x) = single(&bytes) else {
        panic!()
    };
    let blocks: Vec<_> = x.blocks().collect();
    assert_eq!(
        blocks[0],
        XrBlock::Rrtr {
            ntp_timestamp: 0x0102_0304_0506_0708
        }
    );
    let XrBlock::Dlrr(d) = blocks[1] else { panic!() };
    assert_eq!(d.items().collect::<Vec<_>>(), dlrr);
}

#[test]
fn compound_walks_every_packet_and_spots_reduced_size() {
    let mut buf = [0u8; 512];
    let mut w = CompoundWriter::new(&mut buf);
    w.add(&ReceiverReportBuilder {
        ssrc: 1,
        report_blocks: &[BLOCK],
        ..Default::default()
    })
    .unwrap();
    w.add(&Cname { ssrc: 1, cname: "c" }).unwrap();
    w.add(&Pli {
        sender_ssrc: 1,
        media_ssrc: 2,
    })
    .unwrap();
    w.add(&ByeBuilder {
        ssrcs: &[1],
        reason: None,
    })
    .unwrap();
    let n = w.finish();
    let c = Compound::parse(&buf[..n]).unwrap();
    assert!(!c.is_reduced_size());
    let types: Vec<u8> = c.raw_packets().map(|r| r.packet_type).collect();
    assert_eq!(types, [201, 202, 206, 203]);
    let offsets: Vec<usize> = c.raw_packets().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 32, 44, 56]);
    assert!(c.packets().all(|p| p.is_ok()));
    assert!(is_rtcp(&buf[..n]));
    assert!(!is_rtcp(&[0x80, 96, 0, 1]));

    let mut one = [0u8; 12];
    Pli {
        sender_ssrc: 1,
        media_ssrc: 2,
    }
    .encode(&mut one)
    .unwrap();
    assert!(Compound::parse(&one).unwrap().is_reduced_size());
}

#[test]
fn compound_writer_reports_the_total_needed() {
    let mut buf = [0u8; 20];
    let mut w = CompoundWriter::new(&mut buf);
    w.add(&Pli::default()).unwrap();
    assert_eq!(
        w.add(&Pli::default()),
        Err(Error::BufferTooSmall {
            needed: 24,
            available: 20
        })
    );
    assert_eq!(w.len(), 12);
}

/// RFC 3550 §6.4.1: padding counts itself and sits in the length.
#[test]
fn padding_is_stripped_and_checked() {
    let padded = hex("a1 ce 00 03 00 00 00 01 00 00 00 02 00 00 00 04");
    let raw = Compound::parse(&padded).unwrap().raw_packets().next().unwrap();
    assert!(raw.padding);
    assert_eq!(raw.body.len(), 8);
    assert_eq!(
        single(&padded),
        RtcpPacket::Pli(Pli {
            sender_ssrc: 1,
            media_ssrc: 2
        })
    );
    let bad = hex("a1 ce 00 02 00 00 00 01 00 00 00 09");
    assert_eq!(
        Compound::parse(&bad),
        Err(Error::RtcpPadding {
            offset: 0,
            count: 9,
            len: 12
        })
    );
    let zero = hex("a1 ce 00 02 00 00 00 01 00 00 00 00");
    assert!(matches!(
        Compound::parse(&zero),
        Err(Error::RtcpPadding { count: 0, .. })
    ));
}

#[test]
fn framing_errors_name_the_offset() {
    let mut two = hex("80 c9 00 01 00 00 00 01");
    two.extend_from_slice(&hex("40 c9 00 01 00 00 00 01"));
    assert_eq!(Compound::parse(&two), Err(Error::RtcpVersion { offset: 8, version: 1 }));
    let mut long = hex("80 c9 00 01 00 00 00 01");
    long.extend_from_slice(&hex("81 c9 00 07 00 00 00 01"));
    assert_eq!(
        Compound::parse(&long),
        Err(Error::RtcpLengthOverrun {
            offset: 8,
            declared: 32,
            available: 8
        })
    );
    assert_eq!(
        Compound::parse(&hex("80 c9 00 01 00 00 00 01 80 c9")),
        Err(Error::RtcpTooShort {
            offset: 8,
            available: 2
        })
    );
    assert_eq!(
        Compound::parse(&[]),
        Err(Error::RtcpTooShort {
            offset: 0,
            available: 0
        })
    );
    let e = Error::RtcpLengthOverrun {
        offset: 8,
        declared: 32,
        available: 8,
    };
    assert_eq!(
        e.to_string(),
        "RTCP packet at byte 8 declares 32 bytes but 8 bytes are left"
    );
}

#[test]
fn body_errors_are_typed_and_do_not_stop_the_walk() {
    // RR claiming 1 report block with none present, then a valid PLI.
    let mut d = hex("81 c9 00 01 00 00 00 01");
    d.extend_from_slice(&hex("81 ce 00 02 00 00 00 01 00 00 00 02"));
    let c = Compound::parse(&d).unwrap();
    let results: Vec<_> = c.packets().collect();
    assert_eq!(
        results[0],
        Err(Error::RtcpTruncated {
            packet: "receiver report",
            offset: 0,
            needed: 32,
            len: 8
        })
    );
    assert!(matches!(results[1], Ok(RtcpPacket::Pli(_))));

    let sdes_unterminated = hex("81 ca 00 02 00 00 00 01 01 02 61 62");
    assert_eq!(
        single_err(&sdes_unterminated),
        Error::InvalidRtcp {
            packet: "SDES",
            offset: 0,
            reason: "chunk has no terminating null item"
        }
    );
    let bye_reason = hex("81 cb 00 02 00 00 00 01 09 61 62 63");
    assert!(matches!(
        single_err(&bye_reason),
        Error::InvalidRtcp { packet: "BYE", .. }
    ));
    let nack_empty = hex("81 cd 00 02 00 00 00 01 00 00 00 02");
    assert!(matches!(
        single_err(&nack_empty),
        Error::RtcpTruncated {
            packet: "generic NACK",
            ..
        }
    ));
    let xr_rrtr = hex("80 cf 00 03 00 00 00 01 04 00 00 01 00 00 00 00");
    assert_eq!(
        single_err(&xr_rrtr),
        Error::InvalidRtcp {
            packet: "XR",
            offset: 0,
            reason: "RRTR block length is not 2"
        }
    );
    let remb_short = hex("8f ce 00 05 00 00 00 01 00 00 00 00 52 45 4d 42 02 12 62 5a 0a 0b 0c 0d");
    assert!(matches!(
        single_err(&remb_short),
        Error::RtcpTruncated { packet: "REMB", .. }
    ));
}

fn single_err(bytes: &[u8]) -> Error {
    Compound::parse(bytes).unwrap().packets().next().unwrap().unwrap_err()
}

#[test]
fn builders_refuse_what_fields_cannot_count() {
    let blocks = [BLOCK; 32];
    let rr = ReceiverReportBuilder {
        ssrc: 1,
        report_blocks: &blocks,
        profile_extension: &[],
    };
    assert_eq!(
        rr.encode(&mut [0u8; 2048]),
        Err(Error::TooMany {
            what: "report blocks",
            count: 32,
            max: 31
        })
    );
    let long = [b'x'; 256];
    let bye = ByeBuilder {
        ssrcs: &[1],
        reason: Some(&long),
    };
    assert!(matches!(bye.encode(&mut [0u8; 512]), Err(Error::TooMany { .. })));
    let items = [SdesItem {
        kind: SdesItemType::NOTE,
        value: &long,
    }];
    let chunks = [SdesChunkBuilder { ssrc: 1, items: &items }];
    assert!(SdesBuilder { chunks: &chunks }.encode(&mut [0u8; 512]).is_err());
    let app = App {
        subtype: 0,
        ssrc: 1,
        name: *b"ABCD",
        data: &[1, 2, 3],
    };
    assert!(app.encode(&mut [0u8; 64]).is_err());
    assert!(NackBuilder::from_lost(1, 2, &[]).encode(&mut [0u8; 64]).is_err());
    assert!(FirBuilder {
        sender_ssrc: 1,
        entries: &[]
    }
    .encode(&mut [0u8; 64])
    .is_err());
    assert_eq!(
        Pli::default().encode(&mut [0u8; 11]),
        Err(Error::BufferTooSmall {
            needed: 12,
            available: 11
        })
    );
}

#[test]
fn report_block_cumulative_lost_is_24_bit_signed_and_clamped() {
    for (lost, back) in [
        (-1, -1),
        (0x7F_FFFF, 0x7F_FFFF),
        (0x100_0000, 0x7F_FFFF),
        (-0x100_0000, -0x80_0000),
    ] {
        let b = ReportBlock {
            cumulative_lost: lost,
            ..BLOCK
        };
        let bytes = build(&ReceiverReportBuilder {
            ssrc: 1,
            report_blocks: &[b],
            profile_extension: &[],
        });
        let RtcpPacket::ReceiverReport(rr) = single(&bytes) else {
            panic!()
        };
        assert_eq!(rr.report_blocks().next().unwrap().cumulative_lost, back);
    }
}

fn report_block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..0x80_0000,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, ehs, jitter, last_sr, dlsr)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                extended_highest_seq: ehs,
                jitter,
                last_sr,
                delay_since_last_sr: dlsr,
            },
        )
}

fn words() -> impl Strategy<Value = Vec<u8>> {
    (0usize..4).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), 4 * n))
}

proptest! {
    #[test]
    fn sr_and_rr_round_trip(
        ssrc in any::<u32>(), ntp in any::<u64>(), rtp in any::<u32>(), pc in any::<u32>(), oc in any::<u32>(),
        blocks in proptest::collection::vec(report_block(), 0..=31), ext in words(),
    ) {
        let info = SenderInfo { ntp_timestamp: ntp, rtp_timestamp: rtp, packet_count: pc, octet_count: oc };
        let bytes = build(&SenderReportBuilder { ssrc, sender_info: info, report_blocks: &blocks, profile_extension: &ext });
        let RtcpPacket::SenderReport(sr) = single(&bytes) else { panic!() };
        prop_assert_eq!(sr.ssrc, ssrc);
        prop_assert_eq!(sr.sender_info, info);
        prop_assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks.clone());
        prop_assert_eq!(sr.profile_extension, &ext[..]);
        let bytes = build(&ReceiverReportBuilder { ssrc, report_blocks: &blocks, profile_extension: &ext });
        let RtcpPacket::ReceiverReport(rr) = single(&bytes) else { panic!() };
        prop_assert_eq!(rr.ssrc, ssrc);
        prop_assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks);
        prop_assert_eq!(rr.profile_extension, &ext[..]);
    }

    #[test]
    fn sdes_round_trips(
        chunks in proptest::collection::vec(
            (any::<u32>(), proptest::collection::vec((1u8..=8, proptest::collection::vec(any::<u8>(), 0..40)), 0..5)),
            0..=31),
    ) {
        let items: Vec<Vec<SdesItem>> = chunks.iter()
            .map(|(_, items)| items.iter().map(|(k, v)| SdesItem { kind: SdesItemType(*k), value: v }).collect())
            .collect();
        let builders: Vec<SdesChunkBuilder> = chunks.iter().zip(&items)
            .map(|((ssrc, _), items)| SdesChunkBuilder { ssrc: *ssrc, items })
            .collect();
        let bytes = build(&SdesBuilder { chunks: &builders });
        let RtcpPacket::Sdes(s) = single(&bytes) else { panic!() };
        let got: Vec<(u32, Vec<SdesItem>)> = s.chunks().map(|c| (c.ssrc, c.items().collect())).collect();
        let want: Vec<(u32, Vec<SdesItem>)> = builders.iter().map(|c| (c.ssrc, c.items.to_vec())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn bye_and_app_round_trip(
        ssrcs in proptest::collection::vec(any::<u32>(), 0..=31),
        reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=255)),
        subtype in 0u8..32, name in any::<[u8; 4]>(), data in words(),
    ) {
        let bytes = build(&ByeBuilder { ssrcs: &ssrcs, reason: reason.as_deref() });
        let RtcpPacket::Bye(b) = single(&bytes) else { panic!() };
        prop_assert_eq!(b.ssrcs().collect::<Vec<_>>(), ssrcs.clone());
        prop_assert_eq!(b.reason, reason.as_deref());
        let app = App { subtype, ssrc: ssrcs.first().copied().unwrap_or(0), name, data: &data };
        let bytes = build(&app);
        prop_assert_eq!(single(&bytes), RtcpPacket::App(app));
    }

    #[test]
    fn feedback_round_trips(
        sender in any::<u32>(), media in any::<u32>(),
        items in proptest::collection::vec(any::<(u16, u16)>(), 1..50),
        fir in proptest::collection::vec(any::<(u32, u8)>(), 1..20),
        bitrate in any::<u64>(), remb_ssrcs in proptest::collection::vec(any::<u32>(), 0..=255),
    ) {
        let items: Vec<NackItem> = items.into_iter().map(|(pid, blp)| NackItem { pid, blp }).collect();
        let bytes = build(&NackBuilder::from_items(sender, media, &items));
        let RtcpPacket::Nack(n) = single(&bytes) else { panic!() };
        prop_assert_eq!((n.sender_ssrc, n.media_ssrc), (sender, media));
        prop_assert_eq!(n.items().collect::<Vec<_>>(), items.clone());
        let flat: Vec<u16> = items.iter().flat_map(|i| i.lost()).collect();
        prop_assert_eq!(n.lost().collect::<Vec<_>>(), flat);

        let pli = Pli { sender_ssrc: sender, media_ssrc: media };
        let bytes = build(&pli);
        prop_assert_eq!(single(&bytes), RtcpPacket::Pli(pli));

        let entries: Vec<FirEntry> = fir.into_iter().map(|(ssrc, seq_nr)| FirEntry { ssrc, seq_nr }).collect();
        let bytes = build(&FirBuilder { sender_ssrc: sender, entries: &entries });
        let RtcpPacket::Fir(f) = single(&bytes) else { panic!() };
        prop_assert_eq!(f.sender_ssrc, sender);
        prop_assert_eq!(f.media_ssrc, 0);
        prop_assert_eq!(f.entries().collect::<Vec<_>>(), entries);

        let bytes = build(&RembBuilder { sender_ssrc: sender, bitrate_bps: bitrate, ssrcs: &remb_ssrcs });
        let RtcpPacket::Remb(r) = single(&bytes) else { panic!() };
        let got = r.bitrate_bps();
        // Rounded down, by less than one part in 2^17.
        prop_assert!(got <= bitrate && bitrate - got <= bitrate >> 17, "{} -> {}", bitrate, got);
        prop_assert_eq!(r.ssrcs().collect::<Vec<_>>(), remb_ssrcs);
    }

    #[test]
    fn xr_round_trips(
        ssrc in any::<u32>(),
        rrtr in proptest::option::of(any::<u64>()),
        dlrr in proptest::collection::vec(any::<(u32, u32, u32)>(), 0..10),
    ) {
        let dlrr: Vec<DlrrItem> = dlrr.into_iter()
            .map(|(ssrc, last_rr, delay_since_last_rr)| DlrrItem { ssrc, last_rr, delay_since_last_rr })
            .collect();
        let mut reports = Vec::new();
        if let Some(ntp_timestamp) = rrtr {
            reports.push(XrReport::Rrtr { ntp_timestamp });
        }
        reports.push(XrReport::Dlrr(&dlrr));
        let bytes = build(&ExtendedReportBuilder { ssrc, reports: &reports });
        let RtcpPacket::ExtendedReport(x) = single(&bytes) else { panic!() };
        prop_assert_eq!(x.ssrc, ssrc);
        let mut blocks = x.blocks();
        if let Some(ntp_timestamp) = rrtr {
            prop_assert_eq!(blocks.next(), Some(XrBlock::Rrtr { ntp_timestamp }));
        }
        let Some(XrBlock::Dlrr(d)) = blocks.next() else { panic!() };
        prop_assert_eq!(d.items().collect::<Vec<_>>(), dlrr);
        prop_assert!(blocks.next().is_none());
    }

    /// Sorted, distinct lost numbers (wrapping through 0) pack into items
    /// that list exactly them, in order; any input is covered exactly.
    #[test]
    fn nack_items_list_exactly_the_lost_packets(
        start in any::<u16>(),
        gaps in proptest::collection::vec(1u16..40, 0..200),
        shuffled in proptest::collection::vec(any::<u16>(), 0..100),
    ) {
        let mut lost = vec![start];
        for g in gaps {
            let next = lost.last().unwrap().wrapping_add(g);
            lost.push(next);
        }
        let items: Vec<NackItem> = lost_to_nack_items(&lost).collect();
        let back: Vec<u16> = items.iter().flat_map(|i| i.lost()).collect();
        prop_assert_eq!(&back, &lost);
        // Greedy packing: each item starts at a lost packet more than 16 past the previous PID.
        for w in items.windows(2) {
            prop_assert!(w[1].pid.wrapping_sub(w[0].pid) > 16);
        }
        let mut want: Vec<u16> = shuffled.clone();
        want.sort_unstable();
        want.dedup();
        let mut got: Vec<u16> = lost_to_nack_items(&shuffled).flat_map(|i| i.lost()).collect();
        got.sort_unstable();
        got.dedup();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        walk(&data);
    }

    /// Valid framing around arbitrary bodies, so every typed parser runs.
    #[test]
    fn framed_garbage_never_panics(
        packets in proptest::collection::vec(
            (0u8..32, prop_oneof![200u8..=207, any::<u8>()], any::<bool>(), words(), proptest::collection::vec(any::<u8>(), 0..40)),
            1..5),
    ) {
        let mut data = Vec::new();
        for (count, pt, pad, extra, body) in packets {
            let mut body = body;
            body.extend_from_slice(&extra);
            body.resize(body.len().div_ceil(4) * 4, 0);
            if pad && !body.is_empty() {
                let n = body.len();
                body[n - 1] = (n as u8).clamp(1, 4);
            }
            data.push(0x80 | (u8::from(pad) << 5) | count);
            data.push(pt);
            data.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
            data.extend_from_slice(&body);
        }
        walk(&data);
    }
}

/// Walks every view and iterator of whatever parses.
fn walk(data: &[u8]) {
    let Ok(c) = Compound::parse(data) else { return };
    let _ = c.is_reduced_size();
    for p in c.packets() {
        match p {
            Ok(RtcpPacket::SenderReport(sr)) => {
                let _ = sr.report_blocks().count();
            }
            Ok(RtcpPacket::ReceiverReport(rr)) => {
                let _ = rr.report_blocks().count();
            }
            Ok(RtcpPacket::Sdes(s)) => {
                for chunk in s.chunks() {
                    let _ = chunk.items().count();
                }
            }
            Ok(RtcpPacket::Bye(b)) => {
                let _ = b.ssrcs().count();
            }
            Ok(RtcpPacket::Nack(n)) => {
                let _ = n.lost().count();
            }
            Ok(RtcpPacket::Fir(f)) => {
                let _ = f.entries().count();
            }
            Ok(RtcpPacket::Remb(r)) => {
                let _ = (r.bitrate_bps(), r.ssrcs().count());
            }
            Ok(RtcpPacket::TransportFeedback(t)) => {
                assert_eq!(t.packets().count(), usize::from(t.status_count));
                let _ = t.chunks().count();
            }
            Ok(RtcpPacket::ExtendedReport(x)) => {
                for b in x.blocks() {
                    if let XrBlock::Dlrr(d) = b {
                        let _ = d.items().count();
                    }
                }
            }
            _ => {}
        }
    }
}
