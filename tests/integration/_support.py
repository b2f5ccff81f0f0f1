"""Shared expectations of the integration tests, and `Runner`: one scenario in every mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx
import trio

from _support import Flavour
from httpx_resilience import (
    APIError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ClientError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    StatusError,
    UnprocessableEntityError,
)

# (status, the exact class it raises, the class's stable default code)
STATUS_CASES: list[tuple[int, type[StatusError], str]] = [
    (400, BadRequestError, "invalid_request"),
    (401, AuthenticationError, "authentication_failed"),
    (402, PaymentRequiredError, "payment_required"),
    (403, PermissionDeniedError, "permission_denied"),
    (404, NotFoundError, "not_found"),
    (405, ClientError, "client_error"),
    (409, ConflictError, "conflict"),
    (413, PayloadTooLargeError, "payload_too_large"),
    (418, ClientError, "client_error"),
    (422, UnprocessableEntityError, "unprocessable_entity"),
    (429, RateLimitError, "rate_limited"),
    (500, InternalServerError, "internal_error"),
    (501, ServerError, "server_error"),
    (502, BadGatewayError, "bad_gateway"),
    (503, ServiceUnavailableError, "service_unavailable"),
    (504, GatewayTimeoutError, "gateway_timeout"),
]
STATUS_IDS = [str(case[0]) for case in STATUS_CASES]


def status_url(base: str, status: int) -> str:
    """A /status URL whose OpenAI-style body and headers identify the status."""
    query = httpx.QueryParams(
        {
            "fmt": "openai",
            "message": f"boom {status}",
            "error_code": f"e{status}",
            "x-request-id": f"req_{status}",
        }
    )
    return f"{base}/status/{status}?{query}"


def check_status_error(
    err: BaseException,
    status: int,
    cls: type[StatusError],
    request: httpx.Request,
    url: str,
) -> None:
    """Everything a status error built from `status_url(status)` must carry."""
    assert type(err) is cls
    assert isinstance(err, StatusError)
    assert isinstance(err, httpx.HTTPStatusError)
    assert isinstance(err, ClientError if status < 500 else ServerError)
    assert err.status_code == status
    assert err.message == f"boom {status}"
    assert err.code == f"e{status}"
    assert err.request_id == f"req_{status}"
    assert err.request is request
    assert err.response is not None
    assert err.response.status_code == status
    assert err.response.json()["error"]["message"] == f"boom {status}"
    assert err.method == "GET"
    # Compared as parsed: how the query is re-encoded is `test_secrets`' business.
    assert err.url is not None
    reported, sent = httpx.URL(err.url), httpx.URL(url)
    assert (reported.host, reported.path, reported.params) == (sent.host, sent.path, sent.params)
    # A GET meeting a retry status (429, 5xx) is tried the default 3 times, others once.
    attempts = 3 if status in RetryPolicy().retry_statuses else 1
    assert err.attempts == attempts
    assert [(h.status_code, h.error, h.request_id) for h in err.history] == [
        (status, cls.__name__, f"req_{status}")
    ] * attempts
    assert [h.delay > 0 for h in err.history] == [True] * (attempts - 1) + [False]
    text = str(err)
    for part in (f"e{status}", f"boom {status}", str(status), f"req_{status}"):
        assert part in text


def leaks(canary: str, err: APIError) -> list[str]:
    """The places among an error's public faces where `canary` shows."""
    import json

    faces = {
        "str": str(err),
        "repr": repr(err),
        "to_dict": json.dumps(err.to_dict()),
        "history": repr(err.history),
    }
    return [name for name, text in faces.items() if canary in text]


def check_one_key_three_attempts(data: dict[str, Any], payload: bytes) -> str:
    """A /flaky answer after 503, 503, 200: three attempts, one key, the same body each time."""
    assert data["seen"] == 3
    key = data["keys"][0]
    assert key
    assert data["keys"] == [key] * 3
    assert data["attempts"] == ["1", "2", "3"]
    assert data["bodies"] == [payload.decode()] * 3
    return str(key)


# --- One scenario, every mode ------------------------------------------------------------------

T = TypeVar("T")
_OWN = object()  # `Runner.client`'s default transport: the mode's resilient one


class Client:
    """A sync or an async client behind one awaitable API, so one scenario serves every mode.

    In sync mode every method calls the sync client and returns without suspending, so the
    scenario's coroutine runs to its end with no event loop at all (`Runner.__call__`).
    """

    def __init__(self, raw: Any, is_async: bool) -> None:
        self.raw = raw  # the httpx(2) Client or AsyncClient itself
        self.is_async = is_async

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.raw, name)(*args, **kwargs)
        return await result if self.is_async else result

    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        request: httpx.Request = self.raw.build_request(method, url, **kwargs)
        return request

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        return await self._call("send", request, **kwargs)

    async def request(self, method: str, url: Any, **kwargs: Any) -> httpx.Response:
        return await self._call("request", method, url, **kwargs)

    async def get(self, url: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    @asynccontextmanager
    async def stream(self, method: str, url: Any, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        if self.is_async:
            async with self.raw.stream(method, url, **kwargs) as response:
                yield response
        else:
            with self.raw.stream(method, url, **kwargs) as response:
                yield response

    async def read(self, response: httpx.Response) -> bytes:
        return await response.aread() if self.is_async else response.read()

    async def iter_bytes(self, response: httpx.Response) -> AsyncIterator[bytes]:
        if self.is_async:
            async for piece in response.aiter_bytes():
                yield piece
        else:
            for piece in response.iter_bytes():
                yield piece

    async def iter_raw(self, response: httpx.Response) -> AsyncIterator[bytes]:
        if self.is_async:
            async for piece in response.aiter_raw():
                yield piece
        else:
            for piece in response.iter_raw():
                yield piece


def _run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a sync-mode scenario) to its end, without a loop."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise AssertionError("a sync-mode scenario suspended: it awaited an event loop's object")


async def _coroutine(scenario: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await scenario(*args)


class Runner:
    """Runs a scenario, written once as a coroutine function, in `mode` with `hx`'s package.

    "sync" drives the coroutine by hand (every await is a sync call, see `Client`), "asyncio"
    and "trio" run it under that event loop. The scenario builds what differs between the
    sync and the async world through the runner: transports, clients, sleeps, one-shot bodies.
    """

    def __init__(self, mode: str, hx: Flavour) -> None:
        assert mode in ("sync", "asyncio", "trio"), mode
        self.mode = mode
        self.hx = hx

    @property
    def is_async(self) -> bool:
        return self.mode != "sync"

    def __call__(self, scenario: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self.mode == "asyncio":
            return asyncio.run(_coroutine(scenario, *args))
        if self.mode == "trio":
            return trio.run(scenario, *args)
        return _run_to_end(_coroutine(scenario, *args))

    def pick(self, sync: T, asynchronous: T) -> T:
        """The one of two values that belongs to the mode."""
        return asynchronous if self.is_async else sync

    def transport(self, *args: Any, **kwargs: Any) -> Any:
        """The mode's resilient transport of `hx`'s package."""
        return self.pick(self.hx.ResilientTransport, self.hx.AsyncResilientTransport)(
            *args, **kwargs
        )

    def http_transport(self, **kwargs: Any) -> Any:
        """The mode's plain transport of `hx`'s package."""
        package = self.hx.httpx
        return self.pick(package.HTTPTransport, package.AsyncHTTPTransport)(**kwargs)

    @property
    def sleep(self) -> Callable[[float], Any]:
        """A real sleep of the mode, for a transport's `sleep=`."""
        return self.pick(time.sleep, anyio.sleep)

    def one_shot(self, chunks: Any) -> Any:
        """The iterable `chunks` as a body the transport cannot rewind: a generator of the mode."""
        if not self.is_async:
            return (chunk for chunk in chunks)

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return body()

    @asynccontextmanager
    async def client(self, transport: Any = _OWN, **kwargs: Any) -> AsyncIterator[Client]:
        """A client of the mode, through `transport` (the mode's resilient one unless given)."""
        if transport is _OWN:
            transport = self.transport()
        if transport is not None:
            kwargs["transport"] = transport
        package = self.hx.httpx
        if self.is_async:
            async with package.AsyncClient(**kwargs) as raw:
                yield Client(raw, is_async=True)
        else:
            with package.Client(**kwargs) as raw:
                yield Client(raw, is_async=False)
