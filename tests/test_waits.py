"""The waits between attempts: the default sleeps, `no_wait()`, injected sleeps and cancellation."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import anyio
import httpx
import pytest

from _support import Chunks, Inner
from httpx_resilience import (
    AsyncResilientTransport,
    Backoff,
    ResilientTransport,
    RetryEvent,
    RetryPolicy,
    _waits,
)
from httpx_resilience.testing import no_wait

URL = "https://api.example.com/v1/thing"
# Without jitter the two waits of 503, 503, 200 are exactly 0.5 and 1.0.
EXACT = RetryPolicy(backoff=Backoff(jitter="none"))


def scripted(*responses: int | httpx.Response) -> Inner:
    """An inner transport answering with these statuses (or responses), in order."""
    queue = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(queue)
        return item if isinstance(item, httpx.Response) else httpx.Response(item)

    return Inner(handler)


@pytest.fixture
def waits_on() -> Iterator[None]:
    """Step out of the suite-wide `no_wait()` (tests/conftest.py) for one test, and back in after it."""
    assert _waits.waits_skipped()
    _waits.set_no_wait(False)
    try:
        yield
    finally:
        _waits.set_no_wait(True)


@pytest.fixture
def time_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace time.sleep with a recorder of its arguments."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


@pytest.fixture
def anyio_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace anyio.sleep with a recorder that still yields to the event loop once."""
    calls: list[float] = []

    async def record(delay: float) -> None:
        calls.append(delay)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(anyio, "sleep", record)
    return calls


# --- The default sync sleep and no_wait() --------------------------------------------------


@pytest.mark.usefixtures("waits_on")
def test_default_sleep_is_time_sleep(time_sleeps: list[float]) -> None:
    """Outside no_wait() the default sync sleep calls time.sleep with the delay."""
    assert not _waits.waits_skipped()
    _waits.sleep(2.5)
    assert time_sleeps == [2.5]


@pytest.mark.usefixtures("waits_on")
def test_no_wait_skips_the_default_sync_sleep(time_sleeps: list[float]) -> None:
    """Inside no_wait() the default sync sleep returns at once without calling time.sleep."""
    with no_wait():
        assert _waits.waits_skipped()
        _waits.sleep(2.5)
    assert time_sleeps == []


@pytest.mark.usefixtures("waits_on")
def test_no_wait_nests(time_sleeps: list[float]) -> None:
    """Leaving an inner no_wait() keeps waits skipped until the outer one is left too."""
    with no_wait():
        with no_wait():
            assert _waits.waits_skipped()
        assert _waits.waits_skipped()
        _waits.sleep(1.0)
    assert not _waits.waits_skipped()
    _waits.sleep(2.0)
    assert time_sleeps == [2.0]


@pytest.mark.usefixtures("waits_on")
def test_no_wait_is_left_when_the_block_raises() -> None:
    """An exception inside no_wait() still turns the skipping off again."""
    with pytest.raises(RuntimeError), no_wait():
        raise RuntimeError("boom")
    assert not _waits.waits_skipped()


@pytest.fixture
def fast_thread_switches() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so a race shows within a short test."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def run_threads(work: Callable[[], None], count: int = 8) -> None:
    """Run `work` in `count` threads at once; fail if one raised or did not end in time."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def target() -> None:
        try:
            start.wait(timeout=10)
            work()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread never finished"
    assert not errors, errors


@pytest.mark.usefixtures("waits_on", "fast_thread_switches")
def test_no_wait_from_many_threads_at_once() -> None:
    """Threads entering and leaving no_wait() at once: each sees waits skipped inside, and the depth returns to 0."""
    outside: list[bool] = []

    def work() -> None:
        for _ in range(50_000):
            with no_wait():
                if not _waits.waits_skipped():
                    outside.append(True)

    run_threads(work)
    assert not outside, f"{len(outside)} times a thread inside no_wait() saw waits on"
    assert _waits._skip_depth == 0
    assert not _waits.waits_skipped()


# --- Through the sync transport ----------------------------------------------------------------


def test_injected_sleep_is_called_even_inside_no_wait(time_sleeps: list[float]) -> None:
    """An injected sync sleep gets both delays of 503, 503, 200 although no_wait() is active."""
    assert _waits.waits_skipped()
    inner = scripted(503, 503, 200)
    delays: list[float] = []
    transport = ResilientTransport(inner, retry=EXACT, sleep=delays.append)
    with httpx.Client(transport=transport) as client:
        assert client.get(URL).status_code == 200
    assert delays == [0.5, 1.0]
    assert len(inner.requests) == 3
    assert time_sleeps == []


def test_no_wait_skips_the_transports_default_sleep_but_reports_delays(
    time_sleeps: list[float],
) -> None:
    """Under no_wait() the default sleep never calls time.sleep, while on_retry still hears the delays."""
    events: list[RetryEvent] = []
    transport = ResilientTransport(scripted(503, 503, 200), retry=EXACT, on_retry=events.append)
    with httpx.Client(transport=transport) as client:
        assert client.get(URL).status_code == 200
    assert time_sleeps == []
    assert [e.delay for e in events] == [0.5, 1.0]


@pytest.mark.usefixtures("waits_on")
def test_transports_default_sleep_is_time_sleep(time_sleeps: list[float]) -> None:
    """Outside no_wait() the sync transport waits with time.sleep for each delay."""
    transport = ResilientTransport(scripted(503, 503, 200), retry=EXACT)
    with httpx.Client(transport=transport) as client:
        assert client.get(URL).status_code == 200
    assert time_sleeps == [0.5, 1.0]


# --- Through the async transport, under asyncio and trio ------------------------------------------


@pytest.mark.anyio
async def test_async_retried_request_works() -> None:
    """The async transport retries 503, 503 and returns the 200 with the default (skipped) sleep."""
    inner = scripted(503, 503, 200)
    async with httpx.AsyncClient(transport=AsyncResilientTransport(inner)) as client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert len(inner.requests) == 3


@pytest.mark.anyio
async def test_async_injected_sleep_is_awaited(anyio_sleeps: list[float]) -> None:
    """An injected async sleep is awaited with both delays, even inside no_wait(); anyio.sleep is not used."""
    awaited: list[float] = []

    async def sleep(delay: float) -> None:
        awaited.append(delay)

    transport = AsyncResilientTransport(scripted(503, 503, 200), retry=EXACT, sleep=sleep)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(URL)).status_code == 200
    assert awaited == [0.5, 1.0]
    assert anyio_sleeps == []


@pytest.mark.anyio
async def test_async_default_sleep_does_not_wait_under_no_wait(anyio_sleeps: list[float]) -> None:
    """Under no_wait() the default async sleep only yields (anyio.sleep(0)); the delays are still reported."""
    events: list[RetryEvent] = []
    transport = AsyncResilientTransport(
        scripted(503, 503, 200), retry=EXACT, on_retry=events.append
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(URL)).status_code == 200
    assert anyio_sleeps == [0, 0]
    assert [e.delay for e in events] == [0.5, 1.0]


@pytest.mark.anyio
@pytest.mark.usefixtures("waits_on")
async def test_async_default_sleep_is_anyio_sleep(anyio_sleeps: list[float]) -> None:
    """Outside no_wait() the async transport waits with anyio.sleep for each delay."""
    transport = AsyncResilientTransport(scripted(503, 503, 200), retry=EXACT)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(URL)).status_code == 200
    assert anyio_sleeps == [0.5, 1.0]


@pytest.mark.anyio
async def test_cancelling_during_the_wait_propagates_at_once() -> None:
    """Cancelling while a real 10 s wait runs ends the request at once, after one attempt, its response closed."""
    body = Chunks([b"busy"])
    inner = scripted(httpx.Response(503, stream=body), 200)
    transport = AsyncResilientTransport(
        inner,
        retry=RetryPolicy(backoff=Backoff(initial=10.0, jitter="none")),
        sleep=anyio.sleep,  # given explicitly, so no_wait() does not skip it
    )
    outcome: list[str] = []

    async def request(client: httpx.AsyncClient) -> None:
        try:
            await client.get(URL)
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        outcome.append("finished")

    async with httpx.AsyncClient(transport=transport) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(request, client)
            with anyio.fail_after(2):
                while not inner.requests:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.05)  # the task is now in its 10 s wait
            cancelled_at = time.monotonic()
            group.cancel_scope.cancel()
        took = time.monotonic() - cancelled_at
    assert outcome == ["cancelled"]
    assert took < 1.0
    assert len(inner.requests) == 1
    assert body.closed
