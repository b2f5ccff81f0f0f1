"""The sans-I/O request flow: every decision about one logical request, with no I/O.

`request_flow()` is a generator in the manner of httpx's auth flows. It yields commands —
`Send` a request, `ReadBody` of a response up to a limit, `Close` a response — and receives
their results (an exception from `Send` is thrown into it). It returns the response to hand
to the caller, or raises the typed error. The sync and async transports are two small loops
that carry the commands out, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._build import (
    RequestInfo,
    body_response,
    decode_content,
    error_for_exception,
    error_for_response,
)
from ._errors import APIError, AttemptRecord, ConfigurationError, RequestTooLargeError
from ._headers import find_header
from ._policies import ErrorPolicy, RequestIdPolicy
from ._streams import CountedRequestStream

__all__ = [
    "Body",
    "Close",
    "Command",
    "ReadBody",
    "Send",
    "Settings",
    "request_flow",
]

logger = logging.getLogger("httpx_resilience")


@dataclass(frozen=True, slots=True)
class Send:
    """Send `request` through the inner transport; the reply is the response."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Read at most about `limit` raw bytes of `response`; the reply is a `Body`.

    Afterwards the response's stream replays what was read followed by any unread rest, so
    the response can still be passed on whole, or closed to discard the rest.
    """

    response: httpx.Response
    limit: int


@dataclass(frozen=True, slots=True)
class Close:
    """Close `response`, giving its connection back or discarding it."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Body:
    """What `ReadBody` read: the raw bytes, and whether they are the whole body."""

    data: bytes
    complete: bool


Command = Send | ReadBody | Close
Flow = Generator[Command, Any, httpx.Response]


@dataclass(frozen=True, slots=True)
class Settings:
    """The policies in force for one request: the transport's, with per-request overrides."""

    errors: ErrorPolicy
    request_ids: RequestIdPolicy

    def for_request(self, request: httpx.Request) -> Settings:
        """Apply `request.extensions["resilience"]`, checked like any policy argument."""
        overrides = request.extensions.get("resilience")
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ConfigurationError(
                'extensions["resilience"] must be a mapping of policy names to policies'
            )
        for name, value in overrides.items():
            expected = _OVERRIDES.get(name)
            if expected is None:
                raise ConfigurationError(
                    f'extensions["resilience"]: unknown key {name!r}; '
                    f"expected one of {sorted(_OVERRIDES)}"
                )
            if not isinstance(value, expected):
                raise ConfigurationError(
                    f'extensions["resilience"][{name!r}] must be a {expected.__name__}'
                )
        return dataclasses.replace(self, **overrides)


_OVERRIDES: Mapping[str, type] = {"errors": ErrorPolicy, "request_ids": RequestIdPolicy}


def request_flow(request: httpx.Request, base: Settings) -> Flow:
    """Carry one logical request from sending to the response or the typed error."""
    settings = base.for_request(request)
    errors = settings.errors
    ids = settings.request_ids
    client_request_id = _client_request_id(request, ids)
    if errors.max_request_bytes is not None:
        _limit_request_size(request, errors.max_request_bytes, client_request_id)

    try:
        response: httpx.Response = yield Send(request)
    except APIError as exc:
        # From a resilient transport stacked below, or our own request-size count.
        _log_failure(exc)
        raise
    except Exception as exc:
        error = error_for_exception(exc, RequestInfo(request, client_request_id=client_request_id))
        _log_failure(error)
        raise error from exc

    request_id = find_header(response.headers, ids.response_headers) or client_request_id
    response.extensions["request_id"] = request_id
    status = response.status_code
    if status < 200 or 300 <= status < 400 or _is_auth_challenge(request, response):
        return response
    if status < 400:
        if errors.classify is None:
            return response
    elif errors.classify is None and not errors.raise_on_status:
        return response

    body = yield ReadBody(response, errors.max_body_bytes)
    if status < 400 and not body.complete:
        # Too large to be the small JSON document `classify` is meant for: passed on unread
        # by the hook, and whole to the caller.
        return response
    info = RequestInfo(request, client_request_id=client_request_id)
    decoded = decode_content(
        body.data, response.headers.get("content-encoding"), errors.max_body_bytes
    )
    readable = body_response(response, decoded, request)
    cls = _classify(errors.classify, readable)
    if cls is None and (status < 400 or not errors.raise_on_status):
        return response
    yield Close(response)
    error = error_for_response(readable, info, errors, request_id, cls=cls)
    _log_failure(error)
    raise error


def _limit_request_size(request: httpx.Request, limit: int, client_request_id: str | None) -> None:
    """Raise `RequestTooLargeError` before any I/O when the body's known size exceeds `limit`.

    A streamed body of unknown size is counted as it goes out instead, and stopped with the
    same error as soon as it passes the limit.
    """
    size = _known_size(request)
    if size is None:
        request.stream = CountedRequestStream(
            request.stream,
            limit,
            lambda sent: _too_large(request, sent, limit, client_request_id, attempts=1),
        )
    elif size > limit:
        raise _too_large(request, size, limit, client_request_id, attempts=0)


def _too_large(
    request: httpx.Request,
    size: int,
    limit: int,
    client_request_id: str | None,
    *,
    attempts: int,
) -> RequestTooLargeError:
    """The error for a body of (at least) `size` bytes against a `limit`.

    `attempts` is 0 when it was caught before sending, 1 when a streamed body was cut off.
    """
    info = RequestInfo(request, client_request_id=client_request_id, attempts=attempts)
    history = (AttemptRecord(None, RequestTooLargeError.__name__),) if attempts else ()
    return RequestTooLargeError(
        f"request body of {size} bytes exceeds the limit of {limit} bytes",
        details={"size": size, "limit": limit},
        request_id=client_request_id,
        history=history,
        **info.common(),
    )


def _known_size(request: httpx.Request) -> int | None:
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit():
        return int(length)
    if isinstance(request.stream, httpx.ByteStream):
        return len(request.read())
    return None


def _client_request_id(request: httpx.Request, ids: RequestIdPolicy) -> str | None:
    header = ids.send_header
    if header is None:
        return None
    existing: str | None = request.headers.get(header)
    if existing:
        return existing
    value = uuid.uuid4().hex
    request.headers[header] = value
    return value


def _is_auth_challenge(request: httpx.Request, response: httpx.Response) -> bool:
    # httpx.DigestAuth sends first without credentials and answers the 401's Digest
    # challenge; raising on that 401 would break the flow before it can answer.
    return (
        response.status_code == 401
        and "authorization" not in request.headers
        and response.headers.get("www-authenticate", "").lstrip().lower().startswith("digest")
    )


def _classify(
    hook: Callable[[httpx.Response], type[APIError] | None] | None, readable: httpx.Response
) -> type[APIError] | None:
    if hook is None:
        return None
    try:
        cls = hook(readable)
    except Exception as exc:
        raise ConfigurationError(f"ErrorPolicy.classify raised {type(exc).__name__}") from exc
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, APIError)):
        raise ConfigurationError(
            f"ErrorPolicy.classify must return an APIError subclass or None, got {cls!r}"
        )
    return cls


def _log_failure(error: APIError) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s failed: %s", error.method, error.url, error)
