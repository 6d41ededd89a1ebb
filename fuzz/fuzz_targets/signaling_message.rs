//! The signaling input path of `natter serve`: any frame from any socket,
//! before or after join, never panics the core and gets at most a bounded
//! number of replies.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter_signaling::{Config, ClientMessage, Signaling, TokenKey};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ClientMessage::parse(&text);
    let mut config = Config::new(TokenKey::new(b"fuzz"));
    config.dev = data.first().is_some_and(|b| b & 1 == 1);
    let mut core = Signaling::new(config, [0; 32]);
    let now = Instant::now();
    let a = core.handle_connect(now);
    core.handle_text(a, r#"{"type":"join","version":1,"room":"r","name":"a"}"#, now, 0);
    let b = core.handle_connect(now);
    // Frames separated by newlines, from the joined socket and a fresh one.
    let mut frames = 2;
    for (i, frame) in text.split('\n').enumerate() {
        frames += 1;
        let conn = if i % 2 == 0 { a } else { b };
        core.handle_text(conn, frame, now + Duration::from_millis(i as u64), 1);
    }
    core.handle_timeout(now + Duration::from_secs(60));
    let mut outputs = 0;
    while core.poll_output().is_some() {
        outputs += 1;
    }
    // Each frame earns a reply and a close, or a relay to its one peer.
    assert!(outputs <= 2 * frames + 2, "{outputs} outputs for {frames} frames");
});
