//! Wireshark as an independent judge: every RTCP packet type natter
//! builds, and RTP packets with both header extension forms, are written
//! to a pcap file and dissected by `tshark`, which must recognise each
//! one and report nothing malformed.
//!
//! Needs the Debian package `tshark`; the test fails (it does not skip)
//! without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use natter_rtp::rtcp::*;
use natter_rtp::*;

/// LINKTYPE_IPV4: each record is a raw IPv4 datagram.
const LINKTYPE_IPV4: u32 = 228;
const RTP_PORT: u16 = 5004;
const RTCP_PORT: u16 = 5005;

/// Writes a classic pcap file (microsecond timestamps, native order):
/// a global header, then a record header and the bytes per packet.
fn write_pcap(path: &Path, datagrams: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xA1B2_C3D4u32.to_ne_bytes());
    out.extend_from_slice(&2u16.to_ne_bytes());
    out.extend_from_slice(&4u16.to_ne_bytes());
    out.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_ne_bytes()); // snaplen
    out.extend_from_slice(&LINKTYPE_IPV4.to_ne_bytes());
    for (i, d) in datagrams.iter().enumerate() {
        out.extend_from_slice(&1_700_000_000u32.to_ne_bytes());
        out.extend_from_slice(&(i as u32 * 1000).to_ne_bytes());
        out.extend_from_slice(&(d.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(d.len() as u32).to_ne_bytes());
        out.extend_from_slice(d);
    }
    std::fs::write(path, out).unwrap();
}

/// Wraps a UDP payload in IPv4 (RFC 791, header checksum computed) and
/// UDP (RFC 768, checksum 0: none, allowed over IPv4) headers.
fn ipv4_udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]); // id, DF, TTL, UDP, checksum
    p.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    let mut sum = 0u32;
    for w in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&(dst_port - 1000).to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

fn encode(packets: &[&dyn RtcpEncode]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut w = CompoundWriter::new(&mut buf);
    for p in packets {
        assert_eq!(p.encode(&mut vec![0u8; 4096]).unwrap(), p.encoded_len());
        w.add(*p).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    Compound::parse(&buf).expect("natter parses what it built");
    buf
}

/// Every RTCP packet type natter builds, each in a datagram of its own
/// except the classic compound SR + SDES + BYE. Returns the datagrams
/// and, per datagram, what Wireshark must call it.
fn rtcp_datagrams() -> Vec<(Vec<u8>, &'static [&'static str])> {
    let block = ReportBlock {
        ssrc: 0x2222_2222,
        fraction_lost: 25,
        cumulative_lost: -3,
        extended_highest_seq: 0x0001_0010,
        jitter: 42,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    };
    let sr = SenderReportBuilder {
        ssrc: 0x1111_1111,
        sender_info: SenderInfo {
            ntp_timestamp: 0xE8C1_0000_8000_0000,
            rtp_timestamp: 90_000,
            packet_count: 10,
            octet_count: 12_000,
        },
        report_blocks: &[block],
        profile_extension: &[],
    };
    let rr = ReceiverReportBuilder {
        ssrc: 0x3333_3333,
        report_blocks: &[
            block,
            ReportBlock {
                ssrc: 0x4444_4444,
                ..block
            },
        ],
        profile_extension: &[],
    };
    let cname = Cname {
        ssrc: 0x1111_1111,
        cname: "natter@example",
    };
    let items = [
        SdesItem {
            kind: SdesItemType::CNAME,
            value: b"x",
        },
        SdesItem {
            kind: SdesItemType::TOOL,
            value: b"natter-rtp",
        },
    ];
    let chunks = [
        SdesChunkBuilder {
            ssrc: 0x3333_3333,
            items: &items,
        },
        SdesChunkBuilder {
            ssrc: 0x5555_5555,
            items: &items[..1],
        },
    ];
    let sdes = SdesBuilder { chunks: &chunks };
    let bye = ByeBuilder {
        ssrcs: &[0x1111_1111],
        reason: Some(b"done"),
    };
    let app = App {
        subtype: 3,
        ssrc: 0x1111_1111,
        name: *b"NATR",
        data: &[1, 2, 3, 4, 5, 6, 7, 8],
    };
    let lost = [100u16, 101, 105, 116, 117, 200];
    let nack = NackBuilder::from_lost(0x3333_3333, 0x1111_1111, &lost);
    let pli = Pli {
        sender_ssrc: 0x3333_3333,
        media_ssrc: 0x1111_1111,
    };
    let fir = FirBuilder {
        sender_ssrc: 0x3333_3333,
        entries: &[
            FirEntry {
                ssrc: 0x1111_1111,
                seq_nr: 7,
            },
            FirEntry {
                ssrc: 0x6666_6666,
                seq_nr: 1,
            },
        ],
    };
    let remb = RembBuilder {
        sender_ssrc: 0x3333_3333,
        bitrate_bps: 2_500_000,
        ssrcs: &[0x1111_1111, 0x6666_6666],
    };
    // Small, large, negative deltas and losses.
    let received: Vec<(u16, i64)> = vec![
        (65530, 1_000_000),
        (65531, 1_010_000),
        (65533, 1_020_000),
        (0, 1_200_000),
        (1, 1_150_000),
        (2, 1_150_250),
        (40, 1_160_000),
    ];
    let twcc = TransportFeedbackBuilder {
        sender_ssrc: 0x3333_3333,
        media_ssrc: 0x1111_1111,
        fb_pkt_count: 9,
        base_seq: None,
        received: &received,
    };
    let dlrr = [
        DlrrItem {
            ssrc: 0x3333_3333,
            last_rr: 0x0001_0002,
            delay_since_last_rr: 300,
        },
        DlrrItem {
            ssrc: 0x4444_4444,
            last_rr: 0x0003_0004,
            delay_since_last_rr: 400,
        },
    ];
    let reports = [
        XrReport::Rrtr {
            ntp_timestamp: 0xE8C1_0001_0000_0000,
        },
        XrReport::Dlrr(&dlrr),
    ];
    let xr = ExtendedReportBuilder {
        ssrc: 0x1111_1111,
        reports: &reports,
    };
    vec![
        (
            encode(&[&sr, &cname, &bye]),
            &["Sender Report", "Source description", "Goodbye"][..],
        ),
        (
            encode(&[&rr, &sdes]),
            &["Receiver Report", "Source description", "TOOL"][..],
        ),
        (encode(&[&rr, &app]), &["Application specific"][..]),
        (encode(&[&rr, &cname, &nack]), &["Generic negative acknowledgement"][..]),
        (encode(&[&rr, &cname, &pli]), &["Picture Loss Indication"][..]),
        (encode(&[&rr, &cname, &fir]), &["Full Intra Request"][..]),
        (
            encode(&[&rr, &cname, &remb]),
            &["Application Layer Feedback", "REMB"][..],
        ),
        (
            encode(&[&rr, &cname, &twcc]),
            &["Transport-wide Congestion Control"][..],
        ),
        (
            encode(&[&sr, &cname, &xr]),
            &["Extended report", "Receiver Reference Time", "Delay since last RR"][..],
        ),
        // Reduced-size (RFC 5506): feedback packets alone.
        (encode(&[&nack]), &["Generic negative acknowledgement"][..]),
        (encode(&[&twcc]), &["Transport-wide Congestion Control"][..]),
        (encode(&[&pli]), &["Picture Loss Indication"][..]),
    ]
}

fn rtp_datagrams() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, form) in [ExtensionForm::OneByte, ExtensionForm::TwoByte { appbits: 5 }]
        .into_iter()
        .enumerate()
    {
        let mut buf = vec![0u8; 1500];
        let header = RtpHeader {
            marker: true,
            payload_type: 96,
            sequence_number: 1000 + i as u16,
            timestamp: 90_000,
            ssrc: 0x1111_1111,
            csrcs: &[0x7777_7777],
        };
        let mut w = RtpWriter::new(&mut buf, &header).unwrap();
        w.start_extensions(form).unwrap();
        w.add(1, &Mid("0")).unwrap();
        w.add(2, &RtpStreamId("hi")).unwrap();
        w.add(3, &AbsSendTime::from_raw(0x12_3456)).unwrap();
        w.add(4, &TransportSequenceNumber(77)).unwrap();
        w.add(
            5,
            &VideoOrientation {
                back_camera: false,
                flip: false,
                rotation: Rotation::Deg90,
            },
        )
        .unwrap();
        w.add(6, &PlayoutDelay { min: 0, max: 100 }).unwrap();
        w.add(
            7,
            &AudioLevel {
                voice_activity: true,
                level: 30,
            },
        )
        .unwrap();
        if let ExtensionForm::TwoByte { .. } = form {
            // Beyond what the one-byte form can carry: id > 14, 0 and 20 bytes.
            w.add_extension(200, &[0x55; 20]).unwrap();
            w.add_extension(15, &[]).unwrap();
        }
        let n = w.finish(&[0xAB; 100], 4).unwrap();
        buf.truncate(n);
        RtpPacket::parse(&buf).unwrap();
        out.push(buf);
    }
    out
}

fn tshark() -> PathBuf {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => PathBuf::from("tshark"),
        _ => panic!(
            "tshark is missing: install it with `DEBIAN_FRONTEND=noninteractive apt-get install -y tshark` \
             (scripts/setup does)"
        ),
    }
}

fn dissect(pcap: &Path, decode_as: &str) -> String {
    let out = Command::new(tshark())
        .args(["-o", "rtcp.heuristic_rtcp:FALSE"])
        .arg("-r")
        .arg(pcap)
        .args(["-d", decode_as, "-V"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark prints UTF-8")
}

/// The dissection of one frame each.
fn frames(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text.match_indices("\nFrame ").map(|(i, _)| i + 1).collect();
    if text.starts_with("Frame ") {
        starts.insert(0, 0);
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| &text[s..starts.get(k + 1).copied().unwrap_or(text.len())])
        .collect()
}

fn assert_clean(frame: &str) {
    for bad in ["Malformed", "Expert Info (Error", "Expert Info (Warning"] {
        assert!(!frame.contains(bad), "tshark reports {bad:?}:\n{frame}");
    }
    for line in frame.lines() {
        let l = line.to_ascii_lowercase();
        assert!(
            !(l.contains("warning") && l.contains("length")),
            "tshark warns about a length: {line}\n{frame}"
        );
    }
}

fn temp_pcap(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("natter-rtp-{name}-{}.pcap", std::process::id()))
}

#[test]
fn tshark_dissects_every_rtcp_packet_natter_builds() {
    let datagrams = rtcp_datagrams();
    let pcap = temp_pcap("rtcp");
    let wrapped: Vec<Vec<u8>> = datagrams.iter().map(|(d, _)| ipv4_udp(RTCP_PORT, d)).collect();
    write_pcap(&pcap, &wrapped);
    let text = dissect(&pcap, &format!("udp.port=={RTCP_PORT},rtcp"));
    let frames = frames(&text);
    assert_eq!(frames.len(), datagrams.len(), "{text}");
    for (frame, (_, expected)) in frames.iter().zip(&datagrams) {
        assert!(frame.contains("Real-time Transport Control Protocol"), "{frame}");
        assert_clean(frame);
        for name in *expected {
            assert!(frame.contains(name), "tshark did not see {name:?}:\n{frame}");
        }
    }
    // Spot checks that the fields decode as natter meant them.
    let all = text.as_str();
    for field in [
        "Sender SSRC: 0x11111111",
        "Sender's packet count: 10",
        "Text: natter@example",
        "Text: done",
        "Name (ASCII): NATR",
        "NACK PID: 100",
        "Frames 101 105 116 lost",
        "NACK PID: 200",
        "Unique Identifier: REMB",
        "Maximum bit rate: 2500000",
        "Command Sequence Number: 7",
        "Delay since last RR timestamp: 400",
        "Negative Delta: [seq: 1] -50.000000 ms",
        "Large Delta: [seq: 0] 180.000000 ms",
        "Small Delta: [seq: 2] 0.250000 ms",
        "Base Sequence Number: 65530",
        "Packet Status Count: 47",
    ] {
        assert!(all.contains(field), "tshark output lacks {field:?}:\n{all}");
    }
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn tshark_dissects_rtp_header_extensions_of_both_forms() {
    let datagrams = rtp_datagrams();
    let pcap = temp_pcap("rtp");
    let wrapped: Vec<Vec<u8>> = datagrams.iter().map(|d| ipv4_udp(RTP_PORT, d)).collect();
    write_pcap(&pcap, &wrapped);
    let text = dissect(&pcap, &format!("udp.port=={RTP_PORT},rtp"));
    let frames = frames(&text);
    assert_eq!(frames.len(), 2, "{text}");
    for frame in &frames {
        assert!(frame.contains("Real-Time Transport Protocol"), "{frame}");
        assert!(frame.contains("CSRC item 0: 0x77777777"), "{frame}");
        assert_clean(frame);
    }
    assert!(
        frames[0].contains("RFC 5285 Header Extension (One-Byte Header)"),
        "{}",
        frames[0]
    );
    assert!(
        frames[1].contains("RFC 5285 Header Extension (Two-Byte Header)"),
        "{}",
        frames[1]
    );
    for frame in &frames {
        // mid "0", transport-wide seq 77, playout delay 0..1 s, audio level.
        for data in [
            "Extension Data: 30",
            "Extension Data: 004d",
            "Extension Data: 000064",
            "Extension Data: 9e",
        ] {
            assert!(frame.contains(data), "tshark output lacks {data:?}:\n{frame}");
        }
        assert!(frame.contains("Padding count: 4"), "{frame}");
    }
    for field in ["Application Bits: 5", "Identifier: 200", "Length: 20", "Identifier: 15"] {
        assert!(
            frames[1].contains(field),
            "tshark output lacks {field:?}:\n{}",
            frames[1]
        );
    }
    let _ = std::fs::remove_file(&pcap);
}
