"""Adaptive throttling against the real uvicorn server: a route that allows N requests a second
and answers a bare 429 (no Retry-After, no rate-limit header) beyond, hit by several callers at
once, in every mode (sync threads, asyncio and trio tasks) through httpx and httpx2.

What is asserted is the share of attempts the server answered 429, with wide margins: without
the throttle the callers send as fast as the loopback allows and nearly all are refused; with
it, once the first 429 has cut the rate, most get through. The transport sleeps for real
(`sleep=` the mode's own: the suite's `no_wait()` would skip the default one).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from httpx_resilience import AdaptiveThrottle, ErrorPolicy, ResilienceEvent, RetryPolicy

from ._support import Runner
from .conftest import LiveServer, new_id

pytestmark = pytest.mark.timeout(60)

RATE = 10  # requests a second the route allows
CALLERS = 5


async def hammer(
    run: Runner, server: LiveServer, seconds: float, throttle: AdaptiveThrottle | None
) -> tuple[list[int], list[ResilienceEvent]]:
    """`CALLERS` callers sending GETs to one `/allow` id for `seconds`, each as soon as its
    last one is answered, through one client: every status, and the events."""
    url = server.url(f"/allow/{new_id()}", rate=RATE)
    events: list[ResilienceEvent] = []
    transport = run.transport(
        retry=RetryPolicy(max_attempts=1),  # each attempt is a request: the share is exact
        errors=ErrorPolicy(raise_on_status=False),
        sleep=run.sleep,
        on_event=events.append,
        throttle=throttle,
    )
    statuses: list[int] = []
    deadline = time.monotonic() + seconds
    async with run.client(transport) as client:
        if run.is_async:

            async def caller() -> None:
                while time.monotonic() < deadline:
                    statuses.append((await client.get(url)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(CALLERS):
                    group.start_soon(caller)
        else:

            def sync_caller() -> None:
                while time.monotonic() < deadline:
                    statuses.append(client.raw.get(url).status_code)

            with ThreadPoolExecutor(CALLERS) as pool:
                for future in [pool.submit(sync_caller) for _ in range(CALLERS)]:
                    future.result()
    return statuses, events


def share_429(statuses: list[int]) -> float:
    assert statuses
    assert set(statuses) <= {200, 429}
    return statuses.count(429) / len(statuses)


def test_the_throttle_cuts_the_share_of_429s(run: Runner, server: LiveServer) -> None:
    """Without the throttle most attempts get a 429; with it, the callers wait their turn
    (announced as "paced", reason "throttle") and most get through."""
    off, _ = run(hammer, run, server, 0.5, None)
    on, events = run(hammer, run, server, 1.5, AdaptiveThrottle())
    assert share_429(off) > 0.6
    assert share_429(on) < 0.4
    assert share_429(on) < share_429(off) / 2
    paced = [e for e in events if e.kind == "paced"]
    assert paced
    assert {e.reason for e in paced} == {"throttle"}
    assert all(0 < e.delay < 5 for e in paced)
