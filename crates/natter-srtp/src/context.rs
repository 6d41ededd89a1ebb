//! A crypto context (RFC 3711 §3.2) for one direction: the session keys
//! of SRTP and SRTCP, and per SSRC the rollover counter, the replay window
//! and the SRTCP index.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::header::{rtcp_ssrc, rtp_header};
use crate::key_derivation::check_len;
use crate::replay::{ReplayWindow, Verdict};
use crate::rollover::{estimate_index, MAX_INDEX};
use crate::transform::{Transform, SRTCP_INDEX_LEN};
use crate::{Error, ProtectionProfile, SessionKeys};

/// RFC 3711 §3.4: the SRTCP index is 31 bits.
pub const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// How a context treats replays, and how much it will track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Packets per replay window, a power of two of at least 64 (RFC 3711
    /// §3.3.2 asks for 64 or more). Default 1024, enough for video
    /// reordering and late retransmissions.
    pub replay_window: usize,
    /// Let a sending context protect the same SRTP index twice. Off by
    /// default: two different packets under one index reuse keystream,
    /// which breaks AES-CM confidentiality and lets an attacker forge
    /// AES-GCM tags. Turn on only to resend identical packets.
    pub allow_repeat_tx: bool,
    /// Encrypt SRTCP (the E flag, RFC 3711 §3.4). Default on; off sends
    /// authenticated-only SRTCP. Receiving accepts either.
    pub encrypt_rtcp: bool,
    /// Most SSRCs a context tracks; state for a new SSRC is refused past
    /// it. Default 1024.
    pub max_streams: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            replay_window: ReplayWindow::DEFAULT_SIZE,
            allow_repeat_tx: false,
            encrypt_rtcp: true,
            max_streams: 1024,
        }
    }
}

/// Which side of the DTLS handshake we were (RFC 5764 §4.2): the client
/// sends with the client write key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The DTLS client.
    Client,
    /// The DTLS server.
    Server,
}

/// Per-SSRC state.
#[derive(Debug, Clone)]
struct Stream {
    /// SRTP indices protected (sending) or authenticated (receiving); its
    /// highest index carries the rollover counter.
    rtp: ReplayWindow,
    /// SRTCP indices authenticated (receiving).
    rtcp: ReplayWindow,
    /// The next SRTCP index to send.
    next_rtcp_index: u32,
}

impl Stream {
    fn new(window: usize) -> Result<Stream, Error> {
        Ok(Stream {
            rtp: ReplayWindow::new(window)?,
            rtcp: ReplayWindow::new(window)?,
            next_rtcp_index: 0,
        })
    }
}

/// SSRCs are 32-bit keys: hash them with one multiplication (Fibonacci
/// hashing) rather than SipHash. State is created only for packets that
/// authenticated or that we send, so nobody without the keys picks them.
#[derive(Default)]
struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Streams = HashMap<u32, Stream, BuildHasherDefault<SsrcHasher>>;

/// The SRTP and SRTCP state of one direction of a session.
///
/// A context is either a sender (call [`protect_rtp`](Self::protect_rtp)
/// and [`protect_rtcp`](Self::protect_rtcp)) or a receiver (call the
/// `unprotect_*` methods); [`SrtpContext::from_dtls`] makes one of each.
/// Within it each SSRC has its own rollover counter, replay window and
/// SRTCP index, created with its first packet (for a receiver: its first
/// packet that authenticates).
///
/// Method kinds: `&self` getters; `protect_*`/`unprotect_*` transform one
/// packet in the caller's buffer and update that SSRC's state; setters
/// (`set_rollover_counter`, `set_srtcp_index`, `remove_stream`) for keying
/// schemes that signal state. Nothing here allocates per packet, reads a
/// clock or does I/O.
pub struct SrtpContext {
    profile: ProtectionProfile,
    keys: Keys,
    config: Config,
    streams: Streams,
}

/// The longest master key and salt of the profiles (RFC 5764 §4.1.2,
/// RFC 7714 §14).
const MAX_MASTER_KEY_LEN: usize = 32;
const MAX_MASTER_SALT_LEN: usize = 14;

/// A context's keys: the master key until the first packet, then the
/// SRTP and SRTCP transforms derived from it. A context that never
/// carries a packet (a connection with data channels only) never
/// expands its ciphers (issue 18).
enum Keys {
    Master {
        key: [u8; MAX_MASTER_KEY_LEN],
        salt: [u8; MAX_MASTER_SALT_LEN],
    },
    Derived {
        rtp: Transform,
        rtcp: Transform,
    },
}

impl Keys {
    /// The transforms, derived first if they were not yet.
    fn derived(&mut self, profile: ProtectionProfile) -> Result<(&Transform, &Transform), Error> {
        if let Keys::Master { key, salt } = self {
            let key = &key[..profile.master_key_len()];
            let salt = &salt[..profile.master_salt_len()];
            let rtp = SessionKeys::derive_rtp(profile, key, salt)?;
            let rtcp = SessionKeys::derive_rtcp(profile, key, salt)?;
            *self = Keys::Derived {
                rtp: Transform::new(profile, &rtp, false)?,
                rtcp: Transform::new(profile, &rtcp, true)?,
            };
        }
        match self {
            Keys::Derived { rtp, rtcp } => Ok((rtp, rtcp)),
            // Just replaced above.
            Keys::Master { .. } => unreachable!("keys derived above"),
        }
    }
}

impl core::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("config", &self.config)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context keyed by a master key and master salt (RFC 3711 §8.1),
    /// deriving session keys with kdr = 0 when the first packet comes.
    pub fn new(
        profile: ProtectionProfile,
        master_key: &[u8],
        master_salt: &[u8],
        config: Config,
    ) -> Result<SrtpContext, Error> {
        check_len("master key", master_key, profile.master_key_len())?;
        check_len("master salt", master_salt, profile.master_salt_len())?;
        ReplayWindow::new(config.replay_window)?;
        let mut key = [0u8; MAX_MASTER_KEY_LEN];
        key[..master_key.len()].copy_from_slice(master_key);
        let mut salt = [0u8; MAX_MASTER_SALT_LEN];
        salt[..master_salt.len()].copy_from_slice(master_salt);
        Ok(SrtpContext {
            profile,
            keys: Keys::Master { key, salt },
            config,
            streams: Streams::default(),
        })
    }

    /// A context keyed by session keys directly (as RFC 7714's test vectors
    /// are given).
    pub fn from_session_keys(
        profile: ProtectionProfile,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
        config: Config,
    ) -> Result<SrtpContext, Error> {
        ReplayWindow::new(config.replay_window)?;
        Ok(SrtpContext {
            profile,
            keys: Keys::Derived {
                rtp: Transform::new(profile, rtp, false)?,
                rtcp: Transform::new(profile, rtcp, true)?,
            },
            config,
            streams: Streams::default(),
        })
    }

    /// RFC 5764 §4.2: the sending and receiving contexts from the keying
    /// material exported from DTLS with the label `EXTRACTOR-dtls_srtp`,
    /// [`ProtectionProfile::keying_material_len`] bytes laid out as
    /// client_write_key | server_write_key | client_write_salt |
    /// server_write_salt. Returns `(send, receive)`.
    pub fn from_dtls(
        profile: ProtectionProfile,
        keying_material: &[u8],
        role: Role,
        config: Config,
    ) -> Result<(SrtpContext, SrtpContext), Error> {
        let expected = profile.keying_material_len();
        if keying_material.len() != expected {
            return Err(Error::InvalidKeyingMaterial {
                len: keying_material.len(),
                expected,
            });
        }
        let (keys, salts) = keying_material.split_at(2 * profile.master_key_len());
        let (client_key, server_key) = keys.split_at(profile.master_key_len());
        let (client_salt, server_salt) = salts.split_at(profile.master_salt_len());
        let client = SrtpContext::new(profile, client_key, client_salt, config.clone())?;
        let server = SrtpContext::new(profile, server_key, server_salt, config)?;
        Ok(match role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        })
    }

    /// The profile the context was keyed for.
    pub fn profile(&self) -> ProtectionProfile {
        self.profile
    }

    /// The context's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The highest SRTP packet index seen for `ssrc` (its rollover counter
    /// is `index >> 16`), if any.
    pub fn highest_index(&self, ssrc: u32) -> Option<u64> {
        self.streams.get(&ssrc).and_then(|s| s.rtp.highest())
    }

    /// How many SSRCs the context tracks.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Protects the RTP packet `buf[..len]` in place (RFC 3711 §3.3, RFC
    /// 7714 §7) and returns the SRTP packet's length; `buf` needs
    /// [`ProtectionProfile::rtp_overhead`] bytes of tailroom past `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        if len > buf.len() {
            return Err(Error::LengthOutOfBounds {
                len,
                capacity: buf.len(),
            });
        }
        let header = rtp_header(&buf[..len], 0)?;
        let (rtp, _) = self.keys.derived(self.profile)?;
        let needed = len + rtp.tag_len();
        if buf.len() < needed {
            return Err(Error::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        let ssrc = header.ssrc;
        let stream = stream_entry(&mut self.streams, &self.config, ssrc)?;
        let index = estimate_index(stream.rtp.highest(), header.sequence_number);
        if index > MAX_INDEX {
            return Err(Error::IndexExhausted { ssrc, what: "SRTP" });
        }
        if !self.config.allow_repeat_tx {
            check(&stream.rtp, ssrc, index)?;
        }
        let out = rtp.protect_rtp(buf, header.len, len, ssrc, index)?;
        stream.rtp.accept(index);
        Ok(out)
    }

    /// Authenticates and decrypts the SRTP packet `packet` in place (RFC
    /// 3711 §3.3, RFC 7714 §7) and returns the RTP packet's length (it
    /// starts at `packet[0]`). On error the packet is dropped and the
    /// context is unchanged; the buffer's contents are unspecified.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, Error> {
        let (rtp, _) = self.keys.derived(self.profile)?;
        let header = rtp_header(packet, rtp.tag_len())?;
        let ssrc = header.ssrc;
        let window = self.streams.get(&ssrc).map(|s| &s.rtp);
        let index = estimate_index(window.and_then(ReplayWindow::highest), header.sequence_number);
        if index > MAX_INDEX {
            return Err(Error::IndexExhausted { ssrc, what: "SRTP" });
        }
        if let Some(window) = window {
            check(window, ssrc, index)?;
        }
        let len = rtp.unprotect_rtp(packet, header.len, ssrc, index)?;
        // Only now, authenticated, may the packet create or move state.
        stream_entry(&mut self.streams, &self.config, ssrc)?.rtp.accept(index);
        Ok(len)
    }

    /// Protects the RTCP compound packet `buf[..len]` in place (RFC 3711
    /// §3.4, RFC 7714 §9) and returns the SRTCP packet's length; `buf`
    /// needs [`ProtectionProfile::rtcp_overhead`] bytes of tailroom.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        if len > buf.len() {
            return Err(Error::LengthOutOfBounds {
                len,
                capacity: buf.len(),
            });
        }
        let ssrc = rtcp_ssrc(&buf[..len], 0)?;
        let (_, rtcp) = self.keys.derived(self.profile)?;
        let needed = len + SRTCP_INDEX_LEN + rtcp.tag_len();
        if buf.len() < needed {
            return Err(Error::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        let stream = stream_entry(&mut self.streams, &self.config, ssrc)?;
        let index = stream.next_rtcp_index;
        if index > MAX_SRTCP_INDEX {
            return Err(Error::IndexExhausted { ssrc, what: "SRTCP" });
        }
        let out = rtcp.protect_rtcp(buf, len, ssrc, index, self.config.encrypt_rtcp)?;
        stream.next_rtcp_index = index + 1;
        Ok(out)
    }

    /// Authenticates and, if its E flag is set, decrypts the SRTCP packet
    /// `packet` in place (RFC 3711 §3.4, RFC 7714 §9); returns the RTCP
    /// packet's length. On error the context is unchanged.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, Error> {
        let (_, rtcp) = self.keys.derived(self.profile)?;
        let ssrc = rtcp_ssrc(packet, SRTCP_INDEX_LEN + rtcp.tag_len())?;
        let (_, index) = rtcp.rtcp_index(packet);
        let index = u64::from(index);
        if let Some(stream) = self.streams.get(&ssrc) {
            check(&stream.rtcp, ssrc, index)?;
        }
        let len = rtcp.unprotect_rtcp(packet, ssrc)?;
        stream_entry(&mut self.streams, &self.config, ssrc)?.rtcp.accept(index);
        Ok(len)
    }

    /// Sets the rollover counter of `ssrc`, as when it is signalled out of
    /// band (e.g. a receiver joining a running stream): the next packet's
    /// index is estimated against `roc` * 2^16 + `sequence_number`.
    /// Forgets the stream's SRTP replay history.
    pub fn set_rollover_counter(&mut self, ssrc: u32, roc: u32, sequence_number: u16) -> Result<(), Error> {
        let window = self.config.replay_window;
        let stream = stream_entry(&mut self.streams, &self.config, ssrc)?;
        stream.rtp = ReplayWindow::new(window)?;
        stream.rtp.accept((u64::from(roc) << 16) | u64::from(sequence_number));
        Ok(())
    }

    /// Sets the next SRTCP index a sending context uses for `ssrc`.
    pub fn set_srtcp_index(&mut self, ssrc: u32, next_index: u32) -> Result<(), Error> {
        stream_entry(&mut self.streams, &self.config, ssrc)?.next_rtcp_index = next_index;
        Ok(())
    }

    /// Forgets everything about `ssrc` (e.g. on an RTCP BYE).
    pub fn remove_stream(&mut self, ssrc: u32) {
        self.streams.remove(&ssrc);
    }
}

fn check(window: &ReplayWindow, ssrc: u32, index: u64) -> Result<(), Error> {
    match window.check(index) {
        Verdict::Fresh => Ok(()),
        Verdict::Replayed => Err(Error::Replayed { ssrc, index }),
        Verdict::TooOld => Err(Error::TooOld {
            ssrc,
            index,
            highest: window.highest().unwrap_or_default(),
            window: window.size(),
        }),
    }
}

fn stream_entry<'a>(streams: &'a mut Streams, config: &Config, ssrc: u32) -> Result<&'a mut Stream, Error> {
    let count = streams.len();
    match streams.entry(ssrc) {
        Entry::Occupied(entry) => Ok(entry.into_mut()),
        Entry::Vacant(entry) => {
            if count >= config.max_streams {
                return Err(Error::TooManyStreams {
                    ssrc,
                    max: config.max_streams,
                });
            }
            Ok(entry.insert(Stream::new(config.replay_window)?))
        }
    }
}
