"""Keeping secrets out of every error, repr and log line.

Two defences. Names: query parameters and headers whose names look secret are shown as
`[REDACTED]`. Values: the secrets a request carried are collected (header values, the token
part of `Authorization`, cookie values, secret query values, a URL password) and scrubbed from
any text a server sent back, since servers echo requests in error bodies more often than
anyone would like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx

__all__ = ["REDACTED", "Redactor", "is_secret_name", "redact_url"]

REDACTED = "[REDACTED]"

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_SECRET_WORDS = re.compile(r"key|token|secret|password|signature", re.IGNORECASE)
# Values shorter than this are not scrubbed from bodies: "1" or "on" would wreck every message
# and are no secret anyway.
_MIN_SECRET_LENGTH = 6
# The shortest start of a secret, cut off at the end of a capped text, that is still redacted.
_MIN_TAIL_LENGTH = 4
_CUT = "…"
_MAX_DEPTH = 32


def is_secret_name(name: str, allowed: str | None = None) -> bool:
    """Whether a header or query parameter named `name` carries a secret.

    `allowed` names the one header that looks secret but is not: the idempotency key, which
    support needs to see.
    """
    lowered = name.lower()
    if allowed is not None and lowered == allowed.lower():
        return False
    return lowered in _SECRET_HEADERS or _SECRET_WORDS.search(lowered) is not None


def redact_url(url: httpx.URL) -> str:
    """The URL as text, secret query values and any password redacted, the fragment left out.

    The fragment never reaches the server and may hold tokens (OAuth's implicit flow).
    """
    if not url.query and not url.userinfo and not url.fragment:
        return str(url)
    userinfo = ""
    if url.userinfo:
        userinfo = quote(url.username, safe="")
        userinfo += f":{REDACTED}@" if url.password else "@"
    path = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
    text = f"{url.scheme}://{userinfo}{url.netloc.decode('ascii', 'replace')}{path}"
    if url.query:
        # Each parameter kept exactly as sent, but for the value of a secret one.
        parts = []
        for part in url.query.decode("ascii", "replace").split("&"):
            name, sep, _ = part.partition("=")
            parts.append(
                f"{name}={REDACTED}" if sep and is_secret_name(unquote_plus(name)) else part
            )
        text += "?" + "&".join(parts)
    return text


class Redactor:
    """Scrubs the secret values of one request out of text and structures."""

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._secrets = tuple(unique)
        self._pattern = re.compile("|".join(map(re.escape, unique))) if unique else None

    @classmethod
    def for_request(cls, request: httpx.Request | None, allowed_header: str | None) -> Redactor:
        """Collect the secrets `request` carries."""
        if request is None:
            return cls(())
        return cls(_request_secrets(request, allowed_header))

    def text(self, value: str) -> str:
        """`value` with every known secret replaced, also one cut short at its end."""
        if self._pattern is None:
            return value
        return self._cut_tail(self._pattern.sub(REDACTED, value))

    def _cut_tail(self, value: str) -> str:
        # Messages and bodies are capped, and a cap can fall inside an echoed secret: the
        # start of a secret left where text was cut (its end, or before a "…" the parser put
        # at a cut) is still part of that secret.
        return _CUT.join(self._trim(piece) for piece in value.split(_CUT))

    def _trim(self, text: str) -> str:
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), _MIN_TAIL_LENGTH - 1, -1):
                if text.endswith(secret[:size]):
                    return text[:-size] + REDACTED
        return text

    def data(self, value: Any, depth: int = 0) -> Any:
        """A copy of a JSON-like structure with every known secret replaced in its strings."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {self.data(k, depth + 1): self.data(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v, depth + 1) for v in value]
        return value


def _request_secrets(request: httpx.Request, allowed_header: str | None) -> list[str]:
    secrets: list[str] = []
    for name, value in request.headers.multi_items():
        if not is_secret_name(name, allowed_header):
            continue
        secrets.append(value)
        lowered = name.lower()
        if lowered in ("authorization", "proxy-authorization"):
            # "Bearer sk-…": the token alone shows up in bodies too.
            secrets.extend(value.split()[1:])
        elif lowered in ("cookie", "set-cookie"):
            for part in value.split(";"):
                secrets.append(part.strip())
                secrets.append(part.partition("=")[2].strip())
    url = request.url
    if url.password:
        secrets.append(url.password)
    if url.query:
        # Servers echo the value decoded, re-encoded, or exactly as it stood in the URL.
        for part in url.query.decode("ascii", "replace").split("&"):
            name, sep, raw = part.partition("=")
            if sep and is_secret_name(unquote_plus(name)):
                value = unquote_plus(raw)
                secrets.extend((raw, value, quote(value, safe="")))
    return secrets
