"""Tests for the frozen, validated policies in ``httpx_resilience._policies``."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

import httpx_resilience as hr
from httpx_resilience._errors import (
    APIError,
    ConfigurationError,
    NotFoundError,
    ServerError,
    StatusError,
)
from httpx_resilience._policies import ErrorPolicy, RequestIdPolicy

DEFAULT_IDS = (
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
    "x-correlation-id",
)


class TeapotError(StatusError):
    """A user's own status class."""


def parse_body(response: httpx.Response) -> dict[str, Any]:
    return {"message": response.text}


def classify(response: httpx.Response) -> type[APIError] | None:
    return None


# --- defaults -----------------------------------------------------------------


def test_error_policy_defaults() -> None:
    """ErrorPolicy() has the defaults SPEC §2 lists."""
    policy = ErrorPolicy()
    assert policy.raise_on_status is True
    assert policy.max_body_bytes == 65536
    assert policy.max_request_bytes is None
    assert dict(policy.status_classes) == {}
    assert policy.parse_body is None
    assert policy.classify is None


def test_request_id_policy_defaults() -> None:
    """RequestIdPolicy() reads the five default headers and sends none."""
    policy = RequestIdPolicy()
    assert policy.response_headers == DEFAULT_IDS
    assert policy.send_header is None


def test_error_policy_accepts_valid_arguments() -> None:
    """Every argument set to a valid non-default value is kept."""
    policy = ErrorPolicy(
        raise_on_status=False,
        max_body_bytes=0,
        max_request_bytes=1024,
        status_classes={418: TeapotError, 404: NotFoundError},
        parse_body=parse_body,
        classify=classify,
    )
    assert policy.raise_on_status is False
    assert policy.max_body_bytes == 0
    assert policy.max_request_bytes == 1024
    assert dict(policy.status_classes) == {418: TeapotError, 404: NotFoundError}
    assert policy.parse_body is parse_body
    assert policy.classify is classify


def test_request_id_policy_send_header_kept() -> None:
    """A send_header name is stored as given."""
    assert RequestIdPolicy(send_header="X-Request-Id").send_header == "X-Request-Id"


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_body_bytes": -1},
        {"max_body_bytes": "10"},
        {"max_body_bytes": True},
        {"max_body_bytes": 1.5},
        {"max_body_bytes": None},
        {"max_request_bytes": -5},
        {"max_request_bytes": "5"},
        {"max_request_bytes": False},
        {"status_classes": {200: NotFoundError}},
        {"status_classes": {399: NotFoundError}},
        {"status_classes": {"404": NotFoundError}},
        {"status_classes": {True: NotFoundError}},
        {"status_classes": {404: ValueError}},
        {"status_classes": {404: "x"}},
        {"status_classes": {404: NotFoundError("not a class")}},
        {"status_classes": [(404, NotFoundError)]},
        {"status_classes": None},
        {"parse_body": "x"},
        {"classify": 3},
        {"raise_on_status": "yes"},
        {"raise_on_status": 1},
        {"raise_on_status": None},
    ],
)
def test_error_policy_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Each bad ErrorPolicy argument raises ConfigurationError at construction."""
    with pytest.raises(ConfigurationError):
        ErrorPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"response_headers": "x-request-id"},
        {"response_headers": (1,)},
        {"response_headers": ("",)},
        {"response_headers": ("x-request-id", None)},
        {"response_headers": None},
        {"send_header": ""},
        {"send_header": 5},
    ],
)
def test_request_id_policy_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Each bad RequestIdPolicy argument raises ConfigurationError at construction."""
    with pytest.raises(ConfigurationError):
        RequestIdPolicy(**kwargs)


def test_configuration_error_is_a_value_error() -> None:
    """The validation error can be caught as a ValueError (and is an APIError)."""
    with pytest.raises(ValueError, match="max_body_bytes") as info:
        ErrorPolicy(max_body_bytes=-1)
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, APIError)


# --- frozen, replace, equality ------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (ErrorPolicy(), "max_body_bytes"),
        (ErrorPolicy(), "raise_on_status"),
        (RequestIdPolicy(), "send_header"),
        (RequestIdPolicy(), "response_headers"),
    ],
)
def test_policies_are_frozen(policy: Any, field: str) -> None:
    """Assigning to a policy field raises FrozenInstanceError."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(policy, field, 1)


def test_status_classes_is_read_only() -> None:
    """The stored status_classes mapping cannot be changed in place."""
    policy = ErrorPolicy(status_classes={404: NotFoundError})
    with pytest.raises(TypeError):
        policy.status_classes[500] = ServerError  # type: ignore[index]


def test_replace_returns_new_policy() -> None:
    """replace() gives a new policy with the change and leaves the original alone."""
    original = ErrorPolicy()
    changed = original.replace(max_body_bytes=1024)
    assert changed is not original
    assert changed.max_body_bytes == 1024
    assert original.max_body_bytes == 65536
    assert changed.raise_on_status is original.raise_on_status


def test_replace_validates_the_change() -> None:
    """An invalid value passed to replace() raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        ErrorPolicy().replace(max_body_bytes=-1)


def test_replace_unknown_field_is_configuration_error() -> None:
    """An unknown field name in replace() raises ConfigurationError, not TypeError alone."""
    with pytest.raises(ConfigurationError):
        ErrorPolicy().replace(max_body=1)


def test_request_id_replace_validates_and_lowercases() -> None:
    """RequestIdPolicy.replace() validates and lower-cases like the constructor."""
    assert RequestIdPolicy().replace(response_headers=("X-Trace",)).response_headers == ("x-trace",)
    with pytest.raises(ConfigurationError):
        RequestIdPolicy().replace(send_header="")
    with pytest.raises(ConfigurationError):
        RequestIdPolicy().replace(nope=1)


def test_replace_keeps_status_classes() -> None:
    """replace() of another field keeps the status_classes of the original."""
    policy = ErrorPolicy(status_classes={418: TeapotError}).replace(raise_on_status=False)
    assert dict(policy.status_classes) == {418: TeapotError}


def test_caller_dict_mutation_does_not_change_policy() -> None:
    """Changing the dict passed as status_classes afterwards leaves the policy as it was."""
    mapping: dict[int, type[StatusError]] = {404: NotFoundError}
    policy = ErrorPolicy(status_classes=mapping)
    mapping[418] = TeapotError
    del mapping[404]
    assert dict(policy.status_classes) == {404: NotFoundError}


def test_equal_error_policies_compare_equal() -> None:
    """Two ErrorPolicy values built alike are equal; a different one is not."""
    assert ErrorPolicy(max_body_bytes=10, status_classes={418: TeapotError}) == ErrorPolicy(
        max_body_bytes=10, status_classes={418: TeapotError}
    )
    assert ErrorPolicy(max_body_bytes=10) != ErrorPolicy(max_body_bytes=11)


def test_equal_request_id_policies_compare_equal() -> None:
    """Two RequestIdPolicy values built alike are equal, case of names aside."""
    assert RequestIdPolicy(response_headers=("X-A",)) == RequestIdPolicy(response_headers=("x-a",))
    assert RequestIdPolicy(send_header="X-Id") != RequestIdPolicy()


# --- response_headers ---------------------------------------------------------


def test_extending_default_request_id_headers() -> None:
    """The SPEC's extension idiom works and stores every name lower-cased."""
    policy = RequestIdPolicy(
        response_headers=(*RequestIdPolicy().response_headers, "X-DreamEngine-Request-Id")
    )
    assert policy.response_headers == (*DEFAULT_IDS, "x-dreamengine-request-id")


def test_response_headers_replace_defaults() -> None:
    """A given tuple replaces the defaults rather than adding to them."""
    assert RequestIdPolicy(response_headers=("X-Trace-Id",)).response_headers == ("x-trace-id",)


def test_response_headers_list_stored_as_tuple() -> None:
    """A list of names is accepted and stored as a tuple."""
    policy = RequestIdPolicy(response_headers=["X-A", "X-B"])  # type: ignore[arg-type]
    assert policy.response_headers == ("x-a", "x-b")


def test_error_policy_is_hashable() -> None:
    """Equal ErrorPolicy values hash alike, so they work as cache keys."""
    from httpx_resilience import NotFoundError

    a = ErrorPolicy(status_classes={404: NotFoundError})
    b = ErrorPolicy(status_classes={404: NotFoundError})
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1


# --- ErrorPolicy.redact_names (issue 12, item 8) ---------------------------------------------


def test_redact_names_default_empty() -> None:
    """By default no name is added to the built-in secret names."""
    assert ErrorPolicy().redact_names == frozenset()


def test_redact_names_stored_lower_case_frozenset() -> None:
    """Names of any collection, generator included, are kept as a lower-case frozenset."""
    policy = ErrorPolicy(redact_names=(n for n in ["X-Tenant-Pin", "PIN"]))  # type: ignore[arg-type]
    assert policy.redact_names == frozenset({"x-tenant-pin", "pin"})


@pytest.mark.parametrize("names", ["pin", b"pin", ["pin", 3], [""], None, 5])
def test_redact_names_rejects_bad_values(names: Any) -> None:
    """A single string, a non-string item, an empty name or a non-collection is refused."""
    with pytest.raises(ConfigurationError, match="redact_names"):
        ErrorPolicy(redact_names=names)


def test_redact_names_part_of_equality_and_hash() -> None:
    """Policies differing only in redact_names differ; equal ones hash alike."""
    a = ErrorPolicy(redact_names={"Pin"})
    assert a == ErrorPolicy(redact_names=["pin"])
    assert hash(a) == hash(ErrorPolicy(redact_names=["pin"]))
    assert a != ErrorPolicy()


# --- ErrorPolicy.pass_statuses (issue 14, item 2) --------------------------------------------


def test_pass_statuses_default_empty() -> None:
    """By default every error status raises (or is retried) as before."""
    assert ErrorPolicy().pass_statuses == frozenset()


def test_pass_statuses_kept_as_a_frozenset() -> None:
    """Statuses of any collection, a generator included, are kept as a frozenset."""
    policy = ErrorPolicy(pass_statuses=(s for s in [401, 407]))  # type: ignore[arg-type]
    assert policy.pass_statuses == frozenset({401, 407})


@pytest.mark.parametrize("statuses", [{200}, {399}, {1000}, {True}, {"401"}, 401, b"\x01"])
def test_pass_statuses_rejects_what_cannot_be_meant(statuses: Any) -> None:
    """A success status, a non-status, a single int or bytes is refused with the field's name."""
    with pytest.raises(ConfigurationError, match="pass_statuses"):
        ErrorPolicy(pass_statuses=statuses)


def test_pass_statuses_part_of_equality_and_hash() -> None:
    """Policies differing only in pass_statuses differ; equal ones hash alike."""
    a = ErrorPolicy(pass_statuses={401})
    assert a == ErrorPolicy(pass_statuses=[401])
    assert hash(a) == hash(ErrorPolicy(pass_statuses=[401]))
    assert a != ErrorPolicy()


@pytest.mark.parametrize("name", ["X Request Id", "X-Id:", "X-Idé", "X-Id\r\nEvil: 1", "(id)"])
@pytest.mark.parametrize(
    "make",
    [
        lambda name: RequestIdPolicy(send_header=name),
        lambda name: RequestIdPolicy(response_headers=(name,)),
        lambda name: hr.RetryPolicy(attempt_header=name),
        lambda name: hr.IdempotencyPolicy(header=name),
    ],
    ids=["send_header", "response_headers", "attempt_header", "idempotency header"],
)
def test_header_names_must_be_tokens(make: Any, name: str) -> None:
    """A header name that HTTP would refuse (a space, a colon, non-ASCII, a line break) is a
    ConfigurationError when the policy is built, not a ProtocolError on every request."""
    with pytest.raises(hr.ConfigurationError):
        make(name)


def test_set_literals_are_kept_as_frozensets() -> None:
    """Every set-valued policy field takes a plain set and keeps a frozenset (hashable, shared)."""
    retry = hr.RetryPolicy(retry_statuses={429, 503}, retry_methods={"get"})
    assert (retry.retry_statuses, retry.retry_methods) == (frozenset({429, 503}), {"GET"})
    assert isinstance(retry.retry_methods, frozenset)
    assert isinstance(hr.IdempotencyPolicy(methods={"post"}).methods, frozenset)
    assert isinstance(ErrorPolicy(redact_names={"x-pin"}).redact_names, frozenset)
    assert isinstance(hr.CircuitBreaker(failure_statuses={503}).failure_statuses, frozenset)
    assert isinstance(hr.AdaptiveThrottle(statuses={429}).statuses, frozenset)


# --- policies as values: pickle, deepcopy, asdict (break-it round 3) ------------------------------

EVERY_POLICY = [
    ErrorPolicy(status_classes={404: NotFoundError}, pass_statuses={401}, redact_names={"pin"}),
    RequestIdPolicy(send_header="X-Request-Id"),
    hr.RetryPolicy(retry_statuses={503}, timeout=30.0),
    hr.IdempotencyPolicy(methods={"POST"}),
    hr.Backoff(jitter=0.5),
    hr.RetryBudget(ratio=0.2),
    hr.CircuitBreaker(open_for=10.0),
    hr.AdaptiveThrottle(statuses={429}, min_rate=1.0),
]


@pytest.mark.parametrize("policy", EVERY_POLICY, ids=lambda p: type(p).__name__)
def test_every_policy_pickles_copies_and_converts(policy: Any) -> None:
    """Every policy survives pickle and deepcopy equal to itself, and dataclasses.asdict works
    (a response's extensions["resilience"] holds them, and may be pickled)."""
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(policy)) == policy
    assert copy.deepcopy(policy) == policy
    assert isinstance(dataclasses.asdict(policy), dict)


def test_a_policys_mapping_is_read_only() -> None:
    """status_classes cannot be changed behind the frozen policy's back, not even by calling
    its __init__ again."""
    policy = ErrorPolicy(status_classes={404: NotFoundError})
    with pytest.raises(TypeError, match="read-only"):
        policy.status_classes[500] = ServerError  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        policy.status_classes.__init__({500: ServerError})  # type: ignore[misc]
    assert dict(policy.status_classes) == {404: NotFoundError}


@pytest.mark.parametrize(
    ("policy", "field"), [(RequestIdPolicy(), "ranks"), (hr.IdempotencyPolicy(), "encoded")]
)
def test_replace_of_a_worked_out_field_is_a_configuration_error(policy: Any, field: str) -> None:
    """replace() of a field the policy works out itself: a ConfigurationError, not a bare
    ValueError from dataclasses."""
    with pytest.raises(ConfigurationError, match=field):
        policy.replace(**{field: {}})


def test_an_async_key_generator_is_refused() -> None:
    """IdempotencyPolicy(generate=<async def>) would send a coroutine's repr as the key."""

    async def new_key() -> str:
        return "k"

    with pytest.raises(ConfigurationError, match="generate must be a plain function"):
        hr.IdempotencyPolicy(generate=new_key)


@pytest.mark.parametrize("timeout", [86_400.5, 1e10])
def test_a_total_deadline_over_a_day_is_refused(timeout: float) -> None:
    """RetryPolicy(timeout=1e10) made the sync transport fail every request with an
    OverflowError; a day is the longest deadline taken."""
    hr.RetryPolicy(timeout=86_400)
    with pytest.raises(ConfigurationError, match="a day"):
        hr.RetryPolicy(timeout=timeout)
