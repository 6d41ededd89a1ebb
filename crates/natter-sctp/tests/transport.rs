//! Two SctpTransports in memory under a virtual clock: the association,
//! DCEP from either side, message delivery with and without loss,
//! negotiated channels, closing, buffered amounts and size limits.

mod support;

use std::time::Duration;

use natter_sctp::*;
use rand::Rng;
use support::{data_chunks, rng, Link, Pair, Side};

#[test]
fn association_establishes() {
    let mut p = Pair::new(1);
    assert_eq!(p.client.state(), TransportState::Connecting);
    assert_eq!(p.server.state(), TransportState::Connecting);
    p.connect();
    assert_eq!(p.client_events.first(), Some(&Event::Connected));
    assert_eq!(p.server_events.first(), Some(&Event::Connected));
    // INIT, INIT ACK, COOKIE ECHO, COOKIE ACK: four packets.
    assert_eq!(p.sent[0] + p.sent[1], 4, "handshake packets: {:?}", p.sent);
}

#[test]
fn association_establishes_under_loss() {
    let mut p = Pair::new(2);
    p.up.loss = 0.5;
    p.down.loss = 0.5;
    p.drive_until(10_000, |p| {
        p.client.state() == TransportState::Established && p.server.state() == TransportState::Established
    });
}

fn opened(events: &[Event], id: ChannelId) -> Option<(String, String, ChannelOptions, ChannelOrigin)> {
    events.iter().find_map(|e| match e {
        Event::ChannelOpen {
            id: i,
            label,
            protocol,
            options,
            origin,
        } if *i == id => Some((label.clone(), protocol.clone(), *options, *origin)),
        _ => None,
    })
}

#[test]
fn dcep_channel_from_either_side() {
    let mut p = Pair::new(3);
    // Opened before the association is up: it waits, then sends OPEN.
    let from_client = p
        .client
        .open_channel("chat", "json", ChannelOptions::reliable())
        .unwrap();
    assert_eq!(from_client, ChannelId(0), "the DTLS client uses even ids");
    assert_eq!(p.client.channel(from_client).unwrap().state, ChannelState::Connecting);
    p.connect();
    p.drive_until(100, |p| opened(&p.server_events, from_client).is_some());
    let (label, protocol, options, origin) = opened(&p.server_events, from_client).unwrap();
    assert_eq!((label.as_str(), protocol.as_str()), ("chat", "json"));
    assert_eq!(options, ChannelOptions::reliable());
    assert_eq!(origin, ChannelOrigin::Remote);
    assert_eq!(opened(&p.client_events, from_client).unwrap().3, ChannelOrigin::Local);
    p.drive_until(100, |p| p.client.channel(from_client).unwrap().acknowledged);

    let options = ChannelOptions {
        ordered: false,
        max_packet_lifetime: Some(3000),
        priority: Priority::HIGH,
        ..Default::default()
    };
    let from_server = p.open(Side::Server, "telemetry", "", options);
    assert_eq!(from_server, ChannelId(1), "the DTLS server uses odd ids");
    let (label, protocol, got, origin) = opened(&p.client_events, from_server).unwrap();
    assert_eq!(
        (label.as_str(), protocol.as_str(), origin),
        ("telemetry", "", ChannelOrigin::Remote)
    );
    assert_eq!(got, options);
    p.drive_until(100, |p| p.server.channel(from_server).unwrap().acknowledged);
    let next = p.client.open_channel("second", "", ChannelOptions::default()).unwrap();
    assert_eq!(next, ChannelId(2));

    // Both ways on both channels.
    p.client.send(from_client, Message::Text("hi")).unwrap();
    p.client.send(from_server, Message::Binary(&[1, 2, 3])).unwrap();
    p.server.send(from_client, Message::Binary(b"")).unwrap();
    p.server.send(from_server, Message::Text("")).unwrap();
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.messages(Side::Server, from_client), vec![(b"hi".to_vec(), true)]);
    assert_eq!(p.messages(Side::Server, from_server), vec![(vec![1, 2, 3], false)]);
    assert_eq!(p.messages(Side::Client, from_client), vec![(vec![], false)]);
    assert_eq!(p.messages(Side::Client, from_server), vec![(vec![], true)]);
    assert_eq!(p.client.stats(), Stats::default());
    assert_eq!(p.server.stats(), Stats::default());
}

/// A message body of `len` bytes; text is ASCII so that it is UTF-8.
fn body(r: &mut impl Rng, len: usize, text: bool) -> Vec<u8> {
    (0..len)
        .map(|_| if text { r.gen_range(b' '..=b'~') } else { r.gen() })
        .collect()
}

/// Sends every message, stepping the pair whenever the send buffer is full.
fn send_all(p: &mut Pair, side: Side, channel: ChannelId, messages: &[(Vec<u8>, bool)]) {
    for (data, text) in messages {
        loop {
            let msg = if *text {
                Message::Text(std::str::from_utf8(data).unwrap())
            } else {
                Message::Binary(data)
            };
            match p.side(side).send(channel, msg) {
                Ok(()) => break,
                Err(Error::SendBufferFull { .. }) => {
                    assert!(p.step(), "idle with a full send buffer");
                }
                Err(e) => panic!("send failed: {e}"),
            }
        }
    }
}

fn mixed_messages(seed: u64, n: usize, max_len: usize) -> Vec<(Vec<u8>, bool)> {
    let mut r = rng(seed);
    (0..n)
        .map(|i| {
            let len = match i % 10 {
                0 => 0,
                1 => 1,
                2 => max_len,
                3 => r.gen_range(max_len / 4..max_len),
                4 | 5 => r.gen_range(1000..20_000),
                _ => r.gen_range(2..1200),
            };
            let text = r.gen_bool(0.5);
            (body(&mut r, len, text), text)
        })
        .collect()
}

#[test]
fn thousand_mixed_messages_arrive_exact_and_in_order() {
    let mut p = Pair::new(4);
    p.connect();
    let ch = p.open(Side::Client, "bulk", "", ChannelOptions::reliable());
    let messages = mixed_messages(40, 1000, 256 * 1024);
    assert!(messages.iter().any(|(d, _)| d.len() == 262_144));
    send_all(&mut p, Side::Client, ch, &messages);
    p.drive_until(1_000_000, |p| p.messages(Side::Server, ch).len() == messages.len());
    let got = p.messages(Side::Server, ch);
    for (i, (want, got)) in messages.iter().zip(&got).enumerate() {
        assert!(
            want == got,
            "message {i} differs: {} vs {} bytes",
            want.0.len(),
            got.0.len()
        );
    }
    // The last SACK is still on its way.
    p.drive_until(1000, |p| p.client.buffered_amount(ch).unwrap() == 0);
    assert_eq!(p.server.stats(), Stats::default());
}

#[test]
fn unordered_without_retransmissions_under_loss_delivers_some_without_blocking() {
    let mut p = Pair::new(5);
    p.connect();
    let options = ChannelOptions {
        ordered: false,
        max_retransmits: Some(0),
        ..Default::default()
    };
    let ch = p.open(Side::Client, "lossy", "", options);
    p.drive_until(100, |p| p.client.channel(ch).unwrap().acknowledged);
    p.up.loss = 0.2;
    p.down.loss = 0.2;
    let n = 300;
    for i in 0..n {
        let data = format!("{i:05}").repeat(100);
        p.client.send(ch, Message::Text(&data)).unwrap();
        // One message every 10 ms of virtual time.
        let until = p.now + Duration::from_millis(10);
        while p.now < until && p.step() {}
    }
    p.drive_for(Duration::from_secs(30));
    let got = p.messages(Side::Server, ch);
    let indices: Vec<usize> = got
        .iter()
        .map(|(d, _)| std::str::from_utf8(&d[..5]).unwrap().parse().unwrap())
        .collect();
    assert!(
        !indices.is_empty() && indices.len() < n,
        "{} of {n} arrived",
        indices.len()
    );
    assert!(indices.len() > n / 2, "only {} of {n} arrived", indices.len());
    // Not blocked: the last messages arrive although earlier ones were lost.
    assert!(indices.iter().any(|&i| i >= n - 10), "nothing from the end arrived");
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), indices.len(), "a message arrived twice");
    assert_eq!(
        p.client.buffered_amount(ch).unwrap(),
        0,
        "abandoned data still buffered"
    );
}

#[test]
fn reliable_under_loss_and_reordering_delivers_everything() {
    let mut p = Pair::new(6);
    p.connect();
    let ch = p.open(Side::Server, "reliable", "", ChannelOptions::reliable());
    let lossy = Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(30),
        loss: 0.1,
    };
    p.up = lossy;
    p.down = lossy;
    let messages = mixed_messages(60, 300, 40_000);
    send_all(&mut p, Side::Server, ch, &messages);
    p.drive_until(2_000_000, |p| p.messages(Side::Client, ch).len() == messages.len());
    let got = p.messages(Side::Client, ch);
    for (i, (want, got)) in messages.iter().zip(&got).enumerate() {
        assert!(
            want == got,
            "message {i} differs: {} vs {} bytes",
            want.0.len(),
            got.0.len()
        );
    }
    assert!(p.dropped[1] > 0, "the link dropped nothing");
}

#[test]
fn negotiated_channel_sends_no_dcep() {
    let mut p = Pair::new(7);
    p.connect();
    let options = ChannelOptions {
        negotiated_id: Some(5),
        ..Default::default()
    };
    let a = p.client.open_channel("neg", "proto", options).unwrap();
    let b = p.server.open_channel("neg", "proto", options).unwrap();
    assert_eq!((a, b), (ChannelId(5), ChannelId(5)));
    p.drive_for(Duration::from_millis(100));
    assert_eq!(opened(&p.client_events, a).unwrap().3, ChannelOrigin::Negotiated);
    assert_eq!(opened(&p.server_events, b).unwrap().3, ChannelOrigin::Negotiated);
    assert_eq!(
        p.client_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelOpen { .. }))
            .count(),
        1
    );
    assert_eq!(
        p.server_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelOpen { .. }))
            .count(),
        1
    );
    // No handshake packets since the association: nothing was sent.
    p.client.send(a, Message::Text("ping")).unwrap();
    p.drive_for(Duration::from_millis(100));
    p.server.send(b, Message::Text("pong")).unwrap();
    p.drive_for(Duration::from_millis(100));
    assert_eq!(p.messages(Side::Server, b), vec![(b"ping".to_vec(), true)]);
    assert_eq!(p.messages(Side::Client, a), vec![(b"pong".to_vec(), true)]);
    assert_eq!(
        p.client.open_channel("again", "", options),
        Err(Error::StreamIdInUse(ChannelId(5)))
    );
}

#[test]
fn negotiated_channel_opened_late_on_one_side() {
    let mut p = Pair::new(8);
    p.connect();
    let options = ChannelOptions {
        negotiated_id: Some(8),
        ..Default::default()
    };
    let a = p.client.open_channel("neg", "", options).unwrap();
    p.drive_for(Duration::from_millis(50));
    p.client.send(a, Message::Text("early")).unwrap();
    p.drive_for(Duration::from_millis(100));
    // The peer has no channel 8 yet: the message is dropped and counted.
    assert_eq!(p.server.stats().messages_dropped, 1);
    let b = p.server.open_channel("neg", "", options).unwrap();
    p.client.send(a, Message::Text("late")).unwrap();
    p.server.send(b, Message::Text("back")).unwrap();
    p.drive_for(Duration::from_millis(100));
    assert_eq!(p.messages(Side::Server, b), vec![(b"late".to_vec(), true)]);
    assert_eq!(p.messages(Side::Client, a), vec![(b"back".to_vec(), true)]);
}

#[test]
fn close_from_either_side() {
    let mut p = Pair::new(9);
    p.connect();
    let a = p.open(Side::Client, "a", "", ChannelOptions::reliable());
    let b = p.open(Side::Client, "b", "", ChannelOptions::reliable());
    let c = p.open(Side::Server, "c", "", ChannelOptions::reliable());

    // Messages queued before the close arrive before it.
    for i in 0..20 {
        p.client.send(a, Message::Binary(&vec![i; 5000])).unwrap();
    }
    p.client.close_channel(a).unwrap();
    assert_eq!(p.client.channel(a).unwrap().state, ChannelState::Closing);
    assert_eq!(p.client.send(a, Message::Text("x")), Err(Error::ChannelNotOpen(a)));
    p.drive_until(1000, |p| {
        p.count(Side::Client, |e| *e == Event::ChannelClosed(a)) == 1
            && p.count(Side::Server, |e| *e == Event::ChannelClosed(a)) == 1
    });
    assert_eq!(p.messages(Side::Server, a).len(), 20);
    let closed_at = p
        .server_events
        .iter()
        .position(|e| *e == Event::ChannelClosed(a))
        .unwrap();
    let last_message = p
        .server_events
        .iter()
        .rposition(|e| matches!(e, Event::Message { channel, .. } if *channel == a))
        .unwrap();
    assert!(last_message < closed_at);
    assert!(p.client.channel(a).is_none() && p.server.channel(a).is_none());

    // The peer (the DTLS server) closes a channel the client opened.
    p.server.close_channel(b).unwrap();
    // And the client closes one the server opened.
    p.client.close_channel(c).unwrap();
    p.drive_until(1000, |p| {
        [Side::Client, Side::Server].iter().all(|&s| {
            p.count(s, |e| *e == Event::ChannelClosed(b)) == 1 && p.count(s, |e| *e == Event::ChannelClosed(c)) == 1
        })
    });
    assert_eq!(p.client.channels().count(), 0);
    assert_eq!(p.server.channels().count(), 0);

    // The association carries on; ids come back once their reset is done.
    p.drive_for(Duration::from_secs(1));
    let again = p.open(Side::Client, "again", "", ChannelOptions::reliable());
    assert_eq!(again, ChannelId(0));
    p.client.send(again, Message::Text("still here")).unwrap();
    p.drive_for(Duration::from_millis(200));
    let on_zero = p.messages(Side::Server, again);
    assert_eq!(on_zero.len(), 21, "20 on the first channel 0, one on the second");
    assert_eq!(on_zero[20], (b"still here".to_vec(), true));
}

#[test]
fn buffered_amount_falls_and_the_low_water_event_fires() {
    let mut p = Pair::new(10);
    p.connect();
    let ch = p.open(Side::Client, "bulk", "", ChannelOptions::reliable());
    // Until its SACK comes, the OPEN message counts as buffered.
    p.drive_until(1000, |p| p.client.buffered_amount(ch).unwrap() == 0);
    assert!(!p.client_events.contains(&Event::BufferedAmountLow(ch)));
    p.client.set_buffered_amount_low_threshold(ch, 64 * 1024).unwrap();
    let chunk = vec![7u8; 16 * 1024];
    for _ in 0..64 {
        p.client.send(ch, Message::Binary(&chunk)).unwrap();
    }
    assert_eq!(p.client.buffered_amount(ch).unwrap(), 64 * 16 * 1024);
    let mut seen = vec![p.client.buffered_amount(ch).unwrap()];
    p.drive_until(100_000, |p| {
        seen.push(p.client.buffered_amount(ch).unwrap());
        p.client_events.contains(&Event::BufferedAmountLow(ch))
    });
    assert!(p.client.buffered_amount(ch).unwrap() <= 64 * 1024);
    assert!(seen.windows(2).all(|w| w[1] <= w[0]), "buffered amount rose");
    p.drive_until(100_000, |p| p.client.buffered_amount(ch).unwrap() == 0);
    assert_eq!(p.count(Side::Client, |e| *e == Event::BufferedAmountLow(ch)), 1);
    assert_eq!(p.messages(Side::Server, ch).len(), 64);
}

#[test]
fn oversized_messages_are_refused() {
    let mut p = Pair::new(11);
    p.connect();
    let ch = p.open(Side::Client, "big", "", ChannelOptions::reliable());
    assert_eq!(p.client.max_message_size(), 262_144);
    let big = vec![0u8; 262_145];
    assert_eq!(
        p.client.send(ch, Message::Binary(&big)),
        Err(Error::MessageTooLarge {
            len: 262_145,
            max: 262_144
        })
    );
    p.client.send(ch, Message::Binary(&big[..262_144])).unwrap();
    // The peer's a=max-message-size lowers the limit (RFC 8841 §6).
    p.client.set_remote_max_message_size(Some(100_000));
    assert_eq!(
        p.client.send(ch, Message::Binary(&big[..100_001])),
        Err(Error::MessageTooLarge {
            len: 100_001,
            max: 100_000
        })
    );
    p.client.set_remote_max_message_size(None);
    assert_eq!(p.client.max_message_size(), 65_536);
    p.client.set_remote_max_message_size(Some(0));
    assert_eq!(p.client.max_message_size(), 262_144);
    p.drive_until(10_000, |p| p.messages(Side::Server, ch).len() == 1);
    assert_eq!(p.messages(Side::Server, ch)[0].0.len(), 262_144);
}

#[test]
fn a_larger_configured_maximum_carries_larger_messages() {
    let mut client = SctpConfig::new(DtlsRole::Client);
    let mut server = SctpConfig::new(DtlsRole::Server);
    for c in [&mut client, &mut server] {
        c.max_message_size = 1024 * 1024;
        c.receive_window = 4 * 1024 * 1024;
    }
    let mut p = Pair::with_configs(12, client, server);
    p.connect();
    let ch = p.open(Side::Server, "big", "", ChannelOptions::reliable());
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    p.server.send(ch, Message::Binary(&data)).unwrap();
    p.drive_until(100_000, |p| p.messages(Side::Client, ch).len() == 1);
    assert!(p.messages(Side::Client, ch)[0].0 == data);
}

#[test]
fn invalid_options_and_configs_are_refused() {
    let mut t = SctpTransport::new(SctpConfig::new(DtlsRole::Client)).unwrap();
    let both = ChannelOptions {
        max_retransmits: Some(1),
        max_packet_lifetime: Some(1),
        ..Default::default()
    };
    assert_eq!(t.open_channel("", "", both), Err(Error::ConflictingReliability));
    let reserved = ChannelOptions {
        negotiated_id: Some(65535),
        ..Default::default()
    };
    assert_eq!(t.open_channel("", "", reserved), Err(Error::ReservedStreamId));
    let long = "x".repeat(70_000);
    assert!(matches!(
        t.open_channel(&long, "", ChannelOptions::default()),
        Err(Error::FieldTooLong { field: "label", .. })
    ));
    let mut c = SctpConfig::new(DtlsRole::Server);
    c.max_message_size = 1000;
    assert!(matches!(SctpTransport::new(c), Err(Error::InvalidConfig(_))));
    let mut c = SctpConfig::new(DtlsRole::Server);
    c.mtu = 50;
    assert!(matches!(SctpTransport::new(c), Err(Error::InvalidConfig(_))));
    assert_eq!(
        t.send(ChannelId(9), Message::Text("x")),
        Err(Error::UnknownChannel(ChannelId(9)))
    );
    assert_eq!(t.shutdown(), Err(Error::NotEstablished));
}

#[test]
fn small_mtu_bounds_every_packet() {
    let mut client = SctpConfig::new(DtlsRole::Client);
    let mut server = SctpConfig::new(DtlsRole::Server);
    client.mtu = 600;
    server.mtu = 600;
    let mut p = Pair::with_configs(13, client, server);
    p.connect();
    let ch = p.open(Side::Client, "mtu", "", ChannelOptions::reliable());
    p.client.send(ch, Message::Binary(&vec![1; 50_000])).unwrap();
    let mut biggest = 0;
    for _ in 0..10_000 {
        while let Some(d) = p.client.poll_transmit(p.now) {
            biggest = biggest.max(d.len());
            let now = p.now;
            p.server.handle_receive(now, &d);
        }
        while let Some(d) = p.server.poll_transmit(p.now) {
            let now = p.now;
            p.client.handle_receive(now, &d);
        }
        while let Some(e) = p.server.poll_event() {
            p.server_events.push(e);
        }
        if !p.messages(Side::Server, ch).is_empty() {
            break;
        }
        p.now += Duration::from_millis(10);
        let now = p.now;
        p.client.handle_timeout(now);
        p.server.handle_timeout(now);
    }
    assert_eq!(p.messages(Side::Server, ch).len(), 1);
    assert!(biggest <= 600 && biggest > 500, "largest packet {biggest}");
}

#[test]
fn shutdown_closes_both_sides() {
    let mut p = Pair::new(14);
    p.connect();
    let ch = p.open(Side::Client, "x", "", ChannelOptions::reliable());
    p.client.send(ch, Message::Text("last words")).unwrap();
    p.client.shutdown().unwrap();
    assert_eq!(p.client.state(), TransportState::ShuttingDown);
    assert_eq!(
        p.client.open_channel("late", "", ChannelOptions::default()),
        Err(Error::Closed)
    );
    assert_eq!(p.client.send(ch, Message::Text("x")), Err(Error::ChannelNotOpen(ch)));
    p.drive_until(1000, |p| {
        p.client.state() == TransportState::Closed && p.server.state() == TransportState::Closed
    });
    // Queued before the shutdown, so delivered before it.
    assert_eq!(p.messages(Side::Server, ch), vec![(b"last words".to_vec(), true)]);
    for side in [Side::Client, Side::Server] {
        let events = p.events(side);
        assert!(events.contains(&Event::ChannelClosed(ch)), "{side:?}: {events:?}");
        assert_eq!(
            events.last(),
            Some(&Event::Closed {
                reason: CloseReason::Closed
            })
        );
    }
    // Nothing left to do, nothing more accepted.
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.client.send(ch, Message::Text("x")), Err(Error::UnknownChannel(ch)));
}

#[test]
fn garbage_is_dropped_and_counted() {
    let mut p = Pair::new(15);
    p.connect();
    let now = p.now;
    p.server.handle_receive(now, &[]);
    p.server.handle_receive(now, &[0; 11]);
    p.server.handle_receive(now, &[0xff; 200]);
    assert_eq!(p.server.stats().packets_dropped, 3);
    let ch = p.open(Side::Client, "still", "", ChannelOptions::reliable());
    p.client.send(ch, Message::Text("fine")).unwrap();
    p.drive_for(Duration::from_millis(200));
    assert_eq!(p.messages(Side::Server, ch).len(), 1);
}

#[test]
fn dcep_and_ppids_on_the_wire() {
    let mut p = Pair::new(16);
    p.tap = true;
    let ch = p
        .client
        .open_channel("chat", "json", ChannelOptions::reliable())
        .unwrap();
    p.connect();
    p.drive_until(100, |p| p.client.channel(ch).unwrap().acknowledged);
    p.client.send(ch, Message::Text("a")).unwrap();
    p.client.send(ch, Message::Binary(&[1])).unwrap();
    p.client.send(ch, Message::Text("")).unwrap();
    p.client.send(ch, Message::Binary(&[])).unwrap();
    p.drive_for(Duration::from_millis(200));

    let up = p.data_sent(Side::Client);
    let open = &up[0];
    assert_eq!((open.stream, open.ppid, open.unordered), (0, 50, false));
    let DcepMessage::Open(msg) = DcepMessage::parse(&open.payload).unwrap() else {
        panic!("first DATA is not DATA_CHANNEL_OPEN");
    };
    assert_eq!((msg.label, msg.protocol), ("chat", "json"));
    assert_eq!(msg.channel_type, ChannelType::Reliable);
    let down = p.data_sent(Side::Server);
    assert_eq!(
        (down[0].stream, down[0].ppid, down[0].payload.as_slice()),
        (0, 50, &[0x02][..])
    );
    let user: Vec<(u32, Vec<u8>)> = up[1..].iter().map(|c| (c.ppid, c.payload.clone())).collect();
    assert_eq!(
        user,
        vec![(51, b"a".to_vec()), (53, vec![1]), (56, vec![0]), (57, vec![0])],
        "RFC 8831 §6.6: empty messages are one zero byte with PPID 56 or 57"
    );
}

#[test]
fn unordered_channel_sends_ordered_until_acknowledged() {
    let mut p = Pair::new(17);
    p.connect();
    p.tap = true;
    let options = ChannelOptions {
        ordered: false,
        ..Default::default()
    };
    let ch = p.client.open_channel("u", "", options).unwrap();
    // Sent before the peer could answer: these must not overtake the OPEN.
    for _ in 0..3 {
        p.client.send(ch, Message::Text("early")).unwrap();
    }
    p.drive_until(100, |p| p.client.channel(ch).unwrap().acknowledged);
    for _ in 0..3 {
        p.client.send(ch, Message::Text("late")).unwrap();
    }
    p.drive_for(Duration::from_millis(200));
    let flags: Vec<(Vec<u8>, bool)> = p
        .data_sent(Side::Client)
        .into_iter()
        .filter(|c| c.stream == ch.0 && c.ppid == 51)
        .map(|c| (c.payload, c.unordered))
        .collect();
    let want: Vec<(Vec<u8>, bool)> = [("early", false), ("late", true)]
        .iter()
        .flat_map(|&(m, u)| std::iter::repeat_n((m.as_bytes().to_vec(), u), 3))
        .collect();
    assert_eq!(flags, want);
    assert_eq!(p.messages(Side::Server, ch).len(), 6);
}

#[test]
fn negotiated_channels_put_no_dcep_on_the_wire() {
    let mut p = Pair::new(18);
    p.connect();
    p.tap = true;
    let options = ChannelOptions {
        negotiated_id: Some(0),
        ordered: false,
        max_retransmits: Some(2),
        ..Default::default()
    };
    let a = p.client.open_channel("n", "", options).unwrap();
    let b = p.server.open_channel("n", "", options).unwrap();
    p.client.send(a, Message::Binary(&[9; 10])).unwrap();
    p.server.send(b, Message::Binary(&[8; 10])).unwrap();
    p.drive_for(Duration::from_millis(200));
    for side in [Side::Client, Side::Server] {
        let data = p.data_sent(side);
        assert_eq!(data.len(), 1, "{side:?}: {data:?}");
        assert_eq!((data[0].ppid, data[0].unordered), (53, true));
    }
}

#[test]
fn timed_channel_under_loss_gives_up_on_old_messages() {
    let mut p = Pair::new(19);
    p.connect();
    let options = ChannelOptions {
        max_packet_lifetime: Some(150),
        ..Default::default()
    };
    let ch = p.open(Side::Server, "timed", "", options);
    p.drive_until(100, |p| p.server.channel(ch).unwrap().acknowledged);
    p.up.loss = 0.3;
    p.down.loss = 0.3;
    let n = 200;
    for i in 0..n {
        p.server.send(ch, Message::Binary(&[(i % 256) as u8; 800])).unwrap();
        let until = p.now + Duration::from_millis(20);
        while p.now < until && p.step() {}
    }
    p.up.loss = 0.0;
    p.down.loss = 0.0;
    p.drive_for(Duration::from_secs(30));
    let got = p.messages(Side::Client, ch);
    assert!(got.len() > n / 2 && got.len() < n, "{} of {n} arrived", got.len());
    assert_eq!(p.server.buffered_amount(ch).unwrap(), 0);
    // Ordered: what arrived, arrived in order.
    let firsts: Vec<u8> = got.iter().map(|(d, _)| d[0]).collect();
    let mut expected_order = firsts.clone();
    expected_order.dedup();
    assert_eq!(firsts.len(), expected_order.len());
}

#[test]
fn messages_sent_right_after_open_follow_the_open() {
    let mut p = Pair::new(20);
    p.connect();
    let ch = p.server.open_channel("eager", "", ChannelOptions::reliable()).unwrap();
    p.server.send(ch, Message::Text("first")).unwrap();
    p.drive_for(Duration::from_millis(200));
    let open_at = p
        .client_events
        .iter()
        .position(|e| matches!(e, Event::ChannelOpen { id, .. } if *id == ch))
        .unwrap();
    let msg_at = p
        .client_events
        .iter()
        .position(|e| matches!(e, Event::Message { channel, .. } if *channel == ch))
        .unwrap();
    assert!(open_at < msg_at);
    assert!(p.server.channel(ch).unwrap().acknowledged);
}

#[test]
fn shutdown_with_data_in_flight_on_a_lossy_link() {
    let mut p = Pair::new(21);
    p.connect();
    let ch = p.open(Side::Server, "x", "", ChannelOptions::reliable());
    p.up.loss = 0.2;
    p.down.loss = 0.2;
    for i in 0..50u8 {
        p.server.send(ch, Message::Binary(&[i; 3000])).unwrap();
    }
    p.server.shutdown().unwrap();
    p.drive_until(100_000, |p| p.server.state() == TransportState::Closed);
    assert_eq!(p.messages(Side::Client, ch).len(), 50);
}

#[test]
fn pmtu_probing_lets_packets_grow_up_to_max_mtu() {
    let config = |role| SctpConfig {
        max_mtu: Some(1400),
        ..SctpConfig::new(role)
    };
    let mut p = Pair::with_configs(22, config(DtlsRole::Client), config(DtlsRole::Server));
    p.tap = true;
    assert_eq!(p.client.pmtu(), 1200, "packets start at mtu (RFC 8899's BASE_PLPMTU)");
    p.connect();
    // The first probe tries max_mtu, and this link carries it.
    p.drive_until(1_000, |p| p.client.pmtu() == 1400 && p.server.pmtu() == 1400);
    let ch = p.open(Side::Client, "x", "", ChannelOptions::reliable());
    for i in 0..100u16 {
        p.client.send(ch, Message::Binary(&[i as u8; 300])).unwrap();
    }
    p.drive_until(10_000, |p| p.messages(Side::Server, ch).len() == 100);
    let sizes: Vec<usize> = p
        .wire
        .iter()
        .filter(|(side, packet)| *side == Side::Client && !data_chunks(packet).is_empty())
        .map(|(_, packet)| packet.len())
        .collect();
    assert!(
        sizes.iter().any(|n| *n > 1200),
        "no packet of DATA used the larger PMTU: {sizes:?}"
    );
    assert!(sizes.iter().all(|n| *n <= 1400), "a packet past max_mtu: {sizes:?}");

    let mut c = SctpConfig::new(DtlsRole::Client);
    c.max_mtu = Some(1000);
    assert!(
        matches!(SctpTransport::new(c.clone()), Err(Error::InvalidConfig(_))),
        "below mtu"
    );
    c.max_mtu = Some(MAX_SCTP_PACKET + 1);
    assert!(
        matches!(SctpTransport::new(c), Err(Error::InvalidConfig(_))),
        "past a DTLS record"
    );
}
