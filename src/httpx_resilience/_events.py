"""What a transport tells the outside world: `on_event` events and OpenTelemetry attributes.

The `Reporter` that builds and delivers them is in `_report_async.py` (and the sync one
generated from it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import httpx

from ._errors import APIError
from ._redact import request_repr

__all__ = ["EventHook", "ResilienceEvent", "RetryEvent", "logger", "note_resend"]

logger = logging.getLogger("httpx_resilience")


@dataclass(frozen=True, slots=True, repr=False)
class ResilienceEvent:
    """One thing that happened to a request, or to a host's circuit, as `on_event` hears it.

    `kind` is one of:

    * "attempt": an attempt finished; `response` or `error` tells how.
    * "retry": a retry will follow after `delay` seconds (what `on_retry` hears, too).
    * "give_up": the typed `error` is about to be raised; `reason` says why no retry followed
      ("not retryable", "attempts exhausted", "retry_budget", "deadline", "retry_after",
      "circuit_open").
    * "budget_refused": the retry budget refused the retry that would have followed.
    * "paced": the request waits `delay` seconds before its attempt: for the host's rate-limit
      window to reopen (`reason` None), or, with `reason` "throttle", for the token of the
      host's adaptive throttle (`AdaptiveThrottle`) that it reserved.
    * "circuit_open", "circuit_half_open", "circuit_closed": the host's circuit changed state.
    * "circuit_rejected": an attempt was not made because the circuit is open.

    `host` is "scheme://host", with ":port" when the port is not the scheme's default;
    `attempt` is the 1-based attempt the event is about (for "give_up", the number made; 0
    before the first). Its repr shows the request's URL redacted, as the error's is: with
    `redact_names` (the transport's `ErrorPolicy.redact_names`) besides the default names.
    """

    kind: str
    host: str
    attempt: int = 0
    delay: float = 0.0
    reason: str | None = None
    request: httpx.Request | None = None
    response: httpx.Response | None = None
    error: APIError | None = None
    redact_names: Collection[str] = field(default=frozenset(), kw_only=True)

    def __repr__(self) -> str:
        # What a hook naturally logs: the URL redacted (the error's, where there is one), with
        # every name the transport knows, and no header at all.
        url = self.error.url if self.error is not None else None
        request = (
            None if self.request is None else request_repr(self.request, url, self.redact_names)
        )
        return (
            f"{type(self).__name__}(kind={self.kind!r}, host={self.host!r}, "
            f"attempt={self.attempt!r}, delay={self.delay!r}, reason={self.reason!r}, "
            f"request={request}, response={self.response!r}, error={self.error!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class RetryEvent:
    """What `on_retry` hears before each wait.

    `attempt` is the 1-based number of the attempt that just failed; `reason` is short text
    ("status 503", "ConnectError"); `error` is that attempt's typed error (for a status, the
    `StatusError` built from the response); `response` is None for a transport failure. Its
    repr shows the request's URL redacted, as the error's is.
    """

    attempt: int
    delay: float
    reason: str
    request: httpx.Request
    response: httpx.Response | None
    error: APIError

    def __repr__(self) -> str:
        # What a hook naturally logs: the URL as the error redacted it, no header at all.
        request = request_repr(self.request, self.error.url)
        return (
            f"{type(self).__name__}(attempt={self.attempt!r}, delay={self.delay!r}, "
            f"reason={self.reason!r}, request={request}, response={self.response!r}, "
            f"error={self.error!r})"
        )


EventHook = Callable[[ResilienceEvent], object]


_RESEND_COUNT = "http.request.resend_count"


def note_resend(count: int) -> None:
    """Set `http.request.resend_count` on the current OpenTelemetry span, if there is one.

    Only when the application already imported `opentelemetry.trace`: without it there is no
    span to annotate, and importing it here would cost every process that never traces.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return
    try:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(_RESEND_COUNT, count)
    except Exception:  # a broken tracing setup must not fail the request
        logger.debug("could not set %s on the current span", _RESEND_COUNT, exc_info=True)
