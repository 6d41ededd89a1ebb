//! The agent's candidate tables: our candidates with their bases and
//! priorities (RFC 8445 §5.1.1, §5.1.2, RFC 6544 §4.2), the peer's
//! signaled ones (§5.3, RFC 8838 §11), and sending from one of ours,
//! directly or through its TURN allocation (RFC 8656 §11, §12).

use std::net::{IpAddr, SocketAddr};

use crate::candidate::{self, Candidate, CandidateAddress, CandidateKind, Protocol};
use crate::turn_client::MAX_SEND_OVERHEAD;
use crate::{Route, Transmit, Transport};

use super::{Agent, Event, TransportPolicy};

/// Type preferences of TCP candidates are lowered by this much so that
/// UDP is preferred (RFC 6544 §4.2 leaves the values to the agent).
const TCP_TYPE_PENALTY: u32 = 40 << 24;

/// RFC 8445 §5.1.2.1 with RFC 6544 §4.2's lower preference for TCP.
pub(super) fn candidate_priority(kind: CandidateKind, local_preference: u16, transport: Transport) -> u32 {
    let p = candidate::priority(kind, local_preference, 1);
    match transport {
        Transport::Udp => p,
        _ => p.saturating_sub(TCP_TYPE_PENALTY),
    }
}

/// One of our candidates (RFC 8445 §5.1.1).
#[derive(Clone, Debug)]
pub(super) struct LocalCandidate {
    pub(super) candidate: Candidate,
    pub(super) addr: SocketAddr,
    /// §5.1.1.1: the address packets are sent from; a relayed
    /// candidate is its own base.
    pub(super) base: SocketAddr,
    pub(super) transport: Transport,
    pub(super) local_preference: u16,
    pub(super) foundation: usize,
    /// Whether the transport policy lets it be announced and paired.
    pub(super) usable: bool,
    /// For a relayed candidate (and a peer-reflexive one learnt through
    /// it), the index of its TURN client.
    pub(super) relay: Option<usize>,
}

/// One of the peer's candidates, signaled or peer-reflexive.
#[derive(Clone, Debug)]
pub(super) struct RemoteCandidate {
    pub(super) candidate: Candidate,
    pub(super) addr: SocketAddr,
    pub(super) transport: Transport,
    pub(super) foundation: usize,
}

impl Agent {
    /// The index of a foundation string, added if new.
    pub(super) fn intern(&mut self, foundation: &str) -> usize {
        if let Some(i) = self.foundations.iter().position(|f| f == foundation) {
            return i;
        }
        self.foundations.push(foundation.to_owned());
        self.foundations.len() - 1
    }

    /// Adds one of our candidates, announcing it unless it is
    /// peer-reflexive or the transport policy hides it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_local(
        &mut self,
        kind: CandidateKind,
        addr: SocketAddr,
        base: SocketAddr,
        transport: Transport,
        protocol: Protocol,
        local_preference: u16,
        server: Option<IpAddr>,
        related: Option<SocketAddr>,
    ) -> usize {
        let foundation_str = candidate::foundation(kind, base.ip(), server, protocol);
        let foundation = self.intern(&foundation_str);
        let usable = self.config.transport_policy == TransportPolicy::All || kind == CandidateKind::Relayed;
        let c = Candidate {
            foundation: foundation_str,
            component: 1,
            protocol,
            priority: candidate_priority(kind, local_preference, transport),
            address: CandidateAddress::Ip(addr),
            kind,
            related: related.or((kind != CandidateKind::Host).then_some(base)),
            extensions: Vec::new(),
        };
        if usable && kind != CandidateKind::PeerReflexive {
            self.events.push_back(Event::LocalCandidate(c.clone()));
        }
        self.locals.push(LocalCandidate {
            candidate: c,
            addr,
            base,
            transport,
            local_preference,
            foundation,
            usable,
            relay: None,
        });
        self.locals.len() - 1
    }

    /// A signaled remote candidate, paired with ours at once.
    pub(super) fn add_remote(&mut self, candidate: Candidate, addr: SocketAddr) {
        let transport = match candidate.protocol {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp(_) => Transport::Tcp,
        };
        if let Some(i) = self.find_remote(addr, transport) {
            // RFC 8445 §7.3.1.3: a signaled candidate replaces the
            // peer-reflexive one learnt from a check.
            if self.remotes[i].candidate.kind == CandidateKind::PeerReflexive
                && candidate.kind != CandidateKind::PeerReflexive
            {
                self.remotes[i].foundation = self.intern(&candidate.foundation);
                self.remotes[i].candidate = candidate;
                self.recompute_priorities();
            }
            return;
        }
        let foundation = self.intern(&candidate.foundation);
        self.remotes.push(RemoteCandidate {
            candidate,
            addr,
            transport,
            foundation,
        });
        let idx = self.remotes.len() - 1;
        if !self.config.lite {
            for l in 0..self.locals.len() {
                self.try_pair(l, idx);
            }
        }
    }

    pub(super) fn find_remote(&self, addr: SocketAddr, transport: Transport) -> Option<usize> {
        self.remotes
            .iter()
            .position(|r| r.addr == addr && r.transport == transport)
    }

    /// The host or relayed candidate whose base is the socket a packet
    /// arrived on.
    pub(super) fn local_at(&self, destination: SocketAddr, transport: Transport) -> Option<usize> {
        self.locals.iter().position(|l| {
            l.base == destination
                && l.transport == transport
                && matches!(l.candidate.kind, CandidateKind::Host | CandidateKind::Relayed)
        })
    }

    /// Whether data from `source` comes from a remote candidate, current
    /// or on a path still in use.
    pub(super) fn is_known_remote(&self, source: SocketAddr, transport: Transport) -> bool {
        self.find_remote(source, transport).is_some()
            || self
                .paths()
                .any(|p| p.remote.addr == source && p.remote.transport == transport)
    }

    /// Writes `data` for `dest`, from local candidate `local`, at the end
    /// of `out`: as it is, or framed for the TURN server of a relayed
    /// candidate (RFC 8656 §11.1, §12.4). `None`, with `out` unchanged,
    /// when the relay cannot send to `dest`.
    pub(super) fn route(&mut self, local: usize, dest: SocketAddr, data: &[u8], out: &mut Vec<u8>) -> Option<Route> {
        let l = &self.locals[local];
        let Some(relay) = l.relay else {
            out.extend_from_slice(data);
            return Some(Route {
                transport: l.transport,
                source: l.base,
                destination: dest,
            });
        };
        let client = &mut self.relays[relay].client;
        let start = out.len();
        out.resize(start + data.len() + MAX_SEND_OVERHEAD, 0);
        match client.encode_send(dest, data, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Some(client.route())
            }
            Err(_) => {
                out.truncate(start);
                None
            }
        }
    }

    /// [`Agent::route`] into the transmit queue, for the agent's own
    /// messages.
    pub(super) fn queue(&mut self, local: usize, dest: SocketAddr, data: Vec<u8>) {
        let mut out = Vec::new();
        if let Some(route) = self.route(local, dest, &data, &mut out) {
            self.transmits.push_back(Transmit::new(route, out));
        }
    }
}
