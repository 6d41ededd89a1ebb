//! A minimal STUN server endpoint: answers Binding requests (RFC 8489
//! §7.3.1) with XOR-MAPPED-ADDRESS, on whatever address and port they
//! arrive at, and ignores everything else.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use natter_ice::{Transmit, Transport};
use natter_stun::{Class, Message, MessageType, MessageWriter, Method, XorMappedAddress};

use super::net::Endpoint;

#[derive(Debug, Default)]
pub struct StunServer {
    outbox: VecDeque<Transmit>,
    /// Binding requests answered.
    pub answered: u64,
    /// Datagrams that were not Binding requests.
    pub ignored: u64,
}

impl StunServer {
    pub fn new() -> Self {
        StunServer::default()
    }

    /// The response to a Binding request from `source`, or `None` if
    /// `data` is not one.
    fn respond(data: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
        let msg = Message::decode(data).ok()?;
        if msg.message_type() != MessageType::new(Method::BINDING, Class::Request) {
            return None;
        }
        let mut buf = [0u8; 128];
        let typ = MessageType::new(Method::BINDING, Class::SuccessResponse);
        let mut w = MessageWriter::new(&mut buf, typ, msg.transaction_id()).ok()?;
        w.add(&XorMappedAddress(source)).ok()?;
        if msg.has_fingerprint() {
            w.add_fingerprint().ok()?;
        }
        let n = w.finish();
        Some(buf[..n].to_vec())
    }
}

impl Endpoint for StunServer {
    fn handle_receive(&mut self, _now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        match StunServer::respond(data, source) {
            Some(data) => {
                self.answered += 1;
                self.outbox.push_back(Transmit {
                    transport: Transport::Udp,
                    source: destination,
                    destination: source,
                    data,
                });
            }
            None => self.ignored += 1,
        }
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}
