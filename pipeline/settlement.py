"""Settlement: a resolved market closes the positions held in it, with realised P&L.

Paper and live positions settle alike, against the venue's public resolution, and stay apart:
each mode's bankroll is its initial bankroll plus its own realised P&L. A market that is open,
closed but not final (Kalshi "determined", Polymarket proposed or disputed) or cannot be asked
right now is left open and asked again on the next run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .models import Position, Resolution, Venue, utcnow
from .reconcile import ReconciledOrder
from .reporter import scrub
from .store import ExitInFlight, Store
from .venues.base import VenueClient

log = logging.getLogger(__name__)

ACTOR = "settlement"


@dataclass(frozen=True)
class SettledPosition:
    position: Position  # as closed: realized_pnl set
    resolution: Resolution

    @property
    def payout(self) -> Decimal:
        return self.position.contracts * self.resolution.payout(self.position.side)

    @property
    def pnl(self) -> Decimal:
        """What settling booked: the payout less what the contracts left cost. Exits that sold part of the
        position earlier were booked when they filled (the position's realized_pnl holds both)."""
        return self.payout - self.position.cost - self.position.fees


@dataclass
class SettlementReport:
    settled: list[SettledPosition] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # markets that could not be asked, and why
    halted: str = ""  # set when this run HALTED the desk for the daily loss limit
    cancelled: list[ReconciledOrder] = field(default_factory=list)  # what that halt cancelled

    def realized(self, paper: bool) -> Decimal:
        return sum((s.pnl for s in self.settled if s.position.paper is paper), Decimal(0))


class Settler:
    def __init__(self, store: Store, venues: dict[Venue, VenueClient], *, secrets: tuple[str, ...] = (),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.venues = venues
        self.secrets = secrets
        self.clock = clock

    async def run(self) -> SettlementReport:
        report = SettlementReport()
        by_market: dict[tuple[Venue, str], list[Position]] = defaultdict(list)
        for position in await self.store.positions():  # open ones, paper and live
            by_market[(position.venue, position.market_id)].append(position)
        for (venue, market_id), positions in by_market.items():
            resolution = await self._resolution(venue, market_id, report)
            if resolution is None:
                continue
            for position in positions:
                try:
                    closed = await self.store.settle_position(position, resolution, actor=ACTOR, now=self.clock())
                except ExitInFlight as e:  # an exit may be selling it: the next pass settles what it leaves
                    report.unavailable.append(str(e))
                    continue
                if closed is not None:
                    report.settled.append(SettledPosition(closed, resolution))
        return report

    async def _resolution(self, venue: Venue, market_id: str, report: SettlementReport) -> Resolution | None:
        client = self.venues.get(venue)
        if client is None:
            report.unavailable.append(f"{venue.value} {market_id}: {venue.value} is not configured on this desk")
            return None
        try:
            return await client.resolution(market_id)
        except Exception as e:  # asked again next run; the position stays open and counted
            note = scrub(f"{venue.value} {market_id}: could not ask how it resolved: {e or type(e).__name__}",
                         self.secrets)
            log.warning("%s", note)
            report.unavailable.append(note)
            return None
