//! Read-only views of caller memory, and uninitialised outputs to write into.
//!
//! Inputs: a numpy array is read through its struct (dtype, flags, data pointer), which
//! costs a few nanoseconds; numpy's buffer export would build a format string per array.
//! Anything else goes through the buffer protocol (bytes, bytearray, memoryview,
//! array.array). Only C-contiguous, native-byte-order data is accepted, and the error
//! says how to get it. The GIL is held for the whole life of a view, so no Python code
//! can resize or free the memory while it is read.

use super::error::{audio_format_error, type_error};
use crate::error::partial_sample_message;
use numpy::npyffi::NPY_TYPES;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::borrow::Cow;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// Element type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    I16,
    F32,
    /// Raw bytes: bytes-like objects and uint8/int8 arrays.
    Bytes,
}

impl Kind {
    fn width(self) -> usize {
        match self {
            Kind::I16 => 2,
            Kind::F32 => 4,
            Kind::Bytes => 1,
        }
    }
}

pub(crate) struct Input<'a> {
    ptr: *const u8,
    nbytes: usize,
    pub kind: Kind,
    /// Shape of a numpy input that is not 1-D (0-D included), kept for the output.
    pub shape: Option<Vec<usize>>,
    view: Option<Box<ffi::Py_buffer>>,
    /// The object whose memory this is, borrowed from the caller for as long as the view.
    _owner: PhantomData<&'a ()>,
}

impl Drop for Input<'_> {
    fn drop(&mut self) {
        if let Some(view) = self.view.as_mut() {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer and is
            // released exactly once; Input lives under the GIL ('py).
            unsafe { ffi::PyBuffer_Release(&mut **view) };
        }
    }
}

impl Input<'_> {
    pub fn bytes(&self) -> &[u8] {
        if self.nbytes == 0 {
            return &[];
        }
        // SAFETY: ptr/nbytes describe memory the owner keeps alive and unmoved while the
        // GIL is held, which it is for the lifetime of self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.nbytes) }
    }

    /// The data as int16 samples: int16 arrays, or raw bytes read as PCM16 little-endian.
    /// Borrowed when aligned and in host order, else copied.
    pub fn as_pcm16(&self, py: Python<'_>, what: &str) -> PyResult<Cow<'_, [i16]>> {
        let bytes = self.bytes();
        match self.kind {
            Kind::I16 => Ok(cast_or_copy(bytes, i16::from_ne_bytes)),
            Kind::Bytes if !bytes.len().is_multiple_of(2) => {
                let message = partial_sample_message(bytes.len(), 2);
                Err(audio_format_error(py, format!("{what}: {message}")))
            }
            Kind::Bytes if cfg!(target_endian = "little") => {
                Ok(cast_or_copy(bytes, i16::from_le_bytes))
            }
            Kind::Bytes => Ok(Cow::Owned(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            )),
            Kind::F32 => Err(audio_format_error(
                py,
                format!("{what}: expected int16 samples, got float32 (convert with f32_to_pcm16)"),
            )),
        }
    }

    /// The data as float32 samples, borrowed when aligned, else copied.
    pub fn as_f32(&self, py: Python<'_>, what: &str) -> PyResult<Cow<'_, [f32]>> {
        match self.kind {
            Kind::F32 => Ok(cast_or_copy(self.bytes(), f32::from_ne_bytes)),
            _ => Err(audio_format_error(
                py,
                format!("{what}: expected float32 samples, got {}", self.kind_name()),
            )),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::I16 => "int16",
            Kind::F32 => "float32",
            Kind::Bytes => "bytes",
        }
    }
}

/// `bytes` as a slice of `T` without copying when it is aligned for `T`; otherwise (numpy
/// arrays made with an offset, memoryview slices) a copy read with `from_bytes`.
/// `bytes.len()` is a multiple of `N`, the size of `T`.
fn cast_or_copy<T: Copy, const N: usize>(
    bytes: &[u8],
    from_bytes: fn([u8; N]) -> T,
) -> Cow<'_, [T]> {
    debug_assert_eq!(std::mem::size_of::<T>(), N);
    if bytes.as_ptr().align_offset(std::mem::align_of::<T>()) == 0 || bytes.is_empty() {
        // SAFETY: aligned (or empty), the length is a whole number of T, and T is a plain
        // number type for which every bit pattern is valid.
        return Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / N)
        });
    }
    Cow::Owned(
        bytes
            .chunks_exact(N)
            .map(|c| from_bytes(c.try_into().unwrap_or([0; N])))
            .collect(),
    )
}

/// Read any supported input: audio samples (int16, float32) or bytes. `what` names the
/// argument in error messages.
pub(crate) fn input<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Input<'a>> {
    read(obj, what, false)
}

/// Read the raw bytes of any C-contiguous array or bytes-like object, whatever its dtype
/// or format, as `Kind::Bytes`.
pub(crate) fn raw_input<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Input<'a>> {
    read(obj, what, true)
}

fn read<'a>(obj: &'a Bound<'_, PyAny>, what: &str, raw: bool) -> PyResult<Input<'a>> {
    let py = obj.py();
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        let data = bytes.as_bytes();
        return Ok(Input {
            ptr: data.as_ptr(),
            nbytes: data.len(),
            kind: Kind::Bytes,
            shape: None,
            view: None,
            _owner: PhantomData,
        });
    }
    if let Ok(array) = obj.cast::<PyUntypedArray>() {
        return from_numpy(py, array, what, raw);
    }
    from_buffer(py, obj, what, raw)
}

fn from_numpy<'a>(
    py: Python<'_>,
    array: &'a Bound<'_, PyUntypedArray>,
    what: &str,
    raw: bool,
) -> PyResult<Input<'a>> {
    let dtype = array.dtype();
    let kind = match dtype.num() {
        _ if raw => Kind::Bytes,
        n if n == NPY_TYPES::NPY_SHORT as i32 => Kind::I16,
        n if n == NPY_TYPES::NPY_FLOAT as i32 => Kind::F32,
        n if n == NPY_TYPES::NPY_UBYTE as i32 || n == NPY_TYPES::NPY_BYTE as i32 => Kind::Bytes,
        _ => {
            return Err(audio_format_error(
                py,
                format!(
                    "{what}: unsupported dtype {}; expected int16 or float32 samples (or \
                     uint8 bytes)",
                    dtype.str().map(|s| s.to_string()).unwrap_or_default()
                ),
            ))
        }
    };
    if !raw && dtype.is_native_byteorder() == Some(false) {
        return Err(audio_format_error(
            py,
            format!("{what}: byte-swapped array; convert with x.astype(x.dtype.newbyteorder('='))"),
        ));
    }
    if !array.is_c_contiguous() {
        return Err(audio_format_error(
            py,
            format!("{what}: array is not C-contiguous; pass np.ascontiguousarray(x)"),
        ));
    }
    let shape = array.shape();
    let nbytes = array.len() * if raw { dtype.itemsize() } else { kind.width() };
    // SAFETY: as_array_ptr points at a live PyArrayObject (obj is borrowed for 'py).
    let data = unsafe { (*array.as_array_ptr()).fields.data } as *const u8;
    Ok(Input {
        ptr: data,
        nbytes,
        kind,
        shape: (shape.len() != 1).then(|| shape.to_vec()),
        view: None,
        _owner: PhantomData,
    })
}

fn from_buffer<'a>(
    py: Python<'_>,
    obj: &'a Bound<'_, PyAny>,
    what: &str,
    raw: bool,
) -> PyResult<Input<'a>> {
    let mut view: Box<ffi::Py_buffer> = Box::new(ffi::Py_buffer::new());
    let flags = ffi::PyBUF_C_CONTIGUOUS | ffi::PyBUF_FORMAT;
    // SAFETY: obj is a live object; view is a zeroed Py_buffer we own.
    if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) } != 0 {
        let cause = PyErr::fetch(py);
        let type_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let err = if cause.is_instance_of::<pyo3::exceptions::PyBufferError>(py) {
            audio_format_error(py, format!("{what}: {}", cause.value(py)))
        } else {
            type_error(format!(
                "{what}: expected a numpy array or a bytes-like object, got {type_name}"
            ))
        };
        return Err(err);
    }
    let format = if view.format.is_null() {
        "B".to_owned()
    } else {
        // SAFETY: PyBUF_FORMAT asks for a NUL-terminated format string.
        unsafe { CStr::from_ptr(view.format) }
            .to_string_lossy()
            .into_owned()
    };
    let code = format.trim_start_matches(['@', '=']);
    let (code, little) = match code.strip_prefix('<') {
        Some(rest) => (rest, true),
        None => (code, cfg!(target_endian = "little")),
    };
    let kind = match code {
        _ if raw => Some(Kind::Bytes),
        "B" | "b" | "c" => Some(Kind::Bytes),
        "h" if little => Some(Kind::I16),
        "f" if little => Some(Kind::F32),
        _ => None,
    };
    let mut input = Input {
        ptr: view.buf as *const u8,
        nbytes: view.len as usize,
        kind: Kind::Bytes,
        shape: None,
        view: Some(view),
        _owner: PhantomData,
    };
    match kind {
        Some(k) => {
            input.kind = k;
            Ok(input)
        }
        None => Err(audio_format_error(
            py,
            format!(
                "{what}: unsupported buffer format {format:?}; expected int16 ('h') or float32 \
                 ('f') samples in native byte order, or bytes"
            ),
        )),
    }
}

/// A new numpy array of `T` with the given shape (1-D of `len` when `shape` is None),
/// filled by `fill` before Python can see it. `fill` must write every element.
pub(crate) fn new_array_with<'py, T: numpy::Element, E>(
    py: Python<'py>,
    len: usize,
    shape: Option<&[usize]>,
    fill: impl FnOnce(&mut [MaybeUninit<T>]) -> Result<(), E>,
) -> Result<Bound<'py, PyAny>, E> {
    use numpy::PyArray;
    let array = match shape {
        // SAFETY: the array is filled below before it is returned to Python.
        Some(s) => unsafe { PyArray::<T, numpy::IxDyn>::new(py, s, false) }.into_any(),
        // SAFETY: as above.
        None => unsafe { PyArray::<T, numpy::Ix1>::new(py, [len], false) }.into_any(),
    };
    // SAFETY: the array was just created C-contiguous with `len` elements of T and nothing
    // else references it; the slice does not outlive this function.
    let data = unsafe {
        let ptr = (*array.cast_unchecked::<PyUntypedArray>().as_array_ptr())
            .fields
            .data;
        std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), len)
    };
    fill(data)?;
    Ok(array)
}

/// A new `bytes` of `len` bytes, filled by `fill` (which must write every byte).
pub(crate) fn new_bytes_with<E: From<PyErr>>(
    py: Python<'_>,
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<(), E>,
) -> Result<Bound<'_, PyBytes>, E> {
    // SAFETY: a NULL source asks CPython for an uninitialised bytes object of len bytes.
    let obj = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as ffi::Py_ssize_t) };
    // SAFETY: obj is a new reference, or NULL with an exception set.
    let bytes = unsafe { Bound::from_owned_ptr_or_err(py, obj)?.cast_into_unchecked::<PyBytes>() };
    // SAFETY: the buffer of a bytes object we own and have not shared is writable; the
    // slice does not outlive this function.
    let data = unsafe {
        let ptr = ffi::PyBytes_AsString(bytes.as_ptr());
        std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<u8>>(), len)
    };
    fill(data)?;
    Ok(bytes)
}

/// A new ASCII `str` of `len` characters, filled by `fill`, which must write every byte
/// and only bytes below 0x80.
pub(crate) fn new_ascii_str_with<E: From<PyErr>>(
    py: Python<'_>,
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<(), E>,
) -> Result<Bound<'_, PyAny>, E> {
    // SAFETY: PyUnicode_New with maxchar 127 makes a compact ASCII string of len chars.
    let obj = unsafe { ffi::PyUnicode_New(len as ffi::Py_ssize_t, 127) };
    // SAFETY: obj is a new reference, or NULL with an exception set.
    let s = unsafe { Bound::from_owned_ptr_or_err(py, obj)? };
    // SAFETY: a compact ASCII string stores its len one-byte characters inline (its NUL
    // terminator is already written); nothing else references it yet.
    let data = unsafe {
        let ptr = ffi::PyUnicode_DATA(s.as_ptr());
        std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<u8>>(), len)
    };
    fill(data)?;
    Ok(s)
}
