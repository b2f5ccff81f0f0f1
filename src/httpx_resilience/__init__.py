"""httpx transports that make every API call dependable and every failure typed."""

from ._errors import (
    APIError,
    AttemptRecord,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    CircuitOpenError,
    ClientError,
    ConfigurationError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    PollTimeoutError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    ServerError,
    ServiceUnavailableError,
    StatusError,
    StreamError,
    StreamTimeoutError,
    TransportError,
    UnprocessableEntityError,
    ValidationError,
)
from ._errors_build import from_response
from ._events import ResilienceEvent, RetryEvent
from ._policies import (
    IDEMPOTENT_METHODS,
    AdaptiveThrottle,
    Backoff,
    CircuitBreaker,
    ErrorPolicy,
    IdempotencyPolicy,
    RequestIdPolicy,
    RetryBudget,
    RetryPolicy,
)
from ._poll import apoll, poll
from ._redis import RedisState
from ._state import MemoryState
from ._transport import AsyncResilientTransport, ResilientTransport
from ._version import __version__

__all__ = [
    "IDEMPOTENT_METHODS",
    "APIError",
    "AdaptiveThrottle",
    "AsyncResilientTransport",
    "AttemptRecord",
    "AuthenticationError",
    "Backoff",
    "BadGatewayError",
    "BadRequestError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientError",
    "ConfigurationError",
    "ConflictError",
    "ErrorPolicy",
    "GatewayTimeoutError",
    "IdempotencyPolicy",
    "InternalServerError",
    "MemoryState",
    "NetworkError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitError",
    "RedisState",
    "RequestIdPolicy",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ResilienceEvent",
    "ResilientTransport",
    "RetryBudget",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "StatusError",
    "StreamError",
    "StreamTimeoutError",
    "TransportError",
    "UnprocessableEntityError",
    "ValidationError",
    "__version__",
    "apoll",
    "from_response",
    "poll",
]

# Errors pickle by their module path; the public one keeps pickles stable across refactors.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
