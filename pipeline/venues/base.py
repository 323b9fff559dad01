"""The one interface every venue implements; the desk never sees a venue's wire format."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from ..models import (Market, Order, OrderAction, OrderBook, OrderRequest, OrderResult, Rejection, Resolution,
                      Venue, VenueScanStats)


@runtime_checkable
class VenueClient(Protocol):
    venue: Venue

    async def list_markets(self, stats: VenueScanStats | None = None) -> list[Market]:
        """Every open market, all pages, normalised; pages, retries and skips counted in `stats`."""

    async def get_order_book(self, market: Market) -> OrderBook:
        """The current book in YES terms."""

    async def get_order_books(self, markets: Sequence[Market]) -> dict[str, OrderBook | Exception]:
        """Many books at once (in batches where the venue has them): market id -> book, or why there is none."""

    async def with_fees(self, markets: Sequence[Market], now: datetime, *,
                        fresh: bool = False) -> tuple[list[Market], list[Rejection]]:
        """The markets with the venue's fee schedule in force at `now` attached; those whose fees cannot be read
        or priced come back as Rejections with the reason. Nothing is priced or traded without it. `fresh` reads
        past any cache (an approval's re-check)."""

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        """Submit once. Raises OutcomeUnknownError when the answer never came.

        `market` travels along because venues sign with it (Polymarket: token, tick, neg-risk). A SELL (an exit)
        must be immediate-or-cancel: any other time in force is refused before anything is sent. Its result is in
        the sold side's terms: prices received, cost = gross proceeds, fees coming off them.
        """

    async def find_order(self, client_order_id: str, market: Market, *,
                         action: OrderAction = OrderAction.BUY) -> OrderResult | None:
        """Look an order up by our client order id; None if the venue never saw it.

        `action` says which way the order went, for venues whose order records cannot (Kalshi's V2 book is the YES
        leg only: selling YES and buying NO are the same `ask`); the result is in that direction's terms."""

    async def cancel(self, order: Order, market: Market) -> OrderResult | None:
        """Cancel what rests of a live order; returns the order as the venue then shows it (in the terms of
        `order.action`)."""

    async def resolution(self, market_id: str) -> Resolution | None:
        """How a market resolved, or None while it is not final. Public data: paper positions settle by it too."""

    async def settled_markets(self, closed_after: datetime, closed_before: datetime,
                              limit: int) -> list[tuple[Market, Resolution]]:
        """Binary markets that closed in [closed_after, closed_before) and resolved finally, newest close first, at
        most `limit`: what a backtest asks the analyst about. Public data, no keys."""

    async def price_at(self, market: Market, at: datetime) -> Decimal | None:
        """The market's YES price at `at` (or the last one before it) from the venue's price history; None when the
        history has no point in the day up to `at`: what the market said then, to score the analyst against."""

    def derived_secrets(self) -> Sequence[str]:
        """Credentials this client derived at run time, which no configuration lists (Polymarket's L2 API key,
        secret and passphrase, from the wallet key): the desk scrubs them, as it does configured secrets, from
        everything it says and writes. Empty for a client that derives none."""

    async def aclose(self) -> None:
        """Release connections."""


def secrets_to_scrub(configured: Iterable[str], venues: Iterable[VenueClient]) -> list[str]:
    """The configured secrets and every credential the venue clients have derived so far. Read it when it is
    needed, not once: a client derives its credentials on first use."""
    return [*configured, *(secret for venue in venues for secret in venue.derived_secrets())]
