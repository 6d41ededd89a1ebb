//! DtlsTransport against an independent DTLS stack: the OpenSSL command
//! line (`openssl s_server` / `openssl s_client`, DTLS 1.2 with
//! `-use_srtp`), over UDP on 127.0.0.1, in both roles. Checks that the
//! handshake completes, that the SRTP keys we export equal the ones
//! OpenSSL prints for `-keymatexport EXTRACTOR-dtls_srtp`, that
//! application data flows both ways and that close_notify is understood;
//! and what happens with a peer whose certificate is RSA.
//!
//! Needs the `openssl` binary (Debian: `apt-get install openssl`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use natter::dtls::*;
use natter_srtp::ProtectionProfile;

/// Bound on every wait for the peer; generous for a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(20);

fn openssl_binary() -> &'static str {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => "openssl",
        _ => panic!("the openssl command-line tool is needed for this interop test: apt-get install openssl"),
    }
}

/// A scratch directory for certificates, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "natter-dtls-openssl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(openssl_binary()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    EcdsaP256,
    Rsa2048,
}

/// A self-signed certificate made by OpenSSL, and its SHA-256 fingerprint
/// as OpenSSL prints it, read with our parser.
struct PeerCert {
    cert: PathBuf,
    key: PathBuf,
    fingerprint: Fingerprint,
}

fn openssl_certificate(dir: &Path, key_type: KeyType) -> PeerCert {
    let cert = dir.join(format!("{key_type:?}-cert.pem"));
    let key = dir.join(format!("{key_type:?}-key.pem"));
    let (alg, opt) = match key_type {
        KeyType::EcdsaP256 => ("ec", "ec_paramgen_curve:P-256"),
        KeyType::Rsa2048 => ("rsa", "rsa_keygen_bits:2048"),
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        alg,
        "-pkeyopt",
        opt,
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=openssl-peer",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    // "sha256 Fingerprint=AB:CD:..." -> RFC 8122 "sha-256 AB:CD:...".
    let printed = run(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    let hex = printed.trim().split_once('=').expect("Fingerprint=").1;
    let fingerprint = Fingerprint::parse(&format!("sha-256 {hex}")).unwrap();
    // Our hash of the DER agrees with OpenSSL's.
    let der_path = dir.join(format!("{key_type:?}-cert.der"));
    run(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-outform",
        "der",
        "-out",
        der_path.to_str().unwrap(),
    ]);
    let der = std::fs::read(&der_path).unwrap();
    assert_eq!(Fingerprint::of_certificate(HashFunction::Sha256, &der), fingerprint);
    PeerCert { cert, key, fingerprint }
}

/// A running openssl process; its stdout and stderr lines arrive on one
/// channel. Killed on drop.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn spawn(args: &[String]) -> Peer {
        let mut child = Command::new(openssl_binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for pipe in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Peer {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `pred`, within `PATIENCE`.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.seen.iter().find(|l| pred(l)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("openssl never printed {what}; it printed:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Whatever arrived so far, without waiting.
    fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    fn keying_material(&mut self) -> String {
        let line = self.wait_for("its exported keying material", |l| l.contains("Keying material:"));
        line.split_once("Keying material:").unwrap().1.trim().to_owned()
    }

    fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Our side: a DtlsTransport over a real socket and the real clock.
struct Natter {
    dtls: DtlsTransport,
    socket: UdpSocket,
    peer: Option<SocketAddr>,
    events: Vec<DtlsEvent>,
    buf: Vec<u8>,
}

impl Natter {
    fn new(role: DtlsRole, config: DtlsConfig, peer_fingerprint: &Fingerprint, peer: Option<SocketAddr>) -> Natter {
        let cert = Certificate::generate().unwrap();
        let mut dtls = DtlsTransport::new(role, &cert, config, Instant::now()).unwrap();
        dtls.set_remote_fingerprints(vec![peer_fingerprint.clone()]).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Natter {
            dtls,
            socket,
            peer,
            events: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Runs the socket until `done` or `PATIENCE` runs out; returns
    /// whether `done` held.
    fn run_until(&mut self, mut done: impl FnMut(&Natter) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let mut datagram = [0u8; 2048];
        loop {
            if let Some(peer) = self.peer {
                while self.dtls.poll_transmit(&mut self.buf).is_some() {
                    self.socket.send_to(&self.buf, peer).unwrap();
                }
            }
            while let Some(event) = self.dtls.poll_event() {
                self.events.push(event);
            }
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wake = self.dtls.poll_timeout().unwrap_or(deadline).min(deadline);
            let wait = wake
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            match self.socket.recv_from(&mut datagram) {
                Ok((len, from)) => {
                    self.peer.get_or_insert(from);
                    self.dtls.handle_receive(Instant::now(), &datagram[..len]);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("recv: {e}"),
            }
            let now = Instant::now();
            if self.dtls.poll_timeout().is_some_and(|t| t <= now) {
                self.dtls.handle_timeout(now);
            }
        }
    }

    fn connected(&mut self) -> Box<DtlsConnected> {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, DtlsEvent::Connected(_)))
            .unwrap();
        match self.events.remove(i) {
            DtlsEvent::Connected(c) => c,
            _ => unreachable!(),
        }
    }

    fn received(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                DtlsEvent::ApplicationData(d) => Some(d.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    fn failure(&self) -> Option<&DtlsError> {
        self.events.iter().find_map(|e| match e {
            DtlsEvent::Failed(err) => Some(err),
            _ => None,
        })
    }
}

fn is_connected(n: &Natter) -> bool {
    n.dtls.state() != DtlsState::Handshaking
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// OpenSSL's profile name and the profile we must end up with.
const PROFILES: [(&str, ProtectionProfile); 3] = [
    ("SRTP_AES128_CM_SHA1_80", ProtectionProfile::Aes128CmHmacSha1_80),
    ("SRTP_AEAD_AES_128_GCM", ProtectionProfile::AeadAes128Gcm),
    ("SRTP_AEAD_AES_256_GCM", ProtectionProfile::AeadAes256Gcm),
];

fn srtp_args(profile: &str, len: usize) -> Vec<String> {
    [
        "-use_srtp",
        profile,
        "-keymatexport",
        SRTP_EXPORTER_LABEL,
        "-keymatexportlen",
        &len.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// natter is the DTLS client, `openssl s_server` the server.
fn natter_client_against_s_server(
    versions: VersionPolicy,
    offer: &str,
    profile_name: &str,
    profile: ProtectionProfile,
) {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::EcdsaP256);
    let port = free_udp_port();
    let mut args: Vec<String> = [
        "s_server",
        "-dtls1_2",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-cert",
        peer_cert.cert.to_str().unwrap(),
        "-key",
        peer_cert.key.to_str().unwrap(),
        // Ask for our certificate (self-signed: OpenSSL notes the
        // verification error and carries on).
        "-verify",
        "1",
        "-naccept",
        "1",
    ]
    .map(String::from)
    .to_vec();
    args.extend(srtp_args(offer, profile.keying_material_len()));
    let mut server = Peer::spawn(&args);
    server.wait_for("ACCEPT", |l| l.contains("ACCEPT"));

    let config = DtlsConfig {
        versions,
        ..DtlsConfig::default()
    };
    let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut natter = Natter::new(DtlsRole::Client, config, &peer_cert.fingerprint, Some(server_addr));
    assert!(
        natter.run_until(is_connected),
        "no handshake; openssl said:\n{}",
        server.output()
    );
    assert_eq!(
        natter.dtls.state(),
        DtlsState::Connected,
        "{:?}\n{}",
        natter.events,
        server.output()
    );
    let connected = natter.connected();
    assert_eq!(connected.version, DtlsVersion::Dtls12);
    assert_eq!(connected.srtp_profile, profile);
    assert_eq!(connected.peer_fingerprint, peer_cert.fingerprint);

    let theirs = server.keying_material();
    assert_eq!(hex(connected.keying_material.as_bytes()), theirs);
    server.wait_for("the SRTP profile", |l| {
        l.contains(&format!("SRTP Extension negotiated, profile={profile_name}"))
    });

    exchange_data_and_close(&mut natter, &mut server);
}

/// natter is the DTLS server, `openssl s_client` the client.
fn s_client_against_natter_server(
    versions: VersionPolicy,
    offer: &str,
    profile_name: &str,
    profile: ProtectionProfile,
) {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::EcdsaP256);
    let config = DtlsConfig {
        versions,
        ..DtlsConfig::default()
    };
    let mut natter = Natter::new(DtlsRole::Server, config, &peer_cert.fingerprint, None);
    let port = natter.socket.local_addr().unwrap().port();
    let mut args: Vec<String> = [
        "s_client",
        "-dtls1_2",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-cert",
        peer_cert.cert.to_str().unwrap(),
        "-key",
        peer_cert.key.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(srtp_args(offer, profile.keying_material_len()));
    let mut client = Peer::spawn(&args);

    assert!(
        natter.run_until(is_connected),
        "no handshake; openssl said:\n{}",
        client.output()
    );
    assert_eq!(
        natter.dtls.state(),
        DtlsState::Connected,
        "{:?}\n{}",
        natter.events,
        client.output()
    );
    let connected = natter.connected();
    assert_eq!(connected.version, DtlsVersion::Dtls12);
    assert_eq!(connected.srtp_profile, profile);
    assert_eq!(connected.peer_fingerprint, peer_cert.fingerprint);
    let theirs = client.keying_material();
    assert_eq!(hex(connected.keying_material.as_bytes()), theirs);
    client.wait_for("the SRTP profile", |l| {
        l.contains(&format!("SRTP Extension negotiated, profile={profile_name}"))
    });

    exchange_data_and_close(&mut natter, &mut client);
}

fn exchange_data_and_close(natter: &mut Natter, peer: &mut Peer) {
    natter.dtls.send_application_data(b"hello from natter\n").unwrap();
    // run_until sends what is queued before it asks `done`.
    assert!(natter.run_until(|_| true));
    peer.wait_for("our application data", |l| l.contains("hello from natter"));

    peer.write("hello from openssl\n");
    assert!(
        natter.run_until(|n| n.received().ends_with(b"hello from openssl\n")),
        "{:?}\n{}",
        natter.events,
        peer.output()
    );

    natter.dtls.close();
    assert!(natter.run_until(|_| true));
    peer.wait_for("the effect of our close_notify", |l| {
        l.contains("DONE") || l.contains("CONNECTION CLOSED") || l.contains("closed")
    });
}

#[test]
fn natter_client_with_openssl_server_every_srtp_profile() {
    for (name, profile) in PROFILES {
        natter_client_against_s_server(VersionPolicy::Dtls12, name, name, profile);
    }
}

#[test]
fn openssl_client_with_natter_server_every_srtp_profile() {
    for (name, profile) in PROFILES {
        s_client_against_natter_server(VersionPolicy::Dtls12, name, name, profile);
    }
}

/// libwebrtc's order: the smaller AES-CM tag first, then GCM.
const CHROMIUM_ORDER: &str = "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM";

#[test]
fn srtp_profile_choice_when_both_offer_everything() {
    // natter as server picks by dimpl's fixed preference, strongest first,
    // whatever order the client offered.
    s_client_against_natter_server(
        VersionPolicy::Dtls12,
        CHROMIUM_ORDER,
        "SRTP_AEAD_AES_256_GCM",
        ProtectionProfile::AeadAes256Gcm,
    );
    // OpenSSL as server, like BoringSSL, picks by its own order, so a
    // server with libwebrtc's order gets AES128_CM_SHA1_80 from us.
    natter_client_against_s_server(
        VersionPolicy::Dtls12,
        CHROMIUM_ORDER,
        "SRTP_AES128_CM_SHA1_80",
        ProtectionProfile::Aes128CmHmacSha1_80,
    );
}

#[test]
fn auto_version_policy_settles_on_dtls12_with_openssl_in_both_roles() {
    let (name, profile) = PROFILES[0];
    natter_client_against_s_server(VersionPolicy::Auto, name, name, profile);
    s_client_against_natter_server(VersionPolicy::Auto, name, name, profile);
}

/// dimpl signs and verifies ECDSA only: an OpenSSL server with an RSA
/// certificate has no ECDHE_ECDSA suite to pick and refuses the
/// handshake ("no shared cipher") with a handshake_failure alert.
#[test]
fn openssl_server_with_an_rsa_certificate_cannot_handshake() {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::Rsa2048);
    let port = free_udp_port();
    let mut args: Vec<String> = [
        "s_server",
        "-dtls1_2",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-cert",
        peer_cert.cert.to_str().unwrap(),
        "-key",
        peer_cert.key.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(srtp_args("SRTP_AES128_CM_SHA1_80", 60));
    let mut server = Peer::spawn(&args);
    server.wait_for("ACCEPT", |l| l.contains("ACCEPT"));
    let config = DtlsConfig {
        versions: VersionPolicy::Dtls12,
        initial_retransmit_timeout: Duration::from_millis(200),
        max_retransmits: 2,
        handshake_timeout: Duration::from_secs(3),
        ..DtlsConfig::default()
    };
    let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut natter = Natter::new(DtlsRole::Client, config, &peer_cert.fingerprint, Some(server_addr));
    assert!(natter.run_until(is_connected));
    assert_eq!(natter.dtls.state(), DtlsState::Failed);
    assert_eq!(
        natter.failure(),
        Some(&DtlsError::PeerAlert { description: 40 }),
        "{:?}",
        natter.events
    );
    assert!(natter.failure().unwrap().to_string().contains("RSA"));
    server.wait_for("OpenSSL's reason", |l| l.contains("no shared cipher"));
}

/// As server dimpl asks for an ECDSA client certificate only (certificate
/// type ecdsa_sign, ECDSA signature algorithms); an OpenSSL client holding
/// an RSA one therefore sends none, and dimpl requires one.
#[test]
fn openssl_client_with_an_rsa_certificate_cannot_handshake() {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::Rsa2048);
    let config = DtlsConfig {
        versions: VersionPolicy::Dtls12,
        initial_retransmit_timeout: Duration::from_millis(200),
        max_retransmits: 2,
        handshake_timeout: Duration::from_secs(3),
        ..DtlsConfig::default()
    };
    let mut natter = Natter::new(DtlsRole::Server, config, &peer_cert.fingerprint, None);
    let port = natter.socket.local_addr().unwrap().port();
    let mut args: Vec<String> = [
        "s_client",
        "-dtls1_2",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-cert",
        peer_cert.cert.to_str().unwrap(),
        "-key",
        peer_cert.key.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(srtp_args("SRTP_AES128_CM_SHA1_80", 60));
    let mut client = Peer::spawn(&args);
    assert!(natter.run_until(is_connected), "{}", client.output());
    assert_eq!(
        natter.dtls.state(),
        DtlsState::Failed,
        "{:?}\n{}",
        natter.events,
        client.output()
    );
    assert_eq!(
        natter.failure(),
        Some(&DtlsError::Protocol(
            "certificate error: no client certificate received".into()
        )),
        "{}",
        client.output()
    );
    // dimpl queued a handshake_failure alert as it gave up; natter sends
    // it (and nothing else dimpl queued), so the client stops at once.
    assert_eq!(natter.dtls.sent_alert(), Some(40));
    client.wait_for("the handshake_failure alert", |l| l.contains("alert handshake failure"));
}
