"""Fixtures: one scenario run through the sync transport, asyncio and trio alike."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from _support import Caller, Flavour, _async_call, _sync_call, flavour
from httpx_resilience.testing import no_wait


@pytest.fixture(params=["sync", "asyncio", "trio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def call(mode: str) -> Caller:
    """`call(inner, method="GET", url=..., policies={...}, **request_kwargs)` in every mode."""

    def run(
        inner: Any,
        method: str = "GET",
        url: str = "https://api.example.com/v1/thing",
        policies: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        policies = policies or {}
        if mode == "sync":
            return _sync_call(inner, method, url, policies, **kwargs)

        async def go() -> httpx.Response:
            return await _async_call(inner, method, url, policies, **kwargs)

        if mode == "asyncio":
            return asyncio.run(go())
        return trio.run(go)

    return run


@pytest.fixture(params=["httpx", "httpx2"])
def hx(request: pytest.FixtureRequest) -> Flavour:
    """The same test through httpx and through httpx2, so the two can't drift."""
    return flavour(str(request.param))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    """Retries run without their waits in every test: the delays are still computed and checked."""
    with no_wait():
        yield


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An OpenTelemetry in-memory reader of the transport's instruments, made from this test's
    own provider (the global one can be set once per process) and put where the transport
    finds them."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from httpx_resilience import _metrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    instruments = _metrics.Instruments(provider.get_meter("httpx_resilience"))
    monkeypatch.setattr(_metrics, "_made", instruments)
    yield reader
    provider.shutdown()
