"""The exit life through the Desk and our real venue clients, over HTTP to the loopback Kalshi and Polymarket fakes:
an entry filled, the book moves, a person closes, an approver approves; live orders reach the venue once (a
partial fill, an IOC remainder, a lost reply looked up, reconciliation after a restart); dry-run sells on paper
against the fakes' real books. Nothing of ours is monkeypatched."""

from __future__ import annotations

from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from pipeline.config import load_settings
from pipeline.desk import Desk
from pipeline.models import OrderAction, OrderStatus, SignalStatus, Venue
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient
from pipeline.venues.polymarket_journal import StoreJournal

from .servers.base import LoopbackServer
from .servers.kalshi import FakeKalshi
from .servers.polymarket import PolymarketFake
from .test_desk import ADMIN, Clock, FixedAnalyzer
from .test_kalshi import FAST, FED, KEY_ID, ORDERS, ORDERS_V2, add_fed, kalshi_config, rsa_key
from .test_polymarket import WALLET, make_client
from .test_sell_orders import exit_market

D = Decimal


def settings_for(tmp_path, *, dry_run: bool, name: str = "desk.db"):
    config = tmp_path / "c.json"
    config.write_text('{"trading": {"dry_run": %s}, "approval": {"authorized_users": ["UADMIN1"]}, '
                      '"storage": {"path": "%s"}}' % ("true" if dry_run else "false", tmp_path / name))
    return load_settings(config, environ={})


class KalshiDesk:
    """A desk on the fake Kalshi that can be restarted: a new store, client and Desk on the same database."""

    def __init__(self, tmp_path, fake: FakeKalshi, *, dry_run: bool) -> None:
        self.settings = settings_for(tmp_path, dry_run=dry_run)
        self.fake = fake
        self.store: Store | None = None
        self.client: KalshiClient | None = None

    async def start(self) -> Desk:
        await self.stop()
        self.client = KalshiClient(self.fake.base_url, KEY_ID, rsa_key(0), self.settings.fees, kalshi_config(),
                                   retry=FAST)
        self.store = await Store.open(self.settings.storage.path)
        return Desk(self.settings, self.store, {Venue.KALSHI: self.client},
                    FixedAnalyzer({f"kalshi:{FED}": "0.70"}), clock=Clock())

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.store is not None:
            await self.store.close()
        self.store = self.client = None


@pytest.fixture
async def kalshi(tmp_path):
    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    add_fed(fake)
    async with fake.serve() as server:
        desks: list[KalshiDesk] = []

        def make(dry_run: bool = False) -> KalshiDesk:
            desks.append(KalshiDesk(tmp_path, fake, dry_run=dry_run))
            return desks[-1]

        yield fake, server, make
        for desk in desks:
            await desk.stop()


def yes_bids(fake: FakeKalshi, levels: dict[str, str]) -> None:
    """Replace the YES bids of FED's book (the NO bids, i.e. the YES asks, stay)."""
    book = fake._book(FED)
    book.yes.clear()
    book.yes.update({D(p): D(n) for p, n in levels.items()})


def sells(server) -> list[dict]:
    return [r.json() for r in server.requests if r.method == "POST" and r.path == ORDERS_V2
            and r.json().get("reduce_only")]


async def entered(desk: Desk) -> None:
    [signal] = (await desk.scan()).signals
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.ok, decision.message


async def test_kalshi_live_exit_is_one_reduce_only_ask_and_the_position_nets_at_the_venue(kalshi):
    fake, server, make = kalshi
    desk = await make().start()
    await entered(desk)
    [held] = await desk.store.positions(paper=False)
    assert held.contracts == fake.positions[FED].position  # the YES bought, at the venue and in the desk
    yes_bids(fake, {"0.61": "60", "0.60": "100"})
    proposed = await desk.close(str(held.id), ADMIN)
    assert proposed.ok, proposed.message
    decision = await desk.approve(proposed.signal.id, ADMIN)
    assert decision.ok and decision.signal.status is SignalStatus.FILLED, decision.message
    [sent] = sells(server)
    # Selling YES at >= 0.60 is an ask at the YES price 0.60, reduce-only, immediate-or-cancel.
    assert (sent["side"], sent["price"], sent["count"], sent["time_in_force"]) == (
        "ask", "0.6000", f"{held.contracts:.2f}", "immediate_or_cancel")
    order = await desk.store.order_for_signal(proposed.signal.id)
    assert order.action is OrderAction.SELL and order.status is OrderStatus.FILLED
    # 60 @ 0.61 and the rest @ 0.60 received, in YES terms, whatever leg the venue's record shows.
    proceeds = D("0.61") * 60 + D("0.60") * (held.contracts - 60)
    [booked] = await desk.store.realized_ledger(paper=False)
    assert order.filled == held.contracts and D(booked["proceeds"]) == proceeds and booked["kind"] == "exit"
    assert fake.positions[FED].position == 0
    [closed] = await desk.store.positions(paper=False, open_only=False)
    assert closed.status == "closed"
    assert closed.realized_pnl == proceeds - order.fees - held.cost - held.fees
    assert not (await desk.approve(proposed.signal.id, ADMIN)).ok and len(sells(server)) == 1


async def test_kalshi_ioc_remainder_is_cancelled_and_only_the_fill_is_booked(kalshi):
    fake, server, make = kalshi
    desk = await make().start()
    await entered(desk)
    [held] = await desk.store.positions(paper=False)
    yes_bids(fake, {"0.60": "500"})
    proposed = await desk.close(str(held.id), ADMIN)
    yes_bids(fake, {"0.60": "45", "0.30": "500"})  # most of the bid went before the Approve; 0.30 is below the limit
    decision = await desk.approve(proposed.signal.id, ADMIN)
    assert decision.ok and decision.signal.status is SignalStatus.PARTIALLY_FILLED, decision.message
    order = await desk.store.order_for_signal(proposed.signal.id)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled == 45
    [left] = await desk.store.positions(paper=False)
    assert left.contracts == held.contracts - 45 == fake.positions[FED].position
    assert D(fake.orders[order.venue_order_id]["remaining_count_fp"]) == 0  # the rest was cancelled at once


async def test_kalshi_a_lost_sale_reply_is_reconciled_after_a_restart_and_booked_once(kalshi):
    fake, server, make = kalshi
    life = make()
    desk = await life.start()
    await entered(desk)
    [held] = await desk.store.positions(paper=False)
    yes_bids(fake, {"0.60": "500"})
    proposed = await desk.close(str(held.id), ADMIN)
    server.faults.add("drop_after", ORDERS_V2, method="POST")  # Kalshi takes the sale; the answer is lost
    server.faults.add("503", ORDERS, method="GET", times=50)  # and the immediate look-up fails too
    decision = await desk.approve(proposed.signal.id, ADMIN)
    assert decision.code == "unknown" and decision.signal.status is SignalStatus.UNKNOWN
    assert fake.positions[FED].position == 0  # sold at the venue
    [unchanged] = await desk.store.positions(paper=False)
    assert unchanged.contracts == held.contracts  # the desk does not know yet
    settled_while_unknown = await desk.settle()
    assert settled_while_unknown.settled == []  # nothing settles over an exit whose outcome is unknown
    server.faults.queue.clear()
    desk = await life.start()  # a restart: reconciliation on start looks the sale up by client order id
    report = await desk.reconcile(on_start=True)
    assert [r.after for r in report.resolved] == [OrderStatus.FILLED] and not report.unresolved
    assert len(sells(server)) == 1  # never sent again
    [closed] = await desk.store.positions(paper=False, open_only=False)
    assert closed.status == "closed" and closed.contracts == 0
    ledger = await desk.store.realized_ledger(paper=False)
    assert len(ledger) == 1 and D(ledger[0]["pnl"]) == closed.realized_pnl
    await desk.reconcile(on_start=True)  # a second pass books nothing again
    assert len(await desk.store.realized_ledger(paper=False)) == 1


async def test_kalshi_dry_run_exit_sells_on_paper_against_the_real_book(kalshi):
    fake, server, make = kalshi
    desk = await make(dry_run=True).start()
    await entered(desk)
    [held] = await desk.store.positions(paper=True)
    yes_bids(fake, {"0.60": "50", "0.59": "500"})
    proposed = await desk.close(str(held.id), ADMIN)
    decision = await desk.approve(proposed.signal.id, ADMIN)
    assert decision.code == "simulated" and decision.message.startswith("DRY-RUN: would have sold")
    assert sells(server) == [] and FED not in fake.positions  # no order reached the venue, ever
    [closed] = await desk.store.positions(paper=True, open_only=False)
    assert closed.status == "closed" and closed.realized_pnl != 0


# -- Polymarket -------------------------------------------------------------------------------


@pytest.fixture
async def polymarket(tmp_path):
    fake = PolymarketFake()
    async with LoopbackServer(fake.gamma_app()) as gamma, LoopbackServer(fake.clob_app()) as clob, \
            LoopbackServer(fake.data_app()) as data:
        yield fake, (gamma, clob, data), clob


@asynccontextmanager
async def polymarket_desk(tmp_path, fake, servers, *, dry_run: bool, holding: bool = True):
    """A desk on the fake Polymarket (its journal in the desk's database, as in `run`), holding the position a
    cycle's approved entry made; opened again on the same database, it is a restart."""
    settings = settings_for(tmp_path, dry_run=dry_run)
    store = await Store.open(settings.storage.path)
    client = make_client(servers, journal=StoreJournal(store))
    analyzer = FixedAnalyzer({f"polymarket:{m.condition_id}": "0.10" for m in fake.markets.values()})
    desk = Desk(settings, store, {Venue.POLYMARKET: client}, analyzer, clock=Clock())
    try:
        if holding:
            await entered(desk)
        yield desk, store
    finally:
        await client.aclose()
        await store.close()


def order_posts(clob) -> list[dict]:
    return [r.json() for r in clob.requests if r.method == "POST" and r.path == "/order"]


async def test_polymarket_live_exit_sells_the_token_held_once_even_when_the_answer_is_lost(tmp_path, polymarket):
    fake, servers, clob = polymarket
    fed = exit_market(fake)
    async with polymarket_desk(tmp_path, fake, servers, dry_run=False) as (desk, store):
        [held] = await store.positions(paper=False)
        assert held.side.value == "no"  # fair YES 0.255 (0.10 blended with the 0.41 mid): NO is the edge
        assert fake.holdings(WALLET)[fed.no_token][0] == held.contracts
        clob.faults.add("drop_after", "/order", method="POST")  # the CLOB matches the sale; the answer is lost
        proposed = await desk.close(str(held.id), ADMIN)
        assert proposed.ok, proposed.message
        decision = await desk.approve(proposed.signal.id, ADMIN)
        # The executor looked the sale up by the hash recorded before it was sent: found, booked, not re-sent.
        assert decision.ok and decision.signal.status in (SignalStatus.FILLED, SignalStatus.PARTIALLY_FILLED)
        posted = [p for p in order_posts(clob) if p["order"]["side"] == "SELL"]
        assert len(posted) == 1 and posted[0]["orderType"] == "FAK"
        order = await store.order_for_signal(proposed.signal.id)
        assert order.action is OrderAction.SELL and order.filled > 0
        left = fake.holdings(WALLET).get(fed.no_token, (D(0),))[0]
        positions = await store.positions(paper=False, open_only=False)
        assert sum(p.contracts for p in positions) == left  # the desk holds what the wallet holds
        # Proceeds are booked at the limit shown by the look-up, a lower bound: never overstated.
        [sale] = [o for o in fake.orders.values() if o.side == "SELL"]
        assert order.filled * order.average_price <= sale.paid
        report = await desk.reconcile(on_start=True)
        assert not report.unresolved and len([p for p in order_posts(clob) if p["order"]["side"] == "SELL"]) == 1


async def test_polymarket_dry_run_exit_never_posts(tmp_path, polymarket):
    fake, servers, clob = polymarket
    exit_market(fake)
    async with polymarket_desk(tmp_path, fake, servers, dry_run=True) as (desk, store):
        [held] = await store.positions(paper=True)
        proposed = await desk.close(str(held.id), ADMIN)
        decision = await desk.approve(proposed.signal.id, ADMIN)
        assert decision.code == "simulated" and "would have sold" in decision.message
        assert order_posts(clob) == []


async def test_polymarket_partial_sale_then_a_lost_reply_reconciled_by_a_restarted_desk(tmp_path, polymarket):
    fake, servers, clob = polymarket
    fed = exit_market(fake)
    async with polymarket_desk(tmp_path, fake, servers, dry_run=False) as (desk, store):
        [held] = await store.positions(paper=False)
        proposed = await desk.close(str(held.id), ADMIN)
        assert proposed.ok, proposed.message
        # Before the Approve, someone takes most of the best NO bid (the YES ask at 0.42): the FAK sells what is left
        # at or above its limit and the rest stays held.
        fed.asks[D("0.42")] = D(30)
        fed.asks.pop(D("0.44"), None)
        clob.faults.add("drop_after", "/order", method="POST")  # matched; the answer lost
        clob.faults.add("503", "/data/order", method="GET", times=50)  # and every look-up fails for now
        decision = await desk.approve(proposed.signal.id, ADMIN)
        assert decision.code == "unknown", decision.message
    clob.faults.queue.clear()
    async with polymarket_desk(tmp_path, fake, servers, dry_run=False, holding=False) as (desk, store):  # a restart
        report = await desk.reconcile(on_start=True)
        assert [r.after for r in report.resolved] == [OrderStatus.PARTIALLY_FILLED] and not report.unresolved
        order = await store.order_for_signal(proposed.signal.id)
        assert order.action is OrderAction.SELL and order.filled == 30
        [left] = await store.positions(paper=False)
        assert left.contracts == held.contracts - 30 == fake.holdings(WALLET)[fed.no_token][0]
        assert len([p for p in order_posts(clob) if p["order"]["side"] == "SELL"]) == 1
        assert len(await store.realized_ledger(paper=False)) == 1
