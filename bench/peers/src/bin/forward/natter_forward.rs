//! natter in RTP mode (`PeerConfig::rtp_mode`): the forwarder's two
//! connections live in one sans-IO `natter::endpoint::Endpoint` on its
//! socket, which routes each datagram (ICE ufrag, then address); after
//! each datagram for the publisher's connection the forwarder takes the
//! packet with `poll_rtp` (unprotected in place, lent) and writes it with
//! `write_rtp` on the subscriber's connection. The endpoint lends one
//! connection at a time, so the payload is copied once into a reused
//! buffer between the two (no allocation). Datagrams go out with one
//! `send_to` each, as str0m's do.

use std::io::{ErrorKind, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use natter::endpoint::{ConnectionHandle, Endpoint};
use natter::peer::{
    IceCandidate, MediaKind, OutgoingRtp, PeerConfig, PeerConnection, PeerConnectionState, PeerEvent, TransceiverId,
    Transport,
};

use natter::peer::Transmit;
use quinn_udp::{RecvMeta, UdpSocketState, BATCH_SIZE};

use crate::{finish, socket, Flags, Meter, Outcome, Run, FRAME, FRAME_TICKS, READ_TIMEOUT, SEQ_OFFSET, TS_OFFSET};

fn config() -> PeerConfig {
    PeerConfig {
        rtp_mode: true,
        ..PeerConfig::default()
    }
}

fn peer(socket: &UdpSocket, now: Instant) -> PeerConnection {
    let mut pc = PeerConnection::new(config(), now).expect("configuration");
    pc.add_local_address(socket.local_addr().expect("local address"))
        .expect("local address");
    pc.end_of_local_addresses();
    pc
}

/// `offerer` offers what it has, `answerer` answers.
fn negotiate(offerer: &mut PeerConnection, answerer: &mut PeerConnection) {
    let offer = offerer.create_offer().expect("offer");
    offerer.set_local_description(&offer).expect("offer applies");
    answerer.set_remote_description(&offer).expect("offer applies");
    let answer = answerer.create_answer().expect("answer");
    answerer.set_local_description(&answer).expect("answer applies");
    offerer.set_remote_description(&answer).expect("answer applies");
}

/// Sends what `pc` has to send; its events to `on_event`.
fn drain(pc: &mut PeerConnection, socket: &UdpSocket, buf: &mut Vec<u8>, mut on_event: impl FnMut(PeerEvent)) {
    let now = Instant::now();
    while let Some(t) = pc.poll_transmit(now, 1, buf) {
        let _ = socket.send_to(&buf[..t.size], t.destination);
    }
    while let Some(e) = pc.poll_event() {
        on_event(e);
    }
}

/// Sends what `endpoint` has to send; events to `on_event`.
fn drain_endpoint(
    endpoint: &mut Endpoint,
    socket: &UdpSocket,
    buf: &mut Vec<u8>,
    mut on_event: impl FnMut(ConnectionHandle, PeerEvent),
) {
    let now = Instant::now();
    while let Some((_, t)) = endpoint.poll_transmit(now, 1, buf) {
        let _ = socket.send_to(&buf[..t.size], t.destination);
    }
    while let Some((h, e)) = endpoint.poll_event() {
        on_event(h, e);
    }
}

/// One datagram from `socket`, with where it came from.
fn receive<'a>(socket: &UdpSocket, buf: &'a mut [u8]) -> Option<(SocketAddr, &'a [u8])> {
    match socket.recv_from(buf) {
        Ok((n, source)) => Some((source, &buf[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("recv_from: {e}"),
    }
}

fn tick(pc: &mut PeerConnection) {
    let now = Instant::now();
    if pc.poll_timeout().is_some_and(|t| t <= now) {
        pc.handle_timeout(now);
    }
}

fn add_candidates(pc: &mut PeerConnection, candidates: &[Option<IceCandidate>]) {
    for c in candidates {
        pc.add_ice_candidate(c.as_ref()).expect("candidate");
    }
}

/// A candidate for the other end (`None`: the end of them).
fn candidate(event: &PeerEvent) -> Option<Option<IceCandidate>> {
    match event {
        PeerEvent::IceCandidate(c) => Some(Some(c.clone())),
        PeerEvent::IceGatheringComplete => Some(None),
        _ => None,
    }
}

/// With `batched`, the forwarder's socket calls are batched (see
/// [`forward_batched`]); without, one datagram a call as str0m's.
pub fn run(run: &Run, batched: bool) -> Outcome {
    let (p_socket, f_socket, s_socket) = (socket(), socket(), socket());
    let f_address = f_socket.local_addr().expect("local address");
    let now = Instant::now();
    let mut publisher = peer(&p_socket, now);
    let mut subscriber = peer(&s_socket, now);
    let mut endpoint = Endpoint::new(vec![f_address]);
    let up = endpoint
        .insert(PeerConnection::new(config(), now).expect("configuration"))
        .expect("insert");
    let down = endpoint
        .insert(PeerConnection::new(config(), now).expect("configuration"))
        .expect("insert");
    let video = publisher.add_track(MediaKind::Video).expect("video track");
    let down_video = endpoint
        .connection(down)
        .expect("down")
        .add_track(MediaKind::Video)
        .expect("video track");
    negotiate(&mut publisher, &mut endpoint.connection(up).expect("up"));
    negotiate(&mut endpoint.connection(down).expect("down"), &mut subscriber);

    // Host candidates come out at once; trade them before the threads start.
    let mut buf = Vec::new();
    let mut from_publisher = Vec::new();
    let mut from_subscriber = Vec::new();
    let (mut to_publisher, mut to_subscriber) = (Vec::new(), Vec::new());
    drain(&mut publisher, &p_socket, &mut buf, |e| {
        from_publisher.extend(candidate(&e))
    });
    drain(&mut subscriber, &s_socket, &mut buf, |e| {
        from_subscriber.extend(candidate(&e))
    });
    drain_endpoint(&mut endpoint, &f_socket, &mut buf, |h, e| {
        let c = candidate(&e);
        if h == up {
            to_publisher.extend(c);
        } else {
            to_subscriber.extend(c);
        }
    });
    add_candidates(&mut publisher, &to_publisher);
    add_candidates(&mut subscriber, &to_subscriber);
    add_candidates(&mut endpoint.connection(up).expect("up"), &from_publisher);
    add_candidates(&mut endpoint.connection(down).expect("down"), &from_subscriber);
    let flags = Arc::new(Flags::default());
    let forwarding = Forwarding {
        endpoint,
        up,
        down,
        down_video,
        address: f_address,
        payload: Vec::with_capacity(2048),
        payload_type: None,
        meter: Meter::default(),
        connected: [false; 2],
    };
    let forwarder = {
        let flags = flags.clone();
        thread::spawn(move || match batched {
            false => forward_plain(forwarding, f_socket, &flags),
            true => forward_batched(forwarding, f_socket, &flags),
        })
    };

    let subscriber = {
        let flags = flags.clone();
        thread::spawn(move || {
            let mut pc = subscriber;
            let local = s_socket.local_addr().expect("local address");
            let (mut buf, mut out) = (vec![0u8; 2048], Vec::new());
            let mut received = 0u64;
            while !flags.stop() {
                if let Some((source, data)) = receive(&s_socket, &mut buf) {
                    pc.handle_receive(Instant::now(), Transport::Udp, source, local, data);
                    received += u64::from(pc.poll_rtp().is_some());
                }
                tick(&mut pc);
                drain(&mut pc, &s_socket, &mut out, |_| {});
            }
            let profile = pc.stats().dtls.and_then(|d| d.srtp_profile);
            (received, profile.map_or("no SRTP profile".into(), |p| format!("{p:?}")))
        })
    };

    let publisher = {
        let flags = flags.clone();
        let run = Run { ..*run };
        thread::spawn(move || send(publisher, video, &p_socket, &run, &flags))
    };

    let sent = finish(&flags, publisher);
    let (received, profile) = subscriber.join().expect("subscriber thread");
    Outcome {
        sent,
        meter: forwarder.join().expect("forwarder thread"),
        received,
        profile,
    }
}

/// The publisher's loop: RUN's packets once the forwarder is up, then
/// one more second for repairs.
fn send(mut pc: PeerConnection, video: TransceiverId, socket: &UdpSocket, run: &Run, flags: &Flags) -> u64 {
    let local = socket.local_addr().expect("local address");
    let (mut buf, mut out) = (vec![0u8; 2048], Vec::new());
    let (mut sent, mut start, mut done_at) = (0u64, None, None);
    loop {
        if let Some((source, data)) = receive(socket, &mut buf) {
            pc.handle_receive(Instant::now(), Transport::Udp, source, local, data);
        }
        tick(&mut pc);
        let now = Instant::now();
        if flags.go() {
            let start = *start.get_or_insert(now);
            let (_, payload_type) = pc.send_payload_type(video).expect("publisher sends video");
            while sent < run.packets && now >= start + run.due(sent) {
                let payload = run.payload(sent);
                let write = OutgoingRtp {
                    payload_type,
                    sequence_number: (1000 + sent) as u16,
                    timestamp: 90_000 + (sent / FRAME) as u32 * FRAME_TICKS,
                    marker: sent % FRAME == FRAME - 1,
                    payload: &payload,
                    audio_level: None,
                    dependency_descriptor: None,
                };
                pc.write_rtp(video, None, &write).expect("publisher writes");
                sent += 1;
            }
        }
        drain(&mut pc, socket, &mut out, |_| {});
        if sent == run.packets {
            let at = *done_at.get_or_insert(now);
            if now > at + Duration::from_secs(1) {
                return sent;
            }
        }
    }
}

/// The forwarder's endpoint, and what it does with each datagram: into
/// the endpoint, and the packet on to the subscriber's connection.
struct Forwarding {
    endpoint: Endpoint,
    up: ConnectionHandle,
    down: ConnectionHandle,
    down_video: TransceiverId,
    address: SocketAddr,
    /// The packet's payload between the two connections.
    payload: Vec<u8>,
    payload_type: Option<u8>,
    meter: Meter,
    connected: [bool; 2],
}

impl Forwarding {
    fn datagram(&mut self, source: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        if self.endpoint.handle_receive(now, source, self.address, data) != Some(self.up) {
            return;
        }
        let mut from = self.endpoint.connection(self.up).expect("up");
        let payload = &mut self.payload;
        let packet = from.poll_rtp().map(|p| {
            payload.clear();
            payload.extend_from_slice(p.payload());
            (p.sequence_number(), p.timestamp(), p.marker())
        });
        drop(from);
        let Some((seq, ts, marker)) = packet else { return };
        let mut to = self.endpoint.connection(self.down).expect("down");
        let video = self.down_video;
        let pt = *(self.payload_type).get_or_insert_with(|| to.send_payload_type(video).expect("down sends video").1);
        let write = OutgoingRtp {
            payload_type: pt,
            sequence_number: seq.wrapping_add(SEQ_OFFSET),
            timestamp: ts.wrapping_add(TS_OFFSET),
            marker,
            payload: &self.payload,
            audio_level: None,
            dependency_descriptor: None,
        };
        if to.write_rtp(video, None, &write).is_ok() {
            self.meter.forwarded();
        }
    }

    /// Fires due timers, sends what is queued (`max_datagrams` a batch)
    /// with `send`, and lets the publisher go once both connections are up.
    fn drain(
        &mut self,
        max_datagrams: usize,
        out: &mut Vec<u8>,
        flags: &Flags,
        mut send: impl FnMut(&Transmit, &[u8]),
    ) {
        let now = Instant::now();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        while let Some((_, t)) = self.endpoint.poll_transmit(now, max_datagrams, out) {
            send(&t, &out[..t.size]);
        }
        while let Some((h, e)) = self.endpoint.poll_event() {
            if e == PeerEvent::ConnectionStateChange(PeerConnectionState::Connected) {
                self.connected[usize::from(h == self.down)] = true;
            }
        }
        if self.connected == [true; 2] {
            flags.go.store(true, Ordering::Relaxed);
        }
    }
}

/// One `recv_from` and one `send_to` per datagram, as str0m's forwarder.
fn forward_plain(mut fw: Forwarding, socket: UdpSocket, flags: &Flags) -> Meter {
    let (mut buf, mut out) = (vec![0u8; 2048], Vec::new());
    while !flags.stop() {
        if let Some((source, data)) = receive(&socket, &mut buf) {
            fw.datagram(source, data);
        }
        fw.drain(1, &mut out, flags, |t, data| {
            let _ = socket.send_to(data, t.destination);
        });
    }
    fw.meter
}

/// Bytes of one receive buffer: a GRO batch may fill 64 KiB.
const RECEIVE_BUFFER: usize = 1 << 16;

/// natter-io's socket calls (crates/natter-io/src/udp.rs), on quinn-udp
/// as natter-io does: `recvmmsg` with UDP GRO in, the endpoint's GSO
/// batches (`poll_transmit` with quinn-udp's `max_gso_segments`) out
/// with one `UDP_SEGMENT` send each; mio's epoll waits while nothing
/// comes.
fn forward_batched(mut fw: Forwarding, socket: UdpSocket, flags: &Flags) -> Meter {
    socket.set_nonblocking(true).expect("non-blocking socket");
    let state = UdpSocketState::new((&socket).into()).expect("quinn-udp socket");
    let gso = state.max_gso_segments();
    let mut socket = mio::net::UdpSocket::from_std(socket);
    let mut poll = mio::Poll::new().expect("epoll");
    (poll.registry())
        .register(&mut socket, mio::Token(0), mio::Interest::READABLE)
        .expect("epoll register");
    let mut events = mio::Events::with_capacity(8);
    let mut storage = vec![0u8; BATCH_SIZE * RECEIVE_BUFFER];
    let mut meta = [RecvMeta::default(); BATCH_SIZE];
    let mut out = Vec::new();
    while !flags.stop() {
        let received = {
            let mut chunks = storage.chunks_mut(RECEIVE_BUFFER);
            let mut slices: [IoSliceMut<'_>; BATCH_SIZE] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().expect("BATCH_SIZE buffers")));
            state.recv((&socket).into(), &mut slices, &mut meta)
        };
        match received {
            Ok(n) => {
                for (m, buf) in meta[..n].iter().zip(storage.chunks(RECEIVE_BUFFER)) {
                    for datagram in buf[..m.len].chunks(m.stride.max(1)) {
                        fw.datagram(m.addr, datagram);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let next = fw.endpoint.poll_timeout();
                let wait = next.map_or(READ_TIMEOUT, |t| t.saturating_duration_since(Instant::now()));
                poll.poll(&mut events, Some(wait.min(READ_TIMEOUT)))
                    .expect("epoll_wait");
            }
            Err(e) => panic!("recv: {e}"),
        }
        fw.drain(gso, &mut out, flags, |t, data| {
            let transmit = quinn_udp::Transmit {
                destination: t.destination,
                ecn: None,
                contents: data,
                segment_size: t.segment_size,
                src_ip: None,
            };
            let _ = state.try_send((&socket).into(), &transmit);
        });
    }
    fw.meter
}
