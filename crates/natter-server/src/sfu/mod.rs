//! The SFU of `natter serve --sfu` (issue 13; DESIGN.md, "Server
//! runtime"): one media worker, a thread that owns one UDP socket, a
//! natter [`Endpoint`](natter::endpoint::Endpoint) of ICE-lite
//! connections in RTP mode (one per participant) and the
//! [`natter_sfu::room::Room`] of every room it carries. Nothing on the
//! media path is shared or locked: signaling (tokio) sends the worker
//! [`SfuInput`]s over a channel and wakes it, and the worker answers
//! with [`Reply`]s on another.
//!
//! The protocol (one connection per participant, a fixed pool of
//! receive sections that `track` messages fill) is docs/signaling.md's
//! "SFU rooms".

mod offer;
mod worker;

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use natter_signaling::SfuInput;
use tokio::sync::mpsc::UnboundedSender;

use worker::Worker;
pub use worker::{Reply, Signal};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// Largest datagram read: above any path MTU a browser uses.
const MAX_DATAGRAM: usize = 2048;
/// SO_RCVBUF and SO_SNDBUF asked for the worker's socket: room for
/// about 3,000 datagrams, 0.3 s of 50 participants' media, while the
/// worker is busy or descheduled (the kernel caps it at rmem_max and
/// wmem_max; the sizes granted are logged).
const SOCKET_BUFFER: usize = 4 << 20;

/// The media worker, seen from signaling.
pub struct Sfu {
    inputs: Option<mpsc::Sender<SfuInput>>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Sfu {
    /// Binds `bind` and starts the worker; its connections offer
    /// `advertised` (with the bound port) as their one host candidate.
    /// `relay_stall`: how long a recipient of the data channel relay may
    /// read nothing before it stops holding senders back.
    pub fn start(
        bind: SocketAddr,
        advertised: IpAddr,
        relay_stall: Duration,
        replies: UnboundedSender<Reply>,
    ) -> anyhow::Result<Sfu> {
        let mut socket = UdpSocket::bind(bind).with_context(|| format!("SFU socket {bind}"))?;
        let address = SocketAddr::new(advertised, socket.local_addr()?.port());
        let buffers = socket2::SockRef::from(&socket);
        if let Err(e) = buffers.set_recv_buffer_size(SOCKET_BUFFER) {
            tracing::warn!(error = %e, "SFU socket: SO_RCVBUF refused");
        }
        if let Err(e) = buffers.set_send_buffer_size(SOCKET_BUFFER) {
            tracing::warn!(error = %e, "SFU socket: SO_SNDBUF refused");
        }
        // Linux reports twice what it grants, the rest for its bookkeeping.
        let receive_buffer = buffers.recv_buffer_size().unwrap_or(0);
        let send_buffer = buffers.send_buffer_size().unwrap_or(0);
        tracing::info!(
            asked = SOCKET_BUFFER,
            receive_buffer,
            send_buffer,
            "SFU socket buffers (as the kernel reports them)"
        );
        let poll = Poll::new()?;
        poll.registry().register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (inputs, commands) = mpsc::channel();
        let worker = Worker::new(address, relay_stall, replies);
        let thread = std::thread::Builder::new()
            .name("sfu".into())
            .spawn(move || run(socket, poll, commands, worker))?;
        tracing::info!(%address, "SFU media worker ready");
        Ok(Sfu {
            inputs: Some(inputs),
            waker,
            thread: Some(thread),
        })
    }

    /// Hands the worker a participant's offer, candidate or departure.
    pub fn send(&self, input: SfuInput) {
        if let Some(inputs) = &self.inputs {
            if inputs.send(input).is_ok() {
                let _ = self.waker.wake();
            }
        }
    }
}

impl Drop for Sfu {
    /// Stops the worker: its input channel closes, and it ends.
    fn drop(&mut self) {
        self.inputs = None;
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The worker's loop: commands, datagrams, timers; after each, what the
/// worker wants sent.
fn run(socket: UdpSocket, mut poll: Poll, commands: mpsc::Receiver<SfuInput>, mut worker: Worker) {
    let mut events = Events::with_capacity(64);
    let mut datagram = vec![0u8; MAX_DATAGRAM];
    let send = |destination: SocketAddr, data: &[u8]| {
        // A full send buffer drops the datagram, as the network would.
        let _ = socket.send_to(data, destination);
    };
    loop {
        let timeout = worker
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %e, "SFU poll failed; the worker stops");
            return;
        }
        loop {
            match commands.try_recv() {
                Ok(input) => worker.handle_input(Instant::now(), input),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
            worker.drain(Instant::now(), send);
        }
        loop {
            match socket.recv_from(&mut datagram) {
                Ok((size, source)) => {
                    let now = Instant::now();
                    worker.handle_datagram(now, source, &datagram[..size]);
                    worker.drain(now, send);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // An ICMP error of an earlier send, reported here.
                Err(e) => tracing::debug!(error = %e, "SFU receive"),
            }
        }
        let now = Instant::now();
        worker.handle_timeout(now);
        worker.drain(now, send);
    }
}
