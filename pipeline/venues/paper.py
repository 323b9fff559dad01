"""Dry-run fills: what an order would have done against the real, current order book."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from ..errors import GiveUpError
from ..models import (Fill, Market, Order, OrderAction, OrderBook, OrderRequest, OrderResult, OrderStatus, Rejection,
                      Resolution, Venue, VenueScanStats, round_down)
from .base import VenueClient


def simulate_fill(request: OrderRequest, market: Market, book: OrderBook) -> OrderResult:
    """Walk the asks for the request's side up to its limit price, as a taker would; a sell walks the side's bids
    down to its limit price instead.

    Immediate-or-cancel keeps what fills; fill-or-kill keeps all or nothing. Paper orders
    never rest: a good-till-canceled remainder is reported as not simulated.
    """
    selling = request.action is OrderAction.SELL
    levels = book.bids_for(request.side) if selling else book.asks_for(request.side)
    within = "at or above" if selling else "at or below"
    remaining = request.contracts
    fills: list[Fill] = []
    for level in levels:
        past_limit = level.price < request.limit_price if selling else level.price > request.limit_price
        if past_limit or remaining < market.contract_step:
            break
        take = round_down(min(level.size, remaining), market.contract_step)
        if take <= 0:
            continue  # a remnant smaller than one step: skip it, the next level may fill
        fills.append(Fill(contracts=take, price=level.price, fee=market.fees.fee(take, level.price)))
        remaining -= take
    filled = request.contracts - remaining
    venue_order_id = f"paper-{request.client_order_id}"
    if request.time_in_force == "fill_or_kill" and remaining > 0:
        return OrderResult(client_order_id=request.client_order_id, venue_order_id=venue_order_id,
                           status=OrderStatus.CANCELED,
                           reason=f"fill-or-kill: only {filled} of {request.contracts} available {within} "
                                  f"{request.limit_price}")
    if filled <= 0:
        return OrderResult(client_order_id=request.client_order_id, venue_order_id=venue_order_id,
                           status=OrderStatus.CANCELED,
                           reason=f"no {request.side.value.upper()} {'bids' if selling else 'offers'} {within} "
                                  f"{request.limit_price}")
    if remaining > 0:
        rest = "paper orders do not rest; " if request.time_in_force == "good_till_canceled" else ""
        return OrderResult(client_order_id=request.client_order_id, venue_order_id=venue_order_id,
                           status=OrderStatus.PARTIALLY_FILLED, fills=tuple(fills),
                           reason=f"{rest}{filled} of {request.contracts} filled {within} {request.limit_price};"
                                  f" the rest cancelled")
    return OrderResult(client_order_id=request.client_order_id, venue_order_id=venue_order_id,
                       status=OrderStatus.FILLED, fills=tuple(fills))


class PaperVenue:
    """A VenueClient that reads the real venue's books and simulates every order."""

    def __init__(self, source: VenueClient) -> None:
        self.source = source
        self.venue: Venue = source.venue
        self._orders: dict[str, OrderResult] = {}

    async def list_markets(self, stats: VenueScanStats | None = None) -> list[Market]:
        return await self.source.list_markets(stats)

    async def get_order_book(self, market: Market) -> OrderBook:
        return await self.source.get_order_book(market)

    async def get_order_books(self, markets: Sequence[Market]) -> dict[str, OrderBook | Exception]:
        return await self.source.get_order_books(markets)

    async def with_fees(self, markets: Sequence[Market], now: datetime, *,
                        fresh: bool = False) -> tuple[list[Market], list[Rejection]]:
        return await self.source.with_fees(markets, now, fresh=fresh)  # paper trades pay the venue's real fees

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        if request.client_order_id in self._orders:
            raise GiveUpError(f"duplicate client order id {request.client_order_id}")
        result = simulate_fill(request, market, await self.source.get_order_book(market))
        self._orders[request.client_order_id] = result
        return result

    async def find_order(self, client_order_id: str, market: Market) -> OrderResult | None:
        return self._orders.get(client_order_id)

    async def cancel(self, order: Order, market: Market) -> OrderResult | None:
        return self._orders.get(order.client_order_id)  # paper orders never rest: nothing to cancel

    async def resolution(self, market_id: str) -> Resolution | None:
        return await self.source.resolution(market_id)

    async def settled_markets(self, closed_after: datetime, closed_before: datetime,
                              limit: int) -> list[tuple[Market, Resolution]]:
        """The real venue's: history is public data, nothing to simulate."""
        return await self.source.settled_markets(closed_after, closed_before, limit)

    async def price_at(self, market: Market, at: datetime) -> Decimal | None:
        """The real venue's price history."""
        return await self.source.price_at(market, at)

    def derived_secrets(self) -> Sequence[str]:
        return self.source.derived_secrets()

    async def aclose(self) -> None:
        await self.source.aclose()
