"""Per-host protection: the retry budget, the circuit breaker and pacing, with a fake clock.

First the policies and `MemoryState` on their own (the clock moved by hand, no real sleeps),
then the header readers, then the real sync driver against a fake host state with scripted
replies to its `Before`, `After` and `Spend` questions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import math
import pickle
import sys
import threading
import tracemalloc
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import httpx_resilience as hr
from _support import (
    After,
    Before,
    FakeClock,
    Outcome,
    Send,
    Sleep,
    Spend,
    drive,
    make_settings,
    streamed,
)
from httpx_resilience import ErrorPolicy, RequestTimeoutError, RetryPolicy
from httpx_resilience._call import start
from httpx_resilience._decide import Retry, refused
from httpx_resilience._errors import AttemptRecord
from httpx_resilience._events import ResilienceEvent
from httpx_resilience._policies import CircuitBreaker, RetryBudget
from httpx_resilience._settings import Settings
from httpx_resilience._state import (
    CLEAR,
    MAX_PAUSE,
    NO_RULES,
    MemoryState,
    Rules,
    Verdict,
    host_key,
    is_failure_status,
    outcome_of,
    pause_of,
)

URL = "https://api.example.com/v1/x"
HOST = "https://api.example.com"
OTHER = "https://other.example.com"
# A Unix time for the header readers' HTTP dates and epoch resets.
NOW = 1_700_000_000.0


def rules(
    budget: RetryBudget | None = None,
    breaker: CircuitBreaker | None = None,
    pacing: bool = False,
    throttle: hr.AdaptiveThrottle | None = None,
) -> Rules:
    return Rules(budget=budget, breaker=breaker, pacing=pacing, throttle=throttle)


# --- The policies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ratio": -0.1},
        {"ratio": True},
        {"ratio": math.nan},
        {"ratio": math.inf},
        {"ratio": "0.1"},
        {"window": 0},
        {"window": -1.0},
        {"window": False},
        {"window": math.nan},
        {"min_per_second": -1},
        {"min_per_second": True},
        {"min_per_second": math.nan},
        {"min_per_second": None},
    ],
    ids=repr,
)
def test_retry_budget_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    """A negative, zero-window, bool, NaN or non-number RetryBudget field raises ConfigurationError."""
    with pytest.raises(hr.ConfigurationError, match="RetryBudget"):
        RetryBudget(**kwargs)


def test_retry_budget_accepts_the_edges() -> None:
    """ratio 0 and 1 and min_per_second 0 are valid (no retries, or as many as requests); a
    ratio above 1 is refused, naming budget=None as the way to turn the budget off."""
    assert RetryBudget(ratio=0, min_per_second=0).reserve == 0
    assert RetryBudget(ratio=1).ratio == 1
    with pytest.raises(hr.ConfigurationError, match="budget=None"):
        RetryBudget(ratio=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_ratio": 0},
        {"failure_ratio": -0.5},
        {"failure_ratio": 1.01},
        {"failure_ratio": True},
        {"failure_ratio": math.nan},
        {"min_calls": 0},
        {"min_calls": -3},
        {"min_calls": True},
        {"min_calls": 10.0},
        {"window": 0},
        {"window": -30},
        {"window": math.inf},
        {"open_for": 0},
        {"open_for": -5},
        {"open_for": math.nan},
        {"failure_statuses": 503},
        {"failure_statuses": "503"},
        {"failure_statuses": {"503"}},
        {"failure_statuses": {99}},
        {"failure_statuses": {1000}},
        {"failure_statuses": {True}},
        {"failure_statuses": [500, None]},
        {"failure_statuses": None},
    ],
    ids=repr,
)
def test_circuit_breaker_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    """A CircuitBreaker field out of range, of the wrong type, or a bad status raises ConfigurationError."""
    with pytest.raises(hr.ConfigurationError, match="CircuitBreaker"):
        CircuitBreaker(**kwargs)


def test_circuit_breaker_rejects_bytes_as_statuses() -> None:
    """failure_statuses=b"\\xc8" is not a set of statuses: it must raise, not mean {200}."""
    with pytest.raises(hr.ConfigurationError, match="CircuitBreaker"):
        CircuitBreaker(failure_statuses=b"\xc8")  # type: ignore[arg-type]


def test_failure_statuses_from_a_generator_are_kept() -> None:
    """A generator of statuses survives validation (it is consumed once) and is stored as a frozenset."""
    breaker = CircuitBreaker(failure_statuses=(s for s in [500, 503, 503]))  # type: ignore[arg-type]
    assert breaker.failure_statuses == frozenset({500, 503})
    assert isinstance(breaker.failure_statuses, frozenset)


def test_policy_defaults() -> None:
    """Defaults: budget 10 % / 10 s / 10 per second; breaker 10 % of 100 calls in 30 s, open 5 s."""
    budget = RetryBudget()
    assert (budget.ratio, budget.window, budget.min_per_second) == (0.1, 10.0, 10.0)
    assert budget.reserve == 100.0
    breaker = CircuitBreaker()
    assert (breaker.failure_ratio, breaker.min_calls, breaker.window, breaker.open_for) == (
        0.1,
        100,
        30.0,
        5.0,
    )
    assert breaker.failure_statuses == frozenset({408, 429, *range(500, 600)})


@pytest.mark.parametrize(
    ("min_per_second", "window", "reserve"), [(10, 10, 100), (0.5, 4, 2), (0, 10, 0), (3, 0.5, 1.5)]
)
def test_reserve_is_min_per_second_times_window(
    min_per_second: float, window: float, reserve: float
) -> None:
    """`reserve` is the retries always allowed per window: min_per_second * window."""
    assert RetryBudget(min_per_second=min_per_second, window=window).reserve == reserve


def test_replace_validates_like_a_new_policy() -> None:
    """`.replace()` makes a changed copy, and rejects bad values and unknown fields alike."""
    budget = RetryBudget()
    assert budget.replace(ratio=0.2) == RetryBudget(ratio=0.2)
    assert budget.ratio == 0.1
    breaker = CircuitBreaker().replace(min_calls=5, failure_statuses=[503])
    assert (breaker.min_calls, breaker.failure_statuses) == (5, frozenset({503}))
    with pytest.raises(hr.ConfigurationError, match="RetryBudget"):
        budget.replace(window=0)
    with pytest.raises(hr.ConfigurationError, match="CircuitBreaker"):
        CircuitBreaker().replace(failure_ratio=2)
    with pytest.raises(hr.ConfigurationError, match="CircuitBreaker"):
        CircuitBreaker().replace(threshold=3)


@pytest.mark.parametrize(
    ("rule", "active", "watches"),
    [
        (NO_RULES, False, False),
        (rules(budget=RetryBudget()), True, False),
        (rules(breaker=CircuitBreaker()), True, True),
        (rules(pacing=True), True, True),
    ],
    ids=["none", "budget", "breaker", "pacing"],
)
def test_rules_active_and_watches(rule: Rules, active: bool, watches: bool) -> None:
    """Any rule makes the rules active; only the breaker and pacing need attempts' outcomes."""
    assert (rule.active, rule.watches) == (active, watches)


@pytest.mark.parametrize(
    ("status", "failed"),
    [(200, False), (404, False), (408, True), (429, True), (500, True), (599, True), (600, False)],
)
def test_is_failure_status(status: int, failed: bool) -> None:
    """With a breaker, a status fails when in failure_statuses; without one, there is no verdict."""
    assert is_failure_status(status, rules(breaker=CircuitBreaker())) is failed
    assert is_failure_status(status, rules(budget=RetryBudget(), pacing=True)) is None


# --- MemoryState: the retry budget --------------------------------------------------------------


def spends(state: MemoryState, rule: Rules, host: str = HOST, limit: int = 1000) -> int:
    """How many retries in a row the budget allows now (until the first refusal)."""
    for count in range(limit):
        if not state.spend(host, rule):
            return count
    raise AssertionError(f"the budget allowed {limit} retries in a row")


def test_only_first_attempts_deposit() -> None:
    """before(first=False) pays nothing into the budget; before(first=True) pays one request."""
    rule = rules(budget=RetryBudget(ratio=1.0, min_per_second=0))
    state = MemoryState(clock=FakeClock())
    for _ in range(5):
        state.before(HOST, rule, False)
    assert spends(state, rule) == 0
    state.before(HOST, rule, True)
    assert spends(state, rule) == 1


@pytest.mark.parametrize(("min_per_second", "window"), [(1, 10), (0.5, 4), (10, 10)])
def test_reserve_allows_retries_without_traffic(min_per_second: float, window: float) -> None:
    """With no requests at all, exactly `reserve` retries are allowed per window, the next refused."""
    budget = RetryBudget(ratio=0.1, window=window, min_per_second=min_per_second)
    state = MemoryState(clock=FakeClock())
    assert spends(state, rules(budget=budget)) == budget.reserve


@pytest.mark.parametrize(
    ("ratio", "requests", "allowed"),
    [(0.1, 100, 10), (0.1, 99, 9), (0.5, 7, 3), (1.0, 4, 4), (0.0, 50, 0)],
)
def test_ratio_share_of_requests(ratio: float, requests: int, allowed: int) -> None:
    """Without a reserve, retries may be at most `ratio` of the window's requests: 100 at 10 % → 10."""
    rule = rules(budget=RetryBudget(ratio=ratio, min_per_second=0))
    state = MemoryState(clock=FakeClock())
    for _ in range(requests):
        assert state.before(HOST, rule, True) is CLEAR
    assert spends(state, rule) == allowed


def test_reserve_and_share_add_up() -> None:
    """The reserve comes on top of the share: reserve 2 plus 10 % of 30 requests → 5 retries."""
    rule = rules(budget=RetryBudget(ratio=0.1, window=10, min_per_second=0.2))
    state = MemoryState(clock=FakeClock())
    for _ in range(30):
        state.before(HOST, rule, True)
    assert spends(state, rule) == 5


# window 20 s kept as ten slots of 2 s; the clock starts at 1000.0, the start of a slot.
SLIDING = rules(budget=RetryBudget(ratio=1.0, window=20, min_per_second=0))


@pytest.mark.parametrize(
    ("deposit_at", "check_at", "counted"),
    [
        (0.0, 19.9, True),
        (0.0, 20.0, False),
        (1.9, 19.9, True),
        (1.9, 20.0, False),  # only 18.1 s later, but its slot has left the window
        (2.0, 20.0, True),
        (2.0, 21.9, True),
        (2.0, 22.0, False),
    ],
)
def test_budget_window_slides_in_steps_of_a_tenth(
    deposit_at: float, check_at: float, counted: bool
) -> None:
    """A deposit counts until the window has moved past its slot: the window slides in steps of window/10."""
    clock = FakeClock()
    state = MemoryState(clock=clock)
    clock.advance(deposit_at)
    state.before(HOST, SLIDING, True)
    clock.advance(check_at - deposit_at)
    assert spends(state, SLIDING) == (1 if counted else 0)


def test_spent_retries_slide_out_of_the_window() -> None:
    """Retries spent stop counting against the budget once the window has moved past them."""
    clock = FakeClock()
    state = MemoryState(clock=clock)
    for _ in range(3):
        state.before(HOST, SLIDING, True)
    assert spends(state, SLIDING) == 3
    clock.advance(16)  # deposits and spends are still in the window
    assert spends(state, SLIDING) == 0
    clock.advance(2)  # deposit three more; the old ones and the spends are still counted
    for _ in range(3):
        state.before(HOST, SLIDING, True)
    assert spends(state, SLIDING) == 3
    clock.advance(2)  # at 1020: the first deposits and spends are gone, the second are not
    assert spends(state, SLIDING) == 0
    clock.advance(18)  # at 1038: everything has left the window
    assert spends(state, SLIDING) == 0
    state.before(HOST, SLIDING, True)
    assert spends(state, SLIDING) == 1


def test_hosts_have_their_own_budget() -> None:
    """Requests to one host buy no retries for another."""
    rule = rules(budget=RetryBudget(ratio=1.0, min_per_second=0))
    state = MemoryState(clock=FakeClock())
    state.before(HOST, rule, True)
    assert spends(state, rule, OTHER) == 0
    assert spends(state, rule, HOST) == 1


@pytest.mark.parametrize("rule", [NO_RULES, rules(breaker=CircuitBreaker(), pacing=True)])
def test_spend_without_a_budget_is_always_allowed(rule: Rules) -> None:
    """With no budget, every retry is allowed."""
    state = MemoryState(clock=FakeClock())
    assert all(state.spend(HOST, rule) for _ in range(500))


# --- MemoryState: the circuit breaker -----------------------------------------------------------

OPEN_FOR = 5.0
# Half of at least 4 calls within 10 s (ten slots of 1 s) opens the circuit for 5 s.
HALF_OF_4 = rules(
    breaker=CircuitBreaker(failure_ratio=0.5, min_calls=4, window=10, open_for=OPEN_FOR)
)


def report(state: MemoryState, outcomes: str, rule: Rules = HALF_OF_4) -> list[str | None]:
    """Report non-probe outcomes, "F" failed and "S" succeeded; the circuit's changes."""
    return [state.after(HOST, rule, kind == "F", None, False) for kind in outcomes]


def opened(state: MemoryState) -> None:
    """Open HOST's circuit: four failures in a row."""
    assert report(state, "FFFF") == [None, None, None, "open"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> MemoryState:
    return MemoryState(clock=clock)


@pytest.mark.parametrize(
    ("outcomes", "opens_at"),
    [
        ("FFF", None),  # 100 % failures, but below min_calls
        ("FFFF", 4),
        ("SSFF", 4),  # 2 of 4: exactly the ratio
        ("SSSFF", None),  # 2 of 5: below it
        ("SSSFFF", 6),  # 3 of 6
        ("SSSSSSFF", None),  # successes dilute the ratio
        ("SSSSFFFF", 8),
        ("FFFFF", 4),  # opens as soon as both thresholds are met; later calls are not counted
        ("FFFSF", 5),  # only a failure opens: not the success that reached min_calls
    ],
)
def test_breaker_opens_exactly_at_the_thresholds(
    state: MemoryState, outcomes: str, opens_at: int | None
) -> None:
    """`after` returns "open" at the first failure with calls >= min_calls and failures >= ratio * calls."""
    changes = report(state, outcomes)
    expected: list[str | None] = [None] * len(outcomes)
    if opens_at is not None:
        expected[opens_at - 1] = "open"
    assert changes == expected
    assert (state.before(HOST, HALF_OF_4, True).open_for is not None) is (opens_at is not None)


def test_ratio_one_needs_every_call_to_fail(state: MemoryState) -> None:
    """failure_ratio=1: a single success among the calls keeps the circuit closed."""
    rule = rules(breaker=CircuitBreaker(failure_ratio=1.0, min_calls=2))
    assert report(state, "FSFF", rule) == [None, None, None, None]
    other = MemoryState(clock=FakeClock())
    assert [other.after(HOST, rule, True, None, False) for _ in range(2)] == [None, "open"]


def test_successes_never_open(state: MemoryState) -> None:
    """A success is counted but never opens the circuit by itself, whatever came before."""
    rule = rules(breaker=CircuitBreaker(failure_ratio=0.5, min_calls=4))
    assert report(state, "FFSS", rule) == [None] * 4  # 2 of 4 once the 4th call is in: no check
    assert report(state, "F", rule) == ["open"]


def test_open_circuit_counts_down_and_never_probes(state: MemoryState, clock: FakeClock) -> None:
    """While open, `before` says how long it stays open, counting down, and lets nothing through."""
    opened(state)
    assert state.before(HOST, HALF_OF_4, True) == Verdict(open_for=OPEN_FOR)
    clock.advance(2)
    verdict = state.before(HOST, HALF_OF_4, False)
    assert verdict.open_for == pytest.approx(3.0)
    assert (verdict.probe, verdict.change) == (False, None)
    clock.advance(2.9)
    assert state.before(HOST, HALF_OF_4, True).open_for == pytest.approx(0.1)


def test_first_call_after_open_for_is_the_probe(state: MemoryState, clock: FakeClock) -> None:
    """After open_for, the first `before` is the half-open probe; a concurrent one waits out its lease."""
    opened(state)
    clock.advance(OPEN_FOR)
    assert state.before(HOST, HALF_OF_4, True) == Verdict(probe=True, change="half_open")
    assert state.before(HOST, HALF_OF_4, True) == Verdict(open_for=OPEN_FOR)
    clock.advance(1.5)
    second = state.before(HOST, HALF_OF_4, False)
    assert second.open_for == pytest.approx(OPEN_FOR - 1.5)
    assert not second.probe


def probing(state: MemoryState, clock: FakeClock) -> None:
    """Open HOST's circuit, wait it out, and take the probe."""
    opened(state)
    clock.advance(OPEN_FOR)
    assert state.before(HOST, HALF_OF_4, True).probe


def test_probe_success_closes_and_starts_counting_afresh(
    state: MemoryState, clock: FakeClock
) -> None:
    """A probe that succeeds closes the circuit; it then takes min_calls calls again to open it."""
    probing(state, clock)
    assert state.after(HOST, HALF_OF_4, False, None, True) == "closed"
    assert state.before(HOST, HALF_OF_4, True) is CLEAR
    assert report(state, "FFF") == [None, None, None]
    assert report(state, "F") == ["open"]


def test_probe_failure_opens_again_for_open_for(state: MemoryState, clock: FakeClock) -> None:
    """A probe that fails opens the circuit again, for a full open_for from then."""
    probing(state, clock)
    clock.advance(1)
    assert state.after(HOST, HALF_OF_4, True, None, True) == "open"
    assert state.before(HOST, HALF_OF_4, True) == Verdict(open_for=OPEN_FOR)
    clock.advance(OPEN_FOR)
    assert state.before(HOST, HALF_OF_4, True) == Verdict(probe=True, change="half_open")


def test_a_lost_probe_is_replaced_after_its_lease(state: MemoryState, clock: FakeClock) -> None:
    """A probe that never reports back is replaced by a new one after another open_for."""
    probing(state, clock)
    clock.advance(OPEN_FOR - 0.1)
    assert state.before(HOST, HALF_OF_4, True).open_for == pytest.approx(0.1)
    clock.advance(0.1)
    # Still half-open: a new probe, and no change to announce.
    assert state.before(HOST, HALF_OF_4, True) == Verdict(probe=True)
    assert state.before(HOST, HALF_OF_4, True).open_for == pytest.approx(OPEN_FOR)
    assert state.after(HOST, HALF_OF_4, False, None, True) == "closed"


def test_a_paced_probe_holds_its_lease_through_the_pace(
    state: MemoryState, clock: FakeClock
) -> None:
    """A probe that must first wait out the host's pace keeps its lease for that wait too: no
    second probe goes while the first is still waiting."""
    rule = dataclasses.replace(HALF_OF_4, pacing=True)
    opened(state)
    state.after(HOST, rule, None, 20.0, False)  # the host asked for 20 s
    clock.advance(OPEN_FOR)
    probe = state.before(HOST, rule, True)
    assert probe.probe
    assert probe.pace == pytest.approx(20.0 - OPEN_FOR)
    clock.advance(probe.pace + OPEN_FOR - 0.1)  # past open_for, still within pace + open_for
    assert state.before(HOST, rule, True).open_for == pytest.approx(0.1)


def test_outcomes_of_other_attempts_are_ignored_while_not_closed(
    state: MemoryState, clock: FakeClock
) -> None:
    """While open or half-open, outcomes reported by non-probe attempts change nothing."""
    opened(state)
    assert report(state, "SSSSFFFF") == [None] * 8
    clock.advance(OPEN_FOR)
    assert state.before(HOST, HALF_OF_4, True).probe
    assert report(state, "SSSSFFFF") == [None] * 8
    assert state.before(HOST, HALF_OF_4, True).open_for is not None  # the probe is still out
    assert state.after(HOST, HALF_OF_4, False, None, True) == "closed"
    # Nothing reported while it was not closed was counted.
    assert report(state, "FFF") == [None, None, None]


def test_a_probe_report_while_closed_is_ignored(state: MemoryState) -> None:
    """A probe outcome for a circuit that is not half-open (a stale probe) changes nothing."""
    assert state.after(HOST, HALF_OF_4, True, None, True) is None
    assert state.before(HOST, HALF_OF_4, True) is CLEAR
    assert report(state, "FFF") == [None, None, None]


@pytest.mark.parametrize(("later", "change"), [(9.9, "open"), (10.0, None)])
def test_old_calls_slide_out_of_the_breaker_window(
    state: MemoryState, clock: FakeClock, later: float, change: str | None
) -> None:
    """Failures older than the window (10 s in slots of 1 s) no longer count toward opening."""
    assert report(state, "FFF") == [None, None, None]
    clock.advance(later)
    assert report(state, "F") == [change]


def test_failed_none_is_not_a_call(state: MemoryState) -> None:
    """An outcome with failed=None (not the host's doing) is not counted at all."""
    assert [state.after(HOST, HALF_OF_4, None, None, False) for _ in range(10)] == [None] * 10
    assert report(state, "FFF") == [None, None, None]


def test_a_request_the_open_circuit_stops_deposits_nothing(
    state: MemoryState, clock: FakeClock
) -> None:
    """A first attempt refused by the open circuit never reached the host: it buys no retries."""
    both = rules(budget=RetryBudget(ratio=1.0, min_per_second=0), breaker=HALF_OF_4.breaker)
    opened(state)
    for _ in range(3):
        assert state.before(HOST, both, True).open_for is not None
    assert spends(state, both) == 0
    clock.advance(OPEN_FOR)
    assert state.before(HOST, both, True).probe  # the probe goes, and pays
    assert spends(state, both) == 1


# A reserve of 2 retries per 20 s (ten slots of 2 s), and a circuit that opens at the first
# failure: a retry the open circuit stops (`refund=True`) gives back what it spent.
REFUNDS = rules(
    budget=RetryBudget(ratio=0, window=20, min_per_second=0.1),
    breaker=CircuitBreaker(failure_ratio=1.0, min_calls=1, window=60, open_for=1000),
)


def refund(state: MemoryState) -> None:
    """A retry of HOST that the open circuit stops, asking for its spend back."""
    assert state.before(HOST, REFUNDS, False, True).open_for is not None


def test_a_refund_gives_back_one_spend(state: MemoryState) -> None:
    """A retry stopped by the open circuit gives back its spend: one more retry is allowed."""
    assert spends(state, REFUNDS) == 2
    assert state.after(HOST, REFUNDS, True, None, False) == "open"
    refund(state)
    assert spends(state, REFUNDS) == 1


def test_a_refund_in_a_later_slot_gives_back_a_spend(state: MemoryState, clock: FakeClock) -> None:
    """A refund in a slot with no deposits nor spends still gives back the spend made earlier."""
    assert spends(state, REFUNDS) == 2
    state.after(HOST, REFUNDS, True, None, False)
    clock.advance(5)  # two slots on
    refund(state)
    assert spends(state, REFUNDS) == 1


def test_a_refund_with_nothing_spent_gives_nothing(state: MemoryState) -> None:
    """With no spend in the window, a refund has nothing to give back: the reserve stays 2."""
    assert state.before(HOST, REFUNDS, True) is CLEAR  # a request: the window exists, no spend
    state.after(HOST, REFUNDS, True, None, False)
    refund(state)
    refund(state)
    assert spends(state, REFUNDS) == 2


def test_a_refund_after_the_spend_left_the_window_gives_nothing(
    state: MemoryState, clock: FakeClock
) -> None:
    """A spend that has slid out of the window is no longer counted, so refunding it adds nothing."""
    assert spends(state, REFUNDS) == 2
    state.after(HOST, REFUNDS, True, None, False)
    clock.advance(20)  # the spends' slot has left the window
    refund(state)
    assert spends(state, REFUNDS) == 2


def test_a_refund_never_outlives_its_spend(state: MemoryState, clock: FakeClock) -> None:
    """A refund made in a later slot leaves the window with its spend, not after it."""
    assert spends(state, REFUNDS) == 2  # at 1000
    state.after(HOST, REFUNDS, True, None, False)
    clock.advance(10)
    refund(state)  # at 1010: one of the two spends given back
    assert spends(state, REFUNDS) == 1  # spent at 1010
    clock.advance(10)  # at 1020: the spends of 1000 have left; the one of 1010 is counted
    assert spends(state, REFUNDS) == 1


def test_circuits_are_per_host(state: MemoryState, clock: FakeClock) -> None:
    """One host's open circuit leaves another host's closed."""
    opened(state)
    assert state.before(OTHER, HALF_OF_4, True) is CLEAR
    assert state.before(HOST, HALF_OF_4, True).open_for == OPEN_FOR


def test_async_store_shares_the_state(state: MemoryState, clock: FakeClock) -> None:
    """The async face answers from the same counts as the sync one."""
    store = state.async_store()
    opened(state)

    async def ask() -> tuple[Verdict, str | None, bool]:
        return (
            await store.before(HOST, HALF_OF_4, True),
            await store.after(HOST, HALF_OF_4, True, None, False),
            await store.spend(HOST, HALF_OF_4),
        )

    assert asyncio.run(ask()) == (Verdict(open_for=OPEN_FOR), None, True)
    assert state.sync_store() is state


# --- MemoryState: pacing ------------------------------------------------------------------------

PACING = rules(pacing=True)


def test_pause_paces_the_host_counting_down(state: MemoryState, clock: FakeClock) -> None:
    """After a pause of 5 s is reported, `before` says to wait what is left of it, then nothing."""
    assert state.after(HOST, PACING, None, 5.0, False) is None
    assert state.before(HOST, PACING, True) == Verdict(pace=5.0)
    clock.advance(2)
    assert state.before(HOST, PACING, False) == Verdict(pace=3.0)
    clock.advance(3)
    assert state.before(HOST, PACING, True) is CLEAR
    assert state.before(OTHER, PACING, True) is CLEAR


@pytest.mark.parametrize("pauses", [(5.0, 2.0), (2.0, 5.0), (5.0, 0.0)])
def test_the_longer_pause_wins(state: MemoryState, pauses: tuple[float, float]) -> None:
    """Of two pauses reported, the one that ends later is kept, whichever came first."""
    for pause in pauses:
        state.after(HOST, PACING, None, pause, False)
    assert state.before(HOST, PACING, True) == Verdict(pace=5.0)


def test_a_later_pause_ending_later_extends_the_pace(state: MemoryState, clock: FakeClock) -> None:
    """A shorter pause reported later, ending later, moves the end out."""
    state.after(HOST, PACING, None, 5.0, False)
    clock.advance(4)
    state.after(HOST, PACING, None, 2.0, False)
    assert state.before(HOST, PACING, True) == Verdict(pace=2.0)


@pytest.mark.parametrize("pause", [MAX_PAUSE + 1, 1.7e12, math.inf])
def test_a_pause_is_never_longer_than_max_pause(
    state: MemoryState, clock: FakeClock, pause: float
) -> None:
    """A pause past MAX_PAUSE (a reset misread, a hostile server) paces the host MAX_PAUSE at most."""
    state.after(HOST, PACING, None, pause, False)
    assert state.before(HOST, PACING, True) == Verdict(pace=MAX_PAUSE)
    clock.advance(MAX_PAUSE)
    assert state.before(HOST, PACING, True) is CLEAR


@pytest.mark.parametrize(
    "rule",
    [rules(breaker=CircuitBreaker()), rules(budget=RetryBudget())],
    ids=["breaker", "budget"],
)
def test_pause_is_ignored_without_pacing(state: MemoryState, rule: Rules) -> None:
    """With pacing off, a reported pause is dropped and the pace is always 0."""
    assert state.after(HOST, rule, False, 30.0, False) is None
    assert state.before(HOST, rule, True) is CLEAR
    assert state.before(HOST, PACING, True) is CLEAR  # nothing was kept to turn on later


@pytest.mark.parametrize(
    "rule",
    [
        NO_RULES,
        rules(budget=RetryBudget()),
        rules(breaker=CircuitBreaker()),
        PACING,
        rules(RetryBudget(), CircuitBreaker(), pacing=True),
    ],
    ids=["none", "budget", "breaker", "pacing", "all"],
)
def test_nothing_going_on_is_the_shared_clear(state: MemoryState, rule: Rules) -> None:
    """For a host with no open circuit and no pace, the verdict is the shared CLEAR itself."""
    assert state.before(HOST, rule, True) is CLEAR
    assert state.before(HOST, rule, False) is CLEAR


def test_pace_and_open_circuit_together(state: MemoryState, clock: FakeClock) -> None:
    """An open circuit's verdict still carries the host's pace."""
    both = rules(breaker=HALF_OF_4.breaker, pacing=True)
    state.after(HOST, both, None, 8.0, False)
    assert [state.after(HOST, both, True, None, False) for _ in range(4)][-1] == "open"
    assert state.before(HOST, both, True) == Verdict(open_for=OPEN_FOR, pace=8.0)


# --- MemoryState: forgetting hosts -------------------------------------------------------------

ALL_RULES = rules(budget=RetryBudget(), breaker=CircuitBreaker(), pacing=True)


def visit(state: MemoryState, host: str, rule: Rules) -> None:
    """One request to `host`: its deposit, and a success reported when the rule watches."""
    state.before(host, rule, True)
    if rule.watches:
        state.after(host, rule, False, None, False)


@pytest.mark.parametrize(
    ("rule", "bound"),
    # The hosts of the last window are live: 1,000 (10 s) and 3,000 (the breaker's 30 s).
    [(rules(budget=RetryBudget()), 1_500_000), (ALL_RULES, 5_000_000)],
    ids=["budget", "all"],
)
def test_memory_for_20000_hosts_seen_once_stays_bounded(rule: Rules, bound: int) -> None:
    """20,000 hosts seen once, 10 ms apart (a crawler): the hosts whose windows emptied are dropped."""
    clock = FakeClock()
    state = MemoryState(clock=clock)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            visit(state, f"https://host-{i}.example.com", rule)
            clock.advance(0.01)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used < bound  # 11.4 MB and 19.4 MB when every host was kept
    # The hosts still counted in a window (the last 10 s: 1000 hosts) are all kept.
    assert {f"https://host-{i}.example.com" for i in range(19_100, 20_000)} <= set(state._hosts)


def test_a_host_is_dropped_only_once_its_state_holds_nothing(clock: FakeClock) -> None:
    """Sweeping keeps every host with counts in a window, an open circuit or a pause; drops the rest."""
    state = MemoryState(clock=clock)
    budget_only = rules(budget=RetryBudget(window=10))
    opened(state)  # HOST: circuit open
    state.after(OTHER, PACING, None, 100.0, False)  # OTHER: paused
    visit(state, "https://recent.example", budget_only)  # deposits in its window
    visit(state, "https://old.example", budget_only)
    clock.advance(5)
    visit(state, "https://recent.example", budget_only)
    clock.advance(6)  # old's window has emptied; recent's has not
    for i in range(5000):  # enough new hosts for a sweep
        state.before(f"https://new-{i}.example", NO_RULES, True)
    assert "https://old.example" not in state._hosts
    assert {HOST, OTHER, "https://recent.example"} <= set(state._hosts)
    assert state.before(HOST, HALF_OF_4, True).probe  # still open: the next call is its probe
    assert state.before(OTHER, PACING, True).pace == pytest.approx(89.0)


def test_a_dropped_host_starts_afresh(clock: FakeClock) -> None:
    """A host dropped after its window emptied has the budget of a host never seen."""
    state = MemoryState(clock=clock)
    rule = rules(budget=RetryBudget(ratio=1.0, window=10, min_per_second=0))
    state.before(HOST, rule, True)
    assert spends(state, rule) == 1
    clock.advance(11)
    for i in range(5000):
        state.before(f"https://new-{i}.example", NO_RULES, True)
    assert HOST not in state._hosts
    assert spends(state, rule) == 0
    state.before(HOST, rule, True)
    assert spends(state, rule) == 1


def test_a_closed_circuit_with_calls_in_its_window_is_kept(clock: FakeClock) -> None:
    """Failures still in the breaker's window matter: the host is kept and they still count."""
    state = MemoryState(clock=clock)
    assert report(state, "FFF") == [None, None, None]
    for i in range(5000):
        state.before(f"https://new-{i}.example", NO_RULES, True)
    assert report(state, "F") == ["open"]


# --- pause_of: when a response says the host's window is spent ---------------------------------


def http_date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


@pytest.mark.parametrize(
    ("status", "headers", "pause"),
    [
        (429, {"Retry-After": "3"}, 3.0),
        (429, {"Retry-After": "0"}, 0.0),
        (429, {"retry-after-ms": "1500"}, 1.5),
        (429, {"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        (429, {"Retry-After": http_date(30)}, 30.0),
        (429, {}, None),
        (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"}, 7.0),
        (429, {"Retry-After": "soon", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "4"}, 4.0),
        (503, {"Retry-After": "3"}, None),  # a Retry-After on a 503 is about the retry, not pacing
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"}, 7.0),
        (200, {"x-ratelimit-remaining": " 00 ", "x-ratelimit-reset": "7"}, 7.0),
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 12)}, 12.0),
        (
            200,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW * 1000) + 12_000)},
            12.0,
        ),
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) - 12)}, 0.0),
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "999999999"}, MAX_PAUSE),
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "999999999h"}, MAX_PAUSE),
        (429, {"Retry-After": "99999999999"}, MAX_PAUSE),
        (429, {"Retry-After": "Mon, 01 Jan 9999 00:00:00 GMT"}, MAX_PAUSE),
        (429, {"Retry-After": "3, 3"}, 3.0),
        (200, {"x-ratelimit-remaining": "0, 0", "x-ratelimit-reset": "7, 7"}, 7.0),
        (200, [("x-ratelimit-remaining", "0")] * 2 + [("x-ratelimit-reset", "7")] * 2, 7.0),
        (200, [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "7, 9")], 7.0),
        (200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, 360.0),
        (200, {"RateLimit": '"default";r=0;t=9'}, 9.0),
        (200, {"RateLimit": "limit=100, remaining=0, reset=4"}, 4.0),
        (200, {"x-ratelimit-remaining": "1", "x-ratelimit-reset": "7"}, None),
        (200, {"RateLimit": '"default";r=5;t=9'}, None),
        (200, {"x-ratelimit-remaining": "0"}, None),  # no reset: nothing to wait for
        (200, {"x-ratelimit-reset": "7"}, None),
        (200, {"Retry-After": "3"}, None),
        (200, {}, None),
    ],
    ids=repr,
)
def test_pause_of(
    status: int, headers: dict[str, str] | list[tuple[str, str]], pause: float | None
) -> None:
    """A 429's Retry-After, or a remaining count of 0 with a reset, is the pause; else None."""
    assert pause_of(httpx.Response(status, headers=headers), NOW) == pause


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "soon"},
        {"Retry-After": "-3"},
        {"Retry-After": "nan"},
        {"Retry-After": "1e400"},
        {"Retry-After": http_date(-30)},  # a date in the past
        {"Retry-After": "Mon, 99 Foo 2024 25:61:61 GMT"},
        {"retry-after-ms": "abc"},
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "later"},
        {"x-ratelimit-remaining": "zero", "x-ratelimit-reset": "7"},
        {"RateLimit": "garbage;;;==,"},
        {"RateLimit": '"default";r=0;t=soon'},
    ],
    ids=repr,
)
def test_pause_of_garbage_is_none(headers: dict[str, str]) -> None:
    """Malformed hints never pause a host (and never raise)."""
    assert pause_of(httpx.Response(429, headers=headers), NOW) is None


HEADER_NAMES = st.sampled_from(
    [
        b"retry-after",
        b"retry-after-ms",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"ratelimit",
        b"ratelimit-remaining",
        b"ratelimit-reset",
        b"x-ratelimit-remaining-requests",
        b"x-ratelimit-reset-requests",
        b"x-ratelimit-limit",
        b"ratelimit-policy",
    ]
)
TRICKY_VALUES = [
    "0",
    "00",
    " 0 ",
    "7",
    "1e400",
    "9" * 40,
    "999999999999999",
    "-1",
    "nan",
    "inf",
    "6m0s",
    "999999999h",
    str(int(NOW) + 5),
    http_date(30),
    "Mon, 01 Jan 9999 00:00:00 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    '"default";r=0;t=5',
    "r=0;t=99999999999999",
    str(int(NOW * 1000) + 5000),
    "100000000000000",
    "5, 5",
]
HEADER_VALUES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([value.encode() for value in TRICKY_VALUES]),
    st.from_regex(rb"\A[0-9a-zA-Z\";=,. :-]{0,40}\Z"),
)


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from([200, 429, 503]),
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6),
    now=st.one_of(st.none(), st.floats(0, 4e9)),
)
def test_pause_of_never_raises(
    status: int, headers: list[tuple[bytes, bytes]], now: float | None
) -> None:
    """On any header values, pause_of returns None or a number of seconds in [0, MAX_PAUSE]."""
    pause = pause_of(httpx.Response(status, headers=headers), now)
    assert pause is None or (isinstance(pause, float) and 0 <= pause <= MAX_PAUSE)


# --- outcome_of: what an attempt's outcome counts as -------------------------------------------


ALL = rules(RetryBudget(), CircuitBreaker(), pacing=True)
THROTTLE = rules(throttle=hr.AdaptiveThrottle())
ALL_AND_THROTTLE = rules(
    RetryBudget(), CircuitBreaker(), pacing=True, throttle=hr.AdaptiveThrottle()
)


@pytest.mark.parametrize(
    ("outcome", "rule", "expected"),
    [
        (httpx.Response(200), ALL, (False, None, None)),
        (httpx.Response(503), ALL, (True, None, None)),
        (httpx.Response(429, headers={"Retry-After": "3"}), ALL, (True, 3.0, None)),
        (
            httpx.Response(429, headers={"Retry-After": "3"}),
            rules(breaker=CircuitBreaker()),
            (True, None, None),
        ),
        (httpx.Response(429, headers={"Retry-After": "3"}), PACING, (None, 3.0, None)),
        (httpx.ConnectError("refused"), ALL, (True, None, None)),
        (httpx.ConnectError("refused"), PACING, (None, None, None)),
        (hr.NetworkError("from below", phase="read"), ALL, (True, None, None)),
        (hr.RequestTooLargeError("our own"), ALL, (None, None, None)),
        (hr.CircuitOpenError("a breaker below"), ALL, (None, None, None)),
        # A resilient transport stacked below raised the status it gave up on.
        (hr.ServiceUnavailableError("below", status_code=503), ALL, (True, None, None)),
        (hr.NotFoundError("below", status_code=404), ALL, (False, None, None)),
        (hr.StatusError("no status"), ALL, (None, None, None)),
        # The throttle counts every answer of the host: throttled, or not.
        (httpx.Response(429), THROTTLE, (None, None, True)),
        (httpx.Response(503), THROTTLE, (None, None, True)),
        (httpx.Response(500), THROTTLE, (None, None, False)),
        (httpx.Response(200), THROTTLE, (None, None, False)),
        (
            httpx.Response(500),
            rules(throttle=hr.AdaptiveThrottle(statuses={500})),
            (None, None, True),
        ),
        (httpx.Response(429, headers={"Retry-After": "3"}), ALL_AND_THROTTLE, (True, 3.0, True)),
        (hr.RateLimitError("below", status_code=429), THROTTLE, (None, None, True)),
        (hr.NotFoundError("below", status_code=404), THROTTLE, (None, None, False)),
        (httpx.ConnectError("refused"), ALL_AND_THROTTLE, (True, None, None)),
        (httpx.ReadTimeout("slow"), THROTTLE, (None, None, None)),
        (hr.CircuitOpenError("a breaker below"), THROTTLE, (None, None, None)),
    ],
    ids=repr,
)
def test_outcome_of(
    outcome: object, rule: Rules, expected: tuple[bool | None, float | None, bool | None]
) -> None:
    """(failed, pause, throttled): statuses and transport errors count; our own refusals are not
    the host's doing, and only an answer of the host says whether it throttled."""
    assert outcome_of(outcome, rule) == expected


# --- host_key -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://api.example.com/v1/x?q=1#f", "https://api.example.com"),
        ("https://api.example.com:443/", "https://api.example.com"),
        ("http://api.example.com:80/", "http://api.example.com"),
        ("http://api.example.com/", "http://api.example.com"),
        ("https://api.example.com:8443/", "https://api.example.com:8443"),
        ("http://api.example.com:443/", "http://api.example.com:443"),
        ("HTTPS://API.Example.COM/", "https://api.example.com"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://127.0.0.1:5000/x", "http://127.0.0.1:5000"),
        ("https://user:secret@api.example.com/", "https://api.example.com"),
    ],
)
def test_host_key(url: str, key: str) -> None:
    """Scheme, host and port, with default ports dropped: the same host always has the same key."""
    assert host_key(httpx.URL(url)) == key


def test_host_key_never_holds_credentials() -> None:
    """Userinfo in the URL never reaches the key, even after the key was cached without it."""
    assert host_key(httpx.URL("https://api.example.com/")) == HOST
    for url in ["https://alice:s3cr3t@api.example.com/", "https://tok%40en@api.example.com/"]:
        key = host_key(httpx.URL(url))
        assert key == HOST
        for secret in ["alice", "s3cr3t", "tok", "@"]:
            assert secret not in key


def test_host_key_cache_bound_holds_under_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads making keys for ever new hosts at once never grow the cache past its bound, and get the right keys."""
    from httpx_resilience import _state

    class Cache(dict[tuple[str, str, int | None], str]):
        """The cache, noting the most keys it ever held."""

        most = 0

        def __setitem__(self, key: tuple[str, str, int | None], value: str) -> None:
            super().__setitem__(key, value)
            self.most = max(self.most, len(self))

    cache = Cache()
    monkeypatch.setattr(_state, "_HOST_KEYS", cache)
    monkeypatch.setattr(_state, "HOST_KEYS_MAX", 16)  # the cache fills and starts over all the time
    wrong: list[str] = []
    start = threading.Barrier(8)
    interval = sys.getswitchinterval()

    def work(n: int) -> None:
        start.wait(timeout=10)
        for i in range(6000):
            host = f"t{n}-{i}.example"
            if host_key(httpx.URL(f"https://{host}:8443/")) != f"https://{host}:8443":
                wrong.append(host)

    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)
    assert not wrong
    most = cache.most
    assert most == 16, f"the cache held {most} keys"


# --- The driver, against a fake host state -----------------------------------------------------

BUDGET = rules(budget=RetryBudget())
BREAKER = rules(breaker=CircuitBreaker())


def with_rules(rule: Rules, **changes: Any) -> Settings:
    return make_settings(rules=rule, **changes)


def respond(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return streamed(status, b"", headers)


@pytest.mark.parametrize(
    ("rule", "host"), [(NO_RULES, None), (BUDGET, HOST), (BREAKER, HOST), (PACING, HOST)]
)
def test_start_names_the_host_only_when_rules_are_active(rule: Rules, host: str | None) -> None:
    """start sets call.host only when some rule needs per-host counts."""
    call = start(httpx.Request("GET", URL), with_rules(rule))
    assert call.host == host


@pytest.mark.parametrize(
    ("rule", "names"),
    [
        (NO_RULES, ["Send"]),
        (BUDGET, ["Before", "Send"]),
        (BREAKER, ["Before", "Send", "After"]),
        (PACING, ["Before", "Send", "After"]),
    ],
    ids=["none", "budget", "breaker", "pacing"],
)
def test_first_try_success_commands(rule: Rules, names: list[str]) -> None:
    """A first-try 2xx: one Before(first=True) when any rule is on, After only when outcomes are watched, never Spend."""
    ok = respond(200)
    run = drive([ok], settings=with_rules(rule))
    assert run.response is ok
    assert run.names == names
    assert run.of(Before) == ([Before(True)] if rule.active else [])


@pytest.mark.parametrize(
    ("outcome", "failed"),
    [
        (200, False),
        (404, False),
        (400, False),
        (408, True),
        (429, True),
        (501, True),
        (503, True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
    ],
    ids=repr,
)
def test_breaker_hears_each_attempt(outcome: int | Exception, failed: bool) -> None:
    """With a breaker, each Send is followed by After(failed) by status or raised error, once
    the body the decision needs is read (a body that breaks off counts as a failure)."""
    sent = respond(outcome) if isinstance(outcome, int) else outcome
    run = drive([sent], settings=with_rules(BREAKER, retry=RetryPolicy(max_attempts=1)))
    # An error body is read whole (and its stream closed) before the state hears the attempt.
    read = ["ReadBody", "Close"] if isinstance(outcome, int) and outcome >= 400 else []
    assert run.names[: 3 + len(read)] == ["Before", "Send", *read, "After"]
    assert run.of(After) == [After(failed, None, False)]


def test_breaker_hears_every_attempt_of_a_retried_request() -> None:
    """503 then 200: After(True) then After(False); the retry asks Before(first=False); no Spend without a budget."""
    run = drive([respond(503), respond(200)], settings=with_rules(BREAKER))
    assert run.response.status_code == 200
    assert run.names == [
        "Before", "Send", "ReadBody", "Close", "After", "OnRetry", "Sleep", "Before", "Send", "After",
    ]  # fmt: skip
    assert run.of(Before) == [Before(True), Before(False)]
    assert run.of(After) == [After(True, None, False), After(False, None, False)]


def test_probe_verdict_is_reported_as_a_probe() -> None:
    """The attempt a probe verdict let through reports its outcome with probe=True; the retry does not."""
    run = drive(
        [respond(503), respond(200)],
        settings=with_rules(BREAKER),
        verdicts=[Verdict(probe=True, change="half_open")],
    )
    assert run.of(After) == [After(True, None, True), After(False, None, False)]


def test_pacing_reports_the_pause() -> None:
    """With pacing, a 429's Retry-After goes to the state as the pause."""
    run = drive(
        [respond(429, {"Retry-After": "2"}), respond(200)],
        settings=with_rules(rules(breaker=CircuitBreaker(), pacing=True)),
    )
    assert run.of(After) == [After(True, 2.0, False), After(False, None, False)]


def test_503_retry_spends_before_the_sleep() -> None:
    """With a budget, a retried 503 asks Spend after closing the response and before the Sleep."""
    run = drive([respond(503), respond(200)], settings=with_rules(BUDGET))
    assert run.response.status_code == 200
    assert run.names == ["Before", "Send", "ReadBody", "Close", "Spend", "OnRetry", "Sleep", "Send"]


def test_refused_retry_raises_the_503() -> None:
    """A refused retry: the 503's own error, attempts 1, its record marked refused, no Sleep or second Send."""
    run = drive([respond(503), respond(200)], settings=with_rules(BUDGET), spends=[False])
    error = run.error
    assert isinstance(error, hr.ServiceUnavailableError)
    assert error.attempts == 1
    assert [(r.status_code, r.refused) for r in error.history] == [(503, "retry_budget")]
    assert run.names == ["Before", "Send", "ReadBody", "Close", "Spend"]


def test_refusal_of_a_later_retry_marks_only_the_last_record() -> None:
    """503, 503 with the second retry refused: attempts 2, only the last record says retry_budget."""
    run = drive(
        [respond(503), respond(503), respond(200)],
        settings=with_rules(BUDGET),
        spends=[True, False],
    )
    error = run.error
    assert error.attempts == 2
    assert [(r.status_code, r.refused) for r in error.history] == [
        (503, None),
        (503, "retry_budget"),
    ]
    assert len(run.of(Send)) == 2
    assert len(run.of(Sleep)) == 1


def test_refusal_with_raise_on_status_false_returns_the_response() -> None:
    """With raise_on_status=False, a refused retry hands on the 503 response, whole, instead of raising."""
    settings = with_rules(BUDGET, errors=ErrorPolicy(raise_on_status=False))
    run = drive([streamed(503, b"busy"), respond(200)], settings=settings, spends=[False])
    assert run.response.status_code == 503
    assert run.response.read() == b"busy"
    assert run.names == ["Before", "Send", "ReadBody", "Close", "Spend"]


@pytest.mark.parametrize(
    ("exc", "spent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("no connection"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("closed"), True),
    ],
    ids=repr,
)
def test_only_retries_of_a_request_that_left_spend(exc: Exception, spent: bool) -> None:
    """A retry after a connect or pool failure costs nothing; after a read failure on a GET it spends."""
    run = drive([exc, respond(200)], settings=with_rules(BUDGET))
    assert run.response.status_code == 200
    assert len(run.of(Spend)) == (1 if spent else 0)
    assert len(run.of(Send)) == 2


def test_connect_failure_retries_even_when_the_budget_is_spent() -> None:
    """A connect failure is retried without asking the budget, so an empty budget does not stop it."""
    run = drive(
        [httpx.ConnectError("refused"), respond(200)], settings=with_rules(BUDGET), spends=[False]
    )
    assert run.response.status_code == 200


def test_no_spend_when_the_retry_would_not_happen_anyway() -> None:
    """The last attempt, or a status that is not retried, asks nothing of the budget."""
    run = drive([respond(503)], settings=with_rules(BUDGET, retry=RetryPolicy(max_attempts=1)))
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert run.of(Spend) == []
    assert run.error.history[-1].refused is None
    run = drive([respond(404)], settings=with_rules(BUDGET))
    assert isinstance(run.error, hr.NotFoundError)
    assert run.of(Spend) == []


def test_open_circuit_stops_the_first_attempt() -> None:
    """An open verdict for the first attempt raises CircuitOpenError: attempts 0, retry_after open_for, no Send."""
    run = drive([respond(200)], settings=with_rules(BREAKER), verdicts=[Verdict(open_for=2.0)])
    error = run.error
    assert isinstance(error, hr.CircuitOpenError)
    assert (error.attempts, error.retry_after, error.history) == (0, 2.0, ())
    assert error.code == "circuit_open"
    assert HOST in str(error)
    assert run.of(Send) == []


def test_open_circuit_stops_a_retry() -> None:
    """An open verdict at the second attempt raises CircuitOpenError with attempts 1 and the first attempt in history."""
    run = drive(
        [respond(503), respond(200)],
        settings=with_rules(BREAKER),
        verdicts=[CLEAR, Verdict(open_for=4.5)],
        changes=["open"],
    )
    error = run.error
    assert isinstance(error, hr.CircuitOpenError)
    assert (error.attempts, error.retry_after) == (1, 4.5)
    assert [(r.status_code, r.error) for r in error.history] == [(503, "ServiceUnavailableError")]
    assert len(run.of(Send)) == 1
    assert run.names[-1] == "Before"


@pytest.mark.parametrize(
    ("pace", "retry", "sleeps"),
    [
        (3.0, RetryPolicy(), [3.0]),
        (0.0, RetryPolicy(), []),
        (3.0, RetryPolicy(max_retry_after=3.0), [3.0]),
        (3.0, RetryPolicy(max_retry_after=2.9), []),  # longer than we agreed to wait
        (3.0, RetryPolicy(timeout=10), [3.0]),
        (3.0, RetryPolicy(timeout=3), []),  # would end at the deadline
        (3.0, RetryPolicy(timeout=2), []),  # past the deadline
    ],
    ids=repr,
)
def test_pace_sleeps_before_the_send(pace: float, retry: RetryPolicy, sleeps: list[float]) -> None:
    """A pace is slept right before the Send, unless longer than max_retry_after or past the deadline."""
    run = drive(
        [respond(200)], settings=with_rules(PACING, retry=retry), verdicts=[Verdict(pace=pace)]
    )
    assert run.response.status_code == 200
    assert run.commands[: len(sleeps) + 2] == [
        Before(True),
        *(Sleep(s) for s in sleeps),
        run.of(Send)[0],
    ]


def test_pace_at_a_retry_follows_the_backoff() -> None:
    """At a retry the pace is slept after the backoff, just before the Send."""
    run = drive(
        [respond(503), respond(200)],
        settings=with_rules(PACING),
        verdicts=[CLEAR, Verdict(pace=1.5)],
    )
    assert run.names == [
        "Before", "Send", "ReadBody", "Close", "After", "OnRetry", "Sleep", "Before", "Sleep", "Send",
        "After",
    ]  # fmt: skip
    assert [s.delay for s in run.of(Sleep)] == [0.25, 1.5]


# --- on_event ------------------------------------------------------------------------------------


def test_events_for_two_retries_then_success() -> None:
    """503, 503, 200: attempt, retry, attempt, retry, attempt, numbered by attempt, for the host."""
    run = drive([respond(503), respond(503), respond(200)], settings=with_rules(BUDGET))
    assert [(e.kind, e.attempt) for e in run.events] == [
        ("attempt", 1),
        ("retry", 1),
        ("attempt", 2),
        ("retry", 2),
        ("attempt", 3),
    ]
    assert {e.host for e in run.events} == {HOST}
    assert [e.delay for e in run.events if e.kind == "retry"] == [0.25, 0.5]
    assert [e.response.status_code for e in run.events if e.response is not None] == [
        503,
        503,
        503,
        503,
        200,
    ]


def test_events_without_rules_name_the_host_too() -> None:
    """With no rule on, events still say which host, never with credentials."""
    request = httpx.Request("GET", "https://alice:s3cr3t@api.example.com/v1/x")
    run = drive([respond(200)], settings=make_settings(), request=request)
    assert [(e.kind, e.host) for e in run.events] == [("attempt", HOST)]


def test_events_for_a_budget_refusal() -> None:
    """A refused second retry: …, budget_refused, then give_up with reason retry_budget and the raised error."""
    run = drive([respond(503), respond(503)], settings=with_rules(BUDGET), spends=[True, False])
    assert run.kinds == ["attempt", "retry", "attempt", "budget_refused", "give_up"]
    give_up = run.events[-1]
    assert (give_up.reason, give_up.attempt, give_up.error) == ("retry_budget", 2, run.error)
    assert run.events[-2].error is run.error


def test_events_for_the_circuit() -> None:
    """The probe's half_open, the attempt, the circuit opening, then the rejected retry and give_up."""
    run = drive(
        [respond(503), respond(200)],
        settings=with_rules(BREAKER),
        verdicts=[Verdict(probe=True, change="half_open"), Verdict(open_for=5.0)],
        changes=["open"],
    )
    assert [(e.kind, e.attempt) if e.kind != "give_up" else e.kind for e in run.events] == [
        ("circuit_half_open", 0),
        ("attempt", 1),
        ("circuit_open", 1),
        ("retry", 1),
        ("circuit_rejected", 1),
        "give_up",
    ]
    assert run.events[-1].reason == "circuit_open"
    assert isinstance(run.events[-2].error, hr.CircuitOpenError)
    assert run.events[-1].error is run.events[-2].error is run.error


@pytest.mark.parametrize(
    ("outcomes", "verdicts"),
    [([], [Verdict(open_for=5.0)]), ([respond(503)], [CLEAR, Verdict(open_for=5.0)])],
    ids=["first attempt", "retry"],
)
def test_give_up_after_a_rejection_counts_the_attempts_made(
    outcomes: list[Outcome], verdicts: list[Verdict]
) -> None:
    """give_up's attempt is the error's attempts, as for every other reason to give up."""
    run = drive(outcomes, settings=with_rules(BREAKER), verdicts=verdicts)
    rejected, give_up = run.events[-2:]
    assert (rejected.kind, give_up.kind) == ("circuit_rejected", "give_up")
    assert give_up.attempt == rejected.attempt == run.error.attempts


def test_events_for_pacing() -> None:
    """A paced attempt is announced with its delay before it is made."""
    run = drive([respond(200)], settings=with_rules(PACING), verdicts=[Verdict(pace=2.5)])
    assert [(e.kind, e.attempt, e.delay) for e in run.events] == [
        ("paced", 0, 2.5),
        ("attempt", 1, 0.0),
    ]


def test_a_raising_hook_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """An on_event hook that raises is logged as a warning, by its type only (its message may
    quote what it was given); the request goes on to its retry and response."""

    def broken(event: ResilienceEvent) -> None:
        raise RuntimeError("metrics down")

    with caplog.at_level(logging.WARNING, logger="httpx_resilience"):
        run = drive([respond(503), respond(200)], settings=with_rules(BUDGET), on_event=broken)
    assert run.response.status_code == 200
    assert run.kinds == ["attempt", "retry", "attempt"]
    warnings = [r for r in caplog.records if "on_event hook raised" in r.getMessage()]
    assert len(warnings) == 3
    assert all("RuntimeError" in r.getMessage() and r.exc_info is None for r in warnings)
    assert "metrics down" not in caplog.text


# --- The errors ----------------------------------------------------------------------------------


def test_circuit_open_error_pickles_and_serialises() -> None:
    """CircuitOpenError survives pickle and to_dict() with its retry_after, attempts and history."""
    run = drive(
        [respond(503)], settings=with_rules(BREAKER), verdicts=[CLEAR, Verdict(open_for=2.0)]
    )
    error = run.error
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is hr.CircuitOpenError
    assert (back.retry_after, back.attempts, back.history, back.code) == (
        2.0,
        1,
        error.history,
        "circuit_open",
    )
    assert back.retryable is True
    data = json.loads(json.dumps(error.to_dict()))
    assert data["type"] == "CircuitOpenError"
    assert (data["retry_after"], data["attempts"], data["code"]) == (2.0, 1, "circuit_open")
    assert data["history"][0]["status_code"] == 503
    assert data["history"][0]["refused"] is None


def test_refused_record_survives_to_dict_and_pickle() -> None:
    """The refused field of a history record is kept by to_dict() and pickle."""
    error = drive([respond(503)], settings=with_rules(BUDGET), spends=[False]).error
    assert error.to_dict()["history"][-1]["refused"] == "retry_budget"
    assert pickle.loads(pickle.dumps(error)).history[-1].refused == "retry_budget"


def test_refused_marks_only_the_last_record() -> None:
    """refused rewrites the last history record only, and leaves an error without history alone."""
    first, last = AttemptRecord(503, "ServiceUnavailableError", 0.5), AttemptRecord(503, "X")
    error = hr.ServiceUnavailableError("busy", history=[first, last])
    give_up = refused(Retry(0.5, True, "status 503", error), "retry_budget")
    assert (give_up.error, give_up.reason) == (error, "retry_budget")
    assert error.history == (first, dataclasses.replace(last, refused="retry_budget"))
    bare = hr.APIError("x")
    refused(Retry(0.5, True, "status 503", bare), "retry_budget")
    assert bare.history == ()


@pytest.mark.parametrize(("after", "kept"), [(29.0, True), (31.0, False)])
def test_a_circuit_left_open_long_ago_is_forgotten(
    clock: FakeClock, after: float, kept: bool
) -> None:
    """An open circuit nobody probed is kept for three breaker windows (30 s here) past the
    time its probe could go, as a Redis key would live; then the host is forgotten like any
    idle one, so a crawler that met many dead hosts does not keep them all for ever."""
    state = MemoryState(clock=clock)
    opened(state)
    clock.advance(OPEN_FOR + after)
    for i in range(5000):  # enough new hosts for a sweep
        state.before(f"https://new-{i}.example", NO_RULES, True)
    assert (HOST in state._hosts) is kept


def test_a_probe_whose_lease_ran_out_long_ago_is_forgotten(clock: FakeClock) -> None:
    """A half-open circuit whose probe never reported back is forgotten three windows after
    its lease ended; the host then starts closed, as one never seen."""
    state = MemoryState(clock=clock)
    opened(state)
    clock.advance(OPEN_FOR)
    assert state.before(HOST, HALF_OF_4, True).probe
    clock.advance(OPEN_FOR + 31.0)
    for i in range(5000):
        state.before(f"https://new-{i}.example", NO_RULES, True)
    assert HOST not in state._hosts
    assert not state.before(HOST, HALF_OF_4, True).probe


def test_the_attempt_event_carries_the_attempts_own_error_when_the_deadline_stops() -> None:
    """An attempt the deadline cut short: its "attempt" event has that attempt's own timeout,
    and only the "give_up" event the call's RequestTimeoutError(phase="total")."""

    def cut_short(clock: FakeClock) -> Exception:
        clock.advance(0.5)  # the attempt's read timeout, cut to the time left, fired
        return httpx.ReadTimeout("slow")

    settings = with_rules(BUDGET, retry=RetryPolicy(timeout=0.5))
    run = drive([cut_short], settings=settings, on_event=lambda e: None)
    assert run.kinds == ["attempt", "give_up"]
    attempt, give_up = run.events
    assert isinstance(attempt.error, RequestTimeoutError)
    assert attempt.error.phase == "read"
    assert isinstance(give_up.error, RequestTimeoutError)
    assert give_up.error.phase == "total"
    assert give_up.reason == "deadline"


def test_a_pause_whose_hook_ran_past_the_deadline_sends_nothing() -> None:
    """A rate-limit pause that fit the deadline, and an on_event("paced") hook that then took
    the rest of it: the first attempt does not go out with every timeout at zero; the call's
    RequestTimeoutError(phase="total") is raised after 0 attempts."""
    clock = FakeClock()

    def slow(event: ResilienceEvent) -> None:
        if event.kind == "paced":
            clock.advance(0.6)

    run = drive(
        [respond(200)],
        settings=with_rules(PACING, retry=RetryPolicy(timeout=1.0)),
        clock=clock,
        verdicts=[Verdict(pace=0.5)],
        on_event=slow,
    )
    assert run.sent == []
    assert isinstance(run.error, hr.RequestTimeoutError)
    assert (run.error.phase, run.error.attempts) == ("total", 0)
