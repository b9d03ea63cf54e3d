"""``realtalk relay``: the relay from the command line, and ``realtalk relay token``.

What it owns: turning command-line options into an :class:`~realtalk.relay.Upstream`,
:class:`~realtalk.relay.RelayAuth`, policy and limits; running the embedded server
in-process for ``--upstream embedded``; printing where the relay listens and one
timestamped line per session; stopping cleanly on Ctrl-C or SIGTERM.

What it must never do: take a key, token or secret from the command line (``ps``
shows arguments to every user): they come from environment variables named by
``--*-env`` options. The only credential it prints is a shared client token, in the
console link, so the person who started the relay can open it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from realtalk.exceptions import ConfigurationError
from realtalk.relay import (
    DEFAULT_ALLOWED_EVENTS,
    RelayAuth,
    RelayLimits,
    RelayPolicy,
    Upstream,
    make_token,
    open_relay,
)

_NAME = "realtalk relay"
_OPENAI_URL = "wss://api.openai.com/v1/realtime"


def _env(var: str, option: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise ConfigurationError(f"{option}: ${var} is not set")
    return value


def _check_upstream_options(args: argparse.Namespace) -> None:
    azure = [
        name
        for name, value in (
            ("--azure-endpoint", args.azure_endpoint),
            ("--deployment", args.deployment),
            ("--api-version", args.api_version),
        )
        if value is not None
    ]
    if azure and args.upstream != "azure":
        raise ConfigurationError(f"{', '.join(azure)} go with --upstream azure")
    if args.upstream_key_env is not None and "://" not in args.upstream:
        raise ConfigurationError("--upstream-key-env goes with --upstream ws(s)://URL")
    if args.upstream not in ("embedded", "openai", "azure") and "://" not in args.upstream:
        raise ConfigurationError(
            "--upstream must be embedded, openai, azure or a ws:// or wss:// URL"
        )


@asynccontextmanager
async def _open_upstream(args: argparse.Namespace) -> AsyncIterator[tuple[Upstream, str]]:
    """The upstream the options ask for, and how to describe it."""
    kind = args.upstream
    if kind == "embedded":
        from realtalk.server import open_server

        async with open_server() as server:
            # The embedded server wants some credential, as the API does; any will do.
            upstream = Upstream(url=server.url, api_key="embedded", dialect=args.dialect)
            yield upstream, f"embedded server at {server.url} (no API key, no network)"
        return
    if kind == "openai":
        upstream = Upstream(url=_OPENAI_URL, model=args.model, dialect=args.dialect)
    elif kind == "azure":
        endpoint = args.azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigurationError(
                "--upstream azure needs --azure-endpoint (or AZURE_OPENAI_ENDPOINT)"
            )
        upstream = Upstream(
            azure_endpoint=endpoint,
            azure_deployment=args.deployment,
            api_version=args.api_version,
            model=args.model,
            dialect=args.dialect,
        )
    else:
        key = None
        if args.upstream_key_env is not None:
            key = _env(args.upstream_key_env, "--upstream-key-env")
        upstream = Upstream(url=kind, api_key=key, model=args.model, dialect=args.dialect)
    yield upstream, f"{upstream.endpoint.url} ({upstream.endpoint.auth} auth)"


def _auth(args: argparse.Namespace) -> tuple[RelayAuth, str | None, str]:
    """The clients' authentication, a token for the console link, and a description."""
    if args.no_auth:
        return RelayAuth.none(), None, "no client authentication (loopback only)"
    if args.token_env is not None:
        token = _env(args.token_env, "--token-env")
        return RelayAuth(token=token), token, f"the shared token in ${args.token_env}"
    if args.secret_env is not None:
        secret = _env(args.secret_env, "--secret-env")
        return (
            RelayAuth(secret=secret),
            None,
            f"tokens signed with ${args.secret_env} "
            f"(make one: realtalk relay token --secret-env {args.secret_env})",
        )
    token = secrets.token_urlsafe(24)
    return RelayAuth(token=token), token, "a random token made for this run (in the link)"


def _demo_tools() -> list[tuple[Any, Callable[..., Any]]]:
    from realtalk._talk import GET_WEATHER, SET_MEMORY, get_weather

    notes: dict[str, str] = {}  # shared by every session of this relay: it is a demo

    def set_memory(key: str, value: str) -> dict[str, str]:
        notes[key] = value
        return {"saved": key, "notes": ", ".join(f"{k}={v}" for k, v in notes.items())}

    return [(GET_WEATHER, get_weather), (SET_MEMORY, set_memory)]


def _policy(args: argparse.Namespace) -> RelayPolicy:
    events = DEFAULT_ALLOWED_EVENTS
    if args.allow_events is not None:
        events = frozenset(e.strip() for e in args.allow_events.split(",") if e.strip())
        if not events:
            raise ConfigurationError("--allow-events: name at least one event type")
    return RelayPolicy(
        allowed_events=events,
        instructions=args.instructions,
        tools=_demo_tools() if args.demo_tools else None,
    )


def _limits(args: argparse.Namespace) -> RelayLimits:
    return RelayLimits(
        max_sessions=args.max_sessions,
        max_message_bytes=args.max_message_kb * 1024,
        max_messages_per_s=args.max_messages_per_s,
        burst=max(1, round(args.max_messages_per_s * 2)),
        idle_timeout_s=args.idle_timeout_s,
    )


def _print(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


async def _relay(args: argparse.Namespace) -> None:
    _check_upstream_options(args)
    auth, link_token, auth_text = _auth(args)
    policy = _policy(args)
    limits = _limits(args)
    async with (
        _open_upstream(args) as (upstream, upstream_text),
        open_relay(
            upstream=upstream,
            host=args.host,
            port=args.port,
            auth=auth,
            policy=policy,
            limits=limits,
            allowed_origins=args.allow_origin,
            log=None if args.quiet else _print,
        ) as relay,
    ):
        console = relay.http_url
        if link_token is not None:
            console += "?" + urllib.parse.urlencode({"token": link_token})
        print(f"{_NAME}: listening on {relay.url} (port {relay.port})", flush=True)
        print(f"  upstream: {upstream_text}, {upstream.dialect} dialect", flush=True)
        print(f"  console:  {console}", flush=True)
        print(
            f"  clients:  {auth_text}; sent as 'Authorization: Bearer <token>' or "
            "the subprotocol openai-insecure-api-key.<token>",
            flush=True,
        )
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"{_NAME}: stopped ({signal.Signals(signum).name})", file=sys.stderr)
                return


def _token(args: argparse.Namespace) -> int:
    secret = _env(args.token_secret_env, "--secret-env")
    print(make_token(secret, ttl_s=args.token_ttl))
    return 0


def run_relay(args: argparse.Namespace) -> int:
    """``realtalk relay`` (or ``realtalk relay token``); the process exit code."""
    try:
        if args.relay_command == "token":
            return _token(args)
        trio.run(_relay, args)
    except ConfigurationError as exc:
        print(f"{_NAME}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{_NAME}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_relay_parser(commands: Any) -> None:
    """The ``relay`` sub-command and its ``token`` sub-command."""
    relay = commands.add_parser(
        "relay",
        help="a WebSocket relay that keeps the API key away from browsers and other clients",
        description=(
            "Serve the Realtime API on ws://HOST:PORT/v1/realtime for clients that must "
            "not hold the API key (browsers): each client session gets its own upstream "
            "connection, opened with the relay's credentials. Clients authenticate with "
            "the relay's own token (Authorization: Bearer <token>, or the subprotocol "
            "openai-insecure-api-key.<token> from a browser). The same port serves the "
            "browser console. Keys, tokens and secrets are read from environment "
            "variables only. `realtalk relay token --secret-env VAR` prints a signed "
            "client token for a relay run with --secret-env VAR."
        ),
    )
    where = relay.add_argument_group("listening")
    where.add_argument("--host", default="127.0.0.1", help="interface (default: loopback)")
    where.add_argument("--port", type=int, default=8766, help="TCP port (default: 8766; 0: any)")
    up = relay.add_argument_group("upstream")
    up.add_argument(
        "--upstream",
        default="embedded",
        metavar="embedded|openai|azure|URL",
        help=(
            "where sessions go: the embedded server (default, offline), OpenAI "
            "(key in OPENAI_API_KEY), Azure (AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY), "
            "or any ws:// or wss:// URL"
        ),
    )
    up.add_argument("--model", help="model (OpenAI, URL) or Azure GA deployment")
    up.add_argument("--dialect", choices=["ga", "beta"], default="ga")
    up.add_argument("--azure-endpoint", help="https://NAME.openai.azure.com")
    up.add_argument("--deployment", help="Azure deployment name")
    up.add_argument("--api-version", help="Azure preview API version (preview URL shape)")
    up.add_argument(
        "--upstream-key-env",
        metavar="VAR",
        help="the environment variable holding the key for a URL upstream (none by default)",
    )
    who = relay.add_argument_group("client authentication (default: a random token)")
    auth = who.add_mutually_exclusive_group()
    auth.add_argument("--token-env", metavar="VAR", help="a shared token, from $VAR")
    auth.add_argument(
        "--secret-env", metavar="VAR", help="sign short-lived tokens with the secret in $VAR"
    )
    auth.add_argument(
        "--no-auth", action="store_true", help="no client authentication (loopback only)"
    )
    who.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="a browser origin allowed to connect, e.g. https://app.example (repeatable; "
        "default: only the relay's own console)",
    )
    policy = relay.add_argument_group("policy")
    policy.add_argument("--instructions", help="instructions held by the relay")
    policy.add_argument(
        "--demo-tools",
        action="store_true",
        help="hold and run the demo tools get_weather (offline sample data) and set_memory",
    )
    policy.add_argument(
        "--allow-events",
        metavar="A,B,...",
        help="client event types forwarded (default: "
        + ", ".join(sorted(DEFAULT_ALLOWED_EVENTS))
        + ")",
    )
    policy.add_argument("--max-sessions", type=int, default=16, help="default: 16")
    policy.add_argument(
        "--max-message-kb", type=int, default=1024, help="largest client message (default: 1024)"
    )
    policy.add_argument(
        "--max-messages-per-s",
        type=float,
        default=100.0,
        help="client messages per second, bursts of twice that (default: 100)",
    )
    policy.add_argument(
        "--idle-timeout-s", type=float, help="close sessions whose client is silent this long"
    )
    relay.add_argument("--quiet", action="store_true", help="do not log sessions and refusals")
    sub = relay.add_subparsers(dest="relay_command", metavar="{token}")
    token = sub.add_parser(
        "token",
        help="print a signed client token",
        description=(
            "Print a client token signed with the secret in $VAR, for a relay run with "
            "--secret-env VAR."
        ),
    )
    token.add_argument(
        "--secret-env",
        dest="token_secret_env",
        metavar="VAR",
        required=True,
        help="the environment variable holding the signing secret",
    )
    token.add_argument(
        "--ttl",
        dest="token_ttl",
        type=float,
        default=300.0,
        help="seconds the token is valid (default: 300)",
    )
