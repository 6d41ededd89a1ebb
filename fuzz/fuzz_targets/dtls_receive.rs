//! The DTLS-SRTP transport's input path: arbitrary datagrams, split from
//! the input, reach a DTLS server and a DTLS client (in each DTLS
//! version policy) interleaved with timeouts, and the remote fingerprint
//! is parsed from the input too. Nothing panics; a transport that fails
//! stays failed and quiet.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter::dtls::{Certificate, DtlsConfig, DtlsRole, DtlsState, DtlsTransport, Fingerprint, VersionPolicy};

/// One certificate for every run: generating a key per input would
/// drown the fuzzer's time in key generation.
fn certificate() -> &'static Certificate {
    static CERT: OnceLock<Certificate> = OnceLock::new();
    CERT.get_or_init(|| Certificate::generate().expect("a certificate"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // A fingerprint attribute value from the first line, if any.
    if let Some(line) = rest.split(|&b| b == b'\n').next() {
        if let Ok(text) = std::str::from_utf8(line) {
            if let Ok(fp) = Fingerprint::parse(text) {
                let again = Fingerprint::parse(&fp.to_string()).expect("a written fingerprint parses");
                assert_eq!(again, fp);
            }
        }
    }
    let start = Instant::now();
    let role = if mode & 1 == 0 { DtlsRole::Server } else { DtlsRole::Client };
    let versions = [VersionPolicy::Dtls12, VersionPolicy::Dtls13, VersionPolicy::Auto][usize::from(mode >> 1) % 3];
    let config = DtlsConfig {
        versions,
        deterministic_seed: Some(1),
        ..DtlsConfig::default()
    };
    let Ok(mut dtls) = DtlsTransport::new(role, certificate(), config, start) else {
        return;
    };
    let _ = dtls.set_remote_fingerprints(vec![certificate().fingerprint().clone()]);
    let mut out = Vec::new();
    let mut now = start;
    // Chunks: [delay, len_hi, len_lo, bytes...].
    let mut rest = rest;
    while rest.len() >= 3 {
        let (delay, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[3 + body.len()..];
        now += Duration::from_millis(u64::from(delay) * 10);
        dtls.handle_receive(now, body);
        if dtls.poll_timeout().is_some_and(|t| t <= now) {
            dtls.handle_timeout(now);
        }
        while dtls.poll_transmit(&mut out).is_some() {}
        while dtls.poll_event().is_some() {}
        if dtls.state() == DtlsState::Failed {
            assert!(dtls.poll_transmit(&mut out).is_none(), "a failed transport sends nothing");
        }
    }
});
