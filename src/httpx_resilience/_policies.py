"""Policies: frozen, validated values that say how a transport behaves.

Each is checked once, at construction, and raises `ConfigurationError` there rather than on
some later request. `policy.replace(**changes)` returns a new, validated policy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx

from ._errors import APIError, ConfigurationError, StatusError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DEFAULT_REQUEST_ID_HEADERS",
    "ErrorPolicy",
    "Policy",
    "RequestIdPolicy",
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
        except TypeError as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from exc


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


def is_header_name(value: object) -> bool:
    """A non-empty str."""
    return isinstance(value, str) and value != ""


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
    """

    raise_on_status: bool = True
    max_body_bytes: int = 65536
    max_request_bytes: int | None = None
    status_classes: Mapping[int, type[StatusError]] = field(default_factory=dict)
    parse_body: Callable[[httpx.Response], Mapping[str, Any] | None] | None = None
    classify: Callable[[httpx.Response], type[APIError] | None] | None = None
    redact_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        name = "ErrorPolicy"
        materialise(self, "redact_names")
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
        object.__setattr__(self, "status_classes", MappingProxyType(dict(self.status_classes)))

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
        object.__setattr__(self, "ranks", MappingProxyType(ranks))
