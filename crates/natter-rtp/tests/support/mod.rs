//! What the VP9, AV1 and inspection tests share: payloads numbered into
//! packets as a sender would, streams damaged by one loss, and headers
//! written field by field.

#![allow(dead_code)] // Each test file uses its own part.

use natter_rtp::payload::{PayloadChunk, RtpPayload};

/// One packet as the sender produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The frame it belongs to, in sending order.
    pub frame: usize,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

impl Packet {
    pub fn rtp(&self) -> RtpPayload<'_> {
        RtpPayload {
            sequence_number: self.seq,
            timestamp: self.ts,
            marker: self.marker,
            payload: &self.payload,
        }
    }
}

/// The bytes a chunk writes, checked against its announced length.
pub fn chunk_bytes(chunk: &PayloadChunk<'_>) -> Vec<u8> {
    let mut out = vec![0xEE; chunk.len() + 3];
    let n = chunk.write_to(&mut out).unwrap();
    assert_eq!(n, chunk.len());
    assert!(out[n..].iter().all(|&b| b == 0xEE), "wrote past its length");
    out.truncate(n);
    out
}

/// The packets of a stream: frame i's chunks, numbered from `seq0`,
/// with timestamp 3000 * i.
pub fn number<'f, C>(frames: impl IntoIterator<Item = C>, seq0: u16) -> Vec<Packet>
where
    C: IntoIterator<Item = PayloadChunk<'f>>,
{
    let mut seq = seq0;
    let mut packets = Vec::new();
    for (frame, chunks) in frames.into_iter().enumerate() {
        for chunk in chunks {
            packets.push(Packet {
                frame,
                seq,
                ts: 3000 * frame as u32,
                marker: chunk.marker(),
                payload: chunk_bytes(&chunk),
            });
            seq = seq.wrapping_add(1);
        }
    }
    packets
}

/// What a depacketizer made of a stream.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes and keyframe flag of each frame handed out.
    pub frames: Vec<(Vec<u8>, bool)>,
    pub dropped: u32,
    pub keyframe_requests: usize,
}

impl Received {
    /// Feeds the packets to a depacketizer through `push`, which gives
    /// back frames dropped, whether a keyframe is needed, and the frame
    /// completed.
    pub fn from_stream(
        packets: &[Packet],
        mut push: impl FnMut(RtpPayload<'_>) -> (u32, bool, Option<(Vec<u8>, bool)>),
    ) -> Self {
        let mut r = Received::default();
        for p in packets {
            let (dropped, keyframe_needed, frame) = push(p.rtp());
            r.dropped += dropped;
            r.keyframe_requests += usize::from(keyframe_needed);
            r.frames.extend(frame);
        }
        r
    }

    /// The bytes of the frames handed out.
    pub fn data(&self) -> Vec<&[u8]> {
        self.frames.iter().map(|(data, _)| &data[..]).collect()
    }
}

/// Fields written most significant bit first, as VP9 and AV1 headers
/// and the dependency descriptor lay them out.
#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    /// Appends the low `n` bits of `value`.
    pub fn put(&mut self, value: u64, n: u32) -> &mut Self {
        for i in (0..n).rev() {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            let bit = (value >> i & 1) as u8;
            *self.bytes.last_mut().unwrap() |= bit << (7 - self.bits % 8);
            self.bits += 1;
        }
        self
    }

    /// AV1 RTP A.8.2 write_ns(n, v).
    pub fn ns(&mut self, n: u32, v: u32) -> &mut Self {
        let w = 32 - n.leading_zeros();
        let m = (1 << w) - n;
        if v < m {
            self.put(u64::from(v), w - 1)
        } else {
            self.put(u64::from(v + m), w)
        }
    }

    /// The bytes, the last one padded with zero bits.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}
