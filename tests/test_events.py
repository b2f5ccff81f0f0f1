"""What hooks hear: the reprs of `ResilienceEvent` and `RetryEvent` keep secrets out of logs."""

from __future__ import annotations

import httpx
import pytest

import httpx_resilience as hr
from httpx_resilience import ResilienceEvent, RetryEvent

SECRET = "pw-canary-83c1d0"
URL = f"https://alice:{SECRET}@api.example.com/v1/x?api_key={SECRET}&page=2"
REDACTED_URL = "https://[REDACTED]@api.example.com/v1/x?api_key=[REDACTED]&page=2"


def _request() -> httpx.Request:
    return httpx.Request("GET", URL, headers={"Authorization": f"Bearer {SECRET}"})


def _error(request: httpx.Request, url: str = REDACTED_URL) -> hr.APIError:
    return hr.ServiceUnavailableError("down", status_code=503, url=url, request=request)


@pytest.mark.parametrize("with_error", [True, False])
def test_resilience_event_repr_redacts_the_url(with_error: bool) -> None:
    """repr(ResilienceEvent) shows the URL redacted, with or without an error."""
    request = _request()
    error = _error(request) if with_error else None
    event = ResilienceEvent("attempt", "https://api.example.com", 1, request=request, error=error)
    text = repr(event)
    assert SECRET not in text
    assert f"<Request('GET', '{REDACTED_URL}')>" in text


def test_resilience_event_repr_shows_the_errors_url() -> None:
    """With an error, the event shows the URL as the error redacted it (extra names too)."""
    request = _request()
    error = _error(request, url="https://api.example.com/v1/x?[as the transport redacted]")
    event = ResilienceEvent("give_up", "https://api.example.com", 3, request=request, error=error)
    assert "?[as the transport redacted]')>" in repr(event)


@pytest.mark.parametrize("kind", ["attempt", "retry", "paced", "circuit_rejected"])
def test_resilience_event_repr_redacts_the_extra_names(kind: str) -> None:
    """An event without an error redacts the URL with the transport's extra names too."""
    request = httpx.Request("GET", f"https://api.example.com/acct?pin={SECRET}&page=2")
    event = ResilienceEvent(
        kind, "https://api.example.com", 1, request=request, redact_names=frozenset({"pin"})
    )
    text = repr(event)
    assert SECRET not in text
    assert "<Request('GET', 'https://api.example.com/acct?pin=[REDACTED]&page=2')>" in text


def test_resilience_event_repr_names_every_field() -> None:
    """The repr still shows each field, in order, like the dataclass's own."""
    response = httpx.Response(503)
    event = ResilienceEvent(
        "retry", "https://api.example.com", 2, 0.5, "status 503", _request(), response
    )
    assert repr(event) == (
        "ResilienceEvent(kind='retry', host='https://api.example.com', attempt=2, delay=0.5, "
        f"reason='status 503', request=<Request('GET', '{REDACTED_URL}')>, "
        "response=<Response [503 Service Unavailable]>, error=None)"
    )


def test_resilience_event_repr_without_request() -> None:
    """A circuit event carries no request, and says so."""
    event = ResilienceEvent("circuit_open", "https://api.example.com")
    assert "request=None" in repr(event)


def test_retry_event_repr_redacts_the_url() -> None:
    """repr(RetryEvent) shows the URL as the error redacted it, and no header."""
    request = _request()
    event = RetryEvent(1, 0.25, "status 503", request, httpx.Response(503), _error(request))
    text = repr(event)
    assert SECRET not in text
    assert text.startswith(
        f"RetryEvent(attempt=1, delay=0.25, reason='status 503', "
        f"request=<Request('GET', '{REDACTED_URL}')>, response=<Response [503 Service Unavailable]>"
    )


def test_retry_event_repr_of_a_hand_built_error_without_url() -> None:
    """An error built without a URL: the event redacts the request's URL itself."""
    request = _request()
    error = hr.NetworkError("refused", request=request)
    text = repr(RetryEvent(1, 0.0, "ConnectError", request, None, error))
    assert SECRET not in text
    assert REDACTED_URL in text
