//! What a connection's task holds for its application, in bytes: the
//! events polled from the connection and not handed over yet, and the
//! data channel messages handed over (to the event channel, or to a
//! channel's own [`ChannelMessages`](crate::ChannelMessages)) and not
//! read yet. Sans-IO: the driver says how much was read and whether the
//! event channel has room, and asks what goes next and whether the
//! connection's data channels should be read.
//!
//! # Limits
//!
//! - Each channel may have [`CHANNEL_SHARE`] bytes of messages handed
//!   over and unread (one message more when it has none: any message
//!   passes, 256 KiB and more). Its later messages wait here, while those
//!   of other channels go past them: a channel whose reader is slow or
//!   gone holds back only its own messages. A channel's events stay in
//!   their order; between channels, events go in the order they came
//!   unless one's share is full.
//! - Past [`MAX_QUEUED_BYTES`] held in all (or [`MAX_PENDING_EVENTS`]
//!   waiting to be handed over) the connection's data channels are not
//!   read ([`natter::PeerConnection::pause_data_channels`]): messages
//!   wait in SCTP's receive buffer and the window it advertises closes
//!   (RFC 9260 §6.2). SCTP has one window per association, not per
//!   stream, so a channel nobody reads holds its share here, then fills
//!   the rest of [`MAX_QUEUED_BYTES`] and the window, and from then on
//!   every channel waits until it is read. Resuming hands over what
//!   waited in the association at once: at most [`MAX_QUEUED_BYTES`]
//!   plus the receive window (`SctpSettings::receive_window`) are held.

use std::collections::{HashMap, VecDeque};

use natter::peer::{DataChannelId, PeerEvent};

/// The bytes of a channel's messages that may be handed over and not
/// read yet (a message larger than this goes alone).
pub(crate) const CHANNEL_SHARE: usize = 1 << 20;

/// Past this many bytes held for the application, the connection's data
/// channels are not read.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 << 20;

/// While this many events wait to be handed over, the connection's data
/// channels are not read; while this many other than data channel
/// messages wait (media has no window), the connection is paused: only
/// what keeps it up reaches it. See the crate documentation on
/// backpressure.
pub(crate) const MAX_PENDING_EVENTS: usize = 256;

/// Where an event goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sink {
    /// The connection's event channel.
    Events,
    /// The channel's own message receiver.
    Reader(DataChannelId),
}

struct Queued {
    /// Arrival order across the connection's events.
    seq: u64,
    event: PeerEvent,
}

#[derive(Default)]
struct Channel {
    /// Its events not handed over yet, in order.
    pending: VecDeque<Queued>,
    /// Bytes of its messages handed over and not read.
    unread: usize,
    /// Its messages go to its own receiver.
    reader: bool,
    /// Its close was handed over: forgotten once nothing is unread.
    closed: bool,
}

/// One connection's events on their way to the application.
#[derive(Default)]
pub(crate) struct Delivery {
    /// Events about no channel (and `BufferedAmountLow`, which is about
    /// sending), in order.
    general: VecDeque<Queued>,
    channels: HashMap<DataChannelId, Channel>,
    /// The events in the event channel, oldest first: for a message, its
    /// channel and size.
    in_events: VecDeque<Option<(DataChannelId, usize)>>,
    next_seq: u64,
    pending_events: usize,
    /// Pending events that are not data channel messages.
    others: usize,
    pending_bytes: usize,
    unread_bytes: usize,
    peak_bytes: usize,
}

fn message_len(event: &PeerEvent) -> Option<usize> {
    match event {
        PeerEvent::DataChannelMessage { data, .. } => Some(data.len()),
        _ => None,
    }
}

/// The channel whose order an event keeps.
fn channel_of(event: &PeerEvent) -> Option<DataChannelId> {
    match event {
        PeerEvent::DataChannel(id)
        | PeerEvent::DataChannelOpen(id)
        | PeerEvent::DataChannelClose(id)
        | PeerEvent::DataChannelMessage { id, .. } => Some(*id),
        _ => None,
    }
}

impl Delivery {
    /// An event polled from the connection.
    pub(crate) fn push(&mut self, event: PeerEvent) {
        let queued = Queued {
            seq: self.next_seq,
            event,
        };
        self.next_seq += 1;
        self.pending_events += 1;
        match message_len(&queued.event) {
            Some(len) => self.pending_bytes += len,
            None => self.others += 1,
        }
        match channel_of(&queued.event) {
            Some(id) => self.channels.entry(id).or_default().pending.push_back(queued),
            None => self.general.push_back(queued),
        }
        self.peak_bytes = self.peak_bytes.max(self.queued_bytes());
    }

    /// The next event that may go, and where; `events_room` says whether
    /// the event channel takes one more. `None` when none may.
    pub(crate) fn pop(&mut self, events_room: bool) -> Option<(Sink, PeerEvent)> {
        let mut best: Option<(u64, Option<DataChannelId>)> = None;
        if events_room {
            best = self.general.front().map(|q| (q.seq, None));
        }
        for (id, channel) in &self.channels {
            let Some(head) = channel.pending.front() else { continue };
            if best.is_some_and(|(seq, _)| seq < head.seq) {
                continue;
            }
            let may = match message_len(&head.event) {
                Some(len) => {
                    (channel.reader || events_room) && (channel.unread == 0 || channel.unread + len <= CHANNEL_SHARE)
                }
                None => events_room,
            };
            if may {
                best = Some((head.seq, Some(*id)));
            }
        }
        let (_, from) = best?;
        let queued = match from {
            None => self.general.pop_front(),
            Some(id) => self.channels.get_mut(&id).and_then(|c| c.pending.pop_front()),
        }?;
        self.pending_events -= 1;
        let event = queued.event;
        let sink = match (message_len(&event), channel_of(&event)) {
            (Some(len), Some(id)) => {
                self.pending_bytes -= len;
                self.unread_bytes += len;
                let channel = self.channels.entry(id).or_default();
                channel.unread += len;
                if channel.reader {
                    return Some((Sink::Reader(id), event));
                }
                self.in_events.push_back(Some((id, len)));
                Sink::Events
            }
            (_, channel) => {
                self.others -= 1;
                if let (PeerEvent::DataChannelClose(_), Some(id)) = (&event, channel) {
                    self.close(id);
                }
                self.in_events.push_back(None);
                Sink::Events
            }
        };
        Some((sink, event))
    }

    fn close(&mut self, id: DataChannelId) {
        let Some(channel) = self.channels.get_mut(&id) else {
            return;
        };
        channel.closed = true;
        channel.reader = false;
        self.forget_if_done(id);
    }

    fn forget_if_done(&mut self, id: DataChannelId) {
        if self
            .channels
            .get(&id)
            .is_some_and(|c| c.closed && c.unread == 0 && c.pending.is_empty())
        {
            self.channels.remove(&id);
        }
    }

    fn read(&mut self, id: DataChannelId, bytes: usize) {
        if let Some(channel) = self.channels.get_mut(&id) {
            let bytes = bytes.min(channel.unread);
            channel.unread -= bytes;
            self.unread_bytes -= bytes;
            self.forget_if_done(id);
        }
    }

    /// The application read the `n` oldest events of the event channel.
    pub(crate) fn events_read(&mut self, n: usize) {
        for _ in 0..n {
            match self.in_events.pop_front() {
                Some(Some((id, len))) => self.read(id, len),
                Some(None) => {}
                None => return,
            }
        }
    }

    /// How many handed-over events are in the event channel.
    pub(crate) fn in_events(&self) -> usize {
        self.in_events.len()
    }

    /// The application read `bytes` of channel `id`'s messages from its
    /// own receiver (or dropped it with them).
    pub(crate) fn reader_read(&mut self, id: DataChannelId, bytes: usize) {
        self.read(id, bytes);
    }

    /// Channel `id`'s messages go to its own receiver from now on
    /// (`true`), or to the event channel again.
    pub(crate) fn set_reader(&mut self, id: DataChannelId, reader: bool) {
        match reader {
            true => self.channels.entry(id).or_default().reader = true,
            false => {
                if let Some(channel) = self.channels.get_mut(&id) {
                    channel.reader = false;
                }
            }
        }
    }

    /// Bytes held for the application: messages waiting to be handed
    /// over, and handed over but not read.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.pending_bytes + self.unread_bytes
    }

    /// The most [`Delivery::queued_bytes`] has been.
    pub(crate) fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    pub(crate) fn pending_events(&self) -> usize {
        self.pending_events
    }

    /// Whether the connection's data channels should not be read.
    pub(crate) fn data_paused(&self) -> bool {
        self.queued_bytes() >= MAX_QUEUED_BYTES || self.pending_events >= MAX_PENDING_EVENTS
    }

    /// Whether the connection should get only what keeps it up.
    pub(crate) fn connection_paused(&self) -> bool {
        self.others >= MAX_PENDING_EVENTS
    }

    /// The application dropped its event channel: what would go there is
    /// discarded, and nothing there will be read.
    pub(crate) fn events_closed(&mut self) {
        let in_events = self.in_events.len();
        self.events_read(in_events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two channel ids (DataChannelId has no public constructor: these
    /// are the ones natter hands out).
    fn ids() -> (DataChannelId, DataChannelId) {
        let mut pc = natter::PeerConnection::new(natter::peer::PeerConfig::default(), std::time::Instant::now())
            .expect("the default configuration is valid");
        let mut channel = |label| {
            pc.create_data_channel(label, natter::peer::DataChannelInit::default())
                .expect("a channel")
        };
        (channel("bulk"), channel("chat"))
    }

    fn message(id: DataChannelId, i: u32, len: usize) -> PeerEvent {
        let mut data = i.to_be_bytes().to_vec();
        data.resize(len.max(4), i as u8);
        PeerEvent::DataChannelMessage {
            id,
            data,
            is_text: false,
        }
    }

    fn index(event: &PeerEvent) -> u32 {
        match event {
            PeerEvent::DataChannelMessage { data, .. } => u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            other => panic!("a message, not {other:?}"),
        }
    }

    /// 50 MB for a bulk channel whose reader reads nothing, and a chat
    /// channel read as it comes; the connection pushes whenever its data
    /// channels are read (as natter-io pauses them).
    #[test]
    fn an_unread_bulk_channel_holds_back_only_itself_within_the_cap() {
        let (bulk, chat) = ids();
        let mut delivery = Delivery::default();
        delivery.set_reader(bulk, true);
        delivery.set_reader(chat, true);
        const MESSAGE: usize = 16 * 1024;
        let total = 50_000_000 / MESSAGE as u32;
        let (mut bulk_pushed, mut chat_pushed, mut chat_read) = (0, 0, 0);
        let mut bulk_got = Vec::new();
        // Until the bulk channel's messages stop being taken: the
        // association's window would then close.
        while bulk_pushed < total && !delivery.data_paused() {
            delivery.push(message(bulk, bulk_pushed, MESSAGE));
            bulk_pushed += 1;
            if bulk_pushed % 2 == 0 {
                delivery.push(message(chat, chat_pushed, 100));
                chat_pushed += 1;
            }
            assert!(delivery.queued_bytes() <= MAX_QUEUED_BYTES + MESSAGE);
            while let Some((sink, event)) = delivery.pop(false) {
                match sink {
                    Sink::Reader(id) if id == chat => {
                        assert_eq!(index(&event), chat_read, "chat in order");
                        chat_read += 1;
                        delivery.reader_read(chat, 100);
                    }
                    Sink::Reader(id) if id == bulk => bulk_got.push(index(&event)),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(delivery.data_paused(), "the cap paused the data channels");
        assert_eq!(
            chat_read, chat_pushed,
            "every chat message came past the unread bulk ones"
        );
        assert!(chat_read > 100, "{chat_read}");
        assert_eq!(
            bulk_got.len(),
            CHANNEL_SHARE / MESSAGE,
            "the bulk channel's share went to its reader"
        );
        assert!(
            delivery.peak_bytes() <= MAX_QUEUED_BYTES + MESSAGE,
            "peak {}",
            delivery.peak_bytes()
        );

        // The bulk reader resumes: everything, in order, and the rest of
        // the 50 MB passes through within the cap.
        let mut read = 0;
        let mut next = 0;
        loop {
            while let Some((sink, event)) = delivery.pop(false) {
                assert_eq!(sink, Sink::Reader(bulk));
                bulk_got.push(index(&event));
            }
            for _ in read..bulk_got.len() {
                delivery.reader_read(bulk, MESSAGE);
            }
            read = bulk_got.len();
            if bulk_pushed == total && delivery.pending_events() == 0 {
                break;
            }
            while bulk_pushed < total && !delivery.data_paused() {
                delivery.push(message(bulk, bulk_pushed, MESSAGE));
                bulk_pushed += 1;
                assert!(delivery.queued_bytes() <= MAX_QUEUED_BYTES + MESSAGE);
            }
            next += 1;
            assert!(next < 1_000_000, "progress");
        }
        assert!(bulk_got.iter().copied().eq(0..total), "nothing lost or reordered");
        assert_eq!(delivery.queued_bytes(), 0);
        assert!(delivery.peak_bytes() <= MAX_QUEUED_BYTES + MESSAGE);
    }

    /// Messages larger than a channel's share and than the cap still go,
    /// one at a time.
    #[test]
    fn a_message_larger_than_the_share_goes_alone() {
        let (bulk, _) = ids();
        let mut delivery = Delivery::default();
        let big = MAX_QUEUED_BYTES + 1;
        delivery.push(message(bulk, 0, big));
        delivery.push(message(bulk, 1, big));
        assert!(delivery.data_paused());
        let (sink, event) = delivery.pop(true).expect("the first goes");
        assert_eq!((sink, index(&event)), (Sink::Events, 0));
        assert!(
            delivery.pop(true).is_none(),
            "the second waits for the first to be read"
        );
        delivery.events_read(1);
        let (_, event) = delivery.pop(true).expect("then the second");
        assert_eq!(index(&event), 1);
    }

    /// On the event channel too: a channel whose messages fill their
    /// share lets another's and other events past, and keeps its close
    /// behind its messages.
    #[test]
    fn the_event_channel_is_shared_fairly_and_keeps_each_channels_order() {
        let (bulk, chat) = ids();
        let mut delivery = Delivery::default();
        let n = (CHANNEL_SHARE / 65536) as u32 + 2;
        for i in 0..n {
            delivery.push(message(bulk, i, 65536));
        }
        delivery.push(PeerEvent::DataChannelClose(bulk));
        delivery.push(message(chat, 0, 10));
        delivery.push(PeerEvent::IceGatheringComplete);
        let mut order = Vec::new();
        while let Some((sink, event)) = delivery.pop(true) {
            assert_eq!(sink, Sink::Events);
            order.push(event);
        }
        assert_eq!(
            order.len(),
            n as usize - 2 + 2,
            "the share, then the chat and the other event"
        );
        assert!(matches!(order[order.len() - 2], PeerEvent::DataChannelMessage { id, .. } if id == chat));
        assert!(matches!(order[order.len() - 1], PeerEvent::IceGatheringComplete));
        assert!(delivery.pop(false).is_none(), "a full event channel takes nothing");
        delivery.events_read(order.len());
        let rest: Vec<_> = std::iter::from_fn(|| delivery.pop(true)).map(|(_, e)| e).collect();
        assert_eq!(rest.len(), 3);
        assert_eq!(index(&rest[0]), n - 2);
        assert_eq!(index(&rest[1]), n - 1);
        assert!(matches!(rest[2], PeerEvent::DataChannelClose(id) if id == bulk));
    }
}
