//! SRTP and SRTCP unprotect, every profile, fixed keys: arbitrary bytes
//! give a plaintext length or an error, never a panic; and nothing that
//! fails to authenticate leaves state behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_srtp::{Config, ProtectionProfile, SrtpContext};

fuzz_target!(|data: &[u8]| {
    for profile in ProtectionProfile::ALL {
        let key = vec![0x42; profile.master_key_len()];
        let salt = vec![0x24; profile.master_salt_len()];
        let mut ctx = SrtpContext::new(profile, &key, &salt, Config::default()).expect("fixed keys fit the profile");

        let mut rtp = data.to_vec();
        if let Ok(n) = ctx.unprotect_rtp(&mut rtp) {
            assert!(n + profile.rtp_overhead() <= data.len());
        }
        let mut rtcp = data.to_vec();
        if let Ok(n) = ctx.unprotect_rtcp(&mut rtcp) {
            assert!(n + profile.rtcp_overhead() <= data.len());
        }
        // Random bytes do not authenticate, so no stream state is created.
        assert_eq!(ctx.stream_count(), 0);

        // Protecting arbitrary bytes (as if from our own RTP stack) never
        // panics either.
        let mut buf = data.to_vec();
        buf.resize(data.len() + profile.rtcp_overhead(), 0);
        let _ = ctx.protect_rtp(&mut buf, data.len());
        let mut buf = data.to_vec();
        buf.resize(data.len() + profile.rtcp_overhead(), 0);
        let _ = ctx.protect_rtcp(&mut buf, data.len());
    }
});
