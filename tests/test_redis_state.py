"""`RedisState` against a real `redis-server`: it must agree with `MemoryState` step for step.

Every scenario runs on both states at once (the Redis one through a sync `redis.Redis` and
through `redis.asyncio`), and each answer is checked against the other and against the value
the scenario expects. Then what only Redis does: expiry, pruning, failing open, and one budget
shared by two processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

import _redis_server
from _redis_server import RedisServer, free_port, redis_server
from httpx_resilience._errors import ConfigurationError
from httpx_resilience._policies import AdaptiveThrottle, CircuitBreaker, RetryBudget
from httpx_resilience._redis import MAX_TTL, RedisState
from httpx_resilience._state import MAX_PAUSE, SLOTS, MemoryState, Rules, Verdict
from httpx_resilience._throttle import earned, limit_rate, zero_point

HOST = "https://api.example.com:443"
# How far the two states' answers may drift apart (they are asked a moment apart), and how far
# either may be from what the scenario expects (sleeps overshoot on a busy machine).
AGREE = 0.03
NEAR = 0.1
OPEN_FOR = 0.3
SRC = Path(__file__).resolve().parent.parent / "src"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def anyio_backend() -> str:
    """redis.asyncio runs on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
def client(server: RedisServer) -> Iterator[Any]:
    connection = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture
def prefix() -> str:
    """A namespace of keys no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


def _offline_client(**kwargs: Any) -> Any:
    """A client for a port nothing listens on, that gives up at once."""
    return redis.Redis(
        host="127.0.0.1",
        port=free_port(),
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )


# ---- scenarios: (operation, arguments..., expected), run on both states ----------------------


def _before(first: bool = True, refund: bool = False, **expected: Any) -> tuple[Any, ...]:
    return ("before", first, refund, Verdict(**expected))


def _after(
    failed: bool | None, expected: str | None, pause: float | None = None, probe: bool = False
) -> tuple[Any, ...]:
    return ("after", failed, pause, probe, expected)


def _spend(expected: bool) -> tuple[Any, ...]:
    return ("spend", expected)


def _sleep(seconds: float) -> tuple[Any, ...]:
    return ("sleep", seconds)


def _take(patience: float = math.inf, **expected: Any) -> tuple[Any, ...]:
    """A first attempt asks, that would wait up to `patience` for the throttle's token."""
    return ("take", patience, Verdict(**expected))


def _answer(throttled: bool, age: float = 0.0) -> tuple[Any, ...]:
    """The host answered an attempt admitted `age` seconds ago, throttling it or not."""
    return ("answer", throttled, age, None)


# reserve = 0.1 * 30 = 3 retries; then half the requests.
BUDGET = Rules(
    budget=RetryBudget(ratio=0.5, window=30, min_per_second=0.1), breaker=None, pacing=False
)
BUDGET_STEPS = [
    *[_spend(True)] * 3,
    _spend(False),  # the reserve is spent
    *[_before()] * 4,  # 4 requests: 3 + 0.5 * 4 = 5 retries
    _spend(True),
    _spend(True),
    _spend(False),
    _before(first=False),  # a retry's attempt deposits nothing
    _spend(False),
    *[_before()] * 2,  # 6 requests: 3 + 3 = 6
    _spend(True),
    _spend(False),
    _after(True, None, pause=10.0),  # pacing off: the pause is ignored
    _before(),
]

# reserve = 10 * 0.2 = 2 retries per 0.2 s window.
SLIDING = Rules(
    budget=RetryBudget(ratio=0, window=0.2, min_per_second=10), breaker=None, pacing=False
)
SLIDING_STEPS = [
    _spend(True),
    _spend(True),
    _spend(False),
    _sleep(0.3),  # past the window and its last slot: the retries have left it
    _spend(True),
    _spend(True),
    _spend(False),
]

BREAKER = Rules(
    budget=None,
    breaker=CircuitBreaker(failure_ratio=0.5, min_calls=4, window=30, open_for=OPEN_FOR),
    pacing=False,
)
BREAKER_STEPS = [
    _before(),
    *[_after(False, None)] * 3,
    _after(True, None),  # 1 of 4 failed: under the ratio
    _after(True, None),  # 2 of 5
    _after(True, "open"),  # 3 of 6 = 0.5
    _before(open_for=OPEN_FOR),
    _after(True, None),  # sent before it opened: ignored
    _after(False, None),
    _before(open_for=OPEN_FOR),
    _sleep(OPEN_FOR + 0.1),
    _before(probe=True, change="half_open"),
    _before(open_for=OPEN_FOR),  # the probe's lease
    _after(True, None),  # not the probe: ignored
    _after(False, "closed", probe=True),
    _before(),
    *[_after(True, None)] * 3,  # counts start afresh: 3 calls < min_calls
    _after(True, "open"),
    _sleep(OPEN_FOR + 0.1),
    _before(probe=True, change="half_open"),
    _after(True, "open", probe=True),  # the probe failed: open again
    _before(open_for=OPEN_FOR),
    _sleep(OPEN_FOR + 0.1),
    _before(probe=True, change="half_open"),
    _sleep(OPEN_FOR + 0.1),  # the probe never reported: another goes
    _before(probe=True),
    _after(False, "closed", probe=True),
    _before(),
]

PACING = Rules(budget=None, breaker=None, pacing=True)
PACING_STEPS = [
    _before(),
    _after(None, None, pause=0.5),
    _before(pace=0.5),
    _sleep(0.25),
    _before(pace=0.25),  # counted down
    _after(None, None, pause=0.05),  # a shorter pause does not shorten it
    _before(pace=0.25),
    _after(None, None, pause=0.4),  # a longer one lengthens it
    _before(pace=0.4),
    _sleep(0.5),
    _before(),
]

# A reserve of 2 retries, and a circuit that opens at the first failure.
REFUND = Rules(
    budget=RetryBudget(ratio=0, window=30, min_per_second=2 / 30),
    breaker=CircuitBreaker(failure_ratio=1.0, min_calls=1, window=30, open_for=30),
    pacing=False,
)
REFUND_STEPS = [
    _spend(True),
    _spend(True),
    _spend(False),  # the reserve is spent
    _after(True, "open"),
    _before(first=False, refund=True, open_for=30),  # the retry stopped: its spend given back
    _spend(True),
    _spend(False),
    _before(first=False, open_for=30),  # no refund asked: none given
    _spend(False),
]

# Refunds across slot boundaries, on both clocks: a reserve of 2 retries per 2 s window (ten
# slots of 0.2 s; slot edges differ between the two clocks, so every check is at least a slot
# clear of one), and a circuit that opens at the first failure, for 0.5 s.
SHORT_OPEN = 0.5
SLOT_REFUND = Rules(
    budget=RetryBudget(ratio=0, window=2.0, min_per_second=1.0),
    breaker=CircuitBreaker(failure_ratio=1.0, min_calls=1, window=30, open_for=SHORT_OPEN),
    pacing=False,
)
SLOT_REFUND_STEPS = [
    _after(True, "open"),
    # A refund into an empty slot, with nothing spent in the window: nothing to give back.
    _before(first=False, refund=True, open_for=SHORT_OPEN),
    _spend(True),
    _spend(True),
    _spend(False),
    _sleep(0.9),  # slots later; the circuit's open_for is over
    _before(probe=True, change="half_open"),
    _after(True, "open", probe=True),
    # A refund in a slot that holds no spend gives back one made slots before.
    _before(first=False, refund=True, open_for=SHORT_OPEN),
    _spend(True),
    _spend(False),
    _sleep(1.2),  # the first spends have left the window; the last one has not
    _spend(True),
    _spend(False),
    _before(probe=True, change="half_open"),
    _after(True, "open", probe=True),
    _before(first=False, refund=True, open_for=SHORT_OPEN),
    _spend(True),
    _spend(False),
]

THROTTLE = Rules(budget=None, breaker=None, pacing=False, throttle=AdaptiveThrottle())
# Cut from 10 attempts sent in a second: 7 a second; then from the limit (about 7, under the
# attempts sent by then), to 0.7 of it.
SECOND = 0.7 * 7
THROTTLE_STEPS = [
    *[_take()] * 10,  # no limit before the host throttles; each attempt counted as sent
    *[_answer(False)] * 9,
    _answer(True),  # 10 sent in the second: cut to 7 a second
    _take(pace=1 / 7, throttled=True),  # an empty bucket: the first token is 1/7 s off
    _take(pace=2 / 7, throttled=True),  # reserved one after the other
    _take(patience=0.1),  # 3/7 s is more than it would wait: nothing reserved
    _take(pace=3 / 7, throttled=True),
    _answer(True, age=10.0),  # admitted before the cut: no second cut
    _take(pace=4 / 7, throttled=True),
    _answer(True),  # admitted since: cut again, from the limit
    # The tokens reserved keep their moments; the next one is a token at the new rate later.
    _take(pace=4 / 7 + 1 / SECOND, throttled=True),
    _take(pace=4 / 7 + 2 / SECOND, throttled=True),
]

# One answer, throttled: 0.7 a second; K = cbrt(0.75) s until the curve is back at 1 a second,
# by when the bucket has earned more than the one token it must hold to lift the limit.
_ONE = AdaptiveThrottle()
_K = zero_point(1.0, _ONE)
LIFT_WAIT = 0.5
LIFT_STEPS = [
    _take(),  # one attempt sent
    _answer(True),
    _take(patience=0.0),  # a token 1/0.7 s off: not reserved
    _sleep(LIFT_WAIT),
    # Not lifted yet: the token is what is left of one at the rate then.
    _take(
        pace=(1 - earned(1.0, _K, 0, LIFT_WAIT, _ONE)) / limit_rate(1.0, _K, LIFT_WAIT, _ONE),
        throttled=True,
    ),
    _sleep(1.6),  # past K, and the bucket has earned back its token and one more
    _take(),  # lifted
    _take(),
]

SCENARIOS = {
    "refund": (REFUND, REFUND_STEPS),
    "slot_refund": (SLOT_REFUND, SLOT_REFUND_STEPS),
    "budget": (BUDGET, BUDGET_STEPS),
    "sliding": (SLIDING, SLIDING_STEPS),
    "breaker": (BREAKER, BREAKER_STEPS),
    "pacing": (PACING, PACING_STEPS),
    "throttle": (THROTTLE, THROTTLE_STEPS),
    "lift": (THROTTLE, LIFT_STEPS),
}


def _close(a: float | None, b: float | None, within: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= within


def _check(step: Sequence[Any], got: Any, mine: Any) -> None:
    """`got` (Redis) agrees with `mine` (memory) and with what the step expects."""
    expected = step[-1]
    if isinstance(expected, Verdict):
        assert isinstance(got, Verdict)
        for other, within in ((mine, AGREE), (expected, NEAR)):
            assert (got.probe, got.change) == (other.probe, other.change), (step, got, other)
            assert got.throttled == other.throttled, (step, got, other)
            assert _close(got.open_for, other.open_for, within), (step, got, other)
            assert _close(got.pace, other.pace, within), (step, got, other)
    else:
        assert got == mine == expected, (step, got, mine)


def _call(store: Any, rules: Rules, step: Sequence[Any], host: str = HOST) -> Any:
    kind = step[0]
    if kind == "before":
        return store.before(host, rules, step[1], step[2])
    if kind == "after":
        return store.after(host, rules, step[1], step[2], step[3])
    if kind == "take":
        return store.before(host, rules, True, False, step[1])
    if kind == "answer":
        return store.after(host, rules, None, None, False, step[1], step[2])
    return store.spend(host, rules)


@pytest.mark.parametrize("name", SCENARIOS)
def test_agrees_with_memory_sync(client: Any, prefix: str, name: str) -> None:
    rules, steps = SCENARIOS[name]
    store = RedisState(client, prefix=prefix).sync_store()
    memory = MemoryState().sync_store()
    for step in steps:
        if step[0] == "sleep":
            time.sleep(step[1])
            continue
        _check(step, _call(store, rules, step), _call(memory, rules, step))
    assert client.exists(f"{prefix}:{HOST}")


@pytest.fixture
async def aclient(server: RedisServer) -> AsyncIterator[Any]:
    connection = redis.asyncio.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
    await connection.flushall()
    yield connection
    await connection.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("name", SCENARIOS)
async def test_agrees_with_memory_asyncio(aclient: Any, prefix: str, name: str) -> None:
    rules, steps = SCENARIOS[name]
    store = RedisState(aclient, prefix=prefix).async_store()
    memory = MemoryState().async_store()
    for step in steps:
        if step[0] == "sleep":
            await asyncio.sleep(step[1])
            continue
        _check(step, await _call(store, rules, step), await _call(memory, rules, step))
    assert await aclient.exists(f"{prefix}:{HOST}")


def test_agrees_with_memory_on_random_sequences(client: Any, prefix: str) -> None:
    """Hundreds of random steps over two hosts; open_for so short every open circuit probes next."""
    rules = Rules(
        budget=RetryBudget(ratio=0.3, window=60, min_per_second=0.05),
        breaker=CircuitBreaker(failure_ratio=0.4, min_calls=5, window=60, open_for=1e-6),
        pacing=True,
    )
    store = RedisState(client, prefix=prefix).sync_store()
    memory = MemoryState().sync_store()
    rng = random.Random(20240611)
    seen: dict[str, set[Any]] = {"before": set(), "after": set(), "spend": set()}
    for _ in range(600):
        host = rng.choice(["https://a.example:443", "http://b.example:8080"])
        kind = rng.choice(["before", "after", "after", "spend"])
        if kind == "before":
            step: tuple[Any, ...] = ("before", rng.random() < 0.7, rng.random() < 0.2, None)
        elif kind == "after":
            pause = rng.choice([None, None, None, 5.0, 20.0, 50.0])
            step = ("after", rng.choice([None, False, True, True]), pause, rng.random() < 0.3, None)
        else:
            step = ("spend", None)
        got, mine = _call(store, rules, step, host), _call(memory, rules, step, host)
        if isinstance(got, Verdict):
            assert (got.probe, got.change) == (mine.probe, mine.change), (step, got, mine)
            assert _close(got.open_for, mine.open_for, AGREE), (step, got, mine)
            assert _close(got.pace, mine.pace, AGREE), (step, got, mine)
            seen[kind].add((got.probe, got.change, got.pace > 0))
        else:
            assert got == mine, (step, got, mine)
            seen[kind].add(got)
    # The sequence went through every kind of answer, so the agreement means something.
    assert {True, False} <= seen["spend"]
    assert {None, "open", "closed"} <= seen["after"]
    # (A lost probe replaced: BREAKER_STEPS. Here a paced probe's lease outlasts the run.)
    assert {(True, "half_open", True), (False, None, True)} <= seen["before"]


def test_agrees_with_memory_on_random_sequences_with_a_throttle(client: Any, prefix: str) -> None:
    """Hundreds of random steps with the throttle, the breaker and pacing over two hosts: the
    same verdicts, the same waits for tokens, the same circuit changes."""
    rules = Rules(
        budget=RetryBudget(ratio=0.3, window=60, min_per_second=0.05),
        breaker=CircuitBreaker(failure_ratio=0.4, min_calls=5, window=60, open_for=1e-6),
        pacing=True,
        throttle=AdaptiveThrottle(growth=5.0),
    )
    store = RedisState(client, prefix=prefix).sync_store()
    memory = MemoryState().sync_store()
    rng = random.Random(20250611)
    paces: set[tuple[bool, bool]] = set()
    for _ in range(600):
        host = rng.choice(["https://a.example:443", "http://b.example:8080"])
        kind = rng.choice(["before", "after", "after", "spend"])
        if kind == "before":
            patience = rng.choice([0.0, 0.5, 5.0, math.inf])
            step: tuple[Any, ...] = ("take", patience, None)
            if rng.random() < 0.3:
                step = ("before", rng.random() < 0.7, rng.random() < 0.2, None)
        elif kind == "after":
            args = (
                rng.choice([None, False, True]),
                rng.choice([None, None, 0.05]),
                rng.random() < 0.3,
                rng.choice([None, False, True, True]),
                rng.choice([0.0, 0.0, 100.0]),  # admitted now, or long before any cut
            )
            assert store.after(host, rules, *args) == memory.after(host, rules, *args), args
            if rng.random() < 0.05:
                time.sleep(0.02)
            continue
        else:
            step = ("spend", None)
        got, mine = _call(store, rules, step, host), _call(memory, rules, step, host)
        if isinstance(got, Verdict):
            assert (got.probe, got.change, got.throttled) == (
                mine.probe,
                mine.change,
                mine.throttled,
            ), (step, got, mine)
            assert _close(got.open_for, mine.open_for, AGREE), (step, got, mine)
            assert _close(got.pace, mine.pace, AGREE), (step, got, mine)
            paces.add((got.throttled, got.pace > 0))
        else:
            assert got == mine, (step, got, mine)
    # Waits for tokens, waits for a pause, and no wait at all all came up.
    assert {(True, True), (False, True), (False, False)} <= paces


def test_a_throttled_hosts_key_lives_until_its_limit_would_be_lifted(
    client: Any, prefix: str
) -> None:
    """The key outlives its windows until the limit would be lifted: cut from 200 a second,
    the curve is back after K = 5.3 s, past the meter's 3 s."""
    store = RedisState(client, prefix=prefix, ttl_slack=0.1).sync_store()
    for _ in range(200):
        store.before(HOST, THROTTLE, True)
    assert 0 < client.pttl(f"{prefix}:{HOST}") <= 3_100  # 3 * the meter's 1 s + 0.1 s
    store.after(HOST, THROTTLE, None, None, False, True, 0.0)  # cut to 140 a second
    assert 5_000 < client.pttl(f"{prefix}:{HOST}") <= 5_500


@pytest.mark.parametrize(
    ("field", "value"),
    [("tm", b"garbage"), ("tt", b"nan"), ("tc", b""), ("tk", b"-1"), ("tf", b"1e400")],
)
def test_an_unreadable_limit_is_dropped(
    client: Any, prefix: str, caplog: pytest.LogCaptureFixture, field: str, value: bytes
) -> None:
    """A limit the scripts cannot read limits nothing, breaks nothing, and is replaced at the
    next throttling answer."""
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    store = RedisState(client, prefix=prefix).sync_store()
    key = f"{prefix}:{HOST}"
    store.after(HOST, THROTTLE, None, None, False, True, 0.0)
    assert client.hexists(key, "tm")
    client.hset(key, field, value)
    assert store.before(HOST, THROTTLE, True) == Verdict()
    assert not client.hexists(key, "tm")
    store.after(HOST, THROTTLE, None, None, False, True, 0.0)
    assert store.before(HOST, THROTTLE, True).throttled
    assert not _warnings(caplog)


def test_states_share_by_prefix(client: Any, prefix: str) -> None:
    rules = Rules(
        budget=RetryBudget(ratio=0, window=30, min_per_second=0.1), breaker=None, pacing=False
    )
    one = RedisState(client, prefix=prefix).sync_store()
    two = RedisState(client, prefix=prefix).sync_store()
    other = RedisState(client, prefix=prefix + "-other").sync_store()
    assert [one.spend(HOST, rules), two.spend(HOST, rules), one.spend(HOST, rules)] == [True] * 3
    assert two.spend(HOST, rules) is False  # one reserve of 3, shared
    assert other.spend(HOST, rules) is True  # another prefix, another budget
    assert one.spend("https://elsewhere.example:443", rules) is True  # another host too


def test_outcomes_while_open_are_not_counted(client: Any, prefix: str) -> None:
    store = RedisState(client, prefix=prefix).sync_store()
    rules = Rules(
        budget=None, breaker=CircuitBreaker(min_calls=2, failure_ratio=1, open_for=30), pacing=False
    )
    assert store.after(HOST, rules, True, None, False) is None
    assert store.after(HOST, rules, True, None, False) == "open"
    for _ in range(5):
        assert store.after(HOST, rules, True, None, False) is None
    fields = client.hgetall(f"{prefix}:{HOST}")
    assert fields[b"circuit"] == b"open"
    assert not [f for f in fields if f.startswith(b"c:")]  # cleared when it opened, nothing since
    verdict = store.before(HOST, rules, True)
    assert verdict.open_for is not None
    assert 29 < verdict.open_for <= 30  # a float, not truncated to an integer


@pytest.mark.parametrize(
    "options", [{"decode_responses": True}, {"protocol": 3}], ids=["decoded", "resp3"]
)
def test_client_options_do_not_matter(
    server: RedisServer, prefix: str, options: dict[str, Any]
) -> None:
    """Replies decoded to str, or in RESP3, are read the same."""
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5, **options)
    try:
        store = RedisState(client, prefix=prefix).sync_store()
        rules = Rules(
            budget=RetryBudget(ratio=0, window=30, min_per_second=0.1),
            breaker=CircuitBreaker(min_calls=1, failure_ratio=1, open_for=30),
            pacing=True,
        )
        assert store.after(HOST, rules, True, 12.5, False) == "open"
        verdict = store.before(HOST, rules, True)
        assert verdict.open_for is not None
        assert 29 < verdict.open_for <= 30
        assert 12 < verdict.pace <= 12.5
        assert [store.spend(HOST, rules) for _ in range(4)] == [True, True, True, False]
    finally:
        client.close()


def test_key_expires(client: Any, prefix: str) -> None:
    state = RedisState(client, prefix=prefix, ttl_slack=0.1)
    store = state.sync_store()
    key = f"{prefix}:{HOST}"
    rules = Rules(budget=RetryBudget(window=0.2), breaker=None, pacing=False)
    store.before(HOST, rules, True)
    assert 0 < client.pttl(key) <= 700  # 3 * 0.2 s + 0.1 s
    deadline = time.monotonic() + 5
    while client.exists(key):
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.05)
    # A pause keeps the key at least as long as it lasts.
    pacing = Rules(budget=None, breaker=None, pacing=True)
    store.after(HOST, pacing, None, 30.0, False)
    assert client.pttl(key) >= 30_000
    # And rules with shorter windows never shorten it.
    store.before(HOST, rules, True)
    assert client.pttl(key) >= 29_000


PACE_ONLY = Rules(budget=None, breaker=None, pacing=True)


@pytest.mark.parametrize("pause", [1.7e12, MAX_PAUSE * 10])
def test_a_huge_pause_is_bounded(client: Any, prefix: str, pause: float) -> None:
    """A pause past MAX_PAUSE paces MAX_PAUSE at most, and the key expires within it plus the slack."""
    store = RedisState(client, prefix=prefix, ttl_slack=1.0).sync_store()
    store.after(HOST, PACE_ONLY, None, pause, False)
    verdict = store.before(HOST, PACE_ONLY, True)
    assert MAX_PAUSE - 5 < verdict.pace <= MAX_PAUSE
    assert 0 < client.pttl(f"{prefix}:{HOST}") <= (MAX_PAUSE + 1) * 1000


def test_a_huge_pause_already_stored_is_bounded(client: Any, prefix: str) -> None:
    """The scripts bound a pause found in the hash (written by an older version) themselves."""
    key = f"{prefix}:{HOST}"
    client.hset(key, "paused", "1700000000000.5")
    store = RedisState(client, prefix=prefix, ttl_slack=1.0).sync_store()
    paced_budget = Rules(budget=RetryBudget(), breaker=None, pacing=True)
    # A deposit: a write, after which the key's expiry is set.
    assert MAX_PAUSE - 5 < store.before(HOST, paced_budget, True).pace <= MAX_PAUSE
    assert 0 < client.pttl(key) <= (MAX_PAUSE + 1) * 1000


@pytest.mark.parametrize(
    ("kwargs", "rules"),
    [
        ({"ttl_slack": 1e300}, BUDGET),
        ({}, Rules(budget=RetryBudget(window=1e300), breaker=None, pacing=False)),
    ],
    ids=["slack", "window"],
)
def test_an_absurd_expiry_is_bounded(
    client: Any, prefix: str, kwargs: dict[str, Any], rules: Rules
) -> None:
    """An absurd window or ttl_slack still gives the key an expiry Redis takes, and a bounded one."""
    store = RedisState(client, prefix=prefix, **kwargs).sync_store()
    assert store.spend(HOST, rules) is True
    ttl = client.pttl(f"{prefix}:{HOST}")
    assert 0 < ttl <= MAX_TTL * 1000
    fields = client.hgetall(f"{prefix}:{HOST}")
    assert [v for f, v in fields.items() if f.startswith(b"b:")] == [b"0 1"]  # really counted


def _current_slot(client: Any, width: float) -> int:
    seconds, micros = client.time()
    return math.floor((int(seconds) + int(micros) / 1e6) / width)


@pytest.mark.parametrize("value", [b"0 -1", b"-3 -1", b"garbage", b"1 2 3", b"", b"1e400 1"])
def test_an_unreadable_slot_counts_nothing(
    client: Any, prefix: str, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    """A slot the scripts cannot read (an older version's refund, garbage) counts nothing and breaks nothing."""
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    assert BUDGET.budget is not None
    width = BUDGET.budget.window / SLOTS
    key = f"{prefix}:{HOST}"
    client.hset(key, mapping={"bw": repr(width), f"b:{_current_slot(client, width)}": value})
    store = RedisState(client, prefix=prefix).sync_store()
    assert [store.spend(HOST, BUDGET) for _ in range(4)] == [True, True, True, False]  # reserve 3
    assert not _warnings(caplog)


@pytest.mark.parametrize("value", [b"garbage", b"0", b"-1", b""])
def test_an_unreadable_width_is_replaced(
    client: Any, prefix: str, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    """A slot width the scripts cannot use is replaced by the rules' own, not a script error."""
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    key = f"{prefix}:{HOST}"
    client.hset(key, "bw", value)
    store = RedisState(client, prefix=prefix).sync_store()
    assert [store.spend(HOST, BUDGET) for _ in range(4)] == [True, True, True, False]
    assert not _warnings(caplog)
    assert float(client.hget(key, "bw")) == 3.0


def test_a_refund_in_a_new_slot_leaves_the_hash_readable(
    client: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refund landing in a slot with no deposits writes no negative count; every slot stays "<a> <b>"."""
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    store = RedisState(client, prefix=prefix).sync_store()
    key = f"{prefix}:{HOST}"
    assert store.after(HOST, REFUND, True, None, False) == "open"
    assert store.spend(HOST, REFUND)
    client.hdel(key, *[f for f in client.hkeys(key) if f.startswith(b"b:")])  # as if slots later
    assert store.before(HOST, REFUND, False, True).open_for is not None
    assert [store.spend(HOST, REFUND) for _ in range(3)] == [True, True, False]  # nothing refunded
    for field, value in client.hgetall(key).items():
        if field.startswith(b"b:"):
            assert re.fullmatch(rb"\d+ \d+", value), (field, value)
    assert not _warnings(caplog)


def test_stale_slots_are_pruned(client: Any, prefix: str) -> None:
    store = RedisState(client, prefix=prefix).sync_store()
    key = f"{prefix}:{HOST}"
    rules = Rules(
        budget=RetryBudget(window=0.1, min_per_second=1e6), breaker=None, pacing=False
    )  # 10 ms slots
    most = 0
    slots: set[bytes] = set()
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        store.before(HOST, rules, True)
        assert store.spend(HOST, rules)
        fields = [f for f in client.hkeys(key) if f.startswith(b"b:")]
        slots.update(fields)
        most = max(most, len(fields))
        time.sleep(0.003)
    assert len(slots) > 2 * SLOTS  # it went through many slots...
    assert most <= SLOTS  # ...but never kept more than a window's worth


# ---- failing open ---------------------------------------------------------------------------

ALL = Rules(
    budget=RetryBudget(ratio=0, min_per_second=0.0001, window=1),
    breaker=CircuitBreaker(min_calls=1, failure_ratio=1),
    pacing=True,
)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "httpx_resilience" and r.levelno == logging.WARNING
    ]


def test_fails_open_when_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    client = _offline_client(username="admin", password="hunter2-secret")
    state = RedisState(client, prefix="offline")
    store = state.sync_store()
    try:
        started = time.monotonic()
        for _ in range(3):
            assert store.before(HOST, ALL, True) == Verdict()
            assert store.after(HOST, ALL, True, 30.0, False) is None
            assert store.spend(HOST, ALL) is True  # the budget (reserve 0) would refuse it
        assert time.monotonic() - started < 5
        records = _warnings(caplog)
        assert len(records) == 1  # nine failures, one warning
        message = records[0].getMessage()
        assert "Redis failed" in message
        assert "ConnectionError" in message
        assert "hunter2" not in caplog.text
        # A minute later it warns again.
        assert state._warned_at is not None
        state._warned_at -= 61
        assert store.spend(HOST, ALL) is True
        assert len(_warnings(caplog)) == 2
    finally:
        client.close()


@pytest.mark.anyio
async def test_fails_open_when_unreachable_asyncio(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    client = redis.asyncio.Redis(
        host="127.0.0.1",
        port=free_port(),
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
    )
    store = RedisState(client, prefix="offline").async_store()
    try:
        for _ in range(3):
            assert await store.before(HOST, ALL, True) == Verdict()
            assert await store.after(HOST, ALL, True, 30.0, False) is None
            assert await store.spend(HOST, ALL) is True
        assert len(_warnings(caplog)) == 1
    finally:
        await client.aclose()


def test_fails_open_when_the_server_stops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="httpx_resilience")
    rules = Rules(
        budget=RetryBudget(ratio=0, min_per_second=0.5, window=2), breaker=None, pacing=False
    )
    with redis_server() as own:
        client = redis.Redis(
            host="127.0.0.1",
            port=own.port,
            socket_timeout=0.2,
            socket_connect_timeout=0.2,
            retry=Retry(NoBackoff(), 1),
        )
        try:
            store = RedisState(client, prefix="stops").sync_store()
            assert [store.spend(HOST, rules) for _ in range(2)] == [True, False]  # reserve 1
            assert not _warnings(caplog)
            own.stop()
            assert [store.spend(HOST, rules) for _ in range(3)] == [True] * 3
            assert len(_warnings(caplog)) == 1
        finally:
            client.close()


# ---- configuration --------------------------------------------------------------------------


def test_sync_client_refuses_async_store() -> None:
    client = _offline_client()
    try:
        state = RedisState(client)
        assert state.sync_store() is not None
        with pytest.raises(ConfigurationError, match=r"redis\.asyncio\.Redis"):
            state.async_store()
    finally:
        client.close()


@pytest.mark.anyio
async def test_async_client_refuses_sync_store() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=free_port())
    try:
        state = RedisState(client)
        assert state.async_store() is not None
        with pytest.raises(ConfigurationError, match=r"redis\.Redis client"):
            state.sync_store()
    finally:
        await client.aclose()


@pytest.mark.parametrize("bad", [object(), "redis://localhost:6379", None, MemoryState()])
def test_rejects_what_is_not_a_redis_client(bad: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"must be a redis\.Redis or a redis\.asyncio\.Redis"
    ):
        RedisState(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ttl_slack": -1}, "ttl_slack"),
        ({"ttl_slack": "5"}, "ttl_slack"),
        ({"prefix": 3}, "prefix"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    client = _offline_client()
    try:
        with pytest.raises(ConfigurationError, match=match):
            RedisState(client, **kwargs)
    finally:
        client.close()


def test_asyncio_client_under_trio_is_refused_clearly() -> None:
    rules = Rules(budget=RetryBudget(), breaker=None, pacing=False)

    async def main() -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=free_port())
        store = RedisState(client).async_store()
        with pytest.raises(ConfigurationError, match="asyncio only"):
            await store.spend(HOST, rules)

    trio.run(main)


def test_missing_server_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_redis_server.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not on PATH"):
        _redis_server.redis_server_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        _redis_server.redis_server_binary()


def test_without_redis_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[redis\]'"):
        RedisState(object())


def test_package_imports_without_redis() -> None:
    code = "import sys; sys.modules['redis'] = None; import httpx_resilience, httpx_resilience._redis; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# ---- two processes, one budget --------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    return env


# Both workers wait at `barrier(name)` until the other is there too.
_WORKER_COMMON = """
import json, sys, time
import redis
from httpx_resilience._policies import CircuitBreaker, RetryBudget
from httpx_resilience._state import Rules
from httpx_resilience._redis import MAX_TTL, RedisState

port, prefix = int(sys.argv[1]), sys.argv[2]
client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

def barrier(name):
    key = prefix + ":barrier:" + name
    client.incr(key)
    deadline = time.monotonic() + 20
    while int(client.get(key)) < 2:
        if time.monotonic() > deadline:
            sys.exit("the other worker never came")
        time.sleep(0.002)
"""

STORE_WORKER = _WORKER_COMMON + textwrap.dedent(
    """
    deposits, spends = int(sys.argv[3]), int(sys.argv[4])
    store = RedisState(client, prefix=prefix).sync_store()
    rules = Rules(budget=RetryBudget(ratio=0.25, window=20, min_per_second=0.5), breaker=None, pacing=False)
    barrier("start")
    for _ in range(deposits):
        store.before("https://api.example.com:443", rules, True)
    barrier("deposited")
    granted = sum(store.spend("https://api.example.com:443", rules) for _ in range(spends))
    print(json.dumps({"granted": granted}))
    """
)


def _run_workers(script: str, *args: str, count: int = 2) -> list[dict[str, Any]]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=40)
            assert worker.returncode == 0, err
            assert "Redis failed" not in err  # they really shared Redis, not failed open
            results.append(json.loads(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    return results


def test_two_processes_share_one_budget(client: Any, server: RedisServer, prefix: str) -> None:
    # Each deposits 40 requests and asks for 25 retries. Shared: 0.5 * 20 = 10 in reserve plus
    # 0.25 * 80 = 20, so 30 of the 50. Apart, each would get 10 + 10 = 20: 40.
    results = _run_workers(STORE_WORKER, str(server.port), prefix, "40", "25")
    assert sum(r["granted"] for r in results) == 30
    fields = client.hgetall(f"{prefix}:https://api.example.com:443")
    cells = [v.split() for f, v in fields.items() if f.startswith(b"b:")]
    assert sum(int(a) for a, _ in cells) == 80
    assert sum(int(b) for _, b in cells) == 30


TRANSPORT_WORKER = _WORKER_COMMON + textwrap.dedent(
    """
    import httpx
    from httpx_resilience import APIError, Backoff, ResilientTransport, RetryPolicy

    url, requests = sys.argv[3], int(sys.argv[4])
    transport = ResilientTransport(
        state=RedisState(client, prefix=prefix),
        budget=RetryBudget(ratio=0, min_per_second=0.5, window=20),
        retry=RetryPolicy(max_attempts=4, backoff=Backoff(initial=0, max_delay=0)),
    )
    failed = 0
    with httpx.Client(transport=transport, timeout=5) as http:
        barrier("start")
        for _ in range(requests):
            try:
                http.get(url)
            except APIError:
                failed += 1
    print(json.dumps({"failed": failed}))
    """
)


def test_two_processes_share_one_budget_through_the_transport(
    server: RedisServer, prefix: str
) -> None:
    from integration._serve import serve

    attempts = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal attempts
        assert scope["type"] == "http"
        attempts += 1
        await send(
            {"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    with serve(app, "redis-budget") as port:
        url = f"http://127.0.0.1:{port}/flaky"
        # 10 requests each, 4 attempts each wanted: 60 retries asked for. The shared budget has
        # a reserve of 0.5 * 20 = 10 and no share (ratio 0): 20 + 10 attempts in all.
        # Apart, each process would make 10 + 10.
        results = _run_workers(TRANSPORT_WORKER, str(server.port), prefix, url, "10")
    assert [r["failed"] for r in results] == [10, 10]
    assert attempts == 30


def test_key_is_per_host_and_prefix(client: Any) -> None:
    state = RedisState(client, prefix="p")
    store = state.sync_store()
    store.spend("https://api.example.com:443", BUDGET)
    assert client.exists("p:https://api.example.com:443")
    assert state.key("http://h:1") == "p:http://h:1"


def test_nothing_to_do_sends_nothing(prefix: str) -> None:
    """Rules that need no state never touch Redis: even an unreachable one is not asked."""
    client = _offline_client()
    try:
        state = RedisState(client, prefix=prefix)
        store = state.sync_store()
        off = Rules(budget=None, breaker=None, pacing=False)
        budget_only = Rules(budget=RetryBudget(), breaker=None, pacing=False)
        assert store.before(HOST, off, True) == Verdict()
        assert store.before(HOST, budget_only, False) == Verdict()  # nothing to deposit
        assert store.after(HOST, budget_only, True, 5.0, False) is None
        # The throttle hears answers only: a transport error tells it nothing.
        assert store.after(HOST, THROTTLE, None, None, False, None, 0.0) is None
        assert store.spend(HOST, off) is True
        assert state._warned_at is None  # no call was made, so none failed
    finally:
        client.close()
