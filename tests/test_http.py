"""Shared venue HTTP plumbing against a real loopback server: retries, refusals, unknown outcomes."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from pipeline.errors import GiveUpError, OutcomeUnknownError, RetryableError
from pipeline.models import VenueScanStats
from pipeline.venues.http import RateLimiter, RetryPolicy, read_json, write_json

from .servers.base import LoopbackServer

ORDERS = web.AppKey("orders", list)
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)


def translate(response: httpx.Response) -> Exception:
    return GiveUpError(f"HTTP {response.status_code}: {response.text[:60]}")


def app() -> web.Application:
    application = web.Application()
    orders: list[dict] = []

    async def markets(request: web.Request) -> web.Response:
        return web.json_response({"markets": [{"id": 1}], "cursor": ""})

    async def place(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("count", 0) <= 0:
            return web.json_response({"error": {"code": "invalid_count"}}, status=400)
        orders.append(body)
        return web.json_response({"order": {"id": len(orders)}}, status=201)

    application.router.add_get("/markets", markets)
    application.router.add_post("/orders", place)
    application[ORDERS] = orders
    return application


@pytest.fixture
async def server():
    async with LoopbackServer(app(), hang_seconds=2) as s:
        yield s


async def test_reads_retry_through_429_5xx_timeout_and_malformed_bodies(server):
    for kind in ("429", "500", "timeout"):
        server.faults.add(kind, "/markets")
    server.faults.add("malformed", "/markets")
    stats = VenueScanStats()
    async with httpx.AsyncClient(base_url=server.url, timeout=0.3) as client:
        data = await read_json(lambda: client.get("/markets"), where="markets", translate=translate, limiter=None,
                               policy=RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01), stats=stats)
    assert data == {"markets": [{"id": 1}], "cursor": ""}
    assert stats.requests == 5 and stats.retries == 4 and server.count("GET", "/markets") == 5


async def test_reads_give_up_with_the_last_reason(server):
    server.faults.add("503", "/markets", times=10)
    async with httpx.AsyncClient(base_url=server.url) as client:
        with pytest.raises(RetryableError, match="gave up after 4 tries"):
            await read_json(lambda: client.get("/markets"), where="markets", translate=translate, limiter=None,
                            policy=FAST)
    assert server.count("GET", "/markets") == 4


async def test_retry_after_is_honoured():
    assert RetryPolicy(max_delay=5).delay(0, retry_after=2.5) == 2.5
    assert RetryPolicy(max_delay=5).delay(0, retry_after=60) == 5
    assert all(0 <= RetryPolicy(base_delay=1, max_delay=4).delay(9) <= 4 for _ in range(50))


async def test_a_write_is_sent_once_and_a_lost_answer_is_unknown(server):
    server.faults.add("drop_after", "/orders")
    async with httpx.AsyncClient(base_url=server.url) as client:
        with pytest.raises(OutcomeUnknownError):
            await write_json(lambda: client.post("/orders", json={"count": 1}), where="order", translate=translate,
                             limiter=None)
    assert server.count("POST", "/orders") == 1
    assert len(server.app[ORDERS]) == 1  # the venue took it: only a look-up can say so


async def test_a_write_408_is_unknown_not_a_refusal():
    application = web.Application()

    async def slow(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "request_timeout"}}, status=408)

    application.router.add_post("/orders", slow)
    async with LoopbackServer(application) as server, httpx.AsyncClient(base_url=server.url) as client:
        with pytest.raises(OutcomeUnknownError, match="HTTP 408"):
            await write_json(lambda: client.post("/orders", json={}), where="order", translate=translate,
                             limiter=None)


async def test_a_write_5xx_is_unknown_but_4xx_and_429_are_refusals(server):
    server.faults.add("502", "/orders")
    server.faults.add("429", "/orders")
    async with httpx.AsyncClient(base_url=server.url) as client:
        post = lambda body: client.post("/orders", json=body)  # noqa: E731
        with pytest.raises(OutcomeUnknownError, match="HTTP 502"):
            await write_json(lambda: post({"count": 1}), where="order", translate=translate, limiter=None)
        with pytest.raises(RetryableError):
            await write_json(lambda: post({"count": 1}), where="order", translate=translate, limiter=None)
        with pytest.raises(GiveUpError, match="invalid_count"):
            await write_json(lambda: post({"count": 0}), where="order", translate=translate, limiter=None)
        assert await write_json(lambda: post({"count": 2}), where="order", translate=translate,
                                limiter=None) == {"order": {"id": 1}}
    assert server.count("POST", "/orders") == 4


async def test_rate_limiter_spaces_requests_to_its_rate():
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(rate=10, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(12):
        await limiter.acquire()
    # 2 from the burst, then one every 0.1 s: 10 more need 1.0 s of virtual time.
    assert now[0] == pytest.approx(1.0)
    assert all(s == pytest.approx(0.1) for s in slept)
