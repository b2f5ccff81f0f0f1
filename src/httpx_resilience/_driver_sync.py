# Generated from _driver_async.py by tools/unasync.py: do not edit; edit _driver_async.py and run
# `make unasync`.
"""The sync driver: one loop that does a request's I/O and asks `_decide` what each outcome means.

For each attempt: ask the host's state, send, tell the state, read what the decision needs,
decide; then hand the response on, raise, or sleep and go again. The response of the attempt
under way is closed by the one `try` that holds it, whatever ends the attempt: an error, a hook
raising, cancellation.

`_driver_sync.py` is generated from `_driver_async.py` by `tools/unasync.py` (`make
unasync`), and `make test` checks it is current: edit the async file only.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import httpx

from . import _waits
from ._backend import HTTPX, Backend
from ._call import Call, prepare, restore_timeouts, shorten, start
from ._decide import (
    REFUSALS,
    Decision,
    GiveUp,
    Retry,
    admit,
    body_failure,
    decide,
    expired,
    patience,
    read_limit,
    refused,
)
from ._errors import APIError
from ._errors_build import DECODE_FACTOR, decodes
from ._events import ResilienceEvent, RetryEvent
from ._headers import scan_response_headers
from ._metrics import METRICS_MODULE
from ._policies import (
    AdaptiveThrottle,
    CircuitBreaker,
    ErrorPolicy,
    IdempotencyPolicy,
    RequestIdPolicy,
    RetryBudget,
    RetryPolicy,
)
from ._report_sync import Reporter
from ._settings import inner_transport, rules_of, settings_of, state_of
from ._state import CLEAR, State, outcome_of
from ._streams import Deadline, buffer_body, close_response, guard_decoding, read_prefix
from ._throttle import HORIZON

__all__ = ["SyncDriver"]

_T = TypeVar("_T", bound="SyncDriver")


class SyncDriver:
    """What `ResilientTransport` does, for whichever package (`Backend`) it is made for.

    The httpx and httpx2 transports are this with the package's base transport class added.
    """

    _backend: ClassVar[Backend] = HTTPX
    # What tells a resilient transport stacked above this one that it is.
    _resilient: ClassVar[bool] = True

    def __init__(
        self,
        transport: Any = None,
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing is safe
        idempotency: IdempotencyPolicy = IdempotencyPolicy(),  # noqa: B008
        request_ids: RequestIdPolicy = RequestIdPolicy(),  # noqa: B008
        errors: ErrorPolicy = ErrorPolicy(),  # noqa: B008
        on_retry: Callable[[RetryEvent], Any] | None = None,
        sleep: Callable[[float], None] | None = None,
        budget: RetryBudget | None = RetryBudget(),  # noqa: B008
        breaker: CircuitBreaker | None = None,
        pacing: bool = False,
        throttle: AdaptiveThrottle | None = None,
        state: State | None = None,
        on_event: Callable[[ResilienceEvent], Any] | None = None,
        buffer: int = 0,
        **transport_kwargs: Any,
    ) -> None:
        backend = self._backend
        rules = rules_of(budget, breaker, pacing, throttle)
        hooks = {"on_retry": on_retry, "on_event": on_event}
        self._settings = settings_of(
            retry,
            idempotency,
            request_ids,
            errors,
            hooks,
            backend,
            rules,
            asynchronous=False,
            buffer=buffer,
        )
        self._store = state_of(state).sync_store()
        self._sleep = _waits.sleep_of(sleep)
        # The loop's only links to the world besides I/O, replaced by tests.
        self._clock: Callable[[], float] = time.monotonic
        self._random: Callable[[], float] = random.random
        self._transport: Any = inner_transport(
            transport,
            transport_kwargs,
            backend.transport,
            backend.default_transport,
            backend.name,
        )
        stacked = getattr(self._transport, "_resilient", False) is True
        self._reporter = Reporter(on_retry, on_event, stacked)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = start(request, self._settings, self._clock)
        settings, store, report = call.settings, self._store, self._reporter
        rules = settings.rules
        # Whether the outcomes are reported: to a hook, or to metrics, which may be live once
        # the application imported OpenTelemetry's metrics API (one dict lookup otherwise).
        tells = report.on_event is not None or METRICS_MODULE in sys.modules
        host = call.host or ""
        spent = False  # whether the coming retry spent the host's budget
        last: APIError | None = None  # the error of the attempt before, through the wait
        # The response of the attempt under way, until it is closed or handed on.
        response: httpx.Response | None = None
        try:
            while True:
                probe = False
                pace = 0.0
                admitted = 0.0  # when the attempt was let go, for the throttle
                queued = 0.0  # how long it waited for the throttle's say-so, asking again
                while call.host is not None and (call.attempt == 1 or rules.watches):
                    # An open circuit stops the attempt, a spent rate-limit window or the
                    # throttle's bucket delays it; the budget counts each logical request once.
                    patient = math.inf
                    if rules.throttle is not None:
                        admitted = self._clock()
                        patient = patience(call, admitted, queued)
                    first = call.attempt == 1 and not queued
                    # The longer it has waited, the further ahead it may reserve its token:
                    # callers that came later do not keep overtaking it.
                    ahead = HORIZON + queued
                    verdict = store.before(host, rules, first, spent, patient, ahead)
                    if verdict is CLEAR:
                        break
                    if verdict.change is not None:
                        report.event(f"circuit_{verdict.change}", call, call.attempt - 1)
                    pace, refusal = admit(call, verdict, self._clock())
                    if refusal is not None:
                        report.event(
                            "circuit_rejected", call, call.attempt - 1, error=refusal.error
                        )
                        raise report.give_up(call, refusal.error, refusal.reason, call.attempt - 1)
                    probe = verdict.probe
                    if pace:
                        reason = "throttle" if verdict.throttled else None
                        try:
                            report.event("paced", call, call.attempt - 1, delay=pace, reason=reason)
                            self._sleep(pace)
                        except BaseException:
                            if verdict.reserved:
                                # The token it reserved goes back: the callers queued after
                                # it must not wait for an attempt never sent.
                                store.give_back(host, rules)
                            raise
                        if rules.throttle is not None:
                            admitted = self._clock()  # sent now: a cut counts from here
                    if not (verdict.again and pace) or self._skips_waits():
                        # Waits skipped (`no_wait()`): asking again would find the same.
                        break
                    # The throttle's token was further off than it reserves ahead: ask
                    # again, at the rate of the moment.
                    queued += pace
                if call.attempt > 1 or settings.prepares:
                    if call.deadline is not None and (call.attempt > 1 or pace):
                        # A wait (a retry's, or a pause; or its hooks) that ran late must not
                        # send an attempt with no time left.
                        late = expired(call, self._clock(), last)
                        if late is not None:
                            raise report.give_up(call, late.error, late.reason, call.attempt - 1)
                    prepare(call, self._clock)
                outcome: httpx.Response | Exception
                try:
                    outcome = response = self._transport.handle_request(request)
                except Exception as exc:
                    outcome = exc
                body = request_id = broken = None
                encoded = hand_on = False
                if response is not None:
                    request_id, encoded = _note_request_id(call, response)
                    limit = read_limit(call, response)
                    if settings.buffer and 200 <= response.status_code < 300:
                        broken, body = _buffer(call, response, encoded, limit, self)
                        hand_on = broken is None and limit is None
                    elif limit is None:
                        hand_on = True
                    else:
                        body = read_prefix(
                            response, limit, self._backend, _read_until(call, self._clock)
                        )
                    if broken is not None:
                        # The success body broke off while read for `buffer=`: the attempt
                        # failed, as the host's state counts it too.
                        outcome = broken
                change = None
                if rules.watches:
                    failed, pause, throttled = outcome_of(outcome, rules)
                    # The throttle cuts once for the attempts it admitted before a cut.
                    age = 0.0 if throttled is None else self._clock() - admitted
                    change = store.after(host, rules, failed, pause, probe, throttled, age)
                if hand_on:
                    assert response is not None
                    if tells:
                        report.attempt(call, change, response=response)
                    return _hand_on(call, response, request_id, encoded, self._backend)
                decision: Decision
                if broken is not None:
                    assert response is not None
                    decision = body_failure(
                        call, broken, response.status_code, request_id, self._clock(), self._random
                    )
                else:
                    deciding = call
                    decision = decide(
                        deciding, outcome, body, request_id, self._clock(), self._random
                    )
                spent = False
                if isinstance(decision, Retry) and decision.spend:
                    spent = store.spend(host, rules)
                    if not spent:
                        decision = refused(decision, "retry_budget")
                if decision is None or (isinstance(decision, GiveUp) and decision.hand_on):
                    # Whole: its stream replays what was read before the unread rest.
                    assert response is not None
                    if tells:
                        report.outcome(call, change, response, decision)
                    return _hand_on(call, response, request_id, encoded, self._backend, decision)
                if response is not None:
                    # Closed before any hook runs: a hook may call this same client, whose pool
                    # may have this one connection.
                    closing = response
                    response = None
                    close_response(closing)
                if tells:
                    report.outcome(call, change, outcome, decision)
                if isinstance(decision, Retry):
                    # The response itself is closed: the hooks get its error's copy, with the
                    # part of its body that was read.
                    shown = decision.error.response if decision.response is not None else None
                    event = RetryEvent(
                        call.attempt,
                        decision.delay,
                        decision.reason,
                        request,
                        shown,
                        decision.error,
                    )
                    report.retry(event, call)
                    if (
                        call.deadline is not None
                        and self._clock() + decision.delay >= call.deadline
                    ):
                        # The hooks ran in the deadline's time: the wait no longer fits, and
                        # the server's answer stands, as when the deadline refuses the wait
                        # (raised even with raise_on_status=False: the response is closed).
                        decision = refused(decision, "deadline")
                if isinstance(decision, GiveUp):
                    raise report.give_up(call, decision.error, decision.reason, call.attempt)
                if tells:
                    report.retrying(event, call)
                call = call.next(decision.record)
                delay = decision.delay
                if call.deadline is not None:
                    # Its error (a capped copy of the body) stays through the wait, in case a
                    # sleep that wakes late leaves no time for the next attempt.
                    last = decision.error
                # What this attempt read must not stay alive through the wait and the next
                # attempt: with a large max_body_bytes, it would double what a retry costs.
                del decision, event, outcome, body, broken
                self._sleep(delay)
        except BaseException:
            if response is not None:
                close_response(response)
            raise
        finally:
            if call.deadline is not None:
                restore_timeouts(call)

    def _skips_waits(self) -> bool:
        """Whether this transport's waits are skipped: the default sleep, under `no_wait()`."""
        return self._sleep is _waits.sleep and _waits.waits_skipped()

    def close(self) -> None:
        self._transport.close()

    def __enter__(self: _T) -> _T:
        self._transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._transport.__exit__(exc_type, exc_value, traceback)


def _read_until(call: Call, clock: Callable[[], float]) -> Deadline:
    """Where a body read must stop: at the deadline, if there is one, with the attempt's
    timeouts cut to what is left of it."""
    if call.deadline is None:
        return None
    shorten(call, clock)
    return (clock, call.deadline)


def _buffer(
    call: Call, response: httpx.Response, encoded: bool, limit: int | None, driver: SyncDriver
) -> tuple[Exception | None, tuple[bytes, bool] | None]:
    """Read a success body before it is handed on (`buffer=`): the failure that broke it off,
    if one did, and for `classify` (`limit`, the cap it reads) the body as `decide` takes it.

    A whole body that does not decode fails here too, as it would in the caller's read; one
    longer than the buffer is handed on streaming after the part read.
    """
    backend = driver._backend
    buffer = call.settings.buffer
    until = _read_until(call, driver._clock)
    try:
        pieces = buffer_body(response, max(buffer, limit or 0), backend, until)
    except Exception as exc:
        return exc, None
    if (
        pieces is not None
        and encoded
        and not decodes(pieces, response.headers, DECODE_FACTOR * buffer)
    ):
        error: Exception = backend.module.DecodingError(
            "the body does not decode as its Content-Encoding says", request=call.request
        )
        return error, None
    if limit is None:
        return None, None
    # What `classify` looks at: a body over its cap is no document, and is not joined.
    if pieces is None or sum(map(len, pieces)) > limit:
        return None, (b"", False)
    return None, (b"".join(pieces), True)


def _note_request_id(call: Call, response: httpx.Response) -> tuple[str | None, bool]:
    """Put the response's request id (or the client's) in its extensions, in one pass over its
    headers that also tells whether its body has a Content-Encoding."""
    found, encoded = scan_response_headers(response.headers, call.settings.request_ids.ranks)
    request_id = found or call.client_request_id
    response.extensions["request_id"] = request_id
    return request_id, encoded


def _hand_on(
    call: Call,
    response: httpx.Response,
    request_id: str | None,
    encoded: bool,
    backend: Backend,
    decision: GiveUp | None = None,
) -> httpx.Response:
    """The response handed to the caller, its body's failures typed by one stream wrapper, and
    what it took: the attempts made and the failed ones' records, as an error would carry, and
    what refused the retry that would have followed (`decision`), if anything did."""
    extensions = response.extensions
    extensions["attempts"] = call.attempt
    extensions["history"] = call.history
    # The policies in force, for `from_response` and `poll` to build the errors the transport
    # would have: one mapping per transport (or override), made once.
    extensions["resilience"] = call.settings.policies
    if decision is not None and decision.reason in REFUSALS:
        extensions["refused"] = decision.reason
    stream = backend.sync_mapped(response.stream, call, response.status_code, request_id)  # type: ignore[arg-type]
    response.stream = stream
    if encoded:
        guard_decoding(response, stream._map)
    return response
