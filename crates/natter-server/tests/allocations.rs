//! Holds 10,000 concurrent allocations on one `natter turn` and reports
//! the server's memory per allocation.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use natter_stun::*;

const ALLOCATIONS: usize = 10_000;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn metric(addr: SocketAddr, name: &str) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// Sends `req` and waits for the response to it.
fn exchange<'b>(socket: &UdpSocket, server: SocketAddr, req: &[u8], buf: &'b mut [u8]) -> Message<'b> {
    let deadline = Instant::now() + Duration::from_secs(5);
    socket.send_to(req, server).unwrap();
    loop {
        assert!(Instant::now() < deadline, "no response from the server");
        if let Ok(n) = socket.recv(buf) {
            let buf: &'b [u8] = buf;
            return Message::decode(&buf[..n]).unwrap();
        }
        socket.send_to(req, server).unwrap();
    }
}

fn allocate(user: &str, realm: &str, nonce: Option<&str>, key: &IntegrityKey, tid: u32, out: &mut [u8]) -> usize {
    let mut t = [0u8; 12];
    t[..4].copy_from_slice(&tid.to_be_bytes());
    let mut w = MessageWriter::new(
        out,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId(t),
    )
    .unwrap();
    w.add(&RequestedTransport::UDP).unwrap();
    if let Some(nonce) = nonce {
        w.add(&Username(user)).unwrap();
        w.add(&Realm(realm)).unwrap();
        w.add(&Nonce(nonce)).unwrap();
        w.add_message_integrity(key).unwrap();
    }
    w.finish()
}

#[test]
fn ten_thousand_allocations_are_held() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (port, metrics_port) = (free_port(), free_port());
    let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args([
            "turn",
            "--listening-ip",
            "127.0.0.1",
            "--relay-ip",
            "127.0.0.1",
            "--no-tls",
            "--no-tcp",
        ])
        .args([
            "--listening-port",
            &port.to_string(),
            "--metrics-listen",
            &metrics.to_string(),
        ])
        .args([
            "--min-port",
            "20000",
            "--max-port",
            "60999",
            "--user",
            "load:test",
            "--realm",
            "natter",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("natter binary");
    let server = Server(child);
    let pid = server.0.id();

    let mut buf = [0u8; 1500];
    let mut req = [0u8; 512];
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    // Wait for the server: the first Allocate is challenged (401) with a nonce.
    let key = IntegrityKey::long_term("load", "natter", "test", PasswordAlgorithm::Md5).unwrap();
    let started = Instant::now();
    let nonce = loop {
        let n = allocate("load", "natter", None, &key, 0, &mut req);
        let _ = probe.send_to(&req[..n], server_addr);
        if let Ok(len) = probe.recv(&mut buf) {
            let msg = Message::decode(&buf[..len]).unwrap();
            assert_eq!(msg.require::<ErrorCode>().unwrap().code, 401);
            break msg.require::<Nonce>().unwrap().0.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "natter turn did not start");
    };
    let before = rss_kib(pid);

    let mut clients = Vec::with_capacity(ALLOCATIONS);
    for i in 0..ALLOCATIONS {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let n = allocate("load", "natter", Some(&nonce), &key, i as u32 + 1, &mut req);
        let msg = exchange(&socket, server_addr, &req[..n], &mut buf);
        assert_eq!(
            msg.class(),
            Class::SuccessResponse,
            "allocation {i}: {:?}",
            msg.get::<ErrorCode>()
        );
        msg.require::<XorRelayedAddress>().unwrap();
        clients.push(socket);
    }
    // Counters are published once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(metrics, "natter_turn_allocations") != ALLOCATIONS as u64 {
        assert!(
            Instant::now() < deadline,
            "metrics never showed {ALLOCATIONS} allocations"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before) * 1024) as f64 / ALLOCATIONS as f64;
    eprintln!("natter turn: {ALLOCATIONS} allocations, RSS {before} KiB -> {after} KiB, {per:.0} bytes per allocation");
    assert_eq!(
        metric(metrics, "natter_turn_allocations_created_total"),
        ALLOCATIONS as u64
    );
}
