"""Checked by mypy --strict, never run: the public API reads well to a type checker."""

from __future__ import annotations

import httpx
import httpx2
import redis
import redis.asyncio

from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    CircuitBreaker,
    CircuitOpenError,
    ErrorPolicy,
    IdempotencyPolicy,
    MemoryState,
    RateLimitError,
    RedisState,
    RequestIdPolicy,
    ResilienceEvent,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
    StatusError,
    from_response,
)
from httpx_resilience.httpx2 import AsyncResilientTransport as AsyncTransport2
from httpx_resilience.httpx2 import FaultTransport as FaultTransport2
from httpx_resilience.httpx2 import ResilientTransport as Transport2
from httpx_resilience.testing import Fault, FaultTransport


class EngineError(APIError):
    pass


def classify(response: httpx.Response) -> type[APIError] | None:
    return EngineError if response.status_code == 200 else None


policy: ErrorPolicy = ErrorPolicy(max_body_bytes=1024, classify=classify).replace(
    raise_on_status=False
)
ids: RequestIdPolicy = RequestIdPolicy(
    response_headers=(*RequestIdPolicy().response_headers, "x-my-id"), send_header="X-Request-Id"
)
client = httpx.Client(transport=ResilientTransport(errors=policy, request_ids=ids))
aclient = httpx.AsyncClient(mounts={"https://api.example.com": AsyncResilientTransport()})

err = RateLimitError("rate limited", retry_after=5.0, status_code=429, request_id="req_1")
wait: float | None = err.retry_after
status: int | None = err.status_code
maybe_request: httpx.Request | None = err.request
as_dict: dict[str, object] = err.to_dict()
built: APIError = from_response(httpx.Response(404))
is_status: bool = isinstance(built, StatusError)

# httpx2: the same arguments, into httpx2's clients.
client2 = httpx2.Client(transport=Transport2(errors=policy, request_ids=ids))
aclient2 = httpx2.AsyncClient(
    mounts={"https://": AsyncTransport2(retry=RetryPolicy(max_attempts=5))}
)
with Transport2(httpx2.HTTPTransport()) as wrapped:
    same: Transport2 = wrapped


# Protection per host: the budget (on by default), a breaker, pacing, shared state, events.
def on_event(event: ResilienceEvent) -> None:
    kind: str = event.kind
    error: APIError | None = event.error
    print(kind, error)


shared = MemoryState()
protected = ResilientTransport(
    budget=RetryBudget(ratio=0.2),
    breaker=CircuitBreaker(failure_statuses={429, 503}, open_for=10.0),
    pacing=True,
    state=shared,
    on_event=on_event,
)
unbudgeted = AsyncResilientTransport(budget=None, state=shared)
fleet = ResilientTransport(state=RedisState(redis.Redis(), prefix="my-sdk"))
afleet = AsyncResilientTransport(state=RedisState(redis.asyncio.Redis()))
open_for: float | None = CircuitOpenError("open", retry_after=2.0).retry_after
refused: str | None = err.history[-1].refused if err.history else None


# Set literals type-check wherever a policy takes a set (each is kept as a frozenset).
retry_literals = RetryPolicy(retry_statuses={429, 503}, retry_methods={"GET", "PUT"})
keys_literal = IdempotencyPolicy(methods={"POST"})
names_literal = ErrorPolicy(redact_names={"x-tenant-pin"})
passed_literal = ErrorPolicy(pass_statuses={401, 407})
breaker_literal = CircuitBreaker(failure_statuses={503})
# Any collection, not only a set: a range, a list, a tuple.
retry_collections = RetryPolicy(retry_statuses=range(500, 600), retry_methods=("GET", "PUT"))
error_collections = ErrorPolicy(pass_statuses=[401, 403], redact_names=["x-tenant-pin"])
keys_collection = IdempotencyPolicy(methods=["POST"])
breaker_collection = CircuitBreaker(failure_statuses=range(500, 600))


# buffer= and the fault transport, as the README shows them.
buffered: ResilientTransport = ResilientTransport(buffer=1_048_576)
faulty: FaultTransport = FaultTransport(
    httpx.MockTransport(lambda request: httpx.Response(200)),
    faults=[Fault.status(503, headers={"Retry-After": "1"}), None, Fault.disconnect()],
)
seeded: FaultTransport2 = FaultTransport2(faults=[Fault.read_timeout()], rate=0.1, seed=7)
fault_seen: list[Fault | None] = [call.fault for call in faulty.calls]
with httpx.Client(transport=ResilientTransport(faulty, buffer=0)) as faulty_client:
    faulty_client.get("https://api.example.com", extensions={"resilience": {"buffer": 0}})
