//! The data channel relay of `natter serve`'s SFU end to end on
//! loopback (issue 13, acceptance 1's file part; docs/signaling.md, "SFU
//! rooms"): three natter peers join one room, each with one connection
//! to the server that carries only a data channel labelled `relay`.
//!
//! - A message to everyone reaches the two others, in order, with the
//!   sender's id in the envelope and its text flag kept; one addressed
//!   to a participant reaches only it; nothing comes back to its sender.
//! - A receiver that stops reading holds the sender back, but not for
//!   ever, and the server holds little for it: while it reads nothing
//!   the sender sends 16 MiB to everyone. Once the stalled one's queue
//!   is over the relay's high water mark (natter-sfu's `RelayConfig`,
//!   1 MiB) the server stops reading the sender, whose SCTP window
//!   closes; after the stall timeout (here 2 s) the stalled one holds
//!   nobody back and its copies are dropped. The reader gets all 16 MiB
//!   (the server's socket buffers are large: without the pause it took
//!   the sender's burst faster than the reader drained it); the stalled
//!   one, once it reads again, gets what was queued before the pause,
//!   at most 4 MiB (four times the mark), then new messages again. The
//!   server's peak RSS over that phase is printed.
//!
//! Set `NATTER_SERVE_LOGS=1` to see the server's logs.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::{Poll, Token};
use natter::peer::{DataChannelId, DataChannelInit, Message};
use natter::PeerEvent;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

mod process;
use process::{free_local_port, sfu_metric, signaling_socket, Natter};
mod sfu_room;
use sfu_room::{Peer, Room};

/// How long the whole test may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// The stalled phase: this many binary messages of `CHUNK` bytes.
const CHUNKS: u32 = 1024;
const CHUNK: usize = 16 * 1024;
/// The sender keeps at most this much queued toward the server.
const HIGH_WATER: usize = 1 << 20;
/// The most the server may have queued for the stalled receiver: four
/// times natter-sfu's `RelayConfig::default().high_water` (1 MiB); the
/// pause takes effect after the copy that crossed it and the messages
/// already read from the sender.
const SERVER_CAP: usize = 4 << 20;
/// `--sfu-relay-stall-ms`: how long the stalled receiver holds the
/// sender back.
const STALL_MS: &str = "2000";
/// How often the last phase's marker is sent again until the stalled
/// receiver, reading again, has one (copies may meet a full queue).
const MARKER_EVERY: Duration = Duration::from_millis(250);

/// A `natter serve` (SFU rooms, the default) on loopback, killed on drop.
struct Server {
    natter: Natter,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_local_port()));
        let listen = addr.to_string();
        let natter = Natter::spawn([
            "serve",
            "--dev",
            "--no-turn",
            "--listen",
            &listen,
            "--sfu-relay-stall-ms",
            STALL_MS,
        ]);
        Server { natter, addr }
    }

    /// Opens a signaling socket, waiting for the server to listen.
    fn connect(&mut self) -> WebSocket<MaybeTlsStream<TcpStream>> {
        signaling_socket(&mut self.natter, self.addr)
    }

    /// Its peak resident set (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        self.natter.peak_rss_kib()
    }

    /// The value of `natter_sfu_{name}` in its /metrics.
    fn metric(&self, name: &str) -> u64 {
        sfu_metric(self.addr, name)
    }
}

/// A relayed message as a recipient got it.
#[derive(Debug, Clone, PartialEq)]
struct Relayed {
    from: String,
    text: bool,
    payload: Vec<u8>,
}

/// docs/signaling.md's envelope: `[flags][n][peer id][payload]`,
/// written by hand as a client that does not use natter-sfu would.
fn envelope(to: &str, text: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(text), to.len() as u8];
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(payload);
    out
}

fn parse(message: &[u8]) -> Relayed {
    assert!(message.len() >= 2, "a relayed message of {} bytes", message.len());
    let end = 2 + usize::from(message[1]);
    assert_eq!(message[0] & !1, 0, "flags 0x{:02x}", message[0]);
    Relayed {
        from: String::from_utf8(message[2..end].to_vec()).unwrap(),
        text: message[0] & 1 == 1,
        payload: message[end..].to_vec(),
    }
}

struct Participant {
    peer: Peer,
    channel: DataChannelId,
    open: bool,
    /// It reads no datagrams (and so acknowledges nothing).
    stalled: bool,
    received: Vec<Relayed>,
}

impl Participant {
    fn new(name: &'static str, ws: WebSocket<MaybeTlsStream<TcpStream>>, poll: &Poll, token: Token) -> Self {
        let mut channel = None;
        let peer = Peer::join("data", name, ws, poll, token, |pc| {
            channel = Some(pc.create_data_channel("relay", DataChannelInit::default()).unwrap());
        });
        Participant {
            peer,
            channel: channel.expect("created on joining"),
            open: false,
            stalled: false,
            received: Vec::new(),
        }
    }

    /// Queues one envelope on its relay channel.
    fn send(&mut self, to: &str, text: bool, payload: &[u8]) {
        let message = envelope(to, text, payload);
        let mut channel = self.peer.pc.data_channel(self.channel).expect("the relay channel");
        channel.send(Message::Binary(&message)).expect("relay send");
    }

    fn buffered(&mut self) -> usize {
        self.peer
            .pc
            .data_channel(self.channel)
            .map_or(0, |mut c| c.buffered_amount())
    }

    fn id(&self) -> &str {
        self.peer.id()
    }
}

impl sfu_room::Participant for Participant {
    /// Signaling, datagrams (unless stalled), timers, and what to send.
    fn step(&mut self) {
        if let Some(offer) = self.peer.signaling() {
            assert!(offer.contains("m=application"), "{}'s offer: {offer}", self.peer.name);
        }
        let now = Instant::now();
        if !self.stalled {
            self.peer.receive(|_| true);
            self.peer.handle_due(now);
        }
        self.peer.transmit(now);
        while let Some(event) = self.peer.pc.poll_event() {
            match event {
                PeerEvent::DataChannelOpen(id) if id == self.channel => self.open = true,
                PeerEvent::DataChannelMessage { id, data, is_text } if id == self.channel => {
                    assert!(
                        !is_text,
                        "{}: the relay channel carries binary messages",
                        self.peer.name
                    );
                    self.received.push(parse(&data));
                }
                _ => {}
            }
        }
    }

    fn wake(&self) -> Option<Instant> {
        (!self.stalled).then(|| self.peer.pc.poll_timeout()).flatten()
    }

    fn progress(&self) -> String {
        format!("{}: {} messages received", self.peer.name, self.received.len())
    }
}

/// `names` join the server's room "data", each on a poll token of its
/// own, and their relay channels open.
fn join(server: &mut Server, names: &[&'static str]) -> Room<Participant> {
    let mut room = Room::new(DEADLINE, |poll| {
        (names.iter().enumerate())
            .map(|(i, name)| Participant::new(name, server.connect(), poll, Token(i)))
            .collect()
    });
    room.run_until("every relay channel to open", |people| people.iter().all(|p| p.open));
    room
}

#[test]
fn relayed_messages_reach_every_other_participant_and_a_stalled_one_holds_the_sender_back_until_its_stall_timeout() {
    let mut server = Server::start();
    let mut room = join(&mut server, &["sender", "reader", "staller"]);

    // To everyone, and to one.
    let reader_id = room.people[1].id().to_owned();
    let sender_id = room.people[0].id().to_owned();
    for i in 0..10 {
        room.people[0].send("", true, format!("hello {i}").as_bytes());
    }
    room.people[0].send(&reader_id, false, b"\x00only for the reader");
    room.people[0].send("", true, b"end");
    room.run_until("both others to receive `end`", |people| {
        people[1..]
            .iter()
            .all(|p| p.received.last().is_some_and(|m| m.payload == b"end"))
    });
    let hello = |i: usize| Relayed {
        from: sender_id.clone(),
        text: true,
        payload: format!("hello {i}").into_bytes(),
    };
    let end = Relayed {
        from: sender_id.clone(),
        text: true,
        payload: b"end".to_vec(),
    };
    let directed = Relayed {
        from: sender_id.clone(),
        text: false,
        payload: b"\x00only for the reader".to_vec(),
    };
    let mut to_reader: Vec<Relayed> = (0..10).map(hello).collect();
    to_reader.extend([directed, end.clone()]);
    let mut to_staller: Vec<Relayed> = (0..10).map(hello).collect();
    to_staller.push(end);
    assert_eq!(room.people[1].received, to_reader, "the reader gets all, in order");
    assert_eq!(
        room.people[2].received, to_staller,
        "the other gets what was for everyone"
    );
    assert!(room.people[0].received.is_empty(), "nothing comes back to the sender");
    for p in &mut room.people {
        p.received.clear();
    }

    // The staller reads nothing while 16 MiB go to everyone.
    let rss_before = server.peak_rss_kib();
    room.people[2].stalled = true;
    let mut sent = 0u32;
    let chunk = |i: u32| {
        let mut payload = vec![(i % 251) as u8; CHUNK];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        payload
    };
    room.run_until("the reader to receive every chunk", |people| {
        while sent < CHUNKS && people[0].buffered() < HIGH_WATER {
            people[0].send("", false, &chunk(sent));
            sent += 1;
        }
        people[1].received.len() == CHUNKS as usize
    });
    let rss_after = server.peak_rss_kib();
    let reader = &room.people[1].received;
    assert!(
        reader.iter().enumerate().all(|(i, m)| m.payload == chunk(i as u32)),
        "the reader's chunks are the sender's, in order"
    );
    // Each copy is the envelope of a chunk.
    let copy = 2 + sender_id.len() + CHUNK;

    // Reading again, it gets what the server held for it, then a marker.
    room.people[2].stalled = false;
    let mut next_marker = Instant::now();
    room.run_until("the staller to receive a marker after the chunks", |people| {
        if Instant::now() >= next_marker {
            next_marker = Instant::now() + MARKER_EVERY;
            people[0].send("", true, b"marker");
        }
        people[2].received.iter().any(|m| m.payload == b"marker")
    });
    let staller = &room.people[2].received;
    let chunks: Vec<u32> = (staller.iter())
        .take_while(|m| m.payload != b"marker")
        .map(|m| {
            let i = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
            assert_eq!(m.payload, chunk(i), "chunk {i} intact");
            i
        })
        .collect();
    println!(
        "stalled receiver got {} of {CHUNKS} chunks ({} KiB of copies, bound {} KiB); server peak RSS {} -> {} KiB",
        chunks.len(),
        chunks.len() * copy / 1024,
        SERVER_CAP / 1024,
        rss_before,
        rss_after
    );
    let metric = |name| server.metric(name);
    let (paused, stalled, dropped) = (metric("relay_paused"), metric("relay_stalled"), metric("relay_dropped"));
    println!(
        "/metrics: relay paused {paused}, stalled {stalled}, dropped {dropped}; socket drops {}",
        metric("socket_drops")
    );
    assert!(paused >= 1, "the sender was paused");
    assert_eq!(stalled, 1, "the stalled receiver was found stalled once");
    assert!(dropped >= 1, "copies for the stalled receiver were dropped");
    assert!(chunks.windows(2).all(|w| w[0] < w[1]), "in order: {chunks:?}");
    assert!(
        !chunks.is_empty(),
        "the server queued some chunks for the stalled receiver"
    );
    assert!(
        chunks.len() * copy <= SERVER_CAP,
        "the server held {} chunks ({} bytes) for a receiver that read nothing; at most {SERVER_CAP}",
        chunks.len(),
        chunks.len() * copy
    );
}

/// The worker's sends leave in `sendmmsg` batches (natter-io's
/// `SendBatch`) and /metrics counts them: datagrams the kernel took,
/// the calls, and what was dropped (nothing, on loopback). Its NACK
/// counters are there too.
#[test]
fn the_workers_sends_are_counted_in_metrics_by_datagram_and_sendmmsg_call() {
    /// Messages of this size go one to a datagram (two do not fit in one).
    const MESSAGE: usize = 1000;
    const MESSAGES: u64 = 64;
    let mut server = Server::start();
    let mut room = join(&mut server, &["sender", "reader"]);
    let (sent, calls) = (server.metric("datagrams_sent"), server.metric("send_calls"));
    assert!(
        calls >= 1 && sent >= calls,
        "the handshakes were sent: {sent} datagrams in {calls} sendmmsg calls"
    );
    for i in 0..MESSAGES {
        room.people[0].send("", false, &[i as u8; MESSAGE]);
    }
    room.run_until("the reader to receive every message", |people| {
        people[1].received.len() == MESSAGES as usize
    });
    // Published after the loop's pass that sent them.
    room.run_until("the relayed messages to be counted", |_| {
        server.metric("datagrams_sent") >= sent + MESSAGES
    });
    let (sent_after, calls_after) = (server.metric("datagrams_sent"), server.metric("send_calls"));
    println!(
        "/metrics: {} datagrams in {} sendmmsg calls for {MESSAGES} relayed messages",
        sent_after - sent,
        calls_after - calls
    );
    assert!(
        calls_after > calls && calls_after - calls <= sent_after - sent,
        "the relayed messages left in {} sendmmsg calls",
        calls_after - calls
    );
    assert_eq!(server.metric("send_drops_full"), 0, "loopback took everything");
    assert_eq!(server.metric("send_errors"), 0, "no destination refused");
    for name in [
        "nacks_received",
        "nack_retransmissions",
        "nack_repairs_held",
        "nack_missed",
        "nacks_sent",
    ] {
        // There, whatever the count: loopback may lose nothing.
        let _ = server.metric(name);
    }
}
