//! The RTP parser and every typed header extension: arbitrary bytes give
//! a packet or an error, never a panic, and what parses re-encodes to a
//! packet with the same fields, extensions and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_rtp::*;

fuzz_target!(|data: &[u8]| {
    let _ = natter_rtp::rtcp::is_rtcp(data);
    let Ok(pkt) = RtpPacket::parse(data) else {
        return;
    };
    assert_eq!(pkt.header_len() + pkt.payload().len() + pkt.padding_len(), data.len());
    let csrcs: Vec<u32> = pkt.csrcs().collect();
    assert_eq!(csrcs.len(), pkt.csrc_count());
    if let Some(block) = pkt.extension_block() {
        let _ = (block.profile, block.data.len(), block.form());
    }
    for e in pkt.extensions() {
        let _ = e.parse::<Mid>();
        let _ = e.parse::<RtpStreamId>();
        let _ = e.parse::<RepairedRtpStreamId>();
        let _ = e.parse::<AbsSendTime>().map(|t| t.to_duration());
        let _ = e.parse::<TransportSequenceNumber>();
        let _ = e.parse::<AudioLevel>();
        let _ = e.parse::<VideoOrientation>().map(|v| v.rotation.degrees());
        let _ = e.parse::<PlayoutDelay>().map(|p| (p.min_delay(), p.max_delay()));
    }
    for id in [1, 2, 14, 15, 255] {
        let _ = pkt.extension(id);
    }

    // Rewrite it: header, RFC 8285 elements, payload, padding.
    let header = RtpHeader {
        marker: pkt.marker(),
        payload_type: pkt.payload_type(),
        sequence_number: pkt.sequence_number(),
        timestamp: pkt.timestamp(),
        ssrc: pkt.ssrc(),
        csrcs: &csrcs,
    };
    let mut buf = vec![0u8; data.len() + 16];
    let mut w = RtpWriter::new(&mut buf, &header).expect("header fits");
    if let Some(form) = pkt.extension_form() {
        w.start_extensions(form).expect("extension header fits");
        for e in pkt.extensions() {
            w.add_extension(e.id, e.value).expect("a parsed element re-encodes");
        }
    }
    // The padding count is one octet, so this fits.
    let padding = pkt.padding_len() as u8;
    let n = w.finish(pkt.payload(), padding).expect("packet fits");
    let again = RtpPacket::parse(&buf[..n]).expect("re-encoded packet parses");
    assert_eq!(again.marker(), pkt.marker());
    assert_eq!(again.payload_type(), pkt.payload_type());
    assert_eq!(again.sequence_number(), pkt.sequence_number());
    assert_eq!(again.timestamp(), pkt.timestamp());
    assert_eq!(again.ssrc(), pkt.ssrc());
    assert!(again.csrcs().eq(pkt.csrcs()));
    assert_eq!(again.payload(), pkt.payload());
    assert_eq!(again.padding_len(), pkt.padding_len());
    assert_eq!(again.extension_form(), pkt.extension_form());
    assert!(again.extensions().eq(pkt.extensions()));
});
