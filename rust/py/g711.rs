use super::buffer::{input, new_array_with, new_bytes_with, Kind};
use super::error::audio_format_error;
use crate::g711;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::mem::MaybeUninit;

type Encoder = fn(&[i16], &mut [MaybeUninit<u8>]);
type Decoder = fn(&[u8], &mut [MaybeUninit<i16>]);

fn encode<'py>(samples: &Bound<'py, PyAny>, codec: Encoder) -> PyResult<Bound<'py, PyBytes>> {
    let py = samples.py();
    let input = input(samples, "samples")?;
    let src = input.as_pcm16(py, "samples")?;
    new_bytes_with::<PyErr>(py, src.len(), |dst| {
        codec(&src, dst);
        Ok(())
    })
}

fn decode<'py>(data: &Bound<'py, PyAny>, codec: Decoder) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let input = input(data, "data")?;
    if input.kind != Kind::Bytes {
        return Err(audio_format_error(
            py,
            "data: expected G.711 bytes (bytes-like or uint8 array)",
        ));
    }
    let src = input.bytes();
    new_array_with::<i16, PyErr>(py, src.len(), None, |dst| {
        codec(src, dst);
        Ok(())
    })
}

/// int16 samples (array or PCM16 little-endian bytes) to G.711 mu-law bytes.
#[pyfunction]
fn ulaw_encode<'py>(samples: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    encode(samples, g711::ulaw_encode)
}

/// int16 samples (array or PCM16 little-endian bytes) to G.711 A-law bytes.
#[pyfunction]
fn alaw_encode<'py>(samples: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    encode(samples, g711::alaw_encode)
}

/// G.711 mu-law bytes to an int16 array.
#[pyfunction]
fn ulaw_decode<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    decode(data, g711::ulaw_decode)
}

/// G.711 A-law bytes to an int16 array.
#[pyfunction]
fn alaw_decode<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    decode(data, g711::alaw_decode)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ulaw_encode, m)?)?;
    m.add_function(wrap_pyfunction!(alaw_encode, m)?)?;
    m.add_function(wrap_pyfunction!(ulaw_decode, m)?)?;
    m.add_function(wrap_pyfunction!(alaw_decode, m)?)?;
    Ok(())
}
