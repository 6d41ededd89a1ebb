//! One subscriber's view of one video publication: the
//! [`LayerSelector`] decides, the [`StreamRewriter`] (and for VP8 the
//! [`Vp8Rewriter`]) make the forwarded packets one continuous stream.
//! Keyframe requests go out through the publication's
//! [`crate::keyframe::KeyframeAggregator`], which the caller owns because
//! it is shared by every subscriber of the publication.
//!
//! Packets come in as plain values, the fields natter's `ReceivedRtp`
//! gives in RTP mode (its layer as a simulcast index or spatial id,
//! sequence number, timestamp, `inspect()`'s keyframe flag, the payload).

use std::time::Instant;

use crate::layer::{LayerInfo, LayerSelector, PacketAction, SelectorConfig, TileSize};
use crate::rewrite::{Incoming, RewriteError, Rewritten, StreamRewriter};
use crate::sent::Vp8Picture;
use crate::vp8::{Vp8RewriteError, Vp8Rewriter};

/// What a forwarded packet goes out with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarded {
    pub sequence: u16,
    pub timestamp: u32,
    /// It is the first packet of a newly forwarded layer.
    pub switched: bool,
    /// The VP8 descriptor's fields after rewriting (RFC 7741 §4.2).
    pub vp8: Option<Vp8Picture>,
}

/// One packet of the publication, as received.
#[derive(Debug)]
pub struct PublishedPacket<'a> {
    /// Simulcast index (by RID order) or spatial layer id.
    pub layer: u8,
    pub sequence: u16,
    pub timestamp: u32,
    /// From natter-rtp's `PacketInfo::starts_keyframe`.
    pub starts_keyframe: bool,
    /// `ReceivedRtp::retransmission`: it came as RTX (RFC 4588).
    pub retransmission: bool,
    /// Temporal layer (natter-rtp's `Layer::temporal_id`; VP8's TID,
    /// RFC 7741 §4.2), when the payload names one.
    pub temporal_id: Option<u8>,
    /// The RTP payload, rewritten in place for VP8.
    pub payload: &'a mut [u8],
}

/// Why a packet that was to be forwarded could not be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    #[error(transparent)]
    Vp8(#[from] Vp8RewriteError),
}

/// How a forwarder is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// RTP clock rate in Hz (90,000 for video, RFC 3551 §5).
    pub clock_rate: u32,
    /// The payload is VP8 (RFC 7741): its descriptor is rewritten too.
    pub vp8: bool,
    pub selector: SelectorConfig,
}

/// Forwards one publication to one subscriber.
///
/// - Getters: [`Forwarder::selector`].
/// - Input: [`Forwarder::update`] with the subscriber's estimate, the
///   layers and the tile size; [`Forwarder::handle_packet`] per packet
///   of the publication; [`Forwarder::handle_pli`] for the subscriber's
///   PLI (RFC 4585 §6.3.1).
/// - Output: [`Forwarder::poll_keyframe_request`], a layer to ask the
///   publication's aggregator for a keyframe of.
#[derive(Clone, Debug)]
pub struct Forwarder {
    selector: LayerSelector,
    rewriter: StreamRewriter,
    vp8: Option<Vp8Rewriter>,
    pli: bool,
    temporal: TemporalLimit,
}

/// The highest temporal layer forwarded, and the one asked for.
#[derive(Clone, Copy, Debug, Default)]
struct TemporalLimit {
    /// `None`: every temporal layer.
    applied: Option<u8>,
    wanted: Option<u8>,
    /// The timestamp of the last base-layer packet seen: a new one
    /// starts a base-layer frame.
    base_timestamp: Option<u32>,
    /// The timestamp of the last packet seen: a new one starts a frame.
    frame_timestamp: Option<u32>,
}

impl TemporalLimit {
    /// Whether a packet of `temporal_id` (and `timestamp`) is forwarded.
    /// Fewer layers apply from the next frame (never cutting one in
    /// two); more only from the start of a base-layer frame, which every higher layer may reference
    /// (RFC 7741 §4.2: TL0PICIDX counts these frames).
    fn admits(&mut self, temporal_id: Option<u8>, timestamp: u32) -> bool {
        let Some(temporal_id) = temporal_id else {
            return true;
        };
        let new_frame = self.frame_timestamp != Some(timestamp);
        self.frame_timestamp = Some(timestamp);
        let fewer = new_frame
            && match (self.wanted, self.applied) {
                (Some(wanted), Some(applied)) => wanted < applied,
                (Some(_), None) => true,
                (None, _) => false,
            };
        let base_frame = temporal_id == 0 && self.base_timestamp != Some(timestamp);
        if temporal_id == 0 {
            self.base_timestamp = Some(timestamp);
        }
        if fewer || base_frame {
            self.applied = self.wanted;
        }
        self.applied.is_none_or(|limit| temporal_id <= limit)
    }
}

impl Forwarder {
    pub fn new(config: ForwarderConfig) -> Self {
        Self {
            selector: LayerSelector::new(config.selector),
            rewriter: StreamRewriter::new(config.clock_rate),
            vp8: config.vp8.then(Vp8Rewriter::new),
            pli: false,
            temporal: TemporalLimit::default(),
        }
    }

    /// The highest temporal layer to forward (`None`: all): a lower
    /// frame rate for a subscriber whose estimate cannot carry the full
    /// one. Skipped packets are closed up in the outgoing sequence
    /// ([`StreamRewriter::skip`]); VP8 PictureIDs keep their gaps, which
    /// receivers read with TL0PICIDX and TID (RFC 7741 §4.2).
    pub fn set_max_temporal_layer(&mut self, max: Option<u8>) {
        self.temporal.wanted = max;
    }

    pub fn selector(&self) -> &LayerSelector {
        &self.selector
    }

    /// See [`LayerSelector::update`].
    pub fn update(&mut self, now: Instant, estimate_bps: u64, layers: &[LayerInfo], tile: TileSize) {
        self.selector.update(now, estimate_bps, layers, tile);
    }

    /// See [`StreamRewriter::continue_after`].
    pub fn continue_after(&mut self, last: Rewritten, at: Instant) {
        self.rewriter.continue_after(last, at);
    }

    /// The subscriber lost its decoder state: it needs a keyframe of
    /// the layer it is sent.
    pub fn handle_pli(&mut self) {
        self.pli = true;
    }

    /// What `packet` goes out with, or `None` when it is not forwarded.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        packet: PublishedPacket<'_>,
    ) -> Result<Option<Forwarded>, ForwardError> {
        let incoming = Incoming {
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            retransmission: packet.retransmission,
        };
        let action = self.selector.handle_packet(packet.layer, packet.starts_keyframe);
        if action == PacketAction::Forward && !self.temporal.admits(packet.temporal_id, packet.timestamp) {
            self.rewriter.skip(incoming);
            return Ok(None);
        }
        let (out, switch) = match action {
            PacketAction::Drop => return Ok(None),
            PacketAction::Switch => (self.rewriter.switch(incoming, now), true),
            PacketAction::Forward => match self.rewriter.rewrite(incoming, now) {
                Ok(out) => (out, false),
                Err(error) => {
                    // A restarted stream goes on at a non-keyframe: the
                    // subscriber's decoder will need one.
                    if matches!(error, RewriteError::SequenceJump { .. }) {
                        self.pli = true;
                    }
                    return Err(error.into());
                }
            },
        };
        if packet.starts_keyframe {
            self.pli = false;
        }
        let vp8 = match self.vp8.as_mut() {
            Some(vp8) => Some(vp8.rewrite(packet.payload, switch)?),
            None => None,
        };
        Ok(Some(Forwarded {
            sequence: out.sequence,
            timestamp: out.timestamp,
            switched: switch,
            vp8,
        }))
    }

    /// The layer to request a keyframe of: the target while a switch
    /// waits for one, else the forwarded layer after a PLI.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> Option<u8> {
        if let Some(layer) = self.selector.poll_keyframe_request(now) {
            return Some(layer);
        }
        if self.pli {
            self.pli = false;
            return self.selector.current();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyframe::{KeyframeAggregator, DEFAULT_INTERVAL};
    use std::time::Duration;

    use crate::layer::tests::{BIG as TILE, LAYERS};

    const CONFIG: ForwarderConfig = ForwarderConfig {
        clock_rate: 90_000,
        vp8: false,
        selector: SelectorConfig {
            up_margin_per_mille: 200,
            up_hold: Duration::from_secs(2),
            request_retry: Duration::from_secs(1),
        },
    };

    /// A publisher of three layers, each at its own sequence and
    /// timestamp base, a keyframe on every layer when asked for.
    struct Publisher {
        next: [(u16, u32); 3],
        keyframe_due: [bool; 3],
    }

    impl Publisher {
        /// One packet per layer per frame (33 ms): 3,000 ticks.
        fn frame(&mut self) -> [(u8, u16, u32, bool); 3] {
            std::array::from_fn(|layer| {
                let (sequence, timestamp) = self.next[layer];
                self.next[layer] = (sequence.wrapping_add(1), timestamp.wrapping_add(3_000));
                let keyframe = std::mem::take(&mut self.keyframe_due[layer]);
                (layer as u8, sequence, timestamp, keyframe)
            })
        }
    }

    #[test]
    fn subscribers_switch_seamlessly_with_aggregated_keyframe_requests() {
        let mut forwarders: Vec<Forwarder> = (0..5).map(|_| Forwarder::new(CONFIG)).collect();
        let mut aggregator = KeyframeAggregator::new(3, DEFAULT_INTERVAL);
        let mut publisher = Publisher {
            next: [(65_500, 1), (1_000, 4_000_000_000), (30_000, 77)],
            keyframe_due: [false; 3],
        };
        let mut now = Instant::now();
        let mut requests_sent = 0;
        let mut last_out: Vec<Option<Forwarded>> = vec![None; forwarders.len()];
        for frame in 0..600 {
            // Estimates change: everyone high, then subscriber 0 low.
            let estimate = |subscriber: usize| match (subscriber, frame) {
                (0, 200..) => 300_000,
                _ => 5_000_000,
            };
            for (subscriber, forwarder) in forwarders.iter_mut().enumerate() {
                forwarder.update(now, estimate(subscriber), &LAYERS, TILE);
                while let Some(layer) = forwarder.poll_keyframe_request(now) {
                    aggregator.request(layer).unwrap();
                }
            }
            while let Some(layer) = aggregator.poll_request(now) {
                requests_sent += 1;
                publisher.keyframe_due[usize::from(layer)] = true;
            }
            for (layer, sequence, timestamp, keyframe) in publisher.frame() {
                if keyframe {
                    aggregator.handle_keyframe(layer);
                }
                for (subscriber, forwarder) in forwarders.iter_mut().enumerate() {
                    let packet = PublishedPacket {
                        layer,
                        sequence,
                        timestamp,
                        starts_keyframe: keyframe,
                        retransmission: false,
                        temporal_id: None,
                        payload: &mut [],
                    };
                    if let Some(out) = forwarder.handle_packet(now, packet).unwrap() {
                        if let Some(previous) = last_out[subscriber] {
                            assert_eq!(out.sequence, previous.sequence.wrapping_add(1));
                            let advance = out.timestamp.wrapping_sub(previous.timestamp);
                            assert!((1..=6_000).contains(&advance), "advance {advance}");
                        }
                        last_out[subscriber] = Some(out);
                    }
                }
            }
            now += Duration::from_millis(33);
        }
        assert_eq!(forwarders[0].selector().current(), Some(0));
        for forwarder in &forwarders[1..] {
            assert_eq!(forwarder.selector().current(), Some(2));
        }
        // Five subscribers asking for layer 2 at once, then one for layer 0.
        assert_eq!(requests_sent, 2);
    }

    #[test]
    fn a_pli_asks_for_the_forwarded_layer() {
        let mut forwarder = Forwarder::new(CONFIG);
        let now = Instant::now();
        forwarder.update(now, 300_000, &LAYERS, TILE);
        assert_eq!(forwarder.poll_keyframe_request(now), Some(0));
        let packet = PublishedPacket {
            layer: 0,
            sequence: 1,
            timestamp: 1,
            starts_keyframe: true,
            retransmission: false,
            temporal_id: None,
            payload: &mut [],
        };
        assert!(forwarder.handle_packet(now, packet).unwrap().is_some());
        forwarder.handle_pli();
        assert_eq!(forwarder.poll_keyframe_request(now), Some(0));
        assert_eq!(forwarder.poll_keyframe_request(now), None);
    }

    #[test]
    fn higher_temporal_layers_are_skipped_and_closed_up() {
        let mut forwarder = Forwarder::new(CONFIG);
        let now = Instant::now();
        forwarder.update(now, 300_000, &LAYERS, TILE);
        // L1T3: TIDs 0 2 1 2 0 2 1 2 ..., one packet per frame.
        let pattern = [0, 2, 1, 2];
        let send = |forwarder: &mut Forwarder, frame: u16| {
            let packet = PublishedPacket {
                layer: 0,
                sequence: frame,
                timestamp: u32::from(frame) * 3_000,
                starts_keyframe: frame == 0,
                retransmission: false,
                temporal_id: Some(pattern[usize::from(frame) % 4]),
                payload: &mut [],
            };
            forwarder.handle_packet(now, packet).unwrap().map(|out| out.sequence)
        };
        let all: Vec<_> = (0..4).map(|frame| send(&mut forwarder, frame)).collect();
        assert_eq!(all, [Some(0), Some(1), Some(2), Some(3)]);
        // Down to TL0 at once.
        forwarder.set_max_temporal_layer(Some(0));
        let base: Vec<_> = (4..8).map(|frame| send(&mut forwarder, frame)).collect();
        assert_eq!(base, [Some(4), None, None, None]);
        // Up to TL1 only from the next base-layer frame.
        forwarder.set_max_temporal_layer(Some(1));
        let more: Vec<_> = (8..12).map(|frame| send(&mut forwarder, frame)).collect();
        assert_eq!(more, [Some(5), None, Some(6), None]);
    }
}
