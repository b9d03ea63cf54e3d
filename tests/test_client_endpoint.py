"""resolve_endpoint: URL, kind, dialect and credentials from arguments and environment.

Every test passes ``environ=`` explicitly; none reads the real environment.
"""

import dataclasses
import re

import pytest

from realtalk import __version__
from realtalk.client._endpoint import Endpoint, Secret, resolve_endpoint
from realtalk.exceptions import ConfigurationError

KEY = "sk-SECRET-123"
AZ_KEY = "azSECRETkey0123456789abcdef"
AZURE = "https://my-res.openai.azure.com"
PREVIEW = "2025-04-01-preview"


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name.lower()]
    assert len(values) <= 1, headers
    return values[0] if values else None


# --- OpenAI ---------------------------------------------------------------------------


async def test_openai_defaults() -> None:
    ep = resolve_endpoint(api_key=KEY, environ={})
    assert ep.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert (ep.kind, ep.dialect, ep.auth) == ("openai", "ga", "bearer")
    assert await ep.headers() == [
        ("Authorization", f"Bearer {KEY}"),
        ("User-Agent", f"realtalk/{__version__}"),
    ]


async def test_beta_dialect_adds_the_beta_header() -> None:
    ep = resolve_endpoint(api_key=KEY, model="gpt-4o-realtime-preview", dialect="beta", environ={})
    assert ep.url == "wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview"
    headers = await ep.headers()
    assert header(headers, "OpenAI-Beta") == "realtime=v1"
    assert header(headers, "Authorization") == f"Bearer {KEY}"


async def test_openai_key_from_environment_and_argument_wins() -> None:
    env = {"OPENAI_API_KEY": "sk-from-env"}
    assert header(await resolve_endpoint(environ=env).headers(), "Authorization") == (
        "Bearer sk-from-env"
    )
    ep = resolve_endpoint(api_key=KEY, environ=env)
    assert header(await ep.headers(), "Authorization") == f"Bearer {KEY}"


def test_openai_without_credentials() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as info:
        resolve_endpoint(environ={})
    assert "api_key" in str(info.value)


def test_empty_environment_values_count_as_unset() -> None:
    with pytest.raises(ConfigurationError, match="no credentials for OpenAI"):
        resolve_endpoint(environ={"OPENAI_API_KEY": "", "AZURE_OPENAI_ENDPOINT": ""})


async def test_token_provider_with_openai_is_bearer() -> None:
    ep = resolve_endpoint(token_provider=lambda: "tok-1", environ={"OPENAI_API_KEY": KEY})
    assert ep.auth == "token_provider"
    assert header(await ep.headers(), "Authorization") == "Bearer tok-1"


# --- Azure ----------------------------------------------------------------------------


async def test_azure_preview_from_arguments() -> None:
    ep = resolve_endpoint(
        azure_endpoint=AZURE,
        azure_deployment="my-dep",
        api_version=PREVIEW,
        api_key=AZ_KEY,
        environ={},
    )
    assert ep.kind == "azure"
    assert ep.url == (
        f"wss://my-res.openai.azure.com/openai/realtime?api-version={PREVIEW}&deployment=my-dep"
    )
    headers = await ep.headers()
    assert header(headers, "api-key") == AZ_KEY
    assert header(headers, "Authorization") is None
    assert header(headers, "OpenAI-Beta") is None


async def test_azure_ga_without_api_version() -> None:
    ep = resolve_endpoint(azure_endpoint=AZURE, model="my-dep", api_key=AZ_KEY, environ={})
    assert ep.kind == "azure_ga"
    assert ep.url == "wss://my-res.openai.azure.com/openai/v1/realtime?model=my-dep"
    assert header(await ep.headers(), "api-key") == AZ_KEY


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://my-res.openai.azure.com", "wss://my-res.openai.azure.com"),
        ("https://my-res.openai.azure.com/", "wss://my-res.openai.azure.com"),
        ("wss://my-res.openai.azure.com/", "wss://my-res.openai.azure.com"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
    ],
)
def test_azure_endpoint_forms(given: str, expected: str) -> None:
    ep = resolve_endpoint(azure_endpoint=given, api_key=AZ_KEY, environ={})
    assert ep.url == f"{expected}/openai/v1/realtime?model=gpt-realtime"


@pytest.mark.parametrize(
    "given", ["my-res.openai.azure.com", "https://r.openai.azure.com/openai/v1/", "ftp://r"]
)
def test_azure_endpoint_must_be_a_resource_url(given: str) -> None:
    with pytest.raises(ConfigurationError, match="azure_endpoint"):
        resolve_endpoint(azure_endpoint=given, api_key=AZ_KEY, environ={})


def test_azure_deployment_wins_over_model() -> None:
    ep = resolve_endpoint(
        azure_endpoint=AZURE, azure_deployment="dep", model="mod", api_key=AZ_KEY, environ={}
    )
    assert ep.url.endswith("?model=dep")


@pytest.mark.parametrize(
    ("env", "kwargs", "kind"),
    [
        # AZURE_OPENAI_ENDPOINT alone selects Azure ...
        ({"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_API_KEY": AZ_KEY}, {}, "azure_ga"),
        (
            {
                "AZURE_OPENAI_ENDPOINT": AZURE,
                "AZURE_OPENAI_API_KEY": AZ_KEY,
                "OPENAI_API_VERSION": PREVIEW,
            },
            {},
            "azure",
        ),
        ({"AZURE_OPENAI_ENDPOINT": AZURE}, {"api_key": AZ_KEY}, "azure_ga"),
        # ... unless OPENAI_API_KEY is set too ...
        ({"AZURE_OPENAI_ENDPOINT": AZURE, "OPENAI_API_KEY": KEY}, {}, "openai"),
        # ... while an azure_endpoint argument always does.
        (
            {"OPENAI_API_KEY": KEY, "AZURE_OPENAI_API_KEY": AZ_KEY},
            {"azure_endpoint": AZURE},
            "azure_ga",
        ),
        ({"OPENAI_API_KEY": KEY}, {}, "openai"),
    ],
)
def test_environment_selects_the_service(
    env: dict[str, str], kwargs: dict[str, str], kind: str
) -> None:
    assert resolve_endpoint(environ=env, **kwargs).kind == kind


async def test_azure_key_from_environment() -> None:
    env = {"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_API_KEY": AZ_KEY}
    ep = resolve_endpoint(environ=env)
    assert ep.url == "wss://my-res.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    assert header(await ep.headers(), "api-key") == AZ_KEY


def test_azure_without_credentials() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_endpoint(azure_endpoint=AZURE, environ={"OPENAI_API_KEY": KEY})
    assert str(info.value) == (
        "no credentials for Azure: pass api_key=..., set AZURE_OPENAI_API_KEY, "
        "or pass token_provider=..."
    )


def test_azure_arguments_without_azure() -> None:
    with pytest.raises(ConfigurationError, match="Azure only"):
        resolve_endpoint(azure_deployment="dep", environ={"OPENAI_API_KEY": KEY})
    with pytest.raises(ConfigurationError, match="Azure only"):
        resolve_endpoint(api_version=PREVIEW, environ={"OPENAI_API_KEY": KEY})


async def test_azure_sync_token_provider_is_called_on_every_call() -> None:
    calls = []

    def provider() -> str:
        calls.append(1)
        return f"entra-{len(calls)}"

    # An explicit token provider wins over a key in the environment.
    env = {"AZURE_OPENAI_API_KEY": AZ_KEY}
    ep = resolve_endpoint(azure_endpoint=AZURE, token_provider=provider, environ=env)
    assert calls == []
    first, second = await ep.headers(), await ep.headers()
    assert header(first, "Authorization") == "Bearer entra-1"
    assert header(second, "Authorization") == "Bearer entra-2"
    assert header(first, "api-key") is None


async def test_async_token_provider() -> None:
    async def provider() -> str:
        return "entra-async"

    ep = resolve_endpoint(
        azure_endpoint=AZURE, api_version=PREVIEW, token_provider=provider, environ={}
    )
    assert header(await ep.headers(), "Authorization") == "Bearer entra-async"


@pytest.mark.parametrize(
    ("result", "match"),
    [
        (None, "returned NoneType"),
        (b"tok", "returned bytes"),
        ("", "empty"),
        ("tok-SECRET\r\nX-Evil: 1", "whitespace"),
    ],
)
async def test_bad_token_provider_results(result: object, match: str) -> None:
    ep = resolve_endpoint(azure_endpoint=AZURE, token_provider=lambda: result, environ={})
    with pytest.raises(ConfigurationError, match=match) as info:
        await ep.headers()
    assert "SECRET" not in str(info.value)


async def test_failing_token_provider() -> None:
    def provider() -> str:
        raise RuntimeError("identity service down")

    ep = resolve_endpoint(azure_endpoint=AZURE, token_provider=provider, environ={})
    with pytest.raises(ConfigurationError, match="token_provider raised RuntimeError") as info:
        await ep.headers()
    assert isinstance(info.value.__cause__, RuntimeError)


def test_key_and_token_provider_together() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        resolve_endpoint(api_key=KEY, token_provider=lambda: "t", environ={})


# --- explicit URL ---------------------------------------------------------------------


async def test_custom_url_is_used_as_is_without_credentials() -> None:
    url = "ws://127.0.0.1:9000/relay?session=abc%20def"
    # A relay never receives a key from the environment.
    ep = resolve_endpoint(url, environ={"OPENAI_API_KEY": KEY})
    assert (ep.url, ep.kind, ep.auth) == (url, "custom", "none")
    headers = await ep.headers()
    assert header(headers, "Authorization") is None
    assert header(headers, "User-Agent") == f"realtalk/{__version__}"


async def test_custom_url_with_key_is_bearer() -> None:
    ep = resolve_endpoint("ws://localhost:1234/v1/realtime", api_key=KEY, environ={})
    assert header(await ep.headers(), "Authorization") == f"Bearer {KEY}"


def test_model_appended_only_when_passed_and_missing() -> None:
    base = "ws://127.0.0.1:9000/v1/realtime"
    assert resolve_endpoint(base, environ={}).url == base
    assert resolve_endpoint(base, model="m", environ={}).url == f"{base}?model=m"
    assert resolve_endpoint(f"{base}?model=a", model="b", environ={}).url == f"{base}?model=a"
    assert resolve_endpoint(f"{base}?x=1", model="m", environ={}).url == f"{base}?x=1&model=m"


async def test_openai_url_takes_the_environment_key() -> None:
    url = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    ep = resolve_endpoint(url, environ={"OPENAI_API_KEY": KEY})
    assert (ep.url, ep.kind) == (url, "openai")
    assert header(await ep.headers(), "Authorization") == f"Bearer {KEY}"
    with pytest.raises(ConfigurationError, match="no credentials for OpenAI"):
        resolve_endpoint(url, environ={})


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (f"/openai/realtime?api-version={PREVIEW}&deployment=d", "azure"),
        ("/openai/v1/realtime?model=d", "azure_ga"),
    ],
)
async def test_azure_shaped_urls_use_the_api_key_header(path: str, kind: str) -> None:
    ep = resolve_endpoint(f"ws://127.0.0.1:9000{path}", api_key=AZ_KEY, environ={})
    assert ep.kind == kind
    headers = await ep.headers()
    assert header(headers, "api-key") == AZ_KEY
    assert header(headers, "Authorization") is None


def test_azure_preview_url_gets_deployment_not_model() -> None:
    url = f"ws://h/openai/realtime?api-version={PREVIEW}"
    ep = resolve_endpoint(url, model="dep", api_key=AZ_KEY, environ={})
    assert ep.url == f"{url}&deployment=dep"


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [
        ("https://api.openai.com/v1/realtime", "wss://api.openai.com/v1/realtime"),
        ("http://127.0.0.1:9000/v1/realtime", "ws://127.0.0.1:9000/v1/realtime"),
    ],
)
def test_http_urls_are_refused_with_a_suggestion(url: str, suggestion: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(suggestion)):
        resolve_endpoint(url, api_key=KEY, environ={})


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "127.0.0.1:9000/v1/realtime",
        "ws:///v1/realtime",
        f"wss://user:{KEY}@example.com/v1/realtime",
        f"wss://example.com/openai/realtime?api-key={KEY}",
        "ws://127.0.0.1:9000/v1/realtime#frag",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_endpoint(url, environ={})
    assert "SECRET" not in str(info.value)


def test_url_with_azure_arguments() -> None:
    with pytest.raises(ConfigurationError, match="cannot be combined with url"):
        resolve_endpoint("ws://h/v1/realtime", azure_endpoint=AZURE, environ={})


# --- query, headers, validation -------------------------------------------------------


def test_extra_query_is_encoded_and_appended() -> None:
    ep = resolve_endpoint(
        api_key=KEY, extra_query={"intent": "transcription", "x": "a b&c"}, environ={}
    )
    assert ep.url == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime&intent=transcription&x=a+b%26c"
    )


def test_extra_query_cannot_repeat_a_parameter() -> None:
    with pytest.raises(ConfigurationError, match="'model' given twice"):
        resolve_endpoint(api_key=KEY, extra_query={"model": "other"}, environ={})


async def test_extra_headers_come_last_and_override_case_insensitively() -> None:
    ep = resolve_endpoint(
        api_key=KEY,
        dialect="beta",
        extra_headers={"user-agent": "mine/1", "X-Trace": "t1", "openai-beta": "realtime=v2"},
        environ={},
    )
    assert await ep.headers() == [
        ("Authorization", f"Bearer {KEY}"),
        ("user-agent", "mine/1"),
        ("X-Trace", "t1"),
        ("openai-beta", "realtime=v2"),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil"},
        {"Sec-WebSocket-Key": "x"},
        {"Bad Name": "x"},
        {"X-Ok": "line\r\nX-Evil: 1"},
        {"X-Ok": "caf\u00e9"},
    ],
)
def test_bad_extra_headers(headers: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="extra header"):
        resolve_endpoint(api_key=KEY, extra_headers=headers, environ={})


@pytest.mark.parametrize(
    "key", ["sk-SECRET\n", "sk-SECRET 1", "sk-SECRET\r\nX-Evil: 1", "sk-SECRET\x00", "sk-SÉCRET"]
)
def test_api_key_with_whitespace_or_control_characters(key: str) -> None:
    with pytest.raises(ConfigurationError, match="api_key") as info:
        resolve_endpoint(api_key=key, environ={})
    assert "SECRET" not in str(info.value)
    assert "SÉCRET" not in str(info.value)


def test_environment_key_is_checked_too() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY contains") as info:
        resolve_endpoint(environ={"OPENAI_API_KEY": "sk-SECRET\n"})
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": ""},
        {"azure_endpoint": AZURE, "azure_deployment": ""},
        {"api_key": ""},
        {"dialect": "v2"},
    ],
)
def test_empty_or_invalid_arguments(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        resolve_endpoint(environ={"OPENAI_API_KEY": KEY}, **kwargs)  # type: ignore[arg-type]


# --- secrets never show ---------------------------------------------------------------


@pytest.mark.parametrize(
    "ep",
    [
        resolve_endpoint(api_key=KEY, environ={}),
        resolve_endpoint(azure_endpoint=AZURE, api_key=KEY, api_version=PREVIEW, environ={}),
        resolve_endpoint(environ={"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_API_KEY": KEY}),
        resolve_endpoint(azure_endpoint=AZURE, token_provider=lambda: KEY, environ={}),
        resolve_endpoint("ws://127.0.0.1:1/x", api_key=KEY, environ={}),
    ],
    ids=["openai", "azure", "azure-env", "token-provider", "custom"],
)
def test_repr_never_shows_the_credential(ep: Endpoint) -> None:
    assert "SECRET" not in repr(ep)
    assert "SECRET" not in str(ep)
    assert "SECRET" not in ep.url
    for f in dataclasses.fields(ep):
        value = getattr(ep, f.name)
        assert "SECRET" not in repr(value), f.name
        assert "SECRET" not in str(value), f.name
    assert f"kind={ep.kind!r}" in repr(ep)


def test_secret() -> None:
    secret = Secret(KEY)
    assert repr(secret) == str(secret) == "Secret('***')"
    assert f"{secret}" == "Secret('***')"
    assert secret.reveal() == KEY
    assert secret == Secret(KEY)
    assert secret != Secret("other")
    assert secret != KEY


def test_endpoint_is_frozen() -> None:
    ep = resolve_endpoint(api_key=KEY, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        ep.url = "ws://elsewhere"  # type: ignore[misc]
