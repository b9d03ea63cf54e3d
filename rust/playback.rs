//! Playback buffer: the jitter buffer between the trio side, which pushes decoded audio
//! deltas, and the output callback, which pulls device frames. Owns the playhead: how many
//! samples of each (item_id, content_index) the listener has heard.
//!
//! Rules it keeps:
//! - Exactly one producer and one consumer. The producer is [`PlaybackBuffer`] (methods take
//!   `&mut self`); the consumer is [`PlaybackOutput::fill`], shared through an `Arc` (or a
//!   raw pointer handed to PortAudio). A second consumer entering `fill` while another is
//!   inside gets silence and is counted as an error, never a data race.
//! - The consumer path never allocates, locks, blocks or panics on purpose: every buffer is
//!   allocated at construction, every shared counter is an atomic, indices are guarded.
//! - Item id strings never reach the consumer: the producer maps (item_id, content_index)
//!   to a small tag, and the consumer only counts per tag.
//! - No sample is dropped or repeated. The output is exactly the resampled source stream
//!   with silence inserted where the buffer ran dry, times a gain envelope whose slope is
//!   at most one fade step per source sample (fades at start, underrun, resume, interrupt).
//!   A faded sample counts as played. Only `interrupt` discards samples, and counts them
//!   as flushed: per item, pushed = played + buffered + flushed at all times.

use crate::callback_log::{CallbackLog, CallbackTime, PlaybackRecord, MAX_RECORDS};
use crate::error::{Error, Result};
use crate::resample::{Quality, Resampler};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

/// Items (item_id, content_index) that can be tracked at once.
pub const MAX_TAGS: usize = 256;
/// Segments (runs of samples of one item) that can be buffered at once.
const SEGMENTS: usize = 16_384;
/// Fade length for underruns and starts, in ms.
const FADE_MS: u32 = 3;
/// "No item" in tag fields.
const NO_TAG: u32 = u32::MAX;
const UNSET: u64 = u64::MAX;
/// Runs of real samples remembered for the callback log's audible frames.
const RUNS: usize = 64;

/// Notice bits (see [`PlaybackBuffer::take_notices`]).
pub const NOTICE_STARTED: u32 = 1;
pub const NOTICE_DRAINED: u32 = 2;
pub const NOTICE_INTERRUPTED: u32 = 4;
pub const NOTICE_UNDERRUN: u32 = 8;

/// PortAudio callback status flags (`PaStreamCallbackFlags`).
pub const PA_INPUT_UNDERFLOW: u64 = 1;
pub const PA_INPUT_OVERFLOW: u64 = 2;
pub const PA_OUTPUT_UNDERFLOW: u64 = 4;
pub const PA_OUTPUT_OVERFLOW: u64 = 8;
pub const PA_PRIMING_OUTPUT: u64 = 16;

/// Settings of a playback buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlaybackConfig {
    /// Device sample rate in Hz.
    pub device_rate: u32,
    /// Device channels; the mono source is copied to each.
    pub channels: usize,
    /// Source sample rate in Hz: 24000 for PCM16, 8000 for G.711.
    pub source_rate: u32,
    /// Buffered audio needed before playback starts, in ms at the source rate.
    pub start_threshold_ms: u32,
    /// Ring capacity in source samples.
    pub capacity_samples: usize,
    /// Largest callback served; larger requests get silence and count an error.
    pub max_frames_per_callback: usize,
    /// Capacity of the per-callback log in records (0: off).
    pub callback_log: usize,
}

impl PlaybackConfig {
    /// The defaults for a device rate: mono, 24 kHz source, 70 ms threshold, 60 s of
    /// capacity, 8192 frames per callback at most.
    pub fn new(device_rate: u32) -> Self {
        PlaybackConfig {
            device_rate,
            channels: 1,
            source_rate: 24_000,
            start_threshold_ms: 70,
            capacity_samples: 60 * 24_000,
            max_frames_per_callback: 8192,
            callback_log: 0,
        }
    }
}

/// Why a push was refused (nothing of it was buffered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The ring has room for `free` samples only.
    Full { free: usize },
    /// Too many separate runs of samples are buffered.
    TooManySegments,
    /// Every one of the `MAX_TAGS` item slots still has audio buffered.
    TooManyItems,
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Full { free } => write!(f, "playback buffer full ({free} samples free)"),
            PushError::TooManySegments => write!(f, "too many separate deltas buffered"),
            PushError::TooManyItems => {
                write!(f, "more than {MAX_TAGS} items with audio buffered at once")
            }
        }
    }
}

impl std::error::Error for PushError {}

/// Where playback of one item stands, in source-rate samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playhead {
    pub item_id: String,
    pub content_index: u32,
    /// Samples the listener has heard (or, after an interrupt, will have heard once the
    /// fade-out reaches the speaker).
    pub played_samples: u64,
    pub received_samples: u64,
    pub flushed_samples: u64,
    pub source_rate: u32,
}

impl Playhead {
    /// `played_samples` in ms, rounded down (what `conversation.item.truncate` takes).
    pub fn audio_end_ms(&self) -> u64 {
        self.played_samples * 1000 / u64::from(self.source_rate)
    }
}

/// Counters since construction; a snapshot.
/// Upper bounds of the lateness buckets, in ns: 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50 ms.
pub const LATENESS_BOUNDS_NS: [u64; LATENESS_BUCKETS - 1] = [
    100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000,
];
/// Lateness buckets: one per bound and one for anything later.
pub const LATENESS_BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaybackStatistics {
    pub callbacks: u64,
    pub frames_out: u64,
    pub pushed_samples: u64,
    pub played_samples: u64,
    pub flushed_samples: u64,
    pub buffered_samples: u64,
    pub underruns: u64,
    pub drains: u64,
    pub interrupts: u64,
    /// Callbacks refused: too many frames, re-entered, or after a panic.
    pub errors: u64,
    pub panics: u64,
    pub max_callback_ns: u64,
    /// How late callbacks started: the entry time minus (previous entry + previous
    /// period), counted in buckets with upper bounds [`LATENESS_BOUNDS_NS`] (the last
    /// bucket: later than the last bound), and the worst.
    pub lateness_buckets: [u64; LATENESS_BUCKETS],
    pub max_lateness_ns: u64,
    pub output_underflows: u64,
    pub output_overflows: u64,
    pub priming_callbacks: u64,
    /// Callback-log records dropped because the log was full.
    pub callback_log_overflow: u64,
}

/// Per-item counters, indexed by tag.
#[derive(Default)]
struct TagCounters {
    /// Producer.
    received: AtomicU64,
    /// Consumer: source samples fed to the resampler.
    consumed: AtomicU64,
    /// Consumer: samples discarded by an interrupt.
    flushed: AtomicU64,
    /// Consumer: global real-sample index of this tag's first consumed sample.
    first_fed: AtomicU64,
}

struct Segment {
    tag: AtomicU32,
    /// Ring position (in samples since construction) just past this segment's last sample.
    end: AtomicU64,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Not started: waiting for the start threshold (or end of stream).
    Idle,
    Playing,
    /// Fading out for an interrupt: `left` more samples, gain down by `step` each.
    Fading {
        left: u32,
        step: f32,
    },
}

/// Consumer-only state.
struct Consumer {
    resampler: Resampler,
    src: Vec<f32>,
    res: Vec<MaybeUninit<f32>>,
    pending: Vec<f32>,
    pend_pos: usize,
    pend_len: usize,
    mode: Mode,
    gain: f32,
    read_pos: u64,
    seg_idx: u64,
    /// Real samples fed into the resampler since construction.
    real_fed: u64,
    /// Source samples of silence since the last real sample (saturating).
    zeros: u64,
    /// The resampler holds only zeros and was reset.
    clean: bool,
    starved: bool,
    heard: u64,
    last_tag: u32,
    interrupt_seen: u64,
    flush_to: u64,
    // Per-callback snapshot of the producer's positions.
    write_pos: u64,
    eos_pos: u64,
    // Callback log (only maintained when it is on).
    log_on: bool,
    /// The last runs of real samples fed to the resampler, as [start, end) in its input
    /// frames since its last reset; `run_count` runs since then (a ring of RUNS).
    runs: [(u64, u64); RUNS],
    run_count: usize,
    /// This callback's audible span so far: [aud_first, aud_end) in buffer frames.
    aud_first: usize,
    aud_end: usize,
    /// The resampler's out_rate / in_rate as L / M, and its delay in output frames.
    ratio: (u64, u64),
    out_delay: f64,
}

/// The state both sides see. The consumer calls [`PlaybackOutput::fill`].
pub struct PlaybackOutput {
    config: PlaybackConfig,
    ring: Box<[UnsafeCell<f32>]>,
    segments: Box<[Segment]>,
    tags: Box<[TagCounters]>,
    /// Producer: samples written since construction.
    write_pos: AtomicU64,
    /// Consumer: samples read or flushed since construction.
    read_pos: AtomicU64,
    /// Producer: segments published; consumer: index of the current one.
    seg_count: AtomicU64,
    seg_read: AtomicU64,
    /// Producer: write position where the stream was marked ended (UNSET if not).
    eos_pos: AtomicU64,
    latency_frames: AtomicU64,
    interrupt_req: AtomicU64,
    interrupt_flush_to: AtomicU64,
    interrupt_done: AtomicU64,
    interrupt_tag: AtomicU32,
    interrupt_played: AtomicU64,
    interrupt_flushed: AtomicU64,
    /// Consumer-published playhead inputs.
    real_fed: AtomicU64,
    heard: AtomicU64,
    last_tag: AtomicU32,
    notices: AtomicU32,
    notice_count: AtomicU64,
    busy: AtomicBool,
    poisoned: AtomicBool,
    consumer: UnsafeCell<Consumer>,
    // Statistics.
    callbacks: AtomicU64,
    frames_out: AtomicU64,
    flushed: AtomicU64,
    underruns: AtomicU64,
    drains: AtomicU64,
    interrupts: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    max_callback_ns: AtomicU64,
    /// When the next callback is due (ns since `epoch`; 0: no callback yet).
    next_due_ns: AtomicU64,
    lateness: [AtomicU64; LATENESS_BUCKETS],
    max_lateness_ns: AtomicU64,
    epoch: Instant,
    output_underflows: AtomicU64,
    output_overflows: AtomicU64,
    priming: AtomicU64,
    log: CallbackLog<PlaybackRecord>,
    /// Device frames of every callback since construction (counted while the log is on).
    log_frames: AtomicU64,
    // Constants derived at construction.
    fade_src: u32,
    threshold_src: u64,
    /// Source samples of zeros that push the resampler's history out.
    tail_src: u64,
    delay_src: f64,
}

// SAFETY: the ring cells are written only by the single producer in slots the consumer
// is not reading (between read_pos and write_pos + capacity, published with Release on
// write_pos) and read only by the consumer below write_pos. `consumer` is only touched
// inside the `busy` guard. Everything else is atomic or immutable.
unsafe impl Sync for PlaybackOutput {}
// SAFETY: all owned data is Send (f32, atomics, Resampler, Vecs).
unsafe impl Send for PlaybackOutput {}

fn dev_to_src(cfg: &PlaybackConfig, dev: f64) -> f64 {
    dev * f64::from(cfg.source_rate) / f64::from(cfg.device_rate)
}

impl PlaybackOutput {
    fn new(config: PlaybackConfig) -> Result<Self> {
        let c = &config;
        if c.channels == 0 || c.channels > 32 {
            return Err(Error::config(format!(
                "channels must be 1..=32, got {}",
                c.channels
            )));
        }
        if c.capacity_samples == 0 || c.capacity_samples > (1 << 30) {
            return Err(Error::config(format!(
                "capacity must be 1 to 2**30 samples, got {}",
                c.capacity_samples
            )));
        }
        if c.max_frames_per_callback == 0 || c.max_frames_per_callback > (1 << 20) {
            return Err(Error::config(format!(
                "max_frames_per_callback must be 1..=1048576, got {}",
                c.max_frames_per_callback
            )));
        }
        if c.callback_log > MAX_RECORDS {
            return Err(Error::config(format!(
                "callback_log must be 0..={MAX_RECORDS} records, got {}",
                c.callback_log
            )));
        }
        if c.start_threshold_ms > 60_000 {
            return Err(Error::config(format!(
                "start_threshold_ms must be at most 60000, got {}",
                c.start_threshold_ms
            )));
        }
        let resampler = Resampler::new(c.source_rate, c.device_rate, 1, Quality::Hq)?;
        let delay_src = dev_to_src(c, resampler.delay());
        let max_src = (dev_to_src(c, c.max_frames_per_callback as f64).ceil() as usize) + 2;
        let max_res = resampler.output_frames(max_src) + 4;
        let threshold_src = u64::from(c.start_threshold_ms) * u64::from(c.source_rate) / 1000;
        let fade_src = (c.source_rate * FADE_MS / 1000).max(1);
        let tail_src = (2.0 * delay_src).ceil() as u64 + 2;
        let (ratio, out_delay) = (resampler.ratio(), resampler.delay());
        Ok(PlaybackOutput {
            ring: (0..c.capacity_samples)
                .map(|_| UnsafeCell::new(0.0))
                .collect(),
            segments: (0..SEGMENTS)
                .map(|_| Segment {
                    tag: AtomicU32::new(NO_TAG),
                    end: AtomicU64::new(0),
                })
                .collect(),
            tags: (0..MAX_TAGS).map(|_| TagCounters::default()).collect(),
            write_pos: AtomicU64::new(0),
            read_pos: AtomicU64::new(0),
            seg_count: AtomicU64::new(0),
            seg_read: AtomicU64::new(0),
            eos_pos: AtomicU64::new(UNSET),
            latency_frames: AtomicU64::new(0),
            interrupt_req: AtomicU64::new(0),
            interrupt_flush_to: AtomicU64::new(0),
            interrupt_done: AtomicU64::new(0),
            interrupt_tag: AtomicU32::new(NO_TAG),
            interrupt_played: AtomicU64::new(0),
            interrupt_flushed: AtomicU64::new(0),
            real_fed: AtomicU64::new(0),
            heard: AtomicU64::new(0),
            last_tag: AtomicU32::new(NO_TAG),
            notices: AtomicU32::new(0),
            notice_count: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            consumer: UnsafeCell::new(Consumer {
                resampler,
                src: vec![0.0; max_src],
                res: vec![MaybeUninit::new(0.0); max_res],
                pending: vec![0.0; max_res],
                pend_pos: 0,
                pend_len: 0,
                mode: Mode::Idle,
                gain: 0.0,
                read_pos: 0,
                seg_idx: 0,
                real_fed: 0,
                zeros: u64::MAX / 2,
                clean: true,
                starved: false,
                heard: 0,
                last_tag: NO_TAG,
                interrupt_seen: 0,
                flush_to: 0,
                write_pos: 0,
                eos_pos: UNSET,
                log_on: c.callback_log > 0,
                runs: [(0, 0); RUNS],
                run_count: 0,
                aud_first: 0,
                aud_end: 0,
                ratio,
                out_delay,
            }),
            callbacks: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            drains: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            max_callback_ns: AtomicU64::new(0),
            next_due_ns: AtomicU64::new(0),
            lateness: Default::default(),
            max_lateness_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            output_underflows: AtomicU64::new(0),
            output_overflows: AtomicU64::new(0),
            priming: AtomicU64::new(0),
            log: CallbackLog::new(c.callback_log),
            log_frames: AtomicU64::new(0),
            fade_src,
            threshold_src,
            tail_src,
            delay_src,
            config,
        })
    }

    pub fn config(&self) -> &PlaybackConfig {
        &self.config
    }

    pub fn channels(&self) -> usize {
        self.config.channels
    }

    /// The resampler's delay in source samples.
    pub fn resampler_delay_samples(&self) -> f64 {
        self.delay_src
    }

    /// Fill `out` (interleaved, `frames * channels` samples) with the next device frames.
    /// Never blocks, allocates or panics by design; refused calls (more frames than
    /// `max_frames_per_callback`, a wrong length, re-entry) write silence and count an
    /// error. Logged (when the log is on) with the entry time and NaN device times.
    pub fn fill(&self, out: &mut [f32], frames: usize) {
        self.fill_timed(out, frames, None);
    }

    /// [`fill`](Self::fill) for a PortAudio callback: `time` (taken at callback entry) goes
    /// to the callback log when it is on (`None`: now, NaN device times).
    ///
    /// A record's audible frames are the device frames made from real (pushed) samples,
    /// fades included, placed where the resampler puts them: source sample k of the
    /// resampler's input covers output frames [k * L / M + delay, (k + 1) * L / M + delay)
    /// (rounded up; exact with equal rates, where the delay is 0), so the first audible
    /// frame of a start lags by the resampler delay. Audio can start mid-buffer (a start,
    /// or a resume after an underrun, lands `delay` frames in) and stop mid-buffer
    /// (underrun, drain, interrupt fade); the record holds the span from the first to the
    /// last audible frame. A gap inside one buffer (an underrun shorter than the delay,
    /// or many tiny callbacks) is counted in the span.
    pub fn fill_timed(&self, out: &mut [f32], frames: usize, time: Option<CallbackTime>) {
        let started = Instant::now();
        let logged = if self.log.enabled() {
            let first = self.log_frames.fetch_add(frames as u64, Relaxed);
            Some((first, time.unwrap_or_else(CallbackTime::now)))
        } else {
            None
        };
        self.note_timing(started, frames);
        self.callbacks.fetch_add(1, Relaxed);
        let ch = self.config.channels;
        if frames > self.config.max_frames_per_callback
            || Some(out.len()) != frames.checked_mul(ch)
            || self.poisoned.load(Relaxed)
            || self.busy.swap(true, Acquire)
        {
            out.fill(0.0);
            self.errors.fetch_add(1, Relaxed);
            if let Some((first, time)) = logged {
                self.log_callback(first, frames, time, (frames, 0));
            }
            return;
        }
        // Poisoned until the body returns: a panic inside leaves silence from then on.
        self.poisoned.store(true, Relaxed);
        // SAFETY: `busy` guarantees this is the only live reference to the consumer state.
        let c = unsafe { &mut *self.consumer.get() };
        let audible = c.fill(self, out, frames);
        self.frames_out.fetch_add(frames as u64, Relaxed);
        self.poisoned.store(false, Relaxed);
        self.busy.store(false, Release);
        if let Some((first, time)) = logged {
            self.log_callback(first, frames, time, audible);
        }
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.max_callback_ns.fetch_max(ns, Relaxed);
    }

    /// Whether callbacks are logged (capacity > 0).
    #[inline]
    pub fn callback_log_enabled(&self) -> bool {
        self.log.enabled()
    }

    fn log_callback(
        &self,
        first_frame: u64,
        frames: usize,
        time: CallbackTime,
        (first_audible, audible_frames): (usize, usize),
    ) {
        let u32_of = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.log.push(PlaybackRecord {
            first_frame,
            frames: u32_of(frames),
            first_audible: u32_of(first_audible),
            audible_frames: u32_of(audible_frames),
            entry_ns: time.entry_ns,
            current_time: time.current_time,
            dac_time: time.device_time,
        });
    }

    /// Lateness of this callback against the period of the previous one.
    fn note_timing(&self, now: Instant, frames: usize) {
        let now_ns = u64::try_from(now.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let due = self.next_due_ns.load(Relaxed);
        if due != 0 {
            let late = now_ns.saturating_sub(due);
            let bucket = LATENESS_BOUNDS_NS
                .iter()
                .position(|&bound| late <= bound)
                .unwrap_or(LATENESS_BUCKETS - 1);
            if let Some(counter) = self.lateness.get(bucket) {
                counter.fetch_add(1, Relaxed);
            }
            self.max_lateness_ns.fetch_max(late, Relaxed);
        }
        let rate = u64::from(self.config.device_rate).max(1);
        let period_ns = (frames as u64).saturating_mul(1_000_000_000) / rate;
        self.next_due_ns
            .store(now_ns.saturating_add(period_ns).max(1), Relaxed);
    }

    /// Count a panic caught around `fill` (by the C callback).
    pub fn note_panic(&self) {
        self.panics.fetch_add(1, Relaxed);
    }

    /// Count PortAudio's status flags for one callback.
    pub fn note_status(&self, flags: u64) {
        if flags & PA_OUTPUT_UNDERFLOW != 0 {
            self.output_underflows.fetch_add(1, Relaxed);
        }
        if flags & PA_OUTPUT_OVERFLOW != 0 {
            self.output_overflows.fetch_add(1, Relaxed);
        }
        if flags & PA_PRIMING_OUTPUT != 0 {
            self.priming.fetch_add(1, Relaxed);
        }
    }

    fn notify(&self, bits: u32) {
        self.notices.fetch_or(bits, Release);
        self.notice_count.fetch_add(1, Release);
    }

    fn sample(&self, pos: u64) -> f32 {
        let cap = self.ring.len() as u64;
        match self.ring.get((pos % cap) as usize) {
            // SAFETY: pos is below the write position loaded with Acquire, so the producer
            // wrote this cell before publishing it and will not touch it until read_pos
            // passes it.
            Some(cell) => unsafe { *cell.get() },
            None => 0.0,
        }
    }

    fn tag(&self, tag: u32) -> Option<&TagCounters> {
        self.tags.get(tag as usize)
    }
}

impl Consumer {
    /// Returns the audible span of the buffer (when the log is on): (offset of its first
    /// frame, frames) or (frames, 0).
    fn fill(&mut self, sh: &PlaybackOutput, out: &mut [f32], frames: usize) -> (usize, usize) {
        let ch = sh.config.channels;
        // Callback log: this callback writes resampler output frames from `logged_from` on,
        // contiguously from offset 0, until a reset (or the end).
        let mut logged_from = None;
        if self.log_on {
            self.aud_first = frames;
            self.aud_end = 0;
            logged_from =
                Some(self.resampler.frames_out() - (self.pend_len - self.pend_pos) as u64);
        }
        self.write_pos = sh.write_pos.load(Acquire);
        self.eos_pos = sh.eos_pos.load(Acquire);
        let req = sh.interrupt_req.load(Acquire);
        if req != self.interrupt_seen {
            self.interrupt_seen = req;
            self.flush_to = sh.interrupt_flush_to.load(Acquire).min(self.write_pos);
            let fit = dev_to_src(&sh.config, frames as f64) as u32;
            let avail =
                u32::try_from(self.flush_to.saturating_sub(self.read_pos)).unwrap_or(u32::MAX);
            let left = self.fade_to_whole_ms(sh, sh.fade_src.min(fit), fit.min(avail));
            if self.mode == Mode::Playing && !self.starved && left > 0 && self.gain > 0.0 {
                self.mode = Mode::Fading {
                    left,
                    // The last faded sample keeps a little gain: every played sample is
                    // audible, and the step to silence is still at most one step.
                    step: self.gain / (left + 1) as f32,
                };
            } else {
                self.finish_interrupt(sh);
            }
        }
        if self.mode == Mode::Idle && self.ready(sh) {
            self.start(sh);
        }
        let mut filled = 0;
        while filled < frames {
            if self.pend_pos < self.pend_len {
                let n = (self.pend_len - self.pend_pos).min(frames - filled);
                let from = &self.pending[self.pend_pos..self.pend_pos + n];
                write_frames(&mut out[filled * ch..(filled + n) * ch], from, ch);
                self.pend_pos += n;
                filled += n;
                continue;
            }
            let need = frames - filled;
            if self.mode == Mode::Idle && !self.clean && self.zeros >= sh.tail_src {
                if let Some(first) = logged_from.take() {
                    self.mark_audible(0, first, filled);
                }
                self.run_count = 0;
                self.resampler.reset();
                self.clean = true;
            }
            if self.mode == Mode::Idle && self.clean {
                out[filled * ch..frames * ch].fill(0.0);
                let z = dev_to_src(&sh.config, need as f64) as u64;
                self.zeros = self.zeros.saturating_add(z);
                break;
            }
            let mut n = (dev_to_src(&sh.config, need as f64) as usize).clamp(1, self.src.len());
            while n > 1 && self.resampler.output_frames(n) > self.res.len() {
                n -= 1;
            }
            let real = self.gather(sh, n);
            if self.log_on && real > 0 {
                self.note_run(self.resampler.frames_in(), real as u64);
            }
            let k = self.resampler.output_frames(n).min(self.res.len());
            if let (Some(src), Some(res)) = (self.src.get(..n), self.res.get_mut(..k)) {
                if self.resampler.output_frames(n) == k {
                    self.resampler.process_into(src, res);
                } else {
                    debug_assert!(false, "resampler scratch too small");
                    res.fill(MaybeUninit::new(0.0));
                }
            }
            // SAFETY: process_into wrote all k (or they were zero-filled just above).
            let res: &[f32] =
                unsafe { &*(&self.res[..k] as *const [MaybeUninit<f32>] as *const [f32]) };
            let now = k.min(need);
            write_frames(&mut out[filled * ch..(filled + now) * ch], &res[..now], ch);
            filled += now;
            let rest = k - now;
            self.pending[..rest].copy_from_slice(&res[now..k]);
            self.pend_pos = 0;
            self.pend_len = rest;
        }
        sh.read_pos.store(self.read_pos, Release);
        sh.seg_read.store(self.seg_idx, Release);
        // Heard position: real samples fed, less those still in the resampler or the
        // device's buffer (the silence fed since the last real sample pushes them out).
        let latency = sh.latency_frames.load(Relaxed) as f64;
        let window = (sh.delay_src + dev_to_src(&sh.config, latency)).ceil() as u64;
        let unheard = window.saturating_sub(self.zeros).min(self.real_fed);
        self.heard = self.heard.max(self.real_fed - unheard);
        sh.heard.store(self.heard, Release);
        if let Some(first) = logged_from {
            let end = self.resampler.frames_out() - (self.pend_len - self.pend_pos) as u64;
            self.mark_audible(0, first, (end - first) as usize);
        }
        if self.aud_end > self.aud_first {
            (self.aud_first, self.aud_end - self.aud_first)
        } else {
            (frames, 0)
        }
    }

    /// The first resampler output frame at or after the time of input frame `pos`:
    /// ceil(pos * L / M + delay).
    fn output_at(&self, pos: u64) -> u64 {
        let (l, m) = (u128::from(self.ratio.0), u128::from(self.ratio.1.max(1)));
        let x = u128::from(pos) * l;
        let whole = (x / m) as u64;
        let frac = (x % m) as f64 / m as f64;
        whole + (frac + self.out_delay).ceil() as u64
    }

    /// Widen this callback's audible span by the frames of real samples among `n`
    /// resampler output frames from `first`, written at buffer offset `offset`.
    #[inline(never)]
    fn mark_audible(&mut self, offset: usize, first: u64, n: usize) {
        if n == 0 {
            return;
        }
        let end = first + n as u64;
        for k in 0..self.run_count.min(RUNS) {
            let Some(&(a, b)) = self.runs.get((self.run_count - 1 - k) % RUNS) else {
                break;
            };
            let hi = self.output_at(b);
            if hi <= first {
                break; // this run and every older one end before these frames
            }
            let (lo, hi) = (self.output_at(a).max(first), hi.min(end));
            if lo < hi {
                self.aud_first = self.aud_first.min(offset + (lo - first) as usize);
                self.aud_end = self.aud_end.max(offset + (hi - first) as usize);
            }
        }
    }

    /// Remember that resampler input frames [start, start + len) are real samples.
    #[inline(never)]
    fn note_run(&mut self, start: u64, len: u64) {
        if let Some(last) = self
            .run_count
            .checked_sub(1)
            .and_then(|i| self.runs.get_mut(i % RUNS))
        {
            if last.1 == start {
                last.1 = start + len;
                return;
            }
        }
        if let Some(slot) = self.runs.get_mut(self.run_count % RUNS) {
            *slot = (start, start + len);
        }
        self.run_count += 1;
    }

    /// Enough buffered to start: the threshold, or the stream was marked ended.
    fn ready(&self, sh: &PlaybackOutput) -> bool {
        let avail = self.write_pos - self.read_pos;
        avail > 0 && (avail >= sh.threshold_src.max(1) || self.eos_pos == self.write_pos)
    }

    fn start(&mut self, sh: &PlaybackOutput) {
        self.mode = Mode::Playing;
        self.starved = false;
        self.gain = 0.0;
        sh.notify(NOTICE_STARTED);
    }

    /// Fill `self.src[..n]` with the next source samples: real ones with the gain
    /// envelope, or silence. Returns how many are real: they come first (once silence
    /// starts, the rest of the call is silence).
    fn gather(&mut self, sh: &PlaybackOutput, n: usize) -> usize {
        let mut i = 0;
        let fade_step = 1.0 / sh.fade_src as f32;
        while i < n {
            let fading = matches!(self.mode, Mode::Fading { .. });
            let end = if fading {
                self.flush_to
            } else {
                self.write_pos
            };
            let avail = end.saturating_sub(self.read_pos);
            if self.mode == Mode::Idle || avail == 0 || (fading && self.fade_left() == 0) {
                match self.mode {
                    Mode::Playing => {
                        if self.eos_pos == self.write_pos {
                            self.mode = Mode::Idle;
                            sh.drains.fetch_add(1, Relaxed);
                            sh.notify(NOTICE_DRAINED);
                        } else if !self.starved {
                            self.starved = true;
                            sh.underruns.fetch_add(1, Relaxed);
                            sh.notify(NOTICE_UNDERRUN);
                        }
                    }
                    Mode::Fading { .. } => self.finish_interrupt(sh),
                    Mode::Idle => {}
                }
                self.gain = 0.0;
                if let Some(rest) = self.src.get_mut(i..n) {
                    rest.fill(0.0);
                }
                self.zeros = self.zeros.saturating_add((n - i) as u64);
                return i;
            }
            // The segment holding read_pos.
            let seg_count = sh.seg_count.load(Acquire);
            let mut seg = sh.segments.get((self.seg_idx % SEGMENTS as u64) as usize);
            while let Some(s) = seg {
                if s.end.load(Acquire) > self.read_pos || self.seg_idx + 1 >= seg_count {
                    break;
                }
                self.seg_idx += 1;
                seg = sh.segments.get((self.seg_idx % SEGMENTS as u64) as usize);
            }
            let Some(seg) = seg else { return i };
            let tag = seg.tag.load(Relaxed);
            let seg_left = seg.end.load(Acquire).saturating_sub(self.read_pos);
            let take = (n - i)
                .min(avail as usize)
                .min(seg_left.max(1) as usize)
                .min(self.fade_left() as usize);
            let final_end = !fading && self.eos_pos == self.write_pos;
            for j in 0..take {
                let pos = self.read_pos + j as u64;
                let after = (end - pos - 1) as f32;
                let cap = if final_end {
                    1.0
                } else {
                    ((after + 1.0) * fade_step).min(1.0)
                };
                match &mut self.mode {
                    Mode::Fading { left, step } => {
                        self.gain = (self.gain - *step).max(0.0).min(cap);
                        *left = left.saturating_sub(1);
                    }
                    _ => self.gain = (self.gain + fade_step).min(cap),
                }
                if let Some(d) = self.src.get_mut(i + j) {
                    *d = sh.sample(pos) * self.gain;
                }
            }
            if let Some(t) = sh.tag(tag) {
                if t.consumed.load(Relaxed) == 0 {
                    t.first_fed.store(self.real_fed, Relaxed);
                }
                t.consumed.fetch_add(take as u64, Release);
            }
            self.last_tag = tag;
            sh.last_tag.store(tag, Relaxed);
            self.real_fed += take as u64;
            sh.real_fed.store(self.real_fed, Release);
            self.read_pos += take as u64;
            self.starved = false;
            self.zeros = 0;
            self.clean = false;
            i += take;
        }
        n
    }

    /// The interrupt fade's length in source samples: `fade` made longer (up to `room`)
    /// or shorter so that the cut item's played count ends on a whole millisecond. The
    /// truncation the server gets is in whole ms: cut there, what it keeps is exactly
    /// what was heard, to the sample. Rates that are not whole samples per ms keep `fade`.
    fn fade_to_whole_ms(&self, sh: &PlaybackOutput, fade: u32, room: u32) -> u32 {
        let rate = sh.config.source_rate;
        if !rate.is_multiple_of(1000) || fade == 0 {
            return fade;
        }
        let per_ms = u64::from(rate / 1000);
        let played = sh
            .tag(self.last_tag)
            .map_or(0, |t| t.consumed.load(Relaxed));
        let over = (played + u64::from(fade)) % per_ms;
        if over == 0 {
            return fade;
        }
        let longer = u64::from(fade) + per_ms - over;
        if longer <= u64::from(room) {
            return u32::try_from(longer).unwrap_or(fade);
        }
        let shorter = u64::from(fade) - over.min(u64::from(fade));
        if shorter > 0 {
            u32::try_from(shorter).unwrap_or(fade)
        } else {
            fade
        }
    }

    fn fade_left(&self) -> u32 {
        match self.mode {
            Mode::Fading { left, .. } => left,
            _ => u32::MAX,
        }
    }

    /// Discard what was buffered up to the interrupt, publish the exact playhead.
    fn finish_interrupt(&mut self, sh: &PlaybackOutput) {
        let to = self.flush_to.max(self.read_pos);
        let mut first_flushed = NO_TAG;
        let seg_count = sh.seg_count.load(Acquire);
        let mut pos = self.read_pos;
        while pos < to {
            let Some(seg) = sh.segments.get((self.seg_idx % SEGMENTS as u64) as usize) else {
                break;
            };
            let end = seg.end.load(Acquire);
            let tag = seg.tag.load(Relaxed);
            let upto = end.min(to);
            if upto > pos {
                if first_flushed == NO_TAG {
                    first_flushed = tag;
                }
                if let Some(t) = sh.tag(tag) {
                    t.flushed.fetch_add(upto - pos, Release);
                }
                sh.flushed.fetch_add(upto - pos, Relaxed);
                pos = upto;
            }
            if end <= pos {
                if self.seg_idx + 1 >= seg_count {
                    break;
                }
                self.seg_idx += 1;
            }
        }
        debug_assert_eq!(pos, to);
        self.read_pos = to;
        let tag = if first_flushed != NO_TAG {
            first_flushed
        } else {
            self.last_tag
        };
        let played = sh.tag(tag).map_or(0, |t| t.consumed.load(Relaxed));
        let flushed = sh.tag(tag).map_or(0, |t| t.flushed.load(Relaxed));
        sh.interrupt_tag.store(tag, Relaxed);
        sh.interrupt_played.store(played, Relaxed);
        sh.interrupt_flushed.store(flushed, Relaxed);
        sh.interrupts.fetch_add(1, Relaxed);
        sh.interrupt_done.store(self.interrupt_seen, Release);
        sh.read_pos.store(self.read_pos, Release);
        sh.seg_read.store(self.seg_idx, Release);
        sh.notify(NOTICE_INTERRUPTED);
        self.mode = Mode::Idle;
        self.starved = false;
        self.gain = 0.0;
    }
}

/// Write mono `src` to every channel of interleaved `out`.
fn write_frames(out: &mut [f32], src: &[f32], ch: usize) {
    if ch == 1 {
        out.copy_from_slice(src);
    } else {
        for (frame, &x) in out.chunks_exact_mut(ch).zip(src) {
            frame.fill(x);
        }
    }
}

/// Producer-side table of item names.
struct Items {
    by_key: HashMap<(String, u32), u32>,
    names: Vec<Option<(String, u32)>>,
    /// Highest playhead reported per tag, so reports never go backwards.
    reported: Vec<u64>,
    next: usize,
}

/// The producer handle: push audio, mark the end, interrupt, read the playhead.
pub struct PlaybackBuffer {
    shared: Arc<PlaybackOutput>,
    items: Items,
    write_pos: u64,
    seg_count: u64,
    last_tag: u32,
    pushed: u64,
    interrupt_req: u64,
}

impl std::fmt::Debug for PlaybackBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackBuffer")
            .field("config", &self.shared.config)
            .field("buffered", &self.buffered_samples())
            .finish_non_exhaustive()
    }
}

impl PlaybackBuffer {
    /// Errors (`Error::Config`): rates outside 1..=192000 Hz, channels outside 1..=32, a
    /// capacity or callback size of 0 or absurdly large, a threshold above 60 s.
    pub fn new(config: PlaybackConfig) -> Result<Self> {
        Ok(PlaybackBuffer {
            shared: Arc::new(PlaybackOutput::new(config)?),
            items: Items {
                by_key: HashMap::new(),
                names: vec![None; MAX_TAGS],
                reported: vec![0; MAX_TAGS],
                next: 0,
            },
            write_pos: 0,
            seg_count: 0,
            last_tag: NO_TAG,
            pushed: 0,
            interrupt_req: 0,
        })
    }

    /// The consumer side, for the output callback.
    pub fn output(&self) -> &Arc<PlaybackOutput> {
        &self.shared
    }

    pub fn config(&self) -> &PlaybackConfig {
        &self.shared.config
    }

    fn tag_idle(&self, tag: usize) -> bool {
        let t = &self.shared.tags[tag];
        let received = t.received.load(Relaxed);
        received == t.consumed.load(Acquire) + t.flushed.load(Acquire)
    }

    /// The tag of an item, assigning a free slot to a new one.
    fn tag_for(
        &mut self,
        item_id: &str,
        content_index: u32,
    ) -> std::result::Result<u32, PushError> {
        if let Some(&tag) = self.items.by_key.get(&(item_id.to_owned(), content_index)) {
            return Ok(tag);
        }
        for k in 0..MAX_TAGS {
            let tag = (self.items.next + k) % MAX_TAGS;
            if self.items.names[tag].is_some() && !self.tag_idle(tag) {
                continue;
            }
            if let Some(old) = self.items.names[tag].take() {
                self.items.by_key.remove(&old);
            }
            let t = &self.shared.tags[tag];
            t.received.store(0, Relaxed);
            t.consumed.store(0, Relaxed);
            t.flushed.store(0, Relaxed);
            t.first_fed.store(UNSET, Relaxed);
            self.items.reported[tag] = 0;
            self.items.names[tag] = Some((item_id.to_owned(), content_index));
            self.items
                .by_key
                .insert((item_id.to_owned(), content_index), tag as u32);
            self.items.next = (tag + 1) % MAX_TAGS;
            return Ok(tag as u32);
        }
        Err(PushError::TooManyItems)
    }

    /// Buffer source-rate float32 samples of one item. All or nothing.
    pub fn push(
        &mut self,
        item_id: &str,
        content_index: u32,
        samples: &[f32],
    ) -> std::result::Result<(), PushError> {
        self.push_with(item_id, content_index, samples.len(), |i| samples[i])
    }

    /// Buffer source-rate int16 samples of one item. All or nothing.
    pub fn push_pcm16(
        &mut self,
        item_id: &str,
        content_index: u32,
        samples: &[i16],
    ) -> std::result::Result<(), PushError> {
        self.push_with(item_id, content_index, samples.len(), |i| {
            f32::from(samples[i]) * (1.0 / 32768.0)
        })
    }

    fn push_with(
        &mut self,
        item_id: &str,
        content_index: u32,
        n: usize,
        sample: impl Fn(usize) -> f32,
    ) -> std::result::Result<(), PushError> {
        let sh = Arc::clone(&self.shared);
        let read_pos = sh.read_pos.load(Acquire);
        let cap = sh.ring.len() as u64;
        let free = (cap - (self.write_pos - read_pos)) as usize;
        if n > free {
            return Err(PushError::Full { free });
        }
        if n == 0 {
            return Ok(());
        }
        let tag = self.tag_for(item_id, content_index)?;
        let seg_read = sh.seg_read.load(Acquire);
        let extend = self.seg_count > 0 && self.last_tag == tag && self.seg_count > seg_read;
        if !extend && self.seg_count - seg_read >= SEGMENTS as u64 {
            return Err(PushError::TooManySegments);
        }
        for i in 0..n {
            let pos = self.write_pos + i as u64;
            if let Some(cell) = sh.ring.get((pos % cap) as usize) {
                // SAFETY: pos is at or past write_pos and below read_pos + capacity: a cell
                // the consumer does not read until write_pos is published past it.
                unsafe { *cell.get() = sample(i) };
            }
        }
        let end = self.write_pos + n as u64;
        if extend {
            let seg = &sh.segments[((self.seg_count - 1) % SEGMENTS as u64) as usize];
            seg.end.store(end, Release);
        } else {
            let seg = &sh.segments[(self.seg_count % SEGMENTS as u64) as usize];
            seg.tag.store(tag, Relaxed);
            seg.end.store(end, Release);
            self.seg_count += 1;
            sh.seg_count.store(self.seg_count, Release);
        }
        sh.tags[tag as usize].received.fetch_add(n as u64, Relaxed);
        self.last_tag = tag;
        self.pushed += n as u64;
        self.write_pos = end;
        sh.write_pos.store(end, Release);
        Ok(())
    }

    /// Mark the end of the audio pushed so far: playback starts even below the threshold,
    /// and running dry there is a drain, not an underrun (no fade-out either).
    pub fn end_of_stream(&mut self) {
        self.shared.eos_pos.store(self.write_pos, Release);
    }

    /// Ask the consumer to fade out and discard everything pushed so far. Idempotent: a
    /// request still pending is not repeated. Returns whether a new request was made.
    pub fn interrupt(&mut self) -> bool {
        if self.interrupt_pending() {
            return false;
        }
        self.shared
            .interrupt_flush_to
            .store(self.write_pos, Relaxed);
        self.interrupt_req += 1;
        self.shared.interrupt_req.store(self.interrupt_req, Release);
        true
    }

    /// An interrupt was requested and the consumer has not finished it yet.
    pub fn interrupt_pending(&self) -> bool {
        self.shared.interrupt_done.load(Acquire) != self.interrupt_req
    }

    /// The exact playhead of the last interrupt once the consumer finished it (the item
    /// that was cut, with every sample up to the end of the fade counted as played);
    /// `None` while pending, or if nothing was ever pushed.
    pub fn interrupt_result(&mut self) -> Option<Playhead> {
        if self.interrupt_req == 0 || self.interrupt_pending() {
            return None;
        }
        let tag = self.shared.interrupt_tag.load(Relaxed);
        let played = self.shared.interrupt_played.load(Relaxed);
        let flushed = self.shared.interrupt_flushed.load(Relaxed);
        let slot = self.items.reported.get_mut(tag as usize)?;
        *slot = (*slot).max(played);
        let (item_id, content_index) = self.items.names.get(tag as usize)?.clone()?;
        // As of the end of the fade: everything of the item pushed before the interrupt
        // was played or flushed.
        Some(Playhead {
            item_id,
            content_index,
            played_samples: played,
            received_samples: played + flushed,
            flushed_samples: flushed,
            source_rate: self.shared.config.source_rate,
        })
    }

    /// Source samples of the item heard so far (0 for an unknown item): consumed by the
    /// device minus the resampler's delay and the output latency, never decreasing.
    pub fn played_samples(&mut self, item_id: &str, content_index: u32) -> u64 {
        match self.items.by_key.get(&(item_id.to_owned(), content_index)) {
            Some(&tag) => self.played_of(tag),
            None => 0,
        }
    }

    fn played_of(&mut self, tag: u32) -> u64 {
        let sh = &self.shared;
        let heard = sh.heard.load(Acquire);
        let Some(t) = sh.tag(tag) else { return 0 };
        let first = t.first_fed.load(Relaxed);
        let consumed = t.consumed.load(Acquire);
        let played = if first == UNSET {
            0
        } else {
            heard.saturating_sub(first).min(consumed)
        };
        let slot = &mut self.items.reported[tag as usize];
        *slot = (*slot).max(played);
        *slot
    }

    fn playhead_of(&mut self, tag: u32) -> Option<Playhead> {
        let (item_id, content_index) = self.items.names.get(tag as usize)?.clone()?;
        let played = self.played_of(tag);
        let t = self.shared.tag(tag)?;
        Some(Playhead {
            item_id,
            content_index,
            played_samples: played,
            received_samples: t.received.load(Relaxed),
            flushed_samples: t.flushed.load(Acquire),
            source_rate: self.shared.config.source_rate,
        })
    }

    /// The playhead of the item the device is playing (or played last).
    pub fn playhead(&mut self) -> Option<Playhead> {
        let tag = self.shared.last_tag.load(Relaxed);
        self.playhead_of(tag)
    }

    /// The playhead of a given item, if it is still tracked.
    pub fn playhead_for(&mut self, item_id: &str, content_index: u32) -> Option<Playhead> {
        let tag = *self
            .items
            .by_key
            .get(&(item_id.to_owned(), content_index))?;
        self.playhead_of(tag)
    }

    /// Frames of output latency (frames written by a callback but not yet heard when it
    /// returns), from `Pa_GetStreamInfo(stream)->outputLatency * device_rate`.
    pub fn set_output_latency_frames(&mut self, frames: u64) {
        self.shared.latency_frames.store(frames, Relaxed);
    }

    pub fn output_latency_frames(&self) -> u64 {
        self.shared.latency_frames.load(Relaxed)
    }

    /// Pending notice bits (NOTICE_*), cleared by reading.
    pub fn take_notices(&mut self) -> u32 {
        self.shared.notices.swap(0, Acquire)
    }

    /// Number of notices raised since construction (to poll cheaply for change).
    pub fn notice_count(&self) -> u64 {
        self.shared.notice_count.load(Acquire)
    }

    /// Source samples pushed and not yet played or flushed.
    pub fn buffered_samples(&self) -> u64 {
        self.write_pos - self.shared.read_pos.load(Acquire).min(self.write_pos)
    }

    pub fn statistics(&self) -> PlaybackStatistics {
        let sh = &self.shared;
        PlaybackStatistics {
            callbacks: sh.callbacks.load(Relaxed),
            frames_out: sh.frames_out.load(Relaxed),
            pushed_samples: self.pushed,
            played_samples: sh.real_fed.load(Relaxed),
            flushed_samples: sh.flushed.load(Relaxed),
            buffered_samples: self.buffered_samples(),
            underruns: sh.underruns.load(Relaxed),
            drains: sh.drains.load(Relaxed),
            interrupts: sh.interrupts.load(Relaxed),
            errors: sh.errors.load(Relaxed),
            panics: sh.panics.load(Relaxed),
            max_callback_ns: sh.max_callback_ns.load(Relaxed),
            lateness_buckets: std::array::from_fn(|i| sh.lateness[i].load(Relaxed)),
            max_lateness_ns: sh.max_lateness_ns.load(Relaxed),
            output_underflows: sh.output_underflows.load(Relaxed),
            output_overflows: sh.output_overflows.load(Relaxed),
            priming_callbacks: sh.priming.load(Relaxed),
            callback_log_overflow: sh.log.overflow(),
        }
    }

    /// Move the callback log's records since the last drain to `out`, oldest first.
    /// Returns how many.
    pub fn drain_callback_log(&mut self, out: &mut Vec<PlaybackRecord>) -> usize {
        self.shared.log.drain_into(out)
    }

    /// Capacity of the callback log in records (0: off).
    pub fn callback_log_capacity(&self) -> usize {
        self.shared.log.capacity()
    }

    /// Per-item counters: (received, consumed, flushed) in source samples.
    pub fn counters(&self, item_id: &str, content_index: u32) -> Option<(u64, u64, u64)> {
        let tag = *self
            .items
            .by_key
            .get(&(item_id.to_owned(), content_index))?;
        let t = self.shared.tag(tag)?;
        Some((
            t.received.load(Relaxed),
            t.consumed.load(Acquire),
            t.flushed.load(Acquire),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback_log::PlaybackRecord;

    fn config(device_rate: u32) -> PlaybackConfig {
        PlaybackConfig {
            capacity_samples: 24_000,
            ..PlaybackConfig::new(device_rate)
        }
    }

    fn fill(buf: &PlaybackBuffer, frames: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; frames * buf.config().channels];
        buf.output().fill(&mut out, frames);
        out
    }

    /// Source values that are never 0, so every real sample is visible in passthrough.
    fn ramp(start: usize, n: usize) -> Vec<f32> {
        (start..start + n)
            .map(|i| 0.25 + (i % 1000) as f32 * 1e-4)
            .collect()
    }

    fn conserved(buf: &PlaybackBuffer, item: &str) -> (u64, u64, u64) {
        let (received, consumed, flushed) = buf.counters(item, 0).unwrap();
        assert!(consumed + flushed <= received);
        (received, consumed, flushed)
    }

    #[test]
    fn rejects_bad_settings() {
        for c in [
            PlaybackConfig {
                channels: 0,
                ..config(48000)
            },
            PlaybackConfig {
                capacity_samples: 0,
                ..config(48000)
            },
            PlaybackConfig {
                max_frames_per_callback: 0,
                ..config(48000)
            },
            PlaybackConfig {
                source_rate: 0,
                ..config(48000)
            },
            config(0),
        ] {
            assert!(matches!(PlaybackBuffer::new(c), Err(Error::Config { .. })));
        }
    }

    #[test]
    fn waits_for_the_threshold_then_plays_everything_in_order() {
        let mut buf = PlaybackBuffer::new(config(24000)).unwrap();
        let x = ramp(0, 5000);
        buf.push("a", 0, &x[..1000]).unwrap();
        // 70 ms at 24 kHz = 1680 samples: not yet.
        assert!(fill(&buf, 256).iter().all(|&v| v == 0.0));
        buf.push("a", 0, &x[1000..]).unwrap();
        buf.end_of_stream();
        let mut out = Vec::new();
        for _ in 0..30 {
            out.extend(fill(&buf, 256));
        }
        let played: Vec<f32> = out.into_iter().filter(|&v| v != 0.0).collect();
        assert_eq!(played.len(), 5000);
        // After the fade-in the samples are exact.
        assert_eq!(played[100..], x[100..]);
        assert_eq!(buf.take_notices(), NOTICE_STARTED | NOTICE_DRAINED);
        assert_eq!(conserved(&buf, "a"), (5000, 5000, 0));
        assert_eq!(buf.statistics().underruns, 0);
    }

    #[test]
    fn ring_wraps_around() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            capacity_samples: 1000,
            start_threshold_ms: 0,
            ..config(24000)
        })
        .unwrap();
        let x = ramp(0, 10_000);
        let mut out = Vec::new();
        for chunk in x.chunks(700) {
            buf.push("a", 0, chunk).unwrap();
            if chunk.len() == 700 {
                let r = buf.push("a", 0, &[0.5; 400]);
                assert!(matches!(r, Err(PushError::Full { free: 300 })), "{r:?}");
            }
            out.extend(fill(&buf, 700));
        }
        buf.end_of_stream();
        out.extend(fill(&buf, 700));
        let played: Vec<f32> = out.into_iter().filter(|&v| v != 0.0).collect();
        assert_eq!(played.len(), x.len());
        // The buffer runs dry after every chunk, so each end is faded: gains in (0, 1].
        let ok = played.iter().zip(&x).all(|(&p, &s)| p > 0.0 && p <= s);
        assert!(ok, "samples out of order");
    }

    #[test]
    fn underruns_fade_and_never_drop_or_repeat() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            start_threshold_ms: 10,
            ..config(24000)
        })
        .unwrap();
        let step = 1.0 / buf.output().fade_src as f32;
        let x = ramp(0, 20_000);
        let mut out = Vec::new();
        let mut pushed = 0;
        let mut k = 0usize;
        while pushed < x.len() {
            let n = [300, 50, 1000, 7, 2000][k % 5].min(x.len() - pushed);
            buf.push("a", 0, &x[pushed..pushed + n]).unwrap();
            pushed += n;
            out.extend(fill(&buf, [512, 128, 64, 1024][k % 4]));
            k += 1;
        }
        buf.end_of_stream();
        while buf.buffered_samples() > 0 {
            out.extend(fill(&buf, 512));
        }
        assert!(buf.statistics().underruns > 0);
        let played: Vec<(f32, f32)> = out
            .iter()
            .filter(|&&v| v != 0.0)
            .zip(&x)
            .map(|(&o, &s)| (o, o / s))
            .collect();
        assert_eq!(played.len(), x.len(), "every sample played exactly once");
        // The gain envelope (output / input) moves by at most one fade step per sample,
        // including into and out of each gap.
        let mut prev = 0.0f32;
        let mut j = 0;
        for &o in &out {
            if j == x.len() {
                // The end of the stream was marked: no fade-out there.
                break;
            }
            let g = if o == 0.0 {
                0.0
            } else {
                let g = o / x[j];
                j += 1;
                g
            };
            assert!((g - prev).abs() <= step * 1.001 + 1e-6, "{prev} -> {g}");
            assert!(g <= 1.0 + 1e-6);
            prev = g;
        }
        assert_eq!(conserved(&buf, "a"), (20_000, 20_000, 0));
    }

    #[test]
    fn interrupt_is_idempotent_and_exact() {
        let mut buf = PlaybackBuffer::new(config(48000)).unwrap();
        buf.push("a", 0, &ramp(0, 4800)).unwrap();
        buf.push("b", 0, &ramp(0, 4800)).unwrap();
        for _ in 0..4 {
            fill(&buf, 480);
        }
        assert!(buf.interrupt());
        assert!(!buf.interrupt(), "a pending request is not repeated");
        assert!(buf.interrupt_result().is_none());
        let out = fill(&buf, 480);
        // Faded out within the callback.
        assert!(
            out[300..].iter().all(|v| v.abs() < 1e-3),
            "{:?}",
            &out[290..310]
        );
        let head = buf.interrupt_result().unwrap();
        assert_eq!(head.item_id, "a");
        let (received, consumed, flushed) = conserved(&buf, "a");
        assert_eq!(head.played_samples, consumed);
        assert_eq!(received, consumed + flushed);
        assert!(consumed > 960 && consumed < 1100, "{consumed}");
        assert_eq!(conserved(&buf, "b"), (4800, 0, 4800));
        assert_eq!(buf.buffered_samples(), 0);
        // Asking again gives the same answer.
        assert_eq!(buf.interrupt_result().unwrap(), head);
        assert!(buf.take_notices() & NOTICE_INTERRUPTED != 0);
        // Audio pushed after an interrupt plays.
        buf.push("c", 0, &ramp(0, 4800)).unwrap();
        buf.end_of_stream();
        let out: Vec<f32> = (0..30).flat_map(|_| fill(&buf, 480)).collect();
        assert!(out.iter().any(|&v| v != 0.0));
        assert_eq!(conserved(&buf, "c"), (4800, 4800, 0));
        assert_eq!(buf.played_samples("c", 0), 4800);
    }

    #[test]
    fn an_interrupt_ends_the_item_on_a_whole_millisecond() {
        // Callbacks of every size from 37 to 300 frames put the cut anywhere in a ms; the
        // fade is stretched or shortened so that what was played is whole ms (24 kHz: 24
        // samples a ms; 48 kHz device, so 48 frames).
        for frames in (37..300).step_by(7) {
            let mut buf = PlaybackBuffer::new(config(48000)).unwrap();
            buf.push("a", 0, &ramp(0, 12_000)).unwrap();
            for _ in 0..(4800 / frames + 3) {
                fill(&buf, frames);
            }
            assert!(buf.interrupt());
            while buf.interrupt_result().is_none() {
                fill(&buf, frames);
            }
            let head = buf.interrupt_result().unwrap();
            let (_, consumed, _) = conserved(&buf, "a");
            assert_eq!(head.played_samples, consumed);
            assert_eq!(
                consumed % 24,
                0,
                "{frames}-frame callbacks: {consumed} played"
            );
        }
    }

    #[test]
    fn interrupt_with_nothing_playing_flushes_at_once() {
        let mut buf = PlaybackBuffer::new(config(48000)).unwrap();
        buf.push("a", 0, &[0.5; 100]).unwrap();
        buf.interrupt();
        fill(&buf, 64);
        let head = buf.interrupt_result().unwrap();
        assert_eq!((head.item_id.as_str(), head.played_samples), ("a", 0));
        assert_eq!(head.flushed_samples, 100);
        assert_eq!(head.audio_end_ms(), 0);
    }

    #[test]
    fn playhead_subtracts_delay_and_latency_and_never_goes_back() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            start_threshold_ms: 0,
            ..config(48000)
        })
        .unwrap();
        buf.set_output_latency_frames(960); // 20 ms = 480 source samples
        let delay = buf.output().resampler_delay_samples();
        buf.push("a", 0, &[0.5; 24_000]).unwrap();
        fill(&buf, 4800); // 2400 source samples consumed
        let (_, consumed, _) = buf.counters("a", 0).unwrap();
        assert_eq!(consumed, 2400);
        let expected = 2400 - (delay + 480.0).ceil() as u64;
        assert_eq!(buf.played_samples("a", 0), expected);
        let head = buf.playhead().unwrap();
        assert_eq!(head.played_samples, expected);
        assert_eq!(head.audio_end_ms(), expected * 1000 / 24000);
        // A larger latency does not move it back.
        buf.set_output_latency_frames(9600);
        fill(&buf, 2);
        assert_eq!(buf.played_samples("a", 0), expected);
        assert_eq!(buf.played_samples("nope", 0), 0);
    }

    #[test]
    fn multichannel_output_duplicates_mono() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            channels: 2,
            start_threshold_ms: 0,
            ..config(48000)
        })
        .unwrap();
        buf.push("a", 0, &[0.5; 2400]).unwrap();
        let out = fill(&buf, 1024);
        for f in out.chunks_exact(2) {
            assert_eq!(f[0], f[1]);
        }
        assert!(out.iter().any(|&v| v > 0.4));
    }

    #[test]
    fn oversized_or_wrong_requests_are_silent_errors() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            max_frames_per_callback: 256,
            start_threshold_ms: 0,
            ..config(48000)
        })
        .unwrap();
        buf.push("a", 0, &[0.5; 2400]).unwrap();
        assert!(fill(&buf, 257).iter().all(|&v| v == 0.0));
        let mut short = vec![1.0; 10];
        buf.output().fill(&mut short, 11);
        assert!(short.iter().all(|&v| v == 0.0));
        assert_eq!(buf.statistics().errors, 2);
        assert_eq!(buf.buffered_samples(), 2400);
    }

    #[test]
    fn tags_are_reused_once_idle() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            start_threshold_ms: 0,
            ..config(24000)
        })
        .unwrap();
        for i in 0..(3 * MAX_TAGS) {
            buf.push(&format!("item{i}"), 0, &[0.5; 10]).unwrap();
            fill(&buf, 10);
        }
        buf.push("x", 0, &[0.5; 10]).unwrap();
        for i in 0..MAX_TAGS {
            let r = buf.push(&format!("busy{i}"), 0, &[0.5; 1]);
            if i < MAX_TAGS - 1 {
                r.unwrap();
            } else {
                assert_eq!(r, Err(PushError::TooManyItems));
            }
        }
    }

    fn drain(buf: &mut PlaybackBuffer) -> Vec<PlaybackRecord> {
        let mut v = Vec::new();
        buf.drain_callback_log(&mut v);
        v
    }

    /// Fill and return the record of that callback with the output.
    fn logged_fill(buf: &mut PlaybackBuffer, frames: usize) -> (PlaybackRecord, Vec<f32>) {
        let out = fill(buf, frames);
        let records = drain(buf);
        assert_eq!(records.len(), 1);
        (records[0], out)
    }

    fn audible(r: &PlaybackRecord) -> (u32, u32) {
        (r.first_audible, r.audible_frames)
    }

    #[test]
    fn callback_log_is_off_by_default() {
        let mut buf = PlaybackBuffer::new(config(48000)).unwrap();
        assert_eq!(buf.callback_log_capacity(), 0);
        assert!(!buf.output().callback_log_enabled());
        buf.push("a", 0, &[0.5; 4800]).unwrap();
        fill(&buf, 480);
        assert!(drain(&mut buf).is_empty());
        assert_eq!(buf.statistics().callback_log_overflow, 0);
        let too_big = PlaybackConfig {
            callback_log: MAX_RECORDS + 1,
            ..config(48000)
        };
        assert!(matches!(
            PlaybackBuffer::new(too_big),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn callback_log_keeps_order_and_frame_continuity() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            callback_log: 16,
            ..config(48000)
        })
        .unwrap();
        let sizes = [100, 37, 480, 1, 8192, 256];
        let before = crate::callback_log::monotonic_ns();
        for &n in &sizes {
            fill(&buf, n);
        }
        // A refused call (too many frames) is logged too: PortAudio gave those frames.
        fill(&buf, 9000);
        let records = drain(&mut buf);
        assert_eq!(records.len(), sizes.len() + 1);
        let mut next = 0;
        let mut last_ns = before;
        for (r, &n) in records.iter().zip(sizes.iter().chain(&[9000])) {
            assert_eq!((r.first_frame, r.frames as usize), (next, n));
            assert!(r.entry_ns >= last_ns);
            assert!(r.current_time.is_nan() && r.dac_time.is_nan());
            assert_eq!(audible(r), (n as u32, 0));
            next += n as u64;
            last_ns = r.entry_ns;
        }
        assert!(drain(&mut buf).is_empty(), "drained records are gone");
    }

    #[test]
    fn callback_log_overflow_drops_the_newest_and_counts() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            callback_log: 3,
            ..config(48000)
        })
        .unwrap();
        for _ in 0..5 {
            fill(&buf, 100);
        }
        let records = drain(&mut buf);
        let firsts: Vec<u64> = records.iter().map(|r| r.first_frame).collect();
        assert_eq!(firsts, [0, 100, 200]);
        assert_eq!(buf.statistics().callback_log_overflow, 2);
        // The dropped callbacks' frames still count: first_frame is the device's index.
        fill(&buf, 100);
        assert_eq!(drain(&mut buf)[0].first_frame, 500);
    }

    /// Equal rates (no resampler delay): audible frames are exactly the non-zero output
    /// (every source value is non-zero).
    #[test]
    fn audible_frames_without_resampling() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            start_threshold_ms: 0,
            callback_log: 64,
            ..config(24000)
        })
        .unwrap();
        let nonzero = |out: &[f32]| {
            let first = out.iter().position(|&v| v != 0.0).unwrap_or(out.len());
            let n = out.iter().filter(|&&v| v != 0.0).count();
            (first as u32, n as u32)
        };
        // Silence.
        let (r, out) = logged_fill(&mut buf, 480);
        assert_eq!(audible(&r), (480, 0));
        assert_eq!(nonzero(&out), (480, 0));
        // Full buffers of audio (the first one fades in), then an underrun mid-buffer.
        buf.push("a", 0, &ramp(0, 1000)).unwrap();
        for expect in [(0, 480), (0, 480), (0, 40), (480, 0)] {
            let (r, out) = logged_fill(&mut buf, 480);
            assert_eq!(audible(&r), expect);
            assert_eq!(nonzero(&out), expect);
        }
        // Resumes at the start of a buffer, ends mid-buffer at the end of the stream.
        buf.push("a", 0, &ramp(1000, 700)).unwrap();
        buf.end_of_stream();
        for expect in [(0, 480), (0, 220), (480, 0)] {
            let (r, out) = logged_fill(&mut buf, 480);
            assert_eq!(audible(&r), expect);
            assert_eq!(nonzero(&out), expect);
        }
        // An interrupt's fade-out (3 ms = 72 samples) ends mid-buffer.
        buf.push("b", 0, &ramp(0, 4800)).unwrap();
        assert_eq!(audible(&logged_fill(&mut buf, 480).0), (0, 480));
        buf.interrupt();
        for expect in [(0, 72), (480, 0)] {
            let (r, out) = logged_fill(&mut buf, 480);
            assert_eq!(audible(&r), expect);
            assert_eq!(nonzero(&out), expect);
        }
        assert_eq!(buf.statistics().callback_log_overflow, 0);
    }

    /// 24 kHz to 48 kHz: every source sample covers 2 device frames, placed after the
    /// resampler's delay; the fade-in's middle lands where the mapping says.
    #[test]
    fn audible_frames_follow_the_resampler_delay() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            start_threshold_ms: 0,
            callback_log: 64,
            ..config(48000)
        })
        .unwrap();
        let delay = buf.output().resampler_delay_samples() * 2.0; // in device frames
        assert!(delay > 10.0, "{delay}");
        let mut out = fill(&buf, 480); // silence first
        buf.push("a", 0, &[0.5; 2400]).unwrap();
        buf.end_of_stream();
        for n in [
            480, 77, 480, 1000, 480, 480, 480, 480, 480, 480, 480, 480, 1,
        ] {
            out.extend(fill(&buf, n));
        }
        let records = drain(&mut buf);
        let spans: Vec<(u64, u64)> = records
            .iter()
            .filter(|r| r.audible_frames > 0)
            .map(|r| {
                let start = r.first_frame + u64::from(r.first_audible);
                (start, start + u64::from(r.audible_frames))
            })
            .collect();
        // One contiguous run of exactly 2 * 2400 frames, starting `delay` after the start.
        assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
        let (start, end) = (spans[0].0, spans[spans.len() - 1].1);
        assert_eq!(start, 480 + delay.ceil() as u64);
        assert_eq!(end - start, 4800);
        // Every record between the first and the last audible one is entirely audible.
        let heard: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].audible_frames > 0)
            .collect();
        assert_eq!(heard.len(), spans.len());
        for r in &records[heard[0] + 1..heard[heard.len() - 1]] {
            assert_eq!(audible(r), (0, r.frames), "{r:?}");
        }
        // Source sample 36 of the fade-in (gain 37/72) is centred on frames 72 and 73.
        let centre = (start + 72) as usize;
        let expect = 0.5 * 37.0 / 72.0;
        assert!(
            (out[centre] - expect).abs() < 0.001,
            "{} {expect}",
            out[centre]
        );
        assert!(out[(start - 40) as usize].abs() < 1e-3);
        assert!((out[(start + 2400) as usize] - 0.5).abs() < 1e-3);
    }

    #[test]
    fn two_threads_conserve_every_sample() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            capacity_samples: 4096,
            start_threshold_ms: 5,
            ..config(44100)
        })
        .unwrap();
        let out = Arc::clone(buf.output());
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let consumer = std::thread::spawn(move || {
            let mut v = vec![0.0f32; 512];
            let mut k = 0usize;
            while !stop2.load(Acquire) {
                let frames = [37, 256, 512, 1][k % 4];
                out.fill(&mut v[..frames], frames);
                k += 1;
            }
        });
        let mut items = Vec::new();
        for i in 0..200 {
            let item = format!("i{}", i / 7);
            let mut left = 300 + i * 13 % 900;
            while left > 0 {
                match buf.push(&item, 0, &vec![0.1; left.min(500)]) {
                    Ok(()) => left -= left.min(500),
                    Err(PushError::Full { .. }) => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            if i % 37 == 36 {
                buf.interrupt();
            }
            if !items.contains(&item) {
                items.push(item);
            }
        }
        buf.end_of_stream();
        while buf.buffered_samples() > 0 || buf.interrupt_pending() {
            std::thread::yield_now();
        }
        stop.store(true, Release);
        consumer.join().unwrap();
        let stats = buf.statistics();
        assert_eq!(
            stats.pushed_samples,
            stats.played_samples + stats.flushed_samples
        );
        for item in items.iter().rev().take(MAX_TAGS) {
            let (r, c, f) = buf.counters(item, 0).unwrap();
            assert_eq!(r, c + f, "{item}");
        }
    }
}
