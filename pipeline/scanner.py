"""MarketScanner: every configured venue at once; one venue failing does not sink the others."""

from __future__ import annotations

import asyncio

from .models import Market, Venue
from .reporter import ErrorReporter
from .venues.base import VenueClient


class MarketScanner:
    def __init__(self, venues: dict[Venue, VenueClient]) -> None:
        self.venues = venues

    async def scan_all_markets(self, reporter: ErrorReporter, only: set[Venue] | None = None) -> list[Market]:
        chosen = {v: c for v, c in self.venues.items() if only is None or v in only}
        results = await asyncio.gather(*(client.list_markets() for client in chosen.values()),
                                       return_exceptions=True)
        markets: list[Market] = []
        for venue, result in zip(chosen, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation and friends are not venue errors
                reporter.record("scan", result, venue=venue.value)
                reporter.report.scanned[venue.value] = 0
                continue
            reporter.report.scanned[venue.value] = len(result)
            markets.extend(result)
        return markets
