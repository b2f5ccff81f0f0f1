"""The fault-injection matrix: every fault × {sync, asyncio, trio} × {GET, POST+key, POST no key}.

Each case sends one logical request to the fault server (`conftest.py`) through a resilient
transport with `RetryPolicy(max_attempts=3)`, and checks the documented outcome from `TABLE`
below, then the invariants every case shares:

- nothing raw escapes: anything raised is an `APIError`, a transport failure with `__cause__`;
- the client's pool (one connection at most, 1 s pool timeout) serves a fresh GET at once;
- an unkeyed POST is never executed twice; a keyed POST carries one key on every attempt;
- the error's `attempts` equals what the server saw, and `history` has one record per attempt.

How the expected outcomes follow from the README's retry rules (max_attempts=3):

- a failure before the request left (connection refused) is retried for every method;
- a failure after it may have reached the server (a status in 408/429/500/502/503/504, a reset,
  a read timeout, an early close, garbage) is retried only for GET or for a keyed POST — so a
  POST without a key meets it once;
- other statuses (400, 422) fail the same way again: one attempt, whatever the method;
- a 2xx whose body breaks off is handed on before its body is read: the caller's read fails
  with `StreamError`, and nothing is retried (the transport has already returned).

Each case's outcome goes into `last_run.json` (see `report.py`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio

from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    IdempotencyPolicy,
    ResilientTransport,
    RetryEvent,
    RetryPolicy,
    StatusError,
    TransportError,
)

from .conftest import BIG_BODY, FaultServer, MatrixLog, new_run_id, refused_url

GET, POST_KEY, POST_NO_KEY = "GET", "POST+key", "POST no key"
METHODS = (GET, POST_KEY, POST_NO_KEY)
MODES = ("sync", "asyncio", "trio")
OK = "ok"

# Every connection a fault leaves usable is reused: the one documented pool behaviour checked
# here ("a response that will be retried is read and closed, so the retry reuses it").
ONE = "one connection for every attempt"
EACH = "a new connection per attempt"


@dataclass(frozen=True)
class Fault:
    """A fault's documented outcome per method: (outcome, attempts), outcome "ok" or a class."""

    get: tuple[str, int]
    post_key: tuple[str, int]
    post_no_key: tuple[str, int]
    note: str
    connections: str | None = EACH
    read_timeout: float | None = None
    status_keeps_alive: bool = False  # a status error leaves its connection in the pool

    def expect(self, method: str) -> tuple[str, int]:
        return {GET: self.get, POST_KEY: self.post_key, POST_NO_KEY: self.post_no_key}[method]


def _body(cls: str, note: str) -> Fault:
    """An error body on a non-retryable status: one attempt, every method."""
    return Fault((cls, 1), (cls, 1), (cls, 1), note, ONE, status_keeps_alive=True)


# fault:                     GET                 POST with key       POST without key
TABLE: dict[str, Fault] = {
    "refused": Fault(
        ("NetworkError", 3), ("NetworkError", 3), ("NetworkError", 3),
        "connect phase: retried for every method", connections=None,
    ),
    "reset_before_response": Fault(
        (OK, 3), (OK, 3), ("NetworkError", 1),
        "RST after the request was read (2×, then 200)",
    ),
    "reset_mid_body": Fault(
        ("StreamError", 1), ("StreamError", 1), ("StreamError", 1),
        "200, Content-Length 1000, 100 bytes, RST: handed on, fails in the caller's read",
    ),
    "reset_mid_error_body": Fault(
        (OK, 3), (OK, 3), ("ServiceUnavailableError", 1),
        "503 whose body is cut by a RST (2×, then 200)",
    ),
    "503_then_reset_mid_body": Fault(
        ("StreamError", 2), ("StreamError", 2), ("ServiceUnavailableError", 1),
        "503, then a 200 whose body is cut by a RST", connections=ONE,
    ),
    "headers_never_sent": Fault(
        (OK, 2), (OK, 2), ("RequestTimeoutError", 1),
        "read timeout 0.3 s before any header (1×, then 200)", read_timeout=0.3,
    ),
    "trickle": Fault(
        ("StreamTimeoutError", 1), ("StreamTimeoutError", 1), ("StreamTimeoutError", 1),
        "200 body at 1 byte / 0.5 s, read timeout 0.2 s", read_timeout=0.2,
    ),
    "trickle_error_body": Fault(
        (OK, 2), (OK, 2), ("ServiceUnavailableError", 1),
        "503 body at 1 byte / 0.5 s, read timeout 0.2 s (1×, then 200)", read_timeout=0.2,
    ),
    "malformed": Fault(
        (OK, 3), (OK, 3), ("ProtocolError", 1),
        "`HELLO WORLD` instead of HTTP (2×, then 200)",
    ),
    "503_storm": Fault(
        ("ServiceUnavailableError", 3), ("ServiceUnavailableError", 3), ("ServiceUnavailableError", 1),
        "503 + Retry-After: 0 on every attempt", connections=ONE, status_keeps_alive=True,
    ),
    "429_http_date": Fault(
        # A 429 was refused before any work: retried for every method, a POST without a key too.
        (OK, 2), (OK, 2), (OK, 2),
        "429 + Retry-After as an HTTP-date 2 s ahead (1×, then 200)",
        connections=ONE, status_keeps_alive=True,
    ),
    "big_error_body": Fault(
        (OK, 2), (OK, 2), ("InternalServerError", 1),
        "500 with a 100 MB body (1×, then 200): read up to 64 KiB, rest dropped with the connection",
    ),
    "408_then_ok": Fault(
        (OK, 2), (OK, 2), ("ClientError", 1),
        "408 + Connection: close (1×, then 200)",
    ),
    "early_close": Fault(
        (OK, 3), (OK, 3), ("ProtocolError", 1),
        "closed after the whole request was read, no response (2×, then 200)",
    ),
    "body_problem_json": _body("BadRequestError", "400 application/problem+json"),
    "body_fastapi_detail_str": _body("BadRequestError", '400 FastAPI {"detail": "…"}'),
    "body_fastapi_detail_list": _body("UnprocessableEntityError", '422 FastAPI {"detail": [{loc, msg, type}]}'),
    "body_error_object": _body("BadRequestError", '400 {"error": {message, type, code, param}}'),
    "body_error_string": _body("BadRequestError", '400 {"error": "…"}'),
    "body_message_code": _body("UnprocessableEntityError", '422 {"message", "code"}'),
    "body_jsonapi_errors": _body("UnprocessableEntityError", '422 JSON:API {"errors": [...]}'),
    "body_plain_text": _body("BadRequestError", "400 text/plain"),
    "body_html": _body("BadRequestError", "400 HTML page"),
    "body_empty": _body("BadRequestError", "400 with an empty body"),
    "body_non_utf8": _body("BadRequestError", "400 latin-1 bytes, no charset"),
    "body_truncated_json": _body("BadRequestError", '400 application/json `{"error": {"message": "cut`'),
}  # fmt: skip

# What each error body must yield: (message, code, errors or None, details or None). A value
# of ANY is not checked.
ANY: Any = object()
BODY_EXPECTATIONS: dict[str, tuple[Any, Any, Any, Any]] = {
    "body_problem_json": (
        "Your current balance is 30, but that costs 50.",
        "https://example.com/probs/out-of-credit",
        None,
        {"balance": 30},
    ),
    "body_fastapi_detail_str": ("Item name is invalid", "invalid_request", None, None),
    "body_fastapi_detail_list": (
        "1 validation error: body.name: Field required",
        "unprocessable_entity",
        [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}],
        None,
    ),
    "body_error_object": ("The model does not exist", "model_not_found", None, {"param": "model"}),
    "body_error_string": ("unsupported_grant_type", "invalid_request", None, None),
    "body_message_code": ("Name is already taken", "name_taken", None, None),
    "body_jsonapi_errors": (
        "Name is too short",
        "too_short",
        [{"loc": ["data", "attributes", "name"], "msg": "Name is too short", "type": "too_short"}],
        None,
    ),
    "body_plain_text": ("the request was not understood", "invalid_request", None, None),
    "body_html": ("400 Bad Request", "invalid_request", None, None),
    "body_empty": ("HTTP 400 Bad Request", "invalid_request", None, None),
    "body_non_utf8": ("Caf\ufffd d\ufffdj\ufffd ferm\ufffd", "invalid_request", None, None),
    "body_truncated_json": ('{"error": {"message": "cut', "invalid_request", None, None),
}

RETRY = RetryPolicy(max_attempts=3)
LIMITS = httpx.Limits(max_connections=1)
POOL_TIMEOUT = 1.0
CASE_LIMIT = 5.0  # seconds any one logical request may take, faults included
PAYLOAD = {"order": "ord_42", "amount": 1250}
NO_RETRY = {"resilience": {"retry": False}}
# Plain HTTP only; one TLS context for every transport spares each case httpx's CA loading.
TLS = ssl.create_default_context()


# --- Running one case --------------------------------------------------------------------------


@dataclass
class Spec:
    url: str
    healthy_url: str
    method: str  # one of METHODS
    timeout: httpx.Timeout

    @property
    def http_method(self) -> str:
        return "GET" if self.method == GET else "POST"

    @property
    def json(self) -> Any:
        return None if self.method == GET else PAYLOAD

    @property
    def idempotency(self) -> IdempotencyPolicy:
        return IdempotencyPolicy(enabled=self.method != POST_NO_KEY)


@dataclass
class Outcome:
    error: Exception | None = None
    payload: Any = None
    events: list[RetryEvent] = field(default_factory=list)
    wall: float = 0.0
    healthy_status: int | None = None
    healthy_error: Exception | None = None
    healthy_wall: float = 0.0


def run_sync(spec: Spec) -> Outcome:
    out = Outcome()
    transport = ResilientTransport(
        httpx.HTTPTransport(limits=LIMITS, verify=TLS),
        retry=RETRY,
        idempotency=spec.idempotency,
        on_retry=out.events.append,
    )
    with httpx.Client(transport=transport, timeout=spec.timeout) as client:
        start = time.perf_counter()
        try:
            response = client.request(spec.http_method, spec.url, json=spec.json)
            out.payload = response.json()
        except Exception as exc:
            out.error = exc
        out.wall = time.perf_counter() - start
        start = time.perf_counter()
        try:
            out.healthy_status = client.get(spec.healthy_url, extensions=NO_RETRY).status_code
        except Exception as exc:
            out.healthy_error = exc
        out.healthy_wall = time.perf_counter() - start
    return out


async def run_async(spec: Spec) -> Outcome:
    out = Outcome()
    transport = AsyncResilientTransport(
        httpx.AsyncHTTPTransport(limits=LIMITS, verify=TLS),
        retry=RETRY,
        idempotency=spec.idempotency,
        on_retry=out.events.append,
    )
    async with httpx.AsyncClient(transport=transport, timeout=spec.timeout) as client:
        start = time.perf_counter()
        try:
            response = await client.request(spec.http_method, spec.url, json=spec.json)
            out.payload = response.json()
        except Exception as exc:
            out.error = exc
        out.wall = time.perf_counter() - start
        start = time.perf_counter()
        try:
            response = await client.get(spec.healthy_url, extensions=NO_RETRY)
            out.healthy_status = response.status_code
        except Exception as exc:
            out.healthy_error = exc
        out.healthy_wall = time.perf_counter() - start
    return out


def run_case(mode: str, spec: Spec) -> Outcome:
    if mode == "sync":
        return run_sync(spec)
    if mode == "asyncio":
        return asyncio.run(run_async(spec))
    return trio.run(run_async, spec)


# --- Checking one case -------------------------------------------------------------------------


class Checks:
    """Soft assertions: every deviation of a case is collected, then the case fails once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "nothing"
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"


def check_common(
    check: Checks, fault: Fault, method: str, out: Outcome, run: Any, refused: bool
) -> None:
    expected_outcome, expected_attempts = fault.expect(method)
    err = out.error
    outcome = OK if err is None else type(err).__name__
    check(
        outcome == expected_outcome,
        f"outcome {outcome} ({_describe(err)}), documented {expected_outcome}",
    )
    check(out.wall < CASE_LIMIT, f"took {out.wall:.2f}s (bound {CASE_LIMIT}s)")

    # Nothing raw escapes; a transport failure keeps the original as its cause.
    if err is not None:
        check(isinstance(err, APIError), f"raw exception escaped: {_describe(err)}")
        if isinstance(err, TransportError):
            check(err.__cause__ is not None, f"{type(err).__name__} without __cause__")
        if isinstance(err, StatusError):
            check(err.response is not None, f"{type(err).__name__} without its response")

    # Attempts: what the client says, what the server saw, and the history.
    if isinstance(err, APIError):
        client_attempts = err.attempts
        check(
            len(err.history) == err.attempts,
            f"history has {len(err.history)} records for attempts={err.attempts}: "
            f"{[(r.status_code, r.error) for r in err.history]}",
        )
    else:
        client_attempts = len(out.events) + 1
    check(
        client_attempts == expected_attempts,
        f"attempts {client_attempts}, documented {expected_attempts}",
    )
    if not refused:
        check(
            len(run.attempts) == client_attempts,
            f"server saw {len(run.attempts)} attempts, the client reports {client_attempts}",
        )
    check(
        len(out.events) == len(run.attempts) - 1 or refused,
        f"on_retry called {len(out.events)}× for {len(run.attempts)} attempts",
    )

    # The pool still serves a fresh request at once.
    check(
        out.healthy_status == 200 and out.healthy_wall < POOL_TIMEOUT * 0.9,
        f"pool not usable afterwards: status {out.healthy_status}, "
        f"{_describe(out.healthy_error)} after {out.healthy_wall:.2f}s",
    )

    # Idempotency: one key per logical request; an unkeyed POST never executed twice.
    keys = run.keys
    if method == POST_NO_KEY:
        check(run.executions <= 1, f"unkeyed POST executed {run.executions}×")
        check(all(k is None for k in keys), f"unkeyed POST carried keys {keys}")
    elif method == POST_KEY:
        check(run.executions <= 1, f"keyed POST executed {run.executions}×")
        distinct = set(keys)
        check(
            refused or (len(distinct) == 1 and None not in distinct),
            f"keyed POST: keys across attempts {keys}",
        )
        if isinstance(err, APIError) and not refused:
            check(
                err.idempotency_key == keys[0],
                f"error.idempotency_key {err.idempotency_key!r}, the server saw {keys[0]!r}",
            )
        if refused and isinstance(err, APIError):
            check(err.idempotency_key is not None, "error.idempotency_key missing")
    else:
        check(all(k is None for k in keys), f"GET carried keys {keys}")
        check(run.executions == 0, f"GET executed {run.executions}×")

    # Connections: reused where the response left the connection usable.
    if fault.connections == ONE:
        check(len(run.connections) == 1, f"{len(run.connections)} connections, expected 1")
    elif fault.connections == EACH:
        check(
            len(run.connections) == len(run.attempts),
            f"{len(run.connections)} connections for {len(run.attempts)} attempts",
        )
    if not refused and (err is None or (isinstance(err, StatusError) and fault.status_keeps_alive)):
        check(
            run.healthy_connections == run.connections[-1:],
            f"the healthy GET used connection {run.healthy_connections}, "
            f"not the pooled {run.connections[-1:]}",
        )


# Checks of one fault: (check, method, outcome, run snapshot, fault server, run id).
Extra = Callable[[Checks, str, Outcome, Any, FaultServer, str], None]


def _extra_refused(check: Checks, method: str, out: Outcome, *_: Any) -> None:
    err = out.error
    check(getattr(err, "phase", None) == "connect", f"phase {getattr(err, 'phase', None)!r}")
    check(
        [e.reason for e in out.events] == ["ConnectError"] * 2,
        f"reasons {[e.reason for e in out.events]}",
    )


def _extra_read_phase(check: Checks, method: str, out: Outcome, *_: Any) -> None:
    err = out.error
    if err is not None:
        check(getattr(err, "phase", None) == "read", f"phase {getattr(err, 'phase', None)!r}")


def _extra_storm(check: Checks, method: str, out: Outcome, *_: Any) -> None:
    err = out.error
    if not isinstance(err, APIError):
        return
    check(err.status_code == 503, f"status_code {err.status_code}")
    check(err.retry_after == 0.0, f"retry_after {err.retry_after!r}")
    check(err.code == "overloaded", f"code {err.code!r}")
    check(err.message.startswith("overloaded"), f"message {err.message!r}")
    check(
        [(r.status_code, r.error, r.delay) for r in err.history]
        == [(503, "ServiceUnavailableError", 0.0)] * len(err.history),
        f"history {err.history}",
    )


def _extra_429(check: Checks, method: str, out: Outcome, *_: Any) -> None:
    err = out.error
    if err is None:
        delays = [e.delay for e in out.events]
        check(
            len(delays) == 1 and 0.5 <= delays[0] <= 2.5,
            f"waits {delays}: the HTTP-date (2 s ahead) should set the wait",
        )
        check([e.reason for e in out.events] == ["status 429"], "reason")
    elif isinstance(err, APIError):
        check(
            err.retry_after is not None and 0.5 <= err.retry_after <= 2.5,
            f"retry_after {err.retry_after!r} from an HTTP-date 2 s ahead",
        )


def _extra_big(
    check: Checks, method: str, out: Outcome, run: Any, server: FaultServer, run_id: str
) -> None:
    settled = server.settled(run_id)
    check(
        settled.bytes_sent < 32 * 1024 * 1024,
        f"the server wrote {settled.bytes_sent} of {BIG_BODY} bytes: the client read on",
    )
    err = out.error
    if isinstance(err, APIError):
        size = len((err.body or "").encode())
        check(0 < size <= 65536, f"error body of {size} bytes (cap 65536)")


def _extra_408(check: Checks, method: str, out: Outcome, *_: Any) -> None:
    err = out.error
    if isinstance(err, APIError):
        check(err.status_code == 408, f"status_code {err.status_code}")
        check(err.code == "request_timeout", f"code {err.code!r}")


def _extra_body(name: str) -> Extra:
    def extra(check: Checks, method: str, out: Outcome, *_: Any) -> None:
        err = out.error
        if not isinstance(err, APIError):
            return
        message, code, errors, details = BODY_EXPECTATIONS[name]
        check(err.message == message, f"message {err.message!r}, expected {message!r}")
        check(err.code == code, f"code {err.code!r}, expected {code!r}")
        if errors is not ANY:
            check(err.errors == errors, f"errors {err.errors!r}, expected {errors!r}")
        if details is not ANY:
            check(err.details == details, f"details {err.details!r}, expected {details!r}")
        check(str(err).startswith(f"{err.code}: "), f"str(err) {str(err)!r}")

    return extra


EXTRA: dict[str, Extra] = {
    "refused": _extra_refused,
    "reset_before_response": _extra_read_phase,
    "headers_never_sent": _extra_read_phase,
    "trickle": _extra_read_phase,
    "503_storm": _extra_storm,
    "429_http_date": _extra_429,
    "big_error_body": _extra_big,
    "408_then_ok": _extra_408,
    **{name: _extra_body(name) for name in BODY_EXPECTATIONS},
}


# --- The matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault_name", list(TABLE))
def test_fault(
    fault_name: str, mode: str, method: str, fault_server: FaultServer, matrix_log: MatrixLog
) -> None:
    fault = TABLE[fault_name]
    if not matrix_log.notes:
        matrix_log.notes.update({name: f.note for name, f in TABLE.items()})
    run_id = new_run_id()
    refused = fault_name == "refused"
    spec = Spec(
        url=refused_url() if refused else fault_server.url(fault_name, run_id),
        healthy_url=fault_server.healthy_url(run_id),
        method=method,
        timeout=httpx.Timeout(2.0, read=fault.read_timeout or 2.0, pool=POOL_TIMEOUT),
    )

    out = run_case(mode, spec)
    run = fault_server.run(run_id)
    check = Checks()
    check_common(check, fault, method, out, run, refused)
    extra = EXTRA.get(fault_name)
    if extra is not None:
        extra(check, method, out, run, fault_server, run_id)

    err = out.error
    expected_outcome, expected_attempts = fault.expect(method)
    matrix_log.cases.append(
        {
            "fault": fault_name,
            "mode": mode,
            "method": method,
            "outcome": OK if err is None else type(err).__name__,
            "attempts": getattr(err, "attempts", None) if err else len(out.events) + 1,
            "server_attempts": None if refused else len(run.attempts),
            "executions": run.executions,
            "connections": len(run.connections),
            "wall_ms": round(out.wall * 1000, 1),
            "expected_outcome": expected_outcome,
            "expected_attempts": expected_attempts,
            "expected_ok": not check.problems,
            "problems": check.problems,
        }
    )
    if check.problems:
        pytest.fail(
            f"{fault_name} / {mode} / {method}:\n  " + "\n  ".join(check.problems), pytrace=False
        )
