"""Policies: frozen, validated values that say how a transport behaves.

Each is checked once, at construction, and raises `ConfigurationError` there rather than on
some later request. `policy.replace(**changes)` returns a new, validated policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx

from ._errors import APIError, ConfigurationError, StatusError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DEFAULT_REQUEST_ID_HEADERS", "ErrorPolicy", "RequestIdPolicy"]

DEFAULT_REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
    "x-correlation-id",
)


class _Policy:
    __slots__ = ()

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied, validated like a new policy."""
        try:
            return dataclasses.replace(self, **changes)  # type: ignore[type-var]
        except TypeError as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from exc


def _check(condition: bool, policy: str, message: str) -> None:
    if not condition:
        raise ConfigurationError(f"{policy}: {message}")


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True, slots=True)
class ErrorPolicy(_Policy):
    """How responses become errors: which statuses raise, how bodies are read and parsed."""

    raise_on_status: bool = True
    max_body_bytes: int = 65536
    max_request_bytes: int | None = None
    status_classes: Mapping[int, type[StatusError]] = field(default_factory=dict)
    parse_body: Callable[[httpx.Response], Mapping[str, Any]] | None = None
    classify: Callable[[httpx.Response], type[APIError] | None] | None = None

    def __post_init__(self) -> None:
        name = "ErrorPolicy"
        _check(isinstance(self.raise_on_status, bool), name, "raise_on_status must be a bool")
        _check(_is_size(self.max_body_bytes), name, "max_body_bytes must be an int >= 0")
        _check(
            self.max_request_bytes is None or _is_size(self.max_request_bytes),
            name,
            "max_request_bytes must be None or an int >= 0",
        )
        _check(isinstance(self.status_classes, Mapping), name, "status_classes must be a mapping")
        for status, cls in self.status_classes.items():
            _check(
                isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 999,
                name,
                f"status_classes keys must be HTTP statuses >= 400, got {status!r}",
            )
            _check(
                isinstance(cls, type) and issubclass(cls, StatusError),
                name,
                f"status_classes[{status}] must be a StatusError subclass, got {cls!r}",
            )
        _check(
            self.parse_body is None or callable(self.parse_body),
            name,
            "parse_body must be callable",
        )
        _check(self.classify is None or callable(self.classify), name, "classify must be callable")
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
            )
        )


@dataclass(frozen=True, slots=True)
class RequestIdPolicy(_Policy):
    """Where the server's request id is read from, and whether the client sends its own."""

    response_headers: tuple[str, ...] = DEFAULT_REQUEST_ID_HEADERS
    send_header: str | None = None

    def __post_init__(self) -> None:
        name = "RequestIdPolicy"
        _check(
            isinstance(self.response_headers, (tuple, list))
            and all(isinstance(h, str) and h for h in self.response_headers),
            name,
            "response_headers must be a tuple of header names",
        )
        _check(
            self.send_header is None
            or (isinstance(self.send_header, str) and self.send_header != ""),
            name,
            "send_header must be None or a header name",
        )
        # Lower-cased once here so the per-response lookup does no string work.
        object.__setattr__(
            self, "response_headers", tuple(h.lower() for h in self.response_headers)
        )
