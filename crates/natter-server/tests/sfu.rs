//! `natter serve`'s SFU end to end on loopback (issue 13, the first
//! slice): three participants, natter peers in frame mode, each with one
//! connection to the server, join one room by WebSocket signaling
//! (docs/signaling.md, "SFU rooms"), publish a video track and offer two
//! receive sections. Each must receive the other two's frames on the
//! sections the server's `track` messages name, with the SFU's SSRCs
//! (the packets were rewritten by natter-sfu, not relayed), and never
//! its own. Then one leaves, and the others' sections that carried it
//! are freed (`track` with `peer: null`).
//!
//! While they exchange frames, the server's /metrics carries the room's
//! counters labelled `room="sfu"` (forwarded packets above zero and
//! growing) and each participant's estimate labelled with its peer id;
//! once everyone has left, the room's lines are gone.
//!
//! Set `NATTER_SERVE_LOGS=1` to see the server's logs.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter::peer::{Direction, MediaKind, Transport};
use natter::{PeerConfig, PeerConnection, PeerEvent};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

mod process;
use process::{metrics_text, read_signaling, serve_sfu, signaling_socket, Natter};

/// Participants in the room.
const PARTICIPANTS: usize = 3;
/// Frames each participant must receive from each other one.
const FRAMES: usize = 30;
/// How long the whole call may take.
const DEADLINE: Duration = Duration::from_secs(30);
/// A frame every 33 ms: 30 frames a second.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// Leaves once everyone has received enough.
const LEAVER: &str = "p2";
/// Heartbeats well within the server's default 5 s.
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How often the test reads /metrics while it waits on it.
const METRICS_POLL: Duration = Duration::from_millis(50);
/// The room's packets forwarded, as /metrics shows it.
const FORWARDED: &str = "natter_sfu_room_forwarded_packets{room=\"sfu\"} ";
/// The start of a participant's estimate in the room, before its id.
const ESTIMATE: &str = "natter_sfu_room_subscriber_estimate_bps{room=\"sfu\",participant=\"";

/// A `natter serve` (SFU rooms, the default) on loopback, killed on drop.
struct Server {
    natter: Natter,
    addr: SocketAddr,
}

fn start_server() -> Server {
    let (natter, addr) = serve_sfu();
    Server { natter, addr }
}

/// The server's /metrics.
fn metrics(server: &Server) -> String {
    metrics_text(server.addr)
}

/// The room's forwarded packets and its participants' estimates (peer
/// id, bits per second), if /metrics has the room.
fn room_metrics(text: &str) -> Option<(u64, HashMap<String, u64>)> {
    let forwarded = text.lines().find_map(|l| l.strip_prefix(FORWARDED)?.parse().ok())?;
    let estimates = (text.lines())
        .filter_map(|l| {
            let (peer, bps) = l.strip_prefix(ESTIMATE)?.split_once("\"} ")?;
            Some((peer.to_owned(), bps.parse().ok()?))
        })
        .collect();
    Some((forwarded, estimates))
}

/// Reads /metrics until `done` holds of it, for at most `DEADLINE`.
fn wait_for_metrics<T>(server: &Server, what: &str, mut done: impl FnMut(&str) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        let text = metrics(server);
        if let Some(found) = done(&text) {
            return found;
        }
        assert!(start.elapsed() < DEADLINE, "{what}: not within {DEADLINE:?}:\n{text}");
        std::thread::sleep(METRICS_POLL);
    }
}

/// Opens the signaling socket, waiting for the server to listen.
fn connect(server: &mut Server) -> WebSocket<MaybeTlsStream<TcpStream>> {
    signaling_socket(&mut server.natter, server.addr)
}

/// A VP8 keyframe (RFC 6386 §9.1: the frame tag with P = 0, the start
/// code, 640x480) whose body names its sender.
fn keyframe(name: &str, number: u32) -> Vec<u8> {
    let mut frame = vec![0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    frame.extend_from_slice(format!("from:{name}:{number}:").as_bytes());
    frame.resize(1200, 0xAB);
    frame
}

/// What one participant saw.
#[derive(Debug)]
struct Outcome {
    id: String,
    /// Frames received per sending participant, as `track` named it.
    frames: HashMap<String, usize>,
    /// Frames whose body names a participant other than the one
    /// `track` named for their section.
    misrouted: usize,
    /// The SSRCs it sent on and those it received.
    sent_ssrcs: Vec<u32>,
    received_ssrcs: Vec<u32>,
    /// The leaver's slot was freed once it left.
    freed: bool,
}

fn participant(mut ws: WebSocket<MaybeTlsStream<TcpStream>>, name: String, done: Arc<AtomicUsize>) -> Outcome {
    let send = |ws: &mut WebSocket<MaybeTlsStream<TcpStream>>, value: Value| {
        ws.send(Message::text(value.to_string())).expect("signaling send");
    };
    send(
        &mut ws,
        json!({"type": "join", "version": 1, "room": "sfu", "name": name}),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let start = Instant::now();
    let mut pc = PeerConnection::new(PeerConfig::default(), start).unwrap();
    pc.add_local_address(local).unwrap();
    pc.end_of_local_addresses();
    let video = pc.add_track(MediaKind::Video).unwrap();
    for _ in 1..PARTICIPANTS {
        pc.add_transceiver(MediaKind::Video, Direction::RecvOnly).unwrap();
    }
    let mut id = None;
    let mut offered = false;
    // Section mid -> participant id, from `track`; id -> name.
    let mut tracks: HashMap<String, String> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut outcome = Outcome {
        id: String::new(),
        frames: HashMap::new(),
        misrouted: 0,
        sent_ssrcs: Vec::new(),
        received_ssrcs: Vec::new(),
        freed: false,
    };
    let mut finished = false;
    let mut next_frame = start;
    let mut next_ping = start;
    let mut number = 0u32;
    let mut buf = Vec::new();
    let mut datagram = vec![0u8; 2048];
    loop {
        // Everyone has its frames, and the test has read /metrics.
        if done.load(Ordering::SeqCst) == PARTICIPANTS + 1 {
            if name == LEAVER {
                send(&mut ws, json!({"type": "leave"}));
                break;
            }
            // The leaver's slot is freed by a `track` with peer null.
            let leaver_sends = tracks.values().any(|id| names.get(id).is_some_and(|n| n == LEAVER));
            if !leaver_sends {
                outcome.freed = true;
                break;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{name} after {DEADLINE:?}: {:?}, tracks {tracks:?}",
            outcome.frames
        );
        for message in read_signaling(&mut ws, &mut pc, &name) {
            match message["type"].as_str().unwrap() {
                "welcome" => {
                    assert_eq!(message["sfu"], true, "the room runs through the SFU");
                    id = Some(message["id"].as_str().unwrap().to_owned());
                    for peer in message["peers"].as_array().unwrap() {
                        names.insert(
                            peer["id"].as_str().unwrap().to_owned(),
                            peer["name"].as_str().unwrap().to_owned(),
                        );
                    }
                }
                "peer-joined" => {
                    let peer = &message["peer"];
                    names.insert(
                        peer["id"].as_str().unwrap().to_owned(),
                        peer["name"].as_str().unwrap().to_owned(),
                    );
                }
                "answer" => assert_eq!(message["from"], "sfu"),
                "track" => {
                    let mid = message["mid"].as_str().unwrap().to_owned();
                    match message["peer"].as_str() {
                        Some(peer) => tracks.insert(mid, peer.to_owned()),
                        None => tracks.remove(&mid),
                    };
                }
                _ => {}
            }
        }
        if id.is_some() && !offered {
            let offer = pc.create_offer().unwrap();
            pc.set_local_description(&offer).unwrap();
            send(&mut ws, json!({"type": "offer", "to": "sfu", "sdp": offer.sdp}));
            offered = true;
        }
        let now = Instant::now();
        if now >= next_ping {
            // docs/signaling.md: a ping at least every heartbeatMs (5 s).
            next_ping = now + PING_INTERVAL;
            send(&mut ws, json!({"type": "ping"}));
        }
        if offered && now >= next_frame {
            next_frame = now + FRAME_INTERVAL;
            // Fails until DTLS connects.
            if pc.send_frame(video, now - start, &keyframe(&name, number)).is_ok() {
                number += 1;
            }
        }
        while let Some(transmit) = pc.poll_transmit(now, 1, &mut buf) {
            let _ = socket.send_to(&buf[..transmit.size], transmit.destination);
        }
        while let Some(event) = pc.poll_event() {
            match event {
                PeerEvent::MediaFrame(frame) => {
                    let mid = pc.transceivers().iter().find(|t| t.id() == frame.transceiver);
                    let peer = mid.and_then(|t| t.mid()).and_then(|mid| tracks.get(mid));
                    let Some(peer) = peer else { continue };
                    let mark = format!("from:{}:", names.get(peer).map_or("?", String::as_str));
                    if !frame.data.windows(mark.len()).any(|w| w == mark.as_bytes()) {
                        outcome.misrouted += 1;
                    }
                    *outcome.frames.entry(peer.clone()).or_default() += 1;
                }
                PeerEvent::IceCandidate(c) => {
                    let candidate =
                        json!({"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_m_line_index});
                    send(
                        &mut ws,
                        json!({"type": "candidate", "to": "sfu", "candidate": candidate}),
                    );
                }
                _ => {}
            }
        }
        let complete = outcome.frames.len() == PARTICIPANTS - 1 && outcome.frames.values().all(|n| *n >= FRAMES);
        if complete && !finished {
            finished = true;
            done.fetch_add(1, Ordering::SeqCst);
        }
        let wait = (pc.poll_timeout().unwrap_or(next_frame))
            .min(next_frame)
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(5));
        socket.set_read_timeout(Some(wait)).unwrap();
        if let Ok((size, source)) = socket.recv_from(&mut datagram) {
            pc.handle_receive(Instant::now(), Transport::Udp, source, local, &datagram[..size]);
        }
        let now = Instant::now();
        if pc.poll_timeout().is_some_and(|t| t <= now) {
            pc.handle_timeout(now);
        }
    }
    let stats = pc.stats();
    outcome.id = id.unwrap();
    outcome.sent_ssrcs = stats.senders.iter().map(|(_, s)| s.ssrc).collect();
    outcome.received_ssrcs = stats.receivers.iter().filter_map(|(_, r)| r.ssrc).collect();
    outcome
}

#[test]
fn three_participants_receive_each_others_video_through_the_sfu_counted_per_room_in_metrics_and_a_leaver_frees_its_slots(
) {
    let mut server = start_server();
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..PARTICIPANTS)
        .map(|i| {
            let ws = connect(&mut server);
            let done = done.clone();
            std::thread::spawn(move || participant(ws, format!("p{i}"), done))
        })
        .collect();
    let names_of = |outcomes: &[Outcome], id: &str| {
        outcomes
            .iter()
            .position(|o| o.id == id)
            .map(|i| format!("p{i}"))
            .unwrap()
    };
    // While frames flow: the room's counters grow, and everyone's
    // estimate is there.
    let (first, _) = wait_for_metrics(&server, "the room's forwarded packets", |text| {
        room_metrics(text).filter(|(forwarded, estimates)| *forwarded > 0 && estimates.len() == PARTICIPANTS)
    });
    let (forwarded, estimates) = wait_for_metrics(&server, "the room's forwarded packets to grow", |text| {
        room_metrics(text).filter(|(forwarded, _)| *forwarded > first)
    });
    println!("/metrics: room sfu forwarded {first} then {forwarded} packets; estimates {estimates:?}");
    done.fetch_add(1, Ordering::SeqCst);
    let outcomes: Vec<Outcome> = threads.into_iter().map(|t| t.join().expect("participant")).collect();
    let labelled: HashSet<&str> = estimates.keys().map(String::as_str).collect();
    let joined: HashSet<&str> = outcomes.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        labelled, joined,
        "an estimate per participant, labelled with its peer id"
    );
    assert!(estimates.values().all(|bps| *bps > 0), "{estimates:?}");
    wait_for_metrics(&server, "the closed room to leave /metrics", |text| {
        (!text.contains("room=\"sfu\"")).then_some(())
    });
    let ids: HashSet<&str> = outcomes.iter().map(|o| o.id.as_str()).collect();
    for outcome in &outcomes {
        let senders: HashSet<&str> = outcome.frames.keys().map(String::as_str).collect();
        let others: HashSet<&str> = ids.iter().copied().filter(|id| *id != outcome.id).collect();
        assert_eq!(senders, others, "{} receives the two others, not itself", outcome.id);
        assert_eq!(
            outcome.misrouted, 0,
            "{}: frames on a section named for someone else",
            outcome.id
        );
        let published: HashSet<u32> = outcomes.iter().flat_map(|o| o.sent_ssrcs.iter().copied()).collect();
        assert!(
            outcome.received_ssrcs.iter().all(|s| !published.contains(s)),
            "{} received on the SFU's SSRCs {:?}, none a publisher's {:?}",
            outcome.id,
            outcome.received_ssrcs,
            published
        );
        if names_of(&outcomes, &outcome.id) != LEAVER {
            assert!(outcome.freed, "{}: the leaver's slot was freed", outcome.id);
        }
        println!("{} received {:?} frames", outcome.id, outcome.frames);
    }
}
