//! One subscriber's bandwidth shared among its video subscriptions
//! (LiveKit's `StreamAllocator`): a pure function of the estimate, each
//! subscription's layers and the layer its tile needs, and a priority.
//!
//! Everyone starts at its lowest layer (a subscriber always gets
//! something, as [`crate::layer::LayerSelector`] does); then, in
//! priority order (screen shares first, then larger tiles), each goes up
//! as far as the rest of the budget pays for, subscriptions of equal
//! priority one layer a round in turn. Each share is its layer's rate with the
//! selector's up-switch margin, plus an equal part of what is left, so
//! the selector settles on the layer planned here.

use crate::publication::MAX_LAYERS;

/// What one video subscription could use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    /// Higher first: a screen share above cameras, a larger tile above
    /// a smaller one.
    pub priority: u64,
    /// The layers' rates, lowest first; 0 for a layer not available.
    pub rates: [u64; MAX_LAYERS],
    /// The highest layer worth sending for the tile.
    pub cap: u8,
    /// Output: the share of the estimate, bits per second.
    pub share: u64,
}

/// The priority of a subscription: screen shares above everything,
/// then by the tile's area.
pub fn priority(screen_share: bool, width: u16, height: u16) -> u64 {
    let area = u64::from(width) * u64::from(height);
    if screen_share {
        area + (1 << 40)
    } else {
        area
    }
}

/// Plans `budget` (bits per second) over `demands`, writing each share.
/// `margin_per_mille` is the selector's up-switch margin.
pub fn allocate(budget: u64, margin_per_mille: u32, demands: &mut [Demand]) {
    let with_margin = |rate: u64| rate.saturating_mul(1000 + u64::from(margin_per_mille)) / 1000;
    // The chosen layer per demand, kept in `share` until the end.
    let mut spent = 0u64;
    for demand in demands.iter_mut() {
        let lowest = demand.rates.iter().position(|&rate| rate > 0);
        demand.share = lowest.map_or(u64::MAX, |layer| layer as u64);
        spent = spent.saturating_add(lowest.map_or(0, |layer| with_margin(demand.rates[layer])));
    }
    let mut remaining = budget.saturating_sub(spent);
    // Priorities high to low; equals go up one layer a round in turn.
    let mut above = None;
    while let Some(priority) = (demands.iter().map(|d| d.priority))
        .filter(|&p| above.is_none_or(|above| p < above))
        .max()
    {
        above = Some(priority);
        loop {
            let mut upgraded = false;
            for demand in demands.iter_mut().filter(|d| d.priority == priority) {
                if demand.share == u64::MAX {
                    continue;
                }
                let current = demand.share as usize;
                let top = usize::from(demand.cap).min(MAX_LAYERS - 1);
                let Some(next) = (current + 1..=top).find(|&layer| demand.rates[layer] > 0) else {
                    continue;
                };
                let step = with_margin(demand.rates[next]).saturating_sub(with_margin(demand.rates[current]));
                if step <= remaining {
                    remaining -= step;
                    demand.share = next as u64;
                    upgraded = true;
                }
            }
            if !upgraded {
                break;
            }
        }
    }
    let count = demands.iter().filter(|d| d.share != u64::MAX).count() as u64;
    let extra = remaining.checked_div(count).unwrap_or(0);
    for demand in demands.iter_mut() {
        demand.share = match demand.share {
            u64::MAX => 0,
            layer => with_margin(demand.rates[layer as usize]).saturating_add(extra),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u64; MAX_LAYERS] = [100_000, 500_000, 1_500_000, 0];

    fn demand(priority: u64, cap: u8) -> Demand {
        Demand {
            priority,
            rates: RATES,
            cap,
            share: 0,
        }
    }

    /// The layer the selector settles on for a share (no higher than
    /// the tile needs).
    fn layer(demand: &Demand) -> usize {
        let affordable = (0..3).rev().find(|&l| RATES[l] * 1_200 / 1_000 <= demand.share);
        affordable.unwrap_or(0).min(usize::from(demand.cap))
    }

    #[test]
    fn the_budget_goes_to_screens_then_big_tiles() {
        // A screen share, one big tile, four thumbnails.
        let mut demands = [
            demand(priority(false, 1280, 720), 2),
            demand(priority(false, 320, 180), 0),
            demand(priority(true, 1920, 1080), 2),
            demand(priority(false, 320, 180), 0),
            demand(priority(false, 320, 180), 0),
            demand(priority(false, 320, 180), 0),
        ];
        allocate(2_700_000, 200, &mut demands);
        let layers: Vec<_> = demands.iter().map(layer).collect();
        // Six lowest layers: 720k; the screen to the top: +1.68M; the
        // big tile up one: +480k. 2.88M > 2.7M: the big tile stays low.
        assert_eq!(layers, [0, 0, 2, 0, 0, 0]);
        allocate(3_000_000, 200, &mut demands);
        let layers: Vec<_> = demands.iter().map(layer).collect();
        assert_eq!(layers, [1, 0, 2, 0, 0, 0]);
        // Plenty: everyone at what its tile needs.
        allocate(50_000_000, 200, &mut demands);
        let layers: Vec<_> = demands.iter().map(layer).collect();
        assert_eq!(layers, [2, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn equals_go_up_in_turn_and_missing_layers_are_skipped() {
        let mut demands = [demand(5, 2), demand(5, 2)];
        // Room for one step up, not two.
        allocate(240_000 + 480_000 + 100_000, 200, &mut demands);
        let layers: Vec<_> = demands.iter().map(layer).collect();
        assert_eq!(layers, [1, 0]);
        // Layer 1 not sent: straight to 2.
        demands[0].rates = [100_000, 0, 1_500_000, 0];
        allocate(10_000_000, 200, &mut demands);
        assert!(demands[0].share >= 1_800_000);
        // Nothing sent at all: no share.
        demands[1].rates = [0; MAX_LAYERS];
        allocate(10_000_000, 200, &mut demands);
        assert_eq!(demands[1].share, 0);
    }
}
