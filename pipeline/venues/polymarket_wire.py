"""Polymarket's wire formats (Gamma market listing, CLOB book and open orders, Data API positions) -> our
models. Pure.

Gamma sends `outcomes`, `outcomePrices` and `clobTokenIds` as JSON arrays encoded inside
strings, and numbers sometimes as numbers, sometimes as strings: every number goes through
Decimal(str(x)) so no float arithmetic leaks into prices.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ..errors import FeesUnknownError, WireFormatError
from ..models import (CENT, ONE, ZERO, BookLevel, FeeModel, Market, OrderBook, Resolution, Side, Venue, VenueOrder,
                      VenueScanStats, plain, utcnow)
from .wire import parse_decimal, parse_time

log = logging.getLogger(__name__)

__all__ = ["UnsupportedMarket", "WireFormatError", "fee_model_from_clob_market", "market_from_wire", "markets_from_page", "open_order_from_wire", "open_orders_page_from_wire",
           "orderbook_from_wire", "positions_from_wire", "price_from_history", "resolution_from_wire"]

FEE_ROUNDING = Decimal("0.00001")  # the operator's fee is rounded to 0.00001 pUSD
FEE_PER_ORDER = Decimal("0.001")  # an order filled in several trades rounds each: covers 100 of them
POLYMARKET_CONTRACT_STEP = Decimal("0.01")  # the desk keeps share counts to two decimals
# Protocol versions (Gamma's `version`): where the outcome ids are, per the V2 migration guide.
PROTOCOLS = {"v1": "clobTokenIds", "v2": "positionIds"}


class UnsupportedMarket(WireFormatError):
    """A market the desk must not guess at (an unknown protocol version): dropped, with the reason counted."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _json_list(value: Any, field: str, where: str) -> list[Any] | None:
    """'["Yes", "No"]' (or an actual list) -> list; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise WireFormatError(f"{where}: field {field!r} is not a JSON array: {value!r}") from e
    if not isinstance(value, list):
        raise WireFormatError(f"{where}: field {field!r} is not an array: {value!r}")
    return value


def _number(raw: dict[str, Any], field: str, where: str, fallback: str | None = None) -> Decimal | None:
    value = parse_decimal(raw.get(field), field, where)
    if value is None and fallback is not None:
        value = parse_decimal(raw.get(fallback), fallback, where)
    return value


def markets_from_page(raws: Iterable[Any], stats: VenueScanStats) -> list[Market]:
    """A page of Gamma markets -> those the desk can trade; every other one is counted in `stats` as skipped,
    by reason where the funnel names one (an unknown protocol), never guessed at."""
    markets: list[Market] = []
    for raw in raws:
        try:
            market = market_from_wire(raw) if isinstance(raw, dict) else None
        except UnsupportedMarket as e:
            stats.skip_reasons[e.reason] = stats.skip_reasons.get(e.reason, 0) + 1
            market = None
        except WireFormatError as e:
            log.debug("polymarket: skipped a market: %s", e)
            market = None
        if market is None:
            stats.skipped += 1
        else:
            markets.append(market)
    return markets


def market_from_wire(raw: dict[str, Any]) -> Market | None:
    """One Gamma `/markets/keyset` market (without fees: those come from the CLOB); None when it is not a binary
    Yes/No order-book market. UnsupportedMarket when its protocol version is missing or one the desk does not
    know: its outcome ids cannot be told apart from stale ones, so it is never guessed."""
    condition_id = raw.get("conditionId")
    if not isinstance(condition_id, str) or not condition_id:
        raise WireFormatError(f"polymarket market id={raw.get('id')!r}: required field 'conditionId' is missing")
    where = f"polymarket market {condition_id}"

    outcomes = _json_list(raw.get("outcomes"), "outcomes", where) or []
    labels = [str(o).strip().lower() for o in outcomes]
    # Multi-outcome events arrive as several Yes/No markets; anything else (teams, Up/Down,
    # three-way) is a shape the desk does not price.
    if sorted(labels) != ["no", "yes"] or raw.get("enableOrderBook") is False:
        return None
    version = raw.get("version")
    ids_field = PROTOCOLS.get(version) if isinstance(version, str) else None
    if ids_field is None:
        reason = "protocol_version_missing" if version is None else "protocol_version_unknown"
        raise UnsupportedMarket(reason, f"{where}: protocol version {version!r} is not one this desk trades "
                                        f"({', '.join(PROTOCOLS)}); its outcome ids are not guessed")
    # v1: a JSON array inside a string; v2: a real array. Either is read, but only from the version's field:
    # a v1 market may carry positionIds the CLOB has no book for.
    tokens = _json_list(raw.get(ids_field), ids_field, where) or []
    if len(tokens) != 2 or not all(str(t).isdigit() for t in tokens):
        raise WireFormatError(f"{where}: {ids_field} is not two decimal ids: {raw.get(ids_field)!r}")

    question = raw.get("question")
    if not isinstance(question, str) or not question:
        raise WireFormatError(f"{where}: required field 'question' is missing")
    close_time = parse_time(raw.get("endDate"), "endDate", where)

    is_open = (raw.get("active") is True and not raw.get("closed") and not raw.get("archived")
               and raw.get("acceptingOrders") is not False)
    yes_bid = _number(raw, "bestBid", where)
    yes_ask = _number(raw, "bestAsk", where)
    last = _number(raw, "lastTradePrice", where)
    slug = raw.get("slug") or ""
    events = raw.get("events") or []
    event = events[0].get("slug", "") if events and isinstance(events[0], dict) else ""
    yes_index = labels.index("yes")

    try:
        return Market(
            venue=Venue.POLYMARKET, id=condition_id, title=question, rules=raw.get("description") or "",
            status="open" if is_open else "closed",
            # Gamma reports an empty side as 0 (bid) or 1 (ask), or leaves the field out.
            yes_bid=yes_bid if yes_bid is not None and ZERO < yes_bid < ONE else None,
            yes_ask=yes_ask if yes_ask is not None and ZERO < yes_ask < ONE else None,
            last_price=last if last is not None and last > ZERO else None,
            volume=_number(raw, "volumeNum", where, "volume") or ZERO,
            liquidity=_number(raw, "liquidityNum", where, "liquidity") or ZERO,
            close_time=close_time,
            url=f"https://polymarket.com/market/{slug}" if slug else "",
            tick_size=_number(raw, "orderPriceMinTickSize", where) or CENT,
            contract_step=POLYMARKET_CONTRACT_STEP,
            min_order_size=_number(raw, "orderMinSize", where) or ZERO,
            event=event,
            yes_token_id=str(tokens[yes_index]), no_token_id=str(tokens[1 - yes_index]),
            # Protocol V2 has no separate neg-risk exchange (neg-risk is part of the position id).
            neg_risk=bool(raw.get("negRisk")) and version == "v1",
            protocol=version,
        )
    except ValidationError as e:
        raise WireFormatError(f"{where}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from e


def fee_model_from_clob_market(raw: Any, market: Market) -> FeeModel:
    """CLOB `GET /clob-markets/{condition_id}` -> the market's taker fee: `fd` {r: rate, e: exponent, to: taker
    only}, absent on fee-free markets. (`GET /fee-rate`'s base_fee is a v1 authorization constant, not the rate.)
    Refuses an answer for other outcome ids than the market's, or a fee it cannot price."""
    where = f"polymarket clob market {market.id}"
    if not isinstance(raw, dict) or not isinstance(raw.get("t"), list):
        raise WireFormatError(f"{where}: required field 't' (the outcome tokens) is missing")
    listed = {str(t.get("t")) for t in raw["t"] if isinstance(t, dict)}
    if not {market.yes_token_id, market.no_token_id} <= listed:
        raise WireFormatError(f"{where}: the CLOB lists outcome ids {sorted(listed)}, not the market's")
    details = raw.get("fd")
    if details is None:
        return FeeModel(rate=ZERO, rounding=FEE_ROUNDING, source="Polymarket CLOB: no fee on this market")
    if not isinstance(details, dict):
        raise WireFormatError(f"{where}: field 'fd' is not an object")
    rate = parse_decimal(details.get("r"), "fd.r", where)
    exponent = parse_decimal(details.get("e"), "fd.e", where)
    if rate is None or exponent is None or not isinstance(details.get("to"), bool):
        # A fee is charged here but not said how: never priced as free.
        raise WireFormatError(f"{where}: the fee details lack 'r', 'e' or 'to': {details!r}"[:300])
    if not ZERO <= rate <= ONE:
        raise FeesUnknownError(f"{where}: fee rate {rate} is not between 0 and 1")
    if exponent != exponent.to_integral_value() or not 1 <= exponent <= 4:
        raise FeesUnknownError(f"{where}: fee exponent {exponent} is not one this desk prices (1 to 4)")
    if details["to"] is False:  # makers would pay too: the desk's orders may rest, so it must know
        raise FeesUnknownError(f"{where}: the fee is charged to makers as well (fd.to false); not priced here")
    shown = format(rate.normalize(), "f")
    curve = "p(1-p)" if exponent == 1 else f"(p(1-p))^{int(exponent)}"
    return FeeModel(rate=rate, exponent=int(exponent), rounding=FEE_ROUNDING, per_order=FEE_PER_ORDER,
                    source=f"Polymarket CLOB: taker {shown} x {curve}")


def override_fee_model(rate: Decimal) -> FeeModel:
    return FeeModel(rate=rate, rounding=FEE_ROUNDING, per_order=FEE_PER_ORDER if rate else ZERO,
                    source=f"config fees.polymarket_taker_rate = {rate}")


def _levels(raw: Any, field: str, where: str) -> list[tuple[Decimal, Decimal]]:
    levels = []
    for entry in raw or []:
        if not isinstance(entry, dict):
            raise WireFormatError(f"{where}: {field} level is not {{price, size}}: {entry!r}")
        price = parse_decimal(entry.get("price"), f"{field}.price", where)
        size = parse_decimal(entry.get("size"), f"{field}.size", where)
        if price is None or size is None or not ZERO < price < ONE:
            raise WireFormatError(f"{where}: {field} level has a bad price or size: {entry!r}")
        if size > 0:
            levels.append((price, size))
    return levels


def orderbook_from_wire(market_id: str, raw: dict[str, Any], *, fetched_at: datetime | None = None) -> OrderBook:
    """CLOB `GET /book` of the YES token -> the book in YES terms.

    The CLOB lists bids lowest-first and asks highest-first (best price last), the opposite
    of what the desk expects, so both sides are re-sorted rather than trusted.
    """
    where = f"polymarket book {market_id}"
    if not isinstance(raw, dict):
        raise WireFormatError(f"{where}: expected an object, got {type(raw).__name__}")
    bids = sorted(_levels(raw.get("bids"), "bids", where), key=lambda level: level[0], reverse=True)
    asks = sorted(_levels(raw.get("asks"), "asks", where), key=lambda level: level[0])
    return OrderBook(
        venue=Venue.POLYMARKET, market_id=market_id,
        yes_bids=tuple(BookLevel(price=p, size=s) for p, s in bids),
        yes_asks=tuple(BookLevel(price=p, size=s) for p, s in asks),
        fetched_at=fetched_at or utcnow(),
    )


# A resolved binary market pays 1/0, or 0.5/0.5 when it is resolved 50-50.
FINAL_PAYOUTS = frozenset({ZERO, Decimal("0.5"), ONE})


def resolution_from_wire(raw: dict[str, Any]) -> Resolution | None:
    """A Gamma market -> how it resolved, or None while it is open, proposed, disputed or not yet priced final."""
    condition_id = raw.get("conditionId")
    if not isinstance(condition_id, str) or not condition_id:
        raise WireFormatError(f"polymarket market id={raw.get('id')!r}: required field 'conditionId' is missing")
    where = f"polymarket market {condition_id}"
    if raw.get("closed") is not True:
        return None
    status = raw.get("umaResolutionStatus")
    if status is not None and status != "resolved":  # an oracle proposal can still be disputed
        return None
    labels = [str(o).strip().lower() for o in _json_list(raw.get("outcomes"), "outcomes", where) or []]
    prices = _json_list(raw.get("outcomePrices"), "outcomePrices", where) or []
    if sorted(labels) != ["no", "yes"] or len(prices) != 2:
        raise WireFormatError(f"{where}: not a Yes/No market with two outcome prices")
    yes_payout = parse_decimal(prices[labels.index("yes")], "outcomePrices", where)
    if yes_payout not in FINAL_PAYOUTS:  # closed, but the prices are still a market's, not a payout
        return None
    return Resolution(venue=Venue.POLYMARKET, market_id=condition_id, yes_payout=yes_payout,
                      detail=f"outcomePrices {prices}")


# Outcome tokens have 6 decimals on chain; the Data API sends sizes as JSON floats.
POSITION_SIZE_STEP = Decimal("0.000001")


def _shares(value: Any, where: str) -> Decimal:
    """A float size -> exact shares: Decimal(str(x)) on the 6-decimal grid, so float noise never reads as a
    difference; whole numbers shown without decimals (113, not 113.000000)."""
    size = parse_decimal(value, "size", where)
    if size is None or size < 0:
        raise WireFormatError(f"{where}: field 'size' is missing or negative: {value!r}")
    size = size.quantize(POSITION_SIZE_STEP)
    return plain(size)


def _sign(raw: dict[str, Any], condition_id: str, tokens: Mapping[str, tuple[str, Side]], where: str) -> int:
    """+1 for the YES token, -1 for NO: by the token when we know it, else by the outcome's label, else (a market
    the desk does not trade, e.g. Up/Down) by its index, 0 counting as YES, so it is still reported."""
    known = tokens.get(str(raw.get("asset") or ""))
    if known is not None:
        market_id, side = known
        if market_id != condition_id:
            raise WireFormatError(f"{where}: token {raw.get('asset')} belongs to market {market_id}")
        return 1 if side is Side.YES else -1
    label = str(raw.get("outcome") or "").strip().lower()
    if label in ("yes", "no"):
        return 1 if label == "yes" else -1
    index = raw.get("outcomeIndex")
    if index in (0, 1) and not isinstance(index, bool):
        return 1 if index == 0 else -1
    raise WireFormatError(f"{where}: cannot tell YES from NO (outcome {raw.get('outcome')!r}, "
                          f"outcomeIndex {index!r})")


def positions_from_wire(rows: list[Any], *, user: str,
                        tokens: Mapping[str, tuple[str, Side]] | None = None) -> dict[str, Decimal]:
    """Data API `GET /positions` rows -> {conditionId: shares, + YES / - NO}, open positions only.

    `tokens` maps the token ids we know to (condition id, side). A `redeemable` row is left out: its market
    resolved, and the desk's settlement closes that position itself (a settled but unredeemed winner would
    otherwise stand as a mismatch). A row that cannot be read fails the whole listing: skipping it would
    show as a difference that is not there.
    """
    tokens = tokens or {}
    positions: dict[str, Decimal] = {}
    seen: set[str] = set()
    for number, raw in enumerate(rows, 1):
        where = f"polymarket position row {number}"
        if not isinstance(raw, dict):
            raise WireFormatError(f"{where}: expected an object, got {type(raw).__name__}")
        condition_id, asset = raw.get("conditionId"), raw.get("asset")
        if not isinstance(condition_id, str) or not condition_id or not asset:
            raise WireFormatError(f"{where}: required field 'conditionId' or 'asset' is missing")
        where = f"polymarket position {condition_id} token {asset}"
        wallet = raw.get("proxyWallet")
        if wallet is not None and str(wallet).lower() != user.lower():
            raise WireFormatError(f"{where}: listed for wallet {wallet}, not {user}")
        if str(asset) in seen:  # the listing moved under the pages (offset paging): ask again later
            raise WireFormatError(f"{where}: listed twice")
        seen.add(str(asset))
        if raw.get("redeemable") is True:
            continue
        size = _shares(raw.get("size"), where)
        if size == 0:
            continue
        positions[condition_id] = positions.get(condition_id, ZERO) + _sign(raw, condition_id, tokens, where) * size
    return {market_id: size for market_id, size in positions.items() if size != 0}


# CLOB cursors are base64 offsets: "MA==" is "0" (the first page), "LTE=" is "-1" (there is no next page).
FIRST_CURSOR = "MA=="
END_CURSOR = "LTE="


def open_order_from_wire(raw: Any, *, known: Mapping[str, str], where: str) -> VenueOrder:
    """One order of CLOB `GET /data/orders` (the shape `GET /data/order/{id}` returns) -> a VenueOrder.

    The CLOB carries no client order id: `known` maps the order hashes the desk journalled (lower case) to its
    client order ids; any other order gets "" (the desk did not place it). Sizes are decimal strings.
    """
    if not isinstance(raw, dict):
        raise WireFormatError(f"{where}: an order is not an object: {raw!r}"[:200])
    order_id, market = raw.get("id"), raw.get("market")
    if not isinstance(order_id, str) or not order_id or not isinstance(market, str) or not market:
        raise WireFormatError(f"{where}: an order lacks 'id' or 'market'")
    where = f"polymarket open order {order_id}"
    original = parse_decimal(raw.get("original_size"), "original_size", where)
    if original is None:
        raise WireFormatError(f"{where}: required field 'original_size' is missing")
    matched = parse_decimal(raw.get("size_matched"), "size_matched", where) or ZERO
    # `outcome` names the token ("Yes"/"No"); `side` is BUY/SELL, which says nothing about YES or NO.
    side = str(raw.get("outcome") or "").strip().lower()
    return VenueOrder(venue=Venue.POLYMARKET, order_id=order_id, client_order_id=known.get(order_id.lower(), ""),
                      market_id=market, side=side, remaining=max(original - matched, ZERO))


def open_orders_page_from_wire(raw: Any, *, known: Mapping[str, str], where: str) -> tuple[list[VenueOrder], str]:
    """One page of CLOB `GET /data/orders`: `{"data": [...], "next_cursor": "...", "limit", "count"}` ->
    (its orders, the next cursor; END_CURSOR on the last page). Any other body, or an unreadable order, fails
    the page: an order skipped would be an order not reported."""
    if (not isinstance(raw, dict) or not isinstance(raw.get("data"), list)
            or not isinstance(raw.get("next_cursor"), str) or not raw["next_cursor"]):
        raise WireFormatError(f'{where}: expected {{"data": [...], "next_cursor": "..."}}')
    return [open_order_from_wire(order, known=known, where=where) for order in raw["data"]], raw["next_cursor"]


def price_from_history(raw: Any, at: datetime, since: datetime) -> Decimal | None:
    """CLOB `GET /prices-history` {"history": [{"t": unix seconds, "p": price}]} -> the price of the last point in
    [since, at]; None when there is none."""
    history = raw.get("history") if isinstance(raw, dict) else None
    if not isinstance(history, list):
        raise WireFormatError("polymarket prices-history: expected {\"history\": [{\"t\": ..., \"p\": ...}]}")
    latest: tuple[float, Decimal] | None = None
    for point in history:
        t = point.get("t") if isinstance(point, dict) else None
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            raise WireFormatError(f"polymarket prices-history: a point has no numeric 't': {point!r}")
        price = parse_decimal(point.get("p"), "p", "polymarket prices-history")
        if price is None or not ZERO <= price <= ONE:
            raise WireFormatError(f"polymarket prices-history: a point's 'p' is not a price: {point!r}")
        if since.timestamp() <= t <= at.timestamp() and (latest is None or t >= latest[0]):
            latest = (t, price)
    return latest[1] if latest is not None else None
