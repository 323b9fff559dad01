"""P7: pricing with batched Kalshi books against one book per market, in one run, on the same fake.

A cycle needs a book for every market it analysed (scan.max_markets_to_analyze: 40 by default; more when a
desk raises it). Batched: GET /markets/orderbooks with up to 100 tickers a request (the client's
get_order_books, what the cycle uses). One per market: GET /markets/{ticker}/orderbook for each, 8 at a time
(what the cycle did before). Both through the same client, under Kalshi's Basic read limit (20/s) and the
world's 150 ms answer latency, so the ratio is requests and time saved under the same rate limit.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bot.present.fmt import plural
from pipeline.models import Market, Venue

from .common import KALSHI_READS_PER_SECOND, Figure, load_config, market_world

SIZES = (40, 400)
CONCURRENCY = 8  # the cycle's former book-fetch concurrency


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_config(Path(tmp), {"kalshi": {"reads_per_second": KALSHI_READS_PER_SECOND}})
    figures: list[Figure] = []
    async with market_world() as world:
        client = world.clients(settings)[Venue.KALSHI]
        markets = await client.list_markets()
        for size in SIZES:
            chosen = markets[:size]
            await asyncio.sleep(1.5)  # let the limiter's burst refill between runs: each starts equal
            before = len(world.kalshi_server.requests)
            started = time.perf_counter()
            books = await client.get_order_books(chosen)  # type: ignore[attr-defined]
            batched_s, batched_n = time.perf_counter() - started, len(world.kalshi_server.requests) - before
            assert all(not isinstance(b, Exception) for b in books.values()), "a batch failed"

            await asyncio.sleep(1.5)
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(market: Market) -> None:
                async with gate:
                    await client.get_order_book(market)

            before = len(world.kalshi_server.requests)
            started = time.perf_counter()
            await asyncio.gather(*(one(m) for m in chosen))
            single_s, single_n = time.perf_counter() - started, len(world.kalshi_server.requests) - before
            figures.append(Figure(
                f"P7 Kalshi books for {size} markets: batched vs one per market",
                f"{plural(batched_n, 'request')}, {batched_s:.2f} s (one per market: {single_n} requests, {single_s:.2f} s)",
                bound=f"{single_s:.2f} s", ratio=f"{batched_s / single_s:.2f}",
                note=f"requests {batched_n}/{single_n}; {KALSHI_READS_PER_SECOND} reads/s, 150 ms answers"))
        await client.aclose()
    return figures
