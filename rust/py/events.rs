use super::buffer::{input, new_array_with, new_ascii_str_with, Kind};
use super::error::{audio_format_error, to_py, Positions};
use super::json::{self, Built, MAX_DEPTH};
use crate::b64;
use crate::error::{partial_sample_message, Error};
use crate::events::{self, AudioDeltaFields, Dialect, Scanned, Span};
use crate::g711;
use crate::pcm;
use crate::util::filled_vec;
use pyo3::exceptions::{PyRecursionError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// The JSON text of one `input_audio_buffer.append` event carrying `samples`.
#[pyfunction]
#[pyo3(signature = (samples, *, event_id = None))]
fn encode_append<'py>(
    samples: &Bound<'py, PyAny>,
    event_id: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = samples.py();
    let input = input(samples, "samples")?;
    let converted: Vec<i16>;
    let pcm_bytes: &[u8] = match input.kind {
        // int16 arrays and bytes are already the wire format (PCM16 little-endian) on a
        // little-endian machine; float32 is converted first.
        Kind::I16 | Kind::Bytes if cfg!(target_endian = "little") => {
            let bytes = input.bytes();
            if bytes.len() % 2 != 0 {
                let message = partial_sample_message(bytes.len(), 2);
                return Err(audio_format_error(py, format!("samples: {message}")));
            }
            bytes
        }
        Kind::F32 => {
            converted = pcm::f32_to_pcm16_vec(&input.as_f32(py, "samples")?);
            as_le_bytes(&converted)
        }
        _ => {
            converted = input.as_pcm16(py, "samples")?.into_owned();
            as_le_bytes(&converted)
        }
    };
    let escaped = event_id.map(events::escape_json);
    let escaped_bytes = escaped.as_deref().map(str::as_bytes);
    let audio_len = b64::encoded_len(pcm_bytes.len());
    let len = events::append_event_len(audio_len, escaped_bytes);
    let write = |dst: &mut [MaybeUninit<u8>]| {
        events::write_append_event(dst, escaped_bytes, |audio| {
            b64::encode_into(pcm_bytes, audio)
        });
    };
    if escaped_bytes.is_none_or(<[u8]>::is_ascii) {
        return new_ascii_str_with::<PyErr>(py, len, |dst| {
            write(dst);
            Ok(())
        });
    }
    let text = filled_vec(len, write);
    // Only the event id can be non-ASCII, and it came from a Python str.
    let text = String::from_utf8(text).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyString::new(py, &text).into_any())
}

/// int16 samples as the bytes of PCM16 little-endian (the host order, checked by callers).
fn as_le_bytes(samples: &[i16]) -> &[u8] {
    // SAFETY: any initialised i16 slice can be viewed as twice as many bytes.
    unsafe { std::slice::from_raw_parts(samples.as_ptr().cast::<u8>(), samples.len() * 2) }
}

/// One audio delta event: where the audio goes, and its samples.
#[pyclass(frozen, module = "realtalk.core", name = "AudioDelta")]
pub struct AudioDelta {
    dialect: Dialect,
    event_id: LazyStr,
    response_id: Py<PyString>,
    item_id: Py<PyString>,
    output_index: i64,
    content_index: i64,
    samples: Py<PyAny>,
    /// For the repr only: 24 for PCM16, 8 for G.711.
    sample_rate_khz: u8,
}

#[pymethods]
impl AudioDelta {
    #[getter(r#type)]
    fn type_<'py>(&self, py: Python<'py>) -> &Bound<'py, PyString> {
        match self.dialect {
            Dialect::Ga => intern!(py, events::GA_AUDIO_DELTA),
            Dialect::Beta => intern!(py, events::BETA_AUDIO_DELTA),
        }
    }

    #[getter]
    fn event_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.event_id.get(py)
    }

    #[getter]
    fn response_id(&self, py: Python<'_>) -> Py<PyString> {
        self.response_id.clone_ref(py)
    }

    #[getter]
    fn item_id(&self, py: Python<'_>) -> Py<PyString> {
        self.item_id.clone_ref(py)
    }

    #[getter]
    fn output_index(&self) -> i64 {
        self.output_index
    }

    #[getter]
    fn content_index(&self) -> i64 {
        self.content_index
    }

    #[getter]
    fn samples(&self, py: Python<'_>) -> Py<PyAny> {
        self.samples.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let n = self.samples.bind(py).len()?;
        Ok(format!(
            "AudioDelta(type={}, event_id={}, response_id={}, item_id={}, output_index={}, \
             content_index={}, samples=<{n} int16 samples, {:.1} ms at {} kHz>)",
            self.type_(py).repr()?,
            self.event_id.get(py).repr()?,
            self.response_id.bind(py).repr()?,
            self.item_id.bind(py).repr()?,
            self.output_index,
            self.content_index,
            n as f64 / f64::from(self.sample_rate_khz),
            self.sample_rate_khz,
        ))
    }
}

static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static JSON_SCAN_ONCE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The object that starts at character `start` of `text`, as `json.loads` would build it,
/// for the texts our own builder leaves to Python (lone surrogate escapes). Calls the C
/// scanner behind `json.loads` directly: our scan already did what its wrapper checks.
fn scan_object<'py>(
    py: Python<'py>,
    text: Bound<'py, PyAny>,
    start: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let scan_once = JSON_SCAN_ONCE.get_or_try_init(py, || {
        let decoder = py.import("json.decoder")?.getattr("JSONDecoder")?.call0()?;
        decoder.getattr("scan_once").map(Bound::unbind)
    })?;
    match scan_once.bind(py).call1((&text, start)) {
        Ok(found) => Ok(found.get_item(0)?),
        // Not expected after our scan (deep nesting is the one case): json.loads says why.
        Err(_) => loads_other(py, text),
    }
}

fn json_loads<'py>(py: Python<'py>, text: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let loads = JSON_LOADS.get_or_try_init(py, || {
        py.import("json")?.getattr("loads").map(Bound::unbind)
    })?;
    loads.bind(py).call1(PyTuple::new(py, [text])?)
}

/// A Python str equal to what `json.loads` gives for the string at `span`.
fn string_at<'py>(py: Python<'py>, text: &str, span: Span) -> PyResult<Bound<'py, PyString>> {
    match span.value(text) {
        Some(value) => Ok(PyString::new(py, &value)),
        // A \u escape of a lone surrogate: only Python's own decoder can represent it.
        None => {
            let quoted = text.get(span.start - 1..span.end + 1).unwrap_or("\"\"");
            Ok(json_loads(py, PyString::new(py, quoted).into_any())?.cast_into::<PyString>()?)
        }
    }
}

/// A string field kept as bytes until Python asks for it. Receivers rarely read an
/// audio event's `event_id`, and making a `str` for it was 7% of the call.
enum LazyStr {
    Made(Py<PyString>),
    Inline {
        len: u8,
        bytes: [u8; LazyStr::INLINE],
    },
}

impl LazyStr {
    /// Longer than any id the API sends ("event_" and 21 characters).
    const INLINE: usize = 46;

    fn new(py: Python<'_>, text: &str, span: Span) -> PyResult<Self> {
        let raw = span.raw(text.as_bytes());
        if span.escaped() || raw.len() > Self::INLINE {
            return Ok(LazyStr::Made(string_at(py, text, span)?.unbind()));
        }
        let mut bytes = [0u8; Self::INLINE];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(LazyStr::Inline {
            len: raw.len() as u8,
            bytes,
        })
    }

    fn get<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        match self {
            LazyStr::Made(s) => s.bind(py).clone(),
            // The bytes were cut from a str at ASCII quotes, so they are UTF-8.
            LazyStr::Inline { len, bytes } => PyString::new(
                py,
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or(""),
            ),
        }
    }
}

/// The last string made for one id field, reused while the id repeats: every delta of a
/// response carries the same `response_id` and `item_id`. One slot per field; the GIL
/// serialises access (the cell is per thread, and the key is the raw text of the id).
struct IdCache(std::cell::RefCell<Option<(Box<str>, Py<PyString>)>>);

impl IdCache {
    fn get<'py>(&self, py: Python<'py>, text: &str, span: Span) -> PyResult<Bound<'py, PyString>> {
        let raw = span.raw_str(text);
        if let Some((key, value)) = &*self.0.borrow() {
            if **key == *raw {
                return Ok(value.bind(py).clone());
            }
        }
        let value = string_at(py, text, span)?;
        *self.0.borrow_mut() = Some((raw.into(), value.clone().unbind()));
        Ok(value)
    }
}

thread_local! {
    static RESPONSE_IDS: IdCache = const { IdCache(std::cell::RefCell::new(None)) };
    static ITEM_IDS: IdCache = const { IdCache(std::cell::RefCell::new(None)) };
}

/// The int16 samples of a base64 payload of PCM16 little-endian, decoded straight into
/// the new array. `delta_end` is where an odd byte count is reported.
fn pcm16_samples<'py>(
    py: Python<'py>,
    payload: &[u8],
    delta_end: usize,
    positions: Positions<'_>,
    in_event: impl Fn(Error) -> PyErr,
) -> PyResult<Bound<'py, PyAny>> {
    let nbytes = b64::decoded_len(payload).map_err(&in_event)?;
    if nbytes % 2 != 0 {
        b64::validate(payload).map_err(&in_event)?;
        let message = format!("\"delta\" decodes to {}", partial_sample_message(nbytes, 2));
        return Err(to_py(py, Error::event(delta_end, message), positions));
    }
    new_array_with::<i16, PyErr>(py, nbytes / 2, None, |dst| {
        // SAFETY: a slice of n uninitialised i16 is 2n uninitialised bytes, aligned for u8.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<MaybeUninit<u8>>(), nbytes)
        };
        b64::decode_into(payload, bytes).map_err(&in_event)?;
        #[cfg(target_endian = "big")]
        for s in dst.iter_mut() {
            // SAFETY: decode_into wrote every byte.
            let v = unsafe { s.assume_init() };
            s.write(i16::from_le(v));
        }
        Ok(())
    })
}

/// The session's output audio format: what an audio delta's payload bytes are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AudioFormat {
    /// PCM16 little-endian at 24 kHz.
    Pcm16,
    /// G.711 mu-law at 8 kHz, one byte per sample.
    G711Ulaw,
    /// G.711 A-law at 8 kHz, one byte per sample.
    G711Alaw,
}

impl AudioFormat {
    fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "pcm16" => Ok(AudioFormat::Pcm16),
            "g711_ulaw" => Ok(AudioFormat::G711Ulaw),
            "g711_alaw" => Ok(AudioFormat::G711Alaw),
            other => Err(Error::config(format!(
                "audio_format must be \"pcm16\", \"g711_ulaw\" or \"g711_alaw\", not {other:?}"
            ))),
        }
    }

    fn sample_rate_khz(self) -> u8 {
        match self {
            AudioFormat::Pcm16 => 24,
            AudioFormat::G711Ulaw | AudioFormat::G711Alaw => 8,
        }
    }
}

/// G.711 codes are decoded from base64 into a buffer on the stack up to this many (512 ms
/// at 8 kHz); longer payloads use the heap.
const STACK_CODES: usize = 4096;

/// The int16 samples of a base64 payload of G.711 codes. The codes go through a scratch
/// buffer: decoding them in place inside the array would need the decoders to read and
/// write overlapping memory.
fn g711_samples<'py>(
    py: Python<'py>,
    payload: &[u8],
    decode: fn(&[u8], &mut [MaybeUninit<i16>]),
    in_event: impl Fn(Error) -> PyErr,
) -> PyResult<Bound<'py, PyAny>> {
    let ncodes = b64::decoded_len(payload).map_err(&in_event)?;
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_CODES];
    let mut heap = Vec::new();
    let scratch = if ncodes <= STACK_CODES {
        &mut stack[..ncodes]
    } else {
        heap.reserve_exact(ncodes);
        &mut heap.spare_capacity_mut()[..ncodes]
    };
    b64::decode_into(payload, scratch).map_err(&in_event)?;
    // SAFETY: decode_into returned Ok, so it wrote every byte of `scratch`.
    let codes = unsafe { std::slice::from_raw_parts(scratch.as_ptr().cast::<u8>(), ncodes) };
    new_array_with::<i16, PyErr>(py, ncodes, None, |dst| {
        decode(codes, dst);
        Ok(())
    })
}

fn audio_delta<'py>(
    py: Python<'py>,
    text: &str,
    fields: &AudioDeltaFields,
    positions: Positions<'_>,
    format: AudioFormat,
) -> PyResult<Bound<'py, PyAny>> {
    let delta = &fields.delta;
    let payload = fields.delta_text(text);
    let in_event = |e: Error| -> PyErr {
        let err = match e {
            Error::Base64 { position, message } => Error::event(
                // Offsets inside an escaped payload do not map back; point at its start.
                if delta.escaped() {
                    delta.start
                } else {
                    delta.start + position
                },
                format!("invalid base64 in \"delta\": {message}"),
            ),
            other => Error::event(delta.start, format!("invalid \"delta\": {other}")),
        };
        to_py(py, err, positions)
    };
    let samples = match format {
        AudioFormat::Pcm16 => pcm16_samples(py, &payload, delta.end, positions, in_event)?,
        AudioFormat::G711Ulaw => g711_samples(py, &payload, g711::ulaw_decode, in_event)?,
        AudioFormat::G711Alaw => g711_samples(py, &payload, g711::alaw_decode, in_event)?,
    };
    let delta = AudioDelta {
        dialect: fields.dialect,
        event_id: LazyStr::new(py, text, fields.event_id)?,
        response_id: RESPONSE_IDS
            .with(|c| c.get(py, text, fields.response_id))?
            .unbind(),
        item_id: ITEM_IDS.with(|c| c.get(py, text, fields.item_id))?.unbind(),
        output_index: fields.output_index,
        content_index: fields.content_index,
        samples: samples.unbind(),
        sample_rate_khz: format.sample_rate_khz(),
    };
    delta.into_bound_py_any(py)
}

/// One server event's JSON text (str or UTF-8 bytes-like) to an `AudioDelta` when it is
/// an audio delta of either dialect, else the dict `json.loads` gives. `audio_format`
/// says what the payload of an audio delta holds.
#[pyfunction]
#[pyo3(signature = (text, *, audio_format = "pcm16"))]
fn parse_server_event<'py>(
    text: &Bound<'py, PyAny>,
    audio_format: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = text.py();
    let format =
        AudioFormat::from_name(audio_format).map_err(|e| to_py(py, e, Positions::Bytes))?;
    let held;
    let (utf8, positions): (Cow<'_, str>, Positions<'_>) = if let Ok(s) = text.cast::<PyString>() {
        match s.to_str() {
            Ok(s) => (Cow::Borrowed(s), Positions::CharsOf(s.as_bytes())),
            // Lone surrogates: no UTF-8 form, so not from a WebSocket; let json decide.
            Err(_) => return loads_other(py, text.clone()),
        }
    } else {
        held = input(text, "text")?;
        if held.kind != Kind::Bytes {
            return Err(super::error::type_error(
                "text: expected str or UTF-8 bytes",
            ));
        }
        match std::str::from_utf8(held.bytes()) {
            Ok(s) => (Cow::Borrowed(s), Positions::Bytes),
            Err(e) => {
                let err = Error::event(e.valid_up_to(), "invalid UTF-8 in event text");
                return Err(to_py(py, err, Positions::Bytes));
            }
        }
    };
    let scanned = events::scan_server_event_trusting_payload(&utf8);
    match scanned.map_err(|e| to_py(py, e, positions))? {
        Scanned::AudioDelta(fields) if fields.delta_unchecked => {
            // The payload's end was a guess that decoding proves; if it fails, scan the
            // text exactly and let that scan's result (or error) stand.
            audio_delta(py, &utf8, &fields, positions, format).or_else(|_| {
                match events::scan_server_event(&utf8).map_err(|e| to_py(py, e, positions))? {
                    Scanned::AudioDelta(exact) => audio_delta(py, &utf8, &exact, positions, format),
                    Scanned::Other => build_other(py, text, &utf8, positions),
                }
            })
        }
        Scanned::AudioDelta(fields) => audio_delta(py, &utf8, &fields, positions, format),
        Scanned::Other => build_other(py, text, &utf8, positions),
    }
}

/// A JSON object that is not an audio delta, as `json.loads` would build it.
fn build_other<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    utf8: &str,
    positions: Positions<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    match json::build(py, utf8)? {
        Built::Value(value) => Ok(value),
        Built::TooDeep => {
            let message = format!("nested deeper than {MAX_DEPTH} levels");
            Err(to_py(py, Error::event(0, message), positions))
        }
        Built::NeedsPython => {
            let arg = match positions {
                Positions::CharsOf(_) => text.clone(),
                Positions::Bytes => PyString::new(py, utf8).into_any(),
            };
            // The scan proved the text is one JSON object after JSON whitespace
            // (ASCII, so its length in bytes is its length in characters).
            let start = utf8.len() - utf8.trim_start_matches([' ', '\t', '\n', '\r']).len();
            scan_object(py, arg, start)
        }
    }
}

/// `json.loads`, with its errors (nesting too deep; anything our scanner let through)
/// raised as EventParseError like ours, and anything but an object refused.
fn loads_other<'py>(py: Python<'py>, text: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let value = json_loads(py, text).map_err(|e| {
        if e.is_instance_of::<PyRecursionError>(py) || e.is_instance_of::<PyValueError>(py) {
            let position = e
                .value(py)
                .getattr(intern!(py, "pos"))
                .and_then(|p| p.extract::<usize>())
                .unwrap_or(0);
            let message = format!("json.loads: {}", e.value(py));
            let new = to_py(py, Error::event(position, message), Positions::Bytes);
            new.set_cause(py, Some(e));
            new
        } else {
            e
        }
    })?;
    if !value.is_instance_of::<PyDict>() {
        let kind = value.get_type().name()?;
        let message = format!("a server event is a JSON object, not {kind}");
        return Err(to_py(py, Error::event(0, message), Positions::Bytes));
    }
    Ok(value)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AudioDelta>()?;
    m.add_function(wrap_pyfunction!(encode_append, m)?)?;
    m.add_function(wrap_pyfunction!(parse_server_event, m)?)?;
    Ok(())
}
