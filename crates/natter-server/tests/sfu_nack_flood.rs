//! A NACK flood toward `natter serve`'s SFU (issue 13, acceptance 6):
//! three natter peers join one room, one publishing video, two
//! subscribing. The offender drops the next `DROPPED` forwarded RTP
//! packets it receives, so that once media passes again its NACKs
//! (RFC 4585 §6.2.1; natter asks for a gap of up to 1000 at once and
//! again each round trip) name hundreds of packets the server's send
//! history (natter's `HISTORY`, 512 packets per stream) no longer
//! holds. Each of those costs the server one lookup and is counted in
//! /metrics as `natter_sfu_nack_missed`; nothing is resent for them;
//! the other subscriber keeps receiving throughout, and so does the
//! offender afterwards.
//!
//! Set `NATTER_SERVE_LOGS=1` to see the server's logs.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use natter::media::send::HISTORY;
use natter::peer::{Direction, MediaKind, PeerConnectionState, TransceiverId, Transport};
use natter::{PeerConfig, PeerConnection, PeerEvent};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

mod process;
use process::{read_signaling, serve_sfu, sfu_metric, signaling_socket};

/// How long the whole test may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// Heartbeats well within the server's default 5 s.
const PING_INTERVAL: Duration = Duration::from_secs(2);
/// One single-packet frame each 4 ms: 250 packets a second.
const FRAME_INTERVAL: Duration = Duration::from_millis(4);
/// Frames both subscribers receive before the offender drops any.
const WARM: usize = 50;
/// Forwarded RTP packets the offender drops: a gap natter NACKs whole
/// (its `MAX_MISSING` is 1000), of which at least `DROPPED - HISTORY`
/// left the server's history before the NACK came.
const DROPPED: u64 = 800;
/// Frames each subscriber must receive after the flood.
const AFTER: usize = 100;

/// A VP8 keyframe (RFC 6386 §9.1: frame tag with P = 0 and show_frame,
/// the start code, 160x120) whose first partition is its number: one
/// packet.
fn keyframe(number: u32) -> Vec<u8> {
    // show_frame (bit 4), first_part_size 4 (bits 5-23).
    let mut frame = vec![0x90, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0xa0, 0x00, 0x78, 0x00];
    frame.extend_from_slice(&number.to_be_bytes());
    frame
}

/// RTP rather than RTCP, STUN or DTLS (RFC 7983 §7; RFC 5761 §4: RTCP
/// packet types 192-223 sit where RTP payload types 64-95 with the
/// marker would).
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [128..=191, second, ..] if !(192..=223).contains(second))
}

struct Participant {
    name: &'static str,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    socket: UdpSocket,
    local: SocketAddr,
    pc: PeerConnection,
    /// The publisher's track.
    video: Option<TransceiverId>,
    id: Option<String>,
    offered: bool,
    /// Media frames received.
    frames: usize,
    /// Forwarded RTP packets still to drop, and dropped so far.
    dropping: u64,
    dropped: u64,
    start: Instant,
    next_frame: Instant,
    next_ping: Instant,
    sent: u32,
    buf: Vec<u8>,
}

impl Participant {
    fn new(name: &'static str, ws: WebSocket<MaybeTlsStream<TcpStream>>, poll: &Poll, token: Token) -> Self {
        let mut socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut socket, token, Interest::READABLE)
            .unwrap();
        let local = socket.local_addr().unwrap();
        let now = Instant::now();
        let mut pc = PeerConnection::new(PeerConfig::default(), now).unwrap();
        pc.add_local_address(local).unwrap();
        pc.end_of_local_addresses();
        let video = if name == "publisher" {
            Some(pc.add_track(MediaKind::Video).unwrap())
        } else {
            pc.add_transceiver(MediaKind::Video, Direction::RecvOnly).unwrap();
            None
        };
        let mut p = Participant {
            name,
            ws,
            socket,
            local,
            pc,
            video,
            id: None,
            offered: false,
            frames: 0,
            dropping: 0,
            dropped: 0,
            start: now,
            next_frame: now,
            next_ping: now,
            sent: 0,
            buf: Vec::new(),
        };
        p.signal(json!({"type": "join", "version": 1, "room": "flood", "name": name}));
        p
    }

    fn signal(&mut self, value: Value) {
        let message = tungstenite::Message::text(value.to_string());
        self.ws.send(message).expect("signaling send");
    }

    /// Signaling, datagrams (the offender's dropped ones aside), timers,
    /// frames to send, and what to send.
    fn step(&mut self) {
        for message in read_signaling(&mut self.ws, &mut self.pc, self.name) {
            if message["type"] == "welcome" {
                assert_eq!(message["sfu"], true, "the room runs through the SFU");
                self.id = Some(message["id"].as_str().unwrap().to_owned());
            }
        }
        let now = Instant::now();
        if self.id.is_some() && !self.offered {
            let offer = self.pc.create_offer().unwrap();
            self.pc.set_local_description(&offer).unwrap();
            self.signal(json!({"type": "offer", "to": "sfu", "sdp": offer.sdp}));
            self.offered = true;
        }
        if now >= self.next_ping {
            self.next_ping = now + PING_INTERVAL;
            self.signal(json!({"type": "ping"}));
        }
        if let Some(video) = self.video.filter(|_| self.offered && now >= self.next_frame) {
            self.next_frame = now + FRAME_INTERVAL;
            // Fails until DTLS connects.
            match self.pc.send_frame(video, now - self.start, &keyframe(self.sent)) {
                Ok(()) => self.sent += 1,
                Err(e) if self.pc.connection_state() == PeerConnectionState::Connected => {
                    panic!("{}: connected, yet {e}", self.name)
                }
                Err(_) => {}
            }
        }
        let mut datagram = [0u8; 2048];
        while let Ok((size, source)) = self.socket.recv_from(&mut datagram) {
            let datagram = &datagram[..size];
            if self.dropping > 0 && is_rtp(datagram) {
                self.dropping -= 1;
                self.dropped += 1;
                continue;
            }
            self.pc
                .handle_receive(Instant::now(), Transport::Udp, source, self.local, datagram);
        }
        let now = Instant::now();
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            self.pc.handle_timeout(now);
        }
        while let Some(transmit) = self.pc.poll_transmit(now, 1, &mut self.buf) {
            let _ = self.socket.send_to(&self.buf[..transmit.size], transmit.destination);
        }
        while let Some(event) = self.pc.poll_event() {
            if let PeerEvent::MediaFrame(_) = event {
                self.frames += 1;
            }
        }
    }

    /// The next time it needs a step for its own sake.
    fn wake(&self) -> Option<Instant> {
        let frame = self.video.map(|_| self.next_frame);
        self.pc.poll_timeout().into_iter().chain(frame).min()
    }
}

/// The participants on one poll: steps them until `done` holds.
struct Room {
    poll: Poll,
    events: Events,
    people: Vec<Participant>,
    start: Instant,
}

impl Room {
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut [Participant]) -> bool) {
        loop {
            for p in &mut self.people {
                p.step();
            }
            if done(&mut self.people) {
                return;
            }
            let frames: Vec<(&str, usize, u32, String)> = (self.people.iter())
                .map(|p| (p.name, p.frames, p.sent, format!("{:?}", p.pc.connection_state())))
                .collect();
            assert!(
                self.start.elapsed() < DEADLINE,
                "{what}: not within {DEADLINE:?} (frames received: {frames:?})"
            );
            // Signaling is read at least every 5 ms.
            let wake = self.people.iter().filter_map(Participant::wake).min();
            let wait = wake
                .map_or(Duration::from_millis(5), |t| {
                    t.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_millis(5));
            self.poll.poll(&mut self.events, Some(wait)).unwrap();
        }
    }
}

#[test]
fn a_flood_of_nacks_for_packets_out_of_the_history_is_counted_and_the_room_carries_on() {
    let (mut natter, addr) = serve_sfu();
    let poll = Poll::new().unwrap();
    let people = (["publisher", "bystander", "offender"].into_iter().enumerate())
        .map(|(i, name)| Participant::new(name, signaling_socket(&mut natter, addr), &poll, Token(i)))
        .collect();
    let mut room = Room {
        poll,
        events: Events::with_capacity(16),
        people,
        start: Instant::now(),
    };
    const BYSTANDER: usize = 1;
    const OFFENDER: usize = 2;
    room.run_until("both subscribers to receive video", |people| {
        people[1..].iter().all(|p| p.frames >= WARM)
    });
    let metric = |name| sfu_metric(addr, name);
    let (nacks_before, missed_before, resent_before) = (
        metric("nacks_received"),
        metric("nack_missed"),
        metric("nack_retransmissions"),
    );

    // The offender misses DROPPED packets, then NACKs them.
    room.people[OFFENDER].dropping = DROPPED;
    let (offender_before, bystander_before) = (room.people[OFFENDER].frames, room.people[BYSTANDER].frames);
    room.run_until("the offender to drop its packets", |people| {
        people[OFFENDER].dropping == 0
    });
    let bystander_during = room.people[BYSTANDER].frames - bystander_before;
    let mut next_read = Instant::now();
    let mut missed = missed_before;
    // /metrics' NACK counters are published each second.
    room.run_until("natter_sfu_nack_missed to count the flood", |_| {
        if Instant::now() >= next_read {
            next_read = Instant::now() + Duration::from_millis(250);
            missed = metric("nack_missed");
        }
        missed - missed_before >= DROPPED - HISTORY as u64
    });
    let (offender_mid, bystander_mid) = (room.people[OFFENDER].frames, room.people[BYSTANDER].frames);
    room.run_until("both subscribers to receive video after the flood", |people| {
        people[OFFENDER].frames >= offender_mid + AFTER && people[BYSTANDER].frames >= bystander_mid + AFTER
    });
    let nacks = metric("nacks_received") - nacks_before;
    let resent = metric("nack_retransmissions") - resent_before;
    println!(
        "/metrics after the flood: {nacks} NACK packets, {} NACKed numbers missed, {resent} retransmissions, {} repairs held; \
         the bystander got {bystander_during} frames while the offender dropped {} packets (received {} frames before)",
        metric("nack_missed") - missed_before,
        metric("nack_repairs_held"),
        room.people[OFFENDER].dropped,
        offender_before
    );
    assert!(nacks >= 1, "the offender's NACKs reached the server");
    assert!(
        resent <= HISTORY as u64,
        "{resent} packets resent: only those the history held ({HISTORY}) could be"
    );
    assert!(
        bystander_during > 0,
        "the bystander kept receiving while the offender dropped"
    );
    assert!(natter.try_wait().is_none(), "the server is still running");
}
