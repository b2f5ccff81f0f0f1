"""The retry rules, run through the real sync driver with a fake clock against scripted outcomes."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import httpx_resilience as hr
from _support import (
    Chunks,
    Close,
    FakeClock,
    Outcome,
    ReadBody,
    drive,
    make_settings,
    streamed,
)
from httpx_resilience import (
    Backoff,
    ErrorPolicy,
    IdempotencyPolicy,
    RetryBudget,
    RetryEvent,
    RetryPolicy,
)
from httpx_resilience._settings import Settings
from httpx_resilience._state import Rules

URL = "https://api.example.com/v1/x"
# Full jitter with random() == 0.5 waits half the base delay: 0.5 * 0.5, 0.5 * 1.0, 0.5 * 2.0, …
FULL_HALF = [0.25, 0.5, 1.0, 2.0]


make = make_settings


def respond(
    status: int,
    body: object = b"",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A response with `body` (bytes as they are, anything else as JSON)."""
    all_headers = dict(headers or {})
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        all_headers.setdefault("content-type", "application/json")
    return streamed(status, body, all_headers)


def retry(**changes: Any) -> Settings:
    return make(retry=RetryPolicy(**changes))


def without_key() -> Settings:
    return make(idempotency=IdempotencyPolicy(enabled=False))


def post(**kwargs: Any) -> httpx.Request:
    return httpx.Request("POST", URL, json={"a": 1}, **kwargs)


# --- The basic loop ---------------------------------------------------------------------------


def test_retries_503s_until_success_with_backoff() -> None:
    """503, 503, 200 succeeds after 3 sends with two backoff waits (0.25, 0.5 for random 0.5, full jitter)."""
    ok = respond(200)
    run = drive([respond(503), respond(503), ok])
    assert run.response is ok
    assert len(run.sent) == 3
    assert run.sleeps == [0.25, 0.5]


def test_exhausted_retries_raise_the_last_error_with_history() -> None:
    """Three 503s raise ServiceUnavailableError with attempts 3 and one history record per attempt."""
    run = drive([respond(503), respond(503), respond(503)])
    error = run.error
    assert isinstance(error, hr.ServiceUnavailableError)
    assert error.attempts == 3
    assert [r.delay for r in error.history] == [0.25, 0.5, 0.0]
    assert [r.status_code for r in error.history] == [503, 503, 503]
    assert [r.error for r in error.history] == ["ServiceUnavailableError"] * 3
    assert run.sleeps == [0.25, 0.5]


def test_exhausted_transport_retries_raise_with_history() -> None:
    """Three ConnectErrors raise NetworkError with attempts 3 and history of status None records."""
    run = drive([httpx.ConnectError("refused")] * 3)
    error = run.error
    assert isinstance(error, hr.NetworkError)
    assert error.attempts == 3
    assert [(r.status_code, r.error, r.delay) for r in error.history] == [
        (None, "NetworkError", 0.25),
        (None, "NetworkError", 0.5),
        (None, "NetworkError", 0.0),
    ]


def test_max_attempts_one_means_no_retry() -> None:
    """max_attempts=1 sends once and raises the 503 without any wait."""
    run = drive([respond(503), respond(200)], settings=retry(max_attempts=1))
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert (len(run.sent), run.sleeps) == (1, [])


def test_retry_false_override_disables_retries_for_one_request() -> None:
    """extensions {"resilience": {"retry": False}} sends once."""
    request = httpx.Request("GET", URL, extensions={"resilience": {"retry": False}})
    run = drive([respond(503), respond(200)], request)
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert len(run.sent) == 1


def test_retry_policy_override_is_honoured() -> None:
    """extensions {"resilience": {"retry": RetryPolicy(max_attempts=5)}} makes 5 attempts."""
    request = httpx.Request(
        "GET", URL, extensions={"resilience": {"retry": RetryPolicy(max_attempts=5)}}
    )
    run = drive([respond(503)] * 5, request)
    assert run.error.attempts == 5
    assert len(run.sent) == 5
    assert run.sleeps == FULL_HALF


@pytest.mark.parametrize(
    "overrides",
    [
        {"retry": 3},
        {"retry": True},
        {"retry": None},
        {"retry": Backoff()},
        {"idempotency": RetryPolicy()},
        {"errors": {"raise_on_status": False}},
        {"unknown": RetryPolicy()},
        "retry",
        ["retry"],
    ],
    ids=repr,
)
def test_bad_overrides_raise_before_sending(overrides: object) -> None:
    """A per-request override of the wrong type or name raises ConfigurationError before any Send."""
    request = httpx.Request("GET", URL, extensions={"resilience": overrides})
    run = drive([respond(200)], request)
    assert isinstance(run.error, hr.ConfigurationError)
    assert run.sent == []


# --- Which statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_default_retry_statuses_are_retried(status: int) -> None:
    """Each default retry status is retried, and the retry then succeeds."""
    run = drive([respond(status), respond(200)])
    assert run.response.status_code == 200
    assert (len(run.sent), run.sleeps) == (2, [0.25])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501, 505])
def test_other_statuses_raise_after_one_attempt(status: int) -> None:
    """A status outside retry_statuses is raised as its StatusError after a single attempt."""
    run = drive([respond(status), respond(200)])
    assert isinstance(run.error, hr.StatusError)
    assert run.error.status_code == status
    assert (len(run.sent), run.sleeps) == (1, [])


def test_custom_retry_statuses() -> None:
    """retry_statuses={409} retries a 409 and no longer retries a 503."""
    settings = retry(retry_statuses={409})
    assert drive([respond(409), respond(200)], settings=settings).response.status_code == 200
    run = drive([respond(503), respond(200)], settings=settings)
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert len(run.sent) == 1


@pytest.mark.parametrize("header", ["x-should-retry", "stripe-should-retry"])
@pytest.mark.parametrize("value", ["true", "True"])
def test_should_retry_true_retries_a_400(header: str, value: str) -> None:
    """The server's should-retry "true" makes a 400 retried."""
    run = drive([respond(400, headers={header: value}), respond(200)])
    assert run.response.status_code == 200
    assert len(run.sent) == 2


@pytest.mark.parametrize("header", ["x-should-retry", "stripe-should-retry"])
def test_should_retry_false_stops_a_503(header: str) -> None:
    """The server's should-retry "false" makes a 503 final."""
    run = drive([respond(503, headers={header: "false"}), respond(200)])
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert len(run.sent) == 1


# --- Retry-After ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "3"}, 1.5),
    ],
    ids=repr,
)
def test_retry_after_replaces_backoff(headers: dict[str, str], expected: float) -> None:
    """A Retry-After / retry-after-ms hint is the wait instead of the backoff."""
    run = drive([respond(503, headers=headers), respond(200)])
    assert run.sleeps == [expected]
    assert run.response.status_code == 200


def test_retry_after_http_date() -> None:
    """A Retry-After HTTP-date about 5 s ahead gives a wait of about 5 s."""
    date = email.utils.formatdate(time.time() + 5, usegmt=True)
    run = drive([respond(429, headers={"retry-after": date}), respond(200)])
    assert len(run.sleeps) == 1
    assert 3.5 < run.sleeps[0] <= 5.01


@pytest.mark.parametrize(
    "value",
    ["soon", "-3", "", "1e3", "Wed, 21 Oct 2015 07:28:00 GMT", "nan"],
    ids=repr,
)
def test_bad_or_past_retry_after_falls_back_to_backoff(value: str) -> None:
    """A garbage, negative or past Retry-After is ignored: the backoff (0.25) is used."""
    run = drive([respond(503, headers={"retry-after": value}), respond(200)])
    assert run.sleeps == [0.25]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (503, {"retry-after": "500"}),
        (429, {"retry-after": "500"}),
        (503, {"retry-after-ms": "500000"}),
    ],
    ids=repr,
)
def test_hint_above_max_retry_after_raises_at_once(status: int, headers: dict[str, str]) -> None:
    """A hint above max_retry_after (120) is not slept: the error is raised after one attempt with retry_after 500."""
    run = drive([respond(status, headers=headers), respond(200)])
    assert isinstance(run.error, hr.StatusError)
    assert run.error.retry_after == 500.0
    assert run.error.attempts == 1
    assert (len(run.sent), run.sleeps) == (1, [])


def test_custom_max_retry_after() -> None:
    """max_retry_after=2 refuses a 3 s hint and accepts a 2 s one."""
    settings = retry(max_retry_after=2)
    assert len(drive([respond(503, headers={"retry-after": "3"})], settings=settings).sent) == 1
    run = drive([respond(503, headers={"retry-after": "2"}), respond(200)], settings=settings)
    assert run.sleeps == [2.0]


def test_respect_retry_after_false_ignores_hints() -> None:
    """respect_retry_after=False uses the backoff for any hint and raises nothing early."""
    settings = retry(respect_retry_after=False)
    hinted = respond(503, headers={"retry-after": "500"})
    run = drive(
        [hinted, respond(503, headers={"retry-after": "3"}), respond(200)], settings=settings
    )
    assert run.response.status_code == 200
    assert run.sleeps == [0.25, 0.5]


# --- 429s -------------------------------------------------------------------------------------

QUOTA_BODY = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "code": "insufficient_quota",
    }
}


def test_quota_429_is_not_retried() -> None:
    """A 429 whose body says insufficient_quota raises QuotaExceededError after one attempt."""
    run = drive([respond(429, QUOTA_BODY), respond(200)])
    assert isinstance(run.error, hr.QuotaExceededError)
    assert run.error.retryable is False
    assert (len(run.sent), run.sleeps) == (1, [])


def test_plain_429_is_retried() -> None:
    """A 429 that only says "slow down" is retried."""
    body = {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}
    run = drive([respond(429, body), respond(200)])
    assert run.response.status_code == 200
    assert run.sleeps == [0.25]


# --- Method safety and idempotency keys --------------------------------------------------------


def test_post_without_key_is_not_retried_on_a_status() -> None:
    """A POST without an idempotency key is sent once on a 503: it may have run."""
    run = drive([respond(503), respond(200)], post(), without_key())
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert (len(run.sent), run.sleeps) == (1, [])


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_keyed_post_is_retried_with_the_same_key(method: str) -> None:
    """With the default policy a POST/PATCH gets a key, is retried, and every send carries that one key."""
    request = httpx.Request(method, URL, json={"a": 1})
    run = drive([respond(503), respond(503), respond(200)], request)
    assert run.response.status_code == 200
    keys = [s.headers.get_list("Idempotency-Key") for s in run.sent]
    assert len(keys) == 3
    assert keys[0] != []
    assert keys == [keys[0]] * 3


def test_callers_key_is_kept_on_every_attempt() -> None:
    """A key the caller set is sent unchanged on all attempts."""
    run = drive(
        [respond(503), respond(503), respond(200)],
        post(headers={"Idempotency-Key": "caller-key-1"}),
    )
    assert [s.headers.get_list("idempotency-key") for s in run.sent] == [["caller-key-1"]] * 3


def test_callers_key_makes_a_post_retryable_even_when_generation_is_off() -> None:
    """With enabled=False, a caller's own key still makes the POST safe to retry."""
    run = drive(
        [respond(503), respond(200)],
        post(headers={"Idempotency-Key": "caller-key-2"}),
        without_key(),
    )
    assert run.response.status_code == 200
    assert len(run.sent) == 2


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")],
    ids=lambda e: type(e).__name__,
)
def test_unsent_failure_is_retried_for_post_without_key(exc: Exception) -> None:
    """A connect- or pool-phase failure (never sent) is retried even for a POST without key."""
    run = drive([exc, respond(200)], post(), without_key())
    assert run.response.status_code == 200
    assert len(run.sent) == 2


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("slow"), httpx.ReadError("reset"), httpx.WriteError("broken")],
    ids=lambda e: type(e).__name__,
)
def test_after_send_failure_is_not_retried_for_post_without_key(exc: Exception) -> None:
    """A read/write failure may have reached the server: a POST without key is sent once."""
    run = drive([exc, respond(200)], post(), without_key())
    assert isinstance(run.error, hr.TransportError)
    assert run.error.__cause__ is exc
    assert (len(run.sent), run.sleeps) == (1, [])


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])
def test_idempotent_methods_are_retried_after_a_read_timeout(method: str) -> None:
    """An idempotent method is retried after a read timeout."""
    run = drive([httpx.ReadTimeout("slow"), respond(200)], httpx.Request(method, URL))
    assert run.response.status_code == 200
    assert len(run.sent) == 2


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_put_and_delete_are_retried_on_a_status(method: str) -> None:
    """PUT and DELETE are retried on a 503 without any idempotency key."""
    run = drive([respond(503), respond(200)], httpx.Request(method, URL), without_key())
    assert run.response.status_code == 200


def test_custom_retry_methods_stop_put_retries() -> None:
    """retry_methods={"GET"} stops PUT retries on a status and after sending, not before sending."""
    settings = retry(retry_methods={"GET"})
    put = lambda: httpx.Request("PUT", URL)  # noqa: E731
    assert len(drive([respond(503), respond(200)], put(), settings).sent) == 1
    assert len(drive([httpx.ReadTimeout("slow"), respond(200)], put(), settings).sent) == 1
    assert len(drive([httpx.ConnectError("no"), respond(200)], put(), settings).sent) == 2
    assert len(drive([respond(503), respond(200)], httpx.Request("GET", URL), settings).sent) == 2


# --- Errors that are never retried ---------------------------------------------------------


def _cert_failure() -> httpx.ConnectError:
    exc = httpx.ConnectError("certificate verify failed")
    exc.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    return exc


def _handshake_failure() -> httpx.ConnectError:
    exc = httpx.ConnectError("handshake reset")
    exc.__cause__ = ssl.SSLError(1, "handshake reset")
    return exc


@pytest.mark.parametrize(
    ("make_exc", "expected"),
    [
        (lambda: httpx.LocalProtocolError("bad header"), hr.ProtocolError),
        (lambda: RuntimeError("custom transport broke"), hr.TransportError),
        (_cert_failure, hr.NetworkError),
    ],
    ids=["LocalProtocolError", "RuntimeError", "SSLCertVerificationError cause"],
)
def test_non_retryable_exceptions_get_one_attempt(
    make_exc: Callable[[], Exception], expected: type[hr.APIError]
) -> None:
    """A local protocol error, an unknown exception and a failed certificate check are sent once."""
    exc = make_exc()
    run = drive([exc, respond(200)])
    assert type(run.error) is expected
    assert run.error.__cause__ is exc
    assert (len(run.sent), run.sleeps) == (1, [])


def test_tls_handshake_error_without_verification_failure_is_retried() -> None:
    """A ConnectError caused by a plain SSLError (not a certificate check) is retried."""
    run = drive([_handshake_failure(), respond(200)])
    assert run.response.status_code == 200


def test_api_error_from_below_is_re_raised_as_is() -> None:
    """An APIError thrown in (a stacked resilient transport) is raised unchanged, not retried."""
    below = hr.ServiceUnavailableError("from below", status_code=503, retryable=True)
    run = drive([below, respond(200)])
    assert run.result is below
    assert (len(run.sent), run.sleeps) == (1, [])


# --- Bodies that cannot be replayed ------------------------------------------------------------


def _chunks() -> Iterator[bytes]:
    yield b"one"
    yield b"two"


@pytest.mark.parametrize(
    "outcome",
    [respond(503), httpx.ConnectError("refused")],
    ids=["503", "ConnectError"],
)
def test_one_shot_body_is_sent_once(outcome: Outcome) -> None:
    """A generator body is never retried, not even after a connect failure."""
    request = httpx.Request("PUT", URL, content=_chunks())
    run = drive([outcome, respond(200)], request)
    assert isinstance(run.error, hr.APIError)
    assert (len(run.sent), run.sleeps) == (1, [])


def test_replayable_body_of_the_same_request_is_retried() -> None:
    """The same PUT with a bytes body is retried, so the generator is what stopped it."""
    run = drive([respond(503), respond(200)], httpx.Request("PUT", URL, content=b"onetwo"))
    assert len(run.sent) == 2


# --- The total deadline ------------------------------------------------------------------------


def deadline_settings() -> Settings:
    return retry(timeout=1.0, max_attempts=10, backoff=Backoff(initial=0.3, jitter="none"))


def timed_request(timeouts: dict[str, float | None]) -> httpx.Request:
    return httpx.Request("GET", URL, extensions={"timeout": timeouts})


def test_deadline_stops_before_a_sleep_that_would_pass_it() -> None:
    """With timeout 1.0 and waits 0.3, 0.6, 1.2: two sleeps, three attempts, then the last
    503's own error, its last record saying the deadline refused the retry."""
    run = drive([respond(503)] * 10, settings=deadline_settings())
    error = run.error
    assert isinstance(error, hr.ServiceUnavailableError)
    assert error.retryable
    assert run.sleeps == pytest.approx([0.3, 0.6])
    assert sum(run.sleeps) <= 1.0
    assert len(run.sent) == 3
    assert error.attempts == 3
    assert [r.status_code for r in error.history] == [503, 503, 503]
    assert [r.delay for r in error.history] == pytest.approx([0.3, 0.6, 0.0])
    assert [r.refused for r in error.history] == [None, None, "deadline"]


def test_deadline_counts_time_spent_in_attempts() -> None:
    """Time an attempt takes counts too: 0.45 s attempts with 0.1 s waits fit two attempts in 1 s."""

    def slow(clock: FakeClock) -> httpx.Response:
        clock.advance(0.45)
        return respond(503)

    settings = retry(timeout=1.0, max_attempts=10, backoff=Backoff(initial=0.1, jitter="none"))
    run = drive([slow] * 10, settings=settings)
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert run.error.history[-1].refused == "deadline"
    assert len(run.sent) == 2
    assert run.sleeps == [0.1]


def test_deadline_refuses_a_server_hint_that_would_pass_it() -> None:
    """A Retry-After longer than the time left is not slept: RequestTimeoutError carrying that retry_after."""
    run = drive([respond(503, headers={"retry-after": "3"})] * 2, settings=retry(timeout=1.0))
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert run.error.history[-1].refused == "deadline"
    assert run.error.retry_after == 3.0
    assert (len(run.sent), run.sleeps) == (1, [])


def test_each_attempt_timeouts_are_cut_to_the_time_left() -> None:
    """Each Send's httpx timeouts are min(own, time left), and a None timeout becomes the time left."""
    clock = FakeClock()
    request = timed_request({"connect": 5.0, "read": 0.5, "write": 5.0, "pool": None})
    run = drive([respond(503)] * 10, request, deadline_settings(), clock=clock)
    assert len(run.sent) == 3
    start = run.sent[0].at
    for sent in run.sent:
        left = 1.0 - (sent.at - start)
        assert sent.timeout is not None
        for name in ("connect", "read", "write", "pool"):
            assert sent.timeout[name] is not None
            assert sent.timeout[name] <= left + 1e-9
    assert run.sent[0].timeout == pytest.approx(
        {"connect": 1.0, "read": 0.5, "write": 1.0, "pool": 1.0}
    )
    assert run.sent[1].timeout == pytest.approx(
        {"connect": 0.7, "read": 0.5, "write": 0.7, "pool": 0.7}
    )
    assert run.sent[2].timeout == pytest.approx(
        {"connect": 0.1, "read": 0.1, "write": 0.1, "pool": 0.1}
    )


def test_without_a_request_timeout_extension_the_time_left_is_set() -> None:
    """A request with no timeout extension gets every timeout set to the time left."""
    run = drive([respond(200)], settings=deadline_settings())
    assert run.sent[0].timeout == {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}


def test_without_a_deadline_timeouts_are_untouched() -> None:
    """With timeout=None the request's own timeouts go out as the caller set them."""
    timeouts = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": None}
    run = drive([respond(503), respond(200)], timed_request(dict(timeouts)))
    assert [s.timeout for s in run.sent] == [timeouts, timeouts]


# --- attempt header, on_retry, logging ---------------------------------------------------------


def test_attempt_header_numbers_the_attempts() -> None:
    """attempt_header="x-retry-attempt" sends 1, 2, 3 on the three attempts."""
    run = drive(
        [respond(503), respond(503), respond(200)], settings=retry(attempt_header="x-retry-attempt")
    )
    assert [s.headers.get_list("x-retry-attempt") for s in run.sent] == [["1"], ["2"], ["3"]]


def test_no_attempt_header_by_default() -> None:
    """Without attempt_header no attempt number is sent."""
    run = drive([respond(503), respond(200)])
    assert all("x-retry-attempt" not in s.headers for s in run.sent)


def test_on_retry_hears_each_retry() -> None:
    """on_retry gets one event per retry: attempt, delay, reason, request, response and typed error."""
    request = httpx.Request("GET", URL)
    first = respond(503)
    run = drive([first, httpx.ConnectError("refused"), respond(200)], request)
    one, two = run.retries
    assert (one.attempt, one.delay, one.reason) == (1, 0.25, "status 503")
    assert one.request is request
    # The response itself is closed by then: the hook gets its error's copy, the same status.
    assert one.response is one.error.response
    assert one.response is not None
    assert one.response.status_code == first.status_code == 503
    assert isinstance(one.error, hr.ServiceUnavailableError)
    assert (two.attempt, two.delay, two.reason) == (2, 0.5, "ConnectError")
    assert two.response is None
    assert isinstance(two.error, hr.NetworkError)


def test_retry_events_are_frozen() -> None:
    """A RetryEvent cannot be changed by a hook."""
    run = drive([respond(503), respond(200)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.retries[0].delay = 0  # type: ignore[misc]


def test_failing_on_retry_hook_does_not_stop_the_retry(caplog: pytest.LogCaptureFixture) -> None:
    """An on_retry that raises is logged as a warning and the retry goes ahead."""

    def broken(event: RetryEvent) -> None:
        raise RuntimeError("metrics are down")

    caplog.set_level(logging.INFO, logger="httpx_resilience")
    run = drive([respond(503), respond(200)], on_retry=broken)
    assert run.response.status_code == 200
    assert len(run.sent) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "on_retry" in warnings[0].getMessage()
    assert warnings[0].name == "httpx_resilience"


def test_each_retry_is_logged_at_info_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """Each retry logs one INFO line with the redacted URL; no log line holds the secret."""
    secret = "sk-secret-canary"
    request = httpx.Request(
        "GET",
        f"{URL}?api_key={secret}&page=2",
        headers={"Authorization": f"Bearer {secret}"},
    )
    echo = {"error": {"message": f"upstream rejected key {secret}"}}
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    run = drive([respond(503, echo), respond(503, echo), respond(503, echo)], request)
    assert isinstance(run.error, hr.ServiceUnavailableError)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 2
    for message in infos:
        assert "GET https://api.example.com/v1/x?api_key=" in message
        assert "page=2" in message
        assert "status 503" in message
    for record in caplog.records:
        assert secret not in record.getMessage()


# --- raise_on_status=False ---------------------------------------------------------------------


def test_no_raise_returns_the_last_response_after_retries() -> None:
    """With raise_on_status=False, three 503s return the third response unread, its body still readable."""
    settings = make(errors=ErrorPolicy(raise_on_status=False))
    last = respond(503, b"busy")
    run = drive([respond(503), respond(503), last], settings=settings)
    assert run.response is last
    assert run.names[-1] == "Send"  # the last response is handed on unread, still streaming
    assert run.response.read() == b"busy"
    assert (len(run.sent), run.sleeps) == (3, [0.25, 0.5])


def test_no_raise_returns_a_success_after_a_retry() -> None:
    """With raise_on_status=False, 503 then 200 returns the 200."""
    ok = respond(200, b"fine")
    run = drive([respond(503), ok], settings=make(errors=ErrorPolicy(raise_on_status=False)))
    assert run.response is ok


def test_no_raise_hands_on_a_response_whose_hint_is_too_long() -> None:
    """With raise_on_status=False, a 503 whose Retry-After exceeds the cap is returned with its body, not raised."""
    settings = make(errors=ErrorPolicy(raise_on_status=False))
    run = drive([respond(503, b"later", {"retry-after": "500"}), respond(200)], settings=settings)
    assert run.response.status_code == 503
    assert run.response.read() == b"later"
    assert len(run.sent) == 1


# --- Command order -------------------------------------------------------------------------------


def test_retried_response_is_read_then_closed_before_the_wait() -> None:
    """A response that will be retried is read (capped), closed, announced, then the wait starts."""
    first = respond(503)
    run = drive([first, respond(200)])
    assert run.names == ["Send", "ReadBody", "Close", "OnRetry", "Sleep", "Send"]
    assert run.of(Close) == [Close(first)]


def test_read_body_asks_for_at_most_max_body_bytes() -> None:
    """The body of a retried response is read only to ErrorPolicy.max_body_bytes (and one chunk past, to tell it is longer)."""
    response = streamed(503, Chunks([b"x"] * 100))
    run = drive([response, respond(200)], settings=make(errors=ErrorPolicy(max_body_bytes=10)))
    assert run.response.status_code == 200
    assert run.of(ReadBody) == [ReadBody(response)]
    assert run.of(ReadBody)[0].read == 11
    # The unread rest is discarded by closing the response before any hook runs (a hook may
    # call the same client), and so before the retry is announced.
    assert run.names == ["Send", "ReadBody", "Close", "OnRetry", "Sleep", "Send"]
    assert run.of(Close) == [Close(response)]


# --- raise_on_status=False: the whole response, whatever stopped the retries -------------------

_BIG = b'{"error": "overloaded", "trace": "' + b"x" * 100_000 + b'"}'


@pytest.mark.parametrize(
    ("settings", "headers", "spends"),
    [
        (
            make_settings(errors=ErrorPolicy(raise_on_status=False)),
            {"retry-after": "3600"},
            (),
        ),
        (
            make_settings(
                errors=ErrorPolicy(raise_on_status=False),
                retry=RetryPolicy(timeout=0.2, backoff=Backoff(initial=5.0, jitter="none")),
            ),
            {},
            (),
        ),
        (
            make_settings(
                errors=ErrorPolicy(raise_on_status=False),
                rules=Rules(budget=RetryBudget(), breaker=None, pacing=False),
            ),
            {},
            (False,),
        ),
    ],
    ids=["retry-after-too-long", "deadline", "budget-refused"],
)
def test_no_raise_hands_back_the_whole_body_when_retries_stop(
    settings: Settings, headers: dict[str, str], spends: tuple[bool, ...]
) -> None:
    """With raise_on_status=False, a 503 whose retry a long Retry-After, the deadline or the
    budget stops comes back whole and unclosed, not as a copy cut to max_body_bytes."""
    run = drive([streamed(503, _BIG, headers)], settings=settings, spends=spends)
    response = run.response
    assert response.status_code == 503
    assert response.read() == _BIG
    assert response.headers.get("content-length") in (None, str(len(_BIG)))
    assert run.names.count("Send") == 1


class _Trickle(httpx.SyncByteStream):
    """An error body that comes one byte per quarter second of the fake clock."""

    def __init__(self, clock: FakeClock, size: int) -> None:
        self.clock = clock
        self.size = size
        self.served = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.size):
            self.clock.advance(0.25)
            self.served += 1
            yield b"x"

    def close(self) -> None:
        self.closed = True


def test_deadline_bounds_reading_a_trickling_error_body() -> None:
    """A 503 whose body trickles in stops being read at the total deadline: the call gives up at
    the deadline, not when the trickle ends, and the response is closed."""
    clock = FakeClock()
    body = _Trickle(clock, 400)  # 100 s of trickle, far past the 1 s deadline
    settings = make_settings(retry=RetryPolicy(timeout=1.0))
    run = drive([streamed(503, body)], settings=settings, clock=clock)
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert run.error.history[-1].refused == "deadline"
    assert body.served <= 5  # the read stopped within a chunk of the deadline
    assert body.closed


@pytest.mark.parametrize(
    "timeouts",
    [None, {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": 60.0}],
    ids=["none-given", "given"],
)
@pytest.mark.parametrize("outcome", ["ok", "error"])
def test_deadline_leaves_the_callers_timeouts_as_they_were(
    timeouts: dict[str, float] | None, outcome: str
) -> None:
    """The timeouts a deadline shortens for each attempt are the caller's again once the call
    ends, whether it succeeded or raised: sending the request again is not cut short."""
    extensions = {} if timeouts is None else {"timeout": dict(timeouts)}
    request = httpx.Request("GET", "https://api.example.com/v1/x", extensions=extensions)
    settings = make_settings(retry=RetryPolicy(timeout=30.0, max_attempts=1))
    answer = streamed(200) if outcome == "ok" else streamed(404)
    run = drive([answer], request=request, settings=settings)
    assert run.sent[0].timeout is not None  # the attempt itself went with shortened timeouts
    assert request.extensions.get("timeout") == timeouts


def test_deadline_never_changes_the_callers_extensions_dict() -> None:
    """Each attempt goes with a timeout dict of its own: the request's extensions dict, as
    the caller holds it, keeps its timeouts at every send, and is the request's again,
    unchanged, when the call ends."""
    own = {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": 60.0}
    request = httpx.Request("GET", "https://api.example.com/v1/x", extensions={"timeout": own})
    shared = request.extensions
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append((dict(shared["timeout"]), sent.extensions["timeout"]))
        return httpx.Response(503 if len(seen) == 1 else 200)

    transport = hr.ResilientTransport(
        httpx.MockTransport(handler), retry=RetryPolicy(timeout=30.0), sleep=lambda _: None
    )
    transport.handle_request(request)
    assert [caller for caller, _ in seen] == [own, own]
    assert all(attempt["read"] <= 30.0 for _, attempt in seen)
    assert seen[0][1] is not seen[1][1]
    assert request.extensions is shared
    assert shared == {"timeout": own}


class _TimeoutSeen(httpx.SyncByteStream):
    """An error body that notes the read timeout when reading starts, as httpcore does: from
    the extensions dict the attempt was sent with (httpcore keeps that dict, not the request),
    for the whole body."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.sent_with: dict[str, Any] = {}
        self.read_timeout: float | None = None

    def __iter__(self) -> Iterator[bytes]:
        self.read_timeout = self.sent_with["timeout"]["read"]
        yield b"busy"


def test_the_error_body_is_read_with_what_is_left_of_the_deadline() -> None:
    """An error body read 0.9 s into a 1 s deadline is read with a read timeout of what is left
    (0.1 s), not the 1 s cut when the attempt was sent."""
    clock = FakeClock()
    request = httpx.Request("GET", "https://api.example.com/v1/x")
    body = _TimeoutSeen(request)

    def late(clock: FakeClock) -> httpx.Response:
        body.sent_with = request.extensions  # what httpcore keeps when the attempt begins
        clock.advance(0.9)
        return streamed(503, body)

    settings = make_settings(retry=RetryPolicy(timeout=1.0))
    drive([late], request=request, settings=settings, clock=clock)
    assert body.read_timeout is not None
    assert body.read_timeout == pytest.approx(0.1)


def test_a_second_call_of_the_same_request_copies_the_callers_extensions() -> None:
    """The same request sent twice at once (both with a deadline), the second call ending
    last: it copied the caller's own extensions, not the first call's shortened copy, so the
    request has the caller's dict back, unchanged, when both are over."""
    import anyio

    own = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    request = httpx.Request("GET", "https://api.example.com/v1/x", extensions={"timeout": own})
    callers = request.extensions

    entered: list[None] = []

    async def handler(sent: httpx.Request) -> httpx.Response:
        entered.append(None)
        await anyio.sleep(0.05 if len(entered) == 1 else 0.1)  # the second call ends last
        return httpx.Response(200)

    async def send() -> None:
        transport = hr.AsyncResilientTransport(
            httpx.MockTransport(handler), retry=RetryPolicy(timeout=2.0, max_attempts=1)
        )
        await transport.handle_async_request(request)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(send)
            await anyio.sleep(0.01)
            tasks.start_soon(send)

    anyio.run(main)
    assert request.extensions is callers
    assert callers == {"timeout": own}


def test_a_concurrent_call_starts_from_the_callers_timeouts() -> None:
    """The same request sent twice at once: the second call (a 3 s deadline) starts from the
    caller's 5 s timeouts, not the first call's 1 s cut, which only runs beside it."""
    import anyio

    own = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    request = httpx.Request("GET", "https://api.example.com/v1/x", extensions={"timeout": own})
    reads: list[float] = []

    async def handler(sent: httpx.Request) -> httpx.Response:
        reads.append(sent.extensions["timeout"]["read"])
        await anyio.sleep(0.1)
        return httpx.Response(200)

    async def send(deadline: float) -> None:
        transport = hr.AsyncResilientTransport(
            httpx.MockTransport(handler), retry=RetryPolicy(timeout=deadline, max_attempts=1)
        )
        await transport.handle_async_request(request)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(send, 1.0)
            await anyio.sleep(0.01)
            tasks.start_soon(send, 3.0)

    anyio.run(main)
    assert reads[0] <= 1.0
    assert 2.5 < reads[1] <= 3.0
    assert request.extensions == {"timeout": own}


def test_hooks_get_the_read_copy_of_a_closed_response() -> None:
    """on_retry and the "attempt" event of a retried 503 get the copy its error holds, with
    the part of the body read; the response itself is closed and says so."""
    seen: list[tuple[bytes, bool]] = []
    kept: list[httpx.Response] = []
    raw = streamed(503, Chunks([b"x" * 100] * 10))
    kept.append(raw)
    run = drive(
        [raw, respond(200)],
        settings=make(errors=ErrorPolicy(max_body_bytes=150)),
        on_retry=lambda event: seen.append((event.response.read(), False)),
        on_event=lambda event: (
            seen.append((event.response.read(), True))
            if event.kind == "attempt" and event.response.status_code == 503
            else None
        ),
    )
    assert run.response.status_code == 200
    # The body read to the cap (150 bytes of the 1,000), as the error keeps it.
    assert [(len(body), is_event) for body, is_event in seen] == [(150, True), (150, False)]
    assert raw.is_closed


def test_a_stacked_transport_keeps_the_outer_deadlines_cut() -> None:
    """A resilient transport with a 30 s deadline below one with a 2 s deadline: the attempt
    goes with the outer cut (at most 2 s), not the inner transport's from the caller's 60 s;
    the caller's dict comes back unchanged."""
    own = {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": 60.0}
    request = httpx.Request("GET", "https://api.example.com/v1/x", extensions={"timeout": own})
    callers = request.extensions
    seen: list[dict[str, Any]] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(dict(sent.extensions["timeout"]))
        return httpx.Response(200)

    inner = hr.ResilientTransport(httpx.MockTransport(handler), retry=RetryPolicy(timeout=30.0))
    hr.ResilientTransport(inner, retry=RetryPolicy(timeout=2.0)).handle_request(request)
    assert all(value is not None and value <= 2.0 for value in seen[0].values())
    assert request.extensions is callers
    assert callers == {"timeout": own}


class _LateClock(FakeClock):
    """A clock whose every wait runs 0.2 s long, as a loaded machine's sleep may."""

    def advance(self, seconds: float) -> None:
        super().advance(seconds + 0.2)


def test_no_attempt_goes_out_after_a_wait_that_passed_the_deadline() -> None:
    """A wait that fit the deadline but woke after it: no further attempt is sent (not with
    every timeout at zero); the last attempt's own error is raised, its record marked
    refused="deadline" with the wait it made (no attempt was cut short)."""
    settings = retry(timeout=1.0, backoff=Backoff(initial=0.9, jitter="none"))
    run = drive([respond(503)] * 3, settings=settings, clock=_LateClock())
    assert len(run.sent) == 1
    error = run.error
    assert isinstance(error, hr.ServiceUnavailableError)
    assert error.attempts == 1
    assert [(r.status_code, r.delay, r.refused) for r in error.history] == [(503, 0.9, "deadline")]


def test_hooks_that_take_the_deadlines_time_raise_even_with_raise_on_status_false() -> None:
    """With raise_on_status=False, an on_retry hook that runs past the deadline: the response
    was closed before the hook ran (a hook may call the same client), so the server's error is
    raised, marked refused="deadline"."""
    clock = FakeClock()
    run = drive(
        [streamed(503, Chunks([b"x" * 100] * 10))],
        settings=make(
            retry=RetryPolicy(timeout=1.0, backoff=Backoff(initial=0.5, jitter="none")),
            errors=ErrorPolicy(raise_on_status=False, max_body_bytes=150),
        ),
        clock=clock,
        on_retry=lambda event: clock.advance(0.6),
    )
    assert run.sleeps == []
    assert isinstance(run.error, hr.ServiceUnavailableError)
    assert [(r.status_code, r.refused) for r in run.error.history] == [(503, "deadline")]
    assert run.names.index("Close") < run.names.index("OnRetry")


def test_a_handed_back_response_says_what_refused_the_retry() -> None:
    """raise_on_status=False and a retry the budget refused: the response handed back says so
    (extensions["refused"]), and from_response marks the last record as the raised error
    would."""
    run = drive(
        [respond(503), respond(200)],
        settings=make(
            errors=ErrorPolicy(raise_on_status=False),
            rules=Rules(budget=RetryBudget(), breaker=None, pacing=False),
        ),
        spends=[False],
    )
    response = run.response
    assert response.status_code == 503
    assert response.extensions["refused"] == "retry_budget"
    err = hr.from_response(response)
    assert [(r.status_code, r.refused) for r in err.history] == [(503, "retry_budget")]


def test_hooks_that_take_the_deadlines_time_leave_the_servers_error() -> None:
    """An on_retry hook that runs past the deadline before the wait: the wait is not made,
    nothing more is sent, and the server's own error is raised, marked refused="deadline"."""
    clock = FakeClock()
    settings = retry(timeout=1.0, backoff=Backoff(initial=0.5, jitter="none"))
    run = drive(
        [respond(429)] * 3,
        settings=settings,
        clock=clock,
        on_retry=lambda event: clock.advance(0.6),
    )
    assert len(run.sent) == 1
    assert run.sleeps == []
    error = run.error
    assert isinstance(error, hr.RateLimitError)
    assert [(r.status_code, r.refused) for r in error.history] == [(429, "deadline")]
