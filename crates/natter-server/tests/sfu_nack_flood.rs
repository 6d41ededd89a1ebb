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

use std::time::{Duration, Instant};

use mio::{Poll, Token};
use natter::media::send::HISTORY;
use natter::peer::{Direction, MediaKind, PeerConnectionState, TransceiverId};
use natter::PeerEvent;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

mod process;
use process::{serve_sfu, sfu_metric, signaling_socket};
mod sfu_room;
use sfu_room::{Peer, Room};

/// How long the whole test may take.
const DEADLINE: Duration = Duration::from_secs(60);
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
    peer: Peer,
    /// The publisher's track.
    video: Option<TransceiverId>,
    /// Media frames received.
    frames: usize,
    /// Forwarded RTP packets still to drop, and dropped so far.
    dropping: u64,
    dropped: u64,
    start: Instant,
    next_frame: Instant,
    sent: u32,
}

impl Participant {
    fn new(name: &'static str, ws: WebSocket<MaybeTlsStream<std::net::TcpStream>>, poll: &Poll, token: Token) -> Self {
        let mut video = None;
        let peer = Peer::join("flood", name, ws, poll, token, |pc| {
            if name == "publisher" {
                video = Some(pc.add_track(MediaKind::Video).unwrap());
            } else {
                pc.add_transceiver(MediaKind::Video, Direction::RecvOnly).unwrap();
            }
        });
        let now = Instant::now();
        Participant {
            peer,
            video,
            frames: 0,
            dropping: 0,
            dropped: 0,
            start: now,
            next_frame: now,
            sent: 0,
        }
    }
}

impl sfu_room::Participant for Participant {
    /// Signaling, frames to send, datagrams (the offender's dropped ones
    /// aside), timers, and what to send.
    fn step(&mut self) {
        self.peer.signaling();
        let now = Instant::now();
        if let Some(video) = self.video.filter(|_| self.peer.offered() && now >= self.next_frame) {
            self.next_frame = now + FRAME_INTERVAL;
            // Fails until DTLS connects.
            let pc = &mut self.peer.pc;
            match pc.send_frame(video, now - self.start, &keyframe(self.sent)) {
                Ok(()) => self.sent += 1,
                Err(e) if pc.connection_state() == PeerConnectionState::Connected => {
                    panic!("{}: connected, yet {e}", self.peer.name)
                }
                Err(_) => {}
            }
        }
        let (dropping, dropped) = (&mut self.dropping, &mut self.dropped);
        self.peer.receive(|datagram| {
            let drop = *dropping > 0 && is_rtp(datagram);
            *dropping -= u64::from(drop);
            *dropped += u64::from(drop);
            !drop
        });
        let now = Instant::now();
        self.peer.handle_due(now);
        self.peer.transmit(now);
        while let Some(event) = self.peer.pc.poll_event() {
            if let PeerEvent::MediaFrame(_) = event {
                self.frames += 1;
            }
        }
    }

    fn wake(&self) -> Option<Instant> {
        let frame = self.video.map(|_| self.next_frame);
        self.peer.pc.poll_timeout().into_iter().chain(frame).min()
    }

    fn progress(&self) -> String {
        let state = self.peer.pc.connection_state();
        format!(
            "{}: {} frames received, {} sent, {state:?}",
            self.peer.name, self.frames, self.sent
        )
    }
}

#[test]
fn a_flood_of_nacks_for_packets_out_of_the_history_is_counted_and_the_room_carries_on() {
    let (mut natter, addr) = serve_sfu();
    let mut room = Room::new(DEADLINE, |poll| {
        (["publisher", "bystander", "offender"].into_iter().enumerate())
            .map(|(i, name)| Participant::new(name, signaling_socket(&mut natter, addr), poll, Token(i)))
            .collect()
    });
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
