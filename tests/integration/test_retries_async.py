"""The retry engine against a real server, where only a coroutine can go: cancelled in a wait.

Every other retry scenario runs in all three modes in `test_retries.py`.
"""

from __future__ import annotations

import time

import anyio
import pytest

from ._support import Runner
from .conftest import SCRIPTS, LiveServer, new_id


@pytest.mark.parametrize("mode", ["asyncio", "trio"])
def test_cancel_during_retry_wait(run: Runner, server: LiveServer) -> None:
    """Cancelling during a 5 s Retry-After wait ends the call promptly and leaks no connection."""

    async def scenario() -> None:
        sid = new_id()
        inner = run.http_transport(limits=run.hx.httpx.Limits(max_connections=1))
        transport = run.transport(inner, sleep=anyio.sleep)
        timeout = run.hx.httpx.Timeout(5.0, pool=1.0)
        async with run.client(transport, timeout=timeout) as client:
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

    run(scenario)
