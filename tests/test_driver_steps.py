"""The sync driver's basic shape against scripted outcomes: what it sends, reads and closes."""

from __future__ import annotations

import httpx

import httpx_resilience as hr
from _support import Close, ReadBody, Send, drive, make_settings, streamed
from httpx_resilience import ErrorPolicy, RetryPolicy

make = make_settings


URL = "https://api.example.com/v1/x"


def test_success_is_one_send_and_done() -> None:
    """A 2xx needs exactly one command, Send, and comes back annotated with its request id."""
    request = httpx.Request("GET", URL)
    response = streamed(200, headers={"x-request-id": "r1"})
    run = drive([response], request)
    assert run.commands == [Send(request)]
    assert run.response is response
    assert response.extensions["request_id"] == "r1"


def test_error_status_reads_then_closes_then_raises() -> None:
    """A 404 has its body read, then closed, then raises NotFoundError with the body's detail."""
    response = streamed(404, b'{"detail": "missing"}', {"content-type": "application/json"})
    run = drive([response])
    assert run.names == ["Send", "ReadBody", "Close"]
    assert run.of(ReadBody) == [ReadBody(response)]
    assert run.of(Close) == [Close(response)]
    assert isinstance(run.error, hr.NotFoundError)
    assert "missing" in str(run.error)


def test_exception_is_typed_with_its_cause() -> None:
    """An exception of the inner transport comes out typed with the original as its cause."""
    cause = httpx.ReadTimeout("slow")
    run = drive([cause], settings=make(retry=RetryPolicy(max_attempts=1)))
    assert isinstance(run.error, hr.RequestTimeoutError)
    assert run.error.__cause__ is cause


def test_no_raise_on_status_needs_no_body() -> None:
    """With raise_on_status=False and no classify hook, an error response is never read."""
    settings = make(errors=ErrorPolicy(raise_on_status=False), retry=RetryPolicy(max_attempts=1))
    response = streamed(500)
    run = drive([response], settings=settings)
    assert run.names == ["Send"]
    assert run.response is response


def test_too_large_before_the_first_command() -> None:
    """A body over max_request_bytes fails before the driver sends anything."""
    settings = make(errors=ErrorPolicy(max_request_bytes=3))
    run = drive([streamed(200)], httpx.Request("POST", URL, content=b"1234"), settings)
    assert isinstance(run.error, hr.RequestTooLargeError)
    assert run.commands == []


def test_classify_skips_an_incomplete_success_body() -> None:
    """A 2xx body bigger than the cap is handed on without classifying or closing it, still whole."""
    calls: list[int] = []

    def classify(response: httpx.Response) -> None:
        calls.append(1)

    response = streamed(200, b"x" * 70000)
    run = drive([response], settings=make(errors=ErrorPolicy(classify=classify)))
    assert run.names == ["Send", "ReadBody"]
    assert run.response is response
    assert calls == []
    assert response.read() == b"x" * 70000
