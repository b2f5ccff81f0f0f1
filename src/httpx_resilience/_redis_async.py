"""`RedisState`'s store for the async transport: one Lua script call per question.

`_redis_sync.py` is generated from `_redis_async.py` by `tools/unasync.py` (`make unasync`),
and `make test` checks it is current: edit the async file only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._redis import _AFTER, _BEFORE, _SPEND, RedisState, _check_asyncio, _text, _verdict
from ._state import CLEAR, Rules, Verdict

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio import RedisCluster as AsyncRedisCluster

__all__ = ["AsyncRedisStore"]


class AsyncRedisStore:
    """`RedisState` for the async transport (redis.asyncio: asyncio only)."""

    __slots__ = ("_after", "_before", "_spend", "_state")

    def __init__(self, state: RedisState, client: AsyncRedis | AsyncRedisCluster) -> None:
        self._state = state
        self._before = client.register_script(_BEFORE)
        self._after = client.register_script(_AFTER)
        self._spend = client.register_script(_SPEND)

    async def before(self, host: str, rules: Rules, first: bool, refund: bool = False) -> Verdict:
        state = self._state
        args = state._before_args(rules, first, refund)
        if args is None:
            return CLEAR
        _check_asyncio()
        try:
            raw = await self._before(keys=[state.key(host)], args=args)
        except state._errors as exc:
            state._failed(exc)
            return CLEAR
        return _verdict(raw)

    async def after(
        self, host: str, rules: Rules, failed: bool | None, pause: float | None, probe: bool
    ) -> str | None:
        state = self._state
        args = state._after_args(rules, failed, pause, probe)
        if args is None:
            return None
        _check_asyncio()
        try:
            raw = await self._after(keys=[state.key(host)], args=args)
        except state._errors as exc:
            state._failed(exc)
            return None
        return _text(raw) or None

    async def spend(self, host: str, rules: Rules) -> bool:
        state = self._state
        args = state._spend_args(rules)
        if args is None:
            return True
        _check_asyncio()
        try:
            raw = await self._spend(keys=[state.key(host)], args=args)
        except state._errors as exc:
            state._failed(exc)
            return True
        return int(raw) == 1
