"""Edges of the per-host protection that the mutation run (`make mutation`) found untested."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest

import httpx_resilience as hr
from _support import FakeClock
from httpx_resilience import _state
from httpx_resilience._policies import CircuitBreaker, RetryBudget
from httpx_resilience._state import (
    CLEAR,
    SLOTS,
    MemoryState,
    Rules,
    Verdict,
    _Window,
    host_key,
    pause_of,
)

HOST = "https://api.example.com"


# --- The policies are values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "name", "value"),
    [
        (RetryBudget(), "ratio", 0.5),
        (CircuitBreaker(), "min_calls", 5),
        (Rules(budget=None, breaker=None, pacing=False), "pacing", True),
    ],
    ids=["RetryBudget", "CircuitBreaker", "Rules"],
)
def test_policies_are_immutable(policy: Any, name: str, value: object) -> None:
    """RetryBudget, CircuitBreaker and Rules cannot be changed once made: replace() makes a new one."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(policy, name, value)
    assert getattr(policy, name) != value


@pytest.mark.parametrize(
    "policy",
    [RetryBudget(), CircuitBreaker(), Rules(budget=RetryBudget(), breaker=None, pacing=False)],
    ids=["RetryBudget", "CircuitBreaker", "Rules"],
)
def test_policies_are_slotted(policy: Any) -> None:
    """The policies carry no per-instance dict: a misspelt attribute cannot be slipped in."""
    assert not hasattr(policy, "__dict__")
    with pytest.raises((AttributeError, TypeError)):
        object.__setattr__(policy, "min_call", 5)


@pytest.mark.parametrize(
    ("policy", "kwargs", "message"),
    [
        (
            RetryBudget,
            {"ratio": -1},
            "RetryBudget: ratio must be a share of the requests, from 0 to 1 (budget=None turns the budget off)",
        ),
        (RetryBudget, {"window": 0}, "RetryBudget: window must be seconds > 0"),
        (
            RetryBudget,
            {"min_per_second": -1},
            "RetryBudget: min_per_second must be a number >= 0",
        ),
        (CircuitBreaker, {"failure_ratio": 0}, "CircuitBreaker: failure_ratio must be in (0, 1]"),
        (CircuitBreaker, {"min_calls": 0}, "CircuitBreaker: min_calls must be an int >= 1"),
        (CircuitBreaker, {"window": 0}, "CircuitBreaker: window must be seconds > 0"),
        (CircuitBreaker, {"open_for": 0}, "CircuitBreaker: open_for must be seconds > 0"),
        (
            CircuitBreaker,
            {"failure_statuses": {99}},
            "CircuitBreaker: failure_statuses must be a set of HTTP statuses",
        ),
    ],
    ids=repr,
)
def test_each_bad_value_is_named_in_the_error(
    policy: Any, kwargs: dict[str, Any], message: str
) -> None:
    """The ConfigurationError names the policy, the field and the rule it broke."""
    with pytest.raises(hr.ConfigurationError) as info:
        policy(**kwargs)
    assert info.value.message == message


@pytest.mark.parametrize("kwargs", [{"window": 0.5}, {"open_for": 0.5}], ids=repr)
def test_a_breaker_may_count_and_open_for_under_a_second(kwargs: dict[str, Any]) -> None:
    """A breaker window or open_for below one second is valid: only 0 and less are not."""
    breaker = CircuitBreaker(**kwargs)
    for name, value in kwargs.items():
        assert getattr(breaker, name) == value


# --- MemoryState's answers ------------------------------------------------------------------------

BUDGET = Rules(
    budget=RetryBudget(ratio=0.0, min_per_second=0.1, window=10.0), breaker=None, pacing=False
)
GUARDED = Rules(
    budget=RetryBudget(ratio=0.0, min_per_second=0.1, window=10.0),
    breaker=CircuitBreaker(min_calls=1, failure_ratio=1.0, open_for=5.0),
    pacing=False,
)


def test_spend_refused_is_false() -> None:
    """spend() answers False (a bool, not just falsy) when the budget has no retry left."""
    state = MemoryState(clock=FakeClock())
    state.before(HOST, BUDGET, first=True)
    assert state.spend(HOST, BUDGET) is True  # the reserve: 0.1/s over 10 s is one retry
    assert state.spend(HOST, BUDGET) is False


def _open_circuit(state: MemoryState) -> None:
    state.before(HOST, GUARDED, first=True)
    assert state.spend(HOST, GUARDED) is True
    assert state.after(HOST, GUARDED, failed=True, pause=None, probe=False) == "open"


def test_a_stopped_retry_keeps_its_spend_unless_refunded() -> None:
    """before(first=False) without refund=True gives nothing back when the circuit stops the retry."""
    state = MemoryState(clock=FakeClock())
    _open_circuit(state)
    assert state.before(HOST, GUARDED, first=False).open_for is not None
    assert state.spend(HOST, GUARDED) is False  # the one retry of the window is still spent


def test_a_stopped_retry_refunded_gets_its_spend_back() -> None:
    """The same retry with refund=True gets its spend back: the next retry may go."""
    state = MemoryState(clock=FakeClock())
    _open_circuit(state)
    assert state.before(HOST, GUARDED, first=False, refund=True).open_for is not None
    assert state.spend(HOST, GUARDED) is True


def test_the_async_store_keeps_a_stopped_retrys_spend_unless_refunded() -> None:
    """The async store's before() also defaults to no refund."""
    state = MemoryState(clock=FakeClock())
    _open_circuit(state)
    store = state.async_store()

    async def go() -> tuple[Verdict, bool]:
        verdict = await store.before(HOST, GUARDED, first=False)
        return verdict, await store.spend(HOST, GUARDED)

    verdict, spent = asyncio.run(go())
    assert verdict.open_for is not None
    assert spent is False


def test_the_async_store_reports_the_circuit_it_opened() -> None:
    """The async store's after() returns the breaker's change, as the sync one does."""
    state = MemoryState(clock=FakeClock())
    store = state.async_store()

    async def go() -> str | None:
        await store.before(HOST, GUARDED, first=True)
        return await store.after(HOST, GUARDED, failed=True, pause=None, probe=False)

    assert asyncio.run(go()) == "open"


def test_a_new_host_is_not_paced_whatever_the_clock_reads() -> None:
    """A host never paused goes at once even on a clock that starts at 0."""
    state = MemoryState(clock=FakeClock(0.0))
    pacing = Rules(budget=None, breaker=None, pacing=True)
    assert state.before(HOST, pacing, first=True) == CLEAR


# --- host_key ---------------------------------------------------------------------------------


def test_host_key_of_an_international_name_is_its_ascii_form() -> None:
    """A host in Unicode is keyed by its IDNA form, as it goes on the wire: one key however it is written."""
    assert host_key(httpx.URL("https://bücher.example/a")) == "https://xn--bcher-kva.example"
    assert host_key(httpx.URL("https://xn--bcher-kva.example/b")) == "https://xn--bcher-kva.example"


def test_a_new_request_to_an_open_circuit_is_stopped_though_its_slot_has_deposits() -> None:
    """With a breaker on, a first attempt asks the circuit even when the budget's slot for now already exists."""
    state = MemoryState(clock=FakeClock())
    _open_circuit(state)  # its first attempt made the slot for now
    assert state.before(HOST, GUARDED, first=True).open_for == 5.0


def test_a_request_after_a_quiet_spell_counts_in_the_window_of_now() -> None:
    """A request long after the last one is counted in the window as it is now, not in a slot gone stale."""
    budget = RetryBudget(ratio=1.0, min_per_second=0.0, window=5.0)  # slots of 0.5 s
    only = Rules(budget=budget, breaker=None, pacing=False)
    clock = FakeClock(2.6)
    state = MemoryState(clock=clock)
    state.before(HOST, only, first=True)
    clock.now = 10.0  # the first request's window has long slid by
    state.before(HOST, only, first=True)
    assert state.spend(HOST, only) is True  # 1.0 x the one request of this window


# --- Memory bounds --------------------------------------------------------------------------------


def test_the_longest_pause_is_a_day() -> None:
    """A server asking for a week's wait gets a day's pause: 86,400 seconds."""
    response = httpx.Response(429, headers={"Retry-After": str(7 * 86_400)})
    assert pause_of(response, now=0.0) == 86_400.0


def test_a_window_keeps_only_its_own_slots() -> None:
    """However long a window runs, it holds only the SLOTS slots it can still count."""
    window = _Window(10.0)  # slots of 1 s
    for second in range(25):
        window.add(second + 0.5, 1, 0)
    assert sorted(window._cells) == list(range(25 - SLOTS, 25))


def test_a_refund_takes_from_the_newest_spend() -> None:
    """Of two slots with a spend, a refund takes from the newer: the older one still slides out on time."""
    window = _Window(10.0)
    window.add(0.5, 0, 1)
    window.add(5.5, 0, 1)
    window.refund(5.5)
    assert window.sums(9.5) == (0, 1)
    assert window.sums(10.5) == (0, 0)


def test_a_refund_reaches_the_oldest_slot_of_the_window() -> None:
    """A spend in the window's oldest slot can still be refunded."""
    window = _Window(10.0)
    window.add(0.5, 0, 1)
    window.refund(9.5)  # slot 0 is the oldest the window counts at 9.5
    assert window.sums(9.5) == (0, 0)


def test_a_window_is_empty_once_its_last_count_slides_out() -> None:
    """A window with a count in its oldest slot is not empty; one slot later it is."""
    window = _Window(30.0)  # slots of 3 s
    window.add(1.0, 1, 0)
    assert window.empty(29.0) is False
    assert window.empty(30.0) is True


PACING = Rules(budget=None, breaker=None, pacing=True)


def _fill(state: MemoryState, count: int) -> None:
    for n in range(count):
        state.after(f"https://host-{n}.example", PACING, failed=None, pause=None, probe=False)


def test_the_host_table_is_swept_when_it_holds_1024_hosts() -> None:
    """Idle hosts are forgotten when a new host comes to a table of 1024: not before."""
    state = MemoryState(clock=FakeClock())
    _fill(state, 1024)
    assert len(state._hosts) == 1024
    state.after(HOST, PACING, failed=None, pause=None, probe=False)
    assert list(state._hosts) == [HOST]


def test_a_pause_that_ends_now_is_forgotten() -> None:
    """A host whose pause ends exactly when the table is swept holds nothing any more: it is dropped."""
    clock = FakeClock()
    state = MemoryState(clock=clock)
    state.after(HOST, PACING, failed=None, pause=5.0, probe=False)
    _fill(state, 1023)
    clock.advance(5.0)
    state.after("https://new.example", PACING, failed=None, pause=None, probe=False)
    assert HOST not in state._hosts


def test_the_host_key_cache_starts_over_past_4096_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host-key cache holds up to 4096 keys; the 4097th new host empties it first."""
    cache: dict[tuple[str, str, int | None], str] = {}
    monkeypatch.setattr(_state, "_HOST_KEYS", cache)
    for n in range(4096):
        host_key(httpx.URL(f"https://host-{n}.example/"))
    assert len(cache) == 4096
    assert host_key(httpx.URL("https://one-more.example/")) == "https://one-more.example"
    assert list(cache.values()) == ["https://one-more.example"]


def test_a_request_under_rules_without_a_budget_adds_nothing_to_the_hosts_budget() -> None:
    """Sharing a state, a transport with no budget (and nothing watched) makes no deposit into another's budget."""
    budget = RetryBudget(ratio=1.0, min_per_second=0.0)
    with_budget = Rules(budget=budget, breaker=None, pacing=False)
    without = Rules(budget=None, breaker=None, pacing=False)
    state = MemoryState(clock=FakeClock())
    state.before(HOST, with_budget, first=True)
    state.before(HOST, without, first=True)
    assert state.spend(HOST, with_budget) is True  # 1.0 x one request
    assert state.spend(HOST, with_budget) is False  # not two


BREAKER = Rules(
    budget=None, breaker=CircuitBreaker(min_calls=1, failure_ratio=1.0, open_for=5.0), pacing=False
)


def _opened(clock: FakeClock) -> MemoryState:
    state = MemoryState(clock=clock)
    state.before(HOST, BREAKER, first=True)
    assert state.after(HOST, BREAKER, failed=True, pause=None, probe=False) == "open"
    return state


def _sweep(state: MemoryState) -> None:
    """Fill the table to 1024 hosts, then add one more, which sweeps it."""
    _fill(state, 1024 - len(state._hosts))
    state.after("https://new.example", PACING, failed=None, pause=None, probe=False)


def test_a_circuit_closed_by_its_probe_is_forgotten_at_the_next_sweep() -> None:
    """Once its probe closed the circuit, a host with nothing counted is dropped like any idle host."""
    clock = FakeClock(1000.0)
    state = _opened(clock)
    clock.now = 1005.0
    assert state.before(HOST, BREAKER, first=True).probe is True
    assert state.after(HOST, BREAKER, failed=False, pause=None, probe=True) == "closed"
    clock.now = 1006.0
    _sweep(state)
    assert HOST not in state._hosts


@pytest.mark.parametrize(("now", "kept"), [(1094.5, True), (1095.0, False)])
def test_an_unprobed_open_circuit_is_forgotten_three_windows_past_its_deadline(
    now: float, kept: bool
) -> None:
    """An open circuit nobody probes (reopening at 1005, window 30 s) is kept until 1005 + 3 x 30, then dropped."""
    clock = FakeClock(1000.0)
    state = _opened(clock)
    clock.now = now
    _sweep(state)
    assert (HOST in state._hosts) is kept


def test_an_open_circuit_is_not_idle() -> None:
    """_Host.idle() answers False (a bool) for a circuit still open."""
    state = _opened(FakeClock(1000.0))
    assert state._hosts[HOST].idle(1001.0) is False
