"""A small SDK built on httpx-resilience, and how that SDK's users test their code.

Run it as it is: python examples/sdk_example.py. Part one is what an SDK author writes for the
(made-up) Acme Jobs API: an error base class, subclasses mapped with `status_classes`, a
`parse_body` for Acme's error shape, a `classify` hook for "200 OK, but the job failed", and a
client wiring them into one `ResilientTransport`. Part two runs it against a throwaway local
server (standard library only); part three is what the SDK's users write in their own tests,
with no network. Every result is checked: the exit code is non-zero if one is not as expected.
"""

from __future__ import annotations

import json
import pickle
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any, ClassVar, TypeVar

import httpx

import httpx_resilience
from httpx_resilience import ErrorPolicy, IdempotencyPolicy, RequestIdPolicy, RetryPolicy
from httpx_resilience.testing import no_wait

E = TypeVar("E", bound=httpx_resilience.APIError)

# ---- Part one: the SDK. Acme's errors read {"failure": {"kind": ..., "reason": ...}}. ----


class AcmeError(httpx_resilience.APIError):
    """Base of the errors the Acme SDK defines (no `default_code`: subclasses keep theirs)."""


# mypy --strict reports the `request`/`response` properties of APIError and httpx's
# HTTPStatusError as incompatible on each subclass that joins the two: that is intended.
class AcmeNotFoundError(AcmeError, httpx_resilience.NotFoundError):  # type: ignore[misc]
    """404: no such job."""


class AcmeRateLimitError(AcmeError, httpx_resilience.RateLimitError):  # type: ignore[misc]
    """429: too many jobs at once; `retry_after` says how long to wait."""


class AcmeJobFailedError(AcmeError):
    """The job ran and failed: a 200 whose job document says "failed"."""

    default_code = "job_failed"

    @property
    def job_id(self) -> str | None:
        """Read from `details`, so the error needs no extra constructor argument to pickle."""
        job_id = (self.details or {}).get("id")
        return job_id if isinstance(job_id, str) else None


def _document(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a body, or {}: the hooks below must never raise on a server's garbage."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def parse_acme_body(response: httpx.Response) -> dict[str, Any] | None:
    """Message, code and details from Acme's shape; None (the built-in parser's turn) otherwise."""
    data = _document(response)
    failure = data.get("failure")
    if not isinstance(failure, dict):
        return None
    details = {k: v for k, v in data.items() if k != "failure"}
    return {"message": failure.get("reason"), "code": failure.get("kind"), "details": details}


def classify_acme(response: httpx.Response) -> type[httpx_resilience.APIError] | None:
    """A 200 job document whose status is "failed" is an error; None keeps the default."""
    if response.status_code == 200 and _document(response).get("status") == "failed":
        return AcmeJobFailedError
    return None


ACME_ERRORS = ErrorPolicy(
    status_classes={404: AcmeNotFoundError, 429: AcmeRateLimitError},
    parse_body=parse_acme_body,
    classify=classify_acme,
)
ACME_REQUEST_IDS = RequestIdPolicy(response_headers=("acme-request-id",))


@dataclass(frozen=True)
class Job:
    id: str
    status: str


class AcmeClient:
    """The SDK's client. Raises `AcmeError` subclasses, or another `httpx_resilience.APIError`."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.acme.test",
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,  # users' tests pass a MockTransport
    ) -> None:
        resilient = httpx_resilience.ResilientTransport(
            transport,
            retry=RetryPolicy(max_attempts=max_retries + 1),
            idempotency=IdempotencyPolicy(generate=lambda: f"idem_{uuid.uuid4().hex}"),
            request_ids=ACME_REQUEST_IDS,
            errors=ACME_ERRORS,
        )
        self._http = httpx.Client(
            base_url=base_url,
            transport=resilient,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10.0,
        )

    def create_job(self, task: str) -> Job:
        data = self._http.post("/v1/jobs", json={"task": task}).json()
        return Job(data["id"], data["status"])

    def get_job(self, job_id: str) -> Job:
        data = self._http.get(f"/v1/jobs/{job_id}").json()
        return Job(data["id"], data["status"])

    def close(self) -> None:
        self._http.close()


# ---- Part two: the SDK against a local Acme server. ----


class AcmeServer(BaseHTTPRequestHandler):
    """Creating a job meets two 503s first; job_1 succeeded, job_2 failed, others are 404."""

    protocol_version = "HTTP/1.1"
    ids: ClassVar[Iterator[int]] = count(1)
    create_keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.create_keys.append(self.headers.get("Idempotency-Key", ""))
        if len(self.create_keys) <= 2:
            failure = {"kind": "overloaded", "reason": "Busy, try again"}
            self.reply(503, {"failure": failure}, {"retry-after-ms": "20"})
        else:
            self.reply(200, {"id": "job_1", "status": "queued"})

    def do_GET(self) -> None:
        job_id = self.path.rsplit("/", 1)[-1]
        if job_id == "job_1":
            self.reply(200, {"id": job_id, "status": "succeeded"})
        elif job_id == "job_2":
            failure = {"kind": "out_of_memory", "reason": "The job ran out of memory"}
            self.reply(200, {"id": job_id, "status": "failed", "failure": failure})
        else:
            self.reply(404, {"failure": {"kind": "job_not_found", "reason": f"No {job_id}"}})

    def reply(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("acme-request-id", f"acme_req_{next(self.ids)}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def acme_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AcmeServer)
    server.daemon_threads = True  # a keep-alive connection left open must not block the exit
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Unexpected(Exception):
    """A check failed."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Unexpected(what)


def raised(call: Callable[[], object], cls: type[E]) -> E:
    """The `cls` error that `call` raised, printed."""
    try:
        call()
    except cls as err:
        print(f"{type(err).__name__}: {err}")
        return err
    raise Unexpected(f"no {cls.__name__} raised")


def against_the_server(base_url: str) -> None:
    client = AcmeClient("acme-test-key", base_url=base_url)
    job = client.create_job("render")
    keys = AcmeServer.create_keys
    print(f"create_job: {job} after {len(keys)} attempts, Idempotency-Key {keys[0]} on each")
    expect(job == Job("job_1", "queued") and len(keys) == 3, f"{job}, {keys}")
    expect(len(set(keys)) == 1 and keys[0].startswith("idem_"), f"keys {keys}")
    expect(client.get_job("job_1").status == "succeeded", "job_1 did not succeed")
    missing = raised(lambda: client.get_job("job_404"), AcmeNotFoundError)
    # Catchable as the SDK's base, as the library's NotFoundError, and as httpx's error.
    expect(isinstance(missing, (AcmeError, httpx_resilience.NotFoundError)), repr(missing))
    expect(isinstance(missing, httpx.HTTPStatusError), repr(missing))
    expect(missing.code == "job_not_found" and missing.message == "No job_404", repr(missing))
    failed = raised(lambda: client.get_job("job_2"), AcmeJobFailedError)
    expect(failed.status_code == 200 and failed.code == "out_of_memory", repr(failed))
    expect(failed.job_id == "job_2" and not failed.retryable, repr(failed))
    for err in (missing, failed):
        expect(str(err.request_id).startswith("acme_req_"), f"request_id {err.request_id!r}")
    client.close()


# ---- Part three: a user of the SDK tests their own code, with no network. ----


def job_status_or_none(client: AcmeClient, job_id: str) -> str | None:
    """The user's code under test: a missing job is None, a failed one "failed"."""
    try:
        return client.get_job(job_id).status
    except AcmeNotFoundError:
        return None
    except AcmeJobFailedError:
        return "failed"


def users_tests() -> None:
    # 1. Construct errors directly: message positional, every attribute a keyword.
    err = AcmeRateLimitError("Slow down", retry_after=5.0, status_code=429, request_id="r_t")
    copy = pickle.loads(pickle.dumps(err))
    expect(type(copy) is AcmeRateLimitError and copy.retry_after == 5.0, repr(copy))
    expect(copy.code == "rate_limited" and copy.retryable, repr(copy))
    # 2. from_response() with the SDK's policies: the class and fields the SDK would raise.
    body = {"failure": {"kind": "job_not_found", "reason": "No job_9"}}
    request = httpx.Request("GET", "https://api.acme.test/v1/jobs/job_9")
    headers = {"acme-request-id": "acme_req_test"}
    response = httpx.Response(404, json=body, headers=headers, request=request)
    built = httpx_resilience.from_response(
        response, errors=ACME_ERRORS, request_ids=ACME_REQUEST_IDS
    )
    print(f"from_response: {built!r}")
    expect(type(built) is AcmeNotFoundError and built.request_id == "acme_req_test", repr(built))
    # 3. httpx.MockTransport under the SDK's own client: retries, classify and all.
    answers = iter([503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(next(answers), json={"id": "job_7", "status": "queued"})
        if request.url.path.endswith("/job_2"):
            failure = {"kind": "out_of_memory", "reason": "Out of memory"}
            return httpx.Response(200, json={"id": "job_2", "status": "failed", "failure": failure})
        return httpx.Response(404, json={"failure": {"kind": "job_not_found", "reason": "No"}})

    client = AcmeClient("test-key", transport=httpx.MockTransport(handler))
    with no_wait():  # the backoff between the 503s is computed, not slept
        expect(client.create_job("render") == Job("job_7", "queued"), "create_job failed")
    expect(job_status_or_none(client, "job_404") is None, "a 404 was not None")
    expect(job_status_or_none(client, "job_2") == "failed", "a failed job was not 'failed'")
    print("users' tests: constructed, from_response and MockTransport cases passed")


def main() -> int:
    try:
        with acme_server() as base_url:
            against_the_server(base_url)
        users_tests()
    except Unexpected as exc:
        print(f"sdk_example FAILED: {exc}", file=sys.stderr)
        return 1
    print("sdk_example OK: the SDK's errors, retries and users' tests behaved as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
