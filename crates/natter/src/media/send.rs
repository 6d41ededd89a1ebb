//! One stream we send (RFC 3550): frames become RTP packets through the
//! format's packetizer, numbered and timestamped; the recent ones stay
//! in a history from which a NACK is answered with RTX (RFC 4588 §4);
//! and the stream's sender report maps its RTP clock to NTP time
//! (RFC 3550 §6.4.1). In RTP mode the application writes the packets
//! itself ([`SendStream::write_rtp`]): its sequence numbers and
//! timestamps, this stream's SSRC and header extensions, the same
//! history and reports.

use std::time::{Duration, Instant};

use natter_rtp::payload::{
    Av1Packetizer, H264Packetizer, NalUnits, OpusPacketizer, PayloadChunk, PayloadError, Vp8Packetizer, Vp9Packetizer,
    Vp9PictureId,
};
use natter_rtp::rtcp::SenderInfo;
use natter_rtp::{AudioLevel, ExtensionForm, RtpHeader, RtpPacket, RtpWriter};

use super::codec::{vp8_picture, Format};
use super::ntp::NtpClock;
use super::MediaError;

/// The most packets kept for retransmission: about a second of
/// 2.5 Mbit/s video.
pub const HISTORY: usize = 512;
/// How long a packet stays in the history at least, while it holds no
/// more than [`HISTORY`]: libwebrtc's `RtpPacketHistory` keeps a packet
/// for one second too (`kMinPacketDurationMs`). The history grows to
/// what that second holds, not to [`HISTORY`] at once: a stream of 50
/// packets a second (an SFU's leg of a small simulcast layer, or Opus)
/// keeps 64 slots, an eighth of the memory (issue 13).
pub const HISTORY_AGE: Duration = Duration::from_secs(1);
/// The slots a history starts with; it doubles from there, up to
/// [`HISTORY`]. Both are powers of two, so that a sequence number's slot
/// follows it across the 16-bit wrap (RFC 3550 §5.1).
const HISTORY_START: usize = 16;
/// RFC 3550 §5.1: the padding count is one octet.
const MAX_PADDING: usize = 255;

/// The RTP parameters an exchange gave a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendParams {
    pub ssrc: u32,
    pub format: Format,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// RFC 4588: the RTX stream, when both sides do RTX.
    pub rtx: Option<(u32, u8)>,
    /// The `sdes:mid` extension's id and our mid (RFC 8843 §15), when
    /// negotiated.
    pub mid: Option<(u8, String)>,
    /// The ids of the extensions an application may set on the packets
    /// it writes in RTP mode, when negotiated: the audio level (RFC 6464)
    /// and the dependency descriptor (AV1 RTP Specification, Appendix A).
    pub audio_level: Option<u8>,
    pub dependency_descriptor: Option<u8>,
    /// A simulcast stream (RFC 8853): the `sdes:rtp-stream-id`
    /// extension's id and the stream's RID, written on every packet,
    /// and the `repaired-rtp-stream-id` id its RTX packets carry the RID
    /// in instead (RFC 8852 §3.1, §3.2).
    pub rid: Option<(u8, String)>,
    pub repaired_rid: Option<u8>,
    /// The transport-wide sequence number extension's id, when
    /// negotiated (draft-holmer-rmcat-transport-wide-cc-extensions-01
    /// §2): every packet carries it first, zero until
    /// [`set_transport_seq`] numbers it as it leaves.
    pub transport_cc: Option<u8>,
}

impl SendParams {
    /// The RID of a simulcast stream.
    pub fn rid(&self) -> Option<&str> {
        self.rid.as_ref().map(|(_, rid)| rid.as_str())
    }
}

/// One RTP packet an application writes in RTP mode: the header fields
/// it chooses (rewritten from what it forwards), the payload, and the
/// header extensions it carries on. The stream adds its SSRC and mid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutgoingRtp<'a> {
    /// The sender's negotiated payload type.
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
    /// RFC 6464; written only when the extension was negotiated.
    pub audio_level: Option<AudioLevel>,
    /// The dependency descriptor's value as received; written only when
    /// the extension was negotiated.
    pub dependency_descriptor: Option<&'a [u8]>,
}

/// The header extensions of one packet: the mid, and in RTP mode what
/// the application set.
#[derive(Clone, Copy, Debug, Default)]
struct Extensions<'a> {
    audio_level: Option<(u8, AudioLevel)>,
    dependency_descriptor: Option<(u8, &'a [u8])>,
    /// An RTX packet: the RID goes as RepairedRtpStreamId (RFC 8852
    /// §3.2), or not at all when that was not negotiated.
    repair: bool,
}

/// One element's value, to write.
#[derive(Clone, Copy, Debug)]
enum Element<'a> {
    Raw(&'a [u8]),
    AudioLevel(AudioLevel),
}

impl Element<'_> {
    fn len(&self) -> usize {
        match self {
            Element::Raw(value) => value.len(),
            Element::AudioLevel(_) => 1,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Stored {
    sequence_number: u16,
    packet: Vec<u8>,
    /// When it was written into the history.
    stored_at: Option<Instant>,
    /// When it last left, as itself or as its RTX repair.
    sent_at: Option<Instant>,
    /// Its RTX repair waits to be sent.
    repair_queued: bool,
}

/// Counters of a sent stream (W3C `RTCOutboundRtpStreamStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendCounters {
    pub packets_sent: u64,
    /// Payload bytes, as in the sender report's octet count.
    pub bytes_sent: u64,
    pub frames_sent: u64,
    pub retransmitted_packets_sent: u64,
    pub retransmitted_bytes_sent: u64,
    pub nack_count: u64,
    pub pli_count: u64,
    pub fir_count: u64,
    /// The cumulative loss the peer's latest report block stated.
    pub remote_packets_lost: i64,
    /// From the peer's latest report block (RFC 3550 §6.4.1).
    pub round_trip_time: Option<Duration>,
}

/// The state of one sent stream.
#[derive(Debug)]
pub struct SendStream {
    params: SendParams,
    sequence_number: u16,
    rtx_sequence_number: u16,
    /// The RTP timestamp of media time zero (RFC 3550 §5.1: random).
    timestamp_offset: u32,
    /// The 15-bit PictureID of the next VP8 or VP9 frame (RFC 7741
    /// §4.2, RFC 9628 §4.2).
    picture_id: u16,
    /// A ring indexed by sequence number modulo its length, a power of
    /// two from [`HISTORY_START`] to [`HISTORY`] that doubles whenever
    /// a packet would push out one younger than [`HISTORY_AGE`].
    history: Vec<Stored>,
    /// The longest packet stored so far: what a history slot is sized
    /// for, so that packets of varying length reuse it.
    longest: usize,
    /// The RTP timestamp of the latest frame and when it was sent.
    latest: Option<(u32, Instant)>,
    pub counters: SendCounters,
}

impl SendStream {
    /// `random` seeds the initial sequence number, timestamp and VP8 or
    /// VP9 PictureID (RFC 3550 §5.1).
    pub fn new(params: SendParams, random: u64) -> Self {
        SendStream {
            params,
            sequence_number: random as u16,
            rtx_sequence_number: (random >> 16) as u16,
            timestamp_offset: (random >> 32) as u32,
            picture_id: (random >> 20) as u16 & 0x7FFF,
            history: vec![Stored::default(); HISTORY_START],
            longest: 0,
            latest: None,
            counters: SendCounters::default(),
        }
    }

    pub fn params(&self) -> &SendParams {
        &self.params
    }

    /// A renegotiation may change the payload types or the mid's id;
    /// numbering goes on.
    pub fn set_params(&mut self, params: SendParams) {
        self.params = params;
    }

    /// Packetizes a frame captured at `media_time` (from the start of
    /// the track) into packets of at most `max_packet` bytes, kept in
    /// the history; returns the sequence number of the first and how
    /// many there are, for [`SendStream::packet`].
    pub fn write_frame(
        &mut self,
        now: Instant,
        media_time: Duration,
        frame: &[u8],
        max_packet: usize,
    ) -> Result<(u16, u16), MediaError> {
        let ticks = media_time.as_nanos() * u128::from(self.params.clock_rate) / 1_000_000_000;
        let timestamp = self.timestamp_offset.wrapping_add(ticks as u32);
        let header_len = 12 + self.extension_len(&Extensions::default());
        let max_payload = max_packet.saturating_sub(header_len);
        let first = self.sequence_number;
        let count = match self.params.format {
            Format::Opus => self.store_all(now, timestamp, OpusPacketizer::new(frame, max_payload, false)?.map(Ok))?,
            Format::Vp8 => {
                let picture = vp8_picture(self.next_picture_id());
                self.store_all(
                    now,
                    timestamp,
                    Vp8Packetizer::new(frame, &picture, max_payload)?.map(Ok),
                )?
            }
            Format::Vp9 => {
                let picture_id = Vp9PictureId::Long(self.next_picture_id());
                self.store_all(
                    now,
                    timestamp,
                    Vp9Packetizer::new(frame, picture_id, max_payload)?.map(Ok),
                )?
            }
            Format::H264 => self.store_all(
                now,
                timestamp,
                H264Packetizer::new(NalUnits::annex_b(frame)?, max_payload)?,
            )?,
            Format::Av1 => self.store_all(now, timestamp, Av1Packetizer::new(frame, max_payload)?.map(Ok))?,
        };
        self.latest = Some((timestamp, now));
        self.counters.frames_sent += 1;
        Ok((first, count))
    }

    /// The PictureID of the frame being written; the next follows it
    /// modulo 2^15.
    fn next_picture_id(&mut self) -> u16 {
        let id = self.picture_id;
        self.picture_id = (id + 1) & 0x7FFF;
        id
    }

    /// A packet of the history, while it is there.
    pub fn packet(&self, sequence_number: u16) -> Option<&[u8]> {
        self.stored(sequence_number).map(|stored| stored.packet.as_slice())
    }

    /// Whether a NACK for `sequence_number` at `now` calls for an RTX
    /// repair (RFC 4588 §4): the packet is still kept, no repair of it
    /// waits to be sent, and it last left at least `rtt` ago, so that
    /// a NACK that crossed the last repair on the way does not repeat
    /// it (libwebrtc's packet history does the same). Without this a
    /// path whose queue drops repairs gets each packet repaired once per
    /// NACK, and the repairs alone can exceed what the path carries.
    pub fn repair_due(&self, sequence_number: u16, now: Instant, rtt: Duration) -> bool {
        self.stored(sequence_number).is_some_and(|stored| {
            !stored.repair_queued && stored.sent_at.is_none_or(|at| now.saturating_duration_since(at) >= rtt)
        })
    }

    /// A repair of `sequence_number` was queued: no other is, until it
    /// has left ([`on_sent`](Self::on_sent)).
    pub fn on_repair_queued(&mut self, sequence_number: u16) {
        if let Some(stored) = self.stored_mut(sequence_number) {
            stored.repair_queued = true;
        }
    }

    /// Packet `sequence_number` left at `now`, as itself or as its RTX
    /// repair.
    pub fn on_sent(&mut self, sequence_number: u16, now: Instant) {
        if let Some(stored) = self.stored_mut(sequence_number) {
            stored.sent_at = Some(now);
            stored.repair_queued = false;
        }
    }

    fn slot(&self, sequence_number: u16) -> usize {
        usize::from(sequence_number) % self.history.len()
    }

    /// Makes room for packet `sequence_number` at `now`: while its slot
    /// holds another packet younger than [`HISTORY_AGE`], the ring
    /// doubles (up to [`HISTORY`]) and every packet moves to its slot in
    /// the larger one. In a ring of `n` the packets held differ modulo
    /// `n`, so they still do modulo `2n`, and one doubling frees the slot.
    fn make_room(&mut self, now: Instant, sequence_number: u16) {
        let held = &self.history[self.slot(sequence_number)];
        let young = held
            .stored_at
            .is_some_and(|at| now.saturating_duration_since(at) < HISTORY_AGE);
        if !young || held.sequence_number == sequence_number || self.history.len() >= HISTORY {
            return;
        }
        let len = self.history.len() * 2;
        let mut grown = vec![Stored::default(); len];
        for stored in self.history.drain(..) {
            if stored.stored_at.is_some() {
                let at = usize::from(stored.sequence_number) % len;
                grown[at] = stored;
            }
        }
        self.history = grown;
    }

    fn stored(&self, sequence_number: u16) -> Option<&Stored> {
        let stored = &self.history[self.slot(sequence_number)];
        (stored.sequence_number == sequence_number && !stored.packet.is_empty()).then_some(stored)
    }

    fn stored_mut(&mut self, sequence_number: u16) -> Option<&mut Stored> {
        let slot = self.slot(sequence_number);
        let stored = &mut self.history[slot];
        (stored.sequence_number == sequence_number && !stored.packet.is_empty()).then_some(stored)
    }

    /// The elements of a packet's header extension block: id and value.
    fn elements<'e>(&'e self, extensions: &Extensions<'e>) -> impl Iterator<Item = (u8, Element<'e>)> + Clone {
        let transport_cc = (self.params.transport_cc).map(|id| (id, Element::Raw(&[0, 0])));
        let mid = (self.params.mid.as_ref()).map(|(id, mid)| (*id, Element::Raw(mid.as_bytes())));
        let rid_id = |id: u8| {
            if extensions.repair {
                self.params.repaired_rid
            } else {
                Some(id)
            }
        };
        let rid = (self.params.rid.as_ref()).and_then(|(id, rid)| Some((rid_id(*id)?, Element::Raw(rid.as_bytes()))));
        let level = (extensions.audio_level).map(|(id, level)| (id, Element::AudioLevel(level)));
        let descriptor = (extensions.dependency_descriptor).map(|(id, value)| (id, Element::Raw(value)));
        (transport_cc.into_iter().chain(mid))
            .chain(rid)
            .chain(level)
            .chain(descriptor)
    }

    /// RFC 8285 §4.2's one-byte form while every element fits it, else
    /// §4.3's two-byte form (a dependency descriptor is often longer
    /// than 16 bytes).
    fn form(&self, extensions: &Extensions<'_>) -> ExtensionForm {
        let one_byte = (self.elements(extensions)).all(|(id, e)| ExtensionForm::OneByte.fits(id, e.len()));
        if one_byte {
            ExtensionForm::OneByte
        } else {
            ExtensionForm::TwoByte { appbits: 0 }
        }
    }

    /// The length of the extension block, padded to 32 bits.
    fn extension_len(&self, extensions: &Extensions<'_>) -> usize {
        let form = self.form(extensions);
        let elements: usize = (self.elements(extensions))
            .map(|(_, e)| form.element_header_len() + e.len())
            .sum();
        if elements == 0 {
            0
        } else {
            4 + elements.div_ceil(4) * 4
        }
    }

    fn write_header(
        &self,
        buf: &mut [u8],
        header: &RtpHeader<'_>,
        extensions: &Extensions<'_>,
    ) -> Result<usize, natter_rtp::Error> {
        let mut writer = RtpWriter::new(buf, header)?;
        if self.extension_len(extensions) > 0 {
            writer.start_extensions(self.form(extensions))?;
            for (id, element) in self.elements(extensions) {
                match element {
                    Element::Raw(value) => writer.add_extension(id, value)?,
                    Element::AudioLevel(level) => writer.add(id, &level)?,
                }
            }
        }
        writer.finish_header()
    }

    /// Writes a packet the application made (RTP mode) into the history
    /// with this stream's SSRC and extensions: `packet`'s sequence
    /// number, for [`SendStream::packet`]. Its timestamp at `now` is the
    /// latest for sender reports.
    pub fn write_rtp(&mut self, now: Instant, packet: &OutgoingRtp<'_>) -> Result<u16, MediaError> {
        let header = RtpHeader {
            marker: packet.marker,
            payload_type: packet.payload_type,
            sequence_number: packet.sequence_number,
            timestamp: packet.timestamp,
            ssrc: self.params.ssrc,
            csrcs: &[],
        };
        let extensions = Extensions {
            audio_level: self.params.audio_level.zip(packet.audio_level),
            dependency_descriptor: self.params.dependency_descriptor.zip(packet.dependency_descriptor),
            repair: false,
        };
        let payload = packet.payload;
        self.store(now, &header, &extensions, payload.len(), |out| {
            out[..payload.len()].copy_from_slice(payload);
            Ok(payload.len())
        })?;
        // A packet forwarded late (a repair the source sent again) keeps
        // the mapping of the newer one (timestamps compare modulo 2^32,
        // RFC 3550 §5.1).
        let newer = |(latest, _): (u32, Instant)| packet.timestamp.wrapping_sub(latest) < 1 << 31;
        if self.latest.is_none_or(newer) {
            self.latest = Some((packet.timestamp, now));
        }
        // A video frame ends with the marker (RFC 7741 §4.1 and the
        // others); every audio packet is one.
        if packet.marker || !self.params.format.is_video() {
            self.counters.frames_sent += 1;
        }
        Ok(packet.sequence_number)
    }

    /// Stores a frame's payloads as packets; returns how many.
    fn store_all<'f>(
        &mut self,
        now: Instant,
        timestamp: u32,
        chunks: impl Iterator<Item = Result<PayloadChunk<'f>, PayloadError>>,
    ) -> Result<u16, MediaError> {
        let mut count = 0u16;
        for chunk in chunks {
            self.store_chunk(now, timestamp, &chunk?)?;
            count += 1;
        }
        Ok(count)
    }

    fn store_chunk(&mut self, now: Instant, timestamp: u32, chunk: &PayloadChunk<'_>) -> Result<(), MediaError> {
        let header = RtpHeader {
            marker: chunk.marker(),
            payload_type: self.params.payload_type,
            sequence_number: self.sequence_number,
            timestamp,
            ssrc: self.params.ssrc,
            csrcs: &[],
        };
        self.store(now, &header, &Extensions::default(), chunk.len(), |out| {
            Ok(chunk.write_to(out)?)
        })?;
        self.sequence_number = self.sequence_number.wrapping_add(1);
        Ok(())
    }

    /// Writes a packet into its slot of the history, reusing the slot's
    /// buffer: the header, then `payload_len` bytes from `payload`.
    fn store(
        &mut self,
        now: Instant,
        header: &RtpHeader<'_>,
        extensions: &Extensions<'_>,
        payload_len: usize,
        payload: impl FnOnce(&mut [u8]) -> Result<usize, MediaError>,
    ) -> Result<(), MediaError> {
        self.make_room(now, header.sequence_number);
        let slot = self.slot(header.sequence_number);
        let mut packet = std::mem::take(&mut self.history[slot].packet);
        packet.clear();
        let needed = 12 + self.extension_len(extensions) + payload_len;
        // Sized for the longest packet once: no allocation per packet
        // once every slot was used (issue 18).
        self.longest = self.longest.max(needed);
        packet.reserve(self.longest);
        packet.resize(needed, 0);
        let written = self
            .write_header(&mut packet, header, extensions)
            .map_err(MediaError::from)
            .and_then(|n| Ok(n + payload(&mut packet[n..])?));
        let len = match written {
            Ok(len) => len,
            Err(e) => {
                packet.clear();
                self.history[slot].packet = packet;
                return Err(e);
            }
        };
        packet.truncate(len);
        self.counters.packets_sent += 1;
        self.counters.bytes_sent += payload_len as u64;
        self.history[slot] = Stored {
            sequence_number: header.sequence_number,
            packet,
            stored_at: Some(now),
            sent_at: None,
            repair_queued: false,
        };
        Ok(())
    }

    /// The RTX packet (RFC 4588 §4) that repairs `sequence_number`,
    /// written into `out`; false without RTX or once the packet left the
    /// history. SRTP would refuse a resend of the packet itself as a
    /// replay, so there is no repair without RTX.
    pub fn retransmit(&mut self, sequence_number: u16, out: &mut Vec<u8>) -> bool {
        let Some((rtx_ssrc, rtx_payload_type)) = self.params.rtx else {
            return false;
        };
        let Some(original) = self.packet(sequence_number).and_then(|p| RtpPacket::parse(p).ok()) else {
            return false;
        };
        let header = RtpHeader {
            marker: original.marker(),
            payload_type: rtx_payload_type,
            sequence_number: self.rtx_sequence_number,
            timestamp: original.timestamp(),
            ssrc: rtx_ssrc,
            csrcs: &[],
        };
        // The original's extensions go along (a decoder needs the
        // dependency descriptor of a repaired packet too), its RID as the
        // repaired RID (RFC 8852 §3.2).
        let payload = original.payload();
        out.clear();
        out.resize(original.header_len() + 2 + payload.len(), 0);
        let renamed = (self.params.rid.as_ref())
            .map(|(id, _)| *id)
            .zip(self.params.repaired_rid);
        let Ok(n) = write_header_like(out, &header, &original, renamed) else {
            return false;
        };
        // The original sequence number (OSN), then the original payload.
        out[n..n + 2].copy_from_slice(&sequence_number.to_be_bytes());
        out[n + 2..n + 2 + payload.len()].copy_from_slice(payload);
        out.truncate(n + 2 + payload.len());
        let repaired = payload.len() as u64;
        self.rtx_sequence_number = self.rtx_sequence_number.wrapping_add(1);
        self.counters.retransmitted_packets_sent += 1;
        self.counters.retransmitted_bytes_sent += repaired;
        true
    }

    /// A padding-only packet (RFC 3550 §5.1: the P bit, and the last
    /// octet counts the padding) of about `size` bytes, written into
    /// `out`, for a bandwidth probe when there is no packet to copy. With
    /// RTX it goes on the RTX stream (RFC 4588 §4: its SSRC, payload type
    /// and sequence numbers; no original sequence number, as libwebrtc
    /// sends padding there, and a receiver counts it as padding), so the media stream's
    /// sequence numbers stay those of media (in RTP mode the
    /// application's). Without RTX it takes the media stream's next
    /// sequence number, so the receiver sees no gap, and the latest
    /// frame's timestamp; false then in RTP mode (`rtp_mode`), where the
    /// application writes the sequence numbers. Never kept in the
    /// history (a NACK for it is not answered).
    pub fn write_padding(&mut self, size: usize, rtp_mode: bool, out: &mut Vec<u8>) -> bool {
        let timestamp = self.latest.map_or(self.timestamp_offset, |(ts, _)| ts);
        let (ssrc, payload_type, sequence_number) = match self.params.rtx {
            Some((ssrc, payload_type)) => (ssrc, payload_type, self.rtx_sequence_number),
            None if rtp_mode => return false,
            None => (self.params.ssrc, self.params.payload_type, self.sequence_number),
        };
        let header = RtpHeader {
            marker: false,
            payload_type,
            sequence_number,
            timestamp,
            ssrc,
            csrcs: &[],
        };
        let extensions = Extensions {
            repair: self.params.rtx.is_some(),
            ..Extensions::default()
        };
        let header_len = 12 + self.extension_len(&extensions);
        // The count is one octet: at most 255 bytes of padding.
        let padding = size.saturating_sub(header_len).clamp(1, MAX_PADDING);
        out.clear();
        out.resize(header_len + padding, 0);
        let Ok(n) = self.write_header(out, &header, &extensions) else {
            return false;
        };
        out.truncate(n + padding);
        out[0] |= 0x20;
        out[n + padding - 1] = padding as u8;
        if self.params.rtx.is_some() {
            self.rtx_sequence_number = self.rtx_sequence_number.wrapping_add(1);
        } else {
            self.sequence_number = self.sequence_number.wrapping_add(1);
        }
        true
    }

    /// The sender information of a report at `now` (RFC 3550 §6.4.1):
    /// the RTP timestamp of that instant, extrapolated from the latest
    /// frame; `None` before the first frame.
    pub fn sender_info(&self, now: Instant, clock: &NtpClock) -> Option<SenderInfo> {
        let (timestamp, sent) = self.latest?;
        let elapsed = now.saturating_duration_since(sent);
        let ticks = elapsed.as_nanos() * u128::from(self.params.clock_rate) / 1_000_000_000;
        Some(SenderInfo {
            ntp_timestamp: clock.ntp(now),
            rtp_timestamp: timestamp.wrapping_add(ticks as u32),
            packet_count: self.counters.packets_sent as u32,
            octet_count: self.counters.bytes_sent as u32,
        })
    }
}

/// Writes `header` with the header extensions of `like` (the same
/// elements, in the same form), as RTX copies them between the packet
/// it repairs and itself (RFC 4588 §4), the element of id `from` as id
/// `to` when `renamed`; returns the header's length.
pub(crate) fn write_header_like(
    out: &mut [u8],
    header: &RtpHeader<'_>,
    like: &RtpPacket<'_>,
    renamed: Option<(u8, u8)>,
) -> Result<usize, natter_rtp::Error> {
    let mut writer = RtpWriter::new(out, header)?;
    if let Some(form) = like.extension_form() {
        writer.start_extensions(form)?;
        for e in like.extensions() {
            let id = match renamed {
                Some((from, to)) if e.id == from => to,
                _ => e.id,
            };
            writer.add_extension(id, e.value)?;
        }
    }
    writer.finish_header()
}

/// Writes `seq` into the transport-wide sequence number element (id
/// `id`) of `packet`, where [`SendStream`] puts it: the first element of
/// the header extension block, two bytes
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2). RTX copies
/// the block of the packet it repairs, element for element, so that a
/// retransmission is numbered the same way. False when the packet has
/// no such element.
pub(crate) fn set_transport_seq(packet: &mut [u8], id: u8, seq: u16) -> bool {
    let Ok(parsed) = RtpPacket::parse(packet) else {
        return false;
    };
    let Some(form) = parsed.extension_form() else {
        return false;
    };
    if parsed
        .extensions()
        .next()
        .is_none_or(|e| e.id != id || e.value.len() != 2)
    {
        return false;
    }
    // The fixed header, the CSRCs, the block's profile and length, the
    // element's header.
    let at = 12 + 4 * parsed.csrc_count() + 4 + form.element_header_len();
    packet[at..at + 2].copy_from_slice(&seq.to_be_bytes());
    true
}

#[cfg(test)]
mod tests;
