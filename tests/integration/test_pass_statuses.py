"""`ErrorPolicy(pass_statuses=...)`: statuses handed back as plain responses, never retried, so
httpx's auth flows, response event hooks and the caller's status checks see them (issue 14,
item 2). The token-refresh flow here is the README's recipe."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from httpx_resilience import AuthenticationError, ErrorPolicy, NotFoundError, from_response

from ._support import Runner
from .conftest import BEARER_TOKEN, LiveServer

PASS_401 = ErrorPolicy(pass_statuses={401})


def refreshing_auth(run: Runner, token: str, refresh: Callable[[], str]) -> Any:
    """httpx's documented token-refresh flow, with the typed error raised when a fresh token
    is refused too (the README's recipe)."""

    class RefreshingAuth(run.hx.httpx.Auth):  # type: ignore[misc,name-defined]
        requires_response_body = True  # so from_response() has the body, sync or async

        def __init__(self) -> None:
            self.token = token

        def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
            request.headers["Authorization"] = f"Bearer {self.token}"
            response = yield request
            if response.status_code == 401:
                self.token = refresh()
                request.headers["Authorization"] = f"Bearer {self.token}"
                response = yield request
            if response.status_code == 401:
                raise from_response(response)

    return RefreshingAuth()


def _refresher(calls: list[str]) -> Callable[[], str]:
    """A token refresh that hands out the token the server takes, noting each call."""

    def refresh() -> str:
        calls.append(BEARER_TOKEN)
        return BEARER_TOKEN

    return refresh


def test_auth_flow_refreshes_on_a_passed_401(run: Runner, server: LiveServer) -> None:
    """With 401 passed, the auth flow sees it, refreshes once and resends: the POST reaches
    the server twice with one idempotency key, and the caller gets the 200."""
    refreshed: list[str] = []

    async def scenario() -> None:
        auth = refreshing_auth(run, "stale-token", _refresher(refreshed))
        async with run.client(transport=run.transport(errors=PASS_401)) as client:
            response = await client.post(server.url("/bearer"), json={"n": 1}, auth=auth)
        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [401]
        sent = server.requests()
        assert [r.headers["authorization"] for r in sent] == [
            "Bearer stale-token",
            f"Bearer {BEARER_TOKEN}",
        ]
        keys = {r.headers["idempotency-key"] for r in sent}
        assert len(keys) == 1
        assert response.json()["idempotency_key"] in keys
        assert refreshed == [BEARER_TOKEN]

    run(scenario)


def test_auth_flow_never_sees_a_raised_401(run: Runner, server: LiveServer) -> None:
    """Without pass_statuses the transport raises on the 401 before the flow can refresh:
    why the setting exists."""
    refreshed: list[str] = []

    async def scenario() -> None:
        auth = refreshing_auth(run, "stale-token", _refresher(refreshed))
        async with run.client() as client:
            with pytest.raises(AuthenticationError):
                await client.get(server.url("/bearer"), auth=auth)
        assert refreshed == []
        assert len(server.requests()) == 1

    run(scenario)


def test_auth_flow_raises_the_typed_error_when_refresh_fails(
    run: Runner, server: LiveServer
) -> None:
    """A fresh token refused too ends in the typed error from_response builds, with the
    server's message, code and request id."""

    async def scenario() -> None:
        auth = refreshing_auth(run, "stale-token", lambda: "also-stale")
        async with run.client(transport=run.transport(errors=PASS_401)) as client:
            with pytest.raises(AuthenticationError) as excinfo:
                await client.get(server.url("/bearer"), auth=auth)
        err = excinfo.value
        assert (err.status_code, err.code, err.request_id) == (401, "token_expired", "req_bearer")
        assert err.message == "the access token expired"
        assert "also-stale" not in repr(err.to_dict())
        assert len(server.requests()) == 2

    run(scenario)


def test_response_hook_sees_a_passed_status(run: Runner, server: LiveServer) -> None:
    """event_hooks["response"] gets the passed 401 itself, annotated like any response."""
    seen: list[tuple[int, Any, Any]] = []

    def hook(response: Any) -> None:
        seen.append(
            (
                response.status_code,
                response.extensions.get("request_id"),
                response.extensions.get("attempts"),
            )
        )

    async def ahook(response: Any) -> None:
        hook(response)

    async def scenario() -> None:
        hooks = {"response": [run.pick(hook, ahook)]}
        async with run.client(
            transport=run.transport(errors=PASS_401), event_hooks=hooks
        ) as client:
            response = await client.get(server.url("/bearer"))
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "token_expired"
        assert seen == [(401, "req_bearer", 1)]

    run(scenario)


def test_passed_status_is_never_retried(run: Runner, server: LiveServer) -> None:
    """A 503 in pass_statuses is handed back at once, with its whole body, though 503 is in
    retry_statuses."""

    async def scenario() -> None:
        errors = ErrorPolicy(pass_statuses={503}, max_body_bytes=16)
        async with run.client(transport=run.transport(errors=errors)) as client:
            response = await client.get(server.url("/status/503", fmt="text", message="m" * 1000))
        assert response.status_code == 503
        assert response.text == "m" * 1000
        assert response.extensions["attempts"] == 1
        assert len(server.requests()) == 1

    run(scenario)


def test_pass_statuses_per_request(run: Runner, server: LiveServer) -> None:
    """A per-request override passes a 404 for one call; the next call still raises."""

    async def scenario() -> None:
        override = {"resilience": {"errors": ErrorPolicy(pass_statuses={404})}}
        async with run.client() as client:
            response = await client.get(server.url("/status/404"), extensions=override)
            assert response.status_code == 404
            with pytest.raises(NotFoundError) as excinfo:
                await client.get(server.url("/status/404"))
            assert from_response(response).status_code == excinfo.value.status_code

    run(scenario)


@pytest.mark.parametrize("mode", ["sync"])
def test_from_response_in_a_response_hook_leaves_the_body(run: Runner, server: LiveServer) -> None:
    """A response hook that logs from_response(r) of a passed 404 the client has not read yet:
    the caller still gets the 404 with its whole body (from_response reads what it needs and
    leaves the rest to the client). Sync: an unread async body is left alone anyway."""
    logged: list[str] = []

    def log_errors(response: Any) -> None:
        if response.is_error:
            logged.append(str(from_response(response)))

    async def scenario() -> None:
        errors = ErrorPolicy(pass_statuses={404})
        hooks = {"response": [log_errors]}
        async with run.client(transport=run.transport(errors=errors), event_hooks=hooks) as c:
            response = await c.get(server.url("/status/404", fmt="text", message="m" * 5000))
        assert response.status_code == 404
        assert response.text == "m" * 5000
        assert len(logged) == 1
        assert logged[0].startswith("not_found")

    run(scenario)
