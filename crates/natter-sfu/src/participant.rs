//! A participant of a room: someone who publishes and subscribes over
//! one connection. The room keeps, per participant, what its feedback
//! may cost others: PLIs (RFC 4585 §6.3.1, RFC 5104 §4.3.1 FIR) and
//! NACKs (RFC 4585 §6.2.1) go through token buckets, and what a bucket
//! refuses is counted here.

use std::time::Instant;

use crate::limit::TokenBucket;

/// Names a participant; the caller chooses it (a connection's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// What a participant's feedback asked for, and how much was refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackCounters {
    /// PLIs and FIRs received.
    pub keyframe_requests: u64,
    /// ... of which over the participant's rate, ignored.
    pub keyframe_requests_limited: u64,
    /// Sequence numbers NACKed.
    pub nacks: u64,
    /// ... of which over the participant's rate, ignored.
    pub nacks_limited: u64,
    /// Packets it published on an SSRC (or RID) no publication of its
    /// has, dropped.
    pub unknown_ssrc: u64,
}

/// How much feedback one participant may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedbackLimits {
    /// Keyframe requests a second, and the burst.
    pub keyframe_requests_per_second: u32,
    pub keyframe_request_burst: u32,
    /// NACKed sequence numbers a second, and the burst.
    pub nacks_per_second: u32,
    pub nack_burst: u32,
}

impl Default for FeedbackLimits {
    fn default() -> Self {
        // A decoder asks for a keyframe a few times a second at worst;
        // 5% loss of a 2.5 Mbit/s stream is about 12 NACKs a second
        // per stream.
        Self {
            keyframe_requests_per_second: 4,
            keyframe_request_burst: 8,
            nacks_per_second: 500,
            nack_burst: 250,
        }
    }
}

/// One participant: its bandwidth estimate and its feedback budget.
#[derive(Clone, Debug)]
pub struct Participant {
    id: ParticipantId,
    /// The connection's estimate of what it can receive (REMB, RFC
    /// draft-alvestrand-rmcat-remb §2, or TWCC-based), bits per second.
    pub(crate) estimate_bps: u64,
    pub(crate) subscriptions: usize,
    pub(crate) counters: FeedbackCounters,
    pub(crate) keyframe_bucket: TokenBucket,
    pub(crate) nack_bucket: TokenBucket,
}

impl Participant {
    pub(crate) fn new(id: ParticipantId, estimate_bps: u64, limits: FeedbackLimits) -> Self {
        Self {
            id,
            estimate_bps,
            subscriptions: 0,
            counters: FeedbackCounters::default(),
            keyframe_bucket: TokenBucket::new(limits.keyframe_requests_per_second, limits.keyframe_request_burst),
            nack_bucket: TokenBucket::new(limits.nacks_per_second, limits.nack_burst),
        }
    }

    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// Its receive estimate, bits per second.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps
    }

    /// How many publications it is subscribed to.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions
    }

    pub fn counters(&self) -> &FeedbackCounters {
        &self.counters
    }

    /// Takes one keyframe request from its budget; counts it either way.
    pub(crate) fn admit_keyframe_request(&mut self, now: Instant) -> bool {
        self.counters.keyframe_requests += 1;
        let admitted = self.keyframe_bucket.try_take(now);
        if !admitted {
            self.counters.keyframe_requests_limited += 1;
        }
        admitted
    }

    /// Takes one NACKed sequence number from its budget; counts it.
    pub(crate) fn admit_nack(&mut self, now: Instant) -> bool {
        self.counters.nacks += 1;
        let admitted = self.nack_bucket.try_take(now);
        if !admitted {
            self.counters.nacks_limited += 1;
        }
        admitted
    }
}
