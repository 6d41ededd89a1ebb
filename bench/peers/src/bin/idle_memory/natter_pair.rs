//! natter: two `PeerConnection`s in memory under a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::peer::{DataChannelInit, IceCandidate, PeerConfig, PeerConnection, PeerEvent, Transmit};

use crate::Stack;

pub struct Natter;

/// One side and the candidates it trickled for the other.
struct Side {
    pc: PeerConnection,
    address: SocketAddr,
    candidates: Vec<Option<IceCandidate>>,
    open: bool,
}

pub struct Pair([PeerConnection; 2]);

fn side(address: &str, now: Instant) -> Side {
    let address: SocketAddr = address.parse().expect("address");
    let mut pc = PeerConnection::new(PeerConfig::default(), now).expect("default configuration");
    pc.add_local_address(address).expect("local address");
    pc.end_of_local_addresses();
    Side {
        pc,
        address,
        candidates: Vec::new(),
        open: false,
    }
}

impl Stack for Natter {
    type Pair = Pair;

    fn open(&mut self) -> Pair {
        let mut now = Instant::now();
        let mut sides = [side("10.0.0.1:5000", now), side("10.0.0.2:5000", now)];
        sides[0]
            .pc
            .create_data_channel("bench", DataChannelInit::default())
            .expect("data channel");
        let offer = sides[0].pc.create_offer().expect("offer");
        sides[0].pc.set_local_description(&offer).expect("offer applies");
        sides[1].pc.set_remote_description(&offer).expect("offer applies");
        let answer = sides[1].pc.create_answer().expect("answer");
        sides[1].pc.set_local_description(&answer).expect("answer applies");
        sides[0].pc.set_remote_description(&answer).expect("answer applies");

        let mut idle_until = None;
        let deadline = now + Duration::from_secs(30);
        // What is in flight: where each datagram goes, and the datagram.
        let mut wire: Vec<(Transmit, Vec<u8>)> = Vec::new();
        let mut buf = Vec::new();
        while idle_until.is_none_or(|t| now < t) {
            assert!(now < deadline, "natter pair not connected in 30 s");
            for s in &mut sides {
                while let Some(t) = s.pc.poll_transmit(now, 1, &mut buf) {
                    wire.push((t, buf.clone()));
                }
                while let Some(event) = s.pc.poll_event() {
                    match event {
                        PeerEvent::IceCandidate(c) => s.candidates.push(Some(c)),
                        PeerEvent::IceGatheringComplete => s.candidates.push(None),
                        PeerEvent::DataChannelOpen(_) => s.open = true,
                        _ => {}
                    }
                }
            }
            for (from, to) in [(0, 1), (1, 0)] {
                for c in std::mem::take(&mut sides[from].candidates) {
                    sides[to].pc.add_ice_candidate(c.as_ref()).expect("candidate");
                }
            }
            if idle_until.is_none() && sides.iter().all(|s| s.open) {
                idle_until = Some(now + Duration::from_secs(2));
            }
            if wire.is_empty() {
                let next = sides.iter().filter_map(|s| s.pc.poll_timeout()).min();
                now = next.map_or(now + Duration::from_millis(10), |t| t.max(now));
                for s in &mut sides {
                    if s.pc.poll_timeout().is_some_and(|t| t <= now) {
                        s.pc.handle_timeout(now);
                    }
                }
                continue;
            }
            for (t, data) in wire.drain(..) {
                let to = sides.iter_mut().find(|s| s.address == t.destination);
                if let Some(s) = to {
                    s.pc.handle_receive(now, t.transport, t.source, t.destination, &data);
                }
            }
        }
        let [a, b] = sides;
        Pair([a.pc, b.pc])
    }

    fn close(&mut self, mut pair: Pair) {
        let now = Instant::now();
        let mut buf = Vec::new();
        for pc in &mut pair.0 {
            pc.close();
            while pc.poll_transmit(now, 1, &mut buf).is_some() {}
        }
    }
}
