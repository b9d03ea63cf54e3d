//! Strict base64: the decoder (AVX-512 VBMI or base64-simd, whichever the CPU runs) against
//! an obvious scalar decoder, on any bytes; and encode then decode gives the bytes back.

#![no_main]

use _core::b64;
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 4648 §4, padded and canonical (unused bits zero), one character at a time.
fn reference_decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let pad = text.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut out = Vec::new();
    for chunk in text[..text.len() - pad].chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            acc |= v << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
        if acc & ((1u32 << (24 - 8 * n)) - 1) != 0 {
            return None; // not canonical
        }
    }
    Some(out)
}

fn reference_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let acc = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(acc >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // Bytes as text: mostly not base64, which exercises the rejection paths.
    let expected = reference_decode(data);
    let decoded = b64::decode_to_vec(data);
    match (&decoded, &expected) {
        (Ok(got), Some(want)) => assert_eq!(got, want),
        (Err(e), None) => assert!(e.position().is_some_and(|p| p <= data.len()), "{e:?}"),
        _ => panic!("decode_to_vec {decoded:?}, reference {expected:?}"),
    }
    assert_eq!(b64::validate(data).is_ok(), expected.is_some());
    if let Some(want) = &expected {
        assert_eq!(b64::decoded_len(data).ok(), Some(want.len()));
    }
    // Bytes as bytes: encoded as the reference does, and decoded back.
    let text = b64::encode_to_string(data);
    assert_eq!(text, reference_encode(data));
    assert_eq!(text.len(), b64::encoded_len(data.len()));
    assert_eq!(b64::decode_to_vec(text.as_bytes()).as_deref(), Ok(data));
});
