//! JSON framing of the two audio events on the hot path.
//!
//! Sending: `append_event` writes the text of one `input_audio_buffer.append` event around a
//! base64 payload, in one buffer of exactly the right size.
//!
//! Receiving: `scan_server_event` walks one server event's top-level object once. It
//! validates the JSON grammar of the whole text, but it does not build values: it only
//! notes where the fields an audio delta needs are. Strings are found with `memchr`, so
//! the base64 payload is read once to find its end and once more by the SIMD decoder,
//! which is what checks its characters. Whether the event is an audio delta is decided
//! by its `type` wherever that key stands. Rules: duplicate keys take the last value (as
//! `json.loads` does); positions in errors are byte offsets into the text.
//!
//! Never: allocate for an event that is not an audio delta, or panic on any input.

use crate::error::{Error, Result};
use std::borrow::Cow;

pub const GA_AUDIO_DELTA: &str = "response.output_audio.delta";
pub const BETA_AUDIO_DELTA: &str = "response.audio.delta";

const APPEND_HEAD: &[u8] = br#"{"type":"input_audio_buffer.append","#;
const AUDIO_KEY: &[u8] = br#""audio":""#;
const EVENT_ID_KEY: &[u8] = br#""event_id":""#;

/// Length of the append event's text for `audio_len` characters of base64 and an
/// `event_id` that is already escaped.
pub fn append_event_len(audio_len: usize, escaped_event_id: Option<&[u8]>) -> usize {
    let id_len = escaped_event_id.map_or(0, |id| EVENT_ID_KEY.len() + id.len() + 2);
    APPEND_HEAD.len() + id_len + AUDIO_KEY.len() + audio_len + 2
}

/// Write `{"type":"input_audio_buffer.append","event_id":"…","audio":"…"}` into `dst`,
/// which must be `append_event_len(..)` long; `write_audio` fills the base64 part.
pub fn write_append_event(
    dst: &mut [std::mem::MaybeUninit<u8>],
    escaped_event_id: Option<&[u8]>,
    write_audio: impl FnOnce(&mut [std::mem::MaybeUninit<u8>]),
) {
    let total = dst.len();
    let mut at = 0;
    let mut put = |bytes: &[u8], at: &mut usize| {
        for (d, &b) in dst[*at..*at + bytes.len()].iter_mut().zip(bytes) {
            d.write(b);
        }
        *at += bytes.len();
    };
    put(APPEND_HEAD, &mut at);
    if let Some(id) = escaped_event_id {
        put(EVENT_ID_KEY, &mut at);
        put(id, &mut at);
        put(b"\",", &mut at);
    }
    put(AUDIO_KEY, &mut at);
    let audio_end = total - 2;
    let audio_start = at;
    put(b"\"}", &mut { audio_end });
    write_audio(&mut dst[audio_start..audio_end]);
}

/// Escape `s` as the inside of a JSON string (quotes not included). Borrowed when nothing
/// needs escaping, which is the case for every id the API produces.
pub fn escape_json(s: &str) -> Cow<'_, str> {
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    if !s.bytes().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The inside of a JSON string in the text: `start..end` excludes the quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    /// How many backslash escapes it contains. A count rather than a flag: a `usize`
    /// leaves no padding in the struct, and copying padded `Result<Span, _>`s through the
    /// scanner's hot loop stalled on store forwarding (measured: 2x slower scan).
    pub escapes: usize,
}

impl Span {
    pub fn escaped(&self) -> bool {
        self.escapes != 0
    }

    pub fn raw<'a>(&self, text: &'a [u8]) -> &'a [u8] {
        &text[self.start..self.end]
    }

    /// The string as it stands in the text, escapes and all.
    pub fn raw_str<'a>(&self, text: &'a str) -> &'a str {
        // Spans start and end next to ASCII quotes, so these are char boundaries.
        text.get(self.start..self.end).unwrap_or("")
    }

    /// The string's value. `None` only for a `\u` escape of a lone surrogate, which a
    /// Rust string cannot hold (Python can: callers fall back to `json.loads`).
    pub fn value<'a>(&self, text: &'a str) -> Option<Cow<'a, str>> {
        let raw = self.raw_str(text);
        if !self.escaped() {
            return Some(Cow::Borrowed(raw));
        }
        unescape(raw.as_bytes()).map(Cow::Owned)
    }
}

/// Unescape the inside of a JSON string already checked by the scanner.
pub fn unescape(raw: &[u8]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let esc = raw[i + 1];
        i += 2;
        let c = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{08}',
            b'f' => '\u{0c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(&raw[i..i + 4])?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    let lo = if raw.get(i..i + 2) == Some(b"\\u") {
                        hex4(&raw[i + 2..i + 6])?
                    } else {
                        return None;
                    };
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8(out).ok()
}

fn hex4(digits: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
}

/// What a field of interest held, after the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Missing,
    Str(Span),
    Int(i64),
    /// Present, but not of the type the audio delta needs; the value starts at this offset.
    Other(usize, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ga,
    Beta,
}

/// An audio delta event found in a text. Strings are spans into that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDeltaFields {
    pub dialect: Dialect,
    pub event_id: Span,
    pub response_id: Span,
    pub item_id: Span,
    pub output_index: i64,
    pub content_index: i64,
    pub delta: Span,
    /// The payload span is a guess to be proved by decoding it (see
    /// `scan_server_event_trusting_payload`).
    pub delta_unchecked: bool,
}

impl AudioDeltaFields {
    pub fn type_name(&self) -> &'static str {
        match self.dialect {
            Dialect::Ga => GA_AUDIO_DELTA,
            Dialect::Beta => BETA_AUDIO_DELTA,
        }
    }

    /// The base64 payload: borrowed from the text unless it held escapes (`\/`).
    pub fn delta_text<'a>(&self, text: &'a str) -> Cow<'a, [u8]> {
        if !self.delta.escaped() {
            return Cow::Borrowed(self.delta.raw(text.as_bytes()));
        }
        // A delta with escapes is legal JSON (some encoders write "\/"). Anything that
        // unescapes to a non-base64 character is rejected by the decoder afterwards.
        match self.delta.value(text) {
            Some(v) => Cow::Owned(v.into_owned().into_bytes()),
            None => Cow::Owned(vec![0xFF]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    AudioDelta(AudioDeltaFields),
    /// A valid JSON object that is not an audio delta event: the caller parses it fully.
    Other,
}

/// Scan one server event.
pub fn scan_server_event(text: &str) -> Result<Scanned> {
    Scanner::new(text, false).event().map_err(|e| *e)
}

/// `scan_server_event`, but when the payload is the object's last field (as the API
/// writes it), everything up to the text's last quote is taken as the payload without
/// looking at it; `delta_unchecked` then says so. Quotes and backslashes are not base64,
/// so decoding the payload strictly proves the guess right; the caller must fall back to
/// `scan_server_event` when decoding fails. Saves a search through the payload (17 ns
/// of a 20 ms delta's 290, 130 ns of a 200 ms one's).
pub fn scan_server_event_trusting_payload(text: &str) -> Result<Scanned> {
    let mut scanner = Scanner::new(text, true);
    match scanner.event() {
        Ok(found @ Scanned::AudioDelta(_)) => Ok(found),
        // The guess swallowed the rest of the object, fields and all: only an audio
        // delta, whose decoding will check the guess, may come of it.
        _ if scanner.payload_unchecked => scan_server_event(text),
        other => other.map_err(|e| *e),
    }
}

/// `s.starts_with(literal)` for a literal of 4 to 16 bytes, as two overlapping word
/// compares: `starts_with` called memcmp, a fifth of the scan's time.
#[inline(always)]
fn has_prefix(s: &[u8], literal: &[u8]) -> bool {
    let n = literal.len();
    if s.len() < n {
        return false;
    }
    let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
    match n {
        8..=16 => word(s, 0) == word(literal, 0) && word(s, n - 8) == word(literal, n - 8),
        4..=7 => half(s, 0) == half(literal, 0) && half(s, n - 4) == half(literal, n - 4),
        _ => s.starts_with(literal),
    }
}

/// Offset of the first byte in `s` that ends or interrupts a JSON string's plain run: a
/// quote, a backslash or a control character (below 0x20); `s.len()` if there is none.
#[inline(always)]
pub fn special_byte(s: &[u8]) -> usize {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SSE2 is part of x86-64, so this needs no run-time check. 16 bytes a step: a
        // byte loop cost 2.7 cycles a byte here.
        // SAFETY: every load reads 16 bytes inside `s` (i + 16 <= len).
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let control_max = _mm_set1_epi8(0x1F);
            while i + 16 <= s.len() {
                let v = _mm_loadu_si128(s.as_ptr().add(i).cast());
                let is_control = _mm_cmpeq_epi8(_mm_max_epu8(v, control_max), control_max);
                let hits = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                    is_control,
                );
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    while i < s.len() && !matches!(s[i], b'"' | b'\\' | 0..=0x1F) {
        i += 1;
    }
    i
}

fn kind_of(b: u8) -> &'static str {
    match b {
        b'"' => "a string",
        b'{' => "an object",
        b'[' => "an array",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

/// The first problem among an audio delta's fields, in the order the API writes them.
#[cold]
#[inline(never)]
fn field_error(
    object_start: usize,
    strings: &[(&str, Field); 3],
    ints: &[(&str, Field); 2],
    delta: (&str, Field),
) -> Box<Error> {
    let wrong =
        |name: &str, at: usize, what: &str| Box::new(Error::event(at, format!("{name:?} {what}")));
    for &(name, field) in strings.iter().chain(std::iter::once(&delta)) {
        match field {
            Field::Str(_) => {}
            Field::Missing => {
                return wrong(name, object_start, "is missing from the audio delta event")
            }
            Field::Other(at, kind) => {
                return wrong(name, at, &format!("must be a string, not {kind}"))
            }
            Field::Int(_) => return wrong(name, object_start, "must be a string"),
        }
    }
    for &(name, field) in ints {
        match field {
            Field::Int(_) => {}
            Field::Missing => {
                return wrong(name, object_start, "is missing from the audio delta event")
            }
            Field::Other(at, kind) => {
                return wrong(name, at, &format!("must be an integer, not {kind}"))
            }
            Field::Str(span) => {
                return wrong(name, span.start - 1, "must be an integer, not a string")
            }
        }
    }
    Box::new(Error::event(
        object_start,
        "internal: no field problem found",
    ))
}

/// The keys of an audio delta event.
#[derive(Clone, Copy)]
enum Key {
    Type,
    EventId,
    ResponseId,
    ItemId,
    OutputIndex,
    ContentIndex,
    Delta,
    Other,
}

impl Key {
    /// The order in which the API writes an audio delta's fields.
    const ORDER: [Key; 7] = [
        Key::Type,
        Key::EventId,
        Key::ResponseId,
        Key::ItemId,
        Key::OutputIndex,
        Key::ContentIndex,
        Key::Delta,
    ];

    /// The key as it stands in compact JSON, quotes and colon included.
    fn literal(self) -> Option<&'static [u8]> {
        Some(match self {
            Key::Type => br#""type":"#,
            Key::EventId => br#""event_id":"#,
            Key::ResponseId => br#""response_id":"#,
            Key::ItemId => br#""item_id":"#,
            Key::OutputIndex => br#""output_index":"#,
            Key::ContentIndex => br#""content_index":"#,
            Key::Delta => br#""delta":"#,
            Key::Other => return None,
        })
    }
}

/// The scanner's own result: errors boxed so that a `Result` moving through the hot loop
/// is no bigger than its value. Hot helpers return `Scan<()>`, `Scan<usize>` or a small
/// enum, which travel in registers; a `Result<Span, _>` went through memory, written in
/// 8-byte and read in 16-byte pieces, and stalled on store forwarding (2x slower scans).
type Scan<T> = std::result::Result<T, Box<Error>>;

struct Scanner<'a> {
    text: &'a str,
    /// `text` as bytes: the scanner works on bytes and only ever slices the text at ASCII
    /// characters, so every span is a valid `str`.
    s: &'a [u8],
    i: usize,
    /// Take the payload to end at the text's last quote, unchecked (see
    /// `scan_server_event_trusting_payload`).
    trust_payload: bool,
    /// The payload was taken that way.
    payload_unchecked: bool,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, trust_payload: bool) -> Self {
        Scanner {
            text,
            s: text.as_bytes(),
            i: 0,
            trust_payload,
            payload_unchecked: false,
        }
    }

    /// Where the closing quote of a payload that starts at the cursor would be if it were
    /// the last value of the object: the text ends `"` `}`, with whitespace allowed.
    fn last_quote(&self) -> Option<usize> {
        let trimmed = self
            .s
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
        if self.s[trimmed] != b'}' {
            return None;
        }
        let quote = self.s[..trimmed]
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
        (self.s[quote] == b'"' && quote > self.i).then_some(quote)
    }

    #[cold]
    #[inline(never)]
    fn err<T>(&self, at: usize, message: impl Into<String>) -> Scan<T> {
        Err(Box::new(Error::event(at, message)))
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[cold]
    #[inline(never)]
    fn unexpected<T>(&self, expected: &str) -> Scan<T> {
        match self.peek() {
            None => self.err(
                self.i,
                format!("unexpected end of text, expected {expected}"),
            ),
            Some(c) if c.is_ascii_graphic() => self.err(
                self.i,
                format!("unexpected {:?}, expected {expected}", c as char),
            ),
            Some(c) => self.err(
                self.i,
                format!("unexpected byte 0x{c:02x}, expected {expected}"),
            ),
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8, expected: &str) -> Scan<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.unexpected(expected)
        }
    }

    /// A string starting at the opening quote, checked in one pass: it ends at the first
    /// unescaped quote and may hold no raw control character. Returns how many escapes it
    /// holds; its inside runs from the opening quote + 1 to the cursor - 1.
    #[inline(always)]
    fn string(&mut self) -> Scan<usize> {
        let open = self.i;
        self.eat(b'"', "a string")?;
        let mut escapes = 0;
        loop {
            self.i += special_byte(&self.s[self.i..]);
            match self.s.get(self.i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escapes += 1;
                    self.escape()?;
                }
                Some(&c) => {
                    return self.err(
                        self.i,
                        format!("unescaped control character 0x{c:02x} in string"),
                    );
                }
                None => return self.err(open, "unterminated string"),
            }
        }
        self.i += 1;
        Ok(escapes)
    }

    /// The audio payload: long, so found with a vector search for its closing quote.
    /// Control characters are not checked here; the base64 decoder rejects them. Returns
    /// the escape count, like `string`.
    #[inline(always)]
    fn long_string(&mut self) -> Scan<usize> {
        let open = self.i;
        self.eat(b'"', "a string")?;
        if self.trust_payload {
            if let Some(quote) = self.last_quote() {
                self.payload_unchecked = true;
                self.i = quote + 1;
                return Ok(0);
            }
        }
        let mut escapes = 0;
        loop {
            let Some(off) = memchr::memchr2(b'"', b'\\', &self.s[self.i..]) else {
                return self.err(open, "unterminated string");
            };
            self.i += off;
            if self.s[self.i] == b'"' {
                break;
            }
            escapes += 1;
            self.escape()?;
        }
        self.i += 1;
        Ok(escapes)
    }

    /// Reject a raw control character inside `span` (for strings scanned without that check).
    #[cold]
    fn check_controls(&self, span: Span) -> Scan<()> {
        match span.raw(self.s).iter().position(|&b| b < 0x20) {
            Some(p) => {
                let at = span.start + p;
                self.err(
                    at,
                    format!("unescaped control character 0x{:02x} in string", self.s[at]),
                )
            }
            None => Ok(()),
        }
    }

    /// One escape sequence, at its backslash.
    fn escape(&mut self) -> Scan<()> {
        let at = self.i;
        match self.s.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
            Some(b'u') => {
                let digits = self.s.get(at + 2..at + 6);
                if !digits.is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit)) {
                    return self.err(at, "invalid \\u escape: expected four hex digits");
                }
                self.i += 6;
            }
            None => return self.err(at, "unterminated string"),
            Some(_) => return self.err(at, "invalid escape in string"),
        }
        Ok(())
    }

    /// A number; returns it as an integer when it is one that fits an i64.
    fn number(&mut self) -> Scan<Option<i64>> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            _ => return self.unexpected("a digit"),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.i += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return self.unexpected("a digit after the decimal point");
            }
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.i += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return self.unexpected("a digit in the exponent");
            }
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.i += 1;
            }
        }
        if !integer {
            return Ok(None);
        }
        let (negative, digits) = match &self.s[start..self.i] {
            [b'-', rest @ ..] => (true, rest),
            all => (false, all),
        };
        // Accumulate negatively so that i64::MIN fits; None once it overflows.
        let value = digits.iter().try_fold(0i64, |acc, &d| {
            acc.checked_mul(10)?.checked_sub(i64::from(d - b'0'))
        });
        Ok(value.and_then(|v| if negative { Some(v) } else { v.checked_neg() }))
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.unexpected("a value")
        }
    }

    /// Skip one value of any kind, checking its grammar. Iterative: nesting depth is
    /// bounded only by memory (one byte of stack per level).
    fn skip_value(&mut self) -> Scan<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        open.push(b'}');
                        self.key_span()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                _ => return self.unexpected("a value"),
            }
            // A value is complete: close what it completes, or move to the next element.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if close == b'}' {
                            self.ws();
                            self.key_span()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.i += 1;
                        open.pop();
                    }
                    _ if close == b'}' => return self.unexpected("',' or '}'"),
                    _ => return self.unexpected("',' or ']'"),
                }
            }
        }
    }

    /// A string at the cursor and its span. Inlined so the span stays in registers.
    #[inline(always)]
    fn string_span(&mut self, long: bool) -> Scan<Span> {
        let start = self.i + 1;
        let escapes = if long {
            self.long_string()?
        } else {
            self.string()?
        };
        Ok(Span {
            start,
            end: self.i - 1,
            escapes,
        })
    }

    /// `"key" :` inside an object, leaving the cursor before the value.
    #[inline(always)]
    fn key_span(&mut self) -> Scan<Span> {
        if self.peek() != Some(b'"') {
            return self.unexpected("a string key");
        }
        let span = self.string_span(false)?;
        self.ws();
        self.eat(b':', "':'")?;
        self.ws();
        Ok(span)
    }

    /// A key of the event object, named if it is one an audio delta needs. `expected` is
    /// the key that usually stands here: when the text holds exactly `"<expected>":`,
    /// that is one comparison instead of a scan and a lookup.
    #[inline(always)]
    fn key(&mut self, expected: Key) -> Scan<Key> {
        if let Some(literal) = expected.literal() {
            if has_prefix(&self.s[self.i..], literal) {
                self.i += literal.len();
                self.ws();
                return Ok(expected);
            }
        }
        let span = self.key_span()?;
        let unescaped;
        let name = if span.escaped() {
            // An unrepresentable name (lone surrogate) matches no field.
            unescaped = span
                .value(self.text)
                .map(Cow::into_owned)
                .unwrap_or_default();
            unescaped.as_bytes()
        } else {
            span.raw(self.s)
        };
        Ok(match name {
            b"type" => Key::Type,
            b"event_id" => Key::EventId,
            b"response_id" => Key::ResponseId,
            b"item_id" => Key::ItemId,
            b"output_index" => Key::OutputIndex,
            b"content_index" => Key::ContentIndex,
            b"delta" => Key::Delta,
            _ => Key::Other,
        })
    }

    /// A value expected to be a string, stored in `slot` whatever it turns out to be.
    #[inline(always)]
    fn string_field(&mut self, long: bool, slot: &mut Field) -> Scan<()> {
        let at = self.i;
        *slot = match self.peek() {
            Some(b'"') => Field::Str(self.string_span(long)?),
            Some(b) => {
                self.skip_value()?;
                Field::Other(at, kind_of(b))
            }
            None => return self.unexpected("a value"),
        };
        Ok(())
    }

    /// A value expected to be an integer, stored in `slot` whatever it turns out to be.
    #[inline(always)]
    fn int_field(&mut self, slot: &mut Field) -> Scan<()> {
        let at = self.i;
        *slot = match self.peek() {
            Some(b'-' | b'0'..=b'9') => match self.number()? {
                Some(v) => Field::Int(v),
                None => Field::Other(at, "a non-integer or too large number"),
            },
            Some(b) => {
                self.skip_value()?;
                Field::Other(at, kind_of(b))
            }
            None => return self.unexpected("a value"),
        };
        Ok(())
    }

    fn event(&mut self) -> Scan<Scanned> {
        let mut ty = Field::Missing;
        let mut event_id = Field::Missing;
        let mut response_id = Field::Missing;
        let mut item_id = Field::Missing;
        let mut output_index = Field::Missing;
        let mut content_index = Field::Missing;
        let mut delta = Field::Missing;

        self.ws();
        let object_start = self.i;
        if self.peek() != Some(b'{') {
            // Report a syntax error first, if there is one; otherwise the kind of value.
            let kind = self.peek().map_or("nothing", kind_of);
            self.skip_value()?;
            self.end(())?;
            return self.err(
                object_start,
                format!("a server event is a JSON object, not {kind}"),
            );
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return self.end(Scanned::Other);
        }
        let mut expected = Key::ORDER.iter().copied();
        loop {
            match self.key(expected.next().unwrap_or(Key::Other))? {
                Key::Type => self.string_field(false, &mut ty)?,
                Key::EventId => self.string_field(false, &mut event_id)?,
                Key::ResponseId => self.string_field(false, &mut response_id)?,
                Key::ItemId => self.string_field(false, &mut item_id)?,
                Key::OutputIndex => self.int_field(&mut output_index)?,
                Key::ContentIndex => self.int_field(&mut content_index)?,
                Key::Delta => {
                    // The payload's characters are checked by the base64 decoder, which
                    // never sees a payload that a later duplicate key replaces.
                    if let Field::Str(superseded) = delta {
                        self.check_controls(superseded)?;
                    }
                    self.string_field(true, &mut delta)?
                }
                Key::Other => self.skip_value()?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return self.unexpected("',' or '}'"),
            }
        }
        self.end(())?;

        let dialect = match ty {
            Field::Str(span) if !span.escaped() => match span.raw(self.s) {
                raw if raw == GA_AUDIO_DELTA.as_bytes() => Dialect::Ga,
                raw if raw == BETA_AUDIO_DELTA.as_bytes() => Dialect::Beta,
                _ => return self.other(delta),
            },
            Field::Str(span) => match span.value(self.text).as_deref() {
                Some(GA_AUDIO_DELTA) => Dialect::Ga,
                Some(BETA_AUDIO_DELTA) => Dialect::Beta,
                _ => return self.other(delta),
            },
            _ => return self.other(delta),
        };
        let (
            Field::Str(event_id),
            Field::Str(response_id),
            Field::Str(item_id),
            Field::Int(output_index),
            Field::Int(content_index),
            Field::Str(delta),
        ) = (
            event_id,
            response_id,
            item_id,
            output_index,
            content_index,
            delta,
        )
        else {
            let strings = [
                ("event_id", event_id),
                ("response_id", response_id),
                ("item_id", item_id),
            ];
            let ints = [
                ("output_index", output_index),
                ("content_index", content_index),
            ];
            return Err(field_error(object_start, &strings, &ints, ("delta", delta)));
        };
        Ok(Scanned::AudioDelta(AudioDeltaFields {
            dialect,
            event_id,
            response_id,
            item_id,
            output_index,
            content_index,
            delta,
            delta_unchecked: self.payload_unchecked,
        }))
    }

    /// An event that is not an audio delta. Its `"delta"` string (a transcript's text, say)
    /// was scanned as a payload, leaving control characters to a base64 decoder that will
    /// never see it, so they are checked here.
    fn other(&self, delta: Field) -> Scan<Scanned> {
        match delta {
            Field::Str(span) if span.raw(self.s).iter().any(|&b| b < 0x20) => {
                self.check_controls(span).map(|()| Scanned::Other)
            }
            _ => Ok(Scanned::Other),
        }
    }

    fn end<T>(&mut self, value: T) -> Scan<T> {
        self.ws();
        if self.i != self.s.len() {
            return self.unexpected("the end of the text");
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GA: &str = r#"{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"AAEC"}"#;

    fn delta(text: &str) -> AudioDeltaFields {
        match scan_server_event(text) {
            Ok(Scanned::AudioDelta(d)) => d,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn err(text: &str) -> Error {
        scan_server_event(text).expect_err(text)
    }

    #[test]
    fn recognises_both_dialects() {
        let d = delta(GA);
        assert_eq!(d.dialect, Dialect::Ga);
        assert_eq!(d.item_id.raw_str(GA), "item_1");
        assert_eq!(d.delta_text(GA).as_ref(), b"AAEC");
        let beta = GA.replace("response.output_audio.delta", "response.audio.delta");
        assert_eq!(delta(&beta).dialect, Dialect::Beta);
    }

    #[test]
    fn field_order_whitespace_extras_and_duplicates() {
        let text = r#"
          { "delta" : "AAEC" , "extra": {"a": [1, 2.5e-3, true, null, {"b": "\"x\""}]},
            "content_index":3, "output_index" :2,"item_id":"it\"em","response_id":"r",
            "event_id":"e", "event_id":"e2", "type":"response.audio.delta" }
        "#;
        let d = delta(text);
        assert_eq!(d.content_index, 3);
        assert_eq!(d.output_index, 2);
        assert_eq!(d.item_id.value(text).unwrap(), "it\"em");
        assert_eq!(d.event_id.value(text).unwrap(), "e2");
    }

    #[test]
    fn escaped_keys_type_and_payload() {
        let text = r#"{"typ\u0065":"response.output_audio\u002edelta","event_id":"\u00e9\ud83d\ude00","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"AA\/C"}"#;
        let d = delta(text);
        assert_eq!(d.event_id.value(text).unwrap(), "\u{e9}\u{1F600}");
        assert_eq!(d.delta_text(text).as_ref(), b"AA/C");
        // A lone surrogate cannot be a Rust string: the caller falls back to json.loads.
        let lone = text.replace(r"\ud83d\ude00", r"\ud83d");
        assert_eq!(delta(&lone).event_id.value(&lone), None);
    }

    #[test]
    fn keys_out_of_the_usual_order_or_unknown_still_work() {
        // The scanner predicts the API's field order; every other order takes the
        // general path and must give the same result.
        let keys = [
            r#""type":"response.output_audio.delta""#,
            r#""event_id":"e""#,
            r#""response_id":"r""#,
            r#""item_id":"i""#,
            r#""output_index":1"#,
            r#""content_index":2"#,
            r#""delta":"AAEC""#,
        ];
        for rotate in 0..keys.len() {
            for extra_at in 0..=keys.len() {
                let mut parts: Vec<&str> = keys.to_vec();
                parts.rotate_left(rotate);
                parts.insert(extra_at, r#""x":{"type":"y","delta":5}"#);
                let text = format!("{{{}}}", parts.join(","));
                let d = delta(&text);
                assert_eq!((d.output_index, d.content_index), (1, 2), "{text}");
                assert_eq!(d.item_id.raw_str(&text), "i", "{text}");
            }
        }
    }

    #[test]
    fn other_events_are_left_to_the_caller() {
        for text in [
            r#"{"type":"response.done","response":{"output":[]}}"#,
            r#"{"type":"response.output_audio_transcript.delta","delta":"hi"}"#,
            r#"{"delta":"AAEC"}"#,
            r#"{"type":5,"delta":"AAEC"}"#,
            "{}",
        ] {
            assert_eq!(scan_server_event(text), Ok(Scanned::Other), "{text}");
        }
        for text in ["[1,2]", " \"just a string\" ", "1", "null"] {
            let e = err(text);
            assert!(
                e.to_string().contains("a server event is a JSON object"),
                "{e}"
            );
        }
    }

    #[test]
    fn malformed_json_has_a_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "unexpected end"),
            ("{", 1, "unexpected end"),
            (r#"{"type":"x""#, 11, "unexpected end"),
            (r#"{"type":"x",}"#, 12, "a string key"),
            (r#"{"type" "x"}"#, 8, "':'"),
            (r#"{"type":"x"} x"#, 13, "end of the text"),
            (r#"{"type":"x\q"}"#, 10, "invalid escape"),
            (r#"{"type":"x\u12"}"#, 10, "\\u escape"),
            (r#"{"type":"x"#, 8, "unterminated string"),
            ("{\"type\":\"a\u{1}b\"}", 10, "control character"),
            // A "delta" that is not an audio payload still gets its characters checked.
            ("{\"delta\":\"a\tb\"}", 11, "control character"),
            (r#"{"a":[1,2}"#, 9, "',' or ']'"),
            (r#"{"a":01}"#, 6, "',' or '}'"),
            (r#"{"a":1.}"#, 7, "after the decimal point"),
            (r#"{"a":-}"#, 6, "a digit"),
            (r#"{"a":tru}"#, 5, "a value"),
            (r#"{"a":1e}"#, 7, "exponent"),
        ];
        for &(text, pos, what) in cases {
            let e = err(text);
            assert_eq!(e.position(), Some(pos), "{text}: {e}");
            assert!(e.to_string().contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn control_characters_in_a_delta_that_is_not_audio_are_an_error_in_both_scans() {
        // Only a base64 decoder checks an audio payload's characters; other events'
        // "delta" strings (transcript text) must be checked by the scan itself.
        for text in [
            "{\"type\":\"response.output_audio_transcript.delta\",\"delta\":\"a\tb\"}",
            "{\"delta\":\"\n\",\"type\":\"x\"}",
            "{\"type\":5,\"delta\":\"\u{0}\"}",
        ] {
            let at = text.find(|c: char| c < ' ').unwrap_or(usize::MAX);
            assert_eq!(err(text).position(), Some(at), "{text}");
            assert_eq!(
                scan_server_event_trusting_payload(text),
                scan_server_event(text),
                "{text}"
            );
        }
    }

    #[test]
    fn audio_delta_fields_are_checked() {
        let cases: &[(&str, &str, &str)] = &[
            (r#""item_id":"item_1","#, "", "\"item_id\" is missing"),
            (
                r#""item_id":"item_1""#,
                r#""item_id":7"#,
                "\"item_id\" must be a string, not a number",
            ),
            (
                r#""delta":"AAEC""#,
                r#""delta":null"#,
                "\"delta\" must be a string, not null",
            ),
            (
                r#""output_index":0"#,
                r#""output_index":"0""#,
                "must be an integer, not a string",
            ),
            (
                r#""content_index":0"#,
                r#""content_index":0.0"#,
                "must be an integer, not a non-integer",
            ),
            (
                r#""content_index":0"#,
                r#""content_index":99999999999999999999"#,
                "too large",
            ),
            (
                r#""content_index":0"#,
                r#""content_index":[0]"#,
                "not an array",
            ),
        ];
        for &(from, to, what) in cases {
            let text = GA.replace(from, to);
            let e = err(&text);
            assert!(e.to_string().contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn a_superseded_payload_is_still_checked() {
        let text = GA.replace(
            r#""delta":"AAEC""#,
            "\"delta\":\"A\u{1}\",\"delta\":\"AAEC\"",
        );
        let e = err(&text);
        assert!(e.to_string().contains("control character"), "{e}");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 1_000_000;
        let text = format!(
            r#"{{"type":"x","a":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(scan_server_event(&text), Ok(Scanned::Other));
        let truncated = &text[..text.len() - 2];
        assert!(scan_server_event(truncated).is_err());
    }

    #[test]
    fn every_prefix_of_a_valid_event_is_an_error() {
        for n in 0..GA.len() {
            assert!(scan_server_event(&GA[..n]).is_err(), "{}", &GA[..n]);
        }
    }

    #[test]
    fn trusting_the_payload_guesses_its_end() {
        let d = match scan_server_event_trusting_payload(&format!("{GA} \n")) {
            Ok(Scanned::AudioDelta(d)) => d,
            other => panic!("{other:?}"),
        };
        assert!(d.delta_unchecked);
        assert_eq!(d.delta.raw_str(GA), "AAEC");
        // The payload is not last: the guess spans `AAEC","x":"y`, which the decoder
        // rejects (quotes are not base64); the exact scan finds the real end.
        let not_last = GA.replace(r#""delta":"AAEC""#, r#""delta":"AAEC","x":"y""#);
        let guess = match scan_server_event_trusting_payload(&not_last) {
            Ok(Scanned::AudioDelta(d)) => d,
            other => panic!("{other:?}"),
        };
        assert!(guess.delta_unchecked);
        assert!(crate::b64::validate(guess.delta.raw(not_last.as_bytes())).is_err());
        assert_eq!(delta(&not_last).delta.raw_str(&not_last), "AAEC");
        assert!(!delta(&not_last).delta_unchecked);
        // Fields after the payload would be swallowed by the guess: an exact scan instead.
        let type_last = r#"{"event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"AAEC","type":"response.audio.delta"}"#;
        match scan_server_event_trusting_payload(type_last) {
            Ok(Scanned::AudioDelta(d)) => {
                assert!(!d.delta_unchecked);
                assert_eq!(d.delta.raw_str(type_last), "AAEC");
            }
            other => panic!("{other:?}"),
        }
        let other_event = r#"{"delta":"hi","type":"response.output_text.delta"}"#;
        assert_eq!(
            scan_server_event_trusting_payload(other_event),
            Ok(Scanned::Other)
        );
        let bad = r#"{"delta":"AA\q","type":"x"}"#;
        assert_eq!(
            scan_server_event_trusting_payload(bad),
            scan_server_event(bad)
        );
    }

    #[test]
    fn has_prefix_matches_starts_with() {
        let text = br#""content_index":0,"delta":"x""#;
        for key in Key::ORDER {
            let literal = key.literal().unwrap_or(b"");
            for end in 0..=text.len() {
                assert_eq!(
                    has_prefix(&text[..end], literal),
                    text[..end].starts_with(literal)
                );
            }
            assert!(has_prefix(literal, literal));
            let mut off_by_one = literal.to_vec();
            for i in 0..off_by_one.len() {
                off_by_one[i] ^= 1;
                assert!(!has_prefix(&off_by_one, literal));
                off_by_one[i] ^= 1;
            }
        }
    }

    #[test]
    fn append_event_text() {
        let id = escape_json("ev\"1\n");
        assert_eq!(id, "ev\\\"1\\n");
        let audio = b"AAEC";
        let n = append_event_len(audio.len(), Some(id.as_bytes()));
        let mut buf = vec![std::mem::MaybeUninit::new(0u8); n];
        write_append_event(&mut buf, Some(id.as_bytes()), |dst| {
            for (d, &b) in dst.iter_mut().zip(audio) {
                d.write(b);
            }
        });
        // SAFETY: write_append_event wrote every byte.
        let bytes: Vec<u8> = buf.iter().map(|b| unsafe { b.assume_init() }).collect();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"type":"input_audio_buffer.append","event_id":"ev\"1\n","audio":"AAEC"}"#
        );
    }
}
