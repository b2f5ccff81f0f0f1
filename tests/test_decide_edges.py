"""Edges of `_decide` that the mutation run (`make mutation MODULES=_decide`) found untested."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import httpx
import pytest

from httpx_resilience import (
    APIError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ErrorPolicy,
    NetworkError,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    RetryBudget,
    RetryPolicy,
    ServiceUnavailableError,
    StreamError,
)
from httpx_resilience._call import Call
from httpx_resilience._decide import (
    GiveUp,
    Retry,
    _classify,
    _is_auth_challenge,
    admit,
    attempt_error,
    decide,
    error_for,
    expired,
    read_limit,
    refused,
    status_retryable,
    stream_failure,
)
from httpx_resilience._errors import AttemptRecord
from httpx_resilience._settings import Settings
from httpx_resilience._state import Rules, Verdict

URL = "https://api.example.com/v1/thing"
NOW = 100.0
CAP = 64  # max_body_bytes of the tests that read a body


def random() -> float:
    return 0.5


def make_call(
    settings: Settings | None = None,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    deadline: float | None = None,
    attempt: int = 1,
    history: tuple[AttemptRecord, ...] = (),
) -> Call:
    """A replayable call of `method` to URL, as `start` would leave it at `attempt`."""
    request = httpx.Request(method, URL, headers=headers)
    settings = Settings() if settings is None else settings
    return Call(request, settings, None, None, True, deadline, None, None, attempt, history)


def respond(
    call: Call, status: int, headers: dict[str, str] | None = None, content: bytes = b""
) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=content, request=call.request)


def returning(
    cls: type[APIError] | None, seen: list[bytes] | None = None
) -> Callable[[httpx.Response], type[APIError] | None]:
    """A classify hook that returns `cls`, noting each body it was shown in `seen`."""

    def hook(response: httpx.Response) -> type[APIError] | None:
        if seen is not None:
            seen.append(response.content)
        return cls

    return hook


def classifying(cls: type[APIError] | None, seen: list[bytes] | None = None) -> Settings:
    return Settings(errors=ErrorPolicy(classify=returning(cls, seen), max_body_bytes=CAP))


def gzipped(call: Call, status: int, body: bytes) -> tuple[httpx.Response, tuple[bytes, bool]]:
    """A response whose body came gzip-encoded, and what the driver read of it (all of it)."""
    raw = gzip.compress(body)
    assert len(raw) <= CAP  # small on the wire: read whole
    response = respond(call, status, {"content-encoding": "gzip"}, raw)
    return response, (raw, True)


# --- admit ------------------------------------------------------------------------------------


def test_admit_with_no_pace_pauses_nothing() -> None:
    """A host whose rate-limit window is open (pace 0) lets the attempt go at once."""
    assert admit(make_call(), Verdict(pace=0.0), NOW) == (0.0, None)


def test_admit_waits_a_pace_equal_to_max_retry_after() -> None:
    """A pace of exactly max_retry_after is still waited for."""
    call = make_call(Settings(retry=RetryPolicy(max_retry_after=7.5)))
    assert admit(call, Verdict(pace=7.5), NOW) == (7.5, None)


# --- read_limit -------------------------------------------------------------------------------


def test_read_limit_reads_a_200_for_the_classify_hook() -> None:
    """A 200 is read up to max_body_bytes when a classify hook will look at it."""
    call = make_call(classifying(None))
    assert read_limit(call, respond(call, 200)) == CAP


def test_read_limit_reads_a_299_for_the_classify_hook() -> None:
    """299 is still a success status: read for the classify hook."""
    call = make_call(classifying(None))
    assert read_limit(call, respond(call, 299)) == CAP


def test_read_limit_hands_on_a_300_unread_even_with_a_classify_hook() -> None:
    """A 3xx is handed on unread: the classify hook is for 2xx and error statuses only."""
    call = make_call(classifying(None))
    assert read_limit(call, respond(call, 300)) is None


def test_read_limit_hands_on_a_200_unread_without_a_classify_hook() -> None:
    """Without a classify hook a 200 goes to the caller unread."""
    call = make_call()
    assert read_limit(call, respond(call, 200)) is None


@pytest.mark.parametrize("status", [401, 429, 503])
def test_read_limit_hands_on_a_pass_status_unread(status: int) -> None:
    """A status of pass_statuses goes to the caller unread, though it would raise (401), be
    retried (429, 503) and be classified otherwise."""
    errors = ErrorPolicy(pass_statuses={status}, classify=lambda r: None, max_body_bytes=CAP)
    call = make_call(Settings(errors=errors))
    assert read_limit(call, respond(call, status)) is None


def test_read_limit_reads_a_status_next_to_a_pass_status() -> None:
    """pass_statuses covers its own statuses only: a 403 next to a passed 401 is still read."""
    call = make_call(Settings(errors=ErrorPolicy(pass_statuses={401}, max_body_bytes=CAP)))
    assert read_limit(call, respond(call, 403)) == CAP


# --- The Digest challenge ---------------------------------------------------------------------

DIGEST_VALUE = 'Digest realm="api", nonce="abc", qop="auth"'
DIGEST = {"www-authenticate": DIGEST_VALUE}


def test_digest_challenge_without_credentials_is_handed_on_unread() -> None:
    """A 401 Digest challenge to a request without Authorization goes unread to httpx's auth."""
    call = make_call()
    assert read_limit(call, respond(call, 401, DIGEST)) is None


def test_digest_challenge_to_a_request_with_authorization_is_read() -> None:
    """A 401 Digest challenge to a request that sent credentials is an error: its body is read."""
    call = make_call(headers={"Authorization": "Digest username=u"})
    assert read_limit(call, respond(call, 401, DIGEST)) == ErrorPolicy().max_body_bytes


def test_basic_challenge_is_read() -> None:
    """A 401 Basic challenge is an error like any other: its body is read."""
    call = make_call()
    response = respond(call, 401, {"www-authenticate": 'Basic realm="api"'})
    assert read_limit(call, response) == ErrorPolicy().max_body_bytes


def test_digest_header_on_a_402_is_no_auth_challenge() -> None:
    """Only a 401 is an auth challenge: a 402 carrying a Digest header is read as an error."""
    call = make_call()
    assert read_limit(call, respond(call, 402, DIGEST)) == ErrorPolicy().max_body_bytes


def test_auth_challenge_matches_digest_in_any_case_after_spaces() -> None:
    """The challenge's scheme is matched case-insensitively, after leading spaces."""
    call = make_call()
    response = respond(call, 401, {"www-authenticate": '  DIGEST realm="api"'})
    assert _is_auth_challenge(call.request, response) is True


def test_401_without_www_authenticate_is_no_auth_challenge() -> None:
    """A 401 with no WWW-Authenticate header is no challenge httpx's auth could answer."""
    call = make_call()
    assert _is_auth_challenge(call.request, respond(call, 401)) is False


def test_a_digest_challenge_after_a_basic_one_is_handed_on() -> None:
    """A 401 offering Basic first and Digest second (two WWW-Authenticate headers): the Digest
    one counts, as httpx.DigestAuth looks at every header."""
    call = make_call()
    headers = [("www-authenticate", 'Basic realm="api"'), ("www-authenticate", DIGEST_VALUE)]
    response = httpx.Response(401, headers=headers, request=call.request)
    assert _is_auth_challenge(call.request, response) is True


@pytest.mark.parametrize(
    ("stale", "handed_on"),
    [("stale=true", True), ('stale="TRUE"', True), ("stale=false", False), ("", False)],
)
def test_a_stale_nonce_challenge_to_digest_credentials(stale: str, handed_on: bool) -> None:
    """Digest credentials answered with a fresh challenge saying their nonce went stale: handed
    on, for DigestAuth to answer with the new nonce; without `stale=true` it is an error."""
    call = make_call(headers={"Authorization": 'Digest username="u", nonce="old"'})
    challenge = f"{DIGEST_VALUE}, {stale}" if stale else DIGEST_VALUE
    response = respond(call, 401, {"www-authenticate": challenge})
    assert _is_auth_challenge(call.request, response) is handed_on


def test_a_stale_challenge_to_basic_credentials_is_an_error() -> None:
    """`stale=true` speaks of Digest nonces: to Basic credentials the 401 is an error."""
    call = make_call(headers={"Authorization": "Basic dTpw"})
    response = respond(call, 401, {"www-authenticate": f"{DIGEST_VALUE}, stale=true"})
    assert _is_auth_challenge(call.request, response) is False


# --- decide: the body read --------------------------------------------------------------------


def test_success_body_decoding_to_exactly_the_cap_is_classified_whole() -> None:
    """A gzip 2xx body that decodes to exactly max_body_bytes is shown whole to classify."""
    seen: list[bytes] = []
    call = make_call(classifying(RateLimitError, seen))
    response, body = gzipped(call, 200, b"a" * CAP)
    decision = decide(call, response, body, None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert type(decision.error) is RateLimitError
    assert seen == [b"a" * CAP]


def test_success_body_decoding_one_byte_past_the_cap_is_handed_on_unread() -> None:
    """A gzip 2xx body that decodes to max_body_bytes + 1 is no document: handed on, unclassified."""
    seen: list[bytes] = []
    call = make_call(classifying(RateLimitError, seen))
    response, body = gzipped(call, 200, b"a" * (CAP + 1))
    assert decide(call, response, body, None, NOW, random) is None
    assert seen == []


def test_error_body_decoding_past_the_cap_is_still_raised() -> None:
    """A 400 whose gzip body decodes past max_body_bytes is raised, not handed on."""
    call = make_call(Settings(errors=ErrorPolicy(max_body_bytes=CAP)))
    response, body = gzipped(call, 400, b"x" * (CAP * 4))
    decision = decide(call, response, body, None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert type(decision.error) is BadRequestError


def test_error_body_is_decoded_before_it_is_parsed() -> None:
    """A gzip error body is decoded per Content-Encoding, so its message is parsed."""
    call = make_call(Settings(errors=ErrorPolicy(max_body_bytes=CAP)))
    response, body = gzipped(call, 400, b'{"error": {"message": "bad thing"}}')
    decision = decide(call, response, body, None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert decision.error.message == "bad thing"


def test_incomplete_400_body_is_still_raised() -> None:
    """A 400 whose body was cut at the cap is still an error: only a success is handed on."""
    call = make_call()
    response = respond(call, 400, {"content-type": "application/json"}, b'{"error": ')
    decision = decide(call, response, (b'{"error": ', False), None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert type(decision.error) is BadRequestError


def test_no_body_given_for_a_success_is_handed_on_unclassified() -> None:
    """decide without a body treats a 2xx as incomplete: handed on, the hook never called."""
    seen: list[bytes] = []
    call = make_call(classifying(RateLimitError, seen))
    assert decide(call, respond(call, 200), None, None, NOW, random) is None
    assert seen == []


def test_no_body_given_for_an_error_means_an_empty_body() -> None:
    """decide without a body builds the error of an empty body: it has none."""
    call = make_call()
    decision = decide(call, respond(call, 400), None, None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert decision.error.body is None


# --- decide: exceptions and the deadline ------------------------------------------------------


def test_api_error_outcome_gives_up_as_not_retryable() -> None:
    """An APIError from below is passed on as it is, its reason "not retryable"."""
    error = ServiceUnavailableError("from a transport below", retryable=True)
    decision = decide(make_call(), error, None, None, NOW, random)
    assert decision == GiveUp(error, "not retryable")
    assert decision.error is error


def test_retry_landing_exactly_on_the_deadline_gives_up() -> None:
    """A wait that would end exactly at the deadline is not made: GiveUp("deadline")."""
    call = make_call(Settings(retry=RetryPolicy(timeout=30.0)), deadline=NOW + 5.0)
    response = respond(call, 503, {"retry-after": "5"})
    decision = decide(call, response, (b"", True), None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert decision.reason == "deadline"


# --- refused ----------------------------------------------------------------------------------


def _budget_retry(raise_on_status: bool = True) -> Retry:
    """The Retry of a third attempt (of five) that got a 503, with two distinct records before."""
    settings = Settings(
        errors=ErrorPolicy(raise_on_status=raise_on_status),
        retry=RetryPolicy(max_attempts=5),
        rules=Rules(budget=RetryBudget(), breaker=None, pacing=False),
    )
    history = (AttemptRecord(500, "InternalServerError", 0.25), AttemptRecord(502, "X", 0.5))
    call = make_call(settings, attempt=3, history=history)
    decision = decide(call, respond(call, 503), (b"", True), "req-3", NOW, random)
    assert isinstance(decision, Retry)
    return decision


def test_refused_marks_only_the_last_history_record() -> None:
    """refused sets `refused` on the last record alone, and keeps every record otherwise."""
    retry = _budget_retry()
    before = retry.error.history
    give_up = refused(retry, "retry_budget")
    assert give_up.error.history == (
        before[0],
        before[1],
        AttemptRecord(503, "ServiceUnavailableError", 0.0, "req-3", refused="retry_budget"),
    )


def test_refused_keeps_what_to_hand_on() -> None:
    """refused gives up with the budget's reason, still handing the response on if the Retry would."""
    retry = _budget_retry(raise_on_status=False)
    assert retry.hand_on is True
    assert refused(retry, "retry_budget") == GiveUp(retry.error, "retry_budget", True)


def test_refused_retry_made_without_hand_on_hands_nothing_on() -> None:
    """A Retry made without hand_on (as an exception's) gives up handing nothing on when refused."""
    error = ServiceUnavailableError("busy", history=[AttemptRecord(503, "X")])
    assert refused(Retry(0.5, True, "status 503", error), "retry_budget").hand_on is False


# --- stream_failure and error_for -------------------------------------------------------------


def test_stream_failure_passes_an_api_error_through() -> None:
    """An APIError raised while the caller reads a body is that error, unchanged."""
    error = ServiceUnavailableError("below", retryable=True)
    assert stream_failure(make_call(), error, 200, "req-1") is error
    assert error.retryable is True


def test_stream_failure_is_never_retryable() -> None:
    """A body that failed mid-stream gives a StreamError that is not retryable."""
    error = stream_failure(make_call(), httpx.ReadError("reset"), 200, "req-1")
    assert type(error) is StreamError
    assert error.retryable is False


def test_stream_failure_extends_the_calls_history_by_one_record() -> None:
    """The StreamError's history is the call's, plus a record of the failed body."""
    history = (AttemptRecord(503, "ServiceUnavailableError", 0.25),)
    call = make_call(attempt=2, history=history)
    error = stream_failure(call, httpx.ReadError("reset"), 200, "req-2")
    assert error.history == (*history, AttemptRecord(200, "StreamError", 0.0, "req-2"))


def test_error_for_passes_an_api_error_through() -> None:
    """error_for of an APIError is that very error."""
    error = ServiceUnavailableError("below")
    assert error_for(make_call(), error) is error


def test_error_for_chains_the_exception_and_hides_the_context() -> None:
    """error_for's error has the exception as __cause__ and suppresses the implicit context."""
    exc = httpx.ConnectError("refused")
    error = error_for(make_call(), exc)
    assert type(error) is NetworkError
    assert error.__cause__ is exc
    assert error.__suppress_context__ is True


# --- status_retryable ---------------------------------------------------------------------------


def test_quota_429_is_never_retryable_even_when_the_server_says_retry() -> None:
    """An exhausted quota is not retryable, whatever x-should-retry says."""
    headers = httpx.Headers({"x-should-retry": "true"})
    assert status_retryable(429, headers, QuotaExceededError, RetryPolicy()) is False


def test_status_retryable_ignores_the_class_default_unless_classified() -> None:
    """By default (not classified) a status outside retry_statuses is not retryable."""
    headers = httpx.Headers()
    assert status_retryable(418, headers, ServiceUnavailableError, RetryPolicy()) is False


# --- _classify --------------------------------------------------------------------------------


def test_classify_hook_that_raises_is_a_configuration_error() -> None:
    """A classify hook that raises gives a ConfigurationError naming the hook, chained."""
    boom = ValueError("boom")

    def hook(response: httpx.Response) -> type[APIError] | None:
        raise boom

    call = make_call()
    with pytest.raises(ConfigurationError) as raised:
        _classify(hook, respond(call, 200))
    assert raised.value.message == "ErrorPolicy.classify raised ValueError"
    assert raised.value.__cause__ is boom


def test_classify_hook_returning_an_instance_is_a_configuration_error() -> None:
    """A classify hook must return a class: an error instance is refused, named by its type."""
    call = make_call()
    hook = returning(RateLimitError("an instance"))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as raised:
        _classify(hook, respond(call, 200))
    assert raised.value.message == (
        "ErrorPolicy.classify must return an APIError subclass or None, got RateLimitError"
    )


def test_classify_hook_returning_a_foreign_class_is_a_configuration_error() -> None:
    """A classify hook must return an APIError subclass: ValueError is refused, named as a class."""
    call = make_call()
    hook = returning(ValueError)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as raised:
        _classify(hook, respond(call, 200))
    assert raised.value.message == (
        "ErrorPolicy.classify must return an APIError subclass or None, got the class ValueError"
    )


def test_attempt_error_is_the_attempts_own_when_the_deadline_stops() -> None:
    """attempt_error: for an attempt the deadline cut short, the attempt's own timeout (the
    cause of the call's RequestTimeoutError); for any other decision, the decision's error."""
    call = make_call(Settings(retry=RetryPolicy(timeout=30.0)), deadline=NOW)
    cut = decide(call, httpx.ReadTimeout("slow"), None, None, NOW, random)
    assert isinstance(cut, GiveUp)
    assert cut.error.phase == "total"
    assert attempt_error(cut) is cut.error.__cause__
    assert attempt_error(cut).phase == "read"
    retried = decide(make_call(), httpx.ConnectError("refused"), None, None, NOW, random)
    assert isinstance(retried, Retry)
    assert attempt_error(retried) is retried.error
    gave_up = refused(retried, "retry_budget")
    assert attempt_error(gave_up) is gave_up.error


def test_a_wait_past_the_deadline_gives_the_last_error_marked_refused() -> None:
    """A retry whose wait would pass the deadline is not made: GiveUp("deadline") with the
    attempt's own error, retryable still, its last history record refused="deadline"."""
    call = make_call(Settings(retry=RetryPolicy(timeout=30.0)), deadline=NOW + 0.1)
    decision = decide(call, httpx.ConnectError("refused"), None, None, NOW, random)
    assert isinstance(decision, GiveUp)
    assert decision.reason == "deadline"
    assert isinstance(decision.error, NetworkError)
    assert decision.error.retryable
    assert decision.error.history[-1].refused == "deadline"


@pytest.mark.parametrize(
    ("now", "cut"),
    [(NOW - 0.02, False), (NOW - 0.01, True), (NOW - 0.005, True), (NOW + 1.0, True)],
)
def test_a_timeout_at_the_deadline_was_cut_short_by_it(now: float, cut: bool) -> None:
    """A timeout within 10 ms of the deadline (or after it) was the deadline's: the call's
    RequestTimeoutError(phase="total"); one well before it is the attempt's own."""
    call = make_call(Settings(retry=RetryPolicy(timeout=30.0)), deadline=NOW)
    decision = decide(call, httpx.ReadTimeout("slow"), None, None, now, random)
    assert isinstance(decision, GiveUp)
    assert decision.reason == "deadline"
    assert (decision.error.phase == "total") is cut
    if cut:
        assert not decision.error.retryable
        assert "total deadline of 30s" in str(decision.error)


def test_attempt_error_looks_through_only_the_deadlines_own_error() -> None:
    """attempt_error gives the cause only of a RequestTimeoutError(phase="total"): another
    error whose cause is an APIError (from a transport stacked below) is the attempt's own."""
    below = NetworkError("from below", phase="connect")
    for error in (RequestTimeoutError("slow", phase="read"), NetworkError("reset", phase="read")):
        error.__cause__ = below
        assert attempt_error(GiveUp(error, "deadline")) is error


@pytest.mark.parametrize(("key", "retried"), [("caller-key-1", True), (None, False), ("  ", False)])
def test_a_409_to_a_put_is_retried_only_with_the_callers_key(
    key: str | None, retried: bool
) -> None:
    """A 409 to a PUT that carries the caller's own Idempotency-Key (which start does not look
    up for a PUT) is retried; without one, or with a blank one, it is a ConflictError."""
    headers = {"Idempotency-Key": key} if key is not None else None
    call = make_call(method="PUT", headers=headers)
    decision = decide(call, respond(call, 409), (b"", True), None, NOW, random)
    assert isinstance(decision, Retry) is retried
    assert decision is not None
    assert isinstance(decision.error, ConflictError)


@pytest.mark.parametrize(("now", "late"), [(NOW - 0.001, False), (NOW, True), (NOW + 5.0, True)])
def test_expired_only_once_the_deadline_is_reached(now: float, late: bool) -> None:
    """Around a retry's wait: None while time is left; from the deadline on, GiveUp("deadline")
    with the last attempt's own error, its last record marked refused="deadline" with the time
    waited (no attempt was cut short: no RequestTimeoutError)."""
    waited = AttemptRecord(503, "ServiceUnavailableError", 0.5, "req_1")
    call = make_call(
        Settings(retry=RetryPolicy(timeout=30.0)), deadline=NOW, attempt=2, history=(waited,)
    )
    last = ServiceUnavailableError(
        "busy",
        status_code=503,
        attempts=1,
        history=(AttemptRecord(503, "ServiceUnavailableError", 0.0, "req_1"),),
    )
    decision = expired(call, now, last)
    if not late:
        assert decision is None
        assert last.history[-1].refused is None
        return
    assert decision is not None
    assert decision.reason == "deadline"
    assert decision.error is last
    assert last.history == (
        AttemptRecord(503, "ServiceUnavailableError", 0.5, "req_1", refused="deadline"),
    )
    assert last.attempts == 1


def test_expired_without_a_deadline_is_never() -> None:
    """A call without a deadline never expires, however late."""
    assert expired(make_call(), NOW + 1e9, ServiceUnavailableError("busy")) is None


def test_expired_before_any_attempt_is_the_calls_deadline_error() -> None:
    """A rate-limit pause (or its hooks) that ran past the deadline before the first attempt:
    the call's RequestTimeoutError(phase="total"), after 0 attempts, not retryable."""
    call = make_call(Settings(retry=RetryPolicy(timeout=30.0)), deadline=NOW)
    decision = expired(call, NOW + 0.1, None)
    assert decision is not None
    assert decision.reason == "deadline"
    assert isinstance(decision.error, RequestTimeoutError)
    assert (decision.error.phase, decision.error.retryable) == ("total", False)
    assert decision.error.message == "total deadline of 30s spent after 0 attempts"


def test_expired_marks_only_the_last_record() -> None:
    """Of a history of two attempts, only the last record is marked, with the wait made; the
    first stays as it was."""
    first = AttemptRecord(503, "ServiceUnavailableError", 0.5, "req_1")
    second = AttemptRecord(503, "ServiceUnavailableError", 1.0, "req_2")
    call = make_call(
        Settings(retry=RetryPolicy(timeout=30.0)),
        deadline=NOW,
        attempt=3,
        history=(first, second),
    )
    last = ServiceUnavailableError(
        "busy", history=(first, AttemptRecord(503, "ServiceUnavailableError", 0.0, "req_2"))
    )
    expired(call, NOW, last)
    assert last.history == (
        first,
        AttemptRecord(503, "ServiceUnavailableError", 1.0, "req_2", refused="deadline"),
    )


def test_classify_hook_returning_an_awaitable_is_a_configuration_error() -> None:
    """A classify that returns a coroutine where it cannot be awaited (the sync transport):
    a ConfigurationError that says so, and the coroutine closed, never left to warn."""
    import warnings

    async def answer() -> None:
        return None

    coroutine = answer()
    call = make_call()
    with pytest.raises(ConfigurationError, match="returned an awaitable"):
        _classify(lambda response: coroutine, respond(call, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert coroutine.cr_frame is None  # closed


def test_status_retryable_counts_a_409_only_for_a_keyed_request() -> None:
    """status_retryable: a 409 is retryable only when told the request is keyed."""
    headers = httpx.Headers()
    assert status_retryable(409, headers, ConflictError, RetryPolicy()) is False
    assert status_retryable(409, headers, ConflictError, RetryPolicy(), keyed=True) is True
