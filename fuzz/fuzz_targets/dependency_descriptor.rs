//! The dependency descriptor parser on arbitrary extension values: an
//! error or a view whose every accessor answers without panicking; a
//! structure it carries is kept as a `DependencyStructure` and used to
//! place the descriptors that follow, as an SFU does, and
//! `VideoCodec::inspect` of an AV1 payload uses both.
//!
//! Input: repeated [length, value...], each one descriptor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_rtp::payload::*;

fuzz_target!(|data: &[u8]| {
    let mut known: Option<DependencyStructure> = None;
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let (value, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        let Ok(d) = DependencyDescriptor::parse(value) else {
            continue;
        };
        let _ = d.active_decode_targets(known.as_ref());
        if let Some(s) = &d.structure {
            let mut count = 0;
            for t in s.templates() {
                assert_eq!(t.decode_target_indications().count(), usize::from(s.decode_targets));
                assert_eq!(t.chain_diffs().count(), usize::from(s.chains));
                assert!(t.frame_diffs().all(|f| (1..=16).contains(&f)));
                assert!(t.layer.spatial_id <= s.max_spatial_id);
                count += 1;
            }
            assert_eq!(count, usize::from(s.templates));
            assert!(s.decode_target_protected_by().all(|c| c < s.chains));
            let resolutions = s.resolutions().count();
            assert!(resolutions == 0 || resolutions == usize::from(s.max_spatial_id) + 1);
            known = Some(DependencyStructure::from(s));
        }
        if let Some(s) = &d.structure {
            // A.8.2: the template index is the id minus the offset, modulo 64.
            let index = d.template_id.wrapping_sub(s.template_id_offset) & 63;
            assert_eq!(d.layer(None).is_some(), index < s.templates);
        }
        let _ = VideoCodec::Av1.inspect(&[0x10, 0x30, 0x00], Some(&d), known.as_ref());
    }
});
