"""Kalshi's 2026 wire format -> the desk's Market, OrderBook, fee schedules and orders. Pure functions, no I/O.

Since 2026-03-12 Kalshi sends prices only as decimal-dollar strings (`*_dollars`) and counts as
2-decimal strings (`*_fp`); the integer-cent fields are gone, so nothing here reads them.
The pinned OpenAPI spec is pipeline/contracts/kalshi-openapi.yaml (v3.31.0).

Fees (Kalshi's fee schedule and its "fee rounding" page): every series has a `fee_type` and a
`fee_multiplier` M. The taker fee of one trade is M x 0.07 x C x P x (1 - P), rounded up to $0.0001;
`quadratic_with_maker_fees` series also charge resting orders 0.25 of that (0.5 for
`quadratic_with_combo_maker_fees`); `flat` series follow a table the API does not publish, so the desk does
not price them. Scheduled changes (GET /series/fee_changes) and event overrides (GET /events/fee_changes)
take effect at their time; a market's fee waiver zeroes its fees until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import FeesUnknownError, WireFormatError
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


CONTRACT_STEP = CENT  # FixedPointCount: "the minimum granularity is 0.01 contracts"


def market_from_wire(raw: dict[str, Any], *, fractional: bool = True) -> Market:
    """One object of `GET /markets` -> `markets[]`, without fees (those come from the series).

    Counts go in 0.01 steps (`fractional`), or whole contracts when the desk is configured so or a market
    says `fractional_trading_enabled: false` (the flag was removed from the API in July 2026).
    """
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

    # liquidity_dollars is gone from the API, so measure the touch ourselves.
    touch = [price * size for price, size in ((yes_bid, bid_size), (yes_ask, ask_size))
             if price is not None and size is not None]
    liquidity = sum(touch, ZERO) if touch else ZERO
    waiver = raw.get("fee_waiver_expiration_time")
    whole = not fractional or raw.get("fractional_trading_enabled") is False
    try:
        return Market(
            venue=Venue.KALSHI, id=ticker, title=title, rules=rules,
            status=_STATUS.get(status_raw, "closed"),  # unknown lifecycle states cannot be traded
            yes_bid=yes_bid, yes_ask=yes_ask, last_price=last_price,
            volume=parse_decimal(raw.get("volume_fp"), "volume_fp", where) or ZERO,
            liquidity=liquidity, close_time=close_time,
            url=f"https://kalshi.com/markets/{event_ticker.lower()}",
            tick_size=_tick_size(raw, where), contract_step=ONE if whole else CONTRACT_STEP,
            fee_waived_until=parse_time(waiver, "fee_waiver_expiration_time", where) if waiver else None,
            event=event_ticker,
        )
    except ValidationError as e:
        raise WireFormatError(f"{where}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from e


# -- fees -------------------------------------------------------------------------------------

TAKER_COEFFICIENT = Decimal("0.07")  # the General Trading Fees Table: 0.07 x C x P x (1 - P)
MAKER_SHARE = {"quadratic": ZERO, "quadratic_with_maker_fees": Decimal("0.25"),
               "quadratic_with_combo_maker_fees": Decimal("0.5")}
FEE_ROUNDING = Decimal("0.0001")  # each trade's fee is rounded up to the centicent
# Per order: the balance change is floored to the cent for most accounts (a rounding fee under a cent, rebated
# once a cent accumulates), and each of its trades rounds up by under $0.0001: a cent for each, covering 100 trades.
PER_ORDER = Decimal("0.02")


@dataclass(frozen=True)
class FeeSetting:
    """A series' fee structure, or a change of it (or of an event's override) scheduled for `at`."""

    fee_type: str | None  # None on an event change: the override is cleared
    multiplier: Decimal | None
    at: datetime | None = None  # None: in force now (the series object itself)
    subject: str = ""  # the series or event it belongs to


def _multiplier(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    number = parse_decimal(value, "fee_multiplier", where)
    if number is None or number < 0:
        raise WireFormatError(f"{where}: fee_multiplier {value!r} is not a non-negative number")
    return number


def series_fees_from_wire(raw: Any) -> FeeSetting:
    """GET /series/{series_ticker} -> the series' fee structure in force."""
    series = raw.get("series") if isinstance(raw, dict) else None
    if not isinstance(series, dict):
        raise WireFormatError("kalshi series: required field 'series' is missing")
    ticker = str(series.get("ticker") or "")
    where = f"kalshi series {ticker or '?'}"
    fee_type = series.get("fee_type")
    if not isinstance(fee_type, str) or not fee_type:
        raise WireFormatError(f"{where}: required field 'fee_type' is missing")
    multiplier = _multiplier(series.get("fee_multiplier"), where)
    if multiplier is None:
        raise WireFormatError(f"{where}: required field 'fee_multiplier' is missing")
    return FeeSetting(fee_type, multiplier, None, ticker)


def series_fee_changes_from_wire(raw: Any) -> list[FeeSetting]:
    """GET /series/fee_changes -> the scheduled changes of series schedules."""
    rows = raw.get("series_fee_change_arr") if isinstance(raw, dict) else None
    if rows is None and isinstance(raw, dict) and "series_fee_change_arr" in raw:
        rows = []  # Go encodes an empty slice as null
    if not isinstance(rows, list):
        raise WireFormatError("kalshi series fee changes: required field 'series_fee_change_arr' is missing")
    changes = []
    for row in rows:
        where = f"kalshi series fee change {row.get('id') if isinstance(row, dict) else '?'}"
        if not isinstance(row, dict) or not row.get("series_ticker") or not row.get("fee_type"):
            raise WireFormatError(f"{where}: 'series_ticker' or 'fee_type' is missing")
        changes.append(FeeSetting(str(row["fee_type"]), _multiplier(row.get("fee_multiplier"), where),
                                  parse_time(row.get("scheduled_ts"), "scheduled_ts", where), str(row["series_ticker"])))
    return changes


def event_fee_changes_from_wire(raw: Any) -> tuple[list[FeeSetting], str]:
    """GET /events/fee_changes -> (an event's overrides, scheduled or past; the next page's cursor)."""
    rows = raw.get("event_fee_changes") if isinstance(raw, dict) else None
    if rows is None and isinstance(raw, dict) and "event_fee_changes" in raw:
        rows = []
    if not isinstance(rows, list):
        raise WireFormatError("kalshi event fee changes: required field 'event_fee_changes' is missing")
    return event_fee_change_rows(rows), str(raw.get("cursor") or "")


def event_fee_change_rows(rows: list[Any]) -> list[FeeSetting]:
    """One page's `event_fee_changes` rows -> the event overrides they set."""
    changes = []
    for row in rows:
        where = f"kalshi event fee change {row.get('id') if isinstance(row, dict) else '?'}"
        if not isinstance(row, dict) or not row.get("event_ticker"):
            raise WireFormatError(f"{where}: 'event_ticker' is missing")
        fee_type = row.get("fee_type_override")
        changes.append(FeeSetting(str(fee_type) if fee_type else None,
                                  _multiplier(row.get("fee_multiplier_override"), where),
                                  parse_time(row.get("scheduled_ts"), "scheduled_ts", where), str(row["event_ticker"])))
    return changes


def effective_fees(series: FeeSetting, series_changes: list[FeeSetting], event_changes: list[FeeSetting],
                   at: datetime) -> tuple[str, Decimal, str]:
    """(fee type, multiplier, where it came from) in force at `at`: the series, then its scheduled changes
    whose time has come, then the event's latest override (an override set to null clears it)."""
    fee_type, multiplier = series.fee_type or "", series.multiplier or ZERO
    source = f"series {series.subject}"
    due = sorted((c for c in series_changes if c.at is not None and c.at <= at), key=lambda c: c.at)  # type: ignore
    for change in due:
        fee_type = change.fee_type or fee_type
        multiplier = change.multiplier if change.multiplier is not None else multiplier
        source = f"series {series.subject} (changed {change.at:%Y-%m-%d})"
    passed = sorted((c for c in event_changes if c.at is not None and c.at <= at), key=lambda c: c.at)  # type: ignore
    if passed and passed[-1].fee_type is not None:
        override = passed[-1]
        fee_type = override.fee_type or fee_type
        multiplier = override.multiplier if override.multiplier is not None else multiplier
        source = f"event {override.subject} override"
    return fee_type, multiplier, source


def fee_model(fee_type: str, multiplier: Decimal, source: str) -> FeeModel:
    """Kalshi's fee structure -> FeeModel; FeesUnknownError for a structure the desk cannot price."""
    share = MAKER_SHARE.get(fee_type)
    if share is None:
        raise FeesUnknownError(f"kalshi {source}: fee type {fee_type!r} is not one this desk prices (it knows "
                               f"{', '.join(MAKER_SHARE)}); set fees.kalshi_series_rates to trade it")
    rate = TAKER_COEFFICIENT * multiplier
    if rate > 1:
        raise FeesUnknownError(f"kalshi {source}: fee multiplier {multiplier} gives a rate above 1")
    return FeeModel(rate=rate, maker_rate=rate * share, rounding=FEE_ROUNDING, per_order=PER_ORDER,
                    source=f"Kalshi {source}: {fee_type} x{_plain(multiplier)}")


def fixed_fee_model(market: Market, now: datetime, overrides: Mapping[str, Decimal]) -> FeeModel | None:
    """The fee a market has whatever its series' schedule says (the config's override for the series, or a
    waiver in force at `now`); None when the schedule decides."""
    series = series_of(market.event or market.id)
    if series in overrides:
        return override_fee_model(series, overrides[series])
    if market.fee_waived_until is not None and now < market.fee_waived_until:
        return waived_fee_model(market.fee_waived_until)
    return None


def scheduled_fee_model(series: str, setting: FeeSetting, series_changes: list[FeeSetting],
                        event_changes: list[FeeSetting], now: datetime) -> FeeModel:
    """The fee the exchange's schedules set at `now`: the series' `setting`, its changes that are due
    (`series_changes` may hold every series'), the event's override."""
    own = [c for c in series_changes if c.subject == series]
    return fee_model(*effective_fees(setting, own, event_changes, now))


def override_fee_model(series: str, rate: Decimal) -> FeeModel:
    return FeeModel(rate=rate, rounding=FEE_ROUNDING, per_order=PER_ORDER,
                    source=f"config fees.kalshi_series_rates[{series}] = {rate}")


def waived_fee_model(until: datetime) -> FeeModel:
    return FeeModel(rate=ZERO, rounding=FEE_ROUNDING, source=f"Kalshi fee waiver until {until:%Y-%m-%d %H:%M} UTC")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


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


def orderbooks_from_wire(raw: Any, *, fetched_at: datetime | None = None) -> dict[str, OrderBook]:
    """`GET /markets/orderbooks` -> {ticker: book}, each read as the single-market endpoint's."""
    rows = raw.get("orderbooks") if isinstance(raw, dict) else None
    if not isinstance(rows, list):
        raise WireFormatError("kalshi orderbooks: required field 'orderbooks' is missing")
    at = fetched_at or utcnow()
    books = {}
    for row in rows:
        ticker = row.get("ticker") if isinstance(row, dict) else None
        if not isinstance(ticker, str) or not ticker:
            raise WireFormatError("kalshi orderbooks: a book has no 'ticker'")
        books[ticker] = orderbook_from_wire(ticker, row, fetched_at=at)
    return books


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


# -- price history ----------------------------------------------------------------------------

def _close(raw: Any, field: str, historical: bool, where: str) -> Decimal | None:
    """The close of one OHLC block: `close_dollars` on live candles, `close` on historical ones (the spec's
    BidAskDistribution / PriceDistribution and their *Historical twins)."""
    block = raw.get(field) if isinstance(raw, dict) else None
    if not isinstance(block, dict):
        return None
    name = "close" if historical else "close_dollars"
    return parse_decimal(block.get(name), f"{field}.{name}", where)


def candle_price(raw: Any, *, historical: bool = False, where: str = "kalshi candlestick") -> Decimal | None:
    """One candlestick -> the YES price at its end: the mid of the YES bid and ask closes when both are real quotes
    (an empty bid reads "0.0000", an empty ask "1.0000"), else the last trade's close; None when it has neither."""
    bid = _close(raw, "yes_bid", historical, where)
    ask = _close(raw, "yes_ask", historical, where)
    if bid is not None and ask is not None and ZERO < bid <= ask < ONE:
        return (bid + ask) / 2
    trade = _close(raw, "price", historical, where)
    return trade if trade is not None and ZERO <= trade <= ONE else None


def price_from_candles(data: Any, at: datetime, *, historical: bool = False) -> Decimal | None:
    """GET .../candlesticks -> the price of the last candle that ends at or before `at` and has one; None without."""
    candles = data.get("candlesticks") if isinstance(data, dict) else None
    where = f"kalshi candlesticks of {data.get('ticker') if isinstance(data, dict) else '?'}"
    if candles is None and isinstance(data, dict) and "candlesticks" in data:
        candles = []  # Go encodes an empty slice as null
    if not isinstance(candles, list):
        raise WireFormatError(f"{where}: required field 'candlesticks' is not a list")
    limit = at.timestamp()
    dated = []
    for candle in candles:
        end = candle.get("end_period_ts") if isinstance(candle, dict) else None
        if not isinstance(end, int) or isinstance(end, bool):
            raise WireFormatError(f"{where}: a candlestick has no integer 'end_period_ts'")
        if end <= limit:
            dated.append((end, candle))
    for _, candle in sorted(dated, key=lambda pair: pair[0], reverse=True):
        price = candle_price(candle, historical=historical, where=where)
        if price is not None:
            return price
    return None
