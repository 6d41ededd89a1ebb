//! Two PeerConnections over an in-memory UDP network under a virtual
//! clock: offer/answer with trickled candidates, ICE host to host, DTLS
//! in the negotiated roles, SCTP and data channels (reliable, unordered
//! without retransmissions, negotiated), closing from either side, loss,
//! a wrong fingerprint, and the SDP both sides wrote.

use std::time::Duration;

use natter::dtls::{DtlsError, DtlsRole, DtlsState, DtlsVersion};
use natter::jsep::{SdpType, SignalingState};
use natter::peer::*;
use natter_ice::candidate::CandidateKind;
use natter_ice::{ConnectionState, Transport};
use natter_sctp::Message;

mod support;
use support::Rng;

#[path = "support/frames.rs"]
mod frames;
#[path = "support/net.rs"]
mod net;
use frames::vp8_frame;
use net::{mdns_name, Net, A, B};

/// A and B negotiated with one channel A made; both see it open.
fn connected_pair(loss: f64, seed: u64, label: &str, init: DataChannelInit) -> (Net, DataChannelId, DataChannelId) {
    let mut net = Net::new(loss, seed);
    let ours = net.pc(A).create_data_channel(label, init).unwrap();
    net.negotiate();
    net.run_until(Duration::from_secs(60), |n| {
        n.has(A, &PeerEvent::DataChannelOpen(ours))
            && n.events(B).iter().any(|e| matches!(e, PeerEvent::DataChannelOpen(_)))
    });
    let theirs = net.incoming(B, label).expect("B announced the channel");
    assert!(net.has(B, &PeerEvent::DataChannelOpen(theirs)));
    (net, ours, theirs)
}

/// The `i`th test message: mostly small, some of 4-64 KiB, every 100th
/// the largest both sides accept (256 KiB); text on odd `i`.
fn message(i: usize, rng: &mut Rng) -> (Vec<u8>, bool) {
    let len = match i % 100 {
        0 => 262_144,
        1 => 1,
        n if n % 10 == 0 => 4096 + rng.below(60 * 1024) as usize,
        _ => 1 + rng.below(1400) as usize,
    };
    let is_text = i % 2 == 1;
    let data = (0..len)
        .map(|j| {
            let byte = (rng.next() >> 32) as u8 ^ j as u8;
            if is_text {
                b'a' + byte % 26
            } else {
                byte
            }
        })
        .collect();
    (data, is_text)
}

fn send(net: &mut Net, side: usize, id: DataChannelId, data: &[u8], is_text: bool) {
    let mut channel = net.pc(side).data_channel(id).expect("the channel lives");
    let message = if is_text {
        Message::Text(std::str::from_utf8(data).unwrap())
    } else {
        Message::Binary(data)
    };
    channel.send(message).unwrap();
}

/// A sends `count` messages and B echoes each as it arrives; A checks
/// every echo byte for byte and in order. At most `window` messages are
/// in flight.
fn echo(net: &mut Net, a: DataChannelId, b: DataChannelId, count: usize, window: usize, seed: u64) {
    let mut rng = Rng(seed | 1);
    let sent: Vec<(Vec<u8>, bool)> = (0..count).map(|i| message(i, &mut rng)).collect();
    let (mut next, mut echoed) = (0, 0);
    let deadline = net.now + Duration::from_secs(600);
    while echoed < count {
        while next < count && next - echoed < window {
            send(net, A, a, &sent[next].0, sent[next].1);
            next += 1;
        }
        assert!(net.now <= deadline, "{echoed} of {count} echoed");
        if !net.step() {
            panic!("idle with {echoed} of {count} echoed");
        }
        for (data, is_text) in net.take_messages(B, b) {
            send(net, B, b, &data, is_text);
        }
        for (data, is_text) in net.take_messages(A, a) {
            assert!(echoed < count, "more echoes than messages");
            assert_eq!(data.len(), sent[echoed].0.len(), "echo {echoed} has the wrong length");
            assert!(data == sent[echoed].0, "echo {echoed} differs");
            assert_eq!(is_text, sent[echoed].1, "echo {echoed} changed type");
            echoed += 1;
        }
    }
}

/// RFC 7983 §7 and RFC 6347 §4.1: a DTLS record whose content type is
/// handshake (22) carrying a ClientHello (1).
fn is_client_hello(datagram: &[u8]) -> bool {
    datagram.first() == Some(&22) && datagram.get(13) == Some(&1)
}

#[test]
fn data_channel_opens_and_echoes_1000_messages() {
    let (mut net, a, b) = connected_pair(0.0, 1, "echo", DataChannelInit::default());
    // Two round trips of checks and nomination, two of DTLS 1.2, one of
    // DCEP, at 10 ms each way: no retransmission timer was waited for.
    let open_after = net.now - net.start;
    assert!(open_after <= Duration::from_millis(120), "open after {open_after:?}");

    // ICE host to host, and DTLS with B (the answerer, setup:active) as client.
    for side in [A, B] {
        assert_eq!(net.pc(side).connection_state(), PeerConnectionState::Connected);
        assert!(matches!(
            net.pc(side).ice_connection_state(),
            ConnectionState::Connected | ConnectionState::Completed
        ));
        assert_eq!(
            net.state_changes(side),
            [PeerConnectionState::Connecting, PeerConnectionState::Connected]
        );
        assert_eq!(net.pc(side).signaling_state(), SignalingState::Stable);
    }
    let first_dtls = net.wire.iter().find(|(_, d)| (20..=63).contains(&d[0])).unwrap();
    assert_eq!(first_dtls.0, B, "the DTLS client speaks first");
    assert!(is_client_hello(&first_dtls.1));
    assert!(!net.wire.iter().any(|(side, d)| *side == A && is_client_hello(d)));
    let a_stats = net.pc(A).stats();
    let b_stats = net.pc(B).stats();
    assert_eq!(a_stats.dtls.as_ref().map(|d| d.role), Some(DtlsRole::Server));
    assert_eq!(b_stats.dtls.as_ref().map(|d| d.role), Some(DtlsRole::Client));

    // B learnt the channel from DATA_CHANNEL_OPEN; the client picks even ids.
    let theirs = net.pc(B).data_channel(b).unwrap();
    assert_eq!(theirs.label(), "echo");
    assert!(theirs.options().ordered);
    let stream = theirs.stream_id().unwrap();
    assert_eq!(net.pc(A).data_channel(a).unwrap().stream_id(), Some(stream));
    assert_eq!(stream % 2, 1, "A is the DTLS server: odd stream ids");

    echo(&mut net, a, b, 1000, 32, 7);

    let stats = net.pc(A).stats();
    let pair = stats.selected_pair.expect("a selected pair");
    assert_eq!(
        (pair.local.kind, pair.remote.kind),
        (CandidateKind::Host, CandidateKind::Host)
    );
    assert_eq!(pair.local.socket_addr(), Some(net.peers[A].addr));
    assert_eq!(pair.remote.socket_addr(), Some(net.peers[B].addr));
    assert!(pair.round_trip_time.is_some());
    let dtls = stats.dtls.unwrap();
    assert_eq!(dtls.state, DtlsState::Connected);
    assert_eq!(dtls.version, Some(DtlsVersion::Dtls12));
    assert!(dtls.srtp_profile.is_some());
    assert_eq!(
        dtls.peer_fingerprint.as_ref(),
        Some(net.pc(B).certificate().fingerprint())
    );
    assert_eq!(&dtls.local_fingerprint, net.pc(A).certificate().fingerprint());
    assert_eq!((stats.data_channels_opened, stats.data_channels_closed), (1, 0));
    assert_eq!((stats.data.messages_sent, stats.data.messages_received), (1000, 1000));
    assert_eq!(stats.data.bytes_sent, stats.data.bytes_received);
    assert!(stats.transport.bytes_sent > stats.data.bytes_sent);
    assert!(stats.transport.packets_received > 0);
    assert_eq!(stats.media, natter::peer::MediaCounters::default());
    assert_eq!(net.pc(B).stats().data.messages_received, 1000);
}

/// Chromium answering our offer starts DTLS once a pair is writable, so
/// its ClientHello can arrive before its answer has; A's DTLS server
/// takes it when the answer starts it, instead of waiting for a
/// retransmission. B plays Chromium's part: told that A is ICE lite, B
/// controls, nominates and sends its ClientHello while A still waits for
/// the answer.
/// RTCP as RFC 5761 §4 tells it from RTP on a shared port (version 2,
/// packet type 192-223), SRTCP included: its header is in the clear.
fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

#[test]
fn a_connection_without_media_sends_no_rtcp() {
    // No media section, so no RTP session (RFC 3550 §6): nothing to
    // report, and the SRTP contexts stay underived (issue 18's memory).
    let (mut net, _, _) = connected_pair(0.0, 3, "quiet", DataChannelInit::default());
    net.run_for(Duration::from_secs(30));
    let rtcp = net.wire.iter().filter(|(_, d)| is_rtcp(d)).count();
    assert_eq!(rtcp, 0, "RTCP datagrams on a data-only connection");
    // The same check sees the reports of a connection with media.
    let (mut media, _) = video_pair(4);
    media.run_for(Duration::from_secs(30));
    assert!(media.wire.iter().any(|(_, d)| is_rtcp(d)), "a video connection reports");
}

#[test]
fn a_client_hello_before_the_answer_is_kept_for_dtls() {
    let mut net = Net::new(0.0, 3);
    let ours = net
        .pc(A)
        .create_data_channel("early", DataChannelInit::default())
        .unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    let lite = Description {
        kind: SdpType::Offer,
        sdp: offer.sdp.replacen("m=", "a=ice-lite\r\nm=", 1),
    };
    net.pc(B).set_remote_description(&lite).unwrap();
    let answer = net.pc(B).create_answer().unwrap();
    net.pc(B).set_local_description(&answer).unwrap();
    let client_hellos = |n: &Net| {
        n.wire
            .iter()
            .filter(|(side, d)| *side == B && is_client_hello(d))
            .count()
    };
    net.run_until(Duration::from_secs(5), |n| {
        client_hellos(n) == 1 && n.in_flight.is_empty()
    });
    assert!(net.pc(A).remote_description().is_none());

    net.pc(A).set_remote_description(&answer).unwrap();
    let answered = net.now;
    net.run_until(Duration::from_secs(60), |n| {
        n.has(A, &PeerEvent::DataChannelOpen(ours))
            && n.events(B).iter().any(|e| matches!(e, PeerEvent::DataChannelOpen(_)))
    });
    // A's checks and the role conflict (both sides control) first, then
    // DTLS and DCEP: 100 ms here. Waiting for B's first retransmission
    // instead takes 1.27 s.
    let open_after = net.now - answered;
    assert!(
        open_after <= Duration::from_millis(300),
        "open {open_after:?} after the answer"
    );
    assert_eq!(client_hellos(&net), 1, "no retransmission");
    assert_eq!(net.pc(A).stats().transport.dtls_dropped, 0);
}

#[test]
fn candidates_trickle_with_the_tagged_mid() {
    let (net, _, _) = connected_pair(0.0, 2, "chat", DataChannelInit::default());
    for side in [A, B] {
        let candidates: Vec<&IceCandidate> = net
            .events(side)
            .iter()
            .filter_map(|e| match e {
                PeerEvent::IceCandidate(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(candidates.len(), 1, "one host candidate");
        let c = candidates[0];
        assert!(c.candidate.starts_with("candidate:"), "{}", c.candidate);
        assert!(c.candidate.contains(&format!("10.0.0.{} 5000 typ host", side + 1)));
        assert_eq!((c.sdp_mid.as_deref(), c.sdp_m_line_index), (Some("0"), Some(0)));
        assert!(net.has(side, &PeerEvent::IceGatheringComplete));
    }
    // The negotiation needed once, for A's first channel.
    let needed = |side| {
        net.events(side)
            .iter()
            .filter(|e| **e == PeerEvent::NegotiationNeeded)
            .count()
    };
    assert_eq!((needed(A), needed(B)), (1, 0));
}

#[test]
fn unordered_channel_without_retransmissions() {
    let init = DataChannelInit {
        ordered: false,
        max_retransmits: Some(0),
        ..DataChannelInit::default()
    };
    let (mut net, a, b) = connected_pair(0.0, 3, "lossy", init);
    let options = net.pc(B).data_channel(b).unwrap().options();
    assert!(!options.ordered);
    assert_eq!(options.max_retransmits, Some(0));

    // Without loss everything arrives.
    for i in 0..200u32 {
        send(&mut net, A, a, &i.to_be_bytes(), false);
    }
    net.run_until(Duration::from_secs(10), |n| {
        n.events(B)
            .iter()
            .filter(|e| matches!(e, PeerEvent::DataChannelMessage { .. }))
            .count()
            == 200
    });
    let mut got: Vec<u32> = net
        .take_messages(B, b)
        .iter()
        .map(|(d, _)| u32::from_be_bytes(d[..].try_into().unwrap()))
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..200).collect::<Vec<_>>());

    // With loss, what is lost stays lost and the channel carries on.
    // One message per packet: each goes out before the next is sent.
    net.loss = 0.2;
    for i in 0..200u32 {
        send(&mut net, A, a, &i.to_be_bytes(), false);
        net.step();
    }
    net.run_for(Duration::from_secs(10));
    let got = net.take_messages(B, b).len();
    assert!((100..200).contains(&got), "{got} of 200 arrived over 20% loss");
    assert_eq!(net.pc(A).data_channel(a).unwrap().ready_state(), DataChannelState::Open);
}

#[test]
fn negotiated_channel_with_a_fixed_id() {
    let mut net = Net::new(0.0, 4);
    let init = DataChannelInit {
        negotiated: true,
        id: Some(7),
        ..DataChannelInit::default()
    };
    let a = net.pc(A).create_data_channel("fixed", init.clone()).unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    net.pc(B).set_remote_description(&offer).unwrap();
    let b = net.pc(B).create_data_channel("fixed", init).unwrap();
    let answer = net.pc(B).create_answer().unwrap();
    net.pc(B).set_local_description(&answer).unwrap();
    net.pc(A).set_remote_description(&answer).unwrap();
    assert_eq!(net.pc(B).data_channel(b).unwrap().stream_id(), Some(7));
    net.run_until(Duration::from_secs(30), |n| {
        n.has(A, &PeerEvent::DataChannelOpen(a)) && n.has(B, &PeerEvent::DataChannelOpen(b))
    });
    // No DCEP, so no DataChannel event.
    for side in [A, B] {
        assert!(!net.events(side).iter().any(|e| matches!(e, PeerEvent::DataChannel(_))));
    }
    send(&mut net, A, a, b"to B", true);
    send(&mut net, B, b, b"to A", false);
    net.run_until(Duration::from_secs(5), |n| {
        n.events(A)
            .iter()
            .any(|e| matches!(e, PeerEvent::DataChannelMessage { .. }))
            && n.events(B)
                .iter()
                .any(|e| matches!(e, PeerEvent::DataChannelMessage { .. }))
    });
    assert_eq!(net.take_messages(B, b), [(b"to B".to_vec(), true)]);
    assert_eq!(net.take_messages(A, a), [(b"to A".to_vec(), false)]);
    assert_eq!(net.pc(A).data_channel(a).unwrap().stream_id(), Some(7));
}

#[test]
fn channels_close_from_either_side() {
    let (mut net, a1, b1) = connected_pair(0.0, 5, "first", DataChannelInit::default());
    let a2 = net
        .pc(A)
        .create_data_channel("second", DataChannelInit::default())
        .unwrap();
    let a3 = net
        .pc(A)
        .create_data_channel("third", DataChannelInit::default())
        .unwrap();
    // The association is up: no new negotiation for more channels.
    net.run_until(Duration::from_secs(5), |n| {
        n.has(A, &PeerEvent::DataChannelOpen(a2)) && n.has(A, &PeerEvent::DataChannelOpen(a3))
    });
    net.run_for(Duration::from_millis(100));
    let b2 = net.incoming(B, "second").unwrap();
    let b3 = net.incoming(B, "third").unwrap();
    assert_eq!(
        net.events(A)
            .iter()
            .filter(|e| **e == PeerEvent::NegotiationNeeded)
            .count(),
        1
    );

    // A closes the first, B the second.
    net.pc(A).data_channel(a1).unwrap().close();
    net.pc(B).data_channel(b2).unwrap().close();
    assert_eq!(
        net.pc(A).data_channel(a1).unwrap().ready_state(),
        DataChannelState::Closing
    );
    net.run_until(Duration::from_secs(10), |n| {
        [(A, a1), (B, b1), (A, a2), (B, b2)]
            .iter()
            .all(|(side, id)| n.has(*side, &PeerEvent::DataChannelClose(*id)))
    });
    // Closed channels are forgotten.
    assert!(net.pc(A).data_channel(a1).is_none());
    assert!(net.pc(B).data_channel(b2).is_none());
    assert!(net.pc(A).data_channel(a2).is_none());

    // The third still works.
    send(&mut net, B, b3, b"still here", true);
    net.run_until(Duration::from_secs(5), |n| {
        n.events(A)
            .iter()
            .any(|e| matches!(e, PeerEvent::DataChannelMessage { id, .. } if *id == a3))
    });
    let stats = net.pc(A).stats();
    assert_eq!((stats.data_channels_opened, stats.data_channels_closed), (3, 2));
    assert_eq!(stats.channels.len(), 1);
    assert_eq!(
        net.pc(A).data_channel(a3).unwrap().ready_state(),
        DataChannelState::Open
    );
}

#[test]
fn five_percent_loss_delivers_every_reliable_message() {
    let (mut net, a, b) = connected_pair(0.05, 6, "reliable", DataChannelInit::default());
    echo(&mut net, a, b, 300, 16, 11);
    assert!(net.lost > 100, "the network lost only {}", net.lost);
}

#[test]
fn a_wrong_fingerprint_fails_the_connection() {
    let mut net = Net::new(0.0, 8);
    net.pc(A)
        .create_data_channel("never", DataChannelInit::default())
        .unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    net.pc(B).set_remote_description(&offer).unwrap();
    let answer = net.pc(B).create_answer().unwrap();
    net.pc(B).set_local_description(&answer).unwrap();
    // Flip one hex digit of B's fingerprint in what A receives.
    let at = answer.sdp.find("a=fingerprint:sha-256 ").unwrap() + "a=fingerprint:sha-256 ".len();
    let mut sdp = answer.sdp.clone();
    let flipped = if &sdp[at..at + 1] == "0" { "1" } else { "0" };
    sdp.replace_range(at..at + 1, flipped);
    net.pc(A)
        .set_remote_description(&Description {
            kind: SdpType::Answer,
            sdp,
        })
        .unwrap();

    net.run_until(Duration::from_secs(10), |n| {
        n.state_changes(A).last() == Some(&PeerConnectionState::Failed)
    });
    assert_eq!(net.pc(A).stats().dtls.map(|d| d.state), Some(DtlsState::Failed));
    assert!(
        matches!(net.pc(A).dtls_error(), Some(DtlsError::FingerprintMismatch { .. })),
        "{:?}",
        net.pc(A).dtls_error()
    );
    // A's bad_certificate alert fails B at once (tests/dtls_failure.rs
    // looks at the alert on the wire and the timing).
    net.run_until(Duration::from_secs(1), |n| {
        n.state_changes(B).last() == Some(&PeerConnectionState::Failed)
    });
    assert_eq!(net.pc(B).dtls_error(), Some(&DtlsError::PeerAlert { description: 42 }));
    for side in [A, B] {
        assert!(!net
            .events(side)
            .iter()
            .any(|e| matches!(e, PeerEvent::DataChannelOpen(_))));
    }
}

#[test]
fn offer_and_answer_are_valid_sdp() {
    let mut net = Net::new(0.0, 9);
    net.pc(A)
        .create_data_channel("sdp", DataChannelInit::default())
        .unwrap();
    let (offer, answer) = net.negotiate();
    let a_fingerprint = net.pc(A).certificate().fingerprint().to_string();
    let b_fingerprint = net.pc(B).certificate().fingerprint().to_string();

    for (description, setup, fingerprint) in [(&offer, "actpass", &a_fingerprint), (&answer, "active", &b_fingerprint)]
    {
        let parsed: natter_sdp::SessionDescription = description.sdp.parse().unwrap();
        assert_eq!(parsed.to_string(), description.sdp);
        assert_eq!(parsed.media.len(), 1);
        let section = parsed.media_by_mid("0").unwrap();
        assert!(section.ice_ufrag().is_some() && section.ice_pwd().is_some());
        for line in [
            "v=0\r\n".to_string(),
            "a=group:BUNDLE 0\r\n".into(),
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n".into(),
            "a=mid:0\r\n".into(),
            "a=ice-options:trickle\r\n".into(),
            format!("a=fingerprint:{fingerprint}\r\n"),
            format!("a=setup:{setup}\r\n"),
            "a=sctp-port:5000\r\n".into(),
            "a=max-message-size:262144\r\n".into(),
        ] {
            assert!(
                description.sdp.contains(&line),
                "{line:?} missing from\n{}",
                description.sdp
            );
        }
    }

    // Once gathered, the local description carries the candidate.
    net.run_until(Duration::from_secs(5), |n| n.has(A, &PeerEvent::IceGatheringComplete));
    let local = net.pc(A).local_description().unwrap();
    assert!(local.contains("a=candidate:"), "{local}");
    assert!(local.contains("a=end-of-candidates"), "{local}");
    assert!(local.parse::<natter_sdp::SessionDescription>().is_ok());
}

#[test]
fn ice_restart_keeps_the_channel_working() {
    let (mut net, a, b) = connected_pair(0.0, 10, "restart", DataChannelInit::default());
    // The ufrag of a side's local description.
    let ufrag = |net: &mut Net, side: usize| {
        let sdp = net.pc(side).local_description().unwrap();
        let parsed: natter_sdp::SessionDescription = sdp.parse().unwrap();
        parsed.media_by_mid("0").unwrap().ice_ufrag().unwrap().to_string()
    };
    let before = [ufrag(&mut net, A), ufrag(&mut net, B)];

    net.pc(A).restart_ice().unwrap();
    assert_eq!(net.pc(A).poll_event(), Some(PeerEvent::NegotiationNeeded));
    let (offer, _) = net.negotiate();
    assert!(!offer.sdp.contains(&format!("a=ice-ufrag:{}", before[0])));
    let after = [ufrag(&mut net, A), ufrag(&mut net, B)];
    assert!(
        before[0] != after[0] && before[1] != after[1],
        "both sides restart (RFC 8445 §9)"
    );

    // Candidates of the new generation trickle, and messages keep flowing.
    echo(&mut net, a, b, 50, 8, 3);
    net.run_until(Duration::from_secs(10), |n| {
        [A, B].iter().all(|side| {
            n.events(*side).iter().any(|e| {
                matches!(e, PeerEvent::IceCandidate(c) if c.username_fragment.as_deref() == Some(after[*side].as_str()))
            })
        })
    });
    echo(&mut net, a, b, 50, 8, 4);
    assert_eq!(net.pc(A).connection_state(), PeerConnectionState::Connected);
    assert!(net.pc(A).stats().selected_pair.is_some());
}

#[test]
fn mdns_candidates_are_resolved_by_the_io_layer() {
    let mut net = Net::new(0.0, 11);
    net.mdns = Some(B);
    let a = net
        .pc(A)
        .create_data_channel("mdns", DataChannelInit::default())
        .unwrap();
    net.negotiate();
    net.run_until(Duration::from_secs(30), |n| n.has(A, &PeerEvent::DataChannelOpen(a)));
    assert!(net.has(A, &PeerEvent::ResolveMdns(mdns_name(B))));
    let pair = net.pc(A).stats().selected_pair.unwrap();
    assert_eq!(pair.remote.socket_addr(), Some(net.peers[B].addr));
}

#[test]
fn close_ends_the_peer_and_its_channels() {
    let (mut net, a, b) = connected_pair(0.0, 12, "bye", DataChannelInit::default());
    let before = net.events(A).len();
    net.pc(A).close();
    assert_eq!(net.pc(A).connection_state(), PeerConnectionState::Closed);
    assert_eq!(net.pc(A).signaling_state(), SignalingState::Closed);
    assert_eq!(
        net.pc(A).data_channel(a).unwrap().ready_state(),
        DataChannelState::Closed
    );
    assert_eq!(
        net.pc(A).create_data_channel("late", DataChannelInit::default()),
        Err(PeerError::Closed)
    );
    assert_eq!(net.pc(A).poll_timeout(), None);

    // close_notify reaches B: its channel closes, and without consent
    // answers its ICE goes disconnected (RFC 7675).
    net.run_until(Duration::from_secs(10), |n| n.has(B, &PeerEvent::DataChannelClose(b)));
    assert_eq!(net.pc(B).stats().dtls.map(|d| d.state), Some(DtlsState::Closed));
    net.run_until(Duration::from_secs(20), |n| {
        n.state_changes(B).last() == Some(&PeerConnectionState::Disconnected)
    });
    assert_eq!(net.events(A).len(), before, "W3C: close fires no events");
}

#[test]
fn bad_calls_are_refused() {
    let mut net = Net::new(0.0, 13);
    let candidate = IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    assert_eq!(
        net.pc(B).add_ice_candidate(Some(&candidate)),
        Err(PeerError::NoRemoteDescription)
    );
    let negotiated_without_id = DataChannelInit {
        negotiated: true,
        ..DataChannelInit::default()
    };
    assert!(matches!(
        net.pc(A).create_data_channel("x", negotiated_without_id),
        Err(PeerError::InvalidDataChannelInit(_))
    ));
    net.pc(A).create_data_channel("x", DataChannelInit::default()).unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(B).set_remote_description(&offer).unwrap();
    let elsewhere = IceCandidate {
        sdp_mid: Some("7".into()),
        sdp_m_line_index: None,
        ..candidate.clone()
    };
    assert!(matches!(
        net.pc(B).add_ice_candidate(Some(&elsewhere)),
        Err(PeerError::UnknownMediaSection { .. })
    ));
    let garbage = IceCandidate {
        candidate: "candidate:1 1 udp".into(),
        ..candidate.clone()
    };
    assert!(matches!(
        net.pc(B).add_ice_candidate(Some(&garbage)),
        Err(PeerError::Candidate(_))
    ));
    assert_eq!(net.pc(B).add_ice_candidate(Some(&candidate)), Ok(()));
    // An answer before an offer is applied locally.
    assert!(matches!(
        net.pc(A).set_remote_description(&Description {
            kind: SdpType::Answer,
            sdp: offer.sdp.clone(),
        }),
        Err(PeerError::Jsep(_))
    ));
    assert!(matches!(
        PeerConnection::new(
            PeerConfig {
                bundle_policy: BundlePolicy::Balanced,
                ..PeerConfig::default()
            },
            net.now
        ),
        Err(PeerError::UnsupportedBundlePolicy(BundlePolicy::Balanced))
    ));
}

#[test]
fn a_rejected_data_section_closes_the_waiting_channels() {
    let mut net = Net::new(0.0, 14);
    let a = net
        .pc(A)
        .create_data_channel("unwanted", DataChannelInit::default())
        .unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    // An answer (RFC 3264 §6) that rejects the only section with port 0.
    let rejection = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                     m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        .to_string();
    net.pc(A)
        .set_remote_description(&Description {
            kind: SdpType::Answer,
            sdp: rejection,
        })
        .unwrap();
    assert_eq!(net.pc(A).poll_event(), Some(PeerEvent::NegotiationNeeded));
    let events: Vec<PeerEvent> = std::iter::from_fn(|| net.pc(A).poll_event()).collect();
    assert!(events.contains(&PeerEvent::DataChannelClose(a)), "{events:?}");
    assert!(net.pc(A).data_channel(a).is_none());
}

/// A sends video and audio, B answers with video back: every frame
/// arrives whole, the losses of a lossy path are repaired with NACK and
/// RTX, and the reports give round trips and an NTP/RTP mapping.
#[test]
fn media_flows_both_ways_and_nack_with_rtx_repairs_loss() {
    let mut net = Net::new(0.0, 41);
    let a_video = net.pc(A).add_track(MediaKind::Video).unwrap();
    let a_audio = net.pc(A).add_track(MediaKind::Audio).unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    net.pc(B).set_remote_description(&offer).unwrap();
    // W3C addTrack takes the transceiver the offer made.
    let b_video = net.pc(B).add_track(MediaKind::Video).unwrap();
    assert_eq!(net.pc(B).transceivers().len(), 2);
    let answer = net.pc(B).create_answer().unwrap();
    assert!(answer.sdp.contains("a=sendrecv"), "{}", answer.sdp);
    assert!(answer.sdp.contains("a=ssrc-group:FID"), "{}", answer.sdp);
    net.pc(B).set_local_description(&answer).unwrap();
    net.pc(A).set_remote_description(&answer).unwrap();
    net.run_until_connected();
    let tracks = |net: &Net, side| {
        net.events(side)
            .iter()
            .filter(|e| matches!(e, PeerEvent::Track { .. }))
            .count()
    };
    assert_eq!((tracks(&net, A), tracks(&net, B)), (1, 2));

    // Two seconds clean, then two with 5% loss each way.
    let start = net.now;
    let mut sent_video = Vec::new();
    let mut sent_back = Vec::new();
    for i in 0..120 {
        if i == 60 {
            net.loss = 0.05;
        }
        let t = net.now - start;
        let frame = vp8_frame(i, i % 60 == 0, 2500 + 37 * (i % 20));
        net.pc(A).send_frame(a_video, t, &frame).unwrap();
        sent_video.push(frame);
        let back = vp8_frame(1000 + i, i == 0, 1500);
        net.pc(B).send_frame(b_video, t, &back).unwrap();
        sent_back.push(back);
        net.pc(A).send_frame(a_audio, t, &[i as u8; 80]).unwrap();
        net.run_for(Duration::from_millis(33));
    }
    net.loss = 0.0;
    net.run_for(Duration::from_secs(2));

    let video = net.media_frames(B, Format::Vp8);
    let first_half: Vec<_> = video.iter().take(60).map(|f| f.data.clone()).collect();
    assert_eq!(
        first_half,
        sent_video[..60],
        "the clean second arrives whole and in order"
    );
    assert!(video.len() >= 117, "{} of 120 video frames", video.len());
    for f in &video {
        assert!(sent_video.contains(&f.data), "a frame arrived that was never sent");
    }
    assert_eq!(video[0].size, Some((320, 240)));
    assert!(video[0].keyframe);
    let audio = net.media_frames(B, Format::Opus);
    assert!(audio.len() >= 110, "{} of 120 audio frames", audio.len());
    assert!(net.media_frames(A, Format::Vp8).len() >= 117);

    let stats_b = net.pc(B).stats();
    let (_, video_in) = stats_b.receivers.iter().find(|(id, _)| *id == b_video).unwrap();
    assert!(video_in.nack_count > 0, "{video_in:?}");
    assert!(video_in.retransmitted_packets_received > 0, "{video_in:?}");
    assert!(video_in.last_sender_report.is_some(), "{video_in:?}");
    assert_eq!(video_in.frame_size, Some((320, 240)));
    let stats_a = net.pc(A).stats();
    let (_, video_out) = stats_a.senders.iter().find(|(id, _)| *id == a_video).unwrap();
    assert_eq!(video_out.format, Format::Vp8);
    assert!(video_out.counters.retransmitted_packets_sent > 0);
    let rtt = video_out
        .counters
        .round_trip_time
        .expect("B's report blocks gave a round trip");
    // The network's round trip is 20 ms; DLSR's unit is 1/65536 s.
    assert!(
        rtt.abs_diff(Duration::from_millis(20)) < Duration::from_millis(2),
        "{rtt:?}"
    );
    assert_eq!(stats_a.media.srtp_failed, 0);
    assert_eq!(stats_b.media.srtp_failed, 0);
}

/// A sends a video track to B; both connected.
fn video_pair(seed: u64) -> (Net, TransceiverId) {
    let mut net = Net::new(0.0, seed);
    let video = net.pc(A).add_track(MediaKind::Video).unwrap();
    net.negotiate();
    net.run_until_connected();
    (net, video)
}

/// A keyframe request travels as a PLI and comes out as an event.
#[test]
fn a_keyframe_request_reaches_the_sender() {
    let (mut net, video) = video_pair(43);
    assert!(matches!(
        net.pc(A).send_frame(video, Duration::ZERO, &[]),
        Err(PeerError::Media(_))
    ));
    // An inter frame first: B asks for a keyframe by itself.
    net.pc(A)
        .send_frame(video, Duration::ZERO, &vp8_frame(0, false, 500))
        .unwrap();
    net.run_for(Duration::from_millis(100));
    let asked = PeerEvent::KeyframeRequest {
        transceiver: video,
        rid: None,
    };
    assert!(net.has(A, &asked));
    let receiving = net.pc(B).transceivers()[0].id();
    let count = |net: &Net| net.events(A).iter().filter(|e| **e == asked).count();
    let before = count(&net);
    net.pc(B).request_keyframe(receiving).unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(count(&net), before + 1);
    assert!(matches!(
        net.pc(B).send_frame(receiving, Duration::ZERO, &[1]),
        Err(PeerError::NotSending(_))
    ));
}

/// RTP and RTCP that fail SRTP (forged, truncated, replayed) are dropped
/// and counted; the stream carries on.
#[test]
fn hostile_media_packets_are_dropped_and_counted() {
    let (mut net, video) = video_pair(47);
    net.pc(A)
        .send_frame(video, Duration::ZERO, &vp8_frame(0, true, 3000))
        .unwrap();
    net.run_for(Duration::from_millis(50));
    let (a, b) = (net.peers[A].addr, net.peers[B].addr);
    let sent: Vec<Vec<u8>> = net
        .wire
        .iter()
        .filter(|(from, d)| *from == A && d[0] >> 6 == 2)
        .map(|(_, d)| d.clone())
        .collect();
    let mut rng = Rng(5);
    let mut hostile: Vec<Vec<u8>> = vec![
        vec![0x80],
        vec![0x80, 96, 0, 1],
        vec![0x80, 200, 0, 1, 0, 0, 0, 1],
        (0..1200).map(|_| rng.next() as u8 | 0x80).collect(),
    ];
    // A replay of every packet A sent, and each with one bit flipped.
    for packet in &sent {
        hostile.push(packet.clone());
        let mut flipped = packet.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        hostile.push(flipped);
    }
    let now = net.now;
    for data in &hostile {
        net.pc(B).handle_receive(now, Transport::Udp, a, b, data);
    }
    let counters = net.pc(B).stats().media;
    assert!(counters.srtp_failed >= hostile.len() as u64 - 2, "{counters:?}");
    let before = net
        .events(B)
        .iter()
        .filter(|e| matches!(e, PeerEvent::MediaFrame(_)))
        .count();
    net.pc(A)
        .send_frame(video, Duration::from_millis(33), &vp8_frame(1, false, 3000))
        .unwrap();
    net.run_for(Duration::from_millis(50));
    let after = net
        .events(B)
        .iter()
        .filter(|e| matches!(e, PeerEvent::MediaFrame(_)))
        .count();
    assert_eq!(after, before + 1, "the stream goes on");
    assert_eq!(net.pc(B).connection_state(), PeerConnectionState::Connected);
}

/// The RTP sequence numbers of `ssrc` that `side` put on the wire, in
/// order (SRTP leaves the header in the clear, RFC 3711 §3.1).
fn sequence_numbers(net: &Net, side: usize, ssrc: u32) -> Vec<u16> {
    net.wire
        .iter()
        .filter(|(s, d)| *s == side && d.len() >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1]))
        .filter(|(_, d)| u32::from_be_bytes([d[8], d[9], d[10], d[11]]) == ssrc)
        .map(|(_, d)| u16::from_be_bytes([d[2], d[3]]))
        .collect()
}

/// W3C `direction` and `removeTrack` mid-call: a direction that stops
/// sending pauses the sender, and when it sends again its sequence
/// numbers go on where they stopped (RFC 3550 §5.1) on the same SSRC;
/// `removeTrack` turns `sendrecv` into `recvonly` and ends the sender.
#[test]
fn a_direction_change_pauses_the_sender_and_remove_track_ends_it() {
    let (mut net, video) = video_pair(44);
    let mut frame = 0;
    let mut send = |net: &mut Net, count: usize| {
        for _ in 0..count {
            let media_time = Duration::from_millis(33 * frame as u64);
            let data = vp8_frame(frame, frame == 0, 3000);
            net.pc(A).send_frame(video, media_time, &data).unwrap();
            frame += 1;
            net.run_for(Duration::from_millis(33));
        }
    };
    let sender = |net: &mut Net| {
        let senders = net.pc(A).stats().senders;
        senders.into_iter().find(|(id, _)| *id == video).map(|(_, s)| s)
    };
    send(&mut net, 10);
    let ssrc = sender(&mut net).unwrap().ssrc;
    let before = sequence_numbers(&net, A, ssrc);
    assert!(before.len() >= 10, "{} packets before the pause", before.len());

    net.pc(A).set_direction(video, Direction::Inactive).unwrap();
    net.negotiate();
    net.run_for(Duration::from_millis(100));
    let paused = sender(&mut net).expect("a paused sender keeps its stream");
    assert!(!paused.active);
    assert!(matches!(
        net.pc(A)
            .send_frame(video, Duration::from_secs(1), &vp8_frame(99, false, 500)),
        Err(PeerError::NotSending(_))
    ));
    assert_eq!(
        net.pc(A).transceivers()[0].current_direction(),
        Some(Direction::Inactive)
    );

    net.pc(A).set_direction(video, Direction::SendRecv).unwrap();
    net.negotiate();
    net.run_for(Duration::from_millis(100));
    send(&mut net, 10);
    let resumed = sender(&mut net).unwrap();
    assert!(resumed.active);
    assert_eq!(resumed.ssrc, ssrc, "the same SSRC after the pause");
    let all = sequence_numbers(&net, A, ssrc);
    assert!(all.len() >= before.len() + 10);
    for pair in all.windows(2) {
        assert_eq!(
            pair[1],
            pair[0].wrapping_add(1),
            "sequence numbers go on across the pause: {all:?}"
        );
    }

    net.pc(A).remove_track(video).unwrap();
    net.negotiate();
    net.run_for(Duration::from_millis(100));
    let transceiver = &net.pc(A).transceivers()[0];
    assert_eq!(transceiver.direction(), Direction::RecvOnly);
    // B sends nothing, so B answers the recvonly offer with inactive.
    assert_eq!(transceiver.current_direction(), Some(Direction::Inactive));
    assert!(transceiver.track().is_none());
    assert!(sender(&mut net).is_none(), "a removed track has no sender");
    let offer = net.pc(A).local_description().unwrap();
    assert!(
        !offer.contains("a=msid:"),
        "the offer no longer names the track:\n{offer}"
    );
}

/// W3C `RTCRtpTransceiver.stop()` mid-call (RFC 8829 §4.2.1): the next
/// offer rejects the section with port 0, the answer rejects it too, and
/// once applied the transceiver and its sender are gone on our side and
/// the peer receives nothing on it.
#[test]
fn a_stopped_transceiver_is_rejected_and_gone() {
    let (mut net, video) = video_pair(45);
    net.pc(A).stop_transceiver(video).unwrap();
    assert!(matches!(
        net.pc(A).send_frame(video, Duration::ZERO, &vp8_frame(0, true, 500)),
        Err(PeerError::NotSending(_))
    ));
    let (offer, answer) = net.negotiate();
    assert!(
        offer.sdp.contains("m=video 0 "),
        "the offer rejects the section:\n{}",
        offer.sdp
    );
    assert!(
        answer.sdp.contains("m=video 0 "),
        "the answer rejects it too:\n{}",
        answer.sdp
    );
    net.run_for(Duration::from_millis(100));
    assert!(net.pc(A).transceivers().is_empty(), "the stopped transceiver is gone");
    assert!(net.pc(A).stats().senders.is_empty());
    assert!(
        net.pc(B).stats().receivers.is_empty(),
        "B receives nothing on a rejected section"
    );
    assert_eq!(net.pc(A).connection_state(), PeerConnectionState::Connected);
}

#[test]
fn a_connection_offers_only_the_codecs_and_extensions_configured() {
    // VP8 and its RTX, the first two of Chromium's list.
    let vp8: Vec<_> = natter::jsep::codec::default_video_codecs()
        .into_iter()
        .take(2)
        .collect();
    assert_eq!(vp8[0].encoding_name, "VP8");
    let mid_only = vec![natter_sdp::Extmap::new(4, natter_rtp::extension::URI_MID)];
    let config = PeerConfig {
        video_codecs: Some(vp8),
        video_extensions: Some(mid_only),
        ..PeerConfig::default()
    };
    let mut pc = PeerConnection::new(config, std::time::Instant::now()).unwrap();
    pc.add_transceiver(MediaKind::Video, Direction::RecvOnly).unwrap();
    let offer = pc.create_offer().unwrap().sdp;
    let video = &offer[offer.find("m=video").unwrap()..];
    assert!(video.starts_with("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"), "{video}");
    assert!(video.contains("a=rtpmap:96 VP8/90000\r\n"), "{video}");
    assert!(
        !video.contains("VP9") && !video.contains("H264") && !video.contains("AV1"),
        "{video}"
    );
    let extmaps: Vec<&str> = video.lines().filter(|l| l.starts_with("a=extmap:")).collect();
    assert_eq!(extmaps, ["a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"]);
}

/// A video frame's packets leave as one GSO batch when the I/O layer
/// takes several datagrams at once: one destination, one size but the
/// last (issue 18). Cut at the segment size, the batch gives the
/// receiver the frame.
#[test]
fn a_frames_packets_leave_as_one_gso_batch() {
    let mut net = Net::new(0.0, 1811);
    let video = net.pc(A).add_track(MediaKind::Video).unwrap();
    net.negotiate();
    net.run_until_connected();
    net.run_for(Duration::from_millis(500));
    let frame = vp8_frame(0, true, 12_000);
    net.pc(A).send_frame(video, Duration::ZERO, &frame).unwrap();
    let now = net.now;
    let mut buf = Vec::new();
    let mut batches = Vec::new();
    while let Some(t) = net.pc(A).poll_transmit(now, 64, &mut buf) {
        assert_eq!(t.size, buf.len());
        for datagram in buf.chunks(t.segment_size.unwrap_or(t.size)) {
            net.pc(B)
                .handle_receive(now, t.transport, t.source, t.destination, datagram);
        }
        batches.push(t);
    }
    let packets = frame.len().div_ceil(1200);
    assert!(
        batches.iter().any(|t| t.datagrams() >= packets),
        "{packets} packets or more in one batch: {batches:?}"
    );
    net.run_for(Duration::from_millis(200));
    let received = net.media_frames(B, Format::Vp8);
    assert_eq!(received.last().map(|f| &f.data), Some(&frame));
}
