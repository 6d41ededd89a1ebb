//! Issue 15, message interleaving (RFC 8260) between two PeerConnections
//! in virtual time, 10 ms each way: with `SctpSettings::interleaving` on
//! both sides the association carries I-DATA, so a chat message sent
//! just after a 256 KiB one on another channel arrives first (§1: the
//! large message no longer holds the association), and a partially
//! reliable channel still delivers. With one side off, DATA: the chat
//! message waits for the large one. Both with SNAP (the INITs in
//! `a=sctp-init`) and with the four-way handshake. Interleaving is on by
//! default, so two natters with default settings use I-DATA.

use std::time::Duration;

use natter::peer::*;
use natter_sctp::Message;

#[path = "support/net.rs"]
mod net;
#[allow(dead_code)]
mod support;
use net::{Net, A, B};

const BULK: usize = 256 * 1024;

/// `interleaving`: each side's `SctpSettings::interleaving`, `None` to
/// leave the defaults.
fn net(interleaving: Option<[bool; 2]>, snap: bool) -> Net {
    Net::with_config(0.0, 23, |side, config| {
        if let Some(on) = interleaving {
            config.sctp.interleaving = on[side];
        }
        config.sctp.snap = snap;
        config.sctp.max_message_size = 2 * BULK;
        config.sctp.receive_window = 4 * BULK as u32;
    })
}

fn open(net: &mut Net, label: &str, init: DataChannelInit) -> DataChannelId {
    net.pc(A).create_data_channel(label, init).unwrap()
}

/// The labels of the channels B's messages came on, in arrival order,
/// with their sizes.
fn arrivals(net: &mut Net) -> Vec<(String, usize)> {
    let messages: Vec<(DataChannelId, usize)> = net
        .events(B)
        .iter()
        .filter_map(|e| match e {
            PeerEvent::DataChannelMessage { id, data, .. } => Some((*id, data.len())),
            _ => None,
        })
        .collect();
    messages
        .into_iter()
        .map(|(id, len)| (net.pc(B).data_channel(id).unwrap().label().to_string(), len))
        .collect()
}

/// A opens "bulk", "chat" and an unordered "lossy" with maxRetransmits 0;
/// once all are open, sends 256 KiB on "bulk", then at once "hello" on
/// "chat" and 20 messages on "lossy", and runs until B has them all.
/// Returns what B received in order and whether each side reports
/// I-DATA in use.
fn bulk_then_chat(mut net: Net) -> (Vec<(String, usize)>, [bool; 2]) {
    let bulk = open(&mut net, "bulk", DataChannelInit::default());
    let chat = open(&mut net, "chat", DataChannelInit::default());
    let lossy = open(
        &mut net,
        "lossy",
        DataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..DataChannelInit::default()
        },
    );
    net.negotiate();
    net.run_until(Duration::from_secs(30), |n| {
        [bulk, chat, lossy]
            .iter()
            .all(|id| n.has(A, &PeerEvent::DataChannelOpen(*id)))
    });
    let big: Vec<u8> = (0..BULK).map(|i| (i % 251) as u8).collect();
    net.pc(A)
        .data_channel(bulk)
        .unwrap()
        .send(Message::Binary(&big))
        .unwrap();
    // The 256 KiB message is under way before the small ones are sent:
    // queued together, the byte-fair scheduler (RFC 8260 §3.6) would send
    // them first even with DATA.
    net.run_for(Duration::from_millis(30));
    net.pc(A)
        .data_channel(chat)
        .unwrap()
        .send(Message::Text("hello"))
        .unwrap();
    for i in 0..20u8 {
        net.pc(A)
            .data_channel(lossy)
            .unwrap()
            .send(Message::Binary(&[i; 100]))
            .unwrap();
    }
    net.run_until(Duration::from_secs(30), |n| {
        n.events(B)
            .iter()
            .filter(|e| matches!(e, PeerEvent::DataChannelMessage { .. }))
            .count()
            == 22
    });
    let used = [net.pc(A).stats().sctp_interleaving, net.pc(B).stats().sctp_interleaving];
    (arrivals(&mut net), used)
}

fn position(got: &[(String, usize)], label: &str) -> usize {
    got.iter()
        .position(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("nothing on {label}: {got:?}"))
}

#[test]
fn with_interleaving_on_both_sides_chat_overtakes_a_256_kib_message() {
    for snap in [true, false] {
        let (got, used) = bulk_then_chat(net(Some([true, true]), snap));
        assert_eq!(used, [true, true], "both sides use I-DATA (SNAP {snap})");
        assert!(got.contains(&("bulk".to_string(), BULK)), "{got:?}");
        assert!(
            position(&got, "chat") < position(&got, "bulk"),
            "the chat message arrives before the 256 KiB one (SNAP {snap}): {got:?}"
        );
        let lossy = got.iter().filter(|(l, len)| l == "lossy" && *len == 100).count();
        assert_eq!(lossy, 20, "the maxRetransmits 0 channel delivers on a lossless path");
    }
}

#[test]
fn with_interleaving_on_one_side_only_data_keeps_chat_behind_the_large_message() {
    for (sides, snap) in [([true, false], true), ([false, true], false)] {
        let (got, used) = bulk_then_chat(net(Some(sides), snap));
        assert_eq!(
            used,
            [false, false],
            "DATA when only one side offers I-DATA ({sides:?})"
        );
        assert!(
            position(&got, "bulk") < position(&got, "chat"),
            "with DATA the chat message waits for the 256 KiB one ({sides:?}): {got:?}"
        );
        assert_eq!(got.len(), 22, "everything arrives: {got:?}");
    }
}

#[test]
fn by_default_two_natters_use_i_data_and_chat_overtakes_a_256_kib_message() {
    assert!(
        SctpSettings::default().interleaving,
        "interleaving is offered by default"
    );
    let (got, used) = bulk_then_chat(net(None, true));
    assert_eq!(used, [true, true], "both sides use I-DATA with default settings");
    assert!(
        position(&got, "chat") < position(&got, "bulk"),
        "the chat message arrives before the 256 KiB one: {got:?}"
    );
    assert_eq!(got.len(), 22, "everything arrives: {got:?}");
}
