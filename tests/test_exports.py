"""The public API is what realtalk, realtalk.core and realtalk.testing export, and no more."""

import importlib
import inspect

import pytest

import realtalk
import realtalk.core
import realtalk.exceptions

CORE_API = {
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
}
EXCEPTIONS = {
    "AudioFormatError",
    "AuthenticationError",
    "Base64DecodeError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosed",
    "EventParseError",
    "LocalProtocolError",
    "RealtalkError",
    "RemoteProtocolError",
    "ServerError",
    "WavFormatError",
}
# Exceptions about a place in input data; the rest are about settings or the connection.
POSITIONED = {"AudioFormatError", "Base64DecodeError", "EventParseError", "WavFormatError"}
SESSION_API = {
    "AudioSink",
    "GaveUp",
    "Reconnect",
    "Reconnected",
    "Reconnecting",
    "Resumed",
    "FunctionTool",
    "InputTranscription",
    "NoiseReduction",
    "SemanticVad",
    "ServerVad",
    "Session",
    "SessionConfig",
    "SessionStatistics",
    "ToolCallFinished",
    "ToolHandler",
    "connect",
}


def test_core_all_is_the_documented_api() -> None:
    assert set(realtalk.core.__all__) == CORE_API
    assert len(realtalk.core.__all__) == len(CORE_API)


@pytest.mark.parametrize(
    "module",
    [
        "realtalk",
        "realtalk.core",
        "realtalk.exceptions",
        "realtalk.protocol",
        "realtalk.client",
        "realtalk.server",
        "realtalk.audio",
        "realtalk.relay",
    ],
)
def test_every_exported_name_exists(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []


def test_testing_module_exports_exist() -> None:
    pytest.importorskip("hypothesis")
    testing = importlib.import_module("realtalk.testing")
    missing = [name for name in testing.__all__ if not hasattr(testing, name)]
    assert missing == []


@pytest.mark.parametrize(
    "module",
    [
        "realtalk.core",
        "realtalk.exceptions",
        "realtalk.protocol",
        "realtalk.client",
        "realtalk.server",
        "realtalk.relay",
    ],
)
def test_no_public_name_is_left_out_of_all(module: str) -> None:
    mod = importlib.import_module(module)
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module).startswith("realtalk")
    }
    assert public <= set(mod.__all__)


def test_realtalk_exports_the_session_api_exceptions_and_version() -> None:
    assert set(realtalk.__all__) == EXCEPTIONS | SESSION_API | {"__version__"}
    assert isinstance(realtalk.__version__, str)
    assert realtalk.__version__


def test_native_functions_are_the_ones_in_core() -> None:
    native = importlib.import_module("realtalk._core")
    for name in CORE_API:
        assert getattr(realtalk.core, name) is getattr(native, name)


@pytest.mark.parametrize("name", sorted(importlib.import_module("realtalk.relay").__all__))
def test_relay_api_is_documented(name: str) -> None:
    value = getattr(importlib.import_module("realtalk.relay"), name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert (value.__doc__ or "").strip()
        assert value.__module__.startswith("realtalk.relay.")


@pytest.mark.parametrize("name", sorted(CORE_API))
def test_public_api_is_documented(name: str) -> None:
    # Runtime docstrings say at least what the function is; the .pyi carries the full text.
    assert (getattr(realtalk.core, name).__doc__ or "").strip()


@pytest.mark.parametrize(
    ("name", "bases"),
    [
        ("RealtalkError", (Exception,)),
        ("AudioFormatError", (realtalk.exceptions.RealtalkError, ValueError)),
        ("Base64DecodeError", (realtalk.exceptions.AudioFormatError, ValueError)),
        ("EventParseError", (realtalk.exceptions.RealtalkError, ValueError)),
        ("ConfigurationError", (realtalk.exceptions.RealtalkError, ValueError)),
        ("ConnectError", (realtalk.exceptions.RealtalkError, OSError)),
        ("AuthenticationError", (realtalk.exceptions.ConnectError,)),
        ("ConnectionClosed", (realtalk.exceptions.RealtalkError,)),
        ("LocalProtocolError", (realtalk.exceptions.RealtalkError,)),
        ("RemoteProtocolError", (realtalk.exceptions.RealtalkError,)),
        ("ServerError", (realtalk.exceptions.RealtalkError,)),
        ("WavFormatError", (realtalk.exceptions.AudioFormatError, ValueError)),
    ],
)
def test_exception_hierarchy(name: str, bases: tuple[type, ...]) -> None:
    cls = getattr(realtalk.exceptions, name)
    assert getattr(realtalk, name) is cls
    for base in bases:
        assert issubclass(cls, base)


# Errors about input data say where in it; settings (ConfigurationError) have no position.
@pytest.mark.parametrize("name", sorted(POSITIONED))
def test_exceptions_carry_a_position(name: str) -> None:
    cls = getattr(realtalk.exceptions, name)
    err = cls("message", 7)
    assert err.position == 7
    assert str(err) == "message"
