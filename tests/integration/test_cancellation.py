"""Cancelling an async request at any point: the cancellation goes through, nothing is left over.

Each scenario runs the request as a task, cancels it once the request is in the chosen state
(with an anyio cancel scope under asyncio and trio, and with asyncio's own `Task.cancel()`),
and then checks that the caller saw the backend's own cancellation exception
(not an `APIError`, not swallowed), that the task ended promptly, that no task outlived
it, and that the client's single pooled connection is free for a fresh request at once.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
import sniffio
import trio

from httpx_resilience import AsyncResilientTransport, RetryEvent

from .conftest import SCRIPTS, LiveServer, new_id

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

# How long a cancelled request may take to unwind, and a fresh request to be served.
UNWIND = 0.5
FRESH = 1.0


@pytest.fixture(params=["asyncio-scope", "asyncio-task", "trio-scope"])
def style(request: pytest.FixtureRequest) -> str:
    """How the request is cancelled: an anyio cancel scope (asyncio and trio), or asyncio's own
    `Task.cancel()`, which is delivered once only, so a wait that swallowed it would go on."""
    return str(request.param)


@pytest.fixture
def anyio_backend(style: str) -> str:
    """The event loop `style` runs on."""
    return style.split("-")[0]


@pytest.fixture
def stalled_url() -> Iterator[str]:
    """A URL whose TCP connect hangs: the listener's accept queue is full and never drained."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    filler = socket.create_connection(address, timeout=1)  # takes the one place in the queue
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.1)
    try:
        with pytest.raises(TimeoutError):
            probe.connect(address)  # the next connect hangs: the premise of the test
        yield f"http://{address[0]}:{address[1]}/never"
    finally:
        probe.close()
        filler.close()
        listener.close()


def _living_tasks() -> int:
    if sniffio.current_async_library() == "trio":
        return trio.lowlevel.current_statistics().tasks_living
    return len(asyncio.all_tasks())


def _is_cancellation(exc: BaseException | None) -> bool:
    """The backend's cancellation exception, alone or as every leaf of a group.

    trio's own TCP connect runs in a nursery, so a connect cancelled under trio ends in a
    `BaseExceptionGroup` of `Cancelled` (plain httpx too), which the cancel scope absorbs.
    """
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(cancelled)
        return rest is None
    return isinstance(exc, cancelled)


async def _check_no_task_lingers(baseline: int) -> None:
    with anyio.move_on_after(1):
        while _living_tasks() > baseline:
            await anyio.sleep(0.01)
    assert _living_tasks() == baseline


@asynccontextmanager
async def _client(
    events: list[RetryEvent] | None = None, buffer: int = 0
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with one pooled connection and real waits between attempts."""
    inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
    hook = events.append if events is not None else None
    transport = AsyncResilientTransport(inner, sleep=anyio.sleep, on_retry=hook, buffer=buffer)
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(5.0, pool=FRESH)
    ) as client:
        yield client


async def _cancel_when(
    style: str, call: Callable[[], Awaitable[object]], ready: Callable[[], bool]
) -> None:
    """Run `call` as a task and cancel it, in `style`, once `ready()` holds.

    Checks that `call` ended with the backend's cancellation exception, that the task ended
    within `UNWIND` seconds of the cancel, and that no task outlived it.
    """
    baseline = _living_tasks()
    seen: list[BaseException | None] = []

    async def run() -> None:
        try:
            await call()
        except Exception as exc:  # reported by the assertion below
            seen.append(exc)
        except BaseException as exc:
            seen.append(exc)
            raise
        else:
            seen.append(None)

    async def until_ready() -> None:
        while not ready() and not seen:
            await anyio.sleep(0.005)
        assert not seen, f"the request ended before it could be cancelled: {seen!r}"

    with anyio.fail_after(5):
        if style == "asyncio-task":
            task = asyncio.ensure_future(run())
            await until_ready()
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                await until_ready()
                cancelled_at = time.monotonic()
                group.cancel_scope.cancel()
    unwound = time.monotonic() - cancelled_at
    assert len(seen) == 1
    assert _is_cancellation(seen[0]), repr(seen[0])
    assert unwound < UNWIND, f"the cancelled request took {unwound:.2f}s to unwind"
    await _check_no_task_lingers(baseline)


async def _check_fresh_request(client: httpx.AsyncClient, server: LiveServer) -> None:
    """The one pooled connection is free: a new request is served within `FRESH` seconds."""
    sid = new_id()
    started = time.monotonic()
    with anyio.fail_after(FRESH):
        response = await client.get(server.url(f"/flaky/{sid}"))
    assert response.status_code == 200
    assert response.json()["seen"] == 1
    assert time.monotonic() - started < FRESH


def _after(seconds: float) -> Callable[[], bool]:
    start = time.monotonic()
    return lambda: time.monotonic() - start >= seconds


@pytest.mark.anyio
@pytest.mark.timeout(15)
async def test_cancel_while_connecting(style: str, server: LiveServer, stalled_url: str) -> None:
    """A request cancelled during its TCP connect unwinds at once and frees its pool slot."""
    async with _client() as client:
        await _cancel_when(style, lambda: client.get(stalled_url), _after(0.3))
        await _check_fresh_request(client, server)


@pytest.mark.anyio
@pytest.mark.timeout(15)
async def test_cancel_while_awaiting_response(style: str, server: LiveServer) -> None:
    """A request cancelled after it was sent, before the answer came, unwinds and frees its connection."""
    url = server.url("/slow", delay=1.5)

    def sent() -> bool:
        return any(r.path == "/slow" for r in server.requests())

    async with _client() as client:
        await _cancel_when(style, lambda: client.get(url), sent)
        await _check_fresh_request(client, server)
    assert server.connections() == 2  # the cancelled one was discarded, not reused


@pytest.mark.anyio
@pytest.mark.timeout(15)
async def test_cancel_during_retry_wait(style: str, server: LiveServer) -> None:
    """A request cancelled in a 5 s Retry-After wait unwinds at once and sends no second attempt."""
    sid = new_id()
    events: list[RetryEvent] = []

    def waiting() -> bool:
        return bool(events)

    async with _client(events) as client:
        url = server.url(f"/flaky/{sid}", fail=1, retry_after=5)
        await _cancel_when(style, lambda: client.get(url), waiting)
        assert [(e.attempt, e.delay) for e in events] == [(1, 5.0)]
        await _check_fresh_request(client, server)
    await anyio.sleep(0.1)
    assert SCRIPTS.get(sid).seen == 1


@pytest.mark.anyio
@pytest.mark.timeout(15)
async def test_cancel_while_reading_streamed_body(style: str, server: LiveServer) -> None:
    """A caller cancelled mid-iteration of a streamed 2xx body unwinds and frees its connection."""
    url = server.url("/stream-gated", chunks=80, size=65536)
    received: list[int] = []

    async def read() -> None:
        async with client.stream("GET", url) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                received.append(len(chunk))

    def reading() -> bool:
        return bool(received)

    try:
        async with _client() as client:
            await _cancel_when(style, read, reading)
            # Only what the server sent before it waited for the gate ever arrived.
            assert 0 < sum(received) <= 65536
            await _check_fresh_request(client, server)
    finally:
        server.state.gate.set()  # let the server's body generator finish


@pytest.mark.anyio
@pytest.mark.timeout(15)
async def test_cancel_while_the_transport_buffers_a_body(style: str, server: LiveServer) -> None:
    """A request cancelled while `buffer=` reads its 2xx body (the first chunk in, the rest
    held back) unwinds at once and frees its connection."""
    url = server.url("/stream-gated", chunks=80, size=65536)
    before = server.sent("stream-gated")

    def buffering() -> bool:
        return server.sent("stream-gated") > before

    try:
        async with _client(buffer=10_000_000) as client:
            await _cancel_when(style, lambda: client.get(url), buffering)
            await _check_fresh_request(client, server)
    finally:
        server.state.gate.set()
