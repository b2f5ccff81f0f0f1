"""Tests for the pure header readers in ``httpx_resilience._headers``."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from httpx_resilience import RequestIdPolicy
from httpx_resilience._headers import (
    RateLimitInfo,
    find_header,
    header_value,
    parse_rate_limit,
    parse_retry_after,
    parse_should_retry,
    scan_response_headers,
)

NOW = 1_700_000_000.0


def http_date(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, tz=timezone.utc), usegmt=True)


def headers(*pairs: tuple[str, str]) -> httpx.Headers:
    # Values go in as UTF-8 bytes so non-ASCII text reaches the parser as a server would send it.
    return httpx.Headers([(name.encode(), value.encode("utf-8")) for name, value in pairs])


def retry_after(value: str) -> float | None:
    return parse_retry_after(headers(("Retry-After", value)), NOW)


# --- find_header ------------------------------------------------------------


def test_find_header_returns_first_present_name_in_given_order() -> None:
    """The order of `names`, not the order of the headers, decides which value wins."""
    h = httpx.Headers({"B-Id": "b", "A-Id": "a"})
    assert find_header(h, ("a-id", "b-id")) == "a"
    assert find_header(h, ("b-id", "a-id")) == "b"


def test_find_header_is_case_insensitive() -> None:
    """A lower-case name finds a header the server sent in mixed case."""
    assert find_header(httpx.Headers({"X-Request-ID": "req_1"}), ("x-request-id",)) == "req_1"


def test_find_header_skips_missing_names() -> None:
    """Names absent from the headers are passed over for a later one that is present."""
    h = httpx.Headers({"x-correlation-id": "corr_9"})
    assert find_header(h, ("x-request-id", "request-id", "x-correlation-id")) == "corr_9"


def test_find_header_skips_empty_values() -> None:
    """An empty header value does not count as present."""
    h = httpx.Headers({"x-request-id": "", "request-id": "req_2"})
    assert find_header(h, ("x-request-id", "request-id")) == "req_2"


def test_find_header_none_when_nothing_matches() -> None:
    """No listed header present gives None."""
    assert find_header(httpx.Headers({"content-type": "text/plain"}), ("x-request-id",)) is None


# --- parse_retry_after --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        ("120", 120.0),
        ("1.5", 1.5),
        ("0.25", 0.25),
        (" 7 ", 7.0),
        ("\t2.5 ", 2.5),
    ],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    """Integer and decimal seconds (with surrounding whitespace) are read as seconds."""
    assert retry_after(value) == pytest.approx(expected)


def test_retry_after_is_case_insensitive() -> None:
    """The header is found whatever case the server used for its name."""
    assert parse_retry_after(httpx.Headers({"RETRY-AFTER": "3"}), NOW) == 3.0


def test_retry_after_ms_is_milliseconds() -> None:
    """`retry-after-ms` is divided by 1000."""
    assert parse_retry_after(headers(("retry-after-ms", "1500")), NOW) == pytest.approx(1.5)


def test_retry_after_ms_wins_over_retry_after() -> None:
    """With both headers present, the millisecond one is used."""
    h = headers(("Retry-After", "10"), ("retry-after-ms", "250"))
    assert parse_retry_after(h, NOW) == pytest.approx(0.25)


def test_garbage_retry_after_ms_falls_back_to_retry_after() -> None:
    """A malformed `retry-after-ms` does not hide a valid `Retry-After`."""
    h = headers(("Retry-After", "4"), ("retry-after-ms", "soon"))
    assert parse_retry_after(h, NOW) == 4.0


def test_retry_after_http_date_in_future() -> None:
    """An HTTP-date 30 s after `now` gives about 30 seconds."""
    assert retry_after(http_date(NOW + 30)) == pytest.approx(30.0, abs=1.0)


def test_retry_after_http_date_uses_now_argument() -> None:
    """The date is measured from the `now` passed in, not the wall clock."""
    h = headers(("Retry-After", http_date(NOW + 100)))
    assert parse_retry_after(h, NOW + 60) == pytest.approx(40.0, abs=1.0)


def test_retry_after_http_date_in_past_is_none() -> None:
    """A date already gone gives None, so the caller falls back to backoff."""
    assert retry_after(http_date(NOW - 30)) is None


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 32 Foo 2015 07:28:00 GMT",
        "Mon, 01 Jan 2024 25:61:00 GMT",
        "Mon, 01 Jan 2024 00:00:00 +9999",
        "yesterday at noon",
    ],
)
def test_retry_after_malformed_date_is_none(value: str) -> None:
    """A string that is no valid HTTP-date gives None without raising."""
    assert retry_after(value) is None


def test_retry_after_negative_is_none() -> None:
    """A negative number of seconds gives None."""
    assert retry_after("-5") is None


@pytest.mark.parametrize(
    "value",
    ["soon", "", "   ", "1e3", "nan", "NaN", "inf", "-inf", "0x10", "1,5", "5s", "+5", "1.2.3"],
)
def test_retry_after_garbage_is_none(value: str) -> None:
    """Non-numeric, exponent, NaN, infinity and hex forms give None."""
    assert retry_after(value) is None


@pytest.mark.parametrize("value", ["١٢", "１２", "५"])
def test_retry_after_non_ascii_digits_are_none(value: str) -> None:
    """Digits outside ASCII (which float() would accept) give None."""
    assert retry_after(value) is None


@pytest.mark.parametrize("value", ["١٢", "nan", "-5", "1e3"])
def test_retry_after_ms_garbage_alone_is_none(value: str) -> None:
    """A malformed `retry-after-ms` with no `Retry-After` gives None."""
    assert parse_retry_after(headers(("retry-after-ms", value)), NOW) is None


def test_retry_after_huge_value_is_a_float() -> None:
    """A huge number of seconds is returned as is: capping is the retry engine's job."""
    result = retry_after("99999999999")
    assert isinstance(result, float)
    assert result == 99999999999.0


def test_retry_after_absent_is_none() -> None:
    """No hint headers at all gives None."""
    assert parse_retry_after(httpx.Headers({"content-type": "text/plain"}), NOW) is None


@settings(max_examples=300, deadline=None)
@given(seconds=st.text(), millis=st.text())
def test_retry_after_never_raises_property(seconds: str, millis: str) -> None:
    """Any text in either header gives None or a finite float >= 0, never an exception."""
    h = headers(("Retry-After", seconds), ("retry-after-ms", millis))
    result = parse_retry_after(h, NOW)
    assert result is None or (isinstance(result, float) and math.isfinite(result) and result >= 0)


@settings(max_examples=300, deadline=None)
@given(seconds=st.text())
def test_retry_after_alone_never_raises_property(seconds: str) -> None:
    """Any text in `Retry-After` alone (the date-parsing path) gives None or a finite float >= 0."""
    result = parse_retry_after(headers(("Retry-After", seconds)), NOW)
    assert result is None or (isinstance(result, float) and math.isfinite(result) and result >= 0)


@pytest.mark.parametrize(
    "pairs",
    [
        [("Retry-After", "5"), ("Retry-After", "5")],
        [("Retry-After", "5"), ("Retry-After", "9")],
        [("Retry-After", "soon"), ("Retry-After", "5")],
        [("Retry-After", "-1"), ("Retry-After", "5"), ("Retry-After", "9")],
        [("Retry-After", "5, 5")],
        [("Retry-After", "soon, 5, 9")],
    ],
    ids=repr,
)
def test_repeated_retry_after_takes_the_first_valid(pairs: list[tuple[str, str]]) -> None:
    """Repeated `Retry-After` headers (httpx joins them as "5, 5") give the first valid value."""
    assert parse_retry_after(headers(*pairs), NOW) == 5.0


def test_repeated_retry_after_in_a_plain_mapping() -> None:
    """A plain mapping holding the joined value reads the same as the repeated headers."""
    assert parse_retry_after({"retry-after": "5, 9"}, NOW) == 5.0


def test_repeated_retry_after_dates_take_the_first() -> None:
    """Two HTTP dates (each with its own comma) joined: the first one is read."""
    first, second = http_date(NOW + 30), http_date(NOW + 90)
    joined = parse_retry_after({"retry-after": f"{first}, {second}"}, NOW)
    repeated = parse_retry_after(headers(("Retry-After", first), ("Retry-After", second)), NOW)
    assert joined == repeated == pytest.approx(30.0, abs=1.0)


def test_repeated_retry_after_date_after_garbage() -> None:
    """A garbage value before a date does not hide the date."""
    h = {"retry-after": f"soon, {http_date(NOW + 30)}, 5"}
    assert parse_retry_after(h, NOW) == pytest.approx(30.0, abs=1.0)


@pytest.mark.parametrize(
    "pairs",
    [
        [("retry-after-ms", "250"), ("retry-after-ms", "250")],
        [("retry-after-ms", "soon"), ("retry-after-ms", "250"), ("Retry-After", "9")],
        [("retry-after-ms", "250, 900")],
    ],
    ids=repr,
)
def test_repeated_retry_after_ms_takes_the_first_valid(pairs: list[tuple[str, str]]) -> None:
    """Repeated `retry-after-ms` headers give the first valid value, still ahead of Retry-After."""
    assert parse_retry_after(headers(*pairs), NOW) == pytest.approx(0.25)


def test_repeated_retry_after_all_garbage_is_none() -> None:
    """Repeated values none of which is valid give None."""
    h = headers(("Retry-After", "soon"), ("Retry-After", "-1"), ("Retry-After", "later, nan"))
    assert parse_retry_after(h, NOW) is None


RETRY_AFTER_GARBAGE = st.sampled_from(["soon", "-1", "nan", "", "1e3", "Mon, 99 Foo"])


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(RETRY_AFTER_GARBAGE, max_size=4),
    first=st.integers(0, 10**6),
    after=st.lists(st.one_of(RETRY_AFTER_GARBAGE, st.integers(0, 10**6).map(str)), max_size=4),
    joined=st.booleans(),
)
def test_retry_after_first_valid_property(
    before: list[str], first: int, after: list[str], joined: bool
) -> None:
    """Whatever garbage comes before it and whatever follows, the first valid number wins."""
    values = [*before, str(first), *after]
    h = (
        headers(("Retry-After", ", ".join(values)))
        if joined
        else headers(*[("Retry-After", v) for v in values])
    )
    assert parse_retry_after(h, NOW) == float(first)


# --- parse_should_retry -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("TRUE", True), ("False", False), (" false ", False)],
)
def test_x_should_retry(value: str, expected: bool) -> None:
    """`x-should-retry` is read case-insensitively, whitespace ignored."""
    assert parse_should_retry(headers(("x-should-retry", value))) is expected


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_stripe_should_retry(value: str, expected: bool) -> None:
    """Stripe's `stripe-should-retry` is read the same way."""
    assert parse_should_retry(headers(("Stripe-Should-Retry", value))) is expected


@pytest.mark.parametrize("value", ["yes", "1", "0", "maybe", "truee", "", "   "])
def test_should_retry_garbage_is_none(value: str) -> None:
    """Anything but true/false gives None (no verdict)."""
    assert parse_should_retry(headers(("x-should-retry", value))) is None


def test_should_retry_absent_is_none() -> None:
    """No should-retry header gives None."""
    assert parse_should_retry(httpx.Headers({"content-type": "application/json"})) is None


# --- parse_rate_limit ---------------------------------------------------------


def test_x_ratelimit_headers() -> None:
    """`x-ratelimit-limit/remaining/reset` with reset in seconds."""
    h = headers(
        ("X-RateLimit-Limit", "100"), ("X-RateLimit-Remaining", "7"), ("X-RateLimit-Reset", "30")
    )
    assert parse_rate_limit(h, NOW) == RateLimitInfo(limit=100, remaining=7, reset=30.0)


def test_x_ratelimit_reset_as_unix_epoch() -> None:
    """A reset far above 1e9 is a Unix time, turned into seconds from `now`."""
    h = headers(("x-ratelimit-reset", str(int(NOW) + 45)))
    assert parse_rate_limit(h, NOW).reset == pytest.approx(45.0)


def test_x_ratelimit_reset_epoch_in_past_is_not_negative() -> None:
    """A Unix-time reset already past never gives a negative reset."""
    h = headers(("x-ratelimit-reset", str(int(NOW) - 45)))
    reset = parse_rate_limit(h, NOW).reset
    assert reset is not None
    assert reset >= 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45", 45.0),  # seconds from now
        ("999999999", 999999999.0),  # the largest number read as seconds from now (31 years)
        (str(int(NOW) + 45), 45.0),  # epoch seconds
        ("1000000000", 0.0),  # the smallest epoch second (2001-09-09): long past
        (str(int(NOW * 1000) + 45_000), 45.0),  # epoch milliseconds
        (str(int(NOW * 1000) + 1500), 1.5),
        ("100000000000", 0.0),  # the smallest epoch millisecond (1973): long past
        ("99999999999", 99999999999.0 - NOW),  # the largest epoch second (year 5138)
        (f"{NOW + 45:.3f}", 45.0),  # epoch seconds with a fraction
    ],
)
def test_x_ratelimit_reset_seconds_epoch_seconds_and_epoch_millis(
    value: str, expected: float
) -> None:
    """A numeric reset under 1e9 is seconds from now, under 1e11 epoch seconds, under 1e14 epoch ms."""
    assert parse_rate_limit(headers(("x-ratelimit-reset", value)), NOW).reset == pytest.approx(
        expected
    )


@pytest.mark.parametrize("value", ["100000000000000", "123456789012345", "999999999999999"])
def test_x_ratelimit_reset_beyond_epoch_millis_is_none(value: str) -> None:
    """A number too large for epoch milliseconds (past year 5138) is no reset at all."""
    assert parse_rate_limit(headers(("x-ratelimit-reset", value)), NOW).reset is None


@settings(max_examples=300, deadline=None)
@given(
    delta=st.floats(0, 10**6),
    now=st.floats(1.2e9, 4e9),
    form=st.sampled_from(["relative", "epoch", "epoch_ms"]),
)
def test_reset_forms_agree_property(delta: float, now: float, form: str) -> None:
    """Seconds from now, epoch seconds and epoch milliseconds of the same moment give the same reset."""
    value = {
        "relative": f"{delta:.3f}",
        "epoch": f"{now + delta:.3f}",
        "epoch_ms": f"{(now + delta) * 1000:.0f}",
    }[form]
    reset = parse_rate_limit(headers(("x-ratelimit-reset", value)), now).reset
    assert reset == pytest.approx(delta, abs=0.01)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (
            [("x-ratelimit-remaining", "0"), ("x-ratelimit-remaining", "0")],
            RateLimitInfo(remaining=0),
        ),
        (
            [("x-ratelimit-limit", "100, 100"), ("x-ratelimit-reset", "soon, 30")],
            RateLimitInfo(limit=100, reset=30.0),
        ),
        (
            [("x-ratelimit-reset", "30"), ("x-ratelimit-reset", "90")],
            RateLimitInfo(reset=30.0),
        ),
    ],
    ids=repr,
)
def test_repeated_rate_limit_headers_take_the_first_valid(
    pairs: list[tuple[str, str]], expected: RateLimitInfo
) -> None:
    """Repeated rate-limit headers (joined by httpx) are read like Retry-After: the first valid value."""
    assert parse_rate_limit(headers(*pairs), NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3s", 3723.0),
        ("2m", 120.0),
        ("1.5s", 1.5),
        ("1m30ms", 60.03),
    ],
)
def test_x_ratelimit_reset_openai_durations(value: str, expected: float) -> None:
    """OpenAI-style Go durations in the reset header are read as seconds."""
    h = headers(("x-ratelimit-reset", value))
    assert parse_rate_limit(h, NOW).reset == pytest.approx(expected)


def test_ietf_draft6_ratelimit_headers() -> None:
    """The IETF draft 6 `ratelimit-limit/remaining/reset` fields."""
    h = headers(("RateLimit-Limit", "100"), ("RateLimit-Remaining", "0"), ("RateLimit-Reset", "30"))
    assert parse_rate_limit(h, NOW) == RateLimitInfo(limit=100, remaining=0, reset=30.0)


def test_structured_ratelimit_header_with_named_items() -> None:
    """`RateLimit: limit=100, remaining=0, reset=30` gives all three values."""
    h = headers(("RateLimit", "limit=100, remaining=0, reset=30"))
    assert parse_rate_limit(h, NOW) == RateLimitInfo(limit=100, remaining=0, reset=30.0)


def test_structured_ratelimit_with_policy_header() -> None:
    """Newer drafts: `RateLimit: "default";r=0;t=30` plus `RateLimit-Policy` for the quota."""
    h = headers(("RateLimit", '"default";r=0;t=30'), ("RateLimit-Policy", '"default";q=100;w=60'))
    assert parse_rate_limit(h, NOW) == RateLimitInfo(limit=100, remaining=0, reset=30.0)


def test_ratelimit_policy_draft6_plain_number() -> None:
    """Draft 6 `RateLimit-Policy: 100;w=60` gives the limit from its leading number."""
    h = headers(("RateLimit-Remaining", "3"), ("RateLimit-Policy", "100;w=60"))
    info = parse_rate_limit(h, NOW)
    assert info.limit == 100
    assert info.remaining == 3


def test_openai_request_headers() -> None:
    """OpenAI's `x-ratelimit-*-requests` headers are read."""
    h = headers(
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    )
    assert parse_rate_limit(h, NOW) == RateLimitInfo(limit=60, remaining=59, reset=1.0)


@pytest.mark.parametrize(
    "value", ["abc", "", "-1", "1e3", "nan", "١٢", "10.5", "0x10", "inf", "1d", "s"]
)
def test_garbage_limit_and_remaining_are_none(value: str) -> None:
    """Non-integer limit or remaining values give None fields."""
    h = headers(("x-ratelimit-limit", value), ("x-ratelimit-remaining", value))
    info = parse_rate_limit(h, NOW)
    assert info.limit is None
    assert info.remaining is None


@pytest.mark.parametrize("value", ["abc", "", "  ", "-1", "1e3", "nan", "inf", "١٢", "1d", "ms"])
def test_garbage_reset_is_none(value: str) -> None:
    """An unreadable reset value gives a None reset."""
    assert parse_rate_limit(headers(("x-ratelimit-reset", value)), NOW).reset is None


def test_garbage_structured_header_gives_none_fields() -> None:
    """A `RateLimit` header with unreadable items gives None fields, no exception."""
    h = headers(("RateLimit", "limit=lots, remaining=?, reset=later"), ("RateLimit-Policy", "x"))
    assert parse_rate_limit(h, NOW) == RateLimitInfo()


def test_no_rate_limit_headers_gives_all_none() -> None:
    """A response without rate-limit headers gives an all-None RateLimitInfo."""
    info = parse_rate_limit(httpx.Headers({"content-type": "application/json"}), NOW)
    assert (info.limit, info.remaining, info.reset) == (None, None, None)


@settings(max_examples=300, deadline=None)
@given(limit=st.text(), remaining=st.text(), reset=st.text(), structured=st.text())
def test_rate_limit_never_raises_property(
    limit: str, remaining: str, reset: str, structured: str
) -> None:
    """Any text in the rate-limit headers gives ints >= 0 and a finite reset >= 0, or None."""
    h = headers(
        ("x-ratelimit-limit", limit),
        ("x-ratelimit-remaining", remaining),
        ("x-ratelimit-reset", reset),
        ("RateLimit", structured),
        ("RateLimit-Policy", structured),
    )
    info = parse_rate_limit(h, NOW)
    for value in (info.limit, info.remaining):
        assert value is None or (isinstance(value, int) and value >= 0)
    assert info.reset is None or (math.isfinite(info.reset) and info.reset >= 0)


def test_garbage_reset_falls_back_to_the_next_header() -> None:
    """A malformed x-ratelimit-reset does not hide a valid ratelimit-reset."""
    info = parse_rate_limit(
        httpx.Headers({"x-ratelimit-reset": "soon", "ratelimit-reset": "12"}), 0.0
    )
    assert info.reset == 12.0


@pytest.mark.parametrize(
    ("raw", "others"),
    [
        ("réq-1".encode(), [(b"x-note", b"plain")]),
        ("réq-1".encode("latin-1"), [(b"x-note", b"plain")]),
        (b"req-1", [(b"x-note", "ü".encode())]),
        (b"req-1", [(b"x-note", "é".encode("latin-1"))]),
    ],
    ids=["utf8-id", "latin1-id", "ascii-id-utf8-other", "ascii-id-latin1-other"],
)
def test_request_id_decodes_as_httpx_does(raw: bytes, others: list[tuple[bytes, bytes]]) -> None:
    """The request id read in one pass is the text httpx's own Headers give, whatever the bytes."""
    headers = httpx.Headers([(b"x-request-id", raw), *others])
    found, _ = scan_response_headers(headers, RequestIdPolicy().ranks)
    assert found == headers["x-request-id"]
    assert header_value(headers, b"x-request-id") == headers["x-request-id"]
