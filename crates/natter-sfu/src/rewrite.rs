//! One subscriber's outgoing stream made continuous across layer
//! switches (RFC 3550 §5.1): the sequence number goes up by one per
//! packet and the timestamp follows the media clock, whichever simulcast
//! layer the packets come from. mediasoup's `SeqManager` and LiveKit's
//! `RTPMunger` do the same job.
//!
//! Each layer has its own sequence and timestamp space. At a switch the
//! rewriter picks offsets so that the new layer's first packet goes out
//! with the sequence number after the last one sent and a timestamp
//! advanced by the time elapsed since then (at least one tick). Within a
//! layer, sequence numbers are extended to 64 bits (RFC 3550 Appendix
//! A.1's cycles), so wrap-around, reordering and retransmissions map to
//! the same outgoing numbers they would have had in order.
//!
//! VP8's PictureID and TL0PICIDX (RFC 7741 §4.2) are made continuous
//! the same way by [`crate::vp8::Vp8Rewriter`].

use std::time::Instant;

/// The header fields the rewriter reads from an incoming packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// RFC 3550 §5.1 sequence number, in the layer's own space.
    pub sequence: u16,
    /// RFC 3550 §5.1 timestamp, in the layer's own space.
    pub timestamp: u32,
    /// It came as an RTX copy (RFC 4588; natter's
    /// `ReceivedRtp::retransmission`): a late packet, never the sign of
    /// a restarted stream.
    pub retransmission: bool,
}

impl Incoming {
    /// A packet as first sent (not a retransmission).
    pub fn new(sequence: u16, timestamp: u32) -> Self {
        Self {
            sequence,
            timestamp,
            retransmission: false,
        }
    }
}

/// RFC 3550 Appendix A.1: a jump of more than this many sequence numbers
/// ahead is not loss but a restarted stream.
pub const MAX_DROPOUT: i64 = 3000;
/// RFC 3550 Appendix A.1: a packet this far behind the highest is not
/// reordering but a restarted stream (or a very late copy).
pub const MAX_MISORDER: i64 = 100;

/// The sequence number and timestamp a packet goes out with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub sequence: u16,
    pub timestamp: u32,
}

/// Why a packet is not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// No layer has been switched to yet.
    #[error("no layer switched to yet; sequence number {sequence} dropped")]
    NoLayer { sequence: u16 },
    /// The packet belongs to the current layer's stream from before the
    /// switch (reordered across it): its number would collide with the
    /// previous layer's packets.
    #[error("sequence number {sequence} precedes the switch at {first}")]
    BeforeSwitch { sequence: u16, first: u16 },
    /// RFC 3550 Appendix A.1: the sequence number jumped by more than
    /// `MAX_DROPOUT` ahead or `MAX_MISORDER` behind. If the next packet
    /// follows this one, the stream restarted and the rewriter goes on
    /// with it as at a switch (the decoder then needs a keyframe);
    /// retransmissions never restart it.
    #[error("sequence number {sequence} jumped from {highest}")]
    SequenceJump { sequence: u16, highest: u16 },
    /// The packet was skipped before (see [`StreamRewriter::skip`]), or
    /// arrives from before the skips the rewriter remembers.
    #[error("sequence number {sequence} was skipped or is too old to number")]
    Skipped { sequence: u16 },
}

/// The state of the layer being forwarded.
#[derive(Clone, Copy, Debug)]
struct Current {
    /// Extended (64-bit) input sequence number of the switch's first packet.
    first: i64,
    /// Highest extended input sequence number seen in this layer.
    highest: i64,
    /// The input's 16-bit number for `highest`, to extend the next one.
    highest_sequence: u16,
    /// Extended output sequence number of the switch's first packet.
    output_first: i64,
    /// Added (wrapping) to input timestamps.
    timestamp_offset: u32,
    /// After a jump: the sequence number that confirms a restart.
    probation: Option<u16>,
    /// Packets of this layer not forwarded, closed up in the output.
    skipped: Skipped,
}

/// How many recent skips are remembered, to number packets reordered
/// around them.
const SKIP_HISTORY: usize = 32;

/// The layer's skipped packets: how many in all, and the latest ones'
/// extended sequence numbers (a ring, no allocation).
#[derive(Clone, Copy, Debug, Default)]
struct Skipped {
    total: i64,
    recent: [i64; SKIP_HISTORY],
}

impl Skipped {
    fn push(&mut self, extended: i64) {
        self.recent[(self.total as usize) % SKIP_HISTORY] = extended;
        self.total += 1;
    }

    /// How many skipped packets precede `extended`; `None` when the
    /// history no longer reaches back that far, or `extended` itself
    /// was skipped.
    fn before(&self, extended: i64) -> Option<i64> {
        let remembered = &self.recent[..(self.total as usize).min(SKIP_HISTORY)];
        if remembered.contains(&extended) {
            return None;
        }
        let after = remembered.iter().filter(|&&skipped| skipped > extended).count() as i64;
        let forgotten = self.total > SKIP_HISTORY as i64;
        if forgotten && after == SKIP_HISTORY as i64 {
            return None;
        }
        Some(self.total - after)
    }
}

/// The last packet sent (the highest outgoing sequence number), and when.
#[derive(Clone, Copy, Debug)]
struct Sent {
    sequence: i64,
    timestamp: u32,
    at: Instant,
}

/// Rewrites one subscriber's forwarded stream.
///
/// - Getters: [`StreamRewriter::clock_rate`], [`StreamRewriter::last_sent`].
/// - Input: [`StreamRewriter::switch`] with the first packet of a newly
///   forwarded layer (normally its keyframe), then
///   [`StreamRewriter::rewrite`] with every packet of that layer.
///
/// Nothing allocates; time comes in as an argument.
#[derive(Clone, Debug)]
pub struct StreamRewriter {
    clock_rate: u32,
    current: Option<Current>,
    last: Option<Sent>,
}

impl StreamRewriter {
    /// A rewriter for a stream whose RTP clock runs at `clock_rate` Hz
    /// (90,000 for video, RFC 3551 §5; 48,000 for Opus, RFC 7587 §4.1).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            current: None,
            last: None,
        }
    }

    /// The RTP clock rate in Hz.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The highest sequence number sent and its timestamp.
    pub fn last_sent(&self) -> Option<Rewritten> {
        self.last.map(|sent| Rewritten {
            sequence: sent.sequence as u16,
            timestamp: sent.timestamp,
        })
    }

    /// The stream goes out on an SSRC that already carried `last`, sent
    /// at `at` (a receive slot that carried another publication, RFC
    /// 3550 §5.1): the next packet continues after it, as at a layer
    /// switch, instead of starting at the publisher's numbers, which a
    /// receiver would take for a jump and drop.
    pub fn continue_after(&mut self, last: Rewritten, at: Instant) {
        self.current = None;
        self.last = Some(Sent {
            sequence: i64::from(last.sequence),
            timestamp: last.timestamp,
            at,
        });
    }

    /// The stream goes on with `first`, the first packet of a new layer
    /// (or of the same layer after a gap): the sequence continues at the
    /// last one sent plus one, the timestamp advances by the time since
    /// that packet, in clock ticks, at least one. Returns what `first`
    /// goes out with.
    pub fn switch(&mut self, first: Incoming, now: Instant) -> Rewritten {
        let (output_first, timestamp) = match self.last {
            Some(sent) => {
                let elapsed = now.saturating_duration_since(sent.at);
                let ticks = elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000;
                // Timestamps wrap (RFC 3550 §5.1); only the low 32 bits matter.
                let ticks = (ticks as u32).max(1);
                (sent.sequence + 1, sent.timestamp.wrapping_add(ticks))
            }
            None => (i64::from(first.sequence), first.timestamp),
        };
        let extended = i64::from(first.sequence);
        self.current = Some(Current {
            first: extended,
            highest: extended,
            highest_sequence: first.sequence,
            output_first,
            timestamp_offset: timestamp.wrapping_sub(first.timestamp),
            probation: None,
            skipped: Skipped::default(),
        });
        self.last = Some(Sent {
            sequence: output_first,
            timestamp,
            at: now,
        });
        Rewritten {
            sequence: output_first as u16,
            timestamp,
        }
    }

    /// A packet of the current layer that is not forwarded (a temporal
    /// layer above the subscriber's, padding): the following packets
    /// close up behind it, so the subscriber sees no loss. Only a packet
    /// newer than every one seen can be skipped; a late one leaves its
    /// gap.
    pub fn skip(&mut self, packet: Incoming) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        let delta = i64::from(packet.sequence.wrapping_sub(current.highest_sequence) as i16);
        if (1..=MAX_DROPOUT).contains(&delta) {
            current.highest += delta;
            current.highest_sequence = packet.sequence;
            current.skipped.push(current.highest);
        }
    }

    /// What a packet of the current layer goes out with. A packet seen
    /// before (a retransmission or a duplicate) gets the same numbers
    /// again; one from before the switch, or a jump (see
    /// [`RewriteError::SequenceJump`]), is an error and must be dropped.
    pub fn rewrite(&mut self, packet: Incoming, now: Instant) -> Result<Rewritten, RewriteError> {
        if self.current.is_none() && self.last.is_some() && !packet.retransmission {
            // Continued after another stream (`continue_after`).
            return Ok(self.switch(packet, now));
        }
        let Some(current) = self.current.as_mut() else {
            return Err(RewriteError::NoLayer {
                sequence: packet.sequence,
            });
        };
        // RFC 1982 serial arithmetic: within half the space, the signed
        // difference orders two sequence numbers (RFC 3550 Appendix A.1).
        let delta = i64::from(packet.sequence.wrapping_sub(current.highest_sequence) as i16);
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&delta) {
            if packet.retransmission {
                return Err(RewriteError::SequenceJump {
                    sequence: packet.sequence,
                    highest: current.highest_sequence,
                });
            }
            if current.probation == Some(packet.sequence) {
                return Ok(self.switch(packet, now));
            }
            current.probation = Some(packet.sequence.wrapping_add(1));
            return Err(RewriteError::SequenceJump {
                sequence: packet.sequence,
                highest: current.highest_sequence,
            });
        }
        current.probation = None;
        let extended = current.highest + delta;
        if extended < current.first {
            return Err(RewriteError::BeforeSwitch {
                sequence: packet.sequence,
                first: current.first as u16,
            });
        }
        let skipped = if extended > current.highest {
            current.highest = extended;
            current.highest_sequence = packet.sequence;
            current.skipped.total
        } else {
            current.skipped.before(extended).ok_or(RewriteError::Skipped {
                sequence: packet.sequence,
            })?
        };
        let sequence = current.output_first + (extended - current.first) - skipped;
        let timestamp = packet.timestamp.wrapping_add(current.timestamp_offset);
        if self.last.is_none_or(|sent| sequence > sent.sequence) {
            self.last = Some(Sent {
                sequence,
                timestamp,
                at: now,
            });
        }
        Ok(Rewritten {
            sequence: sequence as u16,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn packet(sequence: u16, timestamp: u32) -> Incoming {
        Incoming::new(sequence, timestamp)
    }

    #[test]
    fn skipped_packets_are_closed_up() {
        let mut rewriter = StreamRewriter::new(90_000);
        let now = Instant::now();
        rewriter.switch(packet(100, 0), now);
        rewriter.skip(packet(101, 0));
        rewriter.skip(packet(103, 0));
        // 102 reordered after 103's skip; 104 in order; 101 again.
        assert_eq!(rewriter.rewrite(packet(104, 0), now).unwrap().sequence, 102);
        assert_eq!(rewriter.rewrite(packet(102, 0), now).unwrap().sequence, 101);
        assert_eq!(
            rewriter.rewrite(packet(101, 0), now),
            Err(RewriteError::Skipped { sequence: 101 })
        );
        // A late packet cannot be skipped: it was numbered already.
        rewriter.skip(packet(102, 0));
        assert_eq!(rewriter.rewrite(packet(102, 0), now).unwrap().sequence, 101);
        // Past the history, a packet older than every remembered skip.
        for i in 0..SKIP_HISTORY as u16 {
            rewriter.skip(packet(105 + 2 * i, 0));
            rewriter.rewrite(packet(106 + 2 * i, 0), now).unwrap();
        }
        assert!(rewriter.rewrite(packet(104, 0), now).is_err());
        assert_eq!(rewriter.last_sent().unwrap().sequence, 102 + SKIP_HISTORY as u16);
    }

    #[test]
    fn a_stream_continued_after_another_goes_on_from_its_last_numbers() {
        let start = Instant::now();
        // A slot that last carried sequence 5,000 at timestamp 900,000.
        let last = Rewritten {
            sequence: 5_000,
            timestamp: 900_000,
        };
        for forwarded_first in [false, true] {
            let mut rewriter = StreamRewriter::new(90_000);
            if forwarded_first {
                // The new publication already went out before the slot's
                // numbers were known: it is renumbered from the next packet.
                rewriter.switch(packet(40_000, 7), start);
                rewriter.rewrite(packet(40_001, 7), start).unwrap();
            }
            rewriter.continue_after(last, start);
            let later = start + Duration::from_millis(100);
            // A retransmission cannot open the continued stream.
            let rtx = Incoming {
                retransmission: true,
                ..packet(40_001, 7)
            };
            assert!(rewriter.rewrite(rtx, later).is_err());
            let first = rewriter.rewrite(packet(40_002, 3_000), later).unwrap();
            assert_eq!(first.sequence, 5_001);
            assert_eq!(first.timestamp, 900_000 + 9_000, "100 ms later at 90 kHz");
            let next = rewriter.rewrite(packet(40_003, 6_000), later).unwrap();
            assert_eq!((next.sequence, next.timestamp), (5_002, 903_000 + 9_000));
        }
    }

    #[test]
    fn a_restarted_stream_is_followed_after_two_packets() {
        let mut rewriter = StreamRewriter::new(90_000);
        let now = Instant::now();
        rewriter.switch(packet(1_000, 0), now);
        rewriter.rewrite(packet(1_001, 0), now).unwrap();
        // A very late copy is dropped, however many come in a row.
        let late = Incoming {
            retransmission: true,
            ..packet(500, 0)
        };
        let next = Incoming {
            retransmission: true,
            ..packet(501, 0)
        };
        assert!(matches!(
            rewriter.rewrite(late, now),
            Err(RewriteError::SequenceJump { .. })
        ));
        assert!(matches!(
            rewriter.rewrite(next, now),
            Err(RewriteError::SequenceJump { .. })
        ));
        // A lone stray packet far ahead is dropped and changes nothing.
        assert!(matches!(
            rewriter.rewrite(packet(20_000, 0), now),
            Err(RewriteError::SequenceJump { .. })
        ));
        assert_eq!(rewriter.rewrite(packet(1_002, 0), now).unwrap().sequence, 1_002);
        // Two in sequence: the stream restarted there.
        assert!(rewriter.rewrite(packet(50, 0), now).is_err());
        assert_eq!(rewriter.rewrite(packet(51, 0), now).unwrap().sequence, 1_003);
        assert_eq!(rewriter.rewrite(packet(52, 0), now).unwrap().sequence, 1_004);
    }

    #[test]
    fn before_any_switch_packets_are_dropped() {
        let mut rewriter = StreamRewriter::new(90_000);
        let now = Instant::now();
        assert_eq!(
            rewriter.rewrite(packet(1, 1), now),
            Err(RewriteError::NoLayer { sequence: 1 })
        );
    }

    #[test]
    fn the_first_layer_keeps_its_numbers() {
        let mut rewriter = StreamRewriter::new(90_000);
        let now = Instant::now();
        let out = rewriter.switch(packet(500, 9_000), now);
        assert_eq!(
            out,
            Rewritten {
                sequence: 500,
                timestamp: 9_000
            }
        );
        assert_eq!(
            rewriter.rewrite(packet(501, 12_000), now),
            Ok(Rewritten {
                sequence: 501,
                timestamp: 12_000
            })
        );
    }

    #[test]
    fn a_switch_continues_the_sequence_and_advances_the_timestamp() {
        let mut rewriter = StreamRewriter::new(90_000);
        let start = Instant::now();
        rewriter.switch(packet(100, 1_000), start);
        rewriter.rewrite(packet(101, 4_000), start).unwrap();
        // The other layer, 100 ms later: 9,000 ticks at 90 kHz.
        let later = start + Duration::from_millis(100);
        let out = rewriter.switch(packet(40_000, 7), later);
        assert_eq!(
            out,
            Rewritten {
                sequence: 102,
                timestamp: 13_000
            }
        );
        assert_eq!(
            rewriter.rewrite(packet(40_001, 3_007), later).unwrap(),
            Rewritten {
                sequence: 103,
                timestamp: 16_000
            }
        );
        // The new layer's packets from before the switch would collide.
        assert_eq!(
            rewriter.rewrite(packet(39_999, 0), later),
            Err(RewriteError::BeforeSwitch {
                sequence: 39_999,
                first: 40_000
            })
        );
    }

    #[test]
    fn a_switch_in_the_same_instant_advances_the_timestamp_by_one() {
        let mut rewriter = StreamRewriter::new(48_000);
        let now = Instant::now();
        rewriter.switch(packet(7, 100), now);
        assert_eq!(rewriter.switch(packet(9_000, 5), now).timestamp, 101);
    }

    #[test]
    fn wrap_around_reordering_and_retransmission() {
        let mut rewriter = StreamRewriter::new(90_000);
        let now = Instant::now();
        rewriter.switch(packet(10, 0), now);
        rewriter.switch(packet(65_534, 0), now);
        let a = rewriter.rewrite(packet(1, 0), now).unwrap();
        let b = rewriter.rewrite(packet(65_535, 0), now).unwrap();
        let c = rewriter.rewrite(packet(0, 0), now).unwrap();
        let again = rewriter.rewrite(packet(65_535, 0), now).unwrap();
        assert_eq!((b.sequence, c.sequence, a.sequence), (12, 13, 14));
        assert_eq!(again, b);
        assert_eq!(rewriter.last_sent().unwrap().sequence, 14);
    }

    /// One step of a random stream: a switch to a new layer at a random
    /// point of its own sequence space, or the next packets of the
    /// current layer, some swapped with their neighbour.
    #[derive(Clone, Debug)]
    enum Step {
        Switch {
            sequence: u16,
            timestamp: u32,
            after_ms: u16,
        },
        Packets {
            count: u8,
            swap: bool,
            /// Bit i set: the batch's i-th packet is skipped.
            skips: u64,
            after_ms: u16,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (any::<u16>(), any::<u32>(), 0u16..500).prop_map(|(sequence, timestamp, after_ms)| {
                Step::Switch {
                    sequence,
                    timestamp,
                    after_ms,
                }
            }),
            (1u8..40, any::<bool>(), any::<u64>(), 0u16..100).prop_map(|(count, swap, skips, after_ms)| {
                Step::Packets {
                    count,
                    swap,
                    skips: skips & skips.rotate_left(17),
                    after_ms,
                }
            }),
        ]
    }

    proptest! {
        /// Forwarded packets never repeat an outgoing sequence number;
        /// when the input is in order the output is contiguous, skipped
        /// packets closed up; the
        /// timestamp never goes backwards at a switch.
        #[test]
        fn continuity_across_switches(steps in proptest::collection::vec(step(), 1..60)) {
            let mut rewriter = StreamRewriter::new(90_000);
            let mut now = Instant::now();
            let mut layer: Option<(u16, u32)> = None;
            let mut seen = std::collections::HashSet::new();
            let mut previous: Option<Rewritten> = None;
            let mut reordered = false;
            for step in steps {
                match step {
                    Step::Switch { sequence, timestamp, after_ms } => {
                        now += Duration::from_millis(after_ms.into());
                        let out = rewriter.switch(packet(sequence, timestamp), now);
                        if let Some(prev) = previous {
                            prop_assert_eq!(out.sequence, prev.sequence.wrapping_add(1));
                            let advance = out.timestamp.wrapping_sub(prev.timestamp);
                            prop_assert!((1..1 << 31).contains(&advance));
                        }
                        prop_assert!(seen.insert(out.sequence));
                        previous = Some(out);
                        layer = Some((sequence, timestamp));
                    }
                    Step::Packets { count, swap, skips, after_ms } => {
                        let Some((sequence, timestamp)) = layer.as_mut() else { continue };
                        now += Duration::from_millis(after_ms.into());
                        let mut batch: Vec<u16> = (1..=u16::from(count))
                            .map(|i| sequence.wrapping_add(i))
                            .collect();
                        if swap && batch.len() > 1 {
                            batch.swap(0, 1);
                            reordered = true;
                        }
                        for (i, input) in batch.into_iter().enumerate() {
                            // A late packet cannot be skipped (it leaves a
                            // gap, see `skip`), so the swapped one is not.
                            let late = reordered && i == 1;
                            if skips & (1 << i) != 0 && !late {
                                rewriter.skip(packet(input, *timestamp));
                                continue;
                            }
                            let out = rewriter.rewrite(packet(input, *timestamp), now).unwrap();
                            prop_assert!(seen.insert(out.sequence), "repeated {}", out.sequence);
                            if !reordered {
                                prop_assert_eq!(
                                    out.sequence,
                                    previous.unwrap().sequence.wrapping_add(1)
                                );
                            }
                            previous = Some(out);
                        }
                        *sequence = sequence.wrapping_add(count.into());
                        *timestamp = timestamp.wrapping_add(3_000);
                        // Compare against the highest sent, whatever the order.
                        previous = rewriter.last_sent();
                        reordered = false;
                    }
                }
                // Outgoing numbers are unique only within half the space.
                if seen.len() > 30_000 { seen.clear(); }
            }
        }
    }
}
