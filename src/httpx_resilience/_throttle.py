"""Adaptive client-side throttling: the arithmetic of a host's send rate, as pure functions.

The algorithm is botocore's adaptive retry mode (`botocore/retries/adaptive.py` and
`bucket.py`: `CubicCalculator`, `TokenBucket`, `RateClocker`), the one the AWS SDKs call
"adaptive", whose curve is TCP CUBIC's (Ha, Rhee and Xu, 2008; RFC 9438):

* Until a host first answers with a throttling status there is no limit. On such an answer the
  rate is cut to `cut_to` (β = 0.7, CUBIC's and botocore's) times the rate the client was
  sending at (or the limit in force, if lower), and that rate, `w_max`, is remembered.
* Then the limit grows back with the time `t` since that cut, as long as no other throttling
  answer comes: `rate(t) = growth * (t - K)**3 + w_max`, `K = cbrt(w_max * (1 - cut_to) /
  growth)`, with `growth` (C = 0.4, CUBIC's and botocore's) in requests per second per second
  cubed. It starts at `cut_to * w_max`, flattens out as it nears `w_max` (at `t = K`) and
  climbs ever faster beyond, probing for more. Never below `min_rate` (0.5 requests a second,
  botocore's floor).
* Each attempt takes a token from the host's bucket, which fills at the limit's rate and holds
  at most `max(1, rate)` tokens (botocore's capacity: a second's worth). With none left, the
  attempt reserves the next one and waits for it: the balance goes below zero, so the next
  caller's token is one more `1 / rate` away, and 50 callers at once are spread out rather
  than all woken together. An attempt that would wait longer than it may (`patience`: the
  retry policy's `max_retry_after`, or the deadline) reserves nothing and goes at once.

Where this departs from botocore, and why:

* The send rate is measured as the attempts sent in the last second (`METER_WINDOW`, ten
  slots of 0.1 s; counted as each goes, in `before`), rather than botocore's smoothed rate
  over half-second buckets, which reads 0 until the first bucket is over (and then cuts a
  burst throttled at once to the floor, 0.5/s). Counted as they go, not as they are answered:
  a burst throttled at once is cut from the burst, not from its first answer.
* botocore's callers wait on one condition, all woken to compete whenever a token may be
  due; here each reserves its own, so they go out `1 / rate` apart and the wait is one sleep
  (the transport's, so `no_wait()` and the deadline apply).
* The bucket earns the limit's integral over the time gone by (`earned`), where botocore's
  fills at the rate set at the last answer: the curve moves between answers too.
* When a cut lowers the rate, the tokens already reserved keep the moments they are due at
  (their callers were told): the next caller's is due after the last of them, at the new
  rate. Counted in tokens at the new rate instead, the debt would stall the host for the
  difference.
* A throttling answer to an attempt sent (after its wait for a token) before the last cut
  does not cut again: one cut per round trip, as TCP reduces its window once per window of losses
  (RFC 5681, RFC 9438). botocore cuts on each, so 50 callers throttled at once drive the rate
  to its floor in a few milliseconds.
* botocore keeps the limit for good once a host throttled (and caps it at twice the measured
  send rate). Here it is lifted once it is back above `w_max` and its bucket holds a second's
  worth of `w_max`: the client has not been sending as fast as the limit allows, so it holds
  nothing back. A host that throttles again is cut afresh.

Everything here is durations and rates; the moments (`now`, when the cut was) are each state's
own clock, never passed between processes. `_redis.py` runs the same steps in Lua.
"""

from __future__ import annotations

import math

from ._policies import AdaptiveThrottle

__all__ = [
    "HORIZON",
    "METER_WINDOW",
    "Limit",
    "capacity",
    "earned",
    "limit_rate",
    "measured_rate",
    "zero_point",
]

# The send rate is measured over the attempts of the last second.
METER_WINDOW = 1.0
# How far ahead an attempt reserves its token: one due later asks again after this long
# instead. A caller told a long wait at a low rate would sleep it out though the rate grew
# meanwhile, and be overtaken by later ones; asking again, it goes at the rate of the moment.
HORIZON = 1.0


def measured_rate(answers: int) -> float:
    """The client's send rate to a host, from the `answers` in the meter's window."""
    return answers / METER_WINDOW


def zero_point(w_max: float, policy: AdaptiveThrottle) -> float:
    """K: the seconds after a cut at which the curve is back at `w_max`."""
    scaled: float = w_max * (1 - policy.cut_to) / policy.growth
    return scaled ** (1 / 3) if scaled > 0 else 0.0


def limit_rate(w_max: float, zero: float, since_cut: float, policy: AdaptiveThrottle) -> float:
    """The limit, in requests per second, `since_cut` seconds after the cut at `w_max`
    (whose zero point is `zero`)."""
    d = since_cut - zero
    return max(policy.min_rate, policy.growth * d * d * d + w_max)


def earned(w_max: float, zero: float, start: float, end: float, policy: AdaptiveThrottle) -> float:
    """The tokens the bucket earns from `start` to `end` seconds after the cut: the limit's
    integral over that span (the floor, then the curve once it has climbed past it)."""
    floor, growth = policy.min_rate, policy.growth
    # When the curve crosses the floor (it only grows): before that, the floor holds.
    gap = (floor - w_max) / growth
    crosses = zero + math.copysign(abs(gap) ** (1 / 3), gap)
    total = 0.0
    if start < crosses:
        until = min(end, crosses)
        total += floor * (until - start)
        start = until
    if start < end:
        a, b = start - zero, end - zero
        total += growth / 4 * (b * b * b * b - a * a * a * a) + w_max * (end - start)
    return total


def capacity(rate: float) -> float:
    """How many tokens the bucket holds at most: a second's worth, and at least one."""
    return max(1.0, rate)


class Limit:
    """A host's limit in `MemoryState`: the curve (where it was cut, and when) and the bucket
    (its balance, below zero for tokens reserved ahead, as of `filled_at`).

    `lifts_by`: about when the limit would be lifted if nothing more were sent (the curve back
    at `w_max`, the bucket refilled at no more than its rate then): the host's state is kept
    until then.
    """

    __slots__ = ("cut_at", "filled_at", "lifts_by", "tokens", "w_max", "zero")

    def __init__(self, now: float) -> None:
        self.w_max = 0.0
        self.zero = 0.0
        self.cut_at = now
        self.tokens = 0.0  # a fresh limit starts empty, as botocore's bucket does
        self.filled_at = now
        self.lifts_by = now

    def rate(self, now: float, policy: AdaptiveThrottle) -> float:
        return limit_rate(self.w_max, self.zero, now - self.cut_at, policy)

    def _refill(self, now: float, policy: AdaptiveThrottle) -> float:
        """Add the tokens earned since `filled_at`, up to the capacity; the rate now."""
        rate = self.rate(now, policy)
        if now > self.filled_at:
            start, end = self.filled_at - self.cut_at, now - self.cut_at
            gained = earned(self.w_max, self.zero, start, end, policy)
            self.tokens = min(capacity(rate), self.tokens + gained)
            self.filled_at = now
        return rate

    def _settle(self, rate: float) -> None:
        refilled = self.filled_at + max(capacity(self.w_max) - self.tokens, 0.0) / rate
        self.lifts_by = max(self.cut_at + self.zero, refilled)

    def lifted(self, now: float, policy: AdaptiveThrottle) -> bool:
        """Whether the limit holds nothing back any more: the curve is back at the rate that
        was throttled, and the bucket holds a second's worth of that rate."""
        rate = self._refill(now, policy)
        return rate >= self.w_max and self.tokens >= capacity(self.w_max)

    def reserve(
        self, now: float, policy: AdaptiveThrottle, patience: float, horizon: float = HORIZON
    ) -> tuple[float | None, bool]:
        """Take a token: (the seconds until it is due, 0 for one at hand; True). A token further
        off than `patience` is not taken: (None, False). One further off than `horizon` is not
        taken either: (`horizon`, False), the time after which to ask again. The wait is at
        the rate now: the curve only grows, so the token is never due later than that."""
        rate = self._refill(now, policy)
        due = 0.0 if self.tokens >= 1 else (1 - self.tokens) / rate
        reserved = due <= patience and due <= horizon
        if reserved:
            self.tokens -= 1
        self._settle(rate)
        if due > patience:
            return None, False
        if due > horizon:
            return horizon, False
        return due, True

    def give_back(self, now: float, policy: AdaptiveThrottle) -> None:
        """A reserved token its attempt will not use (its wait was cancelled): back in the
        bucket, so the callers after it are not held back for it."""
        rate = self._refill(now, policy)
        self.tokens = min(capacity(rate), self.tokens + 1)
        self._settle(rate)

    def cut(self, now: float, rate: float, policy: AdaptiveThrottle) -> None:
        """A throttling answer: the curve starts again from `rate`, cut to `cut_to` of it."""
        before = self._refill(now, policy)  # what accrued at the rate before the cut
        self.w_max = rate
        self.zero = zero_point(rate, policy)
        self.cut_at = now
        limit = self.rate(now, policy)
        self.tokens = _rescaled(self.tokens, before, limit)
        self._settle(limit)


def _rescaled(tokens: float, before: float, after: float) -> float:
    """The bucket's balance when its rate goes from `before` to `after`: tokens reserved ahead
    keep the moments they are due at (the callers were told), so the next one is due when the
    last of them is; tokens at hand are kept up to the new capacity."""
    if tokens < 0:
        return tokens * after / before
    return min(tokens, capacity(after))
