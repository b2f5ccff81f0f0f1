"""poll / apoll: done after N polls, the deadline, Retry-After, typed errors, PollTimeoutError.

Each scenario runs through `poll` (sync) and `apoll` under asyncio and trio, on a fake clock:
the fixture's sleep records each wait and moves the clock on, so nothing really waits.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import trio

import httpx_resilience as hr
from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    Backoff,
    ConfigurationError,
    NetworkError,
    NotFoundError,
    PollTimeoutError,
    RequestTimeoutError,
    ResilientTransport,
    RetryPolicy,
    ServiceUnavailableError,
    _poll,
    _waits,
    apoll,
    poll,
)
from httpx_resilience._redact import Redactor

URL = "https://api.example.com/v1/jobs/ftjob-1"
STEADY = Backoff(initial=1.0, multiplier=2.0, max_delay=30.0, jitter="none")
Handler = Callable[[httpx.Request], httpx.Response]
Poller = Callable[..., httpx.Response]


class FakeClock:
    """A monotonic clock that only moves when slept on or told to, recording every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.sleep_ends: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        self.sleep_ends.append(self.now)

    async def async_sleep(self, delay: float) -> None:
        self.sleep(delay)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """The fake clock in place of poll's clock and sleeps. The suite's no_wait() is lifted, so
    every wait goes through the fake sleep (a transport's own retry waits would be real)."""
    fake = FakeClock()
    monkeypatch.setattr(_poll, "_monotonic", fake.monotonic)
    monkeypatch.setattr(_poll, "sleep", fake.sleep)
    monkeypatch.setattr(_poll, "async_sleep", fake.async_sleep)
    _waits.set_no_wait(False)
    try:
        yield fake
    finally:
        _waits.set_no_wait(True)


@pytest.fixture
def polling(mode: str) -> Poller:
    """`polling(handler, url=URL, resilient=False, **poll_kwargs)` through poll or apoll; with
    `resilient`, the mock sits under a (2-attempt) ResilientTransport."""

    def run(
        handler: Handler, url: str = URL, resilient: bool = False, **kwargs: Any
    ) -> httpx.Response:
        if mode == "sync":
            sync_transport: httpx.BaseTransport = httpx.MockTransport(handler)
            if resilient:
                sync_transport = ResilientTransport(
                    sync_transport, retry=RetryPolicy(max_attempts=2)
                )
            with httpx.Client(transport=sync_transport) as client:
                return poll(client, url, **kwargs)

        async def go() -> httpx.Response:
            transport: httpx.AsyncBaseTransport = httpx.MockTransport(handler)
            if resilient:
                transport = AsyncResilientTransport(transport, retry=RetryPolicy(max_attempts=2))
            async with httpx.AsyncClient(transport=transport) as client:
                return await apoll(client, url, **kwargs)

        if mode == "asyncio":
            return asyncio.run(go())
        return trio.run(go)

    return run


class Job:
    """A job that reports "running" for its first `running` polls, then "succeeded"."""

    def __init__(
        self, running: int, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.running = running
        self.status = status
        self.headers = headers or {}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        done = len(self.seen) > self.running
        return httpx.Response(
            200 if done else self.status,
            json={"id": "ftjob-1", "status": "succeeded" if done else "running"},
            headers={"x-request-id": f"req_{len(self.seen)}", **self.headers},
        )


def succeeded(response: httpx.Response) -> bool:
    # `until` sees error answers too: it checks the status before reading the body.
    return response.is_success and response.json()["status"] == "succeeded"


def test_returns_the_first_response_until_accepts(polling: Poller, clock: FakeClock) -> None:
    """Two "running" answers, then the "succeeded" one is returned after waits of 1 s and 2 s."""
    handler = Job(running=2)
    response = polling(handler, until=succeeded, timeout=60, interval=STEADY)
    assert response.json() == {"id": "ftjob-1", "status": "succeeded"}
    assert len(handler.seen) == 3
    assert clock.sleeps == [1.0, 2.0]


def test_done_at_once_never_waits(polling: Poller, clock: FakeClock) -> None:
    """A job already done costs one request and no wait."""
    handler = Job(running=0)
    assert polling(handler, until=succeeded, timeout=5).status_code == 200
    assert clock.sleeps == []


def test_default_interval_starts_near_one_second_and_grows(
    polling: Poller, clock: FakeClock
) -> None:
    """Without `interval`, waits are 1 s then 1.5 s, each within ±10 % jitter."""
    polling(Job(running=2), until=succeeded, timeout=60)
    first, second = clock.sleeps
    assert 0.9 <= first <= 1.1
    assert 1.35 <= second <= 1.65


def test_decorrelated_jitter_grows_from_the_wait_before(
    polling: Poller, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `jitter="decorrelated"` each wait is drawn up to 3 × the one before (here always
    the top, with random() near 1): 3, 9, then capped at 20, not stuck near `initial`."""
    import random

    monkeypatch.setattr(random, "random", lambda: 0.999999)
    backoff = hr.Backoff(initial=1.0, max_delay=20.0, jitter="decorrelated")
    polling(Job(running=4), until=succeeded, timeout=600, interval=backoff)
    assert [round(s, 3) for s in clock.sleeps] == [3.0, 9.0, 20.0, 20.0]


def test_request_kwargs_and_method_reach_every_poll(polling: Poller, clock: FakeClock) -> None:
    """`method`, `params`, `headers` and `json` are sent with each poll."""
    handler = Job(running=1)
    polling(
        handler,
        until=succeeded,
        timeout=60,
        interval=STEADY,
        method="POST",
        params={"view": "full"},
        headers={"x-tenant": "t1"},
        json={"q": 1},
    )
    for request in handler.seen:
        assert request.method == "POST"
        assert request.url.params["view"] == "full"
        assert request.headers["x-tenant"] == "t1"
        assert json.loads(request.content) == {"q": 1}


def test_timeout_raises_poll_timeout_error_with_the_last_response(
    polling: Poller, clock: FakeClock
) -> None:
    """Never done: polls at 0, 1, 3, 7 s; the next wait (8 s) would pass 10 s, so it raises."""
    handler = Job(running=1000, status=202)
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(handler, until=succeeded, timeout=10, interval=STEADY)
    err = excinfo.value
    assert isinstance(err, RequestTimeoutError)
    assert isinstance(err, httpx.TimeoutException)
    assert isinstance(err, TimeoutError)
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert err.attempts == 4 == len(handler.seen)
    assert err.phase == "total"
    assert err.retryable is False
    assert err.code == "poll_timeout"
    assert err.status_code == 202
    assert err.request_id == "req_4"
    assert err.resource_id == "ftjob-1"
    assert err.response is not None
    assert err.response.json() == {"id": "ftjob-1", "status": "running"}
    assert err.request is not None
    assert err.request.url == URL
    assert (err.method, err.url) == ("GET", URL)
    assert str(err).startswith(
        f"poll_timeout: GET {URL} not done within 10s: 4 polls over 7.0s, last status 202"
    )


def test_a_wait_ending_on_the_deadline_is_taken(polling: Poller, clock: FakeClock) -> None:
    """With 7 s, the 4-s wait after the poll at 3 s ends on the deadline: one last poll at 7 s."""
    handler = Job(running=1000)
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(handler, until=succeeded, timeout=7, interval=STEADY)
    assert excinfo.value.attempts == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_never_sleeps_past_the_deadline(polling: Poller, clock: FakeClock) -> None:
    """With each request taking 0.75 s, no wait ends after the deadline and no poll starts there."""
    starts: list[float] = []
    inner = Job(running=1000)

    def slow(request: httpx.Request) -> httpx.Response:
        starts.append(clock.now)
        clock.now += 0.75
        return inner(request)

    deadline = clock.now + 10
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(slow, until=succeeded, timeout=10, interval=STEADY)
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert max(clock.sleep_ends) <= deadline
    assert max(starts) < deadline
    assert excinfo.value.attempts == 4


def test_retry_after_is_the_next_wait(polling: Poller, clock: FakeClock) -> None:
    """A 202 with `Retry-After: 5` is polled again after 5 s, not after the backoff's 1 s."""
    polling(
        Job(running=1, status=202, headers={"retry-after": "5"}),
        until=succeeded,
        timeout=60,
        interval=STEADY,
    )
    assert clock.sleeps == [5.0]


def test_retry_after_ms_is_honoured(polling: Poller, clock: FakeClock) -> None:
    """`retry-after-ms: 250` gives a wait of 0.25 s."""
    polling(
        Job(running=1, status=202, headers={"retry-after-ms": "250"}),
        until=succeeded,
        timeout=60,
        interval=STEADY,
    )
    assert clock.sleeps == [0.25]


def test_retry_after_is_capped_by_max_delay(polling: Poller, clock: FakeClock) -> None:
    """`Retry-After: 600` waits only `interval.max_delay` (30 s)."""
    polling(
        Job(running=1, status=202, headers={"retry-after": "600"}),
        until=succeeded,
        timeout=3600,
        interval=STEADY,
    )
    assert clock.sleeps == [30.0]


def test_retry_after_beyond_the_deadline_raises_at_once(polling: Poller, clock: FakeClock) -> None:
    """A hint of 8 s with 5 s left raises without sleeping, the hint kept as `retry_after`."""
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(
            Job(running=1000, status=202, headers={"retry-after": "8"}),
            until=succeeded,
            timeout=5,
            interval=STEADY,
        )
    assert clock.sleeps == []
    assert excinfo.value.attempts == 1
    assert excinfo.value.retry_after == 8.0


def test_retry_after_zero_still_stops_at_the_deadline(polling: Poller, clock: FakeClock) -> None:
    """`Retry-After: 0` on every answer cannot loop forever once the deadline is reached."""
    inner = Job(running=1000, status=202, headers={"retry-after": "0"})

    def slow(request: httpx.Request) -> httpx.Response:
        clock.now += 1.0
        return inner(request)

    with pytest.raises(PollTimeoutError) as excinfo:
        polling(slow, until=succeeded, timeout=3, interval=STEADY)
    assert excinfo.value.attempts == 3


def test_404_raises_not_found(polling: Poller, clock: FakeClock) -> None:
    """A plain client's 404 raises NotFoundError from the body, after one poll and no wait."""

    def gone(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"message": "no such job"}}, headers={"x-request-id": "req_404"}
        )

    with pytest.raises(NotFoundError) as excinfo:
        polling(gone, until=succeeded, timeout=60)
    err = excinfo.value
    assert err.status_code == 404
    assert err.message == "no such job"
    assert err.request_id == "req_404"
    assert clock.sleeps == []


def test_until_may_accept_an_error_status(polling: Poller, clock: FakeClock) -> None:
    """Waiting for a deletion: `until` accepting a 404 returns it instead of raising."""
    calls: list[int] = []

    def deleting(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200 if len(calls) < 3 else 404)

    response = polling(deleting, until=lambda r: r.status_code == 404, timeout=60, interval=STEADY)
    assert response.status_code == 404
    assert clock.sleeps == [1.0, 2.0]


def test_connect_error_is_typed(polling: Poller, clock: FakeClock) -> None:
    """A plain client's httpx.ConnectError becomes a NetworkError (connect phase), kept as cause."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(NetworkError) as excinfo:
        polling(refused, until=succeeded, timeout=60)
    err = excinfo.value
    assert err.phase == "connect"
    assert isinstance(err.__cause__, httpx.ConnectError)
    assert err.url == URL


def test_read_timeout_is_a_request_timeout_not_a_poll_timeout(
    polling: Poller, clock: FakeClock
) -> None:
    """A poll's own read timeout is a RequestTimeoutError of phase "read", not PollTimeoutError."""

    def stalled(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RequestTimeoutError) as excinfo:
        polling(stalled, until=succeeded, timeout=60)
    assert not isinstance(excinfo.value, PollTimeoutError)
    assert excinfo.value.phase == "read"


def test_resilient_transport_errors_pass_through(polling: Poller) -> None:
    """Through a ResilientTransport, its own typed error (after its retries) is raised as is."""

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": {"message": "down"}})

    with pytest.raises(ServiceUnavailableError) as excinfo:
        polling(down, resilient=True, until=succeeded, timeout=60)
    assert excinfo.value.attempts == 2
    assert excinfo.value.__cause__ is None


def test_response_hook_raise_for_status_is_typed(clock: FakeClock) -> None:
    """A response hook's `raise_for_status()` (httpx.HTTPStatusError) becomes the status's error."""

    def gone(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    def check(response: httpx.Response) -> None:
        response.read()
        response.raise_for_status()

    client = httpx.Client(transport=httpx.MockTransport(gone), event_hooks={"response": [check]})
    with client, pytest.raises(NotFoundError) as excinfo:
        poll(client, URL, until=succeeded, timeout=60)
    assert isinstance(excinfo.value.__cause__, httpx.HTTPStatusError)


def test_until_raising_propagates_as_is(polling: Poller, clock: FakeClock) -> None:
    """An exception from `until` is the caller's own: it is not wrapped."""

    def broken(response: httpx.Response) -> bool:
        raise KeyError("status")

    with pytest.raises(KeyError):
        polling(Job(running=0), until=broken, timeout=60)


def test_secrets_in_the_url_stay_out_of_the_error(polling: Poller, clock: FakeClock) -> None:
    """A secret query value is redacted in the message, `url` and `to_dict()`."""
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(
            Job(running=1000),
            url=f"{URL}?api_key=sk-secret-123456&view=full",
            until=succeeded,
            timeout=2,
            interval=STEADY,
        )
    err = excinfo.value
    for text in (str(err), repr(err), json.dumps(err.to_dict())):
        assert "sk-secret-123456" not in text
    assert err.url == f"{URL}?api_key=[REDACTED]&view=full"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"until": "done"}, "until must be callable"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"interval": 1.0}, "interval must be a Backoff"),
        ({"method": ""}, "method"),
    ],
)
def test_bad_arguments_raise_configuration_error(
    polling: Poller, kwargs: dict[str, Any], fragment: str
) -> None:
    """Each bad argument raises ConfigurationError (a ValueError) before any request."""
    handler = Job(running=0)
    arguments: dict[str, Any] = {"until": succeeded, "timeout": 60, **kwargs}
    with pytest.raises(ConfigurationError, match=fragment):
        polling(handler, **arguments)
    assert handler.seen == []


def test_poll_refuses_an_async_client_and_apoll_a_sync_one() -> None:
    """Mixing up the two clients is a ConfigurationError, not a coroutine handed to `until`."""
    with pytest.raises(ConfigurationError, match="apoll"):
        poll(httpx.AsyncClient(), URL, until=succeeded, timeout=1)  # type: ignore[arg-type]
    with httpx.Client() as client, pytest.raises(ConfigurationError, match="poll"):
        asyncio.run(apoll(client, URL, until=succeeded, timeout=1))  # type: ignore[arg-type]


def test_poll_refuses_httpx2_clients_of_the_wrong_kind() -> None:
    """The same mix-up with httpx2's clients (the OpenAI and Anthropic SDKs') is refused too,
    whatever package the client comes from."""
    import httpx2

    with pytest.raises(ConfigurationError, match="apoll"):
        poll(httpx2.AsyncClient(), URL, until=succeeded, timeout=1)  # type: ignore[arg-type]
    with httpx2.Client() as client, pytest.raises(ConfigurationError, match="poll"):
        asyncio.run(apoll(client, URL, until=succeeded, timeout=1))  # type: ignore[arg-type]


def test_skipped_waits_still_count_against_the_deadline() -> None:
    """Under testing.no_wait() (the suite's default), waits are skipped but counted: a job that
    never finishes gives the same 10 polls (every 10 s within 95 s) at once."""
    handler = Job(running=1000)
    interval = Backoff(initial=10.0, multiplier=1.0, max_delay=10.0, jitter="none")
    started = time.monotonic()
    client = httpx.Client(transport=httpx.MockTransport(handler))
    with client, pytest.raises(PollTimeoutError) as excinfo:
        poll(client, URL, until=succeeded, timeout=95, interval=interval)
    assert excinfo.value.attempts == 10
    assert time.monotonic() - started < 5


def test_poll_timeout_error_pickles_with_its_response(polling: Poller, clock: FakeClock) -> None:
    """A PollTimeoutError from a real poll survives pickle with resource_id, response and all."""
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(Job(running=1000, status=202), until=succeeded, timeout=2, interval=STEADY)
    err = excinfo.value
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is PollTimeoutError
    assert (back.resource_id, back.attempts, back.phase, back.status_code, back.request_id) == (
        "ftjob-1",
        2,
        "total",
        202,
        "req_2",
    )
    assert back.response is not None
    assert back.response.json()["status"] == "running"
    assert str(back) == str(err)


def test_poll_timeout_error_to_dict_includes_resource_id(polling: Poller, clock: FakeClock) -> None:
    """to_dict() is JSON and carries resource_id with the usual fields."""
    with pytest.raises(PollTimeoutError) as excinfo:
        polling(Job(running=1000, status=202), until=succeeded, timeout=2, interval=STEADY)
    data = excinfo.value.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["type"] == "PollTimeoutError"
    assert data["resource_id"] == "ftjob-1"
    assert (data["phase"], data["attempts"], data["status_code"]) == ("total", 2, 202)


def test_poll_timeout_error_built_by_hand() -> None:
    """Built without a network it defaults to phase "total", not retryable, no resource id."""
    err = PollTimeoutError("job not done")
    assert (err.phase, err.retryable, err.resource_id, err.code) == (
        "total",
        False,
        None,
        "poll_timeout",
    )
    back = pickle.loads(pickle.dumps(PollTimeoutError("x", resource_id="op-1", attempts=3)))
    assert (back.resource_id, back.attempts) == ("op-1", 3)
    assert isinstance(back, APIError)


NO_SECRETS = Redactor(())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "ftjob-1", "name": "my run"}', "ftjob-1"),
        (b'{"job_id": 42, "status": "running"}', "42"),
        (b'{"jobId": "j-7"}', "j-7"),
        (b'{"operationId": "op-9"}', "op-9"),
        (b'{"name": "operations/123", "done": false}', "operations/123"),
        (b'{"id": true, "job_id": "j-1"}', "j-1"),
        (b'{"id": "", "name": "n-1"}', "n-1"),
        (b'{"id": {"nested": 1}}', None),
        (b'{"id": 1.5}', None),
        (b'[{"id": "x"}]', None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_resource_id(body: bytes, expected: str | None) -> None:
    """The id is the first non-empty string or integer among id, job_id, ..., name."""
    assert _poll.resource_id(body, NO_SECRETS) == expected


def test_resource_id_is_capped_and_redacted() -> None:
    """A long id is cut to 200 characters, and a secret the request carried is scrubbed."""
    assert _poll.resource_id(json.dumps({"id": "x" * 500}).encode(), NO_SECRETS) == "x" * 200
    redactor = Redactor(["tok-abcdef-123"])
    body = json.dumps({"id": "job-tok-abcdef-123"}).encode()
    assert _poll.resource_id(body, redactor) == "job-[REDACTED]"


def test_httpx2_client_is_polled_and_its_errors_typed(clock: FakeClock) -> None:
    """An httpx2 client (the OpenAI and Anthropic SDKs' package) polls alike, errors typed."""
    import httpx2

    import httpx_resilience.httpx2 as resilience2

    seen: list[int] = []

    def job(request: httpx2.Request) -> httpx2.Response:
        seen.append(1)
        status = "succeeded" if len(seen) > 2 else "running"
        return httpx2.Response(200, json={"id": "job-2", "status": status})

    transport = resilience2.ResilientTransport(httpx2.MockTransport(job))
    with httpx2.Client(transport=transport) as client:
        response = poll(client, URL, until=succeeded, timeout=60, interval=STEADY)  # type: ignore[arg-type]
    assert response.json()["status"] == "succeeded"
    assert clock.sleeps == [1.0, 2.0]

    def refused(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with (
        httpx2.Client(transport=httpx2.MockTransport(refused)) as plain,
        pytest.raises(NetworkError) as excinfo,
    ):
        poll(plain, URL, until=succeeded, timeout=60)  # type: ignore[arg-type]
    assert excinfo.value.phase == "connect"
    assert isinstance(excinfo.value.__cause__, httpx2.ConnectError)


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_poll_timeout_uses_the_transports_redact_names(mode: str, clock: FakeClock) -> None:
    """Polled through a resilient transport with redact_names={"pin"}: the PollTimeoutError
    shows the pin redacted, as that transport's own errors do (break-it round 3)."""
    handler = Job(running=1000, status=202)
    errors = hr.ErrorPolicy(redact_names={"pin"})
    url = "https://api.example.com/v1/jobs/1?pin=S3CRET-PIN"

    async def go() -> None:
        transport = hr.AsyncResilientTransport(httpx.MockTransport(handler), errors=errors)
        async with httpx.AsyncClient(transport=transport) as client:
            await apoll(client, url, until=succeeded, timeout=3, interval=STEADY)

    def run() -> None:
        if mode == "sync":
            sync = hr.ResilientTransport(httpx.MockTransport(handler), errors=errors)
            with httpx.Client(transport=sync) as client:
                poll(client, url, until=succeeded, timeout=3, interval=STEADY)
        else:
            asyncio.run(go())

    with pytest.raises(PollTimeoutError) as excinfo:
        run()
    err = excinfo.value
    shown = str(err) + repr(err) + repr(err.to_dict())
    assert "S3CRET-PIN" not in shown
    assert "pin=[REDACTED]" in (err.url or "")
