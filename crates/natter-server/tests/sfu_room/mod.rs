//! natter peers in one of `natter serve`'s SFU rooms, for the tests that
//! drive a few of them by hand (sfu_data.rs, sfu_nack_flood.rs): each
//! [`Peer`] has a signaling socket, a UDP socket on a shared mio poll and
//! a connection that offers to the SFU once welcomed; a [`Room`] steps
//! the test's participants in one loop until a condition holds.
//!
//! The test file must also `mod process;`.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use natter::peer::Transport;
use natter::{PeerConfig, PeerConnection};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

use crate::process::read_signaling;

/// Heartbeats well within the server's default 5 s.
const PING_INTERVAL: Duration = Duration::from_secs(2);
/// Signaling is read at least this often.
const SIGNALING_EVERY: Duration = Duration::from_millis(5);

/// One participant's signaling, socket and connection.
pub struct Peer {
    pub name: &'static str,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    socket: UdpSocket,
    local: SocketAddr,
    pub pc: PeerConnection,
    id: Option<String>,
    offered: bool,
    next_ping: Instant,
    buf: Vec<u8>,
}

impl Peer {
    /// Joins `room` as `name` over `ws`, its socket on `poll` under
    /// `token`; `tracks` adds to the connection what it will offer.
    pub fn join(
        room: &str,
        name: &'static str,
        ws: WebSocket<MaybeTlsStream<TcpStream>>,
        poll: &Poll,
        token: Token,
        tracks: impl FnOnce(&mut PeerConnection),
    ) -> Peer {
        let mut socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut socket, token, Interest::READABLE)
            .unwrap();
        let local = socket.local_addr().unwrap();
        let now = Instant::now();
        let mut pc = PeerConnection::new(PeerConfig::default(), now).unwrap();
        pc.add_local_address(local).unwrap();
        pc.end_of_local_addresses();
        tracks(&mut pc);
        let mut peer = Peer {
            name,
            ws,
            socket,
            local,
            pc,
            id: None,
            offered: false,
            next_ping: now,
            buf: Vec::new(),
        };
        peer.signal(json!({"type": "join", "version": 1, "room": room, "name": name}));
        peer
    }

    fn signal(&mut self, value: Value) {
        let message = tungstenite::Message::text(value.to_string());
        self.ws.send(message).expect("signaling send");
    }

    /// Reads signaling, offers to the SFU once welcomed and sends a
    /// heartbeat when one is due; the offer's SDP when it sent it now.
    pub fn signaling(&mut self) -> Option<String> {
        for message in read_signaling(&mut self.ws, &mut self.pc, self.name) {
            if message["type"] == "welcome" {
                assert_eq!(message["sfu"], true, "the room runs through the SFU");
                self.id = Some(message["id"].as_str().unwrap().to_owned());
            }
        }
        let mut offer = None;
        if self.id.is_some() && !self.offered {
            let description = self.pc.create_offer().unwrap();
            self.pc.set_local_description(&description).unwrap();
            self.signal(json!({"type": "offer", "to": "sfu", "sdp": description.sdp}));
            self.offered = true;
            offer = Some(description.sdp);
        }
        let now = Instant::now();
        if now >= self.next_ping {
            self.next_ping = now + PING_INTERVAL;
            self.signal(json!({"type": "ping"}));
        }
        offer
    }

    /// It has sent its offer.
    pub fn offered(&self) -> bool {
        self.offered
    }

    /// Its id in the room, once welcomed.
    pub fn id(&self) -> &str {
        self.id.as_deref().expect("welcomed")
    }

    /// Every datagram waiting on its socket, those `keep` takes handed
    /// to the connection.
    pub fn receive(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut datagram = [0u8; 2048];
        while let Ok((size, source)) = self.socket.recv_from(&mut datagram) {
            let datagram = &datagram[..size];
            if keep(datagram) {
                self.pc
                    .handle_receive(Instant::now(), Transport::Udp, source, self.local, datagram);
            }
        }
    }

    /// The connection's timers, when one is due at `now`.
    pub fn handle_due(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            self.pc.handle_timeout(now);
        }
    }

    /// Every datagram the connection has to send.
    pub fn transmit(&mut self, now: Instant) {
        while let Some(transmit) = self.pc.poll_transmit(now, 1, &mut self.buf) {
            let _ = self.socket.send_to(&self.buf[..transmit.size], transmit.destination);
        }
    }
}

/// What a test adds to a [`Peer`]: how it steps, and when.
pub trait Participant {
    /// Signaling, datagrams, timers, and what to send.
    fn step(&mut self);
    /// The next time it needs a step for its own sake.
    fn wake(&self) -> Option<Instant>;
    /// How far it got, for the message of a wait that timed out.
    fn progress(&self) -> String;
}

/// A test's participants on one poll.
pub struct Room<P> {
    poll: Poll,
    events: Events,
    pub people: Vec<P>,
    start: Instant,
    deadline: Duration,
}

impl<P: Participant> Room<P> {
    /// The participants `join` makes on the room's poll; every wait of
    /// the room ends within `deadline` of now.
    pub fn new(deadline: Duration, join: impl FnOnce(&Poll) -> Vec<P>) -> Room<P> {
        let poll = Poll::new().unwrap();
        let people = join(&poll);
        Room {
            poll,
            events: Events::with_capacity(16),
            people,
            start: Instant::now(),
            deadline,
        }
    }

    /// Steps every participant until `done` holds, waiting on the poll
    /// in between; fails the test if that takes past the deadline.
    pub fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut [P]) -> bool) {
        loop {
            for p in &mut self.people {
                p.step();
            }
            if done(&mut self.people) {
                return;
            }
            if self.start.elapsed() >= self.deadline {
                let progress: Vec<String> = self.people.iter().map(P::progress).collect();
                panic!("{what}: not within {:?} ({})", self.deadline, progress.join("; "));
            }
            let wake = self.people.iter().filter_map(P::wake).min();
            let wait = wake
                .map_or(SIGNALING_EVERY, |t| t.saturating_duration_since(Instant::now()))
                .min(SIGNALING_EVERY);
            self.poll.poll(&mut self.events, Some(wait)).unwrap();
        }
    }
}
