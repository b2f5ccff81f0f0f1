"""A tour of httpx-resilience against a small local API: retries, idempotency keys, typed errors.

Run it as it is:

    python examples/demo.py

It starts a throwaway HTTP server on 127.0.0.1 (standard library only) whose endpoints fail
the way real APIs do. First, retries: a POST that meets 503, 503, 200 and succeeds with one
idempotency key on all three attempts, a server asking for a day's wait, a total deadline,
the retry budget keeping an outage from tripling the server's load, and a circuit breaker
that stops calling a failing host. Then the typed error of each failure as one attempt sees
it. It checks every result as it goes and exits non-zero if anything was not as expected, so
CI runs it as a smoke test.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any, ClassVar, TypeVar

import httpx

import httpx_resilience
from httpx_resilience import (
    AdaptiveThrottle,
    AuthenticationError,
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    ErrorPolicy,
    NetworkError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ResilientTransport,
    RetryBudget,
    RetryEvent,
    RetryPolicy,
    ServiceUnavailableError,
    StatusError,
    StreamError,
    UnprocessableEntityError,
    ValidationError,
)
from httpx_resilience.testing import no_wait

SECRET = "sk-live-demo-4f9a2c7e1b3d"
E = TypeVar("E", bound=httpx_resilience.APIError)

# --------------------------------------------------------------------------------------------
# The local API: each route answers the way some well-known kind of service does.
# --------------------------------------------------------------------------------------------

Route = tuple[int, dict[str, str], Any]

ROUTES: dict[str, Route] = {
    # OpenAI-style error object.
    "/v1/models": (
        401,
        {},
        {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
    ),
    # An account out of credits, with the balance the client needs to show the user.
    "/v1/images": (
        402,
        {},
        {
            "error": {
                "message": "Your credit balance is too low to run this job.",
                "type": "billing_error",
                "code": "insufficient_credits",
                "balance": {"available": 0.12, "required": 0.5, "currency": "USD"},
            }
        },
    ),
    # FastAPI's HTTPException.
    "/items/42": (404, {}, {"detail": "Item 42 not found"}),
    # FastAPI's request validation.
    "/items": (
        422,
        {},
        {
            "detail": [
                {
                    "loc": ["body", "price"],
                    "msg": "Input should be greater than 0",
                    "type": "greater_than",
                },
                {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
            ]
        },
    ),
    # A per-minute rate limit: wait and try again.
    "/v1/search": (
        429,
        {
            "Retry-After": "2",
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "2",
        },
        {
            "error": {
                "message": "Rate limit reached for requests per minute. Try again in 2s.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
    ),
    # Also a 429, but the monthly quota is spent: waiting will not help.
    "/v1/embeddings": (
        429,
        {},
        {
            "error": {
                "message": "You exceeded your current quota, please check your plan.",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
    ),
    # RFC 9457 problem details, with an extension member.
    "/v1/reports": (
        503,
        {"Content-Type": "application/problem+json", "Retry-After": "30"},
        {
            "type": "https://api.example.com/problems/maintenance",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "Reports are down for scheduled maintenance.",
            "instance": "/v1/reports",
            "maintenance_until": "2030-01-01T04:00:00Z",
        },
    ),
    "/health": (200, {}, {"status": "ok"}),
}


class Handler(BaseHTTPRequestHandler):
    """Answers every request from `ROUTES`; `/v1/account` echoes the key it was sent."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK hold every keep-alive response back by 40 ms.
    disable_nagle_algorithm = True
    request_ids: ClassVar[Iterator[int]] = count(1)
    hits: ClassVar[dict[str, int]] = {}
    # /v1/jobs: the idempotency key of every attempt, and the jobs actually run, per key.
    job_keys: ClassVar[list[str]] = []
    jobs_run: ClassVar[dict[str, int]] = {}
    # /v1/export: the series whose first answer was already cut off.
    export_series: ClassVar[set[str]] = set()
    # /v1/limited: each series' token bucket (tokens, as of when) and the statuses it answered.
    limit_lock: ClassVar[threading.Lock] = threading.Lock()
    limit_buckets: ClassVar[dict[str, tuple[float, float]]] = {}
    limit_answers: ClassVar[dict[str, list[int]]] = {}

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        path, _, query = self.path.partition("?")
        self.hits[path] = self.hits.get(path, 0) + 1
        route: Route
        if path == "/v1/export":
            self.export(query)
            return
        if path == "/v1/limited":
            self.limited(query)
            return
        if path == "/v1/jobs":
            route = self.job()
        elif path == "/v1/busy":
            route = (503, {}, {"detail": "Overloaded, try again"})
        elif path == "/v1/slow-down":
            route = (429, {"Retry-After": "86400"}, {"message": "Come back tomorrow"})
        elif path == "/v1/account":
            # Servers echo what they were sent more often than anyone would like.
            route = (
                403,
                {},
                {"error": {"message": f"Key {SECRET} may not read accounts ({query})"}},
            )
        else:
            route = ROUTES.get(path, (404, {}, {"detail": "Not Found"}))
        status, extra_headers, payload = route
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "x-request-id": f"req_{next(self.request_ids):04d}",
            **extra_headers,
            "Content-Length": str(len(body)),
        }
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def export(self, query: str) -> None:
        """A 200 of 200 KB whose first answer per `?series=` breaks off half-way: the server
        hangs up mid-body, as a proxy restarting or a node dying would."""
        body = b"".join(b"row %06d,ok\n" % i for i in range(16_000))
        first = query not in self.export_series
        self.export_series.add(query)
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("x-request-id", f"req_{next(self.request_ids):04d}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if first:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def limited(self, query: str) -> None:
        """20 requests a second per `?series=` (a token bucket holding a second's worth); beyond
        that a bare 429, with no Retry-After or rate-limit header to go by."""
        now = time.monotonic()
        with self.limit_lock:
            tokens, then = self.limit_buckets.get(query, (LIMIT_RATE, now))
            tokens = min(LIMIT_RATE, tokens + (now - then) * LIMIT_RATE)
            allowed = tokens >= 1
            self.limit_buckets[query] = (tokens - 1 if allowed else tokens, now)
            self.limit_answers.setdefault(query, []).append(200 if allowed else 429)
        body = b'{"ok": true}' if allowed else b'{"error": "too many requests"}'
        self.send_response(200 if allowed else 429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def job(self) -> Route:
        """Overloaded twice, then runs the job: once per idempotency key, however often asked."""
        key = self.headers.get("Idempotency-Key", "")
        self.job_keys.append(key)
        if len(self.job_keys) <= 2:
            return (503, {}, {"detail": "Overloaded, try again"})
        self.jobs_run[key] = self.jobs_run.get(key, 0) + 1
        return (200, {}, {"id": "job_1", "status": "queued"})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the demo's output to the errors themselves


@contextmanager
def local_api() -> Iterator[str]:
    """Serve `Handler` on an OS-picked port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that is bound but never listens, so connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


# --------------------------------------------------------------------------------------------
# Printing and checking.
# --------------------------------------------------------------------------------------------


class Unexpected(Exception):
    """A case did not behave as the demo says it does."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Unexpected(what)


def show(err: httpx_resilience.APIError) -> None:
    data = err.to_dict()
    if isinstance(data.get("body"), str) and len(data["body"]) > 80:
        data["body"] = data["body"][:77] + "..."
    print(f"class: {type(err).__name__}")
    print(f"str:   {err}")
    print(json.dumps(data, indent=2))


def raised(call: Callable[[], object], expected: type[E]) -> E:
    """Run `call`, print the typed error it raised, and check its class."""
    try:
        call()
    except httpx_resilience.APIError as err:
        show(err)
        # The exact class, not a subclass: the demo promises which one each case raises.
        if isinstance(err, expected) and type(err) is expected:
            return err
        raise Unexpected(f"expected {expected.__name__}, got {type(err).__name__}") from err
    raise Unexpected(f"expected {expected.__name__}, but nothing was raised")


# --------------------------------------------------------------------------------------------
# The cases.
# --------------------------------------------------------------------------------------------


def case_retried_post(base_url: str) -> None:
    events: list[RetryEvent] = []
    # A quick backoff for the demo; the default starts at 0.5 s and doubles up to 8 s.
    retry = RetryPolicy(backoff=Backoff(initial=0.2, max_delay=1.0))
    transport = ResilientTransport(retry=retry, on_retry=events.append)
    with httpx.Client(base_url=base_url, transport=transport) as client:
        response = client.post("/v1/jobs", json={"model": "m1", "input": "hello"})
    for event in events:
        print(f"attempt {event.attempt}: {event.reason} -> waited {event.delay:.3f}s")
    print(f"attempt 3: {response.status_code} {response.json()}")
    print(f"Idempotency-Key on each attempt: {Handler.job_keys}")
    expect(response.status_code == 200, f"status {response.status_code}")
    expect([e.attempt for e in events] == [1, 2], f"events {events!r}")
    expect(len(Handler.job_keys) == 3, f"the server saw {len(Handler.job_keys)} attempts")
    expect(len(set(Handler.job_keys)) == 1 and bool(Handler.job_keys[0]), "keys differ")
    expect(list(Handler.jobs_run.values()) == [1], f"jobs run {Handler.jobs_run}")


def case_long_retry_after(base_url: str) -> None:
    with httpx.Client(base_url=base_url, transport=ResilientTransport()) as client:
        err = raised(lambda: client.get("/v1/slow-down"), RateLimitError)
    expect(err.retry_after == 86400.0, f"retry_after {err.retry_after!r}")
    expect(err.attempts == 1, f"attempts {err.attempts!r}: a one-day wait was slept")


def case_deadline(base_url: str) -> None:
    retry = RetryPolicy(max_attempts=10, timeout=0.5, backoff=Backoff(initial=0.1, jitter="none"))
    with httpx.Client(base_url=base_url, transport=ResilientTransport(retry=retry)) as client:
        # The wait that would not fit is not made: the server's own answer is raised, as it is.
        err = raised(lambda: client.get("/v1/busy"), ServiceUnavailableError)
    for record in err.history:
        print(f"  attempt: {record.status_code} {record.error}, then waited {record.delay}s")
    expect(err.history[-1].refused == "deadline", f"last record {err.history[-1]!r}")
    expect(sum(r.delay for r in err.history) <= 0.5, "slept past the deadline")


def case_authentication(client: httpx.Client) -> None:
    err = raised(lambda: client.get("/v1/models"), AuthenticationError)
    expect(err.code == "invalid_api_key", f"code {err.code!r}")
    expect(err.message == "Incorrect API key provided.", f"message {err.message!r}")
    expect(err.status_code == 401, f"status_code {err.status_code!r}")
    expect(bool(err.request_id and err.request_id.startswith("req_")), "no request_id")


def case_payment_required(client: httpx.Client) -> None:
    err = raised(
        lambda: client.post("/v1/images", json={"prompt": "a lighthouse"}), PaymentRequiredError
    )
    expect(err.code == "insufficient_credits", f"code {err.code!r}")
    balance = (err.details or {}).get("balance")
    expect(
        balance == {"available": 0.12, "required": 0.5, "currency": "USD"},
        f"details {err.details!r}",
    )


def case_not_found(client: httpx.Client) -> None:
    err = raised(lambda: client.get("/items/42"), NotFoundError)
    expect(err.message == "Item 42 not found", f"message {err.message!r}")
    expect(err.code == "not_found", f"code {err.code!r}")


def case_validation(client: httpx.Client) -> None:
    err = raised(lambda: client.post("/items", json={"price": -1}), UnprocessableEntityError)
    expect(isinstance(err, ValidationError), "a 422 is a ValidationError")
    expect(
        [e["loc"] for e in err.errors or []] == [["body", "price"], ["body", "name"]],
        f"errors {err.errors!r}",
    )
    for field_error in err.errors or []:
        print(f"  field {'.'.join(map(str, field_error['loc']))}: {field_error['msg']}")


def case_rate_limited(client: httpx.Client) -> None:
    err = raised(lambda: client.get("/v1/search", params={"q": "otters"}), RateLimitError)
    expect(err.retry_after == 2.0, f"retry_after {err.retry_after!r}")
    expect(err.limit == 60, f"limit {err.limit!r}")
    expect(err.remaining == 0, f"remaining {err.remaining!r}")
    expect(err.reset == 2.0, f"reset {err.reset!r}")
    expect(err.retryable, "a rate limit is retryable")


def case_quota_exceeded(client: httpx.Client) -> None:
    err = raised(lambda: client.post("/v1/embeddings", json={"input": "hi"}), QuotaExceededError)
    expect(isinstance(err, RateLimitError), "QuotaExceededError is a RateLimitError")
    expect(not err.retryable, "an exhausted quota is not retryable")


def case_service_unavailable(client: httpx.Client) -> None:
    err = raised(lambda: client.get("/v1/reports"), ServiceUnavailableError)
    expect(err.code == "https://api.example.com/problems/maintenance", f"code {err.code!r}")
    expect(err.retry_after == 30.0, f"retry_after {err.retry_after!r}")
    expect(
        (err.details or {}).get("maintenance_until") == "2030-01-01T04:00:00Z",
        f"details {err.details!r}",
    )


def case_connection_refused(client: httpx.Client) -> None:
    with refused_port() as port:
        err = raised(lambda: client.get(f"http://127.0.0.1:{port}/v1/models"), NetworkError)
    expect(err.phase == "connect", f"phase {err.phase!r}")
    expect(err.code == "network_error", f"code {err.code!r}")
    expect(isinstance(err, httpx.NetworkError), "NetworkError is an httpx.NetworkError")
    expect(isinstance(err.__cause__, httpx.ConnectError), f"cause {err.__cause__!r}")


def case_request_too_large(client: httpx.Client) -> None:
    # Per-request override: this call alone refuses bodies over 1 KiB.
    small = {"resilience": {"errors": ErrorPolicy(max_request_bytes=1024)}}
    before = Handler.hits.get("/v1/files", 0)
    err = raised(
        lambda: client.post("/v1/files", content=b"x" * 4096, extensions=small),
        RequestTooLargeError,
    )
    expect(isinstance(err, ValueError), "RequestTooLargeError is a ValueError")
    expect(Handler.hits.get("/v1/files", 0) == before, "the request reached the server")


def case_redaction(client: httpx.Client) -> None:
    err = raised(
        lambda: client.get(
            "/v1/account",
            params={"api_key": SECRET, "page": "1"},
            headers={"Authorization": f"Bearer {SECRET}"},
        ),
        PermissionDeniedError,
    )
    for view in (str(err), repr(err), json.dumps(err.to_dict())):
        expect(SECRET not in view, f"the secret leaked: {view}")
    expect("api_key=[REDACTED]" in (err.url or ""), f"url {err.url!r}")


def case_raise_on_status_false(client: httpx.Client) -> None:
    quiet = {"resilience": {"errors": ErrorPolicy(raise_on_status=False)}}
    response = client.get("/items/42", extensions=quiet)
    print(f"status: {response.status_code}")
    print(f"response.extensions['request_id']: {response.extensions['request_id']}")
    expect(response.status_code == 404, f"status {response.status_code}")
    expect(str(response.extensions["request_id"]).startswith("req_"), "no request_id")
    err = httpx_resilience.from_response(response)
    print("from_response(response) gives:")
    show(err)
    expect(type(err) is NotFoundError, f"from_response gave {type(err).__name__}")


def case_httpx_compatible(client: httpx.Client) -> None:
    # Code written against plain httpx keeps working: every StatusError is an HTTPStatusError.
    try:
        client.get("/items/42")
    except httpx.HTTPStatusError as err:
        print(f"caught by `except httpx.HTTPStatusError`: {type(err).__name__}")
        print(f"err.response.status_code: {err.response.status_code}")
        expect(isinstance(err, StatusError), f"got {type(err).__name__}")
        return
    raise Unexpected("a 404 was not raised as httpx.HTTPStatusError")


def case_success(client: httpx.Client) -> None:
    response = client.get("/health")
    print(f"status: {response.status_code}, body: {response.json()}")
    print(f"response.extensions['request_id']: {response.extensions['request_id']}")
    expect(response.status_code == 200, f"status {response.status_code}")
    expect(str(response.extensions["request_id"]).startswith("req_"), "no request_id")


def outage_load(base_url: str, budget: RetryBudget | None, requests: int) -> int:
    """How many attempts the server sees for `requests` GETs during a full outage."""
    before = Handler.hits.get("/v1/busy", 0)
    transport = ResilientTransport(budget=budget)
    with no_wait(), httpx.Client(base_url=base_url, transport=transport) as client:
        for _ in range(requests):
            try:
                client.get("/v1/busy")
            except ServiceUnavailableError as err:
                last = err
    print(f"  last error's history: {[(r.error, r.refused) for r in last.history]}")
    return Handler.hits["/v1/busy"] - before


def case_retry_budget(base_url: str) -> None:
    requests = 500
    with_budget = outage_load(base_url, RetryBudget(), requests)
    without = outage_load(base_url, None, requests)
    print(
        f"{requests} requests, 3 attempts each, every one a 503: the server saw "
        f"{with_budget} attempts with the default budget ({with_budget / requests:.2f} x), "
        f"{without} with budget=None ({without / requests:.2f} x)"
    )
    # 10 % of the requests, plus the reserve of 10 retries a second over a 10 s window.
    expect(with_budget <= requests * 1.1 + 100, f"{with_budget} attempts with the budget")
    expect(without == 3 * requests, f"{without} attempts without the budget")


def case_circuit_breaker(base_url: str) -> None:
    breaker = CircuitBreaker(min_calls=5, failure_ratio=0.5, open_for=30.0)
    transport = ResilientTransport(breaker=breaker, retry=RetryPolicy(max_attempts=1))
    with httpx.Client(base_url=base_url, transport=transport) as client:
        for _ in range(5):
            with suppress(ServiceUnavailableError):
                client.get("/v1/busy")
        sent = Handler.hits["/v1/busy"]
        err = raised(lambda: client.get("/v1/busy"), CircuitOpenError)
    expect(Handler.hits["/v1/busy"] == sent, "a request reached the server while open")
    expect(err.retry_after is not None and err.retry_after > 29, f"retry_after {err.retry_after}")


def case_broken_body(base_url: str) -> None:
    retry = RetryPolicy(backoff=Backoff(initial=0.1, jitter="none"))
    with httpx.Client(base_url=base_url, transport=ResilientTransport(retry=retry)) as client:
        # By default the body is handed on unread: the cut reaches the caller's read.
        err = raised(lambda: client.get("/v1/export?series=a"), StreamError)
    expect(err.attempts == 1, f"attempts {err.attempts}")
    transport = ResilientTransport(retry=retry, buffer=1_048_576)
    with httpx.Client(base_url=base_url, transport=transport) as client:
        response = client.get("/v1/export?series=b")
    history = response.extensions["history"]
    print(f"buffer=1 MiB: attempt 1 {history[0].error} ({history[0].request_id}), then ", end="")
    print(f"attempt 2: {response.status_code}, {len(response.content):,} bytes whole")
    expect(response.extensions["attempts"] == 2, f"attempts {response.extensions['attempts']}")
    expect(response.content.count(b"\n") == 16_000, "the body is not whole")


LIMIT_RATE = 20.0


def rush(base_url: str, series: str, throttle: AdaptiveThrottle | None) -> tuple[int, int]:
    """10 threads send 60 GETs to a host allowing 20 a second: (calls that failed, 429s)."""
    retry = RetryPolicy(backoff=Backoff(initial=0.05, max_delay=0.2))
    transport = ResilientTransport(retry=retry, throttle=throttle)
    failed = 0
    with httpx.Client(base_url=base_url, transport=transport) as client:

        def call(_: int) -> bool:
            try:
                client.get(f"/v1/limited?series={series}")
            except RateLimitError:
                return False
            return True

        with ThreadPoolExecutor(max_workers=10) as pool:
            failed = sum(not ok for ok in pool.map(call, range(60)))
    return failed, Handler.limit_answers[f"series={series}"].count(429)


def case_adaptive_throttle(base_url: str) -> None:
    off = rush(base_url, "off", None)
    on = rush(base_url, "on", AdaptiveThrottle())
    sent = {name: len(Handler.limit_answers[f"series={name}"]) for name in ("off", "on")}
    for name, (failed, refused) in (("throttle off", off), ("throttle on ", on)):
        key = name.split()[1]
        print(
            f"{name}: {failed} of 60 calls failed; the server answered {refused} of "
            f"{sent[key]} attempts with 429"
        )
    expect(on[0] < off[0], f"the throttle did not cut failures: {on[0]} vs {off[0]}")
    expect(on[1] < off[1], f"the throttle did not cut 429s: {on[1]} vs {off[1]}")


RETRY_CASES: list[tuple[str, Callable[[str], None]]] = [
    ("retries: a POST meets 503, 503, 200, one idempotency key throughout", case_retried_post),
    ("retries: Retry-After of a day is not slept, it is raised", case_long_retry_after),
    ("retries: a total deadline of 0.5 s across attempts and waits", case_deadline),
    ("buffer=: a 200 cut off mid-body is retried, not handed on broken", case_broken_body),
    ("throttle=: 10 threads against a host allowing 20/s, bare 429s", case_adaptive_throttle),
    ("retry budget: a full outage costs the server 1.3 x, not 3 x", case_retry_budget),
    ("circuit breaker: 5 failures of 5, then CircuitOpenError, nothing sent", case_circuit_breaker),
]

CASES: list[tuple[str, Callable[[httpx.Client], None]]] = [
    ("200: success passes through, with its request id", case_success),
    ("401: OpenAI-style error object", case_authentication),
    ("402: out of credits, balance in details", case_payment_required),
    ("404: FastAPI detail", case_not_found),
    ("422: FastAPI validation errors -> err.errors", case_validation),
    ("429: rate limited, with Retry-After and x-ratelimit-*", case_rate_limited),
    ("429: quota exhausted -> QuotaExceededError", case_quota_exceeded),
    ("503: application/problem+json", case_service_unavailable),
    ("connection refused -> NetworkError (phase connect)", case_connection_refused),
    ("client-side: body over ErrorPolicy(max_request_bytes=1024)", case_request_too_large),
    ("secrets in Authorization and ?api_key= are redacted", case_redaction),
    ("raise_on_status=False, then from_response()", case_raise_on_status_false),
    ("plain httpx code still catches it", case_httpx_compatible),
]


def run(case: Callable[[Any], None], arg: object) -> str | None:
    """Run one case; what went wrong, or None."""
    try:
        case(arg)
    except Unexpected as exc:
        return str(exc)
    except Exception as exc:
        # Anything else escaping, e.g. a raw httpx exception, is a failure too.
        return f"{type(exc).__name__} escaped: {exc}"
    return None


def main() -> int:
    failures: list[str] = []

    def report(title: str, problem: str | None) -> None:
        if problem is not None:
            print(f"!!! UNEXPECTED: {problem}")
            failures.append(f"{title}: {problem}")

    with local_api() as base_url:
        for title, retry_case in RETRY_CASES:
            print(f"\n=== {title} ===")
            report(title, run(retry_case, base_url))
        # The typed errors as one attempt sees them (retries would only repeat them here).
        transport = ResilientTransport(retry=RetryPolicy(max_attempts=1))
        with httpx.Client(base_url=base_url, transport=transport, timeout=5.0) as client:
            for title, case in CASES:
                print(f"\n=== {title} ===")
                report(title, run(case, client))
    total = len(RETRY_CASES) + len(CASES)
    print()
    if failures:
        print(f"demo FAILED: {len(failures)} of {total} cases misbehaved:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"demo OK: all {total} cases behaved as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
