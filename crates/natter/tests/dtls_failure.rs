//! DTLS failures that are reported (issue 16): when the peer's
//! certificate does not match the remote description's fingerprint
//! (RFC 8122 §5), natter sends a fatal `bad_certificate` alert (RFC 5246
//! §7.2) and reports why; the peer that receives it reports the alert
//! and fails at once instead of retransmitting until its handshake
//! times out. Two PeerConnections over an in-memory network under a
//! virtual clock, natter rejecting as DTLS server and as DTLS client.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::{DtlsConfig, DtlsError, DtlsState, ALERT_BAD_CERTIFICATE};
use natter::peer::*;
use natter_ice::Transmit;

const A: usize = 0;
const B: usize = 1;

/// One way latency of the in-memory network.
const LATENCY: Duration = Duration::from_millis(10);

/// RFC 6347 §4.1 record header length, and the content types we look for.
const HEADER: usize = 13;
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;

/// A side that receives the alert must fail well before dimpl's first
/// retransmission (1 s, `DtlsConfig::initial_retransmit_timeout`), let
/// alone its handshake timeout (about 31 s of retransmissions): only the
/// alert can make it fail this fast.
const PROMPT: Duration = Duration::from_millis(200);

struct Net {
    pcs: [PeerConnection; 2],
    addrs: [SocketAddr; 2],
    events: [Vec<(Instant, PeerEvent)>; 2],
    outbox: [VecDeque<Option<IceCandidate>>; 2],
    now: Instant,
    in_flight: Vec<(Instant, Transmit)>,
    /// Every datagram sent, by sender, with the time it left.
    wire: Vec<(usize, Instant, Vec<u8>)>,
}

impl Net {
    fn new(seed: u64) -> Net {
        let now = Instant::now();
        let addrs: [SocketAddr; 2] = ["10.0.0.1:5000".parse().unwrap(), "10.0.0.2:5000".parse().unwrap()];
        let pcs = [0, 1].map(|i| {
            let config = PeerConfig {
                seed: Some(seed + i),
                dtls: DtlsConfig {
                    deterministic_seed: Some(seed + i),
                    ..DtlsConfig::default()
                },
                ..PeerConfig::default()
            };
            let mut pc = PeerConnection::new(config, now).unwrap();
            pc.add_local_address(addrs[i as usize]).unwrap();
            pc.end_of_local_addresses();
            pc
        });
        Net {
            pcs,
            addrs,
            events: [Vec::new(), Vec::new()],
            outbox: [VecDeque::new(), VecDeque::new()],
            now,
            in_flight: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// A offers a data channel, B answers; `munge` rewrites the
    /// description on its way to the side that receives it.
    fn negotiate(&mut self, munge_offer: bool, munge_answer: bool) {
        self.pcs[A]
            .create_data_channel("never", DataChannelInit::default())
            .unwrap();
        let offer = self.pcs[A].create_offer().unwrap();
        self.pcs[A].set_local_description(&offer).unwrap();
        self.pcs[B]
            .set_remote_description(&maybe_munged(&offer, munge_offer))
            .unwrap();
        let answer = self.pcs[B].create_answer().unwrap();
        self.pcs[B].set_local_description(&answer).unwrap();
        self.pcs[A]
            .set_remote_description(&maybe_munged(&answer, munge_answer))
            .unwrap();
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut buf = Vec::new();
        for side in [A, B] {
            while let Some(t) = self.pcs[side].poll_transmit(now, 1, &mut buf) {
                self.wire.push((side, now, buf.clone()));
                self.in_flight
                    .push((now + LATENCY, Transmit::new(t.route(), buf.clone())));
            }
            while let Some(event) = self.pcs[side].poll_event() {
                match &event {
                    PeerEvent::IceCandidate(c) => self.outbox[side].push_back(Some(c.clone())),
                    PeerEvent::IceGatheringComplete => self.outbox[side].push_back(None),
                    _ => {}
                }
                self.events[side].push((now, event));
            }
        }
        for (from, to) in [(A, B), (B, A)] {
            while let Some(candidate) = self.outbox[from].pop_front() {
                self.pcs[to].add_ice_candidate(candidate.as_ref()).unwrap();
            }
        }
        let deliveries = self.in_flight.iter().map(|(at, _)| *at);
        let timers = self.pcs.iter().filter_map(|pc| pc.poll_timeout());
        let Some(next) = deliveries.chain(timers).min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let (due, later) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.in_flight = later;
        for (_, t) in due {
            if let Some(to) = self.addrs.iter().position(|a| *a == t.destination) {
                self.pcs[to].handle_receive(now, t.transport, t.source, t.destination, &t.data);
            }
        }
        for pc in &mut self.pcs {
            if pc.poll_timeout().is_some_and(|t| t <= now) {
                pc.handle_timeout(now);
            }
        }
        true
    }

    /// Steps until both sides failed; panics after `limit` of virtual time.
    fn run_until_both_failed(&mut self, limit: Duration) {
        let deadline = self.now + limit;
        while self.failed_at(A).is_none() || self.failed_at(B).is_none() {
            assert!(
                self.now <= deadline && self.step(),
                "not both failed after {limit:?}: A {:?}, B {:?}",
                self.pcs[A].dtls_error(),
                self.pcs[B].dtls_error()
            );
        }
    }

    /// When the side reported its connection failed.
    fn failed_at(&self, side: usize) -> Option<Instant> {
        self.events[side]
            .iter()
            .find_map(|(at, e)| (*e == PeerEvent::ConnectionStateChange(PeerConnectionState::Failed)).then_some(*at))
    }

    /// The errors of the side's `DtlsFailed` events.
    fn dtls_failures(&self, side: usize) -> Vec<DtlsError> {
        self.events[side]
            .iter()
            .filter_map(|(_, e)| match e {
                PeerEvent::DtlsFailed(error) => Some(error.clone()),
                _ => None,
            })
            .collect()
    }

    /// The DTLS records (content type, epoch, sequence number, body) the
    /// side sent, with the time they left. RFC 7983: DTLS datagrams
    /// start with 20..=63; each holds DTLS 1.2 records back to back.
    fn records(&self, side: usize) -> Vec<(Instant, Record)> {
        let mut records = Vec::new();
        for (_, at, datagram) in self.wire.iter().filter(|(s, _, d)| *s == side && is_dtls(d)) {
            let mut rest = &datagram[..];
            while rest.len() >= HEADER {
                let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
                let body = rest.get(HEADER..HEADER + len).expect("record within its datagram");
                let mut sequence = [0u8; 8];
                sequence[2..].copy_from_slice(&rest[5..11]);
                records.push((
                    *at,
                    Record {
                        content_type: rest[0],
                        version: [rest[1], rest[2]],
                        epoch: u16::from_be_bytes([rest[3], rest[4]]),
                        sequence: u64::from_be_bytes(sequence),
                        body: body.to_vec(),
                    },
                ));
                rest = &rest[HEADER + len..];
            }
            assert!(rest.is_empty(), "trailing bytes after the records of {datagram:02x?}");
        }
        records
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    content_type: u8,
    version: [u8; 2],
    epoch: u16,
    sequence: u64,
    body: Vec<u8>,
}

fn is_dtls(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (20..=63).contains(b))
}

/// The description with one hex digit of its sha-256 fingerprint changed.
fn maybe_munged(description: &Description, munge: bool) -> Description {
    let mut sdp = description.sdp.clone();
    if munge {
        let prefix = "a=fingerprint:sha-256 ";
        let at = sdp.find(prefix).expect("a sha-256 fingerprint") + prefix.len();
        let flipped = if &sdp[at..at + 1] == "0" { "1" } else { "0" };
        sdp.replace_range(at..at + 1, flipped);
    }
    Description {
        kind: description.kind,
        sdp,
    }
}

/// `rejecter` got a wrong fingerprint for the other side's certificate:
/// it must send one plaintext fatal `bad_certificate` alert, send no
/// ChangeCipherSpec, report the mismatch, and the other side must report
/// the alert and fail promptly.
fn assert_rejected_with_an_alert(net: &mut Net, rejecter: usize) {
    let peer = 1 - rejecter;
    net.run_until_both_failed(Duration::from_secs(5));

    // The rejecter's reason, in every place it is reported.
    let mismatch = net.pcs[rejecter].dtls_error().cloned().expect("the rejecter failed");
    assert!(
        matches!(mismatch, DtlsError::FingerprintMismatch { .. }),
        "{mismatch:?}"
    );
    let text = mismatch.to_string();
    let actual = net.pcs[peer].certificate().fingerprint().to_string();
    assert!(
        text.contains(&actual) && text.contains("does not match the remote description's fingerprint"),
        "{text}"
    );
    assert_eq!(net.dtls_failures(rejecter), vec![mismatch.clone()]);
    let stats = net.pcs[rejecter].stats().dtls.expect("DTLS stats");
    assert_eq!(stats.state, DtlsState::Failed);
    assert_eq!(stats.error, Some(mismatch));
    assert_eq!(stats.sent_alert, Some(ALERT_BAD_CERTIFICATE));

    // On the wire: after the peer's certificate arrived, the rejecter's
    // last DTLS record is the alert, plaintext because the peer has not
    // seen our ChangeCipherSpec (we sent none) and so reads epoch 0.
    let records = net.records(rejecter);
    assert!(
        !records
            .iter()
            .any(|(_, r)| r.content_type == CHANGE_CIPHER_SPEC || r.epoch != 0),
        "the rejecter completed its side of the handshake: {records:?}"
    );
    let (alert_sent_at, alert) = records.last().cloned().expect("the rejecter sent DTLS");
    assert_eq!(
        alert,
        Record {
            content_type: ALERT,
            version: [254, 253],
            epoch: 0,
            sequence: alert.sequence,
            body: vec![2, 42], // fatal(2), bad_certificate(42)
        }
    );
    assert_eq!(records.iter().filter(|(_, r)| r.content_type == ALERT).count(), 1);
    // RFC 6347 §4.1.2.6: a fresh sequence number, or the peer's replay
    // window would drop it.
    let before = records[..records.len() - 1].iter().map(|(_, r)| r.sequence);
    assert!(
        before.clone().all(|s| s < alert.sequence),
        "{:?} then {}",
        before.collect::<Vec<_>>(),
        alert.sequence
    );

    // The peer reports the alert, and fails because of it: on its arrival,
    // long before its first retransmission would have been due.
    let peer_error = net.pcs[peer].dtls_error().cloned().expect("the peer failed");
    assert_eq!(peer_error, DtlsError::PeerAlert { description: 42 });
    assert!(peer_error.to_string().contains("bad_certificate"), "{peer_error}");
    assert_eq!(net.dtls_failures(peer), vec![peer_error.clone()]);
    assert_eq!(net.pcs[peer].stats().dtls.and_then(|d| d.error), Some(peer_error));
    let peer_failed_at = net.failed_at(peer).expect("the peer failed");
    let took = peer_failed_at - alert_sent_at;
    assert!(took <= PROMPT, "the peer failed {took:?} after the alert left");
    println!("rejecter {rejecter}: the peer failed {took:?} after the alert was sent");

    for events in &net.events {
        assert!(!events.iter().any(|(_, e)| matches!(e, PeerEvent::DataChannelOpen(_))));
    }
}

/// A offers (`actpass`), B answers `active`: A is the DTLS server and
/// rejects B's certificate when B's Certificate arrives in flight 5.
#[test]
fn natter_as_dtls_server_sends_bad_certificate_and_the_client_reports_it() {
    let mut net = Net::new(11);
    net.negotiate(false, true);
    assert_rejected_with_an_alert(&mut net, A);
}

/// B, the DTLS client, rejects A's certificate at the ServerHelloDone of
/// flight 4, before sending its own flight.
#[test]
fn natter_as_dtls_client_sends_bad_certificate_and_the_server_reports_it() {
    let mut net = Net::new(21);
    net.negotiate(true, false);
    assert_rejected_with_an_alert(&mut net, B);
}
