"""Where to connect and how to authenticate: URL, dialect and upgrade-request headers.

This module owns the rules that turn arguments and environment variables into one
:class:`Endpoint` (OpenAI, Azure preview, Azure GA or a custom ``ws(s)://`` URL), and the
headers of the WebSocket upgrade request.

It never does I/O other than calling a caller-supplied token provider, never logs, and
never puts a credential into a URL, a ``repr`` or an exception message: API keys live in
:class:`Secret` and leave it only in :meth:`Endpoint.headers`.
"""

from __future__ import annotations

import hmac
import inspect
import os
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from realtalk._core import __version__
from realtalk.exceptions import ConfigurationError

__all__ = ["Dialect", "Endpoint", "EndpointKind", "Secret", "TokenProvider", "resolve_endpoint"]

#: ``"ga"``: the generally available Realtime API; ``"beta"``: the older preview dialect,
#: selected with the ``OpenAI-Beta: realtime=v1`` header.
Dialect: TypeAlias = Literal["ga", "beta"]

#: ``"openai"``: api.openai.com; ``"azure"``: Azure's preview endpoint
#: (``/openai/realtime?api-version=…&deployment=…``); ``"azure_ga"``: Azure's GA endpoint
#: (``/openai/v1/realtime?model=…``); ``"custom"``: any other ``ws(s)://`` URL.
EndpointKind: TypeAlias = Literal["openai", "azure", "azure_ga", "custom"]

#: Returns a bearer token (e.g. a Microsoft Entra ID token); may be sync or async.
TokenProvider: TypeAlias = Callable[[], str | Awaitable[str]]

DEFAULT_MODEL = "gpt-realtime"

_AZURE_PREVIEW_PATH = "/openai/realtime"
_AZURE_GA_PATH = "/openai/v1/realtime"
_OPENAI_HOST = "api.openai.com"

# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers the WebSocket handshake itself owns; trio-websocket/wsproto write them.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "content-length",
        "transfer-encoding",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)
# Query parameters that carry credentials; a URL must not, so that it can be shown.
_SECRET_QUERY_NAMES = frozenset({"api-key", "api_key", "apikey", "access_token"})


class Secret:
    """A credential string that does not show itself.

    ``repr()`` and ``str()`` give ``Secret('***')``; :meth:`reveal` returns the value.
    Two secrets are equal when their values are (compared in constant time).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself; only for building a request header."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True, repr=False)
class Endpoint:
    """A resolved Realtime API endpoint; build one with :func:`resolve_endpoint`.

    ``url`` is the complete ``ws://`` or ``wss://`` URL including the query, and never
    contains a credential. The credential is kept in private fields and only sent by
    :meth:`headers`; ``repr()`` shows which kind of authentication is used, never its value.
    ``extra_headers`` are sent last and override same-named headers (case-insensitively).
    """

    url: str
    dialect: Dialect
    kind: EndpointKind
    _api_key: Secret | None = None
    _token_provider: TokenProvider | None = field(default=None, compare=False)
    extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def auth(self) -> Literal["bearer", "api-key", "token_provider", "none"]:
        """How the upgrade request authenticates (never the credential itself)."""
        if self._api_key is not None:
            return "api-key" if self.kind in ("azure", "azure_ga") else "bearer"
        if self._token_provider is not None:
            return "token_provider"
        return "none"

    @property
    def host(self) -> str:
        """``host`` or ``host:port`` of :attr:`url`, for messages that must not leak secrets."""
        return urllib.parse.urlsplit(self.url).netloc

    def __repr__(self) -> str:
        names = tuple(name for name, _ in self.extra_headers)
        return (
            f"Endpoint(url={self.url!r}, dialect={self.dialect!r}, kind={self.kind!r}, "
            f"auth={self.auth!r}, extra_headers={names!r})"
        )

    __str__ = __repr__

    async def headers(self) -> list[tuple[str, str]]:
        """The headers of the WebSocket upgrade request, as ``(name, value)`` pairs.

        In order: the credential (``Authorization: Bearer <key>`` for OpenAI and custom
        URLs, ``api-key: <key>`` for Azure, ``Authorization: Bearer <token>`` with a token
        provider, nothing for a custom URL without credentials), ``OpenAI-Beta:
        realtime=v1`` for the beta dialect, ``User-Agent: realtalk/<version>``, then
        ``extra_headers``, which replace same-named headers above (case-insensitively).

        A token provider is called on every call, so each connection gets a fresh token.

        Raises:
            ConfigurationError: the token provider raised, or returned something other than
                a non-empty string without whitespace or control characters. The message
                never contains the token.
        """
        headers: list[tuple[str, str]] = []
        if self._api_key is not None:
            if self.kind in ("azure", "azure_ga"):
                headers.append(("api-key", self._api_key.reveal()))
            else:
                headers.append(("Authorization", f"Bearer {self._api_key.reveal()}"))
        elif self._token_provider is not None:
            token = await _call_token_provider(self._token_provider)
            headers.append(("Authorization", f"Bearer {token}"))
        if self.dialect == "beta":
            headers.append(("OpenAI-Beta", "realtime=v1"))
        headers.append(("User-Agent", f"realtalk/{__version__}"))
        overridden = {name.lower() for name, _ in self.extra_headers}
        headers = [(name, value) for name, value in headers if name.lower() not in overridden]
        headers.extend(self.extra_headers)
        return headers


async def _call_token_provider(provider: TokenProvider) -> str:
    try:
        result = provider()
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        # Chained, so the provider's own error stays visible; our message names only its type.
        raise ConfigurationError(f"token_provider raised {type(exc).__name__}") from exc
    if not isinstance(result, str):
        raise ConfigurationError(
            f"token_provider returned {type(result).__name__}, expected a str token"
        )
    _check_credential(result, "the token from token_provider")
    return result


def resolve_endpoint(
    url: str | None = None,
    *,
    api_key: str | None = None,
    model: str | None = None,
    dialect: Dialect = "ga",
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    api_version: str | None = None,
    token_provider: TokenProvider | None = None,
    extra_headers: Mapping[str, str] | None = None,
    extra_query: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """Decide the URL, dialect and credentials of a Realtime connection.

    ``environ`` defaults to :data:`os.environ`; an environment variable set to the empty
    string counts as unset. Explicit arguments always win over the environment.

    Which service:

    1. ``url`` given: it is used as is (``ws://`` or ``wss://`` only). Its path decides the
       kind: ending in ``/openai/realtime`` is Azure preview (``"azure"``), in
       ``/openai/v1/realtime`` Azure GA (``"azure_ga"``); host ``api.openai.com`` is
       ``"openai"``; anything else ``"custom"`` (local servers, relays). If ``model`` is
       passed and the URL has no ``model`` parameter (``deployment`` for Azure preview),
       it is appended. ``azure_endpoint``, ``azure_deployment`` and ``api_version`` cannot
       be combined with ``url``.
    2. Azure, when ``azure_endpoint`` is passed, or when neither ``url`` nor
       ``azure_endpoint`` is passed, ``AZURE_OPENAI_ENDPOINT`` is set and
       ``OPENAI_API_KEY`` is not. The endpoint is the resource URL
       (``https://<resource>.openai.azure.com``, trailing slash optional; ``https`` becomes
       ``wss`` and ``http`` becomes ``ws``). The deployment is ``azure_deployment``, else
       ``model``, else ``"gpt-realtime"``. With ``api_version`` (or ``OPENAI_API_VERSION``)
       it is the preview endpoint
       ``wss://<host>/openai/realtime?api-version=<v>&deployment=<d>``, without it the GA
       endpoint ``wss://<host>/openai/v1/realtime?model=<d>``.
    3. Otherwise OpenAI: ``wss://api.openai.com/v1/realtime?model=<model>``, default model
       ``"gpt-realtime"``. Passing ``azure_deployment`` or ``api_version`` here is an error.

    Credentials, first match wins: ``api_key``; ``token_provider`` (sync or async
    callable returning a bearer token, called on every connection); the environment
    (``OPENAI_API_KEY`` for OpenAI, ``AZURE_OPENAI_API_KEY`` for Azure; a custom URL never
    takes a key from the environment, so a relay never sees it unasked). ``api_key`` and
    ``token_provider`` together are an error. A key is sent as ``Authorization: Bearer``
    to OpenAI and custom URLs, as ``api-key`` to Azure; a token always as Bearer. Only a
    custom URL may have no credentials.

    ``dialect="beta"`` adds the ``OpenAI-Beta: realtime=v1`` header. ``extra_query`` is
    appended to the query (URL-encoded); ``extra_headers`` are sent last and override.

    Raises:
        ConfigurationError: an ``http(s)://`` or otherwise non-WebSocket URL, a URL with a
            credential in it, missing credentials, an empty model or deployment, a key or
            header with whitespace or control characters, a header the WebSocket handshake
            owns (``Host``, ``Sec-WebSocket-*``, ...), a query parameter given twice, or
            arguments that belong to another kind of endpoint. Messages never contain a
            credential.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if dialect not in ("ga", "beta"):
        raise ConfigurationError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
    if model is not None and not model:
        raise ConfigurationError("model must not be empty")
    if azure_deployment is not None and not azure_deployment:
        raise ConfigurationError("azure_deployment must not be empty")
    if api_version is not None and not api_version:
        raise ConfigurationError("api_version must not be empty")
    if api_key is not None:
        _check_credential(api_key, "api_key")
    if api_key is not None and token_provider is not None:
        raise ConfigurationError("pass api_key or token_provider, not both")
    if token_provider is not None and not callable(token_provider):
        raise ConfigurationError("token_provider must be a callable returning a token")
    headers = _check_extra_headers(extra_headers or {})
    extra_pairs = [(str(k), str(v)) for k, v in (extra_query or {}).items()]
    if _SECRET_QUERY_NAMES & {name.lower() for name, _ in extra_pairs}:
        raise ConfigurationError(
            "extra_query must not contain credentials; pass api_key=... instead"
        )

    def env_value(name: str) -> str | None:
        return env.get(name) or None

    kind: EndpointKind
    if url is not None:
        if azure_endpoint is not None or azure_deployment is not None or api_version is not None:
            raise ConfigurationError(
                "azure_endpoint, azure_deployment and api_version cannot be combined with "
                "url; put the deployment and api-version in the url's query"
            )
        kind, query = _parse_ws_url(url)
        if model is not None:
            name = "deployment" if kind == "azure" else "model"
            if name not in query:
                extra_pairs.insert(0, (name, model))
        full_url = _append_query(url, query, extra_pairs)
        env_key = {
            "openai": "OPENAI_API_KEY",
            "azure": "AZURE_OPENAI_API_KEY",
            "azure_ga": "AZURE_OPENAI_API_KEY",
            "custom": None,
        }[kind]
    else:
        use_azure = azure_endpoint is not None or (
            env_value("AZURE_OPENAI_ENDPOINT") is not None and env_value("OPENAI_API_KEY") is None
        )
        if use_azure:
            resource = azure_endpoint or env_value("AZURE_OPENAI_ENDPOINT")
            assert resource is not None
            host_url = _azure_base(resource)
            deployment = azure_deployment or model or DEFAULT_MODEL
            version = api_version or env_value("OPENAI_API_VERSION")
            pairs: list[tuple[str, str]]
            if version is not None:
                kind = "azure"
                path = _AZURE_PREVIEW_PATH
                pairs = [("api-version", version), ("deployment", deployment)]
            else:
                kind = "azure_ga"
                path = _AZURE_GA_PATH
                pairs = [("model", deployment)]
            env_key = "AZURE_OPENAI_API_KEY"
        else:
            if azure_deployment is not None or api_version is not None:
                raise ConfigurationError(
                    "azure_deployment and api_version apply to Azure only: pass "
                    "azure_endpoint=... (or set AZURE_OPENAI_ENDPOINT without OPENAI_API_KEY)"
                )
            kind = "openai"
            host_url, path = f"wss://{_OPENAI_HOST}", "/v1/realtime"
            pairs = [("model", model or DEFAULT_MODEL)]
            env_key = "OPENAI_API_KEY"
        full_url = _append_query(host_url + path, {}, pairs + extra_pairs)

    key = api_key
    if key is None and token_provider is None and env_key is not None:
        key = env_value(env_key)
        if key is not None:
            _check_credential(key, env_key)
    if key is None and token_provider is None and kind != "custom":
        if kind == "openai":
            raise ConfigurationError(
                "no credentials for OpenAI: pass api_key=..., set OPENAI_API_KEY, "
                "or pass token_provider=..."
            )
        raise ConfigurationError(
            "no credentials for Azure: pass api_key=..., set AZURE_OPENAI_API_KEY, "
            "or pass token_provider=..."
        )
    return Endpoint(
        url=full_url,
        dialect=dialect,
        kind=kind,
        _api_key=None if key is None else Secret(key),
        _token_provider=token_provider,
        extra_headers=headers,
    )


def _check_credential(value: str, what: str) -> None:
    # A key becomes a header value; whitespace or control characters would either break
    # the request or smuggle in another header.
    if not value:
        raise ConfigurationError(f"{what} is empty")
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise ConfigurationError(f"{what} contains whitespace, control or non-ASCII characters")


def _check_extra_headers(extra: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, value in extra.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"extra header name {name!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigurationError(f"extra header {name!r} is set by the WebSocket handshake")
        if not isinstance(value, str) or not all(c == "\t" or " " <= c <= "~" for c in value):
            # The value is not shown: it may well be a credential.
            raise ConfigurationError(
                f"extra header {name!r} has a value that is not printable ASCII text"
            )
        out.append((name, value.strip(" \t")))
    return tuple(out)


def _parse_ws_url(url: str) -> tuple[EndpointKind, dict[str, str]]:
    """Check a caller's URL; return its kind and query parameters."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        # The suggestion names host and path only: the rest may carry a credential.
        host = parts.hostname or ""
        if parts.port is not None and _port_ok(parts):
            host += f":{parts.port}"
        suggestion = ("ws" if scheme == "http" else "wss") + f"://{host}{parts.path}"
        raise ConfigurationError(
            f"url must be a WebSocket URL (ws:// or wss://); did you mean {suggestion!r}"
            + ("?" if not parts.query else " with your query?")
        )
    if scheme not in ("ws", "wss"):
        raise ConfigurationError("url must start with ws:// or wss://")
    if not parts.hostname:
        raise ConfigurationError("url has no host")
    if "#" in url:
        raise ConfigurationError("url must not have a #fragment")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("url must not contain credentials; pass api_key=... instead")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigurationError("url has an invalid port") from None
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    if _SECRET_QUERY_NAMES & {name.lower() for name in query}:
        raise ConfigurationError("url must not contain credentials; pass api_key=... instead")
    path = parts.path.rstrip("/")
    kind: EndpointKind
    if path.endswith(_AZURE_GA_PATH):
        kind = "azure_ga"
    elif path.endswith(_AZURE_PREVIEW_PATH):
        kind = "azure"
    elif parts.hostname.lower() == _OPENAI_HOST:
        kind = "openai"
    else:
        kind = "custom"
    return kind, query


def _port_ok(parts: urllib.parse.SplitResult) -> bool:
    try:
        _ = parts.port
    except ValueError:
        return False
    return True


def _azure_base(resource: str) -> str:
    """``scheme://host[:port]`` of an Azure resource URL, with the WebSocket scheme."""
    parts = urllib.parse.urlsplit(resource.strip())
    scheme = {"https": "wss", "wss": "wss", "http": "ws", "ws": "ws"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ConfigurationError(
            "azure_endpoint must be a URL like https://<resource>.openai.azure.com"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ConfigurationError(
            "azure_endpoint must be the resource URL without a path, like "
            "https://<resource>.openai.azure.com; pass url=... for a full WebSocket URL"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("azure_endpoint must not contain credentials")
    return f"{scheme}://{parts.netloc}"


def _append_query(url: str, existing: Mapping[str, str], pairs: list[tuple[str, str]]) -> str:
    """``url`` with ``pairs`` appended to its query; the existing query is kept verbatim."""
    names = set(existing)
    for name, _ in pairs:
        if name in names:
            raise ConfigurationError(f"query parameter {name!r} given twice")
        names.add(name)
    if not pairs:
        return url
    encoded = urllib.parse.urlencode(pairs)
    if "?" not in url:
        return f"{url}?{encoded}"
    if url.endswith(("?", "&")):
        return url + encoded
    return f"{url}&{encoded}"
