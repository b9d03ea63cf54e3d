//! float32 <-> int16 on any bit patterns (NaN, infinities, subnormals), at every length
//! the AVX2 loop and its scalar tail can meet, against the documented scalar rule.

#![no_main]

use _core::pcm;
use libfuzzer_sys::fuzz_target;

fn reference(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
}

fuzz_target!(|data: &[u8]| {
    let Some((&skip, rest)) = data.split_first() else {
        return;
    };
    let floats: Vec<f32> = rest
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let floats = &floats[usize::from(skip % 8).min(floats.len())..];
    let pcm16 = pcm::f32_to_pcm16_vec(floats);
    assert_eq!(pcm16.len(), floats.len());
    for (&x, &y) in floats.iter().zip(&pcm16) {
        assert_eq!(y, reference(x), "{x:e} ({:#010x})", x.to_bits());
    }
    // int16 -> float32 is exact, and the way back is the identity.
    let samples: Vec<i16> = rest
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    let samples = &samples[usize::from(skip / 8 % 8).min(samples.len())..];
    let f = pcm::pcm16_to_f32_vec(samples);
    for (&s, &x) in samples.iter().zip(&f) {
        assert_eq!(x, f32::from(s) / 32768.0);
    }
    assert_eq!(pcm::f32_to_pcm16_vec(&f), samples);
    // Downmix: each frame's mean, summed in channel order.
    let channels = usize::from(skip / 64) + 1;
    let whole = floats.len() - floats.len() % channels;
    let mut out = vec![std::mem::MaybeUninit::uninit(); whole / channels];
    pcm::downmix(&floats[..whole], channels, &mut out);
    for (frame, o) in floats[..whole].chunks_exact(channels).zip(&out) {
        // SAFETY: downmix writes all of `out`.
        let got = unsafe { o.assume_init() };
        let want = frame.iter().sum::<f32>() * (1.0 / channels as f32);
        assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()));
    }
});
