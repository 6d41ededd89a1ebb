//! WHIP and WHEP request handling (RFC 9725 §4.2, §4.3.1): arbitrary
//! bodies as offers for either role and as PATCH fragments give a checked
//! request or a refusal with a 400, 413 or 415 status, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/natter-server/src/whip/request.rs"]
#[allow(dead_code)]
mod request;

use request::{check_offer, media_type_is, Role, SdpFrag, SDP};

fuzz_target!(|data: &[u8]| {
    for role in [Role::Publisher, Role::Player] {
        match check_offer(role, data) {
            Ok(offer) => assert_eq!(offer.sdp.as_bytes(), data),
            Err(e) => assert!(matches!(e.status(), 400 | 413), "{e}"),
        }
    }
    if let Err(e) = SdpFrag::parse(data) {
        assert!(matches!(e.status(), 400 | 413), "{e}");
        assert!(!e.to_string().is_empty());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = media_type_is(text, SDP);
    }
});
