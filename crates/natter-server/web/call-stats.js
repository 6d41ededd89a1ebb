// The call's statistics, sampled every STATS_EVERY_MS: each tile's
// connection quality and who is speaking (stats.js reads them out of
// getStats), from each mesh connection or from the one SFU connection;
// in an SFU room, new tiles' videos are watched for `tile` reports.

import { SFU_PEER } from './sfu.js';
import { SPEAKING_LEVEL, counters, delta, quality } from './stats.js';
import { updateTile } from './ui.js';

/** How often the tiles' quality and speaking indicators refresh. */
const STATS_EVERY_MS = 500;
/** A participant stays highlighted this long after the last loud sample. */
const SPEAKING_HOLD_MS = 900;

export function startStats(call) {
  stopStats(call);
  const tick = async () => {
    try {
      await sampleStats(call);
    } catch (e) {
      console.warn('natter: getStats failed', e);
    }
    if (call.statsTimer !== null) call.statsTimer = setTimeout(tick, STATS_EVERY_MS);
  };
  call.statsTimer = setTimeout(tick, STATS_EVERY_MS);
}

export function stopStats(call) {
  if (call.statsTimer !== null) clearTimeout(call.statsTimer);
  call.statsTimer = null;
}

async function sampleStats(call) {
  const now = performance.now();
  let selfLevel = 0;
  let selfSampled = false;
  if (call.sfu) {
    selfLevel = await sampleSfuStats(call, now);
    selfSampled = true;
  }
  for (const peer of [...call.peers.values()]) {
    if (!peer.pc) continue;
    if (peer.pc.connectionState === 'closed') continue;
    const report = await peer.pc.getStats();
    const d = sampleQuality(peer, report, [peer.id], '');
    if (d.level > SPEAKING_LEVEL) call.loud.set(peer.id, now);
    if (!selfSampled) {
      // Our own microphone, as the sender to this peer measures it.
      const s = counters(report, 'media-source');
      const prev = call.selfCounters?.peer === peer.id ? call.selfCounters.counters : null;
      selfLevel = delta(prev, s).level;
      call.selfCounters = { peer: peer.id, counters: s };
      selfSampled = true;
    }
  }
  if (call.audioOn && selfLevel > SPEAKING_LEVEL) call.loud.set('self', now);
  for (const key of ['self', ...call.peers.keys()]) {
    updateTile(key, { speaking: now - (call.loud.get(key) ?? -Infinity) < SPEAKING_HOLD_MS });
  }
}

/**
 * Shows the quality of the connection whose stats are `report` on the
 * tiles of `ids`, and returns the change since `holder`'s last sample.
 */
function sampleQuality(holder, report, ids, via) {
  const c = counters(report);
  const d = delta(holder.lastCounters, c);
  holder.lastCounters = c;
  const q = quality(c.rtt, d.loss);
  const rtt = c.rtt === undefined ? 'unknown' : `${Math.round(c.rtt * 1000)} ms`;
  for (const id of ids) updateTile(id, { quality: q, qualityText: `connection ${q}${via}: round trip ${rtt}, loss ${(d.loss * 100).toFixed(1)}%` });
  return d;
}

/** The SFU connection's quality (shown on every tile), who is loud, and our own level. */
async function sampleSfuStats(call, now) {
  const sfu = call.sfu;
  sfu.watchTiles(document);
  const report = await sfu.pc.getStats();
  sampleQuality(sfu, report, call.peers.keys(), ' (through the server)');
  for (const [id, level] of sfu.audioLevels(report)) if (level > SPEAKING_LEVEL) call.loud.set(id, now);
  const s = counters(report, 'media-source');
  const level = delta(call.selfCounters?.peer === SFU_PEER ? call.selfCounters.counters : null, s).level;
  call.selfCounters = { peer: SFU_PEER, counters: s };
  return level;
}
