"""Retry policies and the pure retry decisions: backoff, validation, replayability, resend safety."""

from __future__ import annotations

import dataclasses
import io
import math
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import httpx_resilience as hr
from httpx_resilience import (
    IDEMPOTENT_METHODS,
    Backoff,
    ConfigurationError,
    ResilientTransport,
    RetryPolicy,
)
from httpx_resilience._decide import may_resend
from httpx_resilience._replay import is_replayable, rewind

URL = "https://api.example.com/v1/thing"


def fixed(value: float) -> Any:
    """A `random` stand-in that always returns `value`."""
    return lambda: value


# --- Backoff: defaults and the exact sequence -------------------------------------------------


def test_backoff_defaults_are_the_specs() -> None:
    """Backoff() is initial 0.5, multiplier 2.0, max_delay 8.0, full jitter."""
    backoff = Backoff()
    assert (backoff.initial, backoff.multiplier, backoff.max_delay, backoff.jitter) == (
        0.5,
        2.0,
        8.0,
        "full",
    )


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    """With jitter "none" the waits are exactly 0.5, 1, 2, 4, 8, then stay at max_delay 8."""
    backoff = Backoff(jitter="none")
    assert [backoff.delay(n, fixed(0.99)) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_none_ignores_random() -> None:
    """Jitter "none" gives the same wait whatever the random source says."""
    backoff = Backoff(jitter="none")
    assert {backoff.delay(2, fixed(r)) for r in (0.0, 0.3, 0.999)} == {2.0}


@pytest.mark.parametrize(
    ("r", "expected"),
    [(0.0, 0.0), (0.25, 0.5), (0.5, 1.0), (0.999, 1.998)],
)
def test_backoff_full_jitter_is_uniform_in_zero_to_d(r: float, expected: float) -> None:
    """Full jitter scales d (here 2.0 for the second retry) by the random value: [0, d]."""
    assert Backoff(jitter="full").delay(2, fixed(r)) == pytest.approx(expected)


@pytest.mark.parametrize(("r", "expected"), [(0.0, 1.0), (0.5, 1.5), (0.999, 1.999)])
def test_backoff_equal_jitter_is_in_half_d_to_d(r: float, expected: float) -> None:
    """Equal jitter is d/2 plus uniform [0, d/2]: for d=2, from 1.0 up to 2.0."""
    assert Backoff(jitter="equal").delay(2, fixed(r)) == pytest.approx(expected)


@pytest.mark.parametrize(("r", "expected"), [(0.0, 1.0), (0.5, 2.0), (0.999, 2.998)])
def test_backoff_fraction_jitter_spreads_half_either_side(r: float, expected: float) -> None:
    """A fraction of 0.5 spreads d=2 uniformly over [d/2, 1.5d] = [1, 3]."""
    assert Backoff(jitter=0.5).delay(2, fixed(r)) == pytest.approx(expected)


def test_backoff_fraction_jitter_never_exceeds_max_delay() -> None:
    """Once d reaches max_delay, the upper half of a fraction's spread is cut at max_delay."""
    backoff = Backoff(jitter=0.5)
    assert backoff.delay(10, fixed(0.999)) == 8.0
    assert backoff.delay(10, fixed(0.0)) == 4.0


@pytest.mark.parametrize("jitter", ["full", "equal", 0.5, 1.0])
def test_backoff_seeded_random_is_reproducible(jitter: str | float) -> None:
    """Two identically seeded random sources give the same, jittered (not constant) waits."""
    backoff = Backoff(jitter=jitter)
    first = [backoff.delay(n, random.Random(7).random) for n in range(6)]
    again = [backoff.delay(n, random.Random(7).random) for n in range(6)]
    other = [backoff.delay(n, random.Random(8).random) for n in range(6)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("jitter", ["full", "equal", "none", 0.5])
def test_backoff_huge_retry_numbers_do_not_overflow(jitter: str | float) -> None:
    """Retry number 5000 (2.0**5000 overflows a float) still gives a wait capped at max_delay."""
    delay = Backoff(jitter=jitter).delay(5000, fixed(0.999))
    assert math.isfinite(delay)
    assert 4.0 <= delay <= 8.0


def test_backoff_zero_initial_stays_zero_for_huge_retry_numbers() -> None:
    """initial=0 means no wait at any retry number: d = min(0 * m**n, max_delay) = 0, even for n=5000."""
    assert Backoff(initial=0, jitter="none").delay(5000, fixed(0.5)) == 0.0


def _base_delay(initial: float, multiplier: float, max_delay: float, n: int) -> float:
    """SPEC's d = min(initial * multiplier**n, max_delay), computed without overflow."""
    if initial == 0 or max_delay == 0:
        return 0.0
    exponent = math.log(initial) + n * math.log(multiplier)
    if exponent >= math.log(max_delay):
        return max_delay
    # In logarithms: multiplier**n alone can overflow while the product is small.
    return min(math.exp(exponent), max_delay)


@example(initial=2.2e-309, multiplier=1.35, max_delay=100.0, jitter="none", n=2374, r=0.0)
@settings(max_examples=400, deadline=None)
@given(
    initial=st.floats(0, 100),
    multiplier=st.floats(1, 10),
    max_delay=st.floats(0, 100),
    jitter=st.one_of(
        st.sampled_from(["full", "equal", "none"]),
        st.floats(0, 1, exclude_min=True),
    ),
    n=st.integers(0, 5000),
    r=st.floats(0, 1, exclude_max=True),
)
def test_backoff_delay_is_always_within_its_modes_bounds(
    initial: float, multiplier: float, max_delay: float, jitter: str | float, n: int, r: float
) -> None:
    """For any settings, retry number and random value, the wait is finite, in [0, max_delay] and in the jitter mode's range."""
    delay = Backoff(initial, multiplier, max_delay, jitter).delay(n, fixed(r))
    d = _base_delay(initial, multiplier, max_delay, n)
    slack = 1e-9 * max(1.0, d)
    assert math.isfinite(delay)
    assert 0.0 <= delay <= max_delay
    if jitter == "full":
        low, high = 0.0, d
    elif jitter == "equal":
        low, high = d / 2, d
    elif jitter == "none":
        low, high = d, d
    else:
        assert isinstance(jitter, float)
        low, high = d * (1 - jitter), min(d * (1 + jitter), max_delay)
    assert low - slack <= delay <= high + slack


# --- Validation -------------------------------------------------------------------------------


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1},
        {"multiplier": 0.5},
        {"max_delay": -1},
        {"jitter": "wild"},
        {"jitter": 0},
        {"jitter": 1.5},
        {"jitter": -0.5},
        {"jitter": True},
        {"jitter": NAN},
        {"initial": NAN},
        {"initial": INF},
        {"multiplier": NAN},
        {"multiplier": INF},
        {"max_delay": NAN},
        {"max_delay": INF},
        {"initial": "1"},
        {"initial": True},
    ],
    ids=repr,
)
def test_backoff_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Each bad Backoff argument raises ConfigurationError, which is also a ValueError."""
    with pytest.raises(ConfigurationError) as info:
        Backoff(**kwargs)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"multiplier": 1},
        {"max_delay": 0},
        {"jitter": 1},
        {"jitter": 0.01},
        {"jitter": "equal"},
        {"jitter": "none"},
    ],
    ids=repr,
)
def test_backoff_accepts_boundary_values(kwargs: dict[str, Any]) -> None:
    """The edges of the valid ranges are accepted and stored as given."""
    backoff = Backoff(**kwargs)
    for name, value in kwargs.items():
        assert getattr(backoff, name) == value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"max_attempts": 1.5},
        {"max_attempts": True},
        {"max_attempts": "3"},
        {"backoff": "x"},
        {"backoff": None},
        {"retry_statuses": {"500"}},
        {"retry_statuses": {42}},
        {"retry_statuses": {1000}},
        {"retry_statuses": {True}},
        {"retry_statuses": 503},
        {"retry_statuses": b"\xc8"},  # bytes iterate as ints: not {200}
        {"respect_retry_after": "yes"},
        {"respect_retry_after": 1},
        {"max_retry_after": -1},
        {"max_retry_after": NAN},
        {"max_retry_after": "120"},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": NAN},
        {"timeout": True},
        {"retry_methods": "GET"},
        {"retry_methods": {1}},
        {"retry_methods": b"GET"},
        {"attempt_header": ""},
        {"attempt_header": 1},
    ],
    ids=repr,
)
def test_retry_policy_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Each bad RetryPolicy argument raises ConfigurationError, which is also a ValueError."""
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**kwargs)
    assert isinstance(info.value, ValueError)


def test_retry_policy_defaults_are_the_specs() -> None:
    """RetryPolicy() has exactly SPEC §3's defaults."""
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.backoff == Backoff(initial=0.5, multiplier=2.0, max_delay=8.0, jitter="full")
    assert policy.retry_statuses == frozenset({408, 429, *range(500, 600)} - {501, 505})
    assert policy.respect_retry_after is True
    assert policy.max_retry_after == 120.0
    assert policy.timeout is None
    assert policy.retry_methods == IDEMPOTENT_METHODS
    assert policy.attempt_header is None


def test_idempotent_methods_are_the_specs() -> None:
    """IDEMPOTENT_METHODS is the frozenset GET HEAD OPTIONS PUT DELETE TRACE."""
    assert frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}) == IDEMPOTENT_METHODS
    assert isinstance(IDEMPOTENT_METHODS, frozenset)


@pytest.mark.parametrize(
    ("policy", "field", "value"),
    [(Backoff(), "max_delay", 1.0), (RetryPolicy(), "max_attempts", 9)],
    ids=["Backoff", "RetryPolicy"],
)
def test_policies_are_frozen(policy: Any, field: str, value: object) -> None:
    """Backoff and RetryPolicy cannot be changed after construction."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(policy, field, value)
    assert getattr(policy, field) != value


def test_policies_are_hashable_values() -> None:
    """Equal policies compare and hash equal, so they can serve as cache keys."""
    assert RetryPolicy(retry_methods=["get"]) == RetryPolicy(retry_methods={"GET"})
    assert hash(RetryPolicy(retry_statuses=[503])) == hash(RetryPolicy(retry_statuses={503}))


def test_replace_returns_a_changed_copy() -> None:
    """replace() returns a new policy with the change, leaving the original as it was."""
    policy = RetryPolicy()
    changed = policy.replace(max_attempts=5)
    assert (changed.max_attempts, policy.max_attempts) == (5, 3)
    assert Backoff().replace(jitter="none").jitter == "none"


@pytest.mark.parametrize(
    ("policy", "changes"),
    [
        (RetryPolicy(), {"max_attempts": 0}),
        (RetryPolicy(), {"retry_methods": "GET"}),
        (RetryPolicy(), {"no_such_field": 1}),
        (Backoff(), {"jitter": "wild"}),
        (Backoff(), {"initial": -1}),
    ],
    ids=repr,
)
def test_replace_validates(policy: Any, changes: dict[str, Any]) -> None:
    """replace() checks its changes like a constructor: ConfigurationError, also for an unknown field."""
    with pytest.raises(ConfigurationError):
        policy.replace(**changes)


def test_retry_methods_stored_as_upper_case_frozenset() -> None:
    """retry_methods given in any case and container comes back as an upper-case frozenset."""
    policy = RetryPolicy(retry_methods=["get", "Put", "delete"])
    assert policy.retry_methods == frozenset({"GET", "PUT", "DELETE"})
    assert isinstance(policy.retry_methods, frozenset)


def test_retry_statuses_stored_as_frozenset() -> None:
    """retry_statuses given as a list is stored as a frozenset."""
    policy = RetryPolicy(retry_statuses=[409, 503])
    assert policy.retry_statuses == frozenset({409, 503})
    assert isinstance(policy.retry_statuses, frozenset)


def _once(values: list[Any]) -> Iterator[Any]:
    yield from values


@pytest.mark.parametrize(
    ("field", "given", "stored"),
    [
        ("retry_statuses", [409, 503], frozenset({409, 503})),
        ("retry_methods", ["get", "post"], frozenset({"GET", "POST"})),
    ],
)
def test_one_shot_iterables_are_not_consumed_by_validation(
    field: str, given: list[Any], stored: frozenset[Any]
) -> None:
    """A generator given for retry_statuses / retry_methods keeps its values (validation must not use them up)."""
    policy = RetryPolicy(**{field: _once(given)})
    assert getattr(policy, field) == stored


# --- is_replayable ----------------------------------------------------------------------------


def _gen() -> Iterator[bytes]:
    yield b"a"
    yield b"b"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"content": b"bytes"},
        {"content": "text"},
        {"json": {"a": 1}},
        {"data": {"field": "value"}},
        {"files": {"upload": ("a.txt", b"content")}},
        {"data": {"field": "value"}, "files": {"upload": ("a.txt", io.BytesIO(b"content"))}},
    ],
    ids=["no body", "bytes", "str", "json", "form", "multipart", "multipart with file object"],
)
def test_replayable_bodies(kwargs: dict[str, Any]) -> None:
    """Requests without a body, or with bytes, str, JSON, form or multipart bodies, can be replayed."""
    assert is_replayable(httpx.Request("POST", URL, **kwargs)) is True


@pytest.mark.parametrize(
    "make_content",
    [
        _gen,
        lambda: iter([b"a", b"b"]),
    ],
    ids=["generator", "iterator"],
)
def test_one_shot_bodies_are_not_replayable(make_content: Any) -> None:
    """A generator or an iterator passed as content is a one-shot body."""
    assert is_replayable(httpx.Request("POST", URL, content=make_content())) is False


# --- may_resend -------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["connect", "pool"])
@pytest.mark.parametrize("method", ["POST", "PATCH", "GET"])
def test_unsent_phases_may_always_resend(phase: str, method: str) -> None:
    """A connect or pool failure (never sent) may be resent for any method, key or not."""
    assert may_resend(method, False, phase, IDEMPOTENT_METHODS) is True


@pytest.mark.parametrize("phase", ["read", "write", None])
@pytest.mark.parametrize(
    ("method", "keyed", "expected"),
    [
        ("GET", False, True),
        ("HEAD", False, True),
        ("OPTIONS", False, True),
        ("PUT", False, True),
        ("DELETE", False, True),
        ("TRACE", False, True),
        ("POST", False, False),
        ("PATCH", False, False),
        ("POST", True, True),
        ("PATCH", True, True),
    ],
)
def test_after_send_only_idempotent_or_keyed(
    phase: str | None, method: str, keyed: bool, expected: bool
) -> None:
    """After a failure that may have reached the server, only retry_methods or keyed requests resend."""
    assert may_resend(method, keyed, phase, IDEMPOTENT_METHODS) is expected


def test_may_resend_follows_custom_retry_methods() -> None:
    """A method outside a custom retry_methods is not resent after sending unless keyed."""
    methods = RetryPolicy(retry_methods={"GET"}).retry_methods
    assert may_resend("PUT", False, "read", methods) is False
    assert may_resend("PUT", True, "read", methods) is True
    assert may_resend("PUT", False, "connect", methods) is True


# --- file bodies: replayable when they can be rewound, and rewound before each retry ----------

FILE_BODY = b"0123456789" * 10_000  # larger than httpx's 64 KiB reads


class _ReadOnly:
    """A pipe-like stream: `read()` and iteration, but no `seek`, `tell` or `seekable`."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(65536), b"")


class _NotSeekable(io.BytesIO):
    """A stream whose `seekable()` is False, though its `seek` would work."""

    def seekable(self) -> bool:
        return False


class _SeekFails(io.BytesIO):
    """A stream that says it is seekable but whose `seek` raises."""

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("illegal seek")


@pytest.fixture(params=["httpx", "httpx2"])
def hxm(request: pytest.FixtureRequest) -> Any:
    """The package the request is built with: httpx, or httpx2 (same stream classes, by name)."""
    if request.param == "httpx":
        return httpx
    return pytest.importorskip("httpx2")


def _sent(request: httpx.Request) -> bytes:
    """What one attempt would send: one pass over the request's stream."""
    return b"".join(request.stream)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make_file",
    [_ReadOnly, _NotSeekable, _SeekFails],
    ids=["no seek", "seekable false", "seek raises"],
)
def test_multipart_with_a_file_that_cannot_rewind_is_not_replayable(
    hxm: Any, make_file: Any
) -> None:
    """A multipart body is one-shot when its file has no seek, says it is not seekable, or fails to seek."""
    request = hxm.Request("POST", URL, files={"f": ("a.bin", make_file(FILE_BODY))})
    assert is_replayable(request) is False


def test_multipart_with_one_seekable_and_one_unseekable_file_is_not_replayable(hxm: Any) -> None:
    """One file that cannot be rewound makes the whole multipart body one-shot."""
    files = {"a": ("a.bin", io.BytesIO(FILE_BODY)), "b": ("b.bin", _ReadOnly(FILE_BODY))}
    assert is_replayable(hxm.Request("POST", URL, files=files)) is False


def test_multipart_with_seekable_files_and_bytes_is_replayable(hxm: Any) -> None:
    """A multipart body of seekable files, bytes and form fields is replayable."""
    files = {"a": ("a.bin", io.BytesIO(FILE_BODY)), "b": ("b.txt", b"inline")}
    request = hxm.Request("POST", URL, data={"field": "value"}, files=files)
    assert is_replayable(request) is True


@pytest.mark.parametrize(
    ("make_content", "expected"),
    [(io.BytesIO, True), (_ReadOnly, False), (_NotSeekable, False), (_SeekFails, False)],
    ids=["bytesio", "no seek", "seekable false", "seek raises"],
)
def test_content_file_is_replayable_only_when_seekable(
    hxm: Any, make_content: Any, expected: bool
) -> None:
    """A `content=` file is replayable only if it is seekable and its seek works."""
    request = hxm.Request("POST", URL, content=make_content(FILE_BODY))
    assert is_replayable(request) is expected


def test_real_file_content_is_replayable(hxm: Any, tmp_path: Any) -> None:
    """A file opened 'rb' passed as `content=` is replayable."""
    path = tmp_path / "body.bin"
    path.write_bytes(FILE_BODY)
    with path.open("rb") as file:
        assert is_replayable(hxm.Request("POST", URL, content=file)) is True


def test_rewind_resends_a_content_file_from_its_first_position(hxm: Any) -> None:
    """A `content=` file the caller had read into is sent again from where it stood, not from 0."""
    file = io.BytesIO(FILE_BODY)
    file.read(100)
    request = hxm.Request("POST", URL, content=file)
    assert is_replayable(request) is True
    assert _sent(request) == FILE_BODY[100:]
    assert _sent(request) == b""  # what a retry carried before: the file was used up
    rewind(request)
    assert _sent(request) == FILE_BODY[100:]


def test_rewind_seeks_every_multipart_file_to_its_start(hxm: Any) -> None:
    """Rewinding a multipart body puts each of its files back at 0, as httpx reads them."""
    first, second = io.BytesIO(FILE_BODY), io.BytesIO(b"second")
    files = {"a": ("a.bin", first), "b": ("b.bin", second)}
    request = hxm.Request("POST", URL, files=files)
    assert is_replayable(request) is True
    whole = _sent(request)
    assert (first.tell(), second.tell()) == (len(FILE_BODY), len(b"second"))
    rewind(request)
    assert (first.tell(), second.tell()) == (0, 0)
    assert _sent(request) == whole


def test_rewind_reaches_through_the_request_size_wrapper(hxm: Any) -> None:
    """A body inside the size limit's counting stream is judged and rewound as the caller's body."""
    from httpx_resilience._backend import register

    file = io.BytesIO(FILE_BODY)
    file.read(10)
    request = hxm.Request("POST", URL, content=file)
    stream = request.stream

    def too_large(sent: int) -> Any:
        raise AssertionError(f"{sent} bytes is far below the limit")

    request.stream = register(hxm).counted(stream, 10**9, too_large)
    assert is_replayable(request) is True
    assert _sent(request) == FILE_BODY[10:]
    rewind(request)
    assert _sent(request) == FILE_BODY[10:]


def test_rewind_leaves_a_bytes_body_alone(hxm: Any) -> None:
    """Rewinding a bytes body changes nothing: it is sent whole every time anyway."""
    request = hxm.Request("POST", URL, content=b"payload")
    stream = request.stream
    rewind(request)
    assert request.stream is stream
    assert _sent(request) == b"payload"


# --- Decorrelated jitter (issue 15, part 4) ---------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "r", "expected"),
    [(None, 0.0, 0.5), (None, 0.5, 1.0), (None, 0.999, 1.499), (2.0, 0.0, 0.5), (2.0, 0.5, 3.25)],
)
def test_decorrelated_jitter_is_uniform_from_initial_to_three_times_the_wait_before(
    previous: float | None, r: float, expected: float
) -> None:
    """Uniform in [initial, 3 × previous]: before the first retry previous is initial (0.5),
    so [0.5, 1.5]; after a wait of 2 s, [0.5, 6]."""
    backoff = Backoff(jitter="decorrelated")
    assert backoff.delay(0, fixed(r), previous) == pytest.approx(expected)


def test_decorrelated_jitter_is_capped_and_ignores_the_retry_number() -> None:
    """The wait never passes max_delay; it grows from the wait before, not from `retry`."""
    backoff = Backoff(jitter="decorrelated", max_delay=4.0)
    assert backoff.delay(0, fixed(0.999), 100.0) == 4.0
    assert backoff.delay(0, fixed(0.5), 1.0) == backoff.delay(9, fixed(0.5), 1.0)


@settings(max_examples=400, deadline=None)
@given(
    initial=st.floats(0, 100),
    max_delay=st.floats(0, 100),
    previous=st.one_of(st.none(), st.floats(0, 1000)),
    n=st.integers(0, 5000),
    r=st.floats(0, 1, exclude_max=True),
)
def test_decorrelated_delay_is_always_within_its_bounds(
    initial: float, max_delay: float, previous: float | None, n: int, r: float
) -> None:
    """For any settings, wait before and random value: finite, in [0, max_delay], at least
    min(initial, max_delay) and at most 3 × the wait before (initial before the first)."""
    delay = Backoff(initial, 2.0, max_delay, "decorrelated").delay(n, fixed(r), previous)
    grown = 3 * (previous if previous else initial)
    slack = 1e-9 * max(1.0, grown)
    assert math.isfinite(delay)
    assert 0.0 <= delay <= max_delay
    assert min(initial, max_delay) - slack <= delay <= max(initial, grown) + slack


def test_decorrelated_waits_grow_from_the_wait_before_through_the_transport() -> None:
    """Through the transport each wait is drawn from [initial, 3 × the wait before], the wait
    before being the one the call's history records."""
    waits: list[float] = []
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        retry=RetryPolicy(
            max_attempts=5, backoff=Backoff(initial=0.1, max_delay=100.0, jitter="decorrelated")
        ),
        sleep=waits.append,
        budget=None,
    )
    transport._random = fixed(0.999)  # the top of each range
    with httpx.Client(transport=transport) as client, pytest.raises(hr.ServiceUnavailableError):
        client.get("https://api.example.com/")
    assert waits == pytest.approx([0.2998, 0.8992, 2.6952, 8.0776], rel=1e-3)
