"""Per-host protection beyond one request: the retry budget, the circuit breaker, pacing.

Retries help one request and can sink a struggling server: with three attempts, an outage
triples the load. The rules here bound that across all the requests to one host:

* `RetryBudget` (on by default): retries may add at most `ratio` of the requests of the last
  `window` seconds, plus a reserve of `min_per_second` retries per second so a quiet client
  still retries. The shape of Finagle's retry budget; the 10 % share is the one the Google SRE
  book recommends.
* `CircuitBreaker` (opt-in): when at least `failure_ratio` of at least `min_calls` attempts in
  `window` seconds failed, the host's circuit opens for `open_for` seconds and requests fail at
  once with `CircuitOpenError`; then one probe is let through, and its outcome closes the
  circuit or opens it again. Polly's defaults.
* Pacing (opt-in): when a response says the host's rate-limit window is spent, later requests
  to that host wait for it to reopen instead of being sent to be rejected.
* `AdaptiveThrottle` (opt-in): once the host throttles (a 429 or 503, with or without a hint),
  attempts to it take tokens from a bucket whose rate adapts, botocore's adaptive mode
  (`_throttle.py`).

Where the counts live is a `State`: `MemoryState` (one process, the default) or `RedisState`
(a fleet of processes, `httpx-resilience[redis]`). A state answers three questions, each in
one step (one lock, or one Lua script): `before` an attempt (deposit, may it go, how long to
wait; a retry the circuit stops gets its budget back), `after` it (the breaker's count, the
pacing pause, the throttle's rate), and `spend` (may this retry go). Times are passed as
durations, never as clock readings: each state keeps its own clock, so processes on machines
whose clocks disagree still share one view.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import httpx

from ._classify import classify_exception
from ._errors import APIError, CircuitOpenError, StatusError, TransportError
from ._headers import mentions_rate_limit, parse_rate_limit, parse_retry_after
from ._policies import AdaptiveThrottle, CircuitBreaker, RetryBudget
from ._throttle import HORIZON, METER_WINDOW, Limit, measured_rate

__all__ = [
    "CLEAR",
    "MAX_PAUSE",
    "NO_RULES",
    "AsyncStore",
    "MemoryState",
    "Rules",
    "State",
    "Store",
    "Verdict",
    "host_key",
    "is_failure_status",
    "is_throttling_status",
    "outcome_of",
    "pause_of",
]

# Each window is kept as this many slots, so it slides in steps of a tenth of its length.
SLOTS = 10
# The longest a host is ever paced: a day, the longest rate-limit window APIs commonly have.
# A reset read wrong or a server asking for years must neither stall a host for ages nor keep
# its state (in memory or in Redis) alive as long.
MAX_PAUSE = 86_400.0


@dataclass(frozen=True, slots=True)
class Rules:
    """What a transport enforces per host; `None` / False for what is off."""

    budget: RetryBudget | None
    breaker: CircuitBreaker | None
    pacing: bool
    throttle: AdaptiveThrottle | None = None
    # Worked out once: every request asks.
    active: bool = field(init=False)  # anything on at all
    watches: bool = field(init=False)  # attempts' outcomes must be reported (`after`)

    def __post_init__(self) -> None:
        watches = self.breaker is not None or self.pacing or self.throttle is not None
        object.__setattr__(self, "watches", watches)
        object.__setattr__(self, "active", watches or self.budget is not None)


class Verdict(NamedTuple):
    """A state's answer before an attempt.

    `open_for`: the circuit is open (or its probe is out) for this many more seconds, so the
    attempt must not be made; `None` when it may. `pace`: seconds to wait before the attempt
    (0 for none): until the host's rate-limit window reopens, or until the throttle's token
    this attempt reserved is due, whichever is later. `probe`: this attempt is the half-open
    probe. `change`: the breaker state this call moved the circuit to ("half_open"), if any.
    `throttled`: the pace is the throttle's. `again`: the throttle's token is further off than
    the attempt may reserve ahead (`ahead`): none was reserved, and it asks again after `pace`.
    `reserved`: the attempt took a throttle token, which it gives back if it is not sent.
    """

    open_for: float | None = None
    pace: float = 0.0
    probe: bool = False
    change: str | None = None
    throttled: bool = False
    again: bool = False
    reserved: bool = False


CLEAR = Verdict()


NO_RULES = Rules(budget=None, breaker=None, pacing=False)


class Store(Protocol):
    """The synchronous face of a state, as the sync transport uses it.

    `before`: `first` for a request's first attempt (the budget counts it), `refund` for a
    retry that spent the budget, `patience` the longest this attempt would wait for the
    throttle's token (it reserves none it would not wait for), `ahead` how far ahead it may
    reserve one (further off, it is told to ask again). `after`: the attempt's outcome
    as `outcome_of` counts it, whether it was the probe, and `age`, the seconds since the
    attempt was sent (the throttle cuts once for the attempts sent before a cut).
    """

    def before(
        self,
        host: str,
        rules: Rules,
        first: bool,
        refund: bool = False,
        patience: float = math.inf,
        ahead: float = HORIZON,
    ) -> Verdict: ...

    def after(
        self,
        host: str,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None = None,
        age: float = 0.0,
    ) -> str | None: ...

    def spend(self, host: str, rules: Rules) -> bool: ...

    def give_back(self, host: str, rules: Rules) -> None: ...


class AsyncStore(Protocol):
    """The asynchronous face of a state, as the async transport uses it (see `Store`)."""

    async def before(
        self,
        host: str,
        rules: Rules,
        first: bool,
        refund: bool = False,
        patience: float = math.inf,
        ahead: float = HORIZON,
    ) -> Verdict: ...

    async def after(
        self,
        host: str,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None = None,
        age: float = 0.0,
    ) -> str | None: ...

    async def spend(self, host: str, rules: Rules) -> bool: ...

    async def give_back(self, host: str, rules: Rules) -> None: ...


class State(Protocol):
    """Where the per-host counts live; gives a transport the face it needs."""

    def sync_store(self) -> Store: ...

    def async_store(self) -> AsyncStore: ...


class _Window:
    """Two counters over a sliding window kept as `SLOTS` slots of `window / SLOTS` seconds."""

    __slots__ = ("_cells", "_width")

    def __init__(self, window: float) -> None:
        self._width = window / SLOTS
        self._cells: dict[int, list[int]] = {}

    def add(self, now: float, first: int, second: int) -> None:
        slot = int(now / self._width)
        cell = self._cells.get(slot)
        if cell is None:
            oldest = slot - SLOTS + 1
            for stale in [s for s in self._cells if s < oldest]:
                del self._cells[stale]
            cell = self._cells[slot] = [0, 0]
        cell[0] += first
        cell[1] += second

    def refund(self, now: float) -> None:
        """Take one back from the second count, in the newest slot of the window that has one.

        What a retry spent, given back; with none in the window (its spend has slid out
        already) there is nothing to give back, and no count ever goes below 0.
        """
        oldest = int(now / self._width) - SLOTS + 1
        newest = None
        for slot, cell in self._cells.items():
            if slot >= oldest and cell[1] > 0 and (newest is None or slot > newest):
                newest = slot
        if newest is not None:
            self._cells[newest][1] -= 1

    def sums(self, now: float) -> tuple[int, int]:
        oldest = int(now / self._width) - SLOTS + 1
        first = second = 0
        for slot, (a, b) in self._cells.items():
            if slot >= oldest:
                first += a
                second += b
        return first, second

    @property
    def length(self) -> float:
        """The window's length in seconds."""
        return self._width * SLOTS

    def empty(self, now: float) -> bool:
        """Whether nothing is counted in the window any more."""
        oldest = int(now / self._width) - SLOTS + 1
        return not any(slot >= oldest and (a or b) for slot, (a, b) in self._cells.items())

    def clear(self) -> None:
        self._cells.clear()


class _Host:
    """One host's counts in memory."""

    __slots__ = (
        "budget",
        "calls",
        "circuit",
        "limit",
        "meter",
        "paused_until",
        "reopens_at",
    )

    def __init__(self) -> None:
        self.budget: _Window | None = None  # (requests, retries)
        self.calls: _Window | None = None  # (calls, failures)
        self.circuit = "closed"  # "closed", "open" or "half_open"
        # When open: when the probe may go; when half-open: when the probe's lease ends.
        self.reopens_at = 0.0
        self.paused_until = 0.0
        # The throttle's: the host's answers of the last second (answers, 0), and its limit
        # once the host throttled.
        self.meter: _Window | None = None
        self.limit: Limit | None = None

    def measured(self, now: float) -> float:
        """The client's send rate to the host, in requests per second."""
        meter = self.meter
        return 0.0 if meter is None else measured_rate(meter.sums(now)[0])

    def idle(self, now: float) -> bool:
        """Whether nothing here matters any more: forgetting the host changes no answer, or
        none that a host unheard of for that long should still get."""
        if self.circuit != "closed":
            # An open circuit nobody probed, or a probe that never reported back, is kept for
            # `FORGET_FACTOR` breaker windows past its deadline (as a Redis key lives), then
            # forgotten: a crawler that met many dead hosts must not keep them all for ever.
            span = self.calls.length if self.calls is not None else 0.0
            if now < self.reopens_at + FORGET_FACTOR * span:
                return False
        limit = self.limit
        return (
            self.paused_until <= now
            and (self.budget is None or self.budget.empty(now))
            and (self.calls is None or self.calls.empty(now))
            and (self.meter is None or self.meter.empty(now))
            and (limit is None or now >= limit.lifts_by)
        )


# How many breaker windows past its deadline an open circuit no request came back to is kept.
FORGET_FACTOR = 3

# The table of hosts is first swept of the idle ones when it holds this many, then each time it
# has doubled since: a process that talks to ever new hosts (a crawler, a multi-tenant client)
# keeps only those whose state still matters, and each sweep is paid for by as many new hosts.
SWEEP_FROM = 1024


class MemoryState:
    """Per-host counts in this process's memory: the default.

    Each transport gets its own unless given one: pass the same `MemoryState()` to several
    transports (sync and async alike) for them to share one budget, circuit and pace per host.
    A host is forgotten once nothing about it matters (its circuit closed, no pause, nothing
    counted in its windows), so memory follows the hosts in use, not every host ever seen.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._sweep_at = SWEEP_FROM

    def sync_store(self) -> Store:
        return self

    def async_store(self) -> AsyncStore:
        return _AsyncMemory(self)

    def _host(self, host: str, now: float) -> _Host:
        """`host`'s state, made if new (under the lock)."""
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= self._sweep_at:
                self._sweep(now)
            state = self._hosts[host] = _Host()
        return state

    def _sweep(self, now: float) -> None:
        """Forget the hosts whose state holds nothing (under the lock).

        A lock-free deposit in `before` racing a sweep may add to a host just dropped: that
        one request is then not counted, which only makes the budget stricter, as any count
        lost to that path's races does.
        """
        hosts = self._hosts
        for host in [host for host, state in hosts.items() if state.idle(now)]:
            del hosts[host]
        self._sweep_at = max(2 * len(hosts), SWEEP_FROM)

    def before(
        self,
        host: str,
        rules: Rules,
        first: bool,
        refund: bool = False,
        patience: float = math.inf,
        ahead: float = HORIZON,
    ) -> Verdict:
        budget = rules.budget
        if first and not rules.watches and budget is not None:
            # The budget alone: a deposit, which every request makes, so it takes no lock.
            # Two threads racing on the same count may lose one: a deposit too few only
            # makes the budget a little stricter.
            now = self._clock()
            state = self._hosts.get(host)
            window = state.budget if state is not None else None
            if window is not None:
                cell = window._cells.get(int(now / window._width))
                if cell is not None:
                    cell[0] += 1
                    return CLEAR
        with self._lock:
            now = self._clock()
            state = self._host(host, now)
            verdict = CLEAR
            if rules.watches:
                verdict = self._verdict(state, now, rules.breaker, rules.pacing)
                if verdict.open_for is not None:
                    # Stopped before the host: a request earns the budget nothing, and a
                    # retry (`refund`) gives back what it spent.
                    if refund and not first and state.budget is not None:
                        state.budget.refund(now)
                    return verdict
                if rules.throttle is not None:
                    _sending(state, now)
                    if state.limit is not None:
                        verdict = _reserve(state, now, rules.throttle, patience, ahead, verdict)
            if first and budget is not None:
                window = state.budget
                if window is None:
                    window = state.budget = _Window(budget.window)
                window.add(now, 1, 0)
            return verdict

    @staticmethod
    def _verdict(state: _Host, now: float, breaker: CircuitBreaker | None, pacing: bool) -> Verdict:
        pace = max(state.paused_until - now, 0.0) if pacing else 0.0
        if breaker is None or state.circuit == "closed":
            return Verdict(pace=pace) if pace else CLEAR
        left = state.reopens_at - now
        if left > 0:  # open, or half-open with its probe out
            return Verdict(open_for=left, pace=pace)
        change = "half_open" if state.circuit == "open" else None
        state.circuit = "half_open"
        # The probe's lease: long enough for it to wait out the pace first.
        state.reopens_at = now + pace + breaker.open_for
        return Verdict(pace=pace, probe=True, change=change)

    def after(
        self,
        host: str,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None = None,
        age: float = 0.0,
    ) -> str | None:
        breaker = rules.breaker
        with self._lock:
            now = self._clock()
            state = self._host(host, now)
            if pause is not None and rules.pacing:
                state.paused_until = max(state.paused_until, now + min(pause, MAX_PAUSE))
            if throttled is not None and rules.throttle is not None:
                _answered(state, now, rules.throttle, throttled, age)
            if breaker is None or failed is None:
                return None
            if probe:
                if state.circuit != "half_open":
                    return None
                if failed:
                    state.circuit, state.reopens_at = "open", now + breaker.open_for
                    return "open"
                state.circuit = "closed"  # its counts were cleared when it opened
                return "closed"
            if state.circuit != "closed":
                return None  # an attempt sent before the circuit opened: already counted
            calls = state.calls
            if calls is None:
                calls = state.calls = _Window(breaker.window)
            calls.add(now, 1, 1 if failed else 0)
            if not failed:
                return None
            total, failures = calls.sums(now)
            if total >= breaker.min_calls and failures >= breaker.failure_ratio * total:
                state.circuit, state.reopens_at = "open", now + breaker.open_for
                calls.clear()
                return "open"
            return None

    def give_back(self, host: str, rules: Rules) -> None:
        throttle = rules.throttle
        if throttle is None:
            return
        with self._lock:
            now = self._clock()
            state = self._hosts.get(host)
            if state is not None and state.limit is not None:
                state.limit.give_back(now, throttle)

    def spend(self, host: str, rules: Rules) -> bool:
        budget = rules.budget
        if budget is None:
            return True
        with self._lock:
            now = self._clock()
            state = self._host(host, now)
            window = state.budget
            if window is None:
                window = state.budget = _Window(budget.window)
            requests, retries = window.sums(now)
            if retries + 1 > budget.reserve + budget.ratio * requests:
                return False
            window.add(now, 0, 1)
            return True


def _reserve(
    state: _Host,
    now: float,
    throttle: AdaptiveThrottle,
    patience: float,
    ahead: float,
    verdict: Verdict,
) -> Verdict:
    """`verdict` with the wait for the throttle's token, once the host has a limit (under the
    lock): the attempt reserves its token, unless it would not wait that long."""
    limit = state.limit
    assert limit is not None
    if limit.lifted(now, throttle):
        state.limit = None
        return verdict
    # The probe reserves however far off its token is: asking again, it would find its own
    # lease out and the circuit closed to it.
    wait, reserved = limit.reserve(now, throttle, patience, math.inf if verdict.probe else ahead)
    if wait is None:
        return verdict
    if not reserved:
        return verdict._replace(pace=max(verdict.pace, wait), throttled=True, again=True)
    if wait <= verdict.pace:
        return verdict._replace(reserved=True)
    if verdict.probe:
        state.reopens_at += wait - verdict.pace  # the probe's lease covers its wait too
    return verdict._replace(pace=wait, throttled=True, reserved=True)


def _sending(state: _Host, now: float) -> None:
    """Count an attempt on its way to the host in the throttle's meter (under the lock): the
    send rate a cut starts from. Counted as it goes, not as it is answered: a burst throttled
    at once would otherwise be measured by its first answer alone."""
    meter = state.meter
    if meter is None:
        meter = state.meter = _Window(METER_WINDOW)
    meter.add(now, 1, 0)


def _answered(
    state: _Host, now: float, throttle: AdaptiveThrottle, throttled: bool, age: float
) -> None:
    """The host answered an attempt sent `age` seconds ago; `throttled` when it throttled it
    (under the lock)."""
    limit = state.limit
    if not throttled or (limit is not None and now - age < limit.cut_at):
        # Sent before the last cut, which answered the same overload.
        return
    measured = state.measured(now)
    if limit is None:
        limit = state.limit = Limit(now)
        rate = measured
    else:
        rate = min(measured, limit.rate(now, throttle))
    limit.cut(now, rate, throttle)


class _AsyncMemory:
    """`MemoryState` for the async transport: no I/O, so no awaiting inside."""

    __slots__ = ("_state",)

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def before(
        self,
        host: str,
        rules: Rules,
        first: bool,
        refund: bool = False,
        patience: float = math.inf,
        ahead: float = HORIZON,
    ) -> Verdict:
        return self._state.before(host, rules, first, refund, patience, ahead)

    async def after(
        self,
        host: str,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None = None,
        age: float = 0.0,
    ) -> str | None:
        return self._state.after(host, rules, failed, pause, probe, throttled, age)

    async def spend(self, host: str, rules: Rules) -> bool:
        return self._state.spend(host, rules)

    async def give_back(self, host: str, rules: Rules) -> None:
        self._state.give_back(host, rules)


# At most this many keys are cached: a process that talks to very many hosts starts over.
HOST_KEYS_MAX = 4096
_HOST_KEYS: dict[tuple[str, str, int | None], str] = {}
# Held to add a key (threads adding at once would each see room for one more and overfill
# the cache); a key found needs no lock, as reading a dict is atomic.
_HOST_KEYS_LOCK = threading.Lock()


def host_key(url: httpx.URL) -> str:
    """The host the counts are kept for: "scheme://host[:port]" (never any credentials)."""
    # Every request needs this: read from httpx's parsed reference, and the text made once.
    ref = getattr(url, "_uri_reference", url)
    parts = (ref.scheme, ref.host, ref.port)
    key = _HOST_KEYS.get(parts)
    if key is None:
        scheme, host, port = parts
        host = f"[{host}]" if ":" in host else host  # an IPv6 address
        key = f"{scheme}://{host}" + ("" if port is None else f":{port}")
        with _HOST_KEYS_LOCK:
            if len(_HOST_KEYS) >= HOST_KEYS_MAX:
                _HOST_KEYS.clear()
            _HOST_KEYS[parts] = key
    return key


def is_failure_status(status: int, rules: Rules) -> bool | None:
    """Whether an attempt that got `status` failed, for the breaker (None when it is off)."""
    breaker = rules.breaker
    return None if breaker is None else status in breaker.failure_statuses


def is_throttling_status(status: int, rules: Rules) -> bool | None:
    """Whether `status` says the host throttled the attempt (None when the throttle is off)."""
    throttle = rules.throttle
    return None if throttle is None else status in throttle.statuses


def pause_of(response: httpx.Response, now: float | None = None) -> float | None:
    """How long the host asked not to be called again, if this response says its window is spent.

    A 429 with `Retry-After` (or `retry-after-ms`); else `x-ratelimit-remaining: 0` (or the
    IETF `RateLimit` field with `r=0`) with a reset. Never more than `MAX_PAUSE`.
    """
    headers: Mapping[str, str] = response.headers
    status = response.status_code
    if status != 429 and not mentions_rate_limit(headers):
        return None  # most responses: one pass over the raw headers, nothing parsed
    now = time.time() if now is None else now
    if status == 429:
        hint = parse_retry_after(headers, now)
        if hint is not None:
            return min(hint, MAX_PAUSE)
    info = parse_rate_limit(headers, now)
    if info.remaining == 0 and info.reset is not None and math.isfinite(info.reset):
        return min(max(info.reset, 0.0), MAX_PAUSE)
    return None


def outcome_of(outcome: object, rules: Rules) -> tuple[bool | None, float | None, bool | None]:
    """An attempt's outcome as the host's state counts it: (failed, pause, throttled).

    `failed` for the breaker, `pause` for pacing, `throttled` for the throttle: whether the
    host answered, and throttled the attempt; None for what a rule that is off, or an attempt
    the host never answered, leaves uncounted.
    """
    if isinstance(outcome, BaseException):
        if isinstance(outcome, StatusError):
            # From a resilient transport stacked below: its last status is what counts.
            status = outcome.status_code
            if status is None:
                return None, None, None
            return is_failure_status(status, rules), None, is_throttling_status(status, rules)
        if isinstance(outcome, CircuitOpenError) or (
            isinstance(outcome, APIError) and not isinstance(outcome, TransportError)
        ):
            return None, None, None  # nothing reached the host (a breaker below, a body too large)
        if rules.breaker is None or not classify_exception(outcome).host_fault:
            return None, None, None  # or the caller's own mistake: an illegal header, a bad scheme
        return True, None, None
    response: httpx.Response = outcome  # type: ignore[assignment]
    status = response.status_code
    pause = pause_of(response) if rules.pacing else None
    return is_failure_status(status, rules), pause, is_throttling_status(status, rules)
