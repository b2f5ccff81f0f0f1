"""The default waits between attempts, and the switch that skips them in users' tests."""

from __future__ import annotations

import threading
import time

__all__ = ["async_sleep", "set_no_wait", "sleep", "waits_skipped"]

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
