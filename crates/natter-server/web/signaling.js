// The client side of signaling protocol v1 (docs/signaling.md): one
// WebSocket to /ws, a heartbeat, and reconnection that takes the session
// back with `resume`, or joins afresh when the server has forgotten it.
//
// Events (all CustomEvents, the server message in `detail`):
//   welcome, peer-joined, peer-left, peer-state, offer, answer, candidate,
//   error (a refusal), fatal (the server ended the session for good),
//   status (detail: 'connecting' | 'connected' | 'reconnecting' | 'closed').

/** Close codes after which reconnecting cannot help (docs/signaling.md, Errors). */
const FATAL_CLOSE = new Set([4400, 4401, 4403]);
/** RFC 6455 §7.4.1: normal closure, sent by the server after `leave`. */
const CLOSE_NORMAL = 1000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 8000;

export class Signaling extends EventTarget {
  /**
   * @param {{url: string, room: string, name: string, token?: string, debug?: boolean}} options
   *   debug logs every message but pings and pongs to the console
   */
  constructor({ url, room, name, token, debug = false }) {
    super();
    this.debug = debug;
    this.url = url;
    this.room = room;
    this.name = name;
    this.token = token || undefined;
    /** Our participant id, from the latest `welcome`. */
    this.id = null;
    this.resumeKey = null;
    this.heartbeatMs = 5000;
    this.resumeMs = 5000;
    this.limits = null;
    this.ws = null;
    this.attempt = 0;
    this.closedByUs = false;
    this.joined = false;
    this.lastHeard = 0;
    this.heartbeat = null;
    this.retryTimer = null;
  }

  /** Opens the socket and joins; safe to call once. */
  start() {
    this.closedByUs = false;
    this.status('connecting');
    this.open();
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      this.sendJoin();
    });
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      this.lastHeard = performance.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn('natter: unparsable signaling message', event.data);
        return;
      }
      this.receive(message);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== this.ws) return;
      this.onClose(event);
    });
  }

  sendJoin() {
    const join = { type: 'join', version: 1, room: this.room, name: this.name };
    if (this.token) join.token = this.token;
    if (this.resumeKey) join.resume = this.resumeKey;
    this.sendRaw(join);
  }

  receive(message) {
    if (this.debug && message.type !== 'pong') console.debug('natter ←', JSON.stringify(message).slice(0, 200));
    switch (message.type) {
      case 'welcome': {
        const fresh = !message.resumed;
        this.id = message.id;
        this.resumeKey = message.resume;
        this.heartbeatMs = message.heartbeatMs || 5000;
        this.resumeMs = message.resumeMs ?? 5000;
        this.limits = message.limits || null;
        this.joined = true;
        this.attempt = 0;
        this.startHeartbeat();
        this.status('connected');
        this.emit('welcome', { ...message, fresh });
        break;
      }
      case 'pong':
        break;
      case 'error':
        if (message.code === 'resume-failed') {
          // The session is gone (the resume window passed, or the server
          // restarted): join again as a new participant on this socket.
          this.resumeKey = null;
          this.sendJoin();
          break;
        }
        this.emit('error', message);
        break;
      default:
        this.emit(message.type, message);
    }
  }

  onClose(event) {
    this.stopHeartbeat();
    this.joined = false;
    if (this.closedByUs || event.code === CLOSE_NORMAL) {
      this.status('closed');
      return;
    }
    if (FATAL_CLOSE.has(event.code)) {
      this.status('closed');
      this.emit('fatal', { code: event.code, reason: event.reason });
      return;
    }
    // Unexpected: the network went away, the server restarted, or the
    // socket was replaced. Come back with `resume`, backing off.
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.status('reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closedByUs) this.open();
    }, delay * (0.75 + Math.random() * 0.5));
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.lastHeard = performance.now();
    // "at least every heartbeatMs": send twice per period so a late timer
    // never lets the server think we are gone.
    const every = Math.max(100, this.heartbeatMs / 2);
    this.heartbeat = setInterval(() => {
      if (performance.now() - this.lastHeard > 3 * this.heartbeatMs) {
        // No pong for three periods: the socket is half-open. Drop it
        // and let the close handler reconnect.
        this.stopHeartbeat();
        const ws = this.ws;
        this.ws = null;
        try {
          ws.close();
        } catch {
          /* already closed */
        }
        this.onClose({ code: 1006, reason: 'heartbeat lost' });
        return;
      }
      this.sendRaw({ type: 'ping' });
    }, every);
  }

  stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Sends a message of the session; dropped when not connected. */
  send(message) {
    if (!this.joined) return false;
    return this.sendRaw(message);
  }

  sendRaw(message) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (this.debug && message.type !== 'ping') console.debug('natter →', JSON.stringify(message).slice(0, 200));
    ws.send(JSON.stringify(message));
    return true;
  }

  /** Leaves the room: the server ends the session at once. */
  leave() {
    this.closedByUs = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    if (this.joined) this.sendRaw({ type: 'leave' });
    this.joined = false;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState === WebSocket.CONNECTING) ws.close();
    // Otherwise the server closes the socket after `leave`; closing here
    // too could drop the message before it is sent.
    else if (ws && ws.readyState === WebSocket.OPEN) setTimeout(() => ws.close(), 1000);
    this.status('closed');
  }

  status(state) {
    this.state = state;
    this.emit('status', state);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
