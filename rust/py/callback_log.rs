//! The callback logs' records as numpy structured arrays (naturally aligned fields, native
//! byte order), and the capacity argument.

use super::error::{to_py, Positions};
use crate::callback_log::{CaptureRecord, PlaybackRecord, MAX_RECORDS};
use crate::error::Error;
use numpy::{PyArray1, PyArrayDescr};
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[derive(Clone, Copy)]
enum Value {
    U64(u64),
    U32(u32),
    F64(f64),
}

impl Value {
    fn format(self) -> &'static str {
        match self {
            Value::U64(_) => "u8",
            Value::U32(_) => "u4",
            Value::F64(_) => "f8",
        }
    }

    fn size(self) -> usize {
        match self {
            Value::U32(_) => 4,
            _ => 8,
        }
    }

    fn write(self, out: &mut [u8]) {
        match self {
            Value::U64(v) => out.copy_from_slice(&v.to_ne_bytes()),
            Value::U32(v) => out.copy_from_slice(&v.to_ne_bytes()),
            Value::F64(v) => out.copy_from_slice(&v.to_ne_bytes()),
        }
    }
}

type Row<const N: usize> = [(&'static str, Value); N];

fn capture_row(r: &CaptureRecord) -> Row<5> {
    [
        ("first_frame", Value::U64(r.first_frame)),
        ("frames", Value::U32(r.frames)),
        ("entry_ns", Value::U64(r.entry_ns)),
        ("current_time", Value::F64(r.current_time)),
        ("adc_time", Value::F64(r.adc_time)),
    ]
}

fn playback_row(r: &PlaybackRecord) -> Row<7> {
    [
        ("first_frame", Value::U64(r.first_frame)),
        ("frames", Value::U32(r.frames)),
        ("first_audible", Value::U32(r.first_audible)),
        ("audible_frames", Value::U32(r.audible_frames)),
        ("entry_ns", Value::U64(r.entry_ns)),
        ("current_time", Value::F64(r.current_time)),
        ("dac_time", Value::F64(r.dac_time)),
    ]
}

/// Field offsets (each aligned to its size) and the item size (a multiple of 8).
fn layout<const N: usize>(row: &Row<N>) -> ([usize; N], usize) {
    let mut offsets = [0; N];
    let mut pos = 0usize;
    for (offset, (_, v)) in offsets.iter_mut().zip(row) {
        pos = pos.next_multiple_of(v.size());
        *offset = pos;
        pos += v.size();
    }
    (offsets, pos.next_multiple_of(8))
}

fn structured<'py, const N: usize>(
    py: Python<'py>,
    template: Row<N>,
    rows: impl ExactSizeIterator<Item = Row<N>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (offsets, itemsize) = layout(&template);
    let mut bytes = vec![0u8; rows.len() * itemsize];
    for (row, item) in rows.zip(bytes.chunks_exact_mut(itemsize)) {
        for (&offset, (_, v)) in offsets.iter().zip(row) {
            v.write(&mut item[offset..offset + v.size()]);
        }
    }
    // Held as u64 so that numpy sees aligned data.
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let spec = PyDict::new(py);
    spec.set_item("names", template.map(|(name, _)| name).to_vec())?;
    spec.set_item("formats", template.map(|(_, v)| v.format()).to_vec())?;
    spec.set_item("offsets", offsets.to_vec())?;
    spec.set_item("itemsize", itemsize)?;
    let dtype = PyArrayDescr::new(py, spec)?;
    PyArray1::from_vec(py, words).call_method1("view", (dtype,))
}

pub(super) fn capture_records<'py>(
    py: Python<'py>,
    records: &[CaptureRecord],
) -> PyResult<Bound<'py, PyAny>> {
    let template = capture_row(&CaptureRecord::default());
    structured(py, template, records.iter().map(capture_row))
}

pub(super) fn playback_records<'py>(
    py: Python<'py>,
    records: &[PlaybackRecord],
) -> PyResult<Bound<'py, PyAny>> {
    let template = playback_row(&PlaybackRecord::default());
    structured(py, template, records.iter().map(playback_row))
}

/// The `callback_log` argument: 0..=MAX_RECORDS records.
pub(super) fn capacity(py: Python<'_>, callback_log: i64) -> PyResult<usize> {
    usize::try_from(callback_log)
        .ok()
        .filter(|&n| n <= MAX_RECORDS)
        .ok_or_else(|| {
            to_py(
                py,
                Error::config(format!(
                    "callback_log must be 0..={MAX_RECORDS} records, not {callback_log}"
                )),
                Positions::Bytes,
            )
        })
}
