"""What a viewer sees of the money: cash at each venue (Desk.venue_balances) and open positions marked to the
current best bid (Desk.marked_positions), against the fake Kalshi and Polymarket over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

from pipeline.desk import Desk, MarkedPosition
from pipeline.marks import mark_position
from pipeline.models import Position, Side, Venue
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials

from .conftest import make_settings
from .fakes import NOW, make_book, make_market
from .servers.base import LoopbackServer
from .servers.kalshi import PREFIX, FakeKalshi
from .servers.polymarket import PolymarketFake
from .test_desk import ADMIN, Clock, FixedAnalyzer
from .test_kalshi import FED, KEY_ID, add_fed, client_for, rsa_key
from .test_polymarket import make_client

D = Decimal


@asynccontextmanager
async def venues(*, kalshi_key: bool = True, stranger: bool = False, poly_key: bool = True,
                 hang_seconds: float = 30.0) -> AsyncIterator[tuple[FakeKalshi, LoopbackServer, KalshiClient,
                                                                     PolymarketFake, PolymarketClient]]:
    """Both fake venues on loopback, with a client for each (keys as asked)."""
    kalshi = FakeKalshi(rsa_key(0).public_key(), KEY_ID, now=NOW)
    poly = PolymarketFake()
    async with kalshi.serve(hang_seconds=hang_seconds) as server, \
            LoopbackServer(poly.gamma_app(), hang_seconds=1.0) as gamma, \
            LoopbackServer(poly.clob_app(), hang_seconds=1.0) as clob, \
            LoopbackServer(poly.data_app(), hang_seconds=1.0) as data:
        kclient = client_for(kalshi, unsigned=not kalshi_key, key=rsa_key(1) if stranger else None)
        pclient = make_client((gamma, clob, data),
                              credentials=None if poly_key else PolymarketCredentials())
        try:
            yield kalshi, server, kclient, poly, pclient
        finally:
            await kclient.aclose()
            await pclient.aclose()


async def open_desk(tmp_path, clients: dict[Venue, object], *, dry_run: bool = True) -> tuple[Desk, Store]:
    settings = make_settings(tmp_path, trading={"dry_run": dry_run}, approval={"authorized_users": ["UADMIN1"]},
                             storage={"path": str(tmp_path / "desk.db")}, scan={"venues": ["kalshi"]},
                             kalshi={"reads_per_second": 1000, "writes_per_second": 1000})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, clients, FixedAnalyzer({f"kalshi:{FED}": "0.70"}), clock=Clock())  # type: ignore
    return desk, store


# -- cash at the venues ---------------------------------------------------------------------------

async def test_each_venue_s_cash_is_read(tmp_path):
    async with venues() as (kalshi, _, kclient, poly, pclient):
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient, Venue.POLYMARKET: pclient})
        try:
            assert await desk.venue_balances() == {Venue.KALSHI: D("10000"), Venue.POLYMARKET: poly.balance}
        finally:
            await store.close()


async def test_a_venue_without_keys_says_so_instead_of_a_figure(tmp_path):
    async with venues(kalshi_key=False, poly_key=False) as (_, server, kclient, _poly, pclient):
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient, Venue.POLYMARKET: pclient})
        try:
            assert await desk.venue_balances() == {Venue.KALSHI: "no API keys configured",
                                                   Venue.POLYMARKET: "no API keys configured"}
            assert server.count("GET", f"{PREFIX}/portfolio/balance") == 0  # nothing asked without keys
        finally:
            await store.close()


async def test_a_venue_that_refuses_gives_its_reason_and_the_other_still_answers(tmp_path):
    async with venues(stranger=True) as (_, _server, kclient, poly, pclient):  # Kalshi does not know the key
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient, Venue.POLYMARKET: pclient})
        try:
            found = await desk.venue_balances()
            assert found[Venue.POLYMARKET] == poly.balance
            assert isinstance(found[Venue.KALSHI], str) and "invalid signature" in found[Venue.KALSHI]
        finally:
            await store.close()


async def test_a_venue_that_does_not_answer_in_time_is_told_without_holding_up_the_other(tmp_path):
    async with venues(hang_seconds=1.0) as (_, server, kclient, poly, pclient):
        server.faults.add("timeout", f"{PREFIX}/portfolio/balance", "GET", times=10)
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient, Venue.POLYMARKET: pclient})
        try:
            found = await desk.venue_balances(timeout=0.3)
            assert found == {Venue.KALSHI: "Kalshi did not answer in 0.3 s", Venue.POLYMARKET: poly.balance}
        finally:
            await store.close()


# -- positions marked to market -------------------------------------------------------------------

async def test_a_paper_position_is_marked_at_the_current_best_bid(tmp_path):
    async with venues() as (kalshi, _, kclient, _poly, _pclient):
        add_fed(kalshi)
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient})
        try:
            [signal] = (await desk.scan()).signals
            assert (await desk.approve(signal.id, ADMIN)).code == "simulated"
            kalshi.books[FED].yes = {D("0.47"): D("300"), D("0.45"): D("100")}  # the market moved up since
            [marked] = await desk.marked_positions()
            assert isinstance(marked, MarkedPosition) and marked.note == ""
            position = marked.position
            assert position.paper and position.side is Side.YES and position.contracts == signal.contracts
            assert marked.mark == D("0.47")
            assert marked.unrealized == position.contracts * D("0.47") - position.cost - position.fees
            assert marked.market is not None and marked.market.id == FED
            assert marked.closes_at == NOW + timedelta(days=10)
        finally:
            await store.close()


async def test_a_book_that_cannot_be_read_leaves_the_mark_empty_and_says_why(tmp_path):
    async with venues() as (kalshi, server, kclient, _poly, _pclient):
        add_fed(kalshi)
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient})
        try:
            [signal] = (await desk.scan()).signals
            assert (await desk.approve(signal.id, ADMIN)).code == "simulated"
            server.faults.add("500", f"{PREFIX}/markets/orderbooks", "GET", times=50)
            [marked] = await desk.marked_positions()
            assert marked.mark is None and marked.unrealized is None
            assert marked.note.startswith("Kalshi book unavailable: ") and marked.market is not None
            assert marked.closes_at == NOW + timedelta(days=10)
        finally:
            await store.close()


async def test_a_live_desk_marks_only_live_positions(tmp_path):
    async with venues() as (kalshi, _, kclient, _poly, _pclient):
        add_fed(kalshi)
        desk, store = await open_desk(tmp_path, {Venue.KALSHI: kclient})
        try:
            [signal] = (await desk.scan()).signals
            assert (await desk.approve(signal.id, ADMIN)).code == "simulated"  # a paper position
            live = Desk(desk.settings.model_copy(update={"trading": desk.settings.trading.model_copy(
                update={"dry_run": False})}), store, {Venue.KALSHI: kclient}, None, clock=Clock())
            assert await live.marked_positions() == []
            assert len(await desk.marked_positions()) == 1
        finally:
            await store.close()


def test_marks_say_why_a_figure_is_missing():
    market = make_market("KXA-1")
    position = Position(venue=Venue.KALSHI, market_id="KXA-1", side=Side.NO, paper=True, contracts=D(10),
                        cost=D("5.80"), fees=D("0.17"), opened_at=NOW)
    only_yes_bids = make_book(market, bids=[("0.40", "10")], asks=[])  # nobody sells YES: nobody buys NO
    assert mark_position(position, market, only_yes_bids).note == "no bid for NO"
    assert mark_position(position, None, only_yes_bids).note == "market not known to this desk"
    # a NO is sold by buying YES: its bid is 1 - the best YES ask
    book = make_book(market, bids=[("0.40", "10")], asks=[("0.43", "10")])
    marked = mark_position(position, market, book)
    assert marked.mark == D("0.57") and marked.unrealized == D("10") * D("0.57") - D("5.80") - D("0.17")
