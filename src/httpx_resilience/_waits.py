"""The default waits between attempts, and the switch that skips them in users' tests."""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import ConfigurationError

__all__ = [
    "async_sleep",
    "async_sleep_of",
    "discard",
    "is_async_callable",
    "set_no_wait",
    "shielded",
    "sleep",
    "sleep_of",
    "waits_skipped",
]

# A plain global, not a context variable: a test may start threads or tasks whose transports
# must skip their waits too. Changed under a lock, as threads may enter and leave `no_wait()`
# at once (`+= 1` is a read and a write, and a thread switch between them loses a level);
# read without one, as reading an int is atomic.
_skip_depth = 0
_skip_lock = threading.Lock()


def set_no_wait(on: bool) -> None:
    """Nest one level of "skip the default waits" in (on) or out."""
    global _skip_depth
    with _skip_lock:
        _skip_depth = _skip_depth + 1 if on else max(_skip_depth - 1, 0)


def waits_skipped() -> bool:
    """Whether `httpx_resilience.testing.no_wait()` is active."""
    return _skip_depth > 0


def sleep(delay: float) -> None:
    """`time.sleep`, unless waits are skipped."""
    if _skip_depth == 0:
        time.sleep(delay)


async def async_sleep(delay: float) -> None:
    """`anyio.sleep` (asyncio and trio alike), unless waits are skipped.

    A skipped wait still yields once to the event loop, so cancellation is seen as it would be.
    """
    import anyio  # imported on first wait only: most processes never retry

    await anyio.sleep(0 if _skip_depth else delay)


def unwrapped(value: object) -> object:
    """What a `functools.partial` (however nested) calls in the end; `value` itself otherwise."""
    while isinstance(value, functools.partial):
        value = value.func
    return value


def is_async_callable(value: object) -> bool:
    """Whether calling `value` makes a coroutine: an `async def` function or method, or an
    object whose `__call__` is one, also behind `functools.partial`."""
    value = unwrapped(value)
    return inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(
        getattr(value, "__call__", None)  # noqa: B004 - the method itself is what is asked about
    )


def discard(awaitable: object) -> None:
    """Close an awaitable that will never be awaited (a coroutine warns when collected)."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def sleep_of(given: Any) -> Callable[[float], None]:
    """The sync transport's wait: `sleep`, or the `sleep=` it was given, checked.

    An async function would be called and never awaited: no retry would ever wait.
    """
    if given is None:
        return sleep
    if not callable(given) or is_async_callable(given):
        raise ConfigurationError(
            "ResilientTransport(sleep=...) must be a plain function such as time.sleep, got "
            + ("an async one, which it cannot await" if callable(given) else repr(given))
        )
    if inspect.isbuiltin(given):
        return given

    def checked(delay: float) -> None:
        waited = given(delay)
        if inspect.isawaitable(waited):
            discard(waited)  # never awaited: closed here rather than warned of later
            raise ConfigurationError(
                "ResilientTransport(sleep=...) returned an awaitable, which it cannot await: "
                "it must be a plain function such as time.sleep"
            )

    return checked


def async_sleep_of(given: Any) -> Callable[[float], Awaitable[None]]:
    """The async transport's wait: `async_sleep`, or the `sleep=` it was given, checked.

    A blocking one (`time.sleep`) would stall the event loop; one whose call turns out to give
    no awaitable is refused at its first wait, before it could be awaited.
    """
    if given is None:
        return async_sleep
    target = unwrapped(given)
    if not callable(given) or inspect.isbuiltin(target) or target is time.sleep:
        raise ConfigurationError(
            "AsyncResilientTransport(sleep=...) must be an async function such as anyio.sleep, "
            f"got {given!r}, which would block the event loop"
        )
    if is_async_callable(given):
        return given  # type: ignore[no-any-return]

    async def checked(delay: float) -> None:
        waited = given(delay)
        if not inspect.isawaitable(waited):
            raise ConfigurationError(
                "AsyncResilientTransport(sleep=...) returned no awaitable: it must be an async "
                "function such as anyio.sleep"
            )
        await waited

    return checked


async def shielded(awaitable: Awaitable[object]) -> None:
    """`awaitable` awaited to its end even in a cancelled scope: what a cancellation must not
    cut short (giving back what the cancelled attempt held). The sync driver calls the same
    thing directly."""
    import anyio

    with anyio.CancelScope(shield=True):
        await awaitable
