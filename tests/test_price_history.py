"""settled_markets and price_at, the venue side of the backtest: each client against its fake over loopback, the
recorded snapshot and the in-memory FakeVenue. Nothing of ours is monkeypatched."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pipeline.config import FeesConfig, PolymarketConfig
from pipeline.errors import GiveUpError, NotFoundError
from pipeline.models import Market, Resolution, Venue
from pipeline.venues import kalshi_wire
from pipeline.venues.base import VenueClient
from pipeline.venues.paper import PaperVenue
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials
from pipeline.venues.snapshot import SnapshotVenue, sample_directory

from .contracts import kalshi_errors, unknown_fields
from .fakes import FakeVenue, make_market
from .servers.base import LoopbackServer
from .servers.kalshi import PREFIX, FakeKalshi
from .servers.polymarket import PolymarketFake
from .test_kalshi import FAST, client_for, rsa_key

D = Decimal
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
AFTER, BEFORE = NOW - timedelta(days=10), NOW - timedelta(days=2)


# -- Kalshi -------------------------------------------------------------------------------------

@pytest.fixture
async def kalshi() -> AsyncIterator[tuple[FakeKalshi, LoopbackServer]]:
    fake = FakeKalshi(rsa_key(0).public_key(), now=NOW)
    async with fake.serve() as server:
        yield fake, server


def kalshi_window(fake: FakeKalshi) -> None:
    """Settled markets around the window [AFTER, BEFORE): three inside (one exactly at its start), one at its end,
    one before it, one closed but not settled inside it, one archived past the historical cutoff, one open."""
    fake.add_settled_market("KXCPI-26NOV-A", "yes", NOW - timedelta(days=3))
    fake.add_settled_market("KXCPI-26NOV-B", "no", NOW - timedelta(days=5))
    fake.add_settled_market("KXGDP-26NOV-C", "yes", AFTER)
    fake.add_settled_market("KXGDP-26NOV-END", "yes", BEFORE)
    fake.add_settled_market("KXGDP-26OCT-OLD", "no", AFTER - timedelta(seconds=1))
    fake.add_market("KXJOBS-26NOV-OPEN", yes=[("0.40", "10")], no=[("0.55", "10")], status="closed",
                    close_time=NOW - timedelta(days=4))
    fake.add_settled_market("KXARCH-25JAN-X", "yes", NOW - timedelta(days=6), historical=True)
    fake.add_market("KXFED-26DEC-H0", yes=[("0.40", "10")], no=[("0.55", "10")], close_time=NOW + timedelta(days=9))


async def test_kalshi_settled_markets_pages_through_the_window_newest_first(kalshi):
    fake, server = kalshi
    kalshi_window(fake)
    fake.markets_page_cap = 2  # the five markets the fake lists for the window come in three pages
    client = client_for(fake, unsigned=True)
    try:
        settled = await client.settled_markets(AFTER, BEFORE, 10)
        top = await client.settled_markets(AFTER, BEFORE, 2)
    finally:
        await client.aclose()
    assert [(m.id, r.yes_payout) for m, r in settled] == [
        ("KXCPI-26NOV-A", D(1)), ("KXCPI-26NOV-B", D(0)), ("KXGDP-26NOV-C", D(1))]
    assert all(m.status == "settled" and r.venue is Venue.KALSHI and r.market_id == m.id for m, r in settled)
    assert [m.id for m, _ in top] == ["KXCPI-26NOV-A", "KXCPI-26NOV-B"]
    pages = [r for r in server.requests if r.path == f"{PREFIX}/markets"]
    assert len(pages) == 6 and "cursor" in pages[1].query  # three pages per call
    assert pages[0].query["min_close_ts"] == str(int(AFTER.timestamp()))
    assert pages[0].query["max_close_ts"] == str(int(BEFORE.timestamp()))
    assert "status" not in pages[0].query  # the spec's table: close-time filters go with no status or `closed`


async def test_kalshi_warns_when_the_window_reaches_past_the_historical_cutoff(kalshi, caplog):
    fake, server = kalshi
    kalshi_window(fake)
    client = client_for(fake, unsigned=True)
    try:
        inside = await client.settled_markets(AFTER, BEFORE, 10)
        older = await client.settled_markets(NOW - timedelta(days=400), BEFORE, 10)
    finally:
        await client.aclose()
    assert server.count("GET", f"{PREFIX}/historical/cutoff") == 2
    assert len(older) == len(inside) + 1  # KXGDP-26OCT-OLD; the archived market is not listed by close time
    assert "historical cutoff" in caplog.text and "may miss older ones" in caplog.text


def kalshi_history(fake: FakeKalshi) -> Market:
    closed = NOW - timedelta(days=3)
    fake.add_settled_market("KXCPI-26NOV-A", "yes", closed, history=[
        (closed - timedelta(hours=30), "0.20", "0.24", "0.22"),  # more than a day before the moment asked
        (closed - timedelta(hours=5, minutes=10), "0.30", "0.34", "0.31"),
        (closed - timedelta(hours=3, minutes=40), "0.50", "0.54", None),  # quotes move, no trade
        (closed - timedelta(hours=1, minutes=30), "0.70", "1.00", "0.72"),  # no ask: the trade's price
        (closed - timedelta(minutes=20), "0.90", "0.94", "0.92"),
    ])
    return kalshi_wire.market_from_wire(fake.market_view("KXCPI-26NOV-A"))


async def test_kalshi_price_at_reads_the_last_hourly_candle_at_or_before_the_moment(kalshi):
    fake, server = kalshi
    market = kalshi_history(fake)
    closed = market.close_time
    client = client_for(fake, unsigned=True)
    try:
        four_hours = await client.price_at(market, closed - timedelta(hours=3))
        one_hour = await client.price_at(market, closed - timedelta(hours=1))
        exact = await client.price_at(market, datetime.fromtimestamp(  # a candle ending exactly then
            (int((closed - timedelta(hours=3, minutes=40)).timestamp()) // 3600 + 1) * 3600, timezone.utc))
        early = await client.price_at(market, closed - timedelta(hours=31))
        stale = await client.price_at(market, closed - timedelta(hours=6))
    finally:
        await client.aclose()
    assert four_hours == D("0.52")  # the mid of 0.50 and 0.54 in the candle ending 3 h before close
    assert one_hour == D("0.72")  # an empty ask ("1.0000"): the last trade instead
    assert exact == D("0.52")
    assert early is None  # no point yet
    assert stale == D("0.22")  # 30 h before close is within a day of 6 h before close
    sent = [r for r in server.requests if r.path.endswith("/candlesticks")][0]
    assert sent.path == f"{PREFIX}/series/KXCPI/markets/KXCPI-26NOV-A/candlesticks"
    assert sent.query["period_interval"] == "60"
    assert int(sent.query["end_ts"]) - int(sent.query["start_ts"]) == 86400


async def test_kalshi_price_at_asks_the_historical_route_for_an_archived_market(kalshi):
    fake, server = kalshi
    closed = NOW - timedelta(days=200)
    market_raw = fake.add_settled_market("KXARCH-25MAY-X", "no", closed, historical=True,
                                         history=[(closed - timedelta(hours=2), "0.10", "0.14", "0.12")])
    market = kalshi_wire.market_from_wire(market_raw)
    client = client_for(fake, unsigned=True)
    try:
        price = await client.price_at(market, closed - timedelta(hours=1))
        assert await client.resolution(market.id) is not None
    finally:
        await client.aclose()
    assert price == D("0.12")
    paths = [r.path for r in server.requests if r.path.endswith("/candlesticks")]
    assert paths == [f"{PREFIX}/series/KXARCH/markets/KXARCH-25MAY-X/candlesticks",
                     f"{PREFIX}/historical/markets/KXARCH-25MAY-X/candlesticks"]


async def test_kalshi_an_unknown_market_is_a_typed_not_found_with_a_sentence(kalshi):
    fake, _ = kalshi
    client = client_for(fake, unsigned=True)
    ghost = make_market("KXNONE-26NOV-Z", now=NOW)
    try:
        with pytest.raises(NotFoundError) as caught:
            await client.price_at(ghost, NOW)
    finally:
        await client.aclose()
    assert str(caught.value) == "kalshi: not_found: market not found (historical candlesticks of KXNONE-26NOV-Z)"


def spec_errors(instance: Any, schema_name: str) -> list[str]:
    """kalshi_errors, less the spec's own defect: `nullable` beside a `$ref` or `allOf` is ignored by OpenAPI 3.0,
    yet the spec says a candle without trades carries null trade prices."""
    return [e for e in kalshi_errors(instance, schema_name)
            if not ("/price/" in e.split(":")[0]
                    and (e.endswith(": None for not nullable") or e.endswith(": None is not of type 'string'")))]


async def test_kalshi_fake_serves_the_pinned_spec_and_refuses_what_kalshi_refuses(kalshi):
    fake, server = kalshi
    kalshi_history(fake)
    closed = NOW - timedelta(days=3)
    fake.add_settled_market("KXARCH-25MAY-X", "no", closed, historical=True,
                            history=[(closed - timedelta(hours=2), "0.10", "0.14", "0.12")])
    window = {"start_ts": int((closed - timedelta(days=1)).timestamp()), "end_ts": int(closed.timestamp()),
              "period_interval": 60}
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        payloads = {
            "GetMarketsResponse": (await http.get("/markets", params={
                "min_close_ts": window["start_ts"], "max_close_ts": window["end_ts"]})).json(),
            "GetHistoricalCutoffResponse": (await http.get("/historical/cutoff")).json(),
            "GetMarketCandlesticksResponse": (await http.get(
                "/series/KXCPI/markets/KXCPI-26NOV-A/candlesticks", params=window)).json(),
            "GetMarketCandlesticksHistoricalResponse": (await http.get(
                "/historical/markets/KXARCH-25MAY-X/candlesticks", params=window)).json(),
        }
        refusals = [
            await http.get("/markets", params={"status": "settled", "min_close_ts": 1}),
            await http.get("/markets", params={"min_close_ts": 1, "min_settled_ts": 1}),
            await http.get("/series/KXCPI/markets/KXCPI-26NOV-A/candlesticks", params={**window, "period_interval": 5}),
            await http.get("/series/KXCPI/markets/KXCPI-26NOV-A/candlesticks", params={"start_ts": 1, "end_ts": 2}),
            await http.get("/series/KXCPI/markets/KXCPI-26NOV-A/candlesticks",
                           params={**window, "start_ts": window["end_ts"] + 1}),
        ]
        missing = [
            await http.get("/series/KXOTHER/markets/KXCPI-26NOV-A/candlesticks", params=window),
            await http.get("/series/KXARCH/markets/KXARCH-25MAY-X/candlesticks", params=window),
            await http.get("/historical/markets/KXCPI-26NOV-A/candlesticks", params=window),
        ]
    for name, payload in payloads.items():
        assert spec_errors(payload, name) == [], (name, spec_errors(payload, name))
        assert not unknown_fields(payload, name), name
    candles = payloads["GetMarketCandlesticksResponse"]["candlesticks"]
    assert len(candles) == 25 and all(  # both ends of the day fall on hour boundaries, both inclusive
        not unknown_fields(c, "MarketCandlestick") for c in candles)
    assert payloads["GetMarketsResponse"]["markets"][0]["status"] == "finalized"
    for refused in refusals:
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_parameters"
        assert kalshi_errors(refused.json()["error"], "ErrorResponse") == []
    assert [r.status_code for r in missing] == [404, 404, 404]


# -- Polymarket ---------------------------------------------------------------------------------

@pytest.fixture
async def polymarket() -> AsyncIterator[tuple[PolymarketFake, LoopbackServer, LoopbackServer]]:
    fake = PolymarketFake(now=NOW)
    async with LoopbackServer(fake.gamma_app()) as gamma, LoopbackServer(fake.clob_app()) as clob:
        yield fake, gamma, clob


def polymarket_client(gamma: LoopbackServer, clob: LoopbackServer, page_size: int = 100) -> PolymarketClient:
    config = PolymarketConfig(gamma_requests_per_second=D(5000), clob_requests_per_second=D(5000),
                              timeout_seconds=D("2"), page_size=page_size)
    return PolymarketClient(gamma_url=gamma.url, clob_url=clob.url, credentials=PolymarketCredentials(),
                            config=config, retry=FAST)


async def test_polymarket_settled_markets_pages_through_the_window_newest_first(polymarket):
    fake, gamma, _ = polymarket
    fake.add_settled_market("Will CPI rise in November?", "Yes", NOW - timedelta(days=3))
    fake.add_settled_market("Will GDP beat?", "No", NOW - timedelta(days=5))
    fake.add_settled_market("Split decision?", "split", AFTER)
    fake.add_settled_market("At the window's end?", "Yes", BEFORE)
    fake.add_settled_market("Before the window?", "No", AFTER - timedelta(seconds=1))
    unresolved = fake.add_market("Closed, not resolved?", active=False, closed=True, bids=[("0.40", "1")],
                                 asks=[("0.42", "1")])
    unresolved.raw["endDate"] = (NOW - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake.add_market("Still open?", bids=[("0.40", "1")], asks=[("0.42", "1")], days=-4)
    client = polymarket_client(gamma, polymarket[2], page_size=2)
    try:
        settled = await client.settled_markets(AFTER, BEFORE, 10)
        top = await client.settled_markets(AFTER, BEFORE, 1)
    finally:
        await client.aclose()
    assert [(m.title, r.yes_payout) for m, r in settled] == [
        ("Will CPI rise in November?", D(1)), ("Will GDP beat?", D(0)), ("Split decision?", D("0.5"))]
    assert all(m.yes_token_id and r.venue is Venue.POLYMARKET for m, r in settled)
    assert [m.title for m, _ in top] == ["Will CPI rise in November?"]
    pages = [r for r in gamma.requests if r.path == "/markets/keyset"]
    assert len(pages) == 6 and "after_cursor" in pages[1].query  # 3 pages of 2 per call (the window holds 5)
    assert pages[0].query["closed"] == "true"
    assert pages[0].query["end_date_min"] == "2026-11-10T15:00:00Z"
    assert pages[0].query["end_date_max"] == "2026-11-18T15:00:00Z"


async def test_polymarket_price_at_picks_the_last_point_and_falls_back_to_12_hour_fidelity(polymarket):
    fake, gamma, clob = polymarket
    end = NOW - timedelta(days=3)
    at = end - timedelta(hours=2)
    live = fake.add_market("Open market?", bids=[("0.40", "1")], asks=[("0.42", "1")])
    fake.price_history[live.yes_token] = [(int((at - timedelta(hours=h)).timestamp()), D(p))
                                          for h, p in ((30, "0.10"), (3, "0.35"), (1, "0.41"), (0, "0.44"))]
    fake.price_history[live.yes_token].append((int((at + timedelta(minutes=5)).timestamp()), D("0.99")))
    resolved = fake.add_settled_market("Resolved market?", "Yes", end, history=[
        (at - timedelta(hours=13), "0.61"), (at - timedelta(hours=6), "0.66"), (at + timedelta(hours=1), "0.97")])
    client = polymarket_client(gamma, clob)
    markets = {m.title: m for m, _ in await client.settled_markets(AFTER, NOW, 10)}
    open_market = Market(venue=Venue.POLYMARKET, id=live.condition_id, title="Open market?", close_time=NOW,
                         yes_token_id=live.yes_token, no_token_id=live.no_token)
    try:
        open_price = await client.price_at(open_market, at)
        resolved_price = await client.price_at(markets["Resolved market?"], at)
        nothing = await client.price_at(open_market, at - timedelta(days=3))
    finally:
        await client.aclose()
    assert open_price == D("0.44")  # the point at `at` itself; the one 5 minutes later is not seen
    assert resolved_price == D("0.66")
    assert nothing is None
    asked = [(r.query["market"], r.query["fidelity"]) for r in clob.requests if r.path == "/prices-history"]
    assert asked == [(live.yes_token, "60"), (resolved.yes_token, "60"), (resolved.yes_token, "720"),
                     (live.yes_token, "60"), (live.yes_token, "720")]
    first = next(r for r in clob.requests if r.path == "/prices-history")
    assert int(first.query["endTs"]) == int(at.timestamp())
    assert int(first.query["endTs"]) - int(first.query["startTs"]) == 86400


async def test_polymarket_a_refused_history_request_is_a_typed_error_with_a_sentence(polymarket):
    _, gamma, clob = polymarket
    client = polymarket_client(gamma, clob)
    broken = Market(venue=Venue.POLYMARKET, id="0xabc", title="Broken ids?", close_time=NOW, yes_token_id="yes-token")
    try:
        with pytest.raises(GiveUpError) as refused:
            await client.price_at(broken, NOW)
        with pytest.raises(GiveUpError) as no_token:
            await client.price_at(broken.model_copy(update={"yes_token_id": ""}), NOW)
    finally:
        await client.aclose()
    assert str(refused.value) == "HTTP 400: Invalid market: a token id is required"
    assert "has no YES token id" in str(no_token.value)


async def test_polymarket_fake_refuses_what_the_clob_refuses(polymarket):
    fake, _, clob = polymarket
    market = fake.add_market("Any?", bids=[("0.40", "1")], asks=[("0.42", "1")])
    async with httpx.AsyncClient(base_url=clob.url) as http:
        both = await http.get("/prices-history", params={"market": market.yes_token, "interval": "1d", "startTs": 1})
        backwards = await http.get("/prices-history", params={"market": market.yes_token, "startTs": 9, "endTs": 1})
        unknown = await http.get("/prices-history", params={"market": "123", "startTs": 1, "endTs": 9})
    assert both.status_code == 400 and backwards.status_code == 400
    assert unknown.status_code == 200 and unknown.json() == {"history": []}


# -- the snapshot and the in-memory venue -------------------------------------------------------

async def test_snapshot_reads_settled_json_and_answers_nothing_without_it(tmp_path):
    shutil.copytree(sample_directory(), tmp_path / "sample")
    directory = tmp_path / "sample"
    (directory / "settled.json").unlink(missing_ok=True)  # the bundled sample has one; this test writes its own
    fake = FakeKalshi(rsa_key(0).public_key(), now=datetime(2026, 11, 20, 15, tzinfo=timezone.utc))
    closed = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)
    fake.add_settled_market("KXCPI-26NOV-A", "yes", closed,
                            history=[(closed - timedelta(hours=2), "0.60", "0.64", "0.61")])
    window = {"start_ts": int((closed - timedelta(days=1)).timestamp()), "end_ts": int(closed.timestamp()),
              "period_interval": 60}
    async with fake.serve():
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            candles = (await http.get("/series/KXCPI/markets/KXCPI-26NOV-A/candlesticks", params=window)).json()
    now = datetime(2026, 12, 20, 15, tzinfo=timezone.utc)  # 30 days after the recording: the listing moves, not history
    empty = SnapshotVenue(Venue.KALSHI, directory, FeesConfig(), now=now)
    assert await empty.settled_markets(now - timedelta(days=365), now, 10) == []
    assert await empty.price_at(make_market("KXCPI-26NOV-A"), now) is None
    (directory / "settled.json").write_text(json.dumps({"kalshi": {
        "markets": [fake.market_view("KXCPI-26NOV-A")], "candlesticks": {"KXCPI-26NOV-A": candles}}}))
    venue = SnapshotVenue(Venue.KALSHI, directory, FeesConfig(), now=now)
    assert await venue.settled_markets(now - timedelta(days=10), now, 10) == []  # history stays where it was
    [(market, resolution)] = await venue.settled_markets(closed - timedelta(days=1), closed + timedelta(days=1), 10)
    assert market.close_time == closed and resolution.yes_payout == D(1)
    assert await venue.price_at(market, market.close_time - timedelta(hours=1)) == D("0.62")
    assert await venue.price_at(market, market.close_time - timedelta(days=2)) is None
    poly = SnapshotVenue(Venue.POLYMARKET, directory, FeesConfig(), now=now)
    assert await poly.settled_markets(now - timedelta(days=365), now, 10) == []


async def test_fake_venue_and_paper_venue_answer_from_the_lists_the_test_sets():
    venue = FakeVenue()
    old, new = make_market("KXA-1", days=-9, now=NOW), make_market("KXB-1", days=-3, now=NOW)
    venue.settled = [(old, Resolution(venue=Venue.KALSHI, market_id=old.id, yes_payout=D(1))),
                     (new, Resolution(venue=Venue.KALSHI, market_id=new.id, yes_payout=D(0)))]
    venue.history[new.id] = [(NOW - timedelta(days=4), D("0.30")), (NOW - timedelta(days=3, hours=2), D("0.35"))]
    paper = PaperVenue(venue)
    assert isinstance(paper, VenueClient) and isinstance(venue, VenueClient)
    assert [m.id for m, _ in await paper.settled_markets(NOW - timedelta(days=10), NOW, 5)] == ["KXB-1", "KXA-1"]
    assert [m.id for m, _ in await venue.settled_markets(NOW - timedelta(days=5), NOW, 5)] == ["KXB-1"]
    assert await paper.price_at(new, NOW - timedelta(days=3)) == D("0.35")
    assert await venue.price_at(new, NOW - timedelta(days=5)) is None
