//! The room under a virtual clock: a publisher of three VP8 simulcast
//! layers and audio, subscribers with their own estimates and tiles, and
//! what crosses to each subscriber checked packet by packet.

use super::*;
use crate::publication::LayerSpec;
use natter_rtp::payload::{Vp8Descriptor, Vp8PictureId, Vp8PictureInfo};
use std::collections::HashMap;

const A: ParticipantId = ParticipantId(1);
const B: ParticipantId = ParticipantId(2);
const C: ParticipantId = ParticipantId(3);

const FRAME: Duration = Duration::from_millis(33);

/// Packets per frame and payload bytes per packet, per layer: about
/// 100 kbit/s, 480 kbit/s and 1.1 Mbit/s at 30 frames a second.
const SHAPE: [(usize, usize); 3] = [(1, 400), (2, 1_000), (4, 1_100)];
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

pub(crate) fn camera(rid_only: bool) -> PublicationSpec {
    PublicationSpec {
        source: Source::Camera,
        clock_rate: 90_000,
        vp8: true,
        layers: ["q", "h", "f"]
            .iter()
            .zip(SIZES)
            .enumerate()
            .map(|(i, (rid, (width, height)))| LayerSpec {
                rid: Some((*rid).to_owned()),
                ssrc: (!rid_only).then_some(100 + i as u32),
                rtx_ssrc: (!rid_only).then_some(200 + i as u32),
                width,
                height,
            })
            .collect(),
    }
}

pub(crate) fn microphone() -> PublicationSpec {
    PublicationSpec::microphone(Some(300))
}

/// One packet as a publisher sends it.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub ssrc: u32,
    pub rid: &'static str,
    pub sequence: u64,
    pub timestamp: u32,
    pub keyframe: bool,
    pub marker: bool,
    pub level: Option<u8>,
    pub payload: Vec<u8>,
}

impl Sent {
    pub fn rtp(&self) -> PublishedRtp<'_> {
        PublishedRtp {
            ssrc: self.ssrc,
            rid: Some(self.rid),
            sequence: self.sequence as u16,
            extended_sequence: self.sequence,
            timestamp: self.timestamp,
            marker: self.marker,
            retransmission: false,
            starts_keyframe: self.keyframe,
            temporal_id: None,
            audio_level: self.level.map(|level| AudioLevel {
                voice_activity: true,
                level,
            }),
            payload: &self.payload,
            dependency_descriptor: None,
        }
    }
}

/// A publisher of three VP8 layers (each with its own sequence,
/// timestamp and PictureID spaces, near their wraps) that makes a
/// keyframe when asked and stops a layer when paused.
pub(crate) struct Publisher {
    next: [(u64, u32, u16); 3],
    keyframe_due: [bool; 3],
    pub paused: [bool; 3],
    audio: (u64, u32),
    pub level: u8,
}

impl Publisher {
    pub fn new() -> Self {
        Self::starting_at([65_530, 1_000, 40_000], 32_760)
    }

    /// Layers whose extended sequence numbers start at `sequences`.
    pub fn starting_at(sequences: [u64; 3], picture_id: u16) -> Self {
        let [q, h, f] = sequences;
        Self {
            next: [(q, 1, picture_id), (h, 4_000_000_000, 5), (f, 77, 900)],
            keyframe_due: [false; 3],
            paused: [false; 3],
            audio: (65_000, 0),
            level: 127,
        }
    }

    pub fn handle(&mut self, event: &RoomEvent) {
        match *event {
            RoomEvent::KeyframeRequest { layer, .. } => self.keyframe_due[usize::from(layer)] = true,
            RoomEvent::LayerPaused { layer, .. } => self.paused[usize::from(layer)] = true,
            RoomEvent::LayerResumed { layer, .. } => {
                self.paused[usize::from(layer)] = false;
                self.keyframe_due[usize::from(layer)] = true;
            }
            _ => {}
        }
    }

    /// One frame of every layer that is not paused, and one audio packet.
    pub fn frame(&mut self) -> Vec<Sent> {
        let mut out = Vec::new();
        for layer in 0..3 {
            if self.paused[layer] {
                continue;
            }
            let keyframe = std::mem::take(&mut self.keyframe_due[layer]);
            let (sequence, timestamp, picture_id) = &mut self.next[layer];
            let (packets, bytes) = SHAPE[layer];
            for i in 0..packets {
                let descriptor = Vp8Descriptor {
                    picture: Vp8PictureInfo {
                        picture_id: Some(Vp8PictureId::Long(*picture_id)),
                        tl0_pic_idx: Some(*picture_id as u8),
                        ..Default::default()
                    },
                    start_of_partition: i == 0,
                    partition_index: 0,
                };
                let mut payload = vec![layer as u8; bytes];
                descriptor.encode(&mut payload).unwrap();
                if keyframe && i == 0 {
                    // RFC 6386 §9.1: tag (P = 0), start code, size.
                    let (width, height) = SIZES[layer];
                    let at = descriptor.encoded_len();
                    payload[at..at + 6].copy_from_slice(&[0x50, 0x2D, 0x01, 0x9D, 0x01, 0x2A]);
                    payload[at + 6..at + 8].copy_from_slice(&width.to_le_bytes());
                    payload[at + 8..at + 10].copy_from_slice(&height.to_le_bytes());
                }
                out.push(Sent {
                    ssrc: 100 + layer as u32,
                    rid: ["q", "h", "f"][layer],
                    sequence: *sequence,
                    timestamp: *timestamp,
                    keyframe: keyframe && i == 0,
                    marker: i + 1 == packets,
                    level: None,
                    payload,
                });
                *sequence += 1;
            }
            *timestamp = timestamp.wrapping_add(3_000);
            *picture_id = (*picture_id + 1) & 0x7FFF;
        }
        let (sequence, timestamp) = &mut self.audio;
        out.push(Sent {
            ssrc: 300,
            rid: "",
            sequence: *sequence,
            timestamp: *timestamp,
            keyframe: false,
            marker: false,
            level: Some(self.level),
            payload: vec![0xAA; 80],
        });
        *sequence += 1;
        *timestamp = timestamp.wrapping_add(1_584);
        out
    }
}

/// What one subscriber received of one publication.
#[derive(Default)]
struct Track {
    packets: Vec<(u16, u32, Vec<u8>, bool)>,
}

struct Harness {
    room: Room,
    now: Instant,
    publisher: Publisher,
    events: Vec<RoomEvent>,
    tracks: HashMap<(ParticipantId, PublicationId), Track>,
    camera: PublicationId,
    microphone: PublicationId,
}

impl Harness {
    /// A publishes a camera and a microphone; B and C subscribe.
    fn new(config: RoomConfig) -> Self {
        Self::with(config, Publisher::new())
    }

    fn with(config: RoomConfig, publisher: Publisher) -> Self {
        Self::publishing(config, publisher, &camera(false))
    }

    /// A publishes `spec` as its camera.
    fn publishing(config: RoomConfig, publisher: Publisher, spec: &PublicationSpec) -> Self {
        let now = Instant::now();
        let mut room = Room::new(config);
        for id in [A, B, C] {
            room.add_participant(now, id).unwrap();
        }
        let camera = room.publish(now, A, spec).unwrap();
        let microphone = room.publish(now, A, &microphone()).unwrap();
        let mut harness = Self {
            room,
            now,
            publisher,
            events: Vec::new(),
            tracks: HashMap::new(),
            camera,
            microphone,
        };
        harness.drain();
        harness
    }

    fn drain(&mut self) {
        while let Some(forward) = self.room.poll_resend() {
            record(&mut self.tracks, &forward);
        }
        while let Some(event) = self.room.poll_event() {
            self.publisher.handle(&event);
            self.events.push(event);
        }
    }

    fn deliver(&mut self, sent: &Sent) {
        let mut fanout = self.room.on_rtp(self.now, A, sent.rtp()).unwrap();
        while let Some(forward) = fanout.poll_forward() {
            record(&mut self.tracks, &forward);
        }
    }

    /// `frames` frames, the timers run between them.
    fn run(&mut self, frames: usize, mut lose: impl FnMut(&Sent) -> bool) {
        for _ in 0..frames {
            for sent in self.publisher.frame() {
                if !lose(&sent) {
                    self.deliver(&sent);
                }
            }
            self.drain();
            self.now += FRAME;
            while let Some(due) = self.room.poll_timeout().filter(|due| *due <= self.now) {
                self.room.handle_timeout(due);
            }
            self.drain();
        }
    }

    fn count(&self, wanted: impl Fn(&RoomEvent) -> bool) -> usize {
        self.events.iter().filter(|e| wanted(e)).count()
    }

    fn track(&self, subscriber: ParticipantId, publication: PublicationId) -> &[(u16, u32, Vec<u8>, bool)] {
        &self.tracks[&(subscriber, publication)].packets
    }
}

fn record(tracks: &mut HashMap<(ParticipantId, PublicationId), Track>, forward: &Forward<'_>) {
    let track = tracks.entry((forward.subscriber, forward.publication)).or_default();
    let packet = (
        forward.sequence,
        forward.timestamp,
        forward.payload.to_vec(),
        forward.resend,
    );
    track.packets.push(packet);
}

fn vp8_picture_id(payload: &[u8]) -> u16 {
    match Vp8Descriptor::parse(payload).unwrap().0.picture.picture_id.unwrap() {
        Vp8PictureId::Long(id) => id,
        Vp8PictureId::Short(id) => u16::from(id),
    }
}

/// Each received track is one stream: sequence numbers up by one, the
/// VP8 PictureID never going back by more than one picture.
fn assert_continuous(track: &[(u16, u32, Vec<u8>, bool)]) {
    let originals: Vec<_> = track.iter().filter(|p| !p.3).collect();
    for pair in originals.windows(2) {
        assert_eq!(pair[1].0, pair[0].0.wrapping_add(1), "sequence after {}", pair[0].0);
        let advance = pair[1].1.wrapping_sub(pair[0].1);
        assert!(advance < 10_000, "timestamp advance {advance}");
    }
}

#[test]
fn everyone_is_subscribed_up_to_the_cap() {
    let now = Instant::now();
    let config = RoomConfig {
        max_subscriptions: 1,
        ..RoomConfig::default()
    };
    let mut room = Room::new(config);
    room.add_participant(now, A).unwrap();
    room.add_participant(now, B).unwrap();
    assert_eq!(room.add_participant(now, B), Err(RoomError::DuplicateParticipant(B)));
    let camera = room.publish(now, A, &camera(false)).unwrap();
    let microphone = room.publish(now, A, &microphone()).unwrap();
    // B took the camera; the microphone came over the cap.
    assert!(room.subscription(B, camera).is_some());
    assert!(room.subscription(B, microphone).is_none());
    assert!(room.subscription(A, camera).is_none());
    assert_eq!(room.subscribe(now, B, microphone), Err(RoomError::SubscriptionCap(B)));
    assert_eq!(room.subscribe(now, A, camera), Err(RoomError::OwnPublication(A)));
    // A joiner takes audio first.
    room.add_participant(now, C).unwrap();
    assert!(room.subscription(C, microphone).is_some());
    // The camera goes: B takes the microphone in its place.
    room.unpublish(now, camera).unwrap();
    assert!(room.subscription(B, microphone).is_some());
    let events: Vec<_> = std::iter::from_fn(|| room.poll_event()).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, RoomEvent::PublicationAdded { .. }))
            .count(),
        2
    );
    assert!(events.contains(&RoomEvent::Unsubscribed {
        subscriber: B,
        publication: camera
    }));
    assert!(events.contains(&RoomEvent::PublicationRemoved {
        publisher: A,
        publication: camera
    }));
    // A leaves: its microphone goes with it.
    room.remove_participant(now, A).unwrap();
    assert!(room.publications().is_empty());
    assert_eq!(room.participant(B).unwrap().subscriptions(), 0);
}

#[test]
fn layers_follow_estimates_and_tiles_with_aggregated_keyframe_requests() {
    let mut h = Harness::new(RoomConfig::default());
    let big = TileSize {
        width: 1280,
        height: 720,
    };
    h.room.set_tile_size(h.now, B, h.camera, big).unwrap();
    h.room.set_tile_size(h.now, C, h.camera, big).unwrap();
    h.room.handle_estimate(h.now, B, 5_000_000).unwrap();
    h.room.handle_estimate(h.now, C, 300_000).unwrap();
    h.run(300, |_| false);
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(2));
    assert_eq!(h.room.subscription(C, h.camera).unwrap().layer(), Some(0));
    for subscriber in [B, C] {
        assert_continuous(h.track(subscriber, h.camera));
        assert_continuous(h.track(subscriber, h.microphone));
    }
    // B's PictureIDs are one sequence across its switch up.
    let pictures: Vec<u16> = h.track(B, h.camera).iter().map(|p| vp8_picture_id(&p.2)).collect();
    for pair in pictures.windows(2) {
        assert!(pair[1] == pair[0] || pair[1] == (pair[0] + 1) & 0x7FFF, "{pair:?}");
    }
    // B's tile shrinks: its layer comes down to the one that fills it.
    let small = TileSize {
        width: 320,
        height: 180,
    };
    h.room.set_tile_size(h.now, B, h.camera, small).unwrap();
    h.run(30, |_| false);
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(0));
    let switches = h.count(|e| matches!(e, RoomEvent::LayerSwitched { .. }));
    assert_eq!(u64::try_from(switches).unwrap(), h.room.metrics().layer_switches);
    assert!(h.events.contains(&RoomEvent::LayerSwitched {
        subscriber: B,
        publication: h.camera,
        layer: 2
    }));
    // Keyframe requests: a handful, not one per subscriber per frame.
    let requests = h.count(|e| matches!(e, RoomEvent::KeyframeRequest { .. }));
    assert!((2..=8).contains(&requests), "{requests} keyframe requests");
    let metrics = *h.room.metrics();
    assert!(metrics.forwarded_packets > 1_000);
    assert_eq!(metrics.unknown_ssrc, 0);
    assert_eq!(metrics.forward_errors, 0);
}

#[test]
fn layer_sizes_come_from_keyframes_and_cap_small_tiles() {
    // Browsers signal no sizes: the layers' come from their keyframes.
    let mut spec = camera(false);
    for layer in &mut spec.layers {
        (layer.width, layer.height) = (0, 0);
    }
    let mut h = Harness::publishing(RoomConfig::default(), Publisher::new(), &spec);
    let small = TileSize { width: 160, height: 90 };
    let big = TileSize {
        width: 1280,
        height: 720,
    };
    h.room.set_tile_size(h.now, B, h.camera, small).unwrap();
    h.room.set_tile_size(h.now, C, h.camera, big).unwrap();
    for subscriber in [B, C] {
        h.room.handle_estimate(h.now, subscriber, 5_000_000).unwrap();
    }
    h.run(300, |_| false);
    // The small tile gets q whatever its estimate; the big one f.
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(0));
    assert_eq!(h.room.subscription(C, h.camera).unwrap().layer(), Some(2));
    // The big tile gets what its estimate allows: h at 700 kbit/s.
    h.room.handle_estimate(h.now, C, 700_000).unwrap();
    h.run(30, |_| false);
    assert_eq!(h.room.subscription(C, h.camera).unwrap().layer(), Some(1));
    // The small tile grows: B goes up to f.
    h.room.set_tile_size(h.now, B, h.camera, big).unwrap();
    h.run(300, |_| false);
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(2));
    for subscriber in [B, C] {
        assert_continuous(h.track(subscriber, h.camera));
    }
}

#[test]
fn dynacast_pauses_layers_nobody_receives_and_resumes_them() {
    let mut h = Harness::new(RoomConfig::default());
    h.run(100, |_| false);
    // Both at the initial tile (640x360): layer 1; layer 2 unwanted.
    let paused = RoomEvent::LayerPaused {
        publisher: A,
        publication: h.camera,
        layer: 2,
    };
    assert!(h.events.contains(&paused));
    assert!(h.publisher.paused[2] && !h.publisher.paused[1]);
    assert!(h.room.publication(h.camera).unwrap().paused(2));
    // B wants the full size: layer 2 is resumed and switched to.
    let big = TileSize {
        width: 1280,
        height: 720,
    };
    h.room.handle_estimate(h.now, B, 10_000_000).unwrap();
    h.room.set_tile_size(h.now, B, h.camera, big).unwrap();
    h.run(150, |_| false);
    assert!(h.events.contains(&RoomEvent::LayerResumed {
        publisher: A,
        publication: h.camera,
        layer: 2
    }));
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(2));
    // Nobody subscribed: every layer pauses.
    h.room.unsubscribe(h.now, B, h.camera).unwrap();
    h.room.unsubscribe(h.now, C, h.camera).unwrap();
    h.run(100, |_| false);
    assert_eq!(h.publisher.paused, [true; 3]);
}

#[test]
fn a_recorded_room_keeps_every_layer_on() {
    let mut h = Harness::new(RoomConfig::default());
    let small = TileSize { width: 160, height: 90 };
    for subscriber in [B, C] {
        h.room.set_tile_size(h.now, subscriber, h.camera, small).unwrap();
    }
    h.run(120, |_| false);
    assert_eq!(h.publisher.paused, [false, true, true]);
    // Recorded: h and f come back at once, though nobody watches them.
    h.room.set_recorded(h.now, true);
    h.drain();
    assert_eq!(h.publisher.paused, [false; 3]);
    h.run(120, |_| false);
    assert_eq!(h.publisher.paused, [false; 3]);
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(0));
    // Not recorded any more: they pause again.
    h.room.set_recorded(h.now, false);
    h.run(120, |_| false);
    assert_eq!(h.publisher.paused, [false, true, true]);
}

#[test]
fn dynacast_keeps_every_layer_below_the_highest_wanted() {
    let mut h = Harness::new(RoomConfig::default());
    let small = TileSize { width: 160, height: 90 };
    let big = TileSize {
        width: 1280,
        height: 720,
    };
    // B at q, C at f: nobody receives h, but it stays on for a fall.
    h.room.set_tile_size(h.now, B, h.camera, small).unwrap();
    h.room.set_tile_size(h.now, C, h.camera, big).unwrap();
    h.room.handle_estimate(h.now, C, 10_000_000).unwrap();
    h.run(200, |_| false);
    assert_eq!(h.room.subscription(B, h.camera).unwrap().layer(), Some(0));
    assert_eq!(h.room.subscription(C, h.camera).unwrap().layer(), Some(2));
    assert_eq!(h.publisher.paused, [false; 3]);
    // C's estimate falls: h at once, no resume needed.
    h.room.handle_estimate(h.now, C, 800_000).unwrap();
    h.run(30, |_| false);
    assert_eq!(h.room.subscription(C, h.camera).unwrap().layer(), Some(1));
    assert_eq!(h.count(|e| matches!(e, RoomEvent::LayerPaused { layer: 1, .. })), 0);
    // Both small: h and f go.
    h.room.set_tile_size(h.now, C, h.camera, small).unwrap();
    h.run(120, |_| false);
    assert_eq!(h.publisher.paused, [false, true, true]);
}

#[test]
fn nacks_are_answered_from_the_cache_or_asked_upstream_once() {
    let mut h = Harness::new(RoomConfig::default());
    h.run(60, |_| false);
    let track = h.track(B, h.camera).to_vec();
    let (sequence, timestamp, payload, _) = track[track.len() - 5].clone();
    h.room.handle_nack(h.now, B, h.camera, [sequence]).unwrap();
    h.drain();
    let resent = h.track(B, h.camera).last().unwrap();
    assert_eq!(
        (resent.0, resent.1, &resent.2, resent.3),
        (sequence, timestamp, &payload, true)
    );
    assert_eq!(h.room.metrics().nacks_from_cache, 1);
    assert_eq!(h.room.subscription(B, h.camera).unwrap().counters().resent_packets, 1);
    // A packet of layer 1 lost before the SFU: both subscribers see the
    // gap and NACK it; the publisher is asked once, by its own number.
    let layer = h.room.subscription(B, h.camera).unwrap().layer().unwrap();
    let ssrc = 100 + u32::from(layer);
    let mut lost = None;
    h.run(1, |sent| {
        let first = sent.ssrc == ssrc && lost.is_none();
        if first {
            lost = Some(sent.sequence);
        }
        first
    });
    h.run(1, |_| false);
    let lost = lost.unwrap();
    for subscriber in [B, C] {
        let track: Vec<_> = h.track(subscriber, h.camera).iter().filter(|p| !p.3).collect();
        let gap = track
            .windows(2)
            .find(|pair| pair[1].0 == pair[0].0.wrapping_add(2))
            .map(|pair| pair[0].0.wrapping_add(1))
            .expect("a gap");
        h.room.handle_nack(h.now, subscriber, h.camera, [gap]).unwrap();
    }
    h.drain();
    let upstream: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, RoomEvent::NackUpstream { .. }))
        .collect();
    assert_eq!(
        upstream,
        [&RoomEvent::NackUpstream {
            publisher: A,
            publication: h.camera,
            layer,
            sequence: lost as u16
        }]
    );
    // A number from long ago, or never sent: unanswered, counted.
    h.room
        .handle_nack(h.now, B, h.camera, [sequence.wrapping_add(30_000)])
        .unwrap();
    assert_eq!(h.room.metrics().nacks_unanswered, 1);
}

/// With `cache_packets: 0` (natter serve: its connections answer NACKs
/// with RTX from their own send history) the room keeps no copy of the
/// packets, and a NACK it is handed goes to the publisher, by the
/// layer's own number, instead of being answered from a cache.
#[test]
fn without_a_cache_nacks_go_upstream() {
    let config = RoomConfig {
        cache_packets: 0,
        ..RoomConfig::default()
    };
    let mut h = Harness::new(config);
    h.run(60, |_| false);
    let camera = h.room.publication(h.camera).unwrap();
    assert!(camera.layers.iter().all(|layer| layer.cache.is_none()));
    let track = h.track(B, h.camera).to_vec();
    let (sequence, ..) = track[track.len() - 5];
    let resent_before = h.track(B, h.camera).len();
    h.room.handle_nack(h.now, B, h.camera, [sequence]).unwrap();
    h.drain();
    assert_eq!(h.track(B, h.camera).len(), resent_before, "nothing resent");
    assert_eq!(h.room.metrics().nacks_from_cache, 0);
    assert_eq!(h.room.metrics().nacks_upstream, 1);
    assert!(h.events.iter().any(|e| matches!(
        e,
        RoomEvent::NackUpstream { publisher: A, publication, .. } if *publication == h.camera
    )));
}

#[test]
fn ssrcs_are_learned_by_rid_and_unknown_ones_counted() {
    let now = Instant::now();
    let mut room = Room::new(RoomConfig::default());
    room.add_participant(now, A).unwrap();
    room.add_participant(now, B).unwrap();
    let camera = room.publish(now, A, &camera(true)).unwrap();
    let mut publisher = Publisher::new();
    let frame = publisher.frame();
    for sent in &frame[..frame.len() - 1] {
        assert!(room.on_rtp(now, A, sent.rtp()).is_ok());
    }
    assert_eq!(room.publication(camera).unwrap().ssrc(2), Some(102));
    assert_eq!(room.publication(camera).unwrap().rid(2), Some("f"));
    // The microphone was never published; B publishes nothing.
    let audio = frame.last().unwrap();
    assert!(matches!(
        room.on_rtp(now, A, audio.rtp()),
        Err(RoomError::UnknownSsrc { ssrc: 300, .. })
    ));
    assert!(room.on_rtp(now, B, frame[0].rtp()).is_err());
    assert_eq!(room.metrics().unknown_ssrc, 2);
    assert_eq!(room.participant(B).unwrap().counters().unknown_ssrc, 1);
    assert!(matches!(
        room.on_rtp(now, C, frame[0].rtp()),
        Err(RoomError::UnknownParticipant(C))
    ));
}

#[test]
fn a_flood_of_plis_and_nacks_is_limited_and_hurts_nobody_else() {
    let mut h = Harness::new(RoomConfig::default());
    h.run(60, |_| false);
    let before = h.count(|e| matches!(e, RoomEvent::KeyframeRequest { .. }));
    let resent_before = h.room.metrics().resent_packets;
    // C floods for two seconds: 100 PLIs and 2,000 NACKs every frame.
    for _ in 0..60 {
        for _ in 0..100 {
            h.room.handle_keyframe_request(h.now, C, h.camera).unwrap();
        }
        let last = h.track(C, h.camera).last().unwrap().0;
        h.room
            .handle_nack(h.now, C, h.camera, (0..2_000).map(|i| last.wrapping_sub(i % 50)))
            .unwrap();
        h.run(1, |_| false);
    }
    // B NACKs one packet: answered.
    let sequence = h.track(B, h.camera).last().unwrap().0;
    h.room.handle_nack(h.now, B, h.camera, [sequence]).unwrap();
    h.drain();
    assert!(h.track(B, h.camera).last().unwrap().3, "B's NACK answered");
    let counters = *h.room.participant(C).unwrap().counters();
    assert_eq!(counters.keyframe_requests, 6_000);
    // The bucket's burst and two seconds at its rate.
    let limits = FeedbackLimits::default();
    let admitted = counters.keyframe_requests - counters.keyframe_requests_limited;
    assert!(admitted <= u64::from(limits.keyframe_request_burst + 2 * limits.keyframe_requests_per_second + 1));
    let nacks_admitted = counters.nacks - counters.nacks_limited;
    assert!(nacks_admitted <= u64::from(limits.nack_burst + 2 * limits.nacks_per_second + 20));
    // The publisher saw at most one request per layer per interval.
    let requests = h.count(|e| matches!(e, RoomEvent::KeyframeRequest { .. })) - before;
    assert!(requests <= 5, "{requests} keyframe requests");
    assert!(h.room.metrics().resent_packets - resent_before <= nacks_admitted + 1);
    assert_eq!(h.room.participant(B).unwrap().counters().keyframe_requests_limited, 0);
    // B's stream carried on, one continuous stream.
    assert_continuous(h.track(B, h.camera));
}

#[test]
fn the_loudest_publisher_becomes_the_active_speaker() {
    let mut h = Harness::new(RoomConfig::default());
    h.publisher.level = 20;
    // Smoothing takes a few 300 ms ticks.
    h.run(60, |_| false);
    assert!(h.events.contains(&RoomEvent::ActiveSpeaker(Some(A))));
    assert_eq!(h.room.active_speaker(), Some(A));
    h.room.remove_participant(h.now, A).unwrap();
    h.drain();
    assert_eq!(h.events.last(), Some(&RoomEvent::ActiveSpeaker(None)));
}

/// Issue 13's sfu-layers failure: a subscriber whose estimate pays for
/// q only must not be given f because f's rate read low. f starts late
/// (Chromium enables it as its uplink estimate grows), nobody wants it
/// at first (B's tile is covered by h), so dynacast marks it paused at
/// its first reading; that reading, a fraction of a bucket of f spread
/// over the whole window, was frozen as f's rate. Once with a publisher
/// that stops a paused layer and once with one that does not (a browser
/// nobody tells).
#[test]
fn a_layer_that_starts_late_is_not_taken_for_cheap() {
    for honours_pause in [true, false] {
        let mut publisher = Publisher::new();
        publisher.paused[2] = true;
        let mut h = Harness::with(RoomConfig::default(), publisher);
        let big = TileSize {
            width: 1280,
            height: 720,
        };
        h.room.set_tile_size(h.now, C, h.camera, big).unwrap();
        h.room.handle_estimate(h.now, B, 10_000_000).unwrap();
        // C: two audio reserves and q with the margin, little more.
        h.room.handle_estimate(h.now, C, 320_000).unwrap();
        h.run(90, |_| false);
        assert_eq!(h.room.subscription(C, h.camera).unwrap().layer(), Some(0));
        // f starts.
        h.publisher.paused[2] = false;
        h.publisher.keyframe_due[2] = true;
        for frame in 0..300 {
            if !honours_pause {
                h.publisher.paused[2] = false;
            }
            h.run(1, |_| false);
            let subscription = h.room.subscription(C, h.camera).unwrap();
            let layers = (subscription.target_layer(), subscription.layer());
            assert_eq!(
                layers,
                (Some(0), Some(0)),
                "frame {frame} after f started (honours pause: {honours_pause})"
            );
        }
    }
}

#[test]
fn a_layer_the_publisher_does_not_send_is_not_paused() {
    let mut publisher = Publisher::new();
    publisher.paused[2] = true;
    let mut h = Harness::with(RoomConfig::default(), publisher);
    h.run(150, |_| false);
    assert!(!h.room.publication(h.camera).unwrap().paused(2));
    assert_eq!(h.count(|e| matches!(e, RoomEvent::LayerPaused { layer: 2, .. })), 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Across 16-bit wraps of every layer's numbers, layer switches and
    /// random loss before the SFU: every resend a NACK gets is the
    /// packet that went out under that number (timestamp and rewritten
    /// VP8 bytes), and every upstream NACK names a packet really lost.
    #[test]
    fn nacks_map_back_to_their_packets(
        wraps in proptest::array::uniform3(0u64..3),
        offsets in proptest::array::uniform3(0u64..400),
        picture_id in 0u16..0x8000,
        loss_per_mille in 0u64..80,
        seed in proptest::prelude::any::<u64>(),
        picks in proptest::collection::vec(0usize..120, 60..150),
    ) {
        let starts = std::array::from_fn(|i| (wraps[i] + 1) * 65_536 - offsets[i]);
        let mut h = Harness::with(RoomConfig::default(), Publisher::starting_at(starts, picture_id));
        let big = TileSize { width: 1280, height: 720 };
        h.room.set_tile_size(h.now, B, h.camera, big).unwrap();
        let mut lost = std::collections::HashSet::new();
        for (frame, pick) in picks.into_iter().enumerate() {
            // B's estimate goes up and down: switches between layers.
            let estimate = if (frame / 30) % 2 == 0 { 5_000_000 } else { 400_000 };
            h.room.handle_estimate(h.now, B, estimate).unwrap();
            h.run(1, |sent| {
                let hash = (sent.sequence ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                // Loss after the first second, once B receives.
                let lose = frame >= 30 && sent.ssrc != 300 && hash % 1_000 < loss_per_mille;
                if lose {
                    lost.insert((sent.ssrc - 100, sent.sequence as u16));
                }
                lose
            });
            let track: Vec<u16> = h.tracks.get(&(B, h.camera)).map_or(Vec::new(), |t| {
                t.packets.iter().filter(|p| !p.3).map(|p| p.0).collect()
            });
            if let Some(&last) = track.last() {
                // A number sent lately, and one that may be a gap.
                let sent = track[track.len().saturating_sub(1 + pick % 100)];
                let maybe_gap = last.wrapping_sub((pick % 20) as u16);
                h.room.handle_nack(h.now, B, h.camera, [sent, maybe_gap]).unwrap();
                h.drain();
            }
        }
        let packets = &h.tracks[&(B, h.camera)].packets;
        let mut resends = 0;
        for (i, resend) in packets.iter().enumerate().filter(|(_, p)| p.3) {
            resends += 1;
            let original = packets[..i].iter().rev().find(|p| !p.3 && p.0 == resend.0);
            let original = original.expect("a resend of a packet sent before");
            proptest::prop_assert_eq!(original.1, resend.1);
            proptest::prop_assert_eq!(&original.2, &resend.2);
        }
        proptest::prop_assert!(resends > 0);
        for event in &h.events {
            if let RoomEvent::NackUpstream { layer, sequence, .. } = *event {
                proptest::prop_assert!(lost.contains(&(u32::from(layer), sequence)), "{:?}", event);
            }
        }
    }
}

#[test]
fn twelve_participants_each_receive_everyone_else() {
    let mut now = Instant::now();
    let mut room = Room::new(RoomConfig::default());
    let ids: Vec<_> = (0..12).map(ParticipantId).collect();
    let mut publishers = Vec::new();
    for &id in &ids {
        room.add_participant(now, id).unwrap();
        room.publish(now, id, &camera(false)).unwrap();
        room.publish(now, id, &microphone()).unwrap();
        publishers.push(Publisher::new());
    }
    for &id in &ids {
        room.handle_estimate(now, id, 3_000_000).unwrap();
    }
    let mut tracks: HashMap<(ParticipantId, PublicationId), Track> = HashMap::new();
    for _ in 0..150 {
        for (publisher, &id) in publishers.iter_mut().zip(&ids) {
            for sent in publisher.frame() {
                let mut fanout = room.on_rtp(now, id, sent.rtp()).unwrap();
                while let Some(forward) = fanout.poll_forward() {
                    record(&mut tracks, &forward);
                }
            }
        }
        now += FRAME;
        while let Some(due) = room.poll_timeout().filter(|due| *due <= now) {
            room.handle_timeout(due);
        }
        while let Some(event) = room.poll_event() {
            if let RoomEvent::KeyframeRequest { publisher, .. }
            | RoomEvent::LayerPaused { publisher, .. }
            | RoomEvent::LayerResumed { publisher, .. } = event
            {
                publishers[publisher.0 as usize].handle(&event);
            }
        }
    }
    // 11 cameras and 11 microphones each, every one a continuous stream.
    for publication in room.publications() {
        assert_eq!(publication.subscriptions().len(), 11);
        for subscription in publication.subscriptions() {
            assert!(subscription.layer().is_some());
            let track = &tracks[&(subscription.subscriber(), publication.id())].packets;
            assert!(track.len() > 100, "{} packets", track.len());
            assert_continuous(track);
        }
    }
    let metrics = room.metrics();
    assert_eq!((metrics.unknown_ssrc, metrics.forward_errors), (0, 0));
}

#[test]
fn a_subscriber_joining_mid_call_gets_a_keyframe_within_a_second() {
    let mut h = Harness::new(RoomConfig::default());
    h.run(90, |_| false);
    let d = ParticipantId(4);
    h.room.add_participant(h.now, d).unwrap();
    let joined = h.events.len();
    h.drain();
    assert!(h.events[joined..].contains(&RoomEvent::Subscribed {
        subscriber: d,
        publication: h.camera
    }));
    // Within a second: a keyframe asked for, and video from it on.
    h.run(30, |_| false);
    assert!(h.events[joined..]
        .iter()
        .any(|e| matches!(e, RoomEvent::KeyframeRequest { .. })));
    let track = h.track(d, h.camera);
    assert!(track.len() > 10, "{} packets", track.len());
    assert_continuous(track);
    assert_eq!(h.track(d, h.microphone).len(), 30);
}

/// Each of `n` participants with `pool` publishes a microphone (SSRC
/// `1000 + id`) and a one-layer camera (SSRC `2000 + id`).
fn pooled_room(n: u64, pool: Pool, now: Instant) -> (Room, Vec<PublicationId>, Vec<PublicationId>) {
    let mut room = Room::new(RoomConfig::default());
    let (mut mics, mut cams) = (Vec::new(), Vec::new());
    for id in 1..=n {
        room.add_participant_with_pool(now, ParticipantId(id), pool).unwrap();
    }
    for id in 1..=n {
        let mic = PublicationSpec::microphone(Some(1000 + id as u32));
        mics.push(room.publish(now, ParticipantId(id), &mic).unwrap());
        let cam = PublicationSpec {
            source: Source::Camera,
            clock_rate: 90_000,
            vp8: false,
            layers: vec![LayerSpec {
                ssrc: Some(2000 + id as u32),
                ..LayerSpec::default()
            }],
        };
        cams.push(room.publish(now, ParticipantId(id), &cam).unwrap());
    }
    (room, mics, cams)
}

/// What `subscriber` is subscribed to, of `publications`, by position.
fn receives(room: &Room, subscriber: u64, publications: &[PublicationId]) -> Vec<usize> {
    (publications.iter().enumerate())
        .filter(|(_, p)| room.subscription(ParticipantId(subscriber), **p).is_some())
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn a_subscriber_with_a_source_receives_that_publisher_only() {
    let now = Instant::now();
    let pool = Pool { audio: 1, video: 1 };
    let (mut room, mics, cams) = pooled_room(3, pool, now);
    // A player (WHEP) of participant 3 joins with one slot of each kind.
    let player = ParticipantId(9);
    room.add_participant_with_pool(now, player, pool).unwrap();
    assert_eq!(
        (receives(&room, 9, &mics), receives(&room, 9, &cams)),
        (vec![1], vec![1])
    );
    room.set_source(now, player, Some(ParticipantId(3))).unwrap();
    assert_eq!(
        (receives(&room, 9, &mics), receives(&room, 9, &cams)),
        (vec![3], vec![3])
    );
    // A publication of someone else is not given to it.
    let screen = PublicationSpec {
        source: Source::ScreenShare,
        clock_rate: 90_000,
        vp8: false,
        layers: vec![LayerSpec {
            ssrc: Some(3001),
            ..LayerSpec::default()
        }],
    };
    let other = room.publish(now, ParticipantId(1), &screen).unwrap();
    assert!(room.subscription(player, other).is_none());
    // Its source leaves: it receives nothing, not someone else.
    room.remove_participant(now, ParticipantId(3)).unwrap();
    assert_eq!((receives(&room, 9, &mics), receives(&room, 9, &cams)), (vec![], vec![]));
    // Without a source it is a pool like any other again.
    room.set_source(now, player, None).unwrap();
    assert_eq!(
        (receives(&room, 9, &mics), receives(&room, 9, &cams)),
        (vec![1], vec![1])
    );
    assert!(matches!(
        room.set_source(now, ParticipantId(42), None),
        Err(RoomError::UnknownParticipant(_))
    ));
}

#[test]
fn a_pool_receives_the_latest_speakers_then_the_first_joiners() {
    let mut now = Instant::now();
    let pool = Pool { audio: 1, video: 2 };
    let (mut room, mics, cams) = pooled_room(5, pool, now);
    // Nobody spoke: join order, never one's own.
    assert_eq!(
        (receives(&room, 1, &mics), receives(&room, 1, &cams)),
        (vec![2], vec![2, 3])
    );
    assert_eq!(
        (receives(&room, 4, &mics), receives(&room, 4, &cams)),
        (vec![1], vec![1, 2])
    );
    // Not in anyone's pool: nobody watches 4's and 5's cameras.
    for subscriber in 1..=5 {
        assert!(room.subscription(ParticipantId(subscriber), cams[3]).is_none());
        assert!(room.subscription(ParticipantId(subscriber), cams[4]).is_none());
    }
    std::iter::from_fn(|| room.poll_event()).for_each(drop);
    // 5 talks (RFC 6464 level 10, voice) until it is the active speaker.
    let mut events = Vec::new();
    for sequence in 0..100u16 {
        now += Duration::from_millis(20);
        let sent = Sent {
            ssrc: 1005,
            rid: "",
            sequence: u64::from(sequence),
            timestamp: u32::from(sequence) * 960,
            keyframe: false,
            marker: false,
            level: Some(10),
            payload: vec![0xAA; 80],
        };
        let packet = sent.rtp();
        let mut fanout = room.on_rtp(now, ParticipantId(5), packet).unwrap();
        while fanout.poll_forward().is_some() {}
        if room.poll_timeout().is_some_and(|t| t <= now) {
            room.handle_timeout(now);
        }
        events.extend(std::iter::from_fn(|| room.poll_event()));
        if events.contains(&RoomEvent::ActiveSpeaker(Some(ParticipantId(5)))) {
            break;
        }
    }
    assert!(events.contains(&RoomEvent::ActiveSpeaker(Some(ParticipantId(5)))));
    // 5 first, then join order; 5's own pool is unchanged.
    assert_eq!(
        (receives(&room, 1, &mics), receives(&room, 1, &cams)),
        (vec![5], vec![2, 5])
    );
    assert_eq!(
        (receives(&room, 2, &mics), receives(&room, 2, &cams)),
        (vec![5], vec![1, 5])
    );
    assert_eq!(
        (receives(&room, 5, &mics), receives(&room, 5, &cams)),
        (vec![1], vec![1, 2])
    );
    // Each subscriber's slot is freed before it is given again.
    let of_1: Vec<_> = (events.iter())
        .filter(|e| {
            matches!(e, RoomEvent::Subscribed { subscriber, .. } | RoomEvent::Unsubscribed { subscriber, .. }
                if *subscriber == ParticipantId(1))
        })
        .collect();
    let unsubscribed = |p| RoomEvent::Unsubscribed {
        subscriber: ParticipantId(1),
        publication: p,
    };
    let subscribed = |p| RoomEvent::Subscribed {
        subscriber: ParticipantId(1),
        publication: p,
    };
    assert_eq!(
        of_1,
        [
            &unsubscribed(cams[2]),
            &unsubscribed(mics[1]),
            &subscribed(mics[4]),
            &subscribed(cams[4])
        ]
    );
    // 5 leaves: its place goes back to join order.
    room.remove_participant(now, ParticipantId(5)).unwrap();
    assert_eq!(
        (receives(&room, 1, &mics), receives(&room, 1, &cams)),
        (vec![2], vec![2, 3])
    );
    // A larger pool (renegotiated slots) takes more.
    room.set_receive_pool(now, ParticipantId(1), Pool { audio: 3, video: 3 })
        .unwrap();
    assert_eq!(
        (receives(&room, 1, &mics), receives(&room, 1, &cams)),
        (vec![2, 3, 4], vec![2, 3, 4])
    );
    assert_eq!(
        room.set_receive_pool(now, ParticipantId(5), pool),
        Err(RoomError::UnknownParticipant(ParticipantId(5)))
    );
}
