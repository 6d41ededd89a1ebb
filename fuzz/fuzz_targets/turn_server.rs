//! The TURN server core fed arbitrary packets from clients and peers:
//! it never panics, whatever arrives in whatever order.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_turn::auth::Credentials;
use natter_turn::{AllocateOutcome, ClientAction, FiveTuple, Server, ServerConfig, Transport, PEER_HEADROOM};

fuzz_target!(|data: &[u8]| {
    let mut creds = Credentials::new("fuzz");
    creds.add_user("user", "pass").expect("valid user");
    let start = Instant::now();
    let mut server = Server::new(ServerConfig::new(creds, [1; 32], [2; 32]), start, 1_700_000_000);
    let mut reply = [0u8; 2048];
    let mut buf = vec![0u8; 70_000];
    // Each chunk: [selector, len_hi, len_lo, bytes...].
    let mut rest = data;
    let mut t = 0u64;
    while rest.len() >= 3 {
        let (sel, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[3 + body.len()..];
        t += u64::from(sel >> 4);
        let now = start + Duration::from_secs(t);
        let transport = [Transport::Udp, Transport::Tcp, Transport::Tls][usize::from(sel % 3)];
        let from = FiveTuple {
            transport,
            client: ([192, 0, 2, sel & 3], 5000).into(),
            server: ([192, 0, 2, 100], 3478).into(),
        };
        if sel & 8 == 0 {
            if let ClientAction::Allocate(req) = server.handle_client(now, from, body, &mut reply) {
                let relay = ([192, 0, 2, 200], 50_000 + u16::from(sel)).into();
                let outcome = AllocateOutcome::Bound { relay, additional: None, reservation: None };
                server.finish_allocate(now, req.token, outcome, &mut reply);
            }
        } else {
            let n = body.len().min(buf.len() - PEER_HEADROOM - 3);
            buf[PEER_HEADROOM..PEER_HEADROOM + n].copy_from_slice(&body[..n]);
            let relay = ([192, 0, 2, 200], 50_000 + u16::from(sel & 0xf0)).into();
            let _ = server.handle_peer(now, relay, ([198, 51, 100, 1], 9).into(), &mut buf, n);
        }
        server.handle_timeout(now);
        while server.poll_event().is_some() {}
    }
});
