//! Binding relayed sockets (RFC 8656 §7.2): a random port in the
//! configured range, an even one (and its successor held in reserve)
//! when EVEN-PORT asks, the DF bit when DONT-FRAGMENT asks; and the
//! mapping between bound addresses and the addresses announced to
//! clients behind `--external-ip`.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use natter_stun::AddressFamily;
use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};

/// Attempts at a random free port before giving up (508).
const BIND_ATTEMPTS: usize = 64;

/// Where relayed sockets live.
#[derive(Debug, Clone)]
pub struct RelayPlan {
    pub ips: Vec<IpAddr>,
    pub min_port: u16,
    pub max_port: u16,
    /// (public, private): announce `public` for sockets on `private`.
    pub external: Option<(IpAddr, IpAddr)>,
}

impl RelayPlan {
    pub fn ip(&self, family: AddressFamily) -> Option<IpAddr> {
        self.ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() == (family == AddressFamily::V4))
    }

    /// The address clients are told for a socket bound at `bound`.
    pub fn announced(&self, bound: SocketAddr) -> SocketAddr {
        match self.external {
            Some((public, private))
                if public.is_ipv4() == bound.is_ipv4() && (private.is_unspecified() || private == bound.ip()) =>
            {
                SocketAddr::new(public, bound.port())
            }
            _ => bound,
        }
    }

    /// The bound address behind an announced one.
    pub fn bound(&self, announced: SocketAddr) -> SocketAddr {
        match self.external {
            Some((public, _)) if announced.ip() == public => {
                let ip = self.ips.iter().copied().find(|ip| ip.is_ipv4() == announced.is_ipv4());
                SocketAddr::new(ip.unwrap_or(announced.ip()), announced.port())
            }
            _ => announced,
        }
    }

    /// Binds a UDP socket on a random port; an even one if `even` is
    /// set, and then, if it is `Some(true)`, the next port too.
    pub fn bind_udp(&self, ip: IpAddr, even: Option<bool>) -> io::Result<(UdpSocket, Option<UdpSocket>)> {
        let mut rng = rand::thread_rng();
        for _ in 0..BIND_ATTEMPTS {
            let mut port = rng.gen_range(self.min_port..=self.max_port);
            if even.is_some() {
                port &= !1;
                if port < self.min_port || port == u16::MAX {
                    continue;
                }
            }
            let Ok(socket) = UdpSocket::bind((ip, port)) else {
                continue;
            };
            enlarge_buffers(&socket);
            if even == Some(true) {
                match UdpSocket::bind((ip, port + 1)) {
                    Ok(next) => {
                        enlarge_buffers(&next);
                        return Ok((socket, Some(next)));
                    }
                    Err(_) => continue,
                }
            }
            return Ok((socket, None));
        }
        Err(io::Error::new(io::ErrorKind::AddrInUse, "no free relay port"))
    }

    /// Binds a TCP listener for an RFC 6062 allocation; the address is
    /// shared with the outgoing connections made from it.
    pub fn bind_tcp(&self, ip: IpAddr) -> io::Result<std::net::TcpListener> {
        let mut rng = rand::thread_rng();
        for _ in 0..BIND_ATTEMPTS {
            let port = rng.gen_range(self.min_port..=self.max_port);
            // SO_REUSEPORT would let a second allocation share a port that
            // a first one holds; an exclusive bind proves it is free.
            if std::net::TcpListener::bind((ip, port)).is_err() {
                continue;
            }
            let socket = tcp_socket(ip)?;
            if socket.bind(&SocketAddr::new(ip, port).into()).is_ok() && socket.listen(128).is_ok() {
                return Ok(socket.into());
            }
        }
        Err(io::Error::new(io::ErrorKind::AddrInUse, "no free relay port"))
    }
}

/// A relayed socket's kernel buffers: 1 MiB each way, as far as the
/// kernel allows (best effort). A peer's burst arrives on it all at once
/// (a data channel's congestion window over a relayed path); with the
/// 208 KiB default, about 90 datagrams of 1.2 KB, the worker had to read
/// it before the burst ended or lose the rest.
const RELAY_SOCKET_BUFFER: usize = 1 << 20;

/// Asks for [`RELAY_SOCKET_BUFFER`] on `socket`.
fn enlarge_buffers(socket: &UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(RELAY_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(RELAY_SOCKET_BUFFER);
}

/// A TCP socket that may share its local address with others (the relay
/// listener and the connections to peers, RFC 6062 §5.2).
pub fn tcp_socket(ip: IpAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(SocketAddr::new(ip, 0)),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// RFC 8656 §7.2: sets the DF bit on everything the socket sends.
pub fn set_dont_fragment(socket: &UdpSocket) -> io::Result<()> {
    let (level, name, value) = if socket.local_addr()?.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DO)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_DO)
    };
    // SAFETY: a valid fd, and a pointer to an int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RelayPlan {
        RelayPlan {
            ips: vec!["127.0.0.1".parse().unwrap()],
            min_port: 40000,
            max_port: 40999,
            external: None,
        }
    }

    #[test]
    fn even_port_with_reservation() {
        let (a, b) = plan().bind_udp("127.0.0.1".parse().unwrap(), Some(true)).unwrap();
        let port = a.local_addr().unwrap().port();
        assert_eq!(port % 2, 0);
        assert!((40000..=40999).contains(&port));
        assert_eq!(b.unwrap().local_addr().unwrap().port(), port + 1);
        set_dont_fragment(&a).unwrap();
    }

    #[test]
    fn external_address_mapping() {
        let mut p = plan();
        p.external = Some(("203.0.113.5".parse().unwrap(), "127.0.0.1".parse().unwrap()));
        let bound: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let announced = p.announced(bound);
        assert_eq!(announced, "203.0.113.5:40001".parse().unwrap());
        assert_eq!(p.bound(announced), bound);
    }
}
