"""What httpx does above the transport keeps working: redirects, auth flows, 304s, streaming."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import httpx
import pytest

from _support import Flavour
from httpx_resilience import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ErrorPolicy,
    NotFoundError,
    RequestTimeoutError,
    RetryPolicy,
)
from httpx_resilience.testing import no_wait

from ._support import Runner
from .conftest import LiveServer, new_id, streamed_body

FIVE_MB = {"chunks": 80, "size": 65536}  # 5 MiB in 64 KiB chunks
FIVE_MB_SHA = hashlib.sha256(streamed_body(**FIVE_MB)).hexdigest()


def test_follow_redirects(run: Runner, server: LiveServer) -> None:
    """A 302 passes through and httpx follows it to the final 200."""

    async def scenario() -> None:
        async with run.client(follow_redirects=True) as client:
            response = await client.get(server.url("/redirect"))
        assert response.status_code == 200
        assert response.json()["query"] == "redirected=1"
        assert [r.status_code for r in response.history] == [302]

    run(scenario)


def test_redirect_not_followed_is_returned(hx: Flavour, server: LiveServer) -> None:
    """Without follow_redirects the 302 itself comes back, not an error."""
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.get(server.url("/redirect"))
    assert response.status_code == 302
    assert response.headers["location"] == "/echo?redirected=1"


def test_redirect_to_error_raises_for_final_request(hx: Flavour, server: LiveServer) -> None:
    """A redirect that ends on a 404 raises NotFoundError for the redirected request."""
    url = server.url("/status/307", location="/status/404")
    with (
        hx.httpx.Client(transport=hx.ResilientTransport(), follow_redirects=True) as client,
        pytest.raises(NotFoundError) as excinfo,
    ):
        client.get(url)
    assert excinfo.value.request is not None
    assert excinfo.value.request.url.path == "/status/404"


def test_digest_auth_succeeds(run: Runner, server: LiveServer) -> None:
    """httpx.DigestAuth answers the 401 challenge through the transport."""

    async def scenario() -> None:
        auth = run.hx.httpx.DigestAuth("user", "pass")
        async with run.client() as client:
            response = await client.get(server.url("/digest"), auth=auth)
        assert response.status_code == 200
        assert response.json() == {"authenticated": True, "user": "user"}
        assert [r.status_code for r in response.history] == [401]

    run(scenario)


def test_digest_auth_answers_a_stale_nonce(run: Runner, server: LiveServer) -> None:
    """A DigestAuth reused after the server let its nonce go: the 401 `stale=true` challenge
    to the old credentials is handed back, and DigestAuth answers it, as with plain httpx."""

    async def scenario() -> None:
        auth = run.hx.httpx.DigestAuth("user", "pass")
        async with run.client() as client:
            assert (await client.get(server.url("/digest"), auth=auth)).status_code == 200
            server.state.nonces.clear()  # the server rotates its nonces
            response = await client.get(server.url("/digest"), auth=auth)
        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [401]
        assert "stale=true" in response.history[0].headers["www-authenticate"]

    run(scenario)


def test_digest_auth_wrong_password(run: Runner, server: LiveServer) -> None:
    """Wrong digest credentials end in AuthenticationError for the answered request."""

    async def scenario() -> None:
        auth = run.hx.httpx.DigestAuth("user", "wrong")
        async with run.client() as client:
            with pytest.raises(AuthenticationError) as excinfo:
                await client.get(server.url("/digest"), auth=auth)
        err = excinfo.value
        assert err.status_code == 401
        assert err.message == "digest credentials required"
        assert err.request is not None
        assert err.request.headers["authorization"].startswith("Digest ")
        assert len(server.requests()) == 2

    run(scenario)


def test_digest_challenge_without_auth_is_returned(hx: Flavour, server: LiveServer) -> None:
    """A Digest challenge to a request without credentials is passed on for an auth flow."""
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        response = client.get(server.url("/digest"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Digest ")


def test_etag_304_passes_through(hx: Flavour, server: LiveServer) -> None:
    """A conditional request's 304 Not Modified comes back as a response."""
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:
        first = client.get(server.url("/etag"))
        second = client.get(server.url("/etag"), headers={"If-None-Match": first.headers["etag"]})
    assert first.status_code == 200
    assert second.status_code == 304
    assert second.content == b""


def _gated_url(server: LiveServer) -> str:
    return server.url("/stream-gated", **FIVE_MB)


def test_stream_body_not_buffered(run: Runner, server: LiveServer) -> None:
    """A 5 MB 2xx body streams; its first bytes arrive while the server still holds the rest."""

    async def scenario() -> None:
        timeout = run.hx.httpx.Timeout(5)
        async with (
            run.client(timeout=timeout) as client,
            client.stream("GET", _gated_url(server)) as response,
        ):
            assert response.status_code == 200
            assert not response.is_stream_consumed
            digest = hashlib.sha256()
            async for piece in client.iter_bytes(response):
                if not server.state.gate.is_set():
                    assert piece
                    # The server is held at the gate.
                    assert server.sent("stream-gated") == FIVE_MB["size"]
                    server.state.gate.set()
                digest.update(piece)
        assert digest.hexdigest() == FIVE_MB_SHA

    run(scenario)


def test_stream_body_intact_sync(hx: Flavour, server: LiveServer) -> None:
    """A streamed 2xx body arrives byte for byte, chunk after chunk."""
    with (
        hx.httpx.Client(transport=hx.ResilientTransport()) as client,
        client.stream("GET", server.url("/stream", **FIVE_MB)) as response,
    ):
        digest = hashlib.sha256()
        count = 0
        for piece in response.iter_bytes():
            digest.update(piece)
            count += 1
    assert count > 1
    assert digest.hexdigest() == FIVE_MB_SHA


def test_classify_hook_passes_large_2xx_whole(run: Runner, server: LiveServer) -> None:
    """With classify set, a 2xx too large to inspect still reaches the caller whole."""
    seen: list[int] = []

    def classify(response: httpx.Response) -> type[APIError] | None:
        seen.append(len(response.content))
        return None

    async def scenario() -> None:
        transport = run.transport(errors=ErrorPolicy(classify=classify))
        async with (
            run.client(transport) as client,
            client.stream("GET", server.url("/stream", **FIVE_MB)) as response,
        ):
            digest = hashlib.sha256()
            async for piece in client.iter_bytes(response):
                digest.update(piece)
        assert digest.hexdigest() == FIVE_MB_SHA
        assert seen == []

    run(scenario)


def test_classify_hook_turns_2xx_into_error(hx: Flavour, server: LiveServer) -> None:
    """classify reads a small 2xx JSON body and may raise the user's error for it."""

    class EngineError(APIError):
        """Raised when a 200 says the engine failed."""

    def classify(response: httpx.Response) -> type[APIError] | None:
        return EngineError if response.json().get("method") == "POST" else None

    transport = hx.ResilientTransport(errors=ErrorPolicy(classify=classify))
    with hx.httpx.Client(transport=transport) as client:
        assert client.get(server.url("/echo")).json()["method"] == "GET"
        with pytest.raises(EngineError) as excinfo:
            client.post(server.url("/echo"), content=b"hi")
    assert excinfo.value.status_code == 200
    assert excinfo.value.request_id == "req_echo"


def test_transport_kwargs_reuse_one_connection(hx: Flavour, server: LiveServer) -> None:
    """`limits=` reaches the default transport: sequential requests share one TCP connection."""
    transport = hx.ResilientTransport(limits=hx.httpx.Limits(max_connections=1))
    with hx.httpx.Client(transport=transport) as client:
        for _ in range(3):
            assert client.get(server.url("/echo")).status_code == 200
    assert len(server.requests()) == 3
    assert server.connections() == 1


def test_transport_kwargs_limit_the_pool(run: Runner, server: LiveServer) -> None:
    """`limits=` reaches the default transport: a second request waits for the one connection."""

    async def scenario() -> None:
        transport = run.transport(limits=run.hx.httpx.Limits(max_connections=1))
        timeout = run.hx.httpx.Timeout(5, pool=0.3)
        async with (
            run.client(transport, timeout=timeout) as client,
            client.stream("GET", server.url("/stream")) as held,
        ):
            assert held.status_code == 200
            with pytest.raises(RequestTimeoutError) as excinfo:
                await client.get(server.url("/echo"))
        assert excinfo.value.phase == "pool"
        assert isinstance(excinfo.value.__cause__, run.hx.httpx.PoolTimeout)

    run(scenario)


def test_transport_kwargs_with_transport_rejected(hx: Flavour) -> None:
    """Keyword arguments for the default transport next to an explicit one are refused."""
    with pytest.raises(ConfigurationError):
        hx.ResilientTransport(hx.httpx.HTTPTransport(), limits=hx.httpx.Limits(max_connections=1))


def test_transport_shared_across_threads(hx: Flavour, server: LiveServer) -> None:
    """One transport serves concurrent requests from several threads."""
    failures: list[BaseException] = []
    with hx.httpx.Client(transport=hx.ResilientTransport()) as client:

        def work() -> None:
            try:
                for _ in range(5):
                    assert client.get(server.url("/echo")).status_code == 200
                    with pytest.raises(NotFoundError):
                        client.get(server.url("/status/404"))
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    assert failures == []
    assert len(server.requests()) == 40


def test_deadline_leaves_the_callers_request_as_it_was(run: Runner, server: LiveServer) -> None:
    """With a total deadline, a retried call and a followed redirect leave the caller's request
    extensions dict the same object, holding the same timeouts, at every retry and after:
    each attempt had its own shortened copy (issue 14, item 3)."""
    seen_during: list[Any] = []

    async def scenario() -> None:
        transport = run.transport(
            retry=RetryPolicy(timeout=3.0),
            on_retry=lambda event: seen_during.append(dict(own["timeout"])),
        )
        async with run.client(transport=transport, follow_redirects=True, timeout=10.0) as client:
            request = client.build_request("GET", server.url(f"/flaky/{new_id()}", fail=1))
            own = request.extensions
            before = dict(own["timeout"])
            with no_wait():
                response = await client.send(request)
            assert response.status_code == 200
            assert request.extensions is own
            assert (
                own["timeout"]
                == before
                == {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}
            )
            redirected = client.build_request("GET", server.url("/redirect"))
            own_redirected = redirected.extensions
            response = await client.send(redirected)
            assert response.json()["query"] == "redirected=1"
            assert redirected.extensions is own_redirected
            assert own_redirected["timeout"] == before
        assert seen_during == [before]

    run(scenario)
