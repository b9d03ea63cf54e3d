//! Pure-Rust timings of the core's hot loops, without Python in the way: where the
//! nanoseconds of `benches/bench_codec.py` go. Run: `cargo bench --no-default-features`.
//! No harness dependency: a median of repeated timed batches is all this needs.

use _core::playback::{PlaybackBuffer, PlaybackConfig};
use _core::resample::{Quality, Resampler};
use _core::{b64, events, g711, pcm};
use std::hint::black_box;
use std::time::Instant;

fn time(label: &str, bytes: usize, mut f: impl FnMut()) {
    let batch = 2_000;
    for _ in 0..batch {
        f(); // warm up caches and branch predictors
    }
    let mut per_call: Vec<f64> = (0..31)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    let median = per_call[per_call.len() / 2];
    let rate = if bytes > 0 {
        format!("{:6.1} GB/s", bytes as f64 / median)
    } else {
        String::new()
    };
    println!("{label:44} {median:9.1} ns {rate}");
}

fn delta_event(ms: usize) -> (String, Vec<u8>) {
    let pcm: Vec<u8> = (0..ms * 48)
        .map(|i| (i.wrapping_mul(7919) % 251) as u8)
        .collect();
    let delta = b64::encode_to_string(&pcm);
    let text = format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_BxYz12345abcdefGHIJ","response_id":"resp_ABCdef1234567890xyz","item_id":"item_ABCdef1234567890xyz","output_index":0,"content_index":0,"delta":"{delta}"}}"#
    );
    (text, pcm)
}

fn main() {
    for ms in [20, 200] {
        let (text, pcm) = delta_event(ms);
        let fields = match events::scan_server_event(&text) {
            Ok(events::Scanned::AudioDelta(f)) => f,
            other => panic!("not an audio delta: {other:?}"),
        };
        let payload = fields.delta.raw(text.as_bytes()).to_vec();
        let mut out = vec![std::mem::MaybeUninit::<u8>::uninit(); pcm.len()];
        time(&format!("scan {ms} ms delta event"), text.len(), || {
            black_box(events::scan_server_event(black_box(&text)).is_ok());
        });
        time(
            &format!("scan {ms} ms delta event, payload trusted"),
            text.len(),
            || {
                black_box(events::scan_server_event_trusting_payload(black_box(&text)).is_ok());
            },
        );
        time(
            &format!("base64 decode {ms} ms payload"),
            payload.len(),
            || {
                b64::decode_into(black_box(&payload), &mut out).unwrap();
            },
        );
        time(
            &format!("base64 encode {ms} ms of PCM16"),
            pcm.len(),
            || {
                black_box(b64::encode_to_string(black_box(&pcm)));
            },
        );
        let mut text_out = vec![std::mem::MaybeUninit::<u8>::uninit(); b64::encoded_len(pcm.len())];
        time(
            &format!("base64 encode_into {ms} ms of PCM16"),
            pcm.len(),
            || b64::encode_into(black_box(&pcm), black_box(&mut text_out)),
        );
    }
    let float: Vec<f32> = (0..240).map(|i| (i as f32 * 0.37).sin() * 0.8).collect();
    let mut int16 = vec![std::mem::MaybeUninit::<i16>::uninit(); float.len()];
    time("f32_to_pcm16, 240 samples (10 ms)", 0, || {
        pcm::f32_to_pcm16(black_box(&float), black_box(&mut int16))
    });
    let samples = pcm::f32_to_pcm16_vec(&float);
    let mut codes = vec![std::mem::MaybeUninit::<u8>::uninit(); 160];
    time("ulaw_encode, 160 samples (20 ms at 8 kHz)", 0, || {
        g711::ulaw_encode(black_box(&samples[..160]), black_box(&mut codes))
    });
    let ulaw = g711::ulaw_encode_vec(&samples[..160]);
    let mut decoded = vec![std::mem::MaybeUninit::<i16>::uninit(); 160];
    time("ulaw_decode, 160 codes (20 ms at 8 kHz)", 0, || {
        g711::ulaw_decode(black_box(&ulaw), black_box(&mut decoded))
    });

    for (in_rate, out_rate, quality) in [
        (48000, 24000, Quality::Hq),
        (24000, 48000, Quality::Hq),
        (16000, 24000, Quality::Hq),
        (24000, 16000, Quality::Hq),
        (44100, 24000, Quality::Hq),
        (8000, 24000, Quality::Hq),
        (48000, 24000, Quality::Speech),
    ] {
        time_resampler(in_rate, out_rate, quality);
    }
    for source_rate in [24_000, 48_000] {
        time_playback_fill(source_rate, 0);
    }
    time_playback_fill(24_000, 256);
}

/// The output callback's work for 10 ms at 48 kHz (480 frames, mono) with audio buffered:
/// what runs on the audio thread, without PortAudio around it. Pushes happen between the
/// timed batches (they run on the trio side, not in the callback). With `callback_log`
/// records of log (drained between batches), each call also reads the clock and logs.
fn time_playback_fill(source_rate: u32, callback_log: usize) {
    let mut config = PlaybackConfig::new(48_000);
    config.source_rate = source_rate;
    config.capacity_samples = source_rate as usize * 4;
    config.callback_log = callback_log;
    let mut records = Vec::with_capacity(callback_log);
    let mut buffer = PlaybackBuffer::new(config).unwrap();
    let chunk: Vec<f32> = (0..source_rate as usize / 100)
        .map(|i| (i as f32 * 0.05).sin() * 0.5)
        .collect();
    let output = buffer.output().clone();
    let mut out = vec![0.0f32; 480];
    let batch = 200; // 2 s of audio per batch
    let mut per_call: Vec<f64> = (0..31)
        .map(|_| {
            for _ in 0..batch {
                buffer.push("item", 0, &chunk).unwrap();
            }
            records.clear();
            buffer.drain_callback_log(&mut records);
            let t = Instant::now();
            for _ in 0..batch {
                output.fill(black_box(&mut out), 480);
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    assert_eq!(buffer.statistics().callback_log_overflow, 0);
    per_call.sort_by(f64::total_cmp);
    let log = if callback_log > 0 { ", logged" } else { "" };
    let label = format!("playback fill 10 ms @48k from {}k{log}", source_rate / 1000);
    println!("{label:44} {:9.1} ns", per_call[per_call.len() / 2]);
    if callback_log > 0 {
        return; // the pushes are the same
    }
    let mut pushes: Vec<f64> = (0..31)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                buffer.push("item", 0, black_box(&chunk)).unwrap();
            }
            let ns = t.elapsed().as_nanos() as f64 / batch as f64;
            for _ in 0..batch {
                output.fill(&mut out, 480);
            }
            ns
        })
        .collect();
    pushes.sort_by(f64::total_cmp);
    let label = format!("playback push 10 ms at {}k", source_rate / 1000);
    println!("{label:44} {:9.1} ns", pushes[pushes.len() / 2]);
}
/// One 10 ms mono chunk through a warm resampler, after checking that chunked output
/// equals one-shot output.
fn time_resampler(in_rate: u32, out_rate: u32, quality: Quality) {
    let frames = in_rate as usize / 100;
    let tone: Vec<f32> = (0..frames * 50)
        .map(|i| (i as f32 * 997.0 * std::f32::consts::TAU / in_rate as f32).sin() * 0.8)
        .collect();
    let whole = Resampler::new(in_rate, out_rate, 1, quality)
        .unwrap()
        .process(&tone);
    let mut r = Resampler::new(in_rate, out_rate, 1, quality).unwrap();
    let chunked: Vec<f32> = tone.chunks(frames).flat_map(|c| r.process(c)).collect();
    assert!(
        whole
            .iter()
            .map(|v| v.to_bits())
            .eq(chunked.iter().map(|v| v.to_bits())),
        "chunked output differs"
    );
    let mut out = vec![
        std::mem::MaybeUninit::<f32>::uninit();
        frames * 2 * out_rate as usize / in_rate as usize + 2
    ];
    let mut chunks = tone.chunks_exact(frames).cycle();
    time(
        &format!("resample {in_rate}->{out_rate} {quality:?}, 10 ms mono"),
        0,
        || {
            let chunk = chunks.next().unwrap();
            let n = r.output_frames(chunk.len());
            r.process_into(black_box(chunk), black_box(&mut out[..n]));
        },
    );
}
