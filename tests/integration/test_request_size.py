"""ErrorPolicy.max_request_bytes stops an oversized body before, or while, it is sent."""

from __future__ import annotations

import gc
import io
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from _support import Flavour
from httpx_resilience import (
    ErrorPolicy,
    RequestTooLargeError,
)

from ._support import Runner
from .conftest import LiveServer

LIMIT = ErrorPolicy(max_request_bytes=2500)
CHUNK = b"c" * 1000


def _check_too_large(err: RequestTooLargeError, size: int) -> None:
    assert isinstance(err, ValueError)
    assert err.status_code is None
    assert err.code == "request_too_large"
    assert err.method == "POST"
    assert err.details is not None
    assert err.details["limit"] == 2500
    assert err.details["size"] >= size


def _nothing_sent(server: LiveServer) -> None:
    assert server.requests() == []


def test_bytes_body_refused_before_io(run: Runner, server: LiveServer) -> None:
    """A bytes body over the limit raises before anything reaches the server."""

    async def scenario() -> None:
        async with run.client(run.transport(errors=LIMIT)) as client:
            with pytest.raises(RequestTooLargeError) as excinfo:
                await client.post(server.url("/echo"), content=b"x" * 2501)
        _check_too_large(excinfo.value, 2501)
        _nothing_sent(server)

    run(scenario)


def test_json_body_refused_before_io(run: Runner, server: LiveServer) -> None:
    """A JSON body over the limit raises before anything reaches the server."""

    async def scenario() -> None:
        async with run.client(run.transport(errors=LIMIT)) as client:
            with pytest.raises(RequestTooLargeError) as excinfo:
                await client.post(server.url("/echo"), json={"text": "x" * 3000})
        _check_too_large(excinfo.value, 3000)
        _nothing_sent(server)

    run(scenario)


def test_multipart_body_refused_before_io(hx: Flavour, server: LiveServer) -> None:
    """A multipart upload of known size over the limit raises before any I/O."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(errors=LIMIT)) as client,
        pytest.raises(RequestTooLargeError),
    ):
        client.post(server.url("/echo"), files={"file": ("a.bin", io.BytesIO(b"x" * 3000))})
    _nothing_sent(server)


def test_body_at_limit_is_sent(hx: Flavour, server: LiveServer) -> None:
    """A body of exactly the limit goes out whole."""
    with hx.httpx.Client(transport=hx.ResilientTransport(errors=LIMIT)) as client:
        response = client.post(server.url("/echo"), content=b"x" * 2500)
    assert response.status_code == 200
    assert len(response.json()["body"]) == 2500


def test_per_request_limit(hx: Flavour, server: LiveServer) -> None:
    """A limit set for one request through extensions applies to that request only."""
    override = {"resilience": {"errors": ErrorPolicy(max_request_bytes=10)}}
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        with pytest.raises(RequestTooLargeError):
            client.post(server.url("/echo"), content=b"x" * 11, extensions=override)
        assert client.post(server.url("/echo"), content=b"x" * 11).status_code == 200
    assert len(server.requests()) == 1


class Produced:
    """Counts the chunks a body generator handed out."""

    def __init__(self) -> None:
        self.count = 0

    def sync(self, chunks: int) -> Iterator[bytes]:
        for _ in range(chunks):
            self.count += 1
            yield CHUNK

    async def asynchronous(self, chunks: int) -> AsyncIterator[bytes]:
        for _ in range(chunks):
            self.count += 1
            yield CHUNK


def _no_complete_request(server: LiveServer) -> None:
    # The head went out before the body was stopped: wait until the server has seen it, so
    # the check is not vacuous and the record cannot land in the next test's.
    deadline = time.monotonic() + 5
    while not server.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = server.requests()
    assert [r.path for r in seen] == ["/echo"]
    assert not seen[0].body_complete
    assert len(seen[0].body) <= 2500


def test_generator_body_stopped(run: Runner, server: LiveServer) -> None:
    """A generator body of unknown size (sync or async) stops once past the limit, never
    completed."""

    async def scenario() -> None:
        produced = Produced()
        body = run.pick(produced.sync, produced.asynchronous)(10)
        async with run.client(run.transport(errors=LIMIT)) as client:
            with pytest.raises(RequestTooLargeError) as excinfo:
                await client.post(server.url("/echo"), content=body)
        _check_too_large(excinfo.value, 2501)
        assert produced.count == 3
        _no_complete_request(server)

    run(scenario)


@pytest.mark.anyio
async def test_stopped_generator_body_finalised_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: the caller's body generator, stopped past the limit, is closed, not left to the GC."""
    produced = Produced()
    body = produced.asynchronous(10)
    async with hx.httpx.AsyncClient(transport=hx.AsyncResilientTransport(errors=LIMIT)) as client:
        with pytest.raises(RequestTooLargeError):
            await client.post(server.url("/echo"), content=body)
        _no_complete_request(server)
        assert body.ag_frame is None  # finished or closed, not suspended at a yield
        del body
        # Trio warns (ResourceWarning, an error here) for every async generator the GC
        # collects unexhausted and unclosed.
        gc.collect()
        await trio.sleep(0)


def test_generator_body_under_limit_sent(hx: Flavour, server: LiveServer) -> None:
    """A generator body under the limit is counted on its way and arrives whole."""
    produced = Produced()
    with hx.httpx.Client(transport=hx.ResilientTransport(errors=LIMIT)) as client:
        response = client.post(server.url("/echo"), content=produced.sync(2))
    assert response.status_code == 200
    assert response.json()["body"] == (CHUNK * 2).decode()
    assert server.requests()[0].body_complete


def test_client_usable_after_stopped_body(hx: Flavour, server: LiveServer) -> None:
    """After a body was stopped mid-send, the same client serves the next request."""
    with hx.httpx.Client(transport=hx.ResilientTransport(errors=LIMIT)) as client:
        with pytest.raises(RequestTooLargeError):
            client.post(server.url("/echo"), content=Produced().sync(10))
        assert client.get(server.url("/echo")).status_code == 200
