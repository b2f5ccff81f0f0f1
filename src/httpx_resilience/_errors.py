"""The typed error family: every exception that leaves a resilient transport.

Our exception hierarchy:

* APIError                          base of every error below
  + ConfigurationError              bad policy arguments (also ValueError)
  + RequestTooLargeError            body over ErrorPolicy.max_request_bytes (also ValueError)
  + TransportError                  the request failed without an HTTP response
                                    (also httpx.TransportError)
    - NetworkError                  connect/read/write/close, DNS, TLS, proxy
                                    (also httpx.NetworkError)
    - RequestTimeoutError           a phase timed out, or the total deadline (also
                                    httpx.TimeoutException, builtins.TimeoutError)
      · PollTimeoutError            `poll` / `apoll` ran out of time before the job was done
    - ProtocolError                 malformed HTTP from either side (also httpx.ProtocolError)
    - StreamError                   a passed-through body failed while the caller read it
      · StreamTimeoutError          ... because a read timed out (also a RequestTimeoutError)
    - CircuitOpenError              the host's circuit breaker is open: nothing was sent
  + StatusError                     HTTP status >= 400 (also httpx.HTTPStatusError)
    - ClientError                   4xx
      · ValidationError             400 and 422 (BadRequestError, UnprocessableEntityError)
      · AuthenticationError         401
      · PaymentRequiredError        402
      · PermissionDeniedError       403
      · NotFoundError               404
      · ConflictError               409
      · PayloadTooLargeError        413
      · RateLimitError              429
        · QuotaExceededError        429 whose body says the quota is exhausted
    - ServerError                   5xx (InternalServerError, BadGatewayError,
                                    ServiceUnavailableError, GatewayTimeoutError)

Every class takes the message as its one positional argument and every attribute as a
keyword, so users can build errors in their own tests without a network.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import httpx

from ._redact import Redactor

__all__ = [
    "APIError",
    "AttemptRecord",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "CircuitOpenError",
    "ClientError",
    "ConfigurationError",
    "ConflictError",
    "GatewayTimeoutError",
    "InternalServerError",
    "NetworkError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ServerError",
    "ServiceUnavailableError",
    "StatusError",
    "StreamError",
    "StreamTimeoutError",
    "TransportError",
    "UnprocessableEntityError",
    "ValidationError",
]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a logical request, as kept in `APIError.history`."""

    status_code: int | None
    error: str | None
    delay: float = 0.0
    request_id: str | None = None
    # What refused the retry that would have followed: "retry_budget", "deadline", or None.
    refused: str | None = None


# The keyword attributes every error carries, in the order `to_dict()` and `repr` use.
_FIELDS = (
    "code",
    "status_code",
    "request_id",
    "body",
    "details",
    "errors",
    "retry_after",
    "limit",
    "remaining",
    "reset",
    "retryable",
    "phase",
    "attempts",
    "history",
    "method",
    "url",
    "idempotency_key",
)
_REPR_FIELDS = ("code", "status_code", "request_id", "retry_after", "phase", "method", "url")
# The idempotency key header redaction spares when the error was not told another one.
_IDEMPOTENCY_HEADER = "Idempotency-Key"
# A structure deeper than this in `details` is shown as text: `to_dict()` must never recurse
# without bound on a body a server chose.
_MAX_JSON_DEPTH = 32
_SUMMARY_LENGTH = 200


class APIError(Exception):
    """Base class of every error a resilient transport raises."""

    default_code: ClassVar[str] = "api_error"
    default_retryable: ClassVar[bool] = False
    # What `to_dict()` and pickling carry; a subclass with attributes of its own extends it.
    _fields: ClassVar[tuple[str, ...]] = _FIELDS

    message: str
    code: str
    status_code: int | None
    request_id: str | None
    body: str | None
    details: dict[str, Any] | None
    errors: list[dict[str, Any]] | None
    retry_after: float | None
    limit: int | None
    remaining: int | None
    reset: float | None
    retryable: bool
    phase: str | None
    attempts: int | None
    history: tuple[AttemptRecord, ...]
    method: str | None
    url: str | None
    idempotency_key: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
        details: Mapping[str, Any] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        retry_after: float | None = None,
        limit: int | None = None,
        remaining: int | None = None,
        reset: float | None = None,
        retryable: bool | None = None,
        phase: str | None = None,
        attempts: int | None = None,
        history: Sequence[AttemptRecord] = (),
        method: str | None = None,
        url: str | None = None,
        idempotency_key: str | None = None,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
        _redactor: Redactor | None = None,
    ) -> None:
        if message is None or message == "":
            message = self._default_message(status_code)
        # Exception.__init__ directly: the httpx bases' constructors demand a request and a
        # response, which errors built in users' tests do not have.
        Exception.__init__(self, message)
        self.message = message
        self.code = code if code else self.default_code
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.details = dict(details) if details is not None else None
        self.errors = [dict(e) for e in errors] if errors is not None else None
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset = reset
        self.retryable = self.default_retryable if retryable is None else retryable
        self.phase = phase
        self.attempts = attempts
        self.history = tuple(history)
        self.method = method
        self.url = url
        self.idempotency_key = idempotency_key
        self._request = request
        self._response = response
        # How the transport that built the error redacts (its idempotency header and extra
        # names): a pickle holds only redacted copies of the request and response.
        self._redactor = _redactor

    @classmethod
    def _default_message(cls, status_code: int | None) -> str:
        if status_code is not None:
            return _status_text(status_code)
        return cls.default_code.replace("_", " ")

    # httpx's bases define `request` as a property that raises when unset; ours never raises.
    @property
    def request(self) -> httpx.Request | None:
        """The httpx request, or None for an error built without one."""
        return self._request

    @request.setter
    def request(self, request: httpx.Request | None) -> None:
        self._request = request

    @property
    def response(self) -> httpx.Response | None:
        """The httpx response (its body read up to the cap), or None."""
        return self._response

    @response.setter
    def response(self, response: httpx.Response | None) -> None:
        self._response = response

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        extras = []
        if self.status_code is not None:
            extras.append(f"status {self.status_code}")
        if self.request_id is not None:
            extras.append(f"request_id {self.request_id}")
        if extras:
            text += f" ({', '.join(extras)})"
        return text

    def __repr__(self) -> str:
        parts = [f"message={self.message!r}"]
        parts.extend(
            f"{name}={getattr(self, name)!r}"
            for name in _REPR_FIELDS
            if getattr(self, name) is not None
        )
        return f"{type(self).__name__}({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view of the error, without the httpx objects."""
        data: dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        for name in self._fields:
            value = getattr(self, name)
            if name == "history":
                value = [asdict(record) for record in value]
            data[name] = _jsonable(value, 0)
        return data

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors are pickled into task queues and caches: the request's credentials, and the
        # server's echo of them, must not go with them. Every other field is redacted already.
        origin = self._request
        if origin is None and self._response is not None:
            try:
                origin = self._response.request
            except RuntimeError:  # httpx raises for a response built without a request
                origin = None
        redactor = self._redactor
        if redactor is None:  # built by hand: the default names
            redactor = Redactor.for_request(origin, _IDEMPOTENCY_HEADER)
        request = redactor.request(origin) if origin is not None else None
        state = {name: getattr(self, name) for name in self._fields}
        state["request"] = request if self._request is not None else None
        state["response"] = (
            redactor.response(self._response, request) if self._response is not None else None
        )
        return (_rebuild, (type(self), self.message, state))


def _rebuild(cls: type[APIError], message: str, state: dict[str, Any]) -> APIError:
    return cls(message, **state)


def _jsonable(value: Any, depth: int) -> Any:
    if isinstance(value, float):
        # NaN and the infinities are no JSON (Python's parser reads them in bodies all the
        # same): null, as JSON.stringify writes them.
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if depth >= _MAX_JSON_DEPTH:
        return _summary(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def _summary(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = reprlib.repr(value)  # bounded, where str() of a deep structure is not
    return text[:_SUMMARY_LENGTH]


def _status_text(status_code: int) -> str:
    try:
        phrase = httpx.codes.get_reason_phrase(status_code)
    except (TypeError, ValueError):
        phrase = ""
    return f"HTTP {status_code} {phrase}".rstrip()


class ConfigurationError(APIError, ValueError):
    """Raised when a policy or transport is given arguments it cannot work with."""

    default_code = "configuration_error"


class RequestTooLargeError(APIError, ValueError):
    """Raised before sending when a request body exceeds `ErrorPolicy.max_request_bytes`."""

    default_code = "request_too_large"


# mypy sees our never-raising `request` property clash with httpx's raising one: intended.
class TransportError(APIError, httpx.TransportError):  # type: ignore[misc]
    """Raised when a request failed without an HTTP response.

    Also an `httpx.TransportError`, as httpx's own error in its place would be, so that
    `except httpx.TransportError` (or `httpx.HTTPError`) in code written for plain httpx still
    catches it.
    """

    default_code = "transport_error"


class CircuitOpenError(TransportError):
    """Raised, without touching the network, while the host's circuit breaker is open.

    `retry_after` is how long the circuit stays open; `attempts` counts the attempts this
    request made before the circuit stopped it (0 when it stopped the first).
    """

    default_code = "circuit_open"
    default_retryable = True


class NetworkError(TransportError, httpx.NetworkError):  # type: ignore[misc]
    """Raised on a connect, read, write or close failure, including DNS, TLS and proxy errors."""

    default_code = "network_error"
    default_retryable = True


class RequestTimeoutError(TransportError, httpx.TimeoutException, TimeoutError):  # type: ignore[misc]
    """Raised when a connect, read, write or pool timeout fired, or the total deadline ran out."""

    default_code = "timeout"
    default_retryable = True


class PollTimeoutError(RequestTimeoutError):
    """Raised by `poll` / `apoll` when the job was not done before the polling deadline.

    The job itself is not cancelled. `response` is the last poll's answer, `attempts` the number
    of polls made, and `resource_id` the job's id as read from that answer's JSON body, if any.
    """

    default_code = "poll_timeout"
    default_retryable = False
    _fields = (*_FIELDS, "resource_id")

    resource_id: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        resource_id: str | None = None,
        phase: str | None = "total",
        **attributes: Any,
    ) -> None:
        super().__init__(message, phase=phase, **attributes)
        self.resource_id = resource_id


class ProtocolError(TransportError, httpx.ProtocolError):  # type: ignore[misc]
    """Raised when either side sent malformed HTTP."""

    default_code = "protocol_error"


class StreamError(TransportError):
    """Raised when the body of a response the transport passed on failed while being read."""

    default_code = "stream_error"


class StreamTimeoutError(StreamError, RequestTimeoutError):  # type: ignore[misc]
    """A `StreamError` because a read of the body timed out: also a `RequestTimeoutError` (so an
    `httpx.TimeoutException` and a `TimeoutError`), as httpx's `ReadTimeout` is in its place.

    Not retryable: the response was handed on, and the transport cannot send it again.
    """

    default_code = "stream_error"
    default_retryable = False


class StatusError(APIError, httpx.HTTPStatusError):  # type: ignore[misc]
    """Raised for a response with an HTTP status of 400 or more."""

    default_code = "http_error"


class ClientError(StatusError):
    """Raised for a 4xx response that no more specific class covers."""

    default_code = "client_error"


class ValidationError(ClientError):
    """Raised when the server rejected the request's content (400 or 422)."""

    default_code = "invalid_request"


class BadRequestError(ValidationError):
    """Raised for a 400 Bad Request."""

    default_code = "invalid_request"


class UnprocessableEntityError(ValidationError):
    """Raised for a 422 Unprocessable Entity."""

    default_code = "unprocessable_entity"


class AuthenticationError(ClientError):
    """Raised for a 401: credentials missing, invalid or expired."""

    default_code = "authentication_failed"


class PaymentRequiredError(ClientError):
    """Raised for a 402: the account is out of credits or the resource needs payment."""

    default_code = "payment_required"


class PermissionDeniedError(ClientError):
    """Raised for a 403: the credentials are valid but not allowed to do this."""

    default_code = "permission_denied"


class NotFoundError(ClientError):
    """Raised for a 404."""

    default_code = "not_found"


class ConflictError(ClientError):
    """Raised for a 409, e.g. a duplicate or an idempotency-key conflict."""

    default_code = "conflict"


class PayloadTooLargeError(ClientError):
    """Raised for a 413 from the server."""

    default_code = "payload_too_large"


class RateLimitError(ClientError):
    """Raised for a 429 Too Many Requests."""

    default_code = "rate_limited"
    default_retryable = True


class QuotaExceededError(RateLimitError):
    """Raised for a 429 whose body says the quota or credits are exhausted: waiting won't help."""

    default_code = "quota_exceeded"
    default_retryable = False


class ServerError(StatusError):
    """Raised for a 5xx response that no more specific class covers."""

    default_code = "server_error"


class InternalServerError(ServerError):
    """Raised for a 500 Internal Server Error."""

    default_code = "internal_error"
    default_retryable = True


class BadGatewayError(ServerError):
    """Raised for a 502 Bad Gateway."""

    default_code = "bad_gateway"
    default_retryable = True


class ServiceUnavailableError(ServerError):
    """Raised for a 503 Service Unavailable."""

    default_code = "service_unavailable"
    default_retryable = True


class GatewayTimeoutError(ServerError):
    """Raised for a 504 Gateway Timeout."""

    default_code = "gateway_timeout"
    default_retryable = True
