//! natter's own SCTP: arbitrary bytes give chunks or an error, never a
//! panic. The checksum is made right first so that the chunk, parameter
//! and error cause parsers run, and whatever parses is written again and
//! parses back equal. Then the same packet, with a real verification tag
//! and its first TSN field taken relative to the association's, goes
//! into an established association that has data in flight (so SACKs,
//! DATA and FORWARD TSN reach deep) and a stream reset outstanding, whose
//! timers then fire. A RE-CONFIG's sequence numbers and TSN are taken
//! relative too, so that requests and responses (RFC 6525) are numbered
//! as the association expects. The low bit of the first byte (a source
//! port byte, overwritten) picks associations that both offered message
//! interleaving (RFC 8260), so that I-DATA and I-FORWARD-TSN reach deep
//! too, or ones on DATA. The same bytes also go in as the peer's
//! out-of-band INIT of SNAP (draft-hancke-tsvwg-snap-01, SDP's
//! a=sctp-init).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_sctp::sctp::association::{snap_init, Association, Config, State};
use natter_sctp::sctp::chunk::{Chunk, RE_CONFIG};
use natter_sctp::sctp::packet::crc32c;
use natter_sctp::sctp::{ChecksumMode, Packet, PacketWriter, Tsn};

fn seal(packet: &mut [u8]) {
    let sum = crc32c(packet);
    packet[8..12].copy_from_slice(&sum.to_le_bytes());
}

/// Two associations set up in memory, with I-DATA if `interleaving`;
/// `a` has sent 20 KB that `b` has not seen, and a request to reset
/// stream 2.
fn established(now: Instant, interleaving: bool) -> (Association, Association) {
    let config = Config {
        interleaving,
        ..Config::default()
    };
    let mut a = Association::new(config.clone(), &[1; 32], now);
    let mut b = Association::new(config, &[2; 32], now);
    a.connect(now);
    let mut buf = [0u8; 1500];
    for _ in 0..4 {
        while let Ok(Some(n)) = a.poll_transmit(now, &mut buf) {
            let _ = b.handle_packet(now, &buf[..n]);
        }
        while let Ok(Some(n)) = b.poll_transmit(now, &mut buf) {
            let _ = a.handle_packet(now, &buf[..n]);
        }
    }
    assert_eq!(a.state(), State::Established);
    a.send(1, 53, false, &[7; 20_000]).expect("established");
    a.reset_streams(now, &[2]).expect("the peer supports stream reset");
    while let Ok(Some(_)) = a.poll_transmit(now, &mut buf) {}
    (a, b)
}

fuzz_target!(|data: &[u8]| {
    let _ = Packet::parse(data, ChecksumMode::ZeroAcceptable);
    snap(data);
    if data.len() < 12 {
        return;
    }
    let mut packet = data.to_vec();
    seal(&mut packet);
    let parsed = Packet::parse(&packet, ChecksumMode::Crc32c).expect("the checksum was just made right");
    let mut out = vec![0u8; 65_536 + 16];
    for raw in parsed.chunks() {
        let Ok(raw) = raw else { break };
        let Ok(chunk) = raw.parse() else { continue };
        if let Chunk::Init(init) | Chunk::InitAck(init) = chunk {
            let _ = (
                init.state_cookie(),
                init.zero_checksum_edmid(),
                init.forward_tsn_supported(),
            );
        }
        let mut w = PacketWriter::new(&mut out, parsed.header).expect("room for a header");
        w.push(&chunk).expect("a chunk that parsed fits 64 KiB");
        let n = w.finish(ChecksumMode::Crc32c);
        let again = Packet::parse(&out[..n], ChecksumMode::Crc32c).expect("written with its CRC32c");
        let first = again.chunks().next().expect("one chunk").expect("a well-formed chunk");
        assert_eq!(first.parse().expect("parses again"), chunk);
    }

    let now = Instant::now();
    let (mut a, mut b) = established(now, data[0] & 1 == 1);
    let base = b.peer().expect("established").initial_tsn.0;
    packet[0..4].copy_from_slice(&[0x13, 0x88, 0x13, 0x88]);
    // The first chunk's first field; a RE-CONFIG's first parameter's
    // request or response number, response number and Last Assigned TSN.
    let fields: &[usize] = if packet.get(12) == Some(&RE_CONFIG) {
        &[20, 24, 28]
    } else {
        &[16]
    };
    for &at in fields {
        if let Some(field) = packet.get_mut(at..at + 4) {
            let rel = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
            field.copy_from_slice(&rel.wrapping_add(base).to_be_bytes());
        }
    }
    drive(&mut a, &mut b, &packet, now);
    drive(&mut b, &mut a, &packet, now);
});

/// SNAP: `init` as the peer's out-of-band INIT sets an association up or
/// is refused, never a panic; one that is up sends a message at once.
fn snap(init: &[u8]) {
    let now = Instant::now();
    let ours = snap_init(&Config::default(), 7, Tsn(1));
    let mut assoc = Association::new(Config::default(), &[3; 32], now);
    if assoc.connect_snap(&ours, init).is_ok() {
        assert_eq!(assoc.state(), State::Established);
        assoc.send(0, 51, false, b"x").expect("established");
        let mut buf = [0u8; 1500];
        while let Ok(Some(_)) = assoc.poll_transmit(now, &mut buf) {}
    }
}

/// Hands `packet` (with `assoc`'s tag, unless it is an INIT's zero) to
/// `assoc`, then fires its timers, carrying what it sends to `other`.
fn drive(assoc: &mut Association, other: &mut Association, packet: &[u8], now: Instant) {
    let mut p = packet.to_vec();
    if p[4..8] != [0; 4] {
        p[4..8].copy_from_slice(&assoc.local_tag().to_be_bytes());
    }
    seal(&mut p);
    let _ = assoc.handle_packet(now, &p);
    let mut buf = [0u8; 1500];
    for t in [0, 300, 2_000, 70_000] {
        let at = now + Duration::from_millis(t);
        assoc.handle_timeout(at);
        while let Ok(Some(n)) = assoc.poll_transmit(at, &mut buf) {
            let _ = other.handle_packet(at, &buf[..n]);
        }
        while assoc.poll_event().is_some() {}
        while let Some(m) = assoc.poll_message() {
            assoc.recycle(m.data);
        }
    }
}
