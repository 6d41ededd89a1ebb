//! WebSocket I/O around the sans-IO [`Signaling`] core: one task reads
//! each socket and feeds the core, one task writes each socket from a
//! bounded queue, and one task fires the core's timers. The core sits
//! behind one mutex that no `await` ever holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use natter_signaling::{ConnectionId, Output, Signaling};
use tokio::sync::{mpsc, watch};

/// Frames queued to one socket; a client that lets more pile up is too
/// slow to follow its room and is disconnected.
const SOCKET_QUEUE: usize = 512;
/// Longest sleep of the timer task, so a new deadline is never missed by
/// more than this.
const TICK: Duration = Duration::from_millis(250);
/// Time a socket gets to take its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// RFC 6455 §7.4.1: the endpoint is going away.
const CLOSE_GOING_AWAY: u16 = 1001;
/// RFC 6455 §7.4.1: a message too big to process.
const CLOSE_TOO_BIG: u16 = 1009;

/// The read failed because a frame exceeded the size limit.
fn is_too_big(e: &axum::Error) -> bool {
    let inner = std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>());
    matches!(inner, Some(tungstenite::Error::Capacity(_)))
}

/// The core, the queues of the sockets it talks to, and the SFU's
/// media worker when rooms run through it.
pub struct Hub {
    pub core: Signaling,
    sockets: HashMap<ConnectionId, mpsc::Sender<Message>>,
    sfu: Option<crate::sfu::Sfu>,
}

pub type SharedHub = Arc<Mutex<Hub>>;

impl Hub {
    pub fn new(core: Signaling, sfu: Option<crate::sfu::Sfu>) -> SharedHub {
        Arc::new(Mutex::new(Hub {
            core,
            sockets: HashMap::new(),
            sfu,
        }))
    }

    /// The SFU's media worker, when rooms run through it.
    pub fn sfu(&self) -> Option<&crate::sfu::Sfu> {
        self.sfu.as_ref()
    }

    /// Hands everything the core wants sent to the sockets' queues.
    pub fn flush(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send { conn, text } => {
                    let full = match self.sockets.get(&conn) {
                        Some(queue) => queue.try_send(Message::Text(text.into())).is_err(),
                        None => false,
                    };
                    if full {
                        tracing::debug!(conn = conn.0, "socket queue full; disconnecting");
                        // Dropping the queue ends the writer, which closes the socket.
                        self.sockets.remove(&conn);
                    }
                }
                Output::Close { conn, code, reason } => self.close(conn, code, reason),
            }
        }
        while let Some(input) = self.core.poll_sfu() {
            if let Some(sfu) = &self.sfu {
                sfu.send(input);
            }
        }
    }

    /// Queues a close frame for a socket and forgets its queue, which ends
    /// its writer once the frame is sent.
    fn close(&mut self, conn: ConnectionId, code: u16, reason: &'static str) {
        if let Some(queue) = self.sockets.remove(&conn) {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = queue.try_send(Message::Close(Some(frame)));
        }
    }

    /// Closes every socket with 1001 (shutdown).
    pub fn close_all(&mut self) {
        for (_, queue) in self.sockets.drain() {
            let frame = CloseFrame {
                code: CLOSE_GOING_AWAY,
                reason: "server shutting down".into(),
            };
            let _ = queue.try_send(Message::Close(Some(frame)));
        }
    }
}

fn lock(hub: &SharedHub) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Serves one WebSocket until it closes.
pub async fn session(hub: SharedHub, socket: WebSocket, mut shutdown: watch::Receiver<bool>) {
    let (mut sink, mut stream) = socket.split();
    let (queue, mut outgoing) = mpsc::channel::<Message>(SOCKET_QUEUE);
    let conn = {
        let mut hub = lock(&hub);
        let conn = hub.core.handle_connect(Instant::now());
        hub.sockets.insert(conn, queue);
        conn
    };
    let mut writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let close = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut writer_done = false;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let mut hub = lock(&hub);
                match incoming {
                    Some(Ok(Message::Text(text))) => hub.core.handle_text(conn, text.as_str(), Instant::now(), unix_now()),
                    Some(Ok(Message::Binary(_))) => hub.core.handle_binary(conn, Instant::now()),
                    // Pings are answered by the WebSocket layer.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) if is_too_big(&e) => {
                        hub.close(conn, CLOSE_TOO_BIG, "message too big");
                        break;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                }
                hub.flush();
            }
            // The core closed the socket, or it was too slow.
            _ = &mut writer => {
                writer_done = true;
                break;
            }
            _ = shutdown.changed() => break,
        }
    }
    {
        let mut hub = lock(&hub);
        hub.sockets.remove(&conn);
        hub.core.handle_closed(conn, Instant::now());
        hub.flush();
    }
    // The writer ends once the queue is dropped and drained.
    if !writer_done && tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// Fires the core's timers until shutdown.
pub async fn timers(hub: SharedHub, mut shutdown: watch::Receiver<bool>) {
    loop {
        let wait = {
            let hub = lock(&hub);
            let now = Instant::now();
            hub.core
                .poll_timeout()
                .map_or(TICK, |t| t.saturating_duration_since(now).min(TICK))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        let mut hub = lock(&hub);
        hub.core.handle_timeout(Instant::now());
        hub.flush();
    }
}

/// Delivers the SFU's answers, candidates, `track`, `speaker` and
/// `layers` messages.
pub async fn sfu_replies(hub: SharedHub, mut replies: mpsc::UnboundedReceiver<crate::sfu::Reply>) {
    use crate::sfu::Signal;
    use natter_signaling::message::{ServerMessage, SFU_PEER};
    use natter_signaling::ErrorCode;
    while let Some(reply) = replies.recv().await {
        let message = match &reply.signal {
            // A web client's session ends by signaling (its socket closes,
            // or its heartbeats stop and the resume window passes), which
            // tells the worker `Left`; its page sees its own connection fail.
            Signal::Closed => {
                tracing::debug!(peer = %reply.peer, "SFU connection failed");
                continue;
            }
            Signal::Answer(sdp) => ServerMessage::Answer { from: SFU_PEER, sdp },
            Signal::Candidate(candidate) => ServerMessage::Candidate {
                from: SFU_PEER,
                candidate,
            },
            Signal::Track { mid, peer, kind } => ServerMessage::Track {
                mid,
                peer: peer.as_deref(),
                kind,
            },
            Signal::Speaker(peer) => ServerMessage::Speaker { peer: peer.as_deref() },
            Signal::Layers { mid, active } => ServerMessage::Layers { mid, active },
            Signal::Refused(message) => ServerMessage::Error {
                code: ErrorCode::BadMessage,
                message,
                reference: Some("offer"),
            },
        };
        let mut hub = lock(&hub);
        hub.core.handle_sfu_message(&reply.peer, &message);
        hub.flush();
    }
}

/// Prometheus text for the signaling counters and gauges.
pub fn render_metrics(hub: &SharedHub, out: &mut String) {
    use std::fmt::Write;
    let hub = lock(hub);
    let stats = hub.core.stats();
    for (name, help, value) in [
        ("joins", "Sessions started", stats.joins),
        ("resumes", "Sessions resumed after a reconnect", stats.resumes),
        ("leaves", "Sessions ended by leave", stats.leaves),
        (
            "timeouts",
            "Sessions ended because the client went away",
            stats.timeouts,
        ),
        ("relayed", "Offers, answers and candidates relayed", stats.relayed),
    ] {
        let _ = writeln!(
            out,
            "# HELP natter_signaling_{name} {help}\n# TYPE natter_signaling_{name} counter\nnatter_signaling_{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP natter_signaling_errors Messages refused, by code\n# TYPE natter_signaling_errors counter"
    );
    for (code, count) in natter_signaling::ErrorCode::ALL.iter().zip(stats.errors) {
        let _ = writeln!(out, "natter_signaling_errors{{code=\"{}\"}} {count}", code.as_str());
    }
    let (sockets, sessions, rooms) = hub.core.gauges();
    for (name, help, value) in [
        ("sockets", "Open WebSockets", sockets),
        ("sessions", "Sessions, including those awaiting resume", sessions),
        ("rooms", "Rooms", rooms),
    ] {
        let _ = writeln!(
            out,
            "# HELP natter_signaling_{name} {help}\n# TYPE natter_signaling_{name} gauge\nnatter_signaling_{name} {value}"
        );
    }
    if let Some(sfu) = &hub.sfu {
        sfu.render_metrics(out);
    }
}
