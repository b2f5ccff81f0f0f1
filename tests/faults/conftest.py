"""A fault-injecting HTTP/1.1 server on loopback, and the log the matrix writes at the end.

HTTP itself has to be breakable, so this is no ASGI app: a raw asyncio TCP server, running in
a background thread on its own event loop, parses the request line, headers and
Content-Length body itself and then acts out the script the path names:

- `/f/{fault}/{run_id}`: the fault's script (see `SCRIPTS`). Each test case uses a fresh
  `run_id`, so its attempt counter, the keys it saw and what it executed are its own.
- `/ok/{run_id}`: a healthy 200, for checking afterwards that the client's pool still works.

Per run the server records every attempt (method, headers, whether the body arrived whole,
the TCP connection it came on) and counts "executions": a POST is executed when its whole
body arrived, before the script acts out its fault (the server may have done the work
whenever it got the request), except for a 429, which a rate limiter answers before any work. A keyed POST executes once per key and replays the stored
result after that; every unkeyed POST that arrives whole executes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import itertools
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LAST_RUN = Path(__file__).with_name("last_run.json")

# --- What the server saw -----------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One request of a run's fault path, as it arrived."""

    method: str
    headers: dict[str, str]  # lower-case names
    body_complete: bool
    body_size: int
    connection: int

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Run:
    """Everything one test case's requests did to the server."""

    attempts: list[Attempt] = field(default_factory=list)
    executions: int = 0
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: list[int] = field(default_factory=list)  # fault path, in order of first use
    healthy_connections: list[int] = field(default_factory=list)
    healthy: int = 0
    bytes_sent: int = 0  # body bytes written by the big-body script
    busy: int = 0  # scripts still acting (a trickle or a big body outlives the client's wait)

    def copy(self) -> Run:
        return Run(
            attempts=list(self.attempts),
            executions=self.executions,
            stored=dict(self.stored),
            connections=list(self.connections),
            healthy_connections=list(self.healthy_connections),
            healthy=self.healthy,
            bytes_sent=self.bytes_sent,
            busy=self.busy,
        )

    @property
    def keys(self) -> list[str | None]:
        return [attempt.key for attempt in self.attempts]


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    body_complete: bool


@dataclass
class Context:
    """What a script gets: the request, its 1-based attempt number, and the socket."""

    request: Request
    attempt: int
    run: Run
    result: dict[str, Any]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: FaultServer


Script = Callable[[Context], Awaitable[bool]]  # returns whether to keep the connection

# --- Response helpers --------------------------------------------------------------------------

_JSON = "application/json"


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    phrase = http.HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def respond(
    ctx: Context,
    status: int,
    body: bytes = b"",
    content_type: str | None = _JSON,
    headers: tuple[tuple[str, str], ...] = (),
    close: bool = False,
) -> bool:
    """A whole response with its Content-Length; returns whether the connection stays open."""
    all_headers = [("content-length", str(len(body))), *headers]
    if content_type is not None:
        all_headers.append(("content-type", content_type))
    if close:
        all_headers.append(("connection", "close"))
    ctx.writer.write(_head(status, all_headers) + body)
    await ctx.writer.drain()
    return not close


async def ok(ctx: Context) -> bool:
    payload = {"attempt": ctx.attempt, **ctx.result}
    return await respond(ctx, 200, json.dumps(payload).encode())


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a FIN."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def wait_for_eof(reader: asyncio.StreamReader, limit: float = 5.0) -> None:
    """Wait until the client goes away (or `limit` seconds pass)."""

    async def drain() -> None:
        while await reader.read(65536):
            pass

    with contextlib.suppress(Exception):
        await asyncio.wait_for(drain(), limit)


def _json_error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "code": code}}).encode()


# --- The fault scripts -------------------------------------------------------------------------


async def reset_before_response(ctx: Context) -> bool:
    reset(ctx.writer)
    return False


async def _reset_mid_body(ctx: Context, status: int) -> bool:
    head = _head(status, [("content-type", "text/plain"), ("content-length", "1000")])
    ctx.writer.write(head + b"x" * 100)
    await ctx.writer.drain()
    # The reset lands while the client waits for the rest of the body (what was sent before
    # it is still delivered first).
    await asyncio.sleep(0.05)
    reset(ctx.writer)
    return False


async def reset_mid_body(ctx: Context) -> bool:
    return await _reset_mid_body(ctx, 200)


async def reset_mid_error_body(ctx: Context) -> bool:
    return await _reset_mid_body(ctx, 503)


async def headers_never_sent(ctx: Context) -> bool:
    await wait_for_eof(ctx.reader)
    return False


async def _trickle(ctx: Context, status: int) -> bool:
    size = 20
    head = _head(status, [("content-type", "text/plain"), ("content-length", str(size))])
    ctx.writer.write(head)
    with contextlib.suppress(Exception):
        await ctx.writer.drain()
        for _ in range(size):
            await asyncio.sleep(0.5)
            if ctx.writer.is_closing():
                break
            ctx.writer.write(b"x")
            await ctx.writer.drain()
    return False


async def trickle(ctx: Context) -> bool:
    return await _trickle(ctx, 200)


async def trickle_error_body(ctx: Context) -> bool:
    return await _trickle(ctx, 503)


async def malformed(ctx: Context) -> bool:
    ctx.writer.write(b"HELLO WORLD\r\n\r\n")
    await ctx.writer.drain()
    return False


async def storm_503(ctx: Context) -> bool:
    body = _json_error(f"overloaded (attempt {ctx.attempt})", "overloaded")
    return await respond(ctx, 503, body, headers=(("retry-after", "0"),))


def _refused_before_work(ctx: Context) -> None:
    """A rate limiter answers 429 before any work: take back the execution the request was
    counted for when it arrived (and the result stored under its key)."""
    if ctx.result.get("execution") is None or ctx.result.get("replayed"):
        return
    with ctx.server._lock:
        ctx.run.executions -= 1
        key = ctx.request.headers.get("idempotency-key")
        if key is not None:
            ctx.run.stored.pop(key, None)


async def rate_limited_until_date(ctx: Context) -> bool:
    _refused_before_work(ctx)
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    body = _json_error("slow down, try again later", "rate_limited")
    return await respond(ctx, 429, body, headers=(("retry-after", when),))


BIG_BODY = 100 * 1024 * 1024
_CHUNK = 64 * 1024


async def big_error_body(ctx: Context) -> bool:
    ctx.writer.write(
        _head(500, [("content-type", "text/plain"), ("content-length", str(BIG_BODY))])
    )
    chunk = b"E" * _CHUNK
    with contextlib.suppress(Exception):
        left = BIG_BODY
        while left > 0 and not ctx.writer.is_closing():
            piece = chunk[: min(_CHUNK, left)]
            ctx.writer.write(piece)
            await ctx.writer.drain()
            left -= len(piece)
            ctx.server.add_sent(ctx.run, len(piece))
    return False


async def timeout_408(ctx: Context) -> bool:
    body = _json_error("request took too long", "request_timeout")
    return await respond(ctx, 408, body, close=True)


async def early_close(ctx: Context) -> bool:
    return False  # the whole request was read: close without a word


# (status, content type, body) of each error body format of SPEC §2.
ERROR_BODIES: dict[str, tuple[int, str | None, bytes]] = {
    "problem_json": (
        400,
        "application/problem+json",
        json.dumps(
            {
                "type": "https://example.com/probs/out-of-credit",
                "title": "You do not have enough credit.",
                "status": 400,
                "detail": "Your current balance is 30, but that costs 50.",
                "instance": "/account/12345/msgs/abc",
                "balance": 30,
            }
        ).encode(),
    ),
    "fastapi_detail_str": (400, _JSON, json.dumps({"detail": "Item name is invalid"}).encode()),
    "fastapi_detail_list": (
        422,
        _JSON,
        json.dumps(
            {"detail": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]}
        ).encode(),
    ),
    "error_object": (
        400,
        _JSON,
        json.dumps(
            {
                "error": {
                    "message": "The model does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                    "param": "model",
                }
            }
        ).encode(),
    ),
    "error_string": (400, _JSON, json.dumps({"error": "unsupported_grant_type"}).encode()),
    "message_code": (
        422,
        _JSON,
        json.dumps({"message": "Name is already taken", "code": "name_taken"}).encode(),
    ),
    "jsonapi_errors": (
        422,
        "application/vnd.api+json",
        json.dumps(
            {
                "errors": [
                    {
                        "status": "422",
                        "code": "too_short",
                        "title": "Invalid Attribute",
                        "detail": "Name is too short",
                        "source": {"pointer": "/data/attributes/name"},
                    }
                ]
            }
        ).encode(),
    ),
    "plain_text": (400, "text/plain; charset=utf-8", b"the request was not understood\n"),
    "html": (
        400,
        "text/html; charset=utf-8",
        b"<!DOCTYPE html><html><head><style>h1 {color: red}</style><title>400 Bad Request"
        b"</title></head><body><h1>Bad Request</h1><p>nginx</p></body></html>",
    ),
    "empty": (400, None, b""),
    # Latin-1 bytes with no charset: decoded as UTF-8 with replacement, never raising.
    "non_utf8": (400, "text/plain", "Caf\xe9 d\xe9j\xe0 ferm\xe9".encode("latin-1")),
    "truncated_json": (400, _JSON, b'{"error": {"message": "cut'),
}


def _error_body_script(name: str) -> Script:
    status, content_type, body = ERROR_BODIES[name]

    async def script(ctx: Context) -> bool:
        return await respond(ctx, status, body, content_type)

    return script


def first(count: int, failure: Script) -> Script:
    """`failure` on the first `count` attempts of a run, then a 200."""

    async def script(ctx: Context) -> bool:
        if ctx.attempt <= count:
            return await failure(ctx)
        return await ok(ctx)

    return script


def then(first_script: Script, rest: Script) -> Script:
    """`first_script` on attempt 1, `rest` on every later attempt."""

    async def script(ctx: Context) -> bool:
        return await (first_script if ctx.attempt == 1 else rest)(ctx)

    return script


ALWAYS = 10**6  # "the first ALWAYS attempts": every attempt

SCRIPTS: dict[str, Script] = {
    "reset_before_response": first(2, reset_before_response),
    "reset_mid_body": first(ALWAYS, reset_mid_body),
    "reset_mid_error_body": first(2, reset_mid_error_body),
    "503_then_reset_mid_body": then(storm_503, reset_mid_body),
    "headers_never_sent": first(1, headers_never_sent),
    "trickle": first(ALWAYS, trickle),
    "trickle_error_body": first(1, trickle_error_body),
    "malformed": first(2, malformed),
    "503_storm": first(ALWAYS, storm_503),
    "429_http_date": first(1, rate_limited_until_date),
    "big_error_body": first(1, big_error_body),
    "408_then_ok": first(1, timeout_408),
    "early_close": first(2, early_close),
    **{f"body_{name}": _error_body_script(name) for name in ERROR_BODIES},
}

# --- The server --------------------------------------------------------------------------------


class FaultServer:
    """The raw asyncio server, in a thread with its own loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-server", daemon=True
        )
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}
        self._connection_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.errors: list[str] = []  # unexpected exceptions in handlers

    # Lifecycle, from the test thread.

    def start(self) -> None:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    # What tests ask.

    def url(self, fault: str, run_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/f/{fault}/{run_id}"

    def healthy_url(self, run_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/ok/{run_id}"

    def run(self, run_id: str) -> Run:
        """A snapshot of what the run's requests did so far."""
        with self._lock:
            run = self._runs.get(run_id)
            return run.copy() if run is not None else Run()

    def settled(self, run_id: str, limit: float = 3.0) -> Run:
        """The run once no script of it is acting any more (or after `limit` seconds)."""
        deadline = time.monotonic() + limit
        run = self.run(run_id)
        while run.busy and time.monotonic() < deadline:
            time.sleep(0.01)
            run = self.run(run_id)
        return run

    def add_sent(self, run: Run, size: int) -> None:
        with self._lock:
            run.bytes_sent += size

    # Serving, on the server's loop.

    def _run(self, run_id: str) -> Run:
        with self._lock:
            return self._runs.setdefault(run_id, Run())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = next(self._connection_ids)
        try:
            while True:
                request = await _read_request(reader)
                if request is None or not await self._serve(request, connection, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        except Exception as exc:  # pragma: no cover - shown by the `fault_server` fixture
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _serve(
        self,
        request: Request,
        connection: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        parts = request.target.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "ok":
            run = self._run(parts[1])
            with self._lock:
                run.healthy += 1
                if connection not in run.healthy_connections:
                    run.healthy_connections.append(connection)
            writer.write(_head(200, [("content-length", "11"), ("content-type", _JSON)]))
            writer.write(b'{"ok":true}')
            await writer.drain()
            return True
        script = SCRIPTS.get(parts[1]) if len(parts) == 3 and parts[0] == "f" else None
        if script is None:
            writer.write(_head(404, [("content-length", "0")]))
            await writer.drain()
            return True
        run = self._run(parts[2])
        with self._lock:
            run.attempts.append(
                Attempt(
                    request.method,
                    request.headers,
                    request.body_complete,
                    len(request.body),
                    connection,
                )
            )
            if connection not in run.connections:
                run.connections.append(connection)
            attempt = len(run.attempts)
            result = _execute(run, request)
            run.busy += 1
        try:
            return await script(Context(request, attempt, run, result, reader, writer, self))
        finally:
            with self._lock:
                run.busy -= 1


def _execute(run: Run, request: Request) -> dict[str, Any]:
    """Do the POST's work once per key (every time without one); the caller holds the lock."""
    if request.method != "POST" or not request.body_complete:
        return {"execution": None, "replayed": False}
    key = request.headers.get("idempotency-key")
    if key is not None and key in run.stored:
        return {**run.stored[key], "replayed": True}
    run.executions += 1
    result = {"execution": run.executions, "replayed": False}
    if key is not None:
        run.stored[key] = result
    return result


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request: line, headers and a Content-Length body. None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or "0")
    body, complete = b"", True
    if length:
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            body, complete = exc.partial, False
    return Request(method, target, headers, body, complete)


def new_run_id() -> str:
    return secrets.token_hex(8)


def refused_url() -> str:
    """A loopback URL on a port that nothing listens on: bound, read, closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/f/refused/nobody"


# --- Fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, f"the fault server's handlers failed: {server.errors}"


@dataclass
class MatrixLog:
    """Every case's outcome, written to `last_run.json` when the session ends."""

    notes: dict[str, str] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def write(self, path: Path = LAST_RUN) -> None:
        data = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **vars(self)}
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def matrix_log() -> Iterator[MatrixLog]:
    log = MatrixLog()
    yield log
    if log.cases:
        log.write()
