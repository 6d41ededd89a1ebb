//! natter's own SCTP association sets up with sctp-proto 0.10.8 (through
//! [`SctpTransport`]) on an in-memory wire: each side's packets are
//! parsed by the other's independent implementation. natter initiating,
//! sctp-proto initiating, and both at once (WebRTC's simultaneous open,
//! RFC 9260 §5.2.1), also with packets lost.

mod sctp_support;

use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{Config, Event, State};
use natter_sctp::sctp::chunk::*;
use natter_sctp::{DtlsRole, SctpConfig, SctpTransport, TransportState};
use sctp_support::{with_first_chunk, DropFilter, Natter, Wire};

fn wire(role: DtlsRole) -> Wire<Natter, SctpTransport> {
    let now = Instant::now();
    let theirs = SctpTransport::new(SctpConfig::new(role)).expect("a valid config");
    Wire::new(now, Natter::new(Config::default(), 9, now), theirs)
}

fn up(w: &Wire<Natter, SctpTransport>) {
    assert_eq!(w.a.assoc.state(), State::Established, "natter: {:?}", w.a.events);
    assert_eq!(w.b.state(), TransportState::Established, "sctp-proto");
    assert_eq!(w.a.events.iter().filter(|(_, e)| *e == Event::Connected).count(), 1);
}

fn run(role: DtlsRole, natter_connects: bool, drop: DropFilter) -> Wire<Natter, SctpTransport> {
    let mut w = wire(role);
    w.drop = drop;
    if natter_connects {
        w.a.assoc.connect(w.now);
    }
    w.run_for(Duration::from_secs(20));
    w
}

#[test]
fn natter_initiates_and_sctp_proto_answers() {
    let w = run(DtlsRole::Server, true, Box::new(|_, _, _| false));
    up(&w);
    assert_eq!(w.sent_by(true), vec![vec![INIT], vec![COOKIE_ECHO]]);
    assert_eq!(w.sent_by(false)[..2], [vec![INIT_ACK], vec![COOKIE_ACK]]);
    // sctp-proto's INIT ACK told natter what it supports.
    let peer = w.a.assoc.peer().unwrap();
    assert!(peer.capabilities.partial_reliability && peer.capabilities.stream_reset);
    assert_ne!(peer.verification_tag, 0);
}

#[test]
fn sctp_proto_initiates_and_natter_answers() {
    let w = run(DtlsRole::Client, false, Box::new(|_, _, _| false));
    up(&w);
    assert_eq!(w.sent_by(false)[..2], [vec![INIT], vec![COOKIE_ECHO]]);
    assert_eq!(w.sent_by(true), vec![vec![INIT_ACK], vec![COOKIE_ACK]]);
}

#[test]
fn both_initiate_at_once() {
    let w = run(DtlsRole::Client, true, Box::new(|_, _, _| false));
    up(&w);
    // §5.2.1: natter, in COOKIE-WAIT, answered sctp-proto's INIT with
    // its own INIT's tag, which the association then kept.
    let initiate_tag = |types: u8| {
        let s = w
            .wire
            .iter()
            .find(|s| s.from_a && s.chunk_types() == [types])
            .expect("sent");
        with_first_chunk(&s.bytes, |c| match c {
            Chunk::Init(i) | Chunk::InitAck(i) => i.initiate_tag,
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(initiate_tag(INIT), initiate_tag(INIT_ACK));
    assert_eq!(initiate_tag(INIT), w.a.assoc.local_tag());
    assert_eq!(w.sent_by(true).iter().filter(|t| **t == [INIT]).count(), 1);
}

#[test]
fn natter_retransmits_a_lost_init_and_cookie_echo_to_sctp_proto() {
    let w = run(
        DtlsRole::Server,
        true,
        Box::new(|from_a, types, n| from_a && n == 0 && (types == [INIT] || types == [COOKIE_ECHO])),
    );
    up(&w);
    assert_eq!(w.wire.iter().filter(|s| s.lost).count(), 2);
}

#[test]
fn sctp_proto_retransmits_when_natter_answers_are_lost() {
    let w = run(
        DtlsRole::Client,
        false,
        Box::new(|from_a, types, n| from_a && n == 0 && (types == [INIT_ACK] || types == [COOKIE_ACK])),
    );
    up(&w);
    assert_eq!(w.wire.iter().filter(|s| s.lost).count(), 2);
}

#[test]
fn both_initiate_with_natters_init_lost() {
    let w = run(
        DtlsRole::Client,
        true,
        Box::new(|from_a, types, n| from_a && n == 0 && types == [INIT]),
    );
    up(&w);
}
