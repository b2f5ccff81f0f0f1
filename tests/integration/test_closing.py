"""Every response the transport does not hand on is closed when its attempt ends, whatever ends it.

The transports are stopped at each place an attempt waits — asking the host's state before it,
reporting its outcome after it, reading an error body, spending the retry budget, sleeping before
the next attempt — by cancellation (asyncio and trio) or by a `BaseException` (sync). Each time,
every response the real inner transport returned must be closed, and the client's one pooled
connection must be free for a fresh request at once. A raising `classify` hook is checked too.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import nullcontext
from typing import Any

import anyio
import httpx
import pytest

from _support import flavour
from httpx_resilience import (
    AsyncResilientTransport,
    CircuitBreaker,
    ConfigurationError,
    ErrorPolicy,
    MemoryState,
    RetryPolicy,
)
from httpx_resilience._state import Rules, Verdict

from ._support import Client, Runner
from .conftest import LiveServer, new_id
from .test_cancellation import _cancel_when

FRESH = 1.0
# A breaker that never opens in these tests: it only makes the transport report each outcome.
BREAKER = CircuitBreaker(failure_ratio=1.0, min_calls=1000)
# Each (place, n): stop at the n-th time the request reaches `place`: every await of an
# attempt in the driver. The request is paced first ("pace": the wait for the host's window),
# then meets a 500 with a large body (read up to the cap, closed, retried), then a 200.
PLACES = [
    ("before", 1),
    ("pace", 1),
    ("send", 1),
    ("after", 1),
    ("read", 1),
    ("spend", 1),
    ("sleep", 1),
    ("before", 2),
    ("send", 2),
    ("after", 2),
]


# How an attempt is stopped, in each mode: by raising (sync), or by cancelling it in one of
# `test_cancellation`'s styles.
STOPS = [
    ("sync", "sync-raise"),
    ("asyncio", "asyncio-scope"),
    ("asyncio", "asyncio-task"),
    ("trio", "trio-scope"),
]


@pytest.fixture
def run(mode: str) -> Runner:
    """Every mode, through httpx alone: `Tracked` wraps httpx's own transports."""
    return Runner(mode, flavour("httpx"))


class Stop(BaseException):
    """What the sync transport meets at the chosen place: like a KeyboardInterrupt there."""


class Places:
    """Counts the places a request reaches, and stops it at the chosen one."""

    def __init__(self, place: str, nth: int) -> None:
        self.target = (place, nth)
        self.seen: dict[str, int] = {}
        self.reached = False

    def _hit(self, place: str) -> bool:
        self.seen[place] = self.seen.get(place, 0) + 1
        hit = (place, self.seen[place]) == self.target
        self.reached = self.reached or hit
        return hit

    def sync(self, place: str) -> None:
        if self._hit(place):
            raise Stop(place)

    async def async_(self, place: str) -> None:
        if self._hit(place):
            await anyio.sleep_forever()  # until cancelled
        await anyio.lowlevel.checkpoint()

    def _waiting(self) -> str:
        # Before any attempt was sent, a wait is the pace for the host's window.
        return "pace" if not self.seen.get("send") else "sleep"

    def sleep(self, run: Runner) -> Callable[[float], Any]:
        """A transport's `sleep=` of `run`'s mode that only passes the `pace` or `sleep` place."""

        def sync(delay: float) -> None:
            self.sync(self._waiting())

        async def asynchronous(delay: float) -> None:
            await self.async_(self._waiting())

        return run.pick(sync, asynchronous)


class Tracked(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A real httpx transport with one pooled connection, its responses' closing recorded.

    The n-th attempt goes to the n-th of `routes` when given (the last for all after it). Error
    bodies reach the `read` place after their first chunk.
    """

    def __init__(self, places: Places, sync: bool, routes: tuple[str, ...] = ()) -> None:
        limits = httpx.Limits(max_connections=1)
        self.places = places
        self.routes = list(routes)
        self.inner: Any = (
            httpx.HTTPTransport(limits=limits) if sync else httpx.AsyncHTTPTransport(limits=limits)
        )
        self.responses: list[httpx.Response] = []
        self.closed: list[bool] = []

    def _track(self, response: httpx.Response) -> httpx.Response:
        index = len(self.closed)
        self.closed.append(False)
        self.responses.append(response)
        upstream: Any = response.stream
        places = self.places
        closed = self.closed
        failing = response.status_code >= 400

        class SyncStream(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for number, chunk in enumerate(upstream):
                    if failing and number == 0:
                        places.sync("read")
                    yield chunk

            def close(self) -> None:
                closed[index] = True
                upstream.close()

        class AsyncStream(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                number = 0
                async for chunk in upstream:
                    if failing and number == 0:
                        await places.async_("read")
                    number += 1
                    yield chunk

            async def aclose(self) -> None:
                closed[index] = True
                await upstream.aclose()

        is_async = isinstance(self.inner, httpx.AsyncHTTPTransport)
        response.stream = AsyncStream() if is_async else SyncStream()
        return response

    def _routed(self, request: httpx.Request) -> httpx.Request:
        if not self.routes:
            return request
        url = self.routes.pop(0) if len(self.routes) > 1 else self.routes[0]
        return httpx.Request(request.method, url, headers=request.headers)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.places.sync("send")
        return self._track(self.inner.handle_request(self._routed(request)))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.places.async_("send")
        return self._track(await self.inner.handle_async_request(self._routed(request)))

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


class SlowState:
    """A `MemoryState` whose every call first passes the test's `Places` (a slow Redis)."""

    def __init__(self, places: Places) -> None:
        self.memory = MemoryState()
        self.places = places

    def sync_store(self) -> Any:
        store, places = self.memory.sync_store(), self.places

        class Store:
            def before(
                self, host: str, rules: Rules, first: bool, refund: bool = False, *rest: Any
            ) -> Verdict:
                places.sync("before")
                return _paced(store.before(host, rules, first, refund, *rest), first)

            def after(self, host: str, rules: Rules, *args: Any) -> str | None:
                places.sync("after")
                return store.after(host, rules, *args)

            def spend(self, host: str, rules: Rules) -> bool:
                places.sync("spend")
                return store.spend(host, rules)

        return Store()

    def async_store(self) -> Any:
        store, places = self.memory.async_store(), self.places

        class Store:
            async def before(
                self, host: str, rules: Rules, first: bool, refund: bool = False, *rest: Any
            ) -> Verdict:
                await places.async_("before")
                return _paced(await store.before(host, rules, first, refund, *rest), first)

            async def after(self, host: str, rules: Rules, *args: Any) -> str | None:
                await places.async_("after")
                return await store.after(host, rules, *args)

            async def spend(self, host: str, rules: Rules) -> bool:
                await places.async_("spend")
                return await store.spend(host, rules)

        return Store()


def _paced(verdict: Verdict, first: bool) -> Verdict:
    """The state's verdict, with the host's window to wait for before the first attempt."""
    return verdict._replace(pace=0.01) if first else verdict


def _routes(server: LiveServer) -> tuple[str, ...]:
    """A 500 with a 1 MiB body, then a 200."""
    return (server.url("/big-error", size=1 << 20), server.url(f"/flaky/{new_id()}"))


def _check_all_closed(inner: Tracked, place: str = "", nth: int = 0) -> None:
    gc.collect()
    # Stopped before its first attempt was sent, a request has had no response; any other, one
    # at least.
    unsent = {("before", 1), ("pace", 1), ("send", 1)}
    assert bool(inner.responses) is ((place, nth) not in unsent)
    assert all(inner.closed), f"responses left open: {inner.closed}"


async def _fresh_request(client: Client, server: LiveServer) -> None:
    """The one pooled connection is free: a new request is served within `FRESH` seconds."""
    started = time.monotonic()
    # The async modes also bound the wait itself; the sync one has the pool timeout (FRESH).
    with anyio.fail_after(FRESH) if client.is_async else nullcontext():
        response = await client.get(server.url(f"/flaky/{new_id()}"))
    assert response.status_code == 200
    assert time.monotonic() - started < FRESH


def _kwargs(places: Places, **changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "retry": RetryPolicy(max_attempts=2),
        "errors": ErrorPolicy(max_body_bytes=4096),
        "breaker": BREAKER,
        "state": SlowState(places),
    }
    kwargs.update(changes)
    return kwargs


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("mode", "style"), STOPS, ids=[style for _, style in STOPS])
@pytest.mark.parametrize(("place", "nth"), PLACES, ids=[f"{p}-{n}" for p, n in PLACES])
def test_attempt_stopped_anywhere_closes_its_response(
    run: Runner, style: str, server: LiveServer, place: str, nth: int
) -> None:
    """Stopped at any place of an attempt, by a `BaseException` (sync) or cancelled (asyncio
    scope and task, trio): no response is left open, and the one pooled connection is free for
    a fresh request at once."""
    places = Places(place, nth)
    inner = Tracked(places, sync=not run.is_async, routes=_routes(server))

    async def scenario() -> None:
        transport = run.transport(inner, sleep=places.sleep(run), **_kwargs(places))
        async with run.client(transport, timeout=httpx.Timeout(5.0, pool=FRESH)) as client:
            url = server.url("/routed")
            if style == "sync-raise":
                with pytest.raises(Stop):
                    await client.get(url)
            else:
                await _cancel_when(style, lambda: client.get(url), lambda: places.reached)
            inner.routes = []
            assert places.reached
            _check_all_closed(inner, place, nth)
            await _fresh_request(client, server)

    run(scenario)


def _raising_classify(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise RuntimeError("the hook has a bug with error bodies")


@pytest.mark.timeout(20)
def test_raising_classify_closes_a_large_error_body(run: Runner, server: LiveServer) -> None:
    """A `classify` hook that raises on an error body larger than `max_body_bytes`: the typed
    `ConfigurationError` is raised and the response closed, its connection free again."""
    places = Places("none", 0)
    inner = Tracked(places, sync=not run.is_async)

    async def scenario() -> None:
        errors = ErrorPolicy(max_body_bytes=1024, classify=_raising_classify)
        transport = run.transport(inner, errors=errors)
        async with run.client(transport, timeout=httpx.Timeout(5.0, pool=FRESH)) as client:
            with pytest.raises(ConfigurationError):
                await client.get(server.url("/big-error", size=1 << 20))
            _check_all_closed(inner)
            await _fresh_request(client, server)

    run(scenario)


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_cancelled_while_redis_is_slow_closes_the_response(server: LiveServer) -> None:
    """A real `RedisState` that stops answering (CLIENT PAUSE) while the attempt's outcome is
    reported, and the caller's timeout fires: the response is closed and the one pooled
    connection is free once Redis answers again."""
    import asyncio

    import redis
    import redis.asyncio as aredis

    from _redis_server import redis_server
    from httpx_resilience import RedisState

    with redis_server() as running:
        admin = redis.Redis(host="127.0.0.1", port=running.port, socket_timeout=5)
        places = Places("none", 0)

        class PausesRedis(Tracked):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                response = await super().handle_async_request(request)
                admin.execute_command("CLIENT", "PAUSE", "5000", "ALL")
                return response

        inner = PausesRedis(places, sync=False)
        client_of_state = aredis.Redis(host="127.0.0.1", port=running.port, socket_timeout=10)
        state = RedisState(client_of_state, prefix=f"closing-{new_id()}")
        transport = AsyncResilientTransport(inner, breaker=BREAKER, state=state)
        timeout = httpx.Timeout(5.0, pool=FRESH)
        try:
            async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.get(server.url(f"/flaky/{new_id()}")), 0.5)
                admin.execute_command("CLIENT", "UNPAUSE")
                _check_all_closed(inner, "after", 1)
                inner.handle_async_request = Tracked.handle_async_request.__get__(inner)  # type: ignore[method-assign]
                await _fresh_request(Client(client, is_async=True), server)
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
            await client_of_state.aclose()
            admin.close()
