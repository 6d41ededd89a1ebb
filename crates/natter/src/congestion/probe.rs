//! Probing: sending a short cluster of packets at a rate above the
//! estimate and reading what arrived from their feedback, to learn in a
//! round trip what the AIMD controller would take seconds to find
//! (libwebrtc's ProbeController and ProbeBitrateEstimator; gcc-02 leaves
//! start-up to the implementation).
//!
//! The [`ProbeController`] decides when: at the start, clusters at 3
//! and 6 times the start rate; while results keep reaching 70% of what
//! was probed, again at twice the result; at twice the estimate when
//! the application leaves the application-limited region (ALR), every
//! [`ALR_PROBE_INTERVAL`] while in it, every [`WANTED_PROBE_INTERVAL`]
//! while the application wants more than the estimate, and when the acknowledged rate
//! passes the link capacity the AIMD controller had found (the path
//! changed, and probing finds the new capacity in a round trip where
//! AIMD's 8% per second would take many). The pacer
//! sends each [`ProbeCluster`] (media, or padding when there is none),
//! tagging its packets with the cluster's id, and the [`ProbeEstimator`]
//! takes the cluster's feedback: the lower of the send and receive rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::history::PacketResult;
use super::{rate_bps, signed_micros};

/// The initial clusters, as multiples of the start rate (libwebrtc).
const INITIAL_MULTIPLES: [u64; 2] = [3, 6];
/// A result above this share of what was probed is worth probing past.
const FURTHER_PROBE_RATIO: f64 = 0.7;
/// How long to wait for a probe's result before giving up on probing
/// further.
const RESULT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often to probe while the application is limited (libwebrtc: 5 s).
pub const ALR_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How often to probe while the application wants more than the
/// estimate: what it sends is then less than it should (an SFU's
/// subscriber sees a smaller layer than its tile needs), so sooner
/// than in ALR, where nothing is missing.
pub const WANTED_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// A cluster is at least this many packets...
const MIN_PACKETS: usize = 5;
/// ...and lasts at least this long at its rate (libwebrtc: 15 ms).
const MIN_DURATION: Duration = Duration::from_millis(15);
/// A cluster's result needs this share of its packets and bytes.
const MIN_RECEIVED_SHARE: f64 = 0.8;
/// Send or receive intervals beyond this are no probe (libwebrtc: 1 s).
const MAX_INTERVAL_US: i64 = 1_000_000;
/// A receive rate more than this times the send rate is an artefact.
const MAX_RECEIVE_RATIO: f64 = 2.0;
/// A receive rate under this share of the send rate found the
/// capacity; the result is then a little under it.
const SATURATION_RATIO: f64 = 0.9;
const SATURATED_RESULT: f64 = 0.95;
/// Clusters whose feedback is followed at once.
const MAX_CLUSTERS: usize = 8;

/// One probe: send at `bitrate_bps` for at least `min_packets` packets
/// and `min_bytes` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCluster {
    pub id: u32,
    pub bitrate_bps: u64,
    pub min_packets: usize,
    pub min_bytes: usize,
}

impl ProbeCluster {
    fn new(id: u32, bitrate_bps: u64) -> ProbeCluster {
        let min_bytes = (bitrate_bps as f64 / 8.0 * MIN_DURATION.as_secs_f64()) as usize;
        ProbeCluster {
            id,
            bitrate_bps,
            min_packets: MIN_PACKETS,
            min_bytes,
        }
    }
}

/// Decides when to probe and at which rate.
#[derive(Debug)]
pub struct ProbeController {
    max_bps: u64,
    next_id: u32,
    pending: VecDeque<ProbeCluster>,
    /// While exponential probing goes on: the result that justifies the
    /// next probe, and when the last one was asked for.
    waiting: Option<(u64, Instant)>,
    started: bool,
    last_alr_probe: Option<Instant>,
}

impl ProbeController {
    pub fn new(max_bps: u64) -> ProbeController {
        ProbeController {
            max_bps,
            next_id: 1,
            pending: VecDeque::with_capacity(4),
            waiting: None,
            started: false,
            last_alr_probe: None,
        }
    }

    /// The first call starts the initial probes from `start_bps`.
    pub fn start(&mut self, now: Instant, start_bps: u64) {
        if self.started {
            return;
        }
        self.started = true;
        for multiple in INITIAL_MULTIPLES {
            self.probe(now, start_bps.saturating_mul(multiple));
        }
    }

    /// The estimate changed to `estimate_bps` at `now`: probes further
    /// if the last probe's result justifies it.
    pub fn on_estimate(&mut self, now: Instant, estimate_bps: u64) {
        let Some((threshold, asked)) = self.waiting else { return };
        if now.saturating_duration_since(asked) > RESULT_TIMEOUT {
            self.waiting = None;
        } else if estimate_bps > threshold {
            self.probe(now, estimate_bps.saturating_mul(2));
        }
    }

    /// Probes at twice the estimate: the application left ALR, or the
    /// link's capacity seems to have grown.
    pub fn probe_above(&mut self, now: Instant, estimate_bps: u64) {
        self.probe(now, estimate_bps.saturating_mul(2));
    }

    /// Periodic work: probes every [`ALR_PROBE_INTERVAL`] in ALR, every
    /// [`WANTED_PROBE_INTERVAL`] while the application wants more than
    /// the estimate.
    pub fn on_timeout(&mut self, now: Instant, in_alr: bool, wants_more: bool, estimate_bps: u64) {
        let since = self.last_alr_probe.map(|last| now.saturating_duration_since(last));
        let due = (wants_more && since.is_none_or(|d| d >= WANTED_PROBE_INTERVAL))
            || (in_alr && since.is_none_or(|d| d >= ALR_PROBE_INTERVAL));
        if due {
            self.last_alr_probe = Some(now);
            self.probe_above(now, estimate_bps);
        }
    }

    /// The next cluster to send.
    pub fn poll_cluster(&mut self) -> Option<ProbeCluster> {
        self.pending.pop_front()
    }

    fn probe(&mut self, now: Instant, bitrate_bps: u64) {
        let bitrate_bps = bitrate_bps.min(self.max_bps);
        if bitrate_bps == 0 || self.pending.len() >= MAX_CLUSTERS {
            return;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pending.push_back(ProbeCluster::new(id, bitrate_bps));
        self.waiting = (bitrate_bps < self.max_bps).then_some(((bitrate_bps as f64 * FURTHER_PROBE_RATIO) as u64, now));
    }
}

/// What arrived of one cluster so far.
#[derive(Clone, Copy, Debug)]
struct ClusterFeedback {
    cluster: ProbeCluster,
    packets: usize,
    bytes: u64,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    last_send_size: usize,
    first_arrival_us: i64,
    last_arrival_us: i64,
    first_arrival_size: usize,
}

/// Reads clusters' results from their feedback.
#[derive(Debug, Default)]
pub struct ProbeEstimator {
    clusters: VecDeque<ClusterFeedback>,
}

impl ProbeEstimator {
    /// A cluster the pacer started sending.
    pub fn on_cluster(&mut self, cluster: ProbeCluster) {
        if self.clusters.len() >= MAX_CLUSTERS {
            self.clusters.pop_front();
        }
        self.clusters.push_back(ClusterFeedback {
            cluster,
            packets: 0,
            bytes: 0,
            first_send: None,
            last_send: None,
            last_send_size: 0,
            first_arrival_us: i64::MAX,
            last_arrival_us: i64::MIN,
            first_arrival_size: 0,
        });
    }

    /// A received packet's result; the probed bitrate once its cluster
    /// has enough feedback to tell.
    pub fn on_result(&mut self, result: &PacketResult) -> Option<u64> {
        let (id, arrival) = (result.probe_cluster?, result.arrival_us?);
        let index = self.clusters.iter().position(|c| c.cluster.id == id)?;
        let c = &mut self.clusters[index];
        c.packets += 1;
        c.bytes += result.size as u64;
        if c.first_send.is_none_or(|t| result.send_time < t) {
            c.first_send = Some(result.send_time);
        }
        if c.last_send.is_none_or(|t| result.send_time >= t) {
            c.last_send = Some(result.send_time);
            c.last_send_size = result.size;
        }
        if arrival < c.first_arrival_us {
            c.first_arrival_us = arrival;
            c.first_arrival_size = result.size;
        }
        c.last_arrival_us = c.last_arrival_us.max(arrival);
        let enough_packets = c.packets as f64 >= MIN_RECEIVED_SHARE * c.cluster.min_packets as f64;
        let enough_bytes = c.bytes as f64 >= MIN_RECEIVED_SHARE * c.cluster.min_bytes as f64;
        if !(enough_packets && enough_bytes) {
            return None;
        }
        let result = c.estimate();
        if result.is_some() {
            // One result per cluster.
            self.clusters.remove(index);
        }
        result
    }
}

impl ClusterFeedback {
    fn estimate(&self) -> Option<u64> {
        let send_us = signed_micros(self.last_send?, self.first_send?);
        let receive_us = self.last_arrival_us - self.first_arrival_us;
        if !(1..=MAX_INTERVAL_US).contains(&send_us) || !(1..=MAX_INTERVAL_US).contains(&receive_us) {
            return None;
        }
        // The last packet sent took no send time, the first to arrive no
        // receive time.
        let send = rate_bps(self.bytes - self.last_send_size as u64, send_us)? as f64;
        let receive = rate_bps(self.bytes - self.first_arrival_size as u64, receive_us)? as f64;
        if receive > MAX_RECEIVE_RATIO * send {
            return None;
        }
        let result = if receive < SATURATION_RATIO * send {
            SATURATED_RESULT * receive
        } else {
            send.min(receive)
        };
        Some(result as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::PacketKind;

    #[test]
    fn a_cluster_through_a_bottleneck_measures_the_bottleneck() {
        let t0 = Instant::now();
        let cluster = ProbeCluster::new(7, 2_000_000);
        let mut e = ProbeEstimator::default();
        e.on_cluster(cluster);
        let mut got = None;
        // 1000-byte packets sent at 2 Mbit/s (every 4 ms), arriving at
        // 1 Mbit/s (every 8 ms).
        for i in 0..10 {
            let r = PacketResult {
                seq: i,
                send_time: t0 + Duration::from_millis(4 * i),
                size: 1000,
                kind: PacketKind::Padding,
                probe_cluster: Some(7),
                arrival_us: Some(50_000 + 8_000 * i as i64),
            };
            got = got.or(e.on_result(&r));
        }
        assert_eq!(got, Some((1_000_000.0 * SATURATED_RESULT) as u64));
    }

    #[test]
    fn wanting_more_probes_sooner_than_alr() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let rates = |p: &mut ProbeController| {
            std::iter::from_fn(|| p.poll_cluster())
                .map(|c| c.bitrate_bps)
                .collect::<Vec<_>>()
        };
        let mut p = ProbeController::new(10_000_000);
        // Neither: no probe.
        p.on_timeout(t0, false, false, 200_000);
        assert!(rates(&mut p).is_empty());
        // Wanting more: at once, then every WANTED_PROBE_INTERVAL, at twice the estimate.
        for s in [0, 1, 2, 3, 4] {
            p.on_timeout(at(s), false, true, 200_000);
        }
        assert_eq!(rates(&mut p), [400_000, 400_000, 400_000]);
        // In ALR only: every ALR_PROBE_INTERVAL.
        for s in 5..=14 {
            p.on_timeout(at(s), true, false, 1_000_000);
        }
        assert_eq!(rates(&mut p), [2_000_000, 2_000_000]);
    }

    #[test]
    fn initial_probes_are_three_and_six_times_the_start() {
        let mut p = ProbeController::new(10_000_000);
        p.start(Instant::now(), 300_000);
        assert_eq!(p.poll_cluster().map(|c| c.bitrate_bps), Some(900_000));
        assert_eq!(p.poll_cluster().map(|c| c.bitrate_bps), Some(1_800_000));
        assert_eq!(p.poll_cluster(), None);
    }
}
