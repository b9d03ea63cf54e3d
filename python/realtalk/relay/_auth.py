"""Who may open a relay session: client tokens and the browser's ``Origin``.

What this module owns: :class:`RelayAuth` (a shared token, short-lived signed tokens, or
no authentication on loopback), :func:`make_token` and the token format, where a client
puts its token in the upgrade request (``Authorization: Bearer``, or the browser
subprotocol ``openai-insecure-api-key.<token>``), and the ``Origin`` rule.

What it must never do: put a token, a signing secret or a part of either into a
``repr``, a message or a log line; compare a token other than in constant time; or
tell a caller more than *missing*, *invalid* or *expired* about a token it refused.
No I/O: time is an argument (``now``, Unix seconds) wherever it matters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from typing import Literal, TypeAlias

from realtalk.client._endpoint import Secret
from realtalk.exceptions import ConfigurationError

__all__ = ["RelayAuth", "TokenCheck", "make_token"]

#: What :meth:`RelayAuth.check` says about a presented token.
TokenCheck: TypeAlias = Literal["ok", "missing", "invalid", "expired"]

#: The version tag that starts every signed token.
_TOKEN_VERSION = "rt1"
#: Signing secrets shorter than this are refused: they could be guessed offline.
_MIN_SECRET_BYTES = 16
#: Shared tokens shorter than this are refused, for the same reason.
_MIN_TOKEN_CHARS = 16
#: The subprotocol prefix that carries a token from a browser (the API's web convention).
KEY_PROTOCOL = "openai-insecure-api-key."
# expiry (Unix seconds, at most 12 digits) . nonce (base64url) . signature (base64url, 43)
_SIGNED = re.compile(r"rt1\.([0-9]{1,12})\.([A-Za-z0-9_-]{8,64})\.([A-Za-z0-9_-]{43})")
# What a token may contain: printable ASCII without whitespace, and nothing a
# Sec-WebSocket-Protocol token cannot carry (so browsers can send it).
_TOKEN_CHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _secret_bytes(secret: bytes | str, what: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < _MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{what} must be at least {_MIN_SECRET_BYTES} bytes (e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return key


def _sign(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(secret: bytes | str, *, ttl_s: float = 300, now: float | None = None) -> str:
    """A signed client token for a relay run with ``RelayAuth(secret=secret)``.

    The format is ``rt1.<expiry>.<nonce>.<signature>``: the expiry in whole Unix seconds
    (``now + ttl_s``, rounded down), 16 random base64url characters, and the unpadded
    base64url HMAC-SHA256 of ``rt1.<expiry>.<nonce>`` under ``secret``. Every character
    is allowed in a WebSocket subprotocol, so browsers can send it. A token is a bearer
    credential until it expires: it is not single-use.

    Args:
        secret: the relay's signing secret (``str`` is UTF-8 encoded), >= 16 bytes.
        ttl_s: seconds the token is valid, > 0.
        now: the current Unix time in seconds (default: :func:`time.time`).

    Raises:
        ConfigurationError: a secret shorter than 16 bytes, or ``ttl_s`` not > 0.
    """
    key = _secret_bytes(secret, "the signing secret")
    if not ttl_s > 0:
        raise ConfigurationError(f"ttl_s must be > 0 seconds, got {ttl_s!r}")
    expiry = int((time.time() if now is None else now) + ttl_s)
    payload = f"{_TOKEN_VERSION}.{expiry}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(key, payload)}"


class RelayAuth:
    """How relay clients authenticate; build one of three kinds.

    - ``RelayAuth(token=...)``: one shared token (>= 16 characters from the characters
      an HTTP token may hold, so a browser can offer it as a subprotocol).
    - ``RelayAuth(secret=...)``: short-lived tokens signed with ``secret`` (>= 16 bytes),
      made by :func:`make_token` (e.g. by your web backend for a logged-in user).
    - ``RelayAuth.none()``: no authentication; :func:`~realtalk.relay.open_relay`
      accepts it only on a loopback address.

    A client sends its token as ``Authorization: Bearer <token>`` (so
    ``realtalk.connect(relay.url, api_key=token)`` works) or, from a browser, as the
    subprotocol ``openai-insecure-api-key.<token>`` next to ``realtime``. The token and
    the secret never appear in ``repr()``.

    Raises:
        ConfigurationError: neither or both of ``token`` and ``secret``, or one that is
            too short or has characters a header or subprotocol cannot carry.
    """

    __slots__ = ("_kind", "_secret", "_token")

    def __init__(self, *, token: str | None = None, secret: bytes | str | None = None) -> None:
        if (token is None) == (secret is None):
            raise ConfigurationError(
                "RelayAuth takes token=... or secret=... (or use RelayAuth.none())"
            )
        self._token: Secret | None = None
        self._secret: bytes | None = None
        self._kind: Literal["token", "signed", "none"]
        if token is not None:
            if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
                raise ConfigurationError(
                    "the relay token may only contain letters, digits and !#$%&'*+-.^_`|~"
                )
            if len(token) < _MIN_TOKEN_CHARS:
                raise ConfigurationError(
                    f"the relay token must be at least {_MIN_TOKEN_CHARS} characters"
                )
            self._token = Secret(token)
            self._kind = "token"
        else:
            assert secret is not None
            self._secret = _secret_bytes(secret, "the signing secret")
            self._kind = "signed"

    @classmethod
    def none(cls) -> RelayAuth:
        """No client authentication (loopback relays only)."""
        auth = cls.__new__(cls)
        auth._token = None
        auth._secret = None
        auth._kind = "none"
        return auth

    @property
    def kind(self) -> Literal["token", "signed", "none"]:
        """``"token"`` (shared), ``"signed"`` (:func:`make_token`) or ``"none"``."""
        return self._kind

    def __repr__(self) -> str:
        return f"RelayAuth(kind={self._kind!r})"

    def check(self, token: str | None, *, now: float | None = None) -> TokenCheck:
        """Whether ``token`` opens a session: ``"ok"``, or why not.

        ``"missing"``: no token (and one is required); ``"invalid"``: wrong, malformed or
        tampered with; ``"expired"``: a correctly signed token whose expiry (Unix
        seconds) is at or before ``now`` (default: :func:`time.time`). Comparisons take
        constant time; the expiry is looked at only once the signature is right.
        """
        if self._kind == "none":
            return "ok"
        if not token:
            return "missing"
        presented = token.encode("utf-8", "surrogateescape")
        if self._token is not None:
            expected = self._token.reveal().encode("ascii")
            return "ok" if hmac.compare_digest(presented, expected) else "invalid"
        assert self._secret is not None
        match = _SIGNED.fullmatch(token)
        if match is None:
            return "invalid"
        payload = token[: match.start(3) - 1]
        good = hmac.compare_digest(
            match.group(3).encode("ascii"), _sign(self._secret, payload).encode("ascii")
        )
        if not good:
            return "invalid"
        now = time.time() if now is None else now
        return "ok" if int(match.group(1)) > now else "expired"


def presented_token(authorization: str | None, subprotocols: Sequence[str]) -> str | None:
    """The token a client presented: ``Authorization: Bearer <token>`` first, else the
    subprotocol ``openai-insecure-api-key.<token>``; ``None`` if neither."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for protocol in subprotocols:
        if protocol.startswith(KEY_PROTOCOL) and len(protocol) > len(KEY_PROTOCOL):
            return protocol[len(KEY_PROTOCOL) :]
    return None


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 with or without brackets) is loopback."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def origin_allowed(
    origin: str | None,
    host_header: str | None,
    *,
    allowed: frozenset[str] | None,
    require_origin: bool,
    loopback: bool,
) -> bool:
    """Whether a WebSocket upgrade with this ``Origin`` (and ``Host``) may proceed.

    No ``Origin`` (a non-browser client) passes unless ``require_origin``. With an
    ``allowed`` list the origin must be in it (``"*"`` allows any); without one only the
    relay's own pages may connect: the origin must be ``http(s)://<Host>``, and on a
    loopback relay the ``Host`` must be a loopback name or address, so that a page
    reaching the relay through DNS rebinding is refused.
    """
    if origin is None:
        return not require_origin
    normalized = origin.strip().rstrip("/").lower()
    if allowed is not None:
        return "*" in allowed or normalized in allowed
    if not host_header:
        return False
    host = host_header.strip().lower()
    if normalized not in (f"http://{host}", f"https://{host}"):
        return False
    if loopback:
        hostname = urllib.parse.urlsplit(f"//{host}").hostname or ""
        return is_loopback(hostname)
    return True


def normalize_origins(origins: Sequence[str] | None) -> frozenset[str] | None:
    """``allowed_origins`` as compared: lower case, no trailing slash.

    Raises:
        ConfigurationError: an entry that is not ``"*"``, ``"null"`` or ``scheme://host[:port]``.
    """
    if origins is None:
        return None
    if isinstance(origins, str):
        raise ConfigurationError("allowed_origins must be a list of origins, not one string")
    out: set[str] = set()
    for origin in origins:
        value = str(origin).strip().rstrip("/").lower()
        if value not in ("*", "null"):
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ConfigurationError(
                    f"allowed_origins: {origin!r} is not an origin like https://example.com"
                )
        out.add(value)
    return frozenset(out)
