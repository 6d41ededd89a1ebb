//! A room: its participants, their publications and everyone's
//! subscriptions to them (mediasoup's `Router`), as one sans-IO state
//! machine a media worker owns.
//!
//! - Getters: [`Room::participant`], [`Room::publication`],
//!   [`Room::subscription`], [`Room::metrics`], [`Room::active_speaker`].
//! - Application input: [`Room::add_participant`],
//!   [`Room::add_participant_with_pool`], [`Room::set_receive_pool`],
//!   [`Room::set_source`], [`Room::remove_participant`],
//!   [`Room::publish`], [`Room::unpublish`],
//!   [`Room::subscribe`], [`Room::unsubscribe`], [`Room::set_tile_size`].
//!   A new participant is subscribed to every publication in the room,
//!   and everyone to a new publication, up to
//!   [`RoomConfig::max_subscriptions`] each (audio first). A participant
//!   with a receive [`Pool`] gets instead, of each kind, the
//!   publications of the best-ranked others that fit it
//!   ([`crate::last_n`]: latest active speakers first, then join order),
//!   re-chosen whenever the active speaker, the publications or its pool
//!   change: what falls out is unsubscribed before what comes in is
//!   subscribed, so the owner can move a slot from one to the other.
//!   A participant with a source ([`Room::set_source`]) gets only that
//!   publisher's publications.
//! - Network input: [`Room::on_rtp`] per packet a publisher sent, which
//!   returns the [`Fanout`] to drain (one [`Forward`] per subscriber);
//!   per subscriber leg, its feedback as natter's RTP mode reports it:
//!   [`Room::handle_keyframe_request`] (PLI, RFC 4585 §6.3.1; FIR, RFC
//!   5104 §4.3.1), [`Room::handle_estimate`] (the connection's target
//!   bitrate from REMB or transport-wide feedback), [`Room::handle_nack`]
//!   (RFC 4585 §6.2.1).
//! - Timer: [`Room::poll_timeout`], [`Room::handle_timeout`].
//! - Output, drained after each input: [`Room::poll_resend`] (packets
//!   answering NACKs from the cache), then [`Room::poll_event`].
//!
//! RTCP reports are not generated here: natter's RTP mode sends sender
//! reports for what the application writes (with its rewritten
//! timestamps) and receiver reports for what it receives, per leg.
//!
//! Nothing allocates per forwarded packet once warm: the publication
//! and subscription tables, the caches' slots and the event queue keep
//! their capacity; VP8 payloads are rewritten in one reused buffer.
//!
//! ```
//! use natter_sfu::participant::ParticipantId;
//! use natter_sfu::publication::PublicationSpec;
//! use natter_sfu::room::{PublishedRtp, Room, RoomConfig, RoomEvent};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let (alice, bob) = (ParticipantId(1), ParticipantId(2));
//! let mut room = Room::new(RoomConfig::default());
//! room.add_participant(now, alice)?;
//! room.add_participant(now, bob)?;
//! let mic = room.publish(now, alice, &PublicationSpec::microphone(Some(0x1234)))?;
//! // Bob was subscribed: give him a track for it.
//! let events: Vec<_> = std::iter::from_fn(|| room.poll_event()).collect();
//! assert!(events.contains(&RoomEvent::Subscribed { subscriber: bob, publication: mic }));
//!
//! let opus = [0xF8, 0xFF, 0xFE];
//! let packet = PublishedRtp {
//!     ssrc: 0x1234,
//!     rid: None,
//!     sequence: 7,
//!     extended_sequence: 7,
//!     timestamp: 960,
//!     marker: false,
//!     retransmission: false,
//!     starts_keyframe: false,
//!     temporal_id: None,
//!     audio_level: None,
//!     payload: &opus,
//!     dependency_descriptor: None,
//! };
//! let mut fanout = room.on_rtp(now, alice, packet)?;
//! let forward = fanout.poll_forward().unwrap();
//! // What to write on Bob's track for `mic` (natter's `write_rtp`).
//! assert_eq!((forward.subscriber, forward.publication), (bob, mic));
//! assert_eq!((forward.sequence, forward.payload), (7, &opus[..]));
//! assert!(fanout.poll_forward().is_none());
//! # Ok::<(), natter_sfu::room::RoomError>(())
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use natter_rtp::AudioLevel;

use crate::allocation::{self, Demand};
use crate::forwarder::{Forwarder, ForwarderConfig, PublishedPacket};
use crate::keyframe::KeyframeAggregator;
use crate::last_n::{Candidate, LastN, Pool};
use crate::layer::{LayerInfo, SelectorConfig, TileSize};
use crate::limit::TokenBucket;
use crate::participant::{FeedbackLimits, Participant, ParticipantId};
use crate::publication::{Publication, PublicationId, PublicationSpec, Source, SpecError};
use crate::rewrite::Rewritten;
use crate::sent::{SentHistory, SentPacket};
use crate::speaker::{SpeakerConfig, SpeakerDetector};
use crate::subscription::Subscription;
use crate::{cache, keyframe, layer, sent, vp8};

#[cfg(test)]
mod tests;

/// How a room behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomConfig {
    /// Subscriptions per participant, automatic or asked for.
    pub max_subscriptions: usize,
    /// Packets cached per video layer ([`cache::PacketCache`]) to
    /// answer NACKs ([`Room::handle_nack`]). Zero: no cache, and every
    /// NACK goes to the publisher; for an owner whose connections answer
    /// subscribers' NACKs themselves (natter's RTP mode resends from
    /// its own send history as RTX, RFC 4588 §4), a cache would hold a
    /// second copy of every packet for nothing.
    pub cache_packets: usize,
    /// Packets remembered per subscription ([`SentHistory`]).
    pub sent_packets: usize,
    pub selector: SelectorConfig,
    /// At most one keyframe request per layer per interval.
    pub keyframe_interval: Duration,
    pub speaker: SpeakerConfig,
    /// How often layer choices and dynacast are reconsidered.
    pub update_interval: Duration,
    /// Dynacast: a layer above every layer wanted (received or switched
    /// to by a subscriber) for this long is paused.
    pub pause_after: Duration,
    /// A participant's estimate before its connection reports one.
    pub initial_estimate_bps: u64,
    /// Taken off a subscriber's estimate per audio subscription before
    /// the rest is shared among its video subscriptions.
    pub audio_reserve_bps: u64,
    /// A new subscription's tile until the subscriber says otherwise.
    pub initial_tile: TileSize,
    pub feedback: FeedbackLimits,
    /// NACKs the room sends each publication's publisher, a second.
    pub upstream_nacks_per_second: u32,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            max_subscriptions: 100,
            cache_packets: cache::DEFAULT_PACKETS,
            sent_packets: sent::DEFAULT_PACKETS,
            selector: SelectorConfig::default(),
            keyframe_interval: keyframe::DEFAULT_INTERVAL,
            speaker: SpeakerConfig::default(),
            update_interval: Duration::from_millis(250),
            pause_after: Duration::from_secs(2),
            initial_estimate_bps: 1_000_000,
            // Opus at its usual 32 to 64 kbit/s (RFC 7587 §3.1.1).
            audio_reserve_bps: 64_000,
            initial_tile: TileSize {
                width: 640,
                height: 360,
            },
            feedback: FeedbackLimits::default(),
            upstream_nacks_per_second: 200,
        }
    }
}

/// What the room tells its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomEvent {
    PublicationAdded {
        publisher: ParticipantId,
        publication: PublicationId,
        source: Source,
    },
    PublicationRemoved {
        publisher: ParticipantId,
        publication: PublicationId,
    },
    /// Give the subscriber a track for the publication.
    Subscribed {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
    Unsubscribed {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
    /// The subscriber now receives layer `layer`.
    LayerSwitched {
        subscriber: ParticipantId,
        publication: PublicationId,
        layer: u8,
    },
    /// Send the publisher a PLI for layer `layer`'s SSRC (RFC 4585
    /// §6.3.1; natter's `request_layer_keyframe` with
    /// [`Publication::rid`]).
    KeyframeRequest {
        publisher: ParticipantId,
        publication: PublicationId,
        layer: u8,
    },
    /// Dynacast: ask the publisher to stop sending layer `layer`,
    /// nobody receiving it or any layer above it (by signaling: the browser's
    /// `RTCRtpEncodingParameters.active`; RFC 8853 §5.1 writes such a
    /// stream with `~` as paused).
    LayerPaused {
        publisher: ParticipantId,
        publication: PublicationId,
        layer: u8,
    },
    /// Dynacast: someone wants layer `layer` again.
    LayerResumed {
        publisher: ParticipantId,
        publication: PublicationId,
        layer: u8,
    },
    /// A subscriber NACKed a packet the room does not have: ask the
    /// publisher for it (RFC 4585 §6.2.1), `sequence` in the layer's own
    /// space.
    NackUpstream {
        publisher: ParticipantId,
        publication: PublicationId,
        layer: u8,
        sequence: u16,
    },
    /// The active speaker (RFC 6464 levels) is now this one, or nobody.
    ActiveSpeaker(Option<ParticipantId>),
}

/// One RTP packet a publisher sent, as natter's `ReceivedRtp` gives it
/// (RTX already unwrapped, RFC 4588 §4).
#[derive(Clone, Copy, Debug)]
pub struct PublishedRtp<'a> {
    /// The media SSRC (natter gives RTX unwrapped, with its media
    /// SSRC); a packet on a layer's RTX SSRC is taken as an unwrapped
    /// retransmission.
    pub ssrc: u32,
    /// RFC 8852 §3.1 RtpStreamId, routing a stream whose SSRC was not
    /// signaled.
    pub rid: Option<&'a str>,
    pub sequence: u16,
    /// RFC 3550 Appendix A.1's extended sequence number.
    pub extended_sequence: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub retransmission: bool,
    /// natter-rtp's `PacketInfo::starts_keyframe` (ignored for audio).
    pub starts_keyframe: bool,
    pub temporal_id: Option<u8>,
    /// RFC 6464 §3.
    pub audio_level: Option<AudioLevel>,
    pub payload: &'a [u8],
    /// AV1 RTP Appendix A, forwarded as received.
    pub dependency_descriptor: Option<&'a [u8]>,
}

/// One packet for one subscriber: write it on the subscriber's track
/// for `publication` (natter's `write_rtp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward<'a> {
    pub subscriber: ParticipantId,
    pub publication: PublicationId,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
    pub audio_level: Option<AudioLevel>,
    pub dependency_descriptor: Option<&'a [u8]>,
    /// A resend from the cache on the subscriber's NACK.
    pub resend: bool,
}

/// The room's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomMetrics {
    pub received_packets: u64,
    pub forwarded_packets: u64,
    /// RTP payload bytes.
    pub forwarded_bytes: u64,
    pub layer_switches: u64,
    /// Keyframe requests sent to publishers (after aggregation).
    pub keyframe_requests: u64,
    /// Subscribers' PLIs and FIRs over their rate, ignored.
    pub keyframe_requests_limited: u64,
    /// Sequence numbers subscribers NACKed.
    pub nacks: u64,
    pub nacks_limited: u64,
    pub nacks_from_cache: u64,
    pub nacks_upstream: u64,
    /// Upstream NACKs not sent: over the publisher's rate.
    pub nacks_upstream_limited: u64,
    /// NACKs for numbers never sent that no source maps to, or older
    /// than the subscription's history.
    pub nacks_unanswered: u64,
    pub resent_packets: u64,
    pub resent_bytes: u64,
    /// Packets on an SSRC no publication of their sender has.
    pub unknown_ssrc: u64,
    /// Packets a subscription could not forward (a jump in sequence
    /// numbers, a malformed VP8 descriptor).
    pub forward_errors: u64,
}

/// Why an input was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("participant {0:?} is already in the room")]
    DuplicateParticipant(ParticipantId),
    #[error("participant {0:?} is not in the room")]
    UnknownParticipant(ParticipantId),
    #[error("publication {0:?} is not in the room")]
    UnknownPublication(PublicationId),
    #[error("participant {participant:?} has no publication with SSRC {ssrc:#010x}")]
    UnknownSsrc { participant: ParticipantId, ssrc: u32 },
    #[error("participant {subscriber:?} is not subscribed to {publication:?}")]
    NotSubscribed {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
    #[error("participant {0:?} cannot subscribe to its own publication")]
    OwnPublication(ParticipantId),
    #[error("participant {0:?} has as many subscriptions as allowed")]
    SubscriptionCap(ParticipantId),
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// A NACKed packet to resend from the cache.
#[derive(Clone, Copy, Debug)]
struct Resend {
    subscriber: ParticipantId,
    publication: PublicationId,
    sent: SentPacket,
}

/// One room. See the module documentation for its methods' taxonomy.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    participants: Vec<Participant>,
    publications: Vec<Publication>,
    next_publication: u32,
    events: VecDeque<RoomEvent>,
    resends: VecDeque<Resend>,
    speaker: SpeakerDetector<ParticipantId>,
    metrics: RoomMetrics,
    /// Where a VP8 payload is rewritten for each subscriber in turn.
    scratch: Vec<u8>,
    /// One subscriber's demands while its estimate is shared (reused).
    demands: Vec<Demand>,
    next_update: Option<Instant>,
    /// Publishers ranked for participants with a receive pool.
    last_n: LastN,
    /// The participants that receive on a fixed pool of slots.
    pools: Vec<(ParticipantId, Pool)>,
    /// The participants that receive one publisher's publications only
    /// (subscriber, publisher): a WHEP player of one participant.
    sources: Vec<(ParticipantId, ParticipantId)>,
    /// One subscriber's last-N choice while it is applied (reused).
    candidates: Vec<Candidate>,
    chosen: Vec<PublicationId>,
    /// The room is recorded: dynacast keeps every layer on, so the
    /// recording can take the top one whatever the subscribers watch.
    recorded: bool,
}

/// What an audio subscription's selector sees: one layer, always there.
const AUDIO_LAYER: [LayerInfo; 1] = [LayerInfo {
    bitrate_bps: 1,
    width: 0,
    height: 0,
}];

impl Room {
    pub fn new(config: RoomConfig) -> Self {
        Self {
            config,
            participants: Vec::new(),
            publications: Vec::new(),
            next_publication: 0,
            events: VecDeque::new(),
            resends: VecDeque::new(),
            speaker: SpeakerDetector::new(config.speaker),
            metrics: RoomMetrics::default(),
            scratch: Vec::new(),
            demands: Vec::new(),
            next_update: None,
            last_n: LastN::default(),
            pools: Vec::new(),
            sources: Vec::new(),
            candidates: Vec::new(),
            chosen: Vec::new(),
            recorded: false,
        }
    }

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    pub fn metrics(&self) -> &RoomMetrics {
        &self.metrics
    }

    pub fn active_speaker(&self) -> Option<ParticipantId> {
        self.speaker.active()
    }

    /// The room is recorded (or no longer): while it is, dynacast pauses
    /// no simulcast layer and resumes the paused ones at once, so a
    /// recorder that takes each publication's top layer has it.
    pub fn set_recorded(&mut self, now: Instant, recorded: bool) {
        self.recorded = recorded;
        for index in 0..self.publications.len() {
            self.update_publication(now, index);
        }
    }

    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id() == id)
    }

    pub fn publications(&self) -> &[Publication] {
        &self.publications
    }

    pub fn publication(&self, id: PublicationId) -> Option<&Publication> {
        self.publications.iter().find(|p| p.id == id)
    }

    pub fn subscription(&self, subscriber: ParticipantId, publication: PublicationId) -> Option<&Subscription> {
        (self.publication(publication)?.subscriptions.iter()).find(|s| s.subscriber == subscriber)
    }

    fn participant_index(&self, id: ParticipantId) -> Result<usize, RoomError> {
        (self.participants.iter().position(|p| p.id() == id)).ok_or(RoomError::UnknownParticipant(id))
    }

    fn publication_index(&self, id: PublicationId) -> Result<usize, RoomError> {
        (self.publications.iter().position(|p| p.id == id)).ok_or(RoomError::UnknownPublication(id))
    }

    fn subscription_index(&self, publication: usize, subscriber: ParticipantId) -> Result<usize, RoomError> {
        let publication = &self.publications[publication];
        (publication
            .subscriptions
            .iter()
            .position(|s| s.subscriber == subscriber))
        .ok_or(RoomError::NotSubscribed {
            subscriber,
            publication: publication.id,
        })
    }

    /// A participant joins: it is subscribed to the room's publications.
    pub fn add_participant(&mut self, now: Instant, id: ParticipantId) -> Result<(), RoomError> {
        self.join(now, id, None)
    }

    /// A participant that receives on a fixed pool of slots joins: it is
    /// subscribed to the last-N choice that fits `pool`
    /// ([`crate::last_n`]), ranked after everyone already here.
    pub fn add_participant_with_pool(&mut self, now: Instant, id: ParticipantId, pool: Pool) -> Result<(), RoomError> {
        self.join(now, id, Some(pool))
    }

    fn join(&mut self, now: Instant, id: ParticipantId, pool: Option<Pool>) -> Result<(), RoomError> {
        if self.participant(id).is_some() {
            return Err(RoomError::DuplicateParticipant(id));
        }
        let participant = Participant::new(id, self.config.initial_estimate_bps, self.config.feedback);
        self.participants.push(participant);
        self.last_n.join(id);
        self.pools.extend(pool.map(|pool| (id, pool)));
        self.fill(now, id);
        Ok(())
    }

    /// The participant's receive pool changed (a renegotiation added
    /// slots): its subscriptions are chosen again to fit it.
    pub fn set_receive_pool(&mut self, now: Instant, id: ParticipantId, pool: Pool) -> Result<(), RoomError> {
        self.participant_index(id)?;
        match self.pools.iter_mut().find(|(p, _)| *p == id) {
            Some((_, old)) => *old = pool,
            None => self.pools.push((id, pool)),
        }
        self.fill(now, id);
        Ok(())
    }

    fn pool(&self, id: ParticipantId) -> Option<Pool> {
        self.pools.iter().find(|(p, _)| *p == id).map(|(_, pool)| *pool)
    }

    /// `subscriber` receives only `publisher`'s publications from now on,
    /// or everyone's again with `None`; its subscriptions are chosen
    /// again (what another publisher sent it is unsubscribed). The
    /// publisher need not be in the room yet.
    pub fn set_source(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publisher: Option<ParticipantId>,
    ) -> Result<(), RoomError> {
        self.participant_index(subscriber)?;
        self.sources.retain(|(s, _)| *s != subscriber);
        self.sources.extend(publisher.map(|p| (subscriber, p)));
        self.fill(now, subscriber);
        Ok(())
    }

    fn source(&self, id: ParticipantId) -> Option<ParticipantId> {
        self.sources.iter().find(|(s, _)| *s == id).map(|(_, p)| *p)
    }

    /// A participant leaves (or its connection failed): its
    /// publications and subscriptions go with it.
    pub fn remove_participant(&mut self, now: Instant, id: ParticipantId) -> Result<(), RoomError> {
        let index = self.participant_index(id)?;
        self.last_n.leave(id);
        self.pools.retain(|(p, _)| *p != id);
        self.sources.retain(|(s, _)| *s != id);
        while let Some(own) = self.publications.iter().find(|p| p.publisher == id) {
            self.unpublish(now, own.id)?;
        }
        for publication in &mut self.publications {
            if let Some(at) = publication.subscriptions.iter().position(|s| s.subscriber == id) {
                publication.subscriptions.remove(at);
                self.events.push_back(RoomEvent::Unsubscribed {
                    subscriber: id,
                    publication: publication.id,
                });
            }
        }
        self.resends.retain(|r| r.subscriber != id);
        self.participants.remove(index);
        self.speaker.remove(id);
        self.drain_speaker(now);
        Ok(())
    }

    /// `publisher` publishes a track; everyone else is subscribed to it
    /// (up to their caps).
    pub fn publish(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        spec: &PublicationSpec,
    ) -> Result<PublicationId, RoomError> {
        self.participant_index(publisher)?;
        spec.validate()?;
        let id = PublicationId(self.next_publication);
        self.next_publication += 1;
        let keyframes = KeyframeAggregator::new(spec.layers.len(), self.config.keyframe_interval);
        let rate = self.config.upstream_nacks_per_second;
        let upstream = TokenBucket::new(rate, rate);
        let publication = Publication::new(id, publisher, spec, self.config.cache_packets, keyframes, upstream, now);
        self.publications.push(publication);
        self.events.push_back(RoomEvent::PublicationAdded {
            publisher,
            publication: id,
            source: spec.source,
        });
        if spec.source.is_audio() {
            self.speaker.add(publisher, now);
        }
        let index = self.publications.len() - 1;
        for i in 0..self.participants.len() {
            let subscriber = self.participants[i].id();
            if subscriber == publisher {
                continue;
            }
            if self.pool(subscriber).is_some() || self.source(subscriber).is_some() {
                self.fill(now, subscriber);
            } else if self.participants[i].subscriptions < self.config.max_subscriptions {
                self.subscribe_at(now, index, subscriber);
            }
        }
        self.next_update.get_or_insert(now + self.config.update_interval);
        Ok(id)
    }

    /// A track stops: its subscribers lose it and are subscribed to
    /// others in its place where their caps kept them from any.
    pub fn unpublish(&mut self, now: Instant, id: PublicationId) -> Result<(), RoomError> {
        let index = self.publication_index(id)?;
        let publication = self.publications.remove(index);
        let publisher = publication.publisher;
        self.resends.retain(|r| r.publication != id);
        self.events.push_back(RoomEvent::PublicationRemoved {
            publisher,
            publication: id,
        });
        for subscription in &publication.subscriptions {
            let subscriber = subscription.subscriber;
            self.events.push_back(RoomEvent::Unsubscribed {
                subscriber,
                publication: id,
            });
            if let Ok(at) = self.participant_index(subscriber) {
                self.participants[at].subscriptions -= 1;
            }
        }
        if publication.source.is_audio()
            && !self
                .publications
                .iter()
                .any(|p| p.publisher == publisher && p.source.is_audio())
        {
            self.speaker.remove(publisher);
            self.drain_speaker(now);
        }
        for subscription in &publication.subscriptions {
            self.allocate(now, subscription.subscriber);
            self.fill(now, subscription.subscriber);
        }
        Ok(())
    }

    /// Subscribes `subscriber` to `publication` (one it was not
    /// subscribed to automatically, or had left).
    pub fn subscribe(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), RoomError> {
        let at = self.participant_index(subscriber)?;
        let index = self.publication_index(publication)?;
        if self.publications[index].publisher == subscriber {
            return Err(RoomError::OwnPublication(subscriber));
        }
        if self.subscription_index(index, subscriber).is_ok() {
            return Ok(());
        }
        if self.participants[at].subscriptions >= self.config.max_subscriptions {
            return Err(RoomError::SubscriptionCap(subscriber));
        }
        self.subscribe_at(now, index, subscriber);
        Ok(())
    }

    pub fn unsubscribe(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), RoomError> {
        let at = self.participant_index(subscriber)?;
        let index = self.publication_index(publication)?;
        let sub = self.subscription_index(index, subscriber)?;
        self.drop_subscription(now, at, index, sub);
        Ok(())
    }

    fn drop_subscription(&mut self, now: Instant, at: usize, index: usize, sub: usize) {
        let publication = &mut self.publications[index];
        let subscriber = publication.subscriptions.remove(sub).subscriber;
        let publication = publication.id;
        self.participants[at].subscriptions -= 1;
        self.resends
            .retain(|r| r.subscriber != subscriber || r.publication != publication);
        self.events.push_back(RoomEvent::Unsubscribed {
            subscriber,
            publication,
        });
        self.allocate(now, subscriber);
    }

    /// `subscriber` receives `publication` on an outgoing stream that
    /// last carried `last` at `at` (a receive slot reused, one SSRC):
    /// its numbers go on from there ([`crate::rewrite::StreamRewriter::continue_after`]).
    pub fn continue_stream(
        &mut self,
        subscriber: ParticipantId,
        publication: PublicationId,
        last: Rewritten,
        at: Instant,
    ) -> Result<(), RoomError> {
        let index = self.publication_index(publication)?;
        let sub = self.subscription_index(index, subscriber)?;
        self.publications[index].subscriptions[sub]
            .forwarder
            .continue_after(last, at);
        Ok(())
    }

    /// The size `subscriber` renders `publication` at: the layer no
    /// larger than needed (a hidden tile: 0 by 0, the lowest).
    pub fn set_tile_size(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
        tile: TileSize,
    ) -> Result<(), RoomError> {
        let index = self.publication_index(publication)?;
        let sub = self.subscription_index(index, subscriber)?;
        self.publications[index].subscriptions[sub].tile = tile;
        self.allocate(now, subscriber);
        self.update_publication(now, index);
        Ok(())
    }

    /// The subscriber's connection can now receive `bps` (natter's
    /// `PeerEvent::TargetBitrate`, from transport-wide feedback or
    /// REMB): shared among its subscriptions.
    pub fn handle_estimate(&mut self, now: Instant, subscriber: ParticipantId, bps: u64) -> Result<(), RoomError> {
        let at = self.participant_index(subscriber)?;
        self.participants[at].estimate_bps = bps;
        self.allocate(now, subscriber);
        for index in 0..self.publications.len() {
            if self.subscription_index(index, subscriber).is_ok() {
                self.update_publication(now, index);
            }
        }
        Ok(())
    }

    /// The subscriber sent a PLI (RFC 4585 §6.3.1) or FIR (RFC 5104
    /// §4.3.1) for its track of `publication`: a keyframe of the layer
    /// it receives is asked for, aggregated with everyone else's, within
    /// the subscriber's rate (what is over it is counted and ignored).
    pub fn handle_keyframe_request(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), RoomError> {
        let at = self.participant_index(subscriber)?;
        let index = self.publication_index(publication)?;
        let sub = self.subscription_index(index, subscriber)?;
        if !self.participants[at].admit_keyframe_request(now) {
            self.metrics.keyframe_requests_limited += 1;
            return Ok(());
        }
        let publication = &mut self.publications[index];
        let subscription = &mut publication.subscriptions[sub];
        subscription.forwarder.handle_pli();
        while let Some(layer) = subscription.forwarder.poll_keyframe_request(now) {
            // The selector's layers are the publication's.
            let _ = publication.keyframes.request(layer);
        }
        self.drain_keyframe_requests(now, index);
        Ok(())
    }

    /// The subscriber NACKed `sequences` (its track of `publication`'s
    /// numbers, RFC 4585 §6.2.1): those in the cache are resent
    /// ([`Room::poll_resend`]); those the room never received are asked
    /// of the publisher ([`RoomEvent::NackUpstream`]), once per packet
    /// however many subscribers miss it, within the publisher's rate.
    pub fn handle_nack(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
        sequences: impl IntoIterator<Item = u16>,
    ) -> Result<(), RoomError> {
        let at = self.participant_index(subscriber)?;
        let index = self.publication_index(publication)?;
        let sub = self.subscription_index(index, subscriber)?;
        for sequence in sequences {
            self.metrics.nacks += 1;
            if !self.participants[at].admit_nack(now) {
                self.metrics.nacks_limited += 1;
                continue;
            }
            let publication = &mut self.publications[index];
            let history = &publication.subscriptions[sub].sent;
            let (layer, source) = match history.lookup(sequence) {
                Some(sent) => {
                    let cached = (publication.layers.get(usize::from(sent.layer)))
                        .and_then(|layer| layer.cache.as_ref())
                        .is_some_and(|cache| cache.get(sent.source).is_some());
                    if cached {
                        self.metrics.nacks_from_cache += 1;
                        self.resends.push_back(Resend {
                            subscriber,
                            publication: publication.id,
                            sent,
                        });
                        continue;
                    }
                    (sent.layer, sent.source)
                }
                None => match history.infer(sequence) {
                    Some(found) => found,
                    None => {
                        self.metrics.nacks_unanswered += 1;
                        continue;
                    }
                },
            };
            if publication.upstream_nack_recent(layer, source) {
                continue;
            }
            if !publication.upstream_nacks.try_take(now) {
                self.metrics.nacks_upstream_limited += 1;
                continue;
            }
            publication.note_upstream_nack(layer, source);
            self.metrics.nacks_upstream += 1;
            self.events.push_back(RoomEvent::NackUpstream {
                publisher: publication.publisher,
                publication: publication.id,
                layer,
                // The layer's own 16-bit number (RFC 3550 §5.1).
                sequence: source as u16,
            });
        }
        Ok(())
    }

    /// A packet `publisher` sent. Returns the packets to send, one per
    /// subscriber that receives it: drain the [`Fanout`]. An unknown
    /// SSRC is counted and refused.
    pub fn on_rtp<'a>(
        &'a mut self,
        now: Instant,
        publisher: ParticipantId,
        packet: PublishedRtp<'a>,
    ) -> Result<Fanout<'a>, RoomError> {
        let at = self.participant_index(publisher)?;
        let route = self
            .publications
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| p.publisher == publisher)
            .find_map(|(index, p)| p.route(packet.ssrc, packet.rid).map(|(layer, rtx)| (index, layer, rtx)));
        let Some((index, layer, rtx)) = route else {
            self.participants[at].counters.unknown_ssrc += 1;
            self.metrics.unknown_ssrc += 1;
            return Err(RoomError::UnknownSsrc {
                participant: publisher,
                ssrc: packet.ssrc,
            });
        };
        self.metrics.received_packets += 1;
        let publication = &mut self.publications[index];
        let audio = publication.source.is_audio();
        publication.meter.handle_packet(now, layer, packet.payload.len());
        if packet.starts_keyframe && !audio {
            publication.keyframes.handle_keyframe(layer);
            if publication.vp8 {
                publication.learn_size(layer, packet.payload);
            }
        }
        if let Some(cache) = (publication.layers.get_mut(usize::from(layer))).and_then(|l| l.cache.as_mut()) {
            cache.insert(
                packet.extended_sequence,
                packet.timestamp,
                packet.marker,
                packet.payload,
                packet.dependency_descriptor,
            );
        }
        if let (true, Some(level)) = (audio, packet.audio_level) {
            // The publisher's audio was added at publish.
            let _ = self
                .speaker
                .handle_audio_level(publisher, level.level, level.voice_activity);
        }
        Ok(Fanout {
            room: self,
            now,
            publication: index,
            layer,
            packet: PublishedRtp {
                retransmission: packet.retransmission || rtx,
                // Every Opus packet can start a decoder.
                starts_keyframe: packet.starts_keyframe || audio,
                ..packet
            },
            next: 0,
        })
    }

    /// A packet resent from the cache on a subscriber's NACK, with the
    /// header (and VP8 descriptor) it first went out with.
    pub fn poll_resend(&mut self) -> Option<Forward<'_>> {
        let (resend, index, marker) = loop {
            let resend = self.resends.pop_front()?;
            let Some(index) = self.publications.iter().position(|p| p.id == resend.publication) else {
                continue;
            };
            let sent = resend.sent;
            let layer = self.publications[index].layers.get(usize::from(sent.layer));
            // Overwritten since the NACK came: the subscriber asks again.
            let Some(cached) = (layer.and_then(|l| l.cache.as_ref())).and_then(|cache| cache.get(sent.source)) else {
                continue;
            };
            self.scratch.clear();
            self.scratch.extend_from_slice(cached.payload);
            let marker = cached.marker;
            if let Some(picture) = sent.vp8 {
                if vp8::restore(&mut self.scratch, picture).is_err() {
                    self.metrics.forward_errors += 1;
                    continue;
                }
            }
            break (resend, index, marker);
        };
        let sent = resend.sent;
        self.metrics.resent_packets += 1;
        self.metrics.resent_bytes += self.scratch.len() as u64;
        let publication = &mut self.publications[index];
        if let Some(subscription) = (publication.subscriptions.iter_mut()).find(|s| s.subscriber == resend.subscriber) {
            subscription.counters.resent_packets += 1;
        }
        let descriptor = (publication.layers.get(usize::from(sent.layer)))
            .and_then(|l| l.cache.as_ref())
            .and_then(|cache| cache.get(sent.source))
            .and_then(|cached| cached.dependency_descriptor);
        Some(Forward {
            subscriber: resend.subscriber,
            publication: resend.publication,
            sequence: sent.sequence,
            timestamp: sent.timestamp,
            marker,
            payload: &self.scratch,
            audio_level: None,
            dependency_descriptor: descriptor,
            resend: true,
        })
    }

    pub fn poll_event(&mut self) -> Option<RoomEvent> {
        self.events.pop_front()
    }

    /// The next deadline: a layer update, a deferred keyframe request,
    /// a speaker tick.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let keyframes = self.publications.iter().filter_map(|p| p.keyframes.poll_timeout());
        (self.next_update.into_iter())
            .chain(self.speaker.poll_timeout())
            .chain(keyframes)
            .min()
    }

    /// Runs what is due: layer choices and dynacast every
    /// [`RoomConfig::update_interval`], deferred keyframe requests,
    /// speaker ticks.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.speaker.handle_timeout(now);
        self.drain_speaker(now);
        if self.next_update.is_some_and(|due| due <= now) {
            self.next_update = (!self.publications.is_empty()).then(|| now + self.config.update_interval);
            // Shares follow the layers' measured rates.
            for at in 0..self.participants.len() {
                self.allocate(now, self.participants[at].id());
            }
            for index in 0..self.publications.len() {
                self.update_publication(now, index);
            }
        }
        for index in 0..self.publications.len() {
            self.drain_keyframe_requests(now, index);
        }
    }

    /// Reports the active speaker; a new one ranks first for last N and
    /// the participants with a pool get their choices again.
    fn drain_speaker(&mut self, now: Instant) {
        while let Some(active) = self.speaker.poll_event() {
            self.events.push_back(RoomEvent::ActiveSpeaker(active));
            if active.is_some_and(|id| self.last_n.spoke(id)) {
                for at in 0..self.pools.len() {
                    self.fill(now, self.pools[at].0);
                }
            }
        }
    }

    /// Subscribes the participant to what it lacks of its last-N choice
    /// ([`crate::last_n`]; without a pool: everyone's publications, best
    /// ranked first) while under its cap, audio first; with a pool, what
    /// fell out of the choice is unsubscribed first.
    fn fill(&mut self, now: Instant, subscriber: ParticipantId) {
        let Ok(at) = self.participant_index(subscriber) else {
            return;
        };
        let pool = self.pool(subscriber);
        let source = self.source(subscriber);
        let mut chosen = std::mem::take(&mut self.chosen);
        self.candidates.clear();
        let publications = (self.publications.iter()).filter(|p| source.is_none_or(|s| p.publisher == s));
        self.candidates.extend(publications.map(|p| Candidate {
            publisher: p.publisher,
            publication: p.id,
            audio: p.source.is_audio(),
        }));
        let everyone = Pool {
            audio: usize::MAX,
            video: usize::MAX,
        };
        (self.last_n).choose(subscriber, pool.unwrap_or(everyone), &self.candidates, &mut chosen);
        if pool.is_some() || source.is_some() {
            for index in (0..self.publications.len()).rev() {
                if chosen.contains(&self.publications[index].id) {
                    continue;
                }
                if let Ok(sub) = self.subscription_index(index, subscriber) {
                    self.drop_subscription(now, at, index, sub);
                }
            }
        }
        for publication in &chosen {
            if self.participants[at].subscriptions >= self.config.max_subscriptions {
                break;
            }
            let Ok(index) = self.publication_index(*publication) else {
                continue;
            };
            if self.subscription_index(index, subscriber).is_err() {
                self.subscribe_at(now, index, subscriber);
            }
        }
        self.chosen = chosen;
    }

    fn subscribe_at(&mut self, now: Instant, index: usize, subscriber: ParticipantId) {
        let publication = &mut self.publications[index];
        let forwarder = Forwarder::new(ForwarderConfig {
            clock_rate: publication.clock_rate,
            vp8: publication.vp8,
            selector: self.config.selector,
        });
        let sent = SentHistory::new(self.config.sent_packets);
        let subscription = Subscription::new(subscriber, forwarder, sent, self.config.initial_tile);
        publication.subscriptions.push(subscription);
        let id = publication.id;
        if let Ok(at) = self.participant_index(subscriber) {
            self.participants[at].subscriptions += 1;
        }
        self.events.push_back(RoomEvent::Subscribed {
            subscriber,
            publication: id,
        });
        self.allocate(now, subscriber);
        self.update_publication(now, index);
    }

    /// Shares the subscriber's estimate: a reserve per audio
    /// subscription, the rest planned over its video subscriptions by
    /// [`allocation::allocate`] (screen shares first, then larger tiles).
    fn allocate(&mut self, now: Instant, subscriber: ParticipantId) {
        let Ok(at) = self.participant_index(subscriber) else {
            return;
        };
        let estimate = self.participants[at].estimate_bps;
        let mut demands = std::mem::take(&mut self.demands);
        demands.clear();
        let mut audio = 0u64;
        for publication in &mut self.publications {
            let Some(subscription) = publication.subscriptions.iter().find(|s| s.subscriber == subscriber) else {
                continue;
            };
            if publication.source.is_audio() {
                audio += 1;
                continue;
            }
            let tile = subscription.tile;
            let infos = publication.layer_infos(now);
            let layers = &infos[..publication.layers.len()];
            demands.push(Demand {
                priority: allocation::priority(publication.source == Source::ScreenShare, tile.width, tile.height),
                rates: infos.map(|info| info.bitrate_bps),
                cap: layer::tile_cap(layers, tile).unwrap_or(0),
                share: 0,
            });
        }
        let budget = estimate.saturating_sub(audio * self.config.audio_reserve_bps);
        allocation::allocate(budget, self.config.selector.up_margin_per_mille, &mut demands);
        let mut shares = demands.iter().map(|d| d.share);
        for publication in self.publications.iter_mut().filter(|p| !p.source.is_audio()) {
            if let Some(subscription) = (publication.subscriptions.iter_mut()).find(|s| s.subscriber == subscriber) {
                subscription.estimate_bps = shares.next().unwrap_or(0);
            }
        }
        self.demands = demands;
    }

    /// Re-chooses every subscription's layer, asks for the keyframes
    /// that needs, and pauses or resumes layers (dynacast).
    fn update_publication(&mut self, now: Instant, index: usize) {
        let publication = &mut self.publications[index];
        let audio = publication.source.is_audio();
        let infos = publication.layer_infos(now);
        let layers: &[LayerInfo] = if audio {
            &AUDIO_LAYER
        } else {
            &infos[..publication.layers.len()]
        };
        for subscription in &mut publication.subscriptions {
            let (estimate, tile) = if audio {
                (u64::MAX, TileSize { width: 0, height: 0 })
            } else {
                (subscription.estimate_bps, subscription.tile)
            };
            subscription.forwarder.update(now, estimate, layers, tile);
            while let Some(layer) = subscription.forwarder.poll_keyframe_request(now) {
                if !audio {
                    // The selector's layers are the publication's.
                    let _ = publication.keyframes.request(layer);
                }
            }
        }
        if publication.vp8 {
            // A layer's size comes from its keyframes (RFC 6386 §9.1):
            // until one is seen, tiles cannot cap at it, so ask for one.
            for (number, (info, layer)) in layers.iter().zip(publication.layers.iter()).enumerate() {
                if info.bitrate_bps > 0 && info.width == 0 && !layer.paused {
                    // At most MAX_LAYERS layers.
                    let _ = publication.keyframes.request(number as u8);
                }
            }
        }
        if !audio {
            // Every layer up to the highest anyone wants stays on (as
            // LiveKit's dynacast does): a subscriber whose estimate drops
            // needs the layer below at once, not after a round trip to
            // the publisher and its encoder's restart, and lower layers
            // cost little beside the top one.
            let highest = publication
                .subscriptions
                .iter()
                .filter_map(|s| s.highest_wanted())
                .max();
            // A recording wants the top layer; at most MAX_LAYERS layers.
            let top = publication.layers.len().checked_sub(1).map(|top| top as u8);
            let highest = if self.recorded { top } else { highest };
            for (number, layer) in publication.layers.iter_mut().enumerate() {
                // At most MAX_LAYERS layers.
                let number = number as u8;
                let wanted = highest.is_some_and(|highest| number <= highest);
                let event = if wanted {
                    layer.unwanted_since = None;
                    let resumed = std::mem::take(&mut layer.paused);
                    if resumed {
                        layer.resumed_at = Some(now);
                    }
                    resumed.then_some(RoomEvent::LayerResumed {
                        publisher: publication.publisher,
                        publication: publication.id,
                        layer: number,
                    })
                } else {
                    let since = *layer.unwanted_since.get_or_insert(now);
                    // A layer never measured over a full window has no
                    // rate to offer it at once paused: not yet.
                    let pause = !layer.paused
                        && layer.last_bitrate_bps > 0
                        && now.saturating_duration_since(since) >= self.config.pause_after;
                    layer.paused |= pause;
                    pause.then_some(RoomEvent::LayerPaused {
                        publisher: publication.publisher,
                        publication: publication.id,
                        layer: number,
                    })
                };
                self.events.extend(event);
            }
        }
        self.drain_keyframe_requests(now, index);
    }

    fn drain_keyframe_requests(&mut self, now: Instant, index: usize) {
        let publication = &mut self.publications[index];
        while let Some(layer) = publication.keyframes.poll_request(now) {
            self.metrics.keyframe_requests += 1;
            self.events.push_back(RoomEvent::KeyframeRequest {
                publisher: publication.publisher,
                publication: publication.id,
                layer,
            });
        }
    }
}

/// The packets one published packet becomes, one per subscriber that
/// receives its layer, made one at a time in the room's buffer: call
/// [`Fanout::poll_forward`] until it returns `None` (what is not
/// drained is not forwarded).
#[derive(Debug)]
pub struct Fanout<'a> {
    room: &'a mut Room,
    now: Instant,
    publication: usize,
    layer: u8,
    packet: PublishedRtp<'a>,
    next: usize,
}

impl Fanout<'_> {
    /// The next subscriber's packet.
    pub fn poll_forward(&mut self) -> Option<Forward<'_>> {
        let Room {
            publications,
            scratch,
            events,
            metrics,
            ..
        } = &mut *self.room;
        let publication = &mut publications[self.publication];
        let packet = self.packet;
        while let Some(subscription) = publication.subscriptions.get_mut(self.next) {
            self.next += 1;
            let mut empty = [0u8; 0];
            let payload: &mut [u8] = if publication.vp8 {
                scratch.clear();
                scratch.extend_from_slice(packet.payload);
                scratch
            } else {
                &mut empty
            };
            let before = subscription.forwarder.selector().current();
            let forwarded = subscription.forwarder.handle_packet(
                self.now,
                PublishedPacket {
                    layer: self.layer,
                    sequence: packet.sequence,
                    timestamp: packet.timestamp,
                    starts_keyframe: packet.starts_keyframe,
                    retransmission: packet.retransmission,
                    temporal_id: packet.temporal_id,
                    payload,
                },
            );
            let out = match forwarded {
                Ok(Some(out)) => out,
                Ok(None) => continue,
                Err(_) => {
                    metrics.forward_errors += 1;
                    continue;
                }
            };
            subscription.sent.record(SentPacket {
                sequence: out.sequence,
                timestamp: out.timestamp,
                layer: self.layer,
                source: packet.extended_sequence,
                vp8: out.vp8,
            });
            let bytes = packet.payload.len() as u64;
            let counters = &mut subscription.counters;
            counters.forwarded_packets += 1;
            counters.forwarded_bytes += bytes;
            metrics.forwarded_packets += 1;
            metrics.forwarded_bytes += bytes;
            if out.switched && before != Some(self.layer) {
                counters.layer_switches += 1;
                metrics.layer_switches += 1;
                events.push_back(RoomEvent::LayerSwitched {
                    subscriber: subscription.subscriber,
                    publication: publication.id,
                    layer: self.layer,
                });
            }
            return Some(Forward {
                subscriber: subscription.subscriber,
                publication: publication.id,
                sequence: out.sequence,
                timestamp: out.timestamp,
                marker: packet.marker,
                payload: if publication.vp8 { scratch } else { packet.payload },
                audio_level: packet.audio_level,
                dependency_descriptor: packet.dependency_descriptor,
                resend: false,
            });
        }
        None
    }
}
