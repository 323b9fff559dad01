"""KalshiClient against the fake Trade API over real HTTP on 127.0.0.1: signing, paging, orders, the Desk.

Nothing of ours is monkeypatched: the client signs with a throwaway RSA key, the fake verifies
with its public half, and faults come from the loopback server.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pipeline.config import Environment, FeesConfig, KalshiConfig, Settings
from pipeline.desk import Desk
from pipeline.errors import ConfigError, GiveUpError, OutcomeUnknownError, RetryableError, VenueContractError
from pipeline.models import Market, OrderBook, OrderRequest, OrderStatus, Side, SignalStatus, Venue, VenueScanStats
from pipeline.store import Store
from pipeline.venues import kalshi_wire
from pipeline.venues.base import VenueClient
from pipeline.venues.http import RetryPolicy
from pipeline.venues.kalshi import KalshiClient, auth_headers, fills_from_totals

from .conftest import make_settings
from .contracts import kalshi_errors, unknown_fields
from .fakes import NOW
from .servers.base import LoopbackServer
from .servers.kalshi import PREFIX, FakeKalshi
from .test_desk import ADMIN, Clock, FixedAnalyzer

D = Decimal
KEY_ID = "a1b2c3d4-kalshi-test-key"
FEES = FeesConfig()
FAST = RetryPolicy(attempts=6, base_delay=0.001, max_delay=0.01)
ORDERS = f"{PREFIX}/portfolio/orders"  # V1: reads only since June 2026
ORDERS_V2 = f"{PREFIX}/portfolio/events/orders"
FED = "KXFED-26DEC-H0"


@cache
def rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    """Throwaway 2048-bit keys, made once per session: key 0 is the desk's, key 1 a stranger's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def kalshi_config(**overrides: Any) -> KalshiConfig:
    values: dict[str, Any] = {"reads_per_second": 1000, "writes_per_second": 1000, "timeout_seconds": 2}
    return KalshiConfig(**{**values, **overrides})


def client_for(fake: FakeKalshi, *, key: rsa.RSAPrivateKey | None = None, key_id: str | None = KEY_ID,
               clock: Any = time.time, unsigned: bool = False, **config: Any) -> KalshiClient:
    if unsigned:
        return KalshiClient(fake.base_url, None, None, FEES, kalshi_config(**config), retry=FAST)
    return KalshiClient(fake.base_url, key_id, key or rsa_key(0), FEES, kalshi_config(**config), retry=FAST,
                        clock=clock)


def add_fed(fake: FakeKalshi) -> None:
    """The desk tests' standard market: YES bids 0.40 x2000, 0.38 x500; YES asks 0.42 x100, 0.44 x100, 0.50 x500."""
    fake.add_market(FED, yes=[("0.40", "2000"), ("0.38", "500")], no=[("0.58", "100"), ("0.56", "100"),
                                                                       ("0.50", "500")],
                    title="Will the Fed hold rates steady in December 2026?", close_time=NOW + timedelta(days=10))


def market_of(fake: FakeKalshi, ticker: str = FED) -> Market:
    """The market as a scan lists it: without fees (those are the series', read by with_fees)."""
    return kalshi_wire.market_from_wire(fake.market_view(ticker))


def order(cid: str, contracts: str = "113", limit: str = "0.44", side: Side = Side.YES,
          tif: str = "immediate_or_cancel", ticker: str = FED) -> OrderRequest:
    return OrderRequest(client_order_id=cid, venue=Venue.KALSHI, market_id=ticker, side=side,
                        contracts=D(contracts), limit_price=D(limit), time_in_force=tif)  # type: ignore[arg-type]


def posts(server: LoopbackServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests if r.method == "POST" and r.path == ORDERS_V2]


async def signed(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A raw request signed like the client signs, for payloads and bodies the client would never send."""
    request = http.build_request(method, path, **kwargs)
    request.headers.update(auth_headers(KEY_ID, rsa_key(0), method, request.url.raw_path.decode().split("?")[0],
                                        time.time()))
    return await http.send(request)


@dataclass
class Env:
    fake: FakeKalshi
    server: LoopbackServer
    client: KalshiClient


@pytest.fixture
async def kalshi() -> AsyncIterator[Env]:
    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID, now=NOW)
    async with fake.serve() as server:
        client = client_for(fake)
        try:
            yield Env(fake, server, client)
        finally:
            await client.aclose()


def chain_text(error: BaseException) -> str:
    """Every message in an exception's cause/context chain: secrets must be in none of them."""
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def key_material(key: rsa.RSAPrivateKey) -> list[str]:
    return [line for line in pem(key).splitlines() if line and not line.startswith("-----")]


# -- signing ------------------------------------------------------------------------------------

async def test_signatures_cover_the_prefixed_path_without_the_query_and_the_fake_accepts_them(kalshi):
    kalshi.fake.generate(3)
    assert await kalshi.client.get_balance() == D("10000")
    await kalshi.client.list_markets()
    listing = kalshi.server.requests[-1]
    assert listing.path == f"{PREFIX}/markets" and listing.query["status"] == "open"
    headers = {k.upper(): v for k, v in listing.headers.items()}
    stamp = headers["KALSHI-ACCESS-TIMESTAMP"]
    assert headers["KALSHI-ACCESS-KEY"] == KEY_ID and len(stamp) == 13 and abs(int(stamp) / 1000 - time.time()) < 5
    # Checked here, independently of the fake: PSS with salt = digest length, over ts + METHOD + full path.
    rsa_key(0).public_key().verify(
        base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]), f"{stamp}GET{PREFIX}/markets".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    assert kalshi.fake.auth_failures == []


async def test_a_wrong_key_gives_up_with_an_actionable_hint_and_no_key_material(kalshi):
    kalshi.fake.generate(2)
    stranger = client_for(kalshi.fake, key=rsa_key(1))
    try:
        for call in (stranger.get_balance, stranger.list_markets):  # public reads refuse a bad signature too
            with pytest.raises(GiveUpError) as info:
                await call()
            text = chain_text(info.value)
            assert "kalshi: unauthorized: invalid signature" in str(info.value)
            for hint in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH", "demo and production", "clock"):
                assert hint in str(info.value)
            sent = {k.upper(): v for k, v in kalshi.server.requests[-1].headers.items()}
            for secret in [KEY_ID, sent["KALSHI-ACCESS-SIGNATURE"], *key_material(rsa_key(1)),
                           *key_material(rsa_key(0))]:
                assert secret not in text
        assert kalshi.server.count("GET", f"{PREFIX}/portfolio/balance") == 1  # a 401 is not retried
    finally:
        await stranger.aclose()


async def test_a_machine_clock_off_by_more_than_30_seconds_is_refused(kalshi):
    slow = client_for(kalshi.fake, clock=lambda: time.time() - 45)
    close_enough = client_for(kalshi.fake, clock=lambda: time.time() - 20)
    try:
        with pytest.raises(GiveUpError, match="clock"):
            await slow.get_balance()
        assert kalshi.fake.auth_failures == ["request timestamp is too far from the server clock"]
        assert await close_enough.get_balance() == D("10000")
    finally:
        await slow.aclose()
        await close_enough.aclose()


async def test_market_data_needs_no_keys_but_portfolio_calls_say_which_variables_to_set(kalshi):
    kalshi.fake.generate(5)
    add_fed(kalshi.fake)
    public = client_for(kalshi.fake, unsigned=True)
    try:
        assert isinstance(public, VenueClient)
        assert len(await public.list_markets()) == 6
        await public.get_order_book(market_of(kalshi.fake))
        assert all("KALSHI-ACCESS-KEY" not in {k.upper() for k in r.headers} for r in kalshi.server.requests)
        for call in (public.get_balance, public.get_positions,
                     lambda: public.place_order(order("od-nokeys"), market_of(kalshi.fake)),
                     lambda: public.find_order("od-nokeys", market_of(kalshi.fake))):
            with pytest.raises(GiveUpError, match="set KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH"):
                await call()
        assert not any("/portfolio/" in r.path for r in kalshi.server.requests)  # refused before sending
    finally:
        await public.aclose()


async def test_from_settings_loads_the_key_from_a_file_or_from_the_environment(kalshi, tmp_path):
    path = tmp_path / "kalshi.pem"
    path.write_text(pem(rsa_key(0)))
    one_line = pem(rsa_key(0)).replace("\n", "\\n")  # how one-line env files carry it
    for env in (Environment(KALSHI_API_URL=kalshi.fake.base_url, KALSHI_API_KEY_ID=KEY_ID,
                            KALSHI_PRIVATE_KEY_PATH=str(path)),
                Environment(KALSHI_API_URL=kalshi.fake.base_url, KALSHI_API_KEY_ID=KEY_ID,
                            KALSHI_PRIVATE_KEY=one_line)):
        client = KalshiClient.from_settings(Settings(env=env))
        try:
            assert client.has_keys and await client.get_balance() == D("10000")
        finally:
            await client.aclose()
    anonymous = KalshiClient.from_settings(Settings(env=Environment(KALSHI_API_URL=kalshi.fake.base_url)))
    assert not anonymous.has_keys
    await anonymous.aclose()


@pytest.mark.parametrize("env, variable, hidden", [
    ({"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": "/secret/place/kalshi.pem"},
     "KALSHI_PRIVATE_KEY_PATH", "/secret/place"),
    ({"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nTOPSECRETBYTES\n"
                                                         "-----END PRIVATE KEY-----\n"},
     "KALSHI_PRIVATE_KEY", "TOPSECRETBYTES"),
    ({"KALSHI_API_KEY_ID": KEY_ID}, "KALSHI_PRIVATE_KEY_PATH", KEY_ID),
    ({"KALSHI_PRIVATE_KEY": "pem-goes-here"}, "KALSHI_API_KEY_ID", "pem-goes-here"),
])
def test_from_settings_errors_name_the_variable_and_never_the_key(env, variable, hidden):
    with pytest.raises(ConfigError) as info:
        KalshiClient.from_settings(Settings(env=Environment(**env)))
    message = str(info.value)
    assert variable in message and hidden not in chain_text(info.value) and "\n" not in message


def test_an_encrypted_or_non_rsa_key_is_a_config_error(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    encrypted = rsa_key(0).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw")).decode()
    not_rsa = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for text, expected in ((encrypted, "not an unencrypted PEM"), (not_rsa, "not an RSA key")):
        with pytest.raises(ConfigError, match=expected):
            KalshiClient.from_settings(Settings(env=Environment(KALSHI_API_KEY_ID=KEY_ID, KALSHI_PRIVATE_KEY=text)))


# -- scanning -----------------------------------------------------------------------------------

async def test_scanning_10000_markets_fetches_each_of_10_pages_exactly_once(kalshi):
    started = time.perf_counter()
    tickers = kalshi.fake.generate(10_000)
    assert time.perf_counter() - started < 1.0  # the universe itself must stay cheap
    stats = VenueScanStats()
    markets = await kalshi.client.list_markets(stats)
    assert [m.id for m in markets] == tickers
    assert stats.pages == 10 and stats.markets == 10_000 and stats.skipped == 0
    assert stats.requests == 10 and stats.retries == 0
    assert len(kalshi.fake.page_fetches) == 10 and set(kalshi.fake.page_fetches.values()) == {1}
    listings = [r.query for r in kalshi.server.requests if r.path == f"{PREFIX}/markets"]
    assert "cursor" not in listings[0] and all(q["cursor"] for q in listings[1:])
    assert all(q["status"] == "open" and q["limit"] == "1000" and q["mve_filter"] == "exclude" for q in listings)


async def test_a_scan_rides_out_429_500_timeouts_and_malformed_pages():
    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID, now=NOW)
    fake.generate(10_000)
    async with fake.serve(hang_seconds=0.6) as server:
        for page, kind in ((0, "429"), (2, "500"), (4, "timeout"), (6, "malformed"), (9, "429"), (9, "503")):
            fake.fault_on_page(page, kind)  # type: ignore[arg-type]
        client = client_for(fake, timeout_seconds=0.3)
        try:
            stats = VenueScanStats()
            markets = await client.list_markets(stats)
        finally:
            await client.aclose()
    assert len(markets) == 10_000 and stats.pages == 10 and stats.markets == 10_000
    assert stats.retries == 6 and stats.requests == 16
    assert sorted(kind for kind, _, _ in server.faults.fired) == ["429", "429", "500", "503", "malformed", "timeout"]
    assert len(fake.page_fetches) == 10 and set(fake.page_fetches.values()) == {1}  # served successfully once each


async def test_rate_limited_reads_give_up_retryable_with_kalshis_reason(kalshi):
    kalshi.server.faults.add("429", f"{PREFIX}/markets", "GET", times=10)
    with pytest.raises(RetryableError, match="kalshi: HTTP 429: too many requests") as info:
        await kalshi.client.list_markets()
    assert "gave up after 6 tries" in str(info.value)


async def test_multivariate_markets_are_excluded_unless_configured(kalshi):
    kalshi.fake.generate(3)
    add_fed(kalshi.fake)
    kalshi.fake.add_market("KXMVECROSSCATEGORY-S2026-ABC", yes=[("0.10", "50")], no=[("0.85", "50")],
                           mve_collection="KXMVECROSSCATEGORY-R")
    default = await kalshi.client.list_markets()
    assert len(default) == 4 and not any(m.id.startswith("KXMVE") for m in default)
    combos = client_for(kalshi.fake, include_multivariate=True)
    try:
        everything = await combos.list_markets()
    finally:
        await combos.aclose()
    assert len(everything) == 5 and "mve_filter" not in kalshi.server.requests[-1].query


async def test_unreadable_and_scalar_markets_are_skipped_without_sinking_the_page(kalshi):
    kalshi.fake.generate(5)
    kalshi.fake.add_raw_market({"ticker": "KXBROKEN-26DEC-T1", "event_ticker": "KXBROKEN-26DEC", "status": "active",
                                "yes_bid_dollars": "forty cents"})
    kalshi.fake.add_market("KXSCALAR-26DEC", yes=[("0.30", "10")], no=[("0.60", "10")], market_type="scalar")
    stats = VenueScanStats()
    markets = await kalshi.client.list_markets(stats)
    assert len(markets) == 5 and stats.markets == 5 and stats.skipped == 2 and stats.pages == 1


async def test_order_books_are_served_bids_only_and_read_in_yes_terms(kalshi):
    add_fed(kalshi.fake)
    book = await kalshi.client.get_order_book(market_of(kalshi.fake))
    assert [(lvl.price, lvl.size) for lvl in book.yes_asks] == [(D("0.42"), 100), (D("0.44"), 100), (D("0.50"), 500)]
    assert [(lvl.price, lvl.size) for lvl in book.yes_bids] == [(D("0.40"), 2000), (D("0.38"), 500)]
    assert kalshi.server.requests[-1].query == {"depth": "20"}
    gone = market_of(kalshi.fake).model_copy(update={"id": "KXGONE-26DEC-T1"})
    with pytest.raises(GiveUpError, match="kalshi: not_found: market not found"):
        await kalshi.client.get_order_book(gone)


# -- orders -------------------------------------------------------------------------------------

V2_BODY = {"ticker": FED, "client_order_id": "od-ioc-full", "side": "bid", "count": "113.00", "price": "0.4400",
           "time_in_force": "immediate_or_cancel", "self_trade_prevention_type": "taker_at_cross"}


async def test_an_ioc_order_goes_through_v2_fills_across_levels_and_reads_back_kalshis_fees(kalshi):
    add_fed(kalshi.fake)
    result = await kalshi.client.place_order(order("od-ioc-full"), market_of(kalshi.fake))
    [body] = posts(kalshi.server)
    assert kalshi_errors(body, "CreateOrderV2Request") == [] and not unknown_fields(body, "CreateOrderV2Request")
    assert body == V2_BODY  # buying YES is a bid on the YES book, counts and prices as fixed-point strings
    assert kalshi.server.count("POST", ORDERS) == 0  # the retired V1 write is never used
    # 100 @ 0.42: 0.07 * 100 * 0.42 * 0.58 = 1.7052; 13 @ 0.44: 0.07 * 13 * 0.44 * 0.56 = 0.224224 -> 0.2243
    # (each trade rounded up to $0.0001, no longer to the cent): 1.9295 in all.
    assert result.status is OrderStatus.FILLED and result.filled == 113
    assert result.cost == D("47.72") and result.fees == D("1.9295") and result.venue_order_id
    assert result.average_price == D("47.72") / 113
    venue_side = kalshi.fake.by_client_id("od-ioc-full")
    assert venue_side["taker_fees_dollars"] == "1.9295" and venue_side["taker_fill_cost_dollars"] == "47.7200"
    assert (venue_side["outcome_side"], venue_side["book_side"]) == ("yes", "bid")
    # the create answer has counts only: the exact totals come from reading the order back once
    assert kalshi.server.count("GET", f"{ORDERS}/{result.venue_order_id}") == 1
    assert await kalshi.client.get_order(result.venue_order_id) == result
    assert await kalshi.client.get_balance() == D("10000") - D("47.72") - D("1.9295")
    [position] = await kalshi.client.get_positions()
    assert (position.ticker, position.position, position.exposure, position.fees_paid) == (
        FED, D(113), D("47.72"), D("1.9295"))


async def test_fees_follow_the_series_schedule_on_the_exchange(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.set_series("KXFED", fee_type="quadratic", fee_multiplier="0.5")
    market = market_of(kalshi.fake)
    [priced], rejected = await kalshi.client.with_fees([market], NOW)
    assert rejected == [] and priced.fees.rate == D("0.035") and "KXFED" in priced.fees.source
    result = await kalshi.client.place_order(order("od-half", contracts="100", limit="0.42"), priced)
    # 0.035 * 100 * 0.42 * 0.58 = 0.8526: what the desk's model says is what Kalshi charged
    assert result.fees == D("0.8526") == priced.fees.fee(D(100), D("0.42"))
    # cached: a second pricing asks nothing more of the exchange
    series_reads = kalshi.server.count("GET", f"{PREFIX}/series/KXFED")
    await kalshi.client.with_fees([market], NOW)
    assert series_reads == 1 and kalshi.server.count("GET", f"{PREFIX}/series/KXFED") == 1
    assert kalshi.server.count("GET", f"{PREFIX}/series/fee_changes") == 1


async def test_a_scheduled_change_and_an_event_override_apply_from_their_time(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    now = datetime.now(timezone.utc)  # the fake's clock is the wall clock
    later = now + timedelta(hours=2)
    kalshi.fake.add_series_fee_change("KXFED", "quadratic_with_maker_fees", 1, later)
    [now_priced], _ = await kalshi.client.with_fees([market], now)
    [then_priced], _ = await kalshi.client.with_fees([market], later + timedelta(minutes=1))
    assert (now_priced.fees.rate, now_priced.fees.maker_rate) == (D("0.07"), 0)
    assert (then_priced.fees.rate, then_priced.fees.maker_rate) == (D("0.07"), D("0.0175"))
    kalshi.fake.set_event_fee_override("KXFED-26DEC", "quadratic", 2, now - timedelta(hours=1))
    fresh = client_for(kalshi.fake)  # a new process: nothing cached
    try:
        [overridden], _ = await fresh.with_fees([market], now)
        assert overridden.fees.rate == D("0.14") and "event KXFED-26DEC override" in overridden.fees.source
    finally:
        await fresh.aclose()


async def test_an_events_overrides_are_read_across_every_page(kalshi):
    add_fed(kalshi.fake)
    start = datetime.now(timezone.utc) - timedelta(days=2)
    for minute in range(100):  # a full first page of older overrides ...
        kalshi.fake.set_event_fee_override("KXFED-26DEC", "quadratic", "0.5", start + timedelta(minutes=minute))
    kalshi.fake.set_event_fee_override("KXFED-26DEC", "quadratic", 2, start + timedelta(hours=3))  # ... the last
    [priced], _ = await kalshi.client.with_fees([market_of(kalshi.fake)], datetime.now(timezone.utc))
    assert priced.fees.rate == D("0.14") and kalshi.server.count("GET", f"{PREFIX}/events/fee_changes") == 2


async def test_one_series_that_cannot_be_read_rejects_only_its_own_markets(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.add_market("KXCPI-26NOV-T3", yes=[("0.40", "10")], no=[("0.55", "10")])
    kalshi.server.faults.add("500", f"{PREFIX}/series/KXCPI", "GET", times=100)  # down for the whole cycle
    priced, [rejection] = await kalshi.client.with_fees([market_of(kalshi.fake), market_of(kalshi.fake,
                                                                                           "KXCPI-26NOV-T3")], NOW)
    assert [m.id for m in priced] == [FED]
    assert rejection.market_key == "kalshi:KXCPI-26NOV-T3" and rejection.reason == "fees_unavailable"


async def test_a_series_that_cannot_be_read_is_asked_once_per_pricing_not_once_per_market(kalshi):
    tickers = [f"KXCPI-26NOV-T{n}" for n in range(5)]
    for ticker in tickers:
        kalshi.fake.add_market(ticker, yes=[("0.40", "10")], no=[("0.55", "10")])
    kalshi.server.faults.add("500", f"{PREFIX}/series/KXCPI", "GET", times=100)
    priced, rejected = await kalshi.client.with_fees([market_of(kalshi.fake, t) for t in tickers], NOW)
    assert priced == [] and [r.reason for r in rejected] == ["fees_unavailable"] * 5
    assert kalshi.server.count("GET", f"{PREFIX}/series/KXCPI") == FAST.attempts  # one read, with its retries


async def test_an_approvals_fresh_read_that_fails_is_a_refusal_never_the_cached_schedule(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    [cached], _ = await kalshi.client.with_fees([market], NOW)
    assert cached.fees.rate == D("0.07")
    kalshi.fake.set_series("KXFED", fee_type="quadratic", fee_multiplier=2)  # raised since the cycle ...
    kalshi.server.faults.add("500", f"{PREFIX}/series/KXFED", "GET", times=100)  # ... and now unreadable
    priced, [rejection] = await kalshi.client.with_fees([market], NOW, fresh=True)
    assert priced == [] and rejection.reason == "fees_unavailable"
    [still_cached], _ = await kalshi.client.with_fees([market], NOW)  # a cycle may use the cache meanwhile
    assert still_cached.fees.rate == D("0.07")


async def test_a_key_id_echoed_back_is_scrubbed_before_the_message_is_cut(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.order_refusals.append((400, "invalid_order", "x" * 190 + KEY_ID + " echoed"))
    with pytest.raises(GiveUpError) as caught:
        await kalshi.client.place_order(order("od-echo"), market_of(kalshi.fake))
    assert KEY_ID[:8] not in str(caught.value) and "<key id>" in str(caught.value)


@given(st.integers(1, 500_000), st.integers(1, 9_999))
@settings(max_examples=500, deadline=None)
def test_fills_from_totals_add_up_to_the_venues_cost_for_fractional_counts(hundredths, average_ten_thousandths):
    count = D(hundredths) / 100
    cost = (count * D(average_ten_thousandths) / 10_000).quantize(D("0.0001"))
    if cost <= 0:
        return
    fills = fills_from_totals(count, cost, D("0.01"))
    assert sum(f.contracts for f in fills) == count
    assert sum(f.contracts * f.price for f in fills) == cost  # exactly, to the last digit
    assert all(f.contracts % D("0.01") == 0 for f in fills) and len(fills) <= 2


async def test_a_series_whose_fees_cannot_be_priced_is_rejected_with_the_reason(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.set_series("KXFED", fee_type="flat", fee_multiplier=1)
    priced, [rejection] = await kalshi.client.with_fees([market_of(kalshi.fake)], NOW)
    assert priced == [] and rejection.reason == "fees_unknown" and "'flat'" in rejection.detail
    # the config's override trades it anyway, at the rate the operator chose
    client = KalshiClient(kalshi.fake.base_url, KEY_ID, rsa_key(0), FeesConfig(kalshi_series_rates={"KXFED": "0.05"}),
                          kalshi_config(), retry=FAST)
    try:
        [priced], rejected = await client.with_fees([market_of(kalshi.fake)], NOW)
        assert rejected == [] and priced.fees.rate == D("0.05") and "config" in priced.fees.source
    finally:
        await client.aclose()


async def test_totals_that_do_not_average_evenly_still_add_up_to_the_venues_cost(kalshi):
    kalshi.fake.add_market("KXODD-26DEC-T1", yes=[("0.40", "10")], no=[("0.58", "1"), ("0.56", "100")])
    result = await kalshi.client.place_order(order("od-odd", contracts="21", ticker="KXODD-26DEC-T1"),
                                             market_of(kalshi.fake, "KXODD-26DEC-T1"))
    assert D(21) * (D("9.22") / 21) != D("9.22")  # one Fill at the average would not add back up
    assert result.status is OrderStatus.FILLED and result.filled == 21
    # 1 @ 0.42: 0.07 * 0.2436 = 0.017052 -> 0.0171; 20 @ 0.44: 0.07 * 20 * 0.2464 = 0.34496 -> 0.3450
    assert result.cost == D("9.22") and result.fees == D("0.0171") + D("0.3450")
    assert [(f.contracts, f.price) for f in result.fills] == [(11, D("0.4390")), (10, D("0.4391"))]


async def test_an_ioc_partial_fill_is_partially_filled_and_the_rest_cancelled(kalshi):
    add_fed(kalshi.fake)
    result = await kalshi.client.place_order(order("od-ioc-part", contracts="300"), market_of(kalshi.fake))
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled == 200
    # 100 @ 0.42 -> 1.7052; 100 @ 0.44: 0.07 * 100 * 0.2464 = 1.7248
    assert result.cost == D("86.00") and result.fees == D("1.7052") + D("1.7248")
    assert "200 of 300 filled at or below 0.4400" in result.reason
    assert kalshi.fake.by_client_id("od-ioc-part")["status"] == "canceled"


async def test_a_fill_or_kill_that_cannot_fill_is_killed_and_the_book_is_untouched(kalshi):
    add_fed(kalshi.fake)
    before = await kalshi.client.get_order_book(market_of(kalshi.fake))
    result = await kalshi.client.place_order(order("od-fok", contracts="300", tif="fill_or_kill"),
                                             market_of(kalshi.fake))
    assert result.status is OrderStatus.CANCELED and result.fills == () and "no fill" in result.reason
    after = await kalshi.client.get_order_book(market_of(kalshi.fake))
    assert after.yes_asks == before.yes_asks and after.yes_bids == before.yes_bids


async def test_a_gtc_remainder_rests_until_cancelled_through_v2_routed_by_ticker(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    result = await kalshi.client.place_order(order("od-gtc", contracts="300", tif="good_till_canceled"), market)
    assert result.status is OrderStatus.RESTING and result.filled == 200 and result.reason == "100 resting at 0.4400"
    book = await kalshi.client.get_order_book(market)
    assert (book.yes_bids[0].price, book.yes_bids[0].size) == (D("0.44"), 100)
    cancelled = await kalshi.client.cancel_order(result.venue_order_id, FED)
    assert cancelled.status is OrderStatus.PARTIALLY_FILLED and cancelled.filled == 200
    [cancel] = [r for r in kalshi.server.requests if r.method == "DELETE"]
    assert cancel.path == f"{ORDERS_V2}/{result.venue_order_id}" and cancel.query == {"market_ticker": FED}
    assert kalshi.server.count("DELETE", f"{ORDERS}/{result.venue_order_id}") == 0
    assert (await kalshi.client.get_order_book(market)).yes_bids[0].price == D("0.40")
    # cancelling what no longer rests (404 at the venue) reads the order back as it stands
    again = await kalshi.client.cancel_order(result.venue_order_id, FED)
    assert again.status is OrderStatus.PARTIALLY_FILLED


async def test_a_resting_order_filled_later_is_charged_the_series_maker_fee(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.set_series("KXFED", fee_type="quadratic_with_maker_fees", fee_multiplier=1)
    result = await kalshi.client.place_order(order("od-maker", contracts="50", limit="0.39",
                                                   tif="good_till_canceled"), market_of(kalshi.fake))
    assert result.status is OrderStatus.RESTING and result.filled == 0  # below the asks: rests whole
    kalshi.fake.fill_resting(result.venue_order_id, "20")
    later = await kalshi.client.get_order(result.venue_order_id)
    # maker: 0.0175 * 20 * 0.39 * 0.61 = 0.0832650 -> 0.0833 (a taker would have paid 0.3331)
    assert later.status is OrderStatus.RESTING and later.filled == 20
    assert later.fees == D("0.0833") and later.cost == D("7.80")


async def test_buying_no_is_an_ask_on_the_yes_book_at_one_minus_the_price(kalshi):
    add_fed(kalshi.fake)
    result = await kalshi.client.place_order(order("od-no", contracts="50", limit="0.62", side=Side.NO),
                                             market_of(kalshi.fake))
    [body] = posts(kalshi.server)
    assert kalshi_errors(body, "CreateOrderV2Request") == []
    assert (body["side"], body["price"], body["count"]) == ("ask", "0.3800", "50.00")
    # it lifts the YES bid at 0.40: NO at 0.60; fee 0.07 * 50 * 0.60 * 0.40 = 0.84; cost in NO terms
    assert result.status is OrderStatus.FILLED and result.average_price == D("0.60")
    assert result.fees == D("0.84") and result.cost == D("30.00")
    venue_side = kalshi.fake.by_client_id("od-no")
    assert (venue_side["outcome_side"], venue_side["book_side"]) == ("no", "ask")


async def test_fractional_counts_go_in_hundredths_and_whole_ones_where_configured(kalshi):
    add_fed(kalshi.fake)
    result = await kalshi.client.place_order(order("od-frac", contracts="2.5"), market_of(kalshi.fake))
    assert posts(kalshi.server)[0]["count"] == "2.50" and result.filled == D("2.5")
    whole = client_for(kalshi.fake, fractional_contracts=False)
    try:
        [market] = [m for m in await whole.list_markets() if m.id == FED]
        assert market.contract_step == 1
        with pytest.raises(GiveUpError, match="whole contracts; nothing was sent"):
            await whole.place_order(order("od-frac-2", contracts="2.5"), market)
    finally:
        await whole.aclose()
    assert len(posts(kalshi.server)) == 1


async def test_a_post_is_never_retried_a_500_leaves_the_outcome_unknown(kalshi):
    add_fed(kalshi.fake)
    kalshi.server.faults.add("500", ORDERS_V2, "POST")
    with pytest.raises(OutcomeUnknownError, match="HTTP 500"):
        await kalshi.client.place_order(order("od-500"), market_of(kalshi.fake))
    assert kalshi.server.count("POST", ORDERS_V2) == 1
    kalshi.server.faults.add("429", ORDERS_V2, "POST")  # a 429 is a clear refusal: not taken, not retried
    with pytest.raises(RetryableError, match="too many requests"):
        await kalshi.client.place_order(order("od-429"), market_of(kalshi.fake))
    assert kalshi.server.count("POST", ORDERS_V2) == 2 and kalshi.fake.orders == {}


async def test_an_accepted_order_whose_reply_is_lost_is_found_by_client_order_id(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    kalshi.server.faults.add("drop_after", ORDERS_V2, "POST")
    with pytest.raises(OutcomeUnknownError):
        await kalshi.client.place_order(order("od-lost"), market)
    assert kalshi.server.count("POST", ORDERS_V2) == 1 and len(kalshi.fake.orders) == 1
    found = await kalshi.client.find_order("od-lost", market)
    assert found is not None and found.status is OrderStatus.FILLED and found.filled == 113
    assert found.fees == D("1.9295") and found.client_order_id == "od-lost"
    lookups = [r for r in kalshi.server.requests if r.method == "GET" and r.path == ORDERS]
    assert lookups[0].query["ticker"] == FED
    assert await kalshi.client.find_order("od-never-sent", market) is None
    assert kalshi.server.count("POST", ORDERS_V2) == 1  # looking up never posts


async def test_a_fill_whose_read_back_fails_is_unknown_and_found_later_never_resent(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    kalshi.server.faults.add("500", f"{ORDERS}/", "GET", times=6)  # every try of the read-back fails
    with pytest.raises(OutcomeUnknownError, match="took order od-readback .113 filled at an average of"):
        await kalshi.client.place_order(order("od-readback"), market)
    found = await kalshi.client.find_order("od-readback", market)
    assert found is not None and found.filled == 113 and found.cost == D("47.72")
    assert kalshi.server.count("POST", ORDERS_V2) == 1


async def test_find_order_follows_the_cursor_and_looks_in_the_archive(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    for n in range(5):
        await kalshi.client.place_order(order(f"od-page-{n}", contracts="1"), market)
    kalshi.fake.orders_page_cap = 2  # newest first, two a page: the oldest is on the third page
    found = await kalshi.client.find_order("od-page-0", market)
    assert found is not None and found.client_order_id == "od-page-0"
    pages = [r.query.get("cursor", "") for r in kalshi.server.requests if r.path == ORDERS and r.method == "GET"]
    assert len(pages) == 3 and pages[0] == "" and all(pages[1:])
    kalshi.fake.archive(kalshi.fake.client_ids["od-page-1"])
    archived = await kalshi.client.find_order("od-page-1", market)
    assert archived is not None and archived.status is OrderStatus.FILLED
    assert kalshi.server.count("GET", f"{PREFIX}/historical/orders") == 1


async def test_a_409_for_an_existing_client_order_id_is_looked_up_never_sent_again(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    first = await kalshi.client.place_order(order("od-dup", contracts="1"), market)
    again = await kalshi.client.place_order(order("od-dup", contracts="1"), market)
    assert again.venue_order_id == first.venue_order_id and again.filled == 1
    assert len(kalshi.fake.orders) == 1 and kalshi.server.count("POST", ORDERS_V2) == 2


async def test_orders_kalshi_cannot_take_are_refused_before_sending(kalshi):
    add_fed(kalshi.fake)
    for bad in (order("od-tiny", contracts="2.555"), order("od-subtick", limit="0.44001")):
        with pytest.raises(GiveUpError, match="nothing was sent"):
            await kalshi.client.place_order(bad, market_of(kalshi.fake))
    assert kalshi.server.count("POST", ORDERS_V2) == 0


@pytest.mark.parametrize("status, code, contract", [
    (400, "insufficient_balance", False), (409, "trading_is_paused", False), (400, "invalid_price", False),
    (400, "self_trade_window_closed", True), (422, "", True),
])
async def test_a_refusal_with_a_code_the_desk_has_never_seen_is_a_contract_error(kalshi, status, code, contract):
    add_fed(kalshi.fake)
    kalshi.fake.order_refusals.append((status, code, "refused"))
    with pytest.raises(GiveUpError) as caught:
        await kalshi.client.place_order(order("od-new-code"), market_of(kalshi.fake))
    assert isinstance(caught.value, VenueContractError) is contract, caught.value
    if contract:
        assert "error code this desk has never seen" in str(caught.value)
    assert kalshi.fake.orders == {}


async def test_a_conflict_with_a_code_the_desk_has_never_seen_is_looked_up_not_taken_for_a_refusal(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    placed = await kalshi.client.place_order(order("od-conflict", contracts="1"), market)
    # A 409 whose code the desk does not know may mean the order is there: it is looked up...
    kalshi.fake.order_refusals.append((409, "position_limit_exceeded", "refused"))
    again = await kalshi.client.place_order(order("od-conflict", contracts="1"), market)
    assert again.venue_order_id == placed.venue_order_id
    # ...and when it is not listed, the outcome is unknown (reconciliation asks again), carrying the unknown code
    kalshi.fake.order_refusals.append((409, "position_limit_exceeded", "refused"))
    with pytest.raises(OutcomeUnknownError, match="may exist already") as caught:
        await kalshi.client.place_order(order("od-conflict-2", contracts="1"), market)
    assert isinstance(caught.value.__cause__, VenueContractError)
    assert len(kalshi.fake.orders) == 1


async def test_a_duplicate_whose_look_up_fails_is_unknown_never_refused(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    await kalshi.client.place_order(order("od-dup-fail", contracts="1"), market)
    kalshi.server.faults.add("500", ORDERS, "GET", times=FAST.attempts)  # the look-up of the 409 fails every try
    with pytest.raises(OutcomeUnknownError, match="looking it up failed"):
        await kalshi.client.place_order(order("od-dup-fail", contracts="1"), market)
    assert len(kalshi.fake.orders) == 1


async def test_books_come_in_batches_of_100_and_a_book_left_out_is_that_markets_error(kalshi):
    tickers = [f"KXCPI-26NOV-T{n}" for n in range(101)]
    for ticker in tickers:
        kalshi.fake.add_market(ticker, yes=[("0.40", "10")], no=[("0.55", "10")])
    markets = [market_of(kalshi.fake, t) for t in tickers]
    books = await kalshi.client.get_order_books(markets)
    assert all(isinstance(books[t], OrderBook) for t in tickers)
    assert kalshi.server.count("GET", f"{PREFIX}/markets/orderbooks") == 2  # the venue takes at most 100
    kalshi.fake.books_omit_unknown = True
    gone = markets[0].model_copy(update={"id": "KXCPI-26NOV-GONE"})
    books = await kalshi.client.get_order_books([markets[1], gone])
    assert isinstance(books[markets[1].id], OrderBook) and "no book for KXCPI-26NOV-GONE" in str(books[gone.id])


async def test_a_retired_order_endpoint_is_a_contract_error_and_nothing_is_placed(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.retire("POST", "/portfolio/events/orders")
    with pytest.raises(VenueContractError) as caught:
        await kalshi.client.place_order(order("od-gone"), market_of(kalshi.fake))
    assert caught.value.venue == "kalshi" and caught.value.code == "deprecated_v1_order_endpoint"
    assert "retired an endpoint this desk uses" in str(caught.value) and kalshi.fake.orders == {}
    # asked once, not retried, and no fall-back to the V1 route (the fake's 410 alone keeps orders empty)
    assert kalshi.server.count("POST", ORDERS_V2) == 1 and kalshi.server.count("POST", ORDERS) == 0


async def test_reads_and_writes_are_limited_separately(kalshi):
    add_fed(kalshi.fake)
    market = market_of(kalshi.fake)
    kalshi_errors({}, "CreateOrderV2Request")  # load the spec the fake checks orders with before timing anything
    client = client_for(kalshi.fake, reads_per_second=10)
    try:
        started = time.perf_counter()
        reads = asyncio.gather(*(client.get_order_book(market) for _ in range(15)))
        await asyncio.sleep(0.05)  # the burst of 10 is spent; five reads wait for tokens
        before = time.perf_counter()
        # below the asks: an IOC that fills nothing, so there is no read-back behind the queued reads
        result = await client.place_order(order("od-limits", contracts="1", limit="0.30"), market)
        write_took = time.perf_counter() - before
        assert result.status is OrderStatus.CANCELED
        await reads
        all_took = time.perf_counter() - started
    finally:
        await client.aclose()
    assert write_took < 0.2  # the write did not queue behind the reads
    assert all_took >= 0.45  # 5 reads past the burst of 10, at 10/s


async def test_settlements_and_positions_map_to_dollars(kalshi):
    kalshi.fake.add_settlement(FED, yes_count="10", yes_cost="4.20", fee="0.17")
    [settlement] = await kalshi.client.get_settlements()
    assert (settlement.ticker, settlement.market_result, settlement.yes_count, settlement.revenue, settlement.fees) == (
        FED, "yes", D(10), D(10), D("0.17"))
    assert await kalshi.client.get_positions() == []


# -- contract: every payload the fake serves matches the pinned spec ---------------------------

async def test_every_payload_the_fake_serves_matches_the_pinned_spec(kalshi):
    fake = kalshi.fake
    fake.generate(3)
    add_fed(fake)
    fake.add_settlement(FED)
    filled = await kalshi.client.place_order(order("od-spec-ioc"), market_of(fake))
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        created = (await signed(http, "POST", "/portfolio/events/orders", json={
            "ticker": FED, "client_order_id": "od-spec-gtc", "side": "ask", "count": "5", "price": "0.5000",
            "time_in_force": "good_till_canceled", "self_trade_prevention_type": "taker_at_cross"})).json()
        resting_id = created["order_id"]
        payloads = {
            "GetMarketsResponse": (await signed(http, "GET", "/markets", params={"limit": 2})).json(),
            "GetMarketOrderbookResponse": (await signed(http, "GET", f"/markets/{FED}/orderbook")).json(),
            "GetMarketOrderbooksResponse": (await signed(http, "GET", "/markets/orderbooks",
                                                         params=[("tickers", FED)])).json(),
            "CreateOrderV2Response": created,
            "GetOrderResponse": (await signed(http, "GET", f"/portfolio/orders/{filled.venue_order_id}")).json(),
            "GetOrdersResponse": (await signed(http, "GET", "/portfolio/orders", params={"ticker": FED})).json(),
            "CancelOrderV2Response": (await signed(http, "DELETE", f"/portfolio/events/orders/{resting_id}",
                                                   params={"market_ticker": FED})).json(),
            "GetBalanceResponse": (await signed(http, "GET", "/portfolio/balance")).json(),
            "GetPositionsResponse": (await signed(http, "GET", "/portfolio/positions")).json(),
            "GetSettlementsResponse": (await signed(http, "GET", "/portfolio/settlements")).json(),
            "GetSeriesResponse": (await signed(http, "GET", "/series/KXFED")).json(),
            "GetSeriesFeeChangesResponse": (await signed(http, "GET", "/series/fee_changes")).json(),
            "GetEventFeeChangesResponse": (await signed(http, "GET", "/events/fee_changes",
                                                        params={"event_ticker": "KXFED-26DEC"})).json(),
            "ExchangeStatus": (await signed(http, "GET", "/exchange/status")).json(),
        }
        refused = (await http.get("/portfolio/balance")).json()
        v1 = await signed(http, "POST", "/portfolio/orders", json={"ticker": FED})
    for schema_name, payload in payloads.items():
        assert kalshi_errors(payload, schema_name) == [], schema_name
        assert not unknown_fields(payload, schema_name), schema_name
    assert kalshi_errors(refused["error"], "ErrorResponse") == [] and refused["error"]["code"] == "unauthorized"
    assert "service" not in refused["error"]  # removed from error bodies on 2026-08-06
    assert payloads["GetMarketsResponse"]["cursor"] and len(payloads["GetMarketsResponse"]["markets"]) == 2
    for market in payloads["GetMarketsResponse"]["markets"]:
        assert not unknown_fields(market, "Market") and market["settlement_bounds_type"] == "default"
    for order_payload in payloads["GetOrdersResponse"]["orders"]:
        assert not unknown_fields(order_payload, "Order") and order_payload["outcome_side"] in ("yes", "no")
    position = payloads["GetPositionsResponse"]["market_positions"][0]
    assert not unknown_fields(position, "MarketPosition") and "exchange_index" in position
    assert payloads["CancelOrderV2Response"]["reduced_by"] == "5.00"
    assert v1.status_code == 410 and v1.json()["error"]["code"] == "deprecated_v1_order_endpoint"


# -- end to end with the Desk -------------------------------------------------------------------

async def make_kalshi_desk(tmp_path, fake: FakeKalshi, *, dry_run: bool) -> tuple[Desk, Store, KalshiClient]:
    settings = make_settings(tmp_path, trading={"dry_run": dry_run}, approval={"authorized_users": ["UADMIN1"]},
                             storage={"path": str(tmp_path / "desk.db")}, scan={"venues": ["kalshi"]},
                             kalshi={"reads_per_second": 1000, "writes_per_second": 1000})
    store = await Store.open(settings.storage.path)
    client = KalshiClient(fake.base_url, KEY_ID, rsa_key(0), settings.fees, settings.kalshi, retry=FAST)
    desk = Desk(settings, store, {Venue.KALSHI: client}, FixedAnalyzer({f"kalshi:{FED}": "0.70"}), clock=Clock())
    return desk, store, client


@pytest.mark.parametrize("lose_reply", [False, True])
async def test_desk_live_approve_places_exactly_one_order_at_kalshi(kalshi, tmp_path, lose_reply):
    add_fed(kalshi.fake)
    kalshi.fake.generate(20)  # other open markets the analyser has no view on
    desk, store, client = await make_kalshi_desk(tmp_path, kalshi.fake, dry_run=False)
    try:
        [signal] = (await desk.scan()).signals
        # fair 0.70 blended with the mid 0.41 -> 0.555; the $50 cap buys 113.76 contracts (0.01 steps) up to 0.44
        assert signal.market.id == FED and signal.contracts == D("113.76") and signal.limit_price == D("0.44")
        assert signal.market.fees.rate == D("0.07") and "series KXFED" in signal.market.fees.source
        if lose_reply:
            kalshi.server.faults.add("drop_after", ORDERS_V2, "POST")
        decision = await desk.approve(signal.id, ADMIN)
        assert decision.ok and decision.code == "executed"
        assert kalshi.server.count("POST", ORDERS_V2) == 1 and kalshi.server.count("POST", ORDERS) == 0
        [venue_order] = kalshi.fake.orders.values()
        assert venue_order["client_order_id"] == signal.client_order_id
        # 100 @ 0.42 (fee 1.7052) + 13.76 @ 0.44 (0.07 * 13.76 * 0.2464 = 0.23733... -> 0.2374): 48.0544 + 1.9426
        stored = await store.order_for_signal(signal.id)
        assert stored.status is OrderStatus.FILLED and stored.filled == D("113.76") and stored.fees == D("1.9426")
        assert stored.venue_order_id == venue_order["order_id"]
        [position] = await store.positions(paper=False)
        assert position.contracts == D("113.76") and position.cost == D("48.0544") and position.fees == D("1.9426")
        assert signal.fees == D("1.9426")  # the signal's estimate is what Kalshi then charged
        assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
        if lose_reply:  # found by client order id, not re-sent
            assert any(r.method == "GET" and r.path == ORDERS for r in kalshi.server.requests)
    finally:
        await store.close()
        await client.aclose()


async def test_an_approval_reads_the_fee_schedule_afresh_and_refuses_a_rise(kalshi, tmp_path):
    add_fed(kalshi.fake)
    desk, store, client = await make_kalshi_desk(tmp_path, kalshi.fake, dry_run=False)
    try:
        [signal] = (await desk.scan()).signals  # the series' schedule is now cached for fees.cache_minutes
        kalshi.fake.set_series("KXFED", fee_type="quadratic", fee_multiplier=2)  # raised, unannounced
        decision = await desk.approve(signal.id, ADMIN)
        assert not decision.ok and decision.code == "stale" and "fees changed since the signal" in decision.message
        assert kalshi.fake.orders == {} and (await store.get_signal(signal.id)).status is SignalStatus.PENDING
        kalshi.fake.set_series("KXFED", fee_type="quadratic", fee_multiplier=1)  # and back: it goes through
        assert (await desk.approve(signal.id, ADMIN)).code == "executed"
    finally:
        await store.close()
        await client.aclose()


async def test_desk_dry_run_approve_places_no_order_at_kalshi(kalshi, tmp_path):
    add_fed(kalshi.fake)
    desk, store, client = await make_kalshi_desk(tmp_path, kalshi.fake, dry_run=True)
    try:
        [signal] = (await desk.scan()).signals
        decision = await desk.approve(signal.id, ADMIN)
        assert decision.ok and decision.code == "simulated"
        assert kalshi.server.count("POST", ORDERS_V2) == 0 and kalshi.fake.orders == {}
        assert (await store.get_signal(signal.id)).status is SignalStatus.SIMULATED
    finally:
        await store.close()
        await client.aclose()


# -- resolution (settlement) ----------------------------------------------------------------

async def test_a_finalized_market_reads_as_resolved_and_the_served_object_follows_the_spec(kalshi):
    add_fed(kalshi.fake)
    assert await kalshi.client.resolution(FED) is None  # active: not resolved
    kalshi.fake.markets[FED]["status"] = "determined"  # decided but not paid: could still be amended
    assert await kalshi.client.resolution(FED) is None
    kalshi.fake.settle_market(FED, "no")
    resolution = await kalshi.client.resolution(FED)
    assert resolution is not None and resolution.yes_payout == 0 and resolution.detail == "result no"
    async with httpx.AsyncClient(base_url=kalshi.fake.base_url) as http:
        served = (await http.get(f"/markets/{FED}")).json()["market"]
    assert kalshi_errors(served, "Market") == [] and unknown_fields(served, "Market") == set()


async def test_a_market_past_the_historical_cutoff_is_read_from_the_historical_api(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.settle_market(FED, "yes", historical=True)
    resolution = await kalshi.client.resolution(FED)
    assert resolution is not None and resolution.yes_payout == 1
    assert kalshi.server.count("GET", f"/trade-api/v2/historical/markets/{FED}") == 1


async def test_a_scalar_settlement_pays_its_settlement_value_and_an_unknown_market_is_an_error(kalshi):
    add_fed(kalshi.fake)
    kalshi.fake.settle_market(FED, "scalar", value="0.37")
    assert (await kalshi.client.resolution(FED)).yes_payout == D("0.37")
    with pytest.raises(GiveUpError, match="not_found"):
        await kalshi.client.resolution("KXNOPE-26DEC-T1")
