//! The PortAudio stream callbacks, as `extern "C"` functions over the playback and capture
//! buffers. Python passes their addresses and a pointer to the buffer (`user_data`) to
//! `Pa_OpenStream` through cffi, so Python never runs on the audio thread.
//!
//! Rules they keep: never take the GIL, allocate, lock or block; never let a panic unwind
//! into C (it is caught, counted, and the output is silence); always return `paContinue`.
//! The streams are paFloat32, interleaved (not `paNonInterleaved`).
//!
//! When the buffer's callback log is on, each call reads CLOCK_MONOTONIC first and hands
//! it, with PortAudio's `time_info` (NaN if null), to the buffer, which logs one record.

use crate::callback_log::{CallbackTime, PaStreamCallbackTimeInfo};
use crate::capture::CaptureInput;
use crate::playback::PlaybackOutput;
use std::ffi::{c_int, c_ulong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `paContinue`.
pub const PA_CONTINUE: c_int = 0;

/// `PaStreamCallback` for an output stream over a [`PlaybackOutput`].
///
/// # Safety
/// `user_data` must point to a live `PlaybackOutput` for as long as the stream can call
/// back, and `output` to `frames * channels` writable f32 (paFloat32, interleaved, with the
/// buffer's channel count), as PortAudio guarantees for such a stream; `time_info` null or
/// a readable `PaStreamCallbackTimeInfo`.
#[allow(clippy::useless_conversion)] // c_ulong is u32 on Windows
pub unsafe extern "C" fn realtalk_output_callback(
    _input: *const c_void,
    output: *mut c_void,
    frames: c_ulong,
    time_info: *const PaStreamCallbackTimeInfo,
    status_flags: c_ulong,
    user_data: *mut c_void,
) -> c_int {
    if user_data.is_null() || output.is_null() {
        return PA_CONTINUE;
    }
    // SAFETY: the caller's contract: user_data is a live PlaybackOutput.
    let playback = unsafe { &*(user_data as *const PlaybackOutput) };
    let time = if playback.callback_log_enabled() {
        // SAFETY: the caller's contract: time_info is null or valid.
        Some(unsafe { CallbackTime::from_portaudio(time_info, true) })
    } else {
        None
    };
    let frames = frames as usize;
    let len = frames.saturating_mul(playback.channels());
    // SAFETY: the caller's contract: output holds frames * channels f32.
    let out = unsafe { std::slice::from_raw_parts_mut(output.cast::<f32>(), len) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        playback.note_status(u64::from(status_flags));
        playback.fill_timed(out, frames, time);
    }));
    if result.is_err() {
        out.fill(0.0);
        playback.note_panic();
    }
    PA_CONTINUE
}

/// `PaStreamCallback` for an input stream over a [`CaptureInput`].
///
/// # Safety
/// `user_data` must point to a live `CaptureInput` for as long as the stream can call
/// back, and `input` to `frames * channels` readable f32 (paFloat32, interleaved, with the
/// buffer's channel count); `time_info` null or a readable `PaStreamCallbackTimeInfo`.
#[allow(clippy::useless_conversion)] // c_ulong is u32 on Windows
pub unsafe extern "C" fn realtalk_input_callback(
    input: *const c_void,
    _output: *mut c_void,
    frames: c_ulong,
    time_info: *const PaStreamCallbackTimeInfo,
    status_flags: c_ulong,
    user_data: *mut c_void,
) -> c_int {
    if user_data.is_null() || input.is_null() {
        return PA_CONTINUE;
    }
    // SAFETY: the caller's contract: user_data is a live CaptureInput.
    let capture = unsafe { &*(user_data as *const CaptureInput) };
    let time = if capture.callback_log_enabled() {
        // SAFETY: the caller's contract: time_info is null or valid.
        Some(unsafe { CallbackTime::from_portaudio(time_info, false) })
    } else {
        None
    };
    let len = (frames as usize).saturating_mul(capture.channels());
    // SAFETY: the caller's contract: input holds frames * channels f32.
    let samples = unsafe { std::slice::from_raw_parts(input.cast::<f32>(), len) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        capture.note_status(u64::from(status_flags));
        capture.write_timed(samples, time);
    }));
    if result.is_err() {
        capture.note_panic();
    }
    PA_CONTINUE
}

/// Address of [`realtalk_output_callback`], for cffi.
pub fn output_callback_address() -> usize {
    realtalk_output_callback as *const () as usize
}

/// Address of [`realtalk_input_callback`], for cffi.
pub fn input_callback_address() -> usize {
    realtalk_input_callback as *const () as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureBuffer;
    use crate::playback::{PlaybackBuffer, PlaybackConfig};
    use std::sync::Arc;

    #[test]
    fn output_callback_fills_through_the_pointer() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            channels: 2,
            start_threshold_ms: 0,
            ..PlaybackConfig::new(24000)
        })
        .unwrap();
        buf.push("a", 0, &[0.5; 480]).unwrap();
        buf.end_of_stream();
        let mut out = vec![f32::NAN; 2 * 480];
        let ptr = Arc::as_ptr(buf.output()) as *mut c_void;
        // SAFETY: ptr is a live PlaybackOutput; out holds 480 stereo frames.
        let rc = unsafe {
            realtalk_output_callback(
                std::ptr::null(),
                out.as_mut_ptr().cast(),
                480,
                std::ptr::null(),
                4,
                ptr,
            )
        };
        assert_eq!(rc, PA_CONTINUE);
        assert_eq!(out[2 * 479], 0.5);
        let s = buf.statistics();
        assert_eq!((s.callbacks, s.output_underflows), (1, 1));
        assert_ne!(output_callback_address(), 0);
    }

    fn times(adc: f64, now: f64, dac: f64) -> PaStreamCallbackTimeInfo {
        PaStreamCallbackTimeInfo {
            input_buffer_adc_time: adc,
            current_time: now,
            output_buffer_dac_time: dac,
        }
    }

    #[test]
    fn output_callback_logs_portaudio_times() {
        let mut buf = PlaybackBuffer::new(PlaybackConfig {
            start_threshold_ms: 0,
            callback_log: 8,
            ..PlaybackConfig::new(24000)
        })
        .unwrap();
        buf.push("a", 0, &[0.5; 300]).unwrap();
        let mut out = vec![0.0f32; 480];
        let ptr = Arc::as_ptr(buf.output()) as *mut c_void;
        let t = times(1.0, 2.0, 2.5);
        for info in [&t as *const _, std::ptr::null()] {
            // SAFETY: ptr is a live PlaybackOutput; out holds 480 mono frames; info is
            // null or valid.
            unsafe {
                realtalk_output_callback(
                    std::ptr::null(),
                    out.as_mut_ptr().cast(),
                    480,
                    info,
                    0,
                    ptr,
                )
            };
        }
        let mut records = Vec::new();
        buf.drain_callback_log(&mut records);
        assert_eq!(records.len(), 2);
        let r = records[0];
        assert_eq!((r.first_frame, r.frames), (0, 480));
        assert_eq!((r.current_time, r.dac_time), (2.0, 2.5));
        assert_eq!((r.first_audible, r.audible_frames), (0, 300));
        let r = records[1];
        assert_eq!(
            (r.first_frame, r.first_audible, r.audible_frames),
            (480, 480, 0)
        );
        assert!(r.current_time.is_nan() && r.dac_time.is_nan());
        assert!(r.entry_ns >= records[0].entry_ns && records[0].entry_ns > 0);
    }

    #[test]
    fn input_callback_logs_portaudio_times() {
        let mut buf = CaptureBuffer::with_callback_log(1, 100, 8).unwrap();
        let x = [0.25f32; 40];
        let ptr = Arc::as_ptr(buf.input()) as *mut c_void;
        let t = times(0.75, 1.0, 1.5);
        for info in [&t as *const _, std::ptr::null()] {
            // SAFETY: ptr is a live CaptureInput; x holds 40 mono frames; info is null or
            // valid.
            unsafe {
                realtalk_input_callback(x.as_ptr().cast(), std::ptr::null_mut(), 40, info, 0, ptr)
            };
        }
        let mut records = Vec::new();
        buf.drain_callback_log(&mut records);
        assert_eq!(records.len(), 2);
        let r = records[0];
        assert_eq!((r.first_frame, r.frames), (0, 40));
        assert_eq!((r.current_time, r.adc_time), (1.0, 0.75));
        assert_eq!((records[1].first_frame, records[1].frames), (40, 40));
        assert!(records[1].adc_time.is_nan());
    }

    #[test]
    fn input_callback_writes_through_the_pointer() {
        let mut buf = CaptureBuffer::new(1, 100).unwrap();
        let x = [0.25f32; 40];
        let ptr = Arc::as_ptr(buf.input()) as *mut c_void;
        // SAFETY: ptr is a live CaptureInput; x holds 40 mono frames.
        let rc = unsafe {
            realtalk_input_callback(
                x.as_ptr().cast(),
                std::ptr::null_mut(),
                40,
                std::ptr::null(),
                2,
                ptr,
            )
        };
        assert_eq!(rc, PA_CONTINUE);
        let mut out = [0.0; 50];
        assert_eq!(buf.read_into(&mut out), 40);
        assert_eq!(buf.statistics().input_overflows, 1);
        assert_ne!(input_callback_address(), 0);
    }
}
