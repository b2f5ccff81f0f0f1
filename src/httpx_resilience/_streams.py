"""Byte streams the transports put around bodies.

- `CountedRequestStream` raises `RequestTooLargeError` once a request body of unknown size
  passes the limit.
- `SyncReplayStream` / `AsyncReplayStream` hand on a body of which a prefix was already read.
- `SyncMappedStream` / `AsyncMappedStream` wrap a response the caller will iterate, so that a
  failure mid-body still surfaces as a typed `StreamError`; `close()` closes upstream.
- `TypedDecoder` does the same for httpx's own `Content-Encoding` decoding.
- `read_prefix` / `aread_prefix` read an error body up to a cap and leave it replayable.
- `buffer_body` / `abuffer_body` read a success body before it is handed on
  (`ResilientTransport(buffer=...)`), so a failure mid-way fails the attempt, not the caller.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from ._errors import APIError

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = [
    "AsyncMappedStream",
    "AsyncReplayStream",
    "CountedRequestStream",
    "SyncMappedStream",
    "SyncReplayStream",
    "TypedDecoder",
    "abuffer_body",
    "aread_prefix",
    "buffer_body",
    "guard_decoding",
    "read_prefix",
]

ErrorFactory = Callable[[BaseException], APIError]
# A monotonic clock and the time on it when reading must stop; None: no deadline.
Deadline = tuple[Callable[[], float], float] | None


def _passed(until: Deadline) -> bool:
    return until is not None and until[0]() >= until[1]


class CountedRequestStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body that stops with an error once more than `limit` bytes went through it."""

    def __init__(
        self,
        stream: httpx.SyncByteStream | httpx.AsyncByteStream,
        limit: int,
        too_large: Callable[[int], APIError],
    ) -> None:
        self._stream = stream
        self._limit = limit
        self._too_large = too_large

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        chunks = iter(self._stream)  # type: ignore[arg-type]
        for chunk in chunks:
            sent += len(chunk)
            if sent > self._limit:
                for iterator in (chunks, self._callers_iterator()):
                    if inspect.isgenerator(iterator):
                        iterator.close()
                raise self._too_large(sent)
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        chunks = self._stream.__aiter__()  # type: ignore[union-attr]
        async for chunk in chunks:
            sent += len(chunk)
            if sent > self._limit:
                # Stopping early must finalise the async generators here, inside the event
                # loop, not later from the garbage collector (trio warns of those).
                for iterator in (chunks, self._callers_iterator()):
                    if inspect.isasyncgen(iterator):
                        await iterator.aclose()
                raise self._too_large(sent)
            yield chunk

    def _callers_iterator(self) -> object:
        # httpx wraps a caller's generator body in a generator of its own, which does not
        # close the caller's when closed. Only generators are closed: a file stays the
        # caller's to close.
        return getattr(self._stream, "_stream", None)


class SyncReplayStream(httpx.SyncByteStream):
    """`prefix`, then whatever the half-read upstream iterator still holds.

    `prefix` is bytes, or the chunks as they were read (a buffered body is never joined: that
    would hold it twice). With `error`, the upstream failed after `prefix`: the replay fails
    the same way, so a reader never takes a cut-off body for a whole one.
    """

    def __init__(
        self,
        prefix: bytes | list[bytes],
        rest: Iterator[bytes] | None,
        upstream: httpx.SyncByteStream,
        error: Exception | None = None,
    ) -> None:
        self._prefix = prefix
        self._rest = rest
        self._upstream = upstream
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        prefix = self._prefix
        if isinstance(prefix, list):
            yield from prefix
        elif prefix:
            yield prefix
        if self._rest is not None:
            yield from self._rest
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if close is not None:
            close()
        # An error's traceback keeps this stream alive: let go of the bytes it replayed.
        self._prefix, self._rest = b"", None
        self._upstream.close()


class AsyncReplayStream(httpx.AsyncByteStream):
    """The async twin of `SyncReplayStream`."""

    def __init__(
        self,
        prefix: bytes | list[bytes],
        rest: AsyncIterator[bytes] | None,
        upstream: httpx.AsyncByteStream,
        error: Exception | None = None,
    ) -> None:
        self._prefix = prefix
        self._rest = rest
        self._upstream = upstream
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        prefix = self._prefix
        if isinstance(prefix, list):
            for chunk in prefix:
                yield chunk
        elif prefix:
            yield prefix
        if self._rest is not None:
            async for chunk in self._rest:
                yield chunk
        if self._error is not None:
            raise self._error

    async def aclose(self) -> None:
        # The half-read iterator is an async generator: finalise it here, in the event loop,
        # or trio reports it unclosed when the garbage collector finds it.
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()
        self._prefix, self._rest = b"", None
        await self._upstream.aclose()


class SyncMappedStream(httpx.SyncByteStream):
    """A response body whose failures, while iterated or closed, become typed errors.

    It holds what the error needs (the call, the status, the request id), so a handed-on
    response costs this one object and no more.
    """

    __slots__ = ("_call", "_request_id", "_status", "_stream")

    def __init__(
        self, stream: httpx.SyncByteStream, call: Any, status: int, request_id: str | None
    ) -> None:
        self._stream = stream
        self._call = call
        self._status = status
        self._request_id = request_id

    def _map(self, exc: BaseException) -> APIError:
        from ._decide import stream_failure

        return stream_failure(self._call, exc, self._status, self._request_id)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except APIError:
            raise
        except Exception as exc:
            raise self._map(exc) from exc

    def close(self) -> None:
        try:
            self._stream.close()
        except APIError:
            raise
        except Exception as exc:
            raise self._map(exc) from exc


class AsyncMappedStream(httpx.AsyncByteStream):
    """The async twin of `SyncMappedStream`."""

    __slots__ = ("_call", "_chunks", "_request_id", "_status", "_stream")

    def __init__(
        self, stream: httpx.AsyncByteStream, call: Any, status: int, request_id: str | None
    ) -> None:
        self._stream = stream
        self._call = call
        self._status = status
        self._request_id = request_id
        self._chunks: AsyncIterator[bytes] | None = None

    def _map(self, exc: BaseException) -> APIError:
        from ._decide import stream_failure

        return stream_failure(self._call, exc, self._status, self._request_id)

    def __aiter__(self) -> AsyncIterator[bytes]:
        # An iterator object, not an async generator, and the inner iterator kept: when a
        # reader above stops half-way (httpx's decoder failing on a corrupt gzip body),
        # `aclose` finalises it here, in the event loop, rather than leave it to the garbage
        # collector, which trio reports.
        chunks = self._chunks = self._stream.__aiter__()
        return _MappedChunks(chunks, self._map)

    async def aclose(self) -> None:
        chunks, self._chunks = self._chunks, None
        try:
            if inspect.isasyncgen(chunks):
                await chunks.aclose()
            await self._stream.aclose()
        except APIError:
            raise
        except Exception as exc:
            raise self._map(exc) from exc


class _MappedChunks:
    """`AsyncMappedStream`'s iterator: the inner chunks, their failures typed."""

    __slots__ = ("_chunks", "_map")

    def __init__(self, chunks: AsyncIterator[bytes], map_error: ErrorFactory) -> None:
        self._chunks = chunks
        self._map = map_error

    def __aiter__(self) -> _MappedChunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except (StopAsyncIteration, APIError):
            raise
        except Exception as exc:
            raise self._map(exc) from exc


class TypedDecoder:
    """httpx's content decoder for a response, with its failures typed.

    httpx undoes `Content-Encoding` in `Response.iter_bytes`, above the transport, so a corrupt
    gzip body would raise `httpx.DecodingError` past every stream wrapper. The transport puts
    this in front of the decoder httpx would have used.
    """

    __slots__ = ("_decoder", "_map")

    def __init__(self, decoder: Any, map_error: ErrorFactory) -> None:
        self._decoder = decoder
        self._map = map_error

    def decode(self, data: bytes) -> bytes | Iterator[bytes]:
        try:
            return self._typed(self._decoder.decode(data))
        except Exception as exc:
            raise self._map(exc) from exc

    def flush(self) -> bytes | Iterator[bytes]:
        try:
            return self._typed(self._decoder.flush())
        except Exception as exc:
            raise self._map(exc) from exc

    def _typed(self, output: Any) -> bytes | Iterator[bytes]:
        # httpx's decoders return bytes; httpx2's yield them, failing as they are iterated.
        if isinstance(output, bytes):
            return output
        return self._iterate(output)

    def _iterate(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from chunks
        except Exception as exc:
            raise self._map(exc) from exc


def guard_decoding(response: httpx.Response, map_error: ErrorFactory) -> None:
    """Type the decoding failures of `response`'s body, which has a `Content-Encoding`."""
    # A private hook of httpx's Response: where it is missing, httpx's own error stands.
    get_decoder = getattr(response, "_get_content_decoder", None)
    if get_decoder is not None:
        setattr(response, "_decoder", TypedDecoder(get_decoder(), map_error))  # noqa: B010


def read_prefix(
    response: httpx.Response, limit: int, backend: Backend, until: Deadline = None
) -> tuple[bytes, bool]:
    """Read about `limit` raw bytes: (the bytes, whether they are the whole body).

    The response is left replaying them followed by any unread rest, so it can still be
    handed on whole, or closed to discard the rest with its connection. `backend` is the
    package the response belongs to, whose stream classes replay it. `until`, (clock,
    deadline): the reading stops once the deadline has passed, even if a body trickling in
    never trips a read timeout.
    """
    upstream: httpx.SyncByteStream = response.stream  # type: ignore[assignment]
    if limit == 0:
        return b"", False
    chunks: list[bytes] = []
    size = 0
    iterator: Iterator[bytes] = iter(upstream)
    try:
        for chunk in iterator:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit or _passed(until):
                break
        else:
            data = b"".join(chunks)
            upstream.close()
            response.stream = backend.byte_stream(data)
            return data, True
    except Exception as exc:
        # The body broke off. An error status still makes its error from what came; a
        # response handed on replays it and then fails as the original did.
        data = b"".join(chunks)
        with contextlib.suppress(Exception):
            upstream.close()
        response.stream = backend.sync_replay(data, None, upstream, exc)
        return data, False
    data = b"".join(chunks)
    response.stream = backend.sync_replay(data, iterator, upstream)
    return data, False


async def aread_prefix(
    response: httpx.Response, limit: int, backend: Backend, until: Deadline = None
) -> tuple[bytes, bool]:
    """The async twin of `read_prefix`."""
    upstream: httpx.AsyncByteStream = response.stream  # type: ignore[assignment]
    if limit == 0:
        return b"", False
    chunks: list[bytes] = []
    size = 0
    iterator: AsyncIterator[bytes] = upstream.__aiter__()
    try:
        async for chunk in iterator:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit or _passed(until):
                break
        else:
            data = b"".join(chunks)
            await upstream.aclose()
            response.stream = backend.byte_stream(data)
            return data, True
    except Exception as exc:
        data = b"".join(chunks)
        with contextlib.suppress(Exception):
            await upstream.aclose()
        response.stream = backend.async_replay(data, None, upstream, exc)
        return data, False
    data = b"".join(chunks)
    response.stream = backend.async_replay(data, iterator, upstream)
    return data, False


# Chunks shorter than this are gathered into pieces at least this long: a body that comes a
# few bytes at a time, kept as a list of tiny bytes objects, would cost tens of times its size.
GATHER = 16_384


class _Pieces:
    """A body's chunks as they were read, the short ones gathered."""

    __slots__ = ("list", "pending", "size")

    def __init__(self) -> None:
        self.list: list[bytes] = []
        self.pending = bytearray()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if not self.pending and len(chunk) >= GATHER:
            self.list.append(chunk)
            return
        self.pending += chunk
        if len(self.pending) >= GATHER:
            self.list.append(bytes(self.pending))
            self.pending = bytearray()

    def done(self) -> list[bytes]:
        if self.pending:
            self.list.append(bytes(self.pending))
            self.pending = bytearray()
        return self.list


def buffer_body(
    response: httpx.Response, limit: int, backend: Backend, until: Deadline = None
) -> list[bytes] | None:
    """Read `response`'s body, up to `limit` bytes, before it is handed on: its pieces when
    that was all of it (its connection is then back in the pool), else None.

    A failure on the way is raised, for the attempt to fail as any other would; the response
    is then the caller's to close. A body longer than `limit`, or one still coming when
    `until` passes, is left as it is after the pieces read, which its stream replays first.
    The pieces are kept as they came (the short ones gathered): joined, the body would be held
    twice.
    """
    upstream: httpx.SyncByteStream = response.stream  # type: ignore[assignment]
    pieces = _Pieces()
    iterator = iter(upstream)
    for chunk in iterator:
        pieces.add(chunk)
        if pieces.size > limit or _passed(until):
            response.stream = backend.sync_replay(pieces.done(), iterator, upstream)
            return None
    upstream.close()
    whole = pieces.done()
    response.stream = backend.sync_replay(whole, None, backend.byte_stream(b""))
    return whole


async def abuffer_body(
    response: httpx.Response, limit: int, backend: Backend, until: Deadline = None
) -> list[bytes] | None:
    """The async twin of `buffer_body`."""
    upstream: httpx.AsyncByteStream = response.stream  # type: ignore[assignment]
    pieces = _Pieces()
    iterator: AsyncIterator[bytes] = upstream.__aiter__()
    async for chunk in iterator:
        pieces.add(chunk)
        if pieces.size > limit or _passed(until):
            response.stream = backend.async_replay(pieces.done(), iterator, upstream)
            return None
    await upstream.aclose()
    whole = pieces.done()
    response.stream = backend.async_replay(whole, None, backend.byte_stream(b""))
    return whole


def close_response(response: httpx.Response) -> None:
    """Close a response that is not handed on, discarding an unread rest with its connection.

    A failure to close changes nothing for the error being raised.
    """
    stream: httpx.SyncByteStream = response.stream  # type: ignore[assignment]
    with contextlib.suppress(Exception):
        stream.close()
    response.is_closed = True  # so a read of it raises StreamClosed, not returns nothing


async def aclose_response(response: httpx.Response) -> None:
    """The async twin of `close_response`, shielded from cancellation.

    On the way out of a cancelled attempt the cancellation already came: unshielded, it would
    cut the close short and leave the connection checked out of the pool for good.
    """
    import anyio

    stream: httpx.AsyncByteStream = response.stream  # type: ignore[assignment]
    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
        await stream.aclose()
    response.is_closed = True  # so a read of it raises StreamClosed, not returns nothing
