"""The httpx-compatible packages the transports serve: httpx itself, and its fork httpx2.

httpx2 (which the OpenAI 3.x and Anthropic 2.x SDKs are built on) has httpx's API with classes
of its own, and checks body streams against its own base classes: a stream made for httpx is
refused by an httpx2 response. A `Backend` holds what differs, the classes a transport builds
and checks, so the flow, the error building and the drivers stay one piece of code for both.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import httpx

from ._streams import (
    AsyncMappedStream,
    AsyncReplayStream,
    CountedRequestStream,
    SyncMappedStream,
    SyncReplayStream,
)

__all__ = ["HTTPX", "Backend", "backend_of", "register"]


def _subclass(cls: type, *bases: type) -> Any:
    # Our stream class with the package's base classes added, so its isinstance checks pass.
    return type(cls.__name__, (cls, *bases), {"__slots__": (), "__module__": cls.__module__})


class Backend:
    """The classes of one httpx-compatible package that the transports build or check."""

    __slots__ = (
        "async_mapped",
        "async_replay",
        "async_transport",
        "byte_stream",
        "counted",
        "default_async_transport",
        "default_transport",
        "module",
        "name",
        "request",
        "response",
        "response_not_read",
        "sync_byte_stream",
        "sync_mapped",
        "sync_replay",
        "transport",
    )

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.name = module.__name__
        self.transport: type = module.BaseTransport
        self.async_transport: type = module.AsyncBaseTransport
        self.default_transport: type = module.HTTPTransport
        self.default_async_transport: type = module.AsyncHTTPTransport
        self.request: type[httpx.Request] = module.Request
        self.response: type[httpx.Response] = module.Response
        self.response_not_read: type[Exception] = module.ResponseNotRead
        self.byte_stream: type[httpx.ByteStream] = module.ByteStream
        self.sync_byte_stream: type[httpx.SyncByteStream] = module.SyncByteStream
        sync_base, async_base = module.SyncByteStream, module.AsyncByteStream
        if module is httpx:
            self.sync_mapped: type[SyncMappedStream] = SyncMappedStream
            self.async_mapped: type[AsyncMappedStream] = AsyncMappedStream
            self.sync_replay: type[SyncReplayStream] = SyncReplayStream
            self.async_replay: type[AsyncReplayStream] = AsyncReplayStream
            self.counted: type[CountedRequestStream] = CountedRequestStream
        else:
            self.sync_mapped = _subclass(SyncMappedStream, sync_base)
            self.async_mapped = _subclass(AsyncMappedStream, async_base)
            self.sync_replay = _subclass(SyncReplayStream, sync_base)
            self.async_replay = _subclass(AsyncReplayStream, async_base)
            self.counted = _subclass(CountedRequestStream, sync_base, async_base)

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"


HTTPX = Backend(httpx)
_BACKENDS: dict[str, Backend] = {"httpx": HTTPX}


def backend_of(obj: object) -> Backend:
    """The backend whose classes `obj` (a request or response) is an instance of.

    httpx when nothing else matches: httpx2 can only be in use if it was imported already.
    """
    for cls in type(obj).__mro__:
        name = cls.__module__.partition(".")[0]
        backend = _BACKENDS.get(name)
        if backend is not None:
            return backend
        if name == "httpx2" and "httpx2" in sys.modules:
            return register(sys.modules["httpx2"])
    return HTTPX


def register(module: ModuleType) -> Backend:
    """The backend of `module`, made once."""
    backend = _BACKENDS.get(module.__name__)
    if backend is None:
        backend = _BACKENDS[module.__name__] = Backend(module)
    return backend
