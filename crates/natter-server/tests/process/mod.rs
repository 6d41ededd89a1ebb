//! `natter` as a child process of an integration test: killed when
//! dropped, its logs on the test's stderr when `NATTER_SERVE_LOGS` is
//! set, and ready once a check passes.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `natter` may take to get ready.
const READY: Duration = Duration::from_secs(15);

/// A running `natter`, killed on drop.
pub struct Natter {
    child: Child,
}

impl Natter {
    /// Runs the `natter` binary with `args`.
    pub fn spawn<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Natter {
        let logs = || match std::env::var_os("NATTER_SERVE_LOGS") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(args)
            .stdout(logs())
            .stderr(logs())
            .spawn()
            .expect("the natter binary");
        Natter { child }
    }

    /// Polls `ready` until it gives a value; panics, naming `what`, if
    /// natter exits first or 15 s pass.
    pub fn wait_for<T>(&mut self, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + READY;
        loop {
            if let Some(value) = ready() {
                return value;
            }
            if let Some(status) = self.try_wait() {
                panic!("natter exited with {status} before {what}");
            }
            assert!(Instant::now() < deadline, "natter: no {what} within {READY:?}");
            // Pacing of the poll, not a wait for readiness.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until something accepts TCP connections on `addr`.
    pub fn wait_listening(&mut self, addr: std::net::SocketAddr) {
        self.wait_for(&format!("a listener on {addr}"), || {
            std::net::TcpStream::connect(addr).ok()
        });
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("polling natter")
    }

    /// Its peak resident set (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id())).expect("/proc/PID/status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM in /proc/PID/status");
        line.split_whitespace()
            .nth(1)
            .and_then(|kib| kib.parse().ok())
            .expect("VmHWM in kB")
    }
}

impl Drop for Natter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of `ip` free for TCP and UDP alike (TURN listens on both).
pub fn free_port(ip: IpAddr) -> u16 {
    let deadline = Instant::now() + READY;
    loop {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| {
            panic!("cannot bind {ip}: {e} (IPv6 tests need ::1 on lo: sysctl net.ipv6.conf.lo.disable_ipv6=0)")
        });
        let port = listener.local_addr().expect("a bound listener's address").port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
        assert!(Instant::now() < deadline, "no port free for TCP and UDP on {ip}");
    }
}

/// [`free_port`] on 127.0.0.1.
pub fn free_local_port() -> u16 {
    free_port(IpAddr::from([127, 0, 0, 1]))
}

/// A non-blocking signaling WebSocket to `natter serve` at `addr`,
/// waiting for it to listen.
pub fn signaling_socket(
    natter: &mut Natter,
    addr: std::net::SocketAddr,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let ws = natter.wait_for("the signaling socket", || {
        tungstenite::connect(format!("ws://{addr}/ws")).ok().map(|(ws, _)| ws)
    });
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_nonblocking(true).expect("a non-blocking socket");
    }
    ws
}

/// `natter serve --dev --no-turn` (SFU rooms, the default) on a free
/// loopback port, and its address.
pub fn serve_sfu() -> (Natter, std::net::SocketAddr) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_local_port()));
    let natter = Natter::spawn(["serve", "--dev", "--no-turn", "--listen", &addr.to_string()]);
    (natter, addr)
}

/// `natter serve` with `secret` and `extra` flags, listening for HTTP
/// and TURN (UDP, TCP and TLS, one thread) on `ip` only; its HTTP address
/// and its TURN port. The caller waits for what it needs ready.
pub fn serve_with_turn(ip: IpAddr, secret: &str, extra: &[&str]) -> (Natter, std::net::SocketAddr, u16) {
    let (port, turn_port, turn_tls_port) = (free_port(ip), free_port(ip), free_port(ip));
    let addr = std::net::SocketAddr::new(ip, port);
    let (listen, turn, turn_tls, public_ip) = (
        addr.to_string(),
        turn_port.to_string(),
        turn_tls_port.to_string(),
        ip.to_string(),
    );
    let mut args = vec!["serve", "--listen", &listen, "--secret", secret];
    args.extend(["--turn-port", &turn, "--turn-tls-port", &turn_tls]);
    args.extend(["--public-ip", &public_ip, "--turn-threads", "1"]);
    args.extend(extra);
    (Natter::spawn(args), addr, turn_port)
}

/// natter serve's /metrics at `addr`, the whole text.
pub fn metrics_text(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut http = std::net::TcpStream::connect(addr).expect("/metrics");
    write!(
        http,
        "GET /metrics HTTP/1.1\r\nHost: natter\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    http.read_to_string(&mut text).unwrap();
    text
}

/// The value of `natter_sfu_{name}` in the /metrics of `natter serve`
/// at `addr`.
pub fn sfu_metric(addr: std::net::SocketAddr, name: &str) -> u64 {
    let text = metrics_text(addr);
    let name = format!("natter_sfu_{name} ");
    (text.lines())
        .find_map(|line| line.strip_prefix(&name)?.parse().ok())
        .unwrap_or_else(|| panic!("{name}not in /metrics: {text}"))
}

/// The signaling messages (docs/signaling.md) that reached a natter
/// peer in an SFU room since the last call, once the server's answer
/// and candidates went to `pc`. Panics on `error` or a closed socket.
pub fn read_signaling(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    pc: &mut natter::PeerConnection,
    name: &str,
) -> Vec<serde_json::Value> {
    use natter::peer::{Description, IceCandidate, SdpType};
    let mut messages = Vec::new();
    loop {
        let text = match ws.read() {
            Ok(tungstenite::Message::Text(text)) => text,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{name}: signaling closed: {e}"),
        };
        let message: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        match message["type"].as_str().unwrap() {
            "answer" => {
                let answer = Description {
                    kind: SdpType::Answer,
                    sdp: message["sdp"].as_str().unwrap().to_owned(),
                };
                pc.set_remote_description(&answer).unwrap();
            }
            "candidate" => {
                let c = &message["candidate"];
                let candidate = c["candidate"].as_str().map(|line| IceCandidate {
                    candidate: line.to_owned(),
                    sdp_mid: c["sdpMid"].as_str().map(str::to_owned),
                    sdp_m_line_index: c["sdpMLineIndex"].as_u64().map(|i| i as u16),
                    username_fragment: None,
                });
                pc.add_ice_candidate(candidate.as_ref()).unwrap();
            }
            "error" => panic!("{name}: {message}"),
            _ => {}
        }
        messages.push(message);
    }
    messages
}
