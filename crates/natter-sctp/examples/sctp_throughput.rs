//! How fast natter-sctp (its own SCTP) moves data: two transports
//! wired back to back in memory, one reliable ordered channel, 50 MB
//! sent in 16 KiB messages.
//!
//! ```text
//! cargo run --release -p natter-sctp --example sctp_throughput [MB] [message bytes] [mtu] [one-way ms] [rwnd KiB]
//! ```
//!
//! With no latency (the default) packets cross at once and the clock is
//! the real one: the figure is the CPU cost of SCTP for both ends, which
//! run on this one thread. With a one-way latency the clock is virtual
//! and jumps from event to event: the figure is what the protocol's
//! windows (congestion window, the peer's receive window) allow on a
//! lossless path of that round-trip time, and the wall time is printed
//! beside it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use natter_sctp::*;

/// Keep at most this much queued on the sender, like an application
/// pacing itself on bufferedAmount.
const HIGH_WATER: usize = 4 * 1024 * 1024;

/// A packet on the wire when there is latency: arrival, order sent,
/// whether it goes to the server, and its bytes.
type InFlight = (Instant, u64, bool, Vec<u8>);

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Error> {
    let total = arg(1, 50) * 1_000_000;
    let message_size = arg(2, 16 * 1024).max(1);
    let mtu = arg(3, 1200);
    let latency = Duration::from_millis(arg(4, 0) as u64);
    let receive_window = (arg(5, 1024) * 1024) as u32;

    let mut client_config = SctpConfig::new(DtlsRole::Client);
    let mut server_config = SctpConfig::new(DtlsRole::Server);
    for c in [&mut client_config, &mut server_config] {
        c.mtu = mtu;
        c.receive_window = receive_window;
    }
    let mut client = SctpTransport::new(client_config)?;
    let mut server = SctpTransport::new(server_config)?;
    let channel = client.open_channel("bulk", "", ChannelOptions::reliable())?;

    let message = vec![0x5a_u8; message_size];
    let (mut sent, mut received) = (0usize, 0usize);
    let (mut packets_up, mut packets_down, mut bytes_up) = (0u64, 0u64, 0u64);
    let mut wire: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut open = false;
    let mut now = Instant::now();
    let (mut start_wall, mut start_clock) = (Instant::now(), now);
    while received < total {
        if open {
            while sent < total && client.buffered_amount(channel)? < HIGH_WATER {
                let n = message_size.min(total - sent);
                client.send(channel, Message::Binary(&message[..n]))?;
                sent += n;
            }
        }
        if latency.is_zero() {
            now = now.max(Instant::now());
        }
        let mut moved = false;
        while let Some(p) = client.poll_transmit(now) {
            packets_up += 1;
            bytes_up += p.len() as u64;
            if latency.is_zero() {
                server.handle_receive(now, &p);
                moved = true;
            } else {
                order += 1;
                wire.push(Reverse((now + latency, order, true, p.to_vec())));
            }
        }
        while let Some(p) = server.poll_transmit(now) {
            packets_down += 1;
            if latency.is_zero() {
                client.handle_receive(now, &p);
                moved = true;
            } else {
                order += 1;
                wire.push(Reverse((now + latency, order, false, p.to_vec())));
            }
        }
        while let Some(e) = client.poll_event() {
            if let Event::ChannelOpen { .. } = e {
                open = true;
                (start_wall, start_clock) = (Instant::now(), now);
            }
        }
        while let Some(e) = server.poll_event() {
            if let Event::Message { data, .. } = e {
                received += data.len();
            }
        }
        if moved {
            continue;
        }
        // Jump to the next arrival or timer.
        let arrival = wire.peek().map(|Reverse((at, ..))| *at);
        let Some(next) = [arrival, client.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            if open && received < total && sent >= total {
                eprintln!("stalled at {received} of {total} bytes");
                std::process::exit(1);
            }
            continue;
        };
        now = now.max(next);
        while wire.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            let Some(Reverse((_, _, to_server, p))) = wire.pop() else {
                break;
            };
            if to_server {
                server.handle_receive(now, &p);
            } else {
                client.handle_receive(now, &p);
            }
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
    }
    let wall = start_wall.elapsed().as_secs_f64();
    let mb = total as f64 / 1e6;
    let path = if latency.is_zero() {
        format!(
            "{:.1} MB/s back to back (wall clock, both ends on this thread)",
            mb / wall
        )
    } else {
        let virtual_secs = (now - start_clock).as_secs_f64();
        format!(
            "{:.1} MB/s at {} ms RTT (virtual {:.2} s; wall {:.1} MB/s)",
            mb / virtual_secs,
            2 * latency.as_millis(),
            virtual_secs,
            mb / wall
        )
    };
    println!(
        "natter-sctp: {path}; {} MB in {} B messages, mtu {}, rwnd {} KiB, {:.2} s wall; {} packets up averaging {} B, {} down",
        total / 1_000_000,
        message_size,
        mtu,
        receive_window / 1024,
        wall,
        packets_up,
        bytes_up / packets_up.max(1),
        packets_down,
    );
    Ok(())
}
