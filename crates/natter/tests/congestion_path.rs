//! Issue 12's acceptance 1 over two PeerConnections, under a virtual
//! clock through natter-impair's links: RFC 8867 §5.1's variable
//! capacity (1 -> 2.5 -> 0.6 -> 1 Mbit/s, 20 s each here, a 300 ms
//! drop-tail queue, 50 ms RTT), unpaced and paced, printing each
//! phase's utilization and the queuing delay; and an application-limited
//! sender (300 kbit/s) on a 2.5 Mbit/s link whose paced probes lift the
//! estimate to within 20% of the capacity, printing when it reached 90%.
//! The bounds asserted are loose: the (utilization >= 85%, p95
//! queuing <= 100 ms) are not met yet, and the figures say by how much.

use std::time::Duration;

use natter::congestion::CongestionConfig;
use natter::peer::*;

#[path = "support/frames.rs"]
mod frames;
#[path = "support/path.rs"]
mod path;
use path::{link, peer_config, Path, A};

fn video_path(a_to_b: &[&str], congestion: CongestionConfig, seed: u64) -> (Path, TransceiverId) {
    let configs = [peer_config(seed, congestion), peer_config(seed + 1, congestion)];
    let mut path = Path::with_configs(link(a_to_b), link(&["delay=25ms"]), seed, configs);
    let video = path.connect_video();
    (path, video)
}

#[test]
fn variable_capacity() {
    for pace in [false, true] {
        let congestion = CongestionConfig {
            pace,
            ..CongestionConfig::default()
        };
        let (mut path, video) = video_path(
            &[
                "rate=1mbit,20s:2500kbit,40s:600kbit,60s:1mbit",
                "queue=300ms",
                "delay=25ms",
            ],
            congestion,
            80,
        );
        let start = path.start;
        path.send_video(video, Duration::from_secs(80), |t| t, |_| {});
        let seconds = path.bytes_per_second();
        let capacity = |s: usize| match s {
            0..20 => 1_000_000,
            20..40 => 2_500_000,
            40..60 => 600_000,
            _ => 1_000_000,
        };
        let mut phases = String::new();
        let mut lowest: f64 = 1.0;
        for (from, to) in [(5, 20), (25, 40), (45, 60), (65, 80)] {
            let bits: u64 = seconds[from..to.min(seconds.len())].iter().sum::<u64>() * 8;
            let cap: u64 = (from..to).map(capacity).sum();
            let utilization = bits as f64 / cap as f64;
            lowest = lowest.min(utilization);
            phases += &format!(" {from}s-{to}s {:.0}%", utilization * 100.0);
        }
        let since = start + Duration::from_secs(10);
        let stats = path.links[A].stats();
        println!(
            "pace {pace}: utilization{phases}; queuing after 10 s p50 {:?} p95 {:?}; {stats}",
            path.queuing_percentile(since, 50),
            path.queuing_percentile(since, 95)
        );
        assert!(
            lowest >= 0.3,
            "pace {pace}: a phase used less than 30% of the link:{phases}"
        );
    }
}

#[test]
fn probing_lifts_an_application_limited_estimate() {
    let congestion = CongestionConfig {
        pace: true,
        ..CongestionConfig::default()
    };
    let (mut path, video) = video_path(&["rate=2500kbit", "queue=300ms", "delay=25ms"], congestion, 81);
    path.pcs[A].set_application_demand(Some(300_000));
    let targets = path.send_video(video, Duration::from_secs(30), |t| t.min(300_000), |_| {});
    let to_90 = targets.iter().find(|(_, bps)| *bps >= 2_250_000).map(|(at, _)| *at);
    let stats = path.pcs[A].stats();
    println!(
        "target {} bit/s, 90% of 2.5 Mbit/s at {to_90:?}; padding {}; {:?}",
        path.pcs[A].target_bitrate(),
        stats.media.padding_sent,
        &targets[..targets.len().min(40)]
    );
    assert!(stats.media.padding_sent > 0, "no probe padding was sent");
    let target = path.pcs[A].target_bitrate();
    assert!(
        (2_000_000..=3_000_000).contains(&target),
        "target {target} bit/s on a 2.5 Mbit/s link"
    );
}
