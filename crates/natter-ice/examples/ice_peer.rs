//! An ICE peer on a UDP socket, driven through JSON lines on stdin and
//! stdout: the natter side of the interop and NAT tests in tests/ice/,
//! speaking the same protocol as tests/ice/aioice_peer.py.
//!
//! ```text
//! stdout  {"ufrag", "pwd", "candidates": [...]}     when gathering is complete
//! stdin   {"ufrag", "pwd", "candidates": [...]}     the other side's, all of them
//! stdout  {"connected": true, "local": sdp, "remote": sdp}   (or false, "error");
//!         with a relayed local candidate also "relay_protocol": "udp" or
//!         "tcp" (how the TURN server was reached) and "turn_tcp_frames":
//!         the frames read from the TCP connection to it so far
//! stdout  {"pinged": n, "echoed": k}                with --ping n, once every
//!                                                   ping came back or 10 s passed
//! stdout  {"echoed": n}                             when stdin closes
//! ```
//!
//! Without `--ping` the peer echoes every datagram it receives.
//!
//! ```text
//! ice_peer --role controlling|controlled [--host 127.0.0.1] [--stun HOST:PORT]
//!          [--turn HOST:PORT --turn-user U --turn-password P [--turn-transport udp|tcp]]
//!          [--relay-only] [--ping N]
//! ```
//!
//! With `--turn-transport tcp` the TURN server is reached over TCP, as
//! the agent's documentation describes ("TURN over TCP and TLS"): one
//! connection from the host address to the server, opened on the first
//! transmit for it and read without blocking; what arrives is cut into
//! frames with `natter_stun::stream_frame_len`, each passed to
//! `Agent::handle_receive` with `Transport::Tcp` and the server as source.

use std::collections::BTreeSet;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Event, Received, Role, TransportPolicy};
use natter_ice::candidate::{Candidate, CandidateKind, Protocol};
use natter_ice::turn_client::TurnServer;
use natter_ice::{Credentials, Transmit, Transport};
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
    relay_only: bool,
    ping: Option<u32>,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut role = None;
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let (mut stun, mut turn_addr, mut user, mut pass) = (None, None, None, None);
    let mut turn_transport = Transport::Udp;
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
                    other => return Err(format!("unknown TURN transport {other} (udp or tcp)")),
                }
            }
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
    Ok(Options {
        role: role.ok_or("--role is required")?,
        host,
        stun,
        turn,
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
/// TURN over TCP, the connection to the TURN server.
struct Peer {
    agent: Agent,
    socket: UdpSocket,
    local: SocketAddr,
    turn: Option<TurnConnection>,
    /// Frames read from TURN connections so far.
    turn_frames: u64,
    ping: Option<u32>,
    pings_back: BTreeSet<Vec<u8>>,
    echoed: u64,
}

/// The TCP connection from the host address to the TURN server.
struct TurnConnection {
    server: SocketAddr,
    stream: TcpStream,
    /// Bytes the agent sent that the socket has not taken yet.
    outgoing: Vec<u8>,
    /// Bytes read and not yet cut into frames.
    incoming: Vec<u8>,
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
        if let Some(t) = self.agent.send(data, now) {
            self.transmit(now, t);
        }
    }

    /// Everything the agent has to send.
    fn flush(&mut self, now: Instant) {
        while let Some(t) = self.agent.poll_transmit(now) {
            self.transmit(now, t);
        }
    }

    fn transmit(&mut self, now: Instant, t: Transmit) {
        match t.transport {
            // UDP may drop; the agent retransmits what matters.
            Transport::Udp => {
                let _ = self.socket.send_to(&t.data, t.destination);
            }
            Transport::Tcp => {
                // The only TCP transmits are for the one TURN server: one
                // connection, opened on first use.
                if self.turn.is_none() {
                    match connect(t.destination) {
                        Ok(stream) => {
                            self.turn = Some(TurnConnection {
                                server: t.destination,
                                stream,
                                outgoing: Vec::new(),
                                incoming: Vec::new(),
                            })
                        }
                        Err(e) => {
                            eprintln!("ice_peer: TURN connection to {}: {e}", t.destination);
                            self.agent
                                .handle_connection_closed(now, Transport::Tcp, t.source, t.destination);
                            return;
                        }
                    }
                }
                if let Some(c) = self.turn.as_mut() {
                    c.outgoing.extend_from_slice(&t.data);
                }
                self.write_turn(now);
            }
            Transport::Tls => eprintln!("ice_peer: TURN over TLS is not supported here"),
        }
    }

    /// Writes what the TURN connection can take without blocking.
    fn write_turn(&mut self, now: Instant) {
        let Some(c) = self.turn.as_mut() else { return };
        while !c.outgoing.is_empty() {
            match c.stream.write(&c.outgoing) {
                Ok(0) => return self.close_turn(now),
                Ok(n) => {
                    c.outgoing.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close_turn(now),
            }
        }
    }

    /// Reads the TURN connection without blocking and hands every whole
    /// frame to the agent.
    fn read_turn(&mut self, now: Instant) {
        let Some(c) = self.turn.as_mut() else { return };
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => closed = true,
                Ok(n) => {
                    c.incoming.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => closed = true,
            }
            break;
        }
        let mut frames = Vec::new();
        loop {
            match natter_stun::stream_frame_len(&c.incoming) {
                Ok(Some(n)) => frames.push(c.incoming.drain(..n).collect::<Vec<u8>>()),
                Ok(None) => break,
                // Not STUN or ChannelData: not a TURN stream.
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let server = c.server;
        self.turn_frames += frames.len() as u64;
        for frame in frames {
            self.receive(now, Transport::Tcp, server, &frame);
        }
        if closed {
            self.close_turn(now);
        }
    }

    /// The connection is gone, and the allocation with it.
    fn close_turn(&mut self, now: Instant) {
        if let Some(c) = self.turn.take() {
            eprintln!("ice_peer: TURN connection to {} closed", c.server);
            self.agent
                .handle_connection_closed(now, Transport::Tcp, self.local, c.server);
        }
    }
}

/// A TCP connection read and written without blocking.
fn connect(server: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&server, TURN_CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

fn run(options: Options) -> Result<(), String> {
    let socket = UdpSocket::bind((options.host, 0)).map_err(|e| format!("bind: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let relay_protocol = match options.turn.as_ref().map(|t| t.transport) {
        Some(Transport::Tcp) => "tcp",
        _ => "udp",
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
        turn: None,
        turn_frames: 0,
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
                        report["turn_tcp_frames"] = json!(peer.turn_frames);
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
