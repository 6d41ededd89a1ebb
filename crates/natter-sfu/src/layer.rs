//! Which simulcast layer one subscription forwards, and when it
//! switches (LiveKit's `Forwarder`, mediasoup's `SimulcastConsumer`).
//!
//! The target is a pure function of the subscriber's bandwidth estimate,
//! the layers' measured bitrates and the size the subscriber renders the
//! tile at, with hysteresis: the target goes down at once when the
//! estimate no longer covers it, and up only when the estimate has
//! exceeded the higher layer's rate by a margin for a hold time. The
//! forwarded layer follows the target only at a keyframe of the target
//! (simulcast layers are independent streams, so a decoder can start
//! only there); until one arrives the selector asks for one, and keeps
//! forwarding the old layer.
//!
//! Temporal layers (dropping TID > n within a spatial layer) are not
//! selected yet: every packet of the chosen spatial layer is forwarded.

use std::time::{Duration, Instant};

/// What the selector knows about one publication layer, lowest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerInfo {
    /// Bitrate, bits per second, as the publication offers it (measured,
    /// or for a layer not measured over a full window yet, no less than
    /// its size costs); 0 when the layer is not being received (not yet
    /// seen, or stopped), so it cannot be chosen.
    pub bitrate_bps: u64,
    /// Encoded frame size in pixels.
    pub width: u16,
    pub height: u16,
}

/// The size the subscriber renders the tile at, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileSize {
    pub width: u16,
    pub height: u16,
}

/// Hysteresis settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectorConfig {
    /// An up-switch needs the estimate above the higher layer's rate
    /// times (1000 + this) / 1000.
    pub up_margin_per_mille: u32,
    /// ... continuously for this long.
    pub up_hold: Duration,
    /// A keyframe request for the target is repeated after this long
    /// without one arriving (the request or the keyframe may be lost).
    pub request_retry: Duration,
}

impl Default for SelectorConfig {
    fn default() -> Self {
        Self {
            up_margin_per_mille: 200,
            up_hold: Duration::from_secs(2),
            request_retry: Duration::from_secs(1),
        }
    }
}

/// What to do with one packet of the publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketAction {
    /// Forward it: it belongs to the layer being forwarded.
    Forward,
    /// It is the keyframe that starts the target layer: the forwarded
    /// layer is now this one; restart the rewriter with it, then forward.
    Switch,
    /// Not forwarded (another layer, or nothing forwarded yet).
    Drop,
}

/// The layer selector of one subscription.
///
/// - Getters: [`LayerSelector::target`], [`LayerSelector::current`].
/// - Input: [`LayerSelector::update`] whenever the estimate, the layers'
///   rates or the tile size change (or periodically: up-switches need
///   time to pass), and [`LayerSelector::handle_packet`] per packet.
/// - Output: [`LayerSelector::poll_keyframe_request`], the layer a
///   keyframe should be asked for (through a
///   [`crate::keyframe::KeyframeAggregator`]).
#[derive(Clone, Debug)]
pub struct LayerSelector {
    config: SelectorConfig,
    target: Option<u8>,
    current: Option<u8>,
    /// Since when the estimate has allowed a higher layer, and which.
    up_since: Option<(u8, Instant)>,
    /// When the target's keyframe was last asked for; `None` while none
    /// needs asking.
    requested_at: Option<Instant>,
    request_due: bool,
    /// What the layer the tile needs costs, with the up-switch margin.
    wanted_bps: u64,
}

impl LayerSelector {
    pub fn new(config: SelectorConfig) -> Self {
        Self {
            config,
            target: None,
            current: None,
            up_since: None,
            requested_at: None,
            request_due: false,
            wanted_bps: 0,
        }
    }

    /// The layer the selector wants to forward.
    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// The layer being forwarded.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// What the subscriber would be sent if the estimate were no limit:
    /// the rate of the layer its tile needs, with the up-switch margin
    /// (bits per second, as of the last [`LayerSelector::update`]). A
    /// connection told this much probes for it (natter's
    /// `set_application_demand`) while its estimate is lower.
    pub fn wanted_bps(&self) -> u64 {
        self.wanted_bps
    }

    /// Re-chooses the target from the estimate (bits per second), the
    /// layers (lowest first) and the tile size.
    pub fn update(&mut self, now: Instant, estimate_bps: u64, layers: &[LayerInfo], tile: TileSize) {
        let needed = tile_cap(layers, tile).and_then(|cap| layers.get(usize::from(cap)));
        self.wanted_bps = needed.map_or(0, |layer| {
            layer
                .bitrate_bps
                .saturating_mul(1000 + u64::from(self.config.up_margin_per_mille))
                / 1000
        });
        let best = choose(estimate_bps, layers, tile, 1000);
        let with_margin = choose(
            estimate_bps,
            layers,
            tile,
            1000 + u64::from(self.config.up_margin_per_mille),
        );
        let new_target = match (self.target, best) {
            (_, None) => None,
            (None, Some(_)) => best,
            // Down (or the current target no longer usable): at once.
            (Some(target), Some(best)) if best < target => Some(best),
            (Some(target), Some(best)) if !is_usable(layers, target) => Some(best),
            (Some(target), Some(_)) => match with_margin {
                Some(up) if up > target => {
                    let since = match self.up_since {
                        Some((layer, since)) if layer == up => since,
                        _ => now,
                    };
                    self.up_since = Some((up, since));
                    if now.saturating_duration_since(since) >= self.config.up_hold {
                        Some(up)
                    } else {
                        Some(target)
                    }
                }
                _ => {
                    self.up_since = None;
                    Some(target)
                }
            },
        };
        if new_target != self.target {
            self.target = new_target;
            self.up_since = None;
            self.requested_at = None;
            self.request_due = new_target.is_some() && new_target != self.current;
        } else if self.target.is_some() && self.target != self.current {
            if let Some(at) = self.requested_at {
                if now.saturating_duration_since(at) >= self.config.request_retry {
                    self.request_due = true;
                }
            }
        }
        if self.request_due {
            self.requested_at.get_or_insert(now);
        }
    }

    /// Decides for one packet of `layer` (spatial layer or simulcast
    /// index) whether it is forwarded; `starts_keyframe` comes from
    /// natter-rtp's `PacketInfo`.
    pub fn handle_packet(&mut self, layer: u8, starts_keyframe: bool) -> PacketAction {
        if starts_keyframe && self.target == Some(layer) && self.current != Some(layer) {
            self.current = Some(layer);
            self.requested_at = None;
            self.request_due = false;
            return PacketAction::Switch;
        }
        if self.current == Some(layer) {
            PacketAction::Forward
        } else {
            PacketAction::Drop
        }
    }

    /// The layer a keyframe should be requested for, once per request.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> Option<u8> {
        if !self.request_due {
            return None;
        }
        self.request_due = false;
        self.requested_at = Some(now);
        self.target
    }
}

/// The usable layers (received: a rate above 0), lowest first.
fn usable(layers: &[LayerInfo]) -> impl DoubleEndedIterator<Item = (u8, &LayerInfo)> {
    // Layer tables are short (a publication's MAX_LAYERS).
    let indexed = layers.iter().enumerate().map(|(index, layer)| (index as u8, layer));
    indexed.filter(|(_, layer)| layer.bitrate_bps > 0)
}

/// The highest layer worth sending for `tile`: the smallest usable one
/// covering it, or the largest usable.
pub fn tile_cap(layers: &[LayerInfo], tile: TileSize) -> Option<u8> {
    let covering = usable(layers).find(|(_, layer)| layer.width >= tile.width && layer.height >= tile.height);
    Some(covering.or_else(|| usable(layers).next_back())?.0)
}

fn is_usable(layers: &[LayerInfo], index: u8) -> bool {
    layers
        .get(usize::from(index))
        .is_some_and(|layer| layer.bitrate_bps > 0)
}

/// The highest usable layer whose rate times `scale_per_mille` / 1000 the
/// estimate covers, no larger than needed for the tile (the smallest layer
/// covering it, or the largest). The lowest usable layer when none fits
/// the estimate: a subscriber always gets something.
fn choose(estimate_bps: u64, layers: &[LayerInfo], tile: TileSize, scale_per_mille: u64) -> Option<u8> {
    let usable = || usable(layers);
    let cap = tile_cap(layers, tile)?;
    let lowest = usable().next()?.0;
    let affordable = usable()
        .rfind(|(index, layer)| {
            *index <= cap
                && u128::from(layer.bitrate_bps) * u128::from(scale_per_mille) <= u128::from(estimate_bps) * 1000
        })
        .map(|(index, _)| index);
    Some(affordable.unwrap_or(lowest))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Three simulcast layers as Chromium sends them; shared by the
    /// forwarder's tests.
    pub(crate) const LAYERS: [LayerInfo; 3] = [
        LayerInfo {
            bitrate_bps: 150_000,
            width: 320,
            height: 180,
        },
        LayerInfo {
            bitrate_bps: 500_000,
            width: 640,
            height: 360,
        },
        LayerInfo {
            bitrate_bps: 1_500_000,
            width: 1280,
            height: 720,
        },
    ];
    pub(crate) const BIG: TileSize = TileSize {
        width: 1280,
        height: 720,
    };

    #[test]
    fn choice_table() {
        let small = TileSize {
            width: 300,
            height: 170,
        };
        let medium = TileSize {
            width: 600,
            height: 300,
        };
        for (estimate, tile, expected) in [
            (10_000_000, BIG, Some(2)),
            (1_000_000, BIG, Some(1)),
            (300_000, BIG, Some(0)),
            (10_000, BIG, Some(0)),
            (10_000_000, small, Some(0)),
            (10_000_000, medium, Some(1)),
            (
                10_000_000,
                TileSize {
                    width: 4000,
                    height: 3000,
                },
                Some(2),
            ),
        ] {
            assert_eq!(choose(estimate, &LAYERS, tile, 1000), expected, "{estimate} {tile:?}");
        }
        let mut paused = LAYERS;
        paused[2].bitrate_bps = 0;
        assert_eq!(choose(10_000_000, &paused, BIG, 1000), Some(1));
        assert_eq!(choose(10_000_000, &[], BIG, 1000), None);
    }

    #[test]
    fn switches_only_at_a_keyframe_of_the_target() {
        let mut selector = LayerSelector::new(SelectorConfig::default());
        let now = Instant::now();
        selector.update(now, 10_000_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(2));
        assert_eq!(selector.poll_keyframe_request(now), Some(2));
        assert_eq!(selector.poll_keyframe_request(now), None);
        assert_eq!(selector.handle_packet(2, false), PacketAction::Drop);
        assert_eq!(selector.handle_packet(0, true), PacketAction::Drop);
        assert_eq!(selector.handle_packet(2, true), PacketAction::Switch);
        assert_eq!(selector.handle_packet(2, false), PacketAction::Forward);
        assert_eq!(selector.current(), Some(2));
    }

    #[test]
    fn down_at_once_up_after_the_hold() {
        let config = SelectorConfig::default();
        let mut selector = LayerSelector::new(config);
        let start = Instant::now();
        selector.update(start, 10_000_000, &LAYERS, BIG);
        selector.handle_packet(2, true);
        selector.poll_keyframe_request(start);
        // The estimate drops: target down at once, old layer still sent.
        selector.update(start, 600_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(1));
        assert_eq!(selector.poll_keyframe_request(start), Some(1));
        assert_eq!(selector.handle_packet(2, false), PacketAction::Forward);
        assert_eq!(selector.handle_packet(1, true), PacketAction::Switch);
        assert_eq!(selector.handle_packet(2, false), PacketAction::Drop);
        // Enough for layer 2 but not with the margin: stays.
        let mut now = start + Duration::from_secs(10);
        selector.update(now, 1_600_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(1));
        // With the margin, only after the hold.
        selector.update(now, 2_000_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(1));
        now += config.up_hold / 2;
        selector.update(now, 2_000_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(1));
        // A dip below the margin restarts the hold.
        selector.update(now, 1_600_000, &LAYERS, BIG);
        now += config.up_hold / 2;
        selector.update(now, 2_000_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(1));
        now += config.up_hold;
        selector.update(now, 2_000_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(2));
        assert_eq!(selector.poll_keyframe_request(now), Some(2));
    }

    #[test]
    fn wanted_is_the_tile_layer_whatever_the_estimate() {
        let mut selector = LayerSelector::new(SelectorConfig::default());
        let now = Instant::now();
        // Short of the estimate for f: it still wants f, with the margin.
        selector.update(now, 300_000, &LAYERS, BIG);
        assert_eq!(selector.target(), Some(0));
        assert_eq!(selector.wanted_bps(), 1_800_000);
        // A thumbnail wants q only.
        let small = TileSize { width: 160, height: 90 };
        selector.update(now, 10_000_000, &LAYERS, small);
        assert_eq!(selector.wanted_bps(), 180_000);
        // Nothing received: nothing wanted.
        selector.update(now, 10_000_000, &[], BIG);
        assert_eq!(selector.wanted_bps(), 0);
    }

    #[test]
    fn an_unanswered_request_is_repeated() {
        let config = SelectorConfig::default();
        let mut selector = LayerSelector::new(config);
        let start = Instant::now();
        selector.update(start, 300_000, &LAYERS, BIG);
        assert_eq!(selector.poll_keyframe_request(start), Some(0));
        selector.update(start + config.request_retry / 2, 300_000, &LAYERS, BIG);
        assert_eq!(selector.poll_keyframe_request(start), None);
        let later = start + config.request_retry;
        selector.update(later, 300_000, &LAYERS, BIG);
        assert_eq!(selector.poll_keyframe_request(later), Some(0));
    }

    proptest::proptest! {
        /// Whatever the estimates, tiles and packets: the forwarded layer
        /// changes only at a keyframe of the new layer, only packets of
        /// the forwarded layer are forwarded, and the target never
        /// exceeds what the tile needs.
        #[test]
        fn switches_happen_only_at_keyframes(
            steps in proptest::collection::vec(
                (0u64..3_000_000, 0u16..1400, 0u8..3, proptest::bool::weighted(0.1), 0u64..300),
                1..300,
            )
        ) {
            let mut selector = LayerSelector::new(SelectorConfig::default());
            let mut now = Instant::now();
            for (estimate, width, layer, keyframe, after_ms) in steps {
                now += Duration::from_millis(after_ms);
                let tile = TileSize { width, height: width * 9 / 16 };
                selector.update(now, estimate, &LAYERS, tile);
                let cap = choose(u64::MAX, &LAYERS, tile, 1000);
                proptest::prop_assert!(selector.target() <= cap);
                let before = selector.current();
                let action = selector.handle_packet(layer, keyframe);
                let after = selector.current();
                match action {
                    PacketAction::Switch => {
                        proptest::prop_assert!(keyframe);
                        proptest::prop_assert_eq!(after, Some(layer));
                        proptest::prop_assert_ne!(before, after);
                    }
                    PacketAction::Forward => {
                        proptest::prop_assert_eq!(before, Some(layer));
                        proptest::prop_assert_eq!(before, after);
                    }
                    PacketAction::Drop => proptest::prop_assert_eq!(before, after),
                }
            }
        }
    }
}
