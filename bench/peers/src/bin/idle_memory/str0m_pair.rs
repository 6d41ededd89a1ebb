//! str0m: two `Rtc`s in memory under a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::Stack;

pub struct Str0m;

impl Str0m {
    pub fn new() -> Str0m {
        str0m::crypto::from_feature_flags().install_process_default();
        Str0m
    }
}

pub struct Pair(#[allow(dead_code)] [Rtc; 2]);

struct Side {
    rtc: Rtc,
    address: SocketAddr,
    timeout: Instant,
    open: bool,
}

/// Drains `side` up to its next timeout: datagrams onto `wire`.
fn drain(side: &mut Side, wire: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>) {
    loop {
        match side.rtc.poll_output().expect("str0m output") {
            Output::Timeout(t) => {
                side.timeout = t;
                return;
            }
            Output::Transmit(t) => wire.push((t.source, t.destination, t.contents.to_vec())),
            Output::Event(Event::ChannelOpen(..)) => side.open = true,
            Output::Event(_) => {}
        }
    }
}

impl Stack for Str0m {
    type Pair = Pair;

    fn open(&mut self) -> Pair {
        let mut now = Instant::now();
        let side = |address: &str| {
            let address: SocketAddr = address.parse().expect("address");
            let mut rtc = Rtc::builder().build(now);
            rtc.add_local_candidate(Candidate::host(address, "udp").expect("host candidate"));
            Side {
                rtc,
                address,
                timeout: now,
                open: false,
            }
        };
        let mut sides = [side("10.0.0.1:5000"), side("10.0.0.2:5000")];
        let mut change = sides[0].rtc.sdp_api();
        change.add_channel("bench".into());
        let (offer, pending) = change.apply().expect("a change to offer");
        let answer = sides[1].rtc.sdp_api().accept_offer(offer).expect("offer applies");
        sides[0]
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer applies");

        let mut idle_until = None;
        let deadline = now + Duration::from_secs(30);
        let mut wire = Vec::new();
        for s in &mut sides {
            drain(s, &mut wire);
        }
        while idle_until.is_none_or(|t| now < t) {
            assert!(now < deadline, "str0m pair not connected in 30 s");
            if idle_until.is_none() && sides.iter().all(|s| s.open) {
                idle_until = Some(now + Duration::from_secs(2));
            }
            if wire.is_empty() {
                let next = sides.iter().map(|s| s.timeout).min().expect("two sides");
                now = if next > now {
                    next
                } else {
                    now + Duration::from_millis(1)
                };
                for s in &mut sides {
                    if s.timeout <= now {
                        s.rtc.handle_input(Input::Timeout(now)).expect("str0m timeout");
                        drain(s, &mut wire);
                    }
                }
                continue;
            }
            for (source, destination, contents) in std::mem::take(&mut wire) {
                let Some(s) = sides.iter_mut().find(|s| s.address == destination) else {
                    continue;
                };
                let receive = Receive {
                    proto: Protocol::Udp,
                    source,
                    destination,
                    contents: contents.as_slice().try_into().expect("a datagram str0m knows"),
                };
                s.rtc.handle_input(Input::Receive(now, receive)).expect("str0m receive");
                drain(s, &mut wire);
            }
        }
        let [a, b] = sides;
        Pair([a.rtc, b.rtc])
    }

    fn close(&mut self, mut pair: Pair) {
        for rtc in &mut pair.0 {
            rtc.disconnect();
        }
    }
}
