//! Reassembly of user messages from DATA (RFC 9260 §6.9) or I-DATA
//! (RFC 8260 §2.1) fragments, and their delivery per stream: ordered
//! messages in SSN/MID order (§6.6), unordered ones as soon as whole.
//!
//! A message in one chunk that is next in its stream (the common case)
//! is copied once, into a buffer from a pool the caller refills with
//! [`Reassembly::recycle`]; fragments wait in buffers from the same pool.

use std::collections::{HashMap, VecDeque};

use super::chunk::{Data, IData};
use super::tsn::{serial_lt16, serial_lt32, Tsn};

/// One fragment, from a DATA or an I-DATA chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fragment<'a> {
    pub tsn: Tsn,
    pub stream: u16,
    pub unordered: bool,
    pub beginning: bool,
    pub end: bool,
    /// SSN (DATA) or MID (I-DATA).
    pub mid: u32,
    /// Position in the message: the TSN for DATA, whose fragments take
    /// consecutive TSNs (§6.9), the FSN for I-DATA.
    pub fsn: u32,
    pub ppid: u32,
    pub payload: &'a [u8],
}

impl<'a> From<Data<'a>> for Fragment<'a> {
    fn from(d: Data<'a>) -> Self {
        Fragment {
            tsn: d.tsn,
            stream: d.stream,
            unordered: d.flags.unordered,
            beginning: d.flags.beginning,
            end: d.flags.end,
            // Unordered DATA carries no meaningful SSN (§3.3.1).
            mid: if d.flags.unordered { 0 } else { u32::from(d.ssn) },
            fsn: d.tsn.0,
            ppid: d.ppid,
            payload: d.payload,
        }
    }
}

impl<'a> From<IData<'a>> for Fragment<'a> {
    fn from(d: IData<'a>) -> Self {
        Fragment {
            tsn: d.tsn,
            stream: d.stream,
            unordered: d.flags.unordered,
            beginning: d.flags.beginning,
            end: d.flags.end,
            mid: d.mid,
            fsn: d.fsn(),
            ppid: d.ppid().unwrap_or(0),
            payload: d.payload,
        }
    }
}

/// A whole user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub stream: u16,
    pub ppid: u32,
    pub unordered: bool,
    pub data: Vec<u8>,
}

/// Whether SSNs (16-bit, DATA) or MIDs (32-bit, I-DATA) number messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    Ssn,
    Mid,
}

#[derive(Debug)]
struct Held {
    unordered: bool,
    mid: u32,
    fsn: u32,
    tsn: Tsn,
    beginning: bool,
    end: bool,
    ppid: u32,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Stream {
    next_mid: u32,
    /// Fragments waiting, sorted by (unordered, mid, fsn) in serial order.
    held: Vec<Held>,
}

#[derive(Debug)]
pub struct Reassembly {
    numbering: Numbering,
    streams: HashMap<u16, Stream>,
    ready: VecDeque<Message>,
    pool: Vec<Vec<u8>>,
    /// Payload bytes held or ready: what the receive window has given away.
    buffered: usize,
}

impl Numbering {
    /// RFC 1982 order of two SSNs or MIDs.
    fn lt(self, a: u32, b: u32) -> bool {
        match self {
            // SSNs are 16 bits; only the low half is ever set.
            Numbering::Ssn => serial_lt16(a as u16, b as u16),
            Numbering::Mid => serial_lt32(a, b),
        }
    }

    fn next(self, mid: u32) -> u32 {
        match self {
            Numbering::Ssn => u32::from((mid as u16).wrapping_add(1)),
            Numbering::Mid => mid.wrapping_add(1),
        }
    }
}

/// Buffers kept for reuse at most.
const POOL: usize = 64;

/// What each fragment held or message ready costs besides its payload,
/// charged to the receive window (RFC 9260 §6.2 leaves the accounting to
/// the receiver), so that a flood of one-byte chunks closes the window
/// long before their bookkeeping outgrows it.
pub const CHUNK_OVERHEAD: usize = 64;

impl Reassembly {
    pub fn new(numbering: Numbering) -> Self {
        Reassembly {
            numbering,
            streams: HashMap::new(),
            ready: VecDeque::new(),
            pool: Vec::new(),
            buffered: 0,
        }
    }

    /// Bytes received and not yet taken by [`Reassembly::poll_message`],
    /// with [`CHUNK_OVERHEAD`] for each fragment held and message ready.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.extend_from_slice(bytes);
        v
    }

    /// Gives a delivered message's buffer back for later fragments.
    pub fn recycle(&mut self, mut data: Vec<u8>) {
        if self.pool.len() < POOL {
            data.clear();
            self.pool.push(data);
        }
    }

    /// Takes a fragment whose TSN was new ([`super::received::Arrival::New`]).
    pub fn insert(&mut self, f: Fragment<'_>) {
        let next = self.streams.get(&f.stream).map_or(0, |s| s.next_mid);
        if !f.unordered && self.numbering.lt(f.mid, next) {
            // A message already delivered or skipped.
            return;
        }
        self.buffered += f.payload.len() + CHUNK_OVERHEAD;
        if f.beginning && f.end && (f.unordered || f.mid == next) {
            let data = self.buffer(f.payload);
            self.ready.push_back(Message {
                stream: f.stream,
                ppid: f.ppid,
                unordered: f.unordered,
                data,
            });
            if !f.unordered {
                self.streams.entry(f.stream).or_default().next_mid = self.numbering.next(next);
                self.deliver_in_order(f.stream);
            }
            return;
        }
        let data = self.buffer(f.payload);
        let held = Held {
            unordered: f.unordered,
            mid: f.mid,
            fsn: f.fsn,
            tsn: f.tsn,
            beginning: f.beginning,
            end: f.end,
            ppid: f.ppid,
            data,
        };
        let numbering = self.numbering;
        let stream = self.streams.entry(f.stream).or_default();
        // Ordered first, then by message, then by position.
        let at = stream.held.partition_point(|h| {
            (!h.unordered && held.unordered)
                || (h.unordered == held.unordered
                    && (numbering.lt(h.mid, held.mid) || (h.mid == held.mid && serial_lt32(h.fsn, held.fsn))))
        });
        stream.held.insert(at, held);
        if f.unordered {
            if let Some(range) = whole_message(&stream.held, at) {
                self.take(f.stream, range);
            }
        } else {
            self.deliver_in_order(f.stream);
        }
    }

    /// Delivers the stream's next ordered messages while they are whole.
    fn deliver_in_order(&mut self, stream_id: u16) {
        while let Some(stream) = self.streams.get(&stream_id) {
            let next = stream.next_mid;
            let Some(first) = stream.held.iter().position(|h| !h.unordered && h.mid == next) else {
                return;
            };
            let Some(range) = whole_message(&stream.held, first) else {
                return;
            };
            self.take(stream_id, range);
            if let Some(s) = self.streams.get_mut(&stream_id) {
                s.next_mid = self.numbering.next(next);
            }
        }
    }

    /// Moves the held fragments in `range` of a stream into one message.
    fn take(&mut self, stream_id: u16, range: std::ops::Range<usize>) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let mut fragments = stream.held.drain(range);
        let Some(first) = fragments.next() else { return };
        let (ppid, unordered, mut data) = (first.ppid, first.unordered, first.data);
        for f in fragments {
            // One message ready is charged one overhead.
            self.buffered -= CHUNK_OVERHEAD;
            data.extend_from_slice(&f.data);
            if self.pool.len() < POOL {
                let mut spare = f.data;
                spare.clear();
                self.pool.push(spare);
            }
        }
        self.ready.push_back(Message {
            stream: stream_id,
            ppid,
            unordered,
            data,
        });
    }

    /// RFC 3758 §3.6: drops the fragments of abandoned TSNs (up to and
    /// including `new_cumulative`); with DATA, the FORWARD TSN's stream
    /// entries then say which SSNs to skip ([`Reassembly::skip_ordered`]).
    pub fn forget_through(&mut self, new_cumulative: Tsn) {
        let mut dropped = 0;
        for stream in self.streams.values_mut() {
            stream.held.retain(|h| {
                let keep = h.tsn.is_after(new_cumulative);
                if !keep {
                    dropped += h.data.len() + CHUNK_OVERHEAD;
                }
                keep
            });
        }
        self.buffered -= dropped;
    }

    /// RFC 8260 §2.3.2: the unordered message `mid` of `stream` was
    /// abandoned; its fragments held go.
    pub fn forget_unordered(&mut self, stream_id: u16, mid: u32) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let mut dropped = 0;
        stream.held.retain(|h| {
            let keep = !(h.unordered && h.mid == mid);
            if !keep {
                dropped += h.data.len() + CHUNK_OVERHEAD;
            }
            keep
        });
        self.buffered -= dropped;
    }

    /// RFC 3758 §3.6, RFC 8260 §2.3.2: ordered messages of `stream` up
    /// to `mid` were abandoned: their fragments held go (with I-DATA they
    /// need not lie below the new cumulative TSN), and what waited behind
    /// them is delivered.
    pub fn skip_ordered(&mut self, stream_id: u16, mid: u32) {
        let numbering = self.numbering;
        let stream = self.streams.entry(stream_id).or_default();
        if !numbering.lt(mid, stream.next_mid) {
            stream.next_mid = numbering.next(mid);
        }
        let next = stream.next_mid;
        let mut dropped = 0;
        stream.held.retain(|h| {
            let keep = h.unordered || !numbering.lt(h.mid, next);
            if !keep {
                dropped += h.data.len() + CHUNK_OVERHEAD;
            }
            keep
        });
        self.buffered -= dropped;
        self.deliver_in_order(stream_id);
    }

    /// RFC 6525 §5.2.2 E3: the peer reset its outgoing `streams` (every
    /// stream when the list is empty): their next ordered message is SSN
    /// (or MID) 0 again. Called once everything sent before the reset
    /// has arrived, so what was whole is already delivered, and before
    /// the peer hears the reset was performed, so nothing of the new
    /// numbering has come yet (RFC 6525 §5.1.2). `reset`
    /// hears each stream reset (for an empty list, those that received
    /// something).
    pub fn reset_streams(&mut self, streams: &[u16], mut reset: impl FnMut(u16)) {
        if streams.is_empty() {
            for (id, s) in self.streams.iter_mut() {
                s.next_mid = 0;
                reset(*id);
            }
            return;
        }
        for id in streams {
            if let Some(s) = self.streams.get_mut(id) {
                s.next_mid = 0;
            }
            reset(*id);
        }
    }

    /// The next whole message, in delivery order.
    pub fn poll_message(&mut self) -> Option<Message> {
        let m = self.ready.pop_front()?;
        self.buffered -= m.data.len() + CHUNK_OVERHEAD;
        Some(m)
    }
}

/// The fragments of the message that the fragment at `at` belongs to,
/// if they are all there: same message, consecutive positions, B to E.
fn whole_message(held: &[Held], at: usize) -> Option<std::ops::Range<usize>> {
    let same = |a: &Held, b: &Held| a.unordered == b.unordered && a.mid == b.mid && a.fsn.wrapping_add(1) == b.fsn;
    let mut first = at;
    while !held[first].beginning {
        if first == 0 || !same(&held[first - 1], &held[first]) {
            return None;
        }
        first -= 1;
    }
    let mut last = at;
    while !held[last].end {
        if last + 1 == held.len() || !same(&held[last], &held[last + 1]) {
            return None;
        }
        last += 1;
    }
    Some(first..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(tsn: u32, stream: u16, mid: u32, be: (bool, bool), unordered: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            tsn: Tsn(tsn),
            stream,
            unordered,
            beginning: be.0,
            end: be.1,
            mid,
            fsn: tsn,
            ppid: 51,
            payload,
        }
    }

    fn drain(r: &mut Reassembly) -> Vec<(u16, Vec<u8>)> {
        std::iter::from_fn(|| r.poll_message())
            .map(|m| (m.stream, m.data))
            .collect()
    }

    #[test]
    fn fragments_in_any_order_make_one_message() {
        let mut r = Reassembly::new(Numbering::Ssn);
        r.insert(frag(12, 1, 0, (false, true), false, b"c"));
        r.insert(frag(10, 1, 0, (true, false), false, b"a"));
        assert!(r.poll_message().is_none());
        assert_eq!(r.buffered(), 2 + 2 * CHUNK_OVERHEAD);
        r.insert(frag(11, 1, 0, (false, false), false, b"b"));
        assert_eq!(drain(&mut r), vec![(1, b"abc".to_vec())]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn ordered_messages_wait_for_their_turn() {
        let mut r = Reassembly::new(Numbering::Ssn);
        r.insert(frag(2, 0, 1, (true, true), false, b"second"));
        r.insert(frag(3, 0, 2, (true, true), false, b"third"));
        // Another stream is not held up.
        r.insert(frag(4, 7, 0, (true, true), false, b"other"));
        assert_eq!(drain(&mut r), vec![(7, b"other".to_vec())]);
        r.insert(frag(1, 0, 0, (true, true), false, b"first"));
        assert_eq!(
            drain(&mut r),
            vec![(0, b"first".to_vec()), (0, b"second".to_vec()), (0, b"third".to_vec())]
        );
    }

    #[test]
    fn unordered_messages_do_not_wait() {
        let mut r = Reassembly::new(Numbering::Ssn);
        r.insert(frag(5, 0, 3, (true, true), false, b"ordered, late"));
        r.insert(frag(6, 0, 0, (false, true), true, b"y"));
        r.insert(frag(5 + 100, 0, 0, (true, true), true, b"z"));
        r.insert(frag(5, 0, 0, (true, false), true, b"x"));
        assert_eq!(drain(&mut r), vec![(0, b"z".to_vec()), (0, b"xy".to_vec())]);
    }

    #[test]
    fn i_data_interleaves_messages_by_mid_and_fsn() {
        let mut r = Reassembly::new(Numbering::Mid);
        let part = |tsn, mid, fsn, be: (bool, bool), p| Fragment {
            fsn,
            ..frag(tsn, 2, mid, be, false, p)
        };
        r.insert(part(1, 0, 0, (true, false), b"a"));
        r.insert(part(2, 1, 0, (true, false), b"X"));
        r.insert(part(3, 1, 1, (false, true), b"Y"));
        r.insert(part(4, 0, 1, (false, true), b"b"));
        assert_eq!(drain(&mut r), vec![(2, b"ab".to_vec()), (2, b"XY".to_vec())]);
    }

    #[test]
    fn ssns_wrap_around() {
        let mut r = Reassembly::new(Numbering::Ssn);
        // Walk the stream to the end of the SSN space in steps under 2^15.
        for ssn in [0x7000, 0xe000, 0xfffe] {
            r.skip_ordered(0, ssn);
        }
        r.insert(frag(1, 0, 0, (true, true), false, b"after the wrap"));
        r.insert(frag(2, 0, 0xffff, (true, true), false, b"before"));
        assert_eq!(
            drain(&mut r),
            vec![(0, b"before".to_vec()), (0, b"after the wrap".to_vec())]
        );
    }

    #[test]
    fn forward_tsn_drops_abandoned_fragments_and_unblocks_the_stream() {
        let mut r = Reassembly::new(Numbering::Ssn);
        r.insert(frag(1, 0, 0, (true, false), false, b"lost half"));
        r.insert(frag(3, 0, 1, (true, true), false, b"next"));
        r.forget_through(Tsn(2));
        r.skip_ordered(0, 0);
        assert_eq!(drain(&mut r), vec![(0, b"next".to_vec())]);
        assert_eq!(r.buffered(), 0);
        // A late fragment of the skipped message is ignored.
        r.insert(frag(2, 0, 0, (false, true), false, b"late"));
        assert!(r.poll_message().is_none());
        assert_eq!(r.buffered(), 0);
    }
}
