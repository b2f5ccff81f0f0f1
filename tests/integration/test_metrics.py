"""OpenTelemetry metrics against the real server (issue 15, part 3), in every mode (sync,
asyncio, trio) through httpx and httpx2: attempts and retries of a flaky route, a give-up, a
budget refusal, and an open circuit's state and rejections.

The instruments are made from a provider of each test's own, put where the transport finds
them (the global provider can be set once per process; tests/test_metrics.py shows that path).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from _support import FakeClock, Points, points
from httpx_resilience import (
    CircuitBreaker,
    CircuitOpenError,
    MemoryState,
    RetryBudget,
    RetryPolicy,
    ServiceUnavailableError,
)
from httpx_resilience.testing import no_wait

from ._support import Runner
from .conftest import LiveServer, new_id


def total(found: Points, name: str) -> float:
    return sum(value for value, _ in found.get(name, []))


def host_of(server: LiveServer) -> dict[str, Any]:
    port = httpx.URL(server.base_url).port
    return {"server.address": "127.0.0.1", "server.port": port, "url.scheme": "http"}


def test_a_flaky_route_counts_every_attempt_and_each_retry(
    run: Runner, server: LiveServer, reader: InMemoryMetricReader
) -> None:
    """/flaky with fail=2: three attempts (the server saw three), two retries of error.type
    503, against the server's own address and port; no give-up."""

    async def scenario() -> None:
        async with run.client() as client:
            response = await client.get(server.url(f"/flaky/{new_id()}", fail=2, status=503))
        assert response.status_code == 200

    with no_wait():
        run(scenario)
    found = points(reader)
    get = {**host_of(server), "http.request.method": "GET"}
    failed = {**get, "http.response.status_code": 503, "error.type": "503"}
    assert total(found, "httpx_resilience.attempts") == 3
    assert (1, {**get, "http.response.status_code": 200, "http.request.resend_count": 2}) in found[
        "httpx_resilience.attempts"
    ]
    assert found["httpx_resilience.retries"] == [(2, failed)]
    assert "httpx_resilience.give_ups" not in found


def test_attempts_exhausted_is_one_give_up(
    run: Runner, server: LiveServer, reader: InMemoryMetricReader
) -> None:
    """A route failing more often than the 3 attempts allow: 3 attempts, 2 retries, and one
    give-up whose reason is attempts_exhausted."""

    async def scenario() -> None:
        async with run.client() as client:
            with pytest.raises(ServiceUnavailableError):
                await client.get(server.url(f"/flaky/{new_id()}", fail=5, status=503))

    with no_wait():
        run(scenario)
    found = points(reader)
    assert total(found, "httpx_resilience.attempts") == 3
    assert total(found, "httpx_resilience.retries") == 2
    ((count, attributes),) = found["httpx_resilience.give_ups"]
    assert count == 1
    assert attributes["httpx_resilience.give_up.reason"] == "attempts_exhausted"
    assert attributes["error.type"] == "503"


def test_a_budget_refusal_is_counted_and_gives_up(
    run: Runner, server: LiveServer, reader: InMemoryMetricReader
) -> None:
    """A budget that allows no retry: one attempt, one refusal, one give-up for retry_budget,
    no retry."""

    async def scenario() -> None:
        transport = run.transport(budget=RetryBudget(ratio=0.0, min_per_second=0.0))
        async with run.client(transport) as client:
            with pytest.raises(ServiceUnavailableError):
                await client.get(server.url(f"/flaky/{new_id()}", fail=1, status=503))

    with no_wait():
        run(scenario)
    found = points(reader)
    assert total(found, "httpx_resilience.attempts") == 1
    assert total(found, "httpx_resilience.budget.refusals") == 1
    ((_, attributes),) = found["httpx_resilience.give_ups"]
    assert attributes["httpx_resilience.give_up.reason"] == "retry_budget"
    assert "httpx_resilience.retries" not in found


def test_an_open_circuit_sets_the_state_and_counts_rejections(
    run: Runner, server: LiveServer, reader: InMemoryMetricReader
) -> None:
    """Two 503s open the circuit: its state reads 2 for the server's host; the two requests
    after are rejected without reaching the server, each counted once."""
    sid = new_id()

    async def scenario() -> None:
        transport = run.transport(
            breaker=CircuitBreaker(failure_ratio=0.5, min_calls=2, open_for=5.0),
            budget=None,
            retry=RetryPolicy(max_attempts=1),
            state=MemoryState(clock=FakeClock()),
        )
        async with run.client(transport) as client:
            for _ in range(2):
                with pytest.raises(ServiceUnavailableError):
                    await client.get(server.url(f"/flaky/{sid}", fail=9, status=503))
            for _ in range(2):
                with pytest.raises(CircuitOpenError):
                    await client.get(server.url(f"/flaky/{sid}", fail=9, status=503))

    with no_wait():
        run(scenario)
    found = points(reader)
    host = host_of(server)
    assert found["httpx_resilience.circuit.state"] == [(2, host)]
    assert found["httpx_resilience.circuit.rejections"] == [
        (2, {**host, "http.request.method": "GET"})
    ]
    assert total(found, "httpx_resilience.attempts") == 2
    seen = [r for r in server.requests() if r.path == f"/flaky/{sid}"]
    assert len(seen) == 2
