//! Issue 13: the room forwards without allocating once warm. A
//! publisher sends three VP8 simulcast layers and audio to five
//! subscribers on different layers; per packet the room routes, caches,
//! rewrites and fans out ([`Room::on_rtp`], [`Fanout::poll_forward`]);
//! NACKs are answered from the cache ([`Room::handle_nack`],
//! [`Room::poll_resend`]) and the timers run. A counting global
//! allocator (stats_alloc: the counting needs an `unsafe impl
//! GlobalAlloc`, which workspace lints forbid here) counts what that
//! did. The binary runs without libtest's harness (`harness = false`)
//! so that no other thread allocates while it counts: libtest's main
//! thread registers the running test in a map after spawning it, and on
//! a loaded machine that came inside the count (4 allocations, 900
//! bytes, never freed, in 8 of 100 runs).

use std::alloc::System;
use std::time::{Duration, Instant};

use natter_rtp::payload::{Vp8Descriptor, Vp8PictureId, Vp8PictureInfo};
use natter_rtp::AudioLevel;
use natter_sfu::layer::TileSize;
use natter_sfu::participant::ParticipantId;
use natter_sfu::publication::{LayerSpec, PublicationSpec, Source};
use natter_sfu::room::{PublishedRtp, Room, RoomConfig, RoomEvent};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PUBLISHER: ParticipantId = ParticipantId(0);
const FRAME: Duration = Duration::from_millis(33);
/// Packets per frame and bytes per packet, per layer.
const SHAPE: [(u64, usize); 3] = [(1, 400), (2, 1_000), (4, 1_100)];

/// The publisher's streams, written in place: nothing allocates per
/// frame.
struct Publisher {
    sequences: [u64; 4],
    timestamps: [u32; 4],
    picture_id: u16,
    payloads: [Vec<u8>; 3],
    audio: Vec<u8>,
    keyframe_due: [bool; 3],
}

/// What crossed to subscribers.
#[derive(Default)]
struct Counts {
    forwarded: u64,
    resent: u64,
    last_sequence: u16,
}

fn drain_events(room: &mut Room, publisher: &mut Publisher) {
    while let Some(event) = room.poll_event() {
        if let RoomEvent::KeyframeRequest { layer, .. } = event {
            publisher.keyframe_due[usize::from(layer)] = true;
        }
    }
}

/// One frame of every layer and one audio packet, each fanned out; a
/// NACK from subscriber 1 answered; the timers run.
fn frame(room: &mut Room, publisher: &mut Publisher, now: &mut Instant, counts: &mut Counts) {
    for (layer, &(packets, _)) in SHAPE.iter().enumerate() {
        let keyframe = std::mem::take(&mut publisher.keyframe_due[layer]);
        for i in 0..packets {
            let descriptor = Vp8Descriptor {
                picture: Vp8PictureInfo {
                    picture_id: Some(Vp8PictureId::Long(publisher.picture_id)),
                    tl0_pic_idx: Some(publisher.picture_id as u8),
                    ..Default::default()
                },
                start_of_partition: i == 0,
                partition_index: 0,
            };
            descriptor.encode(&mut publisher.payloads[layer]).unwrap();
            let sequence = publisher.sequences[layer];
            publisher.sequences[layer] += 1;
            let packet = PublishedRtp {
                ssrc: 100 + layer as u32,
                rid: None,
                sequence: sequence as u16,
                extended_sequence: sequence,
                timestamp: publisher.timestamps[layer],
                marker: i + 1 == packets,
                retransmission: false,
                starts_keyframe: keyframe && i == 0,
                temporal_id: None,
                audio_level: None,
                payload: &publisher.payloads[layer],
                dependency_descriptor: None,
            };
            let mut fanout = room.on_rtp(*now, PUBLISHER, packet).unwrap();
            while let Some(forward) = fanout.poll_forward() {
                counts.forwarded += 1;
                if forward.subscriber == ParticipantId(1) {
                    counts.last_sequence = forward.sequence;
                }
            }
        }
        publisher.timestamps[layer] = publisher.timestamps[layer].wrapping_add(3_000);
    }
    publisher.picture_id = (publisher.picture_id + 1) & 0x7FFF;
    let sequence = publisher.sequences[3];
    publisher.sequences[3] += 1;
    let audio = PublishedRtp {
        ssrc: 300,
        rid: None,
        sequence: sequence as u16,
        extended_sequence: sequence,
        timestamp: publisher.timestamps[3],
        marker: false,
        retransmission: false,
        starts_keyframe: false,
        temporal_id: None,
        audio_level: Some(AudioLevel {
            voice_activity: true,
            level: 30,
        }),
        payload: &publisher.audio,
        dependency_descriptor: None,
    };
    publisher.timestamps[3] = publisher.timestamps[3].wrapping_add(1_584);
    let mut fanout = room.on_rtp(*now, PUBLISHER, audio).unwrap();
    while fanout.poll_forward().is_some() {
        counts.forwarded += 1;
    }
    // Subscriber 1 lost two packets of the camera a few back.
    let lost = [
        counts.last_sequence.wrapping_sub(3),
        counts.last_sequence.wrapping_sub(5),
    ];
    room.handle_nack(*now, ParticipantId(1), natter_sfu::publication::PublicationId(0), lost)
        .unwrap();
    while room.poll_resend().is_some() {
        counts.resent += 1;
    }
    drain_events(room, publisher);
    *now += FRAME;
    while let Some(due) = room.poll_timeout().filter(|due| *due <= *now) {
        room.handle_timeout(due);
    }
    drain_events(room, publisher);
}

fn main() {
    forwarding_allocates_nothing_once_warm();
    println!("forwarding_allocates_nothing_once_warm ... ok");
}

fn forwarding_allocates_nothing_once_warm() {
    let mut now = Instant::now();
    let mut room = Room::new(RoomConfig::default());
    for id in 0..6 {
        room.add_participant(now, ParticipantId(id)).unwrap();
    }
    let sizes = [(320, 180), (640, 360), (1280, 720)];
    let camera = PublicationSpec {
        source: Source::Camera,
        clock_rate: 90_000,
        vp8: true,
        layers: (0..3)
            .map(|i| LayerSpec {
                rid: Some(["q", "h", "f"][i].to_owned()),
                ssrc: Some(100 + i as u32),
                rtx_ssrc: Some(200 + i as u32),
                width: sizes[i].0,
                height: sizes[i].1,
            })
            .collect(),
    };
    let microphone = PublicationSpec::microphone(Some(300));
    let video = room.publish(now, PUBLISHER, &camera).unwrap();
    room.publish(now, PUBLISHER, &microphone).unwrap();
    // Subscribers on every layer: estimates and tiles differ.
    for (id, estimate, (width, height)) in [
        (1, 5_000_000, (1280, 720)),
        (2, 5_000_000, (640, 360)),
        (3, 300_000, (1280, 720)),
        (4, 2_000_000, (1280, 720)),
        (5, 800_000, (320, 180)),
    ] {
        let subscriber = ParticipantId(id);
        room.handle_estimate(now, subscriber, estimate).unwrap();
        room.set_tile_size(now, subscriber, video, TileSize { width, height })
            .unwrap();
    }
    let mut publisher = Publisher {
        sequences: [65_000, 1_000, 30_000, 7],
        timestamps: [0, 1 << 31, u32::MAX - 50_000, 0],
        picture_id: 32_700,
        payloads: SHAPE.map(|(_, bytes)| vec![0x55; bytes]),
        audio: vec![0xAA; 80],
        keyframe_due: [true; 3],
    };
    let mut counts = Counts::default();
    // Warm: layers chosen and switched to, caches filled, queues grown.
    for _ in 0..600 {
        frame(&mut room, &mut publisher, &mut now, &mut counts);
    }
    let layers: Vec<_> = (1..6)
        .map(|id| room.subscription(ParticipantId(id), video).unwrap().layer())
        .collect();
    assert!(layers.contains(&Some(0)) && layers.contains(&Some(2)), "{layers:?}");
    let before = counts.forwarded;
    let resent_before = counts.resent;

    let region = Region::new(GLOBAL);
    for _ in 0..900 {
        frame(&mut room, &mut publisher, &mut now, &mut counts);
    }
    let stats = region.change();

    let forwarded = counts.forwarded - before;
    assert!(forwarded > 900 * 5, "{forwarded} forwarded");
    assert!(counts.resent - resent_before > 900, "NACKs answered");
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "{stats:?} over {forwarded} forwarded packets"
    );
}
