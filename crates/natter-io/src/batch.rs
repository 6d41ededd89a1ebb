//! Batched UDP system calls: `recvmmsg` and `sendmmsg` (Linux), so a
//! worker moves many datagrams per kernel crossing. natter-io sends
//! datagrams to different destinations with [`SendBatch`] (waiting for
//! room when the socket buffer is full); natter-server's TURN workers
//! receive with [`RecvBatch`] and send with [`SendBatch::flush`]
//! (dropping what a full buffer refuses), as does the SFU's media
//! worker, which also reads each datagram's kernel receive time
//! ([`enable_receive_timestamps`]). This is the I/O edge and the only
//! place in natter-io with `unsafe`.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::Duration;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Room for one datagram (and headroom in front of it).
pub const SLOT: usize = 4096;
/// Room for one datagram's control messages, in `u64`s (which keep
/// `cmsghdr`'s alignment): a receive timestamp (`SCM_TIMESTAMPNS`, 32
/// bytes with its header) and headroom.
const CONTROL: usize = 8;

/// Asks the kernel to stamp each datagram received on `fd` with the
/// time it arrived (`SO_TIMESTAMPNS`), which [`RecvBatch::received_at`]
/// then reads.
pub fn enable_receive_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a c_int that outlives the call, and the length
    // given is its size.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receive buffers for up to [`BATCH`] datagrams.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    truncated: Vec<bool>,
    control: Vec<[u64; CONTROL]>,
    stamps: Vec<Option<Duration>>,
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![0; SLOT * BATCH],
            // SAFETY: sockaddr_storage is plain old data; all zeros is valid.
            addrs: vec![unsafe { mem::zeroed() }; BATCH],
            lens: vec![0; BATCH],
            truncated: vec![false; BATCH],
            control: vec![[0; CONTROL]; BATCH],
            stamps: vec![None; BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// Receives what is queued on `fd` (non-blocking), each datagram at
    /// `offset` in its slot. Returns how many arrived; 0 when none.
    pub fn recv(&mut self, fd: RawFd, offset: usize) -> io::Result<usize> {
        let room = SLOT - offset;
        // On the stack: the packet path allocates nothing.
        // SAFETY: iovec and mmsghdr are plain old data; all zeros is valid.
        let (mut iovecs, mut msgs): ([libc::iovec; BATCH], [libc::mmsghdr; BATCH]) = unsafe { mem::zeroed() };
        for (iov, slot) in iovecs.iter_mut().zip(self.bufs.chunks_exact_mut(SLOT)) {
            iov.iov_base = slot[offset..].as_mut_ptr().cast();
            iov.iov_len = room;
        }
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_iov = &mut iovecs[i];
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_control = self.control[i].as_mut_ptr().cast();
            m.msg_hdr.msg_controllen = mem::size_of::<[u64; CONTROL]>() as _;
        }
        // SAFETY: every pointer in `msgs` points into `iovecs`, `self.addrs`,
        // `self.control` and `self.bufs`, which outlive the call and are not
        // moved during it; the lengths given match those buffers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            self.count = 0;
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        self.count = n as usize;
        for (i, m) in msgs.iter().take(self.count).enumerate() {
            self.lens[i] = m.msg_len as usize;
            self.truncated[i] = m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.stamps[i] = receive_timestamp(&m.msg_hdr);
        }
        Ok(self.count)
    }

    /// When the `i`th datagram arrived, as the kernel stamped it (Unix
    /// time, the wall clock); `None` unless [`enable_receive_timestamps`]
    /// was called on the socket.
    pub fn received_at(&self, i: usize) -> Option<Duration> {
        self.stamps[i]
    }

    /// The `i`th datagram: its source, its whole slot (datagram at the
    /// offset given to `recv`), its length, and whether it was cut short.
    pub fn get(&mut self, i: usize) -> (Option<SocketAddr>, &mut [u8], usize, bool) {
        let addr = from_storage(&self.addrs[i]);
        let slot = &mut self.bufs[i * SLOT..(i + 1) * SLOT];
        (addr, slot, self.lens[i], self.truncated[i])
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received datagram, if the
/// kernel wrote one.
fn receive_timestamp(header: &libc::msghdr) -> Option<Duration> {
    // SAFETY: `header` is one `recvmmsg` filled: its control pointer and
    // the length the kernel set bound the messages the CMSG macros walk;
    // the data of an SCM_TIMESTAMPNS message is a timespec, read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let time: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(Duration::new(time.tv_sec as u64, time.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// Datagrams queued for one socket, sent with one `sendmmsg` per batch.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    entries: Vec<(usize, usize, SocketAddr)>,
    /// The entries before this one are sent (or dropped).
    sent: usize,
    system_calls: u64,
    drops: SendDrops,
}

/// What [`SendBatch::flush`] gave up, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendDrops {
    /// The socket buffer was full (`EAGAIN`) or the kernel had no
    /// buffers (`ENOBUFS`).
    pub full: u64,
    /// Any other error (an unreachable destination, a bad address).
    pub refused: u64,
}

impl SendBatch {
    pub fn push(&mut self, to: SocketAddr, bytes: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.entries.push((start, bytes.len(), to));
    }

    /// How many datagrams wait.
    pub fn len(&self) -> usize {
        self.entries.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `sendmmsg` calls made so far.
    pub fn system_calls(&self) -> u64 {
        self.system_calls
    }

    /// The datagrams [`SendBatch::flush`] dropped so far.
    pub fn drops(&self) -> SendDrops {
        self.drops
    }

    /// Sends up to [`BATCH`] waiting datagrams on `fd` with one
    /// `sendmmsg`; how many the kernel took. An error (`WouldBlock` when
    /// the socket buffer is full) concerns the first waiting datagram,
    /// which stays queued: [`SendBatch::skip`] gives it up.
    pub fn send_some(&mut self, fd: RawFd) -> io::Result<usize> {
        let chunk = &self.entries[self.sent..(self.sent + BATCH).min(self.entries.len())];
        if chunk.is_empty() {
            return Ok(0);
        }
        // On the stack: the packet path allocates nothing.
        // SAFETY: these are plain old data; all zeros is valid.
        let (mut addrs, mut iovecs, mut msgs): (
            [libc::sockaddr_storage; BATCH],
            [libc::iovec; BATCH],
            [libc::mmsghdr; BATCH],
        ) = unsafe { mem::zeroed() };
        for (i, &(start, len, to)) in chunk.iter().enumerate() {
            let namelen = to_storage(&to, &mut addrs[i]);
            iovecs[i] = libc::iovec {
                iov_base: self.data[start..].as_ptr() as *mut libc::c_void,
                iov_len: len,
            };
            let m = &mut msgs[i];
            m.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = namelen;
            m.msg_hdr.msg_iov = &mut iovecs[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        self.system_calls += 1;
        // SAFETY: the headers point into `addrs`, `iovecs` and
        // `self.data`, all alive and unmoved for the call; the kernel
        // only reads the iovec buffers.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), chunk.len() as libc::c_uint, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.advance(n as usize);
        Ok(n as usize)
    }

    /// Gives up the first waiting datagram (one the kernel refused).
    pub fn skip(&mut self) {
        self.advance(1);
    }

    fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.entries.len());
        if self.sent == self.entries.len() {
            self.data.clear();
            self.entries.clear();
            self.sent = 0;
        }
    }

    /// Sends everything queued on `fd`; datagrams the kernel will not
    /// take now (a full socket buffer) are dropped, as UDP allows.
    /// Returns how many were dropped.
    pub fn flush(&mut self, fd: RawFd) -> usize {
        let mut dropped = 0;
        while !self.is_empty() {
            match self.send_some(fd) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // Skip the datagram the kernel refused (full buffer, or an
                // unreachable destination) and go on with the rest.
                Err(error) => {
                    self.skip();
                    dropped += 1;
                    let full = error.kind() == io::ErrorKind::WouldBlock || error.raw_os_error() == Some(libc::ENOBUFS);
                    if full {
                        self.drops.full += 1;
                    } else {
                        self.drops.refused += 1;
                    }
                }
            }
        }
        dropped
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, which
            // is smaller than sockaddr_storage and has no stricter alignment.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` into `out`; returns its length.
fn to_storage(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let sa = socket2::SockAddr::from(*addr);
    // SAFETY: SockAddr holds a valid sockaddr_storage of `len()` bytes.
    *out = unsafe { *sa.as_ptr().cast::<libc::sockaddr_storage>() };
    sa.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Two loopback sockets, the second non-blocking.
    fn sender_and_receiver() -> (std::net::UdpSocket, std::net::UdpSocket) {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn a_batch_crosses_loopback_in_both_directions() {
        let (a, b) = sender_and_receiver();
        let mut out = SendBatch::default();
        for i in 0..40u8 {
            out.push(b.local_addr().unwrap(), &[i; 10]);
        }
        assert_eq!(out.flush(a.as_raw_fd()), 0);
        assert_eq!(out.system_calls(), 2, "40 datagrams in batches of {BATCH}");
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 40 {
            assert!(std::time::Instant::now() < deadline, "only {} of 40 arrived", got.len());
            let n = batch.recv(b.as_raw_fd(), 48).unwrap();
            for i in 0..n {
                let (from, slot, len, truncated) = batch.get(i);
                assert_eq!(from, Some(a.local_addr().unwrap()));
                assert!(!truncated);
                got.push(slot[48..48 + len].to_vec());
            }
        }
        assert!(got.iter().enumerate().all(|(i, d)| d == &vec![i as u8; 10]));
        assert_eq!(out.drops(), SendDrops::default());
    }

    #[test]
    fn received_datagrams_carry_the_kernel_time_once_asked() {
        let (a, b) = sender_and_receiver();
        let mut batch = RecvBatch::default();
        let mut stamps = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for stamped in [false, true] {
            if stamped {
                enable_receive_timestamps(b.as_raw_fd()).unwrap();
            }
            a.send_to(&[1; 20], b.local_addr().unwrap()).unwrap();
            loop {
                assert!(std::time::Instant::now() < deadline, "the datagram did not arrive");
                if batch.recv(b.as_raw_fd(), 0).unwrap() == 1 {
                    break;
                }
            }
            stamps.push(batch.received_at(0));
        }
        assert_eq!(stamps[0], None, "no timestamp before SO_TIMESTAMPNS");
        let stamp = stamps[1].expect("SO_TIMESTAMPNS gives a receive timestamp");
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!(stamp <= wall, "received at {stamp:?}, before the wall clock's {wall:?}");
    }

    #[test]
    fn a_refused_datagram_is_dropped_and_counted_as_refused() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut out = SendBatch::default();
        // An IPv6 destination from an IPv4 socket: EAFNOSUPPORT.
        out.push("[::1]:9".parse().unwrap(), &[0; 10]);
        out.push(b.local_addr().unwrap(), &[1; 10]);
        assert_eq!(out.flush(a.as_raw_fd()), 1);
        assert_eq!(out.drops(), SendDrops { full: 0, refused: 1 });
        let mut buf = [0u8; 16];
        b.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        assert_eq!(b.recv(&mut buf).unwrap(), 10, "the next datagram left");
    }
}
