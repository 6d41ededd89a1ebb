//! What a link did to the packets that crossed it.

use std::fmt;

/// Counters of one link since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets handed to the link, and their bytes.
    pub received: u64,
    pub received_bytes: u64,
    /// Packets the bottleneck's queue had no room for, and their bytes.
    pub queue_drops: u64,
    pub queue_drop_bytes: u64,
    /// Packets the loss model took after the bottleneck.
    pub lost: u64,
    /// Packets held back so that later ones overtake them.
    pub reordered: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Packets handed out at the far end (copies included), and bytes.
    pub delivered: u64,
    pub delivered_bytes: u64,
}

impl fmt::Display for LinkStats {
    /// One line of `name=value` pairs, for scripts to read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received={} received_bytes={} queue_drops={} queue_drop_bytes={} lost={} reordered={} duplicated={} delivered={} delivered_bytes={}",
            self.received,
            self.received_bytes,
            self.queue_drops,
            self.queue_drop_bytes,
            self.lost,
            self.reordered,
            self.duplicated,
            self.delivered,
            self.delivered_bytes
        )
    }
}
