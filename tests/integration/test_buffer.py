"""`buffer=`: a success body that breaks off while the transport reads it is retried.

Against the real server's `/broken-body/{id}`, whose 200 body is cut, stalled or garbled for
the first N requests of an id, in every mode (sync, asyncio, trio) and through httpx and httpx2.
"""

from __future__ import annotations

from typing import Any

import pytest

from httpx_resilience import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    ErrorPolicy,
    IdempotencyPolicy,
    RetryEvent,
    RetryPolicy,
    StreamError,
    StreamTimeoutError,
)

from ._support import Runner
from .conftest import SCRIPTS, LiveServer, new_id

MIB = 1_048_576
FAST = RetryPolicy(backoff=Backoff(initial=0.01, jitter="none"))


def expected_body(sid: str, number: int, size: int = 65536) -> bytes:
    """The body `/broken-body` sends whole on its `number`th request of `sid`."""
    return (f"attempt {number} of {sid} ".encode() * (size // 8 + 1))[:size]


def test_reset_mid_body_is_retried_and_the_whole_body_handed_on(
    run: Runner, server: LiveServer
) -> None:
    """A 200 cut off mid-body is retried on a fresh connection; the caller gets the second
    attempt's whole body, and the one pooled connection is free for the next request."""

    async def scenario() -> None:
        sid = new_id()
        events: list[RetryEvent] = []
        transport = run.transport(
            retry=FAST,
            buffer=MIB,
            on_retry=events.append,
            limits=run.hx.httpx.Limits(max_connections=1),
        )
        async with run.client(transport, timeout=5) as client:
            response = await client.get(server.url(f"/broken-body/{sid}", fail=1))
            assert response.status_code == 200
            assert response.content == expected_body(sid, 2)
            assert response.extensions["attempts"] == 2
            [record] = response.extensions["history"]
            assert (record.status_code, record.error) == (200, "StreamError")
            assert record.request_id == "req_body_1"
            # A connection left checked out by the broken attempt would stall this one.
            again = await client.get(server.url(f"/broken-body/{new_id()}"))
            assert again.status_code == 200
        assert SCRIPTS.get(sid).seen == 2
        [event] = events
        assert (event.attempt, event.response) == (1, None)
        assert isinstance(event.error, StreamError)
        assert (event.error.status_code, event.error.request_id) == (200, "req_body_1")

    run(scenario)


def test_without_buffer_the_reset_reaches_the_callers_read(run: Runner, server: LiveServer) -> None:
    """Off by default: the body is handed on unread, so the reset fails the caller's read with
    a StreamError after one attempt, as before."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(retry=FAST), timeout=5) as client:
            with pytest.raises(StreamError) as excinfo:
                await client.get(server.url(f"/broken-body/{sid}", fail=1))
        assert excinfo.value.attempts == 1
        assert SCRIPTS.get(sid).seen == 1

    run(scenario)


def test_keyed_post_is_retried_with_the_same_key(run: Runner, server: LiveServer) -> None:
    """A POST whose 200 body breaks off goes again with the same idempotency key."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(retry=FAST, buffer=MIB), timeout=5) as client:
            response = await client.post(server.url(f"/broken-body/{sid}", fail=1), json={"a": 1})
        assert response.content == expected_body(sid, 2)
        keys = SCRIPTS.get(sid).keys
        assert len(keys) == 2
        assert keys[0] is not None
        assert keys[0] == keys[1]

    run(scenario)


def test_keyless_post_is_not_resent(run: Runner, server: LiveServer) -> None:
    """A POST without a key reached the server: its broken body raises the StreamError at once,
    the request sent once."""

    async def scenario() -> None:
        sid = new_id()
        transport = run.transport(
            retry=FAST, buffer=MIB, idempotency=IdempotencyPolicy(enabled=False)
        )
        async with run.client(transport, timeout=5) as client:
            with pytest.raises(StreamError) as excinfo:
                await client.post(server.url(f"/broken-body/{sid}", fail=1), json={"a": 1})
        error = excinfo.value
        assert (error.status_code, error.attempts, error.retryable) == (200, 1, True)
        assert error.request_id == "req_body_1"
        assert SCRIPTS.get(sid).seen == 1

    run(scenario)


def test_stalled_body_is_retried_after_its_read_timeout(run: Runner, server: LiveServer) -> None:
    """A body that stops past the read timeout is a timed-out attempt, retried."""

    async def scenario() -> None:
        sid = new_id()
        timeout = run.hx.httpx.Timeout(5, read=0.3)
        async with run.client(run.transport(retry=FAST, buffer=MIB), timeout=timeout) as client:
            response = await client.get(
                server.url(f"/broken-body/{sid}", fail=1, how="stall", stall=2)
            )
        assert response.content == expected_body(sid, 2)
        assert response.extensions["history"][0].error == "StreamTimeoutError"

    run(scenario)


def test_attempts_exhausted_raise_the_stream_timeout(run: Runner, server: LiveServer) -> None:
    """Every attempt's body stalls: the last one's StreamTimeoutError is raised, with the
    history of all three."""

    async def scenario() -> None:
        sid = new_id()
        timeout = run.hx.httpx.Timeout(5, read=0.2)
        async with run.client(run.transport(retry=FAST, buffer=MIB), timeout=timeout) as client:
            with pytest.raises(StreamTimeoutError) as excinfo:
                await client.get(server.url(f"/broken-body/{sid}", fail=9, how="stall", stall=1))
        error = excinfo.value
        assert error.attempts == 3
        assert [r.error for r in error.history] == ["StreamTimeoutError"] * 3
        assert error.request_id == "req_body_3"

    run(scenario)


def test_garbled_gzip_body_is_retried(run: Runner, server: LiveServer) -> None:
    """A whole gzip body that does not decode fails the attempt, as the caller's read would
    have failed; the retry's body decodes."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(retry=FAST, buffer=MIB), timeout=5) as client:
            response = await client.get(server.url(f"/broken-body/{sid}", fail=1, how="garbled"))
        assert response.headers["content-encoding"] == "gzip"
        assert response.content == expected_body(sid, 2)
        [record] = response.extensions["history"]
        assert record.error == "StreamError"

    run(scenario)


def test_good_gzip_body_is_handed_on_once(run: Runner, server: LiveServer) -> None:
    """A gzip body that decodes is handed on as it came, decoded once by httpx for the caller."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(run.transport(buffer=MIB), timeout=5) as client:
            response = await client.get(server.url(f"/broken-body/{sid}", gzip=1))
        assert response.content == expected_body(sid, 1)
        assert response.extensions["attempts"] == 1

    run(scenario)


def test_body_over_the_buffer_is_streamed_after_the_part_read(
    run: Runner, server: LiveServer
) -> None:
    """A body longer than `buffer` is handed on after the chunks read, which come first: whole
    when nothing fails, and a reset past the buffer fails the caller's read, unretried."""

    async def scenario() -> None:
        whole, broken = new_id(), new_id()
        async with run.client(run.transport(retry=FAST, buffer=1000), timeout=5) as client:
            response = await client.get(server.url(f"/broken-body/{whole}"))
            assert response.content == expected_body(whole, 1)
            with pytest.raises(StreamError):
                await client.get(server.url(f"/broken-body/{broken}", fail=1))
        assert SCRIPTS.get(broken).seen == 1

    run(scenario)


def test_per_request_override_turns_it_off_and_on(run: Runner, server: LiveServer) -> None:
    """`extensions={"resilience": {"buffer": 0}}` hands the body on unread (a `client.stream`
    caller's choice); a number turns it on for a transport that has it off."""

    async def scenario() -> None:
        off, on = new_id(), new_id()
        async with (
            run.client(run.transport(retry=FAST, buffer=MIB), timeout=5) as client,
            client.stream(
                "GET",
                server.url(f"/broken-body/{off}", fail=1),
                extensions={"resilience": {"buffer": 0}},
            ) as response,
        ):
            with pytest.raises(StreamError):
                async for _ in client.iter_bytes(response):
                    pass
        async with run.client(run.transport(retry=FAST), timeout=5) as client:
            response = await client.get(
                server.url(f"/broken-body/{on}", fail=1), extensions={"resilience": {"buffer": MIB}}
            )
            assert response.content == expected_body(on, 2)
        assert (SCRIPTS.get(off).seen, SCRIPTS.get(on).seen) == (1, 2)

    run(scenario)


def test_classify_does_not_turn_the_buffer_off(run: Runner, server: LiveServer) -> None:
    """With an `ErrorPolicy(classify=...)` too, a cut-off body is still retried, and the
    hook still sees the whole body of the attempt that succeeded."""

    async def scenario() -> None:
        sid = new_id()
        seen: list[int] = []

        def classify(response: Any) -> None:
            seen.append(len(response.content))

        transport = run.transport(retry=FAST, buffer=MIB, errors=ErrorPolicy(classify=classify))
        async with run.client(transport, timeout=5) as client:
            response = await client.get(server.url(f"/broken-body/{sid}", fail=1, size=4000))
        assert response.content == expected_body(sid, 2, 4000)
        assert response.extensions["attempts"] == 2
        assert seen == [4000]

    run(scenario)


def test_broken_bodies_count_for_the_circuit_breaker(run: Runner, server: LiveServer) -> None:
    """A body that breaks off while buffered is a failed attempt for the host's circuit too:
    two of them open it, and the third call is refused without being sent."""

    async def scenario() -> None:
        sid = new_id()
        transport = run.transport(
            retry=RetryPolicy(max_attempts=1),
            buffer=MIB,
            breaker=CircuitBreaker(min_calls=2, failure_ratio=0.5, open_for=60),
        )
        async with run.client(transport, timeout=5) as client:
            for _ in range(2):
                with pytest.raises(StreamError):
                    await client.get(server.url(f"/broken-body/{sid}", fail=9))
            with pytest.raises(CircuitOpenError):
                await client.get(server.url(f"/broken-body/{sid}", fail=9))
        assert SCRIPTS.get(sid).seen == 2

    run(scenario)


def test_outer_buffer_retries_a_body_the_inner_transport_handed_on(
    run: Runner, server: LiveServer
) -> None:
    """Stacked, with `buffer=` on the outer transport: a body the inner one handed on breaks
    off while the outer reads it, and the outer retries it."""

    async def scenario() -> None:
        sid = new_id()
        inner = run.transport(retry=FAST)
        outer = run.transport(inner, retry=FAST, buffer=MIB)
        async with run.client(outer, timeout=5) as client:
            response = await client.get(server.url(f"/broken-body/{sid}", fail=1))
        assert response.content == expected_body(sid, 2)
        assert SCRIPTS.get(sid).seen == 2

    run(scenario)
