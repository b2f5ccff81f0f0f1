"""OpenTelemetry metrics (issue 15, part 3): what each instrument records, with which attributes,
and that nothing is imported, recorded or able to fail a request when metrics are off or broken.

The instruments are made from a provider of each test's own (`reader`), put where the transport
finds them: the global provider can be set once per process. Taking them from the global
provider, and the API's proxies forwarding to one set later, are shown in fresh interpreters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import types
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from _support import FakeClock, points, run_fresh
from httpx_resilience import (
    AsyncResilientTransport,
    CircuitBreaker,
    CircuitOpenError,
    MemoryState,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
    ServiceUnavailableError,
    StatusError,
    _metrics,
)
from httpx_resilience.testing import no_wait

URL = "https://api.example.com/v1/items"
HOST = {"server.address": "api.example.com", "server.port": 443, "url.scheme": "https"}
GET = {**HOST, "http.request.method": "GET"}


def answers(*outcomes: int | Exception, headers: dict[str, str] | None = None) -> Any:
    """A MockTransport answering `outcomes` in turn: a status, or an exception raised."""
    queue = list(outcomes)

    def handler(request: httpx.Request) -> httpx.Response:
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome, headers=headers)

    return httpx.MockTransport(handler)


def get(transport: ResilientTransport, url: str = URL, method: str = "GET") -> httpx.Response:
    with no_wait(), httpx.Client(transport=transport) as client:
        return client.request(method, url)


def test_a_success_counts_one_attempt_with_the_http_attributes(
    reader: InMemoryMetricReader,
) -> None:
    """A 200 at once: one attempt with the host, scheme, method and status, nothing else."""
    assert get(ResilientTransport(answers(200))).status_code == 200
    assert points(reader) == {
        "httpx_resilience.attempts": [(1, {**GET, "http.response.status_code": 200})]
    }


def test_retries_count_each_attempt_and_retry_by_error_type(
    reader: InMemoryMetricReader,
) -> None:
    """503, 503, 200: three attempts (resends numbered), two retries whose error.type is 503."""
    assert get(ResilientTransport(answers(503, 503, 200))).status_code == 200
    failed = {**GET, "http.response.status_code": 503, "error.type": "503"}
    assert points(reader) == {
        "httpx_resilience.attempts": sorted(
            [
                (1, failed),
                (1, {**failed, "http.request.resend_count": 1}),
                (1, {**GET, "http.response.status_code": 200, "http.request.resend_count": 2}),
            ],
            key=repr,
        ),
        "httpx_resilience.retries": [(2, failed)],
    }


def test_a_transport_failure_is_typed_by_httpx_class(reader: InMemoryMetricReader) -> None:
    """A connect error's attempt and retry carry error.type "ConnectError" and no status."""
    inner = answers(httpx.ConnectError("refused"), 200)
    assert get(ResilientTransport(inner)).status_code == 200
    found = points(reader)
    failed = {**GET, "error.type": "ConnectError"}
    assert (1, failed) in found["httpx_resilience.attempts"]
    assert found["httpx_resilience.retries"] == [(1, failed)]


GIVE_UPS = [
    pytest.param((503, 503, 503), {}, {}, "attempts_exhausted", "503", id="attempts-exhausted"),
    pytest.param((404,), {}, {}, "not_retryable", "404", id="not-retryable"),
    pytest.param(
        (503,), {"retry-after": "600"}, {}, "retry_after", "503", id="retry-after-too-long"
    ),
    pytest.param(
        (503,),
        {"retry-after": "30"},
        {"retry": RetryPolicy(timeout=5.0)},
        "deadline",
        "503",
        id="deadline",
    ),
    pytest.param(
        (503,),
        {},
        {"budget": RetryBudget(ratio=0.0, min_per_second=0.0)},
        "retry_budget",
        "503",
        id="retry-budget",
    ),
]


@pytest.mark.parametrize(("statuses", "headers", "kwargs", "reason", "error_type"), GIVE_UPS)
def test_a_give_up_counts_its_reason(
    reader: InMemoryMetricReader,
    statuses: tuple[int, ...],
    headers: dict[str, str],
    kwargs: dict[str, Any],
    reason: str,
    error_type: str,
) -> None:
    """Each way a request ends in an error is one give-up, with its reason and error.type."""
    with pytest.raises(StatusError):
        get(ResilientTransport(answers(*statuses, headers=headers), **kwargs))
    status = int(error_type)
    expected = {
        **GET,
        "http.response.status_code": status,
        "error.type": error_type,
        "httpx_resilience.give_up.reason": reason,
    }
    assert points(reader)["httpx_resilience.give_ups"] == [(1, expected)]


def test_a_budget_refusal_is_counted(reader: InMemoryMetricReader) -> None:
    """A retry the budget refuses is one refusal, with the failure it would have retried."""
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    with pytest.raises(ServiceUnavailableError):
        get(ResilientTransport(answers(503), budget=budget))
    expected = {**GET, "http.response.status_code": 503, "error.type": "503"}
    found = points(reader)
    assert found["httpx_resilience.budget.refusals"] == [(1, expected)]
    assert "httpx_resilience.retries" not in found


def test_the_circuit_state_follows_each_change_and_rejections_are_counted(
    reader: InMemoryMetricReader,
) -> None:
    """Two 503s open the circuit (state 2), the next request is rejected; after `open_for` the
    probe half-opens it and its 200 closes it (state 0)."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_ratio=0.5, min_calls=2, open_for=5.0)
    transport = ResilientTransport(
        answers(503, 503, 200),
        breaker=breaker,
        budget=None,
        retry=RetryPolicy(max_attempts=1),
        state=MemoryState(clock=clock),
    )
    with no_wait(), httpx.Client(transport=transport) as client:
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                client.get(URL)
        with pytest.raises(CircuitOpenError):
            client.get(URL)
        opened = points(reader)
        clock.advance(5.1)
        assert client.get(URL).status_code == 200
    closed = points(reader)
    assert opened["httpx_resilience.circuit.state"] == [(2, HOST)]
    assert opened["httpx_resilience.circuit.rejections"] == [(1, GET)]
    rejected = {**GET, "error.type": "CircuitOpenError"}
    assert (1, {**rejected, "httpx_resilience.give_up.reason": "circuit_open"}) in opened[
        "httpx_resilience.give_ups"
    ]
    assert closed["httpx_resilience.circuit.state"] == [(0, HOST)]


def test_the_half_open_state_is_one(reader: InMemoryMetricReader) -> None:
    """While the probe is under way the circuit's state reads 1."""
    clock = FakeClock()
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if seen or clock.now > 1000.0:
            found = points(reader)["httpx_resilience.circuit.state"]
            seen.extend(value for value, _ in found)
        return httpx.Response(503 if clock.now == 1000.0 else 200)

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        breaker=CircuitBreaker(failure_ratio=0.5, min_calls=1, open_for=5.0),
        budget=None,
        retry=RetryPolicy(max_attempts=1),
        state=MemoryState(clock=clock),
    )
    with no_wait(), httpx.Client(transport=transport) as client:
        with pytest.raises(ServiceUnavailableError):
            client.get(URL)
        clock.advance(5.1)
        assert client.get(URL).status_code == 200
    assert seen == [1]


@pytest.mark.parametrize(
    ("url", "port", "scheme"),
    [
        ("http://api.example.com/", 80, "http"),
        ("https://api.example.com:8443/", 8443, "https"),
    ],
)
def test_the_port_is_the_schemes_default_or_the_urls(
    reader: InMemoryMetricReader, url: str, port: int, scheme: str
) -> None:
    """server.port is always set: the URL's port, else the scheme's default."""
    get(ResilientTransport(answers(200)), url)
    ((_, attributes),) = points(reader)["httpx_resilience.attempts"]
    assert (attributes["server.port"], attributes["url.scheme"]) == (port, scheme)


def test_a_method_outside_the_conventions_is_other(reader: InMemoryMetricReader) -> None:
    """A made-up method is recorded as "_OTHER", so methods cannot grow the series."""
    get(ResilientTransport(answers(200)), method="PURGE")
    ((_, attributes),) = points(reader)["httpx_resilience.attempts"]
    assert attributes["http.request.method"] == "_OTHER"


def test_no_userinfo_path_or_query_reaches_an_attribute(reader: InMemoryMetricReader) -> None:
    """A URL with a password, a secret path and a secret query leaves none of them in any data
    point, through attempts, retries and a give-up."""
    secret = "pw-canary-5d21"
    url = f"https://alice:{secret}@api.example.com/acct/{secret}?api_key={secret}"
    with pytest.raises(ServiceUnavailableError):
        get(ResilientTransport(answers(503, 503, 503)), url)
    found = points(reader)
    assert set(found) == {
        "httpx_resilience.attempts",
        "httpx_resilience.retries",
        "httpx_resilience.give_ups",
    }
    text = repr(found)
    for part in (secret, "alice", "/acct", "api_key"):
        assert part not in text


def test_a_hook_hears_every_event_while_metrics_are_live(reader: InMemoryMetricReader) -> None:
    """Recording metrics leaves `on_event` as it was: the same events, in order."""
    kinds: list[str] = []
    transport = ResilientTransport(answers(503, 200), on_event=lambda e: kinds.append(e.kind))
    assert get(transport).status_code == 200
    assert kinds == ["attempt", "retry", "attempt"]
    assert "httpx_resilience.retries" in points(reader)


def test_the_async_transport_records_the_same(reader: InMemoryMetricReader) -> None:
    """Under asyncio, a 503 then 200 gives two attempts and one retry, as sync does."""

    async def main() -> int:
        transport = AsyncResilientTransport(answers(503, 200))
        with no_wait():
            async with httpx.AsyncClient(transport=transport) as client:
                return (await client.get(URL)).status_code

    assert asyncio.run(main()) == 200
    found = points(reader)
    assert sum(value for value, _ in found["httpx_resilience.attempts"]) == 2
    assert found["httpx_resilience.retries"] == [
        (1, {**GET, "http.response.status_code": 503, "error.type": "503"})
    ]


def test_nothing_is_recorded_while_the_api_is_not_imported(
    reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `opentelemetry.metrics` in sys.modules, retries and a give-up record nothing,
    even with instruments made and a hook listening."""
    monkeypatch.delitem(sys.modules, "opentelemetry.metrics")
    kinds: list[str] = []
    transport = ResilientTransport(answers(503, 503, 503), on_event=lambda e: kinds.append(e.kind))
    with pytest.raises(ServiceUnavailableError):
        get(transport)
    assert kinds[-1] == "give_up"
    assert points(reader) == {}


class _Failing:
    """An instrument whose every record raises."""

    def add(self, *args: Any) -> None:
        raise RuntimeError("exporter down")

    def set(self, *args: Any) -> None:
        raise RuntimeError("exporter down")


class _FailingMeter:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: _Failing()


def test_an_instrument_that_raises_never_fails_a_request(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Instruments that raise on every record: the request retries and succeeds; the failure
    is logged at debug only."""
    monkeypatch.setattr(_metrics, "_made", _metrics.Instruments(_FailingMeter()))
    with caplog.at_level(logging.DEBUG, logger="httpx_resilience"):
        assert get(ResilientTransport(answers(503, 200))).status_code == 200
    failures = [r for r in caplog.records if r.getMessage().startswith("could not record")]
    assert failures
    assert {r.levelno for r in failures} == {logging.DEBUG}


def test_a_provider_that_raises_never_fails_a_request(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A metrics API whose get_meter raises: the request succeeds, the failure is logged at
    debug once, and no instruments are tried again."""
    calls: list[str] = []

    def get_meter(*args: Any) -> Any:
        calls.append("get_meter")
        raise RuntimeError("bad provider")

    broken = types.ModuleType("opentelemetry.metrics")
    broken.get_meter = get_meter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", broken)
    monkeypatch.setattr(_metrics, "_made", None)
    monkeypatch.setattr(_metrics, "_broken", False)
    with caplog.at_level(logging.DEBUG, logger="httpx_resilience"):
        assert get(ResilientTransport(answers(503, 200))).status_code == 200
    assert calls == ["get_meter"]
    made = [r for r in caplog.records if "could not make" in r.getMessage()]
    assert [r.levelno for r in made] == [logging.DEBUG]


# --- In a fresh interpreter: the global provider -------------------------------------------

_LAZY_METRICS = """
import sys
import httpx
from httpx_resilience import ResilientTransport
from httpx_resilience.testing import no_wait

answers = iter([503, 200] * 3)
inner = httpx.MockTransport(lambda request: httpx.Response(next(answers)))
with no_wait(), httpx.Client(transport=ResilientTransport(inner)) as client:
    assert client.get("https://api.example.com/").status_code == 200
    untouched = not any(name.startswith("opentelemetry") for name in sys.modules)

    from opentelemetry import metrics  # the application's import: proxies until a provider
    assert client.get("https://api.example.com/").status_code == 200

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert client.get("https://api.example.com/").status_code == 200

(scope,) = reader.get_metrics_data().resource_metrics[0].scope_metrics
import httpx_resilience
assert (scope.scope.name, scope.scope.version) == ("httpx_resilience", httpx_resilience.__version__)
counted = {m.name: sum(p.value for p in m.data.data_points) for m in scope.metrics}
print(untouched, counted["httpx_resilience.attempts"], counted["httpx_resilience.retries"])
"""


def test_metrics_import_nothing_until_the_application_does() -> None:
    """In a fresh interpreter: a retried request imports no opentelemetry module; once the
    application imported the API, instruments made before its provider was set forward to it:
    only the request after it is counted (2 attempts, 1 retry), under the library's meter."""
    assert run_fresh(_LAZY_METRICS) == ["True", "2", "1"]


def test_stacked_transports_count_each_attempt_once(reader: InMemoryMetricReader) -> None:
    """A resilient transport over another: the attempts the inner one made are counted once,
    and a request it gave up on is one give-up, with its own reason."""
    inner = ResilientTransport(answers(503, 200))
    assert get(ResilientTransport(inner)).status_code == 200
    found = points(reader)
    assert sum(value for value, _ in found["httpx_resilience.attempts"]) == 2
    failing = ResilientTransport(ResilientTransport(answers(503, 503, 503)))
    with pytest.raises(ServiceUnavailableError):
        get(failing)
    found = points(reader)
    assert sum(value for value, _ in found["httpx_resilience.attempts"]) == 5
    [(count, attributes)] = found["httpx_resilience.give_ups"]
    assert count == 1
    assert attributes["httpx_resilience.give_up.reason"] == "attempts_exhausted"


def test_a_2xx_classify_calls_failed_carries_its_error_type(reader: InMemoryMetricReader) -> None:
    """An attempt whose 200 `classify` made an error is recorded with that error's type."""
    from httpx_resilience import APIError, ErrorPolicy

    class EngineError(APIError):
        pass

    errors = ErrorPolicy(classify=lambda response: EngineError)
    with pytest.raises(EngineError):
        get(ResilientTransport(answers(200), errors=errors))
    [(_, attributes)] = points(reader)["httpx_resilience.attempts"]
    assert attributes["error.type"] == "EngineError"
    assert attributes["http.response.status_code"] == 200


def test_a_retry_the_deadline_refuses_after_the_hooks_is_not_counted(
    reader: InMemoryMetricReader,
) -> None:
    """on_retry using up the deadline: the retry never happens, so it is not counted; the
    give-up says deadline."""
    clock = FakeClock()

    def slow_hook(event: object) -> None:
        clock.now += 10

    transport = ResilientTransport(
        answers(503, 200), retry=RetryPolicy(timeout=5), on_retry=slow_hook
    )
    transport._clock = clock
    with pytest.raises(ServiceUnavailableError):
        get(transport)
    found = points(reader)
    assert "httpx_resilience.retries" not in found
    [(_, attributes)] = found["httpx_resilience.give_ups"]
    assert attributes["httpx_resilience.give_up.reason"] == "deadline"


def test_a_meter_without_gauges_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """opentelemetry-api before 1.23 has no synchronous gauge: the counters still count, and
    a circuit's change records nothing rather than failing."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    meter = provider.get_meter("httpx_resilience")
    old = types.SimpleNamespace(**{name: getattr(meter, name) for name in ("create_counter",)})
    monkeypatch.setattr(_metrics, "_made", _metrics.Instruments(old))
    breaker = CircuitBreaker(min_calls=1, failure_ratio=0.5)
    transport = ResilientTransport(answers(503), breaker=breaker, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ServiceUnavailableError):
        get(transport)
    found = points(reader)
    assert sum(value for value, _ in found["httpx_resilience.attempts"]) == 1
    provider.shutdown()


def test_get_meter_calling_back_into_a_transport_does_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `get_meter` that sends a request through a resilient transport (a log handler doing
    so) returns, unrecorded, instead of waiting for the lock it holds."""
    monkeypatch.setattr(_metrics, "_made", None)
    monkeypatch.setattr(_metrics, "_broken", False)
    sent: list[int] = []

    def get_meter(name: str, version: str) -> Any:
        sent.append(get(ResilientTransport(answers(200))).status_code)
        return MeterProvider(shutdown_on_exit=False).get_meter(name)

    fake = types.SimpleNamespace(get_meter=get_meter)
    monkeypatch.setitem(sys.modules, _metrics.METRICS_MODULE, fake)
    assert _metrics.live() is not None
    assert sent == [200]


@pytest.mark.parametrize("outer", ["buffer", "classify"])
def test_stacked_over_a_reading_transport_counts_what_was_sent(reader: Any, outer: str) -> None:
    """The outer transport reading the body (`buffer=` meeting a reset, which it retries;
    `classify` calling the 200 a failure) still leaves the attempts to the inner one: as many
    counted as were sent."""
    from httpx_resilience import APIError, ErrorPolicy
    from httpx_resilience.testing import Fault, FaultTransport

    class JobFailed(APIError):
        pass

    if outer == "buffer":
        kwargs: dict[str, Any] = {"buffer": 100_000}
        faults: list[Fault | None] = [Fault.reset(10)]
    else:
        kwargs = {"errors": ErrorPolicy(classify=lambda response: JobFailed)}
        faults = [None]
    api = FaultTransport(lambda request: httpx.Response(200, content=b"x" * 1000), faults=faults)
    transport = ResilientTransport(ResilientTransport(api), **kwargs)
    with contextlib.suppress(JobFailed):
        get(transport)
    found = points(reader)
    assert sum(value for value, _ in found["httpx_resilience.attempts"]) == len(api.calls)
