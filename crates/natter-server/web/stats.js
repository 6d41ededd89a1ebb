// What the call screen shows from getStats(): connection quality of each
// peer (round-trip time of the selected candidate pair and packet loss of
// what we receive) and how loud each participant is (audio energy over
// the last interval, which does not miss short sounds the way sampling
// the instantaneous audioLevel does).

/** Thresholds of the quality indicator: round-trip time (s) and loss ratio. */
const GOOD = { rtt: 0.15, loss: 0.02 };
const FAIR = { rtt: 0.4, loss: 0.08 };
/** RMS audio level (0..1) above which a participant counts as speaking. */
export const SPEAKING_LEVEL = 0.02;

/** The selected candidate pair of a stats report, with its two candidates. */
export function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return null;
  return { pair, local: report.get(pair.localCandidateId), remote: report.get(pair.remoteCandidateId) };
}

/**
 * Counters of one report that the next sample is compared with.
 * @param {RTCStatsReport} report
 * @param {'inbound-rtp' | 'media-source'} audioFrom where to read audio energy
 */
export function counters(report, audioFrom = 'inbound-rtp') {
  const selected = selectedPair(report);
  const c = {
    rtt: selected ? selected.pair.currentRoundTripTime : undefined,
    localType: selected?.local?.candidateType,
    remoteType: selected?.remote?.candidateType,
    lost: 0,
    received: 0,
    energy: 0,
    duration: 0,
  };
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      c.lost += Math.max(0, s.packetsLost || 0);
      c.received += s.packetsReceived || 0;
    }
    if (s.type === audioFrom && s.kind === 'audio') {
      c.energy += s.totalAudioEnergy || 0;
      c.duration += s.totalSamplesDuration || 0;
    }
  });
  return c;
}

/** Loss ratio and RMS audio level between two samples of `counters`. */
export function delta(prev, now) {
  if (!prev) return { loss: 0, level: 0 };
  const lost = now.lost - prev.lost;
  const received = now.received - prev.received;
  const loss = lost > 0 && lost + received > 0 ? lost / (lost + received) : 0;
  const duration = now.duration - prev.duration;
  const energy = now.energy - prev.energy;
  const level = duration > 0 && energy > 0 ? Math.sqrt(energy / duration) : 0;
  return { loss, level };
}

/** good, fair, poor, or unknown while there is no selected pair yet. */
export function quality(rtt, loss) {
  if (rtt === undefined || rtt === null) return 'unknown';
  if (rtt <= GOOD.rtt && loss <= GOOD.loss) return 'good';
  if (rtt <= FAIR.rtt && loss <= FAIR.loss) return 'fair';
  return 'poor';
}
