use super::buffer::input;
use super::callback_log;
use super::error::{audio_format_error, to_py, Positions};
use crate::capture::CaptureBuffer;
use crate::device;
use crate::error::Error;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The capture ring; see `_core.pyi`.
#[pyclass(module = "realtalk.core", name = "CaptureBuffer")]
pub struct PyCaptureBuffer {
    inner: CaptureBuffer,
    sample_rate: u32,
}

#[pymethods]
impl PyCaptureBuffer {
    #[new]
    #[pyo3(signature = (*, channels = 1, capacity_s = 10.0, sample_rate = 48000, callback_log = 0))]
    fn new(
        py: Python<'_>,
        channels: i64,
        capacity_s: f64,
        sample_rate: i64,
        callback_log: i64,
    ) -> PyResult<Self> {
        let log = callback_log::capacity(py, callback_log)?;
        let made = (|| {
            if !(1..=192_000).contains(&sample_rate) {
                return Err(Error::config(format!(
                    "sample_rate must be 1..=192000, not {sample_rate}"
                )));
            }
            if !(1..=32).contains(&channels) {
                return Err(Error::config(format!(
                    "channels must be 1..=32, not {channels}"
                )));
            }
            let frames = capacity_s * sample_rate as f64;
            if !(capacity_s.is_finite() && frames >= 1.0 && frames <= (1u64 << 30) as f64) {
                return Err(Error::config(format!(
                    "capacity_s must be positive and at most 2**30 samples, not {capacity_s}"
                )));
            }
            CaptureBuffer::with_callback_log(channels as usize, frames as usize, log)
        })();
        let inner = made.map_err(|e| to_py(py, e, Positions::Bytes))?;
        Ok(PyCaptureBuffer {
            inner,
            sample_rate: sample_rate as u32,
        })
    }

    #[pyo3(signature = (max_frames = None))]
    fn read<'py>(
        &mut self,
        py: Python<'py>,
        max_frames: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let available = self.inner.available_frames();
        let frames = match max_frames {
            None => available,
            Some(n) if n >= 0 => available.min(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(n) => {
                return Err(to_py(
                    py,
                    Error::config(format!("max_frames must be at least 0, not {n}")),
                    Positions::Bytes,
                ))
            }
        };
        let ch = self.inner.channels();
        let mut out = vec![0.0f32; frames * ch];
        let got = self.inner.read_into(&mut out);
        out.truncate(got * ch);
        let array = PyArray1::from_vec(py, out);
        if ch == 1 {
            Ok(array.into_any())
        } else {
            Ok(array.reshape([got, ch])?.into_any())
        }
    }

    /// Run the input callback's logic from Python (tests, or feeding from a file).
    fn write(&self, frames: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = frames.py();
        let data = input(frames, "frames")?;
        let ch = self.inner.channels();
        match data.shape.as_deref() {
            None if ch == 1 => {}
            Some([_, c]) if *c == ch => {}
            other => {
                return Err(audio_format_error(
                    py,
                    format!(
                        "frames: expected shape (frames,) for mono or (frames, {ch}), got {:?}",
                        other.unwrap_or(&[])
                    ),
                ))
            }
        }
        let samples = data.as_f32(py, "frames")?;
        if !samples.len().is_multiple_of(ch) {
            return Err(audio_format_error(
                py,
                format!("frames: not a whole number of {ch}-channel frames"),
            ));
        }
        Ok(self.inner.input().write(&samples))
    }

    #[getter]
    fn available(&self) -> usize {
        self.inner.available_frames()
    }

    #[getter]
    fn channels(&self) -> usize {
        self.inner.channels()
    }

    #[getter]
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    #[getter]
    fn capacity_frames(&self) -> usize {
        self.inner.capacity_frames()
    }

    fn statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.statistics();
        let d = PyDict::new(py);
        for (k, v) in [
            ("callbacks", s.callbacks),
            ("frames_in", s.frames_in),
            ("frames_read", s.frames_read),
            ("overflow_frames", s.overflow_frames),
            ("overflows", s.overflows),
            ("available_frames", s.available_frames),
            ("errors", s.errors),
            ("panics", s.panics),
            ("input_overflows", s.input_overflows),
            ("input_underflows", s.input_underflows),
            ("callback_log_overflow", s.callback_log_overflow),
            ("notify_failures", s.notify_failures),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn drain_callback_log<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut records = Vec::new();
        self.inner.drain_callback_log(&mut records);
        callback_log::capture_records(py, &records)
    }

    #[getter]
    fn callback_log(&self) -> usize {
        self.inner.callback_log_capacity()
    }

    /// Signal ``fd`` (one byte, non-blocking) after every callback that brought frames;
    /// -1 stops. See the stub.
    fn set_notify_fd(&self, py: Python<'_>, fd: i32) -> PyResult<()> {
        if fd < -1 {
            let message = format!("notify fd must be a descriptor or -1, got {fd}");
            return Err(crate::py::error::to_py(
                py,
                crate::error::Error::config(message),
                crate::py::error::Positions::Bytes,
            ));
        }
        self.inner.input().set_notify_fd(fd);
        Ok(())
    }

    #[staticmethod]
    fn callback_address() -> usize {
        device::input_callback_address()
    }

    #[getter]
    fn user_data(&self) -> usize {
        std::sync::Arc::as_ptr(self.inner.input()) as usize
    }

    fn __repr__(&self) -> String {
        format!(
            "CaptureBuffer(channels={}, sample_rate={}) available={} frames",
            self.inner.channels(),
            self.sample_rate,
            self.inner.available_frames()
        )
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCaptureBuffer>()
}
