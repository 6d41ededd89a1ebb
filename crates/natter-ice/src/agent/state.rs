//! The connection state the agent reports (W3C webrtc-pc §5.6
//! `RTCIceConnectionState`), from the selected path's consent, the check
//! list and the end of candidates on both sides.

use std::time::Instant;

use super::check_list::PairState;
use super::consent::Freshness;
use super::{Agent, ConnectionState, Event};

impl Agent {
    /// What every input ends with.
    pub(super) fn after_input(&mut self, now: Instant) {
        self.drain_relays();
        self.maybe_nominate(now);
        self.check_gathering_complete();
        self.update_state(now);
    }

    pub(super) fn set_state(&mut self, state: ConnectionState) {
        // W3C: `completed` follows `connected`.
        if state == ConnectionState::Completed && matches!(self.state, ConnectionState::New | ConnectionState::Checking)
        {
            self.set_state(ConnectionState::Connected);
        }
        if self.state != state {
            self.state = state;
            self.events.push_back(Event::ConnectionState(state));
        }
    }

    pub(super) fn update_state(&mut self, now: Instant) {
        if self.closed {
            return self.set_state(ConnectionState::Closed);
        }
        let (disc, timeout) = (self.config.disconnected_timeout, self.config.consent_timeout);
        let lite = self.config.lite;
        if let Some(prev) = self.previous.as_mut() {
            if prev.consent.freshness(now, disc, timeout) == Freshness::Expired {
                self.previous = None;
            }
        }
        let state = if self.failed {
            ConnectionState::Failed
        } else if let Some(path) = self.selected.as_mut().or(self.previous.as_deref_mut()) {
            // A lite agent's path is fresh while the peer's checks or
            // keepalives arrive (`Agent::peer_alive`); it is never
            // `disconnected`, having no checks of its own to go unanswered.
            match path.consent.freshness(now, disc, timeout) {
                Freshness::Expired => {
                    self.failed = true;
                    ConnectionState::Failed
                }
                Freshness::Disconnected => ConnectionState::Disconnected,
                Freshness::Fresh if self.selected.is_some() && self.checks_complete() => ConnectionState::Completed,
                Freshness::Fresh => ConnectionState::Connected,
            }
        } else if self.check_list.pairs.is_empty() && self.remotes.is_empty() && self.mdns_pending.is_empty() {
            ConnectionState::New
        } else if !lite
            && self.remote_end_of_candidates
            && self.gathering_complete
            && self.mdns_pending.is_empty()
            && self.check_list.pairs.iter().all(|p| p.state == PairState::Failed)
            && self.check_list.triggered.is_empty()
        {
            self.failed = true;
            ConnectionState::Failed
        } else {
            ConnectionState::Checking
        };
        self.set_state(state);
    }

    /// Every check is over and no more candidates can come.
    fn checks_complete(&self) -> bool {
        self.remote_end_of_candidates
            && self.gathering_complete
            && self.mdns_pending.is_empty()
            && self.check_list.triggered.is_empty()
            && self.check_list.pairs.iter().all(|p| !p.in_check_list || p.is_done())
    }
}
