//! Packets per second of natter-srtp's protect and unprotect, the Rust half
//! of bench/srtp-vs-libsrtp (whose C half does the same with libsrtp).
//!
//!     cargo run --release -p natter-srtp --example srtp_bench -- PROFILE PAYLOAD PACKETS
//!
//! PROFILE is an RFC 5764/7714 name such as SRTP_AES128_CM_HMAC_SHA1_80.
//! Packets go in batches of 1024 buffers: protect a batch (timed), then
//! unprotect it (timed), so the working set stays in cache and the clock is
//! read twice per batch. Prints `protect_pps unprotect_pps`.

use std::time::{Duration, Instant};

use natter_srtp::{Config, ProtectionProfile, SrtpContext};

const BATCH: usize = 1024;
const HEADER: usize = 12;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: srtp_bench PROFILE PAYLOAD_BYTES PACKETS");
        std::process::exit(2);
    }
    let profile = ProtectionProfile::ALL
        .into_iter()
        .find(|p| p.name() == args[1])
        .unwrap_or_else(|| panic!("unknown profile {}", args[1]));
    let payload: usize = args[2].parse().expect("payload bytes");
    let packets: usize = args[3].parse().expect("packet count");

    let key: Vec<u8> = (0..profile.master_key_len()).map(|i| i as u8).collect();
    let salt: Vec<u8> = (0..profile.master_salt_len()).map(|i| 0xa0 + i as u8).collect();
    let mut tx = SrtpContext::new(profile, &key, &salt, Config::default()).unwrap();
    let mut rx = SrtpContext::new(profile, &key, &salt, Config::default()).unwrap();

    let len = HEADER + payload;
    let mut template = vec![0u8; len];
    template[..HEADER].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    for (i, b) in template[HEADER..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let capacity = len + profile.rtp_overhead();
    let mut bufs = vec![vec![0u8; capacity]; BATCH];
    let mut lens = [0usize; BATCH];

    let (mut protect_time, mut unprotect_time) = (Duration::ZERO, Duration::ZERO);
    let mut seq: u16 = 0;
    let mut done = 0;
    while done < packets {
        let n = BATCH.min(packets - done);
        for buf in &mut bufs[..n] {
            buf[..len].copy_from_slice(&template);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            seq = seq.wrapping_add(1);
        }
        let start = Instant::now();
        for (buf, out) in bufs[..n].iter_mut().zip(&mut lens) {
            *out = tx.protect_rtp(buf, len).expect("protect");
        }
        protect_time += start.elapsed();
        let start = Instant::now();
        for (buf, &l) in bufs[..n].iter_mut().zip(&lens) {
            let plain = rx.unprotect_rtp(&mut buf[..l]).expect("unprotect");
            debug_assert_eq!(plain, len);
        }
        unprotect_time += start.elapsed();
        done += n;
    }
    // The last batch came back intact.
    assert_eq!(bufs[0][HEADER..len], template[HEADER..]);
    println!(
        "{:.0} {:.0}",
        packets as f64 / protect_time.as_secs_f64(),
        packets as f64 / unprotect_time.as_secs_f64()
    );
}
