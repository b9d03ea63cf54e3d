//! Strict standard base64 (RFC 4648 §4, padded), SIMD-accelerated by `base64-simd`.
//!
//! The fast path trusts the SIMD decoder to accept or reject; only a rejected input is
//! scanned again, slowly, to say what is wrong and where. Strict means: only the 64
//! alphabet characters, `=` padding only at the end and making the length a multiple of
//! four (no more), no whitespace, and canonical: the unused low bits of the last character
//! before the padding must be zero (RFC 4648 §3.5 lets decoders reject them). CPython's
//! `b64decode(validate=True)` accepts both non-zero unused bits and surplus `=`; those are
//! the two places where we differ.

use crate::error::{Error, Result};
use base64_simd::{Out, STANDARD};
use std::mem::MaybeUninit;

/// Characters needed to encode `nbytes` bytes.
pub const fn encoded_len(nbytes: usize) -> usize {
    nbytes.div_ceil(3) * 4
}

/// Encode `src` into `dst`, which must be exactly `encoded_len(src.len())` long.
pub fn encode_into(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(
        dst.len(),
        encoded_len(src.len()),
        "dst has the wrong length"
    );
    let _written = STANDARD.encode(src, Out::from_uninit_slice(dst));
}

pub fn encode_to_string(src: &[u8]) -> String {
    STANDARD.encode_to_string(src)
}

/// Bytes that `text` decodes to; checks only its length and padding.
pub fn decoded_len(text: &[u8]) -> Result<usize> {
    STANDARD.decoded_length(text).map_err(|_| diagnose(text))
}

/// Decode `text` into `dst`, which must be exactly `decoded_len(text)` long.
pub fn decode_into(text: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<()> {
    let (text_tail, dst_tail) = match decode_bulk(text, dst) {
        Some(done) => (&text[done / 3 * 4..], &mut dst[done..]),
        None => return Err(diagnose(text)),
    };
    let expected = dst_tail.len();
    match STANDARD.decode(text_tail, Out::from_uninit_slice(dst_tail)) {
        Ok(written) if written.len() == expected => Ok(()),
        _ => Err(diagnose(text)),
    }
}

/// Decode whole 64-character blocks from the front of `text` with AVX-512 VBMI, where
/// the CPU has it, always leaving at least the last 4 characters (which may hold the
/// padding) to the general decoder. Returns how many bytes it wrote, or None if a block
/// held a character outside the alphabet.
fn decode_bulk(text: &[u8], dst: &mut [MaybeUninit<u8>]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if text.len() >= 68
        && std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        let blocks = (text.len() - 4) / 64;
        // SAFETY: the CPU has AVX-512 VBMI and BW, checked just above.
        let ok = unsafe { avx512::decode_blocks(&text[..blocks * 64], &mut dst[..blocks * 48]) };
        return ok.then_some(blocks * 48);
    }
    let _ = (text, dst);
    Some(0)
}

/// Base64 decoding 64 characters at a time (W. Muła and D. Lemire, "Base64 encoding and
/// decoding at almost the speed of a memory copy", 2019): a two-register byte permute
/// maps each character to its 6-bit value or to a byte with the high bit set, two
/// multiply-adds pack four 6-bit values into three bytes per 32-bit lane, and a byte
/// permute gathers the 48 output bytes. base64-simd stops at AVX2; this is 2-3x faster.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Value of each 7-bit character, 0x80 for characters outside the alphabet.
    const LOOKUP: [u8; 128] = {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut table = [0x80u8; 128];
        let mut i = 0;
        while i < 64 {
            table[alphabet[i] as usize] = i as u8;
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

    /// `src.len()` must be a multiple of 64 and `dst.len()` three quarters of it.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub fn decode_blocks(src: &[u8], dst: &mut [MaybeUninit<u8>]) -> bool {
        assert!(src.len().is_multiple_of(64) && dst.len() == src.len() / 64 * 48);
        // SAFETY: LOOKUP and GATHER are 128 and 64 bytes; each load below reads 64 bytes
        // of `src` at a multiple of 64 inside it, and each masked store writes 48 bytes of
        // `dst` at a multiple of 48 inside it.
        unsafe {
            let lookup_lo = _mm512_loadu_si512(LOOKUP.as_ptr().cast());
            let lookup_hi = _mm512_loadu_si512(LOOKUP.as_ptr().add(64).cast());
            let gather = _mm512_loadu_si512(GATHER.as_ptr().cast());
            let pack_pairs = _mm512_set1_epi32(0x0140_0140);
            let pack_quads = _mm512_set1_epi32(0x0001_1000);
            for (block, out) in src.chunks_exact(64).zip(dst.chunks_exact_mut(48)) {
                let chars = _mm512_loadu_si512(block.as_ptr().cast());
                // The permute looks at the low 7 bits; a high bit in the character or in
                // its value marks it as outside the alphabet.
                let values = _mm512_permutex2var_epi8(lookup_lo, chars, lookup_hi);
                if _mm512_movepi8_mask(_mm512_or_si512(values, chars)) != 0 {
                    return false;
                }
                let pairs = _mm512_maddubs_epi16(values, pack_pairs);
                let quads = _mm512_madd_epi16(pairs, pack_quads);
                let bytes = _mm512_permutexvar_epi8(gather, quads);
                _mm512_mask_storeu_epi8(out.as_mut_ptr().cast(), 0xFFFF_FFFF_FFFF, bytes);
            }
        }
        true
    }
}

/// Check `text` without decoding it.
pub fn validate(text: &[u8]) -> Result<()> {
    STANDARD.check(text).map_err(|_| diagnose(text))
}

pub fn decode_to_vec(text: &[u8]) -> Result<Vec<u8>> {
    STANDARD.decode_to_vec(text).map_err(|_| diagnose(text))
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
                assert_eq!(err.position(), pos, "pos={pos} bad={bad:#x}: {err}");
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
            assert_eq!(err.position(), pos, "{text:?}: {err}");
            assert!(err.to_string().contains(what), "{text:?}: {err}");
        }
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // CPython's b64decode(validate=True) accepts these as b"f" and b"fo".
        for (text, pos) in [("Zh==", 1), ("Zm9=", 2)] {
            let err = decode(text).unwrap_err();
            assert_eq!(err.position(), pos, "{text}: {err}");
            assert!(err.to_string().contains("non-canonical"), "{text}: {err}");
        }
    }

    #[test]
    fn rejects_non_ascii() {
        let err = decode_to_vec("Zm9v\u{e9}mFy".as_bytes()).unwrap_err();
        assert_eq!(err.position(), 4);
        assert!(err.to_string().contains("0xc3"), "{err}");
    }
}
