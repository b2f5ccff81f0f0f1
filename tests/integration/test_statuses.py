"""Every HTTP error status from a real server becomes its typed error, with all its fields."""

from __future__ import annotations

import email.utils
import pickle
import time

import httpx
import pytest

from _support import Flavour
from httpx_resilience import (
    APIError,
    ClientError,
    ErrorPolicy,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    RequestIdPolicy,
    ServiceUnavailableError,
    from_response,
)

from ._support import STATUS_CASES, STATUS_IDS, Runner, check_status_error, status_url
from .conftest import LiveServer

QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."


@pytest.mark.parametrize(("status", "cls", "default_code"), STATUS_CASES, ids=STATUS_IDS)
def test_status_raises_its_class(
    run: Runner, server: LiveServer, status: int, cls: type[APIError], default_code: str
) -> None:
    """A real `status` response raises its class with message, code, id and objects."""

    async def scenario() -> None:
        url = status_url(server.base_url, status)
        async with run.client() as client:
            request = client.build_request("GET", url)
            with pytest.raises(cls) as excinfo:
                await client.send(request)
        check_status_error(excinfo.value, status, cls, request, url)

    run(scenario)


@pytest.mark.parametrize(("status", "cls", "default_code"), STATUS_CASES, ids=STATUS_IDS)
def test_empty_body_gives_default_code(
    hx: Flavour, server: LiveServer, status: int, cls: type[APIError], default_code: str
) -> None:
    """A bodiless error still gets its class's stable code and a message naming the status."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(cls) as excinfo,
    ):
        client.get(server.url(f"/status/{status}", fmt="empty"))
    err = excinfo.value
    assert type(err) is cls
    assert err.code == default_code
    assert str(status) in err.message
    assert err.body is None or err.body == ""
    assert err.request_id is None


@pytest.mark.parametrize(
    "header",
    ["x-request-id", "request-id", "x-amzn-requestid", "x-amz-request-id", "x-correlation-id"],
)
def test_request_id_from_each_default_header(hx: Flavour, server: LiveServer, header: str) -> None:
    """Each default request-id header of the response becomes the error's request_id."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(server.url("/status/404", **{header: f"id-from-{header}"}))
    assert excinfo.value.request_id == f"id-from-{header}"
    assert excinfo.value.history[-1].request_id == f"id-from-{header}"


def test_request_id_first_listed_header_wins(hx: Flavour, server: LiveServer) -> None:
    """With several id headers present, the first in the policy's order is the request id."""
    url = server.url("/status/404", **{"request-id": "second", "x-request-id": "first"})
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(url)
    assert excinfo.value.request_id == "first"


def test_request_id_from_user_named_header(hx: Flavour, server: LiveServer) -> None:
    """A header the user adds to the defaults is read as the request id."""
    ids = RequestIdPolicy(
        response_headers=(*RequestIdPolicy().response_headers, "X-DreamEngine-Request-Id")
    )
    url = server.url("/status/500", **{"x-dreamengine-request-id": "dream_1"})
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(request_ids=ids)) as client,
        pytest.raises(APIError) as excinfo,
    ):
        client.get(url)
    assert excinfo.value.request_id == "dream_1"


def test_request_id_headers_replace_defaults(hx: Flavour, server: LiveServer) -> None:
    """A policy naming its own headers no longer reads the default ones."""
    ids = RequestIdPolicy(response_headers=("x-trace",))
    url = server.url("/status/404", **{"x-request-id": "ignored", "x-trace": "trace_9"})
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(request_ids=ids)) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(url)
    assert excinfo.value.request_id == "trace_9"


def test_client_request_id_sent_and_used(hx: Flavour, server: LiveServer) -> None:
    """With send_header set, a generated id goes out and names an error the server gave none."""
    ids = RequestIdPolicy(send_header="X-Client-Request-Id")
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(request_ids=ids)) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(server.url("/status/404"))
    sent = server.requests()[0].headers["x-client-request-id"]
    assert len(sent) >= 16
    assert excinfo.value.request_id == sent


def test_client_request_id_kept_when_caller_set_one(hx: Flavour, server: LiveServer) -> None:
    """A client request id the caller set is sent as it is, not replaced."""
    ids = RequestIdPolicy(send_header="X-Client-Request-Id")
    with hx.httpx.Client(transport=hx.ResilientTransport(request_ids=ids)) as client:
        response = client.get(server.url("/status/200"), headers={"X-Client-Request-Id": "mine"})
    assert response.status_code == 200
    assert server.requests()[0].headers["x-client-request-id"] == "mine"
    assert response.extensions["request_id"] == "mine"


def test_success_response_carries_request_id(hx: Flavour, server: LiveServer) -> None:
    """A 2xx passes through annotated with the server's request id."""
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.get(server.url("/status/200", **{"x-request-id": "req_ok"}))
    assert response.status_code == 200
    assert response.extensions["request_id"] == "req_ok"
    assert response.json() == {"status": 200}


def test_rate_limit_fields(hx: Flavour, server: LiveServer) -> None:
    """A 429 carries retry_after and the x-ratelimit-* window."""
    url = server.url(
        "/status/429",
        message="Rate limit reached for requests per min",
        **{
            "retry-after": "7",
            "x-ratelimit-limit": "100",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "30",
        },
    )
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(RateLimitError) as excinfo,
    ):
        client.get(url)
    err = excinfo.value
    assert type(err) is RateLimitError
    assert (err.retry_after, err.limit, err.remaining, err.reset) == (7.0, 100, 0, 30.0)
    assert err.retryable is True


def test_rate_limit_openai_dialect(hx: Flavour, server: LiveServer) -> None:
    """OpenAI's per-resource headers and durations give limit, remaining and reset."""
    url = server.url(
        "/status/429",
        **{
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "59",
            "x-ratelimit-reset-requests": "6m0s",
        },
    )
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(RateLimitError) as excinfo,
    ):
        client.get(url)
    err = excinfo.value
    assert (err.limit, err.remaining, err.reset) == (60, 59, 360.0)


def test_rate_limit_ietf_dialect(hx: Flavour, server: LiveServer) -> None:
    """The IETF RateLimit-* fields give limit, remaining and reset."""
    url = server.url(
        "/status/429",
        **{"ratelimit-limit": "10", "ratelimit-remaining": "3", "ratelimit-reset": "12"},
    )
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(RateLimitError) as excinfo,
    ):
        client.get(url)
    err = excinfo.value
    assert (err.limit, err.remaining, err.reset) == (10, 3, 12.0)


def test_retry_after_ms_on_503(hx: Flavour, server: LiveServer) -> None:
    """A 503 with retry-after-ms reports the wait in seconds."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.get(server.url("/status/503", **{"retry-after-ms": "1500"}))
    assert excinfo.value.retry_after == 1.5


def test_retry_after_http_date(hx: Flavour, server: LiveServer) -> None:
    """A Retry-After given as an HTTP date becomes the seconds until then."""
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.get(server.url("/status/503", **{"retry-after": when}))
    assert excinfo.value.retry_after is not None
    assert 55 <= excinfo.value.retry_after <= 61


def test_should_retry_header_sets_retryable(hx: Flavour, server: LiveServer) -> None:
    """`x-should-retry: false` on a 503 makes the error not retryable."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.get(server.url("/status/503", **{"x-should-retry": "false"}))
    assert excinfo.value.retryable is False


def test_quota_exhausted_429(run: Runner, server: LiveServer) -> None:
    """An OpenAI insufficient_quota 429 raises QuotaExceededError, not retryable."""
    url = server.url(
        "/status/429",
        message=QUOTA_MESSAGE,
        type="insufficient_quota",
        error_code="insufficient_quota",
    )

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(QuotaExceededError) as excinfo:
                await client.get(url)
        err = excinfo.value
        assert isinstance(err, RateLimitError)
        assert err.retryable is False
        assert err.code == "insufficient_quota"
        assert err.message == QUOTA_MESSAGE

    run(scenario)


def test_rate_limit_wording_429_is_not_quota(hx: Flavour, server: LiveServer) -> None:
    """A 429 that speaks of a per-minute rate limit stays a plain RateLimitError."""
    url = server.url(
        "/status/429",
        message="Rate limit reached for gpt-4 on requests per min (RPM): Limit 3.",
        type="requests",
        error_code="rate_limit_exceeded",
    )
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(RateLimitError) as excinfo,
    ):
        client.get(url)
    assert type(excinfo.value) is RateLimitError
    assert excinfo.value.retryable is True


def _check_passed_through(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.extensions["request_id"] == "req_pass"
    assert response.json()["error"]["message"] == "kept"


def _passthrough_url(server: LiveServer) -> str:
    return server.url("/status/404", message="kept", **{"x-request-id": "req_pass"})


def test_raise_on_status_false_passes_response(run: Runner, server: LiveServer) -> None:
    """raise_on_status=False hands the error response on, body intact, id annotated."""

    async def scenario() -> None:
        transport = run.transport(errors=ErrorPolicy(raise_on_status=False))
        async with run.client(transport) as client:
            response = await client.get(_passthrough_url(server))
        _check_passed_through(response)
        err = from_response(response)
        assert type(err) is NotFoundError
        assert (err.message, err.request_id) == ("kept", "req_pass")

    run(scenario)


def test_raise_on_status_false_streamed_response_readable(hx: Flavour, server: LiveServer) -> None:
    """A passed-through error response is still a stream the caller reads, untouched."""
    transport = hx.ResilientTransport(errors=ErrorPolicy(raise_on_status=False))
    with (
        hx.httpx.Client(transport=transport) as client,
        client.stream("GET", _passthrough_url(server)) as response,
    ):
        assert not response.is_stream_consumed
        response.read()
        _check_passed_through(response)


def test_per_request_override_passes_response(hx: Flavour, server: LiveServer) -> None:
    """`extensions={"resilience": {"errors": ...}}` switches raising off for one call."""
    override = {"resilience": {"errors": ErrorPolicy(raise_on_status=False)}}
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.get(_passthrough_url(server), extensions=override)
        _check_passed_through(response)
        with pytest.raises(NotFoundError):
            client.get(_passthrough_url(server))


def test_user_status_class(hx: Flavour, server: LiveServer) -> None:
    """status_classes maps a status to the user's own StatusError subclass."""

    class TeapotError(ClientError):
        """Raised for a 418."""

    policy = ErrorPolicy(status_classes={418: TeapotError})
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(errors=policy)) as client,
        pytest.raises(TeapotError) as excinfo,
    ):
        client.get(server.url("/status/418", message="short and stout"))
    assert excinfo.value.message == "short and stout"


def test_mounted_transport_raises_typed_errors(hx: Flavour, server: LiveServer) -> None:
    """A transport mounted for one host raises typed errors for that host."""
    with (
        hx.httpx.Client(mounts={server.base_url: hx.ResilientTransport()}) as client,
        pytest.raises(NotFoundError),
    ):
        client.get(server.url("/status/404"))


def test_status_error_pickles(hx: Flavour, server: LiveServer) -> None:
    """An error from a real response survives a pickle round trip with its attributes."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(RateLimitError) as excinfo,
    ):
        client.get(server.url("/status/429", **{"retry-after": "3", "x-request-id": "req_p"}))
    err = excinfo.value
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is RateLimitError
    assert clone.to_dict() == err.to_dict()
    assert clone.retry_after == 3.0
