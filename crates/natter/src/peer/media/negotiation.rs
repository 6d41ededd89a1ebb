//! What an exchange and DTLS set up: each transceiver's senders (one
//! stream, or one per simulcast RID, RFC 8853) and receiver as the
//! negotiation left them (RFC 8829 §5.10), and the SRTP keys DTLS
//! exported (RFC 5764 §4.2).

use natter_rtp::extension::{
    URI_MID, URI_REPAIRED_RTP_STREAM_ID, URI_RTP_STREAM_ID, URI_SSRC_AUDIO_LEVEL, URI_TRANSPORT_WIDE_CC,
};
use natter_rtp::payload::URI_DEPENDENCY_DESCRIPTOR;
use natter_srtp::SrtpContext;
use rand::Rng;

use super::super::event::PeerEvent;
use super::super::PeerConnection;
use super::receiver::{extension_id, Receiver};
use super::{Sender, REPORT_INTERVAL};
use crate::jsep::direction::{receives, sends};
use crate::jsep::{LocalTrack, Negotiated, NegotiatedMedia};
use crate::media::{Format, SendParams, SendStream};

impl PeerConnection {
    /// Senders and receivers as an exchange left them.
    pub(in crate::peer) fn apply_media(&mut self, negotiated: &Negotiated) {
        self.media.rtcp_rsize = negotiated.media.iter().any(|m| !m.rejected && m.rtcp_rsize);
        // One extension id for the bundle (RFC 8843 §9.1), on sections we
        // receive with a codec that asked for transport-cc feedback.
        self.media.twcc_extension = negotiated
            .media
            .iter()
            .filter(|m| !m.rejected && receives(m.direction))
            .filter(|m| {
                m.recv_codecs
                    .iter()
                    .any(|c| c.feedback.iter().any(|f| f.kind == "transport-cc"))
            })
            .find_map(|m| u8::try_from(m.extension_id(URI_TRANSPORT_WIDE_CC)?).ok());
        for media in &negotiated.media {
            let id = media.transceiver;
            let track = self.jsep.transceiver(id).and_then(|t| t.track()).cloned();
            let layers = send_params(media, track.as_ref()).map_or_else(Vec::new, |p| send_layers(media, p));
            let same_track = |sender: &Sender| {
                (track.as_ref()).is_some_and(|t| sender.streams.iter().any(|s| s.params().ssrc == t.ssrc))
            };
            match self.media.senders.remove(&id) {
                Some(sender) if !layers.is_empty() && same_track(&sender) => {
                    let streams = self.send_streams(sender.streams, layers);
                    self.media.senders.insert(id, Sender { streams, active: true });
                }
                _ if !layers.is_empty() => {
                    let streams = self.send_streams(Vec::new(), layers);
                    self.media.senders.insert(id, Sender { streams, active: true });
                }
                // The same track, in a direction that does not send: paused.
                Some(mut sender) if !media.rejected && same_track(&sender) => {
                    sender.active = false;
                    self.media.senders.insert(id, sender);
                }
                _ => {}
            }
            if media.rejected || !receives(media.direction) {
                self.media.receivers.remove(&id);
                continue;
            }
            let receiver = Receiver::new(media);
            match self.media.receivers.get_mut(&id) {
                // The streams go on; what the exchange says is renewed.
                Some(existing) => existing.renew(receiver),
                None => {
                    self.media.receivers.insert(id, receiver);
                    self.events.push_back(PeerEvent::Track {
                        transceiver: id,
                        mid: media.mid.clone(),
                        kind: media.kind,
                    });
                }
            }
        }
    }

    /// The streams that send `layers`: a layer sent before keeps its
    /// stream, SSRCs and numbering (RFC 3550 §5.1); a new one has the
    /// track's SSRCs if it is the first, else SSRCs of its own.
    fn send_streams(&mut self, mut old: Vec<SendStream>, layers: Vec<SendParams>) -> Vec<SendStream> {
        let mut streams = Vec::with_capacity(layers.len());
        for (i, mut params) in layers.into_iter().enumerate() {
            let kept = (old.iter().position(|s| s.params().rid() == params.rid())).map(|at| old.swap_remove(at));
            let rtx_payload_type = params.rtx.map(|(_, pt)| pt);
            let (ssrc, rtx_ssrc) = match &kept {
                Some(stream) => (stream.params().ssrc, stream.params().rtx.map(|(ssrc, _)| ssrc)),
                None if i == 0 => (params.ssrc, params.rtx.map(|(ssrc, _)| ssrc)),
                None => (self.new_ssrc(), Some(self.new_ssrc())),
            };
            params.ssrc = ssrc;
            params.rtx = rtx_ssrc.or(params.rtx.map(|(ssrc, _)| ssrc)).zip(rtx_payload_type);
            streams.push(match kept {
                Some(mut stream) => {
                    stream.set_params(params);
                    stream
                }
                None => SendStream::new(params, self.rng.gen()),
            });
        }
        streams
    }

    /// DTLS connected: the SRTP keys.
    pub(in crate::peer) fn start_srtp(&mut self, local: SrtpContext, remote: SrtpContext) {
        self.media.srtp = Some((local, remote));
        self.media.next_report = Some(self.now + REPORT_INTERVAL / 2);
    }
}

/// The parameters of what we send in section `media`, if we send: the
/// first codec the peer accepted that natter can packetize.
fn send_params(media: &NegotiatedMedia, track: Option<&LocalTrack>) -> Option<SendParams> {
    let track = track?;
    if media.rejected || !sends(media.direction) {
        return None;
    }
    let codec = media
        .send_codecs
        .iter()
        .find(|c| Format::from_name(&c.name).is_some())?;
    Some(SendParams {
        ssrc: track.ssrc,
        format: Format::from_name(&codec.name)?,
        payload_type: codec.payload_type,
        clock_rate: codec.clock_rate,
        rtx: track.rtx_ssrc.zip(codec.rtx_payload_type),
        mid: media
            .extension_id(URI_MID)
            .and_then(|id| u8::try_from(id).ok())
            .filter(|id| (1..=14).contains(id))
            .map(|id| (id, media.mid.clone())),
        audio_level: extension_id(media, URI_SSRC_AUDIO_LEVEL),
        dependency_descriptor: extension_id(media, URI_DEPENDENCY_DESCRIPTOR),
        rid: None,
        repaired_rid: None,
        transport_cc: extension_id(media, URI_TRANSPORT_WIDE_CC),
    })
}

/// The streams of section `media` with the parameters `one`: one per
/// simulcast RID negotiated (RFC 8853), each naming its RID (RFC 8852),
/// else `one` alone.
fn send_layers(media: &NegotiatedMedia, one: SendParams) -> Vec<SendParams> {
    let Some(rid_id) = extension_id(media, URI_RTP_STREAM_ID).filter(|_| !media.send_rids.is_empty()) else {
        return vec![one];
    };
    let repaired_rid = extension_id(media, URI_REPAIRED_RTP_STREAM_ID);
    (media.send_rids.iter())
        .map(|rid| SendParams {
            rid: Some((rid_id, rid.clone())),
            repaired_rid,
            ..one.clone()
        })
        .collect()
}
