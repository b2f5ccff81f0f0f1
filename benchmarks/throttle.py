"""Adaptive throttling against a rate-limited server: 50 callers at once, the throttle off and on.

The loopback server (`_server.py`, in its own process) allows `RATE` requests a second on
`/limited` (a token bucket holding a second's worth) and answers a bare 429 beyond: no
Retry-After, no rate-limit header, so pacing has nothing to go by. `CALLERS` asyncio tasks
share one `AsyncResilientTransport` with the default policies (3 attempts, backoff, the retry
budget); each starts its next call as soon as its last one ended, until `seconds` are over
(calls under way then are finished, and counted). Then the same with
`throttle=AdaptiveThrottle()`. The transport sleeps for real.

What the server saw is counted by the server: attempts answered 200 and 429. Goodput is the
200s a second over the whole run; a call "failed" when it raised (a `RateLimitError` after its
attempts, or one whose retry the budget refused).

    python benchmarks/throttle.py            # 10 s per variant
    python benchmarks/throttle.py --quick    # 1.5 s per variant
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import httpx
from _common import FULL, QUICK, Column, Scale, Table
from _server import ServerProcess

from httpx_resilience import AdaptiveThrottle, APIError, AsyncResilientTransport

__all__ = ["CALLERS", "RATE", "run_variant", "throttle_section"]

CALLERS = 50
RATE = 50  # requests a second the server allows
VARIANTS: dict[str, AdaptiveThrottle | None] = {
    "throttle off (default)": None,
    "throttle=AdaptiveThrottle()": AdaptiveThrottle(),
}


async def _callers(url: str, seconds: float, throttle: AdaptiveThrottle | None) -> dict[str, Any]:
    transport = AsyncResilientTransport(
        throttle=throttle,
        # One connection per caller, all kept: no reconnects in either variant.
        limits=httpx.Limits(max_connections=CALLERS, max_keepalive_connections=CALLERS),
    )
    latencies: list[float] = []
    failed = 0
    begun = time.perf_counter()
    deadline = begun + seconds

    async def caller(client: httpx.AsyncClient) -> None:
        nonlocal failed
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                response = await client.get(url)
                await response.aread()
            except APIError:
                failed += 1
            else:
                latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        await asyncio.gather(*(caller(client) for _ in range(CALLERS)))
    elapsed = time.perf_counter() - begun
    ordered = sorted(latencies)
    return {
        "calls": len(latencies) + failed,
        "ok_calls": len(latencies),
        "failed_calls": failed,
        "elapsed": elapsed,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else float("nan"),
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000 if ordered else float("nan"),
    }


def run_variant(
    server: ServerProcess, throttle: AdaptiveThrottle | None, seconds: float
) -> dict[str, Any]:
    """One run against a freshly reset server: what the callers saw and the server counted."""
    server.reset()
    url = f"{server.base_url}/limited?rate={RATE}"
    record = asyncio.run(_callers(url, seconds, throttle))
    ok, refused = server.limited()
    attempts = ok + refused
    calls = record["calls"]
    record.update(
        attempts=attempts,
        answered_429=refused,
        share_429=refused / attempts if attempts else float("nan"),
        goodput=ok / record["elapsed"],
        failed_share=record["failed_calls"] / calls if calls else float("nan"),
    )
    return record


def throttle_section(scale: Scale, server: ServerProcess) -> list[Table]:
    """The throttle off and on, `scale.throttle_seconds` each."""
    seconds = scale.throttle_seconds
    table = Table(
        f"{CALLERS} callers against a server allowing {RATE} requests a second",
        (
            Column("variant", "variant"),
            Column("attempts", "attempts"),
            Column("answered 429", "share_429", "{:.1%}"),
            Column("goodput (2xx/s)", "goodput", "{:.1f}"),
            Column("calls", "calls"),
            Column("calls failed", "failed_share", "{:.1%}"),
            Column("call p50 (ms)", "p50_ms", "{:.0f}"),
            Column("call p95 (ms)", "p95_ms", "{:.0f}"),
            Column("seconds", "elapsed", "{:.1f}"),
        ),
        note=(
            f"{CALLERS} asyncio tasks share one `AsyncResilientTransport` (default policies: 3 "
            "attempts, backoff, retry budget), each calling again as soon as its last call "
            f"ended, for {seconds:g} s (calls under way then finish). The server (its own "
            f"process) allows {RATE} requests a second (a token bucket holding a second's "
            "worth) and answers a bare 429 beyond, with no Retry-After or rate-limit header. "
            "Attempts and 429s as the server counted them; goodput: 200s a second over the "
            "run; a call failed when it raised (a `RateLimitError` after its attempts, or a "
            "retry the budget refused)."
        ),
    )
    for variant, throttle in VARIANTS.items():
        table.records.append({"variant": variant, **run_variant(server, throttle, seconds)})
    return [table]


def main(argv: list[str]) -> int:
    from _report import table_markdown

    scale = QUICK if "--quick" in argv else FULL
    with ServerProcess() as server:
        for table in throttle_section(scale, server):
            print(table_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
