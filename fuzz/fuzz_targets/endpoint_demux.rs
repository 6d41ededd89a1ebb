//! The endpoint's demultiplexer (natter's `endpoint`): arbitrary
//! datagrams from known and unknown addresses, raw or dressed as STUN
//! requests for a connection's ufrag, interleaved with timeouts, reach
//! an endpoint holding two answered connections. It never panics, every
//! datagram is either routed to a connection or counted as dropped, and
//! every transmit comes from a connection it holds.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter::dtls::Certificate;
use natter::endpoint::Endpoint;
use natter::jsep::IceCredentials;
use natter::peer::{DataChannelInit, Description, PeerConfig, PeerConnection};
use natter_stun::{Class, MessageType, MessageWriter, Method, TransactionId, Username};

const LOCAL: &str = "10.0.0.1:3478";
const SOURCES: [&str; 3] = ["10.0.0.2:5000", "10.0.0.3:5000", "203.0.113.1:9"];
const UFRAGS: [&str; 2] = ["fuzzufraga", "fuzzufragb"];

/// One certificate and one browser-like offer for every run: making
/// them is the slow part.
fn fixtures() -> &'static (Certificate, Description) {
    static FIXTURES: OnceLock<(Certificate, Description)> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let certificate = Certificate::generate().expect("a certificate");
        let config = PeerConfig {
            certificate: Some(certificate.clone()),
            seed: Some(1),
            ..PeerConfig::default()
        };
        let mut offerer = PeerConnection::new(config, Instant::now()).expect("an offerer");
        offerer.create_data_channel("fuzz", DataChannelInit::default()).expect("a channel");
        let offer = offerer.create_offer().expect("an offer");
        (certificate, offer)
    })
}

/// A STUN request for `ufrag`'s connection with the fuzzer's attributes
/// and no valid integrity: routed, then refused by the connection.
fn request(ufrag: &str, body: &[u8]) -> Option<Vec<u8>> {
    let tid: [u8; 12] = body.get(..12)?.try_into().ok()?;
    let mut buf = vec![0u8; 1500];
    let kind = MessageType::new(Method::BINDING, Class::Request);
    let mut w = MessageWriter::new(&mut buf, kind, TransactionId(tid)).ok()?;
    w.add(&Username(&format!("{ufrag}:peer"))).ok()?;
    let mut attrs = &body[12..];
    while attrs.len() >= 3 {
        let typ = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(attrs[2]).min(attrs.len() - 3);
        w.add_raw(typ, &attrs[3..3 + len]).ok()?;
        attrs = &attrs[3 + len..];
    }
    let n = w.finish();
    buf.truncate(n);
    Some(buf)
}

fuzz_target!(|data: &[u8]| {
    let (certificate, offer) = fixtures();
    let start = Instant::now();
    let local: SocketAddr = LOCAL.parse().unwrap();
    let mut endpoint = Endpoint::new(vec![local]);
    let mut handles = Vec::new();
    for ufrag in UFRAGS {
        let config = PeerConfig {
            certificate: Some(certificate.clone()),
            ice_lite: true,
            ice_credentials: Some(IceCredentials::new(ufrag, "fuzzpasswordfuzzpassword")),
            seed: Some(2),
            ..PeerConfig::default()
        };
        let handle = endpoint.insert(PeerConnection::new(config, start).unwrap()).unwrap();
        let mut pc = endpoint.connection(handle).unwrap();
        pc.set_remote_description(offer).unwrap();
        let answer = pc.create_answer().unwrap();
        pc.set_local_description(&answer).unwrap();
        drop(pc);
        handles.push(handle);
    }

    let mut now = start;
    let mut routed = 0u64;
    let mut buf = Vec::new();
    // Each chunk: [op, len, bytes...].
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let source: SocketAddr = SOURCES[usize::from(op >> 2) % SOURCES.len()].parse().unwrap();
        let datagram = match op & 3 {
            0 => Some(body.to_vec()),
            1 => request(UFRAGS[usize::from(op >> 4) % UFRAGS.len()], body),
            2 => {
                now += Duration::from_millis(u64::from(body.first().copied().unwrap_or(1)) * 10);
                endpoint.handle_timeout(now);
                None
            }
            _ => {
                if let Some(&handle) = handles.get(usize::from(op >> 4) % handles.len()) {
                    endpoint.set_paused(handle, op & 0x40 != 0);
                }
                None
            }
        };
        if let Some(datagram) = datagram {
            if let Some(handle) = endpoint.handle_receive(now, source, local, &datagram) {
                assert!(handles.contains(&handle), "routed to a connection the endpoint does not hold");
                routed += 1;
            }
        }
        while let Some((handle, transmit)) = endpoint.poll_transmit(now, 8, &mut buf) {
            assert!(handles.contains(&handle));
            assert_eq!(transmit.size, buf.len(), "the transmit's size is what it wrote");
            assert_eq!(transmit.source, local, "a transmit from an address the endpoint does not have");
        }
        while endpoint.poll_event().is_some() {}
    }
    let stats = endpoint.stats();
    assert_eq!(
        stats.datagrams_received,
        routed + stats.dropped() + stats.paused_dropped,
        "every datagram is routed or counted: {stats:?}"
    );
});
