//! Strict standard base64 (RFC 4648 §4, padded), SIMD-accelerated by `base64-simd`.
//!
//! The fast path trusts the SIMD decoder to accept or reject; only a rejected input is
//! scanned again, slowly, to say what is wrong and where. Strict means: only the 64
//! alphabet characters, `=` padding only at the end and making the length a multiple of
//! four, no whitespace, and canonical: the unused low bits of the last character before
//! the padding must be zero (RFC 4648 §3.5 lets decoders reject them; CPython's
//! `b64decode(validate=True)` ignores them, which is the one place where we differ).

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
    let expected = dst.len();
    match STANDARD.decode(text, Out::from_uninit_slice(dst)) {
        Ok(written) if written.len() == expected => Ok(()),
        _ => Err(diagnose(text)),
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
    let body_len = text.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    if let Some(i) = text[..body_len].iter().position(|&c| !is_alphabet(c)) {
        let c = text[i];
        let what = if c == b'=' {
            "padding '=' before the end".to_owned()
        } else {
            describe(c)
        };
        return Error::base64(i, format!("{what} is not in the base64 alphabet"));
    }
    let pad = text.len() - body_len;
    if pad > 2 {
        return Error::base64(
            body_len,
            format!("{pad} padding characters; at most 2 are allowed"),
        );
    }
    if text.len() % 4 != 0 {
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
