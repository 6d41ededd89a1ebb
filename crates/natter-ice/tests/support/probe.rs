//! A scriptable endpoint: sends what the test tells it to, records what
//! arrives and, as a reflector, tells each sender the address it saw.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use natter_ice::{Transmit, Transport};

use super::net::Endpoint;

/// A datagram a [`Probe`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub at: Instant,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: Vec<u8>,
}

impl Received {
    /// The address a reflector reports, if this is a reflector's answer.
    pub fn reflected(&self) -> Option<SocketAddr> {
        std::str::from_utf8(&self.data).ok()?.parse().ok()
    }
}

/// Sends queued datagrams at the next step and records every arrival.
#[derive(Debug, Default)]
pub struct Probe {
    reflect: bool,
    outbox: VecDeque<Transmit>,
    received: Vec<Received>,
}

impl Probe {
    /// A probe that only records.
    pub fn new() -> Self {
        Probe::default()
    }

    /// A probe that also answers each datagram, from the address it
    /// arrived at, with the sender's address as text ("203.0.113.1:4000").
    pub fn reflector() -> Self {
        Probe {
            reflect: true,
            ..Probe::default()
        }
    }

    /// Queues a UDP datagram; the network takes it at its next step.
    pub fn send(&mut self, source: SocketAddr, destination: SocketAddr, data: impl Into<Vec<u8>>) {
        self.outbox.push_back(Transmit {
            transport: Transport::Udp,
            source,
            destination,
            data: data.into(),
        });
    }

    /// Queues any transmit, UDP or not.
    pub fn send_transmit(&mut self, transmit: Transmit) {
        self.outbox.push_back(transmit);
    }

    pub fn received(&self) -> &[Received] {
        &self.received
    }

    pub fn last(&self) -> Option<&Received> {
        self.received.last()
    }

    pub fn take_received(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.received)
    }
}

impl Endpoint for Probe {
    fn handle_receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        if self.reflect {
            self.send(destination, source, source.to_string());
        }
        self.received.push(Received {
            at: now,
            source,
            destination,
            data: data.to_vec(),
        });
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}
