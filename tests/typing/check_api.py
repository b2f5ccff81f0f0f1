"""Checked by mypy --strict, never run: the public API reads well to a type checker."""

from __future__ import annotations

import httpx

from httpx_resilience import (
    APIError,
    AsyncResilientTransport,
    ErrorPolicy,
    RateLimitError,
    RequestIdPolicy,
    ResilientTransport,
    StatusError,
    from_response,
)


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
