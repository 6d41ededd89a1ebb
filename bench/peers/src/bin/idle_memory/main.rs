//! The program of bench/idle-memory: heap and resident memory per idle
//! connection, and after many open/close cycles, of one stack (natter,
//! str0m or webrtc-rs) in this process.
//!
//!     idle_memory STACK CONNECTIONS CYCLES [CONCURRENCY]
//!
//! Connections come in pairs of the same stack, each pair negotiated by
//! offer/answer with one data channel ("bench") and connected (ICE, DTLS,
//! SCTP, the channel open on both sides), then left idle for 2 s of the
//! stack's time. natter and str0m are sans-IO: a pair runs in memory
//! under a virtual clock. webrtc-rs owns its sockets and tasks: a pair
//! runs on loopback in this process's tokio runtime, CONCURRENCY pairs
//! at a time (default 50).
//!
//! Steps: 10 warm-up cycles; memory (base); open CONNECTIONS/2 pairs
//! (idle); close them all (closed); CYCLES cycles of open, connect,
//! close one pair (after). Prints `name value` lines on stdout; heap
//! bytes are counted by this program's global allocator, RSS read from
//! /proc/self/status.

mod natter_pair;
mod str0m_pair;
mod webrtc_pair;

use natter_bench_peers::{Counting, Memory};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Open, connect and close pairs of one stack.
trait Stack {
    type Pair;
    /// A pair with its data channel open on both sides, idle for 2 s.
    fn open(&mut self) -> Self::Pair;
    /// `count` pairs, opened as the stack allows.
    fn open_many(&mut self, count: usize) -> Vec<Self::Pair> {
        (0..count).map(|_| self.open()).collect()
    }
    fn close(&mut self, pair: Self::Pair);
    /// `count` open/connect/close cycles.
    fn cycles(&mut self, count: usize) {
        for _ in 0..count {
            let pair = self.open();
            self.close(pair);
        }
    }
    /// Lets closed connections finish going away (webrtc-rs's tasks).
    fn settle(&mut self) {}
}

fn run<S: Stack>(mut stack: S, connections: usize, cycles: usize) {
    stack.cycles(10);
    stack.settle();
    let base = Memory::now();
    let pairs = stack.open_many(connections / 2);
    let idle = Memory::now();
    for pair in pairs {
        stack.close(pair);
    }
    stack.settle();
    let closed = Memory::now();
    let start = std::time::Instant::now();
    stack.cycles(cycles);
    stack.settle();
    let after = Memory::now();
    let n = (connections / 2 * 2) as i64;
    println!("connections {n}");
    println!("heap_per_connection {}", (idle.heap - base.heap) / n);
    println!("rss_per_connection {}", (idle.rss - base.rss) / n);
    println!("heap_base {}", base.heap);
    println!("heap_closed {}", closed.heap);
    println!("heap_after_cycles {}", after.heap);
    println!("rss_base {}", base.rss);
    println!("rss_closed {}", closed.rss);
    println!("rss_after_cycles {}", after.rss);
    println!("cycles {cycles}");
    println!("cycles_seconds {:.1}", start.elapsed().as_secs_f64());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: idle_memory natter|str0m|webrtc CONNECTIONS CYCLES [CONCURRENCY]";
    let [_, stack, connections, cycles, rest @ ..] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let number = |s: &str| s.parse::<usize>().unwrap_or_else(|_| panic!("{usage}"));
    let (connections, cycles) = (number(connections), number(cycles));
    let concurrency = rest.first().map_or(50, |s| number(s));
    match stack.as_str() {
        "natter" => run(natter_pair::Natter, connections, cycles),
        "str0m" => run(str0m_pair::Str0m::new(), connections, cycles),
        "webrtc" => run(webrtc_pair::WebrtcRs::new(concurrency), connections, cycles),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
