//! The stream scheduler (RFC 8260 §3): which stream's message goes next.
//! Each outgoing stream has its own queue of fragments; streams with
//! something queued take turns by message, weighted by their priority
//! and charged by size (RFC 8260 §3.6, weighted fair queueing; §3.4's
//! fair capacity when priorities are equal): a stream of priority `p`
//! gets `p / q` bytes for every one of a stream of priority `q`, and
//! streams of equal messages and priorities take turns message by
//! message (§3.2's round robin). WebRTC's priorities are DCEP's (RFC
//! 8832 §5.1, RFC 8831 §6.4): 128, 256 (the default), 512, 1024. So one
//! bulk transfer does not starve a small chat message on another stream:
//! it waits for at most the bulk's message being sent. Charging every
//! message the same would not do: a chat message every 50 ms beside
//! 256 KiB messages that each take longer than that to send got one turn
//! per bulk message, and its queue grew for the whole transfer (natter
//! to Chromium at 50 ms RTT: 17 s, bench/datachannel).
//!
//! With DATA (not I-DATA) a message's fragments take consecutive TSNs
//! (RFC 9260 §6.9), so once a message's first fragment goes, its stream
//! keeps the turn until the last one has gone. With I-DATA (RFC 8260
//! §2.1, both ends offered it) fragments of different streams' messages
//! may interleave, so turns go by fragment (RFC 8260 §1: a small message
//! waits for one fragment of each other busy stream, not for a whole
//! 256 KiB message), weighted the same way.
//!
//! The scheduler also keeps what belongs to an outgoing stream: its next
//! SSN (RFC 9260 §6.6) or ordered and unordered MIDs (RFC 8260 §2.1),
//! given when a message's first fragment goes, and whether an outgoing
//! reset (RFC 6525 §5.1.2) holds it.

use std::collections::{HashMap, VecDeque};

use super::send::Chunklet;

/// RFC 8832 §5.1: "normal", the priority of a stream nobody set.
pub const DEFAULT_PRIORITY: u16 = 256;
/// A byte's cost in virtual time is this over its stream's priority.
const BYTE_COST: u64 = 1 << 10;

#[derive(Debug)]
struct OutStream {
    queue: VecDeque<Chunklet>,
    /// The next ordered message's SSN (its low 16 bits, DATA) or MID
    /// (I-DATA).
    next_mid: u32,
    /// RFC 8260 §2.1: unordered messages have MIDs of their own (I-DATA
    /// only; unordered DATA carries no SSN).
    next_unordered_mid: u32,
    priority: u16,
    /// An outgoing reset is under way: no new messages (RFC 6525 §5.1.2).
    paused: bool,
    /// Bytes of its messages queued or in flight and not yet past the
    /// peer's cumulative TSN ack nor abandoned (W3C's `bufferedAmount`,
    /// counted until acknowledged as sctp-proto and dcSCTP do).
    buffered: usize,
    /// While queued: the virtual time its next message (with I-DATA, its
    /// next fragment) finishes, sent after everything given an earlier
    /// finish time, and the order that finish time was given in (ties
    /// go to the earlier).
    finish: (u64, u64),
}

impl OutStream {
    fn new() -> Self {
        OutStream {
            queue: VecDeque::new(),
            next_mid: 0,
            next_unordered_mid: 0,
            priority: DEFAULT_PRIORITY,
            paused: false,
            buffered: 0,
            finish: (0, 0),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Scheduler {
    /// RFC 8260: I-DATA is in use; turns go by fragment.
    interleaving: bool,
    streams: HashMap<u16, OutStream>,
    /// Streams with something queued.
    active: Vec<u16>,
    /// The stream whose message has begun to go; it keeps the turn.
    current: Option<u16>,
    virtual_time: u64,
    /// Finish times given so far, to break ties by age.
    stamps: u64,
    queued_chunks: usize,
    queued_bytes: usize,
}

impl Scheduler {
    /// A scheduler taking turns by message (DATA) or, with
    /// `interleaving` (I-DATA), by fragment.
    pub(super) fn new(interleaving: bool) -> Self {
        Scheduler {
            interleaving,
            ..Scheduler::default()
        }
    }

    /// Bytes queued and not yet sent.
    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queued_chunks == 0
    }

    /// RFC 8831 §6.4: the stream's priority (DCEP's values; 0 counts as 1).
    pub(super) fn set_priority(&mut self, stream: u16, priority: u16) {
        self.streams.entry(stream).or_insert_with(OutStream::new).priority = priority.max(1);
    }

    pub(super) fn is_paused(&self, stream: u16) -> bool {
        self.streams.get(&stream).is_some_and(|s| s.paused)
    }

    /// RFC 6525 §5.1.2: holds `stream` for an outgoing reset; what is
    /// queued still goes.
    pub(super) fn pause(&mut self, stream: u16) {
        self.streams.entry(stream).or_insert_with(OutStream::new).paused = true;
    }

    /// Bytes of `stream` queued or in flight, not yet acknowledged
    /// cumulatively nor abandoned.
    pub(super) fn buffered(&self, stream: u16) -> usize {
        self.streams.get(&stream).map_or(0, |s| s.buffered)
    }

    /// `bytes` of `stream` in flight were acknowledged or abandoned.
    pub(super) fn release(&mut self, stream: u16, bytes: usize) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.buffered = s.buffered.saturating_sub(bytes);
        }
    }

    /// Whether anything of `stream` waits to be sent.
    pub(super) fn has_queued(&self, stream: u16) -> bool {
        self.streams.get(&stream).is_some_and(|s| !s.queue.is_empty())
    }

    /// RFC 6525 §5.1.2: the peer reset the stream; its SSNs (or, RFC
    /// 8260 §2.1, its ordered and unordered MIDs) start at 0 again and it
    /// takes messages again. Every stream when `streams` is empty (§4.1).
    pub(super) fn reset(&mut self, streams: &[u16]) {
        for (id, s) in self.streams.iter_mut() {
            if streams.is_empty() || streams.contains(id) {
                s.next_mid = 0;
                s.next_unordered_mid = 0;
                s.paused = false;
            }
        }
    }

    /// Lets `stream` take messages again without a reset (the peer
    /// refused it).
    pub(super) fn resume(&mut self, streams: &[u16]) {
        for (id, s) in self.streams.iter_mut() {
            if streams.is_empty() || streams.contains(id) {
                s.paused = false;
            }
        }
    }

    /// Queues the fragments of one message.
    pub(super) fn push(&mut self, stream: u16, fragments: impl Iterator<Item = Chunklet>) {
        let s = self.streams.entry(stream).or_insert_with(OutStream::new);
        let was_empty = s.queue.is_empty();
        for c in fragments {
            self.queued_chunks += 1;
            self.queued_bytes += c.data.len();
            s.buffered += c.data.len();
            s.queue.push_back(c);
        }
        if was_empty && !s.queue.is_empty() {
            self.active.push(stream);
            self.stamp(stream);
        }
    }

    /// Gives `stream`'s next message (with I-DATA, fragment) its finish
    /// time: the virtual time now plus its bytes' cost at the stream's
    /// priority (RFC 8260 §3.6).
    fn stamp(&mut self, stream: u16) {
        self.stamps += 1;
        let (vt, order, interleaving) = (self.virtual_time, self.stamps, self.interleaving);
        if let Some(s) = self.streams.get_mut(&stream) {
            let bytes: usize = match s.queue.front() {
                Some(first) if !interleaving => {
                    let message = first.message;
                    s.queue
                        .iter()
                        .take_while(|c| c.message == message)
                        .map(|c| c.data.len())
                        .sum()
                }
                Some(first) => first.data.len(),
                None => 0,
            };
            // At least one unit, so a stream's turns always advance time.
            let cost = (bytes as u64 * BYTE_COST / u64::from(s.priority)).max(1);
            // Saturating: a busy period of 2^54 bytes at priority 1 (time
            // restarts at 0 whenever every queue is empty) would only turn
            // the scheduler into first-come first-served.
            s.finish = (vt.saturating_add(cost), order);
        }
    }

    /// The chunk that goes next, picking the stream whose turn it is; a
    /// message's first fragment gives the whole message its stream's
    /// next SSN or MID (taken for good by [`Scheduler::pop`]).
    pub(super) fn peek(&mut self) -> Option<&Chunklet> {
        if self.current.is_none() {
            let next = self
                .active
                .iter()
                .filter_map(|id| self.streams.get(id).map(|s| (s.finish, *id)))
                .min()?;
            self.virtual_time = next.0 .0;
            self.current = Some(next.1);
        }
        let interleaving = self.interleaving;
        let s = self.streams.get_mut(&self.current?)?;
        let first = s.queue.front()?;
        let mid = match (first.flags.beginning, first.flags.unordered) {
            (true, false) => Some(s.next_mid),
            (true, true) if interleaving => Some(s.next_unordered_mid),
            _ => None,
        };
        if let Some(mid) = mid {
            let message = first.message;
            for c in s.queue.iter_mut().take_while(|c| c.message == message) {
                c.mid = mid;
            }
        }
        s.queue.front()
    }

    /// Takes the chunk [`Scheduler::peek`] showed.
    pub(super) fn pop(&mut self) -> Option<Chunklet> {
        let id = self.current?;
        let s = self.streams.get_mut(&id)?;
        let c = s.queue.pop_front()?;
        if c.flags.beginning && !c.flags.unordered {
            s.next_mid = s.next_mid.wrapping_add(1);
        } else if c.flags.beginning && self.interleaving {
            s.next_unordered_mid = s.next_unordered_mid.wrapping_add(1);
        }
        self.queued_chunks -= 1;
        self.queued_bytes -= c.data.len();
        if c.flags.end || self.interleaving {
            self.turn_done(id);
        }
        Some(c)
    }

    /// `stream`'s turn is over: its next message (or, with I-DATA,
    /// fragment), if any, waits its turn.
    fn turn_done(&mut self, stream: u16) {
        if self.current == Some(stream) {
            self.current = None;
        }
        if self.has_queued(stream) {
            self.stamp(stream);
        } else {
            self.active.retain(|id| *id != stream);
            if self.active.is_empty() {
                // No finish time is left to compare with: time restarts.
                self.virtual_time = 0;
            }
        }
    }

    /// The message at the front of a queue that is past `expired`, as
    /// (stream, message id).
    pub(super) fn find_front(&self, mut expired: impl FnMut(&Chunklet) -> bool) -> Option<(u16, u32)> {
        self.active.iter().find_map(|id| {
            let c = self.streams.get(id)?.queue.front()?;
            expired(c).then_some((*id, c.message))
        })
    }

    /// Removes the fragments of `message` queued at the front of
    /// `stream`, handing their buffers to `recycle` except the last one's
    /// chunk, returned with whether part of the message had been sent.
    pub(super) fn remove_front_message(
        &mut self,
        stream: u16,
        message: u32,
        mut recycle: impl FnMut(Vec<u8>),
    ) -> Option<(Chunklet, bool)> {
        let s = self.streams.get_mut(&stream)?;
        let partly_sent = s
            .queue
            .front()
            .is_some_and(|c| c.message == message && !c.flags.beginning);
        let mut last: Option<Chunklet> = None;
        while s.queue.front().is_some_and(|c| c.message == message) {
            let Some(c) = s.queue.pop_front() else { break };
            self.queued_chunks -= 1;
            self.queued_bytes -= c.data.len();
            s.buffered = s.buffered.saturating_sub(c.data.len());
            if let Some(previous) = last.replace(c) {
                recycle(previous.data);
            }
        }
        let last = last?;
        self.turn_done(stream);
        Some((last, partly_sent))
    }
}

#[cfg(test)]
mod tests {
    use super::super::send::Limit;
    use super::*;
    use crate::sctp::chunk::DataFlags;

    /// A message of `fragments` fragments on `stream`.
    fn message(stream: u16, message: u32, fragments: u32, unordered: bool) -> impl Iterator<Item = Chunklet> {
        (0..fragments).map(move |i| Chunklet {
            stream,
            mid: 0,
            fsn: i,
            message,
            limit: Limit::None,
            ppid: 53,
            flags: DataFlags {
                immediate: false,
                unordered,
                beginning: i == 0,
                end: i + 1 == fragments,
            },
            data: vec![0; 100],
        })
    }

    /// (stream, MID) of every chunk, in the order they go.
    fn drain(s: &mut Scheduler) -> Vec<(u16, u32)> {
        std::iter::from_fn(|| {
            s.peek()?;
            s.pop()
        })
        .map(|c| (c.stream, c.mid))
        .collect()
    }

    #[test]
    fn data_keeps_the_turn_for_a_whole_message_and_i_data_passes_it_by_fragment() {
        for interleaving in [false, true] {
            let mut s = Scheduler::new(interleaving);
            s.push(1, message(1, 0, 3, false));
            s.push(1, message(1, 1, 1, false));
            // As big as stream 1's first: it goes second (a tie goes to
            // the stream queued first).
            s.push(2, message(2, 2, 3, false));
            let order: Vec<u16> = drain(&mut s).iter().map(|c| c.0).collect();
            if interleaving {
                // RFC 8260 §3: the streams alternate fragment by fragment.
                assert_eq!(order, vec![1, 2, 1, 2, 1, 2, 1]);
            } else {
                assert_eq!(order, vec![1, 1, 1, 2, 2, 2, 1]);
            }
        }
    }

    /// RFC 8260 §3.6: turns are charged by bytes, so at every point of
    /// the sending order two busy streams of equal priority have sent
    /// the same bytes, give or take one message (with I-DATA, one
    /// fragment) of each; charged by message, a stream of 100-byte
    /// messages got one per 1000-byte message of the other.
    #[test]
    fn turns_are_charged_by_the_bytes_they_send() {
        for interleaving in [false, true] {
            let mut s = Scheduler::new(interleaving);
            for m in 0..5 {
                s.push(1, message(1, m, 10, false));
            }
            for m in 5..55 {
                s.push(2, message(2, m, 1, false));
            }
            let order = drain(&mut s);
            let bound = if interleaving { 200 } else { 1100 };
            let (mut bulk, mut chat) = (0i64, 0i64);
            for (stream, _) in order.iter().take(100) {
                if *stream == 1 {
                    bulk += 100;
                } else {
                    chat += 100;
                }
                assert!(
                    (bulk - chat).abs() <= bound,
                    "interleaving {interleaving}: {bulk} against {chat}"
                );
            }
        }
    }

    #[test]
    fn unordered_messages_take_mids_of_their_own_with_i_data() {
        let mut s = Scheduler::new(true);
        s.push(4, message(4, 0, 2, false));
        s.push(4, message(4, 1, 1, true));
        s.push(4, message(4, 2, 1, true));
        s.push(4, message(4, 3, 1, false));
        assert_eq!(drain(&mut s), vec![(4, 0), (4, 0), (4, 0), (4, 1), (4, 1)]);
        // A reset starts both over (RFC 8260 §2.1 with RFC 6525).
        s.reset(&[4]);
        s.push(4, message(4, 4, 1, true));
        s.push(4, message(4, 5, 1, false));
        assert_eq!(drain(&mut s), vec![(4, 0), (4, 0)]);
        // Unordered DATA carries no SSN.
        let mut d = Scheduler::new(false);
        d.push(4, message(4, 0, 1, true));
        d.push(4, message(4, 1, 1, true));
        assert_eq!(drain(&mut d), vec![(4, 0), (4, 0)]);
    }
}
