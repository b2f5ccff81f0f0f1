"""Hooks run after the failed attempt gave its connection back: a hook that calls the same
client through a one-connection pool goes straight through (break-it round 2 on issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from httpx_resilience import ErrorPolicy, ServiceUnavailableError
from httpx_resilience.testing import no_wait

from ._support import Runner
from .conftest import LiveServer


def _a_failed_attempt(event: Any) -> bool:
    """An on_retry event, or on_event's "attempt", of a 503 that a retry follows (not the last
    of 3: handed back with raise_on_status=False, it holds its connection for the caller, as
    any response handed on does)."""
    kind = getattr(event, "kind", "attempt")  # a RetryEvent has no kind
    response = event.response
    return (
        kind == "attempt"
        and response is not None
        and response.status_code == 503
        and event.attempt < 3
    )


@pytest.mark.parametrize("hook", ["on_event", "on_retry"])
@pytest.mark.parametrize("cap", [65536, 10], ids=["body-read-whole", "body-over-the-cap"])
@pytest.mark.parametrize("raises", [True, False], ids=["raise", "hand-back"])
def test_a_hook_can_call_the_same_client(
    run: Runner, server: LiveServer, hook: str, cap: int, raises: bool
) -> None:
    """With max_connections=1 and a pool timeout of 1 s, on_event ("attempt" of a 503) and
    on_retry each send a request through the same client; nothing waits for the pool, also
    with raise_on_status=False (the last 503 handed back, its "attempt" heard before)."""
    inner_statuses: list[int] = []
    holder: dict[str, Any] = {}

    def sync_hook(event: Any) -> None:
        if _a_failed_attempt(event):
            inner_statuses.append(holder["client"].get(server.url("/echo")).status_code)

    async def async_hook(event: Any) -> None:
        if _a_failed_attempt(event):
            response = await holder["client"].get(server.url("/echo"))
            inner_statuses.append(response.status_code)

    async def scenario() -> None:
        limits = run.hx.httpx.Limits(max_connections=1)
        timeout = run.hx.httpx.Timeout(5.0, pool=1.0)
        inner = run.http_transport(limits=limits)
        transport = run.transport(
            inner,
            errors=ErrorPolicy(max_body_bytes=cap, raise_on_status=raises),
            **{hook: run.pick(sync_hook, async_hook)},
        )
        async with run.client(transport=transport, timeout=timeout) as client:
            holder["client"] = client.raw
            if raises:
                with pytest.raises(ServiceUnavailableError):
                    await client.get(server.url("/status/503"))
            else:
                assert (await client.get(server.url("/status/503"))).status_code == 503

    with no_wait():
        run(scenario)
    assert inner_statuses == [200, 200]
