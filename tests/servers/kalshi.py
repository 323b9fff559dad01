"""A fake Kalshi Trade API v2 on 127.0.0.1, speaking the 2026 wire format and checking what the real one checks.

    fake = FakeKalshi(public_key, key_id="test-key")
    fake.generate(10_000)
    async with fake.serve() as server:
        client = KalshiClient(fake.base_url, ...)

What it enforces, as the real exchange does (/work/shared/contracts/README.md, pinned spec v3.13.0):
- RSA-PSS signatures checked with the PUBLIC key over f"{ts}{METHOD}{path}" (path with the
  /trade-api/v2 prefix, no query); timestamps more than 30 s from its clock are refused.
  Portfolio endpoints require auth; market data accepts unsigned requests but refuses a
  bad signature when the headers are present. Failures are 401 {"error":{"code":"unauthorized",...}}.
- GET /markets paginates with an opaque cursor ("" on the last page), honours limit (max
  1000), status (the filter says "open", objects say "active") and mve_filter.
- Orders are validated against CreateOrderRequest and the business rules (one price field,
  on the tick, whole counts, known ticker, duplicate client_order_id -> 409), then executed
  as a taker against the book: fee ceil(rate * C * P * (1 - P)) to the cent per fill.

Fault injection is LoopbackServer's (`server.faults`); `fault_on_page` queues faults for a
given page of GET /markets just before that page is requested, since pages come in order.
Assumptions that the spec does not settle are marked "assumed" below.
"""

from __future__ import annotations

import base64
import binascii
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

from pipeline.config import FeesConfig

from ..contracts import kalshi_errors
from .base import FaultKind, LoopbackServer

PREFIX = "/trade-api/v2"
D = Decimal
ONE, ZERO, CENT = D(1), D(0), D("0.01")
MAX_SKEW_SECONDS = 30.0
PRICE_FIELDS = ("yes_price", "no_price", "yes_price_dollars", "no_price_dollars")
# GET /markets `status` filter -> the lifecycle states market objects carry.
STATUS_FILTER = {"unopened": {"initialized"}, "open": {"active"}, "paused": {"inactive"}, "closed": {"closed"},
                 "settled": {"determined", "finalized", "amended", "disputed"}}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def dollars(value: Decimal) -> str:
    return f"{value.quantize(D('0.0001'))}"


def fp(value: Decimal) -> str:
    return f"{value.quantize(CENT)}"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "service": "exchange"}}, status=status)


def fault_body(status: int) -> Any:
    """Bodies for LoopbackServer's injected faults: a 429 is a bare string and has no Retry-After."""
    if status == 429:
        return {"error": "too many requests"}
    return {"error": {"code": "internal_server_error", "message": "internal server error", "service": "exchange"}}


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


@dataclass
class Book:
    """Bids only, as Kalshi keeps them: price -> contracts on each side."""

    yes: dict[Decimal, Decimal] = field(default_factory=dict)
    no: dict[Decimal, Decimal] = field(default_factory=dict)

    def side(self, name: str) -> dict[Decimal, Decimal]:
        return self.yes if name == "yes" else self.no


@dataclass
class Position:
    position: Decimal = ZERO  # + YES, - NO
    cost: Decimal = ZERO
    fees: Decimal = ZERO
    traded: Decimal = ZERO


class FakeKalshi:
    def __init__(self, public_key: rsa.RSAPublicKey, key_id: str = "test-key-id", *,
                 clock: Callable[[], float] = time.time, balance: Decimal = D("10000"),
                 fees: FeesConfig | None = None, now: datetime | None = None) -> None:
        self.public_key = public_key
        self.key_id = key_id
        self.clock = clock
        self.balance = balance
        self.fees = fees or FeesConfig()
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
            "previous_price_dollars": "0.0000", "volume_24h_fp": "0.00", "liquidity_dollars": "0.0000",
            "open_interest_fp": "0.00", "result": "", "can_close_early": True, "fractional_trading_enabled": False,
            "expiration_value": "", "rules_primary": "Resolves Yes if the thing happens.",
            "rules_secondary": "Fake market for tests.", "price_level_structure": "linear_cent",
            "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
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
                   market_type: str = "binary") -> dict[str, Any]:
        """A market with an explicit book: `yes`/`no` are bid levels [(price, count)]; quotes follow the book."""
        market = self._template()
        market.update(ticker=ticker, event_ticker=ticker.rsplit("-", 1)[0], status=status, market_type=market_type,
                      title=title or f"Fake market {ticker}", volume_fp=fp(D(volume)), last_price_dollars="0.0000")
        if close_time is not None:
            market["close_time"] = iso(close_time)
        if tick != "0.01":
            market["price_level_structure"] = "deci_cent"
            market["price_ranges"] = [{"start": "0.0000", "end": "1.0000", "step": dollars(D(tick))}]
        if mve_collection:
            market["mve_collection_ticker"] = mve_collection
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

    def add_settlement(self, ticker: str, result: str = "yes", yes_count: str = "10", yes_cost: str = "4.20",
                       fee: str = "0.17") -> None:
        self.settlements.append({
            "ticker": ticker, "event_ticker": ticker.rsplit("-", 1)[0], "market_result": result,
            "yes_count_fp": fp(D(yes_count)), "yes_total_cost_dollars": dollars(D(yes_cost)),
            "no_count_fp": "0.00", "no_total_cost_dollars": "0.0000",
            "revenue": int(D(yes_count) * 100) if result == "yes" else 0,
            "settled_time": iso(self.now), "fee_cost": dollars(D(fee)), "value": 100 if result == "yes" else 0,
        })

    def settle_market(self, ticker: str, result: str, *, value: str | None = None, historical: bool = False) -> None:
        """Finalize a market as Kalshi does: result set, positions paid out and zeroed, a settlement row.

        `historical` moves it past the historical cutoff: only GET /historical/markets/{ticker} has it then.
        """
        market = self.markets[ticker]
        payout = {"yes": ONE, "no": ZERO}.get(result, D(value or "0"))
        market.update(status="finalized", result=result, settlement_value_dollars=dollars(payout),
                      settlement_ts=iso(self.now), expiration_value=result)
        held = self.positions.pop(ticker, None)
        if held is not None and held.position:
            count = abs(held.position)
            paid = count * (payout if held.position > 0 else ONE - payout)
            self.balance += paid
            self.add_settlement(ticker, result, yes_count=str(count if held.position > 0 else 0),
                                yes_cost=str(held.cost if held.position > 0 else 0), fee=str(held.fees))
        if historical:
            self.historical_markets[ticker] = self.markets.pop(ticker)

    def archive(self, order_id: str) -> None:
        """Move a finished order past the historical cutoff: only GET /historical/orders shows it now."""
        self.historical_orders[order_id] = self.orders.pop(order_id)

    def by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        order_id = self.client_ids.get(client_order_id)
        return self.orders.get(order_id or "") or self.historical_orders.get(order_id or "")

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

    def market_view(self, ticker: str) -> dict[str, Any]:
        """The market object as served: quotes follow the book once it exists (trades move them)."""
        market = self.markets[ticker]
        book = self.books.get(ticker)
        if book is None:
            return market
        best_yes = max(book.yes) if book.yes else None
        best_no = max(book.no) if book.no else None
        return {**market,
                "yes_bid_dollars": dollars(best_yes) if best_yes is not None else "0.0000",
                "yes_bid_size_fp": fp(book.yes[best_yes]) if best_yes is not None else "0.00",
                "yes_ask_dollars": dollars(ONE - best_no) if best_no is not None else "1.0000",
                "yes_ask_size_fp": fp(book.no[best_no]) if best_no is not None else "0.00",
                "no_bid_dollars": dollars(best_no) if best_no is not None else "0.0000",
                "no_ask_dollars": dollars(ONE - best_yes) if best_yes is not None else "1.0000"}

    def _listing(self, status: str, mve: str) -> list[str]:
        wanted = STATUS_FILTER.get(status)
        out = []
        for ticker, market in self.markets.items():
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
        listing = self._listing(status, mve)
        page = listing[offset:offset + limit]
        following = encode_cursor("markets", offset + limit) if offset + limit < len(listing) else ""
        if request.transport is None:  # a timed-out request finishing late: the client never sees it
            return web.Response(status=499)
        self.page_fetches[cursor] += 1
        if following and self.server is not None:  # arm the next page's faults now that it is next
            for kind in self._page_faults.pop((offset + limit) // limit, []):
                self.server.faults.add(kind, f"{PREFIX}/markets", "GET")
        return web.json_response({"markets": [self.market_view(t) for t in page], "cursor": following})

    async def _get_market(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["ticker"]
        if ticker not in self.markets:  # past the historical cutoff too: the real API says 404 here
            return error(404, "not_found", "market not found")
        return web.json_response({"market": self.market_view(ticker)})

    async def _get_historical_market(self, request: web.Request) -> web.StreamResponse:
        market = self.historical_markets.get(request.match_info["ticker"])
        if market is None:
            return error(404, "not_found", "market not found")
        return web.json_response({"market": market})

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
        book = self._book(ticker)

        def levels(side: dict[Decimal, Decimal]) -> list[list[str]]:
            best_first = sorted(side.items(), reverse=True)[:depth or None]
            return [[dollars(p), fp(s)] for p, s in reversed(best_first)]  # ascending, best last, as Kalshi sends

        return web.json_response({"orderbook_fp": {"yes_dollars": levels(book.yes), "no_dollars": levels(book.no)}})

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

    def _guard(self, handler: Handler, *, private: bool) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            problem = self._auth_problem(request, required=private)
            if problem is not None:
                self.auth_failures.append(problem)
                return error(401, "unauthorized", problem)
            return await handler(request)
        return guarded

    # -- orders -----------------------------------------------------------------------------

    def _fee(self, ticker: str, count: Decimal, price: Decimal) -> Decimal:
        rate = self.fees.kalshi_series_rates.get(ticker.split("-", 1)[0], self.fees.kalshi_taker_rate)
        raw = rate * count * price * (ONE - price)
        return (raw / CENT).to_integral_value(rounding=ROUND_CEILING) * CENT

    @staticmethod
    def _on_tick(market: dict[str, Any], price: Decimal) -> bool:
        for band in market.get("price_ranges") or []:
            start, end, step = D(band["start"]), D(band["end"]), D(band["step"])
            if start <= price <= end and (price - start) % step == 0:
                return step <= price <= ONE - step
        return False

    def _parse_order(self, body: dict[str, Any]) -> tuple[str, Decimal, Decimal, str] | web.Response:
        """(side, limit price in the side's terms, count, time in force), or the refusal."""
        market = self.markets.get(body["ticker"])
        if market is None:
            return error(404, "market_not_found", "market not found")
        if not body.get("client_order_id"):  # assumed: the 2026 create-order flow needs it
            return error(400, "missing_parameters", "client_order_id is required")
        if body["client_order_id"] in self.client_ids:  # assumed code; the spec gives 409 Conflict
            return error(409, "order_already_exists", "an order with this client_order_id already exists")
        if body["action"] != "buy":
            return error(400, "invalid_order", "this fake models buy orders only")
        given = [f for f in PRICE_FIELDS if body.get(f) is not None]
        if len(given) != 1:
            return error(400, "invalid_order", "exactly one of yes_price, no_price, yes_price_dollars, "
                                               "no_price_dollars is required")
        try:
            price = D(body[given[0]]) / 100 if given[0] in ("yes_price", "no_price") else D(body[given[0]])
        except (InvalidOperation, TypeError):
            price = D("NaN")
        if not price.is_finite():
            return error(400, "invalid_price", "price is not a decimal")
        side = body["side"]
        if not given[0].startswith(side):  # a YES order priced as NO: same order, other side's terms
            price = ONE - price
        if not self._on_tick(market, price):
            return error(400, "invalid_price", "price is outside the market's range or off its tick")
        counts = []
        if body.get("count") is not None:
            counts.append(D(body["count"]))
        if body.get("count_fp") is not None:
            try:
                counts.append(D(body["count_fp"]))
            except InvalidOperation:
                return error(400, "invalid_order", "count_fp is not a number")
        if not counts or len(set(counts)) != 1:
            return error(400, "invalid_order", "give count or count_fp (equal when both are given)")
        count = counts[0]
        if count < 1 or count != count.quantize(CENT) or (
                not market.get("fractional_trading_enabled") and count != count.to_integral_value()):
            return error(400, "invalid_order", "count must be a whole number of contracts, at least 1")
        if market.get("status") != "active":
            return error(400, "market_closed", "the market is not open for trading")
        if count * price + self._fee(body["ticker"], count, price) > self.balance:
            return error(400, "insufficient_balance", "insufficient balance")
        return side, price, count, body.get("time_in_force") or "good_till_canceled"

    async def _post_order(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        problems = kalshi_errors(body, "CreateOrderRequest") if isinstance(body, dict) else ["not a JSON object"]
        if problems:  # an unparseable body answers at the top level, not under "error"
            return web.json_response({"code": "bad_request", "message": "bad request", "details": problems[0]},
                                     status=400)
        parsed = self._parse_order(body)
        if isinstance(parsed, web.Response):
            return parsed
        order = self._execute(body["ticker"], body["client_order_id"], *parsed)
        return web.json_response({"order": order}, status=201)

    def _execute(self, ticker: str, client_order_id: str, side: str, price: Decimal, count: Decimal,
                 tif: str) -> dict[str, Any]:
        """Take liquidity as a taker: buying `side` at <= price lifts the other side's bids at >= 1 - price."""
        book = self._book(ticker)
        other = book.side("no" if side == "yes" else "yes")
        takeable = [(q, size) for q, size in sorted(other.items(), reverse=True) if ONE - q <= price]
        if tif == "fill_or_kill" and sum((s for _, s in takeable), ZERO) < count:
            takeable = []  # killed: all or nothing
        filled = cost = fees = ZERO
        for q, size in takeable:
            take = min(size, count - filled)
            if take <= 0:
                break
            fill_price = ONE - q
            filled += take
            cost += take * fill_price
            fees += self._fee(ticker, take, fill_price)  # Kalshi's fee, rounded up per fill
            other[q] = size - take
            if other[q] == 0:
                del other[q]
        remaining = count - filled
        if remaining == 0:
            status = "executed"
        elif tif == "good_till_canceled":
            status = "resting"
            mine = book.side(side)
            mine[price] = mine.get(price, ZERO) + remaining
        else:
            status, remaining = "canceled", ZERO
        self.balance -= cost + fees
        position = self.positions[ticker]
        position.position += filled if side == "yes" else -filled
        position.cost += cost
        position.fees += fees
        position.traded += cost
        now = iso(datetime.fromtimestamp(self.clock(), timezone.utc))
        order_id = str(uuid.uuid4())
        yes_price = price if side == "yes" else ONE - price
        order = {
            "order_id": order_id, "user_id": "fake-user", "client_order_id": client_order_id, "ticker": ticker,
            "side": side, "action": "buy", "type": "limit", "status": status,
            "yes_price_dollars": dollars(yes_price), "no_price_dollars": dollars(ONE - yes_price),
            "fill_count_fp": fp(filled), "remaining_count_fp": fp(remaining), "initial_count_fp": fp(count),
            "taker_fees_dollars": dollars(fees), "maker_fees_dollars": "0.0000",
            "taker_fill_cost_dollars": dollars(cost), "maker_fill_cost_dollars": "0.0000",
            "created_time": now, "last_update_time": now, "expiration_time": None,
            "cancel_order_on_pause": False, "subaccount_number": 0,
        }
        self.orders[order_id] = order
        self.client_ids[client_order_id] = order_id
        return order

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
        status, ticker = q.get("status"), q.get("ticker")
        matching = [o for o in reversed(source.values())  # newest first
                    if (not ticker or o["ticker"] == ticker) and (not status or o["status"] == status)]
        size = min(limit, self.orders_page_cap)
        following = encode_cursor(kind, offset + size) if offset + size < len(matching) else ""
        return web.json_response({"orders": matching[offset:offset + size], "cursor": following})

    async def _get_order(self, request: web.Request) -> web.StreamResponse:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return error(404, "not_found", "order not found")
        return web.json_response({"order": order})

    async def _cancel_order(self, request: web.Request) -> web.StreamResponse:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return error(404, "not_found", "order not found")
        if order["status"] != "resting":  # assumed code
            return error(400, "invalid_order", "the order is not resting")
        reduced = D(order["remaining_count_fp"])
        side = order["side"]
        price = D(order[f"{side}_price_dollars"])
        mine = self._book(order["ticker"]).side(side)
        mine[price] = mine.get(price, ZERO) - reduced
        if mine[price] <= 0:
            del mine[price]
        order.update(status="canceled", remaining_count_fp="0.00",
                     last_update_time=iso(datetime.fromtimestamp(self.clock(), timezone.utc)))
        return web.json_response({"order": order, "reduced_by_fp": fp(reduced)})

    # -- portfolio --------------------------------------------------------------------------

    async def _get_balance(self, request: web.Request) -> web.StreamResponse:
        exposure = sum((p.cost for p in self.positions.values()), ZERO)
        cents = int((self.balance * 100).to_integral_value(rounding=ROUND_FLOOR))
        return web.json_response({"balance": cents, "balance_dollars": dollars(self.balance),
                                  "portfolio_value": int(exposure * 100), "updated_ts": int(self.clock())})

    async def _get_positions(self, request: web.Request) -> web.StreamResponse:
        ticker = request.query.get("ticker")
        rows, events = [], defaultdict(lambda: [ZERO, ZERO, ZERO])
        for name, p in self.positions.items():
            if ticker and name != ticker:
                continue
            rows.append({"ticker": name, "total_traded_dollars": dollars(p.traded), "position_fp": fp(p.position),
                         "market_exposure_dollars": dollars(p.cost), "realized_pnl_dollars": "0.0000",
                         "resting_orders_count": 0, "fees_paid_dollars": dollars(p.fees),
                         "last_updated_ts": iso(self.now)})
            event = events[name.rsplit("-", 1)[0]]
            event[0] += p.cost
            event[1] += abs(p.position)
            event[2] += p.fees
        return web.json_response({
            "market_positions": rows, "cursor": "",
            "event_positions": [{"event_ticker": e, "total_cost_dollars": dollars(c), "total_cost_shares_fp": fp(n),
                                 "event_exposure_dollars": dollars(c), "realized_pnl_dollars": "0.0000",
                                 "fees_paid_dollars": dollars(f)} for e, (c, n, f) in events.items()]})

    async def _get_settlements(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"settlements": self.settlements, "cursor": ""})

    # -- the app ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        application = web.Application()
        public = [("GET", "/markets", self._get_markets), ("GET", "/markets/{ticker}/orderbook", self._get_orderbook),
                  ("GET", "/markets/{ticker}", self._get_market),
                  ("GET", "/historical/markets/{ticker}", self._get_historical_market)]
        private = [
            ("POST", "/portfolio/orders", self._post_order), ("GET", "/portfolio/orders", self._get_orders),
            ("GET", "/portfolio/orders/{order_id}", self._get_order),
            ("DELETE", "/portfolio/orders/{order_id}", self._cancel_order),
            ("GET", "/portfolio/balance", self._get_balance), ("GET", "/portfolio/positions", self._get_positions),
            ("GET", "/portfolio/settlements", self._get_settlements),
            ("GET", "/historical/orders", self._get_historical_orders),
        ]
        for routes, is_private in ((public, False), (private, True)):
            for method, path, handler in routes:
                application.router.add_route(method, PREFIX + path, self._guard(handler, private=is_private))
        return application
