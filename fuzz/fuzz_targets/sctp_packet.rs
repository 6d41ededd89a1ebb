//! natter's SCTP wire format (RFC 9260 §3): arbitrary bytes give chunks
//! or an error, never a panic. The checksum is made right first so that
//! the chunk, parameter and error cause parsers run, and whatever parses
//! is written again and parses back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_sctp::sctp::chunk::Chunk;
use natter_sctp::sctp::packet::crc32c;
use natter_sctp::sctp::{ChecksumMode, Packet, PacketWriter};

fuzz_target!(|data: &[u8]| {
    let _ = Packet::parse(data, ChecksumMode::ZeroAcceptable);
    if data.len() < 12 {
        return;
    }
    let mut packet = data.to_vec();
    let sum = crc32c(&packet);
    packet[8..12].copy_from_slice(&sum.to_le_bytes());
    let parsed = Packet::parse(&packet, ChecksumMode::Crc32c).expect("the checksum was just made right");
    let mut out = vec![0u8; 65_536 + 16];
    for raw in parsed.chunks() {
        let Ok(raw) = raw else { break };
        let Ok(chunk) = raw.parse() else { continue };
        if let Chunk::Init(init) | Chunk::InitAck(init) = chunk {
            let _ = (init.state_cookie(), init.zero_checksum_edmid(), init.forward_tsn_supported());
        }
        let mut w = PacketWriter::new(&mut out, parsed.header).expect("room for a header");
        w.push(&chunk).expect("a chunk that parsed fits 64 KiB");
        let n = w.finish(ChecksumMode::Crc32c);
        let again = Packet::parse(&out[..n], ChecksumMode::Crc32c).expect("written with its CRC32c");
        let first = again.chunks().next().expect("one chunk").expect("a well-formed chunk");
        assert_eq!(first.parse().expect("parses again"), chunk);
    }
});
