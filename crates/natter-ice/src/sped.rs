//! SPED, "Embedding DTLS in STUN" (draft-hancke-webrtc-sped-00): the
//! DTLS handshake rides the connectivity checks and their responses, so
//! that ICE and DTLS run side by side instead of one after the other.
//! Chromium implements it behind the `WebRTC-IceHandshakeDtls` field
//! trial, with the attribute types below.
//!
//! [`Sped`] is the agent's half of the draft's §3.3 ("ICE procedures"):
//! the "pending" list of our DTLS packets not acknowledged yet, sent one
//! per STUN message in turn; the "received" list of CRC-32s of the
//! peer's packets, sent back as acknowledgements; in-band discovery
//! (§3.3.1: a peer whose check or response carries neither attribute
//! does not speak SPED); and the end of the embedding once the handshake
//! is over. The DTLS layer feeds it flights ([`Sped::capture`],
//! [`Sped::flush`]) and takes the peer's packets ([`Sped::poll_dtls`]).

use std::collections::VecDeque;

use natter_stun::{Attribute, Error, TransactionId};

/// draft-hancke-webrtc-sped §5.2: META-DTLS-IN-STUN, one DTLS packet
/// (Chromium's provisional type).
pub const DTLS_IN_STUN: u16 = 0xC070;
/// draft-hancke-webrtc-sped §5.3: META-DTLS-IN-STUN-ACKNOWLEDGEMENT, up
/// to four CRC-32s of received packets.
pub const DTLS_IN_STUN_ACK: u16 = 0xC071;
/// draft-hancke-webrtc-sped §6: the `a=ice-options` tag. Chromium 156
/// offers it with `googspedv1`.
pub const ICE_OPTION: &str = "sped";
/// The tags that mean SPED in a peer's description: the draft's, and
/// libwebrtc's own since M155 (`googspedv1`) and before (`goog-sped-v1`).
pub const ICE_OPTIONS: [&str; 3] = [ICE_OPTION, "googspedv1", "goog-sped-v1"];
/// draft-hancke-webrtc-sped §5.3: at most four acknowledgements (16 bytes).
pub const MAX_ACKS: usize = 4;
/// Our packets held for embedding: a DTLS flight is a handful of
/// datagrams; anything beyond this is sent directly only.
const MAX_PENDING: usize = 8;
/// Embedded packets received and not taken by DTLS yet.
const MAX_INBOUND: usize = 8;

/// RFC 9443 §3 (RFC 7983 §7): the first byte of a DTLS record.
fn is_dtls(first: u8) -> bool {
    (20..=63).contains(&first)
}

/// META-DTLS-IN-STUN's value: a DTLS packet, or nothing (draft §3.3.4:
/// "the attribute MUST be included with a zero-length value").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtlsInStun<'a>(pub &'a [u8]);

impl<'a> Attribute<'a> for DtlsInStun<'a> {
    const TYPE: u16 = DTLS_IN_STUN;

    /// Draft §5.2: a value that is not empty must start like DTLS.
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        match value.first() {
            Some(&first) if !is_dtls(first) => Err(Error::InvalidAttribute {
                typ: DTLS_IN_STUN,
                reason: "first byte is not a DTLS content type (RFC 9443 §3)",
            }),
            _ => Ok(DtlsInStun(value)),
        }
    }

    fn value_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(self.0);
    }
}

/// META-DTLS-IN-STUN-ACKNOWLEDGEMENT's value: CRC-32s (the IEEE
/// polynomial, as FINGERPRINT's, RFC 8489 §14.7) of DTLS packets
/// received, in network order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtlsInStunAck {
    crcs: [u32; MAX_ACKS],
    len: usize,
}

impl DtlsInStunAck {
    /// The acknowledgements; `None` when there are more than
    /// [`MAX_ACKS`].
    pub fn new(crcs: &[u32]) -> Option<Self> {
        let mut ack = DtlsInStunAck::default();
        ack.crcs.get_mut(..crcs.len())?.copy_from_slice(crcs);
        ack.len = crcs.len();
        Some(ack)
    }

    pub fn crcs(&self) -> &[u32] {
        &self.crcs[..self.len]
    }
}

impl<'a> Attribute<'a> for DtlsInStunAck {
    const TYPE: u16 = DTLS_IN_STUN_ACK;

    /// Draft §5.3: a length that is not a multiple of four or exceeds
    /// 16 bytes is refused.
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, Error> {
        if value.len() % 4 != 0 || value.len() > 4 * MAX_ACKS {
            return Err(Error::InvalidAttribute {
                typ: DTLS_IN_STUN_ACK,
                reason: "length is not a multiple of 4 up to 16",
            });
        }
        let mut ack = DtlsInStunAck::default();
        for (slot, crc) in ack.crcs.iter_mut().zip(value.chunks_exact(4)) {
            *slot = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        }
        ack.len = value.len() / 4;
        Ok(ack)
    }

    fn value_len(&self) -> usize {
        4 * self.len
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        for (chunk, crc) in out.chunks_exact_mut(4).zip(self.crcs()) {
            chunk.copy_from_slice(&crc.to_be_bytes());
        }
    }
}

/// Where the embedding stands (libwebrtc's DtlsStunPiggybackController
/// has the same states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpedState {
    /// We embed, and do not know yet whether the peer does.
    Tentative,
    /// The peer embedded or acknowledged: it speaks SPED.
    Confirmed,
    /// Our DTLS handshake is over; what the peer still needs of our last
    /// flight goes on until it acknowledged it.
    Pending,
    /// Done: STUN messages carry neither attribute any more.
    Complete,
    /// Not used: the peer does not speak SPED, or it was turned off.
    Off,
}

/// Counters of the embedding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpedStats {
    /// Our DTLS packets written into STUN messages (each time).
    pub embedded_sent: u64,
    /// The peer's DTLS packets taken from STUN messages, new ones only.
    pub embedded_received: u64,
    /// The peer's packets received again (already acknowledged).
    pub duplicates: u64,
    /// Attributes dropped: malformed, or not DTLS (draft §5.2, §5.3).
    pub malformed: u64,
    /// Our packets the peer acknowledged.
    pub acknowledged: u64,
    /// STUN messages from the peer that carried either attribute, while
    /// we embedded: non-zero means the peer speaks SPED (draft §3.3.1).
    pub peer_messages: u64,
}

/// One of our DTLS packets waiting for its acknowledgement.
#[derive(Debug)]
struct PendingPacket {
    crc: u32,
    data: Vec<u8>,
}

/// The agent's SPED state: see the [module documentation](self).
#[derive(Debug)]
pub struct Sped {
    state: SpedState,
    pending: Vec<PendingPacket>,
    /// Round robin over `pending` (draft §3.3.4).
    next: usize,
    /// A flight is being captured: the next [`Sped::flush`] ends it.
    writing: bool,
    received: VecDeque<u32>,
    inbound: VecDeque<Vec<u8>>,
    stats: SpedStats,
}

impl Default for Sped {
    fn default() -> Self {
        Sped::new()
    }
}

impl Sped {
    pub fn new() -> Self {
        Sped {
            state: SpedState::Tentative,
            pending: Vec::new(),
            next: 0,
            writing: false,
            received: VecDeque::with_capacity(MAX_ACKS),
            inbound: VecDeque::new(),
            stats: SpedStats::default(),
        }
    }

    pub fn state(&self) -> SpedState {
        self.state
    }

    pub fn stats(&self) -> &SpedStats {
        &self.stats
    }

    /// Whether STUN messages carry the attributes now.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            SpedState::Tentative | SpedState::Confirmed | SpedState::Pending
        )
    }

    /// Whether DTLS should start before ICE has a pair: the peer may
    /// speak SPED and the handshake is not over.
    pub fn is_negotiating(&self) -> bool {
        matches!(self.state, SpedState::Tentative | SpedState::Confirmed)
    }

    /// The peer's description did not offer SPED (draft §6.3), or DTLS
    /// failed: stop embedding.
    pub fn turn_off(&mut self) {
        self.state = SpedState::Off;
        self.pending.clear();
        self.received.clear();
        self.inbound.clear();
    }

    /// One datagram DTLS sent. The first after a [`Sped::flush`] starts a
    /// new flight, which replaces the pending one (draft §3.3.2: "the
    /// pending list is cleared when ... a new flight is going to be sent"
    /// or resent).
    pub fn capture(&mut self, datagram: &[u8]) {
        if !self.is_negotiating() || datagram.first().is_none_or(|&b| !is_dtls(b)) {
            return;
        }
        if !self.writing {
            self.pending.clear();
            self.next = 0;
            self.writing = true;
        }
        if self.pending.len() < MAX_PENDING {
            self.pending.push(PendingPacket {
                crc: crc32fast::hash(datagram),
                data: datagram.to_vec(),
            });
        }
    }

    /// DTLS sent all it had: the flight is complete. True when this
    /// ended a new flight that waits to be embedded.
    pub fn flush(&mut self) -> bool {
        let ended = self.writing && !self.pending.is_empty();
        self.writing = false;
        ended
    }

    /// A DTLS handshake packet the peer sent directly, not embedded: it
    /// is acknowledged like an embedded one (draft §3.3.2).
    pub fn note_received(&mut self, datagram: &[u8]) {
        if self.is_active() {
            self.remember(crc32fast::hash(datagram));
        }
    }

    /// Draft §3.3.3: our DTLS handshake completed. The last flight needs
    /// no acknowledgement when nothing answers it (a DTLS 1.2 client's
    /// is answered by the server's Finished, a DTLS 1.3 server's by the
    /// client's).
    pub fn handshake_complete(&mut self, is_client: bool, is_dtls13: bool) {
        if !self.is_active() {
            return;
        }
        if is_client != is_dtls13 {
            self.pending.clear();
        }
        self.state = SpedState::Pending;
        self.complete_if_acknowledged();
    }

    /// The peer sent protected application data: it finished its
    /// handshake, so it has everything of ours.
    pub fn application_data_received(&mut self) {
        if self.state == SpedState::Pending {
            self.complete();
        }
    }

    /// The next embedded DTLS packet the peer sent, for DTLS.
    pub fn poll_dtls(&mut self) -> Option<Vec<u8>> {
        self.inbound.pop_front()
    }

    /// What the next STUN message we send carries: the next pending
    /// packet, and the acknowledgements (always, while the embedding is
    /// on: an empty list announces support, draft §5.3).
    pub fn to_send(&mut self) -> (Option<&[u8]>, Option<DtlsInStunAck>) {
        if !self.is_active() {
            return (None, None);
        }
        let crcs: [u32; MAX_ACKS] = std::array::from_fn(|i| self.received.get(i).copied().unwrap_or(0));
        let ack = DtlsInStunAck {
            crcs,
            len: self.received.len(),
        };
        if self.pending.is_empty() {
            return (None, Some(ack));
        }
        let i = self.next % self.pending.len();
        self.next = i + 1;
        self.stats.embedded_sent += 1;
        (Some(&self.pending[i].data), Some(ack))
    }

    /// What an authenticated check or response from the peer carried.
    /// `data` and `ack` are the attributes as decoded: `None` absent,
    /// `Some(Err)` malformed (dropped and counted, but still a sign the
    /// peer speaks SPED).
    pub fn on_received(
        &mut self,
        data: Option<Result<DtlsInStun<'_>, Error>>,
        ack: Option<Result<DtlsInStunAck, Error>>,
    ) {
        if !self.is_active() {
            return;
        }
        if data.is_none() && ack.is_none() {
            // §3.3.1: a peer that does not embed. After it confirmed, a
            // message without either is the closing handshake's end, or
            // a consent check; nothing to do.
            if self.state == SpedState::Tentative {
                self.turn_off();
            }
            return;
        }
        self.stats.peer_messages += 1;
        if self.state == SpedState::Tentative {
            self.state = SpedState::Confirmed;
        }
        match ack {
            Some(Ok(ack)) => {
                let before = self.pending.len();
                self.pending.retain(|p| !ack.crcs().contains(&p.crc));
                self.stats.acknowledged += (before - self.pending.len()) as u64;
            }
            Some(Err(_)) => self.stats.malformed += 1,
            None => {}
        }
        match data {
            Some(Ok(DtlsInStun(packet))) if !packet.is_empty() => self.deliver(packet),
            Some(Err(_)) => self.stats.malformed += 1,
            _ => {}
        }
        if self.state == SpedState::Pending {
            self.complete_if_acknowledged();
        }
    }

    fn deliver(&mut self, packet: &[u8]) {
        let crc = crc32fast::hash(packet);
        if self.received.contains(&crc) {
            self.stats.duplicates += 1;
            return;
        }
        self.remember(crc);
        self.stats.embedded_received += 1;
        if self.inbound.len() < MAX_INBOUND {
            self.inbound.push_back(packet.to_vec());
        }
    }

    fn remember(&mut self, crc: u32) {
        if self.received.contains(&crc) {
            return;
        }
        if self.received.len() == MAX_ACKS {
            self.received.pop_front();
        }
        self.received.push_back(crc);
    }

    fn complete_if_acknowledged(&mut self) {
        if self.pending.is_empty() {
            self.complete();
        }
    }

    fn complete(&mut self) {
        self.state = SpedState::Complete;
        self.pending.clear();
        self.received.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = TransactionId([0; 12]);

    fn handshake(n: u8) -> Vec<u8> {
        vec![22, 0xfe, 0xfd, n, n, n]
    }

    #[test]
    fn ack_attribute_round_trips_and_refuses_bad_lengths() {
        let ack = DtlsInStunAck::new(&[1, 0xdead_beef]).unwrap();
        let mut out = [0u8; 8];
        ack.encode(&mut out, &TID);
        assert_eq!(DtlsInStunAck::decode(&out, &TID).unwrap().crcs(), &[1, 0xdead_beef]);
        assert!(DtlsInStunAck::decode(&[0; 3], &TID).is_err());
        assert!(DtlsInStunAck::decode(&[0; 20], &TID).is_err());
        assert!(DtlsInStunAck::new(&[0; 5]).is_none());
        assert_eq!(DtlsInStunAck::decode(&[], &TID).unwrap().crcs(), &[] as &[u32]);
    }

    #[test]
    fn data_attribute_must_be_dtls_or_empty() {
        assert!(DtlsInStun::decode(&[22, 1], &TID).is_ok());
        assert!(DtlsInStun::decode(&[], &TID).is_ok());
        assert!(DtlsInStun::decode(&[0, 1], &TID).is_err());
        assert!(DtlsInStun::decode(&[128, 1], &TID).is_err());
    }

    #[test]
    fn a_peer_without_either_attribute_turns_it_off() {
        let mut sped = Sped::new();
        sped.capture(&handshake(1));
        sped.flush();
        sped.on_received(None, None);
        assert_eq!(sped.state(), SpedState::Off);
        assert_eq!(sped.stats().peer_messages, 0);
        assert_eq!(sped.to_send(), (None, None));
    }

    #[test]
    fn flights_go_round_robin_until_acknowledged() {
        let mut sped = Sped::new();
        let (a, b) = (handshake(1), handshake(2));
        sped.capture(&a);
        sped.capture(&b);
        assert!(sped.flush(), "a new flight ended");
        assert!(!sped.flush(), "nothing new since");
        assert_eq!(sped.to_send().0, Some(&a[..]));
        assert_eq!(sped.to_send().0, Some(&b[..]));
        assert_eq!(sped.to_send().0, Some(&a[..]));
        let ack = DtlsInStunAck::new(&[crc32fast::hash(&a)]).unwrap();
        sped.on_received(None, Some(Ok(ack)));
        assert_eq!(sped.state(), SpedState::Confirmed);
        assert_eq!(sped.stats().acknowledged, 1);
        assert_eq!(sped.to_send().0, Some(&b[..]));
        // A new flight replaces what was pending.
        let c = handshake(3);
        sped.capture(&c);
        sped.flush();
        assert_eq!(sped.to_send().0, Some(&c[..]));
        assert_eq!(sped.to_send().0, Some(&c[..]));
    }

    #[test]
    fn received_packets_are_delivered_once_and_acknowledged() {
        let mut sped = Sped::new();
        let a = handshake(7);
        sped.on_received(Some(Ok(DtlsInStun(&a))), Some(Ok(DtlsInStunAck::default())));
        sped.on_received(Some(Ok(DtlsInStun(&a))), None);
        assert_eq!(sped.poll_dtls(), Some(a.clone()));
        assert_eq!(sped.poll_dtls(), None);
        assert_eq!(sped.stats().duplicates, 1);
        assert_eq!(sped.stats().peer_messages, 2);
        assert_eq!(sped.to_send().1.unwrap().crcs(), &[crc32fast::hash(&a)]);
    }

    #[test]
    fn malformed_attributes_are_counted_and_dropped() {
        let mut sped = Sped::new();
        let bad = DtlsInStun::decode(&[0], &TID);
        let bad_ack = DtlsInStunAck::decode(&[0; 5], &TID);
        sped.on_received(Some(bad), Some(bad_ack));
        assert_eq!(sped.stats().malformed, 2);
        assert_eq!(sped.poll_dtls(), None);
        assert_eq!(sped.state(), SpedState::Confirmed);
    }

    #[test]
    fn completes_once_the_last_flight_is_acknowledged() {
        let mut sped = Sped::new();
        let fin = handshake(9);
        sped.on_received(None, Some(Ok(DtlsInStunAck::default())));
        sped.capture(&fin);
        sped.flush();
        // A DTLS 1.2 server's last flight waits for its acknowledgement.
        sped.handshake_complete(false, false);
        assert_eq!(sped.state(), SpedState::Pending);
        assert_eq!(sped.to_send().0, Some(&fin[..]));
        let ack = DtlsInStunAck::new(&[crc32fast::hash(&fin)]).unwrap();
        sped.on_received(None, Some(Ok(ack)));
        assert_eq!(sped.state(), SpedState::Complete);
        assert_eq!(sped.to_send(), (None, None));
        // A DTLS 1.2 client is done at once.
        let mut client = Sped::new();
        client.capture(&fin);
        client.flush();
        client.handshake_complete(true, false);
        assert_eq!(client.state(), SpedState::Complete);
    }

    proptest::proptest! {
        /// Hostile attribute values: decoding never panics, whatever
        /// fails to decode is dropped and counted, and only DTLS reaches
        /// DTLS.
        #[test]
        fn hostile_attributes_are_dropped_and_counted(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            ack in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            let mut sped = Sped::new();
            let d = DtlsInStun::decode(&data, &TID);
            let a = DtlsInStunAck::decode(&ack, &TID);
            let expected = u64::from(d.is_err()) + u64::from(a.is_err());
            sped.on_received(Some(d), Some(a));
            proptest::prop_assert_eq!(sped.stats().malformed, expected);
            while let Some(packet) = sped.poll_dtls() {
                proptest::prop_assert!(is_dtls(packet[0]));
            }
        }
    }
}
