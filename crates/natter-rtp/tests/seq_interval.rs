//! Sequence number and timestamp unwrapping (RFC 3550 Appendix A.1) and
//! the RTCP report interval (RFC 3550 §6.2, §6.3.1, Appendix A.7).

use std::time::Duration;

use natter_rtp::*;
use proptest::prelude::*;

#[test]
fn seq_unwrapping_across_wraps_and_reordering() {
    let mut u = SeqUnwrapper::new();
    assert_eq!(u.last(), None);
    assert_eq!(u.unwrap(65_530), Some(65_530));
    assert_eq!(u.unwrap(2), Some(65_538));
    assert_eq!(u.unwrap(65_535), Some(65_535));
    assert_eq!(u.unwrap(3), Some(65_539));
    assert_eq!(u.peek(0x8000 + 3), Some(65_539 + 0x8000 - 0x10000));
    assert_eq!(u.last(), Some(65_539));
    // Before the first value: nothing to map it to.
    let mut u = SeqUnwrapper::new();
    assert_eq!(u.unwrap(3), Some(3));
    assert_eq!(u.unwrap(65_534), None);
    assert_eq!(u.unwrap(4), Some(4));
    // A long run wraps many times.
    let mut u = SeqUnwrapper::new();
    let mut v = None;
    for i in 0..200_000u64 {
        v = u.unwrap((1000 + i) as u16);
    }
    assert_eq!(v, Some(1000 + 199_999));
}

#[test]
fn timestamp_unwrapping() {
    let mut u = TimestampUnwrapper::new();
    assert_eq!(u.unwrap(u32::MAX - 10), Some(u64::from(u32::MAX) - 10));
    assert_eq!(u.unwrap(5), Some((1 << 32) + 5));
    assert_eq!(u.unwrap(u32::MAX), Some(u64::from(u32::MAX)));
    let mut u = TimestampUnwrapper::new();
    assert_eq!(u.unwrap(100), Some(100));
    assert_eq!(u.unwrap(u32::MAX), None);
}

proptest! {
    /// Steps of less than half the range, forward or back, unwrap to the
    /// true value; values before the first give None and change nothing.
    #[test]
    fn seq_unwrap_recovers_the_true_value(start in any::<u16>(), steps in proptest::collection::vec(-32_767i64..=32_767, 0..500)) {
        let mut u = SeqUnwrapper::new();
        let mut last = i64::from(start);
        prop_assert_eq!(u.unwrap(start), Some(last as u64));
        for s in steps {
            let truth = last + s;
            let got = u.unwrap(truth.rem_euclid(1 << 16) as u16);
            if truth < 0 {
                prop_assert_eq!(got, None);
            } else {
                prop_assert_eq!(got, Some(truth as u64));
                prop_assert_eq!(got.unwrap() & 0xFFFF, truth as u64 & 0xFFFF);
                last = truth;
            }
        }
    }

    #[test]
    fn timestamp_unwrap_recovers_the_true_value(
        start in any::<u32>(),
        steps in proptest::collection::vec(-(i64::from(i32::MAX))..=i64::from(i32::MAX), 0..300),
    ) {
        let mut u = TimestampUnwrapper::new();
        let mut last = i64::from(start);
        prop_assert_eq!(u.unwrap(start), Some(last as u64));
        for s in steps {
            let truth = last + s;
            let got = u.unwrap(truth.rem_euclid(1 << 32) as u32);
            if truth < 0 {
                prop_assert_eq!(got, None);
            } else {
                prop_assert_eq!(got, Some(truth as u64));
                last = truth;
            }
        }
    }

    #[test]
    fn interval_is_bounded_by_the_randomisation(
        members in 1u32..10_000, senders_frac in 0.0f64..=1.0, rtcp_bw in 1.0f64..1e6, we_sent in any::<bool>(),
        avg in 20.0f64..2000.0, initial in any::<bool>(), r in 0.5f64..=1.5, kbps in 1.0f64..100_000.0, reduced in any::<bool>(),
    ) {
        let senders = (f64::from(members) * senders_frac) as u32;
        let minimum = if reduced { MinimumInterval::Reduced { session_bandwidth_kbps: kbps } } else { MinimumInterval::Fixed };
        let p = RtcpInterval { members, senders, rtcp_bw, we_sent, avg_rtcp_size: avg, initial, minimum };
        let td = p.deterministic();
        let tmin = minimum.duration() / if initial { 2 } else { 1 };
        prop_assert!(td >= tmin.saturating_sub(Duration::from_nanos(1)));
        let t = p.interval(r).as_secs_f64();
        let expected = td.as_secs_f64() * r / COMPENSATION;
        prop_assert!((t - expected).abs() <= expected * 1e-9 + 1e-9);
        prop_assert!(p.interval(0.5) <= p.interval(r) && p.interval(r) <= p.interval(1.5));
    }
}

fn approx(d: Duration, secs: f64) {
    assert!((d.as_secs_f64() - secs).abs() < 1e-6, "{d:?} is not {secs} s");
}

/// RFC 3550 Appendix A.7, computed by hand.
#[test]
fn interval_known_answers() {
    // Two-party call at 1 Mb/s (RTCP 5 % = 6250 B/s): the computed
    // interval (0.032 s) is below the 5 s minimum.
    let mut p = RtcpInterval {
        members: 2,
        senders: 1,
        rtcp_bw: 6250.0,
        we_sent: true,
        avg_rtcp_size: 100.0,
        initial: false,
        minimum: MinimumInterval::Fixed,
    };
    approx(p.deterministic(), 5.0);
    approx(p.interval(1.0), 5.0 / (std::f64::consts::E - 1.5));
    approx(p.interval(0.5), 2.5 / 1.218_281_828_459_045);
    approx(p.interval(1.5), 7.5 / 1.218_281_828_459_045);
    // Out-of-range factors are clamped; NaN counts as 1.
    assert_eq!(p.interval(0.1), p.interval(0.5));
    assert_eq!(p.interval(9.0), p.interval(1.5));
    assert_eq!(p.interval(f64::NAN), p.interval(1.0));
    p.initial = true;
    approx(p.deterministic(), 2.5);
    // §6.2 reduced minimum: 360 / 1000 kb/s = 0.36 s, halved at first.
    p.minimum = MinimumInterval::Reduced {
        session_bandwidth_kbps: 1000.0,
    };
    approx(p.deterministic(), 0.18);
    p.initial = false;
    approx(p.deterministic(), 0.36);

    // 1000 members, 10 senders (≤ 25 %): receivers share 75 % of the
    // bandwidth among 990, senders 25 % among 10.
    let mut big = RtcpInterval {
        members: 1000,
        senders: 10,
        rtcp_bw: 500.0,
        we_sent: false,
        avg_rtcp_size: 100.0,
        initial: false,
        minimum: MinimumInterval::Fixed,
    };
    approx(big.deterministic(), 100.0 * 990.0 / 375.0);
    big.we_sent = true;
    approx(big.deterministic(), 100.0 * 10.0 / 125.0);
    // More than 25 % senders: everyone shares the whole bandwidth.
    big.senders = 600;
    approx(big.deterministic(), 100.0 * 1000.0 / 500.0);

    // §6.2: the reduced minimum is below 5 s only above 72 kb/s.
    approx(
        MinimumInterval::Reduced {
            session_bandwidth_kbps: 72.0,
        }
        .duration(),
        5.0,
    );
    approx(
        MinimumInterval::Reduced {
            session_bandwidth_kbps: 50.0,
        }
        .duration(),
        5.0,
    );
    approx(
        MinimumInterval::Reduced {
            session_bandwidth_kbps: 144.0,
        }
        .duration(),
        2.5,
    );
    approx(
        MinimumInterval::Reduced {
            session_bandwidth_kbps: 0.0,
        }
        .duration(),
        5.0,
    );

    // No RTCP bandwidth: no report is ever due.
    big.rtcp_bw = 0.0;
    assert_eq!(big.interval(1.0), Duration::MAX);
    // §6.3.3: the running average moves by 1/16.
    assert!((update_avg_rtcp_size(100.0, 260) - 110.0).abs() < 1e-12);
}
