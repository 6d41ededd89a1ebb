//! The packet transforms proper: given keys and a packet index, protect or
//! unprotect one SRTP or SRTCP packet in place. No state beyond the keys;
//! indices, rollover and replay are the context's business.

use crate::aes_cm::{counter_iv, AesCm};
use crate::aes_gcm::{self, AesGcm, GCM_TAG_LEN};
use crate::header::RTCP_HEADER_LEN;
use crate::hmac_sha1::{tags_equal, HmacSha1};
use crate::rollover::rollover_counter;
use crate::{Error, ProtectionProfile, SessionKeys};

/// RFC 3711 §3.4: the E flag, the top bit of the SRTCP index word.
const E_FLAG: u32 = 0x8000_0000;
/// RFC 3711 §3.4: the SRTCP index word (E flag and 31-bit index).
pub(crate) const SRTCP_INDEX_LEN: usize = 4;

/// The keys and expanded ciphers of SRTP or of SRTCP, for one direction.
pub(crate) enum Transform {
    /// RFC 3711 AES-CM with HMAC-SHA1, boxed: its expanded AES key and
    /// HMAC states take 1.7 KiB, which every context would otherwise
    /// carry inline whatever its profile (issue 18).
    CmHmac(Box<CmHmac>),
    /// RFC 7714 AES-GCM (its cipher context is on the heap already).
    Gcm { cipher: AesGcm, salt: [u8; 12] },
}

pub(crate) struct CmHmac {
    cipher: AesCm,
    auth: HmacSha1,
    salt: [u8; 14],
    tag_len: usize,
}

impl Transform {
    /// The SRTP (`rtcp` false) or SRTCP transform of `profile` under `keys`.
    pub(crate) fn new(profile: ProtectionProfile, keys: &SessionKeys, rtcp: bool) -> Result<Transform, Error> {
        keys.check(profile)?;
        if profile.is_aead() {
            let mut salt = [0u8; 12];
            salt.copy_from_slice(&keys.salt);
            Ok(Transform::Gcm {
                cipher: AesGcm::new(&keys.encryption_key)?,
                salt,
            })
        } else {
            let mut salt = [0u8; 14];
            salt.copy_from_slice(&keys.salt);
            Ok(Transform::CmHmac(Box::new(CmHmac {
                cipher: AesCm::new(&keys.encryption_key)?,
                auth: HmacSha1::new(&keys.authentication_key),
                salt,
                tag_len: if rtcp {
                    profile.rtcp_tag_len()
                } else {
                    profile.rtp_tag_len()
                },
            })))
        }
    }

    /// Bytes of tag this transform appends.
    pub(crate) fn tag_len(&self) -> usize {
        match self {
            Transform::CmHmac(cm) => cm.tag_len,
            Transform::Gcm { .. } => GCM_TAG_LEN,
        }
    }

    /// RFC 3711 §3.1/§4, RFC 7714 §7–8: encrypts `buf[header_len..len]`
    /// and appends the tag; `buf` has room for it (the caller checked).
    pub(crate) fn protect_rtp(
        &self,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Error> {
        match self {
            Transform::CmHmac(cm) => {
                cm.cipher
                    .apply_keystream(&counter_iv(&cm.salt, ssrc, index), &mut buf[header_len..len])?;
                // RFC 3711 §4.2: the tag covers the packet and then the ROC.
                let tag = cm.auth.sign(&buf[..len], &rollover_counter(index).to_be_bytes());
                buf[len..len + cm.tag_len].copy_from_slice(&tag[..cm.tag_len]);
                Ok(len + cm.tag_len)
            }
            Transform::Gcm { cipher, salt } => {
                let (header, rest) = buf.split_at_mut(header_len);
                let (payload, tail) = rest.split_at_mut(len - header_len);
                // RFC 7714 §8.2: the header is the associated data.
                let tag = cipher.seal(aes_gcm::rtp_iv(salt, ssrc, index), header, payload)?;
                tail[..GCM_TAG_LEN].copy_from_slice(&tag);
                Ok(len + GCM_TAG_LEN)
            }
        }
    }

    /// Checks the tag of the SRTP packet `packet` (which holds the header
    /// and a tag, as the caller checked) and decrypts it in place; returns
    /// the RTP packet's length.
    pub(crate) fn unprotect_rtp(
        &self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Error> {
        let failed = Error::AuthenticationFailed { ssrc, index };
        match self {
            Transform::CmHmac(cm) => {
                let end = packet.len() - cm.tag_len;
                let tag = cm.auth.sign(&packet[..end], &rollover_counter(index).to_be_bytes());
                if !tags_equal(&tag[..cm.tag_len], &packet[end..]) {
                    return Err(failed);
                }
                cm.cipher
                    .apply_keystream(&counter_iv(&cm.salt, ssrc, index), &mut packet[header_len..end])?;
                Ok(end)
            }
            Transform::Gcm { cipher, salt } => {
                let end = packet.len() - GCM_TAG_LEN;
                let (header, rest) = packet.split_at_mut(header_len);
                let (payload, tag) = rest.split_at_mut(end - header_len);
                if !cipher.open(aes_gcm::rtp_iv(salt, ssrc, index), header, tag, payload) {
                    return Err(failed);
                }
                Ok(end)
            }
        }
    }

    /// RFC 3711 §3.4, RFC 7714 §9: protects the RTCP packet `buf[..len]`
    /// under SRTCP index `index`, encrypting it unless `encrypt` is false,
    /// and appends the index word and tag; `buf` has room (caller checked).
    pub(crate) fn protect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
        encrypt: bool,
    ) -> Result<usize, Error> {
        let word = (if encrypt { E_FLAG } else { 0 } | index).to_be_bytes();
        match self {
            Transform::CmHmac(cm) => {
                if encrypt {
                    let iv = counter_iv(&cm.salt, ssrc, u64::from(index));
                    cm.cipher.apply_keystream(&iv, &mut buf[RTCP_HEADER_LEN..len])?;
                }
                // Packet || E || index || tag (§3.4); the tag covers the word.
                buf[len..len + SRTCP_INDEX_LEN].copy_from_slice(&word);
                let end = len + SRTCP_INDEX_LEN;
                let tag = cm.auth.sign(&buf[..end], &[]);
                buf[end..end + cm.tag_len].copy_from_slice(&tag[..cm.tag_len]);
                Ok(end + cm.tag_len)
            }
            Transform::Gcm { cipher, salt } => {
                let iv = aes_gcm::rtcp_iv(salt, ssrc, index);
                // Packet || tag || E || index (RFC 7714 §9).
                let tag = if encrypt {
                    // §9.2: AAD is the first 8 octets and the index word.
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                    cipher.seal(iv, &aad, &mut buf[RTCP_HEADER_LEN..len])?
                } else {
                    // §9.3: everything is AAD, the index word last; lay it
                    // out contiguously first, then move it behind the tag.
                    buf[len..len + SRTCP_INDEX_LEN].copy_from_slice(&word);
                    cipher.seal(iv, &buf[..len + SRTCP_INDEX_LEN], &mut [])?
                };
                buf[len..len + GCM_TAG_LEN].copy_from_slice(&tag);
                buf[len + GCM_TAG_LEN..len + GCM_TAG_LEN + SRTCP_INDEX_LEN].copy_from_slice(&word);
                Ok(len + GCM_TAG_LEN + SRTCP_INDEX_LEN)
            }
        }
    }

    /// The E flag and SRTCP index of `packet`, which holds at least the
    /// index word and the tag.
    pub(crate) fn rtcp_index(&self, packet: &[u8]) -> (bool, u32) {
        let at = match self {
            Transform::CmHmac(cm) => packet.len() - cm.tag_len - SRTCP_INDEX_LEN,
            Transform::Gcm { .. } => packet.len() - SRTCP_INDEX_LEN,
        };
        let word = u32::from_be_bytes([packet[at], packet[at + 1], packet[at + 2], packet[at + 3]]);
        (word & E_FLAG != 0, word & !E_FLAG)
    }

    /// Checks and decrypts the SRTCP packet `packet` in place; returns the
    /// RTCP packet's length. On failure `packet` may have been changed.
    pub(crate) fn unprotect_rtcp(&self, packet: &mut [u8], ssrc: u32) -> Result<usize, Error> {
        let (encrypted, index) = self.rtcp_index(packet);
        let failed = Error::AuthenticationFailed {
            ssrc,
            index: u64::from(index),
        };
        match self {
            Transform::CmHmac(cm) => {
                let tag_at = packet.len() - cm.tag_len;
                let tag = cm.auth.sign(&packet[..tag_at], &[]);
                if !tags_equal(&tag[..cm.tag_len], &packet[tag_at..]) {
                    return Err(failed);
                }
                let end = tag_at - SRTCP_INDEX_LEN;
                if encrypted {
                    let iv = counter_iv(&cm.salt, ssrc, u64::from(index));
                    cm.cipher.apply_keystream(&iv, &mut packet[RTCP_HEADER_LEN..end])?;
                }
                Ok(end)
            }
            Transform::Gcm { cipher, salt } => {
                let iv = aes_gcm::rtcp_iv(salt, ssrc, index);
                let end = packet.len() - GCM_TAG_LEN - SRTCP_INDEX_LEN;
                let word_at = packet.len() - SRTCP_INDEX_LEN;
                let mut word = [0u8; SRTCP_INDEX_LEN];
                word.copy_from_slice(&packet[word_at..]);
                let ok = if encrypted {
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&packet[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                    let (body, tag) = packet[RTCP_HEADER_LEN..word_at].split_at_mut(end - RTCP_HEADER_LEN);
                    cipher.open(iv, &aad, tag, body)
                } else {
                    // §9.3: AAD = packet || index word; put the word where
                    // the tag starts so the AAD is contiguous.
                    let mut tag = [0u8; GCM_TAG_LEN];
                    tag.copy_from_slice(&packet[end..word_at]);
                    packet[end..end + SRTCP_INDEX_LEN].copy_from_slice(&word);
                    cipher.open(iv, &packet[..end + SRTCP_INDEX_LEN], &tag, &mut [])
                };
                if ok {
                    Ok(end)
                } else {
                    Err(failed)
                }
            }
        }
    }
}
