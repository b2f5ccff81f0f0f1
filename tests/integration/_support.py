"""Shared expectations of the integration tests."""

from __future__ import annotations

from typing import Any

import httpx

from httpx_resilience import (
    APIError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ClientError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    StatusError,
    UnprocessableEntityError,
)

# (status, the exact class it raises, the class's stable default code)
STATUS_CASES: list[tuple[int, type[StatusError], str]] = [
    (400, BadRequestError, "invalid_request"),
    (401, AuthenticationError, "authentication_failed"),
    (402, PaymentRequiredError, "payment_required"),
    (403, PermissionDeniedError, "permission_denied"),
    (404, NotFoundError, "not_found"),
    (405, ClientError, "client_error"),
    (409, ConflictError, "conflict"),
    (413, PayloadTooLargeError, "payload_too_large"),
    (418, ClientError, "client_error"),
    (422, UnprocessableEntityError, "unprocessable_entity"),
    (429, RateLimitError, "rate_limited"),
    (500, InternalServerError, "internal_error"),
    (501, ServerError, "server_error"),
    (502, BadGatewayError, "bad_gateway"),
    (503, ServiceUnavailableError, "service_unavailable"),
    (504, GatewayTimeoutError, "gateway_timeout"),
]
STATUS_IDS = [str(case[0]) for case in STATUS_CASES]


def status_url(base: str, status: int) -> str:
    """A /status URL whose OpenAI-style body and headers identify the status."""
    query = httpx.QueryParams(
        {
            "fmt": "openai",
            "message": f"boom {status}",
            "error_code": f"e{status}",
            "x-request-id": f"req_{status}",
        }
    )
    return f"{base}/status/{status}?{query}"


def check_status_error(
    err: BaseException,
    status: int,
    cls: type[StatusError],
    request: httpx.Request,
    url: str,
) -> None:
    """Everything a status error built from `status_url(status)` must carry."""
    assert type(err) is cls
    assert isinstance(err, StatusError)
    assert isinstance(err, httpx.HTTPStatusError)
    assert isinstance(err, ClientError if status < 500 else ServerError)
    assert err.status_code == status
    assert err.message == f"boom {status}"
    assert err.code == f"e{status}"
    assert err.request_id == f"req_{status}"
    assert err.request is request
    assert err.response is not None
    assert err.response.status_code == status
    assert err.response.json()["error"]["message"] == f"boom {status}"
    assert err.method == "GET"
    # Compared as parsed: how the query is re-encoded is `test_secrets`' business.
    assert err.url is not None
    reported, sent = httpx.URL(err.url), httpx.URL(url)
    assert (reported.host, reported.path, reported.params) == (sent.host, sent.path, sent.params)
    # A GET meeting a retry status (429, 5xx) is tried the default 3 times, others once.
    attempts = 3 if status in RetryPolicy().retry_statuses else 1
    assert err.attempts == attempts
    assert [(h.status_code, h.error, h.request_id) for h in err.history] == [
        (status, cls.__name__, f"req_{status}")
    ] * attempts
    assert [h.delay > 0 for h in err.history] == [True] * (attempts - 1) + [False]
    text = str(err)
    for part in (f"e{status}", f"boom {status}", str(status), f"req_{status}"):
        assert part in text


def leaks(canary: str, err: APIError) -> list[str]:
    """The places among an error's public faces where `canary` shows."""
    import json

    faces = {
        "str": str(err),
        "repr": repr(err),
        "to_dict": json.dumps(err.to_dict()),
        "history": repr(err.history),
    }
    return [name for name, text in faces.items() if canary in text]


def check_one_key_three_attempts(data: dict[str, Any], payload: bytes) -> str:
    """A /flaky answer after 503, 503, 200: three attempts, one key, the same body each time."""
    assert data["seen"] == 3
    key = data["keys"][0]
    assert key
    assert data["keys"] == [key] * 3
    assert data["attempts"] == ["1", "2", "3"]
    assert data["bodies"] == [payload.decode()] * 3
    return str(key)
