// The Natter web client: a join screen, then a call signaled through
// `natter serve` (docs/signaling.md): a mesh (one RTCPeerConnection per
// remote participant, peer.js), or in an SFU room (`welcome.sfu`) one
// connection to the server that carries everyone (sfu.js).
//
// URL: /?room=ROOM[&relay=1][&width=W&height=H&fps=F]#token=TOKEN
//   relay=1  forces iceTransportPolicy 'relay' (everything through TURN)
//   width, height, fps  ask the camera for less
//   debug=1  logs signaling messages to the console

import { Signaling } from './signaling.js';
import { Peer } from './peer.js';
import { SFU_PEER, SfuConnection, SfuPeer } from './sfu.js';
import { LABEL_PREFIX, receiveFile, sendFile } from './transfer.js';
import { NONE, listDevices, openDevices, openScreen, stopStream, videoConstraints } from './media.js';
import { startStats, stopStats } from './call-stats.js';
import { appendChat, clearCall, createTile, layoutGrid, removeTile, showTransfer, toast, updateTile } from './ui.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const settings = {
  room: params.get('room') || '',
  token: fragment.get('token') || '',
  relay: params.get('relay') === '1',
  video: videoConstraints(params),
  debug: params.get('debug') === '1',
};

const call = {
  /** Camera and microphone, from the join screen. */
  local: new MediaStream(),
  screen: null,
  audioOn: true,
  videoOn: true,
  signaling: null,
  id: null,
  name: null,
  room: null,
  iceServers: [],
  /** id → Peer (mesh) or SfuPeer (SFU room) */
  peers: new Map(),
  /** The SFU's active speaker (a peer id, ours, or null). */
  speaker: null,
  /** The SfuConnection of an SFU room, null in a mesh. */
  sfu: null,
  /** welcome.sfu of the current session. */
  sfuRoom: false,
  /** The server records the room (its `recording` message). */
  recording: false,
  /** id → Transfer */
  transfers: new Map(),
  /** id (or 'self') → last time loud */
  loud: new Map(),
  statsTimer: null,
  lastError: null,
};

// ---- read-only introspection for tests and debugging -----------------------

const introspection = {
  get id() {
    return call.id;
  },
  get room() {
    return call.room;
  },
  get name() {
    return call.name;
  },
  get connection() {
    return call.signaling ? call.signaling.state : 'idle';
  },
  /** id → {id, name, pc, chat, state} of each remote participant. */
  get peers() {
    return new Map(
      [...call.peers].map(([id, p]) => [id, Object.freeze({ id, name: p.name, pc: p.pc, chat: p.chat, state: { ...p.state } })]),
    );
  },
  /** id → {id, direction, name, size, state, sha256, blob, from} of each transfer. */
  get transfers() {
    return new Map(
      [...call.transfers].map(([id, t]) => [
        id,
        Object.freeze({ id, direction: t.direction, name: t.name, size: t.size, state: t.state, sha256: t.sha256, blob: t.blob, peer: t.peerName }),
      ]),
    );
  },
  get localStream() {
    return call.local;
  },
  /** In an SFU room: {pc, slots: mid → {kind, peer}, speaker}; null in a mesh. */
  get sfu() {
    const slots = new Map([...call.sfu?.slots ?? []].map(([mid, s]) => [mid, { ...s }]));
    return call.sfu && Object.freeze({ pc: call.sfu.pc, slots, speaker: call.speaker });
  },
  /** Whether the server says it records the room. */
  get recording() {
    return call.recording;
  },
};
Object.defineProperty(window, 'natter', { value: Object.freeze(introspection), enumerable: true });

// ---- join screen --------------------------------------------------------------

const preview = $('join-preview');
const cameraSelect = $('join-camera');
const micSelect = $('join-mic');

async function initJoin() {
  $('join-name').value = localStorage.getItem('natter.name') || '';
  if (settings.room) {
    $('join-room-shown').hidden = false;
    $('join-room-shown').textContent = `Joining room ${settings.room}`;
  } else {
    $('room-field').hidden = false;
  }
  fetch('/api/info')
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => {
      if (info && !info.dev && !settings.token) {
        $('join-note').textContent = 'This server admits invited participants only: open the link you were given.';
      }
    })
    .catch(() => {});
  cameraSelect.addEventListener('change', () => reopenDevices());
  micSelect.addEventListener('change', () => reopenDevices());
  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    join();
  });
  await reopenDevices(localStorage.getItem('natter.camera'), localStorage.getItem('natter.mic'));
}

/** Opens the chosen devices for the preview (and the call to come). */
async function reopenDevices(cameraId = cameraSelect.value, micId = micSelect.value) {
  if (!navigator.mediaDevices) {
    $('join-error').textContent = 'Camera and microphone need a secure page (https:// or localhost).';
    return;
  }
  stopStream(call.local);
  let { stream, errors } = await openDevices({ cameraId: cameraId || undefined, micId: micId || undefined, video: settings.video });
  if (errors.length && (cameraId || micId) && stream.getTracks().length === 0) {
    // A remembered device may be gone: try the defaults.
    ({ stream, errors } = await openDevices({ video: settings.video }));
  }
  call.local = stream;
  preview.srcObject = stream;
  const hasVideo = stream.getVideoTracks().length > 0;
  $('preview-empty').hidden = hasVideo;
  $('join-error').textContent = errors.join(' ');
  await fillDevices();
}

async function fillDevices() {
  const { cameras, mics } = await listDevices();
  const current = (kind) => call.local.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
  fill(cameraSelect, cameras, 'No camera', current('video'));
  fill(micSelect, mics, 'No microphone', current('audio'));
}

function fill(select, devices, noneLabel, selected) {
  select.replaceChildren();
  for (const d of devices) select.append(new Option(d.label, d.id));
  select.append(new Option(noneLabel, NONE));
  select.value = selected && devices.some((d) => d.id === selected) ? selected : NONE;
}

function join() {
  const error = $('join-error');
  error.textContent = '';
  const room = settings.room || $('join-room').value.trim();
  const name = $('join-name').value.trim();
  if (!ROOM_PATTERN.test(room)) {
    error.textContent = 'Room names are 1 to 64 letters, digits, _ or -.';
    $('join-room').focus();
    return;
  }
  if (name.length === 0 || name.length > 64) {
    error.textContent = 'Please enter your name.';
    $('join-name').focus();
    return;
  }
  localStorage.setItem('natter.name', name);
  localStorage.setItem('natter.camera', cameraSelect.value);
  localStorage.setItem('natter.mic', micSelect.value);
  if (!settings.room) {
    // Make the address shareable and reload-safe.
    const url = new URL(location.href);
    url.searchParams.set('room', room);
    history.replaceState(null, '', url);
    settings.room = room;
  }
  enterCall(room, name);
}

// ---- the call -----------------------------------------------------------------

function enterCall(room, name) {
  call.room = room;
  call.name = name;
  call.id = null;
  call.lastError = null;
  call.audioOn = call.local.getAudioTracks().length > 0;
  call.videoOn = call.local.getVideoTracks().length > 0;
  for (const t of call.local.getTracks()) t.enabled = true;
  $('join-screen').hidden = true;
  $('call-screen').hidden = false;
  $('room-name').textContent = room;
  document.title = `${room} · Natter`;
  createTile({ id: 'self', name: `${name} (you)`, self: true });
  updateTile('self', { stream: selfStream(), audio: call.audioOn, video: call.videoOn, screen: false });
  renderControls();
  layoutGrid();

  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const signaling = new Signaling({ url: `${scheme}//${location.host}/ws`, room, name, token: settings.token, debug: settings.debug });
  call.signaling = signaling;
  const on = (type, handler) => signaling.addEventListener(type, (e) => handler(e.detail));
  on('status', (s) => {
    const text = { connecting: 'Connecting…', connected: '', reconnecting: 'Reconnecting…', closed: '' }[s] ?? '';
    $('call-status').textContent = text;
  });
  on('welcome', onWelcome);
  on('peer-joined', ({ peer }) => {
    addPeer(peer, { initiator: false });
    toast(`${peer.name} joined`);
  });
  on('peer-left', ({ id, reason }) => {
    const peer = call.peers.get(id);
    if (!peer) return;
    removePeer(id);
    toast(reason === 'timeout' ? `${peer.name} lost the connection` : `${peer.name} left`);
  });
  on('peer-state', ({ id, audio, video, screen }) => {
    const peer = call.peers.get(id);
    if (!peer) return;
    peer.state = { audio, video, screen };
    updateTile(id, peer.state);
  });
  for (const type of ['offer', 'answer', 'candidate', 'track', 'layers']) {
    on(type, (message) => {
      if (type === 'track' || type === 'layers' || message.from === SFU_PEER) return call.sfu?.handle(message);
      const peer = call.peers.get(message.from);
      if (peer) peer.handle(message);
      else console.warn(`natter: ${type} from unknown peer ${message.from}`);
    });
  }
  on('chat', ({ from, text }) => {
    const peer = call.peers.get(from);
    if (peer) appendChat({ from, name: peer.name, text });
  });
  // SFU rooms: the server's active speaker (docs/signaling.md).
  on('speaker', ({ peer }) => {
    call.speaker = peer;
    for (const key of ['self', ...call.peers.keys()]) updateTile(key, { activeSpeaker: (key === 'self' ? call.id : key) === peer });
  });
  // SFU rooms: the server records the room, or stopped (docs/recording.md).
  on('recording', ({ active }) => {
    if (call.recording === Boolean(active)) return;
    call.recording = Boolean(active);
    renderControls();
    toast(call.recording ? 'This call is being recorded' : 'Recording stopped');
  });
  on('error', (e) => {
    call.lastError = e;
    toast(`${e.message} (${e.code})`, 'error');
  });
  on('fatal', ({ code, reason }) => {
    const why = call.lastError ? `${call.lastError.message} (${call.lastError.code})` : `${reason || 'refused'} (${code})`;
    leaveCall({ message: `Could not stay in the room: ${why}`, sendLeave: false });
  });
  signaling.start();
  startStats(call);
}

function onWelcome({ id, name, peers, iceServers, fresh, sfu, limits }) {
  if (fresh && call.id && call.id !== id) {
    // The old session expired while we were away: we are a new
    // participant, and every connection of the old one is gone.
    for (const peerId of [...call.peers.keys()]) removePeer(peerId);
    closeSfu();
    toast('Rejoined the room');
  }
  call.id = id;
  call.name = name;
  call.iceServers = iceServers || [];
  call.sfuRoom = Boolean(sfu);
  if (call.sfuRoom && !call.sfu) openSfu(limits?.maxParticipants ?? 6);
  else if (call.sfu && !fresh) call.sfu.resumed();
  renderControls();
  updateTile('self', { peerId: id, name, label: `${name} (you)` });
  const present = new Set(peers.map((p) => p.id));
  for (const peerId of [...call.peers.keys()]) if (!present.has(peerId)) removePeer(peerId);
  // After a fresh join we are the newcomer and make the first offers; after
  // a resume, whoever joined meanwhile has already offered to us.
  for (const p of peers) addPeer(p, { initiator: fresh });
  sendState();
}

function selfStream() {
  const stream = new MediaStream();
  const video = call.screen || call.local.getVideoTracks()[0];
  if (video) stream.addTrack(video);
  return stream;
}

function outgoingTracks() {
  const tracks = [];
  const audio = call.local.getAudioTracks()[0];
  const video = call.screen || call.local.getVideoTracks()[0];
  if (audio) tracks.push(audio);
  if (video) tracks.push(video);
  return tracks;
}

function rtcConfig() {
  return { iceServers: call.iceServers, iceTransportPolicy: settings.relay ? 'relay' : 'all', bundlePolicy: 'max-bundle' };
}

/** An SFU room's one connection; its slots fill the others' tiles. */
function openSfu(maxParticipants) {
  const sfu = new SfuConnection({
    config: rtcConfig(),
    signal: (message) => call.signaling.send(message),
    audio: call.local.getAudioTracks()[0],
    video: call.screen || call.local.getVideoTracks()[0],
    stream: call.local,
    slots: Math.max(1, maxParticipants - 1),
  });
  call.sfu = sfu;
  sfu.addEventListener('slot', ({ detail: { peer, track, previous } }) => {
    const before = call.peers.get(previous);
    if (before && before.stream.getTracks().includes(track)) {
      before.stream.removeTrack(track);
      updateTile(previous, { stream: before.stream });
    }
    const now = call.peers.get(peer);
    if (now) {
      now.stream.addTrack(track);
      updateTile(peer, { stream: now.stream });
    }
  });
  sfu.addEventListener('connection', (e) => {
    for (const id of call.peers.keys()) updateTile(id, { connection: e.detail });
  });
  sfu.relay.addEventListener('channel', ({ detail: channel }) => {
    const peer = call.peers.get(channel.peer);
    if (!peer || !channel.label.startsWith(LABEL_PREFIX)) return channel.close();
    receiveFile(channel, peer, (transfer) => {
      call.transfers.set(transfer.id, transfer);
      showTransfer(transfer);
    });
  });
}

function closeSfu() {
  call.sfu?.close();
  call.sfu = null;
}

function addPeer(p, { initiator }) {
  const existing = call.peers.get(p.id);
  if (existing) {
    existing.state = { audio: p.audio, video: p.video, screen: p.screen };
    updateTile(p.id, existing.state);
    return;
  }
  if (call.sfuRoom) {
    // Its tracks come on our SFU connection's slots (maybe already).
    const peer = new SfuPeer({ id: p.id, name: p.name, tracks: call.sfu ? call.sfu.tracksOf(p.id) : [] });
    peer.state = { audio: p.audio, video: p.video, screen: p.screen };
    call.peers.set(p.id, peer);
    createTile({ id: p.id, name: p.name, self: false });
    updateTile(p.id, { ...peer.state, stream: peer.stream });
    layoutGrid();
    return;
  }
  const peer = new Peer({
    id: p.id,
    name: p.name,
    polite: call.id < p.id,
    initiator,
    config: rtcConfig(),
    signal: (message) => call.signaling.send(message),
    tracks: outgoingTracks,
    stream: call.local,
  });
  peer.state = { audio: p.audio, video: p.video, screen: p.screen };
  call.peers.set(p.id, peer);
  createTile({ id: p.id, name: p.name, self: false });
  updateTile(p.id, peer.state);
  peer.addEventListener('track', (e) => updateTile(p.id, { stream: e.detail }));
  peer.addEventListener('connection', (e) => updateTile(p.id, { connection: e.detail }));
  peer.addEventListener('chat', (e) => appendChat({ from: p.id, name: peer.name, text: e.detail }));
  peer.addEventListener('channel', (e) => {
    const channel = e.detail;
    if (!channel.label.startsWith(LABEL_PREFIX)) return channel.close();
    receiveFile(channel, peer, (transfer) => {
      call.transfers.set(transfer.id, transfer);
      showTransfer(transfer);
    });
  });
  layoutGrid();
}

function removePeer(id) {
  const peer = call.peers.get(id);
  if (!peer) return;
  peer.close();
  call.sfu?.relay.gone(id);
  call.peers.delete(id);
  call.loud.delete(id);
  removeTile(id);
  layoutGrid();
}

function sendState() {
  const audio = call.audioOn && call.local.getAudioTracks().length > 0;
  const video = call.videoOn && call.local.getVideoTracks().length > 0;
  call.signaling?.send({ type: 'state', audio, video, screen: Boolean(call.screen) });
  updateTile('self', { audio, video, screen: Boolean(call.screen) });
}

/** Leaves (or is thrown out of) the room and goes back to the join screen. */
function leaveCall({ message = 'You left the call.', sendLeave = true } = {}) {
  const signaling = call.signaling;
  call.signaling = null;
  if (signaling && sendLeave) signaling.leave();
  stopStats(call);
  for (const id of [...call.peers.keys()]) removePeer(id);
  closeSfu();
  stopScreen({ renegotiate: false });
  clearCall();
  call.transfers.clear();
  call.id = null;
  call.speaker = null;
  call.recording = false;
  renderControls();
  for (const t of call.local.getTracks()) t.enabled = true;
  $('call-screen').hidden = true;
  $('join-screen').hidden = false;
  $('join-error').textContent = sendLeave ? '' : message;
  $('join-note').textContent = sendLeave ? message : '';
  document.title = 'Natter';
  $('join-button').focus();
}

// ---- controls -----------------------------------------------------------------

function renderControls() {
  const hasMic = call.local.getAudioTracks().length > 0;
  const hasCam = call.local.getVideoTracks().length > 0;
  const mute = $('mute');
  mute.disabled = !hasMic;
  mute.setAttribute('aria-pressed', String(!call.audioOn));
  mute.querySelector('.label').textContent = call.audioOn ? 'Mute' : 'Unmute';
  mute.title = call.audioOn ? 'Mute microphone' : 'Unmute microphone';
  const camera = $('camera');
  camera.disabled = !hasCam;
  camera.setAttribute('aria-pressed', String(!call.videoOn));
  camera.querySelector('.label').textContent = call.videoOn ? 'Stop video' : 'Start video';
  camera.title = call.videoOn ? 'Turn camera off' : 'Turn camera on';
  const screen = $('screen');
  screen.setAttribute('aria-pressed', String(Boolean(call.screen)));
  screen.querySelector('.label').textContent = call.screen ? 'Stop sharing' : 'Share';
  // Only the SFU records rooms.
  const record = $('record');
  record.hidden = !call.sfuRoom;
  record.setAttribute('aria-pressed', String(call.recording));
  record.querySelector('.label').textContent = call.recording ? 'Stop recording' : 'Record';
  record.title = call.recording ? 'Stop recording the call' : 'Record the call';
  $('recording-badge').hidden = !call.recording;
}

/**
 * Starts or stops the server's recording of the room (POST or DELETE
 * /api/rooms/ROOM/recording, with our join token); the `recording`
 * message that follows updates every page, this one too.
 */
$('record').addEventListener('click', async () => {
  const button = $('record');
  button.disabled = true;
  try {
    const headers = settings.token ? { Authorization: `Bearer ${settings.token}` } : {};
    const url = `/api/rooms/${encodeURIComponent(call.room)}/recording`;
    const response = await fetch(url, { method: call.recording ? 'DELETE' : 'POST', headers });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      toast(`Recording: ${body.message ?? response.statusText}`, 'error');
    }
  } catch (e) {
    toast(`Recording: ${e.message}`, 'error');
  } finally {
    button.disabled = false;
  }
});

$('mute').addEventListener('click', () => {
  call.audioOn = !call.audioOn;
  for (const t of call.local.getAudioTracks()) t.enabled = call.audioOn;
  renderControls();
  sendState();
});

$('camera').addEventListener('click', () => {
  call.videoOn = !call.videoOn;
  for (const t of call.local.getVideoTracks()) t.enabled = call.videoOn;
  renderControls();
  sendState();
});

$('screen').addEventListener('click', async () => {
  if (call.screen) return stopScreen({ renegotiate: true });
  let track;
  try {
    track = await openScreen();
  } catch (e) {
    if (e.name !== 'NotAllowedError') toast(`Cannot share the screen: ${e.message}`, 'error');
    return;
  }
  if (!track || !call.signaling) return track?.stop();
  call.screen = track;
  track.addEventListener('ended', () => stopScreen({ renegotiate: true }));
  await Promise.all([...call.peers.values(), call.sfu].filter(Boolean).map((p) => p.setTrack('video', track)));
  updateTile('self', { stream: selfStream() });
  renderControls();
  sendState();
});

/** Back from the screen to the camera (or to nothing). */
function stopScreen({ renegotiate }) {
  const track = call.screen;
  if (!track) return;
  call.screen = null;
  track.stop();
  if (renegotiate) {
    const camera = call.local.getVideoTracks()[0] || null;
    for (const p of [...call.peers.values(), call.sfu].filter(Boolean)) p.setTrack('video', camera);
    updateTile('self', { stream: selfStream() });
    sendState();
  }
  renderControls();
}

$('leave').addEventListener('click', () => leaveCall());

window.addEventListener('pagehide', () => {
  call.signaling?.leave();
});

$('toggle-side').addEventListener('click', () => {
  const side = $('side');
  const open = side.classList.toggle('collapsed') === false;
  $('toggle-side').setAttribute('aria-expanded', String(open));
});

// ---- chat and files -------------------------------------------------------------

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text || !call.signaling) return;
  // An SFU room has no data channels between participants: the
  // signaling server relays its chat.
  if (call.sfuRoom) call.signaling.send({ type: 'chat', text });
  else for (const peer of call.peers.values()) peer.sendChat(text);
  appendChat({ from: call.id, name: call.name, text, self: true });
  input.value = '';
});

$('file-input').addEventListener('change', (event) => {
  const input = event.target;
  const peers = [...call.peers.values()];
  for (const file of input.files) {
    if (peers.length === 0) {
      toast('Nobody else is here to receive a file.', 'error');
      break;
    }
    // An SFU room sends it once, through the server's relay, to all.
    const transfer = sendFile(file, peers, call.sfu?.relay);
    call.transfers.set(transfer.id, transfer);
    showTransfer(transfer);
  }
  input.value = '';
});

initJoin().catch((e) => {
  console.error(e);
  $('join-error').textContent = String(e.message || e);
});
