"""The two transports: thin loops that carry out what `request_flow` decides.

Each wraps an inner httpx transport (by default httpx's own, built from the keyword arguments
it was given), sends, reads and closes as the flow commands, and wraps the body of the
response it hands on so a failure mid-body is typed too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, TypeVar, cast

import httpx

from . import _waits
from ._backend import HTTPX, Backend
from ._build import stream_error
from ._errors import APIError, ConfigurationError
from ._events import ResilienceEvent
from ._flow import (
    NO_OUTCOME,
    After,
    Before,
    Body,
    Context,
    Flow,
    ReadBody,
    Send,
    Settings,
    Sleep,
    Spend,
    accept,
    outcome_of,
    plan_request,
    request_flow,
)
from ._guard import CircuitBreaker, MemoryState, RetryBudget, Rules, State, clear
from ._idempotency import IdempotencyPolicy
from ._policies import ErrorPolicy, RequestIdPolicy
from ._retry import RetryEvent, RetryPolicy
from ._streams import (
    AsyncMappedStream,
    SyncMappedStream,
    aread_prefix,
    guard_decoding,
    read_prefix,
)

__all__ = ["AsyncDriver", "AsyncResilientTransport", "ResilientTransport", "SyncDriver"]

_S = TypeVar("_S", bound="SyncDriver")
_A = TypeVar("_A", bound="AsyncDriver")


def _settings(
    retry: object,
    idempotency: object,
    request_ids: object,
    errors: object,
    hooks: Mapping[str, object],
    backend: Backend,
    rules: Rules,
) -> Settings:
    for name, value, expected in (
        ("retry", retry, RetryPolicy),
        ("idempotency", idempotency, IdempotencyPolicy),
        ("request_ids", request_ids, RequestIdPolicy),
        ("errors", errors, ErrorPolicy),
    ):
        if not isinstance(value, expected):
            raise ConfigurationError(f"{name} must be a {expected.__name__}, got {value!r}")
    for name, hook in hooks.items():
        if hook is not None and not callable(hook):
            raise ConfigurationError(f"{name} must be None or a callable, got {hook!r}")
    return Settings(
        errors=errors,  # type: ignore[arg-type]
        request_ids=request_ids,  # type: ignore[arg-type]
        retry=retry,  # type: ignore[arg-type]
        idempotency=idempotency,  # type: ignore[arg-type]
        backend=backend,
        rules=rules,
    )


def _rules(budget: object, breaker: object, pacing: object) -> Rules:
    if budget is not None and not isinstance(budget, RetryBudget):
        raise ConfigurationError(f"budget must be a RetryBudget or None, got {budget!r}")
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigurationError(f"breaker must be a CircuitBreaker or None, got {breaker!r}")
    if not isinstance(pacing, bool):
        raise ConfigurationError(f"pacing must be a bool, got {pacing!r}")
    return Rules(budget=budget, breaker=breaker, pacing=pacing)


def _state(state: object) -> State:
    if state is None:
        return MemoryState()
    if isinstance(state, type) or not (
        hasattr(state, "sync_store") and hasattr(state, "async_store")
    ):
        raise ConfigurationError(
            "state must be a MemoryState or a RedisState instance, got "
            + (f"the class {state.__name__}" if isinstance(state, type) else type(state).__name__)
        )
    return cast(State, state)


def _check_sleep(sleep: object) -> None:
    if sleep is not None and not callable(sleep):
        raise ConfigurationError(f"sleep must be None or a callable, got {sleep!r}")


def _inner(
    transport: Any, kwargs: dict[str, Any], expected: type, default: type, package: str
) -> Any:
    if transport is None:
        try:
            return default(**kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"{default.__name__}: {exc}") from exc
    if kwargs:
        raise ConfigurationError(
            f"keyword arguments {sorted(kwargs)} configure the default transport; "
            "set them on the transport you pass instead"
        )
    if not isinstance(transport, expected):
        raise ConfigurationError(
            # Named by package: the openai SDK rewrites httpx2.BaseTransport's __module__.
            f"transport must be an {package}.{expected.__name__}, got {transport!r}"
        )
    return transport


class _StreamFailure:
    """Builds the typed error for a body that fails after the response was handed on."""

    __slots__ = ("_context", "_request", "_request_id", "_status_code")

    def __init__(self, request: httpx.Request, context: Context, response: httpx.Response) -> None:
        self._request = request
        self._context = context
        self._status_code = response.status_code
        self._request_id = response.extensions.get("request_id")

    def __call__(self, exc: BaseException) -> APIError:
        plan, attempt, history = self._context
        info = plan.info(self._request, attempt, history)
        return stream_error(exc, info, self._status_code, self._request_id)


class SyncDriver:
    """What `ResilientTransport` does, for whichever package (`Backend`) it is made for.

    The httpx and httpx2 transports are this with the package's `BaseTransport` added.
    """

    _backend: ClassVar[Backend] = HTTPX

    def __init__(
        self,
        transport: Any = None,
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing is safe
        idempotency: IdempotencyPolicy = IdempotencyPolicy(),  # noqa: B008
        request_ids: RequestIdPolicy = RequestIdPolicy(),  # noqa: B008
        errors: ErrorPolicy = ErrorPolicy(),  # noqa: B008
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Callable[[float], None] | None = None,
        budget: RetryBudget | None = RetryBudget(),  # noqa: B008
        breaker: CircuitBreaker | None = None,
        pacing: bool = False,
        state: State | None = None,
        on_event: Callable[[ResilienceEvent], None] | None = None,
        **transport_kwargs: Any,
    ) -> None:
        backend = self._backend
        rules = self._rules = _rules(budget, breaker, pacing)
        hooks = {"on_retry": on_retry, "on_event": on_event}
        self._settings = _settings(retry, idempotency, request_ids, errors, hooks, backend, rules)
        self._on_retry = on_retry
        self._on_event = on_event
        # The first attempt may skip the flow's generator unless every step must be told.
        self._direct = on_event is None
        self._store = _state(state).sync_store()
        _check_sleep(sleep)
        self._sleep = sleep or _waits.sleep
        self._transport: Any = _inner(
            transport, transport_kwargs, backend.transport, backend.default_transport, backend.name
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        plan = plan_request(request, self._settings)
        store, rules, host = self._store, self._rules, plan.host or ""
        verdict = None if plan.host is None else store.before(host, rules, True)
        # The response of the attempt under way until it is closed or handed on: whatever
        # else ends the attempt (an error, a hook raising, KeyboardInterrupt) closes it here.
        open_: httpx.Response | None = None
        try:
            first: object = NO_OUTCOME
            if self._direct and plan.direct and clear(verdict):
                # The first attempt without the flow's generator: most requests succeed at
                # once, and `accept` is the same decision the flow would make.
                outcome: Any
                try:
                    outcome = open_ = self._transport.handle_request(request)
                except Exception as exc:
                    outcome = exc
                if rules.watches:
                    probe = verdict is not None and verdict.probe
                    store.after(host, rules, *outcome_of(outcome, rules), probe)
                if open_ is not None:
                    _, encoded, hand_on = accept(plan, request, open_)
                    if hand_on:
                        context = plan.context(1, ())
                        return _typed(request, open_, encoded, context, self._backend.sync_mapped)
                first = outcome
            flow: Flow = request_flow(
                request,
                self._settings,
                on_retry=self._on_retry,
                on_event=self._on_event,
                plan=plan,
                first=first,
                verdict=verdict,
            )
            command = next(flow)
            while True:
                if isinstance(command, Send):
                    try:
                        open_ = self._transport.handle_request(command.request)
                    except Exception as exc:
                        command = flow.throw(exc)
                    else:
                        command = flow.send(open_)
                elif isinstance(command, ReadBody):
                    command = flow.send(
                        Body(*read_prefix(command.response, command.limit, self._backend))
                    )
                elif isinstance(command, Sleep):
                    self._sleep(command.delay)
                    command = flow.send(None)
                elif isinstance(command, Before):
                    command = flow.send(store.before(host, rules, command.first, command.refund))
                elif isinstance(command, After):
                    change = store.after(host, rules, command.failed, command.pause, command.probe)
                    command = flow.send(change)
                elif isinstance(command, Spend):
                    command = flow.send(store.spend(host, rules))
                else:
                    open_ = None
                    _close(command.response)
                    command = flow.send(None)
        except StopIteration as stop:
            response, encoded, context = cast(tuple[httpx.Response, bool, Context], stop.value)
        except BaseException:
            if open_ is not None:
                _close(open_)
            raise
        return _typed(request, response, encoded, context, self._backend.sync_mapped)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self: _S) -> _S:
        self._transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._transport.__exit__(exc_type, exc_value, traceback)


class AsyncDriver:
    """What `AsyncResilientTransport` does, for whichever package it is made for."""

    _backend: ClassVar[Backend] = HTTPX

    def __init__(
        self,
        transport: Any = None,
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008
        idempotency: IdempotencyPolicy = IdempotencyPolicy(),  # noqa: B008
        request_ids: RequestIdPolicy = RequestIdPolicy(),  # noqa: B008
        errors: ErrorPolicy = ErrorPolicy(),  # noqa: B008
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        budget: RetryBudget | None = RetryBudget(),  # noqa: B008
        breaker: CircuitBreaker | None = None,
        pacing: bool = False,
        state: State | None = None,
        on_event: Callable[[ResilienceEvent], None] | None = None,
        **transport_kwargs: Any,
    ) -> None:
        backend = self._backend
        rules = self._rules = _rules(budget, breaker, pacing)
        hooks = {"on_retry": on_retry, "on_event": on_event}
        self._settings = _settings(retry, idempotency, request_ids, errors, hooks, backend, rules)
        self._on_retry = on_retry
        self._on_event = on_event
        # The first attempt may skip the flow's generator unless every step must be told.
        self._direct = on_event is None
        self._store = _state(state).async_store()
        _check_sleep(sleep)
        self._sleep = sleep or _waits.async_sleep
        self._transport: Any = _inner(
            transport,
            transport_kwargs,
            backend.async_transport,
            backend.default_async_transport,
            backend.name,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        plan = plan_request(request, self._settings)
        store, rules, host = self._store, self._rules, plan.host or ""
        verdict = None if plan.host is None else await store.before(host, rules, True)
        # The response of the attempt under way until it is closed or handed on: whatever
        # else ends the attempt (an error, a hook raising, cancellation) closes it here.
        open_: httpx.Response | None = None
        try:
            first: object = NO_OUTCOME
            if self._direct and plan.direct and clear(verdict):
                outcome: Any
                try:
                    outcome = open_ = await self._transport.handle_async_request(request)
                except Exception as exc:
                    outcome = exc
                if rules.watches:
                    probe = verdict is not None and verdict.probe
                    await store.after(host, rules, *outcome_of(outcome, rules), probe)
                if open_ is not None:
                    _, encoded, hand_on = accept(plan, request, open_)
                    if hand_on:
                        context = plan.context(1, ())
                        mapped = self._backend.async_mapped
                        return _typed(request, open_, encoded, context, mapped)
                first = outcome
            flow: Flow = request_flow(
                request,
                self._settings,
                on_retry=self._on_retry,
                on_event=self._on_event,
                plan=plan,
                first=first,
                verdict=verdict,
            )
            command = next(flow)
            while True:
                if isinstance(command, Send):
                    try:
                        open_ = await self._transport.handle_async_request(command.request)
                    except Exception as exc:
                        command = flow.throw(exc)
                    else:
                        command = flow.send(open_)
                elif isinstance(command, ReadBody):
                    body = await aread_prefix(command.response, command.limit, self._backend)
                    command = flow.send(Body(*body))
                elif isinstance(command, Sleep):
                    await self._sleep(command.delay)
                    command = flow.send(None)
                elif isinstance(command, Before):
                    verdict = await store.before(host, rules, command.first, command.refund)
                    command = flow.send(verdict)
                elif isinstance(command, After):
                    change = await store.after(
                        host, rules, command.failed, command.pause, command.probe
                    )
                    command = flow.send(change)
                elif isinstance(command, Spend):
                    command = flow.send(await store.spend(host, rules))
                else:
                    open_ = None
                    await _aclose(command.response)
                    command = flow.send(None)
        except StopIteration as stop:
            response, encoded, context = cast(tuple[httpx.Response, bool, Context], stop.value)
        except BaseException:
            if open_ is not None:
                await _aclose(open_)
            raise
        return _typed(request, response, encoded, context, self._backend.async_mapped)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self: _A) -> _A:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._transport.__aexit__(exc_type, exc_value, traceback)


class ResilientTransport(SyncDriver, httpx.BaseTransport):
    """An httpx transport that retries safely and turns every failure into a typed `APIError`."""


class AsyncResilientTransport(AsyncDriver, httpx.AsyncBaseTransport):
    """The async twin of `ResilientTransport`; runs under asyncio and trio alike."""


def _typed(
    request: httpx.Request,
    response: httpx.Response,
    encoded: bool,
    context: Context,
    mapped: type[SyncMappedStream] | type[AsyncMappedStream],
) -> httpx.Response:
    """The response handed to the caller, its body's failures typed by a `mapped` stream."""
    failure = _StreamFailure(request, context, response)
    response.stream = mapped(response.stream, failure)  # type: ignore[arg-type]
    if encoded:
        guard_decoding(response, failure)
    return response


def _close(response: httpx.Response) -> None:
    # Closing discards an unread rest with its connection; a failure to do so changes
    # nothing for the error being raised.
    stream: httpx.SyncByteStream = response.stream  # type: ignore[assignment]
    with contextlib.suppress(Exception):
        stream.close()


async def _aclose(response: httpx.Response) -> None:
    # Shielded: a cancellation must not cut the close short (on the way out of a cancelled
    # attempt, it already came), or the connection stays checked out of the pool for good.
    import anyio  # on the failure path only: a process whose requests all succeed never needs it

    stream: httpx.AsyncByteStream = response.stream  # type: ignore[assignment]
    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
        await stream.aclose()
