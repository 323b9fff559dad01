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
    exiting: str = ""  # the exit signal pending or on its way for it: no second Close is offered


def mark_position(position: Position, market: Market | None, book: OrderBook | str) -> MarkedPosition:
    """Value `position` at what selling it into `book`'s bids would fetch now, level by level (fees not counted).

    `mark` is the average price of that sale; contracts the bids cannot take are valued at nothing and the note
    says so. `book` is a short reason when there is none."""
    closes_at = market.close_time if market is not None else None
    if market is None:
        return MarkedPosition(position, None, None, None, None, "market not known to this desk")
    if isinstance(book, str):
        return MarkedPosition(position, market, None, None, closes_at, book)
    side = position.side.value.upper()
    left, value = position.contracts, Decimal(0)
    for level in book.bids_for(position.side):
        if left <= 0:
            break
        taken = min(left, level.size)
        value, left = value + taken * level.price, left - taken
    if left >= position.contracts or position.contracts <= 0:
        return MarkedPosition(position, market, None, None, closes_at, f"no bid for {side}")
    note = (f"the {side} bids take only {position.contracts - left} of {position.contracts}; the rest valued at $0"
            if left > 0 else "")
    return MarkedPosition(position, market, value / position.contracts, value - position.cost - position.fees,
                          closes_at, note)
