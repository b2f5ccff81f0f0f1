"""The retry engine against a real server, async: the same guarantees under asyncio and trio.

Each scenario is one coroutine, run by a `pytest.mark.asyncio` test and a `pytest.mark.anyio`
test (the integration `anyio_backend` is trio).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
import pytest

from _support import Flavour
from httpx_resilience import (
    Backoff,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ServiceUnavailableError,
)

from ._support import check_one_key_three_attempts
from .conftest import SCRIPTS, LiveServer, new_id

PAYLOAD_BYTES = json.dumps({"prompt": "hello", "n": 1}).encode()


async def _post_503_503_200(hx: Flavour, server: LiveServer) -> None:
    sid = new_id()
    events: list[RetryEvent] = []
    retry = RetryPolicy(
        backoff=Backoff(initial=0.1, multiplier=2.0, jitter="none"),
        attempt_header="x-retry-attempt",
    )
    transport = hx.AsyncResilientTransport(retry=retry, on_retry=events.append)
    async with hx.httpx.AsyncClient(transport=transport) as client:
        response = await client.post(server.url(f"/flaky/{sid}", fail=2), content=PAYLOAD_BYTES)

    assert response.status_code == 200
    data = response.json()
    check_one_key_three_attempts(data, PAYLOAD_BYTES)
    assert [(e.attempt, e.delay, e.reason) for e in events] == [
        (1, 0.1, "status 503"),
        (2, 0.2, "status 503"),
    ]
    assert all(isinstance(e.error, ServiceUnavailableError) for e in events)


@pytest.mark.asyncio
async def test_post_503_503_200_asyncio(hx: Flavour, server: LiveServer) -> None:
    """asyncio: a POST meeting 503, 503, 200 succeeds with one key, one body, attempts 1-2-3."""
    await _post_503_503_200(hx, server)


@pytest.mark.anyio
async def test_post_503_503_200_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: a POST meeting 503, 503, 200 succeeds with one key, one body, attempts 1-2-3."""
    await _post_503_503_200(hx, server)


async def _async_generator_body_sent_once(hx: Flavour, server: LiveServer) -> None:
    sid = new_id()
    parts = [b"part-1;", b"part-2;", b"part-3"]

    async def gen() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with hx.httpx.AsyncClient(transport=hx.AsyncResilientTransport()) as client:
        with pytest.raises(ServiceUnavailableError) as excinfo:
            # fail=1: a (wrong) second attempt would have met a 200.
            await client.post(server.url(f"/flaky/{sid}", fail=1), content=gen())
    assert excinfo.value.attempts == 1
    records = [r for r in server.requests() if r.path == f"/flaky/{sid}"]
    assert len(records) == 1
    assert bytes(records[0].body) == b"".join(parts)
    assert records[0].body_complete


@pytest.mark.asyncio
async def test_async_generator_body_sent_once_asyncio(hx: Flavour, server: LiveServer) -> None:
    """asyncio: an async-generator body meeting 503 is sent once, whole, and the 503 raised."""
    await _async_generator_body_sent_once(hx, server)


@pytest.mark.anyio
async def test_async_generator_body_sent_once_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: an async-generator body meeting 503 is sent once, whole, and the 503 raised."""
    await _async_generator_body_sent_once(hx, server)


async def _connection_reuse(hx: Flavour, server: LiveServer) -> None:
    inner = hx.httpx.AsyncHTTPTransport(limits=hx.httpx.Limits(max_connections=1))
    ids = [new_id() for _ in range(20)]
    async with hx.httpx.AsyncClient(
        transport=hx.AsyncResilientTransport(inner), timeout=hx.httpx.Timeout(5.0, pool=2.0)
    ) as client:
        for sid in ids:
            response = await client.get(server.url(f"/flaky/{sid}", fail=2))
            assert response.status_code == 200
            assert response.json()["seen"] == 3
    assert len(server.requests()) == 60
    assert server.connections() == 1


@pytest.mark.asyncio
async def test_retried_error_responses_give_back_their_connection_asyncio(
    hx: Flavour,
    server: LiveServer,
) -> None:
    """asyncio: 20 GETs meeting 503, 503, 200 through a one-connection pool use one TCP connection."""
    await _connection_reuse(hx, server)


@pytest.mark.anyio
async def test_retried_error_responses_give_back_their_connection_trio(
    hx: Flavour,
    server: LiveServer,
) -> None:
    """trio: 20 GETs meeting 503, 503, 200 through a one-connection pool use one TCP connection."""
    await _connection_reuse(hx, server)


async def _total_deadline(hx: Flavour, server: LiveServer) -> None:
    sid = new_id()
    retry = RetryPolicy(
        timeout=0.6,
        max_attempts=20,
        backoff=Backoff(initial=0.1, multiplier=1.0, jitter="none"),
    )
    transport = hx.AsyncResilientTransport(retry=retry, sleep=anyio.sleep)
    start = time.monotonic()
    async with hx.httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(RequestTimeoutError) as excinfo:
            await client.get(server.url(f"/flaky/{sid}", fail=1000))
    elapsed = time.monotonic() - start
    err = excinfo.value
    assert elapsed <= 0.6 + 0.25
    assert err.phase == "total"
    assert isinstance(err.__cause__, ServiceUnavailableError)
    assert err.attempts > 1
    assert err.attempts == SCRIPTS.get(sid).seen


@pytest.mark.asyncio
async def test_total_deadline_with_real_sleeps_asyncio(hx: Flavour, server: LiveServer) -> None:
    """asyncio: an always-503 route under a 0.6 s deadline with real sleeps raises phase "total" in time."""
    await _total_deadline(hx, server)


@pytest.mark.anyio
async def test_total_deadline_with_real_sleeps_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: an always-503 route under a 0.6 s deadline with real sleeps raises phase "total" in time."""
    await _total_deadline(hx, server)


async def _slow_attempt_cut_by_deadline(hx: Flavour, server: LiveServer) -> None:
    sid = new_id()
    transport = hx.AsyncResilientTransport(retry=RetryPolicy(timeout=0.5), sleep=anyio.sleep)
    start = time.monotonic()
    async with hx.httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(RequestTimeoutError) as excinfo:
            await client.get(server.url(f"/flaky/{sid}", delay=2))
    assert time.monotonic() - start <= 0.5 + 0.3
    assert excinfo.value.phase in ("read", "total")


@pytest.mark.asyncio
async def test_total_deadline_shortens_a_slow_attempt_asyncio(
    hx: Flavour, server: LiveServer
) -> None:
    """asyncio: a route answering after 2 s is cut off by a 0.5 s total deadline."""
    await _slow_attempt_cut_by_deadline(hx, server)


@pytest.mark.anyio
async def test_total_deadline_shortens_a_slow_attempt_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: a route answering after 2 s is cut off by a 0.5 s total deadline."""
    await _slow_attempt_cut_by_deadline(hx, server)


async def _cancel_during_retry_wait(hx: Flavour, server: LiveServer) -> None:
    sid = new_id()
    inner = hx.httpx.AsyncHTTPTransport(limits=hx.httpx.Limits(max_connections=1))
    transport = hx.AsyncResilientTransport(inner, sleep=anyio.sleep)
    async with hx.httpx.AsyncClient(
        transport=transport, timeout=hx.httpx.Timeout(5.0, pool=1.0)
    ) as client:
        start = time.monotonic()
        with anyio.move_on_after(0.5) as scope:
            await client.get(server.url(f"/flaky/{sid}", fail=1, retry_after=5))
        assert scope.cancelled_caught
        assert time.monotonic() - start < 1.0
        assert SCRIPTS.get(sid).seen == 1

        # The 503 was closed before the wait: the one pooled connection is free at once.
        fresh = new_id()
        start = time.monotonic()
        response = await client.get(server.url(f"/flaky/{fresh}"))
        assert response.status_code == 200
        assert time.monotonic() - start < 0.5
    assert SCRIPTS.get(sid).seen == 1
    assert server.connections() == 1


@pytest.mark.asyncio
async def test_cancel_during_retry_wait_asyncio(hx: Flavour, server: LiveServer) -> None:
    """asyncio: cancelling during a 5 s Retry-After wait ends the call promptly and leaks no connection."""
    await _cancel_during_retry_wait(hx, server)


@pytest.mark.anyio
async def test_cancel_during_retry_wait_trio(hx: Flavour, server: LiveServer) -> None:
    """trio: cancelling during a 5 s Retry-After wait ends the call promptly and leaks no connection."""
    await _cancel_during_retry_wait(hx, server)
