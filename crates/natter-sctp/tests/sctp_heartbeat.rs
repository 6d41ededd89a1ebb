//! natter's own SCTP HEARTBEATs (RFC 9260 §8.3): an idle association
//! sends one every RTO + HB.interval and measures the RTT from the ACK;
//! HEARTBEATs left unanswered count toward the peer being unreachable
//! (§8.1), which ends in ABORT. Against sctp-proto too.

mod sctp_support;

use std::time::Duration;

use natter_sctp::sctp::association::{CloseReason, Event, State};
use natter_sctp::sctp::chunk::*;
use sctp_support::Natter;

fn heartbeats(w: &[sctp_support::Seen], from_a: bool) -> Vec<std::time::Instant> {
    w.iter()
        .filter(|s| s.from_a == from_a && s.chunk_types() == [HEARTBEAT])
        .map(|s| s.at)
        .collect()
}

#[test]
fn an_idle_association_measures_its_rtt_with_heartbeats() {
    let mut w = sctp_support::natter_pair();
    w.latency = Duration::from_millis(40);
    let start = w.now;
    w.run_for(Duration::from_secs(100));
    let sent = heartbeats(&w.wire, true);
    // Every RTO (1 s) + 30 s.
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[0] - start <= Duration::from_secs(31));
    assert_eq!(sent[1] - sent[0], Duration::from_secs(31));
    let acks = w
        .wire
        .iter()
        .filter(|s| !s.from_a && s.chunk_types() == [HEARTBEAT_ACK])
        .count();
    assert!(acks >= 3);
    // The 80 ms round trip shows in the smoothed RTT (setup measured 20).
    let srtt = w.a.assoc.srtt().unwrap();
    assert!(srtt > Duration::from_millis(30), "{srtt:?}");
    assert_eq!(w.a.assoc.state(), State::Established);
    assert_eq!(w.b.assoc.state(), State::Established);
}

#[test]
fn no_heartbeat_while_data_flows() {
    let mut w = sctp_support::natter_pair();
    let start = w.now;
    for i in 0..40 {
        w.a.assoc.send(1, 53, false, &[i; 1000]).unwrap();
        w.run_for(Duration::from_secs(1));
    }
    assert!(heartbeats(&w.wire, true)
        .iter()
        .all(|t| *t - start > Duration::from_secs(40)));
}

/// The peer falls silent: each HEARTBEAT unanswered when the next is due
/// is an error; past Path.Max.Retrans (5) natter aborts.
#[test]
fn unanswered_heartbeats_abort() {
    let mut w = sctp_support::natter_pair();
    w.drop = Box::new(|from_a, _, _| !from_a);
    w.run_for(Duration::from_secs(400));
    let a: &Natter = &w.a;
    assert_eq!(a.assoc.state(), State::Closed);
    assert_eq!(a.events.last().unwrap().1, Event::Closed(CloseReason::PeerUnreachable));
    assert_eq!(heartbeats(&w.wire, true).len(), 6);
    assert!(w.wire.iter().any(|s| s.from_a && s.chunk_types() == [ABORT]));
}

#[test]
fn sctp_proto_answers_natters_heartbeats() {
    let mut w = sctp_support::natter_and_proto();
    w.run_for(Duration::from_secs(100));
    assert!(heartbeats(&w.wire, true).len() >= 2);
    assert_eq!(w.a.assoc.state(), State::Established);
    assert!(w.a.events.iter().all(|(_, e)| !matches!(e, Event::Closed(_))));
}
