//! A recorded room in the media worker: every publication's packets,
//! which the worker receives once from its publisher, put back in
//! sequence order (natter's [`ReorderBuffer`], as frame mode does) and
//! into frames ([`Depacketizer`]: RFC 7741 VP8, RFC 7587 Opus), which go
//! to the recording's writer thread through its [`Sink`].
//!
//! Of a simulcast publication (RFC 8853) one layer is recorded, the
//! highest there is: a higher layer takes over at its keyframe (asked
//! for while it is not recorded), and a layer that sent nothing for
//! [`LAYER_GONE`] (dynacast or the publisher's encoder paused it) hands
//! over to the highest that did, from that layer's next keyframe. A
//! switch restarts the depacketizer; [`RoomTap::on_rtp`] says when to
//! ask the publisher for a keyframe (RFC 4585 §6.3.1 PLI), at most
//! every [`KEYFRAME_INTERVAL`] per layer.
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
    /// The packet starts a keyframe (natter-sfu's payload inspection).
    pub starts_keyframe: bool,
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
    /// Another layer took over: the next frame says so.
    restart: bool,
    /// When each layer was last asked for a keyframe.
    last_keyframe_request: [Option<Instant>; MAX_LAYERS],
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
            last_keyframe_request: [None; MAX_LAYERS],
            restart: false,
        }
    }

    /// Whether a keyframe request for `layer` may go now; if so, it is
    /// counted as sent.
    fn keyframe_request_due(&mut self, now: Instant, layer: usize) -> bool {
        let last = &mut self.last_keyframe_request[layer];
        let due = last.is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_INTERVAL);
        if due {
            *last = Some(now);
        }
        due
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
        if layer != track.layer {
            let live = |l: usize| track.seen[l].is_some_and(|at| now.saturating_duration_since(at) < LAYER_GONE);
            // The layer of this packet is live, so one is found.
            let best = (0..MAX_LAYERS).rev().find(|&l| live(l)).unwrap_or(layer);
            let up = layer > track.layer && packet.starts_keyframe;
            let down = !live(track.layer) && layer == best;
            if !(up || down) {
                // A higher layer than the one recorded: ask for its keyframe.
                let asked = layer > track.layer && track.keyframe_request_due(now, layer);
                return asked.then_some(layer);
            }
            let (seen, asked) = (track.seen, track.last_keyframe_request);
            *track = Track::new(packet.format, layer);
            (track.seen, track.last_keyframe_request) = (seen, asked);
            track.restart = true;
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
                            restart: std::mem::take(&mut track.restart),
                            data: frame.data.to_vec(),
                        });
                    }
                }
                Err(e) => tracing::trace!(peer = packet.peer, error = %e, "recording: payload not depacketized"),
            }
            track.reorder.recycle(held);
        }
        keyframe_needed |= track.depacketizer.awaiting_keyframe();
        let layer = track.layer;
        (keyframe_needed && track.keyframe_request_due(now, layer)).then_some(layer)
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
            starts_keyframe: false,
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
    fn a_higher_layer_takes_over_at_its_keyframe_and_a_quiet_one_hands_back() {
        let (mut tap, messages) = tap();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // RFC 7741 §4.2: S=1, PID 0; then the VP8 frame tag (RFC 6386
        // §9.1): P=1 an interframe, or P=0, the start code and 320x240.
        let inter: &[u8] = &[0x10, 0x11, 0x00, 0x00];
        let key: &[u8] = &[0x10, 0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        let vp8 = |layer: usize, sequence: u64, payload: &'static [u8]| TappedRtp {
            format: Format::Vp8,
            layer,
            marker: true,
            starts_keyframe: payload == key,
            payload,
            ..opus(1, sequence, b"")
        };
        // Layer 0 first: recorded, and it needs a keyframe.
        assert_eq!(tap.on_rtp(t0, &vp8(0, 100, inter)), Some(0));
        // Layer 2 is there: it is asked for a keyframe, at most every
        // KEYFRAME_INTERVAL.
        assert_eq!(tap.on_rtp(t0 + ms(10), &vp8(2, 500, inter)), Some(2));
        assert_eq!(tap.on_rtp(t0 + ms(20), &vp8(2, 501, inter)), None);
        // Layer 0's interframe, if the depacketizer let it through (the
        // writer starts a file at a keyframe); none of layer 2's.
        assert!(frames(&messages).iter().all(|(timestamp, _)| *timestamp == 960 * 100));
        // Its keyframe switches the recording to it.
        assert_eq!(tap.on_rtp(t0 + ms(600), &vp8(2, 502, key)), None);
        let switched: Vec<(u32, bool, Vec<u8>)> = (messages.try_iter())
            .filter_map(|m| match m {
                Message::Frame {
                    timestamp,
                    restart,
                    data,
                    ..
                } => Some((timestamp, restart, data)),
                _ => None,
            })
            .collect();
        assert_eq!(switched, [(960 * 502, true, key[1..].to_vec())], "the writer is told");
        // Layer 0 is not recorded while layer 2 lives.
        assert_eq!(tap.on_rtp(t0 + ms(620), &vp8(0, 101, key)), None);
        assert!(frames(&messages).is_empty());
        // Layer 2 quiet for LAYER_GONE: back to layer 0, from its keyframe.
        let later = t0 + ms(600) + LAYER_GONE;
        assert_eq!(tap.on_rtp(later, &vp8(0, 102, inter)), Some(0));
        assert_eq!(tap.on_rtp(later + ms(10), &vp8(0, 103, key)), None);
        let timestamps: Vec<u32> = frames(&messages).iter().map(|(t, _)| *t).collect();
        assert_eq!(timestamps, [960 * 102, 960 * 103]);
    }
}
