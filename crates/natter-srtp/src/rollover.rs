//! The 48-bit SRTP packet index and the rollover counter (RFC 3711 §3.3.1).
//!
//! The index is i = 2^16 * ROC + SEQ. A receiver sees only SEQ and
//! estimates ROC from the highest index it has authenticated; a sender
//! tracks ROC the same way from the highest index it has protected.

/// RFC 3711 §3.3.1: the index is 48 bits.
pub const MAX_INDEX: u64 = (1 << 48) - 1;

/// The rollover counter of a packet index.
pub const fn rollover_counter(index: u64) -> u32 {
    (index >> 16) as u32
}

/// RFC 3711 §3.3.1 and Appendix A: the index of a packet carrying
/// `sequence_number`, given the highest index seen so far in the stream
/// (`None` for its first packet, whose ROC is 0).
///
/// Of ROC-1, ROC and ROC+1 (with ROC that of `highest`) it picks the
/// candidate closest to `highest`; a tie (distance 2^15) keeps ROC, as
/// Appendix A's strict comparisons do. ROC-1 is never taken below zero, which is how
/// libsrtp treats a stream's first 2^15 packets too. The result may be
/// 2^48 when the counter would pass its last value; callers refuse it.
pub fn estimate_index(highest: Option<u64>, sequence_number: u16) -> u64 {
    let seq = u64::from(sequence_number);
    let Some(highest) = highest else {
        return seq;
    };
    let roc = highest >> 16;
    let same = (roc << 16) | seq;
    let distance = |i: u64| i.abs_diff(highest);
    let mut best = same;
    if roc > 0 {
        let previous = same - (1 << 16);
        if distance(previous) < distance(best) {
            best = previous;
        }
    }
    let next = same + (1 << 16);
    if distance(next) < distance(best) {
        best = next;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_packet_has_roc_zero() {
        assert_eq!(estimate_index(None, 65535), 65535);
    }

    #[test]
    fn a_wrap_increments_the_roc_and_late_packets_keep_the_old_one() {
        assert_eq!(estimate_index(Some(65535), 0), 65536);
        assert_eq!(estimate_index(Some(65536 + 3), 65534), 65534);
        assert_eq!(estimate_index(Some(5 << 16 | 10), 20), 5 << 16 | 20);
    }

    #[test]
    fn a_distance_of_half_the_sequence_space_keeps_the_roc() {
        let highest = (3 << 16) | 100;
        assert_eq!(estimate_index(Some(highest), 100 + 32768), (3 << 16) | (100 + 32768));
        let highest = (3 << 16) | 40000;
        assert_eq!(
            estimate_index(Some(highest), 40000 - 32768),
            (3 << 16) | (40000 - 32768)
        );
    }

    #[test]
    fn early_packets_of_a_stream_never_take_roc_minus_one() {
        assert_eq!(estimate_index(Some(10), 65000), 65000);
    }

    #[test]
    fn the_last_roc_estimates_past_the_index_space() {
        assert_eq!(estimate_index(Some(MAX_INDEX), 0), MAX_INDEX + 1);
    }
}
