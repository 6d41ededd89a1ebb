//! The SDP `candidate` attribute parser (RFC 8839 §5.1): arbitrary bytes
//! give a candidate or an error, never a panic, and a candidate that
//! parses re-formats to text that parses to the same value and formats
//! identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_ice::candidate::Candidate;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(candidate) = text.parse::<Candidate>() else {
        return;
    };
    let formatted = candidate.to_string();
    let again: Candidate = formatted.parse().expect("formatted candidate parses");
    assert_eq!(again, candidate);
    assert_eq!(again.to_string(), formatted);
});
