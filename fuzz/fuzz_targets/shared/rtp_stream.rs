//! The packet stream the VP9 and AV1 depacketizer targets read from
//! their input: repeated [control, length, payload...]. Control bit 0 is
//! the marker, bits 1-2 step the sequence number by +1, +2, 0 or -1,
//! bit 3 moves the timestamp on, bit 4 jumps the sequence number far;
//! bits 5-7 are the target's own.

use natter_rtp::payload::RtpPayload;

pub struct RtpStream<'a> {
    rest: &'a [u8],
    seq: u16,
    ts: u32,
}

impl<'a> RtpStream<'a> {
    /// Sequence numbers start just before wrapping around.
    pub fn new(data: &'a [u8]) -> Self {
        RtpStream {
            rest: data,
            seq: 65_530,
            ts: 0,
        }
    }
}

impl<'a> Iterator for RtpStream<'a> {
    /// The control byte and the packet.
    type Item = (u8, RtpPayload<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let [control, len, tail @ ..] = self.rest else {
            return None;
        };
        let (payload, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        self.rest = tail;
        let step: u16 = match control >> 1 & 3 {
            0 => 1,
            1 => 2,
            2 => 0,
            _ => u16::MAX,
        };
        let jump = if control & 0x10 != 0 { 20_000 } else { 0 };
        self.seq = self.seq.wrapping_add(step).wrapping_add(jump);
        if control & 0x08 != 0 {
            self.ts = self.ts.wrapping_add(3000);
        }
        let packet = RtpPayload {
            sequence_number: self.seq,
            timestamp: self.ts,
            marker: control & 1 != 0,
            payload,
        };
        Some((*control, packet))
    }
}
