"""Edges of the header readers that the mutation run (`make mutation`) found untested."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from httpx_resilience._headers import (
    RateLimitInfo,
    add_header,
    header_value,
    mentions_rate_limit,
    parse_rate_limit,
    parse_retry_after,
    scan_response_headers,
)

NOW = 1_700_000_000.0
# The request-id headers by rank, best first, as the transport passes them.
RANKS = {b"x-request-id": 0, b"request-id": 1, b"x-amzn-requestid": 2}


def headers(*pairs: tuple[str, str]) -> httpx.Headers:
    return httpx.Headers([(name.encode(), value.encode("utf-8")) for name, value in pairs])


def http_date(timestamp: float, offset_hours: int = 0) -> str:
    zone = timezone(timedelta(hours=offset_hours))
    return format_datetime(datetime.fromtimestamp(timestamp, tz=zone))


# --- header_value ---------------------------------------------------------------------------------


def test_header_value_is_the_first_of_repeated_values() -> None:
    """header_value gives the first value of a repeated header, not httpx's joined "a, b"."""
    given = headers(("X-Request-Id", "first"), ("X-Request-Id", "second"))
    assert header_value(given, b"x-request-id") == "first"


def test_header_value_of_an_absent_header_is_none() -> None:
    """header_value gives None for a header that is not there."""
    assert header_value(headers(("Other", "x")), b"x-request-id") is None


def test_header_value_reads_a_plain_mapping() -> None:
    """Headers that are not httpx's (a plain dict) are read through get()."""
    assert header_value({"x-request-id": "abc"}, b"x-request-id") == "abc"


# --- add_header -----------------------------------------------------------------------------------


def _encoded(name: str) -> tuple[bytes, bytes]:
    raw = name.encode("ascii")
    return raw, raw.lower()


def test_add_header_adds_an_ascii_header() -> None:
    """An ASCII name and value are added as they are, the name matched case-insensitively."""
    given = headers(("Accept", "*/*"))
    add_header(given, "Idempotency-Key", _encoded("Idempotency-Key"), "k-1")
    assert given.raw == [(b"Accept", b"*/*"), (b"Idempotency-Key", b"k-1")]
    assert given["idempotency-key"] == "k-1"


def test_add_header_appends_without_looking_for_the_name() -> None:
    """add_header never searches for the name (its caller knows it is absent): a second call adds a second value."""
    given = headers(("X-Attempt", "1"))
    add_header(given, "X-Attempt", _encoded("X-Attempt"), "2")
    assert given.get_list("x-attempt") == ["1", "2"]


def test_add_header_adds_a_non_ascii_value() -> None:
    """A value outside ASCII goes through httpx's own encoding instead of failing."""
    given = headers(("Accept", "*/*"))
    add_header(given, "X-Name", _encoded("X-Name"), "Zoë")
    assert given["x-name"] == "Zoë"


def test_add_header_adds_to_a_plain_mapping() -> None:
    """Headers that are not httpx's (a plain dict) get the header by item assignment."""
    given: dict[str, str] = {}
    add_header(given, "X-Attempt", _encoded("X-Attempt"), "2")
    assert given == {"X-Attempt": "2"}


# --- scan_response_headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pairs",
    [
        [("X-Amzn-RequestId", "amzn"), ("Request-Id", "plain"), ("X-Request-Id", "best")],
        [("X-Request-Id", "best"), ("Request-Id", "plain"), ("X-Amzn-RequestId", "amzn")],
    ],
    ids=["best last", "best first"],
)
def test_the_best_ranked_request_id_wins_in_any_order(pairs: list[tuple[str, str]]) -> None:
    """Of several request-id headers, the best-ranked one is the id, wherever it stands."""
    assert scan_response_headers(headers(*pairs), RANKS) == ("best", False)


def test_an_empty_best_request_id_gives_way_to_the_next() -> None:
    """An empty value of the best-ranked header is skipped for the next one present."""
    given = headers(("X-Request-Id", ""), ("Request-Id", "plain"))
    assert scan_response_headers(given, RANKS) == ("plain", False)


def test_a_repeated_request_id_header_gives_its_first_value() -> None:
    """A request-id header sent twice gives its first value."""
    given = headers(("X-Request-Id", "first"), ("X-Request-Id", "second"))
    assert scan_response_headers(given, RANKS) == ("first", False)


def test_no_request_id_header_gives_none() -> None:
    """Without any of the named headers the id is None."""
    assert scan_response_headers(headers(("Server", "x")), RANKS) == (None, False)


def test_scan_says_whether_the_body_is_encoded() -> None:
    """The scan reports a Content-Encoding header, whatever else is there."""
    given = headers(("Content-Encoding", "gzip"), ("X-Request-Id", "id"))
    assert scan_response_headers(given, RANKS) == ("id", True)
    assert scan_response_headers(headers(("Content-Type", "text/plain")), RANKS) == (None, False)


def test_scan_reads_a_plain_mapping() -> None:
    """Headers that are not httpx's (a plain dict) are read by rank through get()."""
    given = {"request-id": "plain", "x-request-id": "best", "content-encoding": "br"}
    assert scan_response_headers(given, RANKS) == ("best", True)
    assert scan_response_headers({"request-id": "plain"}, RANKS) == ("plain", False)


# --- mentions_rate_limit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("X-RateLimit-Remaining", "0")], True),
        ([("X-RateLimit-Remaining", "00")], True),
        ([("X-RateLimit-Remaining", " 0 ")], True),
        ([("X-RateLimit-Remaining", "0, 0")], True),
        ([("RateLimit-Remaining", "0")], True),
        ([("X-RateLimit-Remaining-Requests", "0")], True),
        ([("RateLimit", "limit=10, remaining=4")], True),
        ([("X-RateLimit-Remaining", "5")], False),
        ([("X-RateLimit-Remaining", "10")], False),
        ([("X-RateLimit-Remaining", "")], False),
        ([("X-RateLimit-Limit", "0")], False),
        ([("Server", "x")], False),
    ],
    ids=repr,
)
def test_mentions_rate_limit(pairs: list[tuple[str, str]], expected: bool) -> None:
    """Only a remaining count of 0 (in any spelling) or an IETF RateLimit field may mean a spent window."""
    assert mentions_rate_limit(headers(*pairs)) is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"x-ratelimit-remaining": "3"}, True),
        ({"ratelimit": "r=3"}, True),
        ({"x-ratelimit-limit": "10"}, False),
    ],
    ids=repr,
)
def test_mentions_rate_limit_in_a_plain_mapping(given: dict[str, str], expected: bool) -> None:
    """A plain mapping is only checked for the headers' presence: the parsers decide the rest."""
    assert mentions_rate_limit(given) is expected


# --- Retry-After ------------------------------------------------------------------------------


def test_retry_after_date_with_a_zone_offset() -> None:
    """A Retry-After date written with a +02:00 offset means the same instant as in GMT."""
    value = http_date(NOW + 30, offset_hours=2)
    assert "+0200" in value
    assert parse_retry_after(headers(("Retry-After", value)), NOW) == 30.0


def test_retry_after_date_equal_to_now_is_none() -> None:
    """A Retry-After date that is exactly now asks for no wait: None, the backoff applies."""
    assert parse_retry_after(headers(("Retry-After", http_date(NOW))), NOW) is None


def test_retry_after_date_under_a_second_ahead_is_kept() -> None:
    """A date half a second after now is a wait of half a second."""
    assert parse_retry_after(headers(("Retry-After", http_date(NOW))), NOW - 0.5) == 0.5


def test_a_joined_retry_after_list_takes_the_first_valid_before_a_later_date() -> None:
    """In a joined list, a valid number ahead of a date wins: items are tried in order."""
    value = "x, 7, " + http_date(NOW + 60)
    assert parse_retry_after({"retry-after": value}, NOW) == 7.0


def test_a_joined_retry_after_list_reads_its_first_16_items() -> None:
    """Of a list joined into one value only the first 16 items are read: a 17th is never parsed."""
    sixteen = ", ".join(["x"] * 15 + ["7"])
    seventeen = ", ".join(["x"] * 16 + ["7"])
    assert parse_retry_after({"retry-after": sixteen}, NOW) == 7.0
    assert parse_retry_after({"retry-after": seventeen}, NOW) is None


def test_each_repeated_header_gets_its_own_16_items() -> None:
    """The item limit is per header sent: a valid second Retry-After after a long first one is read."""
    given = headers(("Retry-After", ", ".join(["x"] * 20)), ("Retry-After", "9"))
    assert parse_retry_after(given, NOW) == 9.0


# --- Rate-limit info ------------------------------------------------------------------------------


def test_only_a_limit_header() -> None:
    """A response with a limit and nothing else still reports that limit."""
    assert parse_rate_limit(headers(("X-RateLimit-Limit", "100")), NOW) == RateLimitInfo(limit=100)


def test_only_a_remaining_header() -> None:
    """A response with a remaining count and nothing else reports it."""
    assert parse_rate_limit(headers(("X-RateLimit-Remaining", "0")), NOW) == RateLimitInfo(
        remaining=0
    )


def test_upper_case_structured_ratelimit_keys() -> None:
    """The IETF RateLimit field's keys are read in any case: LIMIT=, REMAINING=, RESET=."""
    given = headers(("RateLimit", "LIMIT=100, REMAINING=0, RESET=30"))
    assert parse_rate_limit(given, NOW) == RateLimitInfo(limit=100, remaining=0, reset=30.0)


def test_rate_limit_info_is_a_frozen_slotted_value() -> None:
    """RateLimitInfo cannot be changed once read, nor given attributes it does not have."""
    info = RateLimitInfo(limit=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.limit = 2  # type: ignore[misc]
    assert not hasattr(info, "__dict__")
