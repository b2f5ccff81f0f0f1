"""The README's "POST and keys": a keyed POST is retried after it may have reached the server;
with keys turned off for one host through a mount, a POST there is retried only on a 429 (and
failures before it left), never on a 5xx (issue 14, item 11)."""

from __future__ import annotations

import pytest

from httpx_resilience import IdempotencyPolicy, ServiceUnavailableError
from httpx_resilience.testing import no_wait

from ._support import Runner
from .conftest import LiveServer, new_id

NO_KEYS = IdempotencyPolicy(enabled=False)


def test_keyed_post_is_retried_on_a_503_with_one_key(run: Runner, server: LiveServer) -> None:
    """The default: a POST meeting a 503 is retried, both attempts with one generated key."""
    sid = new_id()

    async def scenario() -> None:
        async with run.client() as client:
            response = await client.post(server.url(f"/flaky/{sid}", fail=1), json={"n": 1})
        assert response.status_code == 200
        keys = response.json()["keys"]
        assert len(keys) == 2
        assert keys[0]
        assert keys[0] == keys[1]

    with no_wait():
        run(scenario)


@pytest.mark.parametrize(("status", "attempts"), [(503, 1), (408, 1), (429, 2)])
def test_unkeyed_post_through_a_mount(
    run: Runner, server: LiveServer, status: int, attempts: int
) -> None:
    """With keys off for the host (a mount), a POST goes without a key and is retried on a 429
    only: a 503 or a 408 raises after one attempt."""
    sid = new_id()

    async def scenario() -> None:
        mounts = {server.base_url: run.transport(idempotency=NO_KEYS)}
        async with run.client(mounts=mounts) as client:
            url = server.url(f"/flaky/{sid}", fail=1, status=status)
            if attempts == 1:
                with pytest.raises(Exception) as excinfo:  # noqa: PT011 - checked below
                    await client.post(url, json={"n": 1})
                assert excinfo.value.status_code == status  # type: ignore[attr-defined]
                assert excinfo.value.attempts == 1  # type: ignore[attr-defined]
                if status == 503:
                    assert isinstance(excinfo.value, ServiceUnavailableError)
            else:
                response = await client.post(url, json={"n": 1})
                assert response.json()["seen"] == attempts
        sent = [r for r in server.requests() if r.path == f"/flaky/{sid}"]
        assert len(sent) == attempts
        assert all("idempotency-key" not in r.headers for r in sent)

    with no_wait():
        run(scenario)
