//! What one subscription sent, by the sequence number the subscriber
//! saw: a NACK (RFC 4585 §6.2.1) names the rewritten numbers of
//! [`crate::rewrite::StreamRewriter`], and this maps each back to the
//! layer and source packet, to find it in the publication's
//! [`crate::cache::PacketCache`] and resend it with the same rewritten
//! header (and VP8 descriptor, RFC 7741 §4.2) it went out with.
//!
//! A fixed ring indexed by the outgoing sequence number; an entry
//! counts only while its number is among the last `size` sent, so a
//! NACK for a number from before the window, or a wrap ago, finds
//! nothing.

/// RFC 4585 §6.2.1: what a NACK can name that is still worth resending;
/// 256 packets are about a second of a 2.5 Mbit/s layer.
pub const DEFAULT_PACKETS: usize = 256;

/// The VP8 descriptor fields a packet went out with (RFC 7741 §4.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vp8Picture {
    /// In the 15-bit space (a 7-bit one keeps its low bits).
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

/// One forwarded packet: where it came from and what it went out as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SentPacket {
    /// The outgoing sequence number.
    pub sequence: u16,
    pub timestamp: u32,
    /// The publication layer it came from, and its extended sequence
    /// number there.
    pub layer: u8,
    pub source: u64,
    pub vp8: Option<Vp8Picture>,
}

/// The recent packets of one subscription.
///
/// - Input: [`SentHistory::record`] per forwarded packet.
/// - Getter: [`SentHistory::lookup`] by outgoing sequence number.
#[derive(Clone, Debug)]
pub struct SentHistory {
    entries: Box<[Option<SentPacket>]>,
    /// The highest outgoing sequence number recorded.
    highest: Option<u16>,
}

impl SentHistory {
    /// A history of at least `packets` entries: a power of two up to
    /// 32,768, so that slots follow the numbers across their 16-bit wrap.
    pub fn new(packets: usize) -> Self {
        let entries = packets.clamp(1, 1 << 15).next_power_of_two();
        Self {
            entries: vec![None; entries].into_boxed_slice(),
            highest: None,
        }
    }

    fn index(&self, sequence: u16) -> usize {
        usize::from(sequence) % self.entries.len()
    }

    /// How far `sequence` is behind the highest recorded (0: it is the
    /// highest), in RFC 1982 serial arithmetic; `None` when it is ahead.
    fn behind(&self, sequence: u16) -> Option<u16> {
        let highest = self.highest?;
        let behind = highest.wrapping_sub(sequence);
        (behind < 1 << 15).then_some(behind)
    }

    pub fn record(&mut self, packet: SentPacket) {
        let index = self.index(packet.sequence);
        match self.behind(packet.sequence) {
            // Ahead: the new highest. Entries skipped over (numbers never
            // sent) are cleared so they cannot answer for the new numbers.
            None => {
                if let Some(highest) = self.highest {
                    let gap = packet.sequence.wrapping_sub(highest);
                    let clear = usize::from(gap).min(self.entries.len());
                    for step in 1..clear {
                        let stale = self.index(highest.wrapping_add(step as u16));
                        self.entries[stale] = None;
                    }
                }
                self.highest = Some(packet.sequence);
            }
            Some(behind) if usize::from(behind) >= self.entries.len() => return,
            Some(_) => {}
        }
        self.entries[index] = Some(packet);
    }

    /// The packet that went out as `sequence`, while it is among the
    /// last recorded.
    pub fn lookup(&self, sequence: u16) -> Option<SentPacket> {
        let behind = self.behind(sequence)?;
        if usize::from(behind) >= self.entries.len() {
            return None;
        }
        self.entries[self.index(sequence)].filter(|entry| entry.sequence == sequence)
    }

    /// The layer and source packet of `sequence`, a number in a gap (a
    /// packet the SFU never received, so never sent): found from the
    /// nearest packets sent on each side within [`INFER_REACH`], when
    /// both came from one layer with one offset between outgoing and
    /// source numbers (no switch or skipped packet between them).
    pub fn infer(&self, sequence: u16) -> Option<(u8, u64)> {
        let near = |direction: i32| {
            (1..=INFER_REACH).find_map(|distance| {
                let at = sequence.wrapping_add((direction * i32::from(distance)) as u16);
                self.lookup(at).map(|entry| (entry, u64::from(distance)))
            })
        };
        let (below, below_distance) = near(-1)?;
        let (above, above_distance) = near(1)?;
        let source = below.source.checked_add(below_distance)?;
        (below.layer == above.layer && above.source.checked_sub(above_distance) == Some(source))
            .then_some((below.layer, source))
    }
}

/// How far [`SentHistory::infer`] looks on each side of a gap.
pub const INFER_REACH: u16 = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sent(sequence: u16, source: u64) -> SentPacket {
        SentPacket {
            sequence,
            source,
            ..Default::default()
        }
    }

    #[test]
    fn lookups_across_the_wrap() {
        let mut history = SentHistory::new(8);
        for (i, sequence) in (65_530..=65_535).chain(0..4).enumerate() {
            history.record(sent(sequence, 1_000 + i as u64));
        }
        assert_eq!(history.lookup(65_535).unwrap().source, 1_005);
        assert_eq!(history.lookup(3).unwrap().source, 1_009);
        // Ten recorded, eight kept.
        assert_eq!(history.lookup(65_531), None);
        assert_eq!(history.lookup(65_532).unwrap().source, 1_002);
        // Ahead of everything sent: nothing.
        assert_eq!(history.lookup(4), None);
        assert_eq!(history.lookup(40_000), None);
    }

    #[test]
    fn a_jump_clears_what_it_skipped() {
        let mut history = SentHistory::new(8);
        history.record(sent(10, 1));
        history.record(sent(11, 2));
        history.record(sent(14, 3));
        assert_eq!(history.lookup(12), None);
        assert_eq!(history.lookup(11).unwrap().source, 2);
        // A reordered packet fills its gap.
        history.record(sent(12, 4));
        assert_eq!(history.lookup(12).unwrap().source, 4);
    }

    #[test]
    fn a_gap_maps_to_its_source_between_packets_of_one_layer() {
        let mut history = SentHistory::new(32);
        let at = |sequence: u16, layer: u8, source: u64| SentPacket {
            sequence,
            layer,
            source,
            ..Default::default()
        };
        // 65,534 and 0 sent from source 99 and 101: 65,535 was 100.
        history.record(at(65_534, 1, 99));
        history.record(at(0, 1, 101));
        assert_eq!(history.infer(65_535), Some((1, 100)));
        // A switch between them: no answer.
        history.record(at(2, 2, 7));
        assert_eq!(history.infer(1), None);
        history.record(at(5, 2, 10));
        assert_eq!(history.infer(3), Some((2, 8)));
        assert_eq!(history.infer(4), Some((2, 9)));
        // Offsets that disagree (a packet skipped): no answer.
        history.record(at(8, 2, 14));
        assert_eq!(history.infer(6), None);
    }

    proptest! {
        /// Against a model (a map of every number recorded): a lookup
        /// finds the last packet recorded under a number exactly when
        /// that number is among the last `size` behind the highest.
        #[test]
        fn matches_a_model(
            start in any::<u16>(),
            size in 1usize..300,
            steps in proptest::collection::vec((0u16..6, any::<bool>()), 1..1_500),
        ) {
            let mut history = SentHistory::new(size);
            let size = size.next_power_of_two();
            let mut model = std::collections::HashMap::new();
            let mut highest = start.wrapping_sub(1);
            let mut extended_highest: i64 = -1;
            let mut source = 0;
            for (advance, late) in steps {
                // Mostly in order with gaps; sometimes a late one behind.
                let (sequence, extended) = if late && extended_highest > 3 {
                    (highest.wrapping_sub(advance), extended_highest - i64::from(advance))
                } else {
                    highest = highest.wrapping_add(advance.max(1));
                    extended_highest += i64::from(advance.max(1));
                    (highest, extended_highest)
                };
                source += 1;
                history.record(sent(sequence, source));
                if extended_highest - extended < size as i64 {
                    model.insert(extended, source);
                }
            }
            for back in 0..(size as i64 + 10).min(extended_highest + 1) {
                let extended = extended_highest - back;
                let sequence = highest.wrapping_sub(back as u16);
                let found = history.lookup(sequence).map(|entry| entry.source);
                let expected = (back < size as i64).then(|| model.get(&extended).copied()).flatten();
                prop_assert_eq!(found, expected, "{} behind", back);
            }
        }
    }
}
