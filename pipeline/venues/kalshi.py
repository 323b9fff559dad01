"""Kalshi Trade API v2: a thin async httpx client speaking the December 2026 wire format.

Not the official SDK: the desk needs few endpoints, typed errors, our own rate limits and
the rule that a POST is sent exactly once. Facts this relies on (the pinned spec
pipeline/contracts/kalshi-openapi.yaml v3.31.0, Kalshi's docs, public clients; see README, Kalshi):

- Auth: KALSHI-ACCESS-KEY, KALSHI-ACCESS-TIMESTAMP (ms), KALSHI-ACCESS-SIGNATURE = base64
  RSA-PSS(SHA-256, MGF1 SHA-256, salt = digest length) over f"{ts}{METHOD}{path}", where
  path carries the base URL's prefix (/trade-api/v2/...) and no query string.
- Prices are decimal-dollar strings, counts 2-decimal strings; integer cents are gone.
- Orders go through V2 only (the V1 writes answer 410 since June 2026): POST /portfolio/events/orders on
  the YES book (buy YES = `bid` at p, buy NO = `ask` at 1 - p), answered with a flat CreateOrderV2Response
  (counts and averages, no costs); when something filled, the order is read back for its exact totals.
  Cancels: DELETE /portfolio/events/orders/{id}?market_ticker= (the ticker routes it to the market's shard).
- An Order reports `outcome_side` (`side`/`action` are deprecated), `fill_count_fp`,
  `taker_fill_cost_dollars` + `maker_fill_cost_dollars` (what was paid for the outcome bought, fees
  excluded) and `taker_fees_dollars` + `maker_fees_dollars`: totals, not trades.
- Exits sell what is held: selling YES at p is an `ask` at p and selling NO at q a `bid` at 1 - q ("Kalshi
  treats all orders as bids or asks for Yes contracts. Selling Yes is equivalent to buying No contracts", FIX
  order entry; "buy-no and sell-yes produce 'no'", Order.outcome_side), sent `reduce_only` (capped at the
  position; "rejected unless time_in_force is immediate_or_cancel", CreateOrderV2Request). Kalshi nets a
  position: the NO bought against held YES closes pairs that pay $1 each ("Selling held YES contracts raises
  available balance by the price", settlement_bounds doc, floor 0), so a sell of YES at p receives p a
  contract. The order read back is the leg it bought; the sold side's terms are its mirror (order_from_wire).
- GET /portfolio/orders has no client_order_id filter: we filter by ticker and match the
  id ourselves. Canceled/executed orders older than the historical cutoff move to
  GET /historical/orders, so a look-up asks there too before answering "absent".
- Fees come from the series (GET /series/{s}, GET /series/fee_changes) and event overrides
  (GET /events/fee_changes); see kalshi_wire.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import FeesConfig, KalshiConfig, Settings
from ..errors import (ConfigError, FeesUnknownError, GiveUpError, NotFoundError, OutcomeUnknownError, RetryableError, VenueContractError,
                      WireFormatError)
from ..models import (CENT, ONE, ZERO, FeeModel, Fill, Market, Order, OrderAction, OrderBook, OrderRequest,
                      OrderResult, OrderStatus, Rejection, Resolution, Side, Venue, VenueOrder, VenueScanStats, plain)
from . import kalshi_wire
from .http import RateLimiter, RetryPolicy, read_json, write_json
from .wire import parse_decimal, parse_time

PAGE_LIMIT = 1000  # the most GET /markets and GET /portfolio/orders hand out per page
ORDERS_V2 = "/portfolio/events/orders"
BOOKS_PER_REQUEST = 100  # GET /markets/orderbooks takes 1..100 tickers
# Codes Kalshi answers orders with that this desk knows the meaning of (docs.kalshi.com order errors and public
# clients' journals). Any other on a 4xx stops orders to Kalshi until an operator has looked.
KNOWN_ORDER_CODES = frozenset({
    "bad_request", "invalid_order", "invalid_parameters", "missing_parameters", "invalid_price",
    "insufficient_balance", "market_closed", "market_not_found", "not_found", "order_already_exists",
    "trading_is_paused", "exchange_closed", "unauthorized", "forbidden",
})
CONTRACT_STATUSES = (400, 404, 409, 422)
PRICE_STEP = Decimal("0.0001")  # we send limit prices as 4-decimal dollar strings
SALE_TOLERANCE = Decimal("0.0001")  # a sale's average received may sit this far under its limit (cost rounding)
KEY_VARS = "KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH (or KALSHI_PRIVATE_KEY)"
# Price history: hourly candlesticks (period_interval takes 1, 60 or 1440 minutes) over the day before the moment.
CANDLE_MINUTES = 60
HISTORY_WINDOW = timedelta(days=1)

log = logging.getLogger(__name__)


# -- signing ---------------------------------------------------------------------------------

def sign(private_key: rsa.RSAPrivateKey, timestamp_ms: str, method: str, path: str) -> str:
    """The KALSHI-ACCESS-SIGNATURE value. `path` must not carry a query string."""
    message = f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()
    signature = private_key.sign(
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return base64.b64encode(signature).decode("ascii")


def auth_headers(key_id: str, private_key: rsa.RSAPrivateKey, method: str, path: str,
                 now: float) -> dict[str, str]:
    """The three auth headers for one request; `now` is Unix seconds."""
    timestamp = str(int(now * 1000))
    return {"KALSHI-ACCESS-KEY": key_id, "KALSHI-ACCESS-TIMESTAMP": timestamp,
            "KALSHI-ACCESS-SIGNATURE": sign(private_key, timestamp, method, path)}


def load_private_key(settings: Settings) -> rsa.RSAPrivateKey | None:
    """The RSA key named by the environment, or None when none is configured.

    Errors name the variable and never echo its value: the path says where the key lives
    (the desk redacts it too) and the inline value is the key.
    """
    env = settings.env
    path, inline = env.KALSHI_PRIVATE_KEY_PATH, env.KALSHI_PRIVATE_KEY
    if path and inline is not None and inline.get_secret_value():
        raise ConfigError("config error: KALSHI_PRIVATE_KEY_PATH and KALSHI_PRIVATE_KEY are both set; keep one")
    if path:
        name = "KALSHI_PRIVATE_KEY_PATH"
        problem = ""
        try:
            data = Path(path).expanduser().read_bytes()  # once, at construction: never on the event loop's hot path
        except OSError as e:
            # Not chained: the OSError's text carries the path, which the desk treats as a secret.
            problem = f"{type(e).__name__}: {e.strerror or 'unreadable'}"
        if problem:
            raise ConfigError(f"config error: {name}: the key file cannot be read ({problem}); point it at the PEM "
                              "private key Kalshi gave you with the API key")
    elif inline is not None and inline.get_secret_value():
        name = "KALSHI_PRIVATE_KEY"
        text = inline.get_secret_value()
        if "\\n" in text and "\n" not in text:  # one-line env files often carry escaped newlines
            text = text.replace("\\n", "\n")
        data = text.encode()
    else:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:  # cryptography's messages carry no key bytes, but we print none anyway
        raise ConfigError(f"config error: {name}: not an unencrypted PEM private key ({type(e).__name__}); use the "
                          "RSA key file Kalshi generated with the API key") from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"config error: {name}: the key is not an RSA key; Kalshi signs with RSA-PSS")
    return key


# -- pure wire mapping -----------------------------------------------------------------------

SELF_TRADE_PREVENTION = "taker_at_cross"  # never trade with our own resting order: the new one stops there


def order_body(request: OrderRequest, market: Market) -> dict[str, Any]:
    """OrderRequest -> a CreateOrderV2Request body; refuses what Kalshi cannot take before it is sent.

    The V2 book is the YES leg: buying YES at p is a `bid` at p, buying NO at p an `ask` at 1 - p. Selling what
    is held is the other book side: selling YES at p is an `ask` at p, selling NO at p a `bid` at 1 - p, sent
    `reduce_only` so it can only shrink the position (never open the other side), which Kalshi takes only
    immediate-or-cancel: a sell with any other time in force is refused here.
    """
    cid = request.client_order_id
    if request.venue is not Venue.KALSHI or market.venue is not Venue.KALSHI or request.market_id != market.id:
        raise GiveUpError(f"kalshi: order {cid} is for {request.venue.value} {request.market_id}, not kalshi "
                          f"{market.id}; nothing was sent")
    if request.contracts <= 0 or request.contracts % market.contract_step != 0:
        unit = "whole contracts" if market.contract_step == ONE else f"steps of {market.contract_step}"
        raise GiveUpError(f"kalshi: order {cid}: {request.contracts} contracts is not in {unit}; nothing was sent")
    price = request.limit_price
    if not ZERO < price < ONE or price != price.quantize(PRICE_STEP):
        raise GiveUpError(f"kalshi: order {cid}: limit price {price} is not a price Kalshi takes "
                          "(between 0 and 1, at most 4 decimals); nothing was sent")
    selling = request.action is OrderAction.SELL
    if selling and request.time_in_force != "immediate_or_cancel":
        raise GiveUpError(f"kalshi: order {cid}: a sell goes reduce-only, which Kalshi takes immediate-or-cancel "
                          f"only, not {request.time_in_force}; nothing was sent")
    yes_price = price if request.side is Side.YES else ONE - price
    bid = (request.side is Side.YES) != selling  # buy YES or sell NO: a bid; buy NO or sell YES: an ask
    body = {
        "ticker": request.market_id,
        "client_order_id": cid,
        "side": "bid" if bid else "ask",
        "count": f"{request.contracts.quantize(CENT)}",
        "price": f"{yes_price.quantize(PRICE_STEP)}",
        "time_in_force": request.time_in_force,
        "self_trade_prevention_type": SELF_TRADE_PREVENTION,
    }
    if selling:
        body["reduce_only"] = True
    return body


@dataclass(frozen=True)
class CreatedOrder:
    """A CreateOrderV2Response: what the matching engine did at once. Counts only; costs and fees need a read
    (its average_fee_paid is per contract, so it is not read)."""

    order_id: str
    client_order_id: str
    filled: Decimal
    remaining: Decimal
    average_price: Decimal | None  # the YES book's price (assumed: V2 quotes everything from the YES side); shown only


def _order_id(raw: Any) -> str:
    """The `order_id` every order answer carries; WireFormatError when it is not there to read."""
    if not isinstance(raw, dict):
        raise WireFormatError("kalshi order: the answer is not an object")
    order_id = raw.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise WireFormatError("kalshi order: required field 'order_id' is missing")
    return order_id


def created_from_wire(raw: Any) -> CreatedOrder:
    order_id = _order_id(raw)
    where = f"kalshi order {order_id}"
    filled = parse_decimal(raw.get("fill_count"), "fill_count", where)
    remaining = parse_decimal(raw.get("remaining_count"), "remaining_count", where)
    if filled is None or remaining is None or filled < 0 or remaining < 0:
        raise WireFormatError(f"{where}: 'fill_count' or 'remaining_count' is missing or negative")
    return CreatedOrder(order_id=order_id, client_order_id=str(raw.get("client_order_id") or ""), filled=filled,
                        remaining=remaining,
                        average_price=parse_decimal(raw.get("average_fill_price"), "average_fill_price", where))


def _number(raw: dict[str, Any], field: str, where: str) -> Decimal:
    """A decimal field that may be absent (absent reads as 0)."""
    return parse_decimal(raw.get(field), field, where) or ZERO


def fills_from_totals(count: Decimal, cost: Decimal, fee: Decimal) -> tuple[Fill, ...]:
    """Kalshi's order totals (count, cost, fees) -> Fills whose cost adds up to `cost` exactly.

    One Fill at the average price when cost / count terminates. When it does not (47.72 / 113),
    count * average misses the venue's cost by ~1e-26 and the store would carry that into the
    position, so we report two Fills one price step apart (the floored average and one step
    above) that sum to the venue's cost to the last digit. Fees ride on the first.
    """
    average = cost / count
    if average * count == cost:
        return (Fill(contracts=plain(count), price=average, fee=fee),)
    step = ONE.scaleb(min(cost.as_tuple().exponent, -4))  # type: ignore[arg-type]
    low = average.quantize(step, rounding=ROUND_FLOOR)
    # Contracts one step up: with counts in hundredths and cost to `step`, (cost - low * count) / step is a whole
    # number of hundredths of a contract, between 0 and count.
    above = (cost - low * count) / step
    if above % CENT or not ZERO < above < count:  # not a split in hundredths: keep the venue's total exactly
        return (Fill(contracts=plain(count), price=average, fee=fee),)
    return (Fill(contracts=plain(count - above), price=low, fee=fee),
            Fill(contracts=plain(above), price=low + step, fee=ZERO))


def outcome_side(raw: dict[str, Any]) -> str:
    """"yes" or "no": the outcome an order buys. `outcome_side` (and `book_side`) since 2026; the deprecated
    `side` only when neither is there (an older server), since a V2 `ask` comes back as side "yes"."""
    side = raw.get("outcome_side")
    if side in ("yes", "no"):
        return str(side)
    book = raw.get("book_side")
    if book in ("bid", "ask"):
        return "yes" if book == "bid" else "no"
    legacy = raw.get("side")
    if legacy in ("yes", "no") and raw.get("action", "buy") == "buy":
        return str(legacy)
    raise WireFormatError(f"kalshi order {raw.get('order_id')}: neither 'outcome_side' nor 'book_side' says which "
                          "outcome it buys")


def order_from_wire(raw: Any, action: OrderAction = OrderAction.BUY) -> OrderResult:
    """One `Order` object (GetOrderResponse, GetOrdersResponse) -> OrderResult, in the traded side's terms.

    The wire cannot say which way an order went (selling YES and buying NO are both an `ask` positioned for
    "no"), so `action` does. A buy is read as it comes: the outcome bought, its price and cost. A sell of side S is
    positioned for S's other side, and its totals are that leg's: it bought S.other at 1 - p to close held S, and
    each closed pair paid $1 back, so per contract it received p = 1 - (the leg's price), and in all
    `count - cost of the leg` (assumed: the cost fields are in the positioned outcome's terms for a sell as for
    a buy; the fees are the order's either way).
    """
    order_id = _order_id(raw)
    where = f"kalshi order {order_id}"
    selling = action is OrderAction.SELL
    status, positioned = raw.get("status"), outcome_side(raw)
    side = ("no" if positioned == "yes" else "yes") if selling else positioned  # the side bought or sold
    filled = parse_decimal(raw.get("fill_count_fp"), "fill_count_fp", where)
    if filled is None or filled < 0:
        raise WireFormatError(f"{where}: required field 'fill_count_fp' is missing or negative")
    initial = parse_decimal(raw.get("initial_count_fp"), "initial_count_fp", where)
    remaining = parse_decimal(raw.get("remaining_count_fp"), "remaining_count_fp", where) or ZERO
    limit = parse_decimal(raw.get(f"{side}_price_dollars"), f"{side}_price_dollars", where)
    cost = _number(raw, "taker_fill_cost_dollars", where) + _number(raw, "maker_fill_cost_dollars", where)
    fees = _number(raw, "taker_fees_dollars", where) + _number(raw, "maker_fees_dollars", where)

    fills: tuple[Fill, ...] = ()
    if filled > 0:
        if not ZERO <= cost <= filled:
            raise WireFormatError(f"{where}: fill cost {cost} for {filled} contracts is not a price")
        if selling and limit is not None and (filled - cost) < (limit - SALE_TOLERANCE) * filled:
            # Read as documented-by-assumption, this sale received less than its limit allows: the cost fields mean
            # something else than the desk takes them to. Its P&L would be booked wrong, so orders stop instead.
            raise VenueContractError("kalshi", f"{where}: a sale of {plain(filled)} at {limit} or better reads as "
                                               f"receiving {plain(filled - cost)}, below its limit: the order's cost "
                                               "fields do not mean what this desk assumes for sales",
                                     code="sale_below_limit")
        fills = fills_from_totals(filled, filled - cost if selling else cost, fees)
    of = f" of {plain(initial)}" if initial is not None else ""
    below = f" at or {'above' if selling else 'below'} {limit}" if limit is not None else ""
    partial = f"{plain(filled)}{of} filled{below}; the rest was cancelled"

    if status == "executed":  # fewer than asked only if the order was decreased first
        complete = initial is None or filled >= initial
        result_status, reason = (OrderStatus.FILLED, "") if complete else (OrderStatus.PARTIALLY_FILLED, partial)
    elif status == "canceled":
        result_status, reason = ((OrderStatus.PARTIALLY_FILLED, partial) if filled > 0
                                 else (OrderStatus.CANCELED, f"no fill{below}; cancelled"))
    elif status == "resting":
        at = f" at {limit}" if limit is not None else ""
        result_status, reason = OrderStatus.RESTING, f"{plain(remaining)} resting{at}"
    else:  # a state this desk does not know: say so, and let reconciliation look again
        result_status, reason = OrderStatus.UNKNOWN, f"kalshi reports status {status!r}, which this desk does not know"
    return OrderResult(client_order_id=str(raw.get("client_order_id") or ""), venue_order_id=order_id,
                       status=result_status, fills=fills, reason=reason)


def venue_order_from_wire(raw: Any) -> VenueOrder:
    if not isinstance(raw, dict) or not raw.get("order_id") or not raw.get("ticker"):
        raise WireFormatError("kalshi order: required fields 'order_id' and 'ticker' are missing")
    try:
        side = outcome_side(raw)
    except WireFormatError:
        side = ""  # still listed: an order nobody can read the direction of is still an order that is there
    return VenueOrder(venue=Venue.KALSHI, order_id=str(raw["order_id"]), client_order_id=str(raw.get("client_order_id")
                      or ""), market_id=str(raw["ticker"]), side=side,
                      remaining=parse_decimal(raw.get("remaining_count_fp"), "remaining_count_fp",
                                              f"kalshi order {raw['order_id']}") or ZERO)


@dataclass(frozen=True)
class KalshiPosition:
    """One row of GET /portfolio/positions `market_positions`, in dollars and contracts.

    `position` is signed as Kalshi reports it: positive = YES contracts, negative = NO.
    """

    ticker: str
    position: Decimal
    exposure: Decimal  # market_exposure_dollars: cost of the position held
    realized_pnl: Decimal
    fees_paid: Decimal
    total_traded: Decimal


@dataclass(frozen=True)
class KalshiSettlement:
    """One row of GET /portfolio/settlements, in dollars (`revenue` arrives in cents)."""

    ticker: str
    event_ticker: str
    market_result: str
    yes_count: Decimal
    no_count: Decimal
    yes_cost: Decimal
    no_cost: Decimal
    revenue: Decimal
    fees: Decimal
    settled_time: datetime


def position_from_wire(raw: dict[str, Any]) -> KalshiPosition:
    ticker = raw.get("ticker") if isinstance(raw, dict) else None
    if not isinstance(ticker, str) or not ticker:
        raise WireFormatError("kalshi position: required field 'ticker' is missing")
    where = f"kalshi position {ticker}"
    return KalshiPosition(ticker=ticker, position=_number(raw, "position_fp", where),
                          exposure=_number(raw, "market_exposure_dollars", where),
                          realized_pnl=_number(raw, "realized_pnl_dollars", where),
                          fees_paid=_number(raw, "fees_paid_dollars", where),
                          total_traded=_number(raw, "total_traded_dollars", where))


def settlement_from_wire(raw: dict[str, Any]) -> KalshiSettlement:
    ticker = raw.get("ticker") if isinstance(raw, dict) else None
    if not isinstance(ticker, str) or not ticker:
        raise WireFormatError("kalshi settlement: required field 'ticker' is missing")
    where = f"kalshi settlement {ticker}"
    return KalshiSettlement(
        ticker=ticker, event_ticker=str(raw.get("event_ticker") or ""), market_result=str(raw.get("market_result")),
        yes_count=_number(raw, "yes_count_fp", where), no_count=_number(raw, "no_count_fp", where),
        yes_cost=_number(raw, "yes_total_cost_dollars", where), no_cost=_number(raw, "no_total_cost_dollars", where),
        revenue=_number(raw, "revenue", where) / 100, fees=_number(raw, "fee_cost", where),
        settled_time=parse_time(raw.get("settled_time"), "settled_time", where))


# -- errors ----------------------------------------------------------------------------------

def _error_parts(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from Kalshi's error shapes: {"error":{code,message,...}}, {"error":"..."}
    (429) and, for bodies it cannot parse, {code,message,details} at the top level."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        body = error
    elif isinstance(error, str):
        return "", error
    code, message = body.get("code"), body.get("message")
    details = body.get("details")
    text = str(message or "")
    if details and isinstance(details, str):
        text = f"{text} ({details})" if text else details
    return str(code or ""), text


# -- the client ------------------------------------------------------------------------------

def _scheduled_fee_model(market: Market, now: datetime, read: dict[str, Any]) -> FeeModel:
    """Price a market from the schedules `with_fees` read (a read that failed raises its error here)."""
    def loaded(key: str) -> Any:
        value = read[key]
        if isinstance(value, BaseException):
            raise value
        return value
    series = kalshi_wire.series_of(market.event or market.id)
    return kalshi_wire.scheduled_fee_model(series, loaded(f"series:{series}"), loaded("series_changes"),
                                           loaded(f"event:{market.event}") if market.event else [], now)


class KalshiClient:
    """VenueClient for Kalshi, plus the portfolio calls the desk's reconciliation needs."""

    venue = Venue.KALSHI

    def __init__(self, base_url: str, key_id: str | None, private_key: rsa.RSAPrivateKey | None, fees: FeesConfig,
                 config: KalshiConfig, *, retry: RetryPolicy = RetryPolicy(),
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if (key_id is None) != (private_key is None):
            raise ConfigError(f"config error: Kalshi needs the key id and the private key together; set {KEY_VARS}")
        self.base_url = base_url.rstrip("/")
        self.fees = fees
        self.config = config
        self.retry = retry
        self._key_id = key_id
        self._key = private_key
        self._clock = clock  # Unix seconds; tests shift it to play a machine with a wrong clock
        self._host = urlsplit(self.base_url).netloc or self.base_url
        # Kalshi meters reads and writes separately; one bucket each keeps a scan from starving an order.
        self._reads = RateLimiter(float(config.reads_per_second))
        self._writes = RateLimiter(float(config.writes_per_second))
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=float(config.timeout_seconds),
                                       transport=transport, headers={"Accept": "application/json"})
        self._fee_cache: dict[str, tuple[float, Any]] = {}  # series, event and change listings, with when read
        self._fee_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> KalshiClient:
        env = settings.env
        key_id = env.KALSHI_API_KEY_ID.get_secret_value() if env.KALSHI_API_KEY_ID is not None else ""
        has_key = bool(env.KALSHI_PRIVATE_KEY_PATH) or bool(
            env.KALSHI_PRIVATE_KEY is not None and env.KALSHI_PRIVATE_KEY.get_secret_value())
        if has_key and not key_id:
            raise ConfigError("config error: KALSHI_API_KEY_ID: not set, but a private key is; set the key id Kalshi "
                              "shows next to the key")
        if key_id and not has_key:
            raise ConfigError("config error: KALSHI_PRIVATE_KEY_PATH: not set, but KALSHI_API_KEY_ID is; point it at "
                              "the PEM private key (or put the key itself in KALSHI_PRIVATE_KEY)")
        # Neither set: a read-only client; market data is public.
        return cls(env.KALSHI_API_URL, key_id or None, load_private_key(settings), settings.fees, settings.kalshi)

    @property
    def has_keys(self) -> bool:
        return self._key is not None

    def derived_secrets(self) -> tuple[str, ...]:
        return ()  # Kalshi signs with the configured key itself

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 body: dict[str, Any] | None = None) -> httpx.Request:
        """Build and sign one attempt; every retry is signed afresh with a new timestamp."""
        request = self._http.build_request(method, path, params=params, json=body)
        if self._key_id is not None and self._key is not None:  # sign whenever we can, even public reads
            signed_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
            request.headers.update(auth_headers(self._key_id, self._key, method, signed_path, self._clock()))
        return request

    def _translator(self, where: str, *, orders: bool = False) -> Callable[[httpx.Response], Exception]:
        """Kalshi's error bodies -> the desk's typed errors. On the order path (`orders`) a 410 or a code the
        desk has never seen is a VenueContractError: the exchange has moved on from what this desk speaks."""
        def translate(response: httpx.Response) -> Exception:
            code, message = _error_parts(response)
            status = response.status_code
            head = f"kalshi: {code}" if code else f"kalshi: HTTP {status}"
            message = self.scrub(message)  # before cutting: a key id cut in half would no longer be found
            text = f"{head}: {message[:200]}" if message else head
            text = f"{text} ({where})"
            if status in (401, 403):
                return GiveUpError(
                    f"{text}. Check that KALSHI_API_KEY_ID and the private key (KALSHI_PRIVATE_KEY_PATH or "
                    f"KALSHI_PRIVATE_KEY) are the pair Kalshi issued; demo and production keys do not cross "
                    f"environments (this desk talks to {self._host}); and check the machine clock is synchronised "
                    "(Kalshi refuses requests whose timestamp is off by more than about 30 s)")
            if status == 410:
                return VenueContractError("kalshi", f"{text}. Kalshi has retired an endpoint this desk uses, so "
                                          "this version of oddsdesk cannot trade there", code=code or "gone")
            unknown = None
            if orders and status in CONTRACT_STATUSES and code not in KNOWN_ORDER_CODES:
                unknown = VenueContractError("kalshi", f"{text}. Kalshi answered an order with an error code this "
                                             "desk has never seen, so it cannot tell what happened to orders "
                                             "like it", code=code or f"http_{status}")
            # A conflict may mean the order is there already (a duplicate client order id): it is looked up before
            # anything is concluded, whatever the code, unless Kalshi says plainly why it refused.
            if orders and (code == "order_already_exists" or (status == 409 and unknown is not None)):
                return _AlreadyExists(text, unknown)
            if unknown is not None:
                return unknown
            if status == 404:
                return NotFoundError(text)
            return GiveUpError(text)
        return translate

    def scrub(self, text: str) -> str:
        """A server that echoes our key id must not get it into our logs or messages."""
        return text.replace(self._key_id, "<key id>") if self._key_id else text

    async def raw_get(self, path: str, params: Any = None) -> httpx.Response:
        """One signed GET, answered as it came (for `oddsdesk check --venues`: a 410 is a finding, not an error)."""
        await self._reads.acquire()
        return await self._http.send(self._request("GET", path, params=params))

    def _require_keys(self, what: str) -> None:
        if self._key is None:
            raise GiveUpError(f"kalshi: {what} needs API keys; set {KEY_VARS}")

    async def _get(self, path: str, params: dict[str, Any] | None, where: str,
                   stats: VenueScanStats | None = None) -> Any:
        data = await read_json(lambda: self._http.send(self._request("GET", path, params=params)), where=where,
                               translate=self._translator(where), limiter=self._reads, policy=self.retry, stats=stats)
        if not isinstance(data, dict):
            raise WireFormatError(f"kalshi: {where}: the answer is not a JSON object")
        return data

    async def _write(self, method: str, path: str, where: str, body: dict[str, Any] | None = None, *,
                     params: dict[str, Any] | None = None) -> Any:
        """Order-path writes, sent once; their errors are judged against the codes this desk knows."""
        return await write_json(lambda: self._http.send(self._request(method, path, params=params, body=body)),
                                where=where, translate=self._translator(where, orders=True), limiter=self._writes)

    async def _paged(self, path: str, params: dict[str, Any], field: str, where: str,
                     stats: VenueScanStats | None = None) -> AsyncIterator[list[Any]]:
        """Yield each page's `field` list, following `cursor` until it is empty."""
        cursor = ""
        seen: set[str] = set()
        while True:
            page = await self._get(path, {**params, "cursor": cursor} if cursor else params, where, stats)
            if stats is not None:
                stats.pages += 1
            items = page.get(field)
            if items is None:  # Go encodes an empty slice as null
                items = []
            if not isinstance(items, list):
                raise WireFormatError(f"kalshi: {where}: field {field!r} is not a list")
            yield items
            cursor = page.get("cursor") or ""
            if not cursor:
                return
            if cursor in seen:  # a server bug must not become an endless scan
                raise WireFormatError(f"kalshi: {where}: the page cursor repeated; stopped paging")
            seen.add(cursor)

    # -- VenueClient -------------------------------------------------------------------------

    async def list_markets(self, stats: VenueScanStats | None = None) -> list[Market]:
        stats = stats if stats is not None else VenueScanStats()
        params: dict[str, Any] = {"status": "open", "limit": PAGE_LIMIT}
        if not self.config.include_multivariate:
            params["mve_filter"] = "exclude"
        markets: list[Market] = []
        async for page in self._paged("/markets", params, "markets", "GET /markets", stats):
            for index, raw in enumerate(page):
                if index % 100 == 99:  # a 1,000-market page takes 25-45 ms to read: let Slack acks through
                    await asyncio.sleep(0)
                market = self._market(raw)
                if market is None:
                    stats.skipped += 1
                else:
                    markets.append(market)
                    stats.markets += 1
        return markets

    def _market(self, raw: Any) -> Market | None:
        """One listed object -> Market, or None for what the desk cannot trade or read."""
        if not isinstance(raw, dict):
            return None
        if raw.get("market_type", "binary") != "binary":  # scalar markets do not pay 0/1
            return None
        if not self.config.include_multivariate and raw.get("mve_collection_ticker"):
            return None  # the server filters these; this only guards against it not doing so
        try:
            return kalshi_wire.market_from_wire(raw, fractional=self.config.fractional_contracts)
        except WireFormatError:
            return None

    async def get_order_book(self, market: Market) -> OrderBook:
        path = f"/markets/{quote(market.id, safe='')}/orderbook"
        data = await self._get(path, {"depth": self.config.orderbook_depth}, f"orderbook {market.id}")
        return kalshi_wire.orderbook_from_wire(market.id, data)

    async def get_order_books(self, markets: Sequence[Market]) -> dict[str, OrderBook | Exception]:
        """Many books in few requests: GET /markets/orderbooks takes up to 100 tickers, repeated
        (`tickers=A&tickers=B`; a comma-joined value is read as one ticker). A ticker the answer leaves out,
        or a batch that fails, maps to the error instead of a book."""
        tickers = list(dict.fromkeys(m.id for m in markets))
        books: dict[str, OrderBook | Exception] = {}

        async def batch(chunk: list[str]) -> None:
            where = f"orderbooks of {len(chunk)} markets"
            try:
                data = await self._get("/markets/orderbooks", [("tickers", t) for t in chunk], where)
                served = kalshi_wire.orderbooks_from_wire(data)
            except Exception as e:  # noqa: BLE001 - every market of the batch is told why it has no book
                books.update((t, e) for t in chunk)
                return
            for ticker in chunk:
                books[ticker] = served.get(ticker) or WireFormatError(f"kalshi: {where}: no book for {ticker}")

        await asyncio.gather(*(batch(tickers[i:i + BOOKS_PER_REQUEST])
                               for i in range(0, len(tickers), BOOKS_PER_REQUEST)))
        return books

    # -- fees --------------------------------------------------------------------------------

    async def with_fees(self, markets: Sequence[Market], now: datetime, *,
                        fresh: bool = False) -> tuple[list[Market], list[Rejection]]:
        """The markets with the fee schedule in force at `now` attached (series, its scheduled changes, the
        event's override, a fee waiver, or the config's override); a market whose schedule cannot be read or
        priced is rejected with the reason: nothing is traded at a guessed fee. `fresh` reads past the cache
        (an approval's re-check: a change made since the cycle must be seen, and a failed read is a refusal,
        never the older schedule)."""
        fixed = [kalshi_wire.fixed_fee_model(m, now, self.fees.kalshi_series_rates) for m in markets]
        scheduled = [m for m, model in zip(markets, fixed) if model is None]
        series = {kalshi_wire.series_of(m.event or m.id) for m in scheduled}
        events = {m.event for m in scheduled if m.event}
        # Each schedule read once, all at once: one failing is its own markets' rejection, not every market's.
        loads: dict[str, Awaitable[Any]] = {
            **({"series_changes": self._series_changes(fresh)} if scheduled else {}),
            **{f"series:{s}": self._series_fees(s, fresh) for s in series},
            **{f"event:{e}": self._event_changes(e, fresh) for e in events}}
        read = dict(zip(loads, await asyncio.gather(*loads.values(), return_exceptions=True)))
        priced: list[Market] = []
        rejected: list[Rejection] = []
        for market, model in zip(markets, fixed):
            try:
                if model is None:
                    model = _scheduled_fee_model(market, now, read)
                priced.append(market.model_copy(update={"fee_model": model}))
            except (FeesUnknownError, RetryableError, GiveUpError) as e:
                reason = "fees_unknown" if isinstance(e, FeesUnknownError) else "fees_unavailable"
                rejected.append(Rejection(market_key=market.key, reason=reason, detail=str(e)))
        return priced, rejected

    def _fresh(self, entry: tuple[float, Any] | None) -> bool:
        return entry is not None and time.monotonic() - entry[0] < self.fees.cache_minutes * 60

    async def _cached(self, key: str, load: Callable[[], Awaitable[Any]], refresh: bool = False) -> Any:
        """One load per key at a time, reused for fees.cache_minutes (unless `refresh`); failures are not kept."""
        started = time.monotonic()
        entry = self._fee_cache.get(key)
        if self._fresh(entry) and not refresh:
            return entry[1]  # type: ignore[index]
        lock = self._fee_locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._fee_cache.get(key)
            # another caller's read that began after this call did is as fresh as this one's would be
            if self._fresh(entry) and (not refresh or entry[0] >= started):  # type: ignore[index]
                return entry[1]  # type: ignore[index]
            value = await load()
            self._fee_cache[key] = (time.monotonic(), value)
            return value

    async def _series_fees(self, series: str, refresh: bool = False) -> kalshi_wire.FeeSetting:
        async def load() -> kalshi_wire.FeeSetting:
            data = await self._get(f"/series/{quote(series, safe='')}", None, f"series {series}")
            return kalshi_wire.series_fees_from_wire(data)
        return await self._cached(f"series:{series}", load, refresh)

    async def _series_changes(self, refresh: bool = False) -> list[kalshi_wire.FeeSetting]:
        """Every scheduled series fee change, in one request."""
        async def load() -> list[kalshi_wire.FeeSetting]:
            data = await self._get("/series/fee_changes", None, "series fee changes")
            return kalshi_wire.series_fee_changes_from_wire(data)
        return await self._cached("series_changes", load, refresh)

    async def _event_changes(self, event: str, refresh: bool = False) -> list[kalshi_wire.FeeSetting]:
        """An event's fee overrides, past and scheduled (every page)."""
        async def load() -> list[kalshi_wire.FeeSetting]:
            return [change async for rows in self._paged("/events/fee_changes", {"event_ticker": event, "limit": 100},
                                                         "event_fee_changes", f"event {event} fee changes")
                    for change in kalshi_wire.event_fee_change_rows(rows)]
        return await self._cached(f"event:{event}", load, refresh)

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        """POST the V2 order once. 409 `order_already_exists` means it was taken before: look it up, never
        send again. When something filled, the order is read back for the exact cost and fees (the create
        answer carries counts and averages only); if that read fails the outcome is unknown until looked up.
        A sell's result is in the sold side's terms (order_from_wire)."""
        self._require_keys("placing an order")
        body = order_body(request, market)
        cid = request.client_order_id
        where = f"order {cid} on {request.market_id}"
        selling = request.action is OrderAction.SELL
        try:
            data = await self._write("POST", ORDERS_V2, where, body)
        except _AlreadyExists as e:
            return await self._existing(cid, market, e, request.action)
        try:
            created = created_from_wire(data)
        except WireFormatError as e:  # 201 means it was taken: an unreadable answer is not a refusal
            raise OutcomeUnknownError(f"kalshi: order {cid} was accepted but its answer could not be read ({e}); "
                                      "look it up by client order id") from e
        if created.client_order_id and created.client_order_id != cid:
            raise OutcomeUnknownError(f"kalshi: order {cid}: the answer names client order id "
                                      f"{created.client_order_id!r}; look it up by client order id")
        if created.filled == 0:
            limit = request.limit_price
            if created.remaining > 0:
                return OrderResult(client_order_id=cid, venue_order_id=created.order_id, status=OrderStatus.RESTING,
                                   reason=f"{plain(created.remaining)} resting at {limit}")
            bound = "at or above" if selling else "at or below"
            return OrderResult(client_order_id=cid, venue_order_id=created.order_id, status=OrderStatus.CANCELED,
                               reason=f"no fill {bound} {limit}; cancelled")
        try:
            result = await self.get_order(created.order_id, request.action)
        except (RetryableError, GiveUpError) as e:
            average = f" at an average of {created.average_price} on the YES book" if created.average_price else ""
            raise OutcomeUnknownError(
                f"kalshi took order {cid} ({plain(created.filled)} filled{average}, {plain(created.remaining)} "
                f"resting) but reading back its cost failed ({e}); it is looked up, never sent again") from e
        if result.filled < created.filled:
            raise OutcomeUnknownError(f"kalshi: order {cid}: the order read back shows {result.filled} filled, "
                                      f"fewer than the {created.filled} the exchange reported; looked up again later")
        if selling and result.status is OrderStatus.FILLED and result.filled < request.contracts:
            # reduce-only caps the count at the position held; however Kalshi then shows the order, the desk asked
            # for more than it got
            return result.model_copy(update={
                "status": OrderStatus.PARTIALLY_FILLED,
                "reason": f"{plain(result.filled)} of {plain(request.contracts)} sold at or above "
                          f"{request.limit_price}; reduce-only capped the rest at the position held"})
        return result

    async def _existing(self, cid: str, market: Market, conflict: _AlreadyExists,
                        action: OrderAction = OrderAction.BUY) -> OrderResult:
        """Kalshi answered the create with a conflict: the order may have been taken before. Never sent again;
        what it is comes from a look-up, and a look-up that fails leaves the outcome unknown (reconciliation asks
        again), never "refused"."""
        try:
            found = await self.find_order(cid, market, action=action)
        except (RetryableError, GiveUpError) as e:
            raise OutcomeUnknownError(f"kalshi: order {cid} may exist already ({conflict}); looking it up failed "
                                      f"({e}); it is looked up again later, never sent again") from (
                                          conflict.unknown or e)
        if found is not None:
            return found
        # listings can lag the matching engine: the reconciler looks again later
        raise OutcomeUnknownError(f"kalshi: order {cid} may exist already ({conflict}) but is not listed yet; it is "
                                  "looked up, never sent again") from (conflict.unknown or conflict)

    async def find_order(self, client_order_id: str, market: Market, *,
                         action: OrderAction = OrderAction.BUY) -> OrderResult | None:
        """By client order id among the market's orders, recent then archived; in `action`'s terms (the wire
        shows the book side, which a buy of NO and a sell of YES share)."""
        self._require_keys("looking an order up")
        params = {"ticker": market.id, "limit": PAGE_LIMIT}
        # Recent orders first; canceled/executed ones past the historical cutoff live in the archive.
        for path in ("/portfolio/orders", "/historical/orders"):
            async with aclosing(self._paged(path, params, "orders", f"GET {path} ticker={market.id}")) as pages:
                async for page in pages:
                    for raw in page:
                        if isinstance(raw, dict) and raw.get("client_order_id") == client_order_id:
                            return order_from_wire(raw, action)
        return None

    async def open_orders(self) -> list[VenueOrder] | None:
        """Every order resting on the account, whoever placed it; None without keys."""
        if not self.has_keys:
            return None
        listed: list[VenueOrder] = []
        params = {"status": "resting", "limit": PAGE_LIMIT}
        async for page in self._paged("/portfolio/orders", params, "orders", "GET /portfolio/orders status=resting"):
            listed.extend(venue_order_from_wire(raw) for raw in page)
        return listed

    # -- portfolio ---------------------------------------------------------------------------

    async def get_order(self, order_id: str, action: OrderAction = OrderAction.BUY) -> OrderResult:
        self._require_keys("reading an order")
        data = await self._get(f"/portfolio/orders/{quote(order_id, safe='')}", None, f"order {order_id}")
        return order_from_wire(data.get("order"), action)

    async def cancel_order(self, order_id: str, ticker: str, action: OrderAction = OrderAction.BUY) -> OrderResult:
        """Cancel what rests of an order (V2; the ticker routes it to the market's shard), sent once, then read
        back. A 404 means there was nothing resting to cancel: the order as it stands is read back."""
        self._require_keys("cancelling an order")
        try:
            await self._write("DELETE", f"{ORDERS_V2}/{quote(order_id, safe='')}", f"cancel {order_id}",
                              params={"market_ticker": ticker})
        except NotFoundError:
            pass  # filled or cancelled already: what it became is read below
        return await self.get_order(order_id, action)

    async def cancel(self, order: Order, market: Market) -> OrderResult | None:
        """The VenueClient form: Kalshi cancels by its own order id; the order says which way it went."""
        if not order.venue_order_id:
            raise GiveUpError(f"order {order.client_order_id} has no Kalshi order id; look it up first")
        return await self.cancel_order(order.venue_order_id, market.id, order.action)

    async def get_balance(self) -> Decimal:
        """Available balance in dollars."""
        self._require_keys("reading the balance")
        data = await self._get("/portfolio/balance", None, "balance")
        dollars = parse_decimal(data.get("balance_dollars"), "balance_dollars", "kalshi balance")
        if dollars is not None:
            return dollars
        cents = parse_decimal(data.get("balance"), "balance", "kalshi balance")
        if cents is None:
            raise WireFormatError("kalshi balance: neither 'balance_dollars' nor 'balance' is present")
        return cents / 100

    async def resolution(self, market_id: str) -> Resolution | None:
        """How the market resolved, or None while it is open or not yet finalized. Public data."""
        path = f"/markets/{quote(market_id, safe='')}"
        try:
            data = await self._get(path, None, f"market {market_id}")
        except NotFoundError:  # settled before the historical cutoff: only the historical API has it
            data = await self._get(f"/historical{path}", None, f"historical market {market_id}")
        raw = data.get("market")
        if not isinstance(raw, dict):
            raise WireFormatError(f"kalshi: market {market_id}: field 'market' is not an object")
        return kalshi_wire.resolution_from_wire(raw)

    async def settled_markets(self, closed_after: datetime, closed_before: datetime,
                              limit: int) -> list[tuple[Market, Resolution]]:
        """Finalized markets that closed in the window, newest first: the questions a backtest can score."""
        # GET /markets filters by close time only with no `status` (the spec's table: min/max_close_ts go with `closed`
        # or none), so settlement is read from each market. Markets settled before the historical cutoff are only in
        # GET /historical/markets, which has no time filter: they are left out, and a warning says when that matters.
        params: dict[str, Any] = {"min_close_ts": math.floor(closed_after.timestamp()),
                                  "max_close_ts": math.ceil(closed_before.timestamp()), "limit": PAGE_LIMIT}
        if not self.config.include_multivariate:
            params["mve_filter"] = "exclude"
        found: list[tuple[Market, Resolution]] = []
        async for page in self._paged("/markets", params, "markets", "GET /markets by close time"):
            for raw in page:
                market = self._market(raw)
                if market is None or not closed_after <= market.close_time < closed_before:
                    continue
                try:
                    resolution = kalshi_wire.resolution_from_wire(raw)
                except WireFormatError:
                    continue  # a settlement it cannot read is no answer to score against
                if resolution is not None:
                    found.append((market, resolution))
        found.sort(key=lambda pair: pair[0].close_time, reverse=True)
        if len(found) < limit and closed_after < await self._settled_cutoff():
            log.warning("kalshi: markets settled before the historical cutoff are not listed by close time; the "
                        "%d settled markets found for %s to %s may miss older ones", len(found),
                        f"{closed_after:%Y-%m-%d}", f"{closed_before:%Y-%m-%d}")
        return found[:limit]

    async def _settled_cutoff(self) -> datetime:
        """GET /historical/cutoff `market_settled_ts`: markets settled before it are only in the historical API."""
        data = await self._get("/historical/cutoff", None, "historical cutoff")
        return parse_time(data.get("market_settled_ts"), "market_settled_ts", "kalshi historical cutoff")

    async def price_at(self, market: Market, at: datetime) -> Decimal | None:
        """The YES price of the last hourly candle ending by `at` (within a day): what the market said then."""
        # The series route serves live markets; one archived past the historical cutoff answers 404 there.
        params = {"start_ts": int((at - HISTORY_WINDOW).timestamp()), "end_ts": int(at.timestamp()),
                  "period_interval": CANDLE_MINUTES}
        ticker = quote(market.id, safe="")
        series = quote(kalshi_wire.series_of(market.event or market.id), safe="")
        try:
            data = await self._get(f"/series/{series}/markets/{ticker}/candlesticks", params,
                                   f"candlesticks of {market.id}")
        except NotFoundError:
            data = await self._get(f"/historical/markets/{ticker}/candlesticks", params,
                                   f"historical candlesticks of {market.id}")
            return kalshi_wire.price_from_candles(data, at, historical=True)
        return kalshi_wire.price_from_candles(data, at)

    async def get_positions(self) -> list[KalshiPosition]:
        """Every market position Kalshi lists (closed ones included, with position 0)."""
        self._require_keys("reading positions")
        rows: list[KalshiPosition] = []
        async for page in self._paged("/portfolio/positions", {"limit": PAGE_LIMIT}, "market_positions",
                                      "GET /portfolio/positions"):
            rows.extend(position_from_wire(raw) for raw in page)
        return rows

    async def signed_positions(self) -> dict[str, Decimal] | None:
        """Open positions by ticker, + YES / - NO contracts, for reconciliation; None without keys."""
        if not self.has_keys:
            return None
        return {p.ticker: p.position for p in await self.get_positions() if p.position != 0}

    async def get_settlements(self) -> list[KalshiSettlement]:
        self._require_keys("reading settlements")
        rows: list[KalshiSettlement] = []
        async for page in self._paged("/portfolio/settlements", {"limit": PAGE_LIMIT}, "settlements",
                                      "GET /portfolio/settlements"):
            rows.extend(settlement_from_wire(raw) for raw in page)
        return rows


class _AlreadyExists(GiveUpError):
    """A conflict on create (409 order_already_exists, or a 409 with a code the desk does not know): the order
    may have been taken before. `unknown` is the contract error to carry when the code is not one we know."""

    def __init__(self, message: str, unknown: VenueContractError | None = None) -> None:
        super().__init__(message)
        self.unknown = unknown
