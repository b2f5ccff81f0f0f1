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


def _headers(coding: str | None) -> httpx.Headers:
    return httpx.Headers({} if coding is None else {"content-encoding": coding})


BIG = 1 << 30


@given(st.binary(max_size=5000), st.lists(st.integers(min_value=0), max_size=8))
def test_gzip_decodes_however_it_is_cut(data: bytes, cuts: list[int]) -> None:
    """A whole gzip body decodes, whatever its chunks."""
    assert decodes(_split(gzip.compress(data), cuts), _headers("gzip"), BIG)


def test_the_check_stops_at_its_output_limit() -> None:
    """A bomb is decoded only up to the limit: its corrupt end, 64 MiB in, is never reached
    under a 1 MiB limit (left to the caller's read), and is found with room for it."""
    compressor = zlib.compressobj(wbits=31)
    bomb = compressor.compress(bytes(64 << 20)) + compressor.flush()
    corrupt = bomb[:-8] + bytes(b ^ 0xFF for b in bomb[-8:])  # the CRC and length trailer
    assert decodes([corrupt], _headers("gzip"), 1 << 20)
    assert not decodes([corrupt], _headers("gzip"), 128 << 20)


def test_codings_httpx_does_not_undo_are_not_checked() -> None:
    """httpx hands an x-gzip (or any unknown coding) body on as it is: so does the check."""
    assert decodes([b"not gzip at all"], _headers("x-gzip"), BIG)
    assert decodes([b"not gzip at all"], _headers("gzip, snappy"), BIG)


def test_a_zstd_window_over_the_bound_is_left_to_httpx() -> None:
    """A valid zstd body whose window is over RFC 9659's 8 MiB is not called broken: httpx's
    own decoder takes it."""
    import zstandard

    params = zstandard.ZstdCompressionParameters(window_log=25, write_content_size=False)
    body = zstandard.ZstdCompressor(compression_params=params).compress(b"x" * (40 << 20))
    assert decodes([body], _headers("zstd"), BIG)
    assert not decodes([b"\x28\xb5\x2f\xfd garbage"], _headers("zstd"), BIG)


def test_short_chunks_are_gathered() -> None:
    """A body that comes a byte at a time is kept in pieces of at least 16 KiB, not as 100,000
    tiny objects; the replay gives every byte back."""
    data = bytes(range(256)) * 400
    response = httpx.Response(200, stream=Chunks([data[i : i + 1] for i in range(len(data))]))
    pieces = buffer_body(response, len(data), HTTPX)
    assert pieces is not None
    assert len(pieces) == -(-len(data) // 16_384)
    assert b"".join(pieces) == data
    assert b"".join(response.stream) == data  # type: ignore[arg-type]


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
    assert decodes([good], _headers(coding), BIG)
    assert not decodes([bad], _headers(coding), BIG)


@pytest.mark.parametrize("coding", [None, "identity", "compress", "a, b, c, d"])
def test_unknown_or_no_coding_passes(coding: str | None) -> None:
    """Nothing to check, or nothing this module can undo safely: only httpx's read can tell."""
    assert decodes([b"\xff\x00 not compressed"], _headers(coding), BIG)
