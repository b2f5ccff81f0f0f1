"""The call record: what `start` settles before a request's first attempt."""

from __future__ import annotations

import httpx
import pytest

from httpx_resilience import ErrorPolicy, RequestTooLargeError
from httpx_resilience._call import Call, start
from httpx_resilience._errors import AttemptRecord
from httpx_resilience._settings import Settings

URL = "https://api.example.com/v1/x"


def test_next_counts_the_attempt_and_keeps_the_history() -> None:
    """call.next(record) is the next attempt's record: its number one up, the record appended,
    the rest unchanged."""
    call = start(httpx.Request("GET", URL), Settings())
    record = AttemptRecord(503, "ServiceUnavailableError", 0.5, "r1")
    following = call.next(record)
    assert (following.attempt, following.history) == (2, (record,))
    assert following._replace(attempt=1, history=()) == call


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0661\u0662", " 12 x"], ids=["superscript", "arabic", "junk"]
)
def test_a_content_length_that_is_not_ascii_digits_is_counted_as_sent(value: str) -> None:
    """A Content-Length the caller set that is not ASCII digits is no known size: the body is
    counted as it goes out, never a raw ValueError nor a size read from other scripts' digits."""
    request = httpx.Request("POST", URL, content=b"hello")
    request.headers["Content-Length"] = value
    call = start(request, Settings(errors=ErrorPolicy(max_request_bytes=10)))
    assert isinstance(call, Call)
    assert b"".join(request.stream) == b"hello"  # type: ignore[arg-type]


def test_a_known_size_over_the_limit_fails_before_sending() -> None:
    """A body whose size is known and over max_request_bytes raises RequestTooLargeError with
    no attempt made."""
    request = httpx.Request("POST", URL, content=b"x" * 11)
    with pytest.raises(RequestTooLargeError) as info:
        start(request, Settings(errors=ErrorPolicy(max_request_bytes=10)))
    assert info.value.attempts == 0
