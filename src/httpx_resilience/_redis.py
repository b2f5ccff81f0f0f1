"""`RedisState`: the per-host counts in Redis, shared by every process that points at it.

Each operation (`before`, `after`, `spend`) is one Lua script, so it is atomic on the server
however many processes race. The scripts mirror `MemoryState` step for step, on the Redis
server's clock (`TIME`): processes on machines whose clocks disagree still share one view, and
only durations cross the wire. One hash per host, `{prefix}:{host}`:

* `bw`, `cw`: the slot width of the budget's and the breaker's window (the first one wins, as
  in `MemoryState`);
* `b:<slot>`, `c:<slot>`: `"<requests> <retries>"` and `"<calls> <failures>"` of one slot of
  width `window / SLOTS`, never negative (a refund takes back a retry counted in the window);
  stale slots are deleted when a new slot is opened; a value that cannot be read counts
  nothing (it never makes a script fail);
* `circuit`, `reopens`: the breaker's state and its deadline (server time, seconds);
* `paused`: when the host's rate-limit window reopens (server time, seconds);
* the throttle's (`_throttle.py`): `t:<slot>`, `"<attempts> 0"` of one slot of its meter (the
  host's attempts of the last `METER_WINDOW`); once the host throttled, its limit: `tm` (the
  rate that was cut, requests per second), `tk` (the curve's zero point, seconds), `tc` (when
  it was cut), `tt` (the bucket's tokens, below zero for tokens reserved ahead), `tf` (as of
  when) and `tl` (when it would be lifted at the latest with nothing more sent: the key is
  kept until then). A limit that cannot be read is dropped.

The key expires once the host has been idle for a few times its longest window (or
`open_for`, or what is left of a pause, at most `MAX_PAUSE`, or of the throttle's limit), plus
`ttl_slack`; never later than `MAX_TTL` after its last write.

`redis` is imported here only, and only when a `RedisState` is made: the package itself does
not need it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._errors import ConfigurationError
from ._policies import is_number
from ._state import CLEAR, MAX_PAUSE, SLOTS, AsyncStore, Rules, Store, Verdict
from ._throttle import METER_WINDOW

if TYPE_CHECKING:
    from redis import Redis, RedisCluster
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio import RedisCluster as AsyncRedisCluster

__all__ = ["RedisState"]

logger = logging.getLogger("httpx_resilience")

# At most one "Redis is failing" warning per state in this many seconds.
WARN_EVERY = 60.0
# An idle host's key lives this many times its longest window / open_for (plus the slack).
TTL_FACTOR = 3
# But never longer than a week: an absurd window or slack must not make a key that never
# expires (nor an expiry Redis refuses, which would fail every script).
MAX_TTL = 7 * 86_400.0

# What every script starts with. ARGV[1]: SLOTS; ARGV[2]: the key's expiry (ms) for these
# rules; ARGV[3]: the slack (ms) added to what is left of a pause.
_PRELUDE = f"""
local MAX_PAUSE = {MAX_PAUSE!r}
local MAX_TTL = {math.ceil(MAX_TTL * 1000)}
local METER = {METER_WINDOW!r}
"""
_PRELUDE += """
local key = KEYS[1]
local SLOTS = tonumber(ARGV[1])
local METER_SLOT = METER / SLOTS
local base_ttl = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
-- Redis < 5 replicates scripts verbatim unless told otherwise, and a verbatim replay of a
-- script that read TIME would not be the same; from Redis 5 on this is the default.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local raw = redis.call('HGETALL', key)
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local dirty = false

local function set(field, value)
  h[field] = value
  redis.call('HSET', key, field, value)
  dirty = true
end

-- Moments are kept to the microsecond; durations go back with every digit, as strings
-- (a Lua number is truncated to an integer on its way to the client).
local function stamp(x) return string.format('%.6f', x) end
local function dur(x) return string.format('%.17g', x) end

-- A window of SLOTS slots: fields '<p>:<slot>' = '<a> <b>', the slot width in '<p>w' (a width
-- that cannot be used, as a count that cannot be read, is replaced rather than failing here
-- and in every script for the host until the key expires).
local function width(p, given)
  local w = tonumber(h[p .. 'w'])
  if w == nil or not (w > 0) or w == math.huge then
    set(p .. 'w', given)
    w = tonumber(given)
  end
  return w
end

local function slots(p)
  local found = {}
  local pattern = '^' .. p .. ':(%d+)$'
  for field, value in pairs(h) do
    local s = string.match(field, pattern)
    if s then found[#found + 1] = {field, tonumber(s), value} end
  end
  return found
end

local function counts(value)
  local a, b = string.match(value, '^(%d+) (%d+)$')
  a, b = tonumber(a), tonumber(b)
  if a == nil or b == nil or a == math.huge or b == math.huge then return 0, 0 end
  return a, b
end

local function window_add(p, w, a, b)
  local slot = math.floor(now / w)
  local field = p .. ':' .. string.format('%.0f', slot)
  local value = h[field]
  if value == nil then
    local oldest = slot - SLOTS + 1
    for _, cell in ipairs(slots(p)) do
      if cell[2] < oldest then
        h[cell[1]] = nil
        redis.call('HDEL', key, cell[1])
      end
    end
    value = '0 0'
  end
  local x, y = counts(value)
  set(field, string.format('%.0f %.0f', x + a, y + b))
end

-- Takes one back from the second count, in the newest slot of the window that has one: what
-- a retry spent, given back. With none in the window there is nothing to give back (its
-- spend has left the window already), and no count ever goes below 0.
local function window_refund(p, w)
  local oldest = math.floor(now / w) - SLOTS + 1
  local newest = nil
  for _, cell in ipairs(slots(p)) do
    if cell[2] >= oldest and (newest == nil or cell[2] > newest[2]) then
      local _, y = counts(cell[3])
      if y > 0 then newest = cell end
    end
  end
  if newest ~= nil then
    local x, y = counts(newest[3])
    set(newest[1], string.format('%.0f %.0f', x, y - 1))
  end
end

local function window_sums(p, w)
  local oldest = math.floor(now / w) - SLOTS + 1
  local a, b = 0, 0
  for _, cell in ipairs(slots(p)) do
    if cell[2] >= oldest then
      local x, y = counts(cell[3])
      a = a + x
      b = b + y
    end
  end
  return a, b
end

local function window_clear(p)
  for _, cell in ipairs(slots(p)) do
    h[cell[1]] = nil
    redis.call('HDEL', key, cell[1])
  end
end

local function open_circuit(open_for)
  set('circuit', 'open')
  set('reopens', stamp(now + open_for))
end

-- What is left of the host's pause: never more than MAX_PAUSE, whatever the hash holds.
local function paused_for()
  local left = (tonumber(h['paused']) or 0) - now
  if not (left > 0) then return 0 end
  return math.min(left, MAX_PAUSE)
end

-- The throttle (_throttle.py, step for step). Its policy from ARGV[i], ARGV[i + 1],
-- ARGV[i + 2]: cut_to, growth, min_rate; nil when it is off.
local function throttle_at(i)
  local cut_to = tonumber(ARGV[i])
  if cut_to == nil then return nil end
  return {cut_to = cut_to, growth = tonumber(ARGV[i + 1]), min_rate = tonumber(ARGV[i + 2])}
end

local function finite(x) return x ~= nil and x == x and x > -math.huge and x < math.huge end

-- The client's send rate: the answers in the meter, over its window.
local function measured()
  local answers = window_sums('t', METER_SLOT)
  return answers / METER
end

local function zero_point(wmax, th)
  local scaled = wmax * (1 - th.cut_to) / th.growth
  if scaled > 0 then return scaled ^ (1 / 3) end
  return 0
end

local function limit_rate(lim, th)
  local d = (now - lim.cut) - lim.zero
  return math.max(th.min_rate, th.growth * d * d * d + lim.wmax)
end

local LIMIT_FIELDS = {'tm', 'tk', 'tc', 'tt', 'tf', 'tl'}

local function clear_limit()
  for _, field in ipairs(LIMIT_FIELDS) do
    if h[field] ~= nil then
      h[field] = nil
      redis.call('HDEL', key, field)
    end
  end
end

-- The host's limit, or nil when it has none (one that cannot be read is dropped).
local function limit_of()
  if h['tm'] == nil then return nil end
  local lim = {
    wmax = tonumber(h['tm']), zero = tonumber(h['tk']), cut = tonumber(h['tc']),
    tokens = tonumber(h['tt']), filled = tonumber(h['tf']),
  }
  if not (finite(lim.wmax) and finite(lim.zero) and finite(lim.cut) and finite(lim.tokens)
      and finite(lim.filled) and lim.wmax >= 0 and lim.zero >= 0) then
    clear_limit()
    return nil
  end
  return lim
end

-- Saved with `rate`, the limit as of now: about when it would be lifted with nothing more
-- sent (the curve back at wmax, the bucket refilled at no more than that rate).
local function save_limit(lim, rate)
  local refilled = lim.filled + math.max(math.max(1, lim.wmax) - lim.tokens, 0) / rate
  set('tm', dur(lim.wmax))
  set('tk', dur(lim.zero))
  set('tc', stamp(lim.cut))
  set('tt', dur(lim.tokens))
  set('tf', stamp(lim.filled))
  set('tl', stamp(math.max(lim.cut + lim.zero, refilled)))
end

local function cbrt(x)
  if x < 0 then return -((-x) ^ (1 / 3)) end
  return x ^ (1 / 3)
end

-- The tokens earned from s to e seconds after the cut: the limit's integral (the floor, then
-- the curve once it has climbed past it).
local function earned(lim, th, s, e)
  local total = 0
  local crosses = lim.zero + cbrt((th.min_rate - lim.wmax) / th.growth)
  if s < crosses then
    local u = math.min(e, crosses)
    total = total + th.min_rate * (u - s)
    s = u
  end
  if s < e then
    local a, b = s - lim.zero, e - lim.zero
    total = total + th.growth / 4 * (b * b * b * b - a * a * a * a) + lim.wmax * (e - s)
  end
  return total
end

-- Adds the tokens earned since the bucket was last filled, up to its capacity; the rate now.
local function refill(lim, th)
  local rate = limit_rate(lim, th)
  if now > lim.filled then
    local gained = earned(lim, th, lim.filled - lim.cut, now - lim.cut)
    lim.tokens = math.min(math.max(1, rate), lim.tokens + gained)
    lim.filled = now
  end
  return rate
end

-- What is left of the throttle's limit with nothing more sent.
local function limit_left()
  local left = (tonumber(h['tl']) or 0) - now
  if not (left > 0) then return 0 end
  return math.min(left, MAX_PAUSE)
end

-- The key outlives its host's last write by base_ttl, or by what is left of a pause or of
-- the throttle's limit plus the slack, and never by more than MAX_TTL; it is only ever
-- lengthened, so rules with shorter windows do not cut others' short.
local function expire()
  if not dirty then return end
  local held = math.max(paused_for(), limit_left())
  local want = math.max(base_ttl, math.ceil(held * 1000) + slack)
  want = math.min(want, MAX_TTL)
  if redis.call('PTTL', key) < want then
    redis.call('PEXPIRE', key, want)
  end
end
"""

# ARGV[4]: '1' to deposit a request in the budget, 'r' to refund a retry the circuit stops,
# '0' for neither; ARGV[5]: the budget's slot width;
# ARGV[6]: '1' when pacing; ARGV[7]: the breaker's open_for ('' when there is no breaker);
# ARGV[8..10]: the throttle's cut_to, growth, min_rate ('' when it is off); ARGV[11]: how long
# the attempt would wait for its token; ARGV[12]: how far ahead it may reserve one. Returns
# {open_for or '', pace, probe '0'/'1', change or '', throttled, again, reserved ('0'/'1')}.
_BEFORE = (
    _PRELUDE
    + """
local pacing = ARGV[6] == '1'
local open_for = tonumber(ARGV[7])
local th = throttle_at(8)
local stopped = nil
local pace, probe, change, throttled, again, reserved = 0, '0', '', '0', '0', '0'
if pacing then pace = paused_for() end
if open_for ~= nil then
  local circuit = h['circuit'] or 'closed'
  if circuit ~= 'closed' then
    local left = (tonumber(h['reopens']) or 0) - now
    if left > 0 then
      stopped = left
    else
      if circuit == 'open' then change = 'half_open' end
      set('circuit', 'half_open')
      probe = '1'
    end
  end
end
if stopped == nil and th ~= nil then
  -- The attempt is counted as it goes (the send rate a cut starts from), and takes a token,
  -- or reserves the next one if it would wait that long.
  window_add('t', METER_SLOT, 1, 0)
  local lim = limit_of()
  if lim ~= nil then
    local rate = refill(lim, th)
    if rate >= lim.wmax and lim.tokens >= math.max(1, lim.wmax) then
      -- Back above the rate that was throttled, and holding nothing back: lifted.
      clear_limit()
    else
      local due = 0
      if lim.tokens < 1 then due = (1 - lim.tokens) / rate end
      if due <= tonumber(ARGV[11]) then
        if due > tonumber(ARGV[12]) and probe ~= '1' then
          -- Further off than tokens are reserved ahead: nothing taken, ask again after.
          again = '1'
          throttled = '1'
          pace = math.max(pace, tonumber(ARGV[12]))
        else
          lim.tokens = lim.tokens - 1
          reserved = '1'
          if due > pace then
            pace = due
            throttled = '1'
          end
        end
      end
      save_limit(lim, rate)
    end
  end
end
if probe == '1' then
  set('reopens', stamp(now + pace + open_for))  -- the probe may wait out the pace first
end
local result
if stopped ~= nil then
  result = {dur(stopped), dur(pace), '0', '', '0', '0', '0'}
else
  result = {'', dur(pace), probe, change, throttled, again, reserved}
end
-- A request the open circuit stops never reaches the host: it earns the budget nothing, and
-- a retry it stops gives back what it spent.
if result[1] == '' then
  if ARGV[4] == '1' then window_add('b', width('b', ARGV[5]), 1, 0) end
elseif ARGV[4] == 'r' then
  window_refund('b', width('b', ARGV[5]))
end
expire()
return result
"""
)

# ARGV[4]: the pause ('' for none); ARGV[5]: failed ('' when not counted, '0', '1');
# ARGV[6]: probe '0'/'1'; ARGV[7]: open_for; ARGV[8]: the breaker's slot width;
# ARGV[9]: min_calls; ARGV[10]: failure_ratio; ARGV[11]: throttled ('' when not counted, '0',
# '1'); ARGV[12]: the seconds since the attempt was sent; ARGV[13..15]: the throttle's
# cut_to, growth, min_rate. Returns the change: '', 'open' or 'closed'.
_AFTER = (
    _PRELUDE
    + """
local result = ''
local pause = tonumber(ARGV[4])
if pause ~= nil then
  local reopens = now + math.min(pause, MAX_PAUSE)
  if reopens > (tonumber(h['paused']) or 0) then set('paused', stamp(reopens)) end
end
local th = throttle_at(13)
if th ~= nil and ARGV[11] ~= '' then
  local lim = limit_of()
  if ARGV[11] == '1' and (lim == nil or not (now - tonumber(ARGV[12]) < lim.cut)) then
    -- A throttling answer to an attempt sent since the last cut (earlier ones were
    -- answered by it): the curve starts again from the rate sent at, or the limit if lower.
    local rate = measured()
    if lim == nil then
      lim = {wmax = 0, zero = 0, cut = now, tokens = 0, filled = now}
    else
      rate = math.min(rate, limit_rate(lim, th))
    end
    local before = refill(lim, th)
    lim.wmax = rate
    lim.zero = zero_point(rate, th)
    lim.cut = now
    local limit = limit_rate(lim, th)
    if lim.tokens < 0 then
      -- Tokens reserved ahead keep the moments they are due at.
      lim.tokens = lim.tokens * limit / before
    else
      lim.tokens = math.min(lim.tokens, math.max(1, limit))
    end
    save_limit(lim, limit)
  end
end
local failed = ARGV[5]
local open_for = tonumber(ARGV[7])
if open_for ~= nil and failed ~= '' then
  local circuit = h['circuit'] or 'closed'
  if ARGV[6] == '1' then
    if circuit == 'half_open' then
      if failed == '1' then
        open_circuit(open_for)
        result = 'open'
      else
        set('circuit', 'closed')
        window_clear('c')
        result = 'closed'
      end
    end
  elseif circuit == 'closed' then
    local w = width('c', ARGV[8])
    local failure = 0
    if failed == '1' then failure = 1 end
    window_add('c', w, 1, failure)
    if failure == 1 then
      local total, failures = window_sums('c', w)
      if total >= tonumber(ARGV[9]) and failures >= tonumber(ARGV[10]) * total then
        open_circuit(open_for)
        window_clear('c')
        result = 'open'
      end
    end
  end
end
expire()
return result
"""
)

# ARGV[4..6]: the throttle's cut_to, growth, min_rate. A token reserved for an attempt whose
# wait was cancelled goes back in the bucket. Returns nothing.
_GIVE_BACK = (
    _PRELUDE
    + """
local th = throttle_at(4)
local lim = limit_of()
if th ~= nil and lim ~= nil then
  local rate = refill(lim, th)
  lim.tokens = math.min(math.max(1, rate), lim.tokens + 1)
  save_limit(lim, rate)
end
expire()
return ''
"""
)

# ARGV[4]: the budget's slot width; ARGV[5]: its reserve; ARGV[6]: its ratio.
# Returns 1 when the retry may go (and is counted), else 0.
_SPEND = (
    _PRELUDE
    + """
local w = width('b', ARGV[4])
local requests, retries = window_sums('b', w)
local result = 0
if retries + 1 <= tonumber(ARGV[5]) + tonumber(ARGV[6]) * requests then
  window_add('b', w, 0, 1)
  result = 1
end
expire()
return result
"""
)

# `scheme://user:password@` in a message, whatever the scheme.
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _verdict(raw: Sequence[object]) -> Verdict:
    open_for, pace, probe, change, throttled, again, reserved = (_text(part) for part in raw)
    verdict = Verdict(
        open_for=float(open_for) if open_for else None,
        pace=float(pace),
        probe=probe == "1",
        change=change or None,
        throttled=throttled == "1",
        again=again == "1",
        reserved=reserved == "1",
    )
    return CLEAR if verdict == CLEAR else verdict


def _number(value: float) -> str:
    return repr(float(value))


def _throttle_args(rules: Rules) -> list[str]:
    """The throttle's policy as a script reads it: cut_to, growth, min_rate ('' when off)."""
    throttle = rules.throttle
    if throttle is None:
        return ["", "", ""]
    return [_number(throttle.cut_to), _number(throttle.growth), _number(throttle.min_rate)]


class RedisState:
    """Per-host counts in Redis: one retry budget, circuit and pace for a fleet of processes.

    `client` is a `redis.Redis` (or `redis.RedisCluster`) for `ResilientTransport`, or a
    `redis.asyncio.Redis` (or `redis.asyncio.RedisCluster`) for `AsyncResilientTransport`
    under asyncio. Every process that passes a `RedisState` with the same `prefix` on the
    same Redis shares the counts of each host; a host's key is `{prefix}:{host}`, so one host
    lives in one cluster slot. Each check is one Lua script on the server's clock. A host's
    key expires once the host has been idle for three times its longest window (or
    `open_for`, or the rest of a pause) plus `ttl_slack` seconds, and never later than a
    week after its last write.

    Redis must never make a request fail: when it is unreachable or errs, the checks fail
    open (the attempt goes, the retry is allowed, nothing is counted) and one WARNING per
    minute is logged on the `httpx_resilience` logger. A check waits as long as the client
    lets it, so give the client a small `socket_timeout` and `socket_connect_timeout` (say
    0.1 s) and few retries of its own, e.g.
    `redis.Redis(..., socket_timeout=0.1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 1))`:
    redis-py's default retries a refused connection ten times with backoff, up to seconds
    on every check while Redis is down.

    Needs `pip install 'httpx-resilience[redis]'`.
    """

    def __init__(
        self,
        client: Redis | RedisCluster | AsyncRedis | AsyncRedisCluster,
        *,
        prefix: str = "httpx-resilience",
        ttl_slack: float = 60.0,
    ) -> None:
        try:
            import redis
            import redis.asyncio
        except ImportError as exc:
            raise ImportError(
                "RedisState needs the redis package: pip install 'httpx-resilience[redis]'",
                name="redis",
            ) from exc
        name = "RedisState"
        self._sync: Redis | RedisCluster | None = None
        self._async: AsyncRedis | AsyncRedisCluster | None = None
        if isinstance(client, (redis.Redis, redis.RedisCluster)):
            self._sync = client
        elif isinstance(client, (redis.asyncio.Redis, redis.asyncio.RedisCluster)):
            self._async = client
        else:
            raise ConfigurationError(
                f"{name}: client must be a redis.Redis or a redis.asyncio.Redis client, "
                f"not {type(client).__name__}"
            )
        if not isinstance(prefix, str):
            raise ConfigurationError(f"{name}: prefix must be a str")
        if not (is_number(ttl_slack) and ttl_slack >= 0):
            raise ConfigurationError(f"{name}: ttl_slack must be seconds >= 0")
        self._prefix = prefix
        self._ttl_slack = float(ttl_slack)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._warn_lock = threading.Lock()
        self._warned_at: float | None = None

    def __repr__(self) -> str:
        return f"RedisState(prefix={self._prefix!r})"

    def sync_store(self) -> Store:
        if self._sync is None:
            raise ConfigurationError(
                "RedisState: its client is a redis.asyncio client, which the sync "
                "ResilientTransport cannot use: give it a redis.Redis client"
            )
        from ._redis_sync import SyncRedisStore

        return SyncRedisStore(self, self._sync)

    def async_store(self) -> AsyncStore:
        if self._async is None:
            raise ConfigurationError(
                "RedisState: its client is a sync redis.Redis client, which the "
                "AsyncResilientTransport cannot use: give it a redis.asyncio.Redis client"
            )
        from ._redis_async import AsyncRedisStore

        return AsyncRedisStore(self, self._async)

    # The script calls: keys and arguments, or None when the rules leave nothing to do.

    def key(self, host: str) -> str:
        """The Redis key of `host`'s counts."""
        return f"{self._prefix}:{host}"

    def _common(self, rules: Rules) -> list[str]:
        longest = 0.0
        if rules.budget is not None:
            longest = rules.budget.window
        if rules.breaker is not None:
            longest = max(longest, rules.breaker.window, rules.breaker.open_for)
        if rules.throttle is not None:
            longest = max(longest, METER_WINDOW)
        slack = min(self._ttl_slack, MAX_TTL)
        # Bounded first (an absurd window would give an expiry Redis refuses), then rounded,
        # so that 3 * 0.2 s is 600 ms and not 601.
        base = math.ceil(round(min(TTL_FACTOR * longest + slack, MAX_TTL) * 1000, 6))
        return [str(SLOTS), str(max(base, 1)), str(math.ceil(round(slack * 1000, 6)))]

    def _before_args(
        self, rules: Rules, first: bool, refund: bool, patience: float, ahead: float
    ) -> list[str] | None:
        budget, breaker, throttle = rules.budget, rules.breaker, rules.throttle
        deposit = first and budget is not None
        if not deposit and breaker is None and not rules.pacing and throttle is None:
            return None
        budgeted = budget is not None
        return [
            *self._common(rules),
            "1" if deposit else "r" if refund and budgeted and breaker is not None else "0",
            _number(budget.window / SLOTS) if budget is not None else "",
            "1" if rules.pacing else "0",
            _number(breaker.open_for) if breaker is not None else "",
            *_throttle_args(rules),
            # A wait of a day at most: Lua reads no infinity.
            _number(min(max(patience, 0.0), MAX_PAUSE)),
            _number(min(max(ahead, 0.0), MAX_PAUSE)),
        ]

    def _give_back_args(self, rules: Rules) -> list[str] | None:
        if rules.throttle is None:
            return None
        return [*self._common(rules), *_throttle_args(rules)]

    def _after_args(
        self,
        rules: Rules,
        failed: bool | None,
        pause: float | None,
        probe: bool,
        throttled: bool | None,
        age: float,
    ) -> list[str] | None:
        breaker = rules.breaker
        pause = pause if rules.pacing else None
        counted = breaker is not None and failed is not None
        answered = rules.throttle is not None and throttled is not None
        if pause is None and not counted and not answered:
            return None
        args = [
            *self._common(rules),
            "" if pause is None else _number(min(pause, MAX_PAUSE)),
            ("1" if failed else "0") if counted else "",
            "1" if probe else "0",
        ]
        if breaker is None:
            args += ["", "", "", ""]
        else:
            args += [
                _number(breaker.open_for),
                _number(breaker.window / SLOTS),
                str(breaker.min_calls),
                _number(breaker.failure_ratio),
            ]
        return [
            *args,
            ("1" if throttled else "0") if answered else "",
            _number(age) if math.isfinite(age) else "0.0",
            *_throttle_args(rules),
        ]

    def _spend_args(self, rules: Rules) -> list[str] | None:
        budget = rules.budget
        if budget is None:
            return None
        return [
            *self._common(rules),
            _number(budget.window / SLOTS),
            _number(budget.reserve),
            _number(budget.ratio),
        ]

    def _failed(self, exc: BaseException) -> None:
        """Log that Redis failed, at most once every `WARN_EVERY` seconds."""
        now = time.monotonic()
        with self._warn_lock:
            if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
                return
            self._warned_at = now
        message = _CREDENTIALS.sub(r"\1[REDACTED]@", str(exc))
        logger.warning(
            "RedisState(prefix=%r): Redis failed (%s: %s); requests go on without the shared "
            "retry budget, circuit breaker, pacing and throttle until it answers (next warning "
            "in %d s at the earliest)",
            self._prefix,
            type(exc).__name__,
            message,
            WARN_EVERY,
        )


def _check_asyncio() -> None:
    """redis.asyncio needs asyncio's loop: under trio every call would fail obscurely."""
    import asyncio  # loaded already wherever a redis.asyncio client runs

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(
            "RedisState: a redis.asyncio client runs on asyncio only, not under trio; "
            "use MemoryState there"
        ) from None
