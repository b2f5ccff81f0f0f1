"""Adaptive throttling (`AdaptiveThrottle`): the policy, the rate arithmetic on a fake clock,
`MemoryState`'s bucket, and the transport waiting for its tokens (sync, asyncio, trio).

`RedisState` agreeing with `MemoryState` step for step is in `test_redis_state.py`; the
throttle against a real rate-limited server in `integration/test_throttle.py`.
"""

from __future__ import annotations

import asyncio
import math
import pickle
import re
from typing import Any

import anyio
import httpx
import pytest

import httpx_resilience as hr
from _support import After, Before, FakeClock, Sleep, drive, make_settings, streamed
from httpx_resilience import AdaptiveThrottle, ConfigurationError, MemoryState, RetryPolicy
from httpx_resilience._state import CLEAR, Rules, Verdict, _sending
from httpx_resilience._throttle import (
    Limit,
    capacity,
    earned,
    limit_rate,
    measured_rate,
    zero_point,
)

HOST = "https://api.example.com"
URL = f"{HOST}/v1/x"
THROTTLE = AdaptiveThrottle()
RULES = Rules(budget=None, breaker=None, pacing=False, throttle=THROTTLE)


def answer(
    state: MemoryState, count: int = 1, *, throttled: bool = False, age: float = 0.0
) -> None:
    """Report `count` answers of HOST to attempts sent `age` seconds ago, each first counted
    as sent, as `before` counts it (without taking a token)."""
    for _ in range(count):
        with state._lock:
            now = state._clock()
            _sending(state._host(HOST, now), now)
        state.after(HOST, RULES, None, None, False, throttled, age)


def take(state: MemoryState, patience: float = math.inf, rule: Rules = RULES) -> Verdict:
    """Ask HOST's state before a first attempt that would wait up to `patience`."""
    return state.before(HOST, rule, True, False, patience)


def throttle_at(state: MemoryState, answers: int) -> None:
    """HOST answers `answers - 1` attempts, then throttles one: cut from `answers` a second."""
    answer(state, answers - 1)
    answer(state, throttled=True)


def rate_now(state: MemoryState) -> float:
    """HOST's limit at this instant."""
    limit = state._hosts[HOST].limit
    assert limit is not None, "the host is not limited"
    return limit.rate(state._clock(), THROTTLE)


def reserve_ahead(state: MemoryState, count: int) -> None:
    """`count` callers reserve their tokens however far off (past the horizon, as waiting
    callers asking again would keep doing): the bucket goes as deep below zero."""
    limit = state._hosts[HOST].limit
    assert limit is not None
    for _ in range(count):
        limit.reserve(state._clock(), THROTTLE, math.inf, math.inf)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> MemoryState:
    return MemoryState(clock=clock)


# --- The policy -----------------------------------------------------------------------------


def test_defaults_are_botocores() -> None:
    """429 and 503 throttle; cut to 70 %, CUBIC's C of 0.4, a floor of half a request a second."""
    policy = AdaptiveThrottle()
    assert policy.statuses == frozenset({429, 503})
    assert isinstance(policy.statuses, frozenset)
    assert (policy.cut_to, policy.growth, policy.min_rate) == (0.7, 0.4, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"statuses": set()}, "statuses must name at least one status"),
        ({"statuses": {200}}, "statuses must be error statuses"),
        ({"statuses": "429"}, "statuses must be a set of HTTP statuses"),
        ({"statuses": {True}}, "statuses must be a set of HTTP statuses"),
        ({"cut_to": 0}, "cut_to must be the share of the send rate kept"),
        ({"cut_to": 1}, "cut_to must be the share"),
        ({"cut_to": math.nan}, "cut_to must be the share"),
        ({"cut_to": True}, "cut_to must be the share"),
        ({"growth": 0}, "growth must be requests per second per second cubed"),
        ({"growth": math.inf}, "growth must be"),
        ({"growth": 1e7}, "growth must be"),
        ({"growth": 1e-300}, "growth must be"),
        ({"growth": 5e-324}, "growth must be"),
        ({"min_rate": 0}, "min_rate must be requests per second"),
        ({"min_rate": -1}, "min_rate must be"),
        ({"min_rate": 2e6}, "min_rate must be"),
        ({"min_rate": "1"}, "min_rate must be"),
    ],
    ids=repr,
)
def test_bad_values_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Each bad value raises ConfigurationError naming the policy and the field."""
    with pytest.raises(ConfigurationError, match=f"AdaptiveThrottle: {message}"):
        AdaptiveThrottle(**kwargs)


def test_a_policy_is_a_value() -> None:
    """It pickles, hashes, compares by value, and replace() validates."""
    policy = AdaptiveThrottle(statuses=[429], min_rate=2)
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert hash(policy) == hash(AdaptiveThrottle(statuses={429}, min_rate=2.0))
    assert policy.replace(cut_to=0.5).cut_to == 0.5
    with pytest.raises(ConfigurationError, match="cut_to"):
        policy.replace(cut_to=2)


@pytest.mark.parametrize("make", [hr.ResilientTransport, hr.AsyncResilientTransport])
@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (True, r"\(throttle=AdaptiveThrottle\(\) turns it on\)"),
        (0.7, "got 0.7"),
        ("on", "got 'on'"),
    ],
)
def test_the_transports_refuse_what_is_no_throttle(make: Any, value: object, hint: str) -> None:
    """`throttle=` takes an AdaptiveThrottle or None; anything else is named in the error."""
    with pytest.raises(
        ConfigurationError, match="throttle must be an AdaptiveThrottle or None"
    ) as info:
        make(throttle=value)
    assert re.search(hint, str(info.value))


def test_the_httpx2_transports_take_it_too() -> None:
    """httpx_resilience.httpx2's transports take the same argument."""
    from httpx_resilience import httpx2 as hx2

    for make in (hx2.ResilientTransport, hx2.AsyncResilientTransport):
        assert make(throttle=AdaptiveThrottle())._settings.rules.throttle == AdaptiveThrottle()
        with pytest.raises(ConfigurationError, match="throttle"):
            make(throttle=True)


def test_the_throttle_makes_the_rules_watch_attempts() -> None:
    """With a throttle, every attempt is asked about and reported (`watches`)."""
    assert (RULES.active, RULES.watches) == (True, True)
    assert Rules(budget=None, breaker=None, pacing=False).watches is False


# --- The arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize("w_max", [0.5, 3.0, 50.0, 1234.5])
def test_the_curve_starts_at_cut_to_and_is_back_at_w_max_at_its_zero_point(w_max: float) -> None:
    """rate(0) = cut_to * w_max (or the floor); rate(K) = w_max; it grows faster past K."""
    policy = AdaptiveThrottle()
    zero = zero_point(w_max, policy)
    assert zero == pytest.approx((w_max * 0.3 / 0.4) ** (1 / 3))
    assert limit_rate(w_max, zero, 0.0, policy) == pytest.approx(max(0.7 * w_max, 0.5))
    assert limit_rate(w_max, zero, zero, policy) == pytest.approx(max(w_max, 0.5))
    early = limit_rate(w_max, zero, zero + 1, policy) - limit_rate(w_max, zero, zero, policy)
    later = limit_rate(w_max, zero, zero + 2, policy) - limit_rate(w_max, zero, zero + 1, policy)
    assert 0 < early < later


def test_the_curve_is_monotonic_and_never_below_the_floor() -> None:
    """From the cut on, the limit only grows, and never below min_rate."""
    policy = AdaptiveThrottle(min_rate=2.0)
    zero = zero_point(2.5, policy)
    rates = [limit_rate(2.5, zero, t / 10, policy) for t in range(200)]
    assert rates == sorted(rates)
    assert min(rates) == 2.0


@pytest.mark.parametrize(
    ("w_max", "start", "end"),
    [(20.0, 0.0, 1.0), (20.0, 0.5, 6.0), (0.3, 0.0, 3.0), (2.0, 0.0, 2.0), (500.0, 1.0, 30.0)],
)
def test_the_bucket_earns_the_integral_of_the_limit(w_max: float, start: float, end: float) -> None:
    """Tokens earned over a span are the limit's integral over it, the floor included (checked
    against a fine Riemann sum)."""
    policy = AdaptiveThrottle(min_rate=1.0)
    zero = zero_point(w_max, policy)
    steps = 20_000
    width = (end - start) / steps
    riemann = sum(
        limit_rate(w_max, zero, start + (i + 0.5) * width, policy) * width for i in range(steps)
    )
    assert earned(w_max, zero, start, end, policy) == pytest.approx(riemann, rel=1e-6)


def test_the_meter_reads_the_answers_of_the_last_second() -> None:
    """The send rate is the answers counted in the meter's one-second window."""
    assert measured_rate(0) == 0.0
    assert measured_rate(37) == 37.0


def test_the_bucket_holds_a_seconds_worth_and_at_least_one() -> None:
    """Capacity is max(1, rate), botocore's."""
    assert capacity(0.5) == 1.0
    assert capacity(40.0) == 40.0


def test_a_limit_reserves_ahead_and_spaces_the_tokens(clock: FakeClock) -> None:
    """From an empty bucket, tokens come every 1/rate; a wait past patience takes nothing."""
    limit = Limit(clock.now)
    limit.cut(clock.now, 20.0, THROTTLE)  # 14 a second
    waits = [limit.reserve(clock.now, THROTTLE, math.inf) for _ in range(3)]
    assert [wait for wait, _ in waits] == pytest.approx([1 / 14, 2 / 14, 3 / 14])
    assert all(reserved for _, reserved in waits)
    assert limit.reserve(clock.now, THROTTLE, 0.2) == (None, False)
    wait, reserved = limit.reserve(clock.now, THROTTLE, 4 / 14 + 1e-9)
    assert (wait, reserved) == (pytest.approx(4 / 14), True)


def test_a_token_past_the_horizon_is_not_reserved(clock: FakeClock) -> None:
    """A token due more than a second off is not taken: the caller is told to ask again in a
    second, and the balance is as it was."""
    limit = Limit(clock.now)
    limit.cut(clock.now, 20.0, THROTTLE)  # 14 a second
    for _ in range(14):
        limit.reserve(clock.now, THROTTLE, math.inf)
    before = limit.tokens
    assert limit.reserve(clock.now, THROTTLE, math.inf) == (1.0, False)
    assert limit.tokens == before


# --- MemoryState ------------------------------------------------------------------------------


def test_no_limit_until_the_host_first_throttles(state: MemoryState) -> None:
    """Successes, and errors that are no throttling, leave the host unlimited."""
    answer(state, 1000)
    state.after(HOST, RULES, None, None, False, False, 0.0)  # say, a 500
    assert all(take(state) is CLEAR for _ in range(1000))
    assert state._hosts[HOST].limit is None


def test_a_throttling_answer_cuts_to_cut_to_of_the_send_rate(state: MemoryState) -> None:
    """20 answers in the last second, the last one a 429: the host is limited to 14 a second,
    and the first request waits for the first token of an empty bucket."""
    throttle_at(state, 20)
    verdict = take(state)
    assert verdict.throttled
    assert verdict.pace == pytest.approx(1 / 14)
    assert rate_now(state) == pytest.approx(14)


def test_a_custom_cut_to(clock: FakeClock) -> None:
    """cut_to is the share kept."""
    state = MemoryState(clock=clock)
    rule = Rules(budget=None, breaker=None, pacing=False, throttle=AdaptiveThrottle(cut_to=0.5))
    for throttled in [False] * 9 + [True]:
        state.before(HOST, rule, True)  # sent: counted in the meter
        state.after(HOST, rule, None, None, False, throttled, 0.0)
    assert state.before(HOST, rule, True).pace == pytest.approx(1 / 5)


def test_fifty_callers_at_once_are_spread_out(state: MemoryState) -> None:
    """Each caller reserves its own token, up to a second ahead: the waits are 1/r, 2/r, ...,
    not all alike."""
    throttle_at(state, 20)
    verdicts = [take(state) for _ in range(50)]
    # A second's worth reserve their tokens, 1/14 s apart; the rest ask again in a second.
    reserved = [v for v in verdicts if not v.again]
    assert len(reserved) in (13, 14)  # the 14th is due at the horizon itself
    assert [v.pace for v in reserved] == pytest.approx(
        [k / 14 for k in range(1, 15)][: len(reserved)]
    )
    assert all(v.again and v.pace == 1.0 for v in verdicts[len(reserved) :])


def test_the_bucket_refills_up_to_a_seconds_worth(state: MemoryState, clock: FakeClock) -> None:
    """After a quiet spell, a burst of capacity tokens goes at once, and the next one waits."""
    throttle_at(state, 20)
    clock.advance(2.0)  # time to fill, before the curve is back at 20 (K is about 2.5 s)
    rate = limit_rate(20.0, zero_point(20.0, THROTTLE), 2.0, THROTTLE)
    at_once = 0
    while take(state).pace == 0:
        at_once += 1
    assert at_once == math.floor(rate)


def test_an_attempt_admitted_before_the_cut_does_not_cut_again(
    state: MemoryState, clock: FakeClock
) -> None:
    """Throttling answers to attempts that were admitted before the last cut were part of the
    overload it answered: one cut per round trip."""
    throttle_at(state, 20)
    clock.advance(0.05)
    answer(state, 10, throttled=True, age=0.1)  # admitted 0.1 s ago: before the cut
    assert rate_now(state) == pytest.approx(
        limit_rate(20.0, zero_point(20.0, THROTTLE), 0.05, THROTTLE)
    )


def test_a_later_throttling_answer_cuts_from_the_lower_of_sent_and_limit(
    state: MemoryState, clock: FakeClock
) -> None:
    """An attempt admitted after the cut, throttled: cut again, from the limit when the
    client sent faster than that (here 40 answers in the second, limit about 14)."""
    throttle_at(state, 20)
    clock.advance(0.5)
    limit = limit_rate(20.0, zero_point(20.0, THROTTLE), 0.5, THROTTLE)
    answer(state, 19)
    answer(state, throttled=True, age=0.1)
    assert rate_now(state) == pytest.approx(0.7 * limit)


def test_the_rate_grows_back_along_the_curve(state: MemoryState, clock: FakeClock) -> None:
    """No throttling for K seconds: the limit is back at the rate that was cut (20 a second),
    and past it grows ever faster."""
    throttle_at(state, 20)
    reserve_ahead(state, 1000)  # callers waiting all along: the limit is never lifted
    zero = zero_point(20.0, THROTTLE)
    seen = []
    for at in (0.0, zero / 2, zero, zero + 1, zero + 2):
        clock.now = 1000.0 + at
        seen.append(rate_now(state))
    assert seen == pytest.approx([14, limit_rate(20.0, zero, zero / 2, THROTTLE), 20, 20.4, 23.2])


def test_the_rate_never_falls_below_min_rate(state: MemoryState, clock: FakeClock) -> None:
    """However often the host throttles, the limit stays at or above min_rate (0.5 a second)."""
    throttle_at(state, 20)
    for _ in range(30):
        clock.advance(0.01)
        answer(state, throttled=True)
    assert rate_now(state) == pytest.approx(0.5)


def test_an_attempt_that_would_wait_past_its_patience_reserves_nothing(state: MemoryState) -> None:
    """A wait longer than the attempt would make (max_retry_after, the deadline) is not
    reserved: the state says nothing, and the next caller gets that token."""
    throttle_at(state, 20)
    assert take(state, patience=1 / 28) is CLEAR
    assert take(state, patience=-1.0) is CLEAR
    assert take(state, patience=1 / 14 + 1e-9).pace == pytest.approx(1 / 14)


def test_a_cut_keeps_the_moments_of_the_tokens_reserved(
    state: MemoryState, clock: FakeClock
) -> None:
    """Callers told to wait keep their turn; the next one comes after the last of them, at the
    new rate, not later."""
    throttle_at(state, 20)
    last = [take(state).pace for _ in range(5)][-1]  # 5/14
    answer(state, throttled=True)  # admitted now, after the cut: cut again
    new_rate = 0.7 * 14
    assert take(state).pace == pytest.approx(last + 1 / new_rate)


def test_the_limit_is_lifted_once_back_and_holding_nothing_back(
    state: MemoryState, clock: FakeClock
) -> None:
    """Past K with a full bucket the limit goes: requests are not limited, until the host
    throttles again, which cuts from the rate measured then."""
    throttle_at(state, 20)
    clock.advance(zero_point(20.0, THROTTLE) + 1.0)
    assert take(state) is CLEAR
    assert state._hosts[HOST].limit is None
    assert all(take(state) is CLEAR for _ in range(200))
    clock.advance(2.0)  # the meter's second has passed: it starts from nothing
    throttle_at(state, 10)
    assert take(state).pace == pytest.approx(1 / 7)


def test_a_limit_that_holds_requests_back_is_not_lifted(
    state: MemoryState, clock: FakeClock
) -> None:
    """Past K but with tokens still reserved ahead (callers waiting), the limit stays."""
    throttle_at(state, 20)
    reserve_ahead(state, 100)  # some 7 s of tokens reserved
    clock.advance(zero_point(20.0, THROTTLE) + 0.5)
    verdict = take(state)
    assert verdict.throttled
    assert verdict.again  # still more than a second's worth queued ahead


def test_a_throttled_host_is_kept_until_its_limit_would_be_lifted(
    state: MemoryState, clock: FakeClock
) -> None:
    """The host's state is not forgotten while its limit holds, and is once it would be
    lifted and the meter has emptied."""
    throttle_at(state, 20)
    for _ in range(30):
        take(state)
    host = state._hosts[HOST]
    clock.advance(1.5)
    assert not host.idle(clock.now)  # K is about 2.5 s
    clock.advance(5.0)
    assert host.idle(clock.now)


def test_a_host_only_metered_is_forgotten_once_its_second_is_over(
    state: MemoryState, clock: FakeClock
) -> None:
    """Answers with no throttling keep a host for the meter's second only."""
    answer(state, 5)
    assert not state._hosts[HOST].idle(clock.now)
    clock.advance(1.1)
    assert state._hosts[HOST].idle(clock.now)


@pytest.mark.parametrize(("pause", "throttled"), [(3.0, False), (0.01, True)])
def test_with_pacing_the_longer_wait_counts(
    state: MemoryState, pause: float, throttled: bool
) -> None:
    """A rate-limit pause and the throttle's token: the attempt waits for the later one, and
    the verdict says whose it is."""
    rule = Rules(budget=None, breaker=None, pacing=True, throttle=THROTTLE)
    throttle_at(state, 20)
    state.after(HOST, rule, None, pause, False)
    verdict = state.before(HOST, rule, True)
    assert verdict.throttled is throttled
    assert verdict.pace == pytest.approx(max(pause, 1 / 14))


def test_an_open_circuit_takes_no_token_and_the_probe_waits_within_its_lease(
    state: MemoryState, clock: FakeClock
) -> None:
    """An attempt the circuit stops takes no token; the probe's lease covers its wait."""
    breaker = hr.CircuitBreaker(failure_ratio=1.0, min_calls=1, window=10, open_for=5.0)
    rule = Rules(budget=None, breaker=breaker, pacing=False, throttle=THROTTLE)
    throttle_at(state, 20)
    assert state.after(HOST, rule, True, None, False) == "open"
    assert state.before(HOST, rule, True).open_for == pytest.approx(5.0)
    reserve_ahead(state, 200)  # 14 s of tokens reserved at 14 a second
    clock.advance(5.0)
    probe = state.before(HOST, rule, True)
    assert probe.probe
    assert probe.throttled
    assert probe.pace > 1
    assert state._hosts[HOST].reopens_at == pytest.approx(clock.now + probe.pace + 5.0)


def test_the_async_store_shares_the_state(state: MemoryState) -> None:
    """MemoryState's async face answers from the same buckets."""
    throttle_at(state, 20)
    store = state.async_store()

    async def go() -> list[float]:
        await store.after(HOST, RULES, None, None, False, False, 0.0)
        return [(await store.before(HOST, RULES, True, False, math.inf)).pace for _ in range(2)]

    assert asyncio.run(go()) == pytest.approx([1 / 14, 2 / 14])


# --- The driver -------------------------------------------------------------------------------


def with_throttle(**changes: Any) -> Any:
    return make_settings(rules=RULES, **changes)


def test_a_throttle_wait_is_slept_and_announced() -> None:
    """A verdict whose pace is the throttle's is slept before the send, and `on_event` hears
    "paced" with reason "throttle"."""
    run = drive(
        [streamed(200)], settings=with_throttle(), verdicts=[Verdict(pace=0.25, throttled=True)]
    )
    assert run.names[:3] == ["Before", "Sleep", "Send"]
    assert run.of(Sleep) == [Sleep(0.25)]
    paced = [e for e in run.events if e.kind == "paced"]
    assert [(e.delay, e.reason, e.attempt) for e in paced] == [(0.25, "throttle", 0)]


def test_a_rate_limit_pause_keeps_its_reason() -> None:
    """A pace that is a rate-limit window's is still announced without a reason."""
    run = drive([streamed(200)], settings=with_throttle(), verdicts=[Verdict(pace=0.25)])
    assert [(e.kind, e.reason) for e in run.events if e.kind == "paced"] == [("paced", None)]


@pytest.mark.parametrize(
    ("retry", "patience"),
    [
        (RetryPolicy(), 120.0),
        (RetryPolicy(max_retry_after=2.0), 2.0),
        (RetryPolicy(timeout=30.0), 30.0),
        (RetryPolicy(timeout=300.0), 120.0),
    ],
    ids=["default", "max_retry_after", "deadline", "deadline past max_retry_after"],
)
def test_the_state_hears_how_long_the_attempt_would_wait(
    retry: RetryPolicy, patience: float
) -> None:
    """`before` is told the attempt's patience: max_retry_after, or the time left before the
    deadline when that is shorter."""
    run = drive([streamed(200)], settings=with_throttle(retry=retry))
    (before,) = run.of(Before)
    assert before.patience == pytest.approx(patience)


@pytest.mark.parametrize(
    ("status", "throttled"), [(429, True), (503, True), (200, False), (500, False)]
)
def test_each_answer_is_reported_as_throttled_or_not(status: int, throttled: bool) -> None:
    """`after` hears whether the host throttled the attempt, and how long ago it was admitted."""
    run = drive([streamed(status)], settings=with_throttle(retry=RetryPolicy(max_attempts=1)))
    assert run.of(After) == [After(None, None, False, throttled, 0.0)]


def test_a_transport_error_is_no_answer() -> None:
    """An attempt the host never answered tells the throttle nothing."""
    run = drive(
        [httpx.ConnectError("refused")],
        settings=with_throttle(retry=RetryPolicy(max_attempts=1)),
    )
    assert run.of(After) == [After(None, None, False, None, 0.0)]


# --- Through a transport, every mode ----------------------------------------------------------


class Host:
    """An inner transport for both worlds: answers 429 to the requests `throttles` names
    (by their 1-based number), 200 to the others."""

    def __init__(self, throttles: set[int]) -> None:
        self.throttles = throttles
        self.seen = 0

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        return httpx.Response(429 if self.seen in self.throttles else 200)


def requests_through(
    mode: str, count: int, throttles: set[int], **kwargs: Any
) -> tuple[list[float], list[hr.ResilienceEvent], list[int]]:
    """`count` GETs in a row through a transport of `mode` with the throttle on, on a fake
    clock that only the transport's sleep moves: (the sleeps, the events, the statuses)."""
    clock = FakeClock()
    host = Host(throttles)
    sleeps: list[float] = []
    events: list[hr.ResilienceEvent] = []
    statuses: list[int] = []

    def sleep(delay: float) -> None:
        sleeps.append(delay)
        clock.advance(delay)

    async def asleep(delay: float) -> None:
        sleep(delay)
        await anyio.lowlevel.checkpoint()

    options: dict[str, Any] = {
        "throttle": THROTTLE,
        "state": MemoryState(clock=clock),
        "on_event": events.append,
        "retry": RetryPolicy(max_attempts=1),
        "errors": hr.ErrorPolicy(raise_on_status=False),
        **kwargs,
    }
    if mode == "sync":
        transport = hr.ResilientTransport(httpx.MockTransport(host.answer), sleep=sleep, **options)
        transport._clock = clock
        with httpx.Client(transport=transport) as client:
            statuses = [client.get(URL).status_code for _ in range(count)]
        return sleeps, events, statuses

    async def go() -> None:
        transport = hr.AsyncResilientTransport(
            httpx.MockTransport(host.answer), sleep=asleep, **options
        )
        transport._clock = clock
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(count):
                statuses.append((await client.get(URL)).status_code)

    anyio.run(go, backend=mode)
    return sleeps, events, statuses


def test_requests_wait_for_their_tokens_after_the_host_throttles(mode: str) -> None:
    """Unlimited until the 10th answer, a 429 (10 answers in the second: 7 a second); then each
    request waits for its token, first 1/7 s, a little less as the limit grows back, announced
    as a throttled pace."""
    sleeps, events, statuses = requests_through(mode, 14, {10})
    assert statuses == [200] * 9 + [429] + [200] * 4
    assert sleeps[0] == pytest.approx(1 / 7)
    assert all(0.1 < delay < 1 / 7 for delay in sleeps[1:])
    assert len(sleeps) == 4
    paced = [(e.delay, e.reason) for e in events if e.kind == "paced"]
    assert [reason for _, reason in paced] == ["throttle"] * 4


def test_without_the_throttle_nothing_waits(mode: str) -> None:
    """The same host, the throttle off: no request waits."""
    sleeps, events, _ = requests_through(mode, 14, {10}, throttle=None)
    assert sleeps == []
    assert not [e for e in events if e.kind == "paced"]


def test_a_wait_past_max_retry_after_is_not_made(mode: str) -> None:
    """A token further off than max_retry_after is not waited for: the request goes at once."""
    retry = RetryPolicy(max_attempts=1, max_retry_after=0.1)
    sleeps, _, statuses = requests_through(mode, 14, {10}, retry=retry)
    assert sleeps == []
    assert len(statuses) == 14


def test_no_wait_skips_the_default_sleep(mode: str) -> None:
    """Under `testing.no_wait()` (on in this suite) the default sleep skips the throttle's wait:
    the event still tells of it."""
    host = Host({10})
    events: list[hr.ResilienceEvent] = []
    options: dict[str, Any] = {
        "throttle": THROTTLE,
        "on_event": events.append,
        "retry": RetryPolicy(max_attempts=1),
        "errors": hr.ErrorPolicy(raise_on_status=False),
    }
    if mode == "sync":
        transport = hr.ResilientTransport(httpx.MockTransport(host.answer), **options)
        with httpx.Client(transport=transport) as client:
            for _ in range(14):
                client.get(URL)
    else:

        async def go() -> None:
            transport = hr.AsyncResilientTransport(httpx.MockTransport(host.answer), **options)
            async with httpx.AsyncClient(transport=transport) as client:
                for _ in range(14):
                    await client.get(URL)

        anyio.run(go, backend=mode)
    paced = [e for e in events if e.kind == "paced"]
    assert len(paced) >= 3
    assert all(e.reason == "throttle" and e.delay > 0 for e in paced)


# --- Break-it round 2: cold starts, queued attempts, cancelled waits --------------------------


def test_a_burst_throttled_at_once_is_cut_from_what_was_sent(state: MemoryState) -> None:
    """50 attempts go at once and the first answer is a 429: the cut starts from the 50 sent
    in the last second (to 35 a second), not from the one answer back so far."""
    for _ in range(50):
        assert take(state) == CLEAR
    state.after(HOST, RULES, None, None, False, True, 0.0)
    assert take(state).pace == pytest.approx(1 / 35)


def test_an_attempt_queued_across_a_cut_cuts_again_when_sent_after_it(clock: FakeClock) -> None:
    """The transport counts an attempt from when it was sent, after its wait for a token: one
    queued before a cut but sent after it, throttled, cuts again."""
    state = MemoryState(clock=clock)
    answer(state, 10, throttled=False)
    answer(state, throttled=True)  # cut at t0, to 7 a second
    for _ in range(20):
        take(state)  # a queue: the next token is about 3 s off

    def sleep(delay: float) -> None:
        clock.advance(0.5)
        answer(state, throttled=True)  # a second cut while the attempt below waits
        clock.advance(delay - 0.5)

    transport = hr.ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(429)),
        throttle=THROTTLE,
        state=state,
        sleep=sleep,
        retry=RetryPolicy(max_attempts=1, max_retry_after=60),
    )
    transport._clock = clock
    with httpx.Client(transport=transport) as client:
        second_cut = None

        def record_cut() -> None:
            nonlocal second_cut
            limit = state._hosts[HOST].limit
            assert limit is not None
            second_cut = limit.cut_at

        with pytest.raises(hr.RateLimitError):
            client.get(URL)
        record_cut()
    # The attempt was sent (and answered) after the second cut: a third cut, at its answer.
    assert second_cut == clock.now


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_wait_gives_its_token_back(backend: str, clock: FakeClock) -> None:
    """Callers cancelled while they wait for their tokens give them back: a caller after them
    waits for a token at the rate, not behind the cancelled ones."""
    state = MemoryState(clock=clock)
    answer(state, 10)
    answer(state, throttled=True)  # 7 a second, an empty bucket
    transport = hr.AsyncResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        throttle=THROTTLE,
        state=state,
        retry=RetryPolicy(max_retry_after=600),
        sleep=anyio.sleep,  # real waits, whatever the suite's no_wait()
    )
    transport._clock = clock

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            with anyio.move_on_after(0.05):
                async with anyio.create_task_group() as group:
                    for _ in range(30):
                        group.start_soon(client.get, URL)

    anyio.run(main, backend=backend)
    # Nobody is queued any more: the next token is at most one at the rate away, not 30.
    assert take(state).pace <= 1 / 7


def test_a_token_past_the_horizon_is_asked_for_again(clock: FakeClock) -> None:
    """At 0.7 a second the first token is 1.43 s off: the attempt waits a second, asks
    again, then reserves the token and goes, at the rate the curve has grown to by then."""
    state = MemoryState(clock=clock)
    answer(state, throttled=True)  # one sent, throttled: 0.7 a second, an empty bucket
    events: list[hr.ResilienceEvent] = []
    transport = hr.ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        throttle=THROTTLE,
        state=state,
        sleep=clock.advance,
        on_event=events.append,
    )
    transport._clock = clock
    with httpx.Client(transport=transport) as client:
        assert client.get(URL).status_code == 200
    first, second = (e.delay for e in events if e.kind == "paced")
    assert first == 1.0
    # What was left of the token, at the rate the curve had grown to meanwhile: less than the
    # 0.43 s it would be at 0.7 a second.
    assert 0 < second < 1 / 0.7 - 1.0
    assert all(e.reason == "throttle" for e in events if e.kind == "paced")


# --- Break-it round 3: who goes first, tokens given back, no_wait() -----------------------------


def test_a_caller_that_waited_may_reserve_further_ahead(state: MemoryState) -> None:
    """A newcomer whose token is more than a second off asks again; a caller that already
    waited a second (`ahead=2`) reserves it: those who waited are not overtaken for ever."""
    answer(state, 10)
    answer(state, throttled=True)  # 7 a second, an empty bucket
    reserve_ahead(state, 9)  # the next token is 10/7 s off
    newcomer = state.before(HOST, RULES, True, False, math.inf, 1.0)
    assert newcomer.again
    assert not newcomer.reserved
    waited = state.before(HOST, RULES, True, False, math.inf, 2.0)
    assert not waited.again
    assert waited.reserved
    assert 1.0 < waited.pace <= 10 / 7


def test_a_token_taken_under_a_longer_pause_is_marked_reserved(state: MemoryState) -> None:
    """With pacing, a rate-limit pause longer than the token's wait is what is slept: the token
    taken is still marked, so a cancelled wait gives it back."""
    rules = Rules(budget=None, breaker=None, pacing=True, throttle=THROTTLE)
    answer(state, 10)
    answer(state, throttled=True)
    state.after(HOST, rules, None, 30.0, False)  # the host asked for 30 s
    verdict = state.before(HOST, rules, True)
    assert verdict.pace == pytest.approx(30.0)
    assert not verdict.throttled
    assert verdict.reserved


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_caller_cancelled_in_its_paced_hook_gives_its_token_back(
    backend: str, clock: FakeClock
) -> None:
    """An async on_event hook awaited for the "paced" event, cancelled there: the token goes
    back all the same."""
    state = MemoryState(clock=clock)
    answer(state, 10)
    answer(state, throttled=True)

    async def slow_hook(event: hr.ResilienceEvent) -> None:
        if event.kind == "paced":
            await anyio.sleep(5)

    transport = hr.AsyncResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        throttle=THROTTLE,
        state=state,
        on_event=slow_hook,
        sleep=anyio.sleep,
    )
    transport._clock = clock

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            with anyio.move_on_after(0.05):
                async with anyio.create_task_group() as group:
                    for _ in range(5):
                        group.start_soon(client.get, URL)

    anyio.run(main, backend=backend)
    assert take(state).pace <= 1 / 7


def test_under_no_wait_an_attempt_asks_once(clock: FakeClock) -> None:
    """With the waits skipped, a caller told to ask again goes instead: one "paced" event per
    attempt, not one per second of max_retry_after."""
    from httpx_resilience.testing import no_wait

    state = MemoryState(clock=clock)
    answer(state, throttled=True)  # 0.7 a second: the first token is 1.43 s off
    events: list[hr.ResilienceEvent] = []
    transport = hr.ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        throttle=THROTTLE,
        state=state,
        on_event=events.append,
    )
    transport._clock = clock
    with no_wait(), httpx.Client(transport=transport) as client:
        assert client.get(URL).status_code == 200
    assert [e.kind for e in events].count("paced") == 1
