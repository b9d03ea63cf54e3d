//! PyO3 wrappers: convert arguments, call the pure core, map errors. Nothing else.

use pyo3::prelude::*;

mod b64;
mod buffer;
mod callback_log;
mod capture;
mod error;
mod events;
mod g711;
mod json;
mod pcm;
mod playback;
mod resample;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    pcm::register(m)?;
    g711::register(m)?;
    b64::register(m)?;
    events::register(m)?;
    resample::register(m)?;
    playback::register(m)?;
    capture::register(m)?;
    Ok(())
}
