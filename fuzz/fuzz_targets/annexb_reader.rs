//! The H.264 Annex B reader (`natter_io::media_file::annexb`), which
//! reads files `natter join --video` is given: arbitrary bytes give
//! access units or an error, never a panic; the units start at an IDR
//! picture, each behind a 4-byte start code, and read again give the
//! same units.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_io::media_file::annexb::access_units;

fuzz_target!(|data: &[u8]| {
    let Ok(units) = access_units(data) else {
        return;
    };
    assert!(units[0].keyframe, "the first unit is an IDR picture");
    let stream: Vec<u8> = units.iter().flat_map(|u| u.data.iter().copied()).collect();
    for unit in &units {
        assert!(unit.data.starts_with(&[0, 0, 0, 1]));
    }
    let again = access_units(&stream).expect("units read back");
    assert_eq!(again, units);
});
