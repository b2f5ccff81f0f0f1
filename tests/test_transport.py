"""The transports: every failure typed, every success untouched — sync, asyncio and trio."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import ssl
import traceback
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpcore
import httpx
import pytest
import trio

import httpx_resilience as hr
from _support import Caller, Chunks, Inner
from httpx_resilience import (
    AsyncResilientTransport,
    ErrorPolicy,
    RequestIdPolicy,
    ResilientTransport,
    RetryPolicy,
)

URL = "https://api.example.com/v1/thing"
# For tests of what one attempt makes of a failure; retries are tested in test_retries.py.
ONE_ATTEMPT = {"retry": RetryPolicy(max_attempts=1)}


def respond(status: int, **kwargs: Any) -> Inner:
    return Inner(lambda request: httpx.Response(status, **kwargs))


def raising(exc: Exception) -> Inner:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return Inner(handler)


# --- exceptions from the inner transport -------------------------------------------------

EXCEPTIONS = [
    (httpx.ConnectError("refused"), hr.NetworkError, "connect"),
    (httpx.ConnectTimeout("slow"), hr.RequestTimeoutError, "connect"),
    (httpx.ReadTimeout("slow"), hr.RequestTimeoutError, "read"),
    (httpx.WriteTimeout("slow"), hr.RequestTimeoutError, "write"),
    (httpx.PoolTimeout("busy"), hr.RequestTimeoutError, "pool"),
    (httpx.ReadError("reset"), hr.NetworkError, "read"),
    (httpx.WriteError("broken"), hr.NetworkError, "write"),
    (httpx.CloseError("close"), hr.NetworkError, "read"),
    (httpx.ProxyError("proxy"), hr.NetworkError, "connect"),
    (httpx.RemoteProtocolError("garbage"), hr.ProtocolError, None),
    (httpx.LocalProtocolError("bad header"), hr.ProtocolError, None),
    (httpx.UnsupportedProtocol("ftp"), hr.TransportError, None),
    (httpcore.ConnectError("refused"), hr.NetworkError, "connect"),
    (httpcore.ReadTimeout("slow"), hr.RequestTimeoutError, "read"),
    (httpcore.RemoteProtocolError("garbage"), hr.ProtocolError, None),
    (ssl.SSLError("handshake"), hr.NetworkError, "read"),
    (ssl.SSLCertVerificationError("bad cert"), hr.NetworkError, "connect"),
    (anyio.EndOfStream(), hr.NetworkError, "read"),
    (anyio.BrokenResourceError(), hr.NetworkError, "read"),
    (ConnectionRefusedError(111, "refused"), hr.NetworkError, "connect"),
    (ConnectionResetError(104, "reset"), hr.NetworkError, "read"),
    (socket.gaierror(-2, "Name or service not known"), hr.NetworkError, "connect"),
    (TimeoutError("timed out"), hr.RequestTimeoutError, "read"),
    (OSError("odd"), hr.NetworkError, "read"),
    (RuntimeError("custom transport bug"), hr.TransportError, None),
]


@pytest.mark.parametrize(("exc", "cls", "phase"), EXCEPTIONS, ids=lambda v: type(v).__name__)
def test_inner_exception_becomes_typed(
    call: Caller, exc: Exception, cls: type, phase: str | None
) -> None:
    """Every exception an inner transport raises leaves as its typed error, original as cause."""
    with pytest.raises(hr.APIError) as info:
        call(raising(exc), policies=ONE_ATTEMPT)
    err = info.value
    assert type(err) is cls
    assert err.__cause__ is exc
    assert err.phase == phase
    assert err.status_code is None
    assert err.method == "GET"
    assert err.url == URL
    assert err.attempts == 1
    assert [(r.status_code, r.error) for r in err.history] == [(None, cls.__name__)]


def test_base_exceptions_are_not_swallowed() -> None:
    """KeyboardInterrupt and other BaseExceptions pass through untouched."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    with (
        httpx.Client(transport=ResilientTransport(Inner(handler))) as client,
        pytest.raises(KeyboardInterrupt),
    ):
        client.get(URL)


def test_stacked_transports_do_not_wrap_twice(call: Caller) -> None:
    """A typed error from a resilient transport below passes through unchanged."""
    lower = ResilientTransport(raising(httpx.ConnectError("refused")))
    lower_async = AsyncResilientTransport(raising(httpx.ConnectError("refused")))

    class Both(httpx.BaseTransport, httpx.AsyncBaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return lower.handle_request(request)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await lower_async.handle_async_request(request)

    with pytest.raises(hr.NetworkError) as info:
        call(Both())
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# --- statuses -----------------------------------------------------------------------------

STATUSES = [
    (400, hr.BadRequestError),
    (401, hr.AuthenticationError),
    (402, hr.PaymentRequiredError),
    (403, hr.PermissionDeniedError),
    (404, hr.NotFoundError),
    (405, hr.ClientError),
    (408, hr.ClientError),
    (409, hr.ConflictError),
    (413, hr.PayloadTooLargeError),
    (422, hr.UnprocessableEntityError),
    (429, hr.RateLimitError),
    (500, hr.InternalServerError),
    (501, hr.ServerError),
    (502, hr.BadGatewayError),
    (503, hr.ServiceUnavailableError),
    (504, hr.GatewayTimeoutError),
]


@pytest.mark.parametrize(("status", "cls"), STATUSES)
def test_status_becomes_its_class(call: Caller, status: int, cls: type) -> None:
    """Each status raises its class with the body's message, code and the request id."""
    inner = respond(
        status,
        json={"error": {"message": f"failed {status}", "code": f"c{status}"}},
        headers={"x-request-id": "req_42"},
    )
    with pytest.raises(hr.StatusError) as info:
        call(inner)
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.message, err.code, err.request_id) == (
        status,
        f"failed {status}",
        f"c{status}",
        "req_42",
    )
    assert err.response is not None
    assert err.response.json()["error"]["code"] == f"c{status}"
    assert err.request is not None
    assert err.request.url == URL
    assert err.retryable is (status in (408, 429, 500, 502, 503, 504))


def test_rate_limit_headers_on_the_error(call: Caller) -> None:
    """A 429 carries retry_after and the rate-limit window from its headers."""
    inner = respond(
        429,
        json={"message": "slow down"},
        headers={
            "retry-after": "7",
            "x-ratelimit-limit": "100",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "30",
        },
    )
    with pytest.raises(hr.RateLimitError) as info:
        call(inner)
    err = info.value
    assert (err.retry_after, err.limit, err.remaining, err.reset) == (7.0, 100, 0, 30.0)


def test_quota_429_is_not_retryable(call: Caller) -> None:
    """A 429 whose body says the quota is exhausted is a QuotaExceededError, not retryable."""
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "code": None,
        }
    }
    with pytest.raises(hr.QuotaExceededError) as info:
        call(respond(429, json=body))
    assert info.value.code == "insufficient_quota"
    assert info.value.retryable is False


def test_should_retry_header_overrides_retryable(call: Caller) -> None:
    """The server's x-should-retry verdict wins over the status rule."""
    with pytest.raises(hr.NotFoundError) as info:
        call(respond(404, headers={"x-should-retry": "true"}))
    assert info.value.retryable is True


def test_validation_errors_listed(call: Caller) -> None:
    """A FastAPI 422 gives ValidationError.errors with loc/msg/type."""
    detail = [{"loc": ["body", "name"], "msg": "field required", "type": "missing"}]
    with pytest.raises(hr.ValidationError) as info:
        call(respond(422, json={"detail": detail}))
    assert info.value.errors == detail


def test_gzip_error_body_is_decoded(call: Caller) -> None:
    """A gzip-encoded error body is decoded before parsing."""
    body = gzip.compress(json.dumps({"detail": "zipped"}).encode())
    inner = respond(
        400, content=body, headers={"content-encoding": "gzip", "content-type": "application/json"}
    )
    with pytest.raises(hr.BadRequestError) as info:
        call(inner)
    assert info.value.message == "zipped"
    assert info.value.response is not None
    assert info.value.response.json() == {"detail": "zipped"}


def test_error_body_read_only_up_to_the_cap(call: Caller) -> None:
    """A huge error body is read to about max_body_bytes, then discarded with the stream."""
    stream = Chunks([b"x" * 1024] * 10_000)
    inner = Inner(lambda request: httpx.Response(500, stream=stream))
    with pytest.raises(hr.InternalServerError) as info:
        call(inner, policies={"errors": ErrorPolicy(max_body_bytes=4096), **ONE_ATTEMPT})
    assert info.value.body == "x" * 4096
    assert stream.served <= 5
    assert stream.closed


def test_error_body_failing_midway_still_raises_the_status(call: Caller) -> None:
    """An error body that breaks off still gives the status error, with what came."""
    stream = Chunks([b"partial ", b"rest"], fail_after=1, error=httpx.ReadError("reset"))
    inner = Inner(lambda request: httpx.Response(503, stream=stream))
    with pytest.raises(hr.ServiceUnavailableError) as info:
        call(inner, policies=ONE_ATTEMPT)
    assert info.value.body == "partial "
    assert stream.closed


def test_zero_body_cap_reads_nothing(call: Caller) -> None:
    """max_body_bytes=0 raises from the status alone, without touching the body."""
    stream = Chunks([b"secret stuff"])
    inner = Inner(lambda request: httpx.Response(404, stream=stream))
    with pytest.raises(hr.NotFoundError) as info:
        call(inner, policies={"errors": ErrorPolicy(max_body_bytes=0)})
    assert info.value.body is None
    assert stream.served == 0
    assert stream.closed


# --- ErrorPolicy hooks ------------------------------------------------------------------


def test_raise_on_status_false_passes_the_response(call: Caller) -> None:
    """With raise_on_status=False a 404 reaches the caller whole, with its request id."""
    inner = respond(404, json={"detail": "gone"}, headers={"request-id": "r-7"})
    response = call(inner, policies={"errors": ErrorPolicy(raise_on_status=False)})
    assert response.status_code == 404
    assert response.json() == {"detail": "gone"}
    assert response.extensions["request_id"] == "r-7"


class TeapotError(hr.ClientError):
    """A user's own class."""


def test_status_classes_map_to_user_classes(call: Caller) -> None:
    """status_classes raises the user's own StatusError subclass."""
    with pytest.raises(TeapotError) as info:
        call(respond(418), policies={"errors": ErrorPolicy(status_classes={418: TeapotError})})
    assert info.value.status_code == 418


def test_parse_body_hook_replaces_the_parser(call: Caller) -> None:
    """parse_body gets the read response and its fields land on the error."""

    def parse(response: httpx.Response) -> dict[str, Any]:
        data = response.json()
        return {"message": data["why"], "code": data["kind"], "details": {"n": 1}}

    with pytest.raises(hr.ConflictError) as info:
        call(
            respond(409, json={"why": "dup", "kind": "duplicate"}),
            policies={"errors": ErrorPolicy(parse_body=parse)},
        )
    assert (info.value.message, info.value.code, info.value.details) == (
        "dup",
        "duplicate",
        {"n": 1},
    )


def test_failing_parse_body_falls_back(call: Caller) -> None:
    """A parse_body hook that raises leaves the default parser in charge."""

    def parse(response: httpx.Response) -> dict[str, Any]:
        raise KeyError("oops")

    with pytest.raises(hr.NotFoundError) as info:
        call(
            respond(404, json={"detail": "nope"}),
            policies={"errors": ErrorPolicy(parse_body=parse)},
        )
    assert info.value.message == "nope"


def test_parse_body_returning_none_hands_over_to_the_parser(
    call: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    """A parse_body hook returning None (not its format) leaves the body to the built-in
    parser, without the warning a failing hook logs."""

    def parse(response: httpx.Response) -> dict[str, Any] | None:
        return None

    with pytest.raises(hr.BadGatewayError) as info:
        call(
            respond(502, json={"error": {"message": "upstream down", "code": "upstream"}}),
            policies={"errors": ErrorPolicy(parse_body=parse)},
        )
    assert (info.value.message, info.value.code) == ("upstream down", "upstream")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_parse_body_errors_that_are_not_mappings_are_kept_as_messages(call: Caller) -> None:
    """A parse_body hook whose `errors` are plain strings gets the typed error, each string an
    error item's message, not a raw exception."""

    def parse(response: httpx.Response) -> dict[str, Any]:
        return {"message": "invalid", "errors": ["name is required", "age must be > 0"]}

    with pytest.raises(hr.UnprocessableEntityError) as info:
        call(respond(422, json={}), policies={"errors": ErrorPolicy(parse_body=parse)})
    assert [e["msg"] for e in info.value.errors or []] == ["name is required", "age must be > 0"]


def test_failing_parse_body_logs_no_secret(call: Caller, caplog: pytest.LogCaptureFixture) -> None:
    """A parse_body hook whose exception quotes the body (an echoed API key) is logged by its
    type only: the key reaches no log line, traceback included."""
    secret = "sk-live-" + "7" * 24

    def parse(response: httpx.Response) -> dict[str, Any]:
        raise ValueError(f"cannot parse {response.text}")

    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    with pytest.raises(hr.NotFoundError):
        call(
            respond(404, json={"detail": "nope", "echo": secret}),
            policies={"errors": ErrorPolicy(parse_body=parse)},
            headers={"X-Api-Key": secret},
        )
    assert "parse_body" in caplog.text
    assert secret not in caplog.text
    for record in caplog.records:
        assert record.exc_info is None or secret not in "".join(
            traceback.format_exception(*record.exc_info)
        )


class EngineError(hr.APIError):
    """A 200 whose body says the engine failed."""


def engine_classify(response: httpx.Response) -> type[hr.APIError] | None:
    if response.status_code == 200 and response.json().get("status") == "failed":
        return EngineError
    return None


def test_classify_turns_a_200_into_an_error(call: Caller) -> None:
    """classify can raise the user's class for a 2xx whose body says it failed."""
    inner = respond(200, json={"status": "failed", "error": {"message": "engine fell over"}})
    with pytest.raises(EngineError) as info:
        call(inner, policies={"errors": ErrorPolicy(classify=engine_classify)})
    assert info.value.message == "engine fell over"
    assert info.value.status_code == 200


def test_classify_none_keeps_the_body_whole(call: Caller) -> None:
    """When classify returns None the caller still gets the whole 2xx body."""
    response = call(
        respond(200, json={"status": "ok"}),
        policies={"errors": ErrorPolicy(classify=engine_classify)},
    )
    assert response.json() == {"status": "ok"}


def test_classify_skips_bodies_over_the_cap(call: Caller) -> None:
    """A 2xx body larger than max_body_bytes is not classified and reaches the caller whole."""
    chunks = [b"a" * 1000 for _ in range(20)]
    inner = Inner(lambda request: httpx.Response(200, stream=Chunks(list(chunks))))
    seen: list[int] = []

    def classify(response: httpx.Response) -> None:
        seen.append(response.status_code)

    response = call(inner, policies={"errors": ErrorPolicy(classify=classify, max_body_bytes=2500)})
    assert response.content == b"".join(chunks)
    assert seen == []


def test_classify_overrides_the_status_class(call: Caller) -> None:
    """classify may pick the class for an error status too."""
    with pytest.raises(EngineError):
        call(
            respond(500, json={}), policies={"errors": ErrorPolicy(classify=lambda r: EngineError)}
        )


@pytest.mark.parametrize("hook", [lambda r: 1 / 0, lambda r: "NotAClass"])
def test_broken_classify_is_a_configuration_error(call: Caller, hook: Any) -> None:
    """A classify hook that raises or returns junk gives a ConfigurationError, not a raw one."""
    with pytest.raises(hr.ConfigurationError):
        call(respond(200, json={}), policies={"errors": ErrorPolicy(classify=hook)})


def test_classify_junk_from_the_body_is_not_in_the_error(call: Caller) -> None:
    """A classify hook that returns text taken from the body (which echoes a token) gets a
    ConfigurationError naming only the type it returned, not the text."""
    token = "tok_" + "9" * 24

    def classify(response: httpx.Response) -> Any:
        return response.json()["echo"]

    with pytest.raises(hr.ConfigurationError) as info:
        call(
            respond(200, json={"echo": f"Bearer {token}"}),
            policies={"errors": ErrorPolicy(classify=classify)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert "str" in str(info.value)
    assert token not in str(info.value)
    assert token not in repr(info.value)


class _MessageOnlyError(hr.ServiceUnavailableError):
    """A user's status class whose __init__ takes the message alone."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class _PickyError(hr.ServiceUnavailableError):
    """A user's status class whose __init__ refuses some values with a ValueError."""

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        raise ValueError("no message allowed")


@pytest.mark.parametrize(
    ("cls", "cause"), [(_MessageOnlyError, TypeError), (_PickyError, ValueError)]
)
def test_a_status_class_that_cannot_be_built_is_a_configuration_error(
    call: Caller, cls: type, cause: type
) -> None:
    """A status class whose __init__ refuses what the library builds it with (a TypeError for
    its keyword arguments, or any other exception) gives a ConfigurationError naming it, not a
    raw exception from inside the transport."""
    policies = {"errors": ErrorPolicy(status_classes={529: cls})}
    with pytest.raises(hr.ConfigurationError, match=cls.__name__) as info:
        call(respond(529, json={}), policies=policies)
    assert isinstance(info.value.__cause__, cause)


# --- per-request overrides --------------------------------------------------------------


def test_per_request_errors_override(call: Caller) -> None:
    """extensions["resilience"]["errors"] changes the policy for one request."""
    override = {"resilience": {"errors": ErrorPolicy(raise_on_status=False)}}
    response = call(respond(500), extensions=override)
    assert response.status_code == 500


@pytest.mark.parametrize(
    "override",
    [{"nope": 1}, {"errors": "raise"}, "errors", {"request_ids": ErrorPolicy()}],
)
def test_bad_override_is_a_configuration_error(call: Caller, override: Any) -> None:
    """An unknown key or a wrong value in extensions["resilience"] fails clearly, before I/O."""
    inner = respond(200)
    with pytest.raises(hr.ConfigurationError):
        call(inner, extensions={"resilience": override})
    assert inner.requests == []


# --- request ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["x-request-id", "Request-Id", "x-amzn-RequestId", "x-amz-request-id", "x-correlation-id"],
)
def test_request_id_from_default_headers(call: Caller, header: str) -> None:
    """Each default request id header lands in response.extensions["request_id"]."""
    response = call(respond(200, headers={header: "abc-123"}))
    assert response.extensions["request_id"] == "abc-123"


def test_request_id_from_user_header(call: Caller) -> None:
    """A user-named header extends the defaults, and the first present wins."""
    ids = RequestIdPolicy(
        response_headers=(*RequestIdPolicy().response_headers, "X-DreamEngine-Request-Id")
    )
    with pytest.raises(hr.NotFoundError) as info:
        call(
            respond(404, headers={"X-DreamEngine-Request-Id": "de-1"}),
            policies={"request_ids": ids},
        )
    assert info.value.request_id == "de-1"


def test_no_request_id_is_none(call: Caller) -> None:
    """Without any id header, the extension is None."""
    assert call(respond(200)).extensions["request_id"] is None


def test_send_header_generates_a_client_id(call: Caller) -> None:
    """send_header sends a generated id, kept as the error's request id when the server gives none."""
    inner = respond(503)
    with pytest.raises(hr.ServiceUnavailableError) as info:
        call(inner, policies={"request_ids": RequestIdPolicy(send_header="X-Request-Id")})
    sent = inner.requests[0].headers["x-request-id"]
    assert len(sent) == 32
    assert info.value.request_id == sent


def test_send_header_keeps_the_callers_id(call: Caller) -> None:
    """A request id the caller set is sent as it is."""
    inner = respond(200)
    call(
        inner,
        headers={"X-Request-Id": "mine"},
        policies={"request_ids": RequestIdPolicy(send_header="X-Request-Id")},
    )
    assert inner.requests[0].headers["x-request-id"] == "mine"


# --- what passes through untouched ------------------------------------------------------


@pytest.mark.parametrize("status", [101, 301, 302, 304, 307])
def test_1xx_3xx_pass_through(call: Caller, status: int) -> None:
    """Informational and redirect statuses reach httpx untouched."""
    assert call(respond(status, headers={"location": "/elsewhere"})).status_code == status


def test_digest_challenge_passes_through(call: Caller) -> None:
    """A 401 Digest challenge to a request without credentials is left for httpx's auth flow."""
    inner = respond(401, headers={"www-authenticate": 'Digest realm="r", nonce="n"'})
    assert call(inner).status_code == 401


@pytest.mark.parametrize(
    ("challenge", "headers"),
    [('Digest realm="r", nonce="n"', {"authorization": "Digest x"}), ('Bearer realm="api"', {})],
)
def test_other_401s_raise(call: Caller, challenge: str, headers: dict[str, str]) -> None:
    """A failed Digest answer, or a non-Digest challenge, is an AuthenticationError."""
    with pytest.raises(hr.AuthenticationError):
        call(respond(401, headers={"www-authenticate": challenge}), headers=headers)


def test_success_body_is_not_read_by_the_transport() -> None:
    """A 2xx body stays a stream: nothing is pulled from upstream until the caller reads."""
    stream = Chunks([b"a", b"b", b"c"])
    inner = Inner(lambda request: httpx.Response(200, stream=stream))
    with (
        httpx.Client(transport=ResilientTransport(inner)) as client,
        client.stream("GET", URL) as response,
    ):
        assert stream.served == 0
        assert list(response.iter_raw()) == [b"a", b"b", b"c"]
    assert stream.closed


def test_mid_stream_failure_is_a_stream_error(call: Caller) -> None:
    """A 2xx body that fails while the caller reads it raises StreamError, cause attached."""
    cause = httpx.ReadError("connection reset")
    stream = Chunks([b"a", b"b"], fail_after=1, error=cause)
    with pytest.raises(hr.StreamError) as info:
        call(
            Inner(
                lambda request: httpx.Response(200, stream=stream, headers={"x-request-id": "s1"})
            )
        )
    err = info.value
    assert err.__cause__ is cause
    assert (err.status_code, err.request_id, err.phase) == (200, "s1", "read")


def test_failing_close_is_a_stream_error(call: Caller) -> None:
    """An exception from closing the body is typed too."""
    stream = Chunks([b"a"], close_error=OSError("close failed"))
    with pytest.raises(hr.StreamError):
        call(Inner(lambda request: httpx.Response(200, stream=stream)))


# --- request size -----------------------------------------------------------------------


def test_request_too_large_before_any_io(call: Caller) -> None:
    """A known-size body over max_request_bytes raises before the inner transport is called."""
    inner = respond(200)
    with pytest.raises(hr.RequestTooLargeError) as info:
        call(
            inner, "POST", content=b"x" * 11, policies={"errors": ErrorPolicy(max_request_bytes=10)}
        )
    assert inner.requests == []
    assert info.value.details == {"size": 11, "limit": 10}
    assert (info.value.attempts, info.value.history) == (0, ())
    assert isinstance(info.value, ValueError)


def test_request_at_the_limit_is_sent(call: Caller) -> None:
    """A body exactly at the limit goes out."""
    inner = respond(200)
    call(inner, "POST", json="x" * 8, policies={"errors": ErrorPolicy(max_request_bytes=10)})
    assert len(inner.requests) == 1


def test_streamed_request_over_the_limit_stops() -> None:
    """A body of unknown size is counted as it goes and stopped once past the limit."""

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200)

    policy = ErrorPolicy(max_request_bytes=10)
    with httpx.Client(transport=ResilientTransport(Inner(handler), errors=policy)) as client:
        with pytest.raises(hr.RequestTooLargeError):
            client.post(URL, content=iter([b"12345", b"67890", b"X"]))
        assert client.post(URL, content=iter([b"12345", b"67890"])).status_code == 200


@pytest.mark.anyio
async def test_async_streamed_request_over_the_limit_stops() -> None:
    """The async transport counts an async generator body the same way."""

    async def body() -> Any:
        for part in (b"12345", b"67890", b"X"):
            yield part

    async def handler_read(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200)

    class AsyncInner(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await handler_read(request)

    transport = AsyncResilientTransport(AsyncInner(), errors=ErrorPolicy(max_request_bytes=10))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(hr.RequestTooLargeError):
            await client.post(URL, content=body())


# --- construction and lifecycle -----------------------------------------------------------


def test_transport_and_kwargs_conflict() -> None:
    """Keyword arguments for the default transport can't go with a transport of one's own."""
    with pytest.raises(hr.ConfigurationError):
        ResilientTransport(Inner(lambda r: httpx.Response(200)), http2=True)


@pytest.mark.parametrize(
    "kwargs",
    [{"bogus": 1}, {"errors": "x"}, {"request_ids": ErrorPolicy()}],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any]) -> None:
    """Unknown keyword arguments and wrong policy types raise ConfigurationError."""
    with pytest.raises(hr.ConfigurationError):
        ResilientTransport(**kwargs)
    with pytest.raises(hr.ConfigurationError):
        AsyncResilientTransport(**kwargs)


def test_wrong_kind_of_inner_transport() -> None:
    """An async transport inside the sync wrapper (or the reverse) is refused at once."""
    with pytest.raises(hr.ConfigurationError):
        ResilientTransport(httpx.AsyncHTTPTransport())  # type: ignore[arg-type]
    with pytest.raises(hr.ConfigurationError):
        AsyncResilientTransport(httpx.HTTPTransport())  # type: ignore[arg-type]


def test_default_inner_transport_gets_the_kwargs() -> None:
    """Keyword arguments build the default httpx transport (here: a pool of one)."""
    transport = ResilientTransport(limits=httpx.Limits(max_connections=1))
    pool = transport._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 1
    transport.close()


def test_sync_close_and_context_manager_forward() -> None:
    """close() and the context manager reach the inner transport."""
    inner = Inner(lambda r: httpx.Response(200))
    with ResilientTransport(inner) as transport:
        assert inner.entered == 1
    assert inner.closed == 1
    transport.close()
    assert inner.closed == 2


@pytest.mark.anyio
async def test_async_close_and_context_manager_forward() -> None:
    """aclose() and the async context manager reach the inner transport."""
    inner = Inner(lambda r: httpx.Response(200))
    async with AsyncResilientTransport(inner) as transport:
        assert inner.entered == 1
    assert inner.closed == 1
    await transport.aclose()
    assert inner.closed == 2


# --- logging ------------------------------------------------------------------------------


def test_failure_is_logged_at_debug_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """A raised error is logged at DEBUG with the redacted URL."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    inner = respond(404)
    with (
        httpx.Client(transport=ResilientTransport(inner)) as client,
        pytest.raises(hr.NotFoundError),
    ):
        client.get(URL, params={"api_key": "sk-live-canary"})
    messages = [record.getMessage() for record in caplog.records]
    assert any("api_key=[REDACTED]" in m and "not_found" in m for m in messages)
    assert not any("sk-live-canary" in m for m in messages)


# --- respx: the real httpx transport, mocked at the httpcore level ----------------------


def test_respx_through_the_default_transport() -> None:
    """With respx mocking httpcore, the default inner transport's errors are typed."""
    import respx

    with respx.mock(assert_all_called=True) as router:
        router.get(URL).mock(side_effect=httpx.ConnectTimeout("slow"))
        router.get("https://api.example.com/v1/ok").respond(503, json={"detail": "down"})
        with httpx.Client(transport=ResilientTransport()) as client:
            with pytest.raises(hr.RequestTimeoutError) as timeout:
                client.get(URL)
            with pytest.raises(hr.ServiceUnavailableError) as down:
                client.get("https://api.example.com/v1/ok")
    assert timeout.value.phase == "connect"
    assert down.value.message == "down"


def test_classified_success_body_cut_off_is_a_stream_error(call: Caller) -> None:
    """With classify set, a 2xx body that breaks off while being read still ends in StreamError."""
    cause = httpx.RemoteProtocolError("peer closed connection")
    stream = Chunks([b'{"status": "do', b'ne"}'], fail_after=1, error=cause)
    inner = Inner(lambda request: httpx.Response(200, stream=stream))
    with pytest.raises(hr.StreamError) as info:
        call(inner, policies={"errors": ErrorPolicy(classify=engine_classify)})
    assert info.value.__cause__ is cause


def test_passed_on_error_body_cut_off_is_a_stream_error(call: Caller) -> None:
    """A 4xx handed on by classify (raise_on_status=False) fails on read if its body broke off."""
    stream = Chunks([b"partial"], fail_after=0, error=httpx.ReadError("reset"))
    inner = Inner(lambda request: httpx.Response(404, stream=stream))
    policy = ErrorPolicy(raise_on_status=False, classify=lambda r: None)
    with pytest.raises(hr.StreamError):
        call(inner, policies={"errors": policy})


def test_corrupt_gzip_success_body_is_a_stream_error(call: Caller) -> None:
    """httpx's own decoding of a corrupt gzip 2xx body fails as a typed StreamError."""
    stream = Chunks([b"definitely not gzip"])
    inner = Inner(
        lambda r: httpx.Response(200, stream=stream, headers={"content-encoding": "gzip"})
    )
    with pytest.raises(hr.StreamError) as info:
        call(inner)
    assert isinstance(info.value.__cause__, httpx.DecodingError)


class _GeneratorBody(httpx.AsyncByteStream):
    """An inner body that is an async generator, as httpcore's are, and says when its
    generator was finalised."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.finalised = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for chunk in self.chunks:
                yield chunk
        finally:
            self.finalised = True

    async def aclose(self) -> None:
        pass


def test_corrupt_gzip_body_finalises_the_inner_generator_in_the_loop() -> None:
    """When httpx's decoder fails above our body wrapper, closing the response finalises the
    inner body's half-run async generator there and then, in the event loop: left to the
    garbage collector, trio reports it (a ResourceWarning) from wherever that runs."""
    body = _GeneratorBody([b"definitely not gzip", b"more"])

    async def main() -> None:
        inner = Inner(
            lambda r: httpx.Response(200, stream=body, headers={"content-encoding": "gzip"})
        )
        transport = hr.AsyncResilientTransport(inner)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(hr.StreamError):
                await client.get("https://api.example.com/v1/thing")
            # No checkpoint since: a finaliser scheduled by the collector has not run yet.
            assert body.finalised

    trio.run(main)


def test_good_gzip_success_body_decodes_as_usual(call: Caller) -> None:
    """A valid gzip 2xx body still decodes through httpx as it would without the transport."""
    stream = Chunks([gzip.compress(b"hello")])
    inner = Inner(
        lambda r: httpx.Response(200, stream=stream, headers={"content-encoding": "gzip"})
    )
    assert call(inner).content == b"hello"


def test_stopped_generator_body_is_closed() -> None:
    """A caller's generator body stopped at the limit is closed, not left for the collector."""

    def body() -> Any:
        yield b"12345"
        yield b"67890"
        yield b"X"

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200)

    generator = body()
    transport = ResilientTransport(Inner(handler), errors=ErrorPolicy(max_request_bytes=10))
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(hr.RequestTooLargeError) as info,
    ):
        client.post(URL, content=generator)
    assert generator.gi_frame is None
    assert info.value.attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"proxy": "ftp://proxy.example:21"}, {"verify": "/nonexistent/ca.pem"}, {"limits": 50}],
    ids=["proxy-scheme", "missing-ca-file", "limits-not-limits"],
)
@pytest.mark.parametrize("cls", [ResilientTransport, AsyncResilientTransport])
def test_bad_default_transport_arguments_are_configuration_errors(
    cls: type, kwargs: dict[str, Any]
) -> None:
    """A value httpx's own transport refuses (a proxy scheme, a missing CA file, limits that
    are no Limits) is a ConfigurationError at construction, the cause kept."""
    with pytest.raises(hr.ConfigurationError) as info:
        cls(**kwargs)
    assert info.value.__cause__ is not None


# --- mistakes refused with a message that says what to do ---------------------------------------


async def _async_hook(*args: Any) -> None:
    """An async function where a plain one is needed."""


def test_the_sync_transport_refuses_an_async_sleep() -> None:
    """ResilientTransport(sleep=asyncio.sleep) would never wait: refused at construction."""
    import asyncio

    with pytest.raises(hr.ConfigurationError, match=r"time\.sleep"):
        ResilientTransport(sleep=asyncio.sleep)


def test_the_async_transport_refuses_a_blocking_sleep() -> None:
    """AsyncResilientTransport(sleep=time.sleep) would block the event loop: refused."""
    import time

    with pytest.raises(hr.ConfigurationError, match=r"anyio\.sleep"):
        AsyncResilientTransport(sleep=time.sleep)


def test_the_async_transport_refuses_a_blocking_sleep_behind_a_partial() -> None:
    """functools.partial(time.sleep) blocks the event loop as time.sleep does: refused too."""
    import functools
    import time

    with pytest.raises(hr.ConfigurationError, match=r"anyio\.sleep"):
        AsyncResilientTransport(sleep=functools.partial(functools.partial(time.sleep)))


def test_the_sync_transport_refuses_a_partial_of_an_async_callable() -> None:
    """A partial of an object whose __call__ is async would never be awaited: refused, as a
    hook and as sleep=."""
    import functools

    class Hook:
        async def __call__(self, *args: Any) -> None:
            """Async where a plain function is needed."""

    with pytest.raises(hr.ConfigurationError, match="on_event"):
        ResilientTransport(on_event=functools.partial(Hook()))
    with pytest.raises(hr.ConfigurationError, match=r"time\.sleep"):
        ResilientTransport(sleep=functools.partial(Hook()))


def test_an_async_sleep_that_returns_no_awaitable_is_named_at_its_first_wait() -> None:
    """A plain function given to the async transport as sleep= that returns None: its first wait
    raises a ConfigurationError saying what sleep= must be, not a raw TypeError."""
    waits: list[float] = []
    inner = httpx.MockTransport(lambda request: httpx.Response(503))

    def record(delay: float) -> None:
        waits.append(delay)

    async def go() -> None:
        transport = AsyncResilientTransport(inner, sleep=record, budget=None)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("https://api.example.com/")

    with pytest.raises(hr.ConfigurationError, match="awaitable"):
        anyio.run(go)
    assert len(waits) == 1


@pytest.mark.parametrize("hook", ["on_retry", "on_event", "classify", "parse_body"])
def test_the_sync_transport_refuses_async_hooks(hook: str) -> None:
    """An async on_retry, on_event, classify or parse_body on the sync transport would be called
    and never awaited (never run): refused at construction, naming the hook."""
    kwargs: dict[str, Any] = (
        {"errors": ErrorPolicy(**{hook: _async_hook})}
        if hook in ("classify", "parse_body")
        else {hook: _async_hook}
    )
    with pytest.raises(hr.ConfigurationError, match=hook):
        ResilientTransport(**kwargs)


@pytest.mark.parametrize("value", [None, False])
def test_retry_none_says_how_to_turn_retries_off(value: object) -> None:
    """retry=None / retry=False is refused with the way to turn retries off."""
    with pytest.raises(hr.ConfigurationError, match=r"RetryPolicy\(max_attempts=1\)"):
        ResilientTransport(retry=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: hr.RetryPolicy(max_attempts=1_000_000),
        lambda: hr.RetryPolicy(retry_statuses={200, 503}),
        lambda: hr.RetryBudget(ratio=2),
        lambda: hr.RetryPolicy(max_retry_after=1e12),
        lambda: hr.Backoff(initial=1e12, max_delay=1e12),
        lambda: hr.ErrorPolicy(pass_statuses={204}),
    ],
    ids=[
        "a million attempts",
        "a 2xx to retry",
        "a budget over the traffic",
        "a server wait of 31,700 years",
        "a backoff of 31,700 years",
        "a 2xx to pass",
    ],
)
def test_values_that_cannot_be_meant_are_refused(make: Any) -> None:
    """A million attempts, a success status to retry, a budget larger than the traffic."""
    with pytest.raises(hr.ConfigurationError):
        make()


def test_a_wait_of_a_day_is_the_longest_taken() -> None:
    """A day is accepted as the longest wait (max_retry_after, max_delay); a second more is not."""
    hr.RetryPolicy(max_retry_after=86_400, backoff=hr.Backoff(max_delay=86_400))
    with pytest.raises(hr.ConfigurationError, match="a day"):
        hr.RetryPolicy(max_retry_after=86_401)
    with pytest.raises(hr.ConfigurationError, match="a day"):
        hr.Backoff(max_delay=86_401)


def test_an_httpx_transport_in_an_httpx2_client_is_named() -> None:
    """httpx's transport inside an httpx2 client fails on the first request with a
    ConfigurationError naming the module to use, not a bare AssertionError."""
    import httpx2

    with (
        httpx2.Client(transport=ResilientTransport()) as client,  # type: ignore[arg-type]
        pytest.raises(hr.ConfigurationError, match=r"httpx_resilience\.httpx2"),
    ):
        client.get("http://127.0.0.1:9/")


def test_an_httpx2_transport_in_an_httpx_client_is_named() -> None:
    """httpx2's transport inside an httpx client: a ConfigurationError naming the module to use,
    instead of silently handing back httpx2's Response class."""
    import httpx_resilience.httpx2 as package2

    with (
        httpx.Client(transport=package2.ResilientTransport()) as client,
        pytest.raises(hr.ConfigurationError, match="httpx_resilience's"),
    ):
        client.get("http://127.0.0.1:9/")


def test_a_per_request_async_hook_is_refused_by_the_sync_transport() -> None:
    """An async parse_body given per request in extensions["resilience"] is refused by the sync
    transport like one given to it, not called and silently left unawaited (the async transport
    awaits it: tests/integration/test_async_hooks.py)."""
    override = {"resilience": {"errors": ErrorPolicy(parse_body=_async_hook)}}
    transport = ResilientTransport(httpx.MockTransport(lambda request: httpx.Response(400)))
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(hr.ConfigurationError, match="parse_body"),
    ):
        client.get("https://api.example.com/", extensions=override)


@pytest.mark.parametrize("hook", ["on_retry", "on_event", "classify", "parse_body"])
def test_the_async_transport_takes_async_hooks(hook: str) -> None:
    """AsyncResilientTransport takes every hook as an async function (it awaits them)."""
    kwargs: dict[str, Any] = (
        {"errors": ErrorPolicy(**{hook: _async_hook})}
        if hook in ("classify", "parse_body")
        else {hook: _async_hook}
    )
    AsyncResilientTransport(**kwargs)


def test_a_sync_sleep_that_returns_a_coroutine_is_named_at_its_first_wait() -> None:
    """A plain sleep= that returns a coroutine (lambda d: asyncio.sleep(d)) on the sync
    transport: its first wait raises a ConfigurationError, instead of never waiting."""
    import asyncio

    inner = httpx.MockTransport(lambda request: httpx.Response(503))
    transport = ResilientTransport(inner, sleep=lambda delay: asyncio.sleep(delay), budget=None)
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(hr.ConfigurationError, match="awaitable"),
    ):
        client.get("https://api.example.com/")


# --- from_response on a response the transport handed on (break-it 08) --------------------------


class TenantAuthError(hr.AuthenticationError):
    """An SDK's own class for 401s."""


PIN = "pin-CANARY-987654"


def _echo_pin(request: httpx.Request) -> httpx.Response:
    """A 401 whose message echoes the tenant pin header, as careless servers do."""
    pin = request.headers.get("x-tenant-pin", "")
    return httpx.Response(401, json={"error": {"message": f"refused for tenant pin {pin}"}})


def test_from_response_builds_the_error_the_transport_would_have_raised() -> None:
    """A passed 401 given to from_response() gets the transport's status_classes and
    redact_names, as the raised one would: no pin in str, to_dict() or the pickle."""
    import json
    import pickle

    errors = ErrorPolicy(redact_names={"X-Tenant-Pin"}, status_classes={401: TenantAuthError})
    raised: list[hr.APIError] = []
    for policy in (errors, errors.replace(pass_statuses={401})):
        transport = ResilientTransport(httpx.MockTransport(_echo_pin), errors=policy)
        with httpx.Client(transport=transport, headers={"X-Tenant-Pin": PIN}) as client:
            try:
                raised.append(hr.from_response(client.get("https://api.example.com/me")))
            except hr.APIError as err:
                raised.append(err)
    for err in raised:
        assert type(err) is TenantAuthError
        shown = str(err) + repr(err) + json.dumps(err.to_dict()) + repr(pickle.dumps(err))
        assert PIN not in shown
        assert err.message == "refused for tenant pin [REDACTED]"


def test_from_response_counts_the_attempts_the_response_took() -> None:
    """With raise_on_status=False, the last of three 503s gives from_response() an error with
    the 3 attempts and their history, as the raised error would carry."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        errors=ErrorPolicy(raise_on_status=False),
        sleep=lambda _: None,
    )
    with httpx.Client(transport=transport) as client:
        response = client.get("https://api.example.com/")
    err = hr.from_response(response)
    assert isinstance(err, hr.ServiceUnavailableError)
    assert err.attempts == 3
    assert [r.status_code for r in err.history] == [503, 503, 503]
    assert response.extensions["resilience"]["errors"] == ErrorPolicy(raise_on_status=False)


def test_every_handed_on_response_carries_the_policies() -> None:
    """A success carries the transport's policies too (poll and from_response build errors of
    2xx answers with them); a response of another origin with a junk
    extensions["resilience"] gets the defaults."""
    errors = ErrorPolicy(redact_names={"pin"})
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), errors=errors
    )
    with httpx.Client(transport=transport) as client:
        carried = client.get("https://api.example.com/").extensions["resilience"]
    assert carried["errors"] is errors
    with pytest.raises(TypeError, match="read-only"):
        carried["errors"] = ErrorPolicy()  # every response of the transport shares it
    junk = httpx.Response(
        404,
        request=httpx.Request("GET", "https://api.example.com/"),
        extensions={"resilience": {"errors": "not a policy", "other": 1}},
    )
    assert isinstance(hr.from_response(junk), hr.NotFoundError)


# --- a sync hook that returns an awaitable (break-it 05) -----------------------------------------


async def _coroutine_hook(*args: Any) -> Any:
    """What a lambda around an async function returns a coroutine of."""
    return None


def test_sync_hooks_returning_a_coroutine_are_reported_and_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """on_retry / on_event that turn out to return a coroutine on the sync transport (which
    cannot await) are named in a warning, the coroutine closed (no "never awaited" warning),
    and the request goes on."""
    import gc
    import warnings

    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        on_retry=lambda event: _coroutine_hook(event),
        on_event=lambda event: _coroutine_hook(event),
        sleep=lambda _: None,
    )
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="httpx_resilience"):
        warnings.simplefilter("error", RuntimeWarning)
        with httpx.Client(transport=transport) as client, pytest.raises(hr.ServiceUnavailableError):
            client.get("https://api.example.com/")
        gc.collect()
    messages = {r.getMessage().split(" returned")[0] for r in caplog.records}
    assert messages == {"on_retry", "on_event"}


def test_sync_classify_returning_a_coroutine_is_a_configuration_error() -> None:
    """A classify that returns a coroutine on the sync transport: a ConfigurationError that says
    so, the coroutine closed."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200, json={})),
        errors=ErrorPolicy(classify=lambda response: _coroutine_hook(response)),
    )
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(hr.ConfigurationError, match="returned an awaitable"),
    ):
        client.get("https://api.example.com/")


def test_sync_parse_body_returning_a_coroutine_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A parse_body that returns a coroutine on the sync transport leaves the built-in parser,
    as one that raises does."""
    transport = ResilientTransport(
        httpx.MockTransport(
            lambda request: httpx.Response(404, json={"error": {"message": "no such user"}})
        ),
        errors=ErrorPolicy(parse_body=lambda response: _coroutine_hook(response)),
    )
    with (
        caplog.at_level("WARNING", logger="httpx_resilience"),
        httpx.Client(transport=transport) as client,
        pytest.raises(hr.NotFoundError) as excinfo,
    ):
        client.get("https://api.example.com/")
    assert excinfo.value.message == "no such user"
    assert any("parse_body returned an awaitable" in m for m in caplog.messages)


# --- from_response on handed-back responses, second round (break-it round 2) ---------------------


def test_from_response_counts_a_keyed_409_retryable() -> None:
    """A keyed POST handed back after three 409s (raise_on_status=False): from_response's
    ConflictError is retryable, as the transport's own would be."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(409)),
        errors=ErrorPolicy(raise_on_status=False),
        sleep=lambda _: None,
    )
    with httpx.Client(transport=transport) as client:
        response = client.post("https://api.example.com/charges", json={"n": 1})
    err = hr.from_response(response)
    assert isinstance(err, hr.ConflictError)
    assert err.retryable is True
    assert err.attempts == 3


@pytest.mark.parametrize(
    "forged",
    [
        {"attempts": True, "history": ("not a record",)},
        {"attempts": -3, "history": [hr.AttemptRecord(503, "ServiceUnavailableError")]},
        {"attempts": "3", "history": None},
    ],
)
def test_from_response_ignores_forged_attempts_and_history(forged: dict[str, Any]) -> None:
    """attempts and history that are not what a transport records are ignored: the error
    counts one attempt, and to_dict() works."""
    response = httpx.Response(
        404, request=httpx.Request("GET", "https://api.example.com/"), extensions=forged
    )
    err = hr.from_response(response)
    assert err.attempts == 1
    assert [r.error for r in err.history] == ["NotFoundError"]
    assert err.to_dict()["attempts"] == 1


def test_a_string_given_as_the_transport_is_named_by_its_type() -> None:
    """A proxy URL passed as the transport by mistake: the error names the type, never the
    URL with its password."""
    with pytest.raises(hr.ConfigurationError) as excinfo:
        ResilientTransport("http://user:s3cret-pw@proxy.example:3128")  # type: ignore[arg-type]
    shown = str(excinfo.value) + repr(excinfo.value) + repr(excinfo.value.to_dict())
    assert "s3cret-pw" not in shown
    assert "builtins.str" in shown


def test_from_response_says_it_does_not_await_an_async_parse_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An async parse_body in the policies a response carries: from_response (synchronous)
    says it cannot await it, closes the coroutine and builds the error with the built-in
    parser."""
    import gc
    import warnings

    policies = {"errors": ErrorPolicy(parse_body=_coroutine_hook)}
    response = httpx.Response(
        400,
        json={"error": {"message": "bad input"}},
        request=httpx.Request("GET", "https://api.example.com/"),
        extensions={"resilience": policies},
    )
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="httpx_resilience"):
        warnings.simplefilter("error", RuntimeWarning)
        err = hr.from_response(response)
        gc.collect()
    assert err.message == "bad input"
    assert any("cannot be awaited here" in m for m in caplog.messages)
