//! Property tests: round trips for every profile, no panics on arbitrary
//! input, the replay window against a reference model, and rollover
//! estimation.

use std::collections::HashSet;

use natter_srtp::*;
use proptest::prelude::*;

fn profile() -> impl Strategy<Value = ProtectionProfile> {
    prop::sample::select(ProtectionProfile::ALL.to_vec())
}

fn pair(profile: ProtectionProfile, seed: u8) -> (SrtpContext, SrtpContext) {
    let material: Vec<u8> = (0..profile.keying_material_len())
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let (tx, _) = SrtpContext::from_dtls(profile, &material, Role::Client, Config::default()).unwrap();
    let (_, rx) = SrtpContext::from_dtls(profile, &material, Role::Server, Config::default()).unwrap();
    (tx, rx)
}

prop_compose! {
    fn rtp_packet()(
        csrcs in prop::collection::vec(any::<u32>(), 0..4),
        extension in prop::option::of(prop::collection::vec(any::<u8>(), 0..3).prop_map(|w| w.len())),
        marker_pt in any::<u8>(),
        seq in any::<u16>(),
        ssrc in any::<u32>(),
        payload in prop::collection::vec(any::<u8>(), 0..1400),
    ) -> Vec<u8> {
        let mut p = vec![0x80 | csrcs.len() as u8 | if extension.is_some() { 0x10 } else { 0 }, marker_pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(&ssrc.to_be_bytes());
        for c in csrcs {
            p.extend_from_slice(&c.to_be_bytes());
        }
        if let Some(words) = extension {
            p.extend_from_slice(&[0xbe, 0xde, 0, words as u8]);
            p.extend(std::iter::repeat_n(0x5a, words * 4));
        }
        p.extend(payload);
        p
    }
}

prop_compose! {
    fn rtcp_packet()(ssrc in any::<u32>(), body in prop::collection::vec(any::<u8>(), 0..600)) -> Vec<u8> {
        let mut p = vec![0x80, 201, 0, 0];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend(body);
        p
    }
}

proptest! {
    #[test]
    fn srtp_round_trips(profile in profile(), plain in rtp_packet(), seed in any::<u8>()) {
        let (mut tx, mut rx) = pair(profile, seed);
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_overhead(), 0);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        prop_assert_eq!(n, plain.len() + profile.rtp_overhead());
        let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
        prop_assert_eq!(&buf[..m], &plain[..]);
        // Once accepted, the same packet is a replay.
        let mut again = buf[..m].to_vec();
        again.resize(n, 0);
        let mut tx2 = pair(profile, seed).0;
        let n2 = tx2.protect_rtp(&mut again, m).unwrap();
        let replayed = matches!(rx.unprotect_rtp(&mut again[..n2]), Err(Error::Replayed { .. }));
        prop_assert!(replayed, "a second copy must be a replay");
    }

    #[test]
    fn srtcp_round_trips(profile in profile(), plain in rtcp_packet(), seed in any::<u8>(), encrypt in any::<bool>()) {
        let (_, mut rx) = pair(profile, seed);
        let material: Vec<u8> =
            (0..profile.keying_material_len()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let config = Config { encrypt_rtcp: encrypt, ..Config::default() };
        let (mut tx, _) = SrtpContext::from_dtls(profile, &material, Role::Client, config).unwrap();
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtcp_overhead(), 0);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        prop_assert_eq!(n, plain.len() + profile.rtcp_overhead());
        if !encrypt {
            prop_assert_eq!(&buf[..plain.len()], &plain[..]);
        }
        let m = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        prop_assert_eq!(&buf[..m], &plain[..]);
    }

    #[test]
    fn any_flipped_bit_is_refused(profile in profile(), plain in rtp_packet(), bit in any::<prop::sample::Index>()) {
        let (mut tx, mut rx) = pair(profile, 1);
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_overhead(), 0);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        let bit = bit.index(n * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        // Flipping a header bit may make it no RTP at all; any error will do,
        // but never success.
        prop_assert!(rx.unprotect_rtp(&mut buf[..n]).is_err());
    }

    #[test]
    fn unprotecting_arbitrary_bytes_never_panics(
        profile in profile(),
        mut bytes in prop::collection::vec(any::<u8>(), 0..200),
        rtp_like in any::<bool>(),
    ) {
        if rtp_like && !bytes.is_empty() {
            bytes[0] = 0x80 | (bytes[0] & 0x3f);
        }
        let (_, mut rx) = pair(profile, 0);
        let mut a = bytes.clone();
        let _ = rx.unprotect_rtp(&mut a);
        let mut b = bytes.clone();
        let _ = rx.unprotect_rtcp(&mut b);
        prop_assert_eq!(rx.stream_count(), 0, "unauthenticated packets create no state");
    }

    #[test]
    fn protecting_arbitrary_bytes_never_panics(
        profile in profile(),
        mut bytes in prop::collection::vec(any::<u8>(), 0..200),
        len in 0usize..220,
    ) {
        if let Some(b) = bytes.first_mut() {
            *b = 0x80 | (*b & 0x3f);
        }
        let (mut tx, _) = pair(profile, 0);
        let _ = tx.protect_rtp(&mut bytes.clone(), len);
        let _ = tx.protect_rtcp(&mut bytes, len);
    }

    /// The window accepts exactly what a set-based model accepts: indices
    /// not seen before and no more than `size - 1` behind the highest.
    #[test]
    fn the_replay_window_matches_a_model(
        log2 in 6u32..9,
        steps in prop::collection::vec((any::<bool>(), 0u64..600), 1..400),
    ) {
        let size = 1u64 << log2;
        let mut window = ReplayWindow::new(size as usize).unwrap();
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        let mut base = 1_000u64;
        for (forward, delta) in steps {
            // Mostly move forward, sometimes look back.
            let index = if forward { base + delta } else { base.saturating_sub(delta) };
            base = base.max(index);
            let expected = match highest {
                Some(h) if index + size <= h => Verdict::TooOld,
                _ if seen.contains(&index) => Verdict::Replayed,
                _ => Verdict::Fresh,
            };
            prop_assert_eq!(window.check(index), expected, "index {} highest {:?}", index, highest);
            if expected == Verdict::Fresh {
                window.accept(index);
                seen.insert(index);
                highest = Some(highest.map_or(index, |h| h.max(index)));
            }
            prop_assert_eq!(window.highest(), highest);
        }
    }

    /// RFC 3711 §3.3.1: the estimate is right whenever the true index is
    /// within 2^15 of the highest one seen.
    #[test]
    fn rollover_estimation_recovers_indices_near_the_highest(
        highest in 0u64..(1 << 40),
        offset in -32767i64..32768,
    ) {
        let truth = highest as i64 + offset;
        prop_assume!(truth >= 0);
        let truth = truth as u64;
        // A stream's first 2^15 indices are estimated with ROC 0 (libsrtp does
        // the same), so a true index with ROC -1 cannot arise.
        prop_assert_eq!(estimate_index(Some(highest), truth as u16), truth);
    }

    /// Reordered delivery within the window: every packet is accepted once.
    #[test]
    fn reordered_packets_within_the_window_are_all_accepted(
        profile in profile(),
        start in any::<u16>(),
        order in Just((0u16..300).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let (mut tx, mut rx) = pair(profile, 9);
        let ssrc = 0x1234_5678u32;
        let mut packets = Vec::new();
        for i in 0..300u16 {
            let seq = start.wrapping_add(i);
            let mut p = vec![0x80, 96];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&i.to_be_bytes());
            let len = p.len();
            p.resize(len + profile.rtp_overhead(), 0);
            let n = tx.protect_rtp(&mut p, len).unwrap();
            p.truncate(n);
            packets.push(p);
        }
        // Deliver the first one first so the receiver's ROC is anchored, then
        // the rest out of order; ±300 is well within the 1024 window.
        let mut first = packets[0].clone();
        rx.unprotect_rtp(&mut first).unwrap();
        for i in order.into_iter().filter(|&i| i != 0) {
            let mut p = packets[usize::from(i)].clone();
            let n = rx.unprotect_rtp(&mut p).unwrap();
            prop_assert_eq!(&p[12..n], &i.to_be_bytes()[..]);
        }
        for p in &packets {
            let replayed = matches!(rx.unprotect_rtp(&mut p.clone()), Err(Error::Replayed { .. }));
            prop_assert!(replayed, "every packet was already accepted");
        }
    }
}

#[test]
fn unknown_ssrcs_beyond_the_limit_are_refused() {
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let config = Config {
        max_streams: 2,
        ..Config::default()
    };
    let mut tx = SrtpContext::new(profile, &[1; 16], &[2; 14], config).unwrap();
    let mut buf = [0u8; 64];
    for ssrc in 0..3u32 {
        buf[..12].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
        let r = tx.protect_rtp(&mut buf, 20);
        if ssrc < 2 {
            assert!(r.is_ok());
        } else {
            assert_eq!(r, Err(Error::TooManyStreams { ssrc: 2, max: 2 }));
        }
    }
}

#[test]
fn buffers_without_tailroom_are_refused() {
    let profile = ProtectionProfile::AeadAes128Gcm;
    let (mut tx, _) = pair(profile, 0);
    let mut buf = [0u8; 30];
    buf[0] = 0x80;
    assert_eq!(
        tx.protect_rtp(&mut buf, 20),
        Err(Error::BufferTooSmall {
            needed: 36,
            available: 30
        })
    );
    assert_eq!(
        tx.protect_rtp(&mut buf, 31),
        Err(Error::LengthOutOfBounds { len: 31, capacity: 30 })
    );
    assert_eq!(
        tx.protect_rtcp(&mut buf, 20),
        Err(Error::BufferTooSmall {
            needed: 40,
            available: 30
        })
    );
}

#[test]
fn repeated_transmission_is_refused_unless_allowed() {
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let packet = [0x80, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3];
    for allow in [false, true] {
        let config = Config {
            allow_repeat_tx: allow,
            ..Config::default()
        };
        let mut tx = SrtpContext::new(profile, &[1; 16], &[2; 14], config).unwrap();
        let mut a = [0u8; 40];
        a[..15].copy_from_slice(&packet);
        let n = tx.protect_rtp(&mut a, 15).unwrap();
        let mut b = [0u8; 40];
        b[..15].copy_from_slice(&packet);
        let r = tx.protect_rtp(&mut b, 15);
        if allow {
            assert_eq!(r, Ok(n));
            assert_eq!(a[..n], b[..n]);
        } else {
            assert_eq!(r, Err(Error::Replayed { ssrc: 7, index: 9 }));
        }
    }
}

#[test]
fn srtcp_index_exhaustion_demands_a_rekey() {
    let (mut tx, _) = pair(ProtectionProfile::AeadAes256Gcm, 0);
    tx.set_srtcp_index(5, MAX_SRTCP_INDEX).unwrap();
    let mut buf = [0u8; 64];
    buf[..8].copy_from_slice(&[0x80, 200, 0, 1, 0, 0, 0, 5]);
    assert!(tx.protect_rtcp(&mut buf, 8).is_ok());
    assert_eq!(
        tx.protect_rtcp(&mut buf, 8),
        Err(Error::IndexExhausted { ssrc: 5, what: "SRTCP" })
    );
}

#[test]
fn a_signalled_rollover_counter_is_used() {
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let (mut tx, mut rx) = pair(profile, 3);
    tx.set_rollover_counter(7, 41, 65000).unwrap();
    let mut buf = [0u8; 64];
    buf[..12].copy_from_slice(&[0x80, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7]);
    let n = tx.protect_rtp(&mut buf, 20).unwrap();
    assert_eq!(tx.highest_index(7), Some((42 << 16) | 2));
    // A receiver that assumes ROC 0 cannot authenticate it...
    let mut copy = buf;
    assert!(matches!(
        rx.unprotect_rtp(&mut copy[..n]),
        Err(Error::AuthenticationFailed { .. })
    ));
    // ...one told the ROC can.
    rx.set_rollover_counter(7, 42, 0).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(20));
}
