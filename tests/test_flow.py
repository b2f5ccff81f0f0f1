"""The sans-I/O flow, driven by hand: the decisions without any transport or I/O."""

from __future__ import annotations

import httpx
import pytest

import httpx_resilience as hr
from _support import make_settings
from httpx_resilience import ErrorPolicy, RetryPolicy
from httpx_resilience._flow import Body, Close, ReadBody, Send, request_flow

make = make_settings


DEFAULT = make()
URL = "https://api.example.com/v1/x"


def finish(flow: object, reply: object) -> httpx.Response:
    with pytest.raises(StopIteration) as stop:
        flow.send(reply)  # type: ignore[attr-defined]
    response: httpx.Response = stop.value.value[0]
    return response


def test_success_is_one_send_and_done() -> None:
    """A 2xx needs exactly one command, Send, and comes back annotated with its request id."""
    request = httpx.Request("GET", URL)
    flow = request_flow(request, DEFAULT)
    assert next(flow) == Send(request)
    response = httpx.Response(200, headers={"x-request-id": "r1"})
    assert finish(flow, response) is response
    assert response.extensions["request_id"] == "r1"


def test_error_status_reads_then_closes_then_raises() -> None:
    """A 404 asks for the body up to the cap, closes the response, then raises NotFoundError."""
    request = httpx.Request("GET", URL)
    flow = request_flow(request, DEFAULT)
    next(flow)
    response = httpx.Response(404, headers={"content-type": "application/json"})
    assert flow.send(response) == ReadBody(response, 65536)
    assert flow.send(Body(b'{"detail": "missing"}', True)) == Close(response)
    with pytest.raises(hr.NotFoundError, match="missing"):
        flow.send(None)


def test_exception_is_thrown_in_and_typed() -> None:
    """An exception thrown into the flow comes out typed with the original as its cause."""
    flow = request_flow(httpx.Request("GET", URL), make(retry=RetryPolicy(max_attempts=1)))
    next(flow)
    cause = httpx.ReadTimeout("slow")
    with pytest.raises(hr.RequestTimeoutError) as info:
        flow.throw(cause)
    assert info.value.__cause__ is cause


def test_no_raise_on_status_needs_no_body() -> None:
    """With raise_on_status=False and no classify hook, an error response is never read."""
    settings = make(errors=ErrorPolicy(raise_on_status=False), retry=RetryPolicy(max_attempts=1))
    flow = request_flow(httpx.Request("GET", URL), settings)
    next(flow)
    response = httpx.Response(500)
    assert finish(flow, response) is response


def test_too_large_before_the_first_command() -> None:
    """A body over max_request_bytes fails before the flow asks to send anything."""
    settings = make(errors=ErrorPolicy(max_request_bytes=3))
    flow = request_flow(httpx.Request("POST", URL, content=b"1234"), settings)
    with pytest.raises(hr.RequestTooLargeError):
        next(flow)


def test_classify_skips_an_incomplete_success_body() -> None:
    """A 2xx body bigger than the cap is handed on without classifying or closing it."""
    calls: list[int] = []

    def classify(response: httpx.Response) -> None:
        calls.append(1)

    settings = make(errors=ErrorPolicy(classify=classify))
    flow = request_flow(httpx.Request("GET", URL), settings)
    next(flow)
    response = httpx.Response(200)
    assert isinstance(flow.send(response), ReadBody)
    assert finish(flow, Body(b"x" * 70000, False)) is response
    assert calls == []
