//! Opt-in per-callback log: one fixed-size record per PortAudio callback (when it ran, on
//! CLOCK_MONOTONIC, and PortAudio's device times), in a single-producer single-consumer ring
//! that the audio thread writes and the trio side drains. For a latency bench that places
//! device frames on a common clock.
//!
//! Rules it keeps:
//! - Capacity 0 (the default) is off: the callbacks pay one branch and nothing else.
//! - The producer (the callback) never allocates, locks or blocks: slots are allocated at
//!   construction; a full ring drops the newest record and counts it in `overflow`.
//! - One producer and one consumer at a time, enforced by two flags that are tried, never
//!   waited on: a second producer's record is dropped and counted, a second consumer gets
//!   nothing. Records are published with a Release store of the write index and freed
//!   with a Release store of the read index.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

/// Largest capacity accepted, in records.
pub const MAX_RECORDS: usize = 1 << 20;

/// PortAudio's `PaStreamCallbackTimeInfo` (times in seconds on the stream's clock,
/// `Pa_GetStreamTime`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PaStreamCallbackTimeInfo {
    pub input_buffer_adc_time: f64,
    pub current_time: f64,
    pub output_buffer_dac_time: f64,
}

/// When a callback ran: CLOCK_MONOTONIC ns at entry, and PortAudio's `currentTime` and the
/// device time of the buffer (`inputBufferAdcTime` for capture, `outputBufferDacTime` for
/// playback); NaN when PortAudio gave no time info (or the call came from Python).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallbackTime {
    pub entry_ns: u64,
    pub current_time: f64,
    pub device_time: f64,
}

impl CallbackTime {
    /// Now, without PortAudio times.
    pub fn now() -> Self {
        CallbackTime {
            entry_ns: monotonic_ns(),
            current_time: f64::NAN,
            device_time: f64::NAN,
        }
    }

    /// Now, with the times of PortAudio's `time_info` (NaN if it is null); `output` picks
    /// `outputBufferDacTime`, else `inputBufferAdcTime`.
    ///
    /// # Safety
    /// `time_info` is null or points to a readable `PaStreamCallbackTimeInfo`.
    pub unsafe fn from_portaudio(time_info: *const PaStreamCallbackTimeInfo, output: bool) -> Self {
        let entry_ns = monotonic_ns();
        // SAFETY: the caller's contract: null or a valid pointer.
        match unsafe { time_info.as_ref() } {
            Some(t) => CallbackTime {
                entry_ns,
                current_time: t.current_time,
                device_time: if output {
                    t.output_buffer_dac_time
                } else {
                    t.input_buffer_adc_time
                },
            },
            None => CallbackTime {
                entry_ns,
                current_time: f64::NAN,
                device_time: f64::NAN,
            },
        }
    }
}

/// CLOCK_MONOTONIC in ns (Python's `time.monotonic_ns()` on Linux); 0 where unavailable.
#[cfg(unix)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; clock_gettime only writes it.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// CLOCK_MONOTONIC in ns; 0 where unavailable.
#[cfg(not(unix))]
pub fn monotonic_ns() -> u64 {
    0
}

/// One input callback.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CaptureRecord {
    /// Device frames of all earlier callbacks (logged or not): this buffer's first frame
    /// index in the input stream.
    pub first_frame: u64,
    pub frames: u32,
    /// CLOCK_MONOTONIC ns at callback entry.
    pub entry_ns: u64,
    /// PortAudio `currentTime` (s).
    pub current_time: f64,
    /// PortAudio `inputBufferAdcTime` (s): when the buffer's first frame was captured.
    pub adc_time: f64,
}

/// One output callback.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlaybackRecord {
    /// Device frames of all earlier callbacks (logged or not): this buffer's first frame
    /// index in the output stream.
    pub first_frame: u64,
    pub frames: u32,
    /// Offset in this buffer of the first frame of item audio (`frames` if none).
    pub first_audible: u32,
    /// Frames from `first_audible` to the last frame of item audio in this buffer, both
    /// included (0 if none); see `PlaybackOutput::fill_timed` for what counts as audio.
    pub audible_frames: u32,
    /// CLOCK_MONOTONIC ns at callback entry.
    pub entry_ns: u64,
    /// PortAudio `currentTime` (s).
    pub current_time: f64,
    /// PortAudio `outputBufferDacTime` (s): when the buffer's first frame reaches the DAC.
    pub dac_time: f64,
}

/// The ring of records.
pub struct CallbackLog<T> {
    slots: Box<[UnsafeCell<T>]>,
    /// Records published / consumed since construction.
    write: AtomicU64,
    read: AtomicU64,
    overflow: AtomicU64,
    producing: AtomicBool,
    consuming: AtomicBool,
}

// SAFETY: a slot between read and write is written only by the one producer (inside the
// `producing` flag) before it publishes `write` with Release, and read only by the one
// consumer (inside the `consuming` flag) below the `write` it loaded with Acquire; the
// producer does not reuse a slot until `read` (Release, loaded with Acquire) has passed it.
unsafe impl<T: Send> Sync for CallbackLog<T> {}

impl<T: Copy + Default> CallbackLog<T> {
    /// A ring of `capacity` records (0: off).
    pub fn new(capacity: usize) -> Self {
        CallbackLog {
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(T::default()))
                .collect(),
            write: AtomicU64::new(0),
            read: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
            producing: AtomicBool::new(false),
            consuming: AtomicBool::new(false),
        }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Records dropped: the ring was full, or another producer was inside.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Relaxed)
    }

    /// Append a record (producer). Returns whether it was kept. Never blocks or allocates.
    pub fn push(&self, record: T) -> bool {
        let cap = self.slots.len() as u64;
        if cap == 0 {
            return false;
        }
        if self.producing.swap(true, Acquire) {
            self.overflow.fetch_add(1, Relaxed);
            return false;
        }
        let w = self.write.load(Relaxed);
        let r = self.read.load(Acquire);
        let slot = self.slots.get((w % cap) as usize).filter(|_| w - r < cap);
        if let Some(slot) = slot {
            // SAFETY: see the Sync impl: slot w is free (w - r < capacity) and only this
            // producer writes it.
            unsafe { *slot.get() = record };
            self.write.store(w + 1, Release);
        } else {
            self.overflow.fetch_add(1, Relaxed);
        }
        self.producing.store(false, Release);
        slot.is_some()
    }

    /// Move every published record to `out`, oldest first (consumer). Returns how many.
    pub fn drain_into(&self, out: &mut Vec<T>) -> usize {
        let cap = self.slots.len() as u64;
        if cap == 0 || self.consuming.swap(true, Acquire) {
            return 0;
        }
        let r = self.read.load(Relaxed);
        let w = self.write.load(Acquire);
        out.reserve((w - r) as usize);
        for i in r..w {
            if let Some(slot) = self.slots.get((i % cap) as usize) {
                // SAFETY: see the Sync impl: below the write index loaded with Acquire, so
                // published, and the producer will not touch it until `read` passes it.
                out.push(unsafe { *slot.get() });
            }
        }
        self.read.store(w, Release);
        self.consuming.store(false, Release);
        (w - r) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn off_by_default_records_nothing() {
        let log = CallbackLog::<u64>::new(0);
        assert!(!log.enabled());
        assert!(!log.push(1));
        let mut out = Vec::new();
        assert_eq!(log.drain_into(&mut out), 0);
        assert_eq!(log.overflow(), 0);
    }

    #[test]
    fn keeps_order_and_drops_the_newest_when_full() {
        let log = CallbackLog::<u64>::new(4);
        for i in 0..6 {
            assert_eq!(log.push(i), i < 4);
        }
        assert_eq!(log.overflow(), 2);
        let mut out = Vec::new();
        assert_eq!(log.drain_into(&mut out), 4);
        assert_eq!(out, [0, 1, 2, 3]);
        // Wraps around.
        for i in 10..13 {
            assert!(log.push(i));
        }
        out.clear();
        log.drain_into(&mut out);
        assert_eq!(out, [10, 11, 12]);
    }

    #[test]
    fn two_threads_lose_nothing_but_what_is_counted() {
        let log = Arc::new(CallbackLog::<u64>::new(64));
        let producer = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..100_000 {
                    log.push(i);
                }
            })
        };
        let mut out = Vec::new();
        while !producer.is_finished() {
            log.drain_into(&mut out);
        }
        producer.join().unwrap();
        log.drain_into(&mut out);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(out.len() as u64 + log.overflow(), 100_000);
    }

    #[test]
    fn reads_portaudio_times_or_nan() {
        let t = PaStreamCallbackTimeInfo {
            input_buffer_adc_time: 1.0,
            current_time: 2.0,
            output_buffer_dac_time: 3.0,
        };
        // SAFETY: &t is a valid pointer; null is allowed.
        let (o, i, none) = unsafe {
            (
                CallbackTime::from_portaudio(&t, true),
                CallbackTime::from_portaudio(&t, false),
                CallbackTime::from_portaudio(std::ptr::null(), true),
            )
        };
        assert_eq!((o.current_time, o.device_time), (2.0, 3.0));
        assert_eq!((i.current_time, i.device_time), (2.0, 1.0));
        assert!(none.current_time.is_nan() && none.device_time.is_nan());
        assert!(o.entry_ns > 0 && i.entry_ns >= o.entry_ns);
    }
}
