"""`FaultTransport` around a real transport to the live server, under the resilient transport.

Each scenario runs sync, under asyncio and under trio, through httpx (with
`httpx_resilience.testing.FaultTransport`) and httpx2 (with its twin
`httpx_resilience.httpx2.FaultTransport`). The suite's `no_wait()` skips the waits between
attempts; the only real waits are the slow bodies' few tens of milliseconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from httpx_resilience import (
    RetryPolicy,
    ServiceUnavailableError,
    StreamError,
    StreamTimeoutError,
)
from httpx_resilience.testing import Fault, FaultTransport

from ._support import Client, Runner
from .conftest import SCRIPTS, LiveServer, new_id, streamed_body

pytestmark = pytest.mark.timeout(30)


def fault_transport(run: Runner, inner: Any, **kwargs: Any) -> Any:
    """The FaultTransport of the runner's package around `inner`."""
    if run.hx.name == "httpx":
        return FaultTransport(inner, **kwargs)
    from httpx_resilience.httpx2 import FaultTransport as FaultTransport2

    return FaultTransport2(inner, **kwargs)


def one_connection(run: Runner) -> Any:
    """The mode's plain transport with a pool of one connection: under a client timeout, a
    response left open makes the next request time out instead of hanging."""
    package = run.hx.httpx
    return run.http_transport(limits=package.Limits(max_connections=1))


def test_scripted_503s_are_retried_then_the_server_answers(run: Runner, server: LiveServer) -> None:
    """Two scripted 503s (one with Retry-After) are retried under one key, the third attempt reaching the server, which alone sees it."""

    async def scenario() -> None:
        busy = Fault.status(503, headers={"Retry-After": "0"}, json={"error": {"code": "busy"}})
        faults = fault_transport(run, run.http_transport(), faults=[busy, Fault.status(503)])
        async with run.client(run.transport(faults)) as client:
            response = await client.post(server.url("/echo"), json={"n": 1})

        assert response.status_code == 200
        assert json.loads(response.json()["body"]) == {"n": 1}
        assert response.extensions["attempts"] == 3
        assert [record.status_code for record in response.extensions["history"]] == [503, 503]
        assert [call.fault for call in faults.calls] == [busy, Fault.status(503), None]
        keys = [call.request.headers["idempotency-key"] for call in faults.calls]
        assert keys == [keys[0]] * 3
        echoed = [r.headers["idempotency-key"] for r in server.requests() if r.path == "/echo"]
        assert echoed == [keys[0]]  # only the last attempt reached the server

    run(scenario)


def test_a_connect_error_is_retried(run: Runner, server: LiveServer) -> None:
    """A scripted connect error is retried, even for a POST, and the second attempt reaches the server."""

    async def scenario() -> None:
        faults = fault_transport(run, run.http_transport(), faults=[Fault.connect_error()])
        async with run.client(run.transport(faults)) as client:
            response = await client.post(server.url("/echo"), content=b"payload")

        assert response.status_code == 200
        assert response.json()["body"] == "payload"
        history = response.extensions["history"]
        assert [(record.status_code, record.error) for record in history] == [
            (None, "NetworkError")
        ]
        assert len([r for r in server.requests() if r.path == "/echo"]) == 1

    run(scenario)


def test_a_reset_mid_error_body_is_retried_on_the_same_connection(
    run: Runner, server: LiveServer
) -> None:
    """The server's 503 cut after 10 body bytes is retried, and its connection was released: a one-connection pool serves the retry and one more request."""

    async def scenario() -> None:
        sid = new_id()
        faults = fault_transport(run, one_connection(run), faults=[Fault.reset(after=10)])
        async with run.client(run.transport(faults), timeout=2.0) as client:
            response = await client.get(server.url(f"/flaky/{sid}", fail=1))
            again = await client.get(server.url("/status/200"))

        assert [call.fault for call in faults.calls] == [Fault.reset(after=10), None, None]
        assert response.status_code == 200
        assert response.json()["seen"] == 2
        assert response.extensions["history"][0].status_code == 503
        assert response.extensions["history"][0].error == "ServiceUnavailableError"
        assert again.status_code == 200
        assert SCRIPTS.get(sid).seen == 2

    run(scenario)


def test_a_reset_mid_success_body_fails_in_the_read(run: Runner, server: LiveServer) -> None:
    """A 200 cut after 1500 of its 4096 bytes fails in the caller's read with StreamError, and the pool still serves a request."""

    async def scenario() -> None:
        faults = fault_transport(run, one_connection(run), faults=[Fault.reset(after=1500)])
        received = bytearray()

        async def read(client: Client) -> None:
            async with client.stream("GET", server.url("/stream", chunks=4, size=1024)) as r:
                async for piece in client.iter_bytes(r):
                    received.extend(piece)

        async with run.client(run.transport(faults), timeout=2.0) as client:
            with pytest.raises(StreamError) as caught:
                await read(client)
            again = await client.get(server.url("/status/200"))

        assert [call.fault for call in faults.calls] == [Fault.reset(after=1500), None]
        assert bytes(received) == streamed_body(4, 1024)[:1500]
        assert caught.value.status_code == 200
        assert caught.value.attempts == 1
        assert again.status_code == 200

    run(scenario)


def test_a_slow_body_arrives_whole_and_late(run: Runner, server: LiveServer) -> None:
    """A body slowed to 20 ms per 1 KiB piece arrives whole, in at least 4 × 20 ms."""

    async def scenario() -> None:
        slow = Fault.slow(0.02, chunk_size=1024)
        faults = fault_transport(run, run.http_transport(), faults=[slow])
        async with run.client(run.transport(faults)) as client:
            start = time.perf_counter()
            response = await client.get(server.url("/stream", chunks=4, size=1024))
            elapsed = time.perf_counter() - start

        assert response.content == streamed_body(4, 1024)
        assert elapsed >= 0.08

    run(scenario)


def test_a_body_slower_than_the_read_timeout_is_a_stream_timeout(
    run: Runner, server: LiveServer
) -> None:
    """A body whose pieces come later than the 0.05 s read timeout fails in the caller's read with StreamTimeoutError, well before the delay."""

    async def scenario() -> None:
        faults = fault_transport(run, run.http_transport(), faults=[Fault.slow(5.0)])
        async with run.client(run.transport(faults), timeout=0.05) as client:
            start = time.perf_counter()
            with pytest.raises(StreamTimeoutError):
                await client.get(server.url("/stream", chunks=2, size=64))
            elapsed = time.perf_counter() - start

        assert elapsed < 2.0

    run(scenario)


def test_a_seeded_rate_gives_the_same_run_twice(run: Runner, server: LiveServer) -> None:
    """Two runs of 12 GETs with rate=0.4 and one seed fault the same attempts and end the same way."""

    async def once() -> tuple[list[bool], list[int | str]]:
        faults = fault_transport(
            run, run.http_transport(), faults=Fault.status(503), rate=0.4, seed=2024
        )
        outcomes: list[int | str] = []
        transport = run.transport(faults, retry=RetryPolicy(max_attempts=2))
        async with run.client(transport) as client:
            for _ in range(12):
                try:
                    outcomes.append((await client.get(server.url("/status/200"))).status_code)
                except ServiceUnavailableError as exc:
                    outcomes.append(f"{type(exc).__name__} x{exc.attempts}")
        return [call.fault is not None for call in faults.calls], outcomes

    async def scenario() -> None:
        first = await once()
        assert await once() == first
        faulted, outcomes = first
        assert any(faulted)
        assert not all(faulted)
        assert len(outcomes) == 12

    run(scenario)


def test_a_disconnect_is_retried_for_a_get_not_for_a_keyless_post(
    run: Runner, server: LiveServer
) -> None:
    """A scripted disconnect before the answer is retried for a GET; a POST without a key may
    have run, so it is raised, typed, after one attempt."""

    async def scenario() -> None:
        from httpx_resilience import IdempotencyPolicy, ProtocolError

        faults = fault_transport(run, run.http_transport(), faults=[Fault.disconnect()])
        async with run.client(run.transport(faults)) as client:
            response = await client.get(server.url("/echo"))
        assert response.status_code == 200
        assert [r.error for r in response.extensions["history"]] == ["ProtocolError"]

        faults = fault_transport(run, run.http_transport(), faults=[Fault.disconnect()])
        keyless = run.transport(faults, idempotency=IdempotencyPolicy(enabled=False))
        async with run.client(keyless) as client:
            with pytest.raises(ProtocolError) as excinfo:
                await client.post(server.url("/echo"), content=b"once")
        assert excinfo.value.attempts == 1
        assert len(faults.calls) == 1

    run(scenario)
