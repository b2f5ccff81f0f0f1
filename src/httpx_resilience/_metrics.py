"""OpenTelemetry metrics of what a transport did: attempts, retries, give-ups, refusals, circuits.

Live only once the application imported `opentelemetry.metrics` (as `note_resend` waits for
`opentelemetry.trace`): until then nothing is imported and nothing recorded, and a request
pays one dict lookup (`METRICS_MODULE in sys.modules`, in the driver). The instruments come
from the global meter provider; made before the application sets one, they are the API's
proxies, which forward to the provider once it is set.

No semantic convention covers retries or circuits, so the instruments live in the library's
own namespace, `httpx_resilience.*` (the meter's name too): the naming guide advises against
new names under a convention's namespace such as `http.*`, which a later convention may claim.
Their attributes are the HTTP conventions' where one exists (`server.address`, `error.type`,
`http.request.resend_count`, ...); each takes values from a bounded set: never a URL, a path,
a query or an id.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import httpx

from ._errors import APIError
from ._events import logger
from ._version import __version__

__all__ = ["METRICS_MODULE", "Instruments", "live"]

METRICS_MODULE = "opentelemetry.metrics"

_DEFAULT_PORTS = {"http": 80, "https": 443}
# The methods the HTTP conventions know; any other is recorded as "_OTHER", as they say, so a
# client sending made-up methods cannot grow the number of series.
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# The give-up reasons of `GiveUp.reason`, as attribute values (snake_case, as enums are).
_REASONS = {
    "not retryable": "not_retryable",
    "attempts exhausted": "attempts_exhausted",
    "retry_budget": "retry_budget",
    "deadline": "deadline",
    "retry_after": "retry_after",
    "circuit_open": "circuit_open",
}
# The circuit's states as the gauge's values.
_STATES = {"circuit_closed": 0, "circuit_half_open": 1, "circuit_open": 2}
# How deep an error's causes are followed for the exception that stands behind it.
_CAUSE_DEPTH = 4


class Instruments:
    """The transport's instruments, made once per process from the global meter provider."""

    __slots__ = ("attempts", "give_ups", "refusals", "rejections", "retries", "state")

    def __init__(self, meter: Any) -> None:
        self.attempts = meter.create_counter(
            "httpx_resilience.attempts",
            unit="{attempt}",
            description="HTTP attempts made, the first of each request included.",
        )
        self.retries = meter.create_counter(
            "httpx_resilience.retries",
            unit="{retry}",
            description="Retries decided on, by the failure that led to each (error.type).",
        )
        self.give_ups = meter.create_counter(
            "httpx_resilience.give_ups",
            unit="{request}",
            description="Requests that ended in a raised error, by why no retry followed.",
        )
        self.refusals = meter.create_counter(
            "httpx_resilience.budget.refusals",
            unit="{retry}",
            description="Retries the host's retry budget refused.",
        )
        self.rejections = meter.create_counter(
            "httpx_resilience.circuit.rejections",
            unit="{request}",
            description="Attempts not made because the host's circuit was open.",
        )
        # Synchronous gauges came with opentelemetry-api 1.23: without one, the counters still
        # count.
        create_gauge = getattr(meter, "create_gauge", None)
        self.state = (
            None
            if create_gauge is None
            else create_gauge(
                "httpx_resilience.circuit.state",
                unit="{state}",
                description="The host's circuit, as last changed: 0 closed, 1 half-open, 2 open.",
            )
        )

    def record(
        self,
        kind: str,
        request: httpx.Request,
        attempt: int,
        reason: str | None,
        response: httpx.Response | None,
        error: APIError | None,
    ) -> None:
        """Record the event `kind` (a `ResilienceEvent.kind`) of `request`; never raises."""
        try:
            self._record(kind, request, attempt, reason, response, error)
        except Exception:  # a broken metrics setup must not fail the request
            logger.debug("could not record the %s metric", kind, exc_info=True)

    def _record(
        self,
        kind: str,
        request: httpx.Request,
        attempt: int,
        reason: str | None,
        response: httpx.Response | None,
        error: APIError | None,
    ) -> None:
        if _counted_below(kind, response, error):
            return
        attributes = _server(request.url)
        state = _STATES.get(kind)
        if state is not None:
            if self.state is not None:
                self.state.set(state, attributes)
            return
        method = request.method
        attributes["http.request.method"] = method if method in _METHODS else "_OTHER"
        if kind == "circuit_rejected":
            self.rejections.add(1, attributes)
            return
        status = response.status_code if response is not None else None
        if status is None and error is not None:
            status = error.status_code
        if status is not None:
            attributes["http.response.status_code"] = status
        failure = _error_type(status, error)
        if failure is not None:
            attributes["error.type"] = failure
        if kind == "attempt":
            if attempt > 1:  # set on resends only, as on the span
                attributes["http.request.resend_count"] = attempt - 1
            self.attempts.add(1, attributes)
        elif kind == "retry":
            self.retries.add(1, attributes)
        elif kind == "give_up":
            attributes["httpx_resilience.give_up.reason"] = _REASONS.get(reason or "", "_OTHER")
            self.give_ups.add(1, attributes)
            if error is not None:
                # A resilient transport stacked above gets this error as its attempt's
                # outcome: counted here, it must not be counted there again.
                setattr(error, _COUNTED, True)
        elif kind == "budget_refused":
            self.refusals.add(1, attributes)


# Set on an error once its give-up is recorded.
_COUNTED = "_httpx_resilience_counted"


def _counted_below(kind: str, response: httpx.Response | None, error: APIError | None) -> bool:
    """Whether a resilient transport stacked below already recorded this outcome: its error
    was given up there, or its response handed on from there (which then carries its
    `attempts`; this transport's own are set after the event). The attempts the transport
    below made are its to count; the one this transport made of them would count them twice."""
    if kind not in ("attempt", "give_up"):
        return False
    if error is not None and getattr(error, _COUNTED, False):
        return True
    return kind == "attempt" and response is not None and "attempts" in response.extensions


def _server(url: httpx.URL) -> dict[str, Any]:
    """The host's attributes: its name and port, never the userinfo, path or query."""
    scheme = url.scheme
    attributes: dict[str, Any] = {"server.address": url.host, "url.scheme": scheme}
    port = url.port or _DEFAULT_PORTS.get(scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def _error_type(status: int | None, error: APIError | None) -> str | None:
    """`error.type` as the HTTP conventions have it: an error status as text, else the class
    of the exception behind the error (httpx's `ConnectError`, not our `NetworkError`)."""
    if status is not None and status >= 400:
        return str(status)
    if error is None:
        return None
    exc: BaseException = error
    for _ in range(_CAUSE_DEPTH):
        cause = exc.__cause__
        if not isinstance(exc, APIError) or cause is None:
            break
        exc = cause
    return type(exc).__name__


# Reentrant: see `_making`.
_lock = threading.RLock()
_made: Instruments | None = None
_broken = False
_making = False


def live() -> Instruments | None:
    """The instruments, once the application imported `opentelemetry.metrics`; else None."""
    metrics = sys.modules.get(METRICS_MODULE)
    if metrics is None:
        return None
    made = _made
    return made if made is not None else _make(metrics)


def _make(metrics: Any) -> Instruments | None:
    global _made, _broken, _making
    with _lock:
        if _making:
            # Called again from inside `get_meter`, in this thread: a log handler that sends
            # what the SDK logged through a resilient transport. Not recorded, not deadlocked.
            return None
        if _made is None and not _broken:
            get_meter = getattr(metrics, "get_meter", None)
            if get_meter is None:  # still being imported, in another thread
                return None
            _making = True
            try:
                _made = Instruments(get_meter("httpx_resilience", __version__))
            except Exception:  # a broken metrics setup must not fail the request
                _broken = True
                logger.debug("could not make the OpenTelemetry instruments", exc_info=True)
            finally:
                _making = False
        return _made
