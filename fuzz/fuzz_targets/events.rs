//! The event scanner on any text, against serde_json as the reference parser.
//!
//! * The scan never panics, and its answer agrees with serde_json's: a text serde_json
//!   refuses is refused (but for the two places the scanner is documented to differ:
//!   escapes of lone surrogates, valid JSON grammar, and raw control characters inside an
//!   audio delta's payload, which the base64 decoder rejects); a JSON object that is not
//!   an audio delta is `Other`; an audio delta gives
//!   every field as serde_json reads it (duplicate keys: the last), or an error exactly
//!   when a field is missing or of the wrong type.
//! * The fast scan that guesses where the payload ends agrees with the exact one whenever
//!   its guess decodes (the Python layer falls back to the exact scan otherwise).

#![no_main]

use _core::b64;
use _core::events::{
    scan_server_event, scan_server_event_trusting_payload, AudioDeltaFields, Scanned,
    BETA_AUDIO_DELTA, GA_AUDIO_DELTA,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn reference(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    // Inputs are at most a few KiB: the stack holds serde_json's recursion.
    de.disable_recursion_limit();
    let value = serde::Deserialize::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// serde_json refuses what the scanner, by design, accepts as valid grammar.
fn documented_difference(e: &serde_json::Error) -> bool {
    let message = e.to_string();
    message.contains("surrogate")
        || message.contains("hex escape")
        || message.contains("unicode code point")
}

/// An integer as Python's `json` reads one (and the scanner): a number written without
/// fraction or exponent (`-0` included) that fits 64 bits.
fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

fn payload_decodes(text: &str, f: &AudioDeltaFields) -> bool {
    b64::decode_to_vec(&f.delta_text(text)).is_ok()
}

fn check_fields(text: &str, f: &AudioDeltaFields, obj: &serde_json::Map<String, Value>) {
    let string = |name: &str| obj.get(name).and_then(Value::as_str);
    assert_eq!(string("type"), Some(f.type_name()));
    assert_eq!(string("event_id"), f.event_id.value(text).as_deref());
    assert_eq!(string("response_id"), f.response_id.value(text).as_deref());
    assert_eq!(string("item_id"), f.item_id.value(text).as_deref());
    assert_eq!(
        obj.get("output_index").and_then(as_int),
        Some(f.output_index)
    );
    assert_eq!(
        obj.get("content_index").and_then(as_int),
        Some(f.content_index)
    );
    assert_eq!(
        string("delta").map(str::as_bytes),
        Some(&*f.delta_text(text))
    );
}

fn fields_ok(obj: &serde_json::Map<String, Value>) -> bool {
    ["event_id", "response_id", "item_id", "delta"]
        .iter()
        .all(|k| obj.get(*k).is_some_and(Value::is_string))
        && ["output_index", "content_index"]
            .iter()
            .all(|k| obj.get(*k).and_then(as_int).is_some())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exact = scan_server_event(text);
    if let Err(e) = &exact {
        assert!(e.position().is_some_and(|p| p <= text.len()), "{e:?}");
    }

    // The guessing scan: the same answer, or a guess that fails to decode.
    let fast = scan_server_event_trusting_payload(text);
    match &fast {
        Ok(Scanned::AudioDelta(f)) if f.delta_unchecked => {
            if payload_decodes(text, f) {
                let checked = AudioDeltaFields {
                    delta_unchecked: false,
                    ..f.clone()
                };
                assert_eq!(exact, Ok(Scanned::AudioDelta(checked)), "the guess decoded");
            }
        }
        _ => assert_eq!(fast, exact),
    }

    match reference(text) {
        Err(e) if documented_difference(&e) => {}
        Err(e) => match &exact {
            Err(_) => {}
            Ok(Scanned::AudioDelta(f)) => assert!(!payload_decodes(text, f), "serde: {e}"),
            Ok(Scanned::Other) => panic!("scanned as an object; serde_json: {e}"),
        },
        Ok(Value::Object(obj)) => {
            let ty = obj.get("type").and_then(Value::as_str);
            if ty == Some(GA_AUDIO_DELTA) || ty == Some(BETA_AUDIO_DELTA) {
                match &exact {
                    Ok(Scanned::AudioDelta(f)) => check_fields(text, f, &obj),
                    Ok(Scanned::Other) => panic!("an audio delta scanned as Other"),
                    Err(e) => assert!(!fields_ok(&obj), "refused a good audio delta: {e}"),
                }
            } else {
                assert_eq!(exact, Ok(Scanned::Other));
            }
        }
        Ok(_) => assert!(exact.is_err(), "not an object, yet {exact:?}"),
    }
});
