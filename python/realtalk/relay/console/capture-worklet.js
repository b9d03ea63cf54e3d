// Microphone capture on the audio thread: device-rate float audio in, 24 kHz PCM16 out.
//
// The input (any channel count, at the context's rate) is mixed to mono, resampled to
// 24 kHz by the windowed-sinc resampler in resampler.js (its low-pass is the anti-aliasing
// filter; state carries across render quanta), converted to 16-bit little-endian PCM and
// posted to the main thread in fixed chunks (chunkSamples, 40 ms by default), each with
// its RMS level for the meter. The main thread base64-encodes a chunk into one
// input_audio_buffer.append.
//
// Messages in:  {type: "start"} begins a fresh stream; {type: "stop", id} pushes the
// filter's tail out, posts the last (short) chunk and answers {type: "stopped", id}, so
// the main thread can commit only after every sample went out.

import { SincResampler } from "./resampler.js";

const OUT_RATE = 24000;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.chunkSamples = opts.chunkSamples || 960;
    this.resampler = new SincResampler(sampleRate, OUT_RATE);
    // Enough for one render quantum at any input rate down to 8 kHz (x3 going up).
    this.scratch = new Float32Array(1024);
    this.mono = new Float32Array(128);
    this.active = false;
    this._newChunk();
    this.port.onmessage = (event) => this._onMessage(event.data);
  }

  _newChunk() {
    this.bytes = new ArrayBuffer(this.chunkSamples * 2);
    this.view = new DataView(this.bytes);
    this.fill = 0;
    this.sumSquares = 0;
  }

  _onMessage(msg) {
    if (msg.type === "start") {
      this.resampler.reset();
      this._newChunk();
      this.active = true;
    } else if (msg.type === "stop") {
      if (this.active) {
        // Zeros push the last real samples through the filter's look-ahead.
        this.resampler.push(new Float32Array(this.resampler.half + 1));
        this._drain();
        this._post(true);
      }
      this.active = false;
      this.port.postMessage({ type: "stopped", id: msg.id });
    }
  }

  _drain() {
    let n;
    while ((n = this.resampler.pull(this.scratch)) > 0) {
      for (let i = 0; i < n; i++) {
        const x = Math.max(-1, Math.min(1, this.scratch[i]));
        this.sumSquares += x * x;
        // Explicit little-endian: the wire format, whatever the platform.
        this.view.setInt16(2 * this.fill, Math.round(x * 32767), true);
        if (++this.fill === this.chunkSamples) this._post(false);
      }
    }
  }

  _post(final) {
    if (this.fill === 0) return;
    const samples = this.fill;
    const rms = Math.sqrt(this.sumSquares / samples);
    const pcm = samples === this.chunkSamples ? this.bytes : this.bytes.slice(0, samples * 2);
    this.port.postMessage({ type: "chunk", pcm, samples, rms, final }, [pcm]);
    this._newChunk();
  }

  process(inputs) {
    const input = inputs[0];
    if (!this.active || !input || input.length === 0) return true;
    const frames = input[0].length;
    if (this.mono.length !== frames) this.mono = new Float32Array(frames);
    const mono = this.mono;
    mono.set(input[0]);
    for (let c = 1; c < input.length; c++) {
      const ch = input[c];
      for (let i = 0; i < frames; i++) mono[i] += ch[i];
    }
    if (input.length > 1) for (let i = 0; i < frames; i++) mono[i] /= input.length;
    this.resampler.push(mono);
    this._drain();
    return true;
  }
}

registerProcessor("realtalk-capture", CaptureProcessor);
