//! Small helpers shared by the pure modules.

use std::mem::MaybeUninit;

/// A `Vec` of `n` elements written by `fill`, which must write every element.
pub fn filled_vec<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote all n elements (every caller here is a converter that writes
    // one output per input and asserts the lengths match).
    unsafe { v.set_len(n) };
    v
}
