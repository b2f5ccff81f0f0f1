"""Responses at the edges, from a real server: header bytes outside ASCII, and compression bombs.

The server here is a bare ASGI app, as uvicorn serves it, so that it can send what starlette's
`Response` would not: header values as raw bytes (UTF-8 and Latin-1), and bodies in any chain
of `Content-Encoding`. Each scenario runs sync, under asyncio and under trio, through httpx and
httpx2.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import httpx
import pytest
import trio
import zstandard
from starlette.types import Receive, Scope, Send

from _support import Flavour
from httpx_resilience import (
    APIError,
    ErrorPolicy,
    InternalServerError,
    NotFoundError,
    ServiceUnavailableError,
    from_response,
)

from ._serve import serve

MB = 1024 * 1024
CAP = 65536
# What a request meeting a bomb may cost: the cap a few times over, and the modules a first
# async request imports (tracemalloc counts those too). Decoded without a cap, these bombs
# cost hundreds of MB.
BOUND = CAP * 4 + 6 * MB
# UTF-8 in a detail header, Latin-1 in a filename: both seen from real servers.
DETAIL = "Größe überschritten"
NON_ASCII_HEADERS = [
    (b"x-error-detail", DETAIL.encode()),
    (b"content-disposition", 'attachment; filename="café.txt"'.encode("latin-1")),
]
ERROR_BODY = json.dumps({"error": {"message": "too big", "code": "too_big"}}).encode()


def _zeros_compressed(compressor: Any, size: int, method: str = "compress") -> bytes:
    # Piecewise, so that building a bomb costs no more memory than defusing one may.
    piece = b"\0" * MB
    step = getattr(compressor, method)
    return b"".join(step(piece) for _ in range(size // MB))


def _bombs() -> dict[str, tuple[str, bytes]]:
    """Each bomb's Content-Encoding and body: 128 MiB of zeros, a few hundred bytes sent."""
    size = 128 * MB
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gzipped = _zeros_compressed(gz, size) + gz.flush()
    br = brotli.Compressor(quality=5)
    zs = zstandard.ZstdCompressor(level=3).compressobj()
    return {
        "gzip-gzip": ("gzip, gzip", gzip.compress(gzipped)),
        "br": ("br", _zeros_compressed(br, size, "process") + br.finish()),
        "zstd": ("zstd", _zeros_compressed(zs, size) + zs.flush()),
    }


BOMB_IDS = ["gzip-gzip", "br", "zstd"]


def _document(size: int) -> bytes:
    """A JSON success document of about `size` bytes."""
    return json.dumps({"status": "succeeded", "items": ["x" * 50] * (size // 53)}).encode()


def _app(bombs: dict[str, tuple[str, bytes]]) -> Callable[[Scope, Receive, Send], Any]:
    """`/headers/{status}`: an error body with NON_ASCII_HEADERS; `/bomb/{name}/{status}`:
    that bomb with its Content-Encoding (and, on a 503, a Retry-After of an hour);
    `/json/{size}`: a gzip 200 of a JSON document of about `size` bytes."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        _, kind, *rest = scope["path"].split("/")
        headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_edge")]
        if kind == "headers":
            status, body = int(rest[0]), ERROR_BODY
            headers += NON_ASCII_HEADERS
        elif kind == "json":
            status, body = 200, gzip.compress(_document(int(rest[0])))
            headers.append((b"content-encoding", b"gzip"))
        else:
            encoding, body = bombs[rest[0]]
            status = int(rest[1])
            headers.append((b"content-encoding", encoding.encode()))
            if status == 503:
                # Longer than the default max_retry_after: the retry stops at once.
                headers.append((b"retry-after", b"3600"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture(scope="module")
def edge() -> Iterator[str]:
    """The base URL of the edge server, up for this module."""
    with serve(_app(_bombs()), "edge") as port:
        yield f"http://127.0.0.1:{port}"


class Peak:
    """The highest memory traced above the baseline while the request ran."""

    value = 0


def _get(
    mode: str, hx: Flavour, url: str, errors: ErrorPolicy, peak: Peak | None = None
) -> httpx.Response:
    """GET `url` through the transport in `mode`; with `peak`, trace the request's memory.

    The client is built before tracing starts: its setup is not what is measured.
    """

    def traced(start: bool) -> None:
        if peak is None:
            return
        if start:
            tracemalloc.start()
            peak.value = tracemalloc.get_traced_memory()[0]
        else:
            peak.value = tracemalloc.get_traced_memory()[1] - peak.value
            tracemalloc.stop()

    if mode == "sync":
        with hx.httpx.Client(transport=hx.ResilientTransport(errors=errors), timeout=10) as client:
            traced(True)
            try:
                response: httpx.Response = client.get(url)
            finally:
                traced(False)
            return response

    async def go() -> httpx.Response:
        transport = hx.AsyncResilientTransport(errors=errors)
        async with hx.httpx.AsyncClient(transport=transport, timeout=10) as client:
            traced(True)
            try:
                response: httpx.Response = await client.get(url)
            finally:
                traced(False)
            return response

    return asyncio.run(go()) if mode == "asyncio" else trio.run(go)


def _status_unread(mode: str, hx: Flavour, url: str, errors: ErrorPolicy) -> tuple[int, int]:
    """(status, peak memory) of a streamed GET of `url` whose body the caller never reads."""

    def peak_since(start: int) -> int:
        peak = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.stop()
        return peak

    if mode == "sync":
        with hx.httpx.Client(transport=hx.ResilientTransport(errors=errors), timeout=10) as client:
            tracemalloc.start()
            start = tracemalloc.get_traced_memory()[0]
            with client.stream("GET", url) as response:
                return response.status_code, peak_since(start)

    async def go() -> tuple[int, int]:
        transport = hx.AsyncResilientTransport(errors=errors)
        async with hx.httpx.AsyncClient(transport=transport, timeout=10) as client:
            tracemalloc.start()
            start = tracemalloc.get_traced_memory()[0]
            async with client.stream("GET", url) as response:
                return response.status_code, peak_since(start)

    result: tuple[int, int] = asyncio.run(go()) if mode == "asyncio" else trio.run(go)
    return result


def _check_headers(response: httpx.Response | None) -> None:
    assert response is not None
    assert [p for p in response.headers.raw if p[0] in dict(NON_ASCII_HEADERS)] == (
        NON_ASCII_HEADERS
    )
    # httpx decodes them as one encoding for all, as it does for the response it returns.
    assert response.headers["x-error-detail"] == DETAIL.encode().decode("latin-1")


# --- Item 1: header bytes outside ASCII -------------------------------------------------------


@pytest.mark.timeout(20)
def test_non_ascii_headers_on_an_error(mode: str, hx: Flavour, edge: str) -> None:
    """A 404 whose headers are not ASCII raises its typed error, with the header bytes kept."""
    with pytest.raises(NotFoundError) as excinfo:
        _get(mode, hx, f"{edge}/headers/404", ErrorPolicy())
    err = excinfo.value
    assert (err.message, err.code, err.request_id) == ("too big", "too_big", "req_edge")
    _check_headers(err.response)
    assert "too big" in str(err)
    assert json.dumps(err.to_dict())


@pytest.mark.timeout(20)
def test_non_ascii_headers_handed_on_after_retries(mode: str, hx: Flavour, edge: str) -> None:
    """raise_on_status=False: a 503 with such headers, retried to the end, is handed on whole."""
    response = _get(mode, hx, f"{edge}/headers/503", ErrorPolicy(raise_on_status=False))
    assert response.status_code == 503
    assert response.json() == json.loads(ERROR_BODY)
    _check_headers(response)


@pytest.mark.timeout(20)
def test_non_ascii_headers_seen_by_classify(mode: str, hx: Flavour, edge: str) -> None:
    """A 200 with such headers reaches `classify` with them, and its verdict is raised."""
    seen: list[httpx.Response] = []

    def classify(response: httpx.Response) -> type[APIError] | None:
        seen.append(response)
        return ServiceUnavailableError if "x-error-detail" in response.headers else None

    with pytest.raises(ServiceUnavailableError) as excinfo:
        _get(mode, hx, f"{edge}/headers/200", ErrorPolicy(classify=classify))
    assert len(seen) == 1
    _check_headers(seen[0])
    _check_headers(excinfo.value.response)


@pytest.mark.timeout(20)
def test_non_ascii_headers_passed_by_classify(mode: str, hx: Flavour, edge: str) -> None:
    """A 200 with such headers that `classify` lets by comes back as the server sent it."""
    response = _get(mode, hx, f"{edge}/headers/200", ErrorPolicy(classify=lambda r: None))
    assert response.status_code == 200
    assert response.content == ERROR_BODY
    _check_headers(response)


def test_from_response_on_non_ascii_headers(hx: Flavour, edge: str) -> None:
    """from_response on a plain client's response with such headers builds the typed error."""
    with hx.httpx.Client(timeout=10) as client:
        response = client.get(f"{edge}/headers/500")
    err = from_response(response)
    assert type(err) is InternalServerError
    assert err.message == "too big"
    _check_headers(err.response)
    assert "too big" in str(err)
    assert json.dumps(err.to_dict())


# --- Item 2: compression bombs, stacked or not ------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bomb", BOMB_IDS)
def test_bomb_error_body_capped(mode: str, hx: Flavour, edge: str, bomb: str) -> None:
    """A 500 whose body inflates to 128 MiB keeps max_body_bytes of it, in bounded memory."""
    peak = Peak()
    with pytest.raises(InternalServerError) as excinfo:
        _get(mode, hx, f"{edge}/bomb/{bomb}/500", ErrorPolicy(max_body_bytes=CAP), peak)
    err = excinfo.value
    assert err.attempts == 3
    assert err.body == "\0" * CAP
    assert err.response is not None
    assert err.response.content == b"\0" * CAP
    assert peak.value < BOUND, f"peak {peak.value:,} B over {BOUND:,} B"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bomb", BOMB_IDS)
def test_bomb_handed_on_as_it_came(mode: str, hx: Flavour, edge: str, bomb: str) -> None:
    """raise_on_status=False, a retry stopped by its Retry-After: the response goes to the
    caller as it came, Content-Encoding and all, like one no retry was wanted for; handing it
    on, streamed and unread past what was read of it, cost the cap, not the bomb."""
    policy = ErrorPolicy(max_body_bytes=CAP, raise_on_status=False)
    status, peak = _status_unread(mode, hx, f"{edge}/bomb/{bomb}/503", policy)
    assert status == 503
    assert peak < BOUND, f"peak {peak:,} B over {BOUND:,} B"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bomb", BOMB_IDS)
def test_bomb_read_for_classify_passed_on_unread(
    mode: str, hx: Flavour, edge: str, bomb: str
) -> None:
    """A 200 bomb is over `max_body_bytes` once decoded: like any 2xx too large for `classify`,
    it is handed on as it came, neither hook sees a cut copy, and reading it cost the cap."""
    seen: list[int] = []

    def classify(response: httpx.Response) -> type[APIError] | None:
        seen.append(len(response.content))
        return InternalServerError

    def parse_body(response: httpx.Response) -> dict[str, Any] | None:
        seen.append(len(response.content))
        return None

    policy = ErrorPolicy(max_body_bytes=CAP, classify=classify, parse_body=parse_body)
    status, peak = _status_unread(mode, hx, f"{edge}/bomb/{bomb}/200", policy)
    assert status == 200
    assert seen == []
    assert peak < BOUND, f"peak {peak:,} B over {BOUND:,} B"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("size", [CAP // 2, CAP * 3], ids=["under-the-cap", "over-the-cap"])
def test_gzip_json_200_and_classify(mode: str, hx: Flavour, edge: str, size: int) -> None:
    """A gzip 200 whose JSON is under `max_body_bytes` once decoded reaches `classify` whole;
    one over it (small on the wire) is handed on unread, whole to the caller, never a cut copy
    that the hook's `response.json()` would fail on."""
    seen: list[str] = []

    def classify(response: httpx.Response) -> type[APIError] | None:
        seen.append(response.json()["status"])
        return None

    policy = ErrorPolicy(max_body_bytes=CAP, classify=classify)
    response = _get(mode, hx, f"{edge}/json/{size}", policy)
    assert response.status_code == 200
    assert seen == (["succeeded"] if size < CAP else [])
    if mode == "sync":
        document = response.json()
        assert document["status"] == "succeeded"
        assert len(json.dumps(document)) >= size
