//! One natter-io [`Endpoint`] on one UDP port of 127.0.0.1 holds 200
//! connections at once, each with a natter peer of its own socket in this
//! process, and each echoes its own data channel messages; datagrams
//! with unknown ufrags, strays and garbage sent to the port are dropped
//! and counted while every connection carries on. Every wait is on an
//! event or a counter, under one deadline. Connections also spread over
//! two workers, each a task with a port of its own.

use std::net::SocketAddr;
use std::time::Duration;

use natter_io::{
    Config, DataChannel, DataChannelInit, Endpoint, EndpointStats, LocalAddresses, PeerConfig, PeerConnection,
    PeerEvent,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::timeout;

const CONNECTIONS: usize = 200;
const MESSAGES: usize = 5;
const DEADLINE: Duration = Duration::from_secs(60);

fn config(peer: PeerConfig) -> Config {
    Config {
        local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse().unwrap()]),
        mdns: false,
        peer,
        ..Config::default()
    }
}

/// A natter peer on a socket of its own, connected to a new connection
/// of `endpoint`; the endpoint's side echoes every message in a task.
struct Client {
    pc: PeerConnection,
    events: mpsc::Receiver<PeerEvent>,
    channel: DataChannel,
    /// The endpoint's side, for the candidates the client trickles.
    server: PeerConnection,
}

async fn connect(endpoint: &Endpoint) -> Client {
    let (pc, events) = PeerConnection::spawn(config(PeerConfig::default())).unwrap();
    let channel = pc
        .create_data_channel("echo", DataChannelInit::default())
        .await
        .unwrap();
    let offer = pc.create_offer().await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    let (server, mut server_events) = endpoint.connect().await.unwrap();
    server.set_remote_description(offer).await.unwrap();
    let answer = server.create_answer().await.unwrap();
    server.set_local_description(answer.clone()).await.unwrap();
    pc.set_remote_description(answer).await.unwrap();
    let (echo, client) = (server.clone(), pc.clone());
    tokio::spawn(async move {
        while let Some(event) = server_events.recv().await {
            match event {
                PeerEvent::IceCandidate(candidate) => {
                    let _ = client.add_ice_candidate(Some(candidate)).await;
                }
                PeerEvent::DataChannelMessage { id, data, is_text } => {
                    let message = match is_text {
                        true => natter_io::Message::Text(String::from_utf8(data).unwrap()),
                        false => natter_io::Message::Binary(data),
                    };
                    echo.data_channel(id).send(message).await.unwrap();
                }
                _ => {}
            }
        }
    });
    Client {
        pc,
        events,
        channel,
        server,
    }
}

impl Client {
    /// Waits for the channel to open, sends `MESSAGES` messages naming
    /// this client and checks that exactly those come back, in order.
    async fn echo(&mut self, index: usize, tag: &str, wait_for_open: bool) {
        let mut open = !wait_for_open;
        let expected: Vec<String> = (0..MESSAGES).map(|n| format!("{tag} {index} {n}")).collect();
        if open {
            self.send_all(&expected).await;
        }
        let mut received = Vec::new();
        while received.len() < MESSAGES {
            let event = self.events.recv().await.expect("the client's events go on");
            match event {
                PeerEvent::IceCandidate(candidate) => {
                    self.server.add_ice_candidate(Some(candidate)).await.unwrap();
                }
                PeerEvent::DataChannelOpen(id) if id == self.channel.id() && !open => {
                    open = true;
                    self.send_all(&expected).await;
                }
                PeerEvent::DataChannelMessage { id, data, .. } if id == self.channel.id() => {
                    received.push(String::from_utf8(data).unwrap());
                }
                _ => {}
            }
        }
        assert_eq!(received, expected, "client {index} got another's messages");
    }

    async fn send_all(&self, messages: &[String]) {
        for message in messages {
            self.channel.send(message.as_str()).await.unwrap();
        }
    }
}

/// Every client echoes in parallel.
async fn echo_everywhere(clients: Vec<Client>, tag: &'static str, wait_for_open: bool) -> Vec<Client> {
    let mut tasks = JoinSet::new();
    for (index, mut client) in clients.into_iter().enumerate() {
        tasks.spawn(async move {
            client.echo(index, tag, wait_for_open).await;
            (index, client)
        });
    }
    let mut clients: Vec<(usize, Client)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        clients.push(done.expect("a client's echo panicked"));
    }
    clients.sort_by_key(|(index, _)| *index);
    clients.into_iter().map(|(_, client)| client).collect()
}

/// A STUN Binding request (RFC 8489 §5) whose USERNAME is `username`.
fn binding_request(username: &str) -> Vec<u8> {
    let padded = username.len().div_ceil(4) * 4;
    let mut message = vec![0x00, 0x01];
    message.extend(u16::try_from(4 + padded).unwrap().to_be_bytes());
    message.extend([0x21, 0x12, 0xA4, 0x42]);
    message.extend([7; 12]);
    message.extend([0x00, 0x06]);
    message.extend(u16::try_from(username.len()).unwrap().to_be_bytes());
    message.extend(username.as_bytes());
    message.resize(20 + 4 + padded, 0);
    message
}

/// Polls the endpoint's counters until `done` holds.
async fn stats_until(endpoint: &Endpoint, done: impl Fn(&EndpointStats) -> bool) -> EndpointStats {
    loop {
        let stats = endpoint.stats().await.unwrap();
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_share_one_port_and_garbage_is_counted() {
    let run = async {
        let endpoint = Endpoint::bind(config(PeerConfig {
            ice_lite: true,
            ..PeerConfig::default()
        }))
        .unwrap();
        let [port]: [SocketAddr; 1] = endpoint.local_addresses().try_into().unwrap();
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(connect(&endpoint).await);
        }
        let clients = echo_everywhere(clients, "hello", true).await;
        let before = endpoint.stats().await.unwrap();
        assert_eq!(before.connections, CONNECTIONS as u64);
        assert_eq!(before.dropped(), 0, "{before:?}");
        assert_eq!(before.address_takeovers + before.ufrag_conflicts, 0, "{before:?}");

        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(&binding_request("nobody:abcd"), port).unwrap();
        stranger.send_to(&[0, 1, 0, 8, 1, 2, 3], port).unwrap();
        stranger
            .send_to(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], port)
            .unwrap();
        stranger
            .send_to(&[0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9], port)
            .unwrap();
        stranger.send_to(&[0xff; 64], port).unwrap();
        let after = stats_until(&endpoint, |s| s.dropped() >= before.dropped() + 5).await;
        assert_eq!(after.unknown_ufrag - before.unknown_ufrag, 1, "{after:?}");
        assert_eq!(after.malformed - before.malformed, 1, "{after:?}");
        assert_eq!(after.unknown_address - before.unknown_address, 3, "{after:?}");
        stranger.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1500];
        assert!(
            stranger.recv_from(&mut buf).is_err(),
            "the endpoint answered a stranger"
        );

        let clients = echo_everywhere(clients, "after", false).await;
        for client in &clients {
            assert_eq!(
                client.pc.stats().await.unwrap().dtls.map(|d| d.state),
                Some(natter::dtls::DtlsState::Connected)
            );
        }
    };
    timeout(DEADLINE, run).await.expect("done before the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_spread_over_workers_each_with_its_own_port() {
    let run = async {
        let endpoint = Endpoint::bind_workers(config(PeerConfig::default()), 2).unwrap();
        let ports: Vec<u16> = endpoint.local_addresses().iter().map(SocketAddr::port).collect();
        assert_eq!(ports.len(), 2, "one socket per worker: {ports:?}");
        assert_ne!(ports[0], ports[1]);
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(connect(&endpoint).await);
        }
        let clients = echo_everywhere(clients, "worker", true).await;
        let mut per_port = [0; 2];
        for client in &clients {
            let pair = client.pc.stats().await.unwrap().selected_pair.expect("a selected pair");
            let port = pair.remote.socket_addr().expect("an address").port();
            let worker = ports.iter().position(|p| *p == port).expect("a worker's port");
            per_port[worker] += 1;
        }
        assert_eq!(per_port, [5, 5], "connections go to the workers in turn");
        let stats = endpoint.stats().await.unwrap();
        assert_eq!(stats.connections, 10, "the workers' counters add up: {stats:?}");
        assert_eq!(stats.dropped(), 0, "{stats:?}");
    };
    timeout(DEADLINE, run).await.expect("done before the deadline");
}
