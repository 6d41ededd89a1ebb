//! The datagrams a connection has to send, held until
//! [`PeerConnection::poll_transmit`](super::PeerConnection::poll_transmit)
//! writes them into the caller's buffer.
//!
//! They are queued back to back in one byte buffer that is reused, so
//! that once it has grown to the connection's usual burst nothing is
//! allocated per datagram (DESIGN: hot paths do not allocate). Datagrams
//! of one size to one destination that follow each other come out as
//! one batch for UDP generic segmentation offload (GSO), as quinn-proto's
//! `poll_transmit` fills one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use natter_ice::{Agent, Route, Transport};

/// What [`PeerConnection::poll_transmit`](super::PeerConnection::poll_transmit)
/// wrote into the caller's buffer, and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transmit {
    /// UDP, or for a TURN server reached over TCP or TLS the bytes to
    /// write on that connection (see natter-ice's agent).
    pub transport: Transport,
    /// The local address to send from (a socket the I/O layer opened).
    pub source: SocketAddr,
    pub destination: SocketAddr,
    /// How many bytes were written.
    pub size: usize,
    /// Set when the buffer holds several datagrams back to back: the
    /// size of each, the last one being this long or shorter. The I/O
    /// layer sends them with one GSO call (Linux `UDP_SEGMENT`) or one
    /// by one. `None`: the buffer is one datagram.
    pub segment_size: Option<usize>,
}

impl Transmit {
    /// How many datagrams the buffer holds.
    pub fn datagrams(&self) -> usize {
        self.segment_size.map_or(1, |segment| self.size.div_ceil(segment))
    }

    /// Where it goes, as natter-ice says it (with
    /// [`natter_ice::Transmit::new`], an owned datagram for a simulated
    /// network).
    pub fn route(&self) -> Route {
        Route {
            transport: self.transport,
            source: self.source,
            destination: self.destination,
        }
    }
}

/// The most bytes one batch holds: the largest UDP payload over IPv6 or
/// IPv4 (RFC 8200 §5 payload length, 65,535 less the UDP header less
/// IPv4's 20-byte header), which the kernel checks a GSO send against.
const MAX_BATCH_BYTES: usize = 65_507;

/// The queue's buffer is released when it empties holding more than
/// this: a burst (a keyframe's packets) grows it, an idle connection
/// should not keep that. Room for the pacer's largest burst (5 ms at 2.5
/// times the default 10 Mbit/s maximum, 15.6 KB, which a doubling
/// buffer holds in 17 KB), so that a paced sender does not release and
/// regrow it at every probe.
const RETAINED_BYTES: usize = 32 * 1024;

/// One queued datagram: where it goes and where it lies in the buffer.
#[derive(Clone, Copy, Debug)]
struct Queued {
    route: Route,
    start: usize,
    len: usize,
}

/// Datagrams waiting for the I/O layer, in one reused byte buffer.
#[derive(Debug, Default)]
pub(super) struct TransmitQueue {
    bytes: Vec<u8>,
    queued: VecDeque<Queued>,
}

impl TransmitQueue {
    pub(super) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Hands `data` to ICE to send on its selected pair, which writes
    /// the datagram (framed for TURN if relayed) into the queue. False
    /// when ICE cannot send (no pair, consent expired, closed).
    pub(super) fn send(&mut self, ice: &mut Agent, data: &[u8], now: Instant) -> bool {
        let start = self.bytes.len();
        let Some(route) = ice.send(data, &mut self.bytes, now) else {
            return false;
        };
        self.queued.push_back(Queued {
            route,
            start,
            len: self.bytes.len() - start,
        });
        true
    }

    /// Writes the next datagram into `buf` (cleared first), with those
    /// after it that can share its GSO batch: same route over UDP, the
    /// same size, up to `max_datagrams` and [`MAX_BATCH_BYTES`]; a
    /// shorter datagram may end the batch.
    pub(super) fn pop_into(&mut self, max_datagrams: usize, buf: &mut Vec<u8>) -> Option<Transmit> {
        let first = self.queued.pop_front()?;
        let mut end = first.start + first.len;
        let mut count = 1;
        let batches = first.route.transport == Transport::Udp && first.len > 0;
        while batches && count < max_datagrams {
            let Some(next) = self.queued.front() else { break };
            let fits = end + next.len - first.start <= MAX_BATCH_BYTES;
            if next.route != first.route || next.len > first.len || !fits {
                break;
            }
            end += next.len;
            count += 1;
            let shorter = next.len < first.len;
            self.queued.pop_front();
            if shorter {
                break;
            }
        }
        buf.clear();
        buf.extend_from_slice(&self.bytes[first.start..end]);
        self.release();
        Some(Transmit {
            transport: first.route.transport,
            source: first.route.source,
            destination: first.route.destination,
            size: end - first.start,
            segment_size: (count > 1).then_some(first.len),
        })
    }

    /// After a pop: reuse the buffer from its start once empty, and move
    /// the rest down once most of it is sent (so a queue that never
    /// empties does not grow forever).
    fn release(&mut self) {
        match self.queued.front() {
            None if self.bytes.capacity() > RETAINED_BYTES => self.bytes = Vec::new(),
            None => self.bytes.clear(),
            Some(head) if head.start > self.bytes.len() / 2 => {
                let offset = head.start;
                self.bytes.drain(..offset);
                for queued in &mut self.queued {
                    queued.start -= offset;
                }
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(port: u16) -> Route {
        Route {
            transport: Transport::Udp,
            source: "192.0.2.1:5000".parse().unwrap(),
            destination: SocketAddr::from(([192, 0, 2, 2], port)),
        }
    }

    fn queue(datagrams: &[(Route, usize)]) -> TransmitQueue {
        let mut q = TransmitQueue::default();
        for (i, &(route, len)) in datagrams.iter().enumerate() {
            let start = q.bytes.len();
            q.bytes.extend(std::iter::repeat_n(i as u8, len));
            q.queued.push_back(Queued { route, start, len });
        }
        q
    }

    #[test]
    fn same_size_datagrams_to_one_destination_batch_and_a_shorter_one_ends_it() {
        let a = route(1);
        let mut q = queue(&[(a, 100), (a, 100), (a, 60), (a, 100), (route(2), 100)]);
        let mut buf = Vec::new();
        let t = q.pop_into(10, &mut buf).unwrap();
        assert_eq!((t.size, t.segment_size, t.datagrams()), (260, Some(100), 3));
        assert_eq!(&buf[..100], &[0; 100][..]);
        assert_eq!(&buf[200..], &[2; 60][..]);
        // The next to the same destination, then another destination.
        let t = q.pop_into(10, &mut buf).unwrap();
        assert_eq!((t.size, t.segment_size, t.destination), (100, None, a.destination));
        assert_eq!(buf, [3; 100]);
        let t = q.pop_into(10, &mut buf).unwrap();
        assert_eq!(t.destination, route(2).destination);
        assert!(q.pop_into(10, &mut buf).is_none());
        assert!(q.bytes.is_empty(), "an empty queue starts its buffer over");
    }

    #[test]
    fn batches_stop_at_max_datagrams_and_at_a_longer_datagram() {
        let a = route(1);
        let mut q = queue(&[(a, 50), (a, 50), (a, 50), (a, 80)]);
        let mut buf = Vec::new();
        assert_eq!(q.pop_into(2, &mut buf).unwrap().segment_size, Some(50));
        let t = q.pop_into(1, &mut buf).unwrap();
        assert_eq!((t.size, t.segment_size), (50, None));
        let t = q.pop_into(8, &mut buf).unwrap();
        assert_eq!((t.size, t.segment_size), (80, None));
    }

    #[test]
    fn a_batch_stays_within_the_largest_udp_payload() {
        let a = route(1);
        let mut q = queue(&vec![(a, 1200); 60]);
        let mut buf = Vec::new();
        let t = q.pop_into(64, &mut buf).unwrap();
        assert_eq!(t.datagrams(), MAX_BATCH_BYTES / 1200);
        assert!(t.size <= MAX_BATCH_BYTES);
    }

    #[test]
    fn a_queue_that_never_empties_reuses_its_buffer() {
        let a = route(1);
        let mut q = TransmitQueue::default();
        let mut buf = Vec::new();
        for i in 0..1000u32 {
            let start = q.bytes.len();
            q.bytes.extend_from_slice(&i.to_be_bytes());
            q.queued.push_back(Queued {
                route: a,
                start,
                len: 4,
            });
            if i > 0 {
                let t = q.pop_into(1, &mut buf).unwrap();
                assert_eq!((t.size, &buf[..]), (4, &(i - 1).to_be_bytes()[..]));
            }
        }
        assert!(
            q.bytes.len() <= 16,
            "{} bytes held for one queued datagram",
            q.bytes.len()
        );
    }
}
