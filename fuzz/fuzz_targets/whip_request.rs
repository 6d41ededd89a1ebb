//! WHIP and WHEP request handling (RFC 9725 §4.2, §4.3.1): arbitrary
//! bodies as offers for either role and as PATCH fragments give a checked
//! request or a refusal with a 400, 413 or 415 status, never a panic; and
//! what the handler reads of the headers (`Content-Type` against both
//! media types, `Authorization: Bearer`, `If-Match`) as arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/natter-server/src/whip/request.rs"]
#[allow(dead_code)]
mod request;

use request::{bearer_token, check_offer, if_match_allows, media_type_is, Role, SdpFrag, SDP, SDP_FRAG};

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
        for expected in [SDP, SDP_FRAG] {
            if let Err(e) = media_type_is(text, expected) {
                assert_eq!(e.status(), 415, "{e}");
            }
        }
        if let Some(token) = bearer_token(text) {
            assert!(!token.is_empty() && text.contains(token), "{text:?} gave {token:?}");
        }
        assert!(if_match_allows(text, text.trim()));
    }
});
