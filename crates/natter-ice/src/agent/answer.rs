//! Answering connectivity checks (RFC 8445 §7.3): authentication and
//! error responses (RFC 8489 §6.3.1, §9.1.3), the success response
//! (§7.3.1.2), peer-reflexive remote candidates (§7.3.1.3) and
//! triggered checks (§7.3.1.4). Requests made with the credentials from
//! before an ICE restart are answered too, for the path still carrying
//! data (§9).

use std::net::SocketAddr;
use std::time::Instant;

use natter_stun::{
    attribute, ErrorCode, IntegrityKey, IntegrityKind, Message, Priority, TransactionId, UnknownAttributes, Username,
};

use crate::candidate::{Candidate, CandidateAddress, CandidateKind, Protocol, TcpType};
use crate::{Transmit, Transport};

use super::candidates::RemoteCandidate;
use super::check_list::{CandidatePair, PairState};
use super::stun;
use super::transactions::PendingKind;
use super::{Agent, Arrival, Role, TransportPolicy};

/// A success response not written yet (RFC 8445 §7.3.1.2).
pub(super) struct DeferredResponse {
    arrival: Arrival,
    tid: TransactionId,
    key: IntegrityKey,
    kind: IntegrityKind,
}

/// Which credentials a received request was made with.
enum Generation {
    Current,
    /// An ICE restart is under way and the request is for the path
    /// still carrying data.
    Previous,
}

impl Agent {
    /// RFC 8445 §7.3: answers a connectivity check.
    pub(super) fn handle_request(&mut self, now: Instant, arrival: Arrival, msg: &Message<'_>) {
        let tid = msg.transaction_id();
        let local = self.local_at(arrival.destination, arrival.transport);
        if self.config.transport_policy == TransportPolicy::Relay && local.is_some_and(|l| !self.locals[l].usable) {
            return;
        }
        // RFC 8489 §9.1.3: without USERNAME and MESSAGE-INTEGRITY, 400.
        let username = match msg.get::<Username>() {
            Ok(Some(Username(u))) if msg.has_integrity() => u,
            _ => {
                self.stats.unauthenticated += 1;
                self.reply_error(arrival, tid, ErrorCode::BAD_REQUEST, None, None);
                return;
            }
        };
        let ours = username.split(':').next().unwrap_or_default();
        let (generation, key) = if ours == self.local_credentials.ufrag {
            (Generation::Current, self.local_key.clone())
        } else if let Some(prev) = self.previous.as_ref().filter(|p| p.local_credentials.ufrag == ours) {
            (Generation::Previous, prev.local_key.clone())
        } else {
            self.unauthorized(arrival, tid);
            return;
        };
        let Ok(kind) = msg.verify_integrity(&key) else {
            self.unauthorized(arrival, tid);
            return;
        };
        let signed = Some((&key, kind));
        // RFC 8489 §6.3.1: unknown comprehension-required attributes, 420.
        let unknown = UnknownAttributes::collect(msg.unknown_comprehension_required());
        if !unknown.is_empty() {
            self.stats.unknown_attributes += 1;
            self.reply_error(arrival, tid, ErrorCode::UNKNOWN_ATTRIBUTE, Some(&unknown), signed);
            return;
        }
        // RFC 8445 §7.1.1: PRIORITY is mandatory.
        let Ok(Some(Priority(priority))) = msg.get::<Priority>() else {
            self.stats.malformed += 1;
            self.reply_error(arrival, tid, ErrorCode::BAD_REQUEST, None, signed);
            return;
        };
        let use_candidate = msg.has(attribute::USE_CANDIDATE);
        if matches!(generation, Generation::Current) && !self.config.lite && self.repair_role_conflict(msg) {
            self.reply_error(arrival, tid, ErrorCode::ROLE_CONFLICT, None, signed);
            return;
        }
        // SPED rides checks made with the current credentials only. A
        // check that brought DTLS a new packet is answered once DTLS had
        // its say, so that the response carries DTLS's answer.
        let deferred = DeferredResponse {
            arrival,
            tid,
            key: key.clone(),
            kind,
        };
        match generation {
            Generation::Current if self.sped_received(msg) => self.deferred.push(deferred),
            Generation::Current => self.reply_success(deferred, true),
            Generation::Previous => self.reply_success(deferred, false),
        }
        self.stats.checks_received += 1;
        if self.config.lite {
            self.peer_alive(now, arrival);
        }
        let (Generation::Current, Some(local)) = (generation, local) else {
            return;
        };
        let remote = match self.find_remote(arrival.source, arrival.transport) {
            Some(r) => r,
            None => self.add_prflx_remote(arrival.source, arrival.transport, priority),
        };
        let pair = match self.check_list.find(local, remote) {
            Some(p) => p,
            None => {
                let priority = self.pair_priority_of(local, remote);
                let mut pair = CandidatePair::new(local, remote, priority);
                pair.state = PairState::Waiting;
                match self.check_list.add(pair, self.config.max_pairs) {
                    Some(p) => {
                        if !self.config.lite {
                            self.check_list.trigger(p);
                        }
                        p
                    }
                    None => return,
                }
            }
        };
        if self.config.lite {
            if use_candidate {
                self.lite_select(now, pair);
            }
            return;
        }
        self.triggered_check(pair);
        if use_candidate && self.role == Role::Controlled {
            self.nominated_by_peer(now, pair);
        }
    }

    /// §7.3.1.2: the success response, with SPED's attributes if
    /// `embed`.
    fn reply_success(&mut self, response: DeferredResponse, embed: bool) {
        let embedded = if embed { self.next_embedded() } else { None };
        let embedded = embedded.as_ref().map(|(data, ack)| (data.as_deref(), *ack));
        let DeferredResponse {
            arrival,
            tid,
            key,
            kind,
        } = response;
        if let Ok(bytes) = stun::success_response(tid, arrival.source, &key, kind, embedded) {
            self.reply(arrival, bytes);
        }
    }

    /// The responses held for DTLS's answer (see [`DeferredResponse`]).
    pub(super) fn reply_deferred(&mut self) {
        for response in std::mem::take(&mut self.deferred) {
            self.reply_success(response, true);
        }
    }

    /// §7.3.1.4: a triggered check of the pair a check arrived on. An
    /// in-progress check is cancelled and replaced: the peer's check just
    /// opened its NAT for us. So is the check that nominates the valid
    /// pair this one produced (§8.1.1 repeats this pair's check with
    /// USE-CANDIDATE, which puts it in progress again).
    fn triggered_check(&mut self, pair: usize) {
        let p = &mut self.check_list.pairs[pair];
        match p.state {
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                self.check_list.trigger(pair);
            }
            PairState::InProgress => {
                p.state = PairState::Waiting;
                self.cancel_checks(pair);
                self.check_list.trigger(pair);
            }
            PairState::Succeeded => {
                if let Some(valid) = p.valid_pair.filter(|v| self.nominating == Some(*v)) {
                    self.cancel_checks(valid);
                    self.check_list.trigger(valid);
                }
            }
        }
    }

    /// §7.3.1.4: the checks of `pair` in flight are not retransmitted
    /// any more (a response still counts).
    fn cancel_checks(&mut self, pair: usize) {
        for q in self.pending.values_mut() {
            if matches!(q.kind, PendingKind::Check(c) if c.pair == pair) {
                q.cancelled = true;
            }
        }
    }

    /// RFC 8445 §7.3.1.3: a peer-reflexive remote candidate for a check
    /// from an unknown source, with the PRIORITY the check carried.
    fn add_prflx_remote(&mut self, addr: SocketAddr, transport: Transport, priority: u32) -> usize {
        self.prflx_count += 1;
        let foundation_str = format!("prflx{}", self.prflx_count);
        let foundation = self.intern(&foundation_str);
        self.remotes.push(RemoteCandidate {
            candidate: Candidate {
                foundation: foundation_str,
                component: 1,
                protocol: match transport {
                    Transport::Udp => Protocol::Udp,
                    _ => Protocol::Tcp(TcpType::Active),
                },
                priority,
                address: CandidateAddress::Ip(addr),
                kind: CandidateKind::PeerReflexive,
                related: None,
                extensions: Vec::new(),
            },
            addr,
            transport,
            foundation,
        });
        self.remotes.len() - 1
    }

    /// RFC 8489 §9.1.3: 401 to a request whose credentials are unknown
    /// or wrong.
    fn unauthorized(&mut self, arrival: Arrival, tid: TransactionId) {
        self.stats.unauthenticated += 1;
        self.reply_error(arrival, tid, ErrorCode::UNAUTHORIZED, None, None);
    }

    /// An error response, signed when the request was authenticated
    /// (`signed`: the key and the integrity attribute it used).
    fn reply_error(
        &mut self,
        arrival: Arrival,
        tid: TransactionId,
        code: ErrorCode<'_>,
        unknown: Option<&UnknownAttributes>,
        signed: Option<(&IntegrityKey, IntegrityKind)>,
    ) {
        if let Ok(b) = stun::error_response(tid, code, unknown, signed) {
            self.reply(arrival, b);
        }
    }

    /// Replies to a request from where it arrived: from the local
    /// candidate whose socket it reached (through its relay if it has
    /// one), else from that socket as it is.
    fn reply(&mut self, arrival: Arrival, data: Vec<u8>) {
        match self.local_at(arrival.destination, arrival.transport) {
            Some(local) => self.queue(local, arrival.source, data),
            None => self.transmits.push_back(Transmit {
                transport: arrival.transport,
                source: arrival.destination,
                destination: arrival.source,
                data,
            }),
        }
    }
}
