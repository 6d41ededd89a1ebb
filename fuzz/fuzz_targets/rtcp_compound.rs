//! The compound RTCP parser and every typed packet view: arbitrary bytes
//! give packets or errors, never a panic; every iterator is walked
//! (transport-wide CC statuses included) and what parses re-encodes
//! through natter's builders to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_rtp::rtcp::*;

const WRAP_US: i64 = (1 << 24) * 64_000;

fn encode(p: &dyn RtcpEncode) -> Vec<u8> {
    let mut buf = vec![0u8; p.encoded_len()];
    let n = p.encode(&mut buf).expect("a parsed packet re-encodes");
    assert_eq!(n, buf.len());
    buf
}

fn reparse(bytes: &[u8]) -> RtcpPacket<'_> {
    let c = Compound::parse(bytes).expect("re-encoded packet frames");
    let mut packets = c.packets();
    let p = packets.next().expect("one packet").expect("re-encoded packet parses");
    assert!(packets.next().is_none());
    p
}

fn check(packet: RtcpPacket<'_>) {
    match packet {
        RtcpPacket::SenderReport(sr) => {
            let blocks: Vec<ReportBlock> = sr.report_blocks().collect();
            let bytes = encode(&SenderReportBuilder {
                ssrc: sr.ssrc,
                sender_info: sr.sender_info,
                report_blocks: &blocks,
                profile_extension: &sr.profile_extension[..sr.profile_extension.len() / 4 * 4],
            });
            let RtcpPacket::SenderReport(again) = reparse(&bytes) else {
                panic!("type changed")
            };
            assert_eq!(again.sender_info, sr.sender_info);
            assert!(again.report_blocks().eq(blocks));
        }
        RtcpPacket::ReceiverReport(rr) => {
            let blocks: Vec<ReportBlock> = rr.report_blocks().collect();
            let bytes = encode(&ReceiverReportBuilder {
                ssrc: rr.ssrc,
                report_blocks: &blocks,
                profile_extension: &[],
            });
            let RtcpPacket::ReceiverReport(again) = reparse(&bytes) else {
                panic!("type changed")
            };
            assert!(again.report_blocks().eq(blocks));
        }
        RtcpPacket::Sdes(s) => {
            let items: Vec<Vec<SdesItem>> = s.chunks().map(|c| c.items().collect()).collect();
            let chunks: Vec<SdesChunkBuilder> = s
                .chunks()
                .zip(&items)
                .map(|(c, items)| SdesChunkBuilder { ssrc: c.ssrc, items })
                .collect();
            if chunks
                .iter()
                .all(|c| c.items.iter().all(|i| i.kind != SdesItemType::END))
            {
                let bytes = encode(&SdesBuilder { chunks: &chunks });
                let RtcpPacket::Sdes(again) = reparse(&bytes) else {
                    panic!("type changed")
                };
                for (a, b) in again.chunks().zip(s.chunks()) {
                    assert_eq!(a.ssrc, b.ssrc);
                    assert!(a.items().eq(b.items()));
                    let _ = a.cname();
                }
            }
        }
        RtcpPacket::Bye(b) => {
            let ssrcs: Vec<u32> = b.ssrcs().collect();
            let bytes = encode(&ByeBuilder {
                ssrcs: &ssrcs,
                reason: b.reason,
            });
            let RtcpPacket::Bye(again) = reparse(&bytes) else {
                panic!("type changed")
            };
            assert!(again.ssrcs().eq(ssrcs));
            assert_eq!(again.reason, b.reason);
        }
        RtcpPacket::App(a) => {
            if a.data.len() % 4 == 0 {
                assert_eq!(reparse(&encode(&a)), RtcpPacket::App(a));
            }
        }
        RtcpPacket::Nack(n) => {
            let items: Vec<NackItem> = n.items().collect();
            let bytes = encode(&NackBuilder::from_items(n.sender_ssrc, n.media_ssrc, &items));
            let RtcpPacket::Nack(again) = reparse(&bytes) else {
                panic!("type changed")
            };
            assert!(again.lost().eq(n.lost()));
            let lost: Vec<u16> = n.lost().collect();
            let mut want = lost.clone();
            want.sort_unstable();
            want.dedup();
            let mut got: Vec<u16> = lost_to_nack_items(&lost).flat_map(|i| i.lost()).collect();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, want);
        }
        RtcpPacket::Pli(p) => assert_eq!(reparse(&encode(&p)), RtcpPacket::Pli(p)),
        RtcpPacket::Fir(f) => {
            let entries: Vec<FirEntry> = f.entries().collect();
            let bytes = encode(&FirBuilder {
                sender_ssrc: f.sender_ssrc,
                entries: &entries,
            });
            let RtcpPacket::Fir(again) = reparse(&bytes) else {
                panic!("type changed")
            };
            assert!(again.entries().eq(entries));
        }
        RtcpPacket::Remb(r) => {
            let ssrcs: Vec<u32> = r.ssrcs().collect();
            let bitrate_bps = r.bitrate_bps();
            let bytes = encode(&RembBuilder {
                sender_ssrc: r.sender_ssrc,
                bitrate_bps,
                ssrcs: &ssrcs,
            });
            let RtcpPacket::Remb(again) = reparse(&bytes) else {
                panic!("type changed")
            };
            if bitrate_bps != u64::MAX {
                assert_eq!(again.bitrate_bps(), bitrate_bps);
            }
            assert!(again.ssrcs().eq(ssrcs));
        }
        RtcpPacket::TransportFeedback(t) => {
            let _ = (t.reference_time_us(), t.deltas().len());
            for c in t.chunks() {
                for i in 0..c.symbol_count().min(14) {
                    let _ = c.symbol(i);
                }
            }
            let packets: Vec<TwccPacket> = t.packets().collect();
            assert_eq!(packets.len(), usize::from(t.status_count));
            let received: Vec<(u16, i64)> = packets.iter().filter_map(|p| Some((p.seq, p.arrival_us?))).collect();
            let rebuildable = !received.is_empty()
                && received
                    .windows(2)
                    .all(|w| (1..0x8000).contains(&w[1].0.wrapping_sub(w[0].0)));
            if rebuildable {
                let bytes = encode(&TransportFeedbackBuilder {
                    sender_ssrc: t.sender_ssrc,
                    media_ssrc: t.media_ssrc,
                    fb_pkt_count: t.fb_pkt_count,
                    base_seq: Some(t.base_seq),
                    received: &received,
                });
                let RtcpPacket::TransportFeedback(again) = reparse(&bytes) else {
                    panic!("type changed")
                };
                let back: Vec<(u16, i64)> = again.packets().filter_map(|p| Some((p.seq, p.arrival_us?))).collect();
                assert_eq!(back.len(), received.len());
                for (a, b) in back.iter().zip(&received) {
                    assert_eq!(a.0, b.0);
                    assert_eq!((a.1 - b.1).rem_euclid(WRAP_US), 0);
                }
            }
        }
        RtcpPacket::ExtendedReport(x) => {
            let mut dlrr_items: Vec<Vec<DlrrItem>> = Vec::new();
            let mut only_known = true;
            for b in x.blocks() {
                match b {
                    XrBlock::Dlrr(d) => dlrr_items.push(d.items().collect()),
                    XrBlock::Rrtr { .. } => dlrr_items.push(Vec::new()),
                    XrBlock::Other { .. } => only_known = false,
                }
            }
            if only_known {
                let reports: Vec<XrReport> = x
                    .blocks()
                    .zip(&dlrr_items)
                    .map(|(b, items)| match b {
                        XrBlock::Rrtr { ntp_timestamp } => XrReport::Rrtr { ntp_timestamp },
                        _ => XrReport::Dlrr(items),
                    })
                    .collect();
                let bytes = encode(&ExtendedReportBuilder {
                    ssrc: x.ssrc,
                    reports: &reports,
                });
                let RtcpPacket::ExtendedReport(again) = reparse(&bytes) else {
                    panic!("type changed")
                };
                assert!(again.blocks().eq(x.blocks()));
            }
        }
        RtcpPacket::Other(raw) => {
            let _ = (raw.packet_type, raw.count, raw.body.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(compound) = Compound::parse(data) else {
        return;
    };
    let _ = compound.is_reduced_size();
    let mut total = 0;
    for raw in compound.raw_packets() {
        assert_eq!(raw.offset, total);
        total += raw.bytes.len();
    }
    assert_eq!(total, data.len());
    for packet in compound.packets() {
        if let Ok(p) = packet {
            check(p);
        }
    }
});
