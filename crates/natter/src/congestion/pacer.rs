//! The pacer: a leaky bucket that lets packets out at [`PACING_FACTOR`]
//! times the target bitrate instead of a frame at a time, so that a
//! frame does not overflow a short queue at the bottleneck and the
//! delay-based estimator sees the path rather than the encoder's bursts
//! (draft-ietf-rmcat-gcc-02 §4 assumes a paced sender; libwebrtc's
//! PacingController).
//!
//! The pacer holds no packet: the caller pushes a [`QueuedPacket`] with
//! a handle of its own (an index into its buffers) and gets the handle
//! back from [`Pacer::poll_send`] when the packet may go. Audio goes
//! first, then retransmissions, then other media; padding is asked for
//! only while a probe cluster lacks media to fill it. The budget is
//! carried at most [`BURST_INTERVAL`] ahead, so after a pause at most
//! about 5 ms of sending leaves at once.
//!
//! Methods: [`push`](Pacer::push) to queue, [`poll_send`](Pacer::poll_send)
//! until `None`, then [`poll_timeout`](Pacer::poll_timeout) for when to
//! call it again. Time is an argument and must not go backwards.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::history::{PacketKind, SentPacket};
use super::probe::ProbeCluster;

/// libwebrtc paces at 2.5 times the target.
pub const PACING_FACTOR: f64 = 2.5;
/// How much budget unused time leaves for a burst (libwebrtc: 5 ms).
pub const BURST_INTERVAL: Duration = Duration::from_millis(5);
/// A queue longer than this at the pacing rate is sent faster, so that
/// media never waits longer (libwebrtc: 2 s).
const MAX_QUEUE_TIME: Duration = Duration::from_secs(2);
/// Debt below a byte is rounding: the next packet may go.
const DEBT_TOLERANCE: f64 = 1.0;
/// Packets a queue makes room for at its first packet: a forwarder's
/// usual backlog (a keyframe of a few dozen packets at a low target),
/// so that it does not grow packet by packet on the hot path.
const QUEUE_RESERVE: usize = 64;
/// The largest padding packet asked for, bytes.
const MAX_PADDING: usize = 1200;
/// The smallest padding packet asked for, bytes.
const MIN_PADDING: usize = 50;

/// A packet waiting to be sent: the caller's handle to it, its size on
/// the wire and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedPacket<H> {
    pub handle: H,
    pub size: usize,
    pub kind: PacketKind,
}

/// What to send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacedPacket<H> {
    /// A queued packet, in `probe_cluster` if it is part of a probe.
    Media {
        handle: H,
        size: usize,
        kind: PacketKind,
        probe_cluster: Option<u32>,
    },
    /// A padding packet of `size` bytes for a probe that lacks media
    /// (RTP padding, or an RTX copy of a sent packet).
    Padding { size: usize, probe_cluster: u32 },
}

impl<H> PacedPacket<H> {
    /// What to report to the controller once this packet has left with
    /// `transport_seq`.
    pub fn sent(&self, transport_seq: u16) -> SentPacket {
        let (size, kind, probe_cluster) = match *self {
            PacedPacket::Media {
                size,
                kind,
                probe_cluster,
                ..
            } => (size, kind, probe_cluster),
            PacedPacket::Padding { size, probe_cluster } => (size, PacketKind::Padding, Some(probe_cluster)),
        };
        SentPacket {
            transport_seq,
            size,
            kind,
            probe_cluster,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct ActiveProbe {
    cluster: ProbeCluster,
    bytes: usize,
    packets: usize,
}

/// The pacer's queues and budget.
#[derive(Debug)]
pub struct Pacer<H> {
    /// Audio, retransmissions, other media: the order they go in.
    queues: [VecDeque<QueuedPacket<H>>; 3],
    queued_bytes: usize,
    pacing_bps: f64,
    /// Bytes sent ahead of the rate; negative is budget in hand.
    debt: f64,
    last: Instant,
    probe: Option<ActiveProbe>,
    probes: VecDeque<ProbeCluster>,
    /// Padding asked for by the last [`PacedPacket::Padding`] and
    /// charged to the budget, less what was reported sent of it.
    padding_charged: usize,
}

impl<H: Copy> Pacer<H> {
    /// A pacer for `target_bps`, starting at `now`.
    pub fn new(now: Instant, target_bps: u64) -> Pacer<H> {
        Pacer {
            queues: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            queued_bytes: 0,
            pacing_bps: target_bps as f64 * PACING_FACTOR,
            debt: 0.0,
            last: now,
            probe: None,
            probes: VecDeque::with_capacity(4),
            padding_charged: 0,
        }
    }

    /// Paces at [`PACING_FACTOR`] times `target_bps` from `now` on.
    pub fn set_target(&mut self, now: Instant, target_bps: u64) {
        self.advance(now);
        self.pacing_bps = target_bps as f64 * PACING_FACTOR;
    }

    /// Queues a probe cluster, sent after any before it.
    pub fn add_probe(&mut self, cluster: ProbeCluster) {
        self.probes.push_back(cluster);
    }

    /// Queues a packet. Padding is not queued: the pacer asks for it.
    pub fn push(&mut self, now: Instant, packet: QueuedPacket<H>) {
        self.advance(now);
        let queue = match packet.kind {
            PacketKind::Audio => 0,
            PacketKind::Retransmission => 1,
            PacketKind::Video => 2,
            PacketKind::Padding => return,
        };
        self.queued_bytes += packet.size;
        let queue = &mut self.queues[queue];
        if queue.capacity() == 0 {
            // At first media, not at construction: an idle connection
            // keeps no queue.
            queue.reserve(QUEUE_RESERVE);
        }
        queue.push_back(packet);
    }

    /// Packets and bytes waiting.
    pub fn queued(&self) -> (usize, usize) {
        (self.queues.iter().map(VecDeque::len).sum(), self.queued_bytes)
    }

    /// The next packet to send at `now`, if the budget allows one.
    pub fn poll_send(&mut self, now: Instant) -> Option<PacedPacket<H>> {
        self.advance(now);
        if self.debt >= DEBT_TOLERANCE {
            return None;
        }
        if self.probe.is_none() {
            self.probe = self.probes.pop_front().map(|cluster| ActiveProbe {
                cluster,
                bytes: 0,
                packets: 0,
            });
        }
        let cluster = self.probe.map(|p| p.cluster.id);
        let sent = match self.queues.iter_mut().find_map(VecDeque::pop_front) {
            Some(packet) => {
                self.queued_bytes -= packet.size;
                PacedPacket::Media {
                    handle: packet.handle,
                    size: packet.size,
                    kind: packet.kind,
                    probe_cluster: cluster,
                }
            }
            None => {
                let probe = self.probe?;
                let missing = probe.cluster.min_bytes.saturating_sub(probe.bytes);
                PacedPacket::Padding {
                    size: missing.clamp(MIN_PADDING, MAX_PADDING),
                    probe_cluster: probe.cluster.id,
                }
            }
        };
        let size = sent.sent(0).size;
        self.padding_charged = if matches!(sent, PacedPacket::Padding { .. }) {
            size
        } else {
            0
        };
        self.debt += size as f64;
        if let Some(probe) = &mut self.probe {
            probe.bytes += size;
            probe.packets += 1;
            if probe.bytes >= probe.cluster.min_bytes && probe.packets >= probe.cluster.min_packets {
                self.probe = None;
            }
        }
        Some(sent)
    }

    /// A padding packet of `size` bytes left. The caller may send more
    /// than [`PacedPacket::Padding`] asked for (natter's peer pads with
    /// RTX copies of whole video packets, as libwebrtc does, where the
    /// pacer asks for 50 bytes to complete a cluster's packet count):
    /// what exceeds the request is charged to the budget and to the
    /// probe, so that a cluster leaves at its rate, not in a burst the
    /// bottleneck queues.
    pub fn on_padding_sent(&mut self, size: usize) {
        let covered = size.min(self.padding_charged);
        self.padding_charged -= covered;
        let excess = size - covered;
        self.debt += excess as f64;
        if let Some(probe) = &mut self.probe {
            probe.bytes += excess;
        }
    }

    /// When [`poll_send`](Self::poll_send) may next give a packet; `None`
    /// while there is nothing to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.queued_bytes == 0 && self.probe.is_none() && self.probes.is_empty() {
            return None;
        }
        if self.debt < DEBT_TOLERANCE {
            return Some(self.last);
        }
        let micros = (self.debt * 8.0 / self.rate_bps() * 1e6).ceil();
        Some(self.last + Duration::from_micros(micros as u64))
    }

    /// The rate the budget fills at: the pacing rate, a probe's rate
    /// while one is sent, and faster if the queue would wait too long.
    fn rate_bps(&self) -> f64 {
        let drain = self.queued_bytes as f64 * 8.0 / MAX_QUEUE_TIME.as_secs_f64();
        let probing = self
            .probe
            .or(self.probes.front().map(|&cluster| ActiveProbe {
                cluster,
                bytes: 0,
                packets: 0,
            }))
            .map_or(0.0, |p| p.cluster.bitrate_bps as f64);
        self.pacing_bps.max(drain).max(probing).max(1.0)
    }

    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let rate = self.rate_bps() / 8.0;
        self.debt = (self.debt - rate * elapsed.as_secs_f64()).max(-rate * BURST_INTERVAL.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(handle: usize, kind: PacketKind) -> QueuedPacket<usize> {
        QueuedPacket {
            handle,
            size: 1000,
            kind,
        }
    }

    fn handle(p: Option<PacedPacket<usize>>) -> Option<usize> {
        match p? {
            PacedPacket::Media { handle, .. } => Some(handle),
            PacedPacket::Padding { .. } => None,
        }
    }

    #[test]
    fn audio_then_retransmissions_then_video_at_the_pacing_rate() {
        let t0 = Instant::now();
        // 320 kbit/s paced at 800 kbit/s: 1000 bytes every 10 ms.
        let mut p = Pacer::new(t0, 320_000);
        p.push(t0, packet(1, PacketKind::Video));
        p.push(t0, packet(2, PacketKind::Retransmission));
        p.push(t0, packet(3, PacketKind::Audio));
        assert_eq!(handle(p.poll_send(t0)), Some(3));
        assert_eq!(p.poll_send(t0), None);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(handle(p.poll_send(t0 + Duration::from_millis(10))), Some(2));
        assert_eq!(handle(p.poll_send(t0 + Duration::from_millis(20))), Some(1));
        assert_eq!(p.poll_send(t0 + Duration::from_millis(30)), None);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn pads_only_to_fill_a_probe() {
        let t0 = Instant::now();
        let mut p: Pacer<usize> = Pacer::new(t0, 320_000);
        p.add_probe(ProbeCluster {
            id: 4,
            bitrate_bps: 1_000_000,
            min_packets: 2,
            min_bytes: 1500,
            confirming: false,
        });
        let mut now = t0;
        let mut padding = 0;
        while let Some(at) = p.poll_timeout() {
            now = now.max(at);
            match p.poll_send(now) {
                Some(PacedPacket::Padding { size, probe_cluster }) => {
                    assert_eq!(probe_cluster, 4);
                    padding += size;
                }
                Some(PacedPacket::Media { .. }) => unreachable!("nothing was queued"),
                None => {}
            }
        }
        assert_eq!(padding, 1500);
    }

    /// A caller that pads with whole packets where the pacer asked for
    /// less (RTX copies, 50 bytes asked to complete the packet count)
    /// still sends the cluster at its rate: 1200 bytes at 1 Mbit/s
    /// every 9.6 ms, not the last three within a millisecond.
    #[test]
    fn padding_larger_than_asked_is_charged() {
        let t0 = Instant::now();
        let mut p: Pacer<usize> = Pacer::new(t0, 100_000);
        p.add_probe(ProbeCluster {
            id: 4,
            bitrate_bps: 1_000_000,
            min_packets: 5,
            min_bytes: 1500,
            confirming: false,
        });
        let mut now = t0;
        let mut sent = Vec::new();
        while let Some(at) = p.poll_timeout() {
            now = now.max(at);
            if let Some(PacedPacket::Padding { .. }) = p.poll_send(now) {
                p.on_padding_sent(1200);
                sent.push(now - t0);
            }
        }
        let ms = |m: u64| Duration::from_micros(m * 9_600);
        assert_eq!(sent, [ms(0), ms(1), ms(2), ms(3), ms(4)]);
    }
}
