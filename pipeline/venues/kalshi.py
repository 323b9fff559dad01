"""Kalshi Trade API v2: a thin async httpx client speaking the 2026 wire format.

Not the official SDK: the desk needs few endpoints, typed errors, our own rate limits and
the rule that a POST is sent exactly once. Facts this relies on (see
/work/shared/contracts/README.md and the pinned spec tests/data/kalshi-openapi.yaml v3.13.0):

- Auth: KALSHI-ACCESS-KEY, KALSHI-ACCESS-TIMESTAMP (ms), KALSHI-ACCESS-SIGNATURE = base64
  RSA-PSS(SHA-256, MGF1 SHA-256, salt = digest length) over f"{ts}{METHOD}{path}", where
  path carries the base URL's prefix (/trade-api/v2/...) and no query string.
- Prices are decimal-dollar strings, counts 2-decimal strings; integer cents are gone.
- An Order reports `fill_count_fp`, `taker_fill_cost_dollars` + `maker_fill_cost_dollars`
  (what was paid for the side bought, fees excluded) and `taker_fees_dollars` +
  `maker_fees_dollars`: totals, not trades; the average fill price is cost / count.
- GET /portfolio/orders has no client_order_id filter: we filter by ticker and match the
  id ourselves. Canceled/executed orders older than the historical cutoff move to
  GET /historical/orders, so a look-up asks there too before answering "absent".
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import FeesConfig, KalshiConfig, Settings
from ..errors import ConfigError, GiveUpError, NotFoundError, OutcomeUnknownError, WireFormatError
from ..models import (ONE, ZERO, Fill, Market, Order, OrderBook, OrderRequest, OrderResult, OrderStatus, Resolution,
                      Venue, VenueOrder, VenueScanStats)
from . import kalshi_wire
from .http import RateLimiter, RetryPolicy, read_json, write_json
from .wire import parse_decimal, parse_time

PAGE_LIMIT = 1000  # the most GET /markets and GET /portfolio/orders hand out per page
PRICE_STEP = Decimal("0.0001")  # we send limit prices as 4-decimal dollar strings
KEY_VARS = "KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH (or KALSHI_PRIVATE_KEY)"


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

def order_body(request: OrderRequest) -> dict[str, Any]:
    """OrderRequest -> the CreateOrderRequest body; refuses what Kalshi cannot take before it is sent."""
    cid = request.client_order_id
    if request.venue is not Venue.KALSHI:
        raise GiveUpError(f"kalshi: order {cid} is for {request.venue.value}, not kalshi")
    if request.contracts != request.contracts.to_integral_value():
        raise GiveUpError(f"kalshi: order {cid}: {request.contracts} contracts is not a whole number; "
                          "Kalshi orders here are whole contracts")
    price = request.limit_price
    if not ZERO < price < ONE or price != price.quantize(PRICE_STEP):
        raise GiveUpError(f"kalshi: order {cid}: limit price {price} is not a price Kalshi takes "
                          "(between 0 and 1, at most 4 decimals)")
    return {
        "ticker": request.market_id,
        "client_order_id": cid,
        "side": request.side.value,
        "action": "buy",
        "count": int(request.contracts),
        f"{request.side.value}_price_dollars": f"{price.quantize(PRICE_STEP)}",  # the side bought
        "time_in_force": request.time_in_force,
    }


def _count(value: Decimal) -> Decimal:
    """Counts as the desk writes them: "113.00" -> 113, "2.50" -> 2.5."""
    return value.quantize(ONE) if value == value.to_integral_value() else value.normalize()


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
    if average * count == cost or count != count.to_integral_value():
        return (Fill(contracts=_count(count), price=average, fee=fee),)
    step = ONE.scaleb(min(cost.as_tuple().exponent, -4))  # type: ignore[arg-type]
    low = average.quantize(step, rounding=ROUND_FLOOR)
    above = ((cost - low * count) / step).to_integral_value()  # contracts one step up: 1..count-1
    return (Fill(contracts=_count(count - above), price=low, fee=fee),
            Fill(contracts=_count(above), price=low + step, fee=ZERO))


def order_from_wire(raw: Any) -> OrderResult:
    """One `Order` object (CreateOrderResponse, GetOrderResponse, GetOrdersResponse) -> OrderResult."""
    if not isinstance(raw, dict):
        raise WireFormatError("kalshi order: not an object")
    order_id = raw.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise WireFormatError("kalshi order: required field 'order_id' is missing")
    where = f"kalshi order {order_id}"
    status, side = raw.get("status"), raw.get("side")
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
        fills = fills_from_totals(filled, cost, fees)
    of = f" of {_count(initial)}" if initial is not None else ""
    below = f" at or below {limit}" if limit is not None else ""
    partial = f"{_count(filled)}{of} filled{below}; the rest was cancelled"

    if status == "executed":  # fewer than asked only if the order was decreased first
        complete = initial is None or filled >= initial
        result_status, reason = (OrderStatus.FILLED, "") if complete else (OrderStatus.PARTIALLY_FILLED, partial)
    elif status == "canceled":
        result_status, reason = ((OrderStatus.PARTIALLY_FILLED, partial) if filled > 0
                                 else (OrderStatus.CANCELED, f"no fill{below}; cancelled"))
    elif status == "resting":
        at = f" at {limit}" if limit is not None else ""
        result_status, reason = OrderStatus.RESTING, f"{_count(remaining)} resting{at}"
    else:  # a state this desk does not know: say so, and let reconciliation look again
        result_status, reason = OrderStatus.UNKNOWN, f"kalshi reports status {status!r}, which this desk does not know"
    return OrderResult(client_order_id=str(raw.get("client_order_id") or ""), venue_order_id=order_id,
                       status=result_status, fills=fills, reason=reason)


def venue_order_from_wire(raw: Any) -> VenueOrder:
    if not isinstance(raw, dict) or not raw.get("order_id") or not raw.get("ticker"):
        raise WireFormatError("kalshi order: required fields 'order_id' and 'ticker' are missing")
    return VenueOrder(venue=Venue.KALSHI, order_id=str(raw["order_id"]), client_order_id=str(raw.get("client_order_id")
                      or ""), market_id=str(raw["ticker"]), side=str(raw.get("side") or ""),
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

    def _translator(self, where: str) -> Callable[[httpx.Response], Exception]:
        def translate(response: httpx.Response) -> Exception:
            code, message = _error_parts(response)
            status = response.status_code
            head = f"kalshi: {code}" if code else f"kalshi: HTTP {status}"
            text = f"{head}: {message[:200]}" if message else head
            if self._key_id:  # a server that echoes our key id must not get it into our logs
                text = text.replace(self._key_id, "<key id>")
            text = f"{text} ({where})"
            if status in (401, 403):
                return GiveUpError(
                    f"{text}. Check that KALSHI_API_KEY_ID and the private key (KALSHI_PRIVATE_KEY_PATH or "
                    f"KALSHI_PRIVATE_KEY) are the pair Kalshi issued; demo and production keys do not cross "
                    f"environments (this desk talks to {self._host}); and check the machine clock is synchronised "
                    "(Kalshi refuses requests whose timestamp is off by more than about 30 s)")
            if status == 404:
                return NotFoundError(text)
            return GiveUpError(text)
        return translate

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

    async def _write(self, method: str, path: str, where: str, body: dict[str, Any] | None = None) -> Any:
        return await write_json(lambda: self._http.send(self._request(method, path, body=body)), where=where,
                                translate=self._translator(where), limiter=self._writes)

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
            return kalshi_wire.market_from_wire(raw, self.fees)
        except WireFormatError:
            return None

    async def get_order_book(self, market: Market) -> OrderBook:
        path = f"/markets/{quote(market.id, safe='')}/orderbook"
        data = await self._get(path, {"depth": self.config.orderbook_depth}, f"orderbook {market.id}")
        return kalshi_wire.orderbook_from_wire(market.id, data)

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        self._require_keys("placing an order")
        body = order_body(request)
        cid = request.client_order_id
        data = await self._write("POST", "/portfolio/orders", f"order {cid} on {request.market_id}", body)
        try:
            result = order_from_wire(data.get("order") if isinstance(data, dict) else None)
        except WireFormatError as e:  # 201 means it was taken: an unreadable answer is not a refusal
            raise OutcomeUnknownError(f"kalshi: order {cid} was accepted but its answer could not be read ({e}); "
                                      "look it up by client order id") from e
        if result.client_order_id != cid:
            raise OutcomeUnknownError(f"kalshi: order {cid}: the answer names client order id "
                                      f"{result.client_order_id!r}; look it up by client order id")
        return result

    async def find_order(self, client_order_id: str, market: Market) -> OrderResult | None:
        self._require_keys("looking an order up")
        params = {"ticker": market.id, "limit": PAGE_LIMIT}
        # Recent orders first; canceled/executed ones past the historical cutoff live in the archive.
        for path in ("/portfolio/orders", "/historical/orders"):
            async with aclosing(self._paged(path, params, "orders", f"GET {path} ticker={market.id}")) as pages:
                async for page in pages:
                    for raw in page:
                        if isinstance(raw, dict) and raw.get("client_order_id") == client_order_id:
                            return order_from_wire(raw)
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

    async def get_order(self, order_id: str) -> OrderResult:
        self._require_keys("reading an order")
        data = await self._get(f"/portfolio/orders/{quote(order_id, safe='')}", None, f"order {order_id}")
        return order_from_wire(data.get("order"))

    async def cancel_order(self, order_id: str) -> OrderResult:
        """Cancel what rests of an order; sent once (OutcomeUnknownError: read it back with get_order)."""
        self._require_keys("cancelling an order")
        data = await self._write("DELETE", f"/portfolio/orders/{quote(order_id, safe='')}", f"cancel {order_id}")
        return order_from_wire(data.get("order") if isinstance(data, dict) else None)

    async def cancel(self, order: Order, market: Market) -> OrderResult | None:
        """The VenueClient form: Kalshi cancels by its own order id."""
        if not order.venue_order_id:
            raise GiveUpError(f"order {order.client_order_id} has no Kalshi order id; look it up first")
        return await self.cancel_order(order.venue_order_id)

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
