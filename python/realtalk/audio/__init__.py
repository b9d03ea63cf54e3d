"""Audio devices through PortAudio (V19.6, loaded with cffi in ABI mode: no compiler).

Listing devices and host APIs, finding a device by name and host API, and opening
half-duplex callback streams whose callback is native code: the Rust core's playback
and capture buffers hand over a ``PaStreamCallback`` address and its user data.
:class:`Speaker` and :class:`Microphone` are those buffers on streams, and
:func:`open_audio` attaches both to a :class:`realtalk.Session`. WAV files are read and
written by :func:`read_wav`, :func:`write_wav` and :class:`WavWriter`, which need no
PortAudio.

Nothing is loaded at import. The library is found on first use: ``$REALTALK_PORTAUDIO_LIB``,
else ``ctypes.util.find_library("portaudio")``, else ``libportaudio.so.2`` (Debian and
Ubuntu: ``apt install libportaudio2``). PortAudio is initialised while a call or an open
stream needs it, and terminated at interpreter exit at the latest.
"""

from realtalk.audio._devices import (
    Device,
    HostApi,
    default_device,
    find_device,
    list_devices,
    list_host_apis,
)
from realtalk.audio._player import Microphone, Speaker, open_audio
from realtalk.audio._portaudio import PortAudioError
from realtalk.audio._portaudio import version as portaudio_version
from realtalk.audio._streams import Stream, StreamInfo, open_input_stream, open_output_stream
from realtalk.audio._wav import WavAudio, WavWriter, read_wav, write_wav

__all__ = [
    "Device",
    "HostApi",
    "Microphone",
    "PortAudioError",
    "Speaker",
    "Stream",
    "StreamInfo",
    "WavAudio",
    "WavWriter",
    "default_device",
    "find_device",
    "list_devices",
    "list_host_apis",
    "open_audio",
    "open_input_stream",
    "open_output_stream",
    "portaudio_version",
    "read_wav",
    "write_wav",
]
