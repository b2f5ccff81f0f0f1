"""Building errors from responses: from_response, decoding, and the never-raising property."""

from __future__ import annotations

import gzip
import os
import random
import tracemalloc
import zlib
from collections.abc import Callable

import brotli
import httpx
import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st

import httpx_resilience as hr
from httpx_resilience import ErrorPolicy, from_response
from httpx_resilience._errors_build import body_response, decode_content

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/problem+json",
        "text/plain; charset=latin-1",
        "text/html",
        "application/octet-stream",
        "text/plain; charset=nope",
        "\x00garbage/;;=",
    ]
)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=4096), status=st.integers(100, 999), content_type=CONTENT_TYPES)
def test_any_body_gives_an_error_with_a_message(
    body: bytes, status: int, content_type: str | None
) -> None:
    """For arbitrary bytes, status and content type, an error with a non-empty message comes back."""
    headers = {"content-type": content_type} if content_type is not None else {}
    request = httpx.Request("GET", "https://h/x")
    err = from_response(httpx.Response(status, content=body, headers=headers, request=request))
    assert isinstance(err, hr.APIError)
    assert isinstance(err.message, str)
    assert err.message.strip()
    assert isinstance(err.code, str)
    assert err.code
    assert err.status_code == status
    str(err), repr(err), err.to_dict()


def test_from_response_picks_the_class_and_fields() -> None:
    """from_response builds the typed error with body fields and the request id."""
    request = httpx.Request("POST", "https://h/v1/jobs")
    response = httpx.Response(
        429,
        json={"error": {"message": "slow", "code": "rate_limit_exceeded"}},
        headers={"x-request-id": "req_5", "retry-after": "2"},
        request=request,
    )
    err = from_response(response)
    assert type(err) is hr.RateLimitError
    assert (err.message, err.code, err.request_id, err.retry_after) == (
        "slow",
        "rate_limit_exceeded",
        "req_5",
        2.0,
    )
    assert (err.method, err.url) == ("POST", "https://h/v1/jobs")


def test_from_response_without_a_request() -> None:
    """A response built by hand, with no request, still gives an error (method and url None)."""
    err = from_response(httpx.Response(404, json={"detail": "gone"}))
    assert type(err) is hr.NotFoundError
    assert err.message == "gone"
    assert err.method is None
    assert err.request is None


def test_from_response_on_a_success_status() -> None:
    """A status below 400 gives a plain APIError rather than failing."""
    err = from_response(httpx.Response(200, text="fine"))
    assert type(err) is hr.APIError


def test_from_response_honours_status_classes() -> None:
    """The policy's status_classes apply to from_response too."""

    class Gone(hr.ClientError):
        pass

    err = from_response(httpx.Response(410), errors=ErrorPolicy(status_classes={410: Gone}))
    assert type(err) is Gone


def test_from_response_reads_an_unread_stream_up_to_the_cap() -> None:
    """An unread sync body is read only up to max_body_bytes, and left to its owner: open,
    replaying what was read before the rest."""

    class Endless(httpx.SyncByteStream):
        pulled = 0

        def __iter__(self):  # type: ignore[no-untyped-def]
            while True:
                Endless.pulled += 1
                yield b"z" * 1000

    response = httpx.Response(500, stream=Endless())
    err = from_response(response, errors=ErrorPolicy(max_body_bytes=3000))
    assert err.body == "z" * 3000
    assert Endless.pulled <= 4
    assert not response.is_closed
    pieces = response.iter_bytes()
    assert next(pieces).startswith(b"z" * 3000)
    response.close()


def test_decode_content_caps_a_compression_bomb() -> None:
    """A gzip body that inflates to 50 MB decodes to no more than the cap."""
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(decode_content(bomb, "gzip", 65536)) == 65536


def test_decode_content_truncated_gzip_keeps_what_it_has() -> None:
    """A gzip stream cut short still yields its decoded prefix."""
    text = b'{"detail": "' + os.urandom(4000).hex().encode() + b'"}'
    data = gzip.compress(text)
    decoded = decode_content(data[: len(data) // 2], "gzip", 65536)
    assert len(decoded) > 1000
    assert text.startswith(decoded)


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
def test_decode_content_deflate_both_framings(wbits: int) -> None:
    """deflate is decoded whether the server sent zlib framing or raw deflate."""
    compressor = zlib.compressobj(wbits=wbits)
    data = compressor.compress(b"hello") + compressor.flush()
    assert decode_content(data, "deflate", 100) == b"hello"


def test_decode_content_garbage_encoding_falls_back() -> None:
    """A body that isn't what its encoding claims is used raw, not raised on."""
    assert decode_content(b"not gzip", "gzip", 100) == b"not gzip"
    assert decode_content(b"plain", "weird-encoding", 100) == b"plain"


# --- Headers that are not ASCII -------------------------------------------------------------

# What servers put in headers: UTF-8 in a detail header, Latin-1 in a Content-Disposition.
NON_ASCII_HEADERS = [
    (b"x-error-detail", "Größe überschritten".encode()),
    (b"content-disposition", 'attachment; filename="café.txt"'.encode("latin-1")),
]


def test_body_response_keeps_non_ascii_header_bytes() -> None:
    """The read copy of a response carries its header bytes as they came, not re-encoded."""
    response = httpx.Response(500, headers=[*NON_ASCII_HEADERS, (b"x-id", b"1")], content=b"x")
    copy = body_response(response, b"x", None)
    assert [pair for pair in copy.headers.raw if pair[0].lower() != b"content-length"] == [
        *NON_ASCII_HEADERS,
        (b"x-id", b"1"),
    ]


def test_from_response_with_non_ascii_headers() -> None:
    """from_response, str() and to_dict() all work on a response whose headers are not ASCII."""
    request = httpx.Request("GET", "https://h/x")
    response = httpx.Response(
        400, headers=NON_ASCII_HEADERS, json={"detail": "bad"}, request=request
    )
    err = from_response(response)
    assert type(err) is hr.BadRequestError
    assert err.message == "bad"
    assert err.response is not None
    assert err.response.headers.raw[:2] == NON_ASCII_HEADERS
    assert "bad" in str(err)
    assert err.to_dict()["message"] == "bad"


# --- Content-Encoding: every chain decoded under the cap, or not at all ---------------------

MB = 1024 * 1024


def _gzip_bomb(size: int, layers: int) -> bytes:
    """`size` zero bytes gzipped `layers` times, compressed piecewise to stay small here too."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = b"\0" * MB
    data = b"".join(compressor.compress(piece) for _ in range(size // MB)) + compressor.flush()
    for _ in range(layers - 1):
        data = gzip.compress(data)
    return data


def _brotli_bomb(size: int) -> bytes:
    compressor = brotli.Compressor(quality=5)
    piece = b"\0" * MB
    return b"".join(compressor.process(piece) for _ in range(size // MB)) + compressor.finish()


def _zstd_bomb(size: int) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    piece = b"\0" * MB
    return b"".join(compressor.compress(piece) for _ in range(size // MB)) + compressor.flush()


def _peak_of(run: Callable[[], bytes]) -> tuple[bytes, int]:
    """What `run` returned and the peak memory it traced above its start."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        result = run()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, top - baseline


@pytest.mark.parametrize(
    ("encoding", "bomb"),
    [
        ("gzip, gzip", lambda: _gzip_bomb(128 * MB, 2)),
        ("gzip,gzip,gzip", lambda: _gzip_bomb(128 * MB, 3)),
        ("br", lambda: _brotli_bomb(128 * MB)),
        ("zstd", lambda: _zstd_bomb(128 * MB)),
        ("br, gzip", lambda: gzip.compress(_brotli_bomb(128 * MB))),
    ],
    ids=["gzip-gzip", "gzip-x3", "br", "zstd", "br-gzip"],
)
def test_decode_content_caps_every_bomb(encoding: str, bomb: Callable[[], bytes]) -> None:
    """A 128 MiB bomb in any chain decodes to exactly the cap, costing little more memory."""
    data = bomb()
    assert len(data) < 200_000
    decoded, peak = _peak_of(lambda: decode_content(data, encoding, 65536))
    assert decoded == b"\0" * 65536
    assert peak < 2 * MB, f"peak {peak:,} B decoding {len(data):,} B of {encoding}"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip, deflate", lambda b: zlib.compress(gzip.compress(b))),
        ("deflate, br", lambda b: brotli.compress(_raw_deflate(b))),
        ("zstd, gzip", lambda b: gzip.compress(zstandard.ZstdCompressor().compress(b))),
        ("x-gzip, identity", gzip.compress),
        ("IDENTITY", lambda b: b),
        (" GZip ,  , Identity", gzip.compress),
    ],
)
def test_decode_content_undoes_a_chain(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    """A chain of codings is undone last to first, whatever its case, spaces and identities."""
    text = b'{"detail": "' + b"stacked " * 100 + b'"}'
    assert decode_content(encode(text), encoding, 65536) == text
    assert decode_content(encode(text), encoding, 10) == text[:10]


@pytest.mark.parametrize(
    "encoding",
    ["gzip, compress", "gzip, x-unknown", "gzip, gzip, gzip, gzip"],
    ids=["compress", "unknown", "four-deep"],
)
def test_decode_content_keeps_an_undecodable_chain_raw(encoding: str) -> None:
    """An unknown coding or a chain over three deep is not decoded: the raw capped bytes stay."""
    data = gzip.compress(gzip.compress(gzip.compress(gzip.compress(b"\0" * 100_000))))
    assert decode_content(data, encoding, 65536) == data[:65536]
    assert decode_content(data, encoding, 10) == data[:10]


def test_decode_content_corrupt_inner_layer_keeps_raw() -> None:
    """A chain whose inner layer is not what it claims gives the raw capped bytes, not a part."""
    data = gzip.compress(b"this is not gzip at all")
    assert decode_content(data, "gzip, gzip", 100) == data[:100]


def test_decode_content_zstd_window_over_8mb_kept_raw() -> None:
    """A zstd frame asking for a window over the 8 MiB HTTP allows (RFC 9659) is not decoded."""
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=27)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    data = compressor.compress(b"\0" * MB) + compressor.flush()
    assert decode_content(data, "zstd", 100) == data[:100]


def test_decode_content_zstd_several_frames() -> None:
    """A zstd body of several frames decodes across them, as httpx does."""
    compressor = zstandard.ZstdCompressor()
    data = compressor.compress(b"first ") + compressor.compress(b"second")
    assert decode_content(data, "zstd", 100) == b"first second"


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


_CODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    # Quality 5: the default, 11, is slow, and the decoder does not care.
    "br": lambda b: brotli.compress(b, quality=5),
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "identity": lambda b: b,
}


@pytest.mark.parametrize("coding", sorted(_CODERS))
def test_decode_content_whole_body_over_many_steps(coding: str) -> None:
    """A body many decoding steps long, under a cap above its size, comes back whole."""
    data = random.Random(1).randbytes(50_000) + b"\0" * 200_000 + b"end"
    assert decode_content(_CODERS[coding](data), coding, 300_000) == data


@settings(max_examples=200, deadline=None)
@given(
    head=st.binary(max_size=3000),
    noise=st.sampled_from([0, 20_000, 70_000]),
    seed=st.integers(0, 2**32),
    zeros=st.integers(0, 2000) | st.sampled_from([16_383, 16_384, 65_536, 70_001, 300_000]),
    chain=st.lists(st.sampled_from(sorted(_CODERS)), min_size=1, max_size=3),
    limit=st.integers(0, 70_000),
    cut=st.none() | st.integers(0, 100_000),
)
def test_decode_content_is_the_capped_true_prefix(
    head: bytes,
    noise: int,
    seed: int,
    zeros: int,
    chain: list[str],
    limit: int,
    cut: int | None,
) -> None:
    """For any chain of up to three codings, the result is the true decoding's prefix, capped.

    The body is random bytes, incompressible noise (so that every layer spans several pieces),
    then a run of zeros (which compress far). `cut` truncates the encoded body, as
    `max_body_bytes` does a raw one: what then decodes is a prefix of the truth, or, when the
    cut breaks a layer, the raw capped bytes.
    """
    data = head + random.Random(seed).randbytes(noise) + b"\0" * zeros
    encoded = data
    for coding in chain:
        encoded = _CODERS[coding](encoded)
    if cut is not None:
        encoded = encoded[:cut]
    decoded = decode_content(encoded, ", ".join(chain), limit)
    assert len(decoded) <= limit
    if cut is None:
        assert decoded == data[:limit]
    else:
        assert data.startswith(decoded) or decoded == encoded[:limit]


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=2000),
    encoding=st.lists(
        st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "x-gzip", "nope", ""]),
        max_size=5,
    ).map(", ".join),
    limit=st.integers(0, 5000),
)
# zlib reads a max_length of 0 as no limit at all.
@example(raw=b"\n\x00", encoding="deflate", limit=0)
def test_decode_content_never_raises_nor_passes_the_cap(
    raw: bytes, encoding: str, limit: int
) -> None:
    """For arbitrary bytes under any chain, decoding returns at most `limit` bytes and no error."""
    assert len(decode_content(raw, encoding, limit)) <= limit


def test_from_response_does_not_call_a_409_retryable() -> None:
    """Outside a transport there is no key to speak of: a 409 from from_response is not
    retryable (only a keyed request's 409 is)."""
    response = httpx.Response(409, request=httpx.Request("POST", "https://api.example.com/"))
    assert from_response(response).retryable is False
