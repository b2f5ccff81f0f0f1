"""Which error is this: pure decisions from a status and body, or from a raised exception.

Lower-layer exceptions (httpx, httpcore, ssl, anyio, OSError, anything a custom transport
raises) are mapped in this one place, `classify_exception`, most specific first.
"""

from __future__ import annotations

import re
import socket
import ssl
import sys
from collections.abc import Mapping
from types import ModuleType

import httpx

from ._errors import (
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

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "ExceptionKind",
    "class_for_status",
    "classify_exception",
    "says_quota_exhausted",
]

# What the OpenAI and Anthropic SDKs retry, less what no retry can fix: 408, 429 and every 5xx
# (Anthropic's 529 "overloaded", Cloudflare's 520-524 among them) but 501 Not Implemented and
# 505 HTTP Version Not Supported.
DEFAULT_RETRY_STATUSES = frozenset({408, 429, *range(500, 600)} - {501, 505})

_STATUS_CLASSES: Mapping[int, type[StatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    502: BadGatewayError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}

# A 429 means "slow down" unless the body says the account itself is spent: then waiting won't
# help, and the error must not be retried. Rate-limit wording wins over quota wording, since
# many APIs call their per-minute limits quotas.
_QUOTA_CODE = re.compile(r"quota|credit|billing|insufficient_(?:funds|balance)", re.IGNORECASE)
_QUOTA_MESSAGE = re.compile(
    r"(?:exceeded|exhausted|used up|reached|hit)\s+(?:your\s+|the\s+)?"
    r"(?:current\s+|monthly\s+|daily\s+|usage\s+|account\s+)?(?:quota|credits?|billing)"
    r"|(?:quota|credits?|balance)\s+(?:has\s+been\s+|have\s+been\s+|is\s+|are\s+)?"
    r"(?:exceeded|exhausted|depleted|used up)"
    r"|(?:insufficient|out of|no remaining|not enough)\s+(?:credits?|quota|funds|balance)",
    re.IGNORECASE,
)
# "rate" as a word of its own ("rate limit", "rate_limited"), never inside "generate".
_RATE_WORDING = re.compile(
    r"(?<![a-z])rate(?:s|d)?(?![a-z])|per[ -]?(?:second|minute)|too many requests"
    r"|slow down|try again in",
    re.IGNORECASE,
)


def says_quota_exhausted(code: str | None, message: str | None) -> bool:
    """Whether a 429's code or message says the quota or credits are used up."""
    if (code and _RATE_WORDING.search(code)) or (message and _RATE_WORDING.search(message)):
        return False
    return bool((code and _QUOTA_CODE.search(code)) or (message and _QUOTA_MESSAGE.search(message)))


def class_for_status(
    status: int,
    code: str | None,
    message: str | None,
    overrides: Mapping[int, type[StatusError]],
) -> type[StatusError]:
    """The error class for an HTTP status of 400 or more."""
    cls = overrides.get(status)
    if cls is not None:
        return cls
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        return ClientError if status < 500 else ServerError
    if cls is RateLimitError and says_quota_exhausted(code, message):
        return QuotaExceededError
    return cls


class ExceptionKind:
    """How an exception maps: the class, the phase it failed in, whether a retry could help,
    and whether it tells anything of the host (`host_fault`) or only of the caller's request."""

    __slots__ = ("cls", "code", "host_fault", "phase", "retryable")

    def __init__(
        self,
        cls: type[TransportError],
        phase: str | None,
        retryable: bool,
        code: str | None = None,
        *,
        host_fault: bool = True,
    ) -> None:
        self.cls = cls
        self.phase = phase
        self.retryable = retryable
        self.code = code
        self.host_fault = host_fault


_C, _R, _W, _P = "connect", "read", "write", "pool"

Kinds = tuple[tuple[type[BaseException], ExceptionKind], ...]

# By class name, shared by httpx, httpcore and their forks httpx2 and httpcore2 (each has the
# subset it defines). Most specific
# first; the first isinstance match wins. The phase says how far the request got: only a
# "connect" or "pool" failure proves the server never saw it.
_BY_NAME: tuple[tuple[str, ExceptionKind], ...] = (
    ("ConnectTimeout", ExceptionKind(RequestTimeoutError, _C, True)),
    ("ReadTimeout", ExceptionKind(RequestTimeoutError, _R, True)),
    ("WriteTimeout", ExceptionKind(RequestTimeoutError, _W, True)),
    ("PoolTimeout", ExceptionKind(RequestTimeoutError, _P, True)),
    ("TimeoutException", ExceptionKind(RequestTimeoutError, _R, True)),
    ("ProxyError", ExceptionKind(NetworkError, _C, True, "proxy_error")),
    ("ConnectError", ExceptionKind(NetworkError, _C, True)),
    ("ReadError", ExceptionKind(NetworkError, _R, True)),
    ("WriteError", ExceptionKind(NetworkError, _W, True)),
    ("CloseError", ExceptionKind(NetworkError, _R, True)),
    ("NetworkError", ExceptionKind(NetworkError, _R, True)),
    # The server closed the connection or answered garbage: often a stale keep-alive
    # connection, which a new one cures.
    ("RemoteProtocolError", ExceptionKind(ProtocolError, None, True)),
    # The caller's own mistakes (an illegal header, a scheme no transport serves): nothing
    # reached the host, so its circuit breaker does not count them.
    ("LocalProtocolError", ExceptionKind(ProtocolError, None, False, host_fault=False)),
    ("ProtocolError", ExceptionKind(ProtocolError, None, False)),
    ("DecodingError", ExceptionKind(ProtocolError, None, False, "decoding_error")),
    (
        "UnsupportedProtocol",
        ExceptionKind(TransportError, None, False, "unsupported_protocol", host_fault=False),
    ),
)


def _kinds_of(module: ModuleType) -> Kinds:
    return tuple((getattr(module, name), kind) for name, kind in _BY_NAME if hasattr(module, name))


_HTTPX_KINDS = _kinds_of(httpx)

_UNKNOWN = ExceptionKind(TransportError, None, False)
_DNS = ExceptionKind(NetworkError, _C, True, "dns_error")
_TLS = ExceptionKind(NetworkError, _C, True, "tls_error")
_TLS_VERIFY = ExceptionKind(NetworkError, _C, False, "tls_error")
_MAX_CAUSE_DEPTH = 4

_OS_KINDS: Kinds = (
    (ssl.SSLCertVerificationError, _TLS_VERIFY),
    # Raised raw, a TLS error may come from mid-response as well as from the handshake: taken
    # as "read", so a request that may have been sent is never replayed as if it had not.
    (ssl.SSLError, ExceptionKind(NetworkError, _R, True, "tls_error")),
    (TimeoutError, ExceptionKind(RequestTimeoutError, _R, True)),
    (ConnectionRefusedError, ExceptionKind(NetworkError, _C, True)),
    (BrokenPipeError, ExceptionKind(NetworkError, _W, True)),
    (ConnectionError, ExceptionKind(NetworkError, _R, True)),
    (OSError, ExceptionKind(NetworkError, _R, True)),
    (EOFError, ExceptionKind(NetworkError, _R, True)),
)


# httpcore comes with httpx; httpx2 and httpcore2 (its fork) with the httpx2 transports.
_LOWER_MODULES = ("httpcore", "httpx2", "httpcore2")
_module_kinds: dict[str, Kinds] = {}
_anyio_kinds: Kinds | None = None


def classify_exception(exc: BaseException) -> ExceptionKind:
    """Map any exception a transport raised to the typed error that stands for it."""
    for table in (_HTTPX_KINDS, _lower_layer_kinds()):
        for exc_type, kind in table:
            if isinstance(exc, exc_type):
                return (_connect_cause(exc) or kind) if kind.phase == _C else kind
    return _os_kind(exc) or _UNKNOWN


def _os_kind(exc: BaseException) -> ExceptionKind | None:
    if isinstance(exc, socket.gaierror):
        return _DNS
    for exc_type, kind in _OS_KINDS:
        if isinstance(exc, exc_type):
            return kind
    return None


def _connect_cause(exc: BaseException) -> ExceptionKind | None:
    """A DNS or TLS failure behind httpx's or httpcore's ConnectError, found by its cause.

    Both wrap the socket error, which alone says whether a retry could help: a certificate
    that failed verification will fail again.
    """
    cause = exc.__cause__ or exc.__context__
    for _ in range(_MAX_CAUSE_DEPTH):
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _TLS_VERIFY
        if isinstance(cause, ssl.SSLError):
            return _TLS
        if isinstance(cause, socket.gaierror):
            return _DNS
        cause = cause.__cause__ or cause.__context__
    return None


def _lower_layer_kinds() -> Kinds:
    # Only the packages already imported can have raised anything: importing them here would
    # cost every user the import time for nothing.
    global _anyio_kinds
    kinds: Kinds = ()
    for name in _LOWER_MODULES:
        found = _module_kinds.get(name)
        if found is None:
            module = sys.modules.get(name)
            if module is None:
                continue
            found = _module_kinds[name] = _kinds_of(module)
        kinds += found
    if _anyio_kinds is None and "anyio" in sys.modules:
        import anyio

        _anyio_kinds = (
            (anyio.EndOfStream, ExceptionKind(NetworkError, _R, True)),
            (anyio.BrokenResourceError, ExceptionKind(NetworkError, _R, True)),
            (anyio.ClosedResourceError, ExceptionKind(NetworkError, _R, True)),
        )
    if _anyio_kinds is not None:
        kinds += _anyio_kinds
    return kinds
