// Assistant audio playback on the audio thread, and the authority on what was heard.
//
// Audio arrives as 24 kHz float segments tagged with a key ("<item_id>:<content_index>").
// A jitter buffer holds it until startSamples (70 ms by default) are queued, or the
// item's audio is complete, then it is upsampled to the context rate by the windowed-sinc
// resampler (state carried across render quanta) and rendered. If the queue runs dry
// before the item's audio is done, that is an underrun: playback goes back to buffering.
//
// Played position: every segment fed to the resampler gets an absolute start index on the
// resampler's 24 kHz input clock. After each render quantum, the resampler's position
// (the input sample the next output is centred on) says how many samples of each segment
// have actually been rendered; those counts, per key, are posted to the main thread every
// few quanta ({type: "played"}). Samples still in the queue or in the filter's look-ahead
// are not counted, so a count never runs ahead of the output.
//
// Messages in:  {type: "push", key, samples: Float32Array}; {type: "end", key} (no more
// audio for that key: a short tail may play without filling the jitter buffer);
// {type: "flush", id}: drop everything queued and in the filter at once and answer
// {type: "flushed", id, counts} with the final count of every key that was still pending.
// Messages are handled between render quanta, so a flush count is exact.

import { SincResampler } from "./resampler.js";

const IN_RATE = 24000;
const REPORT_EVERY_QUANTA = 4;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.startSamples = opts.startSamples || 1680;
    this.resampler = new SincResampler(IN_RATE, sampleRate);
    this.queue = []; // {key, data: Float32Array, offset}
    this.queued = 0; // samples waiting in the queue
    this.ended = new Set(); // keys whose audio is complete
    this.segments = []; // fed to the resampler, not fully rendered: {key, start, length, played}
    this.counts = new Map(); // key -> samples rendered
    this.changed = new Set(); // keys whose count changed since the last report
    this.finished = []; // keys completely rendered since the last report
    this.fed = 0; // samples fed to the resampler since its last reset (its input clock)
    this.playing = false;
    this.underruns = 0;
    this.quanta = 0;
    this.port.onmessage = (event) => this._onMessage(event.data);
  }

  _onMessage(msg) {
    if (msg.type === "push") {
      if (!this.counts.has(msg.key)) this.counts.set(msg.key, 0);
      this.queue.push({ key: msg.key, data: msg.samples, offset: 0 });
      this.queued += msg.samples.length;
    } else if (msg.type === "end") {
      this.ended.add(msg.key);
      this._checkFinished(msg.key);
    } else if (msg.type === "flush") {
      const pending = new Set([...this.queue, ...this.segments].map((s) => s.key));
      this.queue = [];
      this.queued = 0;
      this.segments = [];
      this.playing = false;
      // The look-ahead holds samples nobody heard; the next item starts from silence.
      this.resampler.reset();
      this.fed = 0;
      const counts = {};
      for (const key of pending) {
        counts[key] = this.counts.get(key) || 0;
        this.counts.delete(key);
        this.changed.delete(key);
        this.ended.delete(key);
      }
      this.port.postMessage({ type: "flushed", id: msg.id, counts });
    }
  }

  _checkFinished(key) {
    if (!this.ended.has(key)) return;
    if (this.queue.some((s) => s.key === key) || this.segments.some((s) => s.key === key)) return;
    this.ended.delete(key);
    this.finished.push(key);
  }

  _ready() {
    if (this.queued >= this.startSamples) return true;
    // The whole (short) item is here: waiting for more would wait forever.
    const last = this.queue[this.queue.length - 1];
    return last !== undefined && this.ended.has(last.key);
  }

  // Feed n samples to the resampler: queued audio while playing, silence otherwise.
  _feed(n) {
    while (n > 0) {
      if (this.playing && this.queued > 0) {
        const seg = this.queue[0];
        if (seg.offset === 0) {
          this.segments.push({ key: seg.key, start: this.fed, length: seg.data.length, played: 0 });
        }
        const take = Math.min(n, seg.data.length - seg.offset);
        this.resampler.push(seg.data.subarray(seg.offset, seg.offset + take));
        seg.offset += take;
        this.fed += take;
        this.queued -= take;
        n -= take;
        if (seg.offset === seg.data.length) this.queue.shift();
        continue;
      }
      if (this.playing) {
        // Ran dry. After the item's last sample that is the normal end; before it, the
        // network fell behind: re-buffer rather than stutter sample by sample.
        const last = this.segments[this.segments.length - 1];
        if (!last || !this.ended.has(last.key)) this.underruns++;
        this.playing = false;
      }
      this.resampler.push(new Float32Array(n));
      this.fed += n;
      n = 0;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const ch0 = out[0];
    const frames = ch0.length;
    if (!this.playing && this.queued > 0 && this._ready()) this.playing = true;
    if (this.playing || this.segments.length > 0) {
      let written = 0;
      while (written < frames) {
        written += this.resampler.pull(ch0, written, frames - written);
        if (written < frames) this._feed(this.resampler.needed);
      }
      this._account();
    } else {
      ch0.fill(0);
    }
    for (let c = 1; c < out.length; c++) out[c].set(ch0);
    this.quanta++;
    this._report(false);
    return true;
  }

  _account() {
    const position = this.resampler.position;
    while (this.segments.length > 0) {
      const seg = this.segments[0];
      const played = Math.max(0, Math.min(seg.length, position - seg.start));
      if (played > seg.played) {
        this.counts.set(seg.key, (this.counts.get(seg.key) || 0) + played - seg.played);
        this.changed.add(seg.key);
        seg.played = played;
      }
      if (played < seg.length) break;
      this.segments.shift();
      this._checkFinished(seg.key);
    }
  }

  _report(force) {
    if (!force && this.quanta % REPORT_EVERY_QUANTA !== 0 && this.finished.length === 0) return;
    if (!force && this.changed.size === 0 && this.finished.length === 0) return;
    const counts = {};
    for (const key of this.changed) counts[key] = this.counts.get(key);
    this.changed.clear();
    const finished = this.finished;
    this.finished = [];
    for (const key of finished) this.counts.delete(key);
    this.port.postMessage({
      type: "played",
      counts,
      finished,
      queued: this.queued,
      playing: this.playing,
      underruns: this.underruns,
    });
  }
}

registerProcessor("realtalk-playback", PlaybackProcessor);
