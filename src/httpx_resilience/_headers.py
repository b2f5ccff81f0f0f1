"""Pure readers of the response headers that matter to errors and retries.

Request ids, `Retry-After` / `retry-after-ms`, `x-should-retry`, and the rate-limit headers in
their common dialects (`x-ratelimit-*`, OpenAI's per-resource variants and the IETF `RateLimit`
fields). Every reader takes plain values and never raises on a header a server got wrong.
A header sent more than once (which httpx joins as "5, 5") is read as its first valid value.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
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
# What a bare number in a reset header means, servers differing: below 1e9 it is seconds from
# now (1e9 s is 31 years, far past any window); from 1e9 (2001-09-09 as a Unix time) it is epoch
# seconds; from 1e11 (year 5138 in seconds, 1973 in milliseconds) epoch milliseconds; from 1e14
# (year 5138 in milliseconds) nothing a server means, so no reset.
EPOCH_SECONDS_FROM = 1e9
EPOCH_MILLIS_FROM = 1e11
RESET_TOO_LARGE = 1e14
# Repeated headers joined into one value, as httpx and proxies do: ", " between them. A comma
# with no space after it is not taken as a list: "1,5" may be a decimal comma.
_LIST_SEPARATOR = re.compile(r",[ \t]+")
# Of such a list, the items looked at: a hostile value with thousands of commas must not cost
# thousands of date parses.
_MAX_ITEMS = 16
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
            return _decoded(raw, headers)
    return None


def add_header(headers: Any, name: str, encoded: tuple[bytes, bytes], value: str) -> None:
    """Add header `name` (ASCII; `encoded` as given and lower-cased), known to be absent, to an
    `httpx.Headers`.

    Appends to httpx's list directly when the value is ASCII: `Headers.__setitem__` works out
    the encoding of every header present and searches for duplicates first, several times the
    cost, and every POST pays for this.
    """
    items = getattr(headers, "_list", None)
    if items is None or not value.isascii():
        headers[name] = value
        return
    items.append((*encoded, value.encode("ascii")))


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
    return (_decoded(best, headers) if best is not None else None), encoded


def _decoded(raw: bytes, headers: Any) -> str:
    """One header value as `headers` decodes it, without working out `headers.encoding`.

    httpx decodes every value with the one encoding all of them fit (ASCII, else UTF-8, else
    Latin-1), found by trying each on every header: an ASCII value reads the same whichever it
    is, so only a value that is not ASCII needs it.
    """
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return str(raw.decode(headers.encoding))


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
            if digits and not digits.strip(b"0, \t"):  # "0", also "00", or repeated: "0, 0"
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


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of header `name`, repeated headers apart (`httpx.Headers.get` joins them)."""
    get_list = getattr(headers, "get_list", None)
    if get_list is not None:
        values: list[str] = get_list(name)
        return values
    value = headers.get(name)
    return [] if value is None else [value]


def _items(value: str) -> Iterator[str]:
    """What to try of one header value, in order: the whole value, then, when it holds a list
    (repeated headers joined), each item. An HTTP date split at its weekday's comma still
    reads as the same instant from the part after it."""
    yield value
    if "," not in value:
        return
    yield from _LIST_SEPARATOR.split(value, _MAX_ITEMS)[:_MAX_ITEMS]


def _first_valid(
    headers: Mapping[str, str],
    names: Iterable[str],
    parse: Callable[[str], float | None],
) -> float | None:
    """The first value `parse` reads, over the headers `names` in order and each one's values."""
    for name in names:
        for value in _values(headers, name):
            for item in _items(value):
                result = parse(item)
                if result is not None:
                    return result
    return None


def _seconds(value: str) -> float | None:
    match = _SECONDS.fullmatch(value)
    return float(match.group(1)) if match is not None else None


def _millis(value: str) -> float | None:
    match = _SECONDS.fullmatch(value)
    return float(match.group(1)) / 1000.0 if match is not None else None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked to wait, from `retry-after-ms` or `Retry-After`.

    `now` is the current Unix time, for the HTTP-date form. A value that is negative,
    malformed, or a date in the past gives None: the caller falls back to its own backoff.
    Of repeated headers, the first valid value counts.
    """
    millis = _first_valid(headers, ("retry-after-ms",), _millis)
    if millis is not None:
        return millis

    def seconds_or_date(value: str) -> float | None:
        seconds = _seconds(value)
        return seconds if seconds is not None else _seconds_until_date(value, now)

    return _first_valid(headers, ("retry-after",), seconds_or_date)


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
    reset = _first_valid(
        headers,
        ("x-ratelimit-reset", "ratelimit-reset", "x-ratelimit-reset-requests"),
        lambda value: _parse_reset(value, now),
    )

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
    value = _first_valid(headers, names, _int)
    return None if value is None else int(value)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    match = _INTEGER.fullmatch(value)
    return int(match.group(1)) if match is not None else None


def _parse_reset(value: str, now: float) -> float | None:
    """Seconds from now until the window reopens (never negative), or None if unreadable."""
    match = _SECONDS.fullmatch(value)
    if match is not None:
        number = float(match.group(1))
        if number >= RESET_TOO_LARGE:
            return None
        if number >= EPOCH_MILLIS_FROM:
            number = number / 1000.0 - now
        elif number >= EPOCH_SECONDS_FROM:
            number -= now
        return max(number, 0.0)
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
