"""`RedisState`'s store for the async transport: one Lua script call per question.

`_redis_sync.py` is generated from `_redis_async.py` by `tools/unasync.py` (`make unasync`),
and `make test` checks it is current: edit the async file only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._redis import (
    _AFTER,
    _BEFORE,
    _GIVE_BACK,
    _SPEND,
    RedisState,
    _check_asyncio,
    _text,
    _verdict,
)
from ._state import CLEAR, Rules, Verdict
from ._throttle import HORIZON

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio import RedisCluster as AsyncRedisCluster

__all__ = ["AsyncRedisStore"]

_SKIPPED: Any = object()


class AsyncRedisStore:
    """`RedisState` for the async transport (redis.asyncio: asyncio only)."""

    __slots__ = ("_after", "_before", "_give_back", "_spend", "_state")

    def __init__(self, state: RedisState, client: AsyncRedis | AsyncRedisCluster) -> None:
        self._state = state
        self._before = client.register_script(_BEFORE)
        self._after = client.register_script(_AFTER)
        self._spend = client.register_script(_SPEND)
        self._give_back = client.register_script(_GIVE_BACK)

    async def before(
        self,
        host: str,
        rules: Rules,
        first: bool,
        refund: bool = False,
        patience: float = math.inf,
        ahead: float = HORIZON,
    ) -> Verdict:
        args = self._state._before_args(rules, first, refund, patience, ahead)
        raw = await self._run(self._before, host, args)
        return CLEAR if raw is _SKIPPED else _verdict(raw)

    async def after(
        self,
        host: str,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None = None,
        age: float = 0.0,
    ) -> str | None:
        args = self._state._after_args(rules, failed, pause, probe, throttled, age)
        raw = await self._run(self._after, host, args)
        return None if raw is _SKIPPED else (_text(raw) or None)

    async def spend(self, host: str, rules: Rules) -> bool:
        raw = await self._run(self._spend, host, self._state._spend_args(rules))
        return raw is _SKIPPED or int(raw) == 1

    async def give_back(self, host: str, rules: Rules) -> None:
        await self._run(self._give_back, host, self._state._give_back_args(rules))

    async def _run(self, script: Any, host: str, args: list[str] | None) -> Any:
        """Run `script` for `host`; `_SKIPPED` when the rules leave it nothing to do, or when
        Redis fails (the state fails open: the answer is as if nothing were counted)."""
        if args is None:
            return _SKIPPED
        state = self._state
        _check_asyncio()
        try:
            return await script(keys=[state.key(host)], args=args)
        except state._errors as exc:
            state._failed(exc)
            return _SKIPPED
