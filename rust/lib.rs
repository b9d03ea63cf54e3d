//! realtalk's native core: the audio hot path between raw samples and the JSON text on
//! the wire. Everything outside `py/` is pure Rust and tested with `cargo test
//! --no-default-features`; `py/` holds the thin PyO3 wrappers.

pub mod b64;
pub mod callback_log;
pub mod capture;
pub mod device;
pub mod error;
pub mod events;
pub mod g711;
pub mod pcm;
pub mod playback;
pub mod resample;
mod util;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};
