"""The loopback server the benchmarks talk to, and the handle that runs it in a subprocess.

It runs in its own process, not in a thread of the benchmark: a server thread would share the
GIL with the client being measured, so the client's cost would be blurred by the server's
(and vice versa). With two cores, client and server each get one.

Routes (paths starting with `/_` are control routes, never counted):

- `GET|POST /ok`: a small JSON 200 (a POST's body is read first).
- `GET /stream?bytes=N`: N bytes streamed in 64 KiB chunks, with a Content-Length.
- `GET /outage/full`: always a 503 with a small JSON error body and no Retry-After.
- `GET /outage/20`: every 5th attempt since the last reset is that 503, the rest a 200.
- `GET /limited?rate=N`: N requests a second (a token bucket holding a second's worth, full at
  the last reset): a small JSON 200 within it, beyond it a bare 429 (no Retry-After, no
  rate-limit header).
- `GET /_stats`: `{"attempts": n, "connections": m, "limited_ok": a, "limited_429": b}` since
  the last reset.
- `POST /_reset`: zero the counters.

Run as a script it binds 127.0.0.1 on a free port, prints `PORT <n>`, and serves until its
stdin closes, so it never outlives the benchmark that started it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import httpx

CHUNK_SIZE = 64 * 1024
OK_BODY = json.dumps({"ok": True, "id": 42, "name": "benchmark"}).encode()
OUTAGE_BODY = json.dumps(
    {"error": {"message": "the service is overloaded", "type": "service_unavailable"}}
).encode()
LIMITED_BODY = json.dumps({"error": {"message": "too many requests"}}).encode()
JSON_HEADERS = {"content-type": "application/json"}


def _build_app() -> object:
    # Imported here: the benchmark process needs only `ServerProcess`, not the server stack.
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send

    class Counters:
        def __init__(self) -> None:
            self.reset()

        def reset(self) -> None:
            self.attempts = 0
            self.clients: set[tuple[str, int]] = set()
            self.outage_20 = 0
            self.limited_ok = 0
            self.limited_429 = 0
            # `/limited`'s bucket: None until its first request, which finds it full.
            self.bucket: tuple[float, float] | None = None  # (tokens, as of when)

    counters = Counters()

    class Count:
        """Counts attempts, and TCP connections as distinct client (host, port) pairs."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and not scope["path"].startswith("/_"):
                counters.attempts += 1
                client = scope.get("client")
                if client is not None:
                    counters.clients.add((client[0], client[1]))
            await self.app(scope, receive, send)

    chunk = b"x" * CHUNK_SIZE

    async def ok(request: Request) -> Response:
        if request.method == "POST":
            await request.body()
        return Response(OK_BODY, headers=JSON_HEADERS)

    async def stream(request: Request) -> Response:
        size = int(request.query_params.get("bytes", "0"))

        async def chunks() -> AsyncIterator[bytes]:
            left = size
            while left >= CHUNK_SIZE:
                yield chunk  # one shared object: the server's own memory stays flat
                left -= CHUNK_SIZE
            if left:
                yield chunk[:left]

        return StreamingResponse(
            chunks(),
            media_type="application/octet-stream",
            headers={"content-length": str(size)},
        )

    def unavailable() -> Response:
        return Response(OUTAGE_BODY, status_code=503, headers=JSON_HEADERS)

    async def outage_full(request: Request) -> Response:
        return unavailable()

    async def outage_20(request: Request) -> Response:
        # Deterministic, not random: every variant meets exactly the same failures.
        counters.outage_20 += 1
        if counters.outage_20 % 5 == 0:
            return unavailable()
        return Response(OK_BODY, headers=JSON_HEADERS)

    async def limited(request: Request) -> Response:
        # One event loop, no await in here: the bucket needs no lock.
        rate = float(request.query_params.get("rate", "50"))
        now = time.monotonic()
        tokens, then = counters.bucket if counters.bucket is not None else (rate, now)
        tokens = min(rate, tokens + (now - then) * rate)
        if tokens >= 1:
            counters.bucket = (tokens - 1, now)
            counters.limited_ok += 1
            return Response(OK_BODY, headers=JSON_HEADERS)
        counters.bucket = (tokens, now)
        counters.limited_429 += 1
        return Response(LIMITED_BODY, status_code=429, headers=JSON_HEADERS)

    async def stats(request: Request) -> Response:
        body = {
            "attempts": counters.attempts,
            "connections": len(counters.clients),
            "limited_ok": counters.limited_ok,
            "limited_429": counters.limited_429,
        }
        return Response(json.dumps(body), headers=JSON_HEADERS)

    async def reset(request: Request) -> Response:
        counters.reset()
        return Response(b"{}", headers=JSON_HEADERS)

    app = Starlette(
        routes=[
            Route("/ok", ok, methods=["GET", "POST"]),
            Route("/stream", stream),
            Route("/outage/full", outage_full),
            Route("/outage/20", outage_20),
            Route("/limited", limited),
            Route("/_stats", stats),
            Route("/_reset", reset, methods=["POST"]),
        ]
    )
    return Count(app)


def _listening_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it small responses wait ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve() -> None:
    """Serve until stdin closes (the benchmark exited or is done with us)."""
    import uvicorn

    config = uvicorn.Config(
        _build_app(),  # type: ignore[arg-type]
        lifespan="off",
        log_level="warning",
        log_config=None,
        access_log=False,
        ws="none",
        # The clients of one variant sit idle while the others run their round: the default
        # 5 s keep-alive would close their connections and charge a reconnect to them.
        timeout_keep_alive=3600,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    sock = _listening_socket()
    print(f"PORT {sock.getsockname()[1]}", flush=True)

    def watch_stdin() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.run(sockets=[sock])


class ServerProcess:
    """Starts `serve()` in a subprocess; `base_url`, `stats()` and `reset()` talk to it."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._control: httpx.Client | None = None
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the benchmark server did not start (said {line!r})")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}"
        # The control client has its own connection, which the counters never see.
        self._control = httpx.Client(base_url=self.base_url, timeout=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._control.get("/_stats").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._control is not None:
            self._control.close()
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the server's signal to shut down
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def stats(self) -> tuple[int, int]:
        """(attempts, TCP connections) the server saw since the last reset."""
        assert self._control is not None
        data = self._control.get("/_stats").json()
        return int(data["attempts"]), int(data["connections"])

    def limited(self) -> tuple[int, int]:
        """(200s, 429s) `/limited` answered since the last reset."""
        assert self._control is not None
        data = self._control.get("/_stats").json()
        return int(data["limited_ok"]), int(data["limited_429"])

    def reset(self) -> None:
        assert self._control is not None
        self._control.post("/_reset").raise_for_status()


if __name__ == "__main__":
    serve()
