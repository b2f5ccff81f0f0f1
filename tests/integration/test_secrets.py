"""Secrets a request carries never show in an error's text, dict, history or log lines."""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from _support import Flavour
from httpx_resilience import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ErrorPolicy,
    NotFoundError,
    RequestTooLargeError,
    ServiceUnavailableError,
    StreamError,
    from_response,
)

from ._support import Runner, leaks
from .conftest import LiveServer, RawServer, new_id

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


async def _fail(run: Runner, case: Case) -> APIError:
    """The error of `case`'s request, carrying every secret, streamed and read in `run`'s mode."""
    hx = run.hx
    transport = run.transport(errors=case.errors)
    timeout = hx.httpx.Timeout(5, read=case.read_timeout)
    async with run.client(transport, headers=SECRET_HEADERS, timeout=timeout) as client:
        with pytest.raises(APIError) as excinfo:
            async with client.stream(
                case.method, _with_secrets(hx, case.url), content=case.content
            ) as response:
                await client.read(response)
    return excinfo.value


def _fail_sync(hx: Flavour, case: Case) -> APIError:
    """`_fail` through the sync transport."""
    sync = Runner("sync", hx)
    return sync(_fail, sync, case)


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
def test_no_secret_in_error(
    run: Runner,
    name: str,
    server: LiveServer,
    raw: RawServer,
    refused_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The canary is in no str, repr, to_dict, history or log line of the error."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    err = run(_fail, run, _case(run.hx, name, server, raw, refused_url))
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


def _keyed_echo(hx: Flavour, server: LiveServer) -> BadRequestError:
    """The error of a POST with secrets and a caller-set Idempotency-Key, echoed by a 400."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(), headers=SECRET_HEADERS) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.post(
            server.url("/echo-error"),
            params=SECRET_PARAMS,
            headers={"Idempotency-Key": IDEMPOTENCY_KEY},
        )
    return excinfo.value


def test_idempotency_key_not_treated_as_secret(hx: Flavour, server: LiveServer) -> None:
    """The Idempotency-Key value the caller set stays visible where the server echoed it."""
    err = _keyed_echo(hx, server)
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
    # The cap, and the marker that stands for the cut secret where "Bearer " is kept.
    assert len(err.message) <= 1000 + len("[REDACTED]")
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


# --- Signed-URL and credential names, extendable (issue 12, item 8) --------------------------

# Query parameters of signed URLs and OAuth/Firebase flows, and session headers: each carries
# the canary once; none may show anywhere an error or its log lines go.
NEW_SECRET_PARAMS = [
    "sig",  # Azure SAS
    "X-Amz-Credential",
    "X-Goog-Credential",
    "code",  # OAuth authorization code
    "client_assertion",
    "auth",  # Firebase
]
NEW_SECRET_HEADERS = ["X-Session-Id", "Session", "X-Amz-Credential"]


def _public_faces(err: APIError) -> dict[str, str]:
    """Every text an error shows the world, its pickle included."""
    return {
        "str": str(err),
        "repr": repr(err),
        "to_dict": json.dumps(err.to_dict()),
        "url": str(err.url),
        "history": repr(err.history),
        "pickle": pickle.dumps(err).decode("latin-1"),
    }


def _shown(secret: str, err: APIError, caplog: pytest.LogCaptureFixture) -> list[str]:
    """The faces of `err`, and the log lines, in which `secret` shows."""
    faces = _public_faces(err)
    faces["log"] = "\n".join(
        record.getMessage() for record in caplog.records if record.name == "httpx_resilience"
    )
    return [name for name, text in faces.items() if secret in text]


def _retried_503(client: httpx.Client, url: str, **kwargs: Any) -> APIError:
    """The error of a GET that met 503 on every attempt (so the INFO retry log ran)."""
    with pytest.raises(ServiceUnavailableError) as excinfo:
        client.get(url, **kwargs)
    return excinfo.value


@pytest.mark.parametrize("param", NEW_SECRET_PARAMS)
def test_signed_url_and_oauth_params_redacted(
    hx: Flavour, server: LiveServer, param: str, caplog: pytest.LogCaptureFixture
) -> None:
    """sig, X-Amz/Goog-Credential, code, client_assertion and auth values never show."""
    caplog.set_level(logging.INFO, logger="httpx_resilience")
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        err = _retried_503(client, server.url("/status/503"), params={param: CANARY, "page": "2"})
    assert err.attempts == 3
    assert _shown(CANARY, err, caplog) == []
    assert f"{param}=[REDACTED]" in str(err.url)
    assert "page=2" in str(err.url)
    assert any("[REDACTED]" in r.getMessage() for r in caplog.records)  # the retry log ran


@pytest.mark.parametrize("header", NEW_SECRET_HEADERS)
def test_session_and_credential_headers_scrubbed_from_echo(
    hx: Flavour, server: LiveServer, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A session or credential header's value, echoed by the server, shows nowhere."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(), headers={header: CANARY}) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.get(server.url("/echo-error"))
    err = excinfo.value
    assert err.response is not None
    assert CANARY in err.response.text  # the server echoed every header
    assert _shown(CANARY, err, caplog) == []


def test_redact_names_extend_the_defaults(
    hx: Flavour, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """ErrorPolicy(redact_names=...) hides those names too, and the defaults still apply."""
    caplog.set_level(logging.INFO, logger="httpx_resilience")
    errors = ErrorPolicy(redact_names={"X-Tenant-Pin", "pin"})
    headers = {"X-Tenant-Pin": CANARY, **SECRET_HEADERS}
    with hx.httpx.Client(transport=hx.ResilientTransport(errors=errors), headers=headers) as c:
        err = _retried_503(c, server.url("/status/503"), params={"pin": CANARY, "sig": CANARY})
    assert _shown(CANARY, err, caplog) == []
    assert "pin=[REDACTED]" in str(err.url)
    assert "sig=[REDACTED]" in str(err.url)
    clone = pickle.loads(pickle.dumps(err))
    assert clone.request is not None
    assert clone.request.headers["x-tenant-pin"] == "[REDACTED]"


def test_redact_names_scrub_echoed_values(hx: Flavour, server: LiveServer) -> None:
    """A value sent under an extra redact name is scrubbed where the server echoes it."""
    errors = ErrorPolicy(redact_names=["X-Tenant-Pin"])
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(errors=errors), headers={"X-Tenant-Pin": CANARY}
        ) as client,
        pytest.raises(BadRequestError) as excinfo,
    ):
        client.get(server.url("/echo-error"))
    err = excinfo.value
    assert err.response is not None
    assert CANARY in err.response.text
    assert leaks(CANARY, err) == []


# --- Auth scheme names and ordinary words survive (item 9) -----------------------------------


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (f"Bearer {CANARY}", "Authorization header must start with Bearer"),
        (f"Basic {CANARY}", "this endpoint accepts only Basic"),
        (f"Bearer {CANARY}", "expected Bearer"),
    ],
)
@pytest.mark.parametrize("fmt", ["text", "openai"])
def test_auth_scheme_in_server_message_is_kept(
    hx: Flavour, server: LiveServer, authorization: str, message: str, fmt: str
) -> None:
    """A 401 that names the auth scheme keeps the word; only the credential is a secret."""
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(), headers={"Authorization": authorization}
        ) as client,
        pytest.raises(AuthenticationError) as excinfo,
    ):
        client.get(server.url("/status/401", fmt=fmt, message=message))
    err = excinfo.value
    assert err.message == message
    assert message in str(err)
    assert err.body is not None
    assert message in err.body


def test_cookie_name_in_server_message_is_kept(hx: Flavour, server: LiveServer) -> None:
    """A message ending with a cookie's name keeps it: only the cookie's value is secret."""
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(), headers={"Cookie": f"session={CANARY}"}
        ) as client,
        pytest.raises(AuthenticationError) as excinfo,
    ):
        client.get(server.url("/status/401", fmt="text", message="expired session"))
    assert excinfo.value.message == "expired session"


def test_echoed_credential_keeps_its_scheme(hx: Flavour, server: LiveServer) -> None:
    """An echoed `Bearer <token>` reads `Bearer [REDACTED]`: the token goes, the scheme stays."""
    err = _fail_sync(hx, Case("POST", server.url("/echo-error"), content=b"{}"))
    assert "Authorization=Bearer [REDACTED]" in err.message
    assert leaks(CANARY, err) == []


# --- Pickles carry a redacted request and response (item 10) ---------------------------------


class TenantNotFound(NotFoundError):
    """A user's own 404 class, given through ErrorPolicy.status_classes."""


def _check_pickle(err: APIError) -> APIError:
    """The pickle of `err` shows no canary and gives back the same error, redacted."""
    data = pickle.dumps(err)
    assert CANARY.encode() not in data
    clone = pickle.loads(data)
    assert type(clone) is type(err)
    assert clone.to_dict() == err.to_dict()
    assert str(clone) == str(err)
    if err.request is not None:
        assert clone.request is not None
        assert clone.request.method == err.request.method
        assert clone.request.url.host == err.request.url.host
        assert clone.request.url.path == err.request.url.path
        assert clone.request.url.params == type(clone.request.url)(str(err.url)).params
        # "Basic" where the URL's userinfo made httpx send Basic auth.
        assert clone.request.headers["authorization"] in ("Bearer [REDACTED]", "Basic [REDACTED]")
        assert clone.request.headers["x-api-key"] == "[REDACTED]"
        assert clone.request.headers["cookie"] == "session=[REDACTED]"
    if err.response is not None:
        assert clone.response is not None
        assert clone.response.status_code == err.response.status_code
    return clone


@pytest.mark.parametrize("name", CASE_NAMES)
def test_pickle_holds_no_secret(
    run: Runner, name: str, server: LiveServer, raw: RawServer, refused_url: str
) -> None:
    """Every error of a real request pickles without the canary, and comes back whole."""
    _check_pickle(run(_fail, run, _case(run.hx, name, server, raw, refused_url)))


def test_pickle_of_user_status_class(hx: Flavour, server: LiveServer) -> None:
    """A user's status_classes subclass pickles redacted and keeps its class."""
    errors = ErrorPolicy(status_classes={404: TenantNotFound})
    case = Case("GET", server.url("/status/404", **{"x-request-id": "req_u"}), errors=errors)
    clone = _check_pickle(_fail_sync(hx, case))
    assert isinstance(clone, TenantNotFound)
    assert clone.request_id == "req_u"


def test_pickle_keeps_idempotency_key_visible(hx: Flavour, server: LiveServer) -> None:
    """The Idempotency-Key header survives the pickle as sent; the credentials do not."""
    clone = _check_pickle(_keyed_echo(hx, server))
    assert clone.request is not None
    assert clone.request.headers["idempotency-key"] == IDEMPOTENCY_KEY
    assert clone.idempotency_key == IDEMPOTENCY_KEY
    assert clone.response is not None
    assert IDEMPOTENCY_KEY in clone.response.text  # the echo, scrubbed of the canary only
    assert "Bearer [REDACTED]" in clone.response.text


def test_pickle_redacts_response_cookies(hx: Flavour, server: LiveServer) -> None:
    """A Set-Cookie the server sent with the error is redacted in the pickle."""
    url = server.url("/status/404", **{"set-cookie": f"sid={CANARY}; Path=/; HttpOnly"})
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(url)
    err = excinfo.value
    assert err.response is not None
    assert CANARY in err.response.headers["set-cookie"]  # in memory, as the server sent it
    data = pickle.dumps(err)
    assert CANARY.encode() not in data
    clone = pickle.loads(data)
    assert clone.response.headers["set-cookie"] == "sid=[REDACTED]; Path=/; HttpOnly"


# --- Events show the redacted URL (item 11) --------------------------------------------------


def _event_reprs(hx: Flavour, server: LiveServer) -> tuple[list[str], list[str], APIError]:
    """The reprs of every on_retry and on_event event of a GET retried on 503."""
    retries: list[str] = []
    events: list[str] = []
    transport = hx.ResilientTransport(
        on_retry=lambda e: retries.append(repr(e)), on_event=lambda e: events.append(repr(e))
    )
    url = server.url("/status/503").replace("://", f"://user:{CANARY}@")
    with hx.httpx.Client(transport=transport, headers=SECRET_HEADERS) as client:
        err = _retried_503(client, url, params={"api_key": CANARY, "sig": CANARY})
    return retries, events, err


def test_retry_event_repr_shows_redacted_url(hx: Flavour, server: LiveServer) -> None:
    """repr(RetryEvent) shows the redacted URL, and no password or secret query value."""
    retries, _, err = _event_reprs(hx, server)
    assert len(retries) == 2
    for text in retries:
        assert CANARY not in text
        assert str(err.url) in text
        assert "api_key=[REDACTED]" in text


def test_resilience_event_repr_shows_redacted_url(hx: Flavour, server: LiveServer) -> None:
    """repr(ResilienceEvent) of every kind shows the redacted URL and no secret."""
    _, events, err = _event_reprs(hx, server)
    assert {"kind='attempt'", "kind='retry'", "kind='give_up'"} <= {
        text.split(", ")[0].split("(")[1] for text in events
    }
    for text in events:
        assert CANARY not in text
        assert str(err.url) in text


@pytest.mark.parametrize("streamed", [False, True])
def test_redact_names_reach_request_too_large(
    hx: Flavour, server: LiveServer, streamed: bool
) -> None:
    """A body over max_request_bytes (known size or streamed) raises an error redacted by them."""
    errors = ErrorPolicy(max_request_bytes=10, redact_names={"pin", "x-tenant-pin"})
    content: Any = (lambda: iter([b"x" * 50, b"x" * 50]))() if streamed else b"x" * 100
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(errors=errors), headers={"X-Tenant-Pin": CANARY}
        ) as client,
        pytest.raises(RequestTooLargeError) as excinfo,
    ):
        client.post(server.url("/echo"), params={"pin": CANARY}, content=content)
    err = excinfo.value
    assert "pin=[REDACTED]" in str(err.url)
    assert CANARY.encode() not in pickle.dumps(err)


def test_redact_names_reach_from_response(hx: Flavour, server: LiveServer) -> None:
    """from_response(response, errors=ErrorPolicy(redact_names=...)) redacts by them."""
    errors = ErrorPolicy(raise_on_status=False)
    with hx.httpx.Client(
        transport=hx.ResilientTransport(errors=errors), headers={"X-Tenant-Pin": CANARY}
    ) as client:
        response = client.get(server.url("/echo-error"), params={"pin": CANARY})
    err = from_response(response, errors=ErrorPolicy(redact_names=["pin", "X-Tenant-Pin"]))
    assert isinstance(err, BadRequestError)
    assert CANARY in response.text
    assert leaks(CANARY, err) == []
    assert "pin=[REDACTED]" in str(err.url)
    assert CANARY.encode() not in pickle.dumps(err)


def test_redact_names_reach_a_stream_error(hx: Flavour, raw: RawServer) -> None:
    """A body that breaks while the caller reads it raises a `StreamError` whose URL hides the
    transport's extra redact names too, not only the defaults."""
    errors = ErrorPolicy(redact_names={"pin"})
    url = raw.url("/stream-abort") + f"?pin={CANARY}"
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(errors=errors)) as client,
        client.stream("GET", url) as response,
        pytest.raises(StreamError) as excinfo,
    ):
        response.read()
    err = excinfo.value
    assert "pin=[REDACTED]" in str(err.url)
    assert leaks(CANARY, err) == []
    assert CANARY.encode() not in pickle.dumps(err)


# --- Escaped values, the URL's user part, body fields, events' extra names -------------------


def test_header_value_with_a_newline_never_shows(
    run: Runner, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A key with a trailing newline, refused by h11 with its bytes' repr, shows nowhere."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    events: list[str] = []

    async def scenario() -> APIError:
        transport = run.transport(on_event=lambda e: events.append(repr(e)))
        async with run.client(transport) as client:
            with pytest.raises(APIError) as excinfo:
                # The X-Api-Key kept the newline of the file it was read from.
                await client.get(server.url("/echo"), headers={"X-Api-Key": CANARY + "\n"})
        return excinfo.value

    err = run(scenario)
    assert "Illegal header value" in str(err)  # h11's message, which quoted the value
    assert "[REDACTED]" in str(err)
    assert _shown(CANARY, err, caplog) == []
    assert events
    assert [text for text in events if CANARY in text] == []


def test_url_user_part_token_never_shows(
    hx: Flavour, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A token sent as the URL's user part shows in no face, log line or event of the error."""
    caplog.set_level(logging.INFO, logger="httpx_resilience")
    events: list[str] = []
    transport = hx.ResilientTransport(
        on_retry=lambda e: events.append(repr(e)), on_event=lambda e: events.append(repr(e))
    )
    url = server.url("/status/503").replace("://", f"://{CANARY}@")
    with hx.httpx.Client(transport=transport) as client:
        err = _retried_503(client, url)
    assert err.attempts == 3
    assert str(err.url).startswith("http://[REDACTED]@127.0.0.1:")
    assert _shown(CANARY, err, caplog) == []
    assert any("[REDACTED]@" in r.getMessage() for r in caplog.records)  # the retry log ran
    assert len(events) > 3
    assert [text for text in events if CANARY in text] == []


OAUTH_FIELDS = ["client_secret", "client_assertion", "code", "refresh_token", "password"]


def _token_request(kind: str) -> dict[str, Any]:
    """An OAuth token request's body, each secret field carrying its own copy of the canary."""
    fields = {"grant_type": "client_credentials", "client_id": "app-7f3a9c"}
    fields.update({name: f"{name}.{CANARY}" for name in OAUTH_FIELDS})
    return {"data": fields} if kind == "form" else {"json": {"request": fields}}


def _check_body_echo(err: APIError) -> None:
    assert isinstance(err, BadRequestError)
    assert err.response is not None
    assert CANARY in err.response.text  # the server echoed the body
    assert leaks(CANARY, err) == []
    assert err.body is not None
    assert CANARY not in err.body
    assert "client_credentials" in err.body  # ordinary fields stay
    assert CANARY.encode() not in pickle.dumps(err)


@pytest.mark.parametrize("kind", ["form", "json"])
def test_body_secret_fields_scrubbed_from_echo(run: Runner, server: LiveServer, kind: str) -> None:
    """The secret fields of an OAuth token request, echoed in its 400, show nowhere."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(BadRequestError) as excinfo:
                await client.post(server.url("/echo-error"), **_token_request(kind))
        _check_body_echo(excinfo.value)

    run(scenario)


def test_event_reprs_redact_the_transports_extra_names(hx: Flavour, server: LiveServer) -> None:
    """Every event, also the attempt that got a response, hides the transport's extra names."""
    events: list[Any] = []
    errors = ErrorPolicy(redact_names=frozenset({"pin"}))
    transport = hx.ResilientTransport(errors=errors, on_event=events.append)
    with hx.httpx.Client(transport=transport) as client:
        response = client.get(server.url(f"/flaky/{new_id()}", fail=1, pin=CANARY))
    assert response.status_code == 200
    answered = [e for e in events if e.kind == "attempt" and e.error is None]
    assert answered  # the attempt that got the 200, with no error to take the URL from
    assert {"attempt", "retry"} <= {e.kind for e in events}
    for event in events:
        text = repr(event)
        assert CANARY not in text
        assert "pin=[REDACTED]" in text
