# Generated from _report_async.py by tools/unasync.py: do not edit; edit _report_async.py and run
# `make unasync`.
"""What a transport tells the world: its log lines, its `on_retry` and `on_event` hooks, and its
OpenTelemetry metrics (`_metrics`), recorded from the same events.

On the async transport a hook may be an `async def` function, which it awaits. The sync
`Reporter` in `_report_sync.py` is generated from this file by `tools/unasync.py` (`make
unasync`): edit this one only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from ._decide import Decision, GiveUp, attempt_error
from ._errors import APIError
from ._events import EventHook, ResilienceEvent, RetryEvent, logger
from ._hooks import unawaited
from ._metrics import live

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["Reporter"]


class Reporter:
    """A transport's log lines, hooks and metrics. Events are built only when a hook listens,
    and recorded only while metrics are live; a hook that raises is logged by its type and
    ignored.

    The driver calls `attempt` and `outcome` only when `on_event` is set or metrics may be live
    (the application imported them): the success path pays nothing more otherwise.
    """

    __slots__ = ("on_event", "on_retry", "stacked")

    def __init__(
        self,
        on_retry: Callable[[RetryEvent], Any] | None,
        on_event: EventHook | None,
        stacked: bool = False,
    ) -> None:
        self.on_retry = on_retry
        self.on_event = on_event
        # Over another resilient transport, whose attempts are the ones sent: they are its to
        # count, and this one's attempts (one per call to it) are not counted again.
        self.stacked = stacked

    def event(
        self,
        kind: str,
        call: Call,
        attempt: int,
        *,
        delay: float = 0.0,
        reason: str | None = None,
        response: httpx.Response | None = None,
        error: APIError | None = None,
    ) -> None:
        """Record `kind`, after `attempt` attempts of `call`, and tell `on_event` of it."""
        meters = live()
        if meters is not None and not (self.stacked and kind == "attempt"):
            meters.record(kind, call.request, attempt, reason, response, error)
        hook = self.on_event
        if hook is None:
            return
        from ._state import host_key

        event = ResilienceEvent(
            kind,
            call.host or host_key(call.request.url),
            attempt,
            delay,
            reason,
            call.request,
            response,
            error,
            redact_names=call.settings.errors.redact_names,
        )
        try:
            unawaited(hook(event), "on_event")
        except Exception as exc:
            # A metrics hook must not fail the request. By its type only: a hook's message may
            # quote the request or response it was given.
            logger.warning("on_event hook raised %s; the request goes on", type(exc).__name__)

    def attempt(
        self,
        call: Call,
        change: str | None,
        response: httpx.Response | None = None,
        error: APIError | None = None,
    ) -> None:
        """An attempt finished; then what its outcome did to the host's circuit, if anything."""
        self.event("attempt", call, call.attempt, response=response, error=error)
        if change is not None:
            self.event(f"circuit_{change}", call, call.attempt)

    def outcome(
        self,
        call: Call,
        change: str | None,
        outcome: httpx.Response | Exception,
        decision: Decision,
    ) -> None:
        """What an attempt came to, once decided: its "attempt" event (the response, or the
        typed error of an exception), the circuit's change, and a budget refusal.

        A response that is not handed on was closed before the hooks run: they get the copy
        of it that its error holds, with the part of its body the transport read.
        """
        if isinstance(outcome, Exception):
            assert decision is not None  # an exception is never handed on
            self.attempt(call, change, error=attempt_error(decision))
        elif outcome.is_closed and decision is not None and decision.error.response is not None:
            # A success status `classify` called a failure comes with its error: the status
            # alone would not say so.
            error = decision.error if outcome.status_code < 400 else None
            self.attempt(call, change, response=decision.error.response, error=error)
        else:
            self.attempt(call, change, response=outcome)
        if isinstance(decision, GiveUp) and decision.reason == "retry_budget":
            self.event("budget_refused", call, call.attempt, error=decision.error)

    def retry(self, event: RetryEvent, call: Call) -> None:
        """A retry is due: log it, and tell `on_retry`. `retrying` tells the rest once the
        deadline let it go ahead."""
        error = event.error
        max_attempts = call.settings.retry.max_attempts
        logger.info(
            "retrying %s %s after %s (attempt %d of %d) in %.3fs",
            error.method,
            error.url,
            event.reason,
            event.attempt,
            max_attempts,
            event.delay,
        )
        if self.on_retry is not None:
            try:
                unawaited(self.on_retry(event), "on_retry")
            except Exception as exc:
                # A metrics or logging hook must not turn a retry into a failure. Logged by its
                # type only: its message may quote the request or response it was given.
                logger.warning("on_retry hook raised %s; the retry goes ahead", type(exc).__name__)

    def retrying(self, event: RetryEvent, call: Call) -> None:
        """The retry goes ahead: its "retry" event (and metric)."""
        self.event(
            "retry",
            call,
            event.attempt,
            delay=event.delay,
            reason=event.reason,
            response=event.response,
            error=event.error,
        )

    def give_up(self, call: Call, error: APIError, reason: str, made: int) -> APIError:
        """No more attempts after `made`: tell `on_event`, log at debug, give the error back."""
        self.event("give_up", call, made, reason=reason, error=error)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s failed: %s", error.method, error.url, error)
        return error
