"""Building errors from responses: from_response, decoding, and the never-raising property."""

from __future__ import annotations

import gzip
import os
import zlib

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import httpx_resilience as hr
from httpx_resilience import ErrorPolicy, from_response
from httpx_resilience._build import decode_content

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
    """An unread sync body is read only up to max_body_bytes and the response closed."""

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
    assert response.is_closed


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
