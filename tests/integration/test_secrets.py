"""Secrets a request carries never show in an error's text, dict, history or log lines."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import httpx
import pytest

from _support import Flavour
from httpx_resilience import (
    APIError,
    BadRequestError,
    ErrorPolicy,
    NotFoundError,
)

from ._support import leaks
from .conftest import LiveServer, RawServer

CANARY = "canary-7f3a9c-SECRET"
SECRET_HEADERS = {
    "Authorization": f"Bearer {CANARY}",
    "Cookie": f"session={CANARY}",
    "X-Api-Key": CANARY,
}
SECRET_PARAMS = {"api_key": CANARY}
IDEMPOTENCY_KEY = "idem-7f3a9c-visible"


@dataclass(frozen=True)
class Case:
    """One way for a request carrying the canary to fail."""

    method: str
    url: str
    errors: ErrorPolicy = field(default_factory=ErrorPolicy)
    read_timeout: float = 5.0
    content: bytes | None = None


def _case(hx: Flavour, name: str, server: LiveServer, raw: RawServer, refused_url: str) -> Case:
    cases = {
        "404": lambda: Case("GET", server.url("/status/404", **{"x-request-id": "req_s"})),
        "429": lambda: Case("GET", server.url("/status/429", **{"retry-after": "1"})),
        "500": lambda: Case("GET", server.url("/status/500", fmt="text")),
        "echo-error-400": lambda: Case("POST", server.url("/echo-error"), content=b"{}"),
        "connect-refused": lambda: Case("GET", refused_url),
        "read-timeout": lambda: Case("GET", server.url("/slow", delay=2), read_timeout=0.2),
        "stream-error": lambda: Case("GET", raw.url("/stream-abort")),
        "request-too-large": lambda: Case(
            "POST",
            server.url("/echo"),
            errors=ErrorPolicy(max_request_bytes=10),
            content=b"x" * 100,
        ),
        "userinfo": lambda: Case(
            "GET", server.url("/echo-error").replace("://", f"://user:{CANARY}@")
        ),
    }
    return cases[name]()


CASE_NAMES = [
    "404",
    "429",
    "500",
    "echo-error-400",
    "connect-refused",
    "read-timeout",
    "stream-error",
    "request-too-large",
    "userinfo",
]


def _with_secrets(hx: Flavour, url: str) -> httpx.URL:
    # Merged into the URL's own query: httpx's params= would replace it (and the route's
    # retry-after with it).
    return hx.httpx.URL(url).copy_merge_params(SECRET_PARAMS)


def _fail_sync(hx: Flavour, case: Case) -> APIError:
    transport = hx.ResilientTransport(errors=case.errors)
    with (
        hx.httpx.Client(
            transport=transport,
            headers=SECRET_HEADERS,
            timeout=hx.httpx.Timeout(5, read=case.read_timeout),
        ) as client,
        pytest.raises(APIError) as excinfo,
        client.stream(case.method, _with_secrets(hx, case.url), content=case.content) as resp,
    ):
        resp.read()
    return excinfo.value


async def _fail_async(hx: Flavour, case: Case) -> APIError:
    transport = hx.AsyncResilientTransport(errors=case.errors)
    async with hx.httpx.AsyncClient(
        transport=transport,
        headers=SECRET_HEADERS,
        timeout=hx.httpx.Timeout(5, read=case.read_timeout),
    ) as client:
        with pytest.raises(APIError) as excinfo:
            async with client.stream(
                case.method, _with_secrets(hx, case.url), content=case.content
            ) as response:
                await response.aread()
    return excinfo.value


def _log_leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("httpx_resilience")
        and (CANARY in record.getMessage() or CANARY in str(record.args))
    ]


def _check_no_leak(err: APIError, caplog: pytest.LogCaptureFixture) -> None:
    assert leaks(CANARY, err) == []
    assert _log_leaks(caplog) == []
    assert err.url is not None
    assert "api_key=[REDACTED]" in err.url


@pytest.mark.parametrize("name", CASE_NAMES)
def test_no_secret_in_error_sync(
    hx: Flavour,
    name: str,
    server: LiveServer,
    raw: RawServer,
    refused_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sync: the canary is in no str, repr, to_dict, history or log line of the error."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    err = _fail_sync(hx, _case(hx, name, server, raw, refused_url))
    _check_no_leak(err, caplog)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", CASE_NAMES)
async def test_no_secret_in_error_asyncio(
    hx: Flavour,
    name: str,
    server: LiveServer,
    raw: RawServer,
    refused_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncio: the canary is in no str, repr, to_dict, history or log line of the error."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    err = await _fail_async(hx, _case(hx, name, server, raw, refused_url))
    _check_no_leak(err, caplog)


def test_echoed_secrets_scrubbed_from_body(hx: Flavour, server: LiveServer) -> None:
    """A server that echoes the credentials into its error body has them scrubbed."""
    err = _fail_sync(hx, Case("POST", server.url("/echo-error"), content=b"{}"))
    assert isinstance(err, BadRequestError)
    assert err.response is not None
    assert CANARY in err.response.text  # the server really did echo them
    assert err.body is not None
    assert CANARY not in err.body
    assert "[REDACTED]" in err.message
    assert err.details is not None
    assert CANARY not in repr(err.details)


def test_idempotency_key_not_treated_as_secret(hx: Flavour, server: LiveServer) -> None:
    """The Idempotency-Key value the caller set stays visible where the server echoed it."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(), headers=SECRET_HEADERS) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.post(
            server.url("/echo-error"),
            params=SECRET_PARAMS,
            headers={"Idempotency-Key": IDEMPOTENCY_KEY},
        )
    err = excinfo.value
    assert f"Idempotency-Key={IDEMPOTENCY_KEY}" in err.message
    assert err.body is not None
    assert IDEMPOTENCY_KEY in err.body
    assert leaks(CANARY, err) == []


@pytest.mark.parametrize(
    "param", ["access_token", "client_secret", "password", "signature", "apikey"]
)
def test_secret_named_query_params_redacted(hx: Flavour, server: LiveServer, param: str) -> None:
    """Query parameters named like key/token/secret/password/signature are redacted."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(server.url("/status/404"), params={param: CANARY, "page": "2"})
    err = excinfo.value
    assert leaks(CANARY, err) == []
    assert err.url is not None
    assert f"{param}=[REDACTED]" in err.url
    assert "page=2" in err.url


def test_url_without_secrets_reported_as_sent(hx: Flavour, server: LiveServer) -> None:
    """An error's url is the request's URL unchanged when no part of it is secret."""
    url = server.url("/status/404") + "?q=a+b&tags=x,y&path=/v1/items"
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        request = client.build_request("GET", url)
        with pytest.raises(NotFoundError) as excinfo:
            client.send(request)
    assert excinfo.value.url == str(request.url)


def test_literal_query_secret_scrubbed_from_echo(hx: Flavour, server: LiveServer) -> None:
    """A query secret written into the URL as it is ('+', '/') is scrubbed where echoed."""
    token = "c2VjcmV0+canary/7f3a9c=="
    url = server.url("/echo-error") + f"?api_key={token}"
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.get(url)
    err = excinfo.value
    assert err.response is not None
    assert token in err.response.text  # the server echoed the raw query
    assert leaks(token, err) == []


def _shown_prefix(text: str | None) -> str:
    """The longest start of the canary, 8 characters or more, that `text` shows."""
    for size in range(len(CANARY), 7, -1):
        if text is not None and CANARY[:size] in text:
            return CANARY[:size]
    return ""


def _passed_through(client: httpx.Client, url: str) -> httpx.Response:
    override = {"resilience": {"errors": ErrorPolicy(raise_on_status=False)}}
    return client.get(url, extensions=override)


@pytest.mark.parametrize(
    ("fmt", "position"),
    [
        # OpenAI-style: the message is cut at 1000 characters.
        ("openai", 985),
        # JSON:API with two errors: the first one's detail is cut short of 1000 so that
        # " (+1 more)" still fits after it.
        ("jsonapi", 980),
    ],
)
def test_secret_cut_by_message_limit_shows_no_part(
    hx: Flavour, server: LiveServer, fmt: str, position: int
) -> None:
    """A secret that the message length limit cuts in two leaves no part of itself shown."""
    with hx.httpx.Client(transport=hx.ResilientTransport(), headers=SECRET_HEADERS) as client:
        probe = _passed_through(client, server.url("/echo-error", fmt=fmt)).json()
        message = probe["error"]["message"] if fmt == "openai" else probe["errors"][0]["detail"]
        # Put the canary 15 or 20 characters before the message limit.
        pad = position - message.index(CANARY)
        with pytest.raises(BadRequestError) as excinfo:
            client.get(server.url("/echo-error", fmt=fmt, pad=pad))
    err = excinfo.value
    assert len(err.message) <= 1000
    assert _shown_prefix(err.message) == ""
    assert _shown_prefix(str(err)) == ""


def test_secret_cut_by_body_cap_shows_no_part(hx: Flavour, server: LiveServer) -> None:
    """A secret that max_body_bytes cuts in two leaves no part of itself in body or message."""
    with hx.httpx.Client(transport=hx.ResilientTransport(), headers=SECRET_HEADERS) as client:
        probe = _passed_through(client, server.url("/echo-error")).text
    cap = probe.index(CANARY) + 12  # the cap falls inside the first echoed canary
    transport = hx.ResilientTransport(errors=ErrorPolicy(max_body_bytes=cap))
    with (
        hx.httpx.Client(transport=transport, headers=SECRET_HEADERS) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.get(server.url("/echo-error"))
    err = excinfo.value
    assert err.body is not None
    assert len(err.body) <= cap
    assert _shown_prefix(err.body) == ""
    assert _shown_prefix(json.dumps(err.to_dict())) == ""


def test_other_secret_headers_scrubbed_from_echo(hx: Flavour, server: LiveServer) -> None:
    """Proxy-Authorization and headers named like tokens are scrubbed where the server echoes them."""
    headers = {"Proxy-Authorization": f"Basic {CANARY}", "X-Auth-Token": CANARY}
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(), headers=headers) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.get(server.url("/echo-error"))
    err = excinfo.value
    assert err.response is not None
    assert CANARY in err.response.text
    assert leaks(CANARY, err) == []
