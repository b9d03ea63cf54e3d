use super::buffer::{input, new_array_with};
use crate::pcm;
use pyo3::prelude::*;

/// float32 samples (any shape, C-contiguous) to an int16 array of the same shape.
#[pyfunction]
fn f32_to_pcm16<'py>(samples: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = samples.py();
    let input = input(samples, "samples")?;
    let src = input.as_f32(py, "samples")?;
    new_array_with::<i16, PyErr>(py, src.len(), input.shape.as_deref(), |dst| {
        pcm::f32_to_pcm16(&src, dst);
        Ok(())
    })
}

/// int16 samples (an array of any shape, or PCM16 little-endian bytes) to float32.
#[pyfunction]
fn pcm16_to_f32<'py>(samples: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = samples.py();
    let input = input(samples, "samples")?;
    let src = input.as_pcm16(py, "samples")?;
    new_array_with::<f32, PyErr>(py, src.len(), input.shape.as_deref(), |dst| {
        pcm::pcm16_to_f32(&src, dst);
        Ok(())
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(f32_to_pcm16, m)?)?;
    m.add_function(wrap_pyfunction!(pcm16_to_f32, m)?)?;
    Ok(())
}
