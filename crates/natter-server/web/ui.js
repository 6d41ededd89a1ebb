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
  if (video) video.srcObject = null;
  tile.remove();
  tiles.delete(id);
}

/**
 * The tile's <video>, made when it first has something to play: a
 * <video> in the document costs a media player (0.4 ms each to insert,
 * measured), and in an SFU room of 50, 40 of the 49 tiles have no
 * track (the receive slots are 9 videos and 5 audios, sfu.js POOL).
 */
function videoOf(tile) {
  let video = tile.querySelector('video');
  if (!video) {
    video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = tile.dataset.self === 'true';
    tile.prepend(video);
  }
  return video;
}

/** Applies whichever of the fields are present. */
export function updateTile(id, update) {
  const tile = tiles.get(id);
  if (!tile) return;
  if ('stream' in update) {
    const stream = update.stream?.getTracks().length ? update.stream : null;
    const video = stream ? videoOf(tile) : tile.querySelector('video');
    if (video && video.srcObject !== stream) video.srcObject = stream;
    if (stream) video.play().catch(() => {});
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
  // Sampled for every tile twice a second: written only when changed.
  if ('quality' in update) {
    const q = tile.querySelector('.quality');
    const text = update.qualityText || '';
    if (q.dataset.quality !== update.quality) q.dataset.quality = update.quality;
    if (q.title !== text) {
      q.setAttribute('aria-label', text || `connection ${update.quality}`);
      q.title = text;
    }
  }
  if ('connection' in update) tile.dataset.connection = update.connection;
  if ('speaking' in update && tile.classList.contains('speaking') !== update.speaking) tile.classList.toggle('speaking', update.speaking);
  if ('activeSpeaker' in update) tile.classList.toggle('active-speaker', update.activeSpeaker);
}

/**
 * The shape of every simulcast layer (160x90, 320x180, 640x360). The
 * grid's columns and rows are chosen for it, so that tiles come close to
 * a layer's shape, and a grid of many gives small tiles: the server
 * forwards the smallest layer covering each tile (sfu.js's `tile`
 * messages), 160x90 to tiles of a room of 50.
 */
const TILE_ASPECT = 16 / 9;

/**
 * The columns and rows for `n` tiles in a `width` x `height` grid with
 * `gap` between them that hold the largest TILE_ASPECT picture, and
 * that picture's width (0 when the grid has no size).
 */
function bestGrid(n, width, height, gap) {
  let best = { cols: 1, rows: n, width: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const cellWidth = (width - (cols - 1) * gap) / cols;
    const cellHeight = (height - (rows - 1) * gap) / rows;
    const pictureWidth = Math.min(cellWidth, cellHeight * TILE_ASPECT);
    if (pictureWidth > best.width) best = { cols, rows, width: pictureWidth };
  }
  return best;
}

/** The grid's content box and gap, as its ResizeObserver last saw them (0 before it has been laid out). */
const area = { width: 0, height: 0, gap: 0 };

/**
 * Sets the grid's columns and rows (bestGrid); the tiles share its area
 * evenly. The grid's size comes from its ResizeObserver: measuring it
 * here would force a layout of every new tile (49 of them on joining a
 * room of 50).
 */
export function layoutGrid() {
  const n = Math.max(1, tiles.size);
  let { cols, rows, width } = bestGrid(n, area.width, area.height, area.gap);
  if (!width) {
    // Not laid out yet: a square-ish grid until the observer reports.
    cols = Math.ceil(Math.sqrt(n));
    rows = Math.ceil(n / cols);
  }
  grid.dataset.count = String(n);
  grid.style.setProperty('--cols', String(cols));
  grid.style.setProperty('--rows', String(rows));
}

new ResizeObserver(([entry]) => {
  area.width = entry.contentRect.width;
  area.height = entry.contentRect.height;
  area.gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
  layoutGrid();
}).observe(grid);

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
