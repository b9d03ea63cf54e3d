//! Python objects from the JSON text of a server event that `events::scan_server_event`
//! has already validated: the dict `json.loads` would give, built without its machinery.
//!
//! Trusts the grammar (the scan checked it) but never indexes out of bounds on any input:
//! malformed text gives an error, not a panic. Returns `None` for the one thing a Rust
//! string cannot hold, a `\u` escape of a lone surrogate; the caller then asks Python's
//! own scanner. Keys are cached between events, since every event repeats the same few.

use crate::events::{special_byte, unescape};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use pyo3::IntoPyObjectExt;
use std::cell::RefCell;

/// Levels of nested objects and arrays (the event object is the first): deeper than any
/// event the API sends, and `json.loads` stops near 1000 (Python's recursion limit).
/// Deeper text is refused rather than built.
pub(crate) const MAX_DEPTH: usize = 512;

pub(crate) enum Built<'py> {
    Value(Bound<'py, PyAny>),
    /// A lone surrogate escape: only Python's decoder can represent it.
    NeedsPython,
    TooDeep,
}

enum Open<'py> {
    Object(Bound<'py, PyDict>, Bound<'py, PyString>),
    Array(Bound<'py, PyList>),
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

/// Result of one step that may have to give up without a Python error.
enum Fail {
    Py(PyErr),
    NeedsPython,
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

type Step<T> = Result<T, Fail>;

fn malformed(at: usize) -> Fail {
    // Not reachable after a successful scan; kept so that no input can panic here.
    Fail::Py(pyo3::exceptions::PyValueError::new_err(format!(
        "internal: unexpected JSON at offset {at}"
    )))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Step<()> {
        self.ws();
        if self.peek() != c {
            return Err(malformed(self.i));
        }
        self.i += 1;
        Ok(())
    }

    /// The string at the cursor (on its opening quote): its raw inside and whether it
    /// holds escapes.
    fn string_span(&mut self) -> Step<(usize, usize, bool)> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i += special_byte(self.s.get(self.i..).unwrap_or(&[]));
            match self.peek() {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.i += if self.s.get(self.i + 1) == Some(&b'u') {
                        6
                    } else {
                        2
                    };
                }
                _ => return Err(malformed(self.i)),
            }
        }
        let end = self.i;
        self.i += 1;
        Ok((start, end, escaped))
    }

    fn string<'py>(&mut self, py: Python<'py>) -> Step<Bound<'py, PyString>> {
        let (start, end, escaped) = self.string_span()?;
        let raw = self.text.get(start..end).ok_or_else(|| malformed(start))?;
        if !escaped {
            return Ok(PyString::new(py, raw));
        }
        match unescape(raw.as_bytes()) {
            Some(value) => Ok(PyString::new(py, &value)),
            None => Err(Fail::NeedsPython),
        }
    }

    fn key<'py>(&mut self, py: Python<'py>) -> Step<Bound<'py, PyString>> {
        self.ws();
        if self.peek() != b'"' {
            return Err(malformed(self.i));
        }
        let save = self.i;
        let (start, end, escaped) = self.string_span()?;
        let key = if escaped {
            self.i = save;
            self.string(py)?
        } else {
            KEYS.with(|k| k.get(py, &self.text[start..end]))
        };
        self.expect(b':')?;
        self.ws();
        Ok(key)
    }

    fn number<'py>(&mut self, py: Python<'py>) -> Step<Bound<'py, PyAny>> {
        let start = self.i;
        let mut integer = true;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => integer = false,
                _ => break,
            }
            self.i += 1;
        }
        let digits = self
            .text
            .get(start..self.i)
            .ok_or_else(|| malformed(start))?;
        if integer {
            if let Ok(v) = digits.parse::<i64>() {
                return Ok(v.into_bound_py_any(py)?);
            }
            // Beyond 64 bits: Python's own int() parses it exactly, as json.loads does.
            let int = py.get_type::<pyo3::types::PyInt>();
            return Ok(int.call1((digits,))?);
        }
        // Rust and Python both round decimal text to the nearest double, so this is the
        // float json.loads gives (including inf for exponents out of range).
        let v: f64 = digits.parse().map_err(|_| malformed(start))?;
        Ok(PyFloat::new(py, v).into_any())
    }

    fn literal<'py>(&mut self, py: Python<'py>) -> Step<Bound<'py, PyAny>> {
        let rest = self.s.get(self.i..).unwrap_or(&[]);
        let (value, len) = if rest.starts_with(b"true") {
            (true.into_bound_py_any(py)?, 4)
        } else if rest.starts_with(b"false") {
            (false.into_bound_py_any(py)?, 5)
        } else if rest.starts_with(b"null") {
            (py.None().into_bound(py), 4)
        } else {
            return Err(malformed(self.i));
        };
        self.i += len;
        Ok(value)
    }

    fn build<'py>(&mut self, py: Python<'py>) -> Step<Option<Bound<'py, PyAny>>> {
        let mut open: Vec<Open<'py>> = Vec::new();
        loop {
            self.ws();
            if matches!(self.peek(), b'{' | b'[') && open.len() >= MAX_DEPTH {
                return Ok(None);
            }
            let mut value = match self.peek() {
                b'{' => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == b'}' {
                        self.i += 1;
                        PyDict::new(py).into_any()
                    } else {
                        let key = self.key(py)?;
                        open.push(Open::Object(PyDict::new(py), key));
                        continue;
                    }
                }
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == b']' {
                        self.i += 1;
                        PyList::empty(py).into_any()
                    } else {
                        open.push(Open::Array(PyList::empty(py)));
                        continue;
                    }
                }
                b'"' => self.string(py)?.into_any(),
                b't' | b'f' | b'n' => self.literal(py)?,
                _ => self.number(py)?,
            };
            // Put the value where it belongs; close every container it completes.
            loop {
                let Some(top) = open.last_mut() else {
                    return Ok(Some(value));
                };
                self.ws();
                let more = self.peek() == b',';
                self.i += 1;
                match top {
                    Open::Object(dict, key) => {
                        dict.set_item(&*key, value)?;
                        if more {
                            *key = self.key(py)?;
                            break;
                        }
                    }
                    Open::Array(list) => {
                        list.append(value)?;
                        if more {
                            break;
                        }
                    }
                }
                value = match open.pop() {
                    Some(Open::Object(dict, _)) => dict.into_any(),
                    Some(Open::Array(list)) => list.into_any(),
                    None => return Err(malformed(self.i)),
                };
            }
        }
    }
}

/// Build the value of a validated JSON text.
pub(crate) fn build<'py>(py: Python<'py>, text: &str) -> PyResult<Built<'py>> {
    let mut parser = Parser {
        text,
        s: text.as_bytes(),
        i: 0,
    };
    match parser.build(py) {
        Ok(Some(value)) => Ok(Built::Value(value)),
        Ok(None) => Ok(Built::TooDeep),
        Err(Fail::NeedsPython) => Ok(Built::NeedsPython),
        Err(Fail::Py(e)) => Err(e),
    }
}

/// Python strings for keys seen before, by their raw text: a direct-mapped cache, so a
/// key costs a hash and a compare instead of an allocation, and dicts share key objects
/// (with their cached hashes) as `json.loads` arranges within one text.
struct KeyCache(RefCell<Vec<Option<CachedKey>>>);

/// A key's raw text and its Python string.
type CachedKey = (Box<str>, Py<PyString>);

impl KeyCache {
    const SLOTS: usize = 256;
    const MAX_LEN: usize = 40;

    fn get<'py>(&self, py: Python<'py>, raw: &str) -> Bound<'py, PyString> {
        if raw.len() > Self::MAX_LEN {
            return PyString::new(py, raw);
        }
        // FNV-1a: cheap and good enough to spread a few dozen distinct keys.
        let hash = raw.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let slot = hash as usize % Self::SLOTS;
        let mut slots = self.0.borrow_mut();
        if slots.is_empty() {
            slots.resize_with(Self::SLOTS, || None);
        }
        if let Some((key, value)) = &slots[slot] {
            if **key == *raw {
                return value.bind(py).clone();
            }
        }
        let value = PyString::new(py, raw);
        slots[slot] = Some((raw.into(), value.clone().unbind()));
        value
    }
}

thread_local! {
    static KEYS: KeyCache = const { KeyCache(RefCell::new(Vec::new())) };
}
