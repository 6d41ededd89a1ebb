//! The SDP parser (RFC 8866): arbitrary bytes give a session description or
//! an error, never a panic, and a description that parses writes text that
//! parses to the same value and writes identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_sdp::SessionDescription;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sdp) = SessionDescription::parse(text) else {
        return;
    };
    let written = sdp.to_string();
    let again = SessionDescription::parse(&written).expect("written description parses");
    assert_eq!(again, sdp);
    assert_eq!(again.to_string(), written);
    // The typed getters read whatever parsed without panicking.
    for media in sdp.media_views() {
        let _ = (
            media.codecs(),
            media.fingerprints(),
            media.extmaps(),
            media.simulcast(),
            media.rids().count(),
            media.sctp_init(),
        );
    }
});
