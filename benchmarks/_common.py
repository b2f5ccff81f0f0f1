"""What every section shares: the variants, the interleaved timing loop, statistics, tables.

Timing discipline, everywhere:

- Variants are interleaved round by round (round-robin within a round, the starting variant
  rotated from one round to the next), so drift in the machine — frequency scaling, a noisy
  neighbour, the page cache — hits every variant alike instead of whichever ran last.
- Each variant is warmed up before the first round: lazy imports, caches and connection set-up
  are not what we measure.
- The garbage collector is collected before and disabled during each timed batch: a collection
  landing in one variant's batch is noise of the size we are trying to measure.
- Comparisons with the bare transport are paired by round (the median of the per-round
  differences or ratios), which cancels drift that a difference of medians would keep.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_retries import Retry, RetryTransport

from httpx_resilience import AsyncResilientTransport, ResilientTransport

__all__ = [
    "BARE",
    "FULL",
    "NO_BUDGET",
    "PASS",
    "QUICK",
    "RESILIENCE",
    "RETRIES",
    "VARIANTS",
    "AsyncPassThrough",
    "Column",
    "Paired",
    "PassThrough",
    "Scale",
    "Section",
    "Table",
    "async_transport",
    "interleave",
    "interleave_async",
    "iqr",
    "no_gc",
    "paired",
    "summarise",
    "sync_transport",
]

BARE = "bare"
PASS = "pass-through"
RESILIENCE = "httpx-resilience"
RETRIES = "httpx-retries"
VARIANTS: tuple[str, ...] = (BARE, PASS, RESILIENCE, RETRIES)
# httpx-resilience with its retry budget turned off: the outage section shows what the
# budget (on by default) saves the server.
NO_BUDGET = "httpx-resilience, budget=None"


class PassThrough(httpx.BaseTransport):
    """One extra call and nothing else: the floor any wrapping transport starts from."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class AsyncPassThrough(httpx.AsyncBaseTransport):
    """The async floor."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def sync_transport(
    variant: str, inner: httpx.BaseTransport, retry: Retry | None = None
) -> httpx.BaseTransport:
    """`inner` as `variant` wraps it; `retry` configures httpx-retries (default `Retry()`)."""
    if variant == BARE:
        return inner
    if variant == PASS:
        return PassThrough(inner)
    if variant == RESILIENCE:
        return ResilientTransport(inner)
    if variant == NO_BUDGET:
        return ResilientTransport(inner, budget=None)
    if variant == RETRIES:
        return RetryTransport(transport=inner, retry=retry)
    raise ValueError(f"unknown variant {variant!r}")


def async_transport(
    variant: str, inner: httpx.AsyncBaseTransport, retry: Retry | None = None
) -> httpx.AsyncBaseTransport:
    """The async counterpart of `sync_transport`."""
    if variant == BARE:
        return inner
    if variant == PASS:
        return AsyncPassThrough(inner)
    if variant == RESILIENCE:
        return AsyncResilientTransport(inner)
    if variant == NO_BUDGET:
        return AsyncResilientTransport(inner, budget=None)
    if variant == RETRIES:
        return RetryTransport(transport=inner, retry=retry)
    raise ValueError(f"unknown variant {variant!r}")


@contextmanager
def no_gc() -> Iterator[None]:
    """Collect now, then keep the collector out of the timed region."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _order(variants: Sequence[str], round_index: int) -> list[str]:
    shift = round_index % len(variants)
    return [*variants[shift:], *variants[:shift]]


def interleave(
    variants: Sequence[str], rounds: int, batch: Callable[[str], float]
) -> dict[str, list[float]]:
    """`batch(variant)` for every variant in every round: the results by variant, in order."""
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for index in range(rounds):
        for variant in _order(variants, index):
            samples[variant].append(batch(variant))
    return samples


async def interleave_async(
    variants: Sequence[str], rounds: int, batch: Callable[[str], Awaitable[float]]
) -> dict[str, list[float]]:
    """`interleave` for batches that are coroutines (one event loop for all rounds)."""
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for index in range(rounds):
        for variant in _order(variants, index):
            samples[variant].append(await batch(variant))
    return samples


def iqr(values: Sequence[float]) -> float:
    """Interquartile range: how much the rounds disagree (0 with fewer than two)."""
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


@dataclass(frozen=True)
class Paired:
    """A variant's samples summarised, and compared with the bare ones of the same rounds."""

    median: float
    spread: float  # IQR of the samples
    diff: float  # median over rounds of (variant - bare)
    diff_spread: float  # IQR of those differences
    ratio: float  # median over rounds of variant / bare
    ratio_spread: float  # IQR of those ratios


def paired(samples: Sequence[float], bare: Sequence[float]) -> Paired:
    diffs = [s - b for s, b in zip(samples, bare, strict=True)]
    ratios = [s / b for s, b in zip(samples, bare, strict=True) if b]
    return Paired(
        median=statistics.median(samples),
        spread=iqr(samples),
        diff=statistics.median(diffs),
        diff_spread=iqr(diffs),
        ratio=statistics.median(ratios) if ratios else float("nan"),
        ratio_spread=iqr(ratios),
    )


@dataclass(frozen=True)
class Column:
    """One column of a table: its header, the record key it shows, and a format for it."""

    header: str
    key: str
    fmt: str = "{}"


@dataclass
class Table:
    """Records (JSON-ready dicts) and the columns of them the Markdown shows."""

    title: str
    columns: Sequence[Column]
    records: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class Section:
    """What one section produced, and how long it took."""

    name: str
    title: str
    tables: list[Table]
    seconds: float = 0.0


def summarise(samples: dict[str, list[float]], **fields: Any) -> dict[str, dict[str, Any]]:
    """One record per variant: `fields`, the median and IQR of its samples, its paired
    difference (`diff`, `diff_iqr`) and ratio to the bare transport's samples, and its paired
    difference to the pass-through wrapper's (`floor_diff`: the cost above one extra call)."""
    bare, floor = samples[BARE], samples.get(PASS)
    records: dict[str, dict[str, Any]] = {}
    for variant, values in samples.items():
        stats = paired(values, bare)
        above_floor = paired(values, floor).diff if floor is not None else None
        records[variant] = {
            **fields,
            "variant": variant,
            "median": stats.median,
            "iqr": stats.spread,
            "diff": stats.diff,
            "diff_iqr": stats.diff_spread,
            "ratio": stats.ratio,
            "ratio_iqr": stats.ratio_spread,
            "floor_diff": above_floor,
            "target": "",
            "result": None,
            "samples": values,
        }
    return records


@dataclass(frozen=True)
class Scale:
    """How much work each section does: the full run's, or `--quick`'s smoke-test counts."""

    direct_rounds: int  # rounds of interleaved batches of direct transport calls
    direct_batch: int  # calls per batch
    client_rounds: int
    client_batch: int
    error_rounds: int
    error_batch: int
    loop_sync_rounds: int  # loopback throughput
    loop_sync_batch: int  # sequential requests per batch
    loop_async_rounds: int
    loop_async_batch: int  # requests per batch, `concurrency` at a time
    concurrency: int  # requests in flight at once (asyncio tasks)
    async_pool: int  # connections they share
    stream_rounds: int
    stream_bytes: int
    outage_requests: int  # logical requests per variant and outage
    curve_seconds: float  # simulated length of each outage of the outage curve
    curve_rates: tuple[int, ...]  # the client's requests per second, one outage each
    throttle_seconds: float  # how long the callers of each throttle variant keep calling
    import_runs: int  # fresh interpreters per module


# Many short rounds rather than a few long ones: a pre-emption or a burst of load lands in a
# few rounds, which the median drops, instead of in one long batch of one variant.
FULL = Scale(
    direct_rounds=151,
    direct_batch=100,
    client_rounds=101,
    client_batch=50,
    error_rounds=101,
    error_batch=30,
    loop_sync_rounds=51,
    loop_sync_batch=100,
    loop_async_rounds=15,
    loop_async_batch=200,
    concurrency=100,
    # Not 100: httpcore's async pool scans every connection (and polls each idle socket) for
    # every request it places, so the client's cost per request grows with the square of the
    # pool. With 100 connections that is ~25 ms of CPU per request on a small VM, and the
    # figure would measure httpcore's pool, not the transports wrapped around it.
    async_pool=10,
    stream_rounds=3,
    stream_bytes=200 * 1024 * 1024,
    outage_requests=1000,
    curve_seconds=60.0,
    curve_rates=(1, 2, 5, 10, 20, 50, 100),
    throttle_seconds=10.0,
    import_runs=21,
)
QUICK = Scale(
    direct_rounds=3,
    direct_batch=20,
    client_rounds=3,
    client_batch=20,
    error_rounds=3,
    error_batch=10,
    loop_sync_rounds=2,
    loop_sync_batch=10,
    loop_async_rounds=2,
    loop_async_batch=100,
    concurrency=100,
    async_pool=10,
    stream_rounds=1,
    stream_bytes=4 * 1024 * 1024,
    outage_requests=20,
    # The whole outage (a shorter one would not fill the budget's window for long), at the
    # three rates the issue quotes: the cost grows with the rate, ~1.5 s for these.
    curve_seconds=60.0,
    curve_rates=(1, 10, 20),
    throttle_seconds=1.5,
    import_runs=3,
)
