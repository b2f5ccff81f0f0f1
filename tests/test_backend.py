"""httpx and httpx2 through one core: the classes each package's transports build and check."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpcore2
import httpx
import httpx2
import pytest

import httpx_resilience
import httpx_resilience.httpx2 as resilience2
from httpx_resilience import (
    ConfigurationError,
    NetworkError,
    NotFoundError,
    ProtocolError,
    RequestTimeoutError,
    StreamError,
    from_response,
)
from httpx_resilience._backend import HTTPX, backend_of, register
from httpx_resilience._classify import classify_exception
from httpx_resilience._streams import read_prefix

HTTPX2 = register(httpx2)


def test_register_makes_one_backend_per_package() -> None:
    """Registering httpx2 twice gives the same backend; httpx's is the built-in one."""
    assert register(httpx2) is HTTPX2
    assert register(httpx) is HTTPX
    assert HTTPX2.name == "httpx2"


@pytest.mark.parametrize("name", ["sync_mapped", "sync_replay"])
def test_httpx2_sync_streams_pass_httpx2_checks(name: str) -> None:
    """httpx2's sync stream classes are httpx2 `SyncByteStream`s, so its responses accept them."""
    assert issubclass(getattr(HTTPX2, name), httpx2.SyncByteStream)
    assert not issubclass(getattr(HTTPX, name), httpx2.SyncByteStream)


@pytest.mark.parametrize("name", ["async_mapped", "async_replay"])
def test_httpx2_async_streams_pass_httpx2_checks(name: str) -> None:
    """httpx2's async stream classes are httpx2 `AsyncByteStream`s."""
    assert issubclass(getattr(HTTPX2, name), httpx2.AsyncByteStream)


def test_httpx2_counted_request_stream_is_both_kinds() -> None:
    """The request-size counter for httpx2 is sync and async, as httpx2's transports check."""
    assert issubclass(HTTPX2.counted, httpx2.SyncByteStream)
    assert issubclass(HTTPX2.counted, httpx2.AsyncByteStream)


def test_backend_of_finds_the_package_of_a_response() -> None:
    """`backend_of` tells httpx's objects from httpx2's, subclasses included."""

    class MyResponse(httpx2.Response):
        pass

    assert backend_of(httpx.Response(200)) is HTTPX
    assert backend_of(httpx2.Response(200)) is HTTPX2
    assert backend_of(MyResponse(200)) is HTTPX2
    assert backend_of(object()) is HTTPX


def test_read_prefix_leaves_an_httpx2_response_readable() -> None:
    """A whole error body read from an httpx2 response is replayed by an httpx2 stream."""
    response = httpx2.Response(500, stream=httpx2.ByteStream(b"boom"))
    data, whole = read_prefix(response, 1024, HTTPX2)
    assert (data, whole) == (b"boom", True)
    assert isinstance(response.stream, httpx2.ByteStream)
    assert response.read() == b"boom"


def test_read_prefix_replays_a_cut_httpx2_body() -> None:
    """A prefix read from a longer httpx2 body is replayed, then the rest follows."""
    response = httpx2.Response(200, stream=httpx2.ByteStream(b"x" * 100))
    response.stream = HTTPX2.sync_replay(b"", iter([b"a" * 10, b"b" * 10]), response.stream)
    data, whole = read_prefix(response, 5, HTTPX2)
    assert (data, whole) == (b"a" * 10, False)
    assert response.read() == b"a" * 10 + b"b" * 10


@pytest.mark.parametrize(
    ("exc", "cls", "phase"),
    [
        (httpx2.ConnectTimeout("t"), RequestTimeoutError, "connect"),
        (httpx2.ReadTimeout("t"), RequestTimeoutError, "read"),
        (httpx2.ConnectError("c"), NetworkError, "connect"),
        (httpx2.RemoteProtocolError("p"), ProtocolError, None),
        (httpcore2.ConnectError("c"), NetworkError, "connect"),
        (httpcore2.PoolTimeout("t"), RequestTimeoutError, "pool"),
        (httpcore2.WriteError("w"), NetworkError, "write"),
    ],
)
def test_httpx2_and_httpcore2_exceptions_are_classified(
    exc: Exception, cls: type, phase: str | None
) -> None:
    """httpx2's and httpcore2's exceptions map like httpx's and httpcore's namesakes."""
    kind = classify_exception(exc)
    assert (kind.cls, kind.phase) == (cls, phase)


def test_httpx2_transport_refuses_an_httpx_inner_transport() -> None:
    """An httpx transport inside the httpx2 one is a configuration error naming httpx2."""
    with pytest.raises(ConfigurationError, match=r"httpx2\.BaseTransport"):
        resilience2.ResilientTransport(httpx.HTTPTransport())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"httpx2\.AsyncBaseTransport"):
        resilience2.AsyncResilientTransport(httpx.AsyncHTTPTransport())  # type: ignore[arg-type]


def test_httpx2_transport_builds_httpx2_default() -> None:
    """Without an inner transport, the httpx2 one builds httpx2's own from its keywords."""
    transport = resilience2.ResilientTransport(http2=False, retries=0)
    assert isinstance(transport._transport, httpx2.HTTPTransport)
    assert isinstance(transport, httpx2.BaseTransport)
    assert not isinstance(transport, httpx.BaseTransport)
    transport.close()


def test_httpx2_module_exports_its_transports() -> None:
    """`httpx_resilience.httpx2` exports exactly its two transports and the FaultTransport twin, under its own name."""
    assert sorted(resilience2.__all__) == [
        "AsyncResilientTransport",
        "FaultTransport",
        "ResilientTransport",
    ]
    for name in resilience2.__all__:
        assert getattr(resilience2, name).__module__ == "httpx_resilience.httpx2"
    assert resilience2.ResilientTransport is not httpx_resilience.ResilientTransport


def test_from_response_reads_an_unread_httpx2_response() -> None:
    """`from_response` on an unread httpx2 response reads it and keeps an httpx2 copy."""
    request = httpx2.Request("GET", "https://api.example.com/v1/x")
    response = httpx2.Response(
        404,
        stream=httpx2.ByteStream(b'{"error": {"message": "no such x", "code": "nf"}}'),
        headers={"x-request-id": "req_9"},
        request=request,
    )
    error = from_response(response)  # type: ignore[arg-type]
    assert isinstance(error, NotFoundError)
    assert (error.message, error.code, error.request_id) == ("no such x", "nf", "req_9")
    assert isinstance(error.response, httpx2.Response)


def test_httpx2_stream_failure_is_typed() -> None:
    """A body that breaks off under an httpx2 client raises `StreamError`, not httpx2's error."""

    class Broken(httpx2.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b"part"
            raise httpx2.ReadError("cut")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, stream=Broken())

    transport = resilience2.ResilientTransport(httpx2.MockTransport(handler))
    with httpx2.Client(transport=transport) as client, pytest.raises(StreamError) as excinfo:
        client.get("https://api.example.com/v1/x")
    assert isinstance(excinfo.value.__cause__, httpx2.ReadError)


def test_importing_without_httpx2_names_the_extra() -> None:
    """Where httpx2 is not installed, the import error says which extra to install."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httpx2"] = None  # as if not installed
        try:
            import httpx_resilience.httpx2
        except ImportError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "httpx-resilience[httpx2]" in result.stdout
