//! The PortAudio stream callbacks, as `extern "C"` functions over the playback and capture
//! buffers. Python passes their addresses and a pointer to the buffer (`user_data`) to
//! `Pa_OpenStream` through cffi, so Python never runs on the audio thread.
//!
//! Rules they keep: never take the GIL, allocate, lock or block; never let a panic unwind
//! into C (it is caught, counted, and the output is silence); always return `paContinue`.
//! The streams are paFloat32, interleaved (not `paNonInterleaved`).

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
/// buffer's channel count), as PortAudio guarantees for such a stream.
#[allow(clippy::useless_conversion)] // c_ulong is u32 on Windows
pub unsafe extern "C" fn realtalk_output_callback(
    _input: *const c_void,
    output: *mut c_void,
    frames: c_ulong,
    _time_info: *const c_void,
    status_flags: c_ulong,
    user_data: *mut c_void,
) -> c_int {
    if user_data.is_null() || output.is_null() {
        return PA_CONTINUE;
    }
    // SAFETY: the caller's contract: user_data is a live PlaybackOutput.
    let playback = unsafe { &*(user_data as *const PlaybackOutput) };
    let frames = frames as usize;
    let len = frames.saturating_mul(playback.channels());
    // SAFETY: the caller's contract: output holds frames * channels f32.
    let out = unsafe { std::slice::from_raw_parts_mut(output.cast::<f32>(), len) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        playback.note_status(u64::from(status_flags));
        playback.fill(out, frames);
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
/// buffer's channel count).
#[allow(clippy::useless_conversion)] // c_ulong is u32 on Windows
pub unsafe extern "C" fn realtalk_input_callback(
    input: *const c_void,
    _output: *mut c_void,
    frames: c_ulong,
    _time_info: *const c_void,
    status_flags: c_ulong,
    user_data: *mut c_void,
) -> c_int {
    if user_data.is_null() || input.is_null() {
        return PA_CONTINUE;
    }
    // SAFETY: the caller's contract: user_data is a live CaptureInput.
    let capture = unsafe { &*(user_data as *const CaptureInput) };
    let len = (frames as usize).saturating_mul(capture.channels());
    // SAFETY: the caller's contract: input holds frames * channels f32.
    let samples = unsafe { std::slice::from_raw_parts(input.cast::<f32>(), len) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        capture.note_status(u64::from(status_flags));
        capture.write(samples);
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
