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

from pipeline.models import CycleReport, Venue
from pipeline.reporter import ErrorReporter
from pipeline.scanner import MarketScanner

from .common import KALSHI_READS_PER_SECOND, PAGE_LATENCY, Figure, chain_floor, load_config, market_world


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_config(Path(tmp), {"kalshi": {"reads_per_second": KALSHI_READS_PER_SECOND}})
    gamma_rate = float(settings.polymarket.gamma_requests_per_second)
    async with market_world() as world:
        venues = world.clients(settings)
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
    floor = max(chain_floor(kalshi_pages, PAGE_LATENCY, KALSHI_READS_PER_SECOND),
                chain_floor(gamma_pages, PAGE_LATENCY, gamma_rate))
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
