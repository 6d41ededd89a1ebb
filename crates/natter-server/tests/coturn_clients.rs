//! coturn's own client tools (`turnutils_stunclient`, `turnutils_uclient`,
//! `turnutils_peer`) against the TURN server under test, over loopback.
//!
//! The server under test is `natter turn` unless `NATTER_TURN_UNDER_TEST=coturn`,
//! which runs coturn's `turnserver` with the same options instead: that is
//! how this harness itself is checked, and it stays useful for telling a
//! harness bug from a server bug.
//!
//! Needs Debian's `coturn` package; a missing tool fails the test.
//!
//! What the tools print, as relied on below (coturn 4.6.1):
//! - `turnutils_stunclient` prints `IPv4. UDP reflexive addr: IP:PORT` and
//!   waits forever when nothing answers, so it runs under a deadline.
//! - `turnutils_uclient` ends with `start_mclient: tot_send_msgs=N,
//!   tot_recv_msgs=M` (progress lines carry an extra `msz=`) and `Total lost
//!   packets L (P%)`. Without `-c` each client has a second, "RTCP",
//!   allocation, so `-n N` sends 2N messages; `-T` and `-y` pair two clients.
//! - A 401 is a challenge to it: after 32 rejected Allocate attempts it prints
//!   `Cannot complete Allocation` and exits 255. Any other error code prints
//!   `error CODE (reason)` and exits 255 at once.
//! - `-S` alone means DTLS; TLS is `-S -t`.
//! - It picks channel numbers in 0x4000..=0x7FFF (RFC 5766's range, wider
//!   than RFC 8656's 0x4000..=0x4FFF). Without `-c` its Allocates alternate
//!   EVEN-PORT with the R bit and the RESERVATION-TOKEN that returned.

use std::fmt;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const HOST: &str = "127.0.0.1";
const REALM: &str = "natter.test";
/// Two accounts, and tests log in as each: a server that keeps one `--user` fails.
const USERS: &[(&str, &str)] = &[("bob", "builder"), ("alice", "wonderland")];
/// Two secrets, the second in use, as while rotating them.
const SECRETS: &[&str] = &["retired-secret", "rest-api-secret"];
/// Messages each uclient session sends.
const MESSAGES: u64 = 10;

// ---------------------------------------------------------------- the tests

#[test]
fn stun_binding() {
    let server = Server::start(&Config::default());
    let run = run_tool(
        "turnutils_stunclient",
        &["-p", &server.ports.listening.to_string(), HOST],
        Duration::from_secs(10),
    );
    let port = run
        .stdout
        .lines()
        .find_map(|line| line.split_once("IPv4. UDP reflexive addr: 127.0.0.1:"))
        .and_then(|(_, port)| port.trim().parse::<u16>().ok());
    server.check(
        run.success() && port.is_some_and(|p| p != 0),
        "a UDP reflexive address 127.0.0.1:PORT",
        &run,
    );
}

#[test]
fn udp_relay_with_channels() {
    let (server, _peer) = server_and_peer(&Config::users());
    let run = uclient(&server, &["-v", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check_relayed(&run, 2 * MESSAGES);
    server.check(run.stdout.contains("success: 0x"), "successful ChannelBinds", &run);
}

#[test]
fn udp_relay_with_send_indications() {
    let (server, _peer) = server_and_peer(&Config::users());
    let run = uclient(&server, &["-v", "-s", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check_relayed(&run, 2 * MESSAGES);
    server.check(
        run.stdout.contains("create perm sent") && !run.stdout.contains("channel bind sent"),
        "CreatePermission and no ChannelBind",
        &run,
    );
}

/// Two clients relayed by the same server talk to each other (`-y`): the
/// peer of each is the other's relayed address. Channels, then Send and
/// Data indications.
#[test]
fn udp_client_to_client_through_one_server() {
    let server = Server::start(&Config::users());
    let run = uclient(&server, &["-y", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check_relayed(&run, 4 * MESSAGES);
    let run = uclient(&server, &["-y", "-s", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check_relayed(&run, 4 * MESSAGES);
}

#[test]
fn tcp_client_transport() {
    let (server, _peer) = server_and_peer(&Config::users());
    let run = uclient(&server, &["-t", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check_relayed(&run, 2 * MESSAGES);
}

#[test]
fn tls_client_transport() {
    let (server, _peer) = server_and_peer(&Config {
        tls: true,
        ..Config::users()
    });
    let tls_port = server.ports.tls.to_string();
    // `-S -t` is TLS (`-S` alone would be DTLS); `-p` names the TLS port.
    let run = uclient(
        &server,
        &["-S", "-t", "-p", &tls_port, "-u", USERS[1].0, "-w", USERS[1].1],
    );
    server.check_relayed(&run, 2 * MESSAGES);
    server.check(
        run.stdout.contains("client session connected with cipher"),
        "a TLS session",
        &run,
    );
}

#[test]
fn tcp_relay() {
    let server = Server::start(&Config::users());
    // RFC 6062: two clients Connect to each other's TCP relayed address.
    let run = uclient(&server, &["-v", "-T", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check_relayed(&run, 2 * MESSAGES);
    server.check(
        run.stdout.lines().any(|l| l.ends_with(": 2 connections are completed")),
        "both peer data connections bound",
        &run,
    );
}

#[test]
fn rest_shared_secret() {
    let (server, _peer) = server_and_peer(&Config::secrets());
    let run = uclient(&server, &["-W", SECRETS[1], "-u", "carol"]);
    server.check_relayed(&run, 2 * MESSAGES);
    if !coturn_under_test() {
        let log = server.log();
        assert!(log.contains("natter turn ready"), "no log written:\n{log}");
        for secret in SECRETS {
            assert!(
                !log.contains(secret),
                "the secret {secret:?} appears in the log:\n{log}"
            );
        }
    }
}

#[test]
fn rest_shared_secret_wrong_secret_is_refused() {
    let server = Server::start(&Config::secrets());
    let run = uclient(&server, &["-W", "not-the-secret", "-u", "carol"]);
    server.check_refused(&run);
}

/// `-N` makes every ChannelBind carry a random channel number. The first bind
/// (for the peer's "RTCP" port) succeeds; the second binds that same peer to
/// another number, which RFC 8656 §12.2 requires be refused with 400.
#[test]
fn negative_channel_rebind_is_refused() {
    let (server, _peer) = server_and_peer(&Config::users());
    let run = uclient(&server, &["-v", "-N", "-u", USERS[1].0, "-w", USERS[1].1]);
    let first_ok = run.stdout.find("success: 0x");
    let refused = run.stdout.find("channel bind: error 400");
    server.check(
        !run.success() && matches!((first_ok, refused), (Some(ok), Some(no)) if ok < no),
        "one successful ChannelBind, then `channel bind: error 400` and a non-zero exit",
        &run,
    );
}

/// With `-T -N` the client sends ConnectionBind with a random CONNECTION-ID.
/// RFC 6062 §5.4 requires 400; coturn instead resets that data connection.
/// Either way the bind must not succeed.
#[test]
fn negative_connection_bind_with_unknown_id_is_refused() {
    let server = Server::start(&Config::users());
    let args = ["-v", "-T", "-N", "-n", "2", "-u", USERS[1].0, "-w", USERS[1].1];
    // On a 400 uclient carries on without the data connection and only gives
    // up on it after a long wait, so this run may be cut short: the verdict
    // is in what it printed by then.
    let run = uclient_for(&server, &args, Duration::from_secs(20));
    let refused = run.stdout.contains("connection bind error 400")
        || (run.stderr.contains("Connection reset by peer") && run.stdout.contains("connection bind sent"));
    server.check(
        refused && !run.stdout.lines().any(|l| l.ends_with(" connections are completed")),
        "ConnectionBind refused with 400 (or the data connection reset)",
        &run,
    );
}

#[test]
fn long_term_static_user() {
    let (server, _peer) = server_and_peer(&Config::users());
    let run = uclient(&server, &["-u", USERS[0].0, "-w", USERS[0].1]);
    server.check_relayed(&run, 2 * MESSAGES);
    if !coturn_under_test() {
        let log = server.log();
        for (_, password) in USERS {
            assert!(
                !log.contains(password),
                "the password {password:?} appears in the log:\n{log}"
            );
        }
    }
}

#[test]
fn long_term_wrong_password_is_refused() {
    let server = Server::start(&Config::users());
    let run = uclient(&server, &["-u", USERS[1].0, "-w", USERS[0].1]);
    server.check_refused(&run);
}

/// The default peer policy refuses loopback (CVE-2020-26262's class):
/// ChannelBind and CreatePermission to 127.0.0.1 get 403, nothing is relayed.
#[test]
fn loopback_peer_is_refused_by_default() {
    let config = Config {
        refuse_loopback: true,
        ..Config::users()
    };
    let (server, _peer) = server_and_peer(&config);
    let run = uclient(&server, &["-v", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check(
        !run.success() && run.stdout.contains("channel bind: error 403") && !run.stdout.contains("tot_send_msgs"),
        "ChannelBind to 127.0.0.1 refused with 403 and nothing relayed",
        &run,
    );
    let run = uclient(&server, &["-v", "-s", "-u", USERS[1].0, "-w", USERS[1].1]);
    server.check(
        !run.success() && run.stdout.contains("create permission error 403") && !run.stdout.contains("tot_send_msgs"),
        "CreatePermission for 127.0.0.1 refused with 403 and nothing relayed",
        &run,
    );
}

// ------------------------------------------------------------ the harness

/// How the server under test is configured; both servers get the same.
#[derive(Default)]
struct Config {
    users: &'static [(&'static str, &'static str)],
    secrets: &'static [&'static str],
    tls: bool,
    /// Keep the default peer policy, which refuses loopback peers.
    refuse_loopback: bool,
}

impl Config {
    fn users() -> Self {
        Self {
            users: USERS,
            ..Self::default()
        }
    }

    fn secrets() -> Self {
        Self {
            secrets: SECRETS,
            ..Self::default()
        }
    }
}

/// Ports one test owns. Picked below the kernel's ephemeral range (32768+)
/// so no client socket can take a relay port, and disjoint between tests so
/// they run in parallel.
struct Ports {
    listening: u16,
    tls: u16,
    /// turnutils_peer listens here and on the next port (its "RTCP" port).
    peer: u16,
    relay_min: u16,
    relay_max: u16,
}

impl Ports {
    const BLOCK: u16 = 32;

    fn reserve() -> Self {
        static NEXT_BLOCK: AtomicU16 = AtomicU16::new(0);
        // Spread concurrent test processes apart; ports 10000..29200.
        let offset = (std::process::id() % 300) as u16;
        loop {
            let block = offset.wrapping_add(NEXT_BLOCK.fetch_add(1, Ordering::Relaxed)) % 600;
            let base = 10_000 + block * Self::BLOCK;
            let free = |port: u16| UdpSocket::bind((HOST, port)).is_ok() && TcpListener::bind((HOST, port)).is_ok();
            if (base..base + Self::BLOCK).all(free) {
                return Self {
                    listening: base,
                    tls: base + 1,
                    peer: base + 2,
                    relay_min: base + 8,
                    relay_max: base + Self::BLOCK - 1,
                };
            }
        }
    }
}

fn coturn_under_test() -> bool {
    match std::env::var("NATTER_TURN_UNDER_TEST").as_deref() {
        Err(_) | Ok("natter") => false,
        Ok("coturn") => true,
        Ok(other) => panic!("NATTER_TURN_UNDER_TEST={other}: expected `natter` or `coturn`"),
    }
}

/// The `natter turn` command line (coturn's option names).
fn natter_args(config: &Config, ports: &Ports, dir: &Path) -> Vec<String> {
    let mut args = strings(&["turn", "--realm", REALM, "--listening-ip", HOST, "--relay-ip", HOST]);
    if !config.refuse_loopback {
        args.extend(strings(&["--allowed-peer-ip", HOST]));
    }
    args.extend(common_args(config, ports, dir));
    args
}

/// The same configuration for coturn's `turnserver`.
fn coturn_args(config: &Config, ports: &Ports, dir: &Path) -> Vec<String> {
    // -n: no config file; its SQLite database and pid file go to the test's own directory.
    let mut args = strings(&["-n", "--no-cli", "--no-dtls", "--log-file", "stdout"]);
    if !config.refuse_loopback {
        args.push("--allow-loopback-peers".into());
    }
    args.extend(strings(&["--realm", REALM, "--listening-ip", HOST, "--relay-ip", HOST]));
    for (flag, file) in [("--db", "turndb"), ("--pidfile", "turnserver.pid")] {
        args.extend([flag.to_string(), dir.join(file).display().to_string()]);
    }
    if !config.users.is_empty() {
        args.push("--lt-cred-mech".into());
    }
    if !config.secrets.is_empty() {
        args.push("--use-auth-secret".into());
    }
    args.extend(common_args(config, ports, dir));
    args
}

/// Options both servers spell the same way.
fn common_args(config: &Config, ports: &Ports, dir: &Path) -> Vec<String> {
    let mut args = vec![
        "--listening-port".to_string(),
        ports.listening.to_string(),
        "--min-port".into(),
        ports.relay_min.to_string(),
        "--max-port".into(),
        ports.relay_max.to_string(),
    ];
    for (name, password) in config.users {
        args.extend(["--user".into(), format!("{name}:{password}")]);
    }
    for secret in config.secrets {
        args.extend(["--static-auth-secret".into(), secret.to_string()]);
    }
    if config.tls {
        let (cert, key) = write_self_signed_cert(dir);
        args.extend(["--tls-listening-port".into(), ports.tls.to_string()]);
        args.extend([
            "--cert".into(),
            cert.display().to_string(),
            "--pkey".into(),
            key.display().to_string(),
        ]);
    } else {
        args.push("--no-tls".into());
    }
    args
}

fn write_self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&cert, certified.cert.pem()).expect("write cert.pem");
    fs::write(&key, certified.signing_key.serialize_pem()).expect("write key.pem");
    (cert, key)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A child process killed when dropped.
struct Process {
    child: Child,
    name: String,
}

impl Process {
    fn spawn(program: &str, args: &[String], log: &Path) -> Self {
        let log = File::create(log).expect("create a log file");
        let child = Command::new(program)
            .args(args)
            // natter's most detailed logs, so the secret checks below mean something.
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| spawn_failed(program, e));
        Self {
            child,
            name: program.to_string(),
        }
    }

    /// Polls `ready` until it holds; fails if the process exits or 10 s pass.
    fn wait_until(&mut self, what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            let log = || fs::read_to_string(log).unwrap_or_default();
            if let Some(status) = self.child.try_wait().expect("poll a child") {
                panic!("{} exited ({status}) before {what}; its log:\n{}", self.name, log());
            }
            assert!(
                Instant::now() < deadline,
                "{} not {what} after 10 s; its log:\n{}",
                self.name,
                log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The TURN server under test, with its own ports and scratch directory.
struct Server {
    process: Process,
    ports: Ports,
    dir: ScratchDir,
}

impl Server {
    fn start(config: &Config) -> Self {
        let ports = Ports::reserve();
        let name = format!("natter-coturn-clients-{}-{}", std::process::id(), ports.listening);
        let dir = ScratchDir(std::env::temp_dir().join(name));
        fs::create_dir_all(&dir.0).expect("create a scratch directory");
        let (program, args) = if coturn_under_test() {
            ("turnserver", coturn_args(config, &ports, &dir.0))
        } else {
            (env!("CARGO_BIN_EXE_natter"), natter_args(config, &ports, &dir.0))
        };
        let log = dir.0.join("server.log");
        let mut process = Process::spawn(program, &args, &log);
        process.wait_until("answering STUN and accepting TCP", &log, || {
            udp_answers(ports.listening, &stun_binding_request())
                && TcpStream::connect((HOST, ports.listening)).is_ok()
                && (!config.tls || TcpStream::connect((HOST, ports.tls)).is_ok())
        });
        Self { process, ports, dir }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
    }

    /// Fails the test, showing the tool's run and the server's log.
    fn check(&self, ok: bool, expected: &str, run: &Run) {
        assert!(
            ok,
            "expected {expected}\n{run}\n--- {} log ---\n{}",
            self.process.name,
            self.log()
        );
    }

    /// Every message sent came back through the relay: uclient counts
    /// round trips, so this is received == sent == `expected`, loss 0.
    fn check_relayed(&self, run: &Run, expected: u64) {
        let totals = run
            .stdout
            .lines()
            .rev()
            .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="));
        let sent = totals.and_then(|l| number_after(l, "tot_send_msgs="));
        let received = totals.and_then(|l| number_after(l, "tot_recv_msgs="));
        let lost = run
            .stdout
            .lines()
            .rev()
            .find_map(|l| number_after(l, "Total lost packets "));
        self.check(
            run.success() && sent == Some(expected) && received == Some(expected) && lost == Some(0),
            &format!("exit 0, tot_send_msgs={expected}, tot_recv_msgs={expected}, 0 lost"),
            run,
        );
    }

    /// Every Allocate was answered with a 401 challenge, 32 times over.
    fn check_refused(&self, run: &Run) {
        self.check(
            !run.success()
                && run.stdout.contains("Cannot complete Allocation")
                && !run.stdout.contains("tot_send_msgs"),
            "a non-zero exit after `Cannot complete Allocation` (every Allocate challenged)",
            run,
        );
    }
}

fn server_and_peer(config: &Config) -> (Server, Process) {
    let server = Server::start(config);
    let port = server.ports.peer;
    let log = server.dir.0.join("peer.log");
    let mut peer = Process::spawn("turnutils_peer", &strings(&["-L", HOST, "-p", &port.to_string()]), &log);
    // turnutils_peer echoes every datagram, on its port and the next.
    peer.wait_until("echoing", &log, || {
        udp_answers(port, b"ping") && udp_answers(port + 1, b"ping")
    });
    (server, peer)
}

/// A Binding request (RFC 8489 §5): no attributes.
fn stun_binding_request() -> [u8; 20] {
    let mut request = [0u8; 20];
    request[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42]);
    request[8..].copy_from_slice(b"natter-probe");
    request
}

/// True if something on `port` answers `request` within 200 ms.
fn udp_answers(port: u16, request: &[u8]) -> bool {
    let socket = UdpSocket::bind((HOST, 0)).expect("bind a probe socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a read timeout");
    let mut buf = [0u8; 1500];
    socket.send_to(request, (HOST, port)).is_ok() && socket.recv_from(&mut buf).is_ok()
}

fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())]
        .parse()
        .ok()
}

fn uclient(server: &Server, args: &[&str]) -> Run {
    uclient_for(server, args, Duration::from_secs(60))
}

/// Runs `turnutils_uclient` against `server`: `MESSAGES` per session to the
/// peer's port (ignored with `-T`, whose clients talk to each other), then
/// `args`, which win over these defaults.
fn uclient_for(server: &Server, args: &[&str], timeout: Duration) -> Run {
    let (port, peer, messages) = (
        server.ports.listening.to_string(),
        server.ports.peer.to_string(),
        MESSAGES.to_string(),
    );
    let mut all = vec!["-p", &port, "-n", &messages, "-e", HOST, "-r", &peer];
    all.extend(args);
    all.push(HOST);
    run_tool("turnutils_uclient", &all, timeout)
}

/// A finished (or timed-out) tool run.
struct Run {
    command: String,
    /// None if the run was killed at its deadline.
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self
            .status
            .map_or("killed at its deadline".to_string(), |s| s.to_string());
        write!(
            f,
            "$ {}\n{status}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Runs a tool to completion, or kills it at `timeout`, capturing its output.
fn run_tool(program: &str, args: &[&str], timeout: Duration) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| spawn_failed(program, e));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll a tool") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        command: format!("{program} {}", args.join(" ")),
        status,
        stdout: stdout.join().expect("read stdout"),
        stderr: stderr.join().expect("read stderr"),
    }
}

fn spawn_failed(program: &str, error: std::io::Error) -> ! {
    if error.kind() == ErrorKind::NotFound {
        panic!("`{program}` not found: these tests need coturn and its tools; run `apt-get install coturn`");
    }
    panic!("cannot start `{program}`: {error}");
}
