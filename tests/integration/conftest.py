"""Real loopback servers for the integration suite.

- `live`: a starlette app served by uvicorn (h11) on 127.0.0.1, in a background thread, for
  the whole session. A small ASGI middleware records every request (method, path, query,
  headers, body, and the client's (host, port): distinct ports are distinct TCP connections).
- `raw`: a raw TCP server for what a well-behaved ASGI server cannot do: answer garbage, or
  cut a body off before its declared Content-Length.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import hmac
import json
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from urllib.request import parse_http_list, parse_keqv_list

import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from _support import Flavour

from ._serve import bound_socket, serve
from ._support import Runner

DIGEST_REALM = "integration@httpx-resilience"
DIGEST_USER = "user"
DIGEST_PASSWORD = "pass"
# Query parameters of /status that shape the body; every other one becomes a response header.
# `error_code` is the body's code; `code` too, but a request's `code` is a secret name (OAuth)
# whose value the transport scrubs from what the server echoes.
_BODY_PARAMS = frozenset({"fmt", "message", "code", "error_code", "type"})


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    client: tuple[str, int]
    body: bytearray = field(default_factory=bytearray)
    body_complete: bool = False


class ServerState:
    """What the server saw and the knobs tests turn, shared with the server thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[RecordedRequest] = []
        self.nonces: set[str] = set()
        self.gate = threading.Event()
        self.sent: dict[str, int] = {}

    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.sent.clear()
        self.gate = threading.Event()

    def add_sent(self, name: str, size: int) -> None:
        with self.lock:
            self.sent[name] = self.sent.get(name, 0) + size


class Recorder:
    """ASGI middleware recording each request and its body as the app reads it."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host, port = scope["client"]
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            client=(host, port),
        )
        with self.state.lock:
            self.state.records.append(record)

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                record.body += message.get("body", b"")
                if not message.get("more_body", False):
                    record.body_complete = True
            return message

        await self.app(scope, recording_receive, send)


def _error_body(
    fmt: str, status: int, message: str, code: str | None, kind: str | None
) -> tuple[str | bytes, str | None]:
    """(content, media type) of an error body in one of the formats servers use."""
    if fmt == "openai":
        error = {
            "message": message,
            "type": kind or "invalid_request_error",
            "param": None,
            "code": code,
        }
        return json.dumps({"error": error}), "application/json"
    if fmt == "fastapi":
        return json.dumps({"detail": message}), "application/json"
    if fmt == "validation":
        detail = [
            {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
            {"loc": ["query", "limit"], "msg": "Input should be a valid integer", "type": "int"},
        ]
        return json.dumps({"detail": detail}), "application/json"
    if fmt == "problem":
        problem = {
            "type": code or "https://example.com/probs/out-of-credit",
            "title": "You do not have enough credit.",
            "status": status,
            "detail": message,
            "instance": "/account/12345/msgs/abc",
            "balance": 30,
            "accounts": ["/account/12345", "/account/67890"],
            "errors": [{"pointer": "#/name", "detail": "must be a string"}],
        }
        return json.dumps(problem), "application/problem+json"
    if fmt == "jsonapi":
        item = {
            "status": str(status),
            "code": code,
            "title": "Invalid Attribute",
            "detail": message,
            "source": {"pointer": "/data/attributes/name"},
        }
        return json.dumps({"errors": [item]}), "application/vnd.api+json"
    if fmt == "text":
        return message, "text/plain; charset=utf-8"
    if fmt == "html":
        page = (
            "<!DOCTYPE html><html><head><style>h1 {color: red}</style>"
            f"<title>{message}</title></head><body><h1>Oops</h1><p>Try later.</p></body></html>"
        )
        return page, "text/html; charset=utf-8"
    if fmt == "empty":
        return b"", None
    raise ValueError(f"unknown fmt {fmt!r}")


async def status(request: Request) -> Response:
    """`/status/{code}`: that status, a body in `?fmt=`, every other query param a header."""
    code = int(request.path_params["code"])
    params = request.query_params
    headers = {k: v for k, v in params.multi_items() if k not in _BODY_PARAMS}
    if code < 400 and "fmt" not in params:
        return JSONResponse({"status": code}, status_code=code, headers=headers)
    content, media_type = _error_body(
        params.get("fmt", "openai"),
        code,
        params.get("message", f"status {code} from the test server"),
        params.get("error_code", params.get("code")),
        params.get("type"),
    )
    return Response(content, status_code=code, headers=headers, media_type=media_type)


async def _read_body(request: Request) -> bytes | None:
    try:
        return await request.body()
    except ClientDisconnect:
        return None


def _echo_payload(request: Request, body: bytes) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": dict(request.headers),
        "body": body.decode("utf-8", "replace"),
    }


async def echo(request: Request) -> Response:
    """`/echo`: what the request carried, as JSON."""
    body = await _read_body(request)
    if body is None:
        return Response(status_code=499)
    return JSONResponse(_echo_payload(request, body), headers={"x-request-id": "req_echo"})


async def echo_error(request: Request) -> Response:
    """`/echo-error?pad=N&fmt=jsonapi`: a 400 whose body repeats the request's credentials
    and query, in an OpenAI-style error or (`fmt=jsonapi`) the first of two JSON:API errors."""
    body = await _read_body(request) or b""
    headers = request.headers
    # `?pad=N` puts N filler characters first, to move the echoed values to a chosen offset.
    message = (
        "x"
        * int(request.query_params.get("pad", "0"))
        + f"invalid request: Authorization={headers.get('authorization')} "
        f"Cookie={headers.get('cookie')} X-Api-Key={headers.get('x-api-key')} "
        f"query={request.url.query} "
        f"Idempotency-Key={headers.get('idempotency-key')}"
    )
    payload: dict[str, Any] = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "code": "echoed",
            "echo": _echo_payload(request, body),
        }
    }
    if request.query_params.get("fmt") == "jsonapi":
        payload = {"errors": [{"detail": message}, {"detail": "and one more thing"}]}
    return JSONResponse(payload, status_code=400, headers={"x-request-id": "req_echo_error"})


async def redirect(request: Request) -> Response:
    """`/redirect`: a 302 to `/echo`."""
    return RedirectResponse("/echo?redirected=1", status_code=302)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_ok(request: Request, state: ServerState, known_nonce: bool = True) -> bool:
    """Check an RFC 7616 MD5 / qop=auth answer against the known user and password (and, with
    `known_nonce`, that its nonce is one the server handed out and still knows)."""
    header = request.headers.get("authorization", "")
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "digest":
        return False
    params = parse_keqv_list(parse_http_list(rest))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    required = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
    if any(name not in params for name in required):
        return False
    if (
        params["username"] != DIGEST_USER
        or params["realm"] != DIGEST_REALM
        or (known_nonce and params["nonce"] not in state.nonces)
        or params["uri"] != target
        or params["qop"] != "auth"
    ):
        return False
    ha1 = _md5(f"{DIGEST_USER}:{DIGEST_REALM}:{DIGEST_PASSWORD}")
    ha2 = _md5(f"{request.method}:{params['uri']}")
    expected = _md5(
        f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}"
    )
    return hmac.compare_digest(expected, params["response"])


def digest_route(state: ServerState) -> Route:
    async def digest(request: Request) -> Response:
        """`/digest`: protected by an HTTP Digest challenge."""
        if _digest_ok(request, state):
            return JSONResponse({"authenticated": True, "user": DIGEST_USER})
        nonce = secrets.token_hex(16)
        # Digest credentials with a nonce the server let go (`ServerState.nonces` cleared): say
        # so, as RFC 7616 servers do, for the client to answer the new nonce.
        stale = request.headers.get("authorization", "").lower().startswith("digest")
        stale = stale and _digest_ok(request, state, known_nonce=False)
        state.nonces.add(nonce)
        challenge = (
            f'Digest realm="{DIGEST_REALM}", nonce="{nonce}", qop="auth", '
            f'algorithm=MD5, opaque="{secrets.token_hex(8)}"' + (", stale=true" if stale else "")
        )
        return JSONResponse(
            {"detail": "digest credentials required"},
            status_code=401,
            headers={"www-authenticate": challenge, "x-request-id": "req_digest"},
        )

    return Route("/digest", digest)


BEARER_TOKEN = "fresh-token"


async def bearer(request: Request) -> Response:
    """`/bearer`: 200 with the Idempotency-Key it got for `Bearer fresh-token`, else a 401
    saying the token expired (what a token-refresh auth flow answers)."""
    await _read_body(request)
    if request.headers.get("authorization") == f"Bearer {BEARER_TOKEN}":
        return JSONResponse(
            {"ok": True, "idempotency_key": request.headers.get("idempotency-key")},
            headers={"x-request-id": "req_bearer_ok"},
        )
    error = {"message": "the access token expired", "type": "auth_error", "code": "token_expired"}
    return JSONResponse(
        {"error": error},
        status_code=401,
        headers={"www-authenticate": 'Bearer error="invalid_token"', "x-request-id": "req_bearer"},
    )


async def etag(request: Request) -> Response:
    """`/etag`: a 304 when `If-None-Match` names the current tag."""
    tag = '"v1"'
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"etag": tag})
    return JSONResponse({"version": 1}, headers={"etag": tag})


def chunk_bytes(index: int, size: int) -> bytes:
    """The `index`-th chunk of a streamed body: recognisable, so order and content are checked."""
    return bytes([index % 251]) * size


def streamed_body(chunks: int, size: int) -> bytes:
    """The whole body `/stream?chunks=&size=` sends."""
    return b"".join(chunk_bytes(i, size) for i in range(chunks))


def stream_routes(state: ServerState) -> list[Route]:
    async def big_error(request: Request) -> Response:
        """`/big-error?size=N`: a 500 with an N-byte body, streamed so it is never held whole."""
        size = int(request.query_params.get("size", "10485760"))
        piece = 65536

        async def body() -> AsyncIterator[bytes]:
            left = size
            while left > 0:
                chunk = b"E" * min(piece, left)
                left -= len(chunk)
                state.add_sent("big-error", len(chunk))
                yield chunk
                # A pause per chunk, so a client that went away stops the stream promptly.
                await asyncio.sleep(0)

        return StreamingResponse(body(), status_code=500, media_type="text/plain")

    async def stream(request: Request) -> Response:
        """`/stream?chunks=N&size=M`: a 200 body sent as N chunks of M bytes."""
        chunks = int(request.query_params.get("chunks", "4"))
        size = int(request.query_params.get("size", "1024"))

        async def body() -> AsyncIterator[bytes]:
            for i in range(chunks):
                state.add_sent("stream", size)
                yield chunk_bytes(i, size)
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type="application/octet-stream")

    async def stream_gated(request: Request) -> Response:
        """`/stream-gated?chunks=N&size=M`: the first chunk, then the rest once the test says so.

        If nobody opens the gate within 10 s the body is aborted, so a client that waits for
        the whole body before handing any of it on fails instead of hanging.
        """
        chunks = int(request.query_params.get("chunks", "80"))
        size = int(request.query_params.get("size", "65536"))
        gate = state.gate

        async def body() -> AsyncIterator[bytes]:
            state.add_sent("stream-gated", size)
            yield chunk_bytes(0, size)
            deadline = time.monotonic() + 10
            while not gate.is_set():
                if time.monotonic() > deadline:
                    raise RuntimeError("the test never opened the gate")
                await asyncio.sleep(0.005)
            for i in range(1, chunks):
                state.add_sent("stream-gated", size)
                yield chunk_bytes(i, size)

        return StreamingResponse(body(), media_type="application/octet-stream")

    async def stream_abort(request: Request) -> Response:
        """`/stream-abort`: a chunked 200 whose app fails after a few chunks."""

        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                yield chunk_bytes(i, 4096)
                await asyncio.sleep(0.01)
            raise RuntimeError("the test server aborts this body on purpose")

        return StreamingResponse(body(), media_type="application/octet-stream")

    return [
        Route("/big-error", big_error),
        Route("/stream", stream),
        Route("/stream-gated", stream_gated),
        Route("/stream-abort", stream_abort),
    ]


async def gzip_error(request: Request) -> Response:
    """`/gzip-error`: a 422 whose JSON body is gzip-encoded."""
    payload = {"error": {"message": "gzip decoded: name is invalid", "code": "gz_invalid"}}
    return Response(
        gzip.compress(json.dumps(payload).encode()),
        status_code=422,
        headers={"content-encoding": "gzip", "x-request-id": "req_gzip"},
        media_type="application/json",
    )


async def slow(request: Request) -> Response:
    """`/slow?delay=S`: answers after S seconds."""
    await asyncio.sleep(float(request.query_params.get("delay", "2")))
    return JSONResponse({"slow": True})


def build_app(state: ServerState) -> ASGIApp:
    routes = [
        Route("/status/{code:int}", status, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Route("/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/echo-error", echo_error, methods=["GET", "POST", "PUT"]),
        Route("/redirect", redirect),
        digest_route(state),
        Route("/etag", etag),
        Route("/bearer", bearer, methods=["GET", "POST"]),
        Route("/gzip-error", gzip_error),
        Route("/slow", slow),
        *stream_routes(state),
        *retry_routes(),
    ]
    return Recorder(Starlette(routes=routes), state)


class LiveServer:
    """The running uvicorn server: its address, and what it saw."""

    def __init__(self, port: int, state: ServerState) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.state = state

    def url(self, path: str, **params: Any) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}{path}{query}"

    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.records)

    def connections(self) -> int:
        """Distinct TCP connections the recorded requests came over."""
        return len({r.client for r in self.requests()})

    def sent(self, name: str) -> int:
        with self.state.lock:
            return self.state.sent.get(name, 0)


@pytest.fixture(scope="session")
def live() -> Iterator[LiveServer]:
    """The uvicorn server, started once for the session and stopped at its end."""
    state = ServerState()
    with serve(build_app(state), "uvicorn") as port:
        yield LiveServer(port, state)


@pytest.fixture
def server(live: LiveServer) -> LiveServer:
    """The live server with its records cleared for this test."""
    live.state.reset()
    return live


class _RawHandler(socketserver.BaseRequestHandler):
    """Reads one request head, then misbehaves as its path says."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                return
            head += data
        path = head.split(b" ", 2)[1].split(b"?", 1)[0]
        if path == b"/garbage":
            sock.sendall(b"NOT HTTP\r\n\r\n")
        elif path == b"/stream-abort":
            # Promise a megabyte, send 32 KiB in two writes, then hang up.
            sock.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                b"content-length: 1048576\r\nx-request-id: req_raw_abort\r\n\r\n"
            )
            sock.sendall(b"x" * 16384)
            time.sleep(0.05)
            sock.sendall(b"x" * 16384)
            time.sleep(0.05)
        elif path == b"/error-abort":
            # A 503 whose body breaks off a third of the way through.
            sock.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                b"content-length: 3000\r\nx-request-id: req_raw_503\r\n\r\n"
            )
            sock.sendall(b"overloaded " * 90)
            time.sleep(0.05)
        else:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")


class _RawTCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class RawServer:
    def __init__(self, port: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@pytest.fixture(scope="session")
def raw() -> Iterator[RawServer]:
    """A raw TCP server: `/garbage` answers non-HTTP; `/stream-abort` (200) and `/error-abort`
    (503) cut their bodies short."""
    tcp = _RawTCPServer(("127.0.0.1", 0), _RawHandler)
    thread = threading.Thread(
        target=tcp.serve_forever, kwargs={"poll_interval": 0.05}, name="raw-tcp", daemon=True
    )
    thread.start()
    try:
        yield RawServer(tcp.server_address[1])
    finally:
        tcp.shutdown()
        tcp.server_close()
        thread.join(timeout=5)


@pytest.fixture
def refused_url() -> str:
    """A URL on a loopback port that nothing listens on."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/nothing-here"


@pytest.fixture
def run(mode: str, hx: Flavour) -> Runner:
    """`run(scenario, *args)`: the coroutine function `scenario` in every mode (sync, asyncio,
    trio), through httpx and through httpx2."""
    return Runner(mode, hx)


@pytest.fixture
def anyio_backend() -> str:
    """`pytest.mark.anyio` tests run on trio; asyncio is covered by pytest-asyncio tests."""
    return "trio"


# --- Scripted routes for the retry tests (test_retries*.py) -----------------------------------


@dataclass
class Script:
    """What the scripted routes saw for one test-chosen id, and what `/once` executed."""

    seen: int = 0
    keys: list[str | None] = field(default_factory=list)
    attempt_headers: list[str | None] = field(default_factory=list)
    bodies: list[bytes | None] = field(default_factory=list)
    executions: int = 0
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)


class Scripts:
    """Per-id state of `/flaky/{id}` and `/once/{id}`. Each test picks fresh ids (`new_id()`),
    so tests never share state and nothing needs resetting."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._scripts: dict[str, Script] = {}

    def _get(self, script_id: str) -> Script:
        return self._scripts.setdefault(script_id, Script())

    def hit(self, script_id: str, request: Request, body: bytes | None) -> int:
        """Count one request for `script_id`; returns its 1-based number."""
        with self.lock:
            script = self._get(script_id)
            script.seen += 1
            script.keys.append(request.headers.get("idempotency-key"))
            script.attempt_headers.append(request.headers.get("x-retry-attempt"))
            script.bodies.append(body)
            return script.seen

    def execute(
        self, script_id: str, key: str | None, body: bytes | None
    ) -> tuple[dict[str, Any], bool]:
        """Run the side effect once per idempotency key (every time without one).

        Returns the result and whether it is a replay of an earlier execution's stored result.
        """
        with self.lock:
            script = self._get(script_id)
            if key is not None and key in script.stored:
                return script.stored[key], True
            script.executions += 1
            result = {
                "id": script_id,
                "execution": script.executions,
                "key": key,
                "body": (body or b"").decode("utf-8", "replace"),
            }
            if key is not None:
                script.stored[key] = result
            return result, False

    def get(self, script_id: str) -> Script:
        """A snapshot of what the routes saw for `script_id` (empty if nothing came)."""
        with self.lock:
            script = self._scripts.get(script_id, Script())
            return Script(
                seen=script.seen,
                keys=list(script.keys),
                attempt_headers=list(script.attempt_headers),
                bodies=list(script.bodies),
                executions=script.executions,
                stored=dict(script.stored),
            )


SCRIPTS = Scripts()


def new_id() -> str:
    """A fresh script id for one scenario."""
    return secrets.token_hex(8)


def _scripted_failure(params: Any, number: int) -> Response:
    """The scripted error answer: `status` (503) with the `retry_after*` hints asked for."""
    status_code = int(params.get("status", "503"))
    headers: dict[str, str] = {}
    if "retry_after" in params:
        headers["retry-after"] = params["retry_after"]
    if "retry_after_ms" in params:
        headers["retry-after-ms"] = params["retry_after_ms"]
    if "retry_after_date" in params:
        # An HTTP-date that many seconds ahead (rounded: HTTP-dates have whole seconds).
        when = round(time.time()) + float(params["retry_after_date"])
        headers["retry-after"] = email.utils.formatdate(when, usegmt=True)
    error = {"message": f"scripted {status_code}, request {number}", "code": "scripted"}
    return JSONResponse({"error": error}, status_code=status_code, headers=headers)


async def flaky(request: Request) -> Response:
    """`/flaky/{id}?fail=N&status=503&retry_after=&retry_after_ms=&retry_after_date=&delay=`:
    `status` for the first N requests with that id, then 200 with how often the id was seen and
    the idempotency keys, attempt headers and bodies it came with. `delay` seconds are slept
    before every answer (after the request is counted)."""
    script_id = request.path_params["id"]
    body = await _read_body(request)
    number = SCRIPTS.hit(script_id, request, body)
    params = request.query_params
    delay = float(params.get("delay", "0"))
    if delay:
        await asyncio.sleep(delay)
    if number <= int(params.get("fail", "0")):
        return _scripted_failure(params, number)
    script = SCRIPTS.get(script_id)
    return JSONResponse(
        {
            "id": script_id,
            "seen": script.seen,
            "keys": script.keys,
            "attempts": script.attempt_headers,
            "bodies": [(b or b"").decode("utf-8", "replace") for b in script.bodies],
        }
    )


async def once(request: Request) -> Response:
    """`/once/{id}?fail=N`: a POST endpoint that executes once per Idempotency-Key, like a real
    API, and replays the stored result for a repeated key (every keyless POST executes). The
    first N requests execute (or replay) and then answer 503: the work was done, the answer
    lost."""
    script_id = request.path_params["id"]
    body = await _read_body(request)
    number = SCRIPTS.hit(script_id, request, body)
    result, replayed = SCRIPTS.execute(script_id, request.headers.get("idempotency-key"), body)
    if number <= int(request.query_params.get("fail", "0")):
        return _scripted_failure(request.query_params, number)
    return JSONResponse(result, headers={"idempotent-replayed": "true" if replayed else "false"})


async def job(request: Request) -> Response:
    """`/job/{id}?running=K&retry_after=S`: a long-running job's status. The first K GETs of an
    id answer 202 `{"id", "status": "running"}` (with `Retry-After: S` when asked), later ones
    200 `{"id", "status": "succeeded"}`; every answer has `x-request-id: req_job_<n>`."""
    job_id = request.path_params["id"]
    number = SCRIPTS.hit(job_id, request, None)
    params = request.query_params
    headers = {"x-request-id": f"req_job_{number}"}
    if number > int(params.get("running", "0")):
        return JSONResponse({"id": job_id, "status": "succeeded"}, headers=headers)
    if "retry_after" in params:
        headers["retry-after"] = params["retry_after"]
    return JSONResponse({"id": job_id, "status": "running"}, status_code=202, headers=headers)


async def broken_body(request: Request) -> Response:
    """`/broken-body/{id}?fail=N&how=reset|stall|garbled&size=B&stall=S`: a 200 whose body of
    B bytes (default 64 KiB) breaks off for the first N requests with that id, then is sent
    whole. `reset`: the connection is cut after the first chunk; `stall`: the body stops for S
    seconds (default 5) after the first chunk; `garbled`: a gzip body whose bytes are
    corrupted. The body is B bytes of JSON-safe text, gzip-encoded when `gzip=1` or
    `how=garbled`."""
    script_id = request.path_params["id"]
    body = await _read_body(request)
    number = SCRIPTS.hit(script_id, request, body)
    params = request.query_params
    size = int(params.get("size", "65536"))
    how = params.get("how", "reset")
    failing = number <= int(params.get("fail", "0"))
    payload = (f"attempt {number} of {script_id} ".encode() * (size // 8 + 1))[:size]
    headers = {"x-request-id": f"req_body_{number}"}
    if how == "garbled" or params.get("gzip") == "1":
        payload = gzip.compress(payload)
        headers["content-encoding"] = "gzip"
        if failing and how == "garbled":
            # The first deflate block's header (after gzip's 10 bytes) made a reserved
            # block type: no decoder takes it.
            payload = payload[:10] + b"\xff" + payload[11:]
            failing = False  # sent whole: only its content is wrong
    piece = max(len(payload) // 4, 1)

    async def chunks() -> AsyncIterator[bytes]:
        yield payload[:piece]
        if failing and how == "reset":
            raise RuntimeError("the test server cuts this body off on purpose")
        if failing and how == "stall":
            await asyncio.sleep(float(params.get("stall", "5")))
        for start in range(piece, len(payload), piece):
            yield payload[start : start + piece]

    headers["content-length"] = str(len(payload))
    return StreamingResponse(chunks(), headers=headers, media_type="application/octet-stream")


class RateLimits:
    """Per-id token buckets for `/allow/{id}`: each holds a second's worth, refilled at its rate."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, as of when)

    def take(self, limit_id: str, rate: float) -> bool:
        """Whether a request for `limit_id` is within `rate` a second (and count it if so)."""
        now = time.monotonic()
        with self.lock:
            tokens, then = self._buckets.get(limit_id, (rate, now))
            tokens = min(rate, tokens + (now - then) * rate)
            allowed = tokens >= 1
            self._buckets[limit_id] = (tokens - 1 if allowed else tokens, now)
            return allowed


RATE_LIMITS = RateLimits()


async def allow(request: Request) -> Response:
    """`/allow/{id}?rate=N`: N requests a second per id (a token bucket holding a second's
    worth); beyond that a bare 429, without Retry-After or any rate-limit header."""
    rate = float(request.query_params.get("rate", "10"))
    if RATE_LIMITS.take(request.path_params["id"], rate):
        return JSONResponse({"ok": True})
    return JSONResponse({"error": {"message": "too many requests"}}, status_code=429)


def retry_routes() -> list[Route]:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/broken-body/{id}", broken_body, methods=methods),
        Route("/flaky/{id}", flaky, methods=methods),
        Route("/once/{id}", once, methods=["POST"]),
        Route("/job/{id}", job),
        Route("/allow/{id}", allow),
    ]
