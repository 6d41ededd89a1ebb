//! Gathering (RFC 8445 §5.1.1): host candidates and their local
//! preferences (§5.1.2.1, RFC 6544 §4.2), server-reflexive candidates
//! from STUN Binding requests (§5.1.1.2, redundancy per §5.1.3), and
//! relayed candidates from TURN allocations (RFC 8656), started one per
//! Ta (§14.2); then the end of gathering (RFC 8838 §8.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use natter_stun::{Class, MappedAddress, Message, XorMappedAddress};

use crate::candidate::{CandidateKind, Protocol};
use crate::turn_client::{TurnClient, TurnEvent, TurnServer};
use crate::Transport;

use super::check_list::PairState;
use super::stun;
use super::transactions::{Pending, PendingKind};
use super::{Agent, Event};

/// A gathering transaction not started yet (paced by Ta, §5.1.1.1).
#[derive(Clone, Copy, Debug)]
pub(super) enum GatherTask {
    Stun { host: usize, server: SocketAddr },
    Turn { host: usize, server: usize },
}

/// One TURN allocation (RFC 8656) made from a UDP host candidate.
pub(super) struct Relay {
    pub(super) client: TurnClient,
    /// The host candidate it was made from.
    host: usize,
    /// The relayed local candidate once allocated.
    pub(super) local: Option<usize>,
    /// Allocation succeeded or failed (gathering waits for this).
    settled: bool,
    local_preference: u16,
}

impl Agent {
    /// A host candidate (§5.1.1.1) and, for UDP on a full agent, the
    /// STUN and TURN transactions to gather from it.
    pub(super) fn gather_host(&mut self, addr: SocketAddr, transport: Transport, protocol: Protocol) -> usize {
        // §5.1.2.1: IPv6 before IPv4, then interfaces in the order given.
        let same_family = self
            .locals
            .iter()
            .filter(|l| {
                l.candidate.kind == CandidateKind::Host
                    && l.transport == transport
                    && l.base.is_ipv6() == addr.is_ipv6()
            })
            .count() as u16;
        let local_preference = match (transport, addr.is_ipv6()) {
            // RFC 6544 §4.2: direction preference 4 (passive) · 2^13 + other.
            (Transport::Tcp, v6) => (4 << 13) + if v6 { 8191 } else { 4095 } - same_family.min(4095),
            (_, true) => 65535 - same_family.saturating_mul(256).min(32767),
            (_, false) => 32767 - same_family.saturating_mul(256).min(32767),
        };
        let idx = self.push_local(
            CandidateKind::Host,
            addr,
            addr,
            transport,
            protocol,
            local_preference,
            None,
            None,
        );
        if transport == Transport::Udp && !self.config.lite {
            let servers: Vec<SocketAddr> = self
                .config
                .stun_servers
                .iter()
                .filter(|s| s.is_ipv6() == addr.is_ipv6())
                .copied()
                .collect();
            for server in servers {
                self.gather_queue.push_back(GatherTask::Stun { host: idx, server });
            }
            for (server, turn) in self.config.turn_servers.iter().enumerate() {
                if turn.address.is_ipv6() == addr.is_ipv6() {
                    self.gather_queue.push_back(GatherTask::Turn { host: idx, server });
                }
            }
        }
        idx
    }

    /// Starts a queued gathering transaction (its turn of Ta came).
    pub(super) fn start_gather_task(&mut self, now: Instant, task: GatherTask) {
        match task {
            GatherTask::Stun { host, server } => self.start_gather(now, host, server),
            GatherTask::Turn { host, server } => self.start_relay(now, host, server),
        }
    }

    /// §5.1.1.2: a Binding request to a STUN server from a host.
    fn start_gather(&mut self, now: Instant, host: usize, server: SocketAddr) {
        let tid = self.new_tid();
        let Ok(bytes) = stun::binding_request(tid) else {
            return;
        };
        let kind = PendingKind::Gather { host, server };
        let pending = Pending::new(kind, None, self.config.gather_retransmit, now, host, server, bytes);
        self.start_transaction(now, tid, pending);
    }

    /// The STUN server's answer: the mapped address, a server-reflexive
    /// candidate.
    pub(super) fn on_gather_response(&mut self, host: usize, server: SocketAddr, msg: &Message<'_>) {
        if msg.class() != Class::SuccessResponse {
            return;
        }
        let mapped = match msg.get::<XorMappedAddress>() {
            Ok(Some(XorMappedAddress(a))) => a,
            _ => match msg.get::<MappedAddress>() {
                Ok(Some(MappedAddress(a))) => a,
                _ => {
                    self.stats.malformed += 1;
                    return;
                }
            },
        };
        self.add_server_reflexive(host, mapped, server.ip());
    }

    /// A server-reflexive candidate of `host` as `server` saw it, unless
    /// redundant: §5.1.3, equal to the base or to another
    /// server-reflexive candidate.
    fn add_server_reflexive(&mut self, host: usize, mapped: SocketAddr, server: IpAddr) {
        if self
            .locals
            .iter()
            .any(|l| l.addr == mapped && l.transport == Transport::Udp)
        {
            return;
        }
        let (base, lp) = (self.locals[host].base, self.locals[host].local_preference);
        self.push_local(
            CandidateKind::ServerReflexive,
            mapped,
            base,
            Transport::Udp,
            Protocol::Udp,
            lp,
            Some(server),
            None,
        );
    }

    /// RFC 8445 §5.1.1.2: a TURN allocation from a UDP host candidate.
    fn start_relay(&mut self, now: Instant, host: usize, server: usize) {
        let server: TurnServer = self.config.turn_servers[server].clone();
        let local_preference = match server.transport {
            Transport::Udp => 65535,
            Transport::Tcp => 49151,
            Transport::Tls => 32767,
        } - (self.relays.len() as u16).min(16383);
        let client = TurnClient::new(server, self.locals[host].base, now, &mut self.rng);
        self.relays.push(Relay {
            client,
            host,
            local: None,
            settled: false,
            local_preference,
        });
        self.drain_relays();
    }

    /// The relay whose server sent what arrived from `source` on the
    /// host socket `destination`.
    pub(super) fn relay_at(&self, transport: Transport, source: SocketAddr, destination: SocketAddr) -> Option<usize> {
        self.relays.iter().position(|r| {
            r.client.server().address == source
                && r.client.local() == destination
                && r.client.server().transport == transport
        })
    }

    /// Moves the TURN clients' datagrams to our queue and acts on their
    /// events, until none is left: commands given to a client (a
    /// permission for a new pair, a channel for the selected one) queue
    /// requests that must go out with the input that caused them.
    pub(super) fn drain_relays(&mut self) {
        loop {
            let mut idle = true;
            for i in 0..self.relays.len() {
                while let Some(t) = self.relays[i].client.poll_transmit() {
                    self.transmits.push_back(t);
                }
                while let Some(event) = self.relays[i].client.poll_event() {
                    idle = false;
                    self.on_relay_event(i, event);
                }
            }
            if idle {
                return;
            }
        }
    }

    fn on_relay_event(&mut self, i: usize, event: TurnEvent) {
        match event {
            TurnEvent::Allocated { relayed, mapped } => {
                self.relays[i].settled = true;
                let server = self.relays[i].client.server();
                let (server_ip, over_udp) = (server.address.ip(), server.transport == Transport::Udp);
                let host = self.relays[i].host;
                // Over TCP or TLS the server saw the connection's address,
                // which says nothing of the UDP socket's mapping.
                if let Some(mapped) = mapped.filter(|_| over_udp) {
                    self.add_server_reflexive(host, mapped, server_ip);
                }
                // A relayed candidate is its own base (§5.1.1.2); its
                // raddr is the mapped address the server saw.
                let lp = self.relays[i].local_preference;
                let related = mapped.unwrap_or(self.locals[host].base);
                let idx = self.push_local(
                    CandidateKind::Relayed,
                    relayed,
                    relayed,
                    Transport::Udp,
                    Protocol::Udp,
                    lp,
                    Some(server_ip),
                    Some(related),
                );
                self.locals[idx].relay = Some(i);
                self.relays[i].local = Some(idx);
                self.pair_local(idx);
            }
            TurnEvent::AllocationFailed(_) => self.relays[i].settled = true,
            TurnEvent::Expired => {
                self.relays[i].settled = true;
                // Pairs through a dead allocation cannot work any more.
                if let Some(local) = self.relays[i].local {
                    for p in &mut self.check_list.pairs {
                        if p.local == local || self.locals[p.local].relay == Some(i) {
                            p.state = PairState::Failed;
                            p.valid = false;
                        }
                    }
                }
            }
            TurnEvent::PermissionFailed(ip) => {
                for p in &mut self.check_list.pairs {
                    if self.locals[p.local].relay == Some(i) && self.remotes[p.remote].addr.ip() == ip {
                        p.state = PairState::Failed;
                    }
                }
            }
            _ => {}
        }
    }

    /// Emits [`Event::GatheringComplete`] once every address was added
    /// and every STUN and TURN transaction ended.
    pub(super) fn check_gathering_complete(&mut self) {
        if self.gathering_complete || !self.local_addresses_done || !self.gather_queue.is_empty() {
            return;
        }
        if self.pending.values().any(Pending::is_gather) || self.relays.iter().any(|r| !r.settled) {
            return;
        }
        self.gathering_complete = true;
        // The table stops growing: give back what growing it reserved.
        self.locals.shrink_to_fit();
        self.events.push_back(Event::GatheringComplete);
    }
}
