"""`_decide` against an independent model of its docstring's rules: a decision table and properties.

The model below is written from the module docstring (rules 1-6), `RetryPolicy`'s defaults and
the documented error classes; it never calls `_decide`'s helpers, so the two can disagree.
"""

from __future__ import annotations

import functools
import itertools
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from httpx_resilience import (
    APIError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    CircuitOpenError,
    ClientError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NetworkError,
    NotFoundError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
)
from httpx_resilience._call import Call
from httpx_resilience._decide import GiveUp, Retry, admit, decide, read_limit
from httpx_resilience._errors import AttemptRecord
from httpx_resilience._policies import Backoff, ErrorPolicy, RetryBudget, RetryPolicy
from httpx_resilience._settings import Settings
from httpx_resilience._state import NO_RULES, Rules, Verdict

URL = "https://api.example.com/v1/thing"
HOST = "https://api.example.com"
NOW = 5000.0
MAX_ATTEMPTS = 3
REQUEST_ID = "req-1"

# --- The model: RetryPolicy's documented defaults and the docstring's rules ------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# 408, 429 and every 5xx but 501 and 505.
DEFAULT_STATUSES = frozenset({408, 429, *range(500, 600)} - {501, 505})
NEVER_SENT = frozenset({"connect", "pool"})
MAX_RETRY_AFTER = 120.0


class Wait(NamedTuple):
    """Backoff parameters as the model reads them (Backoff's docstring formula)."""

    initial: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: str = "full"


DEFAULT_WAIT = Wait()


def model_backoff(wait: Wait, attempt: int, rand: float) -> float:
    """`min(initial * multiplier**n, max_delay)` before the n-th retry (0 first), jittered."""
    base = min(wait.initial * wait.multiplier ** (attempt - 1), wait.max_delay)
    delay = rand * base if wait.jitter == "full" else base
    return min(max(delay, 0.0), wait.max_delay)


@dataclass(frozen=True)
class ExcKind:
    """An exception the transport below raised, and what the model expects of it."""

    make: Callable[[], BaseException]
    cls: type[APIError]
    phase: str | None
    transient: bool


def _cert_failure() -> BaseException:
    exc = httpx.ConnectError("certificate verify failed")
    exc.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    return exc


@dataclass(frozen=True)
class Outcome:
    """An attempt's outcome: a status with headers and body, or an exception kind.

    `cls` is the error class the model expects, `should` what the model reads in
    x-should-retry / stripe-should-retry, `hint` the wait the server asked for.
    """

    label: str
    status: int | None = None
    cls: type[APIError] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"error": {"message": "something went wrong"}}'
    should: bool | None = None
    hint: float | None = None
    exc: ExcKind | None = None

    def make(self, request: httpx.Request) -> httpx.Response | BaseException:
        if self.exc is not None:
            return self.exc.make()
        assert self.status is not None
        headers = [("content-type", "application/json"), *self.headers]
        return httpx.Response(self.status, headers=headers, content=self.body, request=request)


QUOTA_BODY = json.dumps(
    {"error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}}
).encode()


def _status(status: int, cls: type[APIError] | None, **kwargs: Any) -> Outcome:
    return Outcome(str(status), status, cls, **kwargs)


STATUSES = [
    _status(200, None, body=b'{"ok": true}'),
    _status(301, None, headers=(("location", "https://elsewhere.example.com/"),), body=b""),
    _status(400, BadRequestError),
    _status(401, AuthenticationError),
    _status(404, NotFoundError),
    _status(408, ClientError),
    _status(409, ConflictError),
    _status(429, RateLimitError),
    Outcome("429quota", 429, QuotaExceededError, body=QUOTA_BODY),
    _status(500, InternalServerError),
    _status(501, ServerError),
    _status(502, BadGatewayError),
    _status(503, ServiceUnavailableError),
    _status(504, GatewayTimeoutError),
]

EXCEPTIONS = [
    Outcome(
        "ConnectError",
        exc=ExcKind(lambda: httpx.ConnectError("refused"), NetworkError, "connect", True),
    ),
    Outcome(
        "ConnectTimeout",
        exc=ExcKind(lambda: httpx.ConnectTimeout("slow"), RequestTimeoutError, "connect", True),
    ),
    Outcome(
        "PoolTimeout",
        exc=ExcKind(lambda: httpx.PoolTimeout("full"), RequestTimeoutError, "pool", True),
    ),
    Outcome(
        "ReadTimeout",
        exc=ExcKind(lambda: httpx.ReadTimeout("slow"), RequestTimeoutError, "read", True),
    ),
    Outcome(
        "WriteError", exc=ExcKind(lambda: httpx.WriteError("reset"), NetworkError, "write", True)
    ),
    Outcome(
        "RemoteProtocolError",
        exc=ExcKind(lambda: httpx.RemoteProtocolError("closed"), ProtocolError, None, True),
    ),
    Outcome("CertVerify", exc=ExcKind(_cert_failure, NetworkError, "connect", False)),
]


@dataclass(frozen=True)
class Case:
    """One row: an outcome, the request it answered, and the policies in force."""

    outcome: Outcome
    method: str = "GET"
    keyed: bool = False
    replayable: bool = True
    attempt: int = 1
    budget: bool = False
    deadline: float | None = None
    raise_on_status: bool = True
    classify: type[APIError] | str | None = None  # "none": a hook that returns None
    statuses: frozenset[int] | None = None
    max_attempts: int = MAX_ATTEMPTS
    wait: Wait = DEFAULT_WAIT
    rand: float = 0.5
    now: float = NOW

    @property
    def id(self) -> str:
        deadline = "none" if self.deadline is None else f"{self.deadline - self.now:g}s"
        parts = [
            self.outcome.label,
            self.method,
            "key" if self.keyed else "nokey",
            "replay" if self.replayable else "once",
            f"a{self.attempt}of{self.max_attempts}",
            "budget" if self.budget else "norules",
            f"dl={deadline}",
        ]
        if not self.raise_on_status:
            parts.append("handback")
        if self.classify is not None:
            name = self.classify if isinstance(self.classify, str) else self.classify.__name__
            parts.append(f"classify={name}")
        if self.statuses is not None:
            parts.append(f"statuses={sorted(self.statuses)}")
        return "-".join(parts)


class Seen(NamedTuple):
    """What a decision amounts to, comparable between the model and `decide`."""

    kind: str  # "none", "retry", "giveup"
    reason: str | None = None
    error: type[APIError] | None = None
    retryable: bool | None = None
    spend: bool | None = None
    delay: float | None = None
    handed: bool = False


def model(case: Case) -> Seen:
    """What the docstring's rules say the outcome of `case` means."""
    outcome = case.outcome
    # Rule 1, and attempts left: without both no retry of any kind.
    may_go_again = case.replayable and case.attempt < case.max_attempts

    def stop(cls: type[APIError], retryable: bool, handed: bool = False) -> Seen:
        last = case.attempt >= case.max_attempts
        reason = "attempts exhausted" if retryable and last else "not retryable"
        return Seen("giveup", reason, cls, retryable, handed=handed)

    def wait(cls: type[APIError], delay: float, spend: bool, handed: bool = False) -> Seen:
        # Rule 5: no wait past the deadline; the last error as it is. Rule 6: a retry of a
        # request that left spends.
        if case.deadline is not None and case.now + delay >= case.deadline:
            return Seen("giveup", "deadline", cls, True, handed=handed)
        return Seen(
            "retry",
            None,
            cls,
            True,
            spend=case.budget and spend,
            delay=round(delay, 9),
            handed=handed,
        )

    if outcome.exc is not None:
        kind = outcome.exc
        if (
            case.deadline is not None
            and issubclass(kind.cls, RequestTimeoutError)
            and case.now >= case.deadline - 0.01
        ):
            # Rule 5: an attempt the deadline cut short spent the whole call's time.
            return Seen("giveup", "deadline", RequestTimeoutError, False)
        unsent = kind.phase in NEVER_SENT
        # Rule 2: before it left, any method; after, a safe method or a keyed request.
        allowed = unsent or case.keyed or case.method in SAFE_METHODS
        if may_go_again and kind.transient and allowed:
            delay = model_backoff(case.wait, case.attempt, case.rand)
            return wait(kind.cls, delay, spend=not unsent)
        return stop(kind.cls, kind.transient)

    status = outcome.status
    assert status is not None
    statuses = DEFAULT_STATUSES if case.statuses is None else case.statuses
    chosen = case.classify if isinstance(case.classify, type) else None
    if chosen is None and (
        status < 400 or (not case.raise_on_status and not _would_retry(case, statuses))
    ):
        # Neither retried nor raised nor classified: handed on as it came.
        return Seen("none")
    cls = chosen or outcome.cls
    assert cls is not None
    # Rule 3.
    if issubclass(cls, QuotaExceededError):
        retryable = False
    elif outcome.should is not None:
        retryable = outcome.should
    else:
        # A 409 to a keyed request: the same key still in flight, so ask again.
        by_status = status in statuses or (status == 409 and case.keyed)
        retryable = by_status or (chosen is not None and cls.default_retryable)
    # A classified error is raised even with raise_on_status=False (docs/sdk-authors.md).
    handed = not case.raise_on_status and chosen is None
    if status < 400:
        # A classified 2xx is not retried (docs/sdk-authors.md).
        return stop(cls, retryable)
    # Rule 2: a 429 was refused before any work, so any method may go again.
    method_ok = status == 429 or case.keyed or case.method in SAFE_METHODS
    if not (may_go_again and method_ok and retryable):
        return stop(cls, retryable, handed)
    # Rule 4.
    if outcome.hint is not None and outcome.hint > MAX_RETRY_AFTER:
        return Seen("giveup", "retry_after", cls, True, handed=handed)
    if outcome.hint is not None:
        delay = outcome.hint
    else:
        delay = model_backoff(case.wait, case.attempt, case.rand)
    return wait(cls, delay, spend=True, handed=handed)


def _would_retry(case: Case, statuses: frozenset[int]) -> bool:
    """Whether an error status will be retried, as far as its status line and headers tell."""
    outcome = case.outcome
    assert outcome.status is not None
    status = outcome.status
    by_status = status in statuses or (status == 409 and case.keyed)
    says_retry = outcome.should if outcome.should is not None else by_status
    return (
        status >= 400
        and case.replayable
        and case.attempt < case.max_attempts
        and (status == 429 or case.keyed or case.method in SAFE_METHODS)
        and says_retry
    )


def model_unread(case: Case) -> bool | None:
    """Whether the model hands the response on unread (None for an exception)."""
    status = case.outcome.status
    if status is None:
        return None
    hook = case.classify is not None
    if 200 <= status < 300:
        return not hook
    if status < 400:
        return True
    statuses = DEFAULT_STATUSES if case.statuses is None else case.statuses
    return not hook and not case.raise_on_status and not _would_retry(case, statuses)


# --- Building calls directly, and reading decisions ------------------------------------------


@functools.cache
def _returns(cls: type[APIError] | None) -> Callable[[httpx.Response], type[APIError] | None]:
    return lambda response: cls


@functools.cache
def _settings(
    budget: bool,
    raise_on_status: bool,
    classify: type[APIError] | str | None,
    statuses: frozenset[int] | None,
    max_attempts: int,
    wait: Wait,
) -> Settings:
    hook = None
    if classify is not None:
        hook = _returns(classify if isinstance(classify, type) else None)
    retry = RetryPolicy(
        max_attempts=max_attempts,
        backoff=Backoff(wait.initial, wait.multiplier, wait.max_delay, wait.jitter),
        **({} if statuses is None else {"retry_statuses": statuses}),
    )
    rules = Rules(budget=RetryBudget(), breaker=None, pacing=False) if budget else NO_RULES
    return Settings(
        errors=ErrorPolicy(raise_on_status=raise_on_status, classify=hook), retry=retry, rules=rules
    )


def make_call(case: Case) -> Call:
    """The `Call` of `case`'s attempt, built as `start` would have left it."""
    headers = {"Idempotency-Key": "key-1"} if case.keyed else {}
    request = httpx.Request(case.method, URL, headers=headers)
    settings_ = _settings(
        case.budget,
        case.raise_on_status,
        case.classify,
        case.statuses,
        case.max_attempts,
        case.wait,
    )
    history = tuple(
        AttemptRecord(503, "ServiceUnavailableError", 0.25) for _ in range(case.attempt - 1)
    )
    return Call(
        request,
        settings_,
        key="key-1" if case.keyed else None,
        replayable=case.replayable,
        deadline=case.deadline,
        host=HOST if case.budget else None,
        attempt=case.attempt,
        history=history,
    )


def seen(decision: Retry | GiveUp | None) -> Seen:
    """A decision as the model describes one."""
    if decision is None:
        return Seen("none")
    error = decision.error
    if isinstance(decision, Retry):
        return Seen(
            "retry",
            None,
            type(error),
            error.retryable,
            spend=decision.spend,
            delay=round(decision.delay, 9),
            handed=decision.hand_on,
        )
    return Seen("giveup", decision.reason, type(error), error.retryable, handed=decision.hand_on)


def run(case: Case, call: Call | None = None) -> tuple[Retry | GiveUp | None, bool | None]:
    """`case`'s outcome through read_limit and decide: (the decision, whether left unread)."""
    call = make_call(case) if call is None else call
    outcome = case.outcome.make(call.request)
    body = None
    unread = None
    if isinstance(outcome, httpx.Response):
        unread = read_limit(call, outcome) is None
        body = (outcome.content, True)
    return decide(call, outcome, body, REQUEST_ID, case.now, lambda: case.rand), unread


# --- The table ----------------------------------------------------------------------------------

METHODS = ("GET", "POST", "PATCH", "DELETE")
DEADLINES = (None, NOW + 1000.0, NOW + 0.1)  # none / plenty / too close for any backoff


def _grid(outcomes: list[Outcome], methods: tuple[str, ...] = METHODS, **policy: Any) -> list[Case]:
    return [
        Case(outcome, method, keyed, replayable, attempt, budget, deadline, **policy)
        for outcome, method, keyed, replayable, attempt, budget, deadline in itertools.product(
            outcomes,
            methods,
            (False, True),
            (True, False),
            (1, MAX_ATTEMPTS),
            (False, True),
            DEADLINES,
        )
    ]


def _headed(
    status: int, cls: type[APIError], label: str, *headers: tuple[str, str], **kw: Any
) -> Outcome:
    return Outcome(label, status, cls, headers=headers, **kw)


# Rows whose outcome or policy is not the defaults', crossed with fewer methods.
SERVER_SAYS = [
    _headed(400, BadRequestError, "400+should=true", ("x-should-retry", "true"), should=True),
    _headed(
        503, ServiceUnavailableError, "503+should=false", ("x-should-retry", "false"), should=False
    ),
    _headed(
        503,
        ServiceUnavailableError,
        "503+stripe=false",
        ("stripe-should-retry", "false"),
        should=False,
    ),
    _headed(
        429,
        QuotaExceededError,
        "429quota+should=true",
        ("x-should-retry", "true"),
        should=True,
        body=QUOTA_BODY,
    ),
    _headed(429, RateLimitError, "429+retry-after=5", ("retry-after", "5"), hint=5.0),
    _headed(
        503, ServiceUnavailableError, "503+retry-after=500", ("retry-after", "500"), hint=500.0
    ),
    _headed(
        503,
        ServiceUnavailableError,
        "503+retry-after-ms=1500",
        ("retry-after-ms", "1500"),
        hint=1.5,
    ),
]
BY_LABEL = {o.label: o for o in [*STATUSES, *EXCEPTIONS, *SERVER_SAYS]}
FEW = ("GET", "POST")

EXTRA = [
    *_grid(SERVER_SAYS, FEW),
    *_grid(
        [BY_LABEL[s] for s in ("200", "404", "429", "429quota", "503", "503+retry-after=500")],
        FEW,
        raise_on_status=False,
    ),
    *_grid([BY_LABEL["200"]], FEW, classify=RateLimitError),
    *_grid([BY_LABEL["200"]], FEW, classify=BadRequestError),
    *_grid([BY_LABEL["400"]], FEW, classify=ServiceUnavailableError),
    *_grid([BY_LABEL["503"]], FEW, classify=BadRequestError),
    *_grid([BY_LABEL["503"]], FEW, classify=QuotaExceededError),
    *_grid([BY_LABEL["404"], BY_LABEL["200"]], FEW, classify="none"),
    *_grid([BY_LABEL["503"]], FEW, classify=ConflictError, raise_on_status=False),
    *_grid([BY_LABEL["404"]], FEW, classify="none", raise_on_status=False),
    *_grid([BY_LABEL[s] for s in ("404", "429", "503")], FEW, statuses=frozenset({404})),
]

TABLE = [*_grid([*STATUSES, *EXCEPTIONS]), *EXTRA]


def _param(case: Case) -> Any:
    return pytest.param(case, id=case.id)


@pytest.mark.parametrize("case", [_param(c) for c in TABLE])
def test_decision_table(case: Case) -> None:
    """decide and read_limit give what the model of the docstring's rules gives for this row."""
    decision, unread = run(case)
    expected = model(case)
    assert (seen(decision), unread) == (expected, model_unread(case))
    if isinstance(decision, Retry):
        assert decision.reason == (
            f"status {case.outcome.status}"
            if case.outcome.exc is None
            else type(case.outcome.exc.make()).__name__
        )
        assert (decision.response is None) == (case.outcome.exc is not None)
    if decision is not None:
        assert len(decision.error.history) == case.attempt
        assert decision.error.attempts == case.attempt


def test_table_covers_the_cross_product() -> None:
    """The table holds every outcome × method × key × replay × attempt × budget × deadline row."""
    assert len(TABLE) - len(EXTRA) == 21 * 4 * 2 * 2 * 2 * 2 * 3
    assert len({c.id for c in TABLE}) == len(TABLE)


def test_model_gives_hand_worked_answers() -> None:
    """A few rows spelled out by hand, so the model itself is checked against the docstring."""
    get_503 = Case(BY_LABEL["503"])
    assert model(get_503) == Seen("retry", None, ServiceUnavailableError, True, False, 0.25)
    post_503 = replace(get_503, method="POST")
    assert model(post_503) == Seen("giveup", "not retryable", ServiceUnavailableError, True)
    post_connect = Case(BY_LABEL["ConnectError"], method="POST", budget=True)
    assert model(post_connect) == Seen("retry", None, NetworkError, True, False, 0.25)
    assert model(replace(post_connect, replayable=False)).kind == "giveup"
    quota = Case(BY_LABEL["429quota"])
    assert model(quota) == Seen("giveup", "not retryable", QuotaExceededError, False)
    assert model(Case(BY_LABEL["200"])) == Seen("none")


# --- Properties: sequences of attempts ----------------------------------------------------------

SEQUENCE_OUTCOMES = [o.label for o in [*STATUSES, *EXCEPTIONS, *SERVER_SAYS]]
# Half the steps are outcomes that may be retried, so runs get past their first attempt.
RETRIED = ["408", "429", "500", "502", "503", "504", "ConnectError", "PoolTimeout", "ReadTimeout"]
step_outcomes = st.sampled_from(RETRIED) | st.sampled_from(SEQUENCE_OUTCOMES)
waits = st.builds(
    Wait,
    initial=st.floats(0.0, 2.0),
    multiplier=st.floats(1.0, 3.0),
    max_delay=st.floats(0.0, 10.0),
    jitter=st.sampled_from(["full", "none"]),
)


@settings(deadline=None, max_examples=400)
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]),
    keyed=st.booleans(),
    replayable=st.sampled_from([True, True, True, False]),
    max_attempts=st.integers(1, 5),
    budget=st.booleans(),
    raise_on_status=st.booleans(),
    timeout=st.none() | st.floats(0.01, 30.0),
    wait=waits,
    steps=st.lists(
        st.tuples(
            step_outcomes,
            st.floats(0.0, 1.0, exclude_max=True),
            st.floats(0.0, 2.0),
        ),
        min_size=5,
        max_size=5,
    ),
)
def test_attempt_sequences_follow_the_model(
    method: str,
    keyed: bool,
    replayable: bool,
    max_attempts: int,
    budget: bool,
    raise_on_status: bool,
    timeout: float | None,
    wait: Wait,
    steps: list[tuple[str, float, float]],
) -> None:
    """Any run of outcomes gives the model's attempts, final kind, history and bounded delays."""
    now = NOW
    deadline = None if timeout is None else NOW + timeout
    base = Case(
        BY_LABEL["200"],
        method,
        keyed,
        replayable,
        1,
        budget,
        deadline,
        raise_on_status,
        max_attempts=max_attempts,
        wait=wait,
    )
    call = make_call(base)
    delays: list[float] = []
    decision: Retry | GiveUp | None = None
    attempts = 0
    for label, rand, elapsed in steps:
        attempts += 1
        case = replace(base, outcome=BY_LABEL[label], attempt=attempts, rand=rand, now=now)
        decision, _ = run(case, call)
        assert seen(decision) == model(case)
        if not isinstance(decision, Retry):
            break
        outcome = case.outcome
        # Rule 1 and 2: nothing that may have reached the server goes again unless safe (a
        # 429 was refused before any work).
        assert replayable
        left = outcome.exc is None or outcome.exc.phase not in NEVER_SENT
        if left and outcome.status != 429:
            assert keyed or method in SAFE_METHODS
        bound = outcome.hint if outcome.hint is not None else wait.max_delay
        assert 0.0 <= decision.delay <= bound
        assert deadline is None or now + decision.delay < deadline
        delays.append(decision.delay)
        call = call.next(decision.record)
        now += decision.delay + elapsed
    assert not isinstance(decision, Retry), "five steps always end a run of at most five attempts"
    assert attempts <= max_attempts
    assert call.attempt == attempts
    assert [r.delay for r in call.history] == delays
    assert len(call.history) == attempts - 1
    last = BY_LABEL[steps[attempts - 1][0]]
    if decision is None:
        assert last.exc is None  # only a response is handed on
    else:
        error = decision.error
        assert len(error.history) == attempts
        assert [r.delay for r in error.history[:-1]] == delays
        if decision.reason == "deadline" and error.phase == "total":
            assert type(error) is RequestTimeoutError  # the deadline cut the attempt short
        else:
            assert type(error) is (last.exc.cls if last.exc is not None else last.cls)
        if decision.reason == "deadline" and error.phase != "total":
            assert error.history[-1].refused == "deadline"


# --- Properties: admit ----------------------------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(
    pace=st.floats(0.0, 500.0),
    max_retry_after=st.floats(0.0, 200.0),
    remaining=st.none() | st.floats(0.0, 300.0),
    now=st.floats(0.0, 1e6),
    attempt=st.integers(1, 5),
)
def test_admit_never_pauses_past_the_cap_or_the_deadline(
    pace: float, max_retry_after: float, remaining: float | None, now: float, attempt: int
) -> None:
    """admit's pause is the host's pace when within max_retry_after and the deadline, else 0."""
    deadline = None if remaining is None else now + remaining
    settings_ = Settings(
        retry=RetryPolicy(max_retry_after=max_retry_after), rules=Rules(None, None, True)
    )
    call = Call(httpx.Request("GET", URL), settings_, deadline=deadline, host=HOST, attempt=attempt)
    pause, refusal = admit(call, Verdict(pace=pace), now)
    assert refusal is None
    assert pause <= max_retry_after
    assert deadline is None or pause == 0.0 or now + pause < deadline
    fits = 0 < pace <= max_retry_after and (deadline is None or now + pace < deadline)
    assert pause == (pace if fits else 0.0)


@settings(deadline=None, max_examples=200)
@given(
    open_for=st.floats(0.001, 3600.0),
    pace=st.floats(0.0, 50.0),
    attempt=st.integers(1, 5),
    method=st.sampled_from(METHODS),
)
def test_open_circuit_always_gives_up_before_the_attempt(
    open_for: float, pace: float, attempt: int, method: str
) -> None:
    """An open circuit gives GiveUp("circuit_open"), no pause, and counts only attempts made."""
    rules = Rules(budget=None, breaker=None, pacing=True)
    call = Call(httpx.Request(method, URL), Settings(rules=rules), host=HOST, attempt=attempt)
    pause, refusal = admit(call, Verdict(open_for=open_for, pace=pace), NOW)
    assert pause == 0.0
    assert refusal is not None
    assert refusal.reason == "circuit_open"
    assert type(refusal.error) is CircuitOpenError
    assert refusal.error.attempts == attempt - 1
    assert refusal.error.retryable is True
    assert refusal.error.retry_after == open_for
