//! The one error type of the core.
//!
//! Pure Rust: no pyo3 here. `py/error.rs` maps each variant to one Python exception class
//! of `realtalk.exceptions`. Positions are byte offsets into the input the function was
//! given; the Python layer turns them into character offsets where the input was a `str`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Base64 text that a strict decoder rejects.
    Base64 { position: usize, message: String },
    /// Malformed JSON, or a recognised event whose fields are missing or of the wrong type.
    Event { position: usize, message: String },
    /// Settings that cannot work (a zero sample rate, an unsupported channel count).
    Config { message: String },
}

impl Error {
    pub fn base64(position: usize, message: impl Into<String>) -> Self {
        Error::Base64 {
            position,
            message: message.into(),
        }
    }

    pub fn event(position: usize, message: impl Into<String>) -> Self {
        Error::Event {
            position,
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    /// Where the problem is, as a byte offset into the input, if it is in an input.
    pub fn position(&self) -> Option<usize> {
        match self {
            Error::Base64 { position, .. } | Error::Event { position, .. } => Some(*position),
            Error::Config { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Base64 { position, message } => {
                write!(f, "invalid base64 at offset {position}: {message}")
            }
            Error::Event { position, message } => write!(f, "{message} (at offset {position})"),
            Error::Config { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {}

/// "N bytes is not a whole number of W-byte samples (K left over)", shared by every place
/// that reports it so the wording stays one.
pub fn partial_sample_message(nbytes: usize, sample_width: usize) -> String {
    let left = nbytes % sample_width;
    let unit = if left == 1 { "byte" } else { "bytes" };
    format!("{nbytes} bytes is not a whole number of {sample_width}-byte samples ({left} {unit} left over)")
}

pub type Result<T> = std::result::Result<T, Error>;
