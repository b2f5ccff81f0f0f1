"""Against a real server on 127.0.0.1: throughput, streaming memory, and outages.

The server (`_server.py`) runs in its own process; every client here talks to it over real
TCP sockets with httpx's own `HTTPTransport` / `AsyncHTTPTransport` as the inner transport.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from contextlib import AbstractContextManager, nullcontext
from time import perf_counter_ns
from typing import Any

import httpx
from _common import (
    NO_BUDGET,
    RESILIENCE,
    VARIANTS,
    Column,
    Scale,
    Table,
    async_transport,
    interleave,
    interleave_async,
    no_gc,
    summarise,
    sync_transport,
)
from _server import ServerProcess
from httpx_retries import Retry

from httpx_resilience import APIError
from httpx_resilience.testing import no_wait

__all__ = ["outage_section", "stream_section", "throughput_section"]

MB = 1_000_000


# No keep-alive expiry: between its batches a client sits idle while the other variants run,
# and httpx's default 5 s expiry would drop its connections and charge the reconnects to it.
_KEEP = httpx.Limits(keepalive_expiry=None)


def _sync_clients() -> dict[str, httpx.Client]:
    return {
        v: httpx.Client(transport=sync_transport(v, httpx.HTTPTransport(limits=_KEEP)))
        for v in VARIANTS
    }


def _async_clients(pool: int | None = None) -> dict[str, httpx.AsyncClient]:
    limits = _KEEP
    if pool is not None:
        limits = httpx.Limits(
            max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=None
        )
    return {
        v: httpx.AsyncClient(transport=async_transport(v, httpx.AsyncHTTPTransport(limits=limits)))
        for v in VARIANTS
    }


def _throughput_sync(server: ServerProcess, scale: Scale) -> dict[str, list[float]]:
    url = f"{server.base_url}/ok"
    clients = _sync_clients()

    def batch(variant: str, count: int = scale.loop_sync_batch) -> float:
        get = clients[variant].get
        with no_gc():
            start = perf_counter_ns()
            for _ in range(count):
                get(url)
            elapsed = perf_counter_ns() - start
        return count / (elapsed / 1e9)

    try:
        for variant, client in clients.items():
            client.get(url).raise_for_status()  # the connection is opened here, not in a round
            batch(variant, max(scale.loop_sync_batch // 4, 5))
        return interleave(VARIANTS, scale.loop_sync_rounds, batch)
    finally:
        for client in clients.values():
            client.close()


def _throughput_async(server: ServerProcess, scale: Scale) -> dict[str, list[float]]:
    url = f"{server.base_url}/ok"
    width = scale.concurrency

    async def run() -> dict[str, list[float]]:
        clients = _async_clients(scale.async_pool)

        async def batch(variant: str, count: int = scale.loop_async_batch) -> float:
            get = clients[variant].get
            each = max(count // width, 1)

            async def worker() -> None:
                for _ in range(each):
                    await get(url)

            with no_gc():
                start = perf_counter_ns()
                await asyncio.gather(*(worker() for _ in range(width)))
                elapsed = perf_counter_ns() - start
            return each * width / (elapsed / 1e9)

        try:
            for variant, client in clients.items():
                (await client.get(url)).raise_for_status()
                await batch(variant, width)  # opens the whole pool before the first round
            return await interleave_async(VARIANTS, scale.loop_async_rounds, batch)
        finally:
            for client in clients.values():
                await client.aclose()

    return asyncio.run(run())


def throughput_section(scale: Scale, server: ServerProcess) -> list[Table]:
    """Requests per second against the loopback server: sync sequential, async concurrent."""
    table = Table(
        "Loopback throughput (uvicorn + starlette in another process)",
        (
            Column("case", "case"),
            Column("variant", "variant"),
            Column("requests/s", "median", "{:,.0f}"),
            Column("IQR", "iqr", "{:,.0f}"),
            Column("× bare", "ratio", "{:.3f}"),
            Column("× bare IQR", "ratio_iqr", "{:.3f}"),
            Column("target", "target"),
            Column("result", "result"),
        ),
        note=(
            "`GET /ok` (small JSON) over kept-alive connections: "
            f"{scale.loop_sync_rounds} interleaved rounds of {scale.loop_sync_batch} sequential "
            f"requests (sync), {scale.loop_async_rounds} rounds of {scale.loop_async_batch} "
            f"requests {scale.concurrency} at a time (asyncio tasks sharing a pool of "
            f"{scale.async_pool} connections: httpcore's pool bookkeeping grows with the square "
            "of its size, and at 100 connections it, not the transports, is what gets "
            "measured). `× bare` is the median of per-round ratios. "
            "Target: httpx-resilience ≥ 0.98 × bare."
        ),
    )
    cases = (
        ("sync sequential", _throughput_sync),
        (f"async × {scale.concurrency} ({scale.async_pool} connections)", _throughput_async),
    )
    for case, run in cases:
        records = summarise(run(server, scale), case=case)
        mine = records[RESILIENCE]
        mine["target"] = "≥ 0.98 × bare"
        mine["result"] = mine["ratio"] >= 0.98
        table.records.extend(records.values())
    return [table]


def _peak_since(baseline: int) -> float:
    _, peak = tracemalloc.get_traced_memory()
    return (peak - baseline) / MB


def _stream_sync(server: ServerProcess, scale: Scale) -> dict[str, list[float]]:
    clients = _sync_clients()

    def batch(variant: str, size: int = scale.stream_bytes) -> float:
        url = f"{server.base_url}/stream?bytes={size}"
        gc.collect()
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received = 0
        with clients[variant].stream("GET", url) as response:
            for chunk in response.iter_raw():
                received += len(chunk)
        peak = _peak_since(baseline)
        if received != size:
            raise AssertionError(f"{variant}: streamed {received} of {size} bytes")
        return peak

    try:
        for variant in VARIANTS:
            batch(variant, MB)
        return interleave(VARIANTS, scale.stream_rounds, batch)
    finally:
        for client in clients.values():
            client.close()


def _stream_async(server: ServerProcess, scale: Scale) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        clients = _async_clients()

        async def batch(variant: str, size: int = scale.stream_bytes) -> float:
            url = f"{server.base_url}/stream?bytes={size}"
            gc.collect()
            baseline, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            received = 0
            async with clients[variant].stream("GET", url) as response:
                async for chunk in response.aiter_raw():
                    received += len(chunk)
            peak = _peak_since(baseline)
            if received != size:
                raise AssertionError(f"{variant}: streamed {received} of {size} bytes")
            return peak

        try:
            for variant in VARIANTS:
                await batch(variant, MB)
            return await interleave_async(VARIANTS, scale.stream_rounds, batch)
        finally:
            for client in clients.values():
                await client.aclose()

    return asyncio.run(run())


def stream_section(scale: Scale, server: ServerProcess) -> list[Table]:
    """Peak traced memory while a large body streams through each variant."""
    size_mb = scale.stream_bytes / MB
    table = Table(
        f"Streaming {scale.stream_bytes // 2**20} MiB through each variant: peak memory",
        (
            Column("case", "case"),
            Column("variant", "variant"),
            Column("peak MB", "median", "{:.3f}"),
            Column("added MB", "diff", "{:+.3f}"),
            Column("target", "target"),
            Column("result", "result"),
        ),
        note=(
            f"`client.stream('GET', ...)` over `iter_raw()` / `aiter_raw()`, {size_mb:,.0f} MB "
            "served in 64 KiB chunks; peak of `tracemalloc` above the memory in use when the "
            f"request starts, median of {scale.stream_rounds} interleaved rounds (MB = 10⁶ "
            "bytes). Target: httpx-resilience adds ≤ 1 MB."
        ),
    )
    tracemalloc.start()
    try:
        for mode, run in (("sync", _stream_sync), ("async", _stream_async)):
            records = summarise(run(server, scale), case=mode)
            mine = records[RESILIENCE]
            mine["target"] = "≤ +1 MB"
            mine["result"] = mine["diff"] <= 1.0
            table.records.extend(records.values())
    finally:
        tracemalloc.stop()
    return [table]


# httpx-resilience's default is 3 attempts; httpx-retries' `total` counts retries, so 2 makes
# the same 3. No backoff for either, so that the outage runs take no time waiting.
_RETRY = Retry(total=2, backoff_factor=0)
OUTAGES = (("full", "/outage/full"), ("20 %", "/outage/20"))
OUTAGE_VARIANTS = (*VARIANTS, NO_BUDGET)
# The retry budget's promise for a full outage: its 10 % share plus its reserve of 100 retries
# per 10 s window, which adds 0.1 x at 1,000 requests.
AMPLIFICATION_TARGET = 1.25
AMPLIFIED_AT = 1000


def _waits_skipped(variant: str) -> AbstractContextManager[None]:
    # `no_wait()` concerns httpx-resilience's default sleep only; the others need nothing.
    return no_wait() if variant in (RESILIENCE, NO_BUDGET) else nullcontext()


def _count(response: httpx.Response) -> tuple[int, int]:
    return (1, 0) if response.is_success else (0, 1)


def _outage_sync(server: ServerProcess, variant: str, path: str, count: int) -> tuple[int, int]:
    url = f"{server.base_url}{path}"
    ok = failed = 0
    transport = sync_transport(variant, httpx.HTTPTransport(), retry=_RETRY)
    with _waits_skipped(variant), httpx.Client(transport=transport) as client:
        for _ in range(count):
            try:
                good, bad = _count(client.get(url))
            except APIError:
                good, bad = 0, 1
            ok, failed = ok + good, failed + bad
    return ok, failed


def _outage_async(server: ServerProcess, variant: str, path: str, count: int) -> tuple[int, int]:
    url = f"{server.base_url}{path}"

    async def run() -> tuple[int, int]:
        ok = failed = 0
        transport = async_transport(variant, httpx.AsyncHTTPTransport(), retry=_RETRY)
        with _waits_skipped(variant):
            async with httpx.AsyncClient(transport=transport) as client:
                for _ in range(count):
                    try:
                        good, bad = _count(await client.get(url))
                    except APIError:
                        good, bad = 0, 1
                    ok, failed = ok + good, failed + bad
        return ok, failed

    return asyncio.run(run())


def outage_section(scale: Scale, server: ServerProcess) -> list[Table]:
    """What the server sees when it is down: attempts and TCP connections per variant."""
    count = scale.outage_requests
    table = Table(
        "Outages: what the server receives",
        (
            Column("outage", "outage"),
            Column("mode", "mode"),
            Column("variant", "variant"),
            Column("ok", "ok"),
            Column("failed", "failed"),
            Column("attempts", "attempts"),
            Column("attempts/request", "attempts_per_request", "{:.2f}"),
            Column("TCP connections", "connections"),
            Column("target", "target"),
            Column("result", "result"),
        ),
        note=(
            f"{count:,} sequential `GET`s per variant through one fresh client, counted by the "
            "server (connections = distinct client ports). `full`: every attempt gets a 503; "
            "`20 %`: every 5th attempt the server sees gets a 503. httpx-resilience under "
            "`no_wait()`, httpx-retries with `Retry(total=2, backoff_factor=0)`: 3 attempts "
            "each, nothing sleeps. httpx-resilience runs with its default retry budget (10 % "
            "of the requests of the last 10 s, plus 10 retries a second) and, for comparison, "
            "with `budget=None`. Targets: in the full outage httpx-resilience keeps one "
            f"connection per client and sends at most {AMPLIFICATION_TARGET} attempts per "
            "request."
        ),
    )
    runs = (("sync", _outage_sync), ("async", _outage_async))
    for outage, path in OUTAGES:
        for mode, run in runs:
            for variant in OUTAGE_VARIANTS:
                server.reset()
                start = perf_counter_ns()
                ok, failed = run(server, variant, path, count)
                seconds = (perf_counter_ns() - start) / 1e9
                attempts, connections = server.stats()
                record: dict[str, Any] = {
                    "outage": outage,
                    "mode": mode,
                    "variant": variant,
                    "requests": count,
                    "ok": ok,
                    "failed": failed,
                    "attempts": attempts,
                    "attempts_per_request": attempts / count,
                    "connections": connections,
                    "seconds": seconds,
                    "target": "",
                    "result": None,
                }
                if variant == RESILIENCE and outage == "full":
                    record["target"] = "1 connection"
                    record["result"] = connections == 1
                    if count >= AMPLIFIED_AT:
                        # Below that the reserve alone allows 3 attempts each: not judged.
                        record["target"] += f", ≤ {AMPLIFICATION_TARGET} × requests"
                        record["result"] = record["result"] and (
                            attempts <= AMPLIFICATION_TARGET * count
                        )
                table.records.append(record)
    return [table]
