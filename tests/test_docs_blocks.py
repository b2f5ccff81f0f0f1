"""Every ```python block in README.md and docs/*.md runs as written: one test per block.

Extraction. `blocks_of()` reads a Markdown file line by line and keeps each fenced block whose
info string is `python` or `py`, fences indented in list items included (their indent removed).
HTML comments on the lines just above a fence say how to run the block:

- `<!-- continues -->`: a fragment building on the previous Python block of the same file; it
  runs after that block (and whatever that one continues) in one namespace;
- `<!-- requires: h2 -->`: skipped while the named module (comma-separated for several) cannot
  be imported;
- `<!-- skip: reason -->`: never run, for a block that cannot run here at all.

Any other comment there is an error, so a misspelt marker cannot skip a block silently.

Running. Each block is compiled with its Markdown file as the file name and its code at its
line numbers in that file, so a traceback points into the Markdown, and executed in a fresh
module (in `sys.modules` while the test runs, so the classes a block defines pickle). A block
that defines `async def main()` is run once more under trio, which the README promises too.

Example hosts. A real uvicorn server on 127.0.0.1 (`APP`) stands in for them, answering the
paths the blocks use. While a block runs, the request method of `httpx.HTTPTransport` and
`httpx.AsyncHTTPTransport`, and of httpx2's two for the SDK blocks, is replaced on the class by
a router (`route_example_hosts`). Those classes are the bottom of every stack a block builds
(the inner transport `ResilientTransport` makes, the one `httpx.Client` makes), so the blocks'
code and URLs stay as written and everything above the socket runs for real. The router sends a
request for a reserved example name (example.com, .net, .org and their subdomains, any
`*.example` or `*.test` host: RFC 2606 and 6761), whatever its scheme and port, as plain HTTP to
the stand-in, its `Host` header unchanged, through a fresh transport without keep-alive (so no
socket outlives its response); a loopback URL goes as it is; any other host is refused. Under
that, `socket.getaddrinfo` and `socket.socket.connect` refuse every non-loopback address, for
code that does not go through httpx. A refused host, or a request that did not reach the
stand-in, fails the test even when the block catches the error (the quick start catches
`APIError`).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import itertools
import re
import socket
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from httpx_resilience import ConfigurationError, ErrorPolicy, ResilientTransport
from integration._serve import serve

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODULE = "_docs_block"  # the name each block runs under

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
MARKER = re.compile(r"^<!--\s*(?P<body>.*?)\s*-->$")
PYTHON = {"python", "py"}


# --- extraction ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One Python block of a Markdown file."""

    path: Path
    line: int  # of the opening fence, 1-based
    code: str
    continues: bool = False
    skip: str | None = None
    requires: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        try:
            return f"{self.path.relative_to(ROOT)}:{self.line}"
        except ValueError:
            return f"{self.path.name}:{self.line}"


def _markers(lines: list[str], fence: int, path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    index = fence - 1
    while index >= 0 and (match := MARKER.match(lines[index].strip())):
        body = match["body"]
        name, _, value = (part.strip() for part in body.partition(":"))
        if body == "continues":
            found["continues"] = True
        elif name == "skip" and value:
            found["skip"] = value
        elif name == "requires" and value:
            found["requires"] = tuple(module.strip() for module in value.split(","))
        else:
            raise ValueError(f"{path}:{index + 1}: unknown marker above a fence: {body!r}")
        index -= 1
    return found


def blocks_of(text: str, path: Path) -> list[Block]:
    """The Python blocks of a Markdown text, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start, fence, indent = index, opening["fence"], opening["indent"]
        body: list[str] = []
        index += 1
        while True:
            if index == len(lines):
                raise ValueError(f"{path}:{start + 1}: fence never closed")
            closing = FENCE.match(lines[index])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"]
            ):
                break
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1
        info = opening["info"].split()
        if info and info[0].lower() in PYTHON:
            code = "\n".join(body) + "\n"
            blocks.append(Block(path, start + 1, code, **_markers(lines, start, path)))
    return blocks


def chains_of(blocks: Sequence[Block]) -> list[tuple[Block, ...]]:
    """For each block, the blocks to run for it: those it continues, then itself."""
    chains: list[tuple[Block, ...]] = []
    for block in blocks:
        if not block.continues:
            chains.append((block,))
        elif not chains:
            raise ValueError(f"{block.id}: marked continues, but no Python block comes before it")
        elif chains[-1][-1].skip is not None:
            raise ValueError(f"{block.id}: continues a block marked skip")
        else:
            chains.append((*chains[-1], block))
    return chains


BLOCKS = {path: blocks_of(path.read_text(encoding="utf-8"), path) for path in DOC_FILES}
CHAINS = [chain for blocks in BLOCKS.values() for chain in chains_of(blocks)]


# --- running ---------------------------------------------------------------------------------


def run_blocks(chain: Sequence[Block], monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Run the chain's blocks in order in one fresh module, and return it."""
    module = types.ModuleType(MODULE)
    monkeypatch.setitem(sys.modules, MODULE, module)
    for block in chain:
        # Blank lines in front put each line of code at its line number in the Markdown file.
        source = "\n" * block.line + block.code
        exec(compile(source, str(block.path), "exec"), module.__dict__)
    if re.search(r"^async def main\(", chain[-1].code, re.MULTILINE):
        trio.run(module.main)
    return module


# --- the stand-in for the example hosts ------------------------------------------------------

EXAMPLE_HOST = re.compile(r"(^|\.)example\.(com|net|org)$|\.(example|test)$")
_request_ids = itertools.count(1)


def _reply(body: object, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers={"x-request-id": f"req_{next(_request_ids)}"})


async def _user(request: Request) -> JSONResponse:
    return _reply({"id": request.path_params["user_id"], "name": "Ada Lovelace"})


async def _health(request: Request) -> JSONResponse:
    return _reply({"status": "ok"})


async def _job(request: Request) -> JSONResponse:
    return _reply({"id": request.path_params["job_id"], "status": "succeeded"})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    error = {"message": f"No route for {request.url.path}", "type": "not_found"}
    return _reply({"error": error}, 404)


APP = Starlette(
    routes=[
        Route("/users/{user_id:int}", _user),
        Route("/health", _health),
        Route("/v1/jobs/{job_id}", _job),
    ],
    exception_handlers={404: _not_found},
)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[int]:
    """The port of the stand-in server."""
    with serve(APP, "docs-stand-in") as port:
        yield port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Router:
    """Where the requests of a block go; `problems` lists the ones that went wrong."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.problems: list[str] = []

    def destination(self, hx: Any, request: Any) -> Any:
        """The stand-in's URL for an example host, None for a loopback one; else refused."""
        host = request.url.host
        if EXAMPLE_HOST.search(host):
            return request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        if _is_loopback(host):
            return None
        self.problems.append(f"{request.method} {request.url}: not an example or loopback host")
        raise hx.ConnectError(f"the docs tests do not connect to {host}", request=request)

    def failed(self, request: Any, exc: Exception) -> None:
        self.problems.append(f"{request.method} {request.url} did not reach the stand-in: {exc!r}")


def _route(monkeypatch: pytest.MonkeyPatch, hx: Any, router: Router) -> None:
    send = hx.HTTPTransport.handle_request
    send_async = hx.AsyncHTTPTransport.handle_async_request
    no_keepalive = hx.Limits(max_keepalive_connections=0)

    def copy(request: Any, url: Any) -> Any:
        return hx.Request(
            request.method,
            url,
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )

    def handle_request(transport: Any, request: Any) -> Any:
        url = router.destination(hx, request)
        if url is None:
            return send(transport, request)
        try:
            response = send(hx.HTTPTransport(limits=no_keepalive), copy(request, url))
        except Exception as exc:
            router.failed(request, exc)
            raise
        response.request = request
        return response

    async def handle_async_request(transport: Any, request: Any) -> Any:
        url = router.destination(hx, request)
        if url is None:
            return await send_async(transport, request)
        # A fresh transport per request: a pool is bound to the event loop that first used it,
        # and a block's asyncio.run is followed by trio.run.
        try:
            forward = hx.AsyncHTTPTransport(limits=no_keepalive)
            response = await send_async(forward, copy(request, url))
        except Exception as exc:
            router.failed(request, exc)
            raise
        response.request = request
        return response

    monkeypatch.setattr(hx.HTTPTransport, "handle_request", handle_request)
    monkeypatch.setattr(hx.AsyncHTTPTransport, "handle_async_request", handle_async_request)


def _guard_sockets(monkeypatch: pytest.MonkeyPatch, router: Router) -> None:
    getaddrinfo = socket.getaddrinfo
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name and not _is_loopback(name):
            router.problems.append(f"name lookup of {name!r}")
            raise socket.gaierror(socket.EAI_NONAME, "the docs tests resolve loopback names only")
        return getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            router.problems.append(f"connection to {address!r}")
            raise ConnectionRefusedError(f"the docs tests do not connect to {address!r}")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


def route_example_hosts(port: int, monkeypatch: pytest.MonkeyPatch) -> Router:
    """Send the example hosts to the stand-in, refuse every other non-loopback host."""
    router = Router(port)
    for hx in (httpx, httpx2):
        _route(monkeypatch, hx, router)
    _guard_sockets(monkeypatch, router)
    return router


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_python_fence_is_extracted(path: Path) -> None:
    """The extractor finds at least one block per file, and as many as a plain count of fences."""
    fences = re.findall(r"^[ \t]*```python[ \t]*$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(BLOCKS[path]) == len(fences) > 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("chain", CHAINS, ids=[chain[-1].id for chain in CHAINS])
def test_block_runs_as_written(
    chain: tuple[Block, ...], stand_in: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block, after those it continues, runs without raising, every request reaching the stand-in."""
    for block in chain:
        if block.skip is not None:
            pytest.skip(block.skip)
        for module in block.requires:
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"needs {module}, which is not installed")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the blocks must carry their own
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    router = route_example_hosts(stand_in, monkeypatch)
    run_blocks(chain, monkeypatch)
    assert not router.problems


def _synthetic(code: str) -> tuple[Block, ...]:
    return (Block(ROOT / "synthetic.md", 1, code),)


@pytest.mark.timeout(30)
def test_example_hosts_reach_the_stand_in(stand_in: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """An https request to an example host is answered by the stand-in, its URL left as sent."""
    router = route_example_hosts(stand_in, monkeypatch)
    module = run_blocks(
        _synthetic(
            "import httpx\n"
            "from httpx_resilience import ResilientTransport\n"
            "client = httpx.Client(transport=ResilientTransport())\n"
            "response = client.get('https://billing.example.com:8443/users/7')\n"
        ),
        monkeypatch,
    )
    assert module.response.json() == {"id": 7, "name": "Ada Lovelace"}
    assert str(module.response.url) == "https://billing.example.com:8443/users/7"
    assert module.response.extensions["request_id"].startswith("req_")
    assert not router.problems


@pytest.mark.timeout(30)
def test_a_foreign_host_is_refused_even_when_the_block_catches_it(
    stand_in: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request to a non-example host is refused and recorded, though the block swallows the error."""
    router = route_example_hosts(stand_in, monkeypatch)
    run_blocks(
        _synthetic(
            "import httpx\n"
            "from httpx_resilience import APIError, ResilientTransport\n"
            "try:\n"
            "    httpx.Client(transport=ResilientTransport()).get('https://pypi.org/simple/')\n"
            "except APIError:\n"
            "    pass\n"
        ),
        monkeypatch,
    )
    assert router.problems
    assert all("pypi.org" in problem for problem in router.problems)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (
            "socket.create_connection(('pypi.org', 443), timeout=1)",
            "name lookup of 'pypi.org'",
        ),
        (
            "with socket.socket() as sock:\n    sock.settimeout(1)\n    sock.connect(('192.0.2.1', 80))",
            "connection to ('192.0.2.1', 80)",
        ),
    ],
    ids=["lookup", "connect"],
)
def test_a_socket_outside_httpx_to_a_foreign_host_is_refused(
    code: str, problem: str, stand_in: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name lookup or a connection outside httpx to a non-loopback host is refused and recorded."""
    router = route_example_hosts(stand_in, monkeypatch)
    with pytest.raises(OSError, match="the docs tests"):
        run_blocks(_synthetic(f"import socket\n{code}\n"), monkeypatch)
    assert router.problems == [problem]


@pytest.mark.timeout(30)
def test_a_raising_block_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in a block propagates out of run_blocks, so its test fails."""
    with pytest.raises(RuntimeError, match="broken"):
        run_blocks(_synthetic("raise RuntimeError('broken')\n"), monkeypatch)


def test_top_level_async_with_does_not_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block with `async with` at top level fails, as it would in a script."""
    code = "import httpx\nasync with httpx.AsyncClient() as client:\n    pass\n"
    with pytest.raises(SyntaxError):
        run_blocks(_synthetic(code), monkeypatch)


MARKDOWN = """\
Intro.

````markdown
```python
not extracted: inside a longer fence
```
````

<!-- skip: needs a real Redis URL -->
```python
a = 1
```

- item

  <!-- requires: h2, brotli -->
  <!-- continues -->
  ```python
  b = a + 1
  ```

~~~py
c = 3
~~~
"""


def test_extractor_reads_fences_indents_and_markers() -> None:
    """Nested, indented and tilde fences are read right, with their markers and line numbers."""
    blocks = blocks_of(MARKDOWN, ROOT / "sample.md")
    assert [(b.line, b.code, b.continues, b.skip, b.requires) for b in blocks] == [
        (10, "a = 1\n", False, "needs a real Redis URL", ()),
        (18, "b = a + 1\n", True, None, ("h2", "brotli")),
        (22, "c = 3\n", False, None, ()),
    ]


def test_extractor_refuses_an_unknown_marker() -> None:
    """A misspelt marker above a fence is an error, not a silently ignored comment."""
    with pytest.raises(ValueError, match="unknown marker"):
        blocks_of("<!-- continue -->\n```python\nx = 1\n```\n", ROOT / "sample.md")


def test_a_continuation_after_a_skipped_block_is_refused() -> None:
    """A block cannot continue a skipped one: it would run without what that one defines."""
    blocks = blocks_of(MARKDOWN, ROOT / "sample.md")
    with pytest.raises(ValueError, match="continues a block marked skip"):
        chains_of(blocks)


def _readme_classify() -> tuple[Block, ...]:
    for chain in CHAINS:
        if chain[-1].path.name == "README.md" and "def job_failed(" in chain[-1].code:
            return chain
    pytest.fail("the README's classify example (def job_failed) is gone")


@pytest.mark.parametrize(
    ("status", "content_type", "content", "failed"),
    [
        (200, "application/json", b'{"status": "failed"}', True),
        (200, "application/json", b'{"status": "succeeded"}', False),
        (200, "application/json", b"[1, 2, 3]", False),
        (200, "application/json", b'"failed"', False),
        (200, "application/json", b'{"status": "fai', False),
        (200, "application/json", b"\xff\xfe\x00", False),
        (200, "text/plain", b'{"status": "failed"}', False),
        (500, "application/json", b'{"status": "failed"}', False),
    ],
    ids=["failed", "succeeded", "list", "string", "truncated", "not-utf8", "text", "500"],
)
def test_readme_classify_example_flags_only_its_error_shape(
    status: int,
    content_type: str,
    content: bytes,
    failed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's `job_failed` names JobFailedError for a 200 failed job, None for any other body."""
    module = run_blocks(_readme_classify(), monkeypatch)
    response = httpx.Response(status, headers={"content-type": content_type}, content=content)
    assert module.job_failed(response) is (module.JobFailedError if failed else None)


@pytest.mark.timeout(30)
def test_readme_classify_example_passes_a_json_list_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the transport, the README's classify policy hands a 200 JSON list on, no ConfigurationError."""
    module = run_blocks(_readme_classify(), monkeypatch)
    errors: ErrorPolicy = module.errors
    inner = httpx.MockTransport(lambda request: httpx.Response(200, json=[{"id": 1}]))
    with httpx.Client(transport=ResilientTransport(inner, errors=errors)) as client:
        try:
            response = client.get("https://api.example.com/v1/jobs")
        except ConfigurationError as exc:
            pytest.fail(f"the classify example raised: {exc!r}")
    assert response.json() == [{"id": 1}]
