"""The two public transports: the drivers with the httpx base classes added.

`ResilientTransport` wraps an inner httpx transport (by default httpx's own, built from the
keyword arguments it was given); `_driver_async.py` and its generated sync twin say what they
do with each request.
"""

from __future__ import annotations

import httpx

from ._driver_async import AsyncDriver
from ._driver_sync import SyncDriver

__all__ = ["AsyncDriver", "AsyncResilientTransport", "ResilientTransport", "SyncDriver"]


class ResilientTransport(SyncDriver, httpx.BaseTransport):
    """An httpx transport that retries safely and turns every failure into a typed `APIError`."""


class AsyncResilientTransport(AsyncDriver, httpx.AsyncBaseTransport):
    """The async twin of `ResilientTransport`; runs under asyncio and trio alike."""
