//! A subscription: one subscriber receiving one publication (LiveKit's
//! `DownTrack`, mediasoup's `Consumer`). It holds what is the
//! subscriber's own: the [`Forwarder`] (layer chosen from its share of
//! the estimate and its tile size, sequence numbers and timestamps
//! rewritten, RFC 3550 §5.1), what it was sent (to answer its NACKs,
//! RFC 4585 §6.2.1), and its counters.

use crate::forwarder::Forwarder;
use crate::layer::TileSize;
use crate::participant::ParticipantId;
use crate::sent::SentHistory;

/// What one subscription carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionCounters {
    pub forwarded_packets: u64,
    /// RTP payload bytes.
    pub forwarded_bytes: u64,
    pub layer_switches: u64,
    /// Packets resent from the room's cache on the subscriber's NACKs.
    pub resent_packets: u64,
}

/// One subscriber of one publication.
///
/// Getters only; the [`crate::room::Room`] drives it.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub(crate) subscriber: ParticipantId,
    pub(crate) forwarder: Forwarder,
    pub(crate) sent: SentHistory,
    pub(crate) tile: TileSize,
    /// Its share of the subscriber's estimate, bits per second.
    pub(crate) estimate_bps: u64,
    pub(crate) counters: SubscriptionCounters,
}

impl Subscription {
    pub(crate) fn new(subscriber: ParticipantId, forwarder: Forwarder, sent: SentHistory, tile: TileSize) -> Self {
        Self {
            subscriber,
            forwarder,
            sent,
            tile,
            estimate_bps: 0,
            counters: SubscriptionCounters::default(),
        }
    }

    pub fn subscriber(&self) -> ParticipantId {
        self.subscriber
    }

    /// The layer being forwarded.
    pub fn layer(&self) -> Option<u8> {
        self.forwarder.selector().current()
    }

    /// The layer the subscription wants (it switches at its keyframe).
    pub fn target_layer(&self) -> Option<u8> {
        self.forwarder.selector().target()
    }

    pub fn tile(&self) -> TileSize {
        self.tile
    }

    /// Its share of the subscriber's estimate, bits per second.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps
    }

    /// What it would be sent if the estimate were no limit (the layer
    /// its tile needs), bits per second.
    pub fn wanted_bps(&self) -> u64 {
        self.forwarder.selector().wanted_bps()
    }

    pub fn counters(&self) -> &SubscriptionCounters {
        &self.counters
    }

    /// The highest layer it wants sent (dynacast): the one it receives
    /// or the one it waits to switch to.
    pub(crate) fn highest_wanted(&self) -> Option<u8> {
        self.layer().max(self.target_layer())
    }
}
