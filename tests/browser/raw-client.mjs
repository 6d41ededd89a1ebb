// A raw signaling client (the `ws` package): sends whatever the test
// wants, including what no browser would, and reads the replies in order.


/** Longest wait for one reply. */
const REPLY_MS = 5000;

/**
 * @returns {Promise<{send, next, expectError, close, closed: Promise<{code: number, reason: string}>}>}
 */
export async function rawClient(url) {
  let WebSocket;
  try {
    ({ default: WebSocket } = await import('ws'));
  } catch (e) {
    throw new Error(`the ws package is missing: run "npm ci --prefix tests/browser" (scripts/test-browser does). ${e.message}`);
  }
  // A non-browser client sends no Origin, as the server expects of one.
  const ws = new WebSocket(url, { maxPayload: 4 << 20 });
  const inbox = [];
  const waiters = [];
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (data, binary) => {
    const message = binary ? { type: '(binary)' } : JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(message);
    else inbox.push(message);
  });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });

  /** The next message from the server (throws after REPLY_MS). */
  function next() {
    if (inbox.length) return Promise.resolve(inbox.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`no message from the server within ${REPLY_MS} ms`));
      }, REPLY_MS);
      const done = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      waiters.push(done);
    });
  }

  /** Reads until an error arrives (skipping what `skip` accepts) and checks its code. */
  async function expectError(code, { skip = () => false } = {}) {
    for (;;) {
      const m = await next();
      if (skip(m)) continue;
      if (m.type !== 'error' || m.code !== code) {
        throw new Error(`expected error ${code}, got ${JSON.stringify(m).slice(0, 300)}`);
      }
      if (typeof m.message !== 'string' || m.message.length === 0) throw new Error(`error ${code} without a message`);
      return m;
    }
  }

  return {
    send: (data) => ws.send(data),
    next,
    expectError,
    close: () => ws.close(),
    closed,
  };
}
