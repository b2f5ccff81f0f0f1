"""`buffer=`: its checks, the body readers and replay, and the decode check of a whole body."""

from __future__ import annotations

import gzip
import itertools
import zlib
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _support import Chunks
from httpx_resilience import (
    AsyncResilientTransport,
    ConfigurationError,
    ResilientTransport,
    RetryPolicy,
    StreamError,
)
from httpx_resilience._backend import HTTPX
from httpx_resilience._errors_build import decodes
from httpx_resilience._settings import MAX_BUFFER
from httpx_resilience._streams import abuffer_body, buffer_body
from httpx_resilience.testing import no_wait

URL = "https://api.example.com/v1/thing"


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@pytest.mark.parametrize("value", [-1, MAX_BUFFER + 1, 1.5, "1024", True, None])
def test_bad_buffer_is_refused(value: Any) -> None:
    """Anything but a byte count from 0 to 1 GiB (or False) is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="buffer"):
        ResilientTransport(buffer=value)


@pytest.mark.parametrize("value", [0, False, 1, MAX_BUFFER])
def test_good_buffer_is_taken(value: Any) -> None:
    """0 and False turn it off; any count up to 1 GiB is kept as it is."""
    transport = ResilientTransport(buffer=value)
    assert transport._settings.buffer == int(value)


@pytest.mark.parametrize("value", [-5, "big", True])
def test_bad_per_request_buffer_is_refused(value: Any) -> None:
    """A bad `extensions["resilience"]["buffer"]` fails that request with ConfigurationError,
    nothing sent."""
    sent: list[httpx.Request] = []
    inner = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    with (
        httpx.Client(transport=ResilientTransport(inner)) as client,
        pytest.raises(ConfigurationError, match=r'\["buffer"\]'),
    ):
        client.get(URL, extensions={"resilience": {"buffer": value}})
    assert sent == []


def _flaky_inner(bodies: list[Chunks]) -> httpx.MockTransport:
    """Answers 200 with each of `bodies` in turn."""
    pending = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=pending.pop(0))

    return httpx.MockTransport(handler)


def test_sync_retry_closes_the_broken_body() -> None:
    """The broken attempt's body is closed before the retry; the second one is read whole and
    its connection released (closed) before the caller gets it."""
    broken = Chunks([b"ab", b"cd"], fail_after=1, error=httpx.ReadError("reset"))
    whole = Chunks([b"ab", b"cd"])
    transport = ResilientTransport(_flaky_inner([broken, whole]), buffer=100)
    with no_wait(), httpx.Client(transport=transport) as client:
        response = client.get(URL)
    assert response.content == b"abcd"
    assert broken.closed
    assert whole.closed
    assert response.extensions["attempts"] == 2


def test_async_retry_closes_the_broken_body() -> None:
    """The async twin: a reset mid-body retried, the broken body closed."""
    import anyio

    broken = Chunks([b"ab", b"cd"], fail_after=1, error=httpx.ReadError("reset"))
    whole = Chunks([b"ab", b"cd"])

    async def main() -> httpx.Response:
        transport = AsyncResilientTransport(_flaky_inner([broken, whole]), buffer=100)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(URL)

    with no_wait():
        response = anyio.run(main)
    assert response.content == b"abcd"
    assert broken.closed
    assert whole.closed


def test_one_attempt_raises_the_typed_stream_error() -> None:
    """With no retry left, the body's failure is raised from the call as a StreamError that
    keeps the status and the cause."""
    broken = Chunks([b"ab", b"cd"], fail_after=1, error=httpx.ReadError("reset"))
    transport = ResilientTransport(
        _flaky_inner([broken]), buffer=100, retry=RetryPolicy(max_attempts=1)
    )
    with httpx.Client(transport=transport) as client, pytest.raises(StreamError) as excinfo:
        client.get(URL)
    error = excinfo.value
    assert (error.status_code, error.attempts, error.retryable) == (200, 1, True)
    assert isinstance(error.__cause__, httpx.ReadError)
    assert broken.closed


@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=6))
def test_buffer_body_keeps_every_byte(data: bytes, cuts: list[int]) -> None:
    """Whatever the chunking, the replayed body is the body, whole when under the limit and
    whole after the part read when over it."""
    for limit in (0, len(data) // 2, len(data), len(data) + 1):
        response = httpx.Response(200, stream=Chunks(_split(data, cuts)))
        chunks = buffer_body(response, limit, HTTPX)
        assert b"".join(response.stream) == data  # type: ignore[arg-type]
        if chunks is not None:
            assert b"".join(chunks) == data
            assert len(data) <= limit


@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=6))
def test_abuffer_body_keeps_every_byte(data: bytes, cuts: list[int]) -> None:
    """The async reader replays the same bytes as the sync one."""
    import anyio

    async def main() -> bytes:
        response = httpx.Response(200, stream=Chunks(_split(data, cuts)))
        await abuffer_body(response, len(data) // 2, HTTPX)
        return b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]

    assert anyio.run(main) == data


@given(st.binary(max_size=5000), st.lists(st.integers(min_value=0), max_size=8))
def test_gzip_decodes_however_it_is_cut(data: bytes, cuts: list[int]) -> None:
    """A whole gzip body decodes, whatever its chunks."""
    assert decodes(_split(gzip.compress(data), cuts), "gzip")


@pytest.mark.parametrize("coding", ["gzip", "deflate", "gzip, gzip"])
def test_reserved_block_type_does_not_decode(coding: str) -> None:
    """A body whose first deflate block has the reserved type fails the check."""
    if coding == "deflate":
        good = zlib.compress(b"hello" * 100)
        bad = good[:2] + b"\xff" + good[3:]
    else:
        good = gzip.compress(b"hello" * 100)
        if coding == "gzip, gzip":
            good = gzip.compress(good)
        bad = good[:10] + b"\xff" + good[11:]
    assert decodes([good], coding)
    assert not decodes([bad], coding)


@pytest.mark.parametrize("coding", [None, "identity", "compress", "a, b, c, d"])
def test_unknown_or_no_coding_passes(coding: str | None) -> None:
    """Nothing to check, or nothing this module can undo safely: only httpx's read can tell."""
    assert decodes([b"\xff\x00 not compressed"], coding)
