//! The ICE agent's connectivity-check input path (RFC 8445 §7.2-7.3):
//! arbitrary datagrams from a known remote candidate and from strangers,
//! raw or re-signed with the right short-term credentials so that the
//! agent's checks of attributes, roles and nomination run, interleaved
//! with timeouts and sends. The agent never panics and keeps its
//! invariants (a selected pair exists once connected).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Role};
use natter_ice::candidate::Protocol;
use natter_ice::{Credentials, Transport};
use natter_stun::{Class, IntegrityKey, MessageType, MessageWriter, Method, TransactionId, Username};

const LOCAL: &str = "10.0.0.1:5000";
const REMOTE: &str = "10.0.0.2:6000";

/// Builds a STUN message of the fuzzer's class and attributes, with the
/// USERNAME, MESSAGE-INTEGRITY and FINGERPRINT the agent accepts.
fn signed(body: &[u8], key: &IntegrityKey) -> Option<Vec<u8>> {
    let (&class, rest) = body.split_first()?;
    let class = [
        Class::Request,
        Class::Indication,
        Class::SuccessResponse,
        Class::ErrorResponse,
    ][usize::from(class & 3)];
    let tid: [u8; 12] = rest.get(..12)?.try_into().ok()?;
    let mut attrs = &rest[12..];
    let mut buf = vec![0u8; 1500];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, class), TransactionId(tid)).ok()?;
    if class == Class::Request {
        w.add(&Username("local:remote")).ok()?;
    }
    // The rest: [type_hi, type_lo, len, value...] attributes.
    while attrs.len() >= 3 {
        let typ = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(attrs[2]).min(attrs.len() - 3);
        w.add_raw(typ, &attrs[3..3 + len]).ok()?;
        attrs = &attrs[3 + len..];
    }
    w.add_message_integrity(key).ok()?;
    w.add_fingerprint().ok()?;
    let n = w.finish();
    buf.truncate(n);
    Some(buf)
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let local: SocketAddr = LOCAL.parse().expect("an address");
    let remote: SocketAddr = REMOTE.parse().expect("an address");
    let config = AgentConfig {
        role: if data.first().is_some_and(|b| b & 1 == 1) {
            Role::Controlling
        } else {
            Role::Controlled
        },
        credentials: Some(Credentials {
            ufrag: "local".into(),
            pwd: "local-password-0123456789".into(),
        }),
        seed: Some(7),
        ..AgentConfig::default()
    };
    let local_key = IntegrityKey::short_term("local-password-0123456789").expect("a valid password");
    let remote_key = IntegrityKey::short_term("remote-password-0123456789").expect("a valid password");
    let mut agent = Agent::new(config, start);
    agent.add_host(local, Protocol::Udp).expect("a host address");
    agent.end_of_local_addresses();
    agent.set_remote_credentials(
        Credentials {
            ufrag: "remote".into(),
            pwd: "remote-password-0123456789".into(),
        },
        start,
    );
    let candidate = format!(
        "candidate:1 1 udp 2130706431 {} {} typ host",
        remote.ip(),
        remote.port()
    );
    agent
        .add_remote_candidate(candidate.parse().expect("a candidate"), start)
        .expect("accepted");

    // Chunks: [selector, len, bytes...].
    let mut now = start;
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 2 {
        let (sel, len) = (rest[0], usize::from(rest[1]));
        let body = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[2 + body.len()..];
        now += Duration::from_millis(u64::from(sel >> 4) * 20);
        let source = if sel & 1 == 0 {
            remote
        } else {
            ([10, 0, 0, 3], 7000).into()
        };
        let packet = match sel & 6 {
            0 => Some(body.to_vec()),
            2 => signed(body, &local_key),
            4 => signed(body, &remote_key),
            _ => {
                let mut out = Vec::new();
                let _ = agent.send(body, &mut out, now);
                None
            }
        };
        if let Some(packet) = packet {
            let _ = agent.handle_receive(now, Transport::Udp, source, local, &packet);
        }
        if agent.poll_timeout().is_some_and(|t| t <= now) {
            agent.handle_timeout(now);
        }
        while agent.poll_transmit(now).is_some() {}
        while agent.poll_event().is_some() {}
        if matches!(agent.state(), ConnectionState::Connected | ConnectionState::Completed) {
            assert!(agent.selected_pair().is_some(), "connected without a selected pair");
        }
    }
});
