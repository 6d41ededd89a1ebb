//! A publication layer's recent packets, kept by the SFU to answer its
//! subscribers' NACKs (RFC 4585 §6.2.1) itself instead of asking the
//! publisher again: one cache serves every subscriber of the layer,
//! where a per-subscriber history would hold the same packet once per
//! subscriber.
//!
//! A fixed ring of slots indexed by the extended sequence number
//! (RFC 3550 Appendix A.1) modulo its size. Each slot keeps its buffer:
//! once every slot has held a packet as long as the layer's longest,
//! storing a packet allocates nothing.

/// RFC 4585 §6.2.1 leaves the window to the sender; 512 packets hold
/// about two seconds of a 2.5 Mbit/s layer, longer than a NACK's round
/// trip is worth waiting for.
pub const DEFAULT_PACKETS: usize = 512;

/// A packet as the cache gives it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedPacket<'a> {
    /// Extended sequence number in the layer's own space.
    pub sequence: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
    /// The dependency descriptor's value as received (AV1 RTP Appendix
    /// A), forwarded with the packet.
    pub dependency_descriptor: Option<&'a [u8]>,
}

#[derive(Clone, Debug, Default)]
struct Slot {
    /// `None`: never filled.
    sequence: Option<u64>,
    timestamp: u32,
    marker: bool,
    payload_len: usize,
    /// The dependency descriptor follows the payload in `bytes`.
    descriptor: Option<usize>,
    bytes: Vec<u8>,
}

/// The recent packets of one layer of one publication.
///
/// - Input: [`PacketCache::insert`] per received packet.
/// - Getter: [`PacketCache::get`] by extended sequence number.
#[derive(Clone, Debug)]
pub struct PacketCache {
    slots: Box<[Slot]>,
}

impl PacketCache {
    /// A cache of `packets` slots (at least one). Slot buffers grow on
    /// first use, not here.
    pub fn new(packets: usize) -> Self {
        Self {
            slots: vec![Slot::default(); packets.max(1)].into_boxed_slice(),
        }
    }

    fn index(&self, sequence: u64) -> usize {
        // The remainder is below the slot count, a usize.
        (sequence % self.slots.len() as u64) as usize
    }

    /// Keeps a received packet. A packet older than the one in its slot
    /// (a late retransmission) is not kept.
    pub fn insert(
        &mut self,
        sequence: u64,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        dependency_descriptor: Option<&[u8]>,
    ) {
        let index = self.index(sequence);
        let slot = &mut self.slots[index];
        if slot.sequence.is_some_and(|held| held > sequence) {
            return;
        }
        slot.sequence = Some(sequence);
        slot.timestamp = timestamp;
        slot.marker = marker;
        slot.payload_len = payload.len();
        slot.bytes.clear();
        slot.bytes.extend_from_slice(payload);
        slot.descriptor = dependency_descriptor.map(|descriptor| {
            slot.bytes.extend_from_slice(descriptor);
            descriptor.len()
        });
    }

    /// The packet with extended sequence number `sequence`, while the
    /// cache still holds it.
    pub fn get(&self, sequence: u64) -> Option<CachedPacket<'_>> {
        let slot = &self.slots[self.index(sequence)];
        if slot.sequence != Some(sequence) {
            return None;
        }
        let (payload, rest) = slot.bytes.split_at(slot.payload_len);
        Some(CachedPacket {
            sequence,
            timestamp: slot.timestamp,
            marker: slot.marker,
            payload,
            dependency_descriptor: slot.descriptor.map(|len| &rest[..len]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packets_come_back_until_overwritten() {
        let mut cache = PacketCache::new(4);
        cache.insert(65_535, 10, false, b"a", None);
        cache.insert(65_536, 20, true, b"bb", Some(b"dd"));
        let b = cache.get(65_536).unwrap();
        assert_eq!((b.timestamp, b.marker, b.payload), (20, true, &b"bb"[..]));
        assert_eq!(b.dependency_descriptor, Some(&b"dd"[..]));
        assert_eq!(cache.get(65_535).unwrap().payload, b"a");
        // Four later, 65,536's slot holds 65,540.
        cache.insert(65_540, 30, false, b"c", None);
        assert_eq!(cache.get(65_536), None);
        // A late copy of an older packet does not push out a newer one.
        cache.insert(65_536, 20, true, b"bb", None);
        assert_eq!(cache.get(65_540).unwrap().payload, b"c");
        assert_eq!(cache.get(1), None);
    }

    proptest! {
        /// Whatever the start (across 16-bit wraps) and the reordering,
        /// the cache gives back exactly the packets among the last
        /// `size` sequence numbers that arrived, each with its bytes.
        #[test]
        fn holds_the_latest_window(
            start in (0u64..4).prop_map(|wraps| wraps * 65_536).prop_flat_map(|base| (base - base.min(300))..base + 300),
            count in 1usize..2_000,
            size in 1usize..600,
            swaps in proptest::collection::vec(any::<u16>(), 0..50),
            lost in proptest::collection::vec(any::<u16>(), 0..50),
        ) {
            let mut order: Vec<u64> = (start..start + count as u64).collect();
            for swap in swaps {
                let i = usize::from(swap) % count;
                if i + 1 < count { order.swap(i, i + 1); }
            }
            let lost: std::collections::HashSet<u64> =
                lost.iter().map(|l| start + u64::from(*l) % count as u64).collect();
            let mut cache = PacketCache::new(size);
            for &sequence in &order {
                if lost.contains(&sequence) { continue; }
                let bytes = sequence.to_le_bytes();
                cache.insert(sequence, sequence as u32, sequence % 2 == 0, &bytes, None);
            }
            let highest = start + count as u64 - 1;
            for sequence in start.saturating_sub(5)..=highest + 5 {
                let held = cache.get(sequence);
                if let Some(held) = held {
                    prop_assert_eq!(held.payload, &sequence.to_le_bytes()[..]);
                    prop_assert_eq!(held.timestamp, sequence as u32);
                    prop_assert!(!lost.contains(&sequence));
                }
                let recent = (start..=highest).contains(&sequence) && sequence + size as u64 > highest;
                if recent && !lost.contains(&sequence) {
                    prop_assert!(held.is_some(), "{} missing", sequence);
                }
            }
        }
    }
}
