"""A fake Kalshi Trade API v2 on 127.0.0.1, as Kalshi is in December 2026 (pinned OpenAPI spec v3.31.0).

    fake = FakeKalshi(public_key, key_id="test-key")
    fake.generate(10_000)
    async with fake.serve() as server:
        client = KalshiClient(fake.base_url, ...)

Written from the spec (pipeline/contracts/kalshi-openapi.yaml) and the fact-check in the research notes,
not from our client. What it does, as the real exchange does:
- RSA-PSS signatures checked with the PUBLIC key over f"{ts}{METHOD}{path}" (path with the
  /trade-api/v2 prefix, no query); timestamps more than 30 s from its clock are refused.
  Portfolio endpoints require auth; market data accepts unsigned requests but refuses a
  bad signature when the headers are present. Failures are 401 {"error":{"code":"unauthorized",...}}.
- Errors are {"error":{"code","message"[,"details"]}} (no "service" since 2026-08-06); a body that
  cannot be decoded (bad JSON, wrong types, unknown fields) is 400 with a TOP-LEVEL
  {"code":"bad_request","message","details"}; a 429 is {"error":"too many requests"}.
- The V1 order writes (POST /portfolio/orders, DELETE /portfolio/orders/{id}) answer 410
  deprecated_v1_order_endpoint and change nothing. Orders go through the V2 endpoints:
  POST /portfolio/events/orders (CreateOrderV2Request, `side` is the YES book: bid buys YES at <= price,
  ask sells YES at >= price, i.e. buys NO at <= 1 - price) and DELETE /portfolio/events/orders/{id}
  (shard-routed by market_ticker or exchange_index). Orders execute as a taker against the book.
- Fees come from the series (fee_type, fee_multiplier), scheduled series fee changes and event
  overrides, rounded UP to $0.0001 per fill (docs.kalshi.com/getting_started/fee_rounding).
- Positions net (market_settlement doc: "only net positions are settled (after netting)"): a fill on the side
  opposite a position first closes held contracts, each closed pair paying $1 back, so selling held YES at p
  (an ask, buying NO at 1 - p) raises the balance by p a contract before fees (settlement_bounds doc: "Selling
  held YES contracts raises available balance by the price", floor 0). Assumed: the pair pays at once, the
  closing part needs no collateral, and the position keeps its average cost (market_exposure shrinks by the
  closed share; realized_pnl is proceeds less that share, fees apart). `reduce_only` caps what an order may fill
  at the position it reduces and is refused unless immediate-or-cancel (CreateOrderV2Request); the order keeps
  the count it was placed with, its remainder cancelled like any IOC remainder (assumed).
- GET /markets paginates with an opaque cursor ("" on the last page), honours limit (max
  1000), status (the filter says "open", objects say "active") and mve_filter.
- GET /markets/orderbooks takes `tickers` repeated (form, explode); a comma-joined value is one
  (unknown) ticker and gets an empty book.

Fault injection is LoopbackServer's (`server.faults`); `fault_on_page` queues faults for a
given page of GET /markets just before that page is requested, since pages come in order.
`fake.drift` and `fake.retire()` make the fake drift from the spec, for contract-check tests.
Assumptions that the spec does not settle are marked "assumed" below.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..contracts import kalshi_errors, schema
from .base import FaultKind, LoopbackServer

PREFIX = "/trade-api/v2"
D = Decimal
ONE, ZERO, CENT = D(1), D(0), D("0.01")
CENTICENT = D("0.0001")  # fees round up to this (fee_rounding doc), not to the cent any more
MICRO = D("0.000001")  # "responses emit up to 6" decimals (FixedPointDollars)
MAX_SKEW_SECONDS = 30.0
TAKER_RATE = D("0.07")  # General Trading Fees Table: 0.07 x C x P x (1 - P)
MAKER_RATES = {"quadratic": ZERO, "quadratic_with_maker_fees": D("0.0175"),  # 0.25 x the taker rate
               "quadratic_with_combo_maker_fees": D("0.035"), "flat": ZERO}  # 0.5 x; flat: assumed no maker fee
FEE_TYPES = tuple(MAKER_RATES)
TIME_IN_FORCE = ("fill_or_kill", "good_till_canceled", "immediate_or_cancel")
# GET /markets `status` filter -> the lifecycle states market objects carry.
STATUS_FILTER = {"unopened": {"initialized"}, "open": {"active"}, "paused": {"inactive"}, "closed": {"closed"},
                 "settled": {"determined", "finalized", "amended", "disputed"}}
PRICE_TEXT = re.compile(r"\d+\.\d{2,4}")  # FixedPointDollars requests: 2-4 decimal places
COUNT_TEXT = re.compile(r"\d+(\.\d{1,2})?")  # FixedPointCount requests: 0-2 decimal places
V1_RETIRED = {"code": "deprecated_v1_order_endpoint", "message": "Please switch to the V2 endpoints",
              "details": "https://docs.kalshi.com/api-reference/orders/create-order-v2"}
DEFAULT_SHARDS = [(0, "Default"), (1, "Combos"), (2, "Crypto"), (3, "Tennis & Baseball")]  # observed 2026-09-04
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Moment = float | int | datetime


def dollars(value: Decimal) -> str:
    """4 decimals, as the fake always sent; 6 (the spec's most) when 4 would lose a fractional count's cost."""
    short = value.quantize(CENTICENT)
    return f"{short}" if short == value else f"{value.quantize(MICRO)}"


def fp(value: Decimal) -> str:
    return f"{value.quantize(CENT)}"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def seconds(moment: Moment) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def ceil_centicent(value: Decimal) -> Decimal:
    return (value / CENTICENT).to_integral_value(rounding=ROUND_CEILING) * CENTICENT


def series_of(event_ticker: str) -> str:
    """A market's series is its event ticker's part before the first "-" (KXFED-26DEC -> KXFED)."""
    return event_ticker.split("-", 1)[0]


def error(status: int, code: str, message: str, details: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:  # "usually left out when there is nothing to add" (order_errors doc)
        body["details"] = details
    return web.json_response({"error": body}, status=status)


def bad_request(details: str) -> web.Response:
    """A body that cannot be decoded answers at the TOP level, not under "error" (order_errors doc)."""
    return web.json_response({"code": "bad_request", "message": "bad request", "details": details}, status=400)


def fault_body(status: int) -> Any:
    """Bodies for LoopbackServer's injected faults: a 429 is a bare string and has no Retry-After."""
    if status == 429:
        return {"error": "too many requests"}
    return {"error": {"code": "internal_server_error", "message": "internal server error"}}


def encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}:fake".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, offset, _ = text.split(":")
        return int(offset) if got_kind == kind and int(offset) >= 0 else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def page_limit(raw: str | None, *, default: int = 100, minimum: int = 0) -> int | None:
    """The `limit` query parameter, or None when it breaks the spec's bounds (max 1000)."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    if not minimum <= value <= 1000:
        return None
    return value or default


def query_int(raw: str | None) -> int | None | str:
    """An optional integer query parameter: None when absent, "bad" when unreadable."""
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return "bad"


@dataclass
class Book:
    """Bids only, as Kalshi keeps them: price -> contracts on each side (the user's resting orders included)."""

    yes: dict[Decimal, Decimal] = field(default_factory=dict)
    no: dict[Decimal, Decimal] = field(default_factory=dict)

    def side(self, name: str) -> dict[Decimal, Decimal]:
        return self.yes if name == "yes" else self.no


@dataclass
class Position:
    position: Decimal = ZERO  # + YES, - NO
    cost: Decimal = ZERO  # what the contracts held cost (average cost), fees apart: market_exposure
    fees: Decimal = ZERO
    traded: Decimal = ZERO
    realized: Decimal = ZERO  # closed pairs: what they paid back less what they cost, fees apart (assumed)


@dataclass
class Drift:
    """Ways to make the fake drift from the pinned spec, for a contract-check test.

    drop_market_fields: fields left out of every served market (e.g. {"yes_bid_dollars"}).
    market_status: ticker -> a status served verbatim (e.g. "suspended"), one the spec may not know.
    Routes are retired with `FakeKalshi.retire(method, path_template)`.
    """

    drop_market_fields: set[str] = field(default_factory=set)
    market_status: dict[str, str] = field(default_factory=dict)


@dataclass
class Fill:
    """One matched level of a taker order: `level` is the price on the book side taken, `yes_price` the trade."""

    level: Decimal
    count: Decimal
    yes_price: Decimal


class FakeKalshi:
    def __init__(self, public_key: rsa.RSAPublicKey, key_id: str = "test-key-id", *,
                 clock: Callable[[], float] = time.time, balance: Decimal = D("10000"),
                 now: datetime | None = None) -> None:
        self.public_key = public_key
        self.key_id = key_id
        self.clock = clock
        self.balance = balance
        self.now = now or datetime.now(timezone.utc)
        self.markets: dict[str, dict[str, Any]] = {}  # ticker -> wire object, in listing order
        self.books: dict[str, Book] = {}  # materialised on first use, or set by the test
        self.orders: dict[str, dict[str, Any]] = {}  # order_id -> wire Order, oldest first
        self.historical_orders: dict[str, dict[str, Any]] = {}
        self.historical_markets: dict[str, dict[str, Any]] = {}  # settled before the historical cutoff
        self.client_ids: dict[str, str] = {}  # client_order_id -> order_id (live and archived)
        self.positions: dict[str, Position] = defaultdict(Position)
        self.settlements: list[dict[str, Any]] = []
        self.page_fetches: Counter[str] = Counter()  # GET /markets cursor -> pages served ("" = first)
        self.auth_failures: list[str] = []
        self.orders_page_cap = 1000  # a server may hand out fewer than asked; tests lower it to force paging
        self.markets_page_cap = 1000  # the same for GET /markets
        self.whole_contracts: set[str] = set()  # tickers that refuse fractional counts (assumed to exist)
        self.series: dict[str, dict[str, Any]] = {}  # series ticker -> wire Series (its base fee values)
        self.flat_fees: dict[str, Decimal] = {}  # series ticker -> $ per contract for fee_type "flat" (assumed)
        self.series_fee_changes: list[tuple[float, dict[str, Any]]] = []  # (effective at, wire SeriesFeeChange)
        self.event_fee_changes: list[tuple[float, dict[str, Any]]] = []  # (effective at, wire EventFeeChange)
        self.books_omit_unknown = False  # GET /markets/orderbooks leaves unknown tickers out (see there)
        self.exchange_status: dict[str, Any] = {
            "exchange_active": True, "trading_active": True, "intra_exchange_transfers_active": True,
            "exchange_estimated_resume_time": None,
            "exchange_index_statuses": [
                {"exchange_index": i, "description": name, "exchange_active": True, "trading_active": True,
                 "intra_exchange_transfers_active": True} for i, name in DEFAULT_SHARDS]}
        self.legacy_order_fields = True  # deprecated `side`/`action` on orders; False leaves them out
        # reduce_only "caps the order place count at the position": the order keeps the count it was placed with
        # and cancels the rest (True), or is placed with the capped count (False); the docs do not say which
        self.reduce_only_keeps_count = True
        self.drift = Drift()
        # (status, code, message) answered to the next V2 creates, in order, before anything is checked or done
        self.order_refusals: list[tuple[int, str, str]] = []
        # (METHOD, path template without the prefix) -> the 410 error body; the V1 writes are gone for good.
        self.retired: dict[tuple[str, str], dict[str, str]] = {
            ("POST", "/portfolio/orders"): V1_RETIRED, ("DELETE", "/portfolio/orders/{order_id}"): V1_RETIRED}
        # ticker -> price points (Unix seconds, YES bid, YES ask, trade price or None), oldest first: candlesticks
        self.price_points: dict[str, list[tuple[int, Decimal, Decimal, Decimal | None]]] = {}
        self.historical_cutoff = self.now - timedelta(days=90)  # GET /historical/cutoff market_settled_ts
        self._expiries: dict[str, float] = {}  # resting order_id -> expiration_time (Unix seconds)
        self._page_faults: dict[int, list[FaultKind]] = defaultdict(list)
        self.server: LoopbackServer | None = None

    # -- setting up -------------------------------------------------------------------------

    def serve(self, **kwargs: Any) -> LoopbackServer:
        self.server = LoopbackServer(self.app(), error_body=fault_body, **kwargs)
        return self.server

    @property
    def base_url(self) -> str:
        assert self.server is not None and self.server.url, "serve() and enter the server first"
        return f"{self.server.url}{PREFIX}"

    def _template(self) -> dict[str, Any]:
        open_time = self.now - timedelta(days=7)
        return {
            "market_type": "binary", "yes_sub_title": "Yes", "no_sub_title": "No",
            "created_time": iso(open_time - timedelta(days=1)), "updated_time": iso(self.now),
            "open_time": iso(open_time), "close_time": iso(self.now + timedelta(days=10)),
            "latest_expiration_time": iso(self.now + timedelta(days=17)), "settlement_timer_seconds": 300,
            "status": "active", "notional_value_dollars": "1.0000",
            "previous_yes_bid_dollars": "0.0000", "previous_yes_ask_dollars": "0.0000",
            "previous_price_dollars": "0.0000", "volume_24h_fp": "0.00",
            "open_interest_fp": "0.00", "result": "", "can_close_early": True,
            "expiration_value": "", "rules_primary": "Resolves Yes if the thing happens.",
            "rules_secondary": "Fake market for tests.", "price_level_structure": "linear_cent",
            "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
            "settlement_bounds_type": "default", "exchange_index": 0,
        }

    def generate(self, n: int, *, prefix: str = "KXGEN") -> list[str]:
        """`n` open binary markets with varied cent quotes; books are derived on first use."""
        template = self._template()
        tickers = []
        for i in range(len(self.markets), len(self.markets) + n):
            bid = 5 + (i * 37) % 85  # cents, 5..89
            ask = bid + 1 + i % 4
            event = f"{prefix}{i // 10:05d}-26DEC"
            market = dict(template)
            market.update(
                ticker=f"{event}-T{i % 10}", event_ticker=event, title=f"Generated market {i}",
                yes_bid_dollars=f"0.{bid:02d}00", yes_ask_dollars=f"0.{ask:02d}00",
                no_bid_dollars=f"0.{100 - ask:02d}00", no_ask_dollars=f"0.{100 - bid:02d}00",
                yes_bid_size_fp=f"{100 + i % 900}.00", yes_ask_size_fp=f"{150 + i % 700}.00",
                last_price_dollars=f"0.{bid:02d}00", volume_fp=f"{1000 + i * 13 % 90000}.00",
            )
            self.markets[market["ticker"]] = market
            tickers.append(market["ticker"])
        return tickers

    def add_market(self, ticker: str, *, yes: list[tuple[str, str]], no: list[tuple[str, str]],
                   title: str | None = None, close_time: datetime | None = None, volume: str = "50000",
                   status: str = "active", tick: str = "0.01", mve_collection: str | None = None,
                   market_type: str = "binary", exchange_index: int = 0, whole_contracts: bool = False,
                   event_ticker: str | None = None,
                   price_ranges: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """A market with an explicit book: `yes`/`no` are bid levels [(price, count)]; quotes follow the book.

        `exchange_index` puts it on a shard; `whole_contracts` makes it refuse fractional counts (assumed:
        the spec says fractions are supported everywhere, but the fake lets a test model a market that is not).
        """
        market = self._template()
        market.update(ticker=ticker, event_ticker=event_ticker or ticker.rsplit("-", 1)[0], status=status,
                      market_type=market_type, title=title or f"Fake market {ticker}", volume_fp=fp(D(volume)),
                      last_price_dollars="0.0000", exchange_index=exchange_index)
        if close_time is not None:
            market["close_time"] = iso(close_time)
        if tick != "0.01":
            market["price_level_structure"] = "deci_cent"
            market["price_ranges"] = [{"start": "0.0000", "end": "1.0000", "step": dollars(D(tick))}]
        if price_ranges is not None:
            market["price_level_structure"] = "tapered_deci_cent"
            market["price_ranges"] = price_ranges
        if mve_collection:
            market["mve_collection_ticker"] = mve_collection
        if whole_contracts:
            self.whole_contracts.add(ticker)
        self.markets[ticker] = market
        self.books[ticker] = Book(yes={D(p): D(s) for p, s in yes}, no={D(p): D(s) for p, s in no})
        return market

    def add_raw_market(self, raw: dict[str, Any]) -> None:
        """Any object at all, e.g. a broken one the client must skip."""
        self.markets[str(raw.get("ticker", f"RAW{len(self.markets)}"))] = raw

    def fault_on_page(self, index: int, kind: FaultKind, times: int = 1) -> None:
        """Fail the next `times` requests for markets page `index` (0-based) with `kind`."""
        assert self.server is not None, "serve() first"
        if index == 0:
            self.server.faults.add(kind, f"{PREFIX}/markets", "GET", times=times)
        else:
            self._page_faults[index].extend([kind] * times)

    def retire(self, method: str, path_template: str, *, code: str | None = None) -> None:
        """Make a served route answer 410 from now on, as the V1 order writes do.

        Order routes get the V1 body (deprecated_v1_order_endpoint); any other route gets
        "endpoint_retired" (assumed: Kalshi has retired no non-order route this way yet).
        """
        path = path_template.removeprefix(PREFIX)
        if code is None and "/orders" in path:
            body = dict(V1_RETIRED)
        else:
            body = {"code": code or "endpoint_retired", "message": "this endpoint has been retired"}
        self.retired[(method.upper(), path)] = body

    def add_settlement(self, ticker: str, result: str = "yes", yes_count: str = "10", yes_cost: str = "4.20",
                       fee: str = "0.17", *, no_count: str = "0", no_cost: str = "0",
                       value: str | None = None) -> None:
        """A settlement row; `value` is the YES payout in dollars for a scalar result."""
        payout = {"yes": ONE, "no": ZERO}.get(result, D(value or "0"))
        revenue = D(yes_count) * payout + D(no_count) * (ONE - payout)
        market = self.markets.get(ticker) or self.historical_markets.get(ticker) or {}
        self.settlements.append({
            "ticker": ticker, "event_ticker": market.get("event_ticker", ticker.rsplit("-", 1)[0]),
            "exchange_index": market.get("exchange_index", 0), "market_result": result,
            "yes_count_fp": fp(D(yes_count)), "yes_total_cost_dollars": dollars(D(yes_cost)),
            "no_count_fp": fp(D(no_count)), "no_total_cost_dollars": dollars(D(no_cost)),
            "revenue": int((revenue * 100).to_integral_value(rounding=ROUND_FLOOR)),
            "settled_time": iso(self.now), "fee_cost": dollars(D(fee)),
            "value": int((payout * 100).to_integral_value(rounding=ROUND_FLOOR)),
        })

    def settle_market(self, ticker: str, result: str, *, value: str | None = None, historical: bool = False) -> None:
        """Finalize a market as Kalshi does: result set, positions paid out and zeroed, a settlement row.

        `historical` moves it past the historical cutoff: only GET /historical/markets/{ticker} has it then.
        """
        market = self.markets[ticker]
        payout = {"yes": ONE, "no": ZERO}.get(result, D(value or "0"))
        market.update(status="finalized", result=result, settlement_value_dollars=dollars(payout),
                      settlement_ts=iso(self.now), expiration_value=result)
        for order in list(self.orders.values()):  # assumed: what still rests is cancelled when the market settles
            if order["ticker"] == ticker and order["status"] == "resting":
                self._cancel_resting(order)
        held = self.positions.pop(ticker, None)
        if held is not None and held.position:
            count = abs(held.position)
            long_yes = held.position > 0
            self.balance += count * (payout if long_yes else ONE - payout)
            self.add_settlement(ticker, result, yes_count=str(count if long_yes else 0),
                                yes_cost=str(held.cost if long_yes else 0), fee=str(held.fees),
                                no_count=str(0 if long_yes else count), no_cost=str(0 if long_yes else held.cost),
                                value=value)
        if historical:
            self.historical_markets[ticker] = self.markets.pop(ticker)

    def add_settled_market(self, ticker: str, result: str, close_time: datetime, *, historical: bool = False,
                           history: list[tuple[datetime, str, str, str | None]] = ()) -> dict[str, Any]:
        """A market that closed at `close_time` and was finalized with `result` an hour later (`historical`: past the
        cutoff, only the historical API has it), with `history` points (moment, yes bid, yes ask, trade or None)."""
        market = self.add_market(ticker, yes=[("0.40", "100")], no=[("0.55", "100")], close_time=close_time)
        self.settle_market(ticker, result, historical=historical)
        market.update(status="finalized", settlement_ts=iso(close_time + timedelta(hours=1)))
        self.add_price_history(ticker, history)
        return market

    def add_price_history(self, ticker: str, points: Any) -> None:
        """Price points for the candlesticks: (moment, yes bid, yes ask, trade price or None), any order."""
        rows = self.price_points.setdefault(ticker, [])
        rows.extend((int(seconds(m)), D(bid), D(ask), D(trade) if trade is not None else None)
                    for m, bid, ask, trade in points)
        rows.sort(key=lambda row: row[0])

    def archive(self, order_id: str) -> None:
        """Move a finished order past the historical cutoff: only GET /historical/orders shows it now."""
        self.historical_orders[order_id] = self.orders.pop(order_id)

    def by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        order_id = self.client_ids.get(client_order_id)
        return self.orders.get(order_id or "") or self.historical_orders.get(order_id or "")

    # -- series and fees --------------------------------------------------------------------

    def set_series(self, ticker: str, fee_type: str = "quadratic", fee_multiplier: float | str | Decimal = 1, *,
                   flat_fee: str | Decimal | None = None, **extra: Any) -> dict[str, Any]:
        """Create or change a series; `extra` sets any other Series field (title, exchange_index, ...).

        `flat_fee` is the $ per contract a "flat" series charges (times the multiplier), rounded up to
        $0.0001 per fill. Assumed: Kalshi's Specific Trading Fees Table is not public in the research;
        the value is the test's, and is never served.
        """
        assert fee_type in FEE_TYPES, fee_type
        series = self._series(ticker)
        series.update(fee_type=fee_type, fee_multiplier=float(fee_multiplier), last_updated_ts=iso(self.now),
                      **extra)
        if flat_fee is not None:
            self.flat_fees[ticker] = D(str(flat_fee))
        return series

    def add_series_fee_change(self, series_ticker: str, fee_type: str, fee_multiplier: float | str | Decimal,
                              scheduled_ts: Moment) -> str:
        """A scheduled change of a series' fees; it applies once the fake's clock reaches scheduled_ts."""
        assert fee_type in FEE_TYPES, fee_type
        self._series(series_ticker)
        change_id = str(uuid.uuid4())
        at = seconds(scheduled_ts)
        self.series_fee_changes.append((at, {
            "id": change_id, "series_ticker": series_ticker, "fee_type": fee_type,
            "fee_multiplier": float(fee_multiplier), "scheduled_ts": iso(datetime.fromtimestamp(at, timezone.utc))}))
        return change_id

    def set_event_fee_override(self, event_ticker: str, fee_type: str | None,
                               fee_multiplier: float | str | Decimal | None,
                               scheduled_ts: Moment | None = None) -> str:
        """An event's fee override, on top of its series, from scheduled_ts (default: now); None clears it."""
        assert fee_type is None or fee_type in FEE_TYPES, fee_type
        change_id = str(uuid.uuid4())
        at = self.clock() if scheduled_ts is None else seconds(scheduled_ts)
        self.event_fee_changes.append((at, {
            "id": change_id, "event_ticker": event_ticker, "series_ticker": series_of(event_ticker),
            "fee_type_override": fee_type,
            "fee_multiplier_override": None if fee_multiplier is None else float(fee_multiplier),
            "scheduled_ts": iso(datetime.fromtimestamp(at, timezone.utc))}))
        return change_id

    def _series(self, ticker: str) -> dict[str, Any]:
        """The stored Series, made with Kalshi's defaults (quadratic, multiplier 1) the first time it is needed."""
        series = self.series.get(ticker)
        if series is None:
            shard = next((m.get("exchange_index", 0) for m in self.markets.values()
                          if series_of(str(m.get("event_ticker", ""))) == ticker), 0)
            series = {
                "ticker": ticker, "frequency": "daily", "title": f"Fake series {ticker}", "category": "Economics",
                "categories": ["Economics"], "tags": [], "settlement_sources": [
                    {"name": "Fake source", "url": "https://example.test/source"}],
                "contract_url": f"https://example.test/contracts/{ticker}.pdf",
                "contract_terms_url": f"https://example.test/terms/{ticker}.pdf",
                "fee_type": "quadratic", "fee_multiplier": 1.0, "additional_prohibitions": [],
                "exchange_index": shard, "last_updated_ts": iso(self.now)}
            self.series[ticker] = series
        return series

    def _series_fees(self, ticker: str, at: float) -> tuple[str, Decimal]:
        """A series' (fee_type, multiplier) at `at`: its own values, then its scheduled changes that have passed."""
        series = self._series(ticker)
        fee_type, multiplier = series["fee_type"], D(str(series["fee_multiplier"]))
        for when, change in sorted(self.series_fee_changes, key=lambda c: c[0]):
            if change["series_ticker"] == ticker and when <= at:
                fee_type, multiplier = change["fee_type"], D(str(change["fee_multiplier"]))
        return fee_type, multiplier

    def fee_schedule(self, market_ticker: str, at: float | None = None) -> tuple[str, Decimal]:
        """(fee_type, multiplier) charged on a market now: series, then its passed changes, then the event's override.

        The latest event change that has passed wins; its null fields fall back to the series'.
        """
        at = self.clock() if at is None else at
        market = self.markets.get(market_ticker) or self.historical_markets.get(market_ticker) or {}
        event = str(market.get("event_ticker") or market_ticker.rsplit("-", 1)[0])
        fee_type, multiplier = self._series_fees(series_of(event), at)
        passed = [(when, c) for when, c in self.event_fee_changes if c["event_ticker"] == event and when <= at]
        if passed:
            _, latest = max(passed, key=lambda c: c[0])
            if latest["fee_type_override"] is not None:
                fee_type = latest["fee_type_override"]
            if latest["fee_multiplier_override"] is not None:
                multiplier = D(str(latest["fee_multiplier_override"]))
        return fee_type, multiplier

    def taker_fee(self, ticker: str, count: Decimal, yes_price: Decimal) -> Decimal:
        """One fill's trade fee: M x 0.07 x C x P x (1 - P), rounded UP to $0.0001."""
        fee_type, multiplier = self.fee_schedule(ticker)
        if fee_type == "flat":  # assumed: the test's per-contract amount, times the multiplier
            raw = multiplier * self.flat_fees.get(self._series_ticker(ticker), ZERO) * count
        else:
            raw = multiplier * TAKER_RATE * count * yes_price * (ONE - yes_price)
        return ceil_centicent(raw)

    def maker_fee(self, ticker: str, count: Decimal, yes_price: Decimal) -> Decimal:
        """A resting order's fee when it is filled: 0, or M x 0.0175 (0.035 for combo) x C x P x (1 - P), up to $0.0001.

        Whether M scales the maker fee is assumed (inferred by public clients, not documented).
        """
        fee_type, multiplier = self.fee_schedule(ticker)
        return ceil_centicent(multiplier * MAKER_RATES[fee_type] * count * yes_price * (ONE - yes_price))

    def _series_ticker(self, market_ticker: str) -> str:
        market = self.markets.get(market_ticker) or self.historical_markets.get(market_ticker) or {}
        return series_of(str(market.get("event_ticker") or market_ticker))

    # -- market data ------------------------------------------------------------------------

    def _book(self, ticker: str) -> Book:
        """The live book; a generated market's is derived from its quote the first time it is needed."""
        book = self.books.get(ticker)
        if book is None:
            market = self.markets[ticker]
            bid, ask = D(market["yes_bid_dollars"]), D(market["yes_ask_dollars"])
            bid_size, ask_size = D(market["yes_bid_size_fp"]), D(market["yes_ask_size_fp"])
            book = Book(yes={bid - CENT * k: bid_size * (k + 1) for k in range(3) if bid - CENT * k > 0},
                        no={ONE - ask - CENT * k: ask_size * (k + 1) for k in range(3) if ONE - ask - CENT * k > 0})
            self.books[ticker] = book
        return book

    def _status(self, ticker: str) -> Any:
        """A market's status as served: a drifted one wins."""
        return self.drift.market_status.get(ticker, self.markets[ticker].get("status"))

    def _drifted(self, ticker: str, market: dict[str, Any]) -> dict[str, Any]:
        if ticker not in self.drift.market_status and not self.drift.drop_market_fields:
            return market
        served = {k: v for k, v in market.items() if k not in self.drift.drop_market_fields}
        if ticker in self.drift.market_status:
            served["status"] = self.drift.market_status[ticker]
        return served

    def market_view(self, ticker: str) -> dict[str, Any]:
        """The market object as served: quotes follow the book once it exists (trades move them)."""
        market = self.markets[ticker]
        book = self.books.get(ticker)
        if book is None:
            return self._drifted(ticker, market)
        best_yes = max(book.yes) if book.yes else None
        best_no = max(book.no) if book.no else None
        return self._drifted(ticker, {
            **market,
            "yes_bid_dollars": dollars(best_yes) if best_yes is not None else "0.0000",
            "yes_bid_size_fp": fp(book.yes[best_yes]) if best_yes is not None else "0.00",
            "yes_ask_dollars": dollars(ONE - best_no) if best_no is not None else "1.0000",
            "yes_ask_size_fp": fp(book.no[best_no]) if best_no is not None else "0.00",
            "no_bid_dollars": dollars(best_no) if best_no is not None else "0.0000",
            "no_ask_dollars": dollars(ONE - best_yes) if best_yes is not None else "1.0000"})

    def _listing(self, status: str, mve: str) -> list[str]:
        wanted = STATUS_FILTER.get(status)
        out = []
        for ticker, market in self.markets.items():
            # The listing filters on the market's lifecycle; a drifted status is only how it is served (an open
            # market reported with a value the spec does not know).
            if wanted is not None and market.get("status") not in wanted:
                continue
            is_mve = bool(market.get("mve_collection_ticker"))
            if (mve == "exclude" and is_mve) or (mve == "only" and not is_mve):
                continue
            out.append(ticker)
        return out

    async def _get_markets(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        status, mve, cursor = q.get("status", ""), q.get("mve_filter", ""), q.get("cursor", "")
        limit = page_limit(q.get("limit"))
        if status and status not in STATUS_FILTER:
            return error(400, "invalid_parameters", f"status must be one of {', '.join(STATUS_FILTER)}")
        if mve and mve not in ("only", "exclude"):
            return error(400, "invalid_parameters", "mve_filter must be only or exclude")
        if limit is None:
            return error(400, "invalid_parameters", "limit must be between 0 and 1000")
        offset = decode_cursor("markets", cursor) if cursor else 0
        if offset is None:
            return error(400, "invalid_parameters", "invalid cursor")
        window = self._time_filters(q, status)
        if isinstance(window, web.Response):
            return window
        listing = self._listing(status, mve)
        if window is not None:
            field_name, low, high = window
            listing = [t for t in listing if self._within(self.markets[t].get(field_name), low, high)]
        limit = min(limit, self.markets_page_cap)
        page = listing[offset:offset + limit]
        following = encode_cursor("markets", offset + limit) if offset + limit < len(listing) else ""
        if request.transport is None:  # a timed-out request finishing late: the client never sees it
            return web.Response(status=499)
        self.page_fetches[cursor] += 1
        if following and self.server is not None:  # arm the next page's faults now that it is next
            for kind in self._page_faults.pop((offset + limit) // limit, []):
                self.server.faults.add(kind, f"{PREFIX}/markets", "GET")
        return web.json_response({"markets": [self.market_view(t) for t in page], "cursor": following})

    @staticmethod
    def _time_filters(q: Any, status: str) -> tuple[str, int | None, int | None] | web.Response | None:
        """The one timestamp filter pair GET /markets was given, as (market field, min, max), checked against the
        spec's table: min/max_close_ts go with status `closed` or none, min/max_settled_ts with `settled` or none,
        one pair at a time. None when there is none."""
        pairs = {"close": ("close_time", {"", "closed"}), "settled": ("settlement_ts", {"", "settled"})}
        given = [name for name in pairs if q.get(f"min_{name}_ts") or q.get(f"max_{name}_ts")]
        if not given:
            return None
        if len(given) > 1:
            return error(400, "invalid_parameters", "timestamp filters are mutually exclusive")
        name = given[0]
        field_name, statuses = pairs[name]
        if status not in statuses:
            return error(400, "invalid_parameters", f"min_{name}_ts and max_{name}_ts cannot be combined with "
                                                    f"status={status}")
        low, high = query_int(q.get(f"min_{name}_ts")), query_int(q.get(f"max_{name}_ts"))
        if low == "bad" or high == "bad":
            return error(400, "invalid_parameters", f"min_{name}_ts and max_{name}_ts must be Unix timestamps")
        return field_name, low, high  # type: ignore[return-value]

    @staticmethod
    def _within(value: Any, low: int | None, high: int | None) -> bool:
        """An ISO time inside [low, high] (assumed inclusive at both ends: the spec says "after" and "before")."""
        if not value:
            return False
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        return (low is None or moment >= low) and (high is None or moment <= high)

    async def _get_historical_cutoff(self, request: web.Request) -> web.StreamResponse:
        cutoff = iso(self.historical_cutoff)
        return web.json_response({"market_settled_ts": cutoff, "trades_created_ts": cutoff,
                                  "orders_updated_ts": cutoff, "market_positions_last_updated_ts": cutoff})

    def _candle_query(self, request: web.Request) -> tuple[int, int, int] | web.Response:
        """(start_ts, end_ts, period_interval): all three required integers, the period 1, 60 or 1440 minutes (the
        spec's enum); start after end refused (assumed, with invalid_parameters like the other checks)."""
        q = request.query
        values = {name: query_int(q.get(name)) for name in ("start_ts", "end_ts", "period_interval")}
        missing = [name for name, value in values.items() if value is None]
        if missing:
            return error(400, "invalid_parameters", f"{', '.join(missing)} required")
        if any(value == "bad" for value in values.values()):
            return error(400, "invalid_parameters", "start_ts, end_ts and period_interval must be integers")
        start, end, period = values["start_ts"], values["end_ts"], values["period_interval"]
        if period not in (1, 60, 1440):
            return error(400, "invalid_parameters", "period_interval must be one of 1, 60, 1440")
        if start > end:  # type: ignore[operator]
            return error(400, "invalid_parameters", "start_ts must not be after end_ts")
        return start, end, period  # type: ignore[return-value]

    def _candles(self, ticker: str, start: int, end: int, period: int, *, historical: bool) -> list[dict[str, Any]]:
        """One candle per period boundary in [start, end] once the market has a price: bid/ask OHLC carried from the
        last point, trade OHLC null in a period without trades; live fields end in `_dollars`, historical do not."""
        points = self.price_points.get(ticker, [])
        step = period * 60
        suffix = "" if historical else "_dollars"
        candles = []
        for boundary in range(-(-start // step) * step, end + 1, step):
            before = [p for p in points if p[0] <= boundary - step]
            inside = [p for p in points if boundary - step < p[0] <= boundary]
            seen = before[-1:] + inside
            if not seen:
                continue
            trades = [p[3] for p in inside if p[3] is not None]
            earlier = [p[3] for p in before if p[3] is not None]

            def ohlc(values: list[Decimal]) -> dict[str, str]:
                return {f"open{suffix}": dollars(values[0]), f"low{suffix}": dollars(min(values)),
                        f"high{suffix}": dollars(max(values)), f"close{suffix}": dollars(values[-1])}

            price: dict[str, Any] = {f"{k}{suffix}": None for k in ("open", "low", "high", "close", "mean")}
            if trades:
                price.update(ohlc(trades))
                price[f"mean{suffix}"] = dollars((sum(trades, ZERO) / len(trades)).quantize(CENTICENT))
            price[f"previous{suffix}"] = dollars(earlier[-1]) if earlier else None
            counts = ("volume", "open_interest") if historical else ("volume_fp", "open_interest_fp")
            candles.append({"end_period_ts": boundary, "yes_bid": ohlc([p[1] for p in seen]),
                            "yes_ask": ohlc([p[2] for p in seen]), "price": price,
                            counts[0]: fp(D(len(trades))), counts[1]: "0.00"})
        return candles

    async def _get_candlesticks(self, request: web.Request) -> web.StreamResponse:
        """GET /series/{series_ticker}/markets/{ticker}/candlesticks: 404 for a ticker the live set does not hold
        (one archived past the cutoff included) or that is not in that series (assumed)."""
        ticker, series = request.match_info["ticker"], request.match_info["series_ticker"]
        market = self.markets.get(ticker)
        if market is None or series_of(str(market.get("event_ticker", ""))) != series:
            return error(404, "not_found", "market not found")
        query = self._candle_query(request)
        if isinstance(query, web.Response):
            return query
        return web.json_response({"ticker": ticker, "candlesticks": self._candles(ticker, *query, historical=False)})

    async def _get_historical_candlesticks(self, request: web.Request) -> web.StreamResponse:
        """GET /historical/markets/{ticker}/candlesticks: only markets archived past the cutoff."""
        ticker = request.match_info["ticker"]
        if ticker not in self.historical_markets:
            return error(404, "not_found", "market not found")
        query = self._candle_query(request)
        if isinstance(query, web.Response):
            return query
        return web.json_response({"ticker": ticker, "candlesticks": self._candles(ticker, *query, historical=True)})

    async def _get_market(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["ticker"]
        if ticker not in self.markets:  # past the historical cutoff too: the real API says 404 here
            return error(404, "not_found", "market not found")
        return web.json_response({"market": self.market_view(ticker)})

    async def _get_historical_market(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["ticker"]
        market = self.historical_markets.get(ticker)
        if market is None:
            return error(404, "not_found", "market not found")
        return web.json_response({"market": self._drifted(ticker, market)})

    def _levels(self, ticker: str, depth: int = 0) -> dict[str, list[list[str]]]:
        book = self._book(ticker)

        def levels(side: dict[Decimal, Decimal]) -> list[list[str]]:
            best_first = sorted(side.items(), reverse=True)[:depth or None]
            return [[dollars(p), fp(s)] for p, s in reversed(best_first)]  # ascending, best last, as Kalshi sends

        return {"yes_dollars": levels(book.yes), "no_dollars": levels(book.no)}

    async def _get_orderbook(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["ticker"]
        if ticker not in self.markets:
            return error(404, "not_found", "market not found")
        try:
            depth = max(0, int(request.query.get("depth") or 0))  # 0 (or less) means every level
        except ValueError:
            depth = None
        if depth is None or depth > 100:
            return error(400, "invalid_parameters", "depth must be between 0 and 100")
        return web.json_response({"orderbook_fp": self._levels(ticker, depth)})

    async def _get_orderbooks(self, request: web.Request) -> web.StreamResponse:
        """Books for `tickers` repeated (form, explode), 1..100 of them; "A,B" is one ticker nobody lists."""
        tickers = request.query.getall("tickers", [])
        if not 1 <= len(tickers) <= 100 or any(len(t) > 200 for t in tickers):
            return error(400, "invalid_parameters", "tickers: give 1 to 100 tickers of at most 200 characters")
        # assumed: an unknown ticker answers an empty book (the spec does not say); `books_omit_unknown` makes it
        # left out instead, the other reading
        empty: dict[str, list[list[str]]] = {"yes_dollars": [], "no_dollars": []}
        return web.json_response({"orderbooks": [
            {"ticker": t, "orderbook_fp": self._levels(t) if t in self.markets else empty} for t in tickers
            if t in self.markets or not self.books_omit_unknown]})

    async def _get_series(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["series_ticker"]
        known = ticker in self.series or any(series_of(str(m.get("event_ticker", ""))) == ticker
                                             for m in (*self.markets.values(), *self.historical_markets.values()))
        if not known:  # assumed code and status: the spec lists only 400/500 for this path
            return error(404, "not_found", "series not found")
        fee_type, multiplier = self._series_fees(ticker, self.clock())
        series = {**self._series(ticker), "fee_type": fee_type, "fee_multiplier": float(multiplier)}
        if request.query.get("include_volume") == "true":
            series["volume_fp"] = fp(sum((D(m.get("volume_fp", "0")) for m in self.markets.values()
                                          if series_of(str(m.get("event_ticker", ""))) == ticker), ZERO))
        return web.json_response({"series": series})

    async def _get_series_fee_changes(self, request: web.Request) -> web.StreamResponse:
        wanted = request.query.get("series_ticker")
        historical = request.query.get("show_historical", "false")
        if historical not in ("true", "false"):
            return error(400, "invalid_parameters", "show_historical must be true or false")
        now = self.clock()
        changes = [c for when, c in sorted(self.series_fee_changes, key=lambda c: c[0])
                   if (not wanted or c["series_ticker"] == wanted) and (historical == "true" or when > now)]
        return web.json_response({"series_fee_change_arr": changes})

    async def _get_event_fee_changes(self, request: web.Request) -> web.StreamResponse:
        """Every change, passed or scheduled (assumed: the spec has no show_historical here), oldest first."""
        q = request.query
        limit = page_limit(q.get("limit"), minimum=1)
        if limit is None:
            return error(400, "invalid_parameters", "limit must be between 1 and 1000")
        offset = decode_cursor("event_fee_changes", q["cursor"]) if q.get("cursor") else 0
        if offset is None:
            return error(400, "invalid_parameters", "invalid cursor")
        wanted = q.get("event_ticker")
        changes = [c for _, c in sorted(self.event_fee_changes, key=lambda c: c[0])
                   if not wanted or c["event_ticker"] == wanted]
        following = encode_cursor("event_fee_changes", offset + limit) if offset + limit < len(changes) else ""
        return web.json_response({"event_fee_changes": changes[offset:offset + limit], "cursor": following})

    async def _get_exchange_status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.exchange_status)

    def _trading_active(self, shard: int) -> bool:
        """Whether a shard trades now; the top-level fields are shard 0's."""
        status = self.exchange_status
        for entry in status.get("exchange_index_statuses") or []:
            if entry.get("exchange_index") == shard and shard != 0:
                return bool(entry.get("exchange_active", True) and entry.get("trading_active", True))
        return bool(status.get("exchange_active", True) and status.get("trading_active", True))

    # -- auth -------------------------------------------------------------------------------

    def _auth_problem(self, request: web.Request, required: bool) -> str | None:
        key, stamp, signature = (request.headers.get(h) for h in
                                 ("KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE"))
        if key is None and stamp is None and signature is None:
            return "authentication required" if required else None
        if not (key and stamp and signature):
            return "incomplete authentication headers"
        if key != self.key_id:
            return "unknown API key"
        try:
            stamp_ms = int(stamp)
        except ValueError:
            return "malformed timestamp"
        if abs(self.clock() * 1000 - stamp_ms) > MAX_SKEW_SECONDS * 1000:
            return "request timestamp is too far from the server clock"
        message = f"{stamp}{request.method}{request.raw_path.split('?', 1)[0]}".encode()
        try:
            self.public_key.verify(base64.b64decode(signature, validate=True), message,
                                   padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                               salt_length=padding.PSS.DIGEST_LENGTH),
                                   hashes.SHA256())
        except (InvalidSignature, ValueError, binascii.Error):
            return "invalid signature"
        return None

    def _guard(self, handler: Handler, *, private: bool, method: str, path: str) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            retired = self.retired.get((method, path))
            if retired is not None:  # assumed: answered before auth is checked
                return web.json_response({"error": retired}, status=410)
            problem = self._auth_problem(request, required=private)
            if problem is not None:
                self.auth_failures.append(problem)
                return error(401, "unauthorized", problem)
            self._expire_orders()
            return await handler(request)
        return guarded

    # -- orders -----------------------------------------------------------------------------

    @staticmethod
    def _on_tick(market: dict[str, Any], price: Decimal) -> bool:
        """Strictly between 0 and 1, and on the step of a price range that holds it."""
        if not ZERO < price < ONE:
            return False
        for band in market.get("price_ranges") or []:
            start, end, step = D(band["start"]), D(band["end"]), D(band["step"])
            if start <= price <= end and (price - start) % step == 0:
                return True
        return False

    @staticmethod
    def _book_place(order: dict[str, Any]) -> tuple[str, Decimal]:
        """Where an order rests: a bid on the YES book at its price, an ask on the NO book at 1 - price."""
        if order["book_side"] == "bid":
            return "yes", D(order["yes_price_dollars"])
        return "no", D(order["no_price_dollars"])

    def _take_from_book(self, order: dict[str, Any], count: Decimal) -> None:
        side, price = self._book_place(order)
        levels = self._book(order["ticker"]).side(side)
        levels[price] = levels.get(price, ZERO) - count
        if levels[price] <= 0:
            del levels[price]

    def _now_iso(self) -> str:
        return iso(datetime.fromtimestamp(self.clock(), timezone.utc))

    def _cancel_resting(self, order: dict[str, Any]) -> Decimal:
        """Cancel what rests of an order; returns the count taken off the book."""
        reduced = D(order["remaining_count_fp"])
        self._take_from_book(order, reduced)
        order.update(status="canceled", remaining_count_fp="0.00", last_update_time=self._now_iso())
        self._expiries.pop(order["order_id"], None)
        return reduced

    def _expire_orders(self) -> None:
        """Resting orders past their expiration_time are cancelled (assumed: status "canceled")."""
        now = self.clock()
        for order_id, when in list(self._expiries.items()):
            order = self.orders.get(order_id)
            if order is None or order["status"] != "resting":
                self._expiries.pop(order_id, None)
            elif when <= now:
                self._cancel_resting(order)

    def _own_resting(self, ticker: str, side: str, level: Decimal) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["ticker"] == ticker and o["status"] == "resting"
                and self._book_place(o) == (side, level)]

    def _match(self, ticker: str, book_side: str, price: Decimal, count: Decimal,
               stp: str) -> tuple[list[Fill], list[dict[str, Any]], bool]:
        """Plan a taker's fills (best level first), the user's resting orders STP cancels, and whether STP stopped it.

        A bid lifts NO bids at >= 1 - price (trading YES at 1 - level); an ask hits YES bids at >= price.
        Assumed for self-trade prevention: the user's own resting orders sit first in their level's queue,
        so taker_at_cross stops at the first level holding one; maker cancels them and keeps matching.
        """
        other = "no" if book_side == "bid" else "yes"
        levels = self._book(ticker).side(other)
        crossing = sorted((q for q in levels if (ONE - q <= price if book_side == "bid" else q >= price)),
                          reverse=True)
        fills: list[Fill] = []
        cancelled: list[dict[str, Any]] = []
        need = count
        for level in crossing:
            own = self._own_resting(ticker, other, level)
            available = levels[level]
            if own:
                if stp == "taker_at_cross":
                    return fills, cancelled, True
                cancelled.extend(own)
                available -= sum((D(o["remaining_count_fp"]) for o in own), ZERO)
            take = min(max(available, ZERO), need)
            if take > 0:
                fills.append(Fill(level, take, ONE - level if book_side == "bid" else level))
                need -= take
            if need == 0:
                break
        return fills, cancelled, False

    async def _retired_v1(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": V1_RETIRED}, status=410)

    def _parse_v2(self, body: dict[str, Any]) -> dict[str, Any] | web.Response:
        """The order's terms, or the refusal, in the order the exchange checks (assumed past the spec's own rules)."""
        ticker = body["ticker"]
        market = self.markets.get(ticker)
        if market is None:  # assumed code (a public client's journal); the spec lists no 404 here
            return error(404, "market_not_found", "market not found")
        shard = market.get("exchange_index", 0)
        asked = body.get("exchange_index")
        if asked is not None and asked not in (-1, shard):  # routed to a shard that has no such market (assumed)
            return error(404, "market_not_found", "market not found")
        client_order_id = body.get("client_order_id") or ""
        if client_order_id and client_order_id in self.client_ids:
            return error(409, "order_already_exists", "order already exists")
        status = self._status(ticker)
        if status == "inactive" or not self._trading_active(shard):  # paused; a closed shard is assumed the same
            return error(409, "trading_is_paused", "trading is paused")
        if status != "active":
            return error(400, "market_closed", "market closed")
        text = body["price"]
        try:
            price = D(text) if PRICE_TEXT.fullmatch(text) else D("NaN")
        except InvalidOperation:
            price = D("NaN")
        if not price.is_finite() or not self._on_tick(market, price):
            return error(400, "invalid_price", "invalid price",
                         "price must have 2-4 decimals, lie strictly between 0 and 1 and sit on the market's tick")
        text = body["count"]
        count = D(text) if COUNT_TEXT.fullmatch(text) else ZERO
        if count < CENT:
            return error(400, "invalid_order", "invalid order", "count must be at least 0.01 with at most 2 decimals")
        if ticker in self.whole_contracts and count != count.to_integral_value():  # assumed
            return error(400, "invalid_order", "invalid order", "this market trades whole contracts only")
        tif = body["time_in_force"]
        if body.get("reduce_only") and tif != "immediate_or_cancel":
            return error(400, "invalid_order", "invalid order", "reduce_only requires immediate_or_cancel")
        if body.get("expiration_time") is not None and tif == "immediate_or_cancel":  # assumed code
            return error(400, "invalid_order", "invalid order", "expiration_time cannot be used with IOC")
        side = body["side"]
        held = self.positions[ticker].position if ticker in self.positions else ZERO
        reducible = max(-held, ZERO) if side == "bid" else max(held, ZERO)  # a bid closes NO, an ask closes YES
        max_fill = count
        if body.get("reduce_only"):  # capped by the position it reduces (assumed: fills nothing when none)
            max_fill = min(count, reducible)
        fills, _, _ = self._match(ticker, side, price, max_fill, body["self_trade_prevention_type"])
        if body.get("post_only") and fills:  # assumed: the order_errors doc's example body
            return error(400, "invalid_order", "invalid order", "post only cross")
        own_price = price if side == "bid" else ONE - price  # what one contract costs at the limit
        opening = max_fill - min(max_fill, reducible)  # assumed: closing held contracts needs no collateral
        if opening * own_price + self.taker_fee(ticker, opening, price) > self.balance:
            return error(400, "insufficient_balance", "insufficient balance")
        if body.get("reduce_only") and not self.reduce_only_keeps_count and max_fill > 0:
            count = max_fill
        return {"ticker": ticker, "client_order_id": client_order_id, "side": side, "price": price,
                "count": count, "max_fill": max_fill, "tif": tif, "stp": body["self_trade_prevention_type"],
                "shard": shard}

    async def _post_order_v2(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if self.order_refusals:  # a refusal the test scripted (say, a code the exchange introduced): nothing done
            status, code, message = self.order_refusals.pop(0)
            return error(status, code, message)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return bad_request(f"invalid JSON: {exc}")
        if not isinstance(body, dict):
            return bad_request("the body must be a JSON object")
        allowed = schema("CreateOrderV2Request")["properties"]
        unknown = sorted(set(body) - set(allowed))
        if unknown:  # the decoder refuses fields it does not know (DisallowUnknownFields)
            return bad_request(f'json: unknown field "{unknown[0]}"')
        problems = [p for p in kalshi_errors(body, "CreateOrderV2Request") if "is a required property" not in p]
        if problems:  # wrong types and enum values never reach the business rules
            return bad_request(problems[0])
        if not body.get("ticker"):
            return error(400, "missing_parameters", "missing parameters", "ticker is required")
        for name in ("side", "count", "price", "time_in_force", "self_trade_prevention_type"):
            if name not in body:  # side, count, price: invalid_order (order_errors doc); the other two assumed
                return error(400, "invalid_order", "invalid order", f"{name} is required")
        parsed = self._parse_v2(body)
        if isinstance(parsed, web.Response):
            return parsed
        order, fills = self._execute_v2(parsed, body)
        response: dict[str, Any] = {"order_id": order["order_id"]}
        if parsed["client_order_id"]:
            response["client_order_id"] = parsed["client_order_id"]
        filled = sum((f.count for f in fills), ZERO)
        response.update(fill_count=fp(filled), remaining_count=order["remaining_count_fp"],
                        ts_ms=int(self.clock() * 1000))
        if filled > 0:  # YES-book terms, as the V2 endpoint quotes everything; the fee is per contract (assumed)
            response["average_fill_price"] = dollars(
                (sum((f.count * f.yes_price for f in fills), ZERO) / filled).quantize(MICRO))
            response["average_fee_paid"] = dollars((D(order["taker_fees_dollars"]) / filled).quantize(MICRO))
        return web.json_response(response, status=201)

    def _execute_v2(self, terms: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], list[Fill]]:
        """Take liquidity as a taker, honouring time in force and self-trade prevention; store the Order."""
        ticker, side, price, count, tif = terms["ticker"], terms["side"], terms["price"], terms["count"], terms["tif"]
        fills, stp_cancelled, stopped = self._match(ticker, side, price, terms["max_fill"], terms["stp"])
        if tif == "fill_or_kill" and sum((f.count for f in fills), ZERO) < count:
            fills, stp_cancelled = [], []  # killed: all or nothing, the book untouched
        for own in stp_cancelled:
            self._cancel_resting(own)
        levels = self._book(ticker).side("no" if side == "bid" else "yes")
        filled = cost = fees = ZERO
        for fill in fills:
            levels[fill.level] -= fill.count
            if levels[fill.level] <= 0:
                del levels[fill.level]
            own = fill.count * (fill.yes_price if side == "bid" else ONE - fill.yes_price)  # own outcome terms
            fee = self.taker_fee(ticker, fill.count, fill.yes_price)  # rounded up per fill
            self._trade(ticker, side == "bid", fill.count, own, fee)
            filled += fill.count
            cost += own
            fees += fee
        remaining = count - filled
        order_id = str(uuid.uuid4())
        if remaining == 0:
            status = "executed"
        elif tif == "good_till_canceled" and not stopped:
            status = "resting"
        else:  # IOC/FOK remainder, or a taker stopped by self-trade prevention: cancelled
            status, remaining = "canceled", ZERO
        now = self._now_iso()
        expiration = body.get("expiration_time")
        order: dict[str, Any] = {
            "order_id": order_id, "user_id": "fake-user", "client_order_id": terms["client_order_id"],
            "ticker": ticker, "outcome_side": "yes" if side == "bid" else "no", "book_side": side,
            "type": "limit", "status": status,
            "yes_price_dollars": dollars(price), "no_price_dollars": dollars(ONE - price),
            "fill_count_fp": fp(filled), "remaining_count_fp": fp(remaining), "initial_count_fp": fp(count),
            "taker_fees_dollars": dollars(fees), "maker_fees_dollars": "0.0000",
            "taker_fill_cost_dollars": dollars(cost), "maker_fill_cost_dollars": "0.0000",
            "created_time": now, "last_update_time": now,
            "expiration_time": iso(datetime.fromtimestamp(expiration, timezone.utc)) if expiration else None,
            "self_trade_prevention_type": terms["stp"], "order_group_id": body.get("order_group_id"),
            "cancel_order_on_pause": bool(body.get("cancel_order_on_pause")),
            "subaccount_number": body.get("subaccount", 0), "exchange_index": terms["shard"],
        }
        if self.legacy_order_fields:  # deprecated; a V2 ask reads back side=yes, action=sell (public client test)
            order.update(side="yes", action="buy" if side == "bid" else "sell")
        if status == "resting":
            book_side, at = self._book_place(order)
            mine = self._book(ticker).side(book_side)
            mine[at] = mine.get(at, ZERO) + remaining
            if expiration:
                self._expiries[order_id] = float(expiration)
        self.orders[order_id] = order
        if terms["client_order_id"]:
            self.client_ids[terms["client_order_id"]] = order_id
        return order, fills

    def fill_resting(self, order_id: str, count: str | Decimal, *, price: str | Decimal | None = None
                     ) -> dict[str, Any]:
        """A counterparty takes `count` of a resting order, which trades as the maker.

        `price` is the YES trade price (default the order's own); the maker never trades worse than its limit.
        Fill counts, maker cost (in the order's own outcome terms) and maker fees, the position, the balance,
        the book and the status (executed when nothing remains) all follow.
        """
        order = self.orders[order_id]
        assert order["status"] == "resting", f"order {order_id} is {order['status']}, not resting"
        count = D(str(count))
        remaining = D(order["remaining_count_fp"])
        assert ZERO < count <= remaining, f"cannot fill {count} of {remaining} resting"
        limit = D(order["yes_price_dollars"])
        yes_price = limit if price is None else D(str(price))
        bid = order["book_side"] == "bid"
        assert (yes_price <= limit) if bid else (yes_price >= limit), "a maker never trades worse than its limit"
        ticker = order["ticker"]
        cost = count * (yes_price if bid else ONE - yes_price)
        fee = self.maker_fee(ticker, count, yes_price)
        self._take_from_book(order, count)
        left = remaining - count
        order.update(fill_count_fp=fp(D(order["fill_count_fp"]) + count), remaining_count_fp=fp(left),
                     maker_fill_cost_dollars=dollars(D(order["maker_fill_cost_dollars"]) + cost),
                     maker_fees_dollars=dollars(D(order["maker_fees_dollars"]) + fee),
                     status="executed" if left == 0 else "resting", last_update_time=self._now_iso())
        if left == 0:
            self._expiries.pop(order_id, None)
        self._trade(ticker, bid, count, cost, fee)
        return order

    def _trade(self, ticker: str, bid: bool, count: Decimal, cost: Decimal, fee: Decimal) -> None:
        """One fill of `count` contracts on the user's account: `cost` paid for the leg bought (its own outcome's
        terms), `fee` on top. Contracts of the other side held are closed first: each closed pair pays $1 back
        and takes its average-cost share of the position's cost with it; the rest opens (or adds to) the side
        bought. Assumed beyond the docs' netting: the pair pays at once and the cost share is pro rata."""
        position = self.positions[ticker]
        held = max(-position.position, ZERO) if bid else max(position.position, ZERO)  # of the other side
        closing = min(count, held)
        price = cost / count
        if closing > 0:
            left = (position.cost * (held - closing) / held).quantize(MICRO)
            basis = position.cost - left
            self.balance += closing  # the netted pairs pay out
            position.realized += closing - closing * price - basis
            position.cost = left
        position.cost += (count - closing) * price
        position.position += count if bid else -count
        position.fees += fee
        position.traded += cost
        self.balance -= cost + fee

    async def _cancel_order_v2(self, request: web.Request) -> web.StreamResponse:
        """Cancel what rests. Routing: exchange_index when given (not -1), else market_ticker's shard, else shard 0."""
        q = request.query
        asked = query_int(q.get("exchange_index"))
        if asked == "bad":
            return bad_request("exchange_index must be an integer")
        market_ticker = q.get("market_ticker")
        if asked is not None and asked != -1:
            shard = asked
        elif market_ticker:
            market = self.markets.get(market_ticker)
            if market is None:  # assumed: no market to route by, so no order found
                return error(404, "not_found", "order not found")
            shard = market.get("exchange_index", 0)
        elif asked == -1:  # assumed: auto-routing demanded without the ticker it needs
            return error(400, "missing_parameters", "missing parameters", "market_ticker is required to auto-route")
        else:
            shard = 0
        order = self.orders.get(request.match_info["order_id"])
        if order is None or order.get("exchange_index", 0) != shard or order["status"] != "resting":
            return error(404, "not_found", "order not found")  # assumed for a finished order: "already gone"
        reduced = self._cancel_resting(order)
        response: dict[str, Any] = {"order_id": order["order_id"]}
        if order["client_order_id"]:
            response["client_order_id"] = order["client_order_id"]
        response.update(reduced_by=fp(reduced), ts_ms=int(self.clock() * 1000))
        return web.json_response(response)

    async def _get_orders(self, request: web.Request) -> web.StreamResponse:
        return self._orders_page(request, self.orders, "orders")

    async def _get_historical_orders(self, request: web.Request) -> web.StreamResponse:
        return self._orders_page(request, self.historical_orders, "historical")

    def _orders_page(self, request: web.Request, source: dict[str, dict[str, Any]], kind: str) -> web.Response:
        q = request.query
        limit = page_limit(q.get("limit"), minimum=1)
        if limit is None:
            return error(400, "invalid_parameters", "limit must be between 1 and 1000")
        offset = decode_cursor(kind, q["cursor"]) if q.get("cursor") else 0
        if offset is None:
            return error(400, "invalid_parameters", "invalid cursor")
        shard = query_int(q.get("exchange_index"))
        if shard == "bad" or (isinstance(shard, int) and shard < 0):
            return error(400, "invalid_parameters", "exchange_index must be an integer >= 0")
        status, ticker = q.get("status"), q.get("ticker")
        matching = [o for o in reversed(source.values())  # newest first
                    if (not ticker or o["ticker"] == ticker) and (not status or o["status"] == status)
                    and (shard is None or o.get("exchange_index", 0) == shard)]
        size = min(limit, self.orders_page_cap)
        following = encode_cursor(kind, offset + size) if offset + size < len(matching) else ""
        return web.json_response({"orders": matching[offset:offset + size], "cursor": following})

    async def _get_order(self, request: web.Request) -> web.StreamResponse:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return error(404, "not_found", "order not found")
        return web.json_response({"order": order})

    # -- portfolio --------------------------------------------------------------------------

    async def _get_balance(self, request: web.Request) -> web.StreamResponse:
        exposure = sum((p.cost for p in self.positions.values()), ZERO)
        cents = int((self.balance * 100).to_integral_value(rounding=ROUND_FLOOR))
        return web.json_response({"balance": cents, "balance_dollars": dollars(self.balance),
                                  "portfolio_value": int(exposure * 100), "updated_ts": int(self.clock())})

    def _shard_of(self, ticker: str) -> int:
        market = self.markets.get(ticker) or self.historical_markets.get(ticker) or {}
        return int(market.get("exchange_index", 0))

    async def _get_positions(self, request: web.Request) -> web.StreamResponse:
        ticker = request.query.get("ticker")
        rows, events = [], defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO])
        for name, p in self.positions.items():
            if ticker and name != ticker:
                continue
            rows.append({"ticker": name, "exchange_index": self._shard_of(name),
                         "total_traded_dollars": dollars(p.traded), "position_fp": fp(p.position),
                         "market_exposure_dollars": dollars(p.cost), "realized_pnl_dollars": dollars(p.realized),
                         "fees_paid_dollars": dollars(p.fees), "last_updated_ts": iso(self.now)})
            market = self.markets.get(name) or self.historical_markets.get(name) or {}
            event = events[str(market.get("event_ticker") or name.rsplit("-", 1)[0])]
            event[0] += p.cost
            event[1] += abs(p.position)
            event[2] += p.fees
            event[3] += p.realized
        return web.json_response({
            "market_positions": rows, "cursor": "",
            "event_positions": [{"event_ticker": e, "total_cost_dollars": dollars(c), "total_cost_shares_fp": fp(n),
                                 "event_exposure_dollars": dollars(c), "realized_pnl_dollars": dollars(r),
                                 "fees_paid_dollars": dollars(f)} for e, (c, n, f, r) in events.items()]})

    async def _get_settlements(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"settlements": self.settlements, "cursor": ""})

    # -- the app ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        application = web.Application()
        # Fixed paths before the templated ones that would swallow them (/markets/{ticker}, /series/{ticker}).
        public = [
            ("GET", "/markets", self._get_markets), ("GET", "/markets/orderbooks", self._get_orderbooks),
            ("GET", "/markets/{ticker}/orderbook", self._get_orderbook), ("GET", "/markets/{ticker}", self._get_market),
            ("GET", "/historical/markets/{ticker}", self._get_historical_market),
            ("GET", "/historical/markets/{ticker}/candlesticks", self._get_historical_candlesticks),
            ("GET", "/historical/cutoff", self._get_historical_cutoff),
            ("GET", "/series/{series_ticker}/markets/{ticker}/candlesticks", self._get_candlesticks),
            ("GET", "/series/fee_changes", self._get_series_fee_changes),
            ("GET", "/series/{series_ticker}", self._get_series),
            ("GET", "/events/fee_changes", self._get_event_fee_changes),
            ("GET", "/exchange/status", self._get_exchange_status),
        ]
        private = [
            ("POST", "/portfolio/orders", self._retired_v1), ("GET", "/portfolio/orders", self._get_orders),
            ("GET", "/portfolio/orders/{order_id}", self._get_order),
            ("DELETE", "/portfolio/orders/{order_id}", self._retired_v1),
            ("POST", "/portfolio/events/orders", self._post_order_v2),
            ("DELETE", "/portfolio/events/orders/{order_id}", self._cancel_order_v2),
            ("GET", "/portfolio/balance", self._get_balance), ("GET", "/portfolio/positions", self._get_positions),
            ("GET", "/portfolio/settlements", self._get_settlements),
            ("GET", "/historical/orders", self._get_historical_orders),
        ]
        for routes, is_private in ((public, False), (private, True)):
            for method, path, handler in routes:
                application.router.add_route(
                    method, PREFIX + path, self._guard(handler, private=is_private, method=method, path=path))
        return application
