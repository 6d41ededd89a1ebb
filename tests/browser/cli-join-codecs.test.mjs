// Issue 14: `natter join --video` publishes VP9 and AV1 IVF files and an
// H.264 Annex B stream, not only VP8. ffmpeg makes each (2 s, 320x180,
// 30 fps, a keyframe a second); natter join publishes it into a mesh
// room where a Chromium page on the web client decodes it: the page's
// framesDecoded grows and its decoder's codec (inbound-rtp codecId ->
// mimeType) is the file's. VP9 and AV1 play `--once`: natter join says
// `media-ended`, and the page's framesReceived then stops growing at no
// more than the file's 60 frames. H.264 plays looped: the page decodes
// past the file's 60 frames, so each loop restarts at the IDR (with its
// SPS and PPS) and the RTP timestamps go on. A page whose offer has no
// H.264 gets a `media-failed` event from natter join, which carries on.
//
// Passed 3 runs in a row here, 29-33 s each (ffmpeg's encodes included).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS, NATTER_BIN, join, launchBrowser, openParticipant, startNatter, startServer, until } from './harness.mjs';

const FRAMES = 60;
/** How long framesReceived must stay put after `media-ended`. */
const QUIET_MS = 2000;

/** ffmpeg's test pattern, 2 s of 320x180 at 30 fps, in `codec`'s file. */
function makeFile(name, encoder) {
  const file = path.join(ARTIFACTS, name);
  const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=30', '-t', '2', '-pix_fmt', 'yuv420p', '-g', '30', ...encoder, file];
  try {
    execFileSync('ffmpeg', args);
  } catch (e) {
    throw new Error(`ffmpeg could not make ${name} (scripts/setup installs Debian's ffmpeg): ${e.message}`);
  }
  return file;
}

/** `serve` options for mesh rooms: `--mesh` where the SFU is the default. */
function meshArgs() {
  const help = execFileSync(NATTER_BIN, ['serve', '--help'], { encoding: 'utf8' });
  return /^\s+--mesh\b/m.test(help) ? ['--mesh'] : [];
}

/** The page's inbound video from `from`: frames received and decoded, and the decoder's codec. */
function inbound(p, from) {
  return p.page.evaluate(async (id) => {
    const pc = window.natter.peers.get(id)?.pc;
    if (!pc) return null;
    const report = await pc.getStats();
    let out = null;
    report.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video' && (r.framesReceived || 0) > 0) {
        out = { framesReceived: r.framesReceived, framesDecoded: r.framesDecoded || 0, mimeType: report.get(r.codecId)?.mimeType ?? null };
      }
    });
    return out;
  }, from);
}

/** A page script: video transceivers offer and accept every codec but `mime`. */
function refuse(mime) {
  return `(() => {
    const refuse = (pc) => {
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => c.mimeType.toLowerCase() !== '${mime}');
      for (const t of pc.getTransceivers()) {
        if (!t.stopped && t.receiver.track.kind === 'video') t.setCodecPreferences(codecs);
      }
    };
    for (const name of ['createOffer', 'createAnswer', 'setLocalDescription']) {
      const original = RTCPeerConnection.prototype[name];
      RTCPeerConnection.prototype[name] = function (...args) {
        refuse(this);
        return original.apply(this, args);
      };
    }
  })();`;
}

const ctx = {};
before(async () => {
  ctx.files = {
    vp9: makeFile('cli-join-codecs.vp9.ivf', ['-c:v', 'libvpx-vp9', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8']),
    av1: makeFile('cli-join-codecs.av1.ivf', ['-c:v', 'libaom-av1', '-b:v', '300k', '-usage', 'realtime', '-cpu-used', '8']),
    h264: makeFile('cli-join-codecs.h264', ['-c:v', 'libx264', '-profile:v', 'baseline', '-bf', '0', '-b:v', '300k', '-f', 'h264']),
  };
  ctx.browser = await launchBrowser();
  ctx.server = await startServer({ name: 'cli-join-codecs', args: meshArgs() });
});
after(async () => {
  for (const cli of ctx.clis ?? []) cli.kill();
  await ctx.browser?.close();
  if (ctx.server) await ctx.server.stopCleanly();
});

/**
 * natter join publishing `file` with `args` and a page in `room`, both
 * connected: the page first (natter join offers), or with `pageOffers`
 * natter join first (the page, joining later, offers).
 */
async function publish(room, file, args, { init, pageOffers = false } = {}) {
  const openPage = async () => {
    const page = await openParticipant(ctx.browser, ctx.server, { room, name: 'Viewer', init });
    await join(page);
    return page;
  };
  const page = pageOffers ? null : await openPage();
  const cli = startNatter(`cli-join-codecs.${room}`, ['join', ctx.server.url, '--room', room, '--json', '--name', 'Bot', '--video', file, ...args]);
  (ctx.clis ??= []).push(cli);
  const joined = await cli.waitFor((e) => e.event === 'joined', 'joined');
  const viewer = page ?? (await openPage());
  await cli.waitFor((e) => e.event === 'connection' && e.id === viewer.id && e.state === 'connected', 'connected to the page');
  return { page: viewer, cli, cliId: joined.id };
}

async function leave(cli, page) {
  cli.type('/quit');
  assert.deepEqual(await cli.exited, { code: 0, signal: null }, `natter join exit (log: ${cli.logPath})`);
  await page.page.close();
}

for (const [codec, mime] of [
  ['vp9', 'video/VP9'],
  ['av1', 'video/AV1'],
]) {
  test(`natter join --once publishes a ${codec} IVF that the page decodes, then stops`, async () => {
    const { page, cli, cliId } = await publish(`codecs-${codec}`, ctx.files[codec], ['--once']);
    let got;
    await until(async () => (got = await inbound(page, cliId)) && got.framesDecoded >= 30, {
      timeout: 20000,
      what: `the page decoding 30 frames of the ${codec} file`,
      describe: () => JSON.stringify(got),
    });
    assert.equal(got.mimeType, mime, JSON.stringify(got));
    const ended = await cli.waitFor((e) => e.event === 'media-ended' && e.peer === page.id, 'media-ended', 20000);
    assert.equal(ended.kind, 'video');
    // Nothing more comes: framesReceived stays put over QUIET_MS (two
    // reads that far apart agree; a loop would keep it growing), at no
    // more than the file holds.
    let later = await inbound(page, cliId);
    await until(
      async () => {
        const earlier = later.framesReceived;
        await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
        later = await inbound(page, cliId);
        return later.framesReceived === earlier;
      },
      { timeout: 15000, what: 'framesReceived to stop growing', describe: () => JSON.stringify(later) },
    );
    console.log(`${codec}: ${JSON.stringify(later)} after media-ended`);
    assert.ok(later.framesReceived <= FRAMES, `${later.framesReceived} frames received of the file's ${FRAMES}`);
    assert.equal(later.mimeType, mime);
    await leave(cli, page);
  });
}

test('natter join publishes an H.264 Annex B file, looped, that the page decodes', async () => {
  const { page, cli, cliId } = await publish('codecs-h264', ctx.files.h264, []);
  let got;
  await until(async () => (got = await inbound(page, cliId)) && got.framesDecoded > FRAMES + 15, {
    timeout: 30000,
    what: 'the page decoding the H.264 file past its end',
    describe: () => JSON.stringify(got),
  });
  console.log(`h264: ${JSON.stringify(got)}`);
  assert.equal(got.mimeType, 'video/H264', JSON.stringify(got));
  assert.equal(cli.events.find((e) => e.event === 'media-ended' || e.event === 'media-failed'), undefined);
  await leave(cli, page);
});

test('a page that offers no H.264 gets no video and natter join says so', async () => {
  const { page, cli } = await publish('codecs-refused', ctx.files.h264, [], { init: refuse('video/h264'), pageOffers: true });
  const failed = await cli.waitFor((e) => e.event === 'media-failed' && e.peer === page.id, 'media-failed', 20000);
  assert.equal(failed.kind, 'video');
  assert.match(failed.reason, /H264/);
  await leave(cli, page);
});
