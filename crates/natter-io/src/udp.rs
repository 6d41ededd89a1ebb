//! UDP sockets with batched system calls. Through quinn-udp (the QUIC
//! stack's well-kept socket layer): `recvmmsg` and UDP GRO in, UDP GSO
//! (Linux `UDP_SEGMENT`) out for same-size datagrams to one destination.
//! Each falls back by itself where the kernel or the interface has no
//! support: quinn-udp reads one datagram a call and stops segmenting
//! after the first send GSO fails; a batch that failed is sent again
//! datagram by datagram here.
//!
//! quinn-udp has no `sendmmsg`: single datagrams, to any destinations,
//! are queued ([`UdpSocket::queue`]) and leave with one `sendmmsg` per
//! batch from [`crate::batch`] (Linux; elsewhere one call each). A full
//! socket buffer is waited out on the tokio reactor, never dropped.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use natter::peer::Transmit;
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;

#[cfg(target_os = "linux")]
use crate::batch::{SendBatch, BATCH};

/// How many receive buffers one call fills at most (`recvmmsg`'s batch).
pub(crate) const RECEIVE_BUFFERS: usize = quinn_udp::BATCH_SIZE;

/// A bound, non-blocking UDP socket on the tokio reactor.
pub(crate) struct UdpSocket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    pub(crate) address: SocketAddr,
    /// Datagrams waiting for the next `sendmmsg`.
    #[cfg(target_os = "linux")]
    queued: SendBatch,
}

impl UdpSocket {
    /// Binds `address`; `buffer_size` asks for kernel buffers that large
    /// (capped by `net.core.rmem_max`/`wmem_max`; best effort).
    pub(crate) fn bind(address: SocketAddr, buffer_size: Option<usize>) -> io::Result<UdpSocket> {
        let socket = std::net::UdpSocket::bind(address)?;
        let state = UdpSocketState::new((&socket).into())?;
        if let Some(size) = buffer_size {
            let _ = state.set_recv_buffer_size((&socket).into(), size);
            let _ = state.set_send_buffer_size((&socket).into(), size);
        }
        let address = socket.local_addr()?;
        Ok(UdpSocket {
            io: tokio::net::UdpSocket::from_std(socket)?,
            state,
            address,
            #[cfg(target_os = "linux")]
            queued: SendBatch::default(),
        })
    }

    /// How many datagrams one send may carry: 1 without GSO.
    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends the datagram, or the GSO batch, `data` that `transmit`
    /// describes; a batch the kernel refused goes again one datagram at
    /// a time.
    pub(crate) async fn send(&self, transmit: &Transmit, data: &[u8]) -> io::Result<()> {
        match self
            .send_segments(transmit.destination, data, transmit.segment_size)
            .await
        {
            Err(error) if transmit.segment_size.is_some() => {
                tracing::debug!(%error, "GSO send failed; sending the datagrams one by one");
                let size = transmit.segment_size.unwrap_or(data.len()).max(1);
                for datagram in data.chunks(size) {
                    self.send_segments(transmit.destination, datagram, None).await?;
                }
                Ok(())
            }
            sent => sent,
        }
    }

    /// Queues `datagram` for `destination`; a full batch leaves at once,
    /// the rest with [`UdpSocket::flush`].
    #[cfg(target_os = "linux")]
    pub(crate) async fn queue(&mut self, destination: SocketAddr, datagram: &[u8]) {
        self.queued.push(destination, datagram);
        if self.queued.len() >= BATCH {
            self.flush().await;
        }
    }

    /// Sends the queued datagrams, one `sendmmsg` per batch, waiting for
    /// room while the socket buffer is full. A datagram the kernel
    /// refuses otherwise (an unreachable destination) is logged and
    /// given up.
    #[cfg(target_os = "linux")]
    pub(crate) async fn flush(&mut self) {
        use std::os::fd::AsRawFd;
        let fd = self.io.as_raw_fd();
        while !self.queued.is_empty() {
            let queued = &mut self.queued;
            match self.io.async_io(Interest::WRITABLE, || queued.send_some(fd)).await {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::debug!(source = %self.address, %error, "sendmmsg refused a datagram; given up");
                    self.queued.skip();
                }
            }
        }
    }

    /// Sends `datagram` to `destination` (no `sendmmsg` here).
    #[cfg(not(target_os = "linux"))]
    pub(crate) async fn queue(&mut self, destination: SocketAddr, datagram: &[u8]) {
        if let Err(error) = self.send_segments(destination, datagram, None).await {
            tracing::debug!(source = %self.address, %destination, %error, "send");
        }
    }

    /// Nothing waits without `sendmmsg`.
    #[cfg(not(target_os = "linux"))]
    pub(crate) async fn flush(&mut self) {}

    async fn send_segments(&self, destination: SocketAddr, data: &[u8], segment_size: Option<usize>) -> io::Result<()> {
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents: data,
            segment_size,
            src_ip: None,
        };
        self.io
            .async_io(Interest::WRITABLE, || self.state.try_send((&self.io).into(), &transmit))
            .await
    }

    /// Fills the buffers with what waits on the socket (several
    /// datagrams, and with GRO several in one buffer: see
    /// [`datagrams`]); the number of buffers filled.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            match self.try_recv(bufs, meta) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                received => return Poll::Ready(received),
            }
        }
    }

    /// [`UdpSocket::poll_recv`] without waiting.
    pub(crate) fn try_recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        self.io
            .try_io(Interest::READABLE, || self.state.recv((&self.io).into(), bufs, meta))
    }
}

/// A kernel receive time older than this is not trusted (the wall clock
/// stepped): the datagram counts as read when it was.
const MAX_RECEIVE_LAG: Duration = Duration::from_secs(1);

/// When datagrams arrived, from the kernel's receive timestamps
/// (`SO_TIMESTAMPNS`, which quinn-udp turns on and decodes) rather than
/// when the task got round to reading them. On a busy machine the task
/// may run milliseconds late, and a `recvmmsg` batch holds datagrams that
/// arrived over that time: stamped with one read time, their spacing
/// would reach the sender's delay-based estimator (transport-wide CC
/// feedback, draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1) as
/// queuing that no link caused. The times handed out never go back
/// before one handed out already, nor before [`ReceiveClock::advance`]'s,
/// so the sans-IO core sees a clock that only moves forward.
///
/// natter-server's SFU worker uses it too, with the timestamps its
/// `recvmmsg` reads ([`crate::batch::RecvBatch::received_at`]).
#[derive(Debug, Default)]
pub struct ReceiveClock {
    floor: Option<Instant>,
}

impl ReceiveClock {
    /// The core was given `now` (a timeout, a flush).
    pub fn advance(&mut self, now: Instant) {
        self.floor = Some(self.floor.map_or(now, |f| f.max(now)));
    }

    /// When the datagram `meta` describes arrived (see
    /// [`ReceiveClock::arrival_at`]).
    pub(crate) fn arrival(&mut self, meta: &RecvMeta, now: Instant, wall: SystemTime) -> Instant {
        self.arrival_at(meta.timestamp, now, wall)
    }

    /// When a datagram the kernel stamped `kernel_time` (Unix time, the
    /// wall clock) arrived, on the monotonic clock: `now` and `wall` are
    /// read together when it is handled. Without a timestamp, or with
    /// one the wall clock makes implausible, `now`.
    pub fn arrival_at(&mut self, kernel_time: Option<Duration>, now: Instant, wall: SystemTime) -> Instant {
        let lag = kernel_time.and_then(|stamp| {
            let wall = wall.duration_since(SystemTime::UNIX_EPOCH).ok()?;
            Some(wall.saturating_sub(stamp)).filter(|lag| *lag <= MAX_RECEIVE_LAG)
        });
        let at = lag.and_then(|lag| now.checked_sub(lag)).unwrap_or(now);
        let at = self.floor.map_or(at, |f| at.max(f));
        self.floor = Some(at);
        at
    }
}

/// `buf` as [`RECEIVE_BUFFERS`] receive buffers of `slot` bytes.
pub(crate) fn receive_buffers(buf: &mut [u8], slot: usize) -> [IoSliceMut<'_>; RECEIVE_BUFFERS] {
    let mut slots = buf.chunks_mut(slot);
    std::array::from_fn(|_| IoSliceMut::new(slots.next().unwrap_or_default()))
}

/// The datagrams of one filled receive buffer: GRO puts several of one
/// size (`stride`, the last maybe shorter) back to back.
pub(crate) fn datagrams<'a>(buf: &'a [u8], meta: &RecvMeta) -> impl Iterator<Item = &'a [u8]> + 'a {
    let filled = &buf[..meta.len.min(buf.len())];
    filled.chunks(meta.stride.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[tokio::test]
    async fn a_gso_batch_arrives_as_its_datagrams() {
        let socket = UdpSocket::bind(loopback(), None).unwrap();
        let peer = std::net::UdpSocket::bind(loopback()).unwrap();
        let data: Vec<u8> = (0..250u32).map(|i| (i / 100) as u8).collect();
        let transmit = Transmit {
            transport: natter_ice::Transport::Udp,
            source: socket.address,
            destination: peer.local_addr().unwrap(),
            size: data.len(),
            segment_size: Some(100),
        };
        socket.send(&transmit, &data).await.unwrap();
        let mut buf = [0u8; 1500];
        for (i, len) in [100, 100, 50].into_iter().enumerate() {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!((n, from), (len, socket.address));
            assert!(
                buf[..n].iter().all(|&b| usize::from(b) == i),
                "datagram {i} holds its own bytes"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn datagrams_to_several_destinations_leave_in_one_sendmmsg() {
        let mut socket = UdpSocket::bind(loopback(), None).unwrap();
        let peers: Vec<std::net::UdpSocket> = (0..4).map(|_| std::net::UdpSocket::bind(loopback()).unwrap()).collect();
        for round in 0..3u8 {
            for (i, peer) in peers.iter().enumerate() {
                socket.queue(peer.local_addr().unwrap(), &[i as u8, round]).await;
            }
        }
        assert_eq!(socket.queued.system_calls(), 0, "12 datagrams wait for the flush");
        socket.flush().await;
        assert_eq!(
            socket.queued.system_calls(),
            1,
            "12 datagrams to 4 destinations in one sendmmsg"
        );
        let mut buf = [0u8; 16];
        for (i, peer) in peers.iter().enumerate() {
            // A guard against a hang, not a timing assertion.
            peer.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            for round in 0..3u8 {
                let (n, from) = peer.recv_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], from), (&[i as u8, round][..], socket.address));
            }
        }
    }

    fn stamped(wall: SystemTime, before: Duration) -> RecvMeta {
        let stamp = wall.duration_since(SystemTime::UNIX_EPOCH).unwrap() - before;
        // Non-exhaustive: no struct expression.
        let mut meta = RecvMeta::default();
        meta.timestamp = Some(stamp);
        meta
    }

    #[test]
    fn arrival_is_the_kernel_timestamp_not_the_read() {
        let (now, wall) = (Instant::now() + Duration::from_secs(10), SystemTime::now());
        let mut clock = ReceiveClock::default();
        // A batch read at once: three datagrams 5 ms apart, the last 2 ms
        // before the read, keep their spacing.
        let ms = Duration::from_millis;
        let times: Vec<Instant> = [12, 7, 2]
            .map(|before| clock.arrival(&stamped(wall, ms(before)), now, wall))
            .into();
        assert_eq!(times, [now - ms(12), now - ms(7), now - ms(2)]);
        // No timestamp: when it was read.
        assert_eq!(clock.arrival(&RecvMeta::default(), now, wall), now);
    }

    #[test]
    fn arrival_never_goes_back() {
        let (now, wall) = (Instant::now() + Duration::from_secs(10), SystemTime::now());
        let ms = Duration::from_millis;
        let mut clock = ReceiveClock::default();
        clock.advance(now - ms(4));
        // Before the core's last time: that time.
        assert_eq!(clock.arrival(&stamped(wall, ms(9)), now, wall), now - ms(4));
        assert_eq!(clock.arrival(&stamped(wall, ms(1)), now, wall), now - ms(1));
        // Reordered stamps: not before the one handed out.
        assert_eq!(clock.arrival(&stamped(wall, ms(3)), now, wall), now - ms(1));
    }

    #[test]
    fn an_implausible_timestamp_is_the_read_time() {
        let (now, wall) = (Instant::now() + Duration::from_secs(10), SystemTime::now());
        let mut clock = ReceiveClock::default();
        // The wall clock stepped forward since the datagram arrived.
        assert_eq!(clock.arrival(&stamped(wall, Duration::from_secs(5)), now, wall), now);
        // Or back: a timestamp after the wall clock's now.
        let later = stamped(wall + Duration::from_secs(3), Duration::ZERO);
        assert_eq!(clock.arrival(&later, now, wall), now);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_received_datagram_carries_its_kernel_timestamp() {
        let socket = UdpSocket::bind(loopback(), None).unwrap();
        let peer = std::net::UdpSocket::bind(loopback()).unwrap();
        peer.send_to(&[1; 40], socket.address).unwrap();
        let slot = 1500;
        let mut buf = vec![0u8; slot * RECEIVE_BUFFERS];
        let mut meta = [RecvMeta::default(); RECEIVE_BUFFERS];
        let mut bufs = receive_buffers(&mut buf, slot);
        let filled = std::future::poll_fn(|cx| socket.poll_recv(cx, &mut bufs, &mut meta))
            .await
            .unwrap();
        assert_eq!(filled, 1);
        let stamp = meta[0].timestamp.expect("SO_TIMESTAMPNS gives a receive timestamp");
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert!(stamp <= wall, "received at {stamp:?}, before the wall clock's {wall:?}");
    }

    #[tokio::test]
    async fn what_waits_is_read_in_one_batch() {
        let socket = UdpSocket::bind(loopback(), None).unwrap();
        let peer = std::net::UdpSocket::bind(loopback()).unwrap();
        for i in 0..5u8 {
            peer.send_to(&[i; 40], socket.address).unwrap();
        }
        let slot = 65_535;
        let mut buf = vec![0u8; slot * RECEIVE_BUFFERS];
        let mut meta = [RecvMeta::default(); RECEIVE_BUFFERS];
        let mut received = Vec::new();
        while received.len() < 5 {
            let mut bufs = receive_buffers(&mut buf, slot);
            let filled = std::future::poll_fn(|cx| socket.poll_recv(cx, &mut bufs, &mut meta))
                .await
                .unwrap();
            for (b, m) in buf.chunks(slot).zip(&meta).take(filled) {
                assert_eq!(m.addr, peer.local_addr().unwrap());
                received.extend(datagrams(b, m).map(<[u8]>::to_vec));
            }
        }
        let expected: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 40]).collect();
        assert_eq!(received, expected);
    }
}
