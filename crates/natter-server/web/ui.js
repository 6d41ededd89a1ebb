// The call screen's DOM: video tiles, chat messages, transfers, toasts.
// Everything user-provided goes in as text, never as markup.

const grid = document.getElementById('grid');
const chatLog = document.getElementById('chat-log');
const transferList = document.getElementById('transfers');
const toasts = document.getElementById('toasts');
const template = document.getElementById('tile-template');

/** key ('self' or a peer id) → tile element */
const tiles = new Map();
/** Object URLs of received files, revoked when the call ends. */
const objectUrls = new Set();

function initials(name) {
  const words = name.replace(/\(you\)$/, '').trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2)).toUpperCase();
}

export function createTile({ id, name, self }) {
  removeTile(id);
  const tile = template.content.firstElementChild.cloneNode(true);
  tile.dataset.name = self ? name.replace(/ \(you\)$/, '') : name;
  if (self) {
    tile.dataset.self = 'true';
    tile.dataset.peerId = '';
    tile.querySelector('video').muted = true;
  } else {
    tile.dataset.peerId = id;
  }
  tile.querySelector('.name').textContent = name;
  tile.querySelector('.avatar').textContent = initials(name);
  tile.setAttribute('aria-label', name);
  tiles.set(id, tile);
  grid.append(tile);
  return tile;
}

export function removeTile(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  const video = tile.querySelector('video');
  video.srcObject = null;
  tile.remove();
  tiles.delete(id);
}

/** Applies whichever of the fields are present. */
export function updateTile(id, update) {
  const tile = tiles.get(id);
  if (!tile) return;
  const video = tile.querySelector('video');
  if ('stream' in update) {
    if (video.srcObject !== update.stream) video.srcObject = update.stream;
    video.play().catch(() => {});
  }
  if ('peerId' in update) tile.dataset.peerId = update.peerId;
  if ('name' in update) {
    tile.dataset.name = update.name;
    tile.querySelector('.avatar').textContent = initials(update.name);
  }
  if ('label' in update) {
    tile.querySelector('.name').textContent = update.label;
    tile.setAttribute('aria-label', update.label);
  }
  if ('audio' in update) {
    tile.querySelector('.muted-badge').toggleAttribute('hidden', update.audio);
    tile.dataset.audio = String(update.audio);
  }
  if ('video' in update || 'screen' in update) {
    const videoOn = 'video' in update ? update.video : tile.dataset.video === 'true';
    const screen = 'screen' in update ? update.screen : tile.dataset.screen === 'true';
    tile.dataset.video = String(videoOn);
    tile.dataset.screen = String(screen);
    // SVG elements have no `hidden` property: set the attribute.
    tile.querySelector('.camoff-badge').toggleAttribute('hidden', videoOn || screen);
    tile.querySelector('.screen-badge').toggleAttribute('hidden', !screen);
    tile.classList.toggle('no-video', !videoOn && !screen);
  }
  if ('quality' in update) {
    const q = tile.querySelector('.quality');
    q.dataset.quality = update.quality;
    q.setAttribute('aria-label', update.qualityText || `connection ${update.quality}`);
    q.title = update.qualityText || '';
  }
  if ('connection' in update) tile.dataset.connection = update.connection;
  if ('speaking' in update) tile.classList.toggle('speaking', update.speaking);
  if ('activeSpeaker' in update) tile.classList.toggle('active-speaker', update.activeSpeaker);
}

/** Sizes the grid so the tiles fill it: columns × rows ≥ tiles. */
export function layoutGrid() {
  const n = Math.max(1, tiles.size);
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  grid.dataset.count = String(n);
  grid.style.setProperty('--cols', String(cols));
  grid.style.setProperty('--rows', String(rows));
}

export function appendChat({ from, name, text, self = false }) {
  const item = document.createElement('li');
  item.className = self ? 'message self' : 'message';
  item.dataset.testid = 'chat-message';
  item.dataset.from = from || '';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = self ? 'You' : name;
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const body = document.createElement('p');
  body.className = 'text';
  body.textContent = text;
  item.append(who, time, body);
  const atBottom = chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 40;
  chatLog.append(item);
  if (atBottom || self) chatLog.scrollTop = chatLog.scrollHeight;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

const STATE_TEXT = {
  sending: 'Sending…',
  sent: 'Sent',
  receiving: 'Receiving…',
  verified: 'Received, verified',
  mismatch: 'Checksum mismatch',
  failed: 'Failed',
};

/** A transfer's row, kept up to date with it. */
export function showTransfer(transfer) {
  const item = document.createElement('li');
  item.className = 'transfer';
  item.dataset.testid = 'transfer';
  item.dataset.transferId = transfer.id;
  item.dataset.direction = transfer.direction;
  const title = document.createElement('p');
  title.className = 'transfer-name';
  title.textContent = transfer.name;
  const meta = document.createElement('p');
  meta.className = 'muted small';
  meta.textContent = `${formatBytes(transfer.size)} ${transfer.direction === 'send' ? 'to' : 'from'} ${transfer.peerName}`;
  const bar = document.createElement('progress');
  bar.setAttribute('aria-label', `Progress of ${transfer.name}`);
  const status = document.createElement('p');
  status.className = 'transfer-status small';
  item.append(title, meta, bar, status);
  transferList.prepend(item);

  let link = null;
  const render = () => {
    item.dataset.state = transfer.state;
    bar.max = Math.max(1, transfer.total);
    bar.value = Math.min(transfer.done, bar.max);
    const percent = Math.floor((100 * bar.value) / bar.max);
    const base = STATE_TEXT[transfer.state] || transfer.state;
    status.textContent =
      transfer.state === 'sending' || transfer.state === 'receiving'
        ? `${base} ${percent}%`
        : transfer.detail && transfer.direction === 'send'
          ? `${base} (${transfer.detail})`
          : transfer.state === 'failed' && transfer.detail
            ? `${base}: ${transfer.detail}`
            : base;
    status.classList.toggle('error', transfer.state === 'mismatch' || transfer.state === 'failed');
    if (transfer.blob && !link) {
      const url = URL.createObjectURL(transfer.blob);
      objectUrls.add(url);
      link = document.createElement('a');
      link.href = url;
      link.download = transfer.name;
      link.dataset.testid = 'transfer-download';
      link.textContent = transfer.state === 'verified' ? 'Download' : 'Download anyway';
      link.className = 'button small';
      item.append(link);
    }
  };
  transfer.addEventListener('change', render);
  render();
}

export function toast(text, kind = 'info') {
  const item = document.createElement('div');
  item.className = `toast ${kind}`;
  item.textContent = text;
  toasts.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

/** Empties the call screen. */
export function clearCall() {
  for (const id of [...tiles.keys()]) removeTile(id);
  chatLog.replaceChildren();
  transferList.replaceChildren();
  for (const url of objectUrls) URL.revokeObjectURL(url);
  objectUrls.clear();
  layoutGrid();
}
