//! Nomination and selection (RFC 8445 §8): regular nomination by the
//! controlling agent (§8.1.1), nomination seen by the controlled agent
//! (§7.3.1.5) and by a lite agent (§8.2.1), and the selected pair as a
//! path that outlives the check list that found it.

use std::time::{Duration, Instant};

use natter_stun::IntegrityKey;

use crate::Credentials;

use super::candidates::RemoteCandidate;
use super::check_list::PairState;
use super::consent::{self, Consent};
use super::{Agent, Event, Role};

/// The selected pair with what it needs to outlive the check list that
/// found it (an ICE restart clears the list but keeps the path).
#[derive(Clone, Debug)]
pub(super) struct Path {
    pub(super) id: u64,
    pub(super) local: usize,
    pub(super) remote: RemoteCandidate,
    /// Its index in the current check list, `None` after a restart.
    pub(super) pair: Option<usize>,
    pub(super) priority: u64,
    pub(super) local_credentials: Credentials,
    pub(super) local_key: IntegrityKey,
    pub(super) remote_credentials: Option<Credentials>,
    pub(super) remote_key: Option<IntegrityKey>,
    pub(super) consent: Consent,
    pub(super) rtt: Option<Duration>,
}

impl Agent {
    /// When the controlling agent nominates the best valid pair even if
    /// better pairs are still being checked; none while no pair is valid
    /// (one that was may have failed since).
    pub(super) fn nomination_deadline(&self) -> Option<Instant> {
        if self.config.lite
            || self.role != Role::Controlling
            || self.nominating.is_some()
            || self.selected.as_ref().is_some_and(|s| s.pair.is_some())
        {
            return None;
        }
        self.check_list.best_valid()?;
        Some(self.first_valid_at? + self.config.nomination_delay)
    }

    /// §8.1.1 regular nomination: once the best valid pair cannot be
    /// beaten by a pair still being checked (or after the nomination
    /// delay), check it again with USE-CANDIDATE.
    pub(super) fn maybe_nominate(&mut self, now: Instant) {
        let Some(deadline) = self.nomination_deadline() else {
            return;
        };
        let Some(best) = self.check_list.best_valid() else {
            return;
        };
        let best_priority = self.check_list.pairs[best].priority;
        let better_pending = self
            .check_list
            .pairs
            .iter()
            .any(|p| p.in_check_list && !p.is_done() && p.priority > best_priority);
        if better_pending && now < deadline {
            return;
        }
        self.nominating = Some(best);
        self.check_list.pairs[best].use_candidate = true;
        self.check_list.triggered.retain(|&p| p != best);
        // One check outside Ta pacing: it decides when data can flow.
        self.send_check(now, best);
    }

    /// §7.3.1.5: the controlling agent nominated `pair` (a check with
    /// USE-CANDIDATE arrived on it). Selected now if its check
    /// succeeded, else once it does.
    pub(super) fn nominated_by_peer(&mut self, now: Instant, pair: usize) {
        let p = &mut self.check_list.pairs[pair];
        if p.state == PairState::Succeeded {
            let valid = p.valid_pair.unwrap_or(pair);
            self.check_list.pairs[valid].nominated = true;
            self.select(now, valid);
        } else {
            p.nominate_on_success = true;
        }
    }

    /// §8.2.1: a lite agent selects the pair the controlling agent
    /// nominates; it never checks it.
    pub(super) fn lite_select(&mut self, now: Instant, pair: usize) {
        let p = &mut self.check_list.pairs[pair];
        p.state = PairState::Succeeded;
        p.valid = true;
        p.valid_pair = Some(pair);
        p.nominated = true;
        self.select(now, pair);
    }

    /// Makes a nominated valid pair the selected one if it beats the
    /// current one (the selection only moves to higher priority).
    pub(super) fn select(&mut self, now: Instant, pair: usize) {
        let p = &self.check_list.pairs[pair];
        let remote = self.remotes[p.remote].clone();
        if let Some(sel) = &self.selected {
            if sel.local == p.local && sel.remote.addr == remote.addr {
                return;
            }
            if sel.priority >= p.priority {
                return;
            }
        }
        let first_check = now + consent::jittered(&mut self.rng, self.config.consent_interval);
        self.next_path_id += 1;
        let path = Path {
            id: self.next_path_id,
            local: p.local,
            remote,
            pair: Some(pair),
            priority: p.priority,
            local_credentials: self.local_credentials.clone(),
            local_key: self.local_key.clone(),
            remote_credentials: self.remote_credentials.clone(),
            remote_key: self.remote_key.clone(),
            consent: Consent::new(now, first_check),
            rtt: p.rtt,
        };
        self.events.push_back(Event::SelectedPair {
            local: self.locals[path.local].candidate.clone(),
            remote: path.remote.candidate.clone(),
        });
        // RFC 8656 §12: ChannelData costs 4 bytes instead of 36.
        if let Some(relay) = self.locals[path.local].relay {
            self.relays[relay].client.bind_channel(path.remote.addr, now);
        }
        self.selected = Some(path);
        // RFC 8445 §9: the restart is over; the old path goes.
        self.previous = None;
    }
}
