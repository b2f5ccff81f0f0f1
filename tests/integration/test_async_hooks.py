"""`async def` hooks on the async transport are awaited: `on_retry`, `on_event`,
`ErrorPolicy.classify` and `ErrorPolicy.parse_body` (issue 14, item 4), under asyncio and trio,
on httpx and httpx2, against the real server. (The sync transport refuses them:
tests/test_transport.py.)"""

from __future__ import annotations

import functools
import gc
import logging
import warnings
from typing import Any

import anyio
import pytest

from httpx_resilience import (
    ConfigurationError,
    ErrorPolicy,
    NotFoundError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
)
from httpx_resilience.testing import no_wait

from ._support import Runner
from .conftest import LiveServer, new_id

pytestmark = pytest.mark.parametrize("mode", ["asyncio", "trio"])


class JobFailedError(ServerError):
    """A 200 whose body says the job failed."""


def test_async_on_retry_and_on_event_are_awaited(run: Runner, server: LiveServer) -> None:
    """Both hooks run to their end (past an await of their own) before the retry's wait and
    the response's hand-on, in the order things happened."""
    heard: list[str] = []

    async def on_retry(event: Any) -> None:
        await anyio.sleep(0)
        heard.append(f"retry {event.attempt} {event.reason}")

    async def on_event(event: Any) -> None:
        await anyio.sleep(0)
        heard.append(event.kind)

    async def scenario() -> None:
        transport = run.transport(on_retry=on_retry, on_event=on_event)
        async with run.client(transport=transport) as client:
            response = await client.get(server.url(f"/flaky/{new_id()}", fail=1))
        assert response.status_code == 200

    with no_wait():
        run(scenario)
    assert heard == ["attempt", "retry 1 status 503", "retry", "attempt"]


def test_async_classify_is_awaited(run: Runner, server: LiveServer) -> None:
    """An async classify sees the 200's body and its class is raised."""

    async def classify(response: Any) -> type[ServerError] | None:
        await anyio.sleep(0)
        data = response.json()
        return JobFailedError if data.get("status") == 200 else None

    async def scenario() -> None:
        transport = run.transport(errors=ErrorPolicy(classify=classify))
        async with run.client(transport=transport) as client:
            with pytest.raises(JobFailedError) as excinfo:
                await client.get(server.url("/status/200"))
        assert excinfo.value.status_code == 200

    run(scenario)


def test_async_parse_body_is_awaited(run: Runner, server: LiveServer) -> None:
    """An async parse_body gives the error its message and code."""

    async def parse_body(response: Any) -> dict[str, str]:
        await anyio.sleep(0)
        return {"message": f"parsed {response.json()['error']['code']}", "code": "mine"}

    async def scenario() -> None:
        transport = run.transport(errors=ErrorPolicy(parse_body=parse_body))
        async with run.client(transport=transport) as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                await client.get(server.url(f"/flaky/{new_id()}", fail=9))
        err = excinfo.value
        assert (err.message, err.code, err.attempts) == ("parsed scripted", "mine", 3)

    with no_wait():
        run(scenario)


def test_async_hooks_given_per_request_are_awaited(run: Runner, server: LiveServer) -> None:
    """An async classify in extensions["resilience"] is awaited too; the next request, without
    it, is not classified."""

    async def classify(response: Any) -> type[ServerError]:
        await anyio.sleep(0)
        return JobFailedError

    async def scenario() -> None:
        override = {"resilience": {"errors": ErrorPolicy(classify=classify)}}
        async with run.client() as client:
            with pytest.raises(JobFailedError):
                await client.get(server.url("/status/200"), extensions=override)
            assert (await client.get(server.url("/status/200"))).status_code == 200

    run(scenario)


def test_async_hooks_that_raise(
    run: Runner, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An async on_event or on_retry that raises is logged by its type and the request goes on;
    an async parse_body that raises leaves the built-in parser; an async classify that raises
    is a ConfigurationError, as a plain one's is."""

    async def broken(*args: Any) -> Any:
        await anyio.sleep(0)
        raise RuntimeError("secret-in-hook")

    async def scenario() -> None:
        transport = run.transport(
            on_retry=broken, on_event=broken, errors=ErrorPolicy(parse_body=broken)
        )
        async with run.client(transport=transport) as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                await client.get(server.url(f"/flaky/{new_id()}", fail=9))
            assert excinfo.value.code == "scripted"  # the built-in parser's reading
        classifying = run.transport(errors=ErrorPolicy(classify=broken))
        async with run.client(transport=classifying) as client:
            with pytest.raises(ConfigurationError, match="classify raised RuntimeError"):
                await client.get(server.url("/status/200"))

    with no_wait(), caplog.at_level(logging.WARNING, logger="httpx_resilience"):
        run(scenario)
    messages = [r.getMessage() for r in caplog.records]
    assert "on_retry hook raised RuntimeError; the retry goes ahead" in messages
    assert "on_event hook raised RuntimeError; the request goes on" in messages
    assert "parse_body hook raised RuntimeError; the default parser is used" in messages
    assert not any("secret-in-hook" in m for m in messages)


def test_cancelled_while_a_hook_is_awaited(run: Runner, server: LiveServer) -> None:
    """Cancelled inside an async on_event (the response's "attempt" event): the response is
    closed, and the one pooled connection serves the next request."""

    async def slow_hook(event: Any) -> None:
        if event.kind == "attempt":
            await anyio.sleep(30)

    async def scenario() -> None:
        limits = run.hx.httpx.Limits(max_connections=1)
        inner = run.http_transport(limits=limits)
        transport = run.transport(inner, on_event=slow_hook, retry=RetryPolicy(max_attempts=1))
        async with run.client(transport=transport) as client:
            with anyio.move_on_after(0.3) as scope:
                await client.get(server.url("/echo"))
            assert scope.cancelled_caught
            plain = run.transport(inner)
            async with run.client(transport=plain) as again:
                with anyio.fail_after(2):
                    assert (await again.get(server.url("/echo"))).status_code == 200

    run(scenario)


def test_a_plain_hook_still_works_on_the_async_transport(run: Runner, server: LiveServer) -> None:
    """A plain on_event is called as before."""
    kinds: list[str] = []

    async def scenario() -> None:
        transport = run.transport(on_event=lambda event: kinds.append(event.kind))
        async with run.client(transport=transport) as client:
            await client.get(server.url("/echo"))

    run(scenario)
    assert kinds == ["attempt"]


def _traced(hook: Any) -> Any:
    """An ordinary decorator around an async hook (logging, tracing): the wrapper is a plain
    function that returns the coroutine."""

    @functools.wraps(hook)
    def wrapper(*args: Any) -> Any:
        return hook(*args)

    return wrapper


def test_hooks_that_return_a_coroutine_are_awaited(run: Runner, server: LiveServer) -> None:
    """A classify or parse_body that is no `async def` itself but returns a coroutine (behind
    a decorator, a lambda) is awaited as an async one is, leaving no "never awaited" warning."""

    async def classify(response: Any) -> type[ServerError] | None:
        await anyio.sleep(0)
        return JobFailedError if response.status_code == 200 else None

    async def parse_body(response: Any) -> dict[str, str]:
        await anyio.sleep(0)
        return {"message": "parsed by the hook", "code": "hook_code"}

    async def scenario() -> None:
        for errors in (
            ErrorPolicy(classify=_traced(classify)),
            ErrorPolicy(classify=lambda response: classify(response)),
        ):
            async with run.client(transport=run.transport(errors=errors)) as client:
                with pytest.raises(JobFailedError):
                    await client.get(server.url("/status/200"))
        errors = ErrorPolicy(parse_body=_traced(parse_body))
        async with run.client(transport=run.transport(errors=errors)) as client:
            with pytest.raises(NotFoundError) as excinfo:
                await client.get(server.url("/status/404"))
        assert (excinfo.value.message, excinfo.value.code) == ("parsed by the hook", "hook_code")

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        run(scenario)
        gc.collect()
