//! G.711 on any bytes, at every alignment and length the SIMD loops can meet, against the
//! classic Sun reference code (the algorithm CPython's audioop uses), written out plainly.

#![no_main]

use _core::g711;
use libfuzzer_sys::fuzz_target;

fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = ((i32::from(u) & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = (i32::from(a) & 0x0F) << 4;
    match (a & 0x70) >> 4 {
        0 => t += 8,
        1 => t += 0x108,
        seg => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

/// Sun's linear2ulaw on the top 14 bits (audioop: `sample >> 2`).
fn linear_to_ulaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let pcm = i32::from(sample) >> 2;
    let (magnitude, mask) = if pcm < 0 { (-pcm, 0x7F) } else { (pcm, 0xFF) };
    let magnitude = magnitude.min(8159) + (0x84 >> 2);
    let seg = segment(magnitude, &ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    ((((seg as i32) << 4) | ((magnitude >> (seg + 1)) & 0xF)) ^ mask) as u8
}

/// Sun's linear2alaw on the top 13 bits (audioop: `sample >> 3`).
fn linear_to_alaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let pcm = i32::from(sample) >> 3;
    let (magnitude, mask) = if pcm >= 0 {
        (pcm, 0xD5)
    } else {
        (-pcm - 1, 0x55)
    };
    let seg = segment(magnitude, &ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg < 2 { 1 } else { seg };
    ((((seg as i32) << 4) | ((magnitude >> shift) & 0xF)) ^ mask) as u8
}

fuzz_target!(|data: &[u8]| {
    let Some((&skip, rest)) = data.split_first() else {
        return;
    };
    // Start at an odd offset now and then: the SIMD loads must not care.
    let codes = &rest[usize::from(skip % 8).min(rest.len())..];
    let ulaw = g711::ulaw_decode_vec(codes);
    let alaw = g711::alaw_decode_vec(codes);
    assert_eq!(ulaw.len(), codes.len());
    assert_eq!(alaw.len(), codes.len());
    for (i, &c) in codes.iter().enumerate() {
        assert_eq!(ulaw[i], ulaw_to_linear(c), "mu-law code {c:#04x} at {i}");
        assert_eq!(alaw[i], alaw_to_linear(c), "A-law code {c:#04x} at {i}");
    }
    // Codes back from the samples they decode to (mu-law has two zeros: 0x7F and 0xFF).
    let back = g711::ulaw_encode_vec(&ulaw);
    for (&c, &b) in codes.iter().zip(&back) {
        assert_eq!(b, if c == 0x7F { 0xFF } else { c });
    }
    assert_eq!(g711::alaw_encode_vec(&alaw), codes);
    // Any int16 samples, encoded.
    let samples: Vec<i16> = codes
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    let ulaw = g711::ulaw_encode_vec(&samples);
    let alaw = g711::alaw_encode_vec(&samples);
    for (i, &s) in samples.iter().enumerate() {
        assert_eq!(ulaw[i], linear_to_ulaw(s), "mu-law of {s}");
        assert_eq!(alaw[i], linear_to_alaw(s), "A-law of {s}");
    }
});
