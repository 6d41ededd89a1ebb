//! `natter turn`: the TURN server's I/O. UDP clients are served by one
//! worker thread per core, each with its own `SO_REUSEPORT` socket, its
//! own [`natter_turn::Server`] core and the relayed sockets of the
//! allocations it made, moving datagrams with `recvmmsg`/`sendmmsg`.
//! TCP and TLS clients, and RFC 6062 TCP relays, are served by one more
//! thread running tokio. Metrics are served over HTTP from that thread.

pub mod config;
pub mod metrics;
mod relay;
pub mod stream;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use natter_turn::auth::Credentials;
use natter_turn::peer_filter::PeerFilter;
use natter_turn::quota::QuotaLedger;
use natter_turn::stats::Stats;
use natter_turn::{AllocateOutcome, AllocateRequest, Server, ServerConfig};
use rand::RngCore;

pub use config::{TurnConfig, TurnOptions};
use relay::RelayPlan;

/// State the workers share; nothing on the packet path locks it.
pub struct Shared {
    pub quota: Mutex<QuotaLedger>,
    /// Each core's counters, published once a second.
    pub stats: Vec<Mutex<Stats>>,
    /// Each core's live allocations.
    pub allocations: Vec<AtomicUsize>,
    pub relay: RelayPlan,
    /// Ports held by EVEN-PORT's R bit (RFC 8656 §7.2), by token; shared
    /// because the request that claims one may reach any worker.
    reservations: Mutex<HashMap<[u8; 8], (std::net::UdpSocket, Instant)>>,
    pub shutdown: AtomicBool,
}

impl Shared {
    /// The sum of every core's counters and allocations.
    pub fn totals(&self) -> (Stats, usize) {
        let mut total = Stats::default();
        for s in &self.stats {
            total.add(&lock(s));
        }
        let allocations = self.allocations.iter().map(|a| a.load(Ordering::Relaxed)).sum();
        (total, allocations)
    }

    fn publish(&self, index: usize, core: &Server) {
        *lock(&self.stats[index]) = *core.stats();
        self.allocations[index].store(core.allocation_count(), Ordering::Relaxed);
        self.expire_reservations(Instant::now());
    }

    /// Charges the quota for an allocation; the caller binds on success
    /// and must call [`Shared::release`] when the allocation ends.
    fn acquire(&self, request: &AllocateRequest) -> Result<(), AllocateOutcome> {
        if lock(&self.quota).acquire(&request.username) {
            Ok(())
        } else {
            Err(AllocateOutcome::QuotaReached)
        }
    }

    /// Holds a reserved socket; returns its RESERVATION-TOKEN.
    fn reserve(&self, socket: std::net::UdpSocket) -> [u8; 8] {
        let token: [u8; 8] = rand::random();
        let until = Instant::now() + natter_turn::RESERVATION_LIFETIME;
        lock(&self.reservations).insert(token, (socket, until));
        token
    }

    /// Takes the socket reserved under `token`, if it is still held.
    fn claim(&self, token: &[u8; 8]) -> Option<std::net::UdpSocket> {
        lock(&self.reservations).remove(token).map(|(socket, _)| socket)
    }

    /// Closes reserved sockets nobody claimed in time.
    fn expire_reservations(&self, now: Instant) {
        lock(&self.reservations).retain(|_, (_, until)| *until > now);
    }

    fn release(&self, username: &str) {
        lock(&self.quota).release(username);
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(config: TurnConfig) -> anyhow::Result<()> {
    start(config, &[])?.run_until(crate::shutdown_signal())
}

/// A TURN server whose sockets are bound and whose UDP workers run.
pub struct Turn {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stream: stream::StreamWorker,
    metrics: Option<SocketAddr>,
}

impl Turn {
    /// Counters and gauges, for a metrics endpoint.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves TCP and TLS clients on this thread until `stop` completes,
    /// then stops the UDP workers.
    pub fn run_until(self, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let result = self.stream.run(self.metrics, stop);
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        result
    }
}

/// Binds every socket of the server and starts its UDP workers.
/// `own_peers`: media endpoints of this process that relayed clients may
/// reach whatever their address (natter serve's SFU socket; see
/// [`PeerFilter::with_own_peers`]).
pub fn start(config: TurnConfig, own_peers: &[SocketAddr]) -> anyhow::Result<Turn> {
    let mut credentials = Credentials::new(&config.realm);
    for (name, password) in &config.users {
        credentials
            .add_user(name, password)
            .with_context(|| format!("user {name}: not a valid OpaqueString"))?;
    }
    for secret in &config.secrets {
        credentials.add_secret(secret);
    }
    if credentials.is_empty() {
        tracing::warn!("no --user or --static-auth-secret: STUN works, every TURN request will be refused");
    }
    let mut nonce_secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut nonce_secret);
    let mut service = Vec::new();
    for ip in config.listening_ips.iter().chain(&config.relay_ips) {
        service.push(SocketAddr::new(*ip, config.port));
        if config.tls.is_some() {
            service.push(SocketAddr::new(*ip, config.tls_port));
        }
    }
    service.extend(config.metrics);
    service.extend(&config.service_addrs);
    let mut own_relays = config.relay_ips.clone();
    own_relays.extend(config.external_ip.map(|(public, _)| public));
    let peer_filter = PeerFilter::new(config.allowed_peers.clone(), config.denied_peers.clone(), service)
        .with_own_relays(&own_relays, config.min_port..=config.max_port)
        .with_own_peers(own_peers);
    let core_config = |seed_index: usize| {
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        seed[0] ^= seed_index as u8;
        let mut c = ServerConfig::new(credentials.clone(), nonce_secret, seed);
        c.peer_filter = peer_filter.clone();
        c.relay_ipv4 = config.relay_ips.iter().any(|ip| ip.is_ipv4());
        c.relay_ipv6 = config.relay_ips.iter().any(|ip| ip.is_ipv6());
        c.tcp_relay = config.tcp_relay;
        c.max_bps = config.max_bps;
        c.nonce_lifetime = std::time::Duration::from_secs(config.nonce_lifetime);
        c
    };
    let cores = config.threads + 1;
    let shared = Arc::new(Shared {
        quota: Mutex::new(QuotaLedger::new(config.user_quota, config.total_quota)),
        stats: (0..cores).map(|_| Mutex::new(Stats::default())).collect(),
        allocations: (0..cores).map(|_| AtomicUsize::new(0)).collect(),
        relay: RelayPlan {
            ips: config.relay_ips.clone(),
            min_port: config.min_port,
            max_port: config.max_port,
            external: config.external_ip,
        },
        reservations: Mutex::new(HashMap::new()),
        shutdown: AtomicBool::new(false),
    });
    let mut threads = Vec::new();
    if config.udp {
        let addrs: Vec<SocketAddr> = config
            .listening_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, config.port))
            .collect();
        for index in 0..config.threads {
            let worker = udp::UdpWorker::new(index, &addrs, new_core(core_config(index)), shared.clone())?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("turn-udp-{index}"))
                    .spawn(move || worker.run())?,
            );
        }
    }
    let stream = stream::StreamWorker::bind(
        &config,
        new_core(core_config(config.threads)),
        config.threads,
        shared.clone(),
    )?;
    tracing::info!(
        realm = %config.realm,
        listening = ?config.listening_ips,
        port = config.port,
        tls_port = config.tls.as_ref().map(|_| config.tls_port),
        relay = ?config.relay_ips,
        threads = config.threads,
        "natter turn ready"
    );
    Ok(Turn {
        shared,
        threads,
        stream,
        metrics: config.metrics,
    })
}

/// Locks a mutex; a panic elsewhere does not make its data unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_core(config: ServerConfig) -> Server {
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Server::new(config, Instant::now(), unix)
}
