"""The native audio core: sample conversion, G.711, base64, and audio event framing.

Every function here is one call into Rust. Samples are int16 (PCM16, full scale 32768) or
float32 (full scale 1.0); the Realtime API's PCM is 16-bit little-endian mono at 24 kHz.
Errors in input data raise subclasses of :class:`ValueError` from
:mod:`realtalk.exceptions`; see each function's docstring.
"""

from realtalk._core import (
    AudioDelta,
    CaptureBuffer,
    PlaybackBuffer,
    Playhead,
    Resampler,
    alaw_decode,
    alaw_encode,
    b64decode,
    b64encode,
    encode_append,
    f32_to_pcm16,
    parse_server_event,
    pcm16_to_f32,
    ulaw_decode,
    ulaw_encode,
)

__all__ = [
    "AudioDelta",
    "CaptureBuffer",
    "PlaybackBuffer",
    "Playhead",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "b64decode",
    "b64encode",
    "encode_append",
    "f32_to_pcm16",
    "parse_server_event",
    "pcm16_to_f32",
    "ulaw_decode",
    "ulaw_encode",
]
