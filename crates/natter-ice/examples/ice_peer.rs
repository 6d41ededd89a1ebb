//! An ICE peer on a UDP socket, driven through JSON lines on stdin and
//! stdout: the natter side of the interop and NAT tests in tests/ice/,
//! speaking the same protocol as tests/ice/aioice_peer.py.
//!
//! ```text
//! stdout  {"ufrag", "pwd", "candidates": [...]}     when gathering is complete
//! stdin   {"ufrag", "pwd", "candidates": [...]}     the other side's, all of them
//! stdout  {"connected": true, "local": sdp, "remote": sdp}   (or false, "error");
//!         with a relayed local candidate also "relay_protocol": "udp",
//!         "tcp" or "tls" (how the TURN server was reached), and
//!         "turn_tcp_frames" and "turn_tls_frames": the frames read so far
//!         from a plain TCP and from a TLS connection to it
//! stdout  {"pinged": n, "echoed": k}                with --ping n, once every
//!                                                   ping came back or 10 s passed
//! stdout  {"echoed": n}                             when stdin closes
//! ```
//!
//! Without `--ping` the peer echoes every datagram it receives.
//!
//! ```text
//! ice_peer --role controlling|controlled [--host 127.0.0.1] [--stun HOST:PORT]
//!          [--turn HOST:PORT --turn-user U --turn-password P [--turn-transport udp|tcp|tls]
//!           [--turn-ca PEM [--turn-server-name NAME]]]
//!          [--relay-only] [--ping N]
//! ```
//!
//! With `--turn-transport tcp` the TURN server is reached over TCP, as
//! the agent's documentation describes ("TURN over TCP and TLS"): one
//! connection from the host address to the server, opened on the first
//! transmit for it and read without blocking; what arrives is cut into
//! frames with `natter_stun::stream_frame_len`, each passed to
//! `Agent::handle_receive` with `Transport::Tcp` and the server as source.
//!
//! `--turn-transport tls` does the same over TLS (RFC 8656 §3.1), with
//! rustls driven without blocking over that TCP connection: the agent's
//! `Transport::Tls` transmits are its plaintext, and the plaintext it
//! yields is what gets cut into frames. The server's certificate must
//! chain to a certificate in the `--turn-ca` file (a self-signed one will
//! do) and be valid for `--turn-server-name` (default: the address of
//! `--turn`, checked against the certificate's IP addresses).

use std::collections::BTreeSet;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Event, Received, Role, TransportPolicy};
use natter_ice::candidate::{Candidate, CandidateKind, Protocol};
use natter_ice::turn_client::TurnServer;
use natter_ice::{Credentials, Transmit, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use serde_json::{json, Value};

/// How long a pinging peer waits for its echoes.
const PING_PATIENCE: Duration = Duration::from_secs(10);
/// Pings not yet echoed are sent again this often.
const PING_RESEND: Duration = Duration::from_millis(500);
/// The longest the loop sleeps in `recv_from` before looking at stdin.
const STDIN_POLL: Duration = Duration::from_millis(5);
/// How long opening the TCP connection to the TURN server may take.
const TURN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

struct Options {
    role: Role,
    host: IpAddr,
    stun: Option<SocketAddr>,
    turn: Option<TurnServer>,
    turn_ca: Option<PathBuf>,
    turn_server_name: Option<String>,
    relay_only: bool,
    ping: Option<u32>,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut role = None;
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let (mut stun, mut turn_addr, mut user, mut pass) = (None, None, None, None);
    let mut turn_transport = Transport::Udp;
    let (mut turn_ca, mut turn_server_name) = (None, None);
    let (mut relay_only, mut ping) = (false, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--role" => {
                role = Some(match value()?.as_str() {
                    "controlling" => Role::Controlling,
                    "controlled" => Role::Controlled,
                    other => return Err(format!("unknown role {other}")),
                })
            }
            "--host" => host = value()?.parse().map_err(|e| format!("--host: {e}"))?,
            "--stun" => stun = Some(value()?.parse().map_err(|e| format!("--stun: {e}"))?),
            "--turn" => turn_addr = Some(value()?.parse().map_err(|e| format!("--turn: {e}"))?),
            "--turn-user" => user = Some(value()?),
            "--turn-password" => pass = Some(value()?),
            "--turn-transport" => {
                turn_transport = match value()?.as_str() {
                    "udp" => Transport::Udp,
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    other => return Err(format!("unknown TURN transport {other} (udp, tcp or tls)")),
                }
            }
            "--turn-ca" => turn_ca = Some(PathBuf::from(value()?)),
            "--turn-server-name" => turn_server_name = Some(value()?),
            "--relay-only" => relay_only = true,
            "--ping" => ping = Some(value()?.parse().map_err(|e| format!("--ping: {e}"))?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let turn = match (turn_addr, user, pass) {
        (Some(address), Some(username), Some(password)) => Some(TurnServer {
            address,
            transport: turn_transport,
            username,
            password,
        }),
        (None, None, None) => None,
        _ => return Err("--turn needs --turn-user and --turn-password".into()),
    };
    if turn.as_ref().is_some_and(|t| t.transport == Transport::Tls) != turn_ca.is_some() {
        return Err("--turn-ca goes with --turn-transport tls, and is required by it".into());
    }
    if turn_server_name.is_some() && turn_ca.is_none() {
        return Err("--turn-server-name goes with --turn-transport tls".into());
    }
    Ok(Options {
        role: role.ok_or("--role is required")?,
        host,
        stun,
        turn,
        turn_ca,
        turn_server_name,
        relay_only,
        ping,
    })
}

fn emit(value: Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the test is gone; nothing to report to.
    let _ = writeln!(out, "{value}").and_then(|()| out.flush());
}

/// The other side's credentials and candidates.
fn remote_offer(line: &str) -> Result<(Credentials, Vec<Candidate>), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad offer: {e}"))?;
    let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("offer without {k}"));
    let credentials = Credentials {
        ufrag: field("ufrag")?,
        pwd: field("pwd")?,
    };
    let candidates = v["candidates"]
        .as_array()
        .ok_or("offer without candidates")?
        .iter()
        .map(|c| {
            let sdp = c.as_str().ok_or("a candidate is not a string")?;
            sdp.parse::<Candidate>().map_err(|e| format!("candidate {sdp:?}: {e}"))
        })
        .collect::<Result<_, String>>()?;
    Ok((credentials, candidates))
}

fn main() {
    let options = parse_args().unwrap_or_else(|e| {
        eprintln!("ice_peer: {e}");
        std::process::exit(2)
    });
    if let Err(e) = run(options) {
        eprintln!("ice_peer: {e}");
        std::process::exit(1)
    }
}

/// One agent and its I/O: the UDP socket of its host candidate and, with
/// TURN over TCP or TLS, the connection to the TURN server.
struct Peer {
    agent: Agent,
    socket: UdpSocket,
    local: SocketAddr,
    /// How to open TLS to the TURN server, with `--turn-transport tls`.
    tls: Option<TlsClient>,
    turn: Option<TurnConnection>,
    /// Frames read so far from TURN connections over plain TCP.
    turn_tcp_frames: u64,
    /// Frames read so far from TURN connections over TLS.
    turn_tls_frames: u64,
    ping: Option<u32>,
    pings_back: BTreeSet<Vec<u8>>,
    echoed: u64,
}

/// The connection from the host address to the TURN server.
struct TurnConnection {
    server: SocketAddr,
    stream: TurnStream,
    /// Bytes read (plaintext, with TLS) and not yet cut into frames.
    incoming: Vec<u8>,
}

/// What a TLS connection to the TURN server needs: whom to trust, and
/// the name the certificate must be valid for.
struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    fn new(ca: &Path, server_name: ServerName<'static>) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--turn-ca {}: {e}", ca.display()))? {
            let cert = cert.map_err(|e| format!("--turn-ca {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("--turn-ca {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("--turn-ca {}: no certificate in it", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// The byte stream to the TURN server: the TCP connection itself, or a
/// rustls session over it. Nothing here blocks: `queue` takes bytes to
/// send, `flush` writes what the socket takes, `read` returns what has
/// arrived.
enum TurnStream {
    Tcp {
        socket: TcpStream,
        /// Bytes queued that the socket has not taken yet.
        outgoing: Vec<u8>,
    },
    Tls {
        socket: TcpStream,
        /// Boxed: a connection is much larger than a socket and a Vec.
        session: Box<ClientConnection>,
    },
}

impl TurnStream {
    /// Opens the connection; TLS then starts with the first `flush`.
    fn connect(server: SocketAddr, tls: Option<&TlsClient>) -> std::io::Result<Self> {
        let socket = TcpStream::connect_timeout(&server, TURN_CONNECT_TIMEOUT)?;
        socket.set_nodelay(true)?;
        socket.set_nonblocking(true)?;
        let Some(tls) = tls else {
            return Ok(Self::Tcp {
                socket,
                outgoing: Vec::new(),
            });
        };
        let mut session = ClientConnection::new(tls.config.clone(), tls.server_name.clone())
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
        // What the agent sends before the handshake ends waits in rustls,
        // like `outgoing` for TCP, without a limit.
        session.set_buffer_limit(None);
        Ok(Self::Tls {
            socket,
            session: Box::new(session),
        })
    }

    fn transport(&self) -> Transport {
        match self {
            Self::Tcp { .. } => Transport::Tcp,
            Self::Tls { .. } => Transport::Tls,
        }
    }

    /// Takes bytes to send; `flush` writes them.
    fn queue(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Tcp { outgoing, .. } => {
                outgoing.extend_from_slice(data);
                Ok(())
            }
            Self::Tls { session, .. } => session.writer().write_all(data),
        }
    }

    /// Writes what the socket takes without blocking.
    fn flush(&mut self) -> std::io::Result<()> {
        loop {
            let written = match self {
                Self::Tcp { outgoing, .. } if outgoing.is_empty() => return Ok(()),
                Self::Tcp { socket, outgoing } => socket.write(outgoing).inspect(|&n| {
                    outgoing.drain(..n);
                }),
                Self::Tls { session, .. } if !session.wants_write() => return Ok(()),
                Self::Tls { socket, session } => session.write_tls(socket),
            };
            match written {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends to `incoming` what has arrived (decrypted, with TLS)
    /// without blocking; false once the server has closed the stream.
    fn read(&mut self, incoming: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut buf = [0u8; 4096];
        loop {
            match self {
                Self::Tcp { socket, .. } => match socket.read(&mut buf) {
                    Ok(0) => return Ok(false),
                    Ok(n) => incoming.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                },
                Self::Tls { socket, session } => {
                    let (end, idle) = match session.read_tls(socket) {
                        Ok(n) => (n == 0, false),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => (false, true),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    let state = match session.process_new_packets() {
                        Ok(state) => state,
                        Err(e) => {
                            // Tell the server why (an alert), then give up.
                            let _ = session.write_tls(socket);
                            return Err(std::io::Error::new(ErrorKind::InvalidData, e));
                        }
                    };
                    // Drained on every pass: rustls stops reading the
                    // socket while its plaintext buffer is full.
                    let start = incoming.len();
                    incoming.resize(start + state.plaintext_bytes_to_read(), 0);
                    session.reader().read_exact(&mut incoming[start..])?;
                    if end || state.peer_has_closed() {
                        return Ok(false);
                    }
                    if idle {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Ends the stream politely: TLS says close_notify.
    fn finish(&mut self) {
        if let Self::Tls { session, .. } = self {
            session.send_close_notify();
        }
        let _ = self.flush();
    }
}

impl Peer {
    /// Hands what arrived to the agent. Data is echoed back, or counted
    /// when pinging.
    fn receive(&mut self, now: Instant, transport: Transport, source: SocketAddr, packet: &[u8]) {
        let Received::Data { data, .. } = self.agent.handle_receive(now, transport, source, self.local, packet) else {
            return;
        };
        match self.ping {
            Some(_) => {
                if let Some(i) = data.strip_prefix(b"ping:") {
                    self.pings_back.insert(i.to_vec());
                }
            }
            None => {
                let data = data.into_owned();
                self.send_data(now, &data);
                self.echoed += 1;
            }
        }
    }

    fn send_data(&mut self, now: Instant, data: &[u8]) {
        let mut out = Vec::new();
        if let Some(route) = self.agent.send(data, &mut out, now) {
            self.transmit(now, Transmit::new(route, out));
        }
    }

    /// Everything the agent has to send.
    fn flush(&mut self, now: Instant) {
        while let Some(t) = self.agent.poll_transmit(now) {
            self.transmit(now, t);
        }
    }

    fn transmit(&mut self, now: Instant, t: Transmit) {
        if t.transport == Transport::Udp {
            // UDP may drop; the agent retransmits what matters.
            let _ = self.socket.send_to(&t.data, t.destination);
            return;
        }
        // The only TCP and TLS transmits are for the one TURN server: one
        // connection, opened on first use.
        if self.turn.is_none() {
            let opened = match (t.transport, self.tls.as_ref()) {
                (Transport::Tls, None) => Err(std::io::Error::other("TLS without --turn-ca")),
                (Transport::Tls, tls) => TurnStream::connect(t.destination, tls),
                _ => TurnStream::connect(t.destination, None),
            };
            match opened {
                Ok(stream) => {
                    self.turn = Some(TurnConnection {
                        server: t.destination,
                        stream,
                        incoming: Vec::new(),
                    })
                }
                Err(e) => {
                    eprintln!("ice_peer: TURN connection to {}: {e}", t.destination);
                    self.agent
                        .handle_connection_closed(now, t.transport, t.source, t.destination);
                    return;
                }
            }
        }
        let queued = self.turn.as_mut().map_or(Ok(()), |c| c.stream.queue(&t.data));
        match queued {
            Ok(()) => self.write_turn(now),
            Err(e) => self.close_turn(now, &e.to_string()),
        }
    }

    /// Writes what the TURN connection can take without blocking.
    fn write_turn(&mut self, now: Instant) {
        let Some(c) = self.turn.as_mut() else { return };
        if let Err(e) = c.stream.flush() {
            self.close_turn(now, &e.to_string());
        }
    }

    /// Reads the TURN connection without blocking and hands every whole
    /// frame to the agent.
    fn read_turn(&mut self, now: Instant) {
        let Some(c) = self.turn.as_mut() else { return };
        let mut closed = match c.stream.read(&mut c.incoming) {
            Ok(open) => (!open).then(|| "by the server".to_owned()),
            Err(e) => Some(e.to_string()),
        };
        let mut frames = Vec::new();
        loop {
            match natter_stun::stream_frame_len(&c.incoming) {
                Ok(Some(n)) => frames.push(c.incoming.drain(..n).collect::<Vec<u8>>()),
                Ok(None) => break,
                // Not STUN or ChannelData: not a TURN stream.
                Err(e) => {
                    closed = Some(e.to_string());
                    break;
                }
            }
        }
        let (server, transport) = (c.server, c.stream.transport());
        match transport {
            Transport::Tls => self.turn_tls_frames += frames.len() as u64,
            _ => self.turn_tcp_frames += frames.len() as u64,
        }
        for frame in frames {
            self.receive(now, transport, server, &frame);
        }
        if let Some(why) = closed {
            self.close_turn(now, &why);
        }
    }

    /// The connection is gone, and the allocation with it.
    fn close_turn(&mut self, now: Instant, why: &str) {
        if let Some(c) = self.turn.take() {
            eprintln!("ice_peer: TURN connection to {} closed: {why}", c.server);
            self.agent
                .handle_connection_closed(now, c.stream.transport(), self.local, c.server);
        }
    }
}

fn run(options: Options) -> Result<(), String> {
    let socket = UdpSocket::bind((options.host, 0)).map_err(|e| format!("bind: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let relay_protocol = match options.turn.as_ref().map(|t| t.transport) {
        Some(Transport::Tcp) => "tcp",
        Some(Transport::Tls) => "tls",
        _ => "udp",
    };
    let tls = match (&options.turn_ca, &options.turn) {
        (Some(ca), Some(turn)) => {
            let server_name = match options.turn_server_name {
                Some(name) => ServerName::try_from(name).map_err(|e| format!("--turn-server-name: {e}"))?,
                None => turn.address.ip().into(),
            };
            Some(TlsClient::new(ca, server_name)?)
        }
        _ => None,
    };
    let config = AgentConfig {
        role: options.role,
        stun_servers: options.stun.into_iter().collect(),
        turn_servers: options.turn.into_iter().collect(),
        transport_policy: if options.relay_only {
            TransportPolicy::Relay
        } else {
            TransportPolicy::All
        },
        ..AgentConfig::default()
    };
    let mut peer = Peer {
        agent: Agent::new(config, Instant::now()),
        socket,
        local,
        tls,
        turn: None,
        turn_tcp_frames: 0,
        turn_tls_frames: 0,
        ping: options.ping,
        pings_back: BTreeSet::new(),
        echoed: 0,
    };
    peer.agent.add_host(local, Protocol::Udp).map_err(|e| e.to_string())?;
    peer.agent.end_of_local_addresses();

    let (lines, stdin) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = lines.send(None);
    });

    let mut candidates = Vec::new();
    let mut connected_at = None;
    let mut ping_due = None;
    let mut ping_reported = false;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        // Stdin: the remote offer, then end of the test.
        match stdin.try_recv() {
            Ok(Some(line)) => {
                let (credentials, remote) = remote_offer(&line)?;
                peer.agent.set_remote_credentials(credentials, now);
                for c in remote {
                    peer.agent.add_remote_candidate(c, now).map_err(|e| e.to_string())?;
                }
                peer.agent.end_of_remote_candidates(now);
            }
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => {
                emit(json!({ "echoed": peer.echoed }));
                peer.agent.close();
                peer.flush(now);
                if let Some(c) = peer.turn.as_mut() {
                    c.stream.finish();
                }
                return Ok(());
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }

        // The socket, until the agent's next deadline; then the TURN
        // connection, which never blocks.
        let wait = peer
            .agent
            .poll_timeout()
            .map_or(STDIN_POLL, |t| t.saturating_duration_since(now))
            .clamp(Duration::from_micros(100), STDIN_POLL);
        peer.socket.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
        if let Ok((n, source)) = peer.socket.recv_from(&mut buf) {
            peer.receive(Instant::now(), Transport::Udp, source, &buf[..n]);
        }
        peer.read_turn(Instant::now());
        let now = Instant::now();
        if peer.agent.poll_timeout().is_some_and(|t| t <= now) {
            peer.agent.handle_timeout(now);
        }

        while let Some(event) = peer.agent.poll_event() {
            match event {
                Event::LocalCandidate(c) => candidates.push(c.to_string()),
                Event::GatheringComplete => {
                    let creds = peer.agent.local_credentials();
                    emit(json!({ "ufrag": creds.ufrag, "pwd": creds.pwd, "candidates": candidates }));
                }
                Event::SelectedPair { local, remote } if connected_at.is_none() => {
                    connected_at = Some(now);
                    let mut report =
                        json!({ "connected": true, "local": local.to_string(), "remote": remote.to_string() });
                    if local.kind == CandidateKind::Relayed {
                        report["relay_protocol"] = json!(relay_protocol);
                        report["turn_tcp_frames"] = json!(peer.turn_tcp_frames);
                        report["turn_tls_frames"] = json!(peer.turn_tls_frames);
                    }
                    emit(report);
                }
                Event::ConnectionState(ConnectionState::Failed) if connected_at.is_none() => {
                    emit(json!({ "connected": false, "error": "ICE failed" }));
                }
                _ => {}
            }
        }

        // Pings: send the ones not echoed yet, every PING_RESEND.
        if let (Some(n), Some(since)) = (peer.ping, connected_at) {
            if !ping_reported {
                let all_back = peer.pings_back.len() as u32 >= n;
                if all_back || now - since > PING_PATIENCE {
                    emit(json!({ "pinged": n, "echoed": peer.pings_back.len() }));
                    ping_reported = true;
                } else if ping_due.is_none_or(|t| t <= now) {
                    for i in 0..n {
                        let ping = format!("ping:{i}").into_bytes();
                        if !peer.pings_back.contains(&ping[5..]) {
                            peer.send_data(now, &ping);
                        }
                    }
                    ping_due = Some(now + PING_RESEND);
                }
            }
        }

        peer.flush(now);
        peer.write_turn(now);
    }
}
