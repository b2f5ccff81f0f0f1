"""The httpx2 transports inside the real OpenAI and Anthropic SDKs, against a fake API on loopback.

Each SDK gets `http_client=httpx2.Client(transport=httpx_resilience.httpx2.ResilientTransport())`
(or `httpx2.AsyncClient` with `AsyncResilientTransport`, under asyncio and trio: both SDKs'
async clients run on trio) and `max_retries=0`, so every retry the server sees is ours. The
fake API (`_sdk_server.py`) answers OpenAI's `POST /v1/chat/completions` and Anthropic's
`POST /v1/messages` with the statuses each test scripts, and records every request.

What the SDKs do, pinned here so an SDK upgrade that changes it fails loudly:

- Neither sends an `Idempotency-Key` of its own (each makes one per call but has no header to put
  it in), so the key the server sees on every attempt is the one our transport generates; a key
  the caller sets through `extra_headers` is kept.
- Each reads its own request id header (OpenAI `x-request-id`, Anthropic `request-id`), both in
  `RequestIdPolicy`'s defaults: the id is on `response.extensions["request_id"]`, on the parsed
  object's `_request_id` and on the SDK's errors' `request_id`.
- With `raise_on_status=False` an error status reaches the SDK, which raises its own error.
- With the default `raise_on_status=True` our typed error leaves `client.send()` and the SDKs
  differ: OpenAI lets it through as it is (it wraps only httpx's `RequestError` and
  `TimeoutException`), Anthropic wraps every exception from `send()` in its `APIConnectionError`,
  with ours as `__cause__`.
- A read timeout: our `RequestTimeoutError` is an `httpx.TimeoutException`, not an httpx2 one.
  OpenAI catches both packages' classes and raises `APITimeoutError`; Anthropic catches only
  httpx2's, so it raises a plain `APIConnectionError`, not `APITimeoutError`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import openai
import pytest
import trio

from httpx_resilience import (
    APIError,
    Backoff,
    ErrorPolicy,
    NotFoundError,
    RequestIdPolicy,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ServiceUnavailableError,
    StatusError,
)
from httpx_resilience.httpx2 import AsyncResilientTransport, ResilientTransport

from ._sdk_server import ANTHROPIC_MODEL, OPENAI_MODEL, REPLY, FakeAPI, Scenario, serve_fake_api

# Tiny, deterministic waits (the autouse `no_wait` fixture skips them anyway), and the attempt
# number on every attempt, so the server can tell our retries from the SDK's.
RETRY = RetryPolicy(
    max_attempts=3,
    backoff=Backoff(initial=0.01, multiplier=2.0, max_delay=0.05, jitter="none"),
    attempt_header="x-retry-attempt",
)
PROMPT = "say hello"


@dataclass(frozen=True)
class SDK:
    """What a test needs to know of one SDK."""

    name: str
    module: Any
    sync_client: Callable[..., Any]
    async_client: Callable[..., Any]
    request_id_header: str
    # The SDK's error for our StatusError leaving `client.send()`, or None if it lets it through.
    send_error_wrapper: type[BaseException] | None
    # The SDK's error for our RequestTimeoutError leaving `client.send()`.
    timeout_wrapper: type[BaseException]

    def base_url(self, scenario: Scenario) -> str:
        return scenario.openai_base_url if self.name == "openai" else scenario.anthropic_base_url

    def create(self, client: Any, raw: bool = False, **extra: Any) -> Any:
        """One call of the SDK's main endpoint (a coroutine for an async client)."""
        if self.name == "openai":
            resource = client.chat.completions
            if raw:
                resource = resource.with_raw_response
            return resource.create(
                model=OPENAI_MODEL, messages=[{"role": "user", "content": PROMPT}], **extra
            )
        resource = client.messages
        if raw:
            resource = resource.with_raw_response
        return resource.create(
            model=ANTHROPIC_MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": PROMPT}],
            **extra,
        )

    def reply(self, parsed: Any) -> str:
        """The assistant's text in a parsed result."""
        if self.name == "openai":
            assert isinstance(parsed, openai.types.chat.ChatCompletion)
            return str(parsed.choices[0].message.content)
        assert isinstance(parsed, anthropic.types.Message)
        return str(parsed.content[0].text)


OPENAI = SDK(
    name="openai",
    module=openai,
    sync_client=openai.OpenAI,
    async_client=openai.AsyncOpenAI,
    request_id_header="x-request-id",
    send_error_wrapper=None,
    timeout_wrapper=openai.APITimeoutError,
)
ANTHROPIC = SDK(
    name="anthropic",
    module=anthropic,
    sync_client=anthropic.Anthropic,
    async_client=anthropic.AsyncAnthropic,
    request_id_header="request-id",
    send_error_wrapper=anthropic.APIConnectionError,
    timeout_wrapper=anthropic.APIConnectionError,
)


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeAPI]:
    """The fake OpenAI / Anthropic API, up for this module's tests and stopped after them."""
    with serve_fake_api() as api:
        yield api


@pytest.fixture(params=[OPENAI, ANTHROPIC], ids=lambda sdk: sdk.name)
def sdk(request: pytest.FixtureRequest) -> SDK:
    sdk: SDK = request.param
    return sdk


@dataclass
class Outcome:
    """A call's parsed result and, for a raw call, the SDK's raw response object."""

    parsed: Any
    raw: Any = None


def run_call(
    mode: str,
    sdk: SDK,
    scenario: Scenario,
    *,
    raw: bool = False,
    plain: bool = False,
    extra: dict[str, Any] | None = None,
    **transport_kwargs: Any,
) -> Outcome:
    """One SDK call in `mode` (sync, asyncio or trio) through our transport for httpx2, built
    with `transport_kwargs` (`plain=True`: httpx2's own transport instead). SDK retries are off."""
    extra = extra or {}
    if mode == "sync":
        sync_transport = httpx2.HTTPTransport() if plain else ResilientTransport(**transport_kwargs)
        with (
            httpx2.Client(transport=sync_transport) as http_client,
            sdk.sync_client(
                api_key="dummy-key",
                base_url=sdk.base_url(scenario),
                max_retries=0,
                http_client=http_client,
            ) as client,
        ):
            result = sdk.create(client, raw=raw, **extra)
            return Outcome(result.parse(), result) if raw else Outcome(result)

    async def go() -> Outcome:
        async_transport = (
            httpx2.AsyncHTTPTransport() if plain else AsyncResilientTransport(**transport_kwargs)
        )
        async with (
            httpx2.AsyncClient(transport=async_transport) as http_client,
            sdk.async_client(
                api_key="dummy-key",
                base_url=sdk.base_url(scenario),
                max_retries=0,
                http_client=http_client,
            ) as client,
        ):
            result = await sdk.create(client, raw=raw, **extra)
            if not raw:
                return Outcome(result)
            # OpenAI's async raw response parses synchronously, Anthropic's is awaited.
            parsed = result.parse()
            if inspect.isawaitable(parsed):
                parsed = await parsed
            return Outcome(parsed, result)

    if mode == "asyncio":
        return asyncio.run(go())
    assert mode == "trio"
    return trio.run(go)


def check_our_retries(scenario: Scenario, attempts: int) -> None:
    """The server saw `attempts` attempts, all ours: the SDK sent each as its first try."""
    seen = scenario.seen()
    assert len(seen) == attempts
    assert [r.headers.get("x-retry-attempt") for r in seen] == [
        str(n) for n in range(1, attempts + 1)
    ]
    assert [r.headers.get("x-stainless-retry-count") for r in seen] == ["0"] * attempts
    assert len({r.body for r in seen}) == 1, "every attempt carries the same body"
    assert json.loads(seen[0].body)["messages"] == [{"role": "user", "content": PROMPT}]


# --- 1. 503, 503, 200 succeeds through our retries -------------------------------------------


def test_503_503_200_returns_the_parsed_object(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """A call meeting 503, 503, 200 returns the SDK's parsed object; the 3 attempts are ours."""
    scenario = fake_api.scenario(503, 503, 200)
    events: list[RetryEvent] = []

    outcome = run_call(mode, sdk, scenario, retry=RETRY, on_retry=events.append)

    assert sdk.reply(outcome.parsed) == REPLY
    check_our_retries(scenario, attempts=3)
    assert [(e.attempt, e.delay, e.reason) for e in events] == [
        (1, 0.01, "status 503"),
        (2, 0.02, "status 503"),
    ]
    assert all(isinstance(e.error, ServiceUnavailableError) for e in events)


# --- 2. one Idempotency-Key on every attempt -------------------------------------------------


def test_sdk_sends_no_idempotency_key_of_its_own(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """Through httpx2's plain transport, the SDK's POST carries no Idempotency-Key at all."""
    scenario = fake_api.scenario(200)

    outcome = run_call(mode, sdk, scenario, plain=True)

    assert sdk.reply(outcome.parsed) == REPLY
    [seen] = scenario.seen()
    assert "idempotency-key" not in seen.headers


def test_one_idempotency_key_on_all_attempts(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """Our transport adds one Idempotency-Key to the SDK's POST and sends it on all 3 attempts."""
    scenario = fake_api.scenario(503, 503, 200)
    events: list[RetryEvent] = []

    run_call(mode, sdk, scenario, retry=RETRY, on_retry=events.append)

    keys = [r.headers.get("idempotency-key") for r in scenario.seen()]
    assert len(keys) == 3
    assert keys[0]
    assert keys == [keys[0]] * 3
    assert [e.error.idempotency_key for e in events if e.error is not None] == [keys[0]] * 2


def test_callers_idempotency_key_is_kept(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """A key the caller passes through the SDK's `extra_headers` goes unchanged on every attempt."""
    scenario = fake_api.scenario(503, 503, 200)

    run_call(
        mode,
        sdk,
        scenario,
        extra={"extra_headers": {"Idempotency-Key": "caller-key-42"}},
        retry=RETRY,
    )

    assert [r.headers.get("idempotency-key") for r in scenario.seen()] == ["caller-key-42"] * 3


# --- 3. the request id is captured ------------------------------------------------------------


def test_request_id_is_captured(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """The SDK's own request id header is one of our defaults: after 503, 200 the id of the
    answering attempt is on the response's extensions, the SDK's raw response and the parsed
    object; the failed attempt's id is on its retry event."""
    assert sdk.request_id_header in RequestIdPolicy().response_headers
    scenario = fake_api.scenario(503, 200)
    events: list[RetryEvent] = []

    outcome = run_call(mode, sdk, scenario, raw=True, retry=RETRY, on_retry=events.append)

    final_id = scenario.request_id(2)
    http_response = outcome.raw.http_response
    assert isinstance(http_response, httpx2.Response)
    assert http_response.headers[sdk.request_id_header] == final_id
    assert http_response.extensions["request_id"] == final_id
    assert outcome.raw.request_id == final_id
    assert outcome.parsed._request_id == final_id
    assert sdk.reply(outcome.parsed) == REPLY
    [event] = events
    assert event.error is not None
    assert event.error.request_id == scenario.request_id(1)


def test_request_id_on_the_parsed_object(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """Without with_raw_response, the parsed object's `_request_id` is the answering attempt's."""
    scenario = fake_api.scenario(503, 503, 200)

    outcome = run_call(mode, sdk, scenario, retry=RETRY)

    assert outcome.parsed._request_id == scenario.request_id(3)


# --- 4. raise_on_status=False: the SDK raises its own errors ----------------------------------


def test_404_passed_through_is_the_sdks_not_found_error(
    mode: str, sdk: SDK, fake_api: FakeAPI
) -> None:
    """With raise_on_status=False a 404 (not retried) reaches the SDK, which raises its own
    NotFoundError carrying the request id."""
    scenario = fake_api.scenario(404)

    with pytest.raises(sdk.module.NotFoundError) as excinfo:
        run_call(mode, sdk, scenario, retry=RETRY, errors=ErrorPolicy(raise_on_status=False))

    err = excinfo.value
    assert err.status_code == 404
    assert err.request_id == scenario.request_id(1)
    assert err.response.extensions["request_id"] == scenario.request_id(1)
    assert "fake" in err.message
    assert not isinstance(err, APIError)
    assert len(scenario.seen()) == 1


def test_503_after_retries_passed_through_is_the_sdks_error(
    mode: str, sdk: SDK, fake_api: FakeAPI
) -> None:
    """With raise_on_status=False, the last of 3 retried 503s reaches the SDK, which raises its
    own status error with the last attempt's request id."""
    scenario = fake_api.scenario(503)

    with pytest.raises(sdk.module.APIStatusError) as excinfo:
        run_call(mode, sdk, scenario, retry=RETRY, errors=ErrorPolicy(raise_on_status=False))

    err = excinfo.value
    assert err.status_code == 503
    assert err.request_id == scenario.request_id(3)
    check_our_retries(scenario, attempts=3)


def test_recommended_setting_keeps_the_sdks_rate_limit_error(
    mode: str, sdk: SDK, fake_api: FakeAPI
) -> None:
    """The README's recommended setting (SDK retries off, raise_on_status=False): three 429s
    are retried by the transport with one idempotency key, and the SDK raises its own
    RateLimitError, so `except openai.RateLimitError` / `anthropic.RateLimitError` works."""
    scenario = fake_api.scenario(429)

    with pytest.raises(sdk.module.RateLimitError) as excinfo:
        run_call(mode, sdk, scenario, retry=RETRY, errors=ErrorPolicy(raise_on_status=False))

    assert excinfo.value.status_code == 429
    assert excinfo.value.request_id == scenario.request_id(3)
    check_our_retries(scenario, attempts=3)
    keys = {r.headers.get("idempotency-key") for r in scenario.seen()}
    assert len(keys) == 1
    assert None not in keys


# --- 5. raise_on_status=True: what the SDK does with our typed error ---------------------------


@pytest.mark.parametrize(
    ("statuses", "error_class", "attempts"),
    [((404,), NotFoundError, 1), ((503,), ServiceUnavailableError, 3)],
    ids=["404", "503x3"],
)
def test_our_typed_error_through_the_sdk(
    mode: str,
    sdk: SDK,
    fake_api: FakeAPI,
    statuses: tuple[int, ...],
    error_class: type[StatusError],
    attempts: int,
) -> None:
    """With the default raise_on_status=True our typed error leaves `client.send()`: OpenAI lets
    it through unwrapped, Anthropic raises APIConnectionError with ours as `__cause__`."""
    scenario = fake_api.scenario(*statuses)

    with pytest.raises(sdk.send_error_wrapper or error_class) as excinfo:
        run_call(mode, sdk, scenario, retry=RETRY)

    raised = excinfo.value
    if sdk.send_error_wrapper is None:
        ours = raised
        assert not isinstance(raised, sdk.module.APIError)
    else:
        assert type(raised) is sdk.send_error_wrapper
        assert not isinstance(raised, sdk.module.APIStatusError)
        ours = raised.__cause__
    assert type(ours) is error_class
    assert isinstance(ours, StatusError)
    assert ours.status_code == statuses[0]
    assert ours.request_id == scenario.request_id(attempts)
    assert ours.attempts == attempts
    assert ours.idempotency_key
    assert [h.request_id for h in ours.history] == [
        scenario.request_id(n) for n in range(1, attempts + 1)
    ]
    check_our_retries(scenario, attempts=attempts)


def test_read_timeout_through_the_sdk(mode: str, sdk: SDK, fake_api: FakeAPI) -> None:
    """Every attempt times out reading (the server answers after 0.5 s, the call allows 0.1 s):
    our RequestTimeoutError (phase "read", 3 attempts: the POST has a key) becomes OpenAI's
    APITimeoutError, since OpenAI also catches httpx's TimeoutException, which ours is; but
    Anthropic's plain APIConnectionError, since Anthropic maps only httpx2.TimeoutException to
    APITimeoutError, and ours is not one. Ours is the `__cause__` either way."""
    scenario = fake_api.scenario(200, delay=0.5)

    with pytest.raises(sdk.timeout_wrapper) as excinfo:
        run_call(mode, sdk, scenario, extra={"timeout": 0.1}, retry=RETRY)

    assert type(excinfo.value) is sdk.timeout_wrapper
    ours = excinfo.value.__cause__
    assert type(ours) is RequestTimeoutError
    assert ours.phase == "read"
    assert ours.attempts == 3
    assert ours.retryable
    assert ours.idempotency_key
    keys = [r.headers.get("idempotency-key") for r in scenario.seen()]
    assert keys == [ours.idempotency_key] * 3
