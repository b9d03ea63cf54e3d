"""The ``realtalk`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from realtalk import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realtalk",
        description="Speech-in, speech-out conversations with the OpenAI Realtime API.",
    )
    parser.add_argument("--version", action="version", version=f"realtalk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="ask a spoken question and show the session's timeline and latency",
        description=(
            "Start the embedded Realtime server, stream a bundled spoken question to it at "
            "real time, let server VAD find the end of the turn, and print every event with "
            "millisecond timestamps, the transcript and the latency from the end of speech "
            "to the first and last audio delta. The reply is written to a WAV file and played "
            "on the default output device when there is one. With "
            "OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY) set, or "
            "--url, it talks to that endpoint instead."
        ),
    )
    demo.add_argument(
        "wav", nargs="?", type=Path, help="a 16-bit mono WAV question (default: bundled)"
    )
    demo.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("realtalk-demo-reply.wav"),
        help="where to write the reply (default: ./realtalk-demo-reply.wav)",
    )
    demo.add_argument("--url", help="any ws:// or wss:// Realtime endpoint")
    demo.add_argument(
        "--local", action="store_true", help="use the embedded server even if a key is set"
    )
    demo.add_argument("--dialect", choices=["ga", "beta"], default="ga")
    demo.add_argument(
        "--no-play", action="store_true", help="do not play the reply on the output device"
    )

    serve = commands.add_parser(
        "serve",
        help="run the embedded Realtime server (offline stand-in for the API)",
        description=(
            "Serve the Realtime API's wire protocol on ws://HOST:PORT: /v1/realtime?model=... "
            "(OpenAI shape), /openai/realtime?api-version=...&deployment=... and "
            "/openai/v1/realtime?model=... (Azure shapes); the dialect follows the "
            "OpenAI-Beta header. Logs one line per event."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default: loopback)")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default: 8765; 0: any)")
    serve.add_argument(
        "--brain",
        default="echo",
        help="'echo' (default) or the path of a JSON script for the scripted brain",
    )
    serve.add_argument("--paced", action="store_true", help="send audio at real time")
    serve.add_argument(
        "--delta-ms", type=int, default=100, help="ms of audio per audio delta (default: 100)"
    )
    serve.add_argument("--api-key", help="require exactly this key (default: any key)")
    serve.add_argument(
        "--max-session-s", type=float, default=3600.0, help="session length limit in seconds"
    )
    serve.add_argument("--quiet", action="store_true", help="do not log every event")

    commands.add_parser(
        "devices",
        help="list the audio devices PortAudio finds",
        description=(
            "Print every audio device PortAudio finds: name, host API, input and output "
            "channels, default sample rate, default low and high latencies, and which are "
            "the default input and output. Needs the PortAudio library (libportaudio2, or "
            "REALTALK_PORTAUDIO_LIB set to its path)."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from realtalk._demo import run_demo

        return run_demo(
            args.wav,
            output=args.output,
            url=args.url,
            local=args.local,
            dialect=args.dialect,
            play=not args.no_play,
        )
    if args.command == "serve":
        from realtalk._serve import run_serve

        return run_serve(args)
    if args.command == "devices":
        from realtalk._devices_cli import run_devices

        return run_devices()
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
