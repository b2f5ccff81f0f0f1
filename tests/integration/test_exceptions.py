"""Failures without a (complete) response become typed errors, the original kept as cause."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from _support import Flavour
from httpx_resilience import (
    APIError,
    ErrorPolicy,
    NetworkError,
    ProtocolError,
    RequestTimeoutError,
    StreamError,
    StreamTimeoutError,
    TransportError,
)

from ._support import Runner
from .conftest import LiveServer, RawServer


def _read_timeout(hx: Flavour) -> object:
    return hx.httpx.Timeout(5, read=0.2)


def _check_refused(hx: Flavour, err: NetworkError, request: httpx.Request) -> None:
    assert type(err) is NetworkError
    assert isinstance(err, TransportError)
    assert isinstance(err, httpx.NetworkError)
    assert isinstance(err.__cause__, hx.httpx.ConnectError)
    assert err.phase == "connect"
    assert err.code == "network_error"
    assert err.retryable is True
    assert err.status_code is None
    assert err.response is None
    assert err.request is request
    assert err.method == "GET"
    # Refused at connect: retried for any method, the default 3 attempts.
    assert err.attempts == 3
    assert [(h.status_code, h.error) for h in err.history] == [(None, "NetworkError")] * 3


def test_connection_refused(run: Runner, refused_url: str) -> None:
    """A refused connection raises NetworkError, phase connect, ConnectError as cause."""

    async def scenario() -> None:
        async with run.client() as client:
            request = client.build_request("GET", refused_url)
            with pytest.raises(NetworkError) as excinfo:
                await client.send(request)
        _check_refused(run.hx, excinfo.value, request)

    run(scenario)


def test_network_error_pickles(hx: Flavour, refused_url: str) -> None:
    """A transport error from a real failure survives a pickle round trip."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(NetworkError) as excinfo,
    ):
        client.get(refused_url)
    clone = pickle.loads(pickle.dumps(excinfo.value))
    assert type(clone) is NetworkError
    assert clone.to_dict() == excinfo.value.to_dict()


def _check_read_timeout(hx: Flavour, err: RequestTimeoutError) -> None:
    assert type(err) is RequestTimeoutError
    assert isinstance(err, httpx.TimeoutException)
    assert isinstance(err, TimeoutError)
    assert isinstance(err.__cause__, hx.httpx.ReadTimeout)
    assert err.phase == "read"
    assert err.code == "timeout"
    assert err.status_code is None


def test_read_timeout(run: Runner, server: LiveServer) -> None:
    """A server slower than the read timeout raises RequestTimeoutError, phase read."""

    async def scenario() -> None:
        async with run.client(timeout=_read_timeout(run.hx)) as client:
            with pytest.raises(RequestTimeoutError) as excinfo:
                await client.get(server.url("/slow", delay=2))
        _check_read_timeout(run.hx, excinfo.value)

    run(scenario)


@pytest.mark.parametrize("mode", ["asyncio", "trio"])
def test_cancellation_is_not_wrapped(run: Runner, server: LiveServer) -> None:
    """Cancelling a request in flight (asyncio's wait_for, trio's cancel scope) is cancellation,
    not an APIError, and the client goes on."""

    async def scenario() -> None:
        async with run.client() as client:
            slow = server.url("/slow", delay=2)
            if run.mode == "asyncio":
                with pytest.raises(asyncio.TimeoutError) as excinfo:
                    await asyncio.wait_for(client.get(slow), 0.2)
                assert not isinstance(excinfo.value, APIError)
            else:
                with anyio.move_on_after(0.2) as scope:
                    await client.get(slow)
                assert scope.cancelled_caught
            assert (await client.get(server.url("/echo"))).status_code == 200

    run(scenario)


def _check_stream_error(hx: Flavour, err: StreamError) -> None:
    assert type(err) is StreamError
    assert isinstance(err, TransportError)
    assert isinstance(err.__cause__, hx.httpx.TransportError)
    assert err.status_code == 200
    assert err.code == "stream_error"
    assert err.method == "GET"


async def _collect(pieces: list[bytes], source: AsyncIterator[bytes]) -> None:
    """Append each piece of `source` to `pieces` as it comes, so an error keeps what came first."""
    async for piece in source:
        pieces.append(piece)


def test_stream_abort(run: Runner, raw: RawServer) -> None:
    """A body cut off mid-stream raises StreamError while iterating."""

    async def scenario() -> None:
        pieces: list[bytes] = []
        async with (
            run.client() as client,
            client.stream("GET", raw.url("/stream-abort")) as response,
        ):
            assert response.status_code == 200
            with pytest.raises(StreamError) as excinfo:
                await _collect(pieces, client.iter_bytes(response))
        assert 0 < len(b"".join(pieces)) < 1048576
        _check_stream_error(run.hx, excinfo.value)
        assert excinfo.value.request_id == "req_raw_abort"

    run(scenario)


def test_stream_abort_on_read(hx: Flavour, raw: RawServer) -> None:
    """A body cut off while `client.get` reads it raises StreamError from the call."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(StreamError) as excinfo,
    ):
        client.get(raw.url("/stream-abort"))
    _check_stream_error(hx, excinfo.value)


def test_stream_abort_by_asgi_app(hx: Flavour, server: LiveServer) -> None:
    """A chunked body whose server app fails midway raises StreamError."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        client.stream("GET", server.url("/stream-abort")) as response,
        pytest.raises(StreamError) as excinfo,
    ):
        for _ in response.iter_bytes():
            pass
    _check_stream_error(hx, excinfo.value)


def test_stream_abort_after_classify_read_prefix(run: Runner, raw: RawServer) -> None:
    """With classify set, a 2xx body cut off after the inspected part still fails typed, never
    passing as a whole, shorter body."""

    async def scenario() -> None:
        transport = run.transport(errors=ErrorPolicy(classify=lambda response: None))
        async with run.client(transport) as client:
            with pytest.raises(StreamError) as excinfo:
                await client.get(raw.url("/stream-abort"))
        _check_stream_error(run.hx, excinfo.value)

    run(scenario)


def test_stalled_body_raises_stream_timeout(run: Runner, server: LiveServer) -> None:
    """A 2xx body that stalls past the read timeout in the caller's read raises an error that
    is a StreamError and a RequestTimeoutError, caught where plain httpx's ReadTimeout is:
    by `except httpx.TimeoutException` and by `except TimeoutError` (httpx's classes on both
    packages: the error family is one, see the README's httpx2 section)."""

    async def scenario() -> None:
        timeout = run.hx.httpx.Timeout(5, read=0.3)
        async with (
            run.client(timeout=timeout) as client,
            client.stream("GET", server.url("/stream-gated", chunks=3, size=1000)) as response,
        ):
            with pytest.raises(httpx.TimeoutException) as excinfo:
                await client.read(response)
        err = excinfo.value
        assert type(err) is StreamTimeoutError
        assert isinstance(err, (StreamError, RequestTimeoutError, TimeoutError))
        assert isinstance(err.__cause__, run.hx.httpx.ReadTimeout)
        assert (err.status_code, err.code, err.method, err.phase) == (
            200,
            "stream_error",
            "GET",
            "read",
        )
        assert err.retryable is False
        assert [r.error for r in err.history] == ["StreamTimeoutError"]

    run(scenario)


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_unsupported_scheme_is_an_httpx_transport_error(run: Runner) -> None:
    """A URL of a scheme no transport speaks raises our TransportError, caught by
    `except httpx.TransportError` as plain httpx's UnsupportedProtocol is."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(httpx.TransportError) as excinfo:
                await client.get("ftp://127.0.0.1/file")
        assert isinstance(excinfo.value, TransportError)
        assert isinstance(excinfo.value.__cause__, run.hx.httpx.UnsupportedProtocol)

    run(scenario)


def test_corrupt_gzip_2xx_body_raises_typed_error(hx: Flavour, server: LiveServer) -> None:
    """A 2xx whose gzip body cannot be decoded raises a typed error, not httpx.DecodingError."""
    url = server.url("/status/200", **{"content-encoding": "gzip"})
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(Exception) as excinfo,  # noqa: PT011 - the test is which class it is
    ):
        client.get(url)
    assert isinstance(excinfo.value, TransportError), repr(excinfo.value)


def test_closing_stream_early_raises_nothing(hx: Flavour, server: LiveServer) -> None:
    """Leaving a streamed 2xx body half read is no error, and the client goes on."""
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        with client.stream("GET", server.url("/stream", chunks=64, size=65536)) as response:
            next(response.iter_bytes())
        assert client.get(server.url("/echo")).status_code == 200


def test_unsupported_protocol(run: Runner) -> None:
    """A URL of a scheme no transport speaks raises a TransportError."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(TransportError) as excinfo:
                await client.get("ftp://127.0.0.1/file.txt")
        assert isinstance(excinfo.value.__cause__, run.hx.httpx.UnsupportedProtocol)
        assert excinfo.value.code == "unsupported_protocol"
        assert excinfo.value.retryable is False

    run(scenario)


def _check_garbage(hx: Flavour, err: ProtocolError) -> None:
    assert type(err) is ProtocolError
    assert isinstance(err, httpx.ProtocolError)
    assert isinstance(err.__cause__, hx.httpx.RemoteProtocolError)
    assert err.code == "protocol_error"
    assert err.status_code is None


def test_garbage_response(run: Runner, raw: RawServer) -> None:
    """A server answering non-HTTP raises ProtocolError."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(ProtocolError) as excinfo:
                await client.get(raw.url("/garbage"))
        _check_garbage(run.hx, excinfo.value)

    run(scenario)
