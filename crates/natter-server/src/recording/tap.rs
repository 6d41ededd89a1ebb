//! A recorded room in the media worker: every publication's packets,
//! which the worker receives once from its publisher, put back in
//! sequence order (natter's [`ReorderBuffer`], as frame mode does) and
//! into frames ([`Depacketizer`]: RFC 7741 VP8, RFC 7587 Opus), which go
//! to the recording's writer thread through its [`Sink`].
//!
//! Of a simulcast publication (RFC 8853) one layer is recorded: the
//! highest that sent a packet within [`LAYER_GONE`], so a layer that
//! dynacast or the publisher's encoder paused hands over to the one
//! below, and back once it returns. A switch restarts the depacketizer,
//! which waits for a keyframe of the new layer; [`RoomTap::on_rtp`]
//! says when to ask the publisher for one (RFC 4585 §6.3.1 PLI), at
//! most every [`KEYFRAME_INTERVAL`].
//!
//! Packets are copied into reused buffers; each frame is copied once
//! more, into the message that carries it to the writer thread.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use natter::media::{Depacketizer, Format, ReorderBuffer};
use natter_rtp::payload::RtpPayload;
use natter_sfu::participant::ParticipantId;
use natter_sfu::publication::MAX_LAYERS;

use super::{Message, Sink};

/// A simulcast layer with no packet for this long is not recorded.
pub const LAYER_GONE: Duration = Duration::from_millis(1000);
/// At most one keyframe request per recorded track in this time.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);
/// How long a missing packet holds back the ones after it: time for a
/// retransmission (the worker's connection NACKs, RFC 4585 §6.2.1).
const VIDEO_REORDER_WAIT: Duration = Duration::from_millis(150);
const AUDIO_REORDER_WAIT: Duration = Duration::from_millis(40);
/// Packets held at most per track.
const REORDER_PACKETS: usize = 512;
/// Bytes before the payload in a held packet: RTP timestamp, marker.
const HELD_HEADER: usize = 5;

/// One RTP packet of a publication, as the worker read it.
#[derive(Clone, Copy, Debug)]
pub struct TappedRtp<'a> {
    pub publisher: ParticipantId,
    /// The publisher's signaling id.
    pub peer: &'a str,
    /// The media section it came on (RFC 8843 §15 mid).
    pub mid: &'a str,
    pub format: Format,
    /// The simulcast layer (its RID's place in the offer), 0 without.
    pub layer: usize,
    /// RFC 3550 §A.1: the sequence number extended to 64 bits.
    pub extended_sequence: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
}

/// One recorded publication.
struct Track {
    format: Format,
    /// The layer recorded.
    layer: usize,
    /// When each layer last sent a packet.
    seen: [Option<Instant>; MAX_LAYERS],
    reorder: ReorderBuffer,
    depacketizer: Depacketizer,
    last_keyframe_request: Option<Instant>,
}

impl Track {
    fn new(format: Format, layer: usize) -> Self {
        let wait = if format.is_video() {
            VIDEO_REORDER_WAIT
        } else {
            AUDIO_REORDER_WAIT
        };
        Track {
            format,
            layer,
            seen: [None; MAX_LAYERS],
            reorder: ReorderBuffer::new(wait, REORDER_PACKETS),
            depacketizer: Depacketizer::new(format),
            last_keyframe_request: None,
        }
    }
}

/// A room being recorded, as its media worker sees it.
///
/// - Input: [`RoomTap::on_rtp`] per published packet,
///   [`RoomTap::speaker`] when the active speaker changes,
///   [`RoomTap::left`] when a participant leaves.
/// - Output: frames, speakers and departures to the [`Sink`]; a
///   keyframe request to make is `on_rtp`'s result.
pub struct RoomTap {
    sink: Sink,
    /// Each publisher's tracks by mid.
    tracks: HashMap<ParticipantId, Vec<(String, Track)>>,
    /// A held packet being written (kept, so a warm tap allocates only frames).
    held: Vec<u8>,
}

impl RoomTap {
    pub fn new(sink: Sink) -> Self {
        RoomTap {
            sink,
            tracks: HashMap::new(),
            held: Vec::new(),
        }
    }

    /// Takes one published packet; `Some(layer)` when the publisher
    /// should be asked for a keyframe of that layer.
    pub fn on_rtp(&mut self, now: Instant, packet: &TappedRtp<'_>) -> Option<usize> {
        let layer = packet.layer.min(MAX_LAYERS - 1);
        let tracks = self.tracks.entry(packet.publisher).or_default();
        let at = match tracks.iter().position(|(mid, _)| mid == packet.mid) {
            Some(at) => at,
            None => {
                tracks.push((packet.mid.to_owned(), Track::new(packet.format, layer)));
                tracks.len() - 1
            }
        };
        let track = &mut tracks[at].1;
        if track.format != packet.format {
            *track = Track::new(packet.format, layer);
        }
        track.seen[layer] = Some(now);
        let live = |seen: &Option<Instant>| seen.is_some_and(|at| now.saturating_duration_since(at) < LAYER_GONE);
        // The layer of this packet is live, so one is found.
        let best = (0..MAX_LAYERS).rev().find(|&l| live(&track.seen[l])).unwrap_or(layer);
        if best != track.layer {
            let seen = track.seen;
            *track = Track::new(packet.format, best);
            track.seen = seen;
        }
        if layer != track.layer {
            return None;
        }
        self.held.clear();
        self.held.extend_from_slice(&packet.timestamp.to_be_bytes());
        self.held.push(u8::from(packet.marker));
        self.held.extend_from_slice(packet.payload);
        track.reorder.push(now, packet.extended_sequence, &self.held);
        let mut keyframe_needed = false;
        while let Some((sequence, held)) = track.reorder.pop(now) {
            let Some((header, payload)) = held.split_first_chunk::<HELD_HEADER>() else {
                track.reorder.recycle(held);
                continue;
            };
            let timestamp = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let rtp = RtpPayload {
                // The low 16 bits are the packet's own number.
                sequence_number: sequence as u16,
                timestamp,
                marker: header[4] != 0,
                payload,
            };
            match track.depacketizer.push(rtp) {
                Ok(out) => {
                    keyframe_needed |= out.keyframe_needed;
                    if let Some(frame) = out.frame {
                        self.sink.send(Message::Frame {
                            peer: packet.peer.to_owned(),
                            received: now,
                            format: track.format,
                            timestamp: frame.timestamp,
                            keyframe: frame.keyframe,
                            size: frame.size,
                            data: frame.data.to_vec(),
                        });
                    }
                }
                Err(e) => tracing::trace!(peer = packet.peer, error = %e, "recording: payload not depacketized"),
            }
            track.reorder.recycle(held);
        }
        keyframe_needed |= track.depacketizer.awaiting_keyframe();
        let due = (track.last_keyframe_request).is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_INTERVAL);
        (keyframe_needed && due).then(|| {
            track.last_keyframe_request = Some(now);
            track.layer
        })
    }

    /// `peer` is the active speaker from `now`, or nobody.
    pub fn speaker(&self, now: Instant, peer: Option<&str>) {
        self.sink.send(Message::Speaker {
            at: now,
            peer: peer.map(str::to_owned),
        });
    }

    /// Participant `publisher` (`peer`) left: its tracks end, its file is finished.
    pub fn left(&mut self, publisher: ParticipantId, peer: &str) {
        self.tracks.remove(&publisher);
        self.sink.send(Message::Left { peer: peer.to_owned() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tap whose writer end is `messages`.
    fn tap() -> (RoomTap, std::sync::mpsc::Receiver<Message>) {
        let (queue, messages) = std::sync::mpsc::sync_channel(64);
        let sink = Sink {
            queue,
            lost: Default::default(),
        };
        (RoomTap::new(sink), messages)
    }

    /// An Opus packet (RFC 7587: one packet, one frame).
    fn opus<'a>(publisher: u64, sequence: u64, payload: &'a [u8]) -> TappedRtp<'a> {
        TappedRtp {
            publisher: ParticipantId(publisher),
            peer: "p1",
            mid: "0",
            format: Format::Opus,
            layer: 0,
            extended_sequence: sequence,
            timestamp: 960 * sequence as u32,
            marker: false,
            payload,
        }
    }

    fn frames(messages: &std::sync::mpsc::Receiver<Message>) -> Vec<(u32, Vec<u8>)> {
        messages
            .try_iter()
            .filter_map(|m| match m {
                Message::Frame { timestamp, data, .. } => Some((timestamp, data)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn packets_out_of_order_become_frames_in_order() {
        let (mut tap, messages) = tap();
        let t0 = Instant::now();
        assert_eq!(tap.on_rtp(t0, &opus(1, 10, b"a")), None);
        assert_eq!(tap.on_rtp(t0, &opus(1, 12, b"c")), None);
        assert_eq!(frames(&messages), [(9600, b"a".to_vec())]);
        assert_eq!(tap.on_rtp(t0, &opus(1, 11, b"b")), None);
        assert_eq!(frames(&messages), [(10560, b"b".to_vec()), (11520, b"c".to_vec())]);
    }

    #[test]
    fn the_highest_live_simulcast_layer_is_recorded_and_a_keyframe_asked_for() {
        let (mut tap, messages) = tap();
        let t0 = Instant::now();
        let vp8 = |layer: usize, sequence: u64| TappedRtp {
            format: Format::Vp8,
            layer,
            // RFC 7741 §4.2: S=1, PID 0; an interframe (P bit set).
            payload: &[0x10, 0x01, 0x00, 0x00],
            marker: true,
            ..opus(1, sequence, b"")
        };
        // Layer 0 first: recorded, and it needs a keyframe.
        assert_eq!(tap.on_rtp(t0, &vp8(0, 100)), Some(0));
        // Layer 2 appears: recorded instead, and asked for at once.
        assert_eq!(tap.on_rtp(t0 + Duration::from_millis(10), &vp8(2, 500)), Some(2));
        let before = frames(&messages).len();
        // Layer 0 is ignored while layer 2 lives.
        assert_eq!(tap.on_rtp(t0 + Duration::from_millis(20), &vp8(0, 101)), None);
        assert!(
            frames(&messages).is_empty(),
            "{before} frames before, none of layer 0 now"
        );
        // Asked at most every KEYFRAME_INTERVAL.
        assert_eq!(tap.on_rtp(t0 + Duration::from_millis(30), &vp8(2, 501)), None);
        // Layer 2 silent for LAYER_GONE: back to layer 0.
        let later = t0 + Duration::from_millis(30) + LAYER_GONE;
        assert_eq!(tap.on_rtp(later, &vp8(0, 102)), Some(0));
    }
}
