//! An ICE peer on a UDP socket, driven through JSON lines on stdin and
//! stdout: the natter side of the interop and NAT tests in tests/ice/,
//! speaking the same protocol as tests/ice/aioice_peer.py.
//!
//! ```text
//! stdout  {"ufrag", "pwd", "candidates": [...]}     when gathering is complete
//! stdin   {"ufrag", "pwd", "candidates": [...]}     the other side's, all of them
//! stdout  {"connected": true, "local": sdp, "remote": sdp}   (or false, "error")
//! stdout  {"pinged": n, "echoed": k}                with --ping n, once every
//!                                                   ping came back or 10 s passed
//! stdout  {"echoed": n}                             when stdin closes
//! ```
//!
//! Without `--ping` the peer echoes every datagram it receives.
//!
//! ```text
//! ice_peer --role controlling|controlled [--host 127.0.0.1] [--stun HOST:PORT]
//!          [--turn HOST:PORT --turn-user U --turn-password P] [--relay-only] [--ping N]
//! ```

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Event, Received, Role, TransportPolicy};
use natter_ice::candidate::{Candidate, Protocol};
use natter_ice::turn_client::TurnServer;
use natter_ice::{Credentials, Transport};
use serde_json::{json, Value};

/// How long a pinging peer waits for its echoes.
const PING_PATIENCE: Duration = Duration::from_secs(10);
/// Pings not yet echoed are sent again this often.
const PING_RESEND: Duration = Duration::from_millis(500);
/// The longest the loop sleeps in `recv_from` before looking at stdin.
const STDIN_POLL: Duration = Duration::from_millis(5);

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
            "--relay-only" => relay_only = true,
            "--ping" => ping = Some(value()?.parse().map_err(|e| format!("--ping: {e}"))?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let turn = match (turn_addr, user, pass) {
        (Some(address), Some(username), Some(password)) => Some(TurnServer {
            address,
            transport: Transport::Udp,
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

fn run(options: Options) -> Result<(), String> {
    let socket = UdpSocket::bind((options.host, 0)).map_err(|e| format!("bind: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
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
    let mut agent = Agent::new(config, Instant::now());
    agent.add_host(local, Protocol::Udp).map_err(|e| e.to_string())?;
    agent.end_of_local_addresses();

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
    let mut echoed = 0u64;
    let mut pings_back = BTreeSet::new();
    let mut ping_due = None;
    let mut ping_reported = false;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        // Stdin: the remote offer, then end of the test.
        match stdin.try_recv() {
            Ok(Some(line)) => {
                let (credentials, remote) = remote_offer(&line)?;
                agent.set_remote_credentials(credentials, now);
                for c in remote {
                    agent.add_remote_candidate(c, now).map_err(|e| e.to_string())?;
                }
                agent.end_of_remote_candidates(now);
            }
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => {
                emit(json!({ "echoed": echoed }));
                agent.close();
                return Ok(());
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }

        // The socket, until the agent's next deadline.
        let wait = agent
            .poll_timeout()
            .map_or(STDIN_POLL, |t| t.saturating_duration_since(now))
            .clamp(Duration::from_micros(100), STDIN_POLL);
        socket.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
        if let Ok((n, source)) = socket.recv_from(&mut buf) {
            let now = Instant::now();
            if let Received::Data { data, .. } = agent.handle_receive(now, Transport::Udp, source, local, &buf[..n]) {
                let data = data.into_owned();
                match options.ping {
                    Some(_) => {
                        if let Some(i) = data.strip_prefix(b"ping:") {
                            pings_back.insert(i.to_vec());
                        }
                    }
                    None => {
                        if let Some(t) = agent.send(&data, now) {
                            let _ = socket.send_to(&t.data, t.destination);
                        }
                        echoed += 1;
                    }
                }
            }
        }
        let now = Instant::now();
        if agent.poll_timeout().is_some_and(|t| t <= now) {
            agent.handle_timeout(now);
        }

        while let Some(event) = agent.poll_event() {
            match event {
                Event::LocalCandidate(c) => candidates.push(c.to_string()),
                Event::GatheringComplete => {
                    let creds = agent.local_credentials();
                    emit(json!({ "ufrag": creds.ufrag, "pwd": creds.pwd, "candidates": candidates }));
                }
                Event::SelectedPair { local, remote } if connected_at.is_none() => {
                    connected_at = Some(now);
                    emit(json!({ "connected": true, "local": local.to_string(), "remote": remote.to_string() }));
                }
                Event::ConnectionState(ConnectionState::Failed) if connected_at.is_none() => {
                    emit(json!({ "connected": false, "error": "ICE failed" }));
                }
                _ => {}
            }
        }

        // Pings: send the ones not echoed yet, every PING_RESEND.
        if let (Some(n), Some(since)) = (options.ping, connected_at) {
            if !ping_reported {
                let all_back = pings_back.len() as u32 >= n;
                if all_back || now - since > PING_PATIENCE {
                    emit(json!({ "pinged": n, "echoed": pings_back.len() }));
                    ping_reported = true;
                } else if ping_due.is_none_or(|t| t <= now) {
                    for i in 0..n {
                        let ping = format!("ping:{i}").into_bytes();
                        if !pings_back.contains(&ping[5..]) {
                            if let Some(t) = agent.send(&ping, now) {
                                let _ = socket.send_to(&t.data, t.destination);
                            }
                        }
                    }
                    ping_due = Some(now + PING_RESEND);
                }
            }
        }

        while let Some(t) = agent.poll_transmit(now) {
            if t.transport == Transport::Udp {
                // UDP may drop; the agent retransmits what matters.
                let _ = socket.send_to(&t.data, t.destination);
            }
        }
    }
}
