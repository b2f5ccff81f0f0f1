"""The transports for httpx2, the fork of httpx that the OpenAI 3.x and Anthropic 2.x SDKs use.

Same arguments, same behaviour and the same error classes as the httpx transports; only the
package of the requests, responses and inner transport differs::

    import httpx2
    import openai
    from httpx_resilience.httpx2 import ResilientTransport

    client = openai.OpenAI(
        max_retries=0,  # the transport retries, with one idempotency key per call
        http_client=httpx2.Client(transport=ResilientTransport()),
    )

`FaultTransport` is the httpx2 twin of `httpx_resilience.testing.FaultTransport`, for tests:
it wraps httpx2 transports, and its responses and exceptions are httpx2's.

Needs the `httpx2` extra: `pip install 'httpx-resilience[httpx2]'`.
"""

from __future__ import annotations

try:
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without httpx2
    raise ImportError(
        "httpx_resilience.httpx2 needs the httpx2 package: pip install 'httpx-resilience[httpx2]'",
        name="httpx2",
    ) from exc

from ._backend import Backend, register
from ._transport import AsyncDriver, SyncDriver
from .testing import _FaultDriver

__all__ = ["AsyncResilientTransport", "FaultTransport", "ResilientTransport"]

_BACKEND: Backend = register(httpx2)


# The drivers are typed against httpx's classes, which httpx2's mirror one for one.
class ResilientTransport(SyncDriver, httpx2.BaseTransport):  # type: ignore[misc]
    """An httpx2 transport that retries safely and turns every failure into a typed `APIError`."""

    _backend = _BACKEND


class AsyncResilientTransport(AsyncDriver, httpx2.AsyncBaseTransport):  # type: ignore[misc]
    """The async twin of `ResilientTransport` for httpx2; runs under asyncio and trio alike."""

    _backend = _BACKEND


class FaultTransport(_FaultDriver, httpx2.BaseTransport, httpx2.AsyncBaseTransport):  # type: ignore[misc]
    """`httpx_resilience.testing.FaultTransport` for httpx2: it wraps httpx2 transports (or a
    handler, or answers 200), and its responses and exceptions are httpx2's own."""

    _backend = _BACKEND
