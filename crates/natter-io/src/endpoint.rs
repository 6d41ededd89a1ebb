//! [`Endpoint`]: many peer connections on the same sockets, in one task.

use std::net::SocketAddr;
use std::sync::Arc;

use natter::endpoint::EndpointStats;
use natter::peer::{PeerConfig, PeerEvent};
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Driver, Envelope, Life};
use crate::{Config, Error, PeerConnection};

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
    commands: mpsc::Sender<Envelope>,
    local_addresses: Vec<SocketAddr>,
    /// What [`Endpoint::connect`] makes connections with.
    peer: PeerConfig,
    _life: Arc<Life>,
}

impl Endpoint {
    /// Binds the sockets of `config.local_addresses` and starts the task
    /// on the current tokio runtime. `config.peer` is what
    /// [`Endpoint::connect`] makes connections with (a certificate given
    /// there is shared by all of them; `None` makes one each).
    pub fn bind(config: Config) -> Result<Endpoint, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let peer = config.peer.clone();
        let (driver, commands, life) = Driver::bind(config, true)?;
        let local_addresses = driver.local_addresses().to_vec();
        runtime.spawn(driver.run());
        Ok(Endpoint {
            commands,
            local_addresses,
            peer,
            _life: life,
        })
    }

    /// The addresses of the sockets: every connection's host candidates.
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    /// A new connection with the endpoint's [`PeerConfig`].
    pub async fn connect(&self) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), Error> {
        self.connect_with(self.peer.clone()).await
    }

    /// A new connection with a configuration of its own, such as ICE
    /// credentials chosen for it.
    pub async fn connect_with(&self, peer: PeerConfig) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), Error> {
        let (reply, answer) = oneshot::channel();
        let envelope = Envelope::Connect(Box::new(peer), reply);
        self.commands.send(envelope).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// What the endpoint routed and dropped.
    pub async fn stats(&self) -> Result<EndpointStats, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Envelope::Stats(reply))
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}
