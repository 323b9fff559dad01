"""Polymarket: Gamma for the market list, the CLOB (V2, since 2026-04-28) for books and orders,
the Data API for the wallet's positions (reconciliation).

Orders are signed with `py-clob-client-v2`, Polymarket's official Python package for CLOB V2:
its exchange order builder (EIP-712 domain "2" for v1 markets on CTF ExchangeV2, domain "3" for
Protocol V2 markets on ExchangeV3; EOA, proxy, Safe and deposit-wallet (POLY_1271) signatures)
and its L1 (wallet) and L2 (HMAC) header builders. The amounts are ours, in Decimal: the
package rounds with floats and does not keep a market order's pUSD to 2 decimals, which the
CLOB refuses (pipeline/order_rules.py). The HTTP is ours too (httpx, async, through
RateLimiter / read_json / write_json) so every request is rate limited, reads are retried,
writes are sent once, and the package's synchronous client never runs on the event loop.

Fees: each market's taker rate and exponent come from the CLOB (`GET /clob-markets/{id}`, `fd`),
read for the markets a cycle prices and reused for fees.cache_minutes. A taker's fee is charged in pUSD: on top of
a BUY's notional, the shares coming whole (a live V2 fill, py-clob-client-v2 #107; the package's
adjust_buy_amount_for_fees budgets it in pUSD), and off a SELL's proceeds (Polymarket's fees page: "USDC on sell
orders").

Exits. A SELL gives the outcome token held: makerAmount is the shares, takerAmount the pUSD at the limit (the
CLOB reads a SELL's price as takerAmount / makerAmount), and the answer's makingAmount is the shares sold and
takingAmount the pUSD received (public clients read it so; assumed: before the fee, as a BUY's makingAmount is).
Selling more than the wallet holds is refused by the CLOB ("not enough balance / allowance"). Exits are
immediate-or-cancel (FAK): a SELL of any other time in force is refused before it is signed.

Idempotency. The CLOB has no client order id: an order's id is the EIP-712 hash of the
signed order. So the signed order is made reproducible and is written down before it is
sent: the salt is derived from our client order id, the timestamp is taken once, and the
order's fields and hash are recorded in the order journal before the POST (polymarket_journal.py:
the desk's database, committed and synced, read afresh by every process on it; in memory for a
client built without a store). A lost reply is then resolved by asking the CLOB for that hash
(`GET /data/order/{hash}`), never by posting again, by this process or any other on the database;
a second `place_order` with the same client order id looks the first one up instead of sending
another. Only the database journal lets "no record" mean "never sent".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import httpx
from py_clob_client_v2.clob_types import ApiCreds, OrderType, RequestArgs
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.constants import BYTES32_ZERO
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, OrderDataV2, SignatureTypeV2
from py_clob_client_v2.order_utils import Side as ClobSide
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2, order_to_json_v2
from py_clob_client_v2.signer import Signer

from ..config import FeesConfig, PolymarketConfig
from ..errors import FeesUnknownError, GiveUpError, OutcomeUnknownError, RetryableError, VenueContractError, \
    WireFormatError
from ..order_rules import order_size_problem
from ..models import (
    ONE,
    ZERO,
    FeeModel,
    Fill,
    Market,
    Order,
    OrderAction,
    OrderBook,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Rejection,
    Resolution,
    Side,
    Venue,
    VenueOrder,
    VenueScanStats,
)
from ..reporter import scrub
from .http import RateLimiter, RetryPolicy, read_json, write_json
from .polymarket_journal import MemoryJournal, OrderJournal, SentOrder
from .polymarket_wire import (END_CURSOR, FIRST_CURSOR, fee_model_from_clob_market, markets_from_page,
                              open_orders_page_from_wire, override_fee_model, orderbook_from_wire,
                              positions_from_wire, price_from_history, resolution_from_wire)
from .polymarket_wire import UnsupportedMarket
from .polymarket_wire import market_from_wire as gamma_market

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

__all__ = ["MemoryJournal", "OrderJournal", "PolymarketClient", "PolymarketCredentials", "SentOrder", "order_salt"]

POLYGON_CHAIN_ID = 137
# EIP-712 domain versions of the exchanges: CTF ExchangeV2 (v1 markets; V1-signed orders, "1", are refused) and
# ExchangeV3 (Protocol V2 markets).
EXCHANGE_DOMAIN_VERSIONS = {"v1": "2", "v2": "3"}
SIGNATURE_TYPES = {0: "EOA", 1: "Polymarket proxy", 2: "Gnosis Safe", 3: "deposit wallet (POLY_1271)"}
UNITS = Decimal(10) ** 6  # pUSD and outcome shares both have 6 decimals on chain
# Data API GET /positions: at most 500 rows a page, offset at most 10000; published limit 150 per 10 s.
POSITIONS_PAGE = 500
POSITIONS_MAX_OFFSET = 10_000
POSITIONS_PER_SECOND = 12.0
BOOK_CONCURRENCY = 8  # CLOB reads a cycle makes at once (books, fee schedules)
DATA_API_LAG = timedelta(minutes=5)  # the Data API's positions trail fills by a minute or more
HISTORY_WINDOW = timedelta(days=1)  # price_at looks this far back from the moment asked
# /prices-history fidelities (minutes) price_at asks, in order: hourly, then 12-hourly, the only grain the CLOB is
# reported to keep for resolved markets (py-clob-client issue #216).
HISTORY_FIDELITIES = (60, 720)

TIME_IN_FORCE_TO_ORDER_TYPE = {
    "immediate_or_cancel": OrderType.FAK,
    "fill_or_kill": OrderType.FOK,
    "good_till_canceled": OrderType.GTC,
}

# The CLOB's words for "nothing (or not everything) was there to take": the order was
# killed, not refused. polymarket-client maps the same messages to fok/fak_not_filled.
KILLED_MARKERS = ("fok orders are fully filled or killed", "fak orders are partially filled or killed",
                  "couldn't be fully filled", "no orders found to match")

NO_KEY = ("placing Polymarket orders needs POLYMARKET_PRIVATE_KEY (the wallet's signing key) and, for a proxy, "
          "Safe or deposit wallet, POLYMARKET_FUNDER and POLYMARKET_SIGNATURE_TYPE (1 proxy, 2 Safe, 3 deposit "
          "wallet); reading markets and books needs no keys")
# The CLOB's words when an order was built for another exchange version than the market's: the exchange moved.
CONTRACT_MARKERS = ("order_version_mismatch",)
# Refusals that mean the account is set up another way than the desk's settings say; each gets its fix.
ACCOUNT_HINTS = {
    "maker address not allowed, please use the deposit wallet flow":
        "this account trades through a deposit wallet: set POLYMARKET_SIGNATURE_TYPE=3 and POLYMARKET_FUNDER to the "
        "deposit wallet's address",
    "the order signer address has to be the address of the api key":
        "the CLOB did not accept the deposit wallet as the order's signer; this is reported while the wallet is "
        "not yet deployed on-chain: make a first deposit through polymarket.com, then check POLYMARKET_FUNDER is "
        "the deposit wallet's address",
}


def order_salt(client_order_id: str) -> int:
    """48 bits from our client order id: the same id always signs with the same salt.

    Kept under 2**53 because the CLOB reads the salt as a JSON number: a larger one is
    rounded on arrival, hashes differently from what was signed, and is refused.
    """
    digest = hashlib.sha256(f"oddsdesk:polymarket:salt:{client_order_id}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


@dataclass(frozen=True)
class PolymarketCredentials:
    """Wallet and API credentials. Secrets are kept out of repr()."""

    private_key: str | None = field(default=None, repr=False)
    funder: str | None = None  # the address holding the funds; the signer's own address for type 0
    signature_type: int = 0  # 0 EOA, 1 POLY_PROXY, 2 GNOSIS_SAFE, 3 POLY_1271 (deposit wallet)
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    api_passphrase: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        values = [v for v in (self.private_key, self.api_key, self.api_secret, self.api_passphrase) if v]
        if self.private_key and self.private_key.startswith("0x"):
            values.append(self.private_key[2:])
        return values


class _Killed(GiveUpError):
    """FOK/FAK found nothing (or not enough) to take: a cancellation, not a refusal."""


def _error_text(response: httpx.Response) -> str:
    """The CLOB's reason, uncut: the caller scrubs before it cuts, so a secret cut in half cannot slip through."""
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "errorMsg", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                return str(value.get("message") or value)
    return str(body)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _iso(moment: datetime) -> str:
    """An aware time as Gamma's date filters take it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _settled_pair(raw: Any) -> tuple[Market, Resolution] | None:
    """A Gamma market and its final resolution, or None for one the desk cannot read or that has not resolved."""
    try:
        market = gamma_market(raw) if isinstance(raw, dict) else None
        resolution = resolution_from_wire(raw) if market is not None else None
    except (UnsupportedMarket, WireFormatError):
        return None
    return (market, resolution) if market is not None and resolution is not None else None


def _tick_text(tick: Decimal) -> str:
    """0.010 -> "0.01", the key py-clob-client-v2's ROUNDING_CONFIG uses."""
    return format(tick.normalize(), "f")


class PolymarketClient:
    """VenueClient for Polymarket. Reading needs no keys; orders need POLYMARKET_PRIVATE_KEY."""

    venue = Venue.POLYMARKET

    def __init__(self, *, gamma_url: str = "https://gamma-api.polymarket.com",
                 clob_url: str = "https://clob.polymarket.com", data_url: str = "https://data-api.polymarket.com",
                 credentials: PolymarketCredentials | None = None, fees: FeesConfig | None = None,
                 config: PolymarketConfig | None = None, time_in_force: str = "immediate_or_cancel",
                 retry: RetryPolicy | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 chain_id: int = POLYGON_CHAIN_ID, journal: OrderJournal | None = None,
                 positions_lag: timedelta = DATA_API_LAG) -> None:
        if time_in_force not in TIME_IN_FORCE_TO_ORDER_TYPE:
            raise ValueError(f"time_in_force must be one of {', '.join(TIME_IN_FORCE_TO_ORDER_TYPE)}")
        self.gamma_url = gamma_url.rstrip("/")
        self.clob_url = clob_url.rstrip("/")
        self.data_url = data_url.rstrip("/")
        self.positions_lag = positions_lag  # reconciliation waits this long after a fill to compare positions
        self.credentials = credentials or PolymarketCredentials()
        self.fees = fees or FeesConfig()
        self.config = config or PolymarketConfig()
        self.time_in_force = time_in_force
        self.retry = retry or RetryPolicy()
        self.chain_id = chain_id
        self._http = httpx.AsyncClient(timeout=float(self.config.timeout_seconds), transport=transport,
                                       headers={"User-Agent": "oddsdesk"})
        self._gamma_limiter = RateLimiter(float(self.config.gamma_requests_per_second))
        self._clob_limiter = RateLimiter(float(self.config.clob_requests_per_second))
        self._data_limiter = RateLimiter(POSITIONS_PER_SECOND)
        self._tokens: dict[str, tuple[str, Side]] = {}  # token id -> (condition id, side), of markets seen
        self._fees: dict[str, tuple[float, FeeModel]] = {}  # condition id -> (when read, its fee)
        self.journal: OrderJournal = journal if journal is not None else MemoryJournal()
        self._order_lock = asyncio.Lock()
        self._creds_lock = asyncio.Lock()
        self._api_creds: ApiCreds | None = None
        self._derived = False
        self._derived_secrets: set[str] = set()  # every credential derived, kept after a 401 drops it from use
        self._signer: Signer | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                      retry: RetryPolicy | None = None, journal: OrderJournal | None = None) -> PolymarketClient:
        """The live client from settings and the environment.

        The desk passes its database's journal (StoreJournal), so a lost reply can be resolved after a restart
        and by any process on the database; without one, signed orders are remembered in memory only.
        """
        env = settings.env

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None and value.get_secret_value() else None

        credentials = PolymarketCredentials(
            private_key=secret(env.POLYMARKET_PRIVATE_KEY), funder=env.POLYMARKET_FUNDER or None,
            signature_type=env.POLYMARKET_SIGNATURE_TYPE or 0, api_key=secret(env.POLYMARKET_API_KEY),
            api_secret=secret(env.POLYMARKET_API_SECRET), api_passphrase=secret(env.POLYMARKET_API_PASSPHRASE))
        return cls(gamma_url=env.POLYMARKET_GAMMA_URL, clob_url=env.POLYMARKET_CLOB_URL,
                   data_url=env.POLYMARKET_DATA_URL, credentials=credentials,
                   fees=settings.fees, config=settings.polymarket, time_in_force=settings.trading.time_in_force,
                   retry=retry, transport=transport, journal=journal)

    # ----------------------------------------------------------------- plumbing

    def derived_secrets(self) -> list[str]:
        """The L2 API key, secret and passphrase derived from the wallet key (every set derived so far): not
        configured anywhere, so the desk's scrubbers learn them here."""
        return sorted(self._derived_secrets)

    def scrub(self, text: str) -> str:
        """The text without any of this client's secrets (its keys, and API credentials it derived)."""
        return scrub(text, [*self.credentials.secrets(), *self._derived_secrets])

    def _translate(self, response: httpx.Response) -> Exception:
        message = self.scrub(_error_text(response))[:200]
        if response.status_code == 401:
            if self._derived:  # derived credentials may have been revoked: derive again next time
                self._api_creds = None
            return GiveUpError(
                f"Polymarket CLOB refused the API credentials (HTTP 401: {message}); check POLYMARKET_API_KEY, "
                "POLYMARKET_API_SECRET and POLYMARKET_API_PASSPHRASE, or unset all three to derive them from "
                "POLYMARKET_PRIVATE_KEY")
        return GiveUpError(f"HTTP {response.status_code}: {message}")

    def _translate_order(self, response: httpx.Response) -> Exception:
        """POST /order's refusals: killed FAK/FOK, an exchange that moved (retired route, version mismatch),
        account set-up problems with their fix, else a plain refusal."""
        error = self._translate(response)
        text = str(error).lower()
        if response.status_code == 400 and any(m in text for m in KILLED_MARKERS):
            return _Killed(str(error))
        if response.status_code in (404, 410) or any(m in text for m in CONTRACT_MARKERS):
            return VenueContractError(
                "polymarket", f"polymarket: the CLOB refused the order with {error}: orders this version of the desk "
                "signs are no longer what the exchange takes", code="order_version_mismatch"
                if "order_version_mismatch" in text else f"http_{response.status_code}")
        for marker, hint in ACCOUNT_HINTS.items():
            if marker in text:
                return GiveUpError(f"{error}; {hint}")
        return error

    def _require_signer(self) -> Signer:
        if self._signer is None:
            key = self.credentials.private_key
            if not key:
                raise GiveUpError(NO_KEY)
            try:
                self._signer = Signer(key if key.startswith("0x") else "0x" + key, self.chain_id)
            except Exception:  # noqa: BLE001 - any failure; its message could quote the key: never chain it
                raise GiveUpError("POLYMARKET_PRIVATE_KEY is not a valid hex private key") from None
        return self._signer

    def _funder(self, signer: Signer) -> tuple[str, int]:
        """(the address that holds the funds and makes the order, the signature type)."""
        kind = self.credentials.signature_type
        if kind not in SIGNATURE_TYPES:
            raise GiveUpError(f"POLYMARKET_SIGNATURE_TYPE must be 0 (EOA), 1 (proxy), 2 (Safe) or 3 (deposit wallet), "
                              f"not {kind}")
        funder = self.credentials.funder
        if kind == 0:
            if funder and funder.lower() != signer.address().lower():
                raise GiveUpError("POLYMARKET_FUNDER differs from the key's address but POLYMARKET_SIGNATURE_TYPE "
                                  "is 0 (EOA); set 1 for a Polymarket proxy wallet, 2 for a Safe, 3 for a deposit "
                                  "wallet")
            return signer.address(), kind
        if not funder:
            raise GiveUpError(f"POLYMARKET_SIGNATURE_TYPE={kind} needs POLYMARKET_FUNDER, the {SIGNATURE_TYPES[kind]} "
                              "address that holds the funds")
        return funder, kind

    async def _l2_credentials(self, *, create: bool = True) -> ApiCreds:
        """Given API credentials, or derived once from the wallet key (L1) and kept in memory; created when the
        wallet has none yet, unless `create` is False (a read-only probe must not make one)."""
        if self._api_creds is not None:
            return self._api_creds
        async with self._creds_lock:
            if self._api_creds is not None:
                return self._api_creds
            c = self.credentials
            given = {"POLYMARKET_API_KEY": c.api_key, "POLYMARKET_API_SECRET": c.api_secret,
                     "POLYMARKET_API_PASSPHRASE": c.api_passphrase}
            if all(given.values()):
                self._api_creds = ApiCreds(api_key=c.api_key, api_secret=c.api_secret,  # type: ignore[arg-type]
                                           api_passphrase=c.api_passphrase)  # type: ignore[arg-type]
                return self._api_creds
            if any(given.values()):
                missing = ", ".join(name for name, value in given.items() if not value)
                raise GiveUpError(f"Polymarket API credentials are incomplete: {missing} not set (set all three, "
                                  "or none to derive them from POLYMARKET_PRIVATE_KEY)")
            creds = await self._derive_credentials(create)
            self._derived_secrets.update((creds.api_key, creds.api_secret, creds.api_passphrase))
            self._api_creds, self._derived = creds, True
            return creds

    async def _derive_credentials(self, create: bool = True) -> ApiCreds:
        signer = self._require_signer()

        def l1() -> dict[str, str]:
            return create_level_1_headers(signer, nonce=0)

        try:
            data = await read_json(lambda: self._http.get(f"{self.clob_url}/auth/derive-api-key", headers=l1()),
                                   where="polymarket derive API key", translate=self._translate,
                                   limiter=self._clob_limiter, policy=self.retry)
        except GiveUpError as e:  # no key for this wallet yet: create one
            if not create:
                raise GiveUpError(f"no Polymarket API key could be derived for this wallet ({e}); none was "
                                  "created (this is a read-only check)") from e
            data = await write_json(lambda: self._http.post(f"{self.clob_url}/auth/api-key", headers=l1()),
                                    where="polymarket create API key", translate=self._translate,
                                    limiter=self._clob_limiter)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k)
                                                  for k in ("apiKey", "secret", "passphrase")):
            raise WireFormatError("polymarket API key derivation: the answer lacks apiKey, secret or passphrase")
        log.info("polymarket: API credentials derived from the wallet key")  # the values are never logged
        return ApiCreds(api_key=data["apiKey"], api_secret=data["secret"], api_passphrase=data["passphrase"])

    def _l2_headers(self, creds: ApiCreds, method: str, path: str, serialized: str | None = None) -> dict[str, str]:
        headers = create_level_2_headers(self._require_signer(), creds, RequestArgs(
            method=method, request_path=path, body=serialized, serialized_body=serialized))
        if serialized is not None:
            headers["Content-Type"] = "application/json"
        return headers

    async def raw_get(self, service: str, path: str, params: dict[str, str] | None = None, *,
                      auth: bool = False) -> httpx.Response:
        """One GET to "gamma", "clob" or "data", answered as it came (for `oddsdesk check --venues`)."""
        base, limiter = {"gamma": (self.gamma_url, self._gamma_limiter), "clob": (self.clob_url, self._clob_limiter),
                         "data": (self.data_url, self._data_limiter)}[service]
        headers = self._l2_headers(await self._l2_credentials(create=False), "GET", path) if auth else None
        await limiter.acquire()
        return await self._http.get(f"{base}{path}", params=params, headers=headers)

    @property
    def has_keys(self) -> bool:
        return bool(self.credentials.private_key)

    async def _clob_read(self, path: str, *, where: str, params: dict[str, str] | None = None,
                         auth: bool = False, stats: VenueScanStats | None = None) -> Any:
        creds = await self._l2_credentials() if auth else None

        def send() -> Any:
            headers = self._l2_headers(creds, "GET", path) if creds is not None else None
            return self._http.get(f"{self.clob_url}{path}", params=params, headers=headers)

        return await read_json(send, where=where, translate=self._translate, limiter=self._clob_limiter,
                               policy=self.retry, stats=stats)

    # ----------------------------------------------------------------- reading

    async def list_markets(self, stats: VenueScanStats | None = None) -> list[Market]:
        """Gamma keyset pages (`after_cursor`, never `cursor`) until next_cursor is absent."""
        stats = stats if stats is not None else VenueScanStats()
        markets: list[Market] = []
        seen_ids: set[str] = set()
        params = {"limit": str(self.config.page_size), "active": "true", "closed": "false"}
        async for page in self._keyset_pages(params, "polymarket gamma markets", stats):
            for market in markets_from_page(page, stats):
                if market.id not in seen_ids:
                    seen_ids.add(market.id)
                    markets.append(market)
                    self._remember(market)
        stats.markets = len(markets)
        return markets

    async def get_order_book(self, market: Market) -> OrderBook:
        """The YES token's book (the NO book is its mirror)."""
        if not market.yes_token_id:
            raise GiveUpError(f"polymarket market {market.id} has no YES token id")
        where = f"polymarket book {market.id}"
        data = await self._clob_read("/book", where=where, params={"token_id": market.yes_token_id})
        if isinstance(data, dict) and data.get("asset_id") not in (None, "", market.yes_token_id):
            raise WireFormatError(f"{where}: the CLOB answered for token {data.get('asset_id')!r}")
        return orderbook_from_wire(market.id, data)

    async def get_order_books(self, markets: Sequence[Market]) -> dict[str, OrderBook | Exception]:
        """Each market's book, several at a time under the CLOB's rate limit; a failure maps to its error."""
        gate = asyncio.Semaphore(BOOK_CONCURRENCY)

        async def one(market: Market) -> tuple[str, OrderBook | Exception]:
            async with gate:
                try:
                    return market.id, await self.get_order_book(market)
                except Exception as e:  # noqa: BLE001 - told per market
                    return market.id, e

        return dict(await asyncio.gather(*(one(m) for m in markets)))

    async def with_fees(self, markets: Sequence[Market], now: datetime, *,
                        fresh: bool = False) -> tuple[list[Market], list[Rejection]]:
        """The markets with their taker fee from the CLOB (`GET /clob-markets/{condition id}`), reused for
        fees.cache_minutes unless `fresh`; fees.polymarket_taker_rate overrides it. A market whose fee cannot be
        read or priced is rejected with the reason."""
        override = self.fees.polymarket_taker_rate
        gate = asyncio.Semaphore(BOOK_CONCURRENCY)

        async def price(market: Market) -> Market | Rejection:
            try:
                if override is not None:
                    model = override_fee_model(override)
                else:
                    async with gate:
                        model = await self._clob_fees(market, fresh)
            except FeesUnknownError as e:
                return Rejection(market_key=market.key, reason="fees_unknown", detail=str(e))
            except (RetryableError, GiveUpError) as e:
                return Rejection(market_key=market.key, reason="fees_unavailable",
                                 detail=f"polymarket: the market's fee could not be read: {e}")
            return market.model_copy(update={"fee_model": model})

        results = await asyncio.gather(*(price(m) for m in markets))
        return ([r for r in results if isinstance(r, Market)], [r for r in results if isinstance(r, Rejection)])

    async def _clob_fees(self, market: Market, fresh: bool = False) -> FeeModel:
        cached = self._fees.get(market.id)
        if not fresh and cached is not None and time.monotonic() - cached[0] < self.fees.cache_minutes * 60:
            return cached[1]
        path = f"/clob-markets/{market.id}"
        data = await self._clob_read(path, where=f"polymarket clob market {market.id}")
        model = fee_model_from_clob_market(data, market)
        self._fees[market.id] = (time.monotonic(), model)
        return model

    async def resolution(self, market_id: str) -> Resolution | None:
        """How the market resolved, or None while it is not final. Gamma hides closed markets unless asked."""
        where = f"polymarket market {market_id} resolution"
        params = {"condition_ids": market_id, "closed": "true", "limit": "1"}
        data = await read_json(lambda: self._http.get(f"{self.gamma_url}/markets/keyset", params=params),
                               where=where, translate=self._translate, limiter=self._gamma_limiter, policy=self.retry)
        if not isinstance(data, dict) or not isinstance(data.get("markets"), list):
            raise WireFormatError(f"{where}: expected {{\"markets\": [...]}}")
        for raw in data["markets"]:
            if isinstance(raw, dict) and raw.get("conditionId") == market_id:
                return resolution_from_wire(raw)
        return None  # not closed yet

    async def settled_markets(self, closed_after: datetime, closed_before: datetime,
                              limit: int) -> list[tuple[Market, Resolution]]:
        """Resolved binary markets that ended in the window, newest first: the questions a backtest can score."""
        # Every page of the window is read: keyset pages are not in end-date order.
        params = {"limit": str(self.config.page_size), "closed": "true",
                  "end_date_min": _iso(closed_after), "end_date_max": _iso(closed_before)}
        found: dict[str, tuple[Market, Resolution]] = {}
        async for page in self._keyset_pages(params, "polymarket settled markets"):
            for pair in filter(None, map(_settled_pair, page)):
                if closed_after <= pair[0].close_time < closed_before:
                    found[pair[0].id] = pair
        return sorted(found.values(), key=lambda pair: pair[0].close_time, reverse=True)[:limit]

    async def _keyset_pages(self, params: dict[str, str], what: str, stats: VenueScanStats | None = None
                            ) -> AsyncIterator[list[Any]]:
        """Each Gamma /markets/keyset page's `markets` for `params`, following next_cursor (as after_cursor)."""
        stats = stats if stats is not None else VenueScanStats()
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            query = {**params, "after_cursor": cursor} if cursor else params
            where = f"{what} page {stats.pages + 1}"
            data = await read_json(lambda q=query: self._http.get(f"{self.gamma_url}/markets/keyset", params=q),
                                   where=where, translate=self._translate, limiter=self._gamma_limiter,
                                   policy=self.retry, stats=stats)
            if not isinstance(data, dict) or not isinstance(data.get("markets"), list):
                raise WireFormatError(f"{where}: expected {{\"markets\": [...], \"next_cursor\": ...}}")
            stats.pages += 1
            yield data["markets"]
            cursor = data.get("next_cursor")
            if not cursor:
                return
            if not isinstance(cursor, str) or cursor in seen:
                raise WireFormatError(f"{where}: next_cursor {cursor!r} repeats; the listing would not end")
            seen.add(cursor)

    async def price_at(self, market: Market, at: datetime) -> Decimal | None:
        """The YES token's last CLOB price in the day up to `at`: what the market said then."""
        # Hourly first, then 12-hourly: resolved markets are reported to keep only the coarse series (#216).
        if not market.yes_token_id:
            raise GiveUpError(f"polymarket market {market.id} has no YES token id; its price history cannot be read")
        since = at - HISTORY_WINDOW
        for fidelity in HISTORY_FIDELITIES:
            params = {"market": market.yes_token_id, "startTs": str(int(since.timestamp())),
                      "endTs": str(int(at.timestamp())), "fidelity": str(fidelity)}
            data = await self._clob_read("/prices-history", where=f"polymarket price history of {market.id}",
                                         params=params)
            price = price_from_history(data, at, since)
            if price is not None:
                return price
        return None

    def _remember(self, market: Market) -> None:
        for token, side in ((market.yes_token_id, Side.YES), (market.no_token_id, Side.NO)):
            if token:
                self._tokens[token] = (market.id, side)

    async def signed_positions(self) -> dict[str, Decimal] | None:
        """Open positions by condition id, + YES / - NO shares, from the Data API; None without a wallet.

        Listed for the address that holds the funds (the proxy or Safe, else the key's own). Every page is
        read (`sizeThreshold=0`: the default hides positions under one share) until a short one; resolved
        (redeemable) positions are left out, settlement closes those.
        """
        c = self.credentials
        if not c.private_key or (c.signature_type in (1, 2, 3) and not c.funder):
            return None  # a read-only desk holds nothing there
        user, _ = self._funder(self._require_signer())
        rows: list[Any] = []
        for offset in range(0, POSITIONS_MAX_OFFSET + 1, POSITIONS_PAGE):
            params = {"user": user, "sizeThreshold": "0", "limit": str(POSITIONS_PAGE), "offset": str(offset)}
            where = f"polymarket positions page {offset // POSITIONS_PAGE + 1}"
            data = await read_json(lambda p=params: self._http.get(f"{self.data_url}/positions", params=p),
                                   where=where, translate=self._translate, limiter=self._data_limiter,
                                   policy=self.retry)
            if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
                raise WireFormatError(f"{where}: expected a JSON array of position objects")
            rows.extend(data)
            if len(data) < POSITIONS_PAGE:
                return positions_from_wire(rows, user=user, tokens=self._tokens)
        raise GiveUpError(f"polymarket positions: more than {len(rows)} rows and the Data API pages no further "
                          f"than offset {POSITIONS_MAX_OFFSET}; not compared")

    async def open_orders(self) -> list[VenueOrder] | None:
        """Every order open on the API key's account, whoever placed it; None without a wallet key.

        The CLOB has no client order id: an order whose hash the journal recorded gets the desk's client order
        id, any other "" (not the desk's). `GET /data/orders`, page by page.
        """
        if not self.credentials.private_key:
            return None  # a read-only desk has no account to list
        known = {r.order_id.lower(): r.client_order_id for r in await self.journal.all()}
        listed: dict[str, VenueOrder] = {}
        cursor, seen = FIRST_CURSOR, {FIRST_CURSOR}
        while True:
            where = f"polymarket open orders page {len(seen)}"
            data = await self._clob_read("/data/orders", where=where, params={"next_cursor": cursor}, auth=True)
            orders, cursor = open_orders_page_from_wire(data, known=known, where=where)
            for order in orders:  # an order that moved between pages is listed once
                listed.setdefault(order.order_id.lower(), order)
            if cursor == END_CURSOR:
                return list(listed.values())
            if cursor in seen:
                raise WireFormatError(self.scrub(f"{where}: next_cursor {cursor!r} repeats; the listing would not end"))
            seen.add(cursor)

    async def get_balance(self) -> Decimal:
        """pUSD collateral available to the funder, in dollars."""
        self._require_signer()
        kind = self.credentials.signature_type
        data = await self._clob_read("/balance-allowance", where="polymarket balance", auth=True,
                                     params={"asset_type": "COLLATERAL", "signature_type": str(kind)})
        balance = _decimal(data.get("balance")) if isinstance(data, dict) else None
        if balance is None:
            raise WireFormatError("polymarket balance: the answer has no readable 'balance'")
        return balance / UNITS  # base units, 6 decimals

    # ----------------------------------------------------------------- orders

    def _check(self, request: OrderRequest, market: Market) -> tuple[str, str]:
        """Every refusal we can make without asking the CLOB. Returns (token id, order type)."""
        what = f"order {request.client_order_id}"
        if request.venue is not Venue.POLYMARKET or market.venue is not Venue.POLYMARKET:
            raise GiveUpError(f"{what}: not a Polymarket order; nothing was sent")
        if request.market_id != market.id:
            raise GiveUpError(f"{what}: names market {request.market_id} but came with {market.id}; nothing was sent")
        token = market.yes_token_id if request.side is Side.YES else market.no_token_id
        self._remember(market)
        if not token or not token.isdigit():
            raise GiveUpError(f"{what}: market {market.id} has no CLOB token for {request.side.value.upper()}; "
                              "nothing was sent")
        if request.token_id and request.token_id != token:
            raise GiveUpError(f"{what}: token {request.token_id} is not the {request.side.value.upper()} token of "
                              f"{market.id}; nothing was sent")
        selling = request.action is OrderAction.SELL
        # A buy without its own time in force takes the desk's; an exit is immediate-or-cancel whatever the desk's.
        explicit = "time_in_force" in request.model_fields_set or selling
        tif = request.time_in_force if explicit else self.time_in_force
        if selling and tif != "immediate_or_cancel":
            raise GiveUpError(f"{what}: an exit sells immediate-or-cancel (FAK) only, not {tif}; nothing was sent")
        order_type = TIME_IN_FORCE_TO_ORDER_TYPE[tif]
        tick = market.tick_size
        price = request.limit_price
        if _tick_text(tick) not in ROUNDING_CONFIG:
            raise GiveUpError(f"{what}: tick size {tick} of {market.id} is not one the CLOB uses; nothing was sent")
        if price % tick != 0 or not tick <= price <= ONE - tick:
            raise GiveUpError(f"{what}: limit price {price} is not on the {tick} tick between {tick} and "
                              f"{ONE - tick}; nothing was sent")
        problem = order_size_problem(market, request.contracts, price, tif, request.action)
        if problem:  # the CLOB checks the signed amounts' decimals and its minimums: refused here, not there
            raise GiveUpError(f"{what}: {problem}; nothing was sent")
        return token, order_type

    def _build(self, request: OrderRequest, market: Market, token: str, order_type: str,
               timestamp: int) -> tuple[SignedOrderV2, SentOrder]:
        """Exact amounts (ours) for the exchange of the market's protocol; order and signature from
        py-clob-client-v2's exchange order builder; salt and timestamp pinned by us."""
        signer = self._require_signer()
        maker, kind = self._funder(signer)
        # A BUY: makerAmount is the pUSD paid at the limit, takerAmount the shares; a SELL gives the shares
        # (makerAmount) for at least the pUSD at the limit (takerAmount). 6-decimal units; _check made sure both
        # meet the CLOB's decimals for this direction and order type.
        selling = request.action is OrderAction.SELL
        shares = request.contracts * UNITS
        usd = request.contracts * request.limit_price * UNITS
        maker_amount, taker_amount = (shares, usd) if selling else (usd, shares)
        if taker_amount != taker_amount.to_integral_value() or maker_amount != maker_amount.to_integral_value():
            raise GiveUpError(f"order {request.client_order_id}: {request.contracts} at {request.limit_price} is "
                              "not a whole number of base units; nothing was sent")
        contracts = get_contract_config(self.chain_id)
        if market.protocol == "v2":  # ExchangeV3: one exchange; neg-risk lives in the position id
            exchange = contracts.exchange_v3
        else:
            exchange = contracts.neg_risk_exchange_v2 if market.neg_risk else contracts.exchange_v2
        salt = order_salt(request.client_order_id)
        builder = ExchangeOrderBuilderV2(exchange, self.chain_id, signer, generate_salt=lambda: str(salt),
                                         domain_version=EXCHANGE_DOMAIN_VERSIONS[market.protocol])
        # A deposit wallet signs as itself (ERC-1271): maker and signer are both the wallet; else the key signs.
        order_signer = maker if kind == SignatureTypeV2.POLY_1271 else signer.address()
        signed = builder.build_signed_order(OrderDataV2(
            maker=maker, tokenId=token, makerAmount=str(int(maker_amount)), takerAmount=str(int(taker_amount)),
            side=ClobSide.SELL if selling else ClobSide.BUY, signer=order_signer, signatureType=SignatureTypeV2(kind),
            timestamp=str(timestamp), metadata=BYTES32_ZERO, builder=BYTES32_ZERO, expiration="0"))
        order_id = builder.build_order_hash(builder.build_order_typed_data(signed))
        record = SentOrder(
            client_order_id=request.client_order_id, order_id=order_id, market_id=market.id, token_id=token,
            side=request.side.value, contracts=str(request.contracts), limit_price=str(request.limit_price),
            order_type=order_type, salt=salt, timestamp=timestamp, maker=maker, signer=order_signer,
            signature_type=kind, maker_amount=int(maker_amount), taker_amount=int(taker_amount),
            neg_risk=market.neg_risk, tick_size=_tick_text(market.tick_size), recorded_at=time.time(),
            protocol=market.protocol, action=request.action.value)
        return signed, record

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        """Sign once, record, POST once. A lost answer raises OutcomeUnknownError; look it up."""
        token, order_type = self._check(request, market)
        self._require_signer()
        creds = await self._l2_credentials()
        async with self._order_lock:
            earlier = await self.journal.get(request.client_order_id)
            if earlier is not None:
                if not earlier.same_order(request, market, order_type):
                    raise GiveUpError(f"client order id {request.client_order_id} was already used for a different "
                                      "Polymarket order; nothing was sent")
                found = await self._fetch(earlier, market)
                if found is not None:
                    return found
                raise OutcomeUnknownError(f"order {request.client_order_id} was already sent once (CLOB id "
                                          f"{earlier.order_id}) and the CLOB does not show it yet; it is not sent "
                                          "again")
            signed, record = await asyncio.to_thread(self._build, request, market, token, order_type,
                                                     int(time.time() * 1000))
            # Written down (committed) before it leaves: from here on the order can only be looked up.
            await self.journal.record(record)
        payload = order_to_json_v2(signed, creds.api_key, order_type, False, False)
        serialized = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        where = f"polymarket order {request.client_order_id}"
        try:
            data = await write_json(
                lambda: self._http.post(f"{self.clob_url}/order", content=serialized.encode(),
                                        headers=self._l2_headers(creds, "POST", "/order", serialized)),
                where=where, translate=self._translate_order, limiter=self._clob_limiter)
        except _Killed as e:
            return OrderResult(client_order_id=request.client_order_id, venue_order_id=record.order_id,
                               status=OrderStatus.CANCELED, reason=f"{order_type} killed: {e}")
        order_id = data.get("orderID") if isinstance(data, dict) else None
        if isinstance(order_id, str) and order_id and order_id.lower() != record.order_id.lower():
            # Should not happen (the id is the EIP-712 hash we computed), but if it does, look-ups must use
            # the CLOB's id: the journal's record is replaced.
            log.warning("polymarket: the CLOB id %s differs from the order hash %s computed for %s", order_id,
                        record.order_id, request.client_order_id)
            record = replace(record, order_id=order_id, recorded_at=time.time())
            await self.journal.record(record)
        return self._from_post(data, record, request, market, where)

    def _from_post(self, data: Any, record: SentOrder, request: OrderRequest, market: Market,
                   where: str) -> OrderResult:
        coid = request.client_order_id
        bound = "at or above" if request.action is OrderAction.SELL else "at or below"
        if not isinstance(data, dict) or not isinstance(data.get("success"), bool):
            raise OutcomeUnknownError(f"{where}: accepted but the answer has no 'success'; look the order up")
        message = self.scrub(str(data.get("errorMsg") or ""))
        status = self.scrub(str(data.get("status") or "")).lower()
        order_id = str(data.get("orderID") or "") or record.order_id
        if not data["success"]:
            if status == "unmatched" or any(m in message.lower() for m in KILLED_MARKERS):
                return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.CANCELED,
                                   reason=f"{record.order_type} not filled: {message or status}")
            raise GiveUpError(f"{where}: refused: {message or status or 'no reason given'}")
        if status == "unmatched":
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.CANCELED,
                               reason=f"{record.order_type} unmatched: nothing {bound} {request.limit_price}")
        if status == "delayed":
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason="the CLOB delayed matching; the outcome is pending, look the order up")
        if status not in ("matched", "live"):
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason=f"the CLOB answered with status {status!r}; look the order up")
        amounts = self._fill_amounts(data.get("makingAmount"), data.get("takingAmount"), request)
        if amounts is None:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason="the CLOB's making/taking amounts do not fit the order; look it up")
        usd, shares = amounts
        if status == "matched" and shares <= 0:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason="the CLOB says matched but sent no amounts; look the order up")
        fills = self._fills(shares, usd / shares if shares else ZERO, market)
        if status == "live" or (shares < request.contracts and record.order_type in (OrderType.GTC, OrderType.GTD)):
            rest = request.contracts - shares
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.RESTING,
                               fills=fills, reason=f"{rest} resting at {request.limit_price}")
        if shares >= request.contracts:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.FILLED, fills=fills)
        if shares <= 0:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.CANCELED,
                               reason=f"nothing {bound} {request.limit_price}")
        return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.PARTIALLY_FILLED,
                           fills=fills, reason=f"{shares} of {request.contracts} filled {bound} "
                                               f"{request.limit_price}; the rest cancelled")

    @staticmethod
    def _fill_amounts(making: Any, taking: Any, request: OrderRequest) -> tuple[Decimal, Decimal] | None:
        """(pUSD, shares) the order traded: a BUY makes pUSD (paid) and takes shares, a SELL makes shares and takes
        pUSD (received). Decimal strings, or base units if only those fit the order: a BUY paid at most its limit
        a share, a SELL received at least its limit and at most $1 a share."""
        making_raw, taking_raw = _decimal(making) or ZERO, _decimal(taking) or ZERO
        if making_raw == 0 and taking_raw == 0:
            return ZERO, ZERO
        selling = request.action is OrderAction.SELL
        usd_raw, shares_raw = (taking_raw, making_raw) if selling else (making_raw, taking_raw)
        slack = Decimal("1e-6")
        for scale in (ONE, UNITS):
            usd, shares = usd_raw / scale, shares_raw / scale
            if not ZERO < shares <= request.contracts:
                continue
            at_limit = shares * request.limit_price
            if (at_limit - slack <= usd <= shares + slack) if selling else (ZERO <= usd <= at_limit + slack):
                return usd, shares
        return None

    def _fills(self, shares: Decimal, price: Decimal, market: Market) -> tuple[Fill, ...]:
        if shares <= 0:
            return ()
        price = min(max(price, ZERO), ONE)
        return (Fill(contracts=shares, price=price, fee=market.fees.fee(shares, price)),)

    async def _fetch(self, record: SentOrder, market: Market) -> OrderResult | None:
        """GET /data/order/{hash}; None when the CLOB does not know the hash."""
        creds = await self._l2_credentials()
        path = f"/data/order/{record.order_id}"
        where = f"polymarket order look-up {record.client_order_id}"

        def send() -> Any:
            return self._http.get(f"{self.clob_url}{path}", headers=self._l2_headers(creds, "GET", path))

        def translate(response: httpx.Response) -> Exception:
            if response.status_code == 404:
                return _NotFound()
            return self._translate(response)

        try:
            data = await read_json(send, where=where, translate=translate, limiter=self._clob_limiter,
                                   policy=self.retry)
        except _NotFound:
            return None
        if not data:  # null or {}: the CLOB has no such order
            return None
        if not isinstance(data, dict):
            raise WireFormatError(f"{where}: expected an order object")
        return self._from_order(data, record, market, where)

    def _from_order(self, data: dict[str, Any], record: SentOrder, market: Market, where: str) -> OrderResult:
        coid = record.client_order_id
        order_id = str(data.get("id") or record.order_id)
        status = self.scrub(str(data.get("status") or "")).upper().removeprefix("ORDER_STATUS_")
        contracts = Decimal(record.contracts)
        shown_side = str(data.get("side") or "").upper()
        signed_side = "SELL" if record.selling else "BUY"
        if shown_side in ("BUY", "SELL") and shown_side != signed_side:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason=self.scrub(f"{where}: the CLOB shows a {shown_side}, but a {signed_side} was "
                                                 "signed"))
        original, matched = _decimal(data.get("original_size")), _decimal(data.get("size_matched")) or ZERO
        if original == contracts:
            scale = ONE
        elif original == contracts * UNITS:  # older docs: fixed-math, 6 decimals
            scale = UNITS
        else:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason=self.scrub(f"{where}: original_size {data.get('original_size')!r} is "
                                                 f"not the {contracts} we signed"))
        matched = matched / scale
        price = _decimal(data.get("price")) or Decimal(record.limit_price)
        # The order shows its limit, not the prices it traded at: a BUY's cost is stated at the limit (the most it
        # can be), a SELL's proceeds at the limit (the least they can be); the trades carry the exact prices.
        fills = self._fills(min(matched, contracts), price, market)
        bound = "a lower bound" if record.selling else "an upper bound"
        note = "" if not fills else f"; fill price shown at the limit {price} ({bound})"
        if status == "LIVE" and record.order_type in (OrderType.FAK, OrderType.FOK):
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                               reason=f"the {record.order_type} order is still being matched; look again")
        if status == "LIVE":
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.RESTING,
                               fills=fills, prices_are_bounds=True, reason=f"{contracts - matched} resting{note}")
        if status == "MATCHED" and matched >= contracts:
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.FILLED,
                               fills=fills, prices_are_bounds=True, reason=note.lstrip("; "))
        if status in ("MATCHED", "CANCELED", "CANCELED_MARKET_RESOLVED", "INVALID", "UNMATCHED"):
            if matched > 0:
                return OrderResult(client_order_id=coid, venue_order_id=order_id,
                                   status=OrderStatus.PARTIALLY_FILLED, fills=fills, prices_are_bounds=True,
                                   reason=f"{matched} of {contracts} filled, the rest {status.lower()}{note}")
            return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.CANCELED,
                               reason=f"nothing filled ({status.lower()})")
        return OrderResult(client_order_id=coid, venue_order_id=order_id, status=OrderStatus.UNKNOWN,
                           reason=f"{where}: status {status!r} is not one we know")

    async def find_order(self, client_order_id: str, market: Market, *,
                         action: OrderAction = OrderAction.BUY) -> OrderResult | None:
        """By the recorded hash of the signed order; never posts. Which way it went is the journal's record of what
        was signed (`action` is not needed here)."""
        record = await self.journal.get(client_order_id)
        if record is None:
            if self.journal.shared:
                return None  # every order is in the desk's journal before it is sent: this one never left
            return OrderResult(client_order_id=client_order_id, status=OrderStatus.UNKNOWN,
                               reason="no record of a signed order for this client order id in this process (its "
                                      "journal is in memory, not the desk's database); check the account's orders "
                                      "on Polymarket")
        return await self._fetch(record, market)

    async def cancel(self, order: Order, market: Market) -> OrderResult | None:
        """The VenueClient form: Polymarket cancels by the order hash recorded for the client order id."""
        return await self.cancel_order(order.client_order_id, market)

    async def cancel_order(self, client_order_id: str, market: Market) -> OrderResult | None:
        """Cancel a resting order; returns what the CLOB then shows (None if it never saw it)."""
        record = await self.journal.get(client_order_id)
        if record is None:
            raise GiveUpError(f"no signed Polymarket order is recorded for {client_order_id}; nothing to cancel")
        creds = await self._l2_credentials()
        body = json.dumps({"orderID": record.order_id}, separators=(",", ":"))
        data = await write_json(
            lambda: self._http.request("DELETE", f"{self.clob_url}/order", content=body.encode(),
                                       headers=self._l2_headers(creds, "DELETE", "/order", body)),
            where=f"polymarket cancel {client_order_id}", translate=self._translate, limiter=self._clob_limiter)
        not_canceled = data.get("not_canceled") if isinstance(data, dict) else None
        if isinstance(not_canceled, dict) and record.order_id in not_canceled:
            log.info("polymarket: %s not cancelled: %s", client_order_id,
                     self.scrub(str(not_canceled[record.order_id])))
        return await self._fetch(record, market)

    async def aclose(self) -> None:
        await self._http.aclose()


class _NotFound(GiveUpError):
    def __init__(self) -> None:
        super().__init__("not found")
