"""Memory stays bounded however large a body is: error bodies capped, 2xx bodies streamed.

`tracemalloc` traces every thread of the process, the in-process uvicorn server's included, so
the peaks below are an upper bound on what the client spent. Each test measures from a
baseline taken just before its request, after the client and its SSL context were built.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from _support import flavour
from httpx_resilience import ErrorPolicy, InternalServerError

from ._support import Runner
from .conftest import LiveServer

MB = 1024 * 1024
ERROR_SIZE = 100 * MB
# /stream sends `chunks` pieces of 64 KiB: 800 of them make 50 MiB.
STREAM_CHUNK = 65536
STREAM_CHUNKS = 800
STREAM_SIZE = STREAM_CHUNK * STREAM_CHUNKS
STREAM_BOUND = 4 * MB
# The default cap, and a larger one a user might choose for big error pages.
CAPS = [65536, 4 * MB]
CAP_IDS = ["64KiB", "4MiB"]


@pytest.fixture
def run(mode: str) -> Runner:
    """Every mode, through httpx alone, as these bounds were always measured."""
    return Runner(mode, flavour("httpx"))


class Peak:
    """The highest traced memory above the baseline, once the block is done."""

    value = 0


@contextmanager
def traced() -> Iterator[Peak]:
    """Trace allocations in the block; `Peak.value` is its peak above where it started."""
    peak = Peak()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        yield peak
        _, top = tracemalloc.get_traced_memory()
        peak.value = top - baseline
    finally:
        tracemalloc.stop()


def _error_bound(cap: int) -> int:
    return cap * 4 + 2 * MB


def _check_error(err: InternalServerError, cap: int, peak: int, server: LiveServer) -> None:
    bound = _error_bound(cap)
    assert peak < bound, f"peak {peak:,} B over the bound {bound:,} B (max_body_bytes={cap:,})"
    assert err.body is not None
    assert 0 < len(err.body) <= cap
    # A GET meeting 500 is tried 3 times; each time the client hung up and the server stopped
    # long before its 100 MB were through (what it sent is the cap plus socket buffers).
    assert err.attempts == 3
    sent = server.sent("big-error")
    assert sent < ERROR_SIZE // 2, f"the server pushed {sent:,} B in 3 attempts: it did not stop"


def _big_error(server: LiveServer) -> str:
    return server.url("/big-error", size=ERROR_SIZE)


def _stream_url(server: LiveServer) -> str:
    return server.url("/stream", chunks=STREAM_CHUNKS, size=STREAM_CHUNK)


def _check_stream(received: int, peak: int, server: LiveServer) -> None:
    assert received == STREAM_SIZE
    assert server.sent("stream") == STREAM_SIZE
    assert peak < STREAM_BOUND, (
        f"peak {peak:,} B over the bound {STREAM_BOUND:,} B for a {STREAM_SIZE:,} B body"
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize("cap", CAPS, ids=CAP_IDS)
def test_huge_error_body_bounded(run: Runner, server: LiveServer, cap: int) -> None:
    """A 100 MB error body costs at most max_body_bytes * 4 + 2 MB of memory."""

    async def scenario() -> None:
        transport = run.transport(errors=ErrorPolicy(max_body_bytes=cap))
        async with run.client(transport, timeout=10) as client:
            started = time.monotonic()
            with traced() as peak, pytest.raises(InternalServerError) as excinfo:
                await client.get(_big_error(server))
        assert time.monotonic() - started < 10
        _check_error(excinfo.value, cap, peak.value, server)

    run(scenario)


@pytest.mark.timeout(30)
def test_big_2xx_body_streamed(run: Runner, server: LiveServer) -> None:
    """A 50 MiB 2xx body iterated through the transport is never buffered by it."""

    async def scenario() -> None:
        received = 0
        async with run.client(timeout=10) as client:
            with traced() as peak:
                async with client.stream("GET", _stream_url(server)) as response:
                    assert response.status_code == 200
                    async for chunk in client.iter_raw(response):
                        received += len(chunk)
        _check_stream(received, peak.value, server)

    run(scenario)
