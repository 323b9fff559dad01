"""P8: backtest throughput and cost: markets per minute against the venue's rate-limit floor, dollars per market.

One run: 100 settled Kalshi markets with hourly candles, served by the fake Kalshi with the world's 150 ms answer
latency under the Basic read limit (20/s), asked through the real ClaudeAnalyzer against the fake Anthropic
(400 ms a reply, list-price token costs from the fake's usage). The floor is the venue's side alone: the listing's
page chain plus one candles request per market at 20 reads/s; the ratio says how far the backtest's own
sequence (every price first, 8 reads in flight, then the questions, analysis.max_concurrency at a time) is from it.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import anthropic

from pipeline.backtest import Backtester, BacktestRequest
from pipeline.claude import ClaudeAnalyzer
from pipeline.models import Venue
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient
from tests.servers.anthropic import FakeAnthropic
from tests.servers.kalshi import FakeKalshi

from .common import KALSHI_READS_PER_SECOND, PAGE_LATENCY, Figure, load_config, signing_key

MARKETS = 100
MODEL_LATENCY = 0.400
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def settled_world(fake: FakeKalshi) -> None:
    for i in range(MARKETS):
        close = NOW - timedelta(days=30, hours=7 * i)
        points = [(close - timedelta(hours=h), "0.40", "0.44", None) for h in range(30, 20, -1)]
        fake.add_settled_market(f"KXBENCH-26OCT-T{i}", "yes" if i % 3 else "no", close, history=points)


async def run() -> list[Figure]:
    key = signing_key()
    fake = FakeKalshi(key.public_key(), now=NOW)
    settled_world(fake)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_config(Path(tmp), {"kalshi": {"reads_per_second": KALSHI_READS_PER_SECOND},
                                           "analysis": {"knowledge_cutoff": {"claude-sonnet-5-5": "2026-06-30"},
                                                        "budget_usd_per_day": 100},
                                           "storage": {"path": str(Path(tmp) / "bench.db")}})
        async with fake.serve(latency=PAGE_LATENCY), FakeAnthropic(latency=MODEL_LATENCY) as model:
            client = KalshiClient(fake.base_url, None, None, settings.fees, settings.kalshi)
            store = await Store.open(settings.storage.path)
            sdk = anthropic.AsyncAnthropic(base_url=model.url, api_key=model.api_key)
            analyzer = ClaudeAnalyzer(settings, store, sdk, clock=lambda: NOW)
            tester = Backtester(store, {Venue.KALSHI: client}, analyzer, model=settings.analysis.model,
                                prompt_version=analyzer.prompt_key,
                                cutoff=datetime(2026, 6, 30, tzinfo=timezone.utc), clock=lambda: NOW)
            before = len(fake.server.requests) if fake.server else 0
            started = time.perf_counter()
            report = await tester.run(BacktestRequest(lead_hours=24, limit=MARKETS))
            elapsed = time.perf_counter() - started
            requests = (len(fake.server.requests) if fake.server else 0) - before
            await client.aclose()
            await sdk.close()
            await store.close()
    floor = requests / KALSHI_READS_PER_SECOND
    per_minute = report.asked / elapsed * 60
    per_market = report.cost_usd / report.scored if report.scored else Decimal(0)
    return [
        Figure(f"P8 backtest of {MARKETS} settled Kalshi markets (model answers in {MODEL_LATENCY:.1f} s)",
               f"{per_minute:.0f} markets/min ({report.asked} asked in {elapsed:.1f} s, {requests} venue requests)",
               bound=f"{floor:.1f} s", ratio=f"{elapsed / floor:.1f}",
               note=f"floor: {requests} requests at {KALSHI_READS_PER_SECOND} reads/s; prices, then questions"),
        Figure("P8 backtest cost per scored market", f"${per_market:.4f} ({report.scored} scored, "
                                                     f"${report.cost_usd:.2f} in all)",
               note="list prices of the configured model, from the fake's token counts"),
    ]
