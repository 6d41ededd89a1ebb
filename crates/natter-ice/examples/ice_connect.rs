//! Time from start to connected for two natter-ice agents on loopback,
//! each on its own UDP socket, in one thread: the natter half of
//! `bench/ice-connect`. Prints one time in milliseconds per run.
//!
//! "Start" is before the agents are created; "connected" is when both
//! have selected a pair. Candidates and credentials are exchanged in
//! memory as soon as they are known (trickle).
//!
//! ```text
//! ice_connect [--runs N]
//! ```

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, Event, Role};
use natter_ice::candidate::Protocol;
use natter_ice::Transport;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut runs = 20;
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--runs", Some(n)) => runs = n,
            _ => {
                eprintln!("usage: ice_connect [--runs N]");
                std::process::exit(2);
            }
        }
    }
    for _ in 0..runs {
        let elapsed = connect_once()?;
        println!("{:.3}", elapsed.as_secs_f64() * 1000.0);
    }
    Ok(())
}

struct Side {
    agent: Agent,
    socket: UdpSocket,
    selected: bool,
}

fn connect_once() -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut sides = [Role::Controlling, Role::Controlled].map(|role| {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
        socket.set_nonblocking(true).expect("non-blocking");
        let config = AgentConfig {
            role,
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(config, start);
        let local = socket.local_addr().expect("bound");
        agent.add_host(local, Protocol::Udp).expect("a loopback host");
        agent.end_of_local_addresses();
        Side {
            agent,
            socket,
            selected: false,
        }
    });
    let credentials = [0, 1].map(|i| sides[i].agent.local_credentials().clone());
    for (i, creds) in credentials.into_iter().enumerate() {
        sides[1 - i].agent.set_remote_credentials(creds, start);
    }
    let deadline = start + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while !(sides[0].selected && sides[1].selected) {
        let now = Instant::now();
        if now > deadline {
            return Err(std::io::Error::other("no connection within 10 s"));
        }
        for i in 0..2 {
            let side = &mut sides[i];
            let local = side.socket.local_addr()?;
            while let Ok((n, from)) = side.socket.recv_from(&mut buf) {
                side.agent.handle_receive(now, Transport::Udp, from, local, &buf[..n]);
            }
            if side.agent.poll_timeout().is_some_and(|t| t <= now) {
                side.agent.handle_timeout(now);
            }
            while let Some(t) = side.agent.poll_transmit(now) {
                side.socket.send_to(&t.data, t.destination)?;
            }
            let mut trickled = Vec::new();
            while let Some(event) = side.agent.poll_event() {
                match event {
                    Event::LocalCandidate(c) => trickled.push(c),
                    Event::SelectedPair { .. } => side.selected = true,
                    _ => {}
                }
            }
            for c in trickled {
                sides[1 - i]
                    .agent
                    .add_remote_candidate(c, now)
                    .expect("a valid candidate");
            }
        }
        // Both sockets are non-blocking: yield the core briefly between rounds.
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok(start.elapsed())
}
