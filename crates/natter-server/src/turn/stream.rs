//! TCP and TLS clients (RFC 8656 §3.1) and RFC 6062 TCP relays, on one
//! thread running tokio. The core lives in a `RefCell` that only this
//! thread's tasks touch, and no borrow is held across an `await`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use natter_turn::{
    AllocateOutcome, AllocateRequest, ClientAction, Event, FiveTuple, RelayTransport, Server, Transport, PEER_HEADROOM,
    PEER_TAILROOM,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::{spawn_local, AbortHandle};
use tokio_rustls::TlsAcceptor;

use super::config::TurnConfig;
use super::{metrics, relay, Shared};

/// Frames queued to one client connection before more are dropped.
const CLIENT_QUEUE: usize = 1024;
/// RFC 6062 §5.2: a Connect gives up after 30 seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed accept (out of descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame on a stream: a STUN header or ChannelData header plus
/// a 16-bit length, padded.
const MAX_FRAME: usize = 20 + 65_535 + 3;

struct State {
    core: Server,
    index: usize,
    shared: Arc<Shared>,
    clients: HashMap<FiveTuple, mpsc::Sender<Vec<u8>>>,
    /// Relayed sockets and the tasks that read them, by announced address.
    relays: HashMap<SocketAddr, (Option<Rc<UdpSocket>>, AbortHandle)>,
    /// Peer connections waiting for ConnectionBind.
    peers: HashMap<u32, TcpStream>,
    /// Spliced connections.
    splices: HashMap<u32, AbortHandle>,
}

type StateRef = Rc<RefCell<State>>;

pub struct StreamWorker {
    tcp: Vec<TcpListener>,
    tls: Vec<(TcpListener, TlsAcceptor)>,
    state: State,
    runtime: tokio::runtime::Runtime,
}

impl StreamWorker {
    pub fn bind(config: &TurnConfig, core: Server, index: usize, shared: Arc<Shared>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let _guard = runtime.enter();
        let mut tcp = Vec::new();
        let mut tls = Vec::new();
        for ip in &config.listening_ips {
            if config.tcp {
                let addr = SocketAddr::new(*ip, config.port);
                tcp.push(listen(addr).with_context(|| format!("TCP {addr}"))?);
            }
            if let Some((cert, key)) = &config.tls {
                let addr = SocketAddr::new(*ip, config.tls_port);
                let acceptor = tls_acceptor(cert, key)?;
                tls.push((listen(addr).with_context(|| format!("TLS {addr}"))?, acceptor));
            }
        }
        Ok(StreamWorker {
            tcp,
            tls,
            state: State {
                core,
                index,
                shared,
                clients: HashMap::new(),
                relays: HashMap::new(),
                peers: HashMap::new(),
                splices: HashMap::new(),
            },
            runtime,
        })
    }

    /// Serves until `stop` completes.
    pub fn run(
        self,
        metrics_addr: Option<SocketAddr>,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let StreamWorker {
            tcp,
            tls,
            state,
            runtime,
        } = self;
        let shared = state.shared.clone();
        let state = Rc::new(RefCell::new(state));
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            if let Some(addr) = metrics_addr {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("metrics {addr}"))?;
                spawn_local(metrics::serve(listener, shared));
            }
            for listener in tcp {
                spawn_local(accept_clients(state.clone(), listener, None));
            }
            for (listener, acceptor) in tls {
                spawn_local(accept_clients(state.clone(), listener, Some(acceptor)));
            }
            spawn_local(timers(state.clone()));
            stop.await;
            tracing::info!("TURN shutting down");
            Ok(())
        })
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = relay::tcp_socket(addr.ip())?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("opening {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading {}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("opening {}", key.display()))?,
    ))
    .with_context(|| format!("reading {}", key.display()))?
    .with_context(|| format!("no private key in {}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP clients, or TLS clients when there is an acceptor.
async fn accept_clients(state: StateRef, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let server = listener.local_addr().ok();
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: back off, then go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tuple = FiveTuple {
            transport: if tls.is_some() { Transport::Tls } else { Transport::Tcp },
            client,
            server: server.unwrap_or(client),
        };
        let state = state.clone();
        match tls.clone() {
            None => {
                spawn_local(serve_client(state, stream, tuple));
            }
            Some(acceptor) => {
                spawn_local(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_client(state, tls, tuple).await,
                        _ => tracing::debug!(client = %client, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

/// Reads STUN and ChannelData frames from one client connection and
/// writes what the core and the relays send it.
async fn serve_client<S: AsyncRead + AsyncWrite + Unpin + 'static>(state: StateRef, mut stream: S, tuple: FiveTuple) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
    state.borrow_mut().clients.insert(tuple, tx);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut reply = vec![0u8; 2048];
    let spliced = 'conn: loop {
        tokio::select! {
            read = stream.read_buf(&mut buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    break 'conn None;
                }
                loop {
                    let len = match natter_stun::stream_frame_len(&buf) {
                        Ok(Some(len)) => len,
                        Ok(None) if buf.len() < MAX_FRAME => break,
                        _ => break 'conn None,
                    };
                    let (out, bind) = handle_frame(&state, tuple, &buf[..len], &mut reply);
                    handle_events(&mut state.borrow_mut());
                    buf.drain(..len);
                    if !out.is_empty() && stream.write_all(&out).await.is_err() {
                        break 'conn None;
                    }
                    if let Some(id) = bind {
                        break 'conn Some(id);
                    }
                }
            }
            Some(frame) = rx.recv() => {
                if stream.write_all(&frame).await.is_err() {
                    break 'conn None;
                }
            }
        }
    };
    state.borrow_mut().clients.remove(&tuple);
    if let Some(id) = spliced {
        splice(&state, stream, id, buf).await;
    }
    let mut st = state.borrow_mut();
    st.core.handle_client_closed(&tuple);
    handle_events(&mut st);
}

/// Hands one frame to the core; returns bytes to write back, and a peer
/// connection id if this connection is now to be spliced.
fn handle_frame(state: &StateRef, tuple: FiveTuple, frame: &[u8], reply: &mut [u8]) -> (Vec<u8>, Option<u32>) {
    let now = Instant::now();
    let mut st = state.borrow_mut();
    match st.core.handle_client(now, tuple, frame, reply) {
        ClientAction::None => (Vec::new(), None),
        ClientAction::Reply(n) => (reply[..n].to_vec(), None),
        ClientAction::Relay { from, to, data } => {
            if let Some((Some(socket), _)) = st.relays.get(&from) {
                // A full socket buffer drops the datagram, as UDP may.
                let _ = socket.try_send_to(data, to);
            }
            (Vec::new(), None)
        }
        ClientAction::Allocate(request) => {
            let outcome = bind(&mut st, &request, state);
            let n = st.core.finish_allocate(now, request.token, outcome, reply);
            (reply[..n].to_vec(), None)
        }
        ClientAction::Connect { id, relay, peer } => {
            drop(st);
            spawn_local(connect(state.clone(), id, relay, peer));
            (Vec::new(), None)
        }
        ClientAction::BindConnection { id, reply: n } => (reply[..n].to_vec(), Some(id)),
    }
}

/// Binds an allocation's relayed socket or listener and starts reading it.
fn bind(st: &mut State, request: &AllocateRequest, state: &StateRef) -> AllocateOutcome {
    if let Err(outcome) = st.shared.acquire(request) {
        return outcome;
    }
    match bind_relay(st, request, state) {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(error = %e, "cannot bind a relayed address");
            st.shared.release(&request.username);
            AllocateOutcome::NoCapacity
        }
    }
}

fn bind_relay(st: &mut State, request: &AllocateRequest, state: &StateRef) -> io::Result<AllocateOutcome> {
    let plan = st.shared.relay.clone();
    let no_ip = || io::Error::new(io::ErrorKind::AddrNotAvailable, "no relay address of that family");
    if request.transport == RelayTransport::Tcp {
        let listener = TcpListener::from_std(plan.bind_tcp(plan.ip(request.family).ok_or_else(no_ip)?)?)?;
        let announced = plan.announced(listener.local_addr()?);
        let task = spawn_local(accept_peers(state.clone(), listener, announced));
        st.relays.insert(announced, (None, task.abort_handle()));
        return Ok(AllocateOutcome::Bound {
            relay: announced,
            additional: None,
            reservation: None,
        });
    }
    let (socket, reserved) = match request.reservation {
        Some(token) => (st.shared.claim(&token).ok_or_else(no_ip)?, None),
        None => plan.bind_udp(plan.ip(request.family).ok_or_else(no_ip)?, request.even_port)?,
    };
    if request.dont_fragment {
        relay::set_dont_fragment(&socket)?;
    }
    let relay = start_udp_relay(st, socket, &plan, state)?;
    let additional = match (request.additional_ipv6, plan.ip(natter_stun::AddressFamily::V6)) {
        (true, Some(ip)) => match plan.bind_udp(ip, None) {
            Ok((s, _)) => Some(start_udp_relay(st, s, &plan, state)?),
            Err(_) => None,
        },
        _ => None,
    };
    Ok(AllocateOutcome::Bound {
        relay,
        additional,
        reservation: reserved.map(|s| st.shared.reserve(s)),
    })
}

fn start_udp_relay(
    st: &mut State,
    socket: std::net::UdpSocket,
    plan: &relay::RelayPlan,
    state: &StateRef,
) -> io::Result<SocketAddr> {
    socket.set_nonblocking(true)?;
    let announced = plan.announced(socket.local_addr()?);
    let socket = Rc::new(UdpSocket::from_std(socket)?);
    let task = spawn_local(read_relay(state.clone(), socket.clone(), announced));
    st.relays.insert(announced, (Some(socket), task.abort_handle()));
    Ok(announced)
}

/// Datagrams from peers to a relayed address of a stream client.
async fn read_relay(state: StateRef, socket: Rc<UdpSocket>, announced: SocketAddr) {
    let mut buf = vec![0u8; PEER_HEADROOM + 65_536 + PEER_TAILROOM];
    loop {
        let end = buf.len() - PEER_TAILROOM;
        let Ok((len, peer)) = socket.recv_from(&mut buf[PEER_HEADROOM..end]).await else {
            continue;
        };
        let mut st = state.borrow_mut();
        if let Some((client, range)) = st.core.handle_peer(Instant::now(), announced, peer, &mut buf, len) {
            if let Some(tx) = st.clients.get(&client) {
                // A client that cannot keep up loses datagrams, as over UDP.
                let _ = tx.try_send(buf[range].to_vec());
            }
        }
    }
}

/// RFC 6062 §5.3: peers connecting to a TCP allocation's relayed address.
async fn accept_peers(state: StateRef, listener: TcpListener, announced: SocketAddr) {
    let mut indication = vec![0u8; 256];
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let mut st = state.borrow_mut();
        if let Some((id, client, n)) = st
            .core
            .handle_peer_connection(Instant::now(), announced, peer, &mut indication)
        {
            if let Some(tx) = st.clients.get(&client) {
                let _ = tx.try_send(indication[..n].to_vec());
            }
            st.peers.insert(id, stream);
        }
    }
}

/// RFC 6062 §5.2: connects from the relayed address to the peer.
async fn connect(state: StateRef, id: u32, announced: SocketAddr, peer: SocketAddr) {
    let bound = state.borrow().shared.relay.bound(announced);
    let attempt = async {
        let socket = relay::tcp_socket(bound.ip())?;
        socket.bind(&bound.into())?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        socket.connect(peer).await
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .ok()
        .and_then(Result::ok);
    let mut reply = vec![0u8; 512];
    let mut st = state.borrow_mut();
    let connected = stream.as_ref().map(|_| peer);
    let Some((client, n)) = st.core.finish_connect(Instant::now(), id, connected, &mut reply) else {
        return;
    };
    if let Some(stream) = stream {
        st.peers.insert(id, stream);
    }
    if let Some(tx) = st.clients.get(&client) {
        let _ = tx.try_send(reply[..n].to_vec());
    }
}

/// RFC 6062 §5.4: from now on the client data connection and the peer
/// connection exchange bytes untouched.
async fn splice<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    state: &StateRef,
    mut client: S,
    id: u32,
    pending: Vec<u8>,
) {
    let Some(mut peer) = state.borrow_mut().peers.remove(&id) else {
        return;
    };
    let run = async move {
        if peer.write_all(&pending).await.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut peer).await;
        }
    };
    // Run the copy as its own task so the allocation's end can abort it.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let task = spawn_local(async move {
        run.await;
        let _ = done_tx.send(());
    });
    state.borrow_mut().splices.insert(id, task.abort_handle());
    let _ = done_rx.await;
    let mut st = state.borrow_mut();
    st.splices.remove(&id);
    st.core.handle_peer_connection_closed(id);
}

/// Expiry sweeps and stats, once a second.
async fn timers(state: StateRef) {
    let mut tick = tokio::time::interval(natter_turn::SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let mut st = state.borrow_mut();
        st.core.handle_timeout(Instant::now());
        handle_events(&mut st);
        st.shared.publish(st.index, &st.core);
    }
}

fn handle_events(st: &mut State) {
    while let Some(event) = st.core.poll_event() {
        match event {
            Event::AllocationClosed {
                client,
                relays,
                username,
                connections,
            } => {
                for r in relays {
                    if let Some((_, task)) = st.relays.remove(&r) {
                        task.abort();
                    }
                }
                for id in connections {
                    st.peers.remove(&id);
                    if let Some(task) = st.splices.remove(&id) {
                        task.abort();
                    }
                }
                st.shared.release(&username);
                tracing::debug!(client = %client.client, user = %username, "allocation closed");
            }
            Event::ConnectionExpired { id } => {
                st.peers.remove(&id);
            }
        }
    }
}
