"""Wire parsing (Kalshi, Polymarket), the snapshot venue, and the bundled sample against the pinned spec."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from pipeline.config import FeesConfig
from pipeline.errors import GiveUpError
from pipeline.models import OrderRequest, Side, Venue, VenueScanStats
from pipeline.venues import kalshi_wire, polymarket_wire
from pipeline.venues.base import VenueClient
from pipeline.errors import WireFormatError
from pipeline.venues.snapshot import SnapshotVenue, sample_directory

from .contracts import kalshi_errors, unknown_fields

D = Decimal
FEES = FeesConfig()
UTC = timezone.utc
SAMPLE = sample_directory()


def kalshi_raw(**overrides: Any) -> dict[str, Any]:
    raw = {
        "ticker": "INX-26DEC31-T7000", "event_ticker": "INX-26DEC31", "market_type": "binary",
        "title": "Will the S&P 500 close above 7,000 on December 31, 2026?",
        "yes_sub_title": "Above 7,000", "no_sub_title": "Above 7,000", "status": "active",
        "close_time": "2026-12-31T21:00:00Z",
        "yes_bid_dollars": "0.4230", "yes_ask_dollars": "0.4270",
        "yes_bid_size_fp": "1000.00", "yes_ask_size_fp": "500.00", "last_price_dollars": "0.4250",
        "volume_fp": "15234.00",
        "rules_primary": "If the close is above 7000.00, Yes.", "rules_secondary": "Source: S&P DJI.",
        "price_level_structure": "deci_cent",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0010"}],
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def gamma_raw(**overrides: Any) -> dict[str, Any]:
    raw = {
        "id": "610000", "question": "Will Bitcoin be above $120,000 on December 31, 2026?",
        "conditionId": "0xabc", "slug": "bitcoin-above-120k", "endDate": "2026-12-31T17:00:00Z",
        "description": "Resolves Yes if ...", "volume": "2841930.55", "volumeNum": 2841930.55,
        "liquidity": "84210.40", "liquidityNum": 84210.4, "volume24hr": 1000.5,
        "outcomes": "[\"Yes\", \"No\"]", "outcomePrices": "[\"0.315\", \"0.685\"]",
        "clobTokenIds": "[\"111\", \"222\"]", "version": "v1", "active": True, "closed": False, "archived": False,
        "enableOrderBook": True, "acceptingOrders": True, "orderPriceMinTickSize": 0.001, "orderMinSize": 5,
        "negRisk": True, "spread": 0.01, "lastTradePrice": 0.31, "bestBid": "0.31", "bestAsk": 0.32,
        "events": [{"id": "1", "slug": "bitcoin-above-on-december-31"}],
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


# --- Kalshi --------------------------------------------------------------------------------------

def test_kalshi_market_maps_every_field() -> None:
    m = kalshi_wire.market_from_wire(kalshi_raw())
    assert m.venue is Venue.KALSHI and m.id == "INX-26DEC31-T7000"
    assert m.title == "Will the S&P 500 close above 7,000 on December 31, 2026?"
    assert m.rules == "If the close is above 7000.00, Yes.\n\nSource: S&P DJI."
    assert m.status == "open"  # the wire says "active"
    assert (m.yes_bid, m.yes_ask, m.last_price) == (D("0.4230"), D("0.4270"), D("0.4250"))
    assert isinstance(m.yes_bid, Decimal)
    assert m.volume == D("15234")
    assert m.liquidity == D("0.4230") * 1000 + D("0.4270") * 500  # dollars at the touch: 636.50
    assert m.close_time == datetime(2026, 12, 31, 21, tzinfo=UTC)
    assert m.url == "https://kalshi.com/markets/inx-26dec31"
    # Counts in 0.01 steps (FixedPointCount); fees are the series', read separately, so none yet.
    assert m.tick_size == D("0.001") and m.contract_step == D("0.01")
    assert m.fee_model is None and m.fee_waived_until is None
    assert m.event == "INX-26DEC31"
    assert m.yes_token_id == "" and m.mid == D("0.4250")


def test_kalshi_default_rate_fallback_title_and_empty_quotes() -> None:
    m = kalshi_wire.market_from_wire(kalshi_raw(
        ticker="KXHIGHNY-26NOV23-T52", event_ticker="KXHIGHNY-26NOV23", title=None, yes_sub_title="52° or above",
        yes_bid_dollars="0.0000", yes_ask_dollars="1.0000", yes_bid_size_fp="0.00", yes_ask_size_fp="0.00",
        last_price_dollars="0.0000", rules_secondary=None, price_ranges=None,
    ))
    assert m.title == "KXHIGHNY-26NOV23: 52° or above"
    assert m.yes_bid is None and m.yes_ask is None and m.last_price is None  # no quote, never traded
    assert m.liquidity == D(0)  # no touch to measure (liquidity_dollars is gone from the API)
    assert m.rules == "If the close is above 7000.00, Yes."
    assert m.tick_size == D("0.01")


def test_kalshi_whole_contracts_when_configured_or_a_market_says_so_and_a_fee_waiver() -> None:
    assert kalshi_wire.market_from_wire(kalshi_raw(), fractional=False).contract_step == D(1)
    # the retired flag, from a server that still sends it false
    assert kalshi_wire.market_from_wire(kalshi_raw(fractional_trading_enabled=False)).contract_step == D(1)
    waived = kalshi_wire.market_from_wire(kalshi_raw(fee_waiver_expiration_time="2026-12-01T00:00:00Z"))
    assert waived.fee_waived_until == datetime(2026, 12, 1, tzinfo=UTC)


def test_kalshi_smallest_step_of_tapered_ranges() -> None:
    ranges = [{"start": "0.0000", "end": "0.1000", "step": "0.0010"},
              {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
              {"start": "0.9000", "end": "1.0000", "step": "0.0010"}]
    assert kalshi_wire.market_from_wire(kalshi_raw(price_ranges=ranges)).tick_size == D("0.001")


@pytest.mark.parametrize("wire, ours", [
    ("active", "open"), ("open", "open"), ("closed", "closed"), ("inactive", "closed"), ("settled", "settled"),
    ("determined", "settled"), ("finalized", "settled"), ("paused", "paused"), ("initialized", "closed"),
    ("something_new", "closed"),
])
def test_kalshi_status_mapping(wire: str, ours: str) -> None:
    assert kalshi_wire.market_from_wire(kalshi_raw(status=wire)).status == ours


@pytest.mark.parametrize("field", ["ticker", "event_ticker", "status", "close_time"])
def test_kalshi_missing_required_field(field: str) -> None:
    with pytest.raises(WireFormatError, match=field) as caught:
        kalshi_wire.market_from_wire(kalshi_raw(**{field: None}))
    assert isinstance(caught.value, GiveUpError)
    if field != "ticker":
        assert "INX-26DEC31-T7000" in str(caught.value)


@pytest.mark.parametrize("field, value", [("yes_bid_dollars", "abc"), ("volume_fp", True),
                                          ("close_time", "next tuesday"), ("yes_ask_dollars", "NaN")])
def test_kalshi_unparseable_field(field: str, value: Any) -> None:
    with pytest.raises(WireFormatError, match=f"INX-26DEC31-T7000.*{field}"):
        kalshi_wire.market_from_wire(kalshi_raw(**{field: value}))


def test_kalshi_book_mirrors_no_bids_into_yes_asks() -> None:
    raw = {"orderbook_fp": {
        "yes_dollars": [["0.3800", "900.00"], ["0.4000", "0.00"], ["0.4200", "300.00"], ["0.4100", "500.00"]],
        "no_dollars": [["0.5200", "700.00"], ["0.5500", "250.00"], ["0.5400", "400.00"]],
    }}
    book = kalshi_wire.orderbook_from_wire("T", raw)
    assert [(lvl.price, lvl.size) for lvl in book.yes_bids] == [
        (D("0.42"), D(300)), (D("0.41"), D(500)), (D("0.38"), D(900))]  # best first, empty level dropped
    assert [(lvl.price, lvl.size) for lvl in book.yes_asks] == [
        (D("0.45"), D(250)), (D("0.46"), D(400)), (D("0.48"), D(700))]  # NO bid q -> YES ask 1 - q
    assert book.best_ask(Side.YES) == D("0.45") and book.best_ask(Side.NO) == D("0.58")
    assert book.venue is Venue.KALSHI and book.market_id == "T"


def test_kalshi_book_null_sides_are_empty() -> None:
    book = kalshi_wire.orderbook_from_wire("T", {"orderbook_fp": {"yes_dollars": None}})
    assert book.yes_bids == () and book.yes_asks == ()
    with pytest.raises(WireFormatError, match="orderbook_fp"):
        kalshi_wire.orderbook_from_wire("T", {"orderbook": {"yes": [[42, 300]]}})  # the pre-2026 shape


# --- Polymarket ----------------------------------------------------------------------------------

def test_polymarket_market_maps_every_field() -> None:
    m = polymarket_wire.market_from_wire(gamma_raw())
    assert m is not None and m.venue is Venue.POLYMARKET and m.id == "0xabc"
    assert m.title == "Will Bitcoin be above $120,000 on December 31, 2026?" and m.rules == "Resolves Yes if ..."
    assert m.status == "open"
    assert (m.yes_bid, m.yes_ask, m.last_price) == (D("0.31"), D("0.32"), D("0.31"))  # string and numbers alike
    assert m.volume == D("2841930.55") and m.liquidity == D("84210.4")  # Decimal(str(float)), no binary noise
    assert m.close_time == datetime(2026, 12, 31, 17, tzinfo=UTC)
    assert m.url == "https://polymarket.com/market/bitcoin-above-120k"
    assert m.tick_size == D("0.001") and m.contract_step == D("0.01") and m.min_order_size == D(5)
    assert m.fee_model is None  # the CLOB's, read for the markets a cycle prices
    assert (m.yes_token_id, m.no_token_id) == ("111", "222") and m.protocol == "v1"
    assert m.neg_risk is True and m.event == "bitcoin-above-on-december-31"


def test_polymarket_v2_outcome_ids_come_from_position_ids_even_when_token_ids_are_there() -> None:
    m = polymarket_wire.market_from_wire(gamma_raw(version="v2", positionIds=["9001", "9002"]))
    assert m is not None and m.protocol == "v2" and (m.yes_token_id, m.no_token_id) == ("9001", "9002")
    assert m.neg_risk is False  # no separate neg-risk exchange on Protocol V2
    # and a v1 market carrying position ids (the CLOB has no book for them) keeps its token ids
    v1 = polymarket_wire.market_from_wire(gamma_raw(positionIds=["9001", "9002"]))
    assert v1 is not None and (v1.yes_token_id, v1.no_token_id) == ("111", "222")


@pytest.mark.parametrize("version, reason", [(None, "protocol_version_missing"), ("v9", "protocol_version_unknown"),
                                             (2, "protocol_version_unknown")])
def test_polymarket_unknown_or_missing_version_is_dropped_with_its_reason(version: Any, reason: str) -> None:
    raw = gamma_raw(positionIds=["9001", "9002"])
    raw["version"] = version
    with pytest.raises(polymarket_wire.UnsupportedMarket) as caught:
        polymarket_wire.market_from_wire(raw)
    assert caught.value.reason == reason and "not guessed" in str(caught.value)


@pytest.mark.parametrize("ids", [None, "[]", "[\"1\"]", "[\"1\", \"x\"]"])
def test_polymarket_outcome_ids_that_are_not_two_decimal_ids_are_an_error(ids: Any) -> None:
    with pytest.raises(WireFormatError, match="clobTokenIds"):
        polymarket_wire.market_from_wire(gamma_raw(clobTokenIds=ids))


def test_polymarket_lenient_shapes() -> None:
    m = polymarket_wire.market_from_wire(gamma_raw(
        outcomes=["no", "YES"], clobTokenIds=["1", "2"],  # real lists, other order, any case
        volumeNum=None, liquidityNum=None, bestBid=0, bestAsk=1, lastTradePrice=None, events=None,
        orderPriceMinTickSize=None, orderMinSize=None))
    assert m is not None
    assert (m.yes_token_id, m.no_token_id) == ("2", "1")
    assert m.volume == D("2841930.55") and m.liquidity == D("84210.40")  # from the string fields
    assert m.yes_bid is None and m.yes_ask is None and m.last_price is None
    assert m.event == "" and m.tick_size == D("0.01") and m.min_order_size == D(0)


@pytest.mark.parametrize("overrides, status", [
    ({}, "open"), ({"closed": True}, "closed"), ({"active": False}, "closed"),
    ({"acceptingOrders": False}, "closed"), ({"acceptingOrders": None}, "open"),
])
def test_polymarket_status(overrides: dict[str, Any], status: str) -> None:
    market = polymarket_wire.market_from_wire(gamma_raw(**overrides))
    assert market is not None and market.status == status


@pytest.mark.parametrize("overrides", [
    {"outcomes": "[\"Arsenal\", \"Draw\", \"Chelsea\"]", "clobTokenIds": "[\"1\", \"2\", \"3\"]"},
    {"outcomes": "[\"Lakers\", \"Celtics\"]"}, {"enableOrderBook": False}, {"outcomes": None},
])
def test_polymarket_not_a_binary_order_book_market(overrides: dict[str, Any]) -> None:
    assert polymarket_wire.market_from_wire(gamma_raw(**overrides)) is None


@pytest.mark.parametrize("field", ["conditionId", "question", "endDate"])
def test_polymarket_missing_required_field(field: str) -> None:
    with pytest.raises(WireFormatError, match=field):
        polymarket_wire.market_from_wire(gamma_raw(**{field: None}))


def test_polymarket_book_is_resorted() -> None:
    raw = {"market": "0xabc", "asset_id": "111", "timestamp": "1795186741459", "hash": "f00",
           "bids": [{"price": "0.25", "size": "700"}, {"price": "0.29", "size": "0"},
                    {"price": "0.30", "size": "120.5"}],
           "asks": [{"price": "0.38", "size": "900"}, {"price": "0.33", "size": "400"},
                    {"price": "0.32", "size": "150.25"}],
           "min_order_size": "5", "tick_size": "0.01", "neg_risk": False, "last_trade_price": "0.31"}
    book = polymarket_wire.orderbook_from_wire("0xabc", raw)
    assert [(lvl.price, lvl.size) for lvl in book.yes_bids] == [(D("0.30"), D("120.5")), (D("0.25"), D(700))]
    assert [lvl.price for lvl in book.yes_asks] == [D("0.32"), D("0.33"), D("0.38")]
    assert book.yes_asks[0].size == D("150.25") and book.venue is Venue.POLYMARKET


# --- the snapshot venue and the bundled sample ---------------------------------------------------

CAPTURED = datetime(2026, 11, 20, 15, tzinfo=UTC)


async def test_snapshot_rebases_close_times() -> None:
    later = CAPTURED + timedelta(days=40, hours=3)
    for venue in Venue:
        at_capture = await SnapshotVenue(venue, SAMPLE, FEES, now=CAPTURED).list_markets()
        rebased = await SnapshotVenue(venue, SAMPLE, FEES, now=later).list_markets()
        assert [m.id for m in at_capture] == [m.id for m in rebased]
        for a, b in zip(at_capture, rebased, strict=True):
            assert b.close_time - a.close_time == later - CAPTURED
        if venue is Venue.KALSHI:  # unshifted when now == captured_at
            fed = next(m for m in at_capture if m.id == "KXFEDDECISION-26DEC-H0")
            assert fed.close_time == datetime(2026, 12, 9, 18, 55, tzinfo=UTC)


async def test_snapshot_default_now_is_the_wall_clock() -> None:
    markets = await SnapshotVenue(Venue.KALSHI, SAMPLE, FEES).list_markets()
    fed = next(m for m in markets if m.id == "KXFEDDECISION-26DEC-H0")
    to_close = fed.close_time - datetime.now(UTC)
    assert abs(to_close - (datetime(2026, 12, 9, 18, 55, tzinfo=UTC) - CAPTURED)) < timedelta(minutes=1)


async def test_snapshot_is_a_read_only_venue_client() -> None:
    venue = SnapshotVenue(Venue.KALSHI, SAMPLE, FEES, now=CAPTURED)
    assert isinstance(venue, VenueClient)
    market = (await venue.list_markets())[0]
    request = OrderRequest(client_order_id="od-1", venue=Venue.KALSHI, market_id=market.id, side=Side.YES,
                           contracts=D(1), limit_price=D("0.5"))
    with pytest.raises(GiveUpError, match="read-only"):
        await venue.place_order(request, market)
    with pytest.raises(GiveUpError, match="read-only"):
        await venue.find_order("od-1", market)
    assert await venue.resolution(market.id) is None  # a snapshot is one moment: nothing in it resolves
    unknown = market.model_copy(update={"id": "NOT-IN-SAMPLE"})
    book = await venue.get_order_book(unknown)
    assert book.yes_bids == () and book.yes_asks == () and book.fetched_at == CAPTURED
    await venue.aclose()


async def test_snapshot_prices_fees_as_the_live_client_does_a_waiver_included() -> None:
    venue = SnapshotVenue(Venue.KALSHI, SAMPLE, FEES, now=CAPTURED)
    fed = next(m for m in await venue.list_markets() if m.id == "KXFEDDECISION-26DEC-H0")
    waived = fed.model_copy(update={"fee_waived_until": CAPTURED + timedelta(days=1)})
    [scheduled, free], rejected = await venue.with_fees([fed, waived], CAPTURED)
    assert rejected == [] and scheduled.fees.rate > 0 and "series KXFEDDECISION" in scheduled.fees.source
    assert free.fees.free and "fee waiver" in free.fees.source


async def test_sample_size_and_books_match_quotes() -> None:
    counts = {}
    for venue in Venue:
        client = SnapshotVenue(venue, SAMPLE, FEES, now=CAPTURED)
        markets = await client.list_markets()
        counts[venue] = len(markets)
        assert len({m.id for m in markets}) == len(markets)
        for market in markets:
            book = await client.get_order_book(market)
            assert book.fetched_at == CAPTURED and book.market_id == market.id
            if market.yes_bid is not None:
                assert book.yes_bids and book.yes_bids[0].price == market.yes_bid, market.key
            if market.yes_ask is not None:
                assert book.yes_asks and book.yes_asks[0].price == market.yes_ask, market.key
            for side in (book.yes_bids, book.yes_asks):
                assert [lvl.size for lvl in side] == sorted(lvl.size for lvl in side), f"{market.key}: depth grows"
    assert counts[Venue.KALSHI] >= 28 and counts[Venue.POLYMARKET] >= 20
    assert sum(counts.values()) >= 48


def test_sample_is_labelled_and_estimates_name_sample_markets() -> None:
    manifest = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["label"].startswith("SAMPLE DATA") and manifest["captured_at"] == "2026-11-20T15:00:00Z"
    estimates = json.loads((SAMPLE / "estimates.json").read_text(encoding="utf-8"))
    assert estimates["label"].startswith("SAMPLE DATA")
    keys = set()
    for venue in Venue:
        for page in json.loads((SAMPLE / manifest["files"][venue.value]["markets"]).read_text(encoding="utf-8")):
            keys |= {f"{venue.value}:{m.get('ticker') or m.get('conditionId')}" for m in page["markets"]}
    assert set(estimates["estimates"]) <= keys
    for entry in estimates["estimates"].values():
        assert 0 < entry["probability"] < 1 and entry["reasoning"] and entry["key_factors"]


def test_sample_polymarket_wire_shapes() -> None:
    pages = json.loads((SAMPLE / "polymarket_markets.json").read_text(encoding="utf-8"))
    assert all("next_cursor" in p for p in pages[:-1]) and "next_cursor" not in pages[-1]
    for page in pages:
        for m in page["markets"]:
            for field in ("outcomes", "outcomePrices", "clobTokenIds"):
                assert isinstance(m[field], str) and isinstance(json.loads(m[field]), list)
    books = json.loads((SAMPLE / "polymarket_books.json").read_text(encoding="utf-8"))
    for book in books.values():
        bids = [D(b["price"]) for b in book["bids"]]
        asks = [D(a["price"]) for a in book["asks"]]
        assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # as the CLOB serves them
        assert all(isinstance(v, str) for level in book["bids"] + book["asks"] for v in level.values())


# --- the sample against the pinned Kalshi OpenAPI spec -------------------------------------------

# Integer-cent and integer-count fields removed on 2026-03-12: the sample must not carry them.
LEGACY_FIELDS = {"yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "previous_yes_bid", "previous_yes_ask",
                 "previous_price", "volume", "volume_24h", "liquidity", "open_interest", "notional_value",
                 "response_price_units", "tick_size"}


def test_the_validator_rejects_what_the_spec_rejects() -> None:
    page = json.loads((SAMPLE / "kalshi_markets.json").read_text(encoding="utf-8"))[0]
    broken = dict(page["markets"][0])
    del broken["ticker"]
    broken["yes_bid_dollars"] = 42
    errors = kalshi_errors({"markets": [broken], "cursor": ""}, "GetMarketsResponse")
    assert any("'ticker' is a required property" in e for e in errors)
    assert any("42 is not of type 'string'" in e for e in errors)
    assert unknown_fields({"ticker": "X", "made_up": 1}, "Market") == {"made_up"}


def test_sample_kalshi_markets_match_the_pinned_spec() -> None:
    pages = json.loads((SAMPLE / "kalshi_markets.json").read_text(encoding="utf-8"))
    assert len(pages) >= 2 and pages[-1]["cursor"] == "" and all(p["cursor"] for p in pages[:-1])
    for page in pages:
        assert kalshi_errors(page, "GetMarketsResponse") == []
        for market in page["markets"]:
            assert not unknown_fields(market, "Market"), market["ticker"]
            assert not LEGACY_FIELDS & set(market), f"{market['ticker']}: integer-cent fields are gone in 2026"
            for field in ("yes_bid_dollars", "yes_ask_dollars", "last_price_dollars"):
                assert re.fullmatch(r"\d\.\d{4,6}", market[field]), (market["ticker"], field)
            assert re.fullmatch(r"\d+\.\d{2}", market["volume_fp"]), market["ticker"]


def test_sample_kalshi_orderbooks_match_the_pinned_spec() -> None:
    books = json.loads((SAMPLE / "kalshi_orderbooks.json").read_text(encoding="utf-8"))
    assert books
    for ticker, payload in books.items():
        assert kalshi_errors(payload, "GetMarketOrderbookResponse") == [], ticker
        for side in ("yes_dollars", "no_dollars"):
            for price, count in payload["orderbook_fp"][side]:
                assert re.fullmatch(r"\d\.\d{4}", price) and re.fullmatch(r"\d+\.\d{2}", count), (ticker, side)


def test_sample_kalshi_series_match_the_pinned_spec() -> None:
    series = json.loads((SAMPLE / "kalshi_series.json").read_text(encoding="utf-8"))
    assert series
    for ticker, payload in series.items():
        assert kalshi_errors(payload, "GetSeriesResponse") == [], ticker
        assert not unknown_fields(payload["series"], "Series"), ticker


async def test_sample_fees_go_through_the_live_parsers_and_the_unknown_protocol_is_counted() -> None:
    kalshi = SnapshotVenue(Venue.KALSHI, SAMPLE, FEES, now=CAPTURED)
    markets = await kalshi.list_markets()
    priced, rejected = await kalshi.with_fees(markets, CAPTURED)
    assert rejected == [] and len(priced) == len(markets)
    by_id = {m.id: m.fees for m in priced}
    # INX: quadratic x0.5 -> 0.035; the Fed series charges makers 0.25 of 0.07; the rest quadratic x1
    assert by_id["INX-26DEC31-T7000"].rate == D("0.035") and by_id["INX-26DEC31-T7000"].maker_rate == 0
    assert by_id["KXFEDDECISION-26DEC-H0"].maker_rate == D("0.0175")
    assert by_id["KXCPI-26NOV-T0.3"].rate == D("0.07") and by_id["KXCPI-26NOV-T0.3"].rounding == D("0.0001")

    poly = SnapshotVenue(Venue.POLYMARKET, SAMPLE, FEES, now=CAPTURED)
    stats = VenueScanStats()
    markets = await poly.list_markets(stats)
    assert stats.skip_reasons == {"protocol_version_unknown": 1}
    assert any(m.protocol == "v2" for m in markets)
    priced, rejected = await poly.with_fees(markets, CAPTURED)
    assert rejected == [] and len(priced) == len(markets)
    rates = {m.title: m.fees.rate for m in priced}
    assert rates["Will Bitcoin be above $120,000 on December 31, 2026?"] == D("0.07")  # crypto
    assert rates["Will Russia and Ukraine sign a ceasefire before 2027?"] == 0  # geopolitics: fee-free, no `fd`
    # and the config's override wins over the recorded CLOB rates
    flat = SnapshotVenue(Venue.POLYMARKET, SAMPLE, FeesConfig(polymarket_taker_rate=D("0.01")), now=CAPTURED)
    priced, _ = await flat.with_fees(await flat.list_markets(), CAPTURED)
    assert {m.fees.rate for m in priced} == {D("0.01")}
