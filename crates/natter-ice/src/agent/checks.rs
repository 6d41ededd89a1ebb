//! Sending connectivity checks and handling their responses (RFC 8445
//! §7.2): which pair the next Ta tick checks (§6.1.4.2), the request
//! (§7.2.2), symmetric responses (§7.2.5.2.1), peer-reflexive local
//! candidates (§7.2.5.3.1), valid pairs (§7.2.5.3.2), unfreezing
//! (§7.2.5.3.3) and failures (§7.2.5.2, §7.2.5.4).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_stun::{Class, ErrorCode, IntegrityKey, Message, TransactionId, XorMappedAddress};

use crate::candidate::CandidateKind;
use crate::transaction::RetransmitPolicy;
use crate::Transport;

use super::candidates::candidate_priority;
use super::candidates::{LocalCandidate, RemoteCandidate};
use super::check_list::{CandidatePair, PairState};
use super::gather::Relay;
use super::stun;
use super::transactions::{Pending, PendingKind};
use super::{Agent, Arrival, Role};

/// Checks over TCP are sent once (RFC 8489 §6.2.2) and given this long.
const TCP_CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// What a connectivity check in flight carried.
#[derive(Clone, Copy, Debug)]
pub(super) struct SentCheck {
    pub(super) pair: usize,
    pub(super) use_candidate: bool,
    /// The role it claimed (§7.2.5.1 compares it with ours on a 487).
    pub(super) role: Role,
    /// Its PRIORITY, that of a peer-reflexive candidate it may reveal.
    pub(super) priority: u32,
}

impl Agent {
    /// A full agent checks once it has the peer's credentials.
    pub(super) fn can_check(&self) -> bool {
        !self.config.lite && self.remote_credentials.is_some()
    }

    /// What the check list asks of a pair: its foundation (§6.1.2.6),
    /// and whether its local candidate can originate checks (passive TCP
    /// cannot, nor a relay without a permission for the remote). Borrows
    /// the candidates, not the check list, which it serves.
    fn pair_facts<'a>(
        locals: &'a [LocalCandidate],
        remotes: &'a [RemoteCandidate],
        relays: &'a [Relay],
    ) -> (
        impl Fn(&CandidatePair) -> (usize, usize) + 'a,
        impl Fn(&CandidatePair) -> bool + 'a,
    ) {
        let foundation = |p: &CandidatePair| (locals[p.local].foundation, remotes[p.remote].foundation);
        let checkable = |p: &CandidatePair| {
            let l = &locals[p.local];
            let permitted = l
                .relay
                .is_none_or(|r| relays[r].client.has_permission(remotes[p.remote].addr.ip()));
            l.transport == Transport::Udp && permitted
        };
        (foundation, checkable)
    }

    pub(super) fn has_check_work(&self) -> bool {
        let (foundation, checkable) = Agent::pair_facts(&self.locals, &self.remotes, &self.relays);
        self.check_list.has_work(foundation, checkable)
    }

    pub(super) fn next_check(&mut self) -> Option<usize> {
        let (foundation, checkable) = Agent::pair_facts(&self.locals, &self.remotes, &self.relays);
        self.check_list.next_check(foundation, checkable)
    }

    /// §7.2.2: a Binding request from local candidate `local` made with
    /// the given credentials (`ufrags`: the remote one, then ours), and
    /// the PRIORITY it carries (§7.1.1: that of a peer-reflexive
    /// candidate from the same base).
    pub(super) fn encode_check(
        &self,
        tid: TransactionId,
        local: usize,
        (remote_ufrag, local_ufrag): (&str, &str),
        key: &IntegrityKey,
        use_candidate: bool,
        embedded: stun::Embedded<'_>,
    ) -> Result<(Vec<u8>, u32), natter_stun::Error> {
        let l = &self.locals[local];
        let priority = candidate_priority(CandidateKind::PeerReflexive, l.local_preference, l.transport);
        let request = stun::CheckRequest {
            username: &format!("{remote_ufrag}:{local_ufrag}"),
            key,
            priority,
            role: self.role,
            tie_breaker: self.tie_breaker,
            use_candidate,
            embedded,
        };
        Ok((stun::check_request(tid, &request)?, priority))
    }

    /// Checks `pair`, with USE-CANDIDATE if the controlling agent is
    /// nominating it.
    pub(super) fn send_check(&mut self, now: Instant, pair: usize) {
        if self.remote_credentials.is_none() || self.remote_key.is_none() {
            return;
        }
        let tid = self.new_tid();
        let p = &self.check_list.pairs[pair];
        let (local, destination) = (p.local, self.remotes[p.remote].addr);
        let use_candidate = self.role == Role::Controlling && p.use_candidate;
        let policy = match self.locals[local].transport {
            Transport::Udp => self.config.check_retransmit,
            _ => RetransmitPolicy {
                initial_rto: TCP_CHECK_TIMEOUT,
                max_rto: TCP_CHECK_TIMEOUT,
                max_transmissions: 1,
                last_wait_factor: 1,
            },
        };
        let embedded = self.next_embedded();
        let (Some(remote), Some(key)) = (&self.remote_credentials, &self.remote_key) else {
            return;
        };
        let encoded = self.encode_check(
            tid,
            local,
            (&remote.ufrag, &self.local_credentials.ufrag),
            key,
            use_candidate,
            embedded.as_ref().map(|(data, ack)| (data.as_deref(), *ack)),
        );
        let Ok((bytes, priority)) = encoded else {
            // Only an over-long ufrag can make this fail; the pair cannot
            // be checked.
            self.check_list.pairs[pair].state = PairState::Failed;
            return;
        };
        let key = key.clone();
        let p = &mut self.check_list.pairs[pair];
        if p.state != PairState::Succeeded {
            p.state = PairState::InProgress;
        }
        let check = SentCheck {
            pair,
            use_candidate,
            role: self.role,
            priority,
        };
        let pending = Pending::new(
            PendingKind::Check(check),
            Some(key),
            policy,
            now,
            local,
            destination,
            bytes,
        );
        self.start_transaction(now, tid, pending);
    }

    /// §7.2.5: the authenticated response to a check of ours.
    pub(super) fn on_check_response(
        &mut self,
        now: Instant,
        arrival: Arrival,
        msg: &Message<'_>,
        check: SentCheck,
        rtt: Option<Duration>,
    ) {
        let pair = check.pair;
        let p = &self.check_list.pairs[pair];
        let (local, remote) = (p.local, p.remote);
        let (l, r) = (&self.locals[local], &self.remotes[remote]);
        // §7.2.5.2.1: responses must come back symmetric.
        if arrival.source != r.addr || arrival.destination != l.base || arrival.transport != l.transport {
            self.fail_pair(pair);
            return;
        }
        if msg.class() == Class::ErrorResponse {
            let code = msg.get::<ErrorCode>().ok().flatten().map(|e| e.code);
            if code == Some(487) {
                self.on_role_conflict_response(pair, check.role);
            } else {
                self.fail_pair(pair);
            }
            return;
        }
        let Ok(Some(XorMappedAddress(mapped))) = msg.get::<XorMappedAddress>() else {
            self.stats.malformed += 1;
            self.fail_pair(pair);
            return;
        };
        self.sped_received(msg);
        let valid_local = self.local_for_mapped(local, mapped, check.priority);
        let valid = self.valid_pair(pair, valid_local, remote);
        let p = &mut self.check_list.pairs[pair];
        p.state = PairState::Succeeded;
        p.valid_pair = Some(valid);
        p.rtt = rtt.or(p.rtt);
        let nominate_on_success = p.nominate_on_success;
        let v = &mut self.check_list.pairs[valid];
        v.valid = true;
        v.state = PairState::Succeeded;
        v.rtt = rtt.or(v.rtt);
        self.first_valid_at.get_or_insert(now);
        // §7.2.5.3.3: unfreeze the foundation.
        let (foundation, _) = Agent::pair_facts(&self.locals, &self.remotes, &self.relays);
        self.check_list.unfreeze_foundation(foundation, pair);
        // A check on the selected path also refreshes consent.
        if let Some(path) = self
            .selected
            .as_mut()
            .filter(|s| s.pair == Some(valid) || s.pair == Some(pair))
        {
            path.consent.on_response(now);
            path.rtt = rtt.or(path.rtt);
        }
        // §8.1.1 / §7.3.1.5: nomination.
        let nominated = (check.use_candidate && self.role == Role::Controlling)
            || (self.role == Role::Controlled && nominate_on_success);
        if nominated {
            self.check_list.pairs[valid].nominated = true;
            if self.nominating == Some(pair) {
                self.nominating = None;
            }
            self.select(now, valid);
        }
    }

    /// §7.2.5.3.1: the local candidate a response's mapped address names:
    /// the checked one, another with the same base, or a new
    /// peer-reflexive one with the check's PRIORITY.
    fn local_for_mapped(&mut self, local: usize, mapped: SocketAddr, priority: u32) -> usize {
        let l = &self.locals[local];
        if mapped == l.addr {
            return local;
        }
        let (base, transport) = (l.base, l.transport);
        if let Some(i) = self
            .locals
            .iter()
            .position(|l| l.addr == mapped && l.base == base && l.transport == transport)
        {
            return i;
        }
        let (lp, protocol, relay) = (l.local_preference, l.candidate.protocol, l.relay);
        let i = self.push_local(
            CandidateKind::PeerReflexive,
            mapped,
            base,
            transport,
            protocol,
            lp,
            None,
            None,
        );
        self.locals[i].candidate.priority = priority;
        self.locals[i].relay = relay;
        i
    }

    /// §7.2.5.3.2: the valid pair a successful check of `pair` produced,
    /// made (outside the check list) if its local candidate is new.
    fn valid_pair(&mut self, pair: usize, local: usize, remote: usize) -> usize {
        if local == self.check_list.pairs[pair].local {
            return pair;
        }
        if let Some(v) = self.check_list.find(local, remote) {
            return v;
        }
        let priority = self.pair_priority_of(local, remote);
        let mut v = CandidatePair::new(local, remote, priority);
        v.in_check_list = false;
        v.state = PairState::Succeeded;
        self.check_list.pairs.push(v);
        self.check_list.pairs.len() - 1
    }

    /// §7.2.5.4: no response means failure, and the pair is valid no
    /// more.
    pub(super) fn on_check_timeout(&mut self, pair: usize) {
        self.stats.check_timeouts += 1;
        self.fail_pair(pair);
        self.invalidate(pair);
    }

    /// §7.2.5.2: the check failed; a pair being nominated stops being,
    /// and is valid no more.
    pub(super) fn fail_pair(&mut self, pair: usize) {
        let p = &mut self.check_list.pairs[pair];
        p.state = PairState::Failed;
        if self.nominating == Some(pair) {
            self.nominating = None;
            p.use_candidate = false;
            self.invalidate(pair);
        }
    }

    /// A valid pair whose check failed leaves the valid list. The pairs
    /// whose checks had produced it are checked again: their success
    /// leads nowhere now, and left as it is would leave the controlling
    /// agent nothing to nominate.
    fn invalidate(&mut self, pair: usize) {
        self.check_list.pairs[pair].valid = false;
        for (i, q) in self.check_list.pairs.iter_mut().enumerate() {
            if q.valid_pair == Some(pair) {
                q.valid_pair = None;
                if i != pair && q.state == PairState::Succeeded {
                    q.state = PairState::Waiting;
                }
            }
        }
    }
}
