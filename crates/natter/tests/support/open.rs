//! The first message over a fresh data channel, timed in virtual time:
//! shared by the fewer-round-trips tests (snap.rs, sped.rs; issue 15).

use std::time::Duration;

use natter::peer::{DataChannelInit, Description, PeerEvent};
use natter_sctp::Message;

use super::net::{Net, A, B};

/// A opens "chat" and offers; B reads the offer through `munge`,
/// answers, and A applies the answer. Once the channel is open A sends
/// "hello", and the net runs until B read it. Returns the virtual time
/// from the offer to then, the offer as B read it, and B's answer.
pub fn open_and_send(net: &mut Net, munge: impl Fn(&str) -> String) -> (Duration, Description, Description) {
    let start = net.now;
    let ours = net
        .pc(A)
        .create_data_channel("chat", DataChannelInit::default())
        .unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    let seen = Description {
        kind: offer.kind,
        sdp: munge(&offer.sdp),
    };
    net.pc(B).set_remote_description(&seen).unwrap();
    let answer = net.pc(B).create_answer().unwrap();
    net.pc(B).set_local_description(&answer).unwrap();
    net.pc(A).set_remote_description(&answer).unwrap();
    net.run_until(Duration::from_secs(30), |n| n.has(A, &PeerEvent::DataChannelOpen(ours)));
    net.pc(A)
        .data_channel(ours)
        .unwrap()
        .send(Message::Text("hello"))
        .unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(net.step(), "idle before the message arrived");
        assert!(net.now - start < Duration::from_secs(30), "no message after 30 s");
        if let Some(theirs) = net.incoming(B, "chat") {
            got = net.take_messages(B, theirs);
        }
    }
    assert_eq!(got, vec![(b"hello".to_vec(), true)]);
    (net.now - start, seen, answer)
}
