//! The agent's outstanding Binding transactions: connectivity checks,
//! consent checks and requests to STUN servers. Retransmission and
//! timeout (RFC 8489 §6.2), and matching responses to them (§6.3.3),
//! authenticated as §9.1.4 says.

use std::net::SocketAddr;
use std::time::Instant;

use natter_stun::{IntegrityKey, Message, TransactionId};
use rand::Rng;

use crate::transaction::{Retransmit, RetransmitAction, RetransmitPolicy};

use super::checks::SentCheck;
use super::{Agent, Arrival};

/// What a Binding request of ours is for.
#[derive(Clone, Debug)]
pub(super) enum PendingKind {
    Check(SentCheck),
    Consent { path: u64 },
    Gather { host: usize, server: SocketAddr },
}

/// An outstanding Binding request of ours.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) kind: PendingKind,
    /// The key the response must be signed with (none for STUN servers);
    /// shared with the agent's, so that an entry stays small (issue 18:
    /// the map keeps its capacity once transactions end).
    pub(super) key: Option<IntegrityKey>,
    pub(super) retransmit: Retransmit,
    pub(super) sent_at: Instant,
    pub(super) local: usize,
    pub(super) destination: SocketAddr,
    bytes: Vec<u8>,
    /// RFC 8445 §7.3.1.4: superseded by a triggered check; no more
    /// retransmissions and no failure on timeout, but a response still
    /// counts.
    pub(super) cancelled: bool,
}

impl Pending {
    /// A request from local candidate `local` to `destination`, sent at
    /// `now` and retransmitted by `policy`.
    pub(super) fn new(
        kind: PendingKind,
        key: Option<IntegrityKey>,
        policy: RetransmitPolicy,
        now: Instant,
        local: usize,
        destination: SocketAddr,
        bytes: Vec<u8>,
    ) -> Self {
        Pending {
            kind,
            key,
            retransmit: Retransmit::new(policy, now),
            sent_at: now,
            local,
            destination,
            bytes,
            cancelled: false,
        }
    }

    pub(super) fn is_check(&self) -> bool {
        matches!(self.kind, PendingKind::Check(_))
    }

    pub(super) fn is_gather(&self) -> bool {
        matches!(self.kind, PendingKind::Gather { .. })
    }
}

impl Agent {
    pub(super) fn new_tid(&mut self) -> TransactionId {
        TransactionId(self.rng.gen())
    }

    /// Sends the first transmission of a request and waits for its
    /// response.
    pub(super) fn start_transaction(&mut self, now: Instant, tid: TransactionId, mut pending: Pending) {
        let send = pending.retransmit.poll(now) == RetransmitAction::Send;
        self.pending.insert(tid, pending);
        if send {
            self.transmit_request(tid);
        }
    }

    /// Queues one transmission of a request; checks and consent checks
    /// count in [`super::Stats::checks_sent`].
    fn transmit_request(&mut self, tid: TransactionId) {
        let Some(p) = self.pending.get(&tid) else { return };
        let (local, destination, bytes) = (p.local, p.destination, p.bytes.clone());
        if !p.is_gather() {
            self.stats.checks_sent += 1;
        }
        self.queue(local, destination, bytes);
    }

    /// Removes a transaction. The map's table goes with the last one: an
    /// idle agent has a transaction every few seconds at most, and the
    /// table grown while checking would stay (issue 18).
    fn end_transaction(&mut self, tid: TransactionId) -> Option<Pending> {
        let pending = self.pending.remove(&tid);
        if self.pending.is_empty() {
            self.pending.shrink_to_fit();
        }
        pending
    }

    /// Retransmits what is due and ends transactions that timed out.
    pub(super) fn retransmit(&mut self, now: Instant) {
        let due: Vec<TransactionId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.retransmit.deadline() <= now)
            .map(|(t, _)| *t)
            .collect();
        for tid in due {
            let Some(p) = self.pending.get_mut(&tid) else { continue };
            match p.retransmit.poll(now) {
                RetransmitAction::Wait(_) => {}
                RetransmitAction::Send if p.cancelled => {}
                RetransmitAction::Send => self.transmit_request(tid),
                RetransmitAction::TimedOut => {
                    let Some(p) = self.end_transaction(tid) else { continue };
                    if !p.cancelled {
                        self.on_transaction_timeout(p.kind);
                    }
                }
            }
        }
    }

    fn on_transaction_timeout(&mut self, kind: PendingKind) {
        match kind {
            PendingKind::Check(check) => self.on_check_timeout(check.pair),
            PendingKind::Gather { .. } => self.check_gathering_complete(),
            PendingKind::Consent { .. } => {}
        }
    }

    /// A response to one of our requests: matched by transaction id,
    /// authenticated (RFC 8489 §9.1.4: otherwise discarded as if never
    /// received), then handed to what the request was for.
    pub(super) fn handle_response(&mut self, now: Instant, arrival: Arrival, msg: &Message<'_>) {
        let tid = msg.transaction_id();
        let Some(pending) = self.pending.get(&tid) else {
            self.stats.unmatched_responses += 1;
            return;
        };
        match &pending.key {
            Some(key) => {
                if msg.verify_integrity(key).is_err() {
                    self.stats.unauthenticated += 1;
                    return;
                }
            }
            None => {
                if let PendingKind::Gather { server, .. } = pending.kind {
                    if server != arrival.source {
                        self.stats.unmatched_responses += 1;
                        return;
                    }
                }
            }
        }
        let Some(pending) = self.end_transaction(tid) else {
            return;
        };
        let rtt = (pending.retransmit.transmissions() == 1).then(|| now.saturating_duration_since(pending.sent_at));
        match pending.kind {
            PendingKind::Gather { host, server } => {
                self.on_gather_response(host, server, msg);
                self.check_gathering_complete();
            }
            PendingKind::Consent { path } => {
                self.stats.responses_received += 1;
                self.on_consent_response(now, path, &pending, arrival, msg, rtt);
            }
            PendingKind::Check(check) => {
                self.stats.responses_received += 1;
                self.on_check_response(now, arrival, msg, check, rtt);
            }
        }
    }
}
