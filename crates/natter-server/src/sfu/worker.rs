//! The media worker's state: its [`Endpoint`], its rooms, and who is
//! who. I/O-free like the cores it drives: [`crate::sfu`]'s loop hands
//! it inputs, datagrams and the time, and sends what
//! [`Worker::drain`] gives.
//!
//! - Input: [`Worker::handle_input`] (signaling), [`Worker::handle_datagram`],
//!   [`Worker::handle_timeout`].
//! - Output, after every input: [`Worker::drain`] (datagrams; replies go
//!   to signaling's channel as they come), then [`Worker::poll_timeout`].
//!
//! A participant's connection is answered with a send track on every
//! section the offer lets us send on (the receive slots); a section the
//! participant sends on becomes a publication of the room at its first
//! packet (its SSRC learned from it, or its simulcast layers from the
//! offer's RIDs). Each participant's slots of each kind are its receive
//! pool: the room subscribes it to the publications of the latest
//! active speakers, then the first joiners, that fit
//! ([`natter_sfu::last_n`]), and re-chooses when the speaker changes; a
//! subscription takes a free slot of its kind (one that lost its
//! publication first) and the subscriber is told by a `track` message.
//! Each published packet is copied once out of the
//! publisher's connection, then [`Room::on_rtp`]'s fanout rewrites it
//! for each subscriber and it is written on that subscriber's slot.
//!
//! The connection's data channel labelled `relay` is the room's
//! [`Relay`]: each message on it goes to everyone else's (or the one it
//! names), in natter-sfu's envelope. A recipient whose queue is over
//! the relay's high water mark pauses the sender's data channels
//! ([`PeerConnection::pause_data_channels`]) until it drains, unless it
//! stalled.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::congestion::CongestionConfig;
use natter::endpoint::{ConnectionHandle, Endpoint};
use natter::jsep::codec::default_video_codecs;
use natter::peer::{
    DataChannelId, Description, Direction, Format, MediaKind, Message, OutgoingRtp, PeerConnectionState, SdpType,
    TransceiverId,
};
use natter::{PeerConfig, PeerConnection, PeerError, PeerEvent};
use natter_sfu::last_n::Pool;
use natter_sfu::layer::TileSize;
use natter_sfu::participant::ParticipantId;
use natter_sfu::publication::{LayerSpec, PublicationId, PublicationSpec, Source};
use natter_sfu::relay::{Relay, RelayConfig, RelayCounters, Route, LABEL as RELAY_LABEL};
use natter_sfu::rewrite::Rewritten;
use natter_sfu::room::{Forward, PublishedRtp, Room, RoomConfig, RoomEvent, RoomMetrics};
use natter_signaling::SfuInput;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::recording::tap::{RoomTap, TappedRtp};

/// A message of the SFU for one participant's signaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub peer: String,
    pub signal: Signal,
}

/// What the SFU tells a participant (docs/signaling.md, "SFU rooms").
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Our answer to its offer.
    Answer(String),
    /// One of our ICE candidates; `Value::Null` for end-of-candidates.
    Candidate(Value),
    /// Section `mid` now carries `peer`'s track, or nothing.
    Track {
        mid: String,
        peer: Option<String>,
        kind: &'static str,
    },
    /// `peer` is the room's active speaker now, or nobody.
    Speaker(Option<String>),
    /// Dynacast: of the simulcast layers the participant sends on
    /// section `mid`, only the RIDs in `active` are received by anyone;
    /// it should stop encoding the others.
    Layers { mid: String, active: Vec<String> },
    /// Its offer was refused.
    Refused(String),
    /// Its connection failed: ICE consent expired (the client went away
    /// without a word, RFC 7675 §5.1) or DTLS failed. Its participation
    /// should end; the worker frees the connection at `Left`.
    Closed,
}

/// A section we send on: it carries one subscription at a time.
struct Slot {
    transceiver: TransceiverId,
    mid: String,
    kind: MediaKind,
    publication: Option<PublicationId>,
    /// The size the subscriber renders this section at (its `tile`
    /// message), kept for the publications the slot carries next.
    tile: Option<TileSize>,
    /// The last packet written on it and when: the next publication it
    /// carries continues its numbers (one SSRC, RFC 3550 §5.1).
    last: Option<(Rewritten, Instant)>,
}

/// One participant: its connection, what it publishes, its slots.
struct Member {
    peer: String,
    handle: ConnectionHandle,
    /// Simulcast RIDs by mid, from its latest offer.
    rids: HashMap<String, Vec<String>>,
    published: Vec<(TransceiverId, PublicationId)>,
    slots: Vec<Slot>,
    /// Its `relay` data channel, once it opened one.
    relay: Option<DataChannelId>,
}

/// A room's media: the sans-IO room and its members.
struct MediaRoom {
    room: Room,
    relay: Relay,
    members: HashMap<ParticipantId, Member>,
    by_peer: HashMap<String, ParticipantId>,
    /// While the room is recorded (kept while empty).
    recording: Option<RoomTap>,
}

impl MediaRoom {
    fn new(relay_stall: Duration) -> Self {
        MediaRoom {
            // Subscribers' NACKs are answered by their connections'
            // RTX (natter's send history), so the room caches nothing.
            room: Room::new(RoomConfig {
                cache_packets: 0,
                ..RoomConfig::default()
            }),
            relay: Relay::new(RelayConfig {
                stall_timeout: relay_stall,
                ..RelayConfig::default()
            }),
            members: HashMap::new(),
            by_peer: HashMap::new(),
            recording: None,
        }
    }
}

/// The fields of the packet being forwarded, out of the publisher's
/// connection (buffers kept, so a warm worker allocates nothing).
#[derive(Default)]
struct Received {
    transceiver: Option<TransceiverId>,
    format: Option<Format>,
    ssrc: u32,
    rid: Option<()>,
    rid_text: String,
    mid: String,
    sequence: u16,
    extended_sequence: u64,
    timestamp: u32,
    marker: bool,
    retransmission: bool,
    starts_keyframe: bool,
    temporal_id: Option<u8>,
    audio_level: Option<natter_rtp::AudioLevel>,
    payload: Vec<u8>,
    descriptor: Option<()>,
    descriptor_bytes: Vec<u8>,
}

/// Counters of what the worker could not do, for logs and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerCounters {
    /// Forwarded packets a subscriber's connection refused (not
    /// connected yet, no slot for the publication).
    pub write_failures: u64,
    /// Subscriptions that found no free slot of their kind.
    pub no_slot: u64,
}

/// NACKs over the worker's connections, those gone included: what
/// subscribers asked (RFC 4585 §6.2.1) and how the connections' send
/// history (natter's RTX, RFC 4588) answered, and what they asked of
/// publishers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NackTotals {
    /// NACK packets received.
    pub received: u64,
    /// Packets resent as RTX.
    pub retransmissions: u64,
    /// NACKed packets not resent (repaired less than a round trip ago,
    /// or repairs over their share of the target bitrate).
    pub repairs_held: u64,
    /// NACKed packets not resent because the send history no longer
    /// held them (or never did): one lookup each, nothing else.
    pub missed: u64,
    /// NACK packets sent to publishers.
    pub sent: u64,
}

impl NackTotals {
    fn add(&mut self, stats: &natter::peer::PeerStats) {
        for (_, sender) in &stats.senders {
            self.received += sender.counters.nack_count;
            self.retransmissions += sender.counters.retransmitted_packets_sent;
        }
        self.sent += (stats.receivers.iter()).map(|(_, r)| r.nack_count).sum::<u64>();
        self.repairs_held += stats.media.repairs_held;
        self.missed += stats.media.repairs_missed;
    }
}

/// One room as the worker last published it for `/metrics`.
#[derive(Debug, Default)]
pub struct RoomSample {
    pub room: String,
    pub participants: u64,
    pub metrics: RoomMetrics,
    /// Each participant's peer id and its estimate (bits per second):
    /// the target bitrate its connection reported, which the room
    /// shares among its subscriptions to choose their layers.
    pub estimates: Vec<(String, u64)>,
}

pub struct Worker {
    local: SocketAddr,
    endpoint: Endpoint,
    rooms: HashMap<String, MediaRoom>,
    /// Each connection's room and participant.
    connections: HashMap<ConnectionHandle, (String, ParticipantId)>,
    /// The WHEP players of one participant: player peer, publisher peer.
    sources: HashMap<String, String>,
    replies: UnboundedSender<Reply>,
    next_participant: u64,
    received: Received,
    out: Vec<u8>,
    /// The envelope being relayed (kept, like `out`).
    relayed: Vec<u8>,
    /// How long a relay recipient may read nothing.
    relay_stall: Duration,
    /// How long a connection lives without the client's ICE checks or
    /// keepalives (natter's `ice_consent_timeout`; `None`: RFC 7675's 30 s).
    consent_timeout: Option<Duration>,
    /// The relay counters of the rooms closed so far.
    closed_relay: RelayCounters,
    /// The NACK counters of the connections removed so far.
    closed_nacks: NackTotals,
    counters: WorkerCounters,
}

impl Worker {
    pub fn new(local: SocketAddr, relay_stall: Duration, replies: UnboundedSender<Reply>) -> Self {
        Worker {
            local,
            endpoint: Endpoint::new(vec![local]),
            rooms: HashMap::new(),
            connections: HashMap::new(),
            sources: HashMap::new(),
            replies,
            next_participant: 1,
            received: Received::default(),
            out: Vec::new(),
            relayed: Vec::new(),
            relay_stall,
            consent_timeout: None,
            closed_relay: RelayCounters::default(),
            closed_nacks: NackTotals::default(),
            counters: WorkerCounters::default(),
        }
    }

    pub fn handle_input(&mut self, now: Instant, input: SfuInput) {
        match input {
            SfuInput::Offer { room, peer, sdp } => {
                if let Err(e) = self.handle_offer(now, &room, &peer, sdp) {
                    tracing::debug!(%room, %peer, error = %e, "SFU offer refused");
                    reply(&self.replies, &peer, Signal::Refused(e.to_string()));
                }
            }
            // An ICE-lite agent makes no checks: the client's checks
            // bring its addresses (RFC 8445 §2.5).
            SfuInput::Candidate { .. } => {}
            SfuInput::Tile {
                room,
                peer,
                mid,
                width,
                height,
            } => self.handle_tile(now, &room, &peer, &mid, TileSize { width, height }),
            SfuInput::Left { room, peer } => self.handle_left(now, &room, &peer),
            SfuInput::Source { room, peer, publisher } => {
                self.sources.insert(peer, publisher);
                if let Some(media_room) = self.rooms.get_mut(&room) {
                    apply_sources(now, media_room, &self.sources);
                    drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
                }
            }
        }
    }

    /// A datagram from `source` on our socket.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Some(handle) = self.endpoint.handle_receive(now, source, self.local, data) else {
            return;
        };
        if !self.take_rtp(handle) {
            return;
        }
        let Some((room_name, publisher)) = self.connections.get(&handle) else {
            return;
        };
        let Some(media_room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let received = &self.received;
        let (Some(transceiver), Some(format)) = (received.transceiver, received.format) else {
            return;
        };
        let known = (media_room.members.get(publisher))
            .and_then(|m| m.published.iter().find(|(t, _)| *t == transceiver))
            .is_some();
        if !known {
            publish(now, media_room, *publisher, received, transceiver, format);
        }
        if media_room.recording.is_some() {
            record(
                now,
                &mut self.endpoint,
                media_room,
                *publisher,
                received,
                transceiver,
                format,
            );
        }
        let packet = PublishedRtp {
            ssrc: received.ssrc,
            rid: received.rid.map(|()| received.rid_text.as_str()),
            sequence: received.sequence,
            extended_sequence: received.extended_sequence,
            timestamp: received.timestamp,
            marker: received.marker,
            retransmission: received.retransmission,
            starts_keyframe: received.starts_keyframe,
            temporal_id: received.temporal_id,
            audio_level: received.audio_level,
            payload: &received.payload,
            dependency_descriptor: received.descriptor.map(|()| &received.descriptor_bytes[..]),
        };
        let MediaRoom { room, members, .. } = media_room;
        match room.on_rtp(now, *publisher, packet) {
            Ok(mut fanout) => {
                while let Some(forward) = fanout.poll_forward() {
                    write(now, &mut self.endpoint, members, &forward, &mut self.counters);
                }
            }
            Err(e) => tracing::trace!(error = %e, "SFU: packet not routed"),
        }
        drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
    }

    /// Copies the connection's RTP packet, if the datagram held one.
    fn take_rtp(&mut self, handle: ConnectionHandle) -> bool {
        let Some(mut pc) = self.endpoint.connection(handle) else {
            return false;
        };
        let Some(rtp) = pc.poll_rtp() else { return false };
        let r = &mut self.received;
        r.transceiver = Some(rtp.transceiver);
        r.format = Some(rtp.format);
        r.ssrc = rtp.ssrc();
        r.rid = rtp.rid.map(|rid| {
            r.rid_text.clear();
            r.rid_text.push_str(rid);
        });
        r.mid.clear();
        r.mid.push_str(rtp.mid);
        r.sequence = rtp.sequence_number();
        r.extended_sequence = rtp.extended_sequence_number;
        r.timestamp = rtp.timestamp();
        r.marker = rtp.marker();
        r.retransmission = rtp.retransmission;
        let info = rtp.inspect().and_then(Result::ok);
        r.starts_keyframe = info.is_some_and(|i| i.starts_keyframe);
        r.temporal_id = info.and_then(|i| i.layer).map(|l| l.temporal_id);
        r.audio_level = rtp.audio_level();
        r.payload.clear();
        r.payload.extend_from_slice(rtp.payload());
        r.descriptor = rtp.dependency_descriptor().map(|d| {
            r.descriptor_bytes.clear();
            r.descriptor_bytes.extend_from_slice(d);
        });
        true
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        for media_room in self.rooms.values_mut() {
            if media_room.relay.poll_timeout().is_some_and(|t| t <= now) {
                let MediaRoom { relay, members, .. } = media_room;
                let endpoint = &mut self.endpoint;
                relay.handle_timeout(now, |id| relay_buffered(endpoint, members.get(&id)));
                resume_senders(&mut self.endpoint, media_room);
            }
            if media_room.room.poll_timeout().is_some_and(|t| t <= now) {
                media_room.room.handle_timeout(now);
                report_demands(&mut self.endpoint, media_room);
                drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
            }
        }
    }

    /// Connections made from now on fail after `timeout` without the
    /// client's ICE checks or keepalives, and their participant is told
    /// [`Signal::Closed`].
    pub fn set_consent_timeout(&mut self, timeout: Duration) {
        self.consent_timeout = Some(timeout);
    }

    /// What the worker could not do so far.
    pub fn counters(&self) -> WorkerCounters {
        self.counters
    }

    /// The participants' connections it holds now.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// The relay's counters over every room, closed ones included, and
    /// how many senders it is not reading now.
    pub fn relay_totals(&self) -> (RelayCounters, usize) {
        let mut counters = self.closed_relay;
        let mut held = 0;
        for media_room in self.rooms.values() {
            counters.add(&media_room.relay.counters());
            held += media_room.relay.held_senders();
        }
        (counters, held)
    }

    /// The rooms it carries now.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Each room's counters, participants and estimates into `out`,
    /// sorted by room name; its strings and vectors are reused, so a
    /// steady worker allocates nothing for it.
    pub fn room_samples(&self, out: &mut Vec<RoomSample>) {
        out.resize_with(self.rooms.len(), RoomSample::default);
        for (sample, (name, media_room)) in out.iter_mut().zip(&self.rooms) {
            let room = &media_room.room;
            sample.room.clone_from(name);
            sample.participants = room.participants().len() as u64;
            sample.metrics = *room.metrics();
            sample
                .estimates
                .resize_with(room.participants().len(), Default::default);
            for ((peer, bps), participant) in sample.estimates.iter_mut().zip(room.participants()) {
                // Every participant of the room is a member (added together).
                let member = media_room.members.get(&participant.id());
                peer.clear();
                peer.push_str(member.map_or("", |m| m.peer.as_str()));
                *bps = participant.estimate_bps();
            }
        }
        out.sort_unstable_by(|a, b| a.room.cmp(&b.room));
    }

    /// The NACK counters over every connection, removed ones included.
    /// It walks each connection's stats: call it now and then.
    pub fn nack_totals(&mut self) -> NackTotals {
        let mut totals = self.closed_nacks;
        for handle in self.connections.keys() {
            if let Some(pc) = self.endpoint.connection(*handle) {
                totals.add(&pc.stats());
            }
        }
        totals
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let rooms =
            (self.rooms.values()).flat_map(|r| [r.room.poll_timeout(), r.relay.poll_timeout()].into_iter().flatten());
        self.endpoint.poll_timeout().into_iter().chain(rooms).min()
    }

    /// Sends the connections' datagrams with `send` and handles their
    /// events, until neither is left.
    pub fn drain(&mut self, now: Instant, mut send: impl FnMut(SocketAddr, &[u8])) {
        loop {
            while let Some((_, transmit)) = self.endpoint.poll_transmit(now, 1, &mut self.out) {
                send(transmit.destination, &self.out[..transmit.size]);
            }
            let Some((handle, event)) = self.endpoint.poll_event() else {
                break;
            };
            self.handle_peer_event(now, handle, event);
        }
    }

    fn handle_peer_event(&mut self, now: Instant, handle: ConnectionHandle, event: PeerEvent) {
        let Some((room_name, id)) = self.connections.get(&handle) else {
            return;
        };
        let Some(media_room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(member) = media_room.members.get(id) else {
            return;
        };
        match event {
            PeerEvent::IceCandidate(candidate) => {
                // W3C `RTCIceCandidateInit`, the line with its prefix.
                let line = format!("candidate:{}", candidate.candidate.trim_start_matches("candidate:"));
                let init = json!({"candidate": line, "sdpMid": candidate.sdp_mid, "sdpMLineIndex": candidate.sdp_m_line_index});
                reply(&self.replies, &member.peer, Signal::Candidate(init));
            }
            PeerEvent::IceGatheringComplete => reply(&self.replies, &member.peer, Signal::Candidate(Value::Null)),
            PeerEvent::KeyframeRequest { transceiver, .. } => {
                let slot = member.slots.iter().find(|s| s.transceiver == transceiver);
                if let Some(publication) = slot.and_then(|s| s.publication) {
                    let _ = media_room.room.handle_keyframe_request(now, *id, publication);
                }
            }
            PeerEvent::TargetBitrate(bps) => {
                tracing::trace!(peer = %member.peer, bps, "SFU estimate");
                let _ = media_room.room.handle_estimate(now, *id, bps);
            }
            PeerEvent::ConnectionStateChange(state) => {
                tracing::debug!(peer = %member.peer, state = state.name(), "SFU connection");
                if state == PeerConnectionState::Failed {
                    reply(&self.replies, &member.peer, Signal::Closed);
                }
            }
            PeerEvent::DataChannel(channel) => {
                let Some(mut pc) = self.endpoint.connection(handle) else {
                    return;
                };
                let label = pc.data_channel(channel).map(|c| c.label() == RELAY_LABEL);
                if let Some(member) = (label == Some(true)).then(|| media_room.members.get_mut(id)).flatten() {
                    member.relay = Some(channel);
                    // Its queue's fall to the low water mark may resume senders.
                    let low = media_room.relay.config().low_water;
                    if let Some(mut c) = pc.data_channel(channel) {
                        let _ = c.set_buffered_amount_low_threshold(low);
                    }
                }
                return;
            }
            PeerEvent::DataChannelClose(channel) => {
                if let Some(member) = media_room.members.get_mut(id).filter(|m| m.relay == Some(channel)) {
                    member.relay = None;
                    media_room.relay.remove(*id);
                    resume_senders(&mut self.endpoint, media_room);
                }
                return;
            }
            PeerEvent::DataChannelMessage { id: channel, data, .. } => {
                if member.relay == Some(channel) {
                    relay(now, &mut self.endpoint, media_room, *id, &data, &mut self.relayed);
                }
                return;
            }
            PeerEvent::BufferedAmountLow(channel) => {
                if member.relay == Some(channel) {
                    let buffered = relay_buffered(&mut self.endpoint, Some(member));
                    media_room.relay.update(now, *id, buffered);
                    resume_senders(&mut self.endpoint, media_room);
                }
                return;
            }
            _ => return,
        }
        drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
    }

    fn member(&self, room: &str, peer: &str) -> Option<&Member> {
        let media_room = self.rooms.get(room)?;
        media_room.members.get(media_room.by_peer.get(peer)?)
    }

    /// An offer: a new participant's connection, or a renegotiation of
    /// one (new sections get send tracks and become slots).
    fn handle_offer(&mut self, now: Instant, room_name: &str, peer: &str, sdp: String) -> Result<(), PeerError> {
        let rids = super::offer::simulcast_send_rids(&sdp);
        let offer = Description {
            kind: SdpType::Offer,
            sdp,
        };
        let existing = self.member(room_name, peer).map(|m| m.handle);
        let handle = match existing {
            Some(handle) => handle,
            None => {
                let config = PeerConfig {
                    ice_lite: true,
                    ice_consent_timeout: self.consent_timeout,
                    rtp_mode: true,
                    // One codec, so every leg forwards the same payload.
                    video_codecs: Some(vp8()),
                    // Paced: probes send padding, so a subscriber's
                    // estimate can grow past what it is forwarded.
                    congestion: CongestionConfig {
                        pace: true,
                        ..CongestionConfig::default()
                    },
                    ..PeerConfig::default()
                };
                self.endpoint.insert(PeerConnection::new(config, now)?)?
            }
        };
        let answered = answer(&mut self.endpoint, handle, &offer);
        let (answer, slots) = match answered {
            Ok(done) => done,
            Err(e) => {
                if existing.is_none() {
                    self.endpoint.remove(handle);
                }
                return Err(e);
            }
        };
        let relay_stall = self.relay_stall;
        let media_room = (self.rooms.entry(room_name.to_owned())).or_insert_with(|| MediaRoom::new(relay_stall));
        reply(&self.replies, peer, Signal::Answer(answer));
        match media_room.by_peer.get(peer) {
            Some(id) => {
                let member = media_room.members.get_mut(id).expect("by_peer names members");
                member.rids = rids;
                for slot in slots {
                    if !member.slots.iter().any(|s| s.transceiver == slot.transceiver) {
                        member.slots.push(slot);
                    }
                }
                let _ = media_room.room.set_receive_pool(now, *id, pool(&member.slots));
            }
            None => {
                let id = ParticipantId(self.next_participant);
                self.next_participant += 1;
                let pool = pool(&slots);
                media_room.by_peer.insert(peer.to_owned(), id);
                media_room.members.insert(
                    id,
                    Member {
                        peer: peer.to_owned(),
                        handle,
                        rids,
                        published: Vec::new(),
                        slots,
                        relay: None,
                    },
                );
                self.connections.insert(handle, (room_name.to_owned(), id));
                // Unique: made just above.
                let _ = media_room.room.add_participant_with_pool(now, id, pool);
                // A player of one participant, or the participant a player waits for.
                apply_sources(now, media_room, &self.sources);
                // Later changes come as RoomEvent::ActiveSpeaker.
                let speaker = media_room.room.active_speaker();
                if let Some(speaker) = speaker.and_then(|id| media_room.members.get(&id)) {
                    reply(&self.replies, peer, Signal::Speaker(Some(speaker.peer.clone())));
                }
                tracing::debug!(room = room_name, peer, "SFU participant joined");
            }
        }
        drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
        Ok(())
    }

    /// `peer` renders its section `mid` at `tile`: the slot keeps it and
    /// its subscription's layer is capped by it. An unknown room, peer
    /// or mid (a section not answered yet) is ignored.
    fn handle_tile(&mut self, now: Instant, room_name: &str, peer: &str, mid: &str, tile: TileSize) {
        let Some(media_room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(id) = media_room.by_peer.get(peer).copied() else {
            return;
        };
        let slot = (media_room.members.get_mut(&id)).and_then(|m| m.slots.iter_mut().find(|s| s.mid == mid));
        let Some(slot) = slot else {
            tracing::debug!(%peer, %mid, "SFU: tile for an unknown section");
            return;
        };
        slot.tile = Some(tile);
        if let Some(publication) = slot.publication {
            let _ = media_room.room.set_tile_size(now, id, publication, tile);
            drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
        }
    }

    /// Starts recording room `room_name` into `sink` (the room is kept
    /// while empty), or stops with `None`: the tap and its sink are
    /// dropped, so the writer finishes.
    pub fn handle_recording(&mut self, now: Instant, room_name: &str, sink: Option<crate::recording::Sink>) {
        let relay_stall = self.relay_stall;
        match sink {
            Some(sink) => {
                let media_room =
                    (self.rooms.entry(room_name.to_owned())).or_insert_with(|| MediaRoom::new(relay_stall));
                media_room.recording = Some(RoomTap::new(sink));
                let speaker = media_room
                    .room
                    .active_speaker()
                    .and_then(|id| media_room.members.get(&id));
                if let Some(tap) = media_room.recording.as_ref() {
                    tap.speaker(now, speaker.map(|m| m.peer.as_str()));
                }
                // Every simulcast layer on, so the tap records the top one.
                media_room.room.set_recorded(now, true);
                drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
            }
            None => {
                let Some(media_room) = self.rooms.get_mut(room_name) else {
                    return;
                };
                media_room.recording = None;
                media_room.room.set_recorded(now, false);
                drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
                if media_room.members.is_empty() {
                    self.closed_relay.add(&media_room.relay.counters());
                    self.rooms.remove(room_name);
                }
            }
        }
    }

    fn handle_left(&mut self, now: Instant, room_name: &str, peer: &str) {
        let Some(media_room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(id) = media_room.by_peer.remove(peer) else {
            return;
        };
        self.sources.remove(peer);
        if let Some(member) = media_room.members.remove(&id) {
            self.connections.remove(&member.handle);
            if let Some(pc) = self.endpoint.connection(member.handle) {
                self.closed_nacks.add(&pc.stats());
            }
            self.endpoint.remove(member.handle);
            if let Some(tap) = media_room.recording.as_mut() {
                tap.left(id, &member.peer);
            }
        }
        let _ = media_room.room.remove_participant(now, id);
        media_room.relay.remove(id);
        resume_senders(&mut self.endpoint, media_room);
        drain_room(now, &mut self.endpoint, &self.replies, media_room, &mut self.counters);
        if media_room.members.is_empty() && media_room.recording.is_none() {
            let relay = media_room.relay.counters();
            self.closed_relay.add(&relay);
            tracing::debug!(room = room_name, ?relay, "SFU room closed");
            self.rooms.remove(room_name);
        }
    }
}

/// Answers `offer` with a send track on every section of it that has
/// none (so every section the participant receives on is a slot), and
/// returns the answer and the slots.
fn answer(
    endpoint: &mut Endpoint,
    handle: ConnectionHandle,
    offer: &Description,
) -> Result<(String, Vec<Slot>), PeerError> {
    let mut pc = endpoint.connection(handle).ok_or(PeerError::Closed)?;
    pc.set_remote_description(offer)?;
    let bare: Vec<MediaKind> = (pc.transceivers().iter())
        .filter(|t| t.track().is_none() && !t.is_stopping())
        .map(|t| t.kind())
        .collect();
    for kind in bare {
        pc.add_track(kind)?;
    }
    let answer = pc.create_answer()?;
    pc.set_local_description(&answer)?;
    let sends = |d: Option<Direction>| matches!(d, Some(Direction::SendRecv | Direction::SendOnly));
    let slots = (pc.transceivers().iter())
        .filter(|t| sends(t.current_direction()))
        .filter_map(|t| {
            Some(Slot {
                transceiver: t.id(),
                mid: t.mid()?.to_owned(),
                kind: t.kind(),
                publication: None,
                tile: None,
                last: None,
            })
        })
        .collect();
    Ok((answer.sdp, slots))
}

/// No participant: the worker numbers them from 1.
const NOBODY: ParticipantId = ParticipantId(0);

/// Gives each player of one participant in the room that publisher's
/// media only ([`Room::set_source`]); nobody's while its publisher has no
/// connection here yet.
fn apply_sources(now: Instant, media_room: &mut MediaRoom, sources: &HashMap<String, String>) {
    for (player, publisher) in sources {
        let Some(&id) = media_room.by_peer.get(player) else {
            continue;
        };
        let source = media_room.by_peer.get(publisher).copied().unwrap_or(NOBODY);
        if media_room.room.set_source(now, id, Some(source)).is_err() {
            tracing::debug!(%player, "SFU: source for an unknown participant");
        }
    }
}

/// A participant's receive pool: its slots of each kind.
fn pool(slots: &[Slot]) -> Pool {
    let of = |kind| slots.iter().filter(|s| s.kind == kind).count();
    Pool {
        audio: of(MediaKind::Audio),
        video: of(MediaKind::Video),
    }
}

/// The first packet of a section the participant sends on: it becomes
/// a publication, one layer per RID of the section's simulcast or one
/// stream on the packet's SSRC.
fn publish(
    now: Instant,
    media_room: &mut MediaRoom,
    publisher: ParticipantId,
    received: &Received,
    transceiver: TransceiverId,
    format: Format,
) {
    let Some(member) = media_room.members.get_mut(&publisher) else {
        return;
    };
    let audio = format == Format::Opus;
    let layers = match member.rids.get(&received.mid) {
        Some(rids) if !audio && !rids.is_empty() => (rids.iter())
            .map(|rid| LayerSpec {
                rid: Some(rid.clone()),
                ..LayerSpec::default()
            })
            .collect(),
        _ => vec![LayerSpec {
            ssrc: Some(received.ssrc),
            ..LayerSpec::default()
        }],
    };
    let spec = PublicationSpec {
        source: if audio { Source::Microphone } else { Source::Camera },
        clock_rate: if audio { 48_000 } else { 90_000 },
        vp8: format == Format::Vp8,
        layers,
    };
    match media_room.room.publish(now, publisher, &spec) {
        Ok(publication) => {
            member.published.push((transceiver, publication));
            tracing::debug!(peer = %member.peer, ?publication, audio, "SFU publication");
        }
        Err(e) => tracing::debug!(peer = %member.peer, error = %e, "SFU: publication refused"),
    }
}

/// A packet of a recorded room: to its tap, and a keyframe request to
/// the publisher when the tap needs one (docs/recording.md).
fn record(
    now: Instant,
    endpoint: &mut Endpoint,
    media_room: &mut MediaRoom,
    publisher: ParticipantId,
    received: &Received,
    transceiver: TransceiverId,
    format: Format,
) {
    let (Some(member), Some(tap)) = (media_room.members.get(&publisher), media_room.recording.as_mut()) else {
        return;
    };
    let rids = member.rids.get(&received.mid).filter(|_| received.rid.is_some());
    let layer = rids.and_then(|rids| rids.iter().position(|r| *r == received.rid_text));
    let packet = TappedRtp {
        publisher,
        peer: &member.peer,
        mid: &received.mid,
        format,
        layer: layer.unwrap_or(0),
        extended_sequence: received.extended_sequence,
        timestamp: received.timestamp,
        marker: received.marker,
        starts_keyframe: received.starts_keyframe,
        payload: &received.payload,
    };
    let Some(layer) = tap.on_rtp(now, &packet) else {
        return;
    };
    let Some(mut pc) = endpoint.connection(member.handle) else {
        return;
    };
    let asked = match rids.and_then(|rids| rids.get(layer)) {
        Some(rid) => pc.request_layer_keyframe(transceiver, rid),
        None => pc.request_keyframe(transceiver),
    };
    if let Err(e) = asked {
        tracing::trace!(error = %e, "SFU: recording's keyframe request not sent");
    }
}

/// A message on `sender`'s relay channel: its envelope rewritten with
/// the sender's id and queued on each recipient's relay channel but a
/// stalled one's; a queue over the high water mark pauses the sender's
/// channels (natter-sfu's [`Relay`]).
fn relay(
    now: Instant,
    endpoint: &mut Endpoint,
    media_room: &mut MediaRoom,
    sender: ParticipantId,
    message: &[u8],
    out: &mut Vec<u8>,
) {
    let MediaRoom {
        relay,
        members,
        by_peer,
        ..
    } = media_room;
    let Some(from) = members.get(&sender) else {
        return;
    };
    let route = match relay.route(&from.peer, message, out) {
        Ok(route) => route,
        Err(e) => {
            tracing::debug!(peer = %from.peer, error = %e, "SFU: relay message refused");
            return;
        }
    };
    let to = match route {
        Route::Everyone => None,
        Route::To(peer) => match by_peer.get(peer) {
            Some(id) => Some(*id),
            None => {
                tracing::debug!(peer = %from.peer, to = peer, "SFU: relay message for nobody in the room");
                return;
            }
        },
    };
    let mut hold = false;
    let recipients = (members.iter()).filter(|(id, _)| **id != sender && to.is_none_or(|to| to == **id));
    for (id, member) in recipients {
        let Some(channel) = member.relay else { continue };
        let Some(mut pc) = endpoint.connection(member.handle) else {
            continue;
        };
        let Some(mut channel) = pc.data_channel(channel) else {
            continue;
        };
        if !relay.admit(*id, out.len()) {
            tracing::trace!(peer = %member.peer, "SFU: relay recipient stalled, message dropped");
            continue;
        }
        match channel.send(Message::Binary(out)) {
            Ok(()) => hold |= relay.relayed(now, sender, *id, channel.buffered_amount(), out.len()),
            Err(e) => tracing::debug!(peer = %member.peer, error = %e, "SFU: relay message not sent"),
        }
    }
    if hold {
        if let Some(mut pc) = members.get(&sender).and_then(|m| endpoint.connection(m.handle)) {
            tracing::trace!(peer = ?sender, "SFU: relay sender paused");
            pc.pause_data_channels(true);
        }
    }
}

/// Bytes queued on `member`'s relay channel.
fn relay_buffered(endpoint: &mut Endpoint, member: Option<&Member>) -> usize {
    let Some((member, channel)) = member.and_then(|m| Some((m, m.relay?))) else {
        return 0;
    };
    let mut pc = endpoint.connection(member.handle);
    let channel = pc.as_mut().and_then(|pc| pc.data_channel(channel));
    channel.map_or(0, |mut c| c.buffered_amount())
}

/// Reads again the senders the relay let go.
fn resume_senders(endpoint: &mut Endpoint, media_room: &mut MediaRoom) {
    while let Some(sender) = media_room.relay.poll_resume() {
        let member = media_room.members.get(&sender);
        if let Some(mut pc) = member.and_then(|m| endpoint.connection(m.handle)) {
            tracing::trace!(peer = ?sender, "SFU: relay sender resumed");
            pc.pause_data_channels(false);
        }
    }
}

/// Writes a forwarded packet on the subscriber's slot for it.
fn write(
    now: Instant,
    endpoint: &mut Endpoint,
    members: &mut HashMap<ParticipantId, Member>,
    forward: &Forward<'_>,
    counters: &mut WorkerCounters,
) {
    let Some(member) = members.get_mut(&forward.subscriber) else {
        return;
    };
    let slot = member
        .slots
        .iter_mut()
        .find(|s| s.publication == Some(forward.publication));
    let (Some(slot), Some(mut pc)) = (slot, endpoint.connection(member.handle)) else {
        counters.write_failures += 1;
        return;
    };
    let Some((_, payload_type)) = pc.send_payload_type(slot.transceiver) else {
        counters.write_failures += 1;
        return;
    };
    let packet = OutgoingRtp {
        payload_type,
        sequence_number: forward.sequence,
        timestamp: forward.timestamp,
        marker: forward.marker,
        payload: forward.payload,
        audio_level: forward.audio_level,
        dependency_descriptor: forward.dependency_descriptor,
    };
    if pc.write_rtp(slot.transceiver, None, &packet).is_err() {
        counters.write_failures += 1;
        return;
    }
    let written = Rewritten {
        sequence: forward.sequence,
        timestamp: forward.timestamp,
    };
    // The highest number written (RFC 1982: resends are older).
    if slot
        .last
        .is_none_or(|(last, _)| (written.sequence.wrapping_sub(last.sequence) as i16) > 0)
    {
        slot.last = Some((written, now));
    }
}

/// Tells each member's connection what its subscriptions want (the
/// layers their tiles need, an audio reserve each): while that is above
/// its estimate, natter probes for more, so a subscriber whose estimate
/// fell goes back up once its path allows.
fn report_demands(endpoint: &mut Endpoint, media_room: &MediaRoom) {
    let room = &media_room.room;
    let audio_bps = room.config().audio_reserve_bps;
    for (id, member) in &media_room.members {
        let wanted = (room.publications().iter())
            .filter_map(|p| Some((p, p.subscriptions().iter().find(|s| s.subscriber() == *id)?)))
            .map(|(p, s)| {
                if p.source().is_audio() {
                    audio_bps
                } else {
                    s.wanted_bps()
                }
            })
            .sum();
        if let Some(mut pc) = endpoint.connection(member.handle) {
            pc.set_application_demand(Some(wanted));
        }
    }
}

/// Resends and events of a room after an input: slots given and taken
/// with `track` messages, keyframe requests to publishers, the active
/// speaker to everyone.
fn drain_room(
    now: Instant,
    endpoint: &mut Endpoint,
    replies: &UnboundedSender<Reply>,
    media_room: &mut MediaRoom,
    counters: &mut WorkerCounters,
) {
    let MediaRoom {
        room,
        members,
        recording,
        ..
    } = media_room;
    while let Some(forward) = room.poll_resend() {
        write(now, endpoint, members, &forward, counters);
    }
    // Publications whose paused layers changed, told once per drain.
    let mut dynacast: Vec<(ParticipantId, PublicationId)> = Vec::new();
    while let Some(event) = room.poll_event() {
        match event {
            RoomEvent::Subscribed {
                subscriber,
                publication,
            } => {
                let Some(source) = room.publication(publication).map(|p| (p.source(), p.publisher())) else {
                    continue;
                };
                let publisher = members.get(&source.1).map(|m| m.peer.clone());
                let kind = if source.0.is_audio() {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                let Some(member) = members.get_mut(&subscriber) else {
                    continue;
                };
                let free = (member.slots.iter_mut()).find(|s| s.kind == kind && s.publication.is_none());
                let Some(slot) = free else {
                    counters.no_slot += 1;
                    tracing::debug!(peer = %member.peer, ?publication, "SFU: no free slot");
                    continue;
                };
                slot.publication = Some(publication);
                if let Some((last, at)) = slot.last {
                    let _ = room.continue_stream(subscriber, publication, last, at);
                }
                if let Some(tile) = slot.tile {
                    // The subscription was just made.
                    let _ = room.set_tile_size(now, subscriber, publication, tile);
                }
                let signal = Signal::Track {
                    mid: slot.mid.clone(),
                    peer: publisher,
                    kind: kind_name(kind),
                };
                reply(replies, &member.peer, signal);
                // The subscriber's decoder starts at a keyframe.
                let _ = room.handle_keyframe_request(now, subscriber, publication);
            }
            RoomEvent::Unsubscribed {
                subscriber,
                publication,
            } => {
                let Some(member) = members.get_mut(&subscriber) else {
                    continue;
                };
                if let Some(slot) = (member.slots.iter_mut()).find(|s| s.publication == Some(publication)) {
                    slot.publication = None;
                    let signal = Signal::Track {
                        mid: slot.mid.clone(),
                        peer: None,
                        kind: kind_name(slot.kind),
                    };
                    reply(replies, &member.peer, signal);
                }
            }
            RoomEvent::KeyframeRequest {
                publisher,
                publication,
                layer,
            } => {
                let Some(member) = members.get(&publisher) else {
                    continue;
                };
                let Some(&(transceiver, _)) = member.published.iter().find(|(_, p)| *p == publication) else {
                    continue;
                };
                let rid = room.publication(publication).and_then(|p| p.rid(layer));
                let Some(mut pc) = endpoint.connection(member.handle) else {
                    continue;
                };
                let asked = match rid {
                    Some(rid) => pc.request_layer_keyframe(transceiver, rid),
                    None => pc.request_keyframe(transceiver),
                };
                if let Err(e) = asked {
                    tracing::trace!(error = %e, "SFU: keyframe request not sent");
                }
            }
            RoomEvent::ActiveSpeaker(active) => {
                let speaker = active.and_then(|id| members.get(&id)).map(|m| m.peer.clone());
                if let Some(tap) = recording.as_ref() {
                    tap.speaker(now, speaker.as_deref());
                }
                for member in members.values() {
                    reply(replies, &member.peer, Signal::Speaker(speaker.clone()));
                }
            }
            RoomEvent::LayerPaused {
                publisher, publication, ..
            }
            | RoomEvent::LayerResumed {
                publisher, publication, ..
            } => {
                tracing::trace!(?event, "SFU room event");
                if !dynacast.contains(&(publisher, publication)) {
                    dynacast.push((publisher, publication));
                }
            }
            other => tracing::trace!(event = ?other, "SFU room event"),
        }
    }
    for (publisher, publication) in dynacast {
        tell_layers(endpoint, replies, room, members, publisher, publication);
    }
}

/// Tells a publisher which RIDs of a simulcast publication anyone
/// receives (a `layers` message, docs/signaling.md): the web client sets
/// the others' `RTCRtpEncodingParameters.active` to false, so the
/// browser stops encoding them. A publication without RIDs is not told.
fn tell_layers(
    endpoint: &mut Endpoint,
    replies: &UnboundedSender<Reply>,
    room: &Room,
    members: &HashMap<ParticipantId, Member>,
    publisher: ParticipantId,
    publication: PublicationId,
) {
    let (Some(member), Some(published)) = (members.get(&publisher), room.publication(publication)) else {
        return;
    };
    let Some(&(transceiver, _)) = member.published.iter().find(|(_, p)| *p == publication) else {
        return;
    };
    // At most MAX_LAYERS layers.
    let layers = 0..published.layer_count() as u8;
    if layers.clone().any(|layer| published.rid(layer).is_none()) {
        return;
    }
    let active = (layers.filter(|&layer| !published.paused(layer)))
        .filter_map(|layer| published.rid(layer).map(str::to_owned))
        .collect();
    let Some(pc) = endpoint.connection(member.handle) else {
        return;
    };
    let mid = (pc.transceivers().iter())
        .find(|t| t.id() == transceiver)
        .and_then(|t| t.mid().map(str::to_owned));
    if let Some(mid) = mid {
        reply(replies, &member.peer, Signal::Layers { mid, active });
    }
}

fn reply(replies: &UnboundedSender<Reply>, peer: &str, signal: Signal) {
    let _ = replies.send(Reply {
        peer: peer.to_owned(),
        signal,
    });
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// VP8 and its RTX (RFC 7741, RFC 4588), at Chromium's payload types.
fn vp8() -> Vec<natter_sdp::Codec> {
    let codecs = default_video_codecs();
    let vp8 = codecs.iter().find(|c| c.encoding_name.eq_ignore_ascii_case("VP8"));
    let payload_type = vp8.map(|c| c.payload_type);
    let rtx_of_vp8 = |c: &natter_sdp::Codec| {
        c.encoding_name.eq_ignore_ascii_case("rtx") && c.parameter("apt").and_then(|a| a.parse().ok()) == payload_type
    };
    (codecs.iter())
        .filter(|c| c.encoding_name.eq_ignore_ascii_case("VP8") || rtx_of_vp8(c))
        .cloned()
        .collect()
}
