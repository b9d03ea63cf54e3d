"""The cffi (ABI mode, no compiler) binding of PortAudio V19.6 and its process-wide state.

Owns: the C declarations (``portaudio.h`` of V19.6.0, ``pa_stable_v190600_20161030``),
finding and loading the library, the one ``_check()`` every ``PaError`` goes through, and
the reference-counted ``Pa_Initialize`` / ``Pa_Terminate`` with its ``atexit`` twin.

Must never: load the library or initialise PortAudio at import (both happen on first use);
let ALSA or JACK print to stderr while PortAudio scans for devices; leave PortAudio
initialised at interpreter exit (with a JACK client open, Python then crashes at exit); let
a C library call one of our Python callbacks after the interpreter has finalised.
"""

from __future__ import annotations

import atexit
import ctypes.util
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeAlias

import cffi  # type: ignore[import-untyped]  # cffi ships no type information

from realtalk.exceptions import RealtalkError

#: A cffi ``CData`` object (a C pointer, struct or callback); cffi has no type stubs.
CData: TypeAlias = Any

PORTAUDIO_HEADER_VERSION: Final = "V19.6.0"
LIBRARY_ENV: Final = "REALTALK_PORTAUDIO_LIB"

_CDEF = """
/* portaudio.h, PortAudio V19.6.0 (pa_stable_v190600_20161030): what realtalk uses. */
int Pa_GetVersion(void);
const char *Pa_GetVersionText(void);

typedef int PaError;
#define paNoError 0
#define paNotInitialized -10000
#define paUnanticipatedHostError -9999
#define paInvalidChannelCount -9998
#define paInvalidSampleRate -9997
#define paInvalidDevice -9996
#define paSampleFormatNotSupported -9994
#define paBadIODeviceCombination -9993
#define paStreamIsStopped -9983
#define paStreamIsNotStopped -9982
#define paInputOverflowed -9981
#define paOutputUnderflowed -9980
const char *Pa_GetErrorText(PaError errorCode);
PaError Pa_Initialize(void);
PaError Pa_Terminate(void);

typedef int PaDeviceIndex;
#define paNoDevice -1
typedef int PaHostApiIndex;
PaHostApiIndex Pa_GetHostApiCount(void);
PaHostApiIndex Pa_GetDefaultHostApi(void);
typedef int PaHostApiTypeId;        /* an enum in portaudio.h: same size, no names needed */
typedef struct PaHostApiInfo {
    int structVersion;
    PaHostApiTypeId type;
    const char *name;
    int deviceCount;
    PaDeviceIndex defaultInputDevice;
    PaDeviceIndex defaultOutputDevice;
} PaHostApiInfo;
const PaHostApiInfo *Pa_GetHostApiInfo(PaHostApiIndex hostApi);
typedef struct PaHostErrorInfo {
    PaHostApiTypeId hostApiType;
    long errorCode;
    const char *errorText;
} PaHostErrorInfo;
const PaHostErrorInfo *Pa_GetLastHostErrorInfo(void);

PaDeviceIndex Pa_GetDeviceCount(void);
PaDeviceIndex Pa_GetDefaultInputDevice(void);
PaDeviceIndex Pa_GetDefaultOutputDevice(void);
typedef double PaTime;
typedef unsigned long PaSampleFormat;
#define paFloat32 0x00000001
#define paInt32 0x00000002
#define paInt16 0x00000008
typedef struct PaDeviceInfo {
    int structVersion;
    const char *name;
    PaHostApiIndex hostApi;
    int maxInputChannels;
    int maxOutputChannels;
    PaTime defaultLowInputLatency;
    PaTime defaultLowOutputLatency;
    PaTime defaultHighInputLatency;
    PaTime defaultHighOutputLatency;
    double defaultSampleRate;
} PaDeviceInfo;
const PaDeviceInfo *Pa_GetDeviceInfo(PaDeviceIndex device);

typedef struct PaStreamParameters {
    PaDeviceIndex device;
    int channelCount;
    PaSampleFormat sampleFormat;
    PaTime suggestedLatency;
    void *hostApiSpecificStreamInfo;
} PaStreamParameters;
PaError Pa_IsFormatSupported(const PaStreamParameters *inputParameters,
                             const PaStreamParameters *outputParameters, double sampleRate);

typedef void PaStream;
typedef unsigned long PaStreamFlags;
#define paNoFlag 0
#define paFramesPerBufferUnspecified 0
typedef struct PaStreamCallbackTimeInfo {
    PaTime inputBufferAdcTime;
    PaTime currentTime;
    PaTime outputBufferDacTime;
} PaStreamCallbackTimeInfo;
typedef unsigned long PaStreamCallbackFlags;
#define paInputUnderflow 0x00000001
#define paInputOverflow 0x00000002
#define paOutputUnderflow 0x00000004
#define paOutputOverflow 0x00000008
#define paPrimingOutput 0x00000010
#define paContinue 0
#define paComplete 1
#define paAbort 2
typedef int PaStreamCallback(const void *input, void *output, unsigned long frameCount,
                             const PaStreamCallbackTimeInfo *timeInfo,
                             PaStreamCallbackFlags statusFlags, void *userData);
PaError Pa_OpenStream(PaStream **stream, const PaStreamParameters *inputParameters,
                      const PaStreamParameters *outputParameters, double sampleRate,
                      unsigned long framesPerBuffer, PaStreamFlags streamFlags,
                      PaStreamCallback *streamCallback, void *userData);
PaError Pa_CloseStream(PaStream *stream);
PaError Pa_StartStream(PaStream *stream);
PaError Pa_StopStream(PaStream *stream);
PaError Pa_AbortStream(PaStream *stream);
PaError Pa_IsStreamStopped(PaStream *stream);
PaError Pa_IsStreamActive(PaStream *stream);
typedef struct PaStreamInfo {
    int structVersion;
    PaTime inputLatency;
    PaTime outputLatency;
    double sampleRate;
} PaStreamInfo;
const PaStreamInfo *Pa_GetStreamInfo(PaStream *stream);
PaTime Pa_GetStreamTime(PaStream *stream);
double Pa_GetStreamCpuLoad(PaStream *stream);
PaError Pa_ReadStream(PaStream *stream, void *buffer, unsigned long frames);
PaError Pa_WriteStream(PaStream *stream, const void *buffer, unsigned long frames);
signed long Pa_GetStreamReadAvailable(PaStream *stream);
signed long Pa_GetStreamWriteAvailable(PaStream *stream);

/* alsa/error.h (libasound.so.2). The real handler type is variadic; its 5 fixed arguments
   are passed the same way on x86-64 and aarch64, and the no-op handler reads none. */
typedef void (*snd_lib_error_handler_t)(const char *file, int line, const char *function,
                                        int err, const char *fmt);
int snd_lib_error_set_handler(snd_lib_error_handler_t handler);

/* jack/jack.h (libjack.so.0): the message hooks and their current values. */
void jack_set_error_function(void (*func)(const char *));
void jack_set_info_function(void (*func)(const char *));
extern void (*jack_error_callback)(const char *);
extern void (*jack_info_callback)(const char *);
"""

ffi: Final = cffi.FFI()
ffi.cdef(_CDEF)

paNoError: Final = 0
paUnanticipatedHostError: Final = -9999
paInputOverflowed: Final = -9981
paOutputUnderflowed: Final = -9980
paNoDevice: Final = -1
paFloat32: Final = 0x1
paInt32: Final = 0x2
paInt16: Final = 0x8
paContinue: Final = 0
paComplete: Final = 1
paAbort: Final = 2
paOutputUnderflow: Final = 0x4
paInputOverflow: Final = 0x2

#: Results that mean "some samples were lost", not "the call failed" (blocking I/O only).
_WARNINGS: Final = frozenset({paInputOverflowed, paOutputUnderflowed})


class PortAudioError(RealtalkError):
    """PortAudio failed, or could not be loaded.

    ``code`` is the ``PaError`` (negative; ``paInvalidSampleRate`` is -9997), or ``None``
    when the library itself could not be found or loaded. ``text`` is PortAudio's own
    description (``Pa_GetErrorText``). For ``paUnanticipatedHostError`` (-9999),
    ``host_error`` is the host API's ``(errorCode, errorText)``.
    """

    def __init__(
        self,
        code: int | None,
        text: str,
        *,
        function: str | None = None,
        host_error: tuple[int, str] | None = None,
    ) -> None:
        where = f" in {function}" if function else ""
        number = f" [PaErrorCode {code}]" if code is not None else ""
        host = f": {host_error[1]} (host error {host_error[0]})" if host_error else ""
        super().__init__(f"{text}{host}{number}{where}")
        self.code = code
        self.text = text
        self.function = function
        self.host_error = host_error


# -- Locating the library ---------------------------------------------------------------

_load_lock = threading.Lock()
_lib: CData = None


def _candidates() -> list[str]:
    """Where libportaudio is looked for, in order; the first that loads wins."""
    # 1. An explicit choice: a path or a soname. No fallback when it is set, so that a
    #    mistake is reported instead of silently using some other PortAudio.
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        return [explicit]
    names = []
    # 2. The dynamic linker's cache (ldconfig -p on Linux; the framework paths on macOS,
    #    PATH on Windows): Debian's libportaudio2, Homebrew's portaudio, a bundled DLL.
    found = ctypes.util.find_library("portaudio")
    if found:
        names.append(found)
    # 3. The Debian/Ubuntu soname through dlopen's own search (LD_LIBRARY_PATH, RUNPATH),
    #    for systems where find_library cannot run ldconfig or a compiler.
    names.append("libportaudio.so.2")
    return names


def lib() -> CData:
    """The loaded PortAudio library (loaded on the first call; not initialised).

    Raises :class:`PortAudioError` with ``code=None`` when no candidate loads.
    """
    global _lib
    with _load_lock:
        if _lib is None:
            tried = []
            for name in _candidates():
                try:
                    _lib = ffi.dlopen(name)
                    break
                except OSError as exc:
                    tried.append(f"{name} ({exc})")
            else:
                hint = (
                    f"check {LIBRARY_ENV}"
                    if os.environ.get(LIBRARY_ENV)
                    else f"install libportaudio2 (Debian/Ubuntu) or set {LIBRARY_ENV} to its path"
                )
                raise PortAudioError(
                    None, f"PortAudio library not found: {hint}; tried {', '.join(tried)}"
                )
        return _lib


def _string(ptr: CData) -> str:
    return "" if ptr == ffi.NULL else bytes(ffi.string(ptr)).decode("utf-8", "replace")


def version() -> tuple[int, str]:
    """``(Pa_GetVersion(), Pa_GetVersionText())``.

    For example ``(1246720, "PortAudio V19.6.0-devel, revision 396fe4b...")`` (Debian 12).
    Needs the library but not initialisation.
    """
    pa = lib()
    return int(pa.Pa_GetVersion()), _string(pa.Pa_GetVersionText())


# -- The one error check ----------------------------------------------------------------


def _check(code: int, function: str | None = None) -> int:
    """Return a non-negative PortAudio result; raise :class:`PortAudioError` for an error.

    ``paInputOverflowed`` and ``paOutputUnderflowed`` mean samples were dropped or a gap
    was played, and the stream goes on: they become a :class:`RuntimeWarning`.
    """
    code = int(code)
    if code >= 0:
        return code
    pa = lib()
    text = _string(pa.Pa_GetErrorText(code))
    if code in _WARNINGS:
        warnings.warn(f"PortAudio: {text} [PaErrorCode {code}]", RuntimeWarning, stacklevel=3)
        return code
    host_error = None
    if code == paUnanticipatedHostError:
        info = pa.Pa_GetLastHostErrorInfo()
        if info != ffi.NULL:
            host_error = (int(info.errorCode), _string(info.errorText))
    raise PortAudioError(code, text, function=function, host_error=host_error)


# -- Silencing ALSA and JACK --------------------------------------------------------------
#
# Pa_Initialize probes every ALSA PCM and tries to reach a JACK server; with no sound card
# and no server, alsa-lib and libjack print 65-83 lines to stderr (see AUDIO-TESTBED.md).
# Both libraries are what libportaudio itself links, so opening them by soname returns the
# same instances, and no-op handlers installed before Pa_Initialize silence them. Unlike
# redirecting fd 2, this leaves every other stderr writer alone. Real failures still reach
# the caller as PaError codes.


def _ignore_alsa(file: CData, line: int, function: CData, err: int, fmt: CData) -> None:
    pass


def _ignore_jack(message: CData) -> None:
    pass


# cffi callbacks live as long as these module globals: for the whole process.
_alsa_handler: Final = ffi.callback("snd_lib_error_handler_t", _ignore_alsa)
_jack_handler: Final = ffi.callback("void(*)(const char *)", _ignore_jack)
_saved_jack: list[tuple[CData, CData, CData]] = []  # (libjack, error hook, info hook)
_alsa: list[CData] = []


def _silence_alsa_and_jack() -> None:
    if not _alsa:
        try:
            _alsa.append(ffi.dlopen("libasound.so.2"))
        except OSError:  # no ALSA (macOS, Windows, a PortAudio built without it)
            _alsa.append(None)
    if _alsa[0] is not None:
        _alsa[0].snd_lib_error_set_handler(_alsa_handler)
    if not _saved_jack:
        try:
            jack = ffi.dlopen("libjack.so.0")
        except OSError:
            return
        _saved_jack.append((jack, jack.jack_error_callback, jack.jack_info_callback))
    jack = _saved_jack[0][0]
    jack.jack_set_error_function(_jack_handler)
    jack.jack_set_info_function(_jack_handler)


def _restore_alsa_and_jack() -> None:
    # At exit, before the interpreter finalises: C code running later (libjack's static
    # destructors, alsa-lib's cleanup) must not call into a dead interpreter.
    if _alsa and _alsa[0] is not None:
        _alsa[0].snd_lib_error_set_handler(ffi.NULL)
    if _saved_jack:
        jack, error_hook, info_hook = _saved_jack[0]
        jack.jack_set_error_function(error_hook)
        jack.jack_set_info_function(info_hook)


# -- Reference-counted initialisation ---------------------------------------------------

_init_lock = threading.RLock()
_init_count = 0
#: Called at exit, before the final Pa_Terminate: the stream module registers one that
#: closes every stream still open (each holds a reference, so none is open before that).
_before_terminate: list[Callable[[], None]] = []


def initialize() -> None:
    """Take one reference on PortAudio, calling ``Pa_Initialize`` for the first one.

    Device lists and indices are fixed while at least one reference is held. Raises
    :class:`PortAudioError`.
    """
    global _init_count
    with _init_lock:
        pa = lib()
        if _init_count == 0:
            # Other libjack users in the process may not pass JackNoStartServer as
            # PortAudio does; a test run must never spawn a server by accident.
            os.environ.setdefault("JACK_NO_START_SERVER", "1")
            _silence_alsa_and_jack()
        _check(pa.Pa_Initialize(), "Pa_Initialize")
        _init_count += 1


def terminate() -> None:
    """Drop one reference; the last one calls ``Pa_Terminate``. Raises :class:`PortAudioError`."""
    global _init_count
    with _init_lock:
        if _init_count == 0:
            return
        _init_count -= 1
        _check(lib().Pa_Terminate(), "Pa_Terminate")


@contextmanager
def initialized() -> Iterator[CData]:
    """Hold a reference on PortAudio for the ``with`` block; yields the library."""
    initialize()
    try:
        yield lib()
    finally:
        terminate()


@atexit.register
def _terminate_at_exit() -> None:
    global _init_count
    with _init_lock:
        if _init_count:
            for hook in _before_terminate:
                hook()
        while _init_count:
            _init_count -= 1
            lib().Pa_Terminate()  # errors are useless now: keep terminating
        if _lib is not None:
            _restore_alsa_and_jack()


def python_callback(
    function: Callable[[CData, CData, int, CData, int, CData], int],
) -> CData:
    """A ``PaStreamCallback *`` that calls a Python function, for tests and tools.

    ``function(input, output, frame_count, time_info, status_flags, user_data)`` runs on
    PortAudio's audio thread and returns ``paContinue``, ``paComplete`` or ``paAbort``. An
    exception is reported through :func:`sys.unraisablehook` and aborts the stream. Keep
    the returned object referenced while a stream uses it (streams do this themselves).
    """
    return ffi.callback("PaStreamCallback *", function, error=paAbort)
