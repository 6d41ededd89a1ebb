//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): RTPFB,
//! FMT=15. A receiver reports, for a range of transport-wide sequence
//! numbers, which packets arrived and when, as status chunks (§3.1.2 to
//! §3.1.4) followed by receive deltas (§3.1.5).
//!
//! Two points where the draft and deployed peers differ are settled as
//! libwebrtc settles them: in a one-bit status vector 1 means "received"
//! (the draft's own example, not its prose), and the symbol `11` is
//! reserved (an example in §3.1.3 uses it for "received without
//! delta", which nobody sends); a reported `11` is an error.
//!
//! Arrival times are microseconds on the feedback sender's clock. They
//! travel as a 24-bit reference time in 64 ms units plus 250 µs deltas,
//! so a round trip rounds each time to 250 µs and keeps it modulo
//! 2^24 × 64 ms (about 12.4 days).

use super::{fmt, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{padded4, put_u16, put_u24, put_u32, u16_at, u24_at};

/// §3.1.5: receive deltas count 250 µs.
pub const TWCC_DELTA_TICK_US: i64 = 250;
/// §3.1: the reference time counts 64 ms.
pub const TWCC_REFERENCE_TICK_US: i64 = 64_000;
const TICKS_PER_REFERENCE: i64 = TWCC_REFERENCE_TICK_US / TWCC_DELTA_TICK_US;
/// §3.1.3: a run length is 13 bits.
const MAX_RUN_LENGTH: u16 = 0x1FFF;
/// Common header, SSRCs, base seq, count, reference time, fb count.
const FIXED_LEN: usize = HEADER_LEN + 8 + 8;

/// §3.1.1: the status of one reported packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum StatusSymbol {
    /// `00`: not received (yet); no delta.
    NotReceived,
    /// `01`: received, delta in [0, 63.75] ms as one unsigned byte.
    SmallDelta,
    /// `10`: received, delta in [-8192, 8191.75] ms as two signed bytes.
    LargeDelta,
}

impl StatusSymbol {
    fn from_bits(b: u16) -> Option<Self> {
        match b {
            0 => Some(StatusSymbol::NotReceived),
            1 => Some(StatusSymbol::SmallDelta),
            2 => Some(StatusSymbol::LargeDelta),
            _ => None,
        }
    }

    fn bits(self) -> u16 {
        match self {
            StatusSymbol::NotReceived => 0,
            StatusSymbol::SmallDelta => 1,
            StatusSymbol::LargeDelta => 2,
        }
    }

    /// Bytes of receive delta this status carries.
    pub fn delta_len(self) -> usize {
        self.bits() as usize
    }

    fn for_delta(ticks: i64) -> Self {
        if (0..=255).contains(&ticks) {
            StatusSymbol::SmallDelta
        } else {
            StatusSymbol::LargeDelta
        }
    }
}

/// §3.1.2: one 16-bit packet status chunk, as sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PacketStatusChunk(pub u16);

impl PacketStatusChunk {
    /// §3.1.3: T=0, a 2-bit symbol and a 13-bit run length.
    pub fn run_length(symbol: StatusSymbol, run: u16) -> Self {
        PacketStatusChunk((symbol.bits() << 13) | (run & MAX_RUN_LENGTH))
    }

    pub fn is_run_length(self) -> bool {
        self.0 & 0x8000 == 0
    }

    /// §3.1.4: S=1, seven 2-bit symbols rather than fourteen 1-bit ones.
    pub fn is_two_bit_vector(self) -> bool {
        self.0 & 0xC000 == 0xC000
    }

    /// How many statuses the chunk describes.
    pub fn symbol_count(self) -> usize {
        if self.is_run_length() {
            usize::from(self.0 & MAX_RUN_LENGTH)
        } else if self.is_two_bit_vector() {
            7
        } else {
            14
        }
    }

    /// The `i`th symbol as 2 bits (`11` is reserved); `i < symbol_count()`.
    pub fn raw_symbol(self, i: usize) -> u8 {
        let v = if self.is_run_length() {
            self.0 >> 13
        } else if self.is_two_bit_vector() {
            self.0 >> (12 - 2 * (i % 7))
        } else {
            (self.0 >> (13 - (i % 14))) & 1
        };
        (v & 3) as u8
    }

    /// The `i`th symbol; `None` for the reserved `11`.
    pub fn symbol(self, i: usize) -> Option<StatusSymbol> {
        StatusSymbol::from_bits(u16::from(self.raw_symbol(i)))
    }
}

/// Iterator over the status chunks of a feedback packet.
pub type TwccChunks<'a> = std::iter::Map<std::slice::ChunksExact<'a, u8>, fn(&[u8]) -> PacketStatusChunk>;

fn chunk_at(c: &[u8]) -> PacketStatusChunk {
    PacketStatusChunk(u16_at(c, 0))
}

/// One reported packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TwccPacket {
    /// Transport-wide sequence number.
    pub seq: u16,
    pub status: StatusSymbol,
    /// The receive delta in 250 µs ticks, for received packets.
    pub recv_delta: Option<i16>,
    /// Arrival time in µs on the feedback sender's clock.
    pub arrival_us: Option<i64>,
}

/// A received transport-wide CC feedback, borrowed and validated: the
/// chunks cover the status count, no counted symbol is reserved and the
/// deltas they call for are present.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TransportFeedback<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    pub base_seq: u16,
    pub status_count: u16,
    /// 24-bit signed, in 64 ms units.
    pub reference_time: i32,
    /// Counts feedback packets, to detect lost feedback.
    pub fb_pkt_count: u8,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

impl<'a> TransportFeedback<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        const NAME: &str = "transport-wide CC feedback";
        let (sender_ssrc, media_ssrc, fci) = raw.feedback(NAME)?;
        if fci.len() < 8 {
            return Err(raw.truncated(NAME, 16));
        }
        let status_count = u16_at(fci, 2);
        let mut remaining = usize::from(status_count);
        let mut pos = 8;
        let mut delta_len = 0;
        while remaining > 0 {
            let Some(c) = fci.get(pos..pos + 2) else {
                return Err(raw.invalid(NAME, "packet chunks end before the status count is reached"));
            };
            pos += 2;
            let chunk = chunk_at(c);
            let n = chunk.symbol_count().min(remaining);
            if chunk.is_run_length() {
                match chunk.symbol(0) {
                    Some(s) => delta_len += n * s.delta_len(),
                    None if n == 0 => {}
                    None => return Err(raw.invalid(NAME, "run length chunk repeats the reserved symbol 11")),
                }
            } else {
                for i in 0..n {
                    match chunk.symbol(i) {
                        Some(s) => delta_len += s.delta_len(),
                        None => return Err(raw.invalid(NAME, "status vector holds the reserved symbol 11")),
                    }
                }
            }
            remaining -= n;
        }
        let Some(deltas) = fci.get(pos..pos + delta_len) else {
            return Err(raw.truncated(NAME, 8 + pos + delta_len));
        };
        Ok(TransportFeedback {
            sender_ssrc,
            media_ssrc,
            base_seq: u16_at(fci, 0),
            status_count,
            reference_time: ((u24_at(fci, 4) << 8) as i32) >> 8,
            fb_pkt_count: fci[7],
            chunks: &fci[8..pos],
            deltas,
        })
    }

    /// The reference time in µs.
    pub fn reference_time_us(&self) -> i64 {
        i64::from(self.reference_time) * TWCC_REFERENCE_TICK_US
    }

    /// The status chunks, as sent.
    pub fn chunks(&self) -> TwccChunks<'a> {
        self.chunks
            .chunks_exact(2)
            .map(chunk_at as fn(&[u8]) -> PacketStatusChunk)
    }

    /// The raw receive deltas.
    pub fn deltas(&self) -> &'a [u8] {
        self.deltas
    }

    /// Every reported packet in sequence order, `status_count` of them.
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            chunks: self.chunks,
            chunk: PacketStatusChunk(0),
            index: 0,
            deltas: self.deltas,
            seq: self.base_seq,
            remaining: self.status_count,
            ticks: i64::from(self.reference_time) * TICKS_PER_REFERENCE,
        }
    }
}

/// Iterator over a feedback's packets, built by [`TransportFeedback::packets`].
#[derive(Clone, Debug)]
pub struct TwccPackets<'a> {
    chunks: &'a [u8],
    chunk: PacketStatusChunk,
    index: usize,
    deltas: &'a [u8],
    seq: u16,
    remaining: u16,
    ticks: i64,
}

impl Iterator for TwccPackets<'_> {
    type Item = TwccPacket;

    fn next(&mut self) -> Option<TwccPacket> {
        if self.remaining == 0 {
            return None;
        }
        while self.index >= self.chunk.symbol_count() {
            let c = self.chunks.get(..2)?;
            self.chunk = chunk_at(c);
            self.chunks = &self.chunks[2..];
            self.index = 0;
        }
        let status = self.chunk.symbol(self.index)?;
        self.index += 1;
        let recv_delta = match status {
            StatusSymbol::NotReceived => None,
            StatusSymbol::SmallDelta => {
                let (&d, rest) = self.deltas.split_first()?;
                self.deltas = rest;
                Some(i16::from(d))
            }
            StatusSymbol::LargeDelta => {
                let d = self.deltas.get(..2)?;
                self.deltas = &self.deltas[2..];
                Some(u16_at(d, 0) as i16)
            }
        };
        let arrival_us = recv_delta.map(|d| {
            self.ticks += i64::from(d);
            self.ticks * TWCC_DELTA_TICK_US
        });
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.remaining -= 1;
        Some(TwccPacket {
            seq,
            status,
            recv_delta,
            arrival_us,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// Builds a feedback from the packets received, as (transport-wide
/// sequence number, arrival time in µs) in ascending (wrapping) sequence
/// order, each less than 32768 past the one before. Numbers missing from
/// the list between the base and the last one are reported not received.
///
/// Arrival times may go backwards (reordering); a delta beyond
/// ±8191.75 ms fails with [`Error::TwccDeltaOutOfRange`], and the caller
/// starts a new feedback from that packet. The packet is padded to 32
/// bits with RTCP padding (P set), as libwebrtc does, so put it last in
/// a compound packet or send it alone.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TransportFeedbackBuilder<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    pub fb_pkt_count: u8,
    /// The first number reported, to report packets before the first
    /// received one as lost; `None` starts at the first received.
    pub base_seq: Option<u16>,
    pub received: &'a [(u16, i64)],
}

/// What a valid builder writes: found by [`TransportFeedbackBuilder::plan`].
#[derive(Clone, Copy, Debug)]
struct Plan {
    base_seq: u16,
    status_count: u16,
    /// Reference time in 64 ms units, unwrapped.
    reference: i64,
    chunks: usize,
    delta_len: usize,
}

impl TransportFeedbackBuilder<'_> {
    fn symbols(&self, plan: &Plan) -> Symbols<'_> {
        Symbols {
            received: self.received,
            seq: plan.base_seq,
            remaining: plan.status_count,
            prev_ticks: plan.reference * TICKS_PER_REFERENCE,
        }
    }

    fn plan(&self) -> Result<Plan, Error> {
        let Some(&(first_seq, first_us)) = self.received.first() else {
            return Err(Error::InvalidInput {
                what: "transport-wide CC feedback",
                reason: "no packet was received",
            });
        };
        let base_seq = self.base_seq.unwrap_or(first_seq);
        let mut last: Option<u16> = None;
        for pair in self.received.windows(2) {
            // A step back looks like a step of more than half the space.
            if !(1..0x8000).contains(&pair[1].0.wrapping_sub(pair[0].0)) {
                return Err(Error::InvalidInput {
                    what: "transport-wide CC feedback",
                    reason: "received packets are not in ascending sequence order",
                });
            }
        }
        for &(seq, _) in self.received {
            let offset = seq.wrapping_sub(base_seq);
            if last.is_some_and(|l| offset <= l) {
                return Err(Error::TooMany {
                    what: "reported packets",
                    count: usize::from(u16::MAX) + 1,
                    max: usize::from(u16::MAX),
                });
            }
            last = Some(offset);
        }
        // `received` is not empty, so `last` is set.
        let count = usize::from(last.unwrap_or(0)) + 1;
        let Ok(status_count) = u16::try_from(count) else {
            return Err(Error::TooMany {
                what: "reported packets",
                count,
                max: usize::from(u16::MAX),
            });
        };
        let mut plan = Plan {
            base_seq,
            status_count,
            reference: to_ticks(first_us).div_euclid(TICKS_PER_REFERENCE),
            chunks: 0,
            delta_len: 0,
        };
        let mut symbols = self.symbols(&plan);
        while let Some((symbol, seq, delta)) = symbols.next_with_delta() {
            if symbol != StatusSymbol::NotReceived && i16::try_from(delta).is_err() {
                return Err(Error::TwccDeltaOutOfRange {
                    seq,
                    delta_us: delta * TWCC_DELTA_TICK_US,
                });
            }
            plan.delta_len += symbol.delta_len();
        }
        let mut chunks = 0;
        for_each_chunk(self.symbols(&plan), |_| chunks += 1);
        plan.chunks = chunks;
        Ok(plan)
    }

    fn len_unpadded(plan: &Plan) -> usize {
        FIXED_LEN + 2 * plan.chunks + plan.delta_len
    }
}

impl RtcpEncode for TransportFeedbackBuilder<'_> {
    /// The length if the input is valid ([`RtcpEncode::encode`] says if not).
    fn encoded_len(&self) -> usize {
        self.plan().map_or(0, |p| padded4(Self::len_unpadded(&p)))
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let plan = self.plan()?;
        let unpadded = Self::len_unpadded(&plan);
        let len = padded4(unpadded);
        write_header(buf, fmt::TRANSPORT_CC, packet_type::RTPFB, len)?;
        put_u32(buf, 4, self.sender_ssrc);
        put_u32(buf, 8, self.media_ssrc);
        put_u16(buf, 12, plan.base_seq);
        put_u16(buf, 14, plan.status_count);
        // 24 bits, two's complement; wraps as the draft's time base does.
        put_u24(buf, 16, (plan.reference & 0xFF_FFFF) as u32);
        buf[19] = self.fb_pkt_count;
        let mut at = FIXED_LEN;
        for_each_chunk(self.symbols(&plan), |c| {
            put_u16(buf, at, c.0);
            at += 2;
        });
        let mut symbols = self.symbols(&plan);
        while let Some((symbol, _, delta)) = symbols.next_with_delta() {
            match symbol {
                StatusSymbol::NotReceived => {}
                // plan() checked the deltas' ranges.
                StatusSymbol::SmallDelta => {
                    buf[at] = delta as u8;
                    at += 1;
                }
                StatusSymbol::LargeDelta => {
                    put_u16(buf, at, delta as i16 as u16);
                    at += 2;
                }
            }
        }
        if len > unpadded {
            buf[0] |= 0x20;
            buf[unpadded..len - 1].fill(0);
            buf[len - 1] = (len - unpadded) as u8;
        }
        Ok(len)
    }
}

/// Microseconds to 250 µs ticks, rounded to nearest.
fn to_ticks(us: i64) -> i64 {
    us.saturating_add(TWCC_DELTA_TICK_US / 2).div_euclid(TWCC_DELTA_TICK_US)
}

/// The statuses a builder reports, in order, with their deltas.
#[derive(Clone, Debug)]
struct Symbols<'a> {
    received: &'a [(u16, i64)],
    seq: u16,
    remaining: u16,
    prev_ticks: i64,
}

impl Symbols<'_> {
    fn next_with_delta(&mut self) -> Option<(StatusSymbol, u16, i64)> {
        if self.remaining == 0 {
            return None;
        }
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        self.remaining -= 1;
        match self.received.split_first() {
            Some((&(s, us), rest)) if s == seq => {
                self.received = rest;
                let ticks = to_ticks(us);
                let delta = ticks.saturating_sub(self.prev_ticks);
                self.prev_ticks = ticks;
                Some((StatusSymbol::for_delta(delta), seq, delta))
            }
            _ => Some((StatusSymbol::NotReceived, seq, 0)),
        }
    }

    fn next_symbol(&mut self) -> Option<StatusSymbol> {
        self.next_with_delta().map(|(s, _, _)| s)
    }

    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.next_with_delta();
        }
    }
}

/// Packs statuses into chunks greedily: a run length chunk for runs of
/// 14 or more (or the identical tail), else a one-bit vector when the
/// next 14 hold no large delta, else a run of 7 or more, else a two-bit
/// vector. Vector slots past the last status are written `00`.
fn for_each_chunk(mut symbols: Symbols<'_>, mut emit: impl FnMut(PacketStatusChunk)) {
    loop {
        let remaining = usize::from(symbols.remaining);
        if remaining == 0 {
            return;
        }
        let mut ahead = symbols.clone();
        // remaining > 0, so a symbol follows.
        let Some(first) = ahead.next_symbol() else { return };
        let mut run = 1usize;
        while run < usize::from(MAX_RUN_LENGTH) && ahead.next_symbol() == Some(first) {
            run += 1;
        }
        if run >= 14 || run == remaining {
            emit(PacketStatusChunk::run_length(first, run as u16));
            symbols.skip(run);
            continue;
        }
        let n14 = remaining.min(14);
        let mut ahead = symbols.clone();
        let mut one_bit = 0x8000u16;
        let mut fits_one_bit = true;
        for i in 0..n14 {
            match ahead.next_symbol() {
                Some(StatusSymbol::LargeDelta) | None => fits_one_bit = false,
                Some(StatusSymbol::SmallDelta) => one_bit |= 1 << (13 - i),
                Some(StatusSymbol::NotReceived) => {}
            }
        }
        if fits_one_bit {
            emit(PacketStatusChunk(one_bit));
            symbols.skip(n14);
        } else if run >= 7 {
            emit(PacketStatusChunk::run_length(first, run as u16));
            symbols.skip(run);
        } else {
            let n7 = remaining.min(7);
            let mut two_bit = 0xC000u16;
            for i in 0..n7 {
                let s = symbols.next_symbol().unwrap_or(StatusSymbol::NotReceived);
                two_bit |= s.bits() << (12 - 2 * i);
            }
            emit(PacketStatusChunk(two_bit));
        }
    }
}
