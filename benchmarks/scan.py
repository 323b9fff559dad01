"""Scan wall time against its floor: both venues through loopback fakes with a set page latency.

Pages of one venue are sequential by nature (each cursor comes from the previous page), and the
two venues run at once, so the floor is the slower venue's chain:
    floor(venue) = pages * max(page latency, 1 / rate limit)
The ratio wall / max(floor) says how much the desk adds on top of what the services impose.
The naive baseline scans one venue after the other.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.config import load_settings
from pipeline.models import CycleReport, Venue
from pipeline.reporter import ErrorReporter
from pipeline.scanner import MarketScanner
from pipeline.venues.http import RetryPolicy
from pipeline.venues.kalshi import KalshiClient
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials
from tests.servers.base import LoopbackServer
from tests.servers.kalshi import FakeKalshi
from tests.servers.polymarket import PolymarketFake

from .common import Figure

KALSHI_MARKETS, POLYMARKET_MARKETS = 10_000, 5_000
PAGE_LATENCY = 0.150
KALSHI_READS_PER_SECOND = 20
KALSHI_PAGE, GAMMA_PAGE = 1000, 100


def floor_seconds(pages: int, rate: float) -> float:
    return pages * max(PAGE_LATENCY, 1 / rate)


async def run() -> list[Figure]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kalshi_fake = FakeKalshi(key.public_key(), "bench-key")
    kalshi_fake.generate(KALSHI_MARKETS)
    poly_fake = PolymarketFake()
    poly_fake.generate_universe(POLYMARKET_MARKETS)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text('{"kalshi": {"reads_per_second": %d}}' % KALSHI_READS_PER_SECOND)
        settings = load_settings(config, environ={})
    gamma_rate = float(settings.polymarket.gamma_requests_per_second)
    async with kalshi_fake.serve(latency=PAGE_LATENCY), \
            LoopbackServer(poly_fake.gamma_app(), latency=PAGE_LATENCY) as gamma, \
            LoopbackServer(poly_fake.clob_app(), latency=PAGE_LATENCY) as clob:
        venues = {
            Venue.KALSHI: KalshiClient(kalshi_fake.base_url, "bench-key", key, settings.fees, settings.kalshi,
                                       retry=RetryPolicy()),
            Venue.POLYMARKET: PolymarketClient(gamma_url=gamma.url, clob_url=clob.url,
                                               credentials=PolymarketCredentials(), config=settings.polymarket),
        }
        scanner = MarketScanner(venues)

        async def timed(only: set[Venue] | None) -> tuple[float, CycleReport]:
            reporter = ErrorReporter(CycleReport(cycle_id="bench"))
            started = time.perf_counter()
            await scanner.scan_all_markets(reporter, only)
            return time.perf_counter() - started, reporter.report

        concurrent, report = await timed(None)
        naive = sum([(await timed({v}))[0] for v in (Venue.KALSHI, Venue.POLYMARKET)])
        for client in venues.values():
            await client.aclose()
    kalshi_pages = report.venue_stats["kalshi"].pages
    gamma_pages = report.venue_stats["polymarket"].pages
    floor = max(floor_seconds(kalshi_pages, KALSHI_READS_PER_SECOND), floor_seconds(gamma_pages, gamma_rate))
    scanned = report.total_scanned
    return [
        Figure("scan: 15,000 markets, both venues at once", f"{concurrent:.2f} s ({scanned} markets, "
                                                            f"{kalshi_pages}+{gamma_pages} pages)",
               bound=f"{floor:.2f} s", ratio=f"{concurrent / floor:.2f}",
               note=f"page latency {PAGE_LATENCY * 1000:.0f} ms; Kalshi {KALSHI_READS_PER_SECOND} reads/s, "
                    f"Gamma {gamma_rate:.0f}/s"),
        Figure("scan: naive baseline, one venue after the other", f"{naive:.2f} s", bound=f"{floor:.2f} s",
               ratio=f"{naive / floor:.2f}"),
    ]
