"""A read-only venue served from recorded wire payloads: the offline demo and the tests.

The payloads go through the same wire parsers as live responses, so the sample exercises the
real parsing code. Close times are rebased so a snapshot recorded on one day still looks as
if it were captured just now (otherwise every market would soon be "closed" by the filters).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..config import FeesConfig
from ..errors import FeesUnknownError, GiveUpError, WireFormatError
from ..models import (FeeModel, Market, Order, OrderAction, OrderBook, OrderRequest, OrderResult, Rejection,
                      Resolution, Venue, VenueScanStats, utcnow)
from . import kalshi_wire, polymarket_wire
from .wire import parse_time

READ_ONLY = "the sample snapshot is read-only: orders are simulated in dry-run"
# Optional: settled markets and their price history, per venue, as the venues serve them:
# {"kalshi": {"markets": [GET /markets objects], "candlesticks": {ticker: GetMarketCandlesticksResponse}},
#  "polymarket": {"markets": [Gamma markets], "prices_history": {YES token id: {"history": [{"t", "p"}]}}}}
SETTLED_FILE = "settled.json"
HISTORY_WINDOW = timedelta(days=1)


def sample_directory() -> Path:
    """The snapshot bundled with the package (pipeline/sample)."""
    return Path(str(files("pipeline") / "sample"))


class SnapshotVenue:
    def __init__(self, venue: Venue, directory: Path, fees: FeesConfig, now: datetime | None = None) -> None:
        self.venue = venue
        self.directory = Path(directory)
        self.fees = fees
        self._now = now  # None: follow the wall clock on every call
        self._loaded: tuple[datetime, list[Market], dict[str, dict[str, Any]]] | None = None
        self._fee_payloads: dict[str, Any] = {}  # series ticker / condition id -> the venue's fee payload
        self._stats = VenueScanStats()  # of reading the recorded pages
        self._shift: timedelta | None = None
        self._settled: tuple[list[tuple[Market, Resolution]], dict[str, Any]] | None = None

    def _current(self) -> datetime:
        return self._now or utcnow()

    def _read(self) -> tuple[datetime, list[Market], dict[str, dict[str, Any]]]:
        manifest = json.loads((self.directory / "manifest.json").read_text(encoding="utf-8"))
        captured_at = parse_time(manifest.get("captured_at"), "captured_at", "sample manifest")
        names = manifest["files"][self.venue.value]
        pages = json.loads((self.directory / names["markets"]).read_text(encoding="utf-8"))
        books = json.loads((self.directory / names["books"]).read_text(encoding="utf-8"))
        if names.get("fees"):
            self._fee_payloads = json.loads((self.directory / names["fees"]).read_text(encoding="utf-8"))
        markets: list[Market] = []
        self._stats = VenueScanStats(pages=len(pages))
        for page in pages:
            if self.venue is Venue.KALSHI:
                markets += [kalshi_wire.market_from_wire(raw) for raw in page["markets"]]
            else:
                markets += polymarket_wire.markets_from_page(page["markets"], self._stats)
        return captured_at, markets, books

    async def _load(self) -> tuple[datetime, list[Market], dict[str, dict[str, Any]]]:
        if self._loaded is None:
            self._loaded = await asyncio.to_thread(self._read)
        return self._loaded

    async def _rebase(self) -> timedelta:
        """How far the recording is moved to look captured now; fixed at first use, so close times never drift."""
        captured_at, _, _ = await self._load()
        if self._shift is None:  # once: close times must not drift between cycles (caches key on them)
            self._shift = self._current() - captured_at
        return self._shift

    async def list_markets(self, stats: VenueScanStats | None = None) -> list[Market]:
        _, markets, _ = await self._load()
        shift = await self._rebase()
        rebased = [m.model_copy(update={"close_time": m.close_time + shift}) for m in markets]
        if stats is not None:
            stats.pages, stats.markets, stats.skipped = self._stats.pages, len(rebased), self._stats.skipped
            stats.skip_reasons = dict(self._stats.skip_reasons)
        return rebased

    async def get_order_book(self, market: Market) -> OrderBook:
        _, _, books = await self._load()
        now = self._current()
        if self.venue is Venue.KALSHI:
            raw = books.get(market.id)
            if raw is not None:
                return kalshi_wire.orderbook_from_wire(market.id, raw, fetched_at=now)
        else:
            raw = books.get(market.yes_token_id)  # the CLOB serves books per outcome token
            if raw is not None:
                return polymarket_wire.orderbook_from_wire(market.id, raw, fetched_at=now)
        return OrderBook(venue=self.venue, market_id=market.id, fetched_at=now)

    async def get_order_books(self, markets: Sequence[Market]) -> dict[str, OrderBook | Exception]:
        return {m.id: await self.get_order_book(m) for m in markets}

    async def with_fees(self, markets: Sequence[Market], now: datetime, *,
                        fresh: bool = False) -> tuple[list[Market], list[Rejection]]:
        """Fees from the recorded fee payloads (Kalshi series, Polymarket CLOB markets), read by the live parsers."""
        await self._load()
        priced: list[Market] = []
        rejected: list[Rejection] = []
        for market in markets:
            try:
                priced.append(market.model_copy(update={"fee_model": self._fee_model(market, now)}))
            except (FeesUnknownError, WireFormatError) as e:
                rejected.append(Rejection(market_key=market.key, reason="fees_unknown", detail=str(e)))
        return priced, rejected

    def _fee_model(self, market: Market, now: datetime) -> FeeModel:
        if self.venue is Venue.KALSHI:
            fixed = kalshi_wire.fixed_fee_model(market, now, self.fees.kalshi_series_rates)
            if fixed is not None:
                return fixed
            series = kalshi_wire.series_of(market.event or market.id)
            payload = self._fee_payloads.get(series)
            if payload is None:
                raise FeesUnknownError(f"sample: no fee schedule recorded for series {series}")
            return kalshi_wire.scheduled_fee_model(series, kalshi_wire.series_fees_from_wire(payload), [], [], now)
        if self.fees.polymarket_taker_rate is not None:
            return polymarket_wire.override_fee_model(self.fees.polymarket_taker_rate)
        payload = self._fee_payloads.get(market.id)
        if payload is None:
            raise FeesUnknownError(f"sample: no CLOB fee recorded for market {market.id}")
        return polymarket_wire.fee_model_from_clob_market(payload, market)

    async def place_order(self, request: OrderRequest, market: Market) -> OrderResult:
        raise GiveUpError(READ_ONLY)

    async def find_order(self, client_order_id: str, market: Market, *,
                         action: OrderAction = OrderAction.BUY) -> OrderResult | None:
        raise GiveUpError(READ_ONLY)

    async def cancel(self, order: Order, market: Market) -> OrderResult | None:
        raise GiveUpError(READ_ONLY)

    async def resolution(self, market_id: str) -> Resolution | None:
        return None  # a snapshot is one moment: nothing in it ever resolves

    def _read_settled(self) -> tuple[list[tuple[Market, Resolution]], dict[str, Any]]:
        """settled.json's markets with a final resolution (through the live parsers) and its price payloads."""
        path = self.directory / SETTLED_FILE
        recorded: dict[str, Any] = {}
        if path.exists():
            recorded = json.loads(path.read_text(encoding="utf-8")).get(self.venue.value) or {}
        pairs: list[tuple[Market, Resolution]] = []
        for raw in recorded.get("markets") or []:
            if self.venue is Venue.KALSHI:
                market, resolution = kalshi_wire.market_from_wire(raw), kalshi_wire.resolution_from_wire(raw)
            else:
                market, resolution = polymarket_wire.market_from_wire(raw), polymarket_wire.resolution_from_wire(raw)
            if market is not None and resolution is not None:
                pairs.append((market, resolution))
        history = recorded.get("candlesticks" if self.venue is Venue.KALSHI else "prices_history") or {}
        return pairs, history

    async def _settled_data(self) -> tuple[list[tuple[Market, Resolution]], dict[str, Any]]:
        if self._settled is None:
            self._settled = await asyncio.to_thread(self._read_settled)
        return self._settled

    async def settled_markets(self, closed_after: datetime, closed_before: datetime,
                              limit: int) -> list[tuple[Market, Resolution]]:
        """The recorded settled markets (none without settled.json), newest close first."""
        pairs, _ = await self._settled_data()
        # Settled markets are history: left where they closed (not moved to look current like the listing), so
        # they keep their place against a model's knowledge cutoff whatever day the sample is run.
        inside = [p for p in pairs if closed_after <= p[0].close_time < closed_before]
        return sorted(inside, key=lambda p: p[0].close_time, reverse=True)[:limit]

    async def price_at(self, market: Market, at: datetime) -> Decimal | None:
        """The recorded history's price at `at`, read as the live client reads it."""
        _, history = await self._settled_data()
        recorded_at = at
        if self.venue is Venue.KALSHI:
            data = history.get(market.id)
            if data is None:
                return None
            since = (recorded_at - HISTORY_WINDOW).timestamp()
            window = {**data, "candlesticks": [c for c in data.get("candlesticks") or []
                                               if isinstance(c, dict) and since <= c.get("end_period_ts", 0)]}
            return kalshi_wire.price_from_candles(window, recorded_at)
        data = history.get(market.yes_token_id)
        if data is None:
            return None
        return polymarket_wire.price_from_history(data, recorded_at, recorded_at - HISTORY_WINDOW)

    def derived_secrets(self) -> tuple[str, ...]:
        return ()

    async def aclose(self) -> None:
        return None
