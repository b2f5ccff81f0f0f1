"""poll / apoll against the live server's `/job/{id}`, a job that runs for K polls.

Clients go through a ResilientTransport, as users' would. The scenarios that `run` takes call
`poll` through the sync transport and `apoll` under asyncio and trio.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _support import flavour
from httpx_resilience import (
    Backoff,
    NetworkError,
    NotFoundError,
    PollTimeoutError,
    ResilientTransport,
    RetryPolicy,
    apoll,
    poll,
)
from httpx_resilience._waits import set_no_wait

from ._support import Client, Runner
from .conftest import SCRIPTS, LiveServer, new_id

# Really slept in the `real_waits` tests: 10 ms, then 20 ms.
FAST = Backoff(initial=0.01, multiplier=2.0, max_delay=1.0, jitter="none")
# Under the suite's no_wait(): skipped, but counted against the deadline. Long, so the real time
# the requests take (under 5 s in all) cannot move a poll across the deadline.
EVERY_TEN_SECONDS = Backoff(initial=10.0, multiplier=1.0, max_delay=10.0, jitter="none")


def succeeded(response: httpx.Response) -> bool:
    return response.is_success and response.json()["status"] == "succeeded"


@pytest.fixture
def real_waits() -> Iterator[None]:
    """The suite-wide no_wait() lifted for one test: its waits are really slept."""
    set_no_wait(False)
    try:
        yield
    finally:
        set_no_wait(True)


def check_timeout(err: PollTimeoutError, job_id: str) -> None:
    """Polls at 0, 10, 20 and 30 s (skipped waits, counted); the next would pass 35 s."""
    assert err.attempts == 4
    assert SCRIPTS.get(job_id).seen == 4
    assert (err.phase, err.retryable, err.status_code) == ("total", False, 202)
    assert err.resource_id == job_id
    assert err.request_id == "req_job_4"
    assert err.response is not None
    assert err.response.json() == {"id": job_id, "status": "running"}
    assert "not done within 35s: 4 polls" in err.message


@pytest.fixture
def run(mode: str) -> Runner:
    """Every mode, through httpx alone, as these tests always ran."""
    return Runner(mode, flavour("httpx"))


async def _poll(client: Client, url: str, **kwargs: Any) -> httpx.Response:
    """`poll` with a sync client, `apoll` with an async one."""
    if client.is_async:
        return await apoll(client.raw, url, **kwargs)
    return poll(client.raw, url, **kwargs)


def test_poll_returns_once_the_job_succeeded(
    run: Runner, server: LiveServer, real_waits: None
) -> None:
    """Two 202 "running" answers, then the 200 "succeeded" one is returned after real waits."""

    async def scenario() -> None:
        job_id = new_id()
        started = time.monotonic()
        async with run.client() as client:
            response = await _poll(
                client,
                server.url(f"/job/{job_id}", running=2),
                until=succeeded,
                timeout=30,
                interval=FAST,
            )
        assert response.json() == {"id": job_id, "status": "succeeded"}
        assert SCRIPTS.get(job_id).seen == 3
        assert time.monotonic() - started >= 0.03

    run(scenario)


def test_poll_times_out_with_the_last_answer(run: Runner, server: LiveServer) -> None:
    """A job that never finishes raises PollTimeoutError naming it, the job's last answer kept."""

    async def scenario() -> None:
        job_id = new_id()
        async with run.client() as client:
            with pytest.raises(PollTimeoutError) as excinfo:
                await _poll(
                    client,
                    server.url(f"/job/{job_id}", running=1000),
                    until=succeeded,
                    timeout=35,
                    interval=EVERY_TEN_SECONDS,
                )
        check_timeout(excinfo.value, job_id)

    run(scenario)


def test_poll_honours_retry_after(server: LiveServer, real_waits: None) -> None:
    """A 202 with `Retry-After: 0.3` is polled again after 0.3 s, not the backoff's 10 ms."""
    job_id = new_id()
    with httpx.Client(transport=ResilientTransport()) as client:
        started = time.monotonic()
        poll(
            client,
            server.url(f"/job/{job_id}", running=1, retry_after="0.3"),
            until=succeeded,
            timeout=30,
            interval=FAST,
        )
        took = time.monotonic() - started
    assert 0.3 <= took < 5
    assert SCRIPTS.get(job_id).seen == 2


@pytest.mark.parametrize("resilient", [True, False], ids=["resilient", "plain"])
def test_poll_404_is_typed(run: Runner, server: LiveServer, resilient: bool) -> None:
    """A 404 raises NotFoundError through a ResilientTransport and through a plain client alike."""

    async def scenario() -> None:
        transport = run.transport() if resilient else run.http_transport()
        async with run.client(transport) as client:
            with pytest.raises(NotFoundError) as excinfo:
                await _poll(client, server.url("/status/404"), until=succeeded, timeout=30)
        assert excinfo.value.status_code == 404

    run(scenario)


@pytest.mark.parametrize("resilient", [True, False], ids=["resilient", "plain"])
def test_poll_connection_refused_is_typed(refused_url: str, resilient: bool) -> None:
    """A refused connection raises NetworkError (connect phase) with either client."""
    transport = (
        ResilientTransport(retry=RetryPolicy(max_attempts=1))
        if resilient
        else httpx.HTTPTransport()
    )
    with httpx.Client(transport=transport) as client, pytest.raises(NetworkError) as excinfo:
        poll(client, refused_url, until=succeeded, timeout=30)
    assert excinfo.value.phase == "connect"
