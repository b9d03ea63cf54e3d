// The live event inspector: one row per client or server event, newest at the bottom.
//
// Streams of deltas would bury everything else, so "foldable" events (*.delta and
// input_audio_buffer.append) that arrive in a run (no other event in between) share one
// row per direction and type with a count: "response.output_audio.delta ×25". Audio and
// transcript deltas interleave on the wire, which is why a run is not just "the same type
// as the row above". The JSON of a row (the latest event folded into it) is rendered only
// when the row is opened, with base64 audio replaced by its size.

const MAX_ROWS = 2000;
const AUDIO_KEYS = new Set(["audio", "delta"]);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function foldable(type) {
  return type.endsWith(".delta") || type === "input_audio_buffer.append";
}

/** A copy of the event with long base64 strings (audio payloads) shortened. */
export function abbreviate(value, key = "") {
  if (typeof value === "string") {
    if (value.length > 96 && AUDIO_KEYS.has(key) && BASE64.test(value.slice(0, 4096))) {
      const bytes = Math.floor((value.length * 3) / 4) - (value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0);
      return `${value.slice(0, 12)}… (base64, ${bytes} bytes)`;
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => abbreviate(v));
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = abbreviate(v, k);
    return out;
  }
  return value;
}

export class Inspector {
  /**
   * @param {HTMLElement} list the <ol> that holds the rows
   * @param {HTMLInputElement} filter a text box: rows whose type lacks its text are hidden
   */
  constructor(list, filter) {
    this.list = list;
    this.filter = filter;
    this.run = new Map(); // "dir type" -> row, for the current run of foldable events
    this.t0 = performance.now();
    this.clientRows = new Map(); // client event_id -> row, to flag the one an error names
    this.rows = new WeakMap(); // row -> {details, countEl, timeEl, count, event}
    filter.addEventListener("input", () => this._applyFilter());
  }

  /** Restart the clock (on connect). */
  restart() {
    this.t0 = performance.now();
  }

  clear() {
    this.list.replaceChildren();
    this.run.clear();
    this.clientRows.clear();
  }

  /** Add one event. dir is "out" (client -> server) or "in" (server -> client). */
  add(dir, event) {
    const type = typeof event.type === "string" ? event.type : "(no type)";
    const runKey = `${dir} ${type}`;
    if (foldable(type)) {
      const row = this.run.get(runKey);
      if (row) {
        const meta = this.rows.get(row);
        meta.count += 1;
        meta.event = event;
        meta.countEl.textContent = `×${meta.count}`;
        meta.timeEl.title = `last at ${this._clock()}`;
        if (meta.details.open) this._render(meta);
        return;
      }
    } else {
      this.run.clear();
    }
    const row = this._row(dir, type, event);
    if (foldable(type)) this.run.set(runKey, row);
    if (dir === "out" && event.event_id) {
      this.clientRows.set(event.event_id, row);
      // Errors name recent events; an old id is not worth its memory.
      if (this.clientRows.size > 500) this.clientRows.delete(this.clientRows.keys().next().value);
    }
    if (type === "error") {
      row.classList.add("error");
      const culprit = event.error && this.clientRows.get(event.error.event_id);
      if (culprit) culprit.classList.add("failed");
    }
    const stick = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 8;
    this.list.append(row);
    while (this.list.childElementCount > MAX_ROWS) {
      const old = this.list.firstElementChild;
      for (const [k, v] of this.run) if (v === old) this.run.delete(k);
      old.remove();
    }
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  _clock() {
    return `+${((performance.now() - this.t0) / 1000).toFixed(3)} s`;
  }

  _row(dir, type, event) {
    const row = document.createElement("li");
    row.className = `event ${dir}`;
    row.dataset.type = type;
    row.dataset.dir = dir;
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const time = document.createElement("time");
    time.textContent = this._clock();
    const arrow = document.createElement("span");
    arrow.className = "dir";
    arrow.textContent = dir === "out" ? "↑ sent" : "↓ recv";
    const name = document.createElement("code");
    name.className = "type";
    name.textContent = type;
    const count = document.createElement("span");
    count.className = "count";
    summary.append(time, arrow, name, count);
    details.append(summary);
    const meta = { details, countEl: count, timeEl: time, count: 1, event };
    details.addEventListener("toggle", () => {
      if (details.open) this._render(meta);
    });
    row.append(details);
    this.rows.set(row, meta);
    row.hidden = !this._matches(type);
    return row;
  }

  _render(meta) {
    let pre = meta.details.querySelector("pre");
    if (!pre) {
      pre = document.createElement("pre");
      meta.details.append(pre);
    }
    const note = meta.count > 1 ? `// the latest of ${meta.count}\n` : "";
    pre.textContent = note + JSON.stringify(abbreviate(meta.event), null, 2);
  }

  _matches(type) {
    const text = this.filter.value.trim().toLowerCase();
    return !text || type.toLowerCase().includes(text);
  }

  _applyFilter() {
    for (const row of this.list.children) row.hidden = !this._matches(row.dataset.type);
  }
}
