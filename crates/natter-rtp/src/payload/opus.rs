//! Opus over RTP (RFC 7587): one Opus packet (RFC 6716 §3) is the whole
//! payload (§4.2), never split or aggregated.

use super::{Depacketized, PayloadChunk, PayloadError, RtpPayload, SeqStep, SeqTracker};

/// Makes the one payload of an Opus packet.
#[derive(Clone, Debug)]
pub struct OpusPacketizer<'f> {
    chunk: Option<PayloadChunk<'f>>,
}

impl<'f> OpusPacketizer<'f> {
    /// `frame` is one Opus packet, at least one byte (RFC 6716 §3.4, R1)
    /// and at most `max_payload`. `talkspurt_start` sets the marker bit
    /// on the first packet after a silence that sent nothing (RFC 7587
    /// §4.1, RFC 3551 §4.1); without DTX it is always false.
    pub fn new(frame: &'f [u8], max_payload: usize, talkspurt_start: bool) -> Result<Self, PayloadError> {
        if frame.is_empty() {
            return Err(PayloadError::EmptyFrame { codec: "Opus" });
        }
        if frame.len() > max_payload {
            return Err(PayloadError::FrameTooLarge {
                codec: "Opus",
                len: frame.len(),
                max: max_payload,
            });
        }
        Ok(OpusPacketizer {
            chunk: Some(PayloadChunk::new(&[], frame, talkspurt_start)),
        })
    }
}

impl<'f> Iterator for OpusPacketizer<'f> {
    type Item = PayloadChunk<'f>;

    fn next(&mut self) -> Option<PayloadChunk<'f>> {
        self.chunk.take()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.chunk.is_some());
        (n, Some(n))
    }
}

impl ExactSizeIterator for OpusPacketizer<'_> {}

/// An Opus packet, borrowed from the RTP packet that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusFrame<'a> {
    pub data: &'a [u8],
    pub timestamp: u32,
}

/// Hands out Opus packets from the RTP packets of one SSRC, given in
/// sequence order, and counts the ones lost in between (in
/// [`Depacketized::frames_dropped`]) so the decoder can conceal them or
/// recover them from in-band FEC (RFC 7587 §3.3).
#[derive(Clone, Debug, Default)]
pub struct OpusDepacketizer {
    seq: SeqTracker,
}

impl OpusDepacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next packet; an empty payload (padding only) gives no
    /// frame. Every Opus payload is accepted: checking it is the
    /// decoder's business.
    pub fn push<'a>(&mut self, packet: RtpPayload<'a>) -> Depacketized<OpusFrame<'a>> {
        let frames_dropped = match self.seq.step(packet.sequence_number) {
            SeqStep::Stale => return Depacketized::default(),
            SeqStep::Gap { lost } => u32::from(lost),
            // A restarted sequence says nothing of how much was lost.
            SeqStep::Next | SeqStep::Jump => 0,
        };
        Depacketized {
            frame: (!packet.payload.is_empty()).then_some(OpusFrame {
                data: packet.payload,
                timestamp: packet.timestamp,
            }),
            frames_dropped,
            keyframe_needed: false,
        }
    }
}
