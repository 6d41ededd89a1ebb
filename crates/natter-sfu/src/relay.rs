//! The data channel relay of an SFU room (docs/signaling.md, "SFU
//! rooms"): each participant's one connection to the server carries a
//! reliable, ordered data channel (RFC 8831 §6.1) labelled [`LABEL`],
//! and every message on it is addressed in a small envelope.
//!
//! From a participant: `[flags][n][n bytes: recipient's peer id][payload]`,
//! an empty id meaning everyone else in the room. To a participant the
//! server writes the same shape with the sender's id instead. `flags`
//! bit 0 says the payload is text (the channel itself carries only
//! binary messages, RFC 8831 §6.6's PPID 53, so the bit keeps the
//! payload's own kind); the other bits must be 0.
//!
//! The relay does not buffer: each copy goes into the recipient's SCTP
//! send queue at once, and [`Relay::admit`] refuses it (counted) when
//! that queue already holds [`RelayConfig::max_buffered`] bytes, so a
//! recipient that stops reading costs the server at most that much.
//! Senders that need every byte through (files) pace themselves on
//! their recipients' acknowledgements, end to end.

use thiserror::Error;

/// The label of the relay's data channel (RFC 8832 §5.1's Label).
pub const LABEL: &str = "relay";
/// `flags` bit 0: the payload is text (UTF-8).
pub const TEXT: u8 = 0x01;
/// A peer id in an envelope is at most this long (its length is a byte).
pub const MAX_PEER_BYTES: usize = 255;
/// Bytes an envelope adds before a peer id: `flags` and the id's length.
pub const HEADER_BYTES: usize = 2;

/// Why a participant's message cannot be relayed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("relay envelope of {0} bytes: shorter than its 2-byte header")]
    Short(usize),
    #[error("relay envelope flags 0x{0:02x}: only bit 0 (text) is defined")]
    Flags(u8),
    #[error("relay envelope names a peer id of {id} bytes in a message of {len}")]
    PeerOverrun { id: usize, len: usize },
    #[error("relay envelope's peer id is not UTF-8")]
    PeerNotUtf8,
    #[error("relay envelope marked text carries a payload that is not UTF-8")]
    TextNotUtf8,
}

/// One envelope, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub text: bool,
    /// The recipient (from a participant, empty: everyone else) or the
    /// sender (to a participant).
    pub peer: &'a str,
    pub payload: &'a [u8],
}

impl<'a> Envelope<'a> {
    pub fn parse(message: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let [flags, id, ..] = *message else {
            return Err(EnvelopeError::Short(message.len()));
        };
        if flags & !TEXT != 0 {
            return Err(EnvelopeError::Flags(flags));
        }
        let end = HEADER_BYTES + usize::from(id);
        let (Some(peer), Some(payload)) = (message.get(HEADER_BYTES..end), message.get(end..)) else {
            return Err(EnvelopeError::PeerOverrun {
                id: usize::from(id),
                len: message.len(),
            });
        };
        let peer = std::str::from_utf8(peer).map_err(|_| EnvelopeError::PeerNotUtf8)?;
        let text = flags & TEXT != 0;
        if text && std::str::from_utf8(payload).is_err() {
            return Err(EnvelopeError::TextNotUtf8);
        }
        Ok(Envelope { text, peer, payload })
    }

    /// Writes it into `out` (cleared first; its capacity is reused).
    /// `peer` must be at most [`MAX_PEER_BYTES`] long.
    pub fn write(&self, out: &mut Vec<u8>) {
        let id = self.peer.len().min(MAX_PEER_BYTES);
        out.clear();
        out.push(if self.text { TEXT } else { 0 });
        // At most 255: `id` was capped just above.
        out.push(id as u8);
        out.extend_from_slice(&self.peer.as_bytes()[..id]);
        out.extend_from_slice(self.payload);
    }
}

/// Where a relayed message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Every participant of the room but its sender.
    Everyone,
    /// One participant, by peer id.
    To(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// The most a recipient's send queue may hold before its copies are
    /// refused: 4 MiB, four times the high water mark of a sender that
    /// paces on acknowledgements (the web client's 1 MiB), so such
    /// senders never meet it.
    pub max_buffered: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig { max_buffered: 4 << 20 }
    }
}

/// What the relay did, for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayCounters {
    /// Messages taken from senders and routed.
    pub received: u64,
    /// Copies handed to recipients.
    pub relayed: u64,
    pub relayed_bytes: u64,
    /// Copies refused: the recipient's queue was full.
    pub dropped: u64,
    pub dropped_bytes: u64,
    /// Messages refused for a bad envelope.
    pub malformed: u64,
}

/// A room's relay: reads a sender's envelope and writes the one its
/// recipients get, and decides which copies their queues still take.
///
/// - Input: [`Relay::route`] for each message from a participant.
/// - Per recipient: [`Relay::admit`] with its queue's buffered amount,
///   then [`Relay::relayed`] or nothing.
#[derive(Debug, Default, Clone)]
pub struct Relay {
    config: RelayConfig,
    counters: RelayCounters,
}

impl Relay {
    pub fn new(config: RelayConfig) -> Self {
        Relay {
            config,
            counters: RelayCounters::default(),
        }
    }

    pub fn counters(&self) -> RelayCounters {
        self.counters
    }

    /// A message from `sender`: writes the envelope its recipients get
    /// into `out` and says who they are. A bad envelope is counted and
    /// nothing is relayed.
    pub fn route<'a>(
        &mut self,
        sender: &str,
        message: &'a [u8],
        out: &mut Vec<u8>,
    ) -> Result<Route<'a>, EnvelopeError> {
        let envelope = Envelope::parse(message).inspect_err(|_| self.counters.malformed += 1)?;
        self.counters.received += 1;
        Envelope {
            peer: sender,
            ..envelope
        }
        .write(out);
        Ok(match envelope.peer {
            "" => Route::Everyone,
            peer => Route::To(peer),
        })
    }

    /// Whether a copy of `len` bytes may join a recipient's queue that
    /// holds `buffered` bytes; a refusal is counted as dropped.
    pub fn admit(&mut self, buffered: usize, len: usize) -> bool {
        if buffered.saturating_add(len) > self.config.max_buffered {
            self.counters.dropped += 1;
            self.counters.dropped_bytes += len as u64;
            return false;
        }
        true
    }

    /// A copy of `len` bytes went into a recipient's queue.
    pub fn relayed(&mut self, len: usize) {
        self.counters.relayed += 1;
        self.counters.relayed_bytes += len as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_to_everyone_goes_out_with_the_senders_id() {
        let mut relay = Relay::default();
        let mut out = Vec::new();
        let route = relay.route("alice", b"\x00\x00chunk", &mut out).unwrap();
        assert_eq!(route, Route::Everyone);
        assert_eq!(out, b"\x00\x05alicechunk");
        let got = Envelope::parse(&out).unwrap();
        assert_eq!((got.text, got.peer, got.payload), (false, "alice", &b"chunk"[..]));
    }

    #[test]
    fn an_envelope_to_one_peer_keeps_its_text_flag() {
        let mut relay = Relay::default();
        let mut out = Vec::new();
        let route = relay.route("bob", b"\x01\x03carhi", &mut out).unwrap();
        assert_eq!(route, Route::To("car"));
        assert_eq!(out, b"\x01\x03bobhi");
        assert_eq!(relay.counters().received, 1);
    }

    #[test]
    fn bad_envelopes_are_refused_and_counted() {
        let mut relay = Relay::default();
        let mut out = Vec::new();
        let cases: [(&[u8], EnvelopeError); 5] = [
            (b"\x00", EnvelopeError::Short(1)),
            (b"\x02\x00x", EnvelopeError::Flags(2)),
            (b"\x00\x09ab", EnvelopeError::PeerOverrun { id: 9, len: 4 }),
            (b"\x00\x01\xff", EnvelopeError::PeerNotUtf8),
            (b"\x01\x00\xff", EnvelopeError::TextNotUtf8),
        ];
        for (message, error) in cases {
            assert_eq!(relay.route("a", message, &mut out), Err(error), "{message:?}");
        }
        assert_eq!(relay.counters().malformed, 5);
        assert_eq!(relay.counters().received, 0);
        // An empty payload is a message too.
        assert_eq!(relay.route("a", b"\x00\x00", &mut out), Ok(Route::Everyone));
    }

    #[test]
    fn a_full_queue_refuses_copies_until_it_drains() {
        let mut relay = Relay::new(RelayConfig { max_buffered: 100 });
        assert!(relay.admit(0, 100));
        assert!(!relay.admit(60, 41));
        assert!(!relay.admit(usize::MAX, 1));
        assert!(relay.admit(59, 41));
        let counters = relay.counters();
        assert_eq!((counters.dropped, counters.dropped_bytes), (2, 42));
    }

    #[test]
    fn a_long_sender_id_is_cut_to_what_the_length_byte_holds() {
        let id = "x".repeat(300);
        let mut out = Vec::new();
        Envelope {
            text: false,
            peer: &id,
            payload: b"p",
        }
        .write(&mut out);
        let got = Envelope::parse(&out).unwrap();
        assert_eq!((got.peer.len(), got.payload), (MAX_PEER_BYTES, &b"p"[..]));
    }
}
