//! SNAP (draft-hancke-tsvwg-snap-01): associations set up from two INIT
//! chunks exchanged out of band, in virtual time. Both natter ends with
//! SNAP send DATA first, with no INIT, INIT ACK, COOKIE ECHO or COOKIE
//! ACK on the wire; natter and sctp-proto 0.10.8 (an independent SNAP)
//! set up from each other's INITs and carry messages both ways; INITs
//! that cannot set an association up are refused with an error that
//! says why, and without SNAP the four-way handshake runs as before.

mod sctp_support;
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use natter_sctp::sctp::association::{self, Config, Event as AssocEvent, State};
use natter_sctp::sctp::chunk::{COOKIE_ACK, COOKIE_ECHO, DATA, INIT, INIT_ACK};
use natter_sctp::sctp::Tsn;
use natter_sctp::*;
use sctp_proto::TransportConfig;
use support::{chunks, Pair, Side};

const HANDSHAKE: [u8; 4] = [INIT, INIT_ACK, COOKIE_ECHO, COOKIE_ACK];

fn snap_configs() -> (SctpConfig, SctpConfig) {
    let mut client = SctpConfig::new(DtlsRole::Client);
    let mut server = SctpConfig::new(DtlsRole::Server);
    let c = SctpTransport::snap_init(&client).expect("an INIT");
    let s = SctpTransport::snap_init(&server).expect("an INIT");
    client.snap = Some(SnapInits {
        local: c.clone(),
        remote: s.clone(),
    });
    server.snap = Some(SnapInits { local: s, remote: c });
    (client, server)
}

/// Opens a channel from the client at the start and runs until the
/// server has its first message; returns the virtual time that took.
fn first_message(pair: &mut Pair) -> Duration {
    pair.tap = true;
    let start = pair.now;
    let id = pair
        .client
        .open_channel("chat", "", ChannelOptions::reliable())
        .expect("open_channel");
    pair.drive_until(1000, |p| {
        p.client.channel(id).is_some_and(|c| c.state == ChannelState::Open)
    });
    pair.client.send(id, Message::Text("hello")).expect("send");
    pair.drive_until(1000, |p| !p.messages(Side::Server, id).is_empty());
    assert_eq!(pair.messages(Side::Server, id), vec![(b"hello".to_vec(), true)]);
    pair.now - start
}

#[test]
fn both_ends_with_snap_send_data_first() {
    let (client, server) = snap_configs();
    let mut pair = Pair::with_configs(1, client, server);
    let took = first_message(&mut pair);
    let types: Vec<u8> = pair.wire.iter().flat_map(|(_, p)| chunks(p)).map(|(t, ..)| t).collect();
    assert!(
        !types.iter().any(|t| HANDSHAKE.contains(t)),
        "no handshake chunk crosses the wire: {types:?}"
    );
    // The client's very first packet carries the DCEP OPEN.
    let (side, first) = &pair.wire[0];
    assert_eq!(*side, Side::Client);
    assert_eq!(chunks(first)[0].0, DATA);
    assert_eq!(pair.count(Side::Client, |e| *e == Event::Connected), 1);
    assert_eq!(pair.count(Side::Server, |e| *e == Event::Connected), 1);
    // 10 ms each way: the OPEN and "hello" leave at once (RFC 8832 §6.6:
    // messages may follow the OPEN before its ACK) and arrive one way
    // later.
    assert_eq!(took, Duration::from_millis(10));
}

#[test]
fn without_snap_the_four_way_handshake_runs_first() {
    let mut pair = Pair::new(1);
    let took = first_message(&mut pair);
    let client: Vec<Vec<u8>> = pair
        .wire
        .iter()
        .filter(|(s, _)| *s == Side::Client)
        .map(|(_, p)| chunks(p).iter().map(|(t, ..)| *t).collect())
        .collect();
    assert_eq!(client[0], vec![INIT]);
    assert_eq!(client[1][0], COOKIE_ECHO);
    // INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, then the data: two round
    // trips more than with SNAP.
    assert_eq!(took, Duration::from_millis(10 + 40));
}

#[test]
fn snap_negotiates_streams_and_extensions_from_the_inits() {
    let mut small = Config {
        outbound_streams: 10,
        inbound_streams: 20,
        ..Config::default()
    };
    let local = association::snap_init(&small, 7, Tsn(100));
    small.outbound_streams = 30;
    small.inbound_streams = 5;
    let remote = association::snap_init(&small, 8, Tsn(200));
    let mut a = association::Association::new(Config::default(), &[1; 32], Instant::now());
    a.connect_snap(&local, &remote).expect("valid INITs");
    assert_eq!(a.state(), State::Established);
    assert_eq!(a.poll_event(), Some(AssocEvent::Connected));
    assert_eq!(a.local_tag(), 7);
    let peer = a.peer().expect("the peer's INIT");
    assert_eq!(peer.verification_tag, 8);
    assert_eq!(peer.initial_tsn, Tsn(200));
    // §5.1.1: our outbound is capped by their inbound, and back.
    assert_eq!((peer.outbound_streams, peer.inbound_streams), (5, 20));
    assert!(peer.capabilities.partial_reliability && peer.capabilities.stream_reset);
    // Set up once; a second SNAP is refused.
    assert_eq!(
        a.connect_snap(&local, &remote),
        Err(SnapError::NotClosed(State::Established))
    );
}

#[test]
fn a_peer_init_with_one_stream_and_a_closed_window_still_sets_up() {
    let ours = association::snap_init(&Config::default(), 7, Tsn(1));
    let narrow = Config {
        outbound_streams: 1,
        inbound_streams: 1,
        receive_window: 0,
        ..Config::default()
    };
    let theirs = association::snap_init(&narrow, 9, Tsn(u32::MAX));
    let now = Instant::now();
    let mut a = association::Association::new(Config::default(), &[4; 32], now);
    a.connect_snap(&ours, &theirs).expect("a valid INIT");
    let peer = a.peer().expect("set up");
    assert_eq!(
        (peer.outbound_streams, peer.inbound_streams, peer.receive_window),
        (1, 1, 0)
    );
    a.send(0, 51, false, b"x").expect("established");
    // At most the one chunk a closed window allows (RFC 9260 §6.1 A).
    let mut buf = [0u8; 1500];
    let mut packets = 0;
    while let Ok(Some(_)) = a.poll_transmit(now, &mut buf) {
        packets += 1;
        assert!(packets <= 1, "more than one packet into a closed window");
    }
}

fn refused(local: Vec<u8>, remote: Vec<u8>) -> String {
    let mut config = SctpConfig::new(DtlsRole::Client);
    config.snap = Some(SnapInits { local, remote });
    match SctpTransport::new(config) {
        Err(Error::Snap(e)) => e.to_string(),
        other => panic!("expected a SNAP error, got {other:?}"),
    }
}

#[test]
fn inits_that_cannot_set_up_an_association_are_refused_with_the_reason() {
    let config = SctpConfig::new(DtlsRole::Client);
    let ours = SctpTransport::snap_init(&config).expect("an INIT");
    let theirs = SctpTransport::snap_init(&config).expect("an INIT");
    assert_eq!(ours[0], INIT);
    assert_ne!(ours, theirs, "fresh tag and TSN each time");

    let garbage = refused(ours.clone(), b"not an INIT".to_vec());
    assert!(garbage.starts_with("the peer's SNAP INIT"), "{garbage}");

    assert!(refused(ours.clone(), vec![1, 0, 0]).contains("not one whole chunk"));

    let mut ack = theirs.clone();
    ack[0] = INIT_ACK;
    assert_eq!(
        refused(ours.clone(), ack),
        "the peer's SNAP INIT is chunk type 2, not INIT (1)"
    );

    let mut zero_tag = theirs.clone();
    zero_tag[4..8].fill(0);
    assert!(refused(ours.clone(), zero_tag).contains("Initiate Tag 0"));

    let mut no_streams = theirs.clone();
    no_streams[12..14].fill(0);
    assert!(refused(ours.clone(), no_streams).contains("no streams"));

    let mut trailing = theirs.clone();
    trailing.extend_from_slice(&[0; 8]);
    assert!(refused(ours.clone(), trailing).contains("not one whole chunk"));

    let mut truncated = theirs.clone();
    truncated.truncate(12);
    assert!(refused(ours.clone(), truncated).contains("not one whole chunk"));

    assert!(refused(ours.clone(), vec![INIT; 4096]).contains("longer than 1024"));

    let mut bad_local = ours.clone();
    bad_local[0] = DATA;
    assert!(refused(bad_local, theirs).starts_with("our SNAP INIT"));

    // Our own INIT handed back as the peer's: the tags are the same.
    assert!(refused(ours.clone(), ours).contains("they are the same INIT"));
}

#[test]
fn natter_and_sctp_proto_set_up_from_each_others_inits() {
    let now = Instant::now();
    let ours = association::snap_init(&Config::default(), 0x1234_5678, Tsn(1000));
    let theirs = sctp_proto::generate_snap_token(&TransportConfig::default()).expect("a token");
    let mut natter = sctp_support::Natter::new(Config::default(), 3, now);
    natter
        .assoc
        .connect_snap(&ours, &theirs)
        .expect("sctp-proto's INIT parses");
    let proto = sctp_support::Proto::snap(theirs.clone(), Bytes::from(ours));
    assert!(proto.is_established(), "sctp-proto is up from the INITs alone");
    let mut w = sctp_support::Wire::new(now, natter, proto);

    w.a.assoc.send(0, 51, false, b"from natter").expect("established");
    w.b.send(1, 51, b"from sctp-proto");
    w.run_for(Duration::from_secs(2));

    let types: Vec<u8> = w.wire.iter().flat_map(|s| s.chunk_types()).collect();
    assert!(
        !types.iter().any(|t| HANDSHAKE.contains(t)),
        "no handshake chunk crosses the wire: {types:?}"
    );
    assert_eq!(w.b.received, vec![(0, 51, b"from natter".to_vec())]);
    let got = w.a.assoc.poll_message().expect("sctp-proto's message");
    assert_eq!(
        (got.stream, got.ppid, got.data.as_slice()),
        (1, 51, &b"from sctp-proto"[..])
    );
    // Each side acknowledged the other's DATA: nothing left in flight.
    assert_eq!(w.a.assoc.buffered_amount(), 0);
}
