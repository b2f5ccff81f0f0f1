"""The user's hooks: refused where they cannot run, awaited where they are async.

`on_retry`, `on_event`, `ErrorPolicy.classify` and `ErrorPolicy.parse_body` may be `async def`
functions on the async transport, which awaits them. The sync transport would call one and
never await it (it would never run), so there it is refused at construction.

The decisions in `_decide` are plain functions that call `classify` and `parse_body`; the
async driver calls them first, awaiting what they return when it is awaitable
(`answer_body_hooks`), and hands `_decide` their answers. On the sync transport, a hook that
turns out to return an awaitable (a lambda around an async function) is reported, and the
awaitable closed, never left to warn.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._events import logger
from ._waits import discard, is_async_callable

if TYPE_CHECKING:
    import httpx

    from ._call import Call

__all__ = [
    "answer_body_hooks",
    "awaited",
    "check_hooks",
    "has_body_hooks",
    "unawaited",
]

_BODY_HOOKS = ("classify", "parse_body")


def check_hooks(hooks: Mapping[str, object], asynchronous: bool) -> None:
    """Refuse a hook that is neither None nor a callable, and an async one on the sync side."""
    for name, hook in hooks.items():
        if hook is not None and not callable(hook):
            raise ConfigurationError(f"{name} must be None or a callable, got {hook!r}")
        if hook is not None and not asynchronous and is_async_callable(hook):
            raise ConfigurationError(
                f"{name} must be a plain function on ResilientTransport, not an async one: the "
                "sync transport cannot await it (AsyncResilientTransport awaits async hooks)"
            )


def has_body_hooks(errors: Any) -> bool:
    """Whether an `ErrorPolicy` has a `classify` or `parse_body`: on the async transport, what
    either returns is awaited when it is awaitable, whatever kind of function it is (an
    `async def` under a decorator, a lambda that returns a coroutine)."""
    return any(getattr(errors, name) is not None for name in _BODY_HOOKS)


async def awaited(value: object, name: str) -> object:
    """`value`, awaited when it is awaitable: what a hook of the async transport returned."""
    if inspect.isawaitable(value):
        return await value
    return value


def unawaited(value: object, name: str) -> object:
    """`value`, which the sync transport's hook `name` returned; an awaitable the sync
    transport cannot await is closed (no "never awaited" warning later) and reported."""
    if inspect.isawaitable(value):
        discard(value)
        logger.warning(
            "%s returned an awaitable, which ResilientTransport cannot await: give it a plain "
            "function, or use AsyncResilientTransport",
            name,
        )
        return None
    return value


async def answer_body_hooks(
    call: Call, response: httpx.Response, body: tuple[bytes, bool] | None
) -> Call:
    """`call` with its `classify` and `parse_body` replaced by their answers for `response`
    with the `body` read (awaited when awaitable), for `_decide` to call as plain functions. A
    hook that raised raises again when called, so `_decide` treats it as it treats a plain
    hook that raised."""
    from ._decide import readable_of  # here: _decide needs what needs this module

    readable = readable_of(call, response, body or (b"", False))
    if readable is None:  # no document: `_decide` calls no hook either
        return call
    errors = call.settings.errors
    answers: dict[str, Any] = {}
    classified = None
    if errors.classify is not None:
        answers["classify"] = answer = await _answer(errors.classify, readable)
        classified = answer.value
    if errors.parse_body is not None and (readable.status_code >= 400 or classified is not None):
        # Only where an error will be built: a success `classify` let by is parsed by no one.
        answers["parse_body"] = await _answer(errors.parse_body, readable)
    settings = dataclasses.replace(call.settings, errors=errors.replace(**answers))
    return call._replace(settings=settings)


async def _answer(hook: Any, readable: httpx.Response) -> _Answer:
    try:
        return _Answer(await awaited(hook(readable), ""), None)
    except Exception as exc:
        return _Answer(None, exc)


class _Answer:
    """A plain hook that gives the answer an async hook gave (or raises what it raised)."""

    __slots__ = ("error", "value")

    def __init__(self, value: object, error: Exception | None) -> None:
        self.value = value
        self.error = error

    def __call__(self, response: object) -> object:
        if self.error is not None:
            raise self.error
        return self.value
