"""Policies: frozen, validated values that say how a transport behaves.

Each is checked once, at construction, and raises `ConfigurationError` there rather than on
some later request. `policy.replace(**changes)` returns a new, validated policy.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ._classify import DEFAULT_RETRY_STATUSES
from ._errors import APIError, ConfigurationError, StatusError
from ._waits import is_async_callable

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_REQUEST_ID_HEADERS",
    "DEFAULT_THROTTLE_STATUSES",
    "IDEMPOTENT_METHODS",
    "AdaptiveThrottle",
    "Backoff",
    "CircuitBreaker",
    "ErrorPolicy",
    "IdempotencyPolicy",
    "Policy",
    "RequestIdPolicy",
    "RetryBudget",
    "RetryPolicy",
    "check",
    "is_header_name",
    "is_names",
    "is_number",
    "materialise",
]

DEFAULT_REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
    "x-correlation-id",
)


class Policy:
    """Base of the policy values: `replace()` for a changed, validated copy."""

    __slots__ = ()

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied, validated like a new policy."""
        try:
            return dataclasses.replace(self, **changes)  # type: ignore[type-var]
        except (TypeError, ValueError) as exc:
            # A name that is no argument (ValueError for one the policy works out itself).
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from exc


class ReadOnlyDict(dict[Any, Any]):
    """A dict a frozen policy keeps: changing it raises, and it pickles, copies and goes through
    `dataclasses.asdict` as a dict does (a `MappingProxyType` does none of these)."""

    __slots__ = ("_sealed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "_sealed", False):
            self._read_only()
        super().__init__(*args, **kwargs)
        self._sealed = True

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a policy's mapping is read-only: use policy.replace(...)")

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]
    __ior__ = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


# RFC 9110's token: the characters a field name may hold.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def check(condition: bool, policy: str, message: str) -> None:
    if not condition:
        raise ConfigurationError(f"{policy}: {message}")


def is_number(value: object) -> bool:
    """An int or float that is finite, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def materialise(policy: object, *names: str) -> None:
    """Turn iterable fields into tuples before they are checked, so a generator survives."""
    for name in names:
        value = getattr(policy, name)
        if isinstance(value, Iterable) and not isinstance(value, (str, bytes, frozenset)):
            object.__setattr__(policy, name, tuple(value))


def is_statuses(value: object) -> bool:
    """A collection of HTTP statuses: ints in 100-999 (not bools, and not bytes, whose items
    would pass as ints)."""
    return (
        isinstance(value, Iterable)
        and not isinstance(value, (str, bytes))
        and all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 999 for s in value)
    )


def check_error_statuses(value: object, policy: str, field: str, why: str) -> None:
    """Refuse what is not a collection of HTTP statuses, or holds one below 400 (`why` says
    why those cannot be meant)."""
    check(is_statuses(value), policy, f"{field} must be a set of HTTP statuses")
    statuses: Iterable[int] = value  # type: ignore[assignment]
    check(
        all(status >= 400 for status in statuses),
        policy,
        f"{field} must be error statuses (400 and above): {why}",
    )


def is_header_name(value: object) -> bool:
    """A str HTTP takes as a header name: a token (RFC 9110), so ASCII with no space or colon."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def is_names(value: object) -> bool:
    """A collection of strings (not a single string)."""
    return (
        isinstance(value, Iterable)
        and not isinstance(value, (str, bytes))
        and all(isinstance(item, str) for item in value)
    )


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True, slots=True)
class ErrorPolicy(Policy):
    """How responses become errors: which statuses raise, how bodies are read and parsed.

    `redact_names` adds header and query parameter names (matched whole, in any case) to the
    ones whose values are always redacted from errors, logs, events and pickles.

    `pass_statuses` are handed back as plain responses, unread and never retried, whatever
    `raise_on_status` says: httpx's auth flows (a 401 token refresh), `event_hooks["response"]`
    and the caller's own status checks see them; `from_response(r)` raises the typed error
    afterwards.
    """

    raise_on_status: bool = True
    max_body_bytes: int = 65536
    max_request_bytes: int | None = None
    status_classes: Mapping[int, type[StatusError]] = field(default_factory=dict)
    parse_body: Callable[[httpx.Response], Mapping[str, Any] | None] | None = None
    classify: Callable[[httpx.Response], type[APIError] | None] | None = None
    # Any set of names (a literal `{"x-tenant"}` too); kept as a frozenset.
    redact_names: Collection[str] = frozenset()
    # Any set of statuses (a literal `{401}` too); kept as a frozenset.
    pass_statuses: Collection[int] = frozenset()

    def __post_init__(self) -> None:
        name = "ErrorPolicy"
        materialise(self, "redact_names", "pass_statuses")
        passed = self.pass_statuses
        check_error_statuses(passed, name, "pass_statuses", "other statuses are always handed back")
        object.__setattr__(self, "pass_statuses", frozenset(passed))
        check(isinstance(self.raise_on_status, bool), name, "raise_on_status must be a bool")
        check(_is_size(self.max_body_bytes), name, "max_body_bytes must be an int >= 0")
        check(
            self.max_request_bytes is None or _is_size(self.max_request_bytes),
            name,
            "max_request_bytes must be None or an int >= 0",
        )
        check(isinstance(self.status_classes, Mapping), name, "status_classes must be a mapping")
        for status, cls in self.status_classes.items():
            check(
                isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 999,
                name,
                f"status_classes keys must be HTTP statuses >= 400, got {status!r}",
            )
            check(
                isinstance(cls, type) and issubclass(cls, StatusError),
                name,
                f"status_classes[{status}] must be a StatusError subclass, got {cls!r}",
            )
        check(
            self.parse_body is None or callable(self.parse_body),
            name,
            "parse_body must be callable",
        )
        check(self.classify is None or callable(self.classify), name, "classify must be callable")
        check(
            is_names(self.redact_names) and all(self.redact_names),
            name,
            "redact_names must be a collection of non-empty names",
        )
        # Lower-cased once: every name is compared lower-cased.
        object.__setattr__(self, "redact_names", frozenset(n.lower() for n in self.redact_names))
        # A read-only copy: a frozen policy must not change when the caller's dict does.
        object.__setattr__(self, "status_classes", ReadOnlyDict(self.status_classes))

    def __hash__(self) -> int:
        # The generated hash would fail on the mapping; values must work as cache keys.
        return hash(
            (
                self.raise_on_status,
                self.max_body_bytes,
                self.max_request_bytes,
                frozenset(self.status_classes.items()),
                self.parse_body,
                self.classify,
                self.redact_names,
                self.pass_statuses,
            )
        )


@dataclass(frozen=True, slots=True)
class RequestIdPolicy(Policy):
    """Where the server's request id is read from, and whether the client sends its own."""

    response_headers: tuple[str, ...] = DEFAULT_REQUEST_ID_HEADERS
    send_header: str | None = None
    # Header name (lower-case bytes) -> its place in `response_headers`, for one-pass lookups.
    ranks: Mapping[bytes, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = "RequestIdPolicy"
        check(
            isinstance(self.response_headers, (tuple, list))
            and all(is_header_name(h) and h.isascii() for h in self.response_headers),
            name,
            "response_headers must be a tuple of header names",
        )
        check(
            self.send_header is None or is_header_name(self.send_header),
            name,
            "send_header must be None or a header name",
        )
        # Lower-cased once here so the per-response lookup does no string work.
        lowered = tuple(h.lower() for h in self.response_headers)
        object.__setattr__(self, "response_headers", lowered)
        ranks: dict[bytes, int] = {}
        for rank, header in enumerate(lowered):
            ranks.setdefault(header.encode("latin-1"), rank)
        object.__setattr__(self, "ranks", ReadOnlyDict(ranks))


# More attempts than this is a loop, not a retry policy: 100 attempts of the default backoff
# already wait over ten minutes.
MAX_ATTEMPTS = 100
# The longest single wait a policy may ask for: a day (what the pacing caps a pause at, too).
# Longer is no retry but an outage the caller should hear of; and time.sleep() overflows.
MAX_WAIT = 86_400.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


_JITTER_MODES = ("full", "equal", "none", "decorrelated")


@dataclass(frozen=True, slots=True)
class Backoff(Policy):
    """Exponential backoff: before the n-th retry, `min(initial * multiplier**n, max_delay)`.

    `jitter` spreads the waits of many clients: "full" (uniform in [0, d]), "equal"
    (d/2 plus uniform in [0, d/2]), "none", a fraction f (uniform in [d(1-f), d(1+f)]), or
    "decorrelated" (AWS's decorrelated jitter, Polly's default: uniform in [initial, 3 × the
    wait before], `initial` the wait before the first; `multiplier` does not apply). The
    result never exceeds `max_delay`.
    """

    initial: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: str | float = "full"

    def __post_init__(self) -> None:
        name = "Backoff"
        check(is_number(self.initial) and self.initial >= 0, name, "initial must be >= 0")
        check(is_number(self.multiplier) and self.multiplier >= 1, name, "multiplier must be >= 1")
        check(
            is_number(self.max_delay) and 0 <= self.max_delay <= MAX_WAIT,
            name,
            f"max_delay must be seconds from 0 to {MAX_WAIT:g} (a day)",
        )
        jitter = self.jitter
        if isinstance(jitter, str):
            valid = jitter in _JITTER_MODES
        else:
            valid = is_number(jitter) and 0 < jitter <= 1
        check(valid, name, f"jitter must be one of {_JITTER_MODES} or a fraction in (0, 1]")

    def delay(
        self, retry: int, random: Callable[[], float], previous: float | None = None
    ) -> float:
        """The wait before retry number `retry` (0 for the first), with jitter from `random`;
        `previous`, the wait before the attempt that failed (None before the first retry), is
        what "decorrelated" grows from."""
        if self.jitter == "decorrelated":
            low = self.initial
            grown = 3 * previous if previous is not None and previous > 0 else 3 * low
            high = max(low, grown)
            return min(max(low + random() * (high - low), 0.0), self.max_delay)
        try:
            base = min(self.initial * self.multiplier**retry, self.max_delay)
        except OverflowError:
            # multiplier**retry outgrew a float, though the product may not have (a tiny
            # `initial`): compared in logarithms instead.
            base = _log_scaled(self.initial, self.multiplier, retry, self.max_delay)
        jitter = self.jitter
        if jitter == "full":
            wait = random() * base
        elif jitter == "equal":
            wait = base / 2 + random() * base / 2
        elif jitter == "none":
            wait = base
        else:
            spread = float(jitter)
            wait = base * (1 - spread) + random() * 2 * spread * base
        return min(max(wait, 0.0), self.max_delay)


def _log_scaled(initial: float, multiplier: float, retry: int, cap: float) -> float:
    """`min(initial * multiplier**retry, cap)` where the power alone overflows a float."""
    if initial <= 0 or cap <= 0:
        return 0.0
    exponent = math.log(initial) + retry * math.log(multiplier)
    return cap if exponent >= math.log(cap) else math.exp(exponent)


def _methods(value: Iterable[str]) -> frozenset[str]:
    return frozenset(m.upper() for m in value)


@dataclass(frozen=True, slots=True)
class RetryPolicy(Policy):
    """When and how a failed attempt is repeated. `max_attempts=1` disables retries."""

    max_attempts: int = 3
    backoff: Backoff = Backoff()
    # Any set (a literal `{429, 503}` too); kept as a frozenset.
    retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = 120.0
    timeout: float | None = None
    retry_methods: Collection[str] = IDEMPOTENT_METHODS
    attempt_header: str | None = None

    def __post_init__(self) -> None:
        name = "RetryPolicy"
        # Taken as tuples first: a generator would be used up by checking it.
        materialise(self, "retry_statuses", "retry_methods")
        attempts = self.max_attempts
        check(
            isinstance(attempts, int)
            and not isinstance(attempts, bool)
            and 1 <= attempts <= MAX_ATTEMPTS,
            name,
            f"max_attempts must be an int from 1 (no retries) to {MAX_ATTEMPTS}",
        )
        check(isinstance(self.backoff, Backoff), name, "backoff must be a Backoff")
        check_error_statuses(
            self.retry_statuses, name, "retry_statuses", "a success is never retried"
        )
        respect = self.respect_retry_after
        check(isinstance(respect, bool), name, "respect_retry_after must be a bool")
        check(
            is_number(self.max_retry_after) and 0 <= self.max_retry_after <= MAX_WAIT,
            name,
            f"max_retry_after must be seconds from 0 to {MAX_WAIT:g} (a day): a server asking "
            "for longer gets its error raised at once, with retry_after set",
        )
        check(
            self.timeout is None or (is_number(self.timeout) and 0 < self.timeout <= MAX_WAIT),
            name,
            f"timeout must be None or seconds > 0, up to {MAX_WAIT:g} (a day)",
        )
        check(is_names(self.retry_methods), name, "retry_methods must be a set of method names")
        check(
            self.attempt_header is None or is_header_name(self.attempt_header),
            name,
            "attempt_header must be None or a header name",
        )
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))
        object.__setattr__(self, "retry_methods", _methods(self.retry_methods))


def _uuid4() -> str:
    """A random (version 4) UUID as text, the same as `str(uuid.uuid4())`.

    Built from the 16 random bytes directly: `uuid.UUID`'s constructor and `__str__` cost
    several times more, and every POST pays for this.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class IdempotencyPolicy(Policy):
    """Which requests get a generated idempotency key, in which header.

    A request of one of `methods` without the header gets `generate()` once, before its first
    attempt; every retry resends the same request, so the server sees one key per logical
    request and can run it once. A key the caller set is kept, whatever the method.
    """

    header: str = "Idempotency-Key"
    # Any set of method names (a literal too); kept as a frozenset, upper-cased.
    methods: Collection[str] = field(default_factory=lambda: frozenset({"POST", "PATCH"}))
    generate: Callable[[], object] = _uuid4
    enabled: bool = True
    # The header's name as httpx keeps it, (as given, lower-cased), encoded once here: every
    # POST looks it up and adds it.
    encoded: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = "IdempotencyPolicy"
        materialise(self, "methods")
        check(
            is_header_name(self.header) and self.header.isascii(),
            name,
            "header must be a header name",
        )
        check(is_names(self.methods), name, "methods must be a set of method names")
        check(callable(self.generate), name, "generate must be callable")
        check(
            not is_async_callable(self.generate),
            name,
            "generate must be a plain function: the key is made before the first attempt, "
            "without awaiting (an async one would send a coroutine's repr as the key)",
        )
        check(isinstance(self.enabled, bool), name, "enabled must be a bool")
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        raw = self.header.encode("ascii")
        object.__setattr__(self, "encoded", (raw, raw.lower()))


@dataclass(frozen=True, slots=True)
class RetryBudget(Policy):
    """Retries to a host may add at most `ratio` of its requests in the last `window` seconds.

    On top of that share, `min_per_second` retries per second (so `min_per_second * window`
    per window) are always allowed, so a client that sends little still retries. A retry the
    budget refuses is not made: the last attempt's typed error is raised as it is, its last
    history record saying `refused="retry_budget"`. A retry after a failure in which the
    request never left (connect or pool phase) costs nothing.
    """

    ratio: float = 0.1
    window: float = 10.0
    min_per_second: float = 10.0

    def __post_init__(self) -> None:
        name = "RetryBudget"
        check(
            is_number(self.ratio) and 0 <= self.ratio <= 1,
            name,
            "ratio must be a share of the requests, from 0 to 1 (budget=None turns the budget off)",
        )
        check(is_number(self.window) and self.window > 0, name, "window must be seconds > 0")
        check(
            is_number(self.min_per_second) and self.min_per_second >= 0,
            name,
            "min_per_second must be a number >= 0",
        )

    @property
    def reserve(self) -> float:
        """Retries always allowed per window."""
        return self.min_per_second * self.window


# Polly's and Microsoft.Extensions.Http.Resilience's notion of a transient HTTP failure.
DEFAULT_FAILURE_STATUSES = frozenset({408, 429, *range(500, 600)})


@dataclass(frozen=True, slots=True)
class CircuitBreaker(Policy):
    """Stop calling a host that fails: Polly's circuit breaker, with Polly's defaults.

    Every attempt is a call; it failed when it raised a transport error or got a status in
    `failure_statuses`. When at least `min_calls` calls of the last `window` seconds were made
    and at least `failure_ratio` of them failed, the circuit opens: for `open_for` seconds,
    requests fail at once with `CircuitOpenError` without touching the network. Then one
    probe is let through; a success closes the circuit, a failure opens it again. A probe that
    never reports back (its task was cancelled) is replaced after another `open_for`.
    """

    failure_ratio: float = 0.1
    min_calls: int = 100
    window: float = 30.0
    open_for: float = 5.0
    # Any set of ints (a literal `{429, 503}` too); kept as a frozenset.
    failure_statuses: Collection[int] = DEFAULT_FAILURE_STATUSES

    def __post_init__(self) -> None:
        name = "CircuitBreaker"
        materialise(self, "failure_statuses")
        ratio = self.failure_ratio
        check(is_number(ratio) and 0 < ratio <= 1, name, "failure_ratio must be in (0, 1]")
        calls = self.min_calls
        check(
            isinstance(calls, int) and not isinstance(calls, bool) and calls >= 1,
            name,
            "min_calls must be an int >= 1",
        )
        check(is_number(self.window) and self.window > 0, name, "window must be seconds > 0")
        check(is_number(self.open_for) and self.open_for > 0, name, "open_for must be seconds > 0")
        statuses = self.failure_statuses
        check(is_statuses(statuses), name, "failure_statuses must be a set of HTTP statuses")
        object.__setattr__(self, "failure_statuses", frozenset(statuses))


# The answers of a host that is shedding load: "too many requests", and "unavailable", which
# many gateways and rate limiters send instead (S3's "SlowDown", which botocore's adaptive
# mode counts as throttling, is a 503).
DEFAULT_THROTTLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class AdaptiveThrottle(Policy):
    """Send to a host no faster than it answers without throttling: a per-host send rate that
    adapts, botocore's adaptive retry mode (its CUBIC-shaped token bucket, with its constants).

    Until a host first answers with one of `statuses` (whether or not it says when to come
    back), requests to it are not limited. Then its rate is cut to `cut_to` times the rate the
    client was sending at, and grows back along a cubic curve (`growth` requests per second per
    second cubed) for as long as no throttling answer comes: slowly near the rate that was
    throttled, faster past it; never below `min_rate` requests per second. Once it is back
    above the rate that was throttled and holds nothing back (its bucket has saved up a
    second's worth of that rate), the limit is lifted. Each attempt takes a token from the
    host's bucket; with none left it waits for its own, reserved, through the transport's
    sleep (`no_wait()` skips it), unless that is further off than
    `RetryPolicy.max_retry_after` or the deadline: then it goes at once.
    """

    # Any set of statuses (a literal `{429}` too); kept as a frozenset.
    statuses: Collection[int] = DEFAULT_THROTTLE_STATUSES
    cut_to: float = 0.7
    growth: float = 0.4
    min_rate: float = 0.5

    def __post_init__(self) -> None:
        name = "AdaptiveThrottle"
        materialise(self, "statuses")
        check_error_statuses(
            self.statuses, name, "statuses", "a host throttles with an error status"
        )
        check(
            bool(self.statuses),
            name,
            "statuses must name at least one status (throttle=None turns the throttle off)",
        )
        check(
            is_number(self.cut_to) and 0 < self.cut_to < 1,
            name,
            "cut_to must be the share of the send rate kept on a throttling answer, in (0, 1)",
        )
        check(
            is_number(self.growth) and MIN_GROWTH <= self.growth <= MAX_GROWTH,
            name,
            "growth must be requests per second per second cubed, from "
            f"{MIN_GROWTH:g} to {MAX_GROWTH:g}",
        )
        check(
            is_number(self.min_rate) and MIN_RATE_FLOOR <= self.min_rate <= MAX_RATE,
            name,
            f"min_rate must be requests per second, from {MIN_RATE_FLOOR:g} to {MAX_RATE:g}",
        )
        object.__setattr__(self, "statuses", frozenset(self.statuses))


# Bounds that keep the rate arithmetic finite and meaningful: a floor under one request a day
# is a host never called again, and a rate past a million a second is no limit at all.
MIN_RATE_FLOOR = 1 / MAX_WAIT
MAX_RATE = 1e6
MAX_GROWTH = 1e6
# Below this the curve takes days to come back (K grows as growth ** (-1/3)), and its
# arithmetic overflows long before growth reaches 0.
MIN_GROWTH = 1e-3
