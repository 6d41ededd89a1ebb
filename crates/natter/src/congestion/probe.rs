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
//!
//! What differs from libwebrtc: a token bucket (Linux's `tbf`, most
//! traffic shapers) lets a burst through at the sender's speed, so a
//! cluster smaller than the bucket arrives as it was sent and measures
//! its own rate, not the link's. A [`ProbeResult`] therefore also says
//! whether the cluster met a queue (some packets' one-way delay grew
//! 2 ms past the cluster's least), and then its rate is that of
//! the packets that met it, the rate the bottleneck served them at.
//! While the application is limited (an SFU's subscriber leg, where
//! probes are the only traffic above what it sends), the controller
//! believes a cluster that met no queue only once a cluster of
//! [`CONFIRM_FACTOR`] times its packets at the same rate met none
//! either; if that one found the link at under half the rate, a bucket
//! was found, and later clusters keep its size. A sender that fills
//! its target keeps libwebrtc's reading: its own traffic soon empties
//! a bucket.

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
/// Each such probe that finds no more than the estimate doubles the
/// interval up to this. A sender that fills most of an estimate at
/// the link's capacity has little room left for probes: every cluster
/// above the capacity stands in the bottleneck's queue until the spare
/// capacity drains it, so a probe every 2 s kept a standing queue
/// (libwebrtc probes then only once per change of the application's
/// maximum; LiveKit's allocator backs off its probes the same way).
pub const MAX_WANTED_PROBE_INTERVAL: Duration = Duration::from_secs(8);
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
/// A packet whose one-way delay exceeds the cluster's least by more
/// than this met a queue at the bottleneck, µs.
const QUEUED_US: i64 = 2_000;
/// A confirming cluster has this many times the packets of the one it
/// confirms...
pub const CONFIRM_FACTOR: usize = 4;
/// ...and clusters never have more than this many: 24 kB of full-size
/// padding, past a bucket of 10 kB at twice its rate, and under a
/// second at 200 kbit/s, beyond which a result is no probe
/// ([`MAX_INTERVAL_US`]). A confirming cluster's confirming cluster
/// (80 packets, 1.3 s at 600 kbit/s) gave no result and filled a
/// 300 kbit/s link's queue for seconds.
const MAX_PACKETS: usize = CONFIRM_FACTOR * MIN_PACKETS;

/// One probe: send at `bitrate_bps` for at least `min_packets` packets
/// and `min_bytes` bytes. `confirming`: it repeats, larger, a cluster
/// that met no queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCluster {
    pub id: u32,
    pub bitrate_bps: u64,
    pub min_packets: usize,
    pub min_bytes: usize,
    pub confirming: bool,
}

impl ProbeCluster {
    fn new(id: u32, bitrate_bps: u64, min_packets: usize) -> ProbeCluster {
        let min_bytes = (bitrate_bps as f64 / 8.0 * MIN_DURATION.as_secs_f64()) as usize;
        ProbeCluster {
            id,
            bitrate_bps,
            min_packets,
            min_bytes,
            confirming: false,
        }
    }
}

/// What a cluster's feedback says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub cluster: ProbeCluster,
    pub bitrate_bps: u64,
    /// Whether some of its packets met a queue at the bottleneck: the
    /// result is then the bottleneck's rate, not a burst it let pass.
    pub queued: bool,
    /// libwebrtc's result, from every packet that arrived.
    pub whole_cluster_bps: u64,
}

/// Decides when to probe and at which rate.
#[derive(Debug)]
pub struct ProbeController {
    max_bps: u64,
    /// The packets of a cluster: [`MIN_PACKETS`], or what a confirming
    /// cluster needed to meet a queue.
    packets: usize,
    next_id: u32,
    pending: VecDeque<ProbeCluster>,
    /// While exponential probing goes on: the result that justifies the
    /// next probe, and when the last one was asked for.
    waiting: Option<(u64, Instant)>,
    started: bool,
    last_alr_probe: Option<Instant>,
    /// The interval between probes while the application wants more:
    /// [`WANTED_PROBE_INTERVAL`], backed off up to
    /// [`MAX_WANTED_PROBE_INTERVAL`].
    wanted_interval: Duration,
    /// When the last cluster was asked for, until a result comes: no
    /// other starts meanwhile (but a confirming one), for
    /// [`RESULT_TIMEOUT`] at most. Clusters asked for at once for
    /// several reasons (the application left ALR, wanted more, the
    /// estimate grew) added up to seconds of padding at twice the link.
    in_flight: Option<Instant>,
}

impl ProbeController {
    pub fn new(max_bps: u64) -> ProbeController {
        ProbeController {
            max_bps,
            packets: MIN_PACKETS,
            next_id: 1,
            pending: VecDeque::with_capacity(4),
            waiting: None,
            started: false,
            last_alr_probe: None,
            wanted_interval: WANTED_PROBE_INTERVAL,
            in_flight: None,
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
        } else if estimate_bps > threshold && !self.busy(now) {
            self.probe(now, estimate_bps.saturating_mul(2));
        }
    }

    /// Probes at twice the estimate: the application left ALR, or the
    /// link's capacity seems to have grown.
    /// Nothing while a cluster waits for its result.
    pub fn probe_above(&mut self, now: Instant, estimate_bps: u64) {
        if !self.busy(now) {
            self.probe(now, estimate_bps.saturating_mul(2));
        }
    }

    /// A cluster's result came: another may start.
    pub fn on_result(&mut self) {
        self.in_flight = None;
    }

    fn busy(&self, now: Instant) -> bool {
        self.in_flight
            .is_some_and(|asked| now.saturating_duration_since(asked) <= RESULT_TIMEOUT)
    }

    /// Periodic work: probes every [`ALR_PROBE_INTERVAL`] in ALR, every
    /// [`WANTED_PROBE_INTERVAL`] (backed off) while the application
    /// wants more than the estimate.
    pub fn on_timeout(&mut self, now: Instant, in_alr: bool, wants_more: bool, estimate_bps: u64) {
        let since = self.last_alr_probe.map(|last| now.saturating_duration_since(last));
        let due = (wants_more && since.is_none_or(|d| d >= self.wanted_interval))
            || (in_alr && since.is_none_or(|d| d >= ALR_PROBE_INTERVAL));
        if due && !self.busy(now) {
            self.last_alr_probe = Some(now);
            self.probe_above(now, estimate_bps);
        }
    }

    /// A probe's result raised the estimate (`true`): probing while
    /// the application wants more goes back to every
    /// [`WANTED_PROBE_INTERVAL`]. It found no more (`false`): the next
    /// waits twice as long, up to [`MAX_WANTED_PROBE_INTERVAL`].
    pub fn on_probe_outcome(&mut self, raised: bool) {
        self.wanted_interval = if raised {
            WANTED_PROBE_INTERVAL
        } else {
            (2 * self.wanted_interval).min(MAX_WANTED_PROBE_INTERVAL)
        };
    }

    /// The application's demand changed: what it wants may fit now.
    pub fn reset_backoff(&mut self) {
        self.wanted_interval = WANTED_PROBE_INTERVAL;
    }

    /// `cluster` met no queue and would raise the estimate: probes
    /// again at its rate with [`CONFIRM_FACTOR`] times its packets.
    pub fn confirm(&mut self, now: Instant, cluster: ProbeCluster) {
        let packets = (cluster.min_packets * CONFIRM_FACTOR).min(MAX_PACKETS);
        if let Some(confirming) = self.probe_with(now, cluster.bitrate_bps, packets) {
            confirming.confirming = true;
        }
    }

    /// A confirming cluster met a queue: the path holds a bucket that
    /// a cluster of its size can see past, so later clusters are as
    /// large.
    pub fn on_bucket_found(&mut self, cluster: ProbeCluster) {
        self.packets = self.packets.max(cluster.min_packets);
    }

    /// The next cluster to send.
    pub fn poll_cluster(&mut self) -> Option<ProbeCluster> {
        self.pending.pop_front()
    }

    fn probe(&mut self, now: Instant, bitrate_bps: u64) {
        self.probe_with(now, bitrate_bps, self.packets);
    }

    fn probe_with(&mut self, now: Instant, bitrate_bps: u64, packets: usize) -> Option<&mut ProbeCluster> {
        let bitrate_bps = bitrate_bps.min(self.max_bps);
        if bitrate_bps == 0 || self.pending.len() >= MAX_CLUSTERS {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.in_flight = Some(now);
        self.waiting = (bitrate_bps < self.max_bps).then_some(((bitrate_bps as f64 * FURTHER_PROBE_RATIO) as u64, now));
        self.pending.push_back(ProbeCluster::new(id, bitrate_bps, packets));
        self.pending.back_mut()
    }
}

/// What arrived of one cluster so far.
#[derive(Clone, Copy, Debug)]
struct ClusterFeedback {
    cluster: ProbeCluster,
    /// Packets reported, received or lost.
    reported: usize,
    packets: usize,
    bytes: u64,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    last_send_size: usize,
    first_arrival_us: i64,
    last_arrival_us: i64,
    first_arrival_size: usize,
    /// One-way delay is measured from the first packet's send time.
    reference: Option<Instant>,
    /// The least one-way delay seen, µs (plus an unknown clock offset).
    least_delay_us: i64,
    /// The arrival before the first packet that met a queue and that
    /// packet's, its size, and the bytes that arrived after it.
    queued_from_us: Option<(i64, i64)>,
    first_queued_size: u64,
    queued_bytes: u64,
    /// The latest arrival, in the order packets are handed in.
    previous_arrival_us: i64,
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
            reported: 0,
            packets: 0,
            bytes: 0,
            first_send: None,
            last_send: None,
            last_send_size: 0,
            first_arrival_us: i64::MAX,
            last_arrival_us: i64::MIN,
            first_arrival_size: 0,
            reference: None,
            least_delay_us: i64::MAX,
            queued_from_us: None,
            first_queued_size: 0,
            queued_bytes: 0,
            previous_arrival_us: i64::MIN,
        });
    }

    /// A packet's result (received or lost), handed in by arrival
    /// time; what its cluster says once enough of its packets arrived
    /// (all reported, for a cluster larger than the least).
    pub fn on_result(&mut self, result: &PacketResult) -> Option<ProbeResult> {
        let id = result.probe_cluster?;
        let index = self.clusters.iter().position(|c| c.cluster.id == id)?;
        let c = &mut self.clusters[index];
        c.reported += 1;
        if let Some(arrival) = result.arrival_us {
            c.on_arrival(result, arrival);
        }
        // A cluster larger than the least is there to see past a
        // bucket: its last packets matter most.
        if c.cluster.min_packets > MIN_PACKETS && c.reported < c.cluster.min_packets {
            return None;
        }
        let enough_packets = c.packets as f64 >= MIN_RECEIVED_SHARE * c.cluster.min_packets as f64;
        let enough_bytes = c.bytes as f64 >= MIN_RECEIVED_SHARE * c.cluster.min_bytes as f64;
        let result = (enough_packets && enough_bytes).then(|| c.estimate()).flatten();
        if result.is_some() {
            // One result per cluster.
            self.clusters.remove(index);
        }
        result
    }
}

impl ClusterFeedback {
    fn on_arrival(&mut self, result: &PacketResult, arrival: i64) {
        self.packets += 1;
        self.bytes += result.size as u64;
        if self.first_send.is_none_or(|t| result.send_time < t) {
            self.first_send = Some(result.send_time);
        }
        if self.last_send.is_none_or(|t| result.send_time >= t) {
            self.last_send = Some(result.send_time);
            self.last_send_size = result.size;
        }
        if arrival < self.first_arrival_us {
            self.first_arrival_us = arrival;
            self.first_arrival_size = result.size;
        }
        self.last_arrival_us = self.last_arrival_us.max(arrival);
        let reference = *self.reference.get_or_insert(result.send_time);
        let delay = arrival - signed_micros(result.send_time, reference);
        self.least_delay_us = self.least_delay_us.min(delay);
        match self.queued_from_us {
            Some(_) => self.queued_bytes += result.size as u64,
            None if delay > self.least_delay_us + QUEUED_US && self.previous_arrival_us > i64::MIN => {
                self.queued_from_us = Some((self.previous_arrival_us, arrival));
                self.first_queued_size = result.size as u64;
            }
            None => {}
        }
        self.previous_arrival_us = self.previous_arrival_us.max(arrival);
    }

    fn estimate(&self) -> Option<ProbeResult> {
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
        // What met a queue left the bottleneck at its rate; what came
        // before may have passed a token bucket's burst at ours. As for
        // the whole cluster, the first queued packet's size is left out
        // when others came after it.
        let queued = self
            .queued_from_us
            .and_then(|(_, first)| rate_bps(self.queued_bytes, self.last_arrival_us - first));
        let result = |receive: f64| {
            let bps = if receive < SATURATION_RATIO * send {
                SATURATED_RESULT * receive
            } else {
                send.min(receive)
            };
            bps as u64
        };
        Some(ProbeResult {
            cluster: self.cluster,
            bitrate_bps: result(queued.map_or(receive, |q| receive.min(q as f64))),
            queued: queued.is_some(),
            whole_cluster_bps: result(receive),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::PacketKind;

    #[test]
    fn a_cluster_through_a_bottleneck_measures_the_bottleneck() {
        let t0 = Instant::now();
        // 1000-byte packets sent at 2 Mbit/s (every 4 ms), arriving at
        // 1 Mbit/s (every 8 ms).
        let got = cluster_result(t0, |i| 8_000 * i);
        assert_eq!(
            got.map(|r| r.bitrate_bps),
            Some((1_000_000.0 * SATURATED_RESULT) as u64)
        );
        assert!(got.unwrap().queued);
    }

    /// The result of a cluster of five 1000-byte packets sent at
    /// 2 Mbit/s (every 4 ms), packet `i` arriving `arrival(i)` µs after
    /// the first.
    fn cluster_result(t0: Instant, arrival: impl Fn(i64) -> i64) -> Option<ProbeResult> {
        let cluster = ProbeCluster::new(7, 2_000_000, MIN_PACKETS);
        let mut e = ProbeEstimator::default();
        e.on_cluster(cluster);
        let mut got = None;
        for i in 0..MIN_PACKETS as u64 {
            let r = PacketResult {
                seq: i,
                send_time: t0 + Duration::from_millis(4 * i),
                size: 1000,
                kind: PacketKind::Padding,
                probe_cluster: Some(7),
                arrival_us: Some(50_000 + arrival(i as i64)),
            };
            got = got.or(e.on_result(&r));
        }
        got
    }

    /// A token bucket of 2500 bytes at 300 kbit/s passes the first two
    /// packets as they were sent; the third waits 13.3 ms for the
    /// tokens it lacks, the next 26.7 ms each. Over the whole cluster
    /// the receive rate would be 1.5 Mbit/s (4000 bytes in 21 ms); what
    /// met the queue arrived at the link's rate.
    #[test]
    fn a_cluster_through_a_token_bucket_measures_its_rate_not_its_burst() {
        let got = cluster_result(Instant::now(), |i| match i {
            0 | 1 => 4_000 * i,
            _ => 17_333 + 26_667 * (i - 2),
        });
        let got = got.expect("a result");
        assert!(got.queued);
        // 2000 bytes from the third arrival (17.3 ms) to the last (70.7 ms).
        assert_eq!(got.bitrate_bps, (SATURATED_RESULT * 299_996.0) as u64);
    }

    /// Arriving as sent, a cluster meets no queue: its rate is a lower
    /// bound of the link's, or a burst a bucket let through.
    #[test]
    fn a_cluster_that_met_no_queue_says_so() {
        let got = cluster_result(Instant::now(), |i| 4_000 * i).expect("a result");
        assert!(!got.queued);
        assert_eq!(got.bitrate_bps, 2_000_000);
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

    /// Probes that find no more than the estimate while the application
    /// wants more come less often, up to MAX_WANTED_PROBE_INTERVAL; one
    /// that raised the estimate brings them back to every
    /// WANTED_PROBE_INTERVAL.
    #[test]
    fn wanted_probes_back_off_while_they_find_nothing_more() {
        let t0 = Instant::now();
        let mut p = ProbeController::new(10_000_000);
        let mut probed_at = Vec::new();
        let mut run = |p: &mut ProbeController, from_s: u64, to_s: u64, raised: bool| {
            for ms in (1000 * from_s..=1000 * to_s).step_by(100) {
                p.on_timeout(t0 + Duration::from_millis(ms), false, true, 1_000_000);
                if p.poll_cluster().is_some() {
                    probed_at.push(ms / 1000);
                    p.on_probe_outcome(raised);
                }
            }
        };
        run(&mut p, 0, 30, false);
        run(&mut p, 31, 40, true);
        assert_eq!(probed_at, [0, 4, 12, 20, 28, 36, 38, 40]);
        p.reset_backoff();
        assert_eq!(p.wanted_interval, WANTED_PROBE_INTERVAL);
    }

    #[test]
    fn initial_probes_are_three_and_six_times_the_start() {
        let mut p = ProbeController::new(10_000_000);
        p.start(Instant::now(), 300_000);
        assert_eq!(p.poll_cluster().map(|c| c.bitrate_bps), Some(900_000));
        assert_eq!(p.poll_cluster().map(|c| c.bitrate_bps), Some(1_800_000));
        assert_eq!(p.poll_cluster(), None);
    }

    /// A confirming cluster has four times the packets; once one met a
    /// queue, every later cluster is as large.
    #[test]
    fn a_bucket_found_makes_clusters_larger() {
        let now = Instant::now();
        let mut p = ProbeController::new(10_000_000);
        p.probe_above(now, 300_000);
        let first = p.poll_cluster().unwrap();
        assert_eq!((first.min_packets, first.confirming), (MIN_PACKETS, false));
        p.confirm(now, first);
        let confirming = p.poll_cluster().unwrap();
        assert_eq!(confirming.bitrate_bps, first.bitrate_bps);
        assert_eq!((confirming.min_packets, confirming.confirming), (4 * MIN_PACKETS, true));
        p.on_bucket_found(confirming);
        // Nothing more starts until a result came.
        p.probe_above(now, 300_000);
        assert_eq!(p.poll_cluster(), None);
        p.on_result();
        p.probe_above(now, 300_000);
        assert_eq!(p.poll_cluster().map(|c| c.min_packets), Some(4 * MIN_PACKETS));
    }
}
