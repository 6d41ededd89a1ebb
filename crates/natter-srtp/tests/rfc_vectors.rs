//! Known-answer tests: RFC 3711 Appendix B.2 (AES-CM keystream) and B.3
//! (key derivation), RFC 7714 §16 (SRTP) and §17 (SRTCP) for both GCM
//! profiles, encrypted and authenticated-only.

use natter_srtp::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---- RFC 3711 Appendix B.2 --------------------------------------------

/// B.2: the keystream for session key 2B7E..., salt F0F1...FCFD, SSRC 0,
/// ROC 0, SEQ 0, read as the ciphertext of an all-zero payload of the
/// segment's 1044512 octets. Its last blocks coincide with NIST SP 800-38A
/// F.5.1, so this pins the IV layout and counter increment too.
#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let keys = SessionKeys {
        encryption_key: unhex("2B7E151628AED2A6ABF7158809CF4F3C"),
        authentication_key: vec![0; 20],
        salt: unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
    };
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let mut ctx = SrtpContext::from_session_keys(profile, &keys, &keys, Config::default()).unwrap();
    const SEGMENT: usize = 1_044_512;
    let mut buf = vec![0u8; 12 + SEGMENT + profile.rtp_overhead()];
    buf[0] = 0x80; // V=2, SEQ 0, SSRC 0
    let len = ctx.protect_rtp(&mut buf, 12 + SEGMENT).unwrap();
    assert_eq!(len, 12 + SEGMENT + 10);
    let keystream = &buf[12..12 + SEGMENT];
    let block = |n: usize| &keystream[n * 16..n * 16 + 16];
    assert_eq!(block(0), unhex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), unhex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), unhex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xFEFF), unhex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xFF00), unhex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xFF01), unhex("6A2CC3787889374FBEB4C81B17BA6C44"));
    assert_eq!(SEGMENT, 0xFF02 * 16);
}

// ---- RFC 3711 Appendix B.3 --------------------------------------------

const B3_MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
const B3_MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

#[test]
fn rfc3711_b3_key_derivation() {
    let (key, salt) = (unhex(B3_MASTER_KEY), unhex(B3_MASTER_SALT));
    let mut cipher_key = [0u8; 16];
    derive_session_key(&key, &salt, Label::RtpEncryption, &mut cipher_key).unwrap();
    assert_eq!(cipher_key.to_vec(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));

    let mut cipher_salt = [0u8; 14];
    derive_session_key(&key, &salt, Label::RtpSalt, &mut cipher_salt).unwrap();
    assert_eq!(cipher_salt.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));

    // B.3 lists 94 octets of auth key, six AES blocks' worth.
    let mut auth_key = [0u8; 94];
    derive_session_key(&key, &salt, Label::RtpAuthentication, &mut auth_key).unwrap();
    assert_eq!(
        auth_key.to_vec(),
        unhex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
        )
    );

    // The profile-level derivation takes the first 160 bits of the auth key.
    let keys = SessionKeys::derive_rtp(ProtectionProfile::Aes128CmHmacSha1_80, &key, &salt).unwrap();
    assert_eq!(keys.encryption_key, unhex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(keys.salt, unhex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(
        keys.authentication_key,
        unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn key_lengths_are_checked_against_the_profile() {
    let err = SessionKeys::derive_rtp(ProtectionProfile::AeadAes256Gcm, &[0; 16], &[0; 12]).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidKeyLength {
            what: "master key",
            len: 16,
            expected: 32
        }
    );
    let err = SessionKeys::derive_rtcp(ProtectionProfile::Aes128CmHmacSha1_32, &[0; 16], &[0; 12]).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidKeyLength {
            what: "master salt",
            len: 12,
            expected: 14
        }
    );
}

// ---- RFC 7714 §16 (SRTP) and §17 (SRTCP) ------------------------------

const KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// "Quid pro quo"
const SALT: &str = "517569642070726f2071756f";

/// §16: header 8040f17b 8041f8d3 5501a0b2 (SEQ 0xf17b, SSRC 0x5501a0b2, ROC
/// 0) and the payload "Gallia est omnis divisa in partes tres".
const RTP: &str = "8040f17b8041f8d35501a0b2
                   47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";

/// §16.1.1: encrypted and tagged packet, AEAD_AES_128_GCM.
const SRTP_128: &str = "8040f17b8041f8d35501a0b2
                        f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833
                        899d7f27beb16a9152cf765ee4390cce";

/// §16.2.1: encrypted and tagged packet, AEAD_AES_256_GCM.
const SRTP_256: &str = "8040f17b8041f8d35501a0b2
                        32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b
                        7aa3db36dfffd6b0f9bb7878d7a76c13";

/// §17: the RTCP packet the subsections protect (SSRC "Mars"), SRTCP index
/// 0x5d4.
const RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61
                    deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const RTCP_SSRC: u32 = 0x4d61_7273;
const SRTCP_INDEX: u32 = 0x5d4;

/// §17.1: encrypted SRTCP, AEAD_AES_128_GCM (ciphertext, tag, E=1 | index).
const SRTCP_128: &str = "81c8000d4d617273
                         63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b46
                         86303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade 800005d4";

/// §17.2: encrypted SRTCP, AEAD_AES_256_GCM.
const SRTCP_256: &str = "81c8000d4d617273
                         d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658
                         c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be 800005d4";

/// §17.3: authenticated-only SRTCP (E=0), AEAD_AES_128_GCM.
const SRTCP_128_CLEAR: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61
                               deadbeefdeadbeefdeadbeefdeadbeefdeadbeef
                               841dd9683dd78ec92ae58790125f62b3 000005d4";

/// §17.4: authenticated-only SRTCP (E=0), AEAD_AES_256_GCM.
const SRTCP_256_CLEAR: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61
                               deadbeefdeadbeefdeadbeefdeadbeefdeadbeef
                               91db4afbfeee5a978fab4393ed2615fe 000005d4";

fn gcm(profile: ProtectionProfile, encrypt_rtcp: bool) -> SrtpContext {
    let key = if profile == ProtectionProfile::AeadAes256Gcm {
        KEY_256
    } else {
        KEY_128
    };
    let keys = SessionKeys {
        encryption_key: unhex(key),
        authentication_key: vec![],
        salt: unhex(SALT),
    };
    let config = Config {
        encrypt_rtcp,
        ..Config::default()
    };
    SrtpContext::from_session_keys(profile, &keys, &keys, config).unwrap()
}

fn check_srtp(profile: ProtectionProfile, expected: &str) {
    let (plain, expected) = (unhex(RTP), unhex(expected));
    let mut buf = vec![0u8; 1500];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = gcm(profile, true).protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], expected[..], "{profile} protect");

    let mut packet = expected.clone();
    let n = gcm(profile, true).unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..n], plain[..], "{profile} unprotect");

    let mut forged = expected.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(matches!(
        gcm(profile, true).unprotect_rtp(&mut forged),
        Err(Error::AuthenticationFailed { .. })
    ));
}

#[test]
fn rfc7714_16_1_aead_aes_128_gcm_srtp() {
    check_srtp(ProtectionProfile::AeadAes128Gcm, SRTP_128);
}

#[test]
fn rfc7714_16_2_aead_aes_256_gcm_srtp() {
    check_srtp(ProtectionProfile::AeadAes256Gcm, SRTP_256);
}

fn check_srtcp(profile: ProtectionProfile, encrypt: bool, expected: &str) {
    let (plain, expected) = (unhex(RTCP), unhex(expected));
    let mut tx = gcm(profile, encrypt);
    tx.set_srtcp_index(RTCP_SSRC, SRTCP_INDEX).unwrap();
    let mut buf = vec![0u8; 1500];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], expected[..], "{profile} E={encrypt} protect");

    let mut rx = gcm(profile, true);
    let mut packet = expected.clone();
    let n = rx.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet[..n], plain[..], "{profile} E={encrypt} unprotect");

    let mut again = expected.clone();
    assert_eq!(
        rx.unprotect_rtcp(&mut again),
        Err(Error::Replayed {
            ssrc: RTCP_SSRC,
            index: u64::from(SRTCP_INDEX)
        })
    );
    // Flipping the E flag changes the AAD: no downgrade to cleartext.
    let mut flipped = expected.clone();
    let at = flipped.len() - 4;
    flipped[at] ^= 0x80;
    assert!(matches!(
        gcm(profile, true).unprotect_rtcp(&mut flipped),
        Err(Error::AuthenticationFailed { .. })
    ));
}

#[test]
fn rfc7714_17_1_aead_aes_128_gcm_srtcp_encrypted() {
    check_srtcp(ProtectionProfile::AeadAes128Gcm, true, SRTCP_128);
}

#[test]
fn rfc7714_17_2_aead_aes_256_gcm_srtcp_encrypted() {
    check_srtcp(ProtectionProfile::AeadAes256Gcm, true, SRTCP_256);
}

#[test]
fn rfc7714_17_3_aead_aes_128_gcm_srtcp_authenticated_only() {
    check_srtcp(ProtectionProfile::AeadAes128Gcm, false, SRTCP_128_CLEAR);
}

#[test]
fn rfc7714_17_4_aead_aes_256_gcm_srtcp_authenticated_only() {
    check_srtcp(ProtectionProfile::AeadAes256Gcm, false, SRTCP_256_CLEAR);
}
