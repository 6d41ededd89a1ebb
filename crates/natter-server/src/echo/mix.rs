//! The messages client mode sends: a seeded, reproducible mix of text and
//! binary of 1 byte up to a maximum size, the sizes that sit on SCTP's
//! and the browsers' boundaries first, then log-uniform ones, so that
//! small messages are as common as large ones.

use natter_io::Message;

/// xorshift64*: the same mix for the same seed on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // xorshift never leaves 0.
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Sizes around one SCTP DATA chunk (1200), Chromium's 16 KiB send
/// chunks, 64 KiB and the 256 KiB `max-message-size`.
const EDGES: [usize; 14] = [
    1, 2, 1199, 1200, 1201, 16383, 16384, 16385, 65535, 65536, 65537, 262143, 262144, 262144,
];

/// `count` message sizes in `1..=max`: the edges up to `max`, then
/// log-uniform.
pub fn sizes(count: usize, max: usize, rng: &mut Rng) -> Vec<usize> {
    let max = max.max(1);
    let mut out: Vec<usize> = EDGES.iter().copied().filter(|&s| s <= max).take(count).collect();
    while out.len() < count {
        let size = (rng.unit() * (max as f64).ln()).exp().round() as usize;
        out.push(size.clamp(1, max));
    }
    out
}

/// Characters of 1 to 4 UTF-8 bytes.
const CHARS: [char; 8] = ['a', 'b', 'z', '0', ' ', 'é', '€', '😀'];

/// A message of exactly `size` bytes: text (with multi-byte characters)
/// or random binary, as the seed says.
pub fn message(size: usize, rng: &mut Rng) -> Message {
    if rng.below(2) == 0 {
        let mut text = String::with_capacity(size);
        while text.len() + 4 < size {
            text.push(CHARS[rng.below(CHARS.len())]);
        }
        while text.len() < size {
            text.push('x');
        }
        Message::Text(text)
    } else {
        let mut bytes = Vec::with_capacity(size + 8);
        while bytes.len() < size {
            bytes.extend_from_slice(&rng.next().to_le_bytes());
        }
        bytes.truncate(size);
        Message::Binary(bytes)
    }
}

/// `text` or `binary`, and the bytes on the wire.
pub fn parts(message: &Message) -> (bool, &[u8]) {
    match message {
        Message::Text(text) => (true, text.as_bytes()),
        Message::Binary(bytes) => (false, bytes),
    }
}

/// Why `data` is not the echo of `sent`, or `None` when it is.
pub fn mismatch(sent: &Message, is_text: bool, data: &[u8]) -> Option<String> {
    let (sent_text, sent_bytes) = parts(sent);
    let kind = |text: bool| if text { "text" } else { "binary" };
    if sent_text != is_text || sent_bytes.len() != data.len() {
        return Some(format!(
            "sent {} of {} bytes, got {} of {} bytes",
            kind(sent_text),
            sent_bytes.len(),
            kind(is_text),
            data.len()
        ));
    }
    let at = sent_bytes.iter().zip(data).position(|(a, b)| a != b)?;
    Some(format!(
        "{} of {} bytes differs first at byte {at}",
        kind(is_text),
        data.len()
    ))
}
