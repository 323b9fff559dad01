"""Open positions valued at what selling them now would fetch: pure, the desk fetches the books."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .models import Market, OrderBook, Position


@dataclass(frozen=True)
class MarkedPosition:
    """A position with its market, its mark (the best bid for its side) and the P&L if sold there; `note` says
    why a figure is missing."""

    position: Position
    market: Market | None
    mark: Decimal | None
    unrealized: Decimal | None
    closes_at: datetime | None
    note: str = ""


def mark_position(position: Position, market: Market | None, book: OrderBook | str) -> MarkedPosition:
    """Value `position` at the best bid for its side in `book`; `book` is a short reason when there is none."""
    closes_at = market.close_time if market is not None else None
    if market is None:
        return MarkedPosition(position, None, None, None, None, "market not known to this desk")
    if isinstance(book, str):
        return MarkedPosition(position, market, None, None, closes_at, book)
    bid = book.best_bid(position.side)
    if bid is None:
        return MarkedPosition(position, market, None, None, closes_at, f"no bid for {position.side.value.upper()}")
    unrealized = position.contracts * bid - position.cost - position.fees
    return MarkedPosition(position, market, bid, unrealized, closes_at)
