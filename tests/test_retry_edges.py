"""Edges of the retry policies that the mutation run (`make mutation`) found untested."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    Backoff,
    ConfigurationError,
    RetryEvent,
    RetryPolicy,
    ServiceUnavailableError,
)
from httpx_resilience._replay import _seeks, is_replayable

URL = "https://api.example.com/v1/thing"


@pytest.mark.parametrize(
    ("policy", "kwargs", "message"),
    [
        (Backoff, {"initial": -1}, "Backoff: initial must be >= 0"),
        (Backoff, {"multiplier": 0.5}, "Backoff: multiplier must be >= 1"),
        (Backoff, {"max_delay": -1}, "Backoff: max_delay must be seconds from 0 to 86400 (a day)"),
        (
            Backoff,
            {"jitter": "wild"},
            "Backoff: jitter must be one of ('full', 'equal', 'none', 'decorrelated') or a fraction in (0, 1]",
        ),
        (
            RetryPolicy,
            {"max_attempts": 0},
            "RetryPolicy: max_attempts must be an int from 1 (no retries) to 100",
        ),
        (RetryPolicy, {"backoff": None}, "RetryPolicy: backoff must be a Backoff"),
        (
            RetryPolicy,
            {"retry_statuses": {42}},
            "RetryPolicy: retry_statuses must be a set of HTTP statuses",
        ),
        (
            RetryPolicy,
            {"respect_retry_after": 1},
            "RetryPolicy: respect_retry_after must be a bool",
        ),
        (
            RetryPolicy,
            {"max_retry_after": -1},
            "RetryPolicy: max_retry_after must be seconds from 0 to 86400 (a day): a server "
            "asking for longer gets its error raised at once, with retry_after set",
        ),
        (
            RetryPolicy,
            {"timeout": 0},
            "RetryPolicy: timeout must be None or seconds > 0, up to 86400 (a day)",
        ),
        (
            RetryPolicy,
            {"retry_methods": "GET"},
            "RetryPolicy: retry_methods must be a set of method names",
        ),
        (
            RetryPolicy,
            {"attempt_header": ""},
            "RetryPolicy: attempt_header must be None or a header name",
        ),
    ],
    ids=repr,
)
def test_each_bad_argument_is_named_in_the_error(
    policy: Any, kwargs: dict[str, Any], message: str
) -> None:
    """The ConfigurationError names the policy, the argument and the rule it broke."""
    with pytest.raises(ConfigurationError) as info:
        policy(**kwargs)
    assert info.value.message == message


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 1}, {"max_retry_after": 0}, {"max_retry_after": 0.5}, {"timeout": 0.5}],
    ids=repr,
)
def test_retry_policy_accepts_boundary_values(kwargs: dict[str, Any]) -> None:
    """One attempt, no Retry-After waited for at all, a hint cap and a deadline under a second are valid."""
    policy = RetryPolicy(**kwargs)
    for name, value in kwargs.items():
        assert getattr(policy, name) == value


@pytest.mark.parametrize("policy", [Backoff(), RetryPolicy()], ids=["Backoff", "RetryPolicy"])
def test_policies_take_no_new_attributes(policy: Any) -> None:
    """The policies are slotted: no per-instance dict, so a misspelt attribute cannot be set."""
    assert not hasattr(policy, "__dict__")
    with pytest.raises((AttributeError, TypeError)):
        object.__setattr__(policy, "max_atempts", 5)


def test_backoff_at_the_cap_after_an_overflow_is_the_cap_itself() -> None:
    """When multiplier**retry overflows and the product lands exactly on max_delay, the wait is max_delay, not a rounding of it."""
    # exp(log(cap)) is one ulp below this cap: only the `>=` in the logarithm comparison gives
    # the cap back exactly.
    backoff = Backoff(
        initial=4.9522063077013366e-307,
        multiplier=6.813562477637405,
        max_delay=34945.496173980515,
        jitter="none",
    )
    assert backoff.delay(373, lambda: 0.5) == 34945.496173980515


# --- RetryEvent ---------------------------------------------------------------------------------


def _event() -> RetryEvent:
    request = httpx.Request("GET", "https://api.example.com/v1/x")
    error = ServiceUnavailableError("down", status_code=503, url=str(request.url), request=request)
    return RetryEvent(1, 0.25, "status 503", request, httpx.Response(503), error)


def test_retry_event_repr_names_every_field_in_order() -> None:
    """repr(RetryEvent) shows each field by name, in order, like a dataclass's own repr."""
    event = _event()
    assert repr(event) == (
        "RetryEvent(attempt=1, delay=0.25, reason='status 503', "
        "request=<Request('GET', 'https://api.example.com/v1/x')>, "
        f"response=<Response [503 Service Unavailable]>, error={event.error!r})"
    )


def test_retry_event_is_frozen_and_slotted() -> None:
    """A hook cannot change the event it was handed, nor add attributes to it."""
    event = _event()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.delay = 0.0  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


# --- Replayable files ---------------------------------------------------------------------------


class _Stream:
    """A file-like body whose `tell()` answers `position`; it seeks anywhere it is asked."""

    def __init__(self, position: object) -> None:
        self.position = position

    def __iter__(self) -> Iterator[bytes]:
        yield b"body"

    def read(self, size: int = -1) -> bytes:
        return b""

    def seekable(self) -> bool:
        return True

    def seek(self, position: object, whence: int = 0) -> object:
        if whence == 0:  # httpx asks for the end (whence 2) to learn the length
            self.position = position
        return 4

    def tell(self) -> object:
        return self.position


@pytest.mark.parametrize("position", [True, "0", 0.0, None], ids=repr)
def test_a_file_that_cannot_say_its_position_is_sent_once(position: object) -> None:
    """A `content=` file whose tell() is no int offset (a bool, a str, a float) cannot be put back: not replayable."""
    request = httpx.Request("POST", URL, content=_Stream(position))
    assert is_replayable(request) is False


def test_a_file_at_an_int_position_is_replayable() -> None:
    """The same file-like body, whose tell() gives an int, is replayable: the cases above fail on the position alone."""
    request = httpx.Request("POST", URL, content=_Stream(3))
    assert is_replayable(request) is True


def test_checking_a_multipart_body_leaves_its_files_at_their_start() -> None:
    """is_replayable moves each multipart file to its start, where httpx begins reading, and nowhere else."""
    upload = io.BytesIO(b"content")
    request = httpx.Request("POST", URL, files={"upload": ("a.txt", upload)})
    upload.seek(4)
    assert is_replayable(request) is True
    assert upload.tell() == 0


class _Unseekable:
    def seekable(self) -> bool:
        return False


class _SeekFails:
    def seekable(self) -> bool:
        return True

    def seek(self, position: int) -> None:
        raise OSError("illegal seek")


@pytest.mark.parametrize("file", [_Unseekable(), _SeekFails(), object()], ids=type)
def test_seeks_answers_false_for_a_file_that_cannot_move(file: object) -> None:
    """_seeks says False (a bool, as typed) for a file that says it cannot seek, whose seek fails, or that has none."""
    assert _seeks(file, 0) is False


def test_an_httpx2_bytes_body_is_replayable() -> None:
    """httpx2's own bytes stream (found by its class name) replays, as httpx's does."""
    import httpx2

    assert is_replayable(httpx2.Request("POST", "https://api.example.com/", content=b"x"))  # type: ignore[arg-type]
