use super::buffer::{input, new_ascii_str_with, new_bytes_with, raw_input, Kind};
use super::error::{to_py, type_error, Positions};
use crate::b64;
use crate::error::{partial_sample_message, Error};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// The raw bytes of any bytes-like object or C-contiguous array, as standard base64.
#[pyfunction]
fn b64encode<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let input = raw_input(data, "data")?;
    let src = input.bytes();
    new_ascii_str_with::<PyErr>(py, b64::encoded_len(src.len()), |dst| {
        b64::encode_into(src, dst);
        Ok(())
    })
}

/// Strict standard base64 (`str` or ASCII bytes-like) to bytes, checking that the
/// result is a whole number of `sample_width`-byte samples.
#[pyfunction]
#[pyo3(signature = (text, *, sample_width = 2))]
fn b64decode<'py>(text: &Bound<'py, PyAny>, sample_width: i64) -> PyResult<Bound<'py, PyBytes>> {
    let py = text.py();
    let sample_width = usize::try_from(sample_width)
        .ok()
        .filter(|&w| w >= 1)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "sample_width must be at least 1, not {sample_width}"
            ))
        })?;
    let held;
    let lossy;
    let (src, positions): (&[u8], _) = if let Ok(s) = text.cast::<PyString>() {
        // A lone surrogate has no UTF-8 form; as U+FFFD it still fails, at its position.
        lossy = s.to_string_lossy();
        (lossy.as_bytes(), Positions::CharsOf(lossy.as_bytes()))
    } else {
        held = input(text, "text")?;
        if held.kind != Kind::Bytes {
            return Err(type_error("text: expected str or bytes-like base64 text"));
        }
        (held.bytes(), Positions::Bytes)
    };
    let decoded = b64::decoded_len(src).map_err(|e| to_py(py, e, positions))?;
    if decoded % sample_width != 0 {
        // A bad character says more than the length it leads to: report it first.
        b64::validate(src).map_err(|e| to_py(py, e, positions))?;
        let message = format!(
            "decodes to {}",
            partial_sample_message(decoded, sample_width)
        );
        return Err(to_py(py, Error::base64(src.len(), message), positions));
    }
    new_bytes_with(py, decoded, |dst| {
        b64::decode_into(src, dst).map_err(|e| to_py(py, e, positions))
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(b64encode, m)?)?;
    m.add_function(wrap_pyfunction!(b64decode, m)?)?;
    Ok(())
}
