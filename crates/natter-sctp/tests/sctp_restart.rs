//! RFC 9260 §5.2.4 A: the peer restarts (it lost its state and sends a
//! new INIT to the same ports): natter answers with tie-tags, takes the
//! COOKIE ECHO as a restart, raises [`Event::Restarted`] with new
//! verification tags, and data then flows both ways on the new
//! association, whole and in order. Virtual time, natter on both sides.

mod sctp_support;

use std::time::Duration;

use natter_sctp::sctp::association::{Config, Event, State};
use sctp_support::{natter_pair, Natter};

#[test]
fn a_peer_that_restarts_gets_a_new_association() {
    let mut w = natter_pair();
    let old_tag = w.a.assoc.local_tag();
    w.a.assoc.send(1, 53, false, b"before").unwrap();
    w.run_for(Duration::from_secs(1));
    // b loses its state and connects again.
    let now = w.now;
    w.b = Natter::new(Config::default(), 3, now);
    w.b.assoc.connect(now);
    w.run_for(Duration::from_secs(2));
    assert!(
        w.a.events.iter().any(|(_, e)| *e == Event::Restarted),
        "{:?}",
        w.a.events
    );
    assert_eq!(w.a.assoc.state(), State::Established);
    assert_eq!(w.b.assoc.state(), State::Established);
    assert_ne!(w.a.assoc.local_tag(), old_tag, "§5.2.4 A: new tags");
    let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 3000 + usize::from(i) * 100]).collect();
    for m in &messages {
        w.a.assoc.send(1, 53, false, m).unwrap();
    }
    w.run_for(Duration::from_secs(5));
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| w.b.assoc.poll_message())
        .map(|m| m.data)
        .collect();
    assert_eq!(got, messages);
}
