"""Building typed errors from what a request met: a response and its body, or an exception.

Everything here is computed on the failure path only, so it may parse, redact and allocate
freely; the success path never calls into this module.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import itertools
import logging
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ._backend import Backend, backend_of
from ._classify import ExceptionKind, class_for_status
from ._errors import (
    APIError,
    AttemptRecord,
    CircuitOpenError,
    ConfigurationError,
    RequestTimeoutError,
    RequestTooLargeError,
    StreamError,
    StreamTimeoutError,
    ValidationError,
)
from ._headers import find_header, header_value, parse_rate_limit, parse_retry_after
from ._parse import ParsedBody, decode_text, field_error, parse_error_body
from ._policies import ErrorPolicy, IdempotencyPolicy, RequestIdPolicy, RetryPolicy
from ._redact import Redactor, read_copy
from ._streams import read_prefix
from ._waits import discard

if TYPE_CHECKING:
    from ._call import Call
    from ._settings import Settings

__all__ = [
    "DECODE_FACTOR",
    "body_response",
    "carried_settings",
    "circuit_open_error",
    "common",
    "deadline_error",
    "decode_content",
    "decodes",
    "error_for_exception",
    "error_for_response",
    "from_response",
    "redactor_for",
    "stream_error",
    "too_large_error",
]

logger = logging.getLogger("httpx_resilience")

_PARSED_KEYS = frozenset({"message", "code", "details", "errors"})


def decode_content(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding` on an error body, never producing more than `limit` bytes.

    Every coding of the chain is undone piece by piece, each step's output bounded, so a
    compression bomb, stacked or not, costs no more than a plain body would. A chain this
    module cannot undo under that bound (an unknown coding, one whose library is missing, more
    than `_MAX_CODINGS`, or a body that is not what it claims) leaves the raw capped bytes. A
    truncated body still yields what it holds.
    """
    if limit <= 0:
        return b""
    codings = _codings(content_encoding)
    # The raw bytes go in by pieces, so no step copies them whole.
    chain = _chain((raw[i : i + _PIECE] for i in range(0, len(raw), _PIECE)), codings)
    if not codings or chain is None:
        return raw[:limit]
    pieces, stages = chain
    out = bytearray()
    try:
        for piece in pieces:
            out += piece[: limit - len(out)]
            if len(out) >= limit:
                break
    except Exception:
        # Not what its Content-Encoding claims: a part decoded would pass for the whole.
        return raw[:limit]
    finally:
        for stage in stages:
            stage.close()
    return bytes(out)


# How much `buffer=`'s check of a whole body may decode, per byte of the buffer: enough for the
# usual ratios of compressed JSON or text; past it, a bomb would cost its full size in CPU (in an
# event loop, blocked), so the rest is left to the caller's read, as a body over the buffer is.
DECODE_FACTOR = 8
# The codings httpx itself undoes: any other it hands on as it is, and so is not checked.
_HTTPX_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


def decodes(chunks: list[bytes], headers: Any, limit: int) -> bool:
    """Whether a whole body (its `chunks`) is what its `Content-Encoding` claims: every coding
    of the chain undone, piece by piece, the output let go as it comes.

    True for what only the caller's read can tell: a chain with a coding httpx does not undo
    or this module cannot undo safely here, a zstd window over RFC 9659's bound, and a body that
    decodes to more than `limit` bytes without failing by then.
    """
    codings = _codings(headers.get("content-encoding"))
    chain = _chain(iter(chunks), codings) if _HTTPX_CODINGS.issuperset(codings) else None
    if chain is None:
        return True
    pieces, stages = chain
    out = 0
    try:
        for piece in pieces:
            out += len(piece)
            if out > limit:
                return True
    except Exception as exc:
        # A window over the bound is refused here, not by httpx: not the body's fault.
        return "too much memory" in str(exc)
    finally:
        for stage in stages:
            stage.close()
    return True


def _codings(content_encoding: str | None) -> list[str]:
    """The codings a `Content-Encoding` value names, in the order they were applied."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    return [c for c in codings if c not in ("", "identity")]


def _chain(
    pieces: Iterator[bytes], codings: list[str]
) -> tuple[Iterator[bytes], list[Generator[bytes, None, None]]] | None:
    """`pieces` with every coding undone, last to first, each step's output bounded, and the
    steps (to close); None for a chain this module cannot undo safely here: an unknown coding,
    one whose library is missing, or more than `_MAX_CODINGS`."""
    if len(codings) > _MAX_CODINGS:
        return None
    stages: list[Generator[bytes, None, None]] = []
    for coding in reversed(codings):
        decoder = _decoder(coding)
        if decoder is None:
            return None
        pieces = decoder(pieces)
        stages.append(pieces)
    return pieces, stages


# The longest chain of codings undone: servers send one, proxies rarely add a second; a longer
# chain is more likely aimed at the decoder than a body worth reading.
_MAX_CODINGS = 3
# The most one decoding step produces (brotli rounds up to its 32 KiB block): what a chain
# holds at once, per coding.
_PIECE = 16384
# RFC 9659: a zstd window over 8 MiB is not for HTTP, and would cost that much memory.
_ZSTD_MAX_WINDOW = 8 * 1024 * 1024

_Decoder = Callable[[Iterator[bytes]], Generator[bytes, None, None]]


def _inflate(pieces: Iterator[bytes], wbits: int) -> Generator[bytes, None, None]:
    decompressor = zlib.decompressobj(wbits)
    for piece in pieces:
        data = piece
        while True:
            out = decompressor.decompress(data, _PIECE)
            if out:
                yield out
            data = decompressor.unconsumed_tail
            # A full piece with no input left may still have output pending: ask again.
            if decompressor.eof or (not data and len(out) < _PIECE):
                break
        if decompressor.eof:
            # What follows the end of the stream is ignored, as httpx does.
            return


def _gzip(pieces: Iterator[bytes]) -> Generator[bytes, None, None]:
    return _inflate(pieces, 16 + zlib.MAX_WBITS)


def _deflate(pieces: Iterator[bytes]) -> Generator[bytes, None, None]:
    # "deflate" means zlib framing, but servers also send raw deflate: the first two bytes
    # tell which, as httpx's decoder finds out by trying.
    head = b""
    for piece in pieces:
        head += piece
        if len(head) >= 2:
            break
    zlib_framed = (
        len(head) >= 2
        and head[0] & 0x0F == 8
        and head[0] >> 4 <= 7
        and (head[0] << 8 | head[1]) % 31 == 0
    )
    yield from _inflate(
        itertools.chain((head,), pieces), zlib.MAX_WBITS if zlib_framed else -zlib.MAX_WBITS
    )


def _brotli(pieces: Iterator[bytes]) -> Generator[bytes, None, None]:
    decompressor = _brotli_module().Decompressor()
    for piece in pieces:
        out = decompressor.process(piece, output_buffer_limit=_PIECE)
        while True:
            if out:
                yield out
            if decompressor.is_finished():
                return
            # A call that stopped at the limit may leave output even when the decoder says it
            # can take more input: only an empty answer tells it needs some.
            if not out and decompressor.can_accept_more_data():
                break
            out = decompressor.process(b"", output_buffer_limit=_PIECE)


def _zstd(pieces: Iterator[bytes]) -> Generator[bytes, None, None]:
    decompressor = _zstd_module().ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
    # zstandard's only decoder whose output per call is bounded reads from a file.
    source = _PieceReader(pieces)
    with decompressor.stream_reader(source, read_across_frames=True, closefd=False) as reader:
        while out := reader.read(_PIECE):
            yield out


class _PieceReader:
    """The `read(n)` of a file over an iterator of byte pieces."""

    __slots__ = ("_pending", "_pieces")

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        # An empty read means the end of the file: a step that yielded nothing is not that.
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._pending = piece
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


@functools.cache
def _brotli_module() -> Any:
    # brotli, or brotlicffi on PyPy, as httpx picks them; only versions that bound the output
    # of one call (brotli and brotlicffi 1.2 on) can decode an error body safely.
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module.Decompressor, "can_accept_more_data"):
            return module
    return None


@functools.cache
def _zstd_module() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


def _decoder(coding: str) -> _Decoder | None:
    """The capped decoder of one coding, if this module can undo it safely here."""
    if coding in ("gzip", "x-gzip"):
        return _gzip
    if coding == "deflate":
        return _deflate
    if coding == "br" and _brotli_module() is not None:
        return _brotli
    if coding == "zstd" and _zstd_module() is not None:
        return _zstd
    return None


def body_response(
    response: httpx.Response, body: bytes, request: httpx.Request | None
) -> httpx.Response:
    """A read copy of `response` holding the decoded `body`, safe to keep on an error."""
    # The header bytes as they came: decoded to str, a value that is not ASCII (UTF-8 in a
    # detail header, Latin-1 in a filename) could not be encoded back.
    cls = backend_of(response).response
    return read_copy(cls, response, response.headers.raw, body, request)


def error_for_response(
    readable: httpx.Response,
    call: Call,
    policy: ErrorPolicy,
    request_id: str | None,
    *,
    cls: type[APIError] | None = None,
) -> APIError:
    """The typed error for `readable`, a response whose (capped, decoded) body is read.

    Whether it is retryable is not this module's to say: `_decide` sets that.
    """
    common, redactor = _common(call)
    body = readable.content
    # Decoded once, for the parser and for `err.body`: error bodies may be large.
    text = decode_text(body, readable.headers.get("content-type")) if body else None
    parsed = _parse(readable, body, text, policy)
    status = readable.status_code
    if cls is None:
        cls = class_for_status(status, parsed.code, parsed.message, policy.status_classes)
    headers = readable.headers
    now = time.time()
    window = parse_rate_limit(headers, now)
    details = parsed.details
    errors = parsed.errors
    if errors is not None and not issubclass(cls, ValidationError):
        details = {**(details or {}), "errors": errors}
        errors = None
    # A body at the cap may have been cut inside an echoed secret, and so may what was read
    # from its end (a plain-text message).
    cut = len(body) >= policy.max_body_bytes
    message = redactor.text(parsed.message, cut=cut) if parsed.message else None
    fields: dict[str, Any] = {
        "code": redactor.text(parsed.code) if parsed.code else None,
        "status_code": status,
        "request_id": request_id,
        "body": redactor.text(text, cut=cut) if text is not None else None,
        "details": redactor.data(details) if details is not None else None,
        "errors": redactor.data(errors) if errors is not None else None,
        "retry_after": parse_retry_after(headers, now),
        "limit": window.limit,
        "remaining": window.remaining,
        "reset": window.reset,
        "retryable": False,
        "history": (*call.history, AttemptRecord(status, cls.__name__, 0.0, request_id)),
        "response": readable,
        **common,
    }
    try:
        return cls(message, **fields)
    except Exception as exc:
        # A user's class (`status_classes`, `classify`) whose __init__ refuses what every
        # error is built with; named alone: the message may quote the body.
        raise ConfigurationError(
            f"{cls.__qualname__} cannot be built as an error: its __init__ must take the "
            "message and pass every keyword argument on to APIError's"
        ) from exc


def _parse(
    readable: httpx.Response, body: bytes, text: str | None, policy: ErrorPolicy
) -> ParsedBody:
    content_type = readable.headers.get("content-type")
    if policy.parse_body is None:
        return parse_error_body(body, content_type, text=text)
    try:
        result = policy.parse_body(readable)
        if inspect.isawaitable(result):
            # The sync transport, or `from_response` (the async transport awaits it first).
            discard(result)
            logger.warning(
                "parse_body returned an awaitable, which cannot be awaited here (by "
                "ResilientTransport or from_response); the default parser is used"
            )
            return parse_error_body(body, content_type, text=text)
        if result is None:  # not the hook's format: the built-in parser's turn
            return parse_error_body(body, content_type, text=text)
        if not isinstance(result, Mapping):
            raise TypeError(f"parse_body returned {type(result).__name__}, not a mapping")
        fields = {k: v for k, v in result.items() if k in _PARSED_KEYS}
        code = fields.get("code")
        return ParsedBody(
            message=str(fields["message"]) if fields.get("message") is not None else None,
            code=str(code) if code is not None else None,
            details=dict(fields["details"]) if isinstance(fields.get("details"), Mapping) else None,
            errors=_hook_errors(fields.get("errors")),
        )
    except Exception as exc:
        # The user's parser failed on this body: the built-in one never does. Logged by its
        # type only: the hook's message and traceback may quote the body, and with it a secret
        # the server echoed.
        logger.warning("parse_body hook raised %s; the default parser is used", type(exc).__name__)
        return parse_error_body(body, content_type, text=text)


def error_for_exception(exc: BaseException, call: Call, kind: ExceptionKind) -> APIError:
    """The typed error that stands for `exc`, raised while sending, of the `kind` it is."""
    common, redactor = _common(call)
    return kind.cls(
        redactor.text(_exception_text(exc)),
        code=kind.code,
        phase=kind.phase,
        retryable=False,
        request_id=call.client_request_id,
        history=(
            *call.history,
            AttemptRecord(None, kind.cls.__name__, 0.0, call.client_request_id),
        ),
        **common,
    )


def stream_error(
    exc: BaseException,
    call: Call,
    kind: ExceptionKind,
    status_code: int,
    request_id: str | None,
) -> APIError:
    """The error for a body that failed while the caller was reading it."""
    common, redactor = _common(call)
    # A read that timed out is a timeout too, as httpx's ReadTimeout is in its place.
    cls = StreamTimeoutError if kind.cls is RequestTimeoutError else StreamError
    return cls(
        redactor.text(f"response body failed mid-stream: {_exception_text(exc)}"),
        phase=kind.phase,
        status_code=status_code,
        request_id=request_id,
        details={"cause": type(exc).__name__},
        history=(*call.history, AttemptRecord(status_code, cls.__name__, 0.0, request_id)),
        **common,
    )


def redactor_for(call: Call) -> Redactor:
    """The scrubber for the secrets `call`'s request carries."""
    settings = call.settings
    return Redactor.for_request(
        call.request, settings.idempotency.header, settings.errors.redact_names
    )


def common(call: Call, attempts: int | None = None) -> dict[str, Any]:
    """The keyword arguments every error of `call` gets, after `attempts` attempts (by default
    the number of `call`'s attempt)."""
    request: httpx.Request | None = call.request
    attempts = call.attempt if attempts is None else attempts
    if request is None:  # an error built outside a transport, of a response without its request
        return {"idempotency_key": call.key, "attempts": attempts}
    redactor = redactor_for(call)
    key = call.key
    if key is None:
        # A caller's own key on a method the call did not look one up for.
        key = header_value(request.headers, call.settings.idempotency.encoded[1])
    return {
        "method": request.method,
        "url": redactor.url(request.url),
        "idempotency_key": key,
        "attempts": attempts,
        "request": request,
        "_redactor": redactor,
    }


def _common(call: Call) -> tuple[dict[str, Any], Redactor]:
    """What every error of `call` gets, and the scrubber for its secrets (made once)."""
    kwargs = common(call)
    redactor: Redactor | None = kwargs.get("_redactor")
    return kwargs, redactor if redactor is not None else redactor_for(call)


def _hook_errors(value: object) -> list[dict[str, Any]] | None:
    """`errors` as a `parse_body` hook gave them: mappings as they are, anything else as an
    item whose message it is."""
    if not isinstance(value, list):
        return None
    return [dict(item) if isinstance(item, Mapping) else field_error(item) for item in value]


def _exception_text(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# The policies a handed-on response carries in `extensions["resilience"]`, by name.
_POLICY_TYPES: Mapping[str, type] = {
    "errors": ErrorPolicy,
    "request_ids": RequestIdPolicy,
    "retry": RetryPolicy,
    "idempotency": IdempotencyPolicy,
}


def carried_settings(response: httpx.Response) -> Settings:
    """The policies a resilient transport handed `response` on under
    (`response.extensions["resilience"]`), as `Settings`; the defaults for one of other origin
    (or for whatever else it carries there)."""
    from ._settings import Settings

    given = response.extensions.get("resilience")
    if not isinstance(given, Mapping):
        return Settings()
    found: dict[str, Any] = {
        name: policy
        for name, policy in given.items()
        if name in _POLICY_TYPES and isinstance(policy, _POLICY_TYPES[name])
    }
    return Settings(**found)


def from_response(
    response: httpx.Response,
    *,
    errors: ErrorPolicy | None = None,
    request_ids: RequestIdPolicy | None = None,
) -> APIError:
    """The typed error for any httpx or httpx2 response, e.g. one `raise_on_status=False` let by.

    A response a resilient transport handed on carries its policies
    (`response.extensions["resilience"]`), so the error is the one that transport would have
    raised: its `status_classes`, `redact_names`, request-id headers, attempts and history.
    `errors` and `request_ids`, when given, take their place. A body already read is used as
    it is; an unread sync body is read up to `errors.max_body_bytes` and left replaying that
    part before the rest, so whoever owns the response (a client, an auth flow) still reads
    it whole; an unread async body is left alone (the error then has no body). An async
    `parse_body` is not awaited here: the built-in parser reads the body. A status below 400
    gives a plain `APIError`.
    """
    from ._call import Call
    from ._decide import REFUSALS, carries_key, mark_refused, status_retryable

    extensions = response.extensions
    settings = carried_settings(response)
    errors = errors or settings.errors
    request_ids = request_ids or settings.request_ids
    limit = errors.max_body_bytes
    backend = backend_of(response)
    try:
        raw = response.content
        encoding = None  # .content is already decoded
    except backend.response_not_read:
        raw, encoding = _read_unread(response, limit, backend)
    try:
        request: httpx.Request | None = response.request
    except RuntimeError:
        request = None
    request_id = response.extensions.get("request_id") or find_header(
        response.headers, request_ids.response_headers
    )
    readable = body_response(response, decode_content(raw, encoding, limit), request)
    cls = None if response.status_code >= 400 else APIError
    settings = dataclasses.replace(settings, errors=errors, request_ids=request_ids)
    # What the transport recorded, when it is that: a response of other origin may carry
    # anything under these names.
    attempts: Any = extensions.get("attempts")
    if not (isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0):
        attempts = 1
    history: Any = extensions.get("history")
    if not (isinstance(history, tuple) and all(isinstance(r, AttemptRecord) for r in history)):
        history = ()
    call = Call(
        request,  # type: ignore[arg-type]  # a request may be missing here
        settings,
        attempt=attempts,
        history=history,
    )
    error = error_for_response(readable, call, errors, request_id, cls=cls)
    refusal = extensions.get("refused")
    if refusal in REFUSALS:
        # The transport handed it back when the budget or the deadline refused a retry.
        mark_refused(error, refusal)
    if cls is None:
        # With the retry policy the response was handed on under (the default outside one).
        status = readable.status_code
        error.retryable = status_retryable(
            status,
            readable.headers,
            type(error),
            call.settings.retry,
            keyed=status == 409 and request is not None and carries_key(call),
        )
    return error


def _read_unread(
    response: httpx.Response, limit: int, backend: Backend
) -> tuple[bytes, str | None]:
    if not isinstance(response.stream, backend.sync_byte_stream):
        return b"", None
    raw, _ = read_prefix(response, limit, backend)
    return raw, response.headers.get("content-encoding")


def deadline_error(call: Call, timeout: float, last: APIError | None = None) -> RequestTimeoutError:
    """The error for a total deadline spent, carrying the history up to the last attempt:
    `last`, the error of an attempt the deadline cut short, or None when the time ran out
    between attempts (`call.history` holds them all then)."""
    history = call.history
    attempts = call.attempt if last is not None else call.attempt - 1
    if last is not None:
        history = (
            *history,
            AttemptRecord(last.status_code, type(last).__name__, 0.0, last.request_id),
        )
    after = f" (last: {type(last).__name__})" if last is not None else ""
    return RequestTimeoutError(
        f"total deadline of {timeout:g}s spent after {attempts} attempt"
        f"{'' if attempts == 1 else 's'}{after}",
        phase="total",
        request_id=last.request_id if last is not None else call.client_request_id,
        retry_after=last.retry_after if last is not None else None,
        history=history,
        **common(call, attempts),
    )


def circuit_open_error(call: Call, made: int, open_for: float) -> CircuitOpenError:
    """The error for an attempt the host's open circuit stopped before it was sent, after
    `made` attempts."""
    return CircuitOpenError(
        f"the circuit for {call.host} is open for {open_for:.3g}s more; the request was not sent",
        retry_after=open_for,
        request_id=call.client_request_id,
        history=call.history,
        **common(call, made),
    )


def too_large_error(call: Call, size: int, limit: int, *, attempts: int) -> RequestTooLargeError:
    """The error for a body of (at least) `size` bytes against a `limit`.

    `attempts` is 0 when it was caught before sending, 1 when a streamed body was cut off.
    """
    history = (AttemptRecord(None, RequestTooLargeError.__name__),) if attempts else ()
    return RequestTooLargeError(
        f"request body of {size} bytes exceeds the limit of {limit} bytes",
        details={"size": size, "limit": limit},
        request_id=call.client_request_id,
        history=history,
        **common(call, attempts),
    )
