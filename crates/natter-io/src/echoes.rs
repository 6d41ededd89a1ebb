//! The signaling of the webrtc-echoes convention, as `natter echo` and
//! natter-io's examples speak it: `POST /offer` with
//! `{"type":"offer","sdp":...}` (a complete offer: the offerer waited for
//! gathering, no trickle), answered once our own gathering completed,
//! the candidates in the SDP (RFC 8829 §5.3: a complete description
//! carries `a=end-of-candidates`); and our own complete offer
//! ([`gathered`]). Errors are the step that failed, as text an HTTP
//! reply can carry.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::{Description, LocalAddresses, PeerConnection, PeerEvent, PeerStats, SdpType};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// W3C `RTCSessionDescriptionInit` as JSON.
#[derive(Deserialize, Serialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// A connection that answered an offer, or made one: its description
/// with every candidate.
pub struct Answered {
    pub pc: PeerConnection,
    pub events: Events,
    pub answer: SessionDescription,
}

/// The sockets to open: on these addresses, or on every address of the
/// host's interfaces, loopback included.
pub fn local_addresses(addresses: &[IpAddr]) -> LocalAddresses {
    if addresses.is_empty() {
        LocalAddresses::Host {
            loopback: true,
            ipv6: true,
        }
    } else {
        LocalAddresses::Addresses(addresses.iter().map(|ip| SocketAddr::new(*ip, 0)).collect())
    }
}

/// Applies `offer` to a new connection (`spawned`: its own sockets or an
/// endpoint's), lets `prepare` add tracks before the answer is made, and
/// returns the answer with every candidate once gathering completed (or
/// `gather_timeout` passed). The error says which step failed.
pub async fn answer<F, Fut>(
    spawned: Result<(PeerConnection, mpsc::Receiver<PeerEvent>), crate::Error>,
    offer: SessionDescription,
    gather_timeout: Duration,
    prepare: F,
) -> Result<Answered, String>
where
    F: FnOnce(PeerConnection) -> Fut,
    Fut: Future<Output = Result<(), crate::Error>>,
{
    let (pc, events) = spawned.map_err(|e| format!("spawn: {e}"))?;
    if let Err(error) = apply_offer(&pc, offer, prepare).await {
        pc.close().await;
        return Err(error);
    }
    gathered(pc, events, gather_timeout, "answer").await
}

/// Waits for ICE gathering to complete (at most `gather_timeout`); the
/// local description of `kind` then, with every candidate.
pub async fn gathered(
    pc: PeerConnection,
    mut events: mpsc::Receiver<PeerEvent>,
    gather_timeout: Duration,
    kind: &str,
) -> Result<Answered, String> {
    let mut early = Vec::new();
    let gathered = tokio::time::timeout(gather_timeout, async {
        while let Some(event) = events.recv().await {
            if event == PeerEvent::IceGatheringComplete {
                return true;
            }
            early.push(event);
        }
        false
    })
    .await;
    if gathered != Ok(true) {
        tracing::warn!("gathering did not complete in time; the {kind} has what we have");
    }
    let sdp = match pc.local_description().await {
        Ok(Some(sdp)) => sdp,
        other => return Err(format!("no local description: {other:?}")),
    };
    Ok(Answered {
        events: Events {
            early: early.into_iter(),
            events,
            pc: pc.clone(),
            stats_every: tokio::time::interval(Duration::from_millis(500)),
        },
        pc,
        answer: SessionDescription { kind: kind.into(), sdp },
    })
}

/// Applies `offer` to `pc`, lets `prepare` add tracks, and makes and
/// sets the answer. The error says which step failed.
pub async fn apply_offer<F, Fut>(pc: &PeerConnection, offer: SessionDescription, prepare: F) -> Result<(), String>
where
    F: FnOnce(PeerConnection) -> Fut,
    Fut: Future<Output = Result<(), crate::Error>>,
{
    if offer.kind != "offer" {
        return Err(format!("expected {{\"type\":\"offer\"}}, got {:?}", offer.kind));
    }
    let remote = Description {
        kind: SdpType::Offer,
        sdp: offer.sdp,
    };
    pc.set_remote_description(remote)
        .await
        .map_err(|e| format!("setRemoteDescription(offer): {e}"))?;
    prepare(pc.clone()).await.map_err(|e| format!("adding tracks: {e}"))?;
    let answer = pc.create_answer().await.map_err(|e| format!("createAnswer: {e}"))?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| format!("setLocalDescription(answer): {e}"))
}

/// A connection's events, those that came before the answer first, with
/// its media statistics taken every half second on the side.
pub struct Events {
    early: std::vec::IntoIter<PeerEvent>,
    events: mpsc::Receiver<PeerEvent>,
    pc: PeerConnection,
    stats_every: tokio::time::Interval,
}

impl Events {
    /// The next event, `None` once the connection is gone; `on_stats`
    /// gets [`media_stats`] meanwhile.
    pub async fn next_or_stats(&mut self, mut on_stats: impl FnMut(serde_json::Value)) -> Option<PeerEvent> {
        if let Some(event) = self.early.next() {
            return Some(event);
        }
        loop {
            tokio::select! {
                event = self.events.recv() => return event,
                _ = self.stats_every.tick() => {
                    if let Ok(stats) = self.pc.stats().await {
                        on_stats(media_stats(&stats));
                    }
                }
            }
        }
    }
}

/// The media part of natter's stats, as JSON for `/status`.
pub fn media_stats(stats: &PeerStats) -> serde_json::Value {
    let senders: Vec<_> = stats
        .senders
        .iter()
        .map(|(id, s)| {
            let c = &s.counters;
            serde_json::json!({
                "transceiver": id.to_string(), "rid": s.rid, "ssrc": s.ssrc, "format": format!("{:?}", s.format), "active": s.active,
                "packets_sent": c.packets_sent, "frames_sent": c.frames_sent,
                "retransmitted_packets_sent": c.retransmitted_packets_sent, "nack_count": c.nack_count,
                "pli_count": c.pli_count, "fir_count": c.fir_count, "remote_packets_lost": c.remote_packets_lost,
                "rtt_ms": c.round_trip_time.map(|d| d.as_secs_f64() * 1000.0),
            })
        })
        .collect();
    let receivers: Vec<_> = stats
        .receivers
        .iter()
        .map(|(id, r)| {
            serde_json::json!({
                "transceiver": id.to_string(), "rid": r.rid, "ssrc": r.ssrc, "packets_received": r.packets_received,
                "packets_lost": r.packets_lost, "jitter_ms": r.jitter.as_secs_f64() * 1000.0,
                "frames_received": r.frames_received, "keyframes_received": r.keyframes_received,
                "frames_dropped": r.frames_dropped, "frame_size": r.frame_size,
                "retransmitted_packets_received": r.retransmitted_packets_received, "nack_count": r.nack_count,
                "pli_count": r.pli_count, "sender_report": r.last_sender_report.is_some(),
            })
        })
        .collect();
    let m = &stats.media;
    serde_json::json!({
        "senders": senders, "receivers": receivers, "twcc_feedback_sent": m.twcc_feedback_sent,
        "padding_sent": m.padding_sent, "transport_numbered": m.transport_numbered, "pacer_expired": m.pacer_expired,
        "available_outgoing_bitrate": stats.selected_pair.as_ref().map(|p| p.available_outgoing_bitrate),
        "dropped": { "srtp_failed": m.srtp_failed, "rtp": m.rtp_dropped, "unknown_rid": m.unknown_rid, "rtcp": m.rtcp_dropped, "unsent": m.unsent,
                     "padding": m.padding_received },
    })
}
