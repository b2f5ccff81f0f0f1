"""Pure overhead on `httpx.MockTransport`: direct transport calls, calls through a client, and
the typed error of a 404.

The mock's responses carry an unread byte stream, as a network transport's do (an
`httpx.Response(content=...)` would arrive already read, and skip the body path a wrapper
adds to every real response). A direct call is timed as the client would drive it: the call,
then reading the body, which also closes it.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import httpx
from _common import (
    NO_BUDGET,
    RESILIENCE,
    RETRIES,
    VARIANTS,
    Column,
    Scale,
    Table,
    async_transport,
    interleave,
    interleave_async,
    no_gc,
    summarise,
    sync_transport,
)

from httpx_resilience import NotFoundError, ResilientTransport

__all__ = [
    "client_section",
    "direct_section",
    "error_section",
    "profile_direct",
]

OK_URL = "http://api.test/v1/items/42"
NOT_FOUND_URL = "http://api.test/v1/users/42"
PAYLOAD = {"name": "benchmark", "amount": 42, "currency": "eur", "tags": ["a", "b"]}
OK_BODY = json.dumps({"id": 42, "name": "benchmark", "ok": True}).encode()


def _error_body(size: int) -> bytes:
    """An OpenAI-style error document padded to exactly `size` bytes."""
    error = {
        "message": "No user with id 42 exists in this organisation.",
        "type": "invalid_request_error",
        "param": "user_id",
        "code": "user_not_found",
        "doc_url": "",
    }
    empty = len(json.dumps({"error": error}).encode())
    error["doc_url"] = "https://docs.example.com/errors/" + "x" * (size - empty - 32)
    return json.dumps({"error": error}).encode()


NOT_FOUND_BODY = _error_body(1024)
assert len(NOT_FOUND_BODY) == 1024


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A one-chunk body that arrives unread, like a network transport's."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data


def _ok(request: httpx.Request) -> httpx.Response:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_ok")]
    return httpx.Response(200, headers=headers, stream=_Body(OK_BODY))


def _not_found(request: httpx.Request) -> httpx.Response:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_404")]
    return httpx.Response(404, headers=headers, stream=_Body(NOT_FOUND_BODY))


# Requests for direct calls carry the headers `httpx.Client` would give them, are built outside
# the timed loop, and are fresh for every call: a transport may change a request (an
# idempotency key on a POST), and a reused one would take a different path the second time.
with httpx.Client(transport=httpx.MockTransport(_ok)) as _client:  # no TLS context to build
    _HEADERS = _client.headers


def _requests(method: str, count: int) -> list[httpx.Request]:
    if method == "GET":
        return [httpx.Request("GET", OK_URL, headers=_HEADERS) for _ in range(count)]
    return [httpx.Request("POST", OK_URL, headers=_HEADERS, json=PAYLOAD) for _ in range(count)]


CASES = (("sync", "GET"), ("sync", "POST"), ("async", "GET"), ("async", "POST"))

OVERHEAD_COLUMNS = (
    Column("case", "case"),
    Column("variant", "variant"),
    Column("µs/request", "median", "{:.2f}"),
    Column("IQR", "iqr", "{:.2f}"),
    Column("added µs", "diff", "{:+.2f}"),
    Column("added IQR", "diff_iqr", "{:.2f}"),
    Column("above floor µs", "floor_diff", "{:+.2f}"),
    Column("× bare", "ratio", "{:.3f}"),
    Column("target", "target"),
    Column("result", "result"),
)


# The direct calls also run httpx-resilience without its retry budget (on by default), so one
# run shows what the budget's per-request count costs.
DIRECT_VARIANTS = (*VARIANTS, NO_BUDGET)


def _us_per_call(elapsed_ns: int, count: int) -> float:
    return elapsed_ns / count / 1000


def _direct_sync(method: str, scale: Scale) -> dict[str, list[float]]:
    transports = {v: sync_transport(v, httpx.MockTransport(_ok)) for v in DIRECT_VARIANTS}

    def batch(variant: str, count: int = scale.direct_batch) -> float:
        handle = transports[variant].handle_request
        requests = _requests(method, count)
        with no_gc():
            start = perf_counter_ns()
            for request in requests:
                handle(request).read()
            elapsed = perf_counter_ns() - start
        return _us_per_call(elapsed, count)

    for variant in DIRECT_VARIANTS:
        batch(variant, max(scale.direct_batch // 4, 5))
    return interleave(DIRECT_VARIANTS, scale.direct_rounds, batch)


def _direct_async(method: str, scale: Scale) -> dict[str, list[float]]:
    transports = {v: async_transport(v, httpx.MockTransport(_ok)) for v in DIRECT_VARIANTS}

    async def batch(variant: str, count: int = scale.direct_batch) -> float:
        handle = transports[variant].handle_async_request
        requests = _requests(method, count)
        with no_gc():
            start = perf_counter_ns()
            for request in requests:
                response = await handle(request)
                await response.aread()
            elapsed = perf_counter_ns() - start
        return _us_per_call(elapsed, count)

    async def run() -> dict[str, list[float]]:
        for variant in DIRECT_VARIANTS:
            await batch(variant, max(scale.direct_batch // 4, 5))
        return await interleave_async(DIRECT_VARIANTS, scale.direct_rounds, batch)

    return asyncio.run(run())


def direct_section(scale: Scale) -> list[Table]:
    """(a) `handle_request` / `handle_async_request` called on the transport itself."""
    table = Table(
        "Own cost: direct transport calls on MockTransport",
        OVERHEAD_COLUMNS,
        note=(
            "`transport.handle_request(request)` then `response.read()` (the body path a "
            "client drives); fresh requests built outside the timed loop. `added µs` = variant "
            "− bare, paired by round. `httpx-resilience, budget=None`: the same without the "
            "retry budget's count per request. Targets: a GET adds at most 1.5 × what "
            "httpx-retries adds; a POST, which gets a generated idempotency key, ≤ +4 µs."
        ),
    )
    for mode, method in CASES:
        run = _direct_sync if mode == "sync" else _direct_async
        records = summarise(run(method, scale), case=f"{mode} {method}", mode=mode, method=method)
        mine, theirs = records[RESILIENCE], records[RETRIES]
        if method == "GET":
            mine["target"] = "≤ 1.5 × httpx-retries' added cost"
            mine["result"] = mine["diff"] <= 1.5 * max(theirs["diff"], 0.0)
        else:
            mine["target"] = "≤ +4 µs"
            mine["result"] = mine["diff"] <= 4.0
        table.records.extend(records.values())
    return [table]


def _client_sync(method: str, scale: Scale) -> dict[str, list[float]]:
    clients = {
        v: httpx.Client(transport=sync_transport(v, httpx.MockTransport(_ok))) for v in VARIANTS
    }

    def batch(variant: str, count: int = scale.client_batch) -> float:
        client = clients[variant]
        with no_gc():
            start = perf_counter_ns()
            if method == "GET":
                for _ in range(count):
                    client.get(OK_URL)
            else:
                for _ in range(count):
                    client.post(OK_URL, json=PAYLOAD)
            elapsed = perf_counter_ns() - start
        return _us_per_call(elapsed, count)

    try:
        for variant in VARIANTS:
            batch(variant, max(scale.client_batch // 4, 5))
        return interleave(VARIANTS, scale.client_rounds, batch)
    finally:
        for client in clients.values():
            client.close()


def _client_async(method: str, scale: Scale) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        clients = {
            v: httpx.AsyncClient(transport=async_transport(v, httpx.MockTransport(_ok)))
            for v in VARIANTS
        }

        async def batch(variant: str, count: int = scale.client_batch) -> float:
            client = clients[variant]
            with no_gc():
                start = perf_counter_ns()
                if method == "GET":
                    for _ in range(count):
                        await client.get(OK_URL)
                else:
                    for _ in range(count):
                        await client.post(OK_URL, json=PAYLOAD)
                elapsed = perf_counter_ns() - start
            return _us_per_call(elapsed, count)

        try:
            for variant in VARIANTS:
                await batch(variant, max(scale.client_batch // 4, 5))
            return await interleave_async(VARIANTS, scale.client_rounds, batch)
        finally:
            for client in clients.values():
                await client.aclose()

    return asyncio.run(run())


def client_section(scale: Scale) -> list[Table]:
    """(b) the same through `httpx.Client` / `httpx.AsyncClient`, as users call it."""
    table = Table(
        "Through a client on MockTransport",
        OVERHEAD_COLUMNS,
        note=(
            "`client.get(url)` / `client.post(url, json=...)`; the POST gets an idempotency "
            "key from httpx-resilience (httpx itself then spends more on any header a transport "
            "adds, so the POST target is the direct one). Target, GET: at most what "
            "httpx-retries adds + 1.5 µs."
        ),
    )
    for mode, method in CASES:
        run = _client_sync if mode == "sync" else _client_async
        records = summarise(run(method, scale), case=f"{mode} {method}", mode=mode, method=method)
        mine, theirs = records[RESILIENCE], records[RETRIES]
        if method == "GET":
            mine["target"] = "≤ httpx-retries + 1.5 µs"
            mine["result"] = mine["diff"] <= theirs["diff"] + 1.5
        table.records.extend(records.values())
    return [table]


def _expect(variant: str) -> type[Exception]:
    return NotFoundError if variant == RESILIENCE else httpx.HTTPStatusError


def _get_404(variant: str, client: httpx.Client) -> None:
    if variant == RESILIENCE:
        client.get(NOT_FOUND_URL)  # raises the typed error itself
    else:
        client.get(NOT_FOUND_URL).raise_for_status()


async def _aget_404(variant: str, client: httpx.AsyncClient) -> None:
    if variant == RESILIENCE:
        await client.get(NOT_FOUND_URL)
    else:
        (await client.get(NOT_FOUND_URL)).raise_for_status()


def _unexpected(variant: str) -> AssertionError:
    # The warm-up proves each variant raises what the table says it does.
    return AssertionError(f"{variant}: the 404 did not raise {_expect(variant).__name__}")


def _errors_sync(scale: Scale) -> dict[str, list[float]]:
    clients = {
        v: httpx.Client(transport=sync_transport(v, httpx.MockTransport(_not_found)))
        for v in VARIANTS
    }

    def batch(variant: str, count: int = scale.error_batch) -> float:
        client, expected = clients[variant], _expect(variant)
        with no_gc():
            start = perf_counter_ns()
            for _ in range(count):
                try:  # noqa: SIM105 - cheaper than contextlib.suppress in a timed loop
                    _get_404(variant, client)
                except expected:
                    pass
            elapsed = perf_counter_ns() - start
        return _us_per_call(elapsed, count)

    try:
        for variant in VARIANTS:
            try:
                _get_404(variant, clients[variant])
            except _expect(variant):
                pass
            else:
                raise _unexpected(variant)
            batch(variant, max(scale.error_batch // 4, 5))
        return interleave(VARIANTS, scale.error_rounds, batch)
    finally:
        for client in clients.values():
            client.close()


def _errors_async(scale: Scale) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        clients = {
            v: httpx.AsyncClient(transport=async_transport(v, httpx.MockTransport(_not_found)))
            for v in VARIANTS
        }

        async def batch(variant: str, count: int = scale.error_batch) -> float:
            client, expected = clients[variant], _expect(variant)
            with no_gc():
                start = perf_counter_ns()
                for _ in range(count):
                    try:  # noqa: SIM105 - cheaper than contextlib.suppress in a timed loop
                        await _aget_404(variant, client)
                    except expected:
                        pass
                elapsed = perf_counter_ns() - start
            return _us_per_call(elapsed, count)

        try:
            for variant in VARIANTS:
                try:
                    await _aget_404(variant, clients[variant])
                except _expect(variant):
                    pass
                else:
                    raise _unexpected(variant)
                await batch(variant, max(scale.error_batch // 4, 5))
            return await interleave_async(VARIANTS, scale.error_rounds, batch)
        finally:
            for client in clients.values():
                await client.aclose()

    return asyncio.run(run())


def error_section(scale: Scale) -> list[Table]:
    """A 1 KB JSON 404 turned into its typed error, through a client on MockTransport."""
    table = Table(
        "Error path: a 1 KB JSON 404 into its typed error",
        (
            Column("case", "case"),
            Column("variant", "variant"),
            Column("raises", "raises"),
            Column("µs/request", "median", "{:.1f}"),
            Column("IQR", "iqr", "{:.1f}"),
            Column("added µs", "diff", "{:+.1f}"),
            Column("× bare", "ratio", "{:.2f}"),
        ),
        note=(
            "httpx-resilience raises `NotFoundError` (body parsed, secrets scrubbed, request id "
            "and history attached); the others call `response.raise_for_status()`. No target."
        ),
    )
    for mode, run in (("sync", _errors_sync), ("async", _errors_async)):
        records = summarise(run(scale), case=f"{mode} GET 404", mode=mode, method="GET")
        for variant, record in records.items():
            record["raises"] = _expect(variant).__name__
        table.records.extend(records.values())
    return [table]


def _profile(transport: httpx.BaseTransport, method: str, count: int) -> pstats.Stats:
    handle = transport.handle_request
    requests = _requests(method, count)
    profiler = cProfile.Profile()
    profiler.enable()
    for request in requests:
        handle(request).read()
    profiler.disable()
    return pstats.Stats(profiler)


def profile_direct(method: str, count: int, top: int = 25) -> str:
    """Where httpx-resilience's own cost goes: the functions whose own time grows from the
    bare MockTransport to httpx-resilience over `count` direct calls, as a Markdown table.

    A difference of two profiles, rather than one profile, so httpx's own work (building the
    response, reading the body) drops out and what is left is what the wrapper adds.
    """
    stats: list[dict[str, tuple[int, float, float]]] = []
    for transport in (
        httpx.MockTransport(_ok),
        ResilientTransport(httpx.MockTransport(_ok)),
    ):
        raw: dict[Any, Any] = _profile(transport, method, count).stats  # type: ignore[attr-defined]
        stats.append(
            {
                f"{Path(file).name}:{line}({name})": (calls, own, cumulative)
                for (file, line, name), (_, calls, own, cumulative, _) in raw.items()
            }
        )
    bare, mine = stats
    rows = []
    for function, (calls, own, cumulative) in mine.items():
        base_calls, base_own, _ = bare.get(function, (0, 0.0, 0.0))
        rows.append((own - base_own, function, base_calls, calls, cumulative))
    rows.sort(reverse=True)
    per_call = 1e6 / count  # seconds over `count` calls -> µs per call (profiler-inflated)
    lines = [
        f"### Direct sync {method}: own time httpx-resilience adds, {count:,} calls",
        "",
        "µs per call under cProfile, which inflates every figure; compare them with each other.",
        "",
        "| function | calls per request (bare → resilience) | added own µs | cumulative µs |",
        "|---|---:|---:|---:|",
    ]
    for added, function, base_calls, calls, cumulative in rows[:top]:
        lines.append(
            f"| `{function}` | {base_calls / count:g} → {calls / count:g} "
            f"| {added * per_call:+.2f} | {cumulative * per_call:.2f} |"
        )
    total_bare = sum(own for _, own, _ in bare.values())
    total_mine = sum(own for _, own, _ in mine.values())
    lines += [
        "",
        f"Total own time: {total_bare * per_call:.1f} µs bare, "
        f"{total_mine * per_call:.1f} µs httpx-resilience per call (profiled).",
        "",
    ]
    return "\n".join(lines)
