"""Test doubles and the one-scenario-three-modes caller shared by the unit tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import httpx

from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    ErrorPolicy,
    IdempotencyPolicy,
    RequestIdPolicy,
    ResilientTransport,
    RetryEvent,
    RetryPolicy,
)
from httpx_resilience._events import ResilienceEvent
from httpx_resilience._settings import Settings
from httpx_resilience._state import CLEAR, Rules, Verdict

Caller = Callable[..., httpx.Response]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body served in chunks, sync or async, that records how far it was read and closed.

    `fail_after` raises `error` once that many chunks went out.
    """

    def __init__(
        self,
        chunks: list[bytes],
        *,
        fail_after: int | None = None,
        error: Exception | None = None,
        close_error: Exception | None = None,
    ) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.error = error
        self.close_error = close_error
        self.served = 0
        self.closed = False

    def _next(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.served >= self.fail_after:
                assert self.error is not None
                raise self.error
            self.served += 1
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        yield from self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._next():
            yield chunk

    def close(self) -> None:
        self.closed = True
        if self.close_error is not None:
            raise self.close_error

    async def aclose(self) -> None:
        self.close()


class FakeClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Inner(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An inner transport for both worlds: a handler returns a response or raises."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.closed = 0
        self.entered = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1

    def __enter__(self) -> Inner:
        self.entered += 1
        return self

    async def __aenter__(self) -> Inner:
        self.entered += 1
        return self


def _sync_call(
    inner: Any, method: str, url: str, policies: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    with httpx.Client(transport=ResilientTransport(inner, **policies)) as client:
        response = client.request(method, url, **kwargs)
        response.read()
        return response


async def _async_call(
    inner: Any, method: str, url: str, policies: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    async with httpx.AsyncClient(transport=AsyncResilientTransport(inner, **policies)) as client:
        response = await client.request(method, url, **kwargs)
        await response.aread()
        return response


def make_settings(**changes: Any) -> Settings:
    """The transport's default policies, with `changes`, as the flow sees them."""
    base = Settings(
        errors=ErrorPolicy(),
        request_ids=RequestIdPolicy(),
        retry=RetryPolicy(),
        idempotency=IdempotencyPolicy(),
    )
    return dataclasses.replace(base, **changes)


@dataclasses.dataclass(frozen=True)
class Flavour:
    """One package the transports serve: httpx, or its fork httpx2, with its transports."""

    name: str
    httpx: ModuleType
    ResilientTransport: Any
    AsyncResilientTransport: Any


def flavour(name: str) -> Flavour:
    """The `Flavour` called `name` ("httpx" or "httpx2")."""
    if name == "httpx":
        return Flavour(name, httpx, ResilientTransport, AsyncResilientTransport)
    import httpx2

    import httpx_resilience.httpx2 as package2

    return Flavour(name, httpx2, package2.ResilientTransport, package2.AsyncResilientTransport)
