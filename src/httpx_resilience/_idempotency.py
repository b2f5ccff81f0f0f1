"""Idempotency keys: one per logical request, the same on every attempt of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ._headers import add_header, header_value
from ._policies import Policy, check, is_header_name, is_names, materialise

__all__ = ["IdempotencyPolicy", "assign_key"]


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
    methods: frozenset[str] = field(default_factory=lambda: frozenset({"POST", "PATCH"}))
    generate: Callable[[], object] = _uuid4
    enabled: bool = True

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
        check(isinstance(self.enabled, bool), name, "enabled must be a bool")
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))


def assign_key(request: httpx.Request, policy: IdempotencyPolicy) -> str | None:
    """The request's idempotency key: the caller's, or a new one where the policy wants one."""
    existing = header_value(request.headers, policy.header.lower().encode("latin-1"))
    if existing:
        return existing
    if not policy.enabled or request.method not in policy.methods:
        return None
    key = str(policy.generate())
    add_header(request.headers, policy.header, key)
    return key
