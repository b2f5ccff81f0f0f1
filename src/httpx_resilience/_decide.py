"""Every decision about an attempt, as pure functions over plain values: no I/O, no clock.

The drivers do the I/O and ask here, in this order:

1. `admit`: the host's state answered before the attempt (told `patience`, how long the
   attempt may wait); may it go, and after what pause?
2. `read_limit`: a response came; may it be handed on as it is, or must (part of) its body be
   read first, to build an error or to let `ErrorPolicy.classify` look at it?
3. `decide`: what the attempt's outcome (a response and the body read, or an exception) means:
   `None` (hand the response on), `Retry` after a delay, or `GiveUp` with an error and a reason.
4. `refused`: the host's retry budget said no to a `Retry` that had to spend it.

This module is the only place that decides whether an outcome is retryable (`error.retryable`),
and it reads the policy in force for the request, never the defaults.

The rules, in the order `decide` applies them:

1. A body that cannot be replayed (a generator, a file that cannot seek) is sent once.
2. A failure before the request left (connect or pool phase), and a 429 (refused before any
   work), may be retried for any method. Anything else — a status, a read timeout, a reset
   mid-response — only for methods in `retry_methods` or for requests that carry an
   idempotency key.
3. A status is retryable when in `retry_statuses` (by default 408, 429 and every 5xx but 501
   and 505), when it is a 409 to a request that carries an idempotency key (an attempt with the
   same key still in flight), or, for a class `classify` chose, when that class is retryable by
   default — unless the server's `x-should-retry` (or `stripe-should-retry`) says otherwise; an
   exhausted quota never is, nor a status of `ErrorPolicy.pass_statuses`, which `read_limit`
   hands on as it is. An exception is
   retryable when its kind is transient (a certificate that failed verification is not).
4. The wait is the server's hint (`retry-after-ms`, `Retry-After`) when it gave one, else the
   backoff. A hint above `max_retry_after` is not waited for: the error is raised at once.
5. No wait and no attempt goes past the total deadline (`timeout`): each attempt's timeouts are
   cut to the time left, an attempt they cut short raises `RequestTimeoutError(phase="total")`,
   and a wait that would not fit is not made — the last attempt's error is raised as it is,
   its last history record marked `refused="deadline"`.
6. A retry of a request that left spends the host's retry budget, when there is one.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import httpx

from ._call import Call
from ._classify import classify_exception
from ._errors import (
    APIError,
    AttemptRecord,
    ConfigurationError,
    QuotaExceededError,
    RequestTimeoutError,
    StreamError,
)
from ._errors_build import (
    body_response,
    circuit_open_error,
    deadline_error,
    decode_content,
    error_for_exception,
    error_for_response,
    stream_error,
)
from ._headers import header_value, parse_should_retry
from ._policies import RetryPolicy
from ._state import Verdict
from ._waits import discard

# What may refuse a retry the rules allowed; an error's last history record says which.
REFUSALS = frozenset({"retry_budget", "deadline"})
_STALE = re.compile(r"\bstale\s*=\s*\"?true\b", re.IGNORECASE)

__all__ = [
    "REFUSALS",
    "Decision",
    "GiveUp",
    "Retry",
    "admit",
    "attempt_error",
    "body_failure",
    "decide",
    "error_for",
    "expired",
    "mark_refused",
    "may_resend",
    "patience",
    "read_limit",
    "readable_of",
    "refused",
    "status_retryable",
    "stream_failure",
]


# An attempt whose timeout fired this close to the deadline was cut short by it: its timeouts
# were cut to the time left, and timers fire a little early or late.
_DEADLINE_SLACK = 0.01
# Phases in which the request provably never reached the server.
UNSENT_PHASES = frozenset({"connect", "pool"})


class Retry(NamedTuple):
    """Make another attempt after `delay` seconds.

    `spend`: the host's retry budget must pay for it first (`refused` if it won't). `error` is
    the failed attempt's typed error, `response` its response (None for an exception), and
    `hand_on` whether that response goes to the caller instead of the error if the retry does
    not happen after all (`raise_on_status=False`).
    """

    delay: float
    spend: bool
    reason: str
    error: APIError
    response: httpx.Response | None = None
    hand_on: bool = False

    @property
    def record(self) -> AttemptRecord:
        """The failed attempt as the next attempt's history remembers it."""
        error = self.error
        return AttemptRecord(error.status_code, type(error).__name__, self.delay, error.request_id)


class GiveUp(NamedTuple):
    """Stop: raise `error`, or, when `hand_on`, hand the attempt's response on whole instead
    (the caller asked for responses: `raise_on_status=False`).

    `reason` says why: "not retryable", "attempts exhausted", "retry_after", "deadline",
    "retry_budget" or "circuit_open".
    """

    error: APIError
    reason: str
    hand_on: bool = False


Decision = Retry | GiveUp | None


def admit(call: Call, verdict: Verdict, now: float) -> tuple[float, GiveUp | None]:
    """Before an attempt: (the pause to wait first, or a `GiveUp` when the circuit is open).

    A rate-limit window that reopens later than the retry policy agreed to wait, or than the
    deadline, is not waited for: the request goes, and the server's answer decides.
    """
    if verdict.open_for is not None:
        made = call.attempt - 1  # the attempt was not made
        error = circuit_open_error(call, made, verdict.open_for)
        error.retryable = True  # later, once the circuit closes
        return 0.0, GiveUp(error, "circuit_open")
    pace = verdict.pace
    if 0 < pace <= call.settings.retry.max_retry_after and (
        call.deadline is None or now + pace < call.deadline
    ):
        return pace, None
    return 0.0, None


def patience(call: Call, now: float, waited: float = 0.0) -> float:
    """The longest `admit` lets the attempt due wait before it goes, after `waited` seconds
    it already waited for the throttle: the throttle reserves a token only for an attempt
    that will wait for it."""
    wait = call.settings.retry.max_retry_after - waited
    if call.deadline is not None:
        wait = min(wait, call.deadline - now)
    return wait


def read_limit(call: Call, response: httpx.Response) -> int | None:
    """None when `response` goes to the caller as it is; else how many body bytes to read.

    Handed on unread: a 2xx with no `classify` hook (the common case), 1xx and 3xx, a Digest
    challenge httpx's auth flow will answer, a status of `ErrorPolicy.pass_statuses`, and an
    error status that will neither be retried nor raised nor classified.
    """
    status = response.status_code
    errors = call.settings.errors
    if 200 <= status < 300:
        return None if errors.classify is None else errors.max_body_bytes
    if status < 400 or status in errors.pass_statuses or _is_auth_challenge(call.request, response):
        return None
    if errors.classify is None and not errors.raise_on_status and not _wants_retry(call, response):
        return None
    return errors.max_body_bytes


def decide(
    call: Call,
    outcome: httpx.Response | BaseException,
    body: tuple[bytes, bool] | None,
    request_id: str | None,
    now: float,
    random: Callable[[], float],
) -> Decision:
    """What an attempt's outcome means: None (hand the response on), `Retry` or `GiveUp`.

    `body` is what was read of a response (the bytes, whether they are all of it), as
    `read_limit` asked; `request_id` the one the response carried (or the client's);
    `now` the monotonic time and `random` uniform in [0, 1), for the backoff's jitter.
    """
    if isinstance(outcome, BaseException):
        return _exception(call, outcome, now, random)
    return _response(call, outcome, body or (b"", False), request_id, now, random)


def error_for(call: Call, exc: BaseException) -> APIError:
    """The typed error that stands for `exc`, raised by `call`'s attempt; an `APIError` as it is."""
    if isinstance(exc, APIError):
        return exc
    kind = classify_exception(exc)
    error = error_for_exception(exc, call, kind)
    error.retryable = kind.retryable  # a transient kind, whatever the method
    error.__cause__, error.__suppress_context__ = exc, True
    return error


def _exception(
    call: Call, exc: BaseException, now: float, random: Callable[[], float]
) -> Retry | GiveUp:
    if isinstance(exc, APIError):
        # From a resilient transport stacked below (which made its own retries), or our own
        # request-size count: passed on as they are.
        return GiveUp(exc, "not retryable")
    error = error_for(call, exc)
    return _failed(call, error, exc, error.phase, now, random)


def body_failure(
    call: Call,
    exc: Exception,
    status: int,
    request_id: str | None,
    now: float,
    random: Callable[[], float],
) -> Retry | GiveUp:
    """A success body that failed while the transport read it before handing it on
    (`buffer=`): an attempt failure like a reset or a read timeout before the headers, retried
    under the same rules. Given up, its error is the `StreamError` (or `StreamTimeoutError`)
    the caller's own read would have raised.
    """
    if isinstance(exc, APIError):
        cause = exc.__cause__
        if not (
            isinstance(exc, StreamError)
            and isinstance(cause, Exception)
            and not isinstance(cause, APIError)
        ):
            return GiveUp(exc, "not retryable")  # typed by a resilient transport stacked below
        # A body a transport stacked below handed on broke off: it left the retry to whoever
        # reads the body, and this transport does.
        exc = cause
    kind = classify_exception(exc)
    error = stream_error(exc, call, kind, status, request_id)
    error.__cause__, error.__suppress_context__ = exc, True
    # A body that does not decode was most likely garbled or cut on the way, as a reset is.
    error.retryable = kind.retryable or kind.code == "decoding_error"
    # The server answered: the request reached it, whatever the failure's own phase.
    return _failed(call, error, exc, "read", now, random)


def _failed(
    call: Call,
    error: APIError,
    exc: BaseException,
    phase: str | None,
    now: float,
    random: Callable[[], float],
) -> Retry | GiveUp:
    """An attempt that failed with `error` (standing for `exc`, in `phase`): retried, unless
    the rules or the deadline say otherwise."""
    if (
        call.deadline is not None
        and isinstance(error, RequestTimeoutError)
        and now >= call.deadline - _DEADLINE_SLACK
    ):
        # The attempt was cut short by the deadline (its timeouts were cut to the time left):
        # the whole call's time is spent, which its error says.
        total = deadline_error(call, call.settings.retry.timeout or 0.0, error)
        total.retryable = False
        total.__cause__ = error
        return GiveUp(total, "deadline")
    if not (error.retryable and _may_repeat(call, phase)):
        return GiveUp(error, _stop_reason(error, call))
    delay = call.settings.retry.backoff.delay(call.attempt - 1, random, _previous_wait(call))
    return _retry(call, error, delay, type(exc).__name__, now)


def _response(
    call: Call,
    response: httpx.Response,
    body: tuple[bytes, bool],
    request_id: str | None,
    now: float,
    random: Callable[[], float],
) -> Decision:
    settings = call.settings
    errors, retry = settings.errors, settings.retry
    status = response.status_code
    wants_retry = _wants_retry(call, response)
    readable = readable_of(call, response, body)
    if readable is None:
        return None
    cls = _classify(errors.classify, readable)
    if not wants_retry and cls is None and (status < 400 or not errors.raise_on_status):
        return None
    error = error_for_response(readable, call, errors, request_id, cls=cls)
    classified = cls is not None
    keyed = status == 409 and carries_key(call)
    error.retryable = status_retryable(
        status, readable.headers, type(error), retry, classified=classified, keyed=keyed
    )
    # If no retry is made after all, the caller asked for the response, not the error: the
    # response itself, whose stream replays what was read before the unread rest.
    hand_on = not errors.raise_on_status and cls is None
    if classified and status >= 400:
        # The class `classify` chose may be retryable where the status alone was not (a 2xx
        # `classify` calls an error is raised, never retried).
        wants_retry = error.retryable and _may_repeat(call, None, status)
    if not (wants_retry and error.retryable):
        return GiveUp(error, _stop_reason(error, call), hand_on)
    hint = error.retry_after if retry.respect_retry_after else None
    if hint is not None and hint > retry.max_retry_after:
        # The server asks for longer than we agreed to wait: the caller decides.
        return GiveUp(error, "retry_after", hand_on)
    if hint is not None:
        delay = hint
    else:
        delay = retry.backoff.delay(call.attempt - 1, random, _previous_wait(call))
    return _retry(call, error, delay, f"status {status}", now, response, hand_on)


def readable_of(
    call: Call, response: httpx.Response, body: tuple[bytes, bool]
) -> httpx.Response | None:
    """`response` as the hooks and its error see it, with the `body` read (bytes, whether that
    is all of it) decoded; None for a success body too large to be a document, which goes to
    the caller as it is."""
    status = response.status_code
    data, complete = body
    if status < 400 and not complete:
        # Too large to be the small JSON document `classify` is meant for: passed on unread by
        # the hook, and whole to the caller.
        return None
    limit = call.settings.errors.max_body_bytes
    # A success body is decoded one byte past the cap, to tell one that is too large once
    # decoded (small on the wire) from one that fits: a cut copy is no document.
    coding = response.headers.get("content-encoding")
    decoded = decode_content(data, coding, limit + 1 if status < 400 else limit)
    if len(decoded) > limit:
        return None
    return body_response(response, decoded, call.request)


def _previous_wait(call: Call) -> float | None:
    """The wait before the attempt that failed, which decorrelated jitter grows from."""
    return call.history[-1].delay if call.history else None


def _retry(
    call: Call,
    error: APIError,
    delay: float,
    reason: str,
    now: float,
    response: httpx.Response | None = None,
    hand_on: bool = False,
) -> Retry | GiveUp:
    """A retry after `delay`, unless the deadline comes first."""
    # A retry of a request that left spends the budget; one that never left costs the host
    # nothing.
    spend = call.settings.rules.budget is not None and error.phase not in UNSENT_PHASES
    retry = Retry(delay, spend, reason, error, response, hand_on)
    if call.deadline is not None and now + delay >= call.deadline:
        # The wait would not fit: the server's answer as it is, like a budget refusal (and,
        # with raise_on_status=False, the response itself).
        return refused(retry, "deadline")
    return retry


def expired(call: Call, now: float, last: APIError | None) -> GiveUp | None:
    """After a wait (a retry's, or a rate-limit pause): a `GiveUp` when the deadline came
    before the attempt due could go (a sleep that woke late, slow hooks), so no attempt goes
    out with no time left; None while there is time.

    No attempt was cut short: after a retry's wait, the last attempt's own error (`last`) is
    raised, as for a wait the deadline refused outright, its last history record marked
    `refused="deadline"`. Before any attempt was made, the call's deadline error.
    """
    if call.deadline is None or now < call.deadline:
        return None
    if last is None:
        error = deadline_error(call, call.settings.retry.timeout or 0.0)
        error.retryable = False
        return GiveUp(error, "deadline")
    # With the wait made, which the record in `last` lacks.
    mark_refused(last, "deadline", delay=call.history[-1].delay)
    return GiveUp(last, "deadline")


def attempt_error(decision: Retry | GiveUp) -> APIError:
    """The failed attempt's own error, as its "attempt" event tells it: when the deadline cut
    the attempt short, the error stands for the whole call, and the attempt's is its cause."""
    error = decision.error
    cause = error.__cause__
    total = isinstance(error, RequestTimeoutError) and error.phase == "total"
    return cause if total and isinstance(cause, APIError) else error


def refused(retry: Retry, reason: str) -> GiveUp:
    """The `GiveUp` for a `Retry` that `reason` refused: the host's budget, or the deadline.

    The error's last history record says what refused the retry that would have followed.
    """
    mark_refused(retry.error, reason)
    return GiveUp(retry.error, reason, retry.hand_on)


def mark_refused(error: APIError, reason: str, **changes: Any) -> None:
    """Say on `error`'s last history record that `reason` refused the retry that would have
    followed it (with `changes` to the record besides)."""
    if error.history:
        marked = dataclasses.replace(error.history[-1], refused=reason, **changes)
        error.history = (*error.history[:-1], marked)


def _stop_reason(error: APIError, call: Call) -> str:
    if error.retryable and call.attempt >= call.settings.retry.max_attempts:
        return "attempts exhausted"
    return "not retryable"


def _wants_retry(call: Call, response: httpx.Response) -> bool:
    """Whether an error status of `response` would be retried, before its body is read."""
    status = response.status_code
    if status < 400:
        return False
    retry = call.settings.retry
    keyed = status == 409 and carries_key(call)
    return _says_retry(status, response.headers, retry, keyed) and _may_repeat(call, None, status)


def _may_repeat(call: Call, phase: str | None, status: int | None = None) -> bool:
    """Whether `call`'s request may go again after failing in `phase`, or with `status`
    (rule 2 of the module's docstring)."""
    retry = call.settings.retry
    return (
        call.replayable
        and call.attempt < retry.max_attempts
        and (
            status == 429  # refused before any work: safe for every method
            or may_resend(call.request.method, call.key is not None, phase, retry.retry_methods)
        )
    )


def carries_key(call: Call) -> bool:
    """Whether the request carries an idempotency key: one `start` found or made, or one the
    caller set on a method `start` did not look one up for (only a 409 needs to know)."""
    if call.key is not None:
        return True
    name = call.settings.idempotency.encoded[1]
    value = header_value(call.request.headers, name)
    return bool(value and value.strip())


def _says_retry(status: int, headers: Any, retry: RetryPolicy, keyed: bool) -> bool:
    """The status rule, unless the server said otherwise with `x-should-retry`."""
    should = parse_should_retry(headers)
    return _retry_status(status, retry, keyed) if should is None else should


def _retry_status(status: int, retry: RetryPolicy, keyed: bool) -> bool:
    # A 409 to a keyed request: an earlier attempt with the same key is still in flight (the
    # IETF Idempotency-Key draft, Stripe's idempotency_key_in_use), so wait and ask again.
    return status in retry.retry_statuses or (status == 409 and keyed)


def status_retryable(
    status: int,
    headers: Any,
    cls: type[APIError],
    retry: RetryPolicy,
    *,
    classified: bool = False,
    keyed: bool = False,
) -> bool:
    """Whether a retry could help an error status: rule 3 of the module's docstring.

    `classified`: `cls` is what `ErrorPolicy.classify` chose, whose own default counts too.
    `keyed`: the request carries an idempotency key.
    """
    if issubclass(cls, QuotaExceededError):
        return False
    should = parse_should_retry(headers)
    if should is not None:
        return should
    return _retry_status(status, retry, keyed) or (classified and cls.default_retryable)


def may_resend(method: str, keyed: bool, phase: str | None, retry_methods: Collection[str]) -> bool:
    """Whether a request may go again: rule 2 of the module's docstring.

    `phase` is where the attempt failed (None for a status: the server answered).
    """
    return phase in UNSENT_PHASES or keyed or method in retry_methods


def stream_failure(
    call: Call, exc: BaseException, status_code: int, request_id: str | None
) -> APIError:
    """The error for the body of a handed-on response failing while the caller reads it.

    Never retryable here: the response was handed on, so the caller decides.
    """
    if isinstance(exc, APIError):
        return exc
    error = stream_error(exc, call, classify_exception(exc), status_code, request_id)
    error.retryable = False
    return error


def _is_auth_challenge(request: httpx.Request, response: httpx.Response) -> bool:
    """A 401 Digest challenge that httpx.DigestAuth will answer, handed on so it can: to a
    request without credentials (its first send), or one whose Digest credentials used a nonce
    the server has since let go (`stale=true`). Any of the response's challenges counts: a
    server may offer Basic first."""
    if response.status_code != 401:
        return False
    challenges = [
        value
        for value in response.headers.get_list("www-authenticate")
        if value.lstrip().lower().startswith("digest")
    ]
    if not challenges:
        return False
    authorization = request.headers.get("authorization")
    if authorization is None:
        return True
    return authorization.lstrip().lower().startswith("digest") and any(
        _STALE.search(challenge) for challenge in challenges
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
    if inspect.isawaitable(cls):
        # Only the sync transport gets here (the async one awaits it first): it cannot await.
        discard(cls)
        raise ConfigurationError(
            "ErrorPolicy.classify returned an awaitable, which ResilientTransport cannot await: "
            "give it a plain function, or use AsyncResilientTransport"
        )
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, APIError)):
        # Named by its type only: a value the hook took from the body may hold a secret.
        got = f"the class {cls.__qualname__}" if isinstance(cls, type) else type(cls).__name__
        raise ConfigurationError(
            f"ErrorPolicy.classify must return an APIError subclass or None, got {got}"
        )
    return cls
