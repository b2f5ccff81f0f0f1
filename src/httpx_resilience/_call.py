"""The record of one logical request: what is settled before its first attempt, and after which.

A `Call` is made once per request by `start`, and `Call.next` gives the record of the next
attempt, in the manner of urllib3's `Retry.increment`: the attempt number goes up and the
failed attempt joins the history. Everything an error, an event or a failing body later needs to
know of its request — which policies, which ids and key, which attempt after what — is here;
it is a plain value, and what is made of it (an error's fields) is made where that is done.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

import httpx

from ._errors import AttemptRecord, ConfigurationError
from ._errors_build import too_large_error
from ._events import note_resend
from ._headers import add_header, header_value
from ._policies import IdempotencyPolicy
from ._replay import is_replayable, rewind
from ._settings import Settings
from ._state import host_key

__all__ = [
    "AttemptExtensions",
    "Call",
    "assign_key",
    "prepare",
    "restore_timeouts",
    "shorten",
    "start",
]

_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
_new_tuple = tuple.__new__


class Call(NamedTuple):
    """One logical request at one attempt: a tuple, so making one costs what a success can pay.

    `host` is the host the budget, breaker and pacing count for (None when none is on);
    `deadline` is the monotonic time the whole request must be done by (None without
    `RetryPolicy.timeout`), and `extensions` the call's own copy of the request's extensions,
    whose timeouts the deadline cuts (None without a deadline).
    """

    # None only for an error built outside a transport, of a response without its request.
    request: httpx.Request
    settings: Settings
    client_request_id: str | None = None
    key: str | None = None
    replayable: bool = False
    deadline: float | None = None
    extensions: AttemptExtensions | None = None
    host: str | None = None
    attempt: int = 1
    history: tuple[AttemptRecord, ...] = ()

    def next(self, record: AttemptRecord) -> Call:
        """The record of the attempt after this one, which failed as `record` says."""
        return self._replace(attempt=self.attempt + 1, history=(*self.history, record))


def start(
    request: httpx.Request, base: Settings, clock: Callable[[], float] = time.monotonic
) -> Call:
    """Settle the policies, ids, key, deadline and host of a request before its first attempt.

    A request over `ErrorPolicy.max_request_bytes` raises `RequestTooLargeError` here, before
    any I/O; a streamed one of unknown size is counted as it goes out instead.
    """
    if type(request) is not base.backend.request and not isinstance(request, base.backend.request):
        raise _wrong_package(request, base.backend.name)
    settings = base.for_request(request) if "resilience" in request.extensions else base
    client_request_id = None
    if settings.request_ids.send_header is not None:
        client_request_id = _client_request_id(request, settings.request_ids.send_header)
    # A key is looked up (or made) unless the method is safe to resend without one and the
    # policy does not key it: no header look-up on a plain GET. A key the caller set on such
    # a request is still found for the error, if there is one.
    key = None if request.method in settings.unkeyed else assign_key(request, settings.idempotency)
    replayable = settings.retries and is_replayable(request)
    deadline = extensions = None
    if settings.prepares and settings.retry.timeout is not None:
        deadline = clock() + settings.retry.timeout
        extensions = AttemptExtensions(request.extensions)
    host = host_key(request.url) if settings.counts_hosts else None
    # tuple.__new__ directly: NamedTuple's own __new__ is a Python function, and every request
    # makes one of these.
    call: Call = _new_tuple(
        Call,
        (request, settings, client_request_id, key, replayable, deadline, extensions, host, 1, ()),
    )
    if settings.errors.max_request_bytes is not None:
        _limit_request_size(call, settings.errors.max_request_bytes)
    return call


def _wrong_package(request: object, package: str) -> ConfigurationError:
    """The error for a request of another httpx-like package than the transport serves: an
    httpx transport in an httpx2 client, or the reverse."""
    other = "httpx2" if package == "httpx" else "httpx"
    module = "httpx_resilience.httpx2" if other == "httpx2" else "httpx_resilience"
    return ConfigurationError(
        f"this transport serves {package}, but it was given a {type(request).__qualname__} "
        f"that is not an {package}.Request: in an {other} client, use {module}'s transports"
    )


def prepare(call: Call, clock: Callable[[], float] = time.monotonic) -> None:
    """Ready the request for `call`'s attempt: its number, its share of the deadline, its body.

    The first attempt needs it only when `Settings.prepares` says so.
    """
    request, attempt = call.request, call.attempt
    header = call.settings.retry.attempt_header
    if header is not None:
        request.headers[header] = str(attempt)
    if call.deadline is not None:
        shorten(call, clock)
    if attempt > 1:
        note_resend(attempt - 1)
        rewind(request)  # a file body goes again from where the first attempt began


def assign_key(request: httpx.Request, policy: IdempotencyPolicy) -> str | None:
    """The request's idempotency key: the caller's, or a new one where the policy wants one.

    A blank header the caller set is no key: the caller's own key after it, or where there is
    none and the policy keys the method a new one, replaces it, so one header goes out.
    """
    headers = request.headers
    existing = header_value(headers, policy.encoded[1])
    if existing is not None and not existing.strip():
        # Rare: look past the blank one for a key the caller did set.
        existing = next((v for v in headers.get_list(policy.header) if v.strip()), "")
        if existing:
            headers[policy.header] = existing
    if existing:
        return existing
    if not policy.enabled or request.method not in policy.methods:
        return None
    try:
        key = str(policy.generate())
    except Exception as exc:
        raise ConfigurationError(f"IdempotencyPolicy.generate raised {type(exc).__name__}") from exc
    if existing is None:
        add_header(headers, policy.header, policy.encoded, key)
    else:
        headers[policy.header] = key
    return key


class AttemptExtensions(dict[str, Any]):
    """A call's copy of its request's extensions, which its attempts go with: the deadline cuts
    the timeouts here, and the caller's dict (`own`) is never changed.

    One copy per call, changed in place: httpcore keeps the dict an attempt began with and
    reads the read timeout from it again when the body's reading begins, so a cut made before
    an error body is read reaches it. A call that begins on another call's copy starts from
    that copy's cut timeouts when it runs inside that call (a resilient transport stacked
    below), and from the caller's own when it runs beside it (the same request sent twice at
    once); the dict given back at the end is the caller's own either way.
    """

    __slots__ = ("own", "timeouts", "token")
    own: dict[str, Any]
    timeouts: Any
    token: Token[AttemptExtensions | None] | None

    def __init__(self, extensions: dict[str, Any]) -> None:
        source = extensions
        if type(extensions) is AttemptExtensions:
            inside = _IN_FORCE.get() is extensions
            source = extensions if inside else extensions.own
            self.own = extensions.own
        else:
            self.own = extensions
        super().__init__(source)
        self.timeouts = source.get("timeout")
        self.token = None


# The copy of the call under way in this thread or task, so that a call made inside its
# attempt (by a transport below) can tell it is one.
_IN_FORCE: ContextVar[AttemptExtensions | None] = ContextVar(
    "httpx_resilience_extensions", default=None
)


def shorten(call: Call, clock: Callable[[], float] = time.monotonic) -> None:
    """Cut each of the attempt's timeouts to what is left of `call`'s deadline.

    Before each attempt, and again before its error body is read: httpcore takes the read
    timeout for a whole body when reading it begins. On the call's copy of the extensions, so
    the caller's dict, which it (or a redirect hop httpx builds from the request) may read, is
    never changed.
    """
    assert call.deadline is not None
    copy = call.extensions
    assert copy is not None
    copy["timeout"] = _shortened(copy.timeouts, call.deadline - clock())
    call.request.extensions = copy
    if copy.token is None:
        copy.token = _IN_FORCE.set(copy)


def restore_timeouts(call: Call) -> None:
    """Give the request back its own extensions, once its call is over: the deadline's
    shortened timeouts must not cut short a later send of the same request."""
    copy = call.extensions
    if copy is not None:
        call.request.extensions = copy.own
        if copy.token is not None:
            _IN_FORCE.reset(copy.token)
            copy.token = None


def _shortened(timeouts: Any, remaining: float) -> dict[str, float | None]:
    """Each httpx timeout cut to the time left before the deadline."""
    left = max(remaining, 0.0)
    current = timeouts if isinstance(timeouts, Mapping) else {}
    shortened: dict[str, float | None] = {}
    for name in _TIMEOUT_KEYS:
        value = current.get(name)
        shortened[name] = left if value is None else min(value, left)
    return shortened


def _client_request_id(request: httpx.Request, header: str) -> str:
    existing: str | None = request.headers.get(header)
    if existing:
        return existing
    value = uuid.uuid4().hex
    request.headers[header] = value
    return value


def _limit_request_size(call: Call, limit: int) -> None:
    request = call.request
    size = _known_size(request)
    if size is None:
        request.stream = call.settings.backend.counted(
            request.stream, limit, lambda sent: too_large_error(call, sent, limit, attempts=1)
        )
    elif size > limit:
        raise too_large_error(call, size, limit, attempts=0)


def _known_size(request: httpx.Request) -> int | None:
    length = request.headers.get("content-length")
    if length is not None and length.isascii() and length.strip().isdigit():
        # ASCII only: str.isdigit() also takes "²" and other scripts' digits.
        return int(length)
    if type(request.stream).__name__ == "ByteStream":  # httpx's or httpx2's bytes
        return len(request.read())
    return None
