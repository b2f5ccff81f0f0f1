"""Polling a long-running job (a training run, a batch) until it is done, within a deadline.

`poll` and `apoll` are thin loops around `_Schedule`, which makes every decision without I/O:
whether an answer is an error, how long to wait before the next poll, and when the deadline
has come. The rules:

1. The first poll is sent at once; the wait after the n-th is `interval.delay(n - 1)`, or the
   server's `Retry-After` / `retry-after-ms` on that answer, capped at `interval.max_delay`.
2. No wait ends after the deadline: when the next one would, `PollTimeoutError` is raised at
   once, since the next poll is not due before the deadline. A wait ending on it is taken, and
   that last poll's answer decides.
3. An answer `until` rejects with a status of 400 or more raises its typed error.
"""

from __future__ import annotations

import inspect
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._call import Call
from ._decide import error_for
from ._errors import APIError, ConfigurationError, PollTimeoutError
from ._errors_build import body_response, carried_settings, from_response, redactor_for
from ._errors_build import common as error_common
from ._headers import find_header, parse_retry_after
from ._policies import Backoff, is_number
from ._redact import Redactor
from ._settings import Settings
from ._waits import async_sleep, sleep, waits_skipped

__all__ = ["apoll", "poll", "resource_id"]

Until = Callable[[httpx.Response], bool]

_DEFAULT_INTERVAL = Backoff(initial=1.0, multiplier=1.5, max_delay=30.0, jitter=0.1)
# Top-level JSON fields that name a job, best first: "id" (OpenAI, Anthropic, Replicate),
# "job_id" / "jobId" (batch services), "operation_id" / "operationId", and "name" (Google's
# long-running operations, "operations/123").
_ID_FIELDS = ("id", "job_id", "jobId", "operation_id", "operationId", "name")
# A status document is small: a larger body is not parsed just to name the job in an error.
_MAX_ID_BODY = 1 << 20
_MAX_ID_LENGTH = 200
# A module attribute, so tests can drive the schedule with a clock of their own.
_monotonic = time.monotonic


def poll(
    client: httpx.Client,
    url: httpx.URL | str,
    *,
    until: Until,
    timeout: float,
    interval: Backoff = _DEFAULT_INTERVAL,
    method: str = "GET",
    **request_kwargs: Any,
) -> httpx.Response:
    """Request `url` until `until(response)` is true, and return that response.

    The first poll goes out at once; the waits between polls follow `interval` (by default 1 s,
    growing by 1.5 to at most 30 s, ±10 % jitter), or the server's `Retry-After` on a poll's
    answer, capped at `interval.max_delay`. `timeout` is the total polling deadline in seconds
    (monotonic clock): when the next wait would end after it, `PollTimeoutError` is raised at
    once, so it may come up to one wait before `timeout` has passed. A request in flight is
    bounded by the client's own timeouts, not by this deadline. The job on the server is NOT
    cancelled: cancel it yourself if it should stop.

    Errors are typed: a client whose transport is a `ResilientTransport` raises them (and retries
    single polls) itself; with a plain client, httpx exceptions become the matching `APIError`
    and an answer `until` rejects with a status of 400 or more raises `from_response(answer)`.
    `until` sees such answers first, so it can wait for a 404 after a delete, and should check
    the status before reading the body: `lambda r: r.is_success and r.json()["status"] == "done"`.
    An exception from `until` propagates as it is. `request_kwargs` (`params`, `headers`,
    `json`, ...) go to every `client.request`; httpx's per-request `timeout` is not among them,
    since `timeout` here is the deadline: set request timeouts on the client.

    Under `httpx_resilience.testing.no_wait()` the waits are skipped but still count against
    the deadline, so a test meets the same polls and the same `PollTimeoutError`, at once.
    """
    if _is_async(client):
        raise ConfigurationError(f"poll: an {_kind(client)} needs apoll")
    schedule = _Schedule(until, timeout, interval, method, "poll")
    while True:
        try:
            response = client.request(method, url, **request_kwargs)
        except APIError:
            raise
        except Exception as exc:
            if not _is_http_error(exc):
                raise
            raise _typed(exc) from exc
        if until(response):
            return response
        sleep(schedule.next_wait(response))


def _is_async(client: object) -> bool:
    # By its `request` method, not its class: httpx2's clients (and any look-alike) count too.
    return inspect.iscoroutinefunction(getattr(client, "request", None))


def _kind(client: object) -> str:
    cls = type(client)
    return f"{cls.__module__.partition('.')[0]}.{cls.__name__}"


async def apoll(
    client: httpx.AsyncClient,
    url: httpx.URL | str,
    *,
    until: Until,
    timeout: float,
    interval: Backoff = _DEFAULT_INTERVAL,
    method: str = "GET",
    **request_kwargs: Any,
) -> httpx.Response:
    """`poll` for an `httpx.AsyncClient`, under asyncio or trio alike; see `poll`."""
    if not _is_async(client):
        raise ConfigurationError(f"apoll: an {_kind(client)} needs poll")
    schedule = _Schedule(until, timeout, interval, method, "apoll")
    while True:
        try:
            response = await client.request(method, url, **request_kwargs)
        except APIError:
            raise
        except Exception as exc:
            if not _is_http_error(exc):
                raise
            raise _typed(exc) from exc
        if until(response):
            return response
        await async_sleep(schedule.next_wait(response))


def _is_http_error(exc: Exception) -> bool:
    # httpx's or httpx2's HTTPError, by name: an httpx2 client may be polled too.
    return any(
        cls.__name__ == "HTTPError" and cls.__module__ in ("httpx", "httpx2")
        for cls in type(exc).__mro__
    )


def _typed(exc: Any) -> APIError:
    if type(exc).__name__ == "HTTPStatusError":  # a response hook's raise_for_status()
        return from_response(exc.response)
    try:
        request: httpx.Request | None = exc.request
    except RuntimeError:  # httpx raises when an exception was built without its request
        request = None
    return error_for(Call(request, _SETTINGS), exc)  # type: ignore[arg-type]  # or None


# A poll's errors are built as a transport's with the default policies would build them.
_SETTINGS = Settings()


class _Schedule:
    """The decisions of one poll loop: its clock, its count, and when to stop."""

    __slots__ = ("_interval", "_previous", "_skipped", "_started", "_timeout", "polls")

    def __init__(
        self, until: Until, timeout: float, interval: Backoff, method: str, name: str
    ) -> None:
        # Checked at run time too: these come from callers who may not run a type checker.
        if not callable(until):
            raise ConfigurationError(f"{name}: until must be callable, got {until!r}")
        if not (is_number(timeout) and timeout > 0):
            raise ConfigurationError(f"{name}: timeout must be a number of seconds > 0")
        if not isinstance(interval, Backoff):
            raise ConfigurationError(f"{name}: interval must be a Backoff, got {interval!r}")
        if not (isinstance(method, str) and method):
            raise ConfigurationError(f"{name}: method must be a non-empty str")
        self._timeout = float(timeout)
        self._interval = interval
        self._started = _monotonic()
        # Waits that testing.no_wait() skipped: they still count, or a test would poll a
        # never-finishing job flat out until the real deadline.
        self._skipped = 0.0
        self.polls = 0
        # The wait before the last poll: decorrelated jitter grows from it.
        self._previous: float | None = None

    def elapsed(self) -> float:
        """Seconds since the first poll, skipped waits included."""
        return _monotonic() - self._started + self._skipped

    def next_wait(self, response: httpx.Response) -> float:
        """The wait before the next poll, after `response` did not satisfy `until`.

        Raises the typed error of an error status, or `PollTimeoutError` when the deadline
        comes before the next poll would.
        """
        self.polls += 1
        if response.status_code >= 400:
            raise from_response(response)
        hint = parse_retry_after(response.headers, time.time())
        if hint is not None:
            delay = min(hint, self._interval.max_delay)
        else:
            delay = self._interval.delay(self.polls - 1, random.random, self._previous)
        self._previous = delay
        elapsed = self.elapsed()
        # `>=` first: with a wait of 0 (`Retry-After: 0`) a spent deadline must still stop.
        if elapsed >= self._timeout or elapsed + delay > self._timeout:
            raise _timeout_error(response, self._timeout, elapsed, self.polls, hint)
        if waits_skipped():
            self._skipped += delay
        return delay


def _timeout_error(
    response: httpx.Response, timeout: float, elapsed: float, polls: int, retry_after: float | None
) -> PollTimeoutError:
    """The error for a job not done in time, carrying the last poll's answer."""
    request = response.request
    # Through a resilient transport, its policies: its redact_names, its request-id headers.
    call = Call(request, carried_settings(response), attempt=polls)
    common = error_common(call)
    status = response.status_code
    request_id = response.extensions.get("request_id") or find_header(
        response.headers, call.settings.request_ids.response_headers
    )
    job = resource_id(response.content, redactor_for(call))
    message = (
        f"{common['method']} {common['url']} not done within {timeout:g}s: {polls} "
        f"poll{'' if polls == 1 else 's'} over {elapsed:.1f}s, last status {status}"
        + (f", resource {job}" if job is not None else "")
    )
    return PollTimeoutError(
        message,
        resource_id=job,
        status_code=status,
        request_id=request_id,
        retry_after=retry_after,
        # A copy without the network stream and pool internals, as other errors keep.
        response=body_response(response, response.content, request),
        **common,
    )


def resource_id(body: bytes, redactor: Redactor) -> str | None:
    """The job's id in a JSON status document: the first of `_ID_FIELDS` at its top level
    that holds a non-empty string or an integer; None for any other body."""
    if not body or len(body) > _MAX_ID_BODY:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, Mapping):
        return None
    for name in _ID_FIELDS:
        value = document.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip():
            return redactor.text(value[:_MAX_ID_LENGTH])
    return None
