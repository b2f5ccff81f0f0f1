"""Replaying a request's body: whether it can be sent again, and putting it back to send it.

No I/O of its own: it asks the body's files whether they can seek, and seeks them.
"""

from __future__ import annotations

import weakref
from typing import Any

import httpx

from ._streams import CountedRequestStream

__all__ = ["is_replayable", "rewind"]


# Where each replayable `content=` file began, by its stream: every later attempt starts there
# again, as the first did. Weak, so an entry goes with its request.
_STARTS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def is_replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent again: bytes, str, JSON, form, and files that can be rewound.

    A file passed as `content=`, and every file of a multipart body, must be seekable
    (`seekable()` true and `seek` working); anything else that streams is sent once. Where a
    `content=` file stands now is noted, for `rewind` to send it from there again.
    """
    stream = request.stream
    if type(stream) is httpx.ByteStream:  # bytes, str, JSON or a form: the common case first
        return True
    stream = _body_stream(stream)
    kind = type(stream).__name__  # by name, so httpx2's classes count too
    if kind == "ByteStream":
        return True
    if kind == "MultipartStream":
        # Moving the files to their start is no change: httpx seeks each one there before it
        # reads it. Where that seek fails, httpx reads on from where the last pass ended, so a
        # retry would carry an empty part.
        return all(_seeks(file, 0) for file in _files(stream))
    if kind == "IteratorByteStream":
        # httpx sends a `content=` file from where it stands, not from its start.
        file = stream._stream
        start = _tell(file) if hasattr(file, "read") else None
        if start is not None and _seeks(file, start):
            _STARTS[stream] = start
            return True
    return False


def rewind(request: httpx.Request) -> None:
    """Before a retry: put the files of a replayable body back where the first attempt began."""
    stream = _body_stream(request.stream)
    if type(stream).__name__ == "MultipartStream":
        for file in _files(stream):
            file.seek(0)
    else:
        start = _STARTS.get(stream)
        if start is not None:
            stream._stream.seek(start)


def _body_stream(stream: Any) -> Any:
    """The body the caller gave, inside the request-size limit's counting wrapper if any."""
    # A resilient transport stacked below sees the wrapper of the one above.
    while isinstance(stream, CountedRequestStream):
        stream = stream._stream
    return stream


def _files(stream: Any) -> list[Any]:
    """The file objects of a multipart stream (a file given as bytes or str is not one)."""
    files = (getattr(field, "file", None) for field in stream.fields)
    return [file for file in files if file is not None and not isinstance(file, (bytes, str))]


def _seeks(file: Any, position: int) -> bool:
    """Whether `file` says it is seekable and moves to `position` when asked."""
    try:
        if not file.seekable():
            return False
        file.seek(position)
    except Exception:  # no seekable() or seek(), or one that fails: the file is read once
        return False
    return True


def _tell(file: Any) -> int | None:
    try:
        position = file.tell()
    except Exception:  # a stream that cannot say where it is cannot be put back there
        return None
    return position if isinstance(position, int) and not isinstance(position, bool) else None
