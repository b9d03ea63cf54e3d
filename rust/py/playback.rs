use super::buffer::{input, Kind};
use super::callback_log;
use super::error::{audio_format_error, to_py, Positions};
use crate::device;
use crate::error::Error;
use crate::playback::{self, PlaybackBuffer, PlaybackConfig, Playhead, PushError};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Where playback of one item stands; see `_core.pyi`.
#[pyclass(frozen, eq, module = "realtalk.core", name = "Playhead")]
#[derive(PartialEq, Eq)]
pub struct PyPlayhead {
    inner: Playhead,
}

#[pymethods]
impl PyPlayhead {
    #[getter]
    fn item_id(&self) -> &str {
        &self.inner.item_id
    }

    #[getter]
    fn content_index(&self) -> u32 {
        self.inner.content_index
    }

    #[getter]
    fn played_samples(&self) -> u64 {
        self.inner.played_samples
    }

    #[getter]
    fn received_samples(&self) -> u64 {
        self.inner.received_samples
    }

    #[getter]
    fn flushed_samples(&self) -> u64 {
        self.inner.flushed_samples
    }

    #[getter]
    fn sample_rate(&self) -> u32 {
        self.inner.source_rate
    }

    #[getter]
    fn audio_end_ms(&self) -> u64 {
        self.inner.audio_end_ms()
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "Playhead(item_id={:?}, content_index={}, played_samples={}, audio_end_ms={}, \
             received_samples={}, flushed_samples={})",
            p.item_id,
            p.content_index,
            p.played_samples,
            p.audio_end_ms(),
            p.received_samples,
            p.flushed_samples
        )
    }
}

fn wrap(p: Option<Playhead>) -> Option<PyPlayhead> {
    p.map(|inner| PyPlayhead { inner })
}

/// The playback jitter buffer; see `_core.pyi`.
#[pyclass(module = "realtalk.core", name = "PlaybackBuffer")]
pub struct PyPlaybackBuffer {
    inner: PlaybackBuffer,
    last_interrupt: Option<Playhead>,
}

fn positive(name: &str, value: i64, max: i64) -> Result<i64, Error> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::config(format!(
            "{name} must be 1..={max}, not {value}"
        )))
    }
}

fn capacity(seconds: f64, rate: u32) -> Result<usize, Error> {
    let n = seconds * f64::from(rate);
    if seconds.is_finite() && seconds > 0.0 && n >= 1.0 && n <= (1u64 << 30) as f64 {
        Ok(n as usize)
    } else {
        Err(Error::config(format!(
            "capacity_s must be positive and at most 2**30 samples, not {seconds}"
        )))
    }
}

fn content_index(py: Python<'_>, value: i64) -> PyResult<u32> {
    u32::try_from(value).map_err(|_| {
        to_py(
            py,
            Error::config(format!("content_index must be 0..2**32, not {value}")),
            Positions::Bytes,
        )
    })
}

fn push_error(e: PushError) -> PyErr {
    PyBufferError::new_err(e.to_string())
}

#[pymethods]
impl PyPlaybackBuffer {
    #[new]
    #[pyo3(signature = (device_rate, *, channels = 1, source_rate = 24000, start_threshold_ms = 70,
                        capacity_s = 60.0, max_frames_per_callback = 8192, callback_log = 0))]
    #[allow(clippy::too_many_arguments)] // the Python keywords
    fn new(
        py: Python<'_>,
        device_rate: i64,
        channels: i64,
        source_rate: i64,
        start_threshold_ms: i64,
        capacity_s: f64,
        max_frames_per_callback: i64,
        callback_log: i64,
    ) -> PyResult<Self> {
        let log = callback_log::capacity(py, callback_log)?;
        let made = (|| {
            let device_rate = positive("device_rate", device_rate, 192_000)? as u32;
            let source_rate = positive("source_rate", source_rate, 192_000)? as u32;
            if !(0..=60_000).contains(&start_threshold_ms) {
                return Err(Error::config(format!(
                    "start_threshold_ms must be 0..=60000, not {start_threshold_ms}"
                )));
            }
            let config = PlaybackConfig {
                device_rate,
                channels: positive("channels", channels, 32)? as usize,
                source_rate,
                start_threshold_ms: start_threshold_ms as u32,
                capacity_samples: capacity(capacity_s, source_rate)?,
                max_frames_per_callback: positive(
                    "max_frames_per_callback",
                    max_frames_per_callback,
                    1 << 20,
                )? as usize,
                callback_log: log,
            };
            PlaybackBuffer::new(config)
        })();
        let inner = made.map_err(|e| to_py(py, e, Positions::Bytes))?;
        Ok(PyPlaybackBuffer {
            inner,
            last_interrupt: None,
        })
    }

    /// Buffer the samples of one item (int16, PCM16 bytes, or float32).
    fn push(
        &mut self,
        item_id: &str,
        content_index: i64,
        samples: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = samples.py();
        let ci = self::content_index(py, content_index)?;
        let data = input(samples, "samples")?;
        if data.shape.is_some() {
            return Err(audio_format_error(
                py,
                "samples: expected a 1-D array of mono samples",
            ));
        }
        let pushed = if data.kind == Kind::F32 {
            self.inner.push(item_id, ci, &data.as_f32(py, "samples")?)
        } else {
            self.inner
                .push_pcm16(item_id, ci, &data.as_pcm16(py, "samples")?)
        };
        pushed.map_err(push_error)
    }

    /// Buffer an AudioDelta's samples under its item_id and content_index.
    fn push_delta(&mut self, delta: &Bound<'_, PyAny>) -> PyResult<()> {
        let item_id: String = delta.getattr("item_id")?.extract()?;
        let ci: i64 = delta.getattr("content_index")?.extract()?;
        let samples = delta.getattr("samples")?;
        self.push(&item_id, ci, &samples)
    }

    fn end_of_stream(&mut self) {
        self.inner.end_of_stream();
    }

    fn interrupt(&mut self) -> Option<PyPlayhead> {
        self.inner.interrupt();
        self.poll_interrupt()
    }

    #[getter]
    fn interrupt_requested(&self) -> bool {
        self.inner.interrupt_pending()
    }

    fn poll_interrupt(&mut self) -> Option<PyPlayhead> {
        if let Some(p) = self.inner.interrupt_result() {
            self.last_interrupt = Some(p);
        }
        if self.inner.interrupt_pending() {
            return None;
        }
        wrap(self.last_interrupt.clone())
    }

    fn fill<'py>(&self, py: Python<'py>, frames: i64) -> PyResult<Bound<'py, PyAny>> {
        let max = self.inner.config().max_frames_per_callback;
        let frames = usize::try_from(frames)
            .ok()
            .filter(|&f| f <= max)
            .ok_or_else(|| {
                to_py(
                    py,
                    Error::config(format!("frames must be 0..={max}, not {frames}")),
                    Positions::Bytes,
                )
            })?;
        let ch = self.inner.config().channels;
        let mut out = vec![0.0f32; frames * ch];
        self.inner.output().fill(&mut out, frames);
        let array = PyArray1::from_vec(py, out);
        if ch == 1 {
            Ok(array.into_any())
        } else {
            Ok(array.reshape([frames, ch])?.into_any())
        }
    }

    #[pyo3(signature = (item_id, content_index = 0))]
    fn played_samples(
        &mut self,
        py: Python<'_>,
        item_id: &str,
        content_index: i64,
    ) -> PyResult<u64> {
        let ci = self::content_index(py, content_index)?;
        Ok(self.inner.played_samples(item_id, ci))
    }

    #[pyo3(signature = (item_id = None, content_index = 0))]
    fn playhead(
        &mut self,
        py: Python<'_>,
        item_id: Option<&str>,
        content_index: i64,
    ) -> PyResult<Option<PyPlayhead>> {
        let ci = self::content_index(py, content_index)?;
        Ok(wrap(match item_id {
            Some(id) => self.inner.playhead_for(id, ci),
            None => self.inner.playhead(),
        }))
    }

    fn set_output_latency_frames(&mut self, py: Python<'_>, frames: i64) -> PyResult<()> {
        let frames = u64::try_from(frames).map_err(|_| {
            to_py(
                py,
                Error::config(format!("frames must be at least 0, not {frames}")),
                Positions::Bytes,
            )
        })?;
        self.inner.set_output_latency_frames(frames);
        Ok(())
    }

    #[getter]
    fn output_latency_frames(&self) -> u64 {
        self.inner.output_latency_frames()
    }

    fn notices(&mut self) -> u32 {
        self.inner.take_notices()
    }

    #[getter]
    fn notice_count(&self) -> u64 {
        self.inner.notice_count()
    }

    #[getter]
    fn buffered_samples(&self) -> u64 {
        self.inner.buffered_samples()
    }

    #[getter]
    fn resampler_delay(&self) -> f64 {
        self.inner.output().resampler_delay_samples()
    }

    fn statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.statistics();
        let d = PyDict::new(py);
        for (k, v) in [
            ("callbacks", s.callbacks),
            ("frames_out", s.frames_out),
            ("pushed_samples", s.pushed_samples),
            ("played_samples", s.played_samples),
            ("flushed_samples", s.flushed_samples),
            ("buffered_samples", s.buffered_samples),
            ("underruns", s.underruns),
            ("drains", s.drains),
            ("interrupts", s.interrupts),
            ("errors", s.errors),
            ("panics", s.panics),
            ("max_callback_ns", s.max_callback_ns),
            ("max_lateness_ns", s.max_lateness_ns),
            ("output_underflows", s.output_underflows),
            ("output_overflows", s.output_overflows),
            ("priming_callbacks", s.priming_callbacks),
            ("callback_log_overflow", s.callback_log_overflow),
        ] {
            d.set_item(k, v)?;
        }
        // Lateness buckets: "late_le_<bound>us" and "late_gt_<last bound>us".
        for (i, count) in s.lateness_buckets.iter().enumerate() {
            let key = match crate::playback::LATENESS_BOUNDS_NS.get(i) {
                Some(bound) => format!("late_le_{}us", bound / 1000),
                None => format!(
                    "late_gt_{}us",
                    crate::playback::LATENESS_BOUNDS_NS[i - 1] / 1000
                ),
            };
            d.set_item(key, *count)?;
        }
        Ok(d)
    }

    fn drain_callback_log<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut records = Vec::new();
        self.inner.drain_callback_log(&mut records);
        callback_log::playback_records(py, &records)
    }

    #[getter]
    fn callback_log(&self) -> usize {
        self.inner.callback_log_capacity()
    }

    #[staticmethod]
    fn callback_address() -> usize {
        device::output_callback_address()
    }

    #[getter]
    fn user_data(&self) -> usize {
        std::sync::Arc::as_ptr(self.inner.output()) as usize
    }

    #[getter]
    fn device_rate(&self) -> u32 {
        self.inner.config().device_rate
    }

    #[getter]
    fn source_rate(&self) -> u32 {
        self.inner.config().source_rate
    }

    #[getter]
    fn channels(&self) -> usize {
        self.inner.config().channels
    }

    #[getter]
    fn start_threshold_ms(&self) -> u32 {
        self.inner.config().start_threshold_ms
    }

    #[getter]
    fn max_frames_per_callback(&self) -> usize {
        self.inner.config().max_frames_per_callback
    }

    #[classattr]
    const NOTICE_STARTED: u32 = playback::NOTICE_STARTED;
    #[classattr]
    const NOTICE_DRAINED: u32 = playback::NOTICE_DRAINED;
    #[classattr]
    const NOTICE_INTERRUPTED: u32 = playback::NOTICE_INTERRUPTED;
    #[classattr]
    const NOTICE_UNDERRUN: u32 = playback::NOTICE_UNDERRUN;

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "PlaybackBuffer({}, channels={}, source_rate={}, start_threshold_ms={}) buffered={} samples",
            c.device_rate,
            c.channels,
            c.source_rate,
            c.start_threshold_ms,
            self.inner.buffered_samples()
        )
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPlayhead>()?;
    m.add_class::<PyPlaybackBuffer>()
}
