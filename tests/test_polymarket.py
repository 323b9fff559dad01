"""PolymarketClient against a fake Gamma + CLOB V2 over real HTTP on 127.0.0.1.

Nothing of ours is patched: the fake verifies the L1/L2 auth and the order's V2 EIP-712
signature with eth-account, and every assertion about what reached the "venue" is read
from the fake's own records.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import sqlite3
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_account import Account

from pipeline.config import PolymarketConfig, load_settings
from pipeline.desk import Actor, Desk
from pipeline.errors import GiveUpError, OutcomeUnknownError, RetryableError, VenueContractError, WireFormatError
from pipeline.models import Market, OrderRequest, OrderStatus, Side, SignalStatus, Venue, VenueScanStats
from pipeline.store import Store
from pipeline.venues.http import RetryPolicy
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials, order_salt
from pipeline.venues.polymarket_journal import MemoryJournal, SentOrder, StoreJournal
from pipeline.venues.polymarket_wire import positions_from_wire

from bot.wiring import open_desk

from .conftest import make_settings
from .servers.base import LoopbackServer
from .servers.polymarket import PolymarketFake, l2_signature, order_hash
from .test_desk import Clock, FixedAnalyzer

D = Decimal
KEY = "0x" + "4c" * 32
WALLET = Account.from_key(KEY).address
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)
GENEROUS = PolymarketConfig(gamma_requests_per_second=D(5000), clob_requests_per_second=D(5000),
                            timeout_seconds=D("0.5"))
ADMIN = Actor(id="UADMIN1")
NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)


@pytest.fixture
def fake() -> PolymarketFake:
    return PolymarketFake()


@pytest.fixture
async def servers(fake):
    async with LoopbackServer(fake.gamma_app(), hang_seconds=1.0) as gamma, \
            LoopbackServer(fake.clob_app(), hang_seconds=1.0) as clob, \
            LoopbackServer(fake.data_app(), hang_seconds=1.0) as data:
        yield gamma, clob, data


def make_client(servers, *, credentials: PolymarketCredentials | None = None, config: PolymarketConfig = GENEROUS,
                **kw) -> PolymarketClient:
    gamma, clob, data = servers
    kw.setdefault("positions_lag", timedelta(0))  # compare at once; the lag has its own test
    return PolymarketClient(gamma_url=gamma.url, clob_url=clob.url, data_url=data.url,
                            credentials=credentials or PolymarketCredentials(private_key=KEY),
                            config=config, retry=FAST, **kw)


def fed_market(fake: PolymarketFake, **kw):
    return fake.add_market("Will the Fed cut rates in December?", bids=[("0.40", "200"), ("0.38", "500")],
                           asks=[("0.42", "100"), ("0.44", "100"), ("0.50", "500")], **kw)


async def listed(client: PolymarketClient, condition_id: str) -> Market:
    """The market as a signal carries it: listed by Gamma, with its fee from the CLOB."""
    [market] = [m for m in await client.list_markets() if m.id == condition_id]
    [priced], rejected = await client.with_fees([market], NOW)
    assert rejected == []
    return priced


def buy(market: Market, contracts: str, price: str, *, side: Side = Side.YES, tif: str = "immediate_or_cancel",
        coid: str = "od-test-1") -> OrderRequest:
    return OrderRequest(client_order_id=coid, venue=Venue.POLYMARKET, market_id=market.id, side=side,
                        token_id=market.yes_token_id if side is Side.YES else market.no_token_id,
                        contracts=D(contracts), limit_price=D(price), time_in_force=tif)  # type: ignore[arg-type]


def order_posts(clob: LoopbackServer) -> list:
    return [r for r in clob.requests if r.method == "POST" and r.path == "/order"]


# ---------------------------------------------------------------------------- Gamma


async def test_keyset_scan_of_5000_markets_fetches_every_page_exactly_once(fake, servers):
    universe = fake.generate_universe(5000, non_binary_every=97, malformed_every=251, closed_every=50)
    gamma, _, _ = servers
    client = make_client(servers, credentials=PolymarketCredentials())  # reading needs no keys
    stats = VenueScanStats()
    markets = await client.list_markets(stats)
    pages = math.ceil(5000 / 100)  # closed markets are filtered out by the server (active=true&closed=false)
    assert len(markets) == universe.binary and stats.markets == universe.binary
    assert stats.skipped == universe.non_binary + universe.malformed
    assert stats.pages == pages and stats.requests == pages and stats.retries == 0
    assert sorted(fake.page_fetches) == list(range(pages)) and set(fake.page_fetches.values()) == {1}
    asked = [r.query for r in gamma.requests]
    assert all(q["limit"] == "100" and q["active"] == "true" and q["closed"] == "false" for q in asked)
    assert "after_cursor" not in asked[0] and all("after_cursor" in q for q in asked[1:])
    assert not any("cursor" in q or "offset" in q for q in asked)
    m = markets[0]
    assert m.venue is Venue.POLYMARKET and m.yes_token_id.isdigit() and m.no_token_id.isdigit()
    assert m.tick_size == D("0.01") and m.min_order_size == D(5)
    await client.aclose()


async def test_keyset_scan_retries_429_5xx_timeouts_and_malformed_pages_and_still_fetches_each_once(fake, servers):
    fake.generate_universe(1000)
    gamma, _, _ = servers
    faults = {1: "429", 2: "500", 4: "timeout", 5: "malformed", 7: "502", 8: "503"}

    def after_page(index: int) -> None:  # the next page's first try fails
        if index in faults:
            gamma.faults.add(faults[index], "/markets/keyset", "GET")

    fake.on_gamma_page = after_page
    client = make_client(servers, config=GENEROUS.model_copy(update={"timeout_seconds": D("0.2")}))
    stats = VenueScanStats()
    markets = await client.list_markets(stats)
    assert len(markets) == 1000 and stats.pages == 10
    assert [kind for kind, _, _ in gamma.faults.fired] == list(faults.values())
    assert stats.retries == len(faults) and stats.requests == 10 + len(faults)
    assert sorted(fake.page_fetches) == list(range(10)) and set(fake.page_fetches.values()) == {1}
    await client.aclose()


async def test_gamma_sends_json_arrays_inside_strings_and_ignores_cursor(fake, servers):
    fake.generate_universe(150)
    gamma, _, _ = servers
    async with httpx.AsyncClient(base_url=gamma.url) as http:
        first = (await http.get("/markets/keyset", params={"limit": 100})).json()
        again = (await http.get("/markets/keyset", params={"limit": 100, "cursor": first["next_cursor"]})).json()
        second = (await http.get("/markets/keyset", params={"limit": 100, "after_cursor": first["next_cursor"]}))
    raw = first["markets"][0]
    for name in ("outcomes", "outcomePrices", "clobTokenIds"):  # the contract: JSON arrays encoded in strings
        assert isinstance(raw[name], str) and isinstance(json.loads(raw[name]), list)
    assert isinstance(raw["volume"], str) and isinstance(raw["liquidity"], str)
    assert again["markets"] == first["markets"]  # `cursor=` silently means page 1
    assert len(second.json()["markets"]) == 50 and "next_cursor" not in second.json()  # absent on the last page


async def test_a_repeating_cursor_is_an_error_not_an_endless_scan(fake, servers):
    fake.generate_universe(250)
    fake._cursor = lambda offset: "same"  # a broken server: every page points at the same cursor
    fake._offset = lambda cursor: 100
    client = make_client(servers)
    with pytest.raises(GiveUpError, match="repeats"):
        await client.list_markets()
    await client.aclose()


# ---------------------------------------------------------------------------- books


async def test_book_is_parsed_best_first_in_yes_terms_and_errors_are_typed(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    client = make_client(servers, credentials=PolymarketCredentials())
    market = await listed(client, fed.condition_id)
    book = await client.get_order_book(market)
    assert [(str(lvl.price), str(lvl.size)) for lvl in book.yes_asks] == [("0.42", "100"), ("0.44", "100"),
                                                                          ("0.5", "500")]
    assert [str(lvl.price) for lvl in book.yes_bids] == ["0.4", "0.38"]
    assert book.best_ask(Side.NO) == D("0.60")
    [asked] = [r for r in clob.requests if r.path == "/book"]
    assert asked.query == {"token_id": market.yes_token_id}
    async with httpx.AsyncClient(base_url=clob.url) as http:  # the wire: best price last on both sides
        wire = (await http.get("/book", params={"token_id": market.yes_token_id})).json()
        no_wire = (await http.get("/book", params={"token_id": market.no_token_id})).json()
    assert [x["price"] for x in wire["asks"]] == ["0.5", "0.44", "0.42"] and wire["bids"][-1]["price"] == "0.4"
    assert no_wire["asks"][-1] == {"price": "0.6", "size": "200"}

    with pytest.raises(GiveUpError, match="No orderbook exists"):
        await client.get_order_book(market.model_copy(update={"yes_token_id": "123456"}))
    with pytest.raises(GiveUpError, match="Invalid token id"):
        await client.get_order_book(market.model_copy(update={"yes_token_id": "not-a-token"}))
    fake.trading_disabled = True
    with pytest.raises(RetryableError, match="Trading is currently disabled"):
        await client.get_order_book(market)
    await client.aclose()


# ---------------------------------------------------------------------------- orders


async def test_fak_takes_what_is_there_and_cancels_the_rest(fake, servers):
    fed = fed_market(fake)
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    result = await client.place_order(buy(market, "300", "0.44"), market)
    assert result.status is OrderStatus.PARTIALLY_FILLED
    assert result.filled == D(200) and result.cost == D("86") and result.average_price == D("0.43")
    [order] = fake.orders.values()
    assert order.id == result.venue_order_id and order.order_type == "FAK" and order.size_matched == D(200)
    assert fake.book_levels(fed, "Yes")[1] == [(D("0.50"), D(500))]  # the two levels it lifted are gone
    await client.aclose()


async def test_fok_is_killed_whole_when_the_book_is_short(fake, servers):
    fed = fed_market(fake)
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    result = await client.place_order(buy(market, "300", "0.44", tif="fill_or_kill"), market)
    assert result.status is OrderStatus.CANCELED and result.filled == 0 and "killed" in result.reason
    assert fake.book_levels(fed, "Yes")[1][0] == (D("0.42"), D(100))  # nothing taken
    filled = await client.place_order(buy(market, "150", "0.44", tif="fill_or_kill", coid="od-test-2"), market)
    assert filled.status is OrderStatus.FILLED and filled.filled == D(150) and filled.cost == D("64")
    await client.aclose()


async def test_gtc_takes_what_crosses_and_rests_the_rest_then_cancels(fake, servers):
    fed = fed_market(fake)
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    result = await client.place_order(buy(market, "150", "0.42", tif="good_till_canceled"), market)
    assert result.status is OrderStatus.RESTING and result.filled == D(100) and "50 resting" in result.reason
    passive = await client.place_order(buy(market, "20", "0.30", tif="good_till_canceled", coid="od-test-2"), market)
    assert passive.status is OrderStatus.RESTING and passive.filled == 0
    assert fake.orders[passive.venue_order_id].status == "LIVE"
    after = await client.cancel_order("od-test-2", market)
    assert after is not None and after.status is OrderStatus.CANCELED
    assert fake.orders[passive.venue_order_id].status == "CANCELED"
    await client.aclose()


async def test_no_side_buys_the_no_token_at_its_own_price(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    result = await client.place_order(buy(market, "150", "0.60", side=Side.NO), market)
    assert result.status is OrderStatus.FILLED and result.average_price == D("0.60")
    [post] = order_posts(clob)
    assert post.json()["order"]["tokenId"] == market.no_token_id
    assert fake.book_levels(fed, "Yes")[0][0] == (D("0.40"), D(50))  # NO bought against YES bids
    await client.aclose()


async def test_min_size_tick_and_missing_key_are_refused_before_anything_is_sent(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    with pytest.raises(GiveUpError, match="below the market's minimum order size of 5"):  # a limit order's minimum
        await client.place_order(buy(market, "4", "0.44", tif="good_till_canceled"), market)
    with pytest.raises(GiveUpError, match=r"worth \$0.88, below the \$1 minimum"):  # a market order's
        await client.place_order(buy(market, "2", "0.44"), market)
    with pytest.raises(GiveUpError, match="not on the 0.01 tick"):
        await client.place_order(buy(market, "10", "0.425"), market)
    # 118.18 x 0.44 = 51.9992: a FAK's pUSD must be whole cents, so shares go in steps of 0.25 at 0.44
    with pytest.raises(GiveUpError, match="118.18 shares is not a multiple of 0.25"):
        await client.place_order(buy(market, "118.18", "0.44"), market)
    keyless = make_client(servers, credentials=PolymarketCredentials())
    with pytest.raises(GiveUpError, match="POLYMARKET_PRIVATE_KEY") as info:
        await keyless.place_order(buy(market, "10", "0.44"), market)
    assert "POLYMARKET_FUNDER" in str(info.value)
    # no order, no key derivation: only the public reads of pricing it
    assert [r.path for r in clob.requests if r.path != "/book" and not r.path.startswith("/clob-markets/")] == []
    await client.aclose()
    await keyless.aclose()


async def test_the_order_on_the_wire_is_the_documented_v2_shape_and_its_id_is_our_hash(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    api = fake.register_api_key(WALLET)
    client = make_client(servers, credentials=PolymarketCredentials(
        private_key=KEY, api_key=api.key, api_secret=api.secret, api_passphrase=api.passphrase))
    market = await listed(client, fed.condition_id)
    result = await client.place_order(buy(market, "150", "0.44"), market)
    [post] = order_posts(clob)
    body = post.json()
    assert {"order", "owner", "orderType", "postOnly"} <= set(body) and set(body) <= {
        "order", "owner", "orderType", "postOnly", "deferExec"}
    assert body["owner"] == api.key and body["orderType"] == "FAK" and body["postOnly"] is False
    order = body["order"]
    assert set(order) == {"salt", "maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "expiration",
                          "signatureType", "timestamp", "metadata", "builder", "signature"}
    assert order["makerAmount"] == "66000000" and order["takerAmount"] == "150000000"  # 150 at 0.44, 6 decimals
    assert order["side"] == "BUY" and order["signatureType"] == 0 and order["maker"] == order["signer"] == WALLET
    assert isinstance(order["salt"], int) and order["salt"] == order_salt("od-test-1") < 2 ** 53
    assert order["tokenId"] == market.yes_token_id and isinstance(order["timestamp"], str)
    assert result.venue_order_id == order_hash(order, neg_risk=False) == next(iter(fake.orders))
    headers = {k.upper(): v for k, v in post.headers.items()}
    for name in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_API_KEY", "POLY_PASSPHRASE"):
        assert headers[name]
    assert headers["POLY_SIGNATURE"] == l2_signature(api.secret, headers["POLY_TIMESTAMP"], "POST", "/order",
                                                     post.body.decode())
    await client.aclose()


async def test_an_echoed_secret_is_scrubbed_before_the_reason_is_cut_short(servers):
    secret = "c2VjcmV0LXRoYXQtc3BhbnMtdGhlLWN1dC0xMjM0NTY="
    client = make_client(servers, credentials=PolymarketCredentials(
        private_key=KEY, api_key="key-0001", api_secret=secret, api_passphrase="pass-0001"))
    echoed = httpx.Response(400, text="x" * 190 + secret)  # not JSON: cut at 200, inside the secret
    message = str(client._translate(echoed))
    assert secret[:10] not in message and "[redacted]" in message
    await client.aclose()


async def test_a_wrong_api_secret_is_a_typed_refusal_that_names_no_secret(fake, servers, caplog):
    caplog.set_level(logging.DEBUG)
    fed = fed_market(fake)
    _, clob, _ = servers
    api = fake.register_api_key(WALLET)
    wrong = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy0="
    client = make_client(servers, credentials=PolymarketCredentials(
        private_key=KEY, api_key=api.key, api_secret=wrong, api_passphrase=api.passphrase))
    market = await listed(client, fed.condition_id)
    with pytest.raises(GiveUpError, match="HTTP 401") as info:
        await client.place_order(buy(market, "150", "0.44"), market)
    message = str(info.value)
    assert "POLYMARKET_API_SECRET" in message
    for secret in (wrong, api.key, api.passphrase, KEY, KEY[2:]):
        assert secret not in message and secret not in caplog.text
    assert fake.orders == {} and len(order_posts(clob)) == 1
    await client.aclose()


async def test_credentials_are_derived_once_with_l1_when_not_configured(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    await client.place_order(buy(market, "10", "0.44", coid="od-a"), market)
    await client.place_order(buy(market, "10", "0.44", coid="od-b"), market)
    auth = [(r.method, r.path) for r in clob.requests if r.path.startswith("/auth/")]
    assert auth == [("GET", "/auth/derive-api-key"), ("POST", "/auth/api-key")]  # none yet: created, then cached
    [api] = fake.api_keys.values()
    assert api.address == WALLET and len(fake.orders) == 2
    again = make_client(servers)  # a restart derives the same key back, without creating another
    await again.place_order(buy(market, "10", "0.44", coid="od-c"), market)
    assert [r.path for r in clob.requests if r.path.startswith("/auth/")][2:] == ["/auth/derive-api-key"]
    assert len(fake.api_keys) == 1 and await again.get_balance() == fake.balance
    await client.aclose()
    await again.aclose()


async def test_lost_reply_is_unknown_then_found_by_hash_with_exactly_one_order(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    clob.faults.add("drop_after", "/order", "POST")
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    request = buy(market, "150", "0.44")
    with pytest.raises(OutcomeUnknownError):
        await client.place_order(request, market)
    assert len(fake.orders) == 1 and len(order_posts(clob)) == 1  # the venue acted; the answer was lost
    found = await client.find_order(request.client_order_id, market)
    assert found is not None and found.status is OrderStatus.FILLED and found.filled == D(150)
    assert found.venue_order_id == next(iter(fake.orders))
    # Asked to place it again, the client looks the first one up instead of posting a second.
    again = await client.place_order(request, market)
    assert again.status is OrderStatus.FILLED and len(order_posts(clob)) == 1 and len(fake.orders) == 1
    with pytest.raises(GiveUpError, match="already used"):
        await client.place_order(request.model_copy(update={"contracts": D(20)}), market)
    await client.aclose()


def journal_rows(db) -> list[dict[str, Any]]:
    """The journal as stored, read by a connection of the test's own."""
    with sqlite3.connect(db) as raw:
        raw.row_factory = sqlite3.Row
        return [dict(r) for r in raw.execute("SELECT * FROM polymarket_orders ORDER BY recorded_at")]


async def test_the_journal_resolves_a_lost_reply_after_a_restart(fake, servers, tmp_path):
    fed = fed_market(fake)
    _, clob, _ = servers
    db = tmp_path / "desk.db"
    clob.faults.add("timeout", "/order", "POST")
    store = await Store.open(db)
    before = make_client(servers, journal=StoreJournal(store), config=GENEROUS.model_copy(update={
        "timeout_seconds": D("0.2")}))
    market = await listed(before, fed.condition_id)
    with pytest.raises(OutcomeUnknownError, match="timeout"):
        await before.place_order(buy(market, "150", "0.44"), market)
    await before.aclose()
    await store.close()
    [row] = journal_rows(db)  # committed before the POST, whose answer never came
    assert row["client_order_id"] == "od-test-1" and row["order_id"] == SentOrder.from_json(row["payload"]).order_id
    assert KEY[2:] not in row["payload"] and '"signature":' not in row["payload"]
    reopened = await Store.open(db)  # a new process: nothing in memory
    after = make_client(servers, journal=StoreJournal(reopened))
    for _ in range(50):  # the server answers only after the client gave up
        if fake.orders:
            break
        await asyncio.sleep(0.05)
    found = await after.find_order("od-test-1", market)
    assert found is not None and found.status is OrderStatus.FILLED and len(fake.orders) == 1
    assert found.venue_order_id == row["order_id"]
    assert await after.find_order("od-never-sent", market) is None  # journalled before sending: never left
    assert len(order_posts(clob)) == 1
    await after.aclose()
    await reopened.close()


async def test_an_order_one_connection_records_is_found_through_another(fake, servers, tmp_path):
    """Two desks on one database (say `oddsdesk run` and a terminal `oddsdesk cycle`): each has its own
    connection, and a look-up reads the journal afresh, so an order the other signed after this one started is
    found by its hash, not taken for one that never left."""
    fed = fed_market(fake)
    _, clob, _ = servers
    db = tmp_path / "desk.db"
    first, second = await Store.open(db), await Store.open(db)
    placing = make_client(servers, journal=StoreJournal(first))
    looking = make_client(servers, journal=StoreJournal(second))
    market = await listed(looking, fed.condition_id)
    assert looking.journal.shared and await looking.find_order("od-test-1", market) is None  # nothing signed yet
    assert await looking.open_orders() == []
    clob.faults.add("drop_after", "/order", "POST")  # executed, the answer lost
    with pytest.raises(OutcomeUnknownError):
        await placing.place_order(buy(market, "150", "0.44"), market)
    found = await looking.find_order("od-test-1", market)  # the miss above was not remembered
    assert found is not None and found.status is OrderStatus.FILLED and found.filled == D(150)
    assert found.venue_order_id == next(iter(fake.orders)) and len(order_posts(clob)) == 1
    # Nor does the other connection send it again when asked to place it: it looks the first one up.
    again = await looking.place_order(buy(market, "150", "0.44"), market)
    assert again.status is OrderStatus.FILLED and len(order_posts(clob)) == 1 and len(fake.orders) == 1
    resting = await placing.place_order(buy(market, "10", "0.20", tif="good_till_canceled", coid="od-gtc"), market)
    assert {o.order_id: o.client_order_id for o in await looking.open_orders()} == {
        resting.venue_order_id: "od-gtc"}  # the other's resting order is the desk's own, not a stranger's
    for client in (placing, looking):
        await client.aclose()
    await first.close()
    await second.close()


async def test_a_client_without_the_desks_journal_never_concludes_an_order_never_left(fake, servers):
    fed = fed_market(fake)
    client = make_client(servers)  # no store: its journal is its memory, which another process never shares
    market = await listed(client, fed.condition_id)
    assert isinstance(client.journal, MemoryJournal) and not client.journal.shared
    unknown = await client.find_order("od-signed-elsewhere", market)
    assert unknown is not None and unknown.status is OrderStatus.UNKNOWN and "check the account" in unknown.reason
    await client.aclose()


async def test_an_old_journal_file_is_taken_into_the_database_once_when_the_desk_starts(fake, servers, tmp_path,
                                                                                      caplog):
    """The journal an older oddsdesk kept beside the database: imported by open_desk (the file's later line
    wins, an unreadable line is skipped and said, a newer row already in the database stays), then renamed."""
    gamma, clob, data = servers
    fed = fed_market(fake)
    signing = make_client(servers)
    market = await listed(signing, fed.condition_id)
    placed = [await signing.place_order(buy(market, "10", "0.20", tif="good_till_canceled", coid=coid), market)
              for coid in ("od-old-1", "od-old-2", "od-old-3")]
    await signing.aclose()
    one, two, three = sorted(await signing.journal.all(), key=lambda r: r.client_order_id)
    db = tmp_path / "desk.db"
    store = await Store.open(db)  # the database already holds a newer record of od-old-3
    await StoreJournal(store).record(replace(three, recorded_at=three.recorded_at + 60))
    await store.close()
    old = tmp_path / "desk.db.polymarket-orders.jsonl"
    stale_two = replace(two, order_id="0x" + "ab" * 32, recorded_at=two.recorded_at - 1)
    old_three = replace(three, order_id="0x" + "cd" * 32)  # older than the database's row
    old.write_text("\n".join([stale_two.to_json(), one.to_json(), '{"client_order_id": "od-torn", "ord',
                              two.to_json(), old_three.to_json()]) + "\n")
    (tmp_path / "config.json").write_text(json.dumps({"trading": {"dry_run": False}, "scan": {"venues": ["polymarket"]},
                                                      "storage": {"path": str(db)}}))
    settings = load_settings(tmp_path / "config.json", environ={
        "POLYMARKET_GAMMA_URL": gamma.url, "POLYMARKET_CLOB_URL": clob.url, "POLYMARKET_DATA_URL": data.url,
        "POLYMARKET_PRIVATE_KEY": KEY})
    try:
        async with open_desk(settings) as desk:
            client = desk.venues[Venue.POLYMARKET]
            assert isinstance(client, PolymarketClient) and client.journal.shared
            for record, result in zip((one, two, three), placed, strict=True):
                found = await client.find_order(record.client_order_id, market)
                assert found is not None and found.status is OrderStatus.RESTING
                assert found.venue_order_id == result.venue_order_id  # by its last (or the newer) record's hash
            assert await client.find_order("od-torn", market) is None
        assert "line 3 is unreadable" in caplog.text
        assert {r["client_order_id"]: r["order_id"] for r in journal_rows(db)} == {
            r.client_order_id: r.order_id for r in (one, two, three)}
        [kept] = tmp_path.glob("desk.db.polymarket-orders.jsonl.imported-*")  # left in place, renamed
        assert not old.exists() and kept.read_text().count("\n") == 5
        # Started again: nothing to import. A file that appears again (an older oddsdesk still writing) is taken in.
        old.write_text(replace(one, order_id="0x" + "ef" * 32, recorded_at=one.recorded_at + 120).to_json() + "\n")
        async with open_desk(settings):
            pass
    finally:
        gc.unfreeze()  # open_desk froze the objects of this whole test process for the desk's sake
    assert {r["client_order_id"]: r["order_id"] for r in journal_rows(db)}["od-old-1"] == "0x" + "ef" * 32
    assert not old.exists() and len(list(tmp_path.glob("desk.db.polymarket-orders.jsonl.imported-*"))) == 2


async def test_an_order_the_clob_never_saw_is_not_found(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    clob.faults.add("502", "/order", "POST")  # the gateway failed before the CLOB: outcome unknown to us
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    with pytest.raises(OutcomeUnknownError, match="502"):
        await client.place_order(buy(market, "150", "0.44"), market)
    assert await client.find_order("od-test-1", market) is None
    fake.unknown_order_as_null = True
    assert await client.find_order("od-test-1", market) is None
    assert fake.orders == {}
    await client.aclose()


async def test_delayed_matching_is_unknown_until_looked_up(fake, servers):
    fed = fed_market(fake)
    fake.delay_next = 1
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    result = await client.place_order(buy(market, "150", "0.44"), market)
    assert result.status is OrderStatus.UNKNOWN and "delayed" in result.reason
    order = fake.orders[result.venue_order_id]
    order.status, matched = "LIVE", order.size_matched  # the CLOB still matching it: a FAK never rests
    pending = await client.find_order("od-test-1", market)
    assert pending is not None and pending.status is OrderStatus.UNKNOWN and "still being matched" in pending.reason
    order.status = "MATCHED"
    found = await client.find_order("od-test-1", market)
    assert found is not None and found.status is OrderStatus.FILLED and found.filled == matched == D(150)
    await client.aclose()


async def test_neg_risk_and_proxy_wallets_sign_for_the_right_exchange_and_maker(fake, servers):
    fed = fed_market(fake, neg_risk=True)
    _, clob, _ = servers
    proxy = "0x00000000000000000000000000000000000Ab1E5"
    fake.funders[WALLET.lower()] = {proxy.lower()}
    client = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, funder=proxy, signature_type=1))
    market = await listed(client, fed.condition_id)
    assert market.neg_risk
    result = await client.place_order(buy(market, "150", "0.44"), market)
    assert result.status is OrderStatus.FILLED
    order = order_posts(clob)[0].json()["order"]
    assert order["maker"] == proxy and order["signer"] == WALLET and order["signatureType"] == 1
    assert result.venue_order_id == order_hash(order, neg_risk=True) != order_hash(order, neg_risk=False)
    no_funder = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, signature_type=2))
    with pytest.raises(GiveUpError, match="POLYMARKET_FUNDER"):
        await no_funder.place_order(buy(market, "10", "0.44", coid="od-x"), market)
    await client.aclose()
    await no_funder.aclose()


async def test_the_fake_refuses_orders_not_signed_the_v2_way(fake, servers):
    """The fake is only worth trusting if it refuses what the real CLOB refuses."""
    from py_clob_client_v2.clob_types import ApiCreds, RequestArgs
    from py_clob_client_v2.headers.headers import create_level_2_headers
    from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, OrderDataV2, Side as ClobSide
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
    from py_clob_client_v2.signer import Signer

    fed = fed_market(fake)
    _, clob, _ = servers
    api = fake.register_api_key(WALLET)
    signer = Signer(KEY, 137)

    async def post(version: str, exchange: str) -> httpx.Response:
        builder = ExchangeOrderBuilderV2(exchange, 137, signer, domain_version=version)
        order = builder.build_signed_order(OrderDataV2(maker=WALLET, tokenId=fed.yes_token, makerAmount="4400000",
                                                       takerAmount="10000000", side=ClobSide.BUY, signer=WALLET))
        body = json.dumps(order_to_json_v2(order, api.key, "FAK"), separators=(",", ":"))
        headers = create_level_2_headers(signer, ApiCreds(api.key, api.secret, api.passphrase),
                                         RequestArgs("POST", "/order", body, body))
        async with httpx.AsyncClient(base_url=clob.url) as http:
            return await http.post("/order", content=body, headers=headers)

    v1 = await post("1", "0xE111180000d2663C0091e4f400237545B87B996B")
    wrong_exchange = await post("2", "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E")
    good = await post("2", "0xE111180000d2663C0091e4f400237545B87B996B")
    assert v1.status_code == 400 and v1.json() == {"error": "invalid signature"}
    assert wrong_exchange.status_code == 400 and wrong_exchange.json() == {"error": "invalid signature"}
    assert good.status_code == 200 and good.json()["status"] == "matched"


async def test_from_settings_reads_the_environment_and_keeps_secrets_out_of_repr(tmp_path, fake, servers):
    gamma, clob, data = servers
    (tmp_path / "config.json").write_text(json.dumps({"storage": {"path": str(tmp_path / "desk.db")}}))
    settings = load_settings(tmp_path / "config.json", environ={
        "POLYMARKET_GAMMA_URL": gamma.url, "POLYMARKET_CLOB_URL": clob.url, "POLYMARKET_DATA_URL": data.url + "/",
        "POLYMARKET_PRIVATE_KEY": KEY,
        "POLYMARKET_API_KEY": "k" * 20, "POLYMARKET_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0",
        "POLYMARKET_API_PASSPHRASE": "p" * 20, "ODDSDESK_TRADING__TIME_IN_FORCE": "fill_or_kill"})
    client = PolymarketClient.from_settings(settings)
    assert client.gamma_url == gamma.url and client.clob_url == clob.url and client.time_in_force == "fill_or_kill"
    assert client.data_url == data.url  # the trailing slash is dropped
    shown = repr(client.credentials)
    assert KEY[2:] not in shown and "k" * 20 not in shown and "p" * 20 not in shown
    assert not client.journal.shared  # without a store, in memory; the desk passes its database's (wiring.py)
    await client.aclose()


# ---------------------------------------------------------------------------- the desk, end to end


async def polymarket_desk(tmp_path, fake, servers, *, trading: dict[str, Any] | None = None, fee_rate: str = "0",
                          **client_kw) -> tuple[Desk, Store, PolymarketClient]:
    fed_market(fake, fee_rate=fee_rate)
    settings = make_settings(tmp_path, trading={"dry_run": False, **(trading or {})},
                             approval={"authorized_users": ["UADMIN1"]},
                             scan={"venues": ["polymarket"]}, storage={"path": str(tmp_path / "desk.db")})
    store = await Store.open(settings.storage.path)
    client = make_client(servers, journal=StoreJournal(store), **client_kw)
    markets = await client.list_markets()
    desk = Desk(settings, store, {Venue.POLYMARKET: client}, FixedAnalyzer({m.key: "0.70" for m in markets}),
                clock=Clock())
    return desk, store, client


async def test_desk_approve_places_exactly_one_polymarket_order(tmp_path, fake, servers):
    _, clob, _ = servers
    desk, store, _ = await polymarket_desk(tmp_path, fake, servers)
    [signal] = (await desk.scan()).signals
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.ok and decision.code == "executed"
    [order] = fake.orders.values()
    assert len(order_posts(clob)) == 1
    assert order.original_size == signal.contracts and order.price == signal.limit_price
    assert order.asset_id == signal.market.yes_token_id and order.order_type == "FAK"
    stored = await store.order_for_signal(signal.id)
    assert stored.venue_order_id == order.id and stored.filled == signal.contracts
    assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
    again = await desk.approve(signal.id, ADMIN)
    assert not again.ok and len(order_posts(clob)) == 1
    await desk.aclose()
    await store.close()


async def test_a_fee_charging_market_shows_its_fee_in_the_signal_and_its_dry_run_outcome(tmp_path, fake, servers):
    from bot.blocks import render
    from bot.present.outcomes import signal_outcome
    from bot.present.signals import signal_proposal

    _, clob, _ = servers
    desk, store, _ = await polymarket_desk(tmp_path, fake, servers, trading={"dry_run": True}, fee_rate="0.04")
    [signal] = (await desk.scan()).signals
    # fair 0.70 blended with the mid 0.41 -> 0.555; YES at 0.42, 0.44 then 0.50: the last level whose own edge
    # clears 0.08 after its fee is 0.44 (0.555 - 0.44 - 0.04 x 0.44 x 0.56 = 0.1051), and the $50 cap binds:
    # 100 @ 0.42 (42 + fee 0.04 x 100 x 0.2436 = 0.9744) then (50 - 42.9744) / 0.449856 = 15.61 -> 15.50
    # shares at 0.44 (FAK steps of 0.25 there): 6.82 + fee 0.04 x 15.5 x 0.2464 = 0.152768 -> 0.15277
    assert signal.market.fees.rate == D("0.04") and signal.contracts == D("115.50")
    assert signal.cost == D("48.82") and signal.fees == D("0.9744") + D("0.15277")
    text = json.dumps(render(signal_proposal(signal, signal.created_at)), ensure_ascii=False)
    assert "Fees $1.13 included in the price above (Polymarket CLOB: taker 0.04 x p(1-p))" in text
    decision = await desk.approve(signal.id, ADMIN)  # dry-run: simulated against the CLOB's real book
    assert decision.ok and decision.code == "simulated" and "+ $1.13 fees" in decision.message
    assert order_posts(clob) == [] and fake.orders == {}
    assert "$1.13 fees" in json.dumps(render(signal_outcome(decision.signal, decision, "UADMIN1", signal.created_at)))
    await desk.aclose()
    await store.close()


async def test_desk_lost_reply_still_one_order_and_the_signal_resolves(tmp_path, fake, servers):
    _, clob, _ = servers
    desk, store, _ = await polymarket_desk(tmp_path, fake, servers)
    [signal] = (await desk.scan()).signals
    clob.faults.add("drop_after", "/order", "POST")
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.ok and decision.code == "executed"
    assert len(fake.orders) == 1 and len(order_posts(clob)) == 1
    assert clob.count("GET", "/data/order/") == 1
    stored = await store.order_for_signal(signal.id)
    assert stored.status is OrderStatus.FILLED and stored.venue_order_id == next(iter(fake.orders))
    assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
    [position] = await store.positions(paper=False)
    assert position.contracts == signal.contracts
    await desk.aclose()
    await store.close()


async def test_derived_credentials_the_clob_quotes_back_reach_nobody(tmp_path, fake, servers):
    """No API credentials are configured: the client derives them from the wallet key. An answer quoting them back
    (an order's status, the one field the desk quotes as it comes) reaches the person, the database and the log
    scrubbed; the suite's guard, which learns them from this fake, checks the files and log records too."""
    desk, store, client = await polymarket_desk(tmp_path, fake, servers)
    try:  # closed whatever happens: an open store's thread would keep a failed run from exiting
        [signal] = (await desk.scan()).signals
        fake.order_answer = lambda api: {"success": False, "errorMsg": "", "status": f"invalid credentials: key "
                                         f"{api.key}, secret {api.secret}, passphrase {api.passphrase}"}
        decision = await desk.approve(signal.id, ADMIN)
        [api] = fake.issued  # created for this wallet on first use
        derived = {api.key, api.secret, api.passphrase}
        assert set(client.derived_secrets()) == derived and derived <= set(desk.secret_values())
        assert not decision.ok and decision.code == "failed"
        assert ("refused: invalid credentials: key [redacted], secret [redacted], passphrase [redacted]"
                in decision.message)
        stored = await store.order_for_signal(signal.id)
        said = [decision.message, stored.reason, *(e.detail for e in await store.audit_log())]
        assert not [s for s in said for secret in derived if secret.lower() in s.lower()]
    finally:
        await desk.aclose()
        await store.close()


# -- resolution (settlement) ----------------------------------------------------------------

async def test_gamma_resolution_needs_closed_resolved_and_final_prices(fake, servers):
    market = fed_market(fake)
    client = make_client(servers)
    try:
        assert await client.resolution(market.condition_id) is None  # open: Gamma hides it from closed=true
        market.raw.update(closed=True, umaResolutionStatus="proposed")
        fake._listed_cache.clear()
        assert await client.resolution(market.condition_id) is None  # an oracle proposal can be disputed
        fake.resolve(market, "No")
        resolution = await client.resolution(market.condition_id)
        assert resolution is not None and resolution.yes_payout == 0 and resolution.market_id == market.condition_id
        fake.resolve(market, "split")
        assert (await client.resolution(market.condition_id)).yes_payout == D("0.5")
        gamma, _, _ = servers
        [asked] = [r for r in gamma.requests if r.query.get("condition_ids")][-1:]
        assert asked.query["closed"] == "true"  # without it Gamma silently answers closed=false
    finally:
        await client.aclose()


# -- positions (reconciliation) against the Data API ---------------------------------------------


def positions_asked(data: LoopbackServer) -> list[dict[str, str]]:
    return [r.query for r in data.requests if r.method == "GET" and r.path == "/positions"]


async def filled_desk(tmp_path, fake, servers, **client_kw):
    """A live Polymarket desk whose one signal was approved and filled at the fake CLOB."""
    desk, store, client = await polymarket_desk(tmp_path, fake, servers, **client_kw)
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, ADMIN)).ok
    assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
    return desk, store, client, signal


async def test_a_desk_fill_matches_the_venue_positions_and_nothing_is_reported(tmp_path, fake, servers):
    _, _, data = servers
    desk, store, client, signal = await filled_desk(tmp_path, fake, servers)
    assert await client.signed_positions() == {signal.market.id: signal.contracts}
    report = await desk.reconcile()
    assert report.positions == [] and not report.worth_telling
    asked = positions_asked(data)
    assert len(asked) == 2  # one short page per listing
    assert asked[-1] == {"user": WALLET, "sizeThreshold": "0", "limit": "500", "offset": "0"}
    await desk.aclose()
    await store.close()


async def test_unknown_positions_and_size_differences_are_reported_not_adopted(tmp_path, fake, servers):
    desk, store, client, signal = await filled_desk(tmp_path, fake, servers)
    fed = fake.markets[signal.market.id]
    other = fake.add_market("Will it snow in Paris on Christmas?", bids=[("0.48", "500")], asks=[("0.52", "500")])
    dust = fake.add_market("Will the dust settle?", bids=[("0.10", "5")], asks=[("0.12", "5")])
    fake.hold(WALLET, other, "No", "7.5")  # bought by hand on the same wallet
    fake.hold(WALLET, fed, "Yes", 3)
    fake.hold(WALLET, dust, "Yes", 0.1 + 0.2)  # under the API's default threshold, and float noise on the wire
    report = await desk.reconcile()
    mismatches = {(m.market_id, m.ours, m.theirs) for m in report.positions}
    assert mismatches == {(other.condition_id, D(0), D("-7.5")), (fed.condition_id, signal.contracts,
                                                                  signal.contracts + 3),
                          (dust.condition_id, D(0), D("0.3"))}
    assert all(m.venue is Venue.POLYMARKET for m in report.positions)
    assert "not adopted" in next(m.note for m in report.positions if m.market_id == other.condition_id)
    [position] = await store.positions(paper=False)  # nothing adopted, nothing changed
    assert position.market_id == fed.condition_id and position.contracts == signal.contracts
    await desk.aclose()
    await store.close()


async def test_a_resolved_position_is_left_to_settlement_and_not_reported(tmp_path, fake, servers):
    _, _, data = servers
    desk, store, client, signal = await filled_desk(tmp_path, fake, servers)
    fake.resolve(fake.markets[signal.market.id], "Yes")
    settled = await desk.settle()
    assert len(settled.settled) == 1 and await store.positions(paper=False) == []
    async with httpx.AsyncClient(base_url=data.url) as http:  # the venue still lists the unredeemed winner
        [row] = (await http.get("/positions", params={"user": WALLET, "sizeThreshold": "0"})).json()
    assert row["redeemable"] is True and row["size"] == float(signal.contracts)
    assert await client.signed_positions() == {}
    assert (await desk.reconcile()).positions == []
    await desk.aclose()
    await store.close()


async def test_every_page_of_positions_is_fetched_once(fake, servers):
    _, _, data = servers
    fake.generate_universe(1100)
    for n, market in enumerate(fake.markets.values()):
        fake.hold(WALLET, market, "Yes" if n % 2 else "No", n + 1)
    client = make_client(servers)
    positions = await client.signed_positions()
    assert len(positions) == 1100
    assert {positions[m.condition_id] for m in fake.markets.values()} == {
        D(n + 1) if n % 2 else -D(n + 1) for n in range(1100)}
    assert [(q["offset"], q["limit"]) for q in positions_asked(data)] == [("0", "500"), ("500", "500"),
                                                                          ("1000", "500")]
    await client.aclose()


async def test_the_yes_token_decides_the_sign_when_it_is_known(fake, servers):
    fed = fed_market(fake)
    client = make_client(servers)
    market = await listed(client, fed.condition_id)  # the scan taught the client both tokens
    fake.hold(WALLET, fed, "No", 4)
    fake.tokens[fed.no_token] = (fed, "Yes")  # a venue mislabelling the NO token: the token id wins
    assert await client.signed_positions() == {market.id: D(-4)}
    await client.aclose()


async def test_a_proxy_wallet_lists_the_positions_of_its_funder(fake, servers):
    fed = fed_market(fake)
    _, _, data = servers
    proxy = "0x00000000000000000000000000000000000Ab1E5"
    fake.funders[WALLET.lower()] = {proxy.lower()}
    client = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, funder=proxy, signature_type=1))
    market = await listed(client, fed.condition_id)
    assert (await client.place_order(buy(market, "150", "0.60", side=Side.NO), market)).status is OrderStatus.FILLED
    fake.hold(WALLET, fed, "Yes", 9)  # the signer's own address holds funds the desk does not trade with
    assert await client.signed_positions() == {market.id: D(-150)}
    assert positions_asked(data)[-1]["user"] == proxy
    await client.aclose()


async def test_a_client_without_a_wallet_or_funder_has_no_positions_to_compare(fake, servers):
    _, _, data = servers
    read_only = make_client(servers, credentials=PolymarketCredentials())
    no_funder = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, signature_type=2))
    assert await read_only.signed_positions() is None and await no_funder.signed_positions() is None
    assert positions_asked(data) == []
    wrong = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, funder="0x" + "12" * 20))
    with pytest.raises(GiveUpError, match="POLYMARKET_FUNDER differs"):  # a misconfiguration is said, not hidden
        await wrong.signed_positions()
    for client in (read_only, no_funder, wrong):
        await client.aclose()


async def test_an_unexpected_positions_body_is_logged_and_reconciliation_still_finishes(tmp_path, fake, servers,
                                                                                          caplog):
    _, _, data = servers
    desk, store, client, signal = await filled_desk(tmp_path, fake, servers)
    data.faults.add("malformed", "/positions", "GET")  # an unreadable body is retried
    assert await client.signed_positions() == {signal.market.id: signal.contracts}
    fake.positions_shape = "envelope"  # readable, but not a list of positions: not retried, not guessed at
    with pytest.raises(GiveUpError, match="expected a JSON array"):
        await client.signed_positions()
    before = len(positions_asked(data))
    with caplog.at_level(logging.WARNING, logger="pipeline.reconcile"):
        report = await desk.reconcile()
    assert report.positions == [] and len(positions_asked(data)) == before + 1
    assert "could not list polymarket positions: WireFormatError" in caplog.text
    [skipped] = report.skipped  # and the channel is told the comparison was not made
    assert (skipped.venue, skipped.what) == (Venue.POLYMARKET, "positions") and "expected a JSON array" in skipped.reason
    assert report.worth_telling
    await desk.aclose()
    await store.close()


async def test_the_fake_data_api_refuses_what_the_real_one_refuses(fake, servers):
    fed = fed_market(fake)
    _, _, data = servers
    fake.hold(WALLET, fed, "Yes", "0.5")
    async with httpx.AsyncClient(base_url=data.url) as http:
        async def get(**params) -> httpx.Response:
            return await http.get("/positions", params=params)

        for bad in ({}, {"user": "alice"}, {"user": WALLET[:-1]}, {"user": WALLET, "limit": "501"},
                    {"user": WALLET, "offset": "10001"}, {"user": WALLET, "sizeThreshold": "-1"}):
            answer = await get(**bad)
            assert answer.status_code == 400 and isinstance(answer.json()["error"], str), bad
        assert (await get(user=WALLET)).json() == []  # the default sizeThreshold (1) hides half a share
        [row] = (await get(user=WALLET, sizeThreshold="0")).json()
    assert row["conditionId"] == fed.condition_id and row["asset"] == fed.yes_token and row["size"] == 0.5
    assert row["outcome"] == "Yes" and row["outcomeIndex"] == 0 and row["redeemable"] is False


# -- the Data API row parser, pure -------------------------------------------------------------------

C1, C2 = "0x" + "a1" * 32, "0x" + "b2" * 32


def row(condition: str = C1, asset: str = "111", size: Any = 10.0, outcome: str = "Yes", **kw) -> dict[str, Any]:
    return {"proxyWallet": WALLET.lower(), "asset": asset, "conditionId": condition, "size": size,
            "outcome": outcome, "outcomeIndex": 0 if outcome == "Yes" else 1, "redeemable": False, **kw}


def test_rows_become_signed_shares_without_float_noise():
    rows = [row(size=113.00000000000001), row(asset="112", outcome="No", size=3.0),
            row(C2, asset="221", outcome="Up", outcomeIndex=1, size=0.30000000000000004),
            row("0x" + "c3" * 32, asset="331", redeemable=True), row("0x" + "d4" * 32, asset="441", size=4e-7)]
    positions = positions_from_wire(rows, user=WALLET)
    assert positions == {C1: D(110), C2: D("-0.3")}  # + YES - NO; redeemable and sub-unit dust are left out
    assert str(positions[C1]) == "110" and str(positions[C2]) == "-0.3"
    known = {"111": (C1, Side.NO)}  # the token we know overrides the label
    assert positions_from_wire([row()], user=WALLET, tokens=known) == {C1: D(-10)}
    assert positions_from_wire([row(size=2.0), row(asset="112", outcome="No", size=2.0)], user=WALLET) == {}


@pytest.mark.parametrize("bad, message", [
    (row(size=None), "size"), (row(size="ten"), "size"), (row(size=-1.0), "size"),
    (row(outcome="Maybe", outcomeIndex=2), "YES from NO"), (row(conditionId=None), "conditionId"),
    (row(proxyWallet="0x" + "99" * 20), "wallet"), ("not an object", "expected an object"),
])
def test_a_row_that_cannot_be_read_fails_the_listing(bad, message):
    with pytest.raises(WireFormatError, match=message):
        positions_from_wire([bad], user=WALLET)
    with pytest.raises(WireFormatError, match="listed twice"):
        positions_from_wire([row(), row()], user=WALLET)
    with pytest.raises(WireFormatError, match="belongs to market"):
        positions_from_wire([row()], user=WALLET, tokens={"111": (C2, Side.YES)})


async def test_a_market_filled_within_the_data_apis_lag_is_compared_on_a_later_run(tmp_path, fake, servers):
    # The Data API trails fills by minutes: right after our fill it may not show it yet.
    desk, store, client, signal = await filled_desk(tmp_path, fake, servers, positions_lag=timedelta(minutes=5))
    fed = fake.markets[signal.market.id]
    other = fake.add_market("Will it snow in Paris on Christmas?", bids=[("0.48", "500")], asks=[("0.52", "500")])
    fake.hold(WALLET, fed, "Yes", 3)  # a difference in the market just filled: not judged yet
    fake.hold(WALLET, other, "No", 2)  # one in a market the desk did not touch: told at once
    report = await desk.reconcile()
    assert {m.market_id for m in report.positions} == {other.condition_id}
    client.positions_lag = timedelta(0)  # as if the lag had passed
    assert {m.market_id for m in (await desk.reconcile()).positions} == {other.condition_id, fed.condition_id}
    await desk.aclose()
    await store.close()


# -- open orders (reconciliation): orders working on the account that the desk did not place ------------------


@pytest.fixture
async def resting(tmp_path, fake, servers):
    """A live Polymarket desk whose one GTC order took the 10 offered after the scan and rests at the fake CLOB."""
    desk, store, client = await polymarket_desk(tmp_path, fake, servers, trading={
        "time_in_force": "good_till_canceled"})
    try:
        [signal] = (await desk.scan()).signals
        fake.markets[signal.market.id].asks = {D("0.42"): D(10)}
        assert (await desk.approve(signal.id, ADMIN)).ok
        [order] = await store.orders()
        assert order.status is OrderStatus.RESTING and order.filled == 10
        assert fake.orders[order.venue_order_id].status == "LIVE"
        yield desk, store, client, signal, order
    finally:
        await desk.aclose()
        await store.close()


async def by_hand(servers, tmp_path, market: Market, *coids: str, contracts: str = "12", price: str = "0.30",
                  side: Side = Side.YES) -> list[str]:
    """GTC orders resting on the desk's wallet, placed by another program (its own journal): their CLOB ids."""
    hand = make_client(servers)
    try:
        results = [await hand.place_order(buy(market, contracts, price, side=side, tif="good_till_canceled",
                                              coid=coid), market) for coid in coids]
    finally:
        await hand.aclose()
    assert all(r.status is OrderStatus.RESTING and r.filled == 0 for r in results)
    return [r.venue_order_id for r in results]


def listings(clob: LoopbackServer) -> list[dict[str, str]]:
    return [r.query for r in clob.requests if r.method == "GET" and r.path == "/data/orders"]


async def test_an_order_placed_by_hand_is_reported_and_the_desks_resting_order_is_not(tmp_path, fake, servers,
                                                                                        resting):
    _, clob, _ = servers
    desk, store, client, signal, order = resting
    [hand_id] = await by_hand(servers, tmp_path, signal.market, "by-hand-1", contracts="12", price="0.30",
                              side=Side.NO)
    fake.orders[hand_id].size_matched = D(5)  # a seller has since taken 5 of the 12
    listed = {o.order_id: o for o in await client.open_orders()}
    assert set(listed) == {order.venue_order_id, hand_id}  # the desk's order is listed, under its own id
    assert listed[order.venue_order_id].client_order_id == order.client_order_id
    before = await store.orders()
    report = await desk.reconcile()
    [foreign] = report.foreign
    assert foreign.order_id == hand_id and foreign.client_order_id == "" and foreign.venue is Venue.POLYMARKET
    assert foreign.market_id == signal.market.id and foreign.side == "no" and foreign.remaining == D(7)
    assert report.worth_telling and report.resolved == [] and report.unresolved == []
    assert await store.orders() == before  # not adopted, the desk's order unchanged
    assert fake.orders[hand_id].status == "LIVE" and fake.orders[order.venue_order_id].status == "LIVE"
    assert clob.count("DELETE", "/order") == 0  # nothing cancelled
    assert listings(clob)[-1] == {"next_cursor": "MA=="}
    # After a restart the journal still knows the desk's order.
    reopened = await Store.open(tmp_path / "desk.db")
    restarted = make_client(servers, journal=StoreJournal(reopened))
    again = {o.order_id: o.client_order_id for o in await restarted.open_orders()}
    assert again == {order.venue_order_id: order.client_order_id, hand_id: ""}
    await restarted.aclose()
    await reopened.close()


async def test_every_page_of_open_orders_is_listed_once(fake, servers, tmp_path):
    fed = fed_market(fake)
    other = fake.add_market("Will it snow in Paris on Christmas?", bids=[("0.48", "500")], asks=[("0.52", "500")])
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    ours = await client.place_order(buy(market, "10", "0.20", tif="good_till_canceled", coid="od-ours"), market)
    hand = await by_hand(servers, tmp_path, market, *(f"hand-{n}" for n in range(5)))
    hand += await by_hand(servers, tmp_path, await listed(client, other.condition_id), "hand-other")
    filled = await client.place_order(buy(market, "10", "0.44", coid="od-filled"), market)  # FAK: not open
    assert filled.status is OrderStatus.FILLED
    fake.open_orders_page = 3
    orders = await client.open_orders()
    assert [o.order_id for o in orders] == [ours.venue_order_id, *hand]  # each once, in the CLOB's order
    assert {o.order_id: o.client_order_id for o in orders} == {ours.venue_order_id: "od-ours",
                                                                **{h: "" for h in hand}}
    assert all(o.remaining == (10 if o.order_id == ours.venue_order_id else 12) for o in orders)
    assert listings(clob) == [{"next_cursor": "MA=="}, {"next_cursor": "Mw=="}, {"next_cursor": "Ng=="}]
    fake.open_orders_page = 7  # exactly one full page: the end cursor comes with it
    assert len(await client.open_orders()) == 7 and len(listings(clob)) == 4
    await client.aclose()


async def test_the_fake_lists_only_the_callers_live_orders_and_refuses_bad_auth(fake, servers, tmp_path):
    fed = fed_market(fake)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    [mine] = await by_hand(servers, tmp_path, market, "hand-yes")
    [no] = await by_hand(servers, tmp_path, market, "hand-no", side=Side.NO)
    other_key = "0x" + "5d" * 32
    stranger = make_client(servers, credentials=PolymarketCredentials(private_key=other_key))
    await stranger.place_order(buy(market, "10", "0.20", tif="good_till_canceled", coid="theirs"), market)
    assert [o.order_id for o in await client.open_orders()] == [mine, no]  # not another key's order
    api = next(a for a in fake.api_keys.values() if a.address == WALLET)

    async def get(params: dict[str, str], secret: str = api.secret) -> httpx.Response:
        timestamp = str(int(time.time()))
        headers = {"POLY_ADDRESS": WALLET, "POLY_API_KEY": api.key, "POLY_PASSPHRASE": api.passphrase,
                   "POLY_TIMESTAMP": timestamp,
                   "POLY_SIGNATURE": l2_signature(secret, timestamp, "GET", "/data/orders", "")}
        async with httpx.AsyncClient(base_url=clob.url) as http:
            return await http.get("/data/orders", params=params, headers=headers)

    def ids(answer: httpx.Response) -> list[str]:
        assert answer.status_code == 200
        return [o["id"] for o in answer.json()["data"]]

    assert ids(await get({"asset_id": market.no_token_id})) == [no]
    assert ids(await get({"id": mine})) == [mine] and ids(await get({"market": "0x" + "00" * 32})) == []
    assert ids(await get({"market": market.id, "next_cursor": "MA=="})) == [mine, no]
    fake.orders[no].status = "CANCELED"
    assert ids(await get({})) == [mine]
    for cursor in ("LTE=", "not base64!"):
        assert (await get({"next_cursor": cursor})).status_code == 400
    wrong = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy0="
    assert (await get({}, secret=wrong)).status_code == 401
    await stranger.aclose()
    await client.aclose()


async def test_a_client_without_a_wallet_key_has_no_open_orders_to_list(fake, servers):
    _, clob, _ = servers
    read_only = make_client(servers, credentials=PolymarketCredentials())
    assert await read_only.open_orders() is None
    assert listings(clob) == [] and fake.api_keys == {}
    await read_only.aclose()


async def test_an_unexpected_open_orders_body_is_logged_and_reconciliation_still_finishes(tmp_path, fake, servers,
                                                                                            resting, caplog):
    _, clob, _ = servers
    desk, store, client, signal, _ = resting
    await by_hand(servers, tmp_path, signal.market, "by-hand-1")
    fake.open_orders_shape = "array"  # readable, but not the paged shape: not guessed at
    with pytest.raises(WireFormatError, match="expected"):
        await client.open_orders()
    before = await store.orders()
    with caplog.at_level(logging.WARNING, logger="pipeline.reconcile"):
        report = await desk.reconcile()
    assert "could not list polymarket open orders: WireFormatError" in caplog.text
    assert report.checked == 1 and report.foreign == [] and report.positions == []  # it ran to the end
    assert [(k.what, k.error) for k in report.skipped] == [("open orders", "WireFormatError")]
    assert await store.orders() == before
    fake.open_orders_shape = "paged"
    fake.open_orders_page, fake.open_orders_cursor = 1, "MQ=="  # page 2 points at page 2 again
    with pytest.raises(WireFormatError, match="repeats"):
        await client.open_orders()
    assert listings(clob)[2:] == [{"next_cursor": "MA=="}, {"next_cursor": "MQ=="}]  # then it stopped


# -- the kill switch on a partly filled resting order ------------------------------------------------------


async def test_halt_cancels_a_partly_filled_resting_order_and_keeps_the_prices_it_traded_at(fake, servers, resting):
    """The POST answer gave the real average (0.42 under a 0.44 limit); the look-up after the cancel shows
    only the limit. The fills stand as traded, the order is recorded cancelled, reconciliation runs clean."""
    _, clob, _ = servers
    desk, store, client, signal, order = resting
    assert order.average_price == D("0.42") and order.limit_price > D("0.42")
    [position_before] = await store.positions(paper=False)
    halted = await desk.halt(ADMIN)
    assert halted.ok and "1 resting order(s) cancelled" in halted.message and "Could NOT" not in halted.message
    assert fake.orders[order.venue_order_id].status == "CANCELED" and clob.count("DELETE", "/order") == 1
    [after] = await store.orders()
    assert after.status is OrderStatus.PARTIALLY_FILLED and after.filled == 10 and after.average_price == D("0.42")
    assert await store.positions(paper=False) == [position_before]
    assert len(await store.fills_for_order(order.id)) == 1
    report = await desk.reconcile()
    assert report.unresolved == [] and report.positions == [] and not report.halt_cancels


async def test_an_order_that_filled_before_the_halt_is_recorded_filled_not_cancelled(fake, servers, resting):
    desk, store, client, signal, order = resting
    fake.orders[order.venue_order_id].status = "MATCHED"  # it filled meanwhile: the CLOB will not cancel it
    fake.orders[order.venue_order_id].size_matched = D(order.contracts)
    halted = await desk.halt(ADMIN)
    assert "0 resting order(s) cancelled" in halted.message and "1 filled before the cancel reached them" \
        in halted.message
    [after] = await store.orders()
    assert after.status is OrderStatus.FILLED and after.filled == order.contracts
    # The 10 traded at 0.42 keep their price; the rest is booked at the limit the look-up shows.
    expected = (D(10) * D("0.42") + (order.contracts - 10) * order.limit_price) / order.contracts
    assert after.average_price == expected


# ---------------------------------------------------------------------------- fees, Protocol V2, deposit wallets


async def test_a_fee_charging_market_is_priced_from_the_clob_and_its_fills_carry_the_fee(fake, servers):
    fed = fed_market(fake, fee_rate="0.04")
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    assert market.fees.rate == D("0.04") and market.fees.rounding == D("0.00001")
    assert [r.path for r in clob.requests if r.path.startswith("/clob-markets/")] == [f"/clob-markets/{fed.condition_id}"]
    result = await client.place_order(buy(market, "150", "0.44"), market)
    # 100 @ 0.42 and 50 @ 0.44: the CLOB charged 0.04 x 100 x 0.2436 + 0.04 x 50 x 0.2464 = 0.9744 + 0.4928 = 1.4672
    [order] = fake.orders.values()
    assert order.fee == D("1.4672") and order.paid == D("64")
    # The desk books the fee at the average price (0.42667): 0.04 x 150 x 0.42667 x 0.57333 = 1.46775... -> 1.46776,
    # a hair above the CLOB's because p(1 - p) is concave: never below what was charged.
    assert result.filled == 150 and result.cost == D("64")
    assert result.fees >= order.fee and result.fees - order.fee < D("0.001")
    # reused within fees.cache_minutes: pricing again asks the CLOB nothing
    await client.with_fees([market], NOW)
    assert len([r for r in clob.requests if r.path.startswith("/clob-markets/")]) == 1
    await client.aclose()


async def test_a_v2_market_is_traded_on_exchange_v3_by_its_position_ids(fake, servers):
    v2 = fake.add_market("Will the ceasefire hold?", bids=[("0.30", "200")], asks=[("0.32", "500")], version="v2",
                         stale_ids=True)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, v2.condition_id)
    assert market.protocol == "v2" and market.yes_token_id == v2.yes_token  # the position id, not the stale token
    book = await client.get_order_book(market)
    assert book.best_ask(Side.YES) == D("0.32")
    result = await client.place_order(buy(market, "100", "0.32"), market)
    assert result.status is OrderStatus.FILLED and result.filled == 100
    order = order_posts(clob)[0].json()["order"]
    assert order["tokenId"] == v2.yes_token
    # its id is the order's hash under ExchangeV3's domain "3", which the fake recomputed independently
    assert result.venue_order_id == order_hash(order, neg_risk=False, version="3") != order_hash(order, neg_risk=False)
    await client.aclose()


async def test_an_order_signed_for_the_wrong_exchange_version_stops_polymarket_orders(fake, servers):
    v2 = fake.add_market("Will the ceasefire hold?", bids=[("0.30", "200")], asks=[("0.32", "500")], version="v2")
    client = make_client(servers)
    market = await listed(client, v2.condition_id)
    stale = market.model_copy(update={"protocol": "v1"})  # what a desk that does not know v2 would sign
    with pytest.raises(VenueContractError) as caught:
        await client.place_order(buy(stale, "100", "0.32"), stale)
    assert caught.value.venue == "polymarket" and caught.value.code == "order_version_mismatch"
    assert fake.orders == {}
    await client.aclose()


async def test_a_deposit_wallet_account_trades_with_type_3_signatures(fake, servers):
    fed = fed_market(fake)
    _, clob, _ = servers
    wallet = "0x00000000000000000000000000000000De9051Ed"
    fake.register_deposit_wallet(WALLET, wallet)
    as_eoa = make_client(servers)
    market = await listed(as_eoa, fed.condition_id)
    with pytest.raises(GiveUpError, match="set POLYMARKET_SIGNATURE_TYPE=3 and POLYMARKET_FUNDER"):
        await as_eoa.place_order(buy(market, "10", "0.44", coid="od-eoa"), market)
    client = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, funder=wallet, signature_type=3))
    result = await client.place_order(buy(market, "10", "0.44"), market)
    assert result.status is OrderStatus.FILLED and result.filled == 10
    order = order_posts(clob)[-1].json()["order"]
    assert order["signatureType"] == 3 and order["maker"] == order["signer"] == wallet
    assert result.venue_order_id == order_hash(order, neg_risk=False)
    assert fake.orders[result.venue_order_id].signature_type == 3  # the fake checked the ERC-7739 wrapping
    await client.aclose()
    await as_eoa.aclose()


async def test_an_undeployed_deposit_wallet_is_told_what_to_do(fake, servers):
    fed = fed_market(fake)
    wallet = "0x00000000000000000000000000000000De9051Ed"
    fake.register_deposit_wallet(WALLET, wallet, deployed=False)
    client = make_client(servers, credentials=PolymarketCredentials(private_key=KEY, funder=wallet, signature_type=3))
    market = await listed(client, fed.condition_id)
    with pytest.raises(GiveUpError, match="not yet deployed on-chain: make a first deposit"):
        await client.place_order(buy(market, "10", "0.44"), market)
    assert fake.orders == {}
    await client.aclose()


async def test_a_market_of_an_unknown_protocol_version_is_dropped_with_its_reason(fake, servers):
    fed_market(fake)
    fake.add_market("From the future?", bids=[("0.30", "200")], asks=[("0.32", "500")], version="v9")
    fake.add_market("From the past?", bids=[("0.30", "200")], asks=[("0.32", "500")], version=None)
    client = make_client(servers)
    stats = VenueScanStats()
    markets = await client.list_markets(stats)
    assert len(markets) == 1 and stats.skip_reasons == {"protocol_version_unknown": 1, "protocol_version_missing": 1}
    await client.aclose()
