//! The program of bench/forward: one stack (natter or str0m) forwarding
//! RTP in RTP mode on loopback, and the forwarder's CPU time per packet.
//!
//!     forward natter|natter-batched|str0m PACKETS PAYLOAD_BYTES RATE
//!
//! Three threads, each with its own UDP socket on 127.0.0.1 and its own
//! connections of the same stack, negotiated by offer/answer in this
//! process before they start:
//! - the publisher sends PACKETS SRTP packets of PAYLOAD_BYTES on one
//!   video stream, in frames of 10 (90 kHz timestamps, marker on the
//!   last), RATE packets per second;
//! - the forwarder holds two connections on one socket (from the
//!   publisher, to the subscriber): every RTP packet it receives is
//!   unprotected, given a new sequence number and timestamp (offsets) and
//!   written to the subscriber's sender with its SSRC, protected and sent;
//! - the subscriber receives and counts.
//!
//! The forwarder measures its own thread's CPU time (schedstat) from the
//! first forwarded packet to the last. Prints `name value` lines.

mod natter_forward;
mod str0m_forward;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_bench_peers::{thread_cpu, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Packets per frame; the last carries the marker.
pub const FRAME: u64 = 10;
/// 90 kHz ticks between frames (30 frames per second).
pub const FRAME_TICKS: u32 = 3000;
/// Added to the publisher's sequence numbers and timestamps by the forwarder.
pub const SEQ_OFFSET: u16 = 17_000;
pub const TS_OFFSET: u32 = 1_234_567;
/// How long a socket read waits before the loop looks at its timers.
pub const READ_TIMEOUT: Duration = Duration::from_millis(2);

/// SO_RCVBUF and SO_SNDBUF asked for (the kernel caps them).
const BUFFER: usize = 4 << 20;

/// What the three threads share.
#[derive(Default)]
pub struct Flags {
    /// Both of the forwarder's connections are up: the publisher may start.
    pub go: AtomicBool,
    /// The run is over: every loop returns.
    pub stop: AtomicBool,
}

impl Flags {
    pub fn go(&self) -> bool {
        self.go.load(Ordering::Relaxed)
    }
    pub fn stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

pub struct Run {
    pub packets: u64,
    pub payload: usize,
    pub rate: u64,
}

impl Run {
    /// The payload of packet `n`.
    pub fn payload(&self, n: u64) -> Vec<u8> {
        (0..self.payload).map(|i| (n as usize + i) as u8).collect()
    }

    /// When packet `n`'s frame is due, from the publisher's start.
    pub fn due(&self, n: u64) -> Duration {
        Duration::from_secs_f64((n / FRAME * FRAME) as f64 / self.rate as f64)
    }
}

/// The forwarder's CPU time from its first forwarded packet to its last
/// (sampled every 1024 packets, so that reading it costs nothing).
#[derive(Default)]
pub struct Meter {
    pub forwarded: u64,
    first: Option<Duration>,
    last: (u64, Duration),
}

impl Meter {
    /// Call after each packet forwarded.
    pub fn forwarded(&mut self) {
        self.forwarded += 1;
        if self.forwarded == 1 || self.forwarded.is_multiple_of(1024) {
            let now = thread_cpu();
            self.first.get_or_insert(now);
            self.last = (self.forwarded, now);
        }
    }

    /// Packets forwarded per CPU-second between the first sample and the last.
    pub fn rate(&self) -> f64 {
        let (count, last) = self.last;
        let cpu = last - self.first.unwrap_or(last);
        count.saturating_sub(1) as f64 / cpu.as_secs_f64()
    }

    pub fn cpu(&self) -> Duration {
        self.last.1 - self.first.unwrap_or(self.last.1)
    }
}

/// A socket on 127.0.0.1 with the largest buffers the kernel allows
/// (net.core.rmem_max, wmem_max), so that a forwarder descheduled for a
/// moment on a busy machine loses nothing.
pub fn socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    socket.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
    let socket = socket2::Socket::from(socket);
    let _ = socket.set_recv_buffer_size(BUFFER);
    let _ = socket.set_send_buffer_size(BUFFER);
    socket.into()
}

/// Each stack's outcome of one run.
pub struct Outcome {
    pub sent: u64,
    pub meter: Meter,
    pub received: u64,
    pub profile: String,
}

/// Waits for the publisher, lets the last packets arrive, then stops the others.
pub fn finish(flags: &Arc<Flags>, publisher: std::thread::JoinHandle<u64>) -> u64 {
    let sent = publisher.join().expect("publisher thread");
    std::thread::sleep(Duration::from_millis(500));
    flags.stop.store(true, Ordering::Relaxed);
    sent
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: forward natter|natter-batched|str0m PACKETS PAYLOAD_BYTES RATE";
    let [_, stack, packets, payload, rate] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{usage}"));
    let run = Run {
        packets: number(packets),
        payload: number(payload) as usize,
        rate: number(rate),
    };
    let started = Instant::now();
    let outcome = match stack.as_str() {
        "str0m" => str0m_forward::run(&run),
        "natter" => natter_forward::run(&run, false),
        "natter-batched" => natter_forward::run(&run, true),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let cpu = outcome.meter.cpu();
    println!("sent {}", outcome.sent);
    println!("forwarded {}", outcome.meter.forwarded);
    println!("received {}", outcome.received);
    println!("forwarder_cpu_ns {}", cpu.as_nanos());
    println!("packets_per_cpu_second {:.0}", outcome.meter.rate());
    println!("profile {}", outcome.profile);
    println!("seconds {:.1}", started.elapsed().as_secs_f64());
}
