//! Hostile SCTP packets: whatever arrives, an established natter
//! transport (facing another natter transport) neither panics nor stops
//! answering `poll_*`. The checksum is made right (RFC 9260 §6.8,
//! CRC32c) so that natter's parser gets past it, and the verification
//! tag is a real one, so the chunks reach the association.

mod support;

use std::time::Duration;

use natter_sctp::*;
use proptest::prelude::*;
use support::{Pair, Side};

/// RFC 9260 Appendix A: CRC32c (Castagnoli), reflected.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Writes the checksum over `packet` (its field zeroed first).
fn seal(packet: &mut [u8]) {
    packet[8..12].fill(0);
    let sum = crc32c(packet);
    // The reflected CRC goes on the wire least significant byte first
    // (RFC 9260 Appendix A), as natter and sctp-proto both read it.
    packet[8..12].copy_from_slice(&sum.to_le_bytes());
}

/// An established pair, with a channel, and a real packet from the
/// client whose common header (ports, verification tag) the server accepts.
fn established(seed: u64) -> (Pair, ChannelId, Vec<u8>) {
    let mut p = Pair::new(seed);
    p.connect();
    let ch = p.open(Side::Client, "x", "", ChannelOptions::reliable());
    p.drive_for(Duration::from_millis(500));
    p.client.send(ch, Message::Text("template")).unwrap();
    let now = p.now;
    let packet = p.client.poll_transmit(now).expect("a DATA packet").to_vec();
    (p, ch, packet)
}

fn survives(p: &mut Pair) {
    // Keep driving: timers, replies and events must all still work.
    p.drive_for(Duration::from_secs(5));
    let _ = p.server.poll_event();
    let _ = p.server.poll_timeout();
}

#[test]
fn crc32c_matches_the_rfc_example() {
    // RFC 3720 B.4: 32 bytes of zeros.
    assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
}

#[test]
fn a_sealed_copy_of_a_real_packet_is_accepted() {
    let (mut p, ch, mut packet) = established(1);
    seal(&mut packet);
    let now = p.now;
    p.server.handle_receive(now, &packet);
    p.drive_for(Duration::from_millis(200));
    assert_eq!(p.messages(Side::Server, ch), vec![(b"template".to_vec(), true)]);
    assert_eq!(p.server.stats().packets_dropped, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any chunks after a real common header.
    #[test]
    fn arbitrary_chunks_never_panic(chunks in prop::collection::vec(any::<u8>(), 0..200), seed in 0u64..4) {
        let (mut p, _, template) = established(seed);
        let mut packet = template[..12].to_vec();
        packet.extend_from_slice(&chunks);
        seal(&mut packet);
        let now = p.now;
        p.server.handle_receive(now, &packet);
        survives(&mut p);
    }

    /// A real packet with a few bytes changed.
    #[test]
    fn mutated_packets_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), seed in 0u64..4) {
        let (mut p, _, mut packet) = established(seed);
        for (at, value) in edits {
            let i = 12 + at % (packet.len() - 12);
            packet[i] = value;
        }
        seal(&mut packet);
        let now = p.now;
        p.server.handle_receive(now, &packet);
        survives(&mut p);
    }

    /// Well-formed chunk headers of every type with arbitrary bodies.
    #[test]
    fn every_chunk_type_never_panics(
        chunk_type in any::<u8>(),
        flags in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        seed in 0u64..4,
    ) {
        let (mut p, _, template) = established(seed);
        let mut packet = template[..12].to_vec();
        let len = (4 + body.len()) as u16;
        packet.extend_from_slice(&[chunk_type, flags]);
        packet.extend_from_slice(&len.to_be_bytes());
        packet.extend_from_slice(&body);
        while packet.len() % 4 != 0 {
            packet.push(0);
        }
        seal(&mut packet);
        let now = p.now;
        p.server.handle_receive(now, &packet);
        survives(&mut p);
    }
}

/// Replaces the DATA chunk of `template` (keeping its TSN, and its SSN
/// on its own stream) with one carrying `payload` on `stream` with
/// `ppid`, as another stack would.
fn craft_data(template: &[u8], stream: u16, ppid: u32, payload: &[u8]) -> Vec<u8> {
    let (_, _, value) = support::chunks(template)
        .into_iter()
        .find(|(t, _, _)| *t == 0)
        .expect("the template carries DATA");
    let tsn = &value[..4];
    let ssn = if value[4..6] == stream.to_be_bytes() {
        u16::from_be_bytes([value[6], value[7]])
    } else {
        0
    };
    let mut packet = template[..12].to_vec();
    packet.extend_from_slice(&[0, 0x03]);
    packet.extend_from_slice(&((16 + payload.len()) as u16).to_be_bytes());
    packet.extend_from_slice(tsn);
    packet.extend_from_slice(&stream.to_be_bytes());
    packet.extend_from_slice(&ssn.to_be_bytes());
    packet.extend_from_slice(&ppid.to_be_bytes());
    packet.extend_from_slice(payload);
    while packet.len() % 4 != 0 {
        packet.push(0);
    }
    seal(&mut packet);
    packet
}

/// DATA_CHANNEL_OPEN as Chromium sends it for `createDataChannel("chat", {protocol: "json"})`.
const CHROMIUM_OPEN: &[u8] = &[
    0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x04, b'c', b'h', b'a', b't', b'j', b's', b'o',
    b'n',
];

#[test]
fn a_foreign_open_is_acknowledged() {
    let (mut p, _, template) = established(5);
    p.tap = true;
    let packet = craft_data(&template, 4, 50, CHROMIUM_OPEN);
    let now = p.now;
    p.server.handle_receive(now, &packet);
    p.drive_for(Duration::from_millis(200));
    let open = p.server_events.iter().find_map(|e| match e {
        Event::ChannelOpen {
            id,
            label,
            protocol,
            origin,
            ..
        } if *id == ChannelId(4) => Some((*id, label.clone(), protocol.clone(), *origin)),
        _ => None,
    });
    assert_eq!(
        open,
        Some((
            ChannelId(4),
            "chat".to_owned(),
            "json".to_owned(),
            ChannelOrigin::Remote
        ))
    );
    let ack = p.data_sent(Side::Server);
    assert_eq!(
        (ack[0].stream, ack[0].ppid, ack[0].payload.as_slice()),
        (4, 50, &[2][..])
    );
}

#[test]
fn an_open_of_the_wrong_parity_is_refused_by_a_stream_reset() {
    let (mut p, _, template) = established(6);
    p.tap = true;
    // Stream 3 is odd: only the DTLS server may open it (RFC 8832 §6).
    let packet = craft_data(&template, 3, 50, CHROMIUM_OPEN);
    let now = p.now;
    p.server.handle_receive(now, &packet);
    p.drive_for(Duration::from_millis(500));
    assert!(!p
        .server_events
        .iter()
        .any(|e| matches!(e, Event::ChannelOpen { id, .. } if *id == ChannelId(3))));
    assert_eq!(p.server.stats().dcep_errors, 1);
    assert!(p.data_sent(Side::Server).is_empty(), "no ACK");
    // RFC 6525: a RE-CONFIG chunk (type 130) resets the stream.
    let reconfig = p
        .wire
        .iter()
        .any(|(s, pk)| *s == Side::Server && support::chunks(pk).iter().any(|(t, _, _)| *t == 130));
    assert!(reconfig, "no stream reset sent");
}

#[test]
fn a_malformed_open_is_refused_and_counted() {
    let (mut p, _, template) = established(7);
    let packet = craft_data(&template, 6, 50, &CHROMIUM_OPEN[..15]);
    let now = p.now;
    p.server.handle_receive(now, &packet);
    p.drive_for(Duration::from_millis(500));
    assert_eq!(p.server.stats().dcep_errors, 1);
    assert_eq!(p.server.channels().count(), 1, "only the channel of the template");
}

#[test]
fn a_deprecated_or_unknown_ppid_is_dropped_and_counted() {
    let (mut p, ch, template) = established(8);
    let packet = craft_data(&template, ch.0, 52, b"partial");
    let now = p.now;
    p.server.handle_receive(now, &packet);
    p.drive_for(Duration::from_millis(500));
    assert_eq!(p.server.stats().messages_dropped, 1);
    assert!(p.messages(Side::Server, ch).is_empty());
}
