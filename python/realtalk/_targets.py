"""Where the command-line tools connect: the embedded server, or the endpoint asked for.

What this module owns: the one rule ``realtalk demo``, ``talk`` and ``file`` share:
``--url`` wins (with the key from ``--api-key-env`` if given); else an explicit remote
endpoint, or a key in the environment (``OPENAI_API_KEY``, or ``AZURE_OPENAI_ENDPOINT``
with ``AZURE_OPENAI_API_KEY``), means that endpoint, unless ``--local``; else the embedded
server runs in-process for the ``async with``.

What it must never do: contact the network unless one of those asked for it, or send a
key from the environment to a ``--url`` that was not told to have it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from realtalk.exceptions import ConfigurationError


def _shown(url: str) -> str:
    """``url`` for the screen: no user info, and credential-like query values hidden
    (connect() then refuses such a URL with its own message)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.username is not None or parts.password is not None:
        netloc = "***@" + netloc
    try:
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        pass
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    hidden = {"api-key", "api_key", "apikey", "access_token", "key", "token"}
    query = urllib.parse.urlencode(
        [(k, "***" if k.lower() in hidden else v) for k, v in pairs], safe="*"
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_key(url: str | None, api_key_env: str | None) -> str | None:
    """The key to send to ``url``: the value of ``$api_key_env``, or ``None``.

    Raises:
        ConfigurationError: ``api_key_env`` without ``url``, or naming an unset variable.
    """
    if api_key_env is None:
        return None
    if url is None:
        raise ConfigurationError("--api-key-env goes with --url")
    key = os.environ.get(api_key_env)
    if not key:
        raise ConfigurationError(f"--api-key-env: ${api_key_env} is not set")
    return key


@asynccontextmanager
async def open_target(
    url: str | None,
    local: bool,
    *,
    api_key_env: str | None = None,
    remote: bool = False,
    brain: str | None = None,
) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """(url or None for the default OpenAI/Azure endpoint, key to send, description).

    Args:
        url: a ws:// or wss:// endpoint (``--url``).
        local: use the embedded server even when a key is set (``--local``).
        api_key_env: the environment variable whose value is sent as the key to ``url``.
        remote: the caller was given an endpoint of its own (e.g. ``--azure-endpoint``).
        brain: for the embedded server: ``"echo"`` (default) or a scripted brain's JSON.

    Raises:
        ConfigurationError: ``api_key_env`` names an unset variable; a bad brain script.
    """
    key = url_key(url, api_key_env)
    if url is not None:
        yield url, key, f"endpoint {_shown(url)}"
        return
    from_env = os.environ.get("OPENAI_API_KEY") or (
        os.environ.get("AZURE_OPENAI_ENDPOINT") and os.environ.get("AZURE_OPENAI_API_KEY")
    )
    if (remote or from_env) and not local:
        yield None, None, "OpenAI/Azure endpoint from your options and environment"
        return
    from realtalk.server import Brain, EchoBrain, ScriptedBrain, open_server

    factory: Callable[[], Brain] = EchoBrain
    if brain not in (None, "echo"):
        script = brain
        try:
            ScriptedBrain(script)  # a bad script is a usage error, found before serving
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"--brain {script}: {exc}") from None

        def factory() -> ScriptedBrain:  # one fresh script per connection
            return ScriptedBrain(script)

    async with open_server(brain=factory) as server:
        # The embedded server wants some credential, as the API does; any will do.
        yield server.url, "embedded", f"embedded server at {server.url} (no API key, no network)"
