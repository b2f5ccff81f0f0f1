"""A transport's settings: its policies, checked and worked out once, at construction.

Every request reads them as they are; one that carries overrides in
`request.extensions["resilience"]` gets its own copy with those merged, checked the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from ._backend import HTTPX, Backend
from ._errors import ConfigurationError
from ._hooks import check_hooks, has_body_hooks
from ._policies import (
    AdaptiveThrottle,
    CircuitBreaker,
    ErrorPolicy,
    IdempotencyPolicy,
    ReadOnlyDict,
    RequestIdPolicy,
    RetryBudget,
    RetryPolicy,
)
from ._state import NO_RULES, MemoryState, Rules, State

__all__ = [
    "MAX_BUFFER",
    "Settings",
    "buffer_of",
    "inner_transport",
    "rules_of",
    "settings_of",
    "state_of",
]


@dataclass(frozen=True, slots=True)
class Settings:
    """The policies in force for one request: the transport's, with per-request overrides."""

    errors: ErrorPolicy = ErrorPolicy()  # noqa: RUF009 - frozen, so sharing is safe
    request_ids: RequestIdPolicy = RequestIdPolicy()  # noqa: RUF009
    retry: RetryPolicy = RetryPolicy()  # noqa: RUF009
    idempotency: IdempotencyPolicy = IdempotencyPolicy()  # noqa: RUF009
    # The package the transport serves: httpx, or httpx2.
    backend: Backend = HTTPX
    # What the transport enforces per host: retry budget, circuit breaker, pacing, throttle.
    rules: Rules = NO_RULES
    # Whether the transport is the async one, which awaits async hooks.
    asynchronous: bool = False
    # How many bytes of a success body are read before the response is handed on, so that a
    # body failing on the way is retried (`buffer=`); 0: handed on unread.
    buffer: int = 0
    # Worked out once, for every request to read without going through the policies:
    # whether every attempt, the first too, needs its request readied (an attempt-number
    # header, a deadline's shortened timeouts);
    prepares: bool = field(init=False, repr=False, compare=False)
    # the methods whose requests need no idempotency key looked up or made (safe to resend
    # without one, and not keyed by the policy);
    unkeyed: frozenset[str] = field(init=False, repr=False, compare=False)
    # whether a request may be retried at all, and whether hosts are counted.
    retries: bool = field(init=False, repr=False, compare=False)
    counts_hosts: bool = field(init=False, repr=False, compare=False)
    # the policies in force, by the names `extensions["resilience"]` takes, for the responses
    # handed on to carry (`from_response` and `poll` build errors with them);
    policies: dict[str, Any] = field(init=False, repr=False, compare=False)
    # whether the async driver answers `classify` / `parse_body` first, awaiting them.
    awaits_body_hooks: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        retry, keyed = self.retry, self.idempotency.methods
        settle = partial(object.__setattr__, self)
        settle("prepares", retry.attempt_header is not None or retry.timeout is not None)
        settle("unkeyed", frozenset(retry.retry_methods) - frozenset(keyed))
        settle("retries", retry.max_attempts > 1)
        settle("counts_hosts", self.rules.active)
        # Read-only: every response of the transport carries this one mapping.
        settle(
            "policies",
            ReadOnlyDict(
                errors=self.errors,
                request_ids=self.request_ids,
                retry=self.retry,
                idempotency=self.idempotency,
            ),
        )
        settle("awaits_body_hooks", self.asynchronous and has_body_hooks(self.errors))

    def for_request(self, request: Any) -> Settings:
        """Apply `request.extensions["resilience"]`, checked like any policy argument."""
        overrides = request.extensions.get("resilience")
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ConfigurationError(
                'extensions["resilience"] must be a mapping of policy names to policies'
            )
        changes = dict(overrides)
        if changes.get("retry") is False:
            changes["retry"] = self.retry.replace(max_attempts=1)
        if "buffer" in changes:
            changes["buffer"] = buffer_of(changes["buffer"], 'extensions["resilience"]["buffer"]')
        for name, value in changes.items():
            expected = _OVERRIDES.get(name)
            if expected is None:
                raise ConfigurationError(
                    f'extensions["resilience"]: unknown key {name!r}; '
                    f"expected one of {sorted(_OVERRIDES)}"
                )
            if not isinstance(value, expected):
                raise ConfigurationError(
                    f'extensions["resilience"][{name!r}] must be a {expected.__name__}'
                    + (" or False" if name == "retry" else "")
                )
        errors = changes.get("errors")
        if errors is not None:
            check_hooks(
                {
                    "ErrorPolicy.classify": errors.classify,
                    "ErrorPolicy.parse_body": errors.parse_body,
                },
                self.asynchronous,
            )
        return dataclasses.replace(self, **changes)


_OVERRIDES: Mapping[str, type] = {
    "errors": ErrorPolicy,
    "request_ids": RequestIdPolicy,
    "retry": RetryPolicy,
    "idempotency": IdempotencyPolicy,
    "buffer": int,
}

# The most `buffer=` takes: a body held whole is memory, and past this it is an accident.
MAX_BUFFER = 1 << 30


def buffer_of(value: object, name: str = "buffer") -> int:
    """`buffer=` checked: a number of bytes from 0 (off) to `MAX_BUFFER`; False is 0."""
    if value is False:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"{name} must be a number of bytes (0 or False turns it off), got {value!r}"
        )
    if not 0 <= value <= MAX_BUFFER:
        raise ConfigurationError(
            f"{name} must be between 0 and {MAX_BUFFER} bytes (1 GiB), got {value}"
        )
    return value


def settings_of(
    retry: object,
    idempotency: object,
    request_ids: object,
    errors: object,
    hooks: Mapping[str, object],
    backend: Backend,
    rules: Rules,
    asynchronous: bool,
    buffer: object = 0,
) -> Settings:
    """A transport's constructor arguments, checked, as its `Settings`; `asynchronous` for the
    async transport, which awaits async hooks."""
    for name, value, expected in (
        ("retry", retry, RetryPolicy),
        ("idempotency", idempotency, IdempotencyPolicy),
        ("request_ids", request_ids, RequestIdPolicy),
        ("errors", errors, ErrorPolicy),
    ):
        if not isinstance(value, expected):
            hint = " (RetryPolicy(max_attempts=1) turns retries off)" if name == "retry" else ""
            raise ConfigurationError(f"{name} must be a {expected.__name__}{hint}, got {value!r}")
    policy = cast(ErrorPolicy, errors)
    check_hooks(
        {
            **hooks,
            "ErrorPolicy.classify": policy.classify,
            "ErrorPolicy.parse_body": policy.parse_body,
        },
        asynchronous,
    )
    return Settings(
        errors=policy,
        request_ids=cast(RequestIdPolicy, request_ids),
        retry=cast(RetryPolicy, retry),
        idempotency=cast(IdempotencyPolicy, idempotency),
        backend=backend,
        rules=rules,
        asynchronous=asynchronous,
        buffer=buffer_of(buffer),
    )


def rules_of(budget: object, breaker: object, pacing: object, throttle: object = None) -> Rules:
    """The per-host rules a transport was given, checked."""
    if budget is not None and not isinstance(budget, RetryBudget):
        raise ConfigurationError(f"budget must be a RetryBudget or None, got {budget!r}")
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigurationError(f"breaker must be a CircuitBreaker or None, got {breaker!r}")
    if not isinstance(pacing, bool):
        raise ConfigurationError(f"pacing must be a bool, got {pacing!r}")
    if throttle is not None and not isinstance(throttle, AdaptiveThrottle):
        hint = " (throttle=AdaptiveThrottle() turns it on)" if throttle is True else ""
        raise ConfigurationError(
            f"throttle must be an AdaptiveThrottle or None{hint}, got {throttle!r}"
        )
    return Rules(budget=budget, breaker=breaker, pacing=pacing, throttle=throttle)


def state_of(state: object) -> State:
    """The state a transport was given (a fresh `MemoryState` for None), checked."""
    if state is None:
        return MemoryState()
    if isinstance(state, type) or not (
        hasattr(state, "sync_store") and hasattr(state, "async_store")
    ):
        raise ConfigurationError(
            "state must be a MemoryState or a RedisState instance, got "
            + (f"the class {state.__name__}" if isinstance(state, type) else type(state).__name__)
        )
    return cast(State, state)


def inner_transport(
    transport: Any, kwargs: dict[str, Any], expected: type, default: type, package: str
) -> Any:
    """The transport a resilient one wraps: the one given, or the package's own from `kwargs`."""
    if transport is None:
        try:
            return default(**kwargs)
        except TypeError as exc:  # an unknown keyword: its name is the message
            raise ConfigurationError(f"{default.__name__}: {exc}") from exc
        except Exception as exc:
            # A value it refused: named by the argument names only, since a value (a proxy
            # URL) may carry credentials; the cause says which and why.
            raise ConfigurationError(
                f"{default.__name__} refused its arguments {sorted(kwargs)}: {type(exc).__name__}"
            ) from exc
    if kwargs:
        raise ConfigurationError(
            f"keyword arguments {sorted(kwargs)} configure the default transport; "
            "set them on the transport you pass instead"
        )
    if not isinstance(transport, expected):
        raise ConfigurationError(
            # Named by package: the openai SDK rewrites httpx2.BaseTransport's __module__.
            # By its type only: a string here is often a proxy URL, with its password.
            f"transport must be an {package}.{expected.__name__}, got "
            f"{type(transport).__module__}.{type(transport).__qualname__}"
        )
    return transport
