"""Error bodies: read up to the cap and no further, decoded, parsed in every common format."""

from __future__ import annotations

import asyncio
import gc
import time

import httpx
import pytest
import trio

from _support import Flavour
from httpx_resilience import (
    APIError,
    BadRequestError,
    ErrorPolicy,
    InternalServerError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    ValidationError,
)

from ._support import Runner
from .conftest import LiveServer, RawServer

TEN_MB = 10 * 1024 * 1024
DEFAULT_CAP = 65536


def _big(server: LiveServer) -> str:
    return server.url("/big-error", size=TEN_MB)


def _check_capped(err: InternalServerError, server: LiveServer, started: float) -> None:
    assert err.status_code == 500
    assert err.body is not None
    assert 0 < len(err.body) <= DEFAULT_CAP
    assert set(err.body) == {"E"}
    assert time.monotonic() - started < 5
    # On every attempt (a GET meeting 500 is retried) the client hung up long before the
    # server could push its 10 MB through the socket.
    assert server.sent("big-error") < TEN_MB * (err.attempts or 1)


def test_big_error_body_capped(run: Runner, server: LiveServer) -> None:
    """A 10 MB error body is read only up to max_body_bytes."""

    async def scenario() -> None:
        started = time.monotonic()
        async with run.client() as client:
            with pytest.raises(InternalServerError) as excinfo:
                await client.get(_big(server))
        _check_capped(excinfo.value, server, started)

    run(scenario)


def test_custom_body_cap(hx: Flavour, server: LiveServer) -> None:
    """max_body_bytes sets the cap on what an error keeps of its body."""
    transport = hx.ResilientTransport(errors=ErrorPolicy(max_body_bytes=1000))
    with (
        hx.httpx.Client(transport=transport) as client,
        pytest.raises(InternalServerError) as excinfo,
    ):
        client.get(_big(server))
    assert excinfo.value.body is not None
    assert 0 < len(excinfo.value.body) <= 1000


def test_zero_body_cap_reads_nothing(hx: Flavour, server: LiveServer) -> None:
    """max_body_bytes=0 keeps no body and still raises the right class from the status."""
    transport = hx.ResilientTransport(errors=ErrorPolicy(max_body_bytes=0))
    with (
        hx.httpx.Client(transport=transport) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(server.url("/status/404", message="unread"))
    assert not excinfo.value.body
    assert excinfo.value.message != "unread"


def _pool_of_one(hx: Flavour) -> dict[str, object]:
    return {"limits": hx.httpx.Limits(max_connections=1)}


def _pool_timeout(hx: Flavour) -> object:
    return hx.httpx.Timeout(5, pool=2)


def test_connection_freed_after_big_error(run: Runner, server: LiveServer) -> None:
    """After a capped 10 MB error, a one-connection pool serves the next request at once."""

    async def scenario() -> None:
        transport = run.transport(**_pool_of_one(run.hx))
        async with run.client(transport, timeout=_pool_timeout(run.hx)) as client:
            # The error is kept to the end: what it may leave unclosed is the next test's business.
            with pytest.raises(InternalServerError) as excinfo:
                await client.get(_big(server))
            started = time.monotonic()
            assert (await client.get(server.url("/echo"))).status_code == 200
        assert time.monotonic() - started < 1
        assert excinfo.value.status_code == 500

    run(scenario)


@pytest.mark.anyio
async def test_big_error_leaves_nothing_to_finalise_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: a capped error body closes what it half read; the GC finds no open generator."""
    async with hx.httpx.AsyncClient(transport=hx.AsyncResilientTransport()) as client:
        with pytest.raises(InternalServerError):
            await client.get(_big(server))
        # Trio warns (ResourceWarning, an error here) for every async generator the GC
        # collects unexhausted and unclosed.
        gc.collect()
        await trio.sleep(0)


def test_connection_freed_after_streamed_error(hx: Flavour, server: LiveServer) -> None:
    """An error raised on entering `client.stream` gives its connection back too."""
    with hx.httpx.Client(
        transport=hx.ResilientTransport(**_pool_of_one(hx)), timeout=_pool_timeout(hx)
    ) as client:
        for _ in range(2):
            with (
                pytest.raises(InternalServerError),
                client.stream("GET", _big(server)),
            ):
                pass  # pragma: no cover - entering raises
        assert client.get(server.url("/echo")).status_code == 200


def test_small_error_bodies_keep_connection(run: Runner, server: LiveServer) -> None:
    """Two 404s read whole leave the connection reusable: three requests, one connection."""

    async def scenario() -> None:
        async with run.client(run.transport(**_pool_of_one(run.hx))) as client:
            for _ in range(2):
                with pytest.raises(NotFoundError):
                    await client.get(server.url("/status/404"))
            assert (await client.get(server.url("/echo"))).status_code == 200
        assert len(server.requests()) == 3
        assert server.connections() == 1

    run(scenario)


def _check_gzip(err: UnprocessableEntityError) -> None:
    assert err.message == "gzip decoded: name is invalid"
    assert err.code == "gz_invalid"
    assert err.request_id == "req_gzip"
    assert err.body is not None
    assert err.body.startswith('{"error"')
    assert err.response is not None
    assert err.response.json()["error"]["code"] == "gz_invalid"


def test_gzip_error_body_decoded(run: Runner, server: LiveServer) -> None:
    """A gzip-encoded error body is decoded before it is parsed."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(UnprocessableEntityError) as excinfo:
                await client.get(server.url("/gzip-error"))
        _check_gzip(excinfo.value)

    run(scenario)


def _raise_for(hx: Flavour, server: LiveServer, status: int, **params: str) -> APIError:
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(APIError) as excinfo,
    ):
        client.get(server.url(f"/status/{status}", **params))
    return excinfo.value


def test_openai_body(hx: Flavour, server: LiveServer) -> None:
    """An OpenAI-style {"error": {...}} body gives message and code."""
    err = _raise_for(
        hx, server, 400, fmt="openai", message="bad model", error_code="model_not_found"
    )
    assert isinstance(err, BadRequestError)
    assert (err.message, err.code) == ("bad model", "model_not_found")


def test_openai_body_type_as_code(hx: Flavour, server: LiveServer) -> None:
    """An OpenAI-style body with a null code gives its type as the code."""
    err = _raise_for(hx, server, 400, fmt="openai", message="bad", type="invalid_request_error")
    assert isinstance(err, BadRequestError)
    assert err.code == "invalid_request_error"


def test_fastapi_detail_string(hx: Flavour, server: LiveServer) -> None:
    """FastAPI's {"detail": "..."} gives the message; the code stays the class default."""
    err = _raise_for(hx, server, 404, fmt="fastapi", message="Item not found")
    assert isinstance(err, NotFoundError)
    assert (err.message, err.code) == ("Item not found", "not_found")


def test_fastapi_validation_list(hx: Flavour, server: LiveServer) -> None:
    """FastAPI's validation list fills ValidationError.errors with loc/msg/type."""
    err = _raise_for(hx, server, 422, fmt="validation")
    assert isinstance(err, ValidationError)
    assert err.errors == [
        {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
        {"loc": ["query", "limit"], "msg": "Input should be a valid integer", "type": "int"},
    ]
    assert "body.name" in err.message
    assert "Field required" in err.message


def test_problem_json_on_validation_error(hx: Flavour, server: LiveServer) -> None:
    """problem+json gives detail as message, type as code, extensions as details, errors."""
    err = _raise_for(
        hx,
        server,
        422,
        fmt="problem",
        message="Name must be a string",
        error_code="https://e.x/invalid",
    )
    assert isinstance(err, UnprocessableEntityError)
    assert err.message == "Name must be a string"
    assert err.code == "https://e.x/invalid"
    assert err.details is not None
    assert err.details["balance"] == 30
    assert err.details["accounts"] == ["/account/12345", "/account/67890"]
    assert err.errors == [{"loc": ["name"], "msg": "must be a string", "type": None}]


def test_problem_json_on_other_error(hx: Flavour, server: LiveServer) -> None:
    """problem+json on a non-validation status keeps its field errors in details."""
    err = _raise_for(hx, server, 403, fmt="problem", message="You do not have enough credit.")
    assert err.message == "You do not have enough credit."
    assert err.code == "https://example.com/probs/out-of-credit"
    assert err.details is not None
    details = err.details
    assert details["balance"] == 30
    assert details["errors"] == [{"loc": ["name"], "msg": "must be a string", "type": None}]
    assert err.errors is None


def test_jsonapi_errors(hx: Flavour, server: LiveServer) -> None:
    """A JSON:API errors list gives the first error's detail and code, and the field errors."""
    err = _raise_for(
        hx, server, 422, fmt="jsonapi", message="Name is too short", error_code="too_short"
    )
    assert isinstance(err, UnprocessableEntityError)
    assert (err.message, err.code) == ("Name is too short", "too_short")
    assert err.errors is not None
    assert err.errors[0]["loc"] == ["data", "attributes", "name"]


def test_plain_text_body(hx: Flavour, server: LiveServer) -> None:
    """A plain-text body is the message as it is."""
    err = _raise_for(hx, server, 502, fmt="text", message="upstream connect error")
    assert err.message == "upstream connect error"
    assert err.code == "bad_gateway"
    assert err.body == "upstream connect error"


def test_html_body(hx: Flavour, server: LiveServer) -> None:
    """An HTML error page is reduced to its title."""
    err = _raise_for(hx, server, 503, fmt="html", message="503 Service Temporarily Unavailable")
    assert err.message == "503 Service Temporarily Unavailable"
    assert "<" not in err.message


def test_empty_body(hx: Flavour, server: LiveServer) -> None:
    """An empty body gives the status text and the class's code."""
    err = _raise_for(hx, server, 504, fmt="empty")
    assert err.message == "HTTP 504 Gateway Timeout"
    assert err.code == "gateway_timeout"


def test_custom_body_parser(hx: Flavour, server: LiveServer) -> None:
    """parse_body replaces the parser and sees the body already read."""

    def parse(response: httpx.Response) -> dict[str, str]:
        return {"message": response.json()["detail"].upper(), "code": "custom"}

    transport = hx.ResilientTransport(errors=ErrorPolicy(parse_body=parse))
    with (
        hx.httpx.Client(transport=transport) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(server.url("/status/404", fmt="fastapi", message="gone"))
    assert (excinfo.value.message, excinfo.value.code) == ("GONE", "custom")


def _check_broken_off(err: ServiceUnavailableError) -> None:
    assert type(err) is ServiceUnavailableError
    assert err.request_id == "req_raw_503"
    assert err.body is not None
    assert err.body.startswith("overloaded overloaded")
    assert len(err.body) < 3000


def test_error_body_broken_off(run: Runner, raw: RawServer) -> None:
    """An error body that breaks off still gives the status's error, with what came."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                await client.get(raw.url("/error-abort"))
        _check_broken_off(excinfo.value)

    run(scenario)


def test_head_error_has_no_body(hx: Flavour, server: LiveServer) -> None:
    """A HEAD that fails raises its class with no body to read."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.head(server.url("/status/404"))
    assert not excinfo.value.body
    assert excinfo.value.method == "HEAD"


@pytest.mark.asyncio
async def test_concurrent_errors_share_a_small_pool_asyncio(
    hx: Flavour, server: LiveServer
) -> None:
    """asyncio: twenty concurrent failures, half with 10 MB bodies, never exhaust a pool of 2."""
    transport = hx.AsyncResilientTransport(limits=hx.httpx.Limits(max_connections=2))
    async with hx.httpx.AsyncClient(
        transport=transport, timeout=hx.httpx.Timeout(5, pool=4)
    ) as client:
        urls = [_big(server), server.url("/status/404")] * 10
        results = await asyncio.gather(*(client.get(url) for url in urls), return_exceptions=True)
        assert [type(r) for r in results] == [InternalServerError, NotFoundError] * 10
        assert (await client.get(server.url("/echo"))).status_code == 200
