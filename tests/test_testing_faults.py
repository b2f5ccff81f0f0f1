"""`httpx_resilience.testing.FaultTransport`: each fault, the schedules, the record, the checks.

Most tests send through a plain client of the mode (sync, asyncio, trio), so what a fault does
is seen as the wrapped package makes it, without a resilient transport in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import pytest
import trio

from _support import Chunks, Flavour, Inner
from httpx_resilience import ConfigurationError
from httpx_resilience.httpx2 import FaultTransport as FaultTransport2
from httpx_resilience.testing import Fault, FaultCall, FaultTransport

URL = "https://api.example.com/v1/things"


@dataclass
class Outcome:
    """What one streamed request gave: the response (None if sending raised), the chunks
    read before the body ended or failed, the error, and how long it all took."""

    response: Any = None
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def fetch(
    mode: str,
    transport: Any,
    package: Any = httpx,
    method: str = "GET",
    url: str = URL,
    timeout: float = 5.0,
    **kwargs: Any,
) -> Outcome:
    """Stream one request through a client of `mode` and `package`, reading its body."""
    out = Outcome()
    start = time.perf_counter()
    if mode == "sync":
        with package.Client(transport=transport, timeout=timeout) as client:
            try:
                with client.stream(method, url, **kwargs) as response:
                    out.response = response
                    for chunk in response.iter_bytes():
                        out.chunks.append(chunk)
            except Exception as exc:
                out.error = exc
        out.seconds = time.perf_counter() - start
        return out

    async def go() -> None:
        async with package.AsyncClient(transport=transport, timeout=timeout) as client:
            try:
                async with client.stream(method, url, **kwargs) as response:
                    out.response = response
                    async for chunk in response.aiter_bytes():
                        out.chunks.append(chunk)
            except Exception as exc:
                out.error = exc

    if mode == "asyncio":
        asyncio.run(go())
    else:
        trio.run(go)
    out.seconds = time.perf_counter() - start
    return out


def fault_transport(hx: Flavour, *args: Any, **kwargs: Any) -> Any:
    """The FaultTransport of `hx`'s package."""
    cls = FaultTransport if hx.name == "httpx" else FaultTransport2
    return cls(*args, **kwargs)


def handler_of(package: Any, content: bytes = b"", status: int = 200) -> Callable[[Any], Any]:
    """A handler answering `status` with `content`, counting its calls in `.seen`."""
    seen: list[Any] = []

    def handle(request: Any) -> Any:
        seen.append(request)
        return package.Response(status, content=content, headers={"x-inner": "yes"})

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def chunked_inner(chunks: list[bytes]) -> tuple[Inner, Chunks]:
    """An inner transport answering 200 with `chunks` as a body that records being closed."""
    body = Chunks(chunks)
    return Inner(lambda request: httpx.Response(200, stream=body)), body


def faults_of(transport: Any) -> list[Fault | None]:
    return [call.fault for call in transport.calls]


def send_many(transport: Any, count: int) -> list[int | str]:
    """`count` GETs through a plain sync client: each status, or the error's class name."""
    results: list[int | str] = []
    with httpx.Client(transport=transport) as client:
        for _ in range(count):
            try:
                results.append(client.get(URL).status_code)
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)
    return results


# --- Each fault --------------------------------------------------------------------------------


def test_status_answers_in_place_with_headers_and_body(mode: str, hx: Flavour) -> None:
    """Fault.status answers its status, headers and body as the package's Response; the inner transport never sees the request."""
    handle = handler_of(hx.httpx)
    fault = Fault.status(503, headers={"Retry-After": "7"}, content="overloaded")
    out = fetch(mode, fault_transport(hx, handle, faults=[fault]), hx.httpx)
    assert out.error is None
    assert type(out.response) is hx.httpx.Response
    assert out.response.status_code == 503
    assert out.response.headers["retry-after"] == "7"
    assert out.body == b"overloaded"
    assert handle.seen == []  # type: ignore[attr-defined]


def test_status_json_sets_the_body_and_content_type() -> None:
    """Fault.status(json=...) sends the JSON text with an application/json content type."""
    error = {"error": {"message": "slow down", "code": "rate_limited"}}
    transport = FaultTransport(faults=[Fault.status(429, json=error)])
    with httpx.Client(transport=transport) as client:
        response = client.get(URL)
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert response.json() == error


def test_connect_error_raises_the_package_class_without_sending(mode: str, hx: Flavour) -> None:
    """Fault.connect_error raises the package's own ConnectError; the inner transport is not called."""
    handle = handler_of(hx.httpx)
    out = fetch(mode, fault_transport(hx, handle, faults=[Fault.connect_error()]), hx.httpx)
    assert type(out.error) is hx.httpx.ConnectError
    assert "injected by FaultTransport" in str(out.error)
    assert out.response is None
    assert handle.seen == []  # type: ignore[attr-defined]


def test_disconnect_raises_before_headers(mode: str, hx: Flavour) -> None:
    """Fault.disconnect raises the package's own RemoteProtocolError after the request was sent
    (its body read), before any response; the inner transport is not called."""
    handle = handler_of(hx.httpx)
    out = fetch(mode, fault_transport(hx, handle, faults=[Fault.disconnect()]), hx.httpx)
    assert type(out.error) is hx.httpx.RemoteProtocolError
    assert "injected by FaultTransport" in str(out.error)
    assert out.response is None
    assert handle.seen == []  # type: ignore[attr-defined]


def test_read_timeout_raises_before_headers(mode: str, hx: Flavour) -> None:
    """Fault.read_timeout raises the package's own ReadTimeout before any response; the inner transport is not called."""
    handle = handler_of(hx.httpx)
    out = fetch(mode, fault_transport(hx, handle, faults=[Fault.read_timeout()]), hx.httpx)
    assert type(out.error) is hx.httpx.ReadTimeout
    assert out.response is None
    assert handle.seen == []  # type: ignore[attr-defined]


def test_reset_cuts_the_inner_body_after_n_bytes(mode: str, hx: Flavour) -> None:
    """Fault.reset(after=25) hands on the inner response's headers and 25 body bytes, then the package's ReadError."""
    handle = handler_of(hx.httpx, content=b"x" * 100)
    out = fetch(mode, fault_transport(hx, handle, faults=[Fault.reset(after=25)]), hx.httpx)
    assert out.response.status_code == 200
    assert out.response.headers["x-inner"] == "yes"
    assert out.response.headers["content-length"] == "100"
    assert out.body == b"x" * 25
    assert type(out.error) is hx.httpx.ReadError
    assert "after 25 bytes" in str(out.error)


def read_raw(mode: str, transport: Any) -> tuple[bytes, BaseException | None]:
    """Send one GET straight to `transport` and iterate its raw body, closing nothing: what was
    read and the error met, as an inner stream would see it before any client cleans up."""
    request = httpx.Request("GET", URL)
    received = bytearray()
    if mode == "sync":
        response = transport.handle_request(request)
        try:
            for chunk in response.stream:
                received += chunk
        except Exception as exc:
            return bytes(received), exc
        return bytes(received), None

    async def go() -> BaseException | None:
        response = await transport.handle_async_request(request)
        try:
            async for chunk in response.stream:
                received.extend(chunk)
        except Exception as exc:
            return exc
        return None

    error = asyncio.run(go()) if mode == "asyncio" else trio.run(go)
    return bytes(received), error


def test_reset_closes_the_inner_body_before_raising(mode: str) -> None:
    """A reset closes the inner response's stream (its connection goes back) before the error reaches the reader."""
    inner, body = chunked_inner([b"a" * 10] * 5)
    received, error = read_raw(mode, FaultTransport(inner, faults=[Fault.reset(after=15)]))
    assert received == b"a" * 15
    assert isinstance(error, httpx.ReadError)
    assert body.served == 2  # stopped reading the inner body at the cut
    assert body.closed


def test_reset_after_the_end_raises_at_the_end(mode: str) -> None:
    """A reset past a shorter body hands the whole body on, then raises instead of ending it."""
    inner, body = chunked_inner([b"abc", b"def"])
    out = fetch(mode, FaultTransport(inner, faults=[Fault.reset(after=1000)]))
    assert out.body == b"abcdef"
    assert isinstance(out.error, httpx.ReadError)
    assert body.closed


def test_reset_of_an_own_error_status(mode: str, hx: Flavour) -> None:
    """Fault.reset(status=503, content=...) answers 503 with the full Content-Length and cuts that body, the inner transport unused."""
    handle = handler_of(hx.httpx)
    fault = Fault.reset(4, status=503, content=b"overloaded")
    out = fetch(mode, fault_transport(hx, handle, faults=[fault]), hx.httpx)
    assert out.response.status_code == 503
    assert out.response.headers["content-length"] == "10"
    assert out.body == b"over"
    assert type(out.error) is hx.httpx.ReadError
    assert handle.seen == []  # type: ignore[attr-defined]


def test_slow_delays_each_chunk_and_keeps_the_body(mode: str, hx: Flavour) -> None:
    """Fault.slow(0.02, chunk_size=10) hands on 4 pieces of a 40-byte body, each 20 ms late, the body unchanged."""
    handle = handler_of(hx.httpx, content=bytes(range(40)))
    fault = Fault.slow(0.02, chunk_size=10)
    out = fetch(mode, fault_transport(hx, handle, faults=[fault]), hx.httpx)
    assert out.error is None
    assert out.chunks == [bytes(range(i, i + 10)) for i in range(0, 40, 10)]
    assert out.seconds >= 0.08


def test_slow_past_the_read_timeout_raises_read_timeout(mode: str, hx: Flavour) -> None:
    """A chunk later than the request's read timeout raises the package's ReadTimeout after that timeout, not the delay."""
    inner = handler_of(hx.httpx, content=b"x" * 30)
    fault = Fault.slow(5.0, chunk_size=10)
    out = fetch(mode, fault_transport(hx, inner, faults=[fault]), hx.httpx, timeout=0.05)
    assert out.response.status_code == 200
    assert out.chunks == []
    assert type(out.error) is hx.httpx.ReadTimeout
    assert 0.05 <= out.seconds < 2.0


def test_slow_timeout_closes_the_inner_body(mode: str) -> None:
    """A slow body that times out closes the inner response's stream before raising."""
    inner, body = chunked_inner([b"a" * 10] * 3)
    transport = FaultTransport(inner, faults=[Fault.slow(1.0)])

    def short_timeout(request: httpx.Request) -> httpx.Response:
        request.extensions["timeout"] = {"read": 0.02}
        return httpx.Response(200, stream=body)

    inner.handler = short_timeout
    received, error = read_raw(mode, transport)
    assert received == b""
    assert isinstance(error, httpx.ReadTimeout)
    assert body.closed


@pytest.mark.parametrize("mode", ["asyncio", "trio"])
def test_a_reader_stopping_half_way_closes_the_inner_body(mode: str) -> None:
    """Leaving a faulty async body after one chunk stops reading the inner body and closes it."""
    inner, body = chunked_inner([b"a" * 10] * 5)
    transport = FaultTransport(inner, faults=[Fault.slow(0.0)])

    async def go() -> None:
        async with (
            httpx.AsyncClient(transport=transport) as client,
            client.stream("GET", URL) as response,
        ):
            async for _chunk in response.aiter_raw():
                break

    asyncio.run(go()) if mode == "asyncio" else trio.run(go)
    assert body.served == 1
    assert body.closed


def test_a_request_that_passes_gets_the_inner_response_itself() -> None:
    """A request without a fault gets exactly what the inner transport returned."""
    answer = httpx.Response(201, content=b"made")
    transport = FaultTransport(lambda request: answer, faults=[])
    with httpx.Client(transport=transport) as client:
        response = client.post(URL, content=b"x")
    assert response is answer


def test_default_inner_answers_200_empty(hx: Flavour) -> None:
    """With no inner transport every request that passes is answered 200 with an empty body, of the package's class."""
    with hx.httpx.Client(transport=fault_transport(hx)) as client:
        response = client.get(URL)
    assert type(response) is hx.httpx.Response
    assert (response.status_code, response.content) == (200, b"")


@pytest.mark.parametrize("mode", ["asyncio", "trio"])
def test_an_async_handler_serves_an_async_client(mode: str) -> None:
    """An async handler function serves the async clients, as httpx.MockTransport's does."""

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"async")

    out = fetch(mode, FaultTransport(handle, faults=[None]))
    assert out.body == b"async"


# --- Schedules -----------------------------------------------------------------------------------


def test_list_is_played_in_order_then_everything_passes() -> None:
    """A list gives its faults one per request, in order (None passing one), then every request passes."""
    plan = [Fault.status(503), None, Fault.status(429), Fault.connect_error()]
    transport = FaultTransport(faults=plan)
    results = send_many(transport, 6)
    assert results == [503, 200, 429, "ConnectError", 200, 200]
    assert faults_of(transport) == [*plan, None, None]


def test_cycle_repeats_the_list() -> None:
    """cycle=True plays the list over and over."""
    transport = FaultTransport(faults=[Fault.status(503), None], cycle=True)
    assert send_many(transport, 5) == [503, 200, 503, 200, 503]


def test_a_single_fault_is_a_list_of_one() -> None:
    """faults=Fault.status(503) faults the first request only."""
    transport = FaultTransport(faults=Fault.status(503))
    assert send_many(transport, 3) == [503, 200, 200]


def test_rate_with_a_seed_gives_the_same_sequence_twice() -> None:
    """Two transports with the same rate and seed fault the same requests; another seed faults others."""

    def sequence(seed: int) -> list[int | str]:
        return send_many(FaultTransport(faults=Fault.status(503), rate=0.3, seed=seed), 40)

    first = sequence(7)
    assert first == sequence(7)
    assert 0 < first.count(503) < 40
    assert sequence(8) != first


def test_rate_picks_among_several_faults() -> None:
    """rate=1 faults every request, each with one of the listed faults, all of them used."""
    plan = [Fault.status(503), Fault.status(429), Fault.connect_error()]
    transport = FaultTransport(faults=plan, rate=1.0, seed=3)
    results = send_many(transport, 30)
    assert set(results) == {503, 429, "ConnectError"}
    assert all(fault in plan for fault in faults_of(transport))


def test_rate_zero_never_faults() -> None:
    """rate=0 lets every request pass."""
    transport = FaultTransport(faults=Fault.status(503), rate=0.0, seed=1)
    assert send_many(transport, 20) == [200] * 20


def test_rate_without_a_seed_keeps_the_seed_it_drew() -> None:
    """Without seed=, a seed is drawn and kept in .seed; replaying it gives the same sequence."""
    drawn = FaultTransport(faults=Fault.status(503), rate=0.5)
    assert isinstance(drawn.seed, int)
    first = send_many(drawn, 30)
    replay = FaultTransport(faults=Fault.status(503), rate=0.5, seed=drawn.seed)
    assert send_many(replay, 30) == first
    assert f"seed={drawn.seed}" in repr(drawn)


def test_no_seed_without_a_rate() -> None:
    """A list or a cycle has no seed."""
    assert FaultTransport(faults=[Fault.status(503)]).seed is None


def test_match_limits_faults_to_its_requests() -> None:
    """Only the requests `match` holds for get faults; the others pass and use up nothing of the list."""
    transport = FaultTransport(
        faults=[Fault.status(503), Fault.status(503)],
        match=lambda request: request.url.path == "/v1/charges",
    )
    with httpx.Client(transport=transport, base_url="https://api.example.com") as client:
        statuses = [client.get(path).status_code for path in ("/v1/users", "/v1/charges") * 3]
    assert statuses == [200, 503, 200, 503, 200, 200]


# --- What it records -----------------------------------------------------------------------------


def test_calls_record_each_request_with_its_fault() -> None:
    """`calls` holds one FaultCall per request, in order: the request as sent and its fault, None for a pass."""
    transport = FaultTransport(faults=[Fault.read_timeout(), Fault.status(503)])
    with httpx.Client(transport=transport) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(URL, json={"n": 1})
        client.post(URL, json={"n": 2})
        client.post(URL, json={"n": 3})
    assert [type(call) for call in transport.calls] == [FaultCall] * 3
    assert faults_of(transport) == [Fault.read_timeout(), Fault.status(503), None]
    assert [json.loads(call.request.content) for call in transport.calls] == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
    ]


def test_faults_compare_and_print_by_value() -> None:
    """Equal arguments make equal faults, and a fault prints as the call that makes it."""
    fault = Fault.status(503, headers={"Retry-After": "1"}, content=b"busy")
    assert fault == Fault.status(503, headers=[("Retry-After", "1")], content="busy")
    assert fault != Fault.status(503)
    assert repr(fault) == "Fault.status(503, headers={'Retry-After': '1'}, content=b'busy')"
    assert repr(Fault.slow(0.5, chunk_size=2)) == "Fault.slow(0.5, chunk_size=2)"
    assert repr(Fault.reset(3, status=500)) == "Fault.reset(3, status=500)"


# --- Closing -------------------------------------------------------------------------------------


def test_close_and_context_reach_the_inner_transport(mode: str) -> None:
    """Entering and closing the client enters and closes the inner transport, sync and async."""
    inner = Inner(lambda request: httpx.Response(200))
    out = fetch(mode, FaultTransport(inner))
    assert out.error is None
    assert (inner.entered, inner.closed) == (1, 1)


def test_a_handler_has_nothing_to_close() -> None:
    """Closing a FaultTransport around a handler or the default answer does nothing and raises nothing."""
    FaultTransport(lambda request: httpx.Response(200)).close()
    trio.run(FaultTransport().aclose)


# --- Wrong input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Fault("boom"), "unknown kind 'boom'"),
        (lambda: Fault.status(99), "status must be an int from 200 to 599"),
        (lambda: Fault.status(600), "status must be an int from 200 to 599"),
        (lambda: Fault.status(True), "status must be an int from 200 to 599"),
        (lambda: Fault("status"), "needs its status code"),
        (lambda: Fault.status(503, headers={"a": 1}), "headers must be a mapping"),
        (lambda: Fault.status(503, content=7), "content must be bytes or str"),
        (lambda: Fault.status(503, content="x", json={}), "content= or json="),
        (lambda: Fault.reset(-1), "bytes >= 0"),
        (lambda: Fault.reset(1.5), "bytes >= 0"),
        (lambda: Fault.reset(headers={"a": "b"}), "without status="),
        (lambda: Fault.slow(-0.1), "seconds from 0 to 60"),
        (lambda: Fault.slow(float("nan")), "seconds from 0 to 60"),
        (lambda: Fault.slow(0.1, chunk_size=0), "chunk_size"),
        (lambda: Fault.slow(0.1, content=b"x"), "without status="),
        (
            lambda: Fault("status", 503, headers={"a": "b"}),
            "headers must be \\(name, value\\) pairs",
        ),
        (lambda: Fault("status", 503, content="text"), "content must be bytes, got str"),
    ],
    ids=[
        "unknown-kind",
        "status-low",
        "status-high",
        "status-bool",
        "status-missing",
        "header-value",
        "content-type",
        "content-and-json",
        "reset-negative",
        "reset-float",
        "reset-headers-alone",
        "slow-negative",
        "slow-nan",
        "chunk-zero",
        "slow-body-alone",
        "direct-headers-dict",
        "direct-content-str",
    ],
)
def test_bad_fault_is_refused(make: Callable[[], Any], message: str) -> None:
    """A fault made with arguments it cannot play raises ConfigurationError saying which."""
    with pytest.raises(ConfigurationError, match=message):
        make()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"faults": 503}, "must be a Fault or a list or tuple of Faults"),
        ({"faults": "503"}, "must be a Fault or a list or tuple of Faults"),
        ({"faults": [503]}, r"\[0\] is 503 \(int\), not a Fault or None: use Fault.status\(503\)"),
        ({"faults": [Fault.status(503), "reset"]}, r"\[1\] is 'reset' \(str\)"),
        ({"faults": Fault.status(503), "rate": 1.5}, "rate=...\\) must be a share"),
        ({"faults": Fault.status(503), "rate": -0.1}, "rate=...\\) must be a share"),
        ({"faults": Fault.status(503), "rate": True}, "rate=...\\) must be a share"),
        ({"faults": Fault.status(503), "rate": "0.1"}, "rate=...\\) must be a share"),
        ({"faults": Fault.status(503), "rate": 0.1, "cycle": True}, "not both"),
        ({"faults": [None], "cycle": True}, "need at least one Fault"),
        ({"faults": [], "rate": 0.5}, "need at least one Fault"),
        ({"faults": Fault.status(503), "cycle": 1}, "cycle=...\\) must be a bool"),
        ({"faults": Fault.status(503), "seed": 3}, "used with rate= only"),
        ({"faults": Fault.status(503), "rate": 0.1, "seed": "x"}, "must be an int"),
        ({"match": "/v1/charges"}, "match=...\\) must be a function"),
        ({"transport": 42}, "or a handler function \\(request -> response\\), got builtins.int$"),
        ({"transport": httpx.HTTPTransport}, "got the class httpx.HTTPTransport$"),
        ({"transport": httpx2.MockTransport(lambda r: None)}, "use httpx_resilience.httpx2"),
    ],
    ids=[
        "int",
        "str",
        "int-item",
        "str-item",
        "rate-high",
        "rate-negative",
        "rate-bool",
        "rate-str",
        "rate-and-cycle",
        "cycle-no-fault",
        "rate-no-fault",
        "cycle-int",
        "seed-no-rate",
        "seed-str",
        "match-str",
        "transport-int",
        "transport-class",
        "httpx2-transport",
    ],
)
def test_bad_transport_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """FaultTransport refuses arguments it cannot work with, with a ConfigurationError saying which."""
    with pytest.raises(ConfigurationError, match=message):
        FaultTransport(**kwargs)


def test_the_httpx2_twin_refuses_an_httpx_transport() -> None:
    """httpx_resilience.httpx2.FaultTransport given an httpx transport names the httpx one."""
    with pytest.raises(ConfigurationError, match=r"use httpx_resilience\.testing\.FaultTransport"):
        FaultTransport2(httpx.MockTransport(lambda r: httpx.Response(200)))


def test_an_async_handler_in_a_sync_client_is_refused() -> None:
    """An async handler cannot serve a sync client: ConfigurationError, its coroutine closed (no warning)."""

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    with (
        httpx.Client(transport=FaultTransport(handle)) as client,
        pytest.raises(ConfigurationError, match="handler is async"),
    ):
        client.get(URL)


class _SyncOnly(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)


class _AsyncOnly(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)


def test_a_transport_of_the_other_kind_is_refused(mode: str) -> None:
    """A sync-only inner transport under an async client, or an async-only one under a sync client, is a ConfigurationError."""
    inner = _SyncOnly() if mode != "sync" else _AsyncOnly()
    out = fetch(mode, FaultTransport(inner))
    assert isinstance(out.error, ConfigurationError)
    assert "use it with a" in str(out.error)


def test_a_request_of_the_other_package_is_refused() -> None:
    """An httpx2 request given to the httpx FaultTransport is a ConfigurationError, not a confusing failure later."""
    with pytest.raises(ConfigurationError, match=r"serves httpx, got an httpx2\.Request"):
        FaultTransport().handle_request(httpx2.Request("GET", URL))  # type: ignore[arg-type]


def test_an_endless_iterator_is_refused_not_read() -> None:
    """faults= must be a list or tuple: an endless iterator is refused at once, never read."""
    with pytest.raises(ConfigurationError, match="list or tuple"):
        FaultTransport(faults=itertools.cycle([Fault.status(503)]))


def test_none_is_refused_with_a_rate() -> None:
    """With rate=, a None in faults= would lower the rate silently: refused."""
    with pytest.raises(ConfigurationError, match="every item"):
        FaultTransport(faults=[Fault.status(503), None], rate=1.0, seed=1)


def test_an_async_match_is_refused() -> None:
    """An async match= would never be awaited (its coroutine is always true): refused."""

    async def match(request: httpx.Request) -> bool:
        return False

    with pytest.raises(ConfigurationError, match="async"):
        FaultTransport(faults=[Fault.status(503)], match=match)


def test_a_match_returning_an_awaitable_fails_the_request() -> None:
    """A match= that is not async but returns a coroutine fails with ConfigurationError."""

    async def later() -> bool:
        return False

    transport = FaultTransport(faults=[Fault.status(503)], match=lambda request: later())
    with httpx.Client(transport=transport) as client, pytest.raises(ConfigurationError):
        client.get(URL)


def test_unserialisable_json_is_a_configuration_error() -> None:
    """json= that json.dumps refuses is a ConfigurationError naming json=."""
    with pytest.raises(ConfigurationError, match="json="):
        Fault.status(500, json={"when": object()})


def test_repeated_header_names_are_kept() -> None:
    """Two Set-Cookie lines stay two, in the answer and in the repr."""
    headers = httpx.Headers([("set-cookie", "a=1"), ("set-cookie", "b=2")])
    fault = Fault.status(200, headers=headers)
    assert "('set-cookie', 'a=1'), ('set-cookie', 'b=2')" in repr(fault)
    with httpx.Client(transport=FaultTransport(faults=[fault])) as client:
        response = client.get(URL)
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert dict(response.cookies) == {"a": "1", "b": "2"}


def test_calls_keep_the_request_as_it_was_sent() -> None:
    """An auth flow sends the same request object again with a new header: the record of the
    first send keeps the header it had then."""

    class Refreshing(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Any:
            request.headers["authorization"] = "Bearer old"
            response = yield request
            if response.status_code == 401:
                request.headers["authorization"] = "Bearer new"
                yield request

    transport = FaultTransport(faults=[Fault.status(401)])
    with httpx.Client(transport=transport, auth=Refreshing()) as client:
        assert client.post(URL, content=b"body").status_code == 200
    sent = [call.request.headers["authorization"] for call in transport.calls]
    assert sent == ["Bearer old", "Bearer new"]
    assert transport.calls[0].request.content == b"body"


@pytest.mark.parametrize("kind", ["reset", "slow"])
def test_own_answers_read_the_request_body(kind: str) -> None:
    """reset/slow with status= answer in place: the request's body is read and recorded."""
    fault = (
        Fault.reset(2, status=503, content=b"abcdef")
        if kind == "reset"
        else Fault.slow(0, status=200, content=b"ok")
    )
    transport = FaultTransport(faults=[fault])

    def body() -> Iterator[bytes]:
        yield b"streamed"

    with (
        httpx.Client(transport=transport) as client,
        client.stream("POST", URL, content=body()) as response,
        contextlib.suppress(httpx.ReadError),
    ):
        response.read()
    assert transport.calls[0].request.content == b"streamed"


def test_calls_repr_redacts_the_url() -> None:
    """A record's repr shows the URL as the library's errors do: no password, no api_key."""
    transport = FaultTransport(faults=[Fault.status(503)])
    with httpx.Client(transport=transport) as client:
        client.get("https://user:hunter2@api.example.com/v1?api_key=sk-live-123&page=2")
    shown = repr(transport.calls)
    assert "hunter2" not in shown
    assert "sk-live-123" not in shown
    assert "page=2" in shown
    assert "Fault.status(503)" in shown
