//! The UDP front end: a relay between the clients of a listening socket
//! and one upstream address, through a [`Link`] in each direction.
//!
//! Each client (a source address seen on the listening socket) gets its
//! own upstream socket, so the upstream sees one address per client and
//! its replies find their way back; nothing else about a NAT is
//! imitated. Both directions are one link each, shared by every client,
//! as a bottleneck is.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::LinkConfig;
use crate::error::ConfigError;
use crate::link::Link;
use crate::stats::LinkStats;

/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;

/// Datagrams from upstream sockets waiting for the relay.
const UPSTREAM_QUEUE: usize = 1024;
/// The kernel buffers asked for on every socket of the relay (capped by
/// `net.core.rmem_max` and `wmem_max`; best effort). With the 208 KiB
/// default, about 90 datagrams of 1.2 KB on loopback, a congestion
/// window released at once overflowed the listening socket before the
/// relay read it: natter's data channel at 50 ms RTT lost 82 of 17,187
/// packets that no link was configured to drop (`UdpRcvbufErrors`), and
/// stayed at 1.7 MB/s.
const SOCKET_BUFFER: usize = 4 << 20;

/// What a proxy relays and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyConfig {
    /// Where clients send to.
    pub listen: SocketAddr,
    /// Where their datagrams go.
    pub upstream: SocketAddr,
    /// From clients to the upstream.
    pub up: LinkConfig,
    /// From the upstream to clients.
    pub down: LinkConfig,
    /// The up link's seed; the down link's is the next number.
    pub seed: u64,
}

/// A proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub up: LinkStats,
    pub down: LinkStats,
    /// Clients seen so far.
    pub clients: u64,
    /// Sends and receives that failed (an ICMP error for an earlier
    /// datagram, a full socket buffer), skipped.
    pub socket_errors: u64,
}

/// A proxy running on its own thread, for tests in the same process.
/// Dropping it stops the relay.
#[derive(Debug)]
pub struct Proxy {
    local_addr: SocketAddr,
    stats: watch::Receiver<ProxyStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Proxy {
    /// Binds `config.listen` (port 0 picks one) and starts relaying.
    pub fn start(config: ProxyConfig) -> io::Result<Proxy> {
        let socket = std::net::UdpSocket::bind(config.listen)?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        let (publish, stats) = watch::channel(ProxyStats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new()
            .name(format!("natter-impair {local_addr}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let socket = UdpSocket::from_std(socket)?;
                    relay(socket, config, publish, async move {
                        // An error means the Proxy is gone: stop as well.
                        let _ = stopped.await;
                    })
                    .await
                })
            })?;
        Ok(Proxy {
            local_addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters as of the relay's last event.
    pub fn stats(&self) -> ProxyStats {
        *self.stats.borrow()
    }

    /// Waits up to `limit` until `done` holds for the counters; `false`
    /// if it did not, or the relay ended first.
    pub fn wait_for(&self, limit: Duration, done: impl FnMut(&ProxyStats) -> bool) -> bool {
        let mut stats = self.stats.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
        runtime.is_ok_and(|r| {
            r.block_on(async { tokio::time::timeout(limit, stats.wait_for(done)).await })
                .is_ok_and(|changed| changed.is_ok())
        })
    }

    /// Stops the relay; its final counters, or the error that ended it.
    pub fn stop(mut self) -> io::Result<ProxyStats> {
        self.finish()?;
        Ok(self.stats())
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            // An error means the relay has ended already.
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the relay thread panicked")),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Errors were for stop() to report; here the relay only ends.
        let _ = self.finish();
    }
}

/// A datagram in a link, with the client it belongs to.
#[derive(Clone, Debug)]
struct Datagram {
    client: usize,
    data: Vec<u8>,
}

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// A client of the listening socket and its upstream socket.
struct Client {
    addr: SocketAddr,
    upstream: Arc<UdpSocket>,
}

/// Relays between the clients of `listen` and `config.upstream` until
/// `stop` completes, publishing the counters after every event. Fails
/// only if a link's configuration is invalid or an upstream socket
/// cannot be opened; datagrams that cannot be sent or received are
/// counted and skipped.
pub async fn relay(
    listen: UdpSocket,
    config: ProxyConfig,
    publish: watch::Sender<ProxyStats>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let invalid = |e: ConfigError| io::Error::new(io::ErrorKind::InvalidInput, e);
    enlarge_buffers(&listen);
    let now = Instant::now();
    let mut up = Link::new(config.up, config.seed, now).map_err(invalid)?;
    let mut down = Link::new(config.down, config.seed.wrapping_add(1), now).map_err(invalid)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let (from_upstream, mut received) = mpsc::channel::<Datagram>(UPSTREAM_QUEUE);
    let mut socket_errors = 0;
    let mut buf = vec![0; MAX_DATAGRAM];
    tokio::pin!(stop);
    loop {
        let next = up.poll_timeout().into_iter().chain(down.poll_timeout()).min();
        tokio::select! {
            () = &mut stop => return Ok(()),
            result = listen.recv_from(&mut buf) => match result {
                Ok((len, from)) => {
                    let client = match by_addr.get(&from) {
                        Some(&client) => client,
                        None => {
                            let upstream = connect(config.upstream).await?;
                            let client = clients.len();
                            tokio::spawn(read_upstream(Arc::clone(&upstream), client, from_upstream.clone()));
                            clients.push(Client { addr: from, upstream });
                            by_addr.insert(from, client);
                            client
                        }
                    };
                    up.handle_packet(Instant::now(), Datagram { client, data: buf[..len].to_vec() });
                }
                Err(_) => socket_errors += 1,
            },
            Some(datagram) = received.recv() => down.handle_packet(Instant::now(), datagram),
            () = sleep_until(next), if next.is_some() => {}
        }
        let now = Instant::now();
        while let Some(d) = up.poll_packet(now) {
            if clients[d.client].upstream.send(&d.data).await.is_err() {
                socket_errors += 1;
            }
        }
        while let Some(d) = down.poll_packet(now) {
            if listen.send_to(&d.data, clients[d.client].addr).await.is_err() {
                socket_errors += 1;
            }
        }
        publish.send_replace(ProxyStats {
            up: *up.stats(),
            down: *down.stats(),
            clients: clients.len() as u64,
            socket_errors,
        });
    }
}

/// A new upstream socket on an ephemeral port, connected to `upstream`.
async fn connect(upstream: SocketAddr) -> io::Result<Arc<UdpSocket>> {
    let any: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).await?;
    enlarge_buffers(&socket);
    socket.connect(upstream).await?;
    Ok(Arc::new(socket))
}

/// Asks for [`SOCKET_BUFFER`] of receive and send buffer on `socket`.
fn enlarge_buffers(socket: &UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
}

/// Hands what the upstream sends to `client` to the relay, until the
/// relay is gone. Receive errors (ICMP errors for earlier datagrams) are
/// skipped.
async fn read_upstream(socket: Arc<UdpSocket>, client: usize, relay: mpsc::Sender<Datagram>) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let Ok(len) = socket.recv(&mut buf).await else {
            continue;
        };
        let datagram = Datagram {
            client,
            data: buf[..len].to_vec(),
        };
        if relay.send(datagram).await.is_err() {
            return;
        }
    }
}

/// Sleeps until `at`; `select!` polls this only when `at` is `Some`.
async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
