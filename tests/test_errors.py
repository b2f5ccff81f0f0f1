"""The error family: tree, httpx-compatible bases, attributes, str/repr, to_dict and pickle."""

from __future__ import annotations

import json
import pickle

import httpx
import pytest

import httpx_resilience as hr
from httpx_resilience import AttemptRecord

ALL_ERRORS = [
    getattr(hr, name)
    for name in hr.__all__
    if isinstance(getattr(hr, name), type) and issubclass(getattr(hr, name), hr.APIError)
]

TREE = [
    (hr.ConfigurationError, (hr.APIError, ValueError)),
    (hr.RequestTooLargeError, (hr.APIError, ValueError)),
    (hr.TransportError, (hr.APIError, httpx.TransportError)),
    (hr.NetworkError, (hr.TransportError, httpx.NetworkError)),
    (hr.RequestTimeoutError, (hr.TransportError, httpx.TimeoutException, TimeoutError)),
    (hr.PollTimeoutError, (hr.RequestTimeoutError, httpx.TimeoutException, TimeoutError)),
    (hr.ProtocolError, (hr.TransportError, httpx.ProtocolError)),
    (hr.StreamError, (hr.TransportError, httpx.TransportError)),
    (
        hr.StreamTimeoutError,
        (hr.StreamError, hr.RequestTimeoutError, httpx.TimeoutException, TimeoutError),
    ),
    (hr.CircuitOpenError, (hr.TransportError, httpx.TransportError)),
    (hr.StatusError, (hr.APIError, httpx.HTTPStatusError)),
    (hr.ClientError, (hr.StatusError,)),
    (hr.ValidationError, (hr.ClientError,)),
    (hr.BadRequestError, (hr.ValidationError,)),
    (hr.UnprocessableEntityError, (hr.ValidationError,)),
    (hr.AuthenticationError, (hr.ClientError,)),
    (hr.PaymentRequiredError, (hr.ClientError,)),
    (hr.PermissionDeniedError, (hr.ClientError,)),
    (hr.NotFoundError, (hr.ClientError,)),
    (hr.ConflictError, (hr.ClientError,)),
    (hr.PayloadTooLargeError, (hr.ClientError,)),
    (hr.RateLimitError, (hr.ClientError,)),
    (hr.QuotaExceededError, (hr.RateLimitError,)),
    (hr.ServerError, (hr.StatusError,)),
    (hr.InternalServerError, (hr.ServerError,)),
    (hr.BadGatewayError, (hr.ServerError,)),
    (hr.ServiceUnavailableError, (hr.ServerError,)),
    (hr.GatewayTimeoutError, (hr.ServerError,)),
]

FULL = {
    "code": "quota_x",
    "status_code": 429,
    "request_id": "req_1",
    "body": '{"error": "x"}',
    "details": {"balance": 3, "nested": {"a": [1, 2]}},
    "errors": [{"loc": ["body", "n"], "msg": "bad", "type": "value_error"}],
    "retry_after": 5.0,
    "limit": 100,
    "remaining": 0,
    "reset": 30.0,
    "retryable": True,
    "phase": "read",
    "attempts": 2,
    "history": (
        AttemptRecord(503, "ServiceUnavailableError", 0.5, "r0"),
        AttemptRecord(429, "RateLimitError"),
    ),
    "method": "POST",
    "url": "https://api.example.com/v1/x",
    "idempotency_key": "idem-1",
}


@pytest.mark.parametrize(("cls", "bases"), TREE, ids=lambda v: getattr(v, "__name__", ""))
def test_tree(cls: type, bases: tuple[type, ...]) -> None:
    """Each class sits where SPEC §2 puts it, including its httpx / builtin bases."""
    for base in bases:
        assert issubclass(cls, base)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_request_error_is_an_httpx_error(cls: type[hr.APIError]) -> None:
    """`except httpx.HTTPError` catches every error but the two raised before anything is
    sent (SPEC §2), so code written for plain httpx keeps working."""
    before_sending = {hr.ConfigurationError, hr.RequestTooLargeError, hr.APIError}
    assert issubclass(cls, httpx.HTTPError) is (cls not in before_sending)


def test_every_exported_error_is_in_the_tree() -> None:
    """No exported error class is missing from the tree table above."""
    assert set(ALL_ERRORS) == {hr.APIError} | {cls for cls, _ in TREE}


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_constructible_without_network(cls: type[hr.APIError]) -> None:
    """Message positional, every attribute a keyword, no request or response needed."""
    err = cls("went wrong", **FULL)
    assert err.message == "went wrong"
    for name, value in FULL.items():
        assert getattr(err, name) == value, name
    assert err.request is None
    assert err.response is None


def test_example_from_spec() -> None:
    """The SPEC's own example reads back as written."""
    err = hr.RateLimitError("rate limited", retry_after=5.0, status_code=429, request_id="req_1")
    assert (err.retry_after, err.status_code, err.request_id) == (5.0, 429, "req_1")
    assert err.code == "rate_limited"
    assert err.retryable is True
    assert isinstance(err, httpx.HTTPStatusError)


@pytest.mark.parametrize(
    ("cls", "code", "retryable"),
    [
        (hr.APIError, "api_error", False),
        (hr.NetworkError, "network_error", True),
        (hr.RequestTimeoutError, "timeout", True),
        (hr.PollTimeoutError, "poll_timeout", False),
        (hr.StreamError, "stream_error", False),
        (hr.StreamTimeoutError, "stream_error", False),
        (hr.NotFoundError, "not_found", False),
        (hr.RateLimitError, "rate_limited", True),
        (hr.QuotaExceededError, "quota_exceeded", False),
        (hr.ServiceUnavailableError, "service_unavailable", True),
        (hr.AuthenticationError, "authentication_failed", False),
    ],
)
def test_default_code_and_retryable(cls: type[hr.APIError], code: str, retryable: bool) -> None:
    """Without a code from the body, each class has a stable default code and retry verdict."""
    err = cls("x")
    assert err.code == code
    assert err.retryable is retryable


def test_absent_attributes_are_none() -> None:
    """Attributes nobody set read as None (history as an empty tuple)."""
    err = hr.APIError("x")
    for name in FULL:
        if name not in ("code", "retryable", "history"):
            assert getattr(err, name) is None, name
    assert err.history == ()


def test_missing_message_falls_back_to_status_text() -> None:
    """An error built with only a status still has a readable message."""
    assert hr.NotFoundError(status_code=404).message == "HTTP 404 Not Found"
    assert hr.NetworkError().message == "network error"


def test_str_has_code_message_status_and_request_id() -> None:
    """str() reads "<code>: <message>" with the status and request id after it."""
    err = hr.NotFoundError("no model", status_code=404, request_id="req_9")
    assert str(err) == "not_found: no model (status 404, request_id req_9)"
    assert str(hr.NetworkError("refused")) == "network_error: refused"


def test_repr_shows_class_and_key_fields() -> None:
    """repr() names the class and the fields that were set."""
    err = hr.RateLimitError("slow", status_code=429, retry_after=2.0, url="https://h/x")
    text = repr(err)
    assert text.startswith("RateLimitError(message='slow'")
    assert "status_code=429" in text
    assert "retry_after=2.0" in text
    assert "request_id" not in text


def test_to_dict_is_json_and_complete() -> None:
    """to_dict() has every documented field, round-trips through JSON, and no httpx objects."""
    request = httpx.Request("POST", "https://api.example.com/v1/x")
    err = hr.RateLimitError("slow", request=request, **FULL)
    data = err.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["type"] == "RateLimitError"
    assert data["message"] == "slow"
    assert data["history"][0] == {
        "status_code": 503,
        "error": "ServiceUnavailableError",
        "delay": 0.5,
        "request_id": "r0",
        "refused": None,
    }
    assert set(FULL) <= set(data)
    assert "request" not in data
    assert "response" not in data


def test_to_dict_survives_odd_details() -> None:
    """Non-JSON values and very deep structures in details still give a JSON dict."""
    deep: dict[str, object] = {}
    node = deep
    for _ in range(200):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    err = hr.APIError("x", details={"when": object(), "deep": deep, "t": (1, 2)})
    json.dumps(err.to_dict())


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_pickle_round_trip(cls: type[hr.APIError]) -> None:
    """Every error survives pickle with its class and attributes."""
    err = cls("went wrong", **FULL)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert back.message == "went wrong"
    for name, value in FULL.items():
        assert getattr(back, name) == value, name
    assert str(back) == str(err)


def test_pickle_keeps_read_request_and_response() -> None:
    """The httpx request and a read response come back from a pickle too."""
    request = httpx.Request("GET", "https://h/x")
    response = httpx.Response(404, content=b'{"detail": "no"}', request=request)
    err = hr.NotFoundError("no", status_code=404, request=request, response=response)
    back = pickle.loads(pickle.dumps(err))
    assert back.request is not None
    assert back.request.url == request.url
    assert back.response is not None
    assert back.response.json() == {"detail": "no"}


def test_reading_request_and_response_never_raises() -> None:
    """Unlike httpx's own base, an error without httpx objects reads them as None."""
    err = hr.RequestTimeoutError("t")
    assert err.request is None
    status = hr.ServerError("s")
    assert status.response is None


def test_old_httpx_handlers_still_catch() -> None:
    """except httpx.HTTPStatusError / TimeoutException / NetworkError catch our errors."""
    with pytest.raises(httpx.HTTPStatusError):
        raise hr.ServiceUnavailableError("down", status_code=503)
    with pytest.raises(httpx.TimeoutException):
        raise hr.RequestTimeoutError("slow", phase="read")
    with pytest.raises(TimeoutError):
        raise hr.RequestTimeoutError("slow", phase="read")
    with pytest.raises(httpx.NetworkError):
        raise hr.NetworkError("refused", phase="connect")
    with pytest.raises(ValueError, match="too big"):
        raise hr.RequestTooLargeError("too big")


# --- Pickles hold no credentials (issue 12, item 10) ----------------------------------------

SECRET = "sk-live-canary-4d2b9e"
SECRET_URL = f"https://alice:{SECRET}@api.example.com/v1/x?api_key={SECRET}&sig={SECRET}&page=2"


class TeapotError(hr.ClientError):
    """A user's own status class, as ErrorPolicy.status_classes would raise it."""

    default_code = "teapot"


def _secret_request() -> httpx.Request:
    return httpx.Request(
        "POST",
        SECRET_URL,
        headers={
            "Authorization": f"Bearer {SECRET}",
            "Cookie": f"session={SECRET}",
            "X-Amz-Credential": SECRET,
            "Idempotency-Key": "idem-visible-1",
        },
        content=f"client_secret={SECRET}".encode(),
    )


@pytest.mark.parametrize("cls", [*ALL_ERRORS, TeapotError], ids=lambda c: c.__name__)
def test_pickle_holds_no_request_secret(cls: type[hr.APIError]) -> None:
    """No error's pickle holds the credentials, URL password or body of its request."""
    request = _secret_request()
    request.read()
    err = cls("went wrong", request=request, **FULL)
    assert SECRET.encode() not in pickle.dumps(err)


@pytest.mark.parametrize("cls", [*ALL_ERRORS, TeapotError], ids=lambda c: c.__name__)
def test_pickle_keeps_class_and_attributes_with_a_request(cls: type[hr.APIError]) -> None:
    """An error with a request and response comes back with its class and every attribute."""
    request = _secret_request()
    response = httpx.Response(429, content=b'{"error": "x"}', request=request)
    err = cls("went wrong", request=request, response=response, **FULL)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert back.to_dict() == err.to_dict()
    assert str(back) == str(err)
    assert repr(back) == repr(err)
    assert back.response is not None
    assert back.response.json() == {"error": "x"}


def test_pickled_request_is_a_redacted_copy() -> None:
    """The unpickled request has the method, the redacted URL and headers, and no body."""
    err = hr.BadRequestError("no", request=_secret_request())
    back = pickle.loads(pickle.dumps(err))
    assert back.request is not None
    assert back.request.method == "POST"
    assert back.request.url.params["api_key"] == "[REDACTED]"
    assert back.request.url.params["sig"] == "[REDACTED]"
    assert back.request.url.params["page"] == "2"
    assert back.request.headers["authorization"] == "Bearer [REDACTED]"
    assert back.request.headers["cookie"] == "session=[REDACTED]"
    assert back.request.headers["x-amz-credential"] == "[REDACTED]"
    assert back.request.headers["idempotency-key"] == "idem-visible-1"
    assert back.request.content == b""


def test_pickle_leaves_the_error_in_memory_alone() -> None:
    """Pickling does not change the error's own request and response."""
    request = _secret_request()
    response = httpx.Response(400, content=SECRET.encode(), request=request)
    err = hr.BadRequestError("no", request=request, response=response)
    pickle.dumps(err)
    assert err.request is request
    assert err.response is response
    assert request.headers["authorization"] == f"Bearer {SECRET}"


def test_pickled_response_is_scrubbed() -> None:
    """The response's echo of the request's secrets and its Set-Cookie are redacted."""
    request = _secret_request()
    response = httpx.Response(
        400,
        headers={"Set-Cookie": f"sid={SECRET}; HttpOnly"},
        content=f'{{"echo": "Bearer {SECRET}"}}'.encode(),
        request=request,
    )
    err = hr.BadRequestError("no", request=request, response=response)
    data = pickle.dumps(err)
    assert SECRET.encode() not in data
    back = pickle.loads(data)
    assert back.response.json() == {"echo": "Bearer [REDACTED]"}
    assert back.response.headers["set-cookie"] == "sid=[REDACTED]; HttpOnly"
    assert back.response.request.headers["authorization"] == "Bearer [REDACTED]"


def test_pickle_of_response_only_error_redacts_its_request() -> None:
    """An error with only a response pickles that response's request redacted."""
    response = httpx.Response(404, content=b"{}", request=_secret_request())
    err = hr.NotFoundError("no", response=response)
    data = pickle.dumps(err)
    assert SECRET.encode() not in data
    back = pickle.loads(data)
    assert back.request is None
    assert back.response.request.headers["authorization"] == "Bearer [REDACTED]"


def test_pickle_of_response_without_request() -> None:
    """A response built without a request pickles too."""
    err = hr.ServerError("down", response=httpx.Response(500, content=b"oops"))
    back = pickle.loads(pickle.dumps(err))
    assert back.response.content == b"oops"


def test_pickle_drops_unpicklable_request_extensions() -> None:
    """A request whose extensions hold a trace hook (a lambda) still pickles."""
    request = httpx.Request("GET", "https://h/x", extensions={"trace": lambda *a: None})
    err = hr.NetworkError("refused", request=request)
    back = pickle.loads(pickle.dumps(err))
    assert back.request.url == request.url


def test_pickle_uses_the_redaction_the_error_was_built_with() -> None:
    """An error built by a transport pickles with its extra names and idempotency header."""
    from httpx_resilience._redact import Redactor

    request = httpx.Request(
        "GET", "https://h/x?pin=12345678", headers={"X-Pin": "98765432", "X-Idem": "key-1"}
    )
    redactor = Redactor.for_request(request, "X-Idem", frozenset({"pin", "x-pin"}))
    err = hr.NotFoundError("no", request=request, _redactor=redactor)
    data = pickle.dumps(err)
    assert b"12345678" not in data
    assert b"98765432" not in data
    back = pickle.loads(data)
    assert back.request.headers["x-idem"] == "key-1"


def test_pickled_error_pickles_again() -> None:
    """An unpickled error (a redacted request already) pickles once more, unchanged."""
    err = hr.BadRequestError("no", request=_secret_request(), **FULL)
    once = pickle.loads(pickle.dumps(err))
    twice = pickle.loads(pickle.dumps(once))
    assert twice.to_dict() == err.to_dict()
    assert twice.request.headers == once.request.headers


def test_to_dict_is_strict_json_whatever_the_body_held() -> None:
    """NaN and Infinity, which Python's JSON parser accepts in a body, become null in
    `to_dict()` (as JSON.stringify does), so the result is valid JSON, nested or not."""
    body = b'{"message": "boom", "retry_in": NaN, "load": Infinity, "deep": {"x": [-Infinity]}}'
    response = httpx.Response(
        500,
        content=body,
        headers={"content-type": "application/json"},
        request=httpx.Request("GET", "https://api.example.com/v1"),
    )
    data = hr.from_response(response).to_dict()
    assert data["details"]["retry_in"] is None
    assert data["details"]["load"] is None
    assert data["details"]["deep"] == {"x": [None]}
    json.dumps(data, allow_nan=False)
    error = hr.RateLimitError("slow down", retry_after=float("inf"), limit=float("nan"))
    assert error.to_dict()["retry_after"] is None
    json.dumps(error.to_dict(), allow_nan=False)
