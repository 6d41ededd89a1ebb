//! Random sequences of JSEP operations: no panics, a signaling state
//! machine that moves only as W3C webrtc-pc says, and, when the peers
//! follow the protocol, exchanges that always complete and agree.

use natter::jsep::{
    IceCredentials, Jsep, JsepConfig, JsepError, LocalTrack, MediaKind, Negotiated, SdpType, SignalingState,
};
use natter_sdp::Direction;
use proptest::prelude::*;

fn peer(id: u64) -> Jsep {
    let ufrag = format!("peer{id}");
    let config = JsepConfig::new(
        id,
        IceCredentials::new(&ufrag, format!("{ufrag}0123456789abcdefghij")),
        format!("sha-256 {}", vec![format!("{id:02X}"); 32].join(":")),
        "props",
    );
    Jsep::new(config).unwrap()
}

/// What a peer has written and not yet delivered.
#[derive(Default, Clone)]
struct Outbox {
    offer: Option<String>,
    answer: Option<String>,
}

#[derive(Clone, Debug)]
enum Op {
    AddTransceiver {
        peer: usize,
        video: bool,
        direction: u8,
        track: bool,
    },
    AddDataChannel {
        peer: usize,
    },
    SetDirection {
        peer: usize,
        index: usize,
        direction: u8,
    },
    Stop {
        peer: usize,
        index: usize,
    },
    CreateOffer {
        peer: usize,
    },
    SetLocalOffer {
        peer: usize,
    },
    CreateAnswer {
        peer: usize,
    },
    SetLocalAnswer {
        peer: usize,
        provisional: bool,
    },
    DeliverOffer {
        peer: usize,
        mangle: Option<usize>,
    },
    DeliverAnswer {
        peer: usize,
        provisional: bool,
        mangle: Option<usize>,
    },
    Rollback {
        peer: usize,
        remote: bool,
    },
    RestartIce {
        peer: usize,
        serial: u8,
    },
    Candidate {
        peer: usize,
        port: u16,
    },
    Close {
        peer: usize,
    },
}

fn direction(n: u8) -> Direction {
    [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ][usize::from(n % 4)]
}

fn op() -> impl Strategy<Value = Op> {
    let peer = 0..2usize;
    prop_oneof![
        3 => (peer.clone(), any::<bool>(), any::<u8>(), any::<bool>())
            .prop_map(|(peer, video, direction, track)| Op::AddTransceiver { peer, video, direction, track }),
        1 => peer.clone().prop_map(|peer| Op::AddDataChannel { peer }),
        1 => (peer.clone(), 0..4usize, any::<u8>()).prop_map(|(peer, index, direction)| Op::SetDirection { peer, index, direction }),
        1 => (peer.clone(), 0..4usize).prop_map(|(peer, index)| Op::Stop { peer, index }),
        3 => peer.clone().prop_map(|peer| Op::CreateOffer { peer }),
        3 => peer.clone().prop_map(|peer| Op::SetLocalOffer { peer }),
        3 => peer.clone().prop_map(|peer| Op::CreateAnswer { peer }),
        3 => (peer.clone(), prop::bool::weighted(0.2)).prop_map(|(peer, provisional)| Op::SetLocalAnswer { peer, provisional }),
        3 => (peer.clone(), prop::option::weighted(0.2, 0..60usize)).prop_map(|(peer, mangle)| Op::DeliverOffer { peer, mangle }),
        3 => (peer.clone(), prop::bool::weighted(0.2), prop::option::weighted(0.2, 0..60usize))
            .prop_map(|(peer, provisional, mangle)| Op::DeliverAnswer { peer, provisional, mangle }),
        1 => (peer.clone(), any::<bool>()).prop_map(|(peer, remote)| Op::Rollback { peer, remote }),
        1 => (peer.clone(), any::<u8>()).prop_map(|(peer, serial)| Op::RestartIce { peer, serial }),
        1 => (peer, any::<u16>()).prop_map(|(peer, port)| Op::Candidate { peer, port }),
    ]
}

/// Drops line `n` (mod the line count) from a description.
fn mangled(sdp: &str, n: usize) -> String {
    let lines: Vec<&str> = sdp.split("\r\n").filter(|l| !l.is_empty()).collect();
    let drop = n % lines.len().max(1);
    lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != drop)
        .map(|(_, l)| format!("{l}\r\n"))
        .collect()
}

/// The W3C table, written out again here so that the test does not
/// trust the code under test.
fn expected(state: SignalingState, local: bool, kind: SdpType) -> Option<SignalingState> {
    use SignalingState::*;
    match (local, kind, state) {
        (true, SdpType::Offer, Stable | HaveLocalOffer) => Some(HaveLocalOffer),
        (true, SdpType::Answer, HaveRemoteOffer | HaveLocalPranswer) => Some(Stable),
        (true, SdpType::Pranswer, HaveRemoteOffer | HaveLocalPranswer) => Some(HaveLocalPranswer),
        (false, SdpType::Offer, Stable | HaveRemoteOffer | HaveLocalOffer) => Some(HaveRemoteOffer),
        (false, SdpType::Answer, HaveLocalOffer | HaveRemotePranswer) => Some(Stable),
        (false, SdpType::Pranswer, HaveLocalOffer | HaveRemotePranswer) => Some(HaveRemotePranswer),
        (_, SdpType::Rollback, HaveLocalOffer | HaveRemoteOffer) => Some(Stable),
        _ => None,
    }
}

/// Applies a description and checks the state machine: success moves as
/// W3C says; failure leaves the state (an offer in have-local-offer has
/// rolled back first) and is never an InvalidStateError where W3C allows
/// the call.
fn apply(jsep: &mut Jsep, local: bool, kind: SdpType, sdp: &str) -> Result<Option<Negotiated>, JsepError> {
    let before = jsep.signaling_state();
    let result = if local {
        jsep.set_local_description(kind, sdp)
    } else {
        jsep.set_remote_description(kind, sdp)
    };
    let after = jsep.signaling_state();
    let allowed = expected(before, local, kind);
    match &result {
        Ok(_) => assert_eq!(Some(after), allowed, "{before} + {kind} (local: {local})"),
        Err(JsepError::InvalidState { .. }) => {
            assert_eq!(allowed, None, "{before} + {kind} (local: {local}) refused");
            assert_eq!(after, before);
        }
        Err(_) if !local && kind == SdpType::Offer && before == SignalingState::HaveLocalOffer => {
            assert_eq!(after, SignalingState::Stable, "implicit rollback stays");
        }
        Err(_) => assert_eq!(after, before, "a failed {kind} changed the state"),
    }
    if let (SdpType::Answer, Ok(negotiated)) = (kind, &result) {
        assert!(negotiated.is_some(), "an applied answer negotiates");
    }
    result
}

/// Invariants of one peer at any time.
fn check_peer(jsep: &Jsep) {
    let mut mids: Vec<&str> = jsep.transceivers().iter().filter_map(|t| t.mid()).collect();
    mids.extend(jsep.data_channel_mid());
    let count = mids.len();
    mids.sort_unstable();
    mids.dedup();
    assert_eq!(mids.len(), count, "mids are unique");
    if jsep.signaling_state() != SignalingState::Stable {
        assert!(!jsep.negotiation_needed());
    }
    if let (Some(local), Some(remote)) = (jsep.current_local_description(), jsep.current_remote_description()) {
        let local_mids: Vec<Option<&str>> = local.media.iter().map(|m| m.mid()).collect();
        let remote_mids: Vec<Option<&str>> = remote.media.iter().map(|m| m.mid()).collect();
        assert_eq!(local_mids, remote_mids, "the current descriptions pair up");
    }
}

fn run(peers: &mut [Jsep; 2], outboxes: &mut [Outbox; 2], op: &Op) {
    match *op {
        Op::AddTransceiver {
            peer,
            video,
            direction: d,
            track,
        } => {
            let kind = if video { MediaKind::Video } else { MediaKind::Audio };
            if let Ok(id) = peers[peer].add_transceiver(kind, direction(d)) {
                if track {
                    let track = LocalTrack {
                        ssrc: 1000 + id_number(&peers[peer]),
                        rtx_ssrc: video.then_some(2000 + id_number(&peers[peer])),
                        stream_id: None,
                        track_id: format!("t{}", id_number(&peers[peer])),
                    };
                    peers[peer].set_track(id, Some(track)).unwrap();
                }
            }
        }
        Op::AddDataChannel { peer } => drop(peers[peer].add_data_channel()),
        Op::SetDirection {
            peer,
            index,
            direction: d,
        } => {
            if let Some(id) = peers[peer].transceivers().get(index).map(|t| t.id()) {
                let _ = peers[peer].set_direction(id, direction(d));
            }
        }
        Op::Stop { peer, index } => {
            if let Some(id) = peers[peer].transceivers().get(index).map(|t| t.id()) {
                let _ = peers[peer].stop_transceiver(id);
            }
        }
        Op::CreateOffer { peer } => {
            let closed = peers[peer].signaling_state() == SignalingState::Closed;
            match peers[peer].create_offer() {
                Ok(offer) => outboxes[peer].offer = Some(offer),
                Err(error) => assert!(closed, "{error}"),
            }
        }
        Op::SetLocalOffer { peer } => {
            if let Some(offer) = outboxes[peer].offer.clone() {
                let _ = apply(&mut peers[peer], true, SdpType::Offer, &offer);
            }
        }
        Op::CreateAnswer { peer } => {
            let state = peers[peer].signaling_state();
            match peers[peer].create_answer() {
                Ok(answer) => outboxes[peer].answer = Some(answer),
                Err(JsepError::InvalidState { .. }) => assert!(!matches!(
                    state,
                    SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer
                )),
                Err(JsepError::IceCredentialsNeeded) => {}
                Err(error) => panic!("createAnswer in {state}: {error}"),
            }
        }
        Op::SetLocalAnswer { peer, provisional } => {
            if let Some(answer) = outboxes[peer].answer.clone() {
                let kind = if provisional {
                    SdpType::Pranswer
                } else {
                    SdpType::Answer
                };
                let _ = apply(&mut peers[peer], true, kind, &answer);
            }
        }
        Op::DeliverOffer { peer, mangle } => {
            if let Some(offer) = peers[peer].local_description().map(ToString::to_string) {
                let text = mangle.map_or(offer.clone(), |n| mangled(&offer, n));
                let _ = apply(&mut peers[1 - peer], false, SdpType::Offer, &text);
            }
        }
        Op::DeliverAnswer {
            peer,
            provisional,
            mangle,
        } => {
            if let Some(answer) = outboxes[peer].answer.clone() {
                let text = mangle.map_or(answer.clone(), |n| mangled(&answer, n));
                let kind = if provisional {
                    SdpType::Pranswer
                } else {
                    SdpType::Answer
                };
                let _ = apply(&mut peers[1 - peer], false, kind, &text);
            }
        }
        Op::Rollback { peer, remote } => {
            let _ = apply(&mut peers[peer], !remote, SdpType::Rollback, "");
        }
        Op::RestartIce { peer, serial } => {
            let ufrag = format!("r{serial:03}");
            let _ = peers[peer].restart_ice(IceCredentials::new(&ufrag, format!("{ufrag}restart0123456789ab")));
        }
        Op::Candidate { peer, port } => {
            let _ = peers[peer].add_local_candidate(&format!("candidate:1 1 udp 2122260223 192.0.2.1 {port} typ host"));
        }
        Op::Close { peer } => peers[peer].close(),
    }
}

fn id_number(jsep: &Jsep) -> u32 {
    jsep.transceivers().len() as u32
}

/// A complete exchange between peers that follow the protocol, with the
/// answerer giving new ICE credentials when the offer restarts ICE.
fn exchange(offerer: &mut Jsep, answerer: &mut Jsep, serial: &mut u32) -> (Negotiated, Negotiated) {
    let offer = offerer.create_offer().unwrap();
    offerer.set_local_description(SdpType::Offer, &offer).unwrap();
    answerer.set_remote_description(SdpType::Offer, &offer).unwrap();
    if answerer.needs_ice_credentials() {
        *serial += 1;
        let ufrag = format!("x{serial:03}");
        answerer
            .restart_ice(IceCredentials::new(&ufrag, format!("{ufrag}restart0123456789ab")))
            .unwrap();
    }
    let answer = answerer.create_answer().unwrap();
    let answered = answerer
        .set_local_description(SdpType::Answer, &answer)
        .unwrap()
        .unwrap();
    let offered = offerer
        .set_remote_description(SdpType::Answer, &answer)
        .unwrap()
        .unwrap();
    (offered, answered)
}

/// The two summaries of one exchange describe the same session.
fn check_agreement(offered: &Negotiated, answered: &Negotiated) {
    assert_eq!(offered.media.len(), answered.media.len());
    for (a, b) in offered.media.iter().zip(&answered.media) {
        assert_eq!(a.mid, b.mid);
        assert_eq!(a.rejected, b.rejected);
        assert_eq!(a.send_codecs, b.recv_codecs);
        assert_eq!(a.recv_codecs, b.send_codecs);
        assert_eq!(a.extensions, b.extensions);
        if !a.rejected {
            assert!(!a.recv_codecs.is_empty());
        }
    }
    assert_eq!(offered.data_channel.is_some(), answered.data_channel.is_some());
    match (&offered.transport, &answered.transport) {
        (Some(a), Some(b)) => {
            assert_ne!(a.dtls_role, b.dtls_role);
            assert_ne!(a.ice_controlling, b.ice_controlling);
            assert_eq!((&a.local_ice, &a.remote_ice), (&b.remote_ice, &b.local_ice));
            assert_eq!(a.mids, b.mids);
        }
        (None, None) => {}
        _ => panic!("one side has a transport, the other not"),
    }
}

#[derive(Clone, Debug)]
enum Step {
    Change(Op),
    /// A full exchange offered by `peer`.
    Exchange {
        peer: usize,
    },
    /// Both offer; the polite one (`polite`) rolls back and answers.
    Glare {
        polite: usize,
        implicit: bool,
    },
    /// An offer made and applied, then rolled back.
    Abandon {
        peer: usize,
    },
}

fn change() -> impl Strategy<Value = Op> {
    let peer = 0..2usize;
    prop_oneof![
        3 => (peer.clone(), any::<bool>(), any::<u8>(), any::<bool>())
            .prop_map(|(peer, video, direction, track)| Op::AddTransceiver { peer, video, direction, track }),
        1 => peer.clone().prop_map(|peer| Op::AddDataChannel { peer }),
        1 => (peer.clone(), 0..4usize, any::<u8>()).prop_map(|(peer, index, direction)| Op::SetDirection { peer, index, direction }),
        1 => (peer.clone(), 0..4usize).prop_map(|(peer, index)| Op::Stop { peer, index }),
        1 => (peer.clone(), any::<u8>()).prop_map(|(peer, serial)| Op::RestartIce { peer, serial }),
        1 => (peer, any::<u16>()).prop_map(|(peer, port)| Op::Candidate { peer, port }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => change().prop_map(Step::Change),
        3 => (0..2usize).prop_map(|peer| Step::Exchange { peer }),
        1 => (0..2usize, any::<bool>()).prop_map(|(polite, implicit)| Step::Glare { polite, implicit }),
        1 => (0..2usize).prop_map(|peer| Step::Abandon { peer }),
    ]
}

fn pair(peers: &mut [Jsep; 2], first: usize) -> (&mut Jsep, &mut Jsep) {
    let (a, b) = peers.split_at_mut(1);
    if first == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_keeps_the_state_machine_valid(
        ops in prop::collection::vec(op(), 1..60),
        close in prop::option::weighted(0.2, (0..60usize, 0..2usize)),
    ) {
        let mut peers = [peer(1), peer(2)];
        let mut outboxes = [Outbox::default(), Outbox::default()];
        for (index, op) in ops.iter().enumerate() {
            if let Some((_, peer)) = close.filter(|(at, _)| *at == index) {
                run(&mut peers, &mut outboxes, &Op::Close { peer });
            }
            run(&mut peers, &mut outboxes, op);
            check_peer(&peers[0]);
            check_peer(&peers[1]);
        }
    }

    #[test]
    fn peers_that_follow_the_protocol_always_agree(steps in prop::collection::vec(step(), 1..30)) {
        let mut peers = [peer(1), peer(2)];
        let mut outboxes = [Outbox::default(), Outbox::default()];
        let mut serial = 0;
        for step in &steps {
            match step {
                Step::Change(op) => run(&mut peers, &mut outboxes, op),
                Step::Exchange { peer } => {
                    let (offerer, answerer) = pair(&mut peers, *peer);
                    let (offered, answered) = exchange(offerer, answerer, &mut serial);
                    check_agreement(&offered, &answered);
                }
                Step::Glare { polite, implicit } => {
                    let (polite, impolite) = pair(&mut peers, *polite);
                    let theirs = impolite.create_offer().unwrap();
                    impolite.set_local_description(SdpType::Offer, &theirs).unwrap();
                    let ours = polite.create_offer().unwrap();
                    polite.set_local_description(SdpType::Offer, &ours).unwrap();
                    if !implicit {
                        polite.set_local_description(SdpType::Rollback, "").unwrap();
                    }
                    polite.set_remote_description(SdpType::Offer, &theirs).unwrap();
                    if polite.needs_ice_credentials() {
                        serial += 1;
                        let ufrag = format!("g{serial:03}");
                        polite.restart_ice(IceCredentials::new(&ufrag, format!("{ufrag}restart0123456789ab"))).unwrap();
                    }
                    let answer = polite.create_answer().unwrap();
                    let answered = polite.set_local_description(SdpType::Answer, &answer).unwrap().unwrap();
                    let offered = impolite.set_remote_description(SdpType::Answer, &answer).unwrap().unwrap();
                    check_agreement(&offered, &answered);
                }
                Step::Abandon { peer } => {
                    let jsep = &mut peers[*peer];
                    let offer = jsep.create_offer().unwrap();
                    jsep.set_local_description(SdpType::Offer, &offer).unwrap();
                    jsep.set_local_description(SdpType::Rollback, "").unwrap();
                }
            }
            for jsep in &peers {
                check_peer(jsep);
                prop_assert_eq!(jsep.signaling_state(), SignalingState::Stable);
            }
        }
        // Whatever happened, one more exchange each way settles everything.
        for offerer in [0, 1] {
            let (a, b) = pair(&mut peers, offerer);
            let (offered, answered) = exchange(a, b, &mut serial);
            check_agreement(&offered, &answered);
        }
        for jsep in &peers {
            prop_assert!(!jsep.negotiation_needed());
        }
    }
}
