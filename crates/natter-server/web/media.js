// Cameras, microphones and the screen.

/** The 'none' choice of the device pickers. */
export const NONE = 'none';

/**
 * Video constraints from the page URL: `width`, `height` and `fps` ask the
 * camera for less (useful on slow machines and in tests).
 */
export function videoConstraints(params) {
  const c = {};
  const number = (name) => {
    const v = Number.parseInt(params.get(name) || '', 10);
    return Number.isFinite(v) && v > 0 ? v : null;
  };
  const width = number('width');
  const height = number('height');
  const fps = number('fps');
  c.width = { ideal: width || 1280 };
  c.height = { ideal: height || 720 };
  if (fps) c.frameRate = { ideal: fps, max: fps };
  return c;
}

/**
 * Opens the chosen camera and microphone. A device that fails is left
 * out rather than failing the whole call: one can join to listen.
 * @returns {Promise<{stream: MediaStream, errors: string[]}>}
 */
export async function openDevices({ cameraId, micId, video }) {
  const stream = new MediaStream();
  const errors = [];
  const want = [];
  if (micId !== NONE) {
    want.push(['audio', { deviceId: micId ? { exact: micId } : undefined, echoCancellation: true, noiseSuppression: true }]);
  }
  if (cameraId !== NONE) want.push(['video', { ...video, deviceId: cameraId ? { exact: cameraId } : undefined }]);
  if (want.length === 0) return { stream, errors };
  try {
    const got = await navigator.mediaDevices.getUserMedia(Object.fromEntries(want));
    for (const t of got.getTracks()) stream.addTrack(t);
  } catch (both) {
    // One at a time, to keep whichever works.
    for (const [kind, constraints] of want) {
      try {
        const got = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
        for (const t of got.getTracks()) stream.addTrack(t);
      } catch (e) {
        errors.push(`${kind === 'audio' ? 'Microphone' : 'Camera'}: ${e.message || e.name}`);
      }
    }
    if (errors.length === 0) console.warn('natter: getUserMedia of both failed, each alone worked', both);
  }
  return { stream, errors };
}

/** Lists cameras and microphones; labels appear once permission was given. */
export async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return { cameras: [], mics: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  const label = (d, i, what) => d.label || `${what} ${i + 1}`;
  const cameras = devices.filter((d) => d.kind === 'videoinput').map((d, i) => ({ id: d.deviceId, label: label(d, i, 'Camera') }));
  const mics = devices.filter((d) => d.kind === 'audioinput').map((d, i) => ({ id: d.deviceId, label: label(d, i, 'Microphone') }));
  return { cameras, mics };
}

export function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}

/** Asks for a screen, window or tab to share; null when refused. */
export async function openScreen() {
  if (!navigator.mediaDevices?.getDisplayMedia) throw new Error('this browser cannot share the screen');
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  const [track] = stream.getVideoTracks();
  if (track && 'contentHint' in track) track.contentHint = 'detail';
  return track || null;
}
