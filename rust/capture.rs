//! Capture ring between the input callback (producer) and the trio side (consumer).
//!
//! Rules it keeps:
//! - One producer ([`CaptureInput::write`], the PortAudio input callback) and one consumer
//!   ([`CaptureBuffer`], methods on `&mut self`). A second writer entering `write` while
//!   another is inside is refused and counted, never a data race.
//! - The producer never allocates, locks or blocks: the ring is allocated at construction.
//! - Overflow is never silent: frames that do not fit are dropped (the newest ones) and
//!   counted in `overflow_frames`.

use crate::callback_log::{CallbackLog, CallbackTime, CaptureRecord, MAX_RECORDS};
use crate::error::{Error, Result};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::*};
use std::sync::Arc;

/// Counters since construction; a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStatistics {
    pub callbacks: u64,
    pub frames_in: u64,
    pub frames_read: u64,
    pub overflow_frames: u64,
    pub overflows: u64,
    pub available_frames: u64,
    /// Callbacks refused: re-entered, a wrong length, or after a panic.
    pub errors: u64,
    pub panics: u64,
    pub input_overflows: u64,
    pub input_underflows: u64,
    /// Callback-log records dropped because the log was full.
    pub callback_log_overflow: u64,
    /// Wake-up bytes the notify descriptor refused (other than a full pipe).
    pub notify_failures: u64,
}

/// The producer side, shared with the input callback.
pub struct CaptureInput {
    channels: usize,
    ring: Box<[UnsafeCell<f32>]>,
    /// Samples (frames * channels) written / read since construction.
    write_pos: AtomicU64,
    read_pos: AtomicU64,
    busy: AtomicBool,
    callbacks: AtomicU64,
    overflow_frames: AtomicU64,
    overflows: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    input_overflows: AtomicU64,
    input_underflows: AtomicU64,
    log: CallbackLog<CaptureRecord>,
    /// Device frames of every callback since construction (counted while the log is on).
    log_frames: AtomicU64,
    /// A non-blocking file descriptor (a pipe's write end) that gets one byte after every
    /// write that kept frames, so that the reader can wait for audio instead of polling;
    /// -1: none.
    notify_fd: AtomicI32,
    notify_failures: AtomicU64,
}

// SAFETY: ring cells between read_pos and write_pos are written only by the one producer
// (inside the `busy` guard) before it publishes write_pos with Release, and read only by
// the one consumer (`CaptureBuffer`, `&mut self`) below the write_pos it loaded with
// Acquire; the producer does not reuse a cell until read_pos (Release) has passed it.
unsafe impl Sync for CaptureInput {}
// SAFETY: owned plain data and atomics.
unsafe impl Send for CaptureInput {}

impl CaptureInput {
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Append interleaved frames; the frames that do not fit are dropped and counted.
    /// Returns the frames kept. Logged (when the log is on) with the entry time and NaN
    /// device times.
    pub fn write(&self, samples: &[f32]) -> usize {
        self.write_timed(samples, None)
    }

    /// [`write`](Self::write) for a PortAudio callback: `time` (taken at callback entry)
    /// goes to the callback log when it is on (`None`: now, NaN device times). Every call
    /// is logged, refused ones included, with `frames` = whole frames given.
    pub fn write_timed(&self, samples: &[f32], time: Option<CallbackTime>) -> usize {
        if self.log.enabled() {
            let frames = samples.len() / self.channels;
            let first_frame = self.log_frames.fetch_add(frames as u64, Relaxed);
            let time = time.unwrap_or_else(CallbackTime::now);
            let kept = self.write_frames(samples);
            self.log.push(CaptureRecord {
                first_frame,
                frames: u32::try_from(frames).unwrap_or(u32::MAX),
                entry_ns: time.entry_ns,
                current_time: time.current_time,
                adc_time: time.device_time,
            });
            kept
        } else {
            self.write_frames(samples)
        }
    }

    /// Whether callbacks are logged (capacity > 0).
    #[inline]
    pub fn callback_log_enabled(&self) -> bool {
        self.log.enabled()
    }

    fn write_frames(&self, samples: &[f32]) -> usize {
        self.callbacks.fetch_add(1, Relaxed);
        let ch = self.channels;
        if !samples.len().is_multiple_of(ch) || self.busy.swap(true, Acquire) {
            self.errors.fetch_add(1, Relaxed);
            return 0;
        }
        let cap = self.ring.len() as u64;
        let w = self.write_pos.load(Relaxed);
        let r = self.read_pos.load(Acquire);
        let free_frames = ((cap - (w - r)) / ch as u64) as usize;
        let frames = samples.len() / ch;
        let keep = frames.min(free_frames);
        if keep < frames {
            self.overflow_frames
                .fetch_add((frames - keep) as u64, Relaxed);
            self.overflows.fetch_add(1, Relaxed);
        }
        for (i, &x) in samples[..keep * ch].iter().enumerate() {
            if let Some(cell) = self.ring.get(((w + i as u64) % cap) as usize) {
                // SAFETY: see the Sync impl: this cell is free (at or past write_pos, below
                // read_pos + capacity) and only this producer writes it.
                unsafe { *cell.get() = x };
            }
        }
        self.write_pos.store(w + (keep * ch) as u64, Release);
        self.busy.store(false, Release);
        if keep > 0 {
            self.notify();
        }
        keep
    }

    /// One byte to the notify descriptor, if any. Never blocks (the descriptor is
    /// non-blocking; a full pipe already means "there is audio"); other failures are
    /// counted.
    fn notify(&self) {
        let fd = self.notify_fd.load(Acquire);
        if fd < 0 {
            return;
        }
        #[cfg(unix)]
        {
            let byte = 1u8;
            // SAFETY: writes one byte from a live local; `fd` is whatever the owner set,
            // and a stale or wrong descriptor makes write fail, which is counted.
            let wrote = unsafe { libc::write(fd, std::ptr::from_ref(&byte).cast(), 1) };
            if wrote < 0 {
                let full = std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN);
                if !full {
                    self.notify_failures.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Set (or with -1 clear) the descriptor that [`write`](Self::write) signals. The
    /// owner must clear it before closing the descriptor, with the stream stopped.
    pub fn set_notify_fd(&self, fd: i32) {
        self.notify_fd.store(fd, Release);
    }

    /// Count a panic caught around `write` (by the C callback).
    pub fn note_panic(&self) {
        self.panics.fetch_add(1, Relaxed);
    }

    /// Count PortAudio's input status flags for one callback.
    pub fn note_status(&self, flags: u64) {
        if flags & crate::playback::PA_INPUT_OVERFLOW != 0 {
            self.input_overflows.fetch_add(1, Relaxed);
        }
        if flags & crate::playback::PA_INPUT_UNDERFLOW != 0 {
            self.input_underflows.fetch_add(1, Relaxed);
        }
    }
}

/// The consumer handle: read captured frames.
pub struct CaptureBuffer {
    shared: Arc<CaptureInput>,
    frames_read: u64,
}

impl std::fmt::Debug for CaptureBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureBuffer")
            .field("channels", &self.shared.channels)
            .field("available", &self.available_frames())
            .finish_non_exhaustive()
    }
}

impl CaptureBuffer {
    /// A ring of `capacity_frames` frames of `channels` interleaved channels.
    ///
    /// Errors (`Error::Config`): channels outside 1..=32, capacity 0 or above 2**30 samples.
    pub fn new(channels: usize, capacity_frames: usize) -> Result<Self> {
        Self::with_callback_log(channels, capacity_frames, 0)
    }

    /// As [`new`](Self::new), with a per-callback log of `callback_log` records (0: off).
    ///
    /// Errors (`Error::Config`): as `new`, or a log above `MAX_RECORDS`.
    pub fn with_callback_log(
        channels: usize,
        capacity_frames: usize,
        callback_log: usize,
    ) -> Result<Self> {
        if callback_log > MAX_RECORDS {
            return Err(Error::config(format!(
                "callback_log must be 0..={MAX_RECORDS} records, got {callback_log}"
            )));
        }
        if channels == 0 || channels > 32 {
            return Err(Error::config(format!(
                "channels must be 1..=32, got {channels}"
            )));
        }
        let len = capacity_frames.saturating_mul(channels);
        if capacity_frames == 0 || len > (1 << 30) {
            return Err(Error::config(format!(
                "capacity must be 1 frame to 2**30 samples, got {capacity_frames} frames"
            )));
        }
        let z = || AtomicU64::new(0);
        Ok(CaptureBuffer {
            shared: Arc::new(CaptureInput {
                channels,
                ring: (0..len).map(|_| UnsafeCell::new(0.0)).collect(),
                write_pos: z(),
                read_pos: z(),
                busy: AtomicBool::new(false),
                callbacks: z(),
                overflow_frames: z(),
                overflows: z(),
                errors: z(),
                panics: z(),
                input_overflows: z(),
                input_underflows: z(),
                log: CallbackLog::new(callback_log),
                log_frames: z(),
                notify_fd: AtomicI32::new(-1),
                notify_failures: z(),
            }),
            frames_read: 0,
        })
    }

    /// The producer side, for the input callback.
    pub fn input(&self) -> &Arc<CaptureInput> {
        &self.shared
    }

    pub fn channels(&self) -> usize {
        self.shared.channels
    }

    pub fn capacity_frames(&self) -> usize {
        self.shared.ring.len() / self.shared.channels
    }

    pub fn available_frames(&self) -> usize {
        let w = self.shared.write_pos.load(Acquire);
        let r = self.shared.read_pos.load(Relaxed);
        ((w - r) / self.shared.channels as u64) as usize
    }

    /// Move up to `out.len() / channels` frames into `out`; returns the frames read.
    pub fn read_into(&mut self, out: &mut [f32]) -> usize {
        let sh = &self.shared;
        let ch = sh.channels;
        let frames = self.available_frames().min(out.len() / ch);
        let r = sh.read_pos.load(Relaxed);
        let cap = sh.ring.len() as u64;
        for (i, o) in out[..frames * ch].iter_mut().enumerate() {
            if let Some(cell) = sh.ring.get(((r + i as u64) % cap) as usize) {
                // SAFETY: below the write_pos loaded with Acquire in available_frames: the
                // producer wrote it and will not touch it until read_pos passes it.
                *o = unsafe { *cell.get() };
            }
        }
        sh.read_pos.store(r + (frames * ch) as u64, Release);
        self.frames_read += frames as u64;
        frames
    }

    pub fn statistics(&self) -> CaptureStatistics {
        let sh = &self.shared;
        CaptureStatistics {
            callbacks: sh.callbacks.load(Relaxed),
            frames_in: sh.write_pos.load(Acquire) / sh.channels as u64,
            frames_read: self.frames_read,
            overflow_frames: sh.overflow_frames.load(Relaxed),
            overflows: sh.overflows.load(Relaxed),
            available_frames: self.available_frames() as u64,
            errors: sh.errors.load(Relaxed),
            panics: sh.panics.load(Relaxed),
            input_overflows: sh.input_overflows.load(Relaxed),
            input_underflows: sh.input_underflows.load(Relaxed),
            callback_log_overflow: sh.log.overflow(),
            notify_failures: sh.notify_failures.load(Relaxed),
        }
    }

    /// Move the callback log's records since the last drain to `out`, oldest first.
    /// Returns how many.
    pub fn drain_callback_log(&mut self, out: &mut Vec<CaptureRecord>) -> usize {
        self.shared.log.drain_into(out)
    }

    /// Capacity of the callback log in records (0: off).
    pub fn callback_log_capacity(&self) -> usize {
        self.shared.log.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_and_keeps_order() {
        let mut buf = CaptureBuffer::new(2, 100).unwrap();
        let mut next = 0.0f32;
        let mut expect = 0.0f32;
        let mut out = vec![0.0; 2 * 70];
        for k in 0..50 {
            let frames = [30, 70, 1, 55][k % 4];
            let x: Vec<f32> = (0..frames * 2)
                .map(|_| {
                    next += 1.0;
                    next
                })
                .collect();
            assert_eq!(buf.input().write(&x), frames);
            let n = buf.read_into(&mut out);
            for &v in &out[..n * 2] {
                expect += 1.0;
                assert_eq!(v, expect);
            }
        }
        assert_eq!(buf.statistics().overflow_frames, 0);
    }

    #[test]
    fn overflow_drops_the_newest_and_counts_them() {
        let mut buf = CaptureBuffer::new(1, 10).unwrap();
        assert_eq!(buf.input().write(&[1.0; 8]), 8);
        assert_eq!(buf.input().write(&[2.0; 5]), 2);
        let s = buf.statistics();
        assert_eq!(
            (s.overflow_frames, s.overflows, s.available_frames),
            (3, 1, 10)
        );
        let mut out = [0.0; 16];
        assert_eq!(buf.read_into(&mut out), 10);
        assert_eq!(
            out[..10],
            [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
        );
    }

    #[test]
    fn rejects_partial_frames_and_bad_settings() {
        let buf = CaptureBuffer::new(2, 10).unwrap();
        assert_eq!(buf.input().write(&[1.0; 3]), 0);
        assert_eq!(buf.statistics().errors, 1);
        assert!(CaptureBuffer::new(0, 10).is_err());
        assert!(CaptureBuffer::new(1, 0).is_err());
    }

    fn drain(buf: &mut CaptureBuffer) -> Vec<CaptureRecord> {
        let mut v = Vec::new();
        buf.drain_callback_log(&mut v);
        v
    }

    #[test]
    fn callback_log_is_off_by_default() {
        let mut buf = CaptureBuffer::new(1, 100).unwrap();
        assert_eq!(buf.callback_log_capacity(), 0);
        assert!(!buf.input().callback_log_enabled());
        buf.input().write(&[0.5; 10]);
        assert!(drain(&mut buf).is_empty());
        assert!(CaptureBuffer::with_callback_log(1, 100, MAX_RECORDS + 1).is_err());
    }

    #[test]
    fn callback_log_counts_every_frame_given() {
        let mut buf = CaptureBuffer::with_callback_log(2, 100, 3).unwrap();
        let before = crate::callback_log::monotonic_ns();
        // 60 + 70 frames overflow the 100-frame ring: the log still counts all of them.
        for frames in [60, 70, 5, 1, 2] {
            buf.input().write(&vec![0.5; 2 * frames]);
        }
        let records = drain(&mut buf);
        let got: Vec<(u64, u32)> = records.iter().map(|r| (r.first_frame, r.frames)).collect();
        assert_eq!(got, [(0, 60), (60, 70), (130, 5)]);
        assert!(records.windows(2).all(|w| w[0].entry_ns <= w[1].entry_ns));
        assert!(records[0].entry_ns >= before);
        assert!(records[0].current_time.is_nan() && records[0].adc_time.is_nan());
        let s = buf.statistics();
        assert_eq!(
            (s.callback_log_overflow, s.overflow_frames),
            (2, 30 + 5 + 1 + 2)
        );
        buf.input().write(&[0.5; 8]);
        assert_eq!(drain(&mut buf)[0].first_frame, 138);
    }

    #[test]
    fn two_threads_lose_nothing_but_what_is_counted() {
        let mut buf = CaptureBuffer::new(1, 256).unwrap();
        let input = Arc::clone(buf.input());
        let producer = std::thread::spawn(move || {
            let mut n = 0.0f32;
            for _ in 0..2000 {
                let x: Vec<f32> = (0..64)
                    .map(|_| {
                        n += 1.0;
                        n
                    })
                    .collect();
                input.write(&x);
            }
        });
        let mut out = vec![0.0; 100];
        let mut got = 0u64;
        let mut last = 0.0f32;
        while !producer.is_finished() || buf.available_frames() > 0 {
            let n = buf.read_into(&mut out);
            for &v in &out[..n] {
                assert!(v > last);
                last = v;
            }
            got += n as u64;
        }
        producer.join().unwrap();
        got += buf.read_into(&mut out) as u64;
        let s = buf.statistics();
        assert_eq!(got + s.overflow_frames, 2000 * 64);
    }
}
