"""A sweep: a canary secret in every position SPEC §6 names, through every error and retry path.

Each position carries its own canary (`q7CANARYx<nn>-<position>`), all sharing one marker, so a
leak anywhere is caught by the marker and named by the canary. The canaries never show in an
error's `str`, `repr`, `to_dict()` or `history`, in any `RetryEvent`'s error, or in any
DEBUG/INFO record of the `httpx_resilience` logger; the Idempotency-Key value may (it is no
secret). And a server cannot stall a client with a one-day `Retry-After`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from _support import flavour
from httpx_resilience import (
    APIError,
    Backoff,
    BadRequestError,
    ErrorPolicy,
    NetworkError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    RetryEvent,
    RetryPolicy,
    ServiceUnavailableError,
    StreamError,
)

from ._support import Runner
from .conftest import LiveServer, RawServer, new_id

MARKER = "q7CANARYx"
_POSITIONS = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "token-header",
    "secret-header",
    "password-header",
    "signature-header",
    "key-header",
    "api_key",
    "access_token",
    "client_secret",
    "password",
    "x-amz-signature",
]
CANARY = {name: f"{MARKER}{n:02d}-{name}" for n, name in enumerate(_POSITIONS)}
SECRET_HEADERS = {
    "Authorization": f"Bearer {CANARY['authorization']}",
    "Proxy-Authorization": f"Basic {CANARY['proxy-authorization']}",
    "Cookie": f"session={CANARY['cookie']}; theme=dark",
    "Set-Cookie": f"sid={CANARY['set-cookie']}; Path=/; HttpOnly",
    "X-Api-Key": CANARY["x-api-key"],
    "X-Auth-Token": CANARY["token-header"],
    "X-Client-Secret": CANARY["secret-header"],
    "X-Db-Password": CANARY["password-header"],
    "X-Request-Signature": CANARY["signature-header"],
    "X-Partner-Key": CANARY["key-header"],
}
SECRET_PARAMS = {
    "api_key": CANARY["api_key"],
    "access_token": CANARY["access_token"],
    "client_secret": CANARY["client_secret"],
    "password": CANARY["password"],
    "X-Amz-Signature": CANARY["x-amz-signature"],
}
IDEMPOTENCY_KEY = "idem-sweep-visible-0042"


@pytest.fixture
def run(mode: str) -> Runner:
    """Every mode, through httpx alone, as the sweep always ran."""
    return Runner(mode, flavour("httpx"))


@dataclass(frozen=True)
class Case:
    """One way for a request carrying every canary to go, and what it must come to."""

    method: str
    url: str
    expected: type[APIError] | None  # None: the request succeeds in the end
    attempts: int
    retries: int
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    errors: ErrorPolicy = field(default_factory=ErrorPolicy)
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(5))
    content: bytes | None = None
    phase: str | None = None


# 400 made retryable, so the route that echoes every credential is also met on the retry path.
ECHO_RETRIED = RetryPolicy(retry_statuses={400})
# The first wait (1 s) would pass the 0.5 s deadline: the 400 itself at once, marked refused.
DEADLINE = RetryPolicy(
    retry_statuses={400}, timeout=0.5, backoff=Backoff(initial=1.0, jitter="none")
)
# An attempt that a 0.3 s deadline cuts short: RequestTimeoutError(phase="total").
DEADLINE_CUT = RetryPolicy(timeout=0.3)


def _case(name: str, server: LiveServer, raw: RawServer, refused_url: str) -> Case:
    cases: dict[str, Callable[[], Case]] = {
        "404": lambda: Case("GET", server.url("/status/404"), NotFoundError, 1, 0),
        "429-retried-then-raised": lambda: Case(
            "GET", server.url("/status/429", **{"retry-after": "0"}), RateLimitError, 3, 2
        ),
        "503-retried-then-raised": lambda: Case(
            "GET",
            server.url("/status/503", **{"retry-after": "0"}),
            ServiceUnavailableError,
            3,
            2,
        ),
        "503-retried-then-200": lambda: Case(
            "GET", server.url(f"/flaky/{new_id()}", fail=2, retry_after=0), None, 3, 2
        ),
        "echo-error": lambda: Case(
            "POST", server.url("/echo-error"), BadRequestError, 1, 0, content=b"{}"
        ),
        "echo-error-retried": lambda: Case(
            "GET", server.url("/echo-error"), BadRequestError, 3, 2, retry=ECHO_RETRIED
        ),
        "deadline": lambda: Case(
            "GET", server.url("/echo-error"), BadRequestError, 1, 0, retry=DEADLINE
        ),
        "deadline-cut": lambda: Case(
            "GET",
            server.url("/slow", delay=2),
            RequestTimeoutError,
            1,
            0,
            retry=DEADLINE_CUT,
            phase="total",
        ),
        "connect-refused": lambda: Case("GET", refused_url, NetworkError, 3, 2, phase="connect"),
        "read-timeout": lambda: Case(
            "GET",
            server.url("/slow", delay=2),
            RequestTimeoutError,
            3,
            2,
            timeout=httpx.Timeout(5, read=0.2),
            phase="read",
        ),
        "protocol-error": lambda: Case("GET", raw.url("/garbage"), ProtocolError, 3, 2),
        "503-body-cut-retried": lambda: Case(
            "GET", raw.url("/error-abort"), ServiceUnavailableError, 3, 2
        ),
        "stream-error-mid-body": lambda: Case("GET", raw.url("/stream-abort"), StreamError, 1, 0),
        "request-too-large": lambda: Case(
            "POST",
            server.url("/echo"),
            RequestTooLargeError,
            0,
            0,
            errors=ErrorPolicy(max_request_bytes=10),
            content=b"x" * 100,
        ),
    }
    return cases[name]()


CASE_NAMES = [
    "404",
    "429-retried-then-raised",
    "503-retried-then-raised",
    "503-retried-then-200",
    "echo-error",
    "echo-error-retried",
    "deadline",
    "deadline-cut",
    "connect-refused",
    "read-timeout",
    "protocol-error",
    "503-body-cut-retried",
    "stream-error-mid-body",
    "request-too-large",
]


@dataclass
class Outcome:
    """What one request came to: its error (if it failed) and the retry events on the way."""

    error: APIError | None
    events: list[RetryEvent]
    body: str = ""  # of the response, where the request succeeded in the end


def _headers() -> dict[str, str]:
    return {**SECRET_HEADERS, "Idempotency-Key": IDEMPOTENCY_KEY}


def _with_secret_params(url: str) -> str:
    # Merged by hand: httpx's `params=` would replace the query the case's URL already has.
    return str(httpx.URL(url).copy_merge_params(SECRET_PARAMS))


async def _go(run: Runner, case: Case) -> Outcome:
    """Send `case`'s request, carrying every canary, streamed and read in `run`'s mode."""
    events: list[RetryEvent] = []
    transport = run.transport(retry=case.retry, errors=case.errors, on_retry=events.append)
    async with run.client(transport, headers=_headers(), timeout=case.timeout) as client:
        try:
            async with client.stream(
                case.method, _with_secret_params(case.url), content=case.content
            ) as response:
                await client.read(response)
        except APIError as err:
            return Outcome(err, events)
    return Outcome(None, events, response.text)


def _named(text: str) -> list[str]:
    """The positions whose canary shows in `text` (or the bare marker, if cut short)."""
    shown = [name for name, canary in CANARY.items() if canary in text]
    return shown or (["a canary, cut short"] if MARKER in text else [])


def _faces(err: APIError) -> dict[str, str]:
    return {
        "str": str(err),
        "repr": repr(err),
        "to_dict": json.dumps(err.to_dict()),
        "history": repr(err.history),
    }


def _leaks(outcome: Outcome, caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    """Every public face that shows a canary, with the positions it shows."""
    faces: dict[str, str] = {}
    if outcome.error is not None:
        faces.update(_faces(outcome.error))
        cause = outcome.error.__cause__
        if isinstance(cause, APIError):  # the deadline's last attempt
            faces.update({f"cause {k}": v for k, v in _faces(cause).items()})
    for n, event in enumerate(outcome.events, 1):
        faces[f"event {n} error str"] = str(event.error)
        faces[f"event {n} error repr"] = repr(event.error)
        faces[f"event {n} error to_dict"] = json.dumps(event.error.to_dict())
        faces[f"event {n} reason"] = event.reason
    for n, record in enumerate(caplog.records, 1):
        if record.name.startswith("httpx_resilience"):
            faces[f"log {n} message"] = record.getMessage()
            faces[f"log {n} args"] = str(record.args)
    return {face: _named(text) for face, text in faces.items() if _named(text)}


def _check_path(case: Case, outcome: Outcome) -> None:
    """The request really went the way the case meant, so the sweep covered that path."""
    assert len(outcome.events) == case.retries
    err = outcome.error
    if case.expected is None:
        assert err is None
        assert json.loads(outcome.body)["seen"] == case.attempts
        return
    assert type(err) is case.expected, repr(err)
    assert err.attempts == case.attempts
    if case.phase is not None:
        assert err.phase == case.phase
    if case.attempts and case.expected is not StreamError:
        # Sent at least once: the key the caller set is reported, visibly. (StreamError has
        # its own test below.)
        assert err.idempotency_key == IDEMPOTENCY_KEY
        assert IDEMPOTENCY_KEY in json.dumps(err.to_dict())
    if err.url is not None:
        for param in SECRET_PARAMS:
            assert f"{param}=[REDACTED]" in err.url, err.url


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_no_canary_anywhere(
    run: Runner,
    name: str,
    server: LiveServer,
    raw: RawServer,
    refused_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No canary in the error's faces, its retry events' errors or the library's log records."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    case = _case(name, server, raw, refused_url)
    outcome = run(_go, run, case)
    _check_path(case, outcome)
    assert _leaks(outcome, caplog) == {}


def test_echoed_canaries_scrubbed_idempotency_key_kept(
    run: Runner, server: LiveServer, raw: RawServer, refused_url: str
) -> None:
    """Every canary the server echoes is scrubbed from message and body; the key stays visible."""
    outcome = run(_go, run, _case("echo-error", server, raw, refused_url))
    err = outcome.error
    assert isinstance(err, BadRequestError)
    assert err.response is not None
    # The server echoed every canary the request carried: the scrubbing below is real.
    assert set(_named(err.response.text)) == set(CANARY)
    assert err.body is not None
    assert _named(err.body) == []
    assert _named(err.message) == []
    assert f"Idempotency-Key={IDEMPOTENCY_KEY}" in err.message


def test_stream_error_reports_idempotency_key(
    run: Runner, server: LiveServer, raw: RawServer, refused_url: str
) -> None:
    """A StreamError reports the Idempotency-Key its request was sent with, like every error."""
    outcome = run(_go, run, _case("stream-error-mid-body", server, raw, refused_url))
    err = outcome.error
    assert isinstance(err, StreamError)
    assert err.request is not None
    assert err.request.headers["idempotency-key"] == IDEMPOTENCY_KEY  # it was sent
    assert err.idempotency_key == IDEMPOTENCY_KEY


# --- A server cannot stall a client -----------------------------------------------------------

ONE_DAY = 86400.0
# A 429 from /flaky with a one-day hint in each form a server may send, and how far the
# reported retry_after may be from a day: an HTTP-date has whole seconds, so one either side.
STALL_HINTS: dict[str, tuple[dict[str, str], float]] = {
    "retry-after-seconds": ({"retry_after": "86400"}, 0.0),
    "retry-after-ms": ({"retry_after_ms": "86400000"}, 0.0),
    "retry-after-http-date": ({"retry_after_date": "86400"}, 1.0),
}


def _stall_url(server: LiveServer, hint: str) -> str:
    return server.url(f"/flaky/{new_id()}", fail=1, status=429, **STALL_HINTS[hint][0])


def _check_not_stalled(
    err: RateLimitError, hint: str, events: list[RetryEvent], elapsed: float
) -> None:
    assert elapsed < 1.0, f"a one-day Retry-After held the call for {elapsed:.2f}s"
    assert err.retry_after is not None
    assert abs(err.retry_after - ONE_DAY) <= STALL_HINTS[hint][1], err.retry_after
    assert err.attempts == 1
    assert events == []


@pytest.mark.timeout(5)
@pytest.mark.parametrize("hint", list(STALL_HINTS))
def test_one_day_retry_after_does_not_stall(run: Runner, server: LiveServer, hint: str) -> None:
    """A 429 asking for a day is raised at once, with retry_after set to the day."""

    async def scenario() -> None:
        events: list[RetryEvent] = []
        # A real sleep, always called: were the day waited, the test's timeout would fail it.
        async with run.client(run.transport(sleep=run.sleep, on_retry=events.append)) as client:
            started = time.monotonic()
            with pytest.raises(RateLimitError) as excinfo:
                await client.get(_stall_url(server, hint))
            elapsed = time.monotonic() - started
        _check_not_stalled(excinfo.value, hint, events, elapsed)

    run(scenario)
