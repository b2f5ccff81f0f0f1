"""The retry engine against a real server: keys, replayability, pooling, hints, deadlines.

The scenarios that `run` takes go through the sync transport, asyncio and trio alike.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

import httpx_resilience as hr
from _support import Flavour
from httpx_resilience import (
    Backoff,
    IdempotencyPolicy,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ServiceUnavailableError,
)

from ._support import Runner, check_one_key_three_attempts
from .conftest import SCRIPTS, LiveServer, new_id

# Deterministic waits, so the delays reported can be checked exactly.
STEADY = RetryPolicy(backoff=Backoff(initial=0.1, multiplier=2.0, jitter="none"))
NO_KEYS = IdempotencyPolicy(enabled=False)
PAYLOAD = {"prompt": "hello", "n": 1}
PAYLOAD_BYTES = json.dumps(PAYLOAD).encode()


def test_post_503_503_200_same_key_and_body(run: Runner, server: LiveServer) -> None:
    """A POST meeting 503, 503, 200 succeeds: one key and one body on all 3 attempts, attempt header 1-2-3, events 1 and 2."""

    async def scenario() -> None:
        sid = new_id()
        events: list[RetryEvent] = []
        retry = STEADY.replace(attempt_header="x-retry-attempt")
        transport = run.transport(retry=retry, on_retry=events.append)
        async with run.client(transport) as client:
            response = await client.post(server.url(f"/flaky/{sid}", fail=2), content=PAYLOAD_BYTES)

        assert response.status_code == 200
        data = response.json()
        key = check_one_key_three_attempts(data, PAYLOAD_BYTES)
        records = [r for r in server.requests() if r.path == f"/flaky/{sid}"]
        assert [r.headers.get("idempotency-key") for r in records] == [key] * 3
        assert [bytes(r.body) for r in records] == [PAYLOAD_BYTES] * 3
        assert all(r.body_complete for r in records)
        assert [(e.attempt, e.delay, e.reason) for e in events] == [
            (1, 0.1, "status 503"),
            (2, 0.2, "status 503"),
        ]
        for event in events:
            assert isinstance(event.error, ServiceUnavailableError)
            assert event.response is not None
            assert event.response.status_code == 503
            assert event.error.idempotency_key == key

    run(scenario)


def test_caller_key_is_kept(hx: Flavour, server: LiveServer) -> None:
    """A caller-set Idempotency-Key is sent unchanged on every attempt."""
    sid = new_id()
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.post(
            server.url(f"/flaky/{sid}", fail=2),
            json=PAYLOAD,
            headers={"Idempotency-Key": "caller-key-42"},
        )
    assert response.status_code == 200
    assert response.json()["keys"] == ["caller-key-42"] * 3


def test_post_without_key_is_not_retried_on_503(hx: Flavour, server: LiveServer) -> None:
    """A POST with idempotency keys disabled meeting 503 is sent once and raises."""
    sid = new_id()
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(idempotency=NO_KEYS)) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.post(server.url(f"/flaky/{sid}", fail=2), json=PAYLOAD)
    assert excinfo.value.attempts == 1
    assert excinfo.value.idempotency_key is None
    script = SCRIPTS.get(sid)
    assert script.seen == 1
    assert script.keys == [None]


def test_get_is_retried_on_503(hx: Flavour, server: LiveServer) -> None:
    """A GET meeting 503, 503, 200 is retried to success, without any idempotency key."""
    sid = new_id()
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.get(server.url(f"/flaky/{sid}", fail=2))
    assert response.status_code == 200
    assert response.json()["seen"] == 3
    assert response.json()["keys"] == [None] * 3


def test_generator_body_is_sent_once(run: Runner, server: LiveServer) -> None:
    """A one-shot generator body (an async one in the async modes) meeting 503 is sent exactly
    once, whole, and the 503 raised."""

    async def scenario() -> None:
        sid = new_id()
        parts = [b"part-1;", b"part-2;", b"part-3"]
        async with run.client() as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                # fail=1: a (wrong) second attempt would have met a 200.
                await client.post(server.url(f"/flaky/{sid}", fail=1), content=run.one_shot(parts))
        err = excinfo.value
        assert err.attempts == 1
        assert len(err.history) == 1
        records = [r for r in server.requests() if r.path == f"/flaky/{sid}"]
        assert len(records) == 1
        assert bytes(records[0].body) == b"".join(parts)
        assert records[0].body_complete
        assert SCRIPTS.get(sid).seen == 1

    run(scenario)


def test_retried_error_responses_give_back_their_connection(
    run: Runner, server: LiveServer
) -> None:
    """20 GETs meeting 503, 503, 200 through a one-connection pool: no PoolTimeout, one TCP connection."""

    async def scenario() -> None:
        inner = run.http_transport(limits=run.hx.httpx.Limits(max_connections=1))
        ids = [new_id() for _ in range(20)]
        timeout = run.hx.httpx.Timeout(5.0, pool=2.0)
        async with run.client(run.transport(inner), timeout=timeout) as client:
            for sid in ids:
                response = await client.get(server.url(f"/flaky/{sid}", fail=2))
                assert response.status_code == 200
                assert response.json()["seen"] == 3
        assert len(server.requests()) == 60
        assert server.connections() == 1

    run(scenario)


def _one_retry_delay(hx: Flavour, server: LiveServer, **params: object) -> list[float]:
    """The waits asked of an injected sleep for a GET meeting one scripted failure, then 200."""
    sid = new_id()
    delays: list[float] = []
    with hx.httpx.Client(transport=hx.ResilientTransport(sleep=delays.append)) as client:
        response = client.get(server.url(f"/flaky/{sid}", fail=1, **params))
    assert response.status_code == 200
    assert response.json()["seen"] == 2
    return delays


def test_retry_after_seconds_is_the_wait(hx: Flavour, server: LiveServer) -> None:
    """429 with `Retry-After: 1` waits exactly 1 s before the retry."""
    assert _one_retry_delay(hx, server, status=429, retry_after="1") == [1.0]


def test_retry_after_http_date_is_the_wait(hx: Flavour, server: LiveServer) -> None:
    """429 with `Retry-After` as an HTTP-date 2 s ahead waits about 2 s."""
    delays = _one_retry_delay(hx, server, status=429, retry_after_date=2)
    assert len(delays) == 1
    assert abs(delays[0] - 2.0) <= 1.0


def test_retry_after_ms_is_the_wait(hx: Flavour, server: LiveServer) -> None:
    """503 with `retry-after-ms: 250` waits 0.25 s."""
    assert _one_retry_delay(hx, server, status=503, retry_after_ms=250) == [0.25]


def test_retry_after_beyond_cap_raises_at_once(hx: Flavour, server: LiveServer) -> None:
    """A one-day `Retry-After` is not slept: the 429 is raised at once with `retry_after` set."""
    sid = new_id()
    delays: list[float] = []
    start = time.monotonic()
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(sleep=delays.append)) as client,
        pytest.raises(RateLimitError) as excinfo,
    ):
        client.get(server.url(f"/flaky/{sid}", fail=1, status=429, retry_after=86400))
    assert time.monotonic() - start < 0.5
    assert delays == []
    assert excinfo.value.attempts == 1
    assert excinfo.value.retry_after == 86400.0
    assert SCRIPTS.get(sid).seen == 1


def test_total_deadline_with_real_sleeps(run: Runner, server: LiveServer) -> None:
    """An always-503 route under a 0.6 s total deadline raises the last 503's own error within
    it, after several attempts, its last record saying the deadline refused the next retry."""

    async def scenario() -> None:
        sid = new_id()
        retry = RetryPolicy(
            timeout=0.6,
            max_attempts=20,
            backoff=Backoff(initial=0.1, multiplier=1.0, jitter="none"),
        )
        start = time.monotonic()
        async with run.client(run.transport(retry=retry, sleep=run.sleep)) as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                await client.get(server.url(f"/flaky/{sid}", fail=1000))
        elapsed = time.monotonic() - start
        err = excinfo.value
        assert elapsed <= 0.6 + 0.25
        assert err.history[-1].refused == "deadline"
        assert err.attempts > 1
        assert err.attempts == SCRIPTS.get(sid).seen
        assert len(err.history) == err.attempts

    run(scenario)


def test_total_deadline_shortens_a_slow_attempt(run: Runner, server: LiveServer) -> None:
    """A route that answers after 2 s is cut off by a 0.5 s total deadline, not waited for."""

    async def scenario() -> None:
        sid = new_id()
        retry = RetryPolicy(timeout=0.5)
        start = time.monotonic()
        async with run.client(run.transport(retry=retry, sleep=run.sleep)) as client:
            with pytest.raises(RequestTimeoutError) as excinfo:
                await client.get(server.url(f"/flaky/{sid}", delay=2))
        elapsed = time.monotonic() - start
        assert elapsed <= 0.5 + 0.3
        assert excinfo.value.phase == "total"  # the deadline cut the attempt short
        assert excinfo.value.history[-1].error == "RequestTimeoutError"

    run(scenario)


def test_retry_after_past_the_deadline_is_not_slept(hx: Flavour, server: LiveServer) -> None:
    """A `Retry-After: 5` under a 1 s total deadline is not slept: the 503 itself is raised at
    once, with its retry_after, marked refused by the deadline."""
    sid = new_id()
    start = time.monotonic()
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(retry=RetryPolicy(timeout=1.0), sleep=time.sleep)
        ) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.get(server.url(f"/flaky/{sid}", fail=1, retry_after=5))
    assert time.monotonic() - start < 0.5
    err = excinfo.value
    assert err.history[-1].refused == "deadline"
    assert err.retry_after == 5.0
    assert SCRIPTS.get(sid).seen == 1


def test_read_timeout_on_get_is_retried(hx: Flavour, server: LiveServer) -> None:
    """A GET whose answers time out is retried: the server sees every attempt."""
    sid = new_id()
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(), timeout=hx.httpx.Timeout(5.0, read=0.15)
        ) as client,
        pytest.raises(RequestTimeoutError) as excinfo,
    ):
        client.get(server.url(f"/flaky/{sid}", delay=0.5))
    assert excinfo.value.phase == "read"
    assert excinfo.value.attempts == 3
    assert SCRIPTS.get(sid).seen == 3


def test_read_timeout_on_keyless_post_is_not_retried(hx: Flavour, server: LiveServer) -> None:
    """A POST without a key whose answer times out is not resent: it may have run."""
    sid = new_id()
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(idempotency=NO_KEYS),
            timeout=hx.httpx.Timeout(5.0, read=0.15),
        ) as client,
        pytest.raises(RequestTimeoutError) as excinfo,
    ):
        client.post(server.url(f"/flaky/{sid}", delay=0.5), json=PAYLOAD)
    assert excinfo.value.phase == "read"
    assert excinfo.value.attempts == 1
    assert SCRIPTS.get(sid).seen == 1


def test_read_timeout_on_keyed_post_is_retried(hx: Flavour, server: LiveServer) -> None:
    """A POST carrying an idempotency key is resent after a read timeout, with the same key."""
    sid = new_id()
    with (
        hx.httpx.Client(
            transport=hx.ResilientTransport(), timeout=hx.httpx.Timeout(5.0, read=0.15)
        ) as client,
        pytest.raises(RequestTimeoutError) as excinfo,
    ):
        client.post(server.url(f"/flaky/{sid}", delay=0.5), json=PAYLOAD)
    assert excinfo.value.attempts == 3
    keys = SCRIPTS.get(sid).keys
    assert len(keys) == 3
    assert keys[0]
    assert keys == [keys[0]] * 3


def test_connection_refused_on_keyless_post_is_retried(hx: Flavour, refused_url: str) -> None:
    """Connection refused on a keyless POST is retried: the request never left (phase connect)."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(idempotency=NO_KEYS)) as client,
        pytest.raises(NetworkError) as excinfo,
    ):
        client.post(refused_url, json=PAYLOAD)
    err = excinfo.value
    assert err.phase == "connect"
    assert err.attempts == 3
    assert [h.error for h in err.history] == ["NetworkError"] * 3


def test_keyed_post_executes_once_across_retries(hx: Flavour, server: LiveServer) -> None:
    """A POST whose first two attempts ran but answered 503 executes once: the retries carry the same key."""
    sid = new_id()
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.post(server.url(f"/once/{sid}", fail=2), json=PAYLOAD)
    assert response.status_code == 200
    assert response.headers["idempotent-replayed"] == "true"
    script = SCRIPTS.get(sid)
    assert script.seen == 3
    assert script.executions == 1
    assert script.keys[0]
    assert script.keys == [script.keys[0]] * 3
    assert response.json()["execution"] == 1
    assert response.json()["key"] == script.keys[0]


def test_keyless_post_executes_once_because_not_retried(hx: Flavour, server: LiveServer) -> None:
    """Without keys the POST meeting 503 is not retried, so it also executes only once."""
    sid = new_id()
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(idempotency=NO_KEYS)) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.post(server.url(f"/once/{sid}", fail=2), json=PAYLOAD)
    assert excinfo.value.attempts == 1
    script = SCRIPTS.get(sid)
    assert (script.seen, script.executions, script.keys) == (1, 1, [None])


def test_keyless_post_forced_retryable_executes_per_attempt(
    hx: Flavour, server: LiveServer
) -> None:
    """Control: a keyless POST made retryable by `retry_methods` runs the side effect on every attempt."""
    sid = new_id()
    retry = RetryPolicy(retry_methods={"POST"})
    with hx.httpx.Client(
        transport=hx.ResilientTransport(retry=retry, idempotency=NO_KEYS)
    ) as client:
        response = client.post(server.url(f"/once/{sid}", fail=2), json=PAYLOAD)
    assert response.status_code == 200
    script = SCRIPTS.get(sid)
    assert (script.seen, script.executions) == (3, 3)


CANARY_QUERY = "canary-query-s3cr3t-0xA1"
CANARY_AUTH = "canary-auth-s3cr3t-0xB2"


def _failing_secret_get(hx: Flavour, server: LiveServer) -> str:
    """A GET carrying secrets in `?api_key=` and `Authorization` that meets 503 three times."""
    sid = new_id()
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(ServiceUnavailableError),
    ):
        client.get(
            server.url(f"/flaky/{sid}", fail=5, api_key=CANARY_QUERY),
            headers={"Authorization": f"Bearer {CANARY_AUTH}"},
        )
    assert SCRIPTS.get(sid).seen == 3
    return sid


def test_retry_log_names_method_url_and_reason(
    hx: Flavour, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry logs one INFO record naming the method, the redacted URL and the reason."""
    with caplog.at_level(logging.INFO, logger="httpx_resilience"):
        sid = _failing_secret_get(hx, server)
    infos = [
        r for r in caplog.records if r.name == "httpx_resilience" and r.levelno == logging.INFO
    ]
    assert len(infos) == 2
    for number, record in enumerate(infos, start=1):
        message = record.getMessage()
        assert "GET" in message
        assert f"{server.base_url}/flaky/{sid}?" in message
        assert "api_key=[REDACTED]" in message
        assert "status 503" in message
        assert f"attempt {number} of 3" in message


def test_retry_logs_never_show_secrets(
    hx: Flavour, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No record of the `httpx_resilience` logger, at any level, shows a query or header secret."""
    with caplog.at_level(logging.DEBUG, logger="httpx_resilience"):
        _failing_secret_get(hx, server)
    records = [r for r in caplog.records if r.name.startswith("httpx_resilience")]
    assert len(records) >= 3  # two retries, and the failure at DEBUG
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        assert CANARY_QUERY not in text
        assert CANARY_AUTH not in text
    assert CANARY_QUERY not in caplog.text
    assert CANARY_AUTH not in caplog.text


def test_a_response_says_how_many_attempts_it_took(run: Runner, server: LiveServer) -> None:
    """A response handed on carries `extensions["attempts"]` and `extensions["history"]` (the
    records an error would carry), and the key that was sent is on its request: 1 and () for a
    first-try success, 3 and two 503 records after two retries."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(retry=STEADY)) as client:
            first = await client.get(server.url(f"/flaky/{new_id()}"))
            retried = await client.post(server.url(f"/flaky/{sid}", fail=2), content=PAYLOAD_BYTES)
        assert (first.extensions["attempts"], first.extensions["history"]) == (1, ())
        assert retried.status_code == 200
        assert retried.extensions["attempts"] == 3
        history = retried.extensions["history"]
        assert [(h.status_code, h.error, h.delay) for h in history] == [
            (503, "ServiceUnavailableError", 0.1),
            (503, "ServiceUnavailableError", 0.2),
        ]
        sent = [
            r.headers.get("idempotency-key") for r in server.requests() if r.path == f"/flaky/{sid}"
        ]
        assert sent == [retried.request.headers["idempotency-key"]] * 3

    run(scenario)


@pytest.mark.parametrize("status", [520, 524, 529])
def test_every_5xx_but_501_and_505_is_retried_by_default(
    run: Runner, server: LiveServer, status: int
) -> None:
    """Cloudflare's 520-524 and Anthropic's 529 "overloaded" are retried by default, like the
    SDKs the transport replaces retry them."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(retry=STEADY)) as client:
            response = await client.get(server.url(f"/flaky/{sid}", fail=1, status=status))
        assert response.status_code == 200
        assert SCRIPTS.get(sid).seen == 2

    run(scenario)


@pytest.mark.parametrize("status", [501, 505])
def test_501_and_505_are_not_retried(run: Runner, server: LiveServer, status: int) -> None:
    """501 Not Implemented and 505 HTTP Version Not Supported: no retry can fix them."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(retry=STEADY)) as client:
            with pytest.raises(hr.ServerError):
                await client.get(server.url(f"/flaky/{sid}", fail=1, status=status))
        assert SCRIPTS.get(sid).seen == 1

    run(scenario)


def test_a_429_is_retried_for_a_post_without_a_key(run: Runner, server: LiveServer) -> None:
    """A 429 was refused before any work: a POST without an idempotency key goes again after
    the server's Retry-After, as a GET would."""

    async def scenario() -> None:
        sid = new_id()
        transport = run.transport(retry=STEADY, idempotency=NO_KEYS)
        async with run.client(transport) as client:
            response = await client.post(
                server.url(f"/flaky/{sid}", fail=1, status=429, retry_after=0), json=PAYLOAD
            )
        assert response.status_code == 200
        assert response.json()["keys"] == [None, None]

    run(scenario)


def test_a_409_to_a_keyed_request_is_retried_with_the_same_key(
    run: Runner, server: LiveServer
) -> None:
    """A 409 to a request that carries an idempotency key (the same key still in flight) is
    retried with backoff, with the same key; the same 409 to an unkeyed POST is a
    ConflictError at once."""

    async def scenario() -> None:
        keyed, unkeyed = new_id(), new_id()
        async with run.client(run.transport(retry=STEADY)) as client:
            response = await client.post(
                server.url(f"/flaky/{keyed}", fail=1, status=409), json=PAYLOAD
            )
        async with run.client(run.transport(retry=STEADY, idempotency=NO_KEYS)) as client:
            with pytest.raises(hr.ConflictError) as info:
                await client.post(server.url(f"/flaky/{unkeyed}", fail=1, status=409), json=PAYLOAD)
        assert response.status_code == 200
        keys = response.json()["keys"]
        assert len(keys) == 2
        assert keys[0] is not None
        assert keys[0] == keys[1]
        assert not info.value.retryable
        assert SCRIPTS.get(unkeyed).seen == 1

    run(scenario)


def test_decorrelated_jitter_against_the_server(run: Runner, server: LiveServer) -> None:
    """Backoff(jitter="decorrelated") over 503, 503, 503, 200: each wait lies in [initial,
    3 × the wait before] (3 × initial before the first), and the call succeeds (issue 15,
    part 4)."""
    waits: list[float] = []

    def record(delay: float) -> None:
        waits.append(delay)

    async def arecord(delay: float) -> None:
        waits.append(delay)

    async def scenario() -> None:
        backoff = hr.Backoff(initial=0.05, max_delay=10.0, jitter="decorrelated")
        transport = run.transport(
            retry=hr.RetryPolicy(max_attempts=4, backoff=backoff),
            sleep=run.pick(record, arecord),
            budget=None,
        )
        async with run.client(transport=transport) as client:
            response = await client.get(server.url(f"/flaky/{new_id()}", fail=3))
        assert response.status_code == 200
        assert response.extensions["attempts"] == 4

    run(scenario)
    assert len(waits) == 3
    before = 0.05
    for wait in waits:
        assert 0.05 <= wait <= 3 * before + 1e-9
        before = wait
