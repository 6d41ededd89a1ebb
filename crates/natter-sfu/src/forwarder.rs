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
use crate::vp8::{Vp8RewriteError, Vp8Rewriter};

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
}

impl Forwarder {
    pub fn new(config: ForwarderConfig) -> Self {
        Self {
            selector: LayerSelector::new(config.selector),
            rewriter: StreamRewriter::new(config.clock_rate),
            vp8: config.vp8.then(Vp8Rewriter::new),
            pli: false,
        }
    }

    pub fn selector(&self) -> &LayerSelector {
        &self.selector
    }

    /// See [`LayerSelector::update`].
    pub fn update(&mut self, now: Instant, estimate_bps: u64, layers: &[LayerInfo], tile: TileSize) {
        self.selector.update(now, estimate_bps, layers, tile);
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
    ) -> Result<Option<Rewritten>, ForwardError> {
        let incoming = Incoming {
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            retransmission: packet.retransmission,
        };
        let (out, switch) = match self.selector.handle_packet(packet.layer, packet.starts_keyframe) {
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
        if let Some(vp8) = self.vp8.as_mut() {
            vp8.rewrite(packet.payload, switch)?;
        }
        Ok(Some(out))
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
        let config = ForwarderConfig {
            clock_rate: 90_000,
            vp8: false,
            selector: SelectorConfig::default(),
        };
        let mut forwarders: Vec<Forwarder> = (0..5).map(|_| Forwarder::new(config)).collect();
        let mut aggregator = KeyframeAggregator::new(3, DEFAULT_INTERVAL);
        let mut publisher = Publisher {
            next: [(65_500, 1), (1_000, 4_000_000_000), (30_000, 77)],
            keyframe_due: [false; 3],
        };
        let mut now = Instant::now();
        let mut requests_sent = 0;
        let mut last_out: Vec<Option<Rewritten>> = vec![None; forwarders.len()];
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
        let config = ForwarderConfig {
            clock_rate: 90_000,
            vp8: false,
            selector: SelectorConfig::default(),
        };
        let mut forwarder = Forwarder::new(config);
        let now = Instant::now();
        forwarder.update(now, 300_000, &LAYERS, TILE);
        assert_eq!(forwarder.poll_keyframe_request(now), Some(0));
        let packet = PublishedPacket {
            layer: 0,
            sequence: 1,
            timestamp: 1,
            starts_keyframe: true,
            retransmission: false,
            payload: &mut [],
        };
        assert!(forwarder.handle_packet(now, packet).unwrap().is_some());
        forwarder.handle_pli();
        assert_eq!(forwarder.poll_keyframe_request(now), Some(0));
        assert_eq!(forwarder.poll_keyframe_request(now), None);
    }
}
