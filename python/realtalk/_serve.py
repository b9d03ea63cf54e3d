"""``realtalk serve``: the embedded server from the command line, logging each event.

What it owns: turning command-line options into :func:`realtalk.server.open_server`
arguments and printing one timestamped line per event. It must never bind beyond
loopback unless ``--host`` says so, and ends cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import trio

from realtalk.server import Brain, EchoBrain, ScriptedBrain, ServerOptions, open_server


def _brain_factory(spec: str) -> Callable[[], Brain]:
    if spec == "echo":
        return EchoBrain
    path = Path(spec)
    if not path.is_file():
        raise SystemExit(f"realtalk serve: --brain must be 'echo' or a JSON script file: {spec}")
    ScriptedBrain(path)  # fail now on a bad script, not on the first connection
    return _Scripted(path)


class _Scripted:
    """A fresh ScriptedBrain per connection, from the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> ScriptedBrain:
        return ScriptedBrain(self.path)


async def _serve(args: argparse.Namespace) -> None:
    options = ServerOptions(
        paced=args.paced,
        delta_ms=args.delta_ms,
        api_key=args.api_key,
        max_session_s=args.max_session_s,
    )
    log = None if args.quiet else (lambda line: print(line, flush=True))
    factory = _brain_factory(args.brain)
    async with open_server(
        host=args.host,
        port=args.port,
        brain=factory,
        options=options,
        log=log,
    ) as server:
        print(f"realtalk serve: listening on {server.url}", flush=True)
        print(f"  openai package: websocket_base_url={server.base_url!r}", flush=True)
        print(f"  Azure shape:    websocket_base_url={server.azure_url!r}", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"realtalk serve: stopped ({signal.Signals(signum).name})", file=sys.stderr)
                return


def run_serve(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM; the process exit code."""
    try:
        trio.run(_serve, args)
    except OSError as exc:
        print(f"realtalk serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
