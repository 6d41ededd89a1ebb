//! [`CongestionController`]: the send side's congestion control as one
//! sans-IO state machine, in the shape of libwebrtc's GoogCC
//! (draft-ietf-rmcat-gcc-02).
//!
//! The target is the lowest of the delay-based estimate (inter-arrival
//! groups, trendline, overuse detector, AIMD), the loss-based bound and
//! a REMB the peer sent (draft-alvestrand-rmcat-remb-03), within the
//! configured minimum and maximum. A peer that sends REMB and no
//! transport-wide feedback gets REMB's value as the target.

use std::time::{Duration, Instant};

use natter_rtp::rtcp::TransportFeedback;

use super::acknowledged::AcknowledgedBitrate;
use super::aimd::{AimdRateControl, BETA};
use super::alr::AlrDetector;
use super::history::{PacketKind, PacketResult, SendHistory, SentPacket};
use super::inter_arrival::InterArrival;
use super::loss_based::LossBasedController;
use super::overuse::BandwidthUsage;
use super::pacer::{PacedPacket, Pacer, QueuedPacket};
use super::probe::{ProbeController, ProbeEstimator, ProbeResult};
use super::retransmission::RetransmissionLimiter;
use super::trendline::Trendline;

/// How often ALR and the probes it calls for are looked at when nothing
/// else happens.
const PROCESS_INTERVAL: Duration = Duration::from_millis(100);

/// The bitrates the controller works within, bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CongestionConfig {
    /// The target before any feedback, and the base of the first probes.
    pub start_bps: u64,
    pub min_bps: u64,
    pub max_bps: u64,
    /// Send through the pacer (on by default): packets leave at
    /// [`PACING_FACTOR`](super::pacer::PACING_FACTOR) times the target
    /// (`start_bps` while no feedback comes), audio first, and probes'
    /// padding is sent (draft-ietf-rmcat-gcc-02 §4 assumes a paced
    /// sender). Off, packets leave at once (a frame as one burst) and
    /// probes send nothing.
    pub pace: bool,
}

impl Default for CongestionConfig {
    /// libwebrtc's start of 300 kbit/s, from 30 kbit/s to 10 Mbit/s.
    fn default() -> Self {
        CongestionConfig {
            start_bps: 300_000,
            min_bps: 30_000,
            max_bps: 10_000_000,
            pace: true,
        }
    }
}

/// What went wrong configuring the controller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CongestionError {
    #[error("congestion control bitrates must satisfy 0 < min ({min}) <= start ({start}) <= max ({max})")]
    Bitrates { min: u64, start: u64, max: u64 },
}

/// What the controller tells the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CongestionEvent {
    /// The target bitrate changed to this many bits per second.
    TargetBitrate(u64),
}

/// Send-side congestion control: the pacer, the send history and the
/// estimators.
///
/// Methods, in quinn-proto's taxonomy:
/// - input: [`push`](Self::push) (media to pace, by the caller's
///   handle), [`on_packet_sent`](Self::on_packet_sent) (each packet that
///   left with its transport-wide sequence number),
///   [`on_transport_feedback`](Self::on_transport_feedback),
///   [`on_remb`](Self::on_remb), [`on_rtt`](Self::on_rtt),
///   [`handle_timeout`](Self::handle_timeout);
/// - application: [`set_application_demand`](Self::set_application_demand),
///   [`allow_retransmission`](Self::allow_retransmission);
/// - output, in this order: [`poll_send`](Self::poll_send) until `None`,
///   [`poll_timeout`](Self::poll_timeout), [`poll_event`](Self::poll_event);
/// - getters: [`target_bitrate`](Self::target_bitrate) and the state
///   behind it.
#[derive(Debug)]
pub struct CongestionController<H> {
    config: CongestionConfig,
    history: SendHistory,
    /// Reused for each feedback's results.
    results: Vec<PacketResult>,
    inter_arrival: InterArrival,
    trendline: Trendline,
    aimd: AimdRateControl,
    acknowledged: AcknowledgedBitrate,
    loss: LossBasedController,
    alr: AlrDetector,
    probes: ProbeController,
    probe_estimator: ProbeEstimator,
    pacer: Pacer<H>,
    retransmissions: RetransmissionLimiter,
    rtt: Option<Duration>,
    remb_bps: Option<u64>,
    twcc_seen: bool,
    target_bps: u64,
    reported_bps: Option<u64>,
    last_process: Instant,
    was_in_alr: bool,
    /// When the last probe that met a queue gave its result: overuse of
    /// packets sent before is that probe's queue.
    probe_queue_until: Option<Instant>,
}

impl<H: Copy> CongestionController<H> {
    /// A controller starting at `now`; the initial probes are queued.
    pub fn new(config: CongestionConfig, now: Instant) -> Result<Self, CongestionError> {
        let CongestionConfig {
            start_bps,
            min_bps,
            max_bps,
            ..
        } = config;
        if min_bps == 0 || min_bps > start_bps || start_bps > max_bps {
            return Err(CongestionError::Bitrates {
                min: min_bps,
                start: start_bps,
                max: max_bps,
            });
        }
        let mut alr = AlrDetector::default();
        alr.set_target(start_bps);
        let mut controller = CongestionController {
            config,
            history: SendHistory::default(),
            results: Vec::new(),
            inter_arrival: InterArrival::default(),
            trendline: Trendline::default(),
            aimd: AimdRateControl::new(start_bps, min_bps, max_bps),
            acknowledged: AcknowledgedBitrate::default(),
            loss: LossBasedController::default(),
            alr,
            probes: ProbeController::new(max_bps),
            probe_estimator: ProbeEstimator::default(),
            pacer: Pacer::new(now, start_bps),
            retransmissions: RetransmissionLimiter::default(),
            rtt: None,
            remb_bps: None,
            twcc_seen: false,
            target_bps: start_bps,
            reported_bps: None,
            last_process: now,
            was_in_alr: false,
            probe_queue_until: None,
        };
        controller.probes.start(now, start_bps);
        controller.hand_probes_to_pacer();
        Ok(controller)
    }

    /// Queues a packet for the pacer.
    pub fn push(&mut self, now: Instant, packet: QueuedPacket<H>) {
        self.pacer.push(now, packet);
    }

    /// The next packet to send now, if the pacer lets one go. The caller
    /// sends it (writing padding for [`PacedPacket::Padding`]), then
    /// reports it with [`on_packet_sent`](Self::on_packet_sent).
    pub fn poll_send(&mut self, now: Instant) -> Option<PacedPacket<H>> {
        self.pacer.poll_send(now)
    }

    /// A packet left with a transport-wide sequence number.
    pub fn on_packet_sent(&mut self, now: Instant, packet: SentPacket) {
        self.history.on_packet_sent(now, packet);
        if packet.kind == PacketKind::Padding {
            self.pacer.on_padding_sent(packet.size);
        }
        if packet.kind.is_media() {
            self.alr.on_media_sent(now, packet.size);
            self.check_alr(now);
        }
    }

    /// Transport-wide CC feedback arrived
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
    pub fn on_transport_feedback(&mut self, now: Instant, feedback: &TransportFeedback<'_>) {
        let summary = self.history.on_feedback(feedback, &mut self.results);
        if summary.received + summary.lost == 0 {
            return;
        }
        self.twcc_seen = true;
        // The estimators take arrivals in the order they happened; lost
        // packets last.
        self.results
            .sort_unstable_by_key(|r| (r.arrival_us.is_none(), r.arrival_us, r.seq));
        let mut usage = self.trendline.state();
        let mut overused = false;
        let mut probed: Option<ProbeResult> = None;
        for result in &self.results {
            if let Some(r) = self.probe_estimator.on_result(result) {
                probed = Some(probed.filter(|p| p.bitrate_bps >= r.bitrate_bps).unwrap_or(r));
            }
        }
        if probed.is_some_and(|p| p.queued) && self.application_limited() {
            // Application-limited, a probe that met a queue made it:
            // what was sent before its result came waited in it, and
            // the result already says what the link carries. The delay
            // filter starts again. (A sender that fills its target
            // makes its own queue too, and that is congestion.)
            self.probe_queue_until = Some(now);
            self.inter_arrival = InterArrival::default();
            self.trendline = Trendline::default();
        }
        for result in &self.results {
            let Some(arrival_us) = result.arrival_us else { continue };
            self.acknowledged.on_packet(arrival_us, result.size);
            if self.probe_queue_until.is_some_and(|t| result.send_time < t) {
                continue;
            }
            if let Some(delta) = self.inter_arrival.on_packet(result.send_time, arrival_us) {
                usage = self.trendline.update(delta);
                overused |= usage == BandwidthUsage::Overusing;
            }
        }
        if overused {
            usage = BandwidthUsage::Overusing;
        }
        let acknowledged = self.acknowledged.bitrate_bps();
        let capacity_known = self.aimd.capacity_known();
        if probed.is_some() {
            self.probes.on_result();
        }
        let probe_sets = probed.and_then(|p| self.believe_probe(now, p, usage, acknowledged));
        match probe_sets {
            Some(bps) => {
                self.aimd.set_estimate(now, bps);
                self.loss.on_probe(bps);
            }
            None if usage == BandwidthUsage::Overusing => {
                self.aimd.set_held_back(self.alr.wants_more() && !self.alr.in_alr());
                if self.aimd.time_to_reduce_further(now, acknowledged) {
                    self.aimd.update(now, usage, acknowledged);
                }
            }
            None => {
                self.aimd.update(now, usage, acknowledged);
            }
        }
        self.loss
            .on_feedback(now, summary.lost, summary.received, usage, self.aimd.rate_bps());
        self.update_target(now);
        if capacity_known && !self.aimd.capacity_known() && usage == BandwidthUsage::Normal {
            self.probes.probe_above(now, self.target_bps);
        }
        self.probes.on_estimate(now, self.target_bps);
        self.hand_probes_to_pacer();
    }

    /// A REMB arrived (draft-alvestrand-rmcat-remb-03): the receiver's
    /// estimate, an upper bound on the target (the target itself while
    /// no transport-wide feedback came).
    pub fn on_remb(&mut self, now: Instant, bitrate_bps: u64) {
        self.remb_bps = Some(bitrate_bps);
        self.update_target(now);
    }

    /// The round-trip time measured (RTCP, RFC 3550 §6.4.1), which sets
    /// the AIMD controller's response time.
    pub fn on_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
        self.aimd.set_rtt(rtt);
    }

    /// Whether an RTX repair of `size` bytes may be sent at `now`: the
    /// repairs of the last second stay within the target
    /// ([`retransmission`](super::retransmission)). If so it is counted.
    pub fn allow_retransmission(&mut self, now: Instant, size: usize) -> bool {
        self.retransmissions.try_send(now, size, self.target_bps)
    }

    /// How much the application wants to send; `None` for as much as it
    /// may. Less than the target puts the controller in the
    /// application-limited region.
    pub fn set_application_demand(&mut self, now: Instant, demand_bps: Option<u64>) {
        if self.alr.demand_bps() != demand_bps {
            self.probes.reset_backoff();
        }
        self.alr.set_demand(demand_bps);
        self.check_alr(now);
    }

    /// Periodic work: ALR and the probes it calls for, and probes while
    /// the application wants more than the target. An SFU that forwards
    /// a subscriber lower layers than its tiles need, because the
    /// estimate affords no more, sends about the estimate: neither ALR
    /// nor the acknowledged rate would ever show that the path grew
    /// (libwebrtc probes towards the allocated maximum, LiveKit's
    /// StreamAllocator while a subscriber is deficient).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.last_process + PROCESS_INTERVAL {
            return;
        }
        self.last_process = now;
        self.alr.on_timeout(now);
        self.check_alr(now);
        let (in_alr, wants_more) = (self.alr.in_alr(), self.alr.wants_more());
        self.probes.on_timeout(now, in_alr, wants_more, self.target_bps);
        self.hand_probes_to_pacer();
    }

    /// The earliest time [`poll_send`](Self::poll_send) or
    /// [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let process = self.last_process + PROCESS_INTERVAL;
        Some(self.pacer.poll_timeout().map_or(process, |at| at.min(process)))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CongestionEvent> {
        if self.reported_bps == Some(self.target_bps) {
            return None;
        }
        self.reported_bps = Some(self.target_bps);
        Some(CongestionEvent::TargetBitrate(self.target_bps))
    }

    /// The bitrate the application should send at, bits per second.
    pub fn target_bitrate(&self) -> u64 {
        self.target_bps
    }

    /// The latest round-trip time measured, if any.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The rate the feedback says arrived, once known.
    pub fn acknowledged_bitrate(&self) -> Option<u64> {
        self.acknowledged.bitrate_bps()
    }

    /// The loss the link shows without congestion, as learned.
    pub fn inherent_loss(&self) -> f64 {
        self.loss.inherent_loss()
    }

    /// The latest REMB the peer sent, bits per second.
    pub fn remb_bitrate(&self) -> Option<u64> {
        self.remb_bps
    }

    /// Whether the application sends less than the target lets it.
    pub fn in_alr(&self) -> bool {
        self.alr.in_alr()
    }

    /// Packets and bytes waiting in the pacer.
    pub fn queued(&self) -> (usize, usize) {
        self.pacer.queued()
    }

    fn update_target(&mut self, now: Instant) {
        let delay_and_loss = self
            .loss
            .bound_bps()
            .map_or(self.aimd.rate_bps(), |b| b.min(self.aimd.rate_bps()));
        let estimate = match self.remb_bps {
            Some(remb) if !self.twcc_seen => remb,
            Some(remb) => delay_and_loss.min(remb),
            None => delay_and_loss,
        };
        self.target_bps = estimate.clamp(self.config.min_bps, self.config.max_bps);
        self.pacer.set_target(now, self.target_bps);
        self.alr.set_target(self.target_bps);
    }

    /// On leaving ALR: the acknowledged rate starts again (it measured
    /// the application, not the path) and a probe looks above the
    /// estimate.
    fn check_alr(&mut self, now: Instant) {
        let in_alr = self.alr.in_alr();
        if self.was_in_alr && !in_alr {
            self.acknowledged.reset();
            self.probes.probe_above(now, self.target_bps);
            self.hand_probes_to_pacer();
        }
        self.was_in_alr = in_alr;
    }

    /// Whether the application sends less than the target, or said it
    /// wants more than the target (a forwarder sends the layers the
    /// target affords): probes are then the only traffic that can show
    /// what the path carries.
    fn application_limited(&self) -> bool {
        self.alr.in_alr() || self.alr.wants_more()
    }

    /// The rate a probe's result sets the estimate to, if any; tells
    /// the probe controller whether it found more than the estimate.
    ///
    /// A cluster that met no queue may have been a token bucket's burst
    /// ([`probe`](super::probe)): before it raises the estimate, a
    /// larger one at its rate must meet no queue either. One that met a
    /// queue measured the bottleneck: application-limited, a result
    /// below the estimate lowers it, though not below
    /// [`BETA`](super::aimd::BETA) times what was acknowledged
    /// (libwebrtc's limit on probes lower than the throughput: the path
    /// carried that much).
    fn believe_probe(
        &mut self,
        now: Instant,
        probe: ProbeResult,
        usage: BandwidthUsage,
        acknowledged: Option<u64>,
    ) -> Option<u64> {
        if probe.queued && probe.cluster.confirming && probe.bitrate_bps < probe.cluster.bitrate_bps / 2 {
            // The smaller cluster passed at this rate, the larger one
            // found the link at less than half of it: a bucket.
            self.probes.on_bucket_found(probe.cluster);
        }
        let estimate = self.aimd.rate_bps();
        if usage == BandwidthUsage::Overusing {
            self.probes.on_probe_outcome(false);
            return None;
        }
        if !self.application_limited() {
            // What the sender sends shows a bucket's rate soon enough.
            let raised = probe.whole_cluster_bps > estimate;
            self.probes.on_probe_outcome(raised);
            return raised.then_some(probe.whole_cluster_bps);
        }
        if probe.bitrate_bps <= estimate {
            self.probes.on_probe_outcome(false);
            let floor = acknowledged.map_or(estimate, |a| estimate.min((BETA * a as f64) as u64));
            return probe.queued.then_some(probe.bitrate_bps.max(floor));
        }
        if probe.queued || probe.cluster.confirming {
            self.probes.on_probe_outcome(true);
            return Some(probe.bitrate_bps);
        }
        self.probes.confirm(now, probe.cluster);
        None
    }

    fn hand_probes_to_pacer(&mut self) {
        while let Some(cluster) = self.probes.poll_cluster() {
            self.probe_estimator.on_cluster(cluster);
            self.pacer.add_probe(cluster);
        }
    }
}

#[cfg(test)]
mod tests {
    use natter_rtp::rtcp::{Compound, RtcpEncode, RtcpPacket, TransportFeedbackBuilder};

    use super::*;
    use crate::congestion::{PacketKind, QueuedPacket};

    #[test]
    fn refuses_bitrates_out_of_order() {
        let config = CongestionConfig {
            start_bps: 10_000,
            min_bps: 20_000,
            max_bps: 30_000,
            pace: false,
        };
        assert!(CongestionController::<u32>::new(config, Instant::now()).is_err());
    }

    #[test]
    fn remb_alone_sets_the_target_within_the_bounds() {
        let now = Instant::now();
        let mut cc = CongestionController::<u32>::new(CongestionConfig::default(), now).unwrap();
        assert_eq!(cc.poll_event(), Some(CongestionEvent::TargetBitrate(300_000)));
        assert_eq!(cc.poll_event(), None);
        cc.on_remb(now, 1_200_000);
        assert_eq!(cc.poll_event(), Some(CongestionEvent::TargetBitrate(1_200_000)));
        cc.on_remb(now, 1_000);
        assert_eq!(cc.target_bitrate(), CongestionConfig::default().min_bps);
    }

    /// Packets paced out, all reported as arriving as they were sent:
    /// the target grows, and an event says so.
    #[test]
    fn feedback_without_queuing_raises_the_target() {
        let t0 = Instant::now();
        let mut cc = CongestionController::<u32>::new(CongestionConfig::default(), t0).unwrap();
        cc.poll_event();
        let mut now = t0;
        let mut seq = 0u16;
        let mut received: Vec<(u16, i64)> = Vec::new();
        let mut raised = None;
        let mut next_feedback = t0;
        while now < t0 + Duration::from_secs(3) {
            cc.push(
                now,
                QueuedPacket {
                    handle: 0,
                    size: 1000,
                    kind: PacketKind::Video,
                },
            );
            cc.handle_timeout(now);
            while let Some(paced) = cc.poll_send(now) {
                cc.on_packet_sent(now, paced.sent(seq));
                received.push((seq, (now - t0).as_micros() as i64 + 20_000));
                seq = seq.wrapping_add(1);
            }
            if now >= next_feedback && !received.is_empty() {
                next_feedback = now + Duration::from_millis(100);
                let builder = TransportFeedbackBuilder {
                    sender_ssrc: 1,
                    media_ssrc: 2,
                    fb_pkt_count: 0,
                    base_seq: None,
                    received: &received,
                };
                let mut bytes = vec![0; builder.encoded_len()];
                builder.encode(&mut bytes).unwrap();
                for packet in Compound::parse(&bytes).unwrap().packets() {
                    if let Ok(RtcpPacket::TransportFeedback(feedback)) = packet {
                        cc.on_transport_feedback(now, &feedback);
                    }
                }
                received.clear();
                if let Some(CongestionEvent::TargetBitrate(bps)) = cc.poll_event() {
                    raised = Some(bps);
                }
            }
            now += Duration::from_millis(4);
        }
        let raised = raised.expect("no target event");
        assert!(raised > 300_000, "target {raised}");
        assert_eq!(raised, cc.target_bitrate());
    }
}
