"""Retry decisions: whether an attempt may be repeated, and after how long. No I/O.

The rules, in the order `request_flow` applies them:

1. A body that cannot be replayed (a generator, a file that cannot seek) is sent once.
2. A failure before the request left (connect or pool phase) may be retried for any method.
   Anything later — a status, a read timeout, a reset mid-response — only for methods in
   `retry_methods` or for requests that carry an idempotency key.
3. Statuses retry when in `retry_statuses`, unless the server's `x-should-retry` (or
   `stripe-should-retry`) says otherwise; errors whose `retryable` is false (an exhausted
   quota, a certificate that failed verification) never do.
4. The wait is the server's hint (`retry-after-ms`, `Retry-After`) when it gave one, else the
   backoff. A hint above `max_retry_after` is not waited for: the error is raised at once.
5. No wait and no attempt goes past the total deadline (`timeout`).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from ._classify import DEFAULT_RETRY_STATUSES
from ._errors import APIError
from ._policies import (
    Policy,
    check,
    is_header_name,
    is_names,
    is_number,
    is_statuses,
    materialise,
)
from ._redact import request_repr
from ._streams import CountedRequestStream

__all__ = [
    "IDEMPOTENT_METHODS",
    "UNSENT_PHASES",
    "Backoff",
    "RetryEvent",
    "RetryPolicy",
    "is_replayable",
    "may_resend",
    "rewind",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_JITTER_MODES = ("full", "equal", "none")
# Phases in which the request provably never reached the server.
UNSENT_PHASES = frozenset({"connect", "pool"})


@dataclass(frozen=True, slots=True)
class Backoff(Policy):
    """Exponential backoff: before the n-th retry, `min(initial * multiplier**n, max_delay)`.

    `jitter` spreads the waits of many clients: "full" (uniform in [0, d]), "equal"
    (d/2 plus uniform in [0, d/2]), "none", or a fraction f (uniform in [d(1-f), d(1+f)]).
    The result never exceeds `max_delay`.
    """

    initial: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: str | float = "full"

    def __post_init__(self) -> None:
        name = "Backoff"
        check(is_number(self.initial) and self.initial >= 0, name, "initial must be >= 0")
        check(is_number(self.multiplier) and self.multiplier >= 1, name, "multiplier must be >= 1")
        check(is_number(self.max_delay) and self.max_delay >= 0, name, "max_delay must be >= 0")
        jitter = self.jitter
        if isinstance(jitter, str):
            valid = jitter in _JITTER_MODES
        else:
            valid = is_number(jitter) and 0 < jitter <= 1
        check(valid, name, f"jitter must be one of {_JITTER_MODES} or a fraction in (0, 1]")

    def delay(self, retry: int, random: Callable[[], float]) -> float:
        """The wait before retry number `retry` (0 for the first), with jitter from `random`."""
        try:
            base = min(self.initial * self.multiplier**retry, self.max_delay)
        except OverflowError:
            # multiplier**retry outgrew a float, though the product may not have (a tiny
            # `initial`): compared in logarithms instead.
            base = _log_scaled(self.initial, self.multiplier, retry, self.max_delay)
        jitter = self.jitter
        if jitter == "full":
            wait = random() * base
        elif jitter == "equal":
            wait = base / 2 + random() * base / 2
        elif jitter == "none":
            wait = base
        else:
            spread = float(jitter)
            wait = base * (1 - spread) + random() * 2 * spread * base
        return min(max(wait, 0.0), self.max_delay)


def _log_scaled(initial: float, multiplier: float, retry: int, cap: float) -> float:
    """`min(initial * multiplier**retry, cap)` where the power alone overflows a float."""
    if initial <= 0 or cap <= 0:
        return 0.0
    exponent = math.log(initial) + retry * math.log(multiplier)
    return cap if exponent >= math.log(cap) else math.exp(exponent)


def _methods(value: Iterable[str]) -> frozenset[str]:
    return frozenset(m.upper() for m in value)


@dataclass(frozen=True, slots=True)
class RetryPolicy(Policy):
    """When and how a failed attempt is repeated. `max_attempts=1` disables retries."""

    max_attempts: int = 3
    backoff: Backoff = Backoff()
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = 120.0
    timeout: float | None = None
    retry_methods: frozenset[str] = IDEMPOTENT_METHODS
    attempt_header: str | None = None

    def __post_init__(self) -> None:
        name = "RetryPolicy"
        # Taken as tuples first: a generator would be used up by checking it.
        materialise(self, "retry_statuses", "retry_methods")
        attempts = self.max_attempts
        check(
            isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 1,
            name,
            "max_attempts must be an int >= 1",
        )
        check(isinstance(self.backoff, Backoff), name, "backoff must be a Backoff")
        statuses = self.retry_statuses
        check(is_statuses(statuses), name, "retry_statuses must be a set of HTTP statuses")
        respect = self.respect_retry_after
        check(isinstance(respect, bool), name, "respect_retry_after must be a bool")
        check(
            is_number(self.max_retry_after) and self.max_retry_after >= 0,
            name,
            "max_retry_after must be a number >= 0",
        )
        check(
            self.timeout is None or (is_number(self.timeout) and self.timeout > 0),
            name,
            "timeout must be None or a number of seconds > 0",
        )
        check(is_names(self.retry_methods), name, "retry_methods must be a set of method names")
        check(
            self.attempt_header is None or is_header_name(self.attempt_header),
            name,
            "attempt_header must be None or a header name",
        )
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))
        object.__setattr__(self, "retry_methods", _methods(self.retry_methods))


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


# Where each replayable `content=` file began, by its stream: every later attempt starts there
# again, as the first did. Weak, so an entry goes with its request.
_STARTS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def is_replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent again: bytes, str, JSON, form, and files that can be rewound.

    A file passed as `content=`, and every file of a multipart body, must be seekable
    (`seekable()` true and `seek` working); anything else that streams is sent once. Where a
    `content=` file stands now is noted, for `rewind` to send it from there again.
    """
    stream = _body_stream(request.stream)
    kind = type(stream).__name__  # by name, so httpx2's classes count too
    if kind == "ByteStream":
        return True
    if kind == "MultipartStream":
        # Moving the files to their start is no change: httpx seeks each one there before it
        # reads it. Where that seek fails, httpx reads on from where the last pass ended, so a
        # retry would carry an empty part.
        return all(_seeks(file, 0) for file in _files(stream))
    if kind == "IteratorByteStream":
        # httpx sends a `content=` file from where it stands, not from its start.
        file = stream._stream
        start = _tell(file) if hasattr(file, "read") else None
        if start is not None and _seeks(file, start):
            _STARTS[stream] = start
            return True
    return False


def rewind(request: httpx.Request) -> None:
    """Before a retry: put the files of a replayable body back where the first attempt began."""
    stream = _body_stream(request.stream)
    if type(stream).__name__ == "MultipartStream":
        for file in _files(stream):
            file.seek(0)
    else:
        start = _STARTS.get(stream)
        if start is not None:
            stream._stream.seek(start)


def _body_stream(stream: Any) -> Any:
    """The body the caller gave, inside the request-size limit's counting wrapper if any."""
    # A resilient transport stacked below sees the wrapper of the one above.
    while isinstance(stream, CountedRequestStream):
        stream = stream._stream
    return stream


def _files(stream: Any) -> list[Any]:
    """The file objects of a multipart stream (a file given as bytes or str is not one)."""
    files = (getattr(field, "file", None) for field in stream.fields)
    return [file for file in files if file is not None and not isinstance(file, (bytes, str))]


def _seeks(file: Any, position: int) -> bool:
    """Whether `file` says it is seekable and moves to `position` when asked."""
    try:
        if not file.seekable():
            return False
        file.seek(position)
    except Exception:  # no seekable() or seek(), or one that fails: the file is read once
        return False
    return True


def _tell(file: Any) -> int | None:
    try:
        position = file.tell()
    except Exception:  # a stream that cannot say where it is cannot be put back there
        return None
    return position if isinstance(position, int) and not isinstance(position, bool) else None


def may_resend(method: str, keyed: bool, phase: str | None, retry_methods: frozenset[str]) -> bool:
    """Whether resending is safe: never sent, an idempotent method, or an idempotency key."""
    return phase in UNSENT_PHASES or method in retry_methods or keyed
