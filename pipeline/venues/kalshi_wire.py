"""Kalshi's 2026 wire format -> the desk's Market and OrderBook. Pure functions, no I/O.

Since 2026-03-12 Kalshi sends prices only as decimal-dollar strings (`*_dollars`) and counts as
2-decimal strings (`*_fp`); the integer-cent fields are gone, so nothing here reads them.
See /work/shared/contracts/README.md and the pinned OpenAPI spec (v3.13.0).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ..config import FeesConfig
from ..errors import WireFormatError
from ..models import CENT, ONE, ZERO, BookLevel, FeeModel, Market, OrderBook, Resolution, Venue, utcnow
from .wire import parse_decimal, parse_time

# The `status` filter of GET /markets says "open", but market objects say "active", and the
# spec's enum (initialized, inactive, active, closed, determined, disputed, amended, finalized)
# differs from the filter's (unopened, open, paused, closed, settled): accept both vocabularies.
_STATUS = {
    "active": "open", "open": "open",
    "closed": "closed", "inactive": "closed",
    "settled": "settled", "determined": "settled", "finalized": "settled",
    "paused": "paused",
}


def _required(raw: dict[str, Any], field: str, where: str) -> Any:
    value = raw.get(field)
    if value is None or value == "":
        raise WireFormatError(f"{where}: required field {field!r} is missing")
    return value


def _quote(raw: dict[str, Any], field: str, where: str) -> Decimal | None:
    """A touch price, or None when that side is empty.

    Kalshi reports an empty bid as "0.0000" and an empty ask as "1.0000"; neither is a price
    anyone can trade at, so both mean "no quote".
    """
    price = parse_decimal(raw.get(field), field, where)
    if price is None or price <= ZERO or price >= ONE:
        return None
    return price


def _tick_size(raw: dict[str, Any], where: str) -> Decimal:
    # `tick_size` (integer cents) is deprecated; price_ranges carries the real steps, and a
    # tapered structure has several. We take the smallest (see the report on tapered markets).
    steps = [parse_decimal(r.get("step"), "price_ranges.step", where)
             for r in raw.get("price_ranges") or [] if isinstance(r, dict)]
    steps = [s for s in steps if s is not None and s > 0]
    return min(steps) if steps else CENT


def series_of(ticker: str) -> str:
    """KXFEDDECISION-26DEC-H0 -> KXFEDDECISION: the fee schedule is set per series."""
    return ticker.split("-", 1)[0]


def market_from_wire(raw: dict[str, Any], fees: FeesConfig) -> Market:
    """One object of `GET /markets` -> `markets[]`."""
    ticker = raw.get("ticker")
    if not isinstance(ticker, str) or not ticker:
        raise WireFormatError("kalshi market: required field 'ticker' is missing")
    where = f"kalshi market {ticker}"
    event_ticker = str(_required(raw, "event_ticker", where))
    status_raw = str(_required(raw, "status", where)).lower()
    close_time = parse_time(raw.get("close_time"), "close_time", where)

    title = raw.get("title") or ""
    if not title:  # `title` is deprecated and may disappear; yes_sub_title is required.
        sub = raw.get("yes_sub_title") or ""
        title = f"{event_ticker}: {sub}" if sub else event_ticker
    rules = "\n\n".join(part for part in (raw.get("rules_primary"), raw.get("rules_secondary")) if part)

    yes_bid = _quote(raw, "yes_bid_dollars", where)
    yes_ask = _quote(raw, "yes_ask_dollars", where)
    last_price = parse_decimal(raw.get("last_price_dollars"), "last_price_dollars", where)
    if last_price is not None and last_price <= ZERO:  # "0.0000" means never traded
        last_price = None
    bid_size = parse_decimal(raw.get("yes_bid_size_fp"), "yes_bid_size_fp", where)
    ask_size = parse_decimal(raw.get("yes_ask_size_fp"), "yes_ask_size_fp", where)

    # liquidity_dollars is deprecated and always "0.0000" now, so measure the touch ourselves.
    touch = [price * size for price, size in ((yes_bid, bid_size), (yes_ask, ask_size))
             if price is not None and size is not None]
    if touch:
        liquidity = sum(touch, ZERO)
    else:
        liquidity = parse_decimal(raw.get("liquidity_dollars"), "liquidity_dollars", where) or ZERO

    series = series_of(ticker)
    rate = fees.kalshi_series_rates.get(series, fees.kalshi_taker_rate)
    try:
        return Market(
            venue=Venue.KALSHI, id=ticker, title=title, rules=rules,
            status=_STATUS.get(status_raw, "closed"),  # unknown lifecycle states cannot be traded
            yes_bid=yes_bid, yes_ask=yes_ask, last_price=last_price,
            volume=parse_decimal(raw.get("volume_fp"), "volume_fp", where) or ZERO,
            liquidity=liquidity, close_time=close_time,
            url=f"https://kalshi.com/markets/{event_ticker.lower()}",
            tick_size=_tick_size(raw, where), contract_step=ONE,
            fee_model=FeeModel(rate=rate, rounding=CENT), event=event_ticker,
        )
    except ValidationError as e:
        raise WireFormatError(f"{where}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from e


def _levels(raw: Any, field: str, where: str) -> list[tuple[Decimal, Decimal]]:
    """[["0.4200", "300.00"], ...] -> [(price, size)], dropping empty levels."""
    levels = []
    for entry in raw or []:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise WireFormatError(f"{where}: {field} level is not [price, count]: {entry!r}")
        price = parse_decimal(entry[0], f"{field} price", where)
        size = parse_decimal(entry[1], f"{field} count", where)
        if price is None or size is None or not ZERO < price < ONE:
            raise WireFormatError(f"{where}: {field} level has a bad price or count: {entry!r}")
        if size > 0:
            levels.append((price, size))
    return levels


def orderbook_from_wire(ticker: str, raw: dict[str, Any], *, fetched_at: datetime | None = None) -> OrderBook:
    """`GET /markets/{ticker}/orderbook` -> the book in YES terms.

    Kalshi lists only bids on each side (ascending by price). Buying YES means matching a NO
    bid: a NO bid at q is a YES ask at 1 - q for the same count.
    """
    where = f"kalshi orderbook {ticker}"
    book = raw.get("orderbook_fp") if isinstance(raw, dict) else None
    if not isinstance(book, dict):
        raise WireFormatError(f"{where}: required field 'orderbook_fp' is missing")
    yes = _levels(book.get("yes_dollars"), "yes_dollars", where)
    no = _levels(book.get("no_dollars"), "no_dollars", where)
    bids = sorted(yes, key=lambda level: level[0], reverse=True)
    asks = sorted(((ONE - q, s) for q, s in no), key=lambda level: level[0])
    return OrderBook(
        venue=Venue.KALSHI, market_id=ticker,
        yes_bids=tuple(BookLevel(price=p, size=s) for p, s in bids),
        yes_asks=tuple(BookLevel(price=p, size=s) for p, s in asks),
        fetched_at=fetched_at or utcnow(),
    )


# Payouts are made once a market is finalized; "determined" can still be disputed or amended.
SETTLED_STATUSES = frozenset({"finalized", "settled"})


def resolution_from_wire(raw: dict[str, Any]) -> Resolution | None:
    """A GET /markets/{ticker} `market` -> how it resolved, or None while it is not settled."""
    ticker = _required(raw, "ticker", "kalshi market")
    where = f"kalshi market {ticker}"
    status = raw.get("status")
    if status not in SETTLED_STATUSES:
        return None
    result = raw.get("result")
    if result == "yes":
        payout = ONE
    elif result == "no":
        payout = ZERO
    elif result == "scalar":
        payout = parse_decimal(raw.get("settlement_value_dollars"), "settlement_value_dollars", where)
        if payout is None or not ZERO <= payout <= ONE:
            raise WireFormatError(f"{where}: settlement_value_dollars {payout} is outside [0, 1]")
    else:
        raise WireFormatError(f"{where}: status {status!r} but result {result!r}")
    return Resolution(venue=Venue.KALSHI, market_id=str(ticker), yes_payout=payout, detail=f"result {result}")
