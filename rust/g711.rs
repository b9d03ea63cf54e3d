//! G.711 mu-law and A-law (ITU-T G.711), bit-exact with CPython's `audioop`.
//!
//! `audioop` encodes from the top 14 (mu-law) or 13 (A-law) bits of each int16 sample,
//! truncating toward minus infinity (an arithmetic shift), and decodes through the classic
//! Sun tables. Encoding here uses tables computed at compile time from the reference
//! algorithm (16 KiB mu-law, 8 KiB A-law), so they cannot drift from it; decoding with
//! AVX2 computes each sample with the same formulas that build the 512-byte decode tables
//! (see `avx2`), and uses the tables elsewhere.

use crate::util::filled_vec;
use std::mem::MaybeUninit;

const ULAW_CLIP: i32 = 8159;
const ULAW_BIAS: i32 = 0x84 >> 2;
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut seg = 0;
    while seg < 8 {
        if value <= ends[seg] {
            return seg;
        }
        seg += 1;
    }
    8
}

/// Reference mu-law encoder of one 14-bit sample (the int16 sample shifted right by 2).
const fn linear14_to_ulaw(sample: i32) -> u8 {
    let (mut magnitude, mask) = if sample < 0 {
        (-sample, 0x7F)
    } else {
        (sample, 0xFF)
    };
    if magnitude > ULAW_CLIP {
        magnitude = ULAW_CLIP;
    }
    magnitude += ULAW_BIAS;
    let seg = segment(magnitude, &ULAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let code = ((seg as i32) << 4) | ((magnitude >> (seg + 1)) & 0xF);
    (code ^ mask) as u8
}

/// Reference A-law encoder of one 13-bit sample (the int16 sample shifted right by 3).
const fn linear13_to_alaw(sample: i32) -> u8 {
    let (magnitude, mask) = if sample >= 0 {
        (sample, 0xD5)
    } else {
        (-sample - 1, 0x55)
    };
    let seg = segment(magnitude, &ALAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let code = ((seg as i32) << 4) | ((magnitude >> shift) & 0xF);
    (code ^ mask) as u8
}

#[inline(always)]
const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & 0x0F) as i32) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

#[inline(always)]
const fn alaw_to_linear(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let seg = (a & 0x70) >> 4;
    // Written without branches on `seg` so that the AVX2 loop below vectorises.
    let base = ((a & 0x0F) << 4) + if seg == 0 { 8 } else { 0x108 };
    let t = base << if seg > 1 { seg - 1 } else { 0 };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < table.len() {
        // Index = the 14-bit two's-complement value, i.e. (sample >> 2) & 0x3FFF.
        let value = if i >= 1 << 13 {
            i as i32 - (1 << 14)
        } else {
            i as i32
        };
        table[i] = linear14_to_ulaw(value);
        i += 1;
    }
    table
};

static ALAW_ENCODE: [u8; 1 << 13] = {
    let mut table = [0u8; 1 << 13];
    let mut i = 0;
    while i < table.len() {
        let value = if i >= 1 << 12 {
            i as i32 - (1 << 13)
        } else {
            i as i32
        };
        table[i] = linear13_to_alaw(value);
        i += 1;
    }
    table
};

static ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    table
};

static ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    table
};

/// Encode int16 samples to mu-law bytes. Writes all of `dst`, which must be as long as `src`.
pub fn ulaw_encode(src: &[i16], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(src.len(), dst.len(), "src and dst lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(ULAW_ENCODE[((s >> 2) as u16 & 0x3FFF) as usize]);
    }
}

pub fn ulaw_encode_vec(src: &[i16]) -> Vec<u8> {
    filled_vec(src.len(), |dst| ulaw_encode(src, dst))
}

/// Encode int16 samples to A-law bytes. Writes all of `dst`, which must be as long as `src`.
pub fn alaw_encode(src: &[i16], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(src.len(), dst.len(), "src and dst lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(ALAW_ENCODE[((s >> 3) as u16 & 0x1FFF) as usize]);
    }
}

pub fn alaw_encode_vec(src: &[i16]) -> Vec<u8> {
    filled_vec(src.len(), |dst| alaw_encode(src, dst))
}

/// Decoding computes each sample instead of looking it up, 16 at a time in 16-bit lanes:
/// the segment's left shift becomes a multiply by a power of two that `pshufb` looks up
/// (AVX2 has no per-lane 16-bit shift), 4x faster than the table for mu-law and 2x for
/// A-law. The table serves CPUs without AVX2 and the last few samples.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// `1 << segment` for mu-law, `1 << max(segment - 1, 0)` for A-law, per byte index;
    /// indexes 8 and up (the zero high byte of each 16-bit lane) give 0.
    const ULAW_POW2: [i8; 16] = [1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0];
    const ALAW_POW2: [i8; 16] = [1, 1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0];

    #[inline]
    #[target_feature(enable = "avx2")]
    fn broadcast_table(table: &[i8; 16]) -> __m256i {
        // SAFETY: reads exactly the 16 bytes of `table`.
        let lane = unsafe { _mm_loadu_si128(table.as_ptr().cast()) };
        _mm256_broadcastsi128_si256(lane)
    }

    /// The segment (bits 4..7) of each code in 16-bit lanes, and `table[segment]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn segment_factor(code: __m256i, table: __m256i) -> (__m256i, __m256i) {
        let segment = _mm256_and_si256(_mm256_srli_epi16::<4>(code), _mm256_set1_epi16(7));
        let factor = _mm256_and_si256(_mm256_shuffle_epi8(table, segment), _mm256_set1_epi16(0xFF));
        (segment, factor)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn ulaw16(codes: __m128i, table: __m256i) -> __m256i {
        let u = _mm256_xor_si256(_mm256_cvtepu8_epi16(codes), _mm256_set1_epi16(0xFF));
        let (_, factor) = segment_factor(u, table);
        let mantissa = _mm256_and_si256(u, _mm256_set1_epi16(0x0F));
        let bias = _mm256_set1_epi16(0x84);
        let t = _mm256_mullo_epi16(
            _mm256_add_epi16(_mm256_slli_epi16::<3>(mantissa), bias),
            factor,
        );
        let negative = _mm256_cmpeq_epi16(
            _mm256_and_si256(u, _mm256_set1_epi16(0x80)),
            _mm256_set1_epi16(0x80),
        );
        _mm256_blendv_epi8(
            _mm256_sub_epi16(t, bias),
            _mm256_sub_epi16(bias, t),
            negative,
        )
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn alaw16(codes: __m128i, table: __m256i) -> __m256i {
        let a = _mm256_xor_si256(_mm256_cvtepu8_epi16(codes), _mm256_set1_epi16(0x55));
        let (segment, factor) = segment_factor(a, table);
        let mantissa = _mm256_slli_epi16::<4>(_mm256_and_si256(a, _mm256_set1_epi16(0x0F)));
        let first_segment = _mm256_cmpeq_epi16(segment, _mm256_setzero_si256());
        let bias = _mm256_blendv_epi8(
            _mm256_set1_epi16(0x108),
            _mm256_set1_epi16(8),
            first_segment,
        );
        let t = _mm256_mullo_epi16(_mm256_add_epi16(mantissa, bias), factor);
        let positive = _mm256_cmpeq_epi16(
            _mm256_and_si256(a, _mm256_set1_epi16(0x80)),
            _mm256_set1_epi16(0x80),
        );
        _mm256_blendv_epi8(_mm256_sub_epi16(_mm256_setzero_si256(), t), t, positive)
    }

    macro_rules! decoder {
        ($name:ident, $lanes:ident, $table:ident, $scalar:ident) => {
            #[target_feature(enable = "avx2")]
            pub fn $name(src: &[u8], dst: &mut [MaybeUninit<i16>]) {
                let table = broadcast_table(&$table);
                let whole = src.len().min(dst.len()) / 16 * 16;
                for (s, d) in src[..whole]
                    .chunks_exact(16)
                    .zip(dst[..whole].chunks_exact_mut(16))
                {
                    // SAFETY: s holds 16 bytes and d 16 i16 slots; both unaligned accesses.
                    unsafe {
                        let codes = _mm_loadu_si128(s.as_ptr().cast());
                        _mm256_storeu_si256(d.as_mut_ptr().cast(), $lanes(codes, table));
                    }
                }
                for (d, &c) in dst[whole..].iter_mut().zip(&src[whole..]) {
                    d.write(super::$scalar[c as usize]);
                }
            }
        };
    }

    decoder!(ulaw_decode, ulaw16, ULAW_POW2, ULAW_DECODE);
    decoder!(alaw_decode, alaw16, ALAW_POW2, ALAW_DECODE);
}

/// Decode mu-law bytes to int16 samples. Writes all of `dst`, which must be as long as `src`.
pub fn ulaw_decode(src: &[u8], dst: &mut [MaybeUninit<i16>]) {
    assert_eq!(src.len(), dst.len(), "src and dst lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::ulaw_decode(src, dst) };
    }
    for (d, &c) in dst.iter_mut().zip(src) {
        d.write(ULAW_DECODE[c as usize]);
    }
}

pub fn ulaw_decode_vec(src: &[u8]) -> Vec<i16> {
    filled_vec(src.len(), |dst| ulaw_decode(src, dst))
}

/// Decode A-law bytes to int16 samples. Writes all of `dst`, which must be as long as `src`.
pub fn alaw_decode(src: &[u8], dst: &mut [MaybeUninit<i16>]) {
    assert_eq!(src.len(), dst.len(), "src and dst lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::alaw_decode(src, dst) };
    }
    for (d, &c) in dst.iter_mut().zip(src) {
        d.write(ALAW_DECODE[c as usize]);
    }
}

pub fn alaw_decode_vec(src: &[u8]) -> Vec<i16> {
    filled_vec(src.len(), |dst| alaw_decode(src, dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Spot values of CPython's audioop tables (_st_ulaw2linear16, _st_alaw2linear16).
    #[test]
    fn decode_table_ends() {
        assert_eq!(ULAW_DECODE[0x00], -32124);
        assert_eq!(ULAW_DECODE[0x7F], 0);
        assert_eq!(ULAW_DECODE[0x80], 32124);
        assert_eq!(ULAW_DECODE[0xFF], 0);
        assert_eq!(ALAW_DECODE[0x00], -5504);
        assert_eq!(ALAW_DECODE[0x2A], -32256);
        assert_eq!(ALAW_DECODE[0x55], -8);
        assert_eq!(ALAW_DECODE[0xD5], 8);
    }

    #[test]
    fn computed_decode_matches_the_tables() {
        // 0..=255 twice and a bit, so every code runs through the vector loop and the
        // scalar tail.
        let codes: Vec<u8> = (0..=255).chain(0..=255).chain(0..7).collect();
        let table_ulaw: Vec<i16> = codes.iter().map(|&c| ULAW_DECODE[c as usize]).collect();
        let table_alaw: Vec<i16> = codes.iter().map(|&c| ALAW_DECODE[c as usize]).collect();
        assert_eq!(ulaw_decode_vec(&codes), table_ulaw);
        assert_eq!(alaw_decode_vec(&codes), table_alaw);
    }

    #[test]
    fn silence_and_extremes() {
        assert_eq!(
            ulaw_encode_vec(&[0, i16::MAX, i16::MIN]),
            [0xFF, 0x80, 0x00]
        );
        assert_eq!(
            alaw_encode_vec(&[0, i16::MAX, i16::MIN]),
            [0xD5, 0xAA, 0x2A]
        );
    }

    #[test]
    fn decode_then_encode_is_identity_on_codes() {
        // Every code except mu-law's negative zero (0x7F decodes to 0, which encodes as 0xFF).
        for code in 0..=255u8 {
            if code != 0x7F {
                assert_eq!(
                    ulaw_encode_vec(&ulaw_decode_vec(&[code])),
                    [code],
                    "mu-law {code:#04x}"
                );
            }
            assert_eq!(
                alaw_encode_vec(&alaw_decode_vec(&[code])),
                [code],
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn encode_is_monotonic() {
        let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        for pcm in [
            ulaw_decode_vec(&ulaw_encode_vec(&all)),
            alaw_decode_vec(&alaw_encode_vec(&all)),
        ] {
            assert!(pcm.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
