//! Forming candidate pairs (RFC 8445 §6.1.2.2) with pruning (§6.1.2.4)
//! and their priorities (§6.1.2.3), which follow our role.

use crate::candidate::CandidateKind;
use crate::Transport;

use super::check_list::{pair_priority, CandidatePair};
use super::{Agent, Role};

impl Agent {
    /// Pairs a new local candidate with every remote one.
    pub(super) fn pair_local(&mut self, local: usize) {
        if self.config.lite {
            return;
        }
        for r in 0..self.remotes.len() {
            self.try_pair(local, r);
        }
    }

    /// RFC 8445 §6.1.2.2 pairing with §6.1.2.4 pruning: reflexive local
    /// candidates are replaced by their base, which is already paired, so
    /// only host and relayed candidates pair. TCP pairs arise only from
    /// checks the peer opens (passive candidates do not connect).
    pub(super) fn try_pair(&mut self, local: usize, remote: usize) -> Option<usize> {
        let (l, r) = (&self.locals[local], &self.remotes[remote]);
        if !l.usable
            || !matches!(l.candidate.kind, CandidateKind::Host | CandidateKind::Relayed)
            || l.transport != Transport::Udp
            || r.transport != Transport::Udp
            || l.addr.is_ipv6() != r.addr.is_ipv6()
            || self.check_list.find(local, remote).is_some()
        {
            return None;
        }
        let priority = self.pair_priority_of(local, remote);
        let added = self
            .check_list
            .add(CandidatePair::new(local, remote, priority), self.config.max_pairs);
        // RFC 8656 §9: the relay forwards only to and from permitted peers.
        if let (Some(_), Some(relay)) = (added, self.locals[local].relay) {
            let ip = self.remotes[remote].addr.ip();
            self.relays[relay].client.create_permission(ip, self.last_now);
        }
        added
    }

    /// §6.1.2.3 from our role: G is the controlling agent's priority.
    pub(super) fn pair_priority_of(&self, local: usize, remote: usize) -> u64 {
        let (l, r) = (
            self.locals[local].candidate.priority,
            self.remotes[remote].candidate.priority,
        );
        match self.role {
            Role::Controlling => pair_priority(l, r),
            Role::Controlled => pair_priority(r, l),
        }
    }

    /// After a role change or a remote candidate's new priority.
    pub(super) fn recompute_priorities(&mut self) {
        for i in 0..self.check_list.pairs.len() {
            let p = &self.check_list.pairs[i];
            self.check_list.pairs[i].priority = self.pair_priority_of(p.local, p.remote);
        }
        if let Some(pair) = self.selected.as_ref().and_then(|path| path.pair) {
            let priority = self.check_list.pairs[pair].priority;
            if let Some(path) = self.selected.as_mut() {
                path.priority = priority;
            }
        }
    }
}
