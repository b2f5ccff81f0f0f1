"""Replaying file bodies against a real server: whole on every attempt, or sent once.

A multipart body is retried only if every file in it can be rewound (`seekable()` and a working
`seek`), and so is a `content=` file object; anything else is sent once and the 503 raised.
`httpx.MockTransport` reads the body itself and would hide an empty resend: these tests use the
uvicorn server, which records every body as it arrives. `/flaky/{id}?fail=1` answers 503 then
200, so a wrong second attempt shows as a success instead of the 503.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from _support import Flavour, flavour
from httpx_resilience import ServiceUnavailableError

from ._support import Runner
from .conftest import SCRIPTS, LiveServer, RecordedRequest, new_id

# Three of httpx's 64 KiB reads: a part cut short or sent twice changes the length.
PAYLOAD = bytes(range(256)) * 600
OTHER = b"second file " * 1000


class PipeLike:
    """What wraps a pipe or a socket: `read()` (and iteration), but no `seek` or `tell`."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._offset + size
        chunk = self._data[self._offset : end]
        self._offset += len(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(65536), b"")


class Unseekable(io.RawIOBase):
    """A binary stream whose `seekable()` is False and whose `seek` raises, like `open()` of a FIFO."""

    def __init__(self, data: bytes) -> None:
        self._data = PipeLike(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _advanced(data: bytes) -> io.BytesIO:
    file = io.BytesIO(data)
    file.read(100)
    return file


def _real_file(stack: ExitStack, tmp_path: Path) -> Any:
    path = tmp_path / "upload.bin"
    path.write_bytes(PAYLOAD)
    return stack.enter_context(path.open("rb"))


# name -> (the `files=` for one request, given an ExitStack and a directory); one file, PAYLOAD.
FilesFactory = Callable[[ExitStack, Path], dict[str, Any]]
MULTIPART_REPLAYED: dict[str, FilesFactory] = {
    "bytesio": lambda stack, tmp: {"f": ("a.bin", io.BytesIO(PAYLOAD))},
    "real file": lambda stack, tmp: {"f": ("a.bin", _real_file(stack, tmp))},
    # httpx sends a multipart file from its start whatever its position: so must every retry.
    "advanced bytesio": lambda stack, tmp: {"f": ("a.bin", _advanced(PAYLOAD))},
}
MULTIPART_ONCE: dict[str, FilesFactory] = {
    "pipe-like": lambda stack, tmp: {"f": ("a.bin", PipeLike(PAYLOAD))},
    "seekable false": lambda stack, tmp: {"f": ("a.bin", Unseekable(PAYLOAD))},
    "one seekable one not": lambda stack, tmp: {
        "g": ("b.txt", io.BytesIO(OTHER)),
        "f": ("a.bin", PipeLike(PAYLOAD)),
    },
}


def _records(sid: str, server: LiveServer) -> list[RecordedRequest]:
    return [r for r in server.requests() if r.path == f"/flaky/{sid}"]


def _digest(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def _check_multipart_whole(record: RecordedRequest, files: int) -> None:
    """The record holds the whole multipart body: every file once, and as long as declared."""
    body = bytes(record.body)
    assert record.body_complete
    assert body.count(PAYLOAD) == 1
    if files == 2:
        assert body.count(OTHER) == 1
    declared = record.headers.get("content-length")
    if declared is not None:
        assert int(declared) == len(body)


def _check_replayed_multipart(sid: str, server: LiveServer) -> None:
    records = _records(sid, server)
    assert len(records) == 2
    for record in records:
        _check_multipart_whole(record, 1)
    # Same boundary, same bytes: the retry is the first attempt's body again.
    assert _digest(bytes(records[1].body)) == _digest(bytes(records[0].body))
    assert records[0].headers["idempotency-key"] == records[1].headers["idempotency-key"]


def _check_sent_once(err: ServiceUnavailableError, sid: str, server: LiveServer) -> RecordedRequest:
    assert err.attempts == 1
    assert len(err.history) == 1
    assert SCRIPTS.get(sid).seen == 1
    (record,) = _records(sid, server)
    return record


# --- files= (httpx reads the files synchronously, in the async clients too) -------------------


@pytest.mark.parametrize("case", list(MULTIPART_REPLAYED))
def test_multipart_with_seekable_file_is_resent_whole(
    run: Runner, server: LiveServer, tmp_path: Path, case: str
) -> None:
    """A multipart body whose file can be rewound meets 503 then 200 and carries the whole file both times."""

    async def scenario() -> None:
        sid = new_id()
        with ExitStack() as stack:
            files = MULTIPART_REPLAYED[case](stack, tmp_path)
            async with run.client() as client:
                response = await client.post(
                    server.url(f"/flaky/{sid}", fail=1), data={"purpose": "replay"}, files=files
                )
        assert response.status_code == 200
        _check_replayed_multipart(sid, server)

    run(scenario)


@pytest.mark.parametrize("case", list(MULTIPART_ONCE))
def test_multipart_with_unseekable_file_is_sent_once(
    run: Runner, server: LiveServer, tmp_path: Path, case: str
) -> None:
    """A multipart body with a file that cannot be rewound is sent once, whole, and the 503 raised."""

    async def scenario() -> None:
        sid = new_id()
        with ExitStack() as stack:
            files = MULTIPART_ONCE[case](stack, tmp_path)
            async with run.client() as client:
                with pytest.raises(ServiceUnavailableError) as excinfo:
                    await client.post(server.url(f"/flaky/{sid}", fail=1), files=files)
        record = _check_sent_once(excinfo.value, sid, server)
        _check_multipart_whole(record, len(files))

    run(scenario)


# --- content= ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["bytesio", "real file"])
def test_seekable_content_file_is_resent_whole_sync(
    hx: Flavour, server: LiveServer, tmp_path: Path, case: str
) -> None:
    """Sync: a `content=` file that can be rewound meets 503 then 200 and is sent whole both times."""
    sid = new_id()
    with ExitStack() as stack, hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        content = io.BytesIO(PAYLOAD) if case == "bytesio" else _real_file(stack, tmp_path)
        response = client.post(server.url(f"/flaky/{sid}", fail=1), content=content)
    assert response.status_code == 200
    records = _records(sid, server)
    assert [_digest(bytes(r.body)) for r in records] == [_digest(PAYLOAD)] * 2
    assert all(r.body_complete for r in records)


def test_advanced_content_file_is_resent_from_its_first_position(server: LiveServer) -> None:
    """httpx2: a `content=` file the caller had read into is resent from where the first attempt began."""
    # Only httpx2: httpx declares the whole file's length while sending the rest, so there
    # the first attempt already fails (h11: "Too little data for declared Content-Length").
    hx = flavour("httpx2")
    sid = new_id()
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.post(server.url(f"/flaky/{sid}", fail=1), content=_advanced(PAYLOAD))
    assert response.status_code == 200
    assert [_digest(bytes(r.body)) for r in _records(sid, server)] == [_digest(PAYLOAD[100:])] * 2


def test_non_seekable_content_object_is_sent_once(hx: Flavour, server: LiveServer) -> None:
    """Sync: a `content=` object without seek is sent once and the 503 raised."""
    sid = new_id()
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        pytest.raises(ServiceUnavailableError) as excinfo,
    ):
        client.post(server.url(f"/flaky/{sid}", fail=1), content=PipeLike(PAYLOAD))
    record = _check_sent_once(excinfo.value, sid, server)
    assert _digest(bytes(record.body)) == _digest(PAYLOAD)


def test_generator_content_is_sent_once(run: Runner, server: LiveServer) -> None:
    """A `content=` generator (an async one in the async modes) is one-shot: sent once, whole,
    and the 503 raised."""

    async def scenario() -> None:
        sid = new_id()
        content = run.one_shot([PAYLOAD[:1000], PAYLOAD[1000:]])
        async with run.client() as client:
            with pytest.raises(ServiceUnavailableError) as excinfo:
                await client.post(server.url(f"/flaky/{sid}", fail=1), content=content)
        record = _check_sent_once(excinfo.value, sid, server)
        assert _digest(bytes(record.body)) == _digest(PAYLOAD)

    run(scenario)
