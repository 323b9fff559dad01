"""HTTP plumbing shared by the venue clients: rate limiting, retries for reads, error typing.

Reads (GET) are retried with exponential backoff and full jitter on 429, 5xx, timeouts,
transport errors and unreadable bodies. Writes are never retried here: a POST whose answer
did not come back raises OutcomeUnknownError, and the caller looks the order up instead.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import OutcomeUnknownError, RetryableError
from ..models import VenueScanStats


class RateLimiter:
    """A token bucket: at most `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1, burst if burst is not None else int(rate))
        self._tokens = float(self.burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: waiters are served in order
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1 - 1e-9:  # float sums can land a hair short of a whole token
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1 - self._tokens) / self.rate)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries of one read
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)]."""
        if retry_after is not None:
            return min(self.max_delay, retry_after)
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))


ErrorTranslator = Callable[[httpx.Response], Exception]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(response: httpx.Response, translate: ErrorTranslator) -> Exception | None:
    """None for success; otherwise the typed error this response means."""
    if response.is_success:
        return None
    if response.status_code == 429 or response.status_code >= 500:
        detail = translate(response)
        return RetryableError(str(detail), retry_after=_retry_after(response))
    return translate(response)


def decode_json(response: httpx.Response, where: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RetryableError(f"{where}: the venue sent an unreadable body (HTTP {response.status_code})") from e


async def read_json(send: Callable[[], Awaitable[httpx.Response]], *, where: str, translate: ErrorTranslator,
                    limiter: RateLimiter | None, policy: RetryPolicy, stats: VenueScanStats | None = None,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Any:
    """Send a read until it succeeds or the policy gives up; every retry is counted in `stats`."""
    last: RetryableError | None = None
    for attempt in range(policy.attempts):
        if limiter is not None:
            await limiter.acquire()
        if stats is not None:
            stats.requests += 1
        try:
            response = await send()
            error = classify(response, translate)
            if error is None:
                return decode_json(response, where)
            raise error
        except httpx.TimeoutException as e:
            last = RetryableError(f"{where}: timed out")
            last.__cause__ = e
        except httpx.TransportError as e:
            last = RetryableError(f"{where}: connection failed ({type(e).__name__})")
            last.__cause__ = e
        except RetryableError as e:
            last = e
        if attempt + 1 < policy.attempts:
            if stats is not None:
                stats.retries += 1
            await sleep(policy.delay(attempt, last.retry_after))
    assert last is not None
    raise RetryableError(f"{last} (gave up after {policy.attempts} tries)", retry_after=last.retry_after) from last


async def write_json(send: Callable[[], Awaitable[httpx.Response]], *, where: str, translate: ErrorTranslator,
                     limiter: RateLimiter | None) -> Any:
    """Send a write exactly once. No answer (or a 5xx) means the outcome is unknown.

    A 5xx or a 408 is treated as unknown, not as a refusal: the venue may have acted before failing.
    A 429 or 4xx is a clear refusal: the order was not taken.
    """
    if limiter is not None:
        await limiter.acquire()
    try:
        response = await send()
    except httpx.TimeoutException as e:
        raise OutcomeUnknownError(f"{where}: no answer before the timeout") from e
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
        raise OutcomeUnknownError(f"{where}: the connection broke before the answer ({type(e).__name__})") from e
    except httpx.TransportError as e:  # connect errors: the request never left
        raise RetryableError(f"{where}: could not connect ({type(e).__name__})") from e
    if response.status_code >= 500 or response.status_code == 408:  # the venue may have acted first
        raise OutcomeUnknownError(f"{where}: HTTP {response.status_code}: {translate(response)}")
    error = classify(response, translate)
    if error is not None:
        raise error
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise OutcomeUnknownError(f"{where}: accepted (HTTP {response.status_code}) but the answer was "
                                  "unreadable") from e
