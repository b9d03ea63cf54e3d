//! Strict standard base64 (RFC 4648 §4, padded).
//!
//! Where the CPU has AVX-512 VBMI (checked at run time), both directions run entirely in
//! `mod avx512`, whole 64-character blocks and a masked final block alike; elsewhere
//! `base64-simd` (AVX2/SSSE3/NEON/scalar) does the work. Either way the fast path only
//! accepts or rejects; a rejected input is scanned again, slowly, by `diagnose` to say what
//! is wrong and where, so messages and positions do not depend on the CPU.
//!
//! Strict means: only the 64 alphabet characters, `=` padding only at the end and making
//! the length a multiple of four (no more), no whitespace, and canonical: the unused low
//! bits of the last character before the padding must be zero (RFC 4648 §3.5 lets decoders
//! reject them). CPython's `b64decode(validate=True)` accepts both non-zero unused bits and
//! surplus `=`; those are the two places where we differ.

use crate::error::{Error, Result};
use base64_simd::{Out, STANDARD};
use std::mem::MaybeUninit;

/// Characters needed to encode `nbytes` bytes.
pub const fn encoded_len(nbytes: usize) -> usize {
    nbytes.div_ceil(3) * 4
}

/// True where `mod avx512` can run: checked once per process by std, then a load and a
/// test per call.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx512_vbmi() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// Encode `src` into `dst`, which must be exactly `encoded_len(src.len())` long.
pub fn encode_into(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(
        dst.len(),
        encoded_len(src.len()),
        "dst has the wrong length"
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx512_vbmi() {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked just above.
        unsafe { avx512::encode(src, dst) };
        return;
    }
    encode_portable(src, dst);
}

/// `encode_into` without AVX-512: base64-simd picks AVX2, SSSE3, NEON or scalar code.
fn encode_portable(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    let _written = STANDARD.encode(src, Out::from_uninit_slice(dst));
}

pub fn encode_to_string(src: &[u8]) -> String {
    let n = encoded_len(src.len());
    let mut out = Vec::with_capacity(n);
    encode_into(src, &mut out.spare_capacity_mut()[..n]);
    // SAFETY: encode_into wrote all n bytes (it writes every byte of its `dst`).
    unsafe { out.set_len(n) };
    // SAFETY: base64 text is ASCII, hence UTF-8.
    unsafe { String::from_utf8_unchecked(out) }
}

/// Length of `text` without its padding: the trailing `=`, at most two of them, of a text
/// whose length is a multiple of 4. None if the length is not; a third `=` from the end
/// stays in the body, where the decoder rejects it. This is all the length and padding
/// checking that `decoded_len` (and base64-simd's `decoded_length`) does.
fn body_len(text: &[u8]) -> Option<usize> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let pad = match text {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    Some(text.len() - pad)
}

/// Bytes that a body (text without padding) of `body_len` characters decodes to. A body
/// length of 4k + 1 cannot happen (the padding is at most 2); it would give 3k.
const fn body_decoded_len(body_len: usize) -> usize {
    body_len / 4 * 3 + body_len % 4 * 3 / 4
}

/// Bytes that `text` decodes to; checks only its length and padding.
pub fn decoded_len(text: &[u8]) -> Result<usize> {
    body_len(text)
        .map(body_decoded_len)
        .ok_or_else(|| diagnose(text))
}

/// Decode `text` into `dst`, which must be exactly `decoded_len(text)` long (it panics
/// otherwise, once the length and padding of `text` have been found valid; if they are
/// not, it returns the same error as `decoded_len`).
pub fn decode_into(text: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<()> {
    let Some(body) = body_len(text) else {
        return Err(diagnose(text));
    };
    assert_eq!(
        dst.len(),
        body_decoded_len(body),
        "dst has the wrong length"
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx512_vbmi() {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked just above.
        let ok = unsafe { avx512::decode(&text[..body], dst) };
        return if ok { Ok(()) } else { Err(diagnose(text)) };
    }
    if decode_portable(text, dst) {
        Ok(())
    } else {
        Err(diagnose(text))
    }
}

/// `decode_into` without AVX-512 (base64-simd), for a `dst` of the right length: false
/// where strict decoding rejects `text`.
fn decode_portable(text: &[u8], dst: &mut [MaybeUninit<u8>]) -> bool {
    let expected = dst.len();
    matches!(STANDARD.decode(text, Out::from_uninit_slice(dst)), Ok(written) if written.len() == expected)
}

/// Base64 64 characters at a time with AVX-512 VBMI, after W. Muła and D. Lemire, "Base64
/// encoding and decoding at almost the speed of a memory copy" (2019). base64-simd stops
/// at AVX2; this is 2-3x faster on long inputs and has a smaller fixed cost on short ones.
///
/// In bounds by construction: every load and store goes through a slice of the input or
/// output (a block of `chunks_exact`, a range taken with bounds checks, or the remainder
/// after the blocks) and touches no more bytes than that slice has: a full 64-byte access
/// only on a 64-byte slice, otherwise a byte mask computed from the slice's own length.
/// Masked-off bytes are neither read nor written and cannot fault, so nothing past the
/// end of the input is ever read, even on the last page of a mapping.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Mask of the low `n` bytes of a 64-byte vector, `n` <= 64.
    #[inline(always)]
    fn low_bytes(n: usize) -> u64 {
        debug_assert!(n <= 64);
        u64::MAX.checked_shr(64 - n as u32).unwrap_or(0)
    }

    /// For the encoder: 32-bit lane i gets input bytes [b1, b0, b2, b1] of its group
    /// b0-b1-b2 (bytes 3i, 3i+1, 3i+2), so that each 16-bit half holds, in order, the bits
    /// of two of the four 6-bit fields.
    const SPREAD: [u8; 64] = {
        let mut table = [0u8; 64];
        let mut i = 0;
        while i < 16 {
            let b = 3 * i as u8;
            table[4 * i] = b + 1;
            table[4 * i + 1] = b;
            table[4 * i + 2] = b + 2;
            table[4 * i + 3] = b + 1;
            i += 1;
        }
        table
    };

    /// Bit offsets of the four 6-bit fields in each 32-bit lane after SPREAD, twice per
    /// 64-bit lane: 10, 4 (in b0:b1) and 22, 16 (in b1:b2), then the same plus 32.
    const FIELD_SHIFTS: i64 = 0x3036_242a_1016_040a;

    /// Value of each 7-bit character, 0x80 for characters outside the alphabet.
    const LOOKUP: [u8; 128] = {
        let mut table = [0x80u8; 128];
        let mut i = 0;
        while i < 64 {
            table[ALPHABET[i] as usize] = i as u8;
            i += 1;
        }
        table
    };

    /// For output byte j of a block: lane j / 3 holds bytes [c, b, a, 0] of the 24-bit
    /// group a-b-c, so byte j comes from lane byte 4 * (j / 3) + 2 - j % 3.
    const GATHER: [u8; 64] = {
        let mut table = [0u8; 64];
        let mut j = 0;
        while j < 48 {
            table[j] = (4 * (j / 3) + 2 - j % 3) as u8;
            j += 1;
        }
        table
    };

    /// The 64 characters of 48 bytes (the low 48 of `input`; the top 16 are ignored).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    #[inline]
    fn encode_block(
        input: __m512i,
        spread: __m512i,
        shifts: __m512i,
        alphabet: __m512i,
    ) -> __m512i {
        let lanes = _mm512_permutexvar_epi8(spread, input);
        // Each byte gets the 8 bits at its field's offset: the 6-bit field and 2 bits of
        // its neighbour, which the alphabet permute ignores (it uses the low 6 bits).
        let fields = _mm512_multishift_epi64_epi8(shifts, lanes);
        _mm512_permutexvar_epi8(fields, alphabet)
    }

    /// Encode `src` into `dst`, which must be exactly `encoded_len(src.len())` long.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub fn encode(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
        assert_eq!(dst.len(), super::encoded_len(src.len()));
        let blocks = src.len() / 48;
        let (src_blocks, src_tail) = src.split_at(blocks * 48);
        let (dst_blocks, dst_tail) = dst.split_at_mut(blocks * 64);
        // SAFETY: the tables are 64 bytes each.
        let (spread, alphabet) = unsafe {
            (
                _mm512_loadu_si512(SPREAD.as_ptr().cast()),
                _mm512_loadu_si512(ALPHABET.as_ptr().cast()),
            )
        };
        let shifts = _mm512_set1_epi64(FIELD_SHIFTS);
        for (block, out) in src_blocks
            .chunks_exact(48)
            .zip(dst_blocks.chunks_exact_mut(64))
        {
            // A masked load of exactly the block's 48 bytes: as fast here as a full 64-byte
            // load where `src` has room for one, and in bounds without a second case.
            // SAFETY: reads the 48 bytes of `block`, writes the 64 bytes of `out`.
            unsafe {
                let input = _mm512_maskz_loadu_epi8(low_bytes(48), block.as_ptr().cast());
                let chars = encode_block(input, spread, shifts, alphabet);
                _mm512_storeu_si512(out.as_mut_ptr().cast(), chars);
            }
        }
        if src_tail.is_empty() {
            return;
        }
        // The last 1..=47 bytes: zeros after them make the fields of their last group
        // come out exactly as the standard wants (zero unused bits), then '=' pads the
        // group to 4 characters.
        let data_chars = (src_tail.len() * 4).div_ceil(3);
        let pad = low_bytes(dst_tail.len()) & !low_bytes(data_chars);
        // SAFETY: reads the src_tail.len() < 48 bytes of `src_tail`, writes the
        // dst_tail.len() <= 64 bytes of `dst_tail` (4 per started 3-byte group).
        unsafe {
            let input =
                _mm512_maskz_loadu_epi8(low_bytes(src_tail.len()), src_tail.as_ptr().cast());
            let chars = encode_block(input, spread, shifts, alphabet);
            let chars = _mm512_mask_mov_epi8(chars, pad, _mm512_set1_epi8(b'=' as i8));
            _mm512_mask_storeu_epi8(
                dst_tail.as_mut_ptr().cast(),
                low_bytes(dst_tail.len()),
                chars,
            );
        }
    }

    /// Decode `body` (base64 text without its padding) into `dst`, which must be exactly
    /// `body_decoded_len(body.len())` long. False if `body` holds a character outside the
    /// alphabet (`=` included) or its last character has non-zero unused bits; `dst` is
    /// then partly written.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub fn decode(body: &[u8], dst: &mut [MaybeUninit<u8>]) -> bool {
        assert_eq!(dst.len(), super::body_decoded_len(body.len()));
        let blocks = body.len() / 64;
        let (src_blocks, src_tail) = body.split_at(blocks * 64);
        // SAFETY: LOOKUP is 128 bytes, GATHER 64.
        let (lookup_lo, lookup_hi, gather) = unsafe {
            (
                _mm512_loadu_si512(LOOKUP.as_ptr().cast()),
                _mm512_loadu_si512(LOOKUP.as_ptr().add(64).cast()),
                _mm512_loadu_si512(GATHER.as_ptr().cast()),
            )
        };
        let pack_pairs = _mm512_set1_epi32(0x0140_0140);
        let pack_quads = _mm512_set1_epi32(0x0001_1000);
        // The permute looks at the low 7 bits of each character: its value, or 0x80 if it
        // is outside the alphabet. Masked-off characters get the value 0.
        let lookup = |chars: __m512i, live: u64| {
            _mm512_maskz_permutex2var_epi8(live, lookup_lo, chars, lookup_hi)
        };
        // A character with its high bit set, or whose value has it, is outside the
        // alphabet: `bad` collects both high bits of every block, checked once at the end
        // (what was written before then does not matter if it fails).
        let mut bad = _mm512_setzero_si512();
        // The 64 values packed into 48 bytes (the top 16 of the vector are garbage).
        let pack = |values: __m512i| {
            let pairs = _mm512_maddubs_epi16(values, pack_pairs);
            let quads = _mm512_madd_epi16(pairs, pack_quads);
            _mm512_permutexvar_epi8(gather, quads)
        };
        for (i, block) in src_blocks.chunks_exact(64).enumerate() {
            // SAFETY: reads the 64 bytes of `block`.
            let chars = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
            let values = lookup(chars, u64::MAX);
            bad = _mm512_ternarylogic_epi32::<0xFE>(bad, chars, values);
            let bytes = pack(values);
            let at = i * 48;
            // A full store where `dst` has room for it: its 16 garbage bytes fall on
            // bytes that a later block or the tail writes. Masked stores are slower.
            if let Some(out) = dst.get_mut(at..at + 64) {
                // SAFETY: writes the 64 bytes of `out`.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), bytes) };
            } else {
                let out = &mut dst[at..at + 48];
                // SAFETY: writes the 48 bytes of `out`.
                unsafe { _mm512_mask_storeu_epi8(out.as_mut_ptr().cast(), low_bytes(48), bytes) };
            }
        }
        let dst_tail = &mut dst[blocks * 48..];
        if !src_tail.is_empty() {
            // The last 2..=63 characters (never 4k + 1). Those of a last, partial group
            // come with zeros in place of the missing ones, so its 3 bytes are the 1 or 2
            // it decodes to followed by the unused bits of its last character, which must
            // be zero.
            let live = low_bytes(src_tail.len());
            // SAFETY: reads the src_tail.len() < 64 bytes of `src_tail`.
            let chars = unsafe { _mm512_maskz_loadu_epi8(live, src_tail.as_ptr().cast()) };
            let values = lookup(chars, live);
            bad = _mm512_ternarylogic_epi32::<0xFE>(bad, chars, values);
            let bytes = pack(values);
            let unused = low_bytes(src_tail.len().div_ceil(4) * 3) & !low_bytes(dst_tail.len());
            if _mm512_mask_test_epi8_mask(unused, bytes, bytes) != 0 {
                return false;
            }
            // SAFETY: writes the dst_tail.len() <= 47 bytes of `dst_tail`.
            unsafe {
                _mm512_mask_storeu_epi8(
                    dst_tail.as_mut_ptr().cast(),
                    low_bytes(dst_tail.len()),
                    bytes,
                )
            };
        }
        _mm512_movepi8_mask(bad) == 0
    }
}

/// Check `text` without decoding it.
pub fn validate(text: &[u8]) -> Result<()> {
    STANDARD.check(text).map_err(|_| diagnose(text))
}

pub fn decode_to_vec(text: &[u8]) -> Result<Vec<u8>> {
    let n = decoded_len(text)?;
    let mut out = Vec::with_capacity(n);
    decode_into(text, &mut out.spare_capacity_mut()[..n])?;
    // SAFETY: decode_into returned Ok, so it wrote all n bytes.
    unsafe { out.set_len(n) };
    Ok(out)
}

const STANDARD_VALUE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

fn is_alphabet(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn describe(c: u8) -> String {
    match c {
        b' ' => "a space".to_owned(),
        b'\n' => "a newline".to_owned(),
        b'\r' => "a carriage return".to_owned(),
        b'\t' => "a tab".to_owned(),
        b'-' | b'_' => format!(
            "{:?} (URL-safe alphabet; expected the standard one)",
            c as char
        ),
        0x21..=0x7e => format!("{:?}", c as char),
        _ => format!("byte 0x{c:02x}"),
    }
}

/// Say exactly why strict decoding rejects `text`. Called only after a rejection.
fn diagnose(text: &[u8]) -> Error {
    // A character that is neither in the alphabet nor padding is the clearest problem.
    if let Some(i) = text.iter().position(|&c| !is_alphabet(c) && c != b'=') {
        return Error::base64(
            i,
            format!("{} is not in the base64 alphabet", describe(text[i])),
        );
    }
    let body_len = text.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    if let Some(i) = text[..body_len].iter().position(|&c| c == b'=') {
        return Error::base64(i, "padding '=' before the end".to_owned());
    }
    let pad = text.len() - body_len;
    if pad > 2 {
        return Error::base64(
            body_len,
            format!("{pad} padding characters; at most 2 are allowed"),
        );
    }
    if !text.len().is_multiple_of(4) {
        let kind = if pad == 0 {
            "missing padding"
        } else {
            "incorrect padding"
        };
        return Error::base64(
            text.len(),
            format!("{kind}: length {} is not a multiple of 4", text.len()),
        );
    }
    let Some(last) = body_len.checked_sub(1) else {
        return Error::base64(0, "rejected by the strict decoder".to_owned());
    };
    let unused_bits_mask = match body_len % 4 {
        2 => 0x0F,
        3 => 0x03,
        _ => 0,
    };
    if STANDARD_VALUE[text[last] as usize] & unused_bits_mask != 0 {
        return Error::base64(
            last,
            format!(
                "{:?} has non-zero unused low bits (non-canonical encoding of the last byte)",
                text[last] as char
            ),
        );
    }
    // The SIMD decoder rejected something the checks above did not explain.
    Error::base64(0, "rejected by the strict decoder".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Vec<u8>> {
        decode_to_vec(text.as_bytes())
    }

    #[test]
    fn round_trip_all_lengths() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for n in 0..data.len() {
            let text = encode_to_string(&data[..n]);
            assert_eq!(text.len(), encoded_len(n));
            assert_eq!(decode(&text).unwrap(), &data[..n]);
            assert_eq!(decoded_len(text.as_bytes()).unwrap(), n);
        }
    }

    #[test]
    fn bulk_and_tail_agree_with_the_reference_decoder() {
        // Lengths around the 64-character blocks, so every split of bulk and tail runs.
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for n in (0..400).chain([3000, 3001, 3002, 4999]) {
            let text = encode_to_string(&data[..n]);
            assert_eq!(
                decode_to_vec_fast(text.as_bytes()).unwrap(),
                &data[..n],
                "n={n}"
            );
        }
    }

    #[test]
    fn bulk_rejects_a_bad_character_in_any_position() {
        let text = encode_to_string(&[0x5Au8; 300]);
        for pos in [0, 1, 63, 64, 65, 127, 128, 200, text.len() - 5] {
            for bad in [b'!', b'=', b'\n', 0x80, 0xFF, b'-'] {
                let mut t = text.clone().into_bytes();
                t[pos] = bad;
                let err = decode_to_vec_fast(&t).unwrap_err();
                assert_eq!(err.position(), Some(pos), "pos={pos} bad={bad:#x}: {err}");
            }
        }
    }

    fn decode_to_vec_fast(text: &[u8]) -> Result<Vec<u8>> {
        let n = decoded_len(text)?;
        let mut out = Vec::with_capacity(n);
        decode_into(text, &mut out.spare_capacity_mut()[..n])?;
        // SAFETY: decode_into wrote all n bytes.
        unsafe { out.set_len(n) };
        Ok(out)
    }

    #[test]
    fn known_vectors() {
        // RFC 4648 §10
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode_to_string(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn rejects_with_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("Zm9v!mFy", 4, "'!'"),
            ("Zm9vY mFy", 5, "a space"),
            ("Zm9v\nYmFy", 4, "a newline"),
            ("Zm9-", 3, "URL-safe"),
            ("Zg=a", 2, "padding '=' before the end"),
            ("Zm9vY", 5, "missing padding"),
            ("Zm9vYg=", 7, "incorrect padding"),
            ("Zg===", 2, "3 padding characters"),
            ("Z===", 1, "3 padding characters"),
            ("Zm9vY===", 5, "3 padding characters"),
        ];
        for &(text, pos, what) in cases {
            let err = decode(text).unwrap_err();
            assert_eq!(err.position(), Some(pos), "{text:?}: {err}");
            assert!(err.to_string().contains(what), "{text:?}: {err}");
        }
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // CPython's b64decode(validate=True) accepts these as b"f" and b"fo".
        for (text, pos) in [("Zh==", 1), ("Zm9=", 2)] {
            let err = decode(text).unwrap_err();
            assert_eq!(err.position(), Some(pos), "{text}: {err}");
            assert!(err.to_string().contains("non-canonical"), "{text}: {err}");
        }
    }

    /// A plain scalar encoder, independent of both SIMD ones.
    fn reference_encode(src: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut text = String::new();
        for group in src.chunks(3) {
            let bits = group
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                text.push(if i <= group.len() {
                    ALPHABET[(bits >> (18 - 6 * i) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        text
    }

    /// Deterministic bytes that look random enough to hit every character.
    fn noise(n: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    /// Lengths for the exhaustive tests: every one up to 600, then large ones around
    /// whole blocks (48 bytes in, 64 characters out).
    fn lengths() -> impl Iterator<Item = usize> {
        (0..=600).chain([4799, 4800, 4801, 48_000, 48_002, 100_003, (1 << 20) + 7])
    }

    /// Every way this machine can encode `src`; each must write exactly `dst`.
    fn all_encodings(src: &[u8]) -> Vec<(&'static str, String)> {
        let n = encoded_len(src.len());
        let run = |f: &dyn Fn(&mut [MaybeUninit<u8>])| {
            let mut out = vec![MaybeUninit::new(0xAAu8); n];
            f(&mut out);
            // SAFETY: MaybeUninit<u8> has the layout of u8, and every byte is initialised.
            String::from_utf8(out.iter().map(|b| unsafe { b.assume_init() }).collect()).unwrap()
        };
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut all = vec![
            ("encode_to_string", encode_to_string(src)),
            ("encode_into", run(&|dst| encode_into(src, dst))),
            ("portable", run(&|dst| encode_portable(src, dst))),
        ];
        #[cfg(target_arch = "x86_64")]
        if has_avx512_vbmi() {
            // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked just above.
            all.push(("avx512", run(&|dst| unsafe { avx512::encode(src, dst) })));
        }
        all
    }

    /// Every way this machine can decode `text`, each as Ok(bytes) or Err(error).
    fn all_decodings(text: &[u8]) -> Vec<(&'static str, Result<Vec<u8>>)> {
        let run = |f: &dyn Fn(&mut [MaybeUninit<u8>]) -> bool| {
            let n = decoded_len(text)?;
            let mut out = vec![MaybeUninit::new(0xAAu8); n];
            if !f(&mut out) {
                return Err(diagnose(text));
            }
            // SAFETY: MaybeUninit<u8> has the layout of u8, and every byte is initialised.
            Ok(out.iter().map(|b| unsafe { b.assume_init() }).collect())
        };
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut all = vec![
            ("decode_to_vec", decode_to_vec(text)),
            ("decode_into", run(&|dst| decode_into(text, dst).is_ok())),
            ("portable", run(&|dst| decode_portable(text, dst))),
        ];
        #[cfg(target_arch = "x86_64")]
        if has_avx512_vbmi() {
            let body = body_len(text).unwrap_or(0);
            // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked just above.
            let direct = run(&|dst| unsafe { avx512::decode(&text[..body], dst) });
            all.push(("avx512", direct));
        }
        all
    }

    #[test]
    fn encoders_agree_with_the_references_at_every_length() {
        #[cfg(target_arch = "x86_64")]
        if !has_avx512_vbmi() {
            eprintln!("no AVX-512 VBMI here: only the portable encoder is tested");
        }
        let data = noise((1 << 20) + 7);
        for n in lengths() {
            // A copy whose allocation ends where the input does.
            let src: Box<[u8]> = data[data.len() - n..].into();
            let expected = reference_encode(&src);
            assert_eq!(STANDARD.encode_to_string(&src), expected, "n={n}");
            for (how, text) in all_encodings(&src) {
                assert!(text == expected, "{how}, n={n}");
            }
        }
        // Inputs of all 0s and all 1s give the first and last characters everywhere.
        for byte in [0x00, 0xFF] {
            for n in [1, 2, 3, 47, 48, 49, 95, 96, 97, 1000] {
                let src = vec![byte; n];
                for (how, text) in all_encodings(&src) {
                    assert_eq!(text, reference_encode(&src), "{how}, n={n}");
                }
            }
        }
    }

    #[test]
    fn decoders_agree_with_the_references_at_every_length() {
        let data = noise((1 << 20) + 7);
        for n in lengths() {
            let text: Box<[u8]> = reference_encode(&data[..n]).into_bytes().into();
            assert_eq!(decoded_len(&text), Ok(n), "n={n}");
            assert_eq!(validate(&text), Ok(()), "n={n}");
            for (how, decoded) in all_decodings(&text) {
                assert!(decoded.as_deref() == Ok(&data[..n]), "{how}, n={n}");
            }
        }
    }

    #[test]
    fn every_corruption_is_found_where_it_is() {
        let data = noise(1000);
        let lengths = (0..=8)
            .chain(44..=52)
            .chain(92..=100)
            .chain([143, 144, 145, 300, 961]);
        for n in lengths {
            let text = reference_encode(&data[..n]).into_bytes();
            for pos in 0..text.len() {
                for bad in [b'!', b'=', b'-', 0x80, 0xFF, b'\n', b'"', b'\\'] {
                    if text[pos] == bad {
                        continue;
                    }
                    let mut t = text.clone();
                    t[pos] = bad;
                    let what = format!("n={n} pos={pos} bad={bad:#04x}");
                    // Whatever the outcome, every decoder, `validate` and base64-simd agree.
                    let reference = STANDARD.decode_to_vec(&t).ok();
                    assert_eq!(validate(&t).is_ok(), reference.is_some(), "{what}");
                    for (how, decoded) in all_decodings(&t) {
                        assert_eq!(decoded.as_ref().ok(), reference.as_ref(), "{how}, {what}");
                    }
                    let err = decode_to_vec(&t).err();
                    if bad == b'=' && t[pos + 1..].iter().all(|&c| c == b'=') {
                        // Now part of the padding: too much of it, a non-canonical last
                        // character, or even valid (one byte fewer); the agreement above
                        // is the test.
                        continue;
                    }
                    let err = err.unwrap_or_else(|| panic!("accepted: {what}"));
                    assert_eq!(err.position(), Some(pos), "{what}: {err}");
                    let message = err.to_string();
                    let expected = if bad == b'=' {
                        "padding '=' before the end".to_owned()
                    } else {
                        format!("{} is not in the base64 alphabet", describe(bad))
                    };
                    assert!(message.contains(&expected), "{what}: {err}");
                    assert_eq!(validate(&t), Err(err), "{what}");
                }
            }
        }
    }

    #[test]
    fn non_canonical_last_character_is_rejected_at_every_length() {
        let data = noise(5000);
        let lengths = (1..300).chain([3001, 3002, 4801, 4802, 4999]);
        for n in lengths.filter(|n| n % 3 != 0) {
            let text = reference_encode(&data[..n]).into_bytes();
            let pad = if n % 3 == 1 { 2 } else { 1 };
            let last = text.len() - pad - 1;
            let value = STANDARD_VALUE[text[last] as usize];
            assert_eq!(value & if pad == 2 { 0x0F } else { 0x03 }, 0);
            for bit in 0..(if pad == 2 { 4 } else { 2 }) {
                let mut t = text.clone();
                t[last] = alphabet_char(value | 1 << bit);
                let what = format!("n={n} bit={bit} text end={:?}", &t[last - 1..]);
                assert!(STANDARD.decode_to_vec(&t).is_err(), "{what}");
                let expected = Error::base64(
                    last,
                    format!(
                        "{:?} has non-zero unused low bits (non-canonical encoding of the last byte)",
                        t[last] as char
                    ),
                );
                for (how, decoded) in all_decodings(&t) {
                    assert_eq!(decoded, Err(expected.clone()), "{how}, {what}");
                }
                assert_eq!(validate(&t), Err(expected), "{what}");
            }
        }
    }

    fn alphabet_char(value: u8) -> u8 {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[value as usize]
    }

    #[test]
    fn short_texts_agree_with_base64_simd_exhaustively() {
        // Every text of up to 8 characters over a canonical character, a non-canonical
        // one (in either position), the padding and an outsider: length, padding and
        // canonical rules in every combination, and never the unexplained fallback error.
        let symbols = [b'A', b'h', b'=', b'!'];
        for len in 0..=8u32 {
            for mut code in 0..4usize.pow(len) {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        let c = symbols[code % 4];
                        code /= 4;
                        c
                    })
                    .collect();
                let what = String::from_utf8_lossy(&text).into_owned();
                assert_eq!(
                    decoded_len(&text).ok(),
                    STANDARD.decoded_length(&text).ok(),
                    "{what}"
                );
                let reference = STANDARD.decode_to_vec(&text).ok();
                for (how, decoded) in all_decodings(&text) {
                    assert_eq!(decoded.as_ref().ok(), reference.as_ref(), "{how}, {what}");
                    if let Err(err) = decoded {
                        assert!(
                            !err.to_string().contains("rejected by the strict decoder"),
                            "{how}, {what}: {err}"
                        );
                    }
                }
                assert_eq!(validate(&text).is_ok(), reference.is_some(), "{what}");
            }
        }
    }

    #[test]
    fn decode_into_alone_checks_length_and_padding() {
        // Called without decoded_len first, with whatever dst the caller had in mind.
        let cases: &[(&str, usize, usize, &str)] = &[
            ("Zm9vY", 3, 5, "missing padding"),
            ("Zm9vYg=", 4, 7, "incorrect padding"),
            ("Zg===", 1, 2, "3 padding characters"),
            ("A===", 1, 1, "3 padding characters"),
            ("====", 1, 0, "4 padding characters"),
            ("Zg==Zg==", 4, 2, "padding '=' before the end"),
            ("Zh==", 1, 1, "non-canonical"),
        ];
        for &(text, n, pos, what) in cases {
            let mut dst = vec![MaybeUninit::uninit(); n];
            let err = decode_into(text.as_bytes(), &mut dst).unwrap_err();
            assert_eq!(err.position(), Some(pos), "{text:?}: {err}");
            assert!(err.to_string().contains(what), "{text:?}: {err}");
        }
    }

    #[test]
    #[should_panic(expected = "dst has the wrong length")]
    fn decode_into_refuses_a_wrong_dst() {
        let mut dst = vec![MaybeUninit::uninit(); 4];
        let _ = decode_into(b"Zm9v", &mut dst);
    }

    #[test]
    fn rejects_non_ascii() {
        let err = decode_to_vec("Zm9v\u{e9}mFy".as_bytes()).unwrap_err();
        assert_eq!(err.position(), Some(4));
        assert!(err.to_string().contains("0xc3"), "{err}");
    }
}
