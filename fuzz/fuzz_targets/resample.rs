//! The streaming resampler on random input in random chunks: no panic, the documented
//! output length, bit-identical output however the input was chunked, and silence in,
//! silence out.

#![no_main]

use _core::resample::{Quality, Resampler};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::HashMap;

/// Common pairs, odd ones, and the extremes of 1..=192000 Hz the API allows.
const RATES: [(u32, u32); 24] = [
    (24000, 24000),
    (48000, 24000),
    (24000, 48000),
    (44100, 24000),
    (24000, 44100),
    (16000, 24000),
    (24000, 16000),
    (8000, 24000),
    (24000, 8000),
    (22050, 24000),
    (11025, 8000),
    (96000, 24000),
    (44100, 48000),
    (48000, 44100),
    (32000, 24000),
    (24000, 32000),
    (192000, 8000),
    (8000, 192000),
    (1, 2),
    (3, 7),
    (7, 3),
    (44101, 24000),
    (24000, 47999),
    (1000, 192000),
];

thread_local! {
    // Filter design takes milliseconds: build each configuration once, reuse it after
    // flush() (which must leave it as new; the comparisons below would see otherwise).
    static CACHE: RefCell<HashMap<(usize, usize, bool), Resampler>> = RefCell::new(HashMap::new());
}

fn run(r: &mut Resampler, input: &[f32], chunks: &[usize]) -> Vec<f32> {
    let ch = r.channels();
    let mut out = Vec::new();
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    let mut empty = false;
    while at < input.len() {
        let mut frames = *sizes.next().unwrap_or(&1);
        if frames == 0 && empty {
            frames = 1; // an empty chunk now and then, but progress
        }
        empty = frames == 0;
        let end = at
            .saturating_add(frames.saturating_mul(ch))
            .min(input.len());
        let predicted = r.output_frames((end - at) / ch);
        let got = r.process(&input[at..end]);
        assert_eq!(got.len(), predicted * ch);
        out.extend(got);
        at = end;
    }
    assert!(r.flush().is_empty(), "flush has nothing left to add");
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, body) = data.split_at(4);
    let rates = usize::from(head[0]) % RATES.len();
    let channels = usize::from(head[1] % 3) + 1;
    let hq = head[1] & 0x80 != 0;
    let (in_rate, out_rate) = RATES[rates];
    // Chunk sizes in frames (0 included), then samples: int16 scaled, or raw f32 bits.
    let nchunks = usize::from(head[2] % 8) + 1;
    let (sizes, body) = body.split_at(nchunks.min(body.len()));
    let chunks: Vec<usize> = sizes
        .iter()
        .map(|&b| usize::from(b) * usize::from(b) / 16)
        .collect();
    let input: Vec<f32> = if head[3] & 1 == 0 {
        body.chunks_exact(2)
            .map(|p| f32::from(i16::from_le_bytes([p[0], p[1]])) / 32768.0)
            .collect()
    } else {
        body.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .filter(|x| x.is_finite())
            .collect()
    };
    let frames = input.len() / channels;
    let input = &input[..frames * channels];

    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let r = cache.entry((rates, channels, hq)).or_insert_with(|| {
            let quality = if hq { Quality::Hq } else { Quality::Speech };
            Resampler::new(in_rate, out_rate, channels, quality).expect("valid configuration")
        });
        let whole = run(r, input, &[usize::MAX / 2]);
        let expected_frames =
            (frames as u128 * u128::from(out_rate)).div_ceil(u128::from(in_rate)) as usize;
        assert_eq!(whole.len(), expected_frames * channels);
        let chunked = run(r, input, &chunks);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&chunked), bits(&whole), "chunking changed the output");
        if input.iter().all(|&x| x == 0.0) {
            assert!(whole.iter().all(|&y| y == 0.0), "silence in, sound out");
        }
        if head[3] & 1 == 0 {
            // Bounded input (|x| <= 1): the filter's gain is bounded too.
            assert!(whole.iter().all(|y| y.is_finite() && y.abs() < 4.0));
        }
    });
});
