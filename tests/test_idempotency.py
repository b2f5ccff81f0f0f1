"""Idempotency keys: which requests get one, which header carries it, and the policy's checks."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from httpx_resilience import ConfigurationError, IdempotencyPolicy
from httpx_resilience._call import assign_key

URL = "https://api.example.com/v1/thing"


def counting() -> IdempotencyPolicy:
    """A policy whose keys are "0", "1", … so each generation is visible."""
    counter = itertools.count()
    return IdempotencyPolicy(generate=lambda: str(next(counter)))


def test_defaults_are_the_specs() -> None:
    """IdempotencyPolicy() uses Idempotency-Key for POST and PATCH, enabled."""
    policy = IdempotencyPolicy()
    assert policy.header == "Idempotency-Key"
    assert policy.methods == frozenset({"POST", "PATCH"})
    assert policy.enabled is True


def test_default_generator_makes_uuid4_keys() -> None:
    """The default key is a fresh UUID4 in text form, different per request."""
    first = assign_key(httpx.Request("POST", URL), IdempotencyPolicy())
    second = assign_key(httpx.Request("POST", URL), IdempotencyPolicy())
    assert first is not None
    assert second is not None
    assert uuid.UUID(first).version == 4
    assert first != second


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_generates_a_key_and_writes_it_to_the_request(method: str) -> None:
    """A POST or PATCH without the header gets a generated key, returned and set on the request."""
    request = httpx.Request(method, URL, json={"a": 1})
    key = assign_key(request, counting())
    assert key == "0"
    assert request.headers["Idempotency-Key"] == "0"


def test_generates_once_per_request() -> None:
    """Assigning again (a retry of the same request) keeps the first key and generates nothing."""
    policy = counting()
    request = httpx.Request("POST", URL)
    assert assign_key(request, policy) == "0"
    assert assign_key(request, policy) == "0"
    assert request.headers.get_list("Idempotency-Key") == ["0"]
    assert assign_key(httpx.Request("POST", URL), policy) == "1"  # the generator ran only once


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_get_no_key(method: str) -> None:
    """GET, PUT, DELETE and other methods outside `methods` get no generated key."""
    request = httpx.Request(method, URL)
    assert assign_key(request, counting()) is None
    assert "Idempotency-Key" not in request.headers


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("header", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_callers_key_is_kept_and_returned(method: str, header: str) -> None:
    """A key the caller set, under any header case and for any method, is kept and returned."""
    request = httpx.Request(method, URL, headers={header: "caller-key"})
    assert assign_key(request, counting()) == "caller-key"
    assert request.headers.get_list("Idempotency-Key") == ["caller-key"]


def test_disabled_generates_nothing() -> None:
    """enabled=False generates no key for a POST."""
    request = httpx.Request("POST", URL)
    assert assign_key(request, IdempotencyPolicy(enabled=False)) is None
    assert "Idempotency-Key" not in request.headers


def test_disabled_still_returns_callers_key() -> None:
    """enabled=False still reports a key the caller set, so errors and retries know of it."""
    request = httpx.Request("POST", URL, headers={"Idempotency-Key": "mine"})
    assert assign_key(request, IdempotencyPolicy(enabled=False)) == "mine"


def test_custom_header() -> None:
    """A custom header carries the key; the default header is then neither set nor read."""
    policy = IdempotencyPolicy(header="X-Request-Key", generate=lambda: "k1")
    request = httpx.Request("POST", URL)
    assert assign_key(request, policy) == "k1"
    assert request.headers["x-request-key"] == "k1"
    assert "Idempotency-Key" not in request.headers
    other = httpx.Request("POST", URL, headers={"Idempotency-Key": "ignored"})
    assert assign_key(other, policy) == "k1"


def test_custom_methods_are_normalised_to_upper_case() -> None:
    """methods given in lower case are stored upper-case and select the methods that get a key."""
    policy = IdempotencyPolicy(methods={"put", "Delete"}, generate=lambda: "k")
    assert policy.methods == frozenset({"PUT", "DELETE"})
    assert assign_key(httpx.Request("PUT", URL), policy) == "k"
    assert assign_key(httpx.Request("DELETE", URL), policy) == "k"
    assert assign_key(httpx.Request("POST", URL), policy) is None


def test_methods_from_a_generator_are_kept() -> None:
    """methods given as a one-shot generator keep their values (validation must not use them up)."""

    def names() -> Iterator[str]:
        yield "post"

    assert IdempotencyPolicy(methods=names()).methods == frozenset({"POST"})


def test_custom_generate_result_is_made_text() -> None:
    """A generate returning non-strings (itertools.count().__next__) gives keys as str."""
    policy = IdempotencyPolicy(generate=itertools.count(41).__next__)
    request = httpx.Request("POST", URL)
    assert assign_key(request, policy) == "41"
    assert request.headers["Idempotency-Key"] == "41"
    assert assign_key(httpx.Request("PATCH", URL), policy) == "42"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"header": ""},
        {"header": None},
        {"header": 5},
        {"methods": "POST"},
        {"methods": {1}},
        {"methods": None},
        {"generate": 3},
        {"generate": "uuid4"},
        {"enabled": "no"},
        {"enabled": 1},
    ],
    ids=repr,
)
def test_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Each bad IdempotencyPolicy argument raises ConfigurationError, which is also a ValueError."""
    with pytest.raises(ConfigurationError) as info:
        IdempotencyPolicy(**kwargs)
    assert isinstance(info.value, ValueError)


def test_frozen_and_replace_validates() -> None:
    """The policy is frozen; replace() returns a changed copy and checks its changes."""
    policy = IdempotencyPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.enabled = False  # type: ignore[misc]
    assert policy.replace(enabled=False).enabled is False
    assert policy.enabled is True
    with pytest.raises(ConfigurationError):
        policy.replace(header="")


def test_default_keys_are_distinct_uuid4_strings() -> None:
    """The default generator gives canonical version-4 UUID text, a new one each time."""
    import uuid

    from httpx_resilience._policies import _uuid4

    keys = [_uuid4() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        parsed = uuid.UUID(key)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, key)


def test_an_empty_callers_key_is_replaced_not_doubled() -> None:
    """A POST whose caller set an empty Idempotency-Key goes with one header, a generated key:
    never the empty one and a second beside it, which servers read as no key at all."""
    request = httpx.Request("POST", "https://api.example.com/v1/x", headers={"Idempotency-Key": ""})
    key = assign_key(request, IdempotencyPolicy())
    assert key
    assert request.headers.get_list("idempotency-key") == [key]


def test_an_empty_key_on_an_unkeyed_method_is_left_alone() -> None:
    """A GET with an empty Idempotency-Key gets no key: it is neither the caller's key nor one
    the policy makes."""
    request = httpx.Request("GET", "https://api.example.com/v1/x", headers={"Idempotency-Key": ""})
    assert assign_key(request, IdempotencyPolicy()) is None
    assert request.headers.get_list("idempotency-key") == [""]


def test_a_raising_generator_is_a_configuration_error() -> None:
    """An IdempotencyPolicy.generate that raises gives a ConfigurationError naming it, its
    cause kept, not the raw exception."""

    def generate() -> str:
        raise RuntimeError("entropy pool empty")

    request = httpx.Request("POST", "https://api.example.com/v1/x")
    with pytest.raises(ConfigurationError, match="generate") as info:
        assign_key(request, IdempotencyPolicy(generate=generate))
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("blank", [" ", "\t", "  "])
def test_a_blank_callers_key_is_replaced_like_an_empty_one(blank: str) -> None:
    """A key of whitespace is no key (HTTP strips it to nothing): replaced by one generated key."""
    request = httpx.Request(
        "POST", "https://api.example.com/v1/x", headers={"Idempotency-Key": blank}
    )
    key = assign_key(request, IdempotencyPolicy())
    assert key
    assert key.strip() == key
    assert request.headers.get_list("idempotency-key") == [key]


def test_the_callers_key_after_an_empty_header_is_kept_and_sent_alone() -> None:
    """An empty Idempotency-Key before the caller's real one: the real key is the request's,
    sent once, without the empty header servers would read first."""
    request = httpx.Request(
        "POST",
        "https://api.example.com/v1/x",
        headers=[("Idempotency-Key", ""), ("Idempotency-Key", "order-42")],
    )
    assert assign_key(request, IdempotencyPolicy()) == "order-42"
    assert request.headers.get_list("idempotency-key") == ["order-42"]
