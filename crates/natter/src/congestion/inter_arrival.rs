//! Inter-arrival deltas between groups of packets (draft-ietf-rmcat-gcc-02
//! §5.2): packets sent within [`GROUP_SPAN`] of a group's first packet
//! form one group (a frame, or a pacer's burst); the delay variation is
//! the difference between two consecutive groups' arrival delta and
//! send delta, each group timed by its last packet.
//!
//! As in libwebrtc, a packet that arrives within [`BURST_SPAN`] of the
//! group's last one and sooner after it than it was sent joins the group
//! too, so that a burst the network bunched up (a cross-traffic queue
//! that emptied at once) does not look like a queue draining.

use std::time::{Duration, Instant};

use super::{micros, signed_micros};

/// gcc-02 §5.2: packets sent within 5 ms form a group.
pub const GROUP_SPAN: Duration = Duration::from_millis(5);
/// How close arrivals of a burst are (libwebrtc: 5 ms).
const BURST_SPAN_US: i64 = 5_000;
/// A burst never spans more than this (libwebrtc: 100 ms).
const MAX_BURST_US: i64 = 100_000;

/// The difference between two consecutive groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupDelta {
    /// Between the groups' last send times, µs.
    pub send_delta_us: i64,
    /// Between the groups' last arrivals, µs.
    pub arrival_delta_us: i64,
    /// The later group's last arrival on the receiver's clock, µs.
    pub arrival_us: i64,
}

#[derive(Clone, Copy, Debug)]
struct Group {
    first_send: Instant,
    last_send: Instant,
    first_arrival_us: i64,
    last_arrival_us: i64,
}

/// Groups packets (in order of arrival) and gives the delta between each
/// completed group and the one before.
#[derive(Debug, Default)]
pub struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
}

impl InterArrival {
    /// A packet sent at `send_time` arrived at `arrival_us`; the delta
    /// between the two groups before it when it starts a new group.
    /// Packets sent before the current group began (reordered) are
    /// left out.
    pub fn on_packet(&mut self, send_time: Instant, arrival_us: i64) -> Option<GroupDelta> {
        let Some(current) = &mut self.current else {
            self.current = Some(Group::starting(send_time, arrival_us));
            return None;
        };
        if send_time < current.first_send {
            return None;
        }
        if send_time - current.first_send <= GROUP_SPAN || current.is_burst(send_time, arrival_us) {
            current.last_send = current.last_send.max(send_time);
            current.last_arrival_us = current.last_arrival_us.max(arrival_us);
            return None;
        }
        let done = *current;
        self.current = Some(Group::starting(send_time, arrival_us));
        let previous = self.previous.replace(done)?;
        let delta = GroupDelta {
            send_delta_us: signed_micros(done.last_send, previous.last_send),
            arrival_delta_us: done.last_arrival_us - previous.last_arrival_us,
            arrival_us: done.last_arrival_us,
        };
        // A group that arrived before the one sent ahead of it is
        // reordering, not a queue emptying.
        (delta.arrival_delta_us >= 0).then_some(delta)
    }
}

impl Group {
    fn starting(send_time: Instant, arrival_us: i64) -> Group {
        Group {
            first_send: send_time,
            last_send: send_time,
            first_arrival_us: arrival_us,
            last_arrival_us: arrival_us,
        }
    }

    fn is_burst(&self, send_time: Instant, arrival_us: i64) -> bool {
        let arrival_delta = arrival_us - self.last_arrival_us;
        let send_delta = micros(send_time.saturating_duration_since(self.last_send));
        arrival_delta - send_delta < 0
            && arrival_delta <= BURST_SPAN_US
            && arrival_us - self.first_arrival_us < MAX_BURST_US
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_send_time_and_measures_between_last_packets() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut ia = InterArrival::default();
        assert_eq!(ia.on_packet(ms(0), 100_000), None);
        assert_eq!(ia.on_packet(ms(4), 104_000), None);
        // A new group; the first one has nothing to compare with.
        assert_eq!(ia.on_packet(ms(20), 121_000), None);
        assert_eq!(ia.on_packet(ms(22), 125_000), None);
        let delta = ia.on_packet(ms(40), 141_000).unwrap();
        assert_eq!(delta.send_delta_us, 18_000);
        assert_eq!(delta.arrival_delta_us, 21_000);
        assert_eq!(delta.arrival_us, 125_000);
    }
}
