"""Retry budget, circuit breaker and pacing against the real uvicorn server, sync and async.

What is counted here is what the server saw: its recorded requests (or, for the outages, a
bare counting app of this module), and, through a counting TCP proxy in front of the server,
the connections opened to it. Each scenario runs in every mode ("sync", "asyncio", "trio")
through httpx and httpx2 alike (`hx`), except the long outage runs (see `AMPLIFICATION`).
Waits go through an injected recorder, except the breaker's `open_for`, which is real and
short.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from starlette.types import Receive, Scope, Send

from _support import FakeClock, Flavour, flavour
from httpx_resilience import (
    APIError,
    CircuitBreaker,
    CircuitOpenError,
    MemoryState,
    RateLimitError,
    ResilienceEvent,
    RetryBudget,
    RetryPolicy,
    ServiceUnavailableError,
)

from ._serve import bound_socket, serve
from .conftest import LiveServer

pytestmark = pytest.mark.timeout(30)

N = 300
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


# --- Driving one transport in any mode -----------------------------------------------------


class Client:
    """Requests through a resilient transport of `hx` in `mode`, from sync code.

    Each `many` call makes a fresh transport (so an empty connection pool) with the same
    arguments, in a fresh event loop of the mode when async; a shared `state=` carries the
    counts from one call to the next.
    """

    def __init__(self, hx: Flavour, mode: str, **kwargs: Any) -> None:
        self.hx = hx
        self.mode = mode
        self.kwargs = kwargs

    def many(self, urls: list[str]) -> list[Any]:
        """GET each URL in turn on one client; each response (read) or `APIError`."""
        if self.mode == "sync":
            transport = self.hx.ResilientTransport(**self.kwargs)
            outcomes: list[Any] = []
            with self.hx.httpx.Client(transport=transport) as client:
                for url in urls:
                    try:
                        response = client.get(url)
                        response.read()
                        outcomes.append(response)
                    except APIError as exc:
                        outcomes.append(exc)
            return outcomes

        async def go() -> list[Any]:
            transport = self.hx.AsyncResilientTransport(**self.kwargs)
            outcomes: list[Any] = []
            async with self.hx.httpx.AsyncClient(transport=transport) as client:
                for url in urls:
                    try:
                        response = await client.get(url)
                        await response.aread()
                        outcomes.append(response)
                    except APIError as exc:
                        outcomes.append(exc)
            return outcomes

        result: list[Any] = anyio.run(go, backend=self.mode)
        return result


class Sleeps:
    """An injected `sleep` for the mode: records each wait instead of waiting."""

    def __init__(self, mode: str) -> None:
        self.delays: list[float] = []
        self.sleep: Callable[[float], Any]
        if mode == "sync":
            self.sleep = self.delays.append
        else:

            async def record(delay: float) -> None:
                self.delays.append(delay)
                await anyio.lowlevel.checkpoint()

            self.sleep = record


def seen(server: LiveServer, tag: str) -> int:
    """How many requests carrying `run=<tag>` reached the server."""
    return sum(1 for r in server.requests() if f"run={tag}" in r.query)


def tag() -> str:
    return uuid.uuid4().hex[:12]


# --- A TCP proxy that counts the connections made through it -------------------------------


class CountingProxy:
    """Forwards every connection to the live server, counting them as they are accepted."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = bound_socket()
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.accepted = 0
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, name="counting-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            for sock in (downstream, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [downstream, upstream]
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def connections(self) -> int:
        with self._lock:
            return self.accepted

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[CountingProxy]:
    port = int(server.base_url.rsplit(":", 1)[1])
    running = CountingProxy(port)
    yield running
    running.close()


# --- The retry budget: an outage's load, as the server counts it ---------------------------


class Outage:
    """A bare ASGI app in a full outage: every request to `/<run>` is counted and answered
    503. Bare, so that the 3 x 300 requests of a scenario without a budget stay quick."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.base_url = ""

    def seen(self, run: str) -> int:
        with self._lock:
            return self._counts[run]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            self._counts[scope["path"].strip("/")] += 1
        body = b'{"error": {"message": "down for maintenance"}}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def down() -> Iterator[Outage]:
    app = Outage()
    with serve(app, "outage") as port:
        app.base_url = f"http://127.0.0.1:{port}"
        yield app


# The amplification runs are the slow part of this module (up to 900 requests each): the
# default budget through both packages, sync and under asyncio; no budget through two of
# those four, a small reserve through one. trio drives the same flow and state, and is covered by every other test
# here.
AMPLIFICATION = [
    pytest.param("httpx", "sync", id="httpx-sync"),
    pytest.param("httpx", "asyncio", id="httpx-asyncio"),
    pytest.param("httpx2", "sync", id="httpx2-sync"),
    pytest.param("httpx2", "asyncio", id="httpx2-asyncio"),
]


def outage(package: str, mode: str, down: Outage, budget: RetryBudget | None) -> int:
    """N GETs on one transport meeting a full 503 outage; the attempts the server saw."""
    run = tag()
    client = Client(flavour(package), mode, budget=budget)
    outcomes = client.many([f"{down.base_url}/{run}"] * N)
    assert all(type(o) is ServiceUnavailableError for o in outcomes)
    return down.seen(run)


@pytest.mark.parametrize(("package", "mode"), AMPLIFICATION)
def test_default_budget_bounds_an_outage(package: str, mode: str, down: Outage) -> None:
    """The default budget (10 % of a 10 s window plus a reserve of 100 retries): N=300 GETs
    meeting a full outage cost the server at most N + 100 + 0.1 N attempts (1.43 N: at this
    volume the reserve dominates), against 3 N without it."""
    budget = RetryBudget()
    count = outage(package, mode, down, budget)
    assert N + budget.reserve <= count <= N + budget.reserve + budget.ratio * N


@pytest.mark.parametrize(("package", "mode"), AMPLIFICATION[:1])
def test_budget_keeps_an_outage_under_1_25_n(package: str, mode: str, down: Outage) -> None:
    """A budget whose reserve is small beside the traffic (10 retries a window) keeps the
    server's load in a full outage of N=300 requests under 1.25 N."""
    count = outage(package, mode, down, RetryBudget(min_per_second=1.0))
    assert N < count <= 1.25 * N


@pytest.mark.parametrize(("package", "mode"), AMPLIFICATION[1:3])
def test_no_budget_triples_an_outage(package: str, mode: str, down: Outage) -> None:
    """`budget=None`: every one of N=300 GETs is tried 3 times in a full outage."""
    assert outage(package, mode, down, None) == 3 * N


def test_refused_connects_do_not_spend(
    hx: Flavour, mode: str, server: LiveServer, refused_url: str
) -> None:
    """A budget of nothing: a host that refuses connections is still tried `max_attempts`
    times per request (the request never left), for request after request; a 503 that did
    reach a server is not retried."""
    run = tag()
    retries: list[int] = []
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    outcomes = Client(
        hx, mode, budget=budget, on_retry=lambda event: retries.append(event.attempt)
    ).many([refused_url] * 3 + [server.url("/status/503", run=run)])
    assert [o.attempts for o in outcomes] == [3, 3, 3, 1]
    assert [h.refused for o in outcomes[:3] for h in o.history] == [None] * 9
    assert [h.refused for h in outcomes[3].history] == ["retry_budget"]
    assert retries == [1, 2] * 3
    assert seen(server, run) == 1


# --- The circuit breaker: no connection, no request while open -----------------------------

# The circuit's clock is a fake one the tests move: on a loaded machine a real open_for could
# run out in the middle of a burst of requests and let a probe through early.
BREAKER = CircuitBreaker(failure_ratio=0.5, min_calls=5, open_for=5.0)


def wait_out(err: APIError, clock: FakeClock) -> None:
    """Move the circuit's clock until the circuit that raised `err` lets its probe go."""
    assert err.retry_after is not None
    assert 0 < err.retry_after <= BREAKER.open_for
    clock.advance(err.retry_after + 0.05)


def test_open_circuit_reaches_neither_socket_nor_server(
    hx: Flavour, mode: str, server: LiveServer, proxy: CountingProxy
) -> None:
    """5 failures open the circuit; then 20 requests (on the same client, and on a new one
    sharing the state, with no pooled connection) fail at once with `CircuitOpenError`: not
    one connection opened, not one request seen. After `open_for`, one probe reaches the
    server; its 200 closes the circuit."""
    run = tag()
    failing = f"{proxy.base_url}/status/503?run={run}"
    working = f"{proxy.base_url}/status/200?run={run}"
    clock = FakeClock()
    state = MemoryState(clock=clock)
    kwargs: dict[str, Any] = {
        "breaker": BREAKER,
        "budget": None,
        "retry": ONE_ATTEMPT,
        "state": state,
    }
    client = Client(hx, mode, **kwargs)
    first = client.many([failing] * 5 + [working] * 10)
    assert [type(o) for o in first] == [ServiceUnavailableError] * 5 + [CircuitOpenError] * 10
    assert seen(server, run) == 5
    connections = proxy.connections()
    assert connections >= 1

    again = client.many([working] * 10)
    assert [type(o) for o in again] == [CircuitOpenError] * 10
    assert all(o.attempts == 0 and o.history == () for o in again)
    assert seen(server, run) == 5
    assert proxy.connections() == connections

    wait_out(again[-1], clock)
    probe = client.many([working, working, working])
    assert [o.status_code for o in probe] == [200, 200, 200]
    assert seen(server, run) == 8
    assert proxy.connections() == connections + 1


def test_failed_probe_reopens(
    hx: Flavour, mode: str, server: LiveServer, proxy: CountingProxy
) -> None:
    """A probe that meets a 503 opens the circuit again for `open_for`: the next request is
    stopped before the network; after another `open_for` a probe goes again."""
    run = tag()
    failing = f"{proxy.base_url}/status/503?run={run}"
    working = f"{proxy.base_url}/status/200?run={run}"
    events: list[ResilienceEvent] = []
    clock = FakeClock()
    client = Client(
        hx,
        mode,
        breaker=BREAKER,
        budget=None,
        retry=ONE_ATTEMPT,
        state=MemoryState(clock=clock),
        on_event=events.append,
    )
    opened = client.many([failing] * 6)
    assert isinstance(opened[-1], CircuitOpenError)
    wait_out(opened[-1], clock)
    reopened = client.many([failing, working])
    assert type(reopened[0]) is ServiceUnavailableError
    assert type(reopened[1]) is CircuitOpenError
    assert seen(server, run) == 6
    connections = proxy.connections()
    wait_out(reopened[1], clock)
    closed = client.many([working])
    assert closed[0].status_code == 200
    assert seen(server, run) == 7
    assert proxy.connections() == connections + 1
    changes = [
        e.kind for e in events if e.kind.startswith("circuit_") and e.kind != "circuit_rejected"
    ]
    assert changes == [
        "circuit_open",
        "circuit_half_open",
        "circuit_open",
        "circuit_half_open",
        "circuit_closed",
    ]
    assert {e.host for e in events} == {proxy.base_url}


def test_circuit_opening_mid_retries(hx: Flavour, mode: str, server: LiveServer) -> None:
    """A request whose own 503s open the circuit: its next retry is stopped, the attempts
    before in the error's history; the server saw exactly those."""
    run = tag()
    breaker = CircuitBreaker(failure_ratio=0.5, min_calls=3, open_for=5.0)
    client = Client(
        hx,
        mode,
        breaker=breaker,
        budget=None,
        retry=RetryPolicy(max_attempts=6),
        state=MemoryState(),
    )
    (outcome,) = client.many([server.url("/status/503", run=run)])
    assert type(outcome) is CircuitOpenError
    assert outcome.attempts == 3
    assert [h.status_code for h in outcome.history] == [503, 503, 503]
    assert seen(server, run) == 3


# --- Pacing against real rate-limit headers -------------------------------------------------

DIALECTS = [
    pytest.param(429, {"retry-after": "4"}, 4.0, id="429-retry-after"),
    pytest.param(
        200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}, 3.0, id="x-ratelimit"
    ),
    pytest.param(
        200,
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"},
        2.0,
        id="openai",
    ),
    pytest.param(200, {"ratelimit": '"default";r=0;t=5'}, 5.0, id="ietf"),
]


@pytest.mark.parametrize(("status", "headers", "wait"), DIALECTS)
def test_pacing_waits_for_the_servers_window(
    hx: Flavour,
    mode: str,
    server: LiveServer,
    status: int,
    headers: dict[str, str],
    wait: float,
) -> None:
    """A real response saying the window is spent makes the next request to that host wait
    (through the injected sleep) for what is left of it; then it reaches the server."""
    run = tag()
    sleeps = Sleeps(mode)
    spent = server.url(f"/status/{status}", run=run, **headers)
    plain = server.url("/status/200", run=run)
    client = Client(hx, mode, pacing=True, retry=ONE_ATTEMPT, sleep=sleeps.sleep)
    outcomes = client.many([spent, plain])
    if status == 429:
        assert type(outcomes[0]) is RateLimitError
    else:
        assert outcomes[0].status_code == 200
    assert outcomes[1].status_code == 200
    assert seen(server, run) == 2
    (delay,) = sleeps.delays
    assert wait - 1.0 < delay <= wait


def test_pacing_without_the_flag_or_past_max_retry_after(
    hx: Flavour, mode: str, server: LiveServer
) -> None:
    """Without `pacing=True` nothing waits; with it, a window reopening later than
    `max_retry_after` is not waited for either. Both requests reach the server at once."""
    run = tag()
    spent = server.url("/status/429", run=run, **{"retry-after": "30"})
    plain = server.url("/status/200", run=run)
    sleeps = Sleeps(mode)
    Client(hx, mode, retry=ONE_ATTEMPT, sleep=sleeps.sleep).many([spent, plain])
    short = ONE_ATTEMPT.replace(max_retry_after=10.0)
    Client(hx, mode, pacing=True, retry=short, sleep=sleeps.sleep).many([spent, plain])
    assert sleeps.delays == []
    assert seen(server, run) == 4
    # Control: the same server answer, within max_retry_after, is waited for.
    Client(hx, mode, pacing=True, retry=ONE_ATTEMPT, sleep=sleeps.sleep).many([spent, plain])
    assert len(sleeps.delays) == 1
    assert 29.0 < sleeps.delays[0] <= 30.0
