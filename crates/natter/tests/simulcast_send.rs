//! Simulcast sent by natter (RFC 8853) to natter over the in-memory
//! network of the peer tests: A sends one VP8 track as three streams
//! (RIDs q, h, f at three sizes), B receives them as three layers. Each
//! stream has its own SSRC and RTX SSRC and names its RID on every
//! packet (its RTX packets the repaired RID, RFC 8852); a clean second
//! and a second with 5% loss later, every layer's frames arrive as they
//! were sent, each repaired by its own NACKs and RTX, with its own
//! sender reports and keyframe requests.

use std::collections::BTreeMap;
use std::time::Duration;

use natter::jsep::MediaKind;
use natter::peer::*;
use natter_rtp::extension::{URI_REPAIRED_RTP_STREAM_ID, URI_RTP_STREAM_ID};
use natter_rtp::RtpPacket;

// The harness's randomness offers more than this file uses.
#[allow(dead_code)]
mod support;

// Only the sized VP8 frames.
#[allow(dead_code)]
#[path = "support/frames.rs"]
mod frames;
use frames::vp8_frame_sized as vp8_frame;

#[path = "support/net.rs"]
mod net;
use net::{Net, A, B};

const RIDS: [&str; 3] = ["q", "h", "f"];
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// The id our description gives the header extension `uri` (RFC 8285).
fn extension_id(net: &mut Net, side: usize, uri: &str) -> u8 {
    let sdp = net.pc(side).local_description().expect("negotiated");
    let line = sdp
        .lines()
        .find(|l| l.starts_with("a=extmap:") && l.ends_with(uri))
        .unwrap_or_else(|| panic!("no {uri} in\n{sdp}"));
    line["a=extmap:".len()..]
        .split([' ', '/'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Frames sent on each stream: a clean second, a second with 5% loss
/// each way, and a clean third of a second, so that loss at the end of
/// the lossy second is seen and repaired too.
const FRAMES: usize = 70;

/// A offers a simulcast track, B receives it; connected.
fn call(seed: u64) -> (Net, TransceiverId) {
    let mut net = Net::new(0.0, seed);
    let video = net.pc(A).add_simulcast_track(MediaKind::Video, &RIDS).unwrap();
    let (offer, answer) = net.negotiate();
    assert!(offer.sdp.contains("a=simulcast:send q;h;f\r\n"), "{}", offer.sdp);
    assert!(answer.sdp.contains("a=simulcast:recv q;h;f\r\n"), "{}", answer.sdp);
    net.run_until_connected();
    (net, video)
}

#[test]
fn three_streams_arrive_as_three_layers_each_repaired_on_its_own() {
    let (mut net, video) = call(71);
    let start = net.now;
    let mut sent: [Vec<Vec<u8>>; 3] = Default::default();
    for i in 0..FRAMES {
        net.loss = if (30..60).contains(&i) { 0.05 } else { 0.0 };
        let t = net.now - start;
        for (layer, rid) in RIDS.iter().enumerate() {
            // One packet for q, two or three for h, four or five for f.
            let len = 500 * (1 << (2 * layer)) / 2 + 50 * (i % 10);
            let frame = vp8_frame(1000 * layer + i, i % 30 == 0, SIZES[layer], len);
            net.pc(A).send_frame_rid(video, rid, t, &frame).unwrap();
            sent[layer].push(frame);
        }
        net.run_for(Duration::from_millis(33));
    }
    net.run_for(Duration::from_secs(2));
    assert!(net.lost > 0, "the lossy second lost packets");

    let frames = net.media_frames(B, Format::Vp8);
    let b = net.pc(B).stats();
    let a = net.pc(A).stats();
    assert_eq!(b.receivers.len(), 3, "{:?}", b.receivers);
    assert_eq!(a.senders.len(), 3, "{:?}", a.senders);
    for (layer, rid) in RIDS.iter().enumerate() {
        let got: Vec<&MediaFrame> = frames.iter().filter(|f| f.rid.as_deref() == Some(*rid)).collect();
        let data: Vec<&Vec<u8>> = got.iter().map(|f| &f.data).collect();
        let clean: Vec<&Vec<u8>> = sent[layer][..30].iter().collect();
        assert_eq!(
            data[..30],
            clean[..],
            "{rid}: the clean second arrives whole and in order"
        );
        assert!(got.len() >= FRAMES - 2, "{rid}: {} of {FRAMES} frames", got.len());
        assert!(
            got.iter().all(|f| sent[layer].contains(&f.data)),
            "{rid}: only the frames sent on {rid}"
        );
        let size = (u32::from(SIZES[layer].0), u32::from(SIZES[layer].1));
        assert_eq!(got[0].size, Some(size), "{rid}");

        let (_, inbound) = b
            .receivers
            .iter()
            .find(|(_, r)| r.rid.as_deref() == Some(*rid))
            .unwrap();
        let (_, outbound) = a.senders.iter().find(|(_, s)| s.rid.as_deref() == Some(*rid)).unwrap();
        assert_eq!(inbound.ssrc, Some(outbound.ssrc), "{rid}: B receives the SSRC A sends");
        assert_eq!(inbound.frame_size, Some(size), "{rid}: {inbound:?}");
        assert!(inbound.nack_count > 0, "{rid}: B sent NACKs: {inbound:?}");
        assert!(
            outbound.counters.retransmitted_packets_sent > 0 && inbound.retransmitted_packets_received > 0,
            "{rid}: repaired by RTX: {outbound:?} {inbound:?}"
        );
        // Every packet came in the end, first time or by RTX.
        assert_eq!(inbound.packets_lost, 0, "{rid}: {inbound:?}");
        assert_eq!(inbound.packets_received, outbound.counters.packets_sent, "{rid}");
        assert!(
            inbound.last_sender_report.is_some(),
            "{rid}: a sender report of its own"
        );
    }
    let ssrcs: Vec<u32> = a.senders.iter().map(|(_, s)| s.ssrc).collect();
    assert!(
        ssrcs[0] != ssrcs[1] && ssrcs[1] != ssrcs[2] && ssrcs[0] != ssrcs[2],
        "{ssrcs:?}"
    );

    // On the wire: the RID on each media packet, the repaired RID (not
    // the RID) on each RTX packet, one RTX SSRC per stream.
    let rid_id = extension_id(&mut net, A, URI_RTP_STREAM_ID);
    let repaired_id = extension_id(&mut net, A, URI_REPAIRED_RTP_STREAM_ID);
    let rid_of: BTreeMap<u32, &str> = a
        .senders
        .iter()
        .map(|(_, s)| (s.ssrc, s.rid.as_deref().unwrap()))
        .collect();
    let mut rtx_ssrcs: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (side, datagram) in &net.wire {
        // RTP (RFC 7983: 128-191), not RTCP (payload types 192-223).
        let rtp = *side == A && (128..192).contains(&datagram[0]) && !(192..224).contains(&datagram[1]);
        let Some(packet) = rtp.then(|| RtpPacket::parse(datagram).ok()).flatten() else {
            continue;
        };
        let named = |id| packet.extension(id).map(|v| std::str::from_utf8(v).unwrap());
        match rid_of.get(&packet.ssrc()) {
            Some(rid) => assert_eq!(named(rid_id), Some(*rid), "a media packet names its RID"),
            None => {
                assert_eq!(named(rid_id), None, "an RTX packet names no RID");
                let repaired = named(repaired_id).expect("an RTX packet names the RID it repairs");
                let ssrcs = rtx_ssrcs.entry(repaired).or_default();
                if !ssrcs.contains(&packet.ssrc()) {
                    ssrcs.push(packet.ssrc());
                }
            }
        }
    }
    assert_eq!(rtx_ssrcs.keys().copied().collect::<Vec<_>>(), ["f", "h", "q"]);
    assert!(rtx_ssrcs.values().all(|s| s.len() == 1), "{rtx_ssrcs:?}");
}

#[test]
fn keyframe_requests_name_the_layer() {
    let (mut net, video) = call(72);
    for (layer, rid) in RIDS.iter().enumerate() {
        // An inter frame first: B asks for a keyframe of each layer by itself.
        let frame = vp8_frame(layer, false, SIZES[layer], 300);
        net.pc(A).send_frame_rid(video, rid, Duration::ZERO, &frame).unwrap();
    }
    net.run_for(Duration::from_millis(100));
    let asked: Vec<Option<String>> = (net.events(A).iter())
        .filter_map(|e| match e {
            PeerEvent::KeyframeRequest { transceiver, rid } if *transceiver == video => Some(rid.clone()),
            _ => None,
        })
        .collect();
    for rid in RIDS {
        assert!(
            asked.contains(&Some(rid.to_owned())),
            "a keyframe request for {rid}: {asked:?}"
        );
    }
    let plis: Vec<(Option<String>, u64)> = (net.pc(A).stats().senders.iter())
        .map(|(_, s)| (s.rid.clone(), s.counters.pli_count))
        .collect();
    assert!(
        plis.iter().all(|(_, n)| *n > 0),
        "each stream counts its PLIs: {plis:?}"
    );

    // A RID the track does not send.
    let error = net
        .pc(A)
        .send_frame_rid(video, "x", Duration::ZERO, &[0; 10])
        .unwrap_err();
    assert!(
        matches!(error, PeerError::UnknownRid { ref rid, .. } if rid == "x"),
        "{error}"
    );
}

#[test]
fn a_peer_without_simulcast_gets_the_first_rid_as_one_stream() {
    let mut net = Net::new(0.0, 73);
    let video = net.pc(A).add_simulcast_track(MediaKind::Video, &RIDS).unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    // B stands for a peer that does not know simulcast: it reads an
    // offer without, and answers without (RFC 8853 §5.3).
    let mut plain = offer.clone();
    plain.sdp = (offer.sdp.split_inclusive("\r\n"))
        .filter(|l| !l.starts_with("a=rid:") && !l.starts_with("a=simulcast:"))
        .collect();
    net.pc(B).set_remote_description(&plain).unwrap();
    let answer = net.pc(B).create_answer().unwrap();
    assert!(!answer.sdp.contains("a=simulcast"), "{}", answer.sdp);
    net.pc(B).set_local_description(&answer).unwrap();
    net.pc(A).set_remote_description(&answer).unwrap();
    net.run_until_connected();
    let frame = vp8_frame(0, true, SIZES[0], 300);
    net.pc(A).send_frame_rid(video, "q", Duration::ZERO, &frame).unwrap();
    let error = net
        .pc(A)
        .send_frame_rid(video, "h", Duration::ZERO, &frame)
        .unwrap_err();
    assert!(matches!(error, PeerError::UnknownRid { .. }), "{error}");
    net.run_for(Duration::from_millis(200));
    let senders = net.pc(A).stats().senders;
    assert_eq!(senders.len(), 1, "{senders:?}");
    assert_eq!(senders[0].1.rid, None);
    let frames = net.media_frames(B, Format::Vp8);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, frame);
}
