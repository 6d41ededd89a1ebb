//! STUN client retransmission over unreliable transports (RFC 8489
//! §6.2.1): the request is sent, then resent after RTO, 2·RTO, 4·RTO...
//! (each interval capped at `max_rto`) until `max_transmissions` have
//! gone out; after the last one the client waits `last_wait_factor`
//! times the initial RTO for a response before the transaction fails. Over TCP and TLS a
//! request is sent once and times out after 39.5 s (§6.2.2).

use std::time::{Duration, Instant};

/// Retransmission parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitPolicy {
    /// The first interval; RFC 8489 recommends 500 ms, ICE checks use
    /// less (RFC 8445 §14.3).
    pub initial_rto: Duration,
    /// The cap on any one interval.
    pub max_rto: Duration,
    /// Rc: how many times the request is sent in all.
    pub max_transmissions: u32,
    /// Rm: how many initial RTOs to wait after the last transmission.
    pub last_wait_factor: u32,
}

impl Default for RetransmitPolicy {
    /// RFC 8489 §6.2.1's values: RTO 500 ms, Rc 7, Rm 16 (39.5 s in all).
    fn default() -> Self {
        RetransmitPolicy {
            initial_rto: Duration::from_millis(500),
            max_rto: Duration::from_secs(8),
            max_transmissions: 7,
            last_wait_factor: 16,
        }
    }
}

impl RetransmitPolicy {
    /// A reliable transport: one transmission, then §6.2.2's 39.5 s.
    pub fn reliable() -> Self {
        RetransmitPolicy {
            initial_rto: Duration::from_millis(39_500),
            max_rto: Duration::from_millis(39_500),
            max_transmissions: 1,
            last_wait_factor: 1,
        }
    }
}

/// What a transaction wants at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetransmitAction {
    /// Nothing until this time.
    Wait(Instant),
    /// Send (or resend) the request now.
    Send,
    /// No response came: the transaction has failed.
    TimedOut,
}

/// The retransmission timer of one client transaction.
#[derive(Clone, Debug)]
pub struct Retransmit {
    policy: RetransmitPolicy,
    /// Transmissions so far.
    sent: u32,
    /// The interval after the latest transmission.
    rto: Duration,
    /// When the next action is due; `now` for the first transmission.
    due: Instant,
}

impl Retransmit {
    /// A transaction whose first transmission is due at `now`.
    pub fn new(policy: RetransmitPolicy, now: Instant) -> Self {
        Retransmit {
            policy,
            sent: 0,
            rto: policy.initial_rto.min(policy.max_rto),
            due: now,
        }
    }

    /// When [`Retransmit::poll`] next has something to do.
    pub fn deadline(&self) -> Instant {
        self.due
    }

    /// Transmissions so far.
    pub fn transmissions(&self) -> u32 {
        self.sent
    }

    /// Advances the timer: `Send` means the caller transmits now.
    pub fn poll(&mut self, now: Instant) -> RetransmitAction {
        if now < self.due {
            return RetransmitAction::Wait(self.due);
        }
        if self.sent >= self.policy.max_transmissions {
            return RetransmitAction::TimedOut;
        }
        if self.sent > 0 {
            self.rto = (self.rto * 2).min(self.policy.max_rto);
        }
        self.sent += 1;
        let wait = if self.sent == self.policy.max_transmissions {
            self.policy.initial_rto * self.policy.last_wait_factor
        } else {
            self.rto
        };
        self.due = now + wait;
        RetransmitAction::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a transaction with no response: the times of its
    /// transmissions and of its failure, in ms from the start.
    fn schedule(policy: RetransmitPolicy) -> (Vec<u128>, u128) {
        let start = Instant::now();
        let mut t = Retransmit::new(policy, start);
        let mut sends = Vec::new();
        let mut now = start;
        loop {
            match t.poll(now) {
                RetransmitAction::Send => sends.push((now - start).as_millis()),
                RetransmitAction::Wait(at) => now = at,
                RetransmitAction::TimedOut => return (sends, (now - start).as_millis()),
            }
        }
    }

    /// RFC 8489 §6.2.1's example: with RTO 500 ms the request goes out
    /// at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms, and the
    /// transaction fails at 39500 ms.
    #[test]
    fn rfc_8489_schedule() {
        let (sends, failed) = schedule(RetransmitPolicy {
            max_rto: Duration::from_secs(3600),
            ..RetransmitPolicy::default()
        });
        assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(failed, 39500);
    }

    #[test]
    fn intervals_are_capped() {
        let (sends, failed) = schedule(RetransmitPolicy {
            initial_rto: Duration::from_millis(100),
            max_rto: Duration::from_millis(250),
            max_transmissions: 5,
            last_wait_factor: 2,
        });
        assert_eq!(sends, [0, 100, 300, 550, 800]);
        assert_eq!(failed, 1000);
    }

    #[test]
    fn reliable_sends_once() {
        assert_eq!(schedule(RetransmitPolicy::reliable()), (vec![0], 39500));
    }
}
