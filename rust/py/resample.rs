use super::buffer::{input, new_array_with, Kind};
use super::error::{audio_format_error, to_py, Positions};
use crate::error::Error;
use crate::pcm;
use crate::resample::{Quality, Resampler};
use crate::util::filled_vec;
use pyo3::prelude::*;
use std::borrow::Cow;

/// What the stream was last fed, which `flush` answers in kind.
#[derive(Clone, Copy)]
struct Form {
    int16: bool,
    frames_by_channels: bool,
}

/// A streaming resampler; see `_core.pyi` for the Python-facing documentation.
#[pyclass(module = "realtalk.core", name = "Resampler")]
pub struct PyResampler {
    inner: Resampler,
    in_channels: usize,
    downmix: bool,
    form: Form,
}

fn rate(name: &str, value: i64) -> Result<u32, Error> {
    u32::try_from(value).ok().filter(|&r| r > 0).ok_or_else(|| {
        Error::config(format!(
            "{name} must be a positive number of Hz, not {value}"
        ))
    })
}

impl PyResampler {
    /// The output shape for `frames` output frames: (frames, channels) for 2-D input.
    fn shape(&self, frames: usize) -> Option<[usize; 2]> {
        (self.form.frames_by_channels && !self.downmix).then_some([frames, self.in_channels])
    }

    /// Output of `frames` frames in the stream's form, written by `write` as float32.
    fn output<'py>(
        &mut self,
        py: Python<'py>,
        frames: usize,
        write: impl FnOnce(&mut Resampler, &mut [std::mem::MaybeUninit<f32>]),
    ) -> PyResult<Bound<'py, PyAny>> {
        let len = frames * self.inner.channels();
        let shape = self.shape(frames);
        let shape = shape.as_ref().map(|s| &s[..]);
        if !self.form.int16 {
            return new_array_with::<f32, PyErr>(py, len, shape, |dst| {
                write(&mut self.inner, dst);
                Ok(())
            });
        }
        let floats = filled_vec(len, |dst| write(&mut self.inner, dst));
        new_array_with::<i16, PyErr>(py, len, shape, |dst| {
            pcm::f32_to_pcm16(&floats, dst);
            Ok(())
        })
    }
}

#[pymethods]
impl PyResampler {
    #[new]
    #[pyo3(signature = (in_rate, out_rate, *, channels = 1, quality = "hq", downmix = false))]
    fn new(
        py: Python<'_>,
        in_rate: i64,
        out_rate: i64,
        channels: i64,
        quality: &str,
        downmix: bool,
    ) -> PyResult<Self> {
        let made = (|| {
            let quality = match quality {
                "hq" => Quality::Hq,
                "speech" => Quality::Speech,
                other => {
                    return Err(Error::config(format!(
                        "quality must be \"hq\" or \"speech\", not {other:?}"
                    )))
                }
            };
            let channels = usize::try_from(channels)
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| {
                    Error::config(format!("channels must be at least 1, not {channels}"))
                })?;
            let inner_channels = if downmix { 1 } else { channels };
            let inner = Resampler::new(
                rate("in_rate", in_rate)?,
                rate("out_rate", out_rate)?,
                inner_channels,
                quality,
            )?;
            Ok(PyResampler {
                inner,
                in_channels: channels,
                downmix,
                form: Form {
                    int16: false,
                    frames_by_channels: false,
                },
            })
        })();
        made.map_err(|e| to_py(py, e, Positions::Bytes))
    }

    /// Resample the next samples; returns the output available now.
    fn process<'py>(&mut self, samples: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = samples.py();
        let input = input(samples, "samples")?;
        let channels = self.in_channels;
        let frames_by_channels = match input.shape.as_deref() {
            Some([_, c]) if *c == channels => true,
            Some([_, c]) => {
                return Err(audio_format_error(
                    py,
                    format!("samples: {c} channels, but this Resampler was made for {channels}"),
                ))
            }
            Some(shape) => {
                return Err(audio_format_error(
                    py,
                    format!(
                        "samples: expected a 1-D array or (frames, channels), got shape {shape:?}"
                    ),
                ))
            }
            None => false,
        };
        let int16 = input.kind != Kind::F32;
        let floats: Cow<'_, [f32]> = if int16 {
            Cow::Owned(pcm::pcm16_to_f32_vec(&input.as_pcm16(py, "samples")?))
        } else {
            input.as_f32(py, "samples")?
        };
        if !floats.len().is_multiple_of(channels) {
            return Err(audio_format_error(
                py,
                format!(
                    "samples: {} samples is not a whole number of {channels}-channel frames",
                    floats.len()
                ),
            ));
        }
        self.form = Form {
            int16,
            frames_by_channels,
        };
        let mono;
        let feed: &[f32] = if self.downmix && channels > 1 {
            mono = filled_vec(floats.len() / channels, |dst| {
                pcm::downmix(&floats, channels, dst)
            });
            &mono
        } else {
            &floats
        };
        let frames = self.inner.output_frames(feed.len() / self.inner.channels());
        self.output(py, frames, |inner, dst| inner.process_into(feed, dst))
    }

    /// The rest of the output; afterwards the Resampler starts a new stream.
    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let frames = self.inner.flush_frames();
        self.output(py, frames, |inner, dst| inner.flush_into(dst))
    }

    /// Forget the stream so far, as if new.
    fn reset(&mut self) {
        self.inner.reset();
    }

    #[getter]
    fn delay(&self) -> f64 {
        self.inner.delay()
    }

    #[getter]
    fn in_rate(&self) -> u32 {
        self.inner.in_rate()
    }

    #[getter]
    fn out_rate(&self) -> u32 {
        self.inner.out_rate()
    }

    #[getter]
    fn channels(&self) -> usize {
        self.in_channels
    }

    #[getter]
    fn downmix(&self) -> bool {
        self.downmix
    }

    #[getter]
    fn quality(&self) -> &'static str {
        match self.inner.quality() {
            Quality::Hq => "hq",
            Quality::Speech => "speech",
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Resampler({}, {}, channels={}, quality={:?}, downmix={}) delay={:.2} output samples",
            self.inner.in_rate(),
            self.inner.out_rate(),
            self.in_channels,
            self.quality(),
            if self.downmix { "True" } else { "False" },
            self.inner.delay()
        )
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyResampler>()
}
