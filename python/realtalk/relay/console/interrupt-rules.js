// What an interruption must send for one assistant item: realtalk's INTERRUPT_RULES
// (python/realtalk/protocol/_state.py, decide_interrupt), row for row, in their order.
// Pure: no DOM, no audio, so tests/test_console.py compares it with the Python original.

const WIRE_RATE = 24000; // PCM16 on the wire

/** Whole milliseconds in samples at 24 kHz, rounded down: audio_end_ms never covers
 * audio the listener did not hear. */
export function samplesToMs(samples) {
  return Math.floor((samples * 1000) / WIRE_RATE);
}

/**
 * @param {number} playedSamples samples of the item the listener heard (rendered)
 * @param {number} receivedSamples samples of the item received from the server
 * @param {boolean} audioDone the server ended the item's audio (output_audio.done)
 * @returns {{action: "truncate"|"delete"|"nothing", audioEndMs: number, rule: string}}
 */
export function decideInterrupt(playedSamples, receivedSamples, audioDone) {
  // A device cannot play what never arrived.
  const heardMs = samplesToMs(Math.min(playedSamples, receivedSamples));
  // The server rejects a truncate at 0 ms: an unheard item is deleted instead.
  if (heardMs === 0) return { action: "delete", audioEndMs: 0, rule: "nothing_heard" };
  // Everything arrived and was played: the server's copy already matches what was heard.
  if (playedSamples >= receivedSamples && audioDone) {
    return { action: "nothing", audioEndMs: samplesToMs(receivedSamples), rule: "playback_finished" };
  }
  return { action: "truncate", audioEndMs: heardMs, rule: "partly_heard" };
}
