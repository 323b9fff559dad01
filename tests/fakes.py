"""An in-memory venue for desk tests: books you can move, orders it remembers by client id.

Like the real venues it refuses a second order with the same client order id, and it can
be told to take an order and lose the reply ("accepted, but the answer never came").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from pipeline.errors import GiveUpError, OutcomeUnknownError
from pipeline.models import (BookLevel, FeeModel, Market, OrderAction, OrderBook, OrderRequest, OrderResult,
                             OrderStatus, Rejection, Resolution, Venue, VenueScanStats)
from pipeline.venues.paper import simulate_fill

D = Decimal
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def make_market(id: str = "KXTEST-26DEC-T1", *, venue: Venue = Venue.KALSHI, bid: str = "0.40", ask: str = "0.42",
                volume: str = "50000", liquidity: str = "5000", days: int = 10, rate: str = "0.07",
                title: str | None = None, now: datetime = NOW) -> Market:
    return Market(venue=venue, id=id, title=title or f"Test market {id}", yes_bid=D(bid), yes_ask=D(ask),
                  volume=D(volume), liquidity=D(liquidity), close_time=now + timedelta(days=days),
                  fee_model=FeeModel(rate=D(rate)), url=f"https://example.test/{id}")


def make_book(market: Market, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> OrderBook:
    return OrderBook(venue=market.venue, market_id=market.id,
                     yes_bids=tuple(BookLevel(price=D(p), size=D(s)) for p, s in bids),
                     yes_asks=tuple(BookLevel(price=D(p), size=D(s)) for p, s in asks))


class FakeVenue:
    def __init__(self, venue: Venue = Venue.KALSHI) -> None:
        self.venue = venue
        self.markets: dict[str, Market] = {}
        self.fees: dict[str, FeeModel] = {}  # market id -> the fee schedule the venue serves for it now
        self.fee_error: Exception | None = None  # reading fee schedules fails (the venue unreachable)
        self.books: dict[str, OrderBook] = {}
        self.orders: dict[str, OrderResult] = {}  # client_order_id -> what the venue holds
        self.posts = 0  # how many order requests reached the venue
        self.requests: list[OrderRequest] = []  # every order request that reached the venue, in order
        self.looked_up_as: dict[str, OrderAction] = {}  # client order id -> the direction a look-up named
        self.lose_reply = False
        self.rest_orders = False  # orders rest unfilled, as a GTC limit below the touch would
        self.refuse_with: Exception | None = None
        self.book_error: Exception | None = None
        self.cancels = 0
        self.book_reads = 0  # order books served (one per market)
        self.find_error: Exception | None = None  # look-ups fail (the venue unreachable for a while)
        self.cancel_ignored = False  # a cancel that leaves the order working (the CLOB's "not_canceled")
        self.cancel_errors: dict[str, Exception] = {}  # client order id -> what cancelling that order raises
        self.resolutions: dict[str, Resolution] = {}  # market id -> how it resolved, set by the test
        self.resolution_error: Exception | None = None
        self.on_resolution: Callable[[], None] | None = None  # called as each resolution is read (time passing)
        # A test holds a book fetch or an order post until it opens the gate: the moment to interleave.
        self.book_gate: asyncio.Event | None = None
        self.order_gate: asyncio.Event | None = None
        self.cancel_gate: asyncio.Event | None = None
        self.held = asyncio.Event()  # set once a call is waiting at a gate
        self.secrets_derived: list[str] = []  # credentials the venue client "derived" while running
        self.settled: list[tuple[Market, Resolution]] = []  # what settled_markets answers from, set by the test
        self.history: dict[str, list[tuple[datetime, Decimal]]] = {}  # market id -> (moment, YES price) points

    def add(self, market: Market, book: OrderBook) -> None:
        """A market and its book; the market's fee model becomes this venue's fee schedule for it."""
        self.markets[market.id] = market
        self.books[market.id] = book
        if market.fee_model is not None:
            self.fees[market.id] = market.fee_model

    async def list_markets(self, stats: VenueScanStats | None = None) -> list[Market]:
        if stats is not None:
            stats.pages, stats.markets = 1, len(self.markets)
        # As the real venues list them: without fees, which the cycle reads for the markets it prices.
        return [m.model_copy(update={"fee_model": None}) for m in self.markets.values()]

    async def get_order_books(self, markets: Sequence[Market]) -> dict[str, OrderBook | Exception]:
        books: dict[str, OrderBook | Exception] = {}
        for market in markets:
            try:
                books[market.id] = await self.get_order_book(market)
            except Exception as e:  # noqa: BLE001 - per market, as the real venues answer
                books[market.id] = e
        return books

    async def with_fees(self, markets: Sequence[Market], now: datetime, *,
                        fresh: bool = False) -> tuple[list[Market], list[Rejection]]:
        if self.fee_error is not None:
            raise self.fee_error
        priced, rejected = [], []
        for market in markets:
            model = self.fees.get(market.id)
            if model is None:
                rejected.append(Rejection(market_key=market.key, reason="fees_unknown", detail="no fee schedule"))
            else:
                priced.append(market.model_copy(update={"fee_model": model}))
        return priced, rejected

    async def _wait_at(self, gate: asyncio.Event | None) -> None:
        if gate is not None:
            self.held.set()
            await gate.wait()

    async def get_order_book(self, market: Market) -> OrderBook:
        await self._wait_at(self.book_gate)
        self.book_reads += 1
        if self.book_error is not None:
            raise self.book_error
        return self.books[market.id]

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        await self._wait_at(self.order_gate)
        self.posts += 1
        self.requests.append(request)
        if self.refuse_with is not None:
            raise self.refuse_with
        if request.client_order_id in self.orders:
            raise GiveUpError(f"duplicate client_order_id {request.client_order_id}")
        result = simulate_fill(request, market, self.books[market.id])
        result = result.model_copy(update={"venue_order_id": f"V-{len(self.orders) + 1}"})
        if self.rest_orders:
            result = result.model_copy(update={"status": OrderStatus.RESTING, "fills": ()})
        self.orders[request.client_order_id] = result
        if self.lose_reply:
            raise OutcomeUnknownError("timed out waiting for the venue's answer")
        return result

    async def find_order(self, client_order_id: str, market: Market, *,
                         action: OrderAction = OrderAction.BUY) -> OrderResult | None:
        if self.find_error is not None:
            raise self.find_error
        self.looked_up_as[client_order_id] = action
        return self.orders.get(client_order_id)

    async def cancel(self, order, market: Market) -> OrderResult | None:
        await self._wait_at(self.cancel_gate)
        if order.client_order_id in self.cancel_errors:
            raise self.cancel_errors[order.client_order_id]
        held = self.orders.get(order.client_order_id)
        if held is None:
            return None
        if self.cancel_ignored:
            return held
        cancelled = held.model_copy(update={"status": OrderStatus.PARTIALLY_FILLED if held.filled else
                                            OrderStatus.CANCELED, "reason": "cancelled"})
        self.orders[order.client_order_id] = cancelled
        self.cancels += 1
        return cancelled

    async def resolution(self, market_id: str) -> Resolution | None:
        if self.on_resolution is not None:
            self.on_resolution()
        if self.resolution_error is not None:
            raise self.resolution_error
        return self.resolutions.get(market_id)

    def resolve(self, market_id: str, yes_payout: str) -> None:
        self.resolutions[market_id] = Resolution(venue=self.venue, market_id=market_id, yes_payout=Decimal(yes_payout),
                                                 detail=f"resolved at {yes_payout}")

    async def settled_markets(self, closed_after: datetime, closed_before: datetime,
                              limit: int) -> list[tuple[Market, Resolution]]:
        """`settled` in the window, newest close first, as the real venues answer."""
        inside = [p for p in self.settled if closed_after <= p[0].close_time < closed_before]
        return sorted(inside, key=lambda p: p[0].close_time, reverse=True)[:limit]

    async def price_at(self, market: Market, at: datetime) -> Decimal | None:
        """The last `history` point at or before `at` within a day, as the real venues answer."""
        points = [(t, p) for t, p in self.history.get(market.id, []) if at - timedelta(days=1) <= t <= at]
        return max(points, key=lambda point: point[0])[1] if points else None

    def derived_secrets(self) -> list[str]:
        return list(self.secrets_derived)

    async def aclose(self) -> None:
        pass
