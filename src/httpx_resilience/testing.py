"""Helpers for the test suites of code that uses httpx-resilience.

- `no_wait()` skips the transports' waits between attempts.
- `FaultTransport` wraps a transport (or a handler) and injects scripted faults per request,
  each a `Fault`: an error status, a connect error, a read timeout, a body reset mid-way or a
  slow body. What it did is recorded in `calls`, one `FaultCall` per request.

    import httpx
    from httpx_resilience import ResilientTransport
    from httpx_resilience.testing import Fault, FaultTransport, no_wait

    faults = FaultTransport(faults=[Fault.status(503), Fault.connect_error()])
    with no_wait(), httpx.Client(transport=ResilientTransport(faults)) as client:
        assert client.get("https://api.example.com/v1/users/7").status_code == 200
    assert [call.fault for call in faults.calls] == [
        Fault.status(503), Fault.connect_error(), None
    ]

`FaultTransport` serves httpx; `httpx_resilience.httpx2.FaultTransport` is its twin for httpx2,
as with the resilient transports: the package of the module it comes from is the one whose
requests it takes, whose transports it wraps, and whose responses and exceptions it makes.
"""

from __future__ import annotations

import inspect
import itertools
import json as jsonlib
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, TypeVar, cast

import httpx

from ._backend import HTTPX, Backend
from ._errors import ConfigurationError
from ._policies import is_number
from ._redact import request_repr
from ._waits import discard, is_async_callable, set_no_wait

__all__ = ["Fault", "FaultCall", "FaultTransport", "no_wait"]

_T = TypeVar("_T", bound="_FaultDriver")


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


# --- Faults ------------------------------------------------------------------------------------

_KINDS = ("status", "connect_error", "disconnect", "read_timeout", "reset", "slow")
# Faults that answer in place of the inner transport, which never sees the request.
_IN_PLACE = frozenset({"status", "connect_error", "disconnect", "read_timeout"})
_TAG = "(injected by FaultTransport)"

_HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]] | None


def _fault_error(message: str) -> ConfigurationError:
    return ConfigurationError(f"Fault: {message}")


def _headers_of(headers: _HeadersArg) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    multi_items = getattr(headers, "multi_items", None)  # httpx.Headers: repeated names kept
    if multi_items is not None:
        pairs = list(multi_items())
    else:
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    for pair in pairs:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(part, str) for part in pair)
        ):
            raise _fault_error(
                f"headers must be a mapping or (name, value) pairs of str, got {pair!r}"
            )
    return tuple(pairs)


def _content_of(
    content: bytes | str, json: Any, headers: tuple[tuple[str, str], ...]
) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    if json is not None:
        if content:
            raise _fault_error("give content= or json=, not both")
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers = (*headers, ("content-type", "application/json"))
        try:
            return jsonlib.dumps(json).encode(), headers
        except (TypeError, ValueError) as exc:
            raise _fault_error(f"json= must be JSON-serialisable: {exc}") from None
    if isinstance(content, str):
        return content.encode(), headers
    if not isinstance(content, bytes):
        raise _fault_error(f"content must be bytes or str, got {type(content).__name__}")
    return content, headers


@dataclass(frozen=True, repr=False)
class Fault:
    """One fault a `FaultTransport` plays for one request. Made by its constructors:

    - `Fault.status(503, headers={"Retry-After": "1"}, json={...})`: that answer, in place of
      the inner transport's (which never sees the request); `content=` bytes or str, or `json=`.
    - `Fault.connect_error()`: the package's `ConnectError`; nothing was sent.
    - `Fault.disconnect()`: the package's `RemoteProtocolError` before any response header, as
      when a server closes a kept-alive connection the request was just sent on.
    - `Fault.read_timeout()`: the package's `ReadTimeout` before any response header; the
      request was sent (its body is read) but the inner transport never sees it.
    - `Fault.reset(after=100)`: the inner transport's response, whose body raises the package's
      `ReadError` after `after` bytes (at its end if it is shorter); the inner response is
      closed first, so its connection goes back to the pool.
    - `Fault.slow(0.05)`: the inner transport's response, each body chunk `delay` seconds late
      (`chunk_size=` splits the chunks first). A delay longer than the request's read timeout
      raises the package's `ReadTimeout` after that timeout, as a real socket read would.

    `reset` and `slow` act on an answer of their own instead with `status=` (and `headers=`,
    `content=`, `json=` as for `Fault.status`). Faults compare equal by value, so a test can
    assert on `FaultTransport.calls`.
    """

    kind: str
    status_code: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes = b""
    after: int | None = None
    delay: float | None = None
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise _fault_error(f"unknown kind {self.kind!r}: one of {', '.join(_KINDS)}")
        code = self.status_code
        if code is not None and not (
            isinstance(code, int) and not isinstance(code, bool) and 200 <= code <= 599
        ):
            raise _fault_error(f"status must be an int from 200 to 599, got {code!r}")
        if self.kind == "status" and code is None:
            raise _fault_error("a status fault needs its status code: Fault.status(503)")
        if self.kind == "reset" and not (
            isinstance(self.after, int) and not isinstance(self.after, bool) and self.after >= 0
        ):
            raise _fault_error(
                f"reset(after=...) must be a number of bytes >= 0, got {self.after!r}"
            )
        delay = self.delay
        if self.kind == "slow" and not (
            delay is not None and is_number(delay) and 0 <= delay <= 60
        ):
            raise _fault_error(f"slow(delay=...) must be seconds from 0 to 60, got {self.delay!r}")
        if not (
            isinstance(self.headers, tuple)
            and all(
                isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
                for pair in self.headers
            )
        ):
            raise _fault_error(f"headers must be (name, value) pairs of str, got {self.headers!r}")
        if not isinstance(self.content, bytes):
            raise _fault_error(f"content must be bytes, got {type(self.content).__name__}")
        size = self.chunk_size
        if size is not None and not (
            isinstance(size, int) and not isinstance(size, bool) and size > 0
        ):
            raise _fault_error(f"chunk_size must be None or an int > 0, got {size!r}")

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        headers: _HeadersArg = None,
        content: bytes | str = b"",
        json: Any = None,
    ) -> Fault:
        """Answer `status_code` with these headers and body, in place of the inner transport."""
        pairs = _headers_of(headers)
        body, pairs = _content_of(content, json, pairs)
        return cls("status", status_code, pairs, body)

    @classmethod
    def connect_error(cls) -> Fault:
        """Raise the package's `ConnectError`: the request never left."""
        return cls("connect_error")

    @classmethod
    def disconnect(cls) -> Fault:
        """Raise the package's `RemoteProtocolError` before any response header: the server
        hung up after the request was sent."""
        return cls("disconnect")

    @classmethod
    def read_timeout(cls) -> Fault:
        """Raise the package's `ReadTimeout` before any response header, at once."""
        return cls("read_timeout")

    @classmethod
    def reset(
        cls,
        after: int = 0,
        *,
        status: int | None = None,
        headers: _HeadersArg = None,
        content: bytes | str = b"",
        json: Any = None,
    ) -> Fault:
        """Send the response's headers, then break its body off after `after` bytes."""
        pairs = _headers_of(headers)
        body, pairs = _content_of(content, json, pairs)
        cls._check_own_answer(status, pairs, body, "reset")
        return cls("reset", status, pairs, body, after=after)

    @classmethod
    def slow(
        cls,
        delay: float,
        *,
        chunk_size: int | None = None,
        status: int | None = None,
        headers: _HeadersArg = None,
        content: bytes | str = b"",
        json: Any = None,
    ) -> Fault:
        """Hand each chunk of the response's body on `delay` seconds late."""
        pairs = _headers_of(headers)
        body, pairs = _content_of(content, json, pairs)
        cls._check_own_answer(status, pairs, body, "slow")
        return cls("slow", status, pairs, body, delay=delay, chunk_size=chunk_size)

    @staticmethod
    def _check_own_answer(
        status: int | None, headers: tuple[tuple[str, str], ...], body: bytes, name: str
    ) -> None:
        if status is None and (headers or body):
            raise _fault_error(
                f"{name}() got headers or a body without status=: the inner transport's "
                "response is used unless status= is given"
            )

    def __repr__(self) -> str:
        args: list[str] = []
        if self.kind == "status":
            args.append(str(self.status_code))
        elif self.kind == "reset":
            args.append(str(self.after))
        elif self.kind == "slow":
            args.append(f"{self.delay!r}")
            if self.chunk_size is not None:
                args.append(f"chunk_size={self.chunk_size}")
        if self.kind in ("reset", "slow") and self.status_code is not None:
            args.append(f"status={self.status_code}")
        if self.headers:
            names = [name.lower() for name, _ in self.headers]
            shown: object = (
                dict(self.headers) if len(set(names)) == len(names) else list(self.headers)
            )
            args.append(f"headers={shown!r}")
        if self.content:
            args.append(f"content={self.content!r}")
        return f"Fault.{self.kind}({', '.join(args)})"


@dataclass(frozen=True, repr=False)
class FaultCall:
    """One request a `FaultTransport` handled, and the fault it got (None: passed through)."""

    request: httpx.Request
    fault: Fault | None

    def __repr__(self) -> str:
        # httpx's own repr of the request shows its URL whole, password and api_key= too.
        return f"FaultCall(request={request_repr(self.request)}, fault={self.fault!r})"


def _answers_itself(fault: Fault | None) -> bool:
    """Whether `fault` answers in place of the inner transport after the request was sent
    (its body read), rather than before it left or by way of the inner transport."""
    return (
        fault is not None
        and fault.kind != "connect_error"
        and (fault.kind in _IN_PLACE or fault.status_code is not None)
    )


def _snapshot(request: httpx.Request) -> httpx.Request:
    """`request` as it is now: an auth flow sends the same object again with new headers, and
    the record must keep what went the first time. The body's stream is shared (what it held
    is read once, by whoever sends it)."""
    copy = type(request)(
        request.method,
        request.url,
        headers=request.headers.copy(),
        stream=request.stream,
        extensions=dict(request.extensions),
    )
    if hasattr(request, "_content"):
        copy._content = request.content  # already read: the record can show it
    return copy


# --- Bodies ------------------------------------------------------------------------------------


def _pieces(chunk: bytes, size: int | None) -> list[bytes]:
    if size is None or len(chunk) <= size:
        return [chunk]
    return [chunk[i : i + size] for i in range(0, len(chunk), size)]


def _read_timeout(request: httpx.Request) -> float | None:
    # Looked up at each chunk: a transport above may shorten it for an error body's read.
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, Mapping) else None
    return float(read) if isinstance(read, (int, float)) and is_number(read) else None


class _FaultBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body passed through with the reset or the slowness of a `Fault`."""

    def __init__(self, stream: Any, fault: Fault, request: httpx.Request, backend: Backend) -> None:
        self._stream = stream
        self._fault = fault
        self._request = request
        self._backend = backend
        self._closed = False
        self._chunks: AsyncIterator[bytes] | None = None
        self._agen: AsyncGenerator[bytes, None] | None = None

    def _cut(self, sent: int, piece: bytes) -> tuple[bytes, bool]:
        """What of `piece` goes out before a reset, and whether the reset comes after it."""
        after = self._fault.after
        if after is None or sent + len(piece) < after:
            return piece, False
        return piece[: after - sent], True

    def _wait(self) -> tuple[float, bool]:
        """How long the next chunk is late, and whether the read times out by then."""
        delay = self._fault.delay or 0.0
        limit = _read_timeout(self._request)
        if limit is not None and delay > limit:
            return limit, True
        return delay, False

    def _reset_error(self, sent: int) -> Exception:
        error: Exception = self._backend.module.ReadError(
            f"connection reset after {sent} bytes of the body {_TAG}", request=self._request
        )
        return error

    def _timeout_error(self, sent: int) -> Exception:
        error: Exception = self._backend.module.ReadTimeout(
            f"read timed out after {sent} bytes of the body {_TAG}", request=self._request
        )
        return error

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in self._stream:
                for piece in _pieces(chunk, self._fault.chunk_size):
                    if self._fault.kind == "slow":
                        wait, timed_out = self._wait()
                        time.sleep(wait)
                        if timed_out:
                            raise self._timeout_error(sent)
                    piece, reset = self._cut(sent, piece)
                    if piece:
                        sent += len(piece)
                        yield piece
                    if reset:
                        raise self._reset_error(sent)
            if self._fault.kind == "reset":
                raise self._reset_error(sent)
        except BaseException:
            # The inner response goes back to its pool before the error reaches the reader.
            self.close()
            raise

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The async generator and the inner iterator are kept, for `aclose` to finalise them
        # in the event loop when a reader stops half-way, rather than leave them to the
        # garbage collector, which trio reports.
        self._chunks = self._stream.__aiter__()
        self._agen = self._async_pieces(self._chunks)
        return self._agen

    async def _async_pieces(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        import anyio  # imported here: most tests never read a faulty async body

        sent = 0
        try:
            async for chunk in chunks:
                for piece in _pieces(chunk, self._fault.chunk_size):
                    if self._fault.kind == "slow":
                        wait, timed_out = self._wait()
                        await anyio.sleep(wait)
                        if timed_out:
                            raise self._timeout_error(sent)
                    piece, reset = self._cut(sent, piece)
                    if piece:
                        sent += len(piece)
                        yield piece
                    if reset:
                        raise self._reset_error(sent)
            if self._fault.kind == "reset":
                raise self._reset_error(sent)
        except BaseException:
            # The inner response goes back to its pool before the error reaches the reader.
            await self._release()
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.close()

    async def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        chunks, self._chunks = self._chunks, None
        if inspect.isasyncgen(chunks):
            await chunks.aclose()
        await self._stream.aclose()

    async def aclose(self) -> None:
        agen, self._agen = self._agen, None
        if agen is not None:
            await agen.aclose()
        await self._release()


_BODIES: dict[str, type[_FaultBody]] = {"httpx": _FaultBody}


def _body_class(backend: Backend) -> type[_FaultBody]:
    """`_FaultBody` with the backend's stream base classes, which its responses check for."""
    cls = _BODIES.get(backend.name)
    if cls is None:
        bases = (_FaultBody, backend.module.SyncByteStream, backend.module.AsyncByteStream)
        cls = _BODIES[backend.name] = type("_FaultBody", bases, {"__module__": __name__})
    return cls


# --- The transport -----------------------------------------------------------------------------


def _plan(faults: Any) -> list[Fault | None]:
    if isinstance(faults, Fault):
        return [faults]
    if isinstance(faults, (str, bytes, Mapping)) or not isinstance(faults, (list, tuple)):
        # A list or a tuple, not any iterable: an endless one (itertools.cycle) would be read
        # for ever; `cycle=True` repeats a list.
        raise ConfigurationError(
            f"FaultTransport(faults=...) must be a Fault or a list or tuple of Faults (None: "
            f"pass through; cycle=True repeats it), got {type(faults).__name__}"
        )
    plan = list(faults)
    for index, fault in enumerate(plan):
        if fault is not None and not isinstance(fault, Fault):
            hint = f": use Fault.status({fault})" if isinstance(fault, int) else ""
            raise ConfigurationError(
                f"FaultTransport(faults=...)[{index}] is {fault!r} ({type(fault).__name__}), "
                f"not a Fault or None{hint}"
            )
    return plan


class _FaultDriver:
    """What `FaultTransport` does, for whichever package (`Backend`) it is made for."""

    _backend: ClassVar[Backend] = HTTPX

    def __init__(
        self,
        transport: Any = None,
        *,
        faults: Fault | Iterable[Fault | None] = (),
        cycle: bool = False,
        rate: float | None = None,
        seed: int | None = None,
        match: Callable[[httpx.Request], bool] | None = None,
    ) -> None:
        backend = self._backend
        name = f"{backend.name}.{type(self).__name__}" if backend is not HTTPX else "FaultTransport"
        plan = _plan(faults)
        if not isinstance(cycle, bool):
            raise ConfigurationError(f"{name}(cycle=...) must be a bool, got {cycle!r}")
        if rate is not None and not (is_number(rate) and 0 <= rate <= 1):
            raise ConfigurationError(
                f"{name}(rate=...) must be a share of requests from 0 to 1 (0.1: one in ten), "
                f"got {rate!r}"
            )
        if rate is not None and cycle:
            raise ConfigurationError(f"{name}: give cycle=True or rate=, not both")
        if rate is not None and any(fault is None for fault in plan):
            raise ConfigurationError(
                f"{name}: with rate=, every item of faults= must be a Fault (the rate already "
                "says how many requests pass through)"
            )
        if (cycle or rate is not None) and not any(fault is not None for fault in plan):
            raise ConfigurationError(
                f"{name}: cycle=True and rate= need at least one Fault in faults="
            )
        if seed is not None and (
            rate is None or not isinstance(seed, int) or isinstance(seed, bool)
        ):
            raise ConfigurationError(
                f"{name}(seed=...) must be an int, and is used with rate= only, got {seed!r}"
            )
        if match is not None and not callable(match):
            raise ConfigurationError(
                f"{name}(match=...) must be a function of the request, got {match!r}"
            )
        if match is not None and is_async_callable(match):
            raise ConfigurationError(
                f"{name}(match=...) must be a plain function returning a bool; an async one "
                "would never be awaited"
            )
        self._transport, self._handler = self._inner_of(transport, name)
        self._plan = plan
        self._rate = rate
        self._match = match
        self._lock = threading.Lock()
        self._next: Iterator[Fault | None] = itertools.cycle(plan) if cycle else iter(plan)
        # Drawn when not given, and kept: a test that failed can say which seed to replay.
        self.seed: int | None = None
        if rate is not None:
            self.seed = random.randrange(2**32) if seed is None else seed
        self._random = random.Random(self.seed)
        self.calls: list[FaultCall] = []

    def _inner_of(self, transport: Any, name: str) -> tuple[Any, Any]:
        """(the inner transport, None) or (None, the handler function)."""
        backend = self._backend
        if transport is None:
            return None, lambda request: backend.response(200, request=request)
        if isinstance(transport, (backend.transport, backend.async_transport)):
            return transport, None
        if callable(transport) and not isinstance(transport, type):
            return None, transport
        what = f"{type(transport).__module__}.{type(transport).__qualname__}"
        if isinstance(transport, type):
            what = f"the class {transport.__module__}.{transport.__qualname__}"
        twins = {
            "httpx": "httpx_resilience.testing.FaultTransport",
            "httpx2": "httpx_resilience.httpx2.FaultTransport",
        }
        package = type(transport).__module__.partition(".")[0]
        hint = f": use {twins[package]}" if package in twins and package != backend.name else ""
        raise ConfigurationError(
            f"{name} wraps an {backend.name}.BaseTransport or AsyncBaseTransport instance, or "
            f"a handler function (request -> response), got {what}{hint}"
        )

    def _pick(self, request: httpx.Request) -> FaultCall:
        """The fault this request gets, recorded with a copy of the request as it is now."""
        if not isinstance(request, self._backend.request):
            raise ConfigurationError(
                f"this FaultTransport serves {self._backend.name}, got an "
                f"{type(request).__module__}.Request"
            )
        fault: Fault | None = None
        matched = self._match is None or self._match(request)
        if inspect.isawaitable(matched):
            discard(matched)
            raise ConfigurationError("FaultTransport(match=...) returned an awaitable, not a bool")
        with self._lock:
            if matched:
                if self._rate is None:
                    fault = next(self._next, None)
                elif self._random.random() < self._rate:
                    fault = self._random.choice(self._plan)
            record = FaultCall(_snapshot(request), fault)
            self.calls.append(record)
        return record

    def _in_place(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        """The answer of a fault that replaces the inner transport's."""
        module = self._backend.module
        if fault.kind == "connect_error":
            raise module.ConnectError(f"connection refused {_TAG}", request=request)
        if fault.kind == "disconnect":
            raise module.RemoteProtocolError(
                f"server disconnected without sending a response {_TAG}", request=request
            )
        if fault.kind == "read_timeout":
            raise module.ReadTimeout(f"timed out waiting for the response {_TAG}", request=request)
        return self._own_answer(fault, request)

    def _own_answer(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        headers = list(fault.headers)
        if not any(name.lower() == "content-length" for name, _ in headers):
            headers.append(("content-length", str(len(fault.content))))
        # Streamed, not read: the body comes as a server's would, for the client to read.
        return self._backend.response(
            cast(int, fault.status_code),  # every answer of its own has one
            headers=headers,
            stream=self._backend.byte_stream(fault.content),
            request=request,
        )

    def _with_body_fault(
        self, fault: Fault, response: httpx.Response, request: httpx.Request
    ) -> httpx.Response:
        # A new response around the raw body: one made with content= is read already, and
        # would never iterate its stream.
        body = _body_class(self._backend)(response.stream, fault, request, self._backend)
        return self._backend.response(
            response.status_code,
            headers=response.headers,
            stream=body,
            extensions=dict(response.extensions),
            request=request,
        )

    # --- sync

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        record = self._pick(request)
        fault = record.fault
        if _answers_itself(fault):
            request.read()  # it was sent: a test may look at its body, on its record too
            record.request._content = request.content
        if fault is not None and fault.kind in _IN_PLACE:
            return self._in_place(fault, request)
        if fault is not None and fault.status_code is not None:
            response = self._own_answer(fault, request)
        else:
            response = self._send(request)
        return response if fault is None else self._with_body_fault(fault, response, request)

    def _send(self, request: httpx.Request) -> httpx.Response:
        if self._handler is None:
            inner = self._inner_sync()
            if inner is None:
                raise ConfigurationError(
                    "this FaultTransport wraps an async transport: use it with an AsyncClient"
                )
            response: httpx.Response = inner.handle_request(request)
            return response
        request.read()
        response = self._handler(request)
        if inspect.isawaitable(response):
            if inspect.iscoroutine(response):
                response.close()  # never awaited: closed here rather than warned of later
            raise ConfigurationError(
                "this FaultTransport's handler is async: use it with an AsyncClient"
            )
        return response

    def _inner_sync(self) -> Any:
        """The inner transport if it serves sync clients, else None."""
        fits = isinstance(self._transport, self._backend.transport)
        return self._transport if fits else None

    def _inner_async(self) -> Any:
        """The inner transport if it serves async clients, else None."""
        fits = isinstance(self._transport, self._backend.async_transport)
        return self._transport if fits else None

    def close(self) -> None:
        inner = self._inner_sync()
        if inner is not None:
            inner.close()

    def __enter__(self: _T) -> _T:
        inner = self._inner_sync()
        if inner is not None:
            inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        inner = self._inner_sync()
        if inner is not None:
            inner.__exit__(exc_type, exc_value, traceback)

    # --- async

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        record = self._pick(request)
        fault = record.fault
        if _answers_itself(fault):
            await request.aread()
            record.request._content = request.content
        if fault is not None and fault.kind in _IN_PLACE:
            return self._in_place(fault, request)
        if fault is not None and fault.status_code is not None:
            response = self._own_answer(fault, request)
        else:
            response = await self._send_async(request)
        return response if fault is None else self._with_body_fault(fault, response, request)

    async def _send_async(self, request: httpx.Request) -> httpx.Response:
        if self._handler is None:
            inner = self._inner_async()
            if inner is None:
                raise ConfigurationError(
                    "this FaultTransport wraps a sync transport: use it with a Client"
                )
            response: httpx.Response = await inner.handle_async_request(request)
            return response
        await request.aread()
        response = self._handler(request)
        if inspect.isawaitable(response):
            response = await response
        return response

    async def aclose(self) -> None:
        inner = self._inner_async()
        if inner is not None:
            await inner.aclose()

    async def __aenter__(self: _T) -> _T:
        inner = self._inner_async()
        if inner is not None:
            await inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        inner = self._inner_async()
        if inner is not None:
            await inner.__aexit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        seed = "" if self.seed is None else f", seed={self.seed}"
        return f"<{type(self).__name__} {len(self.calls)} calls{seed}>"


class FaultTransport(_FaultDriver, httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport that plays scripted faults, for testing code under failures.

    `FaultTransport(transport=None, *, faults=(), cycle=False, rate=None, seed=None,
    match=None)` wraps `transport`: an httpx transport (sync for a `Client`, async for an
    `AsyncClient`; `httpx.MockTransport` is both), a handler function `request -> response`
    (async allowed with an `AsyncClient`), or by default one answering every request 200
    with an empty body. Which requests get which `Fault`:

    - `faults=[...]`: one each, in order, then every request passes through; `None` in the
      list lets that request pass.
    - `faults=[...], cycle=True`: the same list over and over.
    - `faults=Fault.status(503), rate=0.1, seed=7`: each request gets the fault with
      probability 0.1 (one of the faults, picked at random, if several). The same seed gives
      the same sequence; without one a seed is drawn, and kept in `.seed` to replay a failure.
    - `match=lambda request: request.url.path == "/v1/charges"`: only the requests it holds
      for take part; the others pass through, and use up nothing of the schedule.

    `.calls` records every request with its fault (None: passed through):

        transport = FaultTransport(faults=[Fault.status(503, headers={"Retry-After": "0"})])
        with httpx.Client(transport=ResilientTransport(transport)) as client:
            client.get("https://api.example.com/v1/users/7")
        assert [call.fault for call in transport.calls] == [
            Fault.status(503, headers={"Retry-After": "0"}), None
        ]

    The waits of a slow body are real, whether or not `no_wait()` is active. Closing it closes
    the inner transport. Bad arguments raise `ConfigurationError`.
    """
