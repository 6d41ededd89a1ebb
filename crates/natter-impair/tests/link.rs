//! The link model under a virtual clock: delay and jitter, random and
//! burst loss, the bottleneck's rate, queue and schedule, reordering,
//! duplication, and the seed. Statistical bounds are five standard
//! deviations or more of the quantity measured, worked out beside each.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use natter_impair::{ConfigError, Link, LinkConfig, LossModel, QueueLimit, Rate, RateSchedule};

const MS: Duration = Duration::from_millis(1);

/// A link made from `key=value` settings.
fn link(settings: &[&str], seed: u64, start: Instant) -> Link<Vec<u8>> {
    let mut config = LinkConfig::default();
    for setting in settings {
        config.apply(setting).unwrap();
    }
    Link::new(config, seed, start).unwrap()
}

/// A packet of `size` bytes (at least 8) that starts with its index.
fn packet(index: u64, size: usize) -> Vec<u8> {
    let mut data = index.to_be_bytes().to_vec();
    data.resize(size, 0xa5);
    data
}

fn index(packet: &[u8]) -> u64 {
    u64::from_be_bytes(packet[..8].try_into().unwrap())
}

/// One packet out of the link: its index, size and arrival.
#[derive(Debug, PartialEq)]
struct Arrival {
    index: u64,
    size: usize,
    at: Instant,
}

/// Sends packet `i` of `size` bytes at `start + gap * i` for `i` below
/// `count`, handing out whatever is due before each send; returns every
/// arrival once the link is empty.
fn drive(link: &mut Link<Vec<u8>>, start: Instant, count: u64, gap: Duration, size: usize) -> Vec<Arrival> {
    let mut out = Vec::new();
    let mut deliver_until = |link: &mut Link<Vec<u8>>, until: Option<Instant>| {
        while let Some(due) = link.poll_timeout().filter(|due| until.is_none_or(|u| *due <= u)) {
            while let Some(p) = link.poll_packet(due) {
                out.push(Arrival {
                    index: index(&p),
                    size: p.len(),
                    at: due,
                });
            }
        }
    };
    for i in 0..count {
        let now = start + gap * u32::try_from(i).unwrap();
        deliver_until(link, Some(now));
        link.handle_packet(now, packet(i, size));
    }
    deliver_until(link, None);
    out
}

/// The time from sending packet `a.index` to its arrival.
fn delay(a: &Arrival, start: Instant, gap: Duration) -> Duration {
    a.at - (start + gap * u32::try_from(a.index).unwrap())
}

fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[test]
fn a_plain_link_delivers_everything_after_the_delay() {
    let start = Instant::now();
    let mut link = link(&["delay=30ms"], 1, start);
    let out = drive(&mut link, start, 100, MS, 100);
    assert_eq!(out.len(), 100);
    for (i, a) in out.iter().enumerate() {
        assert_eq!(a.index, i as u64);
        assert_eq!(delay(a, start, MS), 30 * MS);
    }
    let stats = link.stats();
    assert_eq!((stats.received, stats.delivered), (100, 100));
    assert_eq!((stats.received_bytes, stats.delivered_bytes), (10_000, 10_000));
}

#[test]
fn jitter_is_uniform_around_the_delay() {
    // Packets 25 ms apart, more than the 20 ms width of the jitter, so
    // no packet waits for the one ahead and each delay is its own draw.
    let start = Instant::now();
    let mut link = link(&["delay=50ms", "jitter=10ms"], 2, start);
    let gap = 25 * MS;
    let n = 10_000;
    let out = drive(&mut link, start, n, gap, 100);
    assert_eq!(out.len() as u64, n);
    let delays: Vec<f64> = out.iter().map(|a| delay(a, start, gap).as_secs_f64() * 1e3).collect();
    for d in &delays {
        assert!((40.0..=60.0).contains(d), "a delay of {d} ms outside 50 ± 10 ms");
    }
    // Uniform on 40..60 ms: sd 20/√12 = 5.77 ms. The mean of 10,000 has
    // sd 0.058 ms; the sample sd has sd 5.77·√(0.8/10,000)/2 ≈ 0.026 ms
    // (fourth moment 9σ⁴/5); the share below 50 ms has sd 0.005.
    let (mean, std) = mean_and_std(&delays);
    assert!((mean - 50.0).abs() < 0.3, "mean delay {mean} ms");
    assert!((std - 20.0 / 12f64.sqrt()).abs() < 0.15, "delay sd {std} ms");
    let below = delays.iter().filter(|d| **d < 50.0).count() as f64 / n as f64;
    assert!((below - 0.5).abs() < 0.025, "{below} of the delays below 50 ms");
}

#[test]
fn jitter_alone_keeps_the_order() {
    // 1 ms apart with ±10 ms of jitter: draws cross often, arrivals not.
    let start = Instant::now();
    let mut link = link(&["delay=50ms", "jitter=10ms"], 3, start);
    let out = drive(&mut link, start, 5_000, MS, 100);
    let indices: Vec<u64> = out.iter().map(|a| a.index).collect();
    assert_eq!(indices, (0..5_000).collect::<Vec<u64>>());
    for a in &out {
        let d = delay(a, start, MS);
        assert!(d >= 40 * MS && d <= 60 * MS, "packet {} took {d:?}", a.index);
    }
    assert_eq!(link.stats().reordered, 0);
}

#[test]
fn random_loss_is_within_binomial_bounds() {
    let start = Instant::now();
    let mut link = link(&["loss=2%"], 4, start);
    let n = 100_000;
    let out = drive(&mut link, start, n, MS, 100);
    let stats = *link.stats();
    // Binomial(100,000, 0.02): mean 2,000, sd √(n·p·(1-p)) = 44.3.
    assert!(stats.lost.abs_diff(2_000) < 222, "{} lost", stats.lost);
    assert_eq!(out.len() as u64, n - stats.lost);
    assert_eq!(stats.delivered + stats.lost, stats.received);
}

/// Runs of consecutive indices missing from `out`, which holds indices
/// below `n` in order.
fn loss_bursts(out: &[Arrival], n: u64) -> Vec<u64> {
    let mut bursts = Vec::new();
    let mut expected = 0;
    for index in out.iter().map(|a| a.index).chain([n]) {
        if index > expected {
            bursts.push(index - expected);
        }
        expected = index + 1;
    }
    bursts
}

#[test]
fn gilbert_elliott_loses_packets_in_bursts() {
    // p = 1%, r = 25%, every packet lost while bad: a long-run loss of
    // p/(p+r) = 3.85% in bursts of 1/r = 4 packets on average.
    let start = Instant::now();
    let mut link = link(&["burst-loss=1%,25%"], 5, start);
    let n = 200_000;
    let out = drive(&mut link, start, n, MS, 100);
    let lost = link.stats().lost;
    assert_eq!(out.len() as u64 + lost, n);
    // About 1,900 bursts of geometric length (variance (1-r)/r² = 12):
    // the total has sd ≈ √(1,900·(12 + 16)) ≈ 230 around 7,690; the
    // mean burst sd ≈ √(12/1,900) ≈ 0.08. Random loss at the same rate
    // would give bursts of 1.04 packets.
    let expected = LossModel::GilbertElliott {
        p: 0.01,
        r: 0.25,
        bad_loss: 1.0,
        good_loss: 0.0,
    }
    .mean_loss()
        * n as f64;
    assert!(
        (lost as f64 - expected).abs() < 1_200.0,
        "{lost} lost, {expected} expected"
    );
    let bursts = loss_bursts(&out, n);
    let mean_burst = bursts.iter().sum::<u64>() as f64 / bursts.len() as f64;
    assert!((mean_burst - 4.0).abs() < 0.5, "mean burst of {mean_burst} packets");
}

/// Bytes arriving in each whole second since `start`.
fn bytes_per_second(out: &[Arrival], start: Instant) -> Vec<u64> {
    let mut seconds = Vec::new();
    for a in out {
        let second = (a.at - start).as_secs() as usize;
        if seconds.len() <= second {
            seconds.resize(second + 1, 0);
        }
        seconds[second] += a.size as u64;
    }
    seconds
}

#[test]
fn the_queue_drops_what_exceeds_the_rate_and_bounds_the_wait() {
    // 2 Mbit/s offered (1250 bytes every 5 ms) for 10 s to a 1 Mbit/s
    // link with a 100 ms queue: half is dropped, the rest waits at most
    // 100 ms (1250 bytes take 10 ms, within the queue's size).
    let start = Instant::now();
    let mut link = link(&["rate=1mbit", "queue=100ms"], 6, start);
    let gap = 5 * MS;
    let out = drive(&mut link, start, 2_000, gap, 1250);
    let stats = *link.stats();
    assert_eq!(stats.delivered + stats.queue_drops, 2_000);
    // 10 s at 1 Mbit/s is 1,000 packets, plus the 10 the queue holds.
    assert!(
        (990..=1_010).contains(&stats.delivered),
        "{} delivered",
        stats.delivered
    );
    assert_eq!(stats.queue_drop_bytes, stats.queue_drops * 1250);
    for a in &out {
        let waited = delay(a, start, gap);
        assert!(waited <= 100 * MS, "packet {} waited {waited:?}", a.index);
    }
    // Saturated, the link sends exactly its rate: 125,000 bytes a
    // second, give or take the packet on the line at each edge.
    let seconds = bytes_per_second(&out, start);
    for (second, bytes) in seconds.iter().enumerate().take(10) {
        assert!(bytes.abs_diff(125_000) <= 1250, "{bytes} bytes in second {second}");
    }
}

#[test]
fn a_queue_in_bytes_counts_the_packet_being_sent() {
    // Twenty 1000-byte packets at once into a 5,000-byte queue at
    // 1 Mbit/s (8 ms a packet): five fit, and they leave 8 ms apart.
    let start = Instant::now();
    let mut link = link(&["rate=1mbit", "queue=5kb"], 7, start);
    for i in 0..20 {
        link.handle_packet(start, packet(i, 1000));
    }
    assert_eq!(link.stats().queue_drops, 15);
    assert_eq!(link.queue_delay(start), 40 * MS);
    assert_eq!(link.queue_delay(start + 30 * MS), 10 * MS);
    let mut arrivals = Vec::new();
    while let Some(due) = link.poll_timeout() {
        let p = link.poll_packet(due).unwrap();
        arrivals.push((index(&p), due - start));
    }
    let expected: Vec<(u64, Duration)> = (0..5).map(|i| (i, 8 * MS * (i as u32 + 1))).collect();
    assert_eq!(arrivals, expected);
    // Once the queue has drained, a packet is taken again.
    link.handle_packet(start + 40 * MS, packet(20, 1000));
    assert_eq!(link.stats().queue_drops, 15);
}

#[test]
fn a_token_bucket_passes_its_burst_at_once_then_the_rate() {
    // tbf rate 300kbit burst 3100 (37.5 bytes a millisecond): after a
    // pause, two 1200-byte packets sent at once leave at once; the
    // third waits for the 500 bytes the bucket lacks (13.33 ms), the
    // fourth for a whole packet more (32 ms).
    let start = Instant::now();
    let mut link = link(&["rate=300kbit", "burst=3100b", "queue=200ms"], 8, start);
    for i in 0..4 {
        link.handle_packet(start, packet(i, 1200));
    }
    let mut arrivals = Vec::new();
    while let Some(due) = link.poll_timeout() {
        let p = link.poll_packet(due).unwrap();
        arrivals.push((index(&p), (due - start).as_micros()));
    }
    assert_eq!(arrivals, [(0, 0), (1, 0), (2, 13_333), (3, 45_333)]);
    // Idle, the bucket fills again, and no more than it holds.
    let later = start + Duration::from_secs(1);
    for i in 4..8 {
        link.handle_packet(later, packet(i, 1200));
    }
    assert_eq!(link.queue_delay(later), Duration::from_nanos(45_333_334));
    // A packet larger than the bucket never passes, as with tbf.
    link.handle_packet(later, packet(8, 3101));
    assert_eq!(link.stats().queue_drops, 1);
}

#[test]
fn a_token_bucket_sends_its_rate_over_time() {
    // 600 kbit/s offered (1200 bytes every 16 ms) for 10 s to a
    // 300 kbit/s bucket of 10 kB with a 200 ms queue: each second
    // carries the rate, give or take a packet, except the first, which
    // also empties the bucket.
    let start = Instant::now();
    let mut link = link(&["rate=300kbit", "burst=10kb", "queue=200ms"], 9, start);
    let out = drive(&mut link, start, 625, 16 * MS, 1200);
    let seconds = bytes_per_second(&out, start);
    assert!(
        seconds[0].abs_diff(37_500 + 10_000) <= 1200,
        "{} bytes in second 0",
        seconds[0]
    );
    for (second, bytes) in seconds.iter().enumerate().take(10).skip(1) {
        assert!(bytes.abs_diff(37_500) <= 1200, "{bytes} bytes in second {second}");
    }
    // What waits is at most the queue: 200 ms at the rate plus the bucket.
    assert!(link.stats().queue_drops > 0);
    for a in &out {
        assert!(
            delay(a, start, 16 * MS) <= 470 * MS,
            "packet {} waited too long",
            a.index
        );
    }
}

#[test]
fn capacity_follows_its_schedule() {
    // 4 Mbit/s offered to 1 Mbit/s, then 2.5 from 2 s, then 0.6 from 4 s.
    let start = Instant::now();
    let mut link = link(&["rate=1mbit,2s:2.5mbit,4s:600kbit", "queue=50ms"], 8, start);
    let out = drive(&mut link, start, 2_400, 2500 * Duration::from_micros(1), 1250);
    let seconds = bytes_per_second(&out, start);
    let rates = [1e6, 1e6, 2.5e6, 2.5e6, 0.6e6, 0.6e6];
    for (second, rate) in rates.iter().enumerate() {
        let expected = rate / 8.0;
        let got = seconds[second] as f64;
        assert!(
            (got - expected).abs() <= 1250.0,
            "{got} bytes in second {second}, {expected} expected"
        );
    }
}

#[test]
fn reordering_and_duplication_match_their_counters() {
    // 1 ms apart, 5% held back 20 ms (overtaken by the next 19), 3% twice.
    let start = Instant::now();
    let settings = ["delay=10ms", "reorder=5%", "reorder-delay=20ms", "duplicate=3%"];
    let mut link = link(&settings, 9, start);
    let n = 100_000;
    let out = drive(&mut link, start, n, MS, 100);
    let stats = *link.stats();
    let (mut seen, mut highest) = (HashSet::new(), None);
    let (mut late, mut twice) = (0, 0);
    for a in &out {
        if !seen.insert(a.index) {
            twice += 1;
        } else if highest.is_some_and(|h| a.index < h) {
            late += 1;
        }
        highest = highest.max(Some(a.index));
    }
    assert_eq!(seen.len() as u64, n, "every packet arrives");
    assert_eq!(late, stats.reordered);
    assert_eq!(twice, stats.duplicated);
    assert_eq!(stats.delivered, n + stats.duplicated);
    // Binomial sds: √(n·0.05·0.95) = 68.9 and √(n·0.03·0.97) = 53.9.
    assert!(stats.reordered.abs_diff(5_000) < 345, "{} reordered", stats.reordered);
    assert!(
        stats.duplicated.abs_diff(3_000) < 270,
        "{} duplicated",
        stats.duplicated
    );
}

#[test]
fn the_same_seed_gives_the_same_output() {
    let settings = [
        "delay=40ms",
        "jitter=15ms",
        "burst-loss=2%,30%,80%,1%",
        "reorder=3%",
        "duplicate=2%",
        "rate=2mbit,1s:1mbit",
        "queue=60ms",
    ];
    let run = |seed: u64| {
        let start = Instant::now();
        let mut link = link(&settings, seed, start);
        let out = drive(&mut link, start, 3_000, MS, 400);
        let times: Vec<(u64, Duration)> = out.iter().map(|a| (a.index, a.at - start)).collect();
        (times, *link.stats())
    };
    let (first, stats) = run(11);
    assert_eq!(run(11), (first.clone(), stats));
    assert_ne!(run(12).0, first);
    // Every impairment played a part.
    assert!(stats.queue_drops > 0 && stats.lost > 0 && stats.reordered > 0 && stats.duplicated > 0);
}

#[test]
fn settings_parse_from_their_command_line_forms() {
    let mut config = LinkConfig::default();
    for setting in [
        "delay=1.5s",
        "jitter=250us",
        "burst-loss=1%,20%,90%,0.1%",
        "reorder=0.5%",
        "reorder-delay=20ms",
        "duplicate=0.01",
        "rate=2.5mbit,40s:600kbit",
        "queue=64kb",
        "burst=3.1kb",
    ] {
        config.apply(setting).unwrap();
    }
    let rate = |bits| Rate::new(bits).unwrap();
    let expected = LinkConfig {
        delay: Duration::from_millis(1500),
        jitter: Duration::from_micros(250),
        loss: LossModel::GilbertElliott {
            p: 0.01,
            r: 0.2,
            bad_loss: 0.9,
            good_loss: 0.001,
        },
        reorder: 0.005,
        reorder_delay: 20 * MS,
        duplicate: 0.01,
        rate: Some(
            RateSchedule::constant(rate(2_500_000))
                .then(Duration::from_secs(40), rate(600_000))
                .unwrap(),
        ),
        queue: QueueLimit::Bytes(64_000),
        burst: Some(3_100),
    };
    assert_eq!(config, expected);
    config.set("queue", "100ms").unwrap();
    assert_eq!(config.queue, QueueLimit::Time(100 * MS));
    config.set("loss", "2%").unwrap();
    assert_eq!(config.loss, LossModel::Random(0.02));
}

#[test]
fn bad_settings_are_refused_with_what_was_wrong() {
    let mut config = LinkConfig::default();
    assert_eq!(
        config.set("latency", "5ms"),
        Err(ConfigError::UnknownKey("latency".into()))
    );
    assert_eq!(config.apply("delay"), Err(ConfigError::NotKeyValue("delay".into())));
    for (key, value) in [
        ("delay", "5"),
        ("delay", "-5ms"),
        ("loss", "101%"),
        ("loss", "NaN"),
        ("rate", "0mbit"),
        ("rate", "2mbps"),
        ("rate", "1mbit,5s"),
        ("burst-loss", "1%"),
        ("queue", "lots"),
        ("burst", "0b"),
    ] {
        // The error names the setting and the part of its value at fault.
        let error = config.set(key, value).unwrap_err();
        assert!(
            matches!(&error, ConfigError::BadValue { key: k, value: v, .. } if k == key && value.contains(v.as_str())),
            "{key}={value}: {error}"
        );
    }
    assert_eq!(
        config.set("rate", "1mbit,5s:2mbit,5s:3mbit"),
        Err(ConfigError::ScheduleOutOfOrder {
            at: Duration::from_secs(5)
        })
    );
    config.set("jitter", "5ms").unwrap();
    let jitter = Link::<Vec<u8>>::new(config.clone(), 1, Instant::now()).unwrap_err();
    assert!(matches!(jitter, ConfigError::JitterExceedsDelay { .. }), "{jitter}");
    config.jitter = Duration::ZERO;
    config.duplicate = 1.5;
    let duplicate = Link::<Vec<u8>>::new(config, 1, Instant::now()).unwrap_err();
    assert!(
        matches!(&duplicate, ConfigError::BadValue { key, .. } if key == "duplicate"),
        "{duplicate}"
    );
}
