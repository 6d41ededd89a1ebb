//! Backpressure on a reader that falls behind (the crate documentation's
//! "Backpressure"): a connection whose application leaves events unread
//! stops reading its data channels, so SCTP's receive window closes and
//! the sender waits, probing the window (RFC 9260 §6.1 A). Nothing is
//! dropped: the reader gets every byte in order, the endpoint drops no
//! packet for the paused connection, neither association drops one, and
//! the sender never times out on loss (no T3-rtx expiry).
//! Two connections on 127.0.0.1; every wait is on an event or a counter,
//! under one deadline.

use std::time::Duration;

mod common;

use natter::peer::SctpSettings;
use natter_io::{Config, DataChannelInit, Endpoint, LocalAddresses, PeerConfig, PeerConnection, PeerEvent, PeerStats};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

const DEADLINE: Duration = Duration::from_secs(60);
const MESSAGE: usize = 16 * 1024;
/// 10 MiB: several times what the reader's window and its event queues
/// hold.
const MESSAGES: usize = 640;
/// The reader's receive window (RFC 9260 §6.2): twice the largest
/// message, the least natter-sctp takes.
const WINDOW: u32 = 512 * 1024;

fn config(event_capacity: usize) -> Config {
    Config {
        local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse().unwrap()]),
        mdns: false,
        event_capacity,
        peer: PeerConfig {
            sctp: SctpSettings {
                receive_window: WINDOW,
                ..SctpSettings::default()
            },
            ..PeerConfig::default()
        },
        ..Config::default()
    }
}

/// Message `i`: its index, then bytes that depend on it.
fn message(i: usize) -> Vec<u8> {
    let mut m = (i as u32).to_be_bytes().to_vec();
    m.extend((4..MESSAGE).map(|k| (k as u8).wrapping_mul(13).wrapping_add(i as u8)));
    m
}

async fn sctp_stats(pc: &PeerConnection) -> natter_sctp::Stats {
    let stats: PeerStats = pc.stats().await.expect("the connection runs");
    stats.sctp.expect("the association is up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_closes_the_window_and_gets_every_byte_without_a_drop() {
    // The reader: an endpoint (whose counters say what it dropped) with a
    // small event channel, so that it falls behind soon.
    let endpoint = Endpoint::bind(config(16)).unwrap();
    let (reader, mut reader_events) = endpoint.connect().await.unwrap();
    let (writer, mut writer_events) = PeerConnection::spawn(config(1024)).unwrap();

    let channel = writer
        .create_data_channel("bulk", DataChannelInit::default())
        .await
        .unwrap();
    common::negotiate(&writer, &reader).await;

    // Candidates trickle across until the reader sees the channel open.
    let setup = async {
        loop {
            let event = common::next_after_candidates(&writer, &mut writer_events, &reader, &mut reader_events);
            if let PeerEvent::DataChannelOpen(_) = event.await {
                return;
            }
        }
    };
    timeout(DEADLINE, setup).await.expect("the channel opened");
    // The writer's own events are read all along (it must not be the
    // one held back).
    let (writer_done, mut writer_closed) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while writer_events.recv().await.is_some() {}
        drop(writer_done);
    });

    let run = async {
        for i in 0..MESSAGES {
            channel.send(message(i)).await.expect("the writer queues it");
        }
        // The reader reads nothing until the writer probes a shut window.
        loop {
            if sctp_stats(&writer).await.zero_window_probes > 0 {
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        let held_back = channel.buffered_amount().await.unwrap();
        // Then it reads, slowly: a pause every 32 messages.
        let mut next = 0;
        while next < MESSAGES {
            match reader_events.recv().await.expect("the reader's events go on") {
                PeerEvent::DataChannelMessage { data, .. } => {
                    assert!(data == message(next), "message {next} came whole and in order");
                    next += 1;
                    if next % 32 == 0 {
                        sleep(Duration::from_millis(10)).await;
                    }
                }
                PeerEvent::DataChannelClose(_) => panic!("the channel closed after {next} messages"),
                _ => {}
            }
        }
        held_back
    };
    let held_back = timeout(DEADLINE, run).await.expect("every message arrived");
    assert!(
        held_back > MESSAGES * MESSAGE / 4,
        "the shut window held the writer back: only {held_back} bytes were left queued"
    );

    let dropped = endpoint.stats().await.unwrap().paused_dropped;
    assert_eq!(dropped, 0, "packets dropped for the paused connection");
    let (writer_sctp, reader_sctp) = (sctp_stats(&writer).await, sctp_stats(&reader).await);
    assert_eq!(
        writer_sctp.t3_expiries, 0,
        "the writer timed out on loss: {writer_sctp:?}"
    );
    assert_eq!(writer_sctp.packets_dropped, 0, "{writer_sctp:?}");
    assert_eq!(reader_sctp.packets_dropped, 0, "{reader_sctp:?}");
    assert!(writer_sctp.zero_window_probes > 0, "{writer_sctp:?}");

    writer.close().await;
    reader.close().await;
    timeout(DEADLINE, writer_closed.recv())
        .await
        .expect("the writer's events end");
}
