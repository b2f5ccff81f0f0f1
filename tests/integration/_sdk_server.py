"""A fake OpenAI and Anthropic API on 127.0.0.1, scripted per test, for `test_sdks.py`.

Each test asks for a `Scenario`: a fresh id and the statuses its requests get in turn (e.g.
503, 503, 200). The SDKs are pointed at the scenario's base URL, so every path carries the id
and tests never share state. The server records every request of a scenario (path, headers,
body) and answers like the real APIs: OpenAI's `POST /v1/chat/completions` and Anthropic's
`POST /v1/messages`, with bodies the SDKs parse, OpenAI's `x-request-id` / Anthropic's
`request-id` header (one id per attempt: `req_<id>_<n>`), and each API's own error body.

It runs like the `live` fixture of `conftest.py`: uvicorn (h11) in a background thread, on a
socket bound to an ephemeral loopback port, stopped when the context manager exits.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._serve import serve

OPENAI_MODEL = "gpt-fake"
ANTHROPIC_MODEL = "claude-fake"
REPLY = "hello from the fake server"


@dataclass(frozen=True)
class SeenRequest:
    """One request as the fake server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Script:
    statuses: tuple[int, ...]
    delay: float = 0.0
    seen: list[SeenRequest] = field(default_factory=list)


def request_id(sid: str, number: int) -> str:
    """The request id the server sends with the `number`-th (1-based) request of a scenario."""
    return f"req_{sid}_{number}"


def _openai_ok(sid: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{sid}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": OPENAI_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }


def _openai_error(status: int) -> dict[str, Any]:
    kind, code = {
        404: ("invalid_request_error", "model_not_found"),
        503: ("server_error", "overloaded"),
    }.get(status, ("api_error", None))
    message = f"fake openai error {status}"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _anthropic_ok(sid: str) -> dict[str, Any]:
    return {
        "id": f"msg_{sid}",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": REPLY}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 6},
    }


def _anthropic_error(status: int) -> dict[str, Any]:
    kind = {404: "not_found_error", 503: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": f"fake anthropic error {status}"}}


class FakeAPI:
    """The scripted scenarios, shared with the server thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scripts: dict[str, _Script] = {}
        self.root = ""

    def scenario(self, *statuses: int, delay: float = 0.0) -> Scenario:
        """A fresh scenario whose requests get `statuses` in turn (the last one repeats), each
        answer `delay` seconds after the request came in."""
        if not statuses:
            raise ValueError("a scenario needs at least one status")
        sid = secrets.token_hex(6)
        with self.lock:
            self.scripts[sid] = _Script(statuses, delay)
        return Scenario(self, sid)

    def _hit(self, sid: str, request: Request, body: bytes) -> tuple[int, int, float] | None:
        """Record one request: (its 1-based number, the status to answer, the delay before
        answering), or None for an unknown scenario."""
        with self.lock:
            script = self.scripts.get(sid)
            if script is None:
                return None
            script.seen.append(
                SeenRequest(request.method, request.url.path, dict(request.headers), body)
            )
            number = len(script.seen)
            return number, script.statuses[min(number, len(script.statuses)) - 1], script.delay

    def seen(self, sid: str) -> list[SeenRequest]:
        with self.lock:
            return list(self.scripts[sid].seen)

    def app(self) -> Starlette:
        async def openai_chat(request: Request) -> Response:
            return await self._answer(request, "x-request-id", _openai_ok, _openai_error)

        async def anthropic_messages(request: Request) -> Response:
            return await self._answer(request, "request-id", _anthropic_ok, _anthropic_error)

        return Starlette(
            routes=[
                Route("/s/{sid}/v1/chat/completions", openai_chat, methods=["POST"]),
                Route("/s/{sid}/v1/messages", anthropic_messages, methods=["POST"]),
            ]
        )

    async def _answer(self, request: Request, id_header: str, ok: Any, error: Any) -> Response:
        sid = request.path_params["sid"]
        body = await request.body()
        hit = self._hit(sid, request, body)
        if hit is None:
            return JSONResponse({"error": {"message": "unknown scenario"}}, status_code=410)
        number, status, delay = hit
        if delay:
            await asyncio.sleep(delay)
        headers = {id_header: request_id(sid, number)}
        content = ok(sid) if status < 400 else error(status)
        return Response(
            json.dumps(content), status_code=status, headers=headers, media_type="application/json"
        )


@dataclass(frozen=True)
class Scenario:
    """One scripted conversation with the fake API."""

    api: FakeAPI
    sid: str

    @property
    def openai_base_url(self) -> str:
        """OpenAI's base URL ends in /v1; its paths (/chat/completions) follow."""
        return f"{self.api.root}/s/{self.sid}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Anthropic's base URL is the host; its paths (/v1/messages) carry the version."""
        return f"{self.api.root}/s/{self.sid}"

    def seen(self) -> list[SeenRequest]:
        """Every request of this scenario the server saw, in order."""
        return self.api.seen(self.sid)

    def request_id(self, number: int) -> str:
        return request_id(self.sid, number)


@contextmanager
def serve_fake_api() -> Iterator[FakeAPI]:
    """The fake API served by uvicorn in a background thread until the block exits."""
    api = FakeAPI()
    with serve(api.app(), "fake-api") as port:
        api.root = f"http://127.0.0.1:{port}"
        yield api
