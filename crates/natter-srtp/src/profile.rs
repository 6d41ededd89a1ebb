//! SRTP protection profiles: which transforms, and the lengths of their
//! keys, salts and tags.

/// An SRTP protection profile as negotiated by DTLS-SRTP (RFC 5764 §4.1.2,
/// RFC 7714 §14.2).
///
/// For `SRTP_AES128_CM_HMAC_SHA1_32` only SRTP uses the 32-bit tag: RFC 5764
/// §4.1.2 lists `SRTCP_AUTH_TAG_LENGTH = 80` for both AES-CM profiles, as
/// libsrtp does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectionProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` {0x00, 0x01}: AES-128 counter mode
    /// (RFC 3711 §4.1.1) and an 80-bit HMAC-SHA1 tag (§4.2.1).
    Aes128CmHmacSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32` {0x00, 0x02}: as above with a 32-bit
    /// tag on SRTP and an 80-bit tag on SRTCP.
    Aes128CmHmacSha1_32,
    /// `SRTP_AEAD_AES_128_GCM` {0x00, 0x07}: RFC 7714 with a 16-octet tag.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` {0x00, 0x08}: RFC 7714 with a 16-octet tag.
    AeadAes256Gcm,
}

impl ProtectionProfile {
    /// Every profile, strongest first, the order a DTLS `use_srtp`
    /// extension might offer them in.
    pub const ALL: [ProtectionProfile; 4] = [
        ProtectionProfile::AeadAes256Gcm,
        ProtectionProfile::AeadAes128Gcm,
        ProtectionProfile::Aes128CmHmacSha1_80,
        ProtectionProfile::Aes128CmHmacSha1_32,
    ];

    /// The two-byte identifier of RFC 5764 §4.1.2 and RFC 7714 §14.2.
    pub const fn id(self) -> u16 {
        match self {
            ProtectionProfile::Aes128CmHmacSha1_80 => 0x0001,
            ProtectionProfile::Aes128CmHmacSha1_32 => 0x0002,
            ProtectionProfile::AeadAes128Gcm => 0x0007,
            ProtectionProfile::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with an RFC 5764/RFC 7714 identifier, if we implement it.
    pub const fn from_id(id: u16) -> Option<ProtectionProfile> {
        match id {
            0x0001 => Some(ProtectionProfile::Aes128CmHmacSha1_80),
            0x0002 => Some(ProtectionProfile::Aes128CmHmacSha1_32),
            0x0007 => Some(ProtectionProfile::AeadAes128Gcm),
            0x0008 => Some(ProtectionProfile::AeadAes256Gcm),
            _ => None,
        }
    }

    /// The registered name, e.g. `SRTP_AES128_CM_HMAC_SHA1_80`.
    pub const fn name(self) -> &'static str {
        match self {
            ProtectionProfile::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            ProtectionProfile::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_HMAC_SHA1_32",
            ProtectionProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            ProtectionProfile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// Whether the profile is an AEAD transform (RFC 7714) rather than
    /// AES-CM with HMAC-SHA1 (RFC 3711).
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            ProtectionProfile::AeadAes128Gcm | ProtectionProfile::AeadAes256Gcm
        )
    }

    /// Master key length in bytes; session encryption keys have the same
    /// length (RFC 5764 §4.1.2 `cipher_key_length`, RFC 7714 §12).
    pub const fn master_key_len(self) -> usize {
        match self {
            ProtectionProfile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes; session salts have the same length
    /// (RFC 3711 §8.2: 112 bits; RFC 7714 §12: 96 bits).
    pub const fn master_salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Session authentication key length: 160 bits for HMAC-SHA1 (RFC 3711
    /// §8.2), none for AEAD.
    pub const fn auth_key_len(self) -> usize {
        if self.is_aead() {
            0
        } else {
            20
        }
    }

    /// Bytes of authentication tag appended to an SRTP packet.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            ProtectionProfile::Aes128CmHmacSha1_80 => 10,
            ProtectionProfile::Aes128CmHmacSha1_32 => 4,
            ProtectionProfile::AeadAes128Gcm | ProtectionProfile::AeadAes256Gcm => 16,
        }
    }

    /// Bytes of authentication tag appended to an SRTCP packet.
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }

    /// How many bytes protecting an RTP packet adds: the tailroom a caller
    /// must leave (no MKI is used).
    pub const fn rtp_overhead(self) -> usize {
        self.rtp_tag_len()
    }

    /// How many bytes protecting an RTCP packet adds: the tag and the
    /// 4-byte E flag and SRTCP index (RFC 3711 §3.4).
    pub const fn rtcp_overhead(self) -> usize {
        self.rtcp_tag_len() + 4
    }

    /// Length of the DTLS-SRTP keying material to export with the label
    /// `EXTRACTOR-dtls_srtp` (RFC 5764 §4.2): two keys and two salts.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }
}

impl core::fmt::Display for ProtectionProfile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
