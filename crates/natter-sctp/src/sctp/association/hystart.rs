//! HyStart++ (RFC 9406): leaves slow start when the round-trip time
//! rises by more than a threshold from one round to the next (the
//! bottleneck's queue is filling), before the window overshoots it by a
//! whole round's growth. Conservative Slow Start (§4.2) follows for a
//! few rounds, growing a quarter as fast, and goes back to slow start if
//! the RTT falls again (the rise was a spike).

use std::time::Duration;

use crate::sctp::tsn::Tsn;

/// RFC 9406 §4.3: MIN_RTT_THRESH, MAX_RTT_THRESH, MIN_RTT_DIVISOR,
/// N_RTT_SAMPLE, CSS_GROWTH_DIVISOR, CSS_ROUNDS.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u32 = 8;
pub(super) const CSS_GROWTH_DIVISOR: usize = 4;
const CSS_ROUNDS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    SlowStart,
    /// Conservative Slow Start, with the RTT that ended slow start and
    /// the rounds spent in it.
    Css {
        baseline: Duration,
        rounds: u32,
    },
    /// Congestion avoidance, or a loss ended it all (§4.2: HyStart++
    /// applies only to the initial slow start).
    Done,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct HyStart {
    phase: Phase,
    /// The round ends when this TSN is acknowledged (§4.2 windowEnd).
    window_end: Option<Tsn>,
    last_round_min: Option<Duration>,
    current_round_min: Option<Duration>,
    samples: u32,
}

/// What the window should do on an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Growth {
    /// Slow start: cwnd grows by what was acknowledged (at most an MTU).
    Full,
    /// Conservative Slow Start: a quarter of that.
    Css,
    /// Leave slow start: ssthresh = cwnd (§4.2, after CSS_ROUNDS).
    Exit,
}

impl HyStart {
    pub(super) fn new() -> Self {
        HyStart {
            phase: Phase::SlowStart,
            window_end: None,
            last_round_min: None,
            current_round_min: None,
            samples: 0,
        }
    }

    /// A loss or a timeout ends slow start for good (§4.2).
    pub(super) fn stop(&mut self) {
        self.phase = Phase::Done;
    }

    /// A SACK in slow start: the cumulative TSN it brings, an RTT sample
    /// if it gave one, and the highest TSN sent so far (the next round
    /// ends once that is acknowledged).
    pub(super) fn on_ack(&mut self, cumulative: Tsn, rtt: Option<Duration>, highest_sent: Tsn) -> Growth {
        if self.phase == Phase::Done {
            return Growth::Full;
        }
        let round_over = self.window_end.is_none_or(|end| !cumulative.is_before(end));
        if round_over {
            // §4.2: a new round.
            self.window_end = Some(highest_sent);
            if self.current_round_min.is_some() {
                self.last_round_min = self.current_round_min;
            }
            self.current_round_min = None;
            self.samples = 0;
            if let Phase::Css { baseline, rounds } = self.phase {
                if rounds + 1 >= CSS_ROUNDS {
                    self.phase = Phase::Done;
                    return Growth::Exit;
                }
                self.phase = Phase::Css {
                    baseline,
                    rounds: rounds + 1,
                };
            }
        }
        if let Some(rtt) = rtt {
            self.samples += 1;
            self.current_round_min = Some(self.current_round_min.map_or(rtt, |m| m.min(rtt)));
        }
        let (Some(current), Some(last)) = (self.current_round_min, self.last_round_min) else {
            return self.growth();
        };
        match self.phase {
            Phase::SlowStart if self.samples >= N_RTT_SAMPLE => {
                let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if current >= last + thresh {
                    self.phase = Phase::Css {
                        baseline: current,
                        rounds: 0,
                    };
                }
            }
            // §4.2: the RTT fell back under the baseline: a spike, back
            // to slow start.
            Phase::Css { baseline, .. } if self.samples >= N_RTT_SAMPLE && current < baseline => {
                self.phase = Phase::SlowStart;
            }
            _ => {}
        }
        self.growth()
    }

    fn growth(&self) -> Growth {
        match self.phase {
            Phase::Css { .. } => Growth::Css,
            _ => Growth::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Rounds of eight samples at `rtt`, each round ending at the TSN
    /// the previous one sent.
    fn round(h: &mut HyStart, tsn: &mut u32, rtt: Duration) -> Vec<Growth> {
        let end = *tsn + 8;
        let out = (0..8).map(|i| h.on_ack(Tsn(*tsn + i), Some(rtt), Tsn(end))).collect();
        *tsn = end;
        out
    }

    #[test]
    fn a_rising_rtt_leaves_slow_start_for_css_then_congestion_avoidance() {
        let mut h = HyStart::new();
        let mut tsn = 0;
        for _ in 0..3 {
            assert!(round(&mut h, &mut tsn, 100 * MS).iter().all(|g| *g == Growth::Full));
        }
        // 100 ms to 120 ms: more than the 12.5 ms threshold (100 / 8).
        let g = round(&mut h, &mut tsn, 120 * MS);
        assert_eq!(g.last(), Some(&Growth::Css));
        let mut all = Vec::new();
        for _ in 0..CSS_ROUNDS {
            all.extend(round(&mut h, &mut tsn, 120 * MS));
        }
        assert!(all.contains(&Growth::Exit));
    }

    #[test]
    fn a_small_rise_stays_in_slow_start_and_a_spike_returns_to_it() {
        let mut h = HyStart::new();
        let mut tsn = 0;
        round(&mut h, &mut tsn, 100 * MS);
        // 10 ms over 100 ms: under the threshold.
        assert!(round(&mut h, &mut tsn, 110 * MS).iter().all(|g| *g == Growth::Full));
        assert_eq!(round(&mut h, &mut tsn, 130 * MS).last(), Some(&Growth::Css));
        // Back under the baseline: slow start again.
        assert_eq!(round(&mut h, &mut tsn, 100 * MS).last(), Some(&Growth::Full));
    }
}
