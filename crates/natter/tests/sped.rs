//! Issue 15, fewer round trips: SPED (draft-hancke-webrtc-sped) between
//! two PeerConnections in virtual time, 10 ms each way. With both sides
//! offering the `sped` ICE option the DTLS handshake rides the
//! connectivity checks and their responses, and the data channel opens
//! a round trip sooner than with DTLS after ICE; with one side only,
//! neither embeds and the channel still opens.

use std::time::Duration;

use natter::dtls::DtlsState;
use natter::peer::*;
use natter_ice::sped::{DTLS_IN_STUN, DTLS_IN_STUN_ACK};
use natter_stun::{Message as StunMessage, PacketKind};

#[path = "support/net.rs"]
mod net;
#[path = "support/open.rs"]
mod open;
#[allow(dead_code)]
mod support;
use net::{Net, A, B};

/// `sped[side]` turns SPED on for that side; SNAP is on for both (its
/// default), so the handshake left is ICE's and DTLS's.
fn net(sped: [bool; 2]) -> Net {
    Net::with_config(0.0, 21, |side, config| config.dtls.sped = sped[side])
}

fn offers_sped(d: &Description) -> bool {
    d.sdp
        .lines()
        .any(|l| l.starts_with("a=ice-options:") && l.split([' ', ':']).any(|o| o == "sped"))
}

/// What crossed the wire: (STUN messages with META-DTLS-IN-STUN holding
/// a packet, with only the acknowledgement attribute) per sender.
fn embedded_on_wire(net: &Net) -> [(usize, usize); 2] {
    let mut counts = [(0, 0); 2];
    for (side, datagram) in &net.wire {
        if PacketKind::of(datagram) != PacketKind::Stun {
            continue;
        }
        let Ok(msg) = StunMessage::decode(datagram) else {
            continue;
        };
        let data = msg.attributes().any(|a| a.typ == DTLS_IN_STUN && !a.value.is_empty());
        if data {
            counts[*side].0 += 1;
        } else if msg.has(DTLS_IN_STUN_ACK) {
            counts[*side].1 += 1;
        }
    }
    counts
}

/// [`open::open_and_send`] with DTLS connected on both sides, and
/// whether offer and answer carried the `sped` option.
fn open_and_send(net: &mut Net) -> (Duration, bool, bool) {
    let (time, offer, answer) = open::open_and_send(net, str::to_string);
    for side in [A, B] {
        let dtls = net.pc(side).stats().dtls.expect("DTLS ran");
        assert_eq!(dtls.state, DtlsState::Connected, "side {side}");
    }
    (time, offers_sped(&offer), offers_sped(&answer))
}

#[test]
fn sped_on_both_sides_opens_a_round_trip_sooner() {
    let mut with = net([true, true]);
    let (with_time, offered, answered) = open_and_send(&mut with);
    assert!(offered && answered, "both descriptions carry the sped option");
    let [(a_data, _), (b_data, _)] = embedded_on_wire(&with);
    assert!(b_data >= 1, "the answerer (DTLS client) embedded its ClientHello");
    assert!(a_data >= 1, "the offerer (DTLS server) embedded its flight");
    let mut without = net([false, false]);
    let (without_time, offered, answered) = open_and_send(&mut without);
    assert!(!offered && !answered);
    assert_eq!(embedded_on_wire(&without), [(0, 0); 2], "nothing embedded without SPED");
    println!("offer to the first message at B, 20 ms RTT: with SPED {with_time:?}, without {without_time:?}");
    // 10 ms each way: the ClientHello waits for ICE to select a pair
    // without SPED; with it, it rides the answerer's first check.
    assert!(
        without_time >= with_time + Duration::from_millis(20),
        "with SPED {with_time:?}, without {without_time:?}"
    );
}

#[test]
fn sped_on_one_side_only_falls_back() {
    for sped in [[true, false], [false, true]] {
        let mut net = net(sped);
        let (_, offered, answered) = open_and_send(&mut net);
        assert_eq!(offered, sped[A], "{sped:?}");
        assert!(!answered, "{sped:?}: no sped option in the answer");
        let [(a_data, _), (b_data, _)] = embedded_on_wire(&net);
        assert_eq!((a_data, b_data), (0, 0), "{sped:?}: no DTLS embedded");
    }
}

#[test]
fn a_peer_whose_checks_carry_nothing_turns_it_off_in_band() {
    // A offers SPED; B, without it, answers and starts checking before
    // its answer reaches A. A answers those checks while it still does
    // not know B's answer: their lack of both attributes tells it B does
    // not speak SPED (draft §3.3.1), so not one of A's responses carries
    // them.
    let mut net = net([true, false]);
    let ours = net
        .pc(A)
        .create_data_channel("chat", DataChannelInit::default())
        .unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    assert!(offers_sped(&offer));
    let b = net.pc(B);
    b.set_remote_description(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    b.set_local_description(&answer).unwrap();
    assert!(!offers_sped(&answer));
    net.run_for(Duration::from_millis(100));
    let answered_early = net.wire.iter().filter(|(side, _)| *side == A).count();
    assert!(answered_early > 0, "A answered B's checks before the answer");
    net.pc(A).set_remote_description(&answer).unwrap();
    net.run_until(Duration::from_secs(30), |n| n.has(A, &PeerEvent::DataChannelOpen(ours)));
    assert_eq!(embedded_on_wire(&net), [(0, 0); 2], "no SPED attribute on the wire");
}
