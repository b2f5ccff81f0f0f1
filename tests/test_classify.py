"""Tests for status and exception classification in ``httpx_resilience._classify``."""

from __future__ import annotations

import socket
import ssl

import anyio
import httpcore
import httpx
import pytest

from httpx_resilience._classify import class_for_status, classify_exception, says_quota_exhausted
from httpx_resilience._errors import (
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ClientError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    StatusError,
    TransportError,
    UnprocessableEntityError,
)

OPENAI_QUOTA = "You exceeded your current quota, please check your plan and billing details"


class TeapotError(StatusError):
    """A user's own status class."""


class MyNotFound(NotFoundError):
    """A user's own 404 class."""


# --- class_for_status -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, BadGatewayError),
        (503, ServiceUnavailableError),
        (504, GatewayTimeoutError),
    ],
)
def test_known_status_maps_to_its_class(status: int, cls: type[StatusError]) -> None:
    """Each status named in SPEC §2 maps to exactly its class."""
    assert class_for_status(status, None, None, {}) is cls


@pytest.mark.parametrize("status", [405, 408, 410, 418, 451, 499])
def test_other_4xx_is_client_error(status: int) -> None:
    """A 4xx without its own class is a plain ClientError."""
    assert class_for_status(status, None, None, {}) is ClientError


@pytest.mark.parametrize("status", [501, 505, 599])
def test_other_5xx_is_server_error(status: int) -> None:
    """A 5xx without its own class is a plain ServerError."""
    assert class_for_status(status, None, None, {}) is ServerError


@pytest.mark.parametrize(("status", "cls"), [(418, TeapotError), (404, MyNotFound)])
def test_status_classes_override_wins(status: int, cls: type[StatusError]) -> None:
    """A user's status_classes entry wins over the built-in mapping."""
    assert class_for_status(status, None, None, {status: cls}) is cls


def test_override_for_other_status_does_not_apply() -> None:
    """An override for one status leaves the others on the built-in mapping."""
    assert class_for_status(404, None, None, {418: TeapotError}) is NotFoundError


def test_override_for_429_wins_over_quota_detection() -> None:
    """A 429 override is used even when the body says the quota is exhausted."""
    cls = class_for_status(429, "insufficient_quota", OPENAI_QUOTA, {429: TeapotError})
    assert cls is TeapotError


# --- quota vs rate limit --------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("insufficient_quota", OPENAI_QUOTA),
        ("insufficient_quota", None),
        (None, OPENAI_QUOTA),
        (None, "Insufficient credits"),
        (None, "credits exhausted"),
        (None, "monthly quota has been exceeded"),
        (None, "Your credit balance is exhausted"),
        (None, "You are out of credits"),
    ],
)
def test_429_quota_exhausted_is_quota_exceeded(code: str | None, message: str | None) -> None:
    """A 429 whose code or message says quota/credits are used up is QuotaExceededError."""
    assert says_quota_exhausted(code, message) is True
    assert class_for_status(429, code, message, {}) is QuotaExceededError


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (None, "Rate limit exceeded"),
        (None, "Too many requests, try again in 20s"),
        (None, "Quota exceeded for requests per minute"),
        ("rate_limit_exceeded", None),
        ("rate_limit_exceeded", "Rate limit reached for requests"),
        (None, None),
        ("", ""),
    ],
)
def test_429_rate_wording_stays_rate_limit(code: str | None, message: str | None) -> None:
    """A 429 that speaks of a rate (or says nothing) stays a RateLimitError."""
    assert says_quota_exhausted(code, message) is False
    assert class_for_status(429, code, message, {}) is RateLimitError


@pytest.mark.parametrize(
    "message",
    [
        "Insufficient credits to generate this image",
        "Your monthly quota has been exhausted. Please contact our corporate sales team.",
        "Credits exhausted. Upgrade to a separate paid plan to keep going.",
    ],
)
def test_quota_message_with_rate_inside_another_word(message: str) -> None:
    """Words merely containing "rate" (generate, corporate, separate) don't mask used-up quota."""
    assert class_for_status(429, None, message, {}) is QuotaExceededError


@pytest.mark.parametrize("status", [400, 402, 403, 500, 503])
def test_quota_wording_only_matters_for_429(status: int) -> None:
    """Quota wording on another status does not turn it into a QuotaExceededError."""
    assert class_for_status(status, "insufficient_quota", OPENAI_QUOTA, {}) is not (
        QuotaExceededError
    )


# --- classify_exception: httpx --------------------------------------------------


REQUEST = httpx.Request("GET", "https://api.example.com/")


@pytest.mark.parametrize(
    ("exc_type", "phase"),
    [
        (httpx.ConnectTimeout, "connect"),
        (httpx.ReadTimeout, "read"),
        (httpx.WriteTimeout, "write"),
        (httpx.PoolTimeout, "pool"),
    ],
)
def test_httpx_timeouts(exc_type: type[Exception], phase: str) -> None:
    """Each httpx timeout is a retryable RequestTimeoutError of its phase."""
    kind = classify_exception(exc_type("timed out", request=REQUEST))
    assert kind.cls is RequestTimeoutError
    assert kind.phase == phase
    assert kind.retryable is True


@pytest.mark.parametrize(
    ("exc_type", "phase"),
    [
        (httpx.ConnectError, "connect"),
        (httpx.ReadError, "read"),
        (httpx.WriteError, "write"),
    ],
)
def test_httpx_network_errors(exc_type: type[Exception], phase: str) -> None:
    """httpx connect/read/write errors are retryable NetworkErrors of that phase."""
    kind = classify_exception(exc_type("failed", request=REQUEST))
    assert kind.cls is NetworkError
    assert kind.phase == phase
    assert kind.retryable is True


def test_httpx_close_error() -> None:
    """httpx.CloseError is a NetworkError after the request went out (not connect)."""
    kind = classify_exception(httpx.CloseError("close failed", request=REQUEST))
    assert kind.cls is NetworkError
    assert kind.phase not in (None, "connect", "pool")


def test_httpx_proxy_error() -> None:
    """httpx.ProxyError is a connect-phase NetworkError with code proxy_error."""
    kind = classify_exception(httpx.ProxyError("407", request=REQUEST))
    assert kind.cls is NetworkError
    assert kind.phase == "connect"
    assert kind.code == "proxy_error"


def test_httpx_remote_protocol_error_is_retryable() -> None:
    """A RemoteProtocolError (often a stale keep-alive) is a retryable ProtocolError."""
    kind = classify_exception(httpx.RemoteProtocolError("disconnected", request=REQUEST))
    assert kind.cls is ProtocolError
    assert kind.retryable is True


def test_httpx_local_protocol_error_is_not_retryable() -> None:
    """A LocalProtocolError (our own bad request) is a non-retryable ProtocolError."""
    kind = classify_exception(httpx.LocalProtocolError("bad header", request=REQUEST))
    assert kind.cls is ProtocolError
    assert kind.retryable is False


def test_httpx_unsupported_protocol() -> None:
    """UnsupportedProtocol is a plain, non-retryable TransportError, code unsupported_protocol."""
    kind = classify_exception(httpx.UnsupportedProtocol("ftp://", request=REQUEST))
    assert kind.cls is TransportError
    assert kind.code == "unsupported_protocol"
    assert kind.retryable is False


def test_httpx_decoding_error() -> None:
    """A body that fails to decode is a non-retryable ProtocolError."""
    kind = classify_exception(httpx.DecodingError("bad gzip", request=REQUEST))
    assert kind.cls is ProtocolError
    assert kind.retryable is False


# --- classify_exception: httpcore -----------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls", "phase", "retryable"),
    [
        (httpcore.ConnectTimeout("t"), RequestTimeoutError, "connect", True),
        (httpcore.ReadTimeout("t"), RequestTimeoutError, "read", True),
        (httpcore.WriteTimeout("t"), RequestTimeoutError, "write", True),
        (httpcore.PoolTimeout("t"), RequestTimeoutError, "pool", True),
        (httpcore.ConnectError("e"), NetworkError, "connect", True),
        (httpcore.ReadError("e"), NetworkError, "read", True),
        (httpcore.WriteError("e"), NetworkError, "write", True),
        (httpcore.ProxyError("e"), NetworkError, "connect", True),
        (httpcore.RemoteProtocolError("e"), ProtocolError, None, True),
        (httpcore.LocalProtocolError("e"), ProtocolError, None, False),
        (httpcore.UnsupportedProtocol("e"), TransportError, None, False),
    ],
)
def test_httpcore_exceptions(
    exc: Exception, cls: type[TransportError], phase: str | None, retryable: bool
) -> None:
    """httpcore's own exceptions map like their httpx counterparts."""
    kind = classify_exception(exc)
    assert kind.cls is cls
    assert kind.phase == phase
    assert kind.retryable is retryable


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpcore.ProxyError("e"), "proxy_error"),
        (httpcore.UnsupportedProtocol("e"), "unsupported_protocol"),
    ],
)
def test_httpcore_codes(exc: Exception, code: str) -> None:
    """httpcore proxy and unsupported-protocol errors carry the same codes as httpx's."""
    assert classify_exception(exc).code == code


# --- classify_exception: ssl, anyio, OS, unknown ----------------------------------


def test_ssl_error_is_read_network_error() -> None:
    """A raw ssl.SSLError is a retryable NetworkError, taken as possibly sent ("read")."""
    kind = classify_exception(ssl.SSLError(1, "handshake failure"))
    assert kind.cls is NetworkError
    assert kind.phase == "read"
    assert kind.retryable is True


def test_ssl_cert_verification_error_not_retryable() -> None:
    """A certificate verification failure is a NetworkError that no retry can fix."""
    kind = classify_exception(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert kind.cls is NetworkError
    assert kind.phase == "connect"
    assert kind.retryable is False


@pytest.mark.parametrize(
    "exc", [anyio.EndOfStream(), anyio.BrokenResourceError(), anyio.ClosedResourceError()]
)
def test_anyio_stream_errors_are_read_network_errors(exc: Exception) -> None:
    """anyio's stream errors are read-phase NetworkErrors."""
    kind = classify_exception(exc)
    assert kind.cls is NetworkError
    assert kind.phase == "read"


@pytest.mark.parametrize(
    ("exc", "phase"),
    [
        (ConnectionRefusedError(111, "refused"), "connect"),
        (ConnectionResetError(104, "reset by peer"), "read"),
        (BrokenPipeError(32, "broken pipe"), "write"),
    ],
)
def test_os_connection_errors(exc: OSError, phase: str) -> None:
    """Builtin connection errors are retryable NetworkErrors of the phase they imply."""
    kind = classify_exception(exc)
    assert kind.cls is NetworkError
    assert kind.phase == phase
    assert kind.retryable is True


def test_gaierror_is_dns_error() -> None:
    """socket.gaierror is a connect-phase NetworkError with code dns_error."""
    kind = classify_exception(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert kind.cls is NetworkError
    assert kind.phase == "connect"
    assert kind.code == "dns_error"


@pytest.mark.parametrize(
    "exc",
    [TimeoutError("timed out"), socket.timeout("timed out")],  # noqa: UP041 (the brief names both)
)
def test_builtin_timeouts(exc: Exception) -> None:
    """Builtin TimeoutError and socket.timeout are retryable RequestTimeoutErrors."""
    kind = classify_exception(exc)
    assert kind.cls is RequestTimeoutError
    assert kind.retryable is True


def test_generic_os_error_is_network_error() -> None:
    """A plain OSError is a NetworkError."""
    assert classify_exception(OSError(5, "I/O error")).cls is NetworkError


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyError("k"), ValueError("v")])
def test_unknown_exception_is_plain_transport_error(exc: Exception) -> None:
    """Anything unrecognised falls back to a non-retryable plain TransportError."""
    kind = classify_exception(exc)
    assert kind.cls is TransportError
    assert kind.phase is None
    assert kind.retryable is False


ALL_EXCEPTIONS: list[BaseException] = [
    httpx.ConnectTimeout("t", request=REQUEST),
    httpx.ReadTimeout("t", request=REQUEST),
    httpx.WriteTimeout("t", request=REQUEST),
    httpx.PoolTimeout("t", request=REQUEST),
    httpx.ConnectError("e", request=REQUEST),
    httpx.ReadError("e", request=REQUEST),
    httpx.WriteError("e", request=REQUEST),
    httpx.CloseError("e", request=REQUEST),
    httpx.ProxyError("e", request=REQUEST),
    httpx.RemoteProtocolError("e", request=REQUEST),
    httpx.LocalProtocolError("e", request=REQUEST),
    httpx.UnsupportedProtocol("e", request=REQUEST),
    httpx.DecodingError("e", request=REQUEST),
    httpcore.ConnectTimeout("t"),
    httpcore.ReadError("e"),
    httpcore.RemoteProtocolError("e"),
    ssl.SSLError(1, "e"),
    ssl.SSLCertVerificationError(1, "e"),
    anyio.EndOfStream(),
    anyio.BrokenResourceError(),
    anyio.ClosedResourceError(),
    ConnectionRefusedError(),
    socket.gaierror(),
    ConnectionResetError(),
    BrokenPipeError(),
    TimeoutError(),
    OSError(),
    EOFError(),
    RuntimeError("boom"),
    KeyError("k"),
]


@pytest.mark.parametrize("exc", ALL_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_every_mapped_class_is_a_transport_error(exc: BaseException) -> None:
    """Whatever the exception, the class it maps to is a TransportError subclass."""
    assert issubclass(classify_exception(exc).cls, TransportError)


@pytest.mark.parametrize("exc", ALL_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_every_phase_is_a_known_value(exc: BaseException) -> None:
    """The phase is one of connect/read/write/pool, or None."""
    assert classify_exception(exc).phase in (None, "connect", "read", "write", "pool")


def test_rate_wording_in_message_beats_a_quota_code() -> None:
    """A quota-looking code with a per-minute message is still a plain rate limit."""
    assert says_quota_exhausted("quota_exceeded", "Quota exceeded for requests per minute") is False


def _wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (
            _wrapped(httpx.ConnectError("x"), ssl.SSLCertVerificationError(1, "verify failed")),
            "tls_error",
            False,
        ),
        (
            _wrapped(
                httpx.ConnectError("x"), _wrapped(httpcore.ConnectError("y"), ssl.SSLError(1, "hs"))
            ),
            "tls_error",
            True,
        ),
        (
            _wrapped(httpcore.ConnectError("x"), socket.gaierror(-2, "unknown host")),
            "dns_error",
            True,
        ),
        (_wrapped(httpx.ConnectError("x"), ConnectionRefusedError(111, "refused")), None, True),
    ],
)
def test_connect_error_refined_by_its_cause(
    exc: BaseException, code: str | None, retryable: bool
) -> None:
    """A ConnectError wrapping a TLS or DNS failure takes that failure's code and retry verdict."""
    kind = classify_exception(exc)
    assert kind.cls is NetworkError
    assert kind.phase == "connect"
    assert (kind.code, kind.retryable) == (code, retryable)
