//! DtlsTransport against an independent DTLS stack: the OpenSSL command
//! line (`openssl s_server` / `openssl s_client`, DTLS 1.2 with
//! `-use_srtp`), over UDP on 127.0.0.1, in both roles, with ECDSA P-256,
//! RSA-2048 and RSA-4096 peer certificates (natter's own stays ECDSA
//! P-256). Checks that the handshake completes (ECDHE_RSA suites when the
//! server's certificate is RSA; RSA PKCS#1 v1.5 and PSS signatures on
//! ServerKeyExchange and CertificateVerify), that the SRTP keys we export
//! equal the ones OpenSSL prints for `-keymatexport EXTRACTOR-dtls_srtp`,
//! that application data flows both ways and close_notify is understood,
//! and that a peer whose certificate does not match the fingerprint we
//! were given is refused with a `bad_certificate` alert. Each handshake's
//! time and round trips are printed (`-- --nocapture`).
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
    Rsa4096,
}

/// A self-signed certificate made by OpenSSL (`openssl req -x509
/// -newkey`), and its SHA-256 fingerprint as OpenSSL prints it, read with
/// our parser.
struct PeerCert {
    key_type: KeyType,
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
        KeyType::Rsa4096 => ("rsa", "rsa_keygen_bits:4096"),
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
    PeerCert {
        key_type,
        cert,
        key,
        fingerprint,
    }
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

/// How a handshake went on the wire, seen from natter: flights are runs
/// of datagrams in one direction.
#[derive(Debug, Default, Clone, Copy)]
struct HandshakeStats {
    flights_sent: usize,
    flights_received: usize,
    /// From the first datagram in either direction to the end of the
    /// handshake (Connected or Failed).
    took: Option<Duration>,
}

impl HandshakeStats {
    /// A round trip is a flight of ours answered by one of the peer's.
    fn round_trips(&self) -> usize {
        self.flights_sent.min(self.flights_received)
    }
}

/// Our side: a DtlsTransport over a real socket and the real clock.
struct Natter {
    dtls: DtlsTransport,
    socket: UdpSocket,
    peer: Option<SocketAddr>,
    events: Vec<DtlsEvent>,
    buf: Vec<u8>,
    stats: HandshakeStats,
    first_datagram: Option<Instant>,
    /// Whether the last datagram of the handshake went out (else came in).
    last_sent: Option<bool>,
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
            stats: HandshakeStats::default(),
            first_datagram: None,
            last_sent: None,
        }
    }

    /// Counts a datagram of the handshake in the flight statistics.
    fn count(&mut self, sent: bool) {
        if self.stats.took.is_some() {
            return;
        }
        self.first_datagram.get_or_insert_with(Instant::now);
        if self.last_sent != Some(sent) {
            if sent {
                self.stats.flights_sent += 1;
            } else {
                self.stats.flights_received += 1;
            }
            self.last_sent = Some(sent);
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
                    self.count(true);
                    self.socket.send_to(&self.buf, peer).unwrap();
                }
            }
            while let Some(event) = self.dtls.poll_event() {
                if matches!(event, DtlsEvent::Connected(_) | DtlsEvent::Failed(_)) && self.stats.took.is_none() {
                    self.stats.took = self.first_datagram.map(|t| t.elapsed());
                }
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
                    self.count(false);
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

    fn report(&self, what: &str) {
        let took = self
            .stats
            .took
            .map_or("-".to_owned(), |t| format!("{:.1} ms", t.as_secs_f64() * 1e3));
        println!(
            "handshake {what}: {took}, {} round trips ({} flights sent, {} received)",
            self.stats.round_trips(),
            self.stats.flights_sent,
            self.stats.flights_received
        );
    }
}

fn handshake_over(n: &Natter) -> bool {
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

/// One handshake against OpenSSL.
struct Case<'a> {
    /// natter's role; OpenSSL takes the other.
    role: DtlsRole,
    versions: VersionPolicy,
    peer_cert: &'a PeerCert,
    /// The `-use_srtp` list OpenSSL offers or accepts.
    offer: &'a str,
    /// What must be negotiated.
    profile_name: &'a str,
    profile: ProtectionProfile,
    /// Which signatures OpenSSL may make: its ServerKeyExchange's as
    /// server (`-sigalgs`, with `-client_sigalgs` still accepting our
    /// ECDSA CertificateVerify), its CertificateVerify's as client
    /// (`-client_sigalgs`).
    sigalgs: Option<&'a str>,
    /// The fingerprint natter is given for the peer; `None` for the
    /// right one.
    wrong_fingerprint: Option<&'a Fingerprint>,
}

impl Case<'_> {
    fn new(role: DtlsRole, peer_cert: &PeerCert) -> Case<'_> {
        let (name, profile) = PROFILES[0];
        Case {
            role,
            versions: VersionPolicy::Dtls12,
            peer_cert,
            offer: name,
            profile_name: name,
            profile,
            sigalgs: None,
            wrong_fingerprint: None,
        }
    }

    fn describe(&self) -> String {
        let natter = match self.role {
            DtlsRole::Client => "natter client vs openssl s_server",
            DtlsRole::Server => "natter server vs openssl s_client",
        };
        let sigalgs = self.sigalgs.map_or(String::new(), |s| format!(", signing {s}"));
        format!("{natter}, {:?} certificate{sigalgs}", self.peer_cert.key_type)
    }

    /// Starts OpenSSL and natter and runs the handshake to its end.
    fn start(&self) -> (Natter, Peer) {
        let config = DtlsConfig {
            versions: self.versions,
            ..DtlsConfig::default()
        };
        let fingerprint = self.wrong_fingerprint.unwrap_or(&self.peer_cert.fingerprint);
        let (mode, natter, address) = match self.role {
            DtlsRole::Client => {
                let port = free_udp_port();
                let address = format!("127.0.0.1:{port}");
                let natter = Natter::new(self.role, config, fingerprint, Some(address.parse().unwrap()));
                ("s_server", natter, address)
            }
            DtlsRole::Server => {
                let natter = Natter::new(self.role, config, fingerprint, None);
                let address = natter.socket.local_addr().unwrap().to_string();
                ("s_client", natter, address)
            }
        };
        let mut args: Vec<String> = [
            mode,
            "-dtls1_2",
            "-cert",
            self.peer_cert.cert.to_str().unwrap(),
            "-key",
            self.peer_cert.key.to_str().unwrap(),
            "-use_srtp",
            self.offer,
            "-keymatexport",
            SRTP_EXPORTER_LABEL,
            "-keymatexportlen",
        ]
        .map(String::from)
        .to_vec();
        args.push(self.profile.keying_material_len().to_string());
        match self.role {
            // Ask for our certificate (self-signed: OpenSSL notes the
            // verification error and carries on).
            DtlsRole::Client => args.extend(["-accept", &address, "-verify", "1", "-naccept", "1"].map(String::from)),
            DtlsRole::Server => args.extend(["-connect".to_owned(), address]),
        }
        match (self.sigalgs, self.role) {
            (Some(sigalgs), DtlsRole::Client) => {
                args.extend(["-sigalgs", sigalgs, "-client_sigalgs", "ECDSA+SHA256"].map(String::from));
            }
            (Some(sigalgs), DtlsRole::Server) => args.extend(["-client_sigalgs", sigalgs].map(String::from)),
            (None, _) => {}
        }
        let mut peer = Peer::spawn(&args);
        if self.role == DtlsRole::Client {
            peer.wait_for("ACCEPT", |l| l.contains("ACCEPT"));
        }
        let mut natter = natter;
        assert!(
            natter.run_until(handshake_over),
            "no handshake; openssl said:\n{}",
            peer.output()
        );
        natter.report(&self.describe());
        (natter, peer)
    }

    /// The handshake completes, the SRTP keys are OpenSSL's, data flows
    /// both ways and close_notify ends it. Returns the negotiated cipher
    /// suite as OpenSSL names it.
    fn connects(&self) -> String {
        let (mut natter, mut peer) = self.start();
        assert_eq!(
            natter.dtls.state(),
            DtlsState::Connected,
            "{}: {:?}\n{}",
            self.describe(),
            natter.events,
            peer.output()
        );
        let connected = natter.connected();
        assert_eq!(connected.version, DtlsVersion::Dtls12);
        assert_eq!(connected.srtp_profile, self.profile);
        assert_eq!(connected.peer_fingerprint, self.peer_cert.fingerprint);

        let theirs = peer.keying_material();
        assert_eq!(hex(connected.keying_material.as_bytes()), theirs, "{}", self.describe());
        peer.wait_for("the SRTP profile", |l| {
            l.contains(&format!("SRTP Extension negotiated, profile={}", self.profile_name))
        });
        // s_server prints "CIPHER is X", s_client "Cipher is X".
        let cipher = peer.wait_for("the cipher suite", |l| l.to_ascii_lowercase().contains("cipher is "));
        let cipher = cipher.rsplit(' ').next().unwrap().to_owned();

        exchange_data_and_close(&mut natter, &mut peer);
        cipher
    }

    /// natter refuses the peer's certificate: a FingerprintMismatch, a
    /// bad_certificate alert sent, and OpenSSL fails on reading it.
    fn is_refused(&self) {
        let (natter, mut peer) = self.start();
        assert_eq!(natter.dtls.state(), DtlsState::Failed, "{}", peer.output());
        assert!(
            matches!(natter.failure(), Some(DtlsError::FingerprintMismatch { actual, .. })
                if *actual == self.peer_cert.fingerprint),
            "{:?}",
            natter.events
        );
        assert_eq!(natter.dtls.sent_alert(), Some(ALERT_BAD_CERTIFICATE));
        peer.wait_for("the bad_certificate alert", |l| l.contains("alert bad certificate"));
    }
}

/// `case` (made from the default one) connects with natter as client and
/// as server.
fn connects_in_both_roles(peer_cert: &PeerCert, case: impl for<'a> Fn(Case<'a>) -> Case<'a>) {
    for role in [DtlsRole::Client, DtlsRole::Server] {
        case(Case::new(role, peer_cert)).connects();
    }
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
fn every_srtp_profile_in_both_roles() {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::EcdsaP256);
    for (name, profile) in PROFILES {
        connects_in_both_roles(&peer_cert, |case| Case {
            offer: name,
            profile_name: name,
            profile,
            ..case
        });
    }
}

/// libwebrtc's order: the smaller AES-CM tag first, then GCM.
const CHROMIUM_ORDER: &str = "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM";

#[test]
fn srtp_profile_choice_when_both_offer_everything() {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::EcdsaP256);
    // natter as server picks by dimpl's fixed preference, strongest first,
    // whatever order the client offered.
    Case {
        offer: CHROMIUM_ORDER,
        profile_name: "SRTP_AEAD_AES_256_GCM",
        profile: ProtectionProfile::AeadAes256Gcm,
        ..Case::new(DtlsRole::Server, &peer_cert)
    }
    .connects();
    // OpenSSL as server, like BoringSSL, picks by its own order, so a
    // server with libwebrtc's order gets AES128_CM_SHA1_80 from us.
    Case {
        offer: CHROMIUM_ORDER,
        profile_name: "SRTP_AES128_CM_SHA1_80",
        profile: ProtectionProfile::Aes128CmHmacSha1_80,
        ..Case::new(DtlsRole::Client, &peer_cert)
    }
    .connects();
}

#[test]
fn auto_version_policy_settles_on_dtls12_with_openssl_in_both_roles() {
    let scratch = Scratch::new();
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let peer_cert = openssl_certificate(&scratch.0, key_type);
        connects_in_both_roles(&peer_cert, |case| Case {
            versions: VersionPolicy::Auto,
            ..case
        });
    }
}

/// A server with an RSA certificate picks an ECDHE_RSA suite and signs
/// its ServerKeyExchange with RSA; a client with one signs its
/// CertificateVerify with RSA (OpenSSL 3 signs with RSA-PSS when both
/// offer it, as we do). ECDSA for comparison.
#[test]
fn ecdsa_rsa2048_and_rsa4096_certificates_in_both_roles() {
    let scratch = Scratch::new();
    for (key_type, suite) in [
        (KeyType::EcdsaP256, "ECDHE-ECDSA-"),
        (KeyType::Rsa2048, "ECDHE-RSA-"),
        (KeyType::Rsa4096, "ECDHE-RSA-"),
    ] {
        let peer_cert = openssl_certificate(&scratch.0, key_type);
        let cipher = Case::new(DtlsRole::Client, &peer_cert).connects();
        assert!(cipher.starts_with(suite), "{key_type:?}: {cipher}");
        Case::new(DtlsRole::Server, &peer_cert).connects();
    }
}

/// RSA PKCS#1 v1.5 (`rsa_pkcs1_sha256`, `rsa_pkcs1_sha384`) and RSA-PSS
/// (`rsa_pss_rsae_sha256`, `rsa_pss_rsae_sha512`) signatures, each forced
/// with OpenSSL's `-sigalgs`: on the ServerKeyExchange when natter is
/// the client, on the CertificateVerify when natter is the server.
#[test]
fn rsa_pkcs1_and_pss_signatures_in_both_roles() {
    let scratch = Scratch::new();
    let peer_cert = openssl_certificate(&scratch.0, KeyType::Rsa2048);
    for sigalgs in ["RSA+SHA256", "RSA+SHA384", "rsa_pss_rsae_sha256", "rsa_pss_rsae_sha512"] {
        connects_in_both_roles(&peer_cert, |case| Case {
            sigalgs: Some(sigalgs),
            ..case
        });
    }
}

/// natter given a fingerprint that is not the peer's certificate's (here:
/// another certificate's) refuses the peer in either role, whatever its
/// key type, and tells it so with bad_certificate.
#[test]
fn a_certificate_that_does_not_match_the_fingerprint_is_refused_in_both_roles() {
    let scratch = Scratch::new();
    let other = openssl_certificate(&scratch.0, KeyType::EcdsaP256);
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let dir = scratch.0.join(format!("{key_type:?}"));
        std::fs::create_dir_all(&dir).unwrap();
        let peer_cert = openssl_certificate(&dir, key_type);
        for role in [DtlsRole::Client, DtlsRole::Server] {
            Case {
                wrong_fingerprint: Some(&other.fingerprint),
                ..Case::new(role, &peer_cert)
            }
            .is_refused();
        }
    }
}
