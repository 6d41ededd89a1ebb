// natter-impair (crates/natter-impair), the userspace delay proxy every
// bench puts on a delayed path, run as a process in front of one ICE
// candidate: bench/lib/chromium_pair.mjs's and natter_chromium.mjs's
// --rtt (issue 15, acceptance 3).

import { spawn } from 'node:child_process';
import readline from 'node:readline';

/**
 * Starts `binary` (natter-impair) relaying to the address of
 * `candidate` (RFC 8839 §5.1: its fifth and sixth fields) with
 * `oneWayMs` of delay each way; resolves to the candidate rewritten to
 * the proxy's address and a close() that stops the proxy.
 */
export async function behindImpair(binary, candidate, oneWayMs) {
  const fields = candidate.split(' ');
  const upstream = `${fields[4]}:${fields[5]}`;
  const argv = ['--listen', '127.0.0.1:0', '--upstream', upstream, '--delay', `${Math.round(oneWayMs * 1000)}us`];
  const child = spawn(binary, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const listening = await new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`cannot run ${binary}: ${e.message} (cargo build --release -p natter-impair)`)));
    child.once('exit', (code) => reject(new Error(`${binary} exited with ${code} before listening`)));
    readline.createInterface({ input: child.stdout }).once('line', resolve);
  });
  const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(listening);
  if (!m) {
    child.kill('SIGTERM');
    throw new Error(`natter-impair printed "${listening}", expected "listening on 127.0.0.1:PORT"`);
  }
  fields[4] = '127.0.0.1';
  fields[5] = m[1];
  return { candidate: fields.join(' '), close: () => child.kill('SIGTERM') };
}

/** The first UDP IPv4 candidate among the lines of `sdp` (RFC 8839 §5.1), without "a=candidate:"'s "a=". */
export function firstUdpCandidate(sdp) {
  const line = sdp.split(/\r?\n/).find((l) => /^a=candidate:\S+ \d+ udp \d+ \d+\.\d+\.\d+\.\d+ /i.test(l));
  return line ? line.slice(2) : null;
}

/**
 * `sdp` (one media section, the data channel's, as these benches make)
 * with `candidate` (or none, when null) as its only candidate line.
 */
export function withCandidate(sdp, candidate) {
  const lines = sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:'));
  // The last element is the empty string after the final CRLF.
  if (candidate) lines.splice(lines.length - 1, 0, `a=${candidate}`);
  return lines.join('\r\n');
}
