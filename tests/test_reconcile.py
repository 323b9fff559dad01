"""Reconciliation against the fake Kalshi: orders left unknown or half-sent are settled by look-up only."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.config import load_settings
from pipeline.desk import Desk
from pipeline.models import Order, OrderStatus, SignalStatus, Venue
from pipeline.reconcile import Reconciler
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient

from .servers.kalshi import FakeKalshi
from .test_desk import ADMIN, Clock, FixedAnalyzer
from .test_kalshi import FAST, FED, KEY_ID, ORDERS, ORDERS_V2, add_fed, kalshi_config, market_of, order, rsa_key

D = Decimal
LATER = timedelta(minutes=5)


@pytest.fixture
async def live(tmp_path):
    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    add_fed(fake)
    async with fake.serve() as server:
        config = tmp_path / "c.json"
        config.write_text('{"trading": {"dry_run": false}, "approval": {"authorized_users": ["UADMIN1"]}, '
                          '"storage": {"path": "%s"}}' % (tmp_path / "r.db"))
        settings = load_settings(config, environ={})
        client = KalshiClient(fake.base_url, KEY_ID, rsa_key(0), settings.fees, kalshi_config(), retry=FAST)
        store = await Store.open(settings.storage.path)
        desk = Desk(settings, store, {Venue.KALSHI: client}, FixedAnalyzer({f"kalshi:{FED}": "0.70"}), clock=Clock())
        yield fake, server, desk, store
        await client.aclose()
        await store.close()


def reconciler(desk: Desk, *, later: bool = True) -> Reconciler:
    return Reconciler(desk.store, desk.venues, clock=(lambda: desk.clock() + LATER) if later else desk.clock)


async def test_an_unknown_order_is_settled_by_look_up_without_a_second_post(live):
    fake, server, desk, store = live
    [signal] = (await desk.scan()).signals
    server.faults.add("drop_after", ORDERS_V2, method="POST")  # the venue takes it; the answer is lost
    server.faults.add("503", ORDERS, method="GET", times=20)  # and the immediate look-up fails too
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.code == "unknown" and (await store.get_signal(signal.id)).status is SignalStatus.UNKNOWN
    assert (await desk.status()).risk.reserved > 0  # capital stays held while the outcome is unknown
    server.faults.queue.clear()
    report = await reconciler(desk).run()
    assert [r.after for r in report.resolved] == [OrderStatus.FILLED] and report.unresolved == []
    assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
    [position] = await store.positions(paper=False)
    assert position.contracts == signal.contracts
    risk = (await desk.status()).risk
    assert risk.reserved == 0 and risk.exposure > 0
    assert len(fake.orders) == 1 and server.count("POST", ORDERS_V2) == 1
    again = await reconciler(desk).run()
    assert again.checked == 0 and not again.worth_telling


async def crash_after_writing_the_order_row(desk: Desk, store: Store, age: timedelta = timedelta(0),
                                           status: OrderStatus = OrderStatus.SUBMITTING):
    """What a crash between committing the order row and sending it (`age` ago) leaves behind."""
    [signal] = (await desk.scan()).signals
    await store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UADMIN1")
    now = desk.clock() - age
    order = Order(id=uuid.uuid4().hex, signal_id=signal.id, client_order_id=signal.client_order_id,
                  venue=Venue.KALSHI, market_id=signal.market.id, side=signal.side, contracts=signal.contracts,
                  limit_price=signal.limit_price, status=status, paper=False, created_at=now,
                  updated_at=now)
    assert await store.begin_order(order, source=SignalStatus.APPROVED, target=SignalStatus.SUBMITTING,
                                   actor="UADMIN1")
    return signal


async def test_an_order_that_never_left_fails_and_frees_its_capital(live):
    fake, server, desk, store = live
    signal = await crash_after_writing_the_order_row(desk, store)
    young = await reconciler(desk, later=False).run()  # it may still be in flight in this process
    assert young.checked == 0 and (await store.get_signal(signal.id)).status is SignalStatus.SUBMITTING
    report = await reconciler(desk).run()
    [item] = report.resolved
    assert item.after is OrderStatus.REJECTED and "never placed" in item.note
    assert (await store.get_signal(signal.id)).status is SignalStatus.FAILED
    assert (await desk.status()).risk.reserved == 0
    assert server.count("POST", ORDERS_V2) == 0 and fake.orders == {}  # looked up, never sent


async def test_an_unreachable_venue_changes_nothing_and_is_reported(live):
    fake, server, desk, store = live
    signal = await crash_after_writing_the_order_row(desk, store)
    server.faults.add("503", ORDERS, method="GET", times=100)
    report = await reconciler(desk).run()
    [item] = report.unresolved
    assert item.before is OrderStatus.SUBMITTING and "could not ask kalshi" in item.note
    assert (await store.get_signal(signal.id)).status is SignalStatus.SUBMITTING
    assert (await store.order_for_signal(signal.id)).status is OrderStatus.SUBMITTING
    assert server.count("POST", ORDERS_V2) == 0


async def test_paper_orders_are_not_reconciled(tmp_path):
    from .test_desk import make_desk

    desk, venue, store = await make_desk(tmp_path, dry_run=True)
    [signal] = (await desk.scan()).signals
    await desk.approve(signal.id, ADMIN)
    report = await Reconciler(store, desk.venues, clock=lambda: desk.clock() + LATER).run()
    assert report.checked == 0 and venue.posts == 0
    await store.close()


async def test_halt_cancels_resting_orders_and_stops_everything_but_reconciliation(tmp_path):
    from pipeline.cycle import CycleRequest
    from pipeline.desk import Actor
    from pipeline.errors import RefusedError

    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    add_fed(fake)
    async with fake.serve() as server:
        config = tmp_path / "c.json"
        config.write_text('{"trading": {"dry_run": false, "time_in_force": "good_till_canceled"}, '
                          '"approval": {"authorized_users": ["UADMIN1"]}, "storage": {"path": "%s"}}'
                          % (tmp_path / "h.db"))
        settings = load_settings(config, environ={})
        client = KalshiClient(fake.base_url, KEY_ID, rsa_key(0), settings.fees, kalshi_config(), retry=FAST)
        store = await Store.open(settings.storage.path)
        desk = Desk(settings, store, {Venue.KALSHI: client}, FixedAnalyzer({f"kalshi:{FED}": "0.70"}),
                    clock=Clock())
        [signal] = (await desk.scan()).signals
        book = fake.books[FED]
        best_no = max(book.no)  # the NO bid that makes the best YES ask
        book.no = {best_no: D(40)}  # the book thinned after the signal: 40 fill, the rest rests (GTC)
        decision = await desk.approve(signal.id, ADMIN)
        order = await store.order_for_signal(signal.id)
        assert decision.ok and order.status is OrderStatus.RESTING and order.filled == D(40)

        assert (await desk.halt(Actor(id="USTRANGER"))).code == "not_authorized"
        halted = await desk.halt(ADMIN)
        assert halted.ok and "1 resting order(s) cancelled" in halted.message
        assert server.count("DELETE", ORDERS_V2) == 1
        order = await store.order_for_signal(signal.id)
        assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled == D(40)
        [position] = await store.positions(paper=False)
        assert position.contracts == D(40)
        with pytest.raises(RefusedError, match="HALTED"):
            await desk.scan(CycleRequest())
        assert (await reconciler(desk).run()).checked == 0  # reconciliation still runs
        await store.close()
        # The state survives a restart; only an authorized user can resume.
        store = await Store.open(settings.storage.path)
        desk = Desk(settings, store, {Venue.KALSHI: client}, None, clock=Clock())
        assert (await desk.status()).state.value == "halted"
        assert (await desk.resume(Actor(id="USTRANGER"))).code == "not_authorized"
        assert (await desk.resume(ADMIN)).ok and (await desk.status()).state.value == "active"
        await client.aclose()
        await store.close()


async def test_on_start_even_a_young_half_sent_order_is_checked(live):
    fake, server, desk, store = live
    signal = await crash_after_writing_the_order_row(desk, store, age=timedelta(seconds=90))
    assert (await desk.reconcile()).checked == 0  # in a running process it may still be in flight
    report = await desk.reconcile(on_start=True)  # after a restart nothing is
    assert [r.after for r in report.resolved] == [OrderStatus.REJECTED]
    assert (await store.get_signal(signal.id)).status is SignalStatus.FAILED


async def test_positions_the_desk_does_not_know_are_reported_not_adopted(live):
    fake, server, desk, store = live
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, ADMIN)).ok
    assert (await desk.reconcile()).positions == []  # the fill is on both sides
    fake.positions["KXOTHER-26DEC-T1"].position = D(-7)  # traded by hand on the same account
    fake.positions[FED].position += D(3)
    report = await desk.reconcile()
    mismatches = {(m.market_id, m.ours, m.theirs) for m in report.positions}
    assert mismatches == {("KXOTHER-26DEC-T1", D(0), D(-7)), (FED, signal.contracts, signal.contracts + 3)}
    assert "not adopted" in next(m.note for m in report.positions if m.market_id == "KXOTHER-26DEC-T1")
    assert [p.market_id for p in await store.positions(paper=False)] == [FED]  # nothing adopted
    assert (await store.positions(paper=False))[0].contracts == signal.contracts


async def test_no_record_of_a_young_order_is_not_yet_proof_it_was_never_placed(live):
    fake, server, desk, store = live
    signal = await crash_after_writing_the_order_row(desk, store, age=timedelta(seconds=10),
                                                     status=OrderStatus.SUBMITTING)
    report = await desk.reconcile(on_start=True)
    [item] = report.unresolved
    assert "does not list it yet" in item.note and report.resolved == []
    assert (await store.get_signal(signal.id)).status is SignalStatus.SUBMITTING
    assert (await desk.status()).risk.reserved > 0  # capital stays held until the venue can say


async def test_an_approval_whose_order_was_never_written_is_released_on_start_not_while_young(live):
    # The move to approved committed, then the database refused the order row (or the process died):
    # no order row means nothing was sent, so the capital is released, once nothing can be in flight.
    fake, server, desk, store = live
    [signal] = (await desk.scan()).signals
    assert (await store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor=ADMIN.id)).moved
    assert (await desk.reconcile()).released == []  # a young approval may still be writing its order
    report = await desk.reconcile(on_start=True)
    [released] = report.released
    assert released.id == signal.id and released.status is SignalStatus.FAILED
    assert "nothing was sent" in released.status_reason and report.worth_telling
    assert (await desk.status()).risk.reserved == 0 and server.count("POST", ORDERS_V2) == 0


async def test_an_order_working_at_the_venue_that_the_desk_did_not_place_is_reported_not_touched(live):
    fake, server, desk, store = live
    client = desk.venues[Venue.KALSHI]
    hand = await client.place_order(order("by-hand-1", contracts="5", limit="0.30", tif="good_till_canceled"),
                                    market_of(fake))  # placed on the same account from Kalshi's website
    assert hand.status is OrderStatus.RESTING
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, ADMIN)).ok  # the desk's own order is known and not reported
    report = await desk.reconcile()
    [foreign] = report.foreign
    assert foreign.client_order_id == "by-hand-1" and foreign.market_id == FED and foreign.remaining == 5
    assert report.worth_telling and len(await store.orders()) == 1  # not adopted
    assert fake.by_client_id("by-hand-1")["status"] == "resting"  # not cancelled
    assert server.count("DELETE", ORDERS_V2) == 0


async def test_a_dry_run_order_whose_simulation_was_never_recorded_fails_and_frees_its_capital(tmp_path):
    from .test_desk import make_desk

    desk, venue, store = await make_desk(tmp_path, dry_run=True)
    try:
        [signal] = (await desk.scan()).signals
        await store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UADMIN1")
        now = desk.clock()
        order = Order(id=uuid.uuid4().hex, signal_id=signal.id, client_order_id=signal.client_order_id,
                      venue=Venue.KALSHI, market_id=signal.market.id, side=signal.side, contracts=signal.contracts,
                      limit_price=signal.limit_price, status=OrderStatus.SUBMITTING, paper=True, created_at=now,
                      updated_at=now)
        assert await store.begin_order(order, source=SignalStatus.APPROVED, target=None, actor="UADMIN1")
        assert (await desk.reconcile()).resolved == []  # young: it may be simulating right now
        [item] = (await desk.reconcile(on_start=True)).resolved
        assert item.after is OrderStatus.REJECTED and "never recorded" in item.note
        assert (await store.get_signal(signal.id)).status is SignalStatus.FAILED
        assert (await desk.status()).risk.reserved == 0 and venue.posts == 0
    finally:
        await store.close()
