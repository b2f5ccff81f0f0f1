"""Pure readers of the response headers that matter to errors and retries.

Request ids, `Retry-After` / `retry-after-ms`, `x-should-retry`, and the rate-limit headers in
their common dialects (`x-ratelimit-*`, OpenAI's per-resource variants and the IETF `RateLimit`
fields). Every reader takes plain values and never raises on a header a server got wrong.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any

__all__ = [
    "RateLimitInfo",
    "add_header",
    "find_header",
    "header_value",
    "parse_rate_limit",
    "parse_retry_after",
    "parse_should_retry",
    "scan_response_headers",
]

# ASCII digits only: float() would accept "١٢" or "1e400" or "nan", none of which a server
# means as a number of seconds.
_SECONDS = re.compile(r"\s*(\d{1,15}(?:\.\d{1,9})?)\s*", re.ASCII)
_INTEGER = re.compile(r"\s*(\d{1,18})\s*", re.ASCII)
# OpenAI-style durations: "1s", "6m0s", "20ms", "1h2m3.5s".
_DURATION = re.compile(
    r"\s*(?:(\d{1,9})h)?(?:(\d{1,9})m(?!s))?(?:(\d{1,9}(?:\.\d{1,9})?)s)?(?:(\d{1,12})ms)?\s*",
    re.ASCII,
)
# A reset value above this is a Unix timestamp, not a number of seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000.0
_STRUCTURED_ITEM = re.compile(r"([a-z]+)\s*=\s*\"?([^,;\"\s]*)\"?", re.ASCII | re.IGNORECASE)


def header_value(headers: Any, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes) in an `httpx.Headers`.

    One pass over httpx's own list of (raw, lower, value) triples: `Headers.get` lower-cases
    and encodes its argument and joins repeated values, several times slower per call, and
    this runs on every request.
    """
    items = getattr(headers, "_list", None)
    if items is None:  # not httpx's Headers as we know it: the public, slower way
        value: str | None = headers.get(name.decode("latin-1"))
        return value
    for _, key, raw in items:
        if key == name:
            return str(raw.decode(headers.encoding))
    return None


def add_header(headers: Any, name: str, value: str) -> None:
    """Add header `name`, known to be absent, to an `httpx.Headers`.

    Appends to httpx's list directly when both are ASCII: `Headers.__setitem__` works out the
    encoding of every header present and searches for duplicates first, several times the cost,
    and every POST pays for this.
    """
    items = getattr(headers, "_list", None)
    if items is None or not (name.isascii() and value.isascii()):
        headers[name] = value
        return
    raw = name.encode("ascii")
    items.append((raw, raw.lower(), value.encode("ascii")))


def scan_response_headers(headers: Any, ranks: Mapping[bytes, int]) -> tuple[str | None, bool]:
    """In one pass: the request id (the best-ranked of the named headers present) and
    whether the body has a `Content-Encoding`."""
    items = getattr(headers, "_list", None)
    if items is None:
        names = sorted(ranks, key=ranks.__getitem__)
        found = find_header(headers, [n.decode("latin-1") for n in names])
        return found, "content-encoding" in headers
    best: bytes | None = None
    best_rank = len(ranks)
    encoded = False
    for _, key, raw in items:
        rank = ranks.get(key)
        if rank is not None:
            if rank < best_rank and raw:
                best, best_rank = raw, rank
        elif key == b"content-encoding":
            encoded = True
    return (best.decode(headers.encoding) if best is not None else None), encoded


# The headers through which a server says how much of its rate-limit window is left, the
# first present winning.
_REMAINING_NAMES = (
    "x-ratelimit-remaining",
    "ratelimit-remaining",
    "x-ratelimit-remaining-requests",
)
_REMAINING_HEADERS = frozenset(name.encode("ascii") for name in _REMAINING_NAMES)


def mentions_rate_limit(headers: Any) -> bool:
    """Whether a response may say its rate-limit window is spent: a remaining count of 0, or
    an IETF `RateLimit` field. One pass over the raw headers; the parsers decide the rest."""
    items = getattr(headers, "_list", None)
    if items is None:
        return any(name in headers for name in ("ratelimit", *_REMAINING_NAMES))
    for _, key, raw in items:
        if key in _REMAINING_HEADERS:
            digits = raw.strip()
            if digits and not digits.strip(b"0"):  # "0", also written "00"
                return True
        elif key == b"ratelimit":
            return True
    return False


def find_header(headers: Mapping[str, str], names: Iterable[str]) -> str | None:
    """The value of the first of `names` present (case-insensitively) in `headers`."""
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked to wait, from `retry-after-ms` or `Retry-After`.

    `now` is the current Unix time, for the HTTP-date form. A value that is negative,
    malformed, or a date in the past gives None: the caller falls back to its own backoff.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        match = _SECONDS.fullmatch(millis)
        if match is not None:
            return float(match.group(1)) / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    match = _SECONDS.fullmatch(value)
    if match is not None:
        return float(match.group(1))
    return _seconds_until_date(value, now)


def _seconds_until_date(value: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        # A date without a zone is taken as UTC, as HTTP dates always are.
        if when.tzinfo is None:
            timestamp = when.replace(tzinfo=timezone.utc).timestamp()
        else:
            timestamp = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    delay = timestamp - now
    return delay if delay > 0 else None


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """The server's own verdict from `x-should-retry` or `stripe-should-retry`, if it gave one."""
    value = headers.get("x-should-retry") or headers.get("stripe-should-retry")
    if value is None:
        return None
    value = value.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """The rate-limit window a response described; `reset` is in seconds from now."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None


_EMPTY = RateLimitInfo()


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimitInfo:
    """Limit, remaining and reset from whichever rate-limit header dialect the server speaks."""
    limit = _first_int(
        headers, ("x-ratelimit-limit", "ratelimit-limit", "x-ratelimit-limit-requests")
    )
    remaining = _first_int(headers, _REMAINING_NAMES)
    reset = None
    for name in ("x-ratelimit-reset", "ratelimit-reset", "x-ratelimit-reset-requests"):
        value = headers.get(name)
        reset = _parse_reset(value, now) if value is not None else None
        if reset is not None:
            break

    structured = headers.get("ratelimit")
    if structured is not None:
        items = {k.lower(): v for k, v in _STRUCTURED_ITEM.findall(structured)}
        # Older drafts say limit=/remaining=/reset=; RFC-track drafts say r= and t=.
        remaining = (
            remaining if remaining is not None else _int(items.get("remaining", items.get("r")))
        )
        limit = limit if limit is not None else _int(items.get("limit"))
        if reset is None:
            raw_reset = items.get("reset", items.get("t"))
            reset = _parse_reset(raw_reset, now) if raw_reset is not None else None
    if limit is None:
        policy = headers.get("ratelimit-policy")
        if policy is not None:
            items = {k.lower(): v for k, v in _STRUCTURED_ITEM.findall(policy)}
            limit = _int(items.get("q"))
            if limit is None:
                limit = _int(policy.split(";", 1)[0])

    if limit is None and remaining is None and reset is None:
        return _EMPTY
    return RateLimitInfo(limit=limit, remaining=remaining, reset=reset)


def _first_int(headers: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = _int(headers.get(name))
        if value is not None:
            return value
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    match = _INTEGER.fullmatch(value)
    return int(match.group(1)) if match is not None else None


def _parse_reset(value: str, now: float) -> float | None:
    match = _SECONDS.fullmatch(value)
    if match is not None:
        seconds = float(match.group(1))
        if seconds > _EPOCH_THRESHOLD:
            seconds -= now
        return max(seconds, 0.0)
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, secs, millis = match.groups()
    total = (
        float(hours or 0) * 3600
        + float(minutes or 0) * 60
        + float(secs or 0)
        + float(millis or 0) / 1000.0
    )
    return total if math.isfinite(total) else None
