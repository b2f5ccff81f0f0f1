"""The retry budget's outage curve: what a full outage costs the server, by the client's rate.

The transport's own code decides every attempt; only time is simulated. Each run drives one
`AsyncResilientTransport` over an `httpx.MockTransport` that answers every attempt with a 503
and counts it, inside an asyncio event loop whose clock is virtual: a wait (the backoff between
attempts, the gap between two requests) moves the clock on instead of sleeping, so a 60-second
outage takes a fraction of a second and the backoff stays in the simulation. The host's state
(`MemoryState`) and the transport (`_clock`) read that same clock.

The client starts a logical `GET` every 1/rate seconds, whatever the earlier ones are doing (a
request waiting out its backoff does not hold the next one back), and counts the attempts the
server received per logical request. The sync `ResilientTransport` runs the same arithmetic
with its waits skipped, as a cross-check.

A second table: how long one call can take with the defaults against a server that answers
503 with `Retry-After`, and that `RetryPolicy(timeout=...)` bounds it.

    python benchmarks/outage_curve.py            # both tables, printed
    python benchmarks/outage_curve.py --quick
"""

from __future__ import annotations

import asyncio
import random
import selectors
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from _common import FULL, QUICK, Column, Scale, Table

from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    CircuitBreaker,
    CircuitOpenError,
    MemoryState,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
)

__all__ = [
    "SETTINGS",
    "Setting",
    "VirtualClock",
    "expected_multiplier",
    "outage_curve_section",
    "run_outage",
    "run_outage_sync",
    "worst_case",
]

URL = "http://api.example/items"
SEED = 14  # the backoff's jitter is seeded: the tables do not move between runs
BODY = b'{"error": {"message": "the service is overloaded"}}'


@dataclass(frozen=True)
class Setting:
    """One way to configure the transport's per-host protection."""

    key: str  # the record key its multiplier is stored under
    header: str  # how a user writes it
    budget: RetryBudget | None
    breaker: CircuitBreaker | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("default", "default `RetryBudget()`", RetryBudget()),
    Setting("reserve_1", "`RetryBudget(min_per_second=1)`", RetryBudget(min_per_second=1.0)),
    Setting("reserve_0", "`RetryBudget(min_per_second=0)`", RetryBudget(min_per_second=0.0)),
    Setting("breaker", "default + `CircuitBreaker()`", RetryBudget(), CircuitBreaker()),
    Setting("no_budget", "`budget=None`", None),
)


def expected_multiplier(rate: float, budget: RetryBudget | None, max_attempts: int = 3) -> float:
    """What the budget's arithmetic predicts for a full outage at a steady `rate`.

    Each window of `budget.window` seconds allows `budget.reserve` retries plus `budget.ratio`
    of its requests; a request wants `max_attempts - 1` retries. So each logical request gets
    `min(max_attempts - 1, ratio + min_per_second / rate)` retries, on average, once the
    window is full.
    """
    wanted = max_attempts - 1
    if budget is None:
        return float(max_attempts)
    return 1 + min(wanted, budget.ratio + budget.min_per_second / rate)


class VirtualClock:
    """A monotonic clock that only moves when told to."""

    __slots__ = ("now",)

    def __init__(self, start: float = 1000.0) -> None:
        # Not 0: nothing in the code under test should depend on the clock's origin.
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, delay: float) -> None:
        """A `sleep=` for the sync transport: the wait passes on this clock, at once."""
        self.now += delay


class _VirtualSelector(selectors.SelectSelector):
    """A selector that never waits: asked to block for `timeout`, it moves the clock instead.

    Nothing in the simulation does I/O (the inner transport is a MockTransport), so the only
    reason the loop would block is a timer: jumping to it is exactly what the wait would do.
    """

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("virtual loop: nothing scheduled, it would wait for ever")
        if timeout > 0:
            self._clock.now += timeout
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose time is a `VirtualClock` (anyio's sleep and timers read it)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(_VirtualSelector(clock))
        self._virtual = clock

    def time(self) -> float:
        return self._virtual.now


def _run_virtual(make: Callable[[VirtualClock], Any]) -> Any:
    """`make(clock)`'s coroutine run to completion on a fresh virtual-time loop."""
    clock = VirtualClock()
    loop = _VirtualLoop(clock)
    try:
        return loop.run_until_complete(make(clock))
    finally:
        loop.close()


@dataclass(frozen=True)
class Outcome:
    """What one simulated outage produced."""

    requests: int  # logical requests the client made
    attempts: int  # attempts the server received
    budget_refused: int  # requests whose last retry the budget refused
    circuit_rejected: int  # requests the open circuit failed before any attempt
    simulated: float  # seconds of virtual time, first request to last answer

    @property
    def multiplier(self) -> float:
        return self.attempts / self.requests


def _answer(counter: list[int], headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        counter[0] += 1
        return httpx.Response(503, content=BODY, headers=headers)

    return httpx.MockTransport(handler)


def _tally(errors: Sequence[BaseException | None]) -> tuple[int, int]:
    refused = rejected = 0
    for error in errors:
        if isinstance(error, CircuitOpenError):
            rejected += 1
        elif isinstance(error, APIError):
            refused += bool(error.history) and error.history[-1].refused == "retry_budget"
        elif error is not None:
            raise error
    return refused, rejected


def run_outage(setting: Setting, rate: float, seconds: float) -> Outcome:
    """A client sending `rate` GETs a second through the async transport, for `seconds`,
    to a host that answers every attempt with a 503 (backoff waits pass on the virtual clock)."""
    count = round(rate * seconds)

    async def simulate(clock: VirtualClock) -> Outcome:
        served = [0]
        transport = AsyncResilientTransport(
            _answer(served),
            budget=setting.budget,
            breaker=setting.breaker,
            state=MemoryState(clock=clock),
        )
        transport._clock = clock  # the driver's deadlines and decisions read the same time
        transport._random = random.Random(SEED).random  # the same jitter, run after run
        began = clock.now

        async def one(index: int) -> BaseException | None:
            await asyncio.sleep(began + index / rate - clock.now)
            try:
                await transport.handle_async_request(httpx.Request("GET", URL))
            except APIError as error:
                return error
            return None

        tasks = [asyncio.ensure_future(one(index)) for index in range(count)]
        errors = await asyncio.gather(*tasks)
        refused, rejected = _tally(errors)
        return Outcome(count, served[0], refused, rejected, clock.now - began)

    outcome: Outcome = _run_virtual(simulate)
    return outcome


def run_outage_sync(setting: Setting, rate: float, seconds: float) -> Outcome:
    """The same outage through the sync transport, one request after another, waits skipped:
    each retry goes out the moment its attempt failed, and the clock moves between requests."""
    count = round(rate * seconds)
    clock = VirtualClock()
    served = [0]
    transport = ResilientTransport(
        _answer(served),
        budget=setting.budget,
        breaker=setting.breaker,
        state=MemoryState(clock=clock),
        sleep=lambda delay: None,
    )
    transport._clock = clock
    transport._random = random.Random(SEED).random
    began = clock.now
    errors: list[BaseException | None] = []
    for index in range(count):
        clock.now = began + index / rate
        try:
            transport.handle_request(httpx.Request("GET", URL))
        except APIError as error:
            errors.append(error)
        else:
            errors.append(None)
    refused, rejected = _tally(errors)
    return Outcome(count, served[0], refused, rejected, clock.now - began)


@dataclass(frozen=True)
class WorstCase:
    """One call against a host that answers every attempt with a 503 and `Retry-After`."""

    attempts: int
    waits: tuple[float, ...]
    elapsed: float  # virtual seconds from the call to its error
    error: str  # the error's class
    reason: str  # why no further retry followed, as the "give_up" event says


def worst_case(retry: RetryPolicy, retry_after: float) -> WorstCase:
    """One sync call with `retry`, every wait passing on a virtual clock."""
    clock = VirtualClock()
    served = [0]
    waits: list[float] = []
    reasons: list[str | None] = []

    def sleep(delay: float) -> None:
        waits.append(delay)
        clock.sleep(delay)

    transport = ResilientTransport(
        _answer(served, {"Retry-After": f"{retry_after:g}"}),
        retry=retry,
        state=MemoryState(clock=clock),
        sleep=sleep,
        on_event=lambda event: reasons.append(event.reason) if event.kind == "give_up" else None,
    )
    transport._clock = clock
    began = clock.now
    try:
        transport.handle_request(httpx.Request("GET", URL))
    except APIError as error:
        name = type(error).__name__
    else:  # pragma: no cover - a 503 every time cannot succeed
        raise AssertionError("a call against a full outage succeeded")
    return WorstCase(served[0], tuple(waits), clock.now - began, name, reasons[-1] or "")


# Retry-After values around the edges: the deadline's (30), max_retry_after's (120).
HINTS: tuple[float, ...] = (1, 10, 14, 15, 20, 29, 30, 60, 120, 121)
POLICIES: tuple[tuple[str, RetryPolicy], ...] = (
    ("default `RetryPolicy()`", RetryPolicy()),
    ("`RetryPolicy(timeout=30)`", RetryPolicy(timeout=30)),
)


def _curve_table(scale: Scale) -> tuple[Table, Table]:
    seconds = scale.curve_seconds
    curve = Table(
        f"Full outage, {seconds:g} s: attempts the server receives per logical request",
        (
            Column("requests/s", "rate"),
            Column(f"requests in {seconds:g} s", "requests"),
            *(Column(s.header, s.key, "{:.2f}") for s in SETTINGS),
            Column("default, predicted", "default_predicted", "{:.2f}"),
            Column("default, sync (no waits)", "default_sync", "{:.2f}"),
        ),
        note=(
            f"A client starts a `GET` every 1/rate s for {seconds:g} s against a host that "
            "answers every attempt with a 503 (default `RetryPolicy()`: 3 attempts, full-jitter "
            "backoff from 0.5 s). Measured: the real `AsyncResilientTransport` over an "
            "`httpx.MockTransport` that counts attempts, in an event loop on a virtual clock "
            "(backoff waits pass in simulated time; the budget and the breaker read that "
            "clock). `predicted`: 1 + min(2, ratio + min_per_second / rate), the budget's "
            "steady state (each 10 s window allows `min_per_second` × 10 retries plus `ratio` "
            "of its requests). `sync (no waits)`: the sync `ResilientTransport`, one request "
            "after another, each retry sent at once. The reserve (`min_per_second`) is what "
            "keeps a quiet client at 3 ×; to hold a client of at least r requests/s to m ×, "
            "set `min_per_second` ≤ (m − 1 − ratio) × r. At 0 only the 10 % share is left, "
            "and a client under 1 request/s (fewer than 10 in a window) never retries at all, "
            "not even after a lone transient failure. `CircuitBreaker()` opens "
            "once it has seen 100 attempts in 30 s (never at 1 request/s: 90 attempts), then "
            "lets one probe through every 5 s; requests it stops make no attempt (< 1 ×)."
        ),
    )
    detail = Table(
        "Full outage: what happened to the requests",
        (
            Column("requests/s", "rate"),
            Column("setting", "setting"),
            Column("requests", "requests"),
            Column("attempts", "attempts"),
            Column("attempts/request", "multiplier", "{:.3f}"),
            Column("budget refused a retry", "budget_refused"),
            Column("stopped by the open circuit", "circuit_rejected"),
            Column("simulated s", "simulated", "{:.1f}"),
        ),
        note="The async runs of the table above, one row per rate and setting.",
    )
    rates = scale.curve_rates
    for rate in rates:
        record: dict[str, Any] = {"rate": rate, "requests": round(rate * seconds)}
        for setting in SETTINGS:
            outcome = run_outage(setting, rate, seconds)
            record[setting.key] = outcome.multiplier
            detail.records.append(
                {
                    "rate": rate,
                    "setting": setting.header,
                    "requests": outcome.requests,
                    "attempts": outcome.attempts,
                    "multiplier": outcome.multiplier,
                    "budget_refused": outcome.budget_refused,
                    "circuit_rejected": outcome.circuit_rejected,
                    "simulated": outcome.simulated,
                }
            )
        record["default_predicted"] = expected_multiplier(rate, RetryBudget())
        record["default_sync"] = run_outage_sync(SETTINGS[0], rate, seconds).multiplier
        curve.records.append(record)
    return curve, detail


def _worst_table() -> Table:
    table = Table(
        "One call against a 503 with `Retry-After`: how long it can take",
        (
            Column("policy", "policy"),
            Column("Retry-After", "retry_after"),
            Column("attempts", "attempts"),
            Column("waits (s)", "waits"),
            Column("wall time (s)", "elapsed", "{:.0f}"),
            Column("raised", "error"),
            Column("reason", "reason"),
        ),
        note=(
            "The sync `ResilientTransport` with its default budget, over a MockTransport that "
            "answers every attempt with a 503 and the `Retry-After` shown; every wait passes "
            "on a virtual clock (`sleep=`), so the wall time is the waits the transport "
            "chose (the attempts themselves take no time here: on a real network each adds "
            "its own, bounded by the timeouts, which `timeout=` cuts to the time left). "
            "With the defaults (3 attempts, `max_retry_after=120`) the worst is 2 waits of "
            "120 s: 240 s. A hint above 120 s is not waited for at all. `timeout=30` "
            "refuses any wait that would end past the deadline."
        ),
    )
    for label, policy in POLICIES:
        for hint in HINTS:
            case = worst_case(policy, hint)
            table.records.append(
                {
                    "policy": label,
                    "retry_after": hint,
                    "attempts": case.attempts,
                    "waits": " + ".join(f"{w:g}" for w in case.waits) or "none",
                    "wait_list": list(case.waits),
                    "elapsed": case.elapsed,
                    "error": case.error,
                    "reason": case.reason,
                }
            )
    return table


def outage_curve_section(scale: Scale) -> list[Table]:
    """The outage curve by rate and setting, and the worst-case time of one call."""
    curve, detail = _curve_table(scale)
    return [curve, detail, _worst_table()]


def main(argv: list[str] | None = None) -> int:
    from _report import table_markdown

    args = sys.argv[1:] if argv is None else argv
    began = time.perf_counter()
    for table in outage_curve_section(QUICK if "--quick" in args else FULL):
        print(table_markdown(table))
    print(f"{time.perf_counter() - began:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
