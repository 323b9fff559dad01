"""P4: approve-to-order time of a live signal against fake Kalshi, over one book fetch plus one order placed.

Approving re-checks the price on a fresh book (and the fee schedule, which the cycle's read left cached)
and then places the order: a V2 POST and, as something filled, one read of the order for its exact cost.
Those venue round trips are a chain; everything else the desk does there (risk snapshot, compare-and-set
moves, the order row written before the post) is local. The bound is measured in the same run with the
same client: one GET of a book plus one order placed (POST and read-back) on a market the approvals do not
touch, interleaved with the approvals so that both see the same machine at the same moment.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic

from pipeline.claude import ClaudeAnalyzer
from pipeline.cycle import CycleRequest
from pipeline.desk import Actor, Desk
from pipeline.models import Market, OrderRequest, Side, Venue
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient
from tests.servers.anthropic import FakeAnthropic, patched
from tests.servers.kalshi import FakeKalshi

from .common import KEY_ID, PAGE_LATENCY, Figure, kalshi_client, load_config, signing_key

SIGNALS = 10
REFERENCE = "KXBENCHREF-26DEC-T0"
# YES bid 0.40, YES ask 0.43 (1 - the NO bid), and a model that says 0.9: an edge well past min_edge.
YES_BIDS, NO_BIDS = [("0.40", "2000")], [("0.57", "2000")]


async def seconds(work: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def reference_market(fake: FakeKalshi, client: KalshiClient) -> Market:
    """A market added after the cycle, so no signal is on it: the bound's requests disturb nothing."""
    fake.add_market(REFERENCE, yes=[("0.40", "100000")], no=[("0.57", "100000")])
    return next(m for m in await client.list_markets() if m.id == REFERENCE)


def reference_order(market: Market, n: int) -> OrderRequest:
    return OrderRequest(client_order_id=f"bench-reference-{n}", venue=Venue.KALSHI, market_id=market.id,
                        side=Side.YES, contracts=Decimal(1), limit_price=Decimal("0.45"))


async def run() -> list[Figure]:
    key = signing_key()
    fake = FakeKalshi(key.public_key(), KEY_ID)
    for i in range(SIGNALS):
        fake.add_market(f"KXBENCH-26DEC-T{i}", yes=YES_BIDS, no=NO_BIDS)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_config(Path(tmp), {
            "trading": {"dry_run": False, "max_open_positions": SIGNALS + 1, "max_exposure_fraction": 1},
            "scan": {"venues": ["kalshi"]}, "storage": {"path": str(Path(tmp) / "approve.db")}})
        async with fake.serve() as server, FakeAnthropic(responder=patched(set_fields={"probability": 0.9})) as model:
            client = kalshi_client(fake, key, settings)
            store = await Store.open(settings.storage.path)
            claude = anthropic.AsyncAnthropic(base_url=model.url, api_key=model.api_key)
            desk = Desk(settings, store, {Venue.KALSHI: client}, ClaudeAnalyzer(settings, store, claude))
            signals = (await desk.scan(CycleRequest(trigger="benchmark"))).signals
            reference = await reference_market(fake, client)
            server.latency = PAGE_LATENCY  # set only now: the set-up cycle is not what is measured
            approvals, books, posts, codes = [], [], [], Counter[str]()
            for n, signal in enumerate(signals):
                books.append(await seconds(client.get_order_book(reference)))
                posts.append(await seconds(client.place_order(reference_order(reference, n), reference)))
                started = time.perf_counter()
                decision = await desk.approve(signal.id, Actor.terminal())
                approvals.append(time.perf_counter() - started)
                codes[decision.code] += 1
            await claude.close()
            await desk.aclose()
            await store.close()

    approve = statistics.median(approvals)
    bound = statistics.median(books) + statistics.median(posts)
    outcomes = ", ".join(f"{n} {code}" for code, n in codes.items())
    return [Figure("P4 approve to order (live, Kalshi)", f"median {approve * 1000:.0f} ms, max "
                                                          f"{max(approvals) * 1000:.0f} ms",
                   bound=f"{bound * 1000:.0f} ms (book {statistics.median(books) * 1000:.0f} + order "
                         f"{statistics.median(posts) * 1000:.0f}, its POST and read-back)",
                   ratio=f"{approve / bound:.2f}",
                   note=f"{len(approvals)} approvals ({outcomes}); latency {PAGE_LATENCY * 1000:.0f} ms per answer")]
