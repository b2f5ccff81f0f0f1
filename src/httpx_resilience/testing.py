"""Helpers for the test suites of code that uses httpx-resilience."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ._waits import set_no_wait

__all__ = ["no_wait"]


@contextmanager
def no_wait() -> Iterator[None]:
    """Make every transport that uses the default sleep skip its waits between attempts.

    Delays are still computed, passed to `on_retry`, logged and recorded in `history`; only the
    sleeping is skipped. A `sleep=` given to a transport is always called.

        with httpx_resilience.testing.no_wait():
            run_my_suite()
    """
    set_no_wait(True)
    try:
        yield
    finally:
        set_no_wait(False)
