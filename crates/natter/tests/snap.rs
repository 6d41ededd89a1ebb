//! Issue 15, fewer round trips: SNAP (draft-hancke-tsvwg-snap-01) between
//! two PeerConnections in virtual time, 10 ms each way. With both sides
//! offering `a=sctp-init` the data channel opens two round trips sooner
//! than with the four-way handshake; with one side only, or an INIT the
//! answerer cannot set up from, neither side uses it and the channel
//! still opens; an `a=sctp-init` that is not base64 is refused with the
//! attribute named.

use std::time::Duration;

use natter::peer::*;

#[path = "support/net.rs"]
mod net;
#[path = "support/open.rs"]
mod open;
#[allow(dead_code)]
mod support;
use net::{Net, A, B};

fn net(snap: [bool; 2]) -> Net {
    Net::with_config(0.0, 11, |side, config| config.sctp.snap = snap[side])
}

fn has_sctp_init(d: &Description) -> bool {
    d.sdp.lines().any(|l| l.starts_with("a=sctp-init:"))
}

/// [`open::open_and_send`], with whether offer and answer carried
/// `a=sctp-init`.
fn open_and_send(mut net: Net, munge: impl Fn(&str) -> String) -> (Duration, bool, bool) {
    let (time, offer, answer) = open::open_and_send(&mut net, munge);
    (time, has_sctp_init(&offer), has_sctp_init(&answer))
}

/// `sdp` with the value of its `a=sctp-init` lines replaced by `value`.
fn with_sctp_init(sdp: &str, value: &str) -> String {
    let line = format!("a=sctp-init:{value}");
    let lines: Vec<&str> = sdp
        .lines()
        .map(|l| {
            if l.starts_with("a=sctp-init:") {
                line.as_str()
            } else {
                l
            }
        })
        .collect();
    lines.join("\r\n") + "\r\n"
}

fn unchanged(sdp: &str) -> String {
    sdp.to_string()
}

#[test]
fn snap_on_both_sides_opens_two_round_trips_sooner() {
    let (with, offered, answered) = open_and_send(net([true, true]), unchanged);
    assert!(offered && answered, "both descriptions carry a=sctp-init");
    let (without, offered, answered) = open_and_send(net([false, false]), unchanged);
    assert!(!offered && !answered);
    // 10 ms each way: INIT, INIT ACK, COOKIE ECHO and COOKIE ACK are two
    // round trips (40 ms) that SNAP leaves out.
    assert!(
        without >= with + Duration::from_millis(40),
        "with SNAP {with:?}, without {without:?}"
    );
}

#[test]
fn snap_on_one_side_only_falls_back_to_the_handshake() {
    let (_, offered, answered) = open_and_send(net([true, false]), unchanged);
    assert!(offered && !answered, "the answerer without SNAP answers without it");
    let (_, offered, answered) = open_and_send(net([false, true]), unchanged);
    assert!(
        !offered && !answered,
        "no a=sctp-init in an answer to an offer without one"
    );
}

#[test]
fn an_init_the_answerer_cannot_use_means_no_snap_on_either_side() {
    // Valid base64, but 4 bytes of zeros are no INIT chunk.
    let garbage = |sdp: &str| with_sctp_init(sdp, "AAAAAA==");
    let (_, offered, answered) = open_and_send(net([true, true]), garbage);
    assert!(offered && !answered, "the answer leaves SNAP out");
}

#[test]
fn an_sctp_init_that_is_not_base64_is_refused() {
    let mut net = net([true, true]);
    net.pc(A)
        .create_data_channel("chat", DataChannelInit::default())
        .unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    let bad = Description {
        kind: offer.kind,
        sdp: with_sctp_init(&offer.sdp, "not*base64"),
    };
    let error = net.pc(B).set_remote_description(&bad).unwrap_err();
    assert!(error.to_string().contains("sctp-init"), "{error}");
}
