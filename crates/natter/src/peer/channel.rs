//! Data channels as the application sees them (W3C webrtc-pc §6.2
//! `RTCDataChannel`): ids that live as long as the channel, whether or
//! not the SCTP association exists yet, mapped to natter-sctp's stream
//! ids once it does.

use std::collections::HashMap;
use std::fmt;

use natter_sctp::{ChannelId, ChannelOptions, Message, Priority};

use super::error::PeerError;
use super::PeerConnection;

/// Names a data channel of one [`PeerConnection`] for its whole life;
/// never reused. Not the SCTP stream id (W3C's `id`), which a channel
/// created before the DTLS role is known does not have yet: see
/// [`DataChannel::stream_id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataChannelId(u32);

impl fmt::Display for DataChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// W3C webrtc-pc §6.1 `RTCDataChannelInit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataChannelInit {
    pub ordered: bool,
    /// At most this many retransmissions per message (RFC 8831 §6.1).
    pub max_retransmits: Option<u16>,
    /// Give up on a message this many milliseconds after it was sent.
    pub max_packet_life_time: Option<u16>,
    /// The subprotocol name, carried in DATA_CHANNEL_OPEN (RFC 8832 §5.1).
    pub protocol: String,
    /// The application agreed the channel with the peer out of band:
    /// no DCEP, and `id` is required (RFC 8832 §1).
    pub negotiated: bool,
    /// The SCTP stream id; for negotiated channels only.
    pub id: Option<u16>,
}

impl Default for DataChannelInit {
    /// Reliable and ordered, as `createDataChannel` without options.
    fn default() -> Self {
        DataChannelInit {
            ordered: true,
            max_retransmits: None,
            max_packet_life_time: None,
            protocol: String::new(),
            negotiated: false,
            id: None,
        }
    }
}

impl DataChannelInit {
    /// W3C webrtc-pc §6.2 `createDataChannel`, the checks that throw a
    /// `TypeError`; the stream id's availability is the association's to
    /// check.
    pub(super) fn options(&self, label: &str) -> Result<ChannelOptions, PeerError> {
        let invalid = |reason| Err(PeerError::InvalidDataChannelInit(reason));
        if label.len() > usize::from(u16::MAX) || self.protocol.len() > usize::from(u16::MAX) {
            return invalid("label and protocol are at most 65535 bytes");
        }
        if self.max_retransmits.is_some() && self.max_packet_life_time.is_some() {
            return invalid("maxRetransmits and maxPacketLifeTime exclude each other");
        }
        let negotiated_id = match (self.negotiated, self.id) {
            (true, None) => return invalid("a negotiated channel needs an id"),
            (true, Some(u16::MAX)) => return invalid("stream id 65535 is reserved"),
            (true, id) => id,
            (false, Some(_)) => return invalid("only a negotiated channel takes an id"),
            (false, None) => None,
        };
        Ok(ChannelOptions {
            ordered: self.ordered,
            max_retransmits: self.max_retransmits.map(u32::from),
            max_packet_lifetime: self.max_packet_life_time.map(u32::from),
            priority: Priority::NORMAL,
            negotiated_id,
        })
    }
}

/// W3C webrtc-pc §6.2 `RTCDataChannelState`. A channel is forgotten once
/// closed, so `closed` is only seen after [`PeerConnection::close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataChannelState {
    Connecting,
    Open,
    Closing,
    Closed,
}

/// W3C webrtc-pc-stats `RTCDataChannelStats` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataChannelStats {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
}

impl DataChannelStats {
    fn add(&mut self, other: &DataChannelStats) {
        self.messages_sent += other.messages_sent;
        self.bytes_sent += other.bytes_sent;
        self.messages_received += other.messages_received;
        self.bytes_received += other.bytes_received;
    }
}

/// The record of one channel.
#[derive(Debug)]
pub(super) struct ChannelEntry {
    pub(super) label: String,
    pub(super) protocol: String,
    pub(super) options: ChannelOptions,
    /// `None` until the association opens it.
    pub(super) stream: Option<ChannelId>,
    pub(super) state: DataChannelState,
    pub(super) stats: DataChannelStats,
}

/// Every live channel, by id and by stream.
#[derive(Debug, Default)]
pub(super) struct Channels {
    next: u32,
    /// In id order (ids only grow). A list rather than a map: a
    /// connection has few channels, and a map's first node was 1.3 KiB
    /// of every idle connection's heap (issue 18).
    entries: Vec<(DataChannelId, ChannelEntry)>,
    by_stream: HashMap<ChannelId, DataChannelId>,
    /// W3C `dataChannelsOpened` and `dataChannelsClosed`.
    pub(super) opened: u64,
    pub(super) closed: u64,
    /// The counters of channels already forgotten.
    closed_stats: DataChannelStats,
    /// Messages wait in SCTP ([`PeerConnection::pause_data_channels`]).
    pub(super) paused: bool,
}

impl Channels {
    pub(super) fn insert(
        &mut self,
        label: &str,
        protocol: &str,
        options: ChannelOptions,
        stream: Option<ChannelId>,
    ) -> DataChannelId {
        let id = DataChannelId(self.next);
        self.next += 1;
        if let Some(stream) = stream {
            self.by_stream.insert(stream, id);
        }
        if self.entries.len() == self.entries.capacity() {
            // Doubling from one: most connections have one channel.
            self.entries.reserve_exact(self.entries.len().max(1));
        }
        self.entries.push((
            id,
            ChannelEntry {
                label: label.to_owned(),
                protocol: protocol.to_owned(),
                options,
                stream,
                state: DataChannelState::Connecting,
                stats: DataChannelStats::default(),
            },
        ));
        id
    }

    fn position(&self, id: DataChannelId) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |(id, _)| *id).ok()
    }

    pub(super) fn get(&self, id: DataChannelId) -> Option<&ChannelEntry> {
        self.position(id).map(|i| &self.entries[i].1)
    }

    pub(super) fn get_mut(&mut self, id: DataChannelId) -> Option<&mut ChannelEntry> {
        self.position(id).map(|i| &mut self.entries[i].1)
    }

    pub(super) fn by_stream(&self, stream: ChannelId) -> Option<DataChannelId> {
        self.by_stream.get(&stream).copied()
    }

    /// The association opened the stream of a channel made before it.
    pub(super) fn bind(&mut self, id: DataChannelId, stream: ChannelId) {
        if let Some(entry) = self.get_mut(id) {
            entry.stream = Some(stream);
            self.by_stream.insert(stream, id);
        }
    }

    /// Channels waiting for the association, oldest first.
    pub(super) fn unbound(&self) -> Vec<DataChannelId> {
        let waiting = |(id, e): (DataChannelId, &ChannelEntry)| e.stream.is_none().then_some(id);
        self.iter().filter_map(waiting).collect()
    }

    pub(super) fn ids(&self) -> Vec<DataChannelId> {
        self.entries.iter().map(|(id, _)| *id).collect()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (DataChannelId, &ChannelEntry)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }

    /// The channel opened: counts it.
    pub(super) fn open(&mut self, id: DataChannelId) {
        if let Some(entry) = self.get_mut(id) {
            entry.state = DataChannelState::Open;
            self.opened += 1;
        }
    }

    /// Forgets a channel; whether it was known.
    pub(super) fn remove(&mut self, id: DataChannelId) -> bool {
        let Some(i) = self.position(id) else {
            return false;
        };
        let (_, entry) = self.entries.remove(i);
        if let Some(stream) = entry.stream {
            self.by_stream.remove(&stream);
        }
        if entry.state != DataChannelState::Connecting {
            self.closed += 1;
        }
        self.closed_stats.add(&entry.stats);
        true
    }

    /// The counters of every channel, live or forgotten.
    pub(super) fn total_stats(&self) -> DataChannelStats {
        let mut total = self.closed_stats;
        for (_, entry) in &self.entries {
            total.add(&entry.stats);
        }
        total
    }
}

/// A data channel, borrowed from its [`PeerConnection`] (see
/// [`PeerConnection::data_channel`]) so that no handle outlives a change
/// of the connection. What it sends goes out with the next
/// [`PeerConnection::poll_transmit`].
pub struct DataChannel<'a> {
    pub(super) pc: &'a mut PeerConnection,
    pub(super) id: DataChannelId,
}

impl DataChannel<'_> {
    fn entry(&self) -> &ChannelEntry {
        // The handle is only made for a known id, and it borrows the
        // connection mutably, so nothing can forget the channel meanwhile.
        self.pc
            .channels
            .get(self.id)
            .expect("a DataChannel handle names a live channel")
    }

    pub fn id(&self) -> DataChannelId {
        self.id
    }

    pub fn label(&self) -> &str {
        &self.entry().label
    }

    pub fn protocol(&self) -> &str {
        &self.entry().protocol
    }

    /// How it delivers messages.
    pub fn options(&self) -> ChannelOptions {
        self.entry().options
    }

    /// W3C `id`: the SCTP stream id (RFC 8831 §6.5), once the association
    /// (or the application, for negotiated channels) chose it.
    pub fn stream_id(&self) -> Option<u16> {
        let entry = self.entry();
        entry.stream.map(|s| s.0).or(entry.options.negotiated_id)
    }

    /// W3C `readyState`.
    pub fn ready_state(&self) -> DataChannelState {
        self.entry().state
    }

    pub fn stats(&self) -> DataChannelStats {
        self.entry().stats
    }

    /// W3C `send`: queues one message. Only on an open channel, and no
    /// larger than the smaller of both sides' `a=max-message-size`.
    pub fn send(&mut self, message: Message<'_>) -> Result<(), PeerError> {
        let entry = self.entry();
        let (DataChannelState::Open, Some(stream)) = (entry.state, entry.stream) else {
            return Err(PeerError::DataChannelNotOpen(self.id));
        };
        let sctp = self.pc.sctp.as_mut().ok_or(PeerError::DataChannelNotOpen(self.id))?;
        sctp.send(stream, message)?;
        if let Some(entry) = self.pc.channels.get_mut(self.id) {
            entry.stats.messages_sent += 1;
            entry.stats.bytes_sent += message.bytes().len() as u64;
        }
        Ok(())
    }

    /// W3C `bufferedAmount`: bytes queued and not yet acknowledged.
    pub fn buffered_amount(&mut self) -> usize {
        let stream = self.entry().stream;
        match (stream, self.pc.sctp.as_mut()) {
            (Some(stream), Some(sctp)) => sctp.buffered_amount(stream).unwrap_or(0),
            _ => 0,
        }
    }

    /// W3C `bufferedAmountLowThreshold`; takes effect once the channel
    /// has a stream.
    pub fn set_buffered_amount_low_threshold(&mut self, threshold: usize) -> Result<(), PeerError> {
        let stream = self.entry().stream.ok_or(PeerError::DataChannelNotOpen(self.id))?;
        let sctp = self.pc.sctp.as_mut().ok_or(PeerError::DataChannelNotOpen(self.id))?;
        sctp.set_buffered_amount_low_threshold(stream, threshold)?;
        Ok(())
    }

    /// W3C `close`: queued messages go first, then the streams are reset
    /// (RFC 8831 §6.7); [`PeerEvent::DataChannelClose`](super::PeerEvent::DataChannelClose)
    /// follows.
    pub fn close(self) {
        self.pc.close_data_channel(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_maps_to_channel_options() {
        let init = DataChannelInit {
            ordered: false,
            max_packet_life_time: Some(500),
            ..DataChannelInit::default()
        };
        let options = init.options("label").unwrap();
        assert!(!options.ordered);
        assert_eq!(
            (options.max_retransmits, options.max_packet_lifetime),
            (None, Some(500))
        );
        let negotiated = DataChannelInit {
            negotiated: true,
            id: Some(3),
            ..DataChannelInit::default()
        };
        assert_eq!(negotiated.options("").unwrap().negotiated_id, Some(3));
    }

    #[test]
    fn w3c_type_errors() {
        let refused = |init: DataChannelInit, label: &str| {
            matches!(init.options(label), Err(PeerError::InvalidDataChannelInit(_)))
        };
        let both = DataChannelInit {
            max_retransmits: Some(1),
            max_packet_life_time: Some(1),
            ..DataChannelInit::default()
        };
        assert!(refused(both, ""));
        let no_id = DataChannelInit {
            negotiated: true,
            ..DataChannelInit::default()
        };
        assert!(refused(no_id, ""));
        let reserved = DataChannelInit {
            negotiated: true,
            id: Some(65535),
            ..DataChannelInit::default()
        };
        assert!(refused(reserved, ""));
        let id_without_negotiated = DataChannelInit {
            id: Some(1),
            ..DataChannelInit::default()
        };
        assert!(refused(id_without_negotiated, ""));
        assert!(refused(DataChannelInit::default(), &"x".repeat(65536)));
    }

    #[test]
    fn ids_stay_unique_and_counters_survive_removal() {
        let mut channels = Channels::default();
        let a = channels.insert("a", "", ChannelOptions::default(), None);
        let b = channels.insert("b", "", ChannelOptions::default(), Some(ChannelId(1)));
        assert_ne!(a, b);
        assert_eq!(channels.by_stream(ChannelId(1)), Some(b));
        assert_eq!(channels.unbound(), [a]);
        channels.bind(a, ChannelId(3));
        assert_eq!(channels.by_stream(ChannelId(3)), Some(a));
        channels.open(b);
        if let Some(entry) = channels.get_mut(b) {
            entry.stats.messages_sent = 2;
        }
        assert!(channels.remove(b));
        assert!(!channels.remove(b));
        assert_eq!(channels.by_stream(ChannelId(1)), None);
        assert_eq!((channels.opened, channels.closed), (1, 1));
        assert_eq!(channels.total_stats().messages_sent, 2);
        let c = channels.insert("c", "", ChannelOptions::default(), None);
        assert!(c != a && c != b, "ids are never reused");
    }
}
