"""Our transports composed with what people stack them with: hishel's cache below and above
ours, respx's default (httpcore) mocker, in-process ASGI and WSGI apps, per-host mounts, and
httpx's redirect following.

The scenarios that `run` takes go through the sync transport, asyncio and trio alike: a sync
client stacks hishel's sync cache and a WSGI app, an async one its async cache and an ASGI app.
"""

from __future__ import annotations

import http
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import hishel
import hishel.httpx
import httpx
import pytest
import respx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from _support import flavour
from httpx_resilience import (
    InternalServerError,
    NetworkError,
    NotFoundError,
    ResilientTransport,
    RetryEvent,
    ServiceUnavailableError,
    TransportError,
)

from ._support import Runner, status_url
from .conftest import SCRIPTS, LiveServer, new_id

pytestmark = pytest.mark.timeout(15)

API = "https://api.example.com"
CACHED = {"from_cache": True, "revalidated": False, "stored": False}
REVALIDATED = {"from_cache": True, "revalidated": True, "stored": False}
STORED = {"from_cache": False, "revalidated": False, "stored": True}


@pytest.fixture
def run(mode: str) -> Runner:
    """Every mode, through httpx alone: hishel and respx are built on httpx."""
    return Runner(mode, flavour("httpx"))


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


def cache_transport(run: Runner, tmp_path: Path, next_transport: Any, **kwargs: Any) -> Any:
    """hishel's cache transport of the mode: its own sqlite storage sync, `MemoryStorage` async."""
    if run.is_async:
        return hishel.httpx.AsyncCacheTransport(
            next_transport=next_transport, storage=MemoryStorage(), **kwargs
        )
    return hishel.httpx.CacheTransport(
        next_transport=next_transport, storage=sqlite_storage(tmp_path), **kwargs
    )


def test_hishel_below_serves_repeat_get_from_cache(
    run: Runner, server: LiveServer, tmp_path: Path
) -> None:
    """hishel below ours: a second GET is served from the cache, the server saw one request."""

    async def scenario() -> None:
        sid = new_id()
        cache = cache_transport(run, tmp_path, run.http_transport())
        async with run.client(run.transport(cache)) as client:
            first = await client.get(server.url(f"/flaky/{sid}"))
            second = await client.get(server.url(f"/flaky/{sid}"))
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.extensions["caching"] == STORED
        assert second.extensions["caching"] == CACHED
        assert second.json() == first.json()
        assert seen(sid) == 1

    run(scenario)


def test_hishel_below_revalidation_304_serves_cached_200(
    run: Runner, server: LiveServer, tmp_path: Path
) -> None:
    """hishel below ours: a forced revalidation meets 304 and the caller gets the cached 200."""

    async def scenario() -> None:
        cache = cache_transport(run, tmp_path, run.http_transport(), rfc=True)
        async with run.client(run.transport(cache)) as client:
            first = await client.get(server.url("/etag"))
            second = await client.get(server.url("/etag"), headers={"cache-control": "no-cache"})
        assert first.extensions["caching"] == STORED
        assert second.status_code == 200
        assert second.json() == {"version": 1}
        assert second.extensions["caching"] == REVALIDATED
        assert second.headers["etag"] == '"v1"'
        sent = etag_requests(server)
        assert len(sent) == 2
        assert "if-none-match" not in sent[0]
        assert sent[1]["if-none-match"] == '"v1"'

    run(scenario)


def test_hishel_below_503_is_retried_not_cached(
    run: Runner, server: LiveServer, tmp_path: Path
) -> None:
    """hishel below ours: a 503 is not cached, our retry reaches the server and its 200 is cached."""

    async def scenario() -> None:
        sid = new_id()
        events: list[RetryEvent] = []
        cache = cache_transport(run, tmp_path, run.http_transport())
        async with run.client(run.transport(cache, on_retry=events.append)) as client:
            first = await client.get(server.url(f"/flaky/{sid}", fail=1))
            second = await client.get(server.url(f"/flaky/{sid}", fail=1))
        assert first.status_code == 200
        assert first.json()["seen"] == 2
        assert [e.reason for e in events] == ["status 503"]
        assert first.extensions["caching"] == STORED
        assert second.extensions["caching"] == CACHED
        assert second.json() == first.json()
        assert seen(sid) == 2

    run(scenario)


def test_hishel_above_revalidation_304_passes_through(
    run: Runner, server: LiveServer, tmp_path: Path
) -> None:
    """hishel above ours: the revalidation's 304 passes our transport untouched; hishel serves the cached body."""

    async def scenario() -> None:
        events: list[RetryEvent] = []
        cache = cache_transport(run, tmp_path, run.transport(on_retry=events.append), rfc=True)
        async with run.client(cache) as client:
            first = await client.get(server.url("/etag"))
            second = await client.get(server.url("/etag"), headers={"cache-control": "no-cache"})
        assert first.extensions["caching"] == STORED
        assert second.status_code == 200
        assert second.json() == {"version": 1}
        assert second.extensions["caching"] == REVALIDATED
        assert [h.get("if-none-match") for h in etag_requests(server)] == [None, '"v1"']
        assert events == []

    run(scenario)


def test_hishel_above_404_raises_not_found_unchanged(
    run: Runner, server: LiveServer, tmp_path: Path
) -> None:
    """hishel above ours: our NotFoundError propagates through hishel as it is, and isn't cached."""

    async def scenario() -> None:
        url = status_url(server.base_url, 404)
        async with run.client(cache_transport(run, tmp_path, run.transport())) as client:
            for _ in range(2):
                with pytest.raises(NotFoundError) as excinfo:
                    await client.get(url)
                err = excinfo.value
                assert type(err) is NotFoundError
                assert (err.status_code, err.code, err.request_id) == (404, "e404", "req_404")
                assert err.message == "boom 404"
                assert err.attempts == 1
        assert len([r for r in server.requests() if r.path == "/status/404"]) == 2

    run(scenario)


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


# --- respx -------------------------------------------------------------------------------------


def test_respx_503_503_200_calls_route_three_times(run: Runner) -> None:
    """respx (httpcore mocker) under our transport: 503, 503, 200 is three calls and a 200."""

    async def scenario() -> None:
        with respx.mock(base_url=API) as router:
            route = router.get("/thing").mock(
                side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(200)]
            )
            async with run.client() as client:
                response = await client.get(f"{API}/thing")
        assert response.status_code == 200
        assert route.call_count == 3

    run(scenario)


def test_respx_connect_error_ends_in_network_error(run: Runner) -> None:
    """respx raising ConnectError on every call: NetworkError after 3 attempts, the cause kept."""

    async def scenario() -> None:
        with respx.mock(base_url=API) as router:
            route = router.get("/thing").mock(side_effect=httpx.ConnectError("refused"))
            async with run.client() as client:
                with pytest.raises(NetworkError) as excinfo:
                    await client.get(f"{API}/thing")
        err = excinfo.value
        assert (err.attempts, err.phase) == (3, "connect")
        assert isinstance(err.__cause__, httpx.ConnectError)
        assert route.call_count == 3

    run(scenario)


def test_respx_post_keeps_one_idempotency_key(run: Runner) -> None:
    """respx records the same Idempotency-Key on all three calls of a retried POST."""

    async def scenario() -> None:
        with respx.mock(base_url=API) as router:
            route = router.post("/thing").mock(
                side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(201)]
            )
            async with run.client() as client:
                response = await client.post(f"{API}/thing", json={"n": 1})
        assert response.status_code == 201
        keys = [call.request.headers.get("idempotency-key") for call in route.calls]
        assert len(keys) == 3
        assert keys[0]
        assert keys == [keys[0]] * 3
        assert [call.request.content for call in route.calls] == [b'{"n":1}'] * 3

    run(scenario)


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


def app_transport(run: Runner, hits: Counter[str], **kwargs: Any) -> Any:
    """The in-process app of the mode, `hits` counting its paths: WSGI sync, ASGI async."""
    if run.is_async:
        return httpx.ASGITransport(app=asgi_app(hits), **kwargs)
    return httpx.WSGITransport(app=wsgi_app(hits), **kwargs)


def app_label(run: Runner) -> str:
    """How the mode's app names itself in its error messages."""
    return run.pick("wsgi", "asgi")


def test_app_status_becomes_typed_error(run: Runner) -> None:
    """WSGITransport (sync) or ASGITransport (async) inside ours: an app's 404 raises NotFoundError with its body and request id."""

    async def scenario() -> None:
        hits: Counter[str] = Counter()
        transport = run.transport(app_transport(run, hits))
        async with run.client(transport, base_url="http://app") as client:
            with pytest.raises(NotFoundError) as excinfo:
                await client.get("/status/404")
        err = excinfo.value
        assert (err.status_code, err.code, err.message) == (404, "e404", f"{app_label(run)} 404")
        assert (err.request_id, err.attempts) == ("req_404", 1)
        assert hits["/status/404"] == 1

    run(scenario)


def test_app_failing_twice_is_retried(run: Runner) -> None:
    """An in-process app answering 503, 503, 200 is retried to the 200, ids picked up."""

    async def scenario() -> None:
        hits: Counter[str] = Counter()
        events: list[RetryEvent] = []
        transport = run.transport(app_transport(run, hits), on_retry=events.append)
        async with run.client(transport, base_url="http://app") as client:
            response = await client.get("/flaky", params={"fail": 2})
        assert response.status_code == 200
        assert response.json() == {"seen": 3}
        assert response.extensions["request_id"] == "req_flaky_3"
        assert [e.error.request_id for e in events] == ["req_flaky_1", "req_flaky_2"]
        assert hits["/flaky"] == 3

    run(scenario)


def test_app_exception_is_typed_transport_error(run: Runner) -> None:
    """An in-process app's exception (ASGITransport with raise_app_exceptions=True) is the cause of a TransportError, not raised raw."""

    async def scenario() -> None:
        hits: Counter[str] = Counter()
        transport = run.transport(app_transport(run, hits))
        async with run.client(transport, base_url="http://app") as client:
            with pytest.raises(TransportError) as excinfo:
                await client.get("/boom")
        err = excinfo.value
        assert type(err) is TransportError
        assert isinstance(err.__cause__, AppError)
        assert f"the {app_label(run).upper()} app blew up" in err.message
        assert (err.attempts, err.retryable) == (1, False)
        assert hits["/boom"] == 1

    run(scenario)


@pytest.mark.parametrize("mode", ["asyncio", "trio"])
def test_asgi_app_exception_without_raise_is_retried_500(run: Runner) -> None:
    """ASGITransport(raise_app_exceptions=False) inside ours: the app's exception is a 500, retried."""

    async def scenario() -> None:
        hits: Counter[str] = Counter()
        inner = app_transport(run, hits, raise_app_exceptions=False)
        async with run.client(run.transport(inner), base_url="http://app") as client:
            with pytest.raises(InternalServerError) as excinfo:
                await client.get("/boom")
        assert excinfo.value.attempts == 3
        assert hits["/boom"] == 3

    run(scenario)


# --- mounts per host ---------------------------------------------------------------------------


def localhost_url(server: LiveServer, path: str, **params: Any) -> str:
    """The live server's URL for `path`, by the name `localhost` instead of `127.0.0.1`."""
    return server.url(path, **params).replace("://127.0.0.1:", "://localhost:", 1)


def mounts(server: LiveServer, wrapped: Any, plain: Any) -> dict[str, Any]:
    return {server.base_url: wrapped, localhost_url(server, ""): plain}


def test_mount_wrapped_host_raises_after_retries(run: Runner, server: LiveServer) -> None:
    """A mount per host: through the wrapped host a failing route raises after 3 attempts."""

    async def scenario() -> None:
        sid = new_id()
        table = mounts(server, run.transport(), run.http_transport())
        async with run.client(None, mounts=table) as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                await client.get(server.url(f"/flaky/{sid}", fail=3))
        assert excinfo.value.attempts == 3
        assert seen(sid) == 3

    run(scenario)


def test_mount_plain_host_returns_the_503(run: Runner, server: LiveServer) -> None:
    """A mount per host: through the unwrapped host the same route returns a plain 503, once."""

    async def scenario() -> None:
        sid = new_id()
        table = mounts(server, run.transport(), run.http_transport())
        async with run.client(None, mounts=table) as client:
            response = await client.get(localhost_url(server, f"/flaky/{sid}", fail=3))
        assert response.status_code == 503
        assert "request_id" not in response.extensions
        assert seen(sid) == 1

    run(scenario)


# --- redirects ---------------------------------------------------------------------------------


def redirect_url(server: LiveServer, sid: str) -> str:
    """A 302 to `/flaky/{sid}`, which fails once with 503 and then succeeds."""
    return server.url("/status/302", location=f"/flaky/{sid}?fail=1")


def redirects_seen(server: LiveServer) -> int:
    return len([r for r in server.requests() if r.path == "/status/302"])


def test_follow_redirects_with_a_retried_target(run: Runner, server: LiveServer) -> None:
    """follow_redirects=True: a redirect to a route failing once ends at 200; redirect seen once, target twice."""

    async def scenario() -> None:
        sid = new_id()
        async with run.client(follow_redirects=True) as client:
            response = await client.get(redirect_url(server, sid))
        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [302]
        assert response.json()["seen"] == 2
        assert redirects_seen(server) == 1
        assert seen(sid) == 2

    run(scenario)
