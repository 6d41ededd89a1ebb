//! Keyframe requests toward a publisher, aggregated per layer: however
//! many subscribers send PLIs (RFC 4585 §6.3.1) or switch layers, the
//! publisher gets at most one request per layer per interval. A request
//! that arrives inside the interval is deferred to its end, unless the
//! keyframe it waits for comes first.

use std::time::{Duration, Instant};

/// A small interval keeps a joining subscriber's wait short; RFC 4585
/// §3.5 leaves the rate of PLIs to the application.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// A request named a layer the publication does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("keyframe requested for layer {layer}, the publication has {layers}")]
pub struct NoSuchLayer {
    pub layer: u8,
    pub layers: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct LayerState {
    /// When a request for this layer last went to the publisher.
    sent_at: Option<Instant>,
    /// A request is waiting to be sent.
    pending: bool,
}

/// Keyframe-request aggregation for one publication.
///
/// - Input: [`KeyframeAggregator::request`] for each subscriber's PLI or
///   layer switch, [`KeyframeAggregator::handle_keyframe`] when a layer's
///   keyframe arrives.
/// - Output: [`KeyframeAggregator::poll_request`] gives the layers to send
///   a PLI for now; [`KeyframeAggregator::poll_timeout`] the next time
///   one becomes due.
///
/// The layer table is allocated once, at construction.
#[derive(Clone, Debug)]
pub struct KeyframeAggregator {
    interval: Duration,
    layers: Box<[LayerState]>,
}

impl KeyframeAggregator {
    /// An aggregator for a publication with `layers` layers (1 without
    /// simulcast).
    pub fn new(layers: usize, interval: Duration) -> Self {
        Self {
            interval,
            layers: vec![LayerState::default(); layers].into_boxed_slice(),
        }
    }

    /// Someone wants a keyframe of `layer`.
    pub fn request(&mut self, layer: u8) -> Result<(), NoSuchLayer> {
        let layers = self.layers.len();
        let state = self
            .layers
            .get_mut(usize::from(layer))
            .ok_or(NoSuchLayer { layer, layers })?;
        state.pending = true;
        Ok(())
    }

    /// A keyframe of `layer` arrived: requests waiting for it are
    /// answered. Unknown layers are ignored.
    pub fn handle_keyframe(&mut self, layer: u8) {
        if let Some(state) = self.layers.get_mut(usize::from(layer)) {
            state.pending = false;
        }
    }

    /// The next layer whose request should go to the publisher now.
    pub fn poll_request(&mut self, now: Instant) -> Option<u8> {
        let interval = self.interval;
        let (index, state) = self.layers.iter_mut().enumerate().find(|(_, state)| {
            state.pending
                && state
                    .sent_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= interval)
        })?;
        state.pending = false;
        state.sent_at = Some(now);
        // The layer count came from a u8-indexed request, or is tiny.
        Some(index as u8)
    }

    /// When the earliest deferred request becomes due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.layers
            .iter()
            .filter(|state| state.pending)
            .filter_map(|state| state.sent_at.map(|at| at + self.interval))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_requests_become_one_per_interval() {
        let mut aggregator = KeyframeAggregator::new(3, DEFAULT_INTERVAL);
        let start = Instant::now();
        for _ in 0..50 {
            aggregator.request(1).unwrap();
        }
        assert_eq!(aggregator.poll_request(start), Some(1));
        assert_eq!(aggregator.poll_request(start), None);
        assert_eq!(aggregator.poll_timeout(), None);
        // More inside the interval: deferred to its end.
        aggregator.request(1).unwrap();
        aggregator.request(1).unwrap();
        let mid = start + DEFAULT_INTERVAL / 2;
        assert_eq!(aggregator.poll_request(mid), None);
        assert_eq!(aggregator.poll_timeout(), Some(start + DEFAULT_INTERVAL));
        assert_eq!(aggregator.poll_request(start + DEFAULT_INTERVAL), Some(1));
        assert_eq!(aggregator.poll_request(start + DEFAULT_INTERVAL), None);
    }

    #[test]
    fn layers_are_independent_and_a_keyframe_answers_a_deferred_request() {
        let mut aggregator = KeyframeAggregator::new(2, DEFAULT_INTERVAL);
        let start = Instant::now();
        aggregator.request(0).unwrap();
        aggregator.request(1).unwrap();
        assert_eq!(aggregator.poll_request(start), Some(0));
        assert_eq!(aggregator.poll_request(start), Some(1));
        aggregator.request(0).unwrap();
        aggregator.handle_keyframe(0);
        assert_eq!(aggregator.poll_timeout(), None);
        assert_eq!(aggregator.poll_request(start + DEFAULT_INTERVAL), None);
    }

    #[test]
    fn unknown_layers_are_an_error() {
        let mut aggregator = KeyframeAggregator::new(1, DEFAULT_INTERVAL);
        assert_eq!(aggregator.request(3), Err(NoSuchLayer { layer: 3, layers: 1 }));
    }
}
