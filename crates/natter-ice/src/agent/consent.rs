//! Consent freshness (RFC 7675) and keepalives (RFC 8445 §11) on the
//! selected pair, and on the pair selected before an ICE restart while
//! it still carries data.

use std::time::{Duration, Instant};

use natter_stun::{Class, Message};

use crate::transaction::RetransmitPolicy;

use super::nomination::Path;
use super::stun;
use super::transactions::{Pending, PendingKind};
use super::{Agent, Arrival};

/// What consent says about a path at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// A consent check has gone unanswered for the disconnected timeout.
    Disconnected,
    /// RFC 7675 §5.1: no response for the consent timeout; stop sending.
    Expired,
}

/// The consent timers of one path.
#[derive(Clone, Debug)]
pub struct Consent {
    /// When the next consent check is due.
    pub next_check: Instant,
    /// The latest authenticated response (or the selection); for a lite
    /// agent, the peer's latest check or keepalive on the path.
    pub last_response: Instant,
    /// When the oldest still unanswered consent check went out.
    pub unanswered_since: Option<Instant>,
    /// When anything was last sent on the path (for keepalives).
    pub last_sent: Instant,
    pub expired: bool,
    /// `freshness` has reported `Disconnected` since the last response.
    disconnected: bool,
}

impl Consent {
    pub fn new(now: Instant, first_check: Instant) -> Self {
        Consent {
            next_check: first_check,
            last_response: now,
            unanswered_since: None,
            last_sent: now,
            expired: false,
            disconnected: false,
        }
    }

    /// An authenticated response arrived on the path.
    pub fn on_response(&mut self, now: Instant) {
        if !self.expired {
            self.last_response = now;
            self.unanswered_since = None;
            self.disconnected = false;
        }
    }

    /// A consent check was sent.
    pub fn on_check_sent(&mut self, now: Instant, next: Instant) {
        self.unanswered_since.get_or_insert(now);
        self.next_check = next;
        self.last_sent = now;
    }

    pub fn freshness(&mut self, now: Instant, disconnected: Duration, timeout: Duration) -> Freshness {
        if self.expired || now.saturating_duration_since(self.last_response) >= timeout {
            self.expired = true;
            return Freshness::Expired;
        }
        match self.unanswered_since {
            Some(t) if now.saturating_duration_since(t) >= disconnected => {
                self.disconnected = true;
                Freshness::Disconnected
            }
            _ => Freshness::Fresh,
        }
    }

    /// The next moment the freshness may change.
    pub fn deadline(&self, disconnected: Duration, timeout: Duration) -> Option<Instant> {
        if self.expired {
            return None;
        }
        let mut d = self.last_response + timeout;
        if let Some(t) = self.unanswered_since.filter(|_| !self.disconnected) {
            d = d.min(t + disconnected);
        }
        Some(d)
    }
}

/// RFC 7675 §5.1: the interval randomised uniformly over [0.8, 1.2].
pub fn jittered<R: rand::Rng + ?Sized>(rng: &mut R, mean: Duration) -> Duration {
    mean.mul_f64(rng.gen_range(0.8..=1.2))
}

impl Agent {
    /// Sends the consent checks (a full agent) or keepalives (a lite
    /// one) that are due.
    pub(super) fn consent_tick(&mut self, now: Instant) {
        let mut selected = self.selected.take();
        let mut previous = self.previous.take();
        for path in selected.iter_mut().chain(previous.as_deref_mut()) {
            if path.consent.expired {
                continue;
            }
            if self.config.lite {
                if now >= path.consent.last_sent + self.config.keepalive_interval {
                    let tid = self.new_tid();
                    if let Ok(b) = stun::binding_indication(tid) {
                        self.queue(path.local, path.remote.addr, b);
                    }
                    path.consent.last_sent = now;
                }
            } else if now >= path.consent.next_check {
                self.send_consent_check(now, path);
            }
        }
        self.selected = selected;
        self.previous = previous;
    }

    /// RFC 7675 §5.1: a connectivity check on the path, with the
    /// credentials it was selected with.
    fn send_consent_check(&mut self, now: Instant, path: &mut Path) {
        let next = now + jittered(&mut self.rng, self.config.consent_interval);
        let (Some(remote), Some(key)) = (&path.remote_credentials, &path.remote_key) else {
            path.consent.next_check = next;
            return;
        };
        let tid = self.new_tid();
        let embedded = self.next_embedded();
        let encoded = self.encode_check(
            tid,
            path.local,
            (&remote.ufrag, &path.local_credentials.ufrag),
            key,
            false,
            embedded.as_ref().map(|(data, ack)| (data.as_deref(), *ack)),
        );
        let Ok((bytes, _)) = encoded else {
            return;
        };
        // Retransmit within the interval only; the next check takes over.
        let policy = RetransmitPolicy {
            last_wait_factor: 4,
            ..self.config.check_retransmit
        };
        let kind = PendingKind::Consent { path: path.id };
        let pending = Pending::new(
            kind,
            Some(key.clone()),
            policy,
            now,
            path.local,
            path.remote.addr,
            bytes,
        );
        self.start_transaction(now, tid, pending);
        path.consent.on_check_sent(now, next);
    }

    /// The authenticated response to the consent check `pending` on path
    /// `path`; consent counts only if it came back symmetric.
    pub(super) fn on_consent_response(
        &mut self,
        now: Instant,
        path: u64,
        pending: &Pending,
        arrival: Arrival,
        msg: &Message<'_>,
        rtt: Option<Duration>,
    ) {
        let local_base = self.locals[pending.local].base;
        let symmetric = arrival.source == pending.destination && arrival.destination == local_base;
        if msg.class() != Class::SuccessResponse || !symmetric {
            return;
        }
        for p in self.selected.iter_mut().chain(self.previous.as_deref_mut()) {
            if p.id == path {
                p.consent.on_response(now);
                p.rtt = rtt.or(p.rtt);
            }
        }
    }

    /// A lite agent sends no consent checks (RFC 8445 §2.5), so the full
    /// peer's traffic is what says it is still there: an authenticated
    /// connectivity check (its RFC 7675 §5.1 consent checks) or a Binding
    /// indication (its RFC 8445 §11 keepalives, all some stacks send on
    /// the selected pair) arriving on a path refreshes that path. A peer
    /// that vanished sends neither, and the path expires after
    /// [`super::AgentConfig::consent_timeout`].
    pub(super) fn peer_alive(&mut self, now: Instant, arrival: Arrival) {
        let locals = &self.locals;
        for p in self.selected.iter_mut().chain(self.previous.as_deref_mut()) {
            let on_path = p.remote.addr == arrival.source
                && p.remote.transport == arrival.transport
                && locals[p.local].base == arrival.destination;
            if on_path {
                p.consent.on_response(now);
            }
        }
    }

    /// When consent or keepalives next need [`Agent::handle_timeout`].
    pub(super) fn consent_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        let (disconnected, timeout) = (self.config.disconnected_timeout, self.config.consent_timeout);
        self.paths()
            .filter(|path| !path.consent.expired)
            .flat_map(move |path| {
                let next = match self.config.lite {
                    true => path.consent.last_sent + self.config.keepalive_interval,
                    false => path.consent.next_check,
                };
                [Some(next), path.consent.deadline(disconnected, timeout)]
            })
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnected_then_expired_then_stays_expired() {
        let t0 = Instant::now();
        let (disc, timeout) = (Duration::from_millis(2500), Duration::from_secs(30));
        let mut c = Consent::new(t0, t0 + Duration::from_secs(5));
        c.on_check_sent(t0 + Duration::from_secs(5), t0 + Duration::from_secs(10));
        assert_eq!(
            c.freshness(t0 + Duration::from_secs(7), disc, timeout),
            Freshness::Fresh
        );
        assert_eq!(
            c.freshness(t0 + Duration::from_secs(8), disc, timeout),
            Freshness::Disconnected
        );
        c.on_response(t0 + Duration::from_secs(9));
        assert_eq!(
            c.freshness(t0 + Duration::from_secs(9), disc, timeout),
            Freshness::Fresh
        );
        assert_eq!(
            c.freshness(t0 + Duration::from_secs(39), disc, timeout),
            Freshness::Expired
        );
        c.on_response(t0 + Duration::from_secs(40));
        assert_eq!(
            c.freshness(t0 + Duration::from_secs(40), disc, timeout),
            Freshness::Expired
        );
    }
}
