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
//! send queue at once. It pushes back instead: once a recipient's queue
//! holds more than [`RelayConfig::high_water`], each sender whose copy
//! it takes stops being read ([`Relay::relayed`]), so that sender's
//! messages wait in the server's SCTP receive buffer, whose advertised
//! window closes (RFC 9260 §6.2) and stops the sender; it is read again
//! ([`Relay::poll_resume`]) once every recipient that held it back is
//! down to [`RelayConfig::low_water`]. A recipient that stops reading
//! altogether cannot hold the room forever: one whose queue has not
//! gone down for [`RelayConfig::stall_timeout`] is stalled, holds nobody
//! back, and its copies are dropped (counted) until it drains to the
//! low water mark. Memory per recipient is about the high water mark,
//! and per paused sender its receive window.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::participant::ParticipantId;

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
    /// A recipient's queue above this holds back the senders whose
    /// copies it takes: 1 MiB, the high water mark of a sender that
    /// paces on acknowledgements (the web client's), so such senders
    /// are not held back by one recipient as slow as themselves.
    pub high_water: usize,
    /// Senders held back are read again once each recipient that held
    /// them is at most this: 256 KiB, so a resumed sender refills a
    /// queue that still has data to send.
    pub low_water: usize,
    /// A recipient above the high water mark whose queue has not gone
    /// down for this long has stopped reading: 30 s.
    pub stall_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            high_water: 1 << 20,
            low_water: 256 << 10,
            stall_timeout: Duration::from_secs(30),
        }
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
    /// Copies refused: the recipient had stalled.
    pub dropped: u64,
    pub dropped_bytes: u64,
    /// Messages refused for a bad envelope.
    pub malformed: u64,
    /// Times a sender stopped being read, held back by a full queue.
    pub paused: u64,
    /// Times a recipient was found stalled.
    pub stalled: u64,
}

impl RelayCounters {
    /// Adds `other`'s counts (another room's).
    pub fn add(&mut self, other: &RelayCounters) {
        self.received += other.received;
        self.relayed += other.relayed;
        self.relayed_bytes += other.relayed_bytes;
        self.dropped += other.dropped;
        self.dropped_bytes += other.dropped_bytes;
        self.malformed += other.malformed;
        self.paused += other.paused;
        self.stalled += other.stalled;
    }
}

/// A recipient whose queue is above the high water mark.
#[derive(Debug, Clone, Copy)]
struct Backlog {
    /// Its queue when last seen.
    buffered: usize,
    /// When its queue last went down (or went above the mark).
    progress: Instant,
    stalled: bool,
}

/// A room's relay: reads a sender's envelope and writes the one its
/// recipients get, and decides which senders are read.
///
/// - Input: [`Relay::route`] for each message from a participant; per
///   recipient, [`Relay::admit`], then [`Relay::relayed`] once the copy
///   is queued (it says whether to stop reading the sender);
///   [`Relay::update`] with a recipient's queue when it fell to the low
///   water mark; [`Relay::handle_timeout`]; [`Relay::remove`] when a
///   participant or its channel is gone.
/// - Output: [`Relay::poll_resume`] (senders to read again), then
///   [`Relay::poll_timeout`].
#[derive(Debug, Default, Clone)]
pub struct Relay {
    config: RelayConfig,
    counters: RelayCounters,
    backlogs: HashMap<ParticipantId, Backlog>,
    /// Senders not read, each with the recipients that hold it back.
    held: HashMap<ParticipantId, Vec<ParticipantId>>,
    resume: VecDeque<ParticipantId>,
}

impl Relay {
    pub fn new(config: RelayConfig) -> Self {
        Relay {
            config,
            ..Relay::default()
        }
    }

    pub fn counters(&self) -> RelayCounters {
        self.counters
    }

    pub fn config(&self) -> RelayConfig {
        self.config
    }

    /// Whether `sender` is not being read.
    pub fn is_held(&self, sender: ParticipantId) -> bool {
        self.held.contains_key(&sender)
    }

    /// How many senders are not being read.
    pub fn held_senders(&self) -> usize {
        self.held.len()
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

    /// Whether a copy of `len` bytes may join `recipient`'s queue: not
    /// while it is stalled (counted as dropped).
    pub fn admit(&mut self, recipient: ParticipantId, len: usize) -> bool {
        if self.backlogs.get(&recipient).is_some_and(|b| b.stalled) {
            self.counters.dropped += 1;
            self.counters.dropped_bytes += len as u64;
            return false;
        }
        true
    }

    /// A copy of `len` bytes from `sender` joined `recipient`'s queue,
    /// which holds `buffered` bytes now. True when `sender` is to stop
    /// being read (it was read until now).
    pub fn relayed(
        &mut self,
        now: Instant,
        sender: ParticipantId,
        recipient: ParticipantId,
        buffered: usize,
        len: usize,
    ) -> bool {
        self.counters.relayed += 1;
        self.counters.relayed_bytes += len as u64;
        let before = buffered.saturating_sub(len);
        match self.backlogs.get_mut(&recipient) {
            Some(Backlog { stalled: true, .. }) => return false,
            Some(_) if buffered <= self.config.low_water => {
                self.update(now, recipient, buffered);
                return false;
            }
            Some(backlog) => {
                if before < backlog.buffered {
                    backlog.progress = now;
                }
                backlog.buffered = buffered;
            }
            None if buffered > self.config.high_water => {
                let backlog = Backlog {
                    buffered,
                    progress: now,
                    stalled: false,
                };
                self.backlogs.insert(recipient, backlog);
            }
            None => return false,
        }
        let held = self.held.entry(sender).or_default();
        let newly = held.is_empty();
        if !held.contains(&recipient) {
            held.push(recipient);
        }
        if newly {
            self.counters.paused += 1;
        }
        newly
    }

    /// `recipient`'s queue holds `buffered` bytes now (say, when it fell
    /// to the low water mark).
    pub fn update(&mut self, now: Instant, recipient: ParticipantId, buffered: usize) {
        let Some(backlog) = self.backlogs.get_mut(&recipient) else {
            return;
        };
        if buffered <= self.config.low_water {
            self.backlogs.remove(&recipient);
            self.release(recipient);
            return;
        }
        if buffered < backlog.buffered {
            backlog.progress = now;
        }
        backlog.buffered = buffered;
        if !backlog.stalled && now >= backlog.progress + self.config.stall_timeout {
            backlog.stalled = true;
            self.counters.stalled += 1;
            self.release(recipient);
        }
    }

    /// Looks again at each recipient due to be found stalled, with
    /// `buffered` giving its queue now.
    pub fn handle_timeout(&mut self, now: Instant, mut buffered: impl FnMut(ParticipantId) -> usize) {
        let timeout = self.config.stall_timeout;
        let due: Vec<ParticipantId> = (self.backlogs.iter())
            .filter(|(_, b)| !b.stalled && now >= b.progress + timeout)
            .map(|(id, _)| *id)
            .collect();
        for recipient in due {
            self.update(now, recipient, buffered(recipient));
        }
    }

    /// When a recipient holding senders back is next to be looked at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.stall_timeout;
        (self.backlogs.values())
            .filter(|b| !b.stalled)
            .map(|b| b.progress + timeout)
            .min()
    }

    /// The next sender to read again.
    pub fn poll_resume(&mut self) -> Option<ParticipantId> {
        self.resume.pop_front()
    }

    /// `participant` left, or its channel closed: it holds nobody back
    /// and is held by nobody.
    pub fn remove(&mut self, participant: ParticipantId) {
        self.held.remove(&participant);
        self.resume.retain(|id| *id != participant);
        self.backlogs.remove(&participant);
        self.release(participant);
    }

    /// `recipient` holds nobody back any more: senders it alone held are
    /// to be read again.
    fn release(&mut self, recipient: ParticipantId) {
        let resume = &mut self.resume;
        self.held.retain(|sender, by| {
            by.retain(|id| *id != recipient);
            if by.is_empty() {
                resume.push_back(*sender);
            }
            !by.is_empty()
        });
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

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);
    const C: ParticipantId = ParticipantId(3);

    fn small() -> Relay {
        Relay::new(RelayConfig {
            high_water: 100,
            low_water: 20,
            stall_timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_sender_is_held_while_a_recipient_is_over_high_water_and_read_again_at_low_water() {
        let mut relay = small();
        let t0 = Instant::now();
        assert!(relay.admit(B, 60));
        assert!(!relay.relayed(t0, A, B, 60, 60), "under the mark");
        assert!(relay.relayed(t0, A, B, 120, 60), "over it: stop reading A");
        assert!(relay.is_held(A));
        // Copies already read still go to a recipient that reads.
        assert!(relay.admit(B, 60));
        assert!(!relay.relayed(t0, A, B, 180, 60), "A is held already");
        assert!(relay.relayed(t0, C, B, 240, 60), "C's copy holds C too");
        relay.update(t0, B, 50);
        assert_eq!(relay.poll_resume(), None, "50 is above the low water mark");
        relay.update(t0, B, 20);
        let mut resumed = [relay.poll_resume(), relay.poll_resume()];
        resumed.sort();
        assert_eq!(resumed, [Some(A), Some(C)]);
        assert_eq!(relay.poll_resume(), None);
        assert!(!relay.is_held(A));
        let counters = relay.counters();
        assert_eq!((counters.relayed, counters.paused, counters.dropped), (4, 2, 0));
    }

    #[test]
    fn a_sender_held_by_two_recipients_is_read_again_when_both_drained() {
        let mut relay = small();
        let t0 = Instant::now();
        assert!(relay.relayed(t0, A, B, 150, 50));
        assert!(!relay.relayed(t0, A, C, 150, 50));
        relay.update(t0, B, 0);
        assert_eq!(relay.poll_resume(), None, "C still holds A");
        relay.remove(C);
        assert_eq!(relay.poll_resume(), Some(A), "C left");
    }

    #[test]
    fn a_recipient_that_reads_nothing_for_the_stall_timeout_holds_nobody_and_loses_its_copies() {
        let mut relay = small();
        let t0 = Instant::now();
        assert!(relay.relayed(t0, A, B, 150, 50));
        assert_eq!(relay.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        // Its queue went down at 10 s: it reads, slowly.
        let t10 = t0 + Duration::from_secs(10);
        relay.update(t10, B, 140);
        assert_eq!(relay.poll_timeout(), Some(t10 + Duration::from_secs(30)));
        relay.handle_timeout(t0 + Duration::from_secs(30), |_| 140);
        assert_eq!(relay.poll_resume(), None, "not due yet");
        let t40 = t10 + Duration::from_secs(30);
        relay.handle_timeout(t40, |id| if id == B { 140 } else { 0 });
        assert_eq!(relay.poll_resume(), Some(A), "B stalled: A is read again");
        assert_eq!(relay.poll_timeout(), None);
        assert!(!relay.admit(B, 50), "a stalled recipient's copies are dropped");
        assert!(!relay.relayed(t40, A, C, 50, 50));
        let counters = relay.counters();
        assert_eq!((counters.stalled, counters.dropped, counters.dropped_bytes), (1, 1, 50));
        // Reading again, it takes copies again.
        relay.update(t40, B, 10);
        assert!(relay.admit(B, 50));
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
