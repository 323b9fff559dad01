"""MarketScanner: every configured venue at once; one venue failing does not sink the others."""

from __future__ import annotations

import asyncio
import time

from .models import Market, Venue, VenueScanStats
from .reporter import ErrorReporter
from .venues.base import VenueClient


class MarketScanner:
    def __init__(self, venues: dict[Venue, VenueClient]) -> None:
        self.venues = venues

    async def scan_all_markets(self, reporter: ErrorReporter, only: set[Venue] | None = None) -> list[Market]:
        chosen = {v: c for v, c in self.venues.items() if only is None or v in only}
        stats = {v: VenueScanStats() for v in chosen}
        results = await asyncio.gather(*(self._timed(client, stats[v]) for v, client in chosen.items()),
                                       return_exceptions=True)
        markets: list[Market] = []
        for venue, result in zip(chosen, results, strict=True):
            reporter.report.venue_stats[venue.value] = stats[venue]
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation and friends are not venue errors
                stats[venue].error = reporter.record("scan", result, venue=venue.value).message
                reporter.report.scanned[venue.value] = 0
                continue
            reporter.report.scanned[venue.value] = len(result)
            for reason, count in stats[venue].skip_reasons.items():  # dropped while listed: still in the funnel
                reporter.report.rejections[reason] += count
            markets.extend(result)
        return markets

    @staticmethod
    async def _timed(client: VenueClient, stats: VenueScanStats) -> list[Market]:
        started = time.perf_counter()
        try:
            return await client.list_markets(stats)
        finally:
            stats.seconds = round(time.perf_counter() - started, 4)
