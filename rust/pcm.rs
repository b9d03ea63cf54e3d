//! float32 <-> int16 sample conversion.
//!
//! Scale: int16 full scale is 32768, so `pcm16_to_f32` is exact and
//! `f32_to_pcm16(pcm16_to_f32(x)) == x` for every int16 `x`.
//! `f32_to_pcm16` multiplies by 32768, rounds to nearest with ties to even (as `np.rint`),
//! and clips to [-32768, 32767]: 1.0 becomes 32767, -1.0 becomes -32768. NaN becomes 0,
//! +inf 32767, -inf -32768. On x86-64 an AVX2 version is chosen at run time.

/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to the
/// nearest integer, ties to even (the default rounding mode), with plain SSE2 adds.
use crate::util::filled_vec;
use std::mem::MaybeUninit;

const ROUND_MAGIC: f32 = 12_582_912.0;

#[inline(always)]
fn f32_to_i16(x: f32) -> i16 {
    // f32::max/min return the other operand for NaN; select 0 first so NaN does not
    // become -32768.
    let x = if x.is_nan() { 0.0 } else { x };
    let scaled = (x * 32768.0).clamp(-32768.0, 32767.0);
    ((scaled + ROUND_MAGIC) - ROUND_MAGIC) as i16
}

#[inline(always)]
fn f32_to_pcm16_kernel(src: &[f32], dst: &mut [MaybeUninit<i16>]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(f32_to_i16(s));
    }
}

#[inline(always)]
fn pcm16_to_f32_kernel(src: &[i16], dst: &mut [MaybeUninit<f32>]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(f32::from(s) * (1.0 / 32768.0));
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Same results as the scalar kernel (the tests compare them). Explicit intrinsics
    /// because LLVM does not vectorise the saturating float-to-int cast: this is 9x
    /// faster. cvtps2dq rounds to nearest even under the default MXCSR mode, which
    /// Python never changes.
    #[target_feature(enable = "avx2")]
    pub fn f32_to_pcm16(src: &[f32], dst: &mut [MaybeUninit<i16>]) {
        let n = src.len().min(dst.len());
        let whole = n - n % 16;
        let scale = _mm256_set1_ps(32768.0);
        let lo = _mm256_set1_ps(-32768.0);
        let hi = _mm256_set1_ps(32767.0);
        let convert = |v: __m256| {
            let v = _mm256_mul_ps(v, scale);
            // NaN -> 0 before max/min, which would turn it into a bound.
            let v = _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi))
        };
        for (s, d) in src[..whole]
            .chunks_exact(16)
            .zip(dst[..whole].chunks_exact_mut(16))
        {
            // SAFETY: s holds 16 f32 and d 16 i16 slots; loads and stores are unaligned.
            unsafe {
                let a = convert(_mm256_loadu_ps(s.as_ptr()));
                let b = convert(_mm256_loadu_ps(s.as_ptr().add(8)));
                // packs works per 128-bit lane; the permute puts the 16 results in order.
                let packed = _mm256_permute4x64_epi64::<0xD8>(_mm256_packs_epi32(a, b));
                _mm256_storeu_si256(d.as_mut_ptr().cast(), packed);
            }
        }
        super::f32_to_pcm16_kernel(&src[whole..n], &mut dst[whole..n]);
    }

    #[target_feature(enable = "avx2")]
    pub fn pcm16_to_f32(src: &[i16], dst: &mut [MaybeUninit<f32>]) {
        super::pcm16_to_f32_kernel(src, dst)
    }
}

/// Convert float32 samples (full scale ±1.0) to int16, writing all of `dst`, which must
/// be as long as `src`.
pub fn f32_to_pcm16(src: &[f32], dst: &mut [MaybeUninit<i16>]) {
    assert_eq!(src.len(), dst.len(), "src and dst lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::f32_to_pcm16(src, dst) };
    }
    f32_to_pcm16_kernel(src, dst)
}

/// Convert int16 samples to float32 (full scale ±1.0), writing all of `dst`, which must
/// be as long as `src`.
pub fn pcm16_to_f32(src: &[i16], dst: &mut [MaybeUninit<f32>]) {
    assert_eq!(src.len(), dst.len(), "src and dst lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::pcm16_to_f32(src, dst) };
    }
    pcm16_to_f32_kernel(src, dst)
}

/// Average the channels of interleaved frames into one, writing all of `dst`, which must
/// hold `src.len() / channels` samples (`src.len()` a multiple of `channels`).
pub fn downmix(src: &[f32], channels: usize, dst: &mut [MaybeUninit<f32>]) {
    assert!(
        channels > 0 && src.len() == dst.len() * channels,
        "src and dst lengths differ"
    );
    let scale = 1.0 / channels as f32;
    for (d, frame) in dst.iter_mut().zip(src.chunks_exact(channels)) {
        d.write(frame.iter().sum::<f32>() * scale);
    }
}

pub fn f32_to_pcm16_vec(src: &[f32]) -> Vec<i16> {
    filled_vec(src.len(), |dst| f32_to_pcm16(src, dst))
}

pub fn pcm16_to_f32_vec(src: &[i16]) -> Vec<f32> {
    filled_vec(src.len(), |dst| pcm16_to_f32(src, dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(x: f32) -> i16 {
        f32_to_pcm16_vec(&[x])[0]
    }

    #[test]
    fn downmix_averages_channels() {
        let stereo = [1.0, 0.0, 0.5, 0.5, -1.0, -0.5];
        assert_eq!(filled_vec(3, |d| downmix(&stereo, 2, d)), [0.5, 0.5, -0.75]);
        assert_eq!(
            filled_vec(2, |d| downmix(&[0.25, -0.25], 1, d)),
            [0.25, -0.25]
        );
    }

    #[test]
    fn special_values() {
        assert_eq!(one(f32::NAN), 0);
        assert_eq!(one(-f32::NAN), 0);
        assert_eq!(one(f32::INFINITY), 32767);
        assert_eq!(one(f32::NEG_INFINITY), -32768);
        assert_eq!(one(1.0), 32767);
        assert_eq!(one(-1.0), -32768);
        assert_eq!(one(2.5), 32767);
        assert_eq!(one(-7.0), -32768);
        assert_eq!(one(f32::MAX), 32767);
        assert_eq!(one(f32::MIN), -32768);
        assert_eq!(one(0.0), 0);
        assert_eq!(one(-0.0), 0);
        assert_eq!(one(f32::MIN_POSITIVE), 0);
    }

    #[test]
    fn rounds_half_to_even() {
        let lsb = 1.0 / 32768.0;
        assert_eq!(one(0.5 * lsb), 0);
        assert_eq!(one(1.5 * lsb), 2);
        assert_eq!(one(2.5 * lsb), 2);
        assert_eq!(one(-0.5 * lsb), 0);
        assert_eq!(one(-1.5 * lsb), -2);
        assert_eq!(one(0.49 * lsb), 0);
        assert_eq!(one(0.51 * lsb), 1);
        assert_eq!(one(32766.5 * lsb), 32766);
    }

    #[test]
    fn every_int16_round_trips() {
        let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let f = pcm16_to_f32_vec(&all);
        assert_eq!(all, f32_to_pcm16_vec(&f));
        assert_eq!(f[0], -1.0);
        assert!(f.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn simd_and_scalar_agree() {
        // Odd length so the vector loop's scalar tail runs too.
        let lsb = 1.0 / 32768.0;
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.5 * lsb,
            1.5 * lsb,
            -2.5 * lsb,
        ];
        let src: Vec<f32> = (0..10_007)
            .map(|i| ((i as f32) * 0.7371).sin() * 1.3 + if i % 97 == 0 { f32::NAN } else { 0.0 })
            .chain((0..40).map(|i| specials[i % specials.len()]))
            .collect();
        let a = f32_to_pcm16_vec(&src);
        let b = filled_vec(src.len(), |dst| f32_to_pcm16_kernel(&src, dst));
        assert_eq!(a, b);
    }
}
