"""The ``realtalk`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        "wav",
        nargs="?",
        type=Path,
        help="a WAV question: PCM or float, any rate, channels averaged (default: bundled)",
    )
    demo.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("realtalk-demo-reply.wav"),
        help="where to write the reply (default: ./realtalk-demo-reply.wav)",
    )
    _add_endpoint_options(demo)
    demo.add_argument(
        "--no-play", action="store_true", help="do not play the reply on the output device"
    )

    _add_talk(commands)
    _add_file(commands)

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

    from realtalk._relay_cli import add_relay_parser

    add_relay_parser(commands)

    bench = commands.add_parser(
        "bench",
        help="measure the latency budget end to end on JACK's loopback, next to a "
        "reference Python pipeline",
        description=(
            "Over JACK's dummy loopback (scripts/audio_up.sh starts it) and the embedded "
            "server with an instant brain, measure per turn: end of speech in the captured "
            "signal to the audio at the server, first audio delta to its first sample at the "
            "output device, barge-in (interrupt() or the user speaking) to silence at the "
            "device, and the truncation error; for realtalk and for a reference pipeline "
            "(sounddevice, soxr, numpy, pybase64, json, websockets) in the same run, with "
            "and without a Python thread competing for the GIL. Prints a table and writes a "
            "markdown report, the numbers as JSON and a PNG plot."
        ),
    )
    bench.add_argument(
        "--turns",
        type=int,
        default=18,
        help="answers per run (default: 18; a third of "
        "them played out, a third cut by interrupt(), a third by the user speaking)",
    )
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="folder for latency-report.md, latency-data.json, latency.png "
        "(default: ./bench-results)",
    )
    bench.add_argument(
        "--pipelines",
        nargs="+",
        choices=["realtalk", "reference"],
        default=["realtalk", "reference"],
        help="what to run (default: both)",
    )
    bench.add_argument(
        "--gil",
        nargs="+",
        default=["none", "busy"],
        help="GIL conditions in the client's process: none, busy (a thread spinning in "
        "Python), hold:MS (a thread holding the GIL MS ms at a time) (default: none busy)",
    )

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


def _add_endpoint_options(parser: Any) -> None:
    """Where a command connects: --url, --api-key-env, --local, --dialect."""
    parser.add_argument("--url", help="any ws:// or wss:// Realtime endpoint")
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="the environment variable holding the key to send to --url (none by default)",
    )
    parser.add_argument(
        "--local", action="store_true", help="use the embedded server even if a key is set"
    )
    parser.add_argument("--dialect", choices=["ga", "beta"], default="ga")


def _add_talk(commands: Any) -> None:
    talk = commands.add_parser(
        "talk",
        help="a live voice conversation through your microphone and speaker",
        description=(
            "Talk with a model through the default (or chosen) microphone and speaker. "
            "Without a key the embedded server answers (it plays your words back); with "
            "OPENAI_API_KEY, Azure settings or --url a real model does. The screen shows "
            "the session status, live transcripts, input and output meters, and per turn "
            "the latency from the end of your speech to the first sample heard, measured "
            "at the device. Space interrupts the answer (or, with --turn-detection key, "
            "starts and sends a turn); q or Ctrl-C ends the conversation and prints a summary."
        ),
    )
    where = talk.add_argument_group("endpoint (default: embedded server, or a key's endpoint)")
    _add_endpoint_options(where)
    where.add_argument("--model", help="model name (OpenAI; Azure GA shape)")
    where.add_argument(
        "--azure-endpoint", help="https://NAME.openai.azure.com (or AZURE_OPENAI_ENDPOINT)"
    )
    where.add_argument("--deployment", help="Azure deployment name")
    where.add_argument(
        "--api-version", help="Azure preview API version (the preview URL shape; beta dialect)"
    )
    where.add_argument(
        "--token-command",
        help=(
            "command printing a Microsoft Entra bearer token, run on every connect, e.g. "
            "'az account get-access-token --resource https://cognitiveservices.azure.com "
            "--query accessToken -o tsv'"
        ),
    )
    where.add_argument(
        "--brain",
        help="embedded server only: 'echo' (default) or a JSON script for the scripted brain",
    )
    model = talk.add_argument_group("the model")
    model.add_argument("--instructions", help="system instructions")
    model.add_argument("--voice", help="voice, e.g. marin, alloy, verse")
    model.add_argument(
        "--temperature", type=float, help="sampling temperature 0.6-1.2 (beta dialect only)"
    )
    model.add_argument(
        "--no-tools",
        action="store_true",
        help="do not offer the demo tools get_weather (offline sample data) and set_memory",
    )
    turns = talk.add_argument_group("turns")
    turns.add_argument(
        "--turn-detection",
        choices=["server", "semantic", "key"],
        default="server",
        help="server VAD (default), semantic VAD, or push-to-talk with the space key",
    )
    turns.add_argument("--threshold", type=float, help="server VAD activation level 0.0-1.0")
    turns.add_argument("--prefix-padding-ms", type=int, help="server VAD audio kept before speech")
    turns.add_argument("--silence-ms", type=int, help="server VAD silence that ends a turn")
    turns.add_argument(
        "--eagerness", choices=["low", "medium", "high", "auto"], help="semantic VAD eagerness"
    )
    turns.add_argument(
        "--transcribe",
        nargs="?",
        const="gpt-4o-mini-transcribe",
        metavar="MODEL",
        help="show transcripts of what you say (default model: gpt-4o-mini-transcribe)",
    )
    audio = talk.add_argument_group("devices (`realtalk devices` lists them)")
    audio.add_argument("--input", help="microphone name (default: the default input)")
    audio.add_argument("--output", help="speaker name (default: the default output)")
    audio.add_argument(
        "--sample-rate", type=int, default=48000, help="device rate in Hz (default: 48000)"
    )


def _add_file(commands: Any) -> None:
    file = commands.add_parser(
        "file",
        help="send a WAV file as a spoken question and write the spoken answer to a WAV file",
        description=(
            "Read a WAV file (PCM 8/16/24/32-bit, float 32/64-bit or G.711; any rate; "
            "channels are averaged), send it push-to-talk (server VAD off) as fast as the "
            "connection takes it, and write the answer's audio to a 24 kHz 16-bit mono WAV "
            "as it arrives, printing the transcript and how long the first audio took after "
            "the commit. The endpoint is chosen as for `realtalk demo`: the embedded server "
            "(no key, no network; it answers audio by playing it back) unless "
            "OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY) is set or "
            "--url is given."
        ),
    )
    file.add_argument("wav", type=Path, metavar="IN.wav", help="the question")
    file.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT.wav",
        help="where to write the reply (default: ./<IN>-reply.wav)",
    )
    file.add_argument(
        "--play", action="store_true", help="also play the reply on the default output device"
    )
    _add_endpoint_options(file)
    file.add_argument("--instructions", help="system instructions for the model")
    file.add_argument("--voice", help="voice, e.g. marin, alloy, verse")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from realtalk._demo import run_demo

        return run_demo(
            args.wav,
            output=args.output,
            url=args.url,
            api_key_env=args.api_key_env,
            local=args.local,
            dialect=args.dialect,
            play=not args.no_play,
        )
    if args.command == "talk":
        from realtalk._talk import TalkOptions, run_talk

        return run_talk(
            TalkOptions(
                url=args.url,
                api_key_env=args.api_key_env,
                local=args.local,
                dialect=args.dialect,
                model=args.model,
                azure_endpoint=args.azure_endpoint,
                azure_deployment=args.deployment,
                api_version=args.api_version,
                token_command=args.token_command,
                instructions=args.instructions,
                voice=args.voice,
                temperature=args.temperature,
                turn_detection=args.turn_detection,
                threshold=args.threshold,
                prefix_padding_ms=args.prefix_padding_ms,
                silence_duration_ms=args.silence_ms,
                eagerness=args.eagerness,
                transcribe=args.transcribe,
                tools=not args.no_tools,
                input=args.input,
                output=args.output,
                sample_rate=args.sample_rate,
                brain=args.brain,
            )
        )
    if args.command == "file":
        from realtalk._file_cli import run_file

        return run_file(
            args.wav,
            output=args.output,
            play=args.play,
            url=args.url,
            api_key_env=args.api_key_env,
            local=args.local,
            dialect=args.dialect,
            instructions=args.instructions,
            voice=args.voice,
        )
    if args.command == "serve":
        from realtalk._serve import run_serve

        return run_serve(args)
    if args.command == "relay":
        from realtalk._relay_cli import run_relay

        return run_relay(args)
    if args.command == "bench":
        from realtalk._bench import run_bench
        from realtalk._bench_signal import parse_gil_spec

        if args.turns < 1:
            print("realtalk bench: --turns must be at least 1", file=sys.stderr)
            return 2
        for spec in args.gil:
            try:
                parse_gil_spec(spec)
            except ValueError as exc:
                print(f"realtalk bench: --gil: {exc}", file=sys.stderr)
                return 2
        return run_bench(args)
    if args.command == "devices":
        from realtalk._devices_cli import run_devices

        return run_devices()
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
