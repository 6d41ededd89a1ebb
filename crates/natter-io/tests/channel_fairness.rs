//! A data channel nobody reads, next to one that is read (the crate
//! documentation's "Backpressure"): the writer sends 50 MB on "bulk"
//! with a chat message after each bulk one; the reader reads "chat" from
//! its own receiver and leaves "bulk" unread. The chat messages that
//! came with the first megabytes are read while bulk is not, natter-io
//! holds a bounded number of bytes (the association's window closes),
//! and once bulk is read every byte of both arrives, in order.
//! Two connections on 127.0.0.1; every wait is on an event or a counter,
//! under one deadline.

use std::time::Duration;

mod common;

use natter::peer::SctpSettings;
use natter_io::{
    ChannelMessages, Config, DataChannel, DataChannelInit, LocalAddresses, PeerConfig, PeerConnection, PeerEvent,
};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

const DEADLINE: Duration = Duration::from_secs(120);
const BULK_MESSAGE: usize = 64 * 1024;
/// 50 MB.
const BULK_MESSAGES: usize = 50_000_000 / BULK_MESSAGE;
const CHAT_MESSAGE: usize = 100;
/// The reader's SCTP receive window (RFC 9260 §6.2).
const WINDOW: u32 = 1024 * 1024;
/// natter-io's cap on what it holds for the application (delivery.rs).
const MAX_QUEUED_BYTES: usize = 4 << 20;
/// The writer keeps at most this much queued on bulk.
const HIGH: usize = 8 << 20;

fn config() -> Config {
    Config {
        local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse().unwrap()]),
        mdns: false,
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

/// Message `i` of `size` bytes: its index, then bytes that depend on it.
fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = (i as u32).to_be_bytes().to_vec();
    m.extend((4..size).map(|k| (k as u8).wrapping_mul(13).wrapping_add(i as u8)));
    m
}

/// Reads `channel`'s messages, checking each is the next one whole, and
/// reports how many came.
fn read_all(mut channel: ChannelMessages, size: usize, count: usize) -> mpsc::UnboundedReceiver<usize> {
    let (report, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for next in 0..count {
            let m = channel.recv().await.expect("the channel goes on");
            assert!(
                m.data == message(next, size),
                "message {next} of {size} bytes came whole and in order"
            );
            if report.send(next + 1).is_err() {
                return;
            }
        }
    });
    reports
}

/// Sends the 50 MB on `bulk` with a chat message after each bulk one,
/// keeping at most [`HIGH`] queued on bulk.
async fn write(bulk: DataChannel, chat: DataChannel, mut low: mpsc::UnboundedReceiver<()>) {
    bulk.set_buffered_amount_low_threshold(HIGH / 2).await.unwrap();
    for i in 0..BULK_MESSAGES {
        while bulk.buffered_amount().await.unwrap() > HIGH {
            low.recv().await.expect("the writer's events go on");
        }
        bulk.send(message(i, BULK_MESSAGE)).await.expect("bulk queued");
        chat.send(message(i, CHAT_MESSAGE)).await.expect("chat queued");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_channel_holds_back_only_itself_within_a_bounded_queue() {
    let (reader, mut reader_events) = PeerConnection::spawn(config()).unwrap();
    let (writer, mut writer_events) = PeerConnection::spawn(config()).unwrap();
    let bulk = writer
        .create_data_channel("bulk", DataChannelInit::default())
        .await
        .unwrap();
    let chat = writer
        .create_data_channel("chat", DataChannelInit::default())
        .await
        .unwrap();
    common::negotiate(&writer, &reader).await;

    // Candidates trickle across until the reader has both channels open,
    // each read apart.
    let setup = async {
        let (mut bulk_in, mut chat_in) = (None, None);
        while bulk_in.is_none() || chat_in.is_none() {
            let event = common::next_after_candidates(&writer, &mut writer_events, &reader, &mut reader_events);
            if let PeerEvent::DataChannelOpen(id) = event.await {
                let channel = reader.data_channel(id);
                let messages = channel.messages().await.unwrap();
                match channel.info().await.unwrap().label.as_str() {
                    "bulk" => bulk_in = Some(messages),
                    _ => chat_in = Some(messages),
                }
            }
        }
        (bulk_in.unwrap(), chat_in.unwrap())
    };
    let (bulk_in, chat_in) = timeout(DEADLINE, setup).await.expect("the channels opened");
    // The writer's events feed its refill loop; the reader's are read
    // all along (no data channel message may come there).
    let (low, lows) = mpsc::unbounded_channel();
    let bulk_id = bulk.id();
    tokio::spawn(async move {
        while let Some(event) = writer_events.recv().await {
            if matches!(event, PeerEvent::BufferedAmountLow(id) if id == bulk_id) {
                let _ = low.send(());
            }
        }
    });
    tokio::spawn(async move {
        while let Some(event) = reader_events.recv().await {
            assert!(
                !matches!(event, PeerEvent::DataChannelMessage { .. }),
                "a message of a channel read apart came as an event"
            );
        }
    });
    let writing = tokio::spawn(write(bulk, chat, lows));
    let mut chat_read = read_all(chat_in, CHAT_MESSAGE, BULK_MESSAGES);

    // Bulk is not read: the reader's data channels pause once natter-io
    // holds its cap, while the chat messages read meanwhile keep coming.
    let mut chat_got = 0;
    let paused = async {
        loop {
            tokio::select! {
                n = chat_read.recv() => chat_got = n.expect("chat read"),
                () = sleep(Duration::from_millis(20)) => {
                    if reader.delivery_stats().await.unwrap().data_paused {
                        return;
                    }
                }
            }
        }
    };
    timeout(DEADLINE, paused)
        .await
        .expect("the reader paused its data channels");
    // What SCTP delivered before the pause is read, with bulk unread.
    while let Ok(n) = chat_read.try_recv() {
        chat_got = n;
    }
    let held = reader.delivery_stats().await.unwrap();
    // The cap was reached with 64 of bulk's messages, the chat ones sent
    // between them came past those natter-io held back: at least half
    // (how the writer's scheduler interleaves the two varies).
    let bulk_held = MAX_QUEUED_BYTES / BULK_MESSAGE;
    assert!(
        chat_got >= bulk_held / 2,
        "only {chat_got} chat messages read while bulk was not ({held:?})"
    );
    let bound = MAX_QUEUED_BYTES + WINDOW as usize + BULK_MESSAGE;
    assert!(held.peak_queued_bytes <= bound, "natter-io held {held:?}, over {bound}");

    // Bulk is read: everything arrives, in order.
    let mut bulk_read = read_all(bulk_in, BULK_MESSAGE, BULK_MESSAGES);
    let rest = async {
        let (mut bulk_got, mut chat_got) = (0, chat_got);
        while bulk_got < BULK_MESSAGES || chat_got < BULK_MESSAGES {
            tokio::select! {
                n = bulk_read.recv(), if bulk_got < BULK_MESSAGES => bulk_got = n.expect("bulk read"),
                n = chat_read.recv(), if chat_got < BULK_MESSAGES => chat_got = n.expect("chat read"),
            }
        }
    };
    timeout(DEADLINE, rest).await.expect("every message arrived");
    writing.await.expect("the writer sent everything");
    let stats = reader.delivery_stats().await.unwrap();
    assert!(
        stats.peak_queued_bytes <= bound,
        "natter-io held {stats:?}, over {bound}"
    );
    let sctp = reader.stats().await.unwrap().sctp.expect("the association is up");
    assert_eq!(sctp.packets_dropped, 0, "{sctp:?}");

    writer.close().await;
    reader.close().await;
}
