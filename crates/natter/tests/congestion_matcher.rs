//! Property tests of the send history's feedback matching
//! (natter::congestion::SendHistory): whatever the start of the 16-bit
//! transport-wide sequence, the order feedback arrives in, its
//! duplicates and its losses, every packet is reported at most once,
//! received ones with their arrival time, under one 64-bit number per
//! packet that continues across the wrap.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use natter::congestion::{PacketKind, PacketResult, SendHistory, SentPacket};
use natter_rtp::rtcp::{Compound, RtcpEncode, RtcpPacket, TransportFeedbackBuilder, TWCC_DELTA_TICK_US};
use proptest::prelude::*;

/// A sent stream and the feedback its receiver sent: for each packet
/// whether it arrived and when (µs), and the feedback packets as bytes,
/// each covering the packets after the one before.
#[derive(Debug)]
struct Session {
    first_seq: u16,
    arrivals: Vec<Option<i64>>,
    feedback: Vec<Vec<u8>>,
}

fn session(first_seq: u16, fates: &[(bool, u16)], cuts: &[usize]) -> Session {
    let mut at = 1_000_000i64;
    let arrivals: Vec<Option<i64>> = fates
        .iter()
        .map(|&(arrived, gap)| {
            at += i64::from(gap);
            arrived.then_some(at)
        })
        .collect();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % fates.len()).collect();
    bounds.extend([0, fates.len()]);
    bounds.sort_unstable();
    bounds.dedup();
    let mut feedback = Vec::new();
    for range in bounds.windows(2) {
        let received: Vec<(u16, i64)> = (range[0]..range[1])
            .filter_map(|i| Some((first_seq.wrapping_add(i as u16), arrivals[i]?)))
            .collect();
        if received.is_empty() {
            // A receiver sends no feedback without an arrival.
            continue;
        }
        let builder = TransportFeedbackBuilder {
            sender_ssrc: 1,
            media_ssrc: 2,
            fb_pkt_count: feedback.len() as u8,
            base_seq: Some(first_seq.wrapping_add(range[0] as u16)),
            received: &received,
        };
        let mut bytes = vec![0; builder.encoded_len()];
        builder.encode(&mut bytes).unwrap();
        feedback.push(bytes);
    }
    Session {
        first_seq,
        arrivals,
        feedback,
    }
}

/// Sends the session's packets into a history, then feeds it the
/// feedback at `order` (indices, repeats allowed); every result and the
/// feedback the history counted as lost.
fn replay(s: &Session, order: &[usize]) -> (Vec<PacketResult>, u32) {
    let t0 = Instant::now();
    let mut history = SendHistory::default();
    for i in 0..s.arrivals.len() {
        let packet = SentPacket {
            transport_seq: s.first_seq.wrapping_add(i as u16),
            size: 1000 + i,
            kind: PacketKind::Video,
            probe_cluster: None,
        };
        history.on_packet_sent(t0 + Duration::from_millis(i as u64), packet);
    }
    let mut all = Vec::new();
    let mut results = Vec::new();
    let mut lost_feedback = 0;
    for &index in order {
        let bytes = &s.feedback[index];
        for packet in Compound::parse(bytes).unwrap().packets() {
            let RtcpPacket::TransportFeedback(fb) = packet.unwrap() else {
                panic!("not feedback")
            };
            let summary = history.on_feedback(&fb, &mut results);
            assert_eq!(summary.received + summary.lost, results.len());
            lost_feedback += u32::from(summary.feedback_lost);
            all.extend_from_slice(&results);
        }
    }
    (all, lost_feedback)
}

/// Arrival times as feedback carries them: in 250 µs ticks.
fn on_the_wire(us: i64) -> i64 {
    (us + TWCC_DELTA_TICK_US / 2).div_euclid(TWCC_DELTA_TICK_US) * TWCC_DELTA_TICK_US
}

/// Each packet's fate by its offset from the first (its size says
/// which it is): `Some(arrival)`, or `None` for lost. Checks that none
/// is reported twice and that the 64-bit numbers continue the first
/// one's across the 16-bit wrap.
fn fates(s: &Session, results: &[PacketResult]) -> BTreeMap<u64, Option<i64>> {
    let mut first = None;
    let mut seen = BTreeMap::new();
    for r in results {
        let offset = (r.size - 1000) as u64;
        assert_eq!(
            r.seq as u16,
            s.first_seq.wrapping_add(offset as u16),
            "packet {offset}'s number"
        );
        assert_eq!(
            *first.get_or_insert(r.seq - offset),
            r.seq - offset,
            "packet {offset} unwrapped apart"
        );
        assert!(
            seen.insert(offset, r.arrival_us).is_none(),
            "packet {offset} reported twice"
        );
    }
    seen
}

fn arb_session() -> impl Strategy<Value = Session> {
    (
        any::<u16>(),
        prop::collection::vec((prop::bool::weighted(0.9), 0u16..20_000), 1..400),
        prop::collection::vec(any::<usize>(), 0..12),
    )
        .prop_map(|(first, fates, cuts)| session(first, &fates, &cuts))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// In order: every packet a feedback covered is reported once, with
    /// its arrival, across the 16-bit wrap.
    #[test]
    fn every_covered_packet_is_reported_once(s in arb_session()) {
        let order: Vec<usize> = (0..s.feedback.len()).collect();
        let (results, lost_feedback) = replay(&s, &order);
        prop_assert_eq!(lost_feedback, 0);
        let fates = fates(&s, &results);
        for (offset, arrival) in s.arrivals.iter().enumerate() {
            let reported = fates.get(&(offset as u64));
            match arrival {
                Some(us) => prop_assert_eq!(reported, Some(&Some(on_the_wire(*us)))),
                // Reported lost, or after its feedback's last arrival.
                None => prop_assert!(matches!(reported, Some(None) | None)),
            }
        }
    }

    /// Reordered and duplicated feedback gives the same fates as the
    /// feedback in order, once each.
    #[test]
    fn reordered_and_duplicated_feedback_changes_nothing(
        s in arb_session(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        shuffle in any::<u64>(),
    ) {
        let in_order: Vec<usize> = (0..s.feedback.len()).collect();
        let (expected, _) = replay(&s, &in_order);
        let mut order = in_order.clone();
        // Duplicates of what was sent (none when no feedback was).
        if !s.feedback.is_empty() {
            order.extend(picks.iter().map(|p| p.index(s.feedback.len())));
        }
        // A deterministic shuffle from the seed.
        let mut state = shuffle | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (got, _) = replay(&s, &order);
        prop_assert_eq!(fates(&s, &got), fates(&s, &expected));
    }

    /// Lost feedback: its packets are never reported, the rest are as if
    /// nothing was lost, and the gaps in the feedback count are counted.
    #[test]
    fn lost_feedback_loses_only_its_packets(s in arb_session(), keep in prop::collection::vec(any::<bool>(), 0..64)) {
        let kept: Vec<usize> = (0..s.feedback.len()).filter(|i| keep.get(*i).copied().unwrap_or(true)).collect();
        prop_assume!(!kept.is_empty());
        let all: Vec<usize> = (0..s.feedback.len()).collect();
        let (everything, _) = replay(&s, &all);
        let (some, lost_feedback) = replay(&s, &kept);
        let missing_before_last = (kept[0]..*kept.last().unwrap()).filter(|i| !kept.contains(i)).count();
        prop_assert_eq!(lost_feedback as usize, missing_before_last);
        let full = fates(&s, &everything);
        for r in &some {
            let matching = everything.iter().find(|e| e.size == r.size).map(|e| e.arrival_us);
            prop_assert_eq!(matching, Some(r.arrival_us));
        }
        prop_assert!(some.len() <= full.len());
    }
}
