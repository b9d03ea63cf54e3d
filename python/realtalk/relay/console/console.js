// realtalk's browser console: a Realtime API client in one page, for the relay.
//
// What it owns: the WebSocket (browser auth by subprotocols), the session configuration
// in both dialects, microphone turns (server VAD or push-to-talk), streamed playback and
// what an interruption must send, the transcript, the event inspector, and a small test
// API (window.realtalkConsole) that tests/test_console.py drives over DevTools.
//
// Interruptions follow realtalk's INTERRUPT_RULES (python/realtalk/protocol/_state.py):
// for the assistant item being heard, conversation.item.truncate at the heard position in
// whole ms, rounded down and never past the audio received; conversation.item.delete when
// nothing (under 1 ms) was heard; nothing when its playback had already finished. The
// played position comes from the playback worklet (samples actually rendered), and
// deltas of a cut item that arrive afterwards are dropped: the server sent them before
// it saw the cut.
//
// What it must never do: load anything from the network besides its own files and the
// WebSocket, or log a console error for something the server did (server errors are
// data: they show in the inspector and the status line).

import { AudioEngine, WIRE_RATE, base64ToBytes, bytesToBase64, pcm16ToFloat32 } from "./audio.js";
import { Inspector } from "./inspector.js";
import { decideInterrupt } from "./interrupt-rules.js";

const $ = (id) => document.getElementById(id);

// Server event names that differ between the dialects (GA first); both are accepted.
const AUDIO_DELTA = new Set(["response.output_audio.delta", "response.audio.delta"]);
const AUDIO_DONE = new Set(["response.output_audio.done", "response.audio.done"]);
const TRANSCRIPT_DELTA = new Set(["response.output_audio_transcript.delta", "response.audio_transcript.delta"]);
const TRANSCRIPT_DONE = new Set(["response.output_audio_transcript.done", "response.audio_transcript.done"]);
const TEXT_DELTA = new Set(["response.output_text.delta", "response.text.delta"]);
const TEXT_DONE = new Set(["response.output_text.done", "response.text.done"]);
const ITEM_ANNOUNCED = new Set(["conversation.item.created", "conversation.item.added", "conversation.item.done"]);

// Below this the API refuses input_audio_buffer.commit.
const MIN_COMMIT_SAMPLES = (100 * WIRE_RATE) / 1000;
// A press on Record longer than this is "hold to talk"; shorter is a toggle.
const HOLD_MS = 400;

function emptyCounters() {
  return {
    eventsIn: {},
    eventsOut: {},
    samplesSent: 0,
    samplesPlayed: {}, // item_id -> samples rendered (24 kHz)
    samplesReceived: {}, // item_id -> samples received (24 kHz)
    truncationsSent: 0,
    deletesSent: 0,
    droppedDeltas: 0,
    droppedSamples: 0,
    underruns: 0,
    badAudio: 0,
  };
}

class RealtalkConsole {
  constructor() {
    this.ws = null;
    this.connected = false;
    this.dialect = "ga";
    this.mode = "vad";
    this.recording = false;
    this.counters = emptyCounters();
    this.interruptions = []; // every decision made, newest last
    this.errors = []; // server error events, newest last
    this.items = new Map(); // item_id -> {id, role, responseId, entry, audio: Map(contentIndex -> track), textOnly}
    this.tracks = new Map(); // "item_id:content_index" -> playback track (see _track)
    this.activeResponse = null; // id of the response in progress, as far as we know
    this.cancelling = false;
    this.audioProblem = null; // why this page cannot play or record, if it cannot
    this.createQueued = false; // a response.create waits for the active response's done
    this.turnSamples = 0; // samples appended in this push-to-talk turn
    this.turnNumber = 0; // startRecording calls, to spot a stop while the mic opens
    this.userEntries = new Map(); // VAD item_id -> transcript entry
    this.speechStarts = new Map(); // VAD item_id -> speech_started.audio_start_ms
    this.session = null; // the server's latest session.created / session.updated
    this.lastResponse = null; // the response object of the latest response.done
    this.seq = 0;
    this.playback = { queued: 0, playing: false };
    this.audio = new AudioEngine({
      onCapture: (chunk) => this._onCapture(chunk),
      onPlayed: (report) => this._onPlayed(report),
      onState: () => this._renderPlayback(),
    });
    this.inspector = new Inspector($("events"), $("event-filter"));
    this._bindUi();
    this._render();
  }

  // -- the test API ---------------------------------------------------------------------

  get state() {
    return {
      connected: this.connected,
      recording: this.recording,
      mode: this.mode,
      dialect: this.dialect,
      responseActive: this.activeResponse !== null,
      playing: this.playback.playing,
      queuedSamples: this.playback.queued,
      sampleRate: this.audio.sampleRate,
      audioContext: this.audio.context ? this.audio.context.state : "none",
    };
  }

  /** Per (item, content part): samples received and rendered, and whether it was cut. */
  tracksSnapshot() {
    return [...this.tracks.values()].map((t) => ({
      item_id: t.itemId,
      content_index: t.contentIndex,
      received: t.received,
      played: t.played,
      done: t.done,
      finished: t.finished,
      cut: t.cut,
    }));
  }

  // -- connection -----------------------------------------------------------------------

  /** Connect with the form's values (or the given ones); resolves once the socket is open. */
  async connect({ url, token, dialect } = {}) {
    if (this.ws) return;
    if (url !== undefined) $("ws-url").value = url;
    if (token !== undefined) $("token").value = token;
    if (dialect !== undefined) $("dialect").value = dialect;
    this.dialect = $("dialect").value;
    const protocols = ["realtime"];
    const key = $("token").value.trim();
    if (key) protocols.push(`openai-insecure-api-key.${key}`);
    if (this.dialect === "beta") protocols.push("openai-beta.realtime-v1");
    // The AudioContext is made now (synchronously, inside start()) because Connect is a
    // user gesture: browsers start a context made outside one suspended. Not awaited:
    // a page without audio still connects, for text.
    this.audio.start().then(
      () => this._renderPlayback(),
      (err) => {
        this.audioProblem = err.message;
        if (this.connected) this._status(`Connected${this._audioNote()}`, "error");
      },
    );
    let ws;
    try {
      ws = new WebSocket($("ws-url").value.trim(), protocols);
    } catch (err) {
      this._status(`Cannot connect: ${err.message}`, "error");
      throw err;
    }
    this.ws = ws;
    this._status(`Connecting to ${ws.url} …`);
    this.inspector.restart();
    await new Promise((resolve, reject) => {
      ws.onopen = () => {
        this.connected = true;
        this._status(`Connected (${this.dialect === "ga" ? "GA" : "beta"} dialect)${this._audioNote()}`, "ok");
        this._send(this._fullSessionUpdate());
        this._render();
        resolve();
      };
      ws.onclose = (event) => {
        this._onClose(event);
        reject(new Error(`closed before opening (code ${event.code})`));
      };
      ws.onerror = () => {}; // the close event that follows says what happened
      ws.onmessage = (event) => this._onMessage(event.data);
    });
    ws.onclose = (event) => this._onClose(event);
  }

  disconnect() {
    if (this.ws) this.ws.close(1000, "bye");
  }

  _audioNote() {
    return this.audioProblem ? ` — no audio: ${this.audioProblem}; text only` : "";
  }

  async _onClose(event) {
    const was = this.connected;
    this.ws = null;
    this.connected = false;
    this.activeResponse = null;
    this.createQueued = false;
    this.cancelling = false;
    if (this.recording) {
      this.recording = false;
      await this.audio.stopCapture();
    }
    this.audio.closeMic();
    await this.audio.flush();
    for (const track of this.tracks.values()) track.finished = true;
    const why = event.reason ? `: ${event.reason}` : "";
    // A refused upgrade (401, 403, ...) reaches a page only as code 1006, without the reason.
    const text = was
      ? `Disconnected (code ${event.code}${why})`
      : `Could not connect (code ${event.code}${why}): check the URL and the token`;
    this._status(text, event.code === 1000 ? "" : "error");
    this._render();
  }

  _send(event) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    // Ids let an error name the event that caused it. Not on appends: 25 a second, never
    // answered, and a relay forwards the bare {type, audio} shape without parsing it.
    if (event.type !== "input_audio_buffer.append") event.event_id = `evt_console_${++this.seq}`;
    this.ws.send(JSON.stringify(event));
    const c = this.counters.eventsOut;
    c[event.type] = (c[event.type] || 0) + 1;
    this.inspector.add("out", event);
    return true;
  }

  // -- session configuration ------------------------------------------------------------

  _turnDetection() {
    if (this.mode !== "vad") return null;
    return {
      type: "server_vad",
      threshold: Number($("vad-threshold").value),
      prefix_padding_ms: 300,
      silence_duration_ms: Number($("vad-silence").value),
      create_response: true,
      interrupt_response: true,
    };
  }

  _transcription() {
    if (!$("transcribe").checked) return null;
    return { model: this.dialect === "ga" ? "gpt-4o-mini-transcribe" : "whisper-1" };
  }

  /** session.update in the dialect's shape; parts: "settings" and/or "turns". */
  _sessionUpdate({ settings, turns, formats }) {
    const instructions = $("instructions").value;
    const voice = $("voice").value.trim();
    if (this.dialect === "ga") {
      // GA nests audio settings and requires the session type.
      const session = { type: "realtime" };
      const input = {};
      const output = {};
      if (formats) {
        input.format = { type: "audio/pcm", rate: WIRE_RATE };
        output.format = { type: "audio/pcm", rate: WIRE_RATE };
      }
      if (settings) {
        if (instructions || !formats) session.instructions = instructions;
        if (voice) output.voice = voice;
        input.transcription = this._transcription();
      }
      if (turns) input.turn_detection = this._turnDetection();
      const audio = {};
      if (Object.keys(input).length) audio.input = input;
      if (Object.keys(output).length) audio.output = output;
      if (Object.keys(audio).length) session.audio = audio;
      return { type: "session.update", session };
    }
    const session = {};
    if (formats) {
      session.input_audio_format = "pcm16";
      session.output_audio_format = "pcm16";
    }
    if (settings) {
      if (instructions || !formats) session.instructions = instructions;
      if (voice) session.voice = voice;
      session.temperature = Number($("temperature").value);
      session.input_audio_transcription = this._transcription();
    }
    if (turns) session.turn_detection = this._turnDetection();
    return { type: "session.update", session };
  }

  _fullSessionUpdate() {
    return this._sessionUpdate({ settings: true, turns: true, formats: true });
  }

  /** Send the form's instructions, voice, temperature, VAD and transcription settings. */
  applySession() {
    return this._send(this._sessionUpdate({ settings: true, turns: true, formats: false }));
  }

  /** Switch turn taking at any time: "vad" (server VAD) or "ptt" (push-to-talk). */
  async setMode(mode) {
    if (mode !== "vad" && mode !== "ptt") throw new Error(`unknown mode ${mode}`);
    if (mode === this.mode) return;
    this.mode = mode;
    for (const radio of document.querySelectorAll('input[name="mode"]')) radio.checked = radio.value === mode;
    this._send(this._sessionUpdate({ turns: true }));
    if (this.recording && mode === "ptt") {
      // What server VAD had buffered is half a turn: start the push-to-talk turn clean.
      this._send({ type: "input_audio_buffer.clear" });
      this.turnSamples = 0;
    }
    this._render();
  }

  // -- microphone -----------------------------------------------------------------------

  async startRecording() {
    if (this.recording || !this.connected) return;
    this.recording = true; // set first: a second press while the mic opens is a no-op
    const turn = ++this.turnNumber;
    this.turnSamples = 0;
    this._render();
    if (this.mode === "ptt" && this._somethingToInterrupt()) {
      // Talking over the assistant interrupts it at once, before the mic is even open.
      await this.interrupt("push_to_talk");
    }
    try {
      await this.audio.openMic({ echoCancellation: $("echo-cancellation").checked });
    } catch (err) {
      if (turn === this.turnNumber) {
        this.recording = false;
        this._status(`Microphone unavailable: ${err.message}`, "error");
        this._render();
      }
      return;
    }
    if (!this.recording || turn !== this.turnNumber) {
      // Released (or disconnected) while the microphone was opening.
      if (this.mode === "vad" || !this.connected) this.audio.closeMic();
      return;
    }
    // A push-to-talk turn starts with an empty input buffer.
    if (this.mode === "ptt") this._send({ type: "input_audio_buffer.clear" });
    const settings = this.audio.micSettings() || {};
    const aec = settings.echoCancellation ? ", echo cancellation" : "";
    $("mic-status").textContent = `on (${this.audio.sampleRate} Hz → 24 kHz${aec})`;
    this.audio.startCapture();
  }

  async stopRecording() {
    if (!this.recording) return;
    this.recording = false;
    this._render();
    await this.audio.stopCapture(); // every captured sample has been appended now
    if (this.mode === "ptt" && this.connected) {
      if (this.turnSamples >= MIN_COMMIT_SAMPLES) {
        this._send({ type: "input_audio_buffer.commit" });
        this._requestResponse();
      } else {
        this._send({ type: "input_audio_buffer.clear" });
        this._status("Too short to send (under 100 ms): hold Record while you talk.");
      }
    } else {
      this.audio.closeMic();
    }
    $("mic-status").textContent = this.audio.micOpen ? "open (paused)" : "off";
    $("mic-level").value = -90;
  }

  _onCapture(chunk) {
    if (!this.connected) return;
    const bytes = new Uint8Array(chunk.pcm);
    this._send({ type: "input_audio_buffer.append", audio: bytesToBase64(bytes) });
    this.counters.samplesSent += chunk.samples;
    this.turnSamples += chunk.samples;
    const dbfs = chunk.rms > 0 ? 20 * Math.log10(chunk.rms) : -90;
    $("mic-level").value = Math.max(-90, dbfs);
    $("mic-level").textContent = `${dbfs.toFixed(0)} dBFS`;
    $("sent-status").textContent = `${(this.counters.samplesSent / WIRE_RATE).toFixed(2)} s`;
  }

  // -- responses ------------------------------------------------------------------------

  /** response.create, or after the active response's done if one is in progress (the
   * server refuses a second one: RESPONSE_TRANSITIONS). */
  _requestResponse() {
    if (this.activeResponse !== null) this.createQueued = true;
    else this._send({ type: "response.create" });
  }

  /** Send a user text message and ask for a response. */
  async sendText(text) {
    if (!text || !this.connected) return;
    if (this._somethingToInterrupt()) await this.interrupt("text");
    this._send({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text }] },
    });
    this._requestResponse();
  }

  // -- interruption ---------------------------------------------------------------------

  /** Tracks whose audio the listener may still be hearing or about to hear. */
  _unfinishedTracks() {
    return [...this.tracks.values()].filter((t) => !t.cut && !t.finished);
  }

  _somethingToInterrupt() {
    return this.activeResponse !== null || this._unfinishedTracks().some((t) => t.received > 0);
  }

  /**
   * Stop the assistant now: flush playback, cancel the response in progress (unless the
   * server's VAD already did), and tell the server what was heard of each item that was
   * playing or still coming. Resolves to the decisions made.
   */
  async interrupt(trigger = "api") {
    const cut = this._unfinishedTracks();
    // Items of the response in progress that have no audio yet would get some later.
    for (const item of this.items.values()) {
      if (item.responseId !== null && item.responseId === this.activeResponse && item.role === "assistant") {
        if (!item.audio.has(0) && !item.textOnly) cut.push(this._track(item.id, 0));
      }
    }
    for (const track of cut) track.cut = true; // from now on their deltas are dropped
    // With server VAD (interrupt_response) the server cancels on speech_started itself.
    let cancelled = false;
    if (this.activeResponse !== null && !this.cancelling && trigger !== "speech_started") {
      this.cancelling = true;
      cancelled = this._send({ type: "response.cancel" });
    }
    const counts = await this.audio.flush();
    const decisions = [];
    for (const track of new Set(cut)) {
      if (counts && track.key in counts) track.played = counts[track.key];
      this._syncPlayed(track);
      const decision = decideInterrupt(track.played, track.received, track.done);
      const record = {
        trigger,
        item_id: track.itemId,
        content_index: track.contentIndex,
        action: decision.action,
        rule: decision.rule,
        audio_end_ms: decision.audioEndMs,
        played_samples: track.played,
        received_samples: track.received,
        audio_done: track.done,
        exact: counts !== null,
      };
      if (decision.action === "truncate") {
        this._send({
          type: "conversation.item.truncate",
          item_id: track.itemId,
          content_index: track.contentIndex,
          audio_end_ms: decision.audioEndMs,
        });
        this.counters.truncationsSent += 1;
      } else if (decision.action === "delete") {
        this._send({ type: "conversation.item.delete", item_id: track.itemId });
        this.counters.deletesSent += 1;
      }
      track.finished = true;
      track.decision = record;
      this.interruptions.push(record);
      decisions.push(record);
      this._logInterruption(record);
      this._markEntry(track, record);
      this._renderPosition(track);
    }
    if (decisions.length === 0) this._logInterruption({ trigger, action: cancelled ? "cancel" : "none" });
    this.playback = { ...this.playback, queued: 0, playing: false };
    this._render();
    return decisions;
  }

  // -- server events --------------------------------------------------------------------

  _onMessage(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      this.inspector.add("in", { type: "(not JSON)", text: String(data).slice(0, 500) });
      return;
    }
    this._receive(event);
  }

  /** Handle one server event (the socket's path; tests may feed events here too). */
  _receive(event) {
    const type = event.type;
    const c = this.counters.eventsIn;
    c[type] = (c[type] || 0) + 1;
    this.inspector.add("in", event);
    if (AUDIO_DELTA.has(type)) return this._onAudioDelta(event);
    if (AUDIO_DONE.has(type)) return this._onAudioDone(event);
    if (TRANSCRIPT_DELTA.has(type) || TEXT_DELTA.has(type)) return this._onTextDelta(event);
    if (TRANSCRIPT_DONE.has(type)) return this._onTextDone(event, event.transcript);
    if (TEXT_DONE.has(type)) return this._onTextDone(event, event.text);
    if (ITEM_ANNOUNCED.has(type) || type === "response.output_item.added") {
      return this._onItem(event.item, event.response_id);
    }
    switch (type) {
      case "session.created":
      case "session.updated":
        return this._onSession(event);
      case "response.created":
        this.activeResponse = event.response.id;
        this.cancelling = false;
        return this._render();
      case "response.done":
        return this._onResponseDone(event);
      case "response.content_part.added":
        return this._onPartAdded(event);
      case "input_audio_buffer.speech_started":
        return this._onSpeechStarted(event);
      case "input_audio_buffer.speech_stopped":
        return this._onSpeechStopped(event);
      case "input_audio_buffer.committed":
        return this._userEntry(
          event.item_id,
          this.mode === "ptt" ? `(spoken, ${(this.turnSamples / WIRE_RATE).toFixed(1)} s)` : "(spoken)",
        );
      case "conversation.item.input_audio_transcription.delta":
        return this._onUserTranscript(event.item_id, event.delta, false);
      case "conversation.item.input_audio_transcription.completed":
        return this._onUserTranscript(event.item_id, event.transcript, true);
      case "conversation.item.truncated":
      case "conversation.item.deleted":
        return this._onCutConfirmed(event);
      case "error":
        return this._onError(event);
      default:
        return undefined;
    }
  }

  _onSession(event) {
    const session = event.session || {};
    this.session = session;
    if (event.type === "session.created") {
      const model = session.model ? ` · model ${session.model}` : "";
      this._status(`Connected (${this.dialect === "ga" ? "GA" : "beta"} dialect${model})${this._audioNote()}`, "ok");
    }
  }

  _item(id, role = null, responseId = null) {
    let item = this.items.get(id);
    if (!item) {
      item = { id, role, responseId, audio: new Map(), entry: null, textOnly: false };
      this.items.set(id, item);
    }
    if (role && !item.role) item.role = role;
    if (responseId && !item.responseId) item.responseId = responseId;
    return item;
  }

  _track(itemId, contentIndex) {
    const key = `${itemId}:${contentIndex}`;
    let track = this.tracks.get(key);
    if (!track) {
      track = {
        key,
        itemId,
        contentIndex,
        received: 0, // samples (24 kHz) received
        played: 0, // samples rendered, as the playback worklet counts them
        done: false, // the server ended this audio (output_audio.done)
        finished: false, // nothing more will be heard: played out, cut, or never had audio
        cut: false, // interrupted: later deltas are dropped
        decision: null,
      };
      this.tracks.set(key, track);
      this._item(itemId).audio.set(contentIndex, track);
    }
    return track;
  }

  _onItem(item, responseId) {
    if (!item || !item.id) return;
    const it = this._item(item.id, item.role || null, responseId || null);
    if (item.type === "function_call") {
      const entry = this._entry(item.id, "assistant");
      entry.text.textContent = `calls ${item.name || "a function"}(${item.arguments || ""})`;
      return;
    }
    if (item.role === "user") {
      const parts = item.content || [];
      const text = parts.map((p) => p.text || p.transcript || "").join(" ").trim();
      const spoken = parts.some((p) => p.type === "input_audio");
      if (text || spoken) this._userEntry(item.id, text || null);
    } else if (item.role === "assistant") {
      if (!it.entry) it.entry = this._entry(item.id, "assistant");
    }
  }

  _onPartAdded(event) {
    const item = this._item(event.item_id, "assistant", event.response_id);
    const kind = event.part && event.part.type;
    if (kind === "audio" || kind === "output_audio") this._track(event.item_id, event.content_index || 0);
    else if (kind === "text" || kind === "output_text") item.textOnly = true;
  }

  _onAudioDelta(event) {
    const track = this._track(event.item_id, event.content_index || 0);
    this._item(event.item_id, "assistant", event.response_id);
    let samples;
    try {
      samples = pcm16ToFloat32(base64ToBytes(event.delta || ""));
    } catch {
      this.counters.badAudio += 1;
      this._status(`Undecodable audio delta for ${event.item_id}`, "error");
      return;
    }
    if (track.cut) {
      // Sent before the server saw our cut: the listener must not hear it.
      this.counters.droppedDeltas += 1;
      this.counters.droppedSamples += samples.length;
      this._render();
      return;
    }
    track.received += samples.length;
    this.counters.samplesReceived[track.itemId] = (this.counters.samplesReceived[track.itemId] || 0) + samples.length;
    if (samples.length > 0) this.audio.push(track.key, samples);
    this._renderPosition(track);
  }

  _onAudioDone(event) {
    const track = this._track(event.item_id, event.content_index || 0);
    track.done = true;
    if (!track.cut) this.audio.end(track.key);
    if (track.received === 0) track.finished = true;
  }

  _onPlayed(report) {
    for (const [key, played] of Object.entries(report.counts)) {
      const track = this.tracks.get(key);
      if (!track || track.cut) continue; // a cut track's count is the flush's
      track.played = played;
      this._syncPlayed(track);
    }
    for (const key of report.finished) {
      const track = this.tracks.get(key);
      if (track && !track.cut) track.finished = true;
    }
    this.counters.underruns = report.underruns;
    this.playback = { queued: report.queued, playing: report.playing };
    const current = [...this.tracks.values()].filter((t) => !t.cut && t.received > 0).pop();
    if (current) this._renderPosition(current);
    this._renderPlayback();
    $("interrupt").disabled = !this._somethingToInterrupt();
  }

  _syncPlayed(track) {
    let total = 0;
    for (const t of this._item(track.itemId).audio.values()) total += t.played;
    this.counters.samplesPlayed[track.itemId] = total;
  }

  _onResponseDone(event) {
    const response = event.response || {};
    this.lastResponse = response;
    if (this.activeResponse === null || this.activeResponse === response.id) {
      this.activeResponse = null;
      this.cancelling = false;
    }
    // Items that never produced audio will not: nothing to wait for.
    for (const out of response.output || []) {
      for (const track of this._item(out.id).audio.values()) {
        if (track.received === 0 && !track.cut) track.finished = true;
      }
    }
    if (response.status && response.status !== "completed") {
      const details = response.status_details || {};
      const reason = details.reason || (details.error || {}).message;
      for (const out of response.output || []) {
        const item = this.items.get(out.id);
        if (item && item.entry) item.entry.note(`response ${response.status}${reason ? ` (${reason})` : ""}`);
      }
    }
    if (this.createQueued) {
      this.createQueued = false;
      this._send({ type: "response.create" });
    }
    this._render();
  }

  async _onSpeechStarted(event) {
    this._userEntry(event.item_id, "…");
    this.speechStarts.set(event.item_id, event.audio_start_ms);
    // Barge-in: the user talks over the assistant. Only when something is audible or
    // on its way; otherwise speech_started is just the start of a turn.
    if (this._unfinishedTracks().some((t) => t.received > 0) || this.activeResponse !== null) {
      await this.interrupt("speech_started");
    }
  }

  _onSpeechStopped(event) {
    const entry = this.userEntries.get(event.item_id);
    const start = this.speechStarts.get(event.item_id);
    this.speechStarts.delete(event.item_id);
    if (entry && entry.text.textContent === "…") {
      const seconds = start === undefined ? "" : `, ${((event.audio_end_ms - start) / 1000).toFixed(1)} s`;
      entry.text.textContent = `(spoken${seconds})`;
    }
  }

  _onTextDelta(event) {
    const item = this._item(event.item_id, "assistant", event.response_id);
    const track = this.tracks.get(`${event.item_id}:${event.content_index || 0}`);
    if (track && track.cut) return; // the rest of an answer nobody heard
    if (!item.entry) item.entry = this._entry(event.item_id, "assistant");
    item.entry.text.textContent += event.delta || "";
  }

  _onTextDone(event, text) {
    const item = this._item(event.item_id, "assistant", event.response_id);
    const track = this.tracks.get(`${event.item_id}:${event.content_index || 0}`);
    if (track && track.cut) return;
    if (!item.entry) item.entry = this._entry(event.item_id, "assistant");
    if (typeof text === "string" && text) item.entry.text.textContent = text;
  }

  _onUserTranscript(itemId, text, final) {
    const entry = this._userEntry(itemId, null);
    if (final) entry.text.textContent = text || "";
    else if (/^(…|\(spoken.*\))$/.test(entry.text.textContent)) entry.text.textContent = text || "";
    else entry.text.textContent += text || "";
  }

  _onCutConfirmed(event) {
    const item = this.items.get(event.item_id);
    if (!item || !item.entry) return;
    const truncated = event.type === "conversation.item.truncated";
    const what = truncated ? `server kept ${event.audio_end_ms} ms` : "server deleted it";
    item.entry.note(what);
  }

  _onError(event) {
    const error = event.error || {};
    this.errors.push(error);
    this._status(`Server error${error.code ? ` (${error.code})` : ""}: ${error.message || "?"}`, "error");
    if (error.code === "response_cancel_not_active") this.cancelling = false;
    if (error.code === "conversation_already_has_active_response") this.createQueued = true;
  }

  // -- transcript -----------------------------------------------------------------------

  _entry(itemId, role) {
    const item = this._item(itemId, role);
    if (item.entry) return item.entry;
    const li = document.createElement("li");
    li.className = `turn ${role}`;
    li.dataset.itemId = itemId;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : "Assistant";
    const text = document.createElement("p");
    text.className = "text";
    const notes = document.createElement("p");
    notes.className = "notes";
    li.append(who, text, notes);
    const list = $("transcript");
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(li);
    if (stick) list.scrollTop = list.scrollHeight;
    item.entry = {
      li,
      text,
      note(message) {
        const span = document.createElement("span");
        span.className = "note";
        span.textContent = message;
        notes.append(span);
      },
    };
    return item.entry;
  }

  _userEntry(itemId, text) {
    let entry = this.userEntries.get(itemId) || this.items.get(itemId)?.entry;
    if (!entry) {
      entry = this._entry(itemId, "user");
      this.userEntries.set(itemId, entry);
      entry.text.textContent = text || "";
    } else if (text && ["", "…", "(spoken)"].includes(entry.text.textContent) && text !== "(spoken)") {
      entry.text.textContent = text;
    }
    return entry;
  }

  _markEntry(track, record) {
    const item = this._item(track.itemId);
    const entry = item.entry || this._entry(track.itemId, "assistant");
    const received = (record.received_samples / WIRE_RATE).toFixed(2);
    if (record.action === "truncate") {
      entry.li.classList.add("truncated");
      entry.note(`interrupted: heard ${(record.audio_end_ms / 1000).toFixed(2)} s of ${received} s`);
    } else if (record.action === "delete") {
      entry.li.classList.add("truncated");
      entry.note("interrupted before any of it was heard");
    }
  }

  // -- UI -------------------------------------------------------------------------------

  _status(text, kind = "") {
    const el = $("status");
    el.textContent = text;
    el.className = `status ${kind}`;
  }

  _logInterruption(record) {
    const li = document.createElement("li");
    const t = `+${((performance.now() - this.inspector.t0) / 1000).toFixed(3)} s`;
    let what;
    if (record.action === "truncate") {
      what =
        `conversation.item.truncate ${record.item_id} audio_end_ms=${record.audio_end_ms}` +
        ` (played ${record.played_samples} of ${record.received_samples} samples)`;
    } else if (record.action === "delete") {
      what = `conversation.item.delete ${record.item_id} (nothing heard)`;
    } else if (record.action === "nothing") {
      what = `nothing for ${record.item_id}: its playback had finished`;
    } else if (record.action === "cancel") {
      what = "response.cancel (no audio had arrived)";
    } else {
      what = "nothing was playing";
    }
    li.textContent = `${t} ${record.trigger}: ${what}`;
    $("interruptions").append(li);
  }

  _renderPosition(track) {
    const ms = (n) => `${Math.floor((n * 1000) / WIRE_RATE)} ms`;
    let state = "";
    if (track.cut) state = " — interrupted";
    else if (track.finished) state = " — finished";
    else if (track.done) state = " (all received)";
    $("position-status").textContent =
      `${track.itemId}: played ${ms(track.played)} of ${ms(track.received)} received${state}`;
  }

  _renderPlayback() {
    const buffered = ((this.playback.queued * 1000) / WIRE_RATE).toFixed(0);
    const latency = (this.audio.outputLatency * 1000).toFixed(0);
    let state = this.playback.playing ? "playing" : this.playback.queued > 0 ? "buffering" : "idle";
    const context = this.audio.context ? this.audio.context.state : "running";
    // Autoplay rules (or a missing output device) keep a context suspended: say so.
    if (context !== "running") state = `audio ${context} by the browser: click the page to start it; ${state}`;
    const { underruns, droppedDeltas, droppedSamples } = this.counters;
    $("playback-status").textContent =
      `${state}, ${buffered} ms buffered, output latency ≈ ${latency} ms, ${underruns} underruns`;
    $("dropped-status").textContent = `${droppedDeltas} late deltas (${droppedSamples} samples)`;
  }

  _render() {
    const on = this.connected;
    $("connect").disabled = on || this.ws !== null;
    $("disconnect").disabled = !on;
    $("ws-url").disabled = $("token").disabled = $("dialect").disabled = on;
    $("apply").disabled = !on;
    $("record").disabled = !on;
    $("send-text").disabled = !on;
    $("interrupt").disabled = !on || !this._somethingToInterrupt();
    $("temperature").disabled = $("dialect").value === "ga";
    $("temperature-note").hidden = $("dialect").value !== "ga";
    const record = $("record");
    record.setAttribute("aria-pressed", String(this.recording));
    record.classList.toggle("live", this.recording);
    if (this.mode === "ptt") {
      record.textContent = this.recording ? "Talking… (release or click to send)" : "Push to talk";
      $("record-hint").textContent =
        "Hold to talk, or click to start and click again to send. Talking interrupts the assistant.";
    } else {
      record.textContent = this.recording ? "Stop" : "Record";
      $("record-hint").textContent = "Record streams the microphone; the server decides when you have finished.";
    }
    this._renderPlayback();
  }

  _bindUi() {
    const params = new URLSearchParams(location.search);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const host = location.host || "127.0.0.1:8000";
    $("ws-url").value = params.get("url") || `${scheme}://${host}/v1/realtime?model=gpt-realtime`;
    $("token").value = params.get("token") || "";
    if (params.get("dialect") === "beta") $("dialect").value = "beta";
    this.dialect = $("dialect").value;
    if (params.get("mode") === "ptt") this.mode = "ptt";
    for (const radio of document.querySelectorAll('input[name="mode"]')) {
      radio.checked = radio.value === this.mode;
      radio.addEventListener("change", () => radio.checked && this.setMode(radio.value));
    }

    $("connect-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.connect().catch(() => {}); // the status line already says why
    });
    $("disconnect").addEventListener("click", () => this.disconnect());
    $("dialect").addEventListener("change", () => {
      this.dialect = $("dialect").value;
      this._render();
    });
    $("session-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.applySession();
    });
    $("interrupt").addEventListener("click", () => this.interrupt("button"));
    $("text-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("text").value.trim();
      $("text").value = "";
      this.sendText(text);
    });
    $("clear-events").addEventListener("click", () => this.inspector.clear());
    // Any gesture may unblock a context the browser suspended (autoplay policy).
    for (const type of ["pointerdown", "keydown"]) {
      document.addEventListener(type, () => this.audio.resume(), { capture: true });
    }
    this._bindRecordButton($("record"));
  }

  // Server VAD: Record is a plain toggle (click). Push-to-talk: press-and-hold talks until
  // release; a short press toggles (talk until the next press), by pointer or keyboard.
  _bindRecordButton(button) {
    let pressedAt = 0;
    let pressStarted = false;
    const press = () => {
      if (this.mode !== "ptt" || button.disabled) return;
      pressedAt = performance.now();
      pressStarted = !this.recording;
      if (pressStarted) this.startRecording();
    };
    const release = () => {
      if (this.mode !== "ptt" || pressedAt === 0) return;
      const held = performance.now() - pressedAt > HOLD_MS;
      pressedAt = 0;
      if (!pressStarted || held) this.stopRecording();
    };
    button.addEventListener("click", () => {
      if (this.mode !== "vad") return;
      if (this.recording) this.stopRecording();
      else this.startRecording();
    });
    button.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      button.setPointerCapture(e.pointerId);
      press();
    });
    button.addEventListener("pointerup", release);
    button.addEventListener("pointercancel", release);
    button.addEventListener("keydown", (e) => {
      if ((e.key === " " || e.key === "Enter") && !e.repeat && this.mode === "ptt") {
        e.preventDefault();
        press();
      }
    });
    button.addEventListener("keyup", (e) => {
      if ((e.key === " " || e.key === "Enter") && this.mode === "ptt") {
        e.preventDefault();
        release();
      }
    });
  }
}

const app = new RealtalkConsole();

// The test API: state, counters and the actions, without clicking pixels.
window.realtalkConsole = {
  get state() {
    return app.state;
  },
  get counters() {
    return app.counters;
  },
  get interruptions() {
    return app.interruptions;
  },
  get errors() {
    return app.errors;
  },
  /** The server's latest session configuration (session.created / session.updated). */
  get session() {
    return app.session;
  },
  /** The response object of the latest response.done (status, status_details, output). */
  get lastResponse() {
    return app.lastResponse;
  },
  tracks: () => app.tracksSnapshot(),
  connect: (options) => app.connect(options),
  disconnect: () => app.disconnect(),
  startRecording: () => app.startRecording(),
  stopRecording: () => app.stopRecording(),
  interrupt: () => app.interrupt("api"),
  setMode: (mode) => app.setMode(mode),
  sendText: (text) => app.sendText(text),
  applySession: () => app.applySession(),
  /** Feed one server event as if it came from the socket (for tests of late events). */
  receive: (event) => app._receive(event),
};
