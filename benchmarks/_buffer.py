"""`buffer=`: what reading a success body before handing it on costs, in memory and in speed.

Three variants against the loopback server: the bare transport, httpx-resilience as it is by
default (the body handed on unread), and httpx-resilience with `buffer=1 MiB`.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from time import perf_counter_ns

import httpx
from _common import BARE, RESILIENCE, Column, Scale, Table, interleave, no_gc, summarise
from _server import ServerProcess

from httpx_resilience import ResilientTransport

__all__ = ["buffer_section"]

MB = 1_000_000
MIB = 1_048_576
BUFFERED = "httpx-resilience, buffer=1 MiB"
VARIANTS = (BARE, RESILIENCE, BUFFERED)
_KEEP = httpx.Limits(keepalive_expiry=None)


def _clients() -> dict[str, httpx.Client]:
    def inner() -> httpx.HTTPTransport:
        return httpx.HTTPTransport(limits=_KEEP)

    return {
        BARE: httpx.Client(transport=inner()),
        RESILIENCE: httpx.Client(transport=ResilientTransport(inner())),
        BUFFERED: httpx.Client(transport=ResilientTransport(inner(), buffer=MIB)),
    }


def _peak_of(action: Callable[[], int], size: int) -> float:
    """Peak traced MB above what was in use before `action`, which returns the bytes it got."""
    gc.collect()
    baseline, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    received = action()
    _, peak = tracemalloc.get_traced_memory()
    if received != size:
        raise AssertionError(f"got {received} of {size} bytes")
    return (peak - baseline) / MB


def _memory(server: ServerProcess, scale: Scale, table: Table) -> None:
    clients = _clients()
    rounds = max(scale.stream_rounds, 3)

    def read_whole(variant: str, size: int) -> float:
        url = f"{server.base_url}/stream?bytes={size}"
        return _peak_of(lambda: len(clients[variant].get(url).content), size)

    def stream_past(variant: str, size: int) -> float:
        url = f"{server.base_url}/stream?bytes={size}"

        def action() -> int:
            received = 0
            with clients[variant].stream("GET", url) as response:
                for chunk in response.iter_raw():
                    received += len(chunk)
            return received

        return _peak_of(action, size)

    cases: list[tuple[str, Callable[[str, int], float], int]] = [
        ("client.get, 64 KiB body", read_whole, 64 * 1024),
        ("client.get, 1 MiB body", read_whole, MIB),
        ("client.stream, 8 MiB body (over the buffer)", stream_past, 8 * MIB),
    ]
    tracemalloc.start()
    try:
        for case, measure, size in cases:
            for variant in VARIANTS:
                measure(variant, size)  # connections opened outside the rounds
            samples = interleave(
                VARIANTS,
                rounds,
                lambda variant, measure=measure, size=size: measure(variant, size),  # type: ignore[misc]
            )
            table.records.extend(summarise(samples, case=case).values())
    finally:
        tracemalloc.stop()
        for client in clients.values():
            client.close()


def _throughput(server: ServerProcess, scale: Scale, table: Table) -> None:
    clients = _clients()
    count = scale.loop_sync_batch

    def batch(variant: str, url: str) -> float:
        get = clients[variant].get
        with no_gc():
            start = perf_counter_ns()
            for _ in range(count):
                get(url).read()
            elapsed = perf_counter_ns() - start
        return count / (elapsed / 1e9)

    try:
        for case, path in (
            ("GET /ok (small JSON)", "/ok"),
            ("GET a 256 KiB body", "/stream?bytes=262144"),
        ):
            url = f"{server.base_url}{path}"
            for variant in VARIANTS:
                batch(variant, url)
            samples = interleave(
                VARIANTS,
                scale.loop_sync_rounds,
                lambda variant, url=url: batch(variant, url),  # type: ignore[misc]
            )
            table.records.extend(summarise(samples, case=case).values())
    finally:
        for client in clients.values():
            client.close()


def buffer_section(scale: Scale, server: ServerProcess) -> list[Table]:
    """Peak memory and loopback throughput with `buffer=1 MiB`, against the bare transport."""
    memory = Table(
        "buffer=1 MiB: peak memory of one request",
        (
            Column("case", "case"),
            Column("variant", "variant"),
            Column("peak MB", "median", "{:.3f}"),
            Column("added MB", "diff", "{:+.3f}"),
        ),
        note=(
            "Peak of `tracemalloc` above the memory in use when the request starts, median of "
            f"{max(scale.stream_rounds, 3)} interleaved rounds (MB = 10⁶ bytes). `client.get` "
            "reads the body whole, so the bare transport already holds it twice (httpx joins "
            "its chunks); the buffer keeps the chunks as they came and adds no copy. A body "
            "over the buffer is handed on streaming after the part read: what it adds is the "
            "buffer, once."
        ),
    )
    speed = Table(
        "buffer=1 MiB: loopback throughput (sync, sequential, kept-alive)",
        (
            Column("case", "case"),
            Column("variant", "variant"),
            Column("requests/s", "median", "{:,.0f}"),
            Column("× bare", "ratio", "{:.3f}"),
            Column("× bare IQR", "ratio_iqr", "{:.3f}"),
        ),
        note=(
            f"{scale.loop_sync_rounds} interleaved rounds of {scale.loop_sync_batch} requests, "
            "each body read whole by the caller; `× bare` is the median of per-round ratios."
        ),
    )
    _memory(server, scale, memory)
    _throughput(server, scale, speed)
    return [memory, speed]
