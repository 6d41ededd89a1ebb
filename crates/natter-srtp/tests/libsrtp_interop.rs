//! natter-srtp against libsrtp 2, the SRTP library inside Chromium and
//! most other WebRTC stacks: for every profile, packets one protects the
//! other unprotects, both produce the same bytes for the same packet, the
//! rollover counter wraps alike, and both refuse replays and forgeries.
//!
//! Needs a C compiler and libsrtp2's headers: on Debian,
//! `apt-get install libsrtp2-dev build-essential pkg-config`. Without them
//! the test fails; it does not skip.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use natter_srtp::*;
use rand::{Rng, SeedableRng};

const INSTALL: &str = "apt-get install libsrtp2-dev build-essential pkg-config";
/// libsrtp's srtp_err_status_t values the test expects.
const LIBSRTP_AUTH_FAIL: i32 = 7;
const LIBSRTP_REPLAY_FAIL: i32 = 9;

fn harness_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/libsrtp/harness.c");
        // Per process: a debug and a release run may build at the same time.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("libsrtp-harness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("harness");
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "libsrtp2"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| vec!["-lsrtp2".to_string()]);
        let out = Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .args(&flags)
            .output()
            .unwrap_or_else(|e| panic!("cannot run cc ({e}); {INSTALL}"));
        assert!(
            out.status.success(),
            "building the libsrtp harness failed; {INSTALL}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        binary
    })
}

/// One libsrtp process with an outbound and an inbound session.
struct Libsrtp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Libsrtp {
    fn new(profile: ProtectionProfile, key: &[u8], salt: &[u8]) -> Libsrtp {
        let mut child = Command::new(harness_binary())
            .arg(profile.name())
            .arg(hex(&[key, salt].concat()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start libsrtp harness");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Libsrtp { child, stdin, stdout }
    }

    fn call(&mut self, op: &str, packet: &[u8]) -> Result<Vec<u8>, i32> {
        writeln!(self.stdin, "{op} {}", hex(packet)).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let line = line.trim();
        if let Some(h) = line.strip_prefix("ok ") {
            Ok(unhex(h))
        } else if let Some(code) = line.strip_prefix("err ") {
            Err(code.parse().unwrap())
        } else {
            panic!("libsrtp harness said {line:?} (did it exit? a profile it lacks?)");
        }
    }
}

impl Drop for Libsrtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SSRC: u32 = 0xcafe_f00d;

/// An RTP packet; some carry CSRCs and a header extension, which SRTP
/// authenticates but leaves in the clear.
fn rtp_packet(rng: &mut impl Rng, seq: u16, payload_len: usize) -> Vec<u8> {
    let csrcs = rng.gen_range(0..3usize);
    let extension_words = if rng.gen_bool(0.5) {
        Some(rng.gen_range(0..3usize))
    } else {
        None
    };
    let mut p = vec![
        0x80 | csrcs as u8 | if extension_words.is_some() { 0x10 } else { 0 },
        111,
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    for _ in 0..csrcs {
        p.extend_from_slice(&rng.gen::<u32>().to_be_bytes());
    }
    if let Some(words) = extension_words {
        p.extend_from_slice(&0xbedeu16.to_be_bytes());
        p.extend_from_slice(&(words as u16).to_be_bytes());
        p.extend((0..words * 4).map(|_| rng.gen::<u8>()));
    }
    p.extend((0..payload_len).map(|_| rng.gen::<u8>()));
    p
}

/// A sender report followed by an SDES item, as a compound RTCP packet.
fn rtcp_packet(rng: &mut impl Rng) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend((0..20).map(|_| rng.gen::<u8>()));
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[1, 6, b'n', b'a', b't', b't', b'e', b'r', 0, 0]);
    p
}

fn protect_rtp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtp_overhead(), 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).expect("natter protect_rtp");
    buf.truncate(n);
    buf
}

fn protect_rtcp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtcp_overhead(), 0);
    let n = ctx.protect_rtcp(&mut buf, plain.len()).expect("natter protect_rtcp");
    buf.truncate(n);
    buf
}

fn unprotect(f: impl FnOnce(&mut [u8]) -> Result<usize, Error>, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    let n = f(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn interop(profile: ProtectionProfile) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(profile.id()));
    let key: Vec<u8> = (0..profile.master_key_len()).map(|_| rng.gen()).collect();
    let salt: Vec<u8> = (0..profile.master_salt_len()).map(|_| rng.gen()).collect();
    let mut libsrtp = Libsrtp::new(profile, &key, &salt);
    let mut natter_tx = SrtpContext::new(profile, &key, &salt, Config::default()).unwrap();
    let mut natter_rx = SrtpContext::new(profile, &key, &salt, Config::default()).unwrap();

    // SRTP across a rollover-counter wrap: 65530..=65535, then 0..=5 with ROC 1.
    let seqs: Vec<u16> = (65530..=65535).chain(0..=5).collect();
    let mut sent = Vec::new();
    for (i, &seq) in seqs.iter().enumerate() {
        let plain = rtp_packet(&mut rng, seq, [0, 1, 17, 160, 1200][i % 5]);
        let ours = protect_rtp(&mut natter_tx, &plain);
        let theirs = libsrtp.call("protect_rtp", &plain).expect("libsrtp protect_rtp");
        assert_eq!(
            hex(&ours),
            hex(&theirs),
            "{profile} seq {seq}: natter and libsrtp protect differently"
        );
        // natter -> libsrtp, libsrtp -> natter.
        let back = libsrtp
            .call("unprotect_rtp", &ours)
            .expect("libsrtp unprotects natter's SRTP");
        assert_eq!(back, plain, "{profile} seq {seq}");
        let back = unprotect(|b| natter_rx.unprotect_rtp(b), &theirs).expect("natter unprotects libsrtp's SRTP");
        assert_eq!(back, plain, "{profile} seq {seq}");
        sent.push(ours);
    }
    assert_eq!(natter_tx.highest_index(SSRC), Some((1 << 16) | 5));
    assert_eq!(natter_rx.highest_index(SSRC), Some((1 << 16) | 5));

    // Replays, before and after the wrap, are refused by both.
    for packet in [&sent[2], &sent[9]] {
        assert_eq!(
            libsrtp.call("unprotect_rtp", packet),
            Err(LIBSRTP_REPLAY_FAIL),
            "{profile}"
        );
        assert!(matches!(
            unprotect(|b| natter_rx.unprotect_rtp(b), packet),
            Err(Error::Replayed { .. })
        ));
    }
    // A packet tampered with in payload, header or tag is refused by both.
    let next = rtp_packet(&mut rng, 6, 100);
    let good = protect_rtp(&mut natter_tx, &next);
    for at in [1, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        assert_eq!(
            libsrtp.call("unprotect_rtp", &bad),
            Err(LIBSRTP_AUTH_FAIL),
            "{profile} byte {at}"
        );
        assert!(matches!(
            unprotect(|b| natter_rx.unprotect_rtp(b), &bad),
            Err(Error::AuthenticationFailed { .. })
        ));
    }
    // ... and the untampered one still goes through after them.
    assert_eq!(unprotect(|b| natter_rx.unprotect_rtp(b), &good).unwrap(), next);

    // SRTCP. natter starts the SRTCP index at 0 (RFC 3711 §3.4), libsrtp at
    // 1; a second natter sender set to 1 must match libsrtp byte for byte.
    let mut natter_tx_from_1 = SrtpContext::new(profile, &key, &salt, Config::default()).unwrap();
    natter_tx_from_1.set_srtcp_index(SSRC, 1).unwrap();
    let mut sent = Vec::new();
    for _ in 0..5 {
        let plain = rtcp_packet(&mut rng);
        let ours = protect_rtcp(&mut natter_tx, &plain);
        let back = libsrtp
            .call("unprotect_rtcp", &ours)
            .expect("libsrtp unprotects natter's SRTCP");
        assert_eq!(back, plain, "{profile}");
        let theirs = libsrtp.call("protect_rtcp", &plain).expect("libsrtp protect_rtcp");
        assert_eq!(
            hex(&protect_rtcp(&mut natter_tx_from_1, &plain)),
            hex(&theirs),
            "{profile} SRTCP bytes"
        );
        let back = unprotect(|b| natter_rx.unprotect_rtcp(b), &theirs).expect("natter unprotects libsrtp's SRTCP");
        assert_eq!(back, plain, "{profile}");
        sent.push(ours);
    }
    assert_eq!(
        sent[0][sent[0].len() - if profile.is_aead() { 4 } else { 14 }..][..4],
        [0x80, 0, 0, 0]
    );
    assert_eq!(
        libsrtp.call("unprotect_rtcp", &sent[1]),
        Err(LIBSRTP_REPLAY_FAIL),
        "{profile}"
    );
    let theirs = libsrtp.call("protect_rtcp", &rtcp_packet(&mut rng)).unwrap();
    let mut bad = theirs.clone();
    bad[10] ^= 1;
    assert!(matches!(
        unprotect(|b| natter_rx.unprotect_rtcp(b), &bad),
        Err(Error::AuthenticationFailed { .. })
    ));
    unprotect(|b| natter_rx.unprotect_rtcp(b), &theirs).unwrap();
    assert!(matches!(
        unprotect(|b| natter_rx.unprotect_rtcp(b), &theirs),
        Err(Error::Replayed { .. })
    ));
    let ours = protect_rtcp(&mut natter_tx, &rtcp_packet(&mut rng));
    let mut bad = ours.clone();
    // Inside the tag for every profile (the GCM trailer ends with the index).
    let in_tag = bad.len() - 5;
    bad[in_tag] ^= 1;
    assert_eq!(
        libsrtp.call("unprotect_rtcp", &bad),
        Err(LIBSRTP_AUTH_FAIL),
        "{profile}"
    );
    assert_eq!(
        libsrtp.call("unprotect_rtcp", &ours).unwrap().len(),
        ours.len() - profile.rtcp_overhead()
    );
}

#[test]
fn aes128_cm_hmac_sha1_80_interoperates_with_libsrtp() {
    interop(ProtectionProfile::Aes128CmHmacSha1_80);
}

#[test]
fn aes128_cm_hmac_sha1_32_interoperates_with_libsrtp() {
    interop(ProtectionProfile::Aes128CmHmacSha1_32);
}

#[test]
fn aead_aes_128_gcm_interoperates_with_libsrtp() {
    interop(ProtectionProfile::AeadAes128Gcm);
}

#[test]
fn aead_aes_256_gcm_interoperates_with_libsrtp() {
    interop(ProtectionProfile::AeadAes256Gcm);
}

/// RFC 5764 §4.2: both ends split the exported material the same way, so
/// what the client sends the server receives, and the reverse; libsrtp,
/// keyed with each half, agrees with each direction.
#[test]
fn dtls_keying_material_splits_into_matching_directions() {
    for profile in ProtectionProfile::ALL {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let material: Vec<u8> = (0..profile.keying_material_len()).map(|_| rng.gen()).collect();
        let (mut client_tx, mut client_rx) =
            SrtpContext::from_dtls(profile, &material, Role::Client, Config::default()).unwrap();
        let (mut server_tx, mut server_rx) =
            SrtpContext::from_dtls(profile, &material, Role::Server, Config::default()).unwrap();
        let (k, s) = (profile.master_key_len(), profile.master_salt_len());
        let client_key = &material[..k];
        let client_salt = &material[2 * k..2 * k + s];
        let mut libsrtp_client = Libsrtp::new(profile, client_key, client_salt);

        let plain = rtp_packet(&mut rng, 1, 50);
        let up = protect_rtp(&mut client_tx, &plain);
        assert_eq!(unprotect(|b| server_rx.unprotect_rtp(b), &up).unwrap(), plain);
        assert_eq!(
            libsrtp_client.call("unprotect_rtp", &up).unwrap(),
            plain,
            "{profile}: client key"
        );
        let down = protect_rtp(&mut server_tx, &plain);
        assert_eq!(unprotect(|b| client_rx.unprotect_rtp(b), &down).unwrap(), plain);
        assert_ne!(up, down);
    }
}
