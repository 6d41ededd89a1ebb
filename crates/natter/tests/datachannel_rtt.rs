//! Issue 15: a bulk transfer on one reliable data channel between two
//! PeerConnections fills a long path. A sends 20 MB in 16 KiB messages,
//! keeping at most 1 MiB buffered (as natter-client's file transfer
//! does), across a loss-free network with 25 ms each way (50 ms RTT)
//! and no rate limit, in virtual time; only the windows (SCTP's cwnd
//! and receive window, DTLS and ICE under them) limit it. 20 MB in 3 s
//! is 6.7 MB/s on average, slow start included; a fixed window of 64 KiB
//! would take 15 s.

use std::time::Duration;

use natter::peer::*;
use natter_sctp::Message;

#[path = "support/net.rs"]
mod net;
#[allow(dead_code)]
mod support;
use net::{Net, A, B};

const TOTAL: usize = 20_000_000;
const CHUNK: usize = 16 * 1024;
const HIGH_WATER: usize = 1 << 20;

#[test]
fn a_bulk_transfer_at_50_ms_rtt_is_not_window_bound() {
    let mut net = Net::new(0.0, 7);
    net.latency = Duration::from_millis(25);
    let ours = net
        .pc(A)
        .create_data_channel("bulk", DataChannelInit::default())
        .unwrap();
    net.negotiate();
    net.run_until(Duration::from_secs(60), |n| {
        n.has(A, &PeerEvent::DataChannelOpen(ours))
            && n.events(B).iter().any(|e| matches!(e, PeerEvent::DataChannelOpen(_)))
    });
    let theirs = net.incoming(B, "bulk").unwrap();
    let payload = vec![7u8; CHUNK];
    let (mut sent, mut received) = (0, 0);
    let start = net.now;
    let mut per_second = Vec::new();
    let mut mark = (start, 0);
    while received < TOTAL {
        let mut channel = net.pc(A).data_channel(ours).unwrap();
        while sent < TOTAL && channel.buffered_amount() < HIGH_WATER {
            channel.send(Message::Binary(&payload)).unwrap();
            sent += CHUNK;
        }
        assert!(net.step(), "idle at {received} of {TOTAL} bytes");
        received += net.take_messages(B, theirs).iter().map(|(m, _)| m.len()).sum::<usize>();
        if net.now - mark.0 >= Duration::from_secs(1) {
            per_second.push((received - mark.1) as f64 / (net.now - mark.0).as_secs_f64() / 1e6);
            mark = (net.now, received);
        }
        assert!(
            net.now - start < Duration::from_secs(120),
            "{received} bytes after 120 s: {per_second:?} MB/s"
        );
    }
    let seconds = (net.now - start).as_secs_f64();
    println!("20 MB at 50 ms RTT in {seconds:.2} s of virtual time; MB/s per second: {per_second:.1?}");
    assert!(
        seconds < 3.0,
        "20 MB took {seconds:.2} s at 50 ms RTT: {per_second:.1?} MB/s"
    );
}
