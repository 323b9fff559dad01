"""`oddsdesk check --venues`: a read-only probe of each configured venue against the pinned contracts.

Per venue: exchange status, one page of markets, one book (and a batch of books where the desk uses them), the
fee schedule of a market, and, with keys, the balance and the open orders. Every answer is validated against
its pinned schema (pipeline/drift.py) and read by the desk's own parsers; each drift is one line, scrubbed of
the clients' secrets. Nothing is written anywhere: no order, no cancel, no key creation (a Polymarket API key
is derived when the wallet has one, never created here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

import httpx

from .drift import KALSHI_SPEC_VERSION, POLYMARKET_CONTRACT_DATE, Finding, check, gone
from .errors import OddsdeskError, WireFormatError
from .models import Market, Venue, utcnow
from .venues import kalshi_wire, polymarket_wire
from .venues.kalshi import KalshiClient, order_from_wire
from .venues.polymarket import PolymarketClient

SAMPLE_MARKETS = 100  # one page of markets is enough to see the shape
NOTHING_TO_PROBE = "no market the desk can read on the first page: the book and fee routes were not probed"


@dataclass
class ProbeReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def drifts(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "drift"]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fail"]

    def exit_code(self) -> int:
        return 1 if self.drifts or self.failures else 0


Reader = Callable[[Any], object]


class _Call:
    """One probe step: GET, note the outcome, validate the body against its schema and read it with the desk's
    own parser (`read`); hands on what `read` made of it, else the body (None when there is nothing to use)."""

    def __init__(self, report: ProbeReport, venue: str, scrub: Callable[[str], str]) -> None:
        self.report, self.venue, self.scrub = report, venue, scrub

    def add(self, call: str, severity: Literal["drift", "note", "ok", "fail"], text: str) -> None:
        """Every line the probe prints goes through the client's scrubber: a venue may echo a key back."""
        self.report.findings.append(Finding(self.venue, call, severity, self.scrub(text)))

    async def __call__(self, call: str, send: Callable[[], Awaitable[httpx.Response]], schema: str,
                       read: Reader | None = None) -> Any:
        started = time.perf_counter()
        try:
            response = await send()
        except (httpx.HTTPError, OddsdeskError) as e:
            self.add(call, "fail", f"could not ask: {e or type(e).__name__}")
            return None
        ms = (time.perf_counter() - started) * 1000
        if response.status_code in (404, 405, 410):
            self.add(call, "drift", gone(response.status_code, self.scrub(response.text)))
            return None
        if not response.is_success:
            self.add(call, "fail", f"HTTP {response.status_code}: {self.scrub(response.text)[:200]}")
            return None
        try:
            body = response.json()
        except json.JSONDecodeError:
            self.add(call, "drift", "the answer is not JSON")
            return None
        found = check(self.venue, call, body, schema)
        result: Any = body
        if read is not None:
            try:
                result = read(body)
            except OddsdeskError as e:
                found.append(Finding(self.venue, call, "drift", f"the desk cannot read it: {e}"))
                result = None
        for finding in found:
            self.add(call, finding.severity, finding.text)
        if not any(f.severity == "drift" for f in found):
            self.add(call, "ok", f"matches {schema} ({ms:.0f} ms)")
        return result


def _each(parse: Callable[[Any], object], field: str) -> Reader:
    """A reader that parses every item of the answer's `field` list."""
    def read(body: Any) -> None:
        for raw in (body or {}).get(field) or []:
            parse(raw)
    return read


def _kalshi_markets(body: Any) -> list[Market]:
    return [kalshi_wire.market_from_wire(raw) for raw in (body or {}).get("markets") or []]


def _polymarket_markets(body: Any) -> list[Market]:
    """Gamma's markets the desk can trade; one of an unknown version is already a drift line (its enum)."""
    markets = []
    for raw in (body or {}).get("markets") or []:
        try:
            market = polymarket_wire.market_from_wire(raw)
        except polymarket_wire.UnsupportedMarket:
            continue
        if market is not None:
            markets.append(market)
    return markets


def _fees_of(series: str) -> Reader:
    def read(body: Any) -> None:
        setting = kalshi_wire.series_fees_from_wire(body)
        kalshi_wire.fee_model(setting.fee_type or "", setting.multiplier or Decimal(0), f"series {series}")
    return read


async def probe_kalshi(client: KalshiClient, report: ProbeReport) -> None:
    get = _Call(report, "kalshi", client.scrub)
    status = await get("GET /exchange/status", lambda: client.raw_get("/exchange/status"), "ExchangeStatus")
    if isinstance(status, dict) and status.get("trading_active") is False:
        get.add("GET /exchange/status", "note", "trading is not active right now")
    markets = await get("GET /markets", lambda: client.raw_get("/markets", {"status": "open", "limit": SAMPLE_MARKETS,
                                                                            "mve_filter": "exclude"}),
                        "GetMarketsResponse", _kalshi_markets) or []
    quoted = [m for m in markets if m.yes_bid is not None or m.yes_ask is not None][:5] or markets[:5]
    if quoted:
        first = quoted[0]
        await get("GET /markets/{ticker}/orderbook",
                  lambda: client.raw_get(f"/markets/{quote(first.id, safe='')}/orderbook", {"depth": 5}),
                  "GetMarketOrderbookResponse", lambda body: kalshi_wire.orderbook_from_wire(first.id, body))

        def every_book(body: Any) -> None:
            missing = [m.id for m in quoted if m.id not in kalshi_wire.orderbooks_from_wire(body)]
            if missing:
                raise WireFormatError(f"no book for {', '.join(missing)}")

        await get("GET /markets/orderbooks",
                  lambda: client.raw_get("/markets/orderbooks", [("tickers", m.id) for m in quoted]),
                  "GetMarketOrderbooksResponse", every_book)
        series = kalshi_wire.series_of(first.event or first.id)
        await get("GET /series/{series_ticker}", lambda: client.raw_get(f"/series/{quote(series, safe='')}"),
                  "GetSeriesResponse", _fees_of(series))
        await get("GET /series/fee_changes", lambda: client.raw_get("/series/fee_changes"),
                  "GetSeriesFeeChangesResponse", kalshi_wire.series_fee_changes_from_wire)
        if first.event:
            await get("GET /events/fee_changes",
                      lambda: client.raw_get("/events/fee_changes", {"event_ticker": first.event, "limit": 100}),
                      "GetEventFeeChangesResponse", kalshi_wire.event_fee_changes_from_wire)
    else:
        get.add("GET /markets/{ticker}/orderbook", "note", NOTHING_TO_PROBE)
    if not client.has_keys:
        get.add("portfolio", "note", "no API keys: balance and orders not probed")
        return
    await get("GET /portfolio/balance", lambda: client.raw_get("/portfolio/balance"), "GetBalanceResponse")
    await get("GET /portfolio/orders", lambda: client.raw_get("/portfolio/orders", {"status": "resting", "limit": 100}),
              "GetOrdersResponse", _each(order_from_wire, "orders"))


async def probe_polymarket(client: PolymarketClient, report: ProbeReport) -> None:
    get = _Call(report, "polymarket", client.scrub)
    ok = await _status(client, get)
    markets = await get("GET gamma /markets/keyset",
                        lambda: client.raw_get("gamma", "/markets/keyset", {"limit": str(SAMPLE_MARKETS),
                                                                            "active": "true", "closed": "false"}),
                        "GammaKeysetPage", _polymarket_markets) or []
    quoted = [m for m in markets if m.status == "open" and m.yes_ask is not None][:1] or markets[:1]
    if quoted and ok:
        first = quoted[0]
        await get("GET clob /book", lambda: client.raw_get("clob", "/book", {"token_id": first.yes_token_id}),
                  "ClobBook", lambda body: polymarket_wire.orderbook_from_wire(first.id, body))
        await get("GET clob /clob-markets/{condition_id}", lambda: client.raw_get("clob", f"/clob-markets/{first.id}"),
                  "ClobMarket", lambda body: polymarket_wire.fee_model_from_clob_market(body, first))
    elif ok:
        get.add("GET clob /book", "note", NOTHING_TO_PROBE)
    if not client.has_keys:
        get.add("account", "note", "no POLYMARKET_PRIVATE_KEY: balance and orders not probed")
        return
    kind = str(client.credentials.signature_type)
    await get("GET clob /balance-allowance",
              lambda: client.raw_get("clob", "/balance-allowance", {"asset_type": "COLLATERAL", "signature_type": kind},
                                     auth=True), "BalanceAllowance")
    await get("GET clob /data/orders",
              lambda: client.raw_get("clob", "/data/orders", {"next_cursor": polymarket_wire.FIRST_CURSOR}, auth=True),
              "OpenOrdersPage")


async def _status(client: PolymarketClient, get: _Call) -> bool:
    """The CLOB's health check (`GET /` answers "OK"); False when the CLOB cannot be reached at all."""
    try:
        response = await client.raw_get("clob", "/")
    except (httpx.HTTPError, OddsdeskError) as e:
        get.add("GET clob /", "fail", f"could not ask: {e or type(e).__name__}")
        return False
    if response.status_code != 200:
        get.add("GET clob /", "fail", f"HTTP {response.status_code}")
        return False
    get.add("GET clob /", "ok", f"the CLOB answers ({response.text[:20]!r})")
    return True


async def probe(venues: dict[Venue, Any]) -> ProbeReport:
    """Probe every venue given; one venue failing never stops the others."""
    report = ProbeReport()
    report.findings.append(Finding("contracts", "pinned", "note",
                                   f"Kalshi OpenAPI v{KALSHI_SPEC_VERSION}, Polymarket as of {POLYMARKET_CONTRACT_DATE}; "
                                   f"checked at {utcnow():%Y-%m-%d %H:%M} UTC"))
    for venue, client in venues.items():
        try:
            if venue is Venue.KALSHI:
                await probe_kalshi(client, report)
            else:
                await probe_polymarket(client, report)
        except Exception as e:  # noqa: BLE001 - the probe reports; it never stops half-way silently
            report.findings.append(Finding(venue.value, "probe", "fail",
                                           client.scrub(f"stopped: {type(e).__name__}: {e}")))
    return report
