"""The sans-I/O request flow: every decision about one logical request, with no I/O.

`request_flow()` is a generator in the manner of httpx's auth flows. It yields commands —
`Send` a request, `ReadBody` of a response up to a limit, `Close` a response — and receives
their results (an exception from `Send` is thrown into it). It returns the response to hand
to the caller, or raises the typed error. The sync and async transports are two small loops
that carry the commands out, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import logging
import random as _random
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._backend import HTTPX, Backend
from ._build import (
    RequestInfo,
    body_response,
    circuit_open_error,
    deadline_error,
    decode_content,
    error_for_exception,
    error_for_response,
)
from ._classify import classify_exception
from ._errors import (
    APIError,
    AttemptRecord,
    CircuitOpenError,
    ConfigurationError,
    QuotaExceededError,
    RequestTooLargeError,
    StatusError,
    TransportError,
)
from ._events import EventHook, ResilienceEvent, emit, note_resend
from ._guard import NO_RULES, Rules, Verdict, host_key, is_failure_status, pause_of
from ._headers import parse_should_retry, scan_response_headers
from ._idempotency import IdempotencyPolicy, assign_key
from ._policies import ErrorPolicy, RequestIdPolicy
from ._retry import UNSENT_PHASES, RetryEvent, RetryPolicy, is_replayable, may_resend, rewind

__all__ = [
    "NO_OUTCOME",
    "After",
    "Before",
    "Body",
    "Close",
    "Command",
    "Context",
    "Plan",
    "ReadBody",
    "Send",
    "Settings",
    "Sleep",
    "Spend",
    "accept",
    "outcome_of",
    "plan_request",
    "request_flow",
]

logger = logging.getLogger("httpx_resilience")


@dataclass(slots=True)
class Send:
    """Send `request` through the inner transport; the reply is the response."""

    request: httpx.Request


@dataclass(slots=True)
class ReadBody:
    """Read at most about `limit` raw bytes of `response`; the reply is a `Body`.

    Afterwards the response's stream replays what was read followed by any unread rest, so
    the response can still be passed on whole, or closed to discard the rest.
    """

    response: httpx.Response
    limit: int


@dataclass(slots=True)
class Close:
    """Close `response`, giving its connection back or discarding it."""

    response: httpx.Response


@dataclass(slots=True)
class Body:
    """What `ReadBody` read: the raw bytes, and whether they are the whole body."""

    data: bytes
    complete: bool


@dataclass(slots=True)
class Sleep:
    """Wait `delay` seconds before the next attempt."""

    delay: float


@dataclass(slots=True)
class Before:
    """Ask the host's state about the next attempt; the reply is a `Verdict`.

    `first`: this is the logical request's first attempt (the budget counts it). `refund`: this
    retry spent the budget, which gets it back if the circuit stops the attempt.
    """

    first: bool
    refund: bool = False


@dataclass(slots=True)
class After:
    """Report an attempt's outcome to the host's state; the reply is the circuit's change."""

    failed: bool | None
    pause: float | None
    probe: bool


@dataclass(slots=True)
class Spend:
    """Ask the host's retry budget for one retry; the reply is whether it may be made."""


Command = Send | ReadBody | Close | Sleep | Before | After | Spend
# What a failure of a handed-on body later needs to know of its logical request:
# (its plan: policies, ids and key; the attempt; the history before it).
Context = tuple["Plan", int, tuple[AttemptRecord, ...]]
# The response to hand on, whether its body has a Content-Encoding, and its context.
Flow = Generator[Command, Any, tuple[httpx.Response, bool, Context]]
RetryHook = Callable[[RetryEvent], None]


@dataclass(frozen=True, slots=True)
class Settings:
    """The policies in force for one request: the transport's, with per-request overrides."""

    errors: ErrorPolicy
    request_ids: RequestIdPolicy
    retry: RetryPolicy
    idempotency: IdempotencyPolicy
    # The package the transport serves: httpx, or httpx2.
    backend: Backend = HTTPX
    # What the transport enforces per host: retry budget, circuit breaker, pacing.
    rules: Rules = NO_RULES

    def for_request(self, request: httpx.Request) -> Settings:
        """Apply `request.extensions["resilience"]`, checked like any policy argument."""
        overrides = request.extensions.get("resilience")
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ConfigurationError(
                'extensions["resilience"] must be a mapping of policy names to policies'
            )
        changes = dict(overrides)
        if changes.get("retry") is False:
            changes["retry"] = self.retry.replace(max_attempts=1)
        for name, value in changes.items():
            expected = _OVERRIDES.get(name)
            if expected is None:
                raise ConfigurationError(
                    f'extensions["resilience"]: unknown key {name!r}; '
                    f"expected one of {sorted(_OVERRIDES)}"
                )
            if not isinstance(value, expected):
                raise ConfigurationError(
                    f'extensions["resilience"][{name!r}] must be a {expected.__name__}'
                    + (" or False" if name == "retry" else "")
                )
        return dataclasses.replace(self, **changes)


_OVERRIDES: Mapping[str, type] = {
    "errors": ErrorPolicy,
    "request_ids": RequestIdPolicy,
    "retry": RetryPolicy,
    "idempotency": IdempotencyPolicy,
}
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")


class Plan:
    """What is settled about a logical request before its first attempt."""

    __slots__ = (
        "client_request_id",
        "deadline",
        "host",
        "key",
        "replayable",
        "settings",
        "timeouts",
    )

    def __init__(
        self,
        settings: Settings,
        client_request_id: str | None,
        key: str | None,
        replayable: bool,
        deadline: float | None,
        timeouts: Any,
        host: str | None = None,
    ) -> None:
        self.settings = settings
        # The host the budget, breaker and pacing count for; None when none is on.
        self.host = host
        self.client_request_id = client_request_id
        self.key = key
        self.replayable = replayable
        self.deadline = deadline
        self.timeouts = timeouts

    @property
    def direct(self) -> bool:
        """Whether the first attempt needs nothing done to the request before it is sent."""
        return self.deadline is None and self.settings.retry.attempt_header is None

    def context(self, attempt: int, history: Iterable[AttemptRecord]) -> Context:
        """What a failure of a handed-on body will need to know of this request."""
        return (self, attempt, tuple(history))

    def info(
        self, request: httpx.Request, attempt: int, history: Iterable[AttemptRecord]
    ) -> RequestInfo:
        """What every error of this request repeats, after `attempt` attempts.

        Built on the failure path only: a first-try success never needs it.
        """
        settings = self.settings
        return RequestInfo(
            request,
            client_request_id=self.client_request_id,
            idempotency_header=settings.idempotency.header,
            idempotency_key=self.key,
            attempts=attempt,
            history=tuple(history),
            redact_names=settings.errors.redact_names,
        )


def plan_request(
    request: httpx.Request, base: Settings, clock: Callable[[], float] = time.monotonic
) -> Plan:
    """Settle the policies, ids, key and deadline of a request before its first attempt."""
    settings = base.for_request(request)
    errors, retry = settings.errors, settings.retry
    client_request_id = _client_request_id(request, settings.request_ids)
    method = request.method
    if method in settings.idempotency.methods or method not in retry.retry_methods:
        key = assign_key(request, settings.idempotency)
    else:
        # Safe to resend without a key anyway: no header look-up on the hot path. A key the
        # caller set is still found for the error, if there is one.
        key = None
    replayable = retry.max_attempts > 1 and is_replayable(request)
    if errors.max_request_bytes is not None:
        _limit_request_size(
            request, errors.max_request_bytes, client_request_id, base.backend, errors.redact_names
        )
    deadline = clock() + retry.timeout if retry.timeout is not None else None
    timeouts = request.extensions.get("timeout") if deadline is not None else None
    host = host_key(request.url) if settings.rules.active else None
    return Plan(settings, client_request_id, key, replayable, deadline, timeouts, host)


def accept(
    plan: Plan, request: httpx.Request, response: httpx.Response
) -> tuple[str | None, bool, bool]:
    """Note the response's request id: (request id, has a Content-Encoding, hand it on as it is).

    The last is true for the common case — a 2xx with no `classify` hook — and for what must
    reach httpx untouched: 1xx, 3xx and a Digest challenge its auth flow will answer.
    """
    request_id, encoded = scan_response_headers(response.headers, plan.settings.request_ids.ranks)
    request_id = request_id or plan.client_request_id
    response.extensions["request_id"] = request_id
    status = response.status_code
    if 200 <= status < 300:
        return request_id, encoded, plan.settings.errors.classify is None
    # Not a 2xx: 1xx and 3xx (below 400), or a Digest challenge.
    return request_id, encoded, status < 400 or _is_auth_challenge(request, response)


# `first` when the driver made no attempt of its own.
NO_OUTCOME: Any = object()


def request_flow(
    request: httpx.Request,
    base: Settings,
    *,
    on_retry: RetryHook | None = None,
    on_event: EventHook | None = None,
    clock: Callable[[], float] = time.monotonic,
    random: Callable[[], float] = _random.random,
    plan: Plan | None = None,
    first: Any = NO_OUTCOME,
    verdict: Verdict | None = None,
) -> Flow:
    """Carry one logical request through its attempts to the response or the typed error.

    `clock` (monotonic seconds) and `random` (uniform in [0, 1)) are the flow's only links to
    the world, so tests can drive every decision with fakes. A driver that made the first
    attempt itself (see `plan_request` and `accept`) passes its `plan` and the `first`
    outcome — a response or an exception, already reported to the host's state — and the
    flow carries on from there. A driver that already asked the host's state about the first
    attempt passes its `verdict`.
    """
    if plan is None:
        plan = plan_request(request, base, clock)
    settings = plan.settings
    errors, retry, rules = settings.errors, settings.retry, settings.rules
    replayable = plan.replayable
    keyed = plan.key is not None
    deadline, timeouts = plan.deadline, plan.timeouts
    host = plan.host
    history: list[AttemptRecord] = []
    attempt = 1
    events = _Events(on_event, host, request, errors.redact_names)

    def handed(response: httpx.Response, encoded: bool) -> tuple[httpx.Response, bool, Context]:
        # The response goes to the caller with its context: if its body fails later, the
        # StreamError still tells which attempt it was, after what, with which key.
        return response, encoded, plan.context(attempt, history)

    def give_up(error: APIError, reason: str, made: int | None = None) -> APIError:
        # `made`: the attempts made, when the last one was not (the circuit stopped it).
        events.emit("give_up", attempt if made is None else made, reason=reason, error=error)
        _log_failure(error)
        return error

    spent = False  # whether the coming retry spent the host's budget
    while True:
        probe = False
        change: str | None = None  # what this attempt's outcome did to the host's circuit
        if first is NO_OUTCOME:
            # Ask the host's state first: an open circuit stops the attempt, a spent
            # rate-limit window delays it. The budget counts each logical request once.
            if attempt == 1:
                if verdict is None and rules.active:
                    verdict = yield Before(True)
            else:
                verdict = (yield Before(False, spent)) if rules.watches else None
            if verdict is not None:
                if verdict.change is not None:
                    events.emit(f"circuit_{verdict.change}", attempt - 1)
                if verdict.open_for is not None:
                    info = plan.info(request, attempt - 1, history)
                    refusal = circuit_open_error(info, host, verdict.open_for)
                    events.emit("circuit_rejected", attempt - 1, error=refusal)
                    raise give_up(refusal, "circuit_open", attempt - 1)
                probe = verdict.probe
                pace = verdict.pace
                # A window that reopens later than we agreed to wait (or than the deadline)
                # is not waited for: the request goes, and the server's answer decides.
                if 0 < pace <= retry.max_retry_after and (
                    deadline is None or clock() + pace < deadline
                ):
                    events.emit("paced", attempt - 1, delay=pace)
                    yield Sleep(pace)
            if retry.attempt_header is not None:
                request.headers[retry.attempt_header] = str(attempt)
            if deadline is not None:
                request.extensions["timeout"] = _shortened(timeouts, deadline - clock())
            if attempt > 1:
                note_resend(attempt - 1)
                rewind(request)  # a file body goes again from where the first attempt began
            outcome: Any
            try:
                outcome = yield Send(request)
            except Exception as exc:
                outcome = exc
            if rules.watches:
                failed, pause = outcome_of(outcome, rules)
                change = yield After(failed, pause, probe)
        else:
            outcome, first, verdict = first, NO_OUTCOME, None

        handed_on: httpx.Response | None = None  # what raise_on_status=False returns at the end
        response: httpx.Response | None
        too_long = False  # the server asked for a longer wait than max_retry_after
        if isinstance(outcome, APIError):
            # From a resilient transport stacked below (which made its own retries), or our
            # own request-size count: passed on as they are.
            events.attempt(attempt, change, error=outcome)
            raise give_up(outcome, "not retryable")
        if isinstance(outcome, BaseException):
            info = plan.info(request, attempt, history)
            error = error_for_exception(outcome, info)
            error.__cause__, error.__suppress_context__ = outcome, True
            events.attempt(attempt, change, error=error)
            response = None
            resend = (
                replayable
                and error.retryable
                and may_resend(request.method, keyed, error.phase, retry.retry_methods)
            )
            reason = type(outcome).__name__
            delay = retry.backoff.delay(attempt - 1, random) if resend else None
        else:
            response = outcome
            request_id, encoded, hand_on = accept(plan, request, response)
            events.attempt(attempt, change, response=response)
            if hand_on:
                return handed(response, encoded)
            status = response.status_code
            retryable_status = status >= 400 and _retryable_status(status, response, retry)
            wants_retry = (
                retryable_status
                and replayable
                and attempt < retry.max_attempts
                and may_resend(request.method, keyed, None, retry.retry_methods)
            )
            if not wants_retry:
                if status < 400:
                    if errors.classify is None:
                        return handed(response, encoded)
                elif errors.classify is None and not errors.raise_on_status:
                    return handed(response, encoded)
            limit = errors.max_body_bytes
            body = yield ReadBody(response, limit)
            if status < 400 and not body.complete:
                # Too large to be the small JSON document `classify` is meant for: passed on
                # unread by the hook, and whole to the caller.
                return handed(response, encoded)
            # A success body is decoded one byte past the cap, to tell one that is too large
            # once decoded (small on the wire) from one that fits: a cut copy is no document.
            coding = response.headers.get("content-encoding")
            decoded = decode_content(body.data, coding, limit + 1 if status < 400 else limit)
            if len(decoded) > limit:
                return handed(response, encoded)
            readable = body_response(response, decoded, request)
            cls = _classify(errors.classify, readable)
            if not wants_retry and cls is None and (status < 400 or not errors.raise_on_status):
                return handed(response, encoded)
            yield Close(response)
            info = plan.info(request, attempt, history)
            if not errors.raise_on_status and cls is None:
                handed_on = readable
            error = error_for_response(readable, info, errors, request_id, cls=cls)
            del readable, decoded, body  # kept by the error only while the error is needed
            if cls is None:
                # The policy's verdict, not only the defaults': an exhausted quota never.
                error.retryable = retryable_status and not isinstance(error, QuotaExceededError)
            resend = wants_retry and error.retryable
            reason = f"status {status}"
            delay = None
            if resend:
                hint = error.retry_after if retry.respect_retry_after else None
                if hint is not None and hint > retry.max_retry_after:
                    # The server asks for longer than we agreed to wait: the caller decides.
                    resend, too_long = False, True
                else:
                    delay = hint if hint is not None else retry.backoff.delay(attempt - 1, random)

        stop: str | None = None
        spent = False
        if not resend or delay is None or attempt >= retry.max_attempts:
            if too_long:
                stop = "retry_after"
            elif error.retryable and attempt >= retry.max_attempts:
                stop = "attempts exhausted"
            else:
                stop = "not retryable"
        elif deadline is not None and clock() + delay >= deadline:
            total = deadline_error(info, retry.timeout or 0.0, error)
            raise give_up(total, "deadline") from error
        elif rules.budget is not None and error.phase not in UNSENT_PHASES:
            # A retry of a request that left spends the budget.
            spent = bool((yield Spend()))
            if not spent:
                stop = "retry_budget"
                _mark_refused(error, stop)
                events.emit("budget_refused", attempt, error=error)
        if stop is not None:
            if handed_on is not None:
                # No retry after all; the caller asked for the response, not the error. Its
                # body was read and closed: hand on the copy that holds it.
                return handed(handed_on, False)  # its body is decoded already
            raise give_up(error, stop)
        assert delay is not None

        history.append(
            AttemptRecord(error.status_code, type(error).__name__, delay, error.request_id)
        )
        retry_event = RetryEvent(attempt, delay, reason, request, response, error)
        _announce(on_retry, retry_event, retry.max_attempts)
        events.emit("retry", attempt, delay=delay, reason=reason, response=response, error=error)
        # What this attempt read must not stay alive through the wait and the next attempt:
        # with a large max_body_bytes, that would double the memory a retried error costs.
        del error, response, handed_on, retry_event, outcome
        yield Sleep(delay)
        attempt += 1


class _Events:
    """The flow's `on_event` calls, built only when a hook listens."""

    __slots__ = ("_hook", "_host", "_names", "_request")

    def __init__(
        self,
        hook: EventHook | None,
        host: str | None,
        request: httpx.Request,
        names: frozenset[str] = frozenset(),
    ) -> None:
        self._hook = hook
        self._host = (host or host_key(request.url)) if hook is not None else ""
        self._request = request
        self._names = names  # the transport's redact_names, for the events' reprs

    def attempt(
        self,
        attempt: int,
        change: str | None,
        *,
        response: httpx.Response | None = None,
        error: APIError | None = None,
    ) -> None:
        """An attempt finished; then what its outcome did to the host's circuit, if anything."""
        if self._hook is not None:
            self.emit("attempt", attempt, response=response, error=error)
            if change is not None:
                self.emit(f"circuit_{change}", attempt)

    def emit(
        self,
        kind: str,
        attempt: int,
        *,
        delay: float = 0.0,
        reason: str | None = None,
        response: httpx.Response | None = None,
        error: APIError | None = None,
    ) -> None:
        if self._hook is not None:
            event = ResilienceEvent(
                kind,
                self._host,
                attempt,
                delay,
                reason,
                self._request,
                response,
                error,
                redact_names=self._names,
            )
            emit(self._hook, event)


def outcome_of(outcome: object, rules: Rules) -> tuple[bool | None, float | None]:
    """An attempt's outcome as the host's state counts it: (failed, pause)."""
    if isinstance(outcome, BaseException):
        if isinstance(outcome, StatusError):
            # From a resilient transport stacked below: its last status is what counts.
            status = outcome.status_code
            return (None if status is None else is_failure_status(status, rules)), None
        if isinstance(outcome, CircuitOpenError) or (
            isinstance(outcome, APIError) and not isinstance(outcome, TransportError)
        ):
            return None, None  # nothing reached the host (a breaker below, a body too large)
        if rules.breaker is None or not classify_exception(outcome).host_fault:
            return None, None  # or the caller's own mistake: an illegal header, a bad scheme
        return True, None
    response: httpx.Response = outcome  # type: ignore[assignment]
    failed = is_failure_status(response.status_code, rules)
    return failed, pause_of(response) if rules.pacing else None


def _mark_refused(error: APIError, refused: str) -> None:
    """Say in the error's last history record what refused the retry that would have followed."""
    if error.history:
        last = error.history[-1]
        error.history = (*error.history[:-1], dataclasses.replace(last, refused=refused))


def _retryable_status(status: int, response: httpx.Response, retry: RetryPolicy) -> bool:
    """The status rule, unless the server said otherwise with `x-should-retry`."""
    should = parse_should_retry(response.headers)
    return status in retry.retry_statuses if should is None else should


def _shortened(timeouts: Any, remaining: float) -> dict[str, float | None]:
    """Each httpx timeout cut to the time left before the deadline."""
    left = max(remaining, 0.0)
    current = timeouts if isinstance(timeouts, Mapping) else {}
    shortened: dict[str, float | None] = {}
    for name in _TIMEOUT_KEYS:
        value = current.get(name)
        shortened[name] = left if value is None else min(value, left)
    return shortened


def _announce(hook: RetryHook | None, event: RetryEvent, max_attempts: int) -> None:
    error = event.error
    logger.info(
        "retrying %s %s after %s (attempt %d of %d) in %.3fs",
        error.method,
        error.url,
        event.reason,
        event.attempt,
        max_attempts,
        event.delay,
    )
    if hook is None:
        return
    try:
        hook(event)
    except Exception:
        # A metrics or logging hook must not turn a retry into a failure.
        logger.warning("on_retry hook raised; the retry goes ahead", exc_info=True)


def _limit_request_size(
    request: httpx.Request,
    limit: int,
    client_request_id: str | None,
    backend: Backend,
    redact_names: frozenset[str],
) -> None:
    """Raise `RequestTooLargeError` before any I/O when the body's known size exceeds `limit`.

    A streamed body of unknown size is counted as it goes out instead, and stopped with the
    same error as soon as it passes the limit.
    """
    size = _known_size(request)
    if size is None:
        request.stream = backend.counted(
            request.stream,
            limit,
            lambda sent: _too_large(
                request, sent, limit, client_request_id, attempts=1, redact_names=redact_names
            ),
        )
    elif size > limit:
        raise _too_large(
            request, size, limit, client_request_id, attempts=0, redact_names=redact_names
        )


def _too_large(
    request: httpx.Request,
    size: int,
    limit: int,
    client_request_id: str | None,
    *,
    attempts: int,
    redact_names: frozenset[str],
) -> RequestTooLargeError:
    """The error for a body of (at least) `size` bytes against a `limit`.

    `attempts` is 0 when it was caught before sending, 1 when a streamed body was cut off.
    """
    info = RequestInfo(
        request,
        client_request_id=client_request_id,
        attempts=attempts,
        redact_names=redact_names,
    )
    history = (AttemptRecord(None, RequestTooLargeError.__name__),) if attempts else ()
    return RequestTooLargeError(
        f"request body of {size} bytes exceeds the limit of {limit} bytes",
        details={"size": size, "limit": limit},
        request_id=client_request_id,
        history=history,
        **info.common(),
    )


def _known_size(request: httpx.Request) -> int | None:
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit():
        return int(length)
    if type(request.stream).__name__ == "ByteStream":  # httpx's or httpx2's bytes
        return len(request.read())
    return None


def _client_request_id(request: httpx.Request, ids: RequestIdPolicy) -> str | None:
    header = ids.send_header
    if header is None:
        return None
    existing: str | None = request.headers.get(header)
    if existing:
        return existing
    value = uuid.uuid4().hex
    request.headers[header] = value
    return value


def _is_auth_challenge(request: httpx.Request, response: httpx.Response) -> bool:
    # httpx.DigestAuth sends first without credentials and answers the 401's Digest
    # challenge; raising on that 401 would break the flow before it can answer.
    return (
        response.status_code == 401
        and "authorization" not in request.headers
        and response.headers.get("www-authenticate", "").lstrip().lower().startswith("digest")
    )


def _classify(
    hook: Callable[[httpx.Response], type[APIError] | None] | None, readable: httpx.Response
) -> type[APIError] | None:
    if hook is None:
        return None
    try:
        cls = hook(readable)
    except Exception as exc:
        raise ConfigurationError(f"ErrorPolicy.classify raised {type(exc).__name__}") from exc
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, APIError)):
        raise ConfigurationError(
            f"ErrorPolicy.classify must return an APIError subclass or None, got {cls!r}"
        )
    return cls


def _log_failure(error: APIError) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s failed: %s", error.method, error.url, error)
