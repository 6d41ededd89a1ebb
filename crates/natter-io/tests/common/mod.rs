//! What the loopback tests share.

use natter_io::{PeerConnection, PeerEvent};
use tokio::sync::mpsc;

/// One offer/answer exchange: `offerer` offers, `answerer` answers.
pub async fn negotiate(offerer: &PeerConnection, answerer: &PeerConnection) {
    let offer = offerer.create_offer().await.unwrap();
    offerer.set_local_description(offer.clone()).await.unwrap();
    answerer.set_remote_description(offer).await.unwrap();
    let answer = answerer.create_answer().await.unwrap();
    answerer.set_local_description(answer.clone()).await.unwrap();
    offerer.set_remote_description(answer).await.unwrap();
}

/// Trickles candidates both ways until the answerer has an event other
/// than a candidate, which it returns (the offerer's other events are
/// dropped).
pub async fn next_after_candidates(
    offerer: &PeerConnection,
    offerer_events: &mut mpsc::Receiver<PeerEvent>,
    answerer: &PeerConnection,
    answerer_events: &mut mpsc::Receiver<PeerEvent>,
) -> PeerEvent {
    loop {
        tokio::select! {
            event = offerer_events.recv() => {
                if let Some(PeerEvent::IceCandidate(c)) = event {
                    answerer.add_ice_candidate(Some(c)).await.unwrap();
                }
            }
            event = answerer_events.recv() => match event.expect("the answerer's events go on") {
                PeerEvent::IceCandidate(c) => offerer.add_ice_candidate(Some(c)).await.unwrap(),
                event => return event,
            },
        }
    }
}
