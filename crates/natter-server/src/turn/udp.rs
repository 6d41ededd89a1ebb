//! A UDP worker: one thread owning a core, its `SO_REUSEPORT` listening
//! sockets and the relayed sockets of its allocations, driven by epoll
//! (mio) with batched receives and sends.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use natter_turn::{
    AllocateOutcome, AllocateRequest, ClientAction, Event, FiveTuple, RelayTransport, Server, Transport,
};
use natter_turn::{PEER_HEADROOM, PEER_TAILROOM};
use socket2::{Domain, Protocol, Socket, Type};

use super::relay;
use super::Shared;
use natter_io::batch::{RecvBatch, SendBatch, BATCH, SLOT};

/// Longest wait in epoll, so shutdown is noticed.
const MAX_WAIT: Duration = Duration::from_millis(250);

struct Listener {
    socket: UdpSocket,
    addr: SocketAddr,
    out: SendBatch,
}

struct Relay {
    socket: UdpSocket,
    /// The address announced to the client.
    announced: SocketAddr,
}

pub struct UdpWorker {
    index: usize,
    core: Server,
    poll: Poll,
    listeners: Vec<Listener>,
    relays: HashMap<Token, Relay>,
    relay_tokens: HashMap<SocketAddr, Token>,
    next_token: usize,
    shared: Arc<Shared>,
}

impl UdpWorker {
    pub fn new(index: usize, addrs: &[SocketAddr], core: Server, shared: Arc<Shared>) -> anyhow::Result<Self> {
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let socket = Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            // Room for bursts: 4 MiB each way, as far as the kernel allows.
            let _ = socket.set_recv_buffer_size(4 << 20);
            let _ = socket.set_send_buffer_size(4 << 20);
            socket.bind(&(*addr).into())?;
            let mut socket = UdpSocket::from_std(socket.into());
            poll.registry().register(&mut socket, Token(i), Interest::READABLE)?;
            listeners.push(Listener {
                socket,
                addr: *addr,
                out: SendBatch::default(),
            });
        }
        Ok(UdpWorker {
            index,
            core,
            poll,
            next_token: listeners.len(),
            listeners,
            relays: HashMap::new(),
            relay_tokens: HashMap::new(),
            shared,
        })
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut batch = RecvBatch::default();
        let mut reply = vec![0u8; SLOT];
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let wait = self
                .core
                .poll_timeout()
                .saturating_duration_since(Instant::now())
                .min(MAX_WAIT);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "epoll failed");
                    return;
                }
            }
            for event in events.iter() {
                let token = event.token();
                if token.0 < self.listeners.len() {
                    self.drain_listener(token.0, &mut batch, &mut reply);
                } else {
                    self.drain_relay(token, &mut batch);
                }
            }
            let now = Instant::now();
            if now >= self.core.poll_timeout() {
                self.core.handle_timeout(now);
                self.shared.publish(self.index, &self.core);
            }
            self.handle_events();
        }
    }

    /// Datagrams from clients.
    fn drain_listener(&mut self, i: usize, batch: &mut RecvBatch, reply: &mut [u8]) {
        loop {
            let fd = self.listeners[i].socket.as_raw_fd();
            let n = match batch.recv(fd, 0) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "receive failed");
                    0
                }
            };
            let now = Instant::now();
            for j in 0..n {
                let (from, slot, len, truncated) = batch.get(j);
                let Some(from) = from.filter(|_| !truncated) else {
                    continue;
                };
                let tuple = FiveTuple {
                    transport: Transport::Udp,
                    client: from,
                    server: self.listeners[i].addr,
                };
                match self.core.handle_client(now, tuple, &slot[..len], reply) {
                    ClientAction::None => {}
                    ClientAction::Reply(n) => self.listeners[i].out.push(from, &reply[..n]),
                    ClientAction::Relay { from, to, data } if self.relay_tokens.contains_key(&to) => {
                        // Both ends of the hop are this worker's relayed addresses
                        // (two clients relayed by this server): hand the datagram
                        // over as the kernel would deliver it, without two system
                        // calls and a trip through the network stack.
                        let len = data.len();
                        if PEER_HEADROOM + len + PEER_TAILROOM <= reply.len() {
                            reply[PEER_HEADROOM..PEER_HEADROOM + len].copy_from_slice(data);
                            if let Some((client, range)) = self.core.handle_peer(now, to, from, reply, len) {
                                if let Some(l) = self.listeners.iter_mut().find(|l| l.addr == client.server) {
                                    l.out.push(client.client, &reply[range]);
                                }
                            }
                        }
                    }
                    ClientAction::Relay { from, to, data } => {
                        if let Some(r) = self.relay_tokens.get(&from).and_then(|t| self.relays.get(t)) {
                            // A full socket buffer drops the datagram, as UDP may.
                            let _ = r.socket.send_to(data, to);
                        }
                    }
                    ClientAction::Allocate(request) => {
                        let outcome = self.bind(&request);
                        let n = self.core.finish_allocate(now, request.token, outcome, reply);
                        if n > 0 {
                            self.listeners[i].out.push(from, &reply[..n]);
                        }
                    }
                    // TCP relaying is refused over UDP by the core.
                    ClientAction::Connect { .. } | ClientAction::BindConnection { .. } => {}
                }
            }
            // Release what deleted allocations held before the client
            // hears that they are gone.
            self.handle_events();
            self.listeners[i].out.flush(fd);
            if n < BATCH {
                return;
            }
        }
    }

    /// Datagrams from peers to a relayed address.
    fn drain_relay(&mut self, token: Token, batch: &mut RecvBatch) {
        loop {
            let Some(relay) = self.relays.get(&token) else {
                return;
            };
            let (fd, announced) = (relay.socket.as_raw_fd(), relay.announced);
            let n = batch.recv(fd, PEER_HEADROOM).unwrap_or(0);
            let now = Instant::now();
            for j in 0..n {
                let (from, slot, len, truncated) = batch.get(j);
                let Some(from) = from.filter(|_| !truncated && PEER_HEADROOM + len + PEER_TAILROOM <= SLOT) else {
                    continue;
                };
                if let Some((client, range)) = self.core.handle_peer(now, announced, from, slot, len) {
                    if let Some(l) = self.listeners.iter_mut().find(|l| l.addr == client.server) {
                        l.out.push(client.client, &slot[range]);
                    }
                }
            }
            for l in &mut self.listeners {
                if !l.out.is_empty() {
                    l.out.flush(l.socket.as_raw_fd());
                }
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// Binds the relayed sockets an Allocate asked for.
    fn bind(&mut self, request: &AllocateRequest) -> AllocateOutcome {
        if request.transport != RelayTransport::Udp {
            return AllocateOutcome::NoCapacity;
        }
        if let Err(outcome) = self.shared.acquire(request) {
            return outcome;
        }
        match self.bind_sockets(request) {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(error = %e, "cannot bind a relayed address");
                self.shared.release(&request.username);
                AllocateOutcome::NoCapacity
            }
        }
    }

    fn bind_sockets(&mut self, request: &AllocateRequest) -> io::Result<AllocateOutcome> {
        let plan = self.shared.relay.clone();
        let no_ip = || io::Error::new(io::ErrorKind::AddrNotAvailable, "no relay address of that family");
        let (socket, reserved) = match request.reservation {
            Some(token) => (self.shared.claim(&token).ok_or_else(no_ip)?, None),
            None => plan.bind_udp(plan.ip(request.family).ok_or_else(no_ip)?, request.even_port)?,
        };
        if request.dont_fragment {
            relay::set_dont_fragment(&socket)?;
        }
        let relay = self.register(socket, &plan)?;
        let additional = match (request.additional_ipv6, plan.ip(natter_stun::AddressFamily::V6)) {
            (true, Some(ip)) => match plan.bind_udp(ip, None) {
                Ok((s, _)) => Some(self.register(s, &plan)?),
                Err(_) => None,
            },
            _ => None,
        };
        Ok(AllocateOutcome::Bound {
            relay,
            additional,
            reservation: reserved.map(|s| self.shared.reserve(s)),
        })
    }

    fn register(&mut self, socket: std::net::UdpSocket, plan: &relay::RelayPlan) -> io::Result<SocketAddr> {
        socket.set_nonblocking(true)?;
        let announced = plan.announced(socket.local_addr()?);
        let mut socket = UdpSocket::from_std(socket);
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll.registry().register(&mut socket, token, Interest::READABLE)?;
        self.relays.insert(token, Relay { socket, announced });
        self.relay_tokens.insert(announced, token);
        Ok(announced)
    }

    fn handle_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::AllocationClosed {
                    client,
                    relays,
                    username,
                    ..
                } => {
                    for announced in relays {
                        if let Some(mut r) = self
                            .relay_tokens
                            .remove(&announced)
                            .and_then(|t| self.relays.remove(&t))
                        {
                            let _ = self.poll.registry().deregister(&mut r.socket);
                        }
                    }
                    self.shared.release(&username);
                    tracing::debug!(client = %client.client, user = %username, "allocation closed");
                }
                Event::ConnectionExpired { .. } => {}
            }
        }
    }
}
