// The console's audio engine: one AudioContext, the capture and playback worklets, and the
// PCM16/base64 conversions of the wire format (24 kHz, 16-bit little-endian, mono).
//
// It knows nothing about the protocol: the page gives it assistant audio per key and asks
// it to flush; it reports captured chunks and rendered sample counts through callbacks.

export const WIRE_RATE = 24000;

/** Base64 of bytes (Uint8Array). */
export function bytesToBase64(bytes) {
  if (typeof bytes.toBase64 === "function") return bytes.toBase64();
  let binary = "";
  // String.fromCharCode takes arguments: go in slices well under engines' argument limits.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Bytes of a base64 string; throws on invalid input. */
export function base64ToBytes(text) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** PCM16 little-endian bytes -> Float32Array in [-1, 1). An odd trailing byte is ignored. */
export function pcm16ToFloat32(bytes) {
  const n = bytes.length >> 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true) / 32768;
  return out;
}

export class AudioEngine {
  /**
   * @param {object} handlers
   * @param {(chunk: {pcm: ArrayBuffer, samples: number, rms: number, final: boolean}) => void} handlers.onCapture
   * @param {(report: {counts: object, finished: string[], queued: number, playing: boolean,
   *   underruns: number}) => void} handlers.onPlayed
   * @param {(state: string) => void} [handlers.onState] the AudioContext's state changed
   */
  constructor({ onCapture, onPlayed, onState = () => {} }) {
    this.onCapture = onCapture;
    this.onPlayed = onPlayed;
    this.onState = onState;
    this.context = null;
    this.playback = null;
    this.capture = null;
    this.stream = null;
    this.source = null;
    this._nextId = 1;
    this._waiters = new Map();
    this._starting = null;
  }

  /** Create the context and load the worklets (once). Call from a user gesture when
   * possible: browsers start a context created outside one suspended. */
  async start({ jitterMs = 70 } = {}) {
    if (!this._starting) this._starting = this._start(jitterMs);
    await this._starting;
    // Not awaited: without a user gesture the promise may wait for the next one, and
    // nothing else should wait with it.
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  async _start(jitterMs) {
    if (typeof AudioWorkletNode === "undefined" || !window.isSecureContext) {
      throw new Error("audio needs a secure context (https://, or http://localhost / 127.0.0.1)");
    }
    const context = new AudioContext({ latencyHint: "interactive" });
    context.onstatechange = () => this.onState(context.state);
    const base = new URL(".", import.meta.url);
    await context.audioWorklet.addModule(new URL("capture-worklet.js", base));
    await context.audioWorklet.addModule(new URL("playback-worklet.js", base));
    const playback = new AudioWorkletNode(context, "realtalk-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [context.destination.channelCount >= 2 ? 2 : 1],
      processorOptions: { startSamples: Math.round((jitterMs * WIRE_RATE) / 1000) },
    });
    playback.port.onmessage = (event) => this._onPlaybackMessage(event.data);
    // An exception on the audio thread only fires this event: make it a page error.
    playback.onprocessorerror = () => console.error("the playback worklet failed");
    playback.connect(context.destination);
    this.context = context;
    this.playback = playback;
  }

  /** Try to (re)start a suspended context; call from a user gesture. */
  resume() {
    if (this.context && this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  get sampleRate() {
    return this.context ? this.context.sampleRate : 0;
  }

  /** Seconds between a sample leaving the worklet and reaching the speaker, if known. */
  get outputLatency() {
    if (!this.context) return 0;
    return (this.context.baseLatency || 0) + (this.context.outputLatency || 0);
  }

  get micOpen() {
    return this.stream !== null;
  }

  /** Open the microphone (asks for permission the first time). */
  async openMic({ echoCancellation = true, noiseSuppression = true, autoGainControl = true } = {}) {
    await this.start();
    if (this.stream) return;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation, noiseSuppression, autoGainControl },
    });
    const context = this.context;
    const source = context.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(context, "realtalk-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      processorOptions: { chunkSamples: (40 * WIRE_RATE) / 1000 },
    });
    capture.port.onmessage = (event) => this._onCaptureMessage(event.data);
    capture.onprocessorerror = () => console.error("the capture worklet failed");
    // A worklet node is only guaranteed to be pulled when it reaches the destination; a
    // zero gain keeps it silent (the microphone must not play back).
    const mute = context.createGain();
    mute.gain.value = 0;
    source.connect(capture).connect(mute).connect(context.destination);
    this.stream = stream;
    this.source = source;
    this.capture = capture;
    this.mute = mute;
  }

  /** The microphone track's settings (device rate, processing), for display. */
  micSettings() {
    const track = this.stream && this.stream.getAudioTracks()[0];
    return track ? track.getSettings() : null;
  }

  startCapture() {
    this.capture.port.postMessage({ type: "start" });
  }

  /** Stop capturing; resolves after the last chunk has been delivered to onCapture. */
  stopCapture() {
    if (!this.capture) return Promise.resolve();
    return this._request(this.capture.port, { type: "stop" }, 500);
  }

  closeMic() {
    if (!this.stream) return;
    for (const track of this.stream.getTracks()) track.stop();
    this.source.disconnect();
    this.capture.disconnect();
    this.mute.disconnect();
    this.capture.port.onmessage = null;
    this.stream = this.source = this.capture = this.mute = null;
  }

  // Run fn once the playback worklet exists. Calls made while it loads run in call
  // order when it is ready, so a flush still comes after the pushes before it; without
  // audio (start() failed or never called) they do nothing.
  _whenReady(fn) {
    if (this.playback) return fn();
    if (!this._starting) return undefined;
    return this._starting.then(
      () => (this.playback ? fn() : undefined),
      () => undefined,
    );
  }

  /** Queue 24 kHz float samples for the key ("item_id:content_index"). */
  push(key, samples) {
    this._whenReady(() => this.playback.port.postMessage({ type: "push", key, samples }, [samples.buffer]));
  }

  /** No more audio will come for the key. */
  end(key) {
    this._whenReady(() => this.playback.port.postMessage({ type: "end", key }));
  }

  /** Drop all queued and buffered audio now; resolves to {key: samples rendered} for
   * every key that was still pending: {} when this page has no audio, null if the audio
   * thread did not answer in time (then the last reported counts are all there is). */
  async flush() {
    const reply = await this._whenReady(() => this._request(this.playback.port, { type: "flush" }, 300));
    if (reply === undefined) return {};
    return reply ? reply.counts : null;
  }

  _request(port, message, timeoutMs) {
    const id = this._nextId++;
    return new Promise((resolve) => {
      // A suspended or closed context may never answer: fall back after timeoutMs.
      const timer = setTimeout(() => {
        this._waiters.delete(id);
        resolve(null);
      }, timeoutMs);
      this._waiters.set(id, (value) => {
        clearTimeout(timer);
        resolve(value);
      });
      port.postMessage({ ...message, id });
    });
  }

  _answer(id, value) {
    const resolve = this._waiters.get(id);
    if (resolve) {
      this._waiters.delete(id);
      resolve(value);
    }
  }

  _onCaptureMessage(msg) {
    if (msg.type === "chunk") this.onCapture(msg);
    else if (msg.type === "stopped") this._answer(msg.id, msg);
  }

  _onPlaybackMessage(msg) {
    if (msg.type === "played") this.onPlayed(msg);
    else if (msg.type === "flushed") this._answer(msg.id, msg);
  }
}
