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
        help="round-trip a WAV through the audio core, as it would travel to and from the API",
        description=(
            "Send a WAV (a bundled voice clip by default) through the native audio core the "
            "way a session does: 20 ms input_audio_buffer.append events out, audio delta "
            "events back, and through G.711. Prints what happened and how long it took. "
            "No API key or network is used."
        ),
    )
    demo.add_argument(
        "wav", nargs="?", type=Path, help="16-bit mono 24 kHz WAV (default: bundled clip)"
    )
    demo.add_argument(
        "-o", "--output", type=Path, help="write the audio that came back through the codec"
    )
    demo.add_argument(
        "--codec",
        choices=["pcm16", "ulaw", "alaw"],
        default="pcm16",
        help="the codec whose output --output writes (default: pcm16)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from realtalk._demo import run_demo

        return run_demo(args.wav, output=args.output, codec=args.codec)
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
