"""Our transports composed with what people stack them with: hishel's cache below and above
ours, respx's default (httpcore) mocker, in-process ASGI and WSGI apps, per-host mounts, and
httpx's redirect following.

Async scenarios are coroutines run under asyncio and trio alike by the `run` fixture.
"""

from __future__ import annotations

import http
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import hishel
import hishel.httpx
import httpx
import pytest
import respx
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from httpx_resilience import (
    AsyncResilientTransport,
    InternalServerError,
    NetworkError,
    NotFoundError,
    ResilientTransport,
    RetryEvent,
    ServiceUnavailableError,
    TransportError,
)

from ._support import status_url
from .conftest import SCRIPTS, LiveServer, new_id

pytestmark = pytest.mark.timeout(15)

API = "https://api.example.com"
CACHED = {"from_cache": True, "revalidated": False, "stored": False}
REVALIDATED = {"from_cache": True, "revalidated": True, "stored": False}
STORED = {"from_cache": False, "revalidated": False, "stored": True}


@pytest.fixture(params=["asyncio", "trio"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """`run(coroutine_function, *args)` under asyncio, then trio."""

    def go(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if request.param == "asyncio":
            return anyio.run(fn, *args, backend="asyncio")
        return trio.run(fn, *args)

    return go


def seen(sid: str) -> int:
    """How many requests the live server's scripted routes got for `sid`."""
    return SCRIPTS.get(sid).seen


# --- hishel ------------------------------------------------------------------------------------


def sqlite_storage(tmp_path: Path) -> hishel.SqliteStorage:
    """hishel's own sync storage, in a file of the test's own."""
    return hishel.SqliteStorage(database_path=tmp_path / "cache.db")


class MemoryStorage(hishel.AsyncBaseStorage):
    """An in-memory async storage: hishel's stock async ones need anysqlite or redis.

    It keeps the contract of `AsyncBaseStorage`: an entry is only found once its body was read
    through the stream `create_entry` returned.
    """

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[uuid.UUID, tuple[str, hishel.Entry, bytes]] = {}

    async def create_entry(
        self,
        request: hishel.Request,
        response: hishel.Response,
        key: str,
        *,
        ttl: float | None = None,
        tti: float | None = None,
    ) -> hishel.Entry:
        entry = hishel.Entry(
            id=uuid.uuid4(), request=request, response=replace(response, stream=None)
        )
        source = response.stream
        assert source is None or isinstance(source, AsyncIterable)

        async def save() -> AsyncIterator[bytes]:
            chunks: list[bytes] = []
            if source is not None:
                async for chunk in source:
                    chunks.append(chunk)
                    yield chunk
            self.items[entry.id] = (key, entry, b"".join(chunks))

        return replace(entry, response=replace(response, stream=save()))

    async def get_entries(self, key: str) -> list[hishel.Entry]:
        return [
            replace(entry, response=replace(entry.response, stream=_replay(body)))
            for k, entry, body in self.items.values()
            if k == key
        ]

    async def update_headers(self, id: uuid.UUID, headers: hishel.Headers) -> None:
        if id in self.items:
            key, entry, body = self.items[id]
            fresh = replace(entry, response=replace(entry.response, headers=headers))
            self.items[id] = (key, fresh, body)

    async def remove_entry(self, id: uuid.UUID) -> None:
        self.items.pop(id, None)


async def _replay(body: bytes) -> AsyncIterator[bytes]:
    yield body


def etag_requests(server: LiveServer) -> list[dict[str, str]]:
    """The headers of each request the live server's `/etag` got."""
    return [r.headers for r in server.requests() if r.path == "/etag"]


def test_hishel_below_serves_repeat_get_from_cache(server: LiveServer, tmp_path: Path) -> None:
    """hishel below ours: a second GET is served from the cache, the server saw one request."""
    sid = new_id()
    cache = hishel.httpx.CacheTransport(
        next_transport=httpx.HTTPTransport(), storage=sqlite_storage(tmp_path)
    )
    with httpx.Client(transport=ResilientTransport(cache)) as client:
        first = client.get(server.url(f"/flaky/{sid}"))
        second = client.get(server.url(f"/flaky/{sid}"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.extensions["caching"] == STORED
    assert second.extensions["caching"] == CACHED
    assert second.json() == first.json()
    assert seen(sid) == 1


def test_hishel_below_revalidation_304_serves_cached_200(
    server: LiveServer, tmp_path: Path
) -> None:
    """hishel below ours: a forced revalidation meets 304 and the caller gets the cached 200."""
    cache = hishel.httpx.CacheTransport(
        next_transport=httpx.HTTPTransport(), storage=sqlite_storage(tmp_path), rfc=True
    )
    with httpx.Client(transport=ResilientTransport(cache)) as client:
        first = client.get(server.url("/etag"))
        second = client.get(server.url("/etag"), headers={"cache-control": "no-cache"})
    assert first.extensions["caching"] == STORED
    assert second.status_code == 200
    assert second.json() == {"version": 1}
    assert second.extensions["caching"] == REVALIDATED
    assert second.headers["etag"] == '"v1"'
    sent = etag_requests(server)
    assert len(sent) == 2
    assert "if-none-match" not in sent[0]
    assert sent[1]["if-none-match"] == '"v1"'


def test_hishel_below_503_is_retried_not_cached(server: LiveServer, tmp_path: Path) -> None:
    """hishel below ours: a 503 is not cached, our retry reaches the server and its 200 is cached."""
    sid = new_id()
    events: list[RetryEvent] = []
    cache = hishel.httpx.CacheTransport(
        next_transport=httpx.HTTPTransport(), storage=sqlite_storage(tmp_path)
    )
    with httpx.Client(transport=ResilientTransport(cache, on_retry=events.append)) as client:
        first = client.get(server.url(f"/flaky/{sid}", fail=1))
        second = client.get(server.url(f"/flaky/{sid}", fail=1))
    assert first.status_code == 200
    assert first.json()["seen"] == 2
    assert [e.reason for e in events] == ["status 503"]
    assert first.extensions["caching"] == STORED
    assert second.extensions["caching"] == CACHED
    assert second.json() == first.json()
    assert seen(sid) == 2


async def _hishel_below_cache_hit_async(server: LiveServer) -> None:
    sid = new_id()
    cache = hishel.httpx.AsyncCacheTransport(
        next_transport=httpx.AsyncHTTPTransport(), storage=MemoryStorage()
    )
    async with httpx.AsyncClient(transport=AsyncResilientTransport(cache)) as client:
        first = await client.get(server.url(f"/flaky/{sid}"))
        second = await client.get(server.url(f"/flaky/{sid}"))
    assert first.extensions["caching"] == STORED
    assert second.extensions["caching"] == CACHED
    assert second.json() == first.json()
    assert seen(sid) == 1


def test_hishel_below_serves_repeat_get_from_cache_async(
    server: LiveServer, run: Callable[..., Any]
) -> None:
    """Async, hishel below ours: a second GET is served from the cache, the server saw one."""
    run(_hishel_below_cache_hit_async, server)


async def _hishel_below_revalidation_async(server: LiveServer) -> None:
    cache = hishel.httpx.AsyncCacheTransport(
        next_transport=httpx.AsyncHTTPTransport(), storage=MemoryStorage(), rfc=True
    )
    async with httpx.AsyncClient(transport=AsyncResilientTransport(cache)) as client:
        await client.get(server.url("/etag"))
        second = await client.get(server.url("/etag"), headers={"cache-control": "no-cache"})
    assert second.status_code == 200
    assert second.json() == {"version": 1}
    assert second.extensions["caching"] == REVALIDATED
    assert [h.get("if-none-match") for h in etag_requests(server)] == [None, '"v1"']


def test_hishel_below_revalidation_304_serves_cached_200_async(
    server: LiveServer, run: Callable[..., Any]
) -> None:
    """Async, hishel below ours: a forced revalidation meets 304; the caller gets the cached 200."""
    run(_hishel_below_revalidation_async, server)


async def _hishel_below_503_async(server: LiveServer) -> None:
    sid = new_id()
    cache = hishel.httpx.AsyncCacheTransport(
        next_transport=httpx.AsyncHTTPTransport(), storage=MemoryStorage()
    )
    async with httpx.AsyncClient(transport=AsyncResilientTransport(cache)) as client:
        first = await client.get(server.url(f"/flaky/{sid}", fail=1))
        second = await client.get(server.url(f"/flaky/{sid}", fail=1))
    assert first.json()["seen"] == 2
    assert first.extensions["caching"] == STORED
    assert second.extensions["caching"] == CACHED
    assert seen(sid) == 2


def test_hishel_below_503_is_retried_not_cached_async(
    server: LiveServer, run: Callable[..., Any]
) -> None:
    """Async, hishel below ours: a 503 is not cached; our retry's 200 is, and served after."""
    run(_hishel_below_503_async, server)


def test_hishel_above_revalidation_304_passes_through(server: LiveServer, tmp_path: Path) -> None:
    """hishel above ours: the revalidation's 304 passes our transport untouched; hishel serves the cached body."""
    events: list[RetryEvent] = []
    cache = hishel.httpx.CacheTransport(
        next_transport=ResilientTransport(on_retry=events.append),
        storage=sqlite_storage(tmp_path),
        rfc=True,
    )
    with httpx.Client(transport=cache) as client:
        first = client.get(server.url("/etag"))
        second = client.get(server.url("/etag"), headers={"cache-control": "no-cache"})
    assert first.extensions["caching"] == STORED
    assert second.status_code == 200
    assert second.json() == {"version": 1}
    assert second.extensions["caching"] == REVALIDATED
    assert [h.get("if-none-match") for h in etag_requests(server)] == [None, '"v1"']
    assert events == []


def test_hishel_above_404_raises_not_found_unchanged(server: LiveServer, tmp_path: Path) -> None:
    """hishel above ours: our NotFoundError propagates through hishel as it is, and isn't cached."""
    url = status_url(server.base_url, 404)
    cache = hishel.httpx.CacheTransport(
        next_transport=ResilientTransport(), storage=sqlite_storage(tmp_path)
    )
    with httpx.Client(transport=cache) as client:
        for _ in range(2):
            with pytest.raises(NotFoundError) as excinfo:
                client.get(url)
            err = excinfo.value
            assert type(err) is NotFoundError
            assert (err.status_code, err.code, err.request_id) == (404, "e404", "req_404")
            assert err.message == "boom 404"
            assert err.attempts == 1
    assert len([r for r in server.requests() if r.path == "/status/404"]) == 2


def test_hishel_above_caches_the_response_our_retries_got(
    server: LiveServer, tmp_path: Path
) -> None:
    """hishel above ours: it stores the 200 that our retries reached, and serves it next time."""
    sid = new_id()
    cache = hishel.httpx.CacheTransport(
        next_transport=ResilientTransport(), storage=sqlite_storage(tmp_path)
    )
    with httpx.Client(transport=cache) as client:
        first = client.get(server.url(f"/flaky/{sid}", fail=2))
        second = client.get(server.url(f"/flaky/{sid}", fail=2))
    assert first.json()["seen"] == 3
    assert first.extensions["caching"] == STORED
    assert second.extensions["caching"] == CACHED
    assert second.json() == first.json()
    assert seen(sid) == 3


async def _hishel_above_revalidation_async(server: LiveServer) -> None:
    cache = hishel.httpx.AsyncCacheTransport(
        next_transport=AsyncResilientTransport(), storage=MemoryStorage(), rfc=True
    )
    async with httpx.AsyncClient(transport=cache) as client:
        await client.get(server.url("/etag"))
        second = await client.get(server.url("/etag"), headers={"cache-control": "no-cache"})
    assert second.status_code == 200
    assert second.json() == {"version": 1}
    assert second.extensions["caching"] == REVALIDATED
    assert [h.get("if-none-match") for h in etag_requests(server)] == [None, '"v1"']


def test_hishel_above_revalidation_304_passes_through_async(
    server: LiveServer, run: Callable[..., Any]
) -> None:
    """Async, hishel above ours: the 304 passes our transport untouched; hishel serves the cached body."""
    run(_hishel_above_revalidation_async, server)


async def _hishel_above_404_async(server: LiveServer) -> None:
    cache = hishel.httpx.AsyncCacheTransport(
        next_transport=AsyncResilientTransport(), storage=MemoryStorage()
    )
    async with httpx.AsyncClient(transport=cache) as client:
        with pytest.raises(NotFoundError) as excinfo:
            await client.get(status_url(server.base_url, 404))
    assert type(excinfo.value) is NotFoundError
    assert (excinfo.value.request_id, excinfo.value.attempts) == ("req_404", 1)


def test_hishel_above_404_raises_not_found_unchanged_async(
    server: LiveServer, run: Callable[..., Any]
) -> None:
    """Async, hishel above ours: our NotFoundError propagates through hishel as it is."""
    run(_hishel_above_404_async, server)


# --- respx -------------------------------------------------------------------------------------


def test_respx_503_503_200_calls_route_three_times() -> None:
    """respx (httpcore mocker) under our transport: 503, 503, 200 is three calls and a 200."""
    with respx.mock(base_url=API) as router:
        route = router.get("/thing").mock(
            side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(200)]
        )
        with httpx.Client(transport=ResilientTransport()) as client:
            response = client.get(f"{API}/thing")
    assert response.status_code == 200
    assert route.call_count == 3


def test_respx_connect_error_ends_in_network_error() -> None:
    """respx raising ConnectError on every call: NetworkError after 3 attempts, the cause kept."""
    with respx.mock(base_url=API) as router:
        route = router.get("/thing").mock(side_effect=httpx.ConnectError("refused"))
        with (
            httpx.Client(transport=ResilientTransport()) as client,
            pytest.raises(NetworkError) as excinfo,
        ):
            client.get(f"{API}/thing")
    err = excinfo.value
    assert (err.attempts, err.phase) == (3, "connect")
    assert isinstance(err.__cause__, httpx.ConnectError)
    assert route.call_count == 3


def test_respx_post_keeps_one_idempotency_key() -> None:
    """respx records the same Idempotency-Key on all three calls of a retried POST."""
    with respx.mock(base_url=API) as router:
        route = router.post("/thing").mock(
            side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(201)]
        )
        with httpx.Client(transport=ResilientTransport()) as client:
            response = client.post(f"{API}/thing", json={"n": 1})
    assert response.status_code == 201
    keys = [call.request.headers.get("idempotency-key") for call in route.calls]
    assert len(keys) == 3
    assert keys[0]
    assert keys == [keys[0]] * 3
    assert [call.request.content for call in route.calls] == [b'{"n":1}'] * 3


async def _respx_503_503_200_async() -> None:
    with respx.mock(base_url=API) as router:
        route = router.get("/thing").mock(
            side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(200)]
        )
        async with httpx.AsyncClient(transport=AsyncResilientTransport()) as client:
            response = await client.get(f"{API}/thing")
    assert response.status_code == 200
    assert route.call_count == 3


def test_respx_503_503_200_calls_route_three_times_async(run: Callable[..., Any]) -> None:
    """Async, respx under our transport: 503, 503, 200 is three calls and a 200."""
    run(_respx_503_503_200_async)


async def _respx_connect_error_async() -> None:
    with respx.mock(base_url=API) as router:
        route = router.get("/thing").mock(side_effect=httpx.ConnectError("refused"))
        async with httpx.AsyncClient(transport=AsyncResilientTransport()) as client:
            with pytest.raises(NetworkError) as excinfo:
                await client.get(f"{API}/thing")
    assert (excinfo.value.attempts, excinfo.value.phase) == (3, "connect")
    assert isinstance(excinfo.value.__cause__, httpx.ConnectError)
    assert route.call_count == 3


def test_respx_connect_error_ends_in_network_error_async(run: Callable[..., Any]) -> None:
    """Async, respx raising ConnectError on every call: NetworkError after 3 attempts."""
    run(_respx_connect_error_async)


async def _respx_post_key_async() -> None:
    with respx.mock(base_url=API) as router:
        route = router.post("/thing").mock(
            side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(201)]
        )
        async with httpx.AsyncClient(transport=AsyncResilientTransport()) as client:
            response = await client.post(f"{API}/thing", json={"n": 1})
    assert response.status_code == 201
    keys = [call.request.headers.get("idempotency-key") for call in route.calls]
    assert len(keys) == 3
    assert keys[0]
    assert keys == [keys[0]] * 3


def test_respx_post_keeps_one_idempotency_key_async(run: Callable[..., Any]) -> None:
    """Async, respx records the same Idempotency-Key on all three calls of a retried POST."""
    run(_respx_post_key_async)


# --- in-process ASGI and WSGI apps -------------------------------------------------------------


class AppError(RuntimeError):
    """What the in-process apps raise on `/boom`."""


def _error_payload(code: int, label: str) -> dict[str, Any]:
    return {"error": {"message": f"{label} {code}", "code": f"e{code}"}}


def asgi_app(hits: Counter[str]) -> Starlette:
    """A starlette app counting each path in `hits`: `/status/{code}`, `/flaky?fail=N`, `/boom`."""

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        hits[request.url.path] += 1
        return JSONResponse(
            _error_payload(code, "asgi"), status_code=code, headers={"x-request-id": f"req_{code}"}
        )

    async def flaky(request: Request) -> Response:
        hits["/flaky"] += 1
        number = hits["/flaky"]
        if number <= int(request.query_params.get("fail", "0")):
            return JSONResponse(
                _error_payload(503, "asgi"),
                status_code=503,
                headers={"x-request-id": f"req_flaky_{number}"},
            )
        return JSONResponse({"seen": number}, headers={"x-request-id": f"req_flaky_{number}"})

    async def boom(request: Request) -> Response:
        hits["/boom"] += 1
        raise AppError("the ASGI app blew up")

    return Starlette(
        routes=[
            Route("/status/{code:int}", status),
            Route("/flaky", flaky),
            Route("/boom", boom),
        ]
    )


def wsgi_app(hits: Counter[str]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app counting each path in `hits`: `/status/{code}`, `/flaky?fail=N`, `/boom`."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        hits[path] += 1
        number = hits[path]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/boom":
            raise AppError("the WSGI app blew up")
        if path.startswith("/status/"):
            code, request_id = int(path.rsplit("/", 1)[1]), f"req_{path.rsplit('/', 1)[1]}"
            payload: dict[str, Any] = _error_payload(code, "wsgi")
        else:
            code = 503 if number <= int(query.get("fail", ["0"])[0]) else 200
            payload = _error_payload(503, "wsgi") if code == 503 else {"seen": number}
            request_id = f"req_flaky_{number}"
        headers = [("content-type", "application/json"), ("x-request-id", request_id)]
        start_response(f"{code} {http.HTTPStatus(code).phrase}", headers)
        return [json.dumps(payload).encode()]

    return app


async def _asgi_status_typed() -> None:
    hits: Counter[str] = Counter()
    transport = AsyncResilientTransport(httpx.ASGITransport(app=asgi_app(hits)))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        with pytest.raises(NotFoundError) as excinfo:
            await client.get("/status/404")
    err = excinfo.value
    assert (err.status_code, err.code, err.message) == (404, "e404", "asgi 404")
    assert (err.request_id, err.attempts) == ("req_404", 1)
    assert hits["/status/404"] == 1


def test_asgi_status_becomes_typed_error(run: Callable[..., Any]) -> None:
    """ASGITransport inside ours: an app's 404 raises NotFoundError with its body and request id."""
    run(_asgi_status_typed)


async def _asgi_retried() -> None:
    hits: Counter[str] = Counter()
    events: list[RetryEvent] = []
    transport = AsyncResilientTransport(
        httpx.ASGITransport(app=asgi_app(hits)), on_retry=events.append
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/flaky", params={"fail": 2})
    assert response.status_code == 200
    assert response.json() == {"seen": 3}
    assert response.extensions["request_id"] == "req_flaky_3"
    assert [e.error.request_id for e in events] == ["req_flaky_1", "req_flaky_2"]
    assert hits["/flaky"] == 3


def test_asgi_app_failing_twice_is_retried(run: Callable[..., Any]) -> None:
    """ASGITransport inside ours: an app answering 503, 503, 200 is retried to the 200, ids picked up."""
    run(_asgi_retried)


async def _asgi_app_exception() -> None:
    hits: Counter[str] = Counter()
    transport = AsyncResilientTransport(httpx.ASGITransport(app=asgi_app(hits)))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        with pytest.raises(TransportError) as excinfo:
            await client.get("/boom")
    err = excinfo.value
    assert type(err) is TransportError
    assert isinstance(err.__cause__, AppError)
    assert "the ASGI app blew up" in err.message
    assert (err.attempts, err.retryable) == (1, False)
    assert hits["/boom"] == 1


def test_asgi_app_exception_is_typed_transport_error(run: Callable[..., Any]) -> None:
    """ASGITransport (raise_app_exceptions=True) inside ours: the app's exception is a TransportError's cause."""
    run(_asgi_app_exception)


async def _asgi_app_exception_as_500() -> None:
    hits: Counter[str] = Counter()
    inner = httpx.ASGITransport(app=asgi_app(hits), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=AsyncResilientTransport(inner), base_url="http://app"
    ) as client:
        with pytest.raises(InternalServerError) as excinfo:
            await client.get("/boom")
    assert excinfo.value.attempts == 3
    assert hits["/boom"] == 3


def test_asgi_app_exception_without_raise_is_retried_500(run: Callable[..., Any]) -> None:
    """ASGITransport(raise_app_exceptions=False) inside ours: the app's exception is a 500, retried."""
    run(_asgi_app_exception_as_500)


def test_wsgi_status_becomes_typed_error() -> None:
    """WSGITransport inside ours: an app's 404 raises NotFoundError with its body and request id."""
    hits: Counter[str] = Counter()
    transport = ResilientTransport(httpx.WSGITransport(app=wsgi_app(hits)))
    with (
        httpx.Client(transport=transport, base_url="http://app") as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get("/status/404")
    err = excinfo.value
    assert (err.status_code, err.code, err.message) == (404, "e404", "wsgi 404")
    assert (err.request_id, err.attempts) == ("req_404", 1)
    assert hits["/status/404"] == 1


def test_wsgi_app_failing_twice_is_retried() -> None:
    """WSGITransport inside ours: an app answering 503, 503, 200 is retried to the 200, ids picked up."""
    hits: Counter[str] = Counter()
    events: list[RetryEvent] = []
    transport = ResilientTransport(httpx.WSGITransport(app=wsgi_app(hits)), on_retry=events.append)
    with httpx.Client(transport=transport, base_url="http://app") as client:
        response = client.get("/flaky", params={"fail": 2})
    assert response.status_code == 200
    assert response.json() == {"seen": 3}
    assert response.extensions["request_id"] == "req_flaky_3"
    assert [e.error.request_id for e in events] == ["req_flaky_1", "req_flaky_2"]
    assert hits["/flaky"] == 3


def test_wsgi_app_exception_is_typed_transport_error() -> None:
    """WSGITransport inside ours: the app's exception is the cause of a TransportError, not raised raw."""
    hits: Counter[str] = Counter()
    transport = ResilientTransport(httpx.WSGITransport(app=wsgi_app(hits)))
    with (
        httpx.Client(transport=transport, base_url="http://app") as client,
        pytest.raises(TransportError) as excinfo,
    ):
        client.get("/boom")
    err = excinfo.value
    assert type(err) is TransportError
    assert isinstance(err.__cause__, AppError)
    assert "the WSGI app blew up" in err.message
    assert (err.attempts, err.retryable) == (1, False)
    assert hits["/boom"] == 1


# --- mounts per host ---------------------------------------------------------------------------


def localhost_url(server: LiveServer, path: str, **params: Any) -> str:
    """The live server's URL for `path`, by the name `localhost` instead of `127.0.0.1`."""
    return server.url(path, **params).replace("://127.0.0.1:", "://localhost:", 1)


def mounts(server: LiveServer, wrapped: Any, plain: Any) -> dict[str, Any]:
    return {server.base_url: wrapped, localhost_url(server, ""): plain}


def test_mount_wrapped_host_raises_after_retries(server: LiveServer) -> None:
    """A mount per host: through the wrapped host a failing route raises after 3 attempts."""
    sid = new_id()
    with (
        httpx.Client(mounts=mounts(server, ResilientTransport(), httpx.HTTPTransport())) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.get(server.url(f"/flaky/{sid}", fail=3))
    assert excinfo.value.attempts == 3
    assert seen(sid) == 3


def test_mount_plain_host_returns_the_503(server: LiveServer) -> None:
    """A mount per host: through the unwrapped host the same route returns a plain 503, once."""
    sid = new_id()
    with httpx.Client(mounts=mounts(server, ResilientTransport(), httpx.HTTPTransport())) as client:
        response = client.get(localhost_url(server, f"/flaky/{sid}", fail=3))
    assert response.status_code == 503
    assert "request_id" not in response.extensions
    assert seen(sid) == 1


async def _mounts_async(server: LiveServer) -> None:
    wrapped_sid, plain_sid = new_id(), new_id()
    table = mounts(server, AsyncResilientTransport(), httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(mounts=table) as client:
        with pytest.raises(ServiceUnavailableError) as excinfo:
            await client.get(server.url(f"/flaky/{wrapped_sid}", fail=3))
        response = await client.get(localhost_url(server, f"/flaky/{plain_sid}", fail=3))
    assert excinfo.value.attempts == 3
    assert seen(wrapped_sid) == 3
    assert response.status_code == 503
    assert seen(plain_sid) == 1


def test_mounts_per_host_async(server: LiveServer, run: Callable[..., Any]) -> None:
    """Async mounts per host: the wrapped host raises after 3 attempts, the plain one returns the 503 once."""
    run(_mounts_async, server)


# --- redirects ---------------------------------------------------------------------------------


def redirect_url(server: LiveServer, sid: str) -> str:
    """A 302 to `/flaky/{sid}`, which fails once with 503 and then succeeds."""
    return server.url("/status/302", location=f"/flaky/{sid}?fail=1")


def redirects_seen(server: LiveServer) -> int:
    return len([r for r in server.requests() if r.path == "/status/302"])


def test_follow_redirects_with_a_retried_target(server: LiveServer) -> None:
    """follow_redirects=True: a redirect to a route failing once ends at 200; redirect seen once, target twice."""
    sid = new_id()
    with httpx.Client(transport=ResilientTransport(), follow_redirects=True) as client:
        response = client.get(redirect_url(server, sid))
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert response.json()["seen"] == 2
    assert redirects_seen(server) == 1
    assert seen(sid) == 2


async def _follow_redirects_async(server: LiveServer) -> None:
    sid = new_id()
    async with httpx.AsyncClient(
        transport=AsyncResilientTransport(), follow_redirects=True
    ) as client:
        response = await client.get(redirect_url(server, sid))
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert redirects_seen(server) == 1
    assert seen(sid) == 2


def test_follow_redirects_with_a_retried_target_async(
    server: LiveServer, run: Callable[..., Any]
) -> None:
    """Async follow_redirects=True: the redirect is seen once, the target twice, the end is 200."""
    run(_follow_redirects_async, server)
