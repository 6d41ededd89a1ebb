//! The UDP proxy on loopback: datagrams relayed both ways for two
//! clients, each with its own upstream address, through links whose
//! counters say what they did; and the binary doing the same.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use natter_impair::{LinkConfig, Proxy, ProxyConfig};

/// How long a test waits for a datagram or a counter before failing.
const PATIENCE: Duration = Duration::from_secs(10);

fn socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket
}

fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0; 2048];
    let (len, from) = socket.recv_from(&mut buf).expect("a datagram in time");
    (buf[..len].to_vec(), from)
}

fn link(settings: &[&str]) -> LinkConfig {
    let mut config = LinkConfig::default();
    for setting in settings {
        config.apply(setting).unwrap();
    }
    config
}

#[test]
fn the_proxy_relays_both_ways_for_each_client() {
    let upstream = socket();
    let proxy = Proxy::start(ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: upstream.local_addr().unwrap(),
        // Every datagram up arrives twice; down ones after 5 ms.
        up: link(&["duplicate=100%"]),
        down: link(&["delay=5ms"]),
        seed: 1,
    })
    .unwrap();
    let clients = [socket(), socket()];
    let count = 20;
    let mut sources = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        let mut source = None;
        for i in 0..count {
            let message = format!("client {c} message {i}");
            client.send_to(message.as_bytes(), proxy.local_addr()).unwrap();
            for _copy in 0..2 {
                let (data, from) = receive(&upstream);
                assert_eq!(data, message.as_bytes());
                assert!(source.is_none_or(|s| s == from), "one upstream address per client");
                source = Some(from);
            }
            upstream
                .send_to(format!("reply {i}").as_bytes(), source.unwrap())
                .unwrap();
            let (reply, from) = receive(client);
            assert_eq!(reply, format!("reply {i}").as_bytes());
            assert_eq!(from, proxy.local_addr(), "replies come from the listening address");
        }
        sources.push(source.unwrap());
    }
    assert_ne!(sources[0], sources[1], "each client has its own upstream socket");
    assert_ne!(sources[0], proxy.local_addr());
    let relayed = 2 * count;
    assert!(
        proxy.wait_for(PATIENCE, |s| s.down.delivered == relayed),
        "{:?}",
        proxy.stats()
    );
    let stats = proxy.stop().unwrap();
    assert_eq!(stats.clients, 2);
    assert_eq!(
        (stats.up.received, stats.up.duplicated, stats.up.delivered),
        (relayed, relayed, 2 * relayed)
    );
    assert_eq!((stats.down.received, stats.down.delivered), (relayed, relayed));
    assert_eq!(
        stats.up.queue_drops + stats.up.lost + stats.down.queue_drops + stats.down.lost,
        0
    );
    assert_eq!(stats.socket_errors, 0);
}

#[test]
fn the_binary_relays_and_prints_its_counters() {
    let upstream = socket();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-impair"))
        .args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.local_addr().unwrap().to_string())
        .args(["--delay", "2ms", "--rate", "10mbit", "--down", "loss=100%"])
        .args(["--stats-interval", "20ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap);
    let first = lines.next().unwrap();
    let listening: SocketAddr = first.strip_prefix("listening on ").expect(&first).parse().unwrap();
    let client = socket();
    client.send_to(b"up", listening).unwrap();
    let (data, from) = receive(&upstream);
    assert_eq!(data, b"up");
    // Both replies are lost on the way down, as --down asked; the
    // counters printed every 20 ms show when the proxy has had them.
    upstream.send_to(b"down", from).unwrap();
    upstream.send_to(b"down", from).unwrap();
    let seen = lines.by_ref().find(|l| l.starts_with("down received=2 "));
    assert!(seen.is_some(), "the proxy ended before it had both replies");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    // The last two lines are the final counters.
    let rest: Vec<String> = lines.collect();
    let [up, down] = &rest[rest.len() - 2..] else {
        panic!("no final counters in {rest:?}");
    };
    assert!(up.starts_with("up received=1 ") && up.contains(" delivered=1 "), "{up}");
    assert!(down.starts_with("down received=2 "), "{down}");
    assert!(down.contains(" lost=2 ") && down.contains(" delivered=0 "), "{down}");
    assert!(down.contains(" clients=1 "), "{down}");
}
