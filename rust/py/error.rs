//! The one mapping from `crate::Error` to the exception classes of `realtalk.exceptions`.

use crate::error::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static AUDIO_FORMAT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BASE64_DECODE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EVENT_PARSE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIGURATION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn raise(
    py: Python<'_>,
    cell: &PyOnceLock<Py<PyType>>,
    name: &str,
    message: String,
    position: Option<usize>,
) -> PyErr {
    let made = cell
        .import(py, "realtalk.exceptions", name)
        .and_then(|cls| match position {
            Some(position) => cls.call1((message, position)),
            None => cls.call1((message,)),
        });
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Where positions point: byte offsets into UTF-8 text need turning into character offsets
/// when the caller passed a `str`.
#[derive(Clone, Copy)]
pub(crate) enum Positions<'a> {
    Bytes,
    CharsOf(&'a [u8]),
}

impl Positions<'_> {
    pub(crate) fn map(self, byte_offset: usize) -> usize {
        match self {
            Positions::Bytes => byte_offset,
            Positions::CharsOf(text) => {
                let prefix = &text[..byte_offset.min(text.len())];
                if prefix.is_ascii() {
                    byte_offset
                } else {
                    prefix.iter().filter(|&&b| b & 0xC0 != 0x80).count()
                }
            }
        }
    }
}

/// Map a core error. `positions` says how to report offsets.
pub(crate) fn to_py(py: Python<'_>, err: Error, positions: Positions<'_>) -> PyErr {
    match err {
        Error::Base64 { position, message } => {
            let position = positions.map(position);
            let text = format!("invalid base64 at offset {position}: {message}");
            raise(
                py,
                &BASE64_DECODE_ERROR,
                "Base64DecodeError",
                text,
                Some(position),
            )
        }
        Error::Event { position, message } => {
            let position = positions.map(position);
            let text = format!("{message} (at offset {position})");
            raise(
                py,
                &EVENT_PARSE_ERROR,
                "EventParseError",
                text,
                Some(position),
            )
        }
        Error::Config { message } => raise(
            py,
            &CONFIGURATION_ERROR,
            "ConfigurationError",
            message,
            None,
        ),
    }
}

pub(crate) fn audio_format_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(
        py,
        &AUDIO_FORMAT_ERROR,
        "AudioFormatError",
        message.into(),
        None,
    )
}

pub(crate) fn type_error(message: impl Into<String>) -> PyErr {
    PyTypeError::new_err(message.into())
}
