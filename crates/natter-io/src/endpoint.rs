//! [`Endpoint`]: many peer connections on the same sockets, in one task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use natter::endpoint::EndpointStats;
use natter::peer::{PeerConfig, PeerEvent};
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Connected, Driver, Envelope, Life};
use crate::{Config, Error, LocalAddresses, PeerConnection, RtpPacket};

/// Sockets shared by many peer connections, as a server holding many
/// calls has: one task owns the sockets, the sans-IO
/// [`natter::endpoint::Endpoint`] that routes their datagrams (by ICE
/// ufrag, transaction and address; RFC 7983) and every connection made
/// with [`Endpoint::connect`]. Each connection is a [`PeerConnection`]
/// handle like one of [`PeerConnection::spawn`], with its own events.
///
/// The task ends once every handle (the endpoint's and its connections')
/// is dropped. A connection ends with its [`PeerConnection::close`] or
/// when its handles are dropped; the others carry on.
///
/// ```no_run
/// # async fn example() -> Result<(), natter_io::Error> {
/// use natter_io::{Config, Endpoint, LocalAddresses, PeerConfig};
///
/// let endpoint = Endpoint::bind(Config {
///     local_addresses: LocalAddresses::Addresses(vec!["0.0.0.0:3478".parse().unwrap()]),
///     peer: PeerConfig { ice_lite: true, ..PeerConfig::default() },
///     ..Config::default()
/// })?;
/// let (pc, mut events) = endpoint.connect().await?;
/// // pc.set_remote_description(offer).await?; pc.create_answer().await? ...
/// # let _ = (pc, events.recv().await);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Endpoint {
    workers: Arc<[Worker]>,
    /// Every worker's socket addresses.
    local_addresses: Vec<SocketAddr>,
    /// The worker the next connection goes to.
    next: Arc<AtomicUsize>,
    /// What [`Endpoint::connect`] makes connections with.
    peer: PeerConfig,
}

/// One task with its sockets and its connections.
#[derive(Debug)]
struct Worker {
    commands: mpsc::Sender<Envelope>,
    _life: Arc<Life>,
}

impl Endpoint {
    /// Binds the sockets of `config.local_addresses` and starts the task
    /// on the current tokio runtime. `config.peer` is what
    /// [`Endpoint::connect`] makes connections with (a certificate given
    /// there is shared by all of them; `None` makes one each).
    pub fn bind(config: Config) -> Result<Endpoint, Error> {
        Endpoint::bind_workers(config, 1)
    }

    /// Like [`Endpoint::bind`] with `workers` tasks (one per core on a
    /// multi-threaded runtime: the DESIGN's media workers), each with
    /// sockets and connections of its own and no state shared with the
    /// others. Worker `i` binds each address of `config.local_addresses`
    /// on its port plus `i` (or any free port for port 0); connections
    /// go to the workers in turn.
    pub fn bind_workers(config: Config, workers: usize) -> Result<Endpoint, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let addresses = config.local_addresses.resolve()?;
        let mut drivers = Vec::new();
        for i in 0..workers.max(1) {
            let offset = u16::try_from(i).unwrap_or(u16::MAX);
            let ports = addresses.iter().map(|a| match a.port() {
                0 => SocketAddr::new(a.ip(), 0),
                port => SocketAddr::new(a.ip(), port.saturating_add(offset)),
            });
            let config = Config {
                local_addresses: LocalAddresses::Addresses(ports.collect()),
                ..config.clone()
            };
            drivers.push(Driver::bind(config, true)?);
        }
        let local_addresses = drivers
            .iter()
            .flat_map(|(d, _, _)| d.local_addresses().to_vec())
            .collect();
        let workers = drivers
            .into_iter()
            .map(|(driver, commands, life)| {
                runtime.spawn(driver.run());
                Worker { commands, _life: life }
            })
            .collect();
        Ok(Endpoint {
            workers,
            local_addresses,
            next: Arc::default(),
            peer: config.peer,
        })
    }

    /// The addresses of the sockets: every connection's host candidates
    /// are those of its worker.
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    /// A new connection with the endpoint's [`PeerConfig`].
    pub async fn connect(&self) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), Error> {
        self.connect_with(self.peer.clone()).await
    }

    /// A new connection with a configuration of its own, such as ICE
    /// credentials chosen for it. One in RTP mode
    /// ([`PeerConfig::rtp_mode`]) is made with [`Endpoint::connect_rtp`].
    pub async fn connect_with(&self, peer: PeerConfig) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), Error> {
        if peer.rtp_mode {
            return Err(Error::RtpMode);
        }
        let (pc, events, _) = self.make(peer).await?;
        Ok((pc, events))
    }

    /// A new connection in RTP mode (natter's media API for forwarding,
    /// see [`crate::RtpPacket`]): its handle, its events, and the RTP
    /// packets it receives.
    pub async fn connect_rtp(
        &self,
        mut peer: PeerConfig,
    ) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>, mpsc::Receiver<RtpPacket>), Error> {
        peer.rtp_mode = true;
        let (pc, events, rtp) = self.make(peer).await?;
        // A connection in RTP mode always has its packets' channel.
        Ok((pc, events, rtp.expect("an RTP-mode connection has an RTP channel")))
    }

    async fn make(&self, peer: PeerConfig) -> Result<Connected, Error> {
        let worker = &self.workers[self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len()];
        let (reply, answer) = oneshot::channel();
        let envelope = Envelope::Connect(Box::new(peer), reply);
        worker.commands.send(envelope).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// What the endpoint routed and dropped, summed over its workers.
    pub async fn stats(&self) -> Result<EndpointStats, Error> {
        let mut total = EndpointStats::default();
        for worker in self.workers.iter() {
            let (reply, answer) = oneshot::channel();
            worker
                .commands
                .send(Envelope::Stats(reply))
                .await
                .map_err(|_| Error::Closed)?;
            total += answer.await.map_err(|_| Error::Closed)??;
        }
        Ok(total)
    }
}
