"""Test doubles and the one-scenario-three-modes caller shared by the unit tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import httpx

from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    ErrorPolicy,
    IdempotencyPolicy,
    RequestIdPolicy,
    ResilientTransport,
    RetryEvent,
    RetryPolicy,
)
from httpx_resilience._events import ResilienceEvent
from httpx_resilience._settings import Settings
from httpx_resilience._state import CLEAR, Rules, Verdict

Caller = Callable[..., httpx.Response]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body served in chunks, sync or async, that records how far it was read and closed.

    `fail_after` raises `error` once that many chunks went out.
    """

    def __init__(
        self,
        chunks: list[bytes],
        *,
        fail_after: int | None = None,
        error: Exception | None = None,
        close_error: Exception | None = None,
    ) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.error = error
        self.close_error = close_error
        self.served = 0
        self.closed = False

    def _next(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.served >= self.fail_after:
                assert self.error is not None
                raise self.error
            self.served += 1
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        yield from self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._next():
            yield chunk

    def close(self) -> None:
        self.closed = True
        if self.close_error is not None:
            raise self.close_error

    async def aclose(self) -> None:
        self.close()


class FakeClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Inner(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An inner transport for both worlds: a handler returns a response or raises."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.closed = 0
        self.entered = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1

    def __enter__(self) -> Inner:
        self.entered += 1
        return self

    async def __aenter__(self) -> Inner:
        self.entered += 1
        return self


def _sync_call(
    inner: Any, method: str, url: str, policies: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    with httpx.Client(transport=ResilientTransport(inner, **policies)) as client:
        response = client.request(method, url, **kwargs)
        response.read()
        return response


async def _async_call(
    inner: Any, method: str, url: str, policies: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    async with httpx.AsyncClient(transport=AsyncResilientTransport(inner, **policies)) as client:
        response = await client.request(method, url, **kwargs)
        await response.aread()
        return response


def make_settings(**changes: Any) -> Settings:
    """The transport's default policies, with `changes`, as the flow sees them."""
    base = Settings(
        errors=ErrorPolicy(),
        request_ids=RequestIdPolicy(),
        retry=RetryPolicy(),
        idempotency=IdempotencyPolicy(),
    )
    return dataclasses.replace(base, **changes)


@dataclasses.dataclass(frozen=True)
class Flavour:
    """One package the transports serve: httpx, or its fork httpx2, with its transports."""

    name: str
    httpx: ModuleType
    ResilientTransport: Any
    AsyncResilientTransport: Any


def flavour(name: str) -> Flavour:
    """The `Flavour` called `name` ("httpx" or "httpx2")."""
    if name == "httpx":
        return Flavour(name, httpx, ResilientTransport, AsyncResilientTransport)
    import httpx2

    import httpx_resilience.httpx2 as package2

    return Flavour(name, httpx2, package2.ResilientTransport, package2.AsyncResilientTransport)


# --- The real sync driver against a script ---------------------------------------------------
#
# `drive` runs one request through a `ResilientTransport` whose inner transport plays scripted
# outcomes and whose host state, sleep, clock and randomness are fakes. What the driver did is
# recorded, in order, as "commands": the I/O it made and what it asked of the host's state.

# A response is returned, an exception raised; a callable is called with the clock first (to
# let an attempt take time) and its result played.
Outcome = httpx.Response | BaseException | Callable[[FakeClock], Any]


@dataclasses.dataclass
class Send:
    """The driver called the inner transport with `request`; what the request carried then."""

    request: httpx.Request
    headers: httpx.Headers = dataclasses.field(default_factory=httpx.Headers, compare=False)
    timeout: dict[str, float | None] | None = dataclasses.field(default=None, compare=False)
    at: float = dataclasses.field(default=0.0, compare=False)  # the fake clock's time


@dataclasses.dataclass
class ReadBody:
    """The driver started reading `response`'s body; `read` is how many bytes it took in all."""

    response: httpx.Response
    read: int = dataclasses.field(default=0, compare=False)


@dataclasses.dataclass
class Close:
    """The driver closed `response`'s body (its own stream, as it came from the transport)."""

    response: httpx.Response


@dataclasses.dataclass
class Sleep:
    """The driver waited `delay` seconds (the fake clock moved by as much)."""

    delay: float


@dataclasses.dataclass
class Before:
    """The driver asked the host's state before an attempt."""

    first: bool
    refund: bool = False
    # How long the attempt would wait for the throttle's token (not compared: infinite unless
    # the throttle is on).
    patience: float = dataclasses.field(default=0.0, compare=False)


@dataclasses.dataclass
class After:
    """The driver reported an attempt's outcome to the host's state."""

    failed: bool | None
    pause: float | None
    probe: bool
    throttled: bool | None = None
    took: float = 0.0


@dataclasses.dataclass
class Spend:
    """The driver asked the host's retry budget for a retry."""


@dataclasses.dataclass
class OnRetry:
    """The driver called the `on_retry` hook."""

    event: RetryEvent


@dataclasses.dataclass
class Run:
    """What one driven request produced: its response or error, and what the driver did."""

    clock: FakeClock
    result: Any = None
    commands: list[Any] = dataclasses.field(default_factory=list)
    retries: list[RetryEvent] = dataclasses.field(default_factory=list)
    events: list[ResilienceEvent] = dataclasses.field(default_factory=list)
    # Set once the driver returned or raised: what the test then does is not recorded.
    done: bool = False

    def note(self, command: Any) -> None:
        if not self.done:
            self.commands.append(command)

    @property
    def error(self) -> APIError:
        assert isinstance(self.result, APIError), f"expected an error, got {self.result!r}"
        return self.result

    @property
    def response(self) -> httpx.Response:
        assert isinstance(self.result, httpx.Response), f"expected a response, got {self.result!r}"
        return self.result

    @property
    def names(self) -> list[str]:
        return [type(command).__name__ for command in self.commands]

    def of(self, kind: type) -> list[Any]:
        return [command for command in self.commands if isinstance(command, kind)]

    @property
    def sent(self) -> list[Send]:
        return self.of(Send)

    @property
    def sleeps(self) -> list[float]:
        return [sleep.delay for sleep in self.of(Sleep)]

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


class _Overrun(BaseException):
    """The driver sent more than was scripted: a BaseException, so the driver cannot type it."""


class _Watched(httpx.SyncByteStream):
    """A scripted response's body, noting when the driver starts reading it and closes it."""

    def __init__(self, response: httpx.Response, stream: Any, run: Run) -> None:
        self._response = response
        self._stream = stream
        self._run = run

    def __iter__(self) -> Iterator[bytes]:
        read = ReadBody(self._response)
        self._run.note(read)
        for chunk in self._stream:
            if not self._run.done:
                read.read += len(chunk)
            yield chunk

    def close(self) -> None:
        self._run.note(Close(self._response))
        self._stream.close()


class _Script(httpx.BaseTransport):
    """The inner transport: plays the scripted outcomes, one a request."""

    def __init__(self, outcomes: Sequence[Outcome], run: Run) -> None:
        self._outcomes = list(outcomes)
        self._scripted = len(outcomes)
        self._run = run

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        run = self._run
        timeout = request.extensions.get("timeout")
        snapshot = dict(timeout) if timeout else None
        run.note(Send(request, httpx.Headers(request.headers), snapshot, run.clock()))
        if not self._outcomes:
            raise _Overrun(f"the driver sent more than the {self._scripted} scripted")
        outcome = self._outcomes.pop(0)
        if callable(outcome) and not isinstance(outcome, BaseException):
            outcome = outcome(run.clock)
        if isinstance(outcome, BaseException):
            raise outcome
        outcome.stream = _Watched(outcome, outcome.stream, run)
        return outcome


class _Store:
    """The host's state: notes each question, answers the next scripted reply or the default."""

    def __init__(
        self,
        run: Run,
        verdicts: Sequence[Verdict],
        changes: Sequence[str | None],
        spends: Sequence[bool],
    ) -> None:
        self._run = run
        self._verdicts = iter(verdicts)
        self._changes = iter(changes)
        self._spends = iter(spends)

    def before(
        self,
        host: str,
        rules: Rules,
        first: bool,
        refund: bool = False,
        patience: float = 0.0,
        ahead: float = 1.0,
    ) -> Verdict:
        self._run.note(Before(first, refund, patience))
        return next(self._verdicts, CLEAR)

    def after(
        self,
        host: str,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None = None,
        took: float = 0.0,
    ) -> str | None:
        self._run.note(After(failed, pause, probe, throttled, took))
        return next(self._changes, None)

    def spend(self, host: str, rules: Rules) -> bool:
        self._run.note(Spend())
        return next(self._spends, True)


def streamed(
    status: int, content: bytes | httpx.SyncByteStream = b"", headers: Any = None
) -> httpx.Response:
    """A response as an inner transport returns one: its body still to be read off `stream`."""
    stream = httpx.ByteStream(content) if isinstance(content, bytes) else content
    return httpx.Response(status, headers=headers, stream=stream)


def drive(
    outcomes: Sequence[Outcome],
    request: httpx.Request | None = None,
    settings: Settings | None = None,
    *,
    clock: FakeClock | None = None,
    verdicts: Sequence[Verdict] = (),
    changes: Sequence[str | None] = (),
    spends: Sequence[bool] = (),
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_event: Callable[[ResilienceEvent], None] | None = None,
) -> Run:
    """Send `request` (a GET of api.example.com by default) through the real sync driver.

    Its inner transport plays `outcomes`; its host state answers `Before` with the next of
    `verdicts` (CLEAR when none is left), `After` with the next of `changes` (None) and `Spend`
    with the next of `spends` (True). Its sleep moves the fake clock; its random() is 0.5.
    """
    if request is None:
        request = httpx.Request("GET", "https://api.example.com/v1/x")
    run = Run(clock if clock is not None else FakeClock())

    def sleep(delay: float) -> None:
        run.note(Sleep(delay))
        run.clock.advance(delay)

    def retried(event: RetryEvent) -> None:
        run.note(OnRetry(event))
        run.retries.append(event)
        if on_retry is not None:
            on_retry(event)

    def listen(event: ResilienceEvent) -> None:
        run.events.append(event)
        if on_event is not None:
            on_event(event)

    transport = ResilientTransport(
        _Script(outcomes, run), sleep=sleep, on_retry=retried, on_event=listen
    )
    transport._settings = settings if settings is not None else make_settings()
    transport._clock = run.clock
    transport._random = lambda: 0.5
    transport._store = _Store(run, verdicts, changes, spends)
    try:
        run.result = transport.handle_request(request)
    except _Overrun as overrun:
        raise AssertionError(str(overrun)) from None
    except AssertionError:
        raise
    except Exception as exc:
        run.result = exc
    finally:
        run.done = True
    return run


Points = dict[str, list[tuple[float, dict[str, Any]]]]


def points(reader: Any) -> Points:
    """Each instrument's data points in an OpenTelemetry in-memory reader: (value, attributes),
    in a stable order."""
    found: Points = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                listed = [(p.value, dict(p.attributes or {})) for p in metric.data.data_points]
                found[metric.name] = sorted(listed, key=repr)
    return found


def run_fresh(code: str) -> list[str]:
    """Run `code` in a fresh interpreter that imports this checkout's package; its output's
    words (it must exit 0)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
